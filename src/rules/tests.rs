//! One test per rule id, one line per case, in the manner of globset's `syntaxerr!`/`matches!`:
//!
//! - `fires!(rows => R2 error FieldValueInvalid "spec.registrySources.blockedRegistries[1]")`:
//!   the rule fires exactly once at that path, with this class (`error`, `ratcheted`) and cause
//!   reason; `fires!(rows => W4 warning "spec.…[1]")` for a warning;
//! - `quiet!(rows => R4)`: the rule does not fire at all; `count!(rows => W3 5)`: it fires five
//!   times in all;
//! - `says!(rows => R2 "spec.…[1]" => "spec.…[1]: Invalid value: …")`: the golden text, the
//!   exact words a user reads. Each rule's text is checked once (`every_rule_has_a_golden_text`),
//!   and again only where the words are what a case is about (which registry W2 names, which
//!   of W3's three messages an entry gets).
//!
//! `rows` is what [`findings`] returns for an object, or a call of it.

use serde_json::{Value, json};

use super::{Ctx, Outcome, Phase, RULES, run};
use crate::image::{Raw, decode};
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
    let (new_raw, old_raw) = (Raw::tree(&new), old.as_ref().map(Raw::tree));
    let ctx = Ctx {
        phase,
        name,
        new: &decoded.image,
        old: old_decoded.as_ref().map(|d| &d.image),
        new_raw: &new_raw,
        old_raw: old_raw.as_ref(),
        type_errors: &decoded.errors,
        omitted_type_errors: &decoded.omitted,
        policy,
        shared: Default::default(),
    };
    run(&ctx)
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

/// Asserts that `id` fired exactly once at `path`, with this class and cause reason (`""` for
/// a warning): a second finding of the rule at the same path fails, as apimachinery's
/// `ErrorMatcher` fails on duplicates.
#[track_caller]
fn expect(rows: &[Row], id: &str, class: &str, reason: &str, path: &str) {
    let at_path: Vec<&Row> = rows.iter().filter(|r| r.0 == id && r.3 == path).collect();
    assert!(
        matches!(at_path.as_slice(), [one] if one.1 == class && one.2 == reason),
        "{id}: want one ({class}, {reason:?}) at {path}, got {at_path:#?} among {rows:#?}"
    );
}

/// Asserts that the one finding of `id` at `path` reads exactly `text`.
#[track_caller]
fn text(rows: &[Row], id: &str, path: &str, text: &str) {
    let texts: Vec<&str> = rows
        .iter()
        .filter(|r| r.0 == id && r.3 == path)
        .map(|r| r.4.as_str())
        .collect();
    assert_eq!(texts, [text], "{id} at {path}");
}

#[track_caller]
fn absent(rows: &[Row], id: &str) {
    assert!(
        rows.iter().all(|r| r.0 != id),
        "{id} must not fire: {rows:#?}"
    );
}

/// `fires!(rows => ID class Reason path)`, `fires!(rows => ID warning path)`: see the module.
macro_rules! fires {
    ($rows:expr => $id:ident warning $path:expr) => {
        expect(&$rows, stringify!($id), "warning", "", &$path)
    };
    ($rows:expr => $id:ident $class:ident $reason:ident $path:expr) => {
        expect(
            &$rows,
            stringify!($id),
            stringify!($class),
            stringify!($reason),
            &$path,
        )
    };
}

/// `says!(rows => ID path => text)`: the golden text of a finding.
macro_rules! says {
    ($rows:expr => $id:ident $path:expr => $text:expr) => {
        text(&$rows, stringify!($id), &$path, &$text)
    };
}

/// `count!(rows => ID n)`: the rule fires `n` times in all.
macro_rules! count {
    ($rows:expr => $id:ident $n:literal) => {
        assert_eq!(
            $rows.iter().filter(|r| r.0 == stringify!($id)).count(),
            $n,
            "{} fires {} times: {:#?}",
            stringify!($id),
            $n,
            $rows
        )
    };
}

