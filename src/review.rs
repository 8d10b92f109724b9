//! Bytes in, bytes out: the AdmissionReview the API server posts, and the one it gets back.
//! The server is a thin adapter around [`review`]; `replay` judges with
//! [`crate::engine::evaluate`] and shows everything.
//!
//! The answer's size does not grow with the request's: [`review`] judges with
//! [`evaluate_bounded`], so the response carries at most [`MAX_WARNINGS`] warnings plus a
//! summary (all shorter than [`MAX_WARNINGS_TOTAL_CHARS`] characters together) and at most
//! [`MAX_CAUSES`] causes, every text clipped to [`MAX_CAUSE_BYTES`]. Only the uid, echoed
//! exactly as the API server requires, is as long as the request makes it.

use kube_core::response::Status;
use serde::Serialize;
use serde_json::Value;

use crate::engine::{
    Bounded, FindingClass, RequestError, Verdict, evaluate_bounded, evaluate_wire,
};
pub use crate::engine::{
    MAX_CAUSE_BYTES, MAX_CAUSES, MAX_FINDINGS_PER_RULE, MAX_WARNING_CHARS, MAX_WARNINGS,
    MAX_WARNINGS_TOTAL_CHARS,
};
use crate::envelope::{AdmissionRequest, EnvelopeError, parse_review, salvage_uid};
use crate::policy::Policy;

/// The outcome of [`review`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reviewed {
    /// The response document, serialized.
    pub body: Vec<u8>,
    /// The review's apiVersion (the response's too).
    pub api_version: &'static str,
    /// The request, without its objects (`object` and `old_object` are `None`).
    pub request: AdmissionRequest,
    /// How the review was decoded.
    pub decoding: Decoding,
    /// The verdict in it: its status and warnings are the ones in `body`; its `findings` list
    /// at most [`MAX_FINDINGS_PER_RULE`] findings per rule.
    pub verdict: Verdict,
    /// `(rule id, class, how many)` of the findings that `verdict.findings` does not list, for
    /// metrics: counted, never built.
    pub unlisted_findings: Vec<(&'static str, FindingClass, usize)>,
}

/// How [`review`] decoded a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decoding {
    /// In one pass, into borrowed typed structs ([`crate::wire`]): every review the API server
    /// sends.
    OnePass,
    /// Into a tree, leniently ([`crate::envelope`], [`crate::image`]): anything else, from a
    /// hand-written fixture to a malformed body.
    Lenient,
}

/// Why a body could not be answered with a verdict: what could still be read of the review
/// (its uid and apiVersion, to answer it), which kind of problem it is, and the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewError {
    /// The uid, when it could still be read from the body.
    uid: Option<String>,
    /// The review's apiVersion, when it could be read (v1 otherwise).
    api_version: &'static str,
    /// Which kind of problem it is.
    kind: ReviewErrorKind,
    /// The cause.
    cause: ReviewCause,
}

/// The kinds of [`ReviewError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReviewErrorKind {
    /// Not JSON, or not an AdmissionReview the engine can judge: status 400.
    Malformed,
    /// The decoded document would pass the memory budget ([`crate::bounded`]): status 413.
    TooLarge,
}

/// The cause of a [`ReviewError`], from the layer that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ReviewCause {
    /// Not JSON, or not an AdmissionReview envelope.
    Envelope(EnvelopeError),
    /// The decoded document would pass the budget.
    TooLarge(crate::bounded::TooLarge),
    /// An AdmissionReview whose request cannot be judged.
    Request(RequestError),
}

impl ReviewErrorKind {
    /// The HTTP status code and the Status reason the answer carries.
    pub fn code_and_reason(self) -> (u16, &'static str) {
        match self {
            ReviewErrorKind::Malformed => (400, "BadRequest"),
            ReviewErrorKind::TooLarge => (413, "RequestEntityTooLarge"),
        }
    }
}

impl std::fmt::Display for ReviewError {
    /// The cause's message, clipped to [`MAX_CAUSE_BYTES`] as causes are (a message may quote
    /// the request: an unknown operation, say).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&clip(&self.cause.to_string()))
    }
}

impl std::fmt::Display for ReviewCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReviewCause::Envelope(e) => std::fmt::Display::fmt(e, f),
            ReviewCause::TooLarge(e) => std::fmt::Display::fmt(e, f),
            ReviewCause::Request(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for ReviewError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(match &self.cause {
            ReviewCause::Envelope(e) => e,
            ReviewCause::TooLarge(e) => e,
            ReviewCause::Request(e) => e,
        })
    }
}

impl ReviewError {
    /// The uid, when it could still be read from the body.
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// The review's apiVersion, when it could be read (v1 otherwise).
    pub fn api_version(&self) -> &'static str {
        self.api_version
    }

    /// Which kind of problem it is.
    pub fn kind(&self) -> ReviewErrorKind {
        self.kind
    }

    /// The answer for the API server when a uid was salvaged: `allowed: false`, status 400 and
    /// the message, so the user sees it instead of a generic webhook failure.
    pub fn to_response(&self) -> Option<Vec<u8>> {
        let uid = self.uid.as_deref()?;
        let message = self.to_string();
        let (code, reason) = self.kind.code_and_reason();
        let status = Status::failure(&message, reason).with_code(code);
        Some(response_bytes(self.api_version, uid, false, &status, &[]))
    }
}

