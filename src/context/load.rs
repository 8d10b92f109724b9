//! Context from files, for `replay --context` and `explain --context`: the inputs
//! [`crate::input::load_inputs`] read (files, directories walked recursively, `-`), each split
//! into documents by [`crate::input::parse_documents`] (YAML or JSON, several documents, a
//! `List` or any `*List` kind's items), each object read by [`ContextObject::from_value`].
//!
//! The output of `oc get imagedigestmirrorsets,imagetagmirrorsets,imagecontentsourcepolicies,
//! clusterversion -o yaml` reads as it is. Objects of other kinds are ignored with a note; an
//! input that cannot be read or an object of a context kind that is malformed is an error naming
//! the input and the object. Every error is collected, not only the first.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use super::{ClusterContext, ContextObject, ObjectError};
use crate::input::{Input, InputError, parse_documents};

/// The context the inputs hold, and the notes about what was left out or replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The mirror sets and the release image read.
    pub context: ClusterContext,
    /// One line each, headed by the input: objects of other kinds (ignored), objects read
    /// twice (the later one kept).
    pub notes: Vec<String>,
}

/// An input that gives no usable context: which input, and why.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// The input as named (a path, or `-`).
    pub source: String,
    /// Why.
    pub kind: LoadErrorKind,
}

/// The kinds of [`LoadError`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The input cannot be read or parsed.
    Input(InputError),
    /// A document, or an item of a List, is not an object.
    NotAnObject {
        /// Where: `document 2`, or `document 1, item 3`.
        at: String,
    },
    /// An object of a context kind is malformed.
    Object(ObjectError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.source)?;
        match &self.kind {
            LoadErrorKind::Input(e) => fmt::Display::fmt(e, f),
            LoadErrorKind::NotAnObject { at } => write!(f, "{at} is not an object"),
            LoadErrorKind::Object(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            LoadErrorKind::Input(e) => Some(e),
            LoadErrorKind::NotAnObject { .. } => None,
            LoadErrorKind::Object(e) => Some(e),
        }
    }
}

/// Every error of [`from_inputs`], in input order (never empty).
#[derive(Debug, Clone)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    /// One error a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            fmt::Display::fmt(e, f)?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// Reads the context the inputs hold. An object read twice (the same kind and name, or a
/// second ClusterVersion `version`) is kept as last read, with a note.
pub fn from_inputs(inputs: &[Input]) -> Result<Loaded, LoadErrors> {
    let mut reader = Reader::default();
    for input in inputs {
        match parse_documents(input) {
            Ok(documents) => {
                for (d, document) in documents.iter().enumerate() {
                    reader.document(&input.source, d + 1, document);
                }
            }
            Err(e) => reader.fail(&input.source, LoadErrorKind::Input(e)),
        }
    }
    if reader.errors.is_empty() {
        Ok(reader.loaded)
    } else {
        Err(LoadErrors(reader.errors))
    }
}

/// What the inputs gave so far.
#[derive(Default)]
struct Reader {
    loaded: Loaded,
    errors: Vec<LoadError>,
    /// Where each object was first read, by kind and name.
    seen: HashMap<(&'static str, String), String>,
}

impl Reader {
    fn fail(&mut self, source: &str, kind: LoadErrorKind) {
        self.errors.push(LoadError {
            source: source.to_owned(),
            kind,
        });
    }

    /// One document: a `List` (or `*List`) gives its items, anything else is one object.
    fn document(&mut self, source: &str, d: usize, document: &Value) {
        let kind = document.get("kind").and_then(Value::as_str).unwrap_or("");
        let items = document.get("items").and_then(Value::as_array);
        match items {
            Some(items) if kind.ends_with("List") => {
                for (i, item) in items.iter().enumerate() {
                    self.object(source, || format!("document {d}, item {}", i + 1), item);
                }
            }
            _ => self.object(source, || format!("document {d}"), document),
        }
    }

