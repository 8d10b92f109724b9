//! `spec.allowedRegistriesForImport`: which registries ImageStreams may import from
//! (P2, P3, W14-W16, W19).

use serde_json::Value;

use super::registry_sources::quoted;
use super::{C, Ctx, Denial, Out, Ratcheting, Rule, Tier, U};
use crate::field::{FieldError, Path, go_quote};
use crate::grammar::import::{EntryError, ImportEntry};
use crate::image::RegistryLocation;

fn list_path() -> Path {
    Path::new(&["spec", "allowedRegistriesForImport"])
}

/// `(index, entry)` of the entries that decoded as objects.
fn locations<'a>(ctx: &Ctx<'a>) -> impl Iterator<Item = (usize, &'a RegistryLocation)> {
    ctx.spec()
        .and_then(|s| s.allowed_registries_for_import.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, l)| l.as_ref().map(|l| (i, l)))
}

pub(super) static P2: Rule = Rule {
    id: "P2",
    tier: Tier::Protective,
    field: "spec.allowedRegistriesForImport[i].domainName",
    check: "no domainName has two or more colons",
    why: "openshift-apiserver fails to build its registry whitelist and cannot start",
    source: "openshift-apiserver pkg/image/apis/image/validation/whitelist/whitelister.go",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: domain_name_has_too_many_colons,
};

/// P2: two or more colons make openshift-apiserver fail at start-up.
pub(super) fn domain_name_has_too_many_colons(ctx: &Ctx<'_>, out: &mut Out) {
    for (i, location) in locations(ctx) {
        let Some(domain) = location.domain_name.as_deref() else {
            continue;
        };
        if ImportEntry::parse(domain, location.insecure) == Err(EntryError::TooManyColons) {
            out.error_with(|| {
                FieldError::invalid(
                    list_path().index(i).child("domainName"),
                    domain,
                    format!(
                        "failed to parse allowed registry {}: too many colons",
                        go_quote(domain)
                    ),
                )
            });
        }
    }
}

pub(super) static P3: Rule = Rule {
    id: "P3",
    tier: Tier::Protective,
    field: "spec.allowedRegistriesForImport[i].domainName",
    check: "every entry has a non-empty domainName",
    why: "an empty entry matches nothing but makes the list restrictive: every external import is refused",
    source: "openshift-apiserver whitelister.go",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: domain_name_is_missing,
};

/// P3: an entry without a domainName matches nothing and refuses every import.
pub(super) fn domain_name_is_missing(ctx: &Ctx<'_>, out: &mut Out) {
    // The raw list is looked up once (only when some value has the wrong type); a path is
    // built only for an error.
    let raw = if ctx.well_typed() {
        None
    } else {
        list_path()
            .lookup(ctx.new_raw.value())
            .and_then(Value::as_array)
    };
    for (i, location) in locations(ctx) {
        // A domainName of the wrong type is reported by T1 only.
        let wrong_type = raw
            .and_then(|items| items.get(i))
            .and_then(|item| item.get("domainName"))
            .is_some_and(|v| !matches!(v, Value::String(_) | Value::Null));
        if !wrong_type && location.domain_name.as_deref().is_none_or(str::is_empty) {
            out.error_with(|| {
                FieldError::required(
                    list_path().index(i).child("domainName"),
                    "domainName is required",
                )
            });
        }
    }
}

pub(super) static W14: Rule = Rule {
    id: "W14",
    tier: Tier::Warning,
    field: "spec.allowedRegistriesForImport[i].domainName",
    check: "no domainName has a path or scheme",
    why: "the whitelist matches hosts only: such an entry never matches (openshift/image-registry#322)",
    source: "openshift-apiserver whitelister.go",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: domain_name_has_path,
};

/// W14: the whitelist matches hosts; a path or scheme never matches.
pub(super) fn domain_name_has_path(ctx: &Ctx<'_>, out: &mut Out) {
    for (i, location) in locations(ctx) {
        if location
            .domain_name
            .as_deref()
            .is_some_and(|d| d.contains('/'))
        {
            out.warn_with(|| {
                (
                    list_path().index(i).child("domainName"),
                    "domainName must be host[:port] with optional * ? globs; paths/schemes never match"
                        .into(),
                )
            });
        }
    }
}

/// An import over TLS of an image on `host` (a `hostname[:port]`), as the node model's
/// whitelister (openshift-apiserver's) decides it; `None` without a model (see `Ctx::node`).
fn secure_import_allowed(ctx: &Ctx<'_>, host: &str) -> Option<bool> {
    ctx.node().map(|node| node.imports_securely(host))
}

/// Most import entries W16 checks against the whole whitelist (each check is linear in the
/// list): beyond, it warns on the entry alone.
const MAX_PROBED_IMPORTS: usize = 1024;

pub(super) static W15: Rule = Rule {
    id: "W15",
    tier: Tier::Warning,
    field: "spec.allowedRegistriesForImport",
    check: "a non-empty list admits every release registry on port 443 (and, with a release image in the cluster context, the registry that holds it)",
    why: "release and sample ImageStream imports fail; the samples operator degrades",
    source: "openshift/image-registry#322; cluster-samples-operator OCPBUGS-855",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: release_registry_not_importable,
};

