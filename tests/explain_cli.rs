//! End-to-end tests of `image-config-webhook explain` as a user runs it: exit codes, the text
//! report, and the shape of `-o json`. Inputs live in `tests/explain/`.
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

use serde_json::Value;

mod common;
use common::binary::{Run, run_binary};

const NEW: &str = "tests/explain/new.yaml";
const CURRENT: &str = "tests/explain/cluster-blocks-quay.yaml";
const PAYLOAD: &str = "quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64";

impl Run {
    /// The whole of stdout as exactly one JSON document.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of {:?} is not one JSON document ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }

    fn has_line(&self, line: &str) -> &Self {
        assert!(
            self.stdout.lines().any(|l| l.trim_end() == line),
            "no line {line:?} in the output of {:?}:\n{}",
            self.args,
            self.stdout
        );
        self
    }
}

fn run(args: &[&str]) -> Run {
    run_with_stdin(args, None)
}

fn run_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    let explain: Vec<&str> = std::iter::once("explain")
        .chain(args.iter().copied())
        .collect();
    run_binary(&explain, stdin)
}

fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn exit_0_without_an_old_config() {
    run(&["--config", NEW, PAYLOAD, "nginx"])
        .expect_code(0)
        .has_line("config: tests/explain/new.yaml")
        .has_line("  pull:       BLOCKED by spec.registrySources.allowedRegistries (not listed)")
        .has_line("  short name: CRI-O tries spec.registrySources.containerRuntimeSearchRegistries in order:")
        .has_line("                1. registry.corp.example.com/nginx:latest: pull allowed by spec.registrySources.allowedRegistries[0]: registry.corp.example.com")
        .has_line(r#"              API server: registry "quay.io" not allowed by whitelist: "image-registry.openshift-image-registry.svc:5000", "registry.corp.example.com:443", "quay.io:80""#);
    // Without --config: an empty spec, everything allowed.
    run(&[PAYLOAD])
        .expect_code(0)
        .has_line("config: (none: an empty spec, everything allowed)")
        .has_line("  pull:       allowed");
}

#[test]
fn exit_1_when_a_decision_changes_against_old() {
    let r = run(&[
        "--config",
        NEW,
        "--old",
        CURRENT,
        PAYLOAD,
        "registry.corp.example.com/team/app:1.2",
    ]);
    r.expect_code(1)
        .has_line("changes (2):")
        .has_line("  quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64: pull allowed -> BLOCKED by spec.registrySources.allowedRegistries (not listed)")
        .has_line("  quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64: import allowed -> REFUSED by spec.allowedRegistriesForImport (not listed)");
    // The old config's payload-covering block is reported as dropped.
    assert!(
        r.stdout
            .contains("\"quay.io\" is dropped by the machine-config operator"),
        "{}",
        r.stdout
    );
}

#[test]
fn exit_0_when_no_decision_changes() {
    run(&["--config", NEW, "--old", NEW, PAYLOAD, "nginx"])
        .expect_code(0)
        .has_line("changes: none, every decision stays the same");
    // Blocking quay.io changes nothing for the payload: MCO drops the entry.
    run(&[
        "--config",
        CURRENT,
        "--old",
        "tests/explain/review-update.json",
        PAYLOAD,
    ])
    .expect_code(0);
}

#[test]
fn an_admission_review_brings_its_old_object() {
    run(&["--config", "tests/explain/review-update.json", "docker.io/library/busybox"])
        .expect_code(1)
        .has_line("old: tests/explain/review-update.json (oldObject)")
        .has_line("  docker.io/library/busybox: pull allowed -> BLOCKED by spec.registrySources.blockedRegistries[0]: docker.io");
    // --old wins over the review's oldObject.
    run(&[
        "--config",
        "tests/explain/review-update.json",
        "--old",
        "tests/explain/review-update.json",
        "busybox",
    ])
    .expect_code(0);
}

#[test]
fn invalid_references_are_reported_and_the_rest_explained() {
    let r = run(&["-o", "json", "Nginx", "quay.io/ok"]);
    r.expect_code(0);
    let v = r.json();
    assert_eq!(
        v["results"][0]["error"],
        "invalid reference format: repository name (library/Nginx) must be lowercase"
    );
    assert!(v["results"][0]["pull"].is_null());
    assert_eq!(v["results"][1]["pull"]["allowed"], true);
    run(&["Nginx"])
        .expect_code(2)
        .has_line("  error:      invalid reference: invalid reference format: repository name (library/Nginx) must be lowercase");
}

#[test]
fn exit_2_for_bad_input() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["--config", "tests/explain/missing.yaml", "nginx"],
            "error: --config tests/explain/missing.yaml: cannot read file",
        ),
        (
            &["--config", "tests/explain/list-two.yaml", "nginx"],
            "error: --config tests/explain/list-two.yaml: holds 2 objects; one Image is needed",
        ),
        (
            &["--config", "tests/explain/pod.yaml", "nginx"],
            "error: --config tests/explain/pod.yaml: holds a Pod, not an Image",
        ),
        (
            &["--old", "tests/cli_fixtures/malformed.yaml", "nginx"],
            "error: --old tests/cli_fixtures/malformed.yaml: malformed YAML",
        ),
        (
            &["--config", "tests/explain", "nginx"],
            "error: --config tests/explain: one file is needed",
        ),
        (
            &["--release-image", "ocp-release:4.18", "nginx"],
            "error: --release-image ocp-release:4.18: error parsing reference of release image",
        ),
        (
            &["--internal-registry", "https://x", "nginx"],
            "error: internal registry: \"https://x\" is not a hostname[:port]",
        ),
    ];
    for (args, want) in cases {
        let r = run(args);
        r.expect_code(2);
        assert!(
            r.stderr.starts_with(want),
            "{args:?}: stderr {:?}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?}");
    }
    let r = run(&[]);
    r.expect_code(2);
    assert!(r.stderr.contains("IMAGE_REF"), "{}", r.stderr);
}

