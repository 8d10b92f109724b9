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
