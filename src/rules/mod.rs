//! The rules: one index, [`RULES`], in rule-book order, that the engine runs and `rules` prints.
//!
//! Each [`Rule`] is defined in its area file (`meta`, `registry_sources`, `import`, `hosts`,
//! `mirrors` for the rules that need the cluster context)
//! beside its check function; W18, which ratcheting produces, is defined here. A rule names the
//! phases it applies to, whether its errors ratchet ([`Ratcheting`]) and how its denial is
//! answered ([`Denial`]). A check appends [`Finding`]s and never returns early across fields:
//! the API server shows every error at once.
//! After all checks ran, [`run`] ratchets (on UPDATE an error whose value, whole list, or whole
//! `registrySources` is unchanged becomes warning W18) and sorts findings into field order.

mod hosts;
mod import;
mod meta;
mod mirrors;
mod registry_sources;
pub mod table;

use std::fmt::Write as _;

use crate::field::{FieldError, Path, Segment};
use crate::image::{Image, Raw, RegistrySources, Spec, StrList};
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
    /// Whether its errors are ratcheted on UPDATE.
    pub ratchet: Ratcheting,
    /// How a request its error denies is answered.
    pub denial: Denial,
    eval: fn(&Ctx<'_>, &mut Out),
}

/// Whether a rule's error on a value that an UPDATE leaves unchanged becomes warning [`W18`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ratcheting {
    /// An error on an unchanged value (its list, or its whole `registrySources`) is ratcheted:
    /// the U and P rules that judge the object's content (CRD ratcheting).
    Unchanged,
    /// Never ratcheted: the warnings, the metadata rules (which compare with the old object by
    /// definition), D1 (no update to compare), and T2 (a CEL rule that cannot evaluate is an
    /// error even on an unchanged value).
    Never,
}

/// How the API server answers a request that an error of a rule denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// 422 `Invalid`: the object is invalid, one cause per error (every rule but D1; a warning
    /// rule never denies).
    Invalid,
    /// 403 `Forbidden`: the request is refused whatever the object (D1).
    Forbidden,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Rule {
    /// Whether an error of this rule is ratcheted on UPDATE ([`Ratcheting::Unchanged`]).
    pub fn ratchets(&self) -> bool {
        self.ratchet == Ratcheting::Unchanged
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
    pub new_raw: &'a Raw<'a>,
    /// The old object as sent, on UPDATE.
    pub old_raw: Option<&'a Raw<'a>>,
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
    /// Per `insecureRegistries` position, whether the entry is an R2 scope: R2 reports the
    /// others and W4 probes only these (each check reads the whole entry).
    insecure_scopes: std::cell::OnceCell<Vec<bool>>,
    /// Per `containerRuntimeSearchRegistries` position, whether the entry is a
    /// `hostname[:port]`: P1 reports the others and W5 probes only these.
    search_hosts: std::cell::OnceCell<Vec<bool>>,
}

impl<'a> Ctx<'a> {
    fn spec(&self) -> Option<&'a Spec> {
        self.new.spec.as_ref()
    }

    /// The node model of the new object in the policy's cluster context (mirror sets, release
    /// image), built once per evaluation on first use: the rules that speak of what a node does
    /// ask it, as `explain` does. `None` when a `registrySources`
    /// list is longer than `maxItems`: R5 denies the object, no node ever gets it, and a hostile
    /// list must not make every review build a model of it.
    fn node(&self) -> Option<&crate::node::Node<'a>> {
        self.shared
            .node
            .get_or_init(|| {
                self.registry_sources()
                    .is_none_or(registry_sources::within_max_items)
                    .then(|| {
                        crate::node::Node::with_context(
                            self.new,
                            self.policy.settings(),
                            self.policy.context(),
                        )
                    })
            })
            .as_ref()
    }

    /// [`Shared::insecure_scopes`].
    fn insecure_scopes(&self) -> &[bool] {
        self.shared.insecure_scopes.get_or_init(|| {
            let list = self.registry_sources().and_then(|rs| rs.insecure.as_ref());
            validity(list, crate::grammar::scope::is_valid_scope)
        })
    }

    /// [`Shared::search_hosts`].
    fn search_hosts(&self) -> &[bool] {
        self.shared.search_hosts.get_or_init(|| {
            let list = self.registry_sources().and_then(|rs| rs.search.as_ref());
            validity(list, crate::grammar::host::is_host_port)
        })
    }

    /// Whether the new object decoded without a type error: then its typed form says what its
    /// JSON does (a value is absent or `null` exactly when its field is `None`), and a rule can
    /// read it without decoding the JSON into a tree.
    fn well_typed(&self) -> bool {
        self.type_errors.is_empty() && self.omitted_type_errors.is_empty()
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
            Outcome::Warning { path, message } => {
                // Sized once: `format!` guesses from the literal parts and grows the text.
                let mut text = String::with_capacity(64 + message.len());
                let _ = write!(text, "{path}: ");
                text.push_str(message);
                Some(text)
            }
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
    new_raw: &'r Raw<'r>,
    old_raw: &'r Raw<'r>,
    /// One comparison per unit: a 1024-item list compared once, not once per error in it.
    unchanged: crate::grammar::hashed::FastMap<Path, bool>,
}

