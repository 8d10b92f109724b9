//! The pure core: an admission request in, a verdict out. No I/O, no clock, no environment.
//!
//! ```text
//! AdmissionRequest -> which object? which phase? -> decode (type errors) -> rules -> ratchet
//!                  -> Verdict { allowed, Status (422 Invalid / 403 Forbidden), warnings, rules }
//! ```
//!
//! [`evaluate`] answers with everything (for `replay`); [`evaluate_bounded`] (the webhook's,
//! through [`crate::review`]) answers within fixed budgets whatever the size of the request:
//! at most [`MAX_WARNINGS`] warnings plus one summary, [`MAX_CAUSES`] causes, each text
//! clipped, and at most [`MAX_FINDINGS_PER_RULE`] findings kept per rule while judging (the
//! others are counted). Below the budgets both answer byte for byte the same.

use std::borrow::Cow;
use std::collections::HashSet;

use kube_core::response::{Status, StatusCause, StatusDetails};
use serde_json::Value;

use crate::envelope::{AdmissionRequest, Operation};
use crate::field::{ErrorKind, FieldError, go_quote};
use crate::grammar::hashed::fast_set;
use crate::image::{Decoded, Raw, decode_limited};
use crate::policy::Policy;
use crate::rules::{self, Ctx, Denial, Finding, Outcome, Phase, Rule, Unkept};
use crate::wire::{WireObject, WireReview};

/// The most warnings a bounded answer carries, besides one summary warning that counts the
/// others (`… and 12 more warnings of rules W4, W7`).
pub const MAX_WARNINGS: usize = 20;
/// Every warning of a bounded answer is shorter than this, in characters (the API server cuts
/// longer ones); a longer one is clipped and ends with `…`.
pub const MAX_WARNING_CHARS: usize = 256;
/// All the warnings of a bounded answer together, the summary included, are shorter than this,
/// in characters (the API server drops the warnings past 4096 characters in total).
pub const MAX_WARNINGS_TOTAL_CHARS: usize = 4096;
/// The most causes (`status.details.causes`) a bounded denial carries, and the most errors its
/// `status.message` lists; the message then ends with `and N more errors]`.
pub const MAX_CAUSES: usize = 25;
/// The longest, in bytes once JSON-encoded, that a cause's `message` or `field`, an error in
/// `status.message`, or the object's name in a bounded denial may be; a longer one is clipped
/// and ends with `…`.
pub const MAX_CAUSE_BYTES: usize = 512;
/// The most findings each rule keeps, with their text, in a bounded evaluation (the most type
/// errors the decoder builds, too); the others are counted, so that the memory of a request
/// does not grow with the number of errors in it.
pub const MAX_FINDINGS_PER_RULE: usize = 1024;

/// The API group of the Image resource.
pub const GROUP: &str = "config.openshift.io";
/// The version the rules are written for.
pub const VERSION: &str = "v1";
/// The kind.
pub const KIND: &str = "Image";
/// The resource.
pub const RESOURCE: &str = "images";

/// How a finding ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingClass {
    /// It denied the request.
    Error,
    /// A warning rule fired.
    Warning,
    /// An error was ratcheted into a warning.
    Ratcheted,
}

impl FindingClass {
    /// `error`, `warning` or `ratcheted`.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingClass::Error => "error",
            FindingClass::Warning => "warning",
            FindingClass::Ratcheted => "ratcheted",
        }
    }
}

/// The answer to one admission request.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// Whether the request was outside this webhook's object and passed unexamined.
    pub skipped: bool,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
    /// The Status sent to the API server.
    pub status: Status,
    /// Warnings, each `path: message`, without duplicates (from [`evaluate_bounded`]: within
    /// the budget, the last one perhaps a summary of the others).
    pub warnings: Vec<String>,
    /// The ids of the rules whose findings are in the response, in rule-book order (a
    /// ratcheted error is a W18 warning; `findings` keeps its own rule).
    pub rules: Vec<&'static str>,
    /// Every finding as `(rule id, class)`, for metrics (from [`evaluate_bounded`]: the ones
    /// kept, at most [`MAX_FINDINGS_PER_RULE`] per rule; [`Bounded::unlisted`] counts the
    /// others).
    pub findings: Vec<(&'static str, FindingClass)>,
}

