//! One table-driven test per rule id: each asserts the field path, the cause reason (for errors)
//! and the exact text a user sees.

use serde_json::{Value, json};

use super::{Ctx, Outcome, Phase, RULES, run};
use crate::image::decode;
use crate::policy::Policy;

/// `(rule id, class, cause reason or "", path, full text)` of every finding.
type Row = (&'static str, &'static str, &'static str, String, String);

fn findings(phase: Phase, new: Value, old: Option<Value>) -> Vec<Row> {
    findings_named(phase, "cluster", new, old)
}

fn findings_named(phase: Phase, name: &str, new: Value, old: Option<Value>) -> Vec<Row> {
    findings_with(&Policy::default(), phase, name, new, old)
}

fn findings_with(
    policy: &Policy,
    phase: Phase,
    name: &str,
    new: Value,
    old: Option<Value>,
) -> Vec<Row> {
    let decoded = decode(&new);
    let old_decoded = old.as_ref().map(decode);
    let ctx = Ctx {
        phase,
        name,
        new: &decoded.image,
        old: old_decoded.as_ref().map(|d| &d.image),
        new_raw: &new,
        old_raw: old.as_ref(),
        type_errors: &decoded.errors,
        omitted_type_errors: &decoded.omitted,
        policy,
        shared: Default::default(),
    };
    run(&ctx, old.as_ref())
        .into_iter()
        .map(|f| {
            let path = f.path().to_string();
            match &f.outcome {
                Outcome::Error(e) => (f.rule.id, "error", e.kind.cause_type(), path, e.to_string()),
                Outcome::Ratcheted(e) => (
                    f.rule.id,
                    "ratcheted",
                    e.kind.cause_type(),
                    path,
                    e.to_string(),
                ),
                Outcome::Warning { .. } => (
                    f.rule.id,
                    "warning",
                    "",
                    path,
                    f.warning_text().unwrap_or_default(),
                ),
            }
        })
        .collect()
}

fn image(spec: Value) -> Value {
    json!({"apiVersion": "config.openshift.io/v1", "kind": "Image", "metadata": {"name": "cluster"}, "spec": spec})
}

fn rs(registry_sources: Value) -> Value {
    image(json!({"registrySources": registry_sources}))
}

/// Asserts that `rows` holds a finding of `id` with this class, reason, path and text, and
/// that no other finding of `id` exists.
#[track_caller]
fn expect(rows: &[Row], id: &str, class: &str, reason: &str, path: &str, text: &str) {
    let of_rule: Vec<&Row> = rows.iter().filter(|r| r.0 == id).collect();
    let wanted = |r: &&Row| r.1 == class && r.2 == reason && r.3 == path && r.4 == text;
    assert!(
        of_rule.iter().any(wanted),
        "{id}: want ({class}, {reason}, {path}, {text:?}), got {of_rule:#?}"
    );
}

#[track_caller]
fn absent(rows: &[Row], id: &str) {
    assert!(
        rows.iter().all(|r| r.0 != id),
        "{id} must not fire: {rows:#?}"
    );
}

const R2_MSG: &str = "each registry must be a valid hostname[:port][/path] or wildcard *.hostname format without tags or digests";

#[test]
fn every_rule_has_a_test_below() {
    let source = include_str!("tests.rs");
    for rule in RULES {
        let marker = format!("fn rule_{}(", rule.id.to_lowercase());
        assert!(
            source.contains(&marker),
            "rule {} has no test `{marker}`",
            rule.id
        );
    }
}

#[test]
fn rule_m1() {
    let mut obj = image(json!({}));
    obj["metadata"]["name"] = json!("foo");
    let rows = findings(Phase::Create, obj, None);
    expect(
        &rows,
        "M1",
        "error",
        "FieldValueInvalid",
        "metadata.name",
        "metadata.name: Invalid value: \"foo\": must be cluster",
    );
    let mut obj = image(json!({}));
    obj["metadata"]["name"] = json!("Cluster");
    expect(
        &findings(Phase::Create, obj, None),
        "M1",
        "error",
        "FieldValueInvalid",
        "metadata.name",
        "metadata.name: Invalid value: \"Cluster\": must be cluster",
    );
    absent(&findings(Phase::Create, image(json!({})), None), "M1");
}

#[test]
fn rule_m5() {
    let dns = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    for name in ["Cluster", "clus ter", "cluster.", "cluster\n"] {
        let mut obj = image(json!({}));
        obj["metadata"]["name"] = json!(name);
        let rows = findings(Phase::Create, obj, None);
        let quoted = crate::field::go_quote(name);
        expect(
            &rows,
            "M5",
            "error",
            "FieldValueInvalid",
            "metadata.name",
            &format!("metadata.name: Invalid value: {quoted}: {dns}"),
        );
        // The API server reports both; the ObjectMeta error comes first.
        let m5 = rows.iter().position(|r| r.0 == "M5");
        let m1 = rows.iter().position(|r| r.0 == "M1");
        assert!(
            m5.is_some() && m1.is_some() && m5 < m1,
            "{name:?}: {rows:#?}"
        );
    }
    let mut obj = image(json!({}));
    obj["metadata"]["name"] = json!("a".repeat(254));
    let rows = findings(Phase::Create, obj, None);
    let long = rows.iter().filter(|r| r.0 == "M5").collect::<Vec<_>>();
    assert_eq!(long.len(), 1, "{long:#?}");
    assert!(
        long[0].4.ends_with(": must be no more than 253 characters"),
        "{long:#?}"
    );
    absent(&findings(Phase::Create, image(json!({})), None), "M5");
    let mut obj = image(json!({}));
    obj["metadata"]["name"] = json!("foo");
    absent(&findings(Phase::Create, obj, None), "M5");
}

#[test]
fn rule_t2() {
    let one_of = "Only one of blockedRegistries or allowedRegistries may be set";
    // registrySources of the wrong type, kept unchanged: its type error is ratcheted, the CEL
    // rule on it cannot evaluate, and that stays an error.
    let old = rs(json!("x"));
    let new = {
        let mut new = old.clone();
        new["spec"]["externalRegistryHostnames"] = json!(["registry.example.com"]);
        new
    };
    let rows = findings(Phase::Update, new, Some(old.clone()));
    expect(
        &rows,
        "T2",
        "error",
        "FieldValueInvalid",
        "spec.registrySources",
        &format!(
            "spec.registrySources: Invalid value: \"object\": invalid data, expected a map for the provided schema with type=object evaluating rule: {one_of}"
        ),
    );
    assert!(
        rows.iter().any(|r| r.0 == "T1" && r.1 == "ratcheted"),
        "{rows:#?}"
    );
    // Changed: the type error itself is the error, and CEL does not run.
    let rows = findings(Phase::Update, rs(json!(5)), Some(old));
    absent(&rows, "T2");
    assert!(
        rows.iter().any(|r| r.0 == "T1" && r.1 == "error"),
        "{rows:#?}"
    );
    // An item of the wrong type in an unchanged list fails R2's evaluation.
    let old = rs(json!({"blockedRegistries": ["a.io", 5, null]}));
    let mut new = old.clone();
    new["spec"]["externalRegistryHostnames"] = json!(["registry.example.com"]);
    let rows = findings(Phase::Update, new, Some(old.clone()));
    let at = |i: usize| format!("spec.registrySources.blockedRegistries[{i}]");
    expect(
        &rows,
        "T2",
        "error",
        "FieldValueInvalid",
        &at(1),
        &format!(
            "{}: Invalid value: \"string\": invalid data, expected string, got int64 evaluating rule: {R2_MSG}",
            at(1)
        ),
    );
    expect(
        &rows,
        "T2",
        "error",
        "FieldValueInvalid",
        &at(2),
        &format!(
            "{}: Invalid value: \"string\": invalid data, got null for schema with nullable=false evaluating rule: {R2_MSG}",
            at(2)
        ),
    );
    assert_eq!(rows.iter().filter(|r| r.0 == "T2").count(), 2, "{rows:#?}");
    // Never on CREATE, and not for well-typed values.
    absent(&findings(Phase::Create, rs(json!("x")), None), "T2");
    let ok = rs(json!({"blockedRegistries": ["a.io"]}));
    absent(&findings(Phase::Update, ok.clone(), Some(ok)), "T2");
}

#[test]
fn rule_m2() {
    let mut obj = image(json!({}));
    obj["metadata"] = json!({});
    let rows = findings(Phase::Create, obj, None);
    expect(
        &rows,
        "M2",
        "error",
        "FieldValueRequired",
        "metadata.name",
        "metadata.name: Required value: name or generateName is required",
    );
    absent(&rows, "M1");
}

#[test]
fn rule_m3() {
    let mut obj = image(json!({}));
    obj["metadata"] = json!({"name": "cluster-x7k2q", "generateName": "cluster-"});
    let rows = findings(Phase::Create, obj, None);
    expect(
        &rows,
        "M3",
        "error",
        "FieldValueInvalid",
        "metadata.generateName",
        "metadata.generateName: Invalid value: \"cluster-\": must be cluster",
    );
    expect(
        &rows,
        "M1",
        "error",
        "FieldValueInvalid",
        "metadata.name",
        "metadata.name: Invalid value: \"cluster-x7k2q\": must be cluster",
    );
    let order: Vec<&str> = rows.iter().map(|r| r.0).collect();
    assert_eq!(order, ["M3", "M1"], "generateName sorts before name");
}

#[test]
fn rule_m4() {
    let old = json!({"metadata": {"name": "cluster", "uid": "a"}, "spec": {}});
    let new = json!({"metadata": {"name": "cluster", "uid": "b"}, "spec": {}});
    let rows = findings(Phase::Update, new.clone(), Some(old.clone()));
    expect(
        &rows,
        "M4",
        "error",
        "FieldValueInvalid",
        "metadata.uid",
        "metadata.uid: Invalid value: \"b\": field is immutable",
    );
    let rows = findings(Phase::Status, new, Some(old.clone()));
    expect(
        &rows,
        "M4",
        "error",
        "FieldValueInvalid",
        "metadata.uid",
        "metadata.uid: Invalid value: \"b\": field is immutable",
    );
    // An unchanged name on UPDATE is fine even when it is not `cluster` (row 6).
    let foo = json!({"metadata": {"name": "foo"}, "spec": {}});
    assert!(findings(Phase::Update, foo.clone(), Some(foo)).is_empty());
}

#[test]
fn rule_d1() {
    let rows = findings(Phase::Delete, json!({}), None);
    expect(
        &rows,
        "D1",
        "error",
        "FieldValueForbidden",
        "<nil>",
        "<nil>: Forbidden: deleting required images.config.openshift.io resource, named cluster, is not allowed",
    );
    assert!(findings_named(Phase::Delete, "foo", json!({}), None).is_empty());
}

#[test]
fn rule_s1() {
    let rows = findings(
        Phase::Create,
        json!({"metadata": {"name": "cluster"}}),
        None,
    );
    expect(
        &rows,
        "S1",
        "error",
        "FieldValueRequired",
        "spec",
        "spec: Required value",
    );
    let rows = findings(
        Phase::Create,
        json!({"metadata": {"name": "cluster"}, "spec": null}),
        None,
    );
    expect(
        &rows,
        "S1",
        "error",
        "FieldValueRequired",
        "spec",
        "spec: Required value",
    );
    absent(
        &findings(
            Phase::Create,
            json!({"metadata": {"name": "cluster"}, "spec": 1}),
            None,
        ),
        "S1",
    );
}

#[test]
fn rule_s2() {
    let rows = findings(
        Phase::Create,
        image(json!({"additionalTrustedCA": {}})),
        None,
    );
    expect(
        &rows,
        "S2",
        "error",
        "FieldValueRequired",
        "spec.additionalTrustedCA.name",
        "spec.additionalTrustedCA.name: Required value",
    );
    absent(
        &findings(
            Phase::Create,
            image(json!({"additionalTrustedCA": {"name": ""}})),
            None,
        ),
        "S2",
    );
}

#[test]
fn rule_t1() {
    let rows = findings(
        Phase::Create,
        rs(json!({"containerRuntimeSearchRegistries": "quay.io"})),
        None,
    );
    expect(
        &rows,
        "T1",
        "error",
        "FieldValueTypeInvalid",
        "spec.registrySources.containerRuntimeSearchRegistries",
        "spec.registrySources.containerRuntimeSearchRegistries: Invalid value: \"string\": spec.registrySources.containerRuntimeSearchRegistries in body must be of type array: \"string\"",
    );
    // Other errors of the object are still reported next to the type error.
    let rows = findings(
        Phase::Create,
        image(
            json!({"allowedRegistriesForImport": [{"domainName": "quay.io", "insecure": "yes"}], "imageStreamImportMode": "x"}),
        ),
        None,
    );
    expect(
        &rows,
        "T1",
        "error",
        "FieldValueTypeInvalid",
        "spec.allowedRegistriesForImport[0].insecure",
        "spec.allowedRegistriesForImport[0].insecure: Invalid value: \"string\": spec.allowedRegistriesForImport[0].insecure in body must be of type boolean: \"string\"",
    );
    assert!(rows.iter().any(|r| r.0 == "E1"));
    // Status type errors count only on status writes.
    let bad_status = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {"externalRegistryHostnames": "x"}});
    absent(&findings(Phase::Create, bad_status.clone(), None), "T1");
    let old = json!({"metadata": {"name": "cluster"}, "spec": {}});
    let rows = findings(Phase::Status, bad_status, Some(old));
    expect(
        &rows,
        "T1",
        "error",
        "FieldValueTypeInvalid",
        "status.externalRegistryHostnames",
        "status.externalRegistryHostnames: Invalid value: \"string\": status.externalRegistryHostnames in body must be of type array: \"string\"",
    );
}