/// `quiet!(rows => ID)`: the rule does not fire.
macro_rules! quiet {
    ($rows:expr => $id:ident) => {
        absent(&$rows, stringify!($id))
    };
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

/// Every rule's exact text is asserted at least once; W18 has no text of its own (a ratcheted
/// error reads as the error), so `rule_w18` checks the text of one.
#[test]
fn every_rule_has_a_golden_text() {
    let source = include_str!("tests.rs");
    for rule in RULES.iter().filter(|r| !std::ptr::eq(**r, &super::W18)) {
        let marker = format!("says!(rows => {} ", rule.id);
        assert!(
            source.contains(&marker),
            "rule {} has no `{marker}`",
            rule.id
        );
    }
}

#[test]
fn rule_m1() {
    let mut obj = image(json!({}));
    obj["metadata"]["name"] = json!("foo");
    let rows = findings(Phase::Create, obj, None);
    fires!(rows => M1 error FieldValueInvalid "metadata.name");
    says!(rows => M1 "metadata.name" => "metadata.name: Invalid value: \"foo\": must be cluster");
    let mut obj = image(json!({}));
    obj["metadata"]["name"] = json!("Cluster");
    fires!(findings(Phase::Create, obj, None) => M1 error FieldValueInvalid "metadata.name");
    quiet!(findings(Phase::Create, image(json!({})), None) => M1);
}

#[test]
fn rule_m5() {
    let dns = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    for name in ["Cluster", "clus ter", "cluster.", "cluster\n"] {
        let mut obj = image(json!({}));
        obj["metadata"]["name"] = json!(name);
        let rows = findings(Phase::Create, obj, None);
        let quoted = crate::field::go_quote(name);
        fires!(rows => M5 error FieldValueInvalid "metadata.name");
        says!(rows => M5 "metadata.name" => &format!("metadata.name: Invalid value: {quoted}: {dns}"));
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
    quiet!(findings(Phase::Create, image(json!({})), None) => M5);
    let mut obj = image(json!({}));
    obj["metadata"]["name"] = json!("foo");
    quiet!(findings(Phase::Create, obj, None) => M5);
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
    fires!(rows => T2 error FieldValueInvalid "spec.registrySources");
    says!(rows => T2 "spec.registrySources" => &format!("spec.registrySources: Invalid value: \"object\": invalid data, expected a map for the provided schema with type=object evaluating rule: {one_of}" ));
    assert!(
        rows.iter().any(|r| r.0 == "T1" && r.1 == "ratcheted"),
        "{rows:#?}"
    );
    // Changed: the type error itself is the error, and CEL does not run.
    let rows = findings(Phase::Update, rs(json!(5)), Some(old));
    quiet!(rows => T2);
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
    fires!(rows => T2 error FieldValueInvalid &at(1));
    says!(rows => T2 &at(1) => &format!("{}: Invalid value: \"string\": invalid data, expected string, got int64 evaluating rule: {R2_MSG}", at(1) ));
    fires!(rows => T2 error FieldValueInvalid &at(2));
    says!(rows => T2 &at(2) => &format!("{}: Invalid value: \"string\": invalid data, got null for schema with nullable=false evaluating rule: {R2_MSG}", at(2) ));
    count!(rows => T2 2);
    // Never on CREATE, and not for well-typed values.
    quiet!(findings(Phase::Create, rs(json!("x")), None) => T2);
    let ok = rs(json!({"blockedRegistries": ["a.io"]}));
    quiet!(findings(Phase::Update, ok.clone(), Some(ok)) => T2);
}

#[test]
fn rule_m2() {
    let mut obj = image(json!({}));
    obj["metadata"] = json!({});
    let rows = findings(Phase::Create, obj, None);
    fires!(rows => M2 error FieldValueRequired "metadata.name");
    says!(rows => M2 "metadata.name" => "metadata.name: Required value: name or generateName is required");
    quiet!(rows => M1);
}

#[test]
fn rule_m3() {
    let mut obj = image(json!({}));
    obj["metadata"] = json!({"name": "cluster-x7k2q", "generateName": "cluster-"});
    let rows = findings(Phase::Create, obj, None);
    fires!(rows => M3 error FieldValueInvalid "metadata.generateName");
    says!(rows => M3 "metadata.generateName" => "metadata.generateName: Invalid value: \"cluster-\": must be cluster");
    fires!(rows => M1 error FieldValueInvalid "metadata.name");
    let order: Vec<&str> = rows.iter().map(|r| r.0).collect();
    assert_eq!(order, ["M3", "M1"], "generateName sorts before name");
}

#[test]
fn rule_m4() {
    let old = json!({"metadata": {"name": "cluster", "uid": "a"}, "spec": {}});
    let new = json!({"metadata": {"name": "cluster", "uid": "b"}, "spec": {}});
    let rows = findings(Phase::Update, new.clone(), Some(old.clone()));
    fires!(rows => M4 error FieldValueInvalid "metadata.uid");
    says!(rows => M4 "metadata.uid" => "metadata.uid: Invalid value: \"b\": field is immutable");
    let rows = findings(Phase::Status, new, Some(old.clone()));
    fires!(rows => M4 error FieldValueInvalid "metadata.uid");
    // An unchanged name on UPDATE is fine even when it is not `cluster` (row 6).
    let foo = json!({"metadata": {"name": "foo"}, "spec": {}});
    assert!(findings(Phase::Update, foo.clone(), Some(foo)).is_empty());
}

#[test]
fn rule_d1() {
    let rows = findings(Phase::Delete, json!({}), None);
    fires!(rows => D1 error FieldValueForbidden "<nil>");
    says!(rows => D1 "<nil>" => "<nil>: Forbidden: deleting required images.config.openshift.io resource, named cluster, is not allowed");
    assert!(findings_named(Phase::Delete, "foo", json!({}), None).is_empty());
}

#[test]
fn rule_s1() {
    let rows = findings(
        Phase::Create,
        json!({"metadata": {"name": "cluster"}}),
        None,
    );
    fires!(rows => S1 error FieldValueRequired "spec");
    says!(rows => S1 "spec" => "spec: Required value");
    let rows = findings(
        Phase::Create,
        json!({"metadata": {"name": "cluster"}, "spec": null}),
        None,
    );
    fires!(rows => S1 error FieldValueRequired "spec");
    quiet!(findings(Phase::Create, json!({"metadata": {"name": "cluster"}, "spec": 1}), None) => S1);
}

#[test]
fn rule_s2() {
    let rows = findings(
        Phase::Create,
        image(json!({"additionalTrustedCA": {}})),
        None,
    );
    fires!(rows => S2 error FieldValueRequired "spec.additionalTrustedCA.name");
    says!(rows => S2 "spec.additionalTrustedCA.name" => "spec.additionalTrustedCA.name: Required value");
    quiet!(findings(Phase::Create, image(json!({"additionalTrustedCA": {"name": ""}})), None) => S2);
}

#[test]
fn rule_t1() {
    let rows = findings(
        Phase::Create,
        rs(json!({"containerRuntimeSearchRegistries": "quay.io"})),
        None,
    );
    fires!(rows => T1 error FieldValueTypeInvalid "spec.registrySources.containerRuntimeSearchRegistries");
    says!(rows => T1 "spec.registrySources.containerRuntimeSearchRegistries" => "spec.registrySources.containerRuntimeSearchRegistries: Invalid value: \"string\": spec.registrySources.containerRuntimeSearchRegistries in body must be of type array: \"string\"");
    // Other errors of the object are still reported next to the type error.
    let rows = findings(
        Phase::Create,
        image(
            json!({"allowedRegistriesForImport": [{"domainName": "quay.io", "insecure": "yes"}], "imageStreamImportMode": "x"}),
        ),
        None,
    );
    fires!(rows => T1 error FieldValueTypeInvalid "spec.allowedRegistriesForImport[0].insecure");
    assert!(rows.iter().any(|r| r.0 == "E1"));
    // Status type errors count only on status writes.
    let bad_status = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {"externalRegistryHostnames": "x"}});
    quiet!(findings(Phase::Create, bad_status.clone(), None) => T1);
    let old = json!({"metadata": {"name": "cluster"}, "spec": {}});
    let rows = findings(Phase::Status, bad_status, Some(old));
    fires!(rows => T1 error FieldValueTypeInvalid "status.externalRegistryHostnames");
}

