//! Two real vine daemons in two network namespaces joined by a veth pair
//! (underlay 192.0.2.0/24): identities and configs made with the CLI,
//! daemons started with `vine daemon start`, ping both ways over the
//! overlay, a TCP transfer verified byte for byte, diagnostics that agree,
//! withdrawal on stop, and nothing left behind. Every namespace, process and
//! file is removed even when an assertion fails (the lab cleans up on drop).

mod common;

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::{Node, VINE, kernel_routes, ok, ping, s, start, tcp_transfer};
use vine_lab::netns::{Host, Lab, wait_for};

fn make_node(
    lab: &mut Lab,
    root: &Path,
    name: &str,
    overlay: [u8; 4],
    underlay: [u8; 4],
    host: Host,
) -> Node {
    common::make_node(
        lab,
        root,
        name,
        Ipv4Addr::from(overlay),
        Ipv4Addr::from(underlay),
        host,
    )
}

fn append(node: &Node, text: &str) {
    node.append(text);
}

fn export(lab: &Lab, node: &Node) -> String {
    node.export(lab)
}

fn peer_id(_lab: &Lab, node: &Node) -> String {
    node.peer_id.clone()
}

#[test]
fn two_daemons_carry_ping_and_tcp_and_clean_up() {
    let t = tempfile::tempdir().expect("tempdir");
    // Enroll each other from export-public output; alpha bootstraps from beta.
    let (mut lab, a, b) = pair(t.path());
    let (ea, eb) = (export(&lab, &a), export(&lab, &b));
    append(&a, &eb);
    append(&b, &ea);
    for n in [&a, &b] {
        ok(n.vine(&lab, &["config", "validate"]), "validate");
    }
    start(&mut lab, &b);
    start(&mut lab, &a);

    // Ping both ways over the overlay.
    assert!(
        wait_for(Duration::from_secs(15), || ping(&lab, &a, b.overlay)),
        "alpha cannot ping beta over the overlay\nalpha routes:\n{}\nlog:\n{}",
        kernel_routes(&lab, &a),
        fs::read_to_string(a.run_dir().join("vine.log")).unwrap_or_default()
    );
    assert!(
        wait_for(Duration::from_secs(10), || ping(&lab, &b, a.overlay)),
        "beta cannot ping alpha"
    );

    // A 4 MiB TCP transfer, verified byte for byte.
    assert!(
        tcp_transfer(&lab, &a, &b, 5001, 4 << 20),
        "4 MiB over TCP from alpha to beta arrived short or corrupted"
    );

    // Diagnostics agree with what happened.
    let peers = a.json(&lab, "peers");
    let text = peers.to_string();
    assert!(text.contains(&peer_id(&lab, &b)), "{text}");
    let routes = a.json(&lab, "routes").to_string();
    assert!(routes.contains("10.42.1.0/24"), "{routes}");
    let sessions = a.json(&lab, "sessions").to_string();
    assert!(sessions.contains("direct"), "{sessions}");
    let counters = a.json(&lab, "counters");
    let sent = counters["data"]["packets_sent"].as_u64().unwrap_or(0);
    assert!(sent >= 100, "counters: {counters}");
    // IPv6 is off on the TUN, so the kernel puts no IPv6 noise into it.
    assert_eq!(
        counters["data"]["drops"]["malformed"].as_u64().unwrap_or(0),
        0,
        "counters: {counters}"
    );
    assert!(kernel_routes(&lab, &a).contains("10.42.1.0/24"));
    // `vine ping` sends real probes over the path and reports each RTT.
    let p = ok(
        a.vine(&lab, &["ping", &b.overlay.to_string(), "--format", "json"]),
        "vine ping",
    );
    let p: serde_json::Value = serde_json::from_str(&p).expect("ping json");
    assert_eq!(p["class"], "direct", "{p}");
    let probes = p["probes"].as_array().expect("probes");
    assert_eq!(probes.len(), 3, "{p}");
    assert!(probes.iter().all(|r| r["rtt_us"].as_u64().is_some()), "{p}");

    // Stopping beta withdraws its route from alpha and leaves nothing behind.
    ok(b.vine(&lab, &["daemon", "stop"]), "daemon stop");
    assert!(
        wait_for(Duration::from_secs(5), || !kernel_routes(&lab, &a)
            .contains("10.42.1.0/24")),
        "alpha still routes beta's prefix after beta stopped:\n{}",
        kernel_routes(&lab, &a)
    );
    for f in ["vine.sock", "vine.pid"] {
        assert!(!b.run_dir().join(f).exists(), "{f} left behind");
    }
    let links =
        String::from_utf8_lossy(&lab.exec(&b.host, "ip", &["link", "show"]).stdout).into_owned();
    assert!(!links.contains("vine0"), "TUN left behind: {links}");
    let routes_b = kernel_routes(&lab, &b);
    assert!(
        !routes_b.contains("10.42."),
        "routes left behind: {routes_b}"
    );
    ok(a.vine(&lab, &["daemon", "stop"]), "daemon stop alpha");
}

