//! The typed `config.openshift.io/v1` Image, and its decoder.
//!
//! This is the only place the schema is spelled. Decoding is part of validation: a JSON value of
//! the wrong type becomes a `FieldValueTypeInvalid` error at its exact path (kube-openapi's text),
//! the value is left out of the typed object, and everything else is still decoded so every
//! other rule still runs. Unknown fields are ignored and `null` counts as absent, because the
//! API server prunes both before validation.

use serde_json::{Map, Value};

use crate::field::{FieldError, Path, Segment};

/// A list of strings as sent; an item of the wrong type is `None` (and was reported).
pub type StrList = Vec<Option<String>>;

/// The Image object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Image {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`; `None` when absent.
    pub spec: Option<Spec>,
    /// `status`; `None` when absent.
    pub status: Option<Status>,
}

/// The parts of `metadata` the rules look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    /// `metadata.name`.
    pub name: Option<String>,
    /// `metadata.generateName`.
    pub generate_name: Option<String>,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.uid`.
    pub uid: Option<String>,
    /// `metadata.creationTimestamp`.
    pub creation_timestamp: Option<String>,
}

/// `spec`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    /// `spec.additionalTrustedCA`.
    pub additional_trusted_ca: Option<TrustedCa>,
    /// `spec.allowedRegistriesForImport`; an item of the wrong type is `None`.
    pub allowed_registries_for_import: Option<Vec<Option<RegistryLocation>>>,
    /// `spec.externalRegistryHostnames`.
    pub external_registry_hostnames: Option<StrList>,
    /// `spec.imageStreamImportMode`.
    pub image_stream_import_mode: Option<String>,
    /// `spec.registrySources`.
    pub registry_sources: Option<RegistrySources>,
}

/// `spec.additionalTrustedCA`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrustedCa {
    /// `name`; `None` when the key is absent.
    pub name: Option<String>,
    /// Whether `name` was present (with any type).
    pub name_present: bool,
}

/// An item of `spec.allowedRegistriesForImport`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistryLocation {
    /// `domainName`; `None` when absent or of the wrong type.
    pub domain_name: Option<String>,
    /// `insecure`; false when absent.
    pub insecure: bool,
}

/// `spec.registrySources`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistrySources {
    /// `allowedRegistries`.
    pub allowed: Option<StrList>,
    /// `blockedRegistries`.
    pub blocked: Option<StrList>,
    /// `containerRuntimeSearchRegistries`.
    pub search: Option<StrList>,
    /// `insecureRegistries`.
    pub insecure: Option<StrList>,
    /// Whether the key `allowedRegistries` is present (any type): CEL `has()`.
    pub has_allowed: bool,
    /// Whether the key `blockedRegistries` is present (any type): CEL `has()`.
    pub has_blocked: bool,
}

/// `status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// `status.internalRegistryHostname`.
    pub internal_registry_hostname: Option<String>,
    /// `status.externalRegistryHostnames`.
    pub external_registry_hostnames: Option<StrList>,
    /// `status.imageStreamImportMode`.
    pub image_stream_import_mode: Option<String>,
}

/// An Image with the type errors found while decoding it.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// What could be decoded.
    pub image: Image,
    /// One `FieldValueTypeInvalid` error per value of the wrong type (at most the limit given
    /// to [`decode_limited`], the first ones in document order).
    pub errors: Vec<FieldError>,
    /// The type errors past that limit, counted but not built: `(where, how many)`, where is
    /// the path of the value cut before its first list index (the list, for an item of a list).
    /// Empty from [`decode`].
    pub omitted: Vec<(Path, usize)>,
}

/// An object as sent, for the few rules that look at its JSON rather than its typed form
/// (ratcheting compares values as sent): the lenient path's tree, or the text of an object
/// decoded in one pass ([`crate::wire`]), read where a rule looks and turned into a tree only
/// when a rule asks for the whole.
#[derive(Debug)]
pub struct Raw<'a>(RawForm<'a>);

#[derive(Debug)]
enum RawForm<'a> {
    Tree(&'a Value),
    Parts {
        /// The texts of `spec` and `status`, where lookups start.
        spec: Option<&'a str>,
        status: Option<&'a str>,
        /// Whether a rule asked for something else.
        missed: std::cell::Cell<bool>,
    },
}

