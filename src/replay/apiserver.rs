//! What the API server does to an object before it calls admission webhooks, so that a bare
//! manifest replayed from disk is judged as the webhook would see it after `oc apply`.

use serde_json::{Value, json};

use super::Options;
use crate::engine::{GROUP, RESOURCE, VERSION};
use crate::envelope::{AdmissionRequest, GroupVersionName, Operation};

/// One thing to judge, as found in a document.
pub(super) enum Unit {
    Review(Value),
    Request(Value),
    Image(Value),
    Unknown(String),
}

pub(super) fn expand(doc: Value, units: &mut Vec<Unit>) {
    let kind = doc.get("kind");
    match kind.and_then(Value::as_str) {
        Some("AdmissionReview") => units.push(Unit::Review(doc)),
        Some("List" | "ImageList") => match doc.get("items").and_then(Value::as_array) {
            Some(items) => {
                for item in items {
                    expand(item.clone(), units);
                }
            }
            None => units.push(Unit::Unknown("a List without items".to_owned())),
        },
        _ if doc.get("request").is_some() => units.push(Unit::Review(doc)),
        _ if kind.is_some_and(Value::is_object) || doc.get("operation").is_some() => {
            units.push(Unit::Request(doc))
        }
        Some(_) if doc.get("apiVersion").is_some() => units.push(Unit::Image(doc)),
        Some(k) => units.push(Unit::Unknown(format!("kind {k:?} without apiVersion"))),
        None => units.push(Unit::Unknown(
            "not an AdmissionReview, an admission request, an Image or a List (no kind)".to_owned(),
        )),
    }
}

/// What the API server makes of an applied manifest before admission on UPDATE
/// (`rest.BeforeUpdate` and the CRD strategy): identity fields the manifest leaves out are
/// taken from the stored object, and the main resource cannot change `status`.
fn as_updated(mut new: Value, old: &Value) -> Value {
    if let Some(new_obj) = new.as_object_mut() {
        let old_meta = old.get("metadata").and_then(Value::as_object);
        let meta = new_obj.entry("metadata").or_insert_with(|| json!({}));
        if let (Some(meta), Some(old_meta)) = (meta.as_object_mut(), old_meta) {
            for key in ["uid", "creationTimestamp", "resourceVersion"] {
                if let (None, Some(v)) = (meta.get(key), old_meta.get(key)) {
                    meta.insert(key.to_owned(), v.clone());
                }
            }
        }
        match old.get("status") {
            Some(status) => new_obj.insert("status".to_owned(), status.clone()),
            None => new_obj.remove("status"),
        };
    }
    new
}

/// The request the API server would send for `oc apply` of a bare Image.
pub(super) fn bare_image_request(
    image: Value,
    options: &Options,
    ordinal: usize,
    notes: &mut Vec<String>,
) -> Result<AdmissionRequest, String> {
    let _ = notes;
    let operation = options.operation.unwrap_or(if options.old.is_some() {
        Operation::Update
    } else {
        Operation::Create
    });
    let api_version = image
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = GroupVersionName {
        group: group.to_owned(),
        version: version.to_owned(),
        name: image
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    };
    let name = image
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let (object, old_object) = match operation {
        Operation::Delete => (None, Some(options.old.clone().unwrap_or(image))),
        Operation::Update => {
            let old = options.old.clone().unwrap_or_else(|| image.clone());
            (Some(as_updated(image, &old)), Some(old))
        }
        _ => (Some(image), None),
    };
    Ok(AdmissionRequest {
        uid: format!("replay-{ordinal}"),
        kind: Some(kind),
        resource: Some(GroupVersionName {
            group: GROUP.to_owned(),
            version: VERSION.to_owned(),
            name: RESOURCE.to_owned(),
        }),
        sub_resource: String::new(),
        name,
        operation,
        object,
        old_object,
        dry_run: true,
    })
}
