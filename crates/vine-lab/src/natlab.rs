//! A NAT lab on real Linux: an "internet" segment, public hosts on it, and
//! home networks behind namespace routers that run nftables NAT.
//!
//! ```text
//!                         internet 203.0.113.0/24 (a bridge in its own namespace)
//!        ┌──────────────┬───────────┴───────────┬─────────────────────┐
//!   public host     router (EIM/EIF)      router (port-restricted)   router (symmetric)
//!   203.0.113.N     203.0.113.M            203.0.113.K                …
//!                   │ LAN 192.0.2.16/28    │ LAN 192.0.2.32/28
//!                   host 192.0.2.18        hosts 192.0.2.34, .35 …
//! ```
//!
//! Each router forwards between its LAN (a bridge in the router's
//! namespace; the router is `.1` of the /28) and its WAN port on the
//! internet bridge, and translates with one nftables table (`natlab`):
//!
//! * [`NatKind::EndpointIndependent`] — endpoint-independent mapping *and*
//!   filtering for the UDP ports pinned with [`NatLab::pin_udp`]: the inside
//!   `addr:port` is always `snat`ed to `public:port`, and anything arriving
//!   at `public:port` is `dnat`ed back to it (a "full cone"); other traffic
//!   is masqueraded.
//! * [`NatKind::PortRestricted`] — plain `masquerade`: Linux keeps the
//!   source port, so the mapping is reused for every destination, but
//!   conntrack only lets replies in from the exact remote address and port.
//! * [`NatKind::Symmetric`] — `masquerade random`: a fresh random public
//!   port per destination, replies only from that destination.
//!
//! Hosts directly on the internet ([`NatLab::public_host`]) have no NAT.
//! Unsolicited UDP to a router's own address is dropped silently, as home
//! routers do.
//!
//! Faults: [`NatLab::cut`] drops all traffic between two machines (an
//! nftables table in both of their namespaces), [`NatLab::loss`] drops a
//! random share of it (`numgen random mod 100 < N drop`; the netem qdisc is
//! not available on these kernels). Both return a [`Rule`] that
//! [`NatLab::remove`] takes away again.
//!
//! Addresses come only from the documentation ranges: the internet is
//! 203.0.113.0/24 and LANs are /28s of 192.0.2.0/24. Nothing is configured
//! in the host's own namespace except veth ends that are moved at once; the
//! underlying [`Lab`] removes every namespace (and with it every bridge,
//! table and conntrack entry) and every process on drop.
//!
//! Requires root, `ip` (iproute2) and `nft` (nftables).

use std::io;
use std::net::Ipv4Addr;

use crate::netns::{Host, Lab};

/// How a router translates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Endpoint-independent mapping and filtering for pinned UDP ports.
    EndpointIndependent,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// Address-and-port-dependent (random) mapping and filtering.
    Symmetric,
}

impl NatKind {
    /// Short name for tables and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndpointIndependent => "eim_eif",
            Self::PortRestricted => "port_restricted",
            Self::Symmetric => "symmetric",
        }
    }
}

/// A home network: a router with a NAT and a LAN behind it.
#[derive(Debug, Clone)]
pub struct Site {
    /// Name given by the caller.
    pub name: String,
    /// The NAT behaviour.
    pub kind: NatKind,
    /// The router's namespace.
    pub router: Host,
    /// The router's address on the internet.
    pub public: Ipv4Addr,
    /// The router's LAN address (the hosts' default gateway).
    pub gateway: Ipv4Addr,
    index: usize,
}

/// A machine of the lab: a host on a LAN or on the internet.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Its namespace.
    pub host: Host,
    /// Its own address (on its LAN, or on the internet).
    pub address: Ipv4Addr,
    /// The address its traffic has on the internet: its own for a public
    /// host, its router's for one behind a NAT.
    pub public: Ipv4Addr,
    /// Index of its site; `None` on the internet.
    site: Option<usize>,
}

impl Machine {
    /// Whether it sits behind a NAT.
    pub fn behind_nat(&self) -> bool {
        self.site.is_some()
    }