fn pid_of(node: &Node) -> i32 {
    node.pid()
}

fn counters(lab: &Lab, node: &Node) -> serde_json::Value {
    node.counters(lab)
}

/// Two namespaces on one veth, alpha and beta configured to know each
/// other; returns (lab, alpha, beta). Daemons are not started.
fn pair(t: &Path) -> (Lab, Node, Node) {
    let mut lab = Lab::new();
    let ha = lab.host("alpha");
    let hb = lab.host("beta");
    lab.link(
        &ha,
        Ipv4Addr::new(192, 0, 2, 1),
        &hb,
        Ipv4Addr::new(192, 0, 2, 2),
        24,
    );
    let a = make_node(&mut lab, t, "alpha", [10, 42, 0, 1], [192, 0, 2, 1], ha);
    let b = make_node(&mut lab, t, "beta", [10, 42, 1, 1], [192, 0, 2, 2], hb);
    let boot = format!(
        "[[bootstrap_peers]]\npeer_id = \"{}\"\naddress = \"udp://{}:4100\"\n",
        peer_id(&lab, &b),
        b.underlay
    );
    append(&a, &boot);
    (lab, a, b)
}

#[test]
fn strangers_and_wrong_prefixes_are_refused_and_counted() {
    let t = tempfile::tempdir().expect("tempdir");
    let (mut lab, a, b) = pair(t.path());
    // beta is enrolled by alpha for 10.42.1.0/24 but its own config claims
    // 10.42.9.0/24; alpha allowlists beta, beta allowlists alpha.
    append(&a, &export(&lab, &b));
    append(&b, &export(&lab, &a));
    let cfg = fs::read_to_string(&b.config).expect("read");
    fs::write(
        &b.config,
        cfg.replace("address = \"10.42.1.1\"", "address = \"10.42.9.1\""),
    )
    .expect("write");
    // A third node, carol, is not on anyone's allowlist.
    let hc = lab.host("carol");
    lab.link(
        &a.host,
        Ipv4Addr::new(198, 51, 100, 1),
        &hc,
        Ipv4Addr::new(198, 51, 100, 2),
        24,
    );
    let c = make_node(
        &mut lab,
        t.path(),
        "carol",
        [10, 42, 2, 1],
        [198, 51, 100, 2],
        hc,
    );
    append(&c, &export(&lab, &a));
    append(
        &c,
        &format!(
            "[[bootstrap_peers]]\npeer_id = \"{}\"\naddress = \"udp://198.51.100.1:4100\"\n",
            peer_id(&lab, &a)
        ),
    );
    for n in [&a, &b, &c] {
        start(&mut lab, n);
    }
    assert!(
        wait_for(Duration::from_secs(15), || {
            let k = counters(&lab, &a);
            k["membership_rejections"]["prefix_mismatch"]
                .as_u64()
                .unwrap_or(0)
                >= 1
                && k["drops"]["unknown_sender"].as_u64().unwrap_or(0) >= 1
        }),
        "alpha did not refuse and count: {}",
        counters(&lab, &a)
    );
    let routes = kernel_routes(&lab, &a);
    assert!(
        !routes.contains("10.42.9.0/24") && !routes.contains("10.42.1.0/24"),
        "{routes}"
    );
    assert!(
        !routes.contains("10.42.2.0/24"),
        "the stranger got a route: {routes}"
    );
    assert!(!ping(&lab, &c, a.overlay), "the stranger reached alpha");
}

