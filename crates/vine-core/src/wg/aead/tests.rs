//! The AVX-512 AEAD against ring (whole AEAD) and the `poly1305` crate
//! (the MAC alone, with keys and messages at the limits of the limb
//! bounds). On a CPU without the features the fast functions return
//! `None`; the tests then say so and check only the ring path.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use ring::aead::{Aad, LessSafeKey};

use super::*;

fn ring_seal(key: &LessSafeKey, counter: u64, body: &mut [u8]) -> [u8; TAG_LEN] {
    let tag = key
        .seal_in_place_separate_tag(nonce(counter), Aad::empty(), body)
        .expect("ring seals");
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(tag.as_ref());
    t
}

fn have_fast() -> bool {
    let ok = fast_seal(&[0; KEY_LEN], 0, &mut [0u8; 1]).is_some();
    if !ok {
        eprintln!("this CPU lacks AVX-512 IFMA: only the ring path is checked");
    }
    ok
}

#[test]
fn avx512_seal_and_open_match_ring_at_every_length_to_2100() {
    if !have_fast() {
        return;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(0x7ead);
    for len in 0..=2100usize {
        let mut key = [0u8; KEY_LEN];
        rng.fill_bytes(&mut key);
        let counter = rng.next_u64() >> (len % 64);
        let mut plain = vec![0u8; len];
        rng.fill_bytes(&mut plain);

        let ring = aead_key(&key);
        let mut a = plain.clone();
        let ta = ring_seal(&ring, counter, &mut a);
        let mut b = plain.clone();
        let tb = fast_seal(&key, counter, &mut b).expect("fast path available");
        assert_eq!(a, b, "ciphertext differs at len {len}");
        assert_eq!(ta, tb, "tag differs at len {len}");

        let mut sealed = b.clone();
        sealed.extend_from_slice(&tb);
        let mut opened = sealed.clone();
        assert_eq!(
            fast_open(&key, counter, &mut opened),
            Some(len),
            "len {len}"
        );
        assert_eq!(opened[..len], plain[..], "plaintext differs at len {len}");

        // Any flipped bit is rejected.
        let bit = (rng.next_u32() as usize) % ((len + TAG_LEN) * 8);
        let mut bad = sealed.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            fast_open(&key, counter, &mut bad),
            None,
            "len {len} bit {bit}"
        );
        // A different counter (nonce) is rejected too.
        let mut other = sealed.clone();
        assert_eq!(fast_open(&key, counter ^ 1, &mut other), None);
    }
}