#[test]
fn config_from_standard_input() {
    let yaml = "kind: Image\nspec:\n  registrySources:\n    blockedRegistries: ['*.example.com']\n";
    run_with_stdin(&["--config", "-", "a.example.com/x"], Some(yaml))
        .expect_code(0)
        .has_line(
            "  pull:       BLOCKED by spec.registrySources.blockedRegistries[0]: *.example.com",
        );
}

/// The release image decides P, the repository the payload exception protects.
#[test]
fn release_image_decides_the_payload_exception() {
    let old = "tests/explain/review-update.json";
    let mirrored = "mirror.corp.example.com/ocp/release@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    run(&["--config", CURRENT, "--old", old, "--release-image", mirrored, "quay.io/org/app"])
        .expect_code(1)
        .has_line("  quay.io/org/app: pull allowed -> BLOCKED by spec.registrySources.blockedRegistries[0]: quay.io");
    // By default P is quay.io/openshift-release-dev/ocp-release: blocking quay.io is dropped.
    let by_tag = "quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64";
    for args in [&["--release-image", by_tag][..], &[][..]] {
        let mut all = vec!["--config", CURRENT, "--old", old];
        all.extend_from_slice(args);
        all.push("quay.io/org/app");
        run(&all).expect_code(0);
    }
}