#[test]
fn kill_9_then_restart_recovers() {
    let t = tempfile::tempdir().expect("tempdir");
    let (mut lab, a, b) = pair(t.path());
    append(&a, &export(&lab, &b));
    append(&b, &export(&lab, &a));
    start(&mut lab, &b);
    start(&mut lab, &a);
    assert!(
        wait_for(Duration::from_secs(15), || ping(&lab, &a, b.overlay)),
        "no initial ping"
    );
    let pid = pid_of(&a);
    ok(
        lab.exec(&a.host, "kill", &["-9", &pid.to_string()]),
        "kill -9",
    );
    assert!(wait_for(Duration::from_secs(5), || !Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()));
    // The pidfile is stale now; start must notice and recover.
    start(&mut lab, &a);
    assert!(
        wait_for(Duration::from_secs(15), || ping(&lab, &a, b.overlay)),
        "no ping after restart; log:\n{}",
        fs::read_to_string(a.run_dir().join("vine.log")).unwrap_or_default()
    );
}

#[test]
fn sighup_enrolls_a_new_peer_and_survives_a_broken_config() {
    let t = tempfile::tempdir().expect("tempdir");
    let (mut lab, a, b) = pair(t.path());
    // beta knows alpha, but alpha does not list beta yet.
    append(&b, &export(&lab, &a));
    start(&mut lab, &b);
    start(&mut lab, &a);
    assert!(
        !wait_for(Duration::from_secs(3), || ping(&lab, &a, b.overlay)),
        "ping before enrollment"
    );
    append(&a, &export(&lab, &b));
    let pid = pid_of(&a).to_string();
    ok(lab.exec(&a.host, "kill", &["-HUP", &pid]), "SIGHUP");
    assert!(
        wait_for(Duration::from_secs(15), || ping(&lab, &a, b.overlay)),
        "reload did not enroll beta; log:\n{}",
        fs::read_to_string(a.run_dir().join("vine.log")).unwrap_or_default()
    );
    // A broken config is refused; the daemon keeps running on the old one.
    let good = fs::read_to_string(&a.config).expect("read");
    let log = || fs::read_to_string(a.run_dir().join("vine.log")).unwrap_or_default();
    let reloads_before = log().matches("reload").count();
    fs::write(&a.config, format!("{good}\n[tun]\nmtu = \"big\"\n")).expect("write");
    ok(lab.exec(&a.host, "kill", &["-HUP", &pid]), "SIGHUP");
    assert!(
        wait_for(Duration::from_secs(5), || log().matches("reload").count()
            > reloads_before),
        "the rejected reload was not logged:\n{}",
        log()
    );
    assert_eq!(pid_of(&a).to_string(), pid, "still the same daemon");
    assert!(
        ping(&lab, &a, b.overlay),
        "traffic stopped after a rejected reload"
    );
    // The CLI needs a readable config to find the daemon; restore it.
    fs::write(&a.config, good).expect("restore");
    let status = a.json(&lab, "status");
    assert_eq!(status["data"]["phase"], "running");
    assert_eq!(status["data"]["pid"].to_string(), pid);
}

/// `vine daemon start` for `n` with `var` (NAME=value) in its environment.
fn start_with(lab: &mut Lab, n: &Node, var: &str) {
    ok(
        lab.exec(
            &n.host,
            "env",
            &[var, VINE, "daemon", "start", "-c", s(&n.config)],
        ),
        &format!("daemon start with {var}"),
    );
    lab.track_pid(n.pid());
}

/// Once `a` pings `b`: 16 MiB of TCP each way (ports `port` and `port + 1`)
/// arrive intact, and on both sides the dataplane carried the bulk —
/// thousands of packets counted without any drop for a bad packet.
fn bulk_both_ways(lab: &Lab, a: &Node, b: &Node, port: u16) {
    assert!(
        wait_for(Duration::from_secs(15), || ping(lab, a, b.overlay)),
        "alpha cannot ping beta"
    );
    assert!(
        tcp_transfer(lab, a, b, port, 16 << 20),
        "16 MiB alpha → beta corrupted"
    );
    assert!(
        tcp_transfer(lab, b, a, port + 1, 16 << 20),
        "16 MiB beta → alpha corrupted"
    );
    for n in [a, b] {
        let c = n.json(lab, "counters");
        assert!(
            c["data"]["packets_received"].as_u64().unwrap_or(0) > 1000,
            "{c}"
        );
        for reason in ["malformed", "decrypt_failed", "unauthorized_peer"] {
            assert_eq!(c["data"]["drops"][reason].as_u64().unwrap_or(0), 0, "{c}");
        }
    }
}

