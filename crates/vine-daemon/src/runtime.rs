//! The daemon: bounded startup, the event loop around the sans-IO
//! [`Node`](vine_core::node::Node), signals, reload and bounded shutdown.
//!
//! # Phases
//!
//! `stopped → starting → running → stopping → stopped`. The phase is written
//! to the state file (`<runtime_dir>/vine.state.json`) at every change and
//! reported by the control socket's `status`.
//!
//! # Startup (bounded by [`RunOptions::startup_timeout`])
//!
//! 1. validate the config and identity; any error stops here with every
//!    diagnostic listed;
//! 2. create the runtime dir (0755); refuse unless it is owned by the
//!    daemon's user (root) and not group/world writable and none of the
//!    daemon's file names in it is a symlink; take the single-instance
//!    lock (`flock` on `vine.lock`, held until the event loop ends; held by
//!    another process: already running); write the pidfile (0644) and the
//!    state file (`starting`) through `files::write_file`;
//! 3. open the TUN device and the route applier through the [`Host`](crate::host::Host);
//! 4. bind UDP on `listen_address:listen_port` with large buffers;
//! 5. create the node (OS RNG seed, wall clock), set its local addresses
//!    (the bound address, or every non-loopback IPv4 address of the host
//!    when bound to 0.0.0.0) and start it;
//! 6. bind the control socket (0600 before it is reachable; refused if a
//!    live daemon answers on its path), spawn the dataplane threads (see
//!    `dataplane`: TX and RX on the node's published tables, tuned by
//!    [`RunOptions::tuning`]) and the event loop; state `running`.
//!
//! # The background log (only in [`run`])
//!
//! When stderr is `<runtime_dir>/vine.log` (a background daemon), a log
//! past [`LOG_CAP`](crate::files::LOG_CAP) is copied to `vine.log.1` and
//! truncated (checked every 30 s).
//!
//! # Signals (only in [`run`])
//!
//! SIGTERM/SIGINT → shutdown; SIGHUP → [`DaemonHandle::reload`]; SIGUSR1 →
//! write `<runtime_dir>/snapshot.json`.
//!
//! # Reload
//!
//! The config is re-read and validated. Invalid: the old config stays and
//! the diagnostics are logged and returned. `[node]` or `[tun]` changed (or
//! the identity): restart required, the old config stays. Only
//! `[[allowed_peers]]`, `[[bootstrap_peers]]` or `[policy]` changed: the node
//! is stopped (peers get a Withdraw, routes are removed) and a new node is
//! built from the new config with the same identity and started, so
//! sessions and routes are re-established within a few round trips. A
//! finer-grained reload that keeps unaffected sessions can come later.
//!
//! # Shutdown (bounded by [`RunOptions::shutdown_timeout`])
//!
//! `node.stop()`, flush its transmits (so the Withdraws go out) and route
//! intents, `remove_all` routes, then remove the control socket, pidfile and
//! state file — the files are removed even when the bound is hit.

//! # Files
//!
//! This file holds [`run`] (signals, the tokio runtime) and
//! [`DaemonHandle`]; below it, each arrow one way:
//!
//! * `start` — the startup sequence; builds the `event_loop`, the `api`
//!   server and the `dataplane` threads;
//! * `event_loop` — owns the node, answers requests (`views`), reloads;
//!   `log_limit` rate limits the log lines peers cause;
//! * `log_cap` — caps a background daemon's `vine.log` while it runs;
//! * `build` — loads the config and builds a node: the one builder that
//!   startup and reload both call; `names` re-resolves bootstrap hosts;
//! * `api` — the control socket's server (requests to the event loop);
//! * `dataplane` — the packet-moving threads and their
//!   [`DataplaneTuning`];
//! * `command` — what the api server and signals send the event loop;
//!   `options` — [`RunOptions`].

mod api;
mod build;
mod command;
mod dataplane;
mod event_loop;
#[doc(hidden)]
pub mod fuzzing;
mod log_cap;
mod log_limit;
mod names;
mod options;
mod start;
mod views;

use std::net::SocketAddrV4;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::api::{ErrorCode, ReloadOutcome, RequestBody, Response, ResponseBody};
use crate::error::DaemonError;
use crate::files::RuntimePaths;
use command::{Command, request_via};
pub use dataplane::DataplaneTuning;
pub use options::RunOptions;

