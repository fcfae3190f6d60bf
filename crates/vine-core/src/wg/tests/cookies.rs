//! Cookies, mac2, the per-source handshake limiter and the under-load
//! state, on a virtual clock: round trips between two [`Wg`]s, secret
//! rotation, forged and misdirected cookie replies, the token bucket, a
//! flood of forged initiations, and a cookie reply recomputed
//! independently (RustCrypto's XChaCha20-Poly1305, the draft's HChaCha20
//! vector).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::super::cookie::{
    COOKIE_LEN, CookieChecker, LatestCookie, REPLY_COOKIE, REPLY_NONCE, cookie_key, hchacha20,
    open_reply, seal_reply,
};
use super::super::crypto::{LABEL_MAC1, hash, mac};
use super::super::messages::{INIT_MAC1, INIT_MAC2, INITIATION_LEN, RESP_MAC1, RESP_MAC2};
use super::super::ratelimit::{
    HANDSHAKE_BURST, HANDSHAKES_PER_SECOND, LIMITER_CAPACITY, Load, RateLimiter, UNDER_LOAD_AFTER,
    UNDER_LOAD_HANDSHAKES,
};
use super::super::{
    COOKIE_SECRET_LATENCY, COOKIE_SECRET_MAX_AGE, Received, TimerEvent, Wg, WgError,
};
use super::{WALL, pair, seal};

const A_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 51820);
const B_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 51820);
const EVIL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 66)), 4444);

/// A delivered handshake message must be answered with a cookie reply.
fn expect_cookie(result: Result<Received, WgError>) -> Vec<u8> {
    match result {
        Ok(Received::CookieNeeded { reply }) => {
            assert_eq!(reply.len(), 64);
            assert_eq!(&reply[..4], &[3, 0, 0, 0]);
            reply
        }
        other => panic!("expected a cookie reply, got {other:?}"),
    }
}

fn expect_response(result: Result<Received, WgError>) -> Vec<u8> {
    match result {
        Ok(Received::HandshakeInitiation { response, .. }) => response,
        other => panic!("expected a handshake response, got {other:?}"),
    }
}

/// An initiation to `target` with a valid mac1 and every other byte
/// random, as anyone who knows the target's PeerId can make.
fn forged_initiation(target: &Wg, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut msg = vec![0u8; INITIATION_LEN];
    rng.fill_bytes(&mut msg);
    msg[..4].copy_from_slice(&1u32.to_le_bytes());
    let key = hash(&[LABEL_MAC1, target.local_peer_id().public_key()]);
    let mac1 = mac(&key, &msg[..INIT_MAC1]);
    msg[INIT_MAC1..INIT_MAC2].copy_from_slice(&mac1);
    msg
}

#[test]
fn cookie_round_trip_under_load_completes_the_handshake() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    b.set_under_load(t0 + Duration::from_secs(60));
    let mut out = Vec::new();

    let init = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    assert_eq!(&init[INIT_MAC2..], &[0; 16], "no cookie yet: mac2 is zero");
    let reply = expect_cookie(b.decrypt_from(t0, WALL, A_ADDR, &init, &mut out));
    let load = b.handshake_load();
    assert!(load.under_load);
    assert_eq!(
        load.dh_computed, 0,
        "no Diffie-Hellman for a message without mac2"
    );
    assert_eq!((load.mac2_missing, load.cookie_replies_sent), (1, 1));
    assert_eq!(b.indices.len(), 0, "nothing kept for it");
    // The reply answers the initiation's sender index.
    assert_eq!(&reply[4..8], &init[4..8]);

    assert_eq!(
        a.decrypt_from(t0, WALL, B_ADDR, &reply, &mut out),
        Ok(Received::CookieReceived {
            peer: b.local_peer_id()
        })
    );
    assert_eq!(a.handshake_load().cookie_replies_received, 1);
    // The same reply again answers nothing we sent since.
    assert_eq!(
        a.decrypt_from(t0, WALL, B_ADDR, &reply, &mut out),
        Err(WgError::BadCookieReply)
    );
    assert_eq!(a.handshake_load().bad_cookie_replies, 1);

    // The retry carries mac2 and goes through.
    let t1 = t0 + Duration::from_millis(250);
    let retry = a.initiate(t1, WALL, &b.local_peer_id()).expect("retry");
    assert_ne!(&retry[INIT_MAC2..], &[0; 16]);
    // From another port of the same host the cookie is not valid.
    let other_port = SocketAddr::new(A_ADDR.ip(), 1);
    expect_cookie(b.decrypt_from(t1, WALL, other_port, &retry, &mut out));
    let response = expect_response(b.decrypt_from(t1, WALL, A_ADDR, &retry, &mut out));
    assert_eq!(b.handshake_load().dh_computed, 1);
    assert!(matches!(
        a.decrypt_from(t1, WALL, B_ADDR, &response, &mut out),
        Ok(Received::HandshakeComplete { .. })
    ));
    let datagram = seal(&mut a, &b, t1, b"through the cookie");
    assert!(matches!(
        b.decrypt_from(t1, WALL, A_ADDR, &datagram, &mut out),
        Ok(Received::Data { .. })
    ));
    assert!(b.session_ready(&a.local_peer_id(), t1));
}

