//! What the daemon needs from the host, as small traits so tests can run
//! the real event loop with in-memory fakes: a packet device (the TUN) and a
//! route applier (kernel routes through that device).
//!
//! The real implementations wrap `vine_linux` types; see [`crate::linux`].

use std::io;
use std::sync::Arc;

use vine_core::Ipv4Prefix;
use vine_core::config::TunSection;
pub use vine_linux::tun::Offloads;

/// A layer-3 packet device (the TUN interface).
///
/// `read` may block, but not forever: it must return now and then (an error
/// of kind `WouldBlock`, `TimedOut` or `Interrupted` means "nothing yet")
/// so the reader thread can notice shutdown. Implementations wait at most
/// about [`READ_POLL`] per call.
pub trait PacketDevice: Send + Sync {
    /// Reads one packet into `buf`, returning its length.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Reads one more packet only if one is queued right now (never
    /// waits): lets the TX thread batch what the kernel already has.
    /// `WouldBlock` when nothing is queued (the default: no batching).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = buf;
        Err(io::ErrorKind::WouldBlock.into())
    }
    /// Writes one packet.
    fn write(&self, packet: &[u8]) -> io::Result<usize>;
    /// Whether the device speaks virtio-net headers with segmentation
    /// offloads (a Linux TUN opened with `IFF_VNET_HDR`): then the data
    /// plane uses [`PacketDevice::read_vnet`] / [`PacketDevice::write_vnet`].
    fn offloads(&self) -> Option<Offloads> {
        None
    }
    /// Reads a 10-byte virtio-net header and a packet, possibly a TSO/USO
    /// super-packet (waits like [`PacketDevice::read`]).
    fn read_vnet(&self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = buf;
        Err(io::ErrorKind::Unsupported.into())
    }
    /// The descriptor to wait on for readability together with others
    /// (one dataplane thread polling the TUN and the UDP socket at once);
    /// `None` when the device has none.
    fn poll_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
    /// Waits (at most about [`READ_POLL`]) until a read would not block;
    /// `Ok(false)` when nothing arrived in that time.
    fn wait_readable(&self) -> io::Result<bool> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Like [`PacketDevice::read_vnet`] but never waits (`WouldBlock` when
    /// nothing is queued).
    fn try_read_vnet(&self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = buf;
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Writes a virtio-net header and a packet, possibly a GRO super-packet.
    fn write_vnet(&self, buf: &[u8]) -> io::Result<usize> {
        let _ = buf;
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Interface name (e.g. `vine0`).
    fn name(&self) -> String;
    /// Interface index, for routes (0 when not applicable).
    fn index(&self) -> u32 {
        0
    }
}

/// How long one [`PacketDevice::read`] call should wait at most.
pub const READ_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Applies route intents to the kernel routing table (routes through the
/// packet device).
pub trait RouteApplier: Send {
    /// Adds a route for `prefix` through the device.
    fn install(&mut self, prefix: Ipv4Prefix) -> io::Result<()>;
    /// Removes the route for `prefix`.
    fn remove(&mut self, prefix: Ipv4Prefix) -> io::Result<()>;
    /// Removes every route this applier installed (shutdown).
    fn remove_all(&mut self) -> io::Result<()>;
}

/// Creates the host resources at startup. Injected through
/// [`crate::runtime::RunOptions`] so tests can supply fakes.
pub trait Host: Send + Sync {
    /// Opens the packet device described by `[tun]`, with segmentation
    /// offloads when `offload` allows them
    /// ([`DataplaneTuning::offload`](crate::DataplaneTuning::offload)).
    fn open_device(&self, tun: &TunSection, offload: bool) -> io::Result<Arc<dyn PacketDevice>>;
    /// Creates the route applier for routes through `device`.
    fn route_applier(&self, device: &dyn PacketDevice) -> io::Result<Box<dyn RouteApplier>>;
}
