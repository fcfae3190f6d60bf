//! The data-plane UDP socket: batched receive (`recvmmsg`, with `UDP_GRO`
//! when the kernel has it) and batched send (`sendmmsg`, with
//! `UDP_SEGMENT` GSO when the kernel has it) over IPv4.
//!
//! ## Shape
//!
//! - [`UdpBatch`] methods take `&self`; it is `Send + Sync`, so one
//!   `Arc<UdpBatch>` (or a [`UdpBatch::try_clone`] handle) can serve a
//!   receive thread and any number of send threads.
//! - The caller owns all per-call storage: a [`RecvBatch`] per receiving
//!   thread (slots, iovecs, headers, cmsg space and sender addresses,
//!   allocated once) and a [`SendScratch`] per sending thread (header
//!   arrays that grow to the largest batch seen and are then reused). The
//!   hot path therefore neither allocates nor locks.
//! - Received bytes are mutable ([`RecvMessage::data`]) so the caller can
//!   decrypt in place.
//!
//! ## Offloads and fallbacks
//!
//! - **GRO**: [`UdpBatch::bind`] asks for `UDP_GRO`; when the kernel has
//!   it, one received message may carry several datagrams from the same
//!   sender, all [`RecvMessage::stride`] bytes long but the last.
//!   [`RecvMessage::datagrams`] splits them. Without it every message is
//!   one datagram and nothing else changes.
//! - **GSO**: [`UdpBatch::bind`] probes `UDP_SEGMENT`. With it,
//!   [`UdpBatch::send_batch`] merges runs of same-destination, same-length
//!   datagrams into one message each; without it every datagram is its own
//!   message (still one `sendmmsg` for the batch). When the kernel rejects
//!   a GSO message (`EIO`: no checksum offload on the route; `EINVAL` or
//!   `EMSGSIZE`: segment larger than the path MTU, ...), GSO is switched
//!   off for the socket and all its handles for good, the rejected
//!   datagrams are re-sent without it and [`SendReport::gso_disabled`]
//!   tells the caller (to log once).
//! - **Buffers**: `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` (need
//!   `CAP_NET_ADMIN`, exceed `net.core.[rw]mem_max`), else the plain
//!   options, which the kernel caps at those sysctls.

mod sys;
#[cfg(test)]
mod tests;

use std::ffi::c_int;
use std::fmt;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::slice::ChunksMut;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::error::HostError;
use sys::{RecvHdrs, Run, SendHdrs};

/// Most datagrams merged into one GSO message: the kernel's
/// `UDP_MAX_SEGMENTS` on older kernels (newer ones accept more; a larger
/// count is rejected with `EINVAL` where they do not).
pub const MAX_SEGMENTS: usize = 64;

/// Most UDP payload bytes in one message: 65535 minus the IPv4 and UDP
/// headers. A GSO message's segments together stay within it.
pub const MAX_PAYLOAD: usize = 65_507;

/// Bytes per [`RecvBatch`] slot: room for the largest message, including
/// a GRO'd one (at most 64 KiB of coalesced datagrams).
pub const SLOT_BYTES: usize = 65_536;

/// How often [`UdpBatch::send_batch`] retries a message the kernel had no
/// room for (`EAGAIN`/`ENOBUFS`) before dropping it; waits grow from
/// 50 µs to 1.6 ms, about 3 ms in all.
const BUSY_RETRIES: u32 = 6;

/// A UDP/IPv4 socket for the data plane. See the [module docs](self).
///
/// The fd is blocking; give it a read timeout
/// ([`UdpBatch::set_read_timeout`]) so a receive thread can check a stop
/// flag.
#[derive(Debug)]
pub struct UdpBatch {
    socket: UdpSocket,
    /// Whether sends use GSO; shared by every handle on the socket.
    gso: Arc<AtomicBool>,
    gro: bool,
    /// For a socket from [`UdpBatch::connect_to`], its peer.
    peer: Option<SocketAddrV4>,
}

/// What [`UdpBatch::send_batch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Datagrams the kernel accepted.
    pub sent: usize,
    /// Datagrams skipped: destination errors (`ECONNREFUSED`,
    /// `EHOSTUNREACH`, `ENETUNREACH`, `EPERM`/`EACCES` from a firewall,
    /// `EMSGSIZE`, port 0, ...) or no buffer space after the retries.
    pub dropped: usize,
    /// This call found that the kernel rejects GSO and switched it off for
    /// the socket (log it; it happens at most once per socket).
    pub gso_disabled: bool,
}

