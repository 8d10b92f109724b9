//! Registry scopes: the entries of `registrySources.{insecure,blocked,allowed}Registries`.
//!
//! - [`is_valid_scope`]: the CEL rule of openshift/api 4.23 (R2), the same pattern as the
//!   machine-config operator's `sourceRegex`: `host[:port][/path]` or `*.domain`.
//! - [`is_nested_inside`]: MCO `ScopeIsNestedInsideScope(sub, super)`, the meaning of "covers".
//! - [`ScopeIndex`]: the same question answered for a whole list in time linear in the target's
//!   length, so that list-against-list warnings stay linear on 1024-entry lists. Its lookup order
//!   is the containers/image `policy.json` order ([`policy_scopes`]), so the warnings and
//!   `explain` find the same entry.
//! - [`is_valid_registries_conf_scope`]: MCO `IsValidRegistriesConfScope`.
//! - [`ref_matching_prefix`]: the prefix match containers/image uses on `[[registry]]` tables;
//!   the tables themselves and the longest-prefix lookup live in [`crate::node`].

use std::sync::{LazyLock, OnceLock};

use regex::Regex;

use super::hashed::{FastMap, FastSet, Lengths, fast_map};
use super::host::{HostPort, split_at_byte};

/// The effective RE2 pattern of rule R2 (RULEBOOK section 3.2), verbatim.
pub const SCOPE_PATTERN: &str = r"^\*(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+$|^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?)(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$";

static SCOPE: LazyLock<Regex> =
    // A constant pattern, exercised by the tests below.
    LazyLock::new(|| Regex::new(SCOPE_PATTERN).expect("constant scope pattern compiles"));

/// Whether `s` is a valid registry scope under rule R2.
pub fn is_valid_scope(s: &str) -> bool {
    SCOPE.is_match(s)
}

/// A registry scope taken apart (no validation: works on any string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// `*.domain` entries.
    pub wildcard: bool,
    /// `host[:port]`, or the `*.domain` itself for a wildcard.
    pub host_port: HostPort<'a>,
    /// The repository path after the first `/`, if any.
    pub path: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// Splits a scope into host, port and path.
    pub fn parse(s: &'a str) -> Self {
        let (host_port, path) = match split_at_byte(s, b'/') {
            Some((hp, path)) => (hp, Some(path)),
            None => (s, None),
        };
        Scope {
            wildcard: s.starts_with("*."),
            host_port: HostPort::split(host_port),
            path,
        }
    }
}

/// The host of `scope` as MCO `ScopeIsNestedInsideScope` reads it for a wildcard super-scope:
/// the text before the first `:` (no `/` may come before it), else before the first `/`.
fn wildcard_host(scope: &str) -> Option<&str> {
    match split_at_byte(scope, b':') {
        Some((before, _)) => (!before.as_bytes().contains(&b'/')).then_some(before),
        None => Some(split_at_byte(scope, b'/').map_or(scope, |(host, _)| host)),
    }
}

/// MCO `ScopeIsNestedInsideScope(sub, super)`: `sub` equals `super`, or lies below it as a
/// repository path, or `super` is `*.d` and the host of `sub` ends with `.d` (any depth, any
/// port; never `d` itself).
pub fn is_nested_inside(sub: &str, sup: &str) -> bool {
    if sub == sup {
        return true;
    }
    if sub.len() > sup.len() && sub.starts_with(sup) && sub.as_bytes()[sup.len()] == b'/' {
        return true;
    }
    match sup.strip_prefix('*') {
        Some(suffix) if sup.starts_with("*.") => {
            wildcard_host(sub).is_some_and(|host| host.ends_with(suffix))
        }
        _ => false,
    }
}

/// MCO `IsValidRegistriesConfScope`: any non-empty string without `*`, or `*.` followed by
/// text without `/`, `@`, `:` or `*`. A failure stops MCO from rendering the node config.
pub fn is_valid_registries_conf_scope(scope: &str) -> bool {
    if !scope.contains('*') {
        return !scope.is_empty();
    }
    scope
        .strip_prefix("*.")
        .is_some_and(|rest| !rest.contains(['/', '@', ':', '*']))
}

