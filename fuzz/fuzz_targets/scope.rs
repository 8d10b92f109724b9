//! Target 3a: R2 registry scopes, differentially against the RULEBOOK section 3.2 pattern
//! (copied here from the RULEBOOK text, not from the crate), plus the scope helpers.
//!
//! Invariants: `is_valid_scope(s)` equals the reference regex; `Scope::parse`,
//! `is_nested_inside`, `ScopeIndex` and `policy_scopes` never panic; a scope is nested inside
//! itself; and for a valid super-scope, a one-entry `ScopeIndex` covers exactly what
//! `is_nested_inside` says.
#![no_main]

use std::sync::LazyLock;

use image_config_webhook::grammar::scope::{
    Scope, ScopeIndex, is_nested_inside, is_valid_registries_conf_scope, is_valid_scope,
    policy_scopes, ref_matching_prefix,
};
use libfuzzer_sys::fuzz_target;
use regex::Regex;

/// RULEBOOK section 3.2, rule R2, "Effective RE2 pattern", verbatim.
const RULEBOOK_R2: &str = r"^\*(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+$|^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?)(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$";

static R2: LazyLock<Regex> = LazyLock::new(|| Regex::new(RULEBOOK_R2).unwrap());

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Two strings: the whole input for the grammar, and a (sub, super) pair split at the
    // first NUL for the coverage questions.
    let s: &str = &text;
    assert_eq!(
        is_valid_scope(s),
        R2.is_match(s),
        "is_valid_scope disagrees with the RULEBOOK R2 pattern on {s:?}"
    );
    let parsed = Scope::parse(s);
    let _ = (
        parsed.host_port.is_ipv6(),
        parsed.host_port.is_single_label(),
    );
    let _ = is_valid_registries_conf_scope(s);
    assert!(is_nested_inside(s, s), "a scope is nested inside itself");
    let (sub, sup) = s.split_once('\0').unwrap_or((s, ""));
    let nested = is_nested_inside(sub, sup);
    let index = ScopeIndex::new([sup]);
    if is_valid_scope(sup) {
        assert_eq!(
            index.covers(sub),
            nested,
            "ScopeIndex([{sup:?}]).covers({sub:?}) disagrees with is_nested_inside"
        );
    }
    let _ = index.policy_match(sub, sub);
    let _ = ref_matching_prefix(sub, sup);
    let scopes = policy_scopes(sub, Some(sup));
    assert_eq!(scopes.first().map(String::as_str), Some(sup));
});
