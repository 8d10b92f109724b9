//! `allowedRegistriesForImport`: the openshift-apiserver registry whitelister (RULEBOOK section 7).
//!
//! Each entry becomes a (host glob, port glob) pair: `host:port` is split on its single `:`,
//! and an entry without a port gets `443`, or `80` when `insecure` is true. Matching is
//! openshift-apiserver `IsWildcardMatch` ([`is_wildcard_match`]): whole string, byte-exact,
//! case-sensitive, `*` any run of bytes (dots included, possibly empty), `?` exactly one byte
//! (Go indexes strings by byte: one ASCII character), nothing else special. An entry with two or
//! more colons makes the whole whitelist fail to build (P2).
//!
//! [`ImportAllowList::admit`] is openshift-apiserver `AdmitDockerImageReference`: the host and
//! port taken from a reference's registry as written (`docker.io` tried for Docker Hub aliases,
//! the internal registry always admitted) and, on refusal, the exact error text the API server
//! returns (`registry "x" not allowed by whitelist: "a:443", ...`). [`ImportAllowList::admitter`]
//! answers the same question without building that text.
//!
//! Nothing is compiled or allocated per entry: an entry is two borrowed patterns, matched in
//! place. The list is as long as the request makes it (the API sets no `maxItems`), so every
//! operation here is linear in the number of entries.

use std::collections::HashSet;

use crate::field::go_quote;

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

/// The port an entry without one gets: `443`, or `80` for an `insecure` entry.
pub fn default_port(insecure: bool) -> &'static str {
    if insecure { "80" } else { "443" }
}

/// How an import reaches the registry (openshift-apiserver `WhitelistTransport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// TLS: a registry without a port is checked on 443. ImageStream imports by default.
    Secure,
    /// Plain HTTP: a registry without a port is checked on 80.
    Insecure,
    /// Either (an import with `importPolicy.insecure: true`): a registry without a port is
    /// admitted by entries whose port is `80`, `443` or `*`.
    Any,
}

/// What admitted an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admitter {
    /// The internal registry, which the whitelister always adds.
    Internal,
    /// The entry of this index.
    Entry(usize),
}

/// An import the whitelister refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The `host:port` that was checked (port empty for [`Transport::Any`] without a port).
    pub checked: String,
    /// The error text the API server returns.
    pub message: String,
}

/// Docker Hub's names in openshift-apiserver (`DockerDefaultRegistry`, `...V1Registry`,
/// `...V2Registry`).
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_V1: &str = "index.docker.io";
const DOCKER_HUB_V2: &str = "registry-1.docker.io";

/// How many entries the refusal message shows before "and N more ...".
const SHOW_MAX: usize = 5;

/// Go `net.SplitHostPort`, returning `None` where Go returns an error.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        let clean = !host.contains(['[', ']']) && !port.contains([':', '[', ']']);
        return clean.then_some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    let clean = !host.contains([':', '[', ']']) && !port.contains(['[', ']']);
    clean.then_some((host, port))
}

/// Go `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// library-go `DockerImageReference.RegistryHostPort`: Docker Hub as `registry-1.docker.io`,
/// an empty registry as `docker.io`, the port as written or 443 (80 when `insecure`).
pub fn registry_host_port(registry: &str, insecure: bool) -> (String, String) {
    let registry = match registry {
        DOCKER_HUB | DOCKER_HUB_V1 => DOCKER_HUB_V2,
        "" => DOCKER_HUB,
        other => other,
    };
    if registry.contains(':') {
        let (host, port) = split_host_port(registry).unwrap_or(("", ""));
        return (host.to_owned(), port.to_owned());
    }
    (registry.to_owned(), default_port(insecure).to_owned())
}

