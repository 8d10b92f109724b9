//! What a run expects: [`Expectation`]s read from `--expect` suite files or from a recorded
//! AdmissionReview `response`, why one cannot be read ([`ExpectationError`]), how a verdict
//! differs from one, and matching them to a run's results.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use super::Outcome;
use crate::engine::Verdict;
use crate::input::{Input, InputError, parse_documents};

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
#[derive(Debug, Clone)]
pub struct ExpectationError {
    /// The index of the suite entry at fault, when one is.
    entry: Option<usize>,
    /// What is wrong.
    kind: ExpectationErrorKind,
}

/// The kinds of [`ExpectationError`].
#[derive(Debug, Clone)]
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

/// Compares every judged result with the expectations that name it (by uid or by source);
/// returns what to report for the expectations that matched no input.
pub(super) fn apply_expectations(
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