    fn addresses(&self) -> Vec<Ipv4Addr> {
        let mut v = vec![self.address];
        if self.public != self.address {
            v.push(self.public);
        }
        v
    }
}

/// An nftables table added by [`NatLab::cut`] or [`NatLab::loss`].
#[derive(Debug, Clone)]
#[must_use = "a fault stays in force until it is passed to NatLab::remove"]
pub struct Rule {
    table: String,
    hosts: Vec<Host>,
}

#[derive(Debug)]
struct SiteState {
    site: Site,
    wan_if: String,
    next_host: u8,
    pins: Vec<(Ipv4Addr, u16)>,
}

/// The NAT lab. See the module docs.
#[derive(Debug)]
pub struct NatLab {
    lab: Lab,
    internet: Host,
    next_public: u8,
    sites: Vec<SiteState>,
    tables: usize,
}

/// Most sites: 192.0.2.0/24 holds sixteen /28s, the first is left unused.
const MAX_SITES: usize = 15;
/// Hosts per LAN: a /28 has .1 (router) to .14.
const MAX_LAN_HOST: u8 = 14;

impl NatLab {
    /// A lab with an empty internet.
    ///
    /// # Panics
    /// When it cannot be built (not root, `ip` or `nft` missing): a test
    /// that needs it must fail loudly, never pass without running.
    pub fn new() -> Self {
        Self::try_new().unwrap_or_else(|e| panic!("NAT lab: {e}"))
    }

    /// [`NatLab::new`], returning errors.
    pub fn try_new() -> io::Result<Self> {
        Self::try_with_janitor(crate::netns::Janitor::default())
    }

    /// [`NatLab::try_new`], registering everything with `janitor` (see
    /// [`Lab::try_with_janitor`]).
    pub fn try_with_janitor(janitor: crate::netns::Janitor) -> io::Result<Self> {
        let mut lab = Lab::try_with_janitor(janitor)?;
        let internet = lab.try_host("internet")?;
        let this = Self {
            lab,
            internet,
            next_public: 10,
            sites: Vec::new(),
            tables: 0,
        };
        // `nft` must exist and work inside a namespace.
        this.nft(&this.internet.clone(), "list ruleset")
            .map_err(|e| {
                io::Error::other(format!(
                    "nftables (`nft`) is needed for the NAT lab (apt-get install nftables): {e}"
                ))
            })?;
        let internet = this.internet.clone();
        this.lab
            .try_ip_in(&internet, &["link", "add", "inet", "type", "bridge"])?;
        this.lab
            .try_ip_in(&internet, &["link", "set", "inet", "up"])?;
        no_bridge_netfilter(&this.lab, &internet);
        Ok(this)
    }

    /// The underlying namespace lab (exec, spawn, PIDs).
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The underlying namespace lab, mutably (spawn, track_pid).
    pub fn lab_mut(&mut self) -> &mut Lab {
        &mut self.lab
    }

    fn next_public_address(&mut self) -> io::Result<Ipv4Addr> {
        if self.next_public >= 250 {
            return Err(io::Error::other("the lab's internet is full"));
        }
        let a = Ipv4Addr::new(203, 0, 113, self.next_public);
        self.next_public += 1;
        Ok(a)
    }

    /// Plugs `host` into the internet bridge with `address`/24; returns its
    /// interface name.
    fn attach_to_internet(&mut self, host: &Host, address: Ipv4Addr) -> io::Result<String> {
        let internet = self.internet.clone();
        let (mine, hub) = self.lab.try_veth(host, &internet)?;
        self.lab
            .try_ip_in(&internet, &["link", "set", &hub, "master", "inet"])?;
        self.lab.try_ip_in(
            host,
            &["addr", "add", &format!("{address}/24"), "dev", &mine],
        )?;
        Ok(mine)
    }

