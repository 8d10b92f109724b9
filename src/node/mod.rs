//! The one model of what a node does with the Image object: the files the machine-config
//! operator (MCO) renders from it, and what CRI-O and openshift-apiserver then decide.
//!
//! ```text
//! Image + Settings (release payload repository P, internal registry) [+ ClusterContext]
//!   -> Node::new / Node::with_context: MCO getValidBlockedAndAllowedRegistries,
//!      EditRegistriesConfig, updatePolicyJSON
//!   -> registries_conf() [[registry]] entries (and [[registry.mirror]] tables),
//!      search_registries(), policy_json(), dropped(), refusal()
//!   -> pull(ref) (with its sources in a context), import(ref), short_name(ref): each answer names
//!      the entry that decided
//! ```
//!
//! The normative description is `MIRRORS.md` §1-§5 and §7 (the upstream sources are cited there
//! and on each item below). Without a cluster context ([`Node::new`]) there are no mirror sets:
//! no `[[registry.mirror]]` tables, and the release-payload exception drops every blocked entry
//! that covers P (no digest mirror can rescue it). With one ([`Node::with_context`], the
//! `mirrors` module), the mirror sets are checked, merged and rendered as MCO does, the release
//! image gives P, a blocked entry covering P is kept when P has an unblocked digest mirror, and
//! [`Pull::sources`] lists every endpoint CRI-O considers.
//!
//! - **registries.conf** (runtime-utils `EditRegistriesConfig`): one `[[registry]]` per distinct
//!   blocked then insecure scope, `prefix` for `*.` scopes and `location` otherwise; every entry
//!   nested inside an insecure (blocked) scope is insecure (blocked) too. containers/image picks
//!   the entry with the longest prefix matching the repository name (`refMatchingPrefix`: the
//!   prefix followed by the end, `:`, `/` or `@`), so `example.com` blocks `example.com:5000/x`.
//! - **policy.json** (MCO `updatePolicyJSON`): allowed scopes `insecureAcceptAnything` with default
//!   `reject`; blocked scopes `reject` with default `insecureAcceptAnything` (blocked written last,
//!   so it wins). Looked up from the most specific scope of the reference as written.
//! - **The release-payload exception** (MCO `getValidBlockedAndAllowedRegistries`): a blocked entry
//!   `B` with `ScopeIsNestedInsideScope(P, B)` is dropped from both files and logged.
//! - **Refusals** (`MIRRORS.md` §3): the rows an Image alone can cause; MCO then writes nothing and
//!   nodes keep their previous files.

mod mirrors;
mod render;
#[cfg(test)]
mod tests;

use std::cell::OnceCell;
use std::fmt;

use serde::Serialize;

use crate::context::{ClusterContext, MirrorKind};
use crate::field::go_quote;
use crate::grammar::hashed::{FastMap, Lengths, fast_map, fast_set};
use crate::grammar::host::is_host_port;
use crate::grammar::import::{
    Admitter, EntryError, ImportAllowList, ImportEntry, Transport, registry_host_port,
};
use crate::grammar::reference::{Reference, ReferenceError};
use crate::grammar::scope::{
    ScopeIndex, is_nested_inside, is_valid_registries_conf_scope, ref_matching_prefix,
};
use crate::image::{Image, RegistryLocation, RegistrySources, StrList};

use mirrors::{PayloadException, Refusals};
pub use mirrors::{Prepared, PullFromMirror};
pub use render::{REGISTRIES_CONF_TEMPLATE, RenderedFile};

/// The release payload repository when no release image is given: the repository of
/// `quay.io/openshift-release-dev/ocp-release:<version>`.
pub const DEFAULT_PAYLOAD_REPOSITORY: &str = "quay.io/openshift-release-dev/ocp-release";

/// `unqualified-search-registries` of MCO's registries.conf template, used when
/// `containerRuntimeSearchRegistries` is absent.
pub const TEMPLATE_SEARCH_REGISTRIES: [&str; 2] = ["registry.access.redhat.com", "docker.io"];

/// Where MCO writes each file on a node.
pub const REGISTRIES_CONF_PATH: &str = "/etc/containers/registries.conf";
/// The policy file.
pub const POLICY_JSON_PATH: &str = "/etc/containers/policy.json";
/// The search-registries drop-in (MCO `searchRegDropInFilePath`).
pub const SEARCH_DROP_IN_PATH: &str =
    "/etc/containers/registries.conf.d/01-image-searchRegistries.conf";

const REGISTRY_SOURCES: &str = "spec.registrySources";
const IMPORT_LIST: &str = "spec.allowedRegistriesForImport";
const SEARCH_LIST: &str = "spec.registrySources.containerRuntimeSearchRegistries";

/// What the node model needs besides the Image: the settings the engine runs with (P, the
/// release payload repository, and the internal registry are the fields it reads).
pub use crate::policy::Settings;

/// MCO `getPayloadRepo`: `reference.ParseNamed(releaseImage).Name()`. The reference must be
/// fully qualified and canonical (`quay.io/openshift-release-dev/ocp-release@sha256:...` or
/// `...:4.18.1-x86_64`); `ocp-release:4.18` or `docker.io/nginx` are not, and MCO refuses to
/// render with `error parsing reference of release image`.
pub fn payload_repository(release_image: &str) -> Result<String, RenderError> {
    let refuse = || RenderError::new(RenderErrorKind::ReleaseImage, None);
    let reference = Reference::parse(release_image).map_err(|_| refuse())?;
    // `ParseNamed` is `ParseNormalizedNamed` plus "the input is the canonical string".
    let mut canonical = reference.name();
    if !reference.has_default_tag()
        && let Some(tag) = reference.tag()
    {
        canonical.push(':');
        canonical.push_str(tag);
    }
    if let Some(digest) = reference.digest() {
        canonical.push('@');
        canonical.push_str(digest);
    }
    if reference.is_short_name() || canonical != release_image {
        return Err(refuse());
    }
    Ok(reference.name())
}

/// [`payload_repository`] as a slice of the release image: the canonical reference starts with
/// the repository name.
fn payload_repository_of(release_image: &str) -> Result<&str, RenderError> {
    let name = payload_repository(release_image)?;
    release_image
        .get(..name.len())
        .filter(|p| *p == name)
        .ok_or_else(|| RenderError::new(RenderErrorKind::ReleaseImage, None))
}

/// Which entry of the Image decided: a field path and its value; no value means "not listed"
/// (nothing in the list matched).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecidedBy {
    /// The field path, e.g. `spec.registrySources.blockedRegistries[2]`.
    pub field: String,
    /// The entry, e.g. `*.example.com`; `None` when nothing in the list matched.
    pub value: Option<String>,
}

impl DecidedBy {
    /// An entry of a list.
    pub fn entry(field: String, value: &str) -> Self {
        DecidedBy {
            field,
            value: Some(value.to_owned()),
        }
    }

    /// "Nothing in this list matched".
    pub fn not_listed(field: &str) -> Self {
        DecidedBy {
            field: field.to_owned(),
            value: None,
        }
    }

    fn list_item(list: &str, index: usize, value: &str) -> Self {
        // Built by hand: `format!` costs more than the rest of a small config's model.
        let index = index.to_string();
        let mut field =
            String::with_capacity(REGISTRY_SOURCES.len() + list.len() + index.len() + 3);
        field.push_str(REGISTRY_SOURCES);
        field.push('.');
        field.push_str(list);
        field.push('[');
        field.push_str(&index);
        field.push(']');
        DecidedBy::entry(field, value)
    }
}

impl fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}: {value}", self.field),
            None => write!(f, "{} (not listed)", self.field),
        }
    }
}

/// Which condition made MCO refuse to render (`MIRRORS.md` §3, the rows an Image alone can
/// cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenderErrorKind {
    /// The release image is not a canonical reference (MCO `errParsingReference`).
    ReleaseImage,
    /// An `insecureRegistries` entry fails `IsValidRegistriesConfScope`.
    InvalidInsecure,
    /// A kept `blockedRegistries` entry fails `IsValidRegistriesConfScope`.
    InvalidBlocked,
    /// An `allowedRegistries` entry fails `IsValidRegistriesConfScope`.
    InvalidAllowed,
    /// Both lists are non-empty after the payload exception (MCO `updatePolicyJSON`), also when
    /// two blocked entries cover the payload repository and it has a digest mirror (`[P, P]`).
    OnlyOneOf,
    /// A mirror-set `source` fails MCO's `sourceRegex`.
    InvalidSource,
    /// A mirror fails MCO's `mirrorRegex`.
    InvalidMirror,
    /// One exact source has two `mirrorSourcePolicy` values across the mirror sets.
    ConflictingSourcePolicy,
    /// `NeverContactSource` on an item that lists its source among its mirrors.
    SourceAmongMirrors,
    /// A blocked or insecure scope with no mirrors of its own is nested in a wildcard mirror
    /// source (runtime-utils `mirrorsAdjustedForNestedScope`).
    WildcardNestedScope,
}

