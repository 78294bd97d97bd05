//! The SIMD paths: AVX2 (the build's baseline), and AVX-512 VNNI where the CPU has it,
//! detected at run time (one instruction instead of two or three for each integer dot
//! product of four bytes). Safe wrappers over `#[target_feature]` functions.

use super::ActivationBlock;
use super::interleaved::{COLUMNS, Q4_1x8, Q8_0x8};

/// Whether this CPU has AVX-512 VNNI with 256-bit forms (checked once).
#[cfg(target_arch = "x86_64")]
pub(super) fn vnni() -> bool {
    static VNNI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VNNI.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("avx512vl")
    })
}

/// A safe entry point per kernel: VNNI when the CPU has it, else AVX2 (the build's
/// baseline), else the portable code on builds without AVX2.
macro_rules! dispatch {
    ($name:ident, $vnni:ident, $group:ty) => {
        pub(super) fn $name<const N: usize>(
            weights: &[$group],
            rows: &[&[ActivationBlock]; N],
        ) -> [[f32; COLUMNS]; N] {
            #[cfg(all(
                target_arch = "x86_64",
                target_feature = "avx2",
                target_feature = "fma",
                target_feature = "f16c"
            ))]
            {
                if vnni() {
                    // SAFETY: the CPU reported AVX-512 VNNI and VL.
                    return unsafe { avx2::$vnni(weights, rows) };
                }
                // SAFETY: compiled only where the whole build enables AVX2, FMA and F16C
                // (.cargo/config.toml targets x86-64-v3), so the instructions exist.
                unsafe { avx2::$name(weights, rows) }
            }
            #[cfg(not(all(
                target_arch = "x86_64",
                target_feature = "avx2",
                target_feature = "fma",
                target_feature = "f16c"
            )))]
            {
                super::portable::tile(weights, rows)
            }
        }
    };
}

dispatch!(tile_q4_1, tile_q4_1_vnni, Q4_1x8);
dispatch!(tile_q8_0, tile_q8_0_vnni, Q8_0x8);

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
pub(super) mod avx2 {
    use std::arch::x86_64::*;

    use super::super::ActivationBlock;
    use super::super::interleaved::{COLUMNS, Q4_1x8, Q8_0x8};

