//! The dataplane threads: one moves packets TUN → UDP, one UDP → TUN —
//! or, on machines with one or two CPUs, a single thread ([`Duplex`])
//! polls both and does both jobs with the same code (see [`threads_for`]).
//!
//! Both work on the node's published [`Tables`](vine_core::dataplane::Tables)
//! through their own [`Reader`](vine_core::dataplane::Reader) (one atomic load per batch to notice a new
//! generation; no lock per packet), encrypt and decrypt in place in buffers
//! allocated once at startup, and batch their system calls:
//!
//! * **TX**: a blocking read of the TUN device, then every packet already
//!   queued (up to [`TX_BATCH`](tx::TX_BATCH)); each is looked up, sealed in place (the
//!   slot keeps room for the WireGuard header in front and padding + tag
//!   behind) and the whole batch leaves in one `sendmmsg`, runs of equal
//!   size to one peer as UDP GSO super-datagrams.
//! * **RX**: `recvmmsg` (with UDP GRO, one message can hold many
//!   datagrams), each datagram decrypted in place and written to the TUN.
//!
//! Whatever the dataplane does not handle — handshakes, control frames,
//! packets for peers without a session or behind a relay — goes to the
//! event loop as a [`SlowPath`] message, where the [`Node`](vine_core::node::Node)
//! deals with it. That hand-over copies the bytes, but it is rare; what
//! cannot be for the node (wrong sizes, unknown types and indices) is
//! rejected inline first ([`inline`]), and each kind of work waits in its
//! own queue bounded in bytes ([`slow_queues`]).

//!
//! # Files
//!
//! [`tx`] and [`rx`] are the two threads of the two-thread shape,
//! [`duplex`] the one-thread loop; both shapes read the TUN device through
//! [`vnet_pump`] (with offloads) and [`outbound`], hand work over through
//! [`handover`] into [`slow_queues`] (after the receive path's [`inline`]
//! checks) and send through [`io`]; [`token`] serialises the TUN's
//! readers. The one-thread loop's own parts are [`busy_poll`],
//! [`stream_spin`], [`ready`] and [`sockets`]; [`tuning`] holds every knob.

use std::io as stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use tracing::{error, info};
use vine_core::dataplane::DataPlane;
use vine_linux::udp::UdpBatch;

use crate::host::PacketDevice;

mod busy_poll;
mod duplex;
mod handover;
mod inline;
mod io;
mod outbound;
mod ready;
mod rx;
mod slow_queues;
mod sockets;
mod stream_spin;
mod token;
mod tuning;
mod tx;
mod vnet_pump;

use duplex::Duplex;
use rx::{RX_POLL, Rx};
pub(crate) use slow_queues::{Pass, Queue, SlowPath, SlowQueues, SlowReceiver};
pub(crate) use sockets::SOCKET_BUFFER;
use token::TunToken;
pub use tuning::DataplaneTuning;
use tx::Tx;

/// The running dataplane threads.
#[derive(Debug)]
pub(crate) struct Dataplane {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Dataplane {
    /// Starts the TX and RX threads.
    pub(crate) fn spawn(
        plane: &Arc<DataPlane>,
        device: Arc<dyn PacketDevice>,
        udp: &UdpBatch,
        slow: &Arc<SlowQueues>,
        tuning: &DataplaneTuning,
    ) -> stdio::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let token = Arc::new(TunToken::default());
        let rx_udp = udp.try_clone()?;
        rx_udp.set_read_timeout(Some(RX_POLL))?;
        let rx = Rx {
            reader: plane.reader(),
            device: Arc::clone(&device),
            udp: rx_udp,
            slow: Arc::clone(slow),
            stop: Arc::clone(&stop),
            token: Arc::clone(&token),
            tx_reader: plane.reader(),
        };
        let mut threads = Vec::new();
        let tuning = *tuning;
        if threads_for(&*device, tuning.threads) == 1 {
            info!("data plane: one thread for both directions (vine-dp)");
            threads.push(
                std::thread::Builder::new()
                    .name("vine-dp".into())
                    .spawn(move || Duplex { rx, tuning }.run())?,
            );
            return Ok(Self { stop, threads });
        }
        let tx = Tx {
            reader: plane.reader(),
            device,
            udp: udp.try_clone()?,
            slow: Arc::clone(slow),
            stop: Arc::clone(&stop),
            token,
        };
        threads.push(
            std::thread::Builder::new()
                .name("vine-tx".into())
                .spawn(move || tx.run())?,
        );
        info!("data plane: a thread per direction (vine-tx, vine-rx)");
        let spawned = std::thread::Builder::new()
            .name("vine-rx".into())
            .spawn(move || rx.run());
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(Self { stop, threads })
    }

    /// Stops both threads and waits for them (each notices within its poll
    /// interval).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                error!("a data-plane thread panicked");
            }
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How many dataplane threads to run: one per direction, or one for
/// both ([`Duplex`]).
///
/// On a machine with one or two CPUs the kernel work of the TUN and the
/// socket, the application and the two directions all share them; a
/// second thread then buys no parallelism, only wake-ups and context
/// switches (measured with `bench/run.sh` on 2 CPUs: about 8 % less CPU
/// per GB and a lower ping with one thread, throughput the same or
/// better). With more CPUs each direction gets its own thread.
/// `wanted` (from [`DataplaneTuning::threads`]) overrides the choice; one
/// thread needs the TUN offloads (without them it is always two).
pub(crate) fn threads_for(device: &dyn PacketDevice, wanted: Option<usize>) -> usize {
    let wanted = wanted.unwrap_or_else(|| tuning::automatic_threads(tuning::available_cpus()));
    let duplex_ok = device.offloads().is_some() && device.poll_fd().is_some();
    if duplex_ok { wanted } else { 2 }
}
