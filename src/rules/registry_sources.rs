//! `spec.registrySources`: what every node may pull (R1-R7, P1, W1-W6, W8, W17).

use crate::grammar::hashed::{FastMap, fast_map};

use super::{C, Ctx, Denial, Out, Ratcheting, Rule, Tier, U, items, registry_sources_path};
use crate::field::{FieldError, Path, go_quote};
use crate::grammar::host::shorten;
use crate::grammar::reference::normalized_name;
use crate::grammar::scope::{is_nested_inside, is_valid_scope, ref_matching_prefix};
use crate::image::{RegistrySources, StrList};

/// Longest value quoted in a warning before it is shortened, to keep warnings near 120 chars.
const WARN_VALUE_MAX: usize = 64;

/// The three scope lists, in field order, with their names.
fn scope_lists(rs: &RegistrySources) -> [(&'static str, &Option<StrList>); 3] {
    [
        ("allowedRegistries", &rs.allowed),
        ("blockedRegistries", &rs.blocked),
        ("insecureRegistries", &rs.insecure),
    ]
}

fn list_path(name: &'static str) -> Path {
    registry_sources_path().child(name)
}

fn search_path() -> Path {
    list_path("containerRuntimeSearchRegistries")
}

/// `value` quoted for a warning, shortened when long.
pub(super) fn quoted(value: &str) -> String {
    go_quote(&shorten(value, WARN_VALUE_MAX))
}

/// Whether a list is present with at least one item.
fn non_empty(list: &Option<StrList>) -> bool {
    list.as_ref().is_some_and(|l| !l.is_empty())
}

/// The message of the CEL rule R1 (`ruleErrorString`: the rule's message).
const ONE_OF_MESSAGE: &str = "Only one of blockedRegistries or allowedRegistries may be set";

/// The message of the CEL rule R2 on every scope.
const SCOPE_MESSAGE: &str = "each registry must be a valid hostname[:port][/path] or wildcard *.hostname format without tags or digests";

pub(super) static R1: Rule = Rule {
    id: "R1",
    tier: Tier::Upstream,
    field: "spec.registrySources",
    check: "blockedRegistries and allowedRegistries are not both present (even as [])",
    why: "the machine-config operator refuses to render registries with both lists",
    source: "openshift/api config/v1 types_image.go CEL has(blockedRegistries) ? !has(allowedRegistries)",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: blocked_and_allowed_both_set,
};

/// R1: CEL `has(self.blockedRegistries) ? !has(self.allowedRegistries) : true`.
pub(super) fn blocked_and_allowed_both_set(ctx: &Ctx<'_>, out: &mut Out) {
    if let Some(rs) = ctx.registry_sources()
        && rs.has_allowed
        && rs.has_blocked
    {
        out.error(FieldError::invalid_omit(
            registry_sources_path(),
            ONE_OF_MESSAGE,
        ));
    }
}

pub(super) static T2: Rule = Rule {
    id: "T2",
    tier: Tier::Upstream,
    field: "spec.registrySources, spec.registrySources.{insecure,blocked,allowed}Registries[i]",
    check: "on update, a value of the wrong type that is left unchanged still fails the CEL rule on it (R1, R2), which cannot evaluate",
    why: "ratcheting drops the unchanged type error, then the CEL rule runs on the value and errors; only a rule that evaluates to false is ratcheted",
    source: "apiextensions-apiserver pkg/apiserver/schema/cel/validation.go (validateExpressions); apiserver pkg/cel/common/values.go (UnstructuredToVal)",
    phases: &[U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: cel_rule_cannot_evaluate,
};

/// T2: on UPDATE, a value of the wrong type that the update leaves unchanged loses its type
/// error to ratcheting; then the CEL rule on it runs, cannot evaluate, and that error is never
/// ratcheted (`validateExpressions` ratchets only a rule that evaluates to false).
pub(super) fn cel_rule_cannot_evaluate(ctx: &Ctx<'_>, out: &mut Out) {
    // Only a value of the wrong type in the new object can fail this way.
    let Some(old_raw) = ctx.old_raw.filter(|_| !ctx.well_typed()) else {
        return;
    };
    let (new_raw, old_raw) = (ctx.new_raw.value(), old_raw.value());
    let unchanged = |path: &Path| path.lookup(new_raw) == path.lookup(old_raw);
    let sources_path = registry_sources_path();
    let Some(sources) = sources_path.lookup(new_raw).filter(|v| !v.is_null()) else {
        return;
    };
    let Some(sources) = sources.as_object() else {
        if unchanged(&sources_path) {
            out.error(FieldError::invalid(
                sources_path,
                "object",
                format!(
                    "invalid data, expected a map for the provided schema with type=object evaluating rule: {ONE_OF_MESSAGE}"
                ),
            ));
        }
        return;
    };
    for name in [
        "allowedRegistries",
        "blockedRegistries",
        "insecureRegistries",
    ] {
        let Some(list) = sources.get(name).and_then(serde_json::Value::as_array) else {
            continue;
        };
        // Lists are atomic: the type error of an item is ratcheted when the whole list is.
        if list.iter().all(serde_json::Value::is_string) || !unchanged(&list_path(name)) {
            continue;
        }
        for (i, item) in list.iter().enumerate() {
            let problem = match item {
                serde_json::Value::String(_) => continue,
                serde_json::Value::Null => {
                    "invalid data, got null for schema with nullable=false".to_owned()
                }
                other => format!("invalid data, expected string, got {}", go_type(other)),
            };
            out.error_with(|| {
                FieldError::invalid(
                    list_path(name).index(i),
                    "string",
                    format!("{problem} evaluating rule: {SCOPE_MESSAGE}"),
                )
            });
        }
    }
}

/// Go's `%T` of a value that `encoding/json` decoded into `interface{}` (integers are
/// `int64` in the API server's unstructured decoding).
fn go_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "<nil>",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        serde_json::Value::Number(_) => "float64",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "[]interface {}",
        serde_json::Value::Object(_) => "map[string]interface {}",
    }
}

