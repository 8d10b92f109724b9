//! The warnings that speak of what a node or an import does agree with the node model, which
//! `explain` presents: for random configs and probe references the rules talk about, W1 and W2
//! ("does not include"), W4 ("insecure registry is not in allowedRegistries"), W5 ("search
//! registry is blocked / not allowed"), W8 ("both insecure and blocked") and W15 ("not
//! allowed" for imports) fire exactly when the model's pull or import says so; W3's and W16's
//! claims ("blocks ...", "covers the release payload repository", "only matches port 80") hold
//! in the model.

mod common;

use image_config_webhook::engine::evaluate;
use image_config_webhook::envelope::parse_review;
use image_config_webhook::grammar::reference::Reference;
use image_config_webhook::image::decode;
use image_config_webhook::node::{Node, Settings};
use image_config_webhook::policy::Policy;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Hosts, with the `example.com` / `example.com:5000` class of issue 11 among them.
const HOSTS: [&str; 8] = [
    "a.io",
    "a.io:5000",
    "x.a.io",
    "example.com",
    "example.com:5000",
    "docker.io",
    "quay.io",
    "registry.redhat.io",
];

/// A registry scope: a host, a host with a path, or a wildcard.
fn scope() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(HOSTS.to_vec()).prop_map(str::to_owned),
        2 => (prop::sample::select(HOSTS.to_vec()), prop::sample::select(vec!["ns", "ns/repo", "library"]))
            .prop_map(|(h, p)| format!("{h}/{p}")),
        1 => prop::sample::select(vec!["*.a.io", "*.example.com", "*.io"]).prop_map(str::to_owned),
    ]
}

/// Import whitelist hosts: plain, with ports, globs.
const IMPORT_HOSTS: [&str; 8] = [
    "quay.io",
    "quay.io:443",
    "registry.redhat.io",
    "a.io",
    "a.io:5000",
    "*.io",
    "*.redhat.io:*",
    "example.com",
];

/// A config with blocked or allowed scopes (both, now and then: R1 denies it, and the model
/// still answers), insecure scopes, search registries and an import whitelist.
fn config() -> impl Strategy<Value = Value> {
    (
        0..5u8,
        prop::collection::vec(scope(), 0..4),
        prop::collection::vec(scope(), 0..3),
        prop::collection::vec(prop::sample::select(HOSTS.to_vec()), 0..4),
        prop::collection::vec(
            (prop::sample::select(IMPORT_HOSTS.to_vec()), any::<bool>()),
            0..4,
        ),
    )
        .prop_map(|(mode, list, insecure, search, import)| {
            let mut rs = serde_json::Map::new();
            if !list.is_empty() {
                let key = if mode % 2 == 0 {
                    "blockedRegistries"
                } else {
                    "allowedRegistries"
                };
                rs.insert(key.to_owned(), json!(list));
                if mode == 4 {
                    rs.insert("allowedRegistries".to_owned(), json!(list[..1]));
                }
            }
            if !insecure.is_empty() {
                rs.insert("insecureRegistries".to_owned(), json!(insecure));
            }
            if !search.is_empty() {
                rs.insert("containerRuntimeSearchRegistries".to_owned(), json!(search));
            }
            let import: Vec<Value> = import
                .into_iter()
                .map(|(domain, insecure)| json!({"domainName": domain, "insecure": insecure}))
                .collect();
            let mut spec = json!({"registrySources": rs});
            if !import.is_empty() {
                spec["allowedRegistriesForImport"] = json!(import);
            }
            json!({
                "apiVersion": "config.openshift.io/v1",
                "kind": "Image",
                "metadata": {"name": "cluster"},
                "spec": spec,
            })
        })
}