/// The scopes containers/image looks up in `policy.json` for a repository `name`, most
/// specific first (`PolicyConfigurationIdentity` then `PolicyConfigurationNamespaces`,
/// naming.go): the identity (`name:tag` or `name@digest`) when given, the repository, its parent
/// namespaces, `host[:port]`, then `*.` and each parent domain of the host with the port
/// stripped.
///
/// `docker.io/library/busybox:latest` is looked up as itself, `docker.io/library/busybox`,
/// `docker.io/library`, `docker.io`, `*.io`; never as `busybox` or `library`.
pub fn policy_scopes(name: &str, identity: Option<&str>) -> Vec<String> {
    let mut scopes: Vec<String> = identity.map(str::to_owned).into_iter().collect();
    let mut namespace = name;
    loop {
        scopes.push(namespace.to_owned());
        match namespace.rfind('/') {
            Some(slash) => namespace = &namespace[..slash],
            None => break,
        }
    }
    let mut host = namespace.split_once(':').map_or(namespace, |(h, _)| h);
    while let Some(dot) = host.find('.') {
        host = &host[dot + 1..];
        scopes.push(format!("*.{host}"));
    }
    scopes
}

/// The release payload repository that a blocked entry covers, if any: the machine-config
/// operator drops such an entry from registries.conf and policy.json (MCO
/// `getValidBlockedAndAllowedRegistries`), so it blocks nothing.
pub fn dropped_for_payload<'r, R: AsRef<str>>(
    entry: &str,
    payload_repositories: &'r [R],
) -> Option<&'r str> {
    payload_repositories
        .iter()
        .map(AsRef::as_ref)
        .find(|repo| is_nested_inside(repo, entry))
}

/// Polynomial hashes of byte strings modulo the Mersenne prime 2^61 - 1, with a base drawn once
/// per process: `hash(s) = sum((s[j] + 1) * BASE^j)`. The hash of every prefix of a string, and
/// of every suffix, follows from the previous one in constant time, so "is any parent of this
/// target a key?" costs time linear in the target, however long the keys are and however many
/// lengths they come in. (A `HashMap` lookup per candidate hashes the whole candidate: with keys
/// of many lengths that is quadratic in the target, and a list of targets times a list of keys
/// overall.) A hash is only a filter: a candidate whose hash is a key's is then looked up for
/// real, so an unlucky collision costs time, never a wrong answer; with a random base an input
/// cannot be built to collide on purpose.
mod poly {
    use std::hash::BuildHasher;
    use std::sync::LazyLock;

    const P: u64 = (1 << 61) - 1;

    static BASE: LazyLock<u64> = LazyLock::new(|| {
        // The standard library's per-process random keys, the seed of every `HashMap`.
        let random = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        random % (P - 512) + 257
    });

    pub(super) fn base() -> u64 {
        *BASE
    }

    /// `a * b mod P`, for `a, b < P`.
    pub(super) fn mul(a: u64, b: u64) -> u64 {
        let product = u128::from(a) * u128::from(b);
        // P = 2^61 - 1: the high part folds onto the low part. Both parts are below 2^61 + 2^3.
        let low = (product as u64) & P;
        let high = (product >> 61) as u64;
        reduce(low + high)
    }

    /// `a + b mod P`, for `a, b < P`.
    pub(super) fn add(a: u64, b: u64) -> u64 {
        reduce(a + b)
    }

    fn reduce(x: u64) -> u64 {
        if x >= P { x - P } else { x }
    }

    pub(super) fn digit(byte: u8) -> u64 {
        u64::from(byte) + 1
    }

    /// The hash of `s`.
    pub(super) fn hash(s: &[u8]) -> u64 {
        let base = base();
        // Horner's rule from the last byte: s[0] gets BASE^0.
        s.iter().rev().fold(0, |h, &b| add(digit(b), mul(h, base)))
    }
}

/// Lists of at most this many entries are not hashed: each candidate is compared with each
/// entry, which for a handful of entries costs less than hashing the candidate once.
const SMALL_LIST: usize = 16;

/// A list of scopes indexed for "which entry covers this target?" questions.
///
/// Both representations enumerate the same candidates in the same order (the target, its
/// parents from the longest, the wildcards of its parent domains from the closest) and map each
/// to the first entry equal to it; they differ only in how a candidate is found: a comparison
/// with each entry of a short list, a [`poly`] hash filter and a map lookup for a long one.
#[derive(Debug)]
pub struct ScopeIndex<'a>(Repr<'a>);