/// Whether `s` uses a glob character of the whitelister.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// openshift-apiserver `IsWildcardMatch(text, pattern)`: whether `pattern` matches all of
/// `text`, byte by byte, where `*` matches any run of bytes (possibly empty) and `?` exactly one
/// byte. Upstream fills a dynamic-programming table over the bytes of both strings; this is the
/// equivalent greedy match that backtracks to the last `*` only, in O(len(pattern) * len(text))
/// time at worst, without allocating.
pub fn is_wildcard_match(text: &str, pattern: &str) -> bool {
    let (text, pattern) = (text.as_bytes(), pattern.as_bytes());
    let (mut t, mut p) = (0, 0);
    // The position after the last `*` seen, and the text position it is trying to match from.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, t));
            }
            Some(&c) if c == b'?' || text.get(t) == Some(&c) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more byte and retry from just after it.
                Some((after_star, from)) => {
                    p = after_star;
                    t = from + 1;
                    star = Some((after_star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// A whitelist ready to match: which entry admits `host:port`?
///
/// Each entry is its two patterns, borrowed from the request: building the list allocates one
/// vector, and matching allocates nothing.
#[derive(Debug)]
pub struct ImportAllowList<'a> {
    entries: Vec<Entry<'a>>,
    /// The internal registry, always admitted (secure).
    internal: Option<Entry<'a>>,
}

/// One entry, ready to match.
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    /// The entry's index in the list.
    index: usize,
    /// The host pattern.
    host: &'a str,
    /// The port pattern.
    port: &'a str,
}

impl<'a> Entry<'a> {
    fn new(index: usize, entry: &ImportEntry<'a>) -> Self {
        Entry {
            index,
            host: entry.host,
            port: entry.port,
        }
    }

    /// `IsWildcardMatch` of the host, and of the port when there is one; without a port
    /// (`Transport::Any`) the entry's port must be `80`, `443` or `*`.
    fn admits(&self, host: &str, port: Option<&str>) -> bool {
        is_wildcard_match(host, self.host)
            && match port {
                None => matches!(self.port, "80" | "443" | "*"),
                Some(port) => is_wildcard_match(port, self.port),
            }
    }

    /// The pair as the refusal message shows it.
    fn pair(&self) -> (&'a str, &'a str) {
        (self.host, self.port)
    }
}

impl<'a> ImportAllowList<'a> {
    /// Compiles `(index, domainName, insecure)` entries. An entry with too many colons is
    /// skipped (it stops the whole whitelister, reported by P2); an empty `domainName` stays,
    /// as upstream keeps it: it matches only an empty host.
    pub fn new<I>(entries: I) -> Self
    where
        I: IntoIterator<Item = (usize, &'a str, bool)>,
    {
        let mut out = Vec::new();
        for (i, domain_name, insecure) in entries {
            let entry = match ImportEntry::parse(domain_name, insecure) {
                Ok(entry) => entry,
                Err(EntryError::Empty) => ImportEntry {
                    host: domain_name,
                    port: default_port(insecure),
                    default_port: true,
                },
                Err(EntryError::TooManyColons) => continue,
            };
            out.push(Entry::new(i, &entry));
        }
        ImportAllowList {
            entries: out,
            internal: None,
        }
    }

    /// Adds the internal registry hostname (`host[:port]`, secure), as the whitelister does for
    /// every check. A hostname with two or more colons is ignored, as upstream ignores it.
    pub fn with_internal(mut self, hostname: &'a str) -> Self {
        self.internal = ImportEntry::parse(hostname, false)
            .ok()
            .map(|entry| Entry::new(usize::MAX, &entry));
        self
    }

    /// The index of the first entry that admits `host` on `port` (the internal registry left
    /// out).
    pub fn admitting(&self, host: &str, port: &str) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.admits(host, Some(port)))
            .map(|e| e.index)
    }

    /// openshift-apiserver `AdmitDockerImageReference` for a reference whose registry is
    /// `registry` as written (empty for a name without registry): who admits it, or the
    /// refusal with the API server's message.
    pub fn admit(&self, registry: &str, transport: Transport) -> Result<Admitter, Refusal> {
        let checked = Checked::new(registry, transport);
        if let Some(admitter) = self.first_admitting(&checked) {
            return Ok(admitter);
        }
        let shown = match &checked.port {
            Some(p) => join_host_port(&checked.host, p),
            None => checked.host.clone(),
        };
        let hostname = if registry.is_empty() {
            shown.as_str()
        } else {
            registry
        };
        Err(Refusal {
            message: self.refusal_message(hostname),
            checked: shown,
        })
    }

    /// [`admit`](Self::admit) without the refusal: who admits the registry, if anyone. Linear in
    /// the number of entries, and builds no message (a rule that only needs yes or no must not
    /// pay for the whitelister's error text).
    pub fn admitter(&self, registry: &str, transport: Transport) -> Option<Admitter> {
        self.first_admitting(&Checked::new(registry, transport))
    }

    fn first_admitting(&self, checked: &Checked) -> Option<Admitter> {
        let port = checked.port.as_deref();
        let first_admitting = |h: &str| {
            if self.internal.as_ref().is_some_and(|i| i.admits(h, port)) {
                return Some(Admitter::Internal);
            }
            self.entries
                .iter()
                .find(|e| e.admits(h, port))
                .map(|e| Admitter::Entry(e.index))
        };
        // Try plain `docker.io` first for Docker Hub's aliases, to satisfy `docker.io:*`.
        let docker_alias = checked.host == DOCKER_HUB_V1 || checked.host == DOCKER_HUB_V2;
        docker_alias
            .then(|| first_admitting(DOCKER_HUB))
            .flatten()
            .or_else(|| first_admitting(&checked.host))
    }

    /// The whitelister's error: its pairs in its own order (the internal registry first, then
    /// each distinct pair at its last position in the list), at most five shown. Linear in the
    /// number of entries.
    fn refusal_message(&self, hostname: &str) -> String {
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for entry in self.entries.iter().rev() {
            if seen.insert(entry.pair()) {
                pairs.push(entry.pair());
            }
        }
        if let Some(internal) = &self.internal
            && !seen.contains(&internal.pair())
        {
            pairs.push(internal.pair());
        }
        pairs.reverse();
        let hostname = go_quote(hostname);
        if pairs.is_empty() {
            return format!("registry {hostname} not allowed by empty whitelist");
        }
        let shown_count = if pairs.len() <= SHOW_MAX {
            pairs.len()
        } else {
            SHOW_MAX - 1
        };
        let shown: Vec<String> = pairs
            .iter()
            .take(shown_count)
            .map(|(h, p)| go_quote(&join_host_port(h, p)))
            .collect();
        if pairs.len() <= SHOW_MAX {
            format!(
                "registry {hostname} not allowed by whitelist: {}",
                shown.join(", ")
            )
        } else {
            format!(
                "registry {hostname} not allowed by whitelist: {}, and {} more ...",
                shown.join(", "),
                pairs.len() - shown_count
            )
        }
    }
}

