//! The bounded startup sequence: the runtime directory's checks and the
//! single-instance lock, runtime files, the TUN device and routes, the UDP
//! socket, the node (from `build`), the api server, the dataplane threads
//! and the event loop (which holds the lock until it ends).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use vine_core::config::Config;
use vine_linux::udp::UdpBatch;

use super::api;
use super::build::{self, wall_clock};
use super::command::Command;
use super::dataplane::{Dataplane, SOCKET_BUFFER, SlowQueues, SlowReceiver};
use super::event_loop::EventLoop;
use super::options::RunOptions;
use crate::api::Phase;
use crate::error::DaemonError;
use crate::files::{self, LockError, RuntimeLock, RuntimePaths, StateFile};
use crate::workloads::Workloads;

/// A daemon that finished starting: where to send it commands, its event
/// loop's task, its runtime files and its bound UDP address.
pub(crate) struct Started {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) task: JoinHandle<Result<(), DaemonError>>,
    pub(crate) paths: RuntimePaths,
    pub(crate) udp: SocketAddrV4,
}

/// Runs the startup sequence (unbounded: the caller bounds it).
pub(crate) async fn start(options: RunOptions) -> Result<Started, DaemonError> {
    let (config, identity) = build::load(&options.config_path)?;
    let paths = RuntimePaths::new(&config.node.runtime_dir);
    let file_err = |what, path: &Path| {
        let path = path.to_owned();
        move |source| DaemonError::File { what, path, source }
    };
    paths
        .create_dir()
        .map_err(file_err("create runtime directory", &paths.dir))?;
    paths.check_dir()?;
    let lock = lock(&paths)?;
    for left in files::sweep_leftovers(&paths).map_err(file_err(
        "sweep leftovers of a killed daemon in",
        &paths.dir,
    ))? {
        warn!(path = %left.display(), "removed what a killed daemon left half-written");
    }
    let pid = std::process::id();
    let started_at = wall_clock().as_secs();
    let config_path = options.config_path.display().to_string();
    let state = |phase| StateFile {
        phase,
        pid,
        config_path: config_path.clone(),
        started_at,
    };
    files::write_pidfile(&paths, pid).map_err(file_err("write pidfile", &paths.pidfile()))?;
    let mut cleanup = Cleanup {
        paths: Some(paths.clone()),
        socket: false,
    };
    files::write_state(&paths, &state(Phase::Starting))
        .map_err(file_err("write state file", &paths.state_file()))?;
    info!(config = %config_path, pid, "starting");

    let device = options
        .host
        .open_device(&config.tun, options.tuning.offload)
        .map_err(|source| DaemonError::Device {
            name: config.tun.name.clone(),
            source,
        })?;
    let routes = options
        .host
        .route_applier(&*device)
        .map_err(DaemonError::Routes)?;
    info!(tun = %device.name(), "packet device open");

    let (udp, udp_addr) = bind_udp(config.node.listen_address, config.node.listen_port)?;
    let local = local_addresses(udp_addr, &config, &device.name());
    info!(bound = %udp_addr, candidates = ?local, "UDP socket bound");

    let (aead, aead_reason) = options.tuning.aead();
    info!(
        "transport crypto: ChaCha20-Poly1305, {} implementation ({aead_reason})",
        aead.name()
    );
    let (mut node, names) = build::node(&config, &identity, options.timers, aead, &local)?;
    let plane = node.enable_data_plane(Instant::now());
    info!(peer_id = %node.peer_id(), network = %config.node.network_id, prefix = %config.tun.local_prefix(), "node started");

    let workloads = Workloads::start(
        &state_dir(&config),
        config.tun.local_prefix(),
        config.tun.address,
        u32::from(config.tun.mtu),
    )
    .map_err(DaemonError::Workloads)?;
    node.set_workload_names(Instant::now(), workloads.names());
    let (zone_tx, zone_rx) = tokio::sync::watch::channel(std::sync::Arc::new(
        vine_core::names::Zone::new(crate::dns::DOMAIN),
    ));
    let dns = match crate::dns::spawn(config.tun.address, zone_rx).await {
        Ok(server) => {
            info!(address = %config.tun.address, "DNS server for *.{} on port 53 (UDP and TCP)", crate::dns::DOMAIN);
            Some(server)
        }
        Err(e) => {
            warn!(address = %config.tun.address, "cannot serve DNS on port 53: {e}; overlay names will not resolve through this node");
            None
        }
    };

    let listener = api::bind(&paths.socket())?;
    cleanup.socket = true;
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(64);
    let slow = Arc::new(SlowQueues::new(Instant::now()));
    let dataplane = Dataplane::spawn(&plane, device.clone(), &udp, &slow, &options.tuning)
        .map_err(DaemonError::Runtime)?;
    let server = tokio::spawn(api::serve(listener, cmd_tx.clone()));

    files::write_state(&paths, &state(Phase::Running))
        .map_err(file_err("write state file", &paths.state_file()))?;
    cleanup.paths = None;
    let event_loop = EventLoop {
        node,
        identity,
        config,
        config_path: options.config_path.clone(),
        timers: options.timers,
        aead,
        udp,
        udp_addr,
        local,
        device,
        routes,
        paths: paths.clone(),
        phase: Phase::Running,
        started_at,
        plane,
        dataplane,
        slow: SlowReceiver::new(slow),
        server,
        shutdown_timeout: options.shutdown_timeout,
        pings: Vec::new(),
        names,
        peer_logs: Default::default(),
        workloads,
        zone: super::event_loop::ZoneFeed {
            tx: zone_tx,
            generation: None,
            built: None,
        },
        _dns: dns,
    };
    let task = tokio::spawn(async move {
        let result = event_loop.run(cmd_rx).await;
        // Released only after shutdown removed the runtime files.
        drop(lock);
        result
    });
    info!("running");
    Ok(Started {
        commands: cmd_tx,
        task,
        paths,
        udp: udp_addr,
    })
}

