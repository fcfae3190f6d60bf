//! ChaCha20-Poly1305 (RFC 8439, empty associated data) for CPUs with
//! AVX-512F/VL/BW and AVX-512 IFMA.
//!
//! ChaCha20 runs 16 blocks at a time with each of the 16 state words in
//! its own 512-bit register (one lane per block), then transposes the
//! result to block order; a last run of eight or fewer blocks uses the
//! 256-bit form, so a 1,408-byte packet (23 blocks counting the Poly1305
//! key block) costs 24 block computations, not 32.
//!
//! Poly1305 keeps eight accumulators, one per 64-bit lane, each a number in
//! base 2^44 across three registers, and multiplies them with the 52-bit
//! IFMA instructions. Eight message blocks are added per step and the
//! lanes are multiplied by r^8; the last step multiplies lane `j` by
//! r^(8-j) instead, so the sum of the lanes is the Horner result. The
//! message is front-padded with blocks of zero (without the 2^128 bit),
//! which leave the accumulators at zero, to a multiple of eight blocks.
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
/// block), then the feed-forward with the input `s`.
macro_rules! twenty_rounds {
    ($add:ident, $xor:ident, $rol:ident, $x:ident, $s:ident) => {
        for _ in 0..10 {
            quarter!($add, $xor, $rol, $x[0], $x[4], $x[8], $x[12]);
            quarter!($add, $xor, $rol, $x[1], $x[5], $x[9], $x[13]);
            quarter!($add, $xor, $rol, $x[2], $x[6], $x[10], $x[14]);
            quarter!($add, $xor, $rol, $x[3], $x[7], $x[11], $x[15]);
            quarter!($add, $xor, $rol, $x[0], $x[5], $x[10], $x[15]);
            quarter!($add, $xor, $rol, $x[1], $x[6], $x[11], $x[12]);
            quarter!($add, $xor, $rol, $x[2], $x[7], $x[8], $x[13]);
            quarter!($add, $xor, $rol, $x[3], $x[4], $x[9], $x[14]);
        }
        for w in 0..16 {
            $x[w] = $add($x[w], $s[w]);
        }
    };
}