#[test]
fn rule_e1() {
    let text = "spec.imageStreamImportMode: Unsupported value: \"legacy\": supported values: \"\", \"Legacy\", \"PreserveOriginal\"";
    let rows = findings(
        Phase::Create,
        image(json!({"imageStreamImportMode": "legacy"})),
        None,
    );
    fires!(rows => E1 error FieldValueNotSupported "spec.imageStreamImportMode");
    says!(rows => E1 "spec.imageStreamImportMode" => text);
    for ok in ["", "Legacy", "PreserveOriginal"] {
        quiet!(findings(Phase::Create, image(json!({"imageStreamImportMode": ok})), None) => E1);
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
        fires!(rows => E1 error FieldValueNotSupported "spec.imageStreamImportMode");
        says!(rows => E1 "spec.imageStreamImportMode" => &format!("spec.imageStreamImportMode: Unsupported value: {shown}: supported values: \"\", \"Legacy\", \"PreserveOriginal\"" ));
        assert!(
            rows.iter()
                .any(|r| r.0 == "T1" && r.3 == "spec.imageStreamImportMode"),
            "{rows:#?}"
        );
    }
    quiet!(findings(Phase::Create, image(json!({"imageStreamImportMode": null})), None) => E1);
    let old = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {"imageStreamImportMode": "Legacy"}});
    let new = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {"imageStreamImportMode": "Bogus"}});
    let rows = findings(Phase::Status, new, Some(old));
    fires!(rows => E1 error FieldValueNotSupported "status.imageStreamImportMode");
}

#[test]
fn rule_r1() {
    let text = "spec.registrySources: Invalid value: Only one of blockedRegistries or allowedRegistries may be set";
    let rows = findings(
        Phase::Create,
        rs(json!({"allowedRegistries": ["a.io"], "blockedRegistries": []})),
        None,
    );
    fires!(rows => R1 error FieldValueInvalid "spec.registrySources");
    says!(rows => R1 "spec.registrySources" => text);
    quiet!(findings(Phase::Create, rs(json!({"allowedRegistries": ["a.io"], "blockedRegistries": null})), None) => R1);
    // Ratcheted only when the whole registrySources is unchanged (upstream onUpdate 1 and 3).
    let old = rs(json!({"allowedRegistries": ["test"], "blockedRegistries": ["test"]}));
    let mut new = old.clone();
    new["spec"]["externalRegistryHostnames"] = json!(["test"]);
    fires!(findings(Phase::Update, new, Some(old.clone())) => R1 ratcheted FieldValueInvalid "spec.registrySources");
    let new = rs(json!({"allowedRegistries": ["test"], "blockedRegistries": ["test", "test2"]}));
    fires!(findings(Phase::Update, new, Some(old)) => R1 error FieldValueInvalid "spec.registrySources");
}

#[test]
fn rule_r2() {
    let rows = findings(
        Phase::Create,
        rs(json!({"blockedRegistries": ["ok.io", "registry.io/myrepo:latest"]})),
        None,
    );
    fires!(rows => R2 error FieldValueInvalid "spec.registrySources.blockedRegistries[1]");
    says!(rows => R2 "spec.registrySources.blockedRegistries[1]" => &format!("spec.registrySources.blockedRegistries[1]: Invalid value: \"registry.io/myrepo:latest\": {R2_MSG}" ));
    for list in ["allowedRegistries", "insecureRegistries"] {
        let rows = findings(
            Phase::Create,
            rs(json!({ list: ["r.io@sha256:abc"] })),
            None,
        );
        let path = format!("spec.registrySources.{list}[0]");
        fires!(rows => R2 error FieldValueInvalid &path);
    }
    // An atomic list is re-validated whole when any item changes (upstream onUpdate 10).
    let old = rs(json!({"blockedRegistries": ["registry.io/myrepo:latest"]}));
    let new = rs(json!({"blockedRegistries": ["registry.io/myrepo:latest", "valid.registry.io"]}));
    let rows = findings(Phase::Update, new, Some(old.clone()));
    fires!(rows => R2 error FieldValueInvalid "spec.registrySources.blockedRegistries[0]");
    let mut new = old.clone();
    new["spec"]["externalRegistryHostnames"] = json!(["r.example.com"]);
    let rows = findings(Phase::Update, new, Some(old));
    fires!(rows => R2 ratcheted FieldValueInvalid "spec.registrySources.blockedRegistries[0]");
}