    /// Bytes `4k..4k + 4` of an activation block in every lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn broadcast(a: &ActivationBlock, k: usize) -> __m256i {
        let bytes = [
            a.qs[4 * k],
            a.qs[4 * k + 1],
            a.qs[4 * k + 2],
            a.qs[4 * k + 3],
        ];
        _mm256_set1_epi32(i32::from_le_bytes(bytes.map(|q| q as u8)))
    }

    /// The weights of vector `k` of a group: those for activations `4k..` (low
    /// nibbles) and `16 + 4k..` (high nibbles), one byte each.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn unpack(group: &Q4_1x8, k: usize) -> (__m256i, __m256i) {
        let nibbles = _mm256_set1_epi8(0x0f);
        // SAFETY: `qs[k]` is 32 readable bytes; the load allows any alignment.
        let packed = unsafe { _mm256_loadu_si256(group.qs[k].as_ptr().cast()) };
        let low = _mm256_and_si256(packed, nibbles);
        let high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), nibbles);
        (low, high)
    }

    /// A group's scales and offsets as floats.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    fn scales(group: &Q4_1x8) -> (__m256, __m256) {
        // SAFETY: `d` and `m` are 8 halves, 16 readable bytes each.
        let (d, m) = unsafe {
            (
                _mm_loadu_si128(group.d.as_ptr().cast()),
                _mm_loadu_si128(group.m.as_ptr().cast()),
            )
        };
        (_mm256_cvtph_ps(d), _mm256_cvtph_ps(m))
    }

    /// `sum + d × a.d × dots + m × a.s`: one block's eight sums, scaled, added.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn add_block(
        sum: __m256,
        (d, m): (__m256, __m256),
        a: &ActivationBlock,
        dots: __m256i,
    ) -> __m256 {
        let sum = _mm256_fmadd_ps(m, _mm256_set1_ps(a.s), sum);
        let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d));
        _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dots), sum)
    }

    #[inline]
    #[target_feature(enable = "avx")]
    fn stored<const N: usize>(sums: [__m256; N]) -> [[f32; COLUMNS]; N] {
        let mut out = [[0f32; COLUMNS]; N];
        for (row, sum) in out.iter_mut().zip(sums) {
            // SAFETY: `row` is 8 writable floats; the store allows any alignment.
            unsafe { _mm256_storeu_ps(row.as_mut_ptr(), sum) };
        }
        out
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(in crate::kernels) fn tile_q4_1<const N: usize>(
        weights: &[Q4_1x8],
        rows: &[&[ActivationBlock]; N],
    ) -> [[f32; COLUMNS]; N] {
        let ones = _mm256_set1_epi16(1);
        let mut sums = [_mm256_setzero_ps(); N];
        for (index, group) in weights.iter().enumerate() {
            // Sixteen products of 4-bit and 7-bit values per 16-bit lane stay below
            // 16 × 15 × 127 = 30,480: no saturation before the widening add.
            let mut pairs = [_mm256_setzero_si256(); N];
            for k in 0..4 {
                let (low, high) = unpack(group, k);
                for (pair, row) in pairs.iter_mut().zip(rows) {
                    let a = &row[index];
                    let low = _mm256_maddubs_epi16(low, broadcast(a, k));
                    let high = _mm256_maddubs_epi16(high, broadcast(a, k + 4));
                    *pair = _mm256_add_epi16(*pair, _mm256_add_epi16(low, high));
                }
            }
            let scales = scales(group);
            for ((sum, pair), row) in sums.iter_mut().zip(pairs).zip(rows) {
                *sum = add_block(*sum, scales, &row[index], _mm256_madd_epi16(pair, ones));
            }
        }
        stored(sums)
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub(in crate::kernels) fn tile_q4_1_vnni<const N: usize>(
        weights: &[Q4_1x8],
        rows: &[&[ActivationBlock]; N],
    ) -> [[f32; COLUMNS]; N] {
        let mut sums = [_mm256_setzero_ps(); N];
        for (index, group) in weights.iter().enumerate() {
            let mut dots = [_mm256_setzero_si256(); N];
            for k in 0..4 {
                let (low, high) = unpack(group, k);
                for (dot, row) in dots.iter_mut().zip(rows) {
                    let a = &row[index];
                    *dot = _mm256_dpbusd_epi32(*dot, low, broadcast(a, k));
                    *dot = _mm256_dpbusd_epi32(*dot, high, broadcast(a, k + 4));
                }
            }
            let scales = scales(group);
            for ((sum, dot), row) in sums.iter_mut().zip(dots).zip(rows) {
                *sum = add_block(*sum, scales, &row[index], dot);
            }
        }
        stored(sums)
    }

    /// A Q8_0 group's scales as floats.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    fn q8_scales(group: &Q8_0x8) -> __m256 {
        // SAFETY: `d` is 8 halves, 16 readable bytes.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(group.d.as_ptr().cast()) })
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn q8_weights(group: &Q8_0x8, k: usize) -> __m256i {
        // SAFETY: `qs[k]` is 32 readable bytes; the load allows any alignment.
        unsafe { _mm256_loadu_si256(group.qs[k].as_ptr().cast()) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(in crate::kernels) fn tile_q8_0<const N: usize>(
        weights: &[Q8_0x8],
        rows: &[&[ActivationBlock]; N],
    ) -> [[f32; COLUMNS]; N] {
        let ones = _mm256_set1_epi16(1);
        let mut sums = [_mm256_setzero_ps(); N];
        for (index, group) in weights.iter().enumerate() {
            let mut dots = [_mm256_setzero_si256(); N];
            for k in 0..8 {
                let values = q8_weights(group, k);
                // maddubs multiplies unsigned by signed bytes: the weights' signs move
                // onto the activations, as llama.cpp does. Two products of at most
                // 128 × 127 fit a 16-bit lane.
                let magnitudes = _mm256_sign_epi8(values, values);
                for (dot, row) in dots.iter_mut().zip(rows) {
                    let signed = _mm256_sign_epi8(broadcast(&row[index], k), values);
                    let pairs = _mm256_maddubs_epi16(magnitudes, signed);
                    *dot = _mm256_add_epi32(*dot, _mm256_madd_epi16(pairs, ones));
                }
            }
            let d = q8_scales(group);
            for ((sum, dot), row) in sums.iter_mut().zip(dots).zip(rows) {
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(row[index].d));
                *sum = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot), *sum);
            }
        }
        stored(sums)
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub(in crate::kernels) fn tile_q8_0_vnni<const N: usize>(
        weights: &[Q8_0x8],
        rows: &[&[ActivationBlock]; N],
    ) -> [[f32; COLUMNS]; N] {
        // vpdpbusd multiplies unsigned by signed bytes: each weight w is taken as the
        // unsigned w + 128 (its sign bit flipped), and 128 × Σa is taken off after.
        let flip = _mm256_set1_epi8(i8::MIN);
        let mut sums = [_mm256_setzero_ps(); N];
        for (index, group) in weights.iter().enumerate() {
            let mut dots = [_mm256_setzero_si256(); N];
            for k in 0..8 {
                let shifted = _mm256_xor_si256(q8_weights(group, k), flip);
                for (dot, row) in dots.iter_mut().zip(rows) {
                    *dot = _mm256_dpbusd_epi32(*dot, shifted, broadcast(&row[index], k));
                }
            }
            let d = q8_scales(group);
            for ((sum, dot), row) in sums.iter_mut().zip(dots).zip(rows) {
                let a = &row[index];
                let exact = _mm256_sub_epi32(dot, _mm256_set1_epi32(128 * a.sum));
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d));
                *sum = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(exact), *sum);
            }
        }
        stored(sums)
    }
}
