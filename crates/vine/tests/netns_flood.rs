//! A handshake flood against a real daemon (issue 15's "Flood" test, in a
//! short form; `bench/flood.sh` runs it for 30 s with iperf3): alpha and
//! beta, two vine daemons, and an attacker host on one bridge (the lab's
//! "internet", 203.0.113.0/24). The attacker sends beta forged handshake
//! initiations with a *valid* mac1 (anyone can compute it from beta's
//! PeerId) at 20,000/s from 256 source ports, then 64 KiB junk datagrams.
//! Meanwhile:
//!
//! * ping between alpha and beta keeps working, both ways;
//! * alpha, restarted during the flood (SIGTERM, then start), carries ping
//!   both ways within 1 s of answering on its control socket;
//! * the Diffie-Hellman operations beta spends on the attacker stay within
//!   WireGuard's per-source limit (20/s, burst 5) — beta's
//!   `handshake_dh_computed` counter, less what alpha's own handshakes
//!   cost;
//! * beta's peak RSS (`VmHWM`) stays under 32 MiB, under both floods, and
//!   the junk is dropped inline (`inline_drops`) without filling a queue.
//!
//! The flood runs in-process (`vine_lab::flood`), on sockets opened in the
//! attacker's namespace. Everything is removed even when an assertion fails:
//! the lab cleans up on drop, and a guard stops the flood.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Node, make_node, ok, secs, start, time_until};
use serde_json::Value;
use vine_lab::flood::{DEFAULT_PORTS, Flood, FloodReport, FloodSpec, MAX_JUNK, Payload};
use vine_lab::natlab::{Machine, NatLab};
use vine_lab::netns::{Lab, wait_for};

/// Forged initiations per second (the rate).
const RATE: u64 = 20_000;
/// How long the forged-initiation flood lasts.
const FORGED_FOR: Duration = Duration::from_secs(12);
/// Junk datagrams per second (64 KiB each: about 1 Gbit/s).
const JUNK_RATE: u64 = 2_000;
/// How long the junk flood lasts.
const JUNK_FOR: Duration = Duration::from_secs(5);
/// WireGuard's per-source handshake limit: 20 per second, burst 5.
const DH_PER_SECOND: f64 = 20.0;
const DH_BURST: u64 = 5;
/// Handshakes beta may do with alpha during the flood (the restart and
/// a retry or two), not counted against the attacker.
const LEGIT_HANDSHAKES: u64 = 10;
/// The peak RSS the attacked daemon must stay under.
const RSS_LIMIT_KIB: u64 = 32 * 1024;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn node(nat: &NatLab, root: &Path, name: &str, i: u8, m: &Machine) -> Node {
    make_node(
        nat.lab(),
        root,
        name,
        Ipv4Addr::new(10, 42, i, 1),
        m.address,
        m.host.clone(),
    )
}

/// One ICMP echo with a 200 ms timeout, so a wait polls finely.
fn quick_ping(lab: &Lab, from: &Node, to: Ipv4Addr) -> bool {
    lab.exec(
        &from.host,
        "ping",
        &["-c", "1", "-W", "0.2", &to.to_string()],
    )
    .status
    .success()
}

/// How soon a peer restarted during the flood must carry ping again in
/// this test.
const RESTART_BOUND: Duration = Duration::from_secs(1);

