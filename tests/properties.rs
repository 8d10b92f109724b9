//! Property tests of the pure core: it never panics, it is deterministic, and ratcheting never
//! turns an allowed CREATE into a denied UPDATE of the same unchanged object.

mod common;

use image_config_webhook::{Policy, review};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        interesting().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Field names of the schema, mixed with random ones, so generated objects reach the rules.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "metadata", "name", "generateName", "uid", "spec", "status", "registrySources",
            "allowedRegistries", "blockedRegistries", "insecureRegistries",
            "containerRuntimeSearchRegistries", "allowedRegistriesForImport", "domainName",
            "insecure", "externalRegistryHostnames", "additionalTrustedCA",
            "imageStreamImportMode", "internalRegistryHostname",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z]{1,8}",
    ]
}

/// Strings that sit on the edges of the grammars.
fn interesting() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "",
        "quay.io",
        "registry.redhat.io",
        "*.example.com",
        "*.com",
        "*",
        "registry.io/myrepo:latest",
        "r.io@sha256:abc",
        "[::1]:5000",
        "a:b:c",
        "localhost:5000/repo",
        "myregistry",
        "Registry.Example.com",
        "index.docker.io",
        "http://r.io",
        "r.io:99999",
        "docker.io",
        "cluster",
        "Legacy",
        "My_CA",
        "image-registry.openshift-image-registry.svc:5000",
        "quay.io/openshift-release-dev",
        "ünï\u{200b}code\n",
    ])
    .prop_map(str::to_owned)
}

/// Image-shaped objects: the schema's fields with values from the edges of each grammar,
/// sometimes of the wrong type.
fn image_like() -> impl Strategy<Value = Value> {
    let strings = || prop::collection::vec(interesting(), 0..5);
    let list = move || {
        prop_oneof![
            4 => strings().prop_map(|v| json!(v)),
            1 => Just(Value::Null),
            1 => any_json(),
        ]
    };
    let import = prop::collection::vec(
        (interesting(), prop::option::of(any::<bool>())).prop_map(|(d, insecure)| match insecure {
            Some(i) => json!({"domainName": d, "insecure": i}),
            None => json!({"domainName": d}),
        }),
        0..4,
    );
    (
        prop::option::of(list()),
        prop::option::of(list()),
        prop::option::of(list()),
        prop::option::of(list()),
        prop::option::of(import),
        prop::option::of(list()),
        prop::option::of(interesting()),
        prop::option::of(interesting()),
    )
        .prop_map(|(allowed, blocked, insecure, search, import, external, mode, ca)| {
            let mut rs = Map::new();
            for (key, value) in [
                ("allowedRegistries", allowed),
                ("blockedRegistries", blocked),
                ("insecureRegistries", insecure),
                ("containerRuntimeSearchRegistries", search),
            ] {
                if let Some(v) = value {
                    rs.insert(key.to_owned(), v);
                }
            }
            let mut spec = Map::new();
            spec.insert("registrySources".to_owned(), Value::Object(rs));
            if let Some(i) = import {
                spec.insert("allowedRegistriesForImport".to_owned(), json!(i));
            }
            if let Some(e) = external {
                spec.insert("externalRegistryHostnames".to_owned(), e);
            }
            if let Some(m) = mode {
                spec.insert("imageStreamImportMode".to_owned(), json!(m));
            }
            if let Some(c) = ca {
                spec.insert("additionalTrustedCA".to_owned(), json!({"name": c}));
            }
            json!({"apiVersion": "config.openshift.io/v1", "kind": "Image", "metadata": {"name": "cluster", "uid": "u"}, "spec": spec})
        })
}

fn body(operation: &str, object: &Value, old: Option<&Value>) -> Vec<u8> {
    serde_json::to_vec(&common::review_of("prop", operation, object, old)).unwrap_or_default()
}

fn allowed(bytes: &[u8]) -> Option<bool> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.pointer("/response/allowed")?.as_bool()
}

/// Whether every cause of a denial is a CEL rule that could not evaluate (rule T2).
fn only_cel_evaluation_errors(bytes: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    let causes = v
        .pointer("/response/status/details/causes")
        .and_then(Value::as_array);
    causes.is_some_and(|causes| {
        !causes.is_empty()
            && causes.iter().all(|c| {
                c.get("message")
                    .and_then(Value::as_str)
                    .is_some_and(|m| m.contains(" evaluating rule: "))
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the core: they get a verdict or a clear error.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = review(&bytes, &Policy::default());
    }

    /// Arbitrary JSON as the object: never a panic, always the same bytes out.
    #[test]
    fn arbitrary_objects_are_judged_deterministically(object in any_json(), old in any_json()) {
        let policy = Policy::default();
        for (op, old) in [("CREATE", None), ("UPDATE", Some(&old)), ("DELETE", Some(&old))] {
            let request = body(op, &object, old);
            let first = review(&request, &policy).map(|r| r.body).map_err(|e| e.to_string());
            let second = review(&request, &policy).map(|r| r.body).map_err(|e| e.to_string());
            prop_assert_eq!(first, second);
        }
    }

    /// An UPDATE that changes nothing is allowed whenever the CREATE of the same object was.
    #[test]
    fn ratcheting_never_denies_an_unchanged_update(object in image_like()) {
        let policy = Policy::default();
        let create = review(&body("CREATE", &object, None), &policy);
        let update = review(&body("UPDATE", &object, Some(&object)), &policy);
        let (Ok(create), Ok(update)) = (create, update) else {
            return Err(TestCaseError::fail("an object-shaped request must get a verdict"));
        };
        if allowed(&create.body) == Some(true) {
            prop_assert_eq!(allowed(&update.body), Some(true));
        }
        // Stronger: an unchanged UPDATE is allowed whatever the CREATE said, unless a CEL rule
        // cannot evaluate on a value of the wrong type (T2): such an error is never ratcheted.
        if allowed(&update.body) != Some(true) {
            prop_assert!(
                only_cel_evaluation_errors(&update.body),
                "{}",
                String::from_utf8_lossy(&update.body)
            );
        }
    }

    /// Image-shaped objects never panic and give the same bytes twice.
    #[test]
    fn image_like_objects_are_deterministic(object in image_like(), old in image_like()) {
        let policy = Policy::default();
        let request = body("UPDATE", &object, Some(&old));
        let first = review(&request, &policy).map(|r| r.body).map_err(|e| e.to_string());
        let second = review(&request, &policy).map(|r| r.body).map_err(|e| e.to_string());
        prop_assert_eq!(first, second);
    }
}

/// The import whitelister's matcher (a port of openshift-apiserver `IsWildcardMatch`) agrees
/// with globset, the ecosystem's glob engine, on the patterns both read the same way: `*` and
/// `?` over ASCII without `/` (where globset's separators would differ) or its other syntax.
#[test]
fn wildcard_match_agrees_with_globset() {
    use image_config_webhook::grammar::import::is_wildcard_match;
    proptest!(ProptestConfig::with_cases(2000), |(
        pattern in "[ab.*?:-]{0,8}",
        text in "[ab.:-]{0,8}",
    )| {
        let glob = globset::GlobBuilder::new(&pattern)
            .literal_separator(false)
            .backslash_escape(false)
            .build()
            .expect("the alphabet has no glob syntax beyond * and ?")
            .compile_matcher();
        prop_assert_eq!(
            is_wildcard_match(&text, &pattern),
            glob.is_match(&text),
            "pattern {:?} text {:?}", pattern, text
        );
    });
}
