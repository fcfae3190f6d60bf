//! Interop with boringtun (an independent WireGuard implementation, real
//! crypto, real clock): both handshake directions, data both ways, rekeys.
//!
//! boringtun only hands out plaintexts that look like IP packets, so the
//! payloads here are valid IPv4 packets.

use std::time::{Duration, Instant};

use boringtun::noise::{Tunn, TunnResult};
use x25519_dalek::{PublicKey, StaticSecret};

use super::super::{Received, Wg, ip_packet_len};
use super::WALL;
use crate::peer_id::PeerId;

/// A minimal IPv4/UDP-protocol packet from 192.0.2.1 to 192.0.2.2 (bytes
/// in memory only) with a valid header checksum.
fn ipv4_packet(payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("test payloads are small");
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[192, 0, 2, 1]);
    p[16..20].copy_from_slice(&[192, 0, 2, 2]);
    let sum: u32 = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !u16::try_from((folded & 0xffff) + (folded >> 16)).expect("folded twice");
    p[10..12].copy_from_slice(&checksum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn to_network(result: TunnResult<'_>) -> Vec<u8> {
    match result {
        TunnResult::WriteToNetwork(bytes) => bytes.to_vec(),
        other => panic!("expected a datagram from boringtun, got {other:?}"),
    }
}

fn to_tunnel(result: TunnResult<'_>) -> Vec<u8> {
    match result {
        TunnResult::WriteToTunnelV4(bytes, _) => bytes.to_vec(),
        other => panic!("expected a plaintext from boringtun, got {other:?}"),
    }
}

/// Our node and a boringtun tunnel that know each other.
fn setup() -> (Wg, PeerId, Tunn) {
    let bt_secret = StaticSecret::from([0x42; 32]);
    let bt_id = PeerId::from_public_key(PublicKey::from(&bt_secret).to_bytes());
    let mut ours = Wg::new(StaticSecret::from([0x24; 32]), [3; 32]);
    ours.add_peer(bt_id);
    let our_public = PublicKey::from(*ours.local_peer_id().public_key());
    let bt = Tunn::new(bt_secret, our_public, None, None, 7, None);
    (ours, bt_id, bt)
}

/// Data both ways over whatever sessions are current.
fn exchange(ours: &mut Wg, bt_id: &PeerId, bt: &mut Tunn, now: Instant, tag: &str) {
    let mut buf = vec![0u8; 2048];
    let packet = ipv4_packet(format!("vine to boringtun {tag}").as_bytes());
    let mut datagram = Vec::new();
    ours.encrypt(now, bt_id, &packet, &mut datagram)
        .expect("our session is ready");
    assert_eq!(to_tunnel(bt.decapsulate(None, &datagram, &mut buf)), packet);

    let packet = ipv4_packet(format!("boringtun to vine {tag}").as_bytes());
    let datagram = to_network(bt.encapsulate(&packet, &mut buf));
    let mut out = Vec::new();
    assert_eq!(
        ours.decrypt(now, WALL, &datagram, &mut out),
        Ok(Received::Data { peer: *bt_id })
    );
    let len = ip_packet_len(&out).expect("an IPv4 packet");
    assert_eq!(&out[..len], packet.as_slice());
}

#[test]
fn our_initiator_with_boringtun_responder() {
    let (mut ours, bt_id, mut bt) = setup();
    let mut buf = vec![0u8; 2048];
    let t0 = Instant::now();
    let init = ours.initiate(t0, WALL, &bt_id).expect("initiate");
    let response = to_network(bt.decapsulate(None, &init, &mut buf));
    assert_eq!(response.len(), 92);
    assert_eq!(
        ours.decrypt(t0, WALL, &response, &mut Vec::new()),
        Ok(Received::HandshakeComplete { peer: bt_id })
    );
    exchange(&mut ours, &bt_id, &mut bt, t0, "first session");

    // Our keepalive is accepted.
    let mut keepalive = Vec::new();
    ours.encrypt(t0, &bt_id, &[], &mut keepalive)
        .expect("ready");
    assert!(matches!(
        bt.decapsulate(None, &keepalive, &mut buf),
        TunnResult::Done
    ));

    // We rekey; boringtun follows.
    let t1 = t0 + Duration::from_secs(121);
    let init = ours
        .initiate(t1, WALL + Duration::from_secs(121), &bt_id)
        .expect("initiate");
    let response = to_network(bt.decapsulate(None, &init, &mut buf));
    assert!(matches!(
        ours.decrypt(t1, WALL, &response, &mut Vec::new()),
        Ok(Received::HandshakeComplete { .. })
    ));
    exchange(&mut ours, &bt_id, &mut bt, t1, "second session");
}

#[test]
fn boringtun_initiator_with_our_responder() {
    let (mut ours, bt_id, mut bt) = setup();
    let mut buf = vec![0u8; 2048];
    let t0 = Instant::now();
    let init = to_network(bt.format_handshake_initiation(&mut buf, false));
    let response = match ours.decrypt(t0, WALL, &init, &mut Vec::new()) {
        Ok(Received::HandshakeInitiation { peer, response }) => {
            assert_eq!(peer, bt_id);
            response
        }
        other => panic!("expected an initiation, got {other:?}"),
    };
    assert!(!ours.session_ready(&bt_id, t0));
    // boringtun completes and confirms with a keepalive.
    let keepalive = to_network(bt.decapsulate(None, &response, &mut buf));
    let mut out = vec![1, 2, 3];
    assert_eq!(
        ours.decrypt(t0, WALL, &keepalive, &mut out),
        Ok(Received::Data { peer: bt_id })
    );
    assert!(out.is_empty());
    assert!(ours.session_ready(&bt_id, t0));
    exchange(&mut ours, &bt_id, &mut bt, t0, "first session");

    // boringtun starts a new handshake; traffic continues on the new keys.
    let t1 = t0 + Duration::from_secs(2);
    let init = to_network(bt.format_handshake_initiation(&mut buf, true));
    let response = match ours.decrypt(t1, WALL, &init, &mut Vec::new()) {
        Ok(Received::HandshakeInitiation { response, .. }) => response,
        other => panic!("expected an initiation, got {other:?}"),
    };
    let keepalive = to_network(bt.decapsulate(None, &response, &mut buf));
    assert!(matches!(
        ours.decrypt(t1, WALL, &keepalive, &mut Vec::new()),
        Ok(Received::Data { .. })
    ));
    exchange(&mut ours, &bt_id, &mut bt, t1, "second session");
}

/// Where boringtun's datagrams come from, for our cookies and limiter.
const BT_ADDR: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 42)),
    51820,
);
const OUR_IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 24));

