//! The security score.

/// `10 − (3 × critical + 1.5 × high + 0.5 × medium + 0.1 × low)`, floored at 0 and
/// rounded to one decimal; `info` findings cost nothing. So one critical finding is
/// 7.0, four high ones 4.0, and a repository with no findings 10.0. Counts are of all
/// findings, including those past `max_findings` that the report does not list.
pub fn security_score(counts: &[usize; 5]) -> f64 {
    let [critical, high, medium, low, _info] = counts.map(|count| count as f64);
    let penalty = 3.0 * critical + 1.5 * high + 0.5 * medium + 0.1 * low;
    ((10.0 - penalty).max(0.0) * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_follows_the_documented_weights() {
        assert_eq!(security_score(&[0, 0, 0, 0, 7]), 10.0);
        assert_eq!(security_score(&[1, 0, 0, 0, 0]), 7.0);
        assert_eq!(security_score(&[0, 4, 0, 0, 0]), 4.0);
        assert_eq!(security_score(&[0, 1, 1, 3, 0]), 7.7);
        assert_eq!(security_score(&[5, 0, 0, 0, 0]), 0.0);
    }
}
