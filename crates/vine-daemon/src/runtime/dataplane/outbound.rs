//! Looking up and sealing what the TUN device gave: one packet
//! ([`dispatch`]) or every segment of a super-packet at once
//! ([`seal_super_packet`]).

use std::net::SocketAddrV4;
use std::time::Instant;

use vine_core::dataplane::{Outbound, Reader, Sealed};
use vine_core::wg::{DATA_HEADER_LEN, sealed_len};
use vine_linux::tun::offload::SegmentBuf;

use super::handover::hand_over;
use super::slow_queues::{SlowPath, SlowQueues};

/// Looks up and seals one packet in `slot` (`slot[DATA_HEADER_LEN..][..len]`),
/// recording what to send; false when the event loop is gone.
pub(super) fn dispatch(
    reader: &Reader,
    slow: &SlowQueues,
    now: Instant,
    slot: &mut [u8],
    len: usize,
    index: usize,
    sends: &mut Vec<(usize, SocketAddrV4, usize)>,
) -> bool {
    let packet = DATA_HEADER_LEN..DATA_HEADER_LEN + len;
    match reader.seal_outbound(slot, len, now) {
        Sealed::Send { endpoint, len } => {
            sends.push((index, endpoint, len));
            true
        }
        Sealed::Slow => hand_over(slow, reader.plane(), SlowPath::Tun(slot[packet].to_vec())),
        Sealed::Dropped => true,
    }
}

/// The segments of one super-packet share their IP header's addresses, so
/// one lookup decides for all of them: when it is [`Outbound::Send`], seals
/// them all in one batch (the AEAD overlaps consecutive packets) and
/// records the sends. False (nothing sealed or recorded) when the lookup
/// says anything else or the counters ran out; the caller then dispatches
/// segment by segment.
pub(super) fn seal_super_packet(
    reader: &Reader,
    now: Instant,
    segments: &mut SegmentBuf,
    sends: &mut Vec<(usize, SocketAddrV4, usize)>,
) -> bool {
    if segments.len() < 2 {
        return false;
    }
    let Outbound::Send {
        peer,
        keypair,
        endpoint,
    } = reader.tables().outbound(segments.segment(0), now)
    else {
        return false;
    };
    if keypair.seal_all(segments.slots_mut()).is_err() {
        return false;
    }
    let mut bytes = 0;
    for (i, segment) in segments.iter().enumerate() {
        bytes += segment.len() as u64;
        sends.push((i, endpoint, sealed_len(segment.len())));
    }
    peer.stats.add_sent(segments.len() as u64, bytes);
    true
}
