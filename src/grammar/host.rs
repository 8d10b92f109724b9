//! `hostname[:port]` and RFC 1123 grammars.
//!
//! - [`is_host_port`]: distribution/reference `DomainRegexp`, anchored: a DNS name (labels of
//!   letters, digits and inner hyphens; single labels and IPv4 allowed) or a bracketed IPv6
//!   literal, then an optional `:digits`. This is what containers/image demands of
//!   `unqualified-search-registries` (P1) and what the API documents for registry hostnames (P4).
//! - [`dns1123_subdomain_errors`]: apimachinery `IsDNS1123Subdomain`, messages included.
//! - [`HostPort`] and [`limit_problems`]: the pieces the warnings look at.

use std::sync::LazyLock;

use regex::Regex;

const DOMAIN_COMPONENT: &str = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";

static HOST_PORT: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"^(?:{c}(?:\.{c})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$",
        c = DOMAIN_COMPONENT
    );
    // The pattern is a constant checked by the tests below; it cannot fail at run time.
    Regex::new(&pattern).expect("constant host:port pattern compiles")
});

/// The regular expression of `IsDNS1123Subdomain`, as apimachinery prints it in its message.
pub const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    // Constant pattern, checked by the tests below.
    Regex::new(&format!("^{DNS1123_SUBDOMAIN_FMT}$")).expect("constant RFC 1123 pattern compiles")
});

/// Whether `s` is `hostname[:port]` in the sense of distribution/reference `DomainRegexp`.
pub fn is_host_port(s: &str) -> bool {
    HOST_PORT.is_match(s)
}

/// The messages of apimachinery `IsDNS1123Subdomain`; empty when `s` is valid.
pub fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > 253 {
        errors.push("must be no more than 253 characters".to_owned());
    }
    if !DNS1123_SUBDOMAIN.is_match(s) {
        errors.push(format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
             and must start and end with an alphanumeric character (e.g. 'example.com', regex used for \
             validation is '{DNS1123_SUBDOMAIN_FMT}')"
        ));
    }
    errors
}

/// A `host[:port]` split into its parts, without validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort<'a> {
    /// The host: a DNS name, a bracketed IPv6 literal, or whatever stands before the port.
    pub host: &'a str,
    /// The text after the port colon, if there is one.
    pub port: Option<&'a str>,
}

impl<'a> HostPort<'a> {
    /// Splits `host[:port]`; a bracketed IPv6 literal keeps its colons.
    pub fn split(s: &'a str) -> Self {
        if s.starts_with('[')
            && let Some(end) = s.find(']')
        {
            let (host, rest) = s.split_at(end + 1);
            return HostPort {
                host,
                port: rest.strip_prefix(':'),
            };
        }
        match split_at_byte(s, b':') {
            Some((host, port)) => HostPort {
                host,
                port: Some(port),
            },
            None => HostPort {
                host: s,
                port: None,
            },
        }
    }

    /// Whether the host is a bracketed IPv6 literal.
    pub fn is_ipv6(&self) -> bool {
        self.host.starts_with('[')
    }

    /// Whether the host is a single DNS label that distribution/reference would read as a
    /// docker.io namespace: no `.` and no port, not `localhost`, no uppercase (uppercase makes it
    /// a host), and nothing a label cannot hold (`*`, `_`: those are grammar errors instead).
    pub fn is_single_label(&self) -> bool {
        self.port.is_none()
            && !self.is_ipv6()
            && !self.host.is_empty()
            && self
                .host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && self.host != "localhost"
    }

    /// Whether the host has an uppercase ASCII letter.
    pub fn has_uppercase(&self) -> bool {
        // Without an early exit, the loop runs over many bytes at a time.
        self.host
            .bytes()
            .fold(false, |any, b| any | b.is_ascii_uppercase())
    }
}

/// `s.split_once(byte)` for an ASCII `byte`, searched byte by byte in a short string (where a
/// call of the vectorized search costs more than the loop) and by `memchr` in a long one.
#[inline]
pub(crate) fn split_at_byte(s: &str, byte: u8) -> Option<(&str, &str)> {
    let at = if s.len() <= 32 {
        s.bytes().position(|b| b == byte)?
    } else {
        memchr::memchr(byte, s.as_bytes())?
    };
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// What breaks the limits of RFC 1123 and `IsValidPortNum` in a `host[:port]` that the
/// grammar accepted: a port outside 1-65535, a label over 63 characters, a host over 253.
/// Ports that are not all digits (globs) are not judged here.
pub fn limit_problems(hp: &HostPort<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(port) = hp.port
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        let in_range = port.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
        if !in_range {
            problems.push(format!("port {} is outside 1-65535", shorten(port, 12)));
        }
    }
    if !hp.is_ipv6() {
        // A host of at most 63 bytes has no longer label.
        if hp.host.len() > 63
            && hp
                .host
                .as_bytes()
                .split(|&b| b == b'.')
                .any(|label| label.len() > 63)
        {
            problems.push("a host label is longer than 63 characters".to_owned());
        }
        if hp.host.len() > 253 {
            problems.push("the host is longer than 253 characters".to_owned());
        }
    }
    problems
}