impl RenderErrorKind {
    /// Whether the mirror sets alone cause it, whatever the Image says.
    pub fn is_mirror_sets_only(self) -> bool {
        matches!(
            self,
            RenderErrorKind::InvalidSource
                | RenderErrorKind::InvalidMirror
                | RenderErrorKind::ConflictingSourcePolicy
                | RenderErrorKind::SourceAmongMirrors
        )
    }
}

/// MCO refuses to render: it writes nothing and nodes keep their previous files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    kind: RenderErrorKind,
    /// The entry at fault, when one is.
    field: Option<DecidedBy>,
    message: String,
}

impl RenderError {
    fn new(kind: RenderErrorKind, entry: Option<(&str, usize, &str)>) -> Self {
        let message = match (kind, entry) {
            (RenderErrorKind::ReleaseImage, _) => "error parsing reference of release image".into(),
            (RenderErrorKind::OnlyOneOf, _) => {
                "invalid images config: only one of AllowedRegistries or BlockedRegistries may be specified".into()
            }
            (RenderErrorKind::InvalidInsecure, Some((_, _, v))) => {
                format!("invalid entry for insecure registries {}", go_quote(v))
            }
            (RenderErrorKind::InvalidBlocked, Some((_, _, v))) => {
                format!("invalid entry for blocked registries {}", go_quote(v))
            }
            (RenderErrorKind::InvalidAllowed, Some((_, _, v))) => {
                format!("invalid entry for allowed registries {}", go_quote(v))
            }
            (_, _) => String::new(),
        };
        RenderError {
            kind,
            field: entry.map(|(list, i, v)| DecidedBy::list_item(list, i, v)),
            message,
        }
    }

    fn with_message(kind: RenderErrorKind, field: Option<DecidedBy>, message: String) -> Self {
        RenderError {
            kind,
            field,
            message,
        }
    }

    /// A refusal the Image alone would not meet: the cluster context brings it (the mirror
    /// sets' own errors, the release image, a scope nested in a wildcard mirror source, a second
    /// blocked entry covering a mirrored payload repository).
    pub fn needs_context(&self) -> bool {
        match self.kind {
            // With an entry: the second blocked entry covering a mirrored payload repository.
            RenderErrorKind::OnlyOneOf => self.field.is_some(),
            RenderErrorKind::InvalidInsecure
            | RenderErrorKind::InvalidBlocked
            | RenderErrorKind::InvalidAllowed => false,
            _ => true,
        }
    }

    /// A refusal the context brings to an entry of the Image (P7): one that needs the context
    /// and is neither the mirror sets' own error nor the release image's, which no change of
    /// the Image cures.
    pub fn is_image_fault_in_context(&self) -> bool {
        self.needs_context()
            && !self.kind.is_mirror_sets_only()
            && self.kind != RenderErrorKind::ReleaseImage
    }

    /// What went wrong.
    pub fn kind(&self) -> RenderErrorKind {
        self.kind
    }

    /// The Image entry at fault, if one is.
    pub fn field(&self) -> Option<&DecidedBy> {
        self.field.as_ref()
    }

    /// MCO's message, verbatim (`MIRRORS.md` §3).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error as the machine-config controller logs it (`Error syncing image config
    /// openshift-config: <this>`): wrapped by `registriesConfigIgnition` and `syncImageConfig`
    /// (MCO-C), except the release-image error, which sync returns as it is.
    pub fn logged(&self) -> String {
        // MCO validates insecure and blocked scopes before editing registries.conf (which it
        // regenerates whenever a blocked entry is kept), the rest before writing policy.json.
        let file = match self.kind {
            RenderErrorKind::ReleaseImage => return self.message.clone(),
            RenderErrorKind::OnlyOneOf | RenderErrorKind::InvalidAllowed => "policy json",
            _ => "registries config",
        };
        format!(
            "could not Create/Update MachineConfig: could not update {file} with new changes: {}",
            self.message
        )
    }
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RenderError {}

/// One `[[registry]]` table of registries.conf, as runtime-utils `EditRegistriesConfig` writes
/// it (no mirrors while mirror sets are not an input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// `prefix`: the scope for `*.` scopes, else empty.
    pub prefix: String,
    /// `location`: the scope for other scopes, else empty.
    pub location: String,
    /// `insecure = true`.
    pub insecure: bool,
    /// `blocked = true`.
    pub blocked: bool,
    /// The blocked entry that set `blocked`: the entry's own scope, else the first blocked scope
    /// it is nested inside.
    pub blocked_by: Option<DecidedBy>,
    /// The same for `insecure`.
    pub insecure_by: Option<DecidedBy>,
    /// The `[[registry.mirror]]` tables, in order (none without a cluster context).
    pub mirrors: Vec<RegistryMirror>,
}

/// One `[[registry.mirror]]` table of a `[[registry]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryMirror {
    /// `location`.
    pub location: String,
    /// `pull-from-mirror`.
    pub pull_from_mirror: PullFromMirror,
    /// `insecure = true`.
    pub insecure: bool,
    /// The insecure entry whose scope the location is nested in.
    pub insecure_by: Option<DecidedBy>,
    /// The first mirror-set item that lists the mirror.
    pub listed_by: DecidedBy,
    /// The mirror source it was copied from (location extended for this nested scope).
    pub copied_from: Option<String>,
}

impl RegistryEntry {
    /// The scope MCO keys the entry by: `prefix` if set, else `location`.
    pub fn scope(&self) -> &str {
        if self.prefix.is_empty() {
            &self.location
        } else {
            &self.prefix
        }
    }

    /// The prefix containers/image matches on: the scope with trailing slashes trimmed.
    pub fn match_prefix(&self) -> &str {
        self.scope().trim_end_matches('/')
    }
}

/// A policy.json requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement {
    /// `{"type": "insecureAcceptAnything"}`.
    InsecureAcceptAnything,
    /// `{"type": "reject"}`.
    Reject,
}

impl Requirement {
    /// The `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::InsecureAcceptAnything => "insecureAcceptAnything",
            Requirement::Reject => "reject",
        }
    }

    /// Whether it accepts an image.
    pub fn accepts(self) -> bool {
        self == Requirement::InsecureAcceptAnything
    }
}

/// One scope of `transports.docker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyScope {
    /// The scope, as written in the Image.
    pub scope: String,
    /// Its requirement (`reject` for blocked, `insecureAcceptAnything` for allowed).
    pub requirement: Requirement,
    /// The Image entry that put it there (the blocked one when a scope is in both lists).
    pub decided_by: DecidedBy,
}

impl PolicyScope {
    /// Whether MCO also writes it under `transports.atomic` (fewer than 3 `/`).
    pub fn in_atomic(&self) -> bool {
        self.scope.matches('/').count() < 3
    }
}

/// The policy.json MCO writes: the default requirement and the `docker` transport scopes (sorted
/// by scope, as Go's encoder sorts map keys). `atomic` holds the same scopes with fewer than 3
/// `/`; `docker-daemon` keeps the template's `"": insecureAcceptAnything`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyJson {
    /// `default`.
    pub default: Requirement,
    /// `transports.docker`, sorted by scope.
    pub docker: Vec<PolicyScope>,
}

impl PolicyJson {
    /// The scopes of `transports.atomic`.
    pub fn atomic(&self) -> impl Iterator<Item = &PolicyScope> {
        self.docker.iter().filter(|s| s.in_atomic())
    }
}

/// A blocked entry MCO drops because it covers the release payload repository P.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// `i` of `spec.registrySources.blockedRegistries[i]`.
    pub index: usize,
    /// The entry (`spec.registrySources.blockedRegistries[i]` and its value).
    pub entry: DecidedBy,
    /// P.
    pub payload_repository: String,
}

/// How policy.json decided a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyDecision {
    /// MCO leaves the template: `default: insecureAcceptAnything`, no scopes.
    Template,
    /// The scope at this index of [`PolicyJson::docker`] matched.
    Scope(usize),
    /// No scope matched: the default applies.
    Default(Requirement),
}

/// A pull of one fully qualified reference on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    /// The repository name looked up (`docker.io/library/nginx`).
    pub name: String,
    /// The policy identity (`name:tag`, or `name@digest`).
    pub identity: String,
    /// The registries.conf entry that applies (index into [`Node::registries_conf`]): the
    /// longest prefix matching `name`; `None`: the implicit entry, not blocked, not insecure.
    pub entry: Option<usize>,
    /// Whether registries.conf blocks it: no source is left to try (without a cluster
    /// context: the entry is `blocked = true`; with one, a blocked source may still be pulled
    /// through a mirror).
    pub blocked: bool,
    /// Whether TLS verification is skipped (the entry is `insecure = true`).
    pub insecure: bool,
    /// How policy.json decided (looked at only when registries.conf does not block).
    pub policy: PolicyDecision,
    /// Whether CRI-O may pull it.
    pub allowed: bool,
    /// The Image entry that decided: the blocked entry, the policy scope's entry, or
    /// `allowedRegistries (not listed)` for a default reject; `None` when nothing restricts.
    pub decided_by: Option<DecidedBy>,
    /// The insecure entry that applies.
    pub insecure_by: Option<DecidedBy>,
    /// Dropped entries (indices into [`Node::dropped`]) that would have blocked it.
    pub rescued_by_exception: Vec<usize>,
    /// With a cluster context: every endpoint of the entry in the order CRI-O considers them
    /// (each mirror, then the source) and what becomes of each (`MIRRORS.md` §4.3, §4.4, §7);
    /// empty without a context.
    pub sources: Vec<PullSource>,
}