impl Ratchet<'_> {
    /// Whether the unit of an error at `path` is the same in the old object.
    fn unchanged(&mut self, path: &Path) -> bool {
        let (new_raw, old_raw) = (self.new_raw, self.old_raw);
        *self
            .unchanged
            .entry(ratchet_unit(path))
            .or_insert_with_key(|unit| new_raw.same_at(old_raw, unit))
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
            .map(|(rule, [e, w, r])| (*rule, *e, *w, *r))
    }
}

/// Runs every rule of `phase`, ratchets against the old object on UPDATE, and returns the
/// findings in field order (then rule order), a deterministic order.
pub fn run(ctx: &Ctx<'_>) -> Vec<Finding> {
    run_limited(ctx, usize::MAX).0
}

/// [`run`], where each rule keeps at most `limit` findings (its first ones) and the others are
/// only counted, ratcheted or not, in [`Unkept`]: the memory of an evaluation stays bounded
/// whatever the size of the lists, while the verdict and its counts stay right.
pub fn run_limited(ctx: &Ctx<'_>, limit: usize) -> (Vec<Finding>, Unkept) {
    let ratchet = match (ctx.phase, ctx.old_raw) {
        (Phase::Update | Phase::Status, Some(old_raw)) => Some(Ratchet {
            new_raw: ctx.new_raw,
            old_raw,
            unchanged: crate::grammar::hashed::fast_map(0),
        }),
        _ => None,
    };
    let mut out = Out {
        rule: RULES[0],
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
        .position(|r| std::ptr::eq(*r, rule))
        .or_else(|| RULES.iter().position(|r| r.id == rule.id))
        .unwrap_or(usize::MAX)
}

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id).copied()
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

/// W18, the rule of ratcheting: it has no check of its own, [`run`] turns an error of a rule that
/// [`Rule::ratchets`] into a finding that the answer shows under this rule.
pub static W18: Rule = Rule {
    id: "W18",
    tier: Tier::Warning,
    field: "any U or P rule",
    check: "an error on a value left unchanged by an update is reported as a warning",
    why: "lets an admin edit other fields of an object stored before a rule existed (CRD ratcheting)",
    source: "apiextensions-apiserver pkg/apiserver/validation/ratcheting.go",
    phases: &[U, S],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: |_, _| {},
};

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
/// `valid` of each item of `list`, by position (`false` for a `null` item).
fn validity(list: Option<&StrList>, valid: fn(&str) -> bool) -> Vec<bool> {
    list.into_iter()
        .flatten()
        .map(|item| item.as_deref().is_some_and(valid))
        .collect()
}

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

/// Every rule, in rule-book order: the order of the findings on one field, of the `rules`
/// command and of the generated documents. Each rule is defined beside its check.
pub static RULES: &[&Rule] = &[
    // First: findings on one field are reported in this order, and the CRD handler's ObjectMeta
    // check runs before the admission plugin that says `must be cluster`.
    &meta::M5,
    &meta::M1,
    &meta::M2,
    &meta::M3,
    &meta::M4,
    &meta::D1,
    &meta::S1,
    &meta::S2,
    &meta::T1,
    &registry_sources::T2,
    &meta::E1,
    &registry_sources::R1,
    &registry_sources::R2,
    &registry_sources::R3,
    &registry_sources::R4,
    &registry_sources::R5,
    &registry_sources::R6,
    &registry_sources::R7,
    &registry_sources::P1,
    &import::P2,
    &import::P3,
    &hosts::P4,
    &meta::P5,
    &hosts::P6,
    &mirrors::P7,
    &registry_sources::W1,
    &registry_sources::W2,
    &registry_sources::W3,
    &registry_sources::W4,
    &registry_sources::W5,
    &registry_sources::W6,
    &hosts::W7,
    &registry_sources::W8,
    &hosts::W9,
    &hosts::W10,
    &hosts::W11,
    &hosts::W12,
    &hosts::W13,
    &import::W14,
    &import::W15,
    &import::W16,
    &registry_sources::W17,
    &W18,
    &import::W19,
    &mirrors::W21,
    &mirrors::W22,
    &mirrors::W23,
    &mirrors::W24,
    &mirrors::W25,
];

#[cfg(test)]
mod tests;
