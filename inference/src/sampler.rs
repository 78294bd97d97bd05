//! Choosing the next token from a pass's scores: the most likely one at temperature 0,
//! else one drawn from the softmax at that temperature, cut first to the `top_k` most
//! likely tokens and then to the smallest set of them holding `top_p` of the
//! probability (the nucleus).
//!
//! candle's sampler sorts every probability of the vocabulary (49,152 for the default
//! model) on each token to find the nucleus. The nucleus is the head of that order, and
//! at the temperatures agents use it is a few tokens long: here the most likely 64 are
//! selected (linear time) and sorted, and only when they hold less than `top_p` is the
//! selection widened, eight times each round, up to the whole vocabulary. The set kept
//! is the one a full sort keeps.

use crate::sequence::SamplingParams;

/// The first selection for the nucleus; widened eight times while it falls short.
const FIRST_WIDTH: usize = 64;

pub struct Sampler {
    temperature: f32,
    top_k: Option<usize>,
    top_p: Option<f32>,
    repeat_penalty: f32,
    rng: SplitMix64,
    /// (token, weight) for every token, kept between calls to spare the allocation.
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    pub fn new(params: &SamplingParams) -> Self {
        Self {
            temperature: params.temperature as f32,
            top_k: params.top_k,
            top_p: params.top_p.map(|p| p as f32).filter(|p| *p < 1.0),
            repeat_penalty: params.repeat_penalty,
            rng: SplitMix64(params.seed),
            candidates: Vec::new(),
        }
    }

    /// The next token from `logits` (one score per token of the vocabulary), after the
    /// repeat penalty has made each token of `recent` less likely.
    pub fn sample(&mut self, logits: &mut [f32], recent: &[u32]) -> u32 {
        if self.repeat_penalty != 1.0 {
            penalise(logits, recent, self.repeat_penalty);
        }
        let most = argmax(logits);
        if self.temperature == 0.0 {
            return most;
        }
        let max = logits[most as usize];
        if !max.is_finite() {
            return most;
        }
        // exp((score - max) / T): the softmax up to its sum, which is never needed.
        self.candidates.clear();
        self.candidates
            .extend(logits.iter().enumerate().map(|(token, &score)| {
                let weight = ((score - max) / self.temperature).exp();
                (token as u32, if weight.is_nan() { 0.0 } else { weight })
            }));
        let mut kept = self.candidates.len();
        if let Some(k) = self.top_k.filter(|k| *k < kept) {
            self.candidates
                .select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
            kept = k;
        }
        if let Some(p) = self.top_p {
            kept = nucleus(&mut self.candidates[..kept], p);
        }
        self.draw(kept)
    }

    /// One of the first `kept` candidates, with chances in proportion to their weights.
    fn draw(&mut self, kept: usize) -> u32 {
        let candidates = &self.candidates[..kept];
        let total: f64 = candidates
            .iter()
            .map(|(_, weight)| f64::from(*weight))
            .sum();
        let mut left = self.rng.next_unit() * total;
        for (token, weight) in candidates {
            left -= f64::from(*weight);
            if left < 0.0 {
                return *token;
            }
        }
        // Rounding left a sliver past the last weight: the last token takes it.
        candidates.last().map_or(0, |(token, _)| *token)
    }
}

/// How many of `candidates` (reordered, most likely first) make the nucleus: each token
/// is kept while the weight before it is under `p` of the whole, as in a full sort.
fn nucleus(candidates: &mut [(u32, f32)], p: f32) -> usize {
    let total: f64 = candidates
        .iter()
        .map(|(_, weight)| f64::from(*weight))
        .sum();
    let mass = f64::from(p) * total;
    let mut width = FIRST_WIDTH;
    loop {
        let width_now = width.min(candidates.len());
        if width_now < candidates.len() {
            candidates.select_nth_unstable_by(width_now - 1, |a, b| b.1.total_cmp(&a.1));
        }
        let head = &mut candidates[..width_now];
        head.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        let mut before = 0.0;
        for (index, (_, weight)) in head.iter().enumerate() {
            if before >= mass {
                return index;
            }
            before += f64::from(*weight);
        }
        if width_now == candidates.len() {
            return width_now;
        }
        width *= 8;
    }
}

/// The index of the highest score (the first of equals); NaN scores lose.
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (index, score) in logits.iter().enumerate() {
        if *score > logits[best] || logits[best].is_nan() {
            best = index;
        }
    }
    best as u32
}

/// Makes each token of `recent` less likely, once however often it occurs: a positive
/// score is divided by `penalty`, a negative one multiplied (as candle and llama.cpp do).
fn penalise(logits: &mut [f32], recent: &[u32], penalty: f32) {
    let mut seen = std::collections::HashSet::with_capacity(recent.len());
    for &token in recent {
        let Some(score) = logits.get_mut(token as usize) else {
            continue;
        };
        if seen.insert(token) {
            *score = if *score >= 0.0 {
                *score / penalty
            } else {
                *score * penalty
            };
        }
    }
}

