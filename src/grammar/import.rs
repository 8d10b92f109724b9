//! `allowedRegistriesForImport`: the openshift-apiserver registry whitelister (RULEBOOK section 7).
//!
//! Each entry becomes a (host glob, port glob) pair: `host:port` is split on its single `:`,
//! and an entry without a port gets `443`, or `80` when `insecure` is true. Matching is
//! openshift-apiserver `IsWildcardMatch`: whole string, byte-exact, case-sensitive, `*` any run
//! of characters (dots included, possibly empty), `?` exactly one character, nothing else
//! special. An entry with two or more colons makes the whole whitelist fail to build (P2).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use globset::{GlobBuilder, GlobMatcher};

/// Why a `domainName` cannot be an entry of the whitelist.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryError {
    /// Two or more colons: openshift-apiserver refuses to start (P2).
    TooManyColons,
    /// The empty string: it matches nothing but still makes the list restrictive (P3).
    Empty,
}

/// One parsed entry: the host glob and the port glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportEntry<'a> {
    /// The host glob.
    pub host: &'a str,
    /// The port glob, after the default port was applied.
    pub port: &'a str,
    /// Whether the port came from the default (no `:` in the entry).
    pub default_port: bool,
}

impl<'a> ImportEntry<'a> {
    /// Parses a `domainName` the way the whitelister's constructor does.
    pub fn parse(domain_name: &'a str, insecure: bool) -> Result<Self, EntryError> {
        if domain_name.is_empty() {
            return Err(EntryError::Empty);
        }
        match domain_name.split_once(':') {
            Some((_, port)) if port.contains(':') => Err(EntryError::TooManyColons),
            Some((host, port)) => Ok(ImportEntry {
                host,
                port,
                default_port: false,
            }),
            None => Ok(ImportEntry {
                host: domain_name,
                port: if insecure { "80" } else { "443" },
                default_port: true,
            }),
        }
    }
}

/// Whether `s` uses a glob character of the whitelister.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// A compiled whitelist: which entry admits `host:port`?
///
/// Entries without `*` or `?` are compared as strings; the others are globs. The Image object is
/// a singleton, so the same patterns arrive with every request: compiled globs are kept in a
/// bounded process-wide cache, and a request pays for a hash lookup, not a regex compilation.
#[derive(Debug)]
pub struct ImportAllowList<'a> {
    /// `(entry index, host pattern, port pattern, compiled host and port globs if any)`.
    entries: Vec<(usize, &'a str, &'a str, Option<Arc<GlobPair>>)>,
}

/// The compiled host glob and port glob of one entry.
type GlobPair = (GlobMatcher, GlobMatcher);

/// Compiled glob pairs by (host pattern, port pattern).
type GlobCache = HashMap<(String, String), Arc<GlobPair>>;

/// Compiled glob pairs; cleared when it reaches [`GLOB_CACHE_MAX`] entries.
static GLOB_CACHE: LazyLock<Mutex<GlobCache>> = LazyLock::new(|| Mutex::new(HashMap::new()));
const GLOB_CACHE_MAX: usize = 4096;

fn compiled(host: &str, port: &str) -> Option<Arc<GlobPair>> {
    let key = (host.to_owned(), port.to_owned());
    // A poisoned lock only means another thread panicked mid-insert; the map is still sound.
    let mut cache = GLOB_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hit) = cache.get(&key) {
        return Some(hit.clone());
    }
    let pair = Arc::new((
        compile(host)?.compile_matcher(),
        compile(port)?.compile_matcher(),
    ));
    if cache.len() >= GLOB_CACHE_MAX {
        cache.clear();
    }
    cache.insert(key, pair.clone());
    Some(pair)
}

