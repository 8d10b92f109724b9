//! The rules: one table, in rule-book order, that the engine runs and `rules` prints.
//!
//! Each [`Rule`] names the phases it applies to and a check function. A check appends
//! [`Finding`]s and never returns early across fields: the API server shows every error at once.
//! After all checks ran, [`run`] ratchets (on UPDATE an error whose value, whole list, or whole
//! `registrySources` is unchanged becomes warning W18) and sorts findings into field order.

mod hosts;
mod import;
mod meta;
mod registry_sources;
pub mod table;

use serde_json::Value;

use crate::field::{FieldError, Path, Segment};
use crate::image::{Image, RegistrySources, Spec, StrList};
use crate::policy::Policy;

/// Who defines a rule (RULEBOOK "Tiers").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tier {
    /// Upstream OpenShift enforces it today; same path, type and message.
    Upstream,
    /// Upstream is silent but a wrong value breaks a cluster; rejected too.
    Protective,
    /// A warning: allowed, with a message.
    Warning,
}

impl Tier {
    /// The one-letter code of the rule book (U, P, W).
    pub fn code(self) -> &'static str {
        match self {
            Tier::Upstream => "U",
            Tier::Protective => "P",
            Tier::Warning => "W",
        }
    }
}

/// What kind of write is being judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// CREATE of the main resource.
    Create,
    /// UPDATE of the main resource.
    Update,
    /// UPDATE of the `status` subresource.
    Status,
    /// DELETE.
    Delete,
}

impl Phase {
    /// The letter of the rule book's "ops" column.
    pub fn code(self) -> &'static str {
        match self {
            Phase::Create => "C",
            Phase::Update => "U",
            Phase::Status => "S",
            Phase::Delete => "D",
        }
    }
}

/// One rule of the rule book.
pub struct Rule {
    /// The rule id, e.g. `R2`.
    pub id: &'static str,
    /// Its tier.
    pub tier: Tier,
    /// The field(s) it looks at.
    pub field: &'static str,
    /// What it checks.
    pub check: &'static str,
    /// Why it exists.
    pub why: &'static str,
    /// Where upstream the behaviour comes from.
    pub source: &'static str,
    /// The phases it runs in.
    pub phases: &'static [Phase],
    eval: fn(&Ctx<'_>, &mut Out),
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Rule {
    /// Whether an error of this rule is ratcheted on UPDATE (all U and P rules but the
    /// metadata rules, which compare with the old object by definition, and T2: a CEL rule that
    /// cannot evaluate is an error even on an unchanged value).
    pub fn ratchets(&self) -> bool {
        self.tier != Tier::Warning && !self.id.starts_with('M') && !matches!(self.id, "D1" | "T2")
    }
}

/// Everything a check may look at.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The write being judged.
    pub phase: Phase,
    /// The object's name (for DELETE, the name of the object being deleted).
    pub name: &'a str,
    /// The new object, decoded.
    pub new: &'a Image,
    /// The old object on UPDATE.
    pub old: Option<&'a Image>,
    /// The new object as sent.
    pub new_raw: &'a Value,
    /// The old object as sent, on UPDATE.
    pub old_raw: Option<&'a Value>,
    /// Type errors found while decoding the new object.
    pub type_errors: &'a [FieldError],
    /// Type errors the decoder counted without building them ([`crate::image::Decoded`]).
    pub omitted_type_errors: &'a [(Path, usize)],
    /// Settings.
    pub policy: &'a Policy,
    /// Values several rules share, computed once on first use.
    pub shared: Shared<'a>,
}

/// Values several rules derive from the object, computed once per evaluation.
#[derive(Debug, Default)]
pub struct Shared<'a> {
    /// The node model: what MCO writes and how a node pulls, built on first use.
    node: std::cell::OnceCell<Option<crate::node::Node<'a>>>,
}

