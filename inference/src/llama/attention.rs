//! Causal attention of one sequence's new tokens over its half-precision cache, for one
//! key/value head and the query heads that share it (grouped-query attention).
//!
//! Queries go through the cache in tiles of [`QUERY_TILE`] tokens: each block of
//! [`KEY_BLOCK`] keys and values is widened from f16 once for every query of the tile
//! and every head of the group, where a query at a time widened the whole context for
//! each. The softmax is online (a running maximum and sum per query, the sum of values
//! rescaled as the maximum moves), so no score buffer grows with the context, and its
//! exponentials are computed eight at a time ([`exp_in_place`]).

use half::f16;
use half::slice::HalfFloatSliceExt;

/// Query tokens that share one widening of the keys and values.
const QUERY_TILE: usize = 16;
/// Positions widened at a time: a block of keys and values stays in the L1 cache.
const KEY_BLOCK: usize = 64;

/// The shape of one job's work.
pub(super) struct HeadGroup {
    pub head_dim: usize,
    /// Query heads per key/value head.
    pub group: usize,
    /// Values per position in one layer of the cache (every key/value head).
    pub kv_width: usize,
    pub kv_head: usize,
    pub scale: f32,
}

/// A query's running softmax: largest score so far, sum of exponentials, and the
/// weighted sum of values, all relative to that largest score.
struct Running {
    max: f32,
    sum: f32,
    values: Vec<f32>,
}

impl HeadGroup {
    /// Attention for `count` new tokens whose first is at `position`; `query(t, g)` is
    /// token t's query for head g of the group. Returns `[t][g][head_dim]`.
    pub(super) fn attend<'q>(
        &self,
        (keys, values): (&[f16], &[f16]),
        position: usize,
        count: usize,
        query: impl Fn(usize, usize) -> &'q [f32],
    ) -> Vec<f32> {
        let mut out = vec![0f32; count * self.group * self.head_dim];
        let mut widened = Widened::new(self.head_dim);
        let mut scores = Vec::with_capacity(KEY_BLOCK);
        for tile in (0..count).step_by(QUERY_TILE) {
            let tokens = tile..count.min(tile + QUERY_TILE);
            let mut running: Vec<Running> = (0..tokens.len() * self.group)
                .map(|_| Running::new(self.head_dim))
                .collect();
            // The last token of the tile sees the most positions.
            let visible = position + tokens.end;
            for block in (0..visible).step_by(KEY_BLOCK) {
                let block = block..visible.min(block + KEY_BLOCK);
                widened.load(self, keys, values, block.clone());
                for (index, state) in running.iter_mut().enumerate() {
                    let (t, g) = (tokens.start + index / self.group, index % self.group);
                    // Causal: token t sees positions up to its own.
                    let seen = (position + t + 1).min(block.end);
                    if seen <= block.start {
                        continue;
                    }
                    let rows = seen - block.start;
                    widened.scores(query(t, g), rows, self.scale, &mut scores);
                    state.take(&mut scores, &widened.values[..rows * self.head_dim]);
                }
            }
            for (index, state) in running.iter().enumerate() {
                let row = (tokens.start * self.group + index) * self.head_dim;
                state.finish(&mut out[row..row + self.head_dim]);
            }
        }
        out
    }
}

/// One block of keys and values widened to f32, `[position][head_dim]`.
struct Widened {
    head_dim: usize,
    keys: Vec<f32>,
    values: Vec<f32>,
}

impl Widened {
    fn new(head_dim: usize) -> Self {
        Self {
            head_dim,
            keys: vec![0f32; KEY_BLOCK * head_dim],
            values: vec![0f32; KEY_BLOCK * head_dim],
        }
    }

    fn load(
        &mut self,
        shape: &HeadGroup,
        keys: &[f16],
        values: &[f16],
        block: std::ops::Range<usize>,
    ) {
        let width = self.head_dim;
        for (row, position) in block.enumerate() {
            let from = position * shape.kv_width + shape.kv_head * width;
            let to = row * width..(row + 1) * width;
            keys[from..from + width].convert_to_f32_slice(&mut self.keys[to.clone()]);
            values[from..from + width].convert_to_f32_slice(&mut self.values[to]);
        }
    }

    /// The scaled scores of `query` against the first `rows` keys, into `scores`.
    fn scores(&self, query: &[f32], rows: usize, scale: f32, scores: &mut Vec<f32>) {
        scores.clear();
        scores.extend(
            self.keys
                .chunks_exact(self.head_dim)
                .take(rows)
                .map(|key| dot(query, key) * scale),
        );
    }
}

impl Running {
    fn new(head_dim: usize) -> Self {
        Self {
            max: f32::NEG_INFINITY,
            sum: 0.0,
            values: vec![0f32; head_dim],
        }
    }

    /// Folds in one block's `scores` (consumed as scratch) and their `values` rows.
    fn take(&mut self, scores: &mut [f32], values: &[f32]) {
        let block_max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let max = self.max.max(block_max);
        // What the sums so far were relative to, moved to the new maximum (0 at first).
        let rescale = (self.max - max).exp();
        for score in scores.iter_mut() {
            *score -= max;
        }
        exp_in_place(scores);
        self.sum = self.sum * rescale + scores.iter().sum::<f32>();
        for value in &mut self.values {
            *value *= rescale;
        }
        let width = self.values.len();
        for (weight, row) in scores.iter().zip(values.chunks_exact(width)) {
            for (sum, value) in self.values.iter_mut().zip(row) {
                *sum += weight * value;
            }
        }
        self.max = max;
    }

