//! The cluster context in the node model (`MIRRORS.md` §2, §3, §5.3, §6): MCO's checks of the
//! mirror sets (`validateRegistriesConfScopes`), their merge per exact source (runtime-utils
//! `addMirrorSet`, `mergedMirrors`, `topo.go`), and the `[[registry]]` entries with their
//! `[[registry.mirror]]` tables (`EditRegistriesConfig`, `mirrorsAdjustedForNestedScope`).
//!
//! Everything here runs only when a [`ClusterContext`] is given: a node built from an Image
//! alone never reaches this module.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::{DecidedBy, Dropped, Entry, Flags, RenderError, RenderErrorKind, Source};
use crate::context::{ClusterContext, MirrorKind, MirrorRule, MirrorSourcePolicy};
use crate::field::go_quote;
use crate::grammar::hashed::{FastMap, fast_map};
use crate::grammar::scope::{
    ScopeIndex, is_nested_inside, is_valid_registries_conf_scope, ref_matching_prefix,
};

/// A host label of the API's patterns (`MIRRORS.md` §6.1).
const LABEL: &str = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";

/// `host[:port][/path]` of the API's patterns, without anchors.
fn host_and_path() -> String {
    format!(
        "((?:{LABEL})(?:(?:\\.(?:{LABEL}))+)?(?::[0-9]+)?)(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?"
    )
}

/// MCO `sourceRegex` (the IDMS/ITMS `source` pattern): a wildcard host, or host[:port][/path].
static SOURCE: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!("^\\*(?:\\.(?:{LABEL}))+$|^{}$", host_and_path());
    Regex::new(&pattern).expect("constant source pattern compiles")
});

/// MCO `mirrorRegex` (the `ImageMirror` pattern): host[:port][/path], no wildcard.
static MIRROR: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!("^{}$", host_and_path());
    Regex::new(&pattern).expect("constant mirror pattern compiles")
});

/// `pull-from-mirror` of a `[[registry.mirror]]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum PullFromMirror {
    /// `digest-only`: an IDMS or ICSP mirror, used for pulls by digest.
    DigestOnly,
    /// `tag-only`: an ITMS mirror, used for pulls by tag.
    TagOnly,
}

impl PullFromMirror {
    /// The value MCO writes.
    pub fn as_str(self) -> &'static str {
        match self {
            PullFromMirror::DigestOnly => "digest-only",
            PullFromMirror::TagOnly => "tag-only",
        }
    }
}

/// One item of a mirror set, as the model keeps it: which object, which item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MirrorItem<'a> {
    kind: MirrorKind,
    set: &'a str,
    index: usize,
}

impl MirrorItem<'_> {
    /// `ImageDigestMirrorSet/<name> spec.imageDigestMirrors[i]`, then `.key` when given.
    pub(super) fn decided_by(self, key: &str, value: &str) -> DecidedBy {
        let list = match self.kind {
            MirrorKind::Digest => "imageDigestMirrors",
            MirrorKind::Tag => "imageTagMirrors",
            MirrorKind::ContentSource => "repositoryDigestMirrors",
        };
        let mut field = format!(
            "{}/{} spec.{list}[{}]",
            self.kind.kind(),
            self.set,
            self.index
        );
        if !key.is_empty() {
            field.push('.');
            field.push_str(key);
        }
        DecidedBy::entry(field, value)
    }
}

/// Every item of the context in MCO's order: IDMS, then ICSP (converted to IDMS), then ITMS.
fn items(context: &ClusterContext) -> impl Iterator<Item = (MirrorItem<'_>, &MirrorRule)> {
    [
        MirrorKind::Digest,
        MirrorKind::ContentSource,
        MirrorKind::Tag,
    ]
    .into_iter()
    .flat_map(move |kind| {
        context.mirror_sets(kind).iter().flat_map(move |set| {
            set.rules.iter().enumerate().map(move |(index, rule)| {
                let item = MirrorItem {
                    kind,
                    set: &set.name,
                    index,
                };
                (item, rule)
            })
        })
    })
}

