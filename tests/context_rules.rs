//! The rules a cluster context changes, through the real binary, table-driven: each directory
//! `tests/fixtures-context/<RULE>/<case>/` is one case, run as `replay --context context.yaml
//! FIXTURE` and as `replay FIXTURE`.
//!
//! A case holds the fixture (`image.yaml`, an Image as `oc apply` takes it, or `review.yaml`, an
//! AdmissionReview, for UPDATE and its ratcheting), `context.yaml` (IDMS, ITMS, ICSP and
//! `ClusterVersion/version` objects, as `oc get -o yaml` prints them, one per document) and
//! `expect.yaml`: for each side, `with` the context and `without` it, the exit code, whether the
//! request is allowed, the exact set of rule ids that fire, and what the rules say (`says`: a
//! rule id, `error` or `warning` with its field path, and a substring of its message).
//!
//! What a side says, the other must not say; the two sides must differ; and every context rule
//! (P7, W21-W25, and W1, W3, W15 with the context's release image) has a case in its directory
//! where it fires on one side only. These fixtures sit apart from `tests/fixtures/`, whose every
//! document the corpus tests judge without a context.
// Outside the pure core (clippy.toml): it reads fixtures and spawns the binary.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use common::binary::{Run, run_binary};
use image_config_webhook::input::{load_inputs, parse_documents};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CASES: &str = "tests/fixtures-context";

/// The rules a context changes: each needs a case in its directory where it fires on one side.
const CONTEXT_RULES: [&str; 9] = ["P7", "W21", "W22", "W23", "W24", "W25", "W1", "W3", "W15"];

/// One thing a rule says: an error (a cause of the denial) or a warning, at a field path.
#[derive(Debug)]
struct Said {
    rule: String,
    error: bool,
    path: String,
    message: String,
}

impl Said {
    /// Whether the verdict says it: a cause at the path, or a warning `PATH: ...`, whose message
    /// holds the substring.
    fn in_verdict(&self, verdict: &Value) -> bool {
        if self.error {
            causes(verdict).iter().any(|cause| {
                cause["field"] == self.path.as_str()
                    && cause["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(&self.message))
            })
        } else {
            warnings(verdict).iter().any(|warning| {
                warning
                    .strip_prefix(&self.path)
                    .and_then(|rest| rest.strip_prefix(": "))
                    .is_some_and(|rest| rest.contains(&self.message))
            })
        }
    }

    /// Whether the text report shows it: a warning line, or the error inside the denial.
    fn in_text(&self, text: &str) -> bool {
        let shown = format!("{}: ", self.path);
        text.lines().any(|line| {
            let line = line.trim_start();
            let kept = if self.error {
                line.starts_with("Error from server (Invalid): ")
            } else {
                line.starts_with(&format!("Warning: {shown}"))
            };
            kept && line
                .split_once(&shown)
                .is_some_and(|(_, rest)| rest.contains(&self.message))
        })
    }
}

/// What one side of a case expects.
#[derive(Debug)]
struct Side {
    exit: i32,
    allowed: bool,
    rules: BTreeSet<String>,
    says: Vec<Said>,
}

/// One case directory and what it expects.
struct Case {
    name: String,
    rule: String,
    fixture: String,
    context: String,
    with: Side,
    without: Side,
}

fn causes(verdict: &Value) -> Vec<&Value> {
    verdict
        .pointer("/status/details/causes")
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default()
}

fn warnings(verdict: &Value) -> Vec<&str> {
    verdict["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn rules(verdict: &Value) -> BTreeSet<String> {
    verdict["rules"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn string_list(value: &Value, what: &str) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what}: a list of rule ids"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{what}: {v} is no rule id"))
                .to_owned()
        })
        .collect()
}

fn side(value: &Value, what: &str) -> Side {
    let text = |v: &Value, key: &str| -> Option<String> { v.get(key)?.as_str().map(str::to_owned) };
    let says = value
        .get("says")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|said| {
            let (error, path) = match (text(said, "error"), text(said, "warning")) {
                (Some(path), None) => (true, path),
                (None, Some(path)) => (false, path),
                _ => panic!("{what}: each `says` has `error` or `warning` (a field path): {said}"),
            };
            Said {
                rule: text(said, "rule").unwrap_or_else(|| panic!("{what}: `rule` in {said}")),
                error,
                path,
                message: text(said, "message")
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| panic!("{what}: `message` in {said}")),
            }
        })
        .collect();
    Side {
        exit: value["exit"]
            .as_i64()
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or_else(|| panic!("{what}: `exit`")),
        allowed: value["allowed"]
            .as_bool()
            .unwrap_or_else(|| panic!("{what}: `allowed`")),
        rules: string_list(&value["rules"], &format!("{what}.rules")),
        says,
    }
}