    fn object(&mut self, source: &str, at: impl Fn() -> String, value: &Value) {
        if !value.is_object() {
            self.fail(source, LoadErrorKind::NotAnObject { at: at() });
            return;
        }
        let object = match ContextObject::from_value(value) {
            Ok(object) => object,
            Err(e) => return self.fail(source, LoadErrorKind::Object(e)),
        };
        let name = super::decode::name(value).unwrap_or_default();
        let key: &'static str = match &object {
            ContextObject::Other { api_version, kind } => {
                let why = match kind.as_str() {
                    "ClusterVersion" => "only ClusterVersion \"version\" is context",
                    _ => "not a context kind",
                };
                let note = format!("{source}: ignored {api_version}/{kind} {name:?}: {why}");
                self.loaded.notes.push(note);
                return;
            }
            ContextObject::MirrorSet(kind, _) => kind.kind(),
            ContextObject::ReleaseImage(_) => "ClusterVersion",
        };
        if let Some(first) = self.seen.get(&(key, name.to_owned())) {
            let note = format!(
                "{source}: {key} {name:?} was also read from {first}; the one read last is kept"
            );
            self.loaded.notes.push(note);
        } else {
            self.seen.insert((key, name.to_owned()), source.to_owned());
        }
        self.loaded.context.add(object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::MirrorSourcePolicy;

    fn input(source: &str, text: &str) -> Input {
        Input {
            source: source.to_owned(),
            text: Ok(text.to_owned()),
            json: source.ends_with(".json"),
        }
    }

    const OC_GET: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: config.openshift.io/v1
  kind: ImageDigestMirrorSet
  metadata: {name: release}
  spec:
    imageDigestMirrors:
    - source: quay.io/openshift-release-dev/ocp-release
      mirrors: [mirror.local/ocp/release]
      mirrorSourcePolicy: NeverContactSource
- apiVersion: operator.openshift.io/v1alpha1
  kind: ImageContentSourcePolicy
  metadata: {name: old}
  spec:
    repositoryDigestMirrors:
    - source: registry.redhat.io
      mirrors: [mirror.local/rh]
- apiVersion: config.openshift.io/v1
  kind: ClusterVersion
  metadata: {name: version}
  status:
    desired: {image: "quay.io/openshift-release-dev/ocp-release@sha256:0123"}
metadata: {resourceVersion: ""}
"#;

    #[test]
    fn oc_get_output_lists_and_documents_are_read() {
        let tags = "---\napiVersion: config.openshift.io/v1\nkind: ImageTagMirrorSet\nmetadata: {name: t}\nspec:\n  imageTagMirrors: [{source: docker.io, mirrors: [m.local/d]}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
        let json = r#"{"apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSetList",
                       "items": [{"apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSet",
                                  "metadata": {"name": "another"}, "spec": {}}]}"#;
        let loaded = from_inputs(&[
            input("all.yaml", OC_GET),
            input("tags.yaml", tags),
            input("more.json", json),
        ])
        .unwrap();
        let context = &loaded.context;
        let names: Vec<_> = context
            .digest_mirror_sets
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["another", "release"]);
        assert_eq!(
            context.digest_mirror_sets[1].rules[0].source_policy,
            Some(MirrorSourcePolicy::NeverContactSource)
        );
        assert_eq!(context.content_source_policies[0].name, "old");
        assert_eq!(context.tag_mirror_sets[0].rules[0].source, "docker.io");
        assert_eq!(
            context.release_image.as_deref(),
            Some("quay.io/openshift-release-dev/ocp-release@sha256:0123")
        );
        assert_eq!(
            loaded.notes,
            ["tags.yaml: ignored v1/Pod \"p\": not a context kind"]
        );
    }

    #[test]
    fn every_malformed_object_is_an_error_naming_the_file_and_the_object() {
        let bad = "apiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata: {name: x}\nspec:\n  imageDigestMirrors: [{mirrors: [m.io]}]\n";
        let errors = from_inputs(&[
            input("good.yaml", OC_GET),
            input("bad.yaml", bad),
            input("scalar.yaml", "just text\n"),
            input("broken.json", "{"),
        ])
        .unwrap_err();
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines[..2],
            [
                "bad.yaml: ImageDigestMirrorSet/x: spec.imageDigestMirrors[0].source: Required value",
                "scalar.yaml: document 1 is not an object",
            ]
        );
        assert!(
            lines[2].starts_with("broken.json: malformed JSON: "),
            "{}",
            lines[2]
        );
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn an_object_read_twice_is_kept_as_last_read_with_a_note() {
        let a = "apiVersion: config.openshift.io/v1\nkind: ImageTagMirrorSet\nmetadata: {name: t}\nspec:\n  imageTagMirrors: [{source: a.io}]\n";
        let b = a.replace("a.io", "b.io");
        let loaded = from_inputs(&[input("a.yaml", a), input("b.yaml", &b)]).unwrap();
        assert_eq!(loaded.context.tag_mirror_sets.len(), 1);
        assert_eq!(loaded.context.tag_mirror_sets[0].rules[0].source, "b.io");
        assert_eq!(
            loaded.notes,
            [
                "b.yaml: ImageTagMirrorSet \"t\" was also read from a.yaml; the one read last is kept"
            ]
        );
    }
}
