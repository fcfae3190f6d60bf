//! Host readiness checks behind `vine doctor`: can this host, with this
//! config, run a vine node right now?
//!
//! Every check is read-only or undone at once (the UDP port is bound and
//! released; `/dev/net/tun` is opened and closed; no device is created).
//! Network state is read in the calling thread's network namespace.

mod leftovers;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io;
use std::net::UdpSocket;
use std::path::Path;

use serde::Serialize;
use vine_core::config::{self, Config};
use vine_core::net::Ipv4Prefix;

use crate::config_file::{self, ConfigFileError};
use crate::identity_store::{self, IdentityError};
use crate::routes::Routes;
use crate::tun::{self, NameState};

/// The `CAP_NET_ADMIN` bit in the capability sets.
const CAP_NET_ADMIN: u32 = 12;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `tun-device`, `udp-port`.
    pub name: &'static str,
    /// Whether the host passes it.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do about a failure (always set when `ok` is false).
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Whether every check passed.
pub fn all_ok(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.ok)
}

/// Runs every check for `config`, read from `config_path`: the TUN clone
/// device, `CAP_NET_ADMIN`, the config file (validated again from disk),
/// the identity it names, the TUN name, route conflicts for the local
/// prefix and every allowed prefix, and the UDP listen port.
pub fn run(config: &Config, config_path: &Path) -> Vec<Check> {
    run_with_identity(config, config_path, Path::new(&config.node.identity_path))
}

fn run_with_identity(config: &Config, config_path: &Path, identity_path: &Path) -> Vec<Check> {
    let mut checks = host_checks();
    checks.push(config_check(config_path));
    checks.push(identity_check(identity_path));
    checks.push(tun_name_check(&config.tun.name, config_path));
    checks.push(route_check(config));
    checks.push(udp_port_check(config));
    checks.push(leftovers_check(config));
    checks
}

/// Reads the config at `config_path` and runs [`run`] on it, checking
/// `identity` instead of the config's `identity_path` when given (the CLI's
/// `--identity`). When the file cannot be read or does not parse, the
/// checks that need no config still run, next to a failing `config` check
/// (and the identity check when an identity path is known).
pub fn run_for_path(config_path: &Path, identity: Option<&Path>) -> Vec<Check> {
    let parsed = config_file::read(config_path).map(|(text, _mode)| config::parse(&text));
    match parsed {
        Ok(parsed) => match &parsed.config {
            Some(config) => run_with_identity(
                config,
                config_path,
                identity.unwrap_or(Path::new(&config.node.identity_path)),
            ),
            None => {
                let mut checks = host_checks();
                checks.push(config_check(config_path));
                let identity = identity.or(parsed.identity_path.as_deref().map(Path::new));
                if let Some(identity_path) = identity {
                    checks.push(identity_check(identity_path));
                }
                checks
            }
        },
        Err(e) => {
            let mut checks = host_checks();
            checks.push(unreadable_config(config_path, &e));
            if let Some(identity_path) = identity {
                checks.push(identity_check(identity_path));
            }
            checks
        }
    }
}

/// The checks that need no config: the TUN clone device and
/// `CAP_NET_ADMIN`.
pub fn host_checks() -> Vec<Check> {
    vec![tun_device_check(), capability_check()]
}

fn leftovers_check(config: &Config) -> Check {
    const NAME: &str = "workload-leftovers";
    match leftovers::find(config) {
        None => Check::pass(NAME, "no workload links and no unreverted host changes"),
        Some((found, true)) => {
            Check::pass(NAME, format!("{found}: the running daemon's workloads"))
        }
        Some((found, false)) => Check::fail(
            NAME,
            format!("no daemon runs, yet there are {found}"),
            "start the daemon (`vine daemon start`): it reverts what the journal lists before it attaches anything; or delete the links yourself (`ip link del vw…`)",
        ),
    }
}

