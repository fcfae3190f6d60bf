//! [`Network`]: the simulated world and the run loop that drives its
//! endpoints on virtual time.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::clock::{Clock, EventQueue, Timers};
use super::endpoint::{Endpoint, Transmit};
use super::ids::{HostId, NatId, RealmId};
use super::link::{LinkParams, Links};
use super::nat::NatConfig;
use super::rng::SimRng;
use super::stats::{Counters, DropReason, Outcome, Stats, TraceEvent};
use super::topology::{Flight, Topology, TopologyError};

/// How many times in a row a host's timer may fire and come back due at or
/// before the current time before the endpoint is declared stuck.
const STUCK_TIMER_LIMIT: u32 = 1_000;

/// How many datagrams one endpoint may emit in one drain before it is
/// declared stuck in `poll_transmit`.
const TRANSMIT_BURST_LIMIT: usize = 1 << 20;

/// What the counters and the trace record about a packet.
struct Meta {
    from: HostId,
    /// The receiver, once routing knows it.
    to: Option<HostId>,
    /// The destination as the sender addressed it.
    dst: SocketAddrV4,
    /// The source after the sender's NATs.
    seen_src: Option<SocketAddrV4>,
    len: usize,
    sent: Instant,
}

/// A packet between its sender's NATs and its receiver's.
struct InFlight {
    meta: Meta,
    /// The receiver predicted at send time (the one the delay was computed
    /// for); its partitions are checked again on arrival.
    predicted: HostId,
    flight: Flight,
    data: Vec<u8>,
}

/// A deterministic in-memory UDP network of [`Endpoint`]s on a virtual clock.
///
/// See the [module docs](super) for the model and a run-loop example.
pub struct Network<E> {
    clock: Clock,
    seed: u64,
    rng: SimRng,
    topo: Topology,
    links: Links,
    endpoints: Vec<E>,
    timers: Timers,
    /// Consecutive immediate re-fires per host (see [`STUCK_TIMER_LIMIT`]).
    stuck: Vec<u32>,
    /// Hosts whose transmits and timeout must be polled before the next
    /// event (new hosts, and endpoints a test borrowed mutably).
    dirty: BTreeSet<HostId>,
    queue: EventQueue<InFlight>,
    stats: Stats,
    trace: Option<Vec<TraceEvent>>,
}

impl<E: Endpoint> Network<E> {
    /// An empty network (just the internet realm) whose randomness is all
    /// drawn from `seed`. Reads the wall clock once, as the epoch.
    pub fn new(seed: u64) -> Self {
        Self {
            clock: Clock::start(),
            seed,
            rng: SimRng::new(seed),
            topo: Topology::new(),
            links: Links::new(),
            endpoints: Vec::new(),
            timers: Timers::new(),
            stuck: Vec::new(),
            dirty: BTreeSet::new(),
            queue: EventQueue::new(),
            stats: Stats::default(),
            trace: None,
        }
    }

    /// The seed this network was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    // ----- topology -------------------------------------------------------

    /// The public realm.
    pub fn internet(&self) -> RealmId {
        RealmId(0)
    }

    /// Adds a private realm (a LAN, a carrier network).
    pub fn add_realm(&mut self, name: impl Into<String>) -> RealmId {
        self.topo.add_realm(name.into())
    }

    /// The realm's name (`internet` for [`internet`](Self::internet)).
    ///
    /// # Panics
    /// If the id was not issued by this network.
    pub fn realm_name(&self, realm: RealmId) -> &str {
        self.topo.realm_name(realm)
    }

    /// Adds a NAT box between `config.inside` and `config.outside`.
    ///
    /// If the outside realm is private, the NAT's outbound traffic for
    /// addresses outside it goes to the NAT set with
    /// [`set_nat_gateway`](Self::set_nat_gateway), or else to the only NAT
    /// whose inside realm it is (none, or several: dropped as
    /// [`DropReason::NoRoute`]).
    pub fn try_add_nat(&mut self, config: NatConfig) -> Result<NatId, TopologyError> {
        self.topo.add_nat(config)
    }

    /// [`try_add_nat`](Self::try_add_nat) for tests.
    ///
    /// # Panics
    /// If the configuration is refused (the message says why).
    pub fn add_nat(&mut self, config: NatConfig) -> NatId {
        self.try_add_nat(config)
            .unwrap_or_else(|e| panic!("add_nat: {e}"))
    }

    /// For a NAT chain: sends `nat`'s traffic that leaves its outside realm
    /// through `gateway`, whose inside realm must be `nat`'s outside realm.
    pub fn set_nat_gateway(&mut self, nat: NatId, gateway: NatId) -> Result<(), TopologyError> {
        self.topo.set_upstream(nat, gateway)
    }

