//! Our matrix product for Q4_1 weights (the default model's format).
//!
//! candle 0.11 has no SIMD kernel for Q4_1: its dot product falls back to scalar code,
//! about 12 GMAC/s on this machine, and a batch of rows costs exactly rows × one row, so
//! batching gained nothing. This kernel quantises the activations to 8 bits per block of
//! 32 (as llama.cpp's Q8_1), multiplies with AVX2 integer instructions, and unpacks each
//! block of weights once for up to four activation rows, so a batched pass reads and
//! decodes the weights once for all its sequences. Output columns are split over the
//! rayon pool. Without AVX2 (other targets) the same arithmetic runs in plain Rust.

use half::f16;
use rayon::prelude::*;

const BLOCK: usize = 32;
/// Output columns per parallel task: enough work to outweigh scheduling.
const COLUMNS_PER_TASK: usize = 32;
/// Activation rows that share one unpacked weight block.
const ROW_GROUP: usize = 4;

/// A weight block: 32 four-bit values `q`, meaning `d × q + m`.
#[derive(Clone, Copy)]
struct WeightBlock {
    d: f32,
    m: f32,
    /// Byte j holds value j (low nibble) and value j + 16 (high nibble), as in GGUF.
    qs: [u8; 16],
}

/// An activation block: 32 signed bytes meaning `d × q`, and `s = d × Σq`.
#[derive(Clone, Copy)]
struct ActivationBlock {
    d: f32,
    s: f32,
    qs: [i8; 32],
}

/// A Q4_1 matrix of `rows` output features × `columns` inputs.
pub struct Q4_1Matrix {
    rows: usize,
    columns: usize,
    blocks: Vec<WeightBlock>,
}

