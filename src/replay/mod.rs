//! `replay`: judge AdmissionReview fixtures or plain Image YAML from disk with the same engine the
//! webhook runs, compare with recorded expectations, and report in text, JSON or JUnit.
//!
//! Inputs are files and directories (recursive; `.json`, `.yaml`, `.yml`) or `-` for stdin. A
//! document may be a full AdmissionReview, an AdmissionReview `request` alone, a bare Image
//! (CREATE unless told otherwise, UPDATE against `--old`), a `List`/`ImageList`, or several
//! YAML documents. An input that cannot be read or parsed gets its own result with `error` (one
//! line; a syntax error's snippet, headed by the file name, is in `error_detail`).
//!
//! Inputs are read and parsed first, in order; then the requests go to the [`Judge`], up to
//! [`Options::concurrency`] at once (`replay --server`), and the report lists the results in
//! input order, as a sequential run would.

use std::collections::BTreeSet;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use kube_core::response::Status;
use serde::Serialize;
use serde_json::{Value, json};

mod apiserver;
mod inputs;

pub use inputs::{Input, InputError, ReadError, ReadErrorKind, load_inputs, parse_documents};

use apiserver::{Unit, bare_image_request, expand};

use crate::engine::{RequestError, Verdict, evaluate};
use crate::envelope::{
    AdmissionRequest, EnvelopeError, Operation, parse_request, parse_review, strictness_note,
};
use crate::policy::Policy;

/// How bare Image documents are replayed, how requests are sent to the judge, and what fails
/// the run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The operation for bare Images (default CREATE, or UPDATE when `old` is given).
    pub operation: Option<Operation>,
    /// The old object for bare Images (`--old`).
    pub old: Option<Value>,
    /// Expectations from `--expect` files.
    pub expectations: Vec<Expectation>,
    /// Requests judged at once [default: 0, read as 1: one after the other]. Results are
    /// reported in input order whatever the value.
    pub concurrency: usize,
    /// Stop sending once [`FAIL_FAST_AFTER`] requests in a row found the judge unreachable;
    /// the requests not sent are reported as errors [default: off].
    pub fail_fast: bool,
    /// A warning fails the run (exit 1), as a denial does [default: off].
    pub fail_on_warn: bool,
}

/// With [`Options::fail_fast`], how many requests in a row must find the judge unreachable
/// before the rest are not sent.
pub const FAIL_FAST_AFTER: usize = 3;

/// A config file as read: the Image, and the oldObject when the file is an AdmissionReview
/// that carries one.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    /// The Image object.
    pub image: Value,
    /// An AdmissionReview's `oldObject`.
    pub old: Option<Value>,
}

/// Why a file holds no usable config (see [`read_image`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file cannot be read or parsed.
    Input(InputError),
    /// An AdmissionReview in it is malformed.
    Review(EnvelopeError),
    /// An AdmissionReview in it carries no object (a DELETE).
    NoObject,
    /// It holds no object at all.
    NoImage,
    /// It holds this many objects, where one Image is needed.
    Many(usize),
    /// The object is not a JSON object.
    NotAnObject,
    /// The object is of this other kind.
    OtherKind(String),
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigFileError::Input(e) => std::fmt::Display::fmt(e, f),
            ConfigFileError::Review(e) => std::fmt::Display::fmt(e, f),
            ConfigFileError::NoObject => f.write_str("the AdmissionReview carries no object"),
            ConfigFileError::NoImage => f.write_str("holds no Image"),
            ConfigFileError::Many(n) => write!(f, "holds {n} objects; one Image is needed"),
            ConfigFileError::NotAnObject => f.write_str("the Image is not a JSON object"),
            ConfigFileError::OtherKind(kind) => write!(f, "holds a {kind}, not an Image"),
        }
    }
}

impl std::error::Error for ConfigFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigFileError::Input(e) => Some(e),
            ConfigFileError::Review(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads an Image, a one-item `ImageList`/`List`, or an AdmissionReview (its object, and its
/// oldObject).
pub fn read_image(input: &Input) -> Result<ConfigFile, ConfigFileError> {
    let mut images = Vec::new();
    let mut old = None;
    for doc in parse_documents(input).map_err(ConfigFileError::Input)? {
        match doc.get("kind").and_then(Value::as_str) {
            Some("List" | "ImageList") => images.extend(
                doc.get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .cloned(),
            ),
            Some("AdmissionReview") => {
                let review = parse_review(doc).map_err(ConfigFileError::Review)?;
                match review.request.object {
                    Some(object) => images.push(object),
                    None => return Err(ConfigFileError::NoObject),
                }
                old = review.request.old_object.or(old);
            }
            _ => images.push(doc),
        }
    }
    let image = match images.len() {
        1 => images.pop().ok_or(ConfigFileError::NoImage)?,
        0 => return Err(ConfigFileError::NoImage),
        n => return Err(ConfigFileError::Many(n)),
    };
    if !image.is_object() {
        return Err(ConfigFileError::NotAnObject);
    }
    match image.get("kind").and_then(Value::as_str) {
        None | Some("Image") => Ok(ConfigFile { image, old }),
        Some(kind) => Err(ConfigFileError::OtherKind(kind.to_owned())),
    }
}

/// Reads the old object for `--old` (see [`read_image`]).
pub fn old_object_from(input: &Input) -> Result<Value, ConfigFileError> {
    read_image(input).map(|c| c.image)
}

/// What a fixture expects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectation {
    /// Match by uid.
    pub uid: Option<String>,
    /// Match by source.
    pub source: Option<String>,
    /// The verdict.
    pub allowed: Option<bool>,
    /// The status code.
    pub code: Option<u16>,
    /// The set of `(field, reason)` of the causes.
    pub causes: Option<BTreeSet<(String, String)>>,
    /// The set of warnings.
    pub warnings: Option<BTreeSet<String>>,
    /// The set of rule ids.
    pub rules: Option<BTreeSet<String>>,
}

/// Why a suite file, or a recorded response, holds no usable expectation: which entry (for a
/// suite), and what is wrong with it. Modelled on globset's `Error { glob, kind }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectationError {
    /// The index of the suite entry at fault, when one is.
    entry: Option<usize>,
    /// What is wrong.
    kind: ExpectationErrorKind,
}