/// One side runs with every offload (TUN TSO/GRO, UDP GSO/GRO), the other
/// with none (`VINE_OFFLOAD=0`, as on a kernel without them): both
/// directions still carry TCP intact, and each daemon logged what it uses.
#[test]
fn offloaded_and_plain_daemons_interoperate() {
    let t = tempfile::tempdir().expect("tempdir");
    let (mut lab, a, b) = pair(t.path());
    let (ea, eb) = (export(&lab, &a), export(&lab, &b));
    append(&a, &eb);
    append(&b, &ea);
    // beta: no offloads.
    start_with(&mut lab, &b, "VINE_OFFLOAD=0");
    start(&mut lab, &a);
    bulk_both_ways(&lab, &a, &b, 5002);
    let (log_a, log_b) = (a.log(), b.log());
    assert!(log_a.contains("offloads=vnet_hdr"), "alpha log:\n{log_a}");
    assert!(log_b.contains("offloads=none"), "beta log:\n{log_b}");
}

/// The two shapes of the data plane — one thread for both directions and a
/// thread per direction (`VINE_DATAPLANE_THREADS`, chosen by CPU count
/// otherwise) — carry TCP intact both ways between each other, and each
/// daemon says which it runs.
#[test]
fn one_thread_and_two_thread_data_planes_interoperate() {
    let t = tempfile::tempdir().expect("tempdir");
    let (mut lab, a, b) = pair(t.path());
    let (ea, eb) = (export(&lab, &a), export(&lab, &b));
    append(&a, &eb);
    append(&b, &ea);
    start_with(&mut lab, &b, "VINE_DATAPLANE_THREADS=2");
    start_with(&mut lab, &a, "VINE_DATAPLANE_THREADS=1");
    bulk_both_ways(&lab, &a, &b, 5004);
    let (log_a, log_b) = (a.log(), b.log());
    assert!(
        log_a.contains("one thread for both directions"),
        "alpha log:\n{log_a}"
    );
    assert!(
        log_b.contains("a thread per direction"),
        "beta log:\n{log_b}"
    );
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

#[test]
fn a_restarted_daemon_carries_ping_both_ways_within_a_second() {
    let t = tempfile::tempdir().expect("tempdir");
    let (mut lab, a, b) = pair(t.path());
    append(&a, &export(&lab, &b));
    append(&b, &export(&lab, &a));
    start(&mut lab, &b);
    start(&mut lab, &a);
    assert!(
        wait_for(Duration::from_secs(15), || ping(&lab, &a, b.overlay)
            && ping(&lab, &b, a.overlay)),
        "no initial ping"
    );
    let mut results = Vec::new();
    for signal in ["-TERM", "-9"] {
        // alpha restarts (it knows beta's address and reconnects); beta
        // survives with its old session.
        let pid = pid_of(&a);
        ok(
            lab.exec(&a.host, "kill", &[signal, &pid.to_string()]),
            "kill",
        );
        assert!(
            wait_for(Duration::from_secs(10), || !Path::new(&format!(
                "/proc/{pid}"
            ))
            .exists()),
            "alpha did not exit on kill {signal}"
        );
        start(&mut lab, &a);
        // Measured from the new daemon answering on its control socket.
        assert!(
            wait_for(Duration::from_secs(5), || a
                .vine(&lab, &["status"])
                .status
                .success()),
            "the restarted daemon does not answer"
        );
        let t0 = std::time::Instant::now();
        let to_alpha =
            common::time_until(Duration::from_secs(15), || quick_ping(&lab, &b, a.overlay))
                .map(|_| t0.elapsed());
        let to_beta =
            common::time_until(Duration::from_secs(15), || quick_ping(&lab, &a, b.overlay))
                .map(|_| t0.elapsed());
        results.push(format!(
            "kill {signal} + start: beta->alpha {:?} s, alpha->beta {:?} s",
            to_alpha.map(common::secs),
            to_beta.map(common::secs)
        ));
        for (dir, took) in [("beta->alpha", to_alpha), ("alpha->beta", to_beta)] {
            assert!(
                took.is_some_and(|d| d <= Duration::from_secs(1)),
                "kill {signal} + start: {dir} ping after {took:?}\nlog:\n{}",
                a.log()
            );
        }
    }
    println!("ping after a restart:\n  {}", results.join("\n  "));
}
