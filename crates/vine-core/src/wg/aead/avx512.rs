//! ChaCha20-Poly1305 (RFC 8439, empty associated data) for CPUs with
//! AVX-512F/VL/BW and AVX-512 IFMA.
//!
//! ChaCha20 runs 16 blocks at a time with each of the 16 state words in
//! its own 512-bit register (one lane per block), then transposes the
//! result to block order.
//!
//! Poly1305 keeps eight accumulators, one per 64-bit lane, each a number in
//! base 2^44 across three registers, and multiplies them with the 52-bit
//! IFMA instructions. Eight message blocks are added per step and the
//! lanes are multiplied by r^8; the last step multiplies lane `j` by
//! r^(8-j) instead, so the sum of the lanes is the Horner result. The
//! message is front-padded with blocks of zero (without the 2^128 bit),
//! which leave the accumulators at zero, to a multiple of eight blocks.
//!
//! Both are single dependency chains (a double round, a multiply) and the
//! vector units have spare throughput, so the Poly1305 steps run between
//! the double rounds of the next ChaCha run ("stitching"): sealing MACs a
//! run's ciphertext during the next run; opening MACs a run before it
//! decrypts it, one run behind.
//!
//! In a batch the runs are packed: each lane has its own counter and
//! nonce words, so when a message needs fewer than 16 more blocks the
//! rest of its last run computes the next message's first blocks. A
//! 1400-byte packet needs 23 blocks (the Poly1305 key and 22): two runs
//! alone, 1.44 packed.
//!
//! Every function here is compiled for those features and must only be
//! reached through [`super::Aead`], which checks the CPU once.

#![allow(unsafe_code)] // SIMD loads and stores on bounds-checked slices

use std::arch::x86_64::*;

mod poly1305;

use poly1305::Poly;
#[cfg(test)]
pub(super) use poly1305::poly1305_aead;

// ---------------------------------------------------------------- ChaCha20

/// The ChaCha20 input words for block counter 0: constants, key, counter,
/// nonce.
#[derive(Clone, Copy)]
pub(super) struct ChaChaState {
    words: [u32; 16],
}

