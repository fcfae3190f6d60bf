//! Tests of the WireGuard module: handshake and transport between two
//! [`Wg`] instances on a virtual clock, tampering and replay, timers,
//! interop with boringtun (`interop`), and a no-panic property test
//! (`robustness`).

mod cookies;
mod interop;
mod robustness;
mod timers;
mod wipe;

use std::time::{Duration, Instant};

use x25519_dalek::StaticSecret;

use super::crypto::{CONSTRUCTION, IDENTIFIER, hash, tai64n, tai64n_successor};
use super::messages::{INITIATION_LEN, RESPONSE_LEN, padded_len};
use super::replay::{ReplayWindow, WINDOW};
use super::*;

/// A fixed, arbitrary wall-clock reading (2023-11-14).
pub(super) const WALL: Duration = Duration::from_secs(1_700_000_000);

pub(super) fn node(n: u8) -> Wg {
    Wg::new(StaticSecret::from([n; 32]), [n.wrapping_add(100); 32])
}

/// Two nodes that know each other.
pub(super) fn pair() -> (Wg, Wg) {
    let mut a = node(1);
    let mut b = node(2);
    a.add_peer(b.local_peer_id());
    b.add_peer(a.local_peer_id());
    (a, b)
}

/// Elapsed virtual time as a wall-clock reading.
pub(super) fn wall_at(t0: Instant, now: Instant) -> Duration {
    WALL + now.saturating_duration_since(t0)
}

/// `a` initiates, `b` responds, `a` completes and sends a keepalive that
/// confirms `b`'s keys. Returns nothing; both sides can send afterwards.
pub(super) fn handshake(a: &mut Wg, b: &mut Wg, t0: Instant, now: Instant) {
    let wall = wall_at(t0, now);
    let init = a.initiate(now, wall, &b.local_peer_id()).expect("initiate");
    let response = respond(b, now, wall, &init);
    let mut out = Vec::new();
    assert_eq!(
        a.decrypt(now, wall, &response, &mut out),
        Ok(Received::HandshakeComplete {
            peer: b.local_peer_id()
        })
    );
    let keepalive = seal(a, b, now, b"");
    assert_eq!(open(b, a, now, &keepalive), Ok(Vec::new()));
}

/// Feeds an initiation to `b` and returns its response.
pub(super) fn respond(b: &mut Wg, now: Instant, wall: Duration, init: &[u8]) -> Vec<u8> {
    match b.decrypt(now, wall, init, &mut Vec::new()) {
        Ok(Received::HandshakeInitiation { response, .. }) => response,
        other => panic!("expected an initiation, got {other:?}"),
    }
}

/// Encrypts `plaintext` from `from` to `to`.
pub(super) fn seal(from: &mut Wg, to: &Wg, now: Instant, plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    from.encrypt(now, &to.local_peer_id(), plaintext, &mut out)
        .expect("session ready");
    out
}

/// Decrypts a transport message at `to`, checks it came from `from`, and
/// returns the plaintext.
pub(super) fn open(
    to: &mut Wg,
    from: &Wg,
    now: Instant,
    datagram: &[u8],
) -> Result<Vec<u8>, WgError> {
    let mut out = vec![0xaa; 3]; // must be cleared
    let received = to.decrypt(now, WALL, datagram, &mut out)?;
    assert_eq!(
        received,
        Received::Data {
            peer: from.local_peer_id()
        }
    );
    Ok(out)
}

/// `plaintext` zero-padded to a multiple of 16, as it arrives.
pub(super) fn padded(plaintext: &[u8]) -> Vec<u8> {
    let mut p = plaintext.to_vec();
    p.resize(padded_len(p.len()), 0);
    p
}

#[test]
fn constants_match_the_whitepaper() {
    // HASH(CONSTRUCTION) and HASH(HASH(CONSTRUCTION) || IDENTIFIER) as
    // published in boringtun and wireguard-go.
    let ck = hash(&[CONSTRUCTION]);
    assert_eq!(
        ck,
        [
            96, 226, 109, 174, 243, 39, 239, 192, 46, 195, 53, 226, 160, 37, 210, 208, 22, 235, 66,
            6, 248, 114, 119, 245, 45, 56, 209, 152, 139, 120, 205, 54
        ]
    );
    assert_eq!(
        hash(&[&ck, IDENTIFIER]),
        [
            34, 17, 179, 97, 8, 26, 197, 102, 105, 18, 67, 219, 69, 138, 213, 50, 45, 156, 108,
            102, 34, 147, 232, 183, 14, 225, 156, 101, 186, 7, 158, 243
        ]
    );
}

