//! `vine daemon run|start|stop|status`, `vine up|down` and the live
//! diagnostics (`status`, `peers`, `routes`, `sessions`, `counters`,
//! `snapshot`, `ping`) served by the daemon's api.
//!
//! Without a running daemon, `status`, `peers`, `routes` and `sessions` say
//! so and show the configured view; `counters`, `snapshot` and `ping` say so
//! and exit 1 (nothing is faked).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use serde::Serialize;
use vine_core::config::Config;
use vine_daemon::api::{
    CountersInfo, PeerInfo, PingResult, RelayPairCounts, RequestBody, ResponseBody, RouteInfo,
    SessionInfo, Status,
};
use vine_daemon::lifecycle::{self, LifecycleError};

use crate::api::{ask, load_config, not_running, runtime_paths};
use crate::cli::{Cli, DaemonCommand, Format};
use crate::failure::{Failure, Outcome};
use crate::output::{self, opt, table, yes_no};

pub(crate) fn run(cli: &Cli, cmd: &DaemonCommand) -> Outcome {
    match cmd {
        DaemonCommand::Run => foreground(cli),
        DaemonCommand::Start => start(cli),
        DaemonCommand::Stop => stop(cli),
        DaemonCommand::Status => daemon_status(cli),
    }
}

/// `vine up` / `vine daemon run`.
pub(crate) fn foreground(cli: &Cli) -> Outcome {
    if cli.identity.is_some() {
        return Err(anyhow!(
            "--identity cannot be used with the daemon: set identity_path in [node] of {}",
            cli.config_path().display()
        )
        .into());
    }
    init_logging(cli.verbose);
    let detached = std::env::var_os(lifecycle::DETACH_ENV).is_some();
    let options = vine_daemon::RunOptions::new(cli.config_path(), !detached);
    vine_daemon::run(options)?;
    Ok(())
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn start(cli: &Cli) -> Outcome {
    let config = load_config(cli)?;
    let exe = std::env::current_exe().context("cannot find the vine executable to re-run")?;
    let config_path = absolute(&cli.config_path())?;
    let started =
        lifecycle::start_background(&config_path, Path::new(&config.node.runtime_dir), &exe)?;
    output::emit(cli.format, &started, || {
        println!(
            "vine started (pid {}); log: {}",
            started.pid,
            started.log.display()
        );
        print_status(&started.status);
    });
    Ok(())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(path))
}

/// `vine down` / `vine daemon stop`.
pub(crate) fn stop(cli: &Cli) -> Outcome {
    let config = load_config(cli)?;
    match lifecycle::stop(Path::new(&config.node.runtime_dir)) {
        Ok(stopped) => {
            output::emit(cli.format, &stopped, || {
                println!("vine stopped (pid {})", stopped.pid);
            });
            Ok(())
        }
        Err(e @ (LifecycleError::NotRunning(_) | LifecycleError::StalePidfile { .. })) => {
            eprintln!("{e}");
            Err(Failure::Reported)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize)]
struct DaemonStatusReport {
    #[serde(flatten)]
    files: lifecycle::DaemonStatus,
    live: Option<Status>,
}

fn daemon_status(cli: &Cli) -> Outcome {
    let config = load_config(cli)?;
    let paths = runtime_paths(&config);
    let files = lifecycle::status(&paths.dir)?;
    let live = match crate::api::request(&config, RequestBody::Status) {
        Ok(ResponseBody::Status(s)) => Some(s),
        _ => None,
    };
    let stale = files.stale;
    let report = DaemonStatusReport { files, live };
    output::emit(cli.format, &report, || {
        let f = &report.files;
        let phase = match (&report.live, &f.state) {
            (Some(s), _) => s.phase.as_str().to_owned(),
            (None, Some(s)) if f.alive => s.phase.as_str().to_owned(),
            _ => "stopped".to_owned(),
        };
        let mut rows = vec![("phase", phase)];
        if let Some(pid) = f.pid {
            let note = if f.alive { "" } else { " (not running: stale)" };
            rows.push(("pid", format!("{pid}{note}")));
        }
        if let Some(s) = &f.state {
            rows.push(("config", s.config_path.clone()));
            rows.push(("started_at", s.started_at.to_string()));
        }
        rows.push(("runtime_dir", f.runtime_dir.display().to_string()));
        output::fields(&rows);
    });
    if stale {
        eprintln!(
            "warning: the pidfile or state file in {} names a process that is gone; the daemon did not shut down cleanly (`vine daemon stop` removes them)",
            paths.dir.display()
        );
        return Err(Failure::Reported);
    }
    Ok(())
}

/// The live diagnostics commands.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Live {
    Status,
    Peers,
    Routes,
    Sessions,
    Counters,
    Snapshot,
}

