//! The dataplane against two real nodes exchanging datagrams in memory.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::config::Policy;
use crate::identity::Identity;
use crate::node::{AllowedPeerConfig, Node, NodeConfig, Timers, build_test_packet};
use crate::wg::sealed_len;

struct Pair {
    a: Node,
    b: Node,
    a_addr: SocketAddrV4,
    b_addr: SocketAddrV4,
    now: Instant,
    plane_a: Arc<DataPlane>,
    plane_b: Arc<DataPlane>,
}

fn config(
    own: Ipv4Addr,
    peer: &Identity,
    peer_prefix: &str,
    peer_addr: SocketAddrV4,
) -> NodeConfig {
    let mut allowed = BTreeMap::new();
    allowed.insert(
        peer.peer_id(),
        AllowedPeerConfig {
            prefix: peer_prefix.parse().expect("prefix"),
            relay_capable: false,
            name: None,
        },
    );
    NodeConfig {
        network_id: "test-net".into(),
        address: own,
        prefix: Ipv4Prefix::containing_clamped(own, 24),
        allowed,
        bootstrap: vec![(peer.peer_id(), peer_addr)],
        policy: Policy::default(),
        relay_enabled: false,
        timers: Timers::default(),
        underlay_mtu: crate::config::DEFAULT_UNDERLAY_MTU,
    }
}

impl Pair {
    fn new() -> Self {
        let ia = Identity::from_seed([1; 32]);
        let ib = Identity::from_seed([2; 32]);
        let a_addr = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4100);
        let b_addr = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 4100);
        let now = Instant::now();
        let wall = Duration::from_secs(1_800_000_000);
        let mut a = Node::new(
            config(Ipv4Addr::new(10, 1, 0, 1), &ib, "10.2.0.0/24", b_addr),
            &ia,
            [3; 32],
            now,
            wall,
        )
        .expect("node a");
        let mut b = Node::new(
            config(Ipv4Addr::new(10, 2, 0, 1), &ia, "10.1.0.0/24", a_addr),
            &ib,
            [4; 32],
            now,
            wall,
        )
        .expect("node b");
        a.set_local_addresses(vec![a_addr]);
        b.set_local_addresses(vec![b_addr]);
        let plane_a = a.enable_data_plane(now);
        let plane_b = b.enable_data_plane(now);
        a.start(now);
        b.start(now);
        Self {
            a,
            b,
            a_addr,
            b_addr,
            now,
            plane_a,
            plane_b,
        }
    }

    /// Delivers every queued datagram (through the slow path) and runs
    /// timers, for `d` of virtual time.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                assert_eq!(t.dst, self.b_addr);
                self.b.handle_datagram(self.now, self.a_addr, &t.data);
                moved = true;
            }
            while let Some(t) = self.b.poll_transmit() {
                assert_eq!(t.dst, self.a_addr);
                self.a.handle_datagram(self.now, self.b_addr, &t.data);
                moved = true;
            }
            while self.a.poll_tun().is_some() || self.b.poll_tun().is_some() {}
            while self.a.poll_event().is_some() || self.b.poll_event().is_some() {}
            if moved {
                continue;
            }
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
    }
}

fn packet(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    build_test_packet(Ipv4Addr::from(src), Ipv4Addr::from(dst), payload)
}

/// Encrypts `packet` the way a data-plane thread does.
fn seal(keypair: &Keypair, packet: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; sealed_len(packet.len())];
    buf[DATA_HEADER_LEN..DATA_HEADER_LEN + packet.len()].copy_from_slice(packet);
    let n = keypair.seal(&mut buf, packet.len()).expect("seal");
    buf.truncate(n);
    buf
}

#[test]
fn packets_cross_on_the_fast_path_and_are_counted() {
    let mut p = Pair::new();
    p.run(Duration::from_secs(2));
    let (mut ra, mut rb) = (p.plane_a.reader(), p.plane_b.reader());
    ra.refresh();
    rb.refresh();
    let out = packet([10, 1, 0, 1], [10, 2, 0, 9], b"fast");
    let Outbound::Send {
        peer,
        keypair,
        endpoint,
    } = ra.tables().outbound(&out, p.now)
    else {
        panic!("a session and a direct path exist: the dataplane sends");
    };
    assert_eq!(endpoint, p.b_addr);
    assert_eq!(peer.id, p.b.peer_id());
    let mut datagram = seal(keypair, &out);
    peer.stats.add_sent(1, out.len() as u64);

    let Inbound::Data { peer, range } = rb.tables().inbound(p.a_addr, &mut datagram, p.now) else {
        panic!("b's dataplane delivers a's packet");
    };
    assert_eq!(&datagram[range.clone()], &out[..]);
    peer.stats.add_received(1, range.len() as u64);

    // Replayed: the window (shared with the node) refuses it.
    let mut again = seal(keypair, &out);
    let copy = again.clone();
    assert!(matches!(
        rb.tables().inbound(p.a_addr, &mut again, p.now),
        Inbound::Data { .. }
    ));
    let mut replay = copy;
    let Inbound::Drop(reason) = rb.tables().inbound(p.a_addr, &mut replay, p.now) else {
        panic!("a replay is dropped");
    };
    assert_eq!(reason, DropReason::DecryptFailed);
    rb.plane().add_drop(reason);

    // The node folds the dataplane's counters into its own.
    assert_eq!(p.a.counters().packets_sent, 1);
    assert_eq!(p.b.counters().packets_received, 1);
    let view = p.b.snapshot(p.now);
    assert_eq!(view.peers[0].counters.packets_received, 1);

    // The node's own traffic (probes) keeps working alongside: nonces from
    // both writers share one counter, so nothing is taken for a replay.
    p.run(Duration::from_secs(20));
    assert!(
        p.b.snapshot(p.now)
            .routes
            .iter()
            .any(|r| r.prefix.to_string() == "10.1.0.0/24")
    );
    assert_eq!(
        p.b.counters().drops.get(&DropReason::DecryptFailed),
        Some(&1)
    );
}

