//! The node's TUN device: a layer-3 (`IFF_TUN | IFF_NO_PI`) IPv4 interface
//! with its address, MTU and link state set through netlink, optionally
//! with offloads (`IFF_VNET_HDR` and `TUNSETOFFLOAD`, see [`offload`]).
//!
//! The ioctls are wrapped directly with `libc` in [`sys`] (a handful of
//! calls on one fd) instead of `tun-rs`: the device must be created by name
//! with stale-device handling around it, the address/MTU/up steps go
//! through the same netlink client as the routes, and the offload
//! splitting and coalescing ([`offload`]) is plain code over byte slices.

pub mod offload;
pub(crate) mod sys;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use offload::{VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_LEN, VirtioNetHdr};

use crate::error::HostError;
use crate::netlink::Netlink;

/// Longest interface name Linux accepts (`IFNAMSIZ - 1`).
pub const MAX_NAME_LEN: usize = 15;

/// Smallest MTU that carries IPv4 (RFC 791).
pub const MIN_MTU: u16 = 68;

/// How [`Tun::open_with`] opens the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunOptions {
    /// Open with `IFF_VNET_HDR` and ask the kernel for checksum, TSO and
    /// USO offloads (degrading to what it accepts, see [`Tun::offloads`]).
    /// Packets then carry a virtio header: use [`Tun::read_vnet`] with
    /// [`offload::split`] and [`Tun::write_vnet`] with
    /// [`offload::Coalescer`].
    pub offload: bool,
}

/// What the kernel enabled on a TUN (for logging and for choosing the
/// packet path).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offloads {
    /// Every read and write carries a 10-byte `virtio_net_hdr`.
    pub vnet_hdr: bool,
    /// `TUN_F_CSUM`: reads may carry a partial checksum (`NEEDS_CSUM`).
    pub csum: bool,
    /// `TUN_F_TSO4 | TUN_F_TSO6`: reads may be TCP super-packets, and
    /// merged TCP may be written.
    pub tso: bool,
    /// `TUN_F_USO4 | TUN_F_USO6` (Linux 6.2+): the same for UDP.
    pub uso: bool,
}

impl fmt::Display for Offloads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.vnet_hdr, "vnet_hdr"),
            (self.csum, "csum"),
            (self.tso, "tso"),
            (self.uso, "uso"),
        ];
        let mut any = false;
        for (_, name) in names.iter().filter(|(on, _)| *on) {
            if any {
                f.write_str("+")?;
            }
            f.write_str(name)?;
            any = true;
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}

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
    offloads: Offloads,
}

impl Tun {
    /// Creates the TUN device `name`, assigns `address/prefix_len`, sets
    /// `mtu` and brings it up; no offloads (`Tun::open_with` with
    /// [`TunOptions::default`]).
    ///
    /// If a TUN device called `name` already exists and no process holds it
    /// (a persistent device left by a crash or by `ip tuntap`), it is
    /// deleted first and [`Tun::replaced_stale`] reports it. A TUN that a
    /// running process holds ([`HostError::TunInUse`]) or any other kind
    /// of interface ([`HostError::NameTaken`]) is left alone.
    pub fn open(name: &str, address: Ipv4Addr, prefix_len: u8, mtu: u16) -> Result<Tun, HostError> {
        Tun::open_with(name, address, prefix_len, mtu, TunOptions::default())
    }