/// MCO `validateRegistriesConfScopes` on the mirror sets (the scope lists are checked by the
/// caller): per item in [`items`] order, the source pattern, one policy per exact source (unset
/// and ICSP count as `AllowContactingSource`), then per mirror its pattern and
/// `NeverContactSource` with the source among the mirrors. The first failure.
fn validate_now(context: &ClusterContext) -> Option<RenderError> {
    let mut policies: BTreeMap<&str, MirrorSourcePolicy> = BTreeMap::new();
    for (item, rule) in items(context) {
        let source = rule.source.as_str();
        if !SOURCE.is_match(source) {
            return Some(RenderError::with_message(
                RenderErrorKind::InvalidSource,
                Some(item.decided_by("source", source)),
                format!("invalid format for source {}", go_quote(source)),
            ));
        }
        let policy = rule
            .source_policy
            .unwrap_or(MirrorSourcePolicy::AllowContactingSource);
        if *policies.entry(source).or_insert(policy) != policy {
            return Some(RenderError::with_message(
                RenderErrorKind::ConflictingSourcePolicy,
                Some(item.decided_by("mirrorSourcePolicy", policy.as_str())),
                format!(
                    "conflicting mirrorSourcePolicy is set for the same source {} in imagedigestmirrorsets, imagetagmirrorsets, or imagecontentsourcepolicies",
                    go_quote(source)
                ),
            ));
        }
        for (m, mirror) in rule.mirrors.iter().enumerate() {
            if !MIRROR.is_match(mirror) {
                return Some(RenderError::with_message(
                    RenderErrorKind::InvalidMirror,
                    Some(item.decided_by(&format!("mirrors[{m}]"), mirror)),
                    format!("invalid format for mirror {}", go_quote(mirror)),
                ));
            }
            if policy == MirrorSourcePolicy::NeverContactSource && mirror == source {
                return Some(RenderError::with_message(
                    RenderErrorKind::SourceAmongMirrors,
                    Some(item.decided_by(&format!("mirrors[{m}]"), mirror)),
                    format!(
                        "cannot set mirrorSourcePolicy: NeverContactSource if the source {} is one of the mirrors",
                        go_quote(source)
                    ),
                ));
            }
        }
    }
    None
}

/// The mirrors of one exact source after runtime-utils' merge.
#[derive(Debug, Clone)]
pub(super) struct MergedSet<'a> {
    pub(super) source: &'a str,
    pub(super) pull_from: PullFromMirror,
    /// The mirrors in merged order, each with the first item that lists it.
    pub(super) mirrors: Vec<(&'a str, MirrorItem<'a>)>,
    /// The first kept item with `NeverContactSource`: the source entry is `blocked`.
    pub(super) never_contact: Option<MirrorItem<'a>>,
}

/// runtime-utils `mergedDigestMirrorSets` (`digest`: IDMS then ICSP) or `mergedTagMirrorSets`
/// (ITMS), sorted by source: items without a mirror other than their source are skipped with
/// their policy (`addMirrorSet`); the mirrors of one source are merged by [`topo_sorted`], and
/// the source is dropped when it sorts last.
fn merge_now(context: &ClusterContext, digest: bool) -> Vec<MergedSet<'_>> {
    let mut by_source: BTreeMap<&str, Vec<(MirrorItem<'_>, &MirrorRule)>> = BTreeMap::new();
    for (item, rule) in items(context) {
        let wanted = match item.kind {
            MirrorKind::Digest | MirrorKind::ContentSource => digest,
            MirrorKind::Tag => !digest,
        };
        if wanted && rule.mirrors.iter().any(|m| *m != rule.source) {
            by_source
                .entry(&rule.source)
                .or_default()
                .push((item, rule));
        }
    }
    let pull_from = if digest {
        PullFromMirror::DigestOnly
    } else {
        PullFromMirror::TagOnly
    };
    by_source
        .into_iter()
        .map(|(source, rules)| {
            let mut edges = Vec::new();
            for (_, rule) in &rules {
                let mirrors: Vec<&str> = rule.mirrors.iter().map(String::as_str).collect();
                edges.extend(
                    mirrors
                        .windows(2)
                        .filter_map(|w| Some((*w.first()?, *w.get(1)?))),
                );
                if let Some(last) = mirrors.last().filter(|_| !mirrors.contains(&source)) {
                    edges.push((*last, source));
                }
            }
            let mut sorted = topo_sorted(&edges);
            if sorted.last() == Some(&source) {
                sorted.pop();
            }
            // The source itself may sort before a mirror (a cycle broken at it): it stays, as
            // upstream keeps it, named by the first item of the source.
            let first_listing = |mirror: &str| {
                rules
                    .iter()
                    .find(|(_, rule)| rule.mirrors.iter().any(|m| m == mirror))
                    .or(rules.first())
                    .map(|(item, _)| *item)
            };
            MergedSet {
                source,
                pull_from,
                mirrors: sorted
                    .into_iter()
                    .filter_map(|m| Some((m, first_listing(m)?)))
                    .collect(),
                never_contact: rules
                    .iter()
                    .find(|(_, r)| r.source_policy == Some(MirrorSourcePolicy::NeverContactSource))
                    .map(|(item, _)| *item),
            }
        })
        .collect()
}

/// What the node model derives from a [`ClusterContext`] alone, made once per context (kept in
/// [`crate::context::Derived`]) instead of once per review: the merged mirror sets, as positions
/// in the context (nothing borrowed, so it can live beside what it describes), MCO's checks of
/// the mirror sets, and P from the release image.
#[derive(Debug)]
pub struct Prepared {
    digest: Vec<MergedAt>,
    tag: Vec<MergedAt>,
    validation: Option<RenderError>,
    /// The length of P in the release image ([`super::payload_repository_of`]: P is its
    /// start), when there is one.
    payload: Option<Result<usize, RenderError>>,
}

/// A [`MergedSet`] by position: the item whose `source` it is, its mirrors (each the text of a
/// mirror or of a source, and the item that lists it), and the `NeverContactSource` item.
#[derive(Debug)]
struct MergedAt {
    source: ItemAt,
    pull_from: PullFromMirror,
    mirrors: Vec<(TextAt, ItemAt)>,
    never_contact: Option<ItemAt>,
}