pub(super) static R2: Rule = Rule {
    id: "R2",
    tier: Tier::Upstream,
    field: "spec.registrySources.{insecure,blocked,allowed}Registries[i]",
    check: "each entry is host[:port][/path] or *.domain, without tag, digest, scheme or space",
    why: "a tagged or digest entry makes /etc/containers/policy.json invalid on every node",
    source: "openshift/api PR #2787 (4.23) CEL matches(); MCO sourceRegex",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: scope_is_malformed,
};

/// R2: every scope matches the 4.23 CEL pattern.
pub(super) fn scope_is_malformed(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources() else {
        return;
    };
    for (name, list) in scope_lists(rs) {
        let known = (name == "insecureRegistries").then(|| ctx.insecure_scopes());
        let valid = |i: usize, v: &str| match known {
            Some(known) => known.get(i).copied().unwrap_or(false),
            None => is_valid_scope(v),
        };
        for (i, value) in items(list).filter(|&(i, v)| !valid(i, v)) {
            out.error_with(|| FieldError::invalid(list_path(name).index(i), value, SCOPE_MESSAGE));
        }
    }
}

pub(super) static R3: Rule = Rule {
    id: "R3",
    tier: Tier::Upstream,
    field: "spec.registrySources.{insecure,blocked,allowed}Registries[i]",
    check: "no entry is empty",
    why: "empty entries break hosted control plane node bootstrap",
    source: "openshift/api PR #2787 (minLength: 1)",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: scope_is_empty,
};

/// R3: `minLength: 1`.
pub(super) fn scope_is_empty(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources() else {
        return;
    };
    for (name, list) in scope_lists(rs) {
        for (i, _) in items(list).filter(|(_, v)| v.is_empty()) {
            out.error_with(|| {
                let path = list_path(name).index(i);
                let detail = format!("{path} in body should be at least 1 chars long");
                FieldError::invalid(path, "", detail)
            });
        }
    }
}

