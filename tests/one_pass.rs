//! The one-pass decode (`src/wire.rs`) is a fast path, not a second engine: on every fixture,
//! and on mutations of them, `review_within` (one pass when it can) answers byte for byte what
//! the lenient path answers, and it does take the one pass for the reviews the API server sends.

use image_config_webhook::Policy;
use image_config_webhook::envelope::parse_review;
use image_config_webhook::input::{load_inputs, parse_documents};
use image_config_webhook::review::{
    Decoding, ReviewError, Reviewed, review_leniently_within, review_within,
};
use proptest::prelude::*;

mod common;
use serde_json::{Value, json};

/// The server's budget for a small review.
const BUDGET: usize = 16 * 1024 * 1024;

/// Every document of every fixture, as JSON bytes the way the API server posts them.
fn fixture_documents() -> Vec<(String, Value)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let dirs: Vec<String> = ["fixtures", "cli_fixtures", "examples", "regressions"]
        .iter()
        .map(|dir| format!("{root}/tests/{dir}"))
        .collect();
    let mut docs = Vec::new();
    for input in load_inputs(&dirs) {
        for (i, doc) in parse_documents(&input)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            docs.push((format!("{}#{i}", input.source), doc));
        }
    }
    assert!(docs.len() > 100, "the fixtures are found: {}", docs.len());
    docs
}

/// The review the API server would send for a fixture document: the review itself, completed
/// with what the API server always sets; an Image, created.
fn as_sent(doc: &Value) -> Option<Value> {
    if doc.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        let mut review = doc.clone();
        let request = review.get_mut("request")?.as_object_mut()?;
        request
            .entry("userInfo")
            .or_insert(json!({"username": "system:admin"}));
        if request.get("dryRun").is_none_or(Value::is_null) {
            request.insert("dryRun".to_owned(), json!(false));
        }
        for key in ["kind", "resource"] {
            if let Some(gvk) = request.get_mut(key).and_then(Value::as_object_mut) {
                gvk.entry("group").or_insert(json!(""));
            }
        }
        return Some(review);
    }
    (doc.get("kind").and_then(Value::as_str) == Some("Image"))
        .then(|| common::review_of("one-pass", "CREATE", doc, None))
}

/// Both paths on `body`: the same answer; and how `review_within` decoded it.
fn agree(what: &str, body: &[u8]) -> Option<Decoding> {
    let fast = review_within(body, &Policy::default(), BUDGET);
    let lenient = review_leniently_within(body, &Policy::default(), BUDGET);
    match (&fast, &lenient) {
        (Ok(fast), Ok(lenient)) => {
            assert_eq!(
                String::from_utf8_lossy(&fast.body),
                String::from_utf8_lossy(&lenient.body),
                "{what}: the response"
            );
            assert_eq!(same(fast), same(lenient), "{what}");
            Some(fast.decoding)
        }
        (Err(fast), Err(lenient)) => {
            assert_eq!(errors(fast), errors(lenient), "{what}: the error");
            None
        }
        _ => panic!("{what}: the paths disagree: {fast:?} against {lenient:?}"),
    }
}

fn same(r: &Reviewed) -> impl PartialEq + std::fmt::Debug + '_ {
    (&r.verdict, &r.request, r.api_version, &r.unlisted_findings)
}

fn errors(e: &ReviewError) -> (String, Option<&str>, &str, Option<Vec<u8>>) {
    (e.to_string(), e.uid(), e.api_version(), e.to_response())
}

/// [`agree`], and: a review that the lenient path decodes without a note and without a type
/// error is decoded in one pass. Whether it was.
fn check(what: &str, doc: &Value, body: &[u8]) -> bool {
    let decoding = agree(what, body);
    let clean = parse_review(doc.clone()).is_ok_and(|review| review.notes.is_empty())
        && review_leniently_within(body, &Policy::default(), BUDGET)
            .is_ok_and(|r| !r.verdict.skipped && !r.verdict.rules.contains(&"T1"));
    if clean {
        assert_eq!(decoding, Some(Decoding::OnePass), "{what}");
    }
    decoding == Some(Decoding::OnePass)
}

#[test]
fn every_fixture_gets_the_same_answer_and_reviews_as_sent_take_one_pass() {
    let mut one_pass = 0;
    for (what, doc) in fixture_documents() {
        let Ok(body) = serde_json::to_vec(&doc) else {
            continue;
        };
        check(&what, &doc, &body);
        if let Some(review) = as_sent(&doc) {
            let body = serde_json::to_vec(&review).unwrap_or_default();
            one_pass += usize::from(check(&format!("{what} (as sent)"), &review, &body));
        }
    }
    assert!(one_pass > 100, "one pass taken {one_pass} times");
}

/// A CREATE review as the API server sends it, with one error (R2).
const BASE: &str = concat!(
    r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"#,
    r#""uid":"one-pass","#,
    r#""kind":{"group":"config.openshift.io","version":"v1","kind":"Image"},"#,
    r#""resource":{"group":"config.openshift.io","version":"v1","resource":"images"},"#,
    r#""name":"cluster","operation":"CREATE","userInfo":{"username":"system:admin"},"#,
    r#""object":{"apiVersion":"config.openshift.io/v1","kind":"Image","#,
    r#""metadata":{"name":"cluster"},"#,
    r#""spec":{"registrySources":{"blockedRegistries":["quay.io/a:tag"]}}},"#,
    r#""dryRun":false}}"#
);

