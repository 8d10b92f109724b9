//! `replay --context` and `explain --context` as a user runs them: files and directories of
//! IDMS, ITMS, ICSP and ClusterVersion (Lists, several documents, JSON), notes on stderr for
//! objects of other kinds, and a malformed object as an error naming the file and the object
//! (exit 2, the "unusable input" code).
// Outside the pure core (clippy.toml): it writes files and spawns the binary.
#![allow(clippy::disallowed_methods)]

mod common;

use common::binary::{Run, run_binary};
use common::tmp::TempDir;

const CONTEXT: &str = "tests/context";
const OC_GET: &str = "tests/context/oc-get.yaml";
const IMAGE: &str = "tests/cli_fixtures/image-ok.yaml";
const BAD_IDMS: &str = "apiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata: {name: broken}\nspec:\n  imageDigestMirrors:\n  - mirrors: [mirror.local/x]\n";

fn run(args: &[&str]) -> Run {
    run_binary(args, None)
}

#[test]
fn replay_reads_a_directory_of_context_and_notes_other_kinds() {
    let run = run(&["replay", "--context", CONTEXT, IMAGE]);
    run.expect_code(0);
    assert_eq!(
        run.stderr,
        "note: tests/context/oc-get.yaml: ignored v1/ConfigMap \"unrelated\": not a context kind\n"
    );
    // Files and directories may be repeated and mixed.
    let again = run_binary(
        &[
            "replay",
            "--context",
            OC_GET,
            "--context",
            "tests/context/more",
            IMAGE,
        ],
        None,
    );
    again.expect_code(0);
    assert_eq!(again.stdout, run.stdout);
}

#[test]
fn a_malformed_context_object_is_an_error_naming_the_file_and_the_object() {
    let dir = TempDir::new("context-cli");
    let bad = dir.file("bad.yaml", BAD_IDMS);
    let worse = dir.file("worse.json", "{\"kind\": ");
    for command in [vec!["replay", IMAGE], vec!["explain", "nginx"]] {
        let mut args = command.clone();
        args.extend(["--context", OC_GET, "--context", &bad, "--context", &worse]);
        let run = run(&args);
        run.expect_code(2);
        let lines: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(lines.len(), 2, "{}", run.stderr);
        assert_eq!(
            lines[0],
            format!(
                "error: --context {bad}: ImageDigestMirrorSet/broken: spec.imageDigestMirrors[0].source: Required value"
            )
        );
        assert!(
            lines[1].starts_with(&format!("error: --context {worse}: malformed JSON")),
            "{}",
            lines[1]
        );
        assert_eq!(run.stdout, "", "nothing is judged with a broken context");
    }
}

#[test]
fn explain_takes_context_and_replay_server_refuses_it() {
    let run = run(&["explain", "--context", CONTEXT, "--config", IMAGE, "nginx"]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("ignored v1/ConfigMap"),
        "{}",
        run.stderr
    );
    let remote = run_binary(
        &[
            "replay",
            "--server",
            "https://127.0.0.1:1/validate",
            "--context",
            CONTEXT,
            IMAGE,
        ],
        None,
    );
    remote.expect_code(2);
    assert!(
        remote.stderr.contains("--context") && remote.stderr.contains("--server"),
        "{}",
        remote.stderr
    );
}