/// Decodes an AdmissionReview, judges it and encodes the answer.
pub fn review(body: &[u8], policy: &Policy) -> Result<Reviewed, ReviewError> {
    review_within(body, policy, usize::MAX)
}

/// [`review`], refusing a document whose decoded tree would pass `budget` bytes (an estimate,
/// see [`crate::bounded`]) before that memory is spent.
///
/// A review as the API server sends it is decoded in one pass ([`crate::wire`]); any other
/// takes the lenient path ([`review_leniently_within`]), which answers the same for the
/// reviews that both can decode.
pub fn review_within(body: &[u8], policy: &Policy, budget: usize) -> Result<Reviewed, ReviewError> {
    let Some(review) = crate::wire::decode(body, budget) else {
        return review_leniently_within(body, policy, budget);
    };
    let judged = evaluate_wire(&review, policy).map_err(|e| ReviewError {
        uid: Some(review.request.uid.clone()),
        api_version: review.api_version,
        kind: ReviewErrorKind::Malformed,
        cause: ReviewCause::Request(e),
    })?;
    let Some(bounded) = judged else {
        return review_leniently_within(body, policy, budget);
    };
    Ok(reviewed(
        review.api_version,
        review.request,
        bounded,
        Decoding::OnePass,
    ))
}

/// [`review_within`] on the lenient path alone: the whole body decoded into a tree first. The
/// reference that the one-pass decode is checked against.
pub fn review_leniently_within(
    body: &[u8],
    policy: &Policy,
    budget: usize,
) -> Result<Reviewed, ReviewError> {
    let doc: Value = crate::bounded::from_slice(body, budget).map_err(|e| {
        let (cause, kind) = match e {
            crate::bounded::Error::Json(e) => (
                ReviewCause::Envelope(EnvelopeError::Json(e.to_string())),
                ReviewErrorKind::Malformed,
            ),
            crate::bounded::Error::TooLarge(e) => {
                (ReviewCause::TooLarge(e), ReviewErrorKind::TooLarge)
            }
        };
        ReviewError {
            uid: crate::envelope::salvage_uid_from_bytes(body),
            api_version: crate::envelope::ADMISSION_V1,
            kind,
            cause,
        }
    })?;
    let (uid, api_version) = (salvage_uid(&doc), api_version_of(&doc));
    let fail = |cause: ReviewCause| ReviewError {
        uid: uid.clone(),
        api_version,
        kind: ReviewErrorKind::Malformed,
        cause,
    };
    let review = parse_review(doc).map_err(|e| fail(ReviewCause::Envelope(e)))?;
    let bounded =
        evaluate_bounded(&review.request, policy).map_err(|e| fail(ReviewCause::Request(e)))?;
    let mut request = review.request;
    (request.object, request.old_object) = (None, None);
    Ok(reviewed(
        review.api_version,
        request,
        bounded,
        Decoding::Lenient,
    ))
}

fn reviewed(
    api_version: &'static str,
    request: AdmissionRequest,
    bounded: Bounded,
    decoding: Decoding,
) -> Reviewed {
    let (verdict, unlisted_findings) = (bounded.verdict, bounded.unlisted);
    let body = response_bytes(
        api_version,
        &request.uid,
        verdict.allowed,
        &verdict.status,
        &verdict.warnings,
    );
    Reviewed {
        body,
        api_version,
        request,
        decoding,
        verdict,
        unlisted_findings,
    }
}

/// A message of a [`ReviewError`], clipped to [`MAX_CAUSE_BYTES`] as causes are.
fn clip(message: &str) -> std::borrow::Cow<'_, str> {
    crate::engine::clip_json(message, MAX_CAUSE_BYTES)
}

fn api_version_of(doc: &Value) -> &'static str {
    match doc.get("apiVersion").and_then(Value::as_str) {
        Some(crate::envelope::ADMISSION_V1BETA1) => crate::envelope::ADMISSION_V1BETA1,
        _ => crate::envelope::ADMISSION_V1,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a Status,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

/// The AdmissionReview response document.
pub fn response_bytes(
    api_version: &str,
    uid: &str,
    allowed: bool,
    status: &Status,
    warnings: &[String],
) -> Vec<u8> {
    let out = ReviewOut {
        api_version,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid,
            allowed,
            status,
            warnings,
        },
    };
    // Sized once: the message and the causes (which repeat it, at most) and the warnings.
    let text = status.message.len() + warnings.iter().map(|w| w.len() + 3).sum::<usize>();
    let mut body = Vec::with_capacity(256 + uid.len() + 3 * text);
    // Serializing plain strings, booleans and kube-core's Status cannot fail.
    match serde_json::to_writer(&mut body, &out) {
        Ok(()) => body,
        Err(_) => Vec::new(),
    }
}