impl ChaChaState {
    pub(super) fn new(key: &[u8; 32], nonce: &[u8; 12]) -> Self {
        let mut words = [0u32; 16];
        words[0] = 0x6170_7865;
        words[1] = 0x3320_646e;
        words[2] = 0x7962_2d32;
        words[3] = 0x6b20_6574;
        for (w, chunk) in words[4..12].iter_mut().zip(key.chunks_exact(4)) {
            *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        for (w, chunk) in words[13..16].iter_mut().zip(nonce.chunks_exact(4)) {
            *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Self { words }
    }

    /// Whether `other` has the same key (and constants): then one ChaCha
    /// run may compute blocks of both nonces.
    fn same_key(&self, other: &Self) -> bool {
        self.words[..12] == other.words[..12]
    }
}

/// One ChaCha quarter round on four vectors of words, for either width.
macro_rules! quarter {
    ($add:ident, $xor:ident, $rol:ident, $a:expr, $b:expr, $c:expr, $d:expr) => {
        $a = $add($a, $b);
        $d = $rol::<16>($xor($d, $a));
        $c = $add($c, $d);
        $b = $rol::<12>($xor($b, $c));
        $a = $add($a, $b);
        $d = $rol::<8>($xor($d, $a));
        $c = $add($c, $d);
        $b = $rol::<7>($xor($b, $c));
    };
}

/// Twenty rounds on a word-sliced state `x` (x[w] holds word w of every
/// block), running `$between` after each double round, then the
/// feed-forward with the input `s`.
macro_rules! twenty_rounds {
    ($add:ident, $xor:ident, $rol:ident, $x:ident, $s:ident, $between:expr) => {
        for _ in 0..10 {
            quarter!($add, $xor, $rol, $x[0], $x[4], $x[8], $x[12]);
            quarter!($add, $xor, $rol, $x[1], $x[5], $x[9], $x[13]);
            quarter!($add, $xor, $rol, $x[2], $x[6], $x[10], $x[14]);
            quarter!($add, $xor, $rol, $x[3], $x[7], $x[11], $x[15]);
            quarter!($add, $xor, $rol, $x[0], $x[5], $x[10], $x[15]);
            quarter!($add, $xor, $rol, $x[1], $x[6], $x[11], $x[12]);
            quarter!($add, $xor, $rol, $x[2], $x[7], $x[8], $x[13]);
            quarter!($add, $xor, $rol, $x[3], $x[4], $x[9], $x[14]);
            $between;
        }
        for w in 0..16 {
            $x[w] = $add($x[w], $s[w]);
        }
    };
}

/// Keystream of 16 blocks, one register per block, in lane order: lanes
/// below `split` are blocks `first..` of `a`'s nonce, lanes from `split` on
/// blocks `0..` of `b`'s nonce (same key: [`ChaChaState::same_key`]), so
/// one run can finish one message and start the next. `between` runs after
/// each of the ten double rounds: the rounds are one long dependency chain
/// per column, so other latency-bound work placed there (Poly1305 steps)
/// runs in their shadow.
///
/// (An 8-block, 256-bit variant costs as long as this one on the CPUs
/// tried, so every run is 16 blocks.)
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn blocks16<F: FnMut()>(
    a: &ChaChaState,
    first: u32,
    b: &ChaChaState,
    split: u32,
    mut between: F,
) -> [__m512i; 16] {
    let mut s = [_mm512_setzero_si512(); 16];
    for (v, &w) in s.iter_mut().zip(a.words.iter()) {
        *v = _mm512_set1_epi32(w as i32);
    }
    let lanes_b: __mmask16 = if split >= 16 {
        0
    } else {
        (0xffff_u32 << split) as u16
    };
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    s[12] = _mm512_mask_blend_epi32(
        lanes_b,
        _mm512_add_epi32(_mm512_set1_epi32(first as i32), iota),
        _mm512_sub_epi32(iota, _mm512_set1_epi32(split as i32)),
    );
    for (v, &w) in s[13..].iter_mut().zip(&b.words[13..]) {
        *v = _mm512_mask_blend_epi32(lanes_b, *v, _mm512_set1_epi32(w as i32));
    }
    let mut x = s;
    twenty_rounds!(
        _mm512_add_epi32,
        _mm512_xor_si512,
        _mm512_rol_epi32,
        x,
        s,
        between()
    );

    // Transpose 16x16 words: first 4x4 within each 128-bit lane (groups of
    // four words of four blocks), then the 128-bit lanes across registers.
    let mut grp = [[_mm512_setzero_si512(); 4]; 4];
    for g in 0..4 {
        let a0 = _mm512_unpacklo_epi32(x[4 * g], x[4 * g + 1]);
        let a1 = _mm512_unpackhi_epi32(x[4 * g], x[4 * g + 1]);
        let a2 = _mm512_unpacklo_epi32(x[4 * g + 2], x[4 * g + 3]);
        let a3 = _mm512_unpackhi_epi32(x[4 * g + 2], x[4 * g + 3]);
        // grp[g][k], lane l: words 4g..4g+4 of block 4l + k.
        grp[g][0] = _mm512_unpacklo_epi64(a0, a2);
        grp[g][1] = _mm512_unpackhi_epi64(a0, a2);
        grp[g][2] = _mm512_unpacklo_epi64(a1, a3);
        grp[g][3] = _mm512_unpackhi_epi64(a1, a3);
    }
    let mut out = [_mm512_setzero_si512(); 16];
    for k in 0..4 {
        let t0 = _mm512_shuffle_i32x4::<0x44>(grp[0][k], grp[1][k]);
        let t1 = _mm512_shuffle_i32x4::<0xee>(grp[0][k], grp[1][k]);
        let t2 = _mm512_shuffle_i32x4::<0x44>(grp[2][k], grp[3][k]);
        let t3 = _mm512_shuffle_i32x4::<0xee>(grp[2][k], grp[3][k]);
        out[k] = _mm512_shuffle_i32x4::<0x88>(t0, t2);
        out[4 + k] = _mm512_shuffle_i32x4::<0xdd>(t0, t2);
        out[8 + k] = _mm512_shuffle_i32x4::<0x88>(t1, t3);
        out[12 + k] = _mm512_shuffle_i32x4::<0xdd>(t1, t3);
    }
    out
}

/// XORs one 64-byte keystream block into `data` (up to 64 bytes).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn xor64(data: &mut [u8], ks: __m512i) {
    debug_assert!(data.len() <= 64);
    if data.len() == 64 {
        // SAFETY: `data` is exactly 64 bytes; unaligned load and store.
        unsafe {
            let p = data.as_mut_ptr().cast::<__m512i>();
            _mm512_storeu_si512(p, _mm512_xor_si512(_mm512_loadu_si512(p), ks));
        }
    } else {
        let mask: __mmask64 = (1u64 << data.len()) - 1;
        // SAFETY: the mask enables only the first `data.len()` bytes, the
        // only ones the masked load and store touch.
        unsafe {
            let p = data.as_mut_ptr().cast::<i8>();
            let v = _mm512_maskz_loadu_epi8(mask, p);
            _mm512_mask_storeu_epi8(p, mask, _mm512_xor_si512(v, ks));
        }
    }
}

/// Data bytes that keystream blocks below `next` cover (block `i >= 1`
/// covers `data[64(i-1)..64i]`; block 0 is the Poly1305 key).
fn covered(next: usize, len: usize) -> usize {
    (64 * next.saturating_sub(1)).min(len)
}

/// XORs keystream blocks `base..base + ks.len()` into `data` (block 0, the
/// Poly1305 key, is skipped).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn xor_run(base: usize, ks: &[__m512i], data: &mut [u8]) {
    for (i, &k) in ks.iter().enumerate() {
        let index = base + i;
        if index == 0 {
            continue;
        }
        let start = (index - 1) * 64;
        if start >= data.len() {
            break;
        }
        let end = (start + 64).min(data.len());
        xor64(&mut data[start..end], k);
    }
}

