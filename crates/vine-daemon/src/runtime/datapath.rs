//! The data-plane threads: one moves packets TUN → UDP, one UDP → TUN —
//! or, on machines with one or two CPUs, a single thread ([`Duplex`])
//! polls both and does both jobs with the same code (see [`threads_for`]).
//!
//! Both work on the node's published [`Tables`](vine_core::dataplane::Tables)
//! through their own [`Reader`] (one atomic load per batch to notice a new
//! generation; no lock per packet), encrypt and decrypt in place in buffers
//! allocated once at startup, and batch their system calls:
//!
//! * **TX**: a blocking read of the TUN device, then every packet already
//!   queued (up to [`TX_BATCH`]); each is looked up, sealed in place (the
//!   slot keeps room for the WireGuard header in front and padding + tag
//!   behind) and the whole batch leaves in one `sendmmsg`, runs of equal
//!   size to one peer as UDP GSO super-datagrams.
//! * **RX**: `recvmmsg` (with UDP GRO, one message can hold many
//!   datagrams), each datagram decrypted in place and written to the TUN.
//!
//! Whatever the fast path does not handle — handshakes, control frames,
//! packets for peers without a session or behind a relay — goes to the
//! event loop as a [`SlowPath`] message, where the [`Node`](vine_core::node::Node)
//! deals with it. That hand-over copies the bytes, but it is rare.

use std::io;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};
use vine_core::PeerId;
use vine_core::dataplane::{DataPlane, Inbound, Outbound, Reader, Sealed};
use vine_core::node::DropReason;
use vine_core::wg::{DATA_HEADER_LEN, DATA_OVERHEAD, sealed_len};
use vine_linux::tun::offload::{CoalesceError, Coalescer, SegmentBuf, VIRTIO_NET_HDR_LEN, split};
use vine_linux::udp::{RecvBatch, SendScratch, UdpBatch};

use crate::host::PacketDevice;

mod busy_poll;
mod ready;
mod sockets;
mod stream_spin;
use busy_poll::BusyPoll;
use ready::Ready;
use sockets::Sockets;
use stream_spin::StreamSpin;

/// Super-packets the TX thread reads and sends per turn with the token.
const TX_DRAIN: usize = 8;
/// Packets read from the TUN device before they are sent as one batch.
pub(crate) const TX_BATCH: usize = 64;
/// Messages per `recvmmsg`.
pub(crate) const RX_BATCH: usize = 32;
/// Largest IP packet a TX slot holds.
const MAX_PACKET: usize = 65535;
/// Bytes of a TX slot: header room, the packet, padding and tag.
const TX_SLOT: usize = DATA_HEADER_LEN + MAX_PACKET + DATA_OVERHEAD;
/// Packets the RX thread's GRO table holds before it must write.
const COALESCE_PACKETS: usize = 128;
/// How long the RX thread's receive waits before checking for shutdown.
const RX_POLL: Duration = Duration::from_millis(200);

/// Work the fast path hands to the event loop.
#[derive(Debug)]
pub(crate) enum SlowPath {
    /// A packet read from the TUN that the node must route (no session
    /// yet, relayed path, queueing).
    Tun(Vec<u8>),
    /// A datagram the fast path could not open (handshake, unknown index).
    Datagram(SocketAddrV4, Vec<u8>),
    /// A transport message the fast path decrypted for the node (control
    /// or relay frame, keepalive, data from a new address).
    Plain(SocketAddrV4, PeerId, Vec<u8>),
}