impl<'a> ImportAllowList<'a> {
    /// Compiles the entries that parse; the others are skipped (they are reported by P2/P3).
    pub fn new<I>(entries: I) -> Self
    where
        I: IntoIterator<Item = (usize, &'a str, bool)>,
    {
        let mut out = Vec::new();
        for (i, domain_name, insecure) in entries {
            let Ok(entry) = ImportEntry::parse(domain_name, insecure) else {
                continue;
            };
            let globs = if has_glob(entry.host) || has_glob(entry.port) {
                // Built from escaped literals plus `*` and `?`, a glob always compiles; one that
                // did not would admit nothing, the safe reading for a warning.
                match compiled(entry.host, entry.port) {
                    Some(pair) => Some(pair),
                    None => continue,
                }
            } else {
                None
            };
            out.push((i, entry.host, entry.port, globs));
        }
        ImportAllowList { entries: out }
    }

    /// The index of the first entry that admits `host` on `port`.
    pub fn admitting(&self, host: &str, port: &str) -> Option<usize> {
        self.entries.iter().find_map(|(i, h, p, globs)| {
            let admits = match globs {
                None => *h == host && *p == port,
                Some(pair) => pair.0.is_match(host) && pair.1.is_match(port),
            };
            admits.then_some(*i)
        })
    }
}

/// A glob with only `*` and `?` special, everything else literal, case-sensitive.
fn compile(pattern: &str) -> Option<globset::Glob> {
    let mut escaped = String::with_capacity(pattern.len() + 8);
    let mut literal = String::new();
    for c in pattern.chars() {
        if c == '*' || c == '?' {
            escaped.push_str(&globset::escape(&literal));
            literal.clear();
            escaped.push(c);
        } else {
            literal.push(c);
        }
    }
    escaped.push_str(&globset::escape(&literal));
    GlobBuilder::new(&escaped)
        .literal_separator(false)
        .backslash_escape(false)
        .case_insensitive(false)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admits(entries: &[(&str, bool)], host: &str, port: &str) -> bool {
        let list = ImportAllowList::new(entries.iter().enumerate().map(|(i, (d, s))| (i, *d, *s)));
        list.admitting(host, port).is_some()
    }

    macro_rules! admits {
        ($($entries:expr, $host:expr, $port:expr => $want:expr);* $(;)?) => {
            $( assert_eq!(admits($entries, $host, $port), $want, "{:?} admits {}:{}", $entries, $host, $port); )*
        };
    }

    /// RULEBOOK section 7, the examples verified against a port of the Go code.
    #[test]
    fn whitelister_examples() {
        admits! {
            &[("*.example.com", false)], "a.example.com", "443" => true;
            &[("*.example.com", false)], "a.b.example.com", "443" => true;
            &[("*.example.com", false)], "example.com", "443" => false;
            &[("*.example.com", false)], "a.example.com", "5000" => false;
            &[("docker.io:*", false)], "docker.io", "443" => true;
            &[("docker.io:*", false)], "docker.io", "5000" => true;
            &[("??.example.com", false)], "ab.example.com", "443" => true;
            &[("??.example.com", false)], "a.example.com", "443" => false;
            &[("??.example.com", false)], "abc.example.com", "443" => false;
            &[("??.example.com", false)], "a.b.example.com", "443" => false;
            &[("*", false)], "anything.io", "443" => true;
            &[("*", false)], "anything.io", "80" => false;
            &[("*:*", false)], "anything.io", "8080" => true;
            &[("quay.io", true)], "quay.io", "80" => true;
            &[("quay.io", true)], "quay.io", "443" => false;
            &[("Quay.io", false)], "quay.io", "443" => false;
            &[("quay.io/openshift-release-dev", false)], "quay.io", "443" => false;
            &[("", false)], "quay.io", "443" => false;
            &[("a:b:c", false)], "a", "b:c" => false;
            &[("[a-z].io", false)], "q.io", "443" => false;
            &[("[a-z].io", false)], "[a-z].io", "443" => true;
            &[("{a,b}.io", false)], "a.io", "443" => false;
            &[("reg.io:5000", false), ("quay.io", false)], "quay.io", "443" => true;
        }
    }

    #[test]
    fn admitting_names_the_entry() {
        let list = ImportAllowList::new([(0, "reg.io", false), (1, "", false), (2, "*.io", false)]);
        assert_eq!(list.admitting("quay.io", "443"), Some(2));
        assert_eq!(list.admitting("reg.io", "443"), Some(0));
        assert_eq!(list.admitting("reg.io", "80"), None);
    }

    #[test]
    fn entry_parse() {
        assert_eq!(
            ImportEntry::parse("a:b:c", false),
            Err(EntryError::TooManyColons)
        );
        assert_eq!(
            ImportEntry::parse("[::1]:5000", false),
            Err(EntryError::TooManyColons)
        );
        assert_eq!(ImportEntry::parse("", false), Err(EntryError::Empty));
        assert_eq!(
            ImportEntry::parse("quay.io", true),
            Ok(ImportEntry {
                host: "quay.io",
                port: "80",
                default_port: true
            })
        );
        assert_eq!(
            ImportEntry::parse("quay.io:5000", true),
            Ok(ImportEntry {
                host: "quay.io",
                port: "5000",
                default_port: false
            })
        );
    }
}