/// W15: a non-empty list that does not admit a release registry on port 443: the node model's
/// import answer, the one `explain` prints.
pub(super) fn release_registry_not_importable(ctx: &Ctx<'_>, out: &mut Out) {
    let listed = ctx
        .spec()
        .and_then(|s| s.allowed_registries_for_import.as_ref())
        .is_some_and(|l| !l.is_empty());
    if !listed {
        return;
    }
    let registries = &ctx.policy.settings().release_registries;
    // With a release image in the cluster context, the registry that holds P as well.
    let payload_host = ctx
        .node()
        .and_then(|node| super::registry_sources::context_payload(ctx, node))
        .map(|p| p.split('/').next().unwrap_or(p))
        .filter(|host| {
            !registries
                .iter()
                .any(|r| r.split('/').next() == Some(*host))
        });
    for registry in registries.iter().map(String::as_str).chain(payload_host) {
        let host_port = registry.split('/').next().unwrap_or(registry);
        if secure_import_allowed(ctx, host_port) == Some(false) {
            out.warn(
                list_path(),
                format!(
                    "{} not allowed; release/sample imagestream imports will fail",
                    quoted(registry)
                ),
            );
        }
    }
}

pub(super) static W16: Rule = Rule {
    id: "W16",
    tier: Tier::Warning,
    field: "spec.allowedRegistriesForImport[i]",
    check: "an insecure entry without a port also has a secure counterpart",
    why: "insecure: true without a port only matches port 80",
    source: "openshift-apiserver whitelister.go (WhitelistRegistry)",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: insecure_without_port,
};

/// W16: `insecure: true` without a port only matches port 80: warned when the node model's
/// whitelister then refuses a secure import from that host (no other entry admits it). A host
/// glob cannot be probed for every host it matches, and is always warned, as are the entries
/// past the first [`MAX_PROBED_IMPORTS`] (each probe is linear in the list).
pub(super) fn insecure_without_port(ctx: &Ctx<'_>, out: &mut Out) {
    let mut probes = 0;
    for (i, location) in locations(ctx) {
        let Some(domain) = location.domain_name.as_deref() else {
            continue;
        };
        if !location.insecure || domain.is_empty() || domain.contains(':') {
            continue;
        }
        let is_glob = domain.contains(['*', '?', '[']);
        let admitted = !is_glob
            && probes < MAX_PROBED_IMPORTS
            && secure_import_allowed(ctx, domain) == Some(true);
        probes += 1;
        if !admitted {
            out.warn_with(|| {
                (
                    list_path().index(i),
                    "only matches port 80/insecure imports; add a secure entry too".into(),
                )
            });
        }
    }
}

pub(super) static W19: Rule = Rule {
    id: "W19",
    tier: Tier::Warning,
    field: "spec.allowedRegistriesForImport[i].domainName",
    check: "every * in a host glob is followed by . (*.example.com), or is the whole host",
    why: "* matches any characters, dots included: *example.com also admits evilexample.com",
    source: "openshift-apiserver whitelister.go (IsWildcardMatch)",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: glob_star_inside_a_label,
};

/// W19: `*` matches any run of characters, dots included, so a `*` not followed by `.` spills
/// out of its label: `*example.com` admits `evilexample.com`, `registry.*` admits
/// `registry.evil.example`. A host that is only `*` is W13's.
pub(super) fn glob_star_inside_a_label(ctx: &Ctx<'_>, out: &mut Out) {
    for (i, location) in locations(ctx) {
        let Some(domain) = location.domain_name.as_deref() else {
            continue;
        };
        // The port glob (`example.com:*`) is matched on its own: any port is a normal wish.
        let host = domain.split_once(':').map_or(domain, |(host, _)| host);
        let Some(example) = spilled_match(host) else {
            continue;
        };
        out.warn_with(|| {
            let advice = match host.strip_prefix('*').map(|r| r.trim_start_matches('*')) {
                Some(rest) if !rest.is_empty() && !rest.starts_with('.') => format!(
                    "for the subdomains of {rest} use {} (and {} for {rest} itself)",
                    quoted(&format!("*.{rest}")),
                    quoted(rest)
                ),
                _ => "list the registries it is meant for, or put the * before a . (*.example.com)"
                    .to_owned(),
            };
            (
                list_path().index(i).child("domainName"),
                format!(
                    "glob {} also matches {}: * matches any characters, dots included; {advice}",
                    quoted(domain),
                    quoted(&example)
                ),
            )
        });
    }
}

/// A host the glob admits through a `*` that is not followed by `.`, or `None` when every `*`
/// is followed by `.` or the glob is only stars (W13). The offending run of stars becomes
/// `evil` (`evil.example` at the end of the glob), any other glob character `a`.
fn spilled_match(host: &str) -> Option<String> {
    if !host.contains('*') || host.chars().all(|c| c == '*') {
        return None;
    }
    let mut example = String::with_capacity(host.len() + 12);
    let mut spilled = false;
    let mut chars = host.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                match chars.peek() {
                    Some('.') => example.push('a'),
                    next if !spilled => {
                        spilled = true;
                        example.push_str(if next.is_none() {
                            "evil.example"
                        } else {
                            "evil"
                        });
                    }
                    _ => example.push('a'),
                }
            }
            '?' => example.push('a'),
            c => example.push(c),
        }
    }
    spilled.then_some(example)
}