/// The kinds of [`ExpectationError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpectationErrorKind {
    /// The suite file cannot be read or parsed.
    Input(InputError),
    /// A suite object without an `expectations` list.
    NoExpectations,
    /// A suite that is neither a list nor an object.
    NotAList,
    /// An entry that is not an object.
    NotAnObject,
    /// `allowed` is not a boolean.
    Allowed,
    /// `code` is not a number (of an HTTP status).
    Code,
    /// `causes` is not a list.
    Causes,
    /// `warnings` is not a list of strings.
    Warnings,
    /// `rules` is not a list of ids.
    Rules,
    /// A suite entry with neither `uid` nor `source`.
    NoKey,
}

impl ExpectationError {
    fn new(kind: ExpectationErrorKind) -> Self {
        ExpectationError { entry: None, kind }
    }

    fn at(self, entry: usize) -> Self {
        ExpectationError {
            entry: Some(entry),
            ..self
        }
    }

    /// The index of the suite entry at fault, when one is.
    pub fn entry(&self) -> Option<usize> {
        self.entry
    }

    /// What is wrong.
    pub fn kind(&self) -> &ExpectationErrorKind {
        &self.kind
    }
}

impl fmt::Display for ExpectationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ExpectationErrorKind as K;
        if let Some(i) = self.entry {
            write!(f, "entry {i}: ")?;
        }
        match &self.kind {
            K::Input(e) => std::fmt::Display::fmt(e, f),
            K::NoExpectations => {
                f.write_str("a suite is a list of expectations, or {expectations: [...]}")
            }
            K::NotAList => f.write_str("a suite is a list of expectations"),
            K::NotAnObject => f.write_str("an expectation must be an object"),
            K::Allowed => f.write_str("allowed must be a boolean"),
            K::Code => f.write_str("code must be a number"),
            K::Causes => f.write_str("causes must be a list"),
            K::Warnings => f.write_str("warnings must be a list of strings"),
            K::Rules => f.write_str("rules must be a list of ids"),
            K::NoKey => f.write_str("needs a uid or a source"),
        }
    }
}

impl std::error::Error for ExpectationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ExpectationErrorKind::Input(e) => Some(e),
            _ => None,
        }
    }
}

impl Expectation {
    /// The expectation carried by a recorded AdmissionReview `response`.
    pub fn from_response(response: &Value) -> Result<Self, ExpectationError> {
        let mut e = Expectation::from_fields(response)?;
        // A recorded denial lists all of its causes; none recorded means none.
        if e.allowed == Some(false) && e.causes.is_none() {
            e.causes = Some(BTreeSet::new());
        }
        Ok(e)
    }

    /// Reads a suite file: a YAML/JSON list of entries (or `{expectations: [...]}`) each with
    /// `uid` or `source`, and any of `allowed`, `code`, `causes`, `warnings`, `rules`.
    pub fn parse_suite(input: &Input) -> Result<Vec<Self>, ExpectationError> {
        use ExpectationErrorKind as K;
        let fail = ExpectationError::new;
        let mut out = Vec::new();
        for doc in parse_documents(input).map_err(|e| fail(K::Input(e)))? {
            let entries = match &doc {
                Value::Array(items) => items.clone(),
                Value::Object(o) => o
                    .get("expectations")
                    .and_then(Value::as_array)
                    .cloned()
                    .ok_or_else(|| fail(K::NoExpectations))?,
                _ => return Err(fail(K::NotAList)),
            };
            for (i, entry) in entries.iter().enumerate() {
                let mut e = Expectation::from_fields(entry).map_err(|e| e.at(i))?;
                e.uid = entry.get("uid").and_then(Value::as_str).map(str::to_owned);
                e.source = entry
                    .get("source")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if e.uid.is_none() && e.source.is_none() {
                    return Err(fail(K::NoKey).at(i));
                }
                if let Some(rules) = entry.get("rules") {
                    e.rules = Some(string_set(rules).ok_or_else(|| fail(K::Rules).at(i))?);
                }
                out.push(e);
            }
        }
        Ok(out)
    }

