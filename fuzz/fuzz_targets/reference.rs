//! Target 3c: image references (`grammar::reference`), against distribution/reference's
//! ReferenceRegexp built here from the RULEBOOK section 6 pieces.
//!
//! Invariants on `Reference::parse(s)`: no panic; when `Ok`,
//! - the normalised form (`to_string`) matches the anchored ReferenceRegexp, its name is at
//!   most 255 characters and it has a domain;
//! - it re-parses to itself (normalisation is idempotent), and so does the familiar form unless
//!   upstream's FamiliarString is itself ambiguous (a Docker Hub path whose first component
//!   looks like a registry);
//! - `in_registry` of its own domain never panics, and for a written domain gives it back.
#![no_main]

use std::sync::LazyLock;

use image_config_webhook::grammar::reference::{NAME_TOTAL_LENGTH_MAX, Reference};
use libfuzzer_sys::fuzz_target;
use regex::Regex;

/// RULEBOOK section 6 (distribution/reference regexp.go) pieces.
const DOMAIN_NAME_COMPONENT: &str = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const IPV6: &str = r"\[(?:[a-fA-F0-9:]+)\]";
const OPTIONAL_PORT: &str = r"(?::[0-9]+)?";
const PATH_COMPONENT: &str = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
/// `[\w][\w.-]{0,127}` with Go's ASCII `\w`.
const TAG: &str = r"[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
/// distribution/reference digestPat.
const DIGEST: &str = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";

static REFERENCE_REGEXP: LazyLock<Regex> = LazyLock::new(|| {
    let c = DOMAIN_NAME_COMPONENT;
    let domain = format!(r"(?:{c}(?:\.{c})*|{IPV6}){OPTIONAL_PORT}");
    let name = format!(r"(?:{domain}/)?{PATH_COMPONENT}(?:/{PATH_COMPONENT})*");
    Regex::new(&format!(r"^({name})(?::({TAG}))?(?:@({DIGEST}))?$")).unwrap()
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s: &str = &text;
    let Ok(r) = Reference::parse(s) else {
        return;
    };
    let full = r.to_string();
    let caps = REFERENCE_REGEXP.captures(&full).unwrap_or_else(|| {
        panic!("normalised {full:?} (from {s:?}) is not a ReferenceRegexp match")
    });
    assert!(
        caps[1].len() <= NAME_TOTAL_LENGTH_MAX,
        "name too long in {full:?}"
    );
    assert!(!r.domain().is_empty(), "{s:?} parsed without a domain");
    assert_eq!(r.name(), &caps[1], "name() is the name part of {full:?}");
    let again = Reference::parse(&full)
        .unwrap_or_else(|e| panic!("normalised {full:?} (from {s:?}) does not re-parse: {e}"));
    assert_eq!(
        again.to_string(),
        full,
        "normalisation of {s:?} is not idempotent"
    );
    // Upstream FamiliarString drops `docker.io/` even when the first path component then reads
    // as a registry (`docker.io/a.b/c` -> `a.b/c`, `docker.io/a_b.c/d` -> `a_b.c/d`, which does
    // not even parse as a reference with a registry); only other references must round-trip
    // (finding reference-familiar-domain-like-path, fuzz/RESULTS.md).
    let familiar = r.familiar();
    let first = r.path().split('/').next().unwrap_or("");
    let ambiguous = r.domain() == "docker.io"
        && r.path().contains('/')
        && (first == "localhost" || first.contains(['.', ':']));
    if !ambiguous {
        let from_familiar = Reference::parse(&familiar)
            .unwrap_or_else(|e| panic!("familiar {familiar:?} (from {s:?}) does not parse: {e}"));
        assert_eq!(
            from_familiar.to_string(),
            full,
            "familiar form of {s:?} changes the reference"
        );
    }
    let _ = r.policy_identity();
    if let Some(domain) = r.written_domain() {
        let moved = r.in_registry(domain);
        if domain != "index.docker.io" {
            let moved = moved.unwrap_or_else(|e| {
                panic!("{s:?} moved into its own registry {domain:?} fails: {e}")
            });
            assert_eq!(
                moved.to_string(),
                full,
                "in_registry of its own domain changes {s:?}"
            );
        }
    }
});