#[test]
fn rule_r3() {
    let rows = findings(Phase::Create, rs(json!({"insecureRegistries": [""]})), None);
    let path = "spec.registrySources.insecureRegistries[0]";
    fires!(rows => R3 error FieldValueInvalid path);
    says!(rows => R3 path => &format!("{path}: Invalid value: \"\": {path} in body should be at least 1 chars long"));
    fires!(rows => R2 error FieldValueInvalid path);
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
    fires!(rows => R4 error FieldValueTooLong path);
    says!(rows => R4 path => &format!("{path}: Too long: may not be more than 256 bytes"));
    let exact = format!("r.io/{}", "a".repeat(251));
    quiet!(findings(Phase::Create, rs(json!({"blockedRegistries": [exact]})), None) => R4);
}

#[test]
fn rule_r5() {
    let many: Vec<String> = (0..1025).map(|i| format!("r{i}.example.com")).collect();
    let rows = findings(Phase::Create, rs(json!({"blockedRegistries": many})), None);
    fires!(rows => R5 error FieldValueTooMany "spec.registrySources.blockedRegistries");
    says!(rows => R5 "spec.registrySources.blockedRegistries" => "spec.registrySources.blockedRegistries: Too many: 1025: must have at most 1024 items");
    let limit: Vec<String> = (0..1024).map(|i| format!("r{i}.example.com")).collect();
    quiet!(findings(Phase::Create, rs(json!({"blockedRegistries": limit})), None) => R5);
}

#[test]
fn rule_r6() {
    let rows = findings(
        Phase::Create,
        rs(json!({"containerRuntimeSearchRegistries": []})),
        None,
    );
    let path = "spec.registrySources.containerRuntimeSearchRegistries";
    fires!(rows => R6 error FieldValueInvalid path);
    says!(rows => R6 path => &format!("{path}: Invalid value: 0: {path} in body should have at least 1 items"));
}

#[test]
fn rule_r7() {
    let search = json!({"containerRuntimeSearchRegistries": ["a.io", "b.io", "a.io", "a.io"]});
    let rows = findings(Phase::Create, rs(search.clone()), None);
    let path = "spec.registrySources.containerRuntimeSearchRegistries[2]";
    fires!(rows => R7 error FieldValueDuplicate path);
    says!(rows => R7 path => &format!("{path}: Duplicate value: \"a.io\""));
    // Once per value.
    count!(rows => R7 1);
    // When the old object already had a duplicate, the check is ratcheted even if the list changed.
    let old = rs(json!({"containerRuntimeSearchRegistries": ["c.io", "c.io"]}));
    let rows = findings(Phase::Update, rs(search), Some(old));
    fires!(rows => R7 ratcheted FieldValueDuplicate path);
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
        fires!(rows => P1 error FieldValueInvalid path);
        says!(rows => P1 path => &format!("{path}: Invalid value: \"{bad}\": {msg}"));
    }
    for good in ["reg.io:5000", "[::1]:5000", "localhost"] {
        quiet!(findings(Phase::Create, rs(json!({"containerRuntimeSearchRegistries": [good]})), None) => P1);
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
    fires!(rows => P2 error FieldValueInvalid path);
    says!(rows => P2 path => &format!("{path}: Invalid value: \"[::1]:5000\": failed to parse allowed registry \"[::1]:5000\": too many colons" ));
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
        fires!(rows => P3 error FieldValueRequired path);
        says!(rows => P3 path => &format!("{path}: Required value: domainName is required"));
    }
    // A domainName of the wrong type is a T1 error only.
    let rows = findings(
        Phase::Create,
        image(json!({"allowedRegistriesForImport": [{"domainName": 5}]})),
        None,
    );
    quiet!(rows => P3);
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
    fires!(rows => P4 error FieldValueInvalid path);
    says!(rows => P4 path => &format!("{path}: Invalid value: \"https://r.example.com\": must be in \"hostname[:port]\" format" ));
    quiet!(findings(Phase::Create, image(json!({"externalRegistryHostnames": ["test"]})), None) => P4);
}

#[test]
fn rule_p5() {
    let rows = findings(
        Phase::Create,
        image(json!({"additionalTrustedCA": {"name": "My_CA"}})),
        None,
    );
    let path = "spec.additionalTrustedCA.name";
    fires!(rows => P5 error FieldValueInvalid path);
    says!(rows => P5 path => &format!("{path}: Invalid value: \"My_CA\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')" ));
    quiet!(findings(Phase::Create, image(json!({"additionalTrustedCA": {"name": "registry-cas"}})), None) => P5);
}

#[test]
fn rule_p6() {
    let old = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {}});
    let new = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {
        "internalRegistryHostname": "https://x", "externalRegistryHostnames": ["ok.io", "a b"]}});
    let rows = findings(Phase::Status, new, Some(old));
    fires!(rows => P6 error FieldValueInvalid "status.internalRegistryHostname");
    says!(rows => P6 "status.internalRegistryHostname" => "status.internalRegistryHostname: Invalid value: \"https://x\": must be in \"hostname[:port]\" format");
    fires!(rows => P6 error FieldValueInvalid "status.externalRegistryHostnames[1]");
    let cleared = json!({"metadata": {"name": "cluster"}, "spec": {}, "status": {"internalRegistryHostname": ""}});
    quiet!(findings(Phase::Status, cleared.clone(), Some(cleared)) => P6);
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
    fires!(rows => W1 warning "spec.registrySources.allowedRegistries");
    says!(rows => W1 "spec.registrySources.allowedRegistries" => "spec.registrySources.allowedRegistries: does not include \"quay.io\"; release payload images will fail to pull");
    count!(rows => W1 1);
    quiet!(findings(Phase::Create, rs(json!({"allowedRegistries": ["*.io", "registry.redhat.io"]})), None) => W1);
}

