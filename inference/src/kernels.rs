//! Our matrix products for quantised weights: Q4_1 (the default model's layers) and
//! Q8_0 (its embeddings, which also serve as its output layer).
//!
//! candle 0.11 has no SIMD kernel for Q4_1: its dot product falls back to scalar code,
//! about 12 GMAC/s on this machine, and a batch of rows costs exactly rows × one row, so
//! batching gained nothing. These kernels quantise the activations to 8 bits per block
//! of 32 (as llama.cpp does), multiply with AVX2 integer instructions, and decode each
//! block of weights once for up to four activation rows, so a batched pass reads and
//! decodes the weights once for all its sequences. Output columns are split over the
//! rayon pool. Without AVX2 (other targets) the same arithmetic runs in plain Rust.

use half::f16;
use rayon::prelude::*;

const BLOCK: usize = 32;
/// Output columns per parallel task: enough work to outweigh scheduling.
const COLUMNS_PER_TASK: usize = 32;
/// Activation rows that share one decoded weight block.
const ROW_GROUP: usize = 4;

/// A block of 32 quantised weights as a GGUF file stores it.
pub trait WeightBlock: Copy + Send + Sync + 'static {
    /// Bytes per block in the file.
    const BYTES: usize;
    const NAME: &'static str;
    fn parse(raw: &[u8]) -> Self;
    fn dequantize(&self, out: &mut [f32]);
    /// Dot products of a row of blocks with `N` activation rows.
    fn dot<const N: usize>(weights: &[Self], rows: &[&[ActivationBlock]; N]) -> [f32; N];
}

/// 32 four-bit values `q`, meaning `d × q + m`.
#[derive(Clone, Copy)]
pub struct Q4_1Block {
    // Kept at half precision as in the file: decode is bound by reading the weights,
    // and 20 bytes a block instead of 24 is a sixth less to read.
    d: f16,
    m: f16,
    /// Byte j holds value j (low nibble) and value j + 16 (high nibble), as in GGUF.
    qs: [u8; 16],
}

/// 32 signed bytes `q`, meaning `d × q`.
#[derive(Clone, Copy)]
pub struct Q8_0Block {
    d: f16,
    qs: [i8; 32],
}

/// An activation block: 32 signed bytes meaning `d × q`, and `s = d × Σq`.
#[derive(Clone, Copy)]
pub struct ActivationBlock {
    d: f32,
    s: f32,
    qs: [i8; 32],
}

fn half_at(raw: &[u8], at: usize) -> f16 {
    f16::from_le_bytes([raw[at], raw[at + 1]])
}

/// Which implementation the products use here (reported by benchmarks and `models list`).
pub fn path() -> &'static str {
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    {
        if simd::vnni() { "avx512vnni" } else { "avx2" }
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    )))]
    {
        "portable"
    }
}

impl WeightBlock for Q4_1Block {
    const BYTES: usize = 20;
    const NAME: &'static str = "Q4_1";

    fn parse(raw: &[u8]) -> Self {
        let mut qs = [0u8; 16];
        qs.copy_from_slice(&raw[4..20]);
        Self {
            d: half_at(raw, 0),
            m: half_at(raw, 2),
            qs,
        }
    }

    fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (self.d.to_f32(), self.m.to_f32());
        for (j, byte) in self.qs.iter().enumerate() {
            out[j] = d * f32::from(byte & 0x0f) + m;
            out[j + 16] = d * f32::from(byte >> 4) + m;
        }
    }

    fn dot<const N: usize>(weights: &[Self], rows: &[&[ActivationBlock]; N]) -> [f32; N] {
        simd::dot_q4_1(weights, rows)
    }
}

impl WeightBlock for Q8_0Block {
    const BYTES: usize = 34;
    const NAME: &'static str = "Q8_0";

