//! The node-level targets reach what they claim to: frames sealed with the
//! fixture's session keys pass decryption and are acted on by the node,
//! and the data plane opens them on its fast path.

use std::net::Ipv4Addr;

use vine_core::dataplane::Inbound;
use vine_core::node::build_test_packet;
use vine_fuzz::session::{self, Session, Who};

fn from_peer(payload: &[u8]) -> Vec<u8> {
    build_test_packet(Ipv4Addr::new(10, 2, 0, 7), session::NODE_IP, payload)
}

#[test]
fn sealed_data_from_an_enrolled_peer_reaches_the_tun() {
    let mut s = Session::new(false);
    let packet = from_peer(b"hello");
    s.send_sealed(Who::Peer, session::PEER_ADDR, &packet);
    assert_eq!(s.node.poll_tun(), Some(packet));
    // From outside its prefix: refused, nothing reaches the TUN.
    let spoofed = build_test_packet(Ipv4Addr::new(10, 3, 0, 7), session::NODE_IP, b"x");
    s.send_sealed(Who::Peer, session::PEER_ADDR, &spoofed);
    assert_eq!(s.node.poll_tun(), None);
    s.check_routes();
    assert_eq!(s.node.routes().iter().count(), 2, "both peers enrolled");
}

#[test]
fn a_relayed_frame_is_forwarded_to_the_third_peer() {
    let mut s = Session::new(false);
    while s.node.poll_transmit().is_some() {}
    let mut frame = Vec::new();
    vine_core::frame::encode_relay(
        vine_core::frame::RelayDirection::Forward,
        &Who::Third.id(),
        &[4; 64],
        &mut frame,
    );
    s.send_sealed(Who::Peer, session::PEER_ADDR, &frame);
    let sent: Vec<_> = std::iter::from_fn(|| s.node.poll_transmit()).collect();
    assert!(
        sent.iter().any(|t| t.dst == session::THIRD_ADDR),
        "forwarded to third: {sent:?}"
    );
}

#[test]
fn the_data_plane_opens_the_fixtures_datagrams_on_the_fast_path() {
    let mut s = Session::new(true);
    let plane = s.plane.clone().expect("data plane");
    let mut reader = plane.reader();
    reader.refresh();
    let packet = from_peer(b"fast");
    let mut batch: Vec<Vec<u8>> = (0..3)
        .map(|_| s.seal(Who::Peer, &packet).expect("peer has keys"))
        .collect();
    let tables = reader.tables();
    let index = tables
        .batch_index(batch.iter().map(|d| &d[..]))
        .expect("one keypair: a batch");
    let opened = tables.open_batch(index, s.now, batch.iter_mut().map(|d| &mut d[..]));
    assert_eq!(opened, 0b111);
    for d in &mut batch {
        let verdict = tables.inbound_opened(index, session::PEER_ADDR, d, true);
        assert!(matches!(verdict, Inbound::Data { .. }), "{verdict:?}");
    }
}
