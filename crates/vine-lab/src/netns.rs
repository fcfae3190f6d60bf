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
//! [`Lab::track_pid`]. Before a namespace is deleted, any process still
//! inside it (found with `ip netns pids`) is killed by PID as well, so a
//! daemon whose PID was never learned cannot outlive the lab.
//!
//! The namespaces and PIDs are kept in a shared registry; a [`Janitor`]
//! (from [`Lab::janitor`]) can tear everything down from another thread,
//! e.g. a signal handler thread, while the lab is still in use.
//!
//! The `try_*` methods return errors for callers that must not panic (the
//! `vine demo` command); the plain ones panic, which is what tests want.
//!
//! Requires root and `ip` (iproute2).

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
    registry: Janitor,
    veths: usize,
}

/// What a lab must remove: its namespaces and the PIDs it started.
#[derive(Debug, Default)]
struct Registry {
    netns: Vec<String>,
    pids: Vec<i32>,
}

/// Tears down a [`Lab`]'s processes and namespaces; cloneable and usable
/// from any thread. Cleaning up twice is harmless.
#[derive(Debug, Clone, Default)]
pub struct Janitor(Arc<Mutex<Registry>>);

impl Janitor {
    fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Kills every registered PID (SIGTERM, then SIGKILL after 5 s), then
    /// every process left inside the lab's namespaces, then deletes the
    /// namespaces. Holds the registry lock throughout, so a lab that keeps
    /// building on another thread waits instead of racing it.
    pub fn cleanup(&self) {
        self.cleanup_then(|| ());
    }

    /// [`Janitor::cleanup`], then `f` while still holding the registry
    /// lock — e.g. `process::exit` from a signal handler thread, so the lab
    /// cannot create anything new in between.
    pub fn cleanup_then<T>(&self, f: impl FnOnce() -> T) -> T {
        self.with(|r| {
            for pid in r.pids.drain(..) {
                terminate(pid);
            }
            for netns in r.netns.drain(..) {
                if let Ok(out) = ip(&["netns", "pids", &netns]) {
                    for pid in String::from_utf8_lossy(&out.stdout)
                        .split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok())
                    {
                        terminate(pid);
                    }
                }
                let _ = ip(&["netns", "del", &netns]);
            }
            f()
        })
    }

    /// How many PIDs and namespaces are still registered.
    pub fn pending(&self) -> (usize, usize) {
        self.with(|r| (r.pids.len(), r.netns.len()))
    }
}

/// SIGTERM, a bounded wait, then SIGKILL.
fn terminate(pid: i32) {
    if pid <= 1 {
        return;
    }
    let pid = Pid::from_raw(pid);
    if kill(pid, Signal::SIGTERM).is_ok() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && alive(pid) {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = kill(pid, Signal::SIGKILL);
    }
}

