//! The AdmissionReview envelope: JSON in, an [`AdmissionRequest`] out, leniently.
//!
//! kube-core's typed `AdmissionReview` is strict where hand-written fixtures are loose (a missing
//! `userInfo`, a `kind` without `group`, `dryRun: null`). The API server never sends those, but
//! an admin's fixture may, so this decoder accepts them and records a note for each leniency;
//! [`strictness_note`] says what kube-core itself would have made of the document.

use kube_core::DynamicObject;
use kube_core::admission::AdmissionReview;
use serde_json::{Map, Value};

/// `admission.k8s.io/v1`.
pub const ADMISSION_V1: &str = "admission.k8s.io/v1";
/// `admission.k8s.io/v1beta1`.
pub const ADMISSION_V1BETA1: &str = "admission.k8s.io/v1beta1";

/// The operation of an admission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// CREATE.
    Create,
    /// UPDATE.
    Update,
    /// DELETE.
    Delete,
    /// CONNECT.
    Connect,
}

impl Operation {
    /// Parses the wire form (`CREATE`, ...), case-sensitively as the API server sends it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            "CONNECT" => Some(Operation::Connect),
            _ => None,
        }
    }

    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// group/version/kind or group/version/resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupVersionName {
    /// The API group (`""` for the core group).
    pub group: String,
    /// The version.
    pub version: String,
    /// The kind or the resource.
    pub name: String,
}

/// An admission request, decoded leniently.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionRequest {
    /// `request.uid`; empty when the document has none.
    pub uid: String,
    /// `request.kind`, when present.
    pub kind: Option<GroupVersionName>,
    /// `request.resource`, when present.
    pub resource: Option<GroupVersionName>,
    /// `request.subResource`; empty for the main resource.
    pub sub_resource: String,
    /// `request.name`.
    pub name: String,
    /// `request.operation`.
    pub operation: Operation,
    /// `request.object`; `None` when absent or null.
    pub object: Option<Value>,
    /// `request.oldObject`; `None` when absent or null.
    pub old_object: Option<Value>,
    /// `request.dryRun`.
    pub dry_run: bool,
}

/// Why a document is not an admission request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The bytes are not JSON.
    Json(String),
    /// The document is not a JSON object.
    NotAnObject,
    /// An AdmissionReview without `request`.
    MissingRequest,
    /// A required field is missing or has the wrong type.
    BadField {
        /// Dotted path of the field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::Json(e) => write!(f, "malformed JSON: {e}"),
            EnvelopeError::NotAnObject => f.write_str("the document is not a JSON object"),
            EnvelopeError::MissingRequest => f.write_str("the AdmissionReview has no request"),
            EnvelopeError::BadField { field, problem } => write!(f, "{field}: {problem}"),
        }
    }
}

impl std::error::Error for EnvelopeError {}

/// A decoded AdmissionReview.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// The review's `apiVersion` (v1 unless it says v1beta1); the response uses the same.
    pub api_version: &'static str,
    /// The request.
    pub request: AdmissionRequest,
    /// A recorded `response`, when the document carries one (fixtures).
    pub recorded_response: Option<Value>,
    /// What was accepted leniently.
    pub notes: Vec<String>,
}

/// Decodes an AdmissionReview document. Takes it by value: the objects inside are moved into the
/// request, not copied.
pub fn parse_review(mut doc: Value) -> Result<Review, EnvelopeError> {
    let obj = doc.as_object_mut().ok_or(EnvelopeError::NotAnObject)?;
    let mut notes = Vec::new();
    let api_version = match obj.get("apiVersion").and_then(Value::as_str) {
        Some(ADMISSION_V1BETA1) => ADMISSION_V1BETA1,
        Some(ADMISSION_V1) => ADMISSION_V1,
        other => {
            notes.push(match other {
                Some(v) => format!(
                    "apiVersion {v:?} is not an admission version; answered as {ADMISSION_V1}"
                ),
                None => format!("apiVersion is missing; answered as {ADMISSION_V1}"),
            });
            ADMISSION_V1
        }
    };
    let request = match obj.remove("request") {
        None | Some(Value::Null) => return Err(EnvelopeError::MissingRequest),
        Some(request) => parse_request_into(request, &mut notes)?,
    };
    let recorded_response = obj.remove("response").filter(|v| !v.is_null());
    Ok(Review {
        api_version,
        request,
        recorded_response,
        notes,
    })
}

