//! The cryptographic primitives of the WireGuard protocol, exactly as the
//! whitepaper (section 5.4) names them: `HASH` (BLAKE2s-256), `MAC` (keyed
//! BLAKE2s-128), `HMAC` (RFC 2104 over BLAKE2s), the `KDF1..3` chain built
//! on it, `AEAD` (ChaCha20-Poly1305 with a 64-bit little-endian counter
//! nonce) and the TAI64N timestamp.
//!
//! Everything here is a pure function of its arguments. Secret
//! intermediates (HMAC pads, inner hashes, KDF outputs) are wiped when
//! they go out of use, where the Linux implementation wipes them.

use std::time::Duration;

use blake2::digest::consts::U16;
use blake2::digest::generic_array::GenericArray;
use blake2::digest::{FixedOutput, KeyInit, Update};
use blake2::{Blake2s256, Blake2sMac};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

/// Length of keys, hashes and chaining keys.
pub(crate) const KEY_LEN: usize = 32;
/// Length of a Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;
/// Length of a `MAC` output (mac1, mac2).
pub(crate) const MAC_LEN: usize = 16;
/// Length of a TAI64N timestamp.
pub(crate) const TIMESTAMP_LEN: usize = 12;

/// `HASH(CONSTRUCTION)`: the initial chaining key.
pub(crate) const CONSTRUCTION: &[u8] = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/// Mixed into the initial hash.
pub(crate) const IDENTIFIER: &[u8] = b"WireGuard v1 zx2c4 Jason@zx2c4.com";
/// Label of the mac1 key derivation.
pub(crate) const LABEL_MAC1: &[u8] = b"mac1----";

/// A 32-byte secret (a key, a chaining key, a DH result) that is wiped
/// when dropped.
pub(crate) type Secret = Zeroizing<[u8; KEY_LEN]>;

/// BLAKE2s block size, the HMAC pad length.
const BLOCK_LEN: usize = 64;

/// `HASH(a || b || …)`: BLAKE2s-256 over the concatenation of `parts`.
pub(crate) fn hash(parts: &[&[u8]]) -> [u8; KEY_LEN] {
    let mut hasher = Blake2s256::default();
    for part in parts {
        Update::update(&mut hasher, part);
    }
    hasher.finalize_fixed().into()
}

/// `MAC(key, data)`: keyed BLAKE2s with a 16-byte output (not HMAC).
pub(crate) fn mac(key: &[u8; KEY_LEN], data: &[u8]) -> [u8; MAC_LEN] {
    let mut mac = <Blake2sMac<U16> as KeyInit>::new_from_slice(key)
        .expect("BLAKE2s accepts keys of up to 32 bytes and this one is 32");
    Update::update(&mut mac, data);
    mac.finalize_fixed().into()
}

/// `HMAC(key, a || b || …)`: RFC 2104 HMAC with BLAKE2s-256. The key-mixed
/// pads and the inner hash are wiped before returning, as the Linux
/// implementation's `hmac` wipes `x_key` and `i_hash`.
pub(crate) fn hmac(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> Secret {
    let mut ipad = Zeroizing::new([0x36u8; BLOCK_LEN]);
    let mut opad = Zeroizing::new([0x5cu8; BLOCK_LEN]);
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Blake2s256::default();
    Update::update(&mut inner, &*ipad);
    for part in parts {
        Update::update(&mut inner, part);
    }
    let mut inner_hash = Secret::default();
    inner.finalize_into(GenericArray::from_mut_slice(&mut inner_hash[..]));
    let mut outer = Blake2s256::default();
    Update::update(&mut outer, &*opad);
    Update::update(&mut outer, &*inner_hash);
    let mut out = Secret::default();
    outer.finalize_into(GenericArray::from_mut_slice(&mut out[..]));
    out
}

/// `KDF1(key, input)`. Like every `KDF`, it wipes the extracted secret
/// (`T0`) and returns its outputs in wrappers that wipe them when dropped,
/// as the Linux implementation's `kdf` wipes `secret` and `output`.
pub(crate) fn kdf1(key: &[u8; KEY_LEN], input: &[u8]) -> Secret {
    let t0 = hmac(key, &[input]);
    hmac(&t0, &[&[1]])
}

/// `KDF2(key, input)`.
pub(crate) fn kdf2(key: &[u8; KEY_LEN], input: &[u8]) -> (Secret, Secret) {
    let t0 = hmac(key, &[input]);
    let t1 = hmac(&t0, &[&[1]]);
    let t2 = hmac(&t0, &[&*t1, &[2]]);
    (t1, t2)
}

/// `KDF3(key, input)`.
pub(crate) fn kdf3(key: &[u8; KEY_LEN], input: &[u8]) -> (Secret, Secret, Secret) {
    let t0 = hmac(key, &[input]);
    let t1 = hmac(&t0, &[&[1]]);
    let t2 = hmac(&t0, &[&*t1, &[2]]);
    let t3 = hmac(&t0, &[&*t2, &[3]]);
    (t1, t2, t3)
}

/// The 96-bit AEAD nonce: 32 zero bits then the counter, little-endian.
pub(crate) fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

/// A ChaCha20-Poly1305 key in ring's form.
pub(crate) fn aead_key(key: &[u8; KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, key)
            .expect("ChaCha20-Poly1305 takes 32-byte keys and this one is 32"),
    )
}

