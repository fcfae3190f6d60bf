//! NAT behaviour: the RFC 4787 matrix, hole punching, expiry, LANs with
//! several uplinks, NAT chains, hairpinning and drop reasons.

use std::net::SocketAddrV4;
use std::time::Duration;

use super::{Net, PORT, Probe, ip, ms, poke, poke_host, public_host};
use crate::sim::{DropReason, Filtering, HostId, Mapping, NatConfig, NatId, NatType, Outcome};

/// One side of a scenario: a host on the internet or behind a NAT preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Public,
    Nat(NatType),
}

/// Row and column order of every table below.
const SIDES: [Side; 6] = [
    Side::Public,
    Side::Nat(NatType::FullCone),
    Side::Nat(NatType::RestrictedCone),
    Side::Nat(NatType::PortRestrictedCone),
    Side::Nat(NatType::Symmetric),
    Side::Nat(NatType::Firewall),
];

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Public => "public",
            Side::Nat(NatType::FullCone) => "full-cone",
            Side::Nat(NatType::RestrictedCone) => "restricted",
            Side::Nat(NatType::PortRestrictedCone) => "port-restr",
            Side::Nat(NatType::Symmetric) => "symmetric",
            Side::Nat(NatType::Firewall) => "firewall",
        }
    }
}

const Y: bool = true;
const N: bool = false;

/// The STUN-like reflector every scenario uses.
fn reflector_addr() -> SocketAddrV4 {
    SocketAddrV4::new(ip(203, 0, 113, 1), 3478)
}

/// Adds the reflector host (at [`reflector_addr`]).
fn add_reflector(net: &mut Net) -> HostId {
    let (inet, addr) = (net.internet(), reflector_addr());
    net.add_host(
        "reflector",
        inet,
        *addr.ip(),
        addr.port(),
        None,
        Probe::default(),
    )
}

/// Adds host `name` on `side`: public at 192.0.2.`n`, or at 192.168.1.10 in
/// its own LAN behind a NAT with public IP 198.51.100.`n` (a firewall's
/// host uses that public IP itself).
fn add_side(net: &mut Net, name: &str, side: Side, n: u8) -> (HostId, Option<NatId>) {
    let inet = net.internet();
    let Side::Nat(ty) = side else {
        return (public_host(net, name, ip(192, 0, 2, n)), None);
    };
    let lan = net.add_realm(format!("{name}-lan"));
    let public = ip(198, 51, 100, n);
    let cfg = NatConfig::new(
        format!("{name}-nat"),
        ty,
        lan,
        ip(192, 168, 1, 1),
        inet,
        public,
    );
    let nat = net.add_nat(cfg);
    let addr = if ty == NatType::Firewall {
        public
    } else {
        ip(192, 168, 1, 10)
    };
    (
        net.add_host(name, lan, addr, PORT, Some(nat), Probe::default()),
        Some(nat),
    )
}

/// Asks `reflector` which address `host`'s packets come from.
fn whoami(net: &mut Net, host: HostId, reflector: SocketAddrV4) -> SocketAddrV4 {
    let answers = |n: &Net| n.endpoint(host).count(|r| r.from == reflector);
    let before = answers(net);
    poke(net, host, reflector, b"whoami");
    let ok = net.run_until_cond(Duration::from_secs(1), |n| answers(n) > before);
    assert!(ok, "{} got no answer from {reflector}", net.host_name(host));
    net.endpoint(host)
        .reflexive_from(reflector)
        .expect("the reflector answers `you-are ADDR`")
}

/// Whether `host` received anything from `from` since the start.
fn heard_from(net: &Net, host: HostId, from: SocketAddrV4) -> bool {
    net.endpoint(host).count(|r| r.from == from) > 0
}

