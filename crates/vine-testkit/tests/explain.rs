//! `vine sessions --explain`: the reasons a node records for its path
//! attempts, checked on the simulated showcase and on public networks.

use std::time::Duration;

use vine_core::config::Policy;
use vine_core::node::{AttemptOutcome, AttemptView, DropReason, PathClass, PeerView};
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
            "  {:>6} ms  {:<26} {:<22} {:<10} {:<30} {}\n",
            a.ago_ms,
            a.path,
            a.class.as_str(),
            a.outcome.as_str(),
            a.reason_code,
            a.reason
        ));
    }
    s
}

/// The one attempt with this reason code.
fn only<'v>(v: &'v PeerView, code: &str) -> &'v AttemptView {
    let found: Vec<&AttemptView> = v
        .attempts
        .iter()
        .filter(|a| a.reason_code == code)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one `{code}` attempt:\n{}",
        dump(v)
    );
    found[0]
}

fn current(v: &PeerView) -> &AttemptView {
    let found: Vec<&AttemptView> = v.attempts.iter().filter(|a| a.current).collect();
    assert_eq!(found.len(), 1, "expected one current attempt:\n{}", dump(v));
    found[0]
}

#[test]
fn a_pair_on_relay_because_punching_cannot_work_says_why() {
    let mut o = Overlay::build(7, &showcase_specs(open_policy()));
    o.net.run_for(Duration::from_secs(30));
    // gamma (port-restricted NAT) and alpha (symmetric NAT) cannot punch.
    for (from, to, lan) in [
        ("gamma", "alpha", "udp://192.168.1.10:4100"),
        ("alpha", "gamma", "udp://192.168.7.10:4100"),
    ] {
        let v = view(&o, from, to);
        let relay = current(&v);
        assert_eq!(relay.path, "relay:relay", "{}", dump(&v));
        assert_eq!(relay.class, PathClass::Relay);
        assert_eq!(relay.outcome, AttemptOutcome::Working);
        let punched = only(&v, "filtered_by_nat");
        assert_eq!(punched.class, PathClass::SignalingThenDirect);
        assert_eq!(punched.outcome, AttemptOutcome::NoAnswer);
        assert!(
            punched.path.starts_with("udp://198.51.100."),
            "{}",
            dump(&v)
        );
        assert!(
            punched
                .reason
                .contains("punched NAT mapping never answered")
        );
        let direct = only(&v, "no_answer");
        assert_eq!(direct.path, lan, "{}", dump(&v));
        assert_eq!(direct.class, PathClass::Direct);
        assert_eq!(direct.reason, "no answer to 3 probes");
        assert!(
            v.why.starts_with("relay via relay:relay")
                && v.why.contains("no better path works")
                && v.why.contains("filtered by NAT"),
            "{}",
            v.why
        );
    }
    // The pairs that work directly say so, and the relay records what it
    // forwards.
    let v = view(&o, "alpha", "beta");
    assert_eq!(current(&v).path, "udp://192.168.1.20:4100");
    assert!(
        v.why.starts_with("direct via udp://192.168.1.20:4100"),
        "{}",
        v.why
    );
    assert!(
        v.why.ends_with("the peer answers at its own address"),
        "{}",
        v.why
    );
    let v = view(&o, "gamma", "beta");
    assert_eq!(
        current(&v).class,
        PathClass::SignalingThenDirect,
        "{}",
        dump(&v)
    );
    assert!(v.why.contains("hole punching"), "{}", v.why);
    let v = view(&o, "relay", "gamma");
    let fwd = v
        .attempts
        .iter()
        .find(|a| a.path == "forward:alpha")
        .unwrap_or_else(|| panic!("{}", dump(&v)));
    assert_eq!(
        (fwd.outcome, fwd.reason_code),
        (AttemptOutcome::Working, "forwarding")
    );
}