#[test]
fn rule_e1() {
    let text = "spec.imageStreamImportMode: Unsupported value: \"legacy\": supported values: \"\", \"Legacy\", \"PreserveOriginal\"";
    let rows = findings(
        Phase::Create,
        image(json!({"imageStreamImportMode": "legacy"})),
        None,
    );
    expect(
        &rows,
        "E1",
        "error",
        "FieldValueNotSupported",
        "spec.imageStreamImportMode",
        text,
    );
    for ok in ["", "Legacy", "PreserveOriginal"] {
        absent(
            &findings(
                Phase::Create,
                image(json!({"imageStreamImportMode": ok})),
                None,
            ),
            "E1",
        );
    }
    // A value of the wrong JSON type fails the type check and the enum, shown as JSON.
    for (value, shown) in [
        (json!(1), "1"),
        (json!(["Legacy"]), "[\"Legacy\"]"),
        (json!(true), "true"),
    ] {
        let rows = findings(
            Phase::Create,
            image(json!({"imageStreamImportMode": value})),
            None,
        );
        expect(
            &rows,
            "E1",
            "error",
            "FieldValueNotSupported",
            "spec.imageStreamImportMode",
            &format!(
                "spec.imageStreamImportMode: Unsupported value: {shown}: supported values: \"\", \"Legacy\", \"PreserveOriginal\""
            ),
        );
        assert!(
            rows.iter()
                .any(|r| r.0 == "T1" && r.3 == "spec.imageStreamImportMode"),
            "{rows:#?}"
        );
    }
    absent(
        &findings(
            Phase::Create,
            image(json!({"imageStreamImportMode": null})),
            None,
        ),
        "E1",
    );
    let old = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {"imageStreamImportMode": "Legacy"}});
    let new = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {"imageStreamImportMode": "Bogus"}});
    let rows = findings(Phase::Status, new, Some(old));
    expect(
        &rows,
        "E1",
        "error",
        "FieldValueNotSupported",
        "status.imageStreamImportMode",
        "status.imageStreamImportMode: Unsupported value: \"Bogus\": supported values: \"\", \"Legacy\", \"PreserveOriginal\"",
    );
}