impl UdpBatch {
    /// Binds `addr` (port 0 picks a free port), sets both socket buffers to
    /// `buffer_bytes` (see the [module docs](self)), enables `UDP_GRO` and
    /// probes `UDP_SEGMENT`. Neither offload is required.
    pub fn bind(addr: SocketAddrV4, buffer_bytes: usize) -> Result<Self, HostError> {
        let socket = UdpSocket::bind(addr).map_err(|e| HostError::udp_bind(addr, e))?;
        let fd = socket.as_fd();
        let size = c_int::try_from(buffer_bytes).unwrap_or(c_int::MAX);
        set_buffer(fd, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, size).map_err(|source| {
            HostError::Udp {
                addr,
                action: "set the receive buffer size of",
                source,
            }
        })?;
        set_buffer(fd, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, size).map_err(|source| {
            HostError::Udp {
                addr,
                action: "set the send buffer size of",
                source,
            }
        })?;
        let gro = sys::set_int(fd, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok();
        let gso = sys::get_int(fd, libc::SOL_UDP, libc::UDP_SEGMENT).is_ok();
        // Bound without it, so a port in use is still an error; set now so
        // that `connect_to` can add sockets on the same port.
        let _ = sys::set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1);
        Ok(UdpBatch {
            socket,
            gso: Arc::new(AtomicBool::new(gso)),
            gro,
            peer: None,
        })
    }

