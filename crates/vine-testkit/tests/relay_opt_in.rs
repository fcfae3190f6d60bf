//! Relaying is opt-in on the relaying node (`[node] act_as_relay`, which
//! the simulator's relay-capable members set): a node that has not opted in
//! relays nothing, whatever the others' allowlists say, and the requester
//! records why and falls back to a relay that has; and the per-source cap
//! (`[policy] relay_source_rate_limit_kbps`) bounds one source over all its
//! destinations together, on top of the per-pair cap. All in virtual time.

use std::time::Duration;

use vine_core::node::{AttemptOutcome, DropReason, PathClass, PeerView};
use vine_testkit::overlay::{Overlay, member, open_policy, showcase_specs};

/// `from`'s view of `to` in its snapshot.
fn view(o: &Overlay, from: &str, to: &str) -> PeerView {
    let id = o.roster.id(to);
    o.node(from)
        .node
        .snapshot(o.net.now())
        .peers
        .into_iter()
        .find(|p| p.peer_id == id)
        .unwrap_or_else(|| panic!("{from} does not know {to}"))
}

/// The view as `vine sessions --explain` prints it, for failure messages.
fn dump(v: &PeerView) -> String {
    let mut s = format!("why: {}\n", v.why);
    for a in &v.attempts {
        s.push_str(&format!(
            "  {:<26} {:<10} {:<30} {}\n",
            a.path,
            a.outcome.as_str(),
            a.reason_code,
            a.reason
        ));
    }
    s
}

fn drops(o: &Overlay, name: &str, reason: DropReason) -> u64 {
    o.node(name)
        .node
        .counters()
        .drops
        .get(&reason)
        .copied()
        .unwrap_or(0)
}

#[test]
fn a_relay_that_has_not_opted_in_relays_nothing_and_the_requester_records_why() {
    // The showcase, but the relay's operator did not set act_as_relay: the
    // others still list it relay_capable. gamma and alpha can only meet
    // through a relay.
    let mut o = Overlay::showcase(7, &showcase_specs(open_policy()), |name, c| {
        if name == "relay" {
            c.relay_enabled = false;
        }
    });
    o.net.run_for(Duration::from_secs(30));
    assert_eq!(o.class("gamma", "alpha"), None);
    assert_eq!(o.class("alpha", "gamma"), None);
    o.send("gamma", "alpha", b"through a non-relay");
    o.net.run_for(Duration::from_secs(1));
    assert_eq!(o.node("alpha").delivered_with(b"through a non-relay"), 0);
    // Everything that needs no relay still works: the node still signals.
    assert_eq!(o.class("alpha", "beta"), Some(PathClass::Direct));
    assert_eq!(
        o.class("gamma", "beta"),
        Some(PathClass::SignalingThenDirect)
    );
    assert_eq!(o.class("gamma", "relay"), Some(PathClass::Direct));

    // The relay refused every relay frame, counted under its own reason.
    let counters = o.node("relay").node.counters();
    assert_eq!(counters.relayed_for_others, 0);
    assert!(drops(&o, "relay", DropReason::RelayNotEnabled) > 0);
    assert_eq!(drops(&o, "relay", DropReason::RelayRefused), 0);
    assert!(
        counters.relay_pairs.iter().all(|p| p.frames == 0),
        "{:?}",
        counters.relay_pairs
    );

    // The requester records the refusal and its reason.
    for (from, to) in [("gamma", "alpha"), ("alpha", "gamma")] {
        let v = view(&o, from, to);
        let refused = v
            .attempts
            .iter()
            .find(|a| a.reason_code == "relay_not_enabled")
            .unwrap_or_else(|| panic!("{from} -> {to}:\n{}", dump(&v)));
        assert_eq!(
            (refused.path.as_str(), refused.outcome),
            ("relay:relay", AttemptOutcome::Refused),
            "{}",
            dump(&v)
        );
        assert_eq!(
            refused.reason,
            "relay has not enabled act_as_relay: it relays nothing (its operator must set act_as_relay = true in its [node])"
        );
        assert!(
            v.why.contains("relay has not enabled act_as_relay"),
            "{}",
            dump(&v)
        );
    }
    // The relay says so under the source, too.
    let v = view(&o, "relay", "gamma");
    let fwd = v
        .attempts
        .iter()
        .find(|a| a.path == "forward:alpha")
        .unwrap_or_else(|| panic!("{}", dump(&v)));
    assert_eq!(fwd.reason_code, "relay_not_enabled", "{}", dump(&v));
    assert_eq!(
        fwd.reason,
        "not forwarded to alpha: this node has not enabled act_as_relay ([node] act_as_relay = false)"
    );
}

