//! `node_session`: arbitrary traffic into a node that holds real sessions.
//!
//! The input is a program of up to [`MAX_OPS`] operations on the
//! [`Session`] fixture. Each starts with an opcode byte; its low three bits
//! pick the operation, the high bits a variant (which peer, which source
//! address):
//!
//! | op | what |
//! |----|------|
//! | 0 | a chunk sealed by `peer` or `third` with its real session keys, received by the node (so it passes decryption and reaches the plaintext, peer-frame and relay handling) |
//! | 1 | a raw chunk as a UDP datagram (handshakes, unknown indices, garbage) |
//! | 2 | a chunk handed to `handle_decrypted` as the data plane would (authenticated by the keys that opened it) |
//! | 3 | a relay frame sealed by `peer`: forward to / deliver from a chosen peer; the inner datagram is the chunk, or the chunk sealed by `third` (a relayed session message) |
//! | 4 | timers: advance the clock by a u16 of milliseconds, or jump to the node's next deadline |
//! | 5 | a packet read from the node's TUN: the chunk, or an IPv4 header to a peer's prefix in front of it |
//! | 6 | a new handshake: `peer` or `third` initiates and completes it (rekey), or the node's probe / announce paths via `probe` |
//! | 7 | a structured frame from `peer`/`third`: an `Announce`, `Withdraw`, `PeerInfo`, `PunchRequest` or `ProbeReply` whose fields come from the input |
//!
//! After every operation the node's transmits go to the peers (which answer
//! handshakes and probes) and its TUN output is checked (see
//! [`Session::drain`]); at the end its routes are checked
//! ([`Session::check_routes`]), a snapshot is taken and the node stopped.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use vine_core::Ipv4Prefix;
use vine_core::frame::{self, Candidates, Frame, RelayDirection};
use vine_core::node::build_test_packet;

use crate::input::Input;
use crate::session::{self, NETWORK_ID, NODE_IP, Session, Who};

/// Most operations one input runs.
pub const MAX_OPS: usize = 48;

/// Runs one input (see the module docs).
pub fn node_session(data: &[u8]) {
    let mut s = Session::new(false);
    let mut input = Input::new(data);
    for _ in 0..MAX_OPS {
        let Some(op) = input.next_byte() else {
            break;
        };
        let icmp_ok = run_op(&mut s, op, &mut input);
        s.pump();
        s.drain(icmp_ok);
        s.check_routes();
    }
    let snap = s.node.snapshot(s.now);
    let _ = serde_json::to_string(&snap).expect("snapshots serialize");
    let _ = s.node.counters();
    s.node.stop(s.now);
    s.pump();
    s.drain(false);
}

/// Runs one operation; returns whether the node may answer it with an ICMP
/// error of its own on the TUN.
fn run_op(s: &mut Session, op: u8, input: &mut Input<'_>) -> bool {
    let who = if op & 0x08 == 0 {
        Who::Peer
    } else {
        Who::Third
    };
    let from = source(who, op >> 4);
    match op & 7 {
        0 => {
            let plain = input.chunk();
            s.send_sealed(who, from, plain);
        }
        1 => {
            let datagram = input.chunk();
            s.node.handle_datagram(s.now, from, datagram);
        }
        2 => {
            let plain = input.chunk().to_vec();
            s.node.handle_decrypted(s.now, from, who.id(), &plain);
        }
        3 => relay(s, op, input),
        4 => {
            if op & 0x08 == 0 {
                let ms = input.u16();
                s.advance(Duration::from_millis(u64::from(ms)));
            } else {
                s.next_timer(Duration::from_secs(600));
            }
        }
        5 => {
            let body = input.chunk();
            let packet = if op & 0x10 == 0 {
                body.to_vec()
            } else {
                let host = u32::from(input.u8());
                let dst = Ipv4Addr::from(u32::from(who.prefix().network()) | host);
                let mut p = build_test_packet(NODE_IP, dst, body);
                if op & 0x20 != 0 {
                    vine_core::node::set_dont_fragment(&mut p);
                }
                p
            };
            s.node.handle_tun_packet(s.now, &packet);
            return true;
        }
        6 => handshake(s, who, op),
        _ => {
            let msg = structured(who, op >> 4, input);
            s.send_frame(who, from, &msg);
        }
    }
    false
}