#[derive(Debug)]
enum Repr<'a> {
    /// The entries in list order (at most [`SMALL_LIST`]).
    Small(Vec<&'a str>),
    Hashed(Box<Hashed<'a>>),
}

#[derive(Debug)]
struct Hashed<'a> {
    exact: FastMap<&'a str, usize>,
    /// `.domain` suffixes of `*.domain` entries.
    wildcard: FastMap<&'a str, usize>,
    /// The lengths of the keys of `exact` and `wildcard`: a candidate of another length is not a
    /// key. Most lists have keys of few lengths, so most targets have at most a few candidates
    /// of a key's length, and each of those is looked up in the map.
    exact_lengths: Lengths,
    wildcard_lengths: Lengths,
    /// The [`poly`] hashes of the keys, made the first time a target has more than
    /// [`DIRECT_LOOKUPS`] candidates of a key's length: one map lookup per such candidate would
    /// hash the target that many times, the rolling hash reads it once.
    exact_hashes: OnceLock<FastSet<u64>>,
    wildcard_hashes: OnceLock<FastSet<u64>>,
}

/// Up to this many candidates of a target are looked up in the map directly (each lookup hashes
/// the candidate); past it, the rolling hash filters them in one pass over the target.
const DIRECT_LOOKUPS: usize = 4;

impl Default for ScopeIndex<'_> {
    fn default() -> Self {
        ScopeIndex(Repr::Small(Vec::new()))
    }
}

/// Positions in a target: those a hash filter let through, or every separator of a short list's
/// target.
enum Positions<I> {
    Hits(std::vec::IntoIter<usize>),
    All(I),
}

impl<I: Iterator<Item = usize>> Iterator for Positions<I> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            Positions::Hits(hits) => hits.next(),
            Positions::All(all) => all.next(),
        }
    }
}

impl<'a> ScopeIndex<'a> {
    /// Indexes entries; the first index of a repeated entry is kept.
    pub fn new<I: IntoIterator<Item = &'a str>>(entries: I) -> Self {
        let entries: Vec<&'a str> = entries.into_iter().collect();
        if entries.len() <= SMALL_LIST {
            ScopeIndex(Repr::Small(entries))
        } else {
            ScopeIndex(Repr::Hashed(Box::new(Hashed::new(entries))))
        }
    }

    /// Whether the index holds no entry.
    pub fn is_empty(&self) -> bool {
        match &self.0 {
            Repr::Small(entries) => entries.is_empty(),
            Repr::Hashed(hashed) => hashed.exact.is_empty() && hashed.wildcard.is_empty(),
        }
    }

    /// The index of the most specific entry that covers `target` in the sense of
    /// [`is_nested_inside`]: the target itself, then its parent repositories from the longest,
    /// then the wildcard of the closest parent domain. This is [`policy_scopes`] order.
    /// Linear in the length of `target`.
    pub fn covering(&self, target: &str) -> Option<usize> {
        self.candidates(target).next()
    }

    /// The first entry in list order (the smallest index) among all the entries that cover
    /// `target`: MCO's "first scope it is nested inside". In a long list each parent of the
    /// target is hashed in constant time, and each parent that is an entry is then compared once.
    pub fn first_covering(&self, target: &str) -> Option<usize> {
        self.candidates(target).min()
    }

    /// The index of every entry that covers `target` (the first index of a repeated entry),
    /// most specific first. Linear in the length of `target`, plus one per entry found.
    pub fn all_covering<'s>(&'s self, target: &'s str) -> impl Iterator<Item = usize> + 's {
        self.candidates(target)
    }

    /// The index of every entry that covers `target`, most specific first.
    fn candidates<'s>(&'s self, target: &'s str) -> impl Iterator<Item = usize> + 's {
        let host = wildcard_host(target).unwrap_or("");
        let (parent_ends, domain_starts) = match &self.0 {
            Repr::Small(_) => (
                Positions::All(target.rmatch_indices('/').map(|(end, _)| end)),
                Positions::All(host.match_indices('.').map(|(start, _)| start)),
            ),
            Repr::Hashed(hashed) => (
                Positions::Hits(hashed.parent_hits(target).into_iter()),
                Positions::Hits(hashed.domain_hits(host).into_iter()),
            ),
        };
        let whole = self.exact_get(target);
        let parents = parent_ends.filter_map(move |end| self.exact_get(target.get(..end)?));
        let domains = domain_starts.filter_map(move |start| self.wildcard_get(host.get(start..)?));
        whole.into_iter().chain(parents).chain(domains)
    }

    /// The first entry equal to `key`.
    fn exact_get(&self, key: &str) -> Option<usize> {
        match &self.0 {
            Repr::Small(entries) => entries.iter().position(|e| *e == key),
            Repr::Hashed(hashed) => hashed.exact.get(key).copied(),
        }
    }

    /// The first entry `*.domain` whose `.domain` is `suffix` (which starts with `.`).
    fn wildcard_get(&self, suffix: &str) -> Option<usize> {
        match &self.0 {
            Repr::Small(entries) => entries
                .iter()
                .position(|e| e.starts_with("*.") && e.get(1..) == Some(suffix)),
            Repr::Hashed(hashed) => hashed.wildcard.get(suffix).copied(),
        }
    }

    /// The entry `policy.json` applies to an image: the first of [`policy_scopes`] that is an
    /// entry. `identity` is `name:tag` or `name@digest`; `name` is the repository.
    pub fn policy_match(&self, name: &str, identity: &str) -> Option<usize> {
        self.exact_get(identity).or_else(|| self.covering(name))
    }

    /// Whether any entry covers `target`.
    pub fn covers(&self, target: &str) -> bool {
        self.covering(target).is_some()
    }
}