#[test]
fn rule_r1() {
    let text = "spec.registrySources: Invalid value: Only one of blockedRegistries or allowedRegistries may be set";
    let rows = findings(
        Phase::Create,
        rs(json!({"allowedRegistries": ["a.io"], "blockedRegistries": []})),
        None,
    );
    expect(
        &rows,
        "R1",
        "error",
        "FieldValueInvalid",
        "spec.registrySources",
        text,
    );
    absent(
        &findings(
            Phase::Create,
            rs(json!({"allowedRegistries": ["a.io"], "blockedRegistries": null})),
            None,
        ),
        "R1",
    );
    // Ratcheted only when the whole registrySources is unchanged (upstream onUpdate 1 and 3).
    let old = rs(json!({"allowedRegistries": ["test"], "blockedRegistries": ["test"]}));
    let mut new = old.clone();
    new["spec"]["externalRegistryHostnames"] = json!(["test"]);
    expect(
        &findings(Phase::Update, new, Some(old.clone())),
        "R1",
        "ratcheted",
        "FieldValueInvalid",
        "spec.registrySources",
        text,
    );
    let new = rs(json!({"allowedRegistries": ["test"], "blockedRegistries": ["test", "test2"]}));
    expect(
        &findings(Phase::Update, new, Some(old)),
        "R1",
        "error",
        "FieldValueInvalid",
        "spec.registrySources",
        text,
    );
}

#[test]
fn rule_r2() {
    let rows = findings(
        Phase::Create,
        rs(json!({"blockedRegistries": ["ok.io", "registry.io/myrepo:latest"]})),
        None,
    );
    expect(
        &rows,
        "R2",
        "error",
        "FieldValueInvalid",
        "spec.registrySources.blockedRegistries[1]",
        &format!(
            "spec.registrySources.blockedRegistries[1]: Invalid value: \"registry.io/myrepo:latest\": {R2_MSG}"
        ),
    );
    for list in ["allowedRegistries", "insecureRegistries"] {
        let rows = findings(
            Phase::Create,
            rs(json!({ list: ["r.io@sha256:abc"] })),
            None,
        );
        let path = format!("spec.registrySources.{list}[0]");
        expect(
            &rows,
            "R2",
            "error",
            "FieldValueInvalid",
            &path,
            &format!("{path}: Invalid value: \"r.io@sha256:abc\": {R2_MSG}"),
        );
    }
    // An atomic list is re-validated whole when any item changes (upstream onUpdate 10).
    let old = rs(json!({"blockedRegistries": ["registry.io/myrepo:latest"]}));
    let new = rs(json!({"blockedRegistries": ["registry.io/myrepo:latest", "valid.registry.io"]}));
    let rows = findings(Phase::Update, new, Some(old.clone()));
    expect(
        &rows,
        "R2",
        "error",
        "FieldValueInvalid",
        "spec.registrySources.blockedRegistries[0]",
        &format!(
            "spec.registrySources.blockedRegistries[0]: Invalid value: \"registry.io/myrepo:latest\": {R2_MSG}"
        ),
    );
    let mut new = old.clone();
    new["spec"]["externalRegistryHostnames"] = json!(["r.example.com"]);
    let rows = findings(Phase::Update, new, Some(old));
    expect(
        &rows,
        "R2",
        "ratcheted",
        "FieldValueInvalid",
        "spec.registrySources.blockedRegistries[0]",
        &format!(
            "spec.registrySources.blockedRegistries[0]: Invalid value: \"registry.io/myrepo:latest\": {R2_MSG}"
        ),
    );
}

