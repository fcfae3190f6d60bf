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

/// Mask of a 44-bit limb.
const M44: u64 = (1 << 44) - 1;
/// Mask of the top (42-bit) limb: limbs sit at bits 0, 44 and 88 of 130.
const M42: u64 = (1 << 42) - 1;

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

// ---------------------------------------------------------------- Poly1305

/// A number mod 2^130 - 5 in base 2^44 (limbs may exceed 44 bits a little
/// between reductions).
type Limbs = [u64; 3];

/// Reduces fully mod 2^130 - 5 and returns the low 128 bits.
fn reduce_final(h: Limbs) -> u128 {
    let [mut h0, mut h1, mut h2] = h;
    for _ in 0..2 {
        h1 += h0 >> 44;
        h0 &= M44;
        h2 += h1 >> 44;
        h1 &= M44;
        h0 += (h2 >> 42) * 5;
        h2 &= M42;
    }
    h1 += h0 >> 44;
    h0 &= M44;
    h2 += h1 >> 44;
    h1 &= M44;
    // Now h < 2^130 + small; subtract p if h >= p, without branching.
    let mut g0 = h0 + 5;
    let mut g1 = h1 + (g0 >> 44);
    g0 &= M44;
    let mut g2 = h2 + (g1 >> 44);
    g1 &= M44;
    let take_g = 0u64.wrapping_sub(g2 >> 42); // all ones when h + 5 >= 2^130
    g2 &= M42;
    let sel = |g: u64, h: u64| (g & take_g) | (h & !take_g);
    let (h0, h1, h2) = (sel(g0, h0), sel(g1, h1), sel(g2, h2 & M42));
    u128::from(h0) | (u128::from(h1) << 44) | (u128::from(h2) << 88)
}

/// Eight lanes of accumulators or multipliers in base 2^44.
#[derive(Clone, Copy)]
struct Vec8 {
    l0: __m512i,
    l1: __m512i,
    l2: __m512i,
}

/// A multiplier with its reduction helpers (20 times limbs 1 and 2).
#[derive(Clone, Copy)]
struct Mult {
    r: Vec8,
    s1: __m512i,
    s2: __m512i,
}

/// `r` as a multiplier (with 20 times its limbs 1 and 2). Limbs below
/// 2^46, as [`mul_vec`] leaves them.
#[inline]
#[target_feature(enable = "avx512f")]
fn mult_of(r: Vec8) -> Mult {
    Mult {
        r,
        s1: times20(r.l1),
        s2: times20(r.l2),
    }
}

/// `20 * v` per lane (16v + 4v).
#[inline]
#[target_feature(enable = "avx512f")]
fn times20(v: __m512i) -> __m512i {
    _mm512_add_epi64(_mm512_slli_epi64::<4>(v), _mm512_slli_epi64::<2>(v))
}

/// One column of a product, `a[0] b[0] + a[1] b[1] + a[2] b[2]` per lane,
/// as the sums of the low and of the high 52-bit halves of the products.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn column(a: [__m512i; 3], b: [__m512i; 3]) -> (__m512i, __m512i) {
    let z = _mm512_setzero_si512();
    // Two independent chains per half, so the multiplies overlap.
    let lo = _mm512_add_epi64(
        _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(z, a[0], b[0]), a[1], b[1]),
        _mm512_madd52lo_epu64(z, a[2], b[2]),
    );
    let hi = _mm512_add_epi64(
        _mm512_madd52hi_epu64(_mm512_madd52hi_epu64(z, a[0], b[0]), a[1], b[1]),
        _mm512_madd52hi_epu64(z, a[2], b[2]),
    );
    (lo, hi)
}

/// `h * m` lane by lane, mod 2^130 - 5, limbs below 2^45 afterwards.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul_vec(h: Vec8, m: &Mult) -> Vec8 {
    let h = [h.l0, h.l1, h.l2];
    let (r0, r1, r2, s1, s2) = (m.r.l0, m.r.l1, m.r.l2, m.s1, m.s2);
    let (d0lo, d0hi) = column(h, [r0, s2, s1]);
    let (d1lo, d1hi) = column(h, [r1, r0, s2]);
    let (d2lo, d2hi) = column(h, [r2, r1, r0]);
    // A high half sits 52 bits up: 8 bits above the next limb.
    let m44 = _mm512_set1_epi64(M44 as i64);
    let m42 = _mm512_set1_epi64(M42 as i64);
    let t1 = _mm512_add_epi64(
        _mm512_add_epi64(d1lo, _mm512_slli_epi64::<8>(d0hi)),
        _mm512_srli_epi64::<44>(d0lo),
    );
    let t2 = _mm512_add_epi64(
        _mm512_add_epi64(d2lo, _mm512_slli_epi64::<8>(d1hi)),
        _mm512_srli_epi64::<44>(t1),
    );
    // What reaches 2^130 and above folds back times 5: t2's bits from 42,
    // and d2hi (at 2^140, that is 2^10 above 2^130).
    let c = _mm512_add_epi64(_mm512_srli_epi64::<42>(t2), _mm512_slli_epi64::<10>(d2hi));
    let c5 = _mm512_add_epi64(c, _mm512_slli_epi64::<2>(c));
    let h0 = _mm512_add_epi64(_mm512_and_si512(d0lo, m44), c5);
    let h1 = _mm512_add_epi64(_mm512_and_si512(t1, m44), _mm512_srli_epi64::<44>(h0));
    Vec8 {
        l0: _mm512_and_si512(h0, m44),
        l1: h1,
        l2: _mm512_and_si512(t2, m42),
    }
}