    /// A second socket on this one's address and port, connected to
    /// `peer`, with the same buffer size and offloads. The kernel delivers
    /// `peer`'s datagrams to it instead of to this socket (the better
    /// match), finds it without a route lookup (early demux), and sends to
    /// `peer` from it use the route it keeps: about 20 µs less per round
    /// trip on a VM where every lookup misses the cache. Other senders
    /// still reach this socket. Read both.
    ///
    /// # Errors
    ///
    /// The socket, bind or connect failed (e.g. this socket is not
    /// `SO_REUSEPORT`, or another user holds the port).
    pub fn connect_to(&self, peer: SocketAddrV4, buffer_bytes: usize) -> io::Result<Self> {
        let local = self.local_addr()?;
        let socket = UdpSocket::from(sys::bind_reuseport(local)?);
        socket.connect(peer)?;
        let fd = socket.as_fd();
        let size = c_int::try_from(buffer_bytes).unwrap_or(c_int::MAX);
        set_buffer(fd, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, size)?;
        set_buffer(fd, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, size)?;
        let gro = self.gro && sys::set_int(fd, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok();
        Ok(UdpBatch {
            socket,
            gso: Arc::new(AtomicBool::new(self.gso())),
            gro,
            peer: Some(peer),
        })
    }

    /// The peer of a socket from [`UdpBatch::connect_to`].
    pub fn peer(&self) -> Option<SocketAddrV4> {
        self.peer
    }

    /// The bound address (with the port the kernel picked for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        match self.socket.local_addr()? {
            SocketAddr::V4(a) => Ok(a),
            SocketAddr::V6(a) => Err(io::Error::other(format!(
                "UDP socket is bound to IPv6 address {a}"
            ))),
        }
    }

    /// A second handle on the same socket (`dup`), e.g. one for the receive
    /// thread and one for the send thread. Socket options, including the
    /// read timeout and the GSO state, are shared.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(UdpBatch {
            socket: self.socket.try_clone()?,
            gso: Arc::clone(&self.gso),
            gro: self.gro,
            peer: self.peer,
        })
    }

    /// Sets `SO_RCVTIMEO` (None: block forever). A receive that times out
    /// returns `WouldBlock`. `Some(Duration::ZERO)` is an `InvalidInput`
    /// error. Applies to every handle on the socket.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// Whether sends currently use `UDP_SEGMENT` GSO.
    pub fn gso(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
    }

    /// Whether `UDP_GRO` is on (received messages may hold several
    /// datagrams).
    pub fn gro(&self) -> bool {
        self.gro
    }

    /// Forces GSO on or off (tests and benchmarks). Turning it on where the
    /// kernel lacks it just makes the next GSO send fall back.
    #[doc(hidden)]
    pub fn set_gso(&self, on: bool) {
        self.gso.store(on, Ordering::Relaxed);
    }

    /// The effective receive and send buffer sizes, as `getsockopt` reports
    /// them (Linux doubles the requested value for its bookkeeping).
    pub fn buffer_sizes(&self) -> io::Result<(usize, usize)> {
        let fd = self.socket.as_fd();
        let rcv = sys::get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)?;
        let snd = sys::get_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)?;
        Ok((
            usize::try_from(rcv).unwrap_or(0),
            usize::try_from(snd).unwrap_or(0),
        ))
    }

    /// Sends one datagram (`sendto`), for the control plane.
    pub fn send_to(&self, data: &[u8], dst: SocketAddrV4) -> io::Result<usize> {
        self.socket.send_to(data, dst)
    }

    /// Sends every datagram, in order, with as few `sendmmsg` calls as the
    /// kernel allows (one per 1024 messages, plus one per error).
    ///
    /// With GSO, each run of consecutive datagrams to the same destination
    /// with the same length (the last may be shorter; none empty) becomes
    /// one message with a `UDP_SEGMENT` cmsg: at most [`MAX_SEGMENTS`]
    /// datagrams and [`MAX_PAYLOAD`] bytes each. The datagrams need not be
    /// contiguous in memory (one iovec each).
    ///
    /// A message that fails for its destination is skipped and counted in
    /// [`SendReport::dropped`] (after one retry when the error may be a
    /// stale ICMP report left on the socket; a firewall's `EPERM` is not
    /// retried); the rest of the batch still
    /// goes out. Messages without buffer space are retried a few times
    /// (sleeping up to ~3 ms in all), then dropped. GSO rejection is
    /// described in the [module docs](self).
    ///
    /// # Errors
    ///
    /// Only errors that concern the socket itself (`EBADF`, `ENOTSOCK`,
    /// `EFAULT`, ...); datagrams before the failing message were sent.
    pub fn send_batch(
        &self,
        datagrams: &[(SocketAddrV4, &[u8])],
        scratch: &mut SendScratch,
    ) -> io::Result<SendReport> {
        let mut report = SendReport::default();
        let mut from = 0;
        while from < datagrams.len() {
            plan(datagrams, from, self.gso(), &mut scratch.runs);
            match self.send_runs(datagrams, &scratch.runs, &mut scratch.hdrs, &mut report)? {
                Some(rejected) => {
                    // GSO is off now: re-plan from the rejected message.
                    report.gso_disabled |= self.gso.swap(false, Ordering::Relaxed);
                    from = rejected;
                }
                None => break,
            }
        }
        Ok(report)
    }

    /// Sends the planned runs. Returns `Some(first datagram)` of a GSO
    /// message the kernel rejected (the caller turns GSO off and re-plans
    /// from there), `None` when every run was sent or skipped.
    fn send_runs(
        &self,
        datagrams: &[(SocketAddrV4, &[u8])],
        runs: &[Run],
        hdrs: &mut SendHdrs,
        report: &mut SendReport,
    ) -> io::Result<Option<usize>> {
        let fd = self.socket.as_fd();
        let mut prepared = hdrs.prepare(datagrams, runs, self.peer);
        let mut pos = 0;
        let mut busy = 0;
        let mut retried = false;
        while pos < runs.len() {
            let err = match prepared.send(fd, pos) {
                Ok(n) => {
                    report.sent += runs[pos..pos + n].iter().map(|r| r.count).sum::<usize>();
                    pos += n;
                    busy = 0;
                    retried = false;
                    continue;
                }
                Err(e) => e,
            };
            let run = runs[pos];
            match classify(&err, run.segment != 0) {
                Failure::Interrupted => {}
                Failure::Busy if busy < BUSY_RETRIES => {
                    thread::sleep(Duration::from_micros(50 << busy));
                    busy += 1;
                }
                Failure::Stale if !retried => retried = true,
                Failure::Busy | Failure::Stale | Failure::Destination => {
                    report.dropped += run.count;
                    pos += 1;
                    busy = 0;
                    retried = false;
                }
                Failure::GsoRejected => return Ok(Some(run.start)),
                Failure::Fatal => return Err(err),
            }
        }
        Ok(None)
    }

    /// Blocks (up to the read timeout) until at least one datagram is
    /// queued, then takes as many messages as are queued and fit `batch`
    /// (`recvmmsg` with `MSG_WAITFORONE`). Returns how many messages
    /// `batch` now holds (never 0); read them with [`RecvBatch::message`].
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the read timeout passes with nothing received;
    /// socket errors. Interrupted calls and stale ICMP errors left on the
    /// socket are retried, and non-IPv4 senders skipped, internally.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        self.recv_into(batch, true)
    }

    /// Like [`UdpBatch::recv_batch`] but never waits: takes what is queued
    /// now, `WouldBlock` when nothing is (for a thread that polls several
    /// descriptors).
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing is queued; socket errors.
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        self.recv_into(batch, false)
    }

    fn recv_into(&self, batch: &mut RecvBatch, wait: bool) -> io::Result<usize> {
        batch.filled = 0;
        let fd = self.socket.as_fd();
        loop {
            let n = match batch.hdrs.recv(fd, &mut batch.bufs, SLOT_BYTES, wait) {
                Ok(n) => n,
                Err(e) if is_stale_or_interrupted(&e) => continue,
                Err(e) => return Err(e),
            };
            let mut filled = 0;
            for slot in 0..n {
                let Some(meta) = Meta::of(slot, batch.hdrs.message(slot)) else {
                    continue;
                };
                batch.meta[filled] = meta;
                filled += 1;
            }
            if filled > 0 {
                batch.filled = filled;
                return Ok(filled);
            }
        }
    }
}