#[test]
fn what_the_lenient_path_notes_or_refuses_is_left_to_it() {
    let text = BASE;
    assert_eq!(agree("base", text.as_bytes()), Some(Decoding::OnePass));
    let edits: &[(&str, &str, &str)] = &[
        (
            "no userInfo",
            r#""userInfo":{"username":"system:admin"},"#,
            "",
        ),
        ("dryRun null", r#""dryRun":false"#, r#""dryRun":null"#),
        (
            "kind as a list",
            r#""kind":{"group":"config.openshift.io","version":"v1","kind":"Image"}"#,
            r#""kind":["config.openshift.io","v1","Image"]"#,
        ),
        (
            "a null item",
            r#"["quay.io/a:tag"]"#,
            r#"["quay.io/a:tag",null]"#,
        ),
        (
            "a number item",
            r#"["quay.io/a:tag"]"#,
            r#"["quay.io/a:tag",1]"#,
        ),
        (
            "a duplicate key",
            r#""spec":{"#,
            r#""spec":{"registrySources":{},"#,
        ),
        (
            "spec null",
            r#""spec":{"registrySources":{"blockedRegistries":["quay.io/a:tag"]}}"#,
            r#""spec":null"#,
        ),
        (
            "a lone surrogate skipped",
            r#""username":"system:admin""#,
            r#""username":"\ud800""#,
        ),
        (
            "a number out of range skipped",
            r#""username":"system:admin""#,
            r#""username":1e999"#,
        ),
        (
            "a long number skipped",
            r#""username":"system:admin""#,
            r#""username":123456789012345678901234567890"#,
        ),
        (
            "apiVersion v1beta1",
            r#""apiVersion":"admission.k8s.io/v1""#,
            r#""apiVersion":"admission.k8s.io/v1beta1""#,
        ),
        (
            "another apiVersion",
            r#""apiVersion":"admission.k8s.io/v1""#,
            r#""apiVersion":"v2""#,
        ),
        ("no uid", r#""uid":"one-pass","#, ""),
        (
            "an object that is a list",
            r#""object":{"#,
            r#""object":[],"x":{"#,
        ),
    ];
    for (what, from, to) in edits {
        assert!(text.contains(from), "{what}: {from} in {text}");
        agree(what, text.replacen(from, to, 1).as_bytes());
    }
}

#[test]
fn ratchet_units_compare_as_the_lenient_path_compares_them() {
    let text = BASE;
    // serde_json's own Value parser reads an object whose first key is its private RawValue
    // token as the JSON of its string; the lenient path's parser does not. A ratchet unit that
    // holds one must compare as the lenient path compares it (found in review).
    let ratcheted = |new_sources: &str, old_sources: &str| {
        let review = |sources: &str| {
            format!(
                r#"{{"apiVersion":"config.openshift.io/v1","kind":"Image","metadata":{{"name":"cluster"}},"spec":{{"registrySources":{sources}}}}}"#
            )
        };
        text.replace(r#""operation":"CREATE""#, r#""operation":"UPDATE""#)
            .replacen(
                r#""object":{"apiVersion":"config.openshift.io/v1","kind":"Image","metadata":{"name":"cluster"},"spec":{"registrySources":{"blockedRegistries":["quay.io/a:tag"]}}}"#,
                &format!(r#""object":{},"oldObject":{}"#, review(new_sources), review(old_sources)),
                1,
            )
    };
    let both = r#""allowedRegistries":["quay.io"],"blockedRegistries":["example.com"]"#;
    for (new_sources, old_sources) in [
        (
            format!(r#"{{{both},"x":{{"$serde_json::private::RawValue":"1"}}}}"#),
            format!(r#"{{{both},"x":1}}"#),
        ),
        (
            format!(r#"{{"$serde_json::private::RawValue":1,{both}}}"#),
            r#"{"$serde_json::private::RawValue":2}"#.to_owned(),
        ),
    ] {
        let body = ratcheted(&new_sources, &old_sources);
        assert!(body.contains("oldObject"), "{body}");
        assert_eq!(
            agree(&body, body.as_bytes()),
            Some(Decoding::OnePass),
            "{body}"
        );
    }
}

/// A fixture's bytes with one edit: a byte replaced, removed or inserted, or a JSON value
/// swapped for another shape.
fn mutate(body: &[u8], at: usize, how: u8, byte: u8) -> Vec<u8> {
    let mut out = body.to_vec();
    if out.is_empty() {
        return vec![byte];
    }
    let at = at % out.len();
    match how % 6 {
        0 => out[at] = byte,
        1 => {
            out.remove(at);
        }
        2 => out.insert(at, byte),
        _ => {
            // Replace the value after the `at`-th colon with another shape.
            let replacement: &[u8] = match how % 6 {
                3 => b"null",
                4 => b"[1,\"x\",null]",
                _ => b"{\"a\":1e5}",
            };
            let colons: Vec<usize> = (0..out.len()).filter(|&i| out[i] == b':').collect();
            if let Some(&colon) = colons.get(at % colons.len().max(1)) {
                let end = (colon + 1..out.len())
                    .find(|&i| matches!(out[i], b',' | b'}' | b']'))
                    .unwrap_or(out.len());
                out.splice(colon + 1..end, replacement.iter().copied());
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_get_the_same_answer(
        pick in any::<usize>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        static BODIES: std::sync::LazyLock<Vec<Vec<u8>>> = std::sync::LazyLock::new(|| {
            fixture_documents()
                .iter()
                .filter_map(|(_, doc)| as_sent(doc))
                .filter_map(|review| serde_json::to_vec(&review).ok())
                .collect()
        });
        let mut body = BODIES[pick % BODIES.len()].clone();
        for (at, how, byte) in edits {
            body = mutate(&body, at, how, byte);
        }
        agree(&String::from_utf8_lossy(&body), &body);
    }
}