/// An item: its kind, its set's position in the kind's list, its position in the set.
#[derive(Debug, Clone, Copy)]
struct ItemAt(MirrorKind, usize, usize);

/// A text of an item: its `source`, or its `mirrors[i]`.
#[derive(Debug, Clone, Copy)]
enum TextAt {
    Source(ItemAt),
    Mirror(ItemAt, usize),
}

impl ItemAt {
    fn rule(self, context: &ClusterContext) -> Option<(&str, &MirrorRule)> {
        let set = context.mirror_sets(self.0).get(self.1)?;
        Some((set.name.as_str(), set.rules.get(self.2)?))
    }

    fn item(self, context: &ClusterContext) -> Option<MirrorItem<'_>> {
        let (set, _) = self.rule(context)?;
        Some(MirrorItem {
            kind: self.0,
            set,
            index: self.2,
        })
    }
}

impl TextAt {
    fn text(self, context: &ClusterContext) -> Option<&str> {
        match self {
            TextAt::Source(at) => Some(at.rule(context)?.1.source.as_str()),
            TextAt::Mirror(at, m) => Some(at.rule(context)?.1.mirrors.get(m)?.as_str()),
        }
    }
}

/// The position of `item` in `context`.
fn item_at(context: &ClusterContext, item: MirrorItem<'_>) -> Option<ItemAt> {
    let set = context
        .mirror_sets(item.kind)
        .iter()
        .position(|s| std::ptr::eq(s.name.as_str(), item.set))?;
    Some(ItemAt(item.kind, set, item.index))
}

impl Prepared {
    fn new(context: &ClusterContext) -> Self {
        let by_position = |digest: bool| -> Vec<MergedAt> {
            merge_now(context, digest)
                .iter()
                .filter_map(|set| merged_at(context, set))
                .collect()
        };
        Prepared {
            digest: by_position(true),
            tag: by_position(false),
            validation: validate_now(context),
            payload: context
                .release_image
                .as_deref()
                .map(|r| super::payload_repository_of(r).map(str::len)),
        }
    }
}

/// A merged set as positions; `None` if a text is not found where it came from (it always is).
fn merged_at(context: &ClusterContext, set: &MergedSet<'_>) -> Option<MergedAt> {
    let first = set
        .mirrors
        .first()
        .map(|(_, item)| *item)
        .or(set.never_contact);
    let listing = |item: MirrorItem<'_>| item_at(context, item);
    let source = match first {
        Some(item) => listing(item)?,
        None => return None,
    };
    let mirrors = set
        .mirrors
        .iter()
        .map(|(text, item)| {
            let at = listing(*item)?;
            let (_, rule) = at.rule(context)?;
            let text_at = match rule.mirrors.iter().position(|m| m == text) {
                Some(m) => TextAt::Mirror(at, m),
                None => TextAt::Source(at),
            };
            Some((text_at, at))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(MergedAt {
        source,
        pull_from: set.pull_from,
        mirrors,
        never_contact: set.never_contact.and_then(listing),
    })
}

/// The prepared form of `context`, made on its first use.
fn prepared(context: &ClusterContext) -> &Prepared {
    context.derived.get_or_init(|| Prepared::new(context))
}

/// [`merge_now`], from the positions prepared once per context.
pub(super) fn merged(context: &ClusterContext, digest: bool) -> Vec<MergedSet<'_>> {
    let sets = if digest {
        &prepared(context).digest
    } else {
        &prepared(context).tag
    };
    sets.iter()
        .filter_map(|set| {
            Some(MergedSet {
                source: TextAt::Source(set.source).text(context)?,
                pull_from: set.pull_from,
                mirrors: set
                    .mirrors
                    .iter()
                    .map(|(text, item)| Some((text.text(context)?, item.item(context)?)))
                    .collect::<Option<Vec<_>>>()?,
                never_contact: set.never_contact.and_then(|at| at.item(context)),
            })
        })
        .collect()
}

/// A bound on the `[[registry.mirror]]` tables of a model of `context` with an Image of
/// `scopes` blocked and insecure scopes: the mirror sets' own, and for each scope at most the
/// most mirrors one source has (a nested scope copies those of one source).
pub(super) fn mirror_tables_bound(context: &ClusterContext, scopes: usize) -> usize {
    let prepared = prepared(context);
    let own = |sets: &[MergedAt]| sets.iter().map(|s| s.mirrors.len()).sum::<usize>();
    let most = |sets: &[MergedAt]| sets.iter().map(|s| s.mirrors.len()).max().unwrap_or(0);
    let per_scope = most(&prepared.digest).saturating_add(most(&prepared.tag));
    own(&prepared.digest)
        .saturating_add(own(&prepared.tag))
        .saturating_add(scopes.saturating_mul(per_scope))
}

/// [`validate_now`], once per context.
pub(super) fn validate(context: &ClusterContext) -> Option<RenderError> {
    prepared(context).validation.clone()
}

/// P from the context's release image ([`super::payload_repository_of`]), once per context.
pub(super) fn release_payload(context: &ClusterContext) -> Option<Result<&str, RenderError>> {
    let release = context.release_image.as_deref()?;
    Some(match prepared(context).payload.clone()? {
        Ok(len) => release
            .get(..len)
            .ok_or_else(|| RenderError::new(RenderErrorKind::ReleaseImage, None)),
        Err(e) => Err(e),
    })
}

/// runtime-utils `topoGraph.Sorted`: Kahn's algorithm with a FIFO queue seeded with the nodes
/// without predecessors in lexical order, each batch of newly freed successors queued in lexical
/// order; a cycle is broken by the first unused node in lexical order. Never fails.
pub(super) fn topo_sorted<'s>(edges: &[(&'s str, &'s str)]) -> Vec<&'s str> {
    let mut nodes: Vec<&str> = edges.iter().flat_map(|(a, b)| [*a, *b]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let id = |s: &str| nodes.binary_search(&s).unwrap_or(0);
    let mut ins: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); nodes.len()];
    let mut outs: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); nodes.len()];
    for (a, b) in edges {
        let (a, b) = (id(a), id(b));
        if let Some(o) = outs.get_mut(a) {
            o.insert(b);
        }
        if let Some(i) = ins.get_mut(b) {
            i.insert(a);
        }
    }
    let mut used = vec![false; nodes.len()];
    let mut queue: VecDeque<usize> = (0..nodes.len())
        .filter(|&n| ins.get(n).is_some_and(BTreeSet::is_empty))
        .collect();
    let (mut sorted, mut next) = (Vec::with_capacity(nodes.len()), 0);
    while !queue.is_empty() || next < nodes.len() {
        let node = match queue.pop_front() {
            Some(node) => node,
            None => {
                next += 1;
                next - 1
            }
        };
        if used.get(node).copied().unwrap_or(true) {
            continue;
        }
        if let Some(u) = used.get_mut(node) {
            *u = true;
        }
        sorted.extend(nodes.get(node).copied());
        // A BTreeSet iterates in index order, which is lexical order: the batch is sorted.
        for &out in outs.get(node).into_iter().flatten() {
            let Some(preds) = ins.get_mut(out) else {
                continue;
            };
            preds.remove(&node);
            if preds.is_empty() && !used.get(out).copied().unwrap_or(true) {
                queue.push_back(out);
            }
        }
    }
    sorted
}

