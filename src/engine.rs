//! The pure core: an admission request in, a verdict out. No I/O, no clock, no environment.
//!
//! ```text
//! AdmissionRequest -> which object? which phase? -> decode (type errors) -> rules -> ratchet
//!                  -> Verdict { allowed, Status (422 Invalid / 403 Forbidden), warnings, rules }
//! ```

use kube_core::response::{Status, StatusCause, StatusDetails};
use serde_json::Value;

use crate::envelope::{AdmissionRequest, Operation};
use crate::field::{ErrorKind, go_quote};
use crate::image::decode;
use crate::policy::Policy;
use crate::rules::{self, Ctx, Finding, Outcome, Phase};

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
    /// Warnings, each `path: message`, without duplicates.
    pub warnings: Vec<String>,
    /// The ids of the rules whose findings are in the response, in rule-book order (a
    /// ratcheted error is a W18 warning; `findings` keeps its own rule).
    pub rules: Vec<&'static str>,
    /// Every finding as `(rule id, class)`, for metrics.
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

/// Judges one admission request.
pub fn evaluate(request: &AdmissionRequest, policy: &Policy) -> Result<Verdict, RequestError> {
    if let Some(reason) = foreign(request) {
        return Ok(Verdict::skip(reason));
    }
    let phase = match (request.operation, request.sub_resource.as_str()) {
        (Operation::Connect, _) => return Ok(Verdict::skip("CONNECT is not validated".to_owned())),
        (Operation::Create, "") => Phase::Create,
        (Operation::Update, "") => Phase::Update,
        (Operation::Update, "status") => Phase::Status,
        (Operation::Delete, "") => Phase::Delete,
        (_, sub) => {
            return Ok(Verdict::skip(format!(
                "subresource {sub:?} is not validated"
            )));
        }
    };
    let empty = Value::Object(serde_json::Map::new());
    let (new_raw, old_raw) = match phase {
        Phase::Delete => (request.old_object.as_ref().unwrap_or(&empty), None),
        Phase::Create => (
            request.object.as_ref().ok_or(RequestError::MissingObject)?,
            None,
        ),
        Phase::Update | Phase::Status => (
            request.object.as_ref().ok_or(RequestError::MissingObject)?,
            Some(
                request
                    .old_object
                    .as_ref()
                    .ok_or(RequestError::MissingOldObject)?,
            ),
        ),
    };
    let new = decode(new_raw);
    let old = old_raw.map(decode);
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
        new_raw,
        type_errors: &new.errors,
        policy,
        shared: Default::default(),
    };
    let findings = rules::run(&ctx, old_raw);
    Ok(verdict(&findings, ctx.name))
}

/// Why a request is not about the Image `config.openshift.io/v1` (never denied, RULEBOOK
/// "Other resources are never denied").
fn foreign(request: &AdmissionRequest) -> Option<String> {
    let object = request.object.as_ref().or(request.old_object.as_ref());
    let api_version = object
        .and_then(|o| o.get("apiVersion"))
        .and_then(Value::as_str)
        .unwrap_or("");
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
                "kind {}/{} {} is not {GROUP}/{VERSION} {KIND}",
                group, kind.version, kind.name
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
                "resource {}/{} {} is not {GROUP}/{VERSION} {RESOURCE}",
                resource.group, resource.version, resource.name
            ));
        }
        return None;
    }
    let kind = object?.get("kind").and_then(Value::as_str).unwrap_or("");
    let expected = format!("{GROUP}/{VERSION}");
    (api_version != expected || kind != KIND)
        .then(|| format!("object {api_version} {kind} is not {expected} {KIND}"))
}

/// Turns findings into the verdict the API server reads.
fn verdict(findings: &[Finding], name: &str) -> Verdict {
    let mut v = Verdict::allow();
    let mut errors = Vec::new();
    let mut fired = vec![false; rules::RULES.len()];
    let mut seen = std::collections::HashSet::new();
    let w18 = rules::RULES.iter().position(|r| r.id == "W18");
    for finding in findings {
        let class = match &finding.outcome {
            Outcome::Error(e) => {
                errors.push((finding.rule.id, e));
                FindingClass::Error
            }
            Outcome::Warning { .. } => FindingClass::Warning,
            Outcome::Ratcheted(_) => FindingClass::Ratcheted,
        };
        let shown = if class == FindingClass::Ratcheted {
            w18
        } else {
            Some(rules::rule_position(finding.rule))
        };
        if let Some(slot) = shown.and_then(|p| fired.get_mut(p)) {
            *slot = true;
        }
        v.findings.push((finding.rule.id, class));
        if let Some(text) = finding.warning_text()
            && seen.insert(text.clone())
        {
            v.warnings.push(text);
        }
    }
    v.rules = rules::RULES
        .iter()
        .zip(&fired)
        .filter(|(_, f)| **f)
        .map(|(r, _)| r.id)
        .collect();
    if errors.is_empty() {
        return v;
    }
    v.allowed = false;
    if let Some((_, e)) = errors.iter().find(|(id, _)| *id == "D1") {
        v.status = Status::failure(
            &format!(
                "{RESOURCE}.{GROUP} {} is forbidden: {}",
                go_quote(name),
                e.detail
            ),
            "Forbidden",
        )
        .with_code(403)
        .with_details(details(name, RESOURCE, Vec::new()));
        return v;
    }
    // ToAggregate: exact duplicates removed, order kept.
    let mut texts: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, e) in &errors {
        let text = e.to_string();
        if seen.insert(text.clone()) {
            texts.push(text);
        }
    }
    let message = match texts.as_slice() {
        [one] => format!("{KIND}.{GROUP} {} is invalid: {one}", go_quote(name)),
        many => format!(
            "{KIND}.{GROUP} {} is invalid: [{}]",
            go_quote(name),
            many.join(", ")
        ),
    };
    let causes = errors
        .iter()
        .map(|(_, e)| StatusCause {
            reason: e.kind.cause_type().to_owned(),
            message: e.body(),
            field: if e.kind == ErrorKind::Forbidden && e.path.is_root() {
                String::new()
            } else {
                e.path.to_string()
            },
        })
        .collect();
    v.status = Status::failure(&message, "Invalid")
        .with_code(422)
        .with_details(details(name, KIND, causes));
    v
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
