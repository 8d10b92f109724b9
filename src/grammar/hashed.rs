//! The maps and sets keyed by request strings (the scope indexes, the node model, the repeat
//! checks): the standard `HashMap` and `HashSet` with foldhash, randomly seeded per process, in
//! place of SipHash.

/// A `HashMap` with foldhash (randomly seeded per process), for keys taken from the request.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A `HashSet` with foldhash.
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// An empty [`FastMap`] with room for `n` entries.
pub fn fast_map<K, V>(n: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(n, foldhash::fast::RandomState::default())
}

/// An empty [`FastSet`] with room for `n` entries.
pub fn fast_set<K>(n: usize) -> FastSet<K> {
    FastSet::with_capacity_and_hasher(n, foldhash::fast::RandomState::default())
}

/// A set of string lengths, for "could a part of this length be a key?" before hashing the
/// part: a bitmap for lengths below 1024 (every entry the schema allows), a [`FastSet`] above.
#[derive(Debug, Clone)]
pub struct Lengths {
    /// Boxed: the maps that hold a `Lengths` live in enums beside small variants.
    small: Box<[u64; 16]>,
    large: FastSet<usize>,
}

impl Default for Lengths {
    fn default() -> Self {
        Lengths {
            small: Box::new([0; 16]),
            large: fast_set(0),
        }
    }
}

impl Lengths {
    /// Adds a length.
    pub fn insert(&mut self, n: usize) {
        match self.small.get_mut(n / 64) {
            Some(word) => *word |= 1 << (n % 64),
            None => {
                self.large.insert(n);
            }
        }
    }

    /// Whether the length was added.
    #[inline]
    pub fn contains(&self, n: usize) -> bool {
        match self.small.get(n / 64) {
            Some(word) => word & (1 << (n % 64)) != 0,
            None => self.large.contains(&n),
        }
    }

    /// Whether no length was added.
    pub fn is_empty(&self) -> bool {
        self.small.iter().all(|&w| w == 0) && self.large.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Lengths;

    #[test]
    fn lengths_below_and_above_the_bitmap() {
        let mut lengths = Lengths::default();
        assert!(lengths.is_empty());
        for n in [0, 1, 63, 64, 1023, 1024, 5000] {
            assert!(!lengths.contains(n));
            lengths.insert(n);
            assert!(lengths.contains(n));
        }
        assert!(!lengths.is_empty());
        assert!(!lengths.contains(2) && !lengths.contains(1025) && !lengths.contains(65));
    }
}
