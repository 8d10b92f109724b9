//! `explain --render`, table-driven: each directory under `tests/render/` is one case.
//!
//! A case holds `image.yaml` (the Image config), optionally `release-image.txt` (the
//! `--release-image` value), and what the machine-config operator writes for it, byte for byte:
//! `registries.conf`, `policy.json` and, when it writes the drop-in, `search.conf`. A case where
//! MCO refuses to render holds `stderr.txt` instead: its error line, verbatim; every `--render`
//! then prints nothing on stdout and exits 4.
//!
//! A case may also hold `context.yaml`: the cluster context (IDMS, ITMS, ICSP and
//! `ClusterVersion/version` objects, as `oc get -o yaml` prints them, one per document), given
//! to `explain --render` as `--context context.yaml`. Its `stderr.txt` is the refusal as the
//! machine-config controller logs it.
//! The `mirror-*` cases are the rows of `MIRRORS.md` §2.1 and §3, the `payload-mirror-*` cases
//! the rows of §5.4.
//!
//! The facts are re-expressed from the upstream tests and code cited in `MIRRORS.md` §2.1, §3
//! and §5.3-§5.4 (MCO `helpers_test.go`, runtime-utils `registries_test.go`), as our own
//! fixtures. `r11-*` is the regression of issue 11. `UPDATE_RENDER=1` rewrites the expected
//! files of the context cases from what `explain --render` prints (review the diff).
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_image-config-webhook");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The files `--render` prints, and the expected file of each.
const FILES: [(&str, &str); 3] = [
    ("registries.conf", "registries.conf"),
    ("policy.json", "policy.json"),
    ("search", "search.conf"),
];

/// What one `--render` printed.
struct Rendered {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `explain --config image.yaml --render FILE`, with the case's `--release-image` and
/// `--context` when it has them.
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
    let context = case.join("context.yaml");
    if context.is_file() {
        args.extend(["--context".to_owned(), context.display().to_string()]);
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

/// How every `--render` of a case differs from its expected files, or its refusal.
fn check(case: &Path) -> Vec<String> {
    let name = case
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut failures = Vec::new();
    if let Some(refusal) = read(&case.join("stderr.txt")) {
        for (file, _) in FILES {
            let r = render(case, file);
            if r.code != 4 || !r.stdout.is_empty() || !r.stderr.starts_with(&refusal) {
                failures.push(format!(
                    "{name} --render {file}: exit {} (want 4), stdout {:?} (want empty), stderr {:?} (want it to start with {refusal:?})",
                    r.code, r.stdout, r.stderr
                ));
            }
        }
        return failures;
    }
    for (file, expected) in FILES {
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
    failures
}

/// Rewrites a context case's expected files from what `--render` prints: the files, or the
/// refusal's first line (the note after it is the CLI's own).
fn update(case: &Path) {
    let name = case.display();
    let refused = render(case, "registries.conf");
    if refused.code == 4 {
        let line = refused.stderr.lines().next().unwrap_or_default();
        std::fs::write(case.join("stderr.txt"), format!("{line}\n"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        return;
    }
    for (file, expected) in FILES {
        let r = render(case, file);
        assert_eq!(r.code, 0, "{name} --render {file}: {}", r.stderr);
        if !r.stdout.is_empty() {
            std::fs::write(case.join(expected), &r.stdout)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// Every case with a cluster context (`--context`): the bytes MCO writes, or its refusal.
#[test]
fn render_cases_in_context() {
    let cases: Vec<PathBuf> = cases()
        .into_iter()
        .filter(|c| c.join("context.yaml").is_file())
        .collect();
    assert!(cases.len() >= 20, "only {} context cases", cases.len());
    if std::env::var_os("UPDATE_RENDER").is_some_and(|v| !v.is_empty()) {
        cases.iter().for_each(|case| update(case));
        return;
    }
    let failures: Vec<String> = cases.iter().flat_map(|case| check(case)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every case without a context, every file: the bytes MCO writes, or its refusal.
#[test]
fn render_cases() {
    let cases: Vec<PathBuf> = cases()
        .into_iter()
        .filter(|c| !c.join("context.yaml").is_file())
        .collect();
    assert!(cases.len() >= 15, "only {} cases", cases.len());
    let failures: Vec<String> = cases.iter().flat_map(|case| check(case)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Rendering twice gives the same bytes (map order, list order).
#[test]
fn render_is_byte_stable() {
    for case in cases() {
        for (file, _) in FILES {
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