/// Decodes a bare `request` document (an AdmissionReview's request without the envelope).
pub fn parse_request(
    doc: Value,
    notes: &mut Vec<String>,
) -> Result<AdmissionRequest, EnvelopeError> {
    parse_request_into(doc, notes)
}

/// The uid of a review, if one can be read even though the rest is malformed.
pub fn salvage_uid(doc: &Value) -> Option<String> {
    doc.get("request")?.get("uid")?.as_str().map(str::to_owned)
}

/// The uid of a review whose bytes are not even valid JSON (truncated, say): the first
/// `"uid": "<string>"` after `"request"`.
pub fn salvage_uid_from_bytes(bytes: &[u8]) -> Option<String> {
    let find =
        |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).position(|w| w == needle);
    let request = find(bytes, b"\"request\"")?;
    let after_request = &bytes[request..];
    let uid = find(after_request, b"\"uid\"")?;
    let rest = &after_request[uid + 5..];
    let rest = rest
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    let mut strings = serde_json::Deserializer::from_slice(rest).into_iter::<String>();
    strings.next()?.ok()
}

fn parse_request_into(
    mut doc: Value,
    notes: &mut Vec<String>,
) -> Result<AdmissionRequest, EnvelopeError> {
    let obj = doc.as_object_mut().ok_or(EnvelopeError::BadField {
        field: "request",
        problem: "must be an object".to_owned(),
    })?;
    let object = nullable_object(obj.remove("object"), "object")?;
    let old_object = nullable_object(obj.remove("oldObject"), "oldObject")?;
    let obj = &*obj;
    let uid = match obj.get("uid") {
        Some(Value::String(uid)) => uid.clone(),
        None | Some(Value::Null) => {
            notes.push("request.uid is missing; answered with an empty uid".to_owned());
            String::new()
        }
        Some(_) => return Err(bad("request.uid", "must be a string")),
    };
    let operation = match obj.get("operation") {
        Some(Value::String(op)) => Operation::parse(op).ok_or_else(|| {
            bad(
                "request.operation",
                format!("{op:?} is not one of CREATE, UPDATE, DELETE, CONNECT"),
            )
        })?,
        None | Some(Value::Null) => return Err(bad("request.operation", "is required")),
        Some(_) => return Err(bad("request.operation", "must be a string")),
    };
    let kind = group_version_name(obj, "kind", "kind", notes)?;
    let resource = group_version_name(obj, "resource", "resource", notes)?;
    let sub_resource = optional_string(obj, "subResource")?;
    let name = optional_string(obj, "name")?;
    if !obj.contains_key("userInfo") {
        notes.push("request.userInfo is missing (kube-core requires it); accepted".to_owned());
    }
    let dry_run = match obj.get("dryRun") {
        None => false,
        Some(Value::Null) => {
            notes.push(
                "request.dryRun is null (kube-core requires a boolean); read as false".to_owned(),
            );
            false
        }
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("request.dryRun", "must be a boolean")),
    };
    Ok(AdmissionRequest {
        uid,
        kind,
        resource,
        sub_resource,
        name,
        operation,
        object,
        old_object,
        dry_run,
    })
}

fn bad(field: &'static str, problem: impl Into<String>) -> EnvelopeError {
    EnvelopeError::BadField {
        field,
        problem: problem.into(),
    }
}

fn optional_string(obj: &Map<String, Value>, key: &'static str) -> Result<String, EnvelopeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(EnvelopeError::BadField {
            field: field_name(key),
            problem: "must be a string".to_owned(),
        }),
    }
}

fn nullable_object(
    value: Option<Value>,
    key: &'static str,
) -> Result<Option<Value>, EnvelopeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(EnvelopeError::BadField {
            field: field_name(key),
            problem: "must be an object".to_owned(),
        }),
    }
}