    fn from_fields(v: &Value) -> Result<Self, ExpectationError> {
        use ExpectationErrorKind as K;
        let fail = ExpectationError::new;
        let obj = v.as_object().ok_or_else(|| fail(K::NotAnObject))?;
        let allowed = match obj.get("allowed") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(fail(K::Allowed)),
        };
        let status = obj.get("status");
        let code = match status.and_then(|s| s.get("code")).or(obj.get("code")) {
            None => None,
            Some(c) => Some(
                c.as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .ok_or_else(|| fail(K::Code))?,
            ),
        };
        let causes_value = status
            .and_then(|s| s.get("details"))
            .and_then(|d| d.get("causes"))
            .or(obj.get("causes"));
        let causes = match causes_value {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|c| {
                        let text =
                            |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                        (text("field"), text("reason"))
                    })
                    .collect(),
            ),
            Some(_) => return Err(fail(K::Causes)),
        };
        let warnings = match obj.get("warnings") {
            None | Some(Value::Null) => None,
            Some(w) => Some(string_set(w).ok_or_else(|| fail(K::Warnings))?),
        };
        Ok(Expectation {
            allowed,
            code,
            causes,
            warnings,
            ..Expectation::default()
        })
    }

    /// How a verdict differs from this expectation; empty when it meets it. Rule ids are
    /// compared only when `rules_known` (a live webhook does not report them).
    pub fn compare(&self, verdict: &Verdict, rules_known: bool) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(allowed) = self.allowed.filter(|a| *a != verdict.allowed) {
            out.push(format!(
                "allowed: expected {allowed}, got {}",
                verdict.allowed
            ));
        }
        if let Some(code) = self.code.filter(|c| *c != 0 && *c != verdict.status.code) {
            out.push(format!(
                "code: expected {code}, got {}",
                verdict.status.code
            ));
        }
        if let Some(want) = &self.causes {
            let got: BTreeSet<(String, String)> = verdict
                .status
                .details
                .iter()
                .flat_map(|d| &d.causes)
                .map(|c| (c.field.clone(), c.reason.clone()))
                .collect();
            diff(&mut out, "causes", want, &got, |(f, r)| {
                format!("{r} at {f:?}")
            });
        }
        if let Some(want) = &self.warnings {
            let got: BTreeSet<String> = verdict.warnings.iter().cloned().collect();
            diff(&mut out, "warnings", want, &got, |w| format!("{w:?}"));
        }
        if let Some(want) = self.rules.as_ref().filter(|_| rules_known) {
            let got: BTreeSet<String> = verdict.rules.iter().map(|r| (*r).to_owned()).collect();
            diff(&mut out, "rules", want, &got, String::clone);
        }
        out
    }
}

/// Reports what `want` has that `got` lacks ("missing") and the reverse ("unexpected").
fn diff<T: Ord>(
    out: &mut Vec<String>,
    what: &str,
    want: &BTreeSet<T>,
    got: &BTreeSet<T>,
    show: impl Fn(&T) -> String,
) {
    let list = |items: std::collections::btree_set::Difference<'_, T>| {
        items.map(&show).collect::<Vec<_>>().join(", ")
    };
    let missing = list(want.difference(got));
    if !missing.is_empty() {
        out.push(format!("{what}: missing {missing}"));
    }
    let unexpected = list(got.difference(want));
    if !unexpected.is_empty() {
        out.push(format!("{what}: unexpected {unexpected}"));
    }
}

fn string_set(v: &Value) -> Option<BTreeSet<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// One result: one judged document, or one input that failed.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `<path>[#<doc index>]`.
    pub source: String,
    /// The request uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<&'static str>,
    /// Whether it was allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
    /// Whether it was outside the webhook's object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<bool>,
    /// The Status as sent to the API server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Warnings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
    /// Rule ids that fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<&'static str>>,
    /// How the verdict differs from the expectation, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatches: Option<Vec<String>>,
    /// Why the input could not be judged, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a syntax error, the lines of the input around it (several lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<String>,
    /// Leniencies, what the API server would change before admission, and skip reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Whether `error` is an internal error (a bug), not bad input.
    #[serde(skip)]
    pub internal: bool,
}

impl Outcome {
    fn error(source: String, error: String) -> Self {
        Outcome {
            source,
            uid: None,
            operation: None,
            allowed: None,
            skipped: None,
            status: None,
            warnings: None,
            rules: None,
            mismatches: None,
            error: Some(error),
            error_detail: None,
            notes: Vec::new(),
            internal: false,
        }
    }

    fn input_error(source: String, error: InputError) -> Self {
        let mut o = Outcome::error(source, error.message);
        o.error_detail = error.detail;
        o
    }

    fn internal(source: String) -> Self {
        let mut o = Outcome::error(
            source,
            "internal error: the engine panicked on this input".to_owned(),
        );
        o.internal = true;
        o
    }