#[test]
fn a_responder_under_load_gets_a_cookie_from_the_initiator_too() {
    // Responses are handshake messages: an initiator under load asks the
    // responder for mac2 as well, and the responder's retried response
    // (its answer to a retried initiation) carries it.
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    a.set_under_load(t0 + Duration::from_secs(60));
    let mut out = Vec::new();
    let init = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    let response = expect_response(b.decrypt_from(t0, WALL, A_ADDR, &init, &mut out));
    let reply = expect_cookie(a.decrypt_from(t0, WALL, B_ADDR, &response, &mut out));
    assert_eq!(
        &reply[4..8],
        &response[4..8],
        "addressed to the responder's index"
    );
    assert!(matches!(
        b.decrypt_from(t0, WALL, A_ADDR, &reply, &mut out),
        Ok(Received::CookieReceived { .. })
    ));
    let t1 = t0 + Duration::from_millis(250);
    let retry = a.initiate(t1, WALL, &b.local_peer_id()).expect("retry");
    let response = expect_response(b.decrypt_from(t1, WALL, A_ADDR, &retry, &mut out));
    assert_ne!(
        &response[RESP_MAC2..],
        &[0; 16],
        "the response carries mac2"
    );
    assert!(matches!(
        a.decrypt_from(t1, WALL, B_ADDR, &response, &mut out),
        Ok(Received::HandshakeComplete { .. })
    ));
}

#[test]
fn not_under_load_mac2_is_not_required_and_a_bad_one_is_ignored() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut init = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    init[INIT_MAC2..].fill(0xa5);
    let response = expect_response(b.decrypt_from(t0, WALL, A_ADDR, &init, &mut out));
    let mut response = response;
    response[RESP_MAC2..].fill(0x5a);
    assert!(matches!(
        a.decrypt_from(t0, WALL, B_ADDR, &response, &mut out),
        Ok(Received::HandshakeComplete { .. })
    ));
    assert!(!b.handshake_load().under_load);
    assert_eq!(b.handshake_load().cookie_replies_sent, 0);
}

#[test]
fn garbled_and_misdirected_cookie_replies_are_refused_and_counted() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    b.set_under_load(t0 + Duration::from_secs(60));
    let mut out = Vec::new();
    let first = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    let reply_to_first = expect_cookie(b.decrypt_from(t0, WALL, A_ADDR, &first, &mut out));
    // Every flipped bit from the receiver index on is refused (index:
    // unknown; nonce, cookie, tag: authentication).
    for i in 4..reply_to_first.len() {
        let mut bad = reply_to_first.clone();
        bad[i] ^= 0x10;
        assert_eq!(
            a.decrypt_from(t0, WALL, B_ADDR, &bad, &mut out),
            Err(WgError::BadCookieReply),
            "byte {i}"
        );
    }
    assert_eq!(a.handshake_load().bad_cookie_replies, 60);
    // A reply sealed for the right key but another mac1 (wrong AAD).
    let key = cookie_key(b.local_peer_id().public_key());
    let mut receiver = [0u8; 4];
    receiver.copy_from_slice(&first[4..8]);
    let wrong_aad = seal_reply(
        &key,
        u32::from_le_bytes(receiver),
        &[7; 24],
        &[9; COOKIE_LEN],
        &[0; 16],
    );
    assert_eq!(
        a.decrypt_from(t0, WALL, B_ADDR, &wrong_aad, &mut out),
        Err(WgError::BadCookieReply)
    );
    // A newer initiation: the reply to the first no longer matches our
    // last mac1.
    let t1 = t0 + Duration::from_millis(250);
    let second = a.initiate(t1, WALL, &b.local_peer_id()).expect("retry");
    assert_eq!(
        a.decrypt_from(t1, WALL, B_ADDR, &reply_to_first, &mut out),
        Err(WgError::BadCookieReply)
    );
    let reply_to_second = expect_cookie(b.decrypt_from(t1, WALL, A_ADDR, &second, &mut out));
    assert!(matches!(
        a.decrypt_from(t1, WALL, B_ADDR, &reply_to_second, &mut out),
        Ok(Received::CookieReceived { .. })
    ));
    assert_eq!(a.handshake_load().bad_cookie_replies, 62);
    assert_eq!(a.handshake_load().cookie_replies_received, 1);
    // A reply to no index of ours at all (and a wrong length) is refused
    // without touching any peer.
    let mut stray = reply_to_second.clone();
    stray[4..8].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
    assert_eq!(
        a.decrypt_from(t1, WALL, B_ADDR, &stray, &mut out),
        Err(WgError::BadCookieReply)
    );
    assert_eq!(
        a.decrypt_from(t1, WALL, B_ADDR, &stray[..63], &mut out),
        Err(WgError::Truncated)
    );
}

