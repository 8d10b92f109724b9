//! Metadata, presence, type and enum rules: M1-M4, D1, S1, S2, T1, E1, P5.

use serde_json::Value;

use super::{C, Ctx, D, Denial, Out, Phase, Ratcheting, Rule, S, Tier, U};
use crate::field::{FieldError, Path, Segment};
use crate::grammar::host::dns1123_subdomain_errors;

/// The only name the platform reads.
const CLUSTER: &str = "cluster";

/// The values of the `ImageStreamImportMode` enum.
const IMPORT_MODES: [&str; 3] = ["", "Legacy", "PreserveOriginal"];

pub(super) static M1: Rule = Rule {
    id: "M1",
    tier: Tier::Upstream,
    field: "metadata.name",
    check: "the name is `cluster` (exact, case-sensitive)",
    why: "the platform reads only the Image named cluster; any other is ignored",
    source: "openshift kube-apiserver customresourcevalidation/image/validate_image.go (RequireNameCluster)",
    phases: &[C],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: name_is_not_cluster,
};

/// M1: `RequireNameCluster` on CREATE.
pub(super) fn name_is_not_cluster(ctx: &Ctx<'_>, out: &mut Out) {
    if let Some(name) = ctx
        .new
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty() && *n != CLUSTER)
    {
        out.error(FieldError::invalid(
            Path::new(&["metadata", "name"]),
            name,
            "must be cluster",
        ));
    }
}

pub(super) static M5: Rule = Rule {
    id: "M5",
    tier: Tier::Upstream,
    field: "metadata.name",
    check: "the name is a DNS-1123 subdomain (lowercase, at most 253 characters)",
    why: "the API server refuses any other name for a custom resource, with this message",
    source: "apiextensions-apiserver customresource validator (ValidateObjectMetaAccessor, NameIsDNSSubdomain)",
    phases: &[C],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: name_is_not_a_dns_subdomain,
};

/// M5: the CRD handler's `ValidateObjectMeta` (`NameIsDNSSubdomain`) runs before the admission
/// plugin adds `must be cluster`; the API server reports both, one error per message.
pub(super) fn name_is_not_a_dns_subdomain(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(name) = ctx.new.metadata.name.as_deref().filter(|n| !n.is_empty()) else {
        return;
    };
    for message in dns1123_subdomain_errors(name) {
        out.error(FieldError::invalid(
            Path::new(&["metadata", "name"]),
            name,
            message,
        ));
    }
}

pub(super) static M2: Rule = Rule {
    id: "M2",
    tier: Tier::Upstream,
    field: "metadata.name",
    check: "a name is given",
    why: "an object needs a name",
    source: "apimachinery pkg/api/validation/objectmeta.go (ValidateObjectMeta)",
    phases: &[C],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: name_is_missing,
};

/// M2: `ValidateObjectMeta` requires a name.
pub(super) fn name_is_missing(ctx: &Ctx<'_>, out: &mut Out) {
    let path = Path::new(&["metadata", "name"]);
    let wrong_type = ctx.type_errors.iter().any(|e| e.path == path);
    if !wrong_type && ctx.new.metadata.name.as_deref().is_none_or(str::is_empty) {
        out.error(FieldError::required(
            path,
            "name or generateName is required",
        ));
    }
}

pub(super) static M3: Rule = Rule {
    id: "M3",
    tier: Tier::Upstream,
    field: "metadata.generateName",
    check: "generateName, when set, is `cluster`",
    why: "a generated name can never be cluster",
    source: "apimachinery pkg/api/validation/objectmeta.go (ValidateObjectMeta)",
    phases: &[C],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: generate_name_is_not_cluster,
};

/// M3: the name function also runs on `generateName`.
pub(super) fn generate_name_is_not_cluster(ctx: &Ctx<'_>, out: &mut Out) {
    if let Some(g) = ctx
        .new
        .metadata
        .generate_name
        .as_deref()
        .filter(|g| !g.is_empty() && *g != CLUSTER)
    {
        out.error(FieldError::invalid(
            Path::new(&["metadata", "generateName"]),
            g,
            "must be cluster",
        ));
    }
}

