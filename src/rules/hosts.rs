//! Rules about hosts wherever they appear: P4, P6, and the host hygiene warnings
//! W7, W9-W13 across `registrySources`, `allowedRegistriesForImport` and the hostname lists.

use super::registry_sources::{item_path, quoted, repeats, scope_lists_of};
use super::{C, Ctx, Denial, Out, Ratcheting, Rule, S, Tier, U, items};
use crate::field::{FieldError, Path};
use crate::grammar::hashed::fast_set;
use crate::grammar::host::{HostPort, is_host_port, limit_problems};
use crate::grammar::import::has_glob;
use crate::grammar::scope::Scope;
use crate::image::StrList;

const HOSTNAME_FORMAT: &str = "must be in \"hostname[:port]\" format";

/// Hosts that references are normalized away from (distribution/reference).
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];

/// Every host the hygiene warnings look at.
#[derive(Debug)]
pub(super) struct HostEntry<'a> {
    /// The list the entry is in and its index; the path is built only for a warning.
    list: &'static str,
    index: usize,
    value: &'a str,
    host_port: HostPort<'a>,
    kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    /// A registrySources scope; `wildcard` for `*.domain`.
    Scope { wildcard: bool },
    /// A short-name search registry.
    Search,
    /// An `allowedRegistriesForImport` domainName.
    Import,
    /// An `externalRegistryHostnames` entry.
    External,
}

impl HostEntry<'_> {
    fn path(&self) -> Path {
        match self.kind {
            EntryKind::Import => Path::new(&["spec", self.list])
                .index(self.index)
                .child("domainName"),
            EntryKind::External => Path::new(&["spec", self.list]).index(self.index),
            EntryKind::Scope { .. } | EntryKind::Search => item_path(self.list, self.index),
        }
    }
}

/// Calls `visit` with each entry of a list of plain `host[:port]` strings.
fn plain_entries<'a>(
    list: &'static str,
    kind: EntryKind,
    values: &'a Option<StrList>,
    visit: &mut impl FnMut(HostEntry<'a>),
) {
    for (i, value) in items(values) {
        visit(HostEntry {
            list,
            index: i,
            value,
            host_port: HostPort::split(value),
            kind,
        });
    }
}

/// Calls `visit` with each host entry of the object, in field order: imports, external
/// hostnames, scopes, search registries. Taken apart again by each rule that asks (a split on
/// `:` and `/`), rather than kept: a list of millions of entries costs no memory here.
fn each_host_entry<'a>(ctx: &Ctx<'a>, mut visit: impl FnMut(HostEntry<'a>)) {
    let Some(spec) = ctx.spec() else { return };
    let imports = spec.allowed_registries_for_import.iter().flatten();
    for (i, location) in imports.enumerate() {
        let Some(domain) = location.as_ref().and_then(|l| l.domain_name.as_deref()) else {
            continue;
        };
        visit(HostEntry {
            list: "allowedRegistriesForImport",
            index: i,
            value: domain,
            host_port: HostPort::split(domain),
            kind: EntryKind::Import,
        });
    }
    plain_entries(
        "externalRegistryHostnames",
        EntryKind::External,
        &spec.external_registry_hostnames,
        &mut visit,
    );
    let Some(sources) = spec.registry_sources.as_ref() else {
        return;
    };
    for (name, list) in scope_lists_of(sources) {
        for (i, value) in items(list) {
            let scope = Scope::parse(value);
            visit(HostEntry {
                list: name,
                index: i,
                value,
                host_port: scope.host_port,
                kind: EntryKind::Scope {
                    wildcard: scope.wildcard,
                },
            });
        }
    }
    plain_entries(
        "containerRuntimeSearchRegistries",
        EntryKind::Search,
        &sources.search,
        &mut visit,
    );
}

pub(super) static P4: Rule = Rule {
    id: "P4",
    tier: Tier::Protective,
    field: "spec.externalRegistryHostnames[i]",
    check: "each entry is hostname[:port]",
    why: "the first entry becomes the host of every ImageStream's public pull spec",
    source: "openshift/api types_image.go doc; openshift-apiserver imagestream strategy.go",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: external_hostname_is_not_a_host,
};

/// P4: `externalRegistryHostnames` entries are `hostname[:port]`.
pub(super) fn external_hostname_is_not_a_host(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(spec) = ctx.spec() else { return };
    for (i, value) in items(&spec.external_registry_hostnames).filter(|(_, v)| !is_host_port(v)) {
        out.error_with(|| {
            let path = Path::new(&["spec", "externalRegistryHostnames"]).index(i);
            FieldError::invalid(path, value, HOSTNAME_FORMAT)
        });
    }
}