/// One endpoint of a pull with a cluster context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    /// The physical reference tried there (containers/image `rewriteReference`).
    pub reference: String,
    /// The mirror's index in the entry's [`RegistryEntry::mirrors`]; `None`: the source.
    pub mirror: Option<usize>,
    /// What CRI-O does with it.
    pub decision: SourceDecision,
    /// Whether TLS verification is skipped there (the endpoint's own `insecure`).
    pub insecure: bool,
    /// The insecure entry that set it.
    pub insecure_by: Option<DecidedBy>,
}

/// What CRI-O does with one endpoint of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceDecision {
    /// Tried (if the image exists there, the pull is served from it).
    Try,
    /// Skipped: a `digest-only` mirror, and the pull is by tag.
    DigestOnlyMirror,
    /// Skipped: a `tag-only` mirror, and the pull is by digest.
    TagOnlyMirror,
    /// Fails: the longest-prefix entry of the physical name is `blocked`
    /// (`registry <prefix> is blocked in ...`).
    Blocked {
        /// The blocked entry's prefix, as containers/image names it.
        prefix: String,
        /// What set `blocked`: a blocked entry, or a `NeverContactSource` item.
        by: Option<DecidedBy>,
    },
}

impl PullSource {
    /// Whether CRI-O tries this endpoint.
    pub fn tried(&self) -> bool {
        self.decision == SourceDecision::Try
    }
}

/// One fully qualified name CRI-O tries for a short name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The search registry.
    pub registry: String,
    /// The candidate, or why the registry makes no valid reference.
    pub reference: Result<Reference, ReferenceError>,
    /// Its pull, when the reference is valid.
    pub pull: Option<Pull>,
}

/// How CRI-O resolves a short name (short-name mode `disabled`: every candidate, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortName {
    /// The search list's field, or `None` for the template default.
    pub search_field: Option<String>,
    /// The search registries, in order.
    pub registries: Vec<String>,
    /// The candidates, in the order CRI-O tries them.
    pub candidates: Vec<Candidate>,
}

impl ShortName {
    /// The candidate CRI-O pulls: the first allowed one.
    pub fn first_allowed(&self) -> Option<&Candidate> {
        self.candidates
            .iter()
            .find(|c| c.pull.as_ref().is_some_and(|p| p.allowed))
    }
}

/// What admitted or refused an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportBasis {
    /// `allowedRegistriesForImport` is empty: everything is allowed.
    Unrestricted,
    /// An entry has two or more colons: openshift-apiserver cannot build its whitelist.
    Broken,
    /// The internal registry, always allowed.
    Internal,
    /// An entry's host and port globs match.
    Entry,
    /// Nothing matches.
    NotListed,
}

/// An import into an ImageStream (a secure import) under openshift-apiserver's whitelister.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Whether it is admitted.
    pub allowed: bool,
    /// The `host:port` checked.
    pub checked: String,
    /// Why.
    pub basis: ImportBasis,
    /// The entry that decided.
    pub decided_by: Option<DecidedBy>,
    /// The API server's error text for a refusal.
    pub error: Option<String>,
    /// For a refused secure import: the entry that would admit it with
    /// `importPolicy.insecure: true`.
    pub insecure_alternative: Option<DecidedBy>,
}

/// `allowedRegistriesForImport` as openshift-apiserver builds it.
#[derive(Debug)]
enum ImportPolicy<'a> {
    Unrestricted,
    Broken {
        index: usize,
        domain_name: &'a str,
    },
    Listed {
        list: ImportAllowList<'a>,
        /// `(index, domainName, insecure)`.
        entries: Vec<(usize, &'a str, bool)>,
        /// The internal registry and whether it comes from the status.
        internal: (&'a str, bool),
    },
}

/// An item of a `registrySources` list as the model keeps it: which list, where, and the value.
/// It becomes a [`DecidedBy`] (a field path `String`) only when an answer names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Source<'a> {
    /// The list's field under `spec.registrySources`, e.g. `blockedRegistries`.
    list: &'static str,
    index: usize,
    value: &'a str,
}

/// The `list` of a [`Source`] for P in the allowed scopes of policy.json: MCO's payload
/// exception put it there for the blocked entry at `index`; `value` is P.
const PAYLOAD_EXCEPTION: &str = "release payload exception";

impl Source<'_> {
    fn decided_by(self) -> DecidedBy {
        if self.list == PAYLOAD_EXCEPTION {
            return DecidedBy::entry(
                format!(
                    "{PAYLOAD_EXCEPTION} of {REGISTRY_SOURCES}.blockedRegistries[{}]",
                    self.index
                ),
                self.value,
            );
        }
        DecidedBy::list_item(self.list, self.index, self.value)
    }
}

/// How `FindRegistry` matches an entry: the key it is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrefixKey<'a> {
    /// A `location` entry: its match prefix, which the name itself or the name cut before a
    /// `:`, `/` or `@` must equal.
    Plain(&'a str),
    /// A `*.d` entry whose domain `.d` holds no `:`, `/` or `@`: `.d` must be a `.`-suffix of
    /// the name's host.
    Wildcard(&'a str),
    /// A `*.` entry whose domain holds a `:`, `/` or `@` (which MCO refuses to render, but
    /// containers/image would still match): matched one by one; normally none.
    Odd,
}

/// One `[[registry]]` table as the model keeps it ([`RegistryEntry`] is its public form).
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    /// The scope as written in the Image.
    scope: &'a str,
    key: PrefixKey<'a>,
    blocked_by: Option<Source<'a>>,
    insecure_by: Option<Source<'a>>,
    /// The mirror-set item whose `NeverContactSource` blocks the entry (a cluster context only).
    never_contact: Option<mirrors::MirrorItem<'a>>,
}

impl<'a> Entry<'a> {
    fn new(
        scope: &'a str,
        blocked_by: Option<Source<'a>>,
        insecure_by: Option<Source<'a>>,
    ) -> Self {
        // containers/image trims trailing slashes when it loads the file.
        let match_prefix = scope.trim_end_matches('/');
        let key = if !scope.starts_with("*.") {
            PrefixKey::Plain(match_prefix)
        } else {
            match match_prefix.strip_prefix('*') {
                Some(domain) if !domain.contains([':', '/', '@']) => PrefixKey::Wildcard(domain),
                _ => PrefixKey::Odd,
            }
        };
        Entry {
            scope,
            key,
            blocked_by,
            insecure_by,
            never_contact: None,
        }
    }

    /// `blocked = true`: by a blocked scope, or by `NeverContactSource`.
    fn blocked(&self) -> bool {
        self.blocked_by.is_some() || self.never_contact.is_some()
    }

    /// What set `blocked`: the Image's blocked entry first.
    fn blocked_by(&self) -> Option<DecidedBy> {
        match (self.blocked_by, self.never_contact) {
            (Some(source), _) => Some(source.decided_by()),
            (None, Some(item)) => Some(item.decided_by("mirrorSourcePolicy", "NeverContactSource")),
            (None, None) => None,
        }
    }

    fn wildcard(&self) -> bool {
        self.scope.starts_with("*.")
    }

    fn match_prefix(&self) -> &'a str {
        self.scope.trim_end_matches('/')
    }

    fn public(&self, mirrors: &[mirrors::Mirror<'_>]) -> RegistryEntry {
        let (prefix, location) = if self.wildcard() {
            (self.scope.to_owned(), String::new())
        } else {
            (String::new(), self.scope.to_owned())
        };
        RegistryEntry {
            prefix,
            location,
            insecure: self.insecure_by.is_some(),
            blocked: self.blocked(),
            blocked_by: self.blocked_by(),
            insecure_by: self.insecure_by.map(Source::decided_by),
            mirrors: mirrors
                .iter()
                .map(|m| RegistryMirror {
                    location: m.location.clone().into_owned(),
                    pull_from_mirror: m.pull_from,
                    insecure: m.insecure_by.is_some(),
                    insecure_by: m.insecure_by.map(Source::decided_by),
                    listed_by: m.listed_by.decided_by("", m.location.as_ref()),
                    copied_from: m.copied_from.map(str::to_owned),
                })
                .collect(),
        }
    }
}

/// The most `[[registry.mirror]]` tables (the mirror sets' own, and the copies that each
/// blocked or insecure scope inside a mirrored source gets) the model builds for one review: a
/// few mirror sets with many mirrors and an Image with many nested scopes would otherwise take
/// hundreds of megabytes. Past it, the node is modelled without the context, and says so.
pub const MAX_MIRROR_TABLES: usize = 100_000;

/// Lists of at most this many entries are searched one by one; longer ones are hashed.
const FEW: usize = 16;

