//! Automatic prefix caching: the keys and values of prompt prefixes, kept in blocks of
//! [`BLOCK_TOKENS`] positions and reused by any later sequence whose prompt starts with
//! the same tokens, on any worker of the model. Agents send the same system prompt and
//! worked examples with every request; computed once, a long shared prefix costs the
//! next request a copy instead of a prefill.
//!
//! A block is named by a hash of its tokens chained to its parent's name, so one name
//! stands for the whole prefix up to the block's end; the tokens are kept too, and
//! compared on every hit, so a hash collision is a miss, never wrong keys. The cache
//! holds at most `capacity` bytes: the least recently used block with no cached child
//! leaves first (a parent gone would leave its children unreachable).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use crate::llama::Positions;

/// Positions per block: small enough that most of a shared prefix is whole blocks,
/// large enough that lookups and copies are few.
pub const BLOCK_TOKENS: usize = 32;

/// The name of the empty prefix, every first block's parent.
const ROOT: u64 = 0;

pub const HIT_TOKENS: &str = "troupe_inference_prefix_cache_hit_tokens_total";
pub const BYTES: &str = "troupe_inference_prefix_cache_bytes";

/// The help text of the prefix cache's metrics (once, at start).
pub fn describe() {
    metrics::describe_counter!(
        HIT_TOKENS,
        "Prompt tokens whose keys and values came from the prefix cache instead of a prefill."
    );
    metrics::describe_gauge!(
        BYTES,
        metrics::Unit::Bytes,
        "Bytes of prompt prefixes' keys and values the prefix cache holds."
    );
}

/// The chained name of each whole block of `prompt` that a sequence may take from the
/// cache: the last prompt token is always run (its logits choose the first token out),
/// so only blocks that end before it count.
pub fn block_names(prompt: &[u32]) -> Vec<u64> {
    let reusable = prompt.len().saturating_sub(1);
    let mut parent = ROOT;
    prompt[..reusable]
        .chunks_exact(BLOCK_TOKENS)
        .map(|tokens| {
            parent = name(parent, tokens);
            parent
        })
        .collect()
}

fn name(parent: u64, tokens: &[u32]) -> u64 {
    let mut hasher = DefaultHasher::new();
    parent.hash(&mut hasher);
    tokens.hash(&mut hasher);
    // ROOT is reserved for the empty prefix.
    hasher.finish().max(1)
}

struct Block {
    parent: u64,
    tokens: Box<[u32]>,
    positions: Arc<Positions>,
    bytes: usize,
    last_used: u64,
    /// Cached blocks whose parent this is.
    children: usize,
}

/// What the cache holds and has done, for `GET /api/v1/models`, `troupe models list`
/// and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PrefixStats {
    /// Blocks of prompt prefixes taken from the cache instead of computed, and their
    /// tokens.
    pub hit_blocks: u64,
    pub hit_tokens: u64,
    pub blocks: usize,
    pub bytes: usize,
    pub capacity_bytes: usize,
    pub evicted_blocks: u64,
}

pub struct PrefixCache {
    capacity: usize,
    blocks: HashMap<u64, Block>,
    clock: u64,
    stats: PrefixStats,
}

/// One cache shared by every worker of a model.
#[derive(Clone)]
pub struct SharedPrefixCache(Arc<Mutex<PrefixCache>>);

impl SharedPrefixCache {
    pub fn new(capacity_bytes: usize) -> Self {
        Self(Arc::new(Mutex::new(PrefixCache::new(capacity_bytes))))
    }

    /// The cache, locked. A worker that panicked holding it left whole blocks or none:
    /// every change is one insert or one removal.
    pub fn lock(&self) -> MutexGuard<'_, PrefixCache> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn stats(&self) -> PrefixStats {
        self.lock().stats()
    }
}

