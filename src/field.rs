//! Field paths and field errors, ported from `k8s.io/apimachinery/pkg/util/validation/field`.
//!
//! The text a user sees from `oc apply` is built here, so the rendering copies apimachinery
//! (Kubernetes 1.36) byte for byte: `spec.registrySources.blockedRegistries[0]: Invalid value: "x": detail`.

use std::fmt::{self, Write as _};

use serde_json::Value;

/// One step of a [`Path`]: a field name or a list index. Paths order field names
/// alphabetically (the order of the CRD schema) and indices numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A named field, rendered `.name`.
    Field(&'static str),
    /// A list index, rendered `[i]`.
    Index(usize),
}

/// A field path such as `spec.registrySources.blockedRegistries[0]`.
///
/// Paths are small (at most five segments here), so a vector is cheaper than apimachinery's
/// linked list and still cheap to extend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(Vec<Segment>);

impl Path {
    /// The root of the object (renders as `<nil>` when used alone, as apimachinery does).
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// A path of named fields from the root, e.g. `Path::new(&["spec", "registrySources"])`.
    pub fn new(fields: &[&'static str]) -> Self {
        Path(fields.iter().map(|f| Segment::Field(f)).collect())
    }

    /// A path of these segments.
    pub fn from_segments(segments: Vec<Segment>) -> Self {
        Path(segments)
    }

    /// This path extended by a field name.
    pub fn child(&self, name: &'static str) -> Self {
        self.extended(Segment::Field(name))
    }

    /// This path extended by a list index.
    pub fn index(&self, i: usize) -> Self {
        self.extended(Segment::Index(i))
    }

    /// This path and one more segment, in one allocation.
    fn extended(&self, segment: Segment) -> Self {
        let mut segments = Vec::with_capacity(self.0.len() + 1);
        segments.extend_from_slice(&self.0);
        segments.push(segment);
        Path(segments)
    }

    /// The segments from the root.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at this path inside a JSON document; `null` counts as absent, as the API
    /// server prunes it.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut current = root;
        for segment in &self.0 {
            current = match segment {
                Segment::Field(name) => current.as_object()?.get(*name)?,
                Segment::Index(i) => current.as_array()?.get(*i)?,
            };
        }
        (!current.is_null()).then_some(current)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<nil>");
        }
        // The text is gathered on the stack and written in one piece (a path is short): each
        // write to the formatter costs more than the bytes it copies.
        let mut out = PathText::default();
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Field(name) => {
                    if i > 0 {
                        out.push(f, b".")?;
                    }
                    out.push(f, name.as_bytes())?;
                }
                Segment::Index(index) => {
                    // The digits by hand: the formatting machinery costs more than the rest of
                    // the path, and the formatter's width or fill must not apply to them.
                    let mut digits = [0u8; 22];
                    let mut at = digits.len() - 1;
                    digits[at] = b']';
                    let mut n = *index;
                    loop {
                        at -= 1;
                        digits[at] = b'0' + (n % 10) as u8;
                        n /= 10;
                        if n == 0 {
                            break;
                        }
                    }
                    at -= 1;
                    digits[at] = b'[';
                    out.push(f, digits.get(at..).unwrap_or_default())?;
                }
            }
        }
        out.flush(f)
    }
}

/// A buffer for [`Path`]'s text: whole UTF-8 pieces (field names, `.`, `[i]`), written to the
/// formatter when full and at the end.
struct PathText {
    bytes: [u8; 128],
    len: usize,
}

impl Default for PathText {
    fn default() -> Self {
        PathText {
            bytes: [0; 128],
            len: 0,
        }
    }
}

impl PathText {
    fn push(&mut self, f: &mut fmt::Formatter<'_>, piece: &[u8]) -> fmt::Result {
        if self.len + piece.len() > self.bytes.len() {
            self.flush(f)?;
            if piece.len() > self.bytes.len() {
                return f.write_str(std::str::from_utf8(piece).map_err(|_| fmt::Error)?);
            }
        }
        if let Some(room) = self.bytes.get_mut(self.len..self.len + piece.len()) {
            room.copy_from_slice(piece);
            self.len += piece.len();
        }
        Ok(())
    }