#[test]
fn avx512_matches_ring_on_jumbo_and_super_packet_sizes() {
    if !have_fast() {
        return;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(9000);
    for len in [4095, 4096, 8960, 9000, 16383, 65_535, 65_536, 100_000] {
        let mut key = [0u8; KEY_LEN];
        rng.fill_bytes(&mut key);
        let mut plain = vec![0u8; len];
        rng.fill_bytes(&mut plain);
        let mut a = plain.clone();
        let ta = ring_seal(&aead_key(&key), u64::MAX - 1, &mut a);
        let mut b = plain.clone();
        assert_eq!(fast_seal(&key, u64::MAX - 1, &mut b), Some(ta), "len {len}");
        assert!(a == b, "ciphertext differs at len {len}");
    }
}

/// Poly1305 of the AEAD layout (message padded to 16, then 8 zero bytes
/// and the length) by the `poly1305` crate.
fn reference_mac(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    use poly1305::universal_hash::{KeyInit, UniversalHash};
    let mut mac = poly1305::Poly1305::new(key.into());
    mac.update_padded(msg);
    let mut lengths = [0u8; 16];
    lengths[8..].copy_from_slice(&(msg.len() as u64).to_le_bytes());
    mac.update(&[lengths.into()]);
    mac.finalize().into()
}

#[allow(unsafe_code)] // a call of a target-feature function, guarded
fn fast_mac(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    assert!(avx512_usable());
    // SAFETY: the CPU has the features (asserted just above).
    unsafe { avx512::poly1305_aead(key, msg) }
}

#[test]
fn avx512_poly1305_matches_the_reference_at_the_limb_limits() {
    if !have_fast() {
        return;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(1305);
    let mut keys: Vec<[u8; 32]> = vec![[0xff; 32], [0; 32]];
    // r all ones after clamping, s zero; r = 1; r = 2^124 - 1-ish, s = all ones.
    let mut k = [0u8; 32];
    k[0] = 1;
    keys.push(k);
    let mut k = [0xff; 32];
    k[16..].fill(0);
    keys.push(k);
    for _ in 0..16 {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        keys.push(k);
    }
    for key in &keys {
        for len in (0..700).chain([1408, 1424, 8960, 65_536]) {
            for fill in [0x00u8, 0xff, 0x5a] {
                let msg = vec![fill; len];
                assert_eq!(
                    fast_mac(key, &msg),
                    reference_mac(key, &msg),
                    "key {key:02x?} len {len} fill {fill:#x}"
                );
            }
            let mut msg = vec![0u8; len];
            rng.fill_bytes(&mut msg);
            assert_eq!(
                fast_mac(key, &msg),
                reference_mac(key, &msg),
                "random len {len}"
            );
        }
    }
}

#[test]
fn final_reduction_maps_values_at_and_above_p() {
    let m44 = (1u64 << 44) - 1;
    let m42 = (1u64 << 42) - 1;
    // p = 2^130 - 5 in limbs.
    let p = [m44 - 4, m44, m42];
    assert_eq!(avx512::tests_support::reduce_final(p), 0);
    assert_eq!(avx512::tests_support::reduce_final([m44 - 3, m44, m42]), 1);
    // 2^130 - 1 = p + 4.
    assert_eq!(avx512::tests_support::reduce_final([m44, m44, m42]), 4);
    // 2^130 (carried in from below) is 5.
    assert_eq!(avx512::tests_support::reduce_final([1 << 44, m44, m42]), 5);
    // p - 1 stays.
    let below = avx512::tests_support::reduce_final([m44 - 5, m44, m42]);
    assert_eq!(below, u128::MAX - 5, "p - 1 mod 2^128");
}

#[test]
fn keys_seal_and_open_through_whichever_backend_runs() {
    let key = AeadKey::new(&[3; KEY_LEN], Backend::detect().0);
    let mut buf = b"a transport message body, padded".to_vec();
    let tag = key.seal(7, &mut buf).expect("seal");
    buf.extend_from_slice(&tag);
    let ring = aead_key(&[3; KEY_LEN]);
    let mut check = buf.clone();
    let plain = ring
        .open_in_place(nonce(7), Aad::empty(), &mut check)
        .expect("ring opens what the chosen backend sealed");
    assert_eq!(plain, b"a transport message body, padded");
    assert_eq!(key.open(7, &mut buf), Ok(32));
    assert_eq!(key.open(8, &mut buf), Err(AeadError));
    assert_eq!(key.open(7, &mut [0u8; 15]), Err(AeadError));
    eprintln!("transport AEAD backend: {}", Backend::detect().0.name());
}

#[test]
fn seal_each_matches_one_by_one_on_both_backends() {
    let mut rng = ChaCha20Rng::seed_from_u64(46);
    let lens: Vec<usize> = (0..60)
        .map(|i| match i % 6 {
            0 => 1408,
            1 => 0,
            2 => (rng.next_u32() % 3000) as usize,
            3 => 960,
            4 => 1024,
            _ => (rng.next_u32() % 200) as usize,
        })
        .collect();
    for backend in [Backend::Ring, Backend::Avx512] {
        let key = AeadKey::new(&[0x33; KEY_LEN], backend);
        let mut expect = Vec::new();
        let mut slots = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            let mut body = vec![0u8; len];
            rng.fill_bytes(&mut body);
            let mut one = body.clone();
            let tag = key.seal(1000 + i as u64, &mut one).expect("seal");
            one.extend_from_slice(&tag);
            expect.push(one);
            body.extend_from_slice(&[0u8; TAG_LEN]);
            slots.push(body);
        }
        key.seal_each(
            slots
                .iter_mut()
                .enumerate()
                .map(|(i, s)| (1000 + i as u64, s.as_mut_slice())),
        );
        assert!(
            slots == expect,
            "{backend:?}: batch and single seals differ"
        );
    }
}

#[test]
fn open_each_matches_one_by_one_and_rejects_exactly_the_damaged() {
    let mut rng = ChaCha20Rng::seed_from_u64(64);
    for backend in [Backend::Ring, Backend::Avx512] {
        let key = AeadKey::new(&[0x44; KEY_LEN], backend);
        let mut plains = Vec::new();
        let mut sealed = Vec::new();
        for i in 0..64u64 {
            let len = match i % 5 {
                0 => 1408,
                1 => 0,
                2 => (rng.next_u32() % 3000) as usize,
                3 => 944,
                _ => (rng.next_u32() % 300) as usize,
            };
            let mut body = vec![0u8; len];
            rng.fill_bytes(&mut body);
            plains.push(body.clone());
            let tag = key.seal(i * 3, &mut body).expect("seal");
            body.extend_from_slice(&tag);
            sealed.push(body);
        }
        // Damage every seventh (one bit anywhere) and give one a short
        // payload; the rest must open to their plaintexts.
        let mut items = sealed.clone();
        for (i, item) in items.iter_mut().enumerate() {
            if i % 7 == 3 {
                let bit = (rng.next_u32() as usize) % (item.len() * 8);
                item[bit / 8] ^= 1 << (bit % 8);
            }
        }
        items[10].truncate(15);
        let mut seen = Vec::new();
        key.open_each(
            items
                .iter_mut()
                .enumerate()
                .map(|(i, p)| (i, i as u64 * 3, p.as_mut_slice())),
            |i, ok| seen.push((i, ok)),
        );
        let expect: Vec<(usize, bool)> = (0..64).map(|i| (i, i % 7 != 3 && i != 10)).collect();
        assert_eq!(seen, expect, "{backend:?}: wrong verdicts or order");
        for (i, item) in items.iter().enumerate() {
            if expect[i].1 {
                assert_eq!(
                    item[..item.len() - TAG_LEN],
                    plains[i][..],
                    "{backend:?}: item {i}"
                );
            }
        }
    }
}

/// Lengths around the places where packed runs change shape: a message of
/// `64 k - 1 .. 64 k + 1` bytes needs `k + 1` keystream blocks, so its
/// last run has room for 16 - (k + 1) mod 16 blocks of the next message.
fn tricky_len(rng: &mut ChaCha20Rng) -> usize {
    let k = (rng.next_u32() % 50) as usize;
    match rng.next_u32() % 4 {
        0 => (64 * k).saturating_sub(1),
        1 => 64 * k,
        2 => 64 * k + 1,
        _ => (rng.next_u32() % 3300) as usize,
    }
}

#[test]
fn packed_batches_of_random_shapes_match_ring_message_by_message() {
    if !have_fast() {
        return;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let key_bytes = [0x5a; KEY_LEN];
    let key = AeadKey::new(&key_bytes, Backend::Avx512);
    let ring_key = aead_key(&key_bytes);
    for round in 0..300 {
        let n = 1 + (rng.next_u32() % 24) as usize;
        let lens: Vec<usize> = (0..n).map(|_| tricky_len(&mut rng)).collect();
        let counters: Vec<u64> = (0..n).map(|_| u64::from(rng.next_u32())).collect();
        let mut plains = Vec::new();
        let mut expect = Vec::new();
        for (&len, &ctr) in lens.iter().zip(&counters) {
            let mut body = vec![0u8; len];
            rng.fill_bytes(&mut body);
            plains.push(body.clone());
            let tag = ring_seal(&ring_key, ctr, &mut body);
            body.extend_from_slice(&tag);
            expect.push(body);
        }
        let mut slots: Vec<Vec<u8>> = plains
            .iter()
            .map(|p| {
                let mut s = p.clone();
                s.extend_from_slice(&[0u8; TAG_LEN]);
                s
            })
            .collect();
        key.seal_each(
            slots
                .iter_mut()
                .zip(&counters)
                .map(|(s, &c)| (c, s.as_mut_slice())),
        );
        assert!(
            slots == expect,
            "round {round}: packed seal of {lens:?} differs from ring"
        );

        // Open the same batch with some damaged and some short.
        let mut items = expect.clone();
        let mut good = vec![true; n];
        for (i, item) in items.iter_mut().enumerate() {
            match rng.next_u32() % 8 {
                0 => {
                    let bit = (rng.next_u32() as usize) % (item.len() * 8);
                    item[bit / 8] ^= 1 << (bit % 8);
                    good[i] = false;
                }
                1 => {
                    item.truncate((rng.next_u32() % 16) as usize);
                    good[i] = false;
                }
                _ => {}
            }
        }
        let mut seen = Vec::new();
        key.open_each(
            items
                .iter_mut()
                .zip(&counters)
                .enumerate()
                .map(|(i, (p, &c))| (i, c, p.as_mut_slice())),
            |i, ok| seen.push((i, ok)),
        );
        let want: Vec<(usize, bool)> = good.iter().copied().enumerate().collect();
        assert_eq!(seen, want, "round {round}: verdicts for {lens:?}");
        for i in (0..n).filter(|&i| good[i]) {
            assert_eq!(
                items[i][..lens[i]],
                plains[i][..],
                "round {round}: message {i} of {lens:?} opened wrong"
            );
        }
    }
}

#[test]
fn runs_are_not_packed_across_different_keys() {
    if !have_fast() {
        return;
    }
    // avx512::seal_each takes any states; messages under different keys
    // must each get their own runs (checked here against ring).
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let keys = [[0x11u8; KEY_LEN], [0x22u8; KEY_LEN]];
    let ring_keys = [aead_key(&keys[0]), aead_key(&keys[1])];
    let lens = [100usize, 1408, 0, 33, 960, 2000, 1, 700];
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut expect = Vec::new();
    for (i, &len) in lens.iter().enumerate() {
        let mut body = vec![0u8; len];
        rng.fill_bytes(&mut body);
        let mut sealed = body.clone();
        let tag = ring_seal(&ring_keys[i % 2], i as u64, &mut sealed);
        sealed.extend_from_slice(&tag);
        expect.push(sealed);
        bodies.push(body);
    }
    let mut tags = vec![[0u8; TAG_LEN]; lens.len()];
    let items = bodies
        .iter_mut()
        .zip(tags.iter_mut())
        .enumerate()
        .map(|(i, (b, t))| {
            (
                avx512::ChaChaState::new(&keys[i % 2], &nonce_bytes(i as u64)),
                b.as_mut_slice(),
                t,
            )
        });
    // SAFETY: `have_fast` checked the CPU features.
    #[allow(unsafe_code)]
    unsafe {
        avx512::seal_each(items)
    };
    for i in 0..lens.len() {
        let mut got = bodies[i].clone();
        got.extend_from_slice(&tags[i]);
        assert_eq!(got, expect[i], "message {i} under key {}", i % 2);
    }
    // And opened as one batch, alternating keys again.
    let mut opened = Vec::new();
    let mut payloads = expect.clone();
    let items = payloads.iter_mut().enumerate().map(|(i, p)| {
        (
            i,
            avx512::ChaChaState::new(&keys[i % 2], &nonce_bytes(i as u64)),
            p.as_mut_slice(),
        )
    });
    // SAFETY: as above.
    #[allow(unsafe_code)]
    unsafe {
        avx512::open_each(items, |i, ok| opened.push((i, ok)))
    };
    assert!(opened.iter().all(|&(_, ok)| ok), "{opened:?}");
}