impl PrefixCache {
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            capacity: capacity_bytes,
            blocks: HashMap::new(),
            clock: 0,
            stats: PrefixStats::default(),
        }
    }

    /// The counters kept as the cache works, with what it holds now.
    pub fn stats(&self) -> PrefixStats {
        PrefixStats {
            blocks: self.blocks.len(),
            capacity_bytes: self.capacity,
            ..self.stats
        }
    }

    pub fn contains(&self, name: u64) -> bool {
        self.blocks.contains_key(&name)
    }

    /// The block `name`, if cached with exactly these `tokens` after `parent`.
    pub fn get(&mut self, name: u64, parent: u64, tokens: &[u32]) -> Option<Arc<Positions>> {
        self.clock += 1;
        let block = self.blocks.get_mut(&name)?;
        if block.parent != parent || *block.tokens != *tokens {
            return None;
        }
        block.last_used = self.clock;
        self.stats.hit_blocks += 1;
        self.stats.hit_tokens += tokens.len() as u64;
        metrics::counter!(HIT_TOKENS).increment(tokens.len() as u64);
        Some(block.positions.clone())
    }

    /// Keeps `positions` as block `name`, making room by evicting if it must; a block
    /// larger than the whole cache, or whose parent is not cached, is not kept.
    pub fn insert(&mut self, name: u64, parent: u64, tokens: &[u32], positions: Positions) {
        let bytes = positions.bytes();
        let parent_cached = parent == ROOT || self.blocks.contains_key(&parent);
        if self.blocks.contains_key(&name) || bytes > self.capacity || !parent_cached {
            return;
        }
        while self.stats.bytes + bytes > self.capacity {
            if !self.evict_one(parent) {
                return;
            }
        }
        self.clock += 1;
        if let Some(parent) = self.blocks.get_mut(&parent) {
            parent.children += 1;
        }
        let block = Block {
            parent,
            tokens: tokens.into(),
            positions: Arc::new(positions),
            bytes,
            last_used: self.clock,
            children: 0,
        };
        self.blocks.insert(name, block);
        self.stats.bytes += bytes;
        metrics::gauge!(BYTES).set(self.stats.bytes as f64);
    }

    /// Evicts the least recently used leaf other than `keep` (the parent about to
    /// gain a child); false when there is none.
    fn evict_one(&mut self, keep: u64) -> bool {
        let oldest = self
            .blocks
            .iter()
            .filter(|(name, block)| block.children == 0 && **name != keep)
            .min_by_key(|(_, block)| block.last_used)
            .map(|(name, _)| *name);
        let Some(block) = oldest.and_then(|name| self.blocks.remove(&name)) else {
            return false;
        };
        if let Some(parent) = self.blocks.get_mut(&block.parent) {
            parent.children -= 1;
        }
        self.stats.bytes -= block.bytes;
        self.stats.evicted_blocks += 1;
        metrics::gauge!(BYTES).set(self.stats.bytes as f64);
        true
    }
}

