//! Workloads on the overlay: two real daemons in two namespaces (underlay
//! 192.0.2.0/24), workload namespaces attached with `vine attach`, traffic
//! between workloads of different nodes over the overlay and between
//! workloads of one node, bad attach requests refused with nothing changed,
//! a daemon killed with `kill -9` and started again (same addresses, no
//! duplicate links), 200 attach/detach cycles without a leak, and a clean
//! stop that leaves every link, route and sysctl as it was before the
//! daemon started. The lab removes every namespace and process it made,
//! even when an assertion fails.

mod common;

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::{Node, VINE, ok, start};
use serde_json::Value;
use vine_lab::netns::{Host, Lab, wait_for};

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
    let a = common::make_node(
        &lab,
        t,
        "alpha",
        Ipv4Addr::new(10, 42, 0, 1),
        Ipv4Addr::new(192, 0, 2, 1),
        ha,
    );
    let b = common::make_node(
        &lab,
        t,
        "beta",
        Ipv4Addr::new(10, 42, 1, 1),
        Ipv4Addr::new(192, 0, 2, 2),
        hb,
    );
    let (ea, eb) = (a.export(&lab), b.export(&lab));
    a.append(&eb);
    b.append(&ea);
    a.append(&b.bootstrap_entry());
    (lab, a, b)
}

/// What vine may change in a node's namespace: interface names, routes,
/// `ip_forward`.
#[derive(Debug, PartialEq)]
struct HostState {
    links: Vec<String>,
    routes: Value,
    ip_forward: String,
}

fn host_state(lab: &Lab, host: &Host) -> HostState {
    let links: Value =
        serde_json::from_slice(&lab.exec(host, "ip", &["-j", "link"]).stdout).expect("ip -j link");
    let mut links: Vec<String> = links
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
        .collect();
    links.sort();
    let routes = serde_json::from_slice(&lab.exec(host, "ip", &["-j", "route"]).stdout)
        .expect("ip -j route");
    let ip_forward = lab.run_in(host, || {
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .expect("ip_forward")
            .trim()
            .to_owned()
    });
    HostState {
        links,
        routes,
        ip_forward,
    }
}

fn vine_links(state: &HostState) -> Vec<&String> {
    state.links.iter().filter(|l| l.starts_with("vw")).collect()
}

fn netns_path(host: &Host) -> String {
    format!("/run/netns/{}", host.netns)
}

/// `vine attach NAME --netns PATH` on `node`; the workload's address.
fn attach(lab: &Lab, node: &Node, name: &str, host: &Host) -> Ipv4Addr {
    let out = ok(
        node.vine(
            lab,
            &[
                "attach",
                name,
                "--netns",
                &netns_path(host),
                "--format",
                "json",
            ],
        ),
        "attach",
    );
    let v: Value = serde_json::from_str(&out).expect("attach json");
    v["address"]
        .as_str()
        .expect("address")
        .parse()
        .expect("an IPv4 address")
}

fn workloads(lab: &Lab, node: &Node) -> Vec<Value> {
    node.json(lab, "workloads")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn ping_from(lab: &Lab, host: &Host, to: Ipv4Addr) -> bool {
    lab.exec(host, "ping", &["-c", "1", "-W", "1", &to.to_string()])
        .status
        .success()
}

fn refused(lab: &Lab, node: &Node, args: &[&str], says: &str) {
    let out = node.vine(lab, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{args:?} should fail, it printed {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(says),
        "{args:?}: the error should say {says:?}, it says: {stderr}"
    );
}

/// `dig +short NAME` (through the netns's resolv.conf, or `@server`); the
/// answer lines, or `status: X` when there is no answer.
fn dig(lab: &Lab, host: &Host, name: &str, server: Option<Ipv4Addr>) -> String {
    let at = server.map(|s| format!("@{s}"));
    let mut args = vec!["+time=1", "+tries=2", name];
    if let Some(at) = &at {
        args.insert(0, at);
    }
    let out = String::from_utf8_lossy(&lab.exec(host, "dig", &args).stdout).into_owned();
    match out.lines().find(|l| l.contains("status:")) {
        Some(l) if !l.contains("NOERROR") => l
            .split("status: ")
            .nth(1)
            .and_then(|x| x.split(',').next())
            .map(|x| format!("status: {x}"))
            .unwrap_or_default(),
        _ => String::from_utf8_lossy(
            &lab.exec(host, "dig", &[&["+short"], args.as_slice()].concat())
                .stdout,
        )
        .trim()
        .to_owned(),
    }
}

/// Removes `/etc/netns/NAME` of the lab's workload namespaces (made by the
/// daemon under test), should a failed test leave them.
struct EtcNetns(Vec<String>);

impl Drop for EtcNetns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = fs::remove_dir_all(format!("/etc/netns/{n}"));
        }
    }
}