#[test]
fn the_cookie_secret_rotates_every_two_minutes() {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let public = [1u8; 32];
    let mut checker = CookieChecker::new(&public);
    let mut jar = LatestCookie::new(&public);
    let t0 = Instant::now();
    let mut msg = [0u8; INITIATION_LEN];
    msg[..4].copy_from_slice(&1u32.to_le_bytes());
    msg[INIT_MAC1..INIT_MAC2].copy_from_slice(&[3; 16]);
    let reply = checker.reply(t0, &mut rng, &msg, INIT_MAC1, 1, A_ADDR);
    jar.stamp(t0, &mut msg, INIT_MAC1);
    jar.consume(t0, &reply).expect("the reply to our message");
    assert!(jar.has_cookie());

    // The initiator uses the cookie for 115 s (120 s less the latency).
    let usable = COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY;
    for (age, expect_mac2) in [
        (Duration::ZERO, true),
        (usable - Duration::from_millis(1), true),
        (usable, false),
    ] {
        let mut m = msg;
        m[INIT_MAC2..].fill(0);
        jar.stamp(t0 + age, &mut m, INIT_MAC1);
        assert_eq!(m[INIT_MAC2..] != [0; 16], expect_mac2, "age {age:?}");
    }

    // The responder accepts mac2 of the secret in force, until it renews it.
    let mut m = msg;
    jar.stamp(t0, &mut m, INIT_MAC1);
    let just_before = t0 + COOKIE_SECRET_MAX_AGE - Duration::from_millis(1);
    assert!(checker.mac2_valid(just_before, &mut rng, &m, INIT_MAC1, A_ADDR));
    assert!(!checker.mac2_valid(just_before, &mut rng, &m, INIT_MAC1, B_ADDR));
    let after = t0 + COOKIE_SECRET_MAX_AGE;
    assert!(
        !checker.mac2_valid(after, &mut rng, &m, INIT_MAC1, A_ADDR),
        "renewed"
    );
    // And a cookie of the new secret works again.
    let mut fresh = msg;
    fresh[INIT_MAC2..].fill(0);
    let reply = checker.reply(after, &mut rng, &fresh, INIT_MAC1, 1, A_ADDR);
    jar.stamp(after, &mut fresh, INIT_MAC1);
    jar.consume(after, &reply).expect("new cookie");
    jar.stamp(after, &mut fresh, INIT_MAC1);
    assert!(checker.mac2_valid(after, &mut rng, &fresh, INIT_MAC1, A_ADDR));
}

#[test]
fn the_limiter_allows_a_burst_of_5_then_20_per_second() {
    let mut limiter = RateLimiter::default();
    let t0 = Instant::now();
    let ip = A_ADDR.ip();
    let allowed = (0..10).filter(|_| limiter.allow(ip, t0)).count();
    assert_eq!(allowed, usize::try_from(HANDSHAKE_BURST).expect("small"));
    // One more per 50 ms.
    assert!(!limiter.allow(ip, t0 + Duration::from_millis(49)));
    assert!(limiter.allow(ip, t0 + Duration::from_millis(50)));
    assert!(!limiter.allow(ip, t0 + Duration::from_millis(51)));
    // Another address has its own bucket.
    assert!(limiter.allow(B_ADDR.ip(), t0));

    // Offered 1,000/s for 10 s: 20/s get through (plus the burst).
    let mut limiter = RateLimiter::default();
    let mut passed = 0u64;
    for ms in 0..10_000u64 {
        if limiter.allow(ip, t0 + Duration::from_millis(ms)) {
            passed += 1;
        }
    }
    let bound = HANDSHAKE_BURST + 10 * HANDSHAKES_PER_SECOND;
    assert!(passed <= bound && passed >= bound - 1, "passed {passed}");

    // An idle source is forgiven: a full burst again after a second.
    let later = t0 + Duration::from_secs(20);
    assert_eq!((0..10).filter(|_| limiter.allow(ip, later)).count(), 5);
}