#[test]
fn rule_w2() {
    let rows = findings(
        Phase::Create,
        rs(json!({"allowedRegistries": ["quay.io", "registry.redhat.io"]})),
        None,
    );
    fires!(rows => W2 warning "spec.registrySources.allowedRegistries");
    says!(rows => W2 "spec.registrySources.allowedRegistries" => "spec.registrySources.allowedRegistries: does not include the internal registry \"image-registry.openshift-image-registry.svc:5000\"");
    // status.internalRegistryHostname overrides the setting.
    let mut obj = rs(
        json!({"allowedRegistries": ["quay.io", "registry.redhat.io", "image-registry.openshift-image-registry.svc:5000"]}),
    );
    obj["status"] = json!({"internalRegistryHostname": "registry.internal:5000"});
    let rows = findings(Phase::Update, obj.clone(), Some(obj));
    fires!(rows => W2 warning "spec.registrySources.allowedRegistries");
    says!(rows => W2 "spec.registrySources.allowedRegistries" => "spec.registrySources.allowedRegistries: does not include the internal registry \"registry.internal:5000\"");
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
        fires!(rows => W3 warning &path);
        says!(rows => W3 &path => &format!("{path}: {text}"));
    }
    // other.io and a namespace that only shares a prefix are fine.
    count!(rows => W3 5);

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
        fires!(rows => W3 warning &path);
        says!(rows => W3 &path => &format!("{path}: {text}"));
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
    fires!(rows => W4 warning path);
    says!(rows => W4 path => &format!("{path}: insecure registry \"other.io\" is not in allowedRegistries"));
    count!(rows => W4 1);
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
    fires!(rows => W5 warning path);
    says!(rows => W5 path => &format!("{path}: search registry \"x.bad.io\" is blocked"));
    let rows = findings(
        Phase::Create,
        rs(
            json!({"allowedRegistries": ["quay.io"], "containerRuntimeSearchRegistries": ["reg1.io"]}),
        ),
        None,
    );
    fires!(rows => W5 warning path);
    says!(rows => W5 path => &format!("{path}: search registry \"reg1.io\" is not allowed"));
    // A blocked entry that covers the release payload is dropped by MCO and blocks nothing, so
    // W5 stays silent, as `explain` says (W3 warns about the entry itself).
    let rows = findings(
        Phase::Create,
        rs(
            json!({"blockedRegistries": ["quay.io"], "containerRuntimeSearchRegistries": ["quay.io"]}),
        ),
        None,
    );
    quiet!(rows => W5);
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
    fires!(rows => W6 warning path);
    says!(rows => W6 path => &format!("{path}: public registry in short-name search list (spoofing/credential risk)"));
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
    fires!(rows => W7 warning "spec.registrySources.insecureRegistries[1]");
    says!(rows => W7 "spec.registrySources.insecureRegistries[1]" => "spec.registrySources.insecureRegistries[1]: duplicate entry \"r.io\"");
    fires!(rows => W7 warning "spec.externalRegistryHostnames[1]");
    fires!(rows => W7 warning "spec.allowedRegistriesForImport[2]");
    count!(rows => W7 3);
}

#[test]
fn rule_w8() {
    let rows = findings(
        Phase::Create,
        rs(json!({"insecureRegistries": ["r.io"], "blockedRegistries": ["r.io"]})),
        None,
    );
    let path = "spec.registrySources.insecureRegistries[0]";
    fires!(rows => W8 warning path);
    says!(rows => W8 path => &format!("{path}: \"r.io\" is both insecure and blocked"));
    // The node writes the insecure scope's entry blocked when a blocked scope covers it.
    let rows = findings(
        Phase::Create,
        rs(
            json!({"insecureRegistries": ["x.a.io", "b.io/ns"], "blockedRegistries": ["*.a.io", "b.io"]}),
        ),
        None,
    );
    for i in 0..2 {
        let path = format!("spec.registrySources.insecureRegistries[{i}]");
        fires!(rows => W8 warning &path);
    }
    // A blocked entry MCO drops for the release payload blocks nothing.
    let rows = findings(
        Phase::Create,
        rs(json!({"insecureRegistries": ["quay.io"], "blockedRegistries": ["quay.io"]})),
        None,
    );
    quiet!(rows => W8);
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
    fires!(rows => W9 warning "spec.registrySources.blockedRegistries[0]");
    says!(rows => W9 "spec.registrySources.blockedRegistries[0]" => &format!("spec.registrySources.blockedRegistries[0]: {}", msg("myregistry") ));
    fires!(rows => W9 warning "spec.registrySources.blockedRegistries[1]");
    fires!(rows => W9 warning "spec.registrySources.containerRuntimeSearchRegistries[0]");
    fires!(rows => W9 warning "spec.allowedRegistriesForImport[0].domainName");
    // Not localhost, wildcards, globs or external hostnames.
    count!(rows => W9 4);
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
    fires!(rows => W10 warning path);
    says!(rows => W10 path => &format!("{path}: host \"Registry.Example.com\" has uppercase letters; registry host matching is case-sensitive: use \"registry.example.com\"" ));
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
        fires!(rows => W11 warning &path);
        says!(rows => W11 &path => &format!("{path}: references are normalized to docker.io; this never matches"));
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
    fires!(rows => W12 warning path);
    says!(rows => W12 path => &format!("{path}: invalid port/label length: port 99999 is outside 1-65535"));
    let rows = findings(
        Phase::Create,
        image(json!({"externalRegistryHostnames": [format!("{}.io", "a".repeat(64))]})),
        None,
    );
    let path = "spec.externalRegistryHostnames[0]";
    fires!(rows => W12 warning path);
    says!(rows => W12 path => &format!("{path}: invalid port/label length: a host label is longer than 63 characters"));
}

