//! The api: how the CLI (or any client) talks to a running daemon —
//! versioned JSON lines over a Unix stream socket, the api socket
//! (`<runtime_dir>/vine.sock`, mode 0600). This file owns the protocol's
//! types and its line codec; [`client`] is the blocking client, and the
//! server lives in the daemon's runtime.
//!
//! A client writes one [`Request`] per line (UTF-8 JSON, `\n`-terminated, at
//! most [`MAX_LINE`] bytes) and reads exactly one [`Response`] line back.
//! A connection may carry any number of request/response pairs. Every
//! request line gets a response, even a malformed one: a line that is not
//! JSON, or names an unknown request, gets an error response
//! (`malformed_request`) and the connection stays usable; a request with a
//! `version` other than [`PROTOCOL_VERSION`] gets `unsupported_version`; a
//! line longer than [`MAX_LINE`] gets `line_too_long` and the server closes
//! the connection.
//!
//! # Schema (version 1)
//!
//! Version 1 only grows by additions: a new request type, a new response
//! field or a new error code never changes the meaning of an old one, so
//! the version stays 1. A daemon older than a request answers it with
//! `malformed_request`; clients treat unknown error codes as `unknown`.
//! Added since the first release: the `explain` request and response, the
//! `unknown_peer` error code, and in the node's `counters` / `snapshot`
//! documents `relay_pairs` (counters) and `why` / `attempts` (per peer).
//!
//! Requests — `body.type` selects the request; `ping` and `explain` have
//! fields:
//!
//! ```json
//! {"version":1,"body":{"type":"status"}}
//! {"version":1,"body":{"type":"peers"}}
//! {"version":1,"body":{"type":"routes"}}
//! {"version":1,"body":{"type":"sessions"}}
//! {"version":1,"body":{"type":"counters"}}
//! {"version":1,"body":{"type":"snapshot"}}
//! {"version":1,"body":{"type":"ping","address":"10.42.1.1","count":3}}
//! {"version":1,"body":{"type":"explain","peer":"beta"}}
//! {"version":1,"body":{"type":"reload"}}
//! {"version":1,"body":{"type":"shutdown"}}
//! ```
//!
//! Responses carry either `body.ok` (a tagged [`ResponseBody`]: `type` plus
//! `data`) or `body.error` (an [`ErrorBody`]):
//!
//! ```json
//! {"version":1,"body":{"ok":{"type":"status","data":{
//!   "phase":"running","pid":4242,"started_at":1700000000,
//!   "config_path":"/etc/libvine/vine.toml","peer_id":"vn1…",
//!   "network_id":"home-net","prefix":"10.42.0.0/24",
//!   "listen_address":"0.0.0.0:4100","tun_name":"vine0",
//!   "peers":2,"enrolled_peers":1}}}}
//! {"version":1,"body":{"ok":{"type":"peers","data":[{"peer_id":"vn1…",
//!   "name":"beta","prefix":"10.42.1.0/24","relay_capable":false,
//!   "enrolled":true,"session_up":true,"class":"direct",
//!   "via":"udp://192.0.2.2:4100"}]}}}
//! {"version":1,"body":{"ok":{"type":"routes","data":[{"prefix":"10.42.1.0/24",
//!   "peer":"vn1…","peer_name":"beta","state":"installed"}]}}}
//! {"version":1,"body":{"ok":{"type":"sessions","data":[{"peer_id":"vn1…",
//!   "name":"beta","session_up":true,"class":"direct","via":"udp://192.0.2.2:4100",
//!   "paths":[{"via":"udp://192.0.2.2:4100","class":"direct","alive":true,
//!   "rtt_us":410,"misses":0}]}]}}}
//! {"version":1,"body":{"ok":{"type":"counters","data":{"packets_sent":12, "…":0}}}}
//! {"version":1,"body":{"ok":{"type":"snapshot","data":{"peer_id":"vn1…", "…":"…"}}}}
//! {"version":1,"body":{"ok":{"type":"ping","data":{"address":"10.42.1.1",
//!   "prefix":"10.42.1.0/24","peer":"vn1…","peer_name":"beta",
//!   "route_state":"installed","session_up":true,"class":"direct",
//!   "via":"udp://192.0.2.2:4100","rtt_us":410}}}}
//! {"version":1,"body":{"ok":{"type":"explain","data":{"peer_id":"vn1…",
//!   "name":"gamma","prefix":"10.42.2.0/24","relay_capable":false,
//!   "enrolled":true,"session_up":true,"class":"relay","via":"relay:relay",
//!   "why":"relay via relay:relay (rtt 40.0 ms): no better path works: …",
//!   "attempts":[{"path":"udp://198.51.100.7:40000",
//!     "class":"signaling_then_direct","outcome":"no_answer",
//!     "reason_code":"filtered_by_nat","reason":"filtered by NAT: …",
//!     "current":false,"ago_ms":28420,"since_ms":28420,"first_ms":29950}],
//!   "relay_pairs":[]}}}}
//! {"version":1,"body":{"ok":{"type":"reload","data":{"outcome":"applied"}}}}
//! {"version":1,"body":{"ok":{"type":"reload","data":{"outcome":"rejected",
//!   "diagnostics":["error[bad-prefix] …"]}}}}
//! {"version":1,"body":{"ok":{"type":"shutting_down"}}}
//! {"version":1,"body":{"error":{"code":"unsupported_version",
//!   "message":"control protocol version 7 is not supported; this daemon speaks version 1"}}}
//! ```
//!
//! `counters` carries the node's `Counters` ([`CountersInfo`], the same
//! JSON as `vine_core::node::Counters`, keys in alphabetical order) and
//! `snapshot` the node's `Snapshot` document (see `vine_core::node`)
//! unchanged. `explain` names its peer by
//! PeerId (or a unique start of one, at least 8 characters), allowlist name
//! or overlay IPv4 address; its `attempts` (oldest first) and `why` are the
//! snapshot's for that peer, and `relay_pairs` are this node's relay
//! counters for pairs the peer is part of. Error codes are
//! `unsupported_version`, `malformed_request`, `line_too_long`,
//! `shutting_down`, `unknown_peer` (explain: nothing matches) and
//! `internal`; a client reads an unknown code as `unknown`.