impl<'a> Ctx<'a> {
    fn spec(&self) -> Option<&'a Spec> {
        self.new.spec.as_ref()
    }

    /// The node model of the new object, built once per evaluation on first use: the rules
    /// that speak of what a node does ask it, as `explain` does. `None` when a `registrySources`
    /// list is longer than `maxItems`: R5 denies the object, no node ever gets it, and a hostile
    /// list must not make every review build a model of it.
    fn node(&self) -> Option<&crate::node::Node<'a>> {
        self.shared
            .node
            .get_or_init(|| {
                self.registry_sources()
                    .is_none_or(registry_sources::within_max_items)
                    .then(|| crate::node::Node::new(self.new, self.policy.settings()))
            })
            .as_ref()
    }

    fn registry_sources(&self) -> Option<&'a RegistrySources> {
        self.spec()?.registry_sources.as_ref()
    }

    /// The internal registry: `status.internalRegistryHostname` when set, else the setting.
    fn internal_registry(&self) -> &'a str {
        self.new
            .status
            .as_ref()
            .and_then(|s| s.internal_registry_hostname.as_deref())
            .filter(|h| !h.is_empty())
            .unwrap_or(&self.policy.settings().internal_registry)
    }
}

/// What a finding means for the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An error that denies the request.
    Error(FieldError),
    /// A warning of a W rule: `path: message`.
    Warning {
        /// The field it is about.
        path: Path,
        /// The text after the path.
        message: String,
    },
    /// An error turned into warning W18 by ratcheting.
    Ratcheted(FieldError),
}

/// One result of one rule.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The rule that produced it.
    pub rule: &'static Rule,
    /// What it means.
    pub outcome: Outcome,
    /// Ratchet this error on UPDATE whatever changed (R7 when the old object had duplicates).
    always_ratchet: bool,
}

impl Finding {
    /// The field the finding is about.
    pub fn path(&self) -> &Path {
        match &self.outcome {
            Outcome::Error(e) | Outcome::Ratcheted(e) => &e.path,
            Outcome::Warning { path, .. } => path,
        }
    }

    /// The warning text, for warnings and ratcheted errors.
    pub fn warning_text(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Error(_) => None,
            Outcome::Warning { path, message } => Some(format!("{path}: {message}")),
            Outcome::Ratcheted(e) => Some(e.to_string()),
        }
    }
}

/// Where checks put their findings.
struct Out<'r> {
    rule: &'static Rule,
    findings: Vec<Finding>,
    /// How many findings the current rule has kept.
    kept_by_rule: usize,
    /// How many findings a rule keeps; the others are only counted.
    limit: usize,
    /// Whether ratcheting applies, and its cache.
    ratchet: Option<Ratchet<'r>>,
    unkept: Unkept,
}

impl Out<'_> {
    fn error(&mut self, error: FieldError) {
        self.push(Outcome::Error(error), false);
    }

    fn error_always_ratcheted(&mut self, error: FieldError) {
        self.push(Outcome::Error(error), true);
    }

    fn warn(&mut self, path: Path, message: impl Into<String>) {
        self.push(
            Outcome::Warning {
                path,
                message: message.into(),
            },
            false,
        );
    }

    /// A warning about one entry of a list: `finding` builds its path and text only when the
    /// warning is kept (a rule keeps its first ones), so entries past the limit cost a count.
    fn warn_with(&mut self, finding: impl FnOnce() -> (Path, String)) {
        if self.kept_by_rule < self.limit {
            let (path, message) = finding();
            self.warn(path, message);
        } else {
            self.unkept.add(self.rule, Counted::Warning, 1);
        }
    }

    /// An error about one entry of a list: `error` builds it only when it is kept, or when
    /// ratcheting needs its path to count it.
    fn error_with(&mut self, error: impl FnOnce() -> FieldError) {
        if self.kept_by_rule < self.limit || (self.ratchet.is_some() && self.rule.ratchets()) {
            self.error(error());
        } else {
            self.unkept.add(self.rule, Counted::Error, 1);
        }
    }

    fn push(&mut self, outcome: Outcome, always_ratchet: bool) {
        if self.kept_by_rule < self.limit {
            self.kept_by_rule += 1;
            self.findings.push(Finding {
                rule: self.rule,
                outcome,
                always_ratchet,
            });
            return;
        }
        match &outcome {
            Outcome::Error(error) => self.count_errors(&error.path, 1, always_ratchet),
            Outcome::Warning { .. } => self.unkept.add(self.rule, Counted::Warning, 1),
            Outcome::Ratcheted(_) => self.unkept.add(self.rule, Counted::Ratcheted, 1),
        }
    }

    /// Counts `count` errors of the current rule at `path` without keeping them, ratcheted
    /// like kept ones.
    fn count_errors(&mut self, path: &Path, count: usize, always_ratchet: bool) {
        let ratcheted = self.rule.ratchets()
            && self
                .ratchet
                .as_mut()
                .is_some_and(|r| always_ratchet || r.unchanged(path));
        let class = if ratcheted {
            Counted::Ratcheted
        } else {
            Counted::Error
        };
        self.unkept.add(self.rule, class, count);
    }
}

