//! The one-pass decode: an AdmissionReview as the API server sends it, from bytes straight to
//! borrowed typed structs, and each object's Image decoded straight from its bytes, without a
//! `serde_json::Value` tree.
//!
//! It is a fast path, not a second engine: [`decode`] answers only for a review that the lenient
//! decoder ([`crate::envelope`], [`crate::image`]) would decode without a note and without a type
//! error, and that it decodes to the same request and the same Images. Anything else (a missing
//! `userInfo`, a `null` item in a list, a duplicate key, a number or escape that a `Value` would
//! refuse although a skipped field carries it) gives `None`, and the caller takes the lenient
//! path, which says what it says today. `tests/one_pass.rs` and the `one_pass` fuzz target
//! check that both paths answer byte for byte the same.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::envelope::{
    ADMISSION_V1, ADMISSION_V1BETA1, AdmissionRequest, GroupVersionName, Operation,
};
use crate::field::Segment;
use crate::image::{
    Decoded, Image, Meta, RegistryLocation, RegistrySources, Spec, Status, TrustedCa,
};

/// The most a byte of JSON can cost once decoded into a `Value`, by [`crate::bounded`]'s
/// estimate: `{"":{"":{…}}}` starts a 640-byte map leaf every 5 bytes, 128 per byte; 160 leaves
/// room. A body of `n` bytes is decoded in one pass only when `n × MAX_EXPANSION` is within the
/// review's budget, so that the lenient path could never have refused it as too large.
pub const MAX_EXPANSION: usize = 160;

/// A review decoded in one pass.
#[derive(Debug)]
pub struct WireReview<'a> {
    /// The review's apiVersion.
    pub api_version: &'static str,
    /// The request, with no objects in it: they are in `object` and `old_object`.
    pub request: AdmissionRequest,
    /// `request.object`.
    pub object: Option<WireObject<'a>>,
    /// `request.oldObject`.
    pub old_object: Option<WireObject<'a>>,
}

/// An object of a review decoded in one pass: its Image, and the texts of its `spec` and
/// `status`, for the rules that look at them as sent (ratcheting).
#[derive(Debug)]
pub struct WireObject<'a> {
    /// The text of its `spec`, when present and not `null`.
    pub spec: Option<&'a str>,
    /// The text of its `status`, when present and not `null`.
    pub status: Option<&'a str>,
    /// `apiVersion`, `""` when absent.
    pub api_version: Cow<'a, str>,
    /// `kind`, `""` when absent.
    pub kind: Cow<'a, str>,
    /// The Image, with no type error (else the object is not decoded in one pass).
    pub decoded: Decoded,
}

/// Decodes `body` in one pass, or `None` when the lenient path must decide (see the module's
/// description). `budget` is the review's memory budget ([`crate::bounded`]).
pub fn decode(body: &[u8], budget: usize) -> Option<WireReview<'_>> {
    if body.len().saturating_mul(MAX_EXPANSION) > budget {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    if !plain(text.as_bytes()) {
        return None;
    }
    let Map(review) = serde_json::from_str::<Map<Review<'_>>>(text).ok()?;
    let api_version = match review.api_version.as_deref() {
        Some(ADMISSION_V1) => ADMISSION_V1,
        Some(ADMISSION_V1BETA1) => ADMISSION_V1BETA1,
        _ => return None,
    };
    let Map(request) = review.request?;
    if !request.user_info.0 {
        return None;
    }
    let object = match request.object {
        Some(Map(object)) => Some(wire_object(object)?),
        None => None,
    };
    let old_object = match request.old_object {
        Some(Map(object)) => Some(wire_object(object)?),
        None => None,
    };
    Some(WireReview {
        api_version,
        request: AdmissionRequest {
            uid: request.uid?.into_owned(),
            kind: Some(request.kind?.0.into_gvn(false)),
            resource: Some(request.resource?.0.into_gvn(true)),
            sub_resource: request
                .sub_resource
                .map(Cow::into_owned)
                .unwrap_or_default(),
            name: request.name.map(Cow::into_owned).unwrap_or_default(),
            operation: Operation::parse(request.operation.as_deref()?)?,
            object: None,
            old_object: None,
            dry_run: request.dry_run.0,
        },
        object,
        old_object,
    })
}