#[test]
fn handshake_then_data_both_ways_and_keepalive() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    assert!(!a.session_ready(&b.local_peer_id(), t0));
    assert_eq!(
        a.encrypt(t0, &b.local_peer_id(), b"x", &mut Vec::new()),
        Err(WgError::NoSession)
    );

    let init = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    assert_eq!(init.len(), INITIATION_LEN);
    assert_eq!(&init[..4], &[1, 0, 0, 0]);
    assert!(a.handshake_in_progress(&b.local_peer_id()));

    let response = respond(&mut b, t0, WALL, &init);
    assert_eq!(response.len(), RESPONSE_LEN);
    assert_eq!(&response[..4], &[2, 0, 0, 0]);
    assert_eq!(
        &response[8..12],
        &init[4..8],
        "receiver index = initiator's sender index"
    );
    // The responder cannot send before the initiator confirms.
    assert!(!b.session_ready(&a.local_peer_id(), t0));

    let mut out = Vec::new();
    assert_eq!(
        a.decrypt(t0, WALL, &response, &mut out),
        Ok(Received::HandshakeComplete {
            peer: b.local_peer_id()
        })
    );
    assert!(a.session_ready(&b.local_peer_id(), t0));
    assert!(!a.handshake_in_progress(&b.local_peer_id()));

    let msg = b"hello from a, a bit longer than sixteen bytes";
    let datagram = seal(&mut a, &b, t0, msg);
    assert_eq!(datagram.len(), DATA_OVERHEAD + padded_len(msg.len()));
    assert_eq!(&datagram[..4], &[4, 0, 0, 0]);
    assert_eq!(
        &datagram[4..8],
        &response[4..8],
        "receiver index = responder's sender index"
    );
    assert_eq!(&datagram[8..16], &0u64.to_le_bytes());
    assert_eq!(open(&mut b, &a, t0, &datagram), Ok(padded(msg)));
    assert!(b.session_ready(&a.local_peer_id(), t0));

    let reply = seal(&mut b, &a, t0, b"hello from b");
    assert_eq!(open(&mut a, &b, t0, &reply), Ok(padded(b"hello from b")));

    for from_a in [true, false] {
        let (tx, rx) = if from_a {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let keepalive = seal(tx, rx, t0, b"");
        assert_eq!(keepalive.len(), DATA_OVERHEAD);
        assert_eq!(open(rx, tx, t0, &keepalive), Ok(Vec::new()));
    }
    // A 16-byte-multiple plaintext is not padded further.
    let exact = [7u8; 32];
    let datagram = seal(&mut a, &b, t0, &exact);
    assert_eq!(datagram.len(), DATA_OVERHEAD + 32);
    assert_eq!(open(&mut b, &a, t0, &datagram), Ok(exact.to_vec()));
}

#[test]
fn encrypt_appends_to_out() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);
    let mut batch = Vec::new();
    a.encrypt(t0, &b.local_peer_id(), b"one", &mut batch)
        .expect("ready");
    let first_len = batch.len();
    a.encrypt(t0, &b.local_peer_id(), b"two", &mut batch)
        .expect("ready");
    assert_eq!(batch.len(), 2 * first_len);
    assert_eq!(
        open(&mut b, &a, t0, &batch[..first_len]),
        Ok(padded(b"one"))
    );
    assert_eq!(
        open(&mut b, &a, t0, &batch[first_len..]),
        Ok(padded(b"two"))
    );
}

#[test]
fn unknown_peers_are_rejected_without_state() {
    let (mut a, mut b) = pair();
    let mut stranger = node(3);
    stranger.add_peer(b.local_peer_id());
    let t0 = Instant::now();
    let init = stranger
        .initiate(t0, WALL, &b.local_peer_id())
        .expect("initiate");
    let mut out = Vec::new();
    assert_eq!(
        b.decrypt(t0, WALL, &init, &mut out),
        Err(WgError::UnknownPeer)
    );
    assert_eq!(b.indices.len(), 0, "no state for strangers");
    assert!(!b.has_peer(&stranger.local_peer_id()));

    // An initiation meant for someone else fails mac1 before any DH.
    let init_for_b = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    let mut c = node(4);
    c.add_peer(a.local_peer_id());
    assert_eq!(
        c.decrypt(t0, WALL, &init_for_b, &mut out),
        Err(WgError::BadMac1)
    );

    // Nor can we initiate to or encrypt for a peer that was not added.
    assert_eq!(
        a.initiate(t0, WALL, &c.local_peer_id()),
        Err(WgError::UnknownPeer)
    );
    assert_eq!(
        a.encrypt(t0, &c.local_peer_id(), b"", &mut out),
        Err(WgError::UnknownPeer)
    );
}

