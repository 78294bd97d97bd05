//! Our matrix products for quantised weights: Q4_1 (the default model's layers) and
//! Q8_0 (its embeddings, which also serve as its output layer).
//!
//! candle 0.11 has no SIMD kernel for Q4_1: its dot product falls back to scalar code,
//! about 12 GMAC/s on this machine, and a batch of rows costs exactly rows × one row, so
//! batching gained nothing. These kernels quantise the activations to 8 bits per block
//! of 32 (as llama.cpp does) once per product and multiply with AVX2 integer
//! instructions, or AVX-512 VNNI where the CPU has it. The weights are repacked at load
//! so that one instruction serves eight output columns ([`interleaved`]); each group of
//! weights then serves a tile of up to four activation rows while it is in registers,
//! so a batched pass reads and decodes the weights once for all its sequences. Output
//! columns are split over the rayon pool. Without AVX2 (other targets) the same
//! arithmetic runs in plain Rust ([`portable`], also the reference the SIMD paths are
//! tested against).

mod interleaved;
mod portable;
mod simd;
#[cfg(test)]
mod tests;

use half::f16;

pub use interleaved::{Q4_1Matrix, Q8_0Matrix};

const BLOCK: usize = 32;

/// A block of 32 quantised weights as a GGUF file stores it.
pub trait WeightBlock: Copy + Send + Sync + 'static {
    /// Bytes per block in the file.
    const BYTES: usize;
    const NAME: &'static str;
    /// What pads a group of columns beyond a matrix's last row.
    const ZERO: Self;
    fn parse(raw: &[u8]) -> Self;
    fn dequantize(&self, out: &mut [f32]);
    /// The block's product with one activation block, in plain Rust: the reference.
    fn dot(&self, a: &ActivationBlock) -> f32;
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

/// An activation block: 32 signed bytes meaning `d × q`, their sum, and `s = d × Σq`.
#[derive(Clone, Copy)]
pub struct ActivationBlock {
    d: f32,
    s: f32,
    sum: i32,
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
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    {
        if simd::vnni() { "avx512vnni" } else { "avx2" }
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )))]
    {
        "portable"
    }
}

impl WeightBlock for Q4_1Block {
    const BYTES: usize = 20;
    const NAME: &'static str = "Q4_1";
    const ZERO: Self = Self {
        d: f16::ZERO,
        m: f16::ZERO,
        qs: [0; 16],
    };

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

    fn dot(&self, a: &ActivationBlock) -> f32 {
        let mut products = 0i32;
        for j in 0..16 {
            let low = i32::from(self.qs[j] & 0x0f);
            let high = i32::from(self.qs[j] >> 4);
            products += low * i32::from(a.qs[j]) + high * i32::from(a.qs[j + 16]);
        }
        self.d.to_f32() * a.d * products as f32 + self.m.to_f32() * a.s
    }
}

impl WeightBlock for Q8_0Block {
    const BYTES: usize = 34;
    const NAME: &'static str = "Q8_0";
    const ZERO: Self = Self {
        d: f16::ZERO,
        qs: [0; 32],
    };

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

    fn dot(&self, a: &ActivationBlock) -> f32 {
        let products: i32 = self
            .qs
            .iter()
            .zip(&a.qs)
            .map(|(x, y)| i32::from(*x) * i32::from(*y))
            .sum();
        self.d.to_f32() * a.d * products as f32
    }
}

/// The blocks of a `[rows, columns]` tensor from its raw GGUF bytes, row after row.
fn parse_blocks<B: WeightBlock>(
    rows: usize,
    columns: usize,
    bytes: &[u8],
) -> Result<Vec<B>, String> {
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
    Ok(bytes.chunks_exact(B::BYTES).map(B::parse).collect())
}

/// `input`'s rows quantised, block by block, once for the whole product.
fn quantize_rows(input: &[f32]) -> Vec<ActivationBlock> {
    input.chunks_exact(BLOCK).map(quantize).collect()
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
        sum,
        qs,
    }
}
