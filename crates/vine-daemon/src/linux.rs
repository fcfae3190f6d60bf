//! The real host: adapters from `vine_linux`'s TUN device and netlink
//! routes to [`PacketDevice`] and [`RouteApplier`].

use std::io;
use std::os::fd::AsFd as _;
use std::sync::Arc;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tracing::{info, warn};
use vine_core::Ipv4Prefix;
use vine_core::config::TunSection;
use vine_linux::tun::{Offloads, TunOptions};
use vine_linux::{Routes, Tun};

use crate::host::{Host, PacketDevice, READ_POLL, RouteApplier};

/// The host backed by the Linux kernel (TUN device, netlink routes).
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxHost;

impl Host for LinuxHost {
    fn open_device(&self, tun: &TunSection, offload: bool) -> io::Result<Arc<dyn PacketDevice>> {
        let options = TunOptions { offload };
        let device = Tun::open_with(&tun.name, tun.address, tun.prefix_len, tun.mtu, options)
            .map_err(io::Error::other)?;
        info!(tun = %tun.name, offloads = %device.offloads(), "TUN offloads");
        // Non-blocking: `read` waits in poll(2) with a bound, `try_read`
        // drains the queue without waiting.
        device.set_nonblocking(true)?;
        if device.replaced_stale() {
            warn!(tun = %tun.name, "replaced a stale TUN device left by an earlier run");
        }
        Ok(Arc::new(LinuxTun(device)))
    }

    fn route_applier(&self, device: &dyn PacketDevice) -> io::Result<Box<dyn RouteApplier>> {
        Ok(Box::new(LinuxRoutes {
            routes: Routes::new().map_err(io::Error::other)?,
            ifindex: device.index(),
        }))
    }
}

/// [`Tun`] as a [`PacketDevice`]: reads wait at most [`READ_POLL`].
#[derive(Debug)]
pub struct LinuxTun(pub Tun);

impl PacketDevice for LinuxTun {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.wait_then(|| self.0.read(buf))
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // The fd is non-blocking (see `open_device`): one syscall, EAGAIN
        // when the queue is empty.
        self.0.read(buf)
    }

    fn write(&self, packet: &[u8]) -> io::Result<usize> {
        self.0.write(packet)
    }

    fn offloads(&self) -> Option<Offloads> {
        let o = self.0.offloads();
        o.vnet_hdr.then_some(o)
    }

    fn read_vnet(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut read = || self.0.read_vnet(buf);
        self.wait_then(&mut read)
    }

    fn write_vnet(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_vnet(buf)
    }

    fn wait_readable(&self) -> io::Result<bool> {
        let timeout = PollTimeout::try_from(READ_POLL).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    fn try_read_vnet(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_vnet(buf)
    }

    fn poll_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(self.0.as_fd())
    }

    fn name(&self) -> String {
        self.0.name().to_owned()
    }

    fn index(&self) -> u32 {
        self.0.index()
    }
}

impl LinuxTun {
    /// Reads at once when a packet is queued (one syscall under load);
    /// otherwise waits in poll(2) for at most [`READ_POLL`] and tries once
    /// more. The fd is non-blocking.
    fn wait_then(&self, mut read: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
        match read() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return done,
        }
        let timeout = PollTimeout::try_from(READ_POLL).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
            Ok(_) => read(),
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

/// [`Routes`] through one interface as a [`RouteApplier`].
#[derive(Debug)]
pub struct LinuxRoutes {
    routes: Routes,
    ifindex: u32,
}

impl RouteApplier for LinuxRoutes {
    fn install(&mut self, prefix: Ipv4Prefix) -> io::Result<()> {
        self.routes
            .install(prefix, self.ifindex)
            .map_err(io::Error::other)
    }

    fn remove(&mut self, prefix: Ipv4Prefix) -> io::Result<()> {
        self.routes
            .remove(prefix, self.ifindex)
            .map_err(io::Error::other)
    }

    fn remove_all(&mut self) -> io::Result<()> {
        self.routes.remove_all().map_err(io::Error::other)
    }
}
