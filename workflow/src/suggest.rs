//! "Did you mean" hints by edit distance.

/// Candidates longer than this are never suggested; it bounds the quadratic distance.
const WORD_CHARS_MAX: usize = 64;
/// Lists longer than this are not searched; the hint is not worth a slow parse.
const CANDIDATES_MAX: usize = 2_000;

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_chars: Vec<char> = word.chars().take(WORD_CHARS_MAX + 1).collect();
    if word_chars.len() > WORD_CHARS_MAX {
        return None;
    }
    let allowed = (word_chars.len() / 3).max(2);
    candidates
        .into_iter()
        .take(CANDIDATES_MAX)
        .filter(|candidate| candidate.chars().count() <= WORD_CHARS_MAX)
        .map(|candidate| (distance(&word_chars, candidate), candidate))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// `did you mean `x`?`, when there is an `x`.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|candidate| format!("did you mean `{candidate}`?"))
}

/// Levenshtein distance, one row at a time.
fn distance(word: &[char], candidate: &str) -> usize {
    let mut previous: Vec<usize> = (0..=word.len()).collect();
    let mut current = vec![0; word.len() + 1];
    for (row, c) in candidate.chars().enumerate() {
        current[0] = row + 1;
        for (column, w) in word.iter().enumerate() {
            let substitution = previous[column] + usize::from(*w != c);
            current[column + 1] = substitution
                .min(previous[column + 1] + 1)
                .min(current[column] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[word.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key() {
        let keys = ["depends_on", "inputs", "agent"];
        assert_eq!(closest("depends-on", keys), Some("depends_on"));
        assert_eq!(closest("agnet", keys), Some("agent"));
        assert_eq!(closest("frobnicate", keys), None);
    }

    #[test]
    fn distance_counts_edits() {
        let chars: Vec<char> = "kitten".chars().collect();
        assert_eq!(distance(&chars, "sitting"), 3);
        assert_eq!(distance(&chars, "kitten"), 0);
        assert_eq!(distance(&[], "abc"), 3);
    }
}
