//! Attaching real namespaces: the "host" is a private namespace made by
//! [`crate::netns::in_netns`]; each workload is a thread that unshared its
//! own and serves closures until dropped.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::net::UdpSocket;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::sched::unshare;

use super::*;
use crate::netns::in_netns as in_private_netns;

type Job = Box<dyn FnOnce() + Send>;

/// A thread in a network namespace of its own, running jobs.
struct Workload {
    path: PathBuf,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Workload {
    fn new() -> Self {
        let (path_tx, path_rx) = mpsc::channel();
        let (jobs, jobs_rx) = mpsc::channel::<Job>();
        let thread = thread::spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET).unwrap();
            let own = File::open("/proc/thread-self/ns/net").unwrap();
            path_tx
                .send(PathBuf::from(format!(
                    "/proc/{}/fd/{}",
                    std::process::id(),
                    own.as_raw_fd()
                )))
                .unwrap();
            for job in jobs_rx {
                job();
            }
        });
        Self {
            path: path_rx.recv().unwrap(),
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }

    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .unwrap()
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .unwrap();
        rx.recv().unwrap()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn plan(name: &str, address: &str, netns: &Path) -> Plan {
    Plan {
        name: name.parse().unwrap(),
        address: address.parse().unwrap(),
        node_address: "10.42.1.1".parse().unwrap(),
        netns: netns.to_owned(),
        mtu: 1400,
    }
}

#[test]
fn names_are_deterministic_and_short() {
    let a = host_ifname(&"web".parse().unwrap());
    assert_eq!(a, host_ifname(&"WEB".parse().unwrap()));
    assert_ne!(a, host_ifname(&"web2".parse().unwrap()));
    assert_eq!(a.len(), 14);
    assert!(is_workload_ifname(&a));
    assert!(is_workload_ifname(&peer_ifname(&"web".parse().unwrap())));
    assert!(!is_workload_ifname("eth0") && !is_workload_ifname("vwxyz"));
}

#[test]
fn a_workload_reaches_the_node_and_detach_removes_everything() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j")).unwrap();
        let w = Workload::new();
        let attached = attach(&mut journal, &plan("web", "10.42.1.7", &w.path)).unwrap();
        assert_eq!(
            journal.changes(),
            [Change::Link {
                name: attached.host_ifname.clone()
            }]
        );
        assert_eq!(
            workload_links().unwrap(),
            std::slice::from_ref(&attached.host_ifname)
        );

        // A datagram from the workload's address to the node's and back:
        // address, ARP for the gateway, both routes, both directions.
        let node = UdpSocket::bind("10.42.1.1:0").unwrap();
        node.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let node_port = node.local_addr().unwrap().port();
        let echoed = {
            let sent = w.run(move || {
                let s = UdpSocket::bind("10.42.1.7:0").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.send_to(b"hello", ("10.42.1.1", node_port)).unwrap();
                s
            });
            let mut buf = [0u8; 16];
            let (n, from) = node.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hello");
            assert_eq!(from.ip().to_string(), "10.42.1.7");
            node.send_to(b"back", from).unwrap();
            w.run(move || {
                let mut buf = [0u8; 16];
                let n = sent.recv(&mut buf).unwrap();
                buf[..n].to_vec()
            })
        };
        assert_eq!(echoed, b"back");
        let inside = w.run(|| {
            let mut nl = Netlink::new().unwrap();
            let eth0 = nl.link("eth0").unwrap().unwrap();
            (eth0.mtu, nl.addresses(eth0.index).unwrap())
        });
        assert_eq!(inside.0, Some(1400));
        assert_eq!(inside.1, [("10.42.1.7".parse().unwrap(), 32)]);

        assert!(detach(&mut journal, &attached.host_ifname).unwrap());
        assert!(journal.changes().is_empty());
        assert!(workload_links().unwrap().is_empty());
        assert!(
            w.run(|| Netlink::new().unwrap().link("eth0").unwrap())
                .is_none()
        );
        assert!(
            !detach(&mut journal, &attached.host_ifname).unwrap(),
            "twice is harmless"
        );
    });
}

#[test]
fn two_workloads_reach_each_other() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j")).unwrap();
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap(); // private netns
        let (a, b) = (Workload::new(), Workload::new());
        attach(&mut journal, &plan("a", "10.42.1.2", &a.path)).unwrap();
        attach(&mut journal, &plan("b", "10.42.1.3", &b.path)).unwrap();
        let rx = b.run(|| {
            let s = UdpSocket::bind("10.42.1.3:4000").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        });
        a.run(|| {
            UdpSocket::bind("10.42.1.2:0")
                .unwrap()
                .send_to(b"hi b", "10.42.1.3:4000")
                .unwrap()
        });
        let got = b.run(move || {
            let mut buf = [0u8; 8];
            let (n, from) = rx.recv_from(&mut buf).unwrap();
            (buf[..n].to_vec(), from.ip().to_string())
        });
        assert_eq!(got, (b"hi b".to_vec(), "10.42.1.2".to_owned()));
    });
}

#[test]
fn bad_namespaces_change_nothing() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j")).unwrap();
        let not_ns = dir.path().join("plain");
        std::fs::write(&not_ns, "x").unwrap();
        let err = attach(&mut journal, &plan("w", "10.42.1.9", &not_ns)).unwrap_err();
        assert!(matches!(err, AttachError::NotNetns(_)), "{err}");
        assert!(err.to_string().contains("ip netns add"), "{err}");
        let err = attach(
            &mut journal,
            &plan("w", "10.42.1.9", &dir.path().join("missing")),
        )
        .unwrap_err();
        assert!(matches!(err, AttachError::OpenNetns { .. }), "{err}");
        let own = PathBuf::from("/proc/thread-self/ns/net");
        let err = attach(&mut journal, &plan("w", "10.42.1.9", &own)).unwrap_err();
        assert!(matches!(err, AttachError::OwnNetns(_)), "{err}");

        // A namespace that already has an eth0.
        let w = Workload::new();
        w.run(|| Netlink::new().unwrap().add_veth("eth0", "other0").unwrap());
        let err = attach(&mut journal, &plan("w", "10.42.1.9", &w.path)).unwrap_err();
        assert!(matches!(err, AttachError::NetnsHasEth0 { .. }), "{err}");
        assert!(journal.changes().is_empty());
        assert!(workload_links().unwrap().is_empty());
    });
}

#[test]
fn a_failure_half_way_rolls_back() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j")).unwrap();
        let w = Workload::new();
        // The workload address is already on the node: adding the route to
        // the workload fails after the pair exists and moved.
        let mut nl = Netlink::new().unwrap();
        let lo = nl.link("lo").unwrap().unwrap();
        nl.change_route(host_prefix("10.42.1.5".parse().unwrap()), lo.index, true)
            .unwrap();
        let err = attach(&mut journal, &plan("w", "10.42.1.5", &w.path)).unwrap_err();
        assert!(matches!(err, AttachError::Step { .. }), "{err}");
        assert!(journal.changes().is_empty());
        assert!(workload_links().unwrap().is_empty(), "host end deleted");
        assert!(
            w.run(|| Netlink::new().unwrap().link("eth0").unwrap())
                .is_none()
        );
    });
}