/// A seed no other request shares: each request that does not name one draws anew, so
/// that asking again (at a temperature above 0) can give another answer. Taken from the
/// random keys the standard library seeds each hash map with.
pub fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A seeded generator (Steele, Lea and Flood's SplitMix64): the same seed draws the same
/// tokens, which is all sampling asks of it.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    fn next_unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f64, top_k: Option<usize>, top_p: Option<f64>) -> SamplingParams {
        SamplingParams {
            temperature,
            top_k,
            top_p,
            ..SamplingParams::greedy()
        }
    }

    /// Scores whose softmax at temperature 1 is `probabilities` (each above 0).
    fn scores(probabilities: &[f64]) -> Vec<f32> {
        probabilities.iter().map(|p| p.ln() as f32).collect()
    }

    /// How often each token is drawn in `draws` samples.
    fn frequencies(sampler: &mut Sampler, logits: &[f32], draws: usize) -> Vec<f64> {
        let mut counts = vec![0usize; logits.len()];
        for _ in 0..draws {
            let token = sampler.sample(&mut logits.to_vec(), &[]);
            counts[token as usize] += 1;
        }
        counts.iter().map(|c| *c as f64 / draws as f64).collect()
    }

    #[test]
    fn greedy_takes_the_highest_score_and_ignores_nan() {
        let mut sampler = Sampler::new(&SamplingParams::greedy());
        assert_eq!(sampler.sample(&mut [0.1, 2.0, f32::NAN, 2.0], &[]), 1);
        assert_eq!(sampler.sample(&mut [f32::NAN, -1.0], &[]), 1);
    }

    #[test]
    fn the_nucleus_is_the_head_of_a_full_sort() {
        // A flat tail of 5,000 tokens under a head of 3: the nucleus at 0.9 needs the tail
        // too, past the first selection of 64.
        let mut probabilities = vec![0.3, 0.2, 0.1];
        probabilities.extend(std::iter::repeat_n(0.4 / 5000.0, 5000));
        for p in [0.25, 0.45, 0.55, 0.9, 0.999] {
            let mut candidates: Vec<(u32, f32)> = probabilities
                .iter()
                .enumerate()
                .map(|(token, weight)| (token as u32, *weight as f32))
                .collect();
            let mut by_sort = candidates.clone();
            by_sort.sort_by(|a, b| b.1.total_cmp(&a.1));
            let total: f64 = by_sort.iter().map(|(_, w)| f64::from(*w)).sum();
            let mut before = 0.0;
            let expected = by_sort
                .iter()
                .take_while(|(_, weight)| {
                    let kept = before < f64::from(p as f32) * total;
                    before += f64::from(*weight);
                    kept
                })
                .count();
            assert_eq!(nucleus(&mut candidates, p as f32), expected, "top_p {p}");
        }
    }

    #[test]
    fn draws_follow_the_softmax_inside_the_nucleus() {
        let logits = scores(&[0.5, 0.3, 0.15, 0.05]);
        let mut all = Sampler::new(&params(1.0, None, None));
        let seen = frequencies(&mut all, &logits, 20_000);
        for (seen, expected) in seen.iter().zip([0.5, 0.3, 0.15, 0.05]) {
            assert!((seen - expected).abs() < 0.02, "{seen} vs {expected}");
        }
        // top_p 0.7 keeps 0.5 and 0.3 (0.5 is under 0.7 before the second): 5/8 and 3/8.
        let mut nucleus = Sampler::new(&params(1.0, None, Some(0.7)));
        let seen = frequencies(&mut nucleus, &logits, 20_000);
        assert!((seen[0] - 0.625).abs() < 0.02, "{seen:?}");
        assert!((seen[1] - 0.375).abs() < 0.02, "{seen:?}");
        assert_eq!(seen[2] + seen[3], 0.0, "{seen:?}");
        // top_k 1 is greedy whatever the temperature.
        let mut top_one = Sampler::new(&params(1.5, Some(1), Some(0.9)));
        assert_eq!(frequencies(&mut top_one, &logits, 200)[0], 1.0);
    }

    #[test]
    fn a_higher_temperature_flattens_the_draws() {
        let logits = scores(&[0.7, 0.2, 0.1]);
        let cold = frequencies(&mut Sampler::new(&params(0.3, None, None)), &logits, 5000);
        let hot = frequencies(&mut Sampler::new(&params(2.0, None, None)), &logits, 5000);
        assert!(cold[0] > 0.95 && hot[0] < 0.55, "{cold:?} {hot:?}");
    }

    #[test]
    fn the_same_seed_draws_the_same_tokens() {
        let logits = scores(&[0.25; 4]);
        let run = |seed| {
            let mut sampler = Sampler::new(&SamplingParams {
                seed,
                ..params(1.0, None, Some(0.9))
            });
            (0..32)
                .map(|_| sampler.sample(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn fresh_seeds_differ() {
        let seeds: std::collections::HashSet<u64> = (0..100).map(|_| fresh_seed()).collect();
        assert_eq!(seeds.len(), 100);
    }

    #[test]
    fn recent_tokens_are_penalised_once_each() {
        let mut logits = vec![2.0, -2.0, 1.0];
        penalise(&mut logits, &[0, 1, 0, 9], 2.0);
        assert_eq!(logits, [1.0, -4.0, 1.0]);
        let mut sampler = Sampler::new(&SamplingParams {
            repeat_penalty: 4.0,
            ..SamplingParams::greedy()
        });
        assert_eq!(sampler.sample(&mut [2.0, 1.0], &[0]), 1);
    }
}
