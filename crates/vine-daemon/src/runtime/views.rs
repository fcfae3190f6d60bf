//! Protocol answers built from the node's snapshot.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use serde::Serialize;
use vine_core::node::{Node, PeerView, Snapshot};

use crate::api::{
    AttemptInfo, Explanation, PathInfo, PeerInfo, Phase, PingResult, RelayPairInfo, RouteInfo,
    SessionInfo, Status,
};

/// The wire name of a unit enum (its serde string form).
fn name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

pub(crate) fn status(
    snap: &Snapshot,
    phase: Phase,
    started_at: u64,
    config_path: &Path,
    listen: SocketAddrV4,
    tun_name: &str,
) -> Status {
    Status {
        phase,
        pid: std::process::id(),
        started_at,
        config_path: config_path.display().to_string(),
        peer_id: snap.peer_id,
        network_id: snap.network_id.clone(),
        prefix: snap.prefix.to_string(),
        listen_address: listen.to_string(),
        tun_name: tun_name.to_owned(),
        peers: snap.peers.len(),
        enrolled_peers: snap.peers.iter().filter(|p| p.enrolled).count(),
    }
}

pub(crate) fn peers(snap: &Snapshot) -> Vec<PeerInfo> {
    snap.peers
        .iter()
        .map(|p| PeerInfo {
            peer_id: p.peer_id,
            name: p.name.clone(),
            prefix: p.prefix.map(|x| x.to_string()),
            relay_capable: p.relay_capable,
            enrolled: p.enrolled,
            session_up: p.session_up,
            class: p.class.map(|c| c.as_str().to_owned()),
            via: p.via.clone(),
        })
        .collect()
}

fn peer_name(snap: &Snapshot, id: &vine_core::PeerId) -> Option<String> {
    snap.peers
        .iter()
        .find(|p| &p.peer_id == id)
        .and_then(|p| p.name.clone())
}

pub(crate) fn routes(snap: &Snapshot) -> Vec<RouteInfo> {
    snap.routes
        .iter()
        .map(|r| RouteInfo {
            prefix: r.prefix.to_string(),
            peer: r.peer,
            peer_name: peer_name(snap, &r.peer),
            state: name(&r.state),
        })
        .collect()
}

pub(crate) fn sessions(snap: &Snapshot) -> Vec<SessionInfo> {
    snap.peers
        .iter()
        .map(|p| SessionInfo {
            peer_id: p.peer_id,
            name: p.name.clone(),
            session_up: p.session_up,
            class: p.class.map(|c| c.as_str().to_owned()),
            via: p.via.clone(),
            paths: p
                .paths
                .iter()
                .map(|x| PathInfo {
                    via: x.via.clone(),
                    class: x.class.as_str().to_owned(),
                    alive: x.alive,
                    rtt_us: x.rtt_us,
                    misses: x.misses,
                })
                .collect(),
        })
        .collect()
}

fn active_rtt(p: &PeerView) -> Option<u64> {
    let via = p.via.as_ref()?;
    p.paths
        .iter()
        .find(|x| &x.via == via && x.alive)
        .and_then(|x| x.rtt_us)
}

pub(crate) fn ping(node: &Node, snap: &Snapshot, address: Ipv4Addr, count: u32) -> PingResult {
    let route = node.routes().lookup(address);
    let view = route.and_then(|r| snap.peers.iter().find(|p| p.peer_id == r.peer));
    PingResult {
        address,
        count,
        prefix: route.map(|r| r.prefix.to_string()),
        peer: route.map(|r| r.peer),
        peer_name: view.and_then(|p| p.name.clone()),
        route_state: route.map(|r| name(&r.state)),
        session_up: view.is_some_and(|p| p.session_up),
        class: view.and_then(|p| p.class).map(|c| c.as_str().to_owned()),
        via: view.and_then(|p| p.via.clone()),
        rtt_us: view.and_then(active_rtt),
        probes: Vec::new(),
    }
}

