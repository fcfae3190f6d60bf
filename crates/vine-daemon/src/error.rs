//! Why the daemon could not start, run or stop.

use std::io;
use std::net::SocketAddrV4;
use std::path::PathBuf;

use vine_core::node::NodeError;
use vine_linux::config_file::ConfigFileError;

use crate::files::{LockError, RuntimeDirError};

/// A daemon failure. Each message names what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config file could not be read at all.
    #[error(transparent)]
    ConfigUnreadable(#[from] ConfigFileError),
    /// The config or identity has errors; nothing was started.
    #[error(
        "config {path} has errors, so the daemon did not start:\n{}\nfix them and check with `vine config validate -c {path}`",
        diagnostics.join("\n")
    )]
    InvalidConfig {
        /// The config file.
        path: String,
        /// Rendered diagnostics.
        diagnostics: Vec<String>,
    },
    /// The node refused the config (overlapping prefixes, unresolvable
    /// bootstrap host).
    #[error("cannot create the node: {0}")]
    Node(#[from] NodeError),
    /// Another daemon holds the runtime directory.
    #[error(
        "a vine daemon is already running with pid {pid} (pidfile {pidfile}); stop it with `vine daemon stop` first"
    )]
    AlreadyRunning {
        /// Its pid.
        pid: u32,
        /// The pidfile naming it.
        pidfile: PathBuf,
    },
    /// The runtime directory is not owned by the daemon's user or is
    /// writable by group or others; nothing was written in it.
    #[error("{0}; the daemon did not start")]
    UnsafeRuntimeDir(#[from] RuntimeDirError),
    /// The single-instance lock could not be taken (not because another
    /// daemon holds it: that is [`DaemonError::AlreadyRunning`]).
    #[error("{0}; the daemon did not start")]
    Lock(LockError),
    /// A live daemon answers on the control socket's path (one that does
    /// not hold the lock, e.g. an older version); the socket was left
    /// alone.
    #[error(
        "a live daemon answers on the control socket {path}, so it was not removed and this daemon did not start; stop that daemon (`vine daemon stop`) first"
    )]
    ControlSocketInUse {
        /// Socket path.
        path: PathBuf,
    },
    /// A runtime file or directory could not be written.
    #[error("cannot {what} {path}: {source}")]
    File {
        /// What was being done ("create runtime directory", "write pidfile").
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The packet device could not be opened.
    #[error(
        "cannot open the TUN device {name}: {source} (vine needs root or CAP_NET_ADMIN and /dev/net/tun)"
    )]
    Device {
        /// Interface name from `[tun]`.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// The route applier could not be created.
    #[error("cannot manage kernel routes: {0} (vine needs root or CAP_NET_ADMIN)")]
    Routes(io::Error),
    /// The UDP socket could not be bound.
    #[error(
        "cannot bind UDP {addr}: {source}; is another vine (or another program) using the port? change [node] listen_port or stop it"
    )]
    Bind {
        /// Address from `[node]`.
        addr: SocketAddrV4,
        /// The OS error.
        source: io::Error,
    },
    /// The control socket could not be created.
    #[error("cannot create the control socket {path}: {source}")]
    ControlSocket {
        /// Socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The OS random number generator failed.
    #[error("cannot draw a random seed from the OS: {0}")]
    Random(String),
    /// The workload state (leases, host-change journal) cannot be read.
    #[error("workload state: {0}; the daemon did not start")]
    Workloads(String),
    /// The async runtime or a thread could not be created.
    #[error("cannot start the daemon's runtime: {0}")]
    Runtime(io::Error),
    /// Startup did not finish in time.
    #[error("startup did not finish within {0:?}; check the log for the step that hung")]
    StartupTimeout(std::time::Duration),
    /// The event loop ended unexpectedly.
    #[error("the daemon's event loop failed: {0}")]
    EventLoop(String),
}