pub(super) static R4: Rule = Rule {
    id: "R4",
    tier: Tier::Upstream,
    field: "spec.registrySources.{insecure,blocked,allowed}Registries[i]",
    check: "no entry is longer than 256 characters",
    why: "the schema limit, sized from fleet telemetry",
    source: "openshift/api PR #2787 (maxLength: 256)",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: scope_is_too_long,
};

/// R4: `maxLength: 256`, counted in characters as kube-openapi does.
pub(super) fn scope_is_too_long(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources() else {
        return;
    };
    for (name, list) in scope_lists(rs) {
        for (i, _) in items(list).filter(|(_, v)| v.len() > 256 && v.chars().count() > 256) {
            out.error_with(|| FieldError::too_long(list_path(name).index(i), 256));
        }
    }
}

/// `maxItems` of each `registrySources` list.
pub(super) const MAX_ITEMS: usize = 1024;

pub(super) static R5: Rule = Rule {
    id: "R5",
    tier: Tier::Upstream,
    field: "spec.registrySources.{insecure,blocked,allowed}Registries",
    check: "no list has more than 1024 entries",
    why: "the schema limit, sized from fleet telemetry",
    source: "openshift/api PR #2787 (maxItems: 1024)",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: scope_list_too_long,
};

/// R5: `maxItems: 1024`.
pub(super) fn scope_list_too_long(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources() else {
        return;
    };
    for (name, list) in scope_lists(rs) {
        if let Some(list) = list.as_ref().filter(|l| l.len() > MAX_ITEMS) {
            out.error(FieldError::too_many(list_path(name), list.len(), MAX_ITEMS));
        }
    }
}

/// Whether every `registrySources` list is within `maxItems` (else R5 denies the object, and the
/// node model is not built for it).
pub(super) fn within_max_items(rs: &RegistrySources) -> bool {
    let search = ("containerRuntimeSearchRegistries", &rs.search);
    scope_lists(rs)
        .into_iter()
        .chain([search])
        .all(|(_, list)| list.as_ref().is_none_or(|l| l.len() <= MAX_ITEMS))
}

pub(super) static R6: Rule = Rule {
    id: "R6",
    tier: Tier::Upstream,
    field: "spec.registrySources.containerRuntimeSearchRegistries",
    check: "the list, when present, is not empty",
    why: "the schema requires at least one item",
    source: "openshift/api config/v1 types_image.go (MinItems=1)",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: search_list_is_empty,
};

/// R6: `minItems: 1` on the search list.
pub(super) fn search_list_is_empty(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources() else {
        return;
    };
    if rs.search.as_ref().is_some_and(Vec::is_empty) {
        let path = search_path();
        let detail = format!("{path} in body should have at least 1 items");
        out.error(FieldError::invalid_int(path, 0, detail));
    }
}

/// The index of the second occurrence of each repeated value.
fn second_occurrences(list: &Option<StrList>) -> Vec<(usize, &str)> {
    let mut seen: FastMap<&str, u8> = fast_map(list.as_ref().map_or(0, Vec::len));
    let mut repeats = Vec::new();
    for (i, value) in items(list) {
        let count = seen.entry(value).or_insert(0);
        *count = count.saturating_add(1);
        if *count == 2 {
            repeats.push((i, value));
        }
    }
    repeats
}

pub(super) static R7: Rule = Rule {
    id: "R7",
    tier: Tier::Upstream,
    field: "spec.registrySources.containerRuntimeSearchRegistries[i]",
    check: "no entry repeats (listType=set)",
    why: "a set list must not hold duplicates",
    source: "apiextensions-apiserver pkg/apiserver/schema/listtype/validation.go",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: search_registry_repeats,
};