/// Single-NAT behaviour for one side, in the columns of
/// [`nat_behaviour_matches_rfc_4787`].
fn behaviour(side: Side) -> [bool; 5] {
    let mut net = Net::new(11);
    let inet = net.internet();
    let r1 = reflector_addr();
    add_reflector(&mut net);
    let r1_other_port = SocketAddrV4::new(*r1.ip(), 3479);
    let r2 = SocketAddrV4::new(ip(203, 0, 113, 2), 3478);
    let third = SocketAddrV4::new(ip(203, 0, 113, 3), PORT);
    let echo = SocketAddrV4::new(ip(203, 0, 113, 4), PORT);
    let mut others = Vec::new();
    for (name, addr) in [
        ("r1-3479", r1_other_port),
        ("r2", r2),
        ("third", third),
        ("echo", echo),
    ] {
        others.push(net.add_host(name, inet, *addr.ip(), addr.port(), None, Probe::default()));
    }
    let [r1b_host, _, third_host, _] = others[..] else {
        unreachable!("four hosts added")
    };
    let (c, _) = add_side(&mut net, "c", side, 1);

    poke(&mut net, c, echo, b"ping");
    net.run_for(ms(200));
    let outbound = heard_from(&net, c, echo);

    let m1 = whoami(&mut net, c, r1);
    if matches!(side, Side::Public | Side::Nat(NatType::Firewall)) {
        assert_eq!(m1, net.host_addr(c), "{}: no translation", side.label());
    }
    poke(&mut net, r1b_host, m1, b"probe");
    poke(&mut net, third_host, m1, b"probe");
    net.run_for(ms(200));
    let from_other_port = heard_from(&net, c, r1_other_port);
    let from_third_party = heard_from(&net, c, third);

    let same_across_ports = whoami(&mut net, c, r1_other_port) == m1;
    let same_across_addrs = whoami(&mut net, c, r2) == m1;
    [
        outbound,
        from_other_port,
        from_third_party,
        same_across_ports,
        same_across_addrs,
    ]
}