#[test]
fn rule_r3() {
    let rows = findings(Phase::Create, rs(json!({"insecureRegistries": [""]})), None);
    let path = "spec.registrySources.insecureRegistries[0]";
    expect(
        &rows,
        "R3",
        "error",
        "FieldValueInvalid",
        path,
        &format!("{path}: Invalid value: \"\": {path} in body should be at least 1 chars long"),
    );
    expect(
        &rows,
        "R2",
        "error",
        "FieldValueInvalid",
        path,
        &format!("{path}: Invalid value: \"\": {R2_MSG}"),
    );
}

#[test]
fn rule_r4() {
    let long = format!("r.io/{}", "a".repeat(252));
    let rows = findings(
        Phase::Create,
        rs(json!({"blockedRegistries": [long]})),
        None,
    );
    let path = "spec.registrySources.blockedRegistries[0]";
    expect(
        &rows,
        "R4",
        "error",
        "FieldValueTooLong",
        path,
        &format!("{path}: Too long: may not be more than 256 bytes"),
    );
    let exact = format!("r.io/{}", "a".repeat(251));
    absent(
        &findings(
            Phase::Create,
            rs(json!({"blockedRegistries": [exact]})),
            None,
        ),
        "R4",
    );
}

#[test]
fn rule_r5() {
    let many: Vec<String> = (0..1025).map(|i| format!("r{i}.example.com")).collect();
    let rows = findings(Phase::Create, rs(json!({"blockedRegistries": many})), None);
    expect(
        &rows,
        "R5",
        "error",
        "FieldValueTooMany",
        "spec.registrySources.blockedRegistries",
        "spec.registrySources.blockedRegistries: Too many: 1025: must have at most 1024 items",
    );
    let limit: Vec<String> = (0..1024).map(|i| format!("r{i}.example.com")).collect();
    absent(
        &findings(Phase::Create, rs(json!({"blockedRegistries": limit})), None),
        "R5",
    );
}

#[test]
fn rule_r6() {
    let rows = findings(
        Phase::Create,
        rs(json!({"containerRuntimeSearchRegistries": []})),
        None,
    );
    let path = "spec.registrySources.containerRuntimeSearchRegistries";
    expect(
        &rows,
        "R6",
        "error",
        "FieldValueInvalid",
        path,
        &format!("{path}: Invalid value: 0: {path} in body should have at least 1 items"),
    );
}

#[test]
fn rule_r7() {
    let search = json!({"containerRuntimeSearchRegistries": ["a.io", "b.io", "a.io", "a.io"]});
    let rows = findings(Phase::Create, rs(search.clone()), None);
    let path = "spec.registrySources.containerRuntimeSearchRegistries[2]";
    expect(
        &rows,
        "R7",
        "error",
        "FieldValueDuplicate",
        path,
        &format!("{path}: Duplicate value: \"a.io\""),
    );
    assert_eq!(
        rows.iter().filter(|r| r.0 == "R7").count(),
        1,
        "once per value"
    );
    // When the old object already had a duplicate, the check is ratcheted even if the list changed.
    let old = rs(json!({"containerRuntimeSearchRegistries": ["c.io", "c.io"]}));
    let rows = findings(Phase::Update, rs(search), Some(old));
    expect(
        &rows,
        "R7",
        "ratcheted",
        "FieldValueDuplicate",
        path,
        &format!("{path}: Duplicate value: \"a.io\""),
    );
}

#[test]
fn rule_p1() {
    let msg = "must be a registry hostname[:port] without scheme, path, wildcard, tag or digest";
    for bad in ["registry.io/ns", "*.example.com", "http://r.io", "r.io:tag"] {
        let rows = findings(
            Phase::Create,
            rs(json!({"containerRuntimeSearchRegistries": [bad]})),
            None,
        );
        let path = "spec.registrySources.containerRuntimeSearchRegistries[0]";
        expect(
            &rows,
            "P1",
            "error",
            "FieldValueInvalid",
            path,
            &format!("{path}: Invalid value: \"{bad}\": {msg}"),
        );
    }
    for good in ["reg.io:5000", "[::1]:5000", "localhost"] {
        absent(
            &findings(
                Phase::Create,
                rs(json!({"containerRuntimeSearchRegistries": [good]})),
                None,
            ),
            "P1",
        );
    }
}

#[test]
fn rule_p2() {
    let rows = findings(
        Phase::Create,
        image(json!({"allowedRegistriesForImport": [{"domainName": "[::1]:5000"}]})),
        None,
    );
    let path = "spec.allowedRegistriesForImport[0].domainName";
    expect(
        &rows,
        "P2",
        "error",
        "FieldValueInvalid",
        path,
        &format!(
            "{path}: Invalid value: \"[::1]:5000\": failed to parse allowed registry \"[::1]:5000\": too many colons"
        ),
    );
}

#[test]
fn rule_p3() {
    let path = "spec.allowedRegistriesForImport[0].domainName";
    for entry in [
        json!({}),
        json!({"domainName": ""}),
        json!({"insecure": true}),
    ] {
        let rows = findings(
            Phase::Create,
            image(json!({"allowedRegistriesForImport": [entry]})),
            None,
        );
        expect(
            &rows,
            "P3",
            "error",
            "FieldValueRequired",
            path,
            &format!("{path}: Required value: domainName is required"),
        );
    }
    // A domainName of the wrong type is a T1 error only.
    let rows = findings(
        Phase::Create,
        image(json!({"allowedRegistriesForImport": [{"domainName": 5}]})),
        None,
    );
    absent(&rows, "P3");
    assert!(rows.iter().any(|r| r.0 == "T1"));
}