impl Verdict {
    fn allow() -> Self {
        Verdict {
            allowed: true,
            skipped: false,
            skip_reason: None,
            status: Status::success().with_code(200),
            warnings: Vec::new(),
            rules: Vec::new(),
            findings: Vec::new(),
        }
    }

    fn skip(reason: String) -> Self {
        Verdict {
            skipped: true,
            skip_reason: Some(reason),
            ..Verdict::allow()
        }
    }
}

/// Why a request cannot be judged at all (as opposed to being invalid).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// CREATE or UPDATE without `object`.
    MissingObject,
    /// UPDATE without `oldObject`.
    MissingOldObject,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::MissingObject => {
                f.write_str("request.object is required for CREATE and UPDATE")
            }
            RequestError::MissingOldObject => {
                f.write_str("request.oldObject is required for UPDATE")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// A verdict within the budgets of the webhook's answer ([`evaluate_bounded`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Bounded {
    /// The verdict: its status and warnings are the answer's, budgets applied; its `rules` are
    /// every rule that fired; its `findings` list the findings kept (at most
    /// [`MAX_FINDINGS_PER_RULE`] per rule).
    pub verdict: Verdict,
    /// `(rule id, class, how many)` of the findings that `verdict.findings` does not list.
    pub unlisted: Vec<(&'static str, FindingClass, usize)>,
}

/// Judges one admission request, and answers with every error and warning (`replay`).
pub fn evaluate(request: &AdmissionRequest, policy: &Policy) -> Result<Verdict, RequestError> {
    evaluate_tree(request, policy, false).map(|b| b.verdict)
}

/// Judges one admission request within fixed budgets of memory and answer size (the
/// webhook's): see [`MAX_WARNINGS`], [`MAX_CAUSES`] and [`MAX_FINDINGS_PER_RULE`]. An answer
/// within the budgets is the one [`evaluate`] gives.
pub fn evaluate_bounded(
    request: &AdmissionRequest,
    policy: &Policy,
) -> Result<Bounded, RequestError> {
    evaluate_tree(request, policy, true)
}

/// Judges a review that [`crate::wire`] decoded in one pass, within the budgets of
/// [`evaluate_bounded`]: the same verdict as [`evaluate_bounded`] on the same review decoded
/// leniently, or `None` when a rule needed more of an object than the one pass kept (see
/// [`Raw::parts`]): then the review must be decoded leniently.
pub fn evaluate_wire(
    review: &WireReview<'_>,
    policy: &Policy,
) -> Result<Option<Bounded>, RequestError> {
    let objects = Objects {
        object: review.object.as_ref().map(Source::Wire),
        old_object: review.old_object.as_ref().map(Source::Wire),
    };
    evaluate_with(&review.request, objects, policy, true)
        .map(|(bounded, complete)| complete.then_some(bounded))
}

fn evaluate_tree(
    request: &AdmissionRequest,
    policy: &Policy,
    bounded: bool,
) -> Result<Bounded, RequestError> {
    let objects = Objects {
        object: request.object.as_ref().map(Source::Tree),
        old_object: request.old_object.as_ref().map(Source::Tree),
    };
    // A tree answers every question: the answer is complete.
    evaluate_with(request, objects, policy, bounded).map(|(bounded, _)| bounded)
}

/// An object of a request as the engine reads it: decoded into a tree (the lenient path), or
/// decoded in one pass.
#[derive(Clone, Copy)]
enum Source<'r> {
    Tree(&'r Value),
    Wire(&'r WireObject<'r>),
}

/// The objects of a request (its own are not read: `request.object` is `None` in a review
/// decoded in one pass).
#[derive(Clone, Copy)]
struct Objects<'r> {
    object: Option<Source<'r>>,
    old_object: Option<Source<'r>>,
}

