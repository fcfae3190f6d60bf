//! Real `vine` daemons behind real NATs (the nftables NAT lab): one public
//! relay/bootstrap node, one public node without NAT, one behind an
//! endpoint-independent NAT, two on one LAN behind a port-restricted NAT, one
//! behind another port-restricted NAT and two behind two symmetric NATs. Every pair must carry ping, and each
//! pair's path class (from `vine sessions --format json` on both sides) must
//! be the one the topology allows: `direct` where the peer's own address is
//! reachable, `signaling_then_direct` where hole punching works, `relay`
//! only where it cannot. The grid is printed and written as JSON, with the
//! time to the first ping on a LAN pair and the failover and promotion
//! times around an nftables cut.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Node, class_in, full_mesh, make_node, ping, secs, start, time_until};
use serde_json::{Value, json};
use vine_lab::natlab::{Machine, NatKind, NatLab};
use vine_lab::netns::{Lab, wait_for};

/// A node of the grid and the NAT in front of it.
struct Member {
    node: Node,
    nat: &'static str,
    /// The LAN it sits on, if it is behind a NAT.
    lan: Option<&'static str>,
}

/// The class both sides must report for a pair.
fn expected(a: &Member, b: &Member) -> &'static str {
    let public = |k: &str| k == "none" || k == "relay";
    let mut pair = [a.nat, b.nat];
    pair.sort_unstable();
    match pair {
        // On one LAN, or one side on the internet: the peer's own address
        // is reachable.
        _ if a.lan.is_some() && a.lan == b.lan => "direct",
        _ if public(a.nat) || public(b.nat) => "direct",
        // One side accepts anyone at its public mapping, or both keep their
        // mapping and open it for each other at once.
        ["eim_eif", _] | ["port_restricted", "port_restricted"] => "signaling_then_direct",
        _ => "relay",
    }
}

fn member(
    lab: &NatLab,
    root: &std::path::Path,
    i: u8,
    name: &str,
    (nat, lan): (&'static str, Option<&'static str>),
    m: &Machine,
) -> Member {
    Member {
        node: make_node(
            lab.lab(),
            root,
            name,
            Ipv4Addr::new(10, 42, i, 1),
            m.address,
            m.host.clone(),
        ),
        nat,
        lan,
    }
}

