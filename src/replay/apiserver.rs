//! What the API server does to an object before it calls admission webhooks, so that a bare
//! manifest replayed from disk is judged as the webhook would see it after `oc apply`.

use serde_json::{Value, json};

use super::{ObjectError, Options};
use crate::engine::{GROUP, KIND, RESOURCE, VERSION};
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

/// The five characters the API server appends to `generateName` are random
/// (`names.SimpleNameGenerator`); replay shows them as this placeholder, from the same alphabet.
pub(super) const GENERATED_SUFFIX: &str = "xxxxx";

/// The request the API server would send to the webhook for `oc apply` of a bare object,
/// after what it does before any admission (RULEBOOK 3.7, `k8s.io/apiserver`
/// `rest.BeforeCreate`/`BeforeUpdate` and the CRD strategy). Each change to what the manifest
/// says is told in `notes`.
///
/// An object of another group or kind is passed on as what it is, so the engine skips it.
pub(super) fn bare_image_request(
    object: Value,
    options: &Options,
    ordinal: usize,
    notes: &mut Vec<String>,
) -> Result<AdmissionRequest, ObjectError> {
    if !object.is_object() {
        return Err(ObjectError::NotAnObject);
    }
    let operation = options.operation.unwrap_or(if options.old.is_some() {
        Operation::Update
    } else {
        Operation::Create
    });
    let (kind, resource) = kind_and_resource(&object);
    let ours = kind.group == GROUP && kind.version == VERSION && kind.name == KIND;
    let (object, old_object) = match operation {
        Operation::Delete => (None, Some(options.old.clone().unwrap_or(object))),
        Operation::Update => {
            let mut old = options.old.clone().unwrap_or_else(|| object.clone());
            let mut new = object;
            if ours {
                clear_namespace(&mut old, "the old object", notes);
                before_update(&mut new, &old, notes);
            }
            (Some(new), Some(old))
        }
        _ => {
            let mut new = object;
            if ours {
                before_create(&mut new, notes);
            }
            (Some(new), None)
        }
    };
    let name = object
        .as_ref()
        .or(old_object.as_ref())
        .and_then(|o| o.pointer("/metadata/name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Ok(AdmissionRequest {
        uid: format!("replay-{ordinal}"),
        kind: Some(kind),
        resource: Some(resource),
        sub_resource: String::new(),
        name,
        operation,
        object,
        old_object,
        dry_run: true,
    })
}

/// The kind an object names, and the resource the API server would send with it: for an
/// Image its REST mapping, for another kind the usual lower-cased plural (only shown).
fn kind_and_resource(object: &Value) -> (GroupVersionName, GroupVersionName) {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    // `v1` is the core group: no slash, no group.
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind_name = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let ours = group == GROUP && version == VERSION && kind_name == KIND;
    let kind = GroupVersionName {
        group: group.to_owned(),
        version: version.to_owned(),
        name: kind_name.to_owned(),
    };
    let resource = if ours {
        GroupVersionName {
            group: GROUP.to_owned(),
            version: VERSION.to_owned(),
            name: RESOURCE.to_owned(),
        }
    } else {
        // The REST mapping of another kind is not known here; its lower-cased plural is the
        // usual one, and only shown.
        GroupVersionName {
            group: group.to_owned(),
            version: version.to_owned(),
            name: format!("{}s", kind_name.to_ascii_lowercase()),
        }
    };
    (kind, resource)
}

