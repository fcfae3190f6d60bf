//! What the dataplane hands to the event loop ([`SlowPath`]) and how,
//! without ever blocking a dataplane thread ([`hand_over`]).

use std::net::SocketAddrV4;

use vine_core::PeerId;
use vine_core::dataplane::DataPlane;
use vine_core::node::DropReason;

use super::slow_queues::{Pushed, SlowQueues};

/// Work the dataplane hands to the event loop.
#[derive(Debug)]
pub(crate) enum SlowPath {
    /// A packet read from the TUN that the node must route (no session
    /// yet, relayed path, queueing).
    Tun(Vec<u8>),
    /// A datagram the dataplane could not open but that passed the inline
    /// checks (a handshake message, the first transport message on new
    /// keys).
    Datagram(SocketAddrV4, Vec<u8>),
    /// A transport message the dataplane decrypted for the node (control
    /// or relay frame, keepalive, data from a new address).
    Plain(SocketAddrV4, PeerId, Vec<u8>),
}

impl SlowPath {
    /// Bytes of payload it carries.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Tun(b) | Self::Datagram(_, b) | Self::Plain(_, _, b) => b.len(),
        }
    }
}

/// Hands work to the event loop without ever blocking a dataplane thread;
/// when its queue is full, the work is dropped and counted (on the queue,
/// and node-wide as `queue_full`). False when the event loop is gone.
pub(super) fn hand_over(slow: &SlowQueues, plane: &DataPlane, work: SlowPath) -> bool {
    match slow.push(work) {
        Pushed::Queued => true,
        Pushed::Full => {
            plane.add_drop(DropReason::QueueFull);
            true
        }
        Pushed::Closed => false,
    }
}