/// The comparisons of ratcheting, one per unit.
struct Ratchet<'r> {
    new_raw: &'r Value,
    old_raw: &'r Value,
    /// One comparison per unit: a 1024-item list compared once, not once per error in it.
    unchanged: std::collections::HashMap<Path, bool>,
}

impl Ratchet<'_> {
    /// Whether the unit of an error at `path` is the same in the old object.
    fn unchanged(&mut self, path: &Path) -> bool {
        let (new_raw, old_raw) = (self.new_raw, self.old_raw);
        *self
            .unchanged
            .entry(ratchet_unit(path))
            .or_insert_with_key(|unit| unit.lookup(new_raw) == unit.lookup(old_raw))
    }
}

/// What an unkept finding was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    Error,
    Warning,
    Ratcheted,
}

/// The findings [`run_limited`] counted without keeping them, by rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unkept {
    /// `[errors, warnings, ratcheted errors]`, by position in [`RULES`].
    counts: Vec<[usize; 3]>,
}

impl Unkept {
    fn add(&mut self, rule: &Rule, class: Counted, count: usize) {
        let position = rule_position(rule);
        if self.counts.len() <= position {
            if position >= RULES.len() {
                return;
            }
            self.counts.resize(RULES.len(), [0; 3]);
        }
        if let Some(slot) = self
            .counts
            .get_mut(position)
            .and_then(|c| c.get_mut(class as usize))
        {
            *slot = slot.saturating_add(count);
        }
    }

    /// Whether nothing was left unkept.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|c| *c == [0; 3])
    }

    /// `(rule, errors, warnings, ratcheted errors)` of each rule with unkept findings, in
    /// rule-book order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Rule, usize, usize, usize)> + '_ {
        RULES
            .iter()
            .zip(&self.counts)
            .filter(|(_, c)| **c != [0; 3])
            .map(|(rule, [e, w, r])| (rule, *e, *w, *r))
    }
}

/// Runs every rule of `phase`, ratchets against `old_raw` on UPDATE, and returns the findings
/// in field order (then rule order), a deterministic order.
pub fn run(ctx: &Ctx<'_>, old_raw: Option<&Value>) -> Vec<Finding> {
    run_limited(ctx, old_raw, usize::MAX).0
}

/// [`run`], where each rule keeps at most `limit` findings (its first ones) and the others are
/// only counted, ratcheted or not, in [`Unkept`]: the memory of an evaluation stays bounded
/// whatever the size of the lists, while the verdict and its counts stay right.
pub fn run_limited(ctx: &Ctx<'_>, old_raw: Option<&Value>, limit: usize) -> (Vec<Finding>, Unkept) {
    let ratchet = match (ctx.phase, old_raw) {
        (Phase::Update | Phase::Status, Some(old_raw)) => Some(Ratchet {
            new_raw: ctx.new_raw,
            old_raw,
            unchanged: std::collections::HashMap::new(),
        }),
        _ => None,
    };
    let mut out = Out {
        rule: &RULES[0],
        findings: Vec::new(),
        kept_by_rule: 0,
        limit,
        ratchet,
        unkept: Unkept::default(),
    };
    for rule in RULES {
        if rule.phases.contains(&ctx.phase) {
            out.rule = rule;
            out.kept_by_rule = 0;
            (rule.eval)(ctx, &mut out);
        }
    }
    let Out {
        mut findings,
        ratchet,
        unkept,
        ..
    } = out;
    if let Some(mut ratchet) = ratchet {
        for finding in &mut findings {
            ratchet_finding(finding, &mut ratchet);
        }
    }
    findings.sort_by(|a, b| {
        a.path()
            .segments()
            .cmp(b.path().segments())
            .then_with(|| rule_position(a.rule).cmp(&rule_position(b.rule)))
    });
    (findings, unkept)
}

