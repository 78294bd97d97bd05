//! Prompt-lookup drafts for speculative decoding: an agent's answer often copies runs of
//! its prompt (the code it was shown, the names in its instructions), so the tokens that
//! followed the latest earlier occurrence of the last few tokens are a cheap guess at
//! what comes next. A pass then feeds the guess with the sampled token, and the sequence
//! keeps every guessed token that the sampler, run over the pass's logits in order,
//! draws itself ([`crate::sequence::Sequence::advance`]): the output is the one plain
//! decoding gives, token for token, in fewer passes when the guess was right.

/// Longest run of tokens matched against the history: longer runs guess better, and
/// shorter ones are tried when they find nothing.
const MAX_MATCH: usize = 3;
/// Shortest: a single token recurs too often to say much about what follows it.
const MIN_MATCH: usize = 2;

/// Up to `max` tokens that followed the latest earlier occurrence of `history`'s last
/// few tokens in `history`; empty when they occur nowhere else.
pub fn prompt_lookup(history: &[u32], max: usize) -> &[u32] {
    if max == 0 {
        return &[];
    }
    for length in (MIN_MATCH..=MAX_MATCH).rev() {
        let Some(tail_start) = history.len().checked_sub(length) else {
            continue;
        };
        let tail = &history[tail_start..];
        // Latest first; the match must end before the tail does, so that something
        // follows it.
        let found = (0..tail_start)
            .rev()
            .find(|&start| &history[start..start + length] == tail);
        if let Some(start) = found {
            let from = start + length;
            return &history[from..history.len().min(from + max)];
        }
    }
    &[]
}

/// How many tokens a sequence drafts, learned from how its drafts fared: a draft taken
/// whole doubles the next one, a draft refused at its first token halves it, so a text
/// that copies its prompt gets long drafts and one that does not wastes little.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DraftLength {
    current: usize,
    max: usize,
}

impl DraftLength {
    pub fn new(max: usize) -> Self {
        Self { current: max, max }
    }

    pub fn get(&self) -> usize {
        self.current
    }

    /// Learns from a draft of `drafted` tokens of which the first `accepted` were kept.
    pub fn learn(&mut self, drafted: usize, accepted: usize) {
        if drafted == 0 {
            return;
        }
        self.current = if accepted == drafted {
            (self.current * 2).min(self.max)
        } else if accepted == 0 {
            (self.current / 2).max(1)
        } else {
            self.current
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_earlier_occurrence_of_the_tail_is_followed() {
        // "1 2 3" occurs at 0 and 5; the later one is followed by 9 9.
        let history = [1, 2, 3, 4, 5, 1, 2, 3, 9, 9, 7, 1, 2, 3];
        assert_eq!(prompt_lookup(&history, 4), &[9, 9, 7, 1]);
        assert_eq!(prompt_lookup(&history, 1), &[9]);
        assert_eq!(prompt_lookup(&history, 0), &[] as &[u32]);
    }

    #[test]
    fn shorter_tails_are_tried_and_single_tokens_are_not() {
        // "8 2 3" occurs nowhere before; "2 3" does, followed by 4.
        let history = [1, 2, 3, 4, 8, 2, 3];
        assert_eq!(prompt_lookup(&history, 2), &[4, 8]);
        // Only the last token, 6, recurs: no draft.
        assert_eq!(prompt_lookup(&[6, 1, 7, 6], 3), &[] as &[u32]);
        assert_eq!(prompt_lookup(&[5], 3), &[] as &[u32]);
        assert_eq!(prompt_lookup(&[], 3), &[] as &[u32]);
    }

    #[test]
    fn a_draft_stops_at_the_end_of_the_history() {
        // The tail "7 7" matches at 1 (overlapping it), followed by one 7 only.
        assert_eq!(prompt_lookup(&[7, 7, 7], 5), &[7]);
    }

    #[test]
    fn the_draft_length_follows_what_was_accepted() {
        let mut length = DraftLength::new(8);
        length.learn(8, 0);
        assert_eq!(length.get(), 4);
        length.learn(4, 0);
        length.learn(2, 0);
        length.learn(1, 0);
        assert_eq!(length.get(), 1, "never below one");
        length.learn(1, 1);
        length.learn(2, 2);
        assert_eq!(length.get(), 4);
        length.learn(4, 2);
        assert_eq!(length.get(), 4, "a partial acceptance keeps it");
        length.learn(4, 4);
        length.learn(8, 8);
        assert_eq!(length.get(), 8, "never above the most");
        length.learn(0, 0);
        assert_eq!(length.get(), 8, "no draft, nothing learned");
    }
}