pub mod client;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use vine_core::PeerId;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request or response line, in bytes (without the newline).
/// Snapshots of large networks are the biggest responses.
pub const MAX_LINE: usize = 16 << 20;

/// Longest request line the server accepts.
pub const MAX_REQUEST_LINE: usize = 64 << 10;

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version; must be [`PROTOCOL_VERSION`].
    pub version: u32,
    /// What is asked.
    pub body: RequestBody,
}

impl Request {
    /// A request of the current version.
    pub fn new(body: RequestBody) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            body,
        }
    }
}

/// What a client can ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RequestBody {
    /// Phase, pid and identity of the running node.
    Status,
    /// Allowlisted and known peers.
    Peers,
    /// The overlay route table.
    Routes,
    /// Sessions and their paths.
    Sessions,
    /// Node-wide counters.
    Counters,
    /// The full node snapshot.
    Snapshot,
    /// Which route, peer and path carry packets to `address`.
    Ping {
        /// Overlay address.
        address: Ipv4Addr,
        /// Probes requested (reported back; the path's probe RTT is used).
        count: u32,
    },
    /// Recent path attempts for one peer and why each turned out as it did.
    Explain {
        /// PeerId (or a unique start of one), allowlist name, or overlay
        /// IPv4 address.
        peer: String,
    },
    /// Attach a network namespace as a workload with the next free address
    /// of this node's prefix.
    Attach {
        /// Workload name (a DNS label).
        name: String,
        /// The namespace file: `/run/netns/NAME`, `/proc/PID/ns/net` or
        /// any bind mount of one.
        netns: String,
    },
    /// Detach a workload: its links go, its address is free again.
    Detach {
        /// Workload name.
        name: String,
    },
    /// The attached workloads.
    Workloads,
    /// Re-read the config (like SIGHUP).
    Reload,
    /// Stop the daemon (like SIGTERM).
    Shutdown,
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The server's protocol version.
    pub version: u32,
    /// The answer or why there is none.
    #[serde(with = "result_repr")]
    pub body: Result<ResponseBody, ErrorBody>,
}

