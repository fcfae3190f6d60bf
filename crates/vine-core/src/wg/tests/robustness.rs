//! A seeded property test: random, truncated and mutated datagrams never
//! make `decrypt` panic, and never disturb an established session.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::super::{Received, ip_packet_len};
use super::{WALL, handshake, open, padded, pair, seal};

const ITERATIONS: usize = 100_000;

fn below(rng: &mut ChaCha20Rng, n: usize) -> usize {
    usize::try_from(rng.next_u64() % u64::try_from(n).expect("usize fits u64"))
        .expect("below n, which is a usize")
}

#[test]
fn arbitrary_datagrams_never_panic() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);
    let bid = b.local_peer_id();

    // A corpus of valid messages of every type.
    let mut corpus = vec![
        a.initiate(t0, WALL, &bid).expect("initiate"),
        seal(&mut a, &b, t0, b""),
        seal(&mut a, &b, t0, b"some data for the corpus"),
        seal(&mut b, &a, t0, &[0x45; 100]),
    ];
    let init2 = b.initiate(t0, WALL, &a.local_peer_id()).expect("initiate");
    if let Ok(Received::HandshakeInitiation { response, .. }) =
        a.decrypt(t0, WALL, &init2, &mut Vec::new())
    {
        corpus.push(response);
    }
    corpus.push(init2);
    let mut cookie = vec![0u8; 64];
    cookie[0] = 3;
    corpus.push(cookie);

    let mut rng = ChaCha20Rng::from_seed([0x5a; 32]);
    let mut out = Vec::new();
    let mut now = t0;
    let mut accepted = 0usize;
    let mut errors = BTreeMap::new();
    for i in 0..ITERATIONS {
        let mut msg = if rng.next_u32() % 8 == 0 {
            let mut m = vec![0u8; below(&mut rng, 200)];
            rng.fill_bytes(&mut m);
            m
        } else {
            corpus[below(&mut rng, corpus.len())].clone()
        };
        match rng.next_u32() % 6 {
            0 => msg.truncate(below(&mut rng, msg.len() + 1)),
            1 | 2 => {
                for _ in 0..=below(&mut rng, 4) {
                    if !msg.is_empty() {
                        let at = below(&mut rng, msg.len());
                        msg[at] ^= 1 << below(&mut rng, 8);
                    }
                }
            }
            3 if msg.len() >= 4 => {
                msg[0] = u8::try_from(below(&mut rng, 6)).expect("below 6");
            }
            4 => {
                let mut extra = vec![0u8; below(&mut rng, 40)];
                rng.fill_bytes(&mut extra);
                msg.extend_from_slice(&extra);
            }
            _ => {}
        }
        let target = if i % 2 == 0 { &mut a } else { &mut b };
        match target.decrypt(now, WALL, &msg, &mut out) {
            Ok(_) => accepted += 1,
            Err(e) => {
                let name = format!("{e:?}");
                let name = name.split('(').next().unwrap_or_default().to_owned();
                *errors.entry(name).or_insert(0usize) += 1;
            }
        }
        let _ = ip_packet_len(&msg);
        if i % 1000 == 0 {
            now += Duration::from_millis(100);
            let _ = target.handle_timeout(now);
        }
    }
    // Only unmutated corpus entries can be accepted, each at most once.
    assert!(accepted <= 8, "accepted {accepted}");
    // Every rejection path was exercised.
    for kind in [
        "Truncated",
        "WrongLength",
        "UnknownType",
        "BadMac1",
        "Decrypt",
        "Replay",
        "UnknownIndex",
        "StaleTimestamp",
        "BadCookieReply",
    ] {
        assert!(errors.contains_key(kind), "{kind} never seen: {errors:?}");
    }

    // The session is intact.
    let d = seal(&mut a, &b, now, b"after the storm");
    assert_eq!(open(&mut b, &a, now, &d), Ok(padded(b"after the storm")));
    let d = seal(&mut b, &a, now, b"and back");
    assert_eq!(open(&mut a, &b, now, &d), Ok(padded(b"and back")));
}
