//! Transport keypairs: the two ChaCha20-Poly1305 keys a handshake yields,
//! the sending counter, the receive replay window, and the in-place
//! encryption and decryption of type-4 messages.

use std::time::Instant;

use ring::aead::{Aad, LessSafeKey};

use super::WgError;
use super::crypto::{KEY_LEN, TAG_LEN, aead_key, nonce};
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

impl Drop for SessionKeys {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.send.zeroize();
        self.recv.zeroize();
    }
}

/// One established session with a peer.
pub(crate) struct Keypair {
    /// Index the peer puts in messages to us (allocated by us).
    pub(crate) local_index: u32,
    /// Index we put in messages to the peer (allocated by the peer).
    pub(crate) remote_index: u32,
    /// When the handshake that made it completed.
    pub(crate) created: Instant,
    /// Whether we initiated that handshake (only initiators rekey on age).
    pub(crate) is_initiator: bool,
    send: LessSafeKey,
    recv: LessSafeKey,
    /// The next counter to send with.
    send_counter: u64,
    replay: ReplayWindow,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("created", &self.created)
            .field("is_initiator", &self.is_initiator)
            .field("send_counter", &self.send_counter)
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
    ) -> Self {
        Self {
            local_index,
            remote_index,
            created,
            is_initiator,
            send: aead_key(&keys.send),
            recv: aead_key(&keys.recv),
            send_counter: 0,
            replay: ReplayWindow::default(),
        }
    }

    /// When these keys stop being usable in either direction.
    pub(crate) fn expires_at(&self) -> Instant {
        self.created + REJECT_AFTER_TIME
    }

    /// Whether the keys are too old to use at `now`.
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at()
    }

    /// Whether we can still send with these keys at `now`.
    pub(crate) fn can_send(&self, now: Instant) -> bool {
        !self.is_expired(now) && self.send_counter < REJECT_AFTER_MESSAGES
    }

    /// The counter the next [`Keypair::encrypt`] will use.
    pub(crate) fn send_counter(&self) -> u64 {
        self.send_counter
    }

    /// Jumps the sending counter (tests of the message-count limits).
    #[cfg(test)]
    pub(crate) fn set_send_counter(&mut self, counter: u64) {
        self.send_counter = counter;
    }

    /// Appends one transport message carrying `plaintext` (zero-padded to a
    /// multiple of 16) to `out`. The caller checked [`Keypair::can_send`].
    pub(crate) fn encrypt(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), WgError> {
        let counter = self.send_counter;
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(WgError::CounterExhausted);
        }
        self.send_counter += 1;
        let start = out.len();
        let padded = padded_len(plaintext.len());
        out.reserve(DATA_HEADER_LEN + padded + TAG_LEN);
        out.extend_from_slice(&TYPE_DATA.to_le_bytes());
        out.extend_from_slice(&self.remote_index.to_le_bytes());
        out.extend_from_slice(&counter.to_le_bytes());
        out.extend_from_slice(plaintext);
        out.resize(start + DATA_HEADER_LEN + padded, 0);
        let sealed = self.send.seal_in_place_separate_tag(
            nonce(counter),
            Aad::empty(),
            &mut out[start + DATA_HEADER_LEN..],
        );
        let Ok(tag) = sealed else {
            out.truncate(start);
            return Err(WgError::TooLarge);
        };
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Authenticates and decrypts `payload` (ciphertext ‖ tag) sent with
    /// `counter` into `out` (which the caller cleared), then records the
    /// counter. On error `out` is left empty and no state changes.
    pub(crate) fn decrypt(
        &mut self,
        now: Instant,
        counter: u64,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WgError> {
        if self.is_expired(now) {
            return Err(WgError::KeyExpired);
        }
        if counter >= REJECT_AFTER_MESSAGES || !self.replay.check(counter) {
            return Err(WgError::Replay);
        }
        out.extend_from_slice(payload);
        let len = match self.recv.open_in_place(nonce(counter), Aad::empty(), out) {
            Ok(plain) => plain.len(),
            Err(_) => {
                out.clear();
                return Err(WgError::Decrypt);
            }
        };
        out.truncate(len);
        if !self.replay.update(counter) {
            out.clear();
            return Err(WgError::Replay);
        }
        Ok(())
    }
}
