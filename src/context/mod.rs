//! The cluster around the Image object: the mirror sets and the release image that decide,
//! together with the Image, what the machine-config operator renders on every node
//! (`MIRRORS.md` §1, §2, §5).
//!
//! These are plain values. Where they come from is an adapter's business: files given to
//! `replay --context` and `explain --context` ([`load`]), or the live watch of `serve
//! --cluster-context` (`server::watch`). [`ContextObject::from_value`] reads one object for
//! both.
//! The node model ([`crate::node`]) reads them; the engine gets them through the
//! [`crate::Policy`] it runs with, so a review never waits for them.

mod decode;
pub mod load;

use serde::Serialize;

use crate::field::FieldError;

/// `mirrorSourcePolicy` of an IDMS or ITMS item (ICSP items have none: they contact the
/// source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MirrorSourcePolicy {
    /// The source is never contacted: MCO marks its registries.conf entry `blocked`.
    NeverContactSource,
    /// The source is tried after the mirrors (also the meaning of an unset policy).
    AllowContactingSource,
}

impl MirrorSourcePolicy {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MirrorSourcePolicy::NeverContactSource => "NeverContactSource",
            MirrorSourcePolicy::AllowContactingSource => "AllowContactingSource",
        }
    }
}

/// One item of `spec.imageDigestMirrors`, `spec.imageTagMirrors` or
/// `spec.repositoryDigestMirrors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorRule {
    /// `source`: a registry scope, `*.example.com` allowed.
    pub source: String,
    /// `mirrors`, in the object's order.
    pub mirrors: Vec<String>,
    /// `mirrorSourcePolicy`; `None` when unset (and always for ICSP).
    pub source_policy: Option<MirrorSourcePolicy>,
}

/// One mirror-set object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorSet {
    /// `metadata.name`, for messages.
    pub name: String,
    /// Its items, in the object's order.
    pub rules: Vec<MirrorRule>,
}

/// The three kinds of mirror set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum MirrorKind {
    /// `ImageDigestMirrorSet` (`config.openshift.io/v1`): digest pulls only.
    Digest,
    /// `ImageTagMirrorSet` (`config.openshift.io/v1`): tag pulls only.
    Tag,
    /// `ImageContentSourcePolicy` (`operator.openshift.io/v1alpha1`): digest pulls, converted
    /// to IDMS by MCO.
    ContentSource,
}

impl MirrorKind {
    /// The object's kind.
    pub fn kind(self) -> &'static str {
        match self {
            MirrorKind::Digest => "ImageDigestMirrorSet",
            MirrorKind::Tag => "ImageTagMirrorSet",
            MirrorKind::ContentSource => "ImageContentSourcePolicy",
        }
    }
}

/// Everything besides the Image that MCO renders from. The default is "no context": no mirror
/// sets and no release image (the engine then uses its settings' payload repository).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterContext {
    /// ImageDigestMirrorSets, ordered by name.
    pub digest_mirror_sets: Vec<MirrorSet>,
    /// ImageTagMirrorSets, ordered by name.
    pub tag_mirror_sets: Vec<MirrorSet>,
    /// ImageContentSourcePolicies, ordered by name.
    pub content_source_policies: Vec<MirrorSet>,
    /// `ClusterVersion/version` `status.desired.image`, when known.
    pub release_image: Option<String>,
    /// What the node model derives from these fields alone (the merged mirror sets, MCO's checks
    /// of them, P), made on first use and then shared by every review judged in this context.
    /// [`ClusterContext::add`] empties it; set the fields before the first review.
    #[serde(skip)]
    pub derived: Derived,
}

/// A cache of [`crate::node`]'s work on a [`ClusterContext`]: not part of its value (equal
/// whatever it holds; a clone starts empty).
#[derive(Default)]
pub struct Derived(std::sync::OnceLock<crate::node::Prepared>);

impl Derived {
    /// The cached value, made by `make` on first use.
    pub(crate) fn get_or_init(
        &self,
        make: impl FnOnce() -> crate::node::Prepared,
    ) -> &crate::node::Prepared {
        self.0.get_or_init(make)
    }
}

impl Clone for Derived {
    fn clone(&self) -> Self {
        Derived::default()
    }
}

impl PartialEq for Derived {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Derived {}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Derived(made)"
        } else {
            "Derived(empty)"
        })
    }
}

impl ClusterContext {
    /// The mirror sets of one kind.
    pub fn mirror_sets(&self, kind: MirrorKind) -> &[MirrorSet] {
        match kind {
            MirrorKind::Digest => &self.digest_mirror_sets,
            MirrorKind::Tag => &self.tag_mirror_sets,
            MirrorKind::ContentSource => &self.content_source_policies,
        }
    }

    /// No mirror set and no release image.
    pub fn is_empty(&self) -> bool {
        self.digest_mirror_sets.is_empty()
            && self.tag_mirror_sets.is_empty()
            && self.content_source_policies.is_empty()
            && self.release_image.is_none()
    }
}