/// The name of block `index`'s parent in `names`, a prompt's [`block_names`].
pub fn parent_of(names: &[u64], index: usize) -> u64 {
    index
        .checked_sub(1)
        .and_then(|before| names.get(before).copied())
        .unwrap_or(ROOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block's positions: 2 layers × 32 positions × 8 values × 2 (keys, values) × 2
    /// bytes = 2,048 bytes.
    fn positions() -> Positions {
        Positions::zeros(BLOCK_TOKENS, 2, 8)
    }

    const BLOCK_BYTES: usize = 2_048;

    fn prompt(blocks: usize, first: u32) -> Vec<u32> {
        (0..(blocks * BLOCK_TOKENS) as u32 + 1)
            .map(|t| t + first)
            .collect()
    }

    /// Puts every reusable block of `prompt` into `cache`.
    fn put(cache: &mut PrefixCache, prompt: &[u32]) -> Vec<u64> {
        let names = block_names(prompt);
        for (index, name) in names.iter().enumerate() {
            let tokens = &prompt[index * BLOCK_TOKENS..(index + 1) * BLOCK_TOKENS];
            cache.insert(*name, parent_of(&names, index), tokens, positions());
        }
        names
    }

    #[test]
    fn only_whole_blocks_before_the_last_prompt_token_are_named() {
        assert!(
            block_names(&[1; BLOCK_TOKENS]).is_empty(),
            "the last token runs"
        );
        assert_eq!(block_names(&[1; BLOCK_TOKENS + 1]).len(), 1);
        assert_eq!(block_names(&[1; 3 * BLOCK_TOKENS]).len(), 2);
    }

    #[test]
    fn a_name_stands_for_the_whole_prefix_not_only_its_block() {
        let mut other = prompt(2, 0);
        other[0] = 999;
        let (ours, theirs) = (block_names(&prompt(2, 0)), block_names(&other));
        // The second blocks hold the same tokens after different first blocks.
        assert_ne!(ours[1], theirs[1]);
        assert_eq!(ours, block_names(&prompt(2, 0)));
    }

    #[test]
    fn a_block_is_found_only_with_its_own_tokens_and_parent() {
        let mut cache = PrefixCache::new(10 * BLOCK_BYTES);
        let tokens = prompt(2, 0);
        let names = put(&mut cache, &tokens);
        let second = &tokens[BLOCK_TOKENS..2 * BLOCK_TOKENS];
        assert!(cache.get(names[1], names[0], second).is_some());
        // As a hash collision would present it: the right name, other tokens or parent.
        assert!(
            cache
                .get(names[1], names[0], &tokens[..BLOCK_TOKENS])
                .is_none()
        );
        assert!(cache.get(names[1], ROOT, second).is_none());
        let stats = cache.stats();
        assert_eq!(
            (stats.hit_blocks, stats.hit_tokens),
            (1, BLOCK_TOKENS as u64)
        );
        assert_eq!((stats.blocks, stats.bytes), (2, 2 * BLOCK_BYTES));
    }

    #[test]
    fn the_least_recently_used_leaf_leaves_first_and_parents_stay_under_children() {
        let mut cache = PrefixCache::new(3 * BLOCK_BYTES);
        let old = put(&mut cache, &prompt(2, 0));
        let recent = put(&mut cache, &prompt(1, 5_000));
        assert_eq!(cache.stats().blocks, 3);
        // Used again now: the old chain's root is the most recent, its leaf is not.
        let root_tokens = &prompt(2, 0)[..BLOCK_TOKENS];
        assert!(cache.get(old[0], ROOT, root_tokens).is_some());
        put(&mut cache, &prompt(1, 9_000));
        // Of the two leaves (old[1], recent[0]), old[1] was used least recently.
        assert!(!cache.contains(old[1]) && cache.contains(old[0]));
        assert!(cache.contains(recent[0]));
        assert_eq!(cache.stats().evicted_blocks, 1);
        assert_eq!(cache.stats().bytes, 3 * BLOCK_BYTES);
    }

    #[test]
    fn a_block_whose_parent_is_gone_or_too_large_for_the_cache_is_not_kept() {
        let mut cache = PrefixCache::new(BLOCK_BYTES);
        let tokens = prompt(2, 0);
        let names = block_names(&tokens);
        cache.insert(
            names[1],
            names[0],
            &tokens[BLOCK_TOKENS..2 * BLOCK_TOKENS],
            positions(),
        );
        assert_eq!(cache.stats().blocks, 0, "its parent is not cached");
        let mut small = PrefixCache::new(BLOCK_BYTES - 1);
        put(&mut small, &tokens);
        assert_eq!(small.stats().blocks, 0, "larger than the whole cache");
    }

    #[test]
    fn a_full_cache_of_one_chain_keeps_its_root_rather_than_evict_the_parent_it_extends() {
        let mut cache = PrefixCache::new(BLOCK_BYTES);
        let names = put(&mut cache, &prompt(2, 0));
        // The root could not be evicted for its own child: the child was not kept.
        assert!(cache.contains(names[0]) && !cache.contains(names[1]));
    }
}
