//! Simulator tests, driven by [`Probe`], a toy echo/reflector endpoint.
//!
//! NAT behaviour lives in [`nat`]; this file covers time, links,
//! partitions, determinism, the run loop and topology errors.

mod nat;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::{
    DropReason, Endpoint, LinkParams, NatConfig, NatType, Network, Outcome, SimRng, TopologyError,
    Transmit,
};

/// The port every probe host listens on unless a test says otherwise.
const PORT: u16 = 5000;

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One datagram a probe received.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    local: SocketAddrV4,
    from: SocketAddrV4,
    data: Vec<u8>,
}

/// A periodic datagram a probe sends by itself.
#[derive(Debug, Clone)]
struct Keepalive {
    dst: SocketAddrV4,
    every: Duration,
    next: Instant,
}

/// A toy endpoint: answers `ping…` with `pong…` and `whoami` with
/// `you-are <source as seen>` (a STUN-like reflector), records every
/// datagram, and can send a keepalive on a timer.
#[derive(Debug, Default)]
struct Probe {
    outbox: VecDeque<Transmit>,
    inbox: Vec<Received>,
    keepalive: Option<Keepalive>,
}

impl Probe {
    fn send(&mut self, dst: SocketAddrV4, data: &[u8]) {
        self.outbox.push_back(Transmit {
            dst,
            data: data.to_vec(),
        });
    }

    fn start_keepalive(&mut self, now: Instant, dst: SocketAddrV4, every: Duration) {
        self.keepalive = Some(Keepalive {
            dst,
            every,
            next: now + every,
        });
    }

    /// How many received datagrams match.
    fn count(&self, pred: impl Fn(&Received) -> bool) -> usize {
        self.inbox.iter().filter(|r| pred(r)).count()
    }

    /// Datagrams received whose payload starts with `prefix`.
    fn count_prefix(&self, prefix: &[u8]) -> usize {
        self.count(|r| r.data.starts_with(prefix))
    }

    /// The address `reflector` last said this probe has.
    fn reflexive_from(&self, reflector: SocketAddrV4) -> Option<SocketAddrV4> {
        self.inbox
            .iter()
            .rev()
            .filter(|r| r.from == reflector)
            .find_map(|r| {
                let text = std::str::from_utf8(&r.data).ok()?;
                text.strip_prefix("you-are ")?.parse().ok()
            })
    }
}