/// One Kubernetes object read as context (from a file or a watch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextObject {
    /// An IDMS, ITMS or ICSP.
    MirrorSet(MirrorKind, MirrorSet),
    /// `ClusterVersion/version`: its `status.desired.image`, when set.
    ReleaseImage(Option<String>),
    /// Any other kind: not context (the caller says so in a note).
    Other {
        /// `apiVersion`.
        api_version: String,
        /// `kind`.
        kind: String,
    },
}

/// An object of a context kind that does not have the shape its kind requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectError {
    /// `Kind/name` when they could be read (`Kind` alone otherwise).
    pub object: String,
    /// What is wrong, as the API server would say it: one field error
    /// (`spec.imageDigestMirrors[0].source: Required value`), or several in brackets.
    pub reason: String,
}

impl std::fmt::Display for ObjectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.reason)
    }
}

impl std::error::Error for ObjectError {}

/// Which shape an object's `apiVersion` and `kind` pick.
enum Shape {
    MirrorSet(MirrorKind),
    ClusterVersion,
}

impl ContextObject {
    /// Reads one object. `apiVersion` and `kind` pick the shape: IDMS and ITMS
    /// (`config.openshift.io/v1`), ICSP (`operator.openshift.io/v1alpha1`) and ClusterVersion
    /// (`config.openshift.io/v1`, only the one named `version`; another name is `Other`).
    /// A field of the wrong type, a missing `source` or an unknown `mirrorSourcePolicy` is an
    /// error at its field path, worded as the API server words it.
    pub fn from_value(value: &serde_json::Value) -> Result<ContextObject, ObjectError> {
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        let other = || ContextObject::Other {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        };
        let group = api_version.split_once('/').map_or("", |(group, _)| group);
        let shape = match (group, kind) {
            ("config.openshift.io", "ImageDigestMirrorSet") => Shape::MirrorSet(MirrorKind::Digest),
            ("config.openshift.io", "ImageTagMirrorSet") => Shape::MirrorSet(MirrorKind::Tag),
            ("operator.openshift.io", "ImageContentSourcePolicy") => {
                Shape::MirrorSet(MirrorKind::ContentSource)
            }
            ("config.openshift.io", "ClusterVersion") => Shape::ClusterVersion,
            _ => return Ok(other()),
        };
        let name = decode::name(value);
        let error = |errors: Vec<FieldError>| ObjectError {
            object: match name {
                Some(name) if !name.is_empty() => format!("{kind}/{name}"),
                _ => kind.to_owned(),
            },
            reason: decode::aggregate(&errors),
        };
        match shape {
            Shape::ClusterVersion if name != Some("version") => Ok(other()),
            Shape::ClusterVersion => decode::release_image(value)
                .map(ContextObject::ReleaseImage)
                .map_err(error),
            Shape::MirrorSet(mirror_kind) => {
                let rules = decode::mirror_rules(mirror_kind, value).map_err(error)?;
                let name = name.unwrap_or_default().to_owned();
                Ok(ContextObject::MirrorSet(
                    mirror_kind,
                    MirrorSet { name, rules },
                ))
            }
        }
    }
}

