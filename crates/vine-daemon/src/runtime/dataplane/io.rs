//! The dataplane's small IO helpers: where a drain of the TUN device sends
//! what it sealed ([`Egress`]), one batched UDP send ([`send_datagrams`]),
//! and which errors only mean "nothing there yet" ([`is_idle`]).

use std::io;
use std::net::SocketAddrV4;
use std::time::Instant;

use tracing::{debug, info};
use vine_linux::udp::{SendScratch, UdpBatch};

pub(super) fn is_idle(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

pub(super) fn send_datagrams(
    udp: &UdpBatch,
    datagrams: &[(SocketAddrV4, &[u8])],
    scratch: &mut SendScratch,
) {
    match udp.send_batch(datagrams, scratch) {
        Ok(report) => {
            if report.gso_disabled {
                info!("the kernel refused UDP GSO; sending one datagram per packet");
            }
            if report.dropped > 0 {
                debug!(dropped = report.dropped, "UDP send dropped datagrams");
            }
        }
        Err(e) => debug!("UDP send: {e}"),
    }
}

/// Where a drain of the TUN device sends what it sealed.
pub(super) trait Egress {
    /// Sends `datagrams`.
    fn send(
        &mut self,
        datagrams: &[(SocketAddrV4, &[u8])],
        scratch: &mut SendScratch,
        now: Instant,
    );
}

impl Egress for &UdpBatch {
    fn send(
        &mut self,
        datagrams: &[(SocketAddrV4, &[u8])],
        scratch: &mut SendScratch,
        _now: Instant,
    ) {
        send_datagrams(self, datagrams, scratch);
    }
}
