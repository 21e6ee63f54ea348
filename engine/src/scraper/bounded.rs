//! Size bounds of the caches a runtime shares between jobs (robots.txt files, HTTP clients,
//! in-memory rate-limit windows): each has a maximum entry count, and when it is reached the
//! entries used longest ago make room.

use std::collections::HashMap;
use std::hash::Hash;

/// Removes the entries of `map` with the oldest `last_used` until at most `keep` remain.
pub(crate) fn evict_oldest<K, V, T>(
    map: &mut HashMap<K, V>,
    keep: usize,
    last_used: impl Fn(&V) -> T,
) where
    K: Eq + Hash + Clone,
    T: Ord,
{
    let excess = map.len().saturating_sub(keep);
    if excess == 0 {
        return;
    }
    let mut by_age: Vec<(T, K)> = map
        .iter()
        .map(|(key, value)| (last_used(value), key.clone()))
        .collect();
    by_age.select_nth_unstable_by(excess - 1, |a, b| a.0.cmp(&b.0));
    for (_, key) in &by_age[..excess] {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entries_used_longest_ago_are_evicted_first() {
        let mut map: HashMap<&str, u32> = [("a", 5), ("b", 1), ("c", 9), ("d", 3)].into();
        evict_oldest(&mut map, 2, |used| *used);
        let mut kept: Vec<&str> = map.keys().copied().collect();
        kept.sort_unstable();
        assert_eq!(kept, ["a", "c"]);
        evict_oldest(&mut map, 5, |used| *used);
        assert_eq!(map.len(), 2, "nothing to evict below the bound");
    }
}