    /// A host directly on the internet (no NAT).
    pub fn public_host(&mut self, name: &str) -> io::Result<Machine> {
        let host = self.lab.try_host(name)?;
        let address = self.next_public_address()?;
        self.attach_to_internet(&host, address)?;
        Ok(Machine {
            host,
            address,
            public: address,
            site: None,
        })
    }

    /// A home network behind a router of `kind`.
    pub fn site(&mut self, name: &str, kind: NatKind) -> io::Result<Site> {
        let index = self.sites.len() + 1;
        if index > MAX_SITES {
            return Err(io::Error::other("the lab has no LAN range left"));
        }
        let router = self.lab.try_host(&format!("{name}-router"))?;
        let public = self.next_public_address()?;
        let wan_if = self.attach_to_internet(&router, public)?;
        let gateway = lan_address(index, 1);
        self.lab
            .try_ip_in(&router, &["link", "add", "lan", "type", "bridge"])?;
        self.lab.try_ip_in(
            &router,
            &["addr", "add", &format!("{gateway}/28"), "dev", "lan"],
        )?;
        self.lab.try_ip_in(&router, &["link", "set", "lan", "up"])?;
        no_bridge_netfilter(&self.lab, &router);
        self.sh(&router, "echo 1 > /proc/sys/net/ipv4/ip_forward")?;
        let site = Site {
            name: name.to_owned(),
            kind,
            router,
            public,
            gateway,
            index,
        };
        self.sites.push(SiteState {
            site: site.clone(),
            wan_if,
            next_host: 2,
            pins: Vec::new(),
        });
        self.apply_nat(index)?;
        Ok(site)
    }

    /// A host on `site`'s LAN, with the router as its default gateway.
    pub fn lan_host(&mut self, site: &Site, name: &str) -> io::Result<Machine> {
        let state = self.state(site.index)?;
        if state.next_host > MAX_LAN_HOST {
            return Err(io::Error::other(format!("LAN {} is full", site.name)));
        }
        let address = lan_address(site.index, state.next_host);
        state.next_host += 1;
        let host = self.lab.try_host(name)?;
        let (mine, router_end) = self.lab.try_veth(&host, &site.router)?;
        self.lab
            .try_ip_in(&site.router, &["link", "set", &router_end, "master", "lan"])?;
        self.lab.try_ip_in(
            &host,
            &["addr", "add", &format!("{address}/28"), "dev", &mine],
        )?;
        self.lab.try_ip_in(
            &host,
            &["route", "add", "default", "via", &site.gateway.to_string()],
        )?;
        Ok(Machine {
            host,
            address,
            public: site.public,
            site: Some(site.index),
        })
    }

    /// On an [`NatKind::EndpointIndependent`] site: maps UDP `port` of
    /// `machine` to the same port of the router's public address for every
    /// destination, and lets anyone reach it there.
    pub fn pin_udp(&mut self, machine: &Machine, port: u16) -> io::Result<()> {
        let index = machine.site.ok_or_else(|| {
            io::Error::other(format!("{} is not behind a NAT", machine.host.name))
        })?;
        let state = self.state(index)?;
        if state.site.kind != NatKind::EndpointIndependent {
            return Err(io::Error::other(format!(
                "site {} is {}, not endpoint-independent",
                state.site.name,
                state.site.kind.as_str()
            )));
        }
        if state.pins.iter().any(|(_, p)| *p == port) {
            return Err(io::Error::other(format!(
                "public port {port} of site {} is pinned already",
                state.site.name
            )));
        }
        state.pins.push((machine.address, port));
        self.apply_nat(index)
    }

    fn state(&mut self, index: usize) -> io::Result<&mut SiteState> {
        self.sites
            .get_mut(index.wrapping_sub(1))
            .ok_or_else(|| io::Error::other("no such site"))
    }

