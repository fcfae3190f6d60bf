//! Control traffic under the rules of issue 15: members that misbehave
//! cannot misdirect a node, a mesh converges and stays converged, and an
//! idle overlay's control traffic grows with the peer count, not its
//! square.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use vine_core::frame::{Candidates, Frame};
use vine_core::node::{DropReason, Timers};
use vine_core::peer_id::PeerId;
use vine_core::wg::aead::Backend;
use vine_testkit::overlay::{MemberSpec, Overlay, member};

fn drops(o: &Overlay, node: &str, reason: DropReason) -> u64 {
    o.node(node)
        .node
        .counters()
        .drops
        .get(&reason)
        .copied()
        .unwrap_or(0)
}

/// `boot` (bootstrap, relay-capable: a signaling peer), the victim, mallory
/// (an enrolled member, not a signaling peer) and `offline`, whose host
/// never reaches anyone.
fn hostile_four(seed: u64) -> Overlay {
    let specs = vec![
        member("boot", 1, [10, 42, 0, 1], true),
        member("victim", 2, [10, 42, 1, 1], false),
        member("mallory", 3, [10, 42, 2, 1], false),
        member("offline", 4, [10, 42, 3, 1], false),
    ];
    let mut o = Overlay::public(seed, &specs, Some("boot"), |_, _| {});
    let offline = o.host("offline");
    o.net.isolate(offline);
    let ok = o.run_until(Duration::from_secs(20), |o| {
        ["boot", "victim", "mallory"]
            .iter()
            .all(|n| o.node(n).kernel_routes.len() == 2)
    });
    assert!(ok, "boot, victim and mallory did not enroll each other");
    o
}

/// Addresses mallory picks: a different one for every frame.
fn picked(i: u32) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(203, 0, 113, 100 + (i % 100) as u8),
        1024 + (i % 50_000) as u16,
    )
}

/// Initiation rounds (distinct send times) `node` sent to addresses `to`
/// accepts, from `since` on.
fn rounds_to(
    o: &Overlay,
    node: &str,
    since: Duration,
    to: impl Fn(&SocketAddrV4) -> bool,
) -> Vec<Duration> {
    let mut times: Vec<Duration> = o
        .node(node)
        .initiations
        .iter()
        .filter(|(t, dst)| *t >= since && to(dst))
        .map(|(t, _)| *t)
        .collect();
    times.dedup();
    times
}

fn assert_one_per_gap(rounds: &[Duration], what: &str) {
    for w in rounds.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_secs(5),
            "{what}: initiations {:?} and {:?} are less than 5 s apart (all: {rounds:?})",
            w[0],
            w[1]
        );
    }
}

