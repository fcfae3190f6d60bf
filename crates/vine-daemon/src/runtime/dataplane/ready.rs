//! Which of its descriptors (the TUN device, its UDP sockets) the
//! one-thread dataplane reads next.
//!
//! Every read that finds nothing is a system call spent for nothing, and on
//! the path of a lone packet (a ping, a request) it is latency: in a trace
//! of a ping the loop that tried the socket and the TUN device in turn made
//! three such calls per hop, one of them before the packet was sent. So the
//! thread remembers what it knows: after `poll` only the descriptors it
//! reported are read; a descriptor that said "nothing" (`EAGAIN`) is not
//! read again until `poll` reports it; and when none is known to have
//! something the thread goes to `poll`, which returns at once if anything
//! came in meanwhile (so a wrong guess costs one call, like the read it
//! replaces, and loses nothing).
//!
//! Two things make a descriptor "maybe ready" without `poll`:
//! - a receive that returned data: more may have come in while it was
//!   handled (bulk traffic), so the socket is read until it is empty;
//! - a write to the TUN device: the kernel may queue its answer (an echo
//!   reply, a TCP ACK) during the write, so the device is read next.
//!
//! A drain of the device that stopped at its limit rather than at `EAGAIN`
//! leaves it maybe ready too.
//!
//! One exception to "read until empty": a burst that began after the thread
//! was idle and so far consists of lone packets (one datagram per receive,
//! one packet per read of the device) is taken to be what it most likely
//! is, a ping or a request and its answer, so nothing more is read on
//! speculation. That matters most when both ends share a CPU, as in a test
//! between namespaces: the packet just sent makes the other end runnable
//! on this CPU, and every call this thread still makes before it sleeps is
//! time the answer waits. A wrong guess costs one `poll`, which returns at
//! once, and ends the exception for the burst (the wait was not idle).

/// What the thread knows about its descriptors: the TUN device and its UDP
/// sockets (bit `i` of `udp` for socket `i`, see `sockets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ready {
    /// The sockets that may have datagrams.
    pub(crate) udp: u32,
    /// The TUN device may have packets.
    pub(crate) tun: bool,
}

impl Ready {
    /// Nothing is known about any of `sockets` sockets or the device: try
    /// them all.
    pub(crate) const fn unknown(sockets: usize) -> Self {
        Self {
            udp: all(sockets),
            tun: true,
        }
    }

    /// From what `poll` reported (any event counts: an error or hang-up is
    /// read so that the read reports it, or `poll` would report it forever).
    pub(crate) const fn polled(tun: bool, udp: u32) -> Self {
        Self { udp, tun }
    }

    /// Neither the device nor any socket is known to have something: time
    /// to `poll`.
    pub(crate) const fn idle(self) -> bool {
        self.udp == 0 && !self.tun
    }

    /// Whether socket `i` may have datagrams.
    pub(crate) const fn socket(self, i: usize) -> bool {
        i < 32 && self.udp >> i & 1 == 1
    }

    /// Socket `i` was just made: it may have datagrams.
    pub(crate) fn added(&mut self, i: usize) {
        if i < 32 {
            self.udp |= 1 << i;
        }
    }

    /// A receive on socket `i` returned `got` messages (0 for `EAGAIN`);
    /// what they carried was written to the TUN device when `got > 0`.
    /// `lone`: it was one datagram in a burst of lone packets after idle.
    pub(crate) fn received(&mut self, i: usize, got: usize, lone: bool) {
        if i >= 32 {
            return;
        }
        if got > 0 && !lone {
            self.udp |= 1 << i;
        } else {
            self.udp &= !(1 << i);
        }
        if got > 0 {
            self.tun = true;
        }
    }

    /// How many packets the next drain of the device may read: one in a
    /// burst of lone packets after idle (`sparse`), else `max`.
    pub(crate) const fn drain_limit(sparse: bool, max: usize) -> usize {
        if sparse { 1 } else { max }
    }

    /// A drain of the TUN device read `read` packets with a limit of
    /// `limit` reads: fewer means it stopped at `EAGAIN` (or at packets it
    /// could not use, which `poll` then reports again). In a `sparse`
    /// burst the one packet it read is taken to be all there was.
    pub(crate) fn drained(&mut self, read: usize, limit: usize, sparse: bool) {
        self.tun = !sparse && read >= limit;
    }
}

/// The bits of the first `n` sockets.
const fn all(n: usize) -> u32 {
    if n >= 32 { u32::MAX } else { (1 << n) - 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_outbound_packet_costs_no_read_of_the_socket() {
        // poll: the TUN device has the packet.
        let mut r = Ready::polled(true, 0);
        assert!(r.udp == 0 && r.tun);
        r.drained(1, 8, false);
        assert!(r.idle(), "after the drain found EAGAIN, poll");
    }

    #[test]
    fn after_idle_a_lone_packet_is_not_followed_by_reads_on_speculation() {
        // The answering end: a lone datagram, its answer read from the device.
        let mut r = Ready::polled(false, 1);
        r.received(0, 1, true);
        assert!(
            !r.socket(0),
            "a lone datagram after idle: no second receive"
        );
        assert!(r.tun, "but the answer the write queued is read");
        let limit = Ready::drain_limit(true, 8);
        assert_eq!(limit, 1);
        r.drained(1, limit, true);
        assert!(r.idle(), "straight back to poll once the answer is sent");
        // Outside such a burst the device is read until it is empty.
        assert_eq!(Ready::drain_limit(false, 8), 8);
        let mut r = Ready::polled(true, 0);
        r.drained(8, 8, false);
        assert!(r.tun);
    }

    #[test]
    fn in_a_busy_burst_an_inbound_packet_reads_the_device_then_the_socket_again() {
        let mut r = Ready::polled(false, 1);
        r.received(0, 1, false);
        assert!(r.tun, "the write may have queued an answer");
        assert!(r.socket(0), "more may have arrived while it was handled");
        r.drained(1, 8, false);
        assert!(!r.tun);
        r.received(0, 0, false);
        assert!(r.idle());
    }

    #[test]
    fn a_drain_cut_off_by_its_limit_goes_on_and_a_failed_receive_waits_for_poll() {
        let mut r = Ready::unknown(1);
        r.drained(8, 8, false);
        assert!(r.tun);
        r.received(0, 0, false);
        assert!(!r.socket(0));
        assert!(!r.idle());
        r.drained(0, 8, false);
        assert!(r.idle());
    }

    #[test]
    fn each_socket_has_its_own_bit() {
        let mut r = Ready::unknown(3);
        assert_eq!(r.udp, 0b111);
        r.tun = false;
        r.received(1, 0, false);
        assert!(r.socket(0) && !r.socket(1) && r.socket(2));
        r.received(0, 0, false);
        r.received(2, 0, false);
        assert!(r.idle());
        r.added(3);
        assert!(r.socket(3) && !r.idle());
        r.received(3, 2, false);
        assert!(
            r.socket(3) && r.tun,
            "data came, and was written to the device"
        );
        assert_eq!(Ready::unknown(40).udp, u32::MAX);
        assert!(!Ready::unknown(40).socket(33));
    }
}
