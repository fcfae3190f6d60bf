//! Transport keypairs: the two ChaCha20-Poly1305 keys a handshake yields,
//! the sending counter, the receive replay window, and the encryption and
//! decryption of type-4 messages.
//!
//! A [`Keypair`] is shared (`Arc`) between the protocol state in
//! [`super::Wg`] and the data-plane threads of the daemon (through
//! [`crate::dataplane`]): the sending counter is an atomic, so any thread
//! reserves nonces without a lock, and the replay window sits behind a
//! mutex that the receive path takes once per datagram (uncontended: one
//! receive thread). Neither side ever reads a clock; `now` comes in.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::aead::{AeadKey, Backend};
use super::crypto::{KEY_LEN, TAG_LEN};
use super::error::WgError;
use super::messages::{DATA_HEADER_LEN, TYPE_DATA, padded_len};
use super::replay::ReplayWindow;
use super::timers::{REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME};

/// The directional keys a completed handshake derived.
pub(crate) struct SessionKeys {
    /// Key we encrypt with.
    pub(crate) send: [u8; KEY_LEN],
    /// Key we decrypt with.
    pub(crate) recv: [u8; KEY_LEN],
}

impl Zeroize for SessionKeys {
    fn zeroize(&mut self) {
        self.send.zeroize();
        self.recv.zeroize();
    }
}

/// Wiped when dropped: the handshake code drops them as soon as the
/// [`Keypair`] holding its own copies is made (the Linux implementation
/// derives straight into the keypair and zeroes the handshake).
impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for SessionKeys {}

/// One established session with a peer: keys, counter, replay window.
pub struct Keypair {
    /// Index the peer puts in messages to us (allocated by us).
    pub(crate) local_index: u32,
    /// Index we put in messages to the peer (allocated by the peer).
    pub(crate) remote_index: u32,
    /// When the handshake that made it completed.
    pub(crate) created: Instant,
    /// Whether we initiated that handshake (only initiators rekey on age).
    pub(crate) is_initiator: bool,
    send: AeadKey,
    recv: AeadKey,
    /// The next counter to send with.
    send_counter: AtomicU64,
    replay: Mutex<ReplayWindow>,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("created", &self.created)
            .field("is_initiator", &self.is_initiator)
            .field("send_counter", &self.send_counter())
            .finish_non_exhaustive()
    }
}

impl Keypair {
    pub(crate) fn new(
        local_index: u32,
        remote_index: u32,
        keys: &SessionKeys,
        created: Instant,
        is_initiator: bool,
        backend: Backend,
    ) -> Self {
        Self {
            local_index,
            remote_index,
            created,
            is_initiator,
            send: AeadKey::new(&keys.send, backend),
            recv: AeadKey::new(&keys.recv, backend),
            send_counter: AtomicU64::new(0),
            replay: Mutex::new(ReplayWindow::default()),
        }
    }

    /// The receiver index peers put in messages for this keypair.
    pub fn local_index(&self) -> u32 {
        self.local_index
    }

    /// When these keys stop being usable in either direction.
    pub fn expires_at(&self) -> Instant {
        self.created + REJECT_AFTER_TIME
    }