    /// Turns hairpinning on (the default, RFC 4787 REQ-9) or off. Without it
    /// a packet from inside to the NAT's own public IP is dropped as
    /// [`DropReason::NoRoute`].
    ///
    /// # Panics
    /// If the id was not issued by this network.
    pub fn set_hairpinning(&mut self, nat: NatId, enabled: bool) {
        self.topo.nat_mut(nat).set_hairpinning(enabled);
    }

    /// How many of the NAT's mappings are alive now.
    ///
    /// # Panics
    /// If the id was not issued by this network.
    pub fn active_mappings(&self, nat: NatId) -> usize {
        self.topo.nat(nat).active_mappings(self.clock.now())
    }

    /// Adds a host with one UDP socket at `ip:port` in `realm`, sending
    /// off-realm traffic to `gateway` (whose inside realm must be `realm`).
    /// Its endpoint is polled for transmits and a timeout before the next
    /// event.
    pub fn try_add_host(
        &mut self,
        name: impl Into<String>,
        realm: RealmId,
        ip: Ipv4Addr,
        port: u16,
        gateway: Option<NatId>,
        endpoint: E,
    ) -> Result<HostId, TopologyError> {
        let addr = SocketAddrV4::new(ip, port);
        let id = self.topo.add_host(name.into(), realm, addr, gateway)?;
        self.endpoints.push(endpoint);
        self.links.add_host();
        self.timers.add_host();
        self.stats.add_host();
        self.stuck.push(0);
        self.dirty.insert(id);
        Ok(id)
    }

    /// [`try_add_host`](Self::try_add_host) for tests.
    ///
    /// # Panics
    /// If the host is refused (the message says why).
    pub fn add_host(
        &mut self,
        name: impl Into<String>,
        realm: RealmId,
        ip: Ipv4Addr,
        port: u16,
        gateway: Option<NatId>,
        endpoint: E,
    ) -> HostId {
        self.try_add_host(name, realm, ip, port, gateway, endpoint)
            .unwrap_or_else(|e| panic!("add_host: {e}"))
    }

    /// The host's own socket address (in its realm, before any NAT).
    ///
    /// # Panics
    /// If the id was not issued by this network (as for every host method).
    pub fn host_addr(&self, host: HostId) -> SocketAddrV4 {
        self.topo.host(host).addr
    }

    /// The name the host was added with.
    pub fn host_name(&self, host: HostId) -> &str {
        &self.topo.host(host).name
    }

    /// The realm the host lives in.
    pub fn host_realm(&self, host: HostId) -> RealmId {
        self.topo.host(host).realm
    }

    /// Every host, in creation order.
    pub fn hosts(&self) -> impl Iterator<Item = HostId> + use<E> {
        (0..self.topo.host_count()).map(HostId)
    }

    /// The host's endpoint.
    pub fn endpoint(&self, host: HostId) -> &E {
        let _ = self.topo.host(host);
        &self.endpoints[host.0]
    }

    /// The host's endpoint, for a test to poke (e.g. inject a TUN packet).
    /// Marks the host so the next step polls its transmits and timeout.
    pub fn endpoint_mut(&mut self, host: HostId) -> &mut E {
        let _ = self.topo.host(host);
        self.dirty.insert(host);
        &mut self.endpoints[host.0]
    }

    // ----- links and partitions -------------------------------------------

    /// Sets the host's access link (default [`LinkParams::DEFAULT`]).
    ///
    /// # Panics
    /// If `params.loss` is not in `[0, 1]`.
    pub fn set_link(&mut self, host: HostId, params: LinkParams) {
        let _ = self.topo.host(host);
        self.links.set_access(host, params);
    }

    /// The host's access link.
    pub fn link(&self, host: HostId) -> LinkParams {
        let _ = self.topo.host(host);
        self.links.access(host)
    }

    /// Overrides the end-to-end delay and loss between `a` and `b` (both
    /// directions, through any NATs), replacing the sum of access links.
    ///
    /// # Panics
    /// If `params.loss` is not in `[0, 1]`.
    pub fn set_path(&mut self, a: HostId, b: HostId, params: LinkParams) {
        let (_, _) = (self.topo.host(a), self.topo.host(b));
        self.links.set_path(a, b, params);
    }

    /// Removes a [`set_path`](Self::set_path) override.
    pub fn clear_path(&mut self, a: HostId, b: HostId) {
        self.links.clear_path(a, b);
    }

    /// Drops every packet between `a` and `b`, both ways, including those
    /// already in flight.
    pub fn block(&mut self, a: HostId, b: HostId) {
        let (_, _) = (self.topo.host(a), self.topo.host(b));
        self.links.block(a, b);
    }

    /// Undoes [`block`](Self::block).
    pub fn unblock(&mut self, a: HostId, b: HostId) {
        self.links.unblock(a, b);
    }