#[test]
fn boringtun_under_load_sends_us_a_cookie_and_accepts_our_mac2() {
    use std::sync::Arc;

    use boringtun::noise::rate_limiter::RateLimiter;

    let bt_secret = StaticSecret::from([0x42; 32]);
    let bt_public = PublicKey::from(&bt_secret);
    let bt_id = PeerId::from_public_key(bt_public.to_bytes());
    let mut ours = Wg::new(StaticSecret::from([0x24; 32]), [3; 32]);
    ours.add_peer(bt_id);
    let our_public = PublicKey::from(*ours.local_peer_id().public_key());
    // A limit of 0 handshakes before load: boringtun demands mac2 always.
    let limiter = Arc::new(RateLimiter::new(&bt_public, 0));
    let mut bt = Tunn::new(bt_secret, our_public, None, None, 7, Some(limiter));
    let mut buf = vec![0u8; 2048];
    let t0 = Instant::now();
    let mut out = Vec::new();

    let init = ours.initiate(t0, WALL, &bt_id).expect("initiate");
    let reply = to_network(bt.decapsulate(Some(OUR_IP), &init, &mut buf));
    assert_eq!(reply.len(), 64, "a cookie reply");
    assert_eq!(
        ours.decrypt_from(t0, WALL, BT_ADDR, &reply, &mut out),
        Ok(Received::CookieReceived { peer: bt_id })
    );
    let t1 = t0 + Duration::from_millis(250);
    let retry = ours.initiate(t1, WALL, &bt_id).expect("retry");
    let response = to_network(bt.decapsulate(Some(OUR_IP), &retry, &mut buf));
    assert_eq!(
        response.len(),
        92,
        "boringtun accepted our mac2 and answered"
    );
    assert_eq!(
        ours.decrypt_from(t1, WALL, BT_ADDR, &response, &mut out),
        Ok(Received::HandshakeComplete { peer: bt_id })
    );
    exchange(&mut ours, &bt_id, &mut bt, t1, "after the cookie");
}

#[test]
fn our_cookie_reply_is_understood_by_boringtun() {
    let (mut ours, bt_id, mut bt) = setup();
    let mut buf = vec![0u8; 2048];
    let t0 = Instant::now();
    ours.set_under_load(t0 + Duration::from_secs(60));
    let mut out = Vec::new();

    let init = to_network(bt.format_handshake_initiation(&mut buf, false));
    let reply = match ours.decrypt_from(t0, WALL, BT_ADDR, &init, &mut out) {
        Ok(Received::CookieNeeded { reply }) => reply,
        other => panic!("expected a cookie reply, got {other:?}"),
    };
    assert!(matches!(
        bt.decapsulate(None, &reply, &mut buf),
        TunnResult::Done
    ));
    // boringtun's next initiation carries mac2 from our cookie.
    let retry = to_network(bt.format_handshake_initiation(&mut buf, true));
    assert_ne!(&retry[132..], &[0u8; 16]);
    let response = match ours.decrypt_from(t0, WALL, BT_ADDR, &retry, &mut out) {
        Ok(Received::HandshakeInitiation { peer, response }) => {
            assert_eq!(peer, bt_id);
            response
        }
        other => panic!("expected the initiation to go through, got {other:?}"),
    };
    let keepalive = to_network(bt.decapsulate(None, &response, &mut buf));
    assert_eq!(
        ours.decrypt_from(t0, WALL, BT_ADDR, &keepalive, &mut out),
        Ok(Received::Data { peer: bt_id })
    );
    assert_eq!(ours.handshake_load().cookie_replies_sent, 1);
    assert_eq!(ours.handshake_load().dh_computed, 1);
    exchange(&mut ours, &bt_id, &mut bt, t0, "after our cookie");
}