    fn finish(&self, out: &mut [f32]) {
        let inverse = 1.0 / self.sum;
        for (o, value) in out.iter_mut().zip(&self.values) {
            *o = value * inverse;
        }
    }
}

pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums let the compiler keep the loop in SIMD registers.
    let mut sums = [0f32; 8];
    let chunks = a.len() / 8;
    for i in 0..chunks {
        for lane in 0..8 {
            sums[lane] += a[i * 8 + lane] * b[i * 8 + lane];
        }
    }
    let mut total: f32 = sums.iter().sum();
    for i in chunks * 8..a.len() {
        total += a[i] * b[i];
    }
    total
}

/// `eˣ` of each value, within 2 parts in 10⁷ of `f32::exp` on [-87, 88] (beyond, the
/// ends of that range's): written without branches or calls so that the compiler runs it
/// eight lanes at a time, where `f32::exp` is a call per value. The softmax here and the
/// SiLU of the feed-forward layers use it.
pub(super) fn exp_in_place(values: &mut [f32]) {
    for value in values.iter_mut() {
        *value = exp(*value);
    }
}

#[inline(always)]
fn exp(x: f32) -> f32 {
    // eˣ = 2ⁿ × 2ᶠ with n = round(x log₂e) and f in [-½, ½]. Clamped so that 2ⁿ stays a
    // normal float: below e⁻⁸⁷ the result is about 10⁻³⁸, which a softmax reads as 0.
    // ln 2 in two parts (Cody and Waite): n × the first is exact for the n here, so f
    // keeps its precision where x log₂e rounded would lose 5 parts in 10⁶ near 88.
    const LN_2_HIGH: f32 = 0.693_359_4;
    const LN_2_LOW: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    // Adding and taking away 1.5 × 2²³ rounds to the nearest integer, in one lane op.
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let f = (x - n * LN_2_HIGH) - n * LN_2_LOW;
    // eᶠ for |f| ≤ ½ ln 2, Taylor to the 7th power: error below 2 × 10⁻⁸.
    let p = 1.0
        + f * (1.0
            + f * (0.5
                + f * (1.0 / 6.0
                    + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0 + f / 5040.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_parts_in_ten_million_of_the_library() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let mut value = [x];
            exp_in_place(&mut value);
            let error = ((value[0] - x.exp()) / x.exp()).abs();
            worst = worst.max(error);
            x += 0.0137;
        }
        assert!(worst < 2e-7, "relative error up to {worst}");
        let mut far = [-1000.0, 0.0];
        exp_in_place(&mut far);
        assert!(far[0] < 1e-37 && far[0] >= 0.0, "{}", far[0]);
        assert_eq!(far[1], 1.0);
    }

    /// The tiled, online attention against the plain definition: every query's softmax
    /// over every position it sees, computed in f64.
    #[test]
    fn tiled_attention_matches_the_definition() {
        let (head_dim, group, kv_heads) = (8, 3, 2);
        let kv_width = kv_heads * head_dim;
        let (position, count) = (70, 40); // tiles of 16 and blocks of 64 both cut it
        let total = position + count;
        let value = |i: usize| (((i * 7919) % 1000) as f32 / 500.0 - 1.0) * 0.8;
        let keys: Vec<f16> = (0..total * kv_width)
            .map(|i| f16::from_f32(value(i)))
            .collect();
        let values: Vec<f16> = (0..total * kv_width)
            .map(|i| f16::from_f32(value(i + 31)))
            .collect();
        let queries: Vec<f32> = (0..count * group * head_dim)
            .map(|i| value(i + 77) * 3.0)
            .collect();
        let query = |t: usize, g: usize| &queries[(t * group + g) * head_dim..][..head_dim];
        for kv_head in 0..kv_heads {
            let shape = HeadGroup {
                head_dim,
                group,
                kv_width,
                kv_head,
                scale: 0.35,
            };
            let ours = shape.attend((&keys, &values), position, count, query);
            for t in 0..count {
                for g in 0..group {
                    let seen = position + t + 1;
                    let at = |cache: &[f16], p: usize, d: usize| {
                        f64::from(cache[p * kv_width + kv_head * head_dim + d].to_f32())
                    };
                    let scores: Vec<f64> = (0..seen)
                        .map(|p| {
                            let q = query(t, g);
                            (0..head_dim)
                                .map(|d| f64::from(q[d]) * at(&keys, p, d))
                                .sum::<f64>()
                                * 0.35
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    for d in 0..head_dim {
                        let expected: f64 = (0..seen)
                            .map(|p| weights[p] * at(&values, p, d))
                            .sum::<f64>()
                            / total;
                        let got = f64::from(ours[(t * group + g) * head_dim + d]);
                        assert!(
                            (got - expected).abs() < 1e-5,
                            "t {t} g {g} d {d}: {got} vs {expected}"
                        );
                    }
                }
            }
        }
    }
}