/// Splits eight 16-byte blocks, given as their low and high 64-bit halves
/// per lane, into lane limbs; `hibit` is the 2^128 bit per lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn limbs(lo: __m512i, hi: __m512i, hibit: __mmask8) -> Vec8 {
    let m44 = _mm512_set1_epi64(M44 as i64);
    let l0 = _mm512_and_si512(lo, m44);
    let l1 = _mm512_and_si512(
        _mm512_or_si512(_mm512_srli_epi64::<44>(lo), _mm512_slli_epi64::<20>(hi)),
        m44,
    );
    let top = _mm512_maskz_mov_epi64(hibit, _mm512_set1_epi64(1 << 40));
    let l2 = _mm512_or_si512(_mm512_srli_epi64::<24>(hi), top);
    Vec8 { l0, l1, l2 }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn add_vec(a: Vec8, b: Vec8) -> Vec8 {
    Vec8 {
        l0: _mm512_add_epi64(a.l0, b.l0),
        l1: _mm512_add_epi64(a.l1, b.l1),
        l2: _mm512_add_epi64(a.l2, b.l2),
    }
}

/// Poly1305 over the AEAD layout of a `len`-byte ciphertext with no
/// associated data (ciphertext zero-padded to 16 bytes, then the two
/// lengths), eight blocks per [`Poly::step`]. Steps may run while later
/// parts of the ciphertext do not exist yet ([`Poly::ready`]).
struct Poly {
    h: Vec8,
    r8: Mult,
    rlast: Mult,
    s: u128,
    /// Blocks of zero in front, to make the count a multiple of eight.
    pad: usize,
    groups: usize,
    next: usize,
    len: usize,
}

impl Poly {
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn new(key: &[u8; 32], len: usize) -> Self {
        let le = |b: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            u64::from_le_bytes(w)
        };
        let (k0, k1) = (le(&key[0..8]), le(&key[8..16]));
        let r_lo = k0 & 0x0fff_fffc_0fff_ffff;
        let r_hi = k1 & 0x0fff_fffc_0fff_fffc;
        let r: Limbs = [r_lo & M44, ((r_lo >> 44) | (r_hi << 20)) & M44, r_hi >> 24];
        let s = u128::from(le(&key[16..24])) | (u128::from(le(&key[24..32])) << 64);

        // The powers r^1..r^8 in three lane-wise multiplies: r^2; then
        // [r^2 r^2 1 1] x [r^2 r r^2 r] = [r^4 r^3 r^2 r] (in both halves);
        // then [r^4 r^4 r^4 r^4 1 1 1 1] times that = r^(8-j) in lane j,
        // the last step's multiplier. Lane 0 of it, r^8, every other step's.
        let one = Vec8 {
            l0: _mm512_set1_epi64(1),
            l1: _mm512_setzero_si512(),
            l2: _mm512_setzero_si512(),
        };
        let r1 = mult_of(Vec8 {
            l0: _mm512_set1_epi64(r[0] as i64),
            l1: _mm512_set1_epi64(r[1] as i64),
            l2: _mm512_set1_epi64(r[2] as i64),
        });
        let r2 = mul_vec(r1.r, &r1);
        let pick = |mask: __mmask8, a: Vec8, b: Vec8| Vec8 {
            l0: _mm512_mask_blend_epi64(mask, a.l0, b.l0),
            l1: _mm512_mask_blend_epi64(mask, a.l1, b.l1),
            l2: _mm512_mask_blend_epi64(mask, a.l2, b.l2),
        };
        let r4321 = mul_vec(pick(0x33, one, r2), &mult_of(pick(0x55, r1.r, r2)));
        let lane0 = _mm512_setzero_si512();
        let r4 = Vec8 {
            l0: _mm512_permutexvar_epi64(lane0, r4321.l0),
            l1: _mm512_permutexvar_epi64(lane0, r4321.l1),
            l2: _mm512_permutexvar_epi64(lane0, r4321.l2),
        };
        let last = mul_vec(r4321, &mult_of(pick(0x0f, one, r4)));
        let r8 = Vec8 {
            l0: _mm512_permutexvar_epi64(lane0, last.l0),
            l1: _mm512_permutexvar_epi64(lane0, last.l1),
            l2: _mm512_permutexvar_epi64(lane0, last.l2),
        };