/// `AEAD(key, 0, plaintext, aad)` for handshake fields: `out` must be exactly
/// `plaintext.len() + TAG_LEN` bytes.
pub(crate) fn seal(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), plaintext.len() + TAG_LEN);
    let (body, tag_out) = out.split_at_mut(plaintext.len());
    body.copy_from_slice(plaintext);
    let tag = aead_key(key)
        .seal_in_place_separate_tag(nonce(0), Aad::from(aad), body)
        .expect("ChaCha20-Poly1305 only fails for inputs over 256 GiB; handshake fields are tiny");
    tag_out.copy_from_slice(tag.as_ref());
}

/// Opens a handshake field sealed with counter 0: `ciphertext` is the
/// plaintext followed by the tag, `out` receives the plaintext and must be
/// `ciphertext.len() - TAG_LEN` bytes.
pub(crate) fn open(
    key: &[u8; KEY_LEN],
    ciphertext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<(), ()> {
    // Handshake fields are at most 48 bytes; open on a stack copy.
    let mut buf = [0u8; 64];
    let Some(buf) = buf.get_mut(..ciphertext.len()) else {
        return Err(());
    };
    buf.copy_from_slice(ciphertext);
    let plain = aead_key(key)
        .open_in_place(nonce(0), Aad::from(aad), buf)
        .map_err(|_| ())?;
    if plain.len() != out.len() {
        return Err(());
    }
    out.copy_from_slice(plain);
    Ok(())
}

/// Constant-time equality of two equally long byte strings.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// TAI64N label of the UNIX epoch (2^62 + 10 leap seconds, as the Linux
/// implementation writes it).
const TAI64_EPOCH: u64 = 0x4000_0000_0000_000a;
/// Nanoseconds are rounded down to this granularity (the largest power of
/// two below 1 s / 50 initiations), as the Linux implementation does, so a
/// timestamp does not leak a precise clock.
const TIMESTAMP_GRANULARITY_NS: u32 = 1 << 24;

/// A TAI64N timestamp (12 bytes, big-endian seconds then nanoseconds).
/// Byte order equals chronological order, so timestamps compare as arrays.
pub(crate) type Tai64n = [u8; TIMESTAMP_LEN];

/// The TAI64N label of `wall` (time since the UNIX epoch), rounded down to
/// [`TIMESTAMP_GRANULARITY_NS`].
pub(crate) fn tai64n(wall: Duration) -> Tai64n {
    let secs = TAI64_EPOCH.saturating_add(wall.as_secs());
    let nanos = wall.subsec_nanos() - wall.subsec_nanos() % TIMESTAMP_GRANULARITY_NS;
    let mut out = [0u8; TIMESTAMP_LEN];
    out[..8].copy_from_slice(&secs.to_be_bytes());
    out[8..].copy_from_slice(&nanos.to_be_bytes());
    out
}

/// The smallest timestamp strictly after `t` (one nanosecond later).
pub(crate) fn tai64n_successor(t: &Tai64n) -> Tai64n {
    let mut secs_bytes = [0u8; 8];
    secs_bytes.copy_from_slice(&t[..8]);
    let mut nanos_bytes = [0u8; 4];
    nanos_bytes.copy_from_slice(&t[8..]);
    let mut secs = u64::from_be_bytes(secs_bytes);
    let mut nanos = u32::from_be_bytes(nanos_bytes).saturating_add(1);
    if nanos >= 1_000_000_000 {
        nanos = 0;
        secs = secs.saturating_add(1);
    }
    let mut out = [0u8; TIMESTAMP_LEN];
    out[..8].copy_from_slice(&secs.to_be_bytes());
    out[8..].copy_from_slice(&nanos.to_be_bytes());
    out
}
