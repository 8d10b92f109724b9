//! The answer the webhook sends is bounded whatever the request: at most `MAX_WARNINGS`
//! warnings plus a summary, each shorter than `MAX_WARNING_CHARS` characters and all together
//! shorter than `MAX_WARNINGS_TOTAL_CHARS`; at most `MAX_CAUSES` causes, every text clipped to
//! `MAX_CAUSE_BYTES`; the uid echoed exactly. Below the budgets the answer is the full one, byte
//! for byte (every fixture is checked against `evaluate`).
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use image_config_webhook::engine::evaluate;
use image_config_webhook::envelope::parse_review;
use image_config_webhook::input::{Input, parse_documents};
use image_config_webhook::review::{
    MAX_CAUSE_BYTES, MAX_CAUSES, MAX_WARNING_CHARS, MAX_WARNINGS, MAX_WARNINGS_TOTAL_CHARS,
    response_bytes,
};
mod common;

use image_config_webhook::{Policy, review};
use serde_json::{Value, json};

fn body(uid: &str, spec: Value) -> Vec<u8> {
    serde_json::to_vec(&common::image_review(uid, "admission.k8s.io/v1", spec)).unwrap()
}

/// The response of `review`, and the full verdict `evaluate` gives for the same body.
fn judge(body: &[u8]) -> (Vec<u8>, Value, image_config_webhook::Verdict) {
    let reviewed = review(body, &Policy::default()).expect("answered");
    let doc: Value = serde_json::from_slice(&reviewed.body).expect("response is JSON");
    let full = evaluate(
        &parse_review(serde_json::from_slice(body).unwrap())
            .unwrap()
            .request,
        &Policy::default(),
    )
    .unwrap();
    (reviewed.body, doc["response"].clone(), full)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn thousands_of_warnings_are_cut_to_the_budget_with_a_summary() {
    // Lists within maxItems (no error), every entry drawing a warning: W4 for each insecure
    // registry outside the allow-list, W5 for each search registry, W14 for each import entry
    // with a path, W6 and W7 once.
    let insecure: Vec<String> = (0..1000).map(|i| format!("i{i}.example.com")).collect();
    let mut search: Vec<String> = (0..1000).map(|i| format!("s{i}.example.com")).collect();
    search.push("docker.io".to_owned());
    let import: Vec<Value> = (0..2000)
        .map(|i| json!({"domainName": format!("m{i}.example.com/path")}))
        .collect();
    let spec = json!({
        "registrySources": {
            "allowedRegistries": ["quay.io"],
            "insecureRegistries": insecure,
            "containerRuntimeSearchRegistries": search,
        },
        "allowedRegistriesForImport": import,
        "externalRegistryHostnames": ["a.example.com", "a.example.com"],
    });
    let (_, response, full) = judge(&body("many-warnings", spec));
    assert_eq!(response["allowed"], true);
    assert!(full.warnings.len() > 3000, "{}", full.warnings.len());
    let warnings = strings(&response["warnings"]);
    assert!(warnings.len() <= MAX_WARNINGS + 1, "{}", warnings.len());
    for w in &warnings {
        assert!(w.chars().count() < MAX_WARNING_CHARS, "{w}");
    }
    let total: usize = warnings.iter().map(|w| w.chars().count()).sum();
    assert!(total < MAX_WARNINGS_TOTAL_CHARS, "{total}");
    // The most important first: W1 (a release registry missing from the allow-list) and W2 lead.
    assert!(warnings[0].contains("registry.redhat.io"), "{warnings:#?}");
    assert!(warnings[1].contains("internal registry"), "{warnings:#?}");
    let summary = warnings.last().unwrap();
    let shown = warnings.len() - 1;
    let dropped = full.warnings.len() - shown;
    assert_eq!(
        summary,
        &format!("… and {dropped} more warnings of rules W4, W5, W6, W7, W14, W15"),
        "{warnings:#?}"
    );
    // Every shown warning is one of the full answer's.
    for w in &warnings[..shown] {
        assert!(full.warnings.contains(w), "{w}");
    }
}

#[test]
fn long_warnings_are_clipped_on_a_character_boundary() {
    // Ratcheted errors quote the whole value: an unchanged UPDATE of long invalid entries.
    let long: Vec<String> = (0..30)
        .map(|i| format!("é{i}.example.com/{}:tag", "ü".repeat(300)))
        .collect();
    let object = json!({
        "apiVersion": "config.openshift.io/v1", "kind": "Image",
        "metadata": {"name": "cluster"},
        "spec": {"registrySources": {"blockedRegistries": long}},
    });
    let doc = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "ratcheted", "operation": "UPDATE", "name": "cluster",
            "kind": {"group": "config.openshift.io", "version": "v1", "kind": "Image"},
            "userInfo": {}, "object": object, "oldObject": object,
        },
    });
    let (_, response, full) = judge(&serde_json::to_vec(&doc).unwrap());
    assert_eq!(response["allowed"], true, "{response}");
    let long = full
        .warnings
        .iter()
        .filter(|w| w.chars().count() >= MAX_WARNING_CHARS)
        .count();
    assert!(long >= 30, "{:#?}", full.warnings);
    let warnings = strings(&response["warnings"]);
    assert!(warnings.len() <= MAX_WARNINGS + 1);
    let total: usize = warnings.iter().map(|w| w.chars().count()).sum();
    assert!(total < MAX_WARNINGS_TOTAL_CHARS, "{total}");
    let (summary, shown) = warnings.split_last().unwrap();
    for w in shown {
        let count = w.chars().count();
        assert!(count < MAX_WARNING_CHARS, "{w}");
        if count == MAX_WARNING_CHARS - 1 {
            let kept = w.strip_suffix('…').unwrap();
            assert!(full.warnings.iter().any(|f| f.starts_with(kept)), "{w}");
        } else {
            assert!(full.warnings.contains(w), "{w}");
        }
    }
    assert!(
        shown
            .iter()
            .any(|w| w.ends_with('…') && w.chars().count() == MAX_WARNING_CHARS - 1),
        "{shown:#?}"
    );
    assert_eq!(
        summary,
        &format!(
            "… and {} more warnings of rule W18",
            full.warnings.len() - shown.len()
        ),
        "{warnings:#?}"
    );
}