/// R7: `listType=set`. Upstream skips the check when the old object already had a duplicate;
/// the engine reports it, ratcheted into a warning.
pub(super) fn search_registry_repeats(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources() else {
        return;
    };
    let old_had_repeats = ctx
        .old
        .and_then(|o| o.spec.as_ref())
        .and_then(|s| s.registry_sources.as_ref())
        .is_some_and(|old| !second_occurrences(&old.search).is_empty());
    for (i, value) in second_occurrences(&rs.search) {
        let error = FieldError::duplicate(search_path().index(i), value);
        if old_had_repeats {
            out.error_always_ratcheted(error);
        } else {
            out.error(error);
        }
    }
}

pub(super) static P1: Rule = Rule {
    id: "P1",
    tier: Tier::Protective,
    field: "spec.registrySources.containerRuntimeSearchRegistries[i]",
    check: "each entry is hostname[:port] (IPv6 allowed): no scheme, path, wildcard, tag or digest",
    why: "CRI-O refuses a registries.conf with a bad unqualified-search-registries entry: no pod starts on any node",
    source: "containers/image sysregistriesv2 (unqualified-search-registries must match DomainRegexp)",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: search_registry_is_not_a_host,
};

/// P1: containers/image demands `^DomainRegexp$` of unqualified-search-registries.
pub(super) fn search_registry_is_not_a_host(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources() else {
        return;
    };
    let hosts = ctx.search_hosts();
    for (i, value) in items(&rs.search).filter(|&(i, _)| hosts.get(i) != Some(&true)) {
        out.error_with(|| {
            FieldError::invalid(
                search_path().index(i),
                value,
                "must be a registry hostname[:port] without scheme, path, wildcard, tag or digest",
            )
        });
    }
}

/// Whether the node's policy.json rejects the images inside `scope` (not listed in a non-empty
/// allow-list), as `explain` shows a pull of one.
fn policy_rejects(node: &crate::node::Node<'_>, scope: &str) -> bool {
    probe_inside(scope).is_some_and(|probe| {
        let pull = pull_latest(node, probe);
        !pull.allowed && !pull.blocked
    })
}

pub(super) static W1: Rule = Rule {
    id: "W1",
    tier: Tier::Warning,
    field: "spec.registrySources.allowedRegistries",
    check: "a non-empty allow-list covers every release registry (quay.io, registry.redhat.io); with a release image in the cluster context, the payload's namespace in the registry that holds it, and a mirrored release image's repository",
    why: "release payload and operator images fail to pull",
    source: "openshift-docs images-configuration-allowed.adoc WARNING",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: allow_list_misses_release_registry,
};

/// W1: the allow-list forgets a release registry: the node model rejects its images. With a
/// release image in the cluster context, the payload's namespace is what must be allowed in the
/// registry that holds P (`MIRRORS.md` §8: `quay.io/openshift-release-dev` suffices), and P
/// itself when no release registry holds it (a mirrored release image).
pub(super) fn allow_list_misses_release_registry(ctx: &Ctx<'_>, out: &mut Out) {
    if ctx
        .registry_sources()
        .filter(|rs| non_empty(&rs.allowed))
        .is_none()
    {
        return;
    }
    let Some(node) = ctx.node() else {
        return;
    };
    let registries = &ctx.policy.settings().release_registries;
    let payload = context_payload(ctx, node);
    for registry in registries {
        let probed = match payload.filter(|p| is_nested_inside(p, registry)) {
            Some(p) => crate::policy::payload_namespace(p),
            None => registry,
        };
        if policy_rejects(node, probed) {
            out.warn(
                list_path("allowedRegistries"),
                format!(
                    "does not include {}; release payload images will fail to pull",
                    quoted(registry)
                ),
            );
        }
    }
    let outside = payload.filter(|p| !registries.iter().any(|r| is_nested_inside(p, r)));
    if let Some(p) = outside.filter(|p| {
        let identity = format!("{p}:latest");
        !node.policy_accepts(p, &identity)
    }) {
        out.warn(
            list_path("allowedRegistries"),
            format!(
                "does not include the release image's repository {}; the release payload will fail to pull",
                quoted(p)
            ),
        );
    }
}

