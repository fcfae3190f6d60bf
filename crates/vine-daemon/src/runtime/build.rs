//! The one builder of nodes, used by startup and by reload: loads and
//! validates the config and identity, and builds and starts a [`Node`]
//! with the watch that re-resolves its bootstrap host names.

use std::net::SocketAddrV4;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::warn;
use vine_core::Identity;
use vine_core::config::Config;
use vine_core::node::{Node, NodeConfig, Timers};
use vine_core::wg::aead::Backend;

use super::names;
use crate::error::DaemonError;

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
pub(crate) fn node(
    config: &Config,
    identity: &Identity,
    timers: Timers,
    aead: Backend,
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
    node.set_aead_backend(aead);
    node.set_local_addresses(local.to_vec());
    node.start(now);
    let watch = names::NameWatch::spawn(resolved, resolver, names::REFRESH, names::RETRY);
    Ok((node, watch))
}

/// Seconds since the UNIX epoch, and the same as a `Duration`.
pub(crate) fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}