    fn flush(&mut self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.bytes.get(..self.len).unwrap_or_default();
        self.len = 0;
        // Whole UTF-8 pieces, so always UTF-8.
        f.write_str(std::str::from_utf8(text).map_err(|_| fmt::Error)?)
    }
}

/// The closed set of apimachinery error types that this engine produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `FieldValueRequired`, "Required value".
    Required,
    /// `FieldValueInvalid`, "Invalid value".
    Invalid,
    /// `FieldValueNotSupported`, "Unsupported value".
    NotSupported,
    /// `FieldValueDuplicate`, "Duplicate value".
    Duplicate,
    /// `FieldValueTooMany`, "Too many".
    TooMany,
    /// `FieldValueTooLong`, "Too long".
    TooLong,
    /// `FieldValueTypeInvalid`, rendered "Invalid value" like apimachinery does.
    TypeInvalid,
    /// `FieldValueForbidden`, "Forbidden".
    Forbidden,
}

impl ErrorKind {
    /// The `CauseType` string sent as `details.causes[].reason`.
    pub fn cause_type(self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::TooMany => "FieldValueTooMany",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            ErrorKind::Forbidden => "FieldValueForbidden",
        }
    }

    /// The fixed phrase of `ErrorType.String()`.
    pub fn phrase(self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid | ErrorKind::TypeInvalid => "Invalid value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::TooMany => "Too many",
            ErrorKind::TooLong => "Too long",
            ErrorKind::Forbidden => "Forbidden",
        }
    }

    /// Parses a cause type string (`FieldValueInvalid`) back into a kind.
    pub fn from_cause_type(s: &str) -> Option<Self> {
        [
            ErrorKind::Required,
            ErrorKind::Invalid,
            ErrorKind::NotSupported,
            ErrorKind::Duplicate,
            ErrorKind::TooMany,
            ErrorKind::TooLong,
            ErrorKind::TypeInvalid,
            ErrorKind::Forbidden,
        ]
        .into_iter()
        .find(|k| k.cause_type() == s)
    }
}

/// The offending value, as apimachinery renders it in an error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadValue {
    /// No value shown (`field.OmitValueType`, and the kinds that never show one).
    Omit,
    /// A string, rendered with Go's `%q`.
    Str(String),
    /// An integer, rendered plainly.
    Int(i64),
    /// Any other JSON value (a number, a boolean, a list, an object, null), rendered as JSON, as
    /// apimachinery renders a value that is not a string (Kubernetes 1.34 and later).
    Json(String),
}

/// One validation error, `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The error type.
    pub kind: ErrorKind,
    /// Where the error is.
    pub path: Path,
    /// The offending value.
    pub value: BadValue,
    /// The explanation after the value; may be empty.
    pub detail: String,
}

