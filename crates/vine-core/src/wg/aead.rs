//! The transport AEAD: ChaCha20-Poly1305 with a 64-bit counter nonce and no
//! associated data, as type-4 messages use it.
//!
//! Two implementations give the same bytes: ring's (AVX2 at best), and
//! this crate's AVX-512 one ([`avx512`]), which on a CPU with AVX-512 IFMA
//! seals a 1,408-byte packet in well under ring's time (see
//! `cargo run --release -p vine-core --example aead_speed`). The caller
//! chooses, per key ([`AeadKey::new`]); [`Backend::detect`] proposes the
//! AVX-512 code when the CPU has the features and it reproduces ring's
//! output on a self-test, and says why.
//!
//! Handshake fields (which have associated data) always use ring.

use ring::aead::{Aad, LessSafeKey};

use super::crypto::{KEY_LEN, TAG_LEN, aead_key, nonce};

#[cfg(target_arch = "x86_64")]
mod avx512;

/// Which ChaCha20-Poly1305 implementation transport messages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// vine's AVX-512 (F, VL, BW, IFMA) implementation.
    Avx512,
    /// ring's.
    Ring,
}

impl Backend {
    /// Name for logs and `vine doctor`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Avx512 => "avx512",
            Backend::Ring => "ring",
        }
    }

    /// The best implementation for this CPU and why, for the log: the
    /// AVX-512 code when the CPU has its features and it passes a
    /// self-test against ring, else ring. Pure: no environment, no global
    /// (std caches the CPU feature flags).
    pub fn detect() -> (Backend, &'static str) {
        if !avx512_usable() {
            return (Backend::Ring, "this CPU lacks AVX-512 F/VL/BW/IFMA");
        }
        if !self_test() {
            return (
                Backend::Ring,
                "the AVX-512 code failed its self-test against ring on this CPU",
            );
        }
        (
            Backend::Avx512,
            "the CPU has AVX-512 IFMA and the self-test passed",
        )
    }
}

/// Whether this CPU has everything the AVX-512 code is compiled for.
fn avx512_usable() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512ifma")
            && std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Seals a few lengths with both implementations and compares every byte:
/// a CPU or build that computes something else falls back to ring.
fn self_test() -> bool {
    let key = [0x5au8; KEY_LEN];
    let ring = aead_key(&key);
    [0usize, 1, 15, 16, 63, 64, 65, 511, 1024, 1408, 1500]
        .iter()
        .all(|&len| {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut a = plain.clone();
            let mut b = plain.clone();
            let (Ok(ta), Some(tb)) = (
                ring.seal_in_place_separate_tag(nonce(len as u64), Aad::empty(), &mut a),
                fast_seal(&key, len as u64, &mut b),
            ) else {
                return false;
            };
            if a != b || ta.as_ref() != tb {
                return false;
            }
            a.extend_from_slice(&tb);
            fast_open(&key, len as u64, &mut a) == Some(len) && a[..len] == plain[..]
        })
}

/// The 96-bit nonce of `counter` as bytes.
fn nonce_bytes(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

/// Largest message the AVX-512 code takes (its block counter is 32-bit
/// like ChaCha20's; transport messages are far below this).
const FAST_MAX: usize = 1 << 24;

/// AVX-512 seal (a batch of one); `None` when the CPU lacks the features.
#[allow(unsafe_code)] // a call of a target-feature function, guarded
fn fast_seal(key: &[u8; KEY_LEN], counter: u64, body: &mut [u8]) -> Option<[u8; TAG_LEN]> {
    #[cfg(target_arch = "x86_64")]
    if avx512_usable() && body.len() <= FAST_MAX {
        let mut tag = [0u8; TAG_LEN];
        let state = avx512::ChaChaState::new(key, &nonce_bytes(counter));
        // SAFETY: the CPU has every feature the function enables (checked
        // just above; std caches the answer).
        unsafe { avx512::seal_each(std::iter::once((state, body, &mut tag))) };
        return Some(tag);
    }
    let _ = (key, counter, body);
    None
}

/// AVX-512 open of `payload` (ciphertext ‖ tag, a batch of one): the
/// plaintext length on success, `None` on a bad tag (the contents are then
/// unspecified, as with ring) or when the CPU lacks the features.
#[allow(unsafe_code)] // a call of a target-feature function, guarded
fn fast_open(key: &[u8; KEY_LEN], counter: u64, payload: &mut [u8]) -> Option<usize> {
    let len = payload.len().checked_sub(TAG_LEN)?;
    #[cfg(target_arch = "x86_64")]
    if avx512_usable() && len <= FAST_MAX {
        let state = avx512::ChaChaState::new(key, &nonce_bytes(counter));
        let mut authentic = false;
        // SAFETY: as in `fast_seal`.
        unsafe {
            avx512::open_each(std::iter::once((0, state, payload)), |_, ok| {
                authentic = ok;
            })
        };
        return authentic.then_some(len);
    }
    let _ = (key, counter);
    None
}

/// A message failed authentication (or was too short to carry a tag), or
/// was too long to seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadError;

impl std::fmt::Display for AeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChaCha20-Poly1305 authentication failed")
    }
}

