//! `explain --render`, table-driven: each directory under `tests/render/` is one case.
//!
//! A case holds `image.yaml` (the Image config), optionally `release-image.txt` (the
//! `--release-image` value), and what the machine-config operator writes for it, byte for byte:
//! `registries.conf`, `policy.json` and, when it writes the drop-in, `search.conf`. A case where
//! MCO refuses to render holds `stderr.txt` instead: its error line, verbatim; every `--render`
//! then prints nothing on stdout and exits 4.
//!
//! A case may also hold `context.yaml`: the cluster context (IDMS, ITMS, ICSP and
//! `ClusterVersion/version` objects, as `oc get -o yaml` prints them, one per document). Such a
//! case is rendered through the library ([`Node::with_context`]) until `explain` takes a
//! `--context` flag; its `stderr.txt` is the refusal as the machine-config controller logs it.
//! The `mirror-*` cases are the rows of `MIRRORS.md` §2.1 and §3, the `payload-mirror-*` cases
//! the rows of §5.4.
//!
//! The facts are re-expressed from the upstream tests and code cited in `MIRRORS.md` §2.1, §3
//! and §5.3-§5.4 (MCO `helpers_test.go`, runtime-utils `registries_test.go`), as our own
//! fixtures. `r11-*` is the regression of issue 11. `UPDATE_RENDER=1` rewrites the expected
//! files of the context cases from what the model renders (review the diff).
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use image_config_webhook::Settings;
use image_config_webhook::context::{ClusterContext, ContextObject};
use image_config_webhook::image::decode;
use image_config_webhook::input::{load_inputs, parse_documents, read_image};
use image_config_webhook::node::Node;

const BIN: &str = env!("CARGO_BIN_EXE_image-config-webhook");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What one `--render` printed.
struct Rendered {
    code: i32,
    stdout: String,
    stderr: String,
}

fn render(case: &Path, file: &str) -> Rendered {
    let mut args = vec![
        "explain".to_owned(),
        "--config".to_owned(),
        case.join("image.yaml").display().to_string(),
        "--render".to_owned(),
        file.to_owned(),
    ];
    if let Ok(release) = std::fs::read_to_string(case.join("release-image.txt")) {
        args.extend(["--release-image".to_owned(), release.trim().to_owned()]);
    }
    let out = Command::new(BIN)
        .args(&args)
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    Rendered {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(ROOT).join("tests/render");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("image.yaml").is_file())
        .collect();
    cases.sort();
    cases
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The files MCO writes for a case with a `context.yaml` (registries.conf, policy.json, the
/// search drop-in), or the refusal it logs.
fn render_in_context(case: &Path) -> Result<[String; 3], String> {
    let path = |file: &str| case.join(file).display().to_string();
    let inputs = load_inputs(&[path("image.yaml"), path("context.yaml")]);
    let [image_input, context_input] = inputs.as_slice() else {
        panic!("{}: two inputs expected", case.display());
    };
    let object = read_image(image_input).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let mut context = ClusterContext::default();
    let documents =
        parse_documents(context_input).unwrap_or_else(|e| panic!("{}: {e}", context_input.source));
    for document in &documents {
        let object = ContextObject::from_value(document)
            .unwrap_or_else(|e| panic!("{}: {e}", context_input.source));
        context.add(object);
    }
    let decoded = decode(&object.image);
    let settings = Settings::default();
    let node = Node::with_context(&decoded.image, &settings, Some(&context));
    if let Some(refusal) = node.refusal() {
        return Err(refusal.logged());
    }
    Ok([
        node.render_registries_conf().content,
        node.render_policy_json().content,
        node.render_search_registries().unwrap_or_default(),
    ])
}

/// Every case with a cluster context: the bytes MCO writes, or its refusal.
#[test]
fn render_cases_in_context() {
    let cases: Vec<PathBuf> = cases()
        .into_iter()
        .filter(|c| c.join("context.yaml").is_file())
        .collect();
    assert!(cases.len() >= 20, "only {} context cases", cases.len());
    let update = std::env::var_os("UPDATE_RENDER").is_some_and(|v| !v.is_empty());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.display().to_string();
        let got = render_in_context(case);
        if update {
            let written = match &got {
                Ok(files) => ["registries.conf", "policy.json", "search.conf"]
                    .iter()
                    .zip(files)
                    .filter(|(_, content)| !content.is_empty())
                    .try_for_each(|(file, content)| std::fs::write(case.join(file), content)),
                Err(refusal) => std::fs::write(case.join("stderr.txt"), format!("{refusal}\n")),
            };
            written.unwrap_or_else(|e| panic!("{name}: {e}"));
            continue;
        }
        match (read(&case.join("stderr.txt")), got) {
            (Some(want), Err(refusal)) if want.trim_end() == refusal => {}
            (Some(want), got) => {
                failures.push(format!("{name}: want the refusal {want:?}, got {got:?}"));
            }
            (None, Err(refusal)) => failures.push(format!("{name}: refused: {refusal}")),
            (None, Ok(files)) => {
                for (expected, got) in ["registries.conf", "policy.json", "search.conf"]
                    .iter()
                    .zip(files)
                {
                    let want = read(&case.join(expected)).unwrap_or_default();
                    if want != got {
                        failures.push(format!(
                            "{name} {expected}:\n--- want\n{want}\n--- got\n{got}"
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every case, every file: the bytes MCO writes, or its refusal.
#[test]
fn render_cases() {
    let cases: Vec<PathBuf> = cases()
        .into_iter()
        .filter(|c| !c.join("context.yaml").is_file())
        .collect();
    assert!(cases.len() >= 15, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(refusal) = read(&case.join("stderr.txt")) {
            for file in ["registries.conf", "policy.json", "search"] {
                let r = render(case, file);
                if r.code != 4 || !r.stdout.is_empty() || !r.stderr.starts_with(&refusal) {
                    failures.push(format!(
                        "{name} --render {file}: exit {} (want 4), stdout {:?} (want empty), stderr {:?} (want it to start with {refusal:?})",
                        r.code, r.stdout, r.stderr
                    ));
                }
            }
            continue;
        }
        for (file, expected) in [
            ("registries.conf", "registries.conf"),
            ("policy.json", "policy.json"),
            ("search", "search.conf"),
        ] {
            let r = render(case, file);
            // No search.conf: MCO writes no drop-in, and nothing is printed.
            let want = read(&case.join(expected)).unwrap_or_default();
            if r.code != 0 || r.stdout != want {
                failures.push(format!(
                    "{name} --render {file}: exit {}\n--- want ({expected})\n{want}\n--- got\n{}\n--- stderr\n{}",
                    r.code, r.stdout, r.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Rendering twice gives the same bytes (map order, list order).
#[test]
fn render_is_byte_stable() {
    for case in cases() {
        if case.join("context.yaml").is_file() {
            assert_eq!(
                render_in_context(&case),
                render_in_context(&case),
                "{}",
                case.display()
            );
            continue;
        }
        for file in ["registries.conf", "policy.json", "search"] {
            let (a, b) = (render(&case, file), render(&case, file));
            assert_eq!(
                (a.code, &a.stdout),
                (b.code, &b.stdout),
                "{} {file}",
                case.display()
            );
        }
    }
}