impl FieldError {
    /// `field.Required(path, detail)`.
    pub fn required(path: Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Required, path, BadValue::Omit, detail)
    }

    /// `field.Invalid(path, value, detail)` with a string value.
    pub fn invalid(path: Path, value: &str, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::Invalid,
            path,
            BadValue::Str(value.to_owned()),
            detail,
        )
    }

    /// `field.Invalid(path, field.OmitValueType{}, detail)`.
    pub fn invalid_omit(path: Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, path, BadValue::Omit, detail)
    }

    /// `field.Invalid(path, n, detail)` with an integer value.
    pub fn invalid_int(path: Path, value: i64, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, path, BadValue::Int(value), detail)
    }

    /// `field.NotSupported(path, value, supported)`.
    pub fn not_supported(path: Path, value: &str, supported: &[&str]) -> Self {
        Self::not_supported_value(path, BadValue::Str(value.to_owned()), supported)
    }

    /// `field.NotSupported(path, value, supported)` with a value of any JSON type: a string
    /// is quoted, anything else is shown as JSON (`Unsupported value: ["Legacy"]`).
    pub fn not_supported_json(path: Path, value: &serde_json::Value, supported: &[&str]) -> Self {
        let value = match value {
            serde_json::Value::String(s) => BadValue::Str(s.clone()),
            other => BadValue::Json(other.to_string()),
        };
        Self::not_supported_value(path, value, supported)
    }

    fn not_supported_value(path: Path, value: BadValue, supported: &[&str]) -> Self {
        let detail = format!(
            "supported values: {}",
            supported
                .iter()
                .map(|s| go_quote(s))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Self::new(ErrorKind::NotSupported, path, value, detail)
    }

    /// `field.Duplicate(path, value)`.
    pub fn duplicate(path: Path, value: &str) -> Self {
        Self::new(
            ErrorKind::Duplicate,
            path,
            BadValue::Str(value.to_owned()),
            "",
        )
    }

    /// `field.TooMany(path, actual, max)`.
    pub fn too_many(path: Path, actual: usize, max: usize) -> Self {
        let actual = i64::try_from(actual).unwrap_or(i64::MAX);
        Self::new(
            ErrorKind::TooMany,
            path,
            BadValue::Int(actual),
            format!("must have at most {max} items"),
        )
    }

    /// `field.TooLong(path, value, max)` (1.32+ wording; the value is never shown).
    pub fn too_long(path: Path, max: usize) -> Self {
        Self::new(
            ErrorKind::TooLong,
            path,
            BadValue::Omit,
            format!("may not be more than {max} bytes"),
        )
    }

    /// The schema type error of kube-openapi: `<path> in body must be of type <t>: "<actual>"`.
    pub fn type_invalid(path: Path, expected: &str, actual: &str) -> Self {
        let detail = format!(
            "{path} in body must be of type {expected}: {}",
            go_quote(actual)
        );
        Self::new(
            ErrorKind::TypeInvalid,
            path,
            BadValue::Str(actual.to_owned()),
            detail,
        )
    }

    /// `field.Forbidden(path, detail)`.
    pub fn forbidden(path: Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, path, BadValue::Omit, detail)
    }

    fn new(kind: ErrorKind, path: Path, value: BadValue, detail: impl Into<String>) -> Self {
        FieldError {
            kind,
            path,
            value,
            detail: detail.into(),
        }
    }

    /// `ErrorBody()`: the message without the path, as sent in `details.causes[].message`.
    pub fn body(&self) -> String {
        let mut s = String::from(self.kind.phrase());
        let shows_value = !matches!(
            self.kind,
            ErrorKind::Required | ErrorKind::Forbidden | ErrorKind::TooLong
        );
        if shows_value {
            match &self.value {
                BadValue::Omit => {}
                BadValue::Str(v) => {
                    s.push_str(": ");
                    s.push_str(&go_quote(v));
                }
                BadValue::Int(n) => {
                    let _ = write!(s, ": {n}");
                }
                BadValue::Json(v) => {
                    s.push_str(": ");
                    s.push_str(v);
                }
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.body())
    }
}