    /// Drops every packet to or from `host`, including those in flight.
    pub fn isolate(&mut self, host: HostId) {
        let _ = self.topo.host(host);
        self.links.isolate(host);
    }

    /// Undoes [`isolate`](Self::isolate).
    pub fn rejoin(&mut self, host: HostId) {
        self.links.rejoin(host);
    }

    // ----- stats and trace ------------------------------------------------

    /// Network-wide counters.
    pub fn stats(&self) -> &Counters {
        self.stats.global()
    }

    /// One host's counters (see [`Counters`] for what each field counts).
    pub fn host_stats(&self, host: HostId) -> &Counters {
        let _ = self.topo.host(host);
        self.stats.host(host)
    }

    /// Zeroes every counter (packets in flight keep their outcome pending).
    pub fn reset_stats(&mut self) {
        self.stats.reset();
    }

    /// Starts recording a [`TraceEvent`] per packet outcome.
    pub fn enable_trace(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
    }

    /// The trace so far (empty unless [`enable_trace`](Self::enable_trace)).
    pub fn trace(&self) -> &[TraceEvent] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Takes the trace recorded so far, leaving tracing on if it was.
    pub fn take_trace(&mut self) -> Vec<TraceEvent> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Packets sent but not yet delivered or dropped.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    // ----- time -----------------------------------------------------------

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The instant virtual time started from.
    pub fn epoch(&self) -> Instant {
        self.clock.epoch()
    }

    /// Virtual time since the epoch.
    pub fn elapsed(&self) -> Duration {
        self.clock.since_epoch(self.clock.now())
    }

    // ----- run loop -------------------------------------------------------

    /// Processes the next event: the earliest packet arrival or endpoint
    /// timeout (packets first on a tie), jumping the clock to it. Returns
    /// `false` if nothing is pending.
    ///
    /// # Panics
    /// If an endpoint keeps returning a timeout at or before the current time
    /// after handling it, or never stops returning transmits: both are bugs
    /// in the endpoint under test.
    pub fn step(&mut self) -> bool {
        self.flush_dirty();
        let packet_at = self.queue.peek_time();
        let timer = self.timers.next();
        match (packet_at, timer) {
            (Some(p), Some((t, _))) if p <= t => self.deliver_next(),
            (Some(_), None) => self.deliver_next(),
            (_, Some((t, host))) => self.fire_timer(t, host),
            (None, None) => return false,
        }
        true
    }

    /// When the next event is due, after polling dirty hosts.
    fn next_due(&mut self) -> Option<Instant> {
        self.flush_dirty();
        let packet_at = self.queue.peek_time();
        let timer_at = self.timers.next().map(|(t, _)| t);
        match (packet_at, timer_at) {
            (Some(p), Some(t)) => Some(p.min(t)),
            (p, t) => p.or(t),
        }
    }

    /// Runs every event due up to `deadline`, then sets the clock to it.
    pub fn run_until(&mut self, deadline: Instant) {
        while self.next_due().is_some_and(|t| t <= deadline) {
            self.step();
        }
        self.clock.advance_to(deadline);
    }

    /// Runs for `duration` of virtual time (until nothing is pending if
    /// `now + duration` is not representable).
    pub fn run_for(&mut self, duration: Duration) {
        match self.clock.now().checked_add(duration) {
            Some(deadline) => self.run_until(deadline),
            None => while self.step() {},
        }
    }

    /// Runs until `cond` holds (checked before the first event and after
    /// each one) or `max` virtual time has passed; returns whether it held.
    /// On success the clock stays at the event that made it true.
    pub fn run_until_cond(&mut self, max: Duration, mut cond: impl FnMut(&Self) -> bool) -> bool {
        let deadline = self.clock.now().checked_add(max);
        loop {
            self.flush_dirty();
            if cond(self) {
                return true;
            }
            match (self.next_due(), deadline) {
                (Some(t), Some(d)) if t <= d => {}
                (Some(_), None) => {}
                (_, Some(d)) => {
                    self.clock.advance_to(d);
                    return cond(self);
                }
                (None, None) => return false,
            }
            self.step();
        }
    }

    /// Polls every host marked dirty, in host order.
    fn flush_dirty(&mut self) {
        while let Some(host) = self.dirty.pop_first() {
            self.service(host);
        }
    }

    /// Drains the host's transmits and re-reads its timeout (returned).
    fn service(&mut self, host: HostId) -> Option<Instant> {
        let mut burst = 0usize;
        while let Some(transmit) = self.endpoints[host.0].poll_transmit() {
            burst += 1;
            if burst > TRANSMIT_BURST_LIMIT {
                panic!(
                    "endpoint of host `{}` returned more than {TRANSMIT_BURST_LIMIT} transmits \
                     in one poll without being handed any input: poll_transmit never returns \
                     None (bug in the endpoint under test)",
                    self.topo.host(host).name
                );
            }
            self.send(host, transmit);
        }
        let timeout = self.endpoints[host.0].poll_timeout();
        self.timers.set(host, timeout);
        timeout
    }