/// A value found by [`Raw::find`].
enum Found<'v> {
    Tree(&'v Value),
    Text(&'v str),
}

/// What [`Raw::value`] answers for an object known by its parts.
static NULL: Value = Value::Null;

impl<'a> Raw<'a> {
    /// An object decoded into a tree.
    pub fn tree(value: &'a Value) -> Self {
        Raw(RawForm::Tree(value))
    }

    /// An object that [`crate::wire`] decoded, known by the texts of its `spec` and `status`
    /// (valid JSON that a `Value` takes), when present and not `null`. The rules that read an
    /// object's JSON read only these when it is well typed, as every such object is; should one
    /// ask for anything else, [`Raw::missed`] says so and the review is judged again on the
    /// lenient path.
    pub fn parts(spec: Option<&'a str>, status: Option<&'a str>) -> Self {
        Raw(RawForm::Parts {
            spec,
            status,
            missed: std::cell::Cell::new(false),
        })
    }

    /// Whether a rule asked an object known by its parts for something else (then the answer
    /// it got, `null`, may be wrong).
    pub fn missed(&self) -> bool {
        matches!(&self.0, RawForm::Parts { missed, .. } if missed.get())
    }

    /// The object's tree (see [`Raw::parts`] for an object known by its parts).
    pub fn value(&self) -> &Value {
        match &self.0 {
            RawForm::Tree(value) => value,
            RawForm::Parts { missed, .. } => {
                missed.set(true);
                &NULL
            }
        }
    }

    /// [`Path::lookup`]: the value at `path`, `None` when absent or `null`. Of an object known
    /// by its parts, only the value found is decoded.
    pub fn lookup(&self, path: &Path) -> Option<std::borrow::Cow<'_, Value>> {
        use std::borrow::Cow;
        match self.find(path)? {
            Found::Tree(value) => Some(Cow::Borrowed(value)),
            // With the parser of the lenient path: serde_json's own `Value` parser reads an
            // object whose first key is its private RawValue token as the JSON in its string.
            Found::Text(text) => crate::bounded::from_slice(text.as_bytes(), usize::MAX)
                .ok()
                .map(Cow::Owned),
        }
    }

    /// Whether the value at `path` is the same in `self` and `other` (as [`Raw::lookup`]
    /// compares): two texts are compared as texts first, and decoded only when they differ.
    pub fn same_at(&self, other: &Raw<'_>, path: &Path) -> bool {
        match (self.find(path), other.find(path)) {
            (None, None) => true,
            (Some(Found::Text(a)), Some(Found::Text(b))) if a == b => true,
            (Some(_), Some(_)) => self.lookup(path) == other.lookup(path),
            _ => false,
        }
    }

    /// The value at `path` that is not `null`: in the tree, or its text.
    fn find(&self, path: &Path) -> Option<Found<'_>> {
        let RawForm::Parts { spec, status, .. } = &self.0 else {
            return path.lookup(self.value()).map(Found::Tree);
        };
        let (start, rest) = match path.segments() {
            [Segment::Field("spec"), rest @ ..] => (*spec, rest),
            [Segment::Field("status"), rest @ ..] => (*status, rest),
            _ => return path.lookup(self.value()).map(Found::Tree),
        };
        let mut text = start?;
        for segment in rest {
            text = crate::wire::child(text, segment)?;
        }
        (text != "null").then_some(Found::Text(text))
    }
}

/// Decodes an Image from its JSON form; never fails.
pub fn decode(value: &Value) -> Decoded {
    decode_limited(value, usize::MAX)
}

/// [`decode`], keeping at most `max_errors` type errors and counting the others in
/// [`Decoded::omitted`]: a list of a million numbers costs a million counts, not a million
/// error texts.
pub fn decode_limited(value: &Value, max_errors: usize) -> Decoded {
    let mut d = Decoder {
        errors: Vec::new(),
        max_errors,
        omitted: Vec::new(),
    };
    let image = match d.object(Some(value), &At::ROOT) {
        Some(obj) => Image {
            metadata: d.meta(obj),
            spec: d
                .object(obj.get("spec"), &At::field("spec"))
                .map(|o| d.spec(o)),
            status: d
                .object(obj.get("status"), &At::field("status"))
                .map(|o| d.status(o)),
        },
        None => Image::default(),
    };
    Decoded {
        image,
        errors: d.errors,
        omitted: d.omitted,
    }
}

/// The OpenAPI type name of a JSON value, as kube-openapi reports it.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

struct Decoder {
    errors: Vec<FieldError>,
    max_errors: usize,
    omitted: Vec<(Path, usize)>,
}

