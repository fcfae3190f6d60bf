//! Test hosts on real Linux: named network namespaces joined by veth pairs,
//! processes started inside them, and cleanup of everything on drop — even
//! when the test fails.
//!
//! Every namespace of a [`Lab`] is named `vt<pid>-<n>` so runs never collide,
//! underlay addresses come from the documentation range 192.0.2.0/24, and
//! nothing is configured in the host's own namespace except the veth ends
//! that are immediately moved into the lab's namespaces. Processes started
//! with [`Lab::spawn`] are killed by PID when the lab drops; daemons that
//! detach report their PID through their pidfile and are registered with
//! [`Lab::track_pid`].
//!
//! Requires root and `ip` (iproute2).

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

static LAB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A host of the lab: one network namespace.
#[derive(Debug, Clone)]
pub struct Host {
    /// Namespace name (for `ip netns exec`).
    pub netns: String,
    /// Short name given by the test.
    pub name: String,
}

/// A set of namespaces, links and processes owned by one test.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    hosts: Vec<Host>,
    children: Vec<Child>,
    pids: Vec<i32>,
    veths: usize,
}

fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

fn ip(args: &[&str]) -> io::Result<Output> {
    run(Command::new("ip").args(args))
}

impl Lab {
    /// A new, empty lab.
    ///
    /// # Panics
    /// When not root or `ip` is missing: a test that needs namespaces must
    /// fail loudly, never pass without running.
    pub fn new() -> Self {
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let lab = Self {
            prefix: format!("vt{}-{n}", std::process::id()),
            hosts: Vec::new(),
            children: Vec::new(),
            pids: Vec::new(),
            veths: 0,
        };
        if let Err(e) = ip(&["netns", "list"]) {
            panic!("network-namespace tests need root and iproute2 (`ip`): {e}");
        }
        lab
    }

    /// Adds a host (network namespace) with `lo` up.
    pub fn host(&mut self, name: &str) -> Host {
        let netns = format!("{}-{}", self.prefix, self.hosts.len());
        ip(&["netns", "add", &netns]).unwrap_or_else(|e| panic!("creating netns for {name}: {e}"));
        let host = Host {
            netns,
            name: name.to_owned(),
        };
        self.hosts.push(host.clone());
        self.ip_in(&host, &["link", "set", "lo", "up"]);
        host
    }

    /// Runs `ip -n <host> ARGS`, panicking with the error on failure.
    pub fn ip_in(&self, host: &Host, args: &[&str]) {
        let mut all = vec!["-n", host.netns.as_str()];
        all.extend_from_slice(args);
        ip(&all).unwrap_or_else(|e| panic!("{}: {e}", host.name));
    }

    /// Joins `a` and `b` with a veth pair and gives them `addr_a`/`addr_b`
    /// (with `prefix_len`). Returns the interface names (in a, in b).
    pub fn link(
        &mut self,
        a: &Host,
        addr_a: Ipv4Addr,
        b: &Host,
        addr_b: Ipv4Addr,
        prefix_len: u8,
    ) -> (String, String) {
        let n = self.veths;
        self.veths += 1;
        // Names are created in the host namespace for an instant, so they
        // must be unique there: pid + counter.
        let tag = &self.prefix[2..];
        let (ta, tb) = (format!("v{tag}a{n}"), format!("v{tag}b{n}"));
        let (ta, tb) = (tail15(&ta), tail15(&tb));
        ip(&[
            "link", "add", &ta, "netns", &a.netns, "type", "veth", "peer", "name", &tb, "netns",
            &b.netns,
        ])
        .unwrap_or_else(|e| panic!("veth {}-{}: {e}", a.name, b.name));
        let (ia, ib) = (format!("eth{n}"), format!("eth{n}"));
        self.ip_in(a, &["link", "set", &ta, "name", &ia]);
        self.ip_in(b, &["link", "set", &tb, "name", &ib]);
        self.ip_in(
            a,
            &["addr", "add", &format!("{addr_a}/{prefix_len}"), "dev", &ia],
        );
        self.ip_in(
            b,
            &["addr", "add", &format!("{addr_b}/{prefix_len}"), "dev", &ib],
        );
        self.ip_in(a, &["link", "set", &ia, "up"]);
        self.ip_in(b, &["link", "set", &ib, "up"]);
        (ia, ib)
    }

    /// Runs a command inside `host` and waits for it.
    pub fn exec(&self, host: &Host, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &host.netns, program])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {program} in {}: {e}", host.name))
    }

    /// Starts a command inside `host`; it is killed when the lab drops.
    pub fn spawn(&mut self, host: &Host, program: &str, args: &[&str]) -> u32 {
        let child = Command::new("ip")
            .args(["netns", "exec", &host.netns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {program} in {}: {e}", host.name));
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Registers a PID (e.g. read from a daemon's pidfile) to kill on drop.
    pub fn track_pid(&mut self, pid: i32) {
        if pid > 1 && !self.pids.contains(&pid) {
            self.pids.push(pid);
        }
    }

    /// Runs `f` on a thread that has entered `host`'s network namespace
    /// (sockets it opens live there) and returns its result.
    pub fn run_in<T: Send>(&self, host: &Host, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", host.netns);
        thread::scope(|scope| {
            let handle = scope.spawn(move || {
                let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            });
            match handle.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }

    /// Names of the lab's hosts' namespaces.
    pub fn namespaces(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.netns.clone()).collect()
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for pid in self.pids.drain(..) {
            let pid = Pid::from_raw(pid);
            if kill(pid, Signal::SIGTERM).is_ok() {
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline && kill(pid, None).is_ok() {
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for host in self.hosts.drain(..) {
            let _ = ip(&["netns", "del", &host.netns]);
        }
    }
}

/// The last 15 bytes of an ASCII name (Linux interface names are ≤ 15).
fn tail15(s: &str) -> String {
    s[s.len().saturating_sub(15)..].to_owned()
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns
/// whether it held. The bounded wait for namespace tests.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a namespace named `name` exists.
pub fn netns_exists(name: &str) -> bool {
    Path::new("/var/run/netns").join(name).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn two_hosts_exchange_udp_and_everything_is_cleaned_up() {
        let names;
        {
            let mut lab = Lab::new();
            let a = lab.host("a");
            let b = lab.host("b");
            let (aa, ba) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
            lab.link(&a, aa, &b, ba, 24);
            names = lab.namespaces();
            let server = lab.run_in(&b, || UdpSocket::bind((ba, 5000)).expect("bind in b"));
            lab.run_in(&a, || {
                let s = UdpSocket::bind((aa, 0)).expect("bind in a");
                s.send_to(b"hi", (ba, 5000)).expect("send");
            });
            let mut buf = [0u8; 16];
            server
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let (n, from) = server.recv_from(&mut buf).expect("received within 5 s");
            assert_eq!(&buf[..n], b"hi");
            assert_eq!(from.ip(), std::net::IpAddr::V4(aa));
            let pid = lab.spawn(&a, "sleep", &["30"]);
            assert!(pid > 0);
        }
        for n in names {
            assert!(!netns_exists(&n), "{n} was not removed");
        }
    }
}