/// Keystream of the 16 blocks `counter..counter + 16`, one register per
/// block, in block order.
#[target_feature(enable = "avx512f")]
fn blocks16(state: &ChaChaState, counter: u32) -> [__m512i; 16] {
    let mut s = [_mm512_setzero_si512(); 16];
    for (v, &w) in s.iter_mut().zip(state.words.iter()) {
        *v = _mm512_set1_epi32(w as i32);
    }
    s[12] = _mm512_add_epi32(
        _mm512_set1_epi32(counter as i32),
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
    );
    let mut x = s;
    twenty_rounds!(_mm512_add_epi32, _mm512_xor_si512, _mm512_rol_epi32, x, s);

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

/// Keystream of the 8 blocks `counter..counter + 8`: block `b` is
/// `out[2b]` (bytes 0..32) and `out[2b + 1]` (bytes 32..64).
#[target_feature(enable = "avx512f,avx512vl,avx2")]
fn blocks8(state: &ChaChaState, counter: u32) -> [__m256i; 16] {
    let mut s = [_mm256_setzero_si256(); 16];
    for (v, &w) in s.iter_mut().zip(state.words.iter()) {
        *v = _mm256_set1_epi32(w as i32);
    }
    s[12] = _mm256_add_epi32(
        _mm256_set1_epi32(counter as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    );
    let mut x = s;
    twenty_rounds!(_mm256_add_epi32, _mm256_xor_si256, _mm256_rol_epi32, x, s);

    let mut grp = [[_mm256_setzero_si256(); 4]; 4];
    for g in 0..4 {
        let a0 = _mm256_unpacklo_epi32(x[4 * g], x[4 * g + 1]);
        let a1 = _mm256_unpackhi_epi32(x[4 * g], x[4 * g + 1]);
        let a2 = _mm256_unpacklo_epi32(x[4 * g + 2], x[4 * g + 3]);
        let a3 = _mm256_unpackhi_epi32(x[4 * g + 2], x[4 * g + 3]);
        // grp[g][k], lane l: words 4g..4g+4 of block 4l + k.
        grp[g][0] = _mm256_unpacklo_epi64(a0, a2);
        grp[g][1] = _mm256_unpackhi_epi64(a0, a2);
        grp[g][2] = _mm256_unpacklo_epi64(a1, a3);
        grp[g][3] = _mm256_unpackhi_epi64(a1, a3);
    }
    let mut out = [_mm256_setzero_si256(); 16];
    for k in 0..4 {
        // Block k (lane 0) and block 4 + k (lane 1).
        out[2 * k] = _mm256_permute2x128_si256::<0x20>(grp[0][k], grp[1][k]);
        out[2 * k + 1] = _mm256_permute2x128_si256::<0x20>(grp[2][k], grp[3][k]);
        out[2 * (4 + k)] = _mm256_permute2x128_si256::<0x31>(grp[0][k], grp[1][k]);
        out[2 * (4 + k) + 1] = _mm256_permute2x128_si256::<0x31>(grp[2][k], grp[3][k]);
    }
    out
}

/// XORs one 64-byte keystream block into `data` (up to 64 bytes).
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

/// Joins two halves of a block.
#[target_feature(enable = "avx512f,avx2")]
fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// The first run of keystream blocks (from counter 0) for a message of
/// `total` blocks counting the key block: 16 blocks, or 8 when that is
/// enough (then only `out[..8]` is meaningful). Returns the run length.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx2")]
fn first_run(state: &ChaChaState, total: usize) -> ([__m512i; 16], usize) {
    if total > 8 {
        (blocks16(state, 0), 16)
    } else {
        let ks = blocks8(state, 0);
        let mut out = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            out[i] = join(ks[2 * i], ks[2 * i + 1]);
        }
        (out, 8)
    }
}

/// XORs the keystream from block `from` on into `data` (block `i >= 1`
/// covers `data[64(i-1)..64i]`).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx2")]
fn xor_from(state: &ChaChaState, data: &mut [u8], from: usize) {
    let total = 1 + data.len().div_ceil(64);
    let mut block = from;
    let mut unused = [0u8; 32];
    while block < total {
        let left = total - block;
        if left > 8 {
            let ks = blocks16(state, block as u32);
            for (i, &k) in ks.iter().enumerate() {
                apply(block + i, k, data, &mut unused);
            }
            block += 16;
        } else {
            let ks = blocks8(state, block as u32);
            for i in 0..left {
                apply(block + i, join(ks[2 * i], ks[2 * i + 1]), data, &mut unused);
            }
            block += 8;
        }
    }
}

/// Encrypts `data` in place and returns the Poly1305 tag.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512ifma,avx2")]
pub(super) fn seal(state: &ChaChaState, data: &mut [u8]) -> [u8; 16] {
    let total = 1 + data.len().div_ceil(64);
    let (first, run) = first_run(state, total);
    let mut poly_key = [0u8; 32];
    for (i, &k) in first.iter().enumerate().take(run.min(total)) {
        apply(i, k, data, &mut poly_key);
    }
    xor_from(state, data, run);
    poly1305_aead(&poly_key, data)
}

/// Checks `tag` against `data` (the ciphertext) and, when it matches,
/// decrypts `data` in place. On a mismatch `data` is untouched.
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512ifma,avx2")]
pub(super) fn open(state: &ChaChaState, data: &mut [u8], tag: &[u8]) -> bool {
    let total = 1 + data.len().div_ceil(64);
    let (first, run) = first_run(state, total);
    let mut poly_key = [0u8; 32];
    apply(0, first[0], &mut [], &mut poly_key);
    let expect = poly1305_aead(&poly_key, data);
    if !super::ct_eq(&expect, tag) {
        return false;
    }
    for (i, &k) in first.iter().enumerate().take(run.min(total)).skip(1) {
        apply(i, k, data, &mut poly_key);
    }
    xor_from(state, data, run);
    true
}

/// Uses keystream block `index`: block 0 gives the Poly1305 key, block
/// `i >= 1` covers `data[64(i-1)..64i]` (if any of it exists).
#[target_feature(enable = "avx512f,avx512bw")]
fn apply(index: usize, ks: __m512i, data: &mut [u8], poly_key: &mut [u8; 32]) {
    if index == 0 {
        let mut b = [0u8; 64];
        // SAFETY: `b` is 64 bytes.
        unsafe { _mm512_storeu_si512(b.as_mut_ptr().cast(), ks) };
        poly_key.copy_from_slice(&b[..32]);
        return;
    }
    let start = (index - 1) * 64;
    if start < data.len() {
        let end = (start + 64).min(data.len());
        xor64(&mut data[start..end], ks);
    }
}

// ---------------------------------------------------------------- Poly1305

/// A number mod 2^130 - 5 in base 2^44 (limbs may exceed 44 bits a little
/// between reductions).
type Limbs = [u64; 3];

/// `a * b` mod 2^130 - 5, partly reduced (each limb below 2^45). Inputs
/// below 2^46 per limb.
fn mul_scalar(a: Limbs, b: Limbs) -> Limbs {
    let w = |x: u64| u128::from(x);
    let s1 = b[1] * 20;
    let s2 = b[2] * 20;
    let d0 = w(a[0]) * w(b[0]) + w(a[1]) * w(s2) + w(a[2]) * w(s1);
    let mut d1 = w(a[0]) * w(b[1]) + w(a[1]) * w(b[0]) + w(a[2]) * w(s2);
    let mut d2 = w(a[0]) * w(b[2]) + w(a[1]) * w(b[1]) + w(a[2]) * w(b[0]);
    d1 += d0 >> 44;
    d2 += d1 >> 44;
    let mut h0 = (d0 as u64 & M44) + ((d2 >> 42) as u64) * 5;
    let h1 = (d1 as u64 & M44) + (h0 >> 44);
    h0 &= M44;
    [h0, h1, d2 as u64 & M42]
}

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

#[target_feature(enable = "avx512f")]
fn mult_from(lanes: &[Limbs; 8]) -> Mult {
    let mut limb = [[0u64; 8]; 3];
    for (j, l) in lanes.iter().enumerate() {
        for i in 0..3 {
            limb[i][j] = l[i];
        }
    }
    // SAFETY: each `limb[i]` is 64 bytes.
    let r = unsafe {
        Vec8 {
            l0: _mm512_loadu_si512(limb[0].as_ptr().cast()),
            l1: _mm512_loadu_si512(limb[1].as_ptr().cast()),
            l2: _mm512_loadu_si512(limb[2].as_ptr().cast()),
        }
    };
    Mult {
        r,
        s1: times20(r.l1),
        s2: times20(r.l2),
    }
}

/// `20 * v` per lane (16v + 4v).
#[target_feature(enable = "avx512f")]
fn times20(v: __m512i) -> __m512i {
    _mm512_add_epi64(_mm512_slli_epi64::<4>(v), _mm512_slli_epi64::<2>(v))
}

/// `h * m` lane by lane, mod 2^130 - 5, limbs below 2^45 afterwards.
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul_vec(h: Vec8, m: &Mult) -> Vec8 {
    let z = _mm512_setzero_si512();
    let (h0, h1, h2) = (h.l0, h.l1, h.l2);
    let (r0, r1, r2, s1, s2) = (m.r.l0, m.r.l1, m.r.l2, m.s1, m.s2);
    // Column sums, low and high 52-bit halves of each product.
    let d0lo = _mm512_add_epi64(
        _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(z, h0, r0), h1, s2),
        _mm512_madd52lo_epu64(z, h2, s1),
    );
    let d0hi = _mm512_add_epi64(
        _mm512_madd52hi_epu64(_mm512_madd52hi_epu64(z, h0, r0), h1, s2),
        _mm512_madd52hi_epu64(z, h2, s1),
    );
    let d1lo = _mm512_add_epi64(
        _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(z, h0, r1), h1, r0),
        _mm512_madd52lo_epu64(z, h2, s2),
    );
    let d1hi = _mm512_add_epi64(
        _mm512_madd52hi_epu64(_mm512_madd52hi_epu64(z, h0, r1), h1, r0),
        _mm512_madd52hi_epu64(z, h2, s2),
    );
    let d2lo = _mm512_add_epi64(
        _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(z, h0, r2), h1, r1),
        _mm512_madd52lo_epu64(z, h2, r0),
    );
    let d2hi = _mm512_add_epi64(
        _mm512_madd52hi_epu64(_mm512_madd52hi_epu64(z, h0, r2), h1, r1),
        _mm512_madd52hi_epu64(z, h2, r0),
    );
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

