//! The one-thread dataplane's UDP sockets: the node's bound socket and a
//! connected one per endpoint it talks to.
//!
//! Sending from an unconnected socket makes the kernel look up a route for
//! every `sendmmsg`, and a datagram that arrives for it goes through a
//! route lookup for input and a socket lookup by port. A socket connected
//! to the peer's endpoint skips all three: it keeps its route, and
//! arriving datagrams find it by their four addresses before routing
//! (early demux). On this VM, where each lookup after an idle moment
//! misses the cache, a UDP ping-pong between two namespaces takes about
//! 95–100 µs with connected sockets against 115 µs without (measured with
//! a small C program, 300 round trips after 20 ms pauses).
//!
//! The connected sockets share the bound socket's address and port
//! (`SO_REUSEPORT`, which the bound socket turns on only after binding, so
//! a port in use is still an error at start). The kernel hands a peer's
//! datagrams to its connected socket, the better match, and everyone
//! else's to the bound one, so the thread reads them all: a datagram is
//! handled the same whichever socket it came in on. At most
//! [`MAX_CONNECTED`] exist; one unused for [`IDLE_CLOSE`] is closed (its
//! peer's datagrams reach the bound socket again). When one cannot be
//! made, sends go out of the bound socket as before, and that endpoint is
//! not tried again for [`RETRY_AFTER`]. `VINE_CONNECTED_SOCKETS=0` turns
//! them off.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use tracing::{debug, info};
use vine_linux::udp::{SendScratch, UdpBatch};

use super::io::{Egress, send_datagrams};

/// Socket buffer size asked for, for the bound socket and every connected
/// one (the kernel may clamp it without *FORCE).
pub(crate) const SOCKET_BUFFER: usize = 8 << 20;
/// Most connected sockets at once.
pub(crate) const MAX_CONNECTED: usize = 16;
/// A connected socket nothing went through for this long is closed.
pub(crate) const IDLE_CLOSE: Duration = Duration::from_secs(60);
/// An endpoint whose socket could not be made is not tried again before.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(10);
/// How often idle sockets are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Conn {
    udp: UdpBatch,
    /// When it was last seen in use (brought up to date by `sweep`).
    used: Instant,
    /// Something was received on it since the last sweep.
    received: bool,
}

/// The bound socket (index 0) and the connected ones (1..).
pub(crate) struct Sockets {
    main: UdpBatch,
    conns: Vec<Conn>,
    buffer: usize,
    enabled: bool,
    failed: Vec<(SocketAddrV4, Instant)>,
    swept: Instant,
}

impl Sockets {
    pub(crate) fn new(main: UdpBatch, buffer: usize, enabled: bool, now: Instant) -> Self {
        Self {
            main,
            conns: Vec::new(),
            buffer,
            enabled,
            failed: Vec::new(),
            swept: now,
        }
    }

    /// Whether `VINE_CONNECTED_SOCKETS` (unset: on) allows them; `Err` with
    /// a message for a value that is neither 0 nor 1.
    pub(crate) fn enabled_from(value: Option<&str>) -> Result<bool, String> {
        match value.map(str::trim) {
            None | Some("1") => Ok(true),
            Some("0") => Ok(false),
            Some(v) => Err(format!(
                "VINE_CONNECTED_SOCKETS={v:?} is neither 0 (send from the bound socket only) nor 1; \
                 using 1"
            )),
        }
    }

    /// How many sockets there are (the bound one included).
    pub(crate) fn len(&self) -> usize {
        1 + self.conns.len()
    }

    /// Socket `i` (0: the bound one).
    pub(crate) fn get(&self, i: usize) -> &UdpBatch {
        if i == 0 {
            &self.main
        } else {
            &self.conns[i - 1].udp
        }
    }

    /// Something was received on socket `i` (no clock read here: `sweep`
    /// dates it).
    pub(crate) fn used(&mut self, i: usize) {
        if let Some(c) = i.checked_sub(1).and_then(|j| self.conns.get_mut(j)) {
            c.received = true;
        }
    }

    /// The socket for sending to `dst`: its connected one, made now if
    /// there is none yet and one may be (a new descriptor the caller then
    /// polls too: [`Sockets::len`] grew); else the bound one.
    fn for_dst(&mut self, dst: SocketAddrV4, now: Instant) -> &UdpBatch {
        if let Some(j) = self.conns.iter().position(|c| c.udp.peer() == Some(dst)) {
            self.conns[j].used = now;
            return &self.conns[j].udp;
        }
        if !self.enabled || self.conns.len() >= MAX_CONNECTED || dst.port() == 0 {
            return &self.main;
        }
        self.failed
            .retain(|&(_, when)| now.saturating_duration_since(when) < RETRY_AFTER);
        if self.failed.iter().any(|&(d, _)| d == dst) {
            return &self.main;
        }
        match self.main.connect_to(dst, self.buffer) {
            Ok(udp) => {
                debug!(%dst, "data plane: connected socket for this endpoint");
                self.conns.push(Conn {
                    udp,
                    used: now,
                    received: false,
                });
                &self.conns[self.conns.len() - 1].udp
            }
            Err(e) => {
                if self.failed.is_empty() && self.conns.is_empty() {
                    info!(
                        %dst,
                        "data plane: no connected socket ({e}); sending from the bound socket"
                    );
                } else {
                    debug!(%dst, "data plane: no connected socket: {e}");
                }
                if self.failed.len() >= MAX_CONNECTED {
                    self.failed.remove(0);
                }
                self.failed.push((dst, now));
                &self.main
            }
        }
    }

    /// Sends `datagrams` (in order per destination), each run to one
    /// destination from that destination's socket.
    pub(crate) fn send(
        &mut self,
        datagrams: &[(SocketAddrV4, &[u8])],
        scratch: &mut SendScratch,
        now: Instant,
    ) {
        let mut start = 0;
        while start < datagrams.len() {
            let dst = datagrams[start].0;
            let end = datagrams[start..]
                .iter()
                .position(|&(d, _)| d != dst)
                .map_or(datagrams.len(), |n| start + n);
            send_datagrams(self.for_dst(dst, now), &datagrams[start..end], scratch);
            start = end;
        }
    }

    /// Dates what was received since the last sweep and closes connected
    /// sockets unused for [`IDLE_CLOSE`] (at most every second). Socket
    /// indices move, so call it only when nothing is pending.
    pub(crate) fn sweep(&mut self, now: Instant) {
        if now.saturating_duration_since(self.swept) < SWEEP_EVERY {
            return;
        }
        self.swept = now;
        for c in &mut self.conns {
            if std::mem::take(&mut c.received) {
                c.used = now;
            }
        }
        self.conns
            .retain(|c| now.saturating_duration_since(c.used) < IDLE_CLOSE);
    }
}

impl Egress for Sockets {
    fn send(
        &mut self,
        datagrams: &[(SocketAddrV4, &[u8])],
        scratch: &mut SendScratch,
        now: Instant,
    ) {
        Sockets::send(self, datagrams, scratch, now);
    }
}
