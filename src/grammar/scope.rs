//! Registry scopes: the entries of `registrySources.{insecure,blocked,allowed}Registries`.
//!
//! - [`is_valid_scope`]: the CEL rule of openshift/api 4.23 (R2), the same pattern as the
//!   machine-config operator's `sourceRegex`: `host[:port][/path]` or `*.domain`.
//! - [`is_nested_inside`]: MCO `ScopeIsNestedInsideScope(sub, super)`, the meaning of "covers".
//! - [`ScopeIndex`]: the same question answered for a whole list in time linear in the target's
//!   length, so that list-against-list warnings stay linear on 1024-entry lists.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::host::HostPort;

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
        let (host_port, path) = match s.split_once('/') {
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

/// The host part of a scope as MCO reads it: everything before the first `:` or `/`.
fn host_part(scope: &str) -> &str {
    scope.find([':', '/']).map_or(scope, |i| &scope[..i])
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
        Some(suffix) if sup.starts_with("*.") => host_part(sub).ends_with(suffix),
        _ => false,
    }
}

/// A list of scopes indexed for "which entry covers this target?" questions.
#[derive(Debug, Default)]
pub struct ScopeIndex<'a> {
    exact: HashMap<&'a str, usize>,
    /// `.domain` suffixes of `*.domain` entries.
    wildcard: HashMap<&'a str, usize>,
}

impl<'a> ScopeIndex<'a> {
    /// Indexes entries; the first index of a repeated entry is kept.
    pub fn new<I: IntoIterator<Item = &'a str>>(entries: I) -> Self {
        let mut index = ScopeIndex::default();
        for (i, entry) in entries.into_iter().enumerate() {
            match entry.strip_prefix('*') {
                Some(suffix) if entry.starts_with("*.") => {
                    index.wildcard.entry(suffix).or_insert(i);
                }
                _ => {
                    index.exact.entry(entry).or_insert(i);
                }
            }
        }
        index
    }

    /// Whether the index holds no entry.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    /// The index of the most specific entry that covers `target` in the sense of
    /// [`is_nested_inside`]: the target itself, then its parent repositories from the longest,
    /// then the wildcard of the closest parent domain.
    pub fn covering(&self, target: &str) -> Option<usize> {
        if let Some(&i) = self.exact.get(target) {
            return Some(i);
        }
        let mut end = target.len();
        while let Some(slash) = target[..end].rfind('/') {
            if let Some(&i) = self.exact.get(&target[..slash]) {
                return Some(i);
            }
            end = slash;
        }
        let host = host_part(target);
        host.match_indices('.')
            .find_map(|(dot, _)| self.wildcard.get(&host[dot..]).copied())
    }

    /// Whether any entry covers `target`.
    pub fn covers(&self, target: &str) -> bool {
        self.covering(target).is_some()
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
        assert!(ScopeIndex::new([]).is_empty());
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
}
