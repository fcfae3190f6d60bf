//! The batched UDP syscalls: `recvmmsg` and `sendmmsg` with their
//! `mmsghdr`, `iovec`, `sockaddr_in` and control-message arrays, and the
//! integer socket options (`SO_*BUF*`, `UDP_GRO`, `UDP_SEGMENT`).
//!
//! The arrays are allocated once and reused. Their raw pointers are
//! rewritten at the start of every call (so nothing stale is ever handed
//! to the kernel) and are only valid during that call.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint, c_void};
use std::io;
use std::marker::PhantomData;
use std::mem;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr;

/// Bytes of control-message space per message: one `UDP_GRO` (int) or
/// `UDP_SEGMENT` (u16) cmsg needs `CMSG_SPACE(4)` = 24 on 64-bit; the
/// rest is headroom for cmsgs the kernel may add.
const CMSG_BYTES: usize = 64;

/// Most messages one `recvmmsg`/`sendmmsg` call takes (the kernel clamps
/// `vlen` to `UIO_MAXIOV`).
pub(crate) const MAX_VLEN: usize = libc::UIO_MAXIOV as usize;

/// Control-message storage for one message, aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BYTES]);

const EMPTY_CMSG: CmsgBuf = CmsgBuf([0; CMSG_BYTES]);

// `CmsgBuf` must satisfy `cmsghdr`'s alignment for CMSG_FIRSTHDR/NXTHDR.
const _: () = assert!(mem::align_of::<CmsgBuf>() >= mem::align_of::<libc::cmsghdr>());

/// A new IPv4 UDP socket with `SO_REUSEPORT` bound to `local` (it may share
/// the port with another socket of this user that has `SO_REUSEPORT`).
pub(crate) fn bind_reuseport(local: SocketAddrV4) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor that
    // nothing else owns.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    set_int(
        std::os::fd::AsFd::as_fd(&fd),
        libc::SOL_SOCKET,
        libc::SO_REUSEPORT,
        1,
    )?;
    let sa = sockaddr_in(local);
    // SAFETY: the kernel reads `size_of::<sockaddr_in>()` bytes from `sa`,
    // which lives for the whole call; the fd is open.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            ptr::from_ref(&sa).cast::<libc::sockaddr>(),
            socklen_of::<libc::sockaddr_in>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Sets an integer socket option.