/// The registries.conf entries by [`PrefixKey`], for `FindRegistry`: a lookup of a key finds
/// the first entry with that key, by a comparison with each entry when there are few, from a map
/// when there are many (so a query costs the labels of the name, not the number of entries).
#[derive(Debug)]
enum Prefixes<'a> {
    Few,
    Many {
        plain: FastMap<&'a str, usize>,
        wildcards: FastMap<&'a str, usize>,
        /// The lengths of the keys of `plain` and `wildcards`: a part of a name of another
        /// length is not looked up (hashing every part of a long name costs more than the rest
        /// of the lookup).
        plain_lengths: Lengths,
        wildcard_lengths: Lengths,
        odd: Vec<usize>,
    },
}

impl<'a> Prefixes<'a> {
    fn new(entries: &[Entry<'a>]) -> Self {
        if entries.len() <= FEW {
            Prefixes::Few
        } else {
            Prefixes::hashed(entries)
        }
    }

    fn hashed(entries: &[Entry<'a>]) -> Self {
        let wildcard = entries
            .iter()
            .filter(|e| matches!(e.key, PrefixKey::Wildcard(_)))
            .count();
        let (mut plain, mut wildcards, mut odd) = (
            fast_map(entries.len() - wildcard),
            fast_map(wildcard),
            Vec::new(),
        );
        let (mut plain_lengths, mut wildcard_lengths) = (Lengths::default(), Lengths::default());
        for (i, entry) in entries.iter().enumerate() {
            match entry.key {
                PrefixKey::Plain(prefix) => {
                    plain.entry(prefix).or_insert(i);
                    plain_lengths.insert(prefix.len());
                }
                PrefixKey::Wildcard(domain) => {
                    wildcards.entry(domain).or_insert(i);
                    wildcard_lengths.insert(domain.len());
                }
                PrefixKey::Odd => odd.push(i),
            }
        }
        Prefixes::Many {
            plain,
            wildcards,
            plain_lengths,
            wildcard_lengths,
            odd,
        }
    }
}

/// One scope of `transports.docker` as the model keeps it ([`PolicyScope`] is its public form).
#[derive(Debug, Clone, Copy)]
struct PolicyItem<'a> {
    scope: &'a str,
    requirement: Requirement,
    source: Source<'a>,
}

impl PolicyItem<'_> {
    fn public(&self) -> PolicyScope {
        PolicyScope {
            scope: self.scope.to_owned(),
            requirement: self.requirement,
            decided_by: self.source.decided_by(),
        }
    }
}

/// What registries.conf and policy.json decide for a pull, without naming the entries that
/// decided ([`Node::decide`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether registries.conf blocks it: no source is left to try (as [`Pull::blocked`]).
    pub blocked: bool,
    /// Whether CRI-O may pull it.
    pub allowed: bool,
}

/// The one matcher's answer ([`Node::matching`]), before any entry is named.
struct Matched<'n, 'a> {
    entry_index: Option<usize>,
    entry: Option<&'n Entry<'a>>,
    blocked: bool,
    policy: PolicyDecision,
    allowed: bool,
}

