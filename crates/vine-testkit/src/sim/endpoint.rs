//! The [`Endpoint`] trait the simulator drives, and the datagrams
//! ([`Transmit`]) it sends.

use std::net::SocketAddrV4;
use std::time::Instant;

/// A sans-IO UDP endpoint (one host's protocol state machine) driven by the
/// simulator.
///
/// The simulator calls `handle_*` with the current virtual time, then drains
/// [`poll_transmit`](Endpoint::poll_transmit) and re-reads
/// [`poll_timeout`](Endpoint::poll_timeout). It does the same for a host
/// whose endpoint a test borrowed through [`Network::endpoint_mut`](super::Network::endpoint_mut).
pub trait Endpoint {
    /// A UDP datagram arrived at this host's socket (`local` = the host's own ip:port) from `from` (as seen after any NAT).
    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        from: SocketAddrV4,
        data: &[u8],
    );
    /// The deadline last returned by [`poll_timeout`](Endpoint::poll_timeout)
    /// has passed; `now` is at or after it.
    fn handle_timeout(&mut self, now: Instant);
    /// The next datagram to send from the host's socket, if any.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When [`handle_timeout`](Endpoint::handle_timeout) should next be
    /// called. Once handled, a deadline must move past the current time: an
    /// endpoint that keeps asking to be woken at or before `now` without
    /// making progress is reported with a panic.
    fn poll_timeout(&self) -> Option<Instant>;
}

impl<T: Endpoint + ?Sized> Endpoint for Box<T> {
    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        from: SocketAddrV4,
        data: &[u8],
    ) {
        (**self).handle_datagram(now, local, from, data);
    }

    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        (**self).poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
}

/// A datagram an [`Endpoint`] wants sent from its host's one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it, as the endpoint addresses it.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub data: Vec<u8>,
}