    /// Whether this result makes the run fail: a mismatch when expectations exist, a denial
    /// when none do, or an error. (With `--fail-on-warn` a warning does too: see
    /// [`Report::fails`].)
    pub fn fails(&self) -> bool {
        match &self.mismatches {
            Some(m) => !m.is_empty(),
            None => self.error.is_some() || self.allowed == Some(false),
        }
    }

    /// Whether the verdict carries a warning.
    pub fn warned(&self) -> bool {
        self.warnings.as_ref().is_some_and(|w| !w.is_empty())
    }
}

/// The counts at the end of a report.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Results in all.
    pub total: usize,
    /// Allowed (not skipped).
    pub allowed: usize,
    /// Denied.
    pub denied: usize,
    /// Skipped (not the webhook's object).
    pub skipped: usize,
    /// Inputs that could not be read or parsed, or requests that could not be judged.
    pub errors: usize,
    /// Results whose verdict differs from an expectation, plus expectations that matched no input.
    pub mismatches: usize,
}

/// How a replay run went, for the exit status (the command chooses the codes). Ordered from
/// best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
// Not `non_exhaustive`: the command maps every conclusion to an exit status in one
// exhaustive match, which a new conclusion must join.
pub enum Conclusion {
    /// Every input was allowed; with expectations, every one was met.
    Pass,
    /// A denial; with expectations, a mismatch or an expectation that matched no input; with
    /// [`Options::fail_on_warn`], also a warning.
    Fail,
    /// An input could not be read or parsed, or a request could not be judged.
    Error,
    /// The engine panicked on an input (a bug).
    Internal,
}

/// A whole replay run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// One per document or failed input.
    pub results: Vec<Outcome>,
    /// Counts.
    pub summary: Summary,
    /// Expectations that matched no input.
    #[serde(skip)]
    pub unmatched: Vec<String>,
    /// Whether a warning fails the run ([`Options::fail_on_warn`]).
    #[serde(skip)]
    pub fail_on_warn: bool,
}

/// Why a judge gave no verdict, by whose fault. The judge's own error is kept whole: this
/// type's `Display` and `source()` are those of the judge's error.
#[derive(Debug)]
#[non_exhaustive]
pub enum JudgeError {
    /// No answer came: the connection, the TLS handshake or the call failed or timed out.
    /// Nothing is known about the request; [`Options::fail_fast`] counts these.
    Unreachable(Box<dyn std::error::Error + Send + Sync>),
    /// The judge answered, but not with a usable verdict; or it cannot judge this request.
    Refuse(Box<dyn std::error::Error + Send + Sync>),
}

impl JudgeError {
    /// The judge's own error.
    fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        match self {
            JudgeError::Unreachable(e) | JudgeError::Refuse(e) => e.as_ref(),
        }
    }
}

impl fmt::Display for JudgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        std::fmt::Display::fmt(self.inner(), f)
    }
}

impl std::error::Error for JudgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner().source()
    }
}

/// Who judges a request: the in-process engine ([`Local`]) or a live webhook
/// ([`crate::remote::Remote`]). Shared by the threads of [`Options::concurrency`].
pub trait Judge: Sync {
    /// The verdict on one request, or why there is none.
    fn judge(&self, request: &AdmissionRequest) -> Result<Verdict, JudgeError>;

    /// Whether verdicts name the rules that fired (a webhook's response does not).
    fn knows_rules(&self) -> bool {
        true
    }
}

/// What the engine says of a bare object applied with `oc apply`: a CREATE, or an UPDATE of
/// `old`, after what the API server does before admission (told in `notes`).
#[derive(Debug, Clone)]
pub struct ObjectVerdict {
    /// `CREATE` or `UPDATE`.
    pub operation: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What the API server would change first, and why a request was skipped.
    pub notes: Vec<String>,
}

/// Why a bare object cannot be judged at all (as opposed to being denied).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectError {
    /// The document is not a JSON object.
    NotAnObject,
    /// The request built for it cannot be judged.
    Request(RequestError),
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::NotAnObject => f.write_str("the document is not a JSON object"),
            ObjectError::Request(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for ObjectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ObjectError::NotAnObject => None,
            ObjectError::Request(e) => Some(e),
        }
    }
}

/// Judges a bare object as `replay` judges a file holding it (`explain` asks this first).
pub fn judge_object(
    object: Value,
    old: Option<Value>,
    policy: &Policy,
) -> Result<ObjectVerdict, ObjectError> {
    let options = Options {
        old,
        ..Options::default()
    };
    let mut notes = Vec::new();
    let request = bare_image_request(object, &options, 0, &mut notes)?;
    let verdict = evaluate(&request, policy).map_err(ObjectError::Request)?;
    notes.extend(verdict.skip_reason.iter().map(|r| format!("skipped: {r}")));
    Ok(ObjectVerdict {
        operation: request.operation.as_str(),
        verdict,
        notes,
    })
}

/// The in-process engine.
#[derive(Debug, Clone, Copy)]
pub struct Local<'a>(pub &'a Policy);

impl Judge for Local<'_> {
    fn judge(&self, request: &AdmissionRequest) -> Result<Verdict, JudgeError> {
        evaluate(request, self.0).map_err(|e| JudgeError::Refuse(Box::new(e)))
    }
}