#[test]
fn every_tampered_byte_is_rejected() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    let init = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    let mut out = Vec::new();
    // Every byte up to mac2 is covered by mac1 or the AEAD; mac2 itself is
    // only checked under load (the cookie tests cover it).
    for i in 0..messages::INIT_MAC2 {
        let mut bad = init.clone();
        bad[i] ^= 0x01;
        assert!(
            b.decrypt(t0, WALL, &bad, &mut out).is_err(),
            "initiation byte {i}"
        );
    }
    assert_eq!(b.indices.len(), 0);
    let response = respond(&mut b, t0, WALL, &init);
    for i in 0..messages::RESP_MAC2 {
        let mut bad = response.clone();
        bad[i] ^= 0x80;
        assert!(
            a.decrypt(t0, WALL, &bad, &mut out).is_err(),
            "response byte {i}"
        );
    }
    assert!(matches!(
        a.decrypt(t0, WALL, &response, &mut out),
        Ok(Received::HandshakeComplete { .. })
    ));
    let datagram = seal(&mut a, &b, t0, b"payload of some length");
    for i in 0..datagram.len() {
        let mut bad = datagram.clone();
        bad[i] ^= 0x01;
        assert!(open(&mut b, &a, t0, &bad).is_err(), "data byte {i}");
        assert!(out.is_empty());
    }
    assert!(open(&mut b, &a, t0, &datagram).is_ok());

    // A cookie reply for no message we sent is refused and counted.
    let mut cookie = vec![0u8; 64];
    cookie[0] = 3;
    assert_eq!(
        b.decrypt(t0, WALL, &cookie, &mut out),
        Err(WgError::BadCookieReply)
    );
    assert_eq!(b.handshake_load().bad_cookie_replies, 1);
}

#[test]
fn malformed_lengths_and_types() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    let init = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    let mut out = Vec::new();
    let mut check = |bytes: &[u8], want: WgError| {
        assert_eq!(b.decrypt(t0, WALL, bytes, &mut out), Err(want));
    };
    check(&[], WgError::Truncated);
    check(&[1, 0, 0], WgError::Truncated);
    check(&init[..147], WgError::Truncated);
    check(&[init.as_slice(), &[0]].concat(), WgError::WrongLength);
    check(&[4, 0, 0, 0, 1, 2, 3, 4], WgError::Truncated);
    check(
        &[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        WgError::Truncated,
    );
    check(&[5, 0, 0, 0], WgError::UnknownType(5));
    check(&[1, 1, 0, 0], WgError::UnknownType(0x101));
    check(
        &[
            4, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0,
        ],
        WgError::UnknownIndex,
    );
}

#[test]
fn replayed_transport_message_is_rejected() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);
    let datagram = seal(&mut a, &b, t0, b"once");
    assert!(open(&mut b, &a, t0, &datagram).is_ok());
    assert_eq!(open(&mut b, &a, t0, &datagram), Err(WgError::Replay));
    // The keepalive of the handshake (counter 0) is a replay too.
    let next = seal(&mut a, &b, t0, b"twice");
    assert!(open(&mut b, &a, t0, &next).is_ok());
}

#[test]
fn out_of_order_within_window_is_accepted_and_beyond_it_rejected() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);
    let messages: Vec<Vec<u8>> = (0..WINDOW + 200)
        .map(|i| seal(&mut a, &b, t0, &i.to_le_bytes()))
        .collect();
    // Newest first, then back through the whole window.
    let newest = messages.len() - 1;
    assert!(open(&mut b, &a, t0, &messages[newest]).is_ok());
    for i in (newest - 2000..newest).rev() {
        assert_eq!(
            open(&mut b, &a, t0, &messages[i]),
            Ok(padded(&(i as u64).to_le_bytes()))
        );
    }
    // Still inside the window (WINDOW = 8128 counters).
    assert!(open(&mut b, &a, t0, &messages[newest - WINDOW as usize + 1]).is_ok());
    // Too old.
    assert_eq!(open(&mut b, &a, t0, &messages[10]), Err(WgError::Replay));
    assert_eq!(
        open(&mut b, &a, t0, &messages[newest - 5]),
        Err(WgError::Replay)
    );
}