impl<'r> Source<'r> {
    /// `apiVersion` and `kind`, `""` when absent or not strings.
    fn api_version_and_kind(self) -> (&'r str, &'r str) {
        match self {
            Source::Tree(value) => {
                let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("");
                (text("apiVersion"), text("kind"))
            }
            Source::Wire(object) => (&object.api_version, &object.kind),
        }
    }

    fn raw(self) -> Raw<'r> {
        match self {
            Source::Tree(value) => Raw::tree(value),
            Source::Wire(object) => Raw::parts(object.spec, object.status),
        }
    }

    /// The Image, keeping at most `limit` type errors: decoded from a tree, or as the one-pass
    /// decoder left it (with no type error).
    fn decode(self, limit: usize) -> Cow<'r, Decoded> {
        match self {
            Source::Tree(value) => Cow::Owned(decode_limited(value, limit)),
            Source::Wire(object) => Cow::Borrowed(&object.decoded),
        }
    }
}

/// The verdict, and whether every question the rules asked of the objects was answered (see
/// [`Raw::parts`]).
fn evaluate_with(
    request: &AdmissionRequest,
    objects: Objects<'_>,
    policy: &Policy,
    bounded: bool,
) -> Result<(Bounded, bool), RequestError> {
    let phase = match judged_phase(request, objects) {
        Ok(phase) => phase,
        Err(reason) => {
            let skipped = Bounded {
                verdict: Verdict::skip(reason),
                unlisted: Vec::new(),
            };
            return Ok((skipped, true));
        }
    };
    let empty = Value::Object(serde_json::Map::new());
    let (new_source, old_source) = judged_objects(objects, phase, &empty)?;
    let limit = if bounded {
        MAX_FINDINGS_PER_RULE
    } else {
        usize::MAX
    };
    let new = new_source.decode(limit);
    // The old object's type errors are never reported: count them, build none.
    let old = old_source.map(|o| o.decode(0));
    let (new_raw, old_raw) = (new_source.raw(), old_source.map(Source::raw));
    // RULEBOOK section 5: the object's name (on DELETE the old object's), else request.name.
    let name = new
        .image
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(&request.name);
    let ctx = Ctx {
        phase,
        name,
        new: &new.image,
        old: old.as_ref().map(|o| &o.image),
        new_raw: &new_raw,
        old_raw: old_raw.as_ref(),
        type_errors: &new.errors,
        omitted_type_errors: &new.omitted,
        policy,
        shared: Default::default(),
    };
    let (findings, unkept) = rules::run_limited(&ctx, limit);
    let complete = !new_raw.missed() && !old_raw.as_ref().is_some_and(Raw::missed);
    Ok((verdict(&findings, &unkept, ctx.name, bounded), complete))
}

/// The phase a request is judged in, or why it passes unexamined: another resource, CONNECT,
/// or a subresource other than `status`.
fn judged_phase(request: &AdmissionRequest, objects: Objects<'_>) -> Result<Phase, String> {
    if let Some(reason) = foreign(request, objects) {
        return Err(reason);
    }
    match (request.operation, request.sub_resource.as_str()) {
        (Operation::Connect, _) => Err("CONNECT is not validated".to_owned()),
        (Operation::Create, "") => Ok(Phase::Create),
        (Operation::Update, "") => Ok(Phase::Update),
        (Operation::Update, "status") => Ok(Phase::Status),
        (Operation::Delete, "") => Ok(Phase::Delete),
        (_, sub) => Err(format!("subresource {sub:?} is not validated")),
    }
}