/// `--release-repo` stays accepted for one release, with a warning; its first value is P.
#[test]
fn release_repo_is_deprecated_but_accepted() {
    let old = "tests/explain/review-update.json";
    let r = run(&[
        "--config",
        CURRENT,
        "--old",
        old,
        "--release-repo",
        "mirror.corp.example.com/ocp/release,quay.io",
        "quay.io/org/app",
    ]);
    r.expect_code(1);
    assert!(
        r.stderr
            .starts_with("warning: --release-repository and --release-repo (IMAGE_CONFIG_WEBHOOK_RELEASE_REPOSITORY) are deprecated"),
        "{}",
        r.stderr
    );
    let r = run(&["--release-repo", "quay.io/x:tag", "nginx"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains(
            "error: release payload repository: \"quay.io/x:tag\" is not a registry scope"
        ),
        "{}",
        r.stderr
    );
}

/// Issue 11: blocked `example.com`, search `example.com:5000`: the short name's candidate is
/// blocked by registries.conf prefix matching.
#[test]
fn r11_search_registry_with_a_port_under_a_blocked_registry() {
    let yaml = "kind: Image\nspec:\n  registrySources:\n    blockedRegistries: [example.com]\n    containerRuntimeSearchRegistries: ['example.com:5000']\n";
    run_with_stdin(&["--config", "-", "team/app:1"], Some(yaml))
        .expect_code(0)
        .has_line("                1. example.com:5000/team/app:1: pull BLOCKED by spec.registrySources.blockedRegistries[0]: example.com")
        .has_line("  pull:       BLOCKED by spec.registrySources.blockedRegistries[0]: example.com")
        .has_line("              CRI-O: registry example.com is blocked in /etc/containers/registries.conf or /etc/containers/registries.conf.d");
}

/// `--render`: one file on stdout, exactly; a refusal on stderr with exit 4 (more cases in
/// tests/render.rs).
#[test]
fn render_prints_one_file_or_the_refusal() {
    let yaml = "kind: Image\nspec:\n  registrySources:\n    blockedRegistries: [b.io]\n";
    let r = run_with_stdin(
        &["--config", "-", "--render", "registries.conf"],
        Some(yaml),
    );
    r.expect_code(0);
    assert!(
        r.stdout
            .ends_with("[[registry]]\n  prefix = \"\"\n  location = \"b.io\"\n  blocked = true\n"),
        "{}",
        r.stdout
    );
    let both = "kind: Image\nspec:\n  registrySources:\n    blockedRegistries: [b.io]\n    allowedRegistries: [a.io]\n";
    let r = run_with_stdin(&["--config", "-", "--render", "policy.json"], Some(both));
    r.expect_code(4);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.starts_with("could not Create/Update MachineConfig: could not update policy json with new changes: invalid images config: only one of AllowedRegistries or BlockedRegistries may be specified\n"), "{}", r.stderr);
    let r = run(&["--render", "search"]);
    r.expect_code(0);
    assert!(
        r.stdout.is_empty()
            && r.stderr.contains(
                "writes no /etc/containers/registries.conf.d/01-image-searchRegistries.conf"
            ),
        "{}",
        r.stderr
    );
    let r = run(&["--render", "search", "--release-image", "ocp-release:4.18"]);
    r.expect_code(4);
    assert_eq!(r.stderr, "error parsing reference of release image\n");
    run(&["--render", "policy.json", "nginx"]).expect_code(2);
}

#[test]
fn release_repo_setting_decides_the_payload_exception() {
    let old = "tests/explain/review-update.json";
    // With a mirrored payload, blocking quay.io is kept and blocks quay.io images.
    run(&["--config", CURRENT, "--old", old, "--release-repo", "mirror.corp.example.com/ocp/release", "quay.io/org/app"])
        .expect_code(1)
        .has_line("  quay.io/org/app: pull allowed -> BLOCKED by spec.registrySources.blockedRegistries[0]: quay.io");
}

/// The JSON document is stable: these keys, in every result.
#[test]
fn json_shape() {
    let r = run(&[
        "--config",
        NEW,
        "--old",
        CURRENT,
        "-o",
        "json",
        PAYLOAD,
        "nginx",
        "not a ref",
    ]);
    r.expect_code(1);
    let v = r.json();
    assert_eq!(keys(&v), ["changed", "config", "old", "results", "verdict"]);
    assert_eq!(
        keys(&v["verdict"]),
        [
            "allowed",
            "errors",
            "notes",
            "operation",
            "skipped",
            "warnings"
        ]
    );
    assert_eq!(v["verdict"]["operation"], "UPDATE");
    assert_eq!(v["verdict"]["allowed"], true);
    assert_eq!(v["changed"], true);
    assert_eq!(keys(&v["config"]), ["notes", "source"]);
    assert_eq!(v["config"]["source"], NEW);
    assert_eq!(v["old"]["source"], CURRENT);
    let results = v["results"].as_array().unwrap_or_else(|| panic!("results"));
    assert_eq!(results.len(), 3);
    for result in results {
        assert_eq!(
            keys(result),
            [
                "changes",
                "error",
                "import",
                "input",
                "pull",
                "reference",
                "short_name"
            ]
        );
    }
    let payload = &results[0];
    assert_eq!(payload["input"], PAYLOAD);
    assert_eq!(
        keys(&payload["reference"]),
        [
            "default_tag",
            "digest",
            "normalized",
            "path",
            "registry",
            "repository",
            "short_name",
            "tag"
        ]
    );
    assert_eq!(payload["reference"]["normalized"], PAYLOAD);
    assert_eq!(
        keys(&payload["pull"]),
        [
            "allowed",
            "candidate",
            "decided_by",
            "error",
            "how",
            "insecure",
            "insecure_by",
            "notes"
        ]
    );
    assert_eq!(payload["pull"]["allowed"], false);
    assert_eq!(
        payload["pull"]["decided_by"],
        serde_json::json!({"field": "spec.registrySources.allowedRegistries", "value": null})
    );
    assert_eq!(
        keys(&payload["import"]),
        ["allowed", "checked", "decided_by", "error", "how", "notes"]
    );
    assert_eq!(payload["import"]["checked"], "quay.io:443");
    assert!(
        payload["import"]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("registry \"quay.io\" not allowed by whitelist: "))
    );
    let change = &payload["changes"][0];
    assert_eq!(
        keys(change),
        ["after", "aspect", "before", "reference", "summary"]
    );
    assert_eq!(change["aspect"], "pull");
    assert_eq!(
        change["summary"],
        "quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64: pull allowed -> BLOCKED by spec.registrySources.allowedRegistries (not listed)"
    );
    let nginx = &results[1];
    assert_eq!(
        keys(&nginx["short_name"]),
        ["candidates", "registries", "search_field"]
    );
    let candidate = &nginx["short_name"]["candidates"][0];
    assert_eq!(keys(candidate), ["error", "name", "pull", "registry"]);
    assert_eq!(candidate["name"], "registry.corp.example.com/nginx:latest");
    assert_eq!(
        nginx["pull"]["candidate"],
        "registry.corp.example.com/nginx:latest"
    );
    let bad = &results[2];
    assert_eq!(bad["error"], "invalid reference format");
    for field in ["reference", "short_name", "pull", "import", "changes"] {
        assert!(bad[field].is_null(), "{field}");
    }
    // Without --old: no comparison fields.
    let alone = run(&["-o", "json", "nginx"]).json();
    assert!(alone["old"].is_null() && alone["changed"].is_null());
    assert!(alone["results"][0]["changes"].is_null());
    assert!(alone["results"][0]["short_name"]["search_field"].is_null());
}