pub(crate) fn live(cli: &Cli, what: Live) -> Outcome {
    let config = load_config(cli)?;
    let body = match what {
        Live::Status => RequestBody::Status,
        Live::Peers => RequestBody::Peers,
        Live::Routes => RequestBody::Routes,
        Live::Sessions => RequestBody::Sessions,
        Live::Counters => RequestBody::Counters,
        Live::Snapshot => RequestBody::Snapshot,
    };
    let Some(response) = ask(&config, body)? else {
        return match what {
            Live::Counters | Live::Snapshot => {
                not_running(&config, "; there are no live counters to show");
                Err(Failure::Reported)
            }
            _ => {
                not_running(&config, "; showing the configured view");
                configured_view(cli, &config, what);
                Ok(())
            }
        };
    };
    match cli.format {
        Format::Json => output::json(&response),
        Format::Text => match &response {
            ResponseBody::Status(s) => print_status(s),
            ResponseBody::Peers(p) => print_peers(p),
            ResponseBody::Routes(r) => print_routes(r),
            ResponseBody::Sessions(s) => print_sessions(s),
            ResponseBody::Counters(c) => print_counters(&config, c),
            ResponseBody::Snapshot(s) => output::json(s),
            other => return Err(anyhow!("the daemon answered with {other:?}").into()),
        },
    }
    Ok(())
}

fn print_status(s: &Status) {
    output::fields(&[
        ("phase", s.phase.as_str().to_owned()),
        ("pid", s.pid.to_string()),
        ("started_at", s.started_at.to_string()),
        ("config", s.config_path.clone()),
        ("peer_id", s.peer_id.to_string()),
        ("network_id", s.network_id.clone()),
        ("prefix", s.prefix.clone()),
        ("listen", s.listen_address.clone()),
        ("tun", s.tun_name.clone()),
        (
            "peers",
            format!("{} enrolled of {}", s.enrolled_peers, s.peers),
        ),
    ]);
}

fn print_peers(peers: &[PeerInfo]) {
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|p| {
            vec![
                opt(&p.name),
                p.peer_id.to_string(),
                opt(&p.prefix),
                yes_no(p.relay_capable),
                yes_no(p.enrolled),
                yes_no(p.session_up),
                opt(&p.class),
                opt(&p.via),
            ]
        })
        .collect();
    table(
        &[
            "NAME", "PEER_ID", "PREFIX", "RELAY", "ENROLLED", "SESSION", "PATH", "VIA",
        ],
        &rows,
    );
}

fn print_routes(routes: &[RouteInfo]) {
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| {
            vec![
                r.prefix.clone(),
                opt(&r.peer_name),
                r.peer.to_string(),
                r.state.clone(),
            ]
        })
        .collect();
    table(&["PREFIX", "PEER", "PEER_ID", "STATE"], &rows);
}

