//! A node restarted (cleanly, or after a crash) with the same identity: the
//! new session makes both sides announce at once, so traffic flows both
//! ways again within a round trip or two, not after the announce timer.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use vine_testkit::overlay::{Overlay, Roster, member};

/// alpha (192.0.2.1) and beta (192.0.2.2) on the internet, each with the
/// other as its bootstrap peer, settled for 25 s (several announces each
/// way, so announce numbers are well past 1).
fn pair(seed: u64) -> Overlay {
    let specs = [
        member("alpha", 2, [10, 42, 0, 1], false),
        member("beta", 3, [10, 42, 1, 1], false),
    ];
    let mut roster = Roster::default();
    for s in &specs {
        roster.add(s);
    }
    // beta bootstraps from alpha; alpha knows beta's address too, so either
    // side can be the one that restarts and reconnects.
    let beta = (
        roster.id("beta"),
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 4100),
    );
    let mut o = Overlay::public(seed, &specs, Some("alpha"), |name, config| {
        if name == "alpha" {
            config.bootstrap.push(beta);
        }
    });
    o.net.run_for(Duration::from_secs(25));
    o
}

/// Sends a tagged packet each way every 10 ms until each direction has
/// delivered one; returns how long each took (survivor → restarted,
/// restarted → survivor), `None` for a direction that did not work in 15 s.
fn time_to_traffic(
    o: &mut Overlay,
    survivor: &str,
    restarted: &str,
) -> (Option<Duration>, Option<Duration>) {
    let start = o.net.elapsed();
    let (mut to_restarted, mut to_survivor) = (None, None);
    for i in 0..1500 {
        o.send(survivor, restarted, format!("s2r {i}").as_bytes());
        o.send(restarted, survivor, format!("r2s {i}").as_bytes());
        o.net.run_for(Duration::from_millis(10));
        let first = |o: &Overlay, node: &str, tag: &[u8]| {
            o.node(node)
                .delivered
                .iter()
                .find(|(t, p)| *t >= start && p.get(20..).is_some_and(|b| b.starts_with(tag)))
                .map(|(t, _)| *t - start)
        };
        to_restarted = to_restarted.or(first(o, restarted, b"s2r "));
        to_survivor = to_survivor.or(first(o, survivor, b"r2s "));
        if to_restarted.is_some() && to_survivor.is_some() {
            break;
        }
    }
    (to_restarted, to_survivor)
}

/// How the restarted node went down.
#[derive(Debug, Clone, Copy)]
enum Down {
    /// SIGTERM: it withdraws from its peers, then exits.
    Clean,
    /// kill -9: it vanishes without a word, for 2 s.
    Crash,
}

fn restart(o: &mut Overlay, name: &str, down: Down) {
    let h = o.host(name);
    match down {
        Down::Clean => {
            let now = o.net.now();
            o.net.endpoint_mut(h).stop(now);
            o.net.run_for(Duration::from_millis(200));
            o.restart(name);
        }
        Down::Crash => {
            o.net.isolate(h);
            o.net.run_for(Duration::from_secs(2));
            o.restart(name);
            o.net.rejoin(h);
        }
    }
}

#[test]
fn a_restarted_node_carries_traffic_both_ways_within_a_second() {
    let mut results = Vec::new();
    for (survivor, restarted) in [("beta", "alpha"), ("alpha", "beta")] {
        for down in [Down::Clean, Down::Crash] {
            let mut o = pair(31);
            // Traffic works both ways before.
            let (a, b) = time_to_traffic(&mut o, survivor, restarted);
            assert!(a.is_some() && b.is_some(), "no traffic before the restart");
            restart(&mut o, restarted, down);
            let (to_restarted, to_survivor) = time_to_traffic(&mut o, survivor, restarted);
            results.push(format!(
                "{restarted} restarted ({down:?}): {survivor}->{restarted} {to_restarted:?}, \
                 {restarted}->{survivor} {to_survivor:?}"
            ));
            for (dir, t) in [("to", to_restarted), ("from", to_survivor)] {
                assert!(
                    t.is_some_and(|t| t <= Duration::from_secs(1)),
                    "{restarted} restarted ({down:?}): traffic {dir} it after {t:?}"
                );
            }
        }
    }
    println!(
        "time to traffic after a restart:\n  {}",
        results.join("\n  ")
    );
}