impl Endpoint for Probe {
    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        from: SocketAddrV4,
        data: &[u8],
    ) {
        self.inbox.push(Received {
            at: now,
            local,
            from,
            data: data.to_vec(),
        });
        if let Some(rest) = data.strip_prefix(b"ping") {
            let mut reply = b"pong".to_vec();
            reply.extend_from_slice(rest);
            self.send(from, &reply);
        } else if data == b"whoami" {
            self.send(from, format!("you-are {from}").as_bytes());
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(k) = self.keepalive.as_mut()
            && now >= k.next
        {
            k.next = now + k.every;
            let dst = k.dst;
            self.send(dst, b"keepalive");
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.keepalive.as_ref().map(|k| k.next)
    }
}

type Net = Network<Probe>;

/// A probe host on the internet at `addr:PORT`.
fn public_host(net: &mut Net, name: &str, addr: Ipv4Addr) -> super::HostId {
    let inet = net.internet();
    net.add_host(name, inet, addr, PORT, None, Probe::default())
}

/// Sends `data` from `from` to `to` now (through `endpoint_mut`).
fn poke(net: &mut Net, from: super::HostId, to: SocketAddrV4, data: &[u8]) {
    net.endpoint_mut(from).send(to, data);
}

/// Sends `data` from `from` to host `to`'s own address now.
fn poke_host(net: &mut Net, from: super::HostId, to: super::HostId, data: &[u8]) {
    let dst = net.host_addr(to);
    poke(net, from, dst, data);
}

#[test]
fn round_trip_is_the_sum_of_access_latencies_on_virtual_time() {
    let wall = Instant::now();
    let mut net = Net::new(1);
    let a = public_host(&mut net, "a", ip(192, 0, 2, 1));
    let b = public_host(&mut net, "b", ip(192, 0, 2, 2));
    net.set_link(a, LinkParams::lossless(ms(20)));
    net.set_link(b, LinkParams::lossless(ms(30)));
    let t0 = net.now();
    poke_host(&mut net, a, b, b"ping");
    assert!(net.run_until_cond(
        Duration::from_secs(5),
        |n| n.endpoint(a).count_prefix(b"pong") == 1
    ));
    let ping = &net.endpoint(b).inbox[0];
    assert_eq!(ping.at - t0, ms(50), "one way = 20 ms + 30 ms");
    assert_eq!(ping.from, net.host_addr(a));
    assert_eq!(ping.local, net.host_addr(b));
    assert_eq!(net.endpoint(a).inbox[0].at - t0, ms(100));
    assert_eq!(
        net.elapsed(),
        ms(100),
        "the clock stops at the event that satisfied the condition"
    );

    // A path override replaces the sum, both ways.
    net.set_path(b, a, LinkParams::lossless(ms(7)));
    let t1 = net.now();
    poke_host(&mut net, a, b, b"ping");
    assert!(net.run_until_cond(
        Duration::from_secs(5),
        |n| n.endpoint(a).count_prefix(b"pong") == 2
    ));
    assert_eq!(net.now() - t1, ms(14));
    net.clear_path(a, b);
    let t2 = net.now();
    poke_host(&mut net, a, b, b"ping");
    assert!(net.run_until_cond(
        Duration::from_secs(5),
        |n| n.endpoint(a).count_prefix(b"pong") == 3
    ));
    assert_eq!(net.now() - t2, ms(100));
    assert!(
        wall.elapsed() < Duration::from_secs(30), // generous: CI machines can be loaded
        "virtual time must not sleep"
    );
}

#[test]
fn an_hour_of_keepalives_takes_no_wall_time() {
    let wall = Instant::now();
    let mut net = Net::new(2);
    let a = public_host(&mut net, "a", ip(192, 0, 2, 1));
    let b = public_host(&mut net, "b", ip(192, 0, 2, 2));
    let (now, dst) = (net.now(), net.host_addr(b));
    net.endpoint_mut(a)
        .start_keepalive(now, dst, Duration::from_secs(1));
    net.run_for(Duration::from_secs(3600));
    assert_eq!(net.elapsed(), Duration::from_secs(3600));
    assert_eq!(
        net.host_stats(a).sent,
        3600,
        "one per second, the last at exactly 1 h"
    );
    assert_eq!(net.endpoint(b).count_prefix(b"keepalive"), 3599);
    assert_eq!(
        net.in_flight(),
        1,
        "the last one lands 10 ms after the hour"
    );
    assert!(
        wall.elapsed() < Duration::from_secs(30), // generous: CI machines can be loaded
        "took {:?}",
        wall.elapsed()
    );
}

#[test]
fn run_loop_edges() {
    let mut net = Net::new(3);
    assert!(!net.step(), "an empty network has nothing to do");
    let a = public_host(&mut net, "a", ip(192, 0, 2, 1));
    assert!(
        !net.step(),
        "a host without timers or transmits has nothing to do"
    );
    let start = net.now();
    assert!(!net.run_until_cond(ms(250), |n| n.endpoint(a).inbox.len() == 1));
    assert_eq!(
        net.now() - start,
        ms(250),
        "a failed wait ends at its deadline"
    );
    net.run_until(start + ms(400));
    assert_eq!(net.elapsed(), ms(400));
    // Poking an endpoint makes the next step send what it queued.
    poke_host(&mut net, a, a, b"ping");
    assert_eq!(net.in_flight(), 0);
    assert!(net.step(), "the ping to itself arrives");
    assert!(net.step(), "the pong arrives");
    assert!(!net.step());
    assert_eq!(net.endpoint(a).count_prefix(b"pong"), 1);
    assert_eq!(net.elapsed(), ms(420), "two hops of 5 ms + 5 ms");
}

/// An endpoint whose deadline is always the same past instant.
struct StuckTimer(Instant);

impl Endpoint for StuckTimer {
    fn handle_datagram(&mut self, _: Instant, _: SocketAddrV4, _: SocketAddrV4, _: &[u8]) {}
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_transmit(&mut self) -> Option<Transmit> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.0)
    }
}