pub(crate) fn set_int(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: c_int,
) -> io::Result<()> {
    // SAFETY: the kernel reads `size_of::<c_int>()` bytes from `&value`,
    // which is a live c_int for the whole call; the fd is open (borrowed).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            ptr::from_ref(&value).cast::<c_void>(),
            socklen_of::<c_int>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads an integer socket option.
pub(crate) fn get_int(fd: BorrowedFd<'_>, level: c_int, name: c_int) -> io::Result<c_int> {
    let mut value: c_int = 0;
    let mut len = socklen_of::<c_int>();
    // SAFETY: the kernel writes at most `len` (= size of c_int) bytes into
    // `value` and updates `len`; both live for the whole call. The fd is
    // open (borrowed).
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            ptr::from_mut(&mut value).cast::<c_void>(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

fn socklen_of<T>() -> libc::socklen_t {
    // Socket structs and ints are far below u32::MAX bytes.
    mem::size_of::<T>() as libc::socklen_t
}

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: `mmsghdr` is a plain C struct of integers and raw pointers,
    // for which all-zero bytes (null pointers, zero lengths) are valid.
    unsafe { mem::zeroed() }
}

fn zeroed_sockaddr_in() -> libc::sockaddr_in {
    // SAFETY: `sockaddr_in` is a plain C struct of integers; all-zero is
    // valid.
    unsafe { mem::zeroed() }
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    let mut sa = zeroed_sockaddr_in();
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = addr.port().to_be();
    sa.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    sa
}

/// `recvmmsg` storage for `n` messages of one iovec each.
pub(crate) struct RecvHdrs {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_in>,
    cmsgs: Vec<CmsgBuf>,
    /// The buffer (address, length, slot size) the pointers in `hdrs` and
    /// `iovs` were set up for; `None` before the first `recv`.
    bound: Option<(usize, usize, usize)>,
    /// Leading entries the kernel may have written since they were last
    /// reset (it writes only the messages it fills).
    dirty: usize,
}

// SAFETY: the raw pointers inside `hdrs`/`iovs` point into this struct's
// own vectors (heap storage that never moves or grows) and into the buffer
// passed to `recv`; `recv` (which takes `&mut self`) rewrites them unless
// that buffer has the address and length they were set up for, and they
// are never dereferenced outside it, so moving or sharing the struct
// between threads cannot create a data race through them.
unsafe impl Send for RecvHdrs {}
// SAFETY: as above; `&self` methods only read plain integers and the
// cmsg bytes owned by the struct.
unsafe impl Sync for RecvHdrs {}

impl RecvHdrs {
    /// Storage for `n` messages (1 to [`MAX_VLEN`]).
    pub(crate) fn new(n: usize) -> Self {
        debug_assert!((1..=MAX_VLEN).contains(&n));
        RecvHdrs {
            hdrs: vec![zeroed_mmsghdr(); n],
            iovs: vec![
                libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0,
                };
                n
            ],
            names: vec![zeroed_sockaddr_in(); n],
            cmsgs: vec![EMPTY_CMSG; n],
            bound: None,
            dirty: 0,
        }
    }

    /// Receives up to `n` messages into the `slot`-byte slots of `bufs`
    /// (`bufs.len()` must be `n * slot`): with `wait`, blocks (up to
    /// `SO_RCVTIMEO`) for the first, then takes whatever else is queued
    /// (`MSG_WAITFORONE`); without, takes only what is queued now
    /// (`MSG_DONTWAIT`, `EAGAIN` when nothing is).
    pub(crate) fn recv(
        &mut self,
        fd: BorrowedFd<'_>,
        bufs: &mut [u8],
        slot: usize,
        wait: bool,
    ) -> io::Result<usize> {
        let n = self.hdrs.len();
        assert_eq!(bufs.len(), n * slot, "one slot per message");
        let binding = (bufs.as_ptr() as usize, bufs.len(), slot);
        if self.bound == Some(binding) {
            // Only the entries the kernel filled last time changed: reset
            // their in/out fields. The other few kilobytes of headers are
            // left alone (after an idle gap they are cold cache lines).
            for h in &mut self.hdrs[..self.dirty] {
                let m = &mut h.msg_hdr;
                m.msg_namelen = socklen_of::<libc::sockaddr_in>();
                m.msg_controllen = CMSG_BYTES as _;
                m.msg_flags = 0;
                h.msg_len = 0;
            }
        } else {
            let iov_base = self.iovs.as_mut_ptr();
            let name_base = self.names.as_mut_ptr();
            let cmsg_base = self.cmsgs.as_mut_ptr();
            for (iov, chunk) in self.iovs.iter_mut().zip(bufs.chunks_exact_mut(slot)) {
                iov.iov_base = chunk.as_mut_ptr().cast();
                iov.iov_len = slot;
            }
            for (i, h) in self.hdrs.iter_mut().enumerate() {
                let m = &mut h.msg_hdr;
                m.msg_name = name_base.wrapping_add(i).cast();
                m.msg_namelen = socklen_of::<libc::sockaddr_in>();
                m.msg_iov = iov_base.wrapping_add(i);
                m.msg_iovlen = 1;
                m.msg_control = cmsg_base.wrapping_add(i).cast();
                m.msg_controllen = CMSG_BYTES as _;
                m.msg_flags = 0;
                h.msg_len = 0;
            }
            self.bound = Some(binding);
        }
        // SAFETY: `hdrs` holds `n` initialised mmsghdrs whose name, iovec
        // and control pointers point into `names`, `iovs`, `cmsgs` (heap
        // storage owned by `self`, never reallocated) and `bufs` with the
        // lengths given: set just above, or earlier for a buffer with this
        // very address and length (`bound`). All are exclusively borrowed
        // for the whole call, so the kernel's writes alias nothing.
        // `n` <= UIO_MAXIOV fits c_uint. A null timeout means "use
        // SO_RCVTIMEO". The fd is open (borrowed).
        let rc = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as c_uint,
                if wait {
                    libc::MSG_WAITFORONE
                } else {
                    libc::MSG_DONTWAIT
                },
                ptr::null_mut(),
            )
        };
        let got = usize::try_from(rc).map_err(|_| io::Error::last_os_error());
        // A failed call fills nothing; reset the first entry anyway.
        self.dirty = got.as_ref().map_or(1, |&k| k.max(1)).min(n);
        got
    }

    /// Sets message 0 as a `recvmmsg` could have left it: the sender's
    /// `sockaddr_in` (family, port, address as the kernel writes their
    /// bytes), `msg_namelen`, `msg_len`, the control bytes and
    /// `msg_controllen`. For the `udp_cmsg` fuzz target, which then reads
    /// it back with [`RecvHdrs::message`] exactly as a receive does.
    pub(crate) fn fill_first(
        &mut self,
        name: [u8; 8],
        namelen: u32,
        msg_len: u32,
        control: &[u8],
        controllen: usize,
    ) {
        let n = &mut self.names[0];
        n.sin_family = libc::sa_family_t::from_ne_bytes([name[0], name[1]]);
        n.sin_port = u16::from_ne_bytes([name[2], name[3]]);
        n.sin_addr.s_addr = u32::from_ne_bytes([name[4], name[5], name[6], name[7]]);
        let h = &mut self.hdrs[0];
        h.msg_hdr.msg_namelen = namelen;
        h.msg_len = msg_len;
        h.msg_hdr.msg_controllen = controllen as _;
        let c = &mut self.cmsgs[0].0;
        let k = control.len().min(CMSG_BYTES);
        c[..k].copy_from_slice(&control[..k]);
        c[k..].fill(0);
    }

    /// Message `i` of the last [`RecvHdrs::recv`]: the IPv4 sender (None
    /// for anything else), the byte count, and the `UDP_GRO` segment size
    /// when the kernel attached one.
    pub(crate) fn message(&self, i: usize) -> (Option<SocketAddrV4>, usize, Option<usize>) {
        let h = &self.hdrs[i];
        let name = &self.names[i];
        let from = (h.msg_hdr.msg_namelen as usize >= mem::size_of::<libc::sockaddr_in>()
            && c_int::from(name.sin_family) == libc::AF_INET)
            .then(|| {
                SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr)),
                    u16::from_be(name.sin_port),
                )
            });
        // `msg_controllen` is a size_t on glibc but a socklen_t on musl.
        #[allow(clippy::unnecessary_cast)]
        let controllen = (h.msg_hdr.msg_controllen as usize).min(CMSG_BYTES);
        (
            from,
            h.msg_len as usize,
            gro_size(&self.cmsgs[i], controllen),
        )
    }
}

