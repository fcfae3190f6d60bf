//! Inline rejection on the receive path ([`check`]): what the published
//! tables could not open is looked at before anything is copied into a
//! slow-path queue, as WireGuard's receive path does. A datagram whose
//! size is wrong for its message type (initiation 148 bytes, response 92,
//! cookie reply 64, transport at least 32), whose type is unknown, or that
//! is a transport message for a receiver index this node has not handed
//! out is counted ([`Rejected`]) and dropped on the spot: a flood of junk
//! costs a few comparisons per datagram and no memory.
//!
//! The tables hold the node's published keypairs only. The other indices a
//! peer may rightly send transport messages to are the ones this node just
//! handed out in a handshake response (the responder's keypair is confirmed
//! by the initiator's first transport message, which the node must see)
//! or in an initiation (the responder may send as soon as it answered,
//! before the event loop has published the keypair the response
//! completed). The event loop notes the sender index of every initiation
//! and response it sends directly ([`PendingIndices::note_sent`]);
//! transport messages for those indices go on to the node for
//! [`PENDING_FOR`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Bytes of a handshake initiation (type 1).
pub(crate) const INITIATION_LEN: usize = 148;
/// Bytes of a handshake response (type 2).
pub(crate) const RESPONSE_LEN: usize = 92;
/// Bytes of a cookie reply (type 3).
pub(crate) const COOKIE_REPLY_LEN: usize = 64;
/// Least bytes of a transport message (type 4): header, counter and tag.
pub(crate) const TRANSPORT_MIN_LEN: usize = 32;

/// How long a receiver index handed out in a response is accepted before
/// the node has confirmed its keypair (the initiator confirms with its
/// first transport message, normally within a round trip; a lost one is
/// followed by a new handshake after REKEY_TIMEOUT + KEEPALIVE, 15 s).
pub(crate) const PENDING_FOR: Duration = Duration::from_secs(30);
/// Responses remembered at once (older ones are overwritten): far more
/// than the handshakes a node completes in [`PENDING_FOR`] with its peers.
const PENDING_SLOTS: usize = 256;

/// Why a datagram was rejected inline (the counters' reason names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// The size is not the one its message type has.
    BadSize,
    /// The first four bytes are not message type 1, 2, 3 or 4 (with the
    /// reserved bytes zero).
    UnknownType,
    /// A transport message for a receiver index this node did not hand
    /// out (or no longer knows).
    UnknownIndex,
}

impl Rejected {
    /// Every reason, in counter order.
    pub(crate) const ALL: [Rejected; 3] = [Self::BadSize, Self::UnknownType, Self::UnknownIndex];

    /// Position in [`Rejected::ALL`].
    pub(crate) const fn index(self) -> usize {
        match self {
            Self::BadSize => 0,
            Self::UnknownType => 1,
            Self::UnknownIndex => 2,
        }
    }

    /// The reason's name in `vine counters`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::BadSize => "bad_size",
            Self::UnknownType => "unknown_type",
            Self::UnknownIndex => "unknown_index",
        }
    }
}

/// Whether a datagram the tables returned as `Slow` may go on to the node.
/// `pending` holds the indices of responses just sent.
pub(crate) fn check(
    datagram: &[u8],
    pending: &PendingIndices,
    now: Instant,
) -> Result<(), Rejected> {
    let Some(header) = datagram.get(..4) else {
        return Err(Rejected::BadSize);
    };
    let size_ok = match u32::from_le_bytes([header[0], header[1], header[2], header[3]]) {
        1 => datagram.len() == INITIATION_LEN,
        2 => datagram.len() == RESPONSE_LEN,
        3 => datagram.len() == COOKIE_REPLY_LEN,
        4 => {
            if datagram.len() < TRANSPORT_MIN_LEN {
                return Err(Rejected::BadSize);
            }
            let index = u32::from_le_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
            // The tables know every confirmed index: a transport message
            // reaches here only for an unknown or a just-handed-out one.
            return if pending.contains(index, now) {
                Ok(())
            } else {
                Err(Rejected::UnknownIndex)
            };
        }
        _ => return Err(Rejected::UnknownType),
    };
    if size_ok {
        Ok(())
    } else {
        Err(Rejected::BadSize)
    }
}

/// The receiver indices of the handshake responses this node sent in the
/// last [`PENDING_FOR`]: written by the event loop (the only writer), read
/// by the receive path without a lock.
///
/// Each slot holds `index | (expiry in seconds since `epoch`, + 1) << 32`;
/// zero is empty.
#[derive(Debug)]
pub(crate) struct PendingIndices {
    epoch: Instant,
    slots: [AtomicU64; PENDING_SLOTS],
    next: AtomicUsize,
}