/// The node model: what MCO renders from one Image, and what a node and the API server decide.
///
/// [`Node::new`] keeps what the lookups need, borrowed from the Image; the public forms of the
/// files ([`Node::registries_conf`], [`Node::policy_json`]), the import whitelist and the notes
/// are built on first use (the admission rules mostly ask [`Node::decide`], which needs none of
/// them).
#[derive(Debug)]
pub struct Node<'a> {
    image: &'a Image,
    settings: &'a Settings,
    payload_repository: Option<&'a str>,
    /// `(index, value)` of the lists as MCO reads them (blocked after the payload exception).
    insecure: Vec<(usize, &'a str)>,
    blocked: Vec<(usize, &'a str)>,
    allowed: Vec<(usize, &'a str)>,
    /// The `[[registry]]` tables, in the order MCO writes them.
    entries: Vec<Entry<'a>>,
    prefixes: Prefixes<'a>,
    writes_registries_conf: bool,
    search: Option<Vec<&'a str>>,
    policy_default: Requirement,
    /// `transports.docker`, sorted by scope.
    policy_scopes: Vec<PolicyItem<'a>>,
    writes_policy_json: bool,
    /// The scopes of `policy_scopes`, in its order.
    policy_index: ScopeIndex<'a>,
    dropped: Vec<Dropped>,
    refusal: Option<RenderError>,
    /// The cluster context the node was rendered with.
    context: Option<&'a ClusterContext>,
    /// The `[[registry.mirror]]` tables of each entry (empty without a context).
    mirrors: Vec<Vec<mirrors::Mirror<'a>>>,
    /// With a context: the first refusal the Image takes part in, past those of the mirror sets
    /// alone and of the release image.
    image_refusal: Option<RenderError>,
    /// With a context: MCO's payload check failed, and it rendered without any blocked or
    /// allowed entry (logged only).
    skipped: Option<RenderError>,
    /// The cluster context was too large to model with this Image (the bound on the mirror
    /// tables it would take): the node is the Image's alone.
    oversized: Option<usize>,
    /// The public form of `entries`.
    registries_conf: OnceCell<Vec<RegistryEntry>>,
    /// The public form of `policy_default` and `policy_scopes`.
    policy: OnceCell<PolicyJson>,
    import: OnceCell<ImportPolicy<'a>>,
    notes: OnceCell<Vec<String>>,
}

/// What MCO settled for one render, before the lookups are indexed ([`Node::assemble`]).
struct Parts<'a> {
    payload: Option<&'a str>,
    writes_registries_conf: bool,
    writes_policy_json: bool,
    insecure: Vec<(usize, &'a str)>,
    /// `registriesBlocked`.
    blocked: Vec<(usize, &'a str)>,
    /// `allowedRegistries` as MCO reads them (without P).
    allowed: Vec<(usize, &'a str)>,
    entries: Vec<Entry<'a>>,
    mirrors: Vec<Vec<mirrors::Mirror<'a>>>,
    /// The default and the scopes of policy.json.
    policy: (Requirement, Vec<PolicyItem<'a>>),
    dropped: Vec<Dropped>,
    refusal: Option<RenderError>,
    image_refusal: Option<RenderError>,
    skipped: Option<RenderError>,
    context: Option<&'a ClusterContext>,
}

/// `(index, value)` of the string items of a list.
fn items(list: &Option<StrList>) -> impl Iterator<Item = (usize, &str)> {
    list.iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, item)| item.as_deref().map(|s| (i, s)))
}

fn list_field(list: &str, i: usize) -> String {
    format!("{REGISTRY_SOURCES}.{list}[{i}]")
}

impl<'a> Node<'a> {
    /// Renders the node's view of `image` (MCO `syncImageConfig` with no mirror sets).
    pub fn new(image: &'a Image, settings: &'a Settings) -> Self {
        Self::with_context(image, settings, None)
    }

    /// Renders the node's view of `image` in a cluster context: its mirror sets and release
    /// image (which overrides the settings' payload repository). `None` is [`Node::new`].
    pub fn with_context(
        image: &'a Image,
        settings: &'a Settings,
        context: Option<&'a ClusterContext>,
    ) -> Self {
        match context {
            None => Self::alone(image, settings),
            Some(context) => {
                let scopes = Self::registry_sources_of(image).map_or(0, |rs| {
                    [&rs.blocked, &rs.insecure]
                        .iter()
                        .map(|l| l.as_ref().map_or(0, Vec::len))
                        .sum()
                });
                let tables = mirrors::mirror_tables_bound(context, scopes);
                if tables > MAX_MIRROR_TABLES {
                    let mut node = Self::alone(image, settings);
                    node.oversized = Some(tables);
                    return node;
                }
                Self::in_context(image, settings, context)
            }
        }
    }

    /// [`Node::new`]: MCO with no mirror sets and the settings' payload repository.
    fn alone(image: &'a Image, settings: &'a Settings) -> Self {
        let rs = Self::registry_sources_of(image);
        let list = |pick: fn(&'a RegistrySources) -> &'a Option<StrList>| -> Vec<(usize, &'a str)> {
            rs.map(|rs| items(pick(rs)).collect()).unwrap_or_default()
        };
        let insecure_present = rs.is_some_and(|rs| rs.insecure.is_some());
        let allowed = list(|rs| &rs.allowed);
        let insecure = list(|rs| &rs.insecure);
        let payload = settings.payload_repository.as_deref();

        // MCO getValidBlockedAndAllowedRegistries: no mirror can rescue P, so every blocked
        // entry covering P is dropped from both files.
        let mut blocked = Vec::new();
        let mut dropped = Vec::new();
        for (index, scope) in rs.into_iter().flat_map(|rs| items(&rs.blocked)) {
            match payload.filter(|p| is_nested_inside(p, scope)) {
                Some(p) => dropped.push(Dropped {
                    index,
                    entry: DecidedBy::list_item("blockedRegistries", index, scope),
                    payload_repository: p.to_owned(),
                }),
                None => blocked.push((index, scope)),
            }
        }

        let refusal = Self::refusal_of(&insecure, &blocked, &allowed, payload, insecure_present);
        let entries = registry_entries(&blocked, &insecure);
        let policy = policy_json(&blocked, &allowed, &[]);
        Self::assemble(
            image,
            settings,
            Parts {
                payload,
                // MCO regenerates registries.conf iff insecureRegistries is non-nil (present,
                // even empty) or a blocked entry is kept; policy.json iff a list is non-empty.
                writes_registries_conf: insecure_present || !blocked.is_empty(),
                writes_policy_json: !blocked.is_empty() || !allowed.is_empty(),
                insecure,
                blocked,
                allowed,
                entries,
                mirrors: Vec::new(),
                policy,
                dropped,
                refusal,
                image_refusal: None,
                skipped: None,
                context: None,
            },
        )
    }

    /// [`Node::with_context`] with a context: MCO `syncImageConfig` with the mirror sets and the
    /// release image (`MIRRORS.md` §1 steps 4-5, §2, §3, §5.3).
    fn in_context(image: &'a Image, settings: &'a Settings, context: &'a ClusterContext) -> Self {
        let rs = Self::registry_sources_of(image);
        let list = |pick: fn(&'a RegistrySources) -> &'a Option<StrList>| -> Vec<(usize, &'a str)> {
            rs.map(|rs| items(pick(rs)).collect()).unwrap_or_default()
        };
        let insecure = list(|rs| &rs.insecure);
        // The release image overrides the settings' P; one MCO cannot parse is its first error.
        let (payload, release) = match mirrors::release_payload(context) {
            Some(Ok(p)) => (Some(p), None),
            Some(Err(e)) => (settings.payload_repository.as_deref(), Some(e)),
            None => (settings.payload_repository.as_deref(), None),
        };
        let (digest_sets, tag_sets) = (
            mirrors::merged(context, true),
            mirrors::merged(context, false),
        );
        let exception = PayloadException::apply(
            payload,
            context.release_image.as_deref(),
            &digest_sets,
            &insecure,
            &list(|rs| &rs.blocked),
        );
        let allowed = match exception.skipped {
            None => list(|rs| &rs.allowed),
            Some(_) => Vec::new(),
        };
        let (built, wildcard) =
            mirrors::registry_entries(&[&digest_sets, &tag_sets], &exception.blocked, &insecure);
        let mirror_objects = [
            MirrorKind::Digest,
            MirrorKind::Tag,
            MirrorKind::ContentSource,
        ]
        .iter()
        .any(|k| !context.mirror_sets(*k).is_empty());
        let writes_registries_conf = rs.is_some_and(|rs| rs.insecure.is_some())
            || !exception.blocked.is_empty()
            || mirror_objects;
        let writes_policy_json = !exception.policy_blocked.is_empty()
            || !exception.payload_allowed.is_empty()
            || !allowed.is_empty();
        let (refusal, image_refusal) = Refusals {
            release,
            writes_registries_conf,
            writes_policy_json,
            insecure: &insecure,
            exception: &exception,
            allowed: &allowed,
            payload,
            mirror_sets: mirrors::validate(context),
            wildcard,
        }
        .in_mco_order();
        let policy = policy_json(
            &exception.policy_blocked,
            &allowed,
            &exception.payload_allowed,
        );
        let parts = Parts {
            payload,
            writes_registries_conf,
            writes_policy_json,
            insecure,
            blocked: exception.blocked,
            allowed,
            entries: built.entries,
            mirrors: built.mirrors,
            policy,
            dropped: exception.dropped,
            refusal,
            image_refusal,
            skipped: exception.skipped,
            context: Some(context),
        };
        Self::assemble(image, settings, parts)
    }

    /// The node from what MCO settled: the lookups' indexes are built here.
    fn assemble(image: &'a Image, settings: &'a Settings, parts: Parts<'a>) -> Self {
        let search = Self::registry_sources_of(image)
            .and_then(|rs| rs.search.as_ref().map(|_| &rs.search))
            .map(|list| items(list).map(|(_, r)| r).collect());
        let (policy_default, policy_scopes) = parts.policy;
        Node {
            image,
            settings,
            payload_repository: parts.payload,
            writes_registries_conf: parts.writes_registries_conf,
            writes_policy_json: parts.writes_policy_json,
            insecure: parts.insecure,
            blocked: parts.blocked,
            allowed: parts.allowed,
            prefixes: Prefixes::new(&parts.entries),
            entries: parts.entries,
            search,
            policy_index: ScopeIndex::new(policy_scopes.iter().map(|s| s.scope)),
            policy_default,
            policy_scopes,
            dropped: parts.dropped,
            refusal: parts.refusal,
            context: parts.context,
            mirrors: parts.mirrors,
            image_refusal: parts.image_refusal,
            skipped: parts.skipped,
            oversized: None,
            registries_conf: OnceCell::new(),
            policy: OnceCell::new(),
            import: OnceCell::new(),
            notes: OnceCell::new(),
        }
    }

    fn registry_sources_of(image: &'a Image) -> Option<&'a RegistrySources> {
        image.spec.as_ref()?.registry_sources.as_ref()
    }

    /// The first error MCO reports, in its order: registries.conf (insecure, then blocked
    /// scopes), then policy.json (both lists set, then blocked, then allowed scopes).
    fn refusal_of(
        insecure: &[(usize, &str)],
        blocked: &[(usize, &str)],
        allowed: &[(usize, &str)],
        payload: Option<&str>,
        insecure_present: bool,
    ) -> Option<RenderError> {
        fn invalid<'s>(list: &[(usize, &'s str)]) -> Option<(usize, &'s str)> {
            list.iter()
                .find(|(_, s)| !is_valid_registries_conf_scope(s))
                .copied()
        }
        if insecure_present || !blocked.is_empty() {
            if let Some((i, v)) = invalid(insecure) {
                return Some(RenderError::new(
                    RenderErrorKind::InvalidInsecure,
                    Some(("insecureRegistries", i, v)),
                ));
            }
            if let Some((i, v)) = invalid(blocked) {
                return Some(RenderError::new(
                    RenderErrorKind::InvalidBlocked,
                    Some(("blockedRegistries", i, v)),
                ));
            }
        }
        if !allowed.is_empty() && !blocked.is_empty() {
            let only_payload = matches!(allowed, [(_, a)] if Some(*a) == payload);
            if !only_payload {
                return Some(RenderError::new(RenderErrorKind::OnlyOneOf, None));
            }
        }
        // updatePolicyJSON validates the blocked scopes again (already done above: a kept blocked
        // entry regenerates registries.conf), then the allowed ones (an empty list: no scope).
        invalid(allowed).map(|(i, v)| {
            RenderError::new(
                RenderErrorKind::InvalidAllowed,
                Some(("allowedRegistries", i, v)),
            )
        })
    }

    /// P, the release payload repository the exception protects.
    pub fn payload_repository(&self) -> Option<&str> {
        self.payload_repository
    }

    /// The error MCO refuses to render with, if any: it then writes nothing, and the answers
    /// below describe the files it would write once the error is fixed.
    pub fn refusal(&self) -> Option<&RenderError> {
        self.refusal.as_ref()
    }

    /// The first refusal the Image takes part in: [`Node::refusal`] without a context; with
    /// one, past the errors of the mirror sets alone and of the release image, which no change
    /// of the Image cures (a blocked or insecure scope in a wildcard mirror source, `[P, P]`).
    pub fn refusal_by_image(&self) -> Option<&RenderError> {
        match self.context {
            None => self.refusal.as_ref(),
            Some(_) => self.image_refusal.as_ref(),
        }
    }

    /// The cluster context the node was rendered with.
    pub fn context(&self) -> Option<&'a ClusterContext> {
        self.context
    }

    /// The `[[registry]]` entries, in the order MCO writes them (blocked scopes, then insecure
    /// scopes not already there).
    pub fn registries_conf(&self) -> &[RegistryEntry] {
        self.registries_conf.get_or_init(|| {
            self.entries
                .iter()
                .enumerate()
                .map(|(i, e)| e.public(self.mirrors.get(i).map_or(&[], Vec::as_slice)))
                .collect()
        })
    }

    /// Whether MCO regenerates registries.conf (else the node keeps the template).
    pub fn writes_registries_conf(&self) -> bool {
        self.writes_registries_conf
    }

    /// `unqualified-search-registries` of the drop-in MCO writes; `None`: no drop-in, the
    /// template's [`TEMPLATE_SEARCH_REGISTRIES`] apply.
    pub fn search_registries(&self) -> Option<&[&'a str]> {
        self.search.as_deref()
    }

    /// The policy.json MCO writes (the template's when [`Node::writes_policy_json`] is false).
    pub fn policy_json(&self) -> &PolicyJson {
        self.policy.get_or_init(|| PolicyJson {
            default: self.policy_default,
            docker: self.policy_scopes.iter().map(PolicyItem::public).collect(),
        })
    }

    /// Whether MCO regenerates policy.json (else the node keeps the template).
    pub fn writes_policy_json(&self) -> bool {
        self.writes_policy_json
    }

    /// Blocked entries dropped by the release-payload exception.
    pub fn dropped(&self) -> &[Dropped] {
        &self.dropped
    }

    /// The line the machine-config controller logs at V(2) for the dropped entries
    /// (`%q` of the Go `[]string`, then `, skipping....`).
    pub fn dropped_log(&self) -> Option<String> {
        if self.dropped.is_empty() {
            return None;
        }
        let values: Vec<String> = self
            .dropped
            .iter()
            .map(|d| go_quote(d.entry.value.as_deref().unwrap_or("")))
            .collect();
        Some(format!(
            "error adding [{}] to blocked registries, cannot block the repository being used by the payload, skipping....",
            values.join(" ")
        ))
    }

    /// What else to know about the config as a whole (refusals, dropped entries, values CRI-O
    /// or openshift-apiserver cannot load), one sentence each.
    pub fn notes(&self) -> &[String] {
        self.notes.get_or_init(|| self.build_notes())
    }

    fn build_notes(&self) -> Vec<String> {
        let mut notes = self.context_notes();
        if let Some(tables) = self.oversized {
            notes.push(format!(
                "the cluster context is too large to model with this Image (up to {tables} \
                 [[registry.mirror]] tables, more than {MAX_MIRROR_TABLES}): judged without it"
            ));
        }
        for dropped in &self.dropped {
            notes.push(format!(
                "{}: {} is dropped by the machine-config operator: it covers the release \
                 payload repository {}, so neither registries.conf nor policy.json blocks it",
                dropped.entry.field,
                go_quote(dropped.entry.value.as_deref().unwrap_or("")),
                dropped.payload_repository
            ));
        }
        for (name, entries) in [
            ("insecure", &self.insecure),
            ("blocked", &self.blocked),
            ("allowed", &self.allowed),
        ] {
            for (index, scope) in entries
                .iter()
                .filter(|(_, s)| !is_valid_registries_conf_scope(s))
            {
                notes.push(format!(
                    "{}: the machine-config operator refuses it (invalid entry for {name} registries {}): \
                     nodes keep their current configuration until it is fixed",
                    list_field(&format!("{name}Registries"), *index),
                    go_quote(scope)
                ));
            }
        }
        for (name, entries) in [("insecure", &self.insecure), ("blocked", &self.blocked)] {
            for (index, scope) in entries.iter().filter(|(_, s)| s.contains("://")) {
                notes.push(format!(
                    "{}: containers/image refuses the location {} (URI schemes are not supported): \
                     every pull on the node fails",
                    list_field(&format!("{name}Registries"), *index),
                    go_quote(scope)
                ));
            }
        }
        let rs = Self::registry_sources_of(self.image);
        if rs.is_some_and(|rs| rs.has_allowed && rs.has_blocked) {
            let mco = if self
                .refusal
                .as_ref()
                .is_some_and(|r| r.kind == RenderErrorKind::OnlyOneOf)
            {
                " and the machine-config operator refuses it (only one of AllowedRegistries or \
                 BlockedRegistries may be specified); the decisions below apply both lists"
            } else {
                ""
            };
            notes.push(format!(
                "{REGISTRY_SOURCES}: both allowedRegistries and blockedRegistries are set: the API \
                 server denies the object (rule R1){mco}"
            ));
        }
        let search = rs.filter(|rs| rs.search.is_some()).map(|rs| &rs.search);
        for (index, registry) in search.into_iter().flat_map(items) {
            if !is_host_port(registry) {
                notes.push(format!(
                    "{SEARCH_LIST}[{index}]: {} is not a hostname[:port]: CRI-O cannot load its \
                     registries configuration on any node",
                    go_quote(registry)
                ));
            }
        }
        if let ImportPolicy::Broken { index, domain_name } = self.import_policy() {
            notes.push(format!(
                "{IMPORT_LIST}[{index}].domainName: failed to parse allowed registry {}: too many colons: \
                 openshift-apiserver cannot build its whitelist and does not start",
                go_quote(domain_name)
            ));
        }
        notes
    }

    /// What the cluster context adds to [`Node::notes`]: a refusal that the Image alone would
    /// not meet, and a payload check MCO could not make.
    fn context_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.context.is_none() {
            return notes;
        }
        if let Some(refusal) = self.refusal.as_ref().filter(|r| r.needs_context()) {
            notes.push(format!(
                "with the cluster's mirror sets and release image, the machine-config operator \
                 refuses to render ({}): nodes keep their current configuration until it is fixed",
                refusal.message
            ));
        }
        if let Some(skipped) = &self.skipped {
            notes.push(format!(
                "the machine-config operator cannot check the release payload repository's \
                 mirrors ({}, skipping....): it renders without any blockedRegistries or \
                 allowedRegistries entry",
                skipped.message
            ));
        }
        notes
    }

    /// `allowedRegistriesForImport` as openshift-apiserver builds it, with the internal registry.
    fn import_policy(&self) -> &ImportPolicy<'a> {
        self.import.get_or_init(|| {
            let image = self.image;
            let internal = image
                .status
                .as_ref()
                .and_then(|s| s.internal_registry_hostname.as_deref())
                .filter(|h| !h.is_empty())
                .map_or((self.settings.internal_registry.as_str(), false), |h| {
                    (h, true)
                });
            import_policy(
                image
                    .spec
                    .as_ref()
                    .and_then(|s| s.allowed_registries_for_import.as_ref()),
                internal,
            )
        })
    }

    /// The first `location` entry whose match prefix is `prefix`.
    fn plain_entry(&self, prefix: &str) -> Option<usize> {
        match &self.prefixes {
            Prefixes::Few => self
                .entries
                .iter()
                .position(|e| e.key == PrefixKey::Plain(prefix)),
            Prefixes::Many { plain, .. } => plain.get(prefix).copied(),
        }
    }

    /// The first `*.d` entry whose domain `.d` is `domain`.
    fn wildcard_entry(&self, domain: &str) -> Option<usize> {
        match &self.prefixes {
            Prefixes::Few => self
                .entries
                .iter()
                .position(|e| e.key == PrefixKey::Wildcard(domain)),
            Prefixes::Many { wildcards, .. } => wildcards.get(domain).copied(),
        }
    }

    /// The [`PrefixKey::Odd`] entries, in order.
    fn odd_entries(&self) -> impl Iterator<Item = usize> + '_ {
        let (listed, scanned): (&[usize], &[Entry<'a>]) = match &self.prefixes {
            Prefixes::Few => (&[], &self.entries),
            Prefixes::Many { odd, .. } => (odd, &[]),
        };
        let scanned = scanned
            .iter()
            .enumerate()
            .filter(|(_, e)| e.key == PrefixKey::Odd)
            .map(|(i, _)| i);
        listed.iter().copied().chain(scanned)
    }

    /// The `[[registry]]` entry MCO writes for exactly this scope (a blocked or insecure entry),
    /// not the longest-prefix one that a pull would use.
    pub fn entry_for_scope(&self, scope: &str) -> Option<&RegistryEntry> {
        let index = match scope.strip_prefix('*').filter(|_| scope.starts_with("*.")) {
            Some(domain) => self.wildcard_entry(domain).or_else(|| {
                self.odd_entries()
                    .find(|&i| self.entries.get(i).is_some_and(|e| e.scope == scope))
            }),
            None => self.plain_entry(scope),
        }?;
        self.entries
            .get(index)
            .filter(|e| e.scope == scope)
            .and_then(|_| self.registries_conf().get(index))
    }

    /// sysregistriesv2 `FindRegistry`: the entry with the longest prefix matching the repository
    /// `name` (the first of equal length).
    pub fn find_registry(&self, name: &str) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let mut best: Option<(usize, usize)> = None;
        let host_end = memchr::memchr3(b':', b'/', b'@', name.as_bytes()).unwrap_or(name.len());
        let host = name.get(..host_end).unwrap_or(name);
        if let Prefixes::Few = self.prefixes {
            // Upstream's loop: each entry in turn, tested by the matcher itself; a `*.d` entry
            // only when `.d` is a `.`-suffix of the host, as the lookups below find it.
            for (i, entry) in self.entries.iter().enumerate() {
                let matches = match entry.key {
                    PrefixKey::Wildcard(domain) if !host.ends_with(domain) => false,
                    _ => ref_matching_prefix(name, entry.match_prefix()).is_some(),
                };
                if matches {
                    best = pick(best, entry.match_prefix().len(), i);
                }
            }
            return best.map(|(_, i)| i);
        }
        let Prefixes::Many {
            plain_lengths,
            wildcard_lengths,
            ..
        } = &self.prefixes
        else {
            return None;
        };
        // Plain prefixes: `name` itself, or `name` cut before a `:`, `/` or `@`; only cuts of a
        // key's length can be keys.
        let cuts = memchr::memchr3_iter(b':', b'/', b'@', name.as_bytes()).chain([name.len()]);
        for end in cuts.filter(|&end| plain_lengths.contains(end)) {
            if let Some(i) = name.get(..end).and_then(|p| self.plain_entry(p)) {
                best = pick(best, end, i);
            }
        }
        // A wildcard `*.d` matches where `.d` first occurs in the name, before any `/`, ending
        // at a `:`, `/`, `@` or the end: `.d` is a `.`-suffix of the host (the part before the
        // first separator). Each candidate found is confirmed by the matcher itself.
        let candidates = memchr::memchr_iter(b'.', host.as_bytes())
            .filter(|p| wildcard_lengths.contains(host.len() - p))
            .filter_map(|p| self.wildcard_entry(host.get(p..)?));
        for i in candidates.chain(self.odd_entries()) {
            if let Some(entry) = self.entries.get(i)
                && ref_matching_prefix(name, entry.match_prefix()).is_some()
            {
                best = pick(best, entry.match_prefix().len(), i);
            }
        }
        best.map(|(_, i)| i)
    }

    /// The one matcher behind [`Node::pull`] and [`Node::decide`]: the registries.conf entry of
    /// the repository `name` and how policy.json decides the identity `identity`.
    fn matching(&self, name: &str, identity: &str) -> Matched<'_, 'a> {
        let entry_index = self.find_registry(name);
        let entry = entry_index.and_then(|i| self.entries.get(i));
        let mut blocked = entry.is_some_and(Entry::blocked);
        // With a context: a blocked source may still be pulled through one of its mirrors.
        if self.context.is_some() && entry.is_some_and(Entry::blocked) {
            blocked = !self
                .sources(entry_index, name, identity)
                .iter()
                .any(PullSource::tried);
        }
        let policy = if !self.writes_policy_json {
            PolicyDecision::Template
        } else {
            match self.policy_index.policy_match(name, identity) {
                Some(k) => PolicyDecision::Scope(k),
                None => PolicyDecision::Default(self.policy_default),
            }
        };
        let policy_accepts = match &policy {
            PolicyDecision::Template => true,
            PolicyDecision::Scope(k) => self
                .policy_scopes
                .get(*k)
                .is_some_and(|s| s.requirement.accepts()),
            PolicyDecision::Default(r) => r.accepts(),
        };
        Matched {
            entry_index,
            entry,
            blocked,
            policy,
            allowed: !blocked && policy_accepts,
        }
    }

    /// Whether policy.json accepts the identity `identity` of the repository `name` (looked up
    /// on the name as written, never a mirror's), whatever registries.conf says.
    pub fn policy_accepts(&self, name: &str, identity: &str) -> bool {
        if !self.writes_policy_json {
            return true;
        }
        match self.policy_index.policy_match(name, identity) {
            Some(k) => self
                .policy_scopes
                .get(k)
                .is_some_and(|s| s.requirement.accepts()),
            None => self.policy_default.accepts(),
        }
    }

    /// The blocked entries MCO keeps (`registriesBlocked`): `(index in blockedRegistries,
    /// scope)`.
    pub fn kept_blocked(&self) -> &[(usize, &'a str)] {
        &self.blocked
    }

    /// [`Node::pull_name`] without the entries that decided: whether registries.conf blocks the
    /// repository `name` and whether CRI-O may pull the identity `identity`.
    pub fn decide(&self, name: &str, identity: &str) -> Verdict {
        let matched = self.matching(name, identity);
        Verdict {
            blocked: matched.blocked,
            allowed: matched.allowed,
        }
    }

    /// A pull of a fully qualified reference, on the reference as written (a short name is
    /// [`Node::short_name`]).
    pub fn pull(&self, reference: &Reference) -> Pull {
        self.pull_name(reference.name(), reference.policy_identity())
    }

    /// [`Node::pull`] of the repository `name` (normalised, fully qualified) with the policy
    /// identity `identity` (`name:tag` or `name@digest`).
    pub fn pull_name(&self, name: String, identity: String) -> Pull {
        let Matched {
            entry_index,
            entry,
            blocked,
            policy,
            allowed,
        } = self.matching(&name, &identity);
        let insecure_by = entry.and_then(|e| e.insecure_by).map(Source::decided_by);
        let decided_by = if blocked {
            entry.and_then(Entry::blocked_by)
        } else {
            match &policy {
                PolicyDecision::Template => None,
                PolicyDecision::Scope(k) => {
                    self.policy_scopes.get(*k).map(|s| s.source.decided_by())
                }
                PolicyDecision::Default(Requirement::Reject) => Some(DecidedBy::not_listed(
                    &format!("{REGISTRY_SOURCES}.allowedRegistries"),
                )),
                PolicyDecision::Default(_) => None,
            }
        };
        let rescued_by_exception = if allowed && !self.dropped.is_empty() {
            let lookups = crate::grammar::scope::policy_scopes(&name, Some(&identity));
            self.dropped
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    let scope = d.entry.value.as_deref().unwrap_or("");
                    ref_matching_prefix(&name, scope).is_some()
                        || lookups.iter().any(|s| s == scope)
                })
                .map(|(i, _)| i)
                .collect()
        } else {
            Vec::new()
        };
        Pull {
            entry: entry_index,
            blocked,
            insecure: entry.is_some_and(|e| e.insecure_by.is_some()),
            policy,
            allowed,
            decided_by,
            insecure_by,
            rescued_by_exception,
            sources: match self.context {
                Some(_) => self.sources(entry_index, &name, &identity),
                None => Vec::new(),
            },
            name,
            identity,
        }
    }

    /// containers/image `PullSourcesFromReference` and each attempt's block check, for the
    /// repository `name` with the identity `identity` under the entry `entry_index`: every
    /// mirror in order (skipped when its `pull-from-mirror` does not fit), then the source; an
    /// endpoint whose physical name's longest-prefix entry is blocked fails (`MIRRORS.md` §4.3,
    /// §4.4). The physical reference is the identity rewritten.
    fn sources(&self, entry_index: Option<usize>, name: &str, identity: &str) -> Vec<PullSource> {
        let Some((i, entry)) = entry_index.and_then(|i| Some((i, self.entries.get(i)?))) else {
            return vec![PullSource {
                reference: identity.to_owned(),
                mirror: None,
                decision: SourceDecision::Try,
                insecure: false,
                insecure_by: None,
            }];
        };
        let digested = identity.as_bytes().get(name.len()) == Some(&b'@');
        let prefix = entry.match_prefix();
        let mut sources = Vec::new();
        for (k, mirror) in self.mirrors.get(i).into_iter().flatten().enumerate() {
            let reference = mirrors::rewrite(identity, prefix, &mirror.location);
            let decision = match mirror.pull_from {
                PullFromMirror::DigestOnly if !digested => SourceDecision::DigestOnlyMirror,
                PullFromMirror::TagOnly if digested => SourceDecision::TagOnlyMirror,
                _ => {
                    let physical = mirrors::rewrite(name, prefix, &mirror.location);
                    self.block_check(physical.as_deref().unwrap_or(""))
                }
            };
            sources.push(PullSource {
                reference: reference.unwrap_or_default(),
                mirror: Some(k),
                decision,
                insecure: mirror.insecure_by.is_some(),
                insecure_by: mirror.insecure_by.map(Source::decided_by),
            });
        }
        // The source: a `*.` entry has no location and keeps the reference as it is.
        sources.push(PullSource {
            reference: identity.to_owned(),
            mirror: None,
            decision: self.block_check(name),
            insecure: entry.insecure_by.is_some(),
            insecure_by: entry.insecure_by.map(Source::decided_by),
        });
        sources
    }

    /// containers/image `newDockerClient`: the physical name's longest-prefix entry is blocked.
    fn block_check(&self, physical_name: &str) -> SourceDecision {
        match self
            .find_registry(physical_name)
            .and_then(|i| self.entries.get(i))
            .filter(|e| e.blocked())
        {
            Some(entry) => SourceDecision::Blocked {
                prefix: entry.match_prefix().to_owned(),
                by: entry.blocked_by(),
            },
            None => SourceDecision::Try,
        }
    }

    /// How CRI-O resolves a short name: one candidate per search registry, in order (the drop-in
    /// list, else the template default). Aliases are not modelled (MCO writes none).
    pub fn short_name(&self, reference: &Reference) -> ShortName {
        let (search_field, registries): (Option<String>, Vec<&str>) = match &self.search {
            Some(list) => (Some(SEARCH_LIST.to_owned()), list.clone()),
            None => (None, TEMPLATE_SEARCH_REGISTRIES.to_vec()),
        };
        let candidates = registries
            .iter()
            .map(|registry| {
                let candidate = reference.in_registry(registry);
                let pull = candidate.as_ref().ok().map(|c| self.pull(c));
                Candidate {
                    registry: (*registry).to_owned(),
                    reference: candidate,
                    pull,
                }
            })
            .collect();
        ShortName {
            search_field,
            registries: registries.iter().map(|r| (*r).to_owned()).collect(),
            candidates,
        }
    }

    /// [`Node::import`]'s verdict alone, for the registry as written (`host[:port]`): whether
    /// the whitelister admits an import over TLS. The same match, without the explanation or the
    /// whitelister's error text, which the rules do not show.
    pub fn imports_securely(&self, registry: &str) -> bool {
        match self.import_policy() {
            ImportPolicy::Unrestricted => true,
            ImportPolicy::Broken { .. } => false,
            ImportPolicy::Listed { list, .. } => {
                list.admitter(registry, Transport::Secure).is_some()
            }
        }
    }

    /// An import into an ImageStream (a secure import) under openshift-apiserver's whitelister,
    /// checked on the registry as written.
    pub fn import(&self, reference: &Reference) -> Import {
        let registry = reference.written_domain().unwrap_or("");
        let (host, port) = registry_host_port(registry, false);
        let mut import = Import {
            allowed: true,
            checked: format!("{host}:{port}"),
            basis: ImportBasis::Unrestricted,
            decided_by: None,
            error: None,
            insecure_alternative: None,
        };
        match self.import_policy() {
            ImportPolicy::Unrestricted => {}
            ImportPolicy::Broken { index, domain_name } => {
                import.allowed = false;
                import.basis = ImportBasis::Broken;
                import.decided_by = Some(DecidedBy::entry(
                    format!("{IMPORT_LIST}[{index}].domainName"),
                    domain_name,
                ));
                import.error = Some(format!(
                    "openshift-apiserver does not start: failed to parse allowed registry {}: too many colons",
                    go_quote(domain_name)
                ));
            }
            ImportPolicy::Listed {
                list,
                entries,
                internal,
            } => match list.admit(registry, Transport::Secure) {
                Ok(admitter) => {
                    import.basis = match admitter {
                        Admitter::Internal => ImportBasis::Internal,
                        _ => ImportBasis::Entry,
                    };
                    import.decided_by = Some(import_admitter(admitter, entries, *internal));
                }
                Err(refusal) => {
                    import.allowed = false;
                    import.basis = ImportBasis::NotListed;
                    import.checked = refusal.checked.clone();
                    import.decided_by = Some(DecidedBy::not_listed(IMPORT_LIST));
                    import.error = Some(refusal.message);
                    import.insecure_alternative = list
                        .admit(registry, Transport::Any)
                        .ok()
                        .map(|a| import_admitter(a, entries, *internal));
                }
            },
        }
        import
    }

    /// The registries.conf MCO writes, byte for byte as far as the sources tell (see
    /// [`RenderedFile`]); the template when MCO does not regenerate it.
    pub fn render_registries_conf(&self) -> RenderedFile {
        render::registries_conf(self)
    }

    /// The policy.json MCO writes (Go `json.MarshalIndent(policy, "", "  ")`, no final newline).
    pub fn render_policy_json(&self) -> RenderedFile {
        render::policy_json(self)
    }

    /// The search-registries drop-in, when MCO writes one.
    pub fn render_search_registries(&self) -> Option<String> {
        self.search.as_deref().map(render::search_drop_in)
    }
}