/// The Poly1305 key: the first 32 bytes of keystream block 0.
#[inline]
#[target_feature(enable = "avx512f")]
fn poly_key(block0: __m512i) -> [u8; 32] {
    let mut b = [0u8; 64];
    // SAFETY: `b` is 64 bytes.
    unsafe { _mm512_storeu_si512(b.as_mut_ptr().cast(), block0) };
    let mut key = [0u8; 32];
    key.copy_from_slice(&b[..32]);
    key
}

/// Messages in flight in a batch: the one whose MAC is finishing, the one
/// being encrypted and the one a packed run starts. Message `k` of a batch
/// keeps its MAC in slot `k % 3` of a [`Polys`], so the 800-byte states
/// never move.
type Polys = [Option<Poly>; 3];

/// One packed run ([`blocks16`]: `a`'s blocks from `first`, then `b`'s from
/// 0 when `b` is given) with the MAC steps that fit between its rounds:
/// the finishing message's (`prev`: its place in the batch and its
/// ciphertext; all the steps it has left) first, else the current
/// message's (`own`) while `own_ready` allows its next step.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512ifma")]
fn run_with_macs(
    polys: &mut Polys,
    prev: Option<(usize, &[u8])>,
    own: (usize, &[u8]),
    own_ready: impl Fn(&Poly) -> bool,
    (a, first): (&ChaChaState, usize),
    b: Option<(&ChaChaState, usize)>,
) -> [__m512i; 16] {
    let (seq, ct) = own;
    let (mut prev_poly, mut own_poly, prev_ct) = match prev {
        Some((prev_seq, prev_ct)) => match polys.get_disjoint_mut([prev_seq % 3, seq % 3]) {
            Ok([p, o]) => (p.as_mut(), o.as_mut(), prev_ct),
            // Consecutive messages never share a slot; were they to, the
            // steps would simply run after the rounds instead.
            Err(_) => (None, None, prev_ct),
        },
        None => (None, polys[seq % 3].as_mut(), &[][..]),
    };
    let (b_state, split) = b.unwrap_or((a, 16));
    blocks16(a, first as u32, b_state, split as u32, || {
        if let Some(poly) = prev_poly.as_mut()
            && poly.ready(poly.len)
        {
            poly.step(prev_ct);
        } else if let Some(poly) = own_poly.as_mut()
            && own_ready(poly)
        {
            poly.step(ct);
        }
    })
}

/// A message being sealed: its keystream blocks below `next` are applied.
struct Sealing<'a> {
    /// Its place in the batch (its MAC is in slot `seq % 3`).
    seq: usize,
    state: ChaChaState,
    data: &'a mut [u8],
    tag: &'a mut [u8; 16],
    next: usize,
    /// Keystream blocks it needs: the Poly1305 key, then one per 64 bytes.
    total: usize,
}

/// A message whose ciphertext is complete and whose MAC is finishing.
struct Sealed<'a> {
    seq: usize,
    ct: &'a [u8],
    tag: &'a mut [u8; 16],
}

/// `a`'s ciphertext is complete: it becomes the pending message, whose MAC
/// steps run during the next run, after the previous one's tag is done.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512ifma")]
fn retire<'a>(polys: &mut Polys, pending: &mut Option<Sealed<'a>>, a: Sealing<'a>) {
    if let Some(p) = pending.take() {
        finish_seal(polys, p);
    }
    *pending = Some(Sealed {
        seq: a.seq,
        ct: a.data,
        tag: a.tag,
    });
}

#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512ifma")]
fn finish_seal(polys: &mut Polys, p: Sealed<'_>) {
    if let Some(poly) = polys[p.seq % 3].as_mut() {
        *p.tag = poly.finish(p.ct);
    }
}