#[test]
fn the_fast_path_refuses_what_the_node_would_refuse() {
    let mut p = Pair::new();
    p.run(Duration::from_secs(2));
    let (mut ra, mut rb) = (p.plane_a.reader(), p.plane_b.reader());
    ra.refresh();
    rb.refresh();
    let send_keys = |t: &Tables| {
        t.peers()
            .iter()
            .find_map(|e| e.send.clone())
            .expect("a has sending keys")
    };
    let keys = send_keys(ra.tables());

    // Own prefix, unknown destination, garbage: dropped with a reason.
    assert!(matches!(
        ra.tables()
            .outbound(&packet([10, 1, 0, 1], [10, 1, 0, 7], b"x"), p.now),
        Outbound::Drop(DropReason::WrongDestination)
    ));
    assert!(matches!(
        ra.tables()
            .outbound(&packet([10, 1, 0, 1], [10, 9, 0, 7], b"x"), p.now),
        Outbound::Drop(DropReason::UnknownRoute)
    ));
    assert!(matches!(
        ra.tables().outbound(b"\x45garbage", p.now),
        Outbound::Drop(DropReason::Malformed)
    ));

    // A spoofed inner source (outside a's prefix) is not delivered.
    let mut spoof = seal(&keys, &packet([10, 7, 0, 1], [10, 2, 0, 1], b"spoof"));
    assert!(matches!(
        rb.tables().inbound(p.a_addr, &mut spoof, p.now),
        Inbound::Drop(DropReason::UnauthorizedPeer)
    ));
    // A destination outside b's prefix is not delivered.
    let mut wrong = seal(&keys, &packet([10, 1, 0, 1], [10, 3, 0, 1], b"wrong"));
    assert!(matches!(
        rb.tables().inbound(p.a_addr, &mut wrong, p.now),
        Inbound::Drop(DropReason::WrongDestination)
    ));
    // Tampering fails authentication.
    let mut tampered = seal(&keys, &packet([10, 1, 0, 1], [10, 2, 0, 1], b"data"));
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        rb.tables().inbound(p.a_addr, &mut tampered, p.now),
        Inbound::Drop(DropReason::DecryptFailed)
    ));
    // Data from an address that is not the peer's endpoint goes to the
    // node (roaming is its business), decrypted.
    let elsewhere = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 999);
    let mut roamed = seal(&keys, &packet([10, 1, 0, 1], [10, 2, 0, 1], b"roam"));
    let Inbound::Plain { peer, range } = rb.tables().inbound(elsewhere, &mut roamed, p.now) else {
        panic!("data from a new address goes to the node");
    };
    let id = peer.id;
    let plain = roamed[range].to_vec();
    p.b.handle_decrypted(p.now, elsewhere, id, &plain);
    assert_eq!(p.b.poll_tun().map(|x| x.len()), Some(20 + 4));
    // Handshakes and unknown indices are not the dataplane's business.
    let mut short = vec![1u8, 0, 0, 0, 9, 9];
    assert!(matches!(
        rb.tables().inbound(p.a_addr, &mut short, p.now),
        Inbound::Slow
    ));
    let mut unknown = seal(&keys, &packet([10, 1, 0, 1], [10, 2, 0, 1], b"x"));
    unknown[4..8].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
    assert!(matches!(
        rb.tables().inbound(p.a_addr, &mut unknown, p.now),
        Inbound::Slow
    ));
}

#[test]
fn tables_follow_the_node_and_readers_refresh_cheaply() {
    let mut p = Pair::new();
    // Before any session: the route is unknown, everything is slow or dropped.
    let mut ra = p.plane_a.reader();
    assert!(matches!(
        ra.tables()
            .outbound(&packet([10, 1, 0, 1], [10, 2, 0, 1], b"x"), p.now),
        Outbound::Drop(DropReason::UnknownRoute)
    ));
    p.run(Duration::from_secs(2));
    let generation = ra.generation;
    ra.refresh();
    assert!(ra.generation > generation, "the session was published");
    assert!(matches!(
        ra.tables()
            .outbound(&packet([10, 1, 0, 1], [10, 2, 0, 1], b"x"), p.now),
        Outbound::Send { .. }
    ));
    // Quiet protocol traffic does not republish.
    let settled = ra.generation;
    let before = p.plane_a.generation.load(Ordering::Relaxed);
    p.run(Duration::from_secs(3));
    assert_eq!(
        p.plane_a.generation.load(Ordering::Relaxed),
        before,
        "nothing changed"
    );
    ra.refresh();
    assert_eq!(ra.generation, settled);

    // b leaves: a's route goes, and with it the dataplane's target.
    let now = p.now;
    p.b.stop(now);
    p.run(Duration::from_millis(100));
    ra.refresh();
    assert!(matches!(
        ra.tables()
            .outbound(&packet([10, 1, 0, 1], [10, 2, 0, 1], b"x"), p.now),
        Outbound::Drop(DropReason::UnknownRoute) | Outbound::Slow
    ));
}

#[test]
fn drop_reason_indices_match_the_list() {
    for (i, reason) in DropReason::ALL.iter().enumerate() {
        assert_eq!(reason.index(), i, "{reason:?}");
    }
}