fn field_name(key: &'static str) -> &'static str {
    match key {
        "kind" => "request.kind",
        "resource" => "request.resource",
        "subResource" => "request.subResource",
        "name" => "request.name",
        "object" => "request.object",
        "oldObject" => "request.oldObject",
        _ => "request",
    }
}

fn group_version_name(
    obj: &Map<String, Value>,
    key: &'static str,
    name_key: &str,
    notes: &mut Vec<String>,
) -> Result<Option<GroupVersionName>, EnvelopeError> {
    let gvn = match obj.get(key) {
        None | Some(Value::Null) => {
            notes.push(format!(
                "request.{key} is missing (kube-core requires it); taken from the object"
            ));
            return Ok(None);
        }
        Some(Value::Object(gvn)) => gvn,
        Some(_) => {
            return Err(EnvelopeError::BadField {
                field: field_name(key),
                problem: "must be an object".to_owned(),
            });
        }
    };
    let text = |k: &str| gvn.get(k).and_then(Value::as_str).map(str::to_owned);
    if !gvn.contains_key("group") {
        notes.push(format!(
            "request.{key} has no group (kube-core requires one); read as \"\""
        ));
    }
    Ok(Some(GroupVersionName {
        group: text("group").unwrap_or_default(),
        version: text("version").unwrap_or_default(),
        name: text(name_key).unwrap_or_default(),
    }))
}

/// What kube-core's strict `AdmissionReview` decoder says of a document, when it refuses it.
pub fn strictness_note(doc: &Value) -> Option<String> {
    serde_json::from_value::<AdmissionReview<DynamicObject>>(doc.clone())
        .err()
        .map(|e| {
            format!("kube-core's strict decoder would refuse this review ({e}); decoded leniently")
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn full() -> Value {
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "config.openshift.io", "version": "v1", "kind": "Image"},
                "resource": {"group": "config.openshift.io", "version": "v1", "resource": "images"},
                "name": "cluster", "operation": "UPDATE",
                "userInfo": {"username": "system:admin"},
                "object": {"metadata": {"name": "cluster"}, "spec": {}},
                "oldObject": {"metadata": {"name": "cluster"}, "spec": {}},
                "dryRun": true,
            }
        })
    }

    #[test]
    fn decodes_a_real_review_without_notes() {
        let review = parse_review(full()).expect("valid review");
        assert!(review.notes.is_empty(), "{:?}", review.notes);
        assert_eq!(strictness_note(&full()), None);
        let r = review.request;
        assert_eq!(r.uid, "u-1");
        assert_eq!(r.operation, Operation::Update);
        assert_eq!(r.kind.map(|k| k.name).as_deref(), Some("Image"));
        assert_eq!(r.resource.map(|k| k.name).as_deref(), Some("images"));
        assert!(r.dry_run && r.object.is_some() && r.old_object.is_some());
    }

    #[test]
    fn lenient_where_kube_core_is_strict() {
        let mut doc = full();
        doc["request"].as_object_mut().map(|r| r.remove("userInfo"));
        doc["request"]["kind"] = json!({"version": "v1", "kind": "Image"});
        doc["request"]["dryRun"] = Value::Null;
        let review = parse_review(doc.clone()).expect("lenient");
        assert_eq!(review.notes.len(), 3, "{:?}", review.notes);
        assert!(strictness_note(&doc).is_some());
        assert!(!review.request.dry_run);
    }

    #[test]
    fn clear_errors_for_broken_envelopes() {
        assert_eq!(parse_review(json!([])), Err(EnvelopeError::NotAnObject));
        assert_eq!(
            parse_review(json!({"kind": "AdmissionReview"})),
            Err(EnvelopeError::MissingRequest)
        );
        let mut doc = full();
        doc["request"]["operation"] = json!("PATCH");
        assert_eq!(
            parse_review(doc.clone()).map_err(|e| e.to_string()),
            Err(
                "request.operation: \"PATCH\" is not one of CREATE, UPDATE, DELETE, CONNECT"
                    .to_owned()
            )
        );
        doc["request"]["operation"] = json!("CREATE");
        doc["request"]["object"] = json!("x");
        assert_eq!(
            parse_review(doc.clone()).map_err(|e| e.to_string()),
            Err("request.object: must be an object".to_owned())
        );
        assert_eq!(salvage_uid(&doc).as_deref(), Some("u-1"));
    }

    #[test]
    fn uid_from_broken_bytes() {
        let cut = br#"{"apiVersion":"admission.k8s.io/v1","request":{"uid" : "a\"b","kind":{"#;
        assert_eq!(salvage_uid_from_bytes(cut).as_deref(), Some("a\"b"));
        assert_eq!(salvage_uid_from_bytes(br#"{"uid":"x"}"#), None);
        assert_eq!(salvage_uid_from_bytes(br#"{"request":{"uid":5}}"#), None);
        assert_eq!(salvage_uid_from_bytes(br#"{"request":{"uid":"#), None);
    }

    #[test]
    fn v1beta1_is_kept() {
        let mut doc = full();
        doc["apiVersion"] = json!("admission.k8s.io/v1beta1");
        assert_eq!(
            parse_review(doc.clone()).map(|r| r.api_version),
            Ok(ADMISSION_V1BETA1)
        );
    }
}