    /// Whether the keys are too old to use at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at()
    }

    /// Whether we can still send with these keys at `now`.
    pub fn can_send(&self, now: Instant) -> bool {
        !self.is_expired(now) && self.send_counter() < REJECT_AFTER_MESSAGES
    }

    /// The counter the next encryption will use.
    pub fn send_counter(&self) -> u64 {
        self.send_counter.load(Ordering::Relaxed)
    }

    /// Jumps the sending counter (tests of the message-count limits).
    #[cfg(test)]
    pub(crate) fn set_send_counter(&self, counter: u64) {
        self.send_counter.store(counter, Ordering::Relaxed);
    }

    /// Appends one transport message carrying `plaintext` (zero-padded to a
    /// multiple of 16) to `out`. The caller checked [`Keypair::can_send`].
    pub(crate) fn encrypt(&self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), WgError> {
        let start = out.len();
        let padded = padded_len(plaintext.len());
        out.resize(start + DATA_HEADER_LEN + padded + TAG_LEN, 0);
        out[start + DATA_HEADER_LEN..start + DATA_HEADER_LEN + plaintext.len()]
            .copy_from_slice(plaintext);
        match self.seal(&mut out[start..], plaintext.len()) {
            Ok(_) => Ok(()),
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// Encrypts in place: `buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len]` holds
    /// the plaintext and `buf` is long enough for the padding and the tag
    /// ([`sealed_len`] of `len`). Writes the header, pads, encrypts, appends
    /// the tag and returns the datagram's length (`buf[..n]`). Reserves a
    /// counter with one atomic add; safe from any thread.
    pub fn seal(&self, buf: &mut [u8], len: usize) -> Result<usize, WgError> {
        let total = sealed_len(len);
        if buf.len() < total {
            return Err(WgError::TooLarge);
        }
        let counter = self.send_counter.fetch_add(1, Ordering::Relaxed);
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(WgError::CounterExhausted);
        }
        let slot = self.frame(buf, counter, len);
        let (body, tag) = slot.split_at_mut(slot.len() - TAG_LEN);
        let t = self
            .send
            .seal(counter, body)
            .map_err(|_| WgError::TooLarge)?;
        tag.copy_from_slice(&t);
        Ok(total)
    }

    /// Writes the type-4 header for `counter` and zero-pads the `len`-byte
    /// plaintext at `buf[DATA_HEADER_LEN..]`; returns the padded plaintext
    /// followed by the tag's room. `buf` holds at least [`sealed_len`] of
    /// `len` bytes (the callers checked).
    fn frame<'b>(&self, buf: &'b mut [u8], counter: u64, len: usize) -> &'b mut [u8] {
        let total = sealed_len(len);
        buf[0..4].copy_from_slice(&TYPE_DATA.to_le_bytes());
        buf[4..8].copy_from_slice(&self.remote_index.to_le_bytes());
        buf[8..16].copy_from_slice(&counter.to_le_bytes());
        buf[DATA_HEADER_LEN + len..total - TAG_LEN].fill(0);
        &mut buf[DATA_HEADER_LEN..total]
    }

    /// Seals several packets in place, each as [`Keypair::seal`] would
    /// (same slot layout, consecutive counters), overlapping their
    /// encryption. Every slot must be at least [`sealed_len`] of its length
    /// long (panics otherwise: the caller sized the slots). All or nothing:
    /// on `Err` (the counters ran out) no slot was sealed.
    pub fn seal_all<'a>(
        &self,
        slots: impl ExactSizeIterator<Item = (&'a mut [u8], usize)>,
    ) -> Result<(), WgError> {
        let n = slots.len() as u64;
        let base = self.send_counter.fetch_add(n, Ordering::Relaxed);
        if base
            .checked_add(n)
            .is_none_or(|end| end > REJECT_AFTER_MESSAGES)
        {
            return Err(WgError::CounterExhausted);
        }
        let items = slots.enumerate().map(|(i, (buf, len))| {
            let counter = base + i as u64;
            assert!(
                buf.len() >= sealed_len(len),
                "seal_all: slot too small for its packet"
            );
            (counter, self.frame(buf, counter, len))
        });
        self.send.seal_each(items);
        Ok(())
    }

    /// Authenticates and decrypts `payload` (ciphertext ‖ tag) sent with
    /// `counter` into `out` (which the caller cleared), then records the
    /// counter. On error `out` is left empty and no state changes.
    pub(crate) fn decrypt(
        &self,
        now: Instant,
        counter: u64,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WgError> {
        out.extend_from_slice(payload);
        match self.open_in_place(now, counter, out) {
            Ok(len) => {
                out.truncate(len);
                Ok(())
            }
            Err(e) => {
                out.clear();
                Err(e)
            }
        }
    }

    /// Decrypts a whole type-4 datagram in place (the caller read the
    /// receiver index and picked this keypair): on success the padded
    /// plaintext is `datagram[DATA_HEADER_LEN..DATA_HEADER_LEN + n]` and `n`
    /// is returned. The replay window is checked before and updated after
    /// authentication; an error changes nothing.
    pub fn open(&self, now: Instant, datagram: &mut [u8]) -> Result<usize, WgError> {
        if datagram.len() < DATA_HEADER_LEN + TAG_LEN {
            return Err(WgError::Truncated);
        }
        let mut c = [0u8; 8];
        c.copy_from_slice(&datagram[8..16]);
        let counter = u64::from_le_bytes(c);
        self.open_in_place(now, counter, &mut datagram[DATA_HEADER_LEN..])
    }

    /// Opens up to 64 type-4 datagrams for this keypair in place, each as
    /// [`Keypair::open`] would (expiry, replay window checked before and
    /// updated after authentication), overlapping their decryption. Bit `i`
    /// of the result is set when datagram `i` opened; its padded plaintext
    /// is then `datagram[DATA_HEADER_LEN..len - TAG_LEN]`. Datagrams past
    /// the 64th are left alone (not opened).
    pub fn open_all<'a>(&self, now: Instant, datagrams: impl Iterator<Item = &'a mut [u8]>) -> u64 {
        if self.is_expired(now) {
            return 0;
        }
        let counters: [Cell<u64>; 64] = std::array::from_fn(|_| Cell::new(0));
        let opened = Cell::new(0u64);
        let items = datagrams.take(64).enumerate().filter_map(|(i, d)| {
            if d.len() < DATA_HEADER_LEN + TAG_LEN {
                return None;
            }
            let mut c = [0u8; 8];
            c.copy_from_slice(&d[8..16]);
            let counter = u64::from_le_bytes(c);
            if counter >= REJECT_AFTER_MESSAGES || !self.replay().check(counter) {
                return None;
            }
            counters[i].set(counter);
            Some((i, counter, &mut d[DATA_HEADER_LEN..]))
        });
        self.recv.open_each(items, |i, ok| {
            if ok && self.replay().update(counters[i].get()) {
                opened.set(opened.get() | 1 << i);
            }
        });
        opened.get()
    }

    fn open_in_place(
        &self,
        now: Instant,
        counter: u64,
        payload: &mut [u8],
    ) -> Result<usize, WgError> {
        if self.is_expired(now) {
            return Err(WgError::KeyExpired);
        }
        if counter >= REJECT_AFTER_MESSAGES || !self.replay().check(counter) {
            return Err(WgError::Replay);
        }
        let len = self
            .recv
            .open(counter, payload)
            .map_err(|_| WgError::Decrypt)?;
        if !self.replay().update(counter) {
            return Err(WgError::Replay);
        }
        Ok(len)
    }

    fn replay(&self) -> std::sync::MutexGuard<'_, ReplayWindow> {
        // A panic while holding the lock cannot leave the window half
        // updated in a way that admits replays (updates are single stores),
        // so a poisoned lock is still usable.
        self.replay.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Length of the type-4 datagram carrying a `len`-byte plaintext.
pub fn sealed_len(len: usize) -> usize {
    DATA_HEADER_LEN + padded_len(len) + TAG_LEN
}