#[test]
fn allow_relay_false_is_the_reason_there_is_no_path() {
    let policy = Policy {
        allow_relay: false,
        ..Policy::default()
    };
    let mut o = Overlay::build(7, &showcase_specs(policy));
    o.net.run_for(Duration::from_secs(30));
    let v = view(&o, "gamma", "alpha");
    assert!(v.attempts.iter().all(|a| !a.current), "{}", dump(&v));
    let note = only(&v, "relay_not_allowed_by_policy");
    assert_eq!(
        (note.path.as_str(), note.class, note.outcome),
        ("-", PathClass::Relay, AttemptOutcome::NotTried)
    );
    assert_eq!(
        note.reason,
        "relay not allowed by policy (allow_relay = false)"
    );
    assert!(
        v.why.starts_with("no working path:")
            && v.why
                .contains("relay not allowed by policy (allow_relay = false)"),
        "{}",
        v.why
    );
    // The direct attempts still say how they failed (before any keys: the
    // handshakes went unanswered).
    assert_eq!(
        only(&v, "filtered_by_nat").outcome,
        AttemptOutcome::NoAnswer
    );
    assert_eq!(
        only(&v, "handshake_no_answer").path,
        "udp://192.168.1.10:4100"
    );
}

#[test]
fn signaling_disabled_by_policy_is_explained() {
    let policy = Policy {
        allow_signaling_upgrade: false,
        ..Policy::default()
    };
    let mut o = Overlay::build(7, &showcase_specs(policy));
    o.net.run_for(Duration::from_secs(30));
    let v = view(&o, "gamma", "alpha");
    assert_eq!(current(&v).path, "relay:relay");
    let note = only(&v, "signaling_disabled_by_policy");
    assert_eq!(
        (note.class, note.outcome),
        (PathClass::SignalingThenDirect, AttemptOutcome::NotTried)
    );
    let mapping = only(&v, "not_punched");
    assert!(mapping.reason.contains("allow_signaling_upgrade = false"));
}

/// Sends `n` packets of about 1 KiB from `from` to `to`, 5 ms apart.
fn bulk(o: &mut Overlay, from: &str, to: &str, n: usize) {
    for i in 0..n {
        let mut tag = format!("bulk {i} ").into_bytes();
        tag.resize(1000, b'x');
        o.send(from, to, &tag);
        o.net.run_for(Duration::from_millis(5));
    }
    o.net.run_for(Duration::from_secs(1));
}

#[test]
fn relay_rate_cap_drops_counts_and_explains_on_both_sides() {
    // Without a cap every relayed packet arrives.
    let mut free = Overlay::build(7, &showcase_specs(open_policy()));
    free.net.run_for(Duration::from_secs(5));
    bulk(&mut free, "gamma", "alpha", 300);
    assert_eq!(free.node("alpha").delivered_with(b"bulk "), 300);
    let pairs = free.node("relay").node.counters().relay_pairs;
    assert!(pairs.iter().all(|p| p.rate_limited == 0), "{pairs:?}");

    // 64 kbit/s = 8000 B/s with a 16 KiB burst: 300 KB in 1.5 s cannot pass.
    let mut o = Overlay::showcase(7, &showcase_specs(open_policy()), |name, c| {
        if name == "relay" {
            c.policy.relay_rate_limit_kbps = 64;
        }
    });
    o.net.run_for(Duration::from_secs(5));
    bulk(&mut o, "gamma", "alpha", 300);
    let delivered = o.node("alpha").delivered_with(b"bulk ");
    assert!(
        (10..100).contains(&delivered),
        "{delivered} of 300 passed the cap"
    );
    let (gamma, alpha) = (o.roster.id("gamma"), o.roster.id("alpha"));
    let counters = o.node("relay").node.counters();
    let pair = counters
        .relay_pairs
        .iter()
        .find(|p| p.source == gamma && p.destination == alpha)
        .expect("gamma -> alpha counted");
    assert!(pair.rate_limited >= 200, "{pair:?}");
    assert!(
        pair.frames >= delivered as u64 && pair.bytes > 0,
        "{pair:?}"
    );
    assert_eq!(
        counters.drops.get(&DropReason::RelayRateLimited).copied(),
        Some(pair.rate_limited),
        "every capped frame is a counted drop"
    );
    assert!(
        counters
            .relay_pairs
            .windows(2)
            .all(|w| (w[0].source, w[0].destination) < (w[1].source, w[1].destination)),
        "pairs are ordered"
    );
    // The relay explains it under the source…
    let v = view(&o, "relay", "gamma");
    let fwd = only(&v, "relay_rate_cap");
    assert_eq!(
        (fwd.path.as_str(), fwd.outcome),
        ("forward:alpha", AttemptOutcome::Throttled)
    );
    assert!(fwd.reason.contains("relay rate cap"), "{}", fwd.reason);
    // …and the sender hears about it (at most once a second) without losing
    // the relayed path.
    let v = view(&o, "gamma", "alpha");
    let capped = only(&v, "relay_rate_cap");
    assert_eq!(
        (capped.path.as_str(), capped.outcome, capped.current),
        ("relay:relay", AttemptOutcome::Throttled, true)
    );
    assert!(
        v.why.contains("throttled: relay rate cap at relay"),
        "{}",
        v.why
    );
    o.net.run_for(Duration::from_secs(20));
    assert_eq!(o.class("gamma", "alpha"), Some(PathClass::Relay));
    o.send("gamma", "alpha", b"after the burst");
    o.net.run_for(Duration::from_secs(1));
    assert_eq!(o.node("alpha").delivered_with(b"after the burst"), 1);
}