#[test]
fn a_misbehaving_member_cannot_misdirect_a_node() {
    let mut o = hostile_four(21);
    let offline = o.roster.id("offline");
    let reflexive_before = o.node("victim").node.snapshot(o.net.now()).candidates;
    let since = o.net.elapsed();
    let untrusted_before = drops(&o, "victim", DropReason::UntrustedAddressInfo);
    let unmatched_before = drops(&o, "victim", DropReason::UnmatchedProbeReply);
    // 1,000 PeerInfo/s about the offline peer and 1,000 unsolicited
    // ProbeReply/s, for 10 s: one of each per millisecond.
    for i in 0..10_000u32 {
        let info = Frame::PeerInfo {
            peer: offline,
            candidates: Candidates {
                local: vec![picked(2 * i)],
                reflexive: vec![picked(2 * i + 1)],
            },
        };
        o.send_frame("mallory", "victim", &info);
        let reply = Frame::ProbeReply {
            id: u64::from(i) * 7 + 3,
            observed: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 66), 2000 + (i % 1000) as u16),
        };
        o.send_frame("mallory", "victim", &reply);
        o.net.run_for(Duration::from_millis(1));
    }
    o.net.run_for(Duration::from_secs(1));

    let named = |a: &SocketAddrV4| a.ip().octets()[..3] == [203, 0, 113];
    let rounds = rounds_to(&o, "victim", since, named);
    println!("victim's initiation rounds toward addresses mallory named: {rounds:?}");
    assert_one_per_gap(&rounds, "toward mallory's addresses");
    assert!(
        rounds.is_empty(),
        "mallory is no signaling peer: nothing it named is tried"
    );
    let after = o.node("victim").node.snapshot(o.net.now());
    assert_eq!(
        after.candidates, reflexive_before,
        "the victim's own candidates are unchanged"
    );
    assert!(
        after
            .peers
            .iter()
            .find(|p| p.peer_id == offline)
            .is_some_and(|p| p.paths.is_empty()),
        "no path to the offline peer was made from mallory's frames"
    );
    let untrusted = drops(&o, "victim", DropReason::UntrustedAddressInfo) - untrusted_before;
    let unmatched = drops(&o, "victim", DropReason::UnmatchedProbeReply) - unmatched_before;
    println!("victim drops: untrusted_address_info {untrusted}, unmatched_probe_reply {unmatched}");
    assert_eq!(untrusted, 10_000);
    assert_eq!(unmatched, 10_000);
    // The drops are attributed to mallory, not to anyone else.
    let mallory = o.roster.id("mallory");
    let per_peer = |id: &PeerId, r: DropReason| {
        after
            .peers
            .iter()
            .find(|p| p.peer_id == *id)
            .and_then(|p| p.counters.drops.get(&r).copied())
            .unwrap_or(0)
    };
    assert_eq!(
        per_peer(&mallory, DropReason::UntrustedAddressInfo),
        untrusted
    );
    assert_eq!(
        per_peer(&mallory, DropReason::UnmatchedProbeReply),
        unmatched
    );
    // And the victim still works with everyone else.
    o.send("victim", "boot", b"still-up");
    o.send("mallory", "victim", b"still-up");
    o.net.run_for(Duration::from_secs(1));
    assert_eq!(o.node("boot").delivered_with(b"still-up"), 1);
    assert_eq!(o.node("victim").delivered_with(b"still-up"), 1);
}

#[test]
fn even_a_signaling_peer_cannot_make_more_than_one_initiation_per_five_seconds() {
    let mut o = hostile_four(22);
    let offline = o.roster.id("offline");
    let since = o.net.elapsed();
    // The bootstrap peer is believed, and floods new addresses (and some
    // unusable ones) for the offline peer: 1,000 frames/s for 10 s.
    for i in 0..10_000u32 {
        let info = Frame::PeerInfo {
            peer: offline,
            candidates: Candidates {
                local: vec![picked(2 * i), SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4100)],
                reflexive: vec![
                    picked(2 * i + 1),
                    SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 1), 4100),
                    SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 0),
                ],
            },
        };
        o.send_frame("boot", "victim", &info);
        o.net.run_for(Duration::from_millis(1));
    }
    o.net.run_for(Duration::from_secs(1));
    let rounds = rounds_to(&o, "victim", since, |_| true);
    println!("victim's initiation rounds during a 10 s flood from a signaling peer: {rounds:?}");
    assert_one_per_gap(&rounds, "toward the offline peer");
    assert!(!rounds.is_empty(), "believed addresses are tried");
    assert!(
        rounds.len() <= 3,
        "at most one per 5 s over 11 s: {rounds:?}"
    );
    // One round still goes to several candidates at once.
    let first = rounds[0];
    let fanout = o
        .node("victim")
        .initiations
        .iter()
        .filter(|(t, _)| *t == first)
        .count();
    assert!(
        fanout > 1,
        "one initiation goes to several candidates: {fanout}"
    );
    let unusable = drops(&o, "victim", DropReason::UnusableCandidate);
    assert_eq!(
        unusable, 30_000,
        "loopback, multicast and port 0 refused and counted"
    );
    assert!(
        o.node("victim")
            .initiations
            .iter()
            .all(|(_, a)| !a.ip().is_loopback() && !a.ip().is_multicast() && a.port() != 0),
        "nothing goes to an unusable candidate"
    );
}

fn mesh(n: u8) -> Vec<MemberSpec> {
    (0..n)
        .map(|i| member(&format!("n{i:03}"), i + 1, [10, 42, i, 1], i == 0))
        .collect()
}

fn converged(o: &Overlay, n: usize) -> bool {
    o.hosts
        .keys()
        .all(|h| o.node(h).kernel_routes.len() == n - 1)
}