/// Go's `strconv.Quote`: double quotes, with backslash escapes for quotes, backslashes and
/// every character that is not printable, so a rendered value never carries a control
/// character (the API server drops warnings that do).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    // Printable ASCII without a quote or a backslash, the usual case, is copied as it is, up to
    // the first other character (a shortened value ends with `…`).
    let plain = s
        .bytes()
        .position(|b| !(b' '..=b'~').contains(&b) || b == b'"' || b == b'\\')
        .unwrap_or(s.len());
    let (head, rest) = s.split_at(plain);
    out.push_str(head);
    for c in rest.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if !is_go_printable(c) => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint` for the characters that matter in headers:
/// controls, separators other than the ASCII space, and the invisible format characters.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c,
        '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{180e}'
        | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
        | '\u{e000}'..='\u{f8ff}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        | '\u{fffe}' | '\u{ffff}' | '\u{f0000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_renders_like_apimachinery() {
        let p = Path::new(&["spec", "registrySources"])
            .child("blockedRegistries")
            .index(0);
        assert_eq!(p.to_string(), "spec.registrySources.blockedRegistries[0]");
        assert_eq!(Path::root().to_string(), "<nil>");
        assert_eq!(
            Path::new(&["spec"])
                .index(3)
                .child("domainName")
                .to_string(),
            "spec[3].domainName"
        );
    }

    #[test]
    fn lookup_treats_null_as_absent() {
        let v: Value = serde_json::json!({"spec": {"a": [1, null], "b": null}});
        assert_eq!(
            Path::new(&["spec", "a"]).index(0).lookup(&v),
            Some(&serde_json::json!(1))
        );
        assert_eq!(Path::new(&["spec", "a"]).index(1).lookup(&v), None);
        assert_eq!(Path::new(&["spec", "b"]).lookup(&v), None);
        assert_eq!(Path::new(&["spec", "c"]).lookup(&v), None);
    }

    /// One golden string per kind, the text users see from `oc apply` (RULEBOOK section 5).
    #[test]
    fn golden_error_strings() {
        let rs = Path::new(&["spec", "registrySources"]);
        let cases = [
            (
                FieldError::required(Path::new(&["spec"]), ""),
                "spec: Required value",
            ),
            (
                FieldError::required(
                    Path::new(&["metadata", "name"]),
                    "name or generateName is required",
                ),
                "metadata.name: Required value: name or generateName is required",
            ),
            (
                FieldError::invalid(Path::new(&["metadata", "name"]), "foo", "must be cluster"),
                "metadata.name: Invalid value: \"foo\": must be cluster",
            ),
            (
                FieldError::not_supported(
                    Path::new(&["spec", "imageStreamImportMode"]),
                    "X",
                    &["", "Legacy", "PreserveOriginal"],
                ),
                "spec.imageStreamImportMode: Unsupported value: \"X\": supported values: \"\", \"Legacy\", \"PreserveOriginal\"",
            ),
            (
                FieldError::duplicate(
                    rs.child("containerRuntimeSearchRegistries").index(1),
                    "quay.io",
                ),
                "spec.registrySources.containerRuntimeSearchRegistries[1]: Duplicate value: \"quay.io\"",
            ),
            (
                FieldError::too_many(rs.child("blockedRegistries"), 1025, 1024),
                "spec.registrySources.blockedRegistries: Too many: 1025: must have at most 1024 items",
            ),
            (
                FieldError::too_long(rs.child("blockedRegistries").index(0), 256),
                "spec.registrySources.blockedRegistries[0]: Too long: may not be more than 256 bytes",
            ),
            (
                FieldError::forbidden(
                    Path::new(&["metadata", "namespace"]),
                    "not allowed on this type",
                ),
                "metadata.namespace: Forbidden: not allowed on this type",
            ),
            (
                FieldError::type_invalid(rs.child("blockedRegistries"), "array", "string"),
                "spec.registrySources.blockedRegistries: Invalid value: \"string\": spec.registrySources.blockedRegistries in body must be of type array: \"string\"",
            ),
            (
                FieldError::invalid_omit(
                    rs.clone(),
                    "Only one of blockedRegistries or allowedRegistries may be set",
                ),
                "spec.registrySources: Invalid value: Only one of blockedRegistries or allowedRegistries may be set",
            ),
            (
                FieldError::invalid_int(
                    rs.child("containerRuntimeSearchRegistries"),
                    0,
                    "spec.registrySources.containerRuntimeSearchRegistries in body should have at least 1 items",
                ),
                "spec.registrySources.containerRuntimeSearchRegistries: Invalid value: 0: spec.registrySources.containerRuntimeSearchRegistries in body should have at least 1 items",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn cause_types_round_trip() {
        for kind in [
            ErrorKind::Required,
            ErrorKind::TooLong,
            ErrorKind::TypeInvalid,
        ] {
            assert_eq!(ErrorKind::from_cause_type(kind.cause_type()), Some(kind));
        }
        assert_eq!(ErrorKind::from_cause_type("nope"), None);
    }

    #[test]
    fn go_quote_escapes_what_go_escapes() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("line\nbreak\ttab\u{1}"),
            r#""line\nbreak\ttab\x01""#
        );
        assert_eq!(
            go_quote("zero\u{200b}width\u{a0}"),
            r#""zero\u200bwidth\u00a0""#
        );
        assert_eq!(go_quote("ünïcode"), "\"ünïcode\"");
    }
}