#[test]
fn a_relay_refusing_a_destination_it_does_not_allowlist_is_explained() {
    // Everyone is public and learns the others through beta; alpha and
    // gamma cannot reach each other, and the relay does not allowlist alpha.
    let specs = vec![
        member("relay", 1, [10, 42, 254, 1], true),
        member("alpha", 2, [10, 42, 0, 1], false),
        member("beta", 3, [10, 42, 1, 1], false),
        member("gamma", 4, [10, 42, 2, 1], false),
    ];
    let alpha = vine_core::Identity::from_seed([2; 32]).peer_id();
    let mut o = Overlay::public(11, &specs, Some("beta"), |name, c| {
        if name == "relay" {
            c.allowed.remove(&alpha);
        }
    });
    let (a, g) = (o.host("alpha"), o.host("gamma"));
    o.net.block(a, g);
    o.net.run_for(Duration::from_secs(30));
    assert_eq!(o.class("gamma", "alpha"), None);
    let v = view(&o, "gamma", "alpha");
    let refused = only(&v, "relay_refused_not_allowlisted");
    assert_eq!(
        (refused.path.as_str(), refused.outcome),
        ("relay:relay", AttemptOutcome::Refused)
    );
    assert_eq!(
        refused.reason,
        "relay refused to relay: source or destination is not in its allowlist"
    );
    assert!(v.why.contains("refused to relay"), "{}", v.why);
    // The relay says the same under gamma, naming alpha by its short id
    // (it does not know the name), and counts the refusals as drops.
    let v = view(&o, "relay", "gamma");
    let fwd = only(&v, "relay_refused_not_allowlisted");
    assert_eq!(fwd.path, format!("forward:{}", alpha.short()));
    let relay = o.node("relay").node.counters();
    assert!(
        relay
            .drops
            .get(&DropReason::RelayRefused)
            .copied()
            .unwrap_or(0)
            >= 1
    );
    assert!(
        relay
            .relay_pairs
            .iter()
            .all(|p| p.source != alpha && p.destination != alpha),
        "no pair state for a peer outside the allowlist"
    );
}

#[test]
fn a_relay_the_receiver_does_not_mark_relay_capable_is_explained() {
    let relay = vine_core::Identity::from_seed([1; 32]).peer_id();
    let mut o = Overlay::showcase(7, &showcase_specs(open_policy()), |name, c| {
        if name == "alpha"
            && let Some(a) = c.allowed.get_mut(&relay)
        {
            a.relay_capable = false;
        }
    });
    o.net.run_for(Duration::from_secs(30));
    assert_eq!(o.class("alpha", "gamma"), None);
    let v = view(&o, "alpha", "gamma");
    let refused = only(&v, "peer_not_relay_capable");
    assert_eq!(
        (refused.path.as_str(), refused.outcome),
        ("relay:relay", AttemptOutcome::Refused)
    );
    assert!(
        refused.reason.contains("relay_capable = false"),
        "{}",
        refused.reason
    );
    let none = only(&v, "no_relay_capable_peer");
    assert_eq!(
        none.reason,
        "no relay: no peer in [[allowed_peers]] is relay_capable = true"
    );
}

