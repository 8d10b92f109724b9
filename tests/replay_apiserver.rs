//! `replay` of a bare manifest judges what the webhook would receive after `oc apply`: what the
//! API server does before admission (RULEBOOK 3.7, `rest.BeforeCreate`/`BeforeUpdate`) is done
//! to the object first, and each change is told in a note. Objects of another group or kind
//! are skipped as what they are.
//!
//! Every test runs the real binary on files written into a fresh directory.
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Command;

use common::tmp::TempDir;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_image-config-webhook");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn replay(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg("replay")
        .args(args)
        .output()
        .expect("run the binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The one result of `-o json`.
fn only_result(run: &Run) -> Value {
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr));
    let results = doc["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 1, "{}", run.stdout);
    results[0].clone()
}

const OLD: &str = "apiVersion: config.openshift.io/v1
kind: Image
metadata:
  name: cluster
  uid: 0d6c1a2e-0000-4000-8000-000000000001
  creationTimestamp: \"2026-01-01T00:00:00Z\"
  generation: 3
  resourceVersion: \"77\"
spec: {}
";

fn image(metadata: &str, spec: &str) -> String {
    format!("apiVersion: config.openshift.io/v1\nkind: Image\nmetadata:\n{metadata}spec: {spec}\n")
}

#[test]
fn a_namespace_on_the_cluster_scoped_image_is_cleared_on_create_and_update() {
    let dir = TempDir::new("namespace");
    let new = dir.file(
        "cluster.yaml",
        &image("  name: cluster\n  namespace: default\n", "{}"),
    );
    let note = "metadata.namespace \"default\" in the manifest is cleared: Image is cluster-scoped";
    let create = replay(&[&new]);
    assert_eq!(create.code, 0, "{}{}", create.stdout, create.stderr);
    assert!(
        create.stdout.contains("(CREATE): ALLOWED"),
        "{}",
        create.stdout
    );
    assert!(create.stdout.contains(note), "{}", create.stdout);
    let old = dir.file("old.yaml", OLD);
    let update = replay(&["--old", &old, &new]);
    assert_eq!(update.code, 0, "{}{}", update.stdout, update.stderr);
    assert!(
        update.stdout.contains("(UPDATE): ALLOWED"),
        "{}",
        update.stdout
    );
    assert!(
        !update.stdout.contains("field is immutable"),
        "{}",
        update.stdout
    );
    assert!(update.stdout.contains(note), "{}", update.stdout);
}

#[test]
fn an_update_takes_uid_creation_timestamp_and_generation_from_the_stored_object() {
    let dir = TempDir::new("identity");
    let old = dir.file("old.yaml", OLD);
    let new = dir.file(
        "new.yaml",
        &image(
            "  name: cluster\n  creationTimestamp: \"2026-02-02T00:00:00Z\"\n  generation: 9\n",
            "{externalRegistryHostnames: [registry.apps.example.com]}",
        ),
    );
    let run = replay(&["--old", &old, &new]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("(UPDATE): ALLOWED"), "{}", run.stdout);
    for note in [
        "note: metadata.uid is taken from the old object (\"0d6c1a2e-0000-4000-8000-000000000001\")",
        "note: metadata.creationTimestamp \"2026-02-02T00:00:00Z\" is reset to the old object's \"2026-01-01T00:00:00Z\"",
        "note: metadata.generation 9 is reset to the old object's 3",
    ] {
        assert!(
            run.stdout.contains(note),
            "missing {note:?} in\n{}",
            run.stdout
        );
    }
    // A different uid is a real change of identity: still refused, as the API server does.
    let other = dir.file(
        "other-uid.yaml",
        &image("  name: cluster\n  uid: someone-else\n", "{}"),
    );
    let run = replay(&["--old", &old, &other]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("metadata.uid: Invalid value: \"someone-else\": field is immutable"),
        "{}",
        run.stdout
    );
}

#[test]
fn generate_name_is_judged_as_the_generated_name() {
    let dir = TempDir::new("generate-name");
    let gen_cluster = dir.file("gen.yaml", &image("  generateName: cluster\n", "{}"));
    let run = replay(&[&gen_cluster]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("metadata.name: Invalid value: \"clusterxxxxx\": must be cluster"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("name or generateName is required"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("judged as metadata.name \"clusterxxxxx\""),
        "{}",
        run.stdout
    );
    // A prefix other than cluster fails for the prefix too (M3), as the API server reports.
    let other = dir.file("gen-other.yaml", &image("  generateName: images-\n", "{}"));
    let run = replay(&["-o", "json", &other]);
    let result = only_result(&run);
    let causes: Vec<String> = result["status"]["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}: {}",
                c["field"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        causes,
        [
            "metadata.generateName: Invalid value: \"images-\": must be cluster",
            "metadata.name: Invalid value: \"images-xxxxx\": must be cluster",
        ],
        "{}",
        run.stdout
    );
}

#[test]
fn status_in_a_manifest_is_what_the_api_server_keeps() {
    let dir = TempDir::new("status");
    // On CREATE the status is dropped: an internal registry named there does not count.
    let new = dir.file(
        "with-status.yaml",
        &image("  name: cluster\n", "{}").replace(
            "spec: {}",
            "spec: {}\nstatus: {internalRegistryHostname: registry.internal.example:5000}",
        ),
    );
    let run = replay(&[&new]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("note: status is dropped"),
        "{}",
        run.stdout
    );
}

#[test]
fn objects_of_another_group_or_kind_are_skipped_as_what_they_are() {
    let dir = TempDir::new("foreign");
    for (name, text, reason) in [
        (
            "pod.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n",
            "skipped: kind v1 Pod is not config.openshift.io/v1 Image",
        ),
        (
            "core-image.yaml",
            "apiVersion: v1\nkind: Image\nmetadata: {name: cluster}\nspec: {}\n",
            "skipped: kind v1 Image is not config.openshift.io/v1 Image",
        ),
        (
            "image-openshift-io.yaml",
            "apiVersion: image.openshift.io/v1\nkind: Image\nmetadata: {name: cluster}\n",
            "skipped: kind image.openshift.io/v1 Image is not config.openshift.io/v1 Image",
        ),
    ] {
        let path = dir.file(name, text);
        let run = replay(&[&path]);
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("(CREATE): SKIPPED"),
            "{name}: {}",
            run.stdout
        );
        assert!(run.stdout.contains(reason), "{name}: {}", run.stdout);
        assert!(
            !run.stdout.contains("config.openshift.io/v1 Pod"),
            "{name}: {}",
            run.stdout
        );
    }
}

#[test]
fn notes_of_what_the_api_server_changed_are_in_the_json_output() {
    let dir = TempDir::new("json-notes");
    let new = dir.file(
        "cluster.yaml",
        &image("  name: cluster\n  namespace: default\n", "{}"),
    );
    let run = replay(&["-o", "json", &new]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let result = only_result(&run);
    let notes: Vec<&str> = result["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("metadata.namespace \"default\" in the manifest is cleared")),
        "{}",
        run.stdout
    );
}