impl Response {
    /// A successful response.
    pub fn ok(body: ResponseBody) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            body: Ok(body),
        }
    }

    /// An error response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            body: Err(ErrorBody {
                code,
                message: message.into(),
            }),
        }
    }
}

/// The answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ResponseBody {
    /// Answer to [`RequestBody::Status`].
    Status(Status),
    /// Answer to [`RequestBody::Peers`].
    Peers(Vec<PeerInfo>),
    /// Answer to [`RequestBody::Routes`].
    Routes(Vec<RouteInfo>),
    /// Answer to [`RequestBody::Sessions`].
    Sessions(Vec<SessionInfo>),
    /// Answer to [`RequestBody::Counters`]: the node's counters.
    Counters(CountersInfo),
    /// Answer to [`RequestBody::Snapshot`]: the node's `Snapshot` document.
    Snapshot(serde_json::Value),
    /// Answer to [`RequestBody::Ping`].
    Ping(PingResult),
    /// Answer to [`RequestBody::Explain`].
    Explain(Explanation),
    /// Answer to [`RequestBody::Attach`]: the workload as attached.
    Attached(WorkloadInfo),
    /// Answer to [`RequestBody::Detach`]: the workload as it was.
    Detached(WorkloadInfo),
    /// Answer to [`RequestBody::Workloads`].
    Workloads(Vec<WorkloadInfo>),
    /// Answer to [`RequestBody::Reload`].
    Reload(ReloadOutcome),
    /// Answer to [`RequestBody::Shutdown`]: shutdown has begun.
    ShuttingDown,
}

/// One attached workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadInfo {
    /// Its name.
    pub name: String,
    /// Its address, from this node's prefix.
    pub address: Ipv4Addr,
    /// The namespace file it was attached from.
    pub netns: String,
    /// When it was attached, UNIX seconds.
    pub since: u64,
    /// The host end of its veth pair (`None` while it is not linked).
    pub host_ifname: Option<String>,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable kind.
    pub code: ErrorCode,
    /// What happened and what to do, for people.
    pub message: String,
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

/// Kinds of errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request's version is not [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// The line is not a valid request.
    MalformedRequest,
    /// The line exceeds [`MAX_REQUEST_LINE`]; the connection is closed.
    LineTooLong,
    /// The daemon is stopping and no longer answers this request.
    ShuttingDown,
    /// `explain` named no peer this node knows.
    UnknownPeer,
    /// An attach was refused (bad name, not a namespace, prefix full…);
    /// nothing changed.
    WorkloadRefused,
    /// An attach named a workload that is attached already.
    WorkloadExists,
    /// A detach named no attached workload.
    UnknownWorkload,
    /// Something failed inside the daemon.
    Internal,
    /// A code this client does not know (sent by a newer daemon).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnsupportedVersion => "unsupported_version",
            Self::MalformedRequest => "malformed_request",
            Self::LineTooLong => "line_too_long",
            Self::ShuttingDown => "shutting_down",
            Self::UnknownPeer => "unknown_peer",
            Self::WorkloadRefused => "workload_refused",
            Self::WorkloadExists => "workload_exists",
            Self::UnknownWorkload => "unknown_workload",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }
}

/// Daemon lifecycle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not running.
    Stopped,
    /// Bounded startup sequence in progress.
    Starting,
    /// Serving.
    Running,
    /// Bounded shutdown sequence in progress.
    Stopping,
}

impl Phase {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
        }
    }
}

/// Answer to `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Lifecycle phase.
    pub phase: Phase,
    /// Daemon process id.
    pub pid: u32,
    /// When the daemon started (seconds since the UNIX epoch).
    pub started_at: u64,
    /// The config file in use.
    pub config_path: String,
    /// This node's PeerId.
    pub peer_id: PeerId,
    /// Overlay name.
    pub network_id: String,
    /// Own prefix.
    pub prefix: String,
    /// The bound UDP address.
    pub listen_address: String,
    /// TUN interface name.
    pub tun_name: String,
    /// Peers known to the node.
    pub peers: usize,
    /// Peers currently enrolled.
    pub enrolled_peers: usize,
}