/// Runs the daemon until SIGTERM/SIGINT or a `shutdown` request. Builds its
/// own tokio runtime; call it from a plain thread (the binary's `main`).
pub fn run(options: RunOptions) -> Result<(), DaemonError> {
    if !options.foreground {
        // Detach from the launching terminal's session. Fails harmlessly
        // when already a session leader.
        if let Err(e) = nix::unistd::setsid() {
            warn!("setsid failed ({e}); continuing in the current session");
        }
    }
    // A daemon inherits its parent's signal mask (Rust's `Command` does not
    // reset it): started by a process that blocks SIGTERM, it would never
    // see the signals it is stopped and reloaded with. Unblock them here,
    // before any thread exists, so every thread inherits the clean mask.
    let mut signals = nix::sys::signal::SigSet::empty();
    for s in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGUSR1,
    ] {
        signals.add(s);
    }
    if let Err(e) = signals.thread_unblock() {
        warn!(
            "cannot unblock SIGTERM/SIGINT/SIGHUP/SIGUSR1 ({e}); stop the daemon with `vine daemon stop`"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("vine-daemon")
        .build()
        .map_err(DaemonError::Runtime)?;
    rt.block_on(async move {
        // Handlers first: a SIGTERM that arrives as soon as the socket
        // answers (before the forwarder runs) is queued, not fatal.
        let signals = Signals::new()?;
        let handle = DaemonHandle::start(options).await?;
        let signals = signals.forward(handle.commands.clone());
        let log_cap = log_cap::spawn(&handle.paths().log(), crate::files::LOG_CAP);
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            warn!("sd_notify READY failed: {e}");
        }
        let result = handle.wait().await;
        signals.abort();
        if let Some(task) = log_cap {
            task.abort();
        }
        result
    })
}

/// A started daemon: send it requests, reload it, stop it, wait for it.
#[derive(Debug)]
pub struct DaemonHandle {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<Result<(), DaemonError>>,
    paths: RuntimePaths,
    udp: SocketAddrV4,
}

impl DaemonHandle {
    /// Runs the bounded startup sequence and spawns the event loop on the
    /// current tokio runtime. Installs no signal handlers (see [`run`]).
    pub async fn start(options: RunOptions) -> Result<Self, DaemonError> {
        let bound = options.startup_timeout;
        match tokio::time::timeout(bound, start::start(options)).await {
            Ok(Ok(started)) => Ok(Self {
                commands: started.commands,
                task: started.task,
                paths: started.paths,
                udp: started.udp,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(DaemonError::StartupTimeout(bound)),
        }
    }

    /// Sends a control request to the event loop, as the control socket
    /// does.
    pub async fn request(&self, body: RequestBody) -> Response {
        request_via(&self.commands, body).await
    }

    /// Re-reads the config (what SIGHUP does).
    pub async fn reload(&self) -> Result<ReloadOutcome, crate::api::ErrorBody> {
        match self.request(RequestBody::Reload).await.body {
            Ok(ResponseBody::Reload(outcome)) => Ok(outcome),
            Ok(other) => Err(crate::api::ErrorBody {
                code: ErrorCode::Internal,
                message: format!("unexpected answer to reload: {other:?}"),
            }),
            Err(e) => Err(e),
        }
    }

    /// Asks the daemon to write its snapshot file (what SIGUSR1 does).
    pub async fn dump_snapshot(&self) {
        let _ = self.commands.send(Command::DumpSnapshot).await;
    }

    /// Starts the shutdown sequence (what SIGTERM does) without waiting.
    pub async fn shutdown(&self) {
        let _ = self.request(RequestBody::Shutdown).await;
    }

    /// Waits until the daemon has stopped and cleaned up.
    pub async fn wait(self) -> Result<(), DaemonError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(DaemonError::EventLoop(e.to_string())),
        }
    }

    /// The runtime directory's paths.
    pub fn paths(&self) -> &RuntimePaths {
        &self.paths
    }

    /// The bound UDP address.
    pub fn udp_addr(&self) -> SocketAddrV4 {
        self.udp
    }
}

/// The daemon's signal handlers, installed before startup.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, DaemonError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(DaemonError::Runtime)?,
            int: signal(SignalKind::interrupt()).map_err(DaemonError::Runtime)?,
            hup: signal(SignalKind::hangup()).map_err(DaemonError::Runtime)?,
            usr1: signal(SignalKind::user_defined1()).map_err(DaemonError::Runtime)?,
        })
    }

    /// Forwards each signal to the event loop as a command.
    fn forward(self, commands: mpsc::Sender<Command>) -> JoinHandle<()> {
        let Self {
            mut term,
            mut int,
            mut hup,
            mut usr1,
        } = self;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => {
                        info!("SIGTERM: shutting down");
                        let _ = request_via(&commands, RequestBody::Shutdown).await;
                    }
                    _ = int.recv() => {
                        info!("SIGINT: shutting down");
                        let _ = request_via(&commands, RequestBody::Shutdown).await;
                    }
                    _ = hup.recv() => {
                        info!("SIGHUP: reloading the config");
                        let _ = request_via(&commands, RequestBody::Reload).await;
                    }
                    _ = usr1.recv() => {
                        info!("SIGUSR1: writing the snapshot");
                        if commands.send(Command::DumpSnapshot).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
    }
}
