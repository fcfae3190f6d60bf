//! Protocol answers built from the node's snapshot.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use serde::Serialize;
use vine_core::node::{Node, PeerView, Snapshot};

use crate::protocol::{PathInfo, PeerInfo, Phase, PingResult, RouteInfo, SessionInfo, Status};

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
