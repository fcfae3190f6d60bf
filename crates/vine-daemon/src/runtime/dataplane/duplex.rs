//! The one-thread loop ([`Duplex`]): both directions on one thread.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};
use vine_linux::tun::offload::Coalescer;
use vine_linux::udp::RecvBatch;

use super::busy_poll::{self, BusyPoll};
use super::io::is_idle;
use super::ready::Ready;
use super::rx::{COALESCE_PACKETS, RX_BATCH, RX_POLL, Rx};
use super::sockets::{SOCKET_BUFFER, Sockets};
use super::stream_spin::StreamSpin;
use super::tuning::DataplaneTuning;
use super::tx::TX_DRAIN;
use super::vnet_pump::VnetPump;

/// Both directions on one thread: it polls the TUN device and the UDP
/// socket together and serves whichever is ready, so a packet and the
/// answer it provokes never cost a wake-up of a second thread. Used when
/// the machine has too few cores for a thread per direction to pay (see
/// [`threads_for`](super::threads_for)); needs the TUN offloads (vnet headers). Before it
/// sleeps it may poll for a while instead: after a lone request, for the
/// answer ([`BusyPoll`]), and between the bursts of a stream
/// ([`StreamSpin`]).
///
/// Both spins are off with `VINE_BUSY_POLL_US=0` and `VINE_STREAM_SPIN_US=0`
/// (see [`DataplaneTuning`]).
pub(super) struct Duplex {
    pub(super) rx: Rx,
    pub(super) tuning: DataplaneTuning,
}

impl Duplex {
    pub(super) fn run(mut self) {
        let Some(offloads) = self.rx.device.offloads() else {
            error!("one-thread data plane started without TUN offloads; overlay traffic stops");
            return;
        };
        let mut gro = Coalescer::new(COALESCE_PACKETS, offloads.uso).trusting_checksums();
        let mut pump = VnetPump::new();
        let mut batch = RecvBatch::new(RX_BATCH);
        let mut failures = 0u32;
        let mut spinner = BusyPoll::new(self.tuning.busy_poll, Instant::now());
        let mut streaming = StreamSpin::new(self.tuning.stream_spin);
        if streaming.limit().is_zero() {
            info!("data plane: no spinning between the bursts of a stream (VINE_STREAM_SPIN_US=0)");
        } else {
            info!(
                "data plane: while traffic streams, polls up to {} µs before sleeping",
                streaming.limit().as_micros()
            );
        }
        if spinner.limit().is_zero() {
            info!("data plane: no busy polling (VINE_BUSY_POLL_US=0)");
        } else {
            info!(
                "data plane: after sending from idle, polls up to {} µs for the answer",
                spinner.limit().as_micros()
            );
        }
        let connect = self.tuning.connected_sockets;
        if !connect {
            info!("data plane: no connected sockets (VINE_CONNECTED_SOCKETS=0)");
        }
        let main = match self.rx.udp.try_clone() {
            Ok(udp) => udp,
            Err(e) => {
                error!("duplicating the UDP socket failed: {e}; overlay traffic stops");
                return;
            }
        };
        let mut sockets = Sockets::new(main, SOCKET_BUFFER, connect, Instant::now());
        // What the current burst (everything since the last wait) did, and
        // whether that wait found the thread idle.
        let mut idle_before = true;
        let (mut burst_rx, mut burst_tx) = (false, false);
        let mut ready = Ready::unknown(sockets.len());
        // The burst began after idle and has been lone packets so far
        // (see `ready`): read nothing on speculation.
        let mut sparse = false;
        while !self.rx.stop.load(Ordering::Relaxed) {
            for i in 0..sockets.len() {
                if !ready.socket(i) {
                    continue;
                }
                match sockets.get(i).try_recv_batch(&mut batch) {
                    Ok(n) => {
                        failures = 0;
                        burst_rx = true;
                        ready.received(i, n, sparse && batch.is_lone());
                        sockets.used(i);
                        if !self.rx.take(&mut batch, n, Some(&mut gro)) {
                            return;
                        }
                    }
                    Err(e) if is_idle(&e) => ready.received(i, 0, false),
                    Err(e) => {
                        failures += 1;
                        if failures == 1 {
                            warn!("UDP receive failed: {e}");
                        }
                        if i == 0 {
                            std::thread::sleep(Duration::from_millis(10));
                        } else {
                            // A connected socket's trouble is its peer's.
                            ready.received(i, 0, false);
                        }
                    }
                }
            }
            if ready.tun {
                let rx = &mut self.rx;
                let limit = Ready::drain_limit(sparse, TX_DRAIN);
                let before = sockets.len();
                let drained = pump.drain(
                    limit,
                    &mut rx.tx_reader,
                    &*rx.device,
                    &mut sockets,
                    &rx.slow,
                );
                // Sockets made for this drain's sends: poll them too.
                (before..sockets.len()).for_each(|i| ready.added(i));
                match drained {
                    Ok(Some(read)) => {
                        burst_tx |= read > 0;
                        ready.drained(read, limit, sparse);
                    }
                    Ok(None) => return,
                    Err(e) => {
                        error!("reading the TUN device failed: {e}; overlay traffic stops");
                        return;
                    }
                }
            }
            if !ready.idle() {
                continue;
            }
            let now = Instant::now();
            // Indices move when a socket closes; nothing is pending now.
            // (Before the spins: a stream that keeps them catching never
            // reaches the blocking wait.)
            sockets.sweep(now);
            if let Some(limit) = spinner.before_wait(now, idle_before, burst_tx, burst_rx) {
                match self.poll(&sockets, Some(limit)) {
                    Ok(seen) => {
                        spinner.after_spin(now.elapsed(), seen.is_some());
                        if let Some(seen) = seen {
                            // The answer came while spinning: the burst goes on.
                            idle_before = false;
                            ready = seen;
                            continue;
                        }
                    }
                    Err(e) => {
                        error!(
                            "polling the TUN device and UDP sockets failed: {e}; overlay traffic stops"
                        );
                        return;
                    }
                }
            }
            if let Some(limit) = streaming.before_wait(burst_rx || burst_tx) {
                match self.poll(&sockets, Some(limit)) {
                    Ok(seen) => {
                        streaming.after_spin(seen.is_some());
                        if let Some(seen) = seen {
                            // The stream goes on: a new burst, no wait.
                            ready = seen;
                            (burst_rx, burst_tx) = (false, false);
                            continue;
                        }
                    }
                    Err(e) => {
                        error!(
                            "polling the TUN device and UDP sockets failed: {e}; overlay traffic stops"
                        );
                        return;
                    }
                }
            }
            let blocked = Instant::now();
            match self.poll(&sockets, None) {
                Ok(seen) => ready = seen.unwrap_or(ready),
                Err(e) => {
                    error!(
                        "waiting for the TUN device and UDP sockets failed: {e}; overlay traffic stops"
                    );
                    return;
                }
            }
            let waited = blocked.elapsed();
            streaming.waited(waited);
            idle_before = waited >= busy_poll::IDLE_AFTER;
            sparse = idle_before;
            burst_rx = false;
            burst_tx = false;
        }
        debug!(
            stream_hits = streaming.hits,
            stream_misses = streaming.misses,
            hits = spinner.hits,
            misses = spinner.misses,
            "data-plane thread stopped (busy polls that saw an answer, and that did not)"
        );
    }

