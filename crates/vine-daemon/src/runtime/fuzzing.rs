//! Entry point for the `control_json` fuzz target (through `vine-fuzz`):
//! the answers the event loop builds from the node alone. Not an API;
//! hidden from the docs and subject to change.

use std::time::Instant;

use vine_core::node::Node;

use super::views;
use crate::api::{CountersInfo, ErrorCode, RequestBody, Response, ResponseBody};

/// The response to `body` as the event loop answers it, for the requests
/// answered from the node's snapshot and counters (`peers`, `routes`,
/// `sessions`, `counters`, `snapshot`, `ping`, `explain`); `None` for the
/// others (status, reload, shutdown and the workload requests need the
/// running daemon and its host).
pub fn answer(node: &Node, now: Instant, body: &RequestBody) -> Option<Response> {
    let snap = node.snapshot(now);
    let body = match body {
        RequestBody::Peers => ResponseBody::Peers(views::peers(&snap)),
        RequestBody::Routes => ResponseBody::Routes(views::routes(&snap)),
        RequestBody::Sessions => ResponseBody::Sessions(views::sessions(&snap)),
        RequestBody::Counters => match CountersInfo::from_node(&node.counters()) {
            Ok(c) => ResponseBody::Counters(c),
            Err(e) => return Some(Response::error(ErrorCode::Internal, e.to_string())),
        },
        RequestBody::Snapshot => match serde_json::to_value(&snap) {
            Ok(v) => ResponseBody::Snapshot(v),
            Err(e) => return Some(Response::error(ErrorCode::Internal, e.to_string())),
        },
        RequestBody::Ping { address, count } => {
            ResponseBody::Ping(views::ping(node, &snap, *address, *count))
        }
        RequestBody::Explain { peer } => match views::explain(node, &snap, peer) {
            Ok(e) => ResponseBody::Explain(e),
            Err(msg) => return Some(Response::error(ErrorCode::UnknownPeer, msg)),
        },
        RequestBody::Status
        | RequestBody::Reload
        | RequestBody::Shutdown
        | RequestBody::Attach { .. }
        | RequestBody::Detach { .. }
        | RequestBody::Workloads => return None,
    };
    Some(Response::ok(body))
}