/// P, the release payload repository, when the cluster context names the release image (the
/// node model derives it from there; `None` without a context or a release image).
pub(super) fn context_payload<'n>(
    ctx: &Ctx<'_>,
    node: &'n crate::node::Node<'_>,
) -> Option<&'n str> {
    ctx.policy
        .context()
        .and_then(|c| c.release_image.as_ref())
        .and(node.payload_repository())
}

pub(super) static W2: Rule = Rule {
    id: "W2",
    tier: Tier::Warning,
    field: "spec.registrySources.allowedRegistries",
    check: "a non-empty allow-list covers the internal registry",
    why: "pods cannot pull images pushed to the internal registry",
    source: "openshift-docs images-configuration-shortname.adoc NOTE",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: allow_list_misses_internal_registry,
};

/// W2: the allow-list forgets the internal registry: the node model rejects its images.
pub(super) fn allow_list_misses_internal_registry(ctx: &Ctx<'_>, out: &mut Out) {
    if ctx
        .registry_sources()
        .filter(|rs| non_empty(&rs.allowed))
        .is_none()
    {
        return;
    }
    let internal = ctx.internal_registry();
    if ctx
        .node()
        .is_some_and(|node| policy_rejects(node, internal))
    {
        out.warn(
            list_path("allowedRegistries"),
            format!(
                "does not include the internal registry {}",
                quoted(internal)
            ),
        );
    }
}

pub(super) static W3: Rule = Rule {
    id: "W3",
    tier: Tier::Warning,
    field: "spec.registrySources.blockedRegistries[i]",
    check: "no entry blocks a release registry, the internal registry or the release payload (the release image's repository and its namespace)",
    why: "operator pods go to ImagePullBackOff; MCO silently drops an entry that covers the release image's repository, so it blocks nothing",
    source: "openshift-docs images-configuration-blocked.adoc; MCO getValidBlockedAndAllowedRegistries",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: block_list_blocks_release,
};

/// W3: a blocked entry that touches what the cluster itself runs on, as the node model tells
/// it: an entry covering P is dropped by the machine-config operator and blocks nothing; one
/// that blocks images of a release registry or of the internal registry on the node, or lies
/// in the payload's namespace, breaks the cluster's own pulls.
pub(super) fn block_list_blocks_release(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources().filter(|rs| non_empty(&rs.blocked)) else {
        return;
    };
    let settings = ctx.policy.settings();
    let Some(node) = ctx.node() else {
        return;
    };
    let internal = ctx.internal_registry();
    // An image in each registry the cluster pulls its own images from, with what the node does.
    let probes: Vec<(String, bool, bool)> = settings
        .release_registries
        .iter()
        .map(|r| (r.as_str(), false))
        .chain([(internal, true)])
        .filter_map(|(registry, is_internal)| {
            let probe = probe_inside(registry)?;
            let blocked = pull_latest(node, probe.clone()).blocked;
            Some((probe, blocked, is_internal))
        })
        .collect();
    // P is the node model's: the context's release image when there is one, else the setting.
    let namespace = node
        .payload_repository()
        .map(crate::policy::payload_namespace);
    let field = |i| list_path("blockedRegistries").index(i);
    for (i, value) in items(&rs.blocked) {
        if let Some(d) = node.dropped().iter().find(|d| d.index == i) {
            out.warn_with(|| {
                (
                    field(i),
                    format!(
                        "{} covers the release payload repository {}: the machine-config \
                         operator drops it and nodes do not block it",
                        quoted(value),
                        quoted(&d.payload_repository)
                    ),
                )
            });
            continue;
        }
        // The node blocks the probe, and this entry's prefix is one that matches it.
        let blocking = |(probe, blocked, _): &&(String, bool, bool)| {
            *blocked && ref_matching_prefix(probe, value).is_some()
        };
        let what = match probes.iter().find(blocking) {
            Some((_, _, true)) => "the internal registry",
            Some(_) => "release payload images",
            None if namespace.is_some_and(|ns| is_nested_inside(value, ns)) => {
                "release payload images"
            }
            None => continue,
        };
        out.warn_with(|| {
            (
                field(i),
                format!("blocking {} blocks {what} on every node", quoted(value)),
            )
        });
    }
}