impl AsFd for UdpBatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for UdpBatch {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// Sets a buffer size with the `*FORCE` option, falling back to the plain
/// one when the process lacks `CAP_NET_ADMIN`.
fn set_buffer(fd: BorrowedFd<'_>, force: c_int, plain: c_int, size: c_int) -> io::Result<()> {
    sys::set_int(fd, libc::SOL_SOCKET, force, size)
        .or_else(|_| sys::set_int(fd, libc::SOL_SOCKET, plain, size))
}

/// Splits `datagrams[from..]` into messages (see
/// [`UdpBatch::send_batch`]); `runs` is cleared first.
fn plan(datagrams: &[(SocketAddrV4, &[u8])], from: usize, gso: bool, runs: &mut Vec<Run>) {
    runs.clear();
    let mut i = from;
    while i < datagrams.len() {
        let (dst, first) = datagrams[i];
        let size = first.len();
        let mut count = 1;
        // Port 0 fails with EINVAL, which must not read as a GSO rejection.
        if gso && size > 0 && dst.port() != 0 {
            let max = MAX_SEGMENTS.min(MAX_PAYLOAD / size);
            while count < max {
                match datagrams.get(i + count) {
                    Some(&(d, next)) if d == dst && !next.is_empty() && next.len() <= size => {
                        count += 1;
                        if next.len() < size {
                            break;
                        }
                    }
                    _ => break,
                }
            }
        }
        // count > 1 implies size <= MAX_PAYLOAD / 2, which fits u16.
        let segment = if count > 1 { size as u16 } else { 0 };
        runs.push(Run {
            start: i,
            count,
            segment,
        });
        i += count;
    }
}

/// How a failed `sendmmsg`/`recvmmsg` is handled.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// EINTR: call again.
    Interrupted,
    /// No buffer space for now: retry a few times.
    Busy,
    /// The kernel refuses `UDP_SEGMENT` (only for a message that has it).
    GsoRejected,
    /// An error the kernel may have derived from an ICMP report about an
    /// earlier send (it is cleared by reporting it): worth one retry.
    Stale,
    /// The message itself was refused (a local firewall's verdict, no
    /// route, bad size): retrying the same message cannot help.
    Destination,
    /// The socket itself is broken.
    Fatal,
}

fn classify(err: &io::Error, gso_message: bool) -> Failure {
    let Some(errno) = err.raw_os_error() else {
        return Failure::Fatal;
    };
    match errno {
        libc::EINTR => Failure::Interrupted,
        libc::EAGAIN | libc::ENOBUFS | libc::ENOMEM => Failure::Busy,
        libc::EIO | libc::EINVAL | libc::EMSGSIZE | libc::EOPNOTSUPP if gso_message => {
            Failure::GsoRejected
        }
        libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EHOSTDOWN => {
            Failure::Stale
        }
        libc::ENETDOWN
        | libc::EPERM
        | libc::EACCES
        | libc::EADDRNOTAVAIL
        | libc::EMSGSIZE
        | libc::EINVAL => Failure::Destination,
        _ => Failure::Fatal,
    }
}

/// EINTR, or an error the kernel derived from an ICMP report about an
/// earlier send; reading it clears it, so the receive is simply retried.
fn is_stale_or_interrupted(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::EINTR
                | libc::ECONNREFUSED
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ENONET
        )
    )
}

/// Reusable send storage for [`UdpBatch::send_batch`]: one per sending
/// thread. Grows to the largest batch seen, then never allocates again.
#[derive(Default)]
pub struct SendScratch {
    runs: Vec<Run>,
    hdrs: SendHdrs,
}

impl SendScratch {
    /// Empty storage (grows on first use).
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for SendScratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendScratch")
            .field("runs", &self.runs.capacity())
            .finish_non_exhaustive()
    }
}