#[test]
fn a_32_node_mesh_converges_and_stays_converged() {
    let wall = Instant::now();
    let mut o = Overlay::public(23, &mesh(32), Some("n000"), |_, _| {});
    o.use_aead(Backend::Ring);
    let ok = o.run_until(Duration::from_secs(30), |o| converged(o, 32));
    let took = o.net.elapsed();
    println!("32-node mesh converged={ok} after {took:?} simulated");
    assert!(ok, "not every node routes all 31 others");
    assert!(
        took < Duration::from_secs(5),
        "converges within 5 s: {took:?}"
    );
    let changes: u64 = o
        .hosts
        .keys()
        .map(|h| o.node(h).node.counters().path_changes)
        .sum();
    // Past the first rekey (120 s) and several membership timeouts.
    o.net.run_for(Duration::from_secs(150));
    assert!(converged(&o, 32), "still converged after 150 idle seconds");
    let now = o.net.now();
    for h in o.hosts.keys() {
        let s = o.node(h).node.snapshot(now);
        assert!(
            s.peers
                .iter()
                .all(|p| p.enrolled && p.session_up && p.class.is_some()),
            "{h}: every peer enrolled with a working path"
        );
    }
    let later: u64 = o
        .hosts
        .keys()
        .map(|h| o.node(h).node.counters().path_changes)
        .sum();
    assert_eq!(later, changes, "no path changed while idle");
    println!("32-node mesh: {:?} wall", wall.elapsed());
}

/// Datagrams a node may send per peer per minute while idle, from the
/// timers: an announce every `announce_interval`, a probe on each of the
/// peer's paths (in an all-public mesh, one) every `probe_idle` and the
/// reply to each of the peer's probes, and the session's rekey (one
/// handshake message per two minutes, either side), with a slack of 25 %
/// for timers that drift and paths probed twice while they settle.
fn idle_bound_per_peer(t: &Timers) -> f64 {
    let per_min = |d: Duration| 60.0 / d.as_secs_f64();
    let steady = per_min(t.announce_interval) + 2.0 * per_min(t.probe_idle) + 1.0;
    steady * 1.25
}

fn idle_cost(n: u8, idle: Duration) {
    let wall = Instant::now();
    let mut o = Overlay::public(24, &mesh(n), Some("n000"), |_, _| {});
    o.use_aead(Backend::Ring);
    let ok = o.run_until(Duration::from_secs(60), |o| converged(o, usize::from(n)));
    assert!(ok, "{n}-node mesh did not converge");
    // Let the first rekeys and settling pass, then measure.
    o.net.run_for(Duration::from_secs(30));
    let before: Vec<u64> = o.hosts.keys().map(|h| o.node(h).datagrams_sent).collect();
    o.net.run_for(idle);
    let minutes = idle.as_secs_f64() / 60.0;
    let per_min: Vec<f64> = o
        .hosts
        .keys()
        .zip(&before)
        .map(|(h, b)| (o.node(h).datagrams_sent - b) as f64 / minutes)
        .collect();
    let peers = f64::from(n - 1);
    let max = per_min.iter().copied().fold(0.0, f64::max);
    let mean = per_min.iter().sum::<f64>() / per_min.len() as f64;
    let bound = idle_bound_per_peer(&Timers::default()) * peers;
    println!(
        "{n} nodes idle {idle:?}: control datagrams per node per minute: mean {mean:.0}, \
         max {max:.0} ({:.1} per peer; bound {bound:.0} = {:.1} per peer); {:?} wall",
        max / peers,
        bound / peers,
        wall.elapsed()
    );
    assert!(converged(&o, usize::from(n)), "still converged");
    assert!(
        max <= bound,
        "idle control traffic {max:.0}/min exceeds {bound:.0}/min"
    );
}

#[test]
fn a_64_node_mesh_idles_at_a_cost_linear_in_its_peers() {
    idle_cost(64, Duration::from_secs(120));
}

/// 200 nodes idle for ten virtual minutes: about 12 million datagrams,
/// far too slow for a debug build (the 64-node test above checks the same
/// bound in the suite). Run with
/// `cargo test -p vine-testkit --release --test control -- --ignored`;
/// `VINE_SIM_IDLE_SECS` shortens the idle window.
#[test]
#[ignore = "12 million simulated datagrams: run with --release -- --ignored"]
fn two_hundred_nodes_idle_ten_minutes_at_a_cost_linear_in_their_peers() {
    let secs = std::env::var("VINE_SIM_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    idle_cost(200, Duration::from_secs(secs));
}