fn tun_device_check() -> Check {
    const NAME: &str = "tun-device";
    let path = "/dev/net/tun";
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(_) => Check::pass(NAME, format!("{path} exists and opens")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Check::fail(
            NAME,
            format!("{path} does not exist"),
            "load the tun module (`modprobe tun`); in a container, pass the device through (--device /dev/net/tun)",
        ),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Check::fail(
            NAME,
            format!("cannot open {path}: {e}"),
            "run as root or grant CAP_NET_ADMIN (and access to /dev/net/tun)",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("cannot open {path}: {e}"),
            "load the tun module (`modprobe tun`) and check that /dev/net/tun is a character device (10, 200)",
        ),
    }
}

fn capability_check() -> Check {
    const NAME: &str = "cap-net-admin";
    let fix = "run as root or grant the capability (e.g. `setcap cap_net_admin+ep $(command -v vine)` or AmbientCapabilities=CAP_NET_ADMIN in the systemd unit)";
    match std::fs::read_to_string("/proc/self/status") {
        Ok(status) => match effective_caps(&status) {
            Some(caps) if caps & (1 << CAP_NET_ADMIN) != 0 => {
                Check::pass(NAME, "CAP_NET_ADMIN is in the effective set")
            }
            Some(_) => Check::fail(NAME, "CAP_NET_ADMIN is not in the effective set", fix),
            None => Check::fail(NAME, "/proc/self/status has no readable CapEff line", fix),
        },
        Err(e) => Check::fail(
            NAME,
            format!("cannot read /proc/self/status: {e}"),
            "mount /proc, then run the check again",
        ),
    }
}

/// The `CapEff:` mask of a `/proc/<pid>/status` text.
fn effective_caps(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

fn config_check(config_path: &Path) -> Check {
    const NAME: &str = "config";
    let validate_fix = format!(
        "run `vine config validate -c {}` for every problem with its fix",
        config_path.display()
    );
    match config_file::validate(config_path) {
        Err(e) => unreadable_config(config_path, &e),
        Ok(v) => {
            // Identity problems are reported by their own check.
            let errors: Vec<_> = v
                .parsed
                .diagnostics
                .iter()
                .filter(|d| d.is_error() && !d.code.starts_with("identity-"))
                .collect();
            match errors.first() {
                None => {
                    let (_, warnings) = v.parsed.counts();
                    Check::pass(
                        NAME,
                        format!("{} is valid ({warnings} warning(s))", config_path.display()),
                    )
                }
                Some(first) => {
                    let more = match errors.len() {
                        1 => String::new(),
                        n => format!(" (and {} more errors)", n - 1),
                    };
                    let fix = match &first.hint {
                        Some(hint) => format!("{hint}; then {validate_fix}"),
                        None => validate_fix,
                    };
                    Check::fail(
                        NAME,
                        format!("{}: {}{more}", config_path.display(), first.message),
                        fix,
                    )
                }
            }
        }
    }
}

fn unreadable_config(config_path: &Path, e: &ConfigFileError) -> Check {
    match e {
        ConfigFileError::NotFound(_) => Check::fail(
            "config",
            format!("no config file at {}", config_path.display()),
            format!(
                "create one with `vine config init -c {0}` or pass the right path with -c",
                config_path.display()
            ),
        ),
        other => Check::fail(
            "config",
            other.to_string(),
            "pass the path of vine.toml with -c and make sure this user can read it",
        ),
    }
}

fn identity_check(path: &Path) -> Check {
    const NAME: &str = "identity";
    match identity_store::load(path) {
        Ok(identity) => Check::pass(
            NAME,
            format!("{} loads: peer_id {}", path.display(), identity.peer_id()),
        ),
        Err(e) => {
            let fix = match &e {
                IdentityError::NotFound(p) => {
                    format!("run `vine identity init --identity {}`", p.display())
                }
                IdentityError::BadMode { path, .. } => {
                    format!("run `chmod 600 {}`", path.display())
                }
                IdentityError::Invalid { source, .. } => source.hint().to_owned(),
                IdentityError::Io { source, .. }
                    if source.kind() == io::ErrorKind::PermissionDenied =>
                {
                    "run `vine doctor` as the user the node runs as (usually root)".to_owned()
                }
                _ => {
                    "point [node] identity_path at the file made by `vine identity init`".to_owned()
                }
            };
            Check::fail(NAME, e.to_string(), fix)
        }
    }
}

fn tun_name_check(name: &str, config_path: &Path) -> Check {
    const NAME: &str = "tun-name";
    let choose = format!("choose another [tun] name in {}", config_path.display());
    if let Err(e) = tun::validate_name(name) {
        return Check::fail(NAME, e.to_string(), choose);
    }
    match tun::name_state(name) {
        Ok(NameState::Free) => Check::pass(NAME, format!("{name} is a valid name and free")),
        Ok(NameState::StaleTun) => Check::pass(
            NAME,
            format!(
                "{name} is a leftover TUN device that no process holds; vine replaces it at start"
            ),
        ),
        Ok(NameState::TunInUse) => Check::fail(
            NAME,
            format!("TUN device {name} is held by a running process"),
            format!("stop the running vine (`vine down`) or {choose}"),
        ),
        Ok(NameState::Other(kind)) => Check::fail(
            NAME,
            format!("interface {name} exists and is not a TUN device (it is {kind})"),
            format!("{choose}, or remove that interface if it is unused (`ip link del {name}`)"),
        ),
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            "run the check as root, or check that netlink works on this host",
        ),
    }
}

