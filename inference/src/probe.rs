//! The machine's limits, measured in the benchmark's own run so that every figure can
//! be read as a fraction of what this machine could do: how fast its memory streams
//! (what single-stream decode is bound by: every weight is read once per token), and
//! how many int8 multiply-adds a second its cores retire on the instructions our
//! quantised products use (what a batched step is bound by once weights are shared).

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

/// Bytes the bandwidth probe streams: well past any cache of this class of machine.
const STREAMED_BYTES: usize = 512 << 20;
/// Register-resident iterations per thread for the multiply-add probe.
const PEAK_ITERATIONS: usize = 20_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct MachineLimits {
    pub threads: usize,
    /// A streaming read of a buffer larger than the caches, on every thread: the best
    /// of five passes.
    pub memory_bandwidth_gb_s: f64,
    /// int8 multiply-adds per second on every thread, through the instruction sequence
    /// of our kernels' inner loop (`kernel_path`), with operands in registers.
    pub int8_peak_gmac_s: Option<f64>,
    pub kernel_path: &'static str,
}

/// Measures both limits on the rayon pool the kernels run on.
pub fn measure() -> MachineLimits {
    MachineLimits {
        threads: rayon::current_num_threads(),
        memory_bandwidth_gb_s: memory_bandwidth_gb_s(),
        int8_peak_gmac_s: int8_peak_gmac_s(),
        kernel_path: crate::simd::kernel_path(),
    }
}

fn memory_bandwidth_gb_s() -> f64 {
    // Written first, so that every page is mapped before the timed reads.
    let buffer: Vec<u64> = (0..STREAMED_BYTES / 8).map(|i| i as u64).collect();
    let chunk = buffer.len().div_ceil(rayon::current_num_threads());
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        let sum: u64 = buffer.par_chunks(chunk).map(stream_sum).sum();
        best = best.min(started.elapsed().as_secs_f64());
        std::hint::black_box(sum);
    }
    STREAMED_BYTES as f64 / best / 1e9
}

/// A sum the compiler vectorises into full-width loads: eight independent lanes.
fn stream_sum(values: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    for group in values.chunks_exact(8) {
        for (lane, value) in lanes.iter_mut().zip(group) {
            *lane = lane.wrapping_add(*value);
        }
    }
    lanes.iter().fold(0, |sum, lane| sum.wrapping_add(*lane))
}

fn int8_peak_gmac_s() -> Option<f64> {
    let threads = rayon::current_num_threads();
    let started = Instant::now();
    let each: Vec<Option<u64>> = (0..threads)
        .into_par_iter()
        .map(|_| multiply_adds(PEAK_ITERATIONS))
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    let total: u64 = each.into_iter().sum::<Option<u64>>()?;
    Some(total as f64 / seconds / 1e9)
}

/// Runs `iterations` rounds of the kernels' inner loop on registers; the multiply-adds
/// done, or `None` on the portable path (no vector instructions to measure).
fn multiply_adds(iterations: usize) -> Option<u64> {
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    {
        let lanes = if crate::simd::kernel_path() == "avx512vnni" {
            // SAFETY: the path is chosen only where the CPU reports AVX-512 VNNI and VL.
            unsafe { x86::vnni(iterations) }
        } else {
            x86::avx2(iterations)
        };
        Some(lanes)
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    )))]
    {
        let _ = iterations;
        None
    }
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
mod x86 {
    use std::arch::x86_64::*;

    /// Independent chains, enough to cover the instructions' latency.
    const CHAINS: usize = 8;
    /// One 256-bit step multiplies 32 byte pairs.
    const MACS_PER_STEP: u64 = 32;

    /// What both steps start from: weights and a scale the compiler cannot fold, and a
    /// distinct activation per chain.
    ///
    /// # Safety
    /// Needs AVX2, which this module is compiled only with.
    unsafe fn operands() -> (__m256i, __m256, [__m256i; CHAINS]) {
        unsafe {
            let weights = _mm256_set1_epi8(std::hint::black_box(7));
            let scale = _mm256_set1_ps(std::hint::black_box(0.5));
            let activations = std::array::from_fn(|chain| _mm256_set1_epi8(chain as i8 - 4));
            (weights, scale, activations)
        }
    }

    /// The AVX2 kernel's step: `maddubs` (byte pairs to 16 bits), `madd` (to 32 bits),
    /// conversion to floats and a fused multiply-add by the blocks' scales.
    pub(super) fn avx2(iterations: usize) -> u64 {
        // SAFETY: this module is compiled only with AVX2 and FMA enabled.
        unsafe {
            let (weights, scale, mut activations) = operands();
            let ones = _mm256_set1_epi16(1);
            let mut sums = [_mm256_setzero_ps(); CHAINS];
            for _ in 0..iterations {
                for chain in 0..CHAINS {
                    let pairs = _mm256_maddubs_epi16(weights, activations[chain]);
                    let products = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
                    sums[chain] = _mm256_fmadd_ps(scale, products, sums[chain]);
                    // A new operand each step, as the kernel loads one: nothing is
                    // loop-invariant for the compiler to hoist.
                    activations[chain] = _mm256_xor_si256(activations[chain], pairs);
                }
            }
            std::hint::black_box(sums);
        }
        iterations as u64 * CHAINS as u64 * MACS_PER_STEP
    }

    /// The VNNI kernel's step: one `dpbusd`, conversion and a fused multiply-add.
    #[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
    pub(super) fn vnni(iterations: usize) -> u64 {
        // SAFETY: this function runs only where the CPU has AVX-512 VNNI, and AVX2 with it.
        let (weights, scale, mut activations) = unsafe { operands() };
        let mut sums = [_mm256_setzero_ps(); CHAINS];
        for _ in 0..iterations {
            for chain in 0..CHAINS {
                let dots = _mm256_dpbusd_epi32(_mm256_setzero_si256(), weights, activations[chain]);
                sums[chain] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dots), sums[chain]);
                activations[chain] = _mm256_xor_si256(activations[chain], dots);
            }
        }
        std::hint::black_box(sums);
        iterations as u64 * CHAINS as u64 * MACS_PER_STEP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_sum_adds_every_value() {
        let values: Vec<u64> = (1..=100).collect();
        // 100 values: 96 in groups of eight; the probe reads whole groups only.
        assert_eq!(stream_sum(&values), (1..=96).sum::<u64>());
    }

    #[test]
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    fn the_multiply_add_probe_counts_32_per_lane_step() {
        assert_eq!(multiply_adds(10), Some(10 * 8 * 32));
    }
}