/// Wall-clock seconds of the first reply of `ping -D` from `from` to `to`,
/// pinging every 50 ms for at most `deadline`.
fn first_reply(lab: &Lab, from: &Node, to: Ipv4Addr, deadline: Duration) -> Option<f64> {
    // `ping -c 1` stops at the first ICMP error too (a "net unreachable"
    // from the LAN gateway while the overlay route is not installed yet),
    // so it runs again until a reply or the deadline; the reply's own
    // timestamp (-D) is what counts.
    let t0 = std::time::Instant::now();
    while t0.elapsed() < deadline {
        let left = deadline.saturating_sub(t0.elapsed()).as_secs().max(1);
        let out = lab.exec(
            &from.host,
            "ping",
            &[
                "-D",
                "-n",
                "-c",
                "1",
                "-i",
                "0.05",
                "-w",
                &left.to_string(),
                &to.to_string(),
            ],
        );
        let reply = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("bytes from"))
            .and_then(|l| l.strip_prefix('['))
            .and_then(|l| l.split(']').next())
            .and_then(|t| t.parse().ok());
        if reply.is_some() {
            return reply;
        }
        // Poll interval of this bounded wait.
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// How long until `node`'s class to `peer` is `class`.
fn time_until_class(
    lab: &Lab,
    node: &Node,
    peer: &Node,
    class: &str,
    limit: Duration,
) -> Option<Duration> {
    time_until(limit, || node.class_to(lab, peer).as_deref() == Some(class))
}

#[test]
fn nat_grid_every_pair_connects_with_the_right_class() {
    let t = tempfile::tempdir().expect("tempdir");
    let mut nat = NatLab::new();
    let relay_m = nat.public_host("relay").expect("relay");
    let none_m = nat.public_host("none").expect("none");
    let eim = nat.site("eim", NatKind::EndpointIndependent).expect("eim");
    let eim_m = nat.lan_host(&eim, "eim").expect("eim host");
    nat.pin_udp(&eim_m, 4100).expect("pin");
    let prc = nat.site("prc", NatKind::PortRestricted).expect("prc");
    let prc1_m = nat.lan_host(&prc, "prc1").expect("prc1");
    let prc2_m = nat.lan_host(&prc, "prc2").expect("prc2");
    let prc_b = nat.site("prc_b", NatKind::PortRestricted).expect("prc_b");
    let prc3_m = nat.lan_host(&prc_b, "prc3").expect("prc3");
    let sym1 = nat.site("sym1", NatKind::Symmetric).expect("sym1");
    let sym1_m = nat.lan_host(&sym1, "sym1").expect("sym1 host");
    let sym2 = nat.site("sym2", NatKind::Symmetric).expect("sym2");
    let sym2_m = nat.lan_host(&sym2, "sym2").expect("sym2 host");

    let root = t.path();
    let members = [
        member(&nat, root, 254, "relay", ("relay", None), &relay_m),
        member(&nat, root, 1, "none", ("none", None), &none_m),
        member(&nat, root, 2, "eim", ("eim_eif", Some("eim")), &eim_m),
        member(
            &nat,
            root,
            3,
            "prc1",
            ("port_restricted", Some("prc")),
            &prc1_m,
        ),
        member(
            &nat,
            root,
            4,
            "prc2",
            ("port_restricted", Some("prc")),
            &prc2_m,
        ),
        member(
            &nat,
            root,
            7,
            "prc3",
            ("port_restricted", Some("prc_b")),
            &prc3_m,
        ),
        member(&nat, root, 5, "sym1", ("symmetric", Some("sym1")), &sym1_m),
        member(&nat, root, 6, "sym2", ("symmetric", Some("sym2")), &sym2_m),
    ];
    let nodes: Vec<&Node> = members.iter().map(|m| &m.node).collect();
    let relay = nodes[0];
    full_mesh(nat.lab(), &nodes, &[relay], relay);

    // Everyone but the LAN pair first; then the LAN pair, timed.
    let lab = nat.lab_mut();
    for n in &nodes {
        if n.name != "prc1" && n.name != "prc2" {
            start(lab, n);
        }
    }
    let (prc1, prc2) = (nodes[3], nodes[4]);
    let t_start = now_epoch();
    start(lab, prc2);
    start(lab, prc1);
    let t_running = now_epoch();
    let first = first_reply(lab, prc1, prc2.overlay, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("prc1 never reached prc2; log:\n{}", prc1.log()));
    let lab: &Lab = lab;

    // Every ordered pair pings, in parallel.
    let pairs: Vec<(usize, usize)> = (0..nodes.len())
        .flat_map(|a| (0..nodes.len()).map(move |b| (a, b)))
        .filter(|(a, b)| a != b)
        .collect();
    let pinged: BTreeMap<(usize, usize), bool> = thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .iter()
            .map(|&(a, b)| {
                let (na, nb) = (nodes[a], nodes[b]);
                scope.spawn(move || {
                    (
                        (a, b),
                        wait_for(Duration::from_secs(40), || ping(lab, na, nb.overlay)),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("ping thread"))
            .collect()
    });

    // Classes settle (promotion needs a streak of answered probes).
    let grid = |lab: &Lab| -> Vec<Value> {
        let sessions: Vec<Vec<Value>> = nodes.iter().map(|n| n.sessions(lab)).collect();
        let mut out = Vec::new();
        for a in 0..nodes.len() {
            for b in a + 1..nodes.len() {
                let want = expected(&members[a], &members[b]);
                let ab = class_in(&sessions[a], nodes[b]);
                let ba = class_in(&sessions[b], nodes[a]);
                out.push(json!({
                    "a": nodes[a].name,
                    "b": nodes[b].name,
                    "nat_a": members[a].nat,
                    "nat_b": members[b].nat,
                    "same_lan": members[a].lan.is_some() && members[a].lan == members[b].lan,
                    "expected": want,
                    "class_a_to_b": ab,
                    "class_b_to_a": ba,
                    "ping_a_to_b": pinged[&(a, b)],
                    "ping_b_to_a": pinged[&(b, a)],
                    "ok": ab.as_deref() == Some(want) && ba.as_deref() == Some(want)
                        && pinged[&(a, b)] && pinged[&(b, a)],
                }));
            }
        }
        out
    };
    let all_ok = |g: &[Value]| g.iter().all(|p| p["ok"] == true);
    let mut rows = grid(lab);
    let settled = wait_for(Duration::from_secs(30), || {
        rows = grid(lab);
        all_ok(&rows)
    });

    // Failover on the LAN pair while traffic flows (five pings a second,
    // so probes run at their busy pace): cut it, wait for relay, restore,
    // wait for direct again.
    let target = prc2.overlay.to_string();
    nat.lab_mut()
        .spawn(&prc1.host, "ping", &["-i", "0.2", "-w", "60", &target]);
    let cut = nat.cut(&prc1_m, &prc2_m).expect("cut");
    let lab = nat.lab();
    let failover = time_until_class(lab, prc1, prc2, "relay", Duration::from_secs(20));
    // Each side detects the cut on its own; until prc2 has too, its
    // answers still take the direct path. Ask for a ping once both are on
    // the relay (bounded: the failover bound below still applies to prc1).
    let both_relay = failover.is_some()
        && time_until_class(lab, prc2, prc1, "relay", Duration::from_secs(10)).is_some();
    let ping_during_cut =
        both_relay && wait_for(Duration::from_secs(5), || ping(lab, prc1, prc2.overlay));
    nat.remove(cut).expect("remove cut");
    let lab = nat.lab();
    let promotion = time_until_class(lab, prc1, prc2, "direct", Duration::from_secs(30));

    let report = json!({
        "nodes": members.iter().map(|m| json!({
            "name": m.node.name,
            "nat": m.nat,
            "underlay": m.node.underlay.to_string(),
            "overlay": m.node.overlay.to_string(),
        })).collect::<Vec<_>>(),
        "pairs": rows,
        "measurements": {
            "first_ping_after_both_running_s": secs(Duration::from_secs_f64((first - t_running).max(0.0))),
            "first_ping_after_first_start_s": secs(Duration::from_secs_f64((first - t_start).max(0.0))),
            "failover_direct_to_relay_s": failover.map(secs),
            "ping_while_cut": ping_during_cut,
            "promotion_relay_to_direct_s": promotion.map(secs),
        },
    });
    let text = serde_json::to_string_pretty(&report).expect("json");
    fs::write(t.path().join("nat-grid.json"), &text).expect("write grid");
    println!(
        "NAT grid ({}):\n{text}",
        t.path().join("nat-grid.json").display()
    );

    let lab = nat.lab();
    let bad: Vec<&Value> = rows.iter().filter(|p| p["ok"] != true).collect();
    assert!(
        settled,
        "pairs with the wrong class or no ping: {bad:#?}\nsym1 log:\n{}",
        nodes[6].log()
    );
    assert!(
        first - t_running < 5.0,
        "first ping took {:.3} s",
        first - t_running
    );
    assert!(
        failover.is_some_and(|d| d < Duration::from_secs(5)),
        "no failover to relay: {:?}",
        prc1.sessions(lab)
    );
    assert!(
        ping_during_cut,
        "no ping through the relay while the LAN was cut"
    );
    assert!(
        promotion.is_some(),
        "no promotion back to direct: {:?}",
        prc1.sessions(lab)
    );
}