#[test]
fn replay_window_unit() {
    let mut w = ReplayWindow::default();
    for c in [0, 1, 63, 15, 64, 200] {
        assert!(w.check(c));
        assert!(w.update(c));
        assert!(!w.check(c));
        assert!(!w.update(c));
    }
    assert!(w.check(2) && w.check(199));
    // Jump far ahead: everything at or before the window edge is gone.
    let far = 10 * WINDOW;
    assert!(w.update(far));
    assert!(!w.check(far - WINDOW - 1));
    assert!(!w.check(0));
    for c in (far - WINDOW + 1)..far {
        assert!(w.check(c), "{c} is inside the window");
    }
    for c in (far - WINDOW + 1..far).rev() {
        assert!(w.update(c));
    }
    assert!(!w.update(far - 1));
    assert!(!w.check(u64::MAX));
    assert!(!w.update(u64::MAX));
    assert!(w.update(u64::MAX - 1));
}

#[test]
fn replayed_initiation_is_rejected() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    let init = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    let _ = respond(&mut b, t0, WALL, &init);
    let later = t0 + Duration::from_secs(1);
    let mut out = Vec::new();
    assert_eq!(
        b.decrypt(later, WALL, &init, &mut out),
        Err(WgError::StaleTimestamp)
    );
    // A new initiation with the same wall clock still gets a newer
    // timestamp, so it is accepted.
    let again = a
        .initiate(later, WALL, &b.local_peer_id())
        .expect("initiate");
    let _ = respond(&mut b, later, WALL, &again);
    // ...but not faster than 50 per second.
    let third = a
        .initiate(later, WALL, &b.local_peer_id())
        .expect("initiate");
    assert_eq!(
        b.decrypt(later + Duration::from_millis(5), WALL, &third, &mut out),
        Err(WgError::InitiationFlood)
    );
}

#[test]
fn timestamps_are_tai64n_and_strictly_increase() {
    let t = tai64n(Duration::new(1, 999_999_999));
    assert_eq!(&t[..8], &(0x4000_0000_0000_000a_u64 + 1).to_be_bytes());
    let nanos = u32::from_be_bytes([t[8], t[9], t[10], t[11]]);
    assert_eq!(nanos % (1 << 24), 0);
    assert!(nanos <= 999_999_999);
    let mut s = tai64n_successor(&t);
    assert!(s > t);
    let max = {
        let mut m = t;
        m[8..].copy_from_slice(&999_999_999u32.to_be_bytes());
        m
    };
    s = tai64n_successor(&max);
    assert!(s > max);
    assert_eq!(&s[8..], &[0, 0, 0, 0]);
}

#[test]
fn simultaneous_initiation_converges() {
    // Several delivery orders of the four handshake messages.
    for order in 0..4 {
        let (mut a, mut b) = pair();
        let t0 = Instant::now();
        let (aid, bid) = (a.local_peer_id(), b.local_peer_id());
        let init_a = a.initiate(t0, WALL, &bid).expect("initiate");
        let init_b = b.initiate(t0, WALL, &aid).expect("initiate");
        let mut out = Vec::new();
        match order {
            0 => {
                let resp_b = respond(&mut b, t0, WALL, &init_a);
                let resp_a = respond(&mut a, t0, WALL, &init_b);
                assert!(a.decrypt(t0, WALL, &resp_b, &mut out).is_ok());
                assert!(b.decrypt(t0, WALL, &resp_a, &mut out).is_ok());
            }
            1 => {
                let resp_b = respond(&mut b, t0, WALL, &init_a);
                assert!(a.decrypt(t0, WALL, &resp_b, &mut out).is_ok());
                let resp_a = respond(&mut a, t0, WALL, &init_b);
                assert!(b.decrypt(t0, WALL, &resp_a, &mut out).is_ok());
            }
            2 => {
                // Only a's initiation gets through; b's is lost.
                let resp_b = respond(&mut b, t0, WALL, &init_a);
                assert!(a.decrypt(t0, WALL, &resp_b, &mut out).is_ok());
            }
            _ => {
                // Both answered, but only b's response arrives.
                let _lost = respond(&mut b, t0, WALL, &init_a);
                let resp_a = respond(&mut a, t0, WALL, &init_b);
                assert!(b.decrypt(t0, WALL, &resp_a, &mut out).is_ok());
            }
        }
        // Whoever has keys sends first; then traffic flows both ways.
        let (first, second) = if a.session_ready(&bid, t0) {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let d = seal(first, second, t0, b"first");
        assert_eq!(
            open(second, first, t0, &d),
            Ok(padded(b"first")),
            "order {order}"
        );
        for round in 0..3 {
            let ab = seal(&mut a, &b, t0, b"a->b");
            assert_eq!(
                open(&mut b, &a, t0, &ab),
                Ok(padded(b"a->b")),
                "order {order} round {round}"
            );
            let ba = seal(&mut b, &a, t0, b"b->a");
            assert_eq!(
                open(&mut a, &b, t0, &ba),
                Ok(padded(b"b->a")),
                "order {order} round {round}"
            );
        }
    }
}

#[test]
fn late_response_to_an_earlier_retry_still_completes() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    let bid = b.local_peer_id();
    let first = a.initiate(t0, WALL, &bid).expect("initiate");
    let t1 = t0 + Duration::from_millis(250);
    let second = a.initiate(t1, wall_at(t0, t1), &bid).expect("initiate");
    let resp1 = respond(&mut b, t1, WALL, &first);
    let t2 = t1 + Duration::from_millis(30);
    let resp2 = respond(&mut b, t2, WALL, &second);
    // The response to the first initiation arrives first and completes.
    let mut out = Vec::new();
    assert!(matches!(
        a.decrypt(t2, WALL, &resp1, &mut out),
        Ok(Received::HandshakeComplete { .. })
    ));
    // The later response is for a handshake that is no longer wanted.
    assert_eq!(
        a.decrypt(t2, WALL, &resp2, &mut out),
        Err(WgError::UnknownIndex)
    );
    // b kept the keys of both answers, so a's traffic confirms the first.
    let d = seal(&mut a, &b, t2, b"data");
    assert_eq!(open(&mut b, &a, t2, &d), Ok(padded(b"data")));
    let back = seal(&mut b, &a, t2, b"back");
    assert_eq!(open(&mut a, &b, t2, &back), Ok(padded(b"back")));
}