/// Removes the pidfile, state file and (once this start bound it) the
/// socket if startup fails half-way. Dropped before the lock is released.
struct Cleanup {
    paths: Option<RuntimePaths>,
    socket: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(paths) = self.paths.take() {
            if self.socket {
                let _ = files::remove_if_present(&paths.socket());
            }
            for p in [paths.pidfile(), paths.state_file()] {
                let _ = files::remove_if_present(&p);
            }
        }
    }
}

/// Takes the single-instance lock. Held by another process: a daemon runs,
/// reported with the pid in its pidfile (or, while it is still writing
/// that, the lock holder's pid from `/proc/locks`). Taken: any pidfile
/// left is stale (its daemon is gone) and is overwritten.
fn lock(paths: &RuntimePaths) -> Result<RuntimeLock, DaemonError> {
    match RuntimeLock::acquire(paths) {
        Ok(lock) => {
            if let Ok(Some(pid)) = files::read_pidfile(paths) {
                warn!(pid, pidfile = %paths.pidfile().display(), "removing stale pidfile of a daemon that is gone");
            }
            Ok(lock)
        }
        Err(LockError::Held(_)) => {
            let pid = files::read_pidfile(paths)
                .ok()
                .flatten()
                .or_else(|| files::lock_holders(paths).first().copied())
                .unwrap_or(0);
            Err(DaemonError::AlreadyRunning {
                pid,
                pidfile: paths.pidfile(),
            })
        }
        Err(e) => Err(DaemonError::Lock(e)),
    }
}

fn bind_udp(ip: Ipv4Addr, port: u16) -> Result<(UdpBatch, SocketAddrV4), DaemonError> {
    let addr = SocketAddrV4::new(ip, port);
    let socket = UdpBatch::bind(addr, SOCKET_BUFFER).map_err(|e| DaemonError::Bind {
        addr,
        source: std::io::Error::other(e),
    })?;
    let bound = socket
        .local_addr()
        .map_err(|source| DaemonError::Bind { addr, source })?;
    match socket.buffer_sizes() {
        Ok((rcv, snd)) => info!(
            receive_buffer = rcv,
            send_buffer = snd,
            gso = socket.gso(),
            gro = socket.gro(),
            "UDP offloads"
        ),
        Err(e) => warn!("cannot read UDP buffer sizes: {e}"),
    }
    Ok((socket, bound))
}

/// The node's local candidates: the bound address, or every non-loopback
/// IPv4 address of the host (not the overlay's own) when bound to 0.0.0.0.
fn local_addresses(bound: SocketAddrV4, config: &Config, tun_name: &str) -> Vec<SocketAddrV4> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let prefix = config.tun.local_prefix();
    let mut out = Vec::new();
    match nix::ifaddrs::getifaddrs() {
        Ok(addrs) => {
            for ifa in addrs {
                if ifa.interface_name == tun_name {
                    continue;
                }
                let Some(ip) = ifa
                    .address
                    .as_ref()
                    .and_then(|a| a.as_sockaddr_in())
                    .map(|sin| sin.ip())
                else {
                    continue;
                };
                if ip.is_loopback() || ip.is_unspecified() || prefix.contains(ip) {
                    continue;
                }
                let addr = SocketAddrV4::new(ip, bound.port());
                if !out.contains(&addr) {
                    out.push(addr);
                }
            }
        }
        Err(e) => warn!(
            "cannot list the host's addresses ({e}); peers must find this node through bootstrap peers"
        ),
    }
    out.sort();
    out
}

/// The node's state directory: where its identity file is (workload leases
/// and the host-change journal live there, see `crate::workloads`).
fn state_dir(config: &Config) -> std::path::PathBuf {
    Path::new(&config.node.identity_path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned()
}