/// `rest.BeforeCreate`: the namespace of a cluster-scoped object is cleared, a name is generated
/// from `generateName`, and the CRD strategy drops `status` (a status subresource is set only
/// through it).
fn before_create(new: &mut Value, notes: &mut Vec<String>) {
    clear_namespace(new, "the manifest", notes);
    let Some(obj) = new.as_object_mut() else {
        return;
    };
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let unnamed = meta
            .get("name")
            .is_none_or(|n| n.is_null() || n.as_str() == Some(""));
        let prefix = meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
            .map(str::to_owned);
        if let (true, Some(prefix)) = (unnamed, prefix) {
            let generated = format!("{prefix}{GENERATED_SUFFIX}");
            notes.push(format!(
                "the API server names the object from metadata.generateName before admission: \
                 judged as metadata.name {generated:?} ({GENERATED_SUFFIX:?} stands for 5 random characters)"
            ));
            meta.insert("name".to_owned(), Value::String(generated));
        }
    }
    if obj.remove("status").is_some() {
        notes.push(
            "status is dropped: the API server ignores it on create (it is written through the status subresource)"
                .to_owned(),
        );
    }
}

/// `rest.BeforeUpdate` and the CRD strategy's `PrepareForUpdate`: the namespace is cleared;
/// a missing uid is the old object's; `creationTimestamp`, `generation` and a deletion
/// timestamp are reset to the old values; `status` is the old object's. A missing
/// `resourceVersion` is the old one too (`oc apply` sends the stored one).
fn before_update(new: &mut Value, old: &Value, notes: &mut Vec<String>) {
    clear_namespace(new, "the manifest", notes);
    let Some(new_obj) = new.as_object_mut() else {
        return;
    };
    let old_meta = old.get("metadata").and_then(Value::as_object);
    let meta = new_obj.entry("metadata").or_insert_with(|| json!({}));
    if let (Some(meta), Some(old_meta)) = (meta.as_object_mut(), old_meta) {
        let given = |meta: &serde_json::Map<String, Value>, key: &str| {
            meta.get(key)
                .filter(|v| !v.is_null() && v.as_str() != Some(""))
                .cloned()
        };
        // "Use the existing UID if none is provided."
        if let (None, Some(uid)) = (given(meta, "uid"), given(old_meta, "uid")) {
            notes.push(format!(
                "metadata.uid is taken from the old object ({uid}): the API server does so when the manifest has none"
            ));
            meta.insert("uid".to_owned(), uid);
        }
        if let (None, Some(rv)) = (
            given(meta, "resourceVersion"),
            given(old_meta, "resourceVersion"),
        ) {
            meta.insert("resourceVersion".to_owned(), rv);
        }
        // "Ignore changes to timestamp", generation and the deletion timestamp: reset, not refused.
        for key in ["creationTimestamp", "generation", "deletionTimestamp"] {
            let (mine, theirs) = (given(meta, key), given(old_meta, key));
            if mine == theirs {
                continue;
            }
            if key == "creationTimestamp" && theirs.is_none() {
                continue;
            }
            if let Some(mine) = &mine {
                notes.push(format!(
                    "metadata.{key} {mine} is reset to the old object's {}: the API server ignores a change to it",
                    theirs.as_ref().map_or_else(|| "(none)".to_owned(), Value::to_string)
                ));
            }
            match theirs {
                Some(v) => meta.insert(key.to_owned(), v),
                None => meta.remove(key),
            };
        }
    }
    let old_status = old.get("status");
    if let Some(status) = new_obj.get("status")
        && Some(status) != old_status
    {
        notes.push(
            "status is the old object's: an update of the main resource cannot change it (status subresource)"
                .to_owned(),
        );
    }
    match old_status {
        Some(status) => new_obj.insert("status".to_owned(), status.clone()),
        None => new_obj.remove("status"),
    };
}

/// `EnsureObjectNamespaceMatchesRequestNamespace`: a cluster-scoped object's namespace is
/// cleared, never an error.
fn clear_namespace(object: &mut Value, whose: &str, notes: &mut Vec<String>) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    match meta.remove("namespace") {
        Some(Value::String(ns)) if !ns.is_empty() => notes.push(format!(
            "metadata.namespace {ns:?} in {whose} is cleared: Image is cluster-scoped, and the API server clears it before admission"
        )),
        Some(Value::String(_) | Value::Null) | None => {}
        // A namespace of the wrong type is the schema's to report.
        Some(other) => {
            meta.insert("namespace".to_owned(), other);
        }
    }
}