/// The longer of two matches (the earlier entry on a tie).
fn pick(best: Option<(usize, usize)>, len: usize, i: usize) -> Option<(usize, usize)> {
    match best {
        Some((l, j)) if l > len || (l == len && j < i) => Some((l, j)),
        _ => Some((len, i)),
    }
}

/// runtime-utils `EditRegistriesConfig` with no mirror sets: an entry per distinct blocked
/// scope, then per distinct insecure scope; flags propagated to every entry nested inside.
fn registry_entries<'a>(
    blocked: &[(usize, &'a str)],
    insecure: &[(usize, &'a str)],
) -> Vec<Entry<'a>> {
    let scopes = blocked.iter().chain(insecure).map(|(_, scope)| *scope);
    let mut order: Vec<&'a str> = Vec::new();
    if blocked.len() + insecure.len() <= FEW {
        for scope in scopes {
            if !order.contains(&scope) {
                order.push(scope);
            }
        }
    } else {
        let mut seen = fast_set(blocked.len() + insecure.len());
        order.extend(scopes.filter(|scope| seen.insert(*scope)));
    }
    let blocked_by = Flags::new(blocked, "blockedRegistries");
    let insecure_by = Flags::new(insecure, "insecureRegistries");
    order
        .into_iter()
        .map(|scope| {
            Entry::new(
                scope,
                blocked_by.flagging(scope),
                insecure_by.flagging(scope),
            )
        })
        .collect()
}

/// Which scope of one list flags an entry: its own scope, else the first scope of the list it is
/// nested inside (linear in the entry, however long the list).
struct Flags<'l, 'a> {
    list: &'l [(usize, &'a str)],
    name: &'static str,
    /// The first position of each scope, for a long list (a short one is searched).
    own: Option<FastMap<&'a str, usize>>,
    /// Built on the first scope that is not the list's own: a list is mostly asked about its
    /// own scopes (an insecure entry's insecure flag), and a long list's index costs a hash of
    /// every scope.
    index: std::cell::OnceCell<ScopeIndex<'a>>,
}

