//! In-memory host fakes and config builders for the daemon tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vine_core::config::TunSection;
use vine_core::{Ipv4Prefix, PeerId};
use vine_daemon::host::{Host, PacketDevice, READ_POLL, RouteApplier};

/// A TUN stand-in: packets injected by the test come out of `read`;
/// packets the daemon writes are collected.
pub struct FakeDevice {
    name: String,
    inject: Mutex<Sender<Vec<u8>>>,
    inbound: Mutex<Receiver<Vec<u8>>>,
    pub written: Mutex<Vec<Vec<u8>>>,
}

impl FakeDevice {
    pub fn new(name: &str) -> Arc<Self> {
        let (tx, rx) = mpsc::channel();
        Arc::new(Self {
            name: name.to_owned(),
            inject: Mutex::new(tx),
            inbound: Mutex::new(rx),
            written: Mutex::new(Vec::new()),
        })
    }

    /// A packet "from the kernel" for the daemon to send.
    pub fn inject(&self, packet: Vec<u8>) {
        self.inject.lock().unwrap().send(packet).unwrap();
    }

    pub fn written(&self) -> Vec<Vec<u8>> {
        self.written.lock().unwrap().clone()
    }
}

impl PacketDevice for FakeDevice {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inbound.lock().unwrap().recv_timeout(READ_POLL) {
            Ok(p) => {
                let n = p.len().min(buf.len());
                buf[..n].copy_from_slice(&p[..n]);
                Ok(n)
            }
            Err(RecvTimeoutError::Timeout) => Err(io::ErrorKind::WouldBlock.into()),
            Err(RecvTimeoutError::Disconnected) => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn write(&self, packet: &[u8]) -> io::Result<usize> {
        self.written.lock().unwrap().push(packet.to_vec());
        Ok(packet.len())
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// What the fake route applier was asked to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    Install(Ipv4Prefix),
    Remove(Ipv4Prefix),
    RemoveAll,
}

pub struct FakeRoutes(Arc<Mutex<Vec<RouteOp>>>);

impl RouteApplier for FakeRoutes {
    fn install(&mut self, prefix: Ipv4Prefix) -> io::Result<()> {
        self.0.lock().unwrap().push(RouteOp::Install(prefix));
        Ok(())
    }
    fn remove(&mut self, prefix: Ipv4Prefix) -> io::Result<()> {
        self.0.lock().unwrap().push(RouteOp::Remove(prefix));
        Ok(())
    }
    fn remove_all(&mut self) -> io::Result<()> {
        self.0.lock().unwrap().push(RouteOp::RemoveAll);
        Ok(())
    }
}

/// A host handing out one fake device and a logging route applier.
pub struct FakeHost {
    pub device: Arc<FakeDevice>,
    pub routes: Arc<Mutex<Vec<RouteOp>>>,
}

impl FakeHost {
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            device: FakeDevice::new(name),
            routes: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn route_ops(&self) -> Vec<RouteOp> {
        self.routes.lock().unwrap().clone()
    }
}

impl Host for FakeHost {
    fn open_device(&self, _tun: &TunSection, _offload: bool) -> io::Result<Arc<dyn PacketDevice>> {
        Ok(self.device.clone())
    }
    fn route_applier(&self, _device: &dyn PacketDevice) -> io::Result<Box<dyn RouteApplier>> {
        Ok(Box::new(FakeRoutes(self.routes.clone())))
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One test node's files.
pub struct NodeFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub identity: PathBuf,
    pub runtime: PathBuf,
    pub peer_id: PeerId,
    pub port: u16,
    pub name: String,
    /// Third octet of 10.77.X.0/24.
    pub net: u8,
}

impl NodeFiles {
    pub fn new(root: &Path, name: &str, net: u8) -> Self {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        let identity = dir.join("identity");
        let id = vine_linux::identity_store::create(&identity, false).unwrap();
        Self {
            config: dir.join("vine.toml"),
            runtime: dir.join("run"),
            identity,
            peer_id: id.peer_id(),
            port: free_port(),
            name: name.to_owned(),
            net,
            dir,
        }
    }

    pub fn address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.net, 1)
    }

    pub fn prefix(&self) -> Ipv4Prefix {
        format!("10.77.{}.0/24", self.net).parse().unwrap()
    }

    /// The config text, peering with `peers` (allowlisted and bootstrap).
    pub fn config_text(&self, peers: &[&NodeFiles], extra: &str) -> String {
        let mut s = format!(
            "[node]\nname = \"{}\"\nnetwork_id = \"test-net\"\nidentity_path = \"{}\"\nlisten_address = \"127.0.0.1\"\nlisten_port = {}\nruntime_dir = \"{}\"\n\n[tun]\nname = \"vt-{}\"\naddress = \"{}\"\nprefix_len = 24\nmtu = 1400\n\n",
            self.name,
            self.identity.display(),
            self.port,
            self.runtime.display(),
            self.name,
            self.address(),
        );
        for p in peers {
            s += &format!(
                "[[bootstrap_peers]]\npeer_id = \"{}\"\naddress = \"udp://127.0.0.1:{}\"\n\n[[allowed_peers]]\nname = \"{}\"\npeer_id = \"{}\"\nprefix = \"{}\"\nrelay_capable = false\n\n",
                p.peer_id,
                p.port,
                p.name,
                p.peer_id,
                p.prefix()
            );
        }
        s + extra
    }

    pub fn write_config(&self, text: &str) {
        fs::write(&self.config, text).unwrap();
        fs::set_permissions(&self.config, fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
