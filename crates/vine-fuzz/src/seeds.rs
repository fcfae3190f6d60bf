//! Seed inputs of the targets whose input is a program or a binary
//! structure (written to `fuzz/seeds/<target>/` by
//! `fuzz/examples/gen_seeds.rs`): valid frames, handshakes, batches,
//! netlink replies, receive headers and control requests, so the fuzzer
//! starts from inputs that reach deep code.

use std::net::Ipv4Addr;

use netlink_packet_core::{
    DefaultNla, DoneMessage, ErrorMessage, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoTun, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use vine_core::frame::{Candidates, Frame, RelayRefusal};
use vine_core::node::build_test_packet;
use vine_daemon::api::{Request, RequestBody, Response, ResponseBody, encode_line};

use crate::input::Program;
use crate::session::{self, Who};

/// One seed: target, file name, bytes.
pub type Seed = (&'static str, &'static str, Vec<u8>);

/// Every generated seed.
pub fn all() -> Vec<Seed> {
    let mut out = Vec::new();
    out.extend(node_session());
    out.extend(dataplane_batch());
    out.extend(wg_decrypt());
    out.extend(netlink_reply());
    out.extend(udp_cmsg());
    out.extend(control_json());
    out
}

fn peer_packet(payload: &[u8]) -> Vec<u8> {
    build_test_packet(Ipv4Addr::new(10, 2, 0, 7), session::NODE_IP, payload)
}

fn third_packet(payload: &[u8]) -> Vec<u8> {
    build_test_packet(Ipv4Addr::new(10, 3, 0, 5), session::NODE_IP, payload)
}

fn frames() -> Vec<(&'static str, Frame)> {
    let cands = Candidates {
        local: vec![session::THIRD_ADDR],
        reflexive: vec!["203.0.113.30:41000".parse().expect("address")],
    };
    vec![
        ("announce", Who::Peer.announce(2)),
        (
            "withdraw",
            Frame::Withdraw {
                network_id: session::NETWORK_ID.into(),
                prefix: session::peer_prefix(),
            },
        ),
        (
            "peer-info",
            Frame::PeerInfo {
                peer: Who::Third.id(),
                candidates: cands.clone(),
            },
        ),
        (
            "punch-request",
            Frame::PunchRequest {
                target: Who::Third.id(),
                candidates: cands.clone(),
            },
        ),
        (
            "punch-notify",
            Frame::PunchNotify {
                from: Who::Third.id(),
                candidates: cands,
            },
        ),
        ("probe", Frame::Probe { id: 7 }),
        (
            "probe-reply",
            Frame::ProbeReply {
                id: 1,
                observed: session::NODE_ADDR,
            },
        ),
        (
            "relay-refused",
            Frame::RelayRefused {
                peer: Who::Third.id(),
                reason: RelayRefusal::DestinationUnreachable,
            },
        ),
    ]
}

/// `node_session` programs (see its module docs for the opcodes).
pub fn node_session() -> Vec<Seed> {
    let mut out = Vec::new();
    let names = [
        "sealed-announce",
        "sealed-withdraw",
        "sealed-peer-info",
        "sealed-punch-request",
        "sealed-punch-notify",
        "sealed-probe",
        "sealed-probe-reply",
        "sealed-relay-refused",
    ];
    for ((_, f), name) in frames().into_iter().zip(names) {
        out.push((
            "node_session",
            name,
            Program::new().byte(0).chunk(&f.to_bytes()).build(),
        ));
    }
    let data = peer_packet(b"hello from peer");
    out.push((
        "node_session",
        "sealed-data",
        Program::new().byte(0).chunk(&data).build(),
    ));
    out.push((
        "node_session",
        "decrypted-data-roaming",
        Program::new().byte(2 | 0xc0).chunk(&data).build(),
    ));
    out.push((
        "node_session",
        "relay-forward-to-third",
        Program::new()
            .byte(3)
            .chunk(&third_packet(b"via relay"))
            .build(),
    ));
    out.push((
        "node_session",
        "relay-deliver-from-third-sealed",
        Program::new()
            .byte(3 | 0x08 | 0x40)
            .chunk(&third_packet(b"relayed session"))
            .build(),
    ));
    out.push((
        "node_session",
        "tun-to-peer-and-timers",
        Program::new()
            .byte(5 | 0x10)
            .chunk(b"ping payload")
            .byte(0)
            .byte(4)
            .u16(5000)
            .byte(4 | 0x08)
            .byte(4 | 0x08)
            .byte(5 | 0x18 | 0x20)
            .chunk(&[0x55; 1400])
            .byte(3)
            .build(),
    ));
    out.push((
        "node_session",
        "rekey-and-probe",
        Program::new()
            .byte(6)
            .byte(6 | 0x08)
            .byte(6 | 0x10)
            .byte(4)
            .u16(200)
            .build(),
    ));
    out.push((
        "node_session",
        "structured",
        Program::new()
            // Announce: own network and prefix, one candidate, seq 3.
            .byte(7)
            .byte(0)
            .byte(0)
            .byte(1)
            .raw(&[198, 51, 100, 20, 0x04, 0x10])
            .byte(0)
            .u64(3)
            // PeerInfo about third (kind 2).
            .byte(7 | 0x20)
            .byte(0)
            .byte(1)
            .raw(&[192, 0, 2, 3, 0x04, 0x10])
            .byte(0)
            // ProbeReply (kind 5).
            .byte(7 | 0x50)
            .byte(1)
            .raw(&[192, 0, 2, 1, 0x04, 0x10])
            .build(),
    ));
    out.push((
        "node_session",
        "raw-initiation-shaped",
        Program::new()
            .byte(1)
            .chunk(&{
                let mut d = vec![1, 0, 0, 0];
                d.resize(148, 0x5a);
                d
            })
            .build(),
    ));
    out
}

/// `dataplane_batch` receives.
pub fn dataplane_batch() -> Vec<Seed> {
    let data = peer_packet(b"fast path payload");
    let batch = |n: u8, kinds: &[u8]| {
        let mut p = Program::new().byte(n - 1);
        for &k in kinds {
            p = p.byte(k);
            p = match k & 7 {
                1 | 2 => p.chunk(b"fast path payload").u16(20).byte(3),
                4 => p.u64(9).chunk(&[0u8; 32]),
                5 => p.byte(0),
                _ => p.chunk(&data),
            };
        }
        p.build()
    };
    vec![
        ("dataplane_batch", "one-data", batch(1, &[1])),
        ("dataplane_batch", "gro-pair", batch(2, &[1, 1])),
        (
            "dataplane_batch",
            "gro-mixed",
            batch(8, &[1, 1, 2, 5, 0, 3, 4, 6]),
        ),
        ("dataplane_batch", "gro-64", batch(64, &[1; 64])),
        ("dataplane_batch", "gro-65", batch(65, &[1; 65])),
        ("dataplane_batch", "roamed", {
            let mut v = batch(2, &[1, 1]);
            v[0] |= 0x80;
            v
        }),
    ]
}

/// `wg_decrypt` programs.
pub fn wg_decrypt() -> Vec<Seed> {
    vec![
        (
            "wg_decrypt",
            "initiation",
            Program::new().byte(1).byte(0).build(),
        ),
        (
            "wg_decrypt",
            "initiation-then-data",
            Program::new()
                .byte(1)
                .byte(0)
                .byte(3)
                .chunk(&peer_packet(b"data"))
                .byte(0)
                .byte(4)
                .chunk(b"back")
                .byte(6)
                .byte(0)
                .build(),
        ),
        (
            "wg_decrypt",
            "responder-initiates",
            Program::new()
                .byte(2)
                .byte(0)
                .byte(3)
                .chunk(b"x")
                .byte(0)
                .build(),
        ),
        (
            "wg_decrypt",
            "mutated-initiation-mac2",
            Program::new()
                .byte(1 | 8)
                .byte(0x11)
                .byte(2)
                .byte(40)
                .byte(0x80)
                .byte(100)
                .byte(1)
                .build(),
        ),
        (
            "wg_decrypt",
            "timers",
            Program::new()
                .byte(1)
                .byte(0)
                .byte(5 | 8)
                .u16(8000)
                .byte(5 | 8)
                .u16(60000)
                .byte(3)
                .chunk(b"late")
                .byte(0)
                .build(),
        ),
        ("wg_decrypt", "init-prefix", vec![1, 0, 0, 0]),
    ]
}

fn netlink(seq: u32, payload: NetlinkPayload<RouteNetlinkMessage>) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, payload);
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// `netlink_reply` buffers (the first four bytes are the request's
/// sequence number, 7).
pub fn netlink_reply() -> Vec<Seed> {
    let seq = 7u32;
    let mut link = LinkMessage::default();
    link.header.index = 5;
    link.header.flags = LinkFlags::Up;
    link.attributes = vec![
        LinkAttribute::IfName("vine0".into()),
        LinkAttribute::Mtu(1400),
        LinkAttribute::Carrier(1),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Tun),
            LinkInfo::Data(InfoData::Tun(vec![
                InfoTun::Other(DefaultNla::new(6, vec![1])),
                InfoTun::Other(DefaultNla::new(8, 2u32.to_ne_bytes().to_vec())),
            ])),
        ]),
    ];
    let mut route = RouteMessage::default();
    route.header.address_family = AddressFamily::Inet;
    route.header.destination_prefix_length = 24;
    route.header.table = RouteHeader::RT_TABLE_MAIN;
    route.attributes = vec![
        RouteAttribute::Destination(RouteAddress::Inet(Ipv4Addr::new(10, 2, 0, 0))),
        RouteAttribute::Oif(5),
        RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(192, 0, 2, 254))),
    ];
    let mut done = DoneMessage::default();
    done.code = 0;
    let mut nack = ErrorMessage::default();
    nack.code = std::num::NonZeroI32::new(-17);
    let with_seq = |body: Vec<u8>| {
        let mut v = seq.to_le_bytes().to_vec();
        v.extend(body);
        v
    };
    let dump = [
        netlink(
            seq,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link.clone())),
        ),
        netlink(
            seq,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)),
        ),
        netlink(
            seq + 1,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)),
        ),
        netlink(seq, NetlinkPayload::Done(done)),
    ]
    .concat();
    vec![
        ("netlink_reply", "dump-link-route-done", with_seq(dump)),
        (
            "netlink_reply",
            "nack",
            with_seq(netlink(seq, NetlinkPayload::Error(nack))),
        ),
        (
            "netlink_reply",
            "ack",
            with_seq(netlink(seq, NetlinkPayload::Error(ErrorMessage::default()))),
        ),
    ]
}