/// Whether `pid` exists and is not a zombie (a zombie child of ours is dead
/// for this purpose; its parent reaps it).
fn alive(pid: Pid) -> bool {
    if kill(pid, None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z"),
        Err(_) => false,
    }
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
        Self::try_new().unwrap_or_else(|e| panic!("network-namespace tests: {e}"))
    }

    /// A lab that reports a missing `ip` or missing privileges as an error
    /// instead of panicking.
    pub fn try_new() -> io::Result<Self> {
        Self::try_with_janitor(Janitor::default())
    }

    /// A lab that registers what it makes with `janitor`, which the caller
    /// may already have handed to a signal handler thread (so nothing the
    /// lab creates can escape a cleanup, however early the signal comes).
    pub fn try_with_janitor(janitor: Janitor) -> io::Result<Self> {
        ip(&["netns", "list"]).map_err(|e| {
            io::Error::other(format!(
                "network namespaces need root and iproute2 (`ip`): {e}"
            ))
        })?;
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            prefix: format!("vt{}-{n}", std::process::id()),
            hosts: Vec::new(),
            children: Vec::new(),
            registry: janitor,
            veths: 0,
        })
    }

    /// A handle that removes everything this lab made, from any thread.
    pub fn janitor(&self) -> Janitor {
        self.registry.clone()
    }

    /// Adds a host (network namespace) with `lo` up.
    pub fn host(&mut self, name: &str) -> Host {
        self.try_host(name)
            .unwrap_or_else(|e| panic!("creating netns for {name}: {e}"))
    }

    /// [`Lab::host`], returning errors.
    pub fn try_host(&mut self, name: &str) -> io::Result<Host> {
        let netns = format!("{}-{}", self.prefix, self.hosts.len());
        // Registered before it exists, so a concurrent cleanup cannot miss it.
        self.registry.with(|r| r.netns.push(netns.clone()));
        ip(&["netns", "add", &netns])?;
        let host = Host {
            netns,
            name: name.to_owned(),
        };
        self.hosts.push(host.clone());
        self.try_ip_in(&host, &["link", "set", "lo", "up"])?;
        Ok(host)
    }

    /// Runs `ip -n <host> ARGS`, panicking with the error on failure.
    pub fn ip_in(&self, host: &Host, args: &[&str]) {
        self.try_ip_in(host, args)
            .unwrap_or_else(|e| panic!("{}: {e}", host.name));
    }

    /// [`Lab::ip_in`], returning errors.
    pub fn try_ip_in(&self, host: &Host, args: &[&str]) -> io::Result<()> {
        let mut all = vec!["-n", host.netns.as_str()];
        all.extend_from_slice(args);
        ip(&all)
            .map(|_| ())
            .map_err(|e| io::Error::other(format!("{}: {e}", host.name)))
    }

    /// Runs `program ARGS` inside `host`, feeding `stdin`; an error unless
    /// it exits 0.
    pub fn try_run_with_input(
        &self,
        host: &Host,
        program: &str,
        args: &[&str],
        stdin: &str,
    ) -> io::Result<Output> {
        use std::io::Write as _;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &host.netns, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{program} {args:?} in {} failed: {}",
                host.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(out)
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
        self.try_link(a, addr_a, b, addr_b, prefix_len)
            .unwrap_or_else(|e| panic!("veth {}-{}: {e}", a.name, b.name))
    }

    /// [`Lab::link`], returning errors.
    pub fn try_link(
        &mut self,
        a: &Host,
        addr_a: Ipv4Addr,
        b: &Host,
        addr_b: Ipv4Addr,
        prefix_len: u8,
    ) -> io::Result<(String, String)> {
        let (ia, ib) = self.try_veth(a, b)?;
        self.try_ip_in(
            a,
            &["addr", "add", &format!("{addr_a}/{prefix_len}"), "dev", &ia],
        )?;
        self.try_ip_in(
            b,
            &["addr", "add", &format!("{addr_b}/{prefix_len}"), "dev", &ib],
        )?;
        Ok((ia, ib))
    }

    /// Joins `a` and `b` with a veth pair, both ends up and without
    /// addresses. Returns the interface names (in a, in b): `ethN` with the
    /// same N on both sides.
    pub fn try_veth(&mut self, a: &Host, b: &Host) -> io::Result<(String, String)> {
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
        ])?;
        let (ia, ib) = (format!("eth{n}"), format!("eth{n}"));
        self.try_ip_in(a, &["link", "set", &ta, "name", &ia])?;
        self.try_ip_in(b, &["link", "set", &tb, "name", &ib])?;
        self.try_ip_in(a, &["link", "set", &ia, "up"])?;
        self.try_ip_in(b, &["link", "set", &ib, "up"])?;
        Ok((ia, ib))
    }

    /// Runs a command inside `host` and waits for it.
    pub fn exec(&self, host: &Host, program: &str, args: &[&str]) -> Output {
        self.try_exec(host, program, args)
            .unwrap_or_else(|e| panic!("running {program} in {}: {e}", host.name))
    }

    /// [`Lab::exec`], returning an error when the command cannot be
    /// started (its exit status is the caller's to judge).
    pub fn try_exec(&self, host: &Host, program: &str, args: &[&str]) -> io::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &host.netns, program])
            .args(args)
            .stdin(Stdio::null())
            .output()
    }

    /// Starts a command inside `host`; it is killed when the lab drops.
    pub fn spawn(&mut self, host: &Host, program: &str, args: &[&str]) -> u32 {
        self.try_spawn(host, program, args)
            .unwrap_or_else(|e| panic!("spawning {program} in {}: {e}", host.name))
    }

    /// [`Lab::spawn`], returning errors.
    pub fn try_spawn(&mut self, host: &Host, program: &str, args: &[&str]) -> io::Result<u32> {
        let child = Command::new("ip")
            .args(["netns", "exec", &host.netns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    /// Registers a PID (e.g. read from a daemon's pidfile) to kill on drop.
    pub fn track_pid(&mut self, pid: i32) {
        self.registry.with(|r| {
            if pid > 1 && !r.pids.contains(&pid) {
                r.pids.push(pid);
            }
        });
    }

    /// Stops a PID registered with [`Lab::track_pid`] now (SIGTERM, then
    /// SIGKILL after 5 s) and forgets it.
    pub fn stop_pid(&mut self, pid: i32) {
        let known = self.registry.with(|r| {
            let known = r.pids.contains(&pid);
            r.pids.retain(|p| *p != pid);
            known
        });
        if known {
            terminate(pid);
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
        let pids: Vec<i32> = self.registry.with(|r| r.pids.drain(..).collect());
        for pid in pids {
            terminate(pid);
        }
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.registry.cleanup();
        self.hosts.clear();
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

/// A switch: one bridge in a namespace of its own. Hosts plugged into it
/// with [`Lab::try_plug`] share one Ethernet segment, as machines on one
/// physical switch do (the bridge is removed with its namespace).
#[derive(Debug, Clone)]
pub struct Switch {
    /// The namespace that holds the bridge.
    pub host: Host,
    /// The bridge's name inside that namespace.
    pub bridge: String,
}

impl Lab {
    /// A switch named `name`: a host holding a bridge `br0`, up, whose
    /// bridged frames skip netfilter (best effort; br_netfilter may be
    /// loaded on the machine).
    pub fn try_switch(&mut self, name: &str) -> io::Result<Switch> {
        let host = self.try_host(name)?;
        let bridge = "br0".to_owned();
        self.try_ip_in(&host, &["link", "add", &bridge, "type", "bridge"])?;
        self.try_ip_in(&host, &["link", "set", &bridge, "up"])?;
        let _ = self.try_run_with_input(
            &host,
            "sh",
            &[
                "-c",
                "f=/proc/sys/net/bridge/bridge-nf-call-iptables; [ ! -e $f ] || echo 0 > $f",
            ],
            "",
        );
        Ok(Switch { host, bridge })
    }

    /// Plugs `host` into `switch` with a veth pair and gives the host's end
    /// `address`/`prefix_len`. Returns the interface name, which is the same
    /// in the host and on the switch (`ethN`), so the switch port's counters
    /// are the host's traffic seen from the other side.
    pub fn try_plug(
        &mut self,
        host: &Host,
        switch: &Switch,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> io::Result<String> {
        let (mine, port) = self.try_veth(host, &switch.host)?;
        self.try_ip_in(
            &switch.host,
            &["link", "set", &port, "master", &switch.bridge],
        )?;
        self.try_ip_in(
            host,
            &[
                "addr",
                "add",
                &format!("{address}/{prefix_len}"),
                "dev",
                &mine,
            ],
        )?;
        Ok(mine)
    }

    /// Stops every PID registered with [`Lab::track_pid`] at once: SIGTERM
    /// to all, one shared wait of at most `grace`, SIGKILL to whatever is
    /// left; then forgets them. With many daemons this takes one grace
    /// period instead of one per daemon (the drop stops them one by one).
    pub fn stop_all_tracked(&mut self, grace: Duration) {
        let pids: Vec<Pid> = self
            .registry
            .with(|r| r.pids.drain(..).collect::<Vec<_>>())
            .into_iter()
            .filter(|p| *p > 1)
            .map(Pid::from_raw)
            .collect();
        let signalled: Vec<Pid> = pids
            .into_iter()
            .filter(|p| kill(*p, Signal::SIGTERM).is_ok())
            .collect();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && signalled.iter().any(|p| alive(*p)) {
            thread::sleep(Duration::from_millis(20));
        }
        for pid in signalled {
            if alive(pid) {
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    }
}

impl Lab {
    /// Gives every host on one switch a permanent neighbour (ARP) entry for
    /// every other: `members` are (host, its interface on the switch, its
    /// address). The kernel keeps one ARP table for all namespaces and by
    /// default lets it grow to only 1,024 learned entries
    /// (`net.ipv4.neigh.default.gc_thresh3`, settable only from the host's
    /// own namespace); n hosts that all talk to each other learn n(n-1), so
    /// at 33 and more sends start failing with ENOBUFS ("neighbor table
    /// overflow!" in the kernel log) as they never would on n real machines.
    /// Permanent entries are exempt from that limit, and no host then has
    /// to learn any.
    pub fn try_static_neighbours(&self, members: &[(Host, String, Ipv4Addr)]) -> io::Result<()> {
        let mut macs = Vec::with_capacity(members.len());
        for (host, ifname, _) in members {
            let out =
                self.try_run_with_input(host, "ip", &["-br", "link", "show", "dev", ifname], "")?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mac = text
                .split_whitespace()
                .nth(2)
                .filter(|m| m.len() == 17 && m.bytes().filter(|b| *b == b':').count() == 5)
                .ok_or_else(|| {
                    io::Error::other(format!(
                        "no MAC address for {ifname} in {}: `ip -br link` said {text:?}",
                        host.name
                    ))
                })?
                .to_owned();
            macs.push(mac);
        }
        for (i, (host, ifname, _)) in members.iter().enumerate() {
            let mut script = String::new();
            for (j, (_, _, address)) in members.iter().enumerate() {
                if i != j {
                    script.push_str(&format!(
                        "neigh replace {address} lladdr {} dev {ifname} nud permanent\n",
                        macs[j]
                    ));
                }
            }
            self.try_run_with_input(host, "ip", &["-batch", "-"], &script)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod switch_tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn hosts_on_one_switch_reach_each_other_and_stop_at_once() {
        let names;
        {
            let mut lab = Lab::new();
            let switch = lab.try_switch("switch").expect("switch");
            let hosts: Vec<Host> = (0..3).map(|i| lab.host(&format!("h{i}"))).collect();
            let addr = |i: u8| Ipv4Addr::new(198, 51, 100, 1 + i);
            for (i, h) in (0u8..).zip(&hosts) {
                let port = lab.try_plug(h, &switch, addr(i), 24).expect("plug");
                assert_eq!(port, format!("eth{i}"), "the same name on both sides");
            }
            names = lab.namespaces();
            let members: Vec<(Host, String, Ipv4Addr)> = (0u8..)
                .zip(&hosts)
                .map(|(i, h)| (h.clone(), format!("eth{i}"), addr(i)))
                .collect();
            lab.try_static_neighbours(&members)
                .expect("static neighbours");
            let neigh = lab.exec(&hosts[0], "ip", &["neigh", "show", "dev", "eth0"]);
            let neigh = String::from_utf8_lossy(&neigh.stdout).into_owned();
            for i in 1..3 {
                assert!(
                    neigh.lines().any(|l| l.starts_with(&format!("{} ", addr(i))) && l.contains("PERMANENT")),
                    "{neigh}"
                );
            }
            // Every host reaches every other through the one bridge.
            for (i, a) in (0u8..).zip(&hosts) {
                for (j, b) in (0u8..).zip(&hosts) {
                    if i == j {
                        continue;
                    }
                    let server = lab.run_in(b, || UdpSocket::bind((addr(j), 0)).expect("bind"));
                    let to = server.local_addr().expect("addr");
                    lab.run_in(a, || {
                        let s = UdpSocket::bind((addr(i), 0)).expect("bind");
                        s.send_to(b"hi", to).expect("send");
                    });
                    server
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .expect("timeout");
                    let mut buf = [0u8; 4];
                    let (n, from) = server.recv_from(&mut buf).expect("received within 5 s");
                    assert_eq!((&buf[..n], from.ip()), (&b"hi"[..], addr(i).into()));
                }
            }
            // Three processes stopped together: one shared wait, not three.
            let pids: Vec<i32> = hosts
                .iter()
                .map(|h| lab.spawn(h, "sleep", &["30"]) as i32)
                .collect();
            for p in &pids {
                lab.track_pid(*p);
            }
            let t0 = Instant::now();
            lab.stop_all_tracked(Duration::from_secs(5));
            assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
            assert_eq!(lab.janitor().pending().0, 0, "PIDs forgotten");
            for p in &pids {
                assert!(!alive(Pid::from_raw(*p)), "{p} still running");
            }
        }
        for n in names {
            assert!(!netns_exists(&n), "{n} was not removed");
        }
    }
}
