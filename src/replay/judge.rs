//! Preparing and judging: each input's documents become the requests the API server would send
//! ([`apiserver`](super::apiserver) for bare Images), which go to a [`Judge`] (the in-process
//! engine, [`Local`], or a live webhook), up to [`Options::concurrency`] at once and with
//! [`Options::fail_fast`]'s gate, and come back as [`Outcome`]s in input order. Also
//! [`judge_object`], what `explain` asks first.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use serde_json::Value;

use super::apiserver::{Unit, bare_image_request, expand};
use super::{Expectation, FAIL_FAST_AFTER, Options, Outcome};
use crate::engine::{RequestError, Verdict, evaluate};
use crate::envelope::{AdmissionRequest, parse_request, parse_review, strictness_note};
use crate::input::{Input, parse_documents};
use crate::policy::Policy;

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

/// Prepares every input and judges its requests, telling `progress`; one result per document
/// or failed input, in input order.
pub(super) fn judge_inputs(
    inputs: &[Input],
    options: &Options,
    judge: &dyn Judge,
    progress: &dyn Progress,
) -> Vec<Outcome> {
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
    jobs.into_iter()
        .map(|job| match job {
            Job::Done(outcome) => outcome,
            Job::Pending(p) => {
                let judged = verdicts.next().unwrap_or(Judged::Panicked);
                finish(p, judged, knows_rules)
            }
        })
        .collect()
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