pub(super) static P6: Rule = Rule {
    id: "P6",
    tier: Tier::Protective,
    field: "status.internalRegistryHostname, status.externalRegistryHostnames[i]",
    check: "on a status write, each hostname is hostname[:port]",
    why: "the first external hostname becomes the host of every ImageStream's public pull spec",
    source: "openshift/api types_image.go doc; openshift-apiserver imagestream strategy.go",
    phases: &[S],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: status_hostname_is_not_a_host,
};

/// P6: on a status write, the registry hostnames are `hostname[:port]`. An empty
/// `internalRegistryHostname` is accepted: the operator clears it when the registry is removed.
pub(super) fn status_hostname_is_not_a_host(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(status) = &ctx.new.status else {
        return;
    };
    if let Some(host) = status.internal_registry_hostname.as_deref()
        && !host.is_empty()
        && !is_host_port(host)
    {
        let path = Path::new(&["status", "internalRegistryHostname"]);
        out.error(FieldError::invalid(path, host, HOSTNAME_FORMAT));
    }
    for (i, value) in items(&status.external_registry_hostnames).filter(|(_, v)| !is_host_port(v)) {
        out.error_with(|| {
            let path = Path::new(&["status", "externalRegistryHostnames"]).index(i);
            FieldError::invalid(path, value, HOSTNAME_FORMAT)
        });
    }
}

pub(super) static W7: Rule = Rule {
    id: "W7",
    tier: Tier::Warning,
    field: "registrySources lists, externalRegistryHostnames, allowedRegistriesForImport",
    check: "no entry repeats",
    why: "harmless upstream, but usually a copy-paste mistake",
    source: "atomic lists accept duplicates",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: entry_repeats,
};

/// W7: exact repeats in the atomic lists (the set list repeats are R7 errors).
pub(super) fn entry_repeats(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(spec) = ctx.spec() else { return };
    let mut warn = |path: Path, value: &str| {
        out.warn_with(|| (path, format!("duplicate entry {}", quoted(value))));
    };
    if let Some(list) = &spec.allowed_registries_for_import {
        let mut seen = fast_set(list.len());
        let mut reported = fast_set(0);
        for (i, location) in list.iter().enumerate() {
            let Some(location) = location else { continue };
            let key = (location.domain_name.as_deref(), location.insecure);
            if !seen.insert(key) && reported.insert(key) {
                warn(
                    Path::new(&["spec", "allowedRegistriesForImport"]).index(i),
                    location.domain_name.as_deref().unwrap_or(""),
                );
            }
        }
    }
    for (i, value) in repeats(&spec.external_registry_hostnames) {
        warn(
            Path::new(&["spec", "externalRegistryHostnames"]).index(i),
            value,
        );
    }
    if let Some(rs) = &spec.registry_sources {
        for (name, list) in scope_lists_of(rs) {
            for (i, value) in repeats(list) {
                warn(item_path(name, i), value);
            }
        }
    }
}

pub(super) static W9: Rule = Rule {
    id: "W9",
    tier: Tier::Warning,
    field: "registry scopes, search registries, allowedRegistriesForImport[i].domainName",
    check: "no host is a single label (no dot or port, not localhost)",
    why: "image references read a single first label as a docker.io namespace: the entry never matches",
    source: "distribution/reference normalize.go (splitDockerDomain)",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: single_label_host,
};

/// W9: a single-label host reads as a docker.io namespace and never matches.
pub(super) fn single_label_host(ctx: &Ctx<'_>, out: &mut Out) {
    each_host_entry(ctx, |entry| {
        let applies = || match entry.kind {
            EntryKind::Scope { wildcard } => !wildcard,
            EntryKind::Search => true,
            EntryKind::Import => !has_glob(entry.value),
            EntryKind::External => false,
        };
        if entry.host_port.is_single_label() && applies() {
            out.warn_with(|| {
                let message = format!(
                    "single-label host {} is treated as a docker.io namespace and never matches",
                    quoted(entry.host_port.host)
                );
                (entry.path(), message)
            });
        }
    });
}

pub(super) static W10: Rule = Rule {
    id: "W10",
    tier: Tier::Warning,
    field: "registry scopes, search registries, allowedRegistriesForImport[i].domainName",
    check: "hosts are lowercase",
    why: "registry matching compares bytes: an uppercase host never matches a reference",
    source: "containers/image and openshift-apiserver compare byte-wise",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: uppercase_host,
};