fn wire_object(object: Object<'_>) -> Option<WireObject<'_>> {
    let spec = object.spec.map(RawValue::get);
    let status = object.status.map(RawValue::get);
    let spec_in = match spec {
        Some(spec) => Some(serde_json::from_str::<Map<SpecIn<'_>>>(spec).ok()?.0),
        None => None,
    };
    let status_in = match status {
        Some(status) => Some(serde_json::from_str::<Map<StatusIn<'_>>>(status).ok()?.0),
        None => None,
    };
    Some(WireObject {
        spec,
        status,
        api_version: object.api_version.unwrap_or_default(),
        kind: object.kind.unwrap_or_default(),
        decoded: Decoded {
            image: Image {
                metadata: object.metadata.map(|m| m.0.into_meta()).unwrap_or_default(),
                spec: spec_in.map(SpecIn::into_spec),
                status: status_in.map(StatusIn::into_status),
            },
            errors: Vec::new(),
            omitted: Vec::new(),
        },
    })
}

/// Whether the skipped parts of a JSON text are as a `Value` would have them: no `\u` escape of
/// a surrogate (a `Value` refuses a lone one; a pair is rare enough to leave to the lenient
/// path), no number with an exponent or more than 18 digits before its point (a `Value` refuses
/// one out of range), nesting under 100 levels (a `Value` stops at 128). serde_json checks the
/// rest of a skipped value (its syntax, control characters) as a `Value` does.
fn plain(bytes: &[u8]) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'"' => {
                i += 1;
                // Inside a string: only `"` and `\` matter. Past the end (an escape as the last
                // byte) the string is unterminated: the parser refuses it.
                loop {
                    let Some(at) = bytes
                        .get(i..)
                        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                    else {
                        return true;
                    };
                    i += at;
                    if bytes.get(i) == Some(&b'"') {
                        break;
                    }
                    // An escape: `\uD800`–`\uDFFF` is a surrogate.
                    if bytes.get(i + 1) == Some(&b'u')
                        && bytes
                            .get(i + 2)
                            .is_some_and(|b| b.eq_ignore_ascii_case(&b'd'))
                        && bytes
                            .get(i + 3)
                            .is_some_and(|b| matches!(b, b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'))
                    {
                        return false;
                    }
                    i += 2;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth >= 100 {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let mut digits = 0;
                while let Some(&b) = bytes.get(i) {
                    match b {
                        b'0'..=b'9' => digits += 1,
                        b'-' | b'+' => {}
                        b'e' | b'E' => return false,
                        _ => break,
                    }
                    i += 1;
                }
                if digits > 18 {
                    return false;
                }
                if bytes.get(i) == Some(&b'.') {
                    i += 1;
                    while let Some(&b) = bytes.get(i) {
                        match b {
                            b'0'..=b'9' => {}
                            b'e' | b'E' => return false,
                            _ => break,
                        }
                        i += 1;
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    true
}

// The wire forms. An `Option` field is absent or `null`; serde refuses a duplicate key, a value
// of another type and a `null` list item, which sends the review to the lenient path. Every
// struct is read through [`Map`]: a derived struct would also take a JSON array, field by field.

/// A struct that only a JSON object can give (serde's derived structs also read arrays).
struct Map<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Map<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = Map<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Map<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Map)
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Review<'a> {
    #[serde(rename = "apiVersion", borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request: Option<Map<Request<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    #[serde(borrow)]
    uid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Map<Gvn<'a>>>,
    #[serde(borrow)]
    resource: Option<Map<Gvn<'a>>>,
    #[serde(borrow)]
    sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    operation: Option<Cow<'a, str>>,
    #[serde(default)]
    user_info: Present,
    #[serde(default)]
    dry_run: NotNull,
    #[serde(borrow)]
    object: Option<Map<Object<'a>>>,
    #[serde(borrow)]
    old_object: Option<Map<Object<'a>>>,
}

/// Whether a key is present, whatever its value (`null` included).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// A boolean that is false when absent; `null` is refused (the lenient path notes it).
#[derive(Default)]
struct NotNull(bool);

impl<'de> Deserialize<'de> for NotNull {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bool::deserialize(d).map(NotNull)
    }
}

/// `request.kind` or `request.resource`: the group is required (the lenient path notes its
/// absence); the name is `kind` in the one, `resource` in the other.
#[derive(Deserialize)]
struct Gvn<'a> {
    #[serde(borrow)]
    group: Cow<'a, str>,
    #[serde(borrow)]
    version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource: Option<Cow<'a, str>>,
}

impl Gvn<'_> {
    /// The group, version and kind (`resource` false) or resource (`resource` true).
    fn into_gvn(self, resource: bool) -> GroupVersionName {
        let name = if resource { self.resource } else { self.kind };
        GroupVersionName {
            group: self.group.into_owned(),
            version: self.version.map(Cow::into_owned).unwrap_or_default(),
            name: name.map(Cow::into_owned).unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct Object<'a> {
    #[serde(rename = "apiVersion", borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    metadata: Option<Map<Metadata<'a>>>,
    #[serde(borrow)]
    spec: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<&'a RawValue>,
}

fn owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

fn owned_list(list: Option<Vec<Cow<'_, str>>>) -> Option<Vec<Option<String>>> {
    list.map(|items| items.into_iter().map(|s| Some(s.into_owned())).collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    generate_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    creation_timestamp: Option<Cow<'a, str>>,
}

impl Metadata<'_> {
    fn into_meta(self) -> Meta {
        Meta {
            name: owned(self.name),
            generate_name: owned(self.generate_name),
            namespace: owned(self.namespace),
            uid: owned(self.uid),
            creation_timestamp: owned(self.creation_timestamp),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecIn<'a> {
    #[serde(rename = "additionalTrustedCA", borrow)]
    additional_trusted_ca: Option<Map<TrustedCaIn<'a>>>,
    #[serde(borrow)]
    allowed_registries_for_import: Option<Vec<Map<LocationIn<'a>>>>,
    #[serde(borrow)]
    external_registry_hostnames: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    image_stream_import_mode: Option<Cow<'a, str>>,
    #[serde(borrow)]
    registry_sources: Option<Map<SourcesIn<'a>>>,
}

impl SpecIn<'_> {
    fn into_spec(self) -> Spec {
        Spec {
            additional_trusted_ca: self.additional_trusted_ca.map(|Map(ca)| TrustedCa {
                name_present: ca.name.is_some(),
                name: owned(ca.name),
            }),
            allowed_registries_for_import: self.allowed_registries_for_import.map(|items| {
                items
                    .into_iter()
                    .map(|Map(item)| {
                        Some(RegistryLocation {
                            domain_name: owned(item.domain_name),
                            insecure: item.insecure.unwrap_or(false),
                        })
                    })
                    .collect()
            }),
            external_registry_hostnames: owned_list(self.external_registry_hostnames),
            image_stream_import_mode: owned(self.image_stream_import_mode),
            registry_sources: self.registry_sources.map(|s| s.0.into_sources()),
        }
    }
}

#[derive(Deserialize)]
struct TrustedCaIn<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocationIn<'a> {
    #[serde(borrow)]
    domain_name: Option<Cow<'a, str>>,
    insecure: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourcesIn<'a> {
    #[serde(borrow)]
    allowed_registries: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    blocked_registries: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    container_runtime_search_registries: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    insecure_registries: Option<Vec<Cow<'a, str>>>,
}

impl SourcesIn<'_> {
    fn into_sources(self) -> RegistrySources {
        RegistrySources {
            has_allowed: self.allowed_registries.is_some(),
            has_blocked: self.blocked_registries.is_some(),
            allowed: owned_list(self.allowed_registries),
            blocked: owned_list(self.blocked_registries),
            search: owned_list(self.container_runtime_search_registries),
            insecure: owned_list(self.insecure_registries),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusIn<'a> {
    #[serde(borrow)]
    internal_registry_hostname: Option<Cow<'a, str>>,
    #[serde(borrow)]
    external_registry_hostnames: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    image_stream_import_mode: Option<Cow<'a, str>>,
}

impl StatusIn<'_> {
    fn into_status(self) -> Status {
        Status {
            internal_registry_hostname: owned(self.internal_registry_hostname),
            external_registry_hostnames: owned_list(self.external_registry_hostnames),
            image_stream_import_mode: owned(self.image_stream_import_mode),
        }
    }
}

/// The text of the value at `segment` in the JSON text `text` (a valid one, see [`decode`]):
/// a field of an object (its last occurrence, as a `Value` keeps), or an item of a list.
pub(crate) fn child<'t>(text: &'t str, segment: &Segment) -> Option<&'t str> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

    struct Find<'s>(&'s Segment);

    impl<'de> Visitor<'de> for Find<'_> {
        type Value = Option<&'de RawValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match self.0 {
                    Segment::Field(name) if key == *name => found = Some(map.next_value()?),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(found)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            let mut i = 0;
            while let Some(item) = seq.next_element::<&'de RawValue>()? {
                if matches!(self.0, Segment::Index(at) if *at == i) {
                    found = Some(item);
                }
                i += 1;
            }
            Ok(found)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    impl<'de> DeserializeSeed<'de> for Find<'_> {
        type Value = Option<&'de RawValue>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    Find(segment).deserialize(&mut de).ok()?.map(RawValue::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_known_by_its_parts_answers_under_them_and_says_when_asked_more() {
        use crate::field::Path;
        use crate::image::Raw;
        let raw = Raw::parts(Some(r#"{"a":[1,{"b":null,"c":"x"}],"a":[2]}"#), None);
        let at = |path: Path| raw.lookup(&path).map(|v| v.into_owned());
        assert_eq!(
            at(Path::new(&["spec", "a"]).index(0)),
            Some(serde_json::json!(2))
        );
        assert_eq!(at(Path::new(&["spec", "a"]).index(1)), None);
        assert_eq!(at(Path::new(&["status", "a"])), None);
        assert!(!raw.missed());
        assert_eq!(at(Path::new(&["metadata", "name"])), None);
        assert!(
            raw.missed(),
            "a lookup outside spec and status is not answered"
        );
        let raw = Raw::parts(Some(r#"{"a":[1,{"b":null,"c":"x"}]}"#), None);
        let at = |path: Path| raw.lookup(&path).map(|v| v.into_owned());
        assert_eq!(at(Path::new(&["spec", "a"]).index(1).child("b")), None);
        assert_eq!(
            at(Path::new(&["spec", "a"]).index(1).child("c")),
            Some(serde_json::json!("x"))
        );
    }

    #[test]
    fn plain_texts_pass_and_what_a_value_refuses_does_not() {
        assert!(plain(
            br#"{"a":"x\"y\\","b":[1,-2.5,true,null],"c":{"d":"\u00e9"}}"#
        ));
        assert!(!plain(br#"{"a":"\ud800"}"#));
        assert!(!plain(br#"{"a":"\uDBFF\uDC00"}"#));
        assert!(!plain(br#"{"a":1e999}"#));
        assert!(!plain(br#"{"a":1.5E3}"#));
        assert!(!plain(br#"{"a":1234567890123456789}"#));
        assert!(plain(br#"{"a":"1e999 in a string"}"#));
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(!plain(deep.as_bytes()));
    }
}