#[test]
fn rule_w13() {
    let rows = findings(
        Phase::Create,
        rs(json!({"blockedRegistries": ["*.com", "*.example.com"]})),
        None,
    );
    let path = "spec.registrySources.blockedRegistries[0]";
    fires!(rows => W13 warning path);
    says!(rows => W13 path => &format!("{path}: wildcard \"*.com\" covers an entire top-level domain"));
    count!(rows => W13 1);
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
    fires!(rows => W13 warning &at(0));
    says!(rows => W13 &at(0) => &format!("{}: wildcard \"*\" covers every registry", at(0)));
    fires!(rows => W13 warning &at(1));
    says!(rows => W13 &at(1) => &format!("{}: wildcard \"*.io:*\" covers an entire top-level domain", at(1) ));
    fires!(rows => W13 warning &at(4));
    count!(rows => W13 3);
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
    fires!(rows => W14 warning path);
    says!(rows => W14 path => &format!("{path}: domainName must be host[:port] with optional * ? globs; paths/schemes never match" ));
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
    fires!(rows => W15 warning "spec.allowedRegistriesForImport");
    says!(rows => W15 "spec.allowedRegistriesForImport" => "spec.allowedRegistriesForImport: \"quay.io\" not allowed; release/sample imagestream imports will fail");
    count!(rows => W15 1);
    quiet!(findings(Phase::Create, image(json!({"allowedRegistriesForImport": [{"domainName": "*.io"}]})), None) => W15);
    quiet!(findings(Phase::Create, image(json!({"allowedRegistriesForImport": []})), None) => W15);
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
    fires!(rows => W16 warning path);
    says!(rows => W16 path => &format!("{path}: only matches port 80/insecure imports; add a secure entry too"));
    count!(rows => W16 1);
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
    fires!(rows => W17 warning path);
    says!(rows => W17 path => &format!("{path}: empty list has no effect but still counts for the one-of rule"));
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
    fires!(rows => E1 ratcheted FieldValueNotSupported "spec.imageStreamImportMode");
    says!(rows => E1 "spec.imageStreamImportMode" => "spec.imageStreamImportMode: Unsupported value: \"Bogus\": supported values: \"\", \"Legacy\", \"PreserveOriginal\"");
    fires!(rows => P5 ratcheted FieldValueInvalid "spec.additionalTrustedCA.name");
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
    fires!(rows => W19 warning &at(0));
    says!(rows => W19 &at(0) => &format!("{}: glob \"*example.com\" also matches \"evilexample.com\": * matches any characters, dots included; for the subdomains of example.com use \"*.example.com\" (and \"example.com\" for example.com itself)", at(0) ));
    fires!(rows => W19 warning &at(1));
    says!(rows => W19 &at(1) => &format!("{}: glob \"registry.*\" also matches \"registry.evil.example\": * matches any characters, dots included; list the registries it is meant for, or put the * before a . (*.example.com)", at(1) ));
    count!(rows => W19 2);
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

/// A policy with the default settings in a cluster context: digest mirror sets
/// `(source, mirrors, NeverContactSource)`, tag mirror sets, and a release image.
fn in_context(
    digest: &[(&str, &[&str], bool)],
    tag: &[(&str, &[&str], bool)],
    release: Option<&str>,
) -> Policy {
    use crate::context::{ClusterContext, MirrorRule, MirrorSet, MirrorSourcePolicy};
    let set = |name: &str, rules: &[(&str, &[&str], bool)]| {
        let rules = rules
            .iter()
            .map(|(source, mirrors, never)| MirrorRule {
                source: (*source).to_owned(),
                mirrors: mirrors.iter().map(|m| (*m).to_owned()).collect(),
                source_policy: never.then_some(MirrorSourcePolicy::NeverContactSource),
            })
            .collect();
        vec![MirrorSet {
            name: name.to_owned(),
            rules,
        }]
    };
    let context = ClusterContext {
        digest_mirror_sets: if digest.is_empty() {
            Vec::new()
        } else {
            set("digest", digest)
        },
        tag_mirror_sets: if tag.is_empty() {
            Vec::new()
        } else {
            set("tag", tag)
        },
        content_source_policies: Vec::new(),
        release_image: release.map(str::to_owned),
        ..ClusterContext::default()
    };
    Policy::default().with_context(Some(std::sync::Arc::new(context)))
}

const PAYLOAD: &str = "quay.io/openshift-release-dev/ocp-release";
const RELEASE: &str = "quay.io/openshift-release-dev/ocp-release@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The context of `MIRRORS.md` §5.4: P and C mirrored by digest to `mirror.local`.
fn payload_mirrored() -> Policy {
    in_context(
        &[
            (PAYLOAD, &["mirror.local/ocp/release"], false),
            (
                "quay.io/openshift-release-dev/ocp-v4.0-art-dev",
                &["mirror.local/ocp/release"],
                false,
            ),
        ],
        &[],
        Some(RELEASE),
    )
}

#[test]
fn rule_p7() {
    // Two blocked entries cover P, which has a digest mirror: allowed becomes [P, P].
    let obj = rs(json!({"blockedRegistries": ["quay.io", "quay.io/openshift-release-dev"]}));
    let policy = payload_mirrored();
    let rows = findings_with(&policy, Phase::Create, "cluster", obj.clone(), None);
    let path = "spec.registrySources.blockedRegistries[1]";
    fires!(rows => P7 error FieldValueInvalid path);
    says!(rows => P7 path => format!("{path}: Invalid value: \"quay.io/openshift-release-dev\": the machine-config operator refuses to render it with the cluster's mirror sets (invalid images config: only one of AllowedRegistries or BlockedRegistries may be specified): nodes would keep their previous registries.conf and policy.json"));
    count!(rows => P7 1);
    // Without the context, or without the mirror, MCO drops both entries: no refusal.
    quiet!(findings(Phase::Create, obj.clone(), None) => P7);
    let unmirrored = in_context(&[], &[], Some(RELEASE));
    quiet!(findings_with(&unmirrored, Phase::Create, "cluster", obj.clone(), None) => P7);
    // Nor when the release image is unknown: the settings' P would be a guess.
    let guessed = in_context(
        &[(PAYLOAD, &["mirror.local/ocp/release"], false)],
        &[],
        None,
    );
    quiet!(findings_with(&guessed, Phase::Create, "cluster", obj.clone(), None) => P7);
    // An unchanged object is never newly denied because a mirror set changed: ratcheted.
    let rows = findings_with(&policy, Phase::Update, "cluster", obj.clone(), Some(obj));
    fires!(rows => P7 ratcheted FieldValueInvalid path);
    // A scope without mirrors nested in a wildcard mirror source.
    let wildcard = in_context(
        &[("*.redhat.io", &["mirror.example.net/redhat"], false)],
        &[],
        None,
    );
    let obj = rs(json!({"insecureRegistries": ["other.io", "registry.redhat.io"]}));
    let rows = findings_with(&wildcard, Phase::Create, "cluster", obj, None);
    let path = "spec.registrySources.insecureRegistries[1]";
    fires!(rows => P7 error FieldValueInvalid path);
    says!(rows => P7 path => format!("{path}: Invalid value: \"registry.redhat.io\": the machine-config operator refuses to render it with the cluster's mirror sets (internal error: mirrorsAdjustedForNestedScope for a wildcard scope \"*.redhat.io\"): nodes would keep their previous registries.conf and policy.json"));
    // The mirror sets' own errors are not the Image's: no denial.
    let conflicting = in_context(
        &[("registry.example.com/a", &["m.example.net/a"], true)],
        &[("registry.example.com/a", &["t.example.net/a"], false)],
        None,
    );
    quiet!(findings_with(&conflicting, Phase::Create, "cluster", rs(json!({"blockedRegistries": ["other.io"]})), None) => P7);
}

#[test]
fn rule_w21() {
    let policy = in_context(
        &[(
            "registry.example.com/team",
            &["mirror.example.net/team"],
            false,
        )],
        &[],
        Some(RELEASE),
    );
    let obj = rs(json!({"blockedRegistries": ["registry.example.com", "other.io"]}));
    let rows = findings_with(&policy, Phase::Create, "cluster", obj.clone(), None);
    let path = "spec.registrySources.blockedRegistries[0]";
    fires!(rows => W21 warning path);
    says!(rows => W21 path => format!("{path}: \"registry.example.com\" rejects the images of the mirrored source \"registry.example.com/team\" by name: mirrors do not bypass policy.json; use mirrorSourcePolicy: NeverContactSource"));
    count!(rows => W21 1);
    quiet!(findings(Phase::Create, obj, None) => W21);
    // An entry covering P is W23's.
    quiet!(findings_with(&payload_mirrored(), Phase::Create, "cluster", rs(json!({"blockedRegistries": ["quay.io"]})), None) => W21);
    // An entry inside a mirrored source gets the source's mirrors, and policy.json still rejects
    // its images by name (MIRRORS.md §2.1 nested copy, §4.5).
    let obj = rs(json!({"blockedRegistries": ["other.io", "registry.example.com/team/app"]}));
    let rows = findings_with(&policy, Phase::Create, "cluster", obj, None);
    let path = "spec.registrySources.blockedRegistries[1]";
    says!(rows => W21 path => format!("{path}: \"registry.example.com/team/app\" rejects the images under it of the mirrored source \"registry.example.com/team\" by name: mirrors do not bypass policy.json; use mirrorSourcePolicy: NeverContactSource"));
    count!(rows => W21 1);
}

#[test]
fn rule_w22() {
    // MIRRORS.md §5.4: quay.io is dropped (no unblocked source), mirror.local blocks the mirror.
    let obj = rs(json!({"blockedRegistries": ["quay.io", "mirror.local"]}));
    let rows = findings_with(
        &payload_mirrored(),
        Phase::Create,
        "cluster",
        obj.clone(),
        None,
    );
    let path = "spec.registrySources.blockedRegistries[1]";
    fires!(rows => W22 warning path);
    says!(rows => W22 path => format!("{path}: \"mirror.local\" blocks the mirror \"mirror.local/ocp/release\" of \"quay.io/openshift-release-dev/ocp-release\": pulls skip it"));
    count!(rows => W22 1);
    quiet!(findings(Phase::Create, obj, None) => W22);
    quiet!(findings_with(&payload_mirrored(), Phase::Create, "cluster", rs(json!({"blockedRegistries": ["mirror.localhost"]})), None) => W22);
}

#[test]
fn rule_w23() {
    let policy = payload_mirrored();
    let rows = findings_with(
        &policy,
        Phase::Create,
        "cluster",
        rs(json!({"blockedRegistries": ["quay.io"]})),
        None,
    );
    let path = "spec.registrySources.blockedRegistries[0]";
    fires!(rows => W23 warning path);
    says!(rows => W23 path => format!("{path}: \"quay.io\" is kept because \"{PAYLOAD}\" has a digest mirror, but policy.json rejects every other image under it, the payload's component images included"));
    // P alone: the default becomes reject.
    let rows = findings_with(
        &policy,
        Phase::Create,
        "cluster",
        rs(json!({"blockedRegistries": [PAYLOAD]})),
        None,
    );
    says!(rows => W23 path => format!("{path}: blocking only the release payload repository \"{PAYLOAD}\" makes policy.json reject every other image"));
    // P beside another entry is carved out: fine. Without a mirror, MCO drops the entry (W3).
    quiet!(findings_with(&policy, Phase::Create, "cluster", rs(json!({"blockedRegistries": [PAYLOAD, "other.io"]})), None) => W23);
    let unmirrored = in_context(&[], &[], Some(RELEASE));
    quiet!(findings_with(&unmirrored, Phase::Create, "cluster", rs(json!({"blockedRegistries": ["quay.io"]})), None) => W23);
}

#[test]
fn rule_w24() {
    let never = in_context(
        &[(
            "registry.example.com/team",
            &["mirror.example.net/team"],
            true,
        )],
        &[],
        None,
    );
    let rows = findings_with(&never, Phase::Create, "cluster", rs(json!({})), None);
    let path = "spec.registrySources";
    fires!(rows => W24 warning path);
    says!(rows => W24 path => format!("{path}: ImageDigestMirrorSet/digest: \"registry.example.com/team\" never contacts its source and has no tag mirror: pulls of it by tag fail"));
    let tagged = in_context(
        &[(
            "registry.example.com/team",
            &["mirror.example.net/team"],
            true,
        )],
        &[(
            "registry.example.com/team",
            &["tags.example.net/team"],
            true,
        )],
        None,
    );
    quiet!(findings_with(&tagged, Phase::Create, "cluster", rs(json!({})), None) => W24);
    quiet!(findings(Phase::Create, rs(json!({})), None) => W24);
    // The same the other way round: an ITMS that never contacts its source, and no digest mirror.
    let tags_only = in_context(
        &[],
        &[(
            "registry.example.com/team",
            &["tags.example.net/team"],
            true,
        )],
        None,
    );
    let rows = findings_with(&tags_only, Phase::Create, "cluster", rs(json!({})), None);
    says!(rows => W24 path => format!("{path}: ImageTagMirrorSet/tag: \"registry.example.com/team\" never contacts its source and has no digest mirror: pulls of it by digest fail"));
    // A digest mirror beside it, from a set that may contact the source, is enough.
    let both = in_context(
        &[(
            "registry.example.com/team",
            &["mirror.example.net/team"],
            false,
        )],
        &[(
            "registry.example.com/team",
            &["tags.example.net/team"],
            true,
        )],
        None,
    );
    quiet!(findings_with(&both, Phase::Create, "cluster", rs(json!({})), None) => W24);
}

#[test]
fn rule_w25() {
    let policy = in_context(
        &[(
            "registry.example.com/team",
            &["mirror.local:5000/team", "mirror.local/team"],
            false,
        )],
        &[],
        None,
    );
    let obj = rs(json!({"insecureRegistries": ["mirror.local"]}));
    let rows = findings_with(&policy, Phase::Create, "cluster", obj.clone(), None);
    let path = "spec.registrySources.insecureRegistries[0]";
    fires!(rows => W25 warning path);
    says!(rows => W25 path => format!("{path}: \"mirror.local\" does not make the mirror \"mirror.local:5000/team\" insecure; add \"mirror.local:5000\""));
    count!(rows => W25 1);
    quiet!(findings(Phase::Create, obj, None) => W25);
    quiet!(findings_with(&policy, Phase::Create, "cluster", rs(json!({"insecureRegistries": ["mirror.local", "mirror.local:5000"]})), None) => W25);
}

/// W1, W3 and W15 take P from the release image in the cluster context.
#[test]
fn w1_w3_w15_use_the_context_s_release_image() {
    let mirrored = "mirror.corp.example.com:5000/ocp4/openshift4@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let policy = in_context(&[], &[], Some(mirrored));
    // W3: the mirror's repository is P: an entry covering it is dropped.
    let rows = findings_with(
        &policy,
        Phase::Create,
        "cluster",
        rs(json!({"blockedRegistries": ["mirror.corp.example.com:5000"]})),
        None,
    );
    says!(rows => W3 "spec.registrySources.blockedRegistries[0]" => "spec.registrySources.blockedRegistries[0]: \"mirror.corp.example.com:5000\" covers the release payload repository \"mirror.corp.example.com:5000/ocp4/openshift4\": the machine-config operator drops it and nodes do not block it");
    // W1: P itself must be allowed when no release registry holds it.
    let allowed = rs(
        json!({"allowedRegistries": ["quay.io", "registry.redhat.io", "image-registry.openshift-image-registry.svc:5000"]}),
    );
    let rows = findings_with(&policy, Phase::Create, "cluster", allowed.clone(), None);
    says!(rows => W1 "spec.registrySources.allowedRegistries" => "spec.registrySources.allowedRegistries: does not include the release image's repository \"mirror.corp.example.com:5000/ocp4/openshift4\"; the release payload will fail to pull");
    quiet!(findings(Phase::Create, allowed, None) => W1);
    // W1: the payload's namespace suffices in the registry that holds P.
    let policy = in_context(&[], &[], Some(RELEASE));
    let allowed =
        rs(json!({"allowedRegistries": ["quay.io/openshift-release-dev", "registry.redhat.io"]}));
    quiet!(findings_with(&policy, Phase::Create, "cluster", allowed.clone(), None) => W1);
    fires!(findings(Phase::Create, allowed, None) => W1 warning "spec.registrySources.allowedRegistries");
    // W15: the registry of a mirrored release image must admit imports.
    let policy = in_context(&[], &[], Some(mirrored));
    let imports = image(
        json!({"allowedRegistriesForImport": [{"domainName": "quay.io"}, {"domainName": "registry.redhat.io"}]}),
    );
    let rows = findings_with(&policy, Phase::Create, "cluster", imports.clone(), None);
    says!(rows => W15 "spec.allowedRegistriesForImport" => "spec.allowedRegistriesForImport: \"mirror.corp.example.com:5000\" not allowed; release/sample imagestream imports will fail");
    quiet!(findings(Phase::Create, imports, None) => W15);
}