fn route_check(config: &Config) -> Check {
    const NAME: &str = "route-conflicts";
    let prefixes: BTreeSet<Ipv4Prefix> = std::iter::once(config.tun.local_prefix())
        .chain(config.allowed_peers.iter().map(|p| p.prefix))
        .collect();
    let list = prefixes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    // Routes through vine's own TUN (a running or leftover node) are fine;
    // an interface of that name that is not a TUN is not vine's.
    let own = match tun::name_state(&config.tun.name) {
        Ok(NameState::StaleTun | NameState::TunInUse) => {
            tun::interface_index(&config.tun.name).ok().flatten()
        }
        _ => None,
    };
    let mut routes = match Routes::new() {
        Ok(r) => r,
        Err(e) => {
            return Check::fail(NAME, e.to_string(), "check that netlink works on this host");
        }
    };
    let mut found = Vec::new();
    for prefix in &prefixes {
        match routes.conflicts(*prefix, own) {
            Ok(c) if c.is_empty() => {}
            Ok(c) => found.push(format!("{prefix} overlaps {}", c.join(", "))),
            Err(e) => {
                return Check::fail(NAME, e.to_string(), "check that netlink works on this host");
            }
        }
    }
    if found.is_empty() {
        Check::pass(NAME, format!("no kernel route overlaps {list}"))
    } else {
        Check::fail(
            NAME,
            found.join("; "),
            "move the overlay to prefixes the host does not use ([tun] address/prefix_len and [[allowed_peers]] prefix), or remove the conflicting routes (`ip route del PREFIX`)",
        )
    }
}

fn udp_port_check(config: &Config) -> Check {
    const NAME: &str = "udp-port";
    let addr = (config.node.listen_address, config.node.listen_port);
    let shown = format!("{}:{}", addr.0, addr.1);
    match UdpSocket::bind(addr) {
        Ok(socket) => {
            drop(socket);
            Check::pass(NAME, format!("UDP {shown} is free"))
        }
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Check::fail(
            NAME,
            format!("UDP {shown} is in use"),
            format!(
                "stop the program that holds it (see `ss -ulpn 'sport = :{}'`) or change [node] listen_port",
                addr.1
            ),
        ),
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => Check::fail(
            NAME,
            format!(
                "cannot bind UDP {shown}: {} is not an address of this host",
                addr.0
            ),
            "set [node] listen_address to one of this host's addresses, or 0.0.0.0",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("cannot bind UDP {shown}: {e}"),
            "choose another [node] listen_port (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
        ),
    }
}
