//! A full mesh of real `vine` daemons at scale (issue 15, "Mesh"): N
//! daemons, one network namespace each, all plugged into one switch (a
//! bridge; underlay 198.51.100.0/24), every node enrolling every other
//! (overlay 10.42.i.1/24), one bootstrap peer (node 0, relay-capable) that
//! every other node starts from.
//!
//! Every size is run by hand today
//! (`cargo test -p vine --test netns_mesh -- --ignored --nocapture mesh_of_64`):
//! 64 daemons do not converge within 15 s on a 2-core machine yet (issue 15
//! stays open for it); the suite runs the parsers' test only.
//! Asserted, after every figure is measured and printed:
//!
//! - every node sees every other — enrolled, session up, on a `direct` path
//!   (one switch: nothing else is right), from the daemons' api — within
//!   15 s of the last daemon being started;
//! - idle CPU (utime + stime from `/proc/PID/stat`) over a 10 s window after
//!   convergence (and no sooner than 15 s after the last start, so every
//!   size is measured in the same phase) is at most 0.5 % of a core for
//!   every daemon;
//! - a ping around the ring (node i → node i+1's overlay address, 3 echoes
//!   each) loses nothing.
//!
//! Also printed: the frames each daemon sends per peer per minute while idle,
//! read from the switch ports' packet counters (every frame a node sends
//! crosses its port, so this counts all of vine's control traffic whatever
//! the daemon's own counters show).
//!
//! Set-up is parallel: identities and configs are made on a few threads, all
//! daemons are started (`vine daemon run`, detached as `vine daemon start`
//! does) before any is waited for, and then their api sockets are polled with
//! one bounded wait. Every daemon is tracked by PID and the [`Mesh`] guard
//! stops them all at once and removes every namespace (and with them every
//! link) on drop, also when an assertion fails.

mod common;

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Node, VINE, make_node, ok, s, secs};
use serde_json::{Value, json};
use vine_daemon::api::{PeerInfo, RequestBody, ResponseBody, client};
use vine_daemon::files::RuntimePaths;
use vine_lab::netns::{Lab, Switch};

/// Every node must see every other this soon after the last daemon started.
const CONVERGE_LIMIT: Duration = Duration::from_secs(15);
/// How long convergence is watched (past the limit, so a slow mesh still
/// yields a figure), bounded to keep the test within 90 s.
const CONVERGE_WATCH: Duration = Duration::from_secs(30);
/// How long the daemons get to answer on their api sockets.
const SOCKET_WAIT: Duration = Duration::from_secs(30);
/// The idle window whose CPU and frames are measured.
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// The most an idle daemon may use, in percent of one core.
const IDLE_CPU_LIMIT: f64 = 0.5;
/// Echoes per ring hop.
const RING_ECHOES: u32 = 3;
/// Threads for set-up work (the machine has 2 cores).
const WORKERS: usize = 4;
/// Api requests in flight at once (each mostly waits on a busy daemon, so
/// a sweep over 64 takes at most 4 timeouts).
const ASKERS: usize = 16;
/// Ring pings in flight at once (each mostly waits).
const PINGERS: usize = 32;
/// The most one ring hop may take, in seconds (`ping -w`).
const RING_DEADLINE_S: u32 = 4;
/// Timeout of one api request.
const API_TIMEOUT: Duration = Duration::from_secs(2);

/// One mesh test at a time in this binary: each builds N namespaces and
/// daemons, and two at once would measure each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
#[ignore = "fails today (issue 15): 64 daemons on 2 cores do not converge within 15 s; by hand: cargo test -p vine --test netns_mesh -- --ignored --nocapture mesh_of_64"]
fn mesh_of_64() {
    mesh(64);
}

#[test]
#[ignore = "by hand: cargo test -p vine --test netns_mesh -- --ignored --nocapture mesh_of_16"]
fn mesh_of_16() {
    mesh(16);
}

#[test]
#[ignore = "by hand: cargo test -p vine --test netns_mesh -- --ignored --nocapture mesh_of_32"]
fn mesh_of_32() {
    mesh(32);
}

