//! The walk over one context object's JSON: only the fields MCO reads, each checked for its
//! type, every error at its field path (`spec.imageDigestMirrors[0].source: Required value`),
//! as the API server's schema validation would say it. A `null` counts as absent, as the API
//! server prunes it.

use serde_json::{Map, Value};

use super::{MirrorKind, MirrorRule, MirrorSourcePolicy};
use crate::field::{FieldError, Path};
use crate::image::type_name;

/// The values `mirrorSourcePolicy` may take.
const SOURCE_POLICIES: [&str; 2] = ["NeverContactSource", "AllowContactingSource"];

/// `metadata.name`, when it is a string.
pub(super) fn name(value: &Value) -> Option<&str> {
    value.get("metadata")?.get("name")?.as_str()
}

/// Several errors as apimachinery aggregates them: one alone, or `[a, b]`.
pub(super) fn aggregate(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => {
            let all: Vec<String> = many.iter().map(ToString::to_string).collect();
            format!("[{}]", all.join(", "))
        }
    }
}

/// `status.desired.image` of a ClusterVersion (`None` when unset or empty).
pub(super) fn release_image(value: &Value) -> Result<Option<String>, Vec<FieldError>> {
    let mut errors = Vec::new();
    check_metadata(value, &mut errors);
    let path = Path::new(&["status"]);
    let image = object(value.get("status"), &path, &mut errors)
        .and_then(|status| {
            let path = path.child("desired");
            object(status.get("desired"), &path, &mut errors)
                .and_then(|desired| string(desired.get("image"), &path.child("image"), &mut errors))
        })
        .filter(|image| !image.is_empty())
        .map(str::to_owned);
    if errors.is_empty() {
        Ok(image)
    } else {
        Err(errors)
    }
}

/// The items of an IDMS, ITMS or ICSP, in the object's order.
pub(super) fn mirror_rules(
    kind: MirrorKind,
    value: &Value,
) -> Result<Vec<MirrorRule>, Vec<FieldError>> {
    let mut errors = Vec::new();
    check_metadata(value, &mut errors);
    let field = match kind {
        MirrorKind::Digest => "imageDigestMirrors",
        MirrorKind::Tag => "imageTagMirrors",
        MirrorKind::ContentSource => "repositoryDigestMirrors",
    };
    let spec_path = Path::new(&["spec"]);
    let items_path = spec_path.child(field);
    let items = object(value.get("spec"), &spec_path, &mut errors)
        .and_then(|spec| array(spec.get(field), &items_path, &mut errors))
        .unwrap_or_default();
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = items_path.index(i);
        if let Some(item) = object(Some(item), &path, &mut errors) {
            rules.extend(mirror_rule(kind, item, &path, &mut errors));
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// One item: `source` (required), `mirrors`, `mirrorSourcePolicy` (IDMS and ITMS only; ICSP
/// has no such field, and one there is ignored).
fn mirror_rule(
    kind: MirrorKind,
    item: &Map<String, Value>,
    path: &Path,
    errors: &mut Vec<FieldError>,
) -> Option<MirrorRule> {
    let before = errors.len();
    let source_path = path.child("source");
    let source = string(item.get("source"), &source_path, errors).unwrap_or_default();
    if source.is_empty() && errors.len() == before {
        errors.push(FieldError::required(source_path, ""));
    }
    let mirrors_path = path.child("mirrors");
    let mut mirrors = Vec::new();
    for (j, mirror) in array(item.get("mirrors"), &mirrors_path, errors)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let Some(mirror) = string(Some(mirror), &mirrors_path.index(j), errors) {
            mirrors.push(mirror.to_owned());
        }
    }
    let policy_path = path.child("mirrorSourcePolicy");
    let source_policy = match (kind, item.get("mirrorSourcePolicy")) {
        (MirrorKind::ContentSource, _) => None,
        (_, policy) => match string(policy, &policy_path, errors) {
            None | Some("") => None,
            Some("NeverContactSource") => Some(MirrorSourcePolicy::NeverContactSource),
            Some("AllowContactingSource") => Some(MirrorSourcePolicy::AllowContactingSource),
            Some(other) => {
                errors.push(FieldError::not_supported(
                    policy_path,
                    other,
                    &SOURCE_POLICIES,
                ));
                None
            }
        },
    };
    (errors.len() == before).then(|| MirrorRule {
        source: source.to_owned(),
        mirrors,
        source_policy,
    })
}

/// `metadata` and `metadata.name`, when present, of the right types.
fn check_metadata(value: &Value, errors: &mut Vec<FieldError>) {
    let path = Path::new(&["metadata"]);
    if let Some(metadata) = object(value.get("metadata"), &path, errors) {
        string(metadata.get("name"), &path.child("name"), errors);
    }
}

/// The value as an object; absent or `null` is `None`, another type an error.
fn object<'v>(
    value: Option<&'v Value>,
    path: &Path,
    errors: &mut Vec<FieldError>,
) -> Option<&'v Map<String, Value>> {
    match value? {
        Value::Null => None,
        Value::Object(map) => Some(map),
        other => mismatch(path, "object", other, errors),
    }
}

/// The value as an array; absent or `null` is `None`, another type an error.
fn array<'v>(
    value: Option<&'v Value>,
    path: &Path,
    errors: &mut Vec<FieldError>,
) -> Option<&'v [Value]> {
    match value? {
        Value::Null => None,
        Value::Array(items) => Some(items),
        other => mismatch(path, "array", other, errors),
    }
}

/// The value as a string; absent or `null` is `None`, another type an error.
fn string<'v>(
    value: Option<&'v Value>,
    path: &Path,
    errors: &mut Vec<FieldError>,
) -> Option<&'v str> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => mismatch(path, "string", other, errors),
    }
}

fn mismatch<T>(
    path: &Path,
    expected: &str,
    value: &Value,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    errors.push(FieldError::type_invalid(
        path.clone(),
        expected,
        type_name(value),
    ));
    None
}
