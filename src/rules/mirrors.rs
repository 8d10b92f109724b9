//! The rules that need the cluster context (mirror sets, release image): P7, W21-W25. They run
//! only when the policy carries a context ([`crate::Policy::context`]); the node model answers,
//! built with it (`MIRRORS.md` §3, §8).

use super::registry_sources::{item_path, probe_inside, quoted};
use super::{C, Ctx, Denial, Out, Ratcheting, Rule, Tier, U, items, registry_sources_path};
use crate::field::FieldError;
use crate::grammar::scope::{ScopeIndex, is_nested_inside, ref_matching_prefix};
use crate::node::{Node, PullFromMirror, RegistryEntry, RenderErrorKind};

/// The node model built with the cluster context, when the policy has one.
fn node_in_context<'c, 'a>(ctx: &'c Ctx<'a>) -> Option<&'c Node<'a>> {
    ctx.policy.context()?;
    ctx.node()
}

pub(super) static P7: Rule = Rule {
    id: "P7",
    tier: Tier::Protective,
    field: "spec.registrySources.{blocked,insecure}Registries[i]",
    check: "with the cluster's mirror sets and release image, the machine-config operator can render the entry: no blocked or insecure scope without mirrors of its own nested in a wildcard mirror source, no second blocked entry covering the release payload repository while it has a digest mirror",
    why: "MCO refuses to render and only logs it: every node keeps its previous registries.conf and policy.json, and no later change reaches them",
    source: "runtime-utils registries.go (mirrorsAdjustedForNestedScope); MCO container-runtime-config helpers.go (getValidBlockedAndAllowedRegistries, updatePolicyJSON); MIRRORS.md §3",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: mirrors_refuse_render,
};

/// P7: the refusals the context brings to an Image entry (the rest are the U rules' business, or
/// the mirror sets' own, which no change of the Image cures). The error sits on the entry, so
/// an update that leaves its list unchanged is ratcheted like any other.
pub(super) fn mirrors_refuse_render(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(refusal) = node_in_context(ctx).and_then(Node::refusal_by_image) else {
        return;
    };
    // The "[P, P]" refusal depends on P and on how the release image is pulled: only a release
    // image in the context says both (without it the settings' P would be a guess).
    let release_known = ctx
        .policy
        .context()
        .is_some_and(|c| c.release_image.is_some());
    let from_context = refusal.is_image_fault_in_context()
        && (refusal.kind() != RenderErrorKind::OnlyOneOf || release_known);
    let Some(entry) = refusal.field().filter(|_| from_context) else {
        return;
    };
    let Some((name, index)) = list_item(&entry.field) else {
        return;
    };
    out.error(FieldError::invalid(
        item_path(name, index),
        entry.value.as_deref().unwrap_or(""),
        format!(
            "the machine-config operator refuses to render it with the cluster's mirror sets ({}): \
             nodes would keep their previous registries.conf and policy.json",
            refusal.message()
        ),
    ));
}

/// `(list, index)` of `spec.registrySources.<list>[<index>]`, for the lists P7 names.
fn list_item(field: &str) -> Option<(&'static str, usize)> {
    let rest = field.strip_prefix("spec.registrySources.")?;
    let (list, index) = rest.strip_suffix(']')?.split_once('[')?;
    let list = match list {
        "blockedRegistries" => "blockedRegistries",
        "insecureRegistries" => "insecureRegistries",
        _ => return None,
    };
    Some((list, index.parse().ok()?))
}

/// The mirror-set sources of the node: the entries with mirrors of their own (not copied).
fn mirror_sources<'n>(node: &'n Node<'_>) -> impl Iterator<Item = &'n RegistryEntry> + 'n {
    node.registries_conf()
        .iter()
        .filter(|e| e.mirrors.iter().any(|m| m.copied_from.is_none()))
}

pub(super) static W21: Rule = Rule {
    id: "W21",
    tier: Tier::Warning,
    field: "spec.registrySources.blockedRegistries[i]",
    check: "no blocked entry rejects, in policy.json, the images of a mirror-set source or of a scope inside one, which gets its mirrors (unless it covers the release payload repository: W23)",
    why: "mirrors do not bypass policy.json, which judges the name a pod uses; mirrorSourcePolicy: NeverContactSource is the way to stop contacting a source",
    source: "containers/image copy/single.go (IsRunningImageAllowed on the logical reference); MIRRORS.md §4.5, §8 (a)",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: blocked_entry_rejects_mirrored_source,
};