impl Q4_1Matrix {
    /// From the raw GGUF bytes of a `[rows, columns]` Q4_1 tensor (20 bytes per block).
    pub fn from_bytes(rows: usize, columns: usize, bytes: &[u8]) -> Result<Self, String> {
        if !columns.is_multiple_of(BLOCK) {
            return Err(format!("{columns} columns are not a multiple of {BLOCK}"));
        }
        let count = rows * columns / BLOCK;
        if bytes.len() != count * 20 {
            return Err(format!(
                "a {rows}x{columns} Q4_1 tensor takes {} bytes, found {}",
                count * 20,
                bytes.len()
            ));
        }
        let blocks = bytes
            .chunks_exact(20)
            .map(|raw| {
                let half = |at: usize| f16::from_le_bytes([raw[at], raw[at + 1]]).to_f32();
                let mut qs = [0u8; 16];
                qs.copy_from_slice(&raw[4..20]);
                WeightBlock {
                    d: half(0),
                    m: half(2),
                    qs,
                }
            })
            .collect();
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

    /// `input` is `m × columns` (row-major); returns `m × rows`.
    pub fn matmul(&self, input: &[f32]) -> Vec<f32> {
        let per_row = self.columns / BLOCK;
        let m = input.len() / self.columns.max(1);
        let activations: Vec<ActivationBlock> = input.chunks_exact(BLOCK).map(quantize).collect();
        let tasks: Vec<(usize, Vec<f32>)> = (0..self.rows.div_ceil(COLUMNS_PER_TASK))
            .into_par_iter()
            .map(|task| {
                let first = task * COLUMNS_PER_TASK;
                let last = self.rows.min(first + COLUMNS_PER_TASK);
                let mut partial = vec![0f32; m * (last - first)];
                let width = last - first;
                for column in first..last {
                    let weights = &self.blocks[column * per_row..(column + 1) * per_row];
                    let row_blocks = |r: usize| &activations[r * per_row..(r + 1) * per_row];
                    let mut row = 0;
                    while row + ROW_GROUP <= m {
                        let rows: [&[ActivationBlock]; ROW_GROUP] =
                            std::array::from_fn(|r| row_blocks(row + r));
                        for (r, sum) in dot_rows(weights, &rows).into_iter().enumerate() {
                            partial[(row + r) * width + (column - first)] = sum;
                        }
                        row += ROW_GROUP;
                    }
                    for row in row..m {
                        let [sum] = dot_rows(weights, &[row_blocks(row)]);
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

/// Dot products of one weight row with `N` activation rows.
fn dot_rows<const N: usize>(weights: &[WeightBlock], rows: &[&[ActivationBlock]; N]) -> [f32; N] {
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    {
        // SAFETY: compiled only where AVX2 and FMA are enabled for the whole build
        // (.cargo/config.toml targets x86-64-v3), so the instructions exist.
        unsafe { avx2::dot_rows(weights, rows) }
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    )))]
    {
        dot_rows_portable(weights, rows)
    }
}

#[cfg_attr(
    all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ),
    allow(dead_code)
)]
fn dot_rows_portable<const N: usize>(
    weights: &[WeightBlock],
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
                w.d * a.d * products as f32 + w.m * a.s
            })
            .sum()
    })
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{ActivationBlock, WeightBlock};

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
    pub(super) fn dot_rows<const N: usize>(
        weights: &[WeightBlock],
        rows: &[&[ActivationBlock]; N],
    ) -> [f32; N] {
        let low_nibbles = _mm_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let mut accumulators = [_mm256_setzero_ps(); N];
        let mut offsets = [0f32; N];
        for (index, w) in weights.iter().enumerate() {
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
                    _mm256_fmadd_ps(_mm256_set1_ps(w.d * a.d), products, accumulators[r]);
                offsets[r] += w.m * a.s;
            }
        }
        std::array::from_fn(|r| horizontal_sum(accumulators[r]) + offsets[r])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Q4_1 tensor's bytes for `values` (as GGUF stores them), via candle's quantiser.
    fn q4_1_bytes(values: &[f32], rows: usize, columns: usize) -> Vec<u8> {
        let tensor =
            candle_core::Tensor::from_slice(values, (rows, columns), &candle_core::Device::Cpu)
                .unwrap();
        candle_core::quantized::QTensor::quantize(&tensor, candle_core::quantized::GgmlDType::Q4_1)
            .unwrap()
            .data()
            .unwrap()
            .into_owned()
    }

    fn values(count: usize, seed: u32) -> Vec<f32> {
        (0..count)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2000) as f32 / 1000.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn the_product_matches_candles_for_one_row_and_for_batches() {
        let (rows, columns) = (70, 128);
        let weights = values(rows * columns, 7);
        let bytes = q4_1_bytes(&weights, rows, columns);
        let ours = Q4_1Matrix::from_bytes(rows, columns, &bytes).unwrap();
        let theirs = candle_core::quantized::QMatMul::from_qtensor(
            candle_core::quantized::QTensor::quantize(
                &candle_core::Tensor::from_slice(
                    &weights,
                    (rows, columns),
                    &candle_core::Device::Cpu,
                )
                .unwrap(),
                candle_core::quantized::GgmlDType::Q4_1,
            )
            .unwrap(),
        )
        .unwrap();
        for m in [1, 3, 4, 9] {
            let input = values(m * columns, 11 + m as u32);
            let expected: Vec<f32> = candle_core::Module::forward(
                &theirs,
                &candle_core::Tensor::from_slice(&input, (m, columns), &candle_core::Device::Cpu)
                    .unwrap(),
            )
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
            let got = ours.matmul(&input);
            assert_eq!(got.len(), expected.len());
            for (index, (a, b)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    (a - b).abs() < 1e-3 * (1.0 + b.abs()),
                    "m={m} [{index}]: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn the_portable_path_agrees_with_the_simd_path() {
        let (rows, columns) = (8, 64);
        let bytes = q4_1_bytes(&values(rows * columns, 3), rows, columns);
        let matrix = Q4_1Matrix::from_bytes(rows, columns, &bytes).unwrap();
        let input = values(4 * columns, 5);
        let activations: Vec<ActivationBlock> = input.chunks_exact(BLOCK).map(quantize).collect();
        let per_row = columns / BLOCK;
        let rows_in: [&[ActivationBlock]; ROW_GROUP] =
            std::array::from_fn(|r| &activations[r * per_row..(r + 1) * per_row]);
        let weights = &matrix.blocks[..per_row];
        let simd = dot_rows(weights, &rows_in);
        let portable = dot_rows_portable(weights, &rows_in);
        for (a, b) in simd.iter().zip(&portable) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn malformed_tensors_are_refused() {
        assert!(Q4_1Matrix::from_bytes(2, 33, &[0; 40]).is_err());
        assert!(Q4_1Matrix::from_bytes(2, 32, &[0; 39]).is_err());
    }
}