fn print_sessions(sessions: &[SessionInfo]) {
    let mut rows = Vec::new();
    for s in sessions {
        let name = s.name.clone().unwrap_or_else(|| s.peer_id.to_string());
        if s.paths.is_empty() {
            rows.push(vec![
                name.clone(),
                yes_no(s.session_up),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        for p in &s.paths {
            let preferred = s.via.as_deref() == Some(p.via.as_str());
            rows.push(vec![
                name.clone(),
                yes_no(s.session_up),
                format!("{}{}", p.class, if preferred { " *" } else { "" }),
                p.via.clone(),
                yes_no(p.alive),
                p.rtt_us
                    .map(|us| format!("{:.2} ms", us as f64 / 1000.0))
                    .unwrap_or_else(|| "-".into()),
                p.misses.to_string(),
            ]);
        }
    }
    table(
        &["PEER", "SESSION", "PATH", "VIA", "ALIVE", "RTT", "MISSES"],
        &rows,
    );
    println!("(* = preferred path)");
}

/// `vine counters` as text: one `name  value` line per counter, then the
/// relay pairs.
fn print_counters(config: &Config, c: &CountersInfo) {
    let rows = counter_rows(c);
    let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    output::fields(&rows);
    print_relay_pairs(config, &c.relay_pairs);
}

/// The counters by name, in alphabetical order as in their JSON; a counter
/// by reason gives one `name.reason` row per reason seen (none at all when
/// it is empty). The relay pairs are not among them.
fn counter_rows(c: &CountersInfo) -> Vec<(String, String)> {
    let by_reason = |name: &str, counts: &BTreeMap<String, u64>| {
        counts
            .iter()
            .map(|(reason, n)| (format!("{name}.{reason}"), n.to_string()))
            .collect::<Vec<_>>()
    };
    let one = |name: &str, n: u64| vec![(name.to_owned(), n.to_string())];
    [
        one("bad_cookie_replies", c.bad_cookie_replies),
        one("bytes_received", c.bytes_received),
        one("bytes_sent", c.bytes_sent),
        one("cookie_replies_received", c.cookie_replies_received),
        one("cookie_replies_sent", c.cookie_replies_sent),
        by_reason("drops", &c.drops),
        one("fallback_transitions", c.fallback_transitions),
        one("handshake_dh_computed", c.handshake_dh_computed),
        one("handshake_mac2_missing", c.handshake_mac2_missing),
        one("handshake_rate_limited", c.handshake_rate_limited),
        by_reason("inline_drops", &c.inline_drops),
        by_reason("membership_rejections", &c.membership_rejections),
        one("packets_received", c.packets_received),
        one("packets_sent", c.packets_sent),
        one("path_changes", c.path_changes),
        by_reason("queue_drops", &c.queue_drops),
        by_reason("queue_peak_bytes", &c.queue_peak_bytes),
        one("relay_usage", c.relay_usage),
        one("relayed_for_others", c.relayed_for_others),
        one("route_misses", c.route_misses),
        one("session_failures", c.session_failures),
    ]
    .concat()
}

/// The relay pairs of `vine counters` as a table (names from the
/// allowlist).
fn print_relay_pairs(config: &Config, pairs: &[RelayPairCounts]) {
    if pairs.is_empty() {
        return;
    }
    let name = |id: &vine_core::PeerId| {
        config
            .allowed_peers
            .iter()
            .find(|p| p.peer_id == *id)
            .and_then(|p| p.name.clone())
            .unwrap_or_else(|| id.to_string().chars().take(12).collect())
    };
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|p| {
            vec![
                name(&p.source),
                name(&p.destination),
                p.frames.to_string(),
                p.bytes.to_string(),
                p.rate_limited.to_string(),
                p.refused.to_string(),
            ]
        })
        .collect();
    println!();
    println!("relay pairs (frames this node forwarded for others):");
    table(&output::RELAY_PAIR_COLUMNS, &rows);
}

#[derive(Serialize)]
struct ConfiguredPeer {
    name: Option<String>,
    peer_id: String,
    prefix: String,
    relay_capable: bool,
    bootstrap: Option<String>,
}

#[derive(Serialize)]
struct ConfiguredView<'a> {
    running: bool,
    socket: String,
    node: &'a str,
    network_id: &'a str,
    prefix: String,
    listen: String,
    tun: &'a str,
    peers: Vec<ConfiguredPeer>,
}

fn configured_view(cli: &Cli, config: &Config, what: Live) {
    let peers: Vec<ConfiguredPeer> = config
        .allowed_peers
        .iter()
        .map(|p| ConfiguredPeer {
            name: p.name.clone(),
            peer_id: p.peer_id.to_string(),
            prefix: p.prefix.to_string(),
            relay_capable: p.relay_capable,
            bootstrap: config
                .bootstrap_peers
                .iter()
                .find(|b| b.peer_id == p.peer_id)
                .map(|b| b.address.to_string()),
        })
        .collect();
    let view = ConfiguredView {
        running: false,
        socket: runtime_paths(config).socket().display().to_string(),
        node: &config.node.name,
        network_id: &config.node.network_id,
        prefix: config.tun.local_prefix().to_string(),
        listen: format!("{}:{}", config.node.listen_address, config.node.listen_port),
        tun: &config.tun.name,
        peers,
    };
    output::emit(cli.format, &view, || match what {
        Live::Status => output::fields(&[
            ("phase", "stopped".to_owned()),
            ("node", view.node.to_owned()),
            ("network_id", view.network_id.to_owned()),
            ("prefix", view.prefix.clone()),
            ("listen", view.listen.clone()),
            ("tun", view.tun.to_owned()),
            ("peers", format!("{} configured", view.peers.len())),
        ]),
        Live::Routes => {
            let mut rows = vec![vec![
                view.prefix.clone(),
                "(this node)".into(),
                "-".into(),
                "local".into(),
            ]];
            rows.extend(view.peers.iter().map(|p| {
                vec![
                    p.prefix.clone(),
                    opt(&p.name),
                    p.peer_id.clone(),
                    "configured".into(),
                ]
            }));
            table(&["PREFIX", "PEER", "PEER_ID", "STATE"], &rows);
        }
        Live::Peers | Live::Sessions | Live::Counters | Live::Snapshot => {
            let rows: Vec<Vec<String>> = view
                .peers
                .iter()
                .map(|p| {
                    vec![
                        opt(&p.name),
                        p.peer_id.clone(),
                        p.prefix.clone(),
                        yes_no(p.relay_capable),
                        opt(&p.bootstrap),
                    ]
                })
                .collect();
            table(&["NAME", "PEER_ID", "PREFIX", "RELAY", "BOOTSTRAP"], &rows);
        }
    });
}

/// `vine ping <ip>`.
pub(crate) fn ping(cli: &Cli, address: Ipv4Addr, count: u32) -> Outcome {
    let config = load_config(cli)?;
    let Some(response) = ask(&config, RequestBody::Ping { address, count })? else {
        not_running(&config, "; nothing was sent");
        eprintln!("{}", configured_route(&config, address));
        return Err(Failure::Reported);
    };
    let ResponseBody::Ping(p) = response else {
        return Err(anyhow!("the daemon answered ping with {response:?}").into());
    };
    output::emit(cli.format, &p, || print_ping(&p));
    if p.peer.is_none() || !p.session_up || p.class.is_none() {
        return Err(Failure::Reported);
    }
    if !p.probes.iter().any(|r| r.rtt_us.is_some()) {
        return Err(Failure::Reported);
    }
    Ok(())
}

fn print_ping(p: &PingResult) {
    let Some(peer) = p.peer else {
        println!(
            "{}: no overlay route covers this address (no enrolled peer owns it)",
            p.address
        );
        return;
    };
    let name = p.peer_name.clone().unwrap_or_else(|| peer.to_string());
    output::fields(&[
        ("address", p.address.to_string()),
        ("prefix", opt(&p.prefix)),
        ("peer", format!("{name} ({peer})")),
        ("route", opt(&p.route_state)),
        ("session", yes_no(p.session_up)),
        ("path", opt(&p.class)),
        ("via", opt(&p.via)),
        (
            "rtt",
            p.rtt_us
                .map(|us| format!("{:.2} ms (smoothed)", us as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
        ),
    ]);
    for r in &p.probes {
        match r.rtt_us {
            Some(us) => println!(
                "probe {}: {:.3} ms via {} ({})",
                r.seq,
                us as f64 / 1000.0,
                r.via.as_deref().unwrap_or("-"),
                r.class.as_deref().unwrap_or("-")
            ),
            None => println!("probe {}: no answer", r.seq),
        }
    }
    if !p.probes.is_empty() {
        let answered = p.probes.iter().filter(|r| r.rtt_us.is_some()).count();
        println!("{answered}/{} probes answered", p.probes.len());
    }
}

fn configured_route(config: &Config, address: Ipv4Addr) -> String {
    if config.tun.local_prefix().contains(address) {
        return format!(
            "by the config, {address} is in this node's own prefix {}",
            config.tun.local_prefix()
        );
    }
    let owner = config
        .allowed_peers
        .iter()
        .filter(|p| p.prefix.contains(address))
        .max_by_key(|p| p.prefix.len());
    match owner {
        Some(p) => format!(
            "by the config, a packet to {address} would be carried to prefix {} of peer {} ({}){}",
            p.prefix,
            p.name.as_deref().unwrap_or("(unnamed)"),
            p.peer_id,
            if p.relay_capable {
                ", which is relay_capable"
            } else {
                ""
            }
        ),
        None => format!(
            "by the config, no allowed peer owns {address}: it would not be routed into the overlay"
        ),
    }
}

#[cfg(test)]
mod tests;