/// One `[[registry.mirror]]` table as the model keeps it.
#[derive(Debug, Clone)]
pub(super) struct Mirror<'a> {
    pub(super) location: Cow<'a, str>,
    pub(super) pull_from: PullFromMirror,
    /// The insecure entry that marks the endpoint insecure (runtime-utils: the location nested
    /// inside an insecure scope).
    pub(super) insecure_by: Option<Source<'a>>,
    /// The first mirror-set item that lists it.
    pub(super) listed_by: MirrorItem<'a>,
    /// The mirror-set source it was copied from to a nested scope, if it was.
    pub(super) copied_from: Option<&'a str>,
}

/// The `[[registry]]` entries with their mirrors, in the order MCO writes them.
#[derive(Debug, Default)]
pub(super) struct Entries<'a> {
    pub(super) entries: Vec<Entry<'a>>,
    pub(super) mirrors: Vec<Vec<Mirror<'a>>>,
}

/// runtime-utils `EditRegistriesConfig` with mirror sets: entries for the digest then tag
/// sources (`NeverContactSource` blocks the source entry), then the blocked and insecure scopes;
/// the insecure and blocked flags propagated to nested entries (insecure also to nested mirror
/// locations); then each mirror source's mirrors copied to the nested entries that have none.
/// With the error of `mirrorsAdjustedForNestedScope` when such an entry is nested in a wildcard
/// source (MCO then refuses; the entries are those it would write once that is fixed).
pub(super) fn registry_entries<'a>(
    sets: &[&[MergedSet<'a>]],
    blocked: &[(usize, &'a str)],
    insecure: &[(usize, &'a str)],
) -> (Entries<'a>, Option<RenderError>) {
    let mut scopes: Vec<&'a str> = Vec::new();
    let mut never_contact = Vec::new();
    let mut mirrors: Vec<Vec<Mirror<'a>>> = Vec::new();
    // Each scope's entry, found by a lookup: a scan per scope was quadratic in the mirror sets.
    let mut index: FastMap<&'a str, usize> = fast_map(sets.iter().map(|s| s.len()).sum());
    let mut position =
        |scopes: &mut Vec<&'a str>, mirrors: &mut Vec<Vec<Mirror<'a>>>, s: &'a str| {
            *index.entry(s).or_insert_with(|| {
                scopes.push(s);
                mirrors.push(Vec::new());
                scopes.len() - 1
            })
        };
    let insecure_by = Flags::new(insecure, "insecureRegistries");
    for set in sets.iter().copied().flatten() {
        let at = position(&mut scopes, &mut mirrors, set.source);
        if let Some(item) = set.never_contact {
            never_contact.push((at, item));
        }
        let endpoints = set.mirrors.iter().map(|(location, item)| Mirror {
            location: Cow::Borrowed(*location),
            pull_from: set.pull_from,
            insecure_by: insecure_by.flagging(location),
            listed_by: *item,
            copied_from: None,
        });
        if let Some(m) = mirrors.get_mut(at) {
            m.extend(endpoints);
        }
    }
    for (_, scope) in blocked.iter().chain(insecure) {
        position(&mut scopes, &mut mirrors, scope);
    }
    let blocked_by = Flags::new(blocked, "blockedRegistries");
    let mut entries: Vec<Entry<'a>> = scopes
        .iter()
        .map(|scope| {
            Entry::new(
                scope,
                blocked_by.flagging(scope),
                insecure_by.flagging(scope),
            )
        })
        .collect();
    for (at, item) in never_contact {
        if let Some(entry) = entries.get_mut(at) {
            entry.never_contact = entry.never_contact.or(Some(item));
        }
    }
    let error = copy_to_nested_scopes(sets, &scopes, &mut mirrors).map(|(mut error, nested)| {
        let lists = [
            ("blockedRegistries", blocked),
            ("insecureRegistries", insecure),
        ];
        error.field = lists.iter().find_map(|(list, items)| {
            let (i, v) = items.iter().find(|(_, s)| *s == nested)?;
            Some(DecidedBy::list_item(list, *i, v))
        });
        error
    });
    (Entries { entries, mirrors }, error)
}

/// The last loop of `EditRegistriesConfig`: for each mirror source (digest then tag sets, in
/// order), every other entry nested inside it with no mirrors gets a copy of the source entry's
/// mirrors, each location extended by the rest of the nested scope (`mirrorsAdjustedForNestedScope`;
/// insecure flags and `pull-from-mirror` copied as they are).
///
/// Upstream loops over sources, then over entries. The same result, entry by entry: an entry
/// without mirrors of its own takes its copies from the first source (in set order) that covers
/// it and is not a wildcard; each wildcard source before that one is upstream's error for it, and
/// the error reported is the first upstream meets (smallest set, then smallest entry). The
/// sources covering an entry are found through a [`ScopeIndex`] of the sources, so the cost is
/// linear in the entries and their length, not the product of entries and sources.
fn copy_to_nested_scopes<'a>(
    sets: &[&[MergedSet<'a>]],
    scopes: &[&'a str],
    mirrors: &mut [Vec<Mirror<'a>>],
) -> Option<(RenderError, &'a str)> {
    let sources: Vec<&'a str> = sets
        .iter()
        .copied()
        .flatten()
        .map(|set| set.source)
        .collect();
    let index = ScopeIndex::new(sources.iter().copied());
    let own: Vec<bool> = mirrors.iter().map(|m| !m.is_empty()).collect();
    let entry_of: FastMap<&'a str, usize> =
        scopes.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let mut first_error: Option<(usize, usize, &'a str)> = None;
    for (i, scope) in scopes.iter().enumerate() {
        if own.get(i).copied().unwrap_or(true) {
            continue;
        }
        let mut covering: Vec<usize> = index
            .all_covering(scope)
            .filter(|&k| sources.get(k) != Some(scope))
            .collect();
        covering.sort_unstable();
        let Some(first_plain) = covering
            .iter()
            .copied()
            .find(|&k| sources.get(k).is_some_and(|s| !s.starts_with("*.")))
        else {
            // Only wildcard sources cover it: upstream's error at the first of them.
            if let Some(&k) = covering.first() {
                first_error = earlier(
                    first_error,
                    (k, i, sources.get(k).copied().unwrap_or_default()),
                );
            }
            continue;
        };
        if let Some(&k) = covering.first().filter(|&&k| k < first_plain) {
            first_error = earlier(
                first_error,
                (k, i, sources.get(k).copied().unwrap_or_default()),
            );
        }
        let Some(source) = sources.get(first_plain).copied() else {
            continue;
        };
        let Some(&at) = entry_of.get(source) else {
            continue;
        };
        let copies = adjusted_copies(mirrors.get(at), source, scope);
        if let Some(target) = mirrors.get_mut(i) {
            *target = copies;
        }
    }
    first_error.map(|(_, i, source)| {
        let message = format!(
            "internal error: mirrorsAdjustedForNestedScope for a wildcard scope {}",
            go_quote(source)
        );
        let error = RenderError::with_message(RenderErrorKind::WildcardNestedScope, None, message);
        (error, scopes.get(i).copied().unwrap_or_default())
    })
}

/// `mirrorsAdjustedForNestedScope`: the mirrors of the source entry, each location extended by
/// what `scope` adds to `source`.
fn adjusted_copies<'a>(
    mirrors: Option<&Vec<Mirror<'a>>>,
    source: &'a str,
    scope: &str,
) -> Vec<Mirror<'a>> {
    let adjustment = scope.get(source.len()..).unwrap_or("");
    mirrors
        .into_iter()
        .flatten()
        .map(|m| Mirror {
            location: Cow::Owned(format!("{}{adjustment}", m.location)),
            copied_from: Some(source),
            ..m.clone()
        })
        .collect()
}

/// The error upstream meets first: the smaller (source, entry) position.
fn earlier<'a>(
    found: Option<(usize, usize, &'a str)>,
    candidate: (usize, usize, &'a str),
) -> Option<(usize, usize, &'a str)> {
    match found {
        Some(f) if (f.0, f.1) <= (candidate.0, candidate.1) => Some(f),
        _ => Some(candidate),
    }
}

/// A mirror's physical reference for `reference` (a name or `name:tag`/`name@digest`) matched by
/// the entry prefix `prefix`: containers/image `rewriteReference` (the location, then what
/// follows the matched prefix). `None` when the prefix does not match.
pub(super) fn rewrite(reference: &str, prefix: &str, location: &str) -> Option<String> {
    let matched = ref_matching_prefix(reference, prefix)?;
    Some(format!("{location}{}", reference.get(matched..)?))
}

/// MCO `getValidBlockedAndAllowedRegistries` with mirror sets (`MIRRORS.md` §5.3): the blocked
/// entries that cover P are kept when P has an unblocked digest mirror, else dropped.
#[derive(Debug, Default)]
pub(super) struct PayloadException<'a> {
    /// `registriesBlocked`.
    pub(super) blocked: Vec<(usize, &'a str)>,
    /// `policyBlocked`: the kept entries, but an entry equal to P.
    pub(super) policy_blocked: Vec<(usize, &'a str)>,
    /// P, once per kept entry covering it: `(index of the entry, P)`.
    pub(super) payload_allowed: Vec<(usize, &'a str)>,
    pub(super) dropped: Vec<Dropped>,
    /// `payloadRepoHasUnblockedMirror` failed: MCO goes on with no blocked or allowed entry.
    pub(super) skipped: Option<RenderError>,
}

impl<'a> PayloadException<'a> {
    /// The exception for the blocked entries `blocked` (all of them, in order). `release` is
    /// the release image (P's reference); without one, P is taken to be pulled by digest.
    pub(super) fn apply(
        payload: Option<&'a str>,
        release: Option<&str>,
        digest_sets: &[MergedSet<'a>],
        insecure: &[(usize, &'a str)],
        blocked: &[(usize, &'a str)],
    ) -> Self {
        let mut out = PayloadException::default();
        let mut rescued: Option<Result<bool, RenderError>> = None;
        for &(index, scope) in blocked {
            let Some(p) = payload.filter(|p| is_nested_inside(p, scope)) else {
                out.blocked.push((index, scope));
                out.policy_blocked.push((index, scope));
                continue;
            };
            let has_mirror = rescued.get_or_insert_with(|| {
                unblocked_mirror(p, release, digest_sets, insecure, blocked)
            });
            match has_mirror {
                Err(error) => {
                    return PayloadException {
                        skipped: Some(error.clone()),
                        ..PayloadException::default()
                    };
                }
                Ok(false) => out.dropped.push(Dropped {
                    index,
                    entry: DecidedBy::list_item("blockedRegistries", index, scope),
                    payload_repository: p.to_owned(),
                }),
                Ok(true) => {
                    out.blocked.push((index, scope));
                    if scope != p {
                        out.policy_blocked.push((index, scope));
                    }
                    out.payload_allowed.push((index, p));
                }
            }
        }
        out
    }
}

/// MCO `payloadRepoHasUnblockedMirror`: in a registries.conf with the insecure scopes, every
/// blocked scope and the digest mirror sets (no ITMS), the pull sources of the release image
/// (digest-only mirrors count only for a digest reference) include one whose name no blocked
/// entry covers. Fails where that registries.conf cannot be built (a wildcard source).
fn unblocked_mirror(
    payload: &str,
    release: Option<&str>,
    digest_sets: &[MergedSet<'_>],
    insecure: &[(usize, &str)],
    blocked: &[(usize, &str)],
) -> Result<bool, RenderError> {
    let (tmp, error) = registry_entries(&[digest_sets], blocked, insecure);
    if let Some(error) = error {
        return Err(error);
    }
    let digested = release.is_none_or(|r| r.contains('@'));
    let mut best: Option<(usize, usize)> = None;
    for (i, entry) in tmp.entries.iter().enumerate() {
        if let Some(len) = ref_matching_prefix(payload, entry.match_prefix()) {
            best = super::pick(best, len, i);
        }
    }
    let mut names = Vec::new();
    if let Some((_, i)) = best
        && let Some(entry) = tmp.entries.get(i)
    {
        let prefix = entry.match_prefix();
        for mirror in tmp.mirrors.get(i).into_iter().flatten() {
            let kept = match mirror.pull_from {
                PullFromMirror::DigestOnly => digested,
                PullFromMirror::TagOnly => !digested,
            };
            if kept {
                names.extend(rewrite(payload, prefix, &mirror.location));
            }
        }
    }
    names.push(payload.to_owned());
    Ok(names
        .iter()
        .any(|name| !blocked.iter().any(|(_, b)| is_nested_inside(name, b))))
}

/// The refusals MCO may meet with a context, and what the Image itself contributes.
pub(super) struct Refusals<'l, 'a> {
    /// The release image does not parse.
    pub(super) release: Option<RenderError>,
    /// Whether MCO regenerates each file.
    pub(super) writes_registries_conf: bool,
    pub(super) writes_policy_json: bool,
    pub(super) insecure: &'l [(usize, &'a str)],
    pub(super) exception: &'l PayloadException<'a>,
    pub(super) allowed: &'l [(usize, &'a str)],
    pub(super) payload: Option<&'a str>,
    /// The mirror sets' own first error.
    pub(super) mirror_sets: Option<RenderError>,
    /// `mirrorsAdjustedForNestedScope` failed.
    pub(super) wildcard: Option<RenderError>,
}

impl Refusals<'_, '_> {
    /// `(MCO's first error, the first error the Image takes part in)`, in MCO's order: the
    /// release image; registries.conf (the insecure and blocked scopes, the mirror sets, the
    /// nested-scope copy); policy.json (both lists, the blocked and allowed scopes).
    pub(super) fn in_mco_order(self) -> (Option<RenderError>, Option<RenderError>) {
        fn invalid<'s>(list: &[(usize, &'s str)]) -> Option<(usize, &'s str)> {
            list.iter()
                .find(|(_, s)| !is_valid_registries_conf_scope(s))
                .copied()
        }
        let error = |kind, list, (i, v)| RenderError::new(kind, Some((list, i, v)));
        let exception = self.exception;
        let scopes = self.writes_registries_conf.then(|| {
            invalid(self.insecure)
                .map(|e| error(RenderErrorKind::InvalidInsecure, "insecureRegistries", e))
                .or_else(|| {
                    invalid(&exception.blocked)
                        .map(|e| error(RenderErrorKind::InvalidBlocked, "blockedRegistries", e))
                })
        });
        let wildcard = self.wildcard.filter(|_| self.writes_registries_conf);
        let policy = self.writes_policy_json.then(|| {
            let allowed = exception.payload_allowed.iter().chain(self.allowed);
            let only_payload = matches!(exception.payload_allowed.as_slice(), [(_, p)] if self.allowed.is_empty() && Some(*p) == self.payload)
                || matches!(self.allowed, [(_, a)] if exception.payload_allowed.is_empty() && Some(*a) == self.payload);
            if allowed.count() > 0 && !exception.policy_blocked.is_empty() && !only_payload {
                // Two entries covering P make `[P, P]`: the second one is the one to name.
                let second = exception.payload_allowed.get(1).and_then(|(i, _)| {
                    exception.blocked.iter().find(|(j, _)| j == i).copied()
                });
                return Some(RenderError::new(
                    RenderErrorKind::OnlyOneOf,
                    second.map(|(i, v)| ("blockedRegistries", i, v)),
                ));
            }
            invalid(&exception.policy_blocked)
                .map(|e| error(RenderErrorKind::InvalidBlocked, "blockedRegistries", e))
                .or_else(|| {
                    invalid(self.allowed)
                        .map(|e| error(RenderErrorKind::InvalidAllowed, "allowedRegistries", e))
                })
        });
        let (scopes, policy) = (scopes.flatten(), policy.flatten());
        let image = scopes.clone().or(wildcard.clone()).or(policy.clone());
        let mirror_sets = self.mirror_sets.filter(|_| self.writes_registries_conf);
        let mco = self
            .release
            .or(scopes)
            .or(mirror_sets)
            .or(wildcard)
            .or(policy);
        (mco, image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's loop as it is written (sources, then entries): the reference the entry-by-entry
    /// [`copy_to_nested_scopes`] is held to.
    fn copy_to_nested_scopes_upstream<'a>(
        sets: &[&[MergedSet<'a>]],
        scopes: &[&'a str],
        mirrors: &mut [Vec<Mirror<'a>>],
    ) -> Option<(RenderError, &'a str)> {
        let mut error = None;
        for set in sets.iter().copied().flatten() {
            let source = set.source;
            let Some(at) = scopes.iter().position(|s| *s == source) else {
                continue;
            };
            for (i, scope) in scopes.iter().enumerate() {
                let empty = mirrors.get(i).is_some_and(Vec::is_empty);
                if i == at || !empty || !is_nested_inside(scope, source) {
                    continue;
                }
                if source.starts_with("*.") {
                    error = error.or_else(|| {
                        let message = format!(
                            "internal error: mirrorsAdjustedForNestedScope for a wildcard scope {}",
                            go_quote(source)
                        );
                        let error = RenderErrorKind::WildcardNestedScope;
                        Some((RenderError::with_message(error, None, message), *scope))
                    });
                    continue;
                }
                let copies = adjusted_copies(mirrors.get(at), source, scope);
                if let Some(target) = mirrors.get_mut(i) {
                    *target = copies;
                }
            }
        }
        error
    }

    /// Entry by entry gives what upstream's loop gives: the same copies, from the same sources,
    /// and the same first wildcard error, on every combination of a few nested sources and
    /// scopes (digest and tag sets, wildcards, parents, siblings).
    #[test]
    fn nested_copies_are_upstream_s() {
        let vocabulary = [
            "a.io", "a.io/x", "a.io/x/y", "*.io", "*.a.io", "b.a.io", "b.a.io/z", "c.io",
        ];
        let entries = [
            "a.io/x/y/w",
            "c.b.a.io",
            "a.io/q",
            "b.a.io/z/v",
            "a.io/x",
            "d.io",
        ];
        for mask in 0u32..(1 << vocabulary.len()) {
            for tag_mask in [0u32, 0b1010_0101] {
                let rule = |(k, source): (usize, &&str)| MirrorRule {
                    source: (*source).to_owned(),
                    mirrors: vec![format!("m{k}.example.net/r")],
                    source_policy: None,
                };
                let chosen = |m: u32| {
                    vocabulary
                        .iter()
                        .enumerate()
                        .filter(move |(k, _)| mask & m & (1 << k) != 0)
                };
                let set = |name: &str, rules: Vec<MirrorRule>| crate::context::MirrorSet {
                    name: name.into(),
                    rules,
                };
                let context = ClusterContext {
                    digest_mirror_sets: vec![set("d", chosen(!0).map(rule).collect())],
                    tag_mirror_sets: vec![set("t", chosen(tag_mask).map(rule).collect())],
                    ..ClusterContext::default()
                };
                let digest = merged(&context, true);
                let tag = merged(&context, false);
                // The sets prepared once per context are the sets merged now.
                let texts = |sets: &[MergedSet<'_>]| format!("{sets:?}");
                assert_eq!(texts(&digest), texts(&merge_now(&context, true)));
                assert_eq!(texts(&tag), texts(&merge_now(&context, false)));
                let sets: [&[MergedSet<'_>]; 2] = [&digest, &tag];
                let mut scopes: Vec<&str> = Vec::new();
                let mut mirrors: Vec<Vec<Mirror<'_>>> = Vec::new();
                for set in sets.iter().copied().flatten() {
                    let at = scopes
                        .iter()
                        .position(|s| *s == set.source)
                        .unwrap_or_else(|| {
                            scopes.push(set.source);
                            mirrors.push(Vec::new());
                            scopes.len() - 1
                        });
                    mirrors[at].extend(set.mirrors.iter().map(|(location, item)| Mirror {
                        location: Cow::Borrowed(*location),
                        pull_from: set.pull_from,
                        insecure_by: None,
                        listed_by: *item,
                        copied_from: None,
                    }));
                }
                for entry in entries {
                    if !scopes.contains(&entry) {
                        scopes.push(entry);
                        mirrors.push(Vec::new());
                    }
                }
                let mut ours = mirrors.clone();
                let mut theirs = mirrors;
                let error = copy_to_nested_scopes(&sets, &scopes, &mut ours);
                let expected = copy_to_nested_scopes_upstream(&sets, &scopes, &mut theirs);
                let shape = |m: &[Vec<Mirror<'_>>]| -> Vec<Vec<(String, Option<String>)>> {
                    m.iter()
                        .map(|ms| {
                            ms.iter()
                                .map(|m| (m.location.to_string(), m.copied_from.map(str::to_owned)))
                                .collect()
                        })
                        .collect()
                };
                let what = format!("sources {mask:#b}, tags {tag_mask:#b}: {scopes:?}");
                assert_eq!(shape(&ours), shape(&theirs), "{what}");
                let said = |e: Option<(RenderError, &str)>| {
                    e.map(|(e, s)| (e.message().to_owned(), s.to_owned()))
                };
                assert_eq!(said(error), said(expected), "{what}");
            }
        }
    }

    #[test]
    fn topo_sort_is_runtime_utils_order() {
        // (B, C) and (A, B): one order (A, B, C).
        assert_eq!(
            topo_sorted(&[("b", "c"), ("c", "s"), ("a", "b"), ("b", "s")]),
            ["a", "b", "c", "s"]
        );
        // Conflicting orders: a cycle, broken by the first node in lexical order, which may be
        // the source itself (then kept among the mirrors, as upstream does).
        assert_eq!(
            topo_sorted(&[("y", "x"), ("x", "s"), ("x", "y"), ("y", "s")]),
            ["s", "x", "y"]
        );
        assert_eq!(
            topo_sorted(&[("y", "x"), ("x", "z"), ("x", "y"), ("y", "z")]),
            ["x", "y", "z"]
        );
        // Independent lists: lexical among the free nodes, FIFO after.
        assert_eq!(
            topo_sorted(&[("m2", "s"), ("m1", "s"), ("z", "a")]),
            ["m1", "m2", "z", "s", "a"]
        );
        assert!(topo_sorted(&[]).is_empty());
    }

    #[test]
    fn patterns_are_the_api_s() {
        for (s, source, mirror) in [
            ("quay.io", true, true),
            ("quay.io:5000/ns/repo", true, true),
            ("*.example.com", true, false),
            ("*.example.com/ns", false, false),
            ("quay.io/NS", false, false),
            ("quay.io/ns:tag", false, false),
            ("", false, false),
            ("https://quay.io", false, false),
            ("a_b.io", false, false),
        ] {
            assert_eq!(SOURCE.is_match(s), source, "source {s:?}");
            assert_eq!(MIRROR.is_match(s), mirror, "mirror {s:?}");
        }
    }
}