fn case(dir: &Path) -> Case {
    let relative = |file: &str| {
        dir.join(file)
            .strip_prefix(ROOT)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .display()
            .to_string()
    };
    let name = relative("");
    let fixtures: Vec<String> = ["image.yaml", "review.yaml"]
        .iter()
        .filter(|f| dir.join(f).is_file())
        .map(|f| relative(f))
        .collect();
    let [fixture] = fixtures.as_slice() else {
        panic!("{name}: one of image.yaml and review.yaml, not {fixtures:?}");
    };
    let context = relative("context.yaml");
    assert!(
        dir.join("context.yaml").is_file(),
        "{name}: no context.yaml"
    );
    let inputs = load_inputs(&[dir.join("expect.yaml").display().to_string()]);
    let documents = inputs
        .first()
        .map(parse_documents)
        .unwrap_or_else(|| panic!("{name}: no expect.yaml"))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let [expect] = documents.as_slice() else {
        panic!("{name}: expect.yaml holds one document");
    };
    let rule = dir
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Case {
        rule,
        fixture: fixture.clone(),
        context,
        with: side(&expect["with"], &format!("{name} with")),
        without: side(&expect["without"], &format!("{name} without")),
        name,
    }
}

fn cases() -> Vec<Case> {
    let root = Path::new(ROOT).join(CASES);
    let mut dirs: Vec<PathBuf> = Vec::new();
    for rule in std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display())) {
        let rule = rule
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
            .path();
        for case in std::fs::read_dir(&rule).unwrap_or_else(|e| panic!("{}: {e}", rule.display())) {
            dirs.push(
                case.unwrap_or_else(|e| panic!("{}: {e}", rule.display()))
                    .path(),
            );
        }
    }
    dirs.sort();
    dirs.iter().map(|d| case(d)).collect()
}

/// The one result of a `replay -o json` run.
fn verdict(run: &Run) -> Value {
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{:?}: not JSON ({e}):\n{}", run.args, run.stdout));
    match report["results"].as_array().map(Vec::as_slice) {
        Some([one]) => one.clone(),
        _ => panic!("{:?}: one result expected:\n{}", run.args, run.stdout),
    }
}

/// Runs one side as JSON and as text; returns how it differs from `want` (and does not say
/// what `other` says), and the rule ids that fired.
fn check(case: &Case, want: &Side, other: &Side, context: bool) -> (Vec<String>, BTreeSet<String>) {
    let mut args = vec!["replay"];
    if context {
        args.extend(["--context", case.context.as_str()]);
    }
    args.push(&case.fixture);
    let text = run_binary(&args, None);
    args.extend(["-o", "json"]);
    let json = run_binary(&args, None);
    let side = if context { "with" } else { "without" };
    let label = format!("{} {side} the context", case.name);
    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(format!("{label}: {what}"));
    for run in [&text, &json] {
        if run.code != want.exit {
            fail(format!(
                "{:?} exits {}, want {}",
                run.args, run.code, want.exit
            ));
        }
        // A context object of another kind would be ignored with a note: none here.
        if !run.stderr.is_empty() {
            fail(format!("{:?} wrote on stderr: {}", run.args, run.stderr));
        }
    }
    let verdict = verdict(&json);
    if verdict["allowed"] != want.allowed {
        fail(format!(
            "allowed {}, want {}",
            verdict["allowed"], want.allowed
        ));
    }
    let got = rules(&verdict);
    if got != want.rules {
        fail(format!("rules {got:?}, want {:?}", want.rules));
    }
    for said in &want.says {
        if !got.contains(&said.rule) {
            fail(format!("{} does not fire", said.rule));
        }
        if !said.in_verdict(&verdict) {
            fail(format!("{said:?} is not in the verdict:\n{}", json.stdout));
        }
        if !said.in_text(&text.stdout) {
            fail(format!(
                "{said:?} is not in the text report:\n{}",
                text.stdout
            ));
        }
    }
    for said in &other.says {
        if said.in_verdict(&verdict) {
            fail(format!("says {said:?} all the same:\n{}", json.stdout));
        }
    }
    (failures, got)
}

#[test]
fn context_rules_fire_with_the_context_and_not_without() {
    let cases = cases();
    assert!(
        cases.len() >= CONTEXT_RULES.len(),
        "only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    // The rules that fire on one side only, by the case directory they are in.
    let mut shown: BTreeSet<(String, String)> = BTreeSet::new();
    for case in &cases {
        if !CONTEXT_RULES.contains(&case.rule.as_str()) {
            failures.push(format!(
                "{}: {} is not a context rule",
                case.name, case.rule
            ));
        }
        if case.with.says.is_empty() && case.without.says.is_empty() {
            failures.push(format!("{}: says nothing on either side", case.name));
        }
        let (with_failures, with_rules) = check(case, &case.with, &case.without, true);
        let (without_failures, without_rules) = check(case, &case.without, &case.with, false);
        failures.extend(with_failures);
        failures.extend(without_failures);
        let differ = (case.with.exit, case.with.allowed, &case.with.rules)
            != (case.without.exit, case.without.allowed, &case.without.rules);
        if !differ {
            failures.push(format!("{}: the context changes nothing", case.name));
        }
        for rule in with_rules.symmetric_difference(&without_rules) {
            shown.insert((case.rule.clone(), rule.clone()));
        }
    }
    for rule in CONTEXT_RULES {
        if !shown.contains(&(rule.to_owned(), rule.to_owned())) {
            failures.push(format!(
                "{CASES}/{rule}/: no case where {rule} fires on one side only"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
