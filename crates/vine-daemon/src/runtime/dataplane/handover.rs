//! What the dataplane hands to the event loop ([`SlowPath`]) and how,
//! without ever blocking a dataplane thread ([`hand_over`]).

use std::net::SocketAddrV4;

use tokio::sync::mpsc;
use vine_core::PeerId;
use vine_core::dataplane::DataPlane;
use vine_core::node::DropReason;

/// Work the dataplane hands to the event loop.
#[derive(Debug)]
pub(crate) enum SlowPath {
    /// A packet read from the TUN that the node must route (no session
    /// yet, relayed path, queueing).
    Tun(Vec<u8>),
    /// A datagram the dataplane could not open (handshake, unknown index).
    Datagram(SocketAddrV4, Vec<u8>),
    /// A transport message the dataplane decrypted for the node (control
    /// or relay frame, keepalive, data from a new address).
    Plain(SocketAddrV4, PeerId, Vec<u8>),
}

/// Hands work to the event loop without ever blocking a dataplane thread;
/// when the loop is behind, the packet is dropped and counted.
pub(super) fn hand_over(slow: &mpsc::Sender<SlowPath>, plane: &DataPlane, work: SlowPath) -> bool {
    match slow.try_send(work) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            plane.add_drop(DropReason::QueueFull);
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