    /// Fires `host`'s timer, due at `due`.
    fn fire_timer(&mut self, due: Instant, host: HostId) {
        self.clock.advance_to(due);
        let now = self.clock.now();
        self.timers.set(host, None);
        self.endpoints[host.0].handle_timeout(now);
        let next = self.service(host);
        if next.is_some_and(|t| t <= now) {
            self.stuck[host.0] += 1;
            if self.stuck[host.0] > STUCK_TIMER_LIMIT {
                panic!(
                    "endpoint of host `{}` is stuck: after handle_timeout({:?} since epoch) it \
                     still returns poll_timeout {:?} since epoch (not after now), \
                     {STUCK_TIMER_LIMIT} times in a row; a handled deadline must move past now \
                     (bug in the endpoint under test)",
                    self.topo.host(host).name,
                    self.clock.since_epoch(now),
                    next.map(|t| self.clock.since_epoch(t)),
                );
            }
        } else {
            self.stuck[host.0] = 0;
        }
    }

    /// Sends one datagram from `from` now: the sender's NATs translate it,
    /// the receiver is predicted for delay, loss and partitions, and the
    /// packet is queued for arrival.
    fn send(&mut self, from: HostId, transmit: Transmit) {
        let now = self.clock.now();
        self.stats.sent(from);
        let Transmit { dst, data } = transmit;
        let mut meta = Meta {
            from,
            to: None,
            dst,
            seen_src: None,
            len: data.len(),
            sent: now,
        };
        if self.links.is_isolated(from) {
            return self.finish(&meta, Outcome::Dropped(DropReason::Blocked));
        }
        let flight = match self.topo.climb(now, from, dst) {
            Ok(flight) => flight,
            Err(reason) => return self.finish(&meta, Outcome::Dropped(reason)),
        };
        meta.seen_src = Some(flight.src);
        let to = match self.topo.resolve(now, &flight, false) {
            Ok(to) => to,
            Err(reason) => return self.finish(&meta, Outcome::Dropped(reason)),
        };
        meta.to = Some(to);
        if self.links.is_cut(from, to) {
            return self.finish(&meta, Outcome::Dropped(DropReason::Blocked));
        }
        let path = self.links.path(from, to);
        if self.rng.chance(path.loss) {
            return self.finish(&meta, Outcome::Dropped(DropReason::Loss));
        }
        let arrival = now.checked_add(path.latency).unwrap_or(now);
        self.queue.push(
            arrival,
            InFlight {
                meta,
                predicted: to,
                flight,
                data,
            },
        );
    }

    /// Handles the earliest packet arrival: the receiver's NATs translate
    /// and filter it, then it is delivered unless its pair got cut.
    fn deliver_next(&mut self) {
        let Some((at, packet)) = self.queue.pop() else {
            return;
        };
        self.clock.advance_to(at);
        let now = self.clock.now();
        let InFlight {
            mut meta,
            predicted,
            flight,
            data,
        } = packet;
        let to = match self.topo.resolve(now, &flight, true) {
            Ok(to) => to,
            Err(reason) => return self.finish(&meta, Outcome::Dropped(reason)),
        };
        meta.to = Some(to);
        if self.links.is_cut(meta.from, to) || self.links.is_cut(meta.from, predicted) {
            return self.finish(&meta, Outcome::Dropped(DropReason::Blocked));
        }
        self.finish(&meta, Outcome::Delivered);
        let local = self.topo.host(to).addr;
        self.endpoints[to.0].handle_datagram(now, local, flight.src, &data);
        self.service(to);
    }

    /// Counts a packet's outcome and traces it if tracing is on.
    fn finish(&mut self, meta: &Meta, outcome: Outcome) {
        match (outcome, meta.to) {
            (Outcome::Delivered, Some(to)) => self.stats.delivered(meta.from, to),
            (Outcome::Delivered, None) => {}
            (Outcome::Dropped(reason), _) => self.stats.dropped(meta.from, reason),
        }
        if let Some(trace) = self.trace.as_mut() {
            trace.push(TraceEvent {
                time: self.clock.since_epoch(self.clock.now()),
                sent: self.clock.since_epoch(meta.sent),
                from: meta.from,
                to: meta.to,
                src: self.topo.host(meta.from).addr,
                dst: meta.dst,
                seen_src: meta.seen_src,
                len: meta.len,
                outcome,
            });
        }
    }
}