#[test]
fn the_same_relay_opted_in_carries_the_pair() {
    // The control of the test above: only the opt-in differs.
    let mut o = Overlay::build(7, &showcase_specs(open_policy()));
    assert!(o.node("relay").node.config().relay_enabled);
    o.net.run_for(Duration::from_secs(30));
    assert_eq!(o.class("gamma", "alpha"), Some(PathClass::Relay));
    o.send("gamma", "alpha", b"through the relay");
    o.net.run_for(Duration::from_secs(1));
    assert_eq!(o.node("alpha").delivered_with(b"through the relay"), 1);
    assert!(o.node("relay").node.counters().relayed_for_others > 0);
    assert_eq!(drops(&o, "relay", DropReason::RelayNotEnabled), 0);
}

#[test]
fn a_requester_falls_back_from_a_relay_that_has_not_opted_in_to_one_that_has() {
    // Two relay-capable members on the public internet; only "relay2" has
    // opted in. alpha and gamma cannot reach each other. relay1 is the
    // bootstrap peer, so it is the first relay everyone has a session with.
    let specs = vec![
        member("relay1", 1, [10, 42, 254, 1], true),
        member("relay2", 5, [10, 42, 253, 1], true),
        member("alpha", 2, [10, 42, 0, 1], false),
        member("gamma", 4, [10, 42, 2, 1], false),
    ];
    let mut o = Overlay::public(11, &specs, Some("relay1"), |name, c| {
        if name == "relay1" {
            c.relay_enabled = false;
        }
    });
    let (a, g) = (o.host("alpha"), o.host("gamma"));
    o.net.block(a, g);
    o.net.run_for(Duration::from_secs(60));
    assert_eq!(o.class("alpha", "relay1"), Some(PathClass::Direct));
    assert_eq!(o.class("gamma", "alpha"), Some(PathClass::Relay));
    o.send("gamma", "alpha", b"via relay2");
    o.net.run_for(Duration::from_secs(1));
    assert_eq!(o.node("alpha").delivered_with(b"via relay2"), 1);
    let v = view(&o, "gamma", "alpha");
    let current: Vec<_> = v.attempts.iter().filter(|a| a.current).collect();
    assert_eq!(current.len(), 1, "{}", dump(&v));
    assert_eq!(current[0].path, "relay:relay2", "{}", dump(&v));
    let refused = v
        .attempts
        .iter()
        .find(|a| a.reason_code == "relay_not_enabled")
        .unwrap_or_else(|| panic!("{}", dump(&v)));
    assert_eq!(
        (refused.path.as_str(), refused.outcome),
        ("relay:relay1", AttemptOutcome::Refused),
        "{}",
        dump(&v)
    );
    assert!(
        refused
            .reason
            .starts_with("relay1 has not enabled act_as_relay"),
        "{}",
        refused.reason
    );
    assert_eq!(o.node("relay1").node.counters().relayed_for_others, 0);
    assert!(drops(&o, "relay1", DropReason::RelayNotEnabled) > 0);
    assert!(o.node("relay2").node.counters().relayed_for_others > 0);
}

/// What one run of [`spray`] measured.
#[derive(Debug)]
struct Spray {
    /// Bytes the relay forwarded for alpha in the window, all destinations.
    forwarded: u64,
    /// Packets delivered to beta and to gamma.
    delivered: (usize, usize),
    /// The relay's drops by the pair cap and by the source cap.
    pair_capped: u64,
    source_capped: u64,
}

/// The spray window.
const WINDOW: Duration = Duration::from_secs(10);