#[test]
fn the_limiter_is_bounded_and_groups_ipv6_by_64() {
    let mut limiter = RateLimiter::default();
    let t0 = Instant::now();
    for i in 0..10_000u32 {
        assert!(limiter.allow(IpAddr::V4(Ipv4Addr::from(0xc633_0000 + i)), t0));
        assert!(limiter.len() <= LIMITER_CAPACITY);
    }
    assert_eq!(limiter.len(), LIMITER_CAPACITY);

    let mut limiter = RateLimiter::default();
    let base: u128 = 0x2001_0db8_0000_0001 << 64;
    let passed = (0..10u128)
        .filter(|i| limiter.allow(IpAddr::V6(Ipv6Addr::from(base + i)), t0))
        .count();
    assert_eq!(passed, 5, "one /64, one bucket");
    assert!(limiter.allow(IpAddr::V6(Ipv6Addr::from(base + (1 << 64))), t0));
}

#[test]
fn load_is_detected_from_the_arrival_rate_and_lasts_a_second() {
    let mut load = Load::default();
    let t0 = Instant::now();
    let step = |i: usize| Duration::from_micros(500 * u64::try_from(i).expect("small"));
    for i in 0..UNDER_LOAD_HANDSHAKES {
        assert!(!load.under_load(t0 + step(i)), "only {i} so far");
        load.arrived(t0 + step(i));
    }
    let last = t0 + step(UNDER_LOAD_HANDSHAKES - 1);
    assert!(load.under_load(last));
    assert!(load.under_load(last + UNDER_LOAD_AFTER - Duration::from_millis(1)));
    assert!(!load.under_load(last + UNDER_LOAD_AFTER));

    // 500 a second, however long, is no load.
    let mut load = Load::default();
    for i in 0..5_000 {
        load.arrived(t0 + 4 * step(i));
        assert!(!load.under_load(t0 + 4 * step(i)), "arrival {i}");
    }

    // A source over its limit is load at once, for a second.
    let mut load = Load::default();
    load.overflowed(t0);
    assert!(load.under_load(t0 + UNDER_LOAD_AFTER - Duration::from_millis(1)));
    assert!(!load.under_load(t0 + UNDER_LOAD_AFTER));

    // The host's word counts as well, and the latest call wins.
    let mut load = Load::default();
    load.set_until(t0 + Duration::from_secs(5));
    assert!(load.under_load(t0 + Duration::from_secs(4)));
    load.set_until(t0);
    assert!(!load.under_load(t0 + Duration::from_secs(1)));
}

#[test]
fn a_source_over_its_limit_puts_the_node_under_load() {
    let (_, mut b) = pair();
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let t0 = Instant::now();
    let mut out = Vec::new();
    for i in 0..HANDSHAKE_BURST {
        let forged = forged_initiation(&b, &mut rng);
        assert_eq!(
            b.decrypt_from(t0, WALL, EVIL, &forged, &mut out),
            Err(WgError::Decrypt),
            "forged {i} is let through to the DH (and fails there)"
        );
    }
    assert!(!b.under_load(t0));
    let forged = forged_initiation(&b, &mut rng);
    assert_eq!(
        b.decrypt_from(t0, WALL, EVIL, &forged, &mut out),
        Err(WgError::RateLimited)
    );
    assert!(b.under_load(t0));
    // From now on even another source needs mac2.
    let forged = forged_initiation(&b, &mut rng);
    expect_cookie(b.decrypt_from(t0, WALL, A_ADDR, &forged, &mut out));
    let load = b.handshake_load();
    assert_eq!(
        (load.dh_computed, load.rate_limited, load.mac2_missing),
        (5, 1, 1)
    );
    assert!(!b.under_load(t0 + UNDER_LOAD_AFTER));
}