/// The position of a rule in [`RULES`].
pub fn rule_position(rule: &Rule) -> usize {
    // The rules are the elements of RULES: an address comparison finds them; the ids are
    // compared only for a rule from elsewhere.
    RULES
        .iter()
        .position(|r| std::ptr::eq(r, rule))
        .or_else(|| RULES.iter().position(|r| r.id == rule.id))
        .unwrap_or(usize::MAX)
}

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

fn ratchet_finding(finding: &mut Finding, ratchet: &mut Ratchet<'_>) {
    let Outcome::Error(error) = &finding.outcome else {
        return;
    };
    if !finding.rule.ratchets() {
        return;
    }
    if finding.always_ratchet || ratchet.unchanged(&error.path) {
        finding.outcome = Outcome::Ratcheted(error.clone());
    }
}

/// The value whose equality with the old object ratchets an error at `path`: the path itself,
/// or, inside a list, the whole list (the lists of this object are atomic or sets, which the API
/// server never correlates item by item).
fn ratchet_unit(path: &Path) -> Path {
    let mut unit = Path::root();
    for segment in path.segments() {
        match segment {
            Segment::Index(_) => break,
            Segment::Field(name) => unit = unit.child(name),
        }
    }
    unit
}

/// `(index, value)` of the string items of a list.
fn items(list: &Option<StrList>) -> impl Iterator<Item = (usize, &str)> {
    list.iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, item)| item.as_deref().map(|s| (i, s)))
}

fn registry_sources_path() -> Path {
    Path::new(&["spec", "registrySources"])
}

const C: Phase = Phase::Create;
const U: Phase = Phase::Update;
const S: Phase = Phase::Status;
const D: Phase = Phase::Delete;

