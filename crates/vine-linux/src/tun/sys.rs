//! The TUN syscalls: `TUNSETIFF`, the vnet-header and offload ioctls,
//! `TUNSETPERSIST`, `read`/`readv`, `write`/`writev` and `O_NONBLOCK` on
//! the `/dev/net/tun` file descriptor.
//!
//! These are a handful of ioctls on one fd; wrapping them with `libc`
//! directly keeps the dependency tree small.
#![allow(unsafe_code)]

use std::ffi::c_char;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// The TUN clone device.
pub(crate) const CLONE_DEVICE: &str = "/dev/net/tun";

/// Opens `/dev/net/tun` read-write (close-on-exec, as std always does).
pub(crate) fn open_clone_device() -> io::Result<OwnedFd> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(CLONE_DEVICE)?;
    Ok(OwnedFd::from(file))
}

/// Attaches `fd` to the TUN device `name` (created if absent) with
/// `IFF_TUN | IFF_NO_PI`, plus `IFF_VNET_HDR` when `vnet_hdr` is set.
/// `name` must already be a valid interface name (at most 15 bytes, no
/// NUL).
pub(crate) fn set_iff(fd: BorrowedFd<'_>, name: &str, vnet_hdr: bool) -> io::Result<()> {
    // SAFETY: `ifreq` is a plain C struct/union of integers and arrays, for
    // which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as c_char;
    }
    let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
    if vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    // IFF_TUN | IFF_NO_PI | IFF_VNET_HDR = 0x5001 fits in a c_short.
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `req` is;
    // it lives for the whole call and the fd is open (borrowed).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TUNSETVNETHDRSZ`: the length of the virtio header on every read and
/// write.
pub(crate) fn set_vnet_hdr_size(fd: BorrowedFd<'_>, size: libc::c_int) -> io::Result<()> {
    // SAFETY: TUNSETVNETHDRSZ reads one `int` through the pointer, which
    // points at `size` for the whole call. The fd is open (borrowed).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TUNSETVNETLE`: virtio header fields in little-endian on any host.
pub(crate) fn set_vnet_le(fd: BorrowedFd<'_>) -> io::Result<()> {
    let le: libc::c_int = 1;
    // SAFETY: TUNSETVNETLE reads one `int` through the pointer, which points
    // at `le` for the whole call. The fd is open (borrowed).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETLE, &le) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TUNSETOFFLOAD` with `TUN_F_*` flags (EINVAL for flags this kernel does
/// not know).
pub(crate) fn set_offload(fd: BorrowedFd<'_>, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned long);
    // no memory is passed. The fd is open (borrowed).
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TUNSETOFFLOAD,
            libc::c_ulong::from(flags),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets or clears `TUNSETPERSIST` on an attached TUN fd (tests use it to
/// leave a stale device behind, as a crashed `ip tuntap` user would).
#[cfg(test)]
pub(crate) fn set_persist(fd: BorrowedFd<'_>, persist: bool) -> io::Result<()> {
    // SAFETY: TUNSETPERSIST takes its argument by value (an int cast to
    // unsigned long); no memory is passed. The fd is open (borrowed).
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TUNSETPERSIST,
            libc::c_ulong::from(persist),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads one packet into `buf`.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole
    // call, and the fd is open (borrowed).
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Writes one packet.
pub(crate) fn write(fd: BorrowedFd<'_>, packet: &[u8]) -> io::Result<usize> {
    // SAFETY: `packet` is valid for reads of `packet.len()` bytes for the
    // whole call, and the fd is open (borrowed).
    let n = unsafe { libc::write(fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Reads one packet whose first `hdr.len()` bytes land in `hdr` and the
/// rest in `buf` (`readv`); returns the total length.
pub(crate) fn read_split(fd: BorrowedFd<'_>, hdr: &mut [u8], buf: &mut [u8]) -> io::Result<usize> {
    let iov = [
        libc::iovec {
            iov_base: hdr.as_mut_ptr().cast(),
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        },
    ];
    // SAFETY: both iovecs describe buffers valid for writes of their
    // lengths (exclusive borrows held for the whole call); `iov` holds
    // exactly 2 entries. The fd is open (borrowed).
    let n = unsafe { libc::readv(fd.as_raw_fd(), iov.as_ptr(), 2) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Writes `hdr` followed by `packet` as one packet (`writev`, no copy);
/// returns the total length written.
pub(crate) fn write_split(fd: BorrowedFd<'_>, hdr: &[u8], packet: &[u8]) -> io::Result<usize> {
    let iov = [
        libc::iovec {
            iov_base: hdr.as_ptr().cast_mut().cast(),
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: packet.as_ptr().cast_mut().cast(),
            iov_len: packet.len(),
        },
    ];
    // SAFETY: both iovecs describe buffers valid for reads of their lengths
    // for the whole call (writev only reads through them, so the `*mut`
    // iovec field type is never used for writing); `iov` holds exactly 2
    // entries. The fd is open (borrowed).
    let n = unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), 2) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Waits up to `timeout_ms` for `fd` to become readable (tests use it to
/// stop reader threads on a flag).
#[cfg(test)]
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout_ms: libc::c_int) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd for the whole call (nfds = 1); the
    // fd is open (borrowed).
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    match rc {
        rc if rc < 0 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and only reads the fd's flags; the
    // fd is open (borrowed).
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL takes an int of status flags by value; the fd is open.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