#[test]
fn an_allowlist_prefix_mismatch_is_explained() {
    let trio = vec![
        member("alpha", 2, [10, 42, 0, 1], false),
        member("beta", 3, [10, 42, 1, 1], false),
        member("carol", 5, [10, 42, 3, 1], false),
    ];
    let beta = vine_core::Identity::from_seed([3; 32]).peer_id();
    let mut o = Overlay::public(2, &trio, Some("carol"), |name, c| {
        if name == "alpha"
            && let Some(a) = c.allowed.get_mut(&beta)
        {
            a.prefix = "10.42.9.0/24".parse().expect("prefix");
        }
    });
    o.net.run_for(Duration::from_secs(20));
    let v = view(&o, "alpha", "beta");
    assert!(!v.enrolled);
    let rejected = only(&v, "prefix_mismatch");
    assert_eq!(
        (rejected.path.as_str(), rejected.outcome),
        ("udp://192.0.2.2:4100", AttemptOutcome::Refused)
    );
    assert_eq!(
        rejected.reason,
        "prefix mismatch: it claims 10.42.1.0/24, the allowlist binds it to 10.42.9.0/24"
    );
    assert!(
        v.why
            .ends_with("membership refused: prefix mismatch: it claims 10.42.1.0/24, the allowlist binds it to 10.42.9.0/24"),
        "{}",
        v.why
    );
    // The path itself works: the refusal is about membership, not reachability.
    assert_eq!(current(&v).path, "udp://192.0.2.2:4100");
}

#[test]
fn fallback_and_promotion_are_explained() {
    let mut o = Overlay::build(7, &showcase_specs(open_policy()));
    o.net.run_for(Duration::from_secs(5));
    let (alpha, beta) = (o.host("alpha"), o.host("beta"));
    o.net.block(alpha, beta);
    for i in 0..60 {
        o.send("alpha", "beta", format!("stream {i}").as_bytes());
        o.net.run_for(Duration::from_millis(100));
    }
    let v = view(&o, "alpha", "beta");
    let relay = current(&v);
    assert_eq!(
        (relay.path.as_str(), relay.outcome, relay.reason_code),
        ("relay:relay", AttemptOutcome::FellBack, "took_over")
    );
    assert!(
        relay
            .reason
            .starts_with("the preferred direct path udp://192.168.1.20:4100 stopped answering"),
        "{}",
        relay.reason
    );
    let lan = only(&v, "stopped_answering");
    assert_eq!(lan.path, "udp://192.168.1.20:4100");

    o.net.unblock(alpha, beta);
    for i in 0..100 {
        o.send("alpha", "beta", format!("again {i}").as_bytes());
        o.net.run_for(Duration::from_millis(100));
    }
    let v = view(&o, "alpha", "beta");
    let back = current(&v);
    assert_eq!(
        (back.path.as_str(), back.outcome),
        ("udp://192.168.1.20:4100", AttemptOutcome::Promoted)
    );
    assert_eq!(
        back.reason,
        "replaced relay after 3 answered probes in a row; carries traffic"
    );
    // The failed episode of the same path is still in the history, older.
    let old = only(&v, "stopped_answering");
    assert!(old.ago_ms > back.ago_ms, "{}", dump(&v));
}

/// A test packet of exactly `len` bytes tagged `tag`, with Don't Fragment
/// set or not (header checksum recomputed).
fn sized(o: &Overlay, from: &str, to: &str, tag: &[u8], len: usize, df: bool) -> Vec<u8> {
    let mut payload = tag.to_vec();
    payload.resize(len - 20, b'.');
    let mut p =
        vine_core::node::build_test_packet(o.roster.address(from), o.roster.address(to), &payload);
    if df {
        vine_core::node::set_dont_fragment(&mut p);
    }
    p
}

/// Feeds `p` to `from`'s node as if read from its TUN, then lets 200 ms pass.
fn inject(o: &mut Overlay, from: &str, p: &[u8]) {
    let now = o.net.now();
    let h = o.host(from);
    o.net.endpoint_mut(h).send_packet(now, p);
    o.net.run_for(Duration::from_millis(200));
}

/// The ICMP "fragmentation needed" packets `who`'s node wrote to its TUN.
fn frag_needed_written(o: &Overlay, who: &str) -> Vec<Vec<u8>> {
    o.node(who)
        .delivered
        .iter()
        .map(|(_, p)| p.clone())
        .filter(|p| p.len() > 27 && p[9] == 1 && p[20] == 3 && p[21] == 4)
        .collect()
}