fn daemon_pid_fds(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn workloads_reach_each_other_across_the_overlay_and_every_host_change_is_undone() {
    let t = tempfile::tempdir().expect("tempdir");
    let (mut lab, a, b) = pair(t.path());
    let before_a = host_state(&lab, &a.host);
    let before_b = host_state(&lab, &b.host);
    start(&mut lab, &b);
    start(&mut lab, &a);
    assert!(
        wait_for(Duration::from_secs(15), || common::ping(
            &lab, &a, b.overlay
        )),
        "alpha cannot ping beta over the overlay\n{}",
        a.log()
    );

    let wa1 = lab.host("wa1");
    let wa2 = lab.host("wa2");
    let wb1 = lab.host("wb1");
    let _etc = EtcNetns(vec![
        wa1.netns.clone(),
        wa2.netns.clone(),
        wb1.netns.clone(),
    ]);
    let addr_a1 = attach(&lab, &a, "web", &wa1);
    let addr_a2 = attach(&lab, &a, "db", &wa2);
    let addr_b1 = attach(&lab, &b, "cache", &wb1);
    for (addr, node) in [(addr_a1, &a), (addr_a2, &a), (addr_b1, &b)] {
        let prefix = u32::from(node.overlay) & 0xffff_ff00;
        assert_eq!(
            u32::from(addr) & 0xffff_ff00,
            prefix,
            "{addr} in {}'s /24",
            node.name
        );
        assert_ne!(
            addr, node.overlay,
            "a workload never gets the node's own address"
        );
        assert_ne!(u32::from(addr) & 0xff, 0, "never the network address");
        assert_ne!(u32::from(addr) & 0xff, 255, "never the broadcast address");
    }
    assert_ne!(addr_a1, addr_a2);
    let listed = workloads(&lab, &a);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let web = listed
        .iter()
        .find(|w| w["name"] == "web")
        .expect("web listed");
    assert_eq!(web["address"], addr_a1.to_string());
    assert_eq!(web["netns"], netns_path(&wa1));
    assert!(web["since"].as_u64().is_some_and(|s| s > 0), "{web}");
    let hostif = web["host_ifname"].as_str().expect("host_ifname").to_owned();
    assert!(hostif.starts_with("vw") && hostif.len() <= 15, "{hostif}");
    let text = ok(a.vine(&lab, &["workloads"]), "workloads");
    assert!(
        text.contains("web") && text.contains(&addr_a1.to_string()),
        "{text}"
    );

    // Inside the workload: eth0 with its /32 and a default route via the node.
    let inside =
        String::from_utf8_lossy(&lab.exec(&wa1, "ip", &["-4", "addr", "show", "eth0"]).stdout)
            .into_owned();
    assert!(inside.contains(&format!("{addr_a1}/32")), "{inside}");
    let routes = String::from_utf8_lossy(&lab.exec(&wa1, "ip", &["route"]).stdout).into_owned();
    assert!(
        routes.contains(&format!("default via {}", a.overlay)),
        "{routes}"
    );

    // Across the overlay both ways, to the other node, and on one node.
    assert!(
        wait_for(Duration::from_secs(10), || ping_from(&lab, &wa1, addr_b1)),
        "web on alpha cannot reach cache on beta\nalpha:\n{}",
        a.log()
    );
    assert!(
        ping_from(&lab, &wb1, addr_a1),
        "cache on beta cannot reach web on alpha"
    );
    assert!(
        ping_from(&lab, &wb1, a.overlay),
        "a workload reaches another node"
    );
    assert!(
        ping_from(&lab, &wa1, addr_a2),
        "workloads of one node reach each other"
    );
    assert!(
        common::ping(&lab, &b, addr_a1),
        "a node reaches another node's workload"
    );

    // Names: the same answers from every node, through the workload's own
    // resolv.conf (the node), and a real resolver call (ping by name).
    let resolv = fs::read_to_string(format!("/etc/netns/{}/resolv.conf", wa1.netns))
        .expect("the workload's resolv.conf");
    assert!(
        resolv.contains(&format!("nameserver {}", a.overlay)),
        "{resolv}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || dig(
            &lab,
            &wa1,
            "cache.beta.vine",
            None
        ) == addr_b1.to_string()),
        "cache.beta.vine from web: {}",
        dig(&lab, &wa1, "cache.beta.vine", None)
    );
    for (name, want) in [
        ("web.alpha.vine", addr_a1.to_string()),
        ("db.alpha.vine", addr_a2.to_string()),
        ("cache.beta.vine", addr_b1.to_string()),
        ("alpha.vine", a.overlay.to_string()),
        ("beta.vine", b.overlay.to_string()),
        ("nope.alpha.vine", "status: NXDOMAIN".to_owned()),
        ("example.com", "status: REFUSED".to_owned()),
    ] {
        for (host, server) in [(&wa1, a.overlay), (&wb1, b.overlay)] {
            assert!(
                wait_for(Duration::from_secs(10), || dig(
                    &lab,
                    host,
                    name,
                    Some(server)
                ) == want),
                "{name} @{server}: {} (want {want})",
                dig(&lab, host, name, Some(server))
            );
        }
    }
    let tcp = String::from_utf8_lossy(
        &lab.exec(
            &wb1,
            "dig",
            &[
                "+tcp",
                "+short",
                &format!("@{}", b.overlay),
                "web.alpha.vine",
            ],
        )
        .stdout,
    )
    .trim()
    .to_owned();
    assert_eq!(tcp, addr_a1.to_string(), "over TCP");
    assert!(
        lab.exec(&wa1, "ping", &["-c", "1", "-W", "2", "cache.beta.vine"])
            .status
            .success(),
        "ping by name from web to cache"
    );

    // Bad requests: refused with the fix, nothing changed.
    let during = host_state(&lab, &a.host);
    let junk = t.path().join("not-a-netns");
    fs::write(&junk, "x").expect("write");
    let wa1_path = netns_path(&wa1);
    refused(
        &lab,
        &a,
        &["attach", "web", "--netns", &wa1_path],
        "already attached",
    );
    refused(
        &lab,
        &a,
        &["attach", "other", "--netns", junk.to_str().expect("utf-8")],
        "is not a network namespace",
    );
    refused(
        &lab,
        &a,
        &["attach", "Not_A_Label", "--netns", &wa1_path],
        "workload name",
    );
    refused(
        &lab,
        &a,
        &["attach", "ghost", "--netns", "/run/netns/vine-test-absent"],
        "cannot open",
    );
    refused(&lab, &a, &["detach", "nobody"], "no workload is attached");
    assert_eq!(
        host_state(&lab, &a.host),
        during,
        "a refused request changed the host"
    );
    assert_eq!(workloads(&lab, &a).len(), 2);

    // Detach: its link goes, the other workload keeps working.
    ok(a.vine(&lab, &["detach", "db"]), "detach");
    assert_eq!(workloads(&lab, &a).len(), 1);
    for (host, server) in [(&wa1, a.overlay), (&wb1, b.overlay)] {
        assert!(
            wait_for(Duration::from_secs(10), || dig(
                &lab,
                host,
                "db.alpha.vine",
                Some(server)
            ) == "status: NXDOMAIN"),
            "db.alpha.vine after detach @{server}: {}",
            dig(&lab, host, "db.alpha.vine", Some(server))
        );
    }
    assert!(
        !Path::new(&format!("/etc/netns/{}", wa2.netns)).exists(),
        "detach removes the resolver files vine made"
    );
    assert_eq!(vine_links(&host_state(&lab, &a.host)).len(), 1);
    assert!(ping_from(&lab, &wb1, addr_a1));

    // kill -9 with a workload attached, then start again: same address,
    // one link, traffic back.
    let pid = a.pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    assert!(
        wait_for(Duration::from_secs(5), || !Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()
            || fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))),
        "the killed daemon is still there"
    );
    let doctor: Value = serde_json::from_str(&String::from_utf8_lossy(
        &a.vine(&lab, &["doctor", "--format", "json"]).stdout,
    ))
    .expect("doctor json");
    let leftovers = doctor["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "workload-leftovers")
        .expect("a workload-leftovers check")
        .clone();
    assert_eq!(
        leftovers["ok"], false,
        "doctor reports what the killed daemon left: {leftovers}"
    );
    assert!(
        leftovers["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&hostif)),
        "{leftovers}"
    );
    start(&mut lab, &a);
    let listed = workloads(&lab, &a);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        listed[0]["address"],
        addr_a1.to_string(),
        "the same address after a crash"
    );
    assert_eq!(
        vine_links(&host_state(&lab, &a.host)),
        vec![&hostif],
        "exactly one link for web after the restart"
    );
    assert!(
        wait_for(Duration::from_secs(10), || ping_from(&lab, &wa1, addr_b1)),
        "web on alpha cannot reach cache on beta after the restart\n{}",
        a.log()
    );

    // 200 attach/detach cycles: no lease, link or descriptor left.
    let pid = a.pid();
    let fds = daemon_pid_fds(pid);
    for _ in 0..200 {
        attach(&lab, &a, "cycle", &wa2);
        ok(a.vine(&lab, &["detach", "cycle"]), "detach cycle");
    }
    assert_eq!(workloads(&lab, &a).len(), 1, "leases leaked");
    assert_eq!(
        vine_links(&host_state(&lab, &a.host)).len(),
        1,
        "links leaked"
    );
    assert_eq!(daemon_pid_fds(pid), fds, "descriptors leaked");
    let leases = fs::read_to_string(a.dir.join("leases.toml")).expect("lease file");
    assert_eq!(leases.matches("[[lease]]").count(), 1, "{leases}");

    // A clean stop leaves each node's namespace as it was before vine.
    for n in [&a, &b] {
        ok(n.vine(&lab, &["daemon", "stop"]), "daemon stop");
    }
    assert_eq!(host_state(&lab, &a.host), before_a, "alpha's host changed");
    assert!(
        !Path::new(&format!("/etc/netns/{}", wa1.netns)).exists(),
        "a clean stop removes the resolver files vine made"
    );
    assert_eq!(host_state(&lab, &b.host), before_b, "beta's host changed");
    let journal = fs::read_to_string(a.dir.join("host-changes.jsonl")).unwrap_or_default();
    assert!(
        journal.trim().is_empty(),
        "changes left unreverted: {journal}"
    );
    let _ = VINE;
}