#[test]
fn rule_p4() {
    let path = "spec.externalRegistryHostnames[1]";
    let rows = findings(
        Phase::Create,
        image(json!({"externalRegistryHostnames": ["ok.io:443", "https://r.example.com"]})),
        None,
    );
    expect(
        &rows,
        "P4",
        "error",
        "FieldValueInvalid",
        path,
        &format!(
            "{path}: Invalid value: \"https://r.example.com\": must be in \"hostname[:port]\" format"
        ),
    );
    absent(
        &findings(
            Phase::Create,
            image(json!({"externalRegistryHostnames": ["test"]})),
            None,
        ),
        "P4",
    );
}

#[test]
fn rule_p5() {
    let rows = findings(
        Phase::Create,
        image(json!({"additionalTrustedCA": {"name": "My_CA"}})),
        None,
    );
    let path = "spec.additionalTrustedCA.name";
    expect(
        &rows,
        "P5",
        "error",
        "FieldValueInvalid",
        path,
        &format!(
            "{path}: Invalid value: \"My_CA\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ),
    );
    absent(
        &findings(
            Phase::Create,
            image(json!({"additionalTrustedCA": {"name": "registry-cas"}})),
            None,
        ),
        "P5",
    );
}

#[test]
fn rule_p6() {
    let old = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {}});
    let new = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {
        "internalRegistryHostname": "https://x", "externalRegistryHostnames": ["ok.io", "a b"]}});
    let rows = findings(Phase::Status, new, Some(old));
    expect(
        &rows,
        "P6",
        "error",
        "FieldValueInvalid",
        "status.internalRegistryHostname",
        "status.internalRegistryHostname: Invalid value: \"https://x\": must be in \"hostname[:port]\" format",
    );
    expect(
        &rows,
        "P6",
        "error",
        "FieldValueInvalid",
        "status.externalRegistryHostnames[1]",
        "status.externalRegistryHostnames[1]: Invalid value: \"a b\": must be in \"hostname[:port]\" format",
    );
    let cleared = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {"internalRegistryHostname": ""}});
    absent(
        &findings(Phase::Status, cleared.clone(), Some(cleared)),
        "P6",
    );
}

#[test]
fn rule_w1() {
    let rows = findings(
        Phase::Create,
        rs(
            json!({"allowedRegistries": ["registry.redhat.io", "image-registry.openshift-image-registry.svc:5000"]}),
        ),
        None,
    );
    expect(
        &rows,
        "W1",
        "warning",
        "",
        "spec.registrySources.allowedRegistries",
        "spec.registrySources.allowedRegistries: does not include \"quay.io\"; release payload images will fail to pull",
    );
    assert_eq!(rows.iter().filter(|r| r.0 == "W1").count(), 1);
    absent(
        &findings(
            Phase::Create,
            rs(json!({"allowedRegistries": ["*.io", "registry.redhat.io"]})),
            None,
        ),
        "W1",
    );
}

#[test]
fn rule_w2() {
    let rows = findings(
        Phase::Create,
        rs(json!({"allowedRegistries": ["quay.io", "registry.redhat.io"]})),
        None,
    );
    expect(
        &rows,
        "W2",
        "warning",
        "",
        "spec.registrySources.allowedRegistries",
        "spec.registrySources.allowedRegistries: does not include the internal registry \"image-registry.openshift-image-registry.svc:5000\"",
    );
    // status.internalRegistryHostname overrides the setting.
    let mut obj = rs(
        json!({"allowedRegistries": ["quay.io", "registry.redhat.io", "image-registry.openshift-image-registry.svc:5000"]}),
    );
    obj["status"] = json!({"internalRegistryHostname": "registry.internal:5000"});
    let rows = findings(Phase::Update, obj.clone(), Some(obj));
    expect(
        &rows,
        "W2",
        "warning",
        "",
        "spec.registrySources.allowedRegistries",
        "spec.registrySources.allowedRegistries: does not include the internal registry \"registry.internal:5000\"",
    );
}

#[test]
fn rule_w3() {
    let blocked = json!({"blockedRegistries": [
        "quay.io", "other.io", "quay.io/openshift-release-dev/ocp-release", "*.redhat.io",
        "image-registry.openshift-image-registry.svc:5000", "quay.io/openshift-release-dev/ocp-v4.0-art-dev",
        "quay.io/openshift-release-dev2"
    ]});
    let rows = findings(Phase::Create, rs(blocked), None);
    let p = "\"quay.io/openshift-release-dev/ocp-release\"";
    for (i, text) in [
        (0, format!("\"quay.io\" covers the release payload repository {p}: the machine-config operator drops it and nodes do not block it")),
        (2, format!("{p} covers the release payload repository {p}: the machine-config operator drops it and nodes do not block it")),
        (3, "blocking \"*.redhat.io\" blocks release payload images on every node".to_owned()),
        (4, "blocking \"image-registry.openshift-image-registry.svc:5000\" blocks the internal registry on every node".to_owned()),
        // Beside the release image: the payload's component images.
        (5, "blocking \"quay.io/openshift-release-dev/ocp-v4.0-art-dev\" blocks release payload images on every node".to_owned()),
    ] {
        let path = format!("spec.registrySources.blockedRegistries[{i}]");
        expect(&rows, "W3", "warning", "", &path, &format!("{path}: {text}"));
    }
    assert_eq!(
        rows.iter().filter(|r| r.0 == "W3").count(),
        5,
        "other.io and a namespace that only shares a prefix are fine: {rows:#?}"
    );

    // The payload repository comes from the release image: a mirror's.
    let settings = crate::policy::Settings::from_release_image(
        "mirror.corp.example.com:5000/ocp4/openshift4:4.18.1-x86_64",
        crate::policy::DEFAULT_INTERNAL_REGISTRY,
    )
    .map_err(|e| e.to_string());
    let policy = settings.and_then(|s| Policy::new(s).map_err(|e| e.to_string()));
    let Ok(policy) = policy else {
        panic!("settings: {policy:?}");
    };
    let blocked = json!({"blockedRegistries": ["mirror.corp.example.com:5000", "quay.io", "mirror.corp.example.com:5000/ocp4/other"]});
    let rows = findings_with(&policy, Phase::Create, "cluster", rs(blocked), None);
    let m = "\"mirror.corp.example.com:5000/ocp4/openshift4\"";
    for (i, text) in [
        (0, format!("\"mirror.corp.example.com:5000\" covers the release payload repository {m}: the machine-config operator drops it and nodes do not block it")),
        // No longer dropped: quay.io is kept, and blocks a release registry.
        (1, "blocking \"quay.io\" blocks release payload images on every node".to_owned()),
        (2, "blocking \"mirror.corp.example.com:5000/ocp4/other\" blocks release payload images on every node".to_owned()),
    ] {
        let path = format!("spec.registrySources.blockedRegistries[{i}]");
        expect(&rows, "W3", "warning", "", &path, &format!("{path}: {text}"));
    }
}