pub(super) static M4: Rule = Rule {
    id: "M4",
    tier: Tier::Upstream,
    field: "metadata.{name,namespace,uid,creationTimestamp}",
    check: "these do not change on update",
    why: "object identity is immutable",
    source: "apimachinery pkg/api/validation/objectmeta.go (ValidateObjectMetaUpdate)",
    phases: &[U, S],
    ratchet: Ratcheting::Never,
    denial: Denial::Invalid,
    eval: identity_changed,
};

/// M4: `ValidateObjectMetaUpdate`: identity fields are immutable.
pub(super) fn identity_changed(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(old) = ctx.old else { return };
    let (new, old) = (&ctx.new.metadata, &old.metadata);
    for (field, new, old) in [
        ("name", &new.name, &old.name),
        ("namespace", &new.namespace, &old.namespace),
        ("uid", &new.uid, &old.uid),
        (
            "creationTimestamp",
            &new.creation_timestamp,
            &old.creation_timestamp,
        ),
    ] {
        if new.as_deref().unwrap_or("") != old.as_deref().unwrap_or("") {
            let path = Path::new(&["metadata"]).child(field);
            out.error(FieldError::invalid(
                path,
                new.as_deref().unwrap_or(""),
                "field is immutable",
            ));
        }
    }
}

pub(super) static D1: Rule = Rule {
    id: "D1",
    tier: Tier::Upstream,
    field: "(object)",
    check: "the Image named cluster is not deleted",
    why: "the cluster configuration singleton must always exist",
    source: "openshift kube-apiserver admission config/deny_delete_cluster_config_resource.go",
    phases: &[D],
    ratchet: Ratcheting::Never,
    denial: Denial::Forbidden,
    eval: delete_of_cluster,
};

/// D1: the `cluster` singleton is never deleted (DenyDeleteClusterConfiguration).
pub(super) fn delete_of_cluster(ctx: &Ctx<'_>, out: &mut Out) {
    if ctx.name == CLUSTER {
        out.error(FieldError::forbidden(
            Path::root(),
            "deleting required images.config.openshift.io resource, named cluster, is not allowed",
        ));
    }
}

pub(super) static S1: Rule = Rule {
    id: "S1",
    tier: Tier::Upstream,
    field: "spec",
    check: "spec is present",
    why: "the CRD requires spec",
    source: "openshift/api config/v1 images CRD (required: [spec])",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: spec_is_missing,
};

/// S1: the CRD requires `spec`.
pub(super) fn spec_is_missing(ctx: &Ctx<'_>, out: &mut Out) {
    let path = Path::new(&["spec"]);
    let missing = if ctx.well_typed() {
        ctx.new.spec.is_none()
    } else {
        path.lookup(ctx.new_raw.value()).is_none()
    };
    if missing {
        out.error(FieldError::required(path, ""));
    }
}

pub(super) static S2: Rule = Rule {
    id: "S2",
    tier: Tier::Upstream,
    field: "spec.additionalTrustedCA.name",
    check: "additionalTrustedCA, when present, has the key name",
    why: "the CRD requires name inside additionalTrustedCA",
    source: "openshift/api config/v1 images CRD (additionalTrustedCA required: [name])",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: trusted_ca_name_is_missing,
};

/// S2: `additionalTrustedCA` requires `name`.
pub(super) fn trusted_ca_name_is_missing(ctx: &Ctx<'_>, out: &mut Out) {
    if let Some(ca) = ctx.spec().and_then(|s| s.additional_trusted_ca.as_ref())
        && !ca.name_present
    {
        out.error(FieldError::required(
            Path::new(&["spec", "additionalTrustedCA", "name"]),
            "",
        ));
    }
}

pub(super) static T1: Rule = Rule {
    id: "T1",
    tier: Tier::Upstream,
    field: "any",
    check: "every value has the schema's JSON type (list, string, boolean, object)",
    why: "a wrong type breaks every typed client that reads the object",
    source: "kube-openapi pkg/validation/validate/type.go; apiextensions-apiserver (k8s 1.36)",
    phases: &[C, U, S],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: wrong_json_type,
};