/// The source address of a datagram from `who`: its own address mostly,
/// else a NAT mapping of it or an unrelated address.
fn source(who: Who, variant: u8) -> SocketAddrV4 {
    match variant {
        0..=11 => who.addr(),
        12 | 13 => SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 40_000 + u16::from(variant)),
        14 => SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), who.addr().port()),
        _ => session::NODE_ADDR,
    }
}

/// Op 3: a relay frame sealed by `peer` (the relay-capable one).
fn relay(s: &mut Session, op: u8, input: &mut Input<'_>) {
    let direction = if op & 0x08 == 0 {
        RelayDirection::Forward
    } else {
        RelayDirection::Deliver
    };
    let target = match (op >> 4) & 3 {
        0 => Who::Third.id(),
        1 => Who::Peer.id(),
        2 => session::node_id(),
        _ => session::stranger_id(),
    };
    let chunk = input.chunk();
    let inner = if op & 0x40 != 0 {
        s.seal(Who::Third, chunk).unwrap_or_else(|| chunk.to_vec())
    } else {
        chunk.to_vec()
    };
    if inner.is_empty() || inner.len() > usize::from(u16::MAX) {
        return;
    }
    let mut plain = Vec::new();
    frame::encode_relay(direction, &target, &inner, &mut plain);
    s.send_sealed(Who::Peer, session::PEER_ADDR, &plain);
}

/// Op 6: a new handshake from `who`, or a user probe.
fn handshake(s: &mut Session, who: Who, op: u8) {
    if op & 0x10 != 0 {
        let _ = s.node.probe(s.now, &who.id());
        return;
    }
    let me = session::node_id();
    let now = s.now;
    let Ok(init) = s.wg(who).initiate(now, session::WALL, &me) else {
        return;
    };
    let from = who.addr();
    s.node.handle_datagram(now, from, &init);
    // The response comes back through `pump`; the first message on the new
    // keys (a keepalive) confirms them at the node.
    s.pump();
    s.send_sealed(who, from, &[]);
}

/// Op 7: a well-formed frame with fuzzed fields.
fn structured(who: Who, kind: u8, input: &mut Input<'_>) -> Frame {
    let addr = |input: &mut Input<'_>| {
        let b = input.take(6);
        let mut a = [0u8; 6];
        a[..b.len()].copy_from_slice(b);
        SocketAddrV4::new(
            Ipv4Addr::new(a[0], a[1], a[2], a[3]),
            u16::from_le_bytes([a[4], a[5]]),
        )
    };
    let candidates = |input: &mut Input<'_>| {
        let n = usize::from(input.u8() % 4);
        Candidates {
            local: (0..n).map(|_| addr(input)).collect(),
            reflexive: (0..usize::from(input.u8() % 3))
                .map(|_| addr(input))
                .collect(),
        }
    };
    let prefix = |input: &mut Input<'_>| {
        let base = who.prefix().network();
        let a = u32::from(base) ^ u32::from(input.u16()) << 8;
        Ipv4Prefix::containing_clamped(Ipv4Addr::from(a), 16 + input.u8() % 17)
    };
    let peer = |input: &mut Input<'_>| match input.u8() % 4 {
        0 => Who::Third.id(),
        1 => Who::Peer.id(),
        2 => session::node_id(),
        _ => session::stranger_id(),
    };
    let network_id = |input: &mut Input<'_>| {
        if input.u8() & 1 == 0 {
            NETWORK_ID.to_owned()
        } else {
            "other-net".to_owned()
        }
    };
    match kind % 6 {
        0 => Frame::Announce {
            network_id: network_id(input),
            prefix: if input.u8() & 1 == 0 {
                who.prefix()
            } else {
                prefix(input)
            },
            candidates: candidates(input),
            seq: input.u64(),
        },
        1 => Frame::Withdraw {
            network_id: network_id(input),
            prefix: if input.u8() & 1 == 0 {
                who.prefix()
            } else {
                prefix(input)
            },
        },
        2 => Frame::PeerInfo {
            peer: peer(input),
            candidates: candidates(input),
        },
        3 => Frame::PunchRequest {
            target: peer(input),
            candidates: candidates(input),
        },
        4 => Frame::PunchNotify {
            from: peer(input),
            candidates: candidates(input),
        },
        _ => Frame::ProbeReply {
            id: u64::from(input.u8()),
            observed: addr(input),
        },
    }
}
