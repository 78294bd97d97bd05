//! Version ordering for OSV ranges.
//!
//! `SEMVER` ranges (and any version that parses as semver after dropping a leading
//! `v`, as Go versions have) use semver precedence. Otherwise (`ECOSYSTEM` ranges for
//! PyPI and others that are not semver) versions are split into runs of digits and of
//! letters, compared run by run: numbers numerically, words alphabetically, a number
//! after a word. When one version runs out, a following word means a pre-release
//! (`1.0rc1` < `1.0`) and following zeros change nothing (`1.0` = `1.0.0`). This is not
//! PEP 440 in full (epochs, post-release ordering) but orders the versions advisories
//! name correctly (`post` releases sort after their release).

use std::cmp::Ordering;

pub fn compare(a: &str, b: &str) -> Ordering {
    if let (Some(a), Some(b)) = (parse_semver(a), parse_semver(b)) {
        return a.cmp_precedence(&b);
    }
    compare_runs(&runs(a), &runs(b))
}

fn parse_semver(version: &str) -> Option<semver::Version> {
    semver::Version::parse(version.trim().trim_start_matches('v')).ok()
}

#[derive(Debug, PartialEq, Eq)]
enum Run {
    Number(u64),
    Word(String),
}

fn runs(version: &str) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut current = String::new();
    let mut digits = false;
    let flush = |current: &mut String, digits: bool, runs: &mut Vec<Run>| {
        if current.is_empty() {
            return;
        }
        runs.push(if digits {
            Run::Number(current.parse().unwrap_or(u64::MAX))
        } else {
            Run::Word(current.to_ascii_lowercase())
        });
        current.clear();
    };
    for c in version.trim().trim_start_matches('v').chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_digit() != digits {
                flush(&mut current, digits, &mut runs);
                digits = c.is_ascii_digit();
            }
            current.push(c);
        } else {
            flush(&mut current, digits, &mut runs);
        }
    }
    flush(&mut current, digits, &mut runs);
    runs
}

fn compare_runs(a: &[Run], b: &[Run]) -> Ordering {
    for index in 0..a.len().max(b.len()) {
        let ordering = match (a.get(index), b.get(index)) {
            (Some(Run::Number(x)), Some(Run::Number(y))) => x.cmp(y),
            (Some(Run::Word(x)), Some(Run::Word(y))) => x.cmp(y),
            (Some(Run::Number(_)), Some(Run::Word(_))) => Ordering::Greater,
            (Some(Run::Word(_)), Some(Run::Number(_))) => Ordering::Less,
            (Some(Run::Word(word)), None) => after_release(word),
            (None, Some(Run::Word(word))) => after_release(word).reverse(),
            (Some(Run::Number(x)), None) => x.cmp(&0),
            (None, Some(Run::Number(y))) => 0.cmp(y),
            (None, None) => Ordering::Equal,
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// A word after the release's numbers: `post` comes after it, anything else (`a`,
/// `rc`, `alpha`, `dev`) before.
fn after_release(word: &str) -> Ordering {
    if word == "post" {
        Ordering::Greater
    } else {
        Ordering::Less
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_semver_go_and_python_versions() {
        assert_eq!(compare("1.2.3", "1.10.0"), Ordering::Less);
        assert_eq!(compare("v0.3.7", "0.3.8"), Ordering::Less);
        assert_eq!(compare("1.0.0-alpha", "1.0.0"), Ordering::Less);
        assert_eq!(compare("2.31", "2.31.0"), Ordering::Equal);
        assert_eq!(compare("1.0rc1", "1.0"), Ordering::Less);
        assert_eq!(compare("4.2.10", "4.2.9"), Ordering::Greater);
        assert_eq!(compare("1.0.post1", "1.0"), Ordering::Greater);
    }
}
