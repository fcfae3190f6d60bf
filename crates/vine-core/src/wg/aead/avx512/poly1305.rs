//! Poly1305 for the AVX-512 ChaCha20-Poly1305 ([`super`]): eight
//! accumulators, one per 64-bit lane, each a number in base 2^44 across
//! three registers, multiplied with the 52-bit IFMA instructions; the
//! parent runs its steps between ChaCha double rounds.

#![allow(unsafe_code)] // SIMD loads and stores on bounds-checked slices

use std::arch::x86_64::*;

/// Mask of a 44-bit limb.
const M44: u64 = (1 << 44) - 1;
/// Mask of the top (42-bit) limb: limbs sit at bits 0, 44 and 88 of 130.
const M42: u64 = (1 << 42) - 1;

/// A number mod 2^130 - 5 in base 2^44 (limbs may exceed 44 bits a little
/// between reductions).
type Limbs = [u64; 3];

/// Reduces fully mod 2^130 - 5 and returns the low 128 bits.
pub(super) fn reduce_final(h: Limbs) -> u128 {
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
pub(super) struct Poly {
    h: Vec8,
    r8: Mult,
    rlast: Mult,
    s: u128,
    /// Blocks of zero in front, to make the count a multiple of eight.
    pad: usize,
    groups: usize,
    next: usize,
    pub(super) len: usize,
}

impl Poly {
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn new(key: &[u8; 32], len: usize) -> Self {
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
    pub(super) fn starts_before(&self, limit: usize) -> bool {
        self.next < self.groups && self.next_offset() < limit as isize
    }

    /// Whether the next step reads only `ciphertext[..avail]` (the last
    /// step, which holds the lengths block, needs all of it).
    pub(super) fn ready(&self, avail: usize) -> bool {
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
    pub(super) fn step(&mut self, ct: &[u8]) {
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
    pub(super) fn finish(&mut self, ct: &[u8]) -> [u8; 16] {
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
pub(crate) fn poly1305_aead(key: &[u8; 32], ciphertext: &[u8]) -> [u8; 16] {
    Poly::new(key, ciphertext.len()).finish(ciphertext)
}