/// `s` cut to `max` characters with an ellipsis, for warnings that must stay short.
pub fn shorten(s: &str, max: usize) -> String {
    // At most `max` bytes are at most `max` characters; `max` ASCII bytes are `max` characters.
    if s.len() <= max {
        return s.to_owned();
    }
    if let Some(head) = s.get(..max).filter(|head| head.is_ascii()) {
        let mut out = String::with_capacity(max + 3);
        out.push_str(head);
        out.push_str("...");
        return out;
    }
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}...", &s[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! host_port {
        ($($s:expr => $ok:expr),* $(,)?) => {
            $( assert_eq!(is_host_port($s), $ok, "is_host_port({:?})", $s); )*
        };
    }

    #[test]
    fn host_port_grammar_edges() {
        host_port! {
            "quay.io" => true,
            "reg.io:5000" => true,
            "localhost" => true,
            "test" => true,
            "x" => true,
            "192.168.1.10:5000" => true,
            "[::1]:5000" => true,
            "[::1]" => true,
            "[fe80::1]:443" => true,
            "Registry.Example.COM" => true,
            "a-b.c" => true,
            "reg.io:99999" => true,
            "" => false,
            "-a.io" => false,
            "a-.io" => false,
            "a..io" => false,
            "a.io." => false,
            ".a.io" => false,
            "https://r.io" => false,
            "r.example.com/x" => false,
            "*.example.com" => false,
            "quay.io:" => false,
            "quay.io:abc" => false,
            "quay.io:5000:1" => false,
            "[::1" => false,
            "[zz::1]" => false,
            "my_registry.io" => false,
            " quay.io" => false,
            "quay.io\n" => false,
            "quay.io@sha256:abc" => false,
        }
    }

    #[test]
    fn dns1123_subdomain_edges() {
        assert!(dns1123_subdomain_errors("my-ca").is_empty());
        assert!(dns1123_subdomain_errors("a.b-c.d").is_empty());
        assert!(dns1123_subdomain_errors(&"a".repeat(253)).is_empty());
        // The label limit of 63 is not part of the subdomain check.
        assert!(dns1123_subdomain_errors(&"a".repeat(100)).is_empty());
        assert_eq!(
            dns1123_subdomain_errors(&"a".repeat(254)),
            vec!["must be no more than 253 characters"]
        );
        let msgs = dns1123_subdomain_errors("My_CA");
        assert_eq!(msgs.len(), 1);
        assert_eq!(
            msgs[0],
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert_eq!(
            dns1123_subdomain_errors(&format!("-{}", "a".repeat(253))).len(),
            2
        );
        for bad in ["-a", "a-", "a..b", ".a", "a.", "UPPER", "a b"] {
            assert_eq!(dns1123_subdomain_errors(bad).len(), 1, "{bad}");
        }
    }

    #[test]
    fn split_host_port() {
        assert_eq!(
            HostPort::split("quay.io"),
            HostPort {
                host: "quay.io",
                port: None
            }
        );
        assert_eq!(
            HostPort::split("quay.io:5000"),
            HostPort {
                host: "quay.io",
                port: Some("5000")
            }
        );
        assert_eq!(
            HostPort::split("[::1]:5000"),
            HostPort {
                host: "[::1]",
                port: Some("5000")
            }
        );
        assert_eq!(
            HostPort::split("[::1]"),
            HostPort {
                host: "[::1]",
                port: None
            }
        );
        assert_eq!(
            HostPort::split("a:b:c"),
            HostPort {
                host: "a",
                port: Some("b:c")
            }
        );
    }

    #[test]
    fn single_label_hosts() {
        assert!(HostPort::split("myregistry").is_single_label());
        assert!(!HostPort::split("myregistry:5000").is_single_label());
        assert!(!HostPort::split("localhost").is_single_label());
        assert!(!HostPort::split("MyRegistry").is_single_label());
        assert!(!HostPort::split("reg.io").is_single_label());
        assert!(!HostPort::split("[::1]").is_single_label());
        assert!(!HostPort::split("*").is_single_label());
        assert!(!HostPort::split("my_registry").is_single_label());
        assert!(!HostPort::split("").is_single_label());
    }

    #[test]
    fn limits() {
        assert!(limit_problems(&HostPort::split("reg.io:5000")).is_empty());
        assert!(limit_problems(&HostPort::split("reg.io:*")).is_empty());
        assert_eq!(
            limit_problems(&HostPort::split("reg.io:99999")),
            vec!["port 99999 is outside 1-65535"]
        );
        assert_eq!(
            limit_problems(&HostPort::split("reg.io:0")),
            vec!["port 0 is outside 1-65535"]
        );
        assert_eq!(
            limit_problems(&HostPort::split("reg.io:99999999999999999999")),
            vec!["port 999999999999... is outside 1-65535"]
        );
        let long = "a".repeat(256);
        assert_eq!(limit_problems(&HostPort::split(&long)).len(), 2);
        assert_eq!(limit_problems(&HostPort::split(&"a".repeat(64))).len(), 1);
        assert!(limit_problems(&HostPort::split(&"a".repeat(63))).is_empty());
    }
}
