//! The node's TUN device: a layer-3 (`IFF_TUN | IFF_NO_PI`) IPv4 interface
//! with its address, MTU and link state set through netlink.
//!
//! The ioctls are wrapped directly with `libc` in [`sys`] (a handful of
//! calls on one fd) instead of `tun-rs`: vine needs no offloads yet, the
//! device must be created by name with stale-device handling around it,
//! and the address/MTU/up steps go through the same netlink client as the
//! routes.

pub mod offload;
pub(crate) mod sys;
#[cfg(test)]
mod tests;

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::error::HostError;
use crate::netlink::Netlink;

/// Longest interface name Linux accepts (`IFNAMSIZ - 1`).
pub const MAX_NAME_LEN: usize = 15;

/// Smallest MTU that carries IPv4 (RFC 791).
pub const MIN_MTU: u16 = 68;

/// An open TUN device. Packets are raw IPv4 (no packet-info header).
///
/// `read` and `write` take `&self`, so one thread can read while another
/// writes (`Tun` is `Send + Sync`; share it with an `Arc`). Dropping the
/// `Tun` closes the fd, which removes the device together with its
/// addresses and routes.
#[derive(Debug)]
pub struct Tun {
    fd: OwnedFd,
    name: String,
    index: u32,
    replaced_stale: bool,
}

impl Tun {
    /// Creates the TUN device `name`, assigns `address/prefix_len`, sets
    /// `mtu` and brings it up.
    ///
    /// If a TUN device called `name` already exists and no process holds it
    /// (a persistent device left by a crash or by `ip tuntap`), it is
    /// deleted first and [`Tun::replaced_stale`] reports it. A TUN that a
    /// running process holds ([`HostError::TunInUse`]) or any other kind
    /// of interface ([`HostError::NameTaken`]) is left alone.
    pub fn open(name: &str, address: Ipv4Addr, prefix_len: u8, mtu: u16) -> Result<Tun, HostError> {
        validate_name(name)?;
        if prefix_len > 32 {
            return Err(HostError::InvalidPrefixLen { prefix_len });
        }
        if mtu < MIN_MTU {
            return Err(HostError::InvalidMtu {
                name: name.to_owned(),
                mtu,
            });
        }
        let mut nl =
            Netlink::new().map_err(|e| HostError::netlink("open a netlink route socket", e))?;
        let mut replaced_stale = false;
        if let Some(link) = nl
            .link(name)
            .map_err(|e| HostError::netlink(format!("look up interface {name}"), e))?
        {
            if !link.is_tun() {
                return Err(HostError::NameTaken {
                    name: name.to_owned(),
                    kind: link.describe_kind(),
                });
            }
            if link.tun_in_use() {
                return Err(HostError::TunInUse {
                    name: name.to_owned(),
                });
            }
            nl.delete_link(link.index)
                .map_err(|e| HostError::netlink(format!("delete stale TUN device {name}"), e))?;
            replaced_stale = true;
        }

        let fd = sys::open_clone_device().map_err(|source| match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => HostError::PermissionDenied {
                action: format!("open {} for TUN device {name}", sys::CLONE_DEVICE),
            },
            _ => HostError::NoTunDevice { source },
        })?;
        sys::set_iff(fd.as_fd(), name).map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => HostError::TunInUse {
                name: name.to_owned(),
            },
            _ => HostError::tun(name, "create", e),
        })?;
        // From here on, an early return drops `fd`, which removes the device.
        let index = nl
            .link(name)
            .map_err(|e| HostError::netlink(format!("look up interface {name}"), e))?
            .map(|l| l.index)
            .ok_or_else(|| {
                HostError::tun(
                    name,
                    "find the new",
                    io::Error::from_raw_os_error(libc::ENODEV),
                )
            })?;
        nl.add_address(index, address, prefix_len).map_err(|e| {
            HostError::netlink(format!("assign {address}/{prefix_len} to {name}"), e)
        })?;
        // The overlay is IPv4-only: without IPv6 on the device the kernel
        // sends no router solicitations or other IPv6 noise into it. Best
        // effort (the file is missing when IPv6 is disabled host-wide); the
        // sysctl is per network namespace, like the device.
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
        nl.set_link(index, Some(u32::from(mtu)), true)
            .map_err(|e| {
                HostError::netlink(format!("set MTU {mtu} on {name} and bring it up"), e)
            })?;
        Ok(Tun {
            fd,
            name: name.to_owned(),
            index,
            replaced_stale,
        })
    }

    /// Reads one IPv4 packet. Blocks unless [`Tun::set_nonblocking`] was
    /// set, in which case it returns `WouldBlock` when no packet is queued.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::read(self.fd.as_fd(), buf)
    }

    /// Writes one IPv4 packet (handed to the kernel's stack as if received
    /// on this interface).
    pub fn write(&self, packet: &[u8]) -> io::Result<usize> {
        sys::write(self.fd.as_fd(), packet)
    }

    /// Switches the fd between blocking and non-blocking mode (for wrapping
    /// it in an async reactor such as tokio's `AsyncFd`).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::set_nonblocking(self.fd.as_fd(), nonblocking)
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The raw fd (owned by this `Tun`).
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Whether [`Tun::open`] deleted a stale TUN device of the same name
    /// first (callers log this).
    pub fn replaced_stale(&self) -> bool {
        self.replaced_stale
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Checks `name` against the kernel's rules for interface names
/// (`dev_valid_name`): 1 to 15 bytes, not `.` or `..`, no `/`, `:`,
/// whitespace or NUL.
pub fn validate_name(name: &str) -> Result<(), HostError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are reserved")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
    {
        Some("it contains '/', ':', whitespace or NUL")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(HostError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// What an interface name currently refers to, for `vine doctor` and
/// start-up checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameState {
    /// No interface has this name.
    Free,
    /// A TUN device that no process holds: [`Tun::open`] replaces it.
    StaleTun,
    /// A TUN device that a running process holds open.
    TunInUse,
    /// Another kind of interface (described, e.g. "a veth device").
    Other(String),
}

/// Reports what `name` refers to in the calling thread's network namespace.
pub fn name_state(name: &str) -> Result<NameState, HostError> {
    let mut nl =
        Netlink::new().map_err(|e| HostError::netlink("open a netlink route socket", e))?;
    let link = nl
        .link(name)
        .map_err(|e| HostError::netlink(format!("look up interface {name}"), e))?;
    Ok(match link {
        None => NameState::Free,
        Some(l) if !l.is_tun() => NameState::Other(l.describe_kind()),
        Some(l) if l.tun_in_use() => NameState::TunInUse,
        Some(_) => NameState::StaleTun,
    })
}

/// The ifindex of interface `name`, or `None` when there is none.
pub fn interface_index(name: &str) -> Result<Option<u32>, HostError> {
    let mut nl =
        Netlink::new().map_err(|e| HostError::netlink("open a netlink route socket", e))?;
    Ok(nl
        .link(name)
        .map_err(|e| HostError::netlink(format!("look up interface {name}"), e))?
        .map(|l| l.index))
}