/// The host and port that `AdmitDockerImageReference` checks for a registry as written.
struct Checked {
    host: String,
    /// `None` for [`Transport::Any`] without a port.
    port: Option<String>,
}

impl Checked {
    fn new(registry: &str, transport: Transport) -> Self {
        let (host, port) = match transport {
            Transport::Any => {
                let (mut host, port) = match split_host_port(registry) {
                    Some((h, p)) if !p.is_empty() => (h.to_owned(), Some(p.to_owned())),
                    _ => (registry.to_owned(), None),
                };
                if host.is_empty() {
                    host = registry_host_port(registry, false).0;
                }
                (host, port)
            }
            Transport::Insecure => {
                let (h, p) = registry_host_port(registry, true);
                (h, Some(p))
            }
            Transport::Secure => {
                let (h, p) = registry_host_port(registry, false);
                (h, Some(p))
            }
        };
        Checked {
            host,
            port: port.filter(|p| !p.is_empty()),
        }
    }
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

    /// `IsWildcardMatch` byte for byte: `?` is one byte, as Go indexes strings by byte (and as
    /// the globset matcher this replaces did, with Unicode off).
    #[test]
    fn wildcard_match_like_upstream() {
        let cases = [
            ("", "", true),
            ("", "*", true),
            ("", "**", true),
            ("", "?", false),
            ("a", "", false),
            ("abc", "abc", true),
            ("abc", "ABC", false),
            ("abc", "a*", true),
            ("abc", "*c", true),
            ("abc", "a*c", true),
            ("ac", "a*c", true),
            ("abc", "a?c", true),
            ("abbc", "a?c", false),
            ("a.b.c", "*.c", true),
            ("a.b.c", "a*b*c", true),
            ("adceb", "*a*b", true),
            ("acdcb", "a*c?b", false),
            ("aaab", "*a*a*b", true),
            ("aab", "*a*a*a*b", false),
            ("[a-z].io", "[a-z].io", true),
            ("q.io", "[a-z].io", false),
            ("a\\b", "a\\b", true),
            ("é", "?", false),
            ("é", "??", true),
            ("é.io", "*.io", true),
        ];
        for (text, pattern, want) in cases {
            assert_eq!(
                is_wildcard_match(text, pattern),
                want,
                "IsWildcardMatch({text:?}, {pattern:?})"
            );
        }
    }

