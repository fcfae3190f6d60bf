//! The TUN syscalls: `TUNSETIFF`, `TUNSETPERSIST`, `read`, `write` and
//! `O_NONBLOCK` on the `/dev/net/tun` file descriptor.
//!
//! These are a handful of ioctls on one fd; wrapping them with `libc`
//! directly keeps the device plain (no offloads, no packet-info header) and
//! the dependency tree small.
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
/// `IFF_TUN | IFF_NO_PI`. `name` must already be a valid interface name
/// (at most 15 bytes, no NUL).
pub(crate) fn set_iff(fd: BorrowedFd<'_>, name: &str) -> io::Result<()> {
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
    // IFF_TUN | IFF_NO_PI = 0x1001 fits in a c_short.
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `req` is;
    // it lives for the whole call and the fd is open (borrowed).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
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