/// W10: hosts are matched byte-wise, so uppercase never matches.
pub(super) fn uppercase_host(ctx: &Ctx<'_>, out: &mut Out) {
    each_host_entry(ctx, |entry| {
        if entry.kind != EntryKind::External && entry.host_port.has_uppercase() {
            out.warn_with(|| {
                let host = entry.host_port.host;
                let message = format!(
                    "host {} has uppercase letters; registry host matching is case-sensitive: use {}",
                    quoted(host),
                    quoted(&host.to_ascii_lowercase())
                );
                (entry.path(), message)
            });
        }
    });
}

pub(super) static W11: Rule = Rule {
    id: "W11",
    tier: Tier::Warning,
    field: "spec.registrySources.{insecure,blocked,allowed}Registries[i]",
    check: "no scope names index.docker.io or registry-1.docker.io",
    why: "references are normalized to docker.io, so these never match",
    source: "distribution/reference normalize.go",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: docker_hub_alias,
};

/// W11: `index.docker.io` and `registry-1.docker.io` are normalized to `docker.io`.
pub(super) fn docker_hub_alias(ctx: &Ctx<'_>, out: &mut Out) {
    each_host_entry(ctx, |entry| {
        let is_scope = matches!(entry.kind, EntryKind::Scope { wildcard: false });
        if is_scope && DOCKER_HUB_ALIASES.contains(&entry.host_port.host) {
            out.warn_with(|| {
                (
                    entry.path(),
                    "references are normalized to docker.io; this never matches".into(),
                )
            });
        }
    });
}

pub(super) static W12: Rule = Rule {
    id: "W12",
    tier: Tier::Warning,
    field: "every host[:port]",
    check: "ports are 1-65535, labels at most 63 characters, hosts at most 253",
    why: "such a registry cannot exist; the entry never matches",
    source: "apimachinery IsValidPortNum; RFC 1123",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: limits_exceeded,
};

/// W12: ports and label lengths no registry can have.
pub(super) fn limits_exceeded(ctx: &Ctx<'_>, out: &mut Out) {
    each_host_entry(ctx, |entry| {
        let problems = limit_problems(&entry.host_port);
        if !problems.is_empty() {
            out.warn_with(|| {
                (
                    entry.path(),
                    format!("invalid port/label length: {}", problems.join("; ")),
                )
            });
        }
    });
}

pub(super) static W13: Rule = Rule {
    id: "W13",
    tier: Tier::Warning,
    field: "spec.registrySources.{insecure,blocked,allowed}Registries[i], allowedRegistriesForImport[i].domainName",
    check: "no wildcard covers a whole top-level domain (*.com) or, for imports, every registry (*)",
    why: "almost certainly broader than meant",
    source: "containers/image wildcard matching; openshift-apiserver IsWildcardMatch",
    phases: &[C, U],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: wildcard_covers_tld,
};

/// W13: `*.com` covers a whole top-level domain; for imports, where `*` is a glob, `*` alone
/// admits every registry.
pub(super) fn wildcard_covers_tld(ctx: &Ctx<'_>, out: &mut Out) {
    each_host_entry(ctx, |entry| {
        let covered = match entry.kind {
            EntryKind::Scope { wildcard: true } => top_level_domain(entry.value),
            EntryKind::Import => {
                // The host glob: leading stars, then at most one label.
                let host = entry.value.split_once(':').map_or(entry.value, |(h, _)| h);
                let rest = host.trim_start_matches('*');
                if rest.len() == host.len() {
                    None
                } else if rest.is_empty() {
                    Some(Covered::Everything)
                } else {
                    // `*{rest}` is `*.` and one label.
                    rest.strip_prefix('.')
                        .is_some_and(|label| !label.is_empty() && !label.contains(TLD_STOP))
                        .then_some(Covered::TopLevelDomain)
                }
            }
            _ => None,
        };
        if let Some(covered) = covered {
            out.warn_with(|| {
                let what = match covered {
                    Covered::TopLevelDomain => "covers an entire top-level domain",
                    Covered::Everything => "covers every registry",
                };
                (
                    entry.path(),
                    format!("wildcard {} {what}", quoted(entry.value)),
                )
            });
        }
    });
}

/// What a wildcard covers, for W13.
#[derive(Debug, Clone, Copy)]
enum Covered {
    TopLevelDomain,
    Everything,
}

/// What ends the label of a wildcard over one label.
const TLD_STOP: [char; 5] = ['.', '/', ':', '*', '?'];

/// `*.com`: a wildcard over one label.
fn top_level_domain(value: &str) -> Option<Covered> {
    value
        .strip_prefix("*.")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(TLD_STOP))
        .then_some(Covered::TopLevelDomain)
}