/// Where message `i` of a [`RecvBatch`] lives.
#[derive(Clone, Copy, Debug)]
struct Meta {
    slot: usize,
    from: SocketAddrV4,
    len: usize,
    stride: usize,
}

impl Meta {
    /// The message in `slot` from what [`RecvHdrs::message`] read (sender,
    /// byte count, GRO segment size); `None` for a non-IPv4 sender.
    fn of(
        slot: usize,
        (from, len, gro): (Option<SocketAddrV4>, usize, Option<usize>),
    ) -> Option<Self> {
        let from = from?;
        let len = len.min(SLOT_BYTES);
        let stride = gro.filter(|&s| s < len).unwrap_or(len).max(1);
        Some(Meta {
            slot,
            from,
            len,
            stride,
        })
    }
}

/// For the `udp_cmsg` fuzz target: message 0 of a receive whose
/// `recvmmsg` left these header fields (see [`RecvHdrs::fill_first`]), as
/// [`UdpBatch::recv_batch`] reads it: the sender, the byte count and the
/// datagram stride, or `None` when the message is skipped.
pub(crate) fn parse_received(
    name: [u8; 8],
    namelen: u32,
    msg_len: u32,
    control: &[u8],
    controllen: usize,
) -> Option<(SocketAddrV4, usize, usize)> {
    let mut hdrs = RecvHdrs::new(1);
    hdrs.fill_first(name, namelen, msg_len, control, controllen);
    Meta::of(0, hdrs.message(0)).map(|m| (m.from, m.len, m.stride))
}

/// Reusable receive storage for [`UdpBatch::recv_batch`]: `n` slots of
/// [`SLOT_BYTES`] each plus their iovecs, headers, cmsg space and sender
/// addresses, all allocated once by [`RecvBatch::new`].
pub struct RecvBatch {
    bufs: Box<[u8]>,
    hdrs: RecvHdrs,
    meta: Box<[Meta]>,
    filled: usize,
}

impl RecvBatch {
    /// Storage for up to `n` messages per receive (clamped to 1..=1024).
    /// Takes `n * 64 KiB` (touched lazily by the kernel).
    pub fn new(n: usize) -> Self {
        let n = n.clamp(1, sys::MAX_VLEN);
        let empty = Meta {
            slot: 0,
            from: SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
            len: 0,
            stride: 1,
        };
        RecvBatch {
            bufs: vec![0; n * SLOT_BYTES].into_boxed_slice(),
            hdrs: RecvHdrs::new(n),
            meta: vec![empty; n].into_boxed_slice(),
            filled: 0,
        }
    }

    /// Most messages one receive can return.
    pub fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// Messages filled by the last [`UdpBatch::recv_batch`].
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Whether the last receive filled nothing (before the first, or after
    /// an error).
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The last receive got one datagram (one message, not GRO-coalesced).
    pub fn is_lone(&self) -> bool {
        self.filled == 1 && self.meta[0].len <= self.meta[0].stride
    }

    /// Message `i` of the last receive.
    ///
    /// # Panics
    ///
    /// When `i >= self.len()`.
    pub fn message(&mut self, i: usize) -> RecvMessage<'_> {
        assert!(i < self.filled, "message {i} of {}", self.filled);
        let m = self.meta[i];
        let start = m.slot * SLOT_BYTES;
        RecvMessage {
            from: m.from,
            data: &mut self.bufs[start..start + m.len],
            stride: m.stride,
        }
    }
}

impl fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.capacity())
            .field("len", &self.filled)
            .finish_non_exhaustive()
    }
}

/// One received message: one datagram, or with GRO several from the same
/// sender.
#[derive(Debug)]
pub struct RecvMessage<'a> {
    /// The sender.
    pub from: SocketAddrV4,
    /// The received bytes (mutable for in-place decryption).
    pub data: &'a mut [u8],
    /// Length of each datagram in `data` but the last, which may be
    /// shorter: the `UDP_GRO` segment size, or `data.len()` for a single
    /// datagram. At least 1.
    pub stride: usize,
}

impl RecvMessage<'_> {
    /// The datagrams in this message, in arrival order. An empty datagram
    /// yields nothing.
    pub fn datagrams(&mut self) -> ChunksMut<'_, u8> {
        self.data.chunks_mut(self.stride)
    }

    /// How many datagrams [`RecvMessage::datagrams`] yields.
    pub fn count(&self) -> usize {
        self.data.len().div_ceil(self.stride)
    }
}