/// The running data-plane threads.
#[derive(Debug)]
pub(crate) struct DataPath {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl DataPath {
    /// Starts the TX and RX threads.
    pub(crate) fn spawn(
        plane: &Arc<DataPlane>,
        device: Arc<dyn PacketDevice>,
        udp: &UdpBatch,
        slow: mpsc::Sender<SlowPath>,
    ) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let token = Arc::new(TunToken::default());
        let rx_udp = udp.try_clone()?;
        rx_udp.set_read_timeout(Some(RX_POLL))?;
        let rx = Rx {
            reader: plane.reader(),
            device: Arc::clone(&device),
            udp: rx_udp,
            slow: slow.clone(),
            stop: Arc::clone(&stop),
            token: Arc::clone(&token),
            tx_reader: plane.reader(),
        };
        let (aead, reason) = super::setup::aead_backend();
        info!(
            "transport crypto: ChaCha20-Poly1305, {} implementation ({reason})",
            aead.name()
        );
        let mut threads = Vec::new();
        if threads_for(&*device) == 1 {
            info!("data plane: one thread for both directions (vine-dp)");
            threads.push(
                std::thread::Builder::new()
                    .name("vine-dp".into())
                    .spawn(move || Duplex { rx }.run())?,
            );
            return Ok(Self { stop, threads });
        }
        let tx = Tx {
            reader: plane.reader(),
            device,
            udp: udp.try_clone()?,
            slow,
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

impl Drop for DataPath {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Hands work to the event loop without ever blocking a data-plane thread;
/// when the loop is behind, the packet is dropped and counted.
fn hand_over(slow: &mpsc::Sender<SlowPath>, plane: &DataPlane, work: SlowPath) -> bool {
    match slow.try_send(work) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            plane.add_drop(DropReason::QueueFull);
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

fn is_idle(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Looks up and seals one packet in `slot` (`slot[DATA_HEADER_LEN..][..len]`),
/// recording what to send; false when the event loop is gone.
fn dispatch(
    reader: &Reader,
    slow: &mpsc::Sender<SlowPath>,
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
fn seal_super_packet(
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

fn send_datagrams(udp: &UdpBatch, datagrams: &[(SocketAddrV4, &[u8])], scratch: &mut SendScratch) {
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
trait Egress {
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

/// The right to read the TUN device and send what was read. Whoever reads
/// also sends before letting go, so packets leave in the order the kernel
/// queued them even when two threads take turns.
#[derive(Debug, Default)]
pub(crate) struct TunToken(AtomicBool);

impl TunToken {
    fn try_take(&self) -> bool {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn give_back(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Reusable buffers for reading one TSO/USO super-packet from the TUN,
/// splitting it into sealed segments and sending them with GSO.
struct VnetPump {
    raw: Vec<u8>,
    segments: SegmentBuf,
    sends: Vec<(usize, SocketAddrV4, usize)>,
    scratch: SendScratch,
}

impl VnetPump {
    fn new() -> Self {
        Self {
            raw: vec![0u8; VIRTIO_NET_HDR_LEN + MAX_PACKET],
            segments: SegmentBuf::new(DATA_HEADER_LEN, DATA_OVERHEAD),
            sends: Vec::with_capacity(64),
            scratch: SendScratch::new(),
        }
    }

    /// Reads queued super-packets (at most `max`, never waiting) and sends
    /// them. `Ok(Some(read))` with how many it read, `Ok(None)` when the
    /// event loop is gone; `Err` when the device failed.
    fn drain(
        &mut self,
        max: usize,
        reader: &mut Reader,
        device: &dyn PacketDevice,
        egress: &mut impl Egress,
        slow: &mpsc::Sender<SlowPath>,
    ) -> io::Result<Option<usize>> {
        let mut read = 0;
        for _ in 0..max {
            let n = match device.try_read_vnet(&mut self.raw) {
                Ok(n) if n > 0 => n,
                Ok(_) => continue,
                Err(e) if is_idle(&e) => return Ok(Some(read)),
                Err(e) => return Err(e),
            };
            read += 1;
            if let Err(e) = split(&self.raw[..n], &mut self.segments) {
                debug!("unusable packet from the TUN device: {e}");
                reader.plane().add_drop(DropReason::Malformed);
                continue;
            }
            let now = Instant::now();
            reader.refresh();
            self.sends.clear();
            if !seal_super_packet(reader, now, &mut self.segments, &mut self.sends) {
                for i in 0..self.segments.len() {
                    let (slot, len) = self.segments.slot_mut(i);
                    if !dispatch(reader, slow, now, slot, len, i, &mut self.sends) {
                        return Ok(None);
                    }
                }
            }
            if self.sends.is_empty() {
                continue;
            }
            let segments = &self.segments;
            let datagrams: Vec<(SocketAddrV4, &[u8])> = self
                .sends
                .iter()
                .map(|&(i, dst, len)| (dst, &segments.slot(i)[..len]))
                .collect();
            egress.send(&datagrams, &mut self.scratch, now);
        }
        Ok(Some(read))
    }
}

struct Tx {
    reader: Reader,
    device: Arc<dyn PacketDevice>,
    udp: UdpBatch,
    slow: mpsc::Sender<SlowPath>,
    stop: Arc<AtomicBool>,
    token: Arc<TunToken>,
}

impl Tx {
    fn run(self) {
        if self.device.offloads().is_some() {
            self.run_vnet();
        } else {
            self.run_plain();
        }
    }

    /// With TUN offloads: one read is a TSO/USO super-packet of up to 64 KiB,
    /// split into MTU-sized segments in slots with room for the WireGuard
    /// header and tag, sealed in place, sent with GSO. The TX thread waits
    /// for the device and drains it while holding the [`TunToken`]; the RX
    /// thread takes the token when it is free to send what its own writes
    /// just provoked (a reply the kernel queued during the write) without
    /// waiting for this thread to be scheduled.
    fn run_vnet(mut self) {
        let mut pump = VnetPump::new();
        while !self.stop.load(Ordering::Relaxed) {
            match self.device.wait_readable() {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    error!(
                        "waiting for the TUN device failed: {e}; outbound overlay traffic stops"
                    );
                    return;
                }
            }
            if !self.token.try_take() {
                // The RX thread is sending; it gives the token back soon.
                std::thread::yield_now();
                continue;
            }
            let result = pump.drain(
                TX_DRAIN,
                &mut self.reader,
                &*self.device,
                &mut &self.udp,
                &self.slow,
            );
            self.token.give_back();
            match result {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    error!("reading the TUN device failed: {e}; outbound overlay traffic stops");
                    return;
                }
            }
        }
        debug!("TX thread stopped");
    }

    /// Without offloads: one packet per read, batched by draining what the
    /// kernel already queued.
    fn run_plain(mut self) {
        // One slot per packet of a batch, allocated once.
        let mut slots: Vec<Vec<u8>> = (0..TX_BATCH).map(|_| vec![0u8; TX_SLOT]).collect();
        let mut lens = [0usize; TX_BATCH];
        // (slot, destination, datagram length) of what the batch sends.
        let mut sends: Vec<(usize, SocketAddrV4, usize)> = Vec::with_capacity(TX_BATCH);
        let mut scratch = SendScratch::new();
        while !self.stop.load(Ordering::Relaxed) {
            let mut n = match self.device.read(&mut slots[0][DATA_HEADER_LEN..]) {
                Ok(len) if len > 0 => {
                    lens[0] = len;
                    1
                }
                Ok(_) => continue,
                Err(e) if is_idle(&e) => continue,
                Err(e) => {
                    error!("reading the TUN device failed: {e}; outbound overlay traffic stops");
                    return;
                }
            };
            while n < TX_BATCH {
                match self.device.try_read(&mut slots[n][DATA_HEADER_LEN..]) {
                    Ok(len) if len > 0 => {
                        lens[n] = len;
                        n += 1;
                    }
                    _ => break,
                }
            }
            let now = Instant::now();
            self.reader.refresh();
            sends.clear();
            for (i, slot) in slots.iter_mut().enumerate().take(n) {
                if !dispatch(&self.reader, &self.slow, now, slot, lens[i], i, &mut sends) {
                    return;
                }
            }
            if sends.is_empty() {
                continue;
            }
            let datagrams: Vec<(SocketAddrV4, &[u8])> = sends
                .iter()
                .map(|&(i, dst, len)| (dst, &slots[i][..len]))
                .collect();
            send_datagrams(&self.udp, &datagrams, &mut scratch);
        }
        debug!("TX thread stopped");
    }
}

struct Rx {
    reader: Reader,
    device: Arc<dyn PacketDevice>,
    udp: UdpBatch,
    slow: mpsc::Sender<SlowPath>,
    stop: Arc<AtomicBool>,
    token: Arc<TunToken>,
    /// A second reader of the tables for what this thread sends.
    tx_reader: Reader,
}

impl Rx {
    fn run(mut self) {
        let mut gro = self
            .device
            .offloads()
            .map(|o| Coalescer::new(COALESCE_PACKETS, o.uso).trusting_checksums());
        let mut assist = gro.as_ref().map(|_| VnetPump::new());
        let mut batch = RecvBatch::new(RX_BATCH);
        let mut failures = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            let n = match self.udp.recv_batch(&mut batch) {
                Ok(n) => {
                    failures = 0;
                    n
                }
                Err(e) if is_idle(&e) => continue,
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        warn!("UDP receive failed: {e}");
                    }
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if !self.take(&mut batch, n, gro.as_mut()) {
                return;
            }
            // What we just wrote may have made the kernel queue an answer
            // (an echo reply, a TCP ACK): send it now if the TX thread is
            // not already at it.
            if let Some(pump) = assist.as_mut()
                && self.token.try_take()
            {
                let result = pump.drain(
                    1,
                    &mut self.tx_reader,
                    &*self.device,
                    &mut &self.udp,
                    &self.slow,
                );
                self.token.give_back();
                if matches!(result, Ok(None)) {
                    return;
                }
            }
        }
        debug!("RX thread stopped");
    }

    /// Handles the `n` messages of a receive batch and writes what GRO
    /// coalesced; false when the event loop is gone.
    fn take(&mut self, batch: &mut RecvBatch, n: usize, mut gro: Option<&mut Coalescer>) -> bool {
        // A lone datagram has nothing to merge with: written straight to
        // the device, exactly as the coalescer would write it (no offload
        // flags), without touching the coalescer's state. That is the
        // whole receive of a ping or a request after idle, whose cost is
        // mostly cache misses.
        if n == 1 && batch.is_lone() {
            gro = None;
        }
        let now = Instant::now();
        self.reader.refresh();
        for i in 0..n {
            let mut msg = batch.message(i);
            let from = msg.from;
            let tables = self.reader.tables();
            // A GRO message is one sender's datagrams, normally for one
            // keypair: open them as a batch (overlapped decryption).
            if let Some(index) = tables.batch_index(msg.datagrams().map(|d| &*d)) {
                let opened = tables.open_batch(index, now, msg.datagrams());
                for (j, datagram) in msg.datagrams().enumerate() {
                    let verdict =
                        tables.inbound_opened(index, from, datagram, opened >> j & 1 == 1);
                    if !self.handle(from, datagram, verdict, gro.as_deref_mut()) {
                        return false;
                    }
                }
                continue;
            }
            for datagram in msg.datagrams() {
                if !self.one(now, from, datagram, gro.as_deref_mut()) {
                    return false;
                }
            }
        }
        if let Some(gro) = gro
            && let Err(e) = gro.flush(|b| self.device.write_vnet(b))
        {
            debug!("TUN write: {e}");
        }
        true
    }

    /// Handles one datagram; false when the event loop is gone. With
    /// offloads, packets for the TUN are coalesced (GRO) and written when
    /// the receive batch is done.
    fn one(
        &self,
        now: Instant,
        from: SocketAddrV4,
        datagram: &mut [u8],
        gro: Option<&mut Coalescer>,
    ) -> bool {
        let verdict = self.reader.tables().inbound(from, datagram, now);
        self.handle(from, datagram, verdict, gro)
    }

    /// Acts on what the tables decided for `datagram`.
    fn handle(
        &self,
        from: SocketAddrV4,
        datagram: &mut [u8],
        verdict: Inbound<'_>,
        gro: Option<&mut Coalescer>,
    ) -> bool {
        let plane = self.reader.plane();
        match verdict {
            Inbound::Data { peer, range } => {
                let len = range.len();
                let packet = &datagram[range];
                let written = match gro {
                    Some(gro) => self.coalesce(gro, packet),
                    None => self.device.write(packet).map(drop),
                };
                match written {
                    Ok(()) => peer.stats.add_received(1, len as u64),
                    Err(e) => debug!("TUN write: {e}"),
                }
                true
            }
            Inbound::Plain { peer, range } => {
                let work = SlowPath::Plain(from, peer.id, datagram[range].to_vec());
                hand_over(&self.slow, plane, work)
            }
            Inbound::Slow => hand_over(
                &self.slow,
                plane,
                SlowPath::Datagram(from, datagram.to_vec()),
            ),
            Inbound::Drop(reason) => {
                plane.add_drop(reason);
                true
            }
        }
    }

    fn coalesce(&self, gro: &mut Coalescer, packet: &[u8]) -> io::Result<()> {
        match gro.push(packet) {
            Ok(()) => Ok(()),
            Err(CoalesceError::Full { .. }) => {
                gro.flush(|b| self.device.write_vnet(b))?;
                gro.push(packet)
                    .or_else(|_| self.device.write(packet).map(drop))
            }
            Err(_) => self.device.write(packet).map(drop),
        }
    }
}

/// Both directions on one thread: it polls the TUN device and the UDP
/// socket together and serves whichever is ready, so a packet and the
/// answer it provokes never cost a wake-up of a second thread. Used when
/// the machine has too few cores for a thread per direction to pay (see
/// [`threads_for`]); needs the TUN offloads (vnet headers). Before it
/// sleeps it may poll for a while instead: after a lone request, for the
/// answer ([`BusyPoll`]), and between the bursts of a stream
/// ([`StreamSpin`]).
///
/// Both spins are off with `VINE_BUSY_POLL_US=0` and `VINE_STREAM_SPIN_US=0`.
struct Duplex {
    rx: Rx,
}

impl Duplex {
    fn run(mut self) {
        let Some(offloads) = self.rx.device.offloads() else {
            error!("one-thread data plane started without TUN offloads; overlay traffic stops");
            return;
        };
        let mut gro = Coalescer::new(COALESCE_PACKETS, offloads.uso).trusting_checksums();
        let mut pump = VnetPump::new();
        let mut batch = RecvBatch::new(RX_BATCH);
        let mut failures = 0u32;
        let from_env = |var: &str, parse: fn(Option<&str>) -> Result<Duration, String>, default| {
            parse(std::env::var(var).ok().as_deref()).unwrap_or_else(|e| {
                warn!("{e}");
                default
            })
        };
        let mut spinner = BusyPoll::new(
            from_env(
                "VINE_BUSY_POLL_US",
                BusyPoll::limit_from,
                busy_poll::DEFAULT_LIMIT,
            ),
            Instant::now(),
        );
        let mut streaming = StreamSpin::new(from_env(
            "VINE_STREAM_SPIN_US",
            StreamSpin::limit_from,
            stream_spin::DEFAULT_LIMIT,
        ));
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
        let connect =
            Sockets::enabled_from(std::env::var("VINE_CONNECTED_SOCKETS").ok().as_deref())
                .unwrap_or_else(|e| {
                    warn!("{e}");
                    true
                });
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
        let mut sockets = Sockets::new(main, super::setup::SOCKET_BUFFER, connect, Instant::now());
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

/// How many data-plane threads to run: one per direction, or one for
/// both ([`Duplex`]).
///
/// On a machine with one or two CPUs the kernel work of the TUN and the
/// socket, the application and the two directions all share them; a
/// second thread then buys no parallelism, only wake-ups and context
/// switches (measured with `bench/run.sh` on 2 CPUs: about 8 % less CPU
/// per GB and a lower ping with one thread, throughput the same or
/// better). With more CPUs each direction gets its own thread.
/// `VINE_DATAPLANE_THREADS=1` or `2` overrides the choice; one thread
/// needs the TUN offloads (without them it is always two).
pub(crate) fn threads_for(device: &dyn PacketDevice) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let automatic = if cpus <= 2 { 1 } else { 2 };
    let wanted = match std::env::var("VINE_DATAPLANE_THREADS") {
        Ok(v) if v == "1" => 1,
        Ok(v) if v == "2" => 2,
        Ok(v) => {
            warn!(
                "VINE_DATAPLANE_THREADS={v:?} is not 1 or 2; using {automatic} (chosen for {cpus} CPUs)"
            );
            automatic
        }
        Err(_) => automatic,
    };
    let duplex_ok = device.offloads().is_some() && device.poll_fd().is_some();
    if duplex_ok { wanted } else { 2 }
}