/// W21: a kept blocked entry covering a mirror source, or inside one (its entry gets the
/// source's mirrors copied), whose images policy.json then rejects. The pairs are found through
/// scope indexes, so the cost is linear in the entries and the sources, not their product.
pub(super) fn blocked_entry_rejects_mirrored_source(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(node) = node_in_context(ctx) else {
        return;
    };
    let payload = node.payload_repository();
    let blocked: Vec<(usize, &str)> = node
        .kept_blocked()
        .iter()
        .copied()
        .filter(|(_, b)| !payload.is_some_and(|p| is_nested_inside(p, b)))
        .collect();
    if blocked.is_empty() {
        return;
    }
    let sources: Vec<&str> = mirror_sources(node).map(RegistryEntry::scope).collect();
    let by_blocked = ScopeIndex::new(blocked.iter().map(|(_, b)| *b));
    let by_source = ScopeIndex::new(sources.iter().copied());
    // (position in `blocked`, position in `sources`, the scope whose images are probed).
    let mut pairs: Vec<(usize, usize, &str)> = Vec::new();
    for (s, source) in sources.iter().enumerate() {
        pairs.extend(by_blocked.all_covering(source).map(|k| (k, s, *source)));
    }
    for (k, (_, b)) in blocked.iter().enumerate() {
        pairs.extend(
            by_source
                .all_covering(b)
                .filter(|&s| sources.get(s) != Some(b))
                .map(|s| (k, s, *b)),
        );
    }
    pairs.sort_unstable_by_key(|&(k, s, _)| (k, s));
    pairs.dedup_by_key(|&mut (k, s, _)| (k, s));
    for (k, s, probed) in pairs {
        let (Some(&(i, b)), Some(source)) = (blocked.get(k), sources.get(s)) else {
            continue;
        };
        let rejected = probe_inside(probed).is_some_and(|probe| {
            let identity = format!("{probe}:latest");
            !node.policy_accepts(&probe, &identity)
        });
        if rejected {
            out.warn_with(|| {
                (
                    item_path("blockedRegistries", i),
                    format!(
                        "{} rejects the images {}of the mirrored source {} by name: mirrors do \
                         not bypass policy.json; use mirrorSourcePolicy: NeverContactSource",
                        quoted(b),
                        if probed == *source { "" } else { "under it " },
                        quoted(source)
                    ),
                )
            });
        }
    }
}

pub(super) static W22: Rule = Rule {
    id: "W22",
    tier: Tier::Warning,
    field: "spec.registrySources.blockedRegistries[i]",
    check: "no blocked entry blocks the location of a mirror",
    why: "containers/image checks each mirror's own name against registries.conf: a blocked mirror is skipped on every pull",
    source: "containers/image docker/docker_client.go (newDockerClient: registry %s is blocked); MIRRORS.md §4.4, §8 (b)",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: blocked_entry_blocks_mirror,
};

/// W22: a kept blocked entry whose prefix matches a mirror location that the node then blocks.
pub(super) fn blocked_entry_blocks_mirror(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(node) = node_in_context(ctx) else {
        return;
    };
    let mut locations: Vec<(&str, &str)> = mirror_sources(node)
        .flat_map(|e| {
            e.mirrors
                .iter()
                .filter(|m| m.copied_from.is_none())
                .map(move |m| (m.location.as_str(), e.scope()))
        })
        .collect();
    locations.sort_unstable();
    locations.dedup_by_key(|(location, _)| *location);
    for &(i, blocked) in node.kept_blocked() {
        for &(location, source) in &locations {
            let blocks = ref_matching_prefix(location, blocked.trim_end_matches('/')).is_some()
                && node
                    .find_registry(location)
                    .and_then(|e| node.registries_conf().get(e))
                    .is_some_and(|e| e.blocked);
            if blocks {
                out.warn_with(|| {
                    (
                        item_path("blockedRegistries", i),
                        format!(
                            "{} blocks the mirror {} of {}: pulls skip it",
                            quoted(blocked),
                            quoted(location),
                            quoted(source)
                        ),
                    )
                });
            }
        }
    }
}

pub(super) static W23: Rule = Rule {
    id: "W23",
    tier: Tier::Warning,
    field: "spec.registrySources.blockedRegistries[i]",
    check: "a blocked entry that MCO keeps because the release payload repository P has a digest mirror does not reject other images in policy.json",
    why: "policy.json then accepts P alone under the entry: the payload's component images (and with P alone blocked, every other image) fail to pull",
    source: "MCO container-runtime-config helpers.go (getValidBlockedAndAllowedRegistries, updatePolicyJSON); MIRRORS.md §5.3-§5.4, §8",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: payload_block_rejects_components,
};