    /// With `spin`, polls without sleeping until the TUN device or a
    /// socket has something to read or `spin` passed; without, sleeps in
    /// `poll` until one of them has (at most [`RX_POLL`]). `Some` with the
    /// descriptors that reported an event, `None` when none did.
    fn poll(&self, sockets: &Sockets, spin: Option<Duration>) -> io::Result<Option<Ready>> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd as _;
        let Some(tun) = self.rx.device.poll_fd() else {
            return Err(io::Error::other("the TUN device has no descriptor to poll"));
        };
        let mut fds = Vec::with_capacity(1 + sockets.len());
        fds.push(PollFd::new(tun, PollFlags::POLLIN));
        fds.extend(
            (0..sockets.len()).map(|i| PollFd::new(sockets.get(i).as_fd(), PollFlags::POLLIN)),
        );
        let seen = |fds: &[PollFd<'_>]| {
            let any = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            let udp = fds[1..]
                .iter()
                .enumerate()
                .filter(|&(i, fd)| i < 32 && any(fd))
                .fold(0u32, |bits, (i, _)| bits | 1 << i);
            Ready::polled(any(&fds[0]), udp)
        };
        let Some(spin) = spin else {
            let timeout = PollTimeout::try_from(RX_POLL).unwrap_or(PollTimeout::MAX);
            return match poll(&mut fds, timeout) {
                Ok(n) if n > 0 => Ok(Some(seen(&fds))),
                Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(None),
                Err(e) => Err(io::Error::from(e)),
            };
        };
        let deadline = Instant::now() + spin;
        loop {
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) if n > 0 => return Ok(Some(seen(&fds))),
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::hint::spin_loop();
        }
    }
}
