//! Talking to the running daemon through its api socket: the node's config
//! (which names the runtime directory and so the socket), one request with
//! a timeout, and the message for a daemon that is not running.

use std::time::Duration;

use anyhow::anyhow;
use vine_core::config::Config;
use vine_daemon::api::client::{self, ClientError};
use vine_daemon::api::{RequestBody, ResponseBody};
use vine_daemon::files::RuntimePaths;

use crate::cli::Cli;

/// How long a diagnostic request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the config (schema only; the identity is not needed to find the
/// runtime directory).
pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let path = cli.config_path();
    let (text, _) = vine_linux::config_file::read(&path)?;
    let parsed = vine_core::config::parse(&text);
    parsed.config.ok_or_else(|| {
        anyhow!(
            "config {} has errors; see `vine config validate -c {}`",
            path.display(),
            path.display()
        )
    })
}

/// The daemon's files (pidfile, state file, api socket) for `config`.
pub fn runtime_paths(config: &Config) -> RuntimePaths {
    RuntimePaths::new(&config.node.runtime_dir)
}

/// Sends one request to the daemon of `config`.
pub fn request(config: &Config, body: RequestBody) -> Result<ResponseBody, ClientError> {
    client::request(&runtime_paths(config).socket(), body, REQUEST_TIMEOUT)
}

/// Asks the daemon; `Ok(None)` when it is not running (nothing is printed).
pub fn ask(config: &Config, body: RequestBody) -> anyhow::Result<Option<ResponseBody>> {
    match request(config, body) {
        Ok(r) => Ok(Some(r)),
        Err(ClientError::NotRunning(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Says on stderr that the daemon is not running, then `tail`.
pub fn not_running(config: &Config, tail: &str) {
    eprintln!(
        "vine is not running (no control socket at {}){tail}",
        runtime_paths(config).socket().display()
    );
}