        let n = len.div_ceil(16) + 1; // the lengths block
        let pad = (8 - n % 8) % 8;
        let zero = _mm512_setzero_si512();
        Self {
            h: Vec8 {
                l0: zero,
                l1: zero,
                l2: zero,
            },
            r8: mult_of(r8),
            rlast: mult_of(last),
            s,
            pad,
            groups: (n + pad) / 8,
            next: 0,
            len,
        }
    }

    /// Byte offset in the ciphertext of the next step's first block
    /// (negative inside the front padding).
    fn next_offset(&self) -> isize {
        ((8 * self.next) as isize - self.pad as isize) * 16
    }

    /// Whether a step remains whose blocks start before byte `limit`.
    fn starts_before(&self, limit: usize) -> bool {
        self.next < self.groups && self.next_offset() < limit as isize
    }

    /// Whether the next step reads only `ciphertext[..avail]` (the last
    /// step, which holds the lengths block, needs all of it).
    fn ready(&self, avail: usize) -> bool {
        let end = ((self.next_offset() + 128).max(0) as usize).min(self.len);
        self.next < self.groups && end <= avail
    }

    /// Adds the next eight blocks and multiplies: by r^8, or for the last
    /// step lane j by r^(8-j). `ct` is the whole ciphertext; only the part
    /// [`Poly::ready`] names is used. No copies and no branches on the
    /// data: byte-masked loads stop at the end of the ciphertext (that is
    /// the zero padding), the first step's lanes are shifted past the front
    /// padding, and the lengths block is blended into the last lane of the
    /// last step. Small, so it inlines into the ChaCha rounds (a call there
    /// would spill all 32 vector registers: the ABI saves none).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
    fn step(&mut self, ct: &[u8]) {
        assert!(
            ct.len() == self.len,
            "Poly::step: ciphertext of another length"
        );
        let first = self.next_offset();
        let shift = if first < 0 { (-first / 16) as u32 } else { 0 };
        let o = first.max(0) as usize;
        let avail = self.len.saturating_sub(o);
        let byte_mask = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        let base = ct.as_ptr();
        // SAFETY: the masks enable only bytes below `ct.len()`; a masked
        // load touches no other byte (and faults on none), and the pointers
        // are formed with wrapping arithmetic, so out-of-range addresses
        // are never dereferenced.
        let (x, y) = unsafe {
            (
                _mm512_maskz_loadu_epi8(byte_mask(avail), base.wrapping_add(o).cast()),
                _mm512_maskz_loadu_epi8(
                    byte_mask(avail.saturating_sub(64)),
                    base.wrapping_add(o + 64).cast(),
                ),
            )
        };
        // Lane j takes block j - shift of the window (lanes below `shift`
        // are the front padding: zero, no 2^128 bit).
        let real: __mmask8 = 0xffu8 << shift;
        let sh = _mm512_set1_epi64(2 * i64::from(shift));
        let even = _mm512_sub_epi64(_mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), sh);
        let odd = _mm512_sub_epi64(_mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), sh);
        let mut lo = _mm512_maskz_permutex2var_epi64(real, x, even, y);
        let mut hi = _mm512_maskz_permutex2var_epi64(real, x, odd, y);
        self.next += 1;
        let last = self.next == self.groups;
        if last {
            // The lengths block: 0 (no associated data), then `len`.
            lo = _mm512_mask_mov_epi64(lo, 0x80, _mm512_setzero_si512());
            hi = _mm512_mask_mov_epi64(hi, 0x80, _mm512_set1_epi64(self.len as i64));
        }
        let m = limbs(lo, hi, real);
        let mult = if last { &self.rlast } else { &self.r8 };
        self.h = mul_vec(add_vec(self.h, m), mult);
    }

    /// Runs the remaining steps and returns the tag.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
    fn finish(&mut self, ct: &[u8]) -> [u8; 16] {
        while self.next < self.groups {
            self.step(ct);
        }
        let sum = [
            _mm512_reduce_add_epi64(self.h.l0) as u64,
            _mm512_reduce_add_epi64(self.h.l1) as u64,
            _mm512_reduce_add_epi64(self.h.l2) as u64,
        ];
        reduce_final(sum).wrapping_add(self.s).to_le_bytes()
    }
}

/// The Poly1305 tag of the AEAD input for `ciphertext` with no associated
/// data, in one go (the tests compare it with the `poly1305` crate).
#[cfg(test)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
pub(super) fn poly1305_aead(key: &[u8; 32], ciphertext: &[u8]) -> [u8; 16] {
    Poly::new(key, ciphertext.len()).finish(ciphertext)
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
    if !super::ct_eq(&expect, m.tag) {
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
    pub(in super::super) fn reduce_final(h: [u64; 3]) -> u128 {
        super::reduce_final(h)
    }
}