impl PendingIndices {
    /// An empty set; times are measured from `epoch`.
    pub(crate) fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            next: AtomicUsize::new(0),
        }
    }

    /// Notes a datagram the node sends directly: a handshake response
    /// hands out its sender index.
    pub(crate) fn note_sent(&self, datagram: &[u8], now: Instant) {
        let response = datagram.len() == RESPONSE_LEN && datagram[..4] == [2, 0, 0, 0];
        let initiation = datagram.len() == INITIATION_LEN && datagram[..4] == [1, 0, 0, 0];
        if !(response || initiation) {
            return;
        }
        let index = u32::from_le_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
        let expiry = self.seconds(now + PENDING_FOR) + 1;
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % PENDING_SLOTS;
        self.slots[slot].store(u64::from(index) | (expiry << 32), Ordering::Release);
    }

    /// Whether `index` was handed out in a response that is still pending
    /// at `now`.
    pub(crate) fn contains(&self, index: u32, now: Instant) -> bool {
        let now = self.seconds(now) + 1;
        self.slots.iter().any(|slot| {
            let v = slot.load(Ordering::Acquire);
            v != 0 && v as u32 == index && (v >> 32) >= now
        })
    }

    fn seconds(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, len: usize) -> Vec<u8> {
        let mut m = vec![0xa5; len.max(4)];
        m[..4].copy_from_slice(&[kind, 0, 0, 0]);
        m.truncate(len);
        m
    }

    fn response(sender: u32) -> Vec<u8> {
        let mut m = message(2, RESPONSE_LEN);
        m[4..8].copy_from_slice(&sender.to_le_bytes());
        m
    }

    fn transport(receiver: u32, len: usize) -> Vec<u8> {
        let mut m = message(4, len);
        m[4..8].copy_from_slice(&receiver.to_le_bytes());
        m
    }

    #[test]
    fn handshake_messages_pass_only_at_their_exact_size() {
        let t0 = Instant::now();
        let pending = PendingIndices::new(t0);
        for (kind, len) in [
            (1, INITIATION_LEN),
            (2, RESPONSE_LEN),
            (3, COOKIE_REPLY_LEN),
        ] {
            assert_eq!(
                check(&message(kind, len), &pending, t0),
                Ok(()),
                "type {kind}"
            );
            for wrong in [0, 3, 4, len - 1, len + 1, 65_535] {
                assert_eq!(
                    check(&message(kind, wrong), &pending, t0),
                    Err(Rejected::BadSize),
                    "type {kind}, {wrong} bytes"
                );
            }
        }
    }

    #[test]
    fn unknown_types_and_nonzero_reserved_bytes_are_rejected() {
        let t0 = Instant::now();
        let pending = PendingIndices::new(t0);
        for kind in [0u8, 5, 0x40, 0xc1, 0xff] {
            assert_eq!(
                check(&message(kind, 148), &pending, t0),
                Err(Rejected::UnknownType)
            );
        }
        let mut reserved = message(1, INITIATION_LEN);
        reserved[2] = 1;
        assert_eq!(check(&reserved, &pending, t0), Err(Rejected::UnknownType));
    }

    #[test]
    fn transport_needs_its_minimum_size_and_a_handed_out_index() {
        let t0 = Instant::now();
        let pending = PendingIndices::new(t0);
        assert_eq!(
            check(&transport(7, TRANSPORT_MIN_LEN - 1), &pending, t0),
            Err(Rejected::BadSize)
        );
        assert_eq!(
            check(&transport(7, TRANSPORT_MIN_LEN), &pending, t0),
            Err(Rejected::UnknownIndex)
        );
        pending.note_sent(&response(7), t0);
        for len in [TRANSPORT_MIN_LEN, 1500, 65_535] {
            assert_eq!(check(&transport(7, len), &pending, t0), Ok(()));
        }
        assert_eq!(
            check(&transport(8, 64), &pending, t0),
            Err(Rejected::UnknownIndex),
            "only the index handed out"
        );
        // Index 0 is a real index, not the empty slot.
        assert_eq!(
            check(&transport(0, 64), &pending, t0),
            Err(Rejected::UnknownIndex)
        );
        pending.note_sent(&response(0), t0);
        assert_eq!(check(&transport(0, 64), &pending, t0), Ok(()));
    }

    #[test]
    fn pending_indices_expire_and_old_ones_are_overwritten() {
        let t0 = Instant::now();
        let pending = PendingIndices::new(t0);
        pending.note_sent(&response(42), t0);
        assert!(pending.contains(42, t0 + PENDING_FOR - Duration::from_secs(1)));
        assert!(!pending.contains(42, t0 + PENDING_FOR + Duration::from_secs(2)));
        // An initiation's sender index counts too: the responder's first
        // transport messages come to it, possibly before the event loop
        // has published the keypair the response completed.
        let mut initiation = message(1, INITIATION_LEN);
        initiation[4..8].copy_from_slice(&9u32.to_le_bytes());
        pending.note_sent(&initiation, t0);
        assert!(pending.contains(9, t0));
        // Anything else (a cookie reply, transport) hands out nothing.
        let mut cookie = message(3, COOKIE_REPLY_LEN);
        cookie[4..8].copy_from_slice(&11u32.to_le_bytes());
        pending.note_sent(&cookie, t0);
        assert!(!pending.contains(11, t0));
        for i in 0..PENDING_SLOTS as u32 {
            pending.note_sent(&response(1000 + i), t0);
        }
        assert!(!pending.contains(42, t0), "overwritten by newer responses");
        assert!(pending.contains(1000, t0) && pending.contains(1255, t0));
    }
}