#[test]
fn a_flood_of_forged_initiations_costs_at_most_20_dh_per_second() {
    let (mut a, mut b) = pair();
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let t0 = Instant::now();
    let mut out = Vec::new();
    let total = 10_000u32;
    // 10,000 forged initiations over 5 s of virtual time (2,000/s) from
    // one address; the attacker reads the cookie replies sent to it and
    // puts a valid mac2 on everything after the first (the worst case: a
    // flooder that owns its address).
    let mut cookie: Option<[u8; COOKIE_LEN]> = None;
    let mut answered = 0u32;
    let mut handshake_done_at = None;
    let mut pending_init = Some(a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate"));
    for i in 0..total {
        let now = t0 + Duration::from_micros(500 * u64::from(i));
        let mut forged = forged_initiation(&b, &mut rng);
        if let Some(c) = &cookie {
            let mac2 = mac16(c, &forged[..INIT_MAC2]);
            forged[INIT_MAC2..].copy_from_slice(&mac2);
        }
        match b.decrypt_from(now, WALL, EVIL, &forged, &mut out) {
            Ok(Received::CookieNeeded { reply }) => {
                // The attacker opens its cookie like any initiator would.
                let key = cookie_key(b.local_peer_id().public_key());
                let mut r = [0u8; 64];
                r.copy_from_slice(&reply);
                let c = open_reply(&key, &r, &forged[INIT_MAC1..INIT_MAC2])
                    .expect("the attacker's own cookie");
                cookie = Some(c);
            }
            Err(WgError::RateLimited | WgError::Decrypt) => {}
            other => panic!("forged initiation {i}: {other:?}"),
        }

        // Meanwhile the real peer handshakes, retrying on its timer.
        if let Some(init) = pending_init.take() {
            match b.decrypt_from(now, WALL, A_ADDR, &init, &mut out) {
                Ok(Received::CookieNeeded { reply }) => {
                    assert!(matches!(
                        a.decrypt_from(now, WALL, B_ADDR, &reply, &mut out),
                        Ok(Received::CookieReceived { .. })
                    ));
                }
                Ok(Received::HandshakeInitiation { response, .. }) => {
                    assert!(matches!(
                        a.decrypt_from(now, WALL, B_ADDR, &response, &mut out),
                        Ok(Received::HandshakeComplete { .. })
                    ));
                    answered += 1;
                    handshake_done_at.get_or_insert(now);
                }
                other => panic!("the real initiation: {other:?}"),
            }
        }
        for (_, event) in a.handle_timeout(now) {
            if event == TimerEvent::HandshakeRetry {
                pending_init = Some(a.initiate(now, WALL, &b.local_peer_id()).expect("retry"));
            }
        }
    }
    let elapsed = Duration::from_micros(500 * u64::from(total));
    let load = b.handshake_load();
    assert!(load.under_load, "a flood puts the node under load");
    // The real peer's DH (one) plus the attacker's, which the limiter holds
    // to the burst and 20/s.
    let bound = HANDSHAKE_BURST + HANDSHAKES_PER_SECOND * elapsed.as_secs() + 1;
    assert!(
        load.dh_computed <= bound,
        "{} DH in {elapsed:?} (bound {bound})",
        load.dh_computed
    );
    assert!(load.rate_limited > 9_000, "{load:?}");
    assert_eq!(answered, 1, "the real peer's handshake completed");
    let done = handshake_done_at.expect("completed");
    assert!(done < t0 + Duration::from_secs(1), "took {:?}", done - t0);
    assert!(a.session_ready(&b.local_peer_id(), done));

    // Without the attacker's cookie (mac2 random): every one is answered
    // with a cookie, none costs a DH.
    let mut c = super::node(3);
    c.add_peer(a.local_peer_id());
    let later = t0 + Duration::from_secs(10);
    for i in 0..1_000u64 {
        let now = later + Duration::from_micros(100 * i);
        let forged = forged_initiation(&c, &mut rng);
        let _ = c.decrypt_from(now, WALL, EVIL, &forged, &mut out);
    }
    let load = c.handshake_load();
    assert!(load.dh_computed <= HANDSHAKE_BURST, "{load:?}");
    assert!(load.mac2_missing >= 1_000 - load.dh_computed - load.rate_limited);
}

/// mac2 as an initiator computes it: keyed BLAKE2s-128 with the cookie.
fn mac16(cookie: &[u8; COOKIE_LEN], data: &[u8]) -> [u8; 16] {
    use blake2::Blake2sMac;
    use blake2::digest::consts::U16;
    use blake2::digest::{FixedOutput, KeyInit, Update};
    let mut m = <Blake2sMac<U16> as KeyInit>::new_from_slice(cookie).expect("16-byte key");
    Update::update(&mut m, data);
    m.finalize_fixed().into()
}

#[test]
fn hchacha20_matches_the_draft_vector() {
    // draft-irtf-cfrg-xchacha-03 section 2.2.1.
    let key: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).expect("< 32"));
    let input = [
        0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x4a, 0x00, 0x00, 0x00, 0x00, 0x31, 0x41, 0x59,
        0x27,
    ];
    let want = [
        0x82, 0x41, 0x3b, 0x42, 0x27, 0xb2, 0x7b, 0xfe, 0xd3, 0x0e, 0x42, 0x50, 0x8a, 0x87, 0x7d,
        0x73, 0xa0, 0xf9, 0xe4, 0xd5, 0x8a, 0x74, 0xa8, 0x53, 0xc1, 0x2e, 0xc4, 0x13, 0x26, 0xd3,
        0xec, 0xdc,
    ];
    assert_eq!(hchacha20(&key, &input), want);
}