/// W23: a blocked entry covering P, kept thanks to P's digest mirror: the payload exception
/// carves out P alone.
pub(super) fn payload_block_rejects_components(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(node) = node_in_context(ctx) else {
        return;
    };
    let Some(p) = node.payload_repository() else {
        return;
    };
    let kept = node.kept_blocked();
    let others_blocked = kept.iter().any(|(_, b)| *b != p);
    for &(i, blocked) in kept.iter().filter(|(_, b)| is_nested_inside(p, b)) {
        let message = if blocked != p {
            format!(
                "{} is kept because {} has a digest mirror, but policy.json rejects every other \
                 image under it, the payload's component images included",
                quoted(blocked),
                quoted(p)
            )
        } else if !others_blocked {
            format!(
                "blocking only the release payload repository {} makes policy.json reject every \
                 other image",
                quoted(p)
            )
        } else {
            continue;
        };
        out.warn_with(|| (item_path("blockedRegistries", i), message));
    }
}

pub(super) static W24: Rule = Rule {
    id: "W24",
    tier: Tier::Warning,
    field: "spec.registrySources",
    check: "a mirror-set source with mirrorSourcePolicy: NeverContactSource has a tag mirror (an ImageTagMirrorSet) and a digest mirror (an ImageDigestMirrorSet or ImageContentSourcePolicy)",
    why: "the source entry is blocked, digest mirrors serve only digests and tag mirrors only tags: every pull of the source by tag (or by digest) fails",
    source: "containers/image sysregistriesv2 (PullSourcesFromReference, pull-from-mirror); openshift/installer#10073; MIRRORS.md §2.1, §4.3, §8 (c)",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: never_contact_without_tag_mirror,
};

/// W24: a source blocked by `NeverContactSource` (not by the Image) that lacks a `tag-only` or a
/// `digest-only` mirror: `blocked` is set on the source entry whichever kind of set asked for it
/// (`MIRRORS.md` §2.1), so the pulls no mirror serves have nowhere to go.
pub(super) fn never_contact_without_tag_mirror(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(node) = node_in_context(ctx) else {
        return;
    };
    for entry in mirror_sources(node) {
        let Some(by) = entry
            .blocked_by
            .as_ref()
            .filter(|b| b.value.as_deref() == Some("NeverContactSource"))
        else {
            continue;
        };
        let serves = |kind| entry.mirrors.iter().any(|m| m.pull_from_mirror == kind);
        let missing = match (
            serves(PullFromMirror::TagOnly),
            serves(PullFromMirror::DigestOnly),
        ) {
            (true, true) => continue,
            (false, true) => "has no tag mirror: pulls of it by tag fail",
            (true, false) => "has no digest mirror: pulls of it by digest fail",
            (false, false) => "has no mirror: every pull of it fails",
        };
        let object = by.field.split(' ').next().unwrap_or("");
        out.warn_with(|| {
            (
                registry_sources_path(),
                format!(
                    "{object}: {} never contacts its source and {missing}",
                    quoted(entry.scope())
                ),
            )
        });
    }
}

pub(super) static W25: Rule = Rule {
    id: "W25",
    tier: Tier::Warning,
    field: "spec.registrySources.insecureRegistries[i]",
    check: "an insecure entry that matches a mirror location the way containers/image matches (a host without the mirror's port) also makes that mirror insecure",
    why: "MCO marks a mirror insecure only when its location is nested in the insecure scope: `mirror.local` does not cover `mirror.local:5000/ocp`, whose pulls then require verified TLS",
    source: "runtime-utils registries.go (ScopeIsNestedInsideScope on mirror locations); MIRRORS.md §4.4, §8 (d)",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: insecure_host_misses_mirror_port,
};

/// W25: an insecure scope that containers/image's prefix match would apply to a mirror
/// location, but MCO's scope nesting does not: the mirror stays secure.
pub(super) fn insecure_host_misses_mirror_port(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(rs) = ctx.registry_sources() else {
        return;
    };
    let Some(node) = node_in_context(ctx) else {
        return;
    };
    let mut secure: Vec<&str> = node
        .registries_conf()
        .iter()
        .flat_map(|e| e.mirrors.iter())
        .filter(|m| !m.insecure)
        .map(|m| m.location.as_str())
        .collect();
    secure.sort_unstable();
    secure.dedup();
    for (i, insecure) in items(&rs.insecure) {
        for &location in &secure {
            if ref_matching_prefix(location, insecure).is_none()
                || is_nested_inside(location, insecure)
            {
                continue;
            }
            let host = location.split('/').next().unwrap_or(location);
            out.warn_with(|| {
                (
                    item_path("insecureRegistries", i),
                    format!(
                        "{} does not make the mirror {} insecure; add {}",
                        quoted(insecure),
                        quoted(location),
                        quoted(host)
                    ),
                )
            });
        }
    }
}