    /// Writes the router's `natlab` table for its kind and pins (replacing
    /// the old one atomically).
    fn apply_nat(&mut self, index: usize) -> io::Result<()> {
        let state = self.state(index)?;
        let wan = state.wan_if.clone();
        let public = state.site.public;
        let router = state.site.router.clone();
        let mut pre = String::new();
        let mut post = String::new();
        for (inside, port) in &state.pins {
            pre.push_str(&format!(
                "    iifname \"{wan}\" udp dport {port} dnat to {inside}:{port}\n"
            ));
            post.push_str(&format!(
                "    oifname \"{wan}\" ip saddr {inside} udp sport {port} snat to {public}:{port}\n"
            ));
        }
        let masquerade = match state.site.kind {
            NatKind::Symmetric => "masquerade random",
            NatKind::EndpointIndependent | NatKind::PortRestricted => "masquerade",
        };
        post.push_str(&format!("    oifname \"{wan}\" {masquerade}\n"));
        let script = format!(
            "table ip natlab\n\
             delete table ip natlab\n\
             table ip natlab {{\n\
             \x20 chain prerouting {{\n\
             \x20   type nat hook prerouting priority dstnat; policy accept;\n\
             {pre}\
             \x20 }}\n\
             \x20 chain postrouting {{\n\
             \x20   type nat hook postrouting priority srcnat; policy accept;\n\
             {post}\
             \x20 }}\n\
             \x20 chain input {{\n\
             \x20   type filter hook input priority filter; policy accept;\n\
             \x20   iifname \"{wan}\" meta l4proto udp drop\n\
             \x20 }}\n\
             }}\n"
        );
        self.nft_script(&router, &script)
    }

    /// Drops all traffic between `a` and `b` (their own addresses and,
    /// behind a NAT, their router's public address — so other hosts behind
    /// the same router are cut off from the other machine too) in both of
    /// their namespaces, until [`NatLab::remove`].
    pub fn cut(&mut self, a: &Machine, b: &Machine) -> io::Result<Rule> {
        let mut rule = self.new_rule();
        for (me, other) in [(a, b), (b, a)] {
            self.filter(&mut rule, me, other, "drop", true)?;
        }
        Ok(rule)
    }

    /// Drops `percent` % of the packets between `a` and `b`, in each
    /// direction, chosen at random, until [`NatLab::remove`].
    ///
    /// Like a lossy link, the loss is silent: packets are dropped where they
    /// arrive (the input hook of the receiving namespace), never where they
    /// are sent, because a drop in the sender's output hook fails the send
    /// with `EPERM` — which a sender may notice, count or retry, so the
    /// "link" would lose less than configured.
    pub fn loss(&mut self, a: &Machine, b: &Machine, percent: u8) -> io::Result<Rule> {
        let mut rule = self.new_rule();
        let verdict = match percent {
            0 => "counter".to_owned(),
            1..=99 => format!("numgen random mod 100 < {percent} drop"),
            _ => "drop".to_owned(),
        };
        for (me, other) in [(a, b), (b, a)] {
            self.filter(&mut rule, me, other, &verdict, false)?;
        }
        Ok(rule)
    }