impl Decoder {
    fn mismatch(&mut self, path: &At<'_>, expected: &str, value: &Value) {
        if self.errors.len() < self.max_errors {
            self.errors.push(FieldError::type_invalid(
                path.to_path(),
                expected,
                type_name(value),
            ));
            return;
        }
        // The places are few (the fields of the schema), the errors maybe millions: count
        // them by place, allocating a path only for a new place.
        let unit = path.unit();
        match self.omitted.iter_mut().rev().find(|(p, _)| unit.is(p)) {
            Some((_, count)) => *count = count.saturating_add(1),
            None => self.omitted.push((unit.to_path(), 1)),
        }
    }

    fn object<'v>(
        &mut self,
        value: Option<&'v Value>,
        path: &At<'_>,
    ) -> Option<&'v Map<String, Value>> {
        match value? {
            Value::Null => None,
            Value::Object(map) => Some(map),
            other => {
                self.mismatch(path, "object", other);
                None
            }
        }
    }

    fn string(&mut self, value: Option<&Value>, path: &At<'_>) -> Option<String> {
        match value? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => {
                self.mismatch(path, "string", other);
                None
            }
        }
    }

    fn boolean(&mut self, value: Option<&Value>, path: &At<'_>) -> Option<bool> {
        match value? {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            other => {
                self.mismatch(path, "boolean", other);
                None
            }
        }
    }

    fn list<'v>(&mut self, value: Option<&'v Value>, path: &At<'_>) -> Option<&'v Vec<Value>> {
        match value? {
            Value::Null => None,
            Value::Array(items) => Some(items),
            other => {
                self.mismatch(path, "array", other);
                None
            }
        }
    }

    fn strings(&mut self, value: Option<&Value>, path: &At<'_>) -> Option<StrList> {
        let items = self.list(value, path)?;
        Some(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Some(s.clone()),
                    // A null item is not pruned from a list: it is a type error.
                    other => {
                        self.mismatch(&path.index(i), "string", other);
                        None
                    }
                })
                .collect(),
        )
    }

    fn meta(&mut self, obj: &Map<String, Value>) -> Meta {
        let path = At::field("metadata");
        let Some(meta) = self.object(obj.get("metadata"), &path) else {
            return Meta::default();
        };
        Meta {
            name: self.string(meta.get("name"), &path.child("name")),
            generate_name: self.string(meta.get("generateName"), &path.child("generateName")),
            namespace: self.string(meta.get("namespace"), &path.child("namespace")),
            uid: self.string(meta.get("uid"), &path.child("uid")),
            creation_timestamp: self.string(
                meta.get("creationTimestamp"),
                &path.child("creationTimestamp"),
            ),
        }
    }

    fn spec(&mut self, spec: &Map<String, Value>) -> Spec {
        let path = At::field("spec");
        let ca_path = path.child("additionalTrustedCA");
        let additional_trusted_ca =
            self.object(spec.get("additionalTrustedCA"), &ca_path)
                .map(|ca| {
                    let raw = ca.get("name").filter(|v| !v.is_null());
                    TrustedCa {
                        name: self.string(raw, &ca_path.child("name")),
                        name_present: raw.is_some(),
                    }
                });
        let import_path = path.child("allowedRegistriesForImport");
        let allowed_registries_for_import = self
            .list(spec.get("allowedRegistriesForImport"), &import_path)
            .map(|items| {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let item_path = import_path.index(i);
                        let obj = match item {
                            Value::Object(obj) => obj,
                            other => {
                                self.mismatch(&item_path, "object", other);
                                return None;
                            }
                        };
                        Some(RegistryLocation {
                            domain_name: self
                                .string(obj.get("domainName"), &item_path.child("domainName")),
                            insecure: self
                                .boolean(obj.get("insecure"), &item_path.child("insecure"))
                                .unwrap_or(false),
                        })
                    })
                    .collect()
            });
        Spec {
            additional_trusted_ca,
            allowed_registries_for_import,
            external_registry_hostnames: self.strings(
                spec.get("externalRegistryHostnames"),
                &path.child("externalRegistryHostnames"),
            ),
            image_stream_import_mode: self.string(
                spec.get("imageStreamImportMode"),
                &path.child("imageStreamImportMode"),
            ),
            registry_sources: self
                .object(spec.get("registrySources"), &path.child("registrySources"))
                .map(|rs| self.registry_sources(rs)),
        }
    }

    fn registry_sources(&mut self, rs: &Map<String, Value>) -> RegistrySources {
        let spec = At::field("spec");
        let path = spec.child("registrySources");
        let present = |key: &str| rs.get(key).is_some_and(|v| !v.is_null());
        RegistrySources {
            allowed: self.strings(
                rs.get("allowedRegistries"),
                &path.child("allowedRegistries"),
            ),
            blocked: self.strings(
                rs.get("blockedRegistries"),
                &path.child("blockedRegistries"),
            ),
            search: self.strings(
                rs.get("containerRuntimeSearchRegistries"),
                &path.child("containerRuntimeSearchRegistries"),
            ),
            insecure: self.strings(
                rs.get("insecureRegistries"),
                &path.child("insecureRegistries"),
            ),
            has_allowed: present("allowedRegistries"),
            has_blocked: present("blockedRegistries"),
        }
    }

    fn status(&mut self, status: &Map<String, Value>) -> Status {
        let path = At::field("status");
        Status {
            internal_registry_hostname: self.string(
                status.get("internalRegistryHostname"),
                &path.child("internalRegistryHostname"),
            ),
            external_registry_hostnames: self.strings(
                status.get("externalRegistryHostnames"),
                &path.child("externalRegistryHostnames"),
            ),
            image_stream_import_mode: self.string(
                status.get("imageStreamImportMode"),
                &path.child("imageStreamImportMode"),
            ),
        }
    }
}