/// The `UDP_GRO` segment size among the first `len` bytes of `buf`.
fn gro_size(buf: &CmsgBuf, len: usize) -> Option<usize> {
    // A private msghdr for the CMSG_* walk, pointing at `buf` afresh.
    // SAFETY: all-zero is a valid `msghdr` (see `zeroed_mmsghdr`).
    let mut mhdr: libc::msghdr = unsafe { mem::zeroed() };
    mhdr.msg_control = ptr::from_ref(buf).cast_mut().cast();
    mhdr.msg_controllen = len as _;
    // SAFETY: `mhdr.msg_control` points at `buf`, which is valid, aligned
    // for cmsghdr and at least `len` bytes long; CMSG_FIRSTHDR only checks
    // the length and returns a pointer into it (or null).
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&mhdr) };
    let mut found = None;
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/NXTHDR return null or a pointer to a whole
        // cmsghdr inside the first `len` bytes of `buf`; `buf` lives and is
        // not written during the walk.
        let hdr = unsafe { ptr::read_unaligned(cmsg) };
        // A message that runs past the control data is truncated or
        // malformed: stop. (libc's CMSG_NXTHDR checks only that the next
        // *header* fits, so without this a UDP_GRO header in the last 16
        // bytes made the read below go past `buf`; and a length near
        // `usize::MAX` overflowed CMSG_NXTHDR's alignment, a panic with
        // overflow checks and a walk that never ends without.)
        let at = cmsg.addr() - ptr::from_ref(buf).addr();
        if hdr.cmsg_len as usize > len.saturating_sub(at) {
            break;
        }
        // SAFETY: `CMSG_LEN` is pure arithmetic.
        let want = unsafe { libc::CMSG_LEN(mem::size_of::<c_int>() as c_uint) } as usize;
        if hdr.cmsg_level == libc::SOL_UDP
            && hdr.cmsg_type == libc::UDP_GRO
            && hdr.cmsg_len as usize >= want
        {
            // SAFETY: the cmsg is at least CMSG_LEN(sizeof(int)) long and
            // lies within the first `len` bytes of `buf` (checked above), so
            // its data holds one int; read unaligned.
            let size = unsafe { ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<c_int>()) };
            found = usize::try_from(size).ok().filter(|&s| s > 0);
        }
        // SAFETY: `cmsg` came from FIRSTHDR/NXTHDR on `mhdr`, which still
        // describes `buf`; NXTHDR returns null past the end.
        cmsg = unsafe { libc::CMSG_NXTHDR(&mhdr, cmsg) };
    }
    found
}

