//! Differential fuzzing of the transport AEAD: for an arbitrary key,
//! counter and message, vine's AVX-512 ChaCha20-Poly1305 must produce
//! exactly ring's ciphertext and tag, open what it sealed, and reject the
//! message with any one byte changed; cut into a batch of messages (runs
//! packed across them), each must match ring's. On a CPU without AVX-512
//! IFMA both keys run ring, and the target checks ring against itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vine_core::wg::aead::{AeadKey, Backend};

fuzz_target!(|data: &[u8]| {
    if data.len() < 42 {
        return;
    }
    let (head, msg) = data.split_at(42);
    let key: [u8; 32] = head[..32].try_into().expect("32 bytes");
    let counter = u64::from_le_bytes(head[32..40].try_into().expect("8 bytes"));
    let flip = u16::from_le_bytes([head[40], head[41]]) as usize;
    let ring = AeadKey::new(&key, Backend::Ring);
    let fast = AeadKey::new(&key, Backend::Avx512);

    let mut a = msg.to_vec();
    let mut b = msg.to_vec();
    let ta = ring.seal(counter, &mut a).expect("ring seals");
    let tb = fast.seal(counter, &mut b).expect("avx512 seals");
    assert_eq!(a, b, "ciphertexts differ");
    assert_eq!(ta, tb, "tags differ");

    // The batch form gives the same bytes.
    let mut slot = msg.to_vec();
    slot.extend_from_slice(&[0; 16]);
    fast.seal_each(std::iter::once((counter, slot.as_mut_slice())));
    assert_eq!(slot[..msg.len()], a[..], "batch ciphertext differs");
    assert_eq!(slot[msg.len()..], ta[..], "batch tag differs");

    let mut opened = slot.clone();
    assert_eq!(fast.open(counter, &mut opened), Ok(msg.len()));
    assert_eq!(&opened[..msg.len()], msg, "open did not restore the message");

    let mut bad = slot.clone();
    let at = flip % bad.len();
    bad[at] ^= 0x01;
    assert!(fast.open(counter, &mut bad.clone()).is_err(), "a changed byte was accepted");
    let mut verdicts = Vec::new();
    fast.open_each(
        [(0usize, counter, bad.as_mut_slice()), (1, counter, slot.as_mut_slice())].into_iter(),
        |i, ok| verdicts.push((i, ok)),
    );
    assert_eq!(verdicts, vec![(0, false), (1, true)], "batch verdicts");

    // The message cut into up to 12 pieces (lengths taken from its own
    // bytes, scaled so pieces span block boundaries), sealed as one batch
    // with consecutive counters: each piece as ring seals it alone; then
    // opened as one batch, the piece `flip` picks damaged.
    let mut pieces = Vec::new();
    let mut rest = msg;
    for i in 0..12 {
        if rest.is_empty() {
            break;
        }
        let want = usize::from(rest[0]) * 13 + i;
        let (p, r) = rest.split_at(want.min(rest.len()));
        pieces.push(p);
        rest = r;
    }
    let mut slots: Vec<Vec<u8>> = pieces
        .iter()
        .map(|p| {
            let mut s = p.to_vec();
            s.extend_from_slice(&[0; 16]);
            s
        })
        .collect();
    fast.seal_each(
        slots
            .iter_mut()
            .enumerate()
            .map(|(i, s)| (counter.wrapping_add(i as u64), s.as_mut_slice())),
    );
    for (i, (p, s)) in pieces.iter().zip(&slots).enumerate() {
        let mut r = p.to_vec();
        let t = ring.seal(counter.wrapping_add(i as u64), &mut r).expect("ring seals");
        assert_eq!(s[..p.len()], r[..], "piece {i}: batch ciphertext differs");
        assert_eq!(s[p.len()..], t[..], "piece {i}: batch tag differs");
    }
    if slots.is_empty() {
        return;
    }
    let damaged = flip % slots.len();
    let at = (flip / 7) % slots[damaged].len();
    slots[damaged][at] ^= 0x80;
    let mut verdicts = Vec::new();
    fast.open_each(
        slots
            .iter_mut()
            .enumerate()
            .map(|(i, s)| (i, counter.wrapping_add(i as u64), s.as_mut_slice())),
        |i, ok| verdicts.push((i, ok)),
    );
    let want: Vec<(usize, bool)> = (0..pieces.len()).map(|i| (i, i != damaged)).collect();
    assert_eq!(verdicts, want, "batch verdicts");
    for (i, (p, s)) in pieces.iter().zip(&slots).enumerate() {
        if i != damaged {
            assert_eq!(&s[..p.len()], *p, "piece {i}: batch open did not restore it");
        }
    }
});