#[test]
fn cookie_reply_matches_an_independent_computation() {
    // The reply a responder sends, recomputed from the whitepaper with
    // RustCrypto's XChaCha20-Poly1305 and BLAKE2s:
    //   key    = HASH("cookie--" || responder static public)
    //   cookie = MAC(secret, src ip || src port)    (responder-private)
    //   reply  = 3 || 0,0,0 || receiver(le) || nonce || XAEAD(key, nonce, cookie, mac1)
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    for _ in 0..50 {
        let mut public = [0u8; 32];
        rng.fill_bytes(&mut public);
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        let mut cookie = [0u8; 16];
        rng.fill_bytes(&mut cookie);
        let mut mac1 = [0u8; 16];
        rng.fill_bytes(&mut mac1);
        let receiver = rng.next_u32();

        let ours = seal_reply(&cookie_key(&public), receiver, &nonce, &cookie, &mac1);

        let key = blake2s(&[b"cookie--", &public]);
        let cipher = XChaCha20Poly1305::new(&key.into());
        let mut body = cookie;
        let tag = cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &mac1, &mut body)
            .expect("seal");
        let mut want = Vec::with_capacity(64);
        want.extend_from_slice(&[3, 0, 0, 0]);
        want.extend_from_slice(&receiver.to_le_bytes());
        want.extend_from_slice(&nonce);
        want.extend_from_slice(&body);
        want.extend_from_slice(&tag);
        assert_eq!(ours.as_slice(), want.as_slice());
        assert_eq!(&ours[REPLY_NONCE..REPLY_COOKIE], &nonce);
        assert_eq!(
            open_reply(&cookie_key(&public), &ours, &mac1),
            Ok(cookie),
            "and it opens"
        );
    }
}

fn blake2s(parts: &[&[u8]]) -> [u8; 32] {
    use blake2::Blake2s256;
    use blake2::digest::{FixedOutput, Update};
    let mut h = Blake2s256::default();
    for p in parts {
        Update::update(&mut h, p);
    }
    h.finalize_fixed().into()
}

#[test]
fn mac_offsets_are_the_whitepapers() {
    assert_eq!((INIT_MAC1, INIT_MAC2), (116, 132));
    assert_eq!((RESP_MAC1, RESP_MAC2), (60, 76));
}

#[test]
fn a_copy_of_an_answered_initiation_costs_no_dh_and_no_token() {
    // The node sends one initiation over every candidate path; copies
    // after the first are refused before the limiter and the DH.
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    let mut out = Vec::new();
    let init = a.initiate(t0, WALL, &b.local_peer_id()).expect("initiate");
    expect_response(b.decrypt_from(t0, WALL, A_ADDR, &init, &mut out));
    for _ in 0..20 {
        assert_eq!(
            b.decrypt_from(t0, WALL, A_ADDR, &init, &mut out),
            Err(WgError::StaleTimestamp)
        );
    }
    let load = b.handshake_load();
    assert_eq!((load.dh_computed, load.rate_limited), (1, 0));
    assert!(!load.under_load);
    // A fresh initiation still goes through.
    let t1 = t0 + Duration::from_millis(100);
    let again = a.initiate(t1, WALL, &b.local_peer_id()).expect("initiate");
    expect_response(b.decrypt_from(t1, WALL, A_ADDR, &again, &mut out));
}