/// alpha, which reaches beta and gamma only through the relay, sends a
/// 1000-byte packet every 5 ms (200 kB/s) for [`WINDOW`], alternately to
/// each; the relay caps pairs at `pair_kbps` and sources at `source_kbps`.
fn spray(pair_kbps: u32, source_kbps: u32) -> Spray {
    let specs = vec![
        member("relay", 1, [10, 42, 254, 1], true),
        member("alpha", 2, [10, 42, 0, 1], false),
        member("beta", 3, [10, 42, 1, 1], false),
        member("gamma", 4, [10, 42, 2, 1], false),
    ];
    let mut o = Overlay::public(13, &specs, Some("relay"), |name, c| {
        if name == "relay" {
            c.policy.relay_rate_limit_kbps = pair_kbps;
            c.policy.relay_source_rate_limit_kbps = source_kbps;
        }
    });
    let (a, b, g) = (o.host("alpha"), o.host("beta"), o.host("gamma"));
    o.net.block(a, b);
    o.net.block(a, g);
    assert!(
        o.run_until(Duration::from_secs(30), |o| {
            o.class("alpha", "beta") == Some(PathClass::Relay)
                && o.class("alpha", "gamma") == Some(PathClass::Relay)
        }),
        "alpha has no relayed paths"
    );
    // Let the buckets fill up again after the handshakes.
    o.net.run_for(Duration::from_secs(5));
    let alpha = o.roster.id("alpha");
    let forwarded_by_alpha = |o: &Overlay| -> u64 {
        o.node("relay")
            .node
            .counters()
            .relay_pairs
            .iter()
            .filter(|p| p.source == alpha)
            .map(|p| p.bytes)
            .sum()
    };
    let before = forwarded_by_alpha(&o);
    let steps = (WINDOW.as_millis() / 5) as usize;
    for i in 0..steps {
        let to = if i % 2 == 0 { "beta" } else { "gamma" };
        let mut tag = format!("spray {i} ").into_bytes();
        tag.resize(1000, b'x');
        o.send("alpha", to, &tag);
        o.net.run_for(Duration::from_millis(5));
    }
    let forwarded = forwarded_by_alpha(&o) - before;
    o.net.run_for(Duration::from_secs(1));
    Spray {
        forwarded,
        delivered: (
            o.node("beta").delivered_with(b"spray "),
            o.node("gamma").delivered_with(b"spray "),
        ),
        pair_capped: drops(&o, "relay", DropReason::RelayRateLimited),
        source_capped: drops(&o, "relay", DropReason::RelaySourceRateLimited),
    }
}

#[test]
fn the_source_cap_bounds_one_source_over_all_its_destinations() {
    // 64 kbit/s = 8000 B/s; each bucket starts with its 16 KiB burst and
    // small frames may overdraw by 4 KiB.
    let rate = 8000 * WINDOW.as_secs();
    let slack = 16 * 1024 + 4 * 1024 + 1500;

    // Per source: alpha's two destinations share one 8000 B/s.
    let source = spray(0, 64);
    assert!(
        source.forwarded >= rate && source.forwarded <= rate + slack,
        "{source:?}: expected {rate}..{} bytes",
        rate + slack
    );
    assert!(source.source_capped > 1000, "{source:?}");
    assert_eq!(source.pair_capped, 0, "{source:?}");
    let (b, g) = source.delivered;
    assert!(
        b > 20 && g > 20,
        "both destinations get a share: {source:?}"
    );
    assert!(
        (b + g) as u64 * 1000 <= rate + slack,
        "{source:?}: more delivered than the cap lets through"
    );

    // Per pair only, the same caps let twice as much through: each
    // destination has a bucket of its own.
    let pair = spray(64, 0);
    assert!(
        pair.forwarded >= 2 * rate && pair.forwarded <= 2 * (rate + slack),
        "{pair:?}: expected {}..{} bytes",
        2 * rate,
        2 * (rate + slack)
    );
    assert!(pair.pair_capped > 1000, "{pair:?}");
    assert_eq!(pair.source_capped, 0, "{pair:?}");

    // Both: the tighter decides.
    let both = spray(64, 96);
    assert!(
        both.forwarded <= 96 * 125 * WINDOW.as_secs() + slack,
        "{both:?}"
    );
    assert!(both.forwarded > source.forwarded, "{both:?} vs {source:?}");

    // Neither (the caps are 0 = unlimited): everything arrives.
    let free = spray(0, 0);
    let steps = (WINDOW.as_millis() / 5) as usize;
    assert_eq!(free.delivered.0 + free.delivered.1, steps, "{free:?}");
    assert_eq!(free.pair_capped + free.source_capped, 0, "{free:?}");
}