/// One peer in `peers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer.
    pub peer_id: PeerId,
    /// Configured name.
    pub name: Option<String>,
    /// Configured prefix.
    pub prefix: Option<String>,
    /// May relay for this node.
    pub relay_capable: bool,
    /// Membership accepted and current.
    pub enrolled: bool,
    /// Encryption keys established.
    pub session_up: bool,
    /// Class of the preferred path (`direct`, `signaling_then_direct`, `relay`).
    pub class: Option<String>,
    /// Where the preferred path goes.
    pub via: Option<String>,
}

/// One route in `routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// The prefix.
    pub prefix: String,
    /// Its owner.
    pub peer: PeerId,
    /// The owner's configured name.
    pub peer_name: Option<String>,
    /// `installed`, `tombstoned` or `withdrawn`.
    pub state: String,
}

/// One path of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathInfo {
    /// `udp://ip:port` or `relay:<peer>`.
    pub via: String,
    /// Path class.
    pub class: String,
    /// Answering probes.
    pub alive: bool,
    /// Smoothed round-trip time in microseconds.
    pub rtt_us: Option<u64>,
    /// Consecutive unanswered probes.
    pub misses: u32,
}

/// One session in `sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The peer.
    pub peer_id: PeerId,
    /// Configured name.
    pub name: Option<String>,
    /// Encryption keys established.
    pub session_up: bool,
    /// Class of the preferred path.
    pub class: Option<String>,
    /// Where the preferred path goes.
    pub via: Option<String>,
    /// Every candidate path.
    pub paths: Vec<PathInfo>,
}

/// Answer to `ping`: what would carry a packet to the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingResult {
    /// The address asked about.
    pub address: Ipv4Addr,
    /// Probes requested.
    pub count: u32,
    /// The covering route's prefix, if any.
    pub prefix: Option<String>,
    /// The route's owner.
    pub peer: Option<PeerId>,
    /// The owner's configured name.
    pub peer_name: Option<String>,
    /// Route state.
    pub route_state: Option<String>,
    /// Keys established with the owner.
    pub session_up: bool,
    /// Class of the preferred path.
    pub class: Option<String>,
    /// Where the preferred path goes.
    pub via: Option<String>,
    /// Smoothed probe round-trip time of the preferred path, microseconds.
    pub rtt_us: Option<u64>,
    /// One entry per probe sent now over the preferred path, in order.
    #[serde(default)]
    pub probes: Vec<ProbeRtt>,
}

/// The outcome of one `ping` probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRtt {
    /// 1-based sequence number.
    pub seq: u32,
    /// Round-trip time in microseconds; `None` when it got no answer.
    pub rtt_us: Option<u64>,
    /// The path it took.
    pub via: Option<String>,
    /// That path's class.
    pub class: Option<String>,
}

/// One path attempt in `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptInfo {
    /// `udp://ip:port`, `relay:<name>`, `forward:<name>` (as a relay: the
    /// peer's frames forwarded to that destination) or `-` (a class of path
    /// that was not tried).
    pub path: String,
    /// `direct`, `signaling_then_direct` or `relay`.
    pub class: String,
    /// `trying`, `working`, `promoted`, `fell_back`, `throttled`,
    /// `no_answer`, `refused` or `not_tried`.
    pub outcome: String,
    /// Stable reason code (e.g. `filtered_by_nat`,
    /// `relay_not_allowed_by_policy`, `prefix_mismatch`, `relay_rate_cap`).
    pub reason_code: String,
    /// The reason, for people.
    pub reason: String,
    /// This path carries the peer's traffic now.
    pub current: bool,
    /// Milliseconds since the outcome was last seen.
    pub ago_ms: u64,
    /// Milliseconds since the outcome last changed.
    pub since_ms: u64,
    /// Milliseconds since the attempt was first recorded.
    pub first_ms: u64,
}