/// The object judged and, on UPDATE, the old one. On DELETE the object judged is the old
/// object, or `empty` when the request has none.
fn judged_objects<'r>(
    objects: Objects<'r>,
    phase: Phase,
    empty: &'r Value,
) -> Result<(Source<'r>, Option<Source<'r>>), RequestError> {
    let object = || objects.object.ok_or(RequestError::MissingObject);
    Ok(match phase {
        Phase::Delete => (objects.old_object.unwrap_or(Source::Tree(empty)), None),
        Phase::Create => (object()?, None),
        Phase::Update | Phase::Status => (
            object()?,
            Some(objects.old_object.ok_or(RequestError::MissingOldObject)?),
        ),
    })
}

/// Why a request is not about the Image `config.openshift.io/v1` (never denied, RULEBOOK
/// "Other resources are never denied").
fn foreign(request: &AdmissionRequest, objects: Objects<'_>) -> Option<String> {
    let object = objects
        .object
        .or(objects.old_object)
        .map(Source::api_version_and_kind);
    let api_version = object.map_or("", |(api_version, _)| api_version);
    let object_group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if let Some(kind) = &request.kind {
        // A hand-written `kind` may lack its group: take it from the resource, else the object.
        let group = match (kind.group.as_str(), &request.resource) {
            ("", Some(resource)) => resource.group.as_str(),
            ("", None) => object_group,
            (group, _) => group,
        };
        if (group, kind.version.as_str(), kind.name.as_str()) != (GROUP, VERSION, KIND) {
            return Some(format!(
                "kind {} {} is not {GROUP}/{VERSION} {KIND}",
                group_version(group, &kind.version),
                kind.name
            ));
        }
        return None;
    }
    if let Some(resource) = &request.resource {
        if (
            resource.group.as_str(),
            resource.version.as_str(),
            resource.name.as_str(),
        ) != (GROUP, VERSION, RESOURCE)
        {
            return Some(format!(
                "resource {} {} is not {GROUP}/{VERSION} {RESOURCE}",
                group_version(&resource.group, &resource.version),
                resource.name
            ));
        }
        return None;
    }
    let (_, kind) = object?;
    let expected = format!("{GROUP}/{VERSION}");
    (api_version != expected || kind != KIND)
        .then(|| format!("object {api_version} {kind} is not {expected} {KIND}"))
}

/// `group/version` as an `apiVersion` reads: the core group has no name (`v1`).
fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// A distinct warning of a verdict.
struct Warning {
    text: String,
    /// The position in the rule book of the rule that found it: the order of importance
    /// (a ratcheted error, whose rule is a U or P rule, comes before every W rule).
    priority: usize,
    /// The position of the rule the answer names (W18 for a ratcheted error).
    shown: usize,
}