impl<'a> Hashed<'a> {
    fn new(entries: Vec<&'a str>) -> Self {
        let wildcards = entries.iter().filter(|e| e.starts_with("*.")).count();
        let mut index = Hashed {
            exact: fast_map(entries.len()),
            wildcard: fast_map(wildcards),
            exact_lengths: Lengths::default(),
            wildcard_lengths: Lengths::default(),
            exact_hashes: OnceLock::new(),
            wildcard_hashes: OnceLock::new(),
        };
        for (i, entry) in entries.into_iter().enumerate() {
            // Every entry is a plain entry; `*.d` is one too, as `*.d/x` lies below it as a
            // repository path (`is_nested_inside`; fuzz finding
            // scope-index-wildcard-parent-path).
            if let std::collections::hash_map::Entry::Vacant(slot) = index.exact.entry(entry) {
                slot.insert(i);
                index.exact_lengths.insert(entry.len());
            }
            if let Some(suffix) = entry.strip_prefix('*').filter(|_| entry.starts_with("*."))
                && let std::collections::hash_map::Entry::Vacant(slot) =
                    index.wildcard.entry(suffix)
            {
                slot.insert(i);
                index.wildcard_lengths.insert(suffix.len());
            }
        }
        index
    }

    /// The ends of the parent repositories of `target` (`target[..end]`, before each `/`) that
    /// may be keys, longest first.
    fn parent_hits(&self, target: &str) -> Vec<usize> {
        let mut hits = Vec::new();
        if self.exact_lengths.is_empty() {
            return hits;
        }
        for end in memchr::memrchr_iter(b'/', target.as_bytes()) {
            if self.exact_lengths.contains(end) {
                if hits.len() == DIRECT_LOOKUPS {
                    return self.rolling_parent_hits(target);
                }
                hits.push(end);
            }
        }
        hits
    }

    /// [`Hashed::parent_hits`] filtered by the rolling hash of every prefix.
    fn rolling_parent_hits(&self, target: &str) -> Vec<usize> {
        let keys = self.exact_hashes.get_or_init(|| {
            self.exact
                .keys()
                .map(|k| poly::hash(k.as_bytes()))
                .collect()
        });
        let base = poly::base();
        let (mut hash, mut power) = (0, 1);
        let mut hits = Vec::new();
        for (end, &byte) in target.as_bytes().iter().enumerate() {
            if byte == b'/' && keys.contains(&hash) {
                hits.push(end);
            }
            hash = poly::add(hash, poly::mul(poly::digit(byte), power));
            power = poly::mul(power, base);
        }
        hits.reverse();
        hits
    }

