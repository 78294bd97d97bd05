//! The quality score.

/// What the quality score is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityInputs {
    pub functions: usize,
    /// Functions whose complexity is over the complexity threshold.
    pub complex_functions: usize,
    /// Functions longer than the long-function threshold (in lines).
    pub long_functions: usize,
    /// Issues all linters that ran reported.
    pub lint_issues: usize,
    /// Lines of the analysed source files.
    pub lines: usize,
    pub security_score: f64,
}

/// `10 − 4·(complex_functions / functions) − 2·(long_functions / functions)
///  − min(2, (lint_issues per 1,000 lines) / 5) − 0.2·(10 − security_score)`,
/// clamped to [0, 10] and rounded to one decimal.
///
/// So every function too complex costs at most 4 points, every function too long at most
/// 2, lint at most 2 (reached at 10 issues per 1,000 lines) and security at most 2 (a
/// security score of 0). A repository without functions has no complexity or length
/// penalty; one without lines no lint penalty.
pub fn quality_score(inputs: &QualityInputs) -> f64 {
    let share = |count: usize| {
        if inputs.functions == 0 {
            0.0
        } else {
            count as f64 / inputs.functions as f64
        }
    };
    let lint_per_thousand_lines = if inputs.lines == 0 {
        0.0
    } else {
        inputs.lint_issues as f64 * 1000.0 / inputs.lines as f64
    };
    let security = inputs.security_score.clamp(0.0, 10.0);
    let score = 10.0
        - 4.0 * share(inputs.complex_functions)
        - 2.0 * share(inputs.long_functions)
        - (lint_per_thousand_lines / 5.0).min(2.0)
        - 0.2 * (10.0 - security);
    (score.clamp(0.0, 10.0) * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> QualityInputs {
        QualityInputs {
            functions: 10,
            complex_functions: 0,
            long_functions: 0,
            lint_issues: 0,
            lines: 1000,
            security_score: 10.0,
        }
    }

    #[test]
    fn score_follows_the_documented_formula() {
        assert_eq!(quality_score(&inputs()), 10.0);
        // A quarter too complex: 10 - 4 * 0.25 = 9.0.
        let complex = QualityInputs {
            functions: 4,
            complex_functions: 1,
            ..inputs()
        };
        assert_eq!(quality_score(&complex), 9.0);
        // Half too long: 10 - 2 * 0.5 = 9.0.
        let long = QualityInputs {
            long_functions: 5,
            ..inputs()
        };
        assert_eq!(quality_score(&long), 9.0);
        // 4 issues in 1,000 lines: 10 - 4 / 5 = 9.2; 500 issues: capped at 2.
        let lint = QualityInputs {
            lint_issues: 4,
            ..inputs()
        };
        assert_eq!(quality_score(&lint), 9.2);
        let noisy = QualityInputs {
            lint_issues: 500,
            ..inputs()
        };
        assert_eq!(quality_score(&noisy), 8.0);
        // Security 7.0: 10 - 0.2 * 3 = 9.4.
        let insecure = QualityInputs {
            security_score: 7.0,
            ..inputs()
        };
        assert_eq!(quality_score(&insecure), 9.4);
        // Everything at once: 10 - 4 - 2 - 2 - 2 = 0.
        let worst = QualityInputs {
            functions: 2,
            complex_functions: 2,
            long_functions: 2,
            lint_issues: 100,
            lines: 10,
            security_score: 0.0,
        };
        assert_eq!(quality_score(&worst), 0.0);
    }

    #[test]
    fn an_empty_repository_is_not_penalised() {
        let empty = QualityInputs {
            functions: 0,
            lines: 0,
            ..inputs()
        };
        assert_eq!(quality_score(&empty), 10.0);
    }
}