/// A `cmsghdr` of `len` bytes at level/type, then `data`, padded to 8.
fn cmsg(len: usize, level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
    let mut v = len.to_ne_bytes().to_vec();
    v.extend(level.to_ne_bytes());
    v.extend(kind.to_ne_bytes());
    v.extend(data);
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
    v
}

/// `udp_cmsg` receive headers.
pub fn udp_cmsg() -> Vec<Seed> {
    let name = |family: u16| {
        let mut n = family.to_ne_bytes().to_vec();
        n.extend(4100u16.to_be().to_ne_bytes());
        n.extend(u32::from(Ipv4Addr::new(192, 0, 2, 2)).to_be().to_ne_bytes());
        n
    };
    let header = |family: u16, msg_len: u32, control: &[u8]| {
        let mut v = name(family);
        v.push(0); // namelen: sizeof(sockaddr_in)
        v.extend(msg_len.to_le_bytes());
        v.extend(u16::try_from(control.len()).expect("small").to_le_bytes());
        v.extend(control);
        v
    };
    let inet = libc::AF_INET as u16;
    let gro = cmsg(20, libc::SOL_UDP, libc::UDP_GRO, &1400i32.to_ne_bytes());
    let other = cmsg(20, libc::SOL_IP, libc::IP_TTL, &64i32.to_ne_bytes());
    vec![
        ("udp_cmsg", "gro-1400", header(inet, 4200, &gro)),
        ("udp_cmsg", "no-control", header(inet, 1200, &[])),
        (
            "udp_cmsg",
            "ttl-then-gro",
            header(inet, 9000, &[other, gro.clone()].concat()),
        ),
        (
            "udp_cmsg",
            "ipv6-sender",
            header(libc::AF_INET6 as u16, 100, &gro),
        ),
    ]
}