    /// The starts of the `.domain` suffixes of `host` (from each `.`) that may be keys, longest
    /// first.
    fn domain_hits(&self, host: &str) -> Vec<usize> {
        let mut hits = Vec::new();
        if self.wildcard_lengths.is_empty() {
            return hits;
        }
        for start in memchr::memchr_iter(b'.', host.as_bytes()) {
            if self.wildcard_lengths.contains(host.len() - start) {
                if hits.len() == DIRECT_LOOKUPS {
                    return self.rolling_domain_hits(host);
                }
                hits.push(start);
            }
        }
        hits
    }

    /// [`Hashed::domain_hits`] filtered by the rolling hash of every suffix.
    fn rolling_domain_hits(&self, host: &str) -> Vec<usize> {
        let keys = self.wildcard_hashes.get_or_init(|| {
            self.wildcard
                .keys()
                .map(|k| poly::hash(k.as_bytes()))
                .collect()
        });
        let base = poly::base();
        let mut hash = 0;
        let mut hits = Vec::new();
        for (start, &byte) in host.as_bytes().iter().enumerate().rev() {
            hash = poly::add(poly::digit(byte), poly::mul(hash, base));
            if byte == b'.' && keys.contains(&hash) {
                hits.push(start);
            }
        }
        hits.reverse();
        hits
    }
}