/// Seals messages in place: each item is a nonce's state, the message and
/// where its tag goes. The keystream runs are packed: when a message needs
/// fewer than 16 more blocks, the rest of its last run computes the next
/// message's first blocks (same key). The MAC of each run's ciphertext
/// runs during the next run's rounds, a finished message's last MAC steps
/// first (one message is simply a batch of one).
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512ifma")]
pub(super) fn seal_each<'a>(
    items: impl Iterator<Item = (ChaChaState, &'a mut [u8], &'a mut [u8; 16])>,
) {
    let mut items = items.enumerate().map(|(seq, (state, data, tag))| Sealing {
        seq,
        state,
        total: 1 + data.len().div_ceil(64),
        data,
        tag,
        next: 0,
    });
    let mut polys: Polys = [None, None, None];
    let mut pending: Option<Sealed<'a>> = None;
    let mut ahead: Option<Sealing<'a>> = None;
    let mut cur = items.next();
    while let Some(mut a) = cur.take() {
        if a.next == a.total {
            retire(&mut polys, &mut pending, a);
            cur = ahead.take().or_else(|| items.next());
            continue;
        }
        let a_n = (a.total - a.next).min(16);
        let mut b = None;
        if a_n < 16 {
            match ahead.take().or_else(|| items.next()) {
                Some(n) if n.state.same_key(&a.state) => b = Some(n),
                other => ahead = other,
            }
        }
        let avail = covered(a.next, a.data.len());
        let ks = run_with_macs(
            &mut polys,
            pending.as_ref().map(|p| (p.seq, p.ct)),
            (a.seq, a.data),
            |poly| poly.ready(avail),
            (&a.state, a.next),
            b.as_ref().map(|b| (&b.state, a_n)),
        );
        if a.next == 0 {
            polys[a.seq % 3] = Some(Poly::new(&poly_key(ks[0]), a.data.len()));
        }
        xor_run(a.next, &ks[..a_n], a.data);
        a.next += a_n;
        if let Some(mut b) = b {
            let b_n = (16 - a_n).min(b.total);
            // `a` had fewer than 16 blocks left: it is complete. Its
            // predecessor's tag is done before `b`'s MAC takes that slot.
            retire(&mut polys, &mut pending, a);
            polys[b.seq % 3] = Some(Poly::new(&poly_key(ks[a_n]), b.data.len()));
            xor_run(0, &ks[a_n..a_n + b_n], b.data);
            b.next = b_n;
            cur = Some(b);
            continue;
        }
        cur = Some(a);
    }
    if let Some(p) = pending {
        finish_seal(&mut polys, p);
    }
}

/// A message whose MAC and last decryption are still to run.
/// A message being opened. Keystream blocks below `next` are computed;
/// those from `held.base` on are kept (lanes `held.lanes` of the last run)
/// until the MAC has read their ciphertext, the earlier ones are applied.
struct Opening<'a> {
    /// Its place in the batch (its MAC is in slot `seq % 3`).
    seq: usize,
    index: usize,
    state: ChaChaState,
    data: &'a mut [u8],
    tag: &'a [u8],
    next: usize,
    /// Keystream blocks it needs: the Poly1305 key, then one per 64 bytes.
    total: usize,
    held: Held,
}

/// Which lanes of the last run are a message's blocks `base..`.
#[derive(Clone, Copy, Default)]
struct Held {
    base: usize,
    lanes: (usize, usize),
}

/// An item of [`open_each`]: a message, or one too short to hold a tag.
enum ToOpen<'a> {
    Message(Opening<'a>),
    Short(usize),
}