#[test]
fn a_relayed_path_answers_oversized_df_packets_with_fragmentation_needed() {
    use vine_core::node::{RELAY_MAX_PACKET, relayed_wire_len};
    // Two seals, a relay header and UDP/IPv4 must fit 1500 bytes.
    assert_eq!(RELAY_MAX_PACKET, 1360);
    assert!(relayed_wire_len(RELAY_MAX_PACKET) <= 1500);
    assert!(relayed_wire_len(RELAY_MAX_PACKET + 1) > 1500);

    let mut o = Overlay::build(7, &showcase_specs(open_policy()));
    o.net.run_for(Duration::from_secs(30));
    assert_eq!(o.class("gamma", "alpha"), Some(PathClass::Relay));
    assert_eq!(o.class("alpha", "beta"), Some(PathClass::Direct));
    // The largest packet that fits crosses the relay.
    let fits = sized(&o, "gamma", "alpha", b"fits", RELAY_MAX_PACKET, true);
    inject(&mut o, "gamma", &fits);
    assert_eq!(o.node("alpha").delivered_with(b"fits"), 1);
    assert!(frag_needed_written(&o, "gamma").is_empty());

    // One byte more with DF: not sent; gamma's kernel hears the size that fits.
    let big = sized(&o, "gamma", "alpha", b"too big", RELAY_MAX_PACKET + 1, true);
    inject(&mut o, "gamma", &big);
    assert_eq!(o.node("alpha").delivered_with(b"too big"), 0);
    let answers = frag_needed_written(&o, "gamma");
    assert_eq!(answers.len(), 1, "one ICMP fragmentation needed");
    let icmp = &answers[0];
    assert_eq!(
        &icmp[12..16],
        &o.roster.address("alpha").octets(),
        "from the destination"
    );
    assert_eq!(
        &icmp[16..20],
        &o.roster.address("gamma").octets(),
        "to the sender"
    );
    assert_eq!(
        u16::from_be_bytes([icmp[26], icmp[27]]) as usize,
        RELAY_MAX_PACKET
    );
    assert_eq!(&icmp[28..], &big[..28], "quotes the packet");
    let alpha = o.roster.id("alpha");
    let gamma = o.node("gamma").node.counters();
    assert_eq!(gamma.drops.get(&DropReason::PacketTooBig).copied(), Some(1));
    let per_peer = o
        .node("gamma")
        .node
        .snapshot(o.net.now())
        .peers
        .into_iter()
        .find(|p| p.peer_id == alpha)
        .expect("alpha");
    assert_eq!(
        per_peer
            .counters
            .drops
            .get(&DropReason::PacketTooBig)
            .copied(),
        Some(1)
    );

    // Without DF the sender asked the network to fragment: it goes.
    let loose = sized(&o, "gamma", "alpha", b"no df", RELAY_MAX_PACKET + 40, false);
    inject(&mut o, "gamma", &loose);
    assert_eq!(o.node("alpha").delivered_with(b"no df"), 1);

    // A direct path carries the full TUN MTU with DF.
    let direct = sized(&o, "alpha", "beta", b"direct", 1400, true);
    inject(&mut o, "alpha", &direct);
    assert_eq!(o.node("beta").delivered_with(b"direct"), 1);
    assert!(frag_needed_written(&o, "alpha").is_empty());
}

#[test]
fn a_smaller_underlay_mtu_lowers_what_a_relay_carries() {
    use vine_core::node::{relay_max_packet, relayed_wire_len};
    for underlay in [576u16, 1280, 1460, 1492, 1500, 9000] {
        let max = relay_max_packet(underlay);
        assert!(relayed_wire_len(max) <= usize::from(underlay), "{underlay}");
        assert!(
            relayed_wire_len(max + 1) > usize::from(underlay),
            "{underlay}"
        );
    }
    assert_eq!(relay_max_packet(1460), 1312);
    let mut o = Overlay::showcase(7, &showcase_specs(open_policy()), |name, c| {
        if name == "gamma" {
            c.underlay_mtu = 1460;
        }
    });
    o.net.run_for(Duration::from_secs(30));
    assert_eq!(o.class("gamma", "alpha"), Some(PathClass::Relay));
    for (tag, len) in [(&b"fits"[..], 1312), (&b"too big"[..], 1313)] {
        let p = sized(&o, "gamma", "alpha", tag, len, true);
        inject(&mut o, "gamma", &p);
    }
    assert_eq!(o.node("alpha").delivered_with(b"fits"), 1);
    assert_eq!(o.node("alpha").delivered_with(b"too big"), 0);
    let mtus: Vec<u16> = frag_needed_written(&o, "gamma")
        .iter()
        .map(|p| u16::from_be_bytes([p[26], p[27]]))
        .collect();
    assert_eq!(mtus, [1312]);
}