#[test]
fn rule_w4() {
    let rows = findings(
        Phase::Create,
        rs(
            json!({"allowedRegistries": ["*.example.com"], "insecureRegistries": ["a.example.com", "other.io"]}),
        ),
        None,
    );
    let path = "spec.registrySources.insecureRegistries[1]";
    expect(
        &rows,
        "W4",
        "warning",
        "",
        path,
        &format!("{path}: insecure registry \"other.io\" is not in allowedRegistries"),
    );
    assert_eq!(rows.iter().filter(|r| r.0 == "W4").count(), 1);
}

#[test]
fn rule_w5() {
    let rows = findings(
        Phase::Create,
        rs(
            json!({"blockedRegistries": ["*.bad.io"], "containerRuntimeSearchRegistries": ["x.bad.io", "good.io"]}),
        ),
        None,
    );
    let path = "spec.registrySources.containerRuntimeSearchRegistries[0]";
    expect(
        &rows,
        "W5",
        "warning",
        "",
        path,
        &format!("{path}: search registry \"x.bad.io\" is blocked"),
    );
    let rows = findings(
        Phase::Create,
        rs(
            json!({"allowedRegistries": ["quay.io"], "containerRuntimeSearchRegistries": ["reg1.io"]}),
        ),
        None,
    );
    expect(
        &rows,
        "W5",
        "warning",
        "",
        path,
        &format!("{path}: search registry \"reg1.io\" is not allowed"),
    );
    // A blocked entry that covers the release payload is dropped by MCO and blocks nothing, so
    // W5 stays silent, as `explain` says (W3 warns about the entry itself).
    let rows = findings(
        Phase::Create,
        rs(
            json!({"blockedRegistries": ["quay.io"], "containerRuntimeSearchRegistries": ["quay.io"]}),
        ),
        None,
    );
    absent(&rows, "W5");
    assert!(rows.iter().any(|r| r.0 == "W3"));
}

#[test]
fn rule_w6() {
    let rows = findings(
        Phase::Create,
        rs(json!({"containerRuntimeSearchRegistries": ["my.io", "docker.io"]})),
        None,
    );
    let path = "spec.registrySources.containerRuntimeSearchRegistries[1]";
    expect(
        &rows,
        "W6",
        "warning",
        "",
        path,
        &format!("{path}: public registry in short-name search list (spoofing/credential risk)"),
    );
}

#[test]
fn rule_w7() {
    let rows = findings(
        Phase::Create,
        image(json!({
            "registrySources": {"insecureRegistries": ["r.io", "r.io", "r.io"]},
            "externalRegistryHostnames": ["a.io", "a.io"],
            "allowedRegistriesForImport": [{"domainName": "q.io"}, {"domainName": "q.io", "insecure": true}, {"domainName": "q.io"}],
        })),
        None,
    );
    expect(
        &rows,
        "W7",
        "warning",
        "",
        "spec.registrySources.insecureRegistries[1]",
        "spec.registrySources.insecureRegistries[1]: duplicate entry \"r.io\"",
    );
    expect(
        &rows,
        "W7",
        "warning",
        "",
        "spec.externalRegistryHostnames[1]",
        "spec.externalRegistryHostnames[1]: duplicate entry \"a.io\"",
    );
    expect(
        &rows,
        "W7",
        "warning",
        "",
        "spec.allowedRegistriesForImport[2]",
        "spec.allowedRegistriesForImport[2]: duplicate entry \"q.io\"",
    );
    assert_eq!(rows.iter().filter(|r| r.0 == "W7").count(), 3);
}

#[test]
fn rule_w8() {
    let rows = findings(
        Phase::Create,
        rs(json!({"insecureRegistries": ["r.io"], "blockedRegistries": ["r.io"]})),
        None,
    );
    let path = "spec.registrySources.insecureRegistries[0]";
    expect(
        &rows,
        "W8",
        "warning",
        "",
        path,
        &format!("{path}: \"r.io\" is both insecure and blocked"),
    );
    // The node writes the insecure scope's entry blocked when a blocked scope covers it.
    let rows = findings(
        Phase::Create,
        rs(
            json!({"insecureRegistries": ["x.a.io", "b.io/ns"], "blockedRegistries": ["*.a.io", "b.io"]}),
        ),
        None,
    );
    for (i, v) in [(0, "x.a.io"), (1, "b.io/ns")] {
        let path = format!("spec.registrySources.insecureRegistries[{i}]");
        expect(
            &rows,
            "W8",
            "warning",
            "",
            &path,
            &format!("{path}: \"{v}\" is both insecure and blocked"),
        );
    }
    // A blocked entry MCO drops for the release payload blocks nothing.
    let rows = findings(
        Phase::Create,
        rs(json!({"insecureRegistries": ["quay.io"], "blockedRegistries": ["quay.io"]})),
        None,
    );
    absent(&rows, "W8");
}