#[test]
fn help_documents_the_exit_codes() {
    let r = run(&["--help"]);
    r.expect_code(0);
    for want in [
        "--config <FILE>",
        "--old <FILE>",
        "--release-repository <REPO>",
        "[alias: --release-repo]",
        "--release-image <REF>",
        "[env: IMAGE_CONFIG_WEBHOOK_RELEASE_IMAGE=]",
        "[default: the repository quay.io/openshift-release-dev/ocp-release]",
        "--render <FILE>",
        "4 (--render) the machine-config operator",
        "5 the API server would deny the config with this webhook installed",
        "Exit status: 0",
        "An invalid reference is an error for that reference only",
    ] {
        assert!(
            r.stdout.contains(want),
            "{want:?} missing from:\n{}",
            r.stdout
        );
    }
}

/// `explain` asks the engine first: a config the API server would deny says so at the top,
/// with the field-path errors `replay` prints, its warnings once, and exit 5.
#[test]
fn a_config_the_api_server_denies_says_so_first() {
    let r = run(&[
        "--config",
        "tests/examples/bad-image.yaml",
        "quay.io/org/app:1",
    ]);
    r.expect_code(5);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"config: tests/examples/bad-image.yaml"),
        "{}",
        r.stdout
    );
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.starts_with("  verdict:    DENIED (CREATE) by the API server")),
        "{}",
        r.stdout
    );
    let replayed = std::process::Command::new(env!("CARGO_BIN_EXE_image-config-webhook"))
        .args(["replay", "tests/examples/bad-image.yaml"])
        .output()
        .expect("replay runs");
    let replayed = String::from_utf8_lossy(&replayed.stdout);
    let denial = replayed
        .lines()
        .find(|l| l.trim_start().starts_with("Error from server"))
        .expect("replay prints the denial");
    assert!(r.stdout.contains(denial.trim_start()), "{}", r.stdout);
    // Each warning once, under the config.
    let warning =
        "Warning: spec.registrySources.containerRuntimeSearchRegistries[0]: public registry";
    assert_eq!(r.stdout.matches(warning).count(), 1, "{}", r.stdout);
    // The JSON carries the same verdict.
    let r = run(&[
        "--config",
        "tests/examples/bad-image.yaml",
        "-o",
        "json",
        "quay.io/org/app:1",
    ]);
    r.expect_code(5);
    let v = r.json();
    assert_eq!(v["verdict"]["allowed"], false);
    assert!(
        v["verdict"]["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e.as_str().is_some_and(
                |e| e.starts_with("spec.registrySources.blockedRegistries[0]: Invalid value")
            ))),
        "{v}"
    );
}