/// T1: the type errors of decoding. On CREATE and main UPDATE the status is not the request's
/// to set (stripped, or copied from the old object), so only spec and metadata count; on a
/// status write only status and metadata do. The errors the decoder only counted are counted
/// here too.
pub(super) fn wrong_json_type(ctx: &Ctx<'_>, out: &mut Out) {
    let applies = |path: &Path| {
        let first = path.segments().first();
        let in_status = first == Some(&Segment::Field("status"));
        let in_spec = first == Some(&Segment::Field("spec"));
        match ctx.phase {
            Phase::Status => !in_spec,
            _ => !in_status,
        }
    };
    for error in ctx.type_errors {
        if applies(&error.path) {
            out.error(error.clone());
        }
    }
    for (unit, count) in ctx.omitted_type_errors {
        if applies(unit) {
            out.count_errors(unit, *count, false);
        }
    }
}

pub(super) static E1: Rule = Rule {
    id: "E1",
    tier: Tier::Upstream,
    field: "spec.imageStreamImportMode, status.imageStreamImportMode",
    check: "the mode is \"\", Legacy or PreserveOriginal (case-sensitive)",
    why: "the CRD enum",
    source: "openshift/api config/v1 types_image.go (ImageStreamImportMode enum)",
    phases: &[C, U, S],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: import_mode_not_supported,
};

/// E1: the import mode enum, in spec on main writes and in status on status writes. kube-openapi
/// checks the enum apart from the type, so a value of the wrong JSON type (`1`, `["Legacy"]`)
/// fails both: T1 reports the type, this the value, shown as JSON.
pub(super) fn import_mode_not_supported(ctx: &Ctx<'_>, out: &mut Out) {
    let path = match ctx.phase {
        Phase::Status => Path::new(&["status", "imageStreamImportMode"]),
        _ => Path::new(&["spec", "imageStreamImportMode"]),
    };
    let supported = |v: &Value| v.as_str().is_some_and(|s| IMPORT_MODES.contains(&s));
    if ctx.well_typed() {
        let mode = match ctx.phase {
            Phase::Status => ctx.new.status.as_ref().map(|s| &s.image_stream_import_mode),
            _ => ctx.new.spec.as_ref().map(|s| &s.image_stream_import_mode),
        };
        if let Some(mode) = mode.and_then(Option::as_deref)
            && !IMPORT_MODES.contains(&mode)
        {
            let value = Value::String(mode.to_owned());
            out.error(FieldError::not_supported_json(path, &value, &IMPORT_MODES));
        }
        return;
    }
    // A null is pruned before validation: no value, no error.
    if let Some(value) = path
        .lookup(ctx.new_raw.value())
        .filter(|v| !v.is_null() && !supported(v))
    {
        out.error(FieldError::not_supported_json(path, value, &IMPORT_MODES));
    }
}

pub(super) static P5: Rule = Rule {
    id: "P5",
    tier: Tier::Protective,
    field: "spec.additionalTrustedCA.name",
    check: "the name, when non-empty, is a DNS-1123 subdomain (a ConfigMap name)",
    why: "no ConfigMap can have another name: the CA bundle is silently never loaded",
    source: "openshift kube-apiserver customresourcevalidation helpers (ValidateConfigMapReference)",
    phases: &[C, U],
    ratchet: Ratcheting::Unchanged,
    denial: Denial::Invalid,
    eval: trusted_ca_name_is_invalid,
};

/// P5: `ValidateConfigMapReference`: a non-empty name must be a DNS-1123 subdomain.
pub(super) fn trusted_ca_name_is_invalid(ctx: &Ctx<'_>, out: &mut Out) {
    let name = ctx
        .spec()
        .and_then(|s| s.additional_trusted_ca.as_ref())
        .and_then(|ca| ca.name.as_deref());
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        let messages = dns1123_subdomain_errors(name);
        if !messages.is_empty() {
            let path = Path::new(&["spec", "additionalTrustedCA", "name"]);
            out.error(FieldError::invalid(path, name, messages.join(", ")));
        }
    }
}