/// Every rule, in rule-book order.
pub static RULES: &[Rule] = &[
    // First: findings on one field are reported in this order, and the CRD handler's ObjectMeta
    // check runs before the admission plugin that says `must be cluster`.
    Rule {
        id: "M5",
        tier: Tier::Upstream,
        field: "metadata.name",
        check: "the name is a DNS-1123 subdomain (lowercase, at most 253 characters)",
        why: "the API server refuses any other name for a custom resource, with this message",
        source: "apiextensions-apiserver customresource validator (ValidateObjectMetaAccessor, NameIsDNSSubdomain)",
        phases: &[C],
        eval: meta::name_is_not_a_dns_subdomain,
    },
    Rule {
        id: "M1",
        tier: Tier::Upstream,
        field: "metadata.name",
        check: "the name is `cluster` (exact, case-sensitive)",
        why: "the platform reads only the Image named cluster; any other is ignored",
        source: "openshift kube-apiserver customresourcevalidation/image/validate_image.go (RequireNameCluster)",
        phases: &[C],
        eval: meta::name_is_not_cluster,
    },
    Rule {
        id: "M2",
        tier: Tier::Upstream,
        field: "metadata.name",
        check: "a name is given",
        why: "an object needs a name",
        source: "apimachinery pkg/api/validation/objectmeta.go (ValidateObjectMeta)",
        phases: &[C],
        eval: meta::name_is_missing,
    },
    Rule {
        id: "M3",
        tier: Tier::Upstream,
        field: "metadata.generateName",
        check: "generateName, when set, is `cluster`",
        why: "a generated name can never be cluster",
        source: "apimachinery pkg/api/validation/objectmeta.go (ValidateObjectMeta)",
        phases: &[C],
        eval: meta::generate_name_is_not_cluster,
    },
    Rule {
        id: "M4",
        tier: Tier::Upstream,
        field: "metadata.{name,namespace,uid,creationTimestamp}",
        check: "these do not change on update",
        why: "object identity is immutable",
        source: "apimachinery pkg/api/validation/objectmeta.go (ValidateObjectMetaUpdate)",
        phases: &[U, S],
        eval: meta::identity_changed,
    },
    Rule {
        id: "D1",
        tier: Tier::Upstream,
        field: "(object)",
        check: "the Image named cluster is not deleted",
        why: "the cluster configuration singleton must always exist",
        source: "openshift kube-apiserver admission config/deny_delete_cluster_config_resource.go",
        phases: &[D],
        eval: meta::delete_of_cluster,
    },
    Rule {
        id: "S1",
        tier: Tier::Upstream,
        field: "spec",
        check: "spec is present",
        why: "the CRD requires spec",
        source: "openshift/api config/v1 images CRD (required: [spec])",
        phases: &[C, U],
        eval: meta::spec_is_missing,
    },
    Rule {
        id: "S2",
        tier: Tier::Upstream,
        field: "spec.additionalTrustedCA.name",
        check: "additionalTrustedCA, when present, has the key name",
        why: "the CRD requires name inside additionalTrustedCA",
        source: "openshift/api config/v1 images CRD (additionalTrustedCA required: [name])",
        phases: &[C, U],
        eval: meta::trusted_ca_name_is_missing,
    },
    Rule {
        id: "T1",
        tier: Tier::Upstream,
        field: "any",
        check: "every value has the schema's JSON type (list, string, boolean, object)",
        why: "a wrong type breaks every typed client that reads the object",
        source: "kube-openapi pkg/validation/validate/type.go; apiextensions-apiserver (k8s 1.36)",
        phases: &[C, U, S],
        eval: meta::wrong_json_type,
    },
    Rule {
        id: "T2",
        tier: Tier::Upstream,
        field: "spec.registrySources, spec.registrySources.{insecure,blocked,allowed}Registries[i]",
        check: "on update, a value of the wrong type that is left unchanged still fails the CEL rule on it (R1, R2), which cannot evaluate",
        why: "ratcheting drops the unchanged type error, then the CEL rule runs on the value and errors; only a rule that evaluates to false is ratcheted",
        source: "apiextensions-apiserver pkg/apiserver/schema/cel/validation.go (validateExpressions); apiserver pkg/cel/common/values.go (UnstructuredToVal)",
        phases: &[U],
        eval: registry_sources::cel_rule_cannot_evaluate,
    },
    Rule {
        id: "E1",
        tier: Tier::Upstream,
        field: "spec.imageStreamImportMode, status.imageStreamImportMode",
        check: "the mode is \"\", Legacy or PreserveOriginal (case-sensitive)",
        why: "the CRD enum",
        source: "openshift/api config/v1 types_image.go (ImageStreamImportMode enum)",
        phases: &[C, U, S],
        eval: meta::import_mode_not_supported,
    },
    Rule {
        id: "R1",
        tier: Tier::Upstream,
        field: "spec.registrySources",
        check: "blockedRegistries and allowedRegistries are not both present (even as [])",
        why: "the machine-config operator refuses to render registries with both lists",
        source: "openshift/api config/v1 types_image.go CEL has(blockedRegistries) ? !has(allowedRegistries)",
        phases: &[C, U],
        eval: registry_sources::blocked_and_allowed_both_set,
    },
    Rule {
        id: "R2",
        tier: Tier::Upstream,
        field: "spec.registrySources.{insecure,blocked,allowed}Registries[i]",
        check: "each entry is host[:port][/path] or *.domain, without tag, digest, scheme or space",
        why: "a tagged or digest entry makes /etc/containers/policy.json invalid on every node",
        source: "openshift/api PR #2787 (4.23) CEL matches(); MCO sourceRegex",
        phases: &[C, U],
        eval: registry_sources::scope_is_malformed,
    },
    Rule {
        id: "R3",
        tier: Tier::Upstream,
        field: "spec.registrySources.{insecure,blocked,allowed}Registries[i]",
        check: "no entry is empty",
        why: "empty entries break hosted control plane node bootstrap",
        source: "openshift/api PR #2787 (minLength: 1)",
        phases: &[C, U],
        eval: registry_sources::scope_is_empty,
    },
    Rule {
        id: "R4",
        tier: Tier::Upstream,
        field: "spec.registrySources.{insecure,blocked,allowed}Registries[i]",
        check: "no entry is longer than 256 characters",
        why: "the schema limit, sized from fleet telemetry",
        source: "openshift/api PR #2787 (maxLength: 256)",
        phases: &[C, U],
        eval: registry_sources::scope_is_too_long,
    },
    Rule {
        id: "R5",
        tier: Tier::Upstream,
        field: "spec.registrySources.{insecure,blocked,allowed}Registries",
        check: "no list has more than 1024 entries",
        why: "the schema limit, sized from fleet telemetry",
        source: "openshift/api PR #2787 (maxItems: 1024)",
        phases: &[C, U],
        eval: registry_sources::scope_list_too_long,
    },
    Rule {
        id: "R6",
        tier: Tier::Upstream,
        field: "spec.registrySources.containerRuntimeSearchRegistries",
        check: "the list, when present, is not empty",
        why: "the schema requires at least one item",
        source: "openshift/api config/v1 types_image.go (MinItems=1)",
        phases: &[C, U],
        eval: registry_sources::search_list_is_empty,
    },
    Rule {
        id: "R7",
        tier: Tier::Upstream,
        field: "spec.registrySources.containerRuntimeSearchRegistries[i]",
        check: "no entry repeats (listType=set)",
        why: "a set list must not hold duplicates",
        source: "apiextensions-apiserver pkg/apiserver/schema/listtype/validation.go",
        phases: &[C, U],
        eval: registry_sources::search_registry_repeats,
    },
    Rule {
        id: "P1",
        tier: Tier::Protective,
        field: "spec.registrySources.containerRuntimeSearchRegistries[i]",
        check: "each entry is hostname[:port] (IPv6 allowed): no scheme, path, wildcard, tag or digest",
        why: "CRI-O refuses a registries.conf with a bad unqualified-search-registries entry: no pod starts on any node",
        source: "containers/image sysregistriesv2 (unqualified-search-registries must match DomainRegexp)",
        phases: &[C, U],
        eval: registry_sources::search_registry_is_not_a_host,
    },
    Rule {
        id: "P2",
        tier: Tier::Protective,
        field: "spec.allowedRegistriesForImport[i].domainName",
        check: "no domainName has two or more colons",
        why: "openshift-apiserver fails to build its registry whitelist and cannot start",
        source: "openshift-apiserver pkg/image/apis/image/validation/whitelist/whitelister.go",
        phases: &[C, U],
        eval: import::domain_name_has_too_many_colons,
    },
    Rule {
        id: "P3",
        tier: Tier::Protective,
        field: "spec.allowedRegistriesForImport[i].domainName",
        check: "every entry has a non-empty domainName",
        why: "an empty entry matches nothing but makes the list restrictive: every external import is refused",
        source: "openshift-apiserver whitelister.go",
        phases: &[C, U],
        eval: import::domain_name_is_missing,
    },
    Rule {
        id: "P4",
        tier: Tier::Protective,
        field: "spec.externalRegistryHostnames[i]",
        check: "each entry is hostname[:port]",
        why: "the first entry becomes the host of every ImageStream's public pull spec",
        source: "openshift/api types_image.go doc; openshift-apiserver imagestream strategy.go",
        phases: &[C, U],
        eval: hosts::external_hostname_is_not_a_host,
    },
    Rule {
        id: "P5",
        tier: Tier::Protective,
        field: "spec.additionalTrustedCA.name",
        check: "the name, when non-empty, is a DNS-1123 subdomain (a ConfigMap name)",
        why: "no ConfigMap can have another name: the CA bundle is silently never loaded",
        source: "openshift kube-apiserver customresourcevalidation helpers (ValidateConfigMapReference)",
        phases: &[C, U],
        eval: meta::trusted_ca_name_is_invalid,
    },
    Rule {
        id: "P6",
        tier: Tier::Protective,
        field: "status.internalRegistryHostname, status.externalRegistryHostnames[i]",
        check: "on a status write, each hostname is hostname[:port]",
        why: "the first external hostname becomes the host of every ImageStream's public pull spec",
        source: "openshift/api types_image.go doc; openshift-apiserver imagestream strategy.go",
        phases: &[S],
        eval: hosts::status_hostname_is_not_a_host,
    },
    Rule {
        id: "W1",
        tier: Tier::Warning,
        field: "spec.registrySources.allowedRegistries",
        check: "a non-empty allow-list covers every release registry (quay.io, registry.redhat.io)",
        why: "release payload and operator images fail to pull",
        source: "openshift-docs images-configuration-allowed.adoc WARNING",
        phases: &[C, U],
        eval: registry_sources::allow_list_misses_release_registry,
    },
    Rule {
        id: "W2",
        tier: Tier::Warning,
        field: "spec.registrySources.allowedRegistries",
        check: "a non-empty allow-list covers the internal registry",
        why: "pods cannot pull images pushed to the internal registry",
        source: "openshift-docs images-configuration-shortname.adoc NOTE",
        phases: &[C, U],
        eval: registry_sources::allow_list_misses_internal_registry,
    },
    Rule {
        id: "W3",
        tier: Tier::Warning,
        field: "spec.registrySources.blockedRegistries[i]",
        check: "no entry blocks a release registry, the internal registry or the release payload (the release image's repository and its namespace)",
        why: "operator pods go to ImagePullBackOff; MCO silently drops an entry that covers the release image's repository, so it blocks nothing",
        source: "openshift-docs images-configuration-blocked.adoc; MCO getValidBlockedAndAllowedRegistries",
        phases: &[C, U],
        eval: registry_sources::block_list_blocks_release,
    },
    Rule {
        id: "W4",
        tier: Tier::Warning,
        field: "spec.registrySources.insecureRegistries[i]",
        check: "with an allow-list, every insecure registry is also allowed",
        why: "an insecure registry that is not allowed can never be pulled from",
        source: "openshift-docs images-configuration-allowed.adoc NOTE",
        phases: &[C, U],
        eval: registry_sources::insecure_not_allowed,
    },
    Rule {
        id: "W5",
        tier: Tier::Warning,
        field: "spec.registrySources.containerRuntimeSearchRegistries[i]",
        check: "no search registry is blocked or, with an allow-list, left out of it",
        why: "short names would resolve to a registry that every pull is refused from",
        source: "openshift-docs images-configuration-shortname.adoc WARNING",
        phases: &[C, U],
        eval: registry_sources::search_registry_blocked,
    },
    Rule {
        id: "W6",
        tier: Tier::Warning,
        field: "spec.registrySources.containerRuntimeSearchRegistries[i]",
        check: "no public registry (docker.io, index.docker.io, quay.io) resolves short names",
        why: "anyone can publish a look-alike image there (spoofing) and credentials may leak",
        source: "openshift-docs images-configuration-shortname.adoc WARNING",
        phases: &[C, U],
        eval: registry_sources::search_registry_is_public,
    },
    Rule {
        id: "W7",
        tier: Tier::Warning,
        field: "registrySources lists, externalRegistryHostnames, allowedRegistriesForImport",
        check: "no entry repeats",
        why: "harmless upstream, but usually a copy-paste mistake",
        source: "atomic lists accept duplicates",
        phases: &[C, U],
        eval: hosts::entry_repeats,
    },
    Rule {
        id: "W8",
        tier: Tier::Warning,
        field: "spec.registrySources.insecureRegistries[i]",
        check: "no scope is both insecure and blocked",
        why: "MCO writes both flags; the intent is unclear",
        source: "MCO registries.conf rendering",
        phases: &[C, U],
        eval: registry_sources::insecure_and_blocked,
    },
    Rule {
        id: "W9",
        tier: Tier::Warning,
        field: "registry scopes, search registries, allowedRegistriesForImport[i].domainName",
        check: "no host is a single label (no dot or port, not localhost)",
        why: "image references read a single first label as a docker.io namespace: the entry never matches",
        source: "distribution/reference normalize.go (splitDockerDomain)",
        phases: &[C, U],
        eval: hosts::single_label_host,
    },
    Rule {
        id: "W10",
        tier: Tier::Warning,
        field: "registry scopes, search registries, allowedRegistriesForImport[i].domainName",
        check: "hosts are lowercase",
        why: "registry matching compares bytes: an uppercase host never matches a reference",
        source: "containers/image and openshift-apiserver compare byte-wise",
        phases: &[C, U],
        eval: hosts::uppercase_host,
    },
    Rule {
        id: "W11",
        tier: Tier::Warning,
        field: "spec.registrySources.{insecure,blocked,allowed}Registries[i]",
        check: "no scope names index.docker.io or registry-1.docker.io",
        why: "references are normalized to docker.io, so these never match",
        source: "distribution/reference normalize.go",
        phases: &[C, U],
        eval: hosts::docker_hub_alias,
    },
    Rule {
        id: "W12",
        tier: Tier::Warning,
        field: "every host[:port]",
        check: "ports are 1-65535, labels at most 63 characters, hosts at most 253",
        why: "such a registry cannot exist; the entry never matches",
        source: "apimachinery IsValidPortNum; RFC 1123",
        phases: &[C, U],
        eval: hosts::limits_exceeded,
    },
    Rule {
        id: "W13",
        tier: Tier::Warning,
        field: "spec.registrySources.{insecure,blocked,allowed}Registries[i], allowedRegistriesForImport[i].domainName",
        check: "no wildcard covers a whole top-level domain (*.com) or, for imports, every registry (*)",
        why: "almost certainly broader than meant",
        source: "containers/image wildcard matching; openshift-apiserver IsWildcardMatch",
        phases: &[C, U],
        eval: hosts::wildcard_covers_tld,
    },
    Rule {
        id: "W14",
        tier: Tier::Warning,
        field: "spec.allowedRegistriesForImport[i].domainName",
        check: "no domainName has a path or scheme",
        why: "the whitelist matches hosts only: such an entry never matches (openshift/image-registry#322)",
        source: "openshift-apiserver whitelister.go",
        phases: &[C, U],
        eval: import::domain_name_has_path,
    },
    Rule {
        id: "W15",
        tier: Tier::Warning,
        field: "spec.allowedRegistriesForImport",
        check: "a non-empty list admits every release registry on port 443",
        why: "release and sample ImageStream imports fail; the samples operator degrades",
        source: "openshift/image-registry#322; cluster-samples-operator OCPBUGS-855",
        phases: &[C, U],
        eval: import::release_registry_not_importable,
    },
    Rule {
        id: "W16",
        tier: Tier::Warning,
        field: "spec.allowedRegistriesForImport[i]",
        check: "an insecure entry without a port also has a secure counterpart",
        why: "insecure: true without a port only matches port 80",
        source: "openshift-apiserver whitelister.go (WhitelistRegistry)",
        phases: &[C, U],
        eval: import::insecure_without_port,
    },
    Rule {
        id: "W17",
        tier: Tier::Warning,
        field: "spec.registrySources.{allowed,blocked}Registries",
        check: "the list is not `[]` (present but empty)",
        why: "an empty list has no effect on nodes but still counts for R1",
        source: "openshift/api CEL has() vs MCO len()",
        phases: &[C, U],
        eval: registry_sources::empty_allow_or_block_list,
    },
    Rule {
        id: "W18",
        tier: Tier::Warning,
        field: "any U or P rule",
        check: "an error on a value left unchanged by an update is reported as a warning",
        why: "lets an admin edit other fields of an object stored before a rule existed (CRD ratcheting)",
        source: "apiextensions-apiserver pkg/apiserver/validation/ratcheting.go",
        phases: &[U, S],
        eval: |_, _| {},
    },
    Rule {
        id: "W19",
        tier: Tier::Warning,
        field: "spec.allowedRegistriesForImport[i].domainName",
        check: "every * in a host glob is followed by . (*.example.com), or is the whole host",
        why: "* matches any characters, dots included: *example.com also admits evilexample.com",
        source: "openshift-apiserver whitelister.go (IsWildcardMatch)",
        phases: &[C, U],
        eval: import::glob_star_inside_a_label,
    },
];

#[cfg(test)]
mod tests;