/// Splits eight 16-byte blocks (128 bytes) into lane limbs; `hibit` is
/// the 2^128 bit per lane (as a lane mask).
#[target_feature(enable = "avx512f")]
fn load8(blocks: &[u8], hibit: __mmask8) -> Vec8 {
    assert!(blocks.len() >= 128, "load8 reads 128 bytes");
    // SAFETY: `blocks` holds at least 128 bytes (asserted): two 64-byte
    // unaligned loads.
    let (a, b) = unsafe {
        (
            _mm512_loadu_si512(blocks.as_ptr().cast()),
            _mm512_loadu_si512(blocks.as_ptr().add(64).cast()),
        )
    };
    let lo = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b);
    let hi = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b);
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

#[target_feature(enable = "avx512f")]
fn add_vec(a: Vec8, b: Vec8) -> Vec8 {
    Vec8 {
        l0: _mm512_add_epi64(a.l0, b.l0),
        l1: _mm512_add_epi64(a.l1, b.l1),
        l2: _mm512_add_epi64(a.l2, b.l2),
    }
}

/// The Poly1305 tag of the AEAD input for `ciphertext` with no associated
/// data: the ciphertext zero-padded to 16 bytes, then the two lengths.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) fn poly1305_aead(key: &[u8; 32], ciphertext: &[u8]) -> [u8; 16] {
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

    // Powers r^1..r^8; lane j of the last step multiplies by r^(8-j).
    // As a tree (depth 3, independent multiplies overlap), not a chain.
    let mut pow = [r; 8];
    pow[1] = mul_scalar(r, r);
    pow[2] = mul_scalar(pow[1], r);
    pow[3] = mul_scalar(pow[1], pow[1]);
    for i in 4..8 {
        pow[i] = mul_scalar(pow[3], pow[i - 4]);
    }
    let r8 = mult_from(&[pow[7]; 8]);
    let last: [Limbs; 8] = std::array::from_fn(|j| pow[7 - j]);
    let rlast = mult_from(&last);

    let len = ciphertext.len();
    let ct_blocks = len.div_ceil(16);
    let n = ct_blocks + 1; // the lengths block
    let pad = (8 - n % 8) % 8;
    let groups = (n + pad) / 8;

    let mut lengths = [0u8; 16];
    lengths[8..].copy_from_slice(&(len as u64).to_le_bytes());

    let zero = _mm512_setzero_si512();
    let mut h = Vec8 {
        l0: zero,
        l1: zero,
        l2: zero,
    };
    let mut stage = [0u8; 128];
    for g in 0..groups {
        // Real block index of this group's lane 0 (negative: front pad).
        let first = (8 * g) as isize - pad as isize;
        let start = first * 16;
        let m = if start >= 0 && start as usize + 128 <= len {
            let start = start as usize;
            load8(&ciphertext[start..start + 128], 0xff)
        } else {
            stage.fill(0);
            let mut mask: __mmask8 = 0;
            for lane in 0..8 {
                let idx = first + lane as isize;
                if idx < 0 {
                    continue;
                }
                let idx = idx as usize;
                mask |= 1 << lane;
                let dst = &mut stage[lane * 16..lane * 16 + 16];
                if idx < ct_blocks {
                    let from = idx * 16;
                    let to = (from + 16).min(len);
                    dst[..to - from].copy_from_slice(&ciphertext[from..to]);
                } else {
                    dst.copy_from_slice(&lengths);
                }
            }
            load8(&stage, mask)
        };
        h = add_vec(h, m);
        h = mul_vec(h, if g + 1 == groups { &rlast } else { &r8 });
    }
    let sum = [
        _mm512_reduce_add_epi64(h.l0) as u64,
        _mm512_reduce_add_epi64(h.l1) as u64,
        _mm512_reduce_add_epi64(h.l2) as u64,
    ];
    reduce_final(sum).wrapping_add(s).to_le_bytes()
}

#[cfg(test)]
pub(super) mod tests_support {
    //! Scalar pieces exposed to the tests.
    pub(in super::super) fn reduce_final(h: [u64; 3]) -> u128 {
        super::reduce_final(h)
    }
}