    /// [`Tun::open`] with options. With [`TunOptions::offload`] the device
    /// gets `IFF_VNET_HDR` and `TUNSETOFFLOAD` with checksum, TSO and USO;
    /// when the kernel refuses (EINVAL) it is asked again without USO, then
    /// for checksum offload only, then for none. What it accepted is in
    /// [`Tun::offloads`].
    pub fn open_with(
        name: &str,
        address: Ipv4Addr,
        prefix_len: u8,
        mtu: u16,
        options: TunOptions,
    ) -> Result<Tun, HostError> {
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
        sys::set_iff(fd.as_fd(), name, options.offload).map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => HostError::TunInUse {
                name: name.to_owned(),
            },
            _ => HostError::tun(name, "create", e),
        })?;
        // From here on, an early return drops `fd`, which removes the device.
        let offloads = if options.offload {
            enable_offloads(fd.as_fd(), name)?
        } else {
            Offloads::default()
        };
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
            offloads,
        })
    }

    /// Reads one IPv4 packet. Blocks unless [`Tun::set_nonblocking`] was
    /// set, in which case it returns `WouldBlock` when no packet is queued.
    ///
    /// With a virtio header ([`Offloads::vnet_hdr`]) the header is read
    /// aside and a partial checksum (`NEEDS_CSUM`) is completed, so `buf`
    /// holds the same plain packet; a TSO/USO super-packet cannot be one
    /// plain packet and is an `InvalidData` error (it is consumed): callers
    /// that enable offloads read with [`Tun::read_vnet`] and
    /// [`offload::split`].
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.offloads.vnet_hdr {
            return sys::read(self.fd.as_fd(), buf);
        }
        let mut raw = [0u8; VIRTIO_NET_HDR_LEN];
        let n = sys::read_split(self.fd.as_fd(), &mut raw, buf)?;
        let len = n
            .checked_sub(VIRTIO_NET_HDR_LEN)
            .ok_or_else(|| invalid_data("TUN read returned less than a virtio header"))?;
        let hdr = VirtioNetHdr::decode(&raw).map_err(invalid_data)?;
        if hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE {
            return Err(invalid_data(format!(
                "TUN read returned a GSO super-packet (gso_type {:#04x}); read it with read_vnet and offload::split",
                hdr.gso_type
            )));
        }
        if hdr.needs_csum() {
            offload::complete_checksum(&mut buf[..len], hdr.csum_start, hdr.csum_offset)
                .map_err(invalid_data)?;
        }
        Ok(len)
    }

    /// Writes one IPv4 packet (handed to the kernel's stack as if received
    /// on this interface) and returns its length. With a virtio header a
    /// zero one goes in front (`writev`, no copy).
    pub fn write(&self, packet: &[u8]) -> io::Result<usize> {
        if !self.offloads.vnet_hdr {
            return sys::write(self.fd.as_fd(), packet);
        }
        let n = sys::write_split(self.fd.as_fd(), &[0u8; VIRTIO_NET_HDR_LEN], packet)?;
        Ok(n.saturating_sub(VIRTIO_NET_HDR_LEN))
    }

    /// Reads one packet with its virtio header in front (10 bytes, then a
    /// packet of up to 64 KiB that may be a TSO/USO super-packet; give it
    /// to [`offload::split`]). `buf` should hold 10 + 65535 bytes. An
    /// `InvalidInput` error unless the TUN has [`Offloads::vnet_hdr`].
    pub fn read_vnet(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.require_vnet_hdr()?;
        sys::read(self.fd.as_fd(), buf)
    }

    /// Writes one packet that starts with its virtio header (as
    /// [`offload::Coalescer::flush`] produces them). An `InvalidInput`
    /// error unless the TUN has [`Offloads::vnet_hdr`] or when `buf` is
    /// shorter than the header.
    pub fn write_vnet(&self, buf: &[u8]) -> io::Result<usize> {
        self.require_vnet_hdr()?;
        if buf.len() < VIRTIO_NET_HDR_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write_vnet: buffer shorter than the 10-byte virtio header",
            ));
        }
        sys::write(self.fd.as_fd(), buf)
    }

    /// What the kernel enabled when the device was opened.
    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    fn require_vnet_hdr(&self) -> io::Result<()> {
        if self.offloads.vnet_hdr {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "TUN device {} was opened without offloads (no virtio header)",
                    self.name
                ),
            ))
        }
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

/// Sets the virtio header size and byte order on a TUN attached with
/// `IFF_VNET_HDR`, then asks for offloads, degrading on EINVAL (an older
/// kernel that does not know a flag): checksum + TSO + USO, checksum + TSO,
/// checksum, none.
fn enable_offloads(fd: BorrowedFd<'_>, name: &str) -> Result<Offloads, HostError> {
    // 10 fits in a c_int.
    sys::set_vnet_hdr_size(fd, VIRTIO_NET_HDR_LEN as libc::c_int)
        .map_err(|e| HostError::tun(name, "set the virtio header size of", e))?;
    // Little-endian is native on little-endian hosts, where this cannot
    // matter; elsewhere the header codec depends on it.
    if let Err(e) = sys::set_vnet_le(fd)
        && cfg!(target_endian = "big")
    {
        return Err(HostError::tun(
            name,
            "set little-endian virtio headers on",
            e,
        ));
    }
    negotiate_offloads(|flags| sys::set_offload(fd, flags))
        .map_err(|e| HostError::tun(name, "enable offloads on", e))
}

/// Asks for offloads through `set` (`TUNSETOFFLOAD`) from the most to the
/// least capable set and returns the first the kernel accepts. EINVAL (an
/// unknown flag) moves on to the next set; any other error is returned.
fn negotiate_offloads(mut set: impl FnMut(libc::c_uint) -> io::Result<()>) -> io::Result<Offloads> {
    let csum = libc::TUN_F_CSUM;
    let tso = libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
    let uso = libc::TUN_F_USO4 | libc::TUN_F_USO6;
    let vnet = Offloads {
        vnet_hdr: true,
        ..Offloads::default()
    };
    let attempts = [
        (
            csum | tso | uso,
            Offloads {
                csum: true,
                tso: true,
                uso: true,
                ..vnet
            },
        ),
        (
            csum | tso,
            Offloads {
                csum: true,
                tso: true,
                ..vnet
            },
        ),
        (csum, Offloads { csum: true, ..vnet }),
        (0, vnet),
    ];
    let mut last_error = None;
    for (flags, enabled) in attempts {
        match set(flags) {
            Ok(()) => return Ok(enabled),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
}

fn invalid_data(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
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