#[test]
fn nat_behaviour_matches_rfc_4787() {
    // Columns: (a) ping to a public echo server is answered; filtering of a
    // packet to the mapping from the reflector's IP on another port, and (b)
    // from an unrelated third party; mapping reuse toward the same IP on
    // another port, and toward another IP.
    let expected: [(Side, [bool; 5]); 6] = [
        (SIDES[0], [Y, Y, Y, Y, Y]),
        (SIDES[1], [Y, Y, Y, Y, Y]),
        (SIDES[2], [Y, Y, N, Y, Y]),
        (SIDES[3], [Y, N, N, Y, Y]),
        (SIDES[4], [Y, N, N, N, N]),
        (SIDES[5], [Y, N, N, Y, Y]),
    ];
    println!("side        out  in:port  in:3rd  map=port  map=addr");
    let mut failures = Vec::new();
    for (side, want) in expected {
        let got = behaviour(side);
        let cells: Vec<&str> = got.iter().map(|b| if *b { "yes" } else { "no" }).collect();
        println!(
            "{:<10}  {:<3}  {:<7}  {:<6}  {:<8}  {}",
            side.label(),
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4]
        );
        if got != want {
            failures.push(format!("{}: got {got:?}, want {want:?}", side.label()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Two hosts learn their reflexive addresses from the reflector (and each
/// other's, out of band). Then A sends a ping to B's reflexive address; if
/// `simultaneous`, B sends one to A's at the same instant. Success: each
/// heard from the other's public IP (a ping or a pong) within two seconds.
fn exchange(a_side: Side, b_side: Side, simultaneous: bool) -> bool {
    let mut net = Net::new(12);
    add_reflector(&mut net);
    let (a, _) = add_side(&mut net, "a", a_side, 1);
    let (b, _) = add_side(&mut net, "b", b_side, 2);
    let ra = whoami(&mut net, a, reflector_addr());
    let rb = whoami(&mut net, b, reflector_addr());
    poke(&mut net, a, rb, b"ping from a");
    if simultaneous {
        poke(&mut net, b, ra, b"ping from b");
    }
    net.run_for(Duration::from_secs(2));
    let a_heard_b = net.endpoint(a).count(|r| r.from.ip() == rb.ip()) > 0;
    let b_heard_a = net.endpoint(b).count(|r| r.from.ip() == ra.ip()) > 0;
    a_heard_b && b_heard_a
}

/// Runs `exchange` over every pair, prints the grid, returns mismatches.
fn grid(title: &str, simultaneous: bool, expected: [[bool; 6]; 6]) -> Vec<String> {
    println!("{title} (rows: A, columns: B)");
    let header: Vec<String> = SIDES.iter().map(|s| format!("{:<11}", s.label())).collect();
    println!("{:<11} {}", "", header.concat());
    let mut failures = Vec::new();
    for (i, a) in SIDES.into_iter().enumerate() {
        let mut row = String::new();
        for (j, b) in SIDES.into_iter().enumerate() {
            let got = exchange(a, b, simultaneous);
            row.push_str(&format!("{:<11}", if got { "ok" } else { "--" }));
            if got != expected[i][j] {
                failures.push(format!(
                    "{title}: {} -> {}: got {got}",
                    a.label(),
                    b.label()
                ));
            }
        }
        println!("{:<11} {row}", a.label());
    }
    failures
}

#[test]
fn hole_punching_grid_matches_rfc_4787() {
    // (a) Uncoordinated: A's packet reaches B only if B's NAT admits an
    // endpoint B never sent to (public or endpoint-independent filtering);
    // B's reply then always passes A's NAT, which just sent to B.
    let uncoordinated = [
        [Y, Y, N, N, N, N],
        [Y, Y, N, N, N, N],
        [Y, Y, N, N, N, N],
        [Y, Y, N, N, N, N],
        [Y, Y, N, N, N, N],
        [Y, Y, N, N, N, N],
    ];
    // (c) Simultaneous: each NAT translates its host's ping when sent and
    // filters the peer's ping when it arrives, by which time its own ping
    // opened the way. It fails only if neither ping gets through: a
    // symmetric NAT sends from a new port, which a peer with
    // port-dependent filtering (port-restricted, firewall, symmetric)
    // refuses, while the peer's ping hits the symmetric NAT's reflector
    // mapping, which only admits the reflector. Address-dependent
    // (restricted cone) or open filtering admits the new port, and the pong
    // goes back through the mapping the symmetric side opened.
    let simultaneous = [
        [Y, Y, Y, Y, Y, Y],
        [Y, Y, Y, Y, Y, Y],
        [Y, Y, Y, Y, Y, Y],
        [Y, Y, Y, Y, N, Y],
        [Y, Y, Y, N, N, N],
        [Y, Y, Y, Y, N, Y],
    ];
    let mut failures = grid("(a) A sends first, uncoordinated", false, uncoordinated);
    failures.extend(grid("(c) simultaneous hole punch", true, simultaneous));
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn custom_behaviour_address_dependent_mapping_with_open_filtering() {
    let mut net = Net::new(18);
    let inet = net.internet();
    add_reflector(&mut net);
    let r1b = SocketAddrV4::new(ip(203, 0, 113, 1), 3479);
    let r2 = SocketAddrV4::new(ip(203, 0, 113, 2), 3478);
    net.add_host("r1b", inet, *r1b.ip(), r1b.port(), None, Probe::default());
    let r2_host = net.add_host("r2", inet, *r2.ip(), r2.port(), None, Probe::default());
    let lan = net.add_realm("lan");
    let cfg = NatConfig {
        mapping: Mapping::AddressDependent,
        filtering: Filtering::EndpointIndependent,
        ..NatConfig::new(
            "adm",
            NatType::FullCone,
            lan,
            ip(10, 0, 0, 1),
            inet,
            ip(198, 51, 100, 1),
        )
    };
    let nat = net.add_nat(cfg);
    let c = net.add_host("c", lan, ip(10, 0, 0, 2), PORT, Some(nat), Probe::default());
    let m1 = whoami(&mut net, c, reflector_addr());
    assert_eq!(
        whoami(&mut net, c, r1b),
        m1,
        "same destination IP, same mapping"
    );
    let m2 = whoami(&mut net, c, r2);
    assert_ne!(m2, m1, "another destination IP, another mapping");
    assert_eq!(net.active_mappings(nat), 2);
    // Open filtering: r2 may use the first mapping too.
    poke(&mut net, r2_host, m1, b"hello");
    net.run_for(ms(100));
    assert!(heard_from(&net, c, r2));
    assert_eq!(
        net.endpoint(c).inbox.last().map(|r| r.data.as_slice()),
        Some(&b"hello"[..])
    );
}

/// A port-restricted NAT with a 30 s mapping timeout for one host.
fn host_behind_short_lived_nat(net: &mut Net, name: &str, n: u8) -> (HostId, NatId) {
    let inet = net.internet();
    let lan = net.add_realm(format!("{name}-lan"));
    let cfg = NatConfig::new(
        format!("{name}-nat"),
        NatType::PortRestrictedCone,
        lan,
        ip(10, 0, 0, 1),
        inet,
        ip(198, 51, 100, n),
    )
    .with_mapping_timeout(Duration::from_secs(30));
    let nat = net.add_nat(cfg);
    (
        net.add_host(
            name,
            lan,
            ip(10, 0, 0, 2),
            PORT,
            Some(nat),
            Probe::default(),
        ),
        nat,
    )
}

#[test]
fn idle_mappings_expire_and_refreshed_ones_do_not() {
    let mut net = Net::new(13);
    let r = add_reflector(&mut net);
    let r_addr = reflector_addr();
    let (idle, idle_nat) = host_behind_short_lived_nat(&mut net, "idle", 1);
    let (busy, busy_nat) = host_behind_short_lived_nat(&mut net, "busy", 2);
    let idle_m = whoami(&mut net, idle, r_addr);
    let busy_m = whoami(&mut net, busy, r_addr);
    let (now, busy_m_port) = (net.now(), busy_m.port());
    net.endpoint_mut(busy)
        .start_keepalive(now, r_addr, Duration::from_secs(10));

    // Still alive after 29 s of silence: the reflector gets through.
    net.run_for(Duration::from_secs(29));
    poke(&mut net, r, idle_m, b"late-1");
    net.run_for(ms(100));
    assert_eq!(net.endpoint(idle).count_prefix(b"late-1"), 1);
    assert_eq!(net.active_mappings(idle_nat), 1);

    // Gone after 30 s without outbound traffic (inbound does not refresh).
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.active_mappings(idle_nat), 0);
    poke(&mut net, r, idle_m, b"late-2");
    net.run_for(ms(100));
    assert_eq!(net.endpoint(idle).count_prefix(b"late-2"), 0);
    assert_eq!(net.host_stats(r).dropped.no_mapping, 1);
    let idle_m2 = whoami(&mut net, idle, r_addr);
    assert_eq!(idle_m2.ip(), idle_m.ip());
    assert_ne!(
        idle_m2.port(),
        idle_m.port(),
        "a new mapping gets a new port"
    );

    // Two minutes of keepalives every 10 s keep the busy mapping.
    net.run_for(Duration::from_secs(120));
    assert_eq!(net.active_mappings(busy_nat), 1);
    assert_eq!(whoami(&mut net, busy, r_addr).port(), busy_m_port);
    poke(&mut net, r, busy_m, b"late-3");
    net.run_for(ms(100));
    assert_eq!(net.endpoint(busy).count_prefix(b"late-3"), 1);
}

#[test]
fn hosts_on_one_lan_behind_different_nats_talk_by_private_address() {
    let mut net = Net::new(14);
    let inet = net.internet();
    add_reflector(&mut net);
    let lan = net.add_realm("office");
    let up1 = NatConfig::new(
        "up1",
        NatType::PortRestrictedCone,
        lan,
        ip(10, 0, 0, 1),
        inet,
        ip(198, 51, 100, 1),
    );
    let up2 = NatConfig::new(
        "up2",
        NatType::Symmetric,
        lan,
        ip(10, 0, 0, 254),
        inet,
        ip(198, 51, 100, 2),
    );
    let (nat1, nat2) = (net.add_nat(up1), net.add_nat(up2));
    let a = net.add_host(
        "a",
        lan,
        ip(10, 0, 0, 10),
        PORT,
        Some(nat1),
        Probe::default(),
    );
    let b = net.add_host(
        "b",
        lan,
        ip(10, 0, 0, 11),
        PORT,
        Some(nat2),
        Probe::default(),
    );

    poke_host(&mut net, a, b, b"ping");
    net.run_for(ms(100));
    assert_eq!(
        net.endpoint(b).inbox[0].from,
        net.host_addr(a),
        "no NAT in between"
    );
    assert_eq!(net.endpoint(a).count_prefix(b"pong"), 1);
    assert_eq!(
        (net.active_mappings(nat1), net.active_mappings(nat2)),
        (0, 0)
    );

    assert_eq!(
        *whoami(&mut net, a, reflector_addr()).ip(),
        ip(198, 51, 100, 1)
    );
    assert_eq!(
        *whoami(&mut net, b, reflector_addr()).ip(),
        ip(198, 51, 100, 2)
    );

    // The NATs' inside addresses are on the LAN but nothing listens there.
    poke(
        &mut net,
        a,
        SocketAddrV4::new(ip(10, 0, 0, 254), PORT),
        b"ping",
    );
    net.run_for(ms(100));
    assert_eq!(net.host_stats(a).dropped.no_host, 1);
}

#[test]
fn nat_chains_translate_twice_and_need_an_unambiguous_upstream() {
    let mut net = Net::new(15);
    let inet = net.internet();
    add_reflector(&mut net);
    let carrier = net.add_realm("carrier");
    let home = net.add_realm("home");
    let cgn_cfg = NatConfig::new(
        "cgn",
        NatType::PortRestrictedCone,
        carrier,
        ip(100, 64, 0, 1),
        inet,
        ip(198, 51, 100, 50),
    );
    let cgn = net.add_nat(cgn_cfg);
    let home_cfg = NatConfig::new(
        "home",
        NatType::FullCone,
        home,
        ip(192, 168, 1, 1),
        carrier,
        ip(100, 64, 0, 2),
    );
    let home_nat = net.add_nat(home_cfg);
    let h = net.add_host(
        "h",
        home,
        ip(192, 168, 1, 10),
        PORT,
        Some(home_nat),
        Probe::default(),
    );
    let neighbour = net.add_host(
        "n",
        carrier,
        ip(100, 64, 0, 3),
        PORT,
        Some(cgn),
        Probe::default(),
    );

    let m = whoami(&mut net, h, reflector_addr());
    assert_eq!(*m.ip(), ip(198, 51, 100, 50), "translated by both NATs");
    assert_eq!(
        (net.active_mappings(home_nat), net.active_mappings(cgn)),
        (1, 1)
    );

    // Another customer of the carrier reaches h through the home NAT's
    // full-cone mapping inside the carrier realm (port 40000: the first).
    poke(
        &mut net,
        neighbour,
        SocketAddrV4::new(ip(100, 64, 0, 2), 40000),
        b"ping",
    );
    net.run_for(ms(100));
    assert_eq!(
        net.endpoint(h).inbox.last().map(|r| r.from),
        Some(net.host_addr(neighbour))
    );
    assert_eq!(net.endpoint(neighbour).count_prefix(b"pong"), 1);

    // A second uplink for the carrier makes the home NAT's upstream ambiguous.
    let cgn2_cfg = NatConfig::new(
        "cgn2",
        NatType::FullCone,
        carrier,
        ip(100, 64, 0, 254),
        inet,
        ip(198, 51, 100, 51),
    );
    let cgn2 = net.add_nat(cgn2_cfg);
    poke(&mut net, h, reflector_addr(), b"whoami");
    net.run_for(ms(100));
    assert_eq!(net.host_stats(h).dropped.no_route, 1);
    net.set_nat_gateway(home_nat, cgn2)
        .expect("cgn2 serves the carrier realm");
    assert_eq!(
        *whoami(&mut net, h, reflector_addr()).ip(),
        ip(198, 51, 100, 51)
    );
}

#[test]
fn hairpinning_uses_the_external_address_and_can_be_turned_off() {
    let mut net = Net::new(16);
    let inet = net.internet();
    add_reflector(&mut net);
    let lan = net.add_realm("lan");
    let cfg = NatConfig::new(
        "nat",
        NatType::FullCone,
        lan,
        ip(10, 0, 0, 1),
        inet,
        ip(198, 51, 100, 1),
    );
    let nat = net.add_nat(cfg);
    let a = net.add_host("a", lan, ip(10, 0, 0, 2), PORT, Some(nat), Probe::default());
    let b = net.add_host("b", lan, ip(10, 0, 0, 3), PORT, Some(nat), Probe::default());
    let ra = whoami(&mut net, a, reflector_addr());
    let rb = whoami(&mut net, b, reflector_addr());

    poke(&mut net, a, rb, b"ping");
    net.run_for(ms(100));
    assert_eq!(net.endpoint(b).inbox.last().map(|r| r.from), Some(ra));
    assert!(heard_from(&net, a, rb));

    net.set_hairpinning(nat, false);
    poke(&mut net, a, rb, b"ping");
    net.run_for(ms(100));
    assert_eq!(net.host_stats(a).dropped.no_route, 1);
}

#[test]
fn every_drop_reason_is_counted_globally_and_per_host() {
    let mut net = Net::new(17);
    net.enable_trace();
    let r = add_reflector(&mut net);
    let r_addr = reflector_addr();
    let (c, nat) = add_side(&mut net, "c", Side::Nat(NatType::PortRestrictedCone), 1);
    let nat = nat.expect("c is behind a NAT");
    let t = public_host(&mut net, "t", ip(203, 0, 113, 3));
    let lossy = public_host(&mut net, "lossy", ip(192, 0, 2, 9));
    net.set_link(
        lossy,
        crate::sim::LinkParams {
            latency: ms(5),
            loss: 1.0,
        },
    );
    let island = net.add_realm("island");
    let orphan = net.add_host(
        "orphan",
        island,
        ip(10, 9, 0, 2),
        PORT,
        None,
        Probe::default(),
    );
    let m = whoami(&mut net, c, r_addr);
    let nat_ip = *m.ip();
    assert_eq!(net.active_mappings(nat), 1);

    poke(&mut net, lossy, r_addr, b"x"); // loss
    net.block(t, r);
    poke(&mut net, t, r_addr, b"x"); // blocked
    poke(&mut net, t, m, b"x"); // filtered by the port-restricted NAT
    poke(&mut net, t, SocketAddrV4::new(nat_ip, 1234), b"x"); // no mapping
    poke(&mut net, orphan, r_addr, b"x"); // no route: no gateway
    poke_host(&mut net, r, c, b"x"); // no route: private address
    poke(&mut net, t, SocketAddrV4::new(*r_addr.ip(), 9999), b"x"); // no host: closed port
    poke(
        &mut net,
        c,
        SocketAddrV4::new(ip(192, 168, 1, 1), PORT),
        b"x",
    ); // no host: NAT inside
    net.run_for(Duration::from_secs(1));

    let s = *net.stats();
    let d = s.dropped;
    let counts = [
        d.loss,
        d.blocked,
        d.filtered,
        d.no_mapping,
        d.no_route,
        d.no_host,
    ];
    assert_eq!(counts, [1, 1, 1, 1, 2, 2], "{d:?}");
    for reason in DropReason::ALL {
        assert!(d.get(reason) > 0, "{reason}");
    }
    assert_eq!((s.sent, s.delivered, s.received), (10, 2, 2));
    let td = net.host_stats(t).dropped;
    assert_eq!(
        (
            td.blocked,
            td.filtered,
            td.no_mapping,
            td.no_host,
            td.total()
        ),
        (1, 1, 1, 1, 4)
    );
    assert_eq!(net.host_stats(lossy).dropped.loss, 1);
    assert_eq!(net.host_stats(orphan).dropped.no_route, 1);
    assert_eq!(net.host_stats(r).dropped.no_route, 1);
    assert_eq!(
        (
            net.host_stats(c).dropped.no_host,
            net.host_stats(c).received
        ),
        (1, 1)
    );

    let filtered = net
        .trace()
        .iter()
        .find(|e| e.outcome == Outcome::Dropped(DropReason::Filtered))
        .expect("the filtered packet is traced");
    assert_eq!((filtered.from, filtered.to, filtered.dst), (t, Some(c), m));
    assert_eq!(
        filtered.time - filtered.sent,
        ms(10),
        "filtered on arrival, after the links"
    );
    assert_eq!(net.trace().len(), 10);
}