    /// A hostile pattern of 100 000 characters (`*a*a*a...`) against a 300-character host:
    /// no backtracking blow-up, no allocation, and the right answer.
    #[allow(clippy::disallowed_methods)] // times the check to show it stays linear
    #[test]
    fn a_huge_star_pattern_finishes() {
        let pattern: String = "*a".repeat(50_000);
        assert_eq!(pattern.len(), 100_000);
        let host = "a".repeat(299) + "b";
        let started = std::time::Instant::now();
        assert!(!is_wildcard_match(&host, &pattern));
        assert!(!is_wildcard_match(&"a".repeat(300), &pattern));
        assert!(is_wildcard_match(&"a".repeat(300), &"*a".repeat(150)));
        assert!(!is_wildcard_match(
            &"ab".repeat(150),
            &(pattern.clone() + "*c")
        ));
        let list = ImportAllowList::new([(0, pattern.as_str(), false)]);
        assert_eq!(list.admitting(&host, "443"), None);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    fn list_of<'a>(entries: &'a [(&'a str, bool)]) -> ImportAllowList<'a> {
        ImportAllowList::new(entries.iter().enumerate().map(|(i, (d, s))| (i, *d, *s)))
    }

    /// The refusal text stays linear to build: 40 000 distinct entries, five shown.
    #[test]
    fn refusal_of_a_long_list() {
        let names: Vec<String> = (0..40_000).map(|i| format!("h{i}.example.com")).collect();
        let list = ImportAllowList::new(
            names
                .iter()
                .enumerate()
                .map(|(i, d)| (i, d.as_str(), false)),
        )
        .with_internal("h0.example.com:443");
        assert_eq!(list.admitter("quay.io", Transport::Secure), None);
        assert_eq!(
            list.admit("quay.io", Transport::Secure).map_err(|r| r.message),
            Err(r#"registry "quay.io" not allowed by whitelist: "h0.example.com:443", "h1.example.com:443", "h2.example.com:443", "h3.example.com:443", and 39996 more ..."#.to_owned())
        );
        // An internal registry that is also an entry keeps the entry's place.
        let entries = [("a.io", false), ("b.io", false)];
        assert_eq!(
            list_of(&entries)
                .with_internal("b.io")
                .admit("c.io", Transport::Secure)
                .map_err(|r| r.message),
            Err(r#"registry "c.io" not allowed by whitelist: "a.io:443", "b.io:443""#.to_owned())
        );
        assert_eq!(
            list.admitter("h39999.example.com", Transport::Secure),
            Some(Admitter::Entry(39_999))
        );
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

    fn list<'a>(entries: &'a [(&'a str, bool)]) -> ImportAllowList<'a> {
        ImportAllowList::new(entries.iter().enumerate().map(|(i, (d, s))| (i, *d, *s)))
    }

    /// `AdmitDockerImageReference` with the registry as written in the reference.
    #[test]
    fn admit_reads_the_registry_like_openshift_apiserver() {
        let entries = [
            ("docker.io:*", false),
            ("quay.io", true),
            ("*.example.com", false),
        ];
        let l = list(&entries);
        let cases = [
            ("", Transport::Secure, Ok(Admitter::Entry(0))),
            ("docker.io", Transport::Secure, Ok(Admitter::Entry(0))),
            ("index.docker.io", Transport::Secure, Ok(Admitter::Entry(0))),
            (
                "registry-1.docker.io",
                Transport::Secure,
                Ok(Admitter::Entry(0)),
            ),
            ("docker.io:5000", Transport::Secure, Ok(Admitter::Entry(0))),
            ("quay.io", Transport::Insecure, Ok(Admitter::Entry(1))),
            ("quay.io", Transport::Any, Ok(Admitter::Entry(1))),
            ("quay.io:80", Transport::Secure, Ok(Admitter::Entry(1))),
            ("a.b.example.com", Transport::Secure, Ok(Admitter::Entry(2))),
            ("a.example.com", Transport::Any, Ok(Admitter::Entry(2))),
        ];
        for (registry, transport, want) in cases.clone() {
            assert_eq!(
                l.admit(registry, transport).map_err(|r| r.message),
                want,
                "{registry} {transport:?}"
            );
        }
        let refused = [
            ("quay.io", Transport::Secure, "quay.io:443"),
            ("example.com", Transport::Secure, "example.com:443"),
            (
                "a.example.com:5000",
                Transport::Secure,
                "a.example.com:5000",
            ),
            ("a.example.com:5000", Transport::Any, "a.example.com:5000"),
            ("Quay.io", Transport::Insecure, "Quay.io:80"),
        ];
        for (registry, transport, checked) in refused {
            let got = l.admit(registry, transport).map_err(|r| r.checked);
            assert_eq!(got, Err(checked.to_owned()), "{registry} {transport:?}");
        }
        // `admitter` is `admit` without the refusal text.
        for (registry, transport) in cases
            .iter()
            .map(|(r, t, _)| (*r, *t))
            .chain(refused.iter().map(|(r, t, _)| (*r, *t)))
        {
            assert_eq!(
                l.admitter(registry, transport),
                l.admit(registry, transport).ok(),
                "{registry} {transport:?}"
            );
        }
    }

    #[test]
    fn the_internal_registry_is_always_admitted_and_listed_first() {
        let entries = [("quay.io", false)];
        let l = list(&entries).with_internal("image-registry.openshift-image-registry.svc:5000");
        assert_eq!(
            l.admit(
                "image-registry.openshift-image-registry.svc:5000",
                Transport::Secure
            ),
            Ok(Admitter::Internal)
        );
        assert_eq!(
            l.admit("registry.redhat.io", Transport::Secure).map_err(|r| r.message),
            Err(r#"registry "registry.redhat.io" not allowed by whitelist: "image-registry.openshift-image-registry.svc:5000", "quay.io:443""#.to_owned())
        );
        // An internal hostname the whitelister cannot parse is left out.
        let l = list(&entries).with_internal("a:b:c");
        assert!(l.admit("a", Transport::Secure).is_err());
    }

    /// The refusal text: `%q` pairs in the whitelister's order, at most five shown.
    #[test]
    fn refusal_messages() {
        let message = |entries: &[(&str, bool)], registry: &str| {
            list(entries)
                .admit(registry, Transport::Secure)
                .map_err(|r| r.message)
        };
        assert_eq!(
            message(&[("quay.io/openshift-release-dev", false)], "quay.io"),
            Err(r#"registry "quay.io" not allowed by whitelist: "quay.io/openshift-release-dev:443""#.to_owned())
        );
        assert_eq!(
            message(&[("", false)], ""),
            Err(r#"registry "docker.io:443" not allowed by whitelist: ":443""#.to_owned())
        );
        // Duplicates collapse onto their last position, as the whitelister prepends in reverse.
        assert_eq!(
            message(
                &[("a.io", false), ("b.io", false), ("a.io:443", false)],
                "c.io"
            ),
            Err(r#"registry "c.io" not allowed by whitelist: "b.io:443", "a.io:443""#.to_owned())
        );
        let six = [
            ("a.io", false),
            ("b.io", false),
            ("c.io", false),
            ("d.io", false),
            ("e.io", false),
            ("f.io", false),
        ];
        assert_eq!(
            message(&six, "x.io"),
            Err(r#"registry "x.io" not allowed by whitelist: "a.io:443", "b.io:443", "c.io:443", "d.io:443", and 2 more ..."#.to_owned())
        );
        assert_eq!(
            message(&six[..5], "x.io:5000"),
            Err(r#"registry "x.io:5000" not allowed by whitelist: "a.io:443", "b.io:443", "c.io:443", "d.io:443", "e.io:443""#.to_owned())
        );
        assert_eq!(
            list(&[])
                .admit("x.io", Transport::Secure)
                .map_err(|r| r.message),
            Err(r#"registry "x.io" not allowed by empty whitelist"#.to_owned())
        );
    }

    #[test]
    fn registry_host_port_like_library_go() {
        let cases = [
            ("", false, ("docker.io", "443")),
            ("docker.io", false, ("registry-1.docker.io", "443")),
            ("index.docker.io", true, ("registry-1.docker.io", "80")),
            ("quay.io:5000", false, ("quay.io", "5000")),
            ("[::1]:5000", false, ("::1", "5000")),
            ("[::1]", false, ("", "")),
            ("localhost", true, ("localhost", "80")),
        ];
        for (registry, insecure, (host, port)) in cases {
            assert_eq!(
                registry_host_port(registry, insecure),
                (host.to_owned(), port.to_owned()),
                "{registry}"
            );
        }
    }
}