/// Finds the peer `query` names: a PeerId (or a unique start of one, at
/// least 8 characters), an allowlist name, or an overlay IPv4 address (the
/// route that covers it, else the allowlisted prefix that contains it).
pub(crate) fn find_peer<'s>(
    node: &Node,
    snap: &'s Snapshot,
    query: &str,
) -> Result<&'s PeerView, String> {
    let query = query.trim();
    let by_id = |id: &vine_core::PeerId| snap.peers.iter().find(|p| &p.peer_id == id);
    if let Ok(id) = query.parse::<vine_core::PeerId>() {
        return by_id(&id).ok_or_else(|| format!("peer {id} is not known to this node"));
    }
    if let Ok(ip) = query.parse::<Ipv4Addr>() {
        if snap.prefix.contains(ip) {
            return Err(format!("{ip} is in this node's own prefix {}", snap.prefix));
        }
        let owner = node
            .routes()
            .lookup(ip)
            .and_then(|r| by_id(&r.peer))
            .or_else(|| {
                snap.peers
                    .iter()
                    .filter(|p| p.prefix.is_some_and(|x| x.contains(ip)))
                    .max_by_key(|p| p.prefix.map(|x| x.len()))
            });
        return owner.ok_or_else(|| {
            format!("no peer owns {ip} (no route and no allowlisted prefix covers it)")
        });
    }
    if let Some(p) = snap.peers.iter().find(|p| p.name.as_deref() == Some(query)) {
        return Ok(p);
    }
    let lower = query.to_ascii_lowercase();
    if lower.len() >= 8 {
        let matches: Vec<&PeerView> = snap
            .peers
            .iter()
            .filter(|p| p.peer_id.to_string().starts_with(&lower))
            .collect();
        match matches.as_slice() {
            [one] => return Ok(one),
            [] => {}
            _ => {
                return Err(format!(
                    "\"{query}\" is the start of {} PeerIds; give more of it",
                    matches.len()
                ));
            }
        }
    }
    let known: Vec<String> = snap
        .peers
        .iter()
        .map(|p| p.name.clone().unwrap_or_else(|| p.peer_id.short()))
        .collect();
    Err(format!(
        "no peer matches \"{query}\"; give a PeerId, an allowlist name or an overlay address (known: {})",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    ))
}

pub(crate) fn explain(node: &Node, snap: &Snapshot, query: &str) -> Result<Explanation, String> {
    let p = find_peer(node, snap, query)?;
    let name_of = |id: &vine_core::PeerId| peer_name(snap, id);
    Ok(Explanation {
        peer_id: p.peer_id,
        name: p.name.clone(),
        prefix: p.prefix.map(|x| x.to_string()),
        relay_capable: p.relay_capable,
        enrolled: p.enrolled,
        session_up: p.session_up,
        class: p.class.map(|c| c.as_str().to_owned()),
        via: p.via.clone(),
        why: p.why.clone(),
        attempts: p
            .attempts
            .iter()
            .map(|a| AttemptInfo {
                path: a.path.clone(),
                class: a.class.as_str().to_owned(),
                outcome: name(&a.outcome),
                reason_code: a.reason_code.to_owned(),
                reason: a.reason.clone(),
                current: a.current,
                ago_ms: a.ago_ms,
                since_ms: a.since_ms,
                first_ms: a.first_ms,
            })
            .collect(),
        relay_pairs: snap
            .counters
            .relay_pairs
            .iter()
            .filter(|r| r.source == p.peer_id || r.destination == p.peer_id)
            .map(|r| RelayPairInfo {
                source: r.source,
                source_name: name_of(&r.source),
                destination: r.destination,
                destination_name: name_of(&r.destination),
                frames: r.frames,
                bytes: r.bytes,
                rate_limited: r.rate_limited,
                refused: r.refused,
            })
            .collect(),
    })
}