impl<'a> ToOpen<'a> {
    fn new(seq: usize, (index, state, payload): (usize, ChaChaState, &'a mut [u8])) -> Self {
        if payload.len() < 16 {
            return Self::Short(index);
        }
        let (data, tag) = payload.split_at_mut(payload.len() - 16);
        let total = 1 + data.len().div_ceil(64);
        Self::Message(Opening {
            seq,
            index,
            state,
            data,
            tag,
            next: 0,
            total,
            held: Held::default(),
        })
    }
}

/// Finishes a message whose keystream is all computed: the MAC steps left,
/// the tag check, then the held keystream (lanes of `last`). `(index,
/// authentic)`.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512ifma")]
fn finish_open(polys: &mut Polys, m: Opening<'_>, last: &[__m512i; 16]) -> (usize, bool) {
    let Some(poly) = polys[m.seq % 3].as_mut() else {
        return (m.index, false);
    };
    let expect = poly.finish(m.data);
    if !crate::wg::crypto::ct_eq(&expect, m.tag) {
        return (m.index, false);
    }
    let (lo, hi) = m.held.lanes;
    xor_run(m.held.base, &last[lo..hi], m.data);
    (m.index, true)
}

/// Opens messages in place: each item is an index for `done`, a nonce's
/// state and `ciphertext ‖ tag`. The keystream runs are packed as when
/// sealing ([`seal_each`]). Each run's ciphertext is MACed during the
/// next run's rounds and decrypted after that, one run behind, so no byte
/// is decrypted before the MAC read it; a message whose keystream is
/// complete has its last MAC steps run first in the next run, then its
/// tag checked and its last blocks decrypted (one message is simply a
/// batch of one). `done(index, authentic)` is called once per item, in
/// order; a rejected item's bytes are unspecified.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512ifma")]
pub(super) fn open_each<'a>(
    items: impl Iterator<Item = (usize, ChaChaState, &'a mut [u8])>,
    mut done: impl FnMut(usize, bool),
) {
    let mut items = items.enumerate().map(|(seq, item)| ToOpen::new(seq, item));
    let mut polys: Polys = [None, None, None];
    // The keystream of the last run, whose lanes `held` ranges point at.
    let mut last = [_mm512_setzero_si512(); 16];
    let mut pending: Option<Opening<'a>> = None;
    let mut ahead: Option<ToOpen<'a>> = None;
    let mut cur = items.next();
    while let Some(item) = cur.take() {
        let mut a = match item {
            ToOpen::Short(index) => {
                if let Some(p) = pending.take() {
                    let (i, ok) = finish_open(&mut polys, p, &last);
                    done(i, ok);
                }
                done(index, false);
                cur = ahead.take().or_else(|| items.next());
                continue;
            }
            ToOpen::Message(a) => a,
        };
        if a.next == a.total {
            if let Some(p) = pending.take() {
                let (i, ok) = finish_open(&mut polys, p, &last);
                done(i, ok);
            }
            pending = Some(a);
            cur = ahead.take().or_else(|| items.next());
            continue;
        }
        let a_n = (a.total - a.next).min(16);
        let mut b = None;
        if a_n < 16 {
            match ahead.take().or_else(|| items.next()) {
                Some(ToOpen::Message(n)) if n.state.same_key(&a.state) => b = Some(n),
                other => ahead = other,
            }
        }
        // a's ciphertext below `limit` has its keystream computed: the MAC
        // must read it before it is decrypted after this run.
        let limit = covered(a.next, a.data.len());
        let ks = run_with_macs(
            &mut polys,
            pending.as_ref().map(|p| (p.seq, &*p.data)),
            (a.seq, a.data),
            |poly| poly.starts_before(limit),
            (&a.state, a.next),
            b.as_ref().map(|b| (&b.state, a_n)),
        );
        if let Some(p) = pending.take() {
            let (i, ok) = finish_open(&mut polys, p, &last);
            done(i, ok);
        }
        if a.next == 0 {
            polys[a.seq % 3] = Some(Poly::new(&poly_key(ks[0]), a.data.len()));
        } else if let Some(poly) = polys[a.seq % 3].as_mut() {
            while poly.starts_before(limit) {
                poly.step(a.data);
            }
            let (lo, hi) = a.held.lanes;
            xor_run(a.held.base, &last[lo..hi], a.data);
        }
        a.held = Held {
            base: a.next,
            lanes: (0, a_n),
        };
        a.next += a_n;
        last = ks;
        if let Some(mut b) = b {
            let b_n = (16 - a_n).min(b.total);
            polys[b.seq % 3] = Some(Poly::new(&poly_key(ks[a_n]), b.data.len()));
            b.held = Held {
                base: 0,
                lanes: (a_n, a_n + b_n),
            };
            b.next = b_n;
            // `a` had fewer than 16 blocks left: it is complete.
            pending = Some(a);
            cur = Some(ToOpen::Message(b));
            continue;
        }
        if a.next == a.total {
            pending = Some(a);
            cur = ahead.take().or_else(|| items.next());
        } else {
            cur = Some(ToOpen::Message(a));
        }
    }
    if let Some(p) = pending {
        let (i, ok) = finish_open(&mut polys, p, &last);
        done(i, ok);
    }
}

#[cfg(test)]
pub(super) mod tests_support {
    //! Scalar pieces exposed to the tests.
    pub(crate) fn reduce_final(h: [u64; 3]) -> u128 {
        super::poly1305::reduce_final(h)
    }
}
