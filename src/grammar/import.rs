//! `allowedRegistriesForImport`: the openshift-apiserver registry whitelister (RULEBOOK section 7).
//!
//! Each entry becomes a (host glob, port glob) pair: `host:port` is split on its single `:`,
//! and an entry without a port gets `443`, or `80` when `insecure` is true. Matching is
//! openshift-apiserver `IsWildcardMatch`: whole string, byte-exact, case-sensitive, `*` any run
//! of characters (dots included, possibly empty), `?` exactly one character, nothing else
//! special. An entry with two or more colons makes the whole whitelist fail to build (P2).

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

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
#[derive(Debug)]
pub struct ImportAllowList {
    hosts: GlobSet,
    ports: GlobSet,
    /// Entry index in the original list for each glob pair.
    entries: Vec<usize>,
}

impl ImportAllowList {
    /// Compiles the entries that parse; the others are skipped (they are reported by P2/P3).
    pub fn new<'a, I>(entries: I) -> Self
    where
        I: IntoIterator<Item = (usize, &'a str, bool)>,
    {
        let mut hosts = GlobSetBuilder::new();
        let mut ports = GlobSetBuilder::new();
        let mut indices = Vec::new();
        for (i, domain_name, insecure) in entries {
            let Ok(entry) = ImportEntry::parse(domain_name, insecure) else {
                continue;
            };
            let (Some(host), Some(port)) = (compile(entry.host), compile(entry.port)) else {
                continue;
            };
            hosts.add(host);
            ports.add(port);
            indices.push(i);
        }
        // Every glob was built from escaped literals plus `*` and `?`, so the set builds;
        // should it not, an empty set admits nothing, the safe reading for a warning.
        ImportAllowList {
            hosts: hosts.build().unwrap_or_else(|_| GlobSet::empty()),
            ports: ports.build().unwrap_or_else(|_| GlobSet::empty()),
            entries: indices,
        }
    }

    /// The index of the first entry that admits `host` on `port`.
    pub fn admitting(&self, host: &str, port: &str) -> Option<usize> {
        let hosts = self.hosts.matches(host);
        if hosts.is_empty() {
            return None;
        }
        let ports = self.ports.matches(port);
        hosts
            .into_iter()
            .find(|h| ports.binary_search(h).is_ok())
            .and_then(|k| self.entries.get(k).copied())
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