#[test]
#[should_panic(expected = "endpoint of host `stuck` is stuck")]
fn an_endpoint_stuck_on_a_past_timeout_is_reported() {
    let mut net = Network::new(4);
    let inet = net.internet();
    let past = net.now();
    net.run_for(Duration::from_secs(1));
    net.add_host(
        "stuck",
        inet,
        ip(192, 0, 2, 1),
        PORT,
        None,
        StuckTimer(past),
    );
    net.run_for(Duration::from_secs(1));
}

#[test]
fn boxed_endpoints_of_different_types_share_a_network() {
    let mut net: Network<Box<dyn Endpoint>> = Network::new(9);
    let inet = net.internet();
    let a = net.add_host(
        "a",
        inet,
        ip(192, 0, 2, 1),
        PORT,
        None,
        Box::new(Probe::default()),
    );
    let quiet = StuckTimer(net.now() + Duration::from_secs(3600));
    let b = net.add_host("b", inet, ip(192, 0, 2, 2), PORT, None, Box::new(quiet));
    let mut probe = Probe::default();
    probe.send(net.host_addr(a), b"ping");
    let c = net.add_host("c", inet, ip(192, 0, 2, 3), PORT, None, Box::new(probe));
    net.run_for(ms(100));
    assert_eq!(net.host_stats(c).received, 1, "c's ping to a was answered");
    assert_eq!(net.host_stats(b).received, 0);
    assert_eq!(
        net.endpoint(b).poll_timeout(),
        Some(net.epoch() + Duration::from_secs(3600))
    );
}

#[test]
fn ten_percent_loss_over_ten_thousand_packets() {
    let mut net = Net::new(5);
    let a = public_host(&mut net, "a", ip(192, 0, 2, 1));
    let b = public_host(&mut net, "b", ip(192, 0, 2, 2));
    net.set_link(
        a,
        LinkParams {
            latency: ms(5),
            loss: 0.1,
        },
    );
    let dst = net.host_addr(b);
    for i in 0..10_000u32 {
        poke(&mut net, a, dst, &i.to_be_bytes());
    }
    net.run_for(Duration::from_secs(1));
    let delivered = net.endpoint(b).inbox.len() as u64;
    let stats = net.stats();
    assert!(
        (8_800..=9_200).contains(&delivered),
        "delivered {delivered} of 10000 at 10% loss"
    );
    assert_eq!(stats.sent, 10_000);
    assert_eq!(stats.delivered, delivered);
    assert_eq!(stats.dropped.loss, 10_000 - delivered);
    assert_eq!(stats.dropped.total(), stats.dropped.loss);
    assert_eq!(net.host_stats(a).dropped.loss, 10_000 - delivered);
    assert_eq!(net.host_stats(b).received, delivered);
}

/// A lossy little world of public and NATed probes pinging each other;
/// returns its trace.
fn lossy_scenario(seed: u64) -> Vec<super::TraceEvent> {
    let mut net = Net::new(seed);
    net.enable_trace();
    let inet = net.internet();
    let mut hosts = Vec::new();
    for i in 0..6u8 {
        hosts.push(public_host(
            &mut net,
            &format!("p{i}"),
            ip(192, 0, 2, 10 + i),
        ));
    }
    for (i, ty) in NatType::ALL.into_iter().enumerate() {
        let i = u8::try_from(i).expect("five NAT types");
        let lan = net.add_realm(format!("lan{i}"));
        let public = ip(198, 51, 100, 10 + i);
        let cfg = NatConfig::new(format!("nat{i}"), ty, lan, ip(10, 0, 0, 1), inet, public);
        let nat = net.add_nat(cfg);
        let addr = if ty == NatType::Firewall {
            public
        } else {
            ip(10, 0, 0, 2)
        };
        hosts.push(net.add_host(
            format!("n{i}"),
            lan,
            addr,
            PORT,
            Some(nat),
            Probe::default(),
        ));
    }
    for h in &hosts {
        net.set_link(
            *h,
            LinkParams {
                latency: ms(3 + h.index() as u64),
                loss: 0.2,
            },
        );
    }
    let mut rng = SimRng::new(99);
    for round in 0..50u32 {
        for &from in &hosts {
            let to = hosts[rng.below(6) as usize];
            poke_host(&mut net, from, to, format!("ping {round}").as_bytes());
        }
        net.run_for(ms(20));
    }
    net.run_for(Duration::from_secs(1));
    net.take_trace()
}