/// Relay counters of one (source, destination) pair in `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayPairInfo {
    /// Who sent the frames.
    pub source: PeerId,
    /// Its configured name.
    pub source_name: Option<String>,
    /// Where they went.
    pub destination: PeerId,
    /// Its configured name.
    pub destination_name: Option<String>,
    /// Frames forwarded.
    pub frames: u64,
    /// Bytes forwarded.
    pub bytes: u64,
    /// Frames dropped by the relay rate cap.
    pub rate_limited: u64,
    /// Frames refused for another reason.
    pub refused: u64,
}

/// Answer to `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The peer.
    pub peer_id: PeerId,
    /// Configured name.
    pub name: Option<String>,
    /// Configured prefix.
    pub prefix: Option<String>,
    /// May relay for this node.
    pub relay_capable: bool,
    /// Membership accepted and current.
    pub enrolled: bool,
    /// Encryption keys established.
    pub session_up: bool,
    /// Class of the preferred path.
    pub class: Option<String>,
    /// Where the preferred path goes.
    pub via: Option<String>,
    /// The current choice and why, in one line.
    pub why: String,
    /// Recent attempts, oldest first.
    pub attempts: Vec<AttemptInfo>,
    /// As a relay: pairs this peer is the source or destination of.
    #[serde(default)]
    pub relay_pairs: Vec<RelayPairInfo>,
}

/// Answer to `counters`: the node's `vine_core::node::Counters`, as JSON.
///
/// The fields are in alphabetical order, which is the order the JSON has
/// always had on the wire (the daemon used to send the counters as a
/// `serde_json::Value`, whose maps sort their keys); a test checks that
/// [`CountersInfo::from_node`] gives the same JSON as the node's type.
/// Fields missing on the wire (from an older daemon) read as 0 or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CountersInfo {
    /// Cookie replies dropped (not for our last handshake message, or
    /// forged).
    pub bad_cookie_replies: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Cookie replies accepted from peers (they were under load).
    pub cookie_replies_received: u64,
    /// Cookie replies sent (we were under load).
    pub cookie_replies_sent: u64,
    /// Drops, by reason (`vine_core::node::DropReason` in snake case).
    pub drops: BTreeMap<String, u64>,
    /// Preferred-path changes to a worse class.
    pub fallback_transitions: u64,
    /// Handshake messages that went on to Diffie-Hellman.
    pub handshake_dh_computed: u64,
    /// Handshake messages that arrived under load without a valid mac2.
    pub handshake_mac2_missing: u64,
    /// Handshake messages dropped by the per-source limiter before any
    /// Diffie-Hellman.
    pub handshake_rate_limited: u64,
    /// The daemon's receive path: datagrams dropped before any queue, by
    /// reason (`bad_size`, `unknown_type`, `unknown_index`). Not among the
    /// node's counters; absent when none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub inline_drops: BTreeMap<String, u64>,
    /// Membership updates refused, by reason
    /// (`vine_core::node::RejectReason` in snake case).
    pub membership_rejections: BTreeMap<String, u64>,
    /// Data packets delivered to the TUN device.
    pub packets_received: u64,
    /// Data packets sent over sessions.
    pub packets_sent: u64,
    /// Preferred-path changes of any kind, summed over peers.
    pub path_changes: u64,
    /// The daemon's slow-path queues: work dropped, as `queue.reason`
    /// (queues `control`, `handshake`, `relay`, `session_data`, `tun`;
    /// reason `full`). Not among the node's counters; absent when none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub queue_drops: BTreeMap<String, u64>,
    /// The most bytes each slow-path queue has held. Not among the node's
    /// counters; absent when none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub queue_peak_bytes: BTreeMap<String, u64>,
    /// As a relay: traffic per (source, destination) pair, ordered by
    /// source then destination.
    pub relay_pairs: Vec<RelayPairCounts>,
    /// Data packets this node sent through a relay.
    pub relay_usage: u64,
    /// Frames this node forwarded as a relay for others.
    pub relayed_for_others: u64,
    /// Outbound packets whose destination had no route.
    pub route_misses: u64,
    /// Session setups that failed.
    pub session_failures: u64,
}