/// A field path under construction, on the stack: turned into a [`Path`] only when a type
/// error needs one, so decoding a well-typed object allocates no paths.
#[derive(Clone)]
struct At<'p> {
    parent: Option<&'p At<'p>>,
    segment: Option<Segment>,
}

impl<'p> At<'p> {
    const ROOT: At<'static> = At {
        parent: None,
        segment: None,
    };

    fn field(name: &'static str) -> At<'static> {
        At {
            parent: None,
            segment: Some(Segment::Field(name)),
        }
    }

    fn child(&'p self, name: &'static str) -> At<'p> {
        At {
            parent: Some(self),
            segment: Some(Segment::Field(name)),
        }
    }

    fn index(&'p self, i: usize) -> At<'p> {
        At {
            parent: Some(self),
            segment: Some(Segment::Index(i)),
        }
    }

    /// This path cut before its first list index (itself when it has none).
    fn unit(&self) -> &At<'p> {
        let mut unit = self;
        let mut at = self;
        while let Some(parent) = at.parent {
            if matches!(at.segment, Some(Segment::Index(_))) {
                unit = parent;
            }
            at = parent;
        }
        unit
    }

    /// Whether this is the path `path`, compared without building it.
    fn is(&self, path: &Path) -> bool {
        let mut segments = path.segments().iter().rev();
        let mut at = Some(self);
        while let Some(a) = at {
            if let Some(segment) = &a.segment
                && segments.next() != Some(segment)
            {
                return false;
            }
            at = a.parent;
        }
        segments.next().is_none()
    }

    fn to_path(&self) -> Path {
        let mut segments = Vec::new();
        let mut at = Some(self);
        while let Some(a) = at {
            segments.extend(a.segment);
            at = a.parent;
        }
        segments.reverse();
        Path::from_segments(segments)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(v: Value) -> Vec<String> {
        decode(&v).errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn decodes_a_full_object() {
        let d = decode(&json!({
            "apiVersion": "config.openshift.io/v1", "kind": "Image",
            "metadata": {"name": "cluster", "uid": "u1"},
            "spec": {
                "additionalTrustedCA": {"name": "ca"},
                "allowedRegistriesForImport": [{"domainName": "quay.io", "insecure": true}, {}],
                "externalRegistryHostnames": ["r.example.com"],
                "imageStreamImportMode": "Legacy",
                "registrySources": {"blockedRegistries": [], "allowedRegistries": null, "unknown": 1},
            },
            "status": {"internalRegistryHostname": "i.svc:5000"},
        }));
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let spec = d.image.spec.unwrap_or_default();
        assert_eq!(d.image.metadata.name.as_deref(), Some("cluster"));
        assert_eq!(
            spec.additional_trusted_ca.and_then(|c| c.name).as_deref(),
            Some("ca")
        );
        let import = spec.allowed_registries_for_import.unwrap_or_default();
        assert_eq!(import.len(), 2);
        assert_eq!(
            import[0],
            Some(RegistryLocation {
                domain_name: Some("quay.io".into()),
                insecure: true
            })
        );
        assert_eq!(import[1], Some(RegistryLocation::default()));
        let rs = spec.registry_sources.unwrap_or_default();
        assert!(
            rs.has_blocked && !rs.has_allowed,
            "null is pruned, [] is present"
        );
        assert_eq!(rs.blocked, Some(vec![]));
        assert_eq!(
            d.image
                .status
                .and_then(|s| s.internal_registry_hostname)
                .as_deref(),
            Some("i.svc:5000")
        );
    }

    #[test]
    fn type_errors_at_exact_paths_and_the_rest_still_decodes() {
        let v = json!({
            "metadata": {"name": 5},
            "spec": {
                "registrySources": {
                    "containerRuntimeSearchRegistries": "quay.io",
                    "blockedRegistries": ["ok.io", 7, null, {"a": 1}],
                },
                "allowedRegistriesForImport": [{"domainName": "quay.io", "insecure": "yes"}, "x"],
                "additionalTrustedCA": {"name": ["a"]},
                "imageStreamImportMode": 1.5,
            },
        });
        assert_eq!(
            errors(v.clone()),
            vec![
                r#"metadata.name: Invalid value: "integer": metadata.name in body must be of type string: "integer""#,
                r#"spec.additionalTrustedCA.name: Invalid value: "array": spec.additionalTrustedCA.name in body must be of type string: "array""#,
                r#"spec.allowedRegistriesForImport[0].insecure: Invalid value: "string": spec.allowedRegistriesForImport[0].insecure in body must be of type boolean: "string""#,
                r#"spec.allowedRegistriesForImport[1]: Invalid value: "string": spec.allowedRegistriesForImport[1] in body must be of type object: "string""#,
                r#"spec.imageStreamImportMode: Invalid value: "number": spec.imageStreamImportMode in body must be of type string: "number""#,
                r#"spec.registrySources.blockedRegistries[1]: Invalid value: "integer": spec.registrySources.blockedRegistries[1] in body must be of type string: "integer""#,
                r#"spec.registrySources.blockedRegistries[2]: Invalid value: "null": spec.registrySources.blockedRegistries[2] in body must be of type string: "null""#,
                r#"spec.registrySources.blockedRegistries[3]: Invalid value: "object": spec.registrySources.blockedRegistries[3] in body must be of type string: "object""#,
                r#"spec.registrySources.containerRuntimeSearchRegistries: Invalid value: "string": spec.registrySources.containerRuntimeSearchRegistries in body must be of type array: "string""#,
            ]
        );
        let d = decode(&v);
        let rs = d
            .image
            .spec
            .and_then(|s| s.registry_sources)
            .unwrap_or_default();
        assert_eq!(
            rs.blocked,
            Some(vec![Some("ok.io".into()), None, None, None])
        );
        assert_eq!(rs.search, None);
    }

    /// Past the limit, type errors are counted by the list (or field) they are in.
    #[test]
    fn limited_decoding_counts_the_rest() {
        let v = json!({
            "metadata": {"name": 5},
            "spec": {
                "allowedRegistriesForImport": [{"domainName": 1}, {"domainName": 2}, 3],
                "registrySources": {"blockedRegistries": [0, 0, 0, 0], "allowedRegistries": [1]},
            },
            "status": {"externalRegistryHostnames": [true, "ok"]},
        });
        let full = decode(&v);
        assert_eq!(full.errors.len(), 10);
        assert!(full.omitted.is_empty());
        let limited = decode_limited(&v, 2);
        assert_eq!(limited.errors, full.errors[..2].to_vec());
        let omitted: Vec<(String, usize)> = limited
            .omitted
            .iter()
            .map(|(p, n)| (p.to_string(), *n))
            .collect();
        assert_eq!(
            omitted,
            [
                ("spec.allowedRegistriesForImport".to_owned(), 2),
                ("spec.registrySources.allowedRegistries".to_owned(), 1),
                ("spec.registrySources.blockedRegistries".to_owned(), 4),
                ("status.externalRegistryHostnames".to_owned(), 1),
            ]
        );
        assert_eq!(limited.image.spec, full.image.spec);
        let none = decode_limited(&v, 0);
        assert!(none.errors.is_empty());
        assert_eq!(none.omitted.iter().map(|(_, n)| n).sum::<usize>(), 10);
        assert_eq!(none.omitted[0].0.to_string(), "metadata.name");
    }

    #[test]
    fn wrong_shapes_at_the_top() {
        assert_eq!(
            errors(json!({"spec": "x"})),
            vec![r#"spec: Invalid value: "string": spec in body must be of type object: "string""#]
        );
        assert_eq!(errors(json!([])).len(), 1);
        let d = decode(&json!({"spec": {"registrySources": {"allowedRegistries": true}}}));
        let rs = d
            .image
            .spec
            .and_then(|s| s.registry_sources)
            .unwrap_or_default();
        assert!(
            rs.has_allowed,
            "a present key of the wrong type still counts for has()"
        );
    }
}