#[test]
fn same_seed_same_trace_and_different_seeds_differ_under_loss() {
    let first = lossy_scenario(7);
    let second = lossy_scenario(7);
    let other = lossy_scenario(8);
    assert!(first.len() > 500, "trace has {} events", first.len());
    assert_eq!(first, second);
    assert_ne!(first, other);
    let lost = first
        .iter()
        .filter(|e| e.outcome == Outcome::Dropped(DropReason::Loss))
        .count();
    assert!(lost > 50, "{lost} losses");
    assert!(first.iter().any(|e| e.outcome == Outcome::Delivered));
    // The trace prints readably.
    let line = first[0].to_string();
    assert!(line.contains(" -> "), "{line}");
}

#[test]
fn block_unblock_isolate_rejoin() {
    let mut net = Net::new(6);
    let inet = net.internet();
    let lan = net.add_realm("lan");
    let nat_cfg = NatConfig::new(
        "nat",
        NatType::PortRestrictedCone,
        lan,
        ip(10, 0, 0, 1),
        inet,
        ip(198, 51, 100, 1),
    );
    let nat = net.add_nat(nat_cfg);
    let a = net.add_host("a", lan, ip(10, 0, 0, 2), PORT, Some(nat), Probe::default());
    let b = public_host(&mut net, "b", ip(192, 0, 2, 2));
    let c = public_host(&mut net, "c", ip(192, 0, 2, 3));
    let (b_addr, c_addr) = (net.host_addr(b), net.host_addr(c));
    let pongs = |net: &Net| net.endpoint(a).count_prefix(b"pong");

    poke(&mut net, a, b_addr, b"ping");
    net.run_for(ms(100));
    assert_eq!(pongs(&net), 1, "a reaches b through its NAT");

    net.block(b, a);
    poke(&mut net, a, b_addr, b"ping");
    net.run_for(ms(100));
    assert_eq!(pongs(&net), 1);
    assert_eq!(net.stats().dropped.blocked, 1, "dropped when sent");
    poke(&mut net, a, c_addr, b"ping");
    net.run_for(ms(100));
    assert_eq!(pongs(&net), 2, "only the pair is cut");

    net.unblock(a, b);
    poke(&mut net, a, b_addr, b"ping");
    net.run_for(ms(100));
    assert_eq!(pongs(&net), 3);

    // A cut also drops what is already in flight.
    poke(&mut net, a, b_addr, b"ping");
    net.run_for(ms(3));
    assert_eq!(net.in_flight(), 1);
    net.block(a, b);
    net.run_for(ms(100));
    assert_eq!(net.endpoint(b).count_prefix(b"ping"), 2);
    assert_eq!(net.stats().dropped.blocked, 2);
    net.unblock(a, b);

    net.isolate(b);
    poke(&mut net, a, b_addr, b"ping");
    poke(&mut net, c, b_addr, b"ping");
    poke(&mut net, b, c_addr, b"ping");
    poke(&mut net, a, c_addr, b"ping");
    net.run_for(ms(100));
    assert_eq!(net.stats().dropped.blocked, 5);
    assert_eq!(pongs(&net), 4, "a still reaches c");
    assert_eq!(net.host_stats(b).dropped.blocked, 1);
    assert_eq!(net.host_stats(c).dropped.blocked, 1);
    net.rejoin(b);
    poke(&mut net, a, b_addr, b"ping");
    net.run_for(ms(100));
    assert_eq!(pongs(&net), 5);
}