/// The engine's warnings for a CREATE of `image`.
fn warnings(image: &Value) -> Vec<String> {
    let review = common::review_of("agreement", "CREATE", image, None);
    let review = parse_review(review).expect("a well-formed review");
    evaluate(&review.request, &Policy::default())
        .expect("a verdict")
        .warnings
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A reference inside a scope, with a repository no config of this test names.
fn inside(scope: &str) -> Reference {
    match scope.strip_prefix("*.") {
        Some(domain) => reference(&format!("app.{domain}/app")),
        None => reference(&format!("{scope}/app")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_node_warnings_agree_with_the_node_model(image in config()) {
        let warned = warnings(&image);
        let has = |path: &str, text: &str| {
            warned.iter().any(|w| w.starts_with(&format!("{path}: ")) && w.contains(text))
        };
        let decoded = decode(&image);
        let settings = Settings::default();
        let node = Node::new(&decoded.image, &settings);
        let rs = &image["spec"]["registrySources"];
        let allow_list = !strings(&rs["allowedRegistries"]).is_empty();

        // W5: a short name through search registry i is refused by the node.
        let short = reference("app");
        for (i, registry) in strings(&rs["containerRuntimeSearchRegistries"]).iter().enumerate() {
            let path = format!("spec.registrySources.containerRuntimeSearchRegistries[{i}]");
            let pull = node.pull(&short.in_registry(registry).expect("a candidate"));
            prop_assert_eq!(
                has(&path, "is blocked"), pull.blocked,
                "{} in {}: {:?}", registry, image, warned
            );
            prop_assert_eq!(
                has(&path, "is not allowed"), !pull.blocked && !pull.allowed,
                "{} in {}: {:?}", registry, image, warned
            );
        }
        for (i, insecure) in strings(&rs["insecureRegistries"]).iter().enumerate() {
            let path = format!("spec.registrySources.insecureRegistries[{i}]");
            // W4: with an allow-list, policy.json rejects the images of the insecure scope.
            let pull = node.pull(&inside(insecure));
            prop_assert_eq!(
                has(&path, "is not in allowedRegistries"),
                allow_list && !pull.allowed && !pull.blocked,
                "{} in {}: {:?}", insecure, image, warned
            );
            // W8: the scope's own registries.conf entry is blocked too.
            let entry_blocked = node
                .registries_conf()
                .iter()
                .any(|e| e.scope() == insecure && e.blocked);
            prop_assert_eq!(
                has(&path, "is both insecure and blocked"), entry_blocked,
                "{} in {}: {:?}", insecure, image, warned
            );
        }

        // W1, W2: with an allow-list, policy.json rejects the registry's images.
        let policy = Policy::default();
        let release = &policy.settings().release_registries;
        let internal = policy.settings().internal_registry.clone();
        for registry in release.iter().chain([&internal]) {
            let pull = node.pull(&inside(registry));
            let text = if *registry == internal {
                format!("does not include the internal registry \"{registry}\"")
            } else {
                format!("does not include \"{registry}\";")
            };
            prop_assert_eq!(
                has("spec.registrySources.allowedRegistries", &text),
                allow_list && !pull.allowed && !pull.blocked,
                "{} in {}: {:?}", registry, image, warned
            );
        }

        // W3: what it claims of blocked entry i holds on the node.
        for (i, blocked) in strings(&rs["blockedRegistries"]).iter().enumerate() {
            let path = format!("spec.registrySources.blockedRegistries[{i}]");
            let dropped = node
                .dropped()
                .iter()
                .any(|d| d.entry.field == path && d.entry.value.as_deref() == Some(blocked.as_str()));
            prop_assert_eq!(
                has(&path, "covers the release payload repository"), dropped,
                "{} in {}: {:?}", blocked, image, warned
            );
            if has(&path, "blocks the internal registry") {
                prop_assert!(node.pull(&inside(&internal)).blocked, "{} in {}", blocked, image);
            }
            if has(&path, "blocks release payload images") {
                let payload = policy.settings().payload_namespace().unwrap_or_default();
                let blocks_release = release.iter().any(|r| node.pull(&inside(r)).blocked);
                prop_assert!(
                    blocks_release || blocked.starts_with(payload),
                    "{} in {}", blocked, image
                );
            }
        }

        // W15, W16: the import whitelist the API server builds.
        let imports = image["spec"]["allowedRegistriesForImport"].as_array().cloned().unwrap_or_default();
        for registry in release {
            prop_assert_eq!(
                has("spec.allowedRegistriesForImport", &format!("\"{registry}\" not allowed")),
                !imports.is_empty() && !node.import(&inside(registry)).allowed,
                "{} in {}: {:?}", registry, image, warned
            );
        }
        for (i, entry) in imports.iter().enumerate() {
            let path = format!("spec.allowedRegistriesForImport[{i}]");
            let domain = entry["domainName"].as_str().unwrap_or_default();
            if has(&path, "only matches port 80") && !domain.contains('*') {
                prop_assert!(!node.import(&inside(domain)).allowed, "{} in {}", domain, image);
            }
        }
    }
}

/// Issue 11's report: `explain` said a short-name pull through `example.com:5000` is blocked by
/// `blockedRegistries: [example.com]` (registries.conf prefix matching), while W5 stayed silent.
#[test]
fn a_blocked_registry_blocks_its_other_ports_for_w5_as_for_explain() {
    let image = json!({
        "apiVersion": "config.openshift.io/v1",
        "kind": "Image",
        "metadata": {"name": "cluster"},
        "spec": {"registrySources": {
            "blockedRegistries": ["example.com"],
            "containerRuntimeSearchRegistries": ["example.com:5000"],
        }},
    });
    let warned = warnings(&image);
    assert!(
        warned.contains(
            &"spec.registrySources.containerRuntimeSearchRegistries[0]: search registry \"example.com:5000\" is blocked"
                .to_owned()
        ),
        "{warned:#?}"
    );
}