/// The repository name of an image inside `scope`, for asking the node model what happens to
/// the images the scope names: `*.d` becomes a host under `.d`; any other scope gets a
/// repository appended. `None` for a scope that names no image (R2 reports it).
pub(super) fn probe_inside(scope: &str) -> Option<String> {
    if !is_valid_scope(scope) {
        return None;
    }
    probe_inside_valid(scope)
}

/// [`probe_inside`] of an entry known to be a valid scope.
fn probe_inside_valid(scope: &str) -> Option<String> {
    match scope.strip_prefix("*.") {
        Some(domain) => normalized_name(&[PROBE, ".", domain].concat(), PROBE),
        None => match scope.split_once('/') {
            Some((host, path)) if !path.is_empty() => {
                normalized_name(host, &[path, "/", PROBE].concat())
            }
            Some((host, _)) => normalized_name(host, PROBE),
            None => normalized_name(scope, PROBE),
        },
    }
}

/// The node's verdict on a pull of the latest tag of the repository `name`.
fn pull_latest(node: &crate::node::Node<'_>, mut name: String) -> crate::node::Verdict {
    let repository = name.len();
    name.push_str(":latest");
    let identity = name.as_str();
    node.decide(identity.get(..repository).unwrap_or(identity), identity)
}

/// The repository name of the probes: a name no entry of a real config spells.
const PROBE: &str = "image-config-webhook-probe";

pub(super) static W4: Rule = Rule {
    id: "W4",
    tier: Tier::Warning,
    field: "spec.registrySources.insecureRegistries[i]",
    check: "with an allow-list, every insecure registry is also allowed",
    why: "an insecure registry that is not allowed can never be pulled from",
    source: "openshift-docs images-configuration-allowed.adoc NOTE",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: insecure_not_allowed,
};

/// W4: an insecure registry whose images the allow-list rejects: the node's policy.json
/// decides (the model's `decide`, the matcher of its `pull`), as `explain` shows it.
pub(super) fn insecure_not_allowed(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources().filter(|rs| non_empty(&rs.allowed)) else {
        return;
    };
    if !non_empty(&rs.insecure) {
        return;
    }
    let Some(node) = ctx.node() else {
        return;
    };
    let scopes = ctx.insecure_scopes();
    for (i, value) in items(&rs.insecure).filter(|&(i, _)| scopes.get(i) == Some(&true)) {
        let rejected = probe_inside_valid(value).is_some_and(|probe| {
            let verdict = pull_latest(node, probe);
            !verdict.allowed && !verdict.blocked
        });
        if rejected {
            out.warn_with(|| {
                (
                    list_path("insecureRegistries").index(i),
                    format!(
                        "insecure registry {} is not in allowedRegistries",
                        quoted(value)
                    ),
                )
            });
        }
    }
}

pub(super) static W5: Rule = Rule {
    id: "W5",
    tier: Tier::Warning,
    field: "spec.registrySources.containerRuntimeSearchRegistries[i]",
    check: "no search registry is blocked or, with an allow-list, left out of it",
    why: "short names would resolve to a registry that every pull is refused from",
    source: "openshift-docs images-configuration-shortname.adoc WARNING",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: search_registry_blocked,
};

/// W5: a search registry through which every short-name pull is refused: blocked in
/// registries.conf (its longest-prefix entry, so `example.com` blocks `example.com:5000`) or
/// rejected by policy.json. The node model answers, the same answer `explain` gives.
pub(super) fn search_registry_blocked(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources().filter(|rs| non_empty(&rs.search)) else {
        return;
    };
    let Some(node) = ctx.node() else {
        return;
    };
    let hosts = ctx.search_hosts();
    for (i, value) in items(&rs.search) {
        // CRI-O's candidate for a short name through this registry (P1 reports a bad one).
        let Some(candidate) = Some(value)
            .filter(|_| hosts.get(i) == Some(&true))
            .and_then(|v| normalized_name(v, PROBE))
        else {
            continue;
        };
        let pull = pull_latest(node, candidate);
        let verdict = if pull.blocked {
            "blocked"
        } else if !pull.allowed {
            "not allowed"
        } else {
            continue;
        };
        out.warn_with(|| {
            (
                search_path().index(i),
                format!("search registry {} is {verdict}", quoted(value)),
            )
        });
    }
}

