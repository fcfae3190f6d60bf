//! The bounded startup sequence.

pub(crate) mod names;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{info, warn};
use vine_core::Identity;
use vine_core::config::Config;
use vine_core::node::{Node, NodeConfig, Timers};
use vine_core::wg::aead::Backend;

use super::datapath::{DataPath, SlowPath};
use super::{Command, DaemonHandle, RunOptions, control, engine::Engine, wall_clock};
use crate::error::DaemonError;
use crate::files::{self, RuntimePaths, StateFile};
use crate::protocol::Phase;
use vine_linux::udp::UdpBatch;

/// Socket buffer size asked for (the kernel may clamp it without *FORCE).
pub(super) const SOCKET_BUFFER: usize = 8 << 20;
/// Work queued between the data-plane threads and the event loop.
const SLOW_QUEUE: usize = 4096;

/// Loads and validates the config and identity; every error-level
/// diagnostic is returned.
pub(crate) fn load(path: &Path) -> Result<(Config, Identity), DaemonError> {
    let mut v = vine_linux::config_file::validate(path)?;
    let shown = path.display().to_string();
    match (v.parsed.config.take(), v.identity.take()) {
        (Some(config), Some(identity)) if !v.parsed.has_errors() => {
            for d in &v.parsed.diagnostics {
                warn!("{}", d.render(&shown));
            }
            Ok((config, identity))
        }
        _ => {
            let mut diagnostics: Vec<String> = v
                .parsed
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| d.render(&shown))
                .collect();
            if diagnostics.is_empty() {
                diagnostics.push(format!("{shown}: the identity could not be loaded"));
            }
            Err(DaemonError::InvalidConfig {
                path: shown,
                diagnostics,
            })
        }
    }
}

/// Builds and starts a node, and the watch that re-resolves its bootstrap
/// host names. Resolves those names once here (blocking DNS, like the rest
/// of startup and reload); one that does not resolve is logged and left
/// for the watch as long as another bootstrap peer remains.
pub(crate) fn new_node(
    config: &Config,
    identity: &Identity,
    timers: Timers,
    local: &[SocketAddrV4],
) -> Result<(Node, names::NameWatch), DaemonError> {
    let resolver = names::system();
    let resolved = names::resolve_all(&names::names(config), &resolver);
    names::log_changes(None, &resolved);
    let mut nc = NodeConfig::from_config(config, identity, |host, port| {
        resolved
            .iter()
            .find(|r| r.name.host == host && r.name.port == port)
            .and_then(|r| r.addr)
    })?;
    nc.timers = timers;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| DaemonError::Random(e.to_string()))?;
    let now = Instant::now();
    let mut node = Node::new(nc, identity, seed, now, wall_clock())?;
    node.set_aead_backend(aead_backend().0);
    node.set_local_addresses(local.to_vec());
    node.start(now);
    let watch = names::NameWatch::spawn(resolved, resolver, names::REFRESH, names::RETRY);
    Ok((node, watch))
}

/// The transport AEAD implementation and why: ring when `VINE_AEAD=ring`
/// is set (for A/B comparisons), else [`Backend::detect`]'s choice.
pub(crate) fn aead_backend() -> (Backend, &'static str) {
    if std::env::var_os("VINE_AEAD").is_some_and(|v| v == "ring") {
        return (Backend::Ring, "VINE_AEAD=ring is set");
    }
    Backend::detect()
}

pub(crate) async fn start(options: RunOptions) -> Result<DaemonHandle, DaemonError> {
    let (config, identity) = load(&options.config_path)?;
    let paths = RuntimePaths::new(&config.node.runtime_dir);
    let file_err = |what, path: &Path| {
        let path = path.to_owned();
        move |source| DaemonError::File { what, path, source }
    };
    paths
        .create_dir()
        .map_err(file_err("create runtime directory", &paths.dir))?;
    refuse_if_running(&paths)?;
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
    let mut cleanup = Cleanup(Some(paths.clone()));
    files::write_state(&paths, &state(Phase::Starting))
        .map_err(file_err("write state file", &paths.state_file()))?;
    info!(config = %config_path, pid, "starting");

    let device = options
        .host
        .open_device(&config.tun)
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

    let (mut node, names) = new_node(&config, &identity, options.timers, &local)?;
    let plane = node.enable_data_plane(Instant::now());
    info!(peer_id = %node.peer_id(), network = %config.node.network_id, prefix = %config.tun.local_prefix(), "node started");

    let listener = control::bind(&paths.socket())?;
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(64);
    let (slow_tx, slow_rx) = mpsc::channel::<SlowPath>(SLOW_QUEUE);
    let datapath =
        DataPath::spawn(&plane, device.clone(), &udp, slow_tx).map_err(DaemonError::Runtime)?;
    let server = tokio::spawn(control::serve(listener, cmd_tx.clone()));

    files::write_state(&paths, &state(Phase::Running))
        .map_err(file_err("write state file", &paths.state_file()))?;
    cleanup.0 = None;
    let engine = Engine {
        node,
        identity,
        config,
        config_path: options.config_path.clone(),
        timers: options.timers,
        udp,
        udp_addr,
        local,
        device,
        routes,
        paths: paths.clone(),
        phase: Phase::Running,
        started_at,
        plane,
        datapath,
        server,
        shutdown_timeout: options.shutdown_timeout,
        pings: Vec::new(),
        names,
    };
    let task = tokio::spawn(engine.run(cmd_rx, slow_rx));
    info!("running");
    Ok(DaemonHandle {
        commands: cmd_tx,
        task,
        paths,
        udp: udp_addr,
    })
}

/// Removes the pidfile, state file and socket if startup fails half-way.
struct Cleanup(Option<RuntimePaths>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(paths) = self.0.take() {
            for p in [paths.socket(), paths.pidfile(), paths.state_file()] {
                let _ = files::remove_if_present(&p);
            }
        }
    }
}

fn refuse_if_running(paths: &RuntimePaths) -> Result<(), DaemonError> {
    let Ok(Some(pid)) = files::read_pidfile(paths) else {
        return Ok(());
    };
    if pid != std::process::id() && crate::lifecycle::process_alive(pid) {
        return Err(DaemonError::AlreadyRunning {
            pid,
            pidfile: paths.pidfile(),
        });
    }
    warn!(pid, pidfile = %paths.pidfile().display(), "removing stale pidfile of a daemon that is gone");
    Ok(())
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
