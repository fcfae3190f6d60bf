//! Targets on vine's WireGuard-protocol code: the transport AEAD against
//! ring, and the handshake receive path with valid MACs.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use blake2::digest::consts::U16;
use blake2::digest::{FixedOutput, KeyInit, Update};
use blake2::{Blake2s256, Blake2sMac};
use vine_core::Identity;
use vine_core::wg::aead::{AeadKey, Backend};
use vine_core::wg::{Received, Wg, WgError};

use crate::input::Input;

/// One monotonic instant per process that every `wg_decrypt` run starts at.
static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The responder's and the peer's identities, derived once per process.
static WG_IDENTITIES: LazyLock<[Identity; 2]> =
    LazyLock::new(|| [Identity::from_seed([1; 32]), Identity::from_seed([2; 32])]);

/// The wall clock at [`BASE`] (for handshake timestamps).
const WALL: Duration = Duration::from_secs(1_800_000_000);

/// `aead_diff`: differential fuzzing of the transport AEAD: for an
/// arbitrary key, counter and message, vine's AVX-512 ChaCha20-Poly1305
/// must produce exactly ring's ciphertext and tag, open what it sealed,
/// and reject the message with any one byte changed; cut into a batch of
/// messages (runs packed across them), each must match ring's. On a CPU
/// without AVX-512 IFMA both keys run ring, and the target checks ring
/// against itself.
pub fn aead_diff(data: &[u8]) {
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
    assert_eq!(
        &opened[..msg.len()],
        msg,
        "open did not restore the message"
    );

    let mut bad = slot.clone();
    let at = flip % bad.len();
    bad[at] ^= 0x01;
    assert!(
        fast.open(counter, &mut bad.clone()).is_err(),
        "a changed byte was accepted"
    );
    let mut verdicts = Vec::new();
    fast.open_each(
        [
            (0usize, counter, bad.as_mut_slice()),
            (1, counter, slot.as_mut_slice()),
        ]
        .into_iter(),
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
        let t = ring
            .seal(counter.wrapping_add(i as u64), &mut r)
            .expect("ring seals");
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
            assert_eq!(
                &s[..p.len()],
                *p,
                "piece {i}: batch open did not restore it"
            );
        }
    }
}

/// Length of a handshake initiation, and where its mac1 starts.
const INITIATION: (usize, usize) = (148, 116);
/// Length of a handshake response, and where its mac1 starts.
const RESPONSE: (usize, usize) = (92, 60);

/// mac1's key for messages to the holder of `public`:
/// `HASH("mac1----" ‖ public)`.
fn mac1_key(public: &[u8; 32]) -> [u8; 32] {
    let mut h = Blake2s256::default();
    Update::update(&mut h, b"mac1----");
    Update::update(&mut h, public);
    h.finalize_fixed().into()
}

/// Rewrites the MACs of a handshake message (by its length) for the
/// receiver whose mac1 key is `key`: a valid mac1, and mac2 zero or (when
/// `mac2` is set) those bytes, which a node not under load refuses.
fn fix_macs(msg: &mut [u8], key: &[u8; 32], mac2: Option<[u8; 16]>) {
    let Some(at) = [INITIATION, RESPONSE]
        .into_iter()
        .find(|(len, _)| *len == msg.len())
        .map(|(_, at)| at)
    else {
        return;
    };
    let mut mac =
        <Blake2sMac<U16> as KeyInit>::new_from_slice(key).expect("BLAKE2s takes 32-byte keys");
    Update::update(&mut mac, &msg[..at]);
    let mac1: [u8; 16] = mac.finalize_fixed().into();
    msg[at..at + 16].copy_from_slice(&mac1);
    msg[at + 16..at + 32].copy_from_slice(&mac2.unwrap_or([0; 16]));
}

/// Changes the bytes of `msg` the input picks: a count, then (position,
/// xor) pairs.
fn mutate(msg: &mut [u8], input: &mut Input<'_>) {
    if msg.is_empty() {
        return;
    }
    for _ in 0..input.u8() % 8 {
        let at = usize::from(input.u8()) % msg.len();
        msg[at] ^= input.u8();
    }
}

/// Most operations one `wg_decrypt` input runs.
pub const WG_MAX_OPS: usize = 32;