/// `count` pings, 200 ms apart, with a 1 s timeout each: how many came back.
fn pings(lab: &Lab, from: &Node, to: Ipv4Addr, count: u32) -> u32 {
    let out = lab.exec(
        &from.host,
        "ping",
        &[
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            &to.to_string(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|part| part.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// `VmHWM` (peak resident set) of `pid`, in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM for pid {pid}:\n{status}"))
}

/// A flood sending on its own thread; stopped when dropped (also when an
/// assertion fails first).
struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<FloodReport>>,
}

impl Running {
    fn start(lab: &Lab, attacker: &Machine, spec: FloodSpec) -> Self {
        let flood = lab
            .run_in(&attacker.host, || Flood::open(spec))
            .expect("flood sockets in the attacker's namespace");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || flood.run(&flag));
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Waits for the flood to end (its duration) and returns its report.
    fn finish(mut self) -> FloodReport {
        self.thread
            .take()
            .expect("not finished yet")
            .join()
            .expect("flood thread")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Restarts `node` (SIGTERM, then start) and returns how long after its
/// control socket answers ping works both ways with `peer` (`None` in a
/// direction that did not come back within 10 s).
fn restart(lab: &mut Lab, node: &Node, peer: &Node) -> (Option<Duration>, Option<Duration>) {
    let pid = node.pid();
    ok(
        lab.exec(&node.host, "kill", &["-TERM", &pid.to_string()]),
        "kill -TERM",
    );
    assert!(
        wait_for(Duration::from_secs(10), || !Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "{} did not exit on SIGTERM",
        node.name
    );
    start(lab, node);
    assert!(
        wait_for(Duration::from_secs(5), || node
            .vine(lab, &["status"])
            .status
            .success()),
        "the restarted daemon does not answer"
    );
    let t0 = Instant::now();
    let lab = &*lab;
    let there = time_until(Duration::from_secs(10), || {
        quick_ping(lab, node, peer.overlay)
    })
    .map(|_| t0.elapsed());
    let back = time_until(Duration::from_secs(10), || {
        quick_ping(lab, peer, node.overlay)
    })
    .map(|_| t0.elapsed());
    (there, back)
}

#[test]
fn a_daemon_under_a_handshake_flood_keeps_its_peers_and_its_memory() {
    let t = tempfile::tempdir().expect("tempdir");
    let mut nat = NatLab::new();
    let alpha_m = nat.public_host("alpha").expect("alpha");
    let beta_m = nat.public_host("beta").expect("beta");
    let attacker = nat.public_host("attacker").expect("attacker");
    let alpha = node(&nat, t.path(), "alpha", 0, &alpha_m);
    let beta = node(&nat, t.path(), "beta", 1, &beta_m);
    alpha.append(&beta.export(nat.lab()));
    beta.append(&alpha.export(nat.lab()));
    alpha.append(&beta.bootstrap_entry());
    start(nat.lab_mut(), &beta);
    start(nat.lab_mut(), &alpha);
    let lab = nat.lab();
    assert!(
        wait_for(Duration::from_secs(15), || quick_ping(
            lab,
            &alpha,
            beta.overlay
        ) && quick_ping(
            lab,
            &beta,
            alpha.overlay
        )),
        "no ping before the flood\nalpha explains beta: {}\nbeta sockets: {}\nalpha neighbours: {}\nalpha counters: {}\nbeta counters: {}\nalpha log:\n{}\nbeta log:\n{}",
        String::from_utf8_lossy(
            &alpha
                .vine(lab, &["sessions", "--explain", &beta.peer_id])
                .stdout
        ),
        String::from_utf8_lossy(&lab.exec(&beta.host, "ss", &["-uanp"]).stdout),
        String::from_utf8_lossy(&lab.exec(&alpha.host, "ip", &["neigh"]).stdout),
        alpha.counters(lab),
        beta.counters(lab),
        alpha.log(),
        beta.log()
    );
    let target = SocketAddrV4::new(beta.underlay, 4100);
    let peer_id: vine_core::PeerId = beta.peer_id.parse().expect("beta's PeerId");
    let before = beta.counters(lab);

    // 1. Forged initiations with a valid mac1, 20,000/s from 256 ports.
    let flood = Running::start(
        lab,
        &attacker,
        FloodSpec {
            target,
            payload: Payload::Initiations {
                public_key: *peer_id.public_key(),
            },
            rate: RATE,
            duration: FORGED_FOR,
            ports: DEFAULT_PORTS,
            bind: attacker.address,
            seed: 0x5eed,
        },
    );
    let flood_started = Instant::now();
    let lab = nat.lab();
    // Bounded wait until the flood reached beta: it is under load and
    // answers with cookies.
    let cookies = n(&before["cookie_replies_sent"]);
    assert!(
        wait_for(Duration::from_secs(10), || n(
            &beta.counters(lab)["cookie_replies_sent"]
        ) > cookies),
        "the forged flood never put beta under load: {}",
        beta.counters(lab)
    );
    let (to_beta, to_alpha) = (
        pings(lab, &alpha, beta.overlay, 10),
        pings(lab, &beta, alpha.overlay, 10),
    );
    let during = beta.counters(lab);
    let (there, back) = restart(nat.lab_mut(), &alpha, &beta);
    let lab = nat.lab();
    let after_restart = (
        pings(lab, &alpha, beta.overlay, 5),
        pings(lab, &beta, alpha.overlay, 5),
    );
    let forged = flood.finish();
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let beta_pid = beta.pid();
    let rss_forged = peak_rss_kib(beta_pid);
    let after = beta.counters(lab);

    // 2. 64 KiB junk.
    let junk = Running::start(
        lab,
        &attacker,
        FloodSpec {
            target,
            payload: Payload::Junk { size: MAX_JUNK },
            rate: JUNK_RATE,
            duration: JUNK_FOR,
            ports: DEFAULT_PORTS,
            bind: attacker.address,
            seed: 0x7a11,
        },
    );
    let inline = |c: &Value| -> u64 {
        c["inline_drops"]
            .as_object()
            .map(|m| m.values().map(n).sum())
            .unwrap_or(0)
    };
    let inline_before = inline(&after);
    assert!(
        wait_for(Duration::from_secs(10), || inline(&beta.counters(lab))
            > inline_before),
        "the junk never reached beta: {}",
        beta.counters(lab)
    );
    let junk_pings = (
        pings(lab, &alpha, beta.overlay, 10),
        pings(lab, &beta, alpha.overlay, 10),
    );
    let junk_report = junk.finish();
    let rss_junk = peak_rss_kib(beta_pid);
    let after_junk = beta.counters(lab);

    let dh = |c: &Value| n(&c["handshake_dh_computed"]);
    // alpha's own handshakes with beta (its restart, a retry) cost beta a
    // DH each too; they are few, and allowed for here.
    let attacker_dh = dh(&after)
        .saturating_sub(dh(&before))
        .saturating_sub(LEGIT_HANDSHAKES);
    let dh_limit = (DH_PER_SECOND * flood_secs).ceil() as u64 + DH_BURST;
    let report = format!(
        "forged initiations: {forged:?} ({:.0}/s)\n\
         junk: {junk_report:?} ({:.0}/s)\n\
         pings during the forged flood: alpha->beta {to_beta}/10, beta->alpha {to_alpha}/10\n\
         restart during the flood: alpha->beta {:?} s, beta->alpha {:?} s; then {}/5 and {}/5\n\
         pings during the junk flood: {}/10 and {}/10\n\
         beta DH computed during the forged flood: {} ({attacker_dh} caused by the attacker over {flood_secs:.1} s; limit {dh_limit})\n\
         beta counters 1 s into the flood: {during}\n\
         beta counters after the forged flood: {after}\n\
         beta counters after the junk flood: {after_junk}\n\
         beta peak RSS: {rss_forged} KiB after forged initiations, {rss_junk} KiB after junk",
        forged.rate(),
        junk_report.rate(),
        there.map(secs),
        back.map(secs),
        after_restart.0,
        after_restart.1,
        junk_pings.0,
        junk_pings.1,
        dh(&after).saturating_sub(dh(&before)),
    );
    println!("{report}");

    // The attacker shares the machine's cores too: on a loaded machine it
    // falls short of its rate, but at half of it the flood still put beta
    // under load for the whole time.
    assert!(
        forged.sent as f64 >= 0.5 * RATE as f64 * FORGED_FOR.as_secs_f64(),
        "the attacker did not reach half its rate:\n{report}"
    );
    assert!(
        to_beta >= 9 && to_alpha >= 9,
        "ping suffered under the flood:\n{report}"
    );
    for (dir, took) in [("alpha->beta", there), ("beta->alpha", back)] {
        assert!(
            took.is_some_and(|d| d <= RESTART_BOUND),
            "restarted during the flood, {dir} ping after {took:?}:\n{report}\nalpha log:\n{}",
            alpha.log()
        );
    }
    assert!(
        after_restart.0 >= 4 && after_restart.1 >= 4,
        "ping after the restart:\n{report}"
    );
    assert!(
        attacker_dh <= dh_limit,
        "beta spent more Diffie-Hellman on the attacker than 20/s + 5:\n{report}"
    );
    // beta answered alpha's new initiation (a DH) and took alpha's first
    // transport message on the index it had just handed out: the inline
    // check lets that through although the tables do not know it yet.
    assert!(
        dh(&after) > dh(&before),
        "beta did no handshake with the restarted alpha:\n{report}"
    );
    assert_eq!(
        n(&after["inline_drops"]["unknown_index"]),
        0,
        "beta dropped transport messages for an index it handed out:\n{report}"
    );
    // About 1 Gbit/s of fragments to reassemble on two shared cores: a
    // ping may be late, but the path must stay up.
    assert!(
        junk_pings.0 >= 8 && junk_pings.1 >= 8,
        "ping suffered under the junk flood:\n{report}"
    );
    assert!(
        rss_forged < RSS_LIMIT_KIB && rss_junk < RSS_LIMIT_KIB,
        "beta's peak RSS over 32 MiB:\n{report}"
    );
    // Junk never reaches a queue: it is rejected inline.
    let inline = |c: &Value| {
        c["inline_drops"]
            .as_object()
            .map(|m| m.values().map(n).sum::<u64>())
            .unwrap_or(0)
    };
    let rejected = inline(&after_junk).saturating_sub(inline(&after));
    assert!(
        rejected > junk_report.sent / 10,
        "the junk that arrived was not rejected inline ({rejected} of {} sent):\n{report}",
        junk_report.sent
    );
    assert!(
        n(&after_junk["queue_peak_bytes"]["handshake"]) <= 256 << 10,
        "{report}"
    );
}
