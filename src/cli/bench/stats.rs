//! The few statistics the benchmarks report: a median, and how far a median measured
//! on a noisy machine can be trusted.

pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A confidence interval of at least 95% for the median of the distribution `values`
/// were drawn from, assuming nothing about its shape: the order statistics whose ranks
/// the binomial distribution with p = ½ puts 2.5% outside on each side. `None` with
/// fewer than 6 values, which cannot give such an interval.
pub fn median_interval(values: &[f64]) -> Option<(f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = lower_rank(sorted.len())?;
    Some((sorted[rank - 1], sorted[sorted.len() - rank]))
}

/// The largest k ≥ 1 with P(B ≤ k - 1) ≤ 0.025 for B ~ Binomial(n, ½).
fn lower_rank(n: usize) -> Option<usize> {
    let total = 2f64.powi(i32::try_from(n).ok()?);
    let (mut below, mut choose, mut rank) = (0.0, 1.0, None);
    for k in 1..=n / 2 {
        // `below` is P(B ≤ k - 1) once C(n, k - 1) is added.
        below += choose / total;
        if below > 0.025 {
            break;
        }
        rank = Some(k);
        choose = choose * (n - k + 1) as f64 / k as f64;
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_values_give_no_interval_and_six_give_the_extremes() {
        assert_eq!(median_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
        let six = [6.0, 1.0, 5.0, 2.0, 4.0, 3.0];
        assert_eq!(median_interval(&six), Some((1.0, 6.0)));
    }

    #[test]
    fn twenty_one_values_give_the_sixth_and_sixteenth() {
        // P(B ≤ 5) = 27,896 / 2^21 = 0.0133 and P(B ≤ 6) = 0.0392 for n = 21.
        let values: Vec<f64> = (1..=21).rev().map(f64::from).collect();
        assert_eq!(median_interval(&values), Some((6.0, 16.0)));
    }

    #[test]
    fn the_median_of_nothing_is_not_a_number() {
        assert!(median(std::iter::empty()).is_nan());
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
    }
}