#[test]
fn topology_errors_say_what_is_wrong() {
    let mut net = Net::new(7);
    let inet = net.internet();
    let lan = net.add_realm("lan");
    let other = net.add_realm("other");
    let pub_ip = ip(198, 51, 100, 1);
    let nat = net.add_nat(NatConfig::new(
        "nat",
        NatType::FullCone,
        lan,
        ip(10, 0, 0, 1),
        inet,
        pub_ip,
    ));
    public_host(&mut net, "a", ip(192, 0, 2, 1));

    let err = net.try_add_host("a2", inet, ip(192, 0, 2, 1), PORT, None, Probe::default());
    assert!(
        matches!(err, Err(TopologyError::AddressInUse { .. })),
        "{err:?}"
    );
    let ok = net.try_add_host(
        "a3",
        inet,
        ip(192, 0, 2, 1),
        PORT + 1,
        None,
        Probe::default(),
    );
    assert!(ok.is_ok(), "a second socket on the same IP is fine: {ok:?}");
    let err = net.try_add_host("x", inet, pub_ip, PORT, None, Probe::default());
    assert!(matches!(err, Err(TopologyError::IpInUse { .. })), "{err:?}");
    let err = net.try_add_host(
        "y",
        other,
        ip(10, 0, 0, 2),
        PORT,
        Some(nat),
        Probe::default(),
    );
    let msg = err
        .as_ref()
        .map_err(ToString::to_string)
        .expect_err("wrong realm");
    assert!(
        msg.contains("use a NAT whose inside realm is `other`"),
        "{msg}"
    );

    let same = NatConfig::new(
        "loop",
        NatType::FullCone,
        lan,
        ip(10, 0, 0, 9),
        lan,
        ip(10, 0, 0, 8),
    );
    assert_eq!(
        net.try_add_nat(same),
        Err(TopologyError::SameRealm("loop".into()))
    );
    let zero = NatConfig::new(
        "z",
        NatType::FullCone,
        other,
        ip(10, 1, 0, 1),
        inet,
        ip(198, 51, 100, 2),
    )
    .with_mapping_timeout(Duration::ZERO);
    assert_eq!(
        net.try_add_nat(zero),
        Err(TopologyError::ZeroTimeout("z".into()))
    );
    let clash = NatConfig::new("c", NatType::FullCone, other, ip(10, 1, 0, 1), inet, pub_ip);
    assert!(matches!(
        net.try_add_nat(clash),
        Err(TopologyError::IpInUse { .. })
    ));

    let fw_ip = ip(198, 51, 100, 3);
    let fw = net.add_nat(NatConfig::new(
        "fw",
        NatType::Firewall,
        other,
        ip(10, 1, 0, 1),
        inet,
        fw_ip,
    ));
    let err = net.try_add_host(
        "f",
        other,
        ip(10, 1, 0, 2),
        PORT,
        Some(fw),
        Probe::default(),
    );
    assert!(
        matches!(err, Err(TopologyError::NotFirewallAddress { .. })),
        "{err:?}"
    );
    assert!(
        net.try_add_host("f", other, fw_ip, PORT, Some(fw), Probe::default())
            .is_ok()
    );
    assert_eq!(
        net.set_nat_gateway(nat, fw),
        Err(TopologyError::GatewayElsewhere {
            name: "nat".into(),
            realm: "internet".into(),
            gateway: "fw".into(),
            gateway_inside: "other".into(),
        })
    );
}

#[test]
fn a_hundred_hosts_and_twenty_thousand_packets_run_fast() {
    let wall = Instant::now();
    let mut net = Net::new(8);
    let hosts: Vec<_> = (0..100u8)
        .map(|i| public_host(&mut net, &format!("h{i}"), ip(192, 0, 2, i)))
        .collect();
    let mut rng = SimRng::new(1);
    for &h in &hosts {
        net.set_link(h, LinkParams::lossless(ms(1 + rng.below(40))));
        let (now, dst) = (net.now(), net.host_addr(hosts[rng.below(100) as usize]));
        net.endpoint_mut(h)
            .start_keepalive(now, dst, ms(100 + rng.below(100)));
    }
    for round in 0..100u32 {
        for &h in &hosts {
            let dst = net.host_addr(hosts[rng.below(100) as usize]);
            poke(&mut net, h, dst, format!("ping {round}").as_bytes());
        }
        net.run_for(ms(10));
    }
    net.run_for(Duration::from_secs(1));
    let stats = *net.stats();
    assert_eq!(stats.dropped.total(), 0);
    let pongs: usize = hosts
        .iter()
        .map(|h| net.endpoint(*h).count_prefix(b"pong"))
        .sum();
    assert_eq!(pongs, 10_000);
    assert!(stats.delivered > 20_000, "{stats:?}");
    let took = wall.elapsed();
    println!(
        "100 hosts, {} packets delivered in {took:?} of wall time",
        stats.delivered
    );
    assert!(took < Duration::from_secs(30), "took {took:?}"); // generous for loaded CI
}