impl ClusterContext {
    /// Adds one object read by [`ContextObject::from_value`]; `Other` is ignored. Mirror sets
    /// stay ordered by name (MCO lists them; the order of equal sources' mirrors is merged); a
    /// set of the same kind and name replaces the one there, as the API server holds one
    /// object per name.
    pub fn add(&mut self, object: ContextObject) {
        self.derived = Derived::default();
        match object {
            ContextObject::MirrorSet(kind, set) => {
                let sets = match kind {
                    MirrorKind::Digest => &mut self.digest_mirror_sets,
                    MirrorKind::Tag => &mut self.tag_mirror_sets,
                    MirrorKind::ContentSource => &mut self.content_source_policies,
                };
                let at = sets.partition_point(|s| s.name < set.name);
                match sets.get_mut(at) {
                    Some(same) if same.name == set.name => *same = set,
                    _ => sets.insert(at, set),
                }
            }
            ContextObject::ReleaseImage(image) => self.release_image = image,
            ContextObject::Other { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_four_kinds_are_read_and_others_are_not_context() {
        let mut context = ClusterContext::default();
        let objects = [
            json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSet",
                   "metadata": {"name": "release"},
                   "spec": {"imageDigestMirrors": [{"source": "quay.io/openshift-release-dev/ocp-release",
                            "mirrors": ["mirror.local/ocp/release"], "mirrorSourcePolicy": "NeverContactSource"}]}}),
            json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageTagMirrorSet",
                   "metadata": {"name": "tags"},
                   "spec": {"imageTagMirrors": [{"source": "docker.io", "mirrors": ["mirror.local/docker"]}]}}),
            json!({"apiVersion": "operator.openshift.io/v1alpha1", "kind": "ImageContentSourcePolicy",
                   "metadata": {"name": "old"},
                   "spec": {"repositoryDigestMirrors": [{"source": "registry.redhat.io", "mirrors": ["m.local/rh"]}]}}),
            json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
                   "metadata": {"name": "version"},
                   "status": {"desired": {"image": "quay.io/openshift-release-dev/ocp-release@sha256:0123"}}}),
        ];
        for object in &objects {
            context.add(ContextObject::from_value(object).unwrap());
        }
        assert_eq!(context.digest_mirror_sets[0].name, "release");
        assert_eq!(
            context.digest_mirror_sets[0].rules[0].source_policy,
            Some(MirrorSourcePolicy::NeverContactSource)
        );
        assert_eq!(
            context.tag_mirror_sets[0].rules[0].mirrors,
            ["mirror.local/docker"]
        );
        assert_eq!(
            context.content_source_policies[0].rules[0].source,
            "registry.redhat.io"
        );
        assert_eq!(
            context.release_image.as_deref(),
            Some("quay.io/openshift-release-dev/ocp-release@sha256:0123")
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert_eq!(
            ContextObject::from_value(&pod),
            Ok(ContextObject::Other {
                api_version: "v1".into(),
                kind: "Pod".into()
            })
        );
    }

    #[test]
    fn a_malformed_object_names_itself_and_the_field() {
        let bad = json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSet",
                         "metadata": {"name": "x"},
                         "spec": {"imageDigestMirrors": [{"source": "a.io", "mirrorSourcePolicy": "Sometimes"}]}});
        let err = ContextObject::from_value(&bad).unwrap_err();
        assert_eq!(err.object, "ImageDigestMirrorSet/x");
        assert!(
            err.reason
                .starts_with("spec.imageDigestMirrors[0].mirrorSourcePolicy: Unsupported value"),
            "{err}"
        );
        let missing = json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageTagMirrorSet",
                             "metadata": {"name": "y"}, "spec": {"imageTagMirrors": [{"mirrors": ["m.io"]}]}});
        let err = ContextObject::from_value(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ImageTagMirrorSet/y: spec.imageTagMirrors[0].source: Required value"
        );
    }

    #[test]
    fn type_errors_are_at_their_paths_and_all_are_said() {
        let bad = json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSet",
                         "metadata": {"name": "z"},
                         "spec": {"imageDigestMirrors": [
                             {"source": "a.io", "mirrors": "m.io"},
                             {"source": 5, "mirrors": ["m.io", 7]},
                             "x"]}});
        let err = ContextObject::from_value(&bad).unwrap_err();
        assert_eq!(
            err.reason,
            "[spec.imageDigestMirrors[0].mirrors: Invalid value: \"string\": \
             spec.imageDigestMirrors[0].mirrors in body must be of type array: \"string\", \
             spec.imageDigestMirrors[1].source: Invalid value: \"integer\": \
             spec.imageDigestMirrors[1].source in body must be of type string: \"integer\", \
             spec.imageDigestMirrors[1].mirrors[1]: Invalid value: \"integer\": \
             spec.imageDigestMirrors[1].mirrors[1] in body must be of type string: \"integer\", \
             spec.imageDigestMirrors[2]: Invalid value: \"string\": \
             spec.imageDigestMirrors[2] in body must be of type object: \"string\"]"
        );
        let spec = json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageTagMirrorSet",
                          "spec": []});
        assert_eq!(
            ContextObject::from_value(&spec).unwrap_err().to_string(),
            "ImageTagMirrorSet: spec: Invalid value: \"array\": spec in body must be of type object: \"array\""
        );
        let version = json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
                             "metadata": {"name": "version"}, "status": {"desired": {"image": 1}}});
        assert_eq!(
            ContextObject::from_value(&version).unwrap_err().object,
            "ClusterVersion/version"
        );
        let other = json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
                           "metadata": {"name": "not-version"}});
        assert!(matches!(
            ContextObject::from_value(&other),
            Ok(ContextObject::Other { .. })
        ));
    }

    #[test]
    fn a_set_of_the_same_name_replaces_the_one_there() {
        let set = |name: &str, source: &str| {
            ContextObject::MirrorSet(
                MirrorKind::Digest,
                MirrorSet {
                    name: name.into(),
                    rules: vec![MirrorRule {
                        source: source.into(),
                        mirrors: vec![],
                        source_policy: None,
                    }],
                },
            )
        };
        let mut context = ClusterContext::default();
        for (name, source) in [("b", "1.io"), ("a", "2.io"), ("b", "3.io"), ("c", "4.io")] {
            context.add(set(name, source));
        }
        let seen: Vec<_> = context
            .digest_mirror_sets
            .iter()
            .map(|s| (s.name.as_str(), s.rules[0].source.as_str()))
            .collect();
        assert_eq!(seen, [("a", "2.io"), ("b", "3.io"), ("c", "4.io")]);
    }
}