/// Told how far a run has come; called on the caller's thread only.
pub trait Progress {
    /// `total` requests are about to be judged.
    fn start(&self, total: usize) {
        let _ = total;
    }

    /// One more request was judged (or failed).
    fn advance(&self) {}

    /// Every request was judged, or the rest will not be sent.
    fn finish(&self) {}
}

/// No progress shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

/// Replays every input.
pub fn replay(inputs: &[Input], options: &Options, judge: &dyn Judge) -> Report {
    replay_with(inputs, options, judge, &Silent)
}

/// Replays every input, telling `progress` as requests are judged. Inputs are read and
/// parsed first, in order; then up to [`Options::concurrency`] requests are judged at once;
/// the report lists results in input order either way.
pub fn replay_with(
    inputs: &[Input],
    options: &Options,
    judge: &dyn Judge,
    progress: &dyn Progress,
) -> Report {
    let jobs = prepare_all(inputs, options);
    let pending: Vec<&AdmissionRequest> = jobs
        .iter()
        .filter_map(|j| match j {
            Job::Pending(p) => Some(&p.request),
            Job::Done(_) => None,
        })
        .collect();
    let mut verdicts = judge_all(&pending, judge, options, progress).into_iter();
    let knows_rules = judge.knows_rules();
    let mut results: Vec<Outcome> = jobs
        .into_iter()
        .map(|job| match job {
            Job::Done(outcome) => outcome,
            Job::Pending(p) => {
                let judged = verdicts.next().unwrap_or(Judged::Panicked);
                finish(p, judged, knows_rules)
            }
        })
        .collect();
    let unmatched = apply_expectations(&mut results, &options.expectations, knows_rules);
    let summary = summarize(&results, unmatched.len());
    Report {
        results,
        summary,
        unmatched,
        fail_on_warn: options.fail_on_warn,
    }
}

/// Reads every input into jobs, in order: a document per job (`<path>#<i>` when the input
/// holds several), or one failed result for an input that cannot be parsed.
fn prepare_all(inputs: &[Input], options: &Options) -> Vec<Job> {
    let mut jobs = Vec::new();
    for input in inputs {
        match parse_documents(input) {
            Err(e) => jobs.push(Job::Done(Outcome::input_error(input.source.clone(), e))),
            Ok(docs) => {
                let mut units = Vec::new();
                for doc in docs {
                    expand(doc, &mut units);
                }
                let many = units.len() > 1;
                for (i, unit) in units.into_iter().enumerate() {
                    let source = if many {
                        format!("{}#{i}", input.source)
                    } else {
                        input.source.clone()
                    };
                    let ordinal = jobs.len();
                    jobs.push(prepare_guarded(source, unit, options, ordinal));
                }
            }
        }
    }
    jobs
}

/// Compares every judged result with the expectations that name it (by uid or by source);
/// returns what to report for the expectations that matched no input.
fn apply_expectations(
    results: &mut [Outcome],
    expectations: &[Expectation],
    knows_rules: bool,
) -> Vec<String> {
    let mut unmatched = Vec::new();
    for expectation in expectations {
        let mut matched = false;
        for result in results.iter_mut().filter(|r| r.error.is_none()) {
            let by_uid = expectation.uid.is_some() && expectation.uid == result.uid;
            let by_source = expectation.source.as_deref() == Some(result.source.as_str());
            if by_uid || by_source {
                matched = true;
                if let Some(verdict) = verdict_of(result) {
                    result
                        .mismatches
                        .get_or_insert_with(Vec::new)
                        .extend(expectation.compare(&verdict, knows_rules));
                }
            }
        }
        if !matched {
            let key = expectation.uid.as_ref().map_or_else(
                || format!("source {:?}", expectation.source.as_deref().unwrap_or("")),
                |u| format!("uid {u:?}"),
            );
            unmatched.push(format!("no input matched the expectation for {key}"));
        }
    }
    unmatched
}

/// The counts of a report; `unmatched` expectations count as mismatches.
fn summarize(results: &[Outcome], unmatched: usize) -> Summary {
    let mut summary = Summary {
        total: results.len(),
        ..Summary::default()
    };
    for r in results {
        match (r.error.is_some(), r.skipped, r.allowed) {
            (true, _, _) => summary.errors += 1,
            (false, Some(true), _) => summary.skipped += 1,
            (false, _, Some(true)) => summary.allowed += 1,
            _ => summary.denied += 1,
        }
        if r.mismatches.as_ref().is_some_and(|m| !m.is_empty()) {
            summary.mismatches += 1;
        }
    }
    summary.mismatches += unmatched;
    summary
}

/// A verdict rebuilt from a result, for comparisons.
fn verdict_of(result: &Outcome) -> Option<Verdict> {
    Some(Verdict {
        allowed: result.allowed?,
        skipped: result.skipped.unwrap_or(false),
        skip_reason: None,
        status: result.status.clone()?,
        warnings: result.warnings.clone().unwrap_or_default(),
        rules: result.rules.clone().unwrap_or_default(),
        findings: Vec::new(),
    })
}