#[test]
fn remove_peer_forgets_everything_and_add_peer_is_idempotent() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);
    let aid = a.local_peer_id();
    b.add_peer(aid); // idempotent: session survives
    assert!(b.session_ready(&aid, t0));
    let d = seal(&mut a, &b, t0, b"still");
    assert!(open(&mut b, &a, t0, &d).is_ok());
    assert_eq!(b.peers().count(), 1);

    b.remove_peer(&aid);
    assert!(!b.has_peer(&aid));
    assert!(!b.session_ready(&aid, t0));
    assert_eq!(b.indices.len(), 0);
    let d = seal(&mut a, &b, t0, b"gone");
    assert_eq!(open(&mut b, &a, t0, &d), Err(WgError::UnknownIndex));
    // Re-adding starts from scratch: a fresh handshake works.
    b.add_peer(aid);
    handshake(&mut a, &mut b, t0, t0 + Duration::from_secs(1));
    assert_eq!(b.peers[&aid].index_count(), b.indices.len());
}

#[test]
fn pre_shared_keys_must_match() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair();
    a.add_peer_with_psk(b.local_peer_id(), [9; 32]);
    b.add_peer_with_psk(a.local_peer_id(), [9; 32]);
    handshake(&mut a, &mut b, t0, t0);

    let (mut a, mut b) = pair();
    a.add_peer_with_psk(b.local_peer_id(), [9; 32]);
    let init = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    let response = respond(&mut b, t0, WALL, &init);
    assert_eq!(
        a.decrypt(t0, WALL, &response, &mut Vec::new()),
        Err(WgError::Decrypt)
    );
}

#[test]
fn same_seed_same_bytes() {
    let t0 = Instant::now();
    let run = || {
        let (mut a, mut b) = pair();
        let init = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
        let response = respond(&mut b, t0, WALL, &init);
        (init, response)
    };
    assert_eq!(run(), run());
}

#[test]
fn weak_peer_keys_are_refused() {
    // The identity point (all zeros) is low-order.
    let mut a = node(1);
    let weak = PeerId::from_public_key([0; 32]);
    a.add_peer(weak);
    assert_eq!(
        a.initiate(Instant::now(), WALL, &weak),
        Err(WgError::WeakKey)
    );
    assert_eq!(a.indices.len(), 0);
}

#[test]
fn ip_packet_len_trims_padding() {
    let mut v4 = vec![0u8; 48];
    v4[0] = 0x45;
    v4[2..4].copy_from_slice(&33u16.to_be_bytes());
    assert_eq!(ip_packet_len(&v4), Some(33));
    v4[2..4].copy_from_slice(&49u16.to_be_bytes());
    assert_eq!(ip_packet_len(&v4), None);
    let mut v6 = vec![0u8; 64];
    v6[0] = 0x60;
    v6[4..6].copy_from_slice(&8u16.to_be_bytes());
    assert_eq!(ip_packet_len(&v6), Some(48));
    assert_eq!(ip_packet_len(&[]), None);
    assert_eq!(ip_packet_len(&[0x45; 10]), None);
    assert_eq!(ip_packet_len(&[0x10; 64]), None);
}