/// One message of a send: `count` consecutive datagrams from index
/// `start`, all to the first one's destination, sent with a
/// `UDP_SEGMENT` cmsg of `segment` bytes when `segment != 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) start: usize,
    pub(crate) count: usize,
    pub(crate) segment: u16,
}

/// `sendmmsg` storage, grown on demand and reused.
#[derive(Default)]
pub(crate) struct SendHdrs {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_in>,
    cmsgs: Vec<CmsgBuf>,
}

// SAFETY: the raw pointers inside point into this struct's own vectors
// and into datagrams borrowed by a `Prepared`, which holds `&mut self` for
// as long as they are used; they are rebuilt by every `prepare` and never
// dereferenced otherwise.
unsafe impl Send for SendHdrs {}
// SAFETY: as above; there are no `&self` methods that read the pointers.
unsafe impl Sync for SendHdrs {}

impl SendHdrs {
    /// Fills the arrays for `runs` over `datagrams` and returns a handle
    /// that sends them; the handle borrows both, so the pointers it hands
    /// to the kernel stay valid.
    pub(crate) fn prepare<'a>(
        &'a mut self,
        datagrams: &'a [(SocketAddrV4, &'a [u8])],
        runs: &[Run],
        connected: Option<SocketAddrV4>,
    ) -> Prepared<'a> {
        self.hdrs.clear();
        self.iovs.clear();
        self.names.clear();
        self.cmsgs.clear();
        for run in runs {
            let group = &datagrams[run.start..run.start + run.count];
            self.names.push(sockaddr_in(group[0].0));
            self.iovs.extend(group.iter().map(|(_, d)| libc::iovec {
                // The kernel only reads from send iovecs.
                iov_base: d.as_ptr().cast_mut().cast(),
                iov_len: d.len(),
            }));
            self.cmsgs.push(if run.segment == 0 {
                EMPTY_CMSG
            } else {
                segment_cmsg(run.segment)
            });
        }
        // All pushes are done: the vectors no longer move.
        let iov_base = self.iovs.as_mut_ptr();
        let name_base = self.names.as_mut_ptr();
        let cmsg_base = self.cmsgs.as_mut_ptr();
        let mut iov_at = 0;
        for (i, run) in runs.iter().enumerate() {
            let mut h = zeroed_mmsghdr();
            let m = &mut h.msg_hdr;
            // To the peer of a connected socket no address is given, so the
            // kernel uses the route it keeps instead of looking one up.
            if connected != Some(datagrams[run.start].0) {
                m.msg_name = name_base.wrapping_add(i).cast();
                m.msg_namelen = socklen_of::<libc::sockaddr_in>();
            }
            m.msg_iov = iov_base.wrapping_add(iov_at);
            m.msg_iovlen = run.count as _;
            if run.segment != 0 {
                m.msg_control = cmsg_base.wrapping_add(i).cast();
                m.msg_controllen = segment_cmsg_space() as _;
            }
            self.hdrs.push(h);
            iov_at += run.count;
        }
        Prepared {
            hdrs: self,
            _data: PhantomData,
        }
    }
}