/// `control_json` request and response lines.
pub fn control_json() -> Vec<Seed> {
    let line = |body: RequestBody| {
        let mut l = encode_line(&Request::new(body));
        l.pop();
        l
    };
    let mut out = vec![
        ("control_json", "status", line(RequestBody::Status)),
        ("control_json", "peers", line(RequestBody::Peers)),
        ("control_json", "routes", line(RequestBody::Routes)),
        ("control_json", "sessions", line(RequestBody::Sessions)),
        ("control_json", "counters", line(RequestBody::Counters)),
        ("control_json", "snapshot", line(RequestBody::Snapshot)),
        (
            "control_json",
            "ping",
            line(RequestBody::Ping {
                address: Ipv4Addr::new(10, 2, 0, 1),
                count: 3,
            }),
        ),
        (
            "control_json",
            "explain-name",
            line(RequestBody::Explain {
                peer: "peer".into(),
            }),
        ),
        (
            "control_json",
            "explain-id",
            line(RequestBody::Explain {
                peer: Who::Third.id().to_string(),
            }),
        ),
        (
            "control_json",
            "explain-address",
            line(RequestBody::Explain {
                peer: "10.3.0.9".into(),
            }),
        ),
        (
            "control_json",
            "wrong-version",
            br#"{"version":2,"body":{"type":"status"}}"#.to_vec(),
        ),
    ];
    let mut shutting = encode_line(&Response::ok(ResponseBody::ShuttingDown));
    shutting.pop();
    out.push(("control_json", "response", shutting));
    out
}