/// One unit of work: already a result, or a request waiting for the judge.
enum Job {
    Done(Outcome),
    Pending(Pending),
}

/// A request ready for the judge, with what its result will carry besides the verdict.
struct Pending {
    source: String,
    request: AdmissionRequest,
    notes: Vec<String>,
    recorded: Option<Value>,
}

/// What the judge made of one request.
enum Judged {
    Verdict(Box<Verdict>),
    Error(JudgeError),
    Panicked,
    /// Not sent ([`Options::fail_fast`]).
    NotSent,
}

fn prepare_guarded(source: String, unit: Unit, options: &Options, ordinal: usize) -> Job {
    let fallback = source.clone();
    catch_unwind(AssertUnwindSafe(|| prepare(source, unit, options, ordinal)))
        .unwrap_or_else(|_| Job::Done(Outcome::internal(fallback)))
}

/// Reads one unit into the request the API server would send.
fn prepare(source: String, unit: Unit, options: &Options, ordinal: usize) -> Job {
    let mut notes = Vec::new();
    let mut recorded = None;
    let request = match unit {
        Unit::Unknown(why) => return Job::Done(Outcome::error(source, why)),
        Unit::Review(doc) => match parse_review(doc.clone()) {
            Ok(review) => {
                // kube-core's strict decoder is consulted only to explain a leniency.
                if !review.notes.is_empty() {
                    notes.extend(review.notes);
                    notes.extend(strictness_note(&doc));
                }
                recorded = review.recorded_response;
                review.request
            }
            Err(e) => return Job::Done(Outcome::error(source, e.to_string())),
        },
        Unit::Request(doc) => match parse_request(doc, &mut notes) {
            Ok(request) => request,
            Err(e) => return Job::Done(Outcome::error(source, e.to_string())),
        },
        Unit::Image(image) => match bare_image_request(image, options, ordinal, &mut notes) {
            Ok(request) => request,
            Err(e) => return Job::Done(Outcome::error(source, e.to_string())),
        },
    };
    Job::Pending(Pending {
        source,
        request,
        notes,
        recorded,
    })
}

fn judge_guarded(judge: &dyn Judge, request: &AdmissionRequest) -> Judged {
    match catch_unwind(AssertUnwindSafe(|| judge.judge(request))) {
        Ok(Ok(verdict)) => Judged::Verdict(Box::new(verdict)),
        Ok(Err(e)) => Judged::Error(e),
        Err(_) => Judged::Panicked,
    }
}