/// What the findings of one evaluation add up to, before the answer is shaped.
struct Tally<'f> {
    /// The errors kept, with their rules, in finding order.
    errors: Vec<(&'static Rule, &'f FieldError)>,
    /// By position in [`rules::RULES`]: whether the answer names the rule (W18 for a
    /// ratcheted error).
    fired: Vec<bool>,
    /// The distinct warnings kept, in finding order.
    warnings: Vec<Warning>,
    /// Every finding kept, as `(rule id, class)`.
    findings: Vec<(&'static str, FindingClass)>,
    /// `(rule id, class, how many)` of the findings counted without being kept.
    unlisted: Vec<(&'static str, FindingClass, usize)>,
    /// How many errors were counted without being kept.
    unkept_errors: usize,
    /// How many warnings and ratcheted errors were counted without being kept.
    unkept_warnings: usize,
    /// By position in [`rules::RULES`]: whether a warning named after the rule was not kept.
    unkept_warning_rules: Vec<bool>,
    /// The position of [`rules::W18`], the rule named for a ratcheted error.
    w18: usize,
}

impl<'f> Tally<'f> {
    fn new() -> Self {
        Tally {
            errors: Vec::new(),
            fired: vec![false; rules::RULES.len()],
            warnings: Vec::new(),
            findings: Vec::new(),
            unlisted: Vec::new(),
            unkept_errors: 0,
            unkept_warnings: 0,
            unkept_warning_rules: vec![false; rules::RULES.len()],
            w18: rules::rule_position(&rules::W18),
        }
    }

    /// The position in [`rules::RULES`] of the rule the answer names for a finding of the rule
    /// at `position`: its own, or W18 for a ratcheted error.
    fn shown(&self, position: usize, class: FindingClass) -> usize {
        if class == FindingClass::Ratcheted {
            self.w18
        } else {
            position
        }
    }

    /// Counts the findings kept; a warning whose text repeats an earlier one is shown once.
    fn add_kept(&mut self, findings: &'f [Finding]) {
        let mut seen = fast_set(findings.len());
        for finding in findings {
            let class = match &finding.outcome {
                Outcome::Error(e) => {
                    self.errors.push((finding.rule, e));
                    FindingClass::Error
                }
                Outcome::Warning { .. } => FindingClass::Warning,
                Outcome::Ratcheted(_) => FindingClass::Ratcheted,
            };
            let position = rules::rule_position(finding.rule);
            let shown = self.shown(position, class);
            if let Some(slot) = self.fired.get_mut(shown) {
                *slot = true;
            }
            self.findings.push((finding.rule.id, class));
            if let Some(text) = finding.warning_text()
                && seen.insert(text.clone())
            {
                self.warnings.push(Warning {
                    text,
                    priority: position,
                    shown,
                });
            }
        }
    }

    /// Counts the findings [`rules::run_limited`] counted without keeping them.
    fn add_unkept(&mut self, unkept: &Unkept) {
        for (rule, errors, warnings, ratcheted) in unkept.iter() {
            let position = rules::rule_position(rule);
            for (count, class) in [
                (errors, FindingClass::Error),
                (warnings, FindingClass::Warning),
                (ratcheted, FindingClass::Ratcheted),
            ] {
                if count == 0 {
                    continue;
                }
                let shown = self.shown(position, class);
                self.unlisted.push((rule.id, class, count));
                if let Some(slot) = self.fired.get_mut(shown) {
                    *slot = true;
                }
                if class == FindingClass::Error {
                    self.unkept_errors = self.unkept_errors.saturating_add(count);
                } else {
                    self.unkept_warnings = self.unkept_warnings.saturating_add(count);
                    if let Some(slot) = self.unkept_warning_rules.get_mut(shown) {
                        *slot = true;
                    }
                }
            }
        }
    }
}

/// Turns findings (and the count of those not kept) into the verdict the API server reads;
/// `bounded` applies the budgets of the answer.
fn verdict(findings: &[Finding], unkept: &Unkept, name: &str, bounded: bool) -> Bounded {
    let mut tally = Tally::new();
    tally.add_kept(findings);
    tally.add_unkept(unkept);
    let mut v = Verdict::allow();
    v.findings = tally.findings;
    v.rules = rules::RULES
        .iter()
        .zip(&tally.fired)
        .filter(|(_, f)| **f)
        .map(|(r, _)| r.id)
        .collect();
    v.warnings = if bounded {
        budget_warnings(
            tally.warnings,
            tally.unkept_warnings,
            tally.unkept_warning_rules,
        )
    } else {
        tally.warnings.into_iter().map(|w| w.text).collect()
    };
    if !tally.errors.is_empty() || tally.unkept_errors > 0 {
        v.allowed = false;
        let name = if bounded {
            clip_json(name, MAX_CAUSE_BYTES)
        } else {
            Cow::Borrowed(name)
        };
        v.status = match tally
            .errors
            .iter()
            .find(|(r, _)| r.denial == Denial::Forbidden)
        {
            Some((_, e)) => forbidden_status(&name, e),
            None => invalid_status(&tally.errors, tally.unkept_errors, &name, bounded),
        };
    }
    Bounded {
        verdict: v,
        unlisted: tally.unlisted,
    }
}

/// The 403 `Forbidden` status of a request refused whatever the object ([`Denial::Forbidden`]).
fn forbidden_status(name: &str, error: &FieldError) -> Status {
    Status::failure(
        &format!(
            "{RESOURCE}.{GROUP} {} is forbidden: {}",
            go_quote(name),
            error.detail
        ),
        "Forbidden",
    )
    .with_code(403)
    .with_details(details(name, RESOURCE, Vec::new()))
}

/// The 422 `Invalid` status of an invalid object, as `NewInvalid` builds it: the errors in the
/// message without exact duplicates (`ToAggregate`), one cause per error; `bounded` keeps at
/// most [`MAX_CAUSES`] of each, clipped, and counts the others (`unkept` too) in the message.
fn invalid_status(
    errors: &[(&'static Rule, &FieldError)],
    unkept: usize,
    name: &str,
    bounded: bool,
) -> Status {
    // ToAggregate: exact duplicates removed, order kept.
    let mut texts: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for (_, e) in errors {
        let text = e.to_string();
        if seen.insert(text.clone()) {
            texts.push(text);
        }
    }
    let (shown, more, causes) = if bounded {
        let shown = texts.len().min(MAX_CAUSES);
        let more = (texts.len() - shown).saturating_add(unkept);
        let causes = errors.iter().take(MAX_CAUSES).map(|(_, e)| *e);
        (shown, more, causes.collect::<Vec<_>>())
    } else {
        (texts.len(), 0, errors.iter().map(|(_, e)| *e).collect())
    };
    let message = invalid_message(texts.get(..shown).unwrap_or(&[]), more, name, bounded);
    let causes = causes.into_iter().map(|e| cause(e, bounded)).collect();
    Status::failure(&message, "Invalid")
        .with_code(422)
        .with_details(details(name, KIND, causes))
}

/// `Image.config.openshift.io "name" is invalid: …`: the one error, or the list of `texts` in
/// brackets followed by how many `more` errors there are.
fn invalid_message(texts: &[String], more: usize, name: &str, bounded: bool) -> String {
    let mut items: Vec<Cow<'_, str>> = texts
        .iter()
        .map(|t| {
            if bounded {
                clip_json(t, MAX_CAUSE_BYTES)
            } else {
                Cow::Borrowed(t.as_str())
            }
        })
        .collect();
    if more > 0 {
        items.push(Cow::Owned(if items.is_empty() {
            format!("{more} errors")
        } else {
            format!("and {more} more errors")
        }));
    }
    match (items.as_slice(), more) {
        ([one], 0) => format!("{KIND}.{GROUP} {} is invalid: {one}", go_quote(name)),
        (many, _) => format!(
            "{KIND}.{GROUP} {} is invalid: [{}]",
            go_quote(name),
            many.join(", ")
        ),
    }
}

/// The cause of one error: its type, its message without the path, and its field (empty for a
/// `Forbidden` error on the object itself); `bounded` clips the texts.
fn cause(error: &FieldError, bounded: bool) -> StatusCause {
    let message = error.body();
    let field = if error.kind == ErrorKind::Forbidden && error.path.is_root() {
        String::new()
    } else {
        error.path.to_string()
    };
    let (message, field) = if bounded {
        (clip_owned(message), clip_owned(field))
    } else {
        (message, field)
    };
    StatusCause {
        reason: error.kind.cause_type().to_owned(),
        message,
        field,
    }
}

/// The warnings of a bounded answer: all of them when they fit the budgets; otherwise the most
/// important first (rule-book order, then field order), each clipped to fewer than
/// [`MAX_WARNING_CHARS`] characters, as many as fit [`MAX_WARNINGS`] and
/// [`MAX_WARNINGS_TOTAL_CHARS`], then one summary: `… and N more warnings of rules W4, W7`.
fn budget_warnings(
    warnings: Vec<Warning>,
    unkept: usize,
    mut dropped_rules: Vec<bool>,
) -> Vec<String> {
    let chars = |s: &str| s.chars().count();
    let fits = unkept == 0
        && warnings.len() <= MAX_WARNINGS
        && warnings.iter().all(|w| chars(&w.text) < MAX_WARNING_CHARS)
        && warnings.iter().map(|w| chars(&w.text)).sum::<usize>() < MAX_WARNINGS_TOTAL_CHARS;
    if fits {
        return warnings.into_iter().map(|w| w.text).collect();
    }
    let mut order: Vec<usize> = (0..warnings.len()).collect();
    order.sort_by_key(|&i| warnings.get(i).map(|w| w.priority));
    // Room is left for the summary, whose length is not known yet.
    let room = MAX_WARNINGS_TOTAL_CHARS - MAX_WARNING_CHARS;
    let mut out = Vec::new();
    let mut total = 0;
    let mut dropped = unkept;
    let mut full = false;
    for w in order.into_iter().filter_map(|i| warnings.get(i)) {
        if !full {
            let text = clip_chars(&w.text, MAX_WARNING_CHARS - 1);
            let n = chars(&text);
            if out.len() < MAX_WARNINGS && total + n < room {
                total += n;
                out.push(text.into_owned());
                continue;
            }
            full = true;
        }
        dropped += 1;
        if let Some(slot) = dropped_rules.get_mut(w.shown) {
            *slot = true;
        }
    }
    if dropped > 0 {
        let ids: Vec<&str> = rules::RULES
            .iter()
            .zip(&dropped_rules)
            .filter(|(_, d)| **d)
            .map(|(r, _)| r.id)
            .collect();
        let summary = match ids.as_slice() {
            [one] if dropped == 1 => format!("… and 1 more warning of rule {one}"),
            [one] => format!("… and {dropped} more warnings of rule {one}"),
            many => format!("… and {dropped} more warnings of rules {}", many.join(", ")),
        };
        out.push(clip_chars(&summary, MAX_WARNING_CHARS - 1).into_owned());
    }
    out
}

/// `s` cut to at most `max` characters, the last one `…` when it was cut.
fn clip_chars(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some(_) => {
            let keep = max.saturating_sub(1);
            let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
            Cow::Owned(format!("{}…", s.get(..end).unwrap_or("")))
        }
    }
}

/// [`clip_json`] to [`MAX_CAUSE_BYTES`] of an owned text: the text itself when it fits.
fn clip_owned(s: String) -> String {
    match clip_json(&s, MAX_CAUSE_BYTES) {
        Cow::Borrowed(_) => s,
        Cow::Owned(clipped) => clipped,
    }
}

/// `s` cut so that its JSON encoding takes at most `max` bytes, ending with `…` when it was cut.
pub(crate) fn clip_json(s: &str, max: usize) -> Cow<'_, str> {
    const ELLIPSIS: &str = "…";
    let encoded = |c: char| match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    };
    // Most texts are short and plain: counted by bytes (a character's encoded length is its
    // UTF-8 length unless JSON escapes it), or not at all when even all escapes would fit.
    if s.len().saturating_mul(6) <= max {
        return Cow::Borrowed(s);
    }
    let plain_total: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            b if b < 0x20 => 6,
            _ => 1,
        })
        .sum();
    if plain_total <= max {
        return Cow::Borrowed(s);
    }
    let mut total = 0usize;
    let mut cut = None;
    for (i, c) in s.char_indices() {
        total += encoded(c);
        if cut.is_none() && total + ELLIPSIS.len() > max {
            cut = Some(i);
        }
        if total > max {
            let end = cut.unwrap_or(i);
            return Cow::Owned(format!("{}{ELLIPSIS}", s.get(..end).unwrap_or("")));
        }
    }
    Cow::Borrowed(s)
}

fn details(name: &str, kind: &str, causes: Vec<StatusCause>) -> StatusDetails {
    StatusDetails {
        name: name.to_owned(),
        group: GROUP.to_owned(),
        kind: kind.to_owned(),
        uid: String::new(),
        causes,
        retry_after_seconds: 0,
    }
}