#[test]
fn thousands_of_errors_give_a_bounded_denial() {
    let long_uid = "u".repeat(10_000);
    let bad: Vec<String> = (0..5000)
        .map(|i| format!("r{i}.example.com/{}:tag", "p".repeat(200)))
        .collect();
    let spec = json!({
        "registrySources": {"blockedRegistries": bad},
        "externalRegistryHostnames": ["https://".repeat(20_000)],
    });
    let (bytes, response, full) = judge(&body(&long_uid, spec));
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["uid"].as_str(),
        Some(long_uid.as_str()),
        "uid echoed"
    );
    let without_uid = bytes.len() - long_uid.len();
    assert!(without_uid < 64 * 1024, "{without_uid} bytes");
    let causes = response["status"]["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), MAX_CAUSES);
    for cause in causes {
        for key in ["message", "field"] {
            let text = serde_json::to_string(&cause[key]).unwrap();
            assert!(text.len() <= MAX_CAUSE_BYTES + 2, "{text}");
        }
    }
    // The first cause is the first in field order, clipped: P4's value is 160 000 characters.
    assert_eq!(causes[0]["field"], "spec.externalRegistryHostnames[0]");
    assert!(causes[0]["message"].as_str().unwrap().ends_with('…'));
    let message = response["status"]["message"].as_str().unwrap();
    let errors = full.status.details.as_ref().unwrap().causes.len();
    assert_eq!(errors, 5002, "P4, R5 and 5000 R2 errors");
    assert!(
        message.ends_with(&format!(", and {} more errors]", errors - MAX_CAUSES)),
        "{}",
        &message[message.len() - 200..]
    );
    assert!(message.starts_with(
        "Image.config.openshift.io \"cluster\" is invalid: [spec.externalRegistryHostnames[0]: "
    ));
}

/// Millions of type errors (a 7 MiB list of numbers in the real server): counted, not built.
#[test]
fn a_huge_list_of_wrong_types_is_counted() {
    let zeros = vec![0; 300_000];
    let spec = json!({"registrySources": {"blockedRegistries": zeros}});
    let reviewed = review(&body("zeros", spec), &Policy::default()).unwrap();
    assert!(reviewed.body.len() < 64 * 1024, "{}", reviewed.body.len());
    let response: Value = serde_json::from_slice(&reviewed.body).unwrap();
    let message = response["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.ends_with(&format!(", and {} more errors]", 300_001 - MAX_CAUSES)),
        "{message}"
    );
    let listed = reviewed.verdict.findings.len();
    let unlisted: usize = reviewed.unlisted_findings.iter().map(|(_, _, n)| n).sum();
    assert_eq!(listed + unlisted, 300_001);
    assert!(listed <= 2 * image_config_webhook::review::MAX_FINDINGS_PER_RULE);
    assert_eq!(reviewed.verdict.rules, ["T1", "R5"]);
}

fn fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            fixtures(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
}

/// Below the budgets, the answer is exactly the full one: every AdmissionReview under tests/.
#[test]
fn normal_answers_are_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut paths = Vec::new();
    for dir in ["fixtures", "examples", "cli_fixtures", "explain"] {
        if root.join(dir).is_dir() {
            fixtures(&root.join(dir), &mut paths);
        }
    }
    paths.sort();
    let policy = Policy::default();
    let mut compared = 0;
    for path in paths {
        let input = Input {
            source: path.display().to_string(),
            text: std::fs::read_to_string(&path).map_err(Into::into),
            json: path.extension().is_some_and(|e| e == "json"),
        };
        let Ok(docs) = parse_documents(&input) else {
            continue;
        };
        for doc in docs {
            if doc.get("request").is_none() {
                continue;
            }
            let bytes = serde_json::to_vec(&doc).unwrap();
            let Ok(reviewed) = review(&bytes, &policy) else {
                continue;
            };
            let review = parse_review(doc).unwrap();
            let full = evaluate(&review.request, &policy).unwrap();
            let expected = response_bytes(
                review.api_version,
                &review.request.uid,
                full.allowed,
                &full.status,
                &full.warnings,
            );
            assert_eq!(
                String::from_utf8_lossy(&reviewed.body),
                String::from_utf8_lossy(&expected),
                "{}",
                path.display()
            );
            compared += 1;
        }
    }
    assert!(compared > 100, "only {compared} reviews compared");
}
