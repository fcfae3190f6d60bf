//! The event loop: owns the node and feeds it datagrams, TUN packets,
//! timeouts and control requests; applies what it asks for.

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, trace, warn};
use vine_core::Identity;
use vine_core::config::Config;
use vine_core::dataplane::DataPlane;
use vine_core::node::{Event, Node, Timers};
use vine_core::route::RouteIntent;
use vine_linux::udp::UdpBatch;

use super::command::Command;
use super::dataplane::{Dataplane, Pass, Queue, SlowPath, SlowReceiver};
use super::log_limit::{self, PeerLogLimit};
use super::names::NameWatch;
use super::{build, views};
use crate::api::{
    CountersInfo, ErrorCode, Phase, PingResult, ProbeRtt, ReloadOutcome, RequestBody, Response,
    ResponseBody,
};
use crate::error::DaemonError;
use crate::files::{self, RuntimePaths, StateFile};
use crate::host::{PacketDevice, RouteApplier};
use crate::workloads::Workloads;

/// How long the node stays under load after the handshake queue was seen
/// an eighth full (wireguard-go's `UnderLoadAfterTime`).
const UNDER_LOAD_FOR: Duration = Duration::from_secs(1);

pub(crate) struct EventLoop {
    pub(crate) node: Node,
    pub(crate) identity: Identity,
    pub(crate) config: Config,
    pub(crate) config_path: PathBuf,
    pub(crate) timers: Timers,
    /// The transport AEAD every node this loop builds uses.
    pub(crate) aead: vine_core::wg::aead::Backend,
    /// The node's socket (a handle shared with the dataplane threads);
    /// the event loop only sends on it.
    pub(crate) udp: UdpBatch,
    pub(crate) udp_addr: SocketAddrV4,
    pub(crate) local: Vec<SocketAddrV4>,
    pub(crate) device: Arc<dyn PacketDevice>,
    pub(crate) routes: Box<dyn RouteApplier>,
    pub(crate) paths: RuntimePaths,
    pub(crate) phase: Phase,
    pub(crate) started_at: u64,
    /// What the dataplane threads read; every node (after a reload too)
    /// publishes into it.
    pub(crate) plane: Arc<DataPlane>,
    pub(crate) dataplane: Dataplane,
    /// The slow-path queues the dataplane threads fill.
    pub(crate) slow: SlowReceiver,
    pub(crate) server: JoinHandle<()>,
    pub(crate) shutdown_timeout: Duration,
    /// `ping` requests whose probes are in flight.
    pub(crate) pings: Vec<PendingPing>,
    /// Re-resolution of bootstrap host names (replaced on reload).
    pub(crate) names: NameWatch,
    /// Rate limits the log lines peers cause.
    pub(crate) peer_logs: PeerLogLimit,
    /// The attached workloads.
    pub(crate) workloads: Workloads,
    /// The DNS zone the DNS server answers from, and when it was built.
    pub(crate) zone: ZoneFeed,
    /// The DNS server (stops when dropped).
    pub(crate) _dns: Option<crate::dns::DnsServer>,
}

/// The DNS zone, rebuilt from the node's names when they change (and at
/// least every second, for membership changes), published to the server.
pub(crate) struct ZoneFeed {
    pub(crate) tx: tokio::sync::watch::Sender<Arc<vine_core::names::Zone>>,
    pub(crate) generation: Option<u64>,
    pub(crate) built: Option<Instant>,
}

/// The peer a node event is about and the event's name, for the events a
/// peer can cause over and over.
fn peer_caused(event: &Event) -> Option<(vine_core::PeerId, &'static str)> {
    match event {
        Event::BootstrapConnected { peer } => Some((*peer, "BootstrapConnected")),
        Event::ReflexiveAddress { via, .. } => Some((*via, "ReflexiveAddress")),
        Event::MembershipAccepted { peer, .. } => Some((*peer, "MembershipAccepted")),
        Event::MembershipWithdrawn { peer, .. } => Some((*peer, "MembershipWithdrawn")),
        Event::PathChanged { peer, .. } => Some((*peer, "PathChanged")),
        _ => None,
    }
}