impl<'l, 'a> Flags<'l, 'a> {
    fn new(list: &'l [(usize, &'a str)], name: &'static str) -> Self {
        let own = (list.len() > FEW).then(|| {
            let mut own = fast_map(list.len());
            for (position, (_, scope)) in list.iter().enumerate() {
                own.entry(*scope).or_insert(position);
            }
            own
        });
        Flags {
            list,
            name,
            own,
            index: std::cell::OnceCell::new(),
        }
    }

    fn flagging(&self, scope: &str) -> Option<Source<'a>> {
        if self.list.is_empty() {
            return None;
        }
        let own = match &self.own {
            Some(own) => own.get(scope).copied(),
            None => self.list.iter().position(|(_, s)| *s == scope),
        };
        let position = own.or_else(|| {
            self.index
                .get_or_init(|| ScopeIndex::new(self.list.iter().map(|(_, s)| *s)))
                .first_covering(scope)
        })?;
        self.list.get(position).map(|&(index, value)| Source {
            list: self.name,
            index,
            value,
        })
    }
}

/// MCO `updatePolicyJSON` on the lists after the payload exception: allowed scopes accept with
/// default reject, then blocked scopes reject with default accept (a Go map: the last write of
/// a scope wins, keys sorted when encoded). Returns the default and the scopes, sorted.
fn policy_json<'a>(
    blocked: &[(usize, &'a str)],
    allowed: &[(usize, &'a str)],
    payload: &[(usize, &'a str)],
) -> (Requirement, Vec<PolicyItem<'a>>) {
    let write = |list: &'static str, requirement: Requirement| {
        move |&(index, scope): &(usize, &'a str)| PolicyItem {
            scope,
            requirement,
            source: Source {
                list,
                index,
                value: scope,
            },
        }
    };
    // Every write in order (P for the payload exception, allowed, then blocked); a stable sort
    // keeps that order per scope.
    let mut writes: Vec<PolicyItem<'a>> = payload
        .iter()
        .map(write(
            PAYLOAD_EXCEPTION,
            Requirement::InsecureAcceptAnything,
        ))
        .chain(allowed.iter().map(write(
            "allowedRegistries",
            Requirement::InsecureAcceptAnything,
        )))
        .chain(
            blocked
                .iter()
                .map(write("blockedRegistries", Requirement::Reject)),
        )
        .collect();
    writes.sort_by(|a, b| a.scope.cmp(b.scope));
    let mut scopes = Vec::with_capacity(writes.len());
    for same in writes.chunk_by(|a, b| a.scope == b.scope) {
        // The last allowed write wins; a blocked one overrides it, and the first blocked entry
        // of a scope names it (a later duplicate writes the same).
        let winner = same
            .iter()
            .find(|w| w.requirement == Requirement::Reject)
            .or(same.last());
        scopes.extend(winner.copied());
    }
    let default = if !blocked.is_empty() || (allowed.is_empty() && payload.is_empty()) {
        Requirement::InsecureAcceptAnything
    } else {
        Requirement::Reject
    };
    (default, scopes)
}

fn import_policy<'a>(
    list: Option<&'a Vec<Option<RegistryLocation>>>,
    internal: (&'a str, bool),
) -> ImportPolicy<'a> {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return ImportPolicy::Unrestricted;
    };
    let entries: Vec<(usize, &'a str, bool)> = list
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            l.as_ref()
                .map(|l| (i, l.domain_name.as_deref().unwrap_or(""), l.insecure))
        })
        .collect();
    if let Some((index, domain_name, _)) = entries
        .iter()
        .find(|(_, d, insecure)| ImportEntry::parse(d, *insecure) == Err(EntryError::TooManyColons))
    {
        return ImportPolicy::Broken {
            index: *index,
            domain_name,
        };
    }
    ImportPolicy::Listed {
        list: ImportAllowList::new(entries.iter().copied()).with_internal(internal.0),
        entries,
        internal,
    }
}

fn import_admitter(
    admitter: Admitter,
    entries: &[(usize, &str, bool)],
    internal: (&str, bool),
) -> DecidedBy {
    match admitter {
        Admitter::Entry(i) => {
            let (domain_name, insecure) = entries
                .iter()
                .find(|(index, _, _)| *index == i)
                .map_or(("", false), |(_, d, s)| (*d, *s));
            let value = if insecure {
                format!("{domain_name} (insecure)")
            } else {
                domain_name.to_owned()
            };
            DecidedBy::entry(format!("{IMPORT_LIST}[{i}]"), &value)
        }
        _ => DecidedBy::entry(
            if internal.1 {
                "status.internalRegistryHostname".to_owned()
            } else {
                "internal registry (--internal-registry)".to_owned()
            },
            internal.0,
        ),
    }
}