impl CountersInfo {
    /// The api's view of the node's counters (the same JSON).
    pub fn from_node(counters: &vine_core::node::Counters) -> serde_json::Result<Self> {
        serde_json::from_value(serde_json::to_value(counters)?)
    }
}

/// Relay traffic of one (source, destination) pair in `counters` (fields
/// in alphabetical order, as on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayPairCounts {
    /// Bytes forwarded.
    pub bytes: u64,
    /// Where the frames were to go.
    pub destination: PeerId,
    /// Frames forwarded.
    pub frames: u64,
    /// Frames dropped by the relay rate cap.
    pub rate_limited: u64,
    /// Frames refused for another reason.
    pub refused: u64,
    /// Who sent the frames.
    pub source: PeerId,
}

/// Answer to `reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The new allowlist/bootstrap/policy is in force; sessions are being
    /// re-established.
    Applied,
    /// The config did not change in a way that matters.
    Unchanged,
    /// The new config is invalid; the old one stays in force.
    Rejected {
        /// Rendered diagnostics.
        diagnostics: Vec<String>,
    },
    /// `[node]` or `[tun]` (or the identity) changed: restart the daemon to
    /// apply; the old config stays in force.
    RestartRequired {
        /// Sections that changed.
        sections: Vec<String>,
    },
}

/// How a request line was understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A valid request.
    Request(RequestBody),
    /// Answer with this error and keep the connection.
    Reject(ErrorBody),
}

/// Decodes one request line (without its newline). Never panics: anything
/// that is not a version-1 request becomes [`Decoded::Reject`].
pub fn decode_request(line: &[u8]) -> Decoded {
    let reject = |code, message: String| Decoded::Reject(ErrorBody { code, message });
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return reject(
                ErrorCode::MalformedRequest,
                format!(
                    "request is not JSON ({e}); send one JSON object per line, e.g. {{\"version\":1,\"body\":{{\"type\":\"status\"}}}}"
                ),
            );
        }
    };
    match value.get("version").map(serde_json::Value::as_u64) {
        Some(Some(v)) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(Some(v)) => {
            return reject(
                ErrorCode::UnsupportedVersion,
                format!(
                    "control protocol version {v} is not supported; this daemon speaks version {PROTOCOL_VERSION}"
                ),
            );
        }
        _ => {
            return reject(
                ErrorCode::MalformedRequest,
                "request has no numeric \"version\" field".to_owned(),
            );
        }
    }
    match serde_json::from_value::<Request>(value) {
        Ok(r) => Decoded::Request(r.body),
        Err(e) => reject(
            ErrorCode::MalformedRequest,
            format!("request is not understood: {e}"),
        ),
    }
}

/// Encodes a value as one line (with the trailing newline).
pub fn encode_line<T: Serialize>(value: &T) -> Vec<u8> {
    // Protocol types have string keys only, so serialization cannot fail;
    // fall back to an error line rather than panic.
    let mut out = serde_json::to_vec(value).unwrap_or_else(|e| {
        serde_json::to_vec(&Response::error(
            ErrorCode::Internal,
            format!("cannot encode response: {e}"),
        ))
        .unwrap_or_default()
    });
    out.push(b'\n');
    out
}

/// `Result` on the wire as `{"ok": …}` or `{"error": …}`.
mod result_repr {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{ErrorBody, ResponseBody};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum Repr<T, E> {
        Ok(T),
        Error(E),
    }

    pub fn serialize<S: Serializer>(
        value: &Result<ResponseBody, ErrorBody>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Ok(v) => Repr::<&ResponseBody, &ErrorBody>::Ok(v).serialize(s),
            Err(e) => Repr::<&ResponseBody, &ErrorBody>::Error(e).serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<ResponseBody, ErrorBody>, D::Error> {
        Ok(match Repr::<ResponseBody, ErrorBody>::deserialize(d)? {
            Repr::Ok(v) => Ok(v),
            Repr::Error(e) => Err(e),
        })
    }
}

#[cfg(test)]
mod tests;