impl std::error::Error for AeadError {}

/// One direction's transport key. Its raw bytes are wiped when it is
/// dropped (the Linux implementation frees keypairs with
/// `kfree_sensitive`); ring's own copy inside its key type is not, as ring
/// offers no way to wipe it.
pub struct AeadKey {
    ring: LessSafeKey,
    raw: [u8; KEY_LEN],
    fast: bool,
}

impl Drop for AeadKey {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.raw.zeroize();
    }
}

impl AeadKey {
    /// A key on `backend`: `Avx512` on a CPU without the features still
    /// runs ring.
    pub fn new(key: &[u8; KEY_LEN], backend: Backend) -> Self {
        Self {
            ring: aead_key(key),
            raw: *key,
            fast: backend == Backend::Avx512 && avx512_usable(),
        }
    }

    /// Encrypts `body` in place with `counter`'s nonce and returns the tag.
    pub fn seal(&self, counter: u64, body: &mut [u8]) -> Result<[u8; TAG_LEN], AeadError> {
        if self.fast
            && let Some(tag) = fast_seal(&self.raw, counter, body)
        {
            return Ok(tag);
        }
        let tag = self
            .ring
            .seal_in_place_separate_tag(nonce(counter), Aad::empty(), body)
            .map_err(|_| AeadError)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Seals several messages in place: each item is a counter and
    /// `body ‖ 16 bytes`, the tag goes in the last 16. The same bytes as
    /// [`AeadKey::seal`] on each; the AVX-512 code overlaps one message's
    /// last MAC steps with the next one's ChaCha rounds.
    #[allow(unsafe_code)] // a call of a target-feature function, guarded
    pub fn seal_each<'a>(&self, items: impl Iterator<Item = (u64, &'a mut [u8])>) {
        #[cfg(target_arch = "x86_64")]
        if self.fast {
            let key = &self.raw;
            let items = items.map(|(counter, slot)| {
                assert!(
                    slot.len() >= TAG_LEN,
                    "seal_each: a slot without room for the tag"
                );
                assert!(
                    slot.len() - TAG_LEN <= FAST_MAX,
                    "seal_each: a message over 16 MiB"
                );
                let (body, tag) = slot.split_at_mut(slot.len() - TAG_LEN);
                let tag: &mut [u8; TAG_LEN] = tag.try_into().expect("split at TAG_LEN");
                (
                    avx512::ChaChaState::new(key, &nonce_bytes(counter)),
                    body,
                    tag,
                )
            });
            // SAFETY: `fast` is only set when the CPU has every feature
            // the function enables (`avx512_usable`).
            unsafe { avx512::seal_each(items) };
            return;
        }
        for (counter, slot) in items {
            let (body, tag) = slot.split_at_mut(slot.len() - TAG_LEN);
            let t = self
                .ring
                .seal_in_place_separate_tag(nonce(counter), Aad::empty(), body)
                .expect("ChaCha20-Poly1305 only fails for inputs over 256 GiB");
            tag.copy_from_slice(t.as_ref());
        }
    }

    /// Opens several messages in place: each item is an index (passed
    /// back to `done`), a counter and `ciphertext ‖ tag`. `done(index,
    /// authentic)` runs once per item, in order; the plaintext of an
    /// authentic item is its first `len - 16` bytes. The AVX-512 code
    /// overlaps one message's tag check with the next one's ChaCha rounds.
    #[allow(unsafe_code)] // a call of a target-feature function, guarded
    pub fn open_each<'a>(
        &self,
        items: impl Iterator<Item = (usize, u64, &'a mut [u8])>,
        mut done: impl FnMut(usize, bool),
    ) {
        #[cfg(target_arch = "x86_64")]
        if self.fast {
            let key = &self.raw;
            let items = items.map(|(index, counter, payload)| {
                // Datagrams are far below the limit; a longer item is
                // handed on empty, which fails authentication.
                let payload = if payload.len() > FAST_MAX + TAG_LEN {
                    &mut payload[..0]
                } else {
                    payload
                };
                (
                    index,
                    avx512::ChaChaState::new(key, &nonce_bytes(counter)),
                    payload,
                )
            });
            // SAFETY: `fast` is only set when the CPU has every feature
            // the function enables (`avx512_usable`).
            unsafe { avx512::open_each(items, &mut done) };
            return;
        }
        for (index, counter, payload) in items {
            done(index, self.open(counter, payload).is_ok());
        }
    }

    /// Authenticates and decrypts `payload` (ciphertext ‖ tag) in place;
    /// the plaintext is `payload[..n]` for the returned `n`.
    pub fn open(&self, counter: u64, payload: &mut [u8]) -> Result<usize, AeadError> {
        if payload.len() < TAG_LEN {
            return Err(AeadError);
        }
        if self.fast && payload.len() - TAG_LEN <= FAST_MAX {
            return fast_open(&self.raw, counter, payload).ok_or(AeadError);
        }
        self.ring
            .open_in_place(nonce(counter), Aad::empty(), payload)
            .map(|p| p.len())
            .map_err(|_| AeadError)
    }
}

#[cfg(test)]
mod tests;
