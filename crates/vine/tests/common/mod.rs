//! Shared helpers for the tests that run real `vine` daemons in network
//! namespaces: nodes made with the CLI (`identity init`, `config init`,
//! `export-public`), daemons started with `vine daemon start` and tracked by
//! PID, and the live diagnostics read back as JSON.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use vine_lab::netns::{Host, Lab};

/// The binary under test.
pub const VINE: &str = env!("CARGO_BIN_EXE_vine");

/// A path as `&str` (temp paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// stdout of a command that must succeed.
pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One vine node: its namespace, files and addresses.
#[derive(Debug, Clone)]
pub struct Node {
    /// Name (also the `[node] name`).
    pub name: String,
    /// Its namespace.
    pub host: Host,
    /// Directory with its identity, config and runtime dir.
    pub dir: PathBuf,
    /// Config file.
    pub config: PathBuf,
    /// Overlay address (the prefix is its /24).
    pub overlay: Ipv4Addr,
    /// Underlay address of its namespace.
    pub underlay: Ipv4Addr,
    /// PeerId.
    pub peer_id: String,
}

impl Node {
    /// Runs `vine ARGS -c <config>` inside the node's namespace.
    pub fn vine(&self, lab: &Lab, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&["-c", s(&self.config)]);
        lab.exec(&self.host, VINE, &all)
    }

    /// `vine CMD --format json`, parsed.
    pub fn json(&self, lab: &Lab, cmd: &str) -> Value {
        let out = ok(self.vine(lab, &[cmd, "--format", "json"]), cmd);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{cmd}: {e}: {out}"))
    }

    /// The runtime directory.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The daemon log (background mode).
    pub fn log(&self) -> String {
        fs::read_to_string(self.run_dir().join("vine.log")).unwrap_or_default()
    }

    /// Appends `text` to the config.
    pub fn append(&self, text: &str) {
        let mut c = fs::read_to_string(&self.config).expect("read config");
        c.push('\n');
        c.push_str(text);
        fs::write(&self.config, c).expect("write config");
    }

    /// Replaces `from` with `to` in the config; panics if `from` is absent.
    pub fn edit(&self, from: &str, to: &str) {
        let c = fs::read_to_string(&self.config).expect("read config");
        assert!(c.contains(from), "{from:?} not in {}", self.name);
        fs::write(&self.config, c.replace(from, to)).expect("write config");
    }

    /// Opts this node in to relaying for others (`[node] act_as_relay`,
    /// which `vine config init` writes as `false`); idempotent.
    pub fn act_as_relay(&self) {
        let c = fs::read_to_string(&self.config).expect("read config");
        if !c.contains("act_as_relay = true") {
            self.edit("act_as_relay = false", "act_as_relay = true");
        }
    }

    /// This node's `export-public` entry for other nodes' allowlists.
    pub fn export(&self, lab: &Lab) -> String {
        ok(
            self.vine(lab, &["identity", "export-public"]),
            "export-public",
        )
    }

    /// A `[[bootstrap_peers]]` entry pointing at this node.
    pub fn bootstrap_entry(&self) -> String {
        format!(
            "[[bootstrap_peers]]\npeer_id = \"{}\"\naddress = \"udp://{}:4100\"\n",
            self.peer_id, self.underlay
        )
    }

    /// The daemon's PID from its pidfile.
    pub fn pid(&self) -> i32 {
        fs::read_to_string(self.run_dir().join("vine.pid"))
            .expect("pidfile")
            .trim()
            .parse()
            .expect("pid")
    }

    /// `counters` → `data`.
    pub fn counters(&self, lab: &Lab) -> Value {
        self.json(lab, "counters")["data"].clone()
    }

    /// `sessions` → `data` (one entry per peer).
    pub fn sessions(&self, lab: &Lab) -> Vec<Value> {
        self.json(lab, "sessions")["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The class of the preferred path to `peer`, as `vine sessions
    /// --format json` reports it.
    pub fn class_to(&self, lab: &Lab, peer: &Node) -> Option<String> {
        class_in(&self.sessions(lab), peer)
    }

    /// The per-peer counters of `peer` from `vine snapshot`.
    pub fn peer_counters(&self, lab: &Lab, peer: &Node) -> Value {
        let snap = self.json(lab, "snapshot");
        snap["data"]["node"]["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(snap["data"]["peers"].as_array().into_iter().flatten())
            .find(|p| p["peer_id"] == peer.peer_id.as_str())
            .map(|p| p["counters"].clone())
            .unwrap_or(Value::Null)
    }
}

/// The class of `peer`'s preferred path in a `sessions` list.
pub fn class_in(sessions: &[Value], peer: &Node) -> Option<String> {
    sessions
        .iter()
        .find(|x| x["peer_id"] == peer.peer_id.as_str())
        .and_then(|x| x["class"].as_str())
        .map(str::to_owned)
}

/// Makes a node in `host`: identity and config with the CLI, overlay
/// `overlay`/24, runtime dir under `root/name`. The daemon is not started.
pub fn make_node(
    lab: &Lab,
    root: &Path,
    name: &str,
    overlay: Ipv4Addr,
    underlay: Ipv4Addr,
    host: Host,
) -> Node {
    let dir = root.join(name);
    let identity = dir.join("identity");
    let config = dir.join("vine.toml");
    ok(
        lab.exec(
            &host,
            VINE,
            &["identity", "init", "--identity", s(&identity)],
        ),
        "identity init",
    );
    ok(
        lab.exec(
            &host,
            VINE,
            &[
                "config",
                "init",
                "-c",
                s(&config),
                "--identity",
                s(&identity),
                "--name",
                name,
                "--network-id",
                "lab-net",
                "--address",
                &format!("{overlay}/24"),
                "--runtime-dir",
                s(&dir.join("run")),
            ],
        ),
        "config init",
    );
    let out = ok(
        lab.exec(
            &host,
            VINE,
            &[
                "identity",
                "export-public",
                "-c",
                s(&config),
                "--format",
                "json",
            ],
        ),
        "export-public json",
    );
    let v: Value = serde_json::from_str(&out).expect("json");
    Node {
        name: name.to_owned(),
        host,
        dir,
        config,
        overlay,
        underlay,
        peer_id: v["peer_id"].as_str().expect("peer_id").to_owned(),
    }
}

/// `vine daemon start`, and the PID registered with the lab.
pub fn start(lab: &mut Lab, node: &Node) {
    ok(node.vine(lab, &["daemon", "start"]), "daemon start");
    lab.track_pid(node.pid());
}

/// One ICMP echo over the overlay from `from` to `to`, 1 s timeout.
pub fn ping(lab: &Lab, from: &Node, to: Ipv4Addr) -> bool {
    lab.exec(&from.host, "ping", &["-c", "1", "-W", "1", &to.to_string()])
        .status
        .success()
}

/// The kernel routes of a node's namespace.
pub fn kernel_routes(lab: &Lab, node: &Node) -> String {
    String::from_utf8_lossy(&lab.exec(&node.host, "ip", &["route", "show"]).stdout).into_owned()
}

/// Every node allowlists every other (`relay_capable` only for `relays`,
/// which also opt in with `act_as_relay = true`) and bootstraps from
/// `bootstrap`.
pub fn full_mesh(lab: &Lab, nodes: &[&Node], relays: &[&Node], bootstrap: &Node) {
    for r in relays {
        r.act_as_relay();
    }
    let exports: Vec<String> = nodes
        .iter()
        .map(|n| {
            let e = n.export(lab);
            if relays.iter().any(|r| r.name == n.name) {
                e.replace("relay_capable = false", "relay_capable = true")
            } else {
                e
            }
        })
        .collect();
    for (i, n) in nodes.iter().enumerate() {
        for (j, e) in exports.iter().enumerate() {
            if i != j {
                n.append(e);
            }
        }
        if n.name != bootstrap.name {
            n.append(&bootstrap.bootstrap_entry());
        }
    }
}

/// Checks `cond` every 100 ms (conditions here run the CLI, so not faster
/// on a small machine) until it holds; returns how long that took, or
/// `None` after `limit`. For measurements; `wait_for` for plain waits.
pub fn time_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Seconds with millisecond precision, for reports.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Sends `size` pseudo-random bytes over TCP from `from` to `to`'s overlay
/// address and returns whether they arrived intact.
pub fn tcp_transfer(lab: &Lab, from: &Node, to: &Node, port: u16, size: u32) -> bool {
    let data: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let listener = lab.run_in(&to.host, || {
        TcpListener::bind(SocketAddrV4::new(to.overlay, port)).expect("listen on the overlay")
    });
    let received = std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
            let mut buf = Vec::new();
            conn.read_to_end(&mut buf).expect("read all");
            buf
        });
        lab.run_in(&from.host, || {
            let mut conn = TcpStream::connect_timeout(
                &SocketAddrV4::new(to.overlay, port).into(),
                Duration::from_secs(10),
            )
            .expect("connect over the overlay");
            conn.set_write_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
            conn.write_all(&data).expect("send");
        });
        server.join().expect("server thread")
    });
    received == data
}