/// The lab, its nodes and their daemons. Dropping it stops every daemon at
/// once, then the lab removes the namespaces (links go with them) and any
/// process left in them, then the node files go.
struct Mesh {
    lab: Lab,
    switch: Switch,
    nodes: Vec<Node>,
    /// Each node's port on the switch (same name as its interface).
    ports: Vec<String>,
    /// Each node's daemon PID once its api answered.
    pids: Vec<Option<i32>>,
    _dir: tempfile::TempDir,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.lab.stop_all_tracked(Duration::from_secs(5));
    }
}

/// Runs `f(i)` for every `i < n` on `workers` threads; results in order.
fn par<T: Send>(n: usize, workers: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let mut out: Vec<(usize, T)> = thread::scope(|scope| {
        let workers: Vec<_> = (0..workers.min(n).max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return mine;
                        }
                        mine.push((i, f(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, v)| v).collect()
}

fn name(i: usize) -> String {
    format!("m{i:02}")
}

fn overlay(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 42, u8::try_from(i).expect("at most 254 nodes"), 1)
}

fn underlay(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        198,
        51,
        100,
        u8::try_from(i + 1).expect("at most 254 nodes"),
    )
}

/// Namespaces on one switch, and nodes with full allowlists (node 0 is the
/// relay-capable bootstrap peer). No daemon runs yet.
fn build(n: usize) -> Mesh {
    assert!((2..=254).contains(&n), "a mesh has 2..=254 nodes, not {n}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lab = Lab::new();
    let switch = lab.try_switch("switch").expect("switch");
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for i in 0..n {
        let host = lab.host(&name(i));
        let port = lab
            .try_plug(&host, &switch, underlay(i), 24)
            .unwrap_or_else(|e| panic!("plugging {} into the switch: {e}", name(i)));
        hosts.push(host);
        ports.push(port);
    }
    // Static ARP: the kernel's one ARP table for all namespaces holds too
    // few learned entries for n(n-1) (see `try_static_neighbours`).
    let members: Vec<_> = (0..n)
        .map(|i| (hosts[i].clone(), ports[i].clone(), underlay(i)))
        .collect();
    lab.try_static_neighbours(&members)
        .expect("permanent neighbour entries on the switch");
    let root = dir.path();
    let made: Vec<(Node, String)> = par(n, WORKERS, |i| {
        let node = make_node(
            &lab,
            root,
            &name(i),
            overlay(i),
            underlay(i),
            hosts[i].clone(),
        );
        let export = node.export(&lab);
        (node, export)
    });
    let (nodes, mut exports): (Vec<Node>, Vec<String>) = made.into_iter().unzip();
    assert!(
        exports[0].contains("relay_capable = false"),
        "export-public no longer says relay_capable = false:\n{}",
        exports[0]
    );
    exports[0] = exports[0].replace("relay_capable = false", "relay_capable = true");
    let boot = nodes[0].bootstrap_entry();
    for (i, node) in nodes.iter().enumerate() {
        let mut text = fs::read_to_string(&node.config).expect("read config");
        for (j, e) in exports.iter().enumerate() {
            if i != j {
                text.push('\n');
                text.push_str(e);
            }
        }
        if i != 0 {
            text.push('\n');
            text.push_str(&boot);
        }
        fs::write(&node.config, text).expect("write config");
    }
    ok(nodes[n - 1].vine(&lab, &["config", "validate"]), "validate");
    Mesh {
        lab,
        switch,
        nodes,
        ports,
        pids: vec![None; n],
        _dir: dir,
    }
}

fn socket(node: &Node) -> PathBuf {
    RuntimePaths::new(node.run_dir()).socket()
}

/// Starts every daemon without waiting: `vine daemon run` detached with its
/// output in the runtime dir's log, as `vine daemon start` runs it (`ip
/// netns exec`, `setpriv` and the shell all `exec`, so the spawned PID is
/// the daemon's). `setpriv --pdeathsig KILL` makes the kernel kill a daemon
/// when this test's thread dies, so even a test killed before its guard
/// can run leaves no daemon running.
fn start_all(mesh: &mut Mesh) {
    for node in &mesh.nodes {
        let run = node.run_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&run)
            .expect("runtime dir");
        let log = RuntimePaths::new(&run).log();
        mesh.lab.spawn(
            &node.host,
            "setpriv",
            &[
                "--pdeathsig",
                "KILL",
                "sh",
                "-c",
                "VINE_DAEMON_DETACH=1 exec \"$0\" daemon run -c \"$1\" >>\"$2\" 2>&1",
                VINE,
                s(&node.config),
                s(&log),
            ],
        );
    }
}

/// Waits (bounded) until every daemon answers `status`, each polled from
/// its own thread every 50 ms (as `vine daemon start` polls), so a slow
/// daemon delays no other's figure; tracks their PIDs and returns how long
/// after `t0` the last one answered, and the nodes whose daemon runs but
/// did not answer within [`SOCKET_WAIT`]. Panics when a daemon is not
/// running at all.
fn wait_for_sockets(mesh: &mut Mesh, t0: Instant) -> (Duration, Vec<String>) {
    let n = mesh.nodes.len();
    let deadline = Instant::now() + SOCKET_WAIT;
    let answers: Vec<Option<(i32, Duration)>> = par(n, n, |i| {
        let socket = socket(&mesh.nodes[i]);
        loop {
            if let Ok(ResponseBody::Status(st)) =
                client::request(&socket, RequestBody::Status, API_TIMEOUT)
            {
                let pid = i32::try_from(st.pid).expect("a Linux pid fits i32");
                return Some((pid, t0.elapsed()));
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let mut last = Duration::ZERO;
    let mut silent = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        let node = &mesh.nodes[i];
        let pid = match answer {
            Some((pid, at)) => {
                last = last.max(*at);
                *pid
            }
            // Running but too busy to answer: measured all the same (its
            // pidfile is written before the socket is bound), and failed
            // at the end.
            None => match fs::read_to_string(node.run_dir().join("vine.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
                .filter(|p| cpu_ticks(*p).is_some())
            {
                Some(pid) => {
                    silent.push(node.name.clone());
                    pid
                }
                None => panic!(
                    "the daemon of {} is not running and never answered on its api socket; its log:\n{}",
                    node.name,
                    node.log()
                ),
            },
        };
        mesh.lab.track_pid(pid);
        mesh.pids[i] = Some(pid);
    }
    (last, silent)
}

/// What one node sees of the others.
#[derive(Debug, Default, Clone, Copy)]
struct View {
    /// Peers enrolled with a session up.
    up: usize,
    /// Of those, on a direct path.
    direct: usize,
    /// Of those, through a relay.
    relay: usize,
}

fn view(node: &Node) -> Option<(View, Vec<PeerInfo>)> {
    match client::request(&socket(node), RequestBody::Peers, API_TIMEOUT) {
        Ok(ResponseBody::Peers(peers)) => {
            let mut v = View::default();
            for p in peers.iter().filter(|p| p.enrolled && p.session_up) {
                v.up += 1;
                match p.class.as_deref() {
                    Some("direct") => v.direct += 1,
                    Some("relay") => v.relay += 1,
                    _ => {}
                }
            }
            Some((v, peers))
        }
        _ => None,
    }
}

/// Whether `node` sees all `others` peers enrolled, up and direct.
fn sees_all(node: &Node, others: usize) -> bool {
    view(node).is_some_and(|(v, _)| v.up == others && v.direct == others)
}

/// Polls the nodes not yet converged until every node sees every other,
/// then confirms with one sweep over all; returns the time since `t0`, or
/// `None` when [`CONVERGE_WATCH`] passes first.
fn converge(mesh: &Mesh, t0: Instant) -> Option<Duration> {
    let (n, others) = (mesh.nodes.len(), mesh.nodes.len() - 1);
    let short = |list: &[usize]| -> Vec<usize> {
        par(list.len(), ASKERS, |k| {
            let i = list[k];
            (t0.elapsed() >= CONVERGE_WATCH || !sees_all(&mesh.nodes[i], others)).then_some(i)
        })
        .into_iter()
        .flatten()
        .collect()
    };
    let mut pending: Vec<usize> = (0..n).collect();
    while t0.elapsed() < CONVERGE_WATCH {
        pending = short(&pending);
        if pending.is_empty() {
            let at = t0.elapsed();
            pending = short(&(0..n).collect::<Vec<_>>());
            if pending.is_empty() {
                return Some(at);
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    None
}

/// utime + stime of `pid` in clock ticks; `None` once it is gone.
fn cpu_ticks(pid: i32) -> Option<u64> {
    stat_cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The fields after the command name (which may hold spaces and
    // parentheses) start with field 3, the state.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf CLK_TCK");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK is a number")
}

/// Packets received by each switch port (= sent by the node behind it).
fn port_rx_packets(mesh: &Mesh) -> Vec<u64> {
    let out = mesh
        .lab
        .exec(&mesh.switch.host, "ip", &["-s", "-j", "link", "show"]);
    let links: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ip -s -j link show in the switch: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let links = links.as_array().cloned().unwrap_or_default();
    mesh.ports
        .iter()
        .map(|port| {
            links
                .iter()
                .find(|l| l["ifname"] == port.as_str())
                .and_then(|l| l["stats64"]["rx"]["packets"].as_u64())
                .unwrap_or_else(|| panic!("no rx packet counter for switch port {port}"))
        })
        .collect()
}

/// Max and mean of a list.
fn max_mean(v: &[f64]) -> (f64, f64) {
    let max = v.iter().copied().fold(0.0, f64::max);
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    (max, mean)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Echoes node i → node i+1 answered, per hop.
fn ring(mesh: &Mesh) -> Vec<u32> {
    let n = mesh.nodes.len();
    par(n, PINGERS, |i| {
        let (from, to) = (&mesh.nodes[i], &mesh.nodes[(i + 1) % n]);
        let out = mesh.lab.exec(
            &from.host,
            "ping",
            &[
                "-n",
                "-q",
                "-c",
                &RING_ECHOES.to_string(),
                "-i",
                "0.2",
                "-w",
                &RING_DEADLINE_S.to_string(),
                &to.overlay.to_string(),
            ],
        );
        echoes_received(&String::from_utf8_lossy(&out.stdout))
    })
}

/// The echoes answered, from ping's summary ("3 packets transmitted, 3
/// received, …"); 0 when there is none (ping failed to run).
fn echoes_received(ping_output: &str) -> u32 {
    ping_output
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Who does not see whom, for the first few nodes that fall short, with the
/// tail of one log.
fn diagnose(mesh: &Mesh, views: &[Option<(View, Vec<PeerInfo>)>]) -> String {
    let mut out = String::new();
    let others = mesh.nodes.len() - 1;
    let mut shown = 0;
    for (node, seen) in mesh.nodes.iter().zip(views) {
        let Some((v, peers)) = seen else {
            let _ = writeln!(out, "  {}: api did not answer", node.name);
            continue;
        };
        if v.up == others && v.direct == others {
            continue;
        }
        shown += 1;
        if shown > 4 {
            continue;
        }
        let short: Vec<String> = peers
            .iter()
            .filter(|p| !(p.enrolled && p.session_up && p.class.as_deref() == Some("direct")))
            .take(8)
            .map(|p| {
                format!(
                    "{}(enrolled={} up={} class={:?})",
                    p.name.as_deref().unwrap_or("?"),
                    p.enrolled,
                    p.session_up,
                    p.class
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  {}: {} up, {} direct, {} relay of {others}; e.g. {}",
            node.name,
            v.up,
            v.direct,
            v.relay,
            short.join(", ")
        );
    }
    // The log of the node that sees the fewest peers (a silent api counts
    // as none), beginning and end: how it started and where it stands.
    let worst = (0..mesh.nodes.len())
        .min_by_key(|&i| views[i].as_ref().map_or(0, |(v, _)| v.up))
        .map(|i| &mesh.nodes[i]);
    if let Some(node) = worst.filter(|_| shown > 0 || views.iter().any(Option::is_none)) {
        let log = node.log();
        let lines: Vec<&str> = log.lines().collect();
        let _ = writeln!(
            out,
            "  {}'s log ({} lines), first and last:",
            node.name,
            lines.len()
        );
        let head = lines.len().min(12);
        let tail = lines.len().saturating_sub(12).max(head);
        for l in lines[..head].iter().chain(&lines[tail..]) {
            let _ = writeln!(out, "    {l}");
        }
    }
    out
}

/// Builds, starts, measures and checks a mesh of `n` daemons.
fn mesh(n: usize) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Other work on the machine slows start-up and convergence (not the
    // CPU time a daemon itself uses); the load goes with the figures.
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_owned();
    let t_setup = Instant::now();
    let mut mesh = build(n);
    let setup = t_setup.elapsed();

    let t_start = Instant::now();
    start_all(&mut mesh);
    // "The last daemon starting": every daemon has been started now.
    let t_last = Instant::now();
    let spawn = t_last - t_start;
    let (sockets, silent_at_start) = wait_for_sockets(&mut mesh, t_last);
    let converged = converge(&mesh, t_last);

    // Sessions as they stand when the watch ends.
    let views = par(n, ASKERS, |i| view(&mesh.nodes[i]));
    let silent = views.iter().filter(|v| v.is_none()).count();
    let (up, direct, relay) = views
        .iter()
        .map(|v| v.as_ref().map(|(v, _)| *v).unwrap_or_default())
        .fold((0, 0, 0), |(u, d, r), v| {
            (u + v.up, d + v.direct, r + v.relay)
        });
    let mut per_node: Vec<usize> = views
        .iter()
        .map(|v| v.as_ref().map_or(0, |(v, _)| v.up))
        .collect();
    per_node.sort_unstable();
    let (fewest, median) = (per_node[0], per_node[n / 2]);
    let why = diagnose(&mesh, &views);

    // The idle window: nothing of ours talks to the daemons. It opens no
    // sooner than CONVERGE_LIMIT after the last start, so that every size
    // is measured in the same phase (a small mesh converges in a second,
    // when start-up work is still under way) and never before convergence.
    let idle_from = t_last + CONVERGE_LIMIT;
    if let Some(wait) = idle_from.checked_duration_since(Instant::now()) {
        thread::sleep(wait);
    }
    let pids: Vec<i32> = mesh
        .pids
        .iter()
        .map(|p| p.expect("every daemon answered"))
        .collect();
    let hz = clock_ticks_per_second();
    let cpu0: Vec<Option<u64>> = pids.iter().map(|&p| cpu_ticks(p)).collect();
    let rx0 = port_rx_packets(&mesh);
    let w0 = Instant::now();
    thread::sleep(IDLE_WINDOW);
    let cpu1: Vec<Option<u64>> = pids.iter().map(|&p| cpu_ticks(p)).collect();
    let rx1 = port_rx_packets(&mesh);
    let window = w0.elapsed().as_secs_f64();
    let exited: Vec<&str> = cpu1
        .iter()
        .zip(&mesh.nodes)
        .filter(|(c, _)| c.is_none())
        .map(|(_, node)| node.name.as_str())
        .collect();
    let cpu: Vec<f64> = cpu0
        .iter()
        .zip(&cpu1)
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => (b - a) as f64 / hz / window * 100.0,
            _ => 0.0,
        })
        .collect();
    let (cpu_max, cpu_mean) = max_mean(&cpu);
    let busiest = cpu
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| mesh.nodes[i].name.clone())
        .unwrap_or_default();
    let frames: Vec<f64> = rx0
        .iter()
        .zip(&rx1)
        .map(|(a, b)| (b - a) as f64 / (n - 1) as f64 / window * 60.0)
        .collect();
    let (frames_max, frames_mean) = max_mean(&frames);

    let answered = ring(&mesh);
    let lost: u32 = answered
        .iter()
        .map(|a| RING_ECHOES - a.min(&RING_ECHOES))
        .sum();
    let lossy_hops: Vec<String> = answered
        .iter()
        .enumerate()
        .filter(|(_, a)| **a < RING_ECHOES)
        .map(|(i, a)| format!("{}->{} {a}/{RING_ECHOES}", name(i), name((i + 1) % n)))
        .take(10)
        .collect();

    let pairs = n * (n - 1);
    let figures = json!({
        "nodes": n,
        "loadavg_1min_at_start": load,
        "setup_s": secs(setup),
        "spawn_s": secs(spawn),
        "sockets_answer_s": secs(sockets),
        "converged_s": converged.map(secs),
        "sessions_up": up,
        "sessions_direct": direct,
        "sessions_relay": relay,
        "sessions_up_per_node_min": fewest,
        "sessions_up_per_node_median": median,
        "api_silent_at_the_end": silent,
        "api_silent_at_start": silent_at_start.len(),
        "pairs": pairs,
        "idle_window_s": round3(window),
        "idle_cpu_percent_max": round3(cpu_max),
        "idle_cpu_percent_mean": round3(cpu_mean),
        "idle_cpu_busiest": busiest,
        "idle_frames_per_peer_per_min_max": round3(frames_max),
        "idle_frames_per_peer_per_min_mean": round3(frames_mean),
        "ring_echoes_sent": RING_ECHOES as usize * n,
        "ring_echoes_lost": lost,
    });
    println!(
        "mesh of {n} (load average {load} at the start): set-up {:.1} s; all {n} started in {:.2} s; answering {:.2} s after the last start ({} silent); \
         converged (every node sees every other, direct) {}; sessions up {up}/{pairs} (per node: fewest {fewest}, median {median} of {}; {silent} apis silent), direct {direct}, relay {relay}\n\
         idle {window:.1} s: CPU per daemon max {cpu_max:.3} % ({busiest}) mean {cpu_mean:.3} % of a core; \
         frames sent per peer per minute max {frames_max:.1} mean {frames_mean:.1}\n\
         ring ping: {lost} of {} echoes lost\nmesh figures: {figures}",
        secs(setup),
        secs(spawn),
        secs(sockets),
        silent_at_start.len(),
        converged.map_or_else(
            || format!("not within {CONVERGE_WATCH:?}"),
            |d| format!("after {:.2} s", secs(d))
        ),
        n - 1,
        RING_ECHOES as usize * n,
    );

    assert!(
        silent_at_start.is_empty(),
        "mesh of {n}: these daemons run but did not answer on their api socket within \
         {SOCKET_WAIT:?} of the last start: {silent_at_start:?}"
    );
    assert!(
        exited.is_empty(),
        "daemons exited during the test: {exited:?}"
    );
    assert!(
        converged.is_some_and(|d| d <= CONVERGE_LIMIT),
        "mesh of {n}: not every node saw every other (enrolled, session up, direct) within \
         {CONVERGE_LIMIT:?} of the last start (converged: {converged:?}; sessions up {up}/{pairs}, \
         direct {direct}, relay {relay}):\n{why}"
    );
    assert!(
        cpu_max <= IDLE_CPU_LIMIT,
        "mesh of {n}: an idle daemon used {cpu_max:.3} % of a core ({busiest}; mean {cpu_mean:.3} %), \
         more than {IDLE_CPU_LIMIT} %"
    );
    assert!(
        lost == 0,
        "mesh of {n}: the ring ping lost {lost} of {} echoes: {lossy_hops:?}",
        RING_ECHOES as usize * n
    );
}

/// The parsers of what the kernel and ping print, checked on fixed text
/// (these need no namespaces).
#[test]
fn proc_stat_and_ping_summaries_parse() {
    // A command name with a space and a parenthesis; utime 1234, stime 56.
    let stat = "4242 (vine d) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 56 0 0 20 0 6 0 100 0 0";
    assert_eq!(stat_cpu_ticks(stat), Some(1290));
    assert_eq!(stat_cpu_ticks("4242 (vine) S 1"), None);
    assert_eq!(stat_cpu_ticks(""), None);
    let ok = "PING 10.42.1.1 (10.42.1.1) 56(84) bytes of data.\n\n--- 10.42.1.1 ping statistics ---\n\
              3 packets transmitted, 3 received, 0% packet loss, time 402ms\n\
              rtt min/avg/max/mdev = 0.100/0.200/0.300/0.050 ms\n";
    assert_eq!(echoes_received(ok), 3);
    let lossy = "--- 10.42.1.1 ping statistics ---\n\
                 3 packets transmitted, 1 received, 66.6667% packet loss, time 2003ms\n";
    assert_eq!(echoes_received(lossy), 1);
    let none = "--- 10.42.1.1 ping statistics ---\n\
                3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms\n";
    assert_eq!(echoes_received(none), 0);
    assert_eq!(
        echoes_received("ping: connect: Network is unreachable\n"),
        0
    );
}