pub(super) static W6: Rule = Rule {
    id: "W6",
    tier: Tier::Warning,
    field: "spec.registrySources.containerRuntimeSearchRegistries[i]",
    check: "no public registry (docker.io, index.docker.io, quay.io) resolves short names",
    why: "anyone can publish a look-alike image there (spoofing) and credentials may leak",
    source: "openshift-docs images-configuration-shortname.adoc WARNING",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: search_registry_is_public,
};

/// W6: a public registry resolves short names.
pub(super) fn search_registry_is_public(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources() else {
        return;
    };
    let public = &ctx.policy.settings().public_search_registries;
    for (i, _) in items(&rs.search).filter(|(_, v)| public.iter().any(|p| p == v)) {
        out.warn_with(|| {
            (
                search_path().index(i),
                "public registry in short-name search list (spoofing/credential risk)".into(),
            )
        });
    }
}

pub(super) static W8: Rule = Rule {
    id: "W8",
    tier: Tier::Warning,
    field: "spec.registrySources.insecureRegistries[i]",
    check: "no scope is both insecure and blocked",
    why: "MCO writes both flags; the intent is unclear",
    source: "MCO registries.conf rendering",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: insecure_and_blocked,
};

/// W8: an insecure scope whose registries.conf entry is also blocked (the same scope, or one
/// inside a blocked scope): the node writes both flags and the insecure one never matters.
pub(super) fn insecure_and_blocked(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources().filter(|rs| non_empty(&rs.insecure)) else {
        return;
    };
    if !non_empty(&rs.blocked) {
        return;
    }
    let Some(node) = ctx.node() else {
        return;
    };
    for (i, value) in items(&rs.insecure) {
        // MCO writes an entry for every insecure scope, blocked when a blocked scope covers it.
        let blocked = node.entry_for_scope(value).is_some_and(|e| e.blocked);
        if blocked {
            out.warn_with(|| {
                (
                    list_path("insecureRegistries").index(i),
                    format!("{} is both insecure and blocked", quoted(value)),
                )
            });
        }
    }
}

pub(super) static W17: Rule = Rule {
    id: "W17",
    tier: Tier::Warning,
    field: "spec.registrySources.{allowed,blocked}Registries",
    check: "the list is not `[]` (present but empty)",
    why: "an empty list has no effect on nodes but still counts for R1",
    source: "openshift/api CEL has() vs MCO len()",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: empty_allow_or_block_list,
};

/// W17: `allowedRegistries: []` or `blockedRegistries: []`.
pub(super) fn empty_allow_or_block_list(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources() else {
        return;
    };
    for (name, list) in [
        ("allowedRegistries", &rs.allowed),
        ("blockedRegistries", &rs.blocked),
    ] {
        if list.as_ref().is_some_and(Vec::is_empty) {
            out.warn(
                list_path(name),
                "empty list has no effect but still counts for the one-of rule",
            );
        }
    }
}

/// The W7 helper for the other rule files: repeated values of a string list.
pub(super) fn repeats(list: &Option<StrList>) -> Vec<(usize, &str)> {
    second_occurrences(list)
}

/// The scope lists, for the cross-field host rules.
pub(super) fn scope_lists_of(rs: &RegistrySources) -> [(&'static str, &Option<StrList>); 3] {
    scope_lists(rs)
}

/// The path of an item of a registrySources list.
pub(super) fn item_path(name: &'static str, i: usize) -> Path {
    list_path(name).index(i)
}
