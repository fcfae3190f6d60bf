//! `vine sessions --explain <peer>`: the running daemon's recent path
//! attempts for one peer, each with its outcome and a reason to act on,
//! under a one-line summary of the current choice. Without a daemon it
//! says so (and what the config says about the peer) and exits 1: attempts
//! exist only in a running node.

use anyhow::anyhow;
use vine_core::config::Config;
use vine_daemon::api::client::ClientError;
use vine_daemon::api::{ErrorCode, Explanation, RequestBody, ResponseBody};

use crate::api::{load_config, not_running, request};
use crate::cli::Cli;
use crate::failure::{Failure, Outcome};
use crate::output::{self, opt, table};

pub(crate) fn run(cli: &Cli, peer: &str) -> Outcome {
    let config = load_config(cli)?;
    let body = RequestBody::Explain {
        peer: peer.to_owned(),
    };
    match request(&config, body) {
        Ok(ResponseBody::Explain(e)) => {
            output::emit(cli.format, &e, || print(&e));
            Ok(())
        }
        Ok(other) => Err(anyhow!("the daemon answered explain with {other:?}").into()),
        Err(ClientError::NotRunning(_)) => {
            not_running(
                &config,
                "; path attempts are only known to a running daemon",
            );
            eprintln!("{}", configured(&config, peer));
            Err(Failure::Reported)
        }
        Err(ClientError::Remote(e)) if e.code == ErrorCode::UnknownPeer => {
            eprintln!("{}", e.message);
            Err(Failure::Reported)
        }
        Err(ClientError::Remote(e)) if e.code == ErrorCode::MalformedRequest => {
            eprintln!(
                "the running daemon does not know `sessions --explain` (it is older than this vine): restart it with this binary ({})",
                e.message
            );
            Err(Failure::Reported)
        }
        Err(e) => Err(e.into()),
    }
}

/// "850 ms ago", "28 s ago", "3 min 12 s ago", "2 h 05 min ago".
fn ago(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms ago"),
        1..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min {:02} s ago", s / 60, s % 60),
        _ => format!("{} h {:02} min ago", s / 3600, (s % 3600) / 60),
    }
}

fn print(e: &Explanation) {
    let name = e.name.clone().unwrap_or_else(|| e.peer_id.short());
    println!("{name} ({}): {}", e.peer_id, e.why);
    if e.attempts.is_empty() {
        println!("no path attempts recorded yet");
    } else {
        let rows: Vec<Vec<String>> = e
            .attempts
            .iter()
            .map(|a| {
                vec![
                    ago(a.ago_ms),
                    a.path.clone(),
                    a.class.clone(),
                    format!(
                        "{}{}",
                        a.outcome.replace('_', " "),
                        if a.current { " *" } else { "" }
                    ),
                    a.reason.clone(),
                ]
            })
            .collect();
        println!();
        table(&["WHEN", "PATH", "CLASS", "OUTCOME", "REASON"], &rows);
        println!("(* = carries traffic now; oldest first)");
    }
    if !e.relay_pairs.is_empty() {
        println!();
        println!("relayed by this node for pairs with {name}:");
        let rows: Vec<Vec<String>> = e
            .relay_pairs
            .iter()
            .map(|p| {
                vec![
                    p.source_name.clone().unwrap_or_else(|| p.source.short()),
                    p.destination_name
                        .clone()
                        .unwrap_or_else(|| p.destination.short()),
                    p.frames.to_string(),
                    p.bytes.to_string(),
                    p.rate_limited.to_string(),
                    p.refused.to_string(),
                ]
            })
            .collect();
        table(&output::RELAY_PAIR_COLUMNS, &rows);
    }
}

/// What the config says about `query` (a PeerId, a name or an overlay
/// address).
fn configured(config: &Config, query: &str) -> String {
    let query = query.trim();
    let by_ip = query.parse::<std::net::Ipv4Addr>().ok();
    if let Some(ip) = by_ip.filter(|ip| config.tun.local_prefix().contains(*ip)) {
        return format!(
            "by the config, {ip} is in this node's own prefix {}",
            config.tun.local_prefix()
        );
    }
    let found = config
        .allowed_peers
        .iter()
        .filter(|p| {
            p.name.as_deref() == Some(query)
                || p.peer_id.to_string() == query
                || (query.len() >= 8 && p.peer_id.to_string().starts_with(query))
                || by_ip.is_some_and(|ip| p.prefix.contains(ip))
        })
        .max_by_key(|p| p.prefix.len());
    let Some(p) = found else {
        return format!(
            "the config's [[allowed_peers]] has no peer matching \"{query}\" (give a PeerId, a name or an overlay address)"
        );
    };
    let bootstrap = config
        .bootstrap_peers
        .iter()
        .find(|b| b.peer_id == p.peer_id)
        .map(|b| format!(", bootstrap address {}", b.address))
        .unwrap_or_default();
    format!(
        "by the config, {} ({}) owns {}, relay_capable = {}{bootstrap}; start the daemon (`vine daemon start`) to see its path attempts",
        opt(&p.name),
        p.peer_id,
        p.prefix,
        p.relay_capable
    )
}
