//! Target 3b: `hostname[:port]` and RFC 1123 subdomains, differentially against the RULEBOOK
//! section 6 patterns (copied here from the RULEBOOK text, not from the crate).
//!
//! - `is_host_port(s)` == `^` + distribution/reference DomainRegexp + `$` (IPv6 bracket form
//!   included);
//! - `dns1123_subdomain_errors(s).is_empty()` == the `IsDNS1123Subdomain` regex and
//!   `len <= 253`, with the length message exactly when the length is over;
//! - `HostPort::split`, `limit_problems` and `shorten` never panic; split keeps the text of an
//!   accepted `hostname[:port]`.
#![no_main]

use std::sync::LazyLock;

use image_config_webhook::grammar::host::{
    HostPort, dns1123_subdomain_errors, is_host_port, limit_problems, shorten,
};
use libfuzzer_sys::fuzz_target;
use regex::Regex;

/// RULEBOOK section 6, distribution/reference regexp.go: domainNameComponent.
const DOMAIN_NAME_COMPONENT: &str = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
/// RULEBOOK section 6: the IPv6 host, no zone.
const IPV6: &str = r"\[(?:[a-fA-F0-9:]+)\]";
/// RULEBOOK section 6: optionalPort.
const OPTIONAL_PORT: &str = r"(?::[0-9]+)?";
/// RULEBOOK section 6, apimachinery IsDNS1123Subdomain, anchored.
const DNS1123: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    let c = DOMAIN_NAME_COMPONENT;
    // domainName = component(.component)*; host = domainName | IPv6; domain = host optionalPort.
    Regex::new(&format!(r"^(?:{c}(?:\.{c})*|{IPV6}){OPTIONAL_PORT}$")).unwrap()
});
static SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| Regex::new(DNS1123).unwrap());

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s: &str = &text;
    assert_eq!(
        is_host_port(s),
        DOMAIN.is_match(s),
        "is_host_port disagrees with ^DomainRegexp$ on {s:?}"
    );
    let errors = dns1123_subdomain_errors(s);
    let expected = SUBDOMAIN.is_match(s) && s.len() <= 253;
    assert_eq!(
        errors.is_empty(),
        expected,
        "dns1123_subdomain_errors disagrees with the RFC 1123 regex on {s:?}: {errors:?}"
    );
    assert_eq!(
        errors
            .iter()
            .any(|e| e == "must be no more than 253 characters"),
        s.len() > 253
    );
    let hp = HostPort::split(s);
    let rebuilt = match hp.port {
        Some(port) => format!("{}:{port}", hp.host),
        None => hp.host.to_owned(),
    };
    if is_host_port(s) {
        assert_eq!(
            rebuilt, s,
            "HostPort::split of an accepted host[:port] loses no text"
        );
    }
    let _ = (hp.is_ipv6(), hp.is_single_label(), hp.has_uppercase());
    let _ = limit_problems(&hp);
    for max in [0, 1, 12, 120] {
        let short = shorten(s, max);
        assert!(
            short.chars().count() <= max + 3,
            "shorten({s:?}, {max}) = {short:?}"
        );
    }
});