    fn parse(raw: &[u8]) -> Self {
        let mut qs = [0i8; 32];
        for (q, byte) in qs.iter_mut().zip(&raw[2..34]) {
            *q = *byte as i8;
        }
        Self {
            d: half_at(raw, 0),
            qs,
        }
    }

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (value, q) in out.iter_mut().zip(&self.qs) {
            *value = d * f32::from(*q);
        }
    }

    fn dot<const N: usize>(weights: &[Self], rows: &[&[ActivationBlock]; N]) -> [f32; N] {
        simd::dot_q8_0(weights, rows)
    }
}

/// A quantised matrix of `rows` output features × `columns` inputs.
pub struct QuantMatrix<B> {
    rows: usize,
    columns: usize,
    blocks: Vec<B>,
}

pub type Q4_1Matrix = QuantMatrix<Q4_1Block>;
pub type Q8_0Matrix = QuantMatrix<Q8_0Block>;

impl<B: WeightBlock> QuantMatrix<B> {
    /// From the raw GGUF bytes of a `[rows, columns]` tensor.
    pub fn from_bytes(rows: usize, columns: usize, bytes: &[u8]) -> Result<Self, String> {
        if !columns.is_multiple_of(BLOCK) {
            return Err(format!("{columns} columns are not a multiple of {BLOCK}"));
        }
        let count = rows * columns / BLOCK;
        if bytes.len() != count * B::BYTES {
            return Err(format!(
                "a {rows}x{columns} {} tensor takes {} bytes, found {}",
                B::NAME,
                count * B::BYTES,
                bytes.len()
            ));
        }
        let blocks = bytes.chunks_exact(B::BYTES).map(B::parse).collect();
        Ok(Self {
            rows,
            columns,
            blocks,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The matrices stacked (their rows one after another), when they share a width:
    /// one product then serves projections that read the same input.
    pub fn stack(parts: Vec<Self>) -> Result<Self, String> {
        let columns = parts.first().map_or(0, |part| part.columns);
        if parts.iter().any(|part| part.columns != columns) {
            return Err("stacked matrices must have the same number of columns".into());
        }
        let rows = parts.iter().map(|part| part.rows).sum();
        let blocks = parts.into_iter().flat_map(|part| part.blocks).collect();
        Ok(Self {
            rows,
            columns,
            blocks,
        })
    }

    /// Row `index` as floats into `out` (`columns` long): an embedding lookup.
    pub fn row(&self, index: usize, out: &mut [f32]) {
        let per_row = self.columns / BLOCK;
        let blocks = &self.blocks[index * per_row..(index + 1) * per_row];
        for (block, chunk) in blocks.iter().zip(out.chunks_exact_mut(BLOCK)) {
            block.dequantize(chunk);
        }
    }

    /// `input` is `m × columns` (row-major); returns `m × rows`.
    pub fn matmul(&self, input: &[f32]) -> Vec<f32> {
        let per_row = self.columns / BLOCK;
        let m = input.len() / self.columns.max(1);
        let activations: Vec<ActivationBlock> = input.chunks_exact(BLOCK).map(quantize).collect();
        let row_blocks = |r: usize| &activations[r * per_row..(r + 1) * per_row];
        let tasks: Vec<(usize, Vec<f32>)> = (0..self.rows.div_ceil(COLUMNS_PER_TASK))
            .into_par_iter()
            .map(|task| {
                let first = task * COLUMNS_PER_TASK;
                let last = self.rows.min(first + COLUMNS_PER_TASK);
                let width = last - first;
                let mut partial = vec![0f32; m * width];
                for column in first..last {
                    let weights = &self.blocks[column * per_row..(column + 1) * per_row];
                    let mut row = 0;
                    while row + ROW_GROUP <= m {
                        let rows: [&[ActivationBlock]; ROW_GROUP] =
                            std::array::from_fn(|r| row_blocks(row + r));
                        for (r, sum) in B::dot(weights, &rows).into_iter().enumerate() {
                            partial[(row + r) * width + (column - first)] = sum;
                        }
                        row += ROW_GROUP;
                    }
                    for row in row..m {
                        let [sum] = B::dot(weights, &[row_blocks(row)]);
                        partial[row * width + (column - first)] = sum;
                    }
                }
                (first, partial)
            })
            .collect();
        let mut output = vec![0f32; m * self.rows];
        for (first, partial) in tasks {
            let width = partial.len() / m.max(1);
            for row in 0..m {
                output[row * self.rows + first..row * self.rows + first + width]
                    .copy_from_slice(&partial[row * width..(row + 1) * width]);
            }
        }
        output
    }
}

fn quantize(values: &[f32]) -> ActivationBlock {
    let max = values.iter().fold(0f32, |max, v| max.max(v.abs()));
    let d = max / 127.0;
    let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
    let mut qs = [0i8; 32];
    let mut sum = 0i32;
    for (q, value) in qs.iter_mut().zip(values) {
        *q = (value * inverse).round() as i8;
        sum += i32::from(*q);
    }
    ActivationBlock {
        d,
        s: d * sum as f32,
        qs,
    }
}

/// The same arithmetic in plain Rust: the path for CPUs without AVX2, and the
/// reference the SIMD path is tested against.
#[cfg_attr(not(test), allow(dead_code))]
mod portable {
    use super::{ActivationBlock, Q4_1Block, Q8_0Block};

    pub(super) fn dot_q4_1<const N: usize>(
        weights: &[Q4_1Block],
        rows: &[&[ActivationBlock]; N],
    ) -> [f32; N] {
        std::array::from_fn(|r| {
            weights
                .iter()
                .zip(rows[r])
                .map(|(w, a)| {
                    let mut products = 0i32;
                    for j in 0..16 {
                        let low = i32::from(w.qs[j] & 0x0f);
                        let high = i32::from(w.qs[j] >> 4);
                        products += low * i32::from(a.qs[j]) + high * i32::from(a.qs[j + 16]);
                    }
                    w.d.to_f32() * a.d * products as f32 + w.m.to_f32() * a.s
                })
                .sum()
        })
    }

    pub(super) fn dot_q8_0<const N: usize>(
        weights: &[Q8_0Block],
        rows: &[&[ActivationBlock]; N],
    ) -> [f32; N] {
        std::array::from_fn(|r| {
            weights
                .iter()
                .zip(rows[r])
                .map(|(w, a)| {
                    let products: i32 =
                        w.qs.iter()
                            .zip(&a.qs)
                            .map(|(x, y)| i32::from(*x) * i32::from(*y))
                            .sum();
                    w.d.to_f32() * a.d * products as f32
                })
                .sum()
        })
    }
}

/// The SIMD paths: AVX2 (the build's baseline), and AVX-512 VNNI where the CPU has it,
/// detected at run time (one instruction instead of two for each block's integer dot
/// product). Safe wrappers over `#[target_feature]` functions.
mod simd {
    use super::{ActivationBlock, Q4_1Block, Q8_0Block};

    /// Whether this CPU has AVX-512 VNNI with 256-bit forms (checked once).
    #[cfg(target_arch = "x86_64")]
    pub(super) fn vnni() -> bool {
        static VNNI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *VNNI.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("avx512vl")
        })
    }

    /// A safe entry point per block type: VNNI when the CPU has it, else AVX2 (the
    /// build's baseline), else the portable code on builds without AVX2.
    macro_rules! dispatch {
        ($name:ident, $block:ty, $vnni:ident) => {
            pub(super) fn $name<const N: usize>(
                weights: &[$block],
                rows: &[&[ActivationBlock]; N],
            ) -> [f32; N] {
                #[cfg(all(
                    target_arch = "x86_64",
                    target_feature = "avx2",
                    target_feature = "fma"
                ))]
                {
                    if vnni() {
                        // SAFETY: the CPU reported AVX-512 VNNI and VL.
                        return unsafe { avx2::$vnni(weights, rows) };
                    }
                    // SAFETY: compiled only where the whole build enables AVX2 and FMA
                    // (.cargo/config.toml targets x86-64-v3), so the instructions exist.
                    unsafe { avx2::$name(weights, rows) }
                }
                #[cfg(not(all(
                    target_arch = "x86_64",
                    target_feature = "avx2",
                    target_feature = "fma"
                )))]
                {
                    super::portable::$name(weights, rows)
                }
            }
        };
    }

    dispatch!(dot_q4_1, Q4_1Block, dot_q4_1_vnni);
    dispatch!(dot_q8_0, Q8_0Block, dot_q8_0_vnni);

    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    pub(super) mod avx2 {
        use std::arch::x86_64::*;

        use super::super::{ActivationBlock, Q4_1Block, Q8_0Block};

        #[target_feature(enable = "avx2,fma")]
        fn horizontal_sum(v: __m256) -> f32 {
            let low = _mm256_castps256_ps128(v);
            let high = _mm256_extractf128_ps(v, 1);
            let sum = _mm_add_ps(low, high);
            let sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
            let sum = _mm_add_ss(sum, _mm_shuffle_ps(sum, sum, 1));
            _mm_cvtss_f32(sum)
        }

        #[target_feature(enable = "avx2,fma")]
        pub(in crate::kernels) fn dot_q4_1<const N: usize>(
            weights: &[Q4_1Block],
            rows: &[&[ActivationBlock]; N],
        ) -> [f32; N] {
            let low_nibbles = _mm_set1_epi8(0x0f);
            let ones = _mm256_set1_epi16(1);
            let mut accumulators = [_mm256_setzero_ps(); N];
            let mut offsets = [0f32; N];
            for (index, w) in weights.iter().enumerate() {
                let (wd, wm) = (w.d.to_f32(), w.m.to_f32());
                // SAFETY: `qs` is 16 readable bytes; the load allows any alignment.
                let packed = unsafe { _mm_loadu_si128(w.qs.as_ptr().cast()) };
                let low = _mm_and_si128(packed, low_nibbles);
                let high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles);
                let values = _mm256_set_m128i(high, low);
                for r in 0..N {
                    let a = &rows[r][index];
                    // SAFETY: `qs` is 32 readable bytes; the load allows any alignment.
                    let q8 = unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) };
                    let pairs = _mm256_maddubs_epi16(values, q8);
                    let products = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
                    accumulators[r] =
                        _mm256_fmadd_ps(_mm256_set1_ps(wd * a.d), products, accumulators[r]);
                    offsets[r] += wm * a.s;
                }
            }
            std::array::from_fn(|r| horizontal_sum(accumulators[r]) + offsets[r])
        }

        #[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
        pub(in crate::kernels) fn dot_q4_1_vnni<const N: usize>(
            weights: &[Q4_1Block],
            rows: &[&[ActivationBlock]; N],
        ) -> [f32; N] {
            let low_nibbles = _mm_set1_epi8(0x0f);
            let mut accumulators = [_mm256_setzero_ps(); N];
            let mut offsets = [0f32; N];
            for (index, w) in weights.iter().enumerate() {
                let (wd, wm) = (w.d.to_f32(), w.m.to_f32());
                // SAFETY: `qs` is 16 readable bytes; the load allows any alignment.
                let packed = unsafe { _mm_loadu_si128(w.qs.as_ptr().cast()) };
                let low = _mm_and_si128(packed, low_nibbles);
                let high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles);
                let values = _mm256_set_m128i(high, low);
                for r in 0..N {
                    let a = &rows[r][index];
                    // SAFETY: `qs` is 32 readable bytes; the load allows any alignment.
                    let q8 = unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) };
                    let sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), values, q8);
                    accumulators[r] = _mm256_fmadd_ps(
                        _mm256_set1_ps(wd * a.d),
                        _mm256_cvtepi32_ps(sums),
                        accumulators[r],
                    );
                    offsets[r] += wm * a.s;
                }
            }
            std::array::from_fn(|r| horizontal_sum(accumulators[r]) + offsets[r])
        }

        #[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
        pub(in crate::kernels) fn dot_q8_0_vnni<const N: usize>(
            weights: &[Q8_0Block],
            rows: &[&[ActivationBlock]; N],
        ) -> [f32; N] {
            let mut accumulators = [_mm256_setzero_ps(); N];
            for (index, w) in weights.iter().enumerate() {
                let wd = w.d.to_f32();
                // SAFETY: `qs` is 32 readable bytes; the load allows any alignment.
                let values = unsafe { _mm256_loadu_si256(w.qs.as_ptr().cast()) };
                let magnitudes = _mm256_sign_epi8(values, values);
                for r in 0..N {
                    let a = &rows[r][index];
                    // SAFETY: as above.
                    let q8 = unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) };
                    let signed = _mm256_sign_epi8(q8, values);
                    let sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), magnitudes, signed);
                    accumulators[r] = _mm256_fmadd_ps(
                        _mm256_set1_ps(wd * a.d),
                        _mm256_cvtepi32_ps(sums),
                        accumulators[r],
                    );
                }
            }
            std::array::from_fn(|r| horizontal_sum(accumulators[r]))
        }

        #[target_feature(enable = "avx2,fma")]
        pub(in crate::kernels) fn dot_q8_0<const N: usize>(
            weights: &[Q8_0Block],
            rows: &[&[ActivationBlock]; N],
        ) -> [f32; N] {
            let ones = _mm256_set1_epi16(1);
            let mut accumulators = [_mm256_setzero_ps(); N];
            for (index, w) in weights.iter().enumerate() {
                let wd = w.d.to_f32();
                // SAFETY: `qs` is 32 readable bytes; the load allows any alignment.
                let values = unsafe { _mm256_loadu_si256(w.qs.as_ptr().cast()) };
                // maddubs multiplies unsigned by signed bytes: move the weights' signs
                // onto the activations, as llama.cpp does.
                let magnitudes = _mm256_sign_epi8(values, values);
                for r in 0..N {
                    let a = &rows[r][index];
                    // SAFETY: as above.
                    let q8 = unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) };
                    let signed = _mm256_sign_epi8(q8, values);
                    let pairs = _mm256_maddubs_epi16(magnitudes, signed);
                    let products = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
                    accumulators[r] =
                        _mm256_fmadd_ps(_mm256_set1_ps(wd * a.d), products, accumulators[r]);
                }
            }
            std::array::from_fn(|r| horizontal_sum(accumulators[r]))
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::*;

    fn values(count: usize, seed: u32) -> Vec<f32> {
        (0..count)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2000) as f32 / 1000.0
                    - 1.0
            })
            .collect()
    }

    fn quantized(values: &[f32], rows: usize, columns: usize, dtype: GgmlDType) -> QTensor {
        let tensor = Tensor::from_slice(values, (rows, columns), &Device::Cpu).unwrap();
        QTensor::quantize(&tensor, dtype).unwrap()
    }

    /// Our product against candle's for the same quantised weights, at several batch
    /// sizes (including ones that leave a partial row group).
    fn matches_candle<B: WeightBlock>(dtype: GgmlDType) {
        let (rows, columns) = (70, 128);
        let weights = values(rows * columns, 7);
        let tensor = quantized(&weights, rows, columns, dtype);
        let ours = QuantMatrix::<B>::from_bytes(rows, columns, &tensor.data().unwrap()).unwrap();
        let theirs = QMatMul::from_qtensor(tensor).unwrap();
        for m in [1, 3, 4, 9] {
            let input = values(m * columns, 11 + m as u32);
            let expected: Vec<f32> = theirs
                .forward(&Tensor::from_slice(&input, (m, columns), &Device::Cpu).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let got = ours.matmul(&input);
            assert_eq!(got.len(), expected.len());
            for (index, (a, b)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    (a - b).abs() < 2e-3 * (1.0 + b.abs()),
                    "{} m={m} [{index}]: {a} vs {b}",
                    B::NAME
                );
            }
        }
    }

    #[test]
    fn the_products_match_candles_for_one_row_and_for_batches() {
        matches_candle::<Q4_1Block>(GgmlDType::Q4_1);
        matches_candle::<Q8_0Block>(GgmlDType::Q8_0);
    }

    #[test]
    fn the_portable_path_agrees_with_the_simd_path() {
        let (rows, columns) = (8, 64);
        let per_row = columns / BLOCK;
        let input = values(4 * columns, 5);
        let activations: Vec<ActivationBlock> = input.chunks_exact(BLOCK).map(quantize).collect();
        let rows_in: [&[ActivationBlock]; ROW_GROUP] =
            std::array::from_fn(|r| &activations[r * per_row..(r + 1) * per_row]);
        let weights = values(rows * columns, 3);
        let q4 = quantized(&weights, rows, columns, GgmlDType::Q4_1);
        let q4 = Q4_1Matrix::from_bytes(rows, columns, &q4.data().unwrap()).unwrap();
        let q8 = quantized(&weights, rows, columns, GgmlDType::Q8_0);
        let q8 = Q8_0Matrix::from_bytes(rows, columns, &q8.data().unwrap()).unwrap();
        let pairs = [
            (
                simd::dot_q4_1(&q4.blocks[..per_row], &rows_in),
                portable::dot_q4_1(&q4.blocks[..per_row], &rows_in),
            ),
            (
                simd::dot_q8_0(&q8.blocks[..per_row], &rows_in),
                portable::dot_q8_0(&q8.blocks[..per_row], &rows_in),
            ),
        ];
        for (simd, portable) in pairs {
            for (a, b) in simd.iter().zip(&portable) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
        // Whichever path `simd` took, the plain AVX2 one must agree too.
        #[cfg(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma"
        ))]
        {
            // SAFETY: the build enables AVX2 and FMA.
            let avx2 = unsafe { simd::avx2::dot_q4_1(&q4.blocks[..per_row], &rows_in) };
            let portable = portable::dot_q4_1(&q4.blocks[..per_row], &rows_in);
            for (a, b) in avx2.iter().zip(&portable) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
            let avx2 = unsafe { simd::avx2::dot_q8_0(&q8.blocks[..per_row], &rows_in) };
            let portable = portable::dot_q8_0(&q8.blocks[..per_row], &rows_in);
            for (a, b) in avx2.iter().zip(&portable) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn rows_dequantize_to_what_candle_dequantizes() {
        let (rows, columns) = (4, 64);
        let weights = values(rows * columns, 9);
        for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let tensor = quantized(&weights, rows, columns, dtype);
            let expected: Vec<Vec<f32>> =
                tensor.dequantize(&Device::Cpu).unwrap().to_vec2().unwrap();
            let mut row = vec![0f32; columns];
            let bytes = tensor.data().unwrap();
            match dtype {
                GgmlDType::Q4_1 => Q4_1Matrix::from_bytes(rows, columns, &bytes)
                    .unwrap()
                    .row(2, &mut row),
                _ => Q8_0Matrix::from_bytes(rows, columns, &bytes)
                    .unwrap()
                    .row(2, &mut row),
            }
            assert_eq!(row, expected[2], "{dtype:?}");
        }
    }

    #[test]
    fn malformed_tensors_are_refused() {
        let refused = |result: Result<(), String>| result;
        assert_eq!(
            refused(Q4_1Matrix::from_bytes(2, 33, &[0; 40]).map(|_| ())),
            Err("33 columns are not a multiple of 32".into())
        );
        assert_eq!(
            refused(Q4_1Matrix::from_bytes(2, 32, &[0; 39]).map(|_| ())),
            Err("a 2x32 Q4_1 tensor takes 40 bytes, found 39".into())
        );
        assert_eq!(
            refused(Q8_0Matrix::from_bytes(1, 32, &[0; 33]).map(|_| ())),
            Err("a 1x32 Q8_0 tensor takes 34 bytes, found 33".into())
        );
    }
}