/// Interval between the probes of one `ping`.
const PING_INTERVAL: Duration = Duration::from_millis(200);
/// Most probes one `ping` may ask for.
const PING_MAX: u32 = 10;

/// A `ping` being answered: probes go out one per interval over the
/// preferred path; the reply is sent when every probe is answered or lost.
pub(crate) struct PendingPing {
    result: PingResult,
    peer: vine_core::PeerId,
    remaining: u32,
    next_at: Instant,
    outstanding: Vec<(u64, u32)>,
    reply: tokio::sync::oneshot::Sender<Response>,
}

impl EventLoop {
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
    ) -> Result<(), DaemonError> {
        loop {
            self.flush().await;
            let deadline = self.node.poll_timeout();
            let next_ping = self.pings.iter().map(|p| p.next_at).min();
            let deadline = match (deadline, next_ping) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timer = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.slow.ready() => self.serve_slow(Instant::now()),
                () = timer => {
                    let now = Instant::now();
                    self.node.handle_timeout(now);
                    self.send_due_pings(now);
                }
                round = self.names.next() => {
                    let now = Instant::now();
                    for r in round {
                        if let Some(addr) = r.addr
                            && self.node.update_bootstrap_address(now, r.name.peer, addr) {
                                info!(peer = %r.name.peer, %addr, host = %r.name.host, "trying the bootstrap peer at its new address");
                            }
                    }
                }
                c = commands.recv() => match c {
                    None => break,
                    Some(Command::DumpSnapshot) => self.dump_snapshot(),
                    Some(Command::Request(RequestBody::Shutdown, reply)) => {
                        let _ = reply.send(Response::ok(ResponseBody::ShuttingDown));
                        break;
                    }
                    Some(Command::Request(RequestBody::Ping { address, count }, reply)) => {
                        self.start_ping(address, count, reply);
                    }
                    Some(Command::Request(body, reply)) => {
                        let response = self.answer(body).await;
                        let _ = reply.send(response);
                    }
                },
            }
        }
        self.shutdown().await;
        Ok(())
    }

    /// One [`Pass`] over the slow-path queues (control frames first, each
    /// queue at most its budget). With each handshake, a handshake queue
    /// still an eighth full puts the node under load.
    fn serve_slow(&mut self, now: Instant) {
        let mut pass = Pass::default();
        while let Some((queue, work)) = pass.next(&self.slow) {
            if queue == Queue::Handshake && self.slow.under_load() {
                self.node.set_under_load(now + UNDER_LOAD_FOR);
            }
            self.slow_path(now, work);
        }
    }

    /// What the dataplane threads handed over.
    fn slow_path(&mut self, now: Instant, work: SlowPath) {
        match work {
            SlowPath::Tun(packet) => self.node.handle_tun_packet(now, &packet),
            SlowPath::Datagram(from, data) => {
                trace!(%from, n = data.len(), "datagram");
                self.node.handle_datagram(now, from, &data);
            }
            SlowPath::Plain(from, peer, plain) => {
                self.node.handle_decrypted(now, from, peer, &plain);
            }
        }
    }

    /// Sends transmits, writes TUN packets, applies events.
    async fn flush(&mut self) {
        let now = Instant::now();
        while let Some(t) = self.node.poll_transmit() {
            self.slow.pending().note_sent(&t.data, now);
            if let Err(e) = self.udp.send_to(&t.data, t.dst) {
                debug!(dst = %t.dst, "UDP send: {e}");
            }
        }
        while let Some(p) = self.node.poll_tun() {
            if let Err(e) = self.device.write(&p) {
                debug!("TUN write: {e}");
            }
        }
        while let Some(e) = self.node.poll_event() {
            self.apply(e);
        }
        self.refresh_zone();
    }

    fn refresh_zone(&mut self) {
        let now = Instant::now();
        let generation = self.node.names_generation();
        let fresh = self.zone.generation == Some(generation)
            && self
                .zone
                .built
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1));
        if fresh {
            return;
        }
        self.zone.generation = Some(generation);
        self.zone.built = Some(now);
        let zone = crate::dns::zone(&self.config, &self.node);
        if **self.zone.tx.borrow() != zone {
            let _ = self.zone.tx.send(Arc::new(zone));
        }
    }

    /// Tells the node the names of the linked workloads.
    fn announce_workloads(&mut self) {
        self.node
            .set_workload_names(Instant::now(), self.workloads.names());
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Route(RouteIntent::Install(prefix)) => {
                info!(%prefix, "installing route");
                if let Err(e) = self.routes.install(prefix) {
                    error!(%prefix, "cannot install route: {e}");
                }
            }
            Event::Route(RouteIntent::Remove(prefix)) => {
                info!(%prefix, "removing route");
                if let Err(e) = self.routes.remove(prefix) {
                    error!(%prefix, "cannot remove route: {e}");
                }
            }
            Event::MembershipRejected { peer, reason } => {
                if self.admit_log(peer, &format!("{reason:?}")) {
                    warn!(%peer, ?reason, "membership update rejected");
                }
            }
            Event::BootstrapUnreachable { peer, address } => {
                if self.admit_log(peer, "BootstrapUnreachable") {
                    warn!(%peer, %address, "bootstrap peer does not answer");
                }
            }
            Event::SessionFailed { peer } => {
                if self.admit_log(peer, "SessionFailed") {
                    warn!(%peer, "session setup failed");
                }
            }
            Event::ProbeAnswered {
                probe,
                rtt_us,
                via,
                class,
                ..
            } => self.probe_done(
                probe,
                Some(rtt_us),
                Some(via),
                class.map(|c| c.as_str().to_owned()),
            ),
            Event::ProbeLost { probe, .. } => self.probe_done(probe, None, None, None),
            other => {
                if peer_caused(&other).is_none_or(|(peer, what)| self.admit_log(peer, what)) {
                    info!(event = ?other, "node event");
                }
            }
        }
        for ((peer, reason), n) in self.peer_logs.expired(Instant::now()) {
            Self::log_suppressed(peer, &reason, n);
        }
    }

    /// Whether a log line caused by `peer` for `reason` goes out (see
    /// [`PeerLogLimit`]); first reports the lines suppressed before it.
    fn admit_log(&mut self, peer: vine_core::PeerId, reason: &str) -> bool {
        match self.peer_logs.admit(peer, reason, Instant::now()) {
            Some(0) => true,
            Some(n) => {
                Self::log_suppressed(Some(peer), reason, n);
                true
            }
            None => false,
        }
    }

    fn log_suppressed(peer: Option<vine_core::PeerId>, reason: &str, n: u64) {
        let window = log_limit::WINDOW;
        match peer {
            Some(peer) => {
                warn!(%peer, reason, "suppressed {n} log lines (more than {} per {window:?})", log_limit::BURST)
            }
            None => warn!(
                reason,
                "suppressed {n} log lines from many peers (more than {} per {window:?})",
                log_limit::BURST
            ),
        }
    }

    /// Starts a `ping`: answers at once when there is nothing to probe.
    fn start_ping(
        &mut self,
        address: std::net::Ipv4Addr,
        count: u32,
        reply: tokio::sync::oneshot::Sender<Response>,
    ) {
        let now = Instant::now();
        let result = views::ping(&self.node, &self.node.snapshot(now), address, count);
        match result.peer.filter(|_| result.class.is_some() && count > 0) {
            Some(peer) => {
                self.pings.push(PendingPing {
                    result,
                    peer,
                    remaining: count.min(PING_MAX),
                    next_at: now,
                    outstanding: Vec::new(),
                    reply,
                });
                self.send_due_pings(now);
            }
            None => {
                let _ = reply.send(Response::ok(ResponseBody::Ping(result)));
            }
        }
    }

    fn send_due_pings(&mut self, now: Instant) {
        let mut finished = Vec::new();
        for (i, ping) in self.pings.iter_mut().enumerate() {
            if ping.remaining > 0 && ping.next_at <= now {
                ping.remaining -= 1;
                ping.next_at = now + PING_INTERVAL;
                let seq = ping.result.probes.len() as u32 + 1;
                ping.result.probes.push(ProbeRtt {
                    seq,
                    rtt_us: None,
                    via: None,
                    class: None,
                });
                match self.node.probe(now, &ping.peer) {
                    Some(id) => ping.outstanding.push((id, seq)),
                    None => {
                        // The path went away between probes: counts as lost.
                    }
                }
            }
            if ping.remaining == 0 && ping.outstanding.is_empty() {
                finished.push(i);
            }
        }
        self.finish_pings(finished);
    }

    fn probe_done(
        &mut self,
        probe: u64,
        rtt_us: Option<u64>,
        via: Option<String>,
        class: Option<String>,
    ) {
        let mut finished = Vec::new();
        for (i, ping) in self.pings.iter_mut().enumerate() {
            if let Some(pos) = ping.outstanding.iter().position(|(id, _)| *id == probe) {
                let (_, seq) = ping.outstanding.swap_remove(pos);
                if let Some(r) = ping.result.probes.iter_mut().find(|r| r.seq == seq) {
                    r.rtt_us = rtt_us;
                    r.via = via.clone();
                    r.class = class.clone();
                }
            }
            if ping.remaining == 0 && ping.outstanding.is_empty() {
                finished.push(i);
            }
        }
        self.finish_pings(finished);
    }

    fn finish_pings(&mut self, mut finished: Vec<usize>) {
        finished.sort_unstable();
        for i in finished.into_iter().rev() {
            let ping = self.pings.swap_remove(i);
            let _ = ping
                .reply
                .send(Response::ok(ResponseBody::Ping(ping.result)));
        }
    }

    async fn answer(&mut self, body: RequestBody) -> Response {
        let now = Instant::now();
        let body = match body {
            RequestBody::Status => ResponseBody::Status(views::status(
                &self.node.snapshot(now),
                self.phase,
                self.started_at,
                &self.config_path,
                self.udp_addr,
                &self.device.name(),
            )),
            RequestBody::Peers => ResponseBody::Peers(views::peers(&self.node.snapshot(now))),
            RequestBody::Routes => ResponseBody::Routes(views::routes(&self.node.snapshot(now))),
            RequestBody::Sessions => {
                ResponseBody::Sessions(views::sessions(&self.node.snapshot(now)))
            }
            RequestBody::Counters => match CountersInfo::from_node(&self.node.counters()) {
                Ok(mut c) => {
                    c.inline_drops = self.slow.rejected();
                    c.queue_drops = self.slow.drops();
                    c.queue_peak_bytes = self.slow.peaks();
                    ResponseBody::Counters(c)
                }
                Err(e) => return Response::error(ErrorCode::Internal, e.to_string()),
            },
            RequestBody::Snapshot => match serde_json::to_value(self.node.snapshot(now)) {
                Ok(v) => ResponseBody::Snapshot(v),
                Err(e) => return Response::error(ErrorCode::Internal, e.to_string()),
            },
            RequestBody::Ping { address, count } => ResponseBody::Ping(views::ping(
                &self.node,
                &self.node.snapshot(now),
                address,
                count,
            )),
            RequestBody::Explain { peer } => {
                match views::explain(&self.node, &self.node.snapshot(now), &peer) {
                    Ok(e) => ResponseBody::Explain(e),
                    Err(msg) => return Response::error(ErrorCode::UnknownPeer, msg),
                }
            }
            RequestBody::Attach { name, netns } => {
                match self
                    .workloads
                    .attach(&name, &netns, build::wall_clock().as_secs())
                {
                    Ok(w) => {
                        self.announce_workloads();
                        ResponseBody::Attached(w)
                    }
                    Err(e) => {
                        return Response {
                            version: crate::api::PROTOCOL_VERSION,
                            body: Err(e),
                        };
                    }
                }
            }
            RequestBody::Detach { name } => match self.workloads.detach(&name) {
                Ok(w) => {
                    self.announce_workloads();
                    ResponseBody::Detached(w)
                }
                Err(e) => {
                    return Response {
                        version: crate::api::PROTOCOL_VERSION,
                        body: Err(e),
                    };
                }
            },
            RequestBody::Workloads => ResponseBody::Workloads(self.workloads.list()),
            RequestBody::Reload => ResponseBody::Reload(self.reload().await),
            RequestBody::Shutdown => ResponseBody::ShuttingDown,
        };
        Response::ok(body)
    }

    async fn reload(&mut self) -> ReloadOutcome {
        let (config, identity) = match build::load(&self.config_path) {
            Ok(loaded) => loaded,
            Err(DaemonError::InvalidConfig { diagnostics, .. }) => {
                for d in &diagnostics {
                    error!("reload: {d}");
                }
                error!("reload rejected: the new config is invalid; still running on the old one");
                return ReloadOutcome::Rejected { diagnostics };
            }
            Err(e) => {
                error!("reload rejected: {e}; still running on the old one");
                return ReloadOutcome::Rejected {
                    diagnostics: vec![e.to_string()],
                };
            }
        };
        let mut sections = Vec::new();
        if config.node != self.config.node {
            sections.push("node".to_owned());
        }
        if config.tun != self.config.tun {
            sections.push("tun".to_owned());
        }
        if identity.peer_id() != self.identity.peer_id() {
            sections.push("identity".to_owned());
        }
        if !sections.is_empty() {
            warn!(
                ?sections,
                "reload: these sections changed and need a restart (`vine daemon stop` then start); still running on the old config"
            );
            return ReloadOutcome::RestartRequired { sections };
        }
        if config.allowed_peers == self.config.allowed_peers
            && config.bootstrap_peers == self.config.bootstrap_peers
            && config.policy == self.config.policy
        {
            info!("reload: nothing changed");
            return ReloadOutcome::Unchanged;
        }
        let (node, names) =
            match build::node(&config, &self.identity, self.timers, self.aead, &self.local) {
                Ok(n) => n,
                Err(e) => {
                    error!("reload rejected: {e}; still running on the old one");
                    return ReloadOutcome::Rejected {
                        diagnostics: vec![e.to_string()],
                    };
                }
            };
        // Withdraw from peers and remove routes under the old node, then
        // hand over to the new one, which re-establishes sessions.
        self.node.stop(Instant::now());
        self.flush().await;
        if let Err(e) = self.routes.remove_all() {
            error!("reload: cannot remove old routes: {e}");
        }
        self.node = node;
        self.names = names;
        // Only now: the old node's last publish (on stop) must not
        // overwrite the new node's tables.
        self.node
            .attach_data_plane(Instant::now(), Arc::clone(&self.plane));
        self.config = config;
        info!(
            "reload applied: allowlist, bootstrap peers and policy replaced; sessions are being re-established"
        );
        ReloadOutcome::Applied
    }

    fn dump_snapshot(&self) {
        let path = self.paths.snapshot();
        let result = serde_json::to_vec_pretty(&self.node.snapshot(Instant::now()))
            .map_err(std::io::Error::other)
            .and_then(|mut text| {
                text.push(b'\n');
                files::write_snapshot(&self.paths, &text)
            });
        match result {
            Ok(()) => info!(path = %path.display(), "snapshot written"),
            Err(e) => error!(path = %path.display(), "cannot write snapshot: {e}"),
        }
    }

    fn write_state(&self) {
        let state = StateFile {
            phase: self.phase,
            pid: std::process::id(),
            config_path: self.config_path.display().to_string(),
            started_at: self.started_at,
        };
        if let Err(e) = files::write_state(&self.paths, &state) {
            warn!("cannot write state file: {e}");
        }
    }

    async fn shutdown(mut self) {
        info!("stopping");
        self.phase = Phase::Stopping;
        self.write_state();
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Stopping]) {
            debug!("sd_notify STOPPING: {e}");
        }
        self.server.abort();
        let bound = self.shutdown_timeout;
        let stop = async {
            self.node.stop(Instant::now());
            self.flush().await;
            if let Err(e) = self.routes.remove_all() {
                error!("cannot remove routes: {e}; remove them with `ip route flush dev <tun>`");
            }
            self.workloads.stop();
        };
        if tokio::time::timeout(bound, stop).await.is_err() {
            warn!("shutdown did not finish within {bound:?}; removing runtime files anyway");
        }
        self.slow.close();
        self.dataplane.stop();
        for p in [
            self.paths.socket(),
            self.paths.pidfile(),
            self.paths.state_file(),
        ] {
            if let Err(e) = files::remove_if_present(&p) {
                warn!(path = %p.display(), "cannot remove: {e}");
            }
        }
        info!("stopped");
    }
}
