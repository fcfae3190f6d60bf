//! Node scenarios on the simulator: enrollment rules, relay policy,
//! loss without flapping, time to first packet, withdrawal on shutdown and a
//! 100-node overlay.

use std::time::{Duration, Instant};

use vine_core::config::Policy;
use vine_core::node::{DropReason, Event, PathClass, RejectReason, WithdrawReason};
use vine_testkit::overlay::{Overlay, member, open_policy, showcase_specs};
use vine_testkit::sim::LinkParams;

fn trio() -> Vec<vine_testkit::overlay::MemberSpec> {
    vec![
        member("alpha", 2, [10, 42, 0, 1], false),
        member("beta", 3, [10, 42, 1, 1], false),
        member("carol", 5, [10, 42, 3, 1], false),
    ]
}

fn rejections(o: &Overlay, node: &str, reason: RejectReason) -> u64 {
    o.node(node)
        .node
        .counters()
        .membership_rejections
        .get(&reason)
        .copied()
        .unwrap_or(0)
}

/// alpha's kernel routes after enough time for everything to settle.
fn alpha_routes(o: &mut Overlay) -> Vec<String> {
    o.net.run_for(Duration::from_secs(20));
    o.node("alpha")
        .kernel_routes
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn wrong_network_is_rejected_and_changes_nothing() {
    // beta bootstraps from alpha, so alpha hears beta's announce.
    let mut o = Overlay::public(1, &trio(), Some("alpha"), |name, c| {
        if name == "beta" {
            c.network_id = "other-net".into();
        }
    });
    assert_eq!(
        alpha_routes(&mut o),
        ["10.42.3.0/24"],
        "only carol is routed"
    );
    assert!(rejections(&o, "alpha", RejectReason::WrongNetwork) >= 1);
    assert!(o.node("alpha").events.iter().any(|(_, e)| matches!(
        e,
        Event::MembershipRejected {
            reason: RejectReason::WrongNetwork,
            ..
        }
    )));
    // Data from beta is refused too: it is not enrolled.
    o.send("beta", "alpha", b"sneak");
    o.net.run_for(Duration::from_secs(1));
    assert_eq!(o.node("alpha").delivered_with(b"sneak"), 0);
}

#[test]
fn claimed_prefix_must_match_the_allowlist() {
    let beta = o_id("beta");
    let mut o = Overlay::public(2, &trio(), Some("carol"), |name, c| {
        if name == "alpha" {
            // alpha believes beta owns 10.42.9.0/24; beta claims 10.42.1.0/24.
            if let Some(a) = c.allowed.get_mut(&beta) {
                a.prefix = "10.42.9.0/24".parse().expect("prefix");
            }
        }
    });
    assert_eq!(alpha_routes(&mut o), ["10.42.3.0/24"]);
    assert!(rejections(&o, "alpha", RejectReason::PrefixMismatch) >= 1);
    assert!(o.node("alpha").node.routes().iter().all(|r| r.peer != beta));
}

fn o_id(name: &str) -> vine_core::PeerId {
    let seed = match name {
        "alpha" => 2,
        "beta" => 3,
        "carol" => 5,
        _ => panic!("unknown {name}"),
    };
    vine_core::Identity::from_seed([seed; 32]).peer_id()
}

#[test]
fn unlisted_peer_cannot_even_handshake_under_strict_allowlist() {
    let beta = o_id("beta");
    let mut o = Overlay::public(3, &trio(), Some("carol"), |name, c| {
        if name == "alpha" {
            c.allowed.remove(&beta);
        }
    });
    assert_eq!(alpha_routes(&mut o), ["10.42.3.0/24"]);
    let drops = o
        .node("alpha")
        .node
        .counters()
        .drops
        .get(&DropReason::UnknownSender)
        .copied();
    assert!(
        drops.unwrap_or(0) >= 1,
        "beta's handshakes are refused and counted"
    );
}

#[test]
fn unlisted_bootstrap_peer_is_rejected_without_strict_allowlist() {
    let beta = o_id("beta");
    let mut o = Overlay::public(4, &trio(), Some("beta"), |name, c| {
        if name == "alpha" {
            c.allowed.remove(&beta);
            c.policy.strict_allowlist = false;
        }
    });
    let routes = alpha_routes(&mut o);
    assert!(!routes.contains(&"10.42.1.0/24".to_owned()), "{routes:?}");
    assert!(rejections(&o, "alpha", RejectReason::NotAllowlisted) >= 1);
}

#[test]
fn spoofed_source_addresses_are_dropped() {
    let mut o = Overlay::public(5, &trio(), Some("carol"), |_, _| {});
    o.net.run_for(Duration::from_secs(5));
    // beta sends a packet claiming carol's address as source.
    let packet = vine_core::node::build_test_packet(
        o.roster.address("carol"),
        o.roster.address("alpha"),
        b"spoof",
    );
    let now = o.net.now();
    let beta = o.host("beta");
    o.net.endpoint_mut(beta).send_packet(now, &packet);
    o.net.run_for(Duration::from_secs(1));
    assert_eq!(o.node("alpha").delivered_with(b"spoof"), 0);
    let c = o.node("alpha").node.counters();
    assert_eq!(c.drops.get(&DropReason::UnauthorizedPeer), Some(&1));
    // A packet to an address nobody owns is a route miss.
    o.send("alpha", "alpha", b"self");
    let stray = vine_core::node::build_test_packet(
        o.roster.address("alpha"),
        std::net::Ipv4Addr::new(10, 99, 0, 1),
        b"stray",
    );
    let now = o.net.now();
    let alpha = o.host("alpha");
    o.net.endpoint_mut(alpha).send_packet(now, &stray);
    assert_eq!(o.node("alpha").node.counters().route_misses, 1);
}

#[test]
fn a_peer_that_is_not_relay_capable_is_never_a_relay() {
    let mut specs = showcase_specs(open_policy());
    for s in &mut specs {
        s.relay_capable = false;
    }
    let mut o = Overlay::build(6, &specs);
    o.net.run_for(Duration::from_secs(30));
    // gamma and alpha cannot punch and have no relay: no path at all.
    assert_eq!(o.class("gamma", "alpha"), None);
    assert_eq!(o.node("relay").node.counters().relayed_for_others, 0);
    o.send("gamma", "alpha", b"nope");
    o.net.run_for(Duration::from_secs(2));
    assert_eq!(o.node("alpha").delivered_with(b"nope"), 0);
    // The others still work.
    assert_eq!(o.class("alpha", "beta"), Some(PathClass::Direct));
    assert_eq!(
        o.class("gamma", "beta"),
        Some(PathClass::SignalingThenDirect)
    );
}

#[test]
fn allow_relay_false_never_forms_a_relay_path() {
    let policy = Policy {
        allow_relay: false,
        ..Policy::default()
    };
    let mut o = Overlay::build(7, &showcase_specs(policy));
    o.net.run_for(Duration::from_secs(30));
    assert_eq!(o.class("gamma", "alpha"), None);
    for name in ["alpha", "beta", "gamma", "relay"] {
        let snap = o.node(name).node.snapshot(o.net.now());
        for p in &snap.peers {
            assert!(
                p.paths.iter().all(|x| x.class != PathClass::Relay),
                "{name} has a relay path to {:?}",
                p.name
            );
        }
    }
    assert_eq!(o.node("relay").node.counters().relayed_for_others, 0);
}

#[test]
fn ten_percent_loss_does_not_make_the_path_flap() {
    let specs = vec![
        member("relay", 1, [10, 42, 254, 1], true),
        member("alpha", 2, [10, 42, 0, 1], false),
        member("beta", 3, [10, 42, 1, 1], false),
    ];
    let mut o = Overlay::public(8, &specs, Some("relay"), |_, _| {});
    let (alpha, beta) = (o.host("alpha"), o.host("beta"));
    o.net.set_path(
        alpha,
        beta,
        LinkParams {
            latency: Duration::from_millis(10),
            loss: 0.10,
        },
    );
    o.net.run_for(Duration::from_secs(5));
    let beta_id = o.roster.id("beta");
    let before = o.node("alpha").path_changes(&beta_id).len();
    let minutes = 5;
    for i in 0..(minutes * 60 * 10) {
        o.send("alpha", "beta", format!("lossy {i}").as_bytes());
        o.net.run_for(Duration::from_millis(100));
    }
    let changes = o.node("alpha").path_changes(&beta_id).len() - before;
    let delivered = o.node("beta").delivered_with(b"lossy ");
    println!(
        "10% loss for {minutes} min: {changes} path changes, {delivered}/{} packets delivered",
        minutes * 600
    );
    assert!(
        changes <= 2 * minutes,
        "{changes} path changes in {minutes} minutes"
    );
    assert_eq!(o.class("alpha", "beta"), Some(PathClass::Direct));
}

/// Sends a packet every 10 ms from the start and returns when the first one
/// arrived.
fn first_packet(o: &mut Overlay, from: &str, to: &str) -> Duration {
    let start = o.net.elapsed();
    for i in 0..1000 {
        o.send(from, to, format!("first {i}").as_bytes());
        o.net.run_for(Duration::from_millis(10));
        if let Some((t, _)) = o
            .node(to)
            .delivered
            .iter()
            .find(|(_, p)| p.get(20..).is_some_and(|b| b.starts_with(b"first ")))
        {
            return *t - start;
        }
    }
    panic!("no packet from {from} to {to} within 10 s");
}

#[test]
fn time_to_first_packet_is_bounded_by_the_fastest_working_path() {
    let mut results = Vec::new();
    for (from, to, class, bound_ms) in [
        ("alpha", "beta", PathClass::Direct, 200),
        ("gamma", "beta", PathClass::SignalingThenDirect, 1000),
        ("gamma", "alpha", PathClass::Relay, 1000),
    ] {
        let mut o = Overlay::build(9, &showcase_specs(open_policy()));
        let t = first_packet(&mut o, from, to);
        results.push(format!("{from}->{to} ({}): {t:?}", class.as_str()));
        assert!(t <= Duration::from_millis(bound_ms), "{from}->{to}: {t:?}");
    }
    println!(
        "time to first delivered packet from start:\n  {}",
        results.join("\n  ")
    );
}

#[test]
fn shutdown_withdraws_the_route_on_every_other_node() {
    let mut o = Overlay::build(10, &showcase_specs(open_policy()));
    o.net.run_for(Duration::from_secs(5));
    let gamma_prefix = o.roster.prefix("gamma");
    for n in ["alpha", "beta", "relay"] {
        assert!(o.node(n).kernel_routes.contains(&gamma_prefix), "{n}");
    }
    let now = o.net.now();
    let gamma = o.host("gamma");
    o.net.endpoint_mut(gamma).stop(now);
    assert!(
        o.node("gamma").kernel_routes.is_empty(),
        "gamma removed its own routes"
    );
    o.net.run_for(Duration::from_secs(1));
    for n in ["alpha", "beta", "relay"] {
        assert!(
            !o.node(n).kernel_routes.contains(&gamma_prefix),
            "{n} still routes gamma"
        );
        assert!(o.node(n).events.iter().any(|(_, e)| matches!(
            e,
            Event::MembershipWithdrawn {
                reason: WithdrawReason::Withdrawn,
                ..
            }
        )));
    }
}

#[test]
fn a_hundred_node_overlay_converges() {
    let specs: Vec<_> = (0..100u8)
        .map(|i| member(&format!("n{i:02}"), i + 1, [10, 42, i, 1], i == 0))
        .collect();
    let wall = Instant::now();
    let mut o = Overlay::public(11, &specs, Some("n00"), |_, _| {});
    let converged = o.run_until(Duration::from_secs(60), |o| {
        o.hosts.keys().all(|n| o.node(n).kernel_routes.len() == 99)
    });
    let sim = o.net.elapsed();
    let took = wall.elapsed();
    println!("100-node overlay: converged={converged} after {sim:?} simulated, {took:?} wall");
    assert!(converged, "not every node routes all 99 others");
}

#[test]
fn a_silent_peer_is_tombstoned_then_expired() {
    let mut o = Overlay::build(12, &showcase_specs(open_policy()));
    o.net.run_for(Duration::from_secs(5));
    let gamma_prefix = o.roster.prefix("gamma");
    let gamma = o.host("gamma");
    // gamma vanishes without a word (crash, cable pulled).
    o.net.isolate(gamma);
    o.net.run_for(Duration::from_secs(10));
    let route = o
        .node("beta")
        .node
        .routes()
        .get(&gamma_prefix)
        .cloned()
        .expect("route");
    assert_eq!(
        route.state,
        vine_core::route::RouteState::Tombstoned,
        "kept, but no path"
    );
    assert!(
        o.node("beta").kernel_routes.contains(&gamma_prefix),
        "no leak to the default route"
    );
    o.send("beta", "gamma", b"void");
    let drops = o
        .node("beta")
        .node
        .counters()
        .drops
        .get(&DropReason::NoSession)
        .copied();
    assert_eq!(drops, Some(1), "dropped and counted as no_session");
    o.net.run_for(Duration::from_secs(30));
    for n in ["alpha", "beta", "relay"] {
        assert!(!o.node(n).kernel_routes.contains(&gamma_prefix), "{n}");
        assert!(
            o.node(n).events.iter().any(|(_, e)| matches!(
                e,
                Event::MembershipWithdrawn {
                    reason: WithdrawReason::Expired,
                    ..
                }
            )),
            "{n}"
        );
    }
}