/// sysregistriesv2 `refMatchingPrefix`: the length of the match when `reference` (a registry,
/// repository or image reference) lies in `prefix`, else `None`.
///
/// A plain prefix matches the reference itself or the reference followed by `:`, `/` or `@`, so
/// `example.com` also matches `example.com:5000/x` (upstream: "DON'T RELY ON THE CURRENT
/// BEHAVIOR"). A `*.example.com` prefix matches a host containing `.example.com` (the first
/// occurrence, before any `/`) followed by the end, `:`, `/` or `@`: any depth and any port, never
/// `example.com` itself.
pub fn ref_matching_prefix(reference: &str, prefix: &str) -> Option<usize> {
    if let Some(domain) = prefix
        .strip_prefix('*')
        .filter(|_| prefix.starts_with("*."))
    {
        let index = reference.find(domain)?;
        if reference[..index].contains('/') {
            return None;
        }
        let end = index + domain.len();
        return match reference.as_bytes().get(end) {
            None | Some(b':' | b'/' | b'@') => Some(end),
            Some(_) => None,
        };
    }
    if reference == prefix {
        return Some(prefix.len());
    }
    match reference.strip_prefix(prefix)?.as_bytes().first() {
        Some(b':' | b'/' | b'@') => Some(prefix.len()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! scopes {
        ($($s:expr => $ok:expr),* $(,)?) => {
            $( assert_eq!(is_valid_scope($s), $ok, "is_valid_scope({:?})", $s); )*
        };
    }

    #[test]
    fn r2_grammar_edges() {
        scopes! {
            "registry.io" => true,
            "registry.io/myrepo" => true,
            "*.example.com" => true,
            "localhost:5000/repo" => true,
            "insecure.registry.io" => true,
            "*.insecure.example.com" => true,
            "192.168.1.10:5000" => true,
            "myregistry" => true,
            "localhost" => true,
            "index.docker.io" => true,
            "*.com" => true,
            "Registry.Example.com" => true,
            "registry.io:99999" => true,
            "r.io/a/b/c" => true,
            "r.io/a.b_c__d---e" => true,
            "r.io/a-b" => true,
            "registry.io/myrepo:latest" => false,
            "registry.io/myrepo@sha256:abc123" => false,
            "" => false,
            "*.example.com:5000" => false,
            "*example.com" => false,
            "example.*.com" => false,
            "*" => false,
            "**.a.com" => false,
            "*.a.com/path" => false,
            "[::1]:5000" => false,
            "registry.io/MyRepo" => false,
            "http://registry.io" => false,
            "registry.io/" => false,
            " registry.io" => false,
            "registry.io " => false,
            "registry.io\n" => false,
            "my_registry.io" => false,
            "r.io/a___b" => false,
            "r.io/a..b" => false,
            "r.io/a._b" => false,
            "r.io/_a" => false,
            "r.io/a_" => false,
            "r.io//a" => false,
            "-r.io" => false,
            "r.io." => false,
            "r.io:" => false,
        }
    }

    #[test]
    fn nested_inside_is_mco_semantics() {
        let yes = [
            ("quay.io", "quay.io"),
            ("quay.io/openshift-release-dev", "quay.io"),
            (
                "quay.io/openshift-release-dev/ocp-release",
                "quay.io/openshift-release-dev",
            ),
            ("a.example.com", "*.example.com"),
            ("a.b.example.com:5000/x", "*.example.com"),
            ("*.a.example.com", "*.example.com"),
            ("quay.io", "*.io"),
        ];
        let no = [
            ("example.com", "*.example.com"),
            ("quay.io", "quay.io/openshift-release-dev"),
            ("quay.io.evil.com", "quay.io"),
            ("quay.io:443", "quay.io"),
            ("quay.iox", "quay.io"),
            ("aexample.com", "*.example.com"),
            ("quay.io", "*"),
            // MCO reads the host before the first `:`; a `/` before it is not a host.
            ("quay/bar.foo:400", "*.foo"),
            ("a.example.com/x:tag", "*.example.com"),
        ];
        for (sub, sup) in yes {
            assert!(is_nested_inside(sub, sup), "{sub} inside {sup}");
        }
        for (sub, sup) in no {
            assert!(!is_nested_inside(sub, sup), "{sub} not inside {sup}");
        }
    }

    /// The index must agree with the pairwise definition on every pair.
    #[test]
    fn index_agrees_with_pairwise_definition() {
        let entries = [
            "quay.io",
            "*.example.com",
            "reg.io/ns",
            "reg.io/ns/app",
            "*.io",
            "localhost:5000",
            "*.b.example.com",
        ];
        let targets = [
            "quay.io",
            "quay.io/x",
            "a.example.com",
            "example.com",
            "reg.io",
            "reg.io/ns",
            "reg.io/ns/app/x",
            "reg.io/nsx",
            "foo.io:5000/a",
            "localhost:5000/r",
            "localhost",
            "x.b.example.com",
            "*.c.example.com",
        ];
        let index = ScopeIndex::new(entries);
        for target in targets {
            let pairwise = entries.iter().any(|e| is_nested_inside(target, e));
            assert_eq!(index.covers(target), pairwise, "{target}");
        }
        assert_eq!(
            index.covering("reg.io/ns/app/x"),
            Some(3),
            "most specific wins"
        );
        assert_eq!(
            index.covering("x.b.example.com"),
            Some(6),
            "closest wildcard wins"
        );
        for target in targets {
            let first = entries.iter().position(|e| is_nested_inside(target, e));
            assert_eq!(index.first_covering(target), first, "{target}");
        }
        assert!(ScopeIndex::new([]).is_empty());
    }

    /// A short list (compared entry by entry) and the same list hashed give the same answers.
    #[test]
    fn short_and_hashed_lists_agree() {
        let entries = [
            "quay.io",
            "*.example.com",
            "reg.io/ns",
            "reg.io/ns/app",
            "*.io",
            "localhost:5000",
            "*.b.example.com",
            "reg.io/ns",
            "*.m",
            "*.example.com",
            "quay.io/ns/app:1",
            "",
        ];
        let targets = [
            "quay.io",
            "quay.io/x",
            "quay.io/ns/app",
            "quay.io/ns/app:1",
            "a.example.com",
            "example.com",
            "reg.io",
            "reg.io/ns",
            "reg.io/ns/app/x",
            "reg.io/nsx",
            "foo.io:5000/a",
            "localhost:5000/r",
            "localhost",
            "x.b.example.com",
            "*.c.example.com",
            "*.m/:",
            "a.m:1/b.example.com",
            "/",
            "",
        ];
        for n in 0..=entries.len() {
            let small = ScopeIndex::new(entries[..n].iter().copied());
            assert!(matches!(small.0, Repr::Small(_)));
            let hashed = ScopeIndex(Repr::Hashed(Box::new(Hashed::new(entries[..n].to_vec()))));
            assert_eq!(small.is_empty(), hashed.is_empty(), "{n}");
            for target in targets {
                let what = format!("{target:?} in {:?}", &entries[..n]);
                assert_eq!(small.covering(target), hashed.covering(target), "{what}");
                assert_eq!(
                    small.first_covering(target),
                    hashed.first_covering(target),
                    "{what}"
                );
                assert_eq!(small.covers(target), hashed.covers(target), "{what}");
                for identity in targets {
                    assert_eq!(
                        small.policy_match(target, identity),
                        hashed.policy_match(target, identity),
                        "{what} as {identity:?}"
                    );
                }
                let pairwise = entries[..n]
                    .iter()
                    .position(|e| is_nested_inside(target, e));
                assert_eq!(small.first_covering(target), pairwise, "{what}");
            }
        }
        let long: Vec<String> = (0..=SMALL_LIST).map(|i| format!("r{i}.io")).collect();
        let index = ScopeIndex::new(long.iter().map(String::as_str));
        assert!(matches!(index.0, Repr::Hashed(_)));
        assert_eq!(index.covering("r3.io/x"), Some(3));
    }

    /// A target with more candidates of a key's length than are looked up directly takes the
    /// rolling hash, and both ways give the answers the pairwise check gives.
    #[test]
    fn direct_and_rolling_lookups_agree() {
        let mut entries: Vec<String> = (1..=DIRECT_LOOKUPS + 3)
            .map(|depth| format!("r.io{}", "/a".repeat(depth)))
            .collect();
        entries
            .extend((1..=DIRECT_LOOKUPS + 3).map(|depth| format!("*.{}r.io", "a.".repeat(depth))));
        entries.extend((0..SMALL_LIST).map(|i| format!("pad{i}.io")));
        let index = ScopeIndex::new(entries.iter().map(String::as_str));
        assert!(matches!(index.0, Repr::Hashed(_)));
        let deep = format!("r.io{}", "/a".repeat(DIRECT_LOOKUPS + 5));
        let wide = format!("{}r.io/x", "a.".repeat(DIRECT_LOOKUPS + 5));
        for depth in 0..=DIRECT_LOOKUPS + 5 {
            for target in [
                format!("r.io{}", "/a".repeat(depth)),
                format!("{}r.io/x", "a.".repeat(depth)),
                deep.clone(),
                wide.clone(),
            ] {
                let pairwise = entries.iter().position(|e| is_nested_inside(&target, e));
                assert_eq!(index.first_covering(&target), pairwise, "{target}");
                let most_specific = index.covering(&target);
                assert_eq!(most_specific.is_some(), pairwise.is_some(), "{target}");
            }
        }
        // The most specific entry of a deep target is its longest parent.
        assert_eq!(index.covering(&deep), Some(DIRECT_LOOKUPS + 2));
        assert_eq!(index.covering(&wide), Some(2 * DIRECT_LOOKUPS + 5));
    }

    /// Keys of every length and targets made of separators: each target is still looked at
    /// once, not once per key length (this was quadratic: targets times the total length of the
    /// keys).
    #[allow(clippy::disallowed_methods)] // times the check to show it stays linear
    #[test]
    fn index_lookups_are_linear_in_the_target() {
        let n = 2_000;
        // Keys `b`, `bb/b`, ... and `*.b`, `*.bb`, ... of every length: none covers a target.
        let plain: Vec<String> = (1..n).map(|k| "b".repeat(k)).collect();
        let wild: Vec<String> = (1..n).map(|k| format!("*.{}", "b".repeat(k))).collect();
        let index = ScopeIndex::new(plain.iter().chain(&wild).map(String::as_str));
        let slashes = "a/".repeat(n);
        let dots = "a.".repeat(n) + "a";
        let started = std::time::Instant::now();
        for _ in 0..200 {
            assert_eq!(index.covering(&slashes), None);
            assert_eq!(index.covering(&dots), None);
            assert_eq!(index.first_covering(&dots), None);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        // And the answers stay right next to such keys.
        let index = ScopeIndex::new(["a/a", "*.a.a", "a"]);
        assert_eq!(index.covering(&slashes), Some(0));
        assert_eq!(index.first_covering(&slashes), Some(0));
        assert_eq!(index.covering(&dots), Some(1));
        assert_eq!(index.covering("a/x"), Some(2));
    }

    #[test]
    fn scope_parts() {
        let s = Scope::parse("reg.io:5000/ns/app");
        assert!(!s.wildcard);
        assert_eq!(s.host_port.host, "reg.io");
        assert_eq!(s.host_port.port, Some("5000"));
        assert_eq!(s.path, Some("ns/app"));
        assert!(Scope::parse("*.example.com").wildcard);
    }

    /// RULEBOOK section 6, sysregistriesv2 `refMatchingPrefix`.
    #[test]
    fn registries_conf_prefix_matching() {
        let cases: &[(&str, &str, Option<usize>)] = &[
            ("quay.io/a/b", "quay.io", Some(7)),
            ("quay.io", "quay.io", Some(7)),
            ("quay.io@sha256:x", "quay.io", Some(7)),
            ("quay.io:5000/a", "quay.io", Some(7)), // "DON'T RELY"
            ("quay.iox/a", "quay.io", None),
            ("quay.i", "quay.io", None),
            ("quay.io/ab", "quay.io/a", None),
            ("quay.io/a/b", "quay.io/a", Some(9)),
            ("a.example.com/x", "*.example.com", Some(13)),
            ("a.b.example.com:5000/x", "*.example.com", Some(15)),
            ("a.example.com", "*.example.com", Some(13)),
            ("example.com/x", "*.example.com", None),
            ("a.example.community/x", "*.example.com", None),
            ("quay.io/a.example.com", "*.example.com", None),
            ("a.example.com@sha256:x", "*.example.com", Some(13)),
        ];
        for (reference, prefix, want) in cases {
            assert_eq!(
                ref_matching_prefix(reference, prefix),
                *want,
                "{reference} in {prefix}"
            );
        }
    }

    /// RULEBOOK section 6, containers/image naming.go.
    #[test]
    fn policy_lookup_order() {
        assert_eq!(
            policy_scopes(
                "docker.io/library/busybox",
                Some("docker.io/library/busybox:latest")
            ),
            [
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox",
                "docker.io/library",
                "docker.io",
                "*.io",
            ]
        );
        assert_eq!(
            policy_scopes("a.b.example.com:5000/ns/app", None),
            [
                "a.b.example.com:5000/ns/app",
                "a.b.example.com:5000/ns",
                "a.b.example.com:5000",
                "*.b.example.com",
                "*.example.com",
                "*.com",
            ]
        );
        assert_eq!(
            policy_scopes("localhost/app", None),
            ["localhost/app", "localhost"]
        );
        let entries = [
            "quay.io",
            "quay.io/ns/app:1",
            "*.example.com",
            "quay.io/ns",
            "*.com",
            "reg.io:5000",
        ];
        let index = ScopeIndex::new(entries);
        let cases = [
            ("quay.io/ns/app", "quay.io/ns/app:1", Some(1)),
            ("quay.io/ns/app", "quay.io/ns/app:2", Some(3)),
            ("quay.io/other", "quay.io/other:latest", Some(0)),
            (
                "a.b.example.com:5000/x",
                "a.b.example.com:5000/x:latest",
                Some(2),
            ),
            ("example.com/x", "example.com/x:latest", Some(4)),
            ("reg.io:5000/x", "reg.io:5000/x:latest", Some(5)),
            ("reg.io/x", "reg.io/x:latest", None),
            ("quay.io:443/x", "quay.io:443/x:latest", None),
        ];
        for (name, identity, want) in cases {
            assert_eq!(index.policy_match(name, identity), want, "{identity}");
            // The index agrees with a plain walk of the lookup order.
            let walked = policy_scopes(name, Some(identity))
                .iter()
                .find_map(|scope| entries.iter().position(|e| e == scope));
            assert_eq!(walked, want, "walk {identity}");
        }
    }

    #[test]
    fn registries_conf_scope_validity() {
        for ok in [
            "quay.io",
            "quay.io/ns",
            "anything:goes/here@x",
            "*.example.com",
            "*.com",
        ] {
            assert!(is_valid_registries_conf_scope(ok), "{ok}");
        }
        for bad in [
            "",
            "*",
            "*example.com",
            "*.example.com:5000",
            "*.a.com/x",
            "*.a@b",
            "**.a.com",
            "a.*.com",
        ] {
            assert!(!is_valid_registries_conf_scope(bad), "{bad}");
        }
    }
}