#[test]
fn rule_w9() {
    let rows = findings(
        Phase::Create,
        image(json!({
            "registrySources": {"blockedRegistries": ["myregistry", "myregistry/app", "localhost", "*.com"], "containerRuntimeSearchRegistries": ["mirror"]},
            "allowedRegistriesForImport": [{"domainName": "internal"}, {"domainName": "*"}],
            "externalRegistryHostnames": ["test"],
        })),
        None,
    );
    let msg = |v: &str| {
        format!("single-label host \"{v}\" is treated as a docker.io namespace and never matches")
    };
    expect(
        &rows,
        "W9",
        "warning",
        "",
        "spec.registrySources.blockedRegistries[0]",
        &format!(
            "spec.registrySources.blockedRegistries[0]: {}",
            msg("myregistry")
        ),
    );
    expect(
        &rows,
        "W9",
        "warning",
        "",
        "spec.registrySources.blockedRegistries[1]",
        &format!(
            "spec.registrySources.blockedRegistries[1]: {}",
            msg("myregistry")
        ),
    );
    expect(
        &rows,
        "W9",
        "warning",
        "",
        "spec.registrySources.containerRuntimeSearchRegistries[0]",
        &format!(
            "spec.registrySources.containerRuntimeSearchRegistries[0]: {}",
            msg("mirror")
        ),
    );
    expect(
        &rows,
        "W9",
        "warning",
        "",
        "spec.allowedRegistriesForImport[0].domainName",
        &format!(
            "spec.allowedRegistriesForImport[0].domainName: {}",
            msg("internal")
        ),
    );
    assert_eq!(
        rows.iter().filter(|r| r.0 == "W9").count(),
        4,
        "not localhost, wildcards, globs or external hostnames"
    );
}

#[test]
fn rule_w10() {
    let rows = findings(
        Phase::Create,
        rs(
            json!({"allowedRegistries": ["Registry.Example.com/app", "quay.io", "registry.redhat.io", "image-registry.openshift-image-registry.svc:5000"]}),
        ),
        None,
    );
    let path = "spec.registrySources.allowedRegistries[0]";
    expect(
        &rows,
        "W10",
        "warning",
        "",
        path,
        &format!(
            "{path}: host \"Registry.Example.com\" has uppercase letters; registry host matching is case-sensitive: use \"registry.example.com\""
        ),
    );
    assert_eq!(rows.len(), 1, "{rows:#?}");
}

#[test]
fn rule_w11() {
    let rows = findings(
        Phase::Create,
        rs(json!({"blockedRegistries": ["index.docker.io", "registry-1.docker.io/library/x"]})),
        None,
    );
    for i in 0..2 {
        let path = format!("spec.registrySources.blockedRegistries[{i}]");
        expect(
            &rows,
            "W11",
            "warning",
            "",
            &path,
            &format!("{path}: references are normalized to docker.io; this never matches"),
        );
    }
}

#[test]
fn rule_w12() {
    let rows = findings(
        Phase::Create,
        rs(json!({"blockedRegistries": ["registry.io:99999"]})),
        None,
    );
    let path = "spec.registrySources.blockedRegistries[0]";
    expect(
        &rows,
        "W12",
        "warning",
        "",
        path,
        &format!("{path}: invalid port/label length: port 99999 is outside 1-65535"),
    );
    let rows = findings(
        Phase::Create,
        image(json!({"externalRegistryHostnames": [format!("{}.io", "a".repeat(64))]})),
        None,
    );
    let path = "spec.externalRegistryHostnames[0]";
    expect(
        &rows,
        "W12",
        "warning",
        "",
        path,
        &format!("{path}: invalid port/label length: a host label is longer than 63 characters"),
    );
}

#[test]
fn rule_w13() {
    let rows = findings(
        Phase::Create,
        rs(json!({"blockedRegistries": ["*.com", "*.example.com"]})),
        None,
    );
    let path = "spec.registrySources.blockedRegistries[0]";
    expect(
        &rows,
        "W13",
        "warning",
        "",
        path,
        &format!("{path}: wildcard \"*.com\" covers an entire top-level domain"),
    );
    assert_eq!(rows.iter().filter(|r| r.0 == "W13").count(), 1);
    // Import globs: `*` alone admits every registry, `*.io` (any port) a whole top-level domain.
    let rows = findings(
        Phase::Create,
        image(json!({"allowedRegistriesForImport": [
            {"domainName": "*"}, {"domainName": "*.io:*"}, {"domainName": "*.example.com"},
            {"domainName": "quay.io"}, {"domainName": "**.com"}
        ]})),
        None,
    );
    let at = |i: usize| format!("spec.allowedRegistriesForImport[{i}].domainName");
    expect(
        &rows,
        "W13",
        "warning",
        "",
        &at(0),
        &format!("{}: wildcard \"*\" covers every registry", at(0)),
    );
    expect(
        &rows,
        "W13",
        "warning",
        "",
        &at(1),
        &format!(
            "{}: wildcard \"*.io:*\" covers an entire top-level domain",
            at(1)
        ),
    );
    expect(
        &rows,
        "W13",
        "warning",
        "",
        &at(4),
        &format!(
            "{}: wildcard \"**.com\" covers an entire top-level domain",
            at(4)
        ),
    );
    assert_eq!(rows.iter().filter(|r| r.0 == "W13").count(), 3, "{rows:#?}");
}

#[test]
fn rule_w14() {
    let rows = findings(
        Phase::Create,
        image(
            json!({"allowedRegistriesForImport": [{"domainName": "quay.io/openshift-release-dev"}]}),
        ),
        None,
    );
    let path = "spec.allowedRegistriesForImport[0].domainName";
    expect(
        &rows,
        "W14",
        "warning",
        "",
        path,
        &format!(
            "{path}: domainName must be host[:port] with optional * ? globs; paths/schemes never match"
        ),
    );
}

#[test]
fn rule_w15() {
    let rows = findings(
        Phase::Create,
        image(
            json!({"allowedRegistriesForImport": [{"domainName": "quay.io", "insecure": true}, {"domainName": "registry.redhat.io"}]}),
        ),
        None,
    );
    expect(
        &rows,
        "W15",
        "warning",
        "",
        "spec.allowedRegistriesForImport",
        "spec.allowedRegistriesForImport: \"quay.io\" not allowed; release/sample imagestream imports will fail",
    );
    assert_eq!(rows.iter().filter(|r| r.0 == "W15").count(), 1);
    absent(
        &findings(
            Phase::Create,
            image(json!({"allowedRegistriesForImport": [{"domainName": "*.io"}]})),
            None,
        ),
        "W15",
    );
    absent(
        &findings(
            Phase::Create,
            image(json!({"allowedRegistriesForImport": []})),
            None,
        ),
        "W15",
    );
}

