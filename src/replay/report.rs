//! What a run reports: one [`Outcome`] per judged document or failed input, the [`Summary`]
//! counts, the [`Conclusion`] for the exit status, the [`Report`] and its text, JSON and JUnit
//! writers, and [`oc_message`], what `oc apply` prints for a denial.

use kube_core::response::Status;
use serde::Serialize;
use serde_json::json;

use crate::input::InputError;

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
    pub(super) fn error(source: String, error: String) -> Self {
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

    pub(super) fn input_error(source: String, error: InputError) -> Self {
        let mut o = Outcome::error(source, error.to_string());
        o.error_detail = error.detail().map(str::to_owned);
        o
    }

    pub(super) fn internal(source: String) -> Self {
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
    /// [`Options::fail_on_warn`](super::Options::fail_on_warn), also a warning.
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
    /// Whether a warning fails the run ([`Options::fail_on_warn`](super::Options::fail_on_warn)).
    #[serde(skip)]
    pub fail_on_warn: bool,
}

/// The counts of a report; `unmatched` expectations count as mismatches.
pub(super) fn summarize(results: &[Outcome], unmatched: usize) -> Summary {
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
