//! [`RunOptions`]: how to run the daemon.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::dataplane::DataplaneTuning;
use crate::host::Host;

/// How to run the daemon.
#[derive(Clone)]
pub struct RunOptions {
    /// The config file.
    pub config_path: PathBuf,
    /// Foreground (`vine daemon run`, `vine up`). When false the process
    /// detaches from its session (`setsid`) before starting.
    pub foreground: bool,
    /// Where the TUN device and route applier come from.
    pub host: Arc<dyn Host>,
    /// Bound on the startup sequence.
    pub startup_timeout: Duration,
    /// Bound on the shutdown sequence.
    pub shutdown_timeout: Duration,
    /// Protocol timers for the node (tests shorten them).
    pub timers: vine_core::node::Timers,
    /// How the dataplane runs.
    pub tuning: DataplaneTuning,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("config_path", &self.config_path)
            .field("foreground", &self.foreground)
            .field("startup_timeout", &self.startup_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("tuning", &self.tuning)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// Options for the real host with default bounds (10 s startup, 5 s
    /// shutdown) and the dataplane tuned by the environment
    /// ([`DataplaneTuning::from_env`]): the one place the daemon reads its
    /// environment overrides.
    pub fn new(config_path: impl Into<PathBuf>, foreground: bool) -> Self {
        Self {
            config_path: config_path.into(),
            foreground,
            host: Arc::new(crate::linux::LinuxHost),
            startup_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            timers: vine_core::node::Timers::default(),
            tuning: DataplaneTuning::from_env(),
        }
    }

    /// Replaces the host (tests use fakes).
    pub fn with_host(mut self, host: Arc<dyn Host>) -> Self {
        self.host = host;
        self
    }
}
