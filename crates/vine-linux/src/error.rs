//! [`HostError`]: what can go wrong when vine changes the host's network
//! state (TUN devices, addresses, routes, the data-plane UDP socket).

use std::io;
use std::net::SocketAddrV4;

use vine_core::net::Ipv4Prefix;

/// Why a TUN, address or route operation failed. Each message names the
/// interface or prefix involved and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The kernel refused because the process lacks `CAP_NET_ADMIN`.
    #[error("cannot {action}: permission denied; run as root or grant CAP_NET_ADMIN")]
    PermissionDenied {
        /// What was attempted, e.g. "create TUN device vine0".
        action: String,
    },
    /// `/dev/net/tun` is missing or cannot be opened.
    #[error(
        "cannot open /dev/net/tun: {source}; load the tun module (`modprobe tun`) or, in a container, pass the device through (--device /dev/net/tun)"
    )]
    NoTunDevice {
        /// The open error.
        source: io::Error,
    },
    /// The interface name is not one Linux accepts.
    #[error(
        "interface name `{name}` is invalid: {reason}; choose another [tun] name (1 to 15 characters, no '/', ':' or whitespace)"
    )]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An interface of that name exists and is something other than a TUN.
    #[error(
        "interface {name} exists and is not a TUN device (it is {kind}); choose another [tun] name"
    )]
    NameTaken {
        /// The interface name.
        name: String,
        /// What it is, e.g. "a veth device".
        kind: String,
    },
    /// A TUN of that name exists and a running process holds it open.
    #[error(
        "TUN device {name} is in use by another process (is another vine running?); stop it (`vine down`) or choose another [tun] name"
    )]
    TunInUse {
        /// The interface name.
        name: String,
    },
    /// A prefix length above 32.
    #[error("prefix length /{prefix_len} is not valid for IPv4; use 0 to 32 in [tun] prefix_len")]
    InvalidPrefixLen {
        /// The length given.
        prefix_len: u8,
    },
    /// An MTU too small to carry IPv4.
    #[error(
        "MTU {mtu} for {name} is below 68, the IPv4 minimum; set [tun] mtu to at least 576 (1400 is typical)"
    )]
    InvalidMtu {
        /// The interface name.
        name: String,
        /// The MTU given.
        mtu: u16,
    },
    /// A route for the prefix exists in the main table and goes elsewhere.
    #[error(
        "a route for {prefix} already exists ({existing}); remove it (`ip route del {prefix}`) or change the overlay prefix"
    )]
    RouteExists {
        /// The prefix vine wanted to route.
        prefix: Ipv4Prefix,
        /// The existing route, e.g. "10.42.1.0/24 dev eth0 proto kernel".
        existing: String,
    },
    /// Any other failed operation on a TUN device.
    #[error("cannot {action} TUN device {name}: {source}")]
    Tun {
        /// The interface name.
        name: String,
        /// What was attempted.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The data-plane UDP socket cannot be bound.
    #[error(
        "cannot bind UDP socket to {addr}: {source}; check that the address belongs to this host and that no other process uses the port (change the listen port otherwise)"
    )]
    UdpBind {
        /// The address asked for.
        addr: SocketAddrV4,
        /// The OS error.
        source: io::Error,
    },
    /// Any other failed setup step of the data-plane UDP socket.
    #[error("cannot {action} UDP socket {addr}: {source}")]
    Udp {
        /// The socket's address.
        addr: SocketAddrV4,
        /// What was attempted, e.g. "set the receive buffer size of".
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Any other failed netlink request.
    #[error("cannot {action}: {source}")]
    Netlink {
        /// What was attempted, naming the interface or prefix.
        action: String,
        /// The OS error reported by the kernel.
        source: io::Error,
    },
}

impl HostError {
    /// A netlink failure, or [`HostError::PermissionDenied`] when the kernel
    /// said EPERM/EACCES.
    pub(crate) fn netlink(action: impl Into<String>, source: io::Error) -> Self {
        let action = action.into();
        if is_permission(&source) {
            Self::PermissionDenied { action }
        } else {
            Self::Netlink { action, source }
        }
    }

    /// A TUN ioctl failure, or [`HostError::PermissionDenied`] on EPERM.
    pub(crate) fn tun(name: &str, action: &'static str, source: io::Error) -> Self {
        if is_permission(&source) {
            Self::PermissionDenied {
                action: format!("{action} TUN device {name}"),
            }
        } else {
            Self::Tun {
                name: name.to_owned(),
                action,
                source,
            }
        }
    }

    /// A UDP bind failure, or [`HostError::PermissionDenied`] on
    /// EPERM/EACCES (a privileged port without `CAP_NET_BIND_SERVICE`).
    pub(crate) fn udp_bind(addr: SocketAddrV4, source: io::Error) -> Self {
        if is_permission(&source) {
            Self::PermissionDenied {
                action: format!("bind UDP socket to {addr}"),
            }
        } else {
            Self::UdpBind { addr, source }
        }
    }
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}