fn segment_cmsg_space() -> usize {
    // SAFETY: `CMSG_SPACE` is pure arithmetic.
    unsafe { libc::CMSG_SPACE(mem::size_of::<u16>() as c_uint) as usize }
}

/// A control buffer holding one `SOL_UDP`/`UDP_SEGMENT` cmsg (a u16).
fn segment_cmsg(segment: u16) -> CmsgBuf {
    let mut buf = EMPTY_CMSG;
    // SAFETY: all-zero is a valid `cmsghdr` (integers only).
    let mut hdr: libc::cmsghdr = unsafe { mem::zeroed() };
    // SAFETY: `CMSG_LEN` is pure arithmetic.
    hdr.cmsg_len = unsafe { libc::CMSG_LEN(mem::size_of::<u16>() as c_uint) } as _;
    hdr.cmsg_level = libc::SOL_UDP;
    hdr.cmsg_type = libc::UDP_SEGMENT;
    // SAFETY: `buf` is CMSG_BYTES (>= size_of::<cmsghdr>()) bytes, aligned
    // for cmsghdr (checked at compile time above).
    unsafe { ptr::write(ptr::from_mut(&mut buf).cast::<libc::cmsghdr>(), hdr) };
    // SAFETY: `CMSG_LEN(0)` is pure arithmetic: the data offset.
    let data = unsafe { libc::CMSG_LEN(0) } as usize;
    buf.0[data..data + 2].copy_from_slice(&segment.to_ne_bytes());
    buf
}

/// Messages ready for `sendmmsg`; borrows the storage and the datagrams.
pub(crate) struct Prepared<'a> {
    hdrs: &'a mut SendHdrs,
    _data: PhantomData<&'a [u8]>,
}

impl Prepared<'_> {
    /// Sends messages from index `from` on with one `sendmmsg`; returns how
    /// many the kernel took (at least one), or the error of message `from`.
    pub(crate) fn send(&mut self, fd: BorrowedFd<'_>, from: usize) -> io::Result<usize> {
        let rest = &mut self.hdrs.hdrs[from..];
        let vlen = rest.len().min(MAX_VLEN);
        // SAFETY: `rest` holds `vlen` initialised mmsghdrs built by
        // `prepare`, whose pointers lead into `self.hdrs`' vectors (not
        // touched since) and into datagrams borrowed for this `Prepared`'s
        // lifetime, with matching lengths. The kernel reads them and writes
        // only `msg_len`. `vlen` <= UIO_MAXIOV fits c_uint. The fd is open.
        let rc = unsafe { libc::sendmmsg(fd.as_raw_fd(), rest.as_mut_ptr(), vlen as c_uint, 0) };
        usize::try_from(rc).map_err(|_| io::Error::last_os_error())
    }
}