#[test]
fn rule_w16() {
    let rows = findings(
        Phase::Create,
        image(
            json!({"allowedRegistriesForImport": [{"domainName": "quay.io", "insecure": true}, {"domainName": "r.io:80", "insecure": true}]}),
        ),
        None,
    );
    let path = "spec.allowedRegistriesForImport[0]";
    expect(
        &rows,
        "W16",
        "warning",
        "",
        path,
        &format!("{path}: only matches port 80/insecure imports; add a secure entry too"),
    );
    assert_eq!(rows.iter().filter(|r| r.0 == "W16").count(), 1);
    // The node's whitelist admits quay.io over TLS through another entry: nothing to add. A
    // glob cannot be probed for every host, and is still warned.
    let rows = findings(
        Phase::Create,
        image(json!({"allowedRegistriesForImport": [
            {"domainName": "quay.io", "insecure": true},
            {"domainName": "quay.io"},
            {"domainName": "*.a.io", "insecure": true},
            {"domainName": "*.a.io"},
        ]})),
        None,
    );
    let w16: Vec<&String> = rows.iter().filter(|r| r.0 == "W16").map(|r| &r.3).collect();
    assert_eq!(w16, ["spec.allowedRegistriesForImport[2]"]);
}

#[test]
fn rule_w17() {
    let rows = findings(Phase::Create, rs(json!({"blockedRegistries": []})), None);
    let path = "spec.registrySources.blockedRegistries";
    expect(
        &rows,
        "W17",
        "warning",
        "",
        path,
        &format!("{path}: empty list has no effect but still counts for the one-of rule"),
    );
}

#[test]
fn rule_w18() {
    // Every U and P error ratchets on an unchanged value; the text is the full error string.
    let old =
        image(json!({"imageStreamImportMode": "Bogus", "additionalTrustedCA": {"name": "My_CA"}}));
    let mut new = old.clone();
    new["spec"]["externalRegistryHostnames"] = json!(["r.example.com"]);
    let rows = findings(Phase::Update, new, Some(old));
    assert!(rows.iter().all(|r| r.1 == "ratcheted"), "{rows:#?}");
    expect(
        &rows,
        "E1",
        "ratcheted",
        "FieldValueNotSupported",
        "spec.imageStreamImportMode",
        "spec.imageStreamImportMode: Unsupported value: \"Bogus\": supported values: \"\", \"Legacy\", \"PreserveOriginal\"",
    );
    assert!(rows.iter().any(|r| r.0 == "P5"));
    // Never on CREATE.
    let rows = findings(
        Phase::Create,
        image(json!({"imageStreamImportMode": "Bogus"})),
        None,
    );
    assert!(rows.iter().all(|r| r.1 == "error"));
}

#[test]
fn findings_come_in_field_order() {
    let rows = findings(
        Phase::Create,
        json!({"metadata": {"name": "x"}, "spec": {
            "registrySources": {"blockedRegistries": ["b:tag"], "allowedRegistries": ["a:tag"]},
            "imageStreamImportMode": "X",
            "additionalTrustedCA": {},
        }}),
        None,
    );
    let errors: Vec<&str> = rows
        .iter()
        .filter(|r| r.1 == "error")
        .map(|r| r.3.as_str())
        .collect();
    assert_eq!(
        errors,
        [
            "metadata.name",
            "spec.additionalTrustedCA.name",
            "spec.imageStreamImportMode",
            "spec.registrySources",
            "spec.registrySources.allowedRegistries[0]",
            "spec.registrySources.blockedRegistries[0]",
        ]
    );
}

#[test]
fn rule_w19() {
    let rows = findings(
        Phase::Create,
        image(json!({"allowedRegistriesForImport": [
            {"domainName": "*example.com"},
            {"domainName": "registry.*"},
            {"domainName": "*.example.com:*"},
            {"domainName": "reg*.example.com"},
            {"domainName": "*"},
            {"domainName": "quay.io"},
        ]})),
        None,
    );
    let at = |i: usize| format!("spec.allowedRegistriesForImport[{i}].domainName");
    expect(
        &rows,
        "W19",
        "warning",
        "",
        &at(0),
        &format!(
            "{}: glob \"*example.com\" also matches \"evilexample.com\": * matches any characters, dots included; for the subdomains of example.com use \"*.example.com\" (and \"example.com\" for example.com itself)",
            at(0)
        ),
    );
    expect(
        &rows,
        "W19",
        "warning",
        "",
        &at(1),
        &format!(
            "{}: glob \"registry.*\" also matches \"registry.evil.example\": * matches any characters, dots included; list the registries it is meant for, or put the * before a . (*.example.com)",
            at(1)
        ),
    );
    assert_eq!(rows.iter().filter(|r| r.0 == "W19").count(), 2, "{rows:#?}");
    // What the warning says it matches, the whitelister really admits.
    use crate::grammar::import::is_wildcard_match;
    assert!(is_wildcard_match("evilexample.com", "*example.com"));
    assert!(is_wildcard_match("registry.evil.example", "registry.*"));
}

/// Past `maxItems` R5 denies the object and the node model is not built: the rules that ask it
/// stay silent, however many entries a hostile request sends.
#[test]
fn rules_asking_the_node_are_silent_past_max_items() {
    let blocked: Vec<String> = (0..1025).map(|i| format!("r{i}.example.com")).collect();
    let within = json!({"blockedRegistries": ["registry.redhat.io"], "containerRuntimeSearchRegistries": ["registry.redhat.io:5000"]});
    let rows = findings(Phase::Create, rs(within), None);
    assert!(rows.iter().any(|r| r.0 == "W3"), "{rows:#?}");
    assert!(rows.iter().any(|r| r.0 == "W5"), "{rows:#?}");
    let mut past = blocked;
    past.push("registry.redhat.io".to_owned());
    let rows = findings(
        Phase::Create,
        rs(
            json!({"blockedRegistries": past, "containerRuntimeSearchRegistries": ["registry.redhat.io:5000"]}),
        ),
        None,
    );
    assert!(rows.iter().any(|r| r.0 == "R5"), "{rows:#?}");
    assert!(
        !rows.iter().any(|r| r.0 == "W3" || r.0 == "W5"),
        "{rows:#?}"
    );
}