/// `wg_decrypt`: the WireGuard-protocol receive path of a responder that
/// knows one peer, reached past mac1.
///
/// The input is a program of up to [`WG_MAX_OPS`] operations (low three
/// bits of an opcode byte; bit 3 asks for a non-zero mac2, which a node
/// not under load refuses): 0, a raw chunk whose mac1 is made valid when
/// it has a handshake message's length; 1, a real initiation from the
/// peer with input-chosen bytes changed and mac1 recomputed (the response
/// goes back to the peer, which completes and sends a keepalive); 2, the
/// responder initiates and the peer's response comes back changed, mac1
/// recomputed; 3, a transport message sealed by the peer (a chunk),
/// changed; 4, the other direction; 5, the clock moves (u16 of
/// milliseconds, times 16 with bit 3) and both sides run their timers;
/// 6, one of the last datagrams again (a replay); 7, a raw chunk as is.
/// Never panics; an initiation from the peer left unchanged is answered
/// unless it came within the initiation rate limit.
pub fn wg_decrypt(data: &[u8]) {
    let [local_id, peer_id] = &*WG_IDENTITIES;
    let mut local = Wg::new(local_id.x25519_secret().clone(), [3; 32]);
    local.add_peer(peer_id.peer_id());
    let mut peer = Wg::new(peer_id.x25519_secret().clone(), [4; 32]);
    peer.add_peer(local_id.peer_id());
    let to_local = mac1_key(local_id.peer_id().public_key());
    let to_peer = mac1_key(peer_id.peer_id().public_key());
    let base = *BASE;
    let mut now = base;
    let wall = |now: Instant| WALL + now.duration_since(base);
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut out = Vec::new();
    let mut input = Input::new(data);
    for _ in 0..WG_MAX_OPS {
        let Some(op) = input.next_byte() else {
            break;
        };
        let mac2 = (op & 8 != 0).then(|| {
            let mut m = [0u8; 16];
            m[0] = 1 | input.u8();
            m
        });
        let to_local_datagram: Option<Vec<u8>> = match op & 7 {
            0 => {
                let mut d = input.chunk().to_vec();
                fix_macs(&mut d, &to_local, mac2);
                Some(d)
            }
            1 => {
                let Ok(mut init) = peer.initiate(now, wall(now), &local_id.peer_id()) else {
                    continue;
                };
                let pristine = init.clone();
                mutate(&mut init, &mut input);
                fix_macs(&mut init, &to_local, mac2);
                let got = local.decrypt(now, wall(now), &init, &mut out);
                if init == pristine {
                    assert!(
                        matches!(
                            got,
                            Ok(Received::HandshakeInitiation { .. })
                                | Err(WgError::InitiationFlood)
                        ),
                        "an unchanged initiation was refused: {got:?}"
                    );
                }
                if let Ok(Received::HandshakeInitiation { response, .. }) = got
                    && let Ok(Received::HandshakeComplete { .. }) =
                        peer.decrypt(now, wall(now), &response, &mut out)
                {
                    let mut keepalive = Vec::new();
                    if peer
                        .encrypt(now, &local_id.peer_id(), &[], &mut keepalive)
                        .is_ok()
                    {
                        let _ = local.decrypt(now, wall(now), &keepalive, &mut out);
                    }
                }
                sent.push(init);
                None
            }
            2 => {
                let Ok(mut init) = local.initiate(now, wall(now), &peer_id.peer_id()) else {
                    continue;
                };
                fix_macs(&mut init, &to_peer, None);
                match peer.decrypt(now, wall(now), &init, &mut out) {
                    Ok(Received::HandshakeInitiation { mut response, .. }) => {
                        mutate(&mut response, &mut input);
                        fix_macs(&mut response, &to_local, mac2);
                        Some(response)
                    }
                    _ => None,
                }
            }
            3 => {
                let mut d = Vec::new();
                match peer.encrypt(now, &local_id.peer_id(), input.chunk(), &mut d) {
                    Ok(()) => {
                        mutate(&mut d, &mut input);
                        Some(d)
                    }
                    Err(_) => None,
                }
            }
            4 => {
                let mut d = Vec::new();
                if local
                    .encrypt(now, &peer_id.peer_id(), input.chunk(), &mut d)
                    .is_ok()
                {
                    let _ = peer.decrypt(now, wall(now), &d, &mut out);
                }
                None
            }
            5 => {
                let ms = u64::from(input.u16()) * if op & 8 != 0 { 16 } else { 1 };
                now += Duration::from_millis(ms);
                let _ = local.handle_timeout(now);
                let _ = peer.handle_timeout(now);
                let _ = (local.poll_timeout(), peer.poll_timeout());
                None
            }
            6 => {
                let pick = usize::from(input.u8());
                sent.get(pick % sent.len().max(1)).cloned()
            }
            _ => Some(input.chunk().to_vec()),
        };
        if let Some(d) = to_local_datagram {
            if let Err(e) = local.decrypt(now, wall(now), &d, &mut out) {
                let _ = e.to_string();
            }
            sent.push(d);
        }
        if sent.len() > 8 {
            sent.remove(0);
        }
        let _ = local.take_changed();
        let _ = local.session_ready(&peer_id.peer_id(), now);
    }
}