    fn address_set(m: &Machine) -> String {
        m.addresses()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn new_rule(&mut self) -> Rule {
        self.tables += 1;
        Rule {
            table: format!("natlab_fault{}", self.tables),
            hosts: Vec::new(),
        }
    }

    /// Applies `verdict` in `me`'s namespace to what arrives from `other`
    /// and, with `outbound`, to what `me` sends to it.
    fn filter(
        &mut self,
        rule: &mut Rule,
        me: &Machine,
        other: &Machine,
        verdict: &str,
        outbound: bool,
    ) -> io::Result<()> {
        let set = Self::address_set(other);
        let table = &rule.table;
        let output = if outbound {
            format!(
                "\x20 chain output {{\n\
                 \x20   type filter hook output priority -10; policy accept;\n\
                 \x20   ip daddr {{ {set} }} {verdict}\n\
                 \x20 }}\n"
            )
        } else {
            String::new()
        };
        let script = format!(
            "table ip {table} {{\n\
             \x20 chain input {{\n\
             \x20   type filter hook input priority -10; policy accept;\n\
             \x20   ip saddr {{ {set} }} {verdict}\n\
             \x20 }}\n\
             {output}\
             }}\n"
        );
        self.nft_script(&me.host, &script)?;
        rule.hosts.push(me.host.clone());
        Ok(())
    }

    /// Takes a fault away again.
    pub fn remove(&mut self, rule: Rule) -> io::Result<()> {
        for host in &rule.hosts {
            self.nft(host, &format!("delete table ip {}", rule.table))?;
        }
        Ok(())
    }

    fn nft(&self, host: &Host, command: &str) -> io::Result<()> {
        let args: Vec<&str> = command.split_whitespace().collect();
        self.lab
            .try_run_with_input(host, "nft", &args, "")
            .map(|_| ())
    }

    fn nft_script(&self, host: &Host, script: &str) -> io::Result<()> {
        self.lab
            .try_run_with_input(host, "nft", &["-f", "-"], script)
            .map(|_| ())
    }

    fn sh(&self, host: &Host, command: &str) -> io::Result<()> {
        self.lab
            .try_run_with_input(host, "sh", &["-c", command], "")
            .map(|_| ())
    }

    /// The nftables ruleset of a namespace (for failure messages).
    pub fn ruleset(&self, host: &Host) -> String {
        self.lab
            .try_exec(host, "nft", &["list", "ruleset"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Default for NatLab {
    fn default() -> Self {
        Self::new()
    }
}

/// Address `host` of LAN `index` (the /28 at 192.0.2.16·index).
fn lan_address(index: usize, host: u8) -> Ipv4Addr {
    // index ≤ MAX_SITES (15), so 16·index + host ≤ 254.
    Ipv4Addr::new(192, 0, 2, (index as u8) * 16 + host)
}

/// Bridged frames must not be passed through the namespace's IP hooks
/// (br_netfilter may be loaded on the machine); best effort.
fn no_bridge_netfilter(lab: &Lab, host: &Host) {
    let _ = lab.try_run_with_input(
        host,
        "sh",
        &[
            "-c",
            "f=/proc/sys/net/bridge/bridge-nf-call-iptables; [ ! -e $f ] || echo 0 > $f",
        ],
        "",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddrV4, UdpSocket};
    use std::time::Duration;

    /// Sends one datagram from `from` (bound to `port`) to `to` and reports
    /// the source address `to`'s socket saw, if it arrived.
    fn probe(
        lab: &NatLab,
        server: &UdpSocket,
        from: &Machine,
        port: u16,
        to: SocketAddrV4,
    ) -> Option<SocketAddrV4> {
        lab.lab().run_in(&from.host, || {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).expect("bind");
            // An output drop rule makes the send itself fail (EPERM).
            let _ = s.send_to(b"x", to);
        });
        let mut buf = [0u8; 8];
        match server.recv_from(&mut buf) {
            Ok((_, std::net::SocketAddr::V4(a))) => Some(a),
            _ => None,
        }
    }

    #[test]
    fn nat_kinds_map_and_filter_as_documented() {
        let names;
        {
            let mut lab = NatLab::new();
            let s1 = lab.public_host("s1").expect("s1");
            let s2 = lab.public_host("s2").expect("s2");
            let eim = lab.site("eim", NatKind::EndpointIndependent).expect("site");
            let prc = lab.site("prc", NatKind::PortRestricted).expect("site");
            let sym = lab.site("sym", NatKind::Symmetric).expect("site");
            let e = lab.lan_host(&eim, "e").expect("e");
            let p = lab.lan_host(&prc, "p").expect("p");
            let y = lab.lan_host(&sym, "y").expect("y");
            lab.pin_udp(&e, 4100).expect("pin");
            names = lab.lab().namespaces();
            let open = |m: &Machine| {
                let s = lab.lab().run_in(&m.host, || {
                    UdpSocket::bind((m.address, 7000)).expect("bind server")
                });
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .expect("timeout");
                s
            };
            let (srv1, srv2) = (open(&s1), open(&s2));
            let to1 = SocketAddrV4::new(s1.address, 7000);
            let to2 = SocketAddrV4::new(s2.address, 7000);

            // EIM: the pinned port keeps its number towards every server.
            let a = probe(&lab, &srv1, &e, 4100, to1).expect("e→s1");
            assert_eq!(a, SocketAddrV4::new(eim.public, 4100));
            // EIF: anyone may send to the pinned public port.
            let inside = lab.lab().run_in(&e.host, || {
                let s = UdpSocket::bind((e.address, 4100)).expect("bind e");
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .expect("timeout");
                s
            });
            lab.lab().run_in(&s2.host, || {
                let s = UdpSocket::bind((s2.address, 0)).expect("bind");
                s.send_to(b"in", (eim.public, 4100)).expect("send");
            });
            let mut buf = [0u8; 8];
            assert!(inside.recv_from(&mut buf).is_ok(), "EIF let nothing in");
            drop(inside);

            // Port-restricted: same mapping for both servers …
            let m1 = probe(&lab, &srv1, &p, 5000, to1).expect("p→s1");
            let m2 = probe(&lab, &srv2, &p, 5000, to2).expect("p→s2");
            assert_eq!(m1, m2, "port-restricted NAT must reuse its mapping");
            assert_eq!(*m1.ip(), prc.public);
            // … but s2 cannot use the mapping from another port.
            lab.lab().run_in(&s2.host, || {
                let s = UdpSocket::bind((s2.address, 7001)).expect("bind");
                s.send_to(b"in", m1).expect("send");
            });
            let inside = lab.lab().run_in(&p.host, || {
                let s = UdpSocket::bind((p.address, 5001)).expect("bind");
                s.set_read_timeout(Some(Duration::from_millis(300)))
                    .expect("timeout");
                s
            });
            assert!(inside.recv_from(&mut buf).is_err());

            // Symmetric: a different public port per destination.
            let y1 = probe(&lab, &srv1, &y, 5000, to1).expect("y→s1");
            let y2 = probe(&lab, &srv2, &y, 5000, to2).expect("y→s2");
            assert_eq!(*y1.ip(), sym.public);
            assert_ne!(y1.port(), y2.port(), "symmetric NAT reused a port");

            // A cut drops everything between two machines; removing it
            // restores the path.
            let rule = lab.cut(&s2, &s1).expect("cut");
            assert!(probe(&lab, &srv1, &s2, 5002, to1).is_none(), "cut leaked");
            lab.remove(rule).expect("remove");
            assert!(probe(&lab, &srv1, &s2, 5003, to1).is_some(), "cut stayed");
            // 100 % loss is a cut.
            let rule = lab.loss(&s2, &s1, 100).expect("loss");
            assert!(probe(&lab, &srv1, &s2, 5004, to1).is_none());
            lab.remove(rule).expect("remove");
            // Random loss is silent (every send succeeds, as on a lossy
            // link) and drops about the configured share: 400 datagrams at
            // 25 % lose 100 ± 8.7 (binomial); the bounds are ±5 sigma.
            let rule = lab.loss(&s2, &s1, 25).expect("loss");
            let sender = lab.lab().run_in(&s2.host, || {
                UdpSocket::bind((s2.address, 5005)).expect("bind")
            });
            srv1.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            let (mut failed_sends, mut arrived) = (0, 0);
            let mut buf = [0u8; 8];
            // In rounds of 50, drained in between, so the receiver's
            // socket buffer never overflows.
            for _ in 0..8 {
                failed_sends += (0..50)
                    .filter(|_| sender.send_to(b"x", to1).is_err())
                    .count();
                while srv1.recv_from(&mut buf).is_ok() {
                    arrived += 1;
                }
            }
            assert_eq!(failed_sends, 0, "a lossy link must not fail sends");
            lab.remove(rule).expect("remove");
            assert!(
                (257..=343).contains(&arrived),
                "25 % loss let {arrived} of 400 datagrams through"
            );
        }
        for n in names {
            assert!(!crate::netns::netns_exists(&n), "{n} was not removed");
        }
    }
}