/// Judges `requests`, up to `options.concurrency` at once; the answers are in the order of
/// `requests`.
fn judge_all(
    requests: &[&AdmissionRequest],
    judge: &dyn Judge,
    options: &Options,
    progress: &dyn Progress,
) -> Vec<Judged> {
    let total = requests.len();
    let mut answers: Vec<Option<Judged>> = std::iter::repeat_with(|| None).take(total).collect();
    let gate = Gate {
        fail_fast: options.fail_fast,
        in_a_row: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
    };
    progress.start(total);
    let workers = options.concurrency.clamp(1, total.max(1));
    if workers == 1 {
        for (i, request) in requests.iter().enumerate() {
            if gate.is_closed() {
                break;
            }
            let judged = gate.count(judge_guarded(judge, request));
            answers[i] = Some(judged);
            progress.advance();
        }
    } else {
        let next = AtomicUsize::new(0);
        let (sender, receiver) = mpsc::channel();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let sender = sender.clone();
                let (next, gate) = (&next, &gate);
                scope.spawn(move || {
                    while !gate.is_closed() {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(request) = requests.get(i) else {
                            break;
                        };
                        let judged = gate.count(judge_guarded(judge, request));
                        if sender.send((i, judged)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            for (i, judged) in receiver {
                if let Some(slot) = answers.get_mut(i) {
                    *slot = Some(judged);
                }
                progress.advance();
            }
        });
    }
    progress.finish();
    answers
        .into_iter()
        .map(|a| a.unwrap_or(Judged::NotSent))
        .collect()
}

/// Whether requests may still be sent: with `fail_fast`, not once [`FAIL_FAST_AFTER`]
/// answers in a row (in the order they came) found the judge unreachable. Shared by the
/// workers, so that none starts another request once the gate has closed.
struct Gate {
    fail_fast: bool,
    in_a_row: AtomicUsize,
    closed: AtomicBool,
}

impl Gate {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Counts one answer; returns it.
    fn count(&self, judged: Judged) -> Judged {
        if matches!(judged, Judged::Error(JudgeError::Unreachable(_))) {
            let in_a_row = self.in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
            if self.fail_fast && in_a_row >= FAIL_FAST_AFTER {
                self.closed.store(true, Ordering::SeqCst);
            }
        } else {
            self.in_a_row.store(0, Ordering::SeqCst);
        }
        judged
    }
}

/// The result of a judged request.
fn finish(pending: Pending, judged: Judged, knows_rules: bool) -> Outcome {
    let Pending {
        source,
        request,
        mut notes,
        recorded,
    } = pending;
    let verdict = match judged {
        Judged::Verdict(v) => *v,
        Judged::Error(e) => return Outcome::error(source, e.to_string()),
        Judged::Panicked => return Outcome::internal(source),
        Judged::NotSent => {
            return Outcome::error(
                source,
                format!(
                    "not sent: the webhook was unreachable {FAIL_FAST_AFTER} times in a row (--fail-fast)"
                ),
            );
        }
    };
    notes.extend(verdict.skip_reason.iter().map(|r| format!("skipped: {r}")));
    let mismatches = match recorded.as_ref().map(Expectation::from_response) {
        None => None,
        Some(Ok(expectation)) => Some(expectation.compare(&verdict, knows_rules)),
        Some(Err(e)) => Some(vec![format!("the recorded response cannot be read: {e}")]),
    };
    Outcome {
        source,
        uid: Some(request.uid),
        operation: Some(request.operation.as_str()),
        allowed: Some(verdict.allowed),
        skipped: Some(verdict.skipped),
        status: Some(verdict.status),
        warnings: Some(verdict.warnings),
        rules: Some(verdict.rules),
        mismatches,
        error: None,
        error_detail: None,
        notes,
        internal: false,
    }
}

impl Report {
    /// Whether `result` makes the run fail: [`Outcome::fails`], or with `fail_on_warn` a
    /// warning.
    pub fn fails(&self, result: &Outcome) -> bool {
        result.fails() || (self.fail_on_warn && result.warned())
    }

    /// How the run went, the worst that applies: an internal error, an input that cannot be
    /// read or judged, a failing result (a denial; with expectations, a mismatch; with
    /// `fail_on_warn`, also a warning), or none of these.
    pub fn conclusion(&self) -> Conclusion {
        if self.results.iter().any(|r| r.internal) {
            Conclusion::Internal
        } else if self.summary.errors > 0 {
            Conclusion::Error
        } else if !self.unmatched.is_empty() || self.results.iter().any(|r| self.fails(r)) {
            Conclusion::Fail
        } else {
            Conclusion::Pass
        }
    }

    /// The JSON document of `-o json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| json!({"error": e.to_string()}).to_string())
    }

    /// The human report of `-o text`: per input the verdict and, for a denial, what `oc apply`
    /// would print.
    pub fn to_text(&self, webhook_name: &str) -> String {
        let mut out = String::new();
        for r in &self.results {
            let verdict = match (&r.error, r.skipped, r.allowed) {
                (Some(e), _, _) => format!("ERROR: {e}"),
                (None, Some(true), _) => "SKIPPED".to_owned(),
                (None, _, Some(true)) => "ALLOWED".to_owned(),
                _ => "DENIED".to_owned(),
            };
            let op = r.operation.map(|o| format!(" ({o})")).unwrap_or_default();
            out.push_str(&format!("{}{op}: {verdict}\n", r.source));
            for line in r.error_detail.iter().flat_map(|d| d.lines()) {
                out.push_str(&format!("    {line}\n"));
            }
            if r.allowed == Some(false)
                && let Some(status) = &r.status
            {
                out.push_str(&format!(
                    "  {}\n",
                    oc_message(&r.source, r.operation, status, webhook_name)
                ));
            }
            for w in r.warnings.iter().flatten() {
                out.push_str(&format!("  Warning: {w}\n"));
            }
            for n in &r.notes {
                out.push_str(&format!("  note: {n}\n"));
            }
            for m in r.mismatches.iter().flatten() {
                out.push_str(&format!("  MISMATCH: {m}\n"));
            }
        }
        for u in &self.unmatched {
            out.push_str(&format!("MISMATCH: {u}\n"));
        }
        let warned = self.results.iter().filter(|r| r.warned()).count();
        if self.fail_on_warn && warned > 0 {
            out.push_str(&format!(
                "WARNINGS: {} with warnings, which fail the run (--fail-on-warn)\n",
                counted(warned, "result", "results")
            ));
        }
        let s = &self.summary;
        out.push_str(&format!(
            "{}: {} allowed, {} denied, {} skipped, {}, {}\n",
            counted(s.total, "result", "results"),
            s.allowed,
            s.denied,
            s.skipped,
            counted(s.errors, "error", "errors"),
            counted(s.mismatches, "mismatch", "mismatches"),
        ));
        out
    }

    /// A JUnit XML report: one test case per result. An error's message is one line; its
    /// detail (a syntax error's snippet) goes to the case's system-err.
    pub fn to_junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
        let mut suite = TestSuite::new("image-config-webhook replay");
        for r in &self.results {
            let status = if let Some(e) = &r.error {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(e.as_str());
                s
            } else if self.fails(r) {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let message = match &r.mismatches {
                    _ if !r.fails() => format!(
                        "warnings (--fail-on-warn): {}",
                        r.warnings
                            .iter()
                            .flatten()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    Some(m) => m.join("; "),
                    None => r
                        .status
                        .as_ref()
                        .map(|s| s.message.clone())
                        .unwrap_or_default(),
                };
                s.set_message(message);
                s
            } else if r.skipped == Some(true) {
                TestCaseStatus::skipped()
            } else {
                TestCaseStatus::success()
            };
            let mut case = TestCase::new(r.source.as_str(), status);
            case.set_classname("replay");
            if let Some(w) = r.warnings.as_ref().filter(|w| !w.is_empty()) {
                case.set_system_out(w.join("\n"));
            }
            if let Some(detail) = &r.error_detail {
                case.set_system_err(detail.as_str());
            }
            suite.add_test_case(case);
        }
        let mut report = JReport::new("image-config-webhook");
        report.add_test_suite(suite);
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- cannot render JUnit: {e} -->\n"))
    }
}

/// `1 result`, `2 results`.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What `oc apply` prints for a denial by this webhook.
pub fn oc_message(
    source: &str,
    operation: Option<&str>,
    status: &Status,
    webhook_name: &str,
) -> String {
    let reason = if status.reason.is_empty() {
        "BadRequest"
    } else {
        status.reason.as_str()
    };
    let action = match operation {
        Some("UPDATE") => "patching",
        Some("DELETE") => "deleting",
        _ => "creating",
    };
    format!(
        "Error from server ({reason}): error when {action} {source:?}: admission webhook {webhook_name:?} denied the request: {}",
        status.message
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    /// `count` bare Images named by their number, one input each.
    fn images(count: usize) -> Vec<Input> {
        (0..count)
            .map(|i| Input {
                source: format!("{i:02}.yaml"),
                text: Ok(format!(
                    "{{\"apiVersion\": \"config.openshift.io/v1\", \"kind\": \"Image\", \"metadata\": {{\"name\": \"cluster\"}}, \"spec\": {{\"registrySources\": {{\"blockedRegistries\": [\"r{i}.example.com\"]}}}}}}"
                )),
                json: false,
            })
            .collect()
    }

    /// The engine, answering later for earlier requests (so that answers arrive out of order).
    struct Slow<'a> {
        local: Local<'a>,
        calls: AtomicUsize,
    }

    impl Judge for Slow<'_> {
        fn judge(&self, request: &AdmissionRequest) -> Result<Verdict, JudgeError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(40u64.saturating_sub(4 * n as u64)));
            self.local.judge(request)
        }
    }

    /// Never reachable; counts the calls.
    struct Down(AtomicUsize);

    impl Judge for Down {
        fn judge(&self, _: &AdmissionRequest) -> Result<Verdict, JudgeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(JudgeError::Unreachable("cannot connect".into()))
        }
    }

    #[test]
    fn concurrent_results_are_the_sequential_ones_in_input_order() {
        let policy = Policy::default();
        let inputs = images(10);
        let sequential = replay(&inputs, &Options::default(), &Local(&policy));
        let slow = Slow {
            local: Local(&policy),
            calls: AtomicUsize::new(0),
        };
        let options = Options {
            concurrency: 4,
            ..Options::default()
        };
        let concurrent = replay(&inputs, &options, &slow);
        assert_eq!(concurrent.to_json(), sequential.to_json());
        assert_eq!(concurrent.conclusion(), sequential.conclusion());
        assert_eq!(slow.calls.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn fail_fast_sends_no_more_once_the_judge_was_unreachable_three_times_in_a_row() {
        for concurrency in [1, 4] {
            let down = Down(AtomicUsize::new(0));
            let options = Options {
                concurrency,
                fail_fast: true,
                ..Options::default()
            };
            let report = replay(&images(20), &options, &down);
            let sent = down.0.load(Ordering::SeqCst);
            assert!(
                (FAIL_FAST_AFTER..FAIL_FAST_AFTER + concurrency).contains(&sent),
                "{sent} sent at concurrency {concurrency}"
            );
            let not_sent = report
                .results
                .iter()
                .filter(|r| {
                    r.error
                        .as_deref()
                        .is_some_and(|e| e.starts_with("not sent"))
                })
                .count();
            assert_eq!(sent + not_sent, 20);
            assert_eq!(report.summary.errors, 20);
            assert_eq!(report.conclusion(), Conclusion::Error);
        }
        // Without it, every request is sent.
        let down = Down(AtomicUsize::new(0));
        let report = replay(&images(20), &Options::default(), &down);
        assert_eq!(down.0.load(Ordering::SeqCst), 20);
        assert_eq!(report.summary.errors, 20);
    }

    #[test]
    fn a_warning_fails_the_run_only_with_fail_on_warn() {
        let policy = Policy::default();
        let warned = Input {
            source: "quay.yaml".to_owned(),
            text: Ok("apiVersion: config.openshift.io/v1\nkind: Image\nmetadata: {name: cluster}\nspec: {registrySources: {blockedRegistries: [quay.io]}}\n".to_owned()),
            json: false,
        };
        let inputs = std::slice::from_ref(&warned);
        let report = replay(inputs, &Options::default(), &Local(&policy));
        assert!(report.results[0].warned());
        assert_eq!(report.conclusion(), Conclusion::Pass);
        let options = Options {
            fail_on_warn: true,
            ..Options::default()
        };
        assert_eq!(
            replay(inputs, &options, &Local(&policy)).conclusion(),
            Conclusion::Fail
        );
    }
}
