//! The documents against the code: README.md, docs/, certs/README.md, manifests/README.md.
//!
//! - The rule tables in docs/rules.md and the tier summary in README.md are generated from
//!   `RULES` (`image_config_webhook::rules::table`); `UPDATE_DOCS=1 cargo test --test docs`
//!   rewrites them.
//! - Every `image-config-webhook` command the documents show exists, with its flags; every flag of
//!   `serve` and `replay` is documented.
//! - The README puts the binary on PATH before calling it, stays short and in the order a user
//!   needs, and the server's internals live in docs/operating.md.
//! - Links between the documents resolve; nothing refers to a RULEBOOK that is not here.
//! - CI installs what the tests need, and no test reports a skip as a pass.
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::binary::{BIN, run_ok};
use image_config_webhook::rules::table;

/// The most lines the README may have.
const README_MAX_LINES: usize = 250;
/// How to regenerate the generated parts of the documents.
const REGENERATE: &str = "UPDATE_DOCS=1 cargo test --test docs";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The documents this test owns, relative to the repository.
fn documents() -> Vec<String> {
    let mut docs = vec![
        "README.md".to_owned(),
        "certs/README.md".to_owned(),
        "manifests/README.md".to_owned(),
    ];
    let dir = repo().join("docs");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut pages: Vec<String> = entries
        .map(|e| e.unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    docs.extend(pages);
    docs
}

// ---------------------------------------------------------------------------------------------
// Generated parts
// ---------------------------------------------------------------------------------------------

fn begin_marker(name: &str) -> String {
    format!("<!-- BEGIN GENERATED: {name} -->\n")
}

const END_MARKER: &str = "<!-- END GENERATED -->";

/// The byte range between the markers of the block `name` (after the BEGIN line, up to the END
/// marker).
fn generated_range(doc: &str, name: &str, file: &str) -> std::ops::Range<usize> {
    let begin = begin_marker(name);
    let start = doc
        .find(&begin)
        .map(|i| i + begin.len())
        .unwrap_or_else(|| panic!("{file}: no `{}` line", begin.trim_end()));
    let len = doc[start..]
        .find(END_MARKER)
        .unwrap_or_else(|| panic!("{file}: no `{END_MARKER}` after `{}`", begin.trim_end()));
    start..start + len
}

/// Checks that the block `name` of `file` is `expected`, or rewrites it with `UPDATE_DOCS=1`.
fn check_generated(file: &str, name: &str, expected: &str) {
    let doc = read(file);
    let range = generated_range(&doc, name, file);
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| !v.is_empty()) {
        let mut updated = doc.clone();
        updated.replace_range(range, expected);
        if updated != doc {
            let path = repo().join(file);
            std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            eprintln!("rewrote the generated block `{name}` of {file}");
        }
        return;
    }
    let actual = &doc[range];
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
        panic!(
            "{file}: the generated block `{name}` differs from the rule table (RULES in \
             src/rules/mod.rs, rendered by src/rules/table.rs); run `{REGENERATE}` to \
             regenerate it.\nfirst difference at line {} of the block:\n  in {file}: {:?}\n  \
             generated:  {:?}",
            first + 1,
            actual.lines().nth(first).unwrap_or("<end>"),
            expected.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

#[test]
fn rules_doc_tables_are_generated_from_the_rule_table() {
    check_generated("docs/rules.md", "rules", &table::markdown());
}

#[test]
fn readme_tier_summary_is_generated_from_the_rule_table() {
    check_generated("README.md", "tiers", &table::tiers_markdown());
}

#[test]
fn generated_tables_name_every_rule() {
    let doc = read("docs/rules.md");
    for rule in image_config_webhook::rules::RULES {
        assert!(
            doc.contains(&format!("\n| {} |", rule.id)),
            "docs/rules.md has no row for {}; run `{REGENERATE}`",
            rule.id
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Commands and flags
// ---------------------------------------------------------------------------------------------

/// The subcommands `image-config-webhook --help` lists.
fn subcommands() -> BTreeSet<String> {
    subcommands_of(&[])
}

/// The subcommands `image-config-webhook <path> --help` lists (none when it lists none).
fn subcommands_of(path: &[&str]) -> BTreeSet<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = run_ok(&args);
    if path.is_empty() {
        assert!(
            help.contains("Commands:"),
            "`--help` lists no commands:\n{help}"
        );
    }
    let Some(commands) = help.split("Commands:").nth(1) else {
        return BTreeSet::new();
    };
    commands
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The long flags a `--help` text lists (`-o, --output <FORMAT>` gives `--output`), with their
/// aliases (`[alias: --release-repo]`).
fn flags_in_help(help: &str) -> BTreeSet<String> {
    let aliases = help.split(" [alias").skip(1).flat_map(|rest| {
        let rest = rest.trim_start_matches("es").trim_start_matches(": ");
        rest.split(']')
            .next()
            .unwrap_or("")
            .split(", ")
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    help.lines()
        .map(str::trim_start)
        .filter_map(|l| {
            let l = l
                .strip_prefix('-')
                .filter(|l| !l.starts_with('-'))
                .map_or(l, |l| l.split_once(", ").map_or(l, |(_, rest)| rest));
            let name = l.strip_prefix("--")?;
            let end = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(name.len());
            Some(format!("--{}", &name[..end]))
        })
        .filter(|f| f.len() > 2)
        .chain(aliases.filter(|a| a.starts_with("--")))
        .collect()
}

fn subcommand_flags(sub: &str) -> BTreeSet<String> {
    flags_in_help(&run_ok(&[sub, "--help"]))
}

/// Every invocation of the binary in `doc`: the words after `image-config-webhook` or
/// `cargo run --release --` where it is a command (at the start of a line or shell prompt, of a
/// code span, or after `&&`/`|`/`;`), with `\`-continued lines joined.
fn invocations(doc: &str) -> Vec<Vec<String>> {
    let joined = doc.replace("\\\n", " ");
    let mut found = Vec::new();
    for prefix in ["image-config-webhook ", "cargo run --release -- "] {
        for (at, _) in joined.match_indices(prefix) {
            let before = joined[..at].trim_end_matches(' ');
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let head = before[line_start..].trim_start();
            let in_command_position = head.is_empty()
                || head == "$"
                || head.ends_with('`')
                || head.ends_with("&&")
                || head.ends_with('|')
                || head.ends_with(';')
                || head.ends_with("#   ");
            if !in_command_position {
                continue;
            }
            let rest = &joined[at + prefix.len()..];
            let end = rest
                .find(['`', '\n', '|', ';', ')'])
                .into_iter()
                .chain(rest.find(" #"))
                .min()
                .unwrap_or(rest.len());
            let words: Vec<String> = rest[..end].split_whitespace().map(str::to_owned).collect();
            if !words.is_empty() {
                found.push(words);
            }
        }
    }
    found
}

#[test]
fn every_command_the_documents_show_exists_with_its_flags() {
    let subs = subcommands();
    let mut checked = 0;
    for file in documents() {
        for words in invocations(&read(&file)) {
            let sub = &words[0];
            assert!(
                subs.contains(sub),
                "{file}: `image-config-webhook {}`: no subcommand {sub:?} (there are {subs:?})",
                words.join(" ")
            );
            // A subcommand of the subcommand (`certs renew`) has flags of its own.
            let nested = words
                .get(1)
                .filter(|w| subcommands_of(&[sub]).contains(w.as_str()));
            let (command, flags) = match nested {
                Some(inner) => (
                    format!("{sub} {inner}"),
                    flags_in_help(&run_ok(&[sub, inner, "--help"])),
                ),
                None => (sub.clone(), subcommand_flags(sub)),
            };
            for word in words.iter().filter(|w| w.starts_with("--")) {
                let flag = word.split('=').next().unwrap_or(word);
                assert!(
                    flags.contains(flag),
                    "{file}: `image-config-webhook {}`: `{command} --help` has no {flag}",
                    words.join(" ")
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 10,
        "only {checked} commands found in the documents"
    );
}

/// The code spans of `doc` (`` `...` ``), without the backticks.
fn code_spans(doc: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut in_fence = false;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let Some(span) = parts.next() {
            spans.push(span);
            if parts.next().is_none() {
                break;
            }
        }
    }
    spans
}

#[test]
fn every_flag_in_a_code_span_is_a_flag_of_the_binary() {
    let mut all = BTreeSet::new();
    for sub in subcommands() {
        if sub != "help" {
            all.extend(subcommand_flags(&sub));
            for inner in subcommands_of(&[&sub]) {
                if inner != "help" {
                    all.extend(flags_in_help(&run_ok(&[&sub, &inner, "--help"])));
                }
            }
        }
    }
    for file in ["README.md", "docs/operating.md", "docs/rules.md"] {
        for span in code_spans(&read(file)) {
            if !span.starts_with("--") {
                continue;
            }
            let flag = span
                .split([' ', '=', '\\'])
                .next()
                .unwrap_or(span)
                .to_owned();
            assert!(
                all.contains(&flag),
                "{file}: `{span}`: no subcommand of image-config-webhook has {flag}"
            );
        }
    }
}

/// Every flag of `sub`, except `--help`/`--version`, appears in one of `files`.
fn assert_flags_documented(sub: &str, files: &[&str]) {
    let text: String = files.iter().map(|f| read(f)).collect();
    let missing: Vec<String> = subcommand_flags(sub)
        .into_iter()
        .filter(|f| f != "--help" && f != "--version")
        .filter(|f| !text.contains(&format!("`{f}")) && !text.contains(&format!("{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "flags of `{sub}` documented in none of {files:?}: {missing:?}"
    );
}

#[test]
fn every_serve_flag_is_documented_in_operating_or_the_settings_table() {
    assert_flags_documented("serve", &["docs/operating.md", "README.md"]);
}

/// The rows of the README's settings table: (flag, environment variable).
fn settings_table() -> Vec<(String, String)> {
    let readme = read("README.md");
    let section = readme
        .split("\n## Settings\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap_or_else(|| panic!("README.md has no `## Settings` section"));
    section
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|row| {
            let cells: Vec<&str> = row.split(" | ").collect();
            let first = |cell: Option<&&str>| {
                cell.and_then(|c| code_spans(c).first().copied())
                    .map(|span| span.split(' ').next().unwrap_or(span).to_owned())
                    .unwrap_or_else(|| {
                        panic!("README.md settings row without a flag or variable: {row}")
                    })
            };
            (first(cells.first()), first(cells.get(1)))
        })
        .collect()
}

/// Issue 11: one settings type, one set of flags and environment variables for `serve`, `replay`
/// and `explain`, documented in one table: every row is a flag of all three with that variable,
/// and every flag the three share is a row.
#[test]
fn the_settings_are_one_table_shared_by_serve_replay_and_explain() {
    let rows = settings_table();
    assert!(rows.len() >= 5, "README.md's settings table: {rows:?}");
    let helps: Vec<(&str, String)> = ["serve", "replay", "explain"]
        .into_iter()
        .map(|sub| (sub, run_ok(&[sub, "--help"])))
        .collect();
    for (flag, env) in &rows {
        for (sub, help) in &helps {
            let at = help
                .find(&format!("{flag} <"))
                .unwrap_or_else(|| panic!("`{sub} --help` has no {flag}:\n{help}"));
            let entry = &help[at..];
            let entry = entry
                .get(..entry.find("\n  -").unwrap_or(entry.len()))
                .unwrap_or(entry);
            assert!(
                entry.contains(&format!("[env: {env}=")),
                "`{sub} --help`: {flag} does not read {env}:\n{entry}"
            );
        }
    }
    let shared: BTreeSet<String> = ["serve", "replay", "explain"]
        .into_iter()
        .map(subcommand_flags)
        .reduce(|a, b| a.intersection(&b).cloned().collect())
        .unwrap_or_default();
    for flag in shared {
        if matches!(
            flag.as_str(),
            "--help"
                | "--version"
                | "--output"
                | "--old"
                | "--release-repository"
                | "--release-repo"
        ) {
            continue;
        }
        assert!(
            rows.iter().any(|(f, _)| *f == flag),
            "{flag} is a flag of serve, replay and explain, but not in README.md's settings table"
        );
    }
}

/// A console example of the README: the lines it shows appear in what the command prints, in
/// order. `...` alone stands for any lines; a line ending in `...` for a line starting so.
fn assert_example(command: &[&str], code: i32, shown: &str) {
    let out = Command::new(BIN)
        .args(command)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{BIN}: {e}"));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(code), "{command:?}:\n{printed}");
    let mut lines = printed.lines();
    for want in shown.lines().filter(|l| l.trim() != "...") {
        let prefix = want.strip_suffix("...");
        let found = lines.any(|l| match prefix {
            Some(p) => l.starts_with(p),
            None => l == want,
        });
        assert!(
            found,
            "{command:?}: README.md shows {want:?}, not printed (in order):\n{printed}"
        );
    }
}

/// The console block after `prompt` in the README, without the prompt.
fn readme_example(prompt: &str) -> String {
    let readme = read("README.md");
    let start = readme
        .find(prompt)
        .map(|i| i + prompt.len())
        .unwrap_or_else(|| panic!("README.md shows no example {prompt:?}"));
    readme[start..]
        .split("\n```")
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Issue 11 item 6 and issue 14 item 7: the README's explain examples print what they show: an
/// allowed change, the mirrored cluster's change with and without its context, and the
/// byte-exact `--render` output.
#[test]
fn readme_explain_examples_print_what_they_show() {
    let shown = readme_example(
        "$ image-config-webhook explain --config tests/explain/new.yaml --old tests/explain/cluster-blocks-quay.yaml \\\n    quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64 nginx\n",
    );
    assert_example(
        &[
            "explain",
            "--config",
            "tests/explain/new.yaml",
            "--old",
            "tests/explain/cluster-blocks-quay.yaml",
            "quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64",
            "nginx",
        ],
        1,
        &shown,
    );
    let shown = readme_example(
        "$ image-config-webhook explain --config tests/explain/mirrored/block-quay.yaml \\\n    --old tests/explain/mirrored/cluster.yaml --context tests/explain/mirrored/context.yaml \\\n    quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    );
    assert_example(
        &[
            "explain",
            "--config",
            "tests/explain/mirrored/block-quay.yaml",
            "--old",
            "tests/explain/mirrored/cluster.yaml",
            "--context",
            "tests/explain/mirrored/context.yaml",
            "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
        1,
        &shown,
    );
    // Without the context the same change is only the release-registry warning.
    let out = Command::new(BIN)
        .args([
            "explain",
            "--config",
            "tests/explain/mirrored/block-quay.yaml",
            "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ])
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{BIN}: {e}"));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        !printed.contains("has a digest mirror") && !printed.contains("note: mirror"),
        "{printed}"
    );
    let shown = readme_example(
        "$ image-config-webhook explain --config tests/explain/cluster-blocks-quay.yaml --render registries.conf\n",
    );
    let out = run_ok(&[
        "explain",
        "--config",
        "tests/explain/cluster-blocks-quay.yaml",
        "--render",
        "registries.conf",
    ]);
    assert_eq!(
        out.trim_end(),
        shown.trim_end(),
        "README.md's --render example differs"
    );
}

/// The other way round: every flag in the first column of docs/operating.md's flag table is a
/// flag of `serve`.
#[test]
fn every_flag_in_the_operating_flag_table_is_a_serve_flag() {
    let doc = read("docs/operating.md");
    let serve = subcommand_flags("serve");
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `--")).collect();
    assert!(rows.len() > 10, "docs/operating.md has a flag table");
    for row in rows {
        let first_cell = row.split(" | ").next().unwrap_or(row);
        for span in code_spans(first_cell) {
            let flag = span.split(' ').next().unwrap_or(span);
            assert!(
                serve.contains(flag),
                "docs/operating.md documents {flag}, which `serve --help` does not list: {row}"
            );
        }
    }
}

#[test]
fn every_replay_flag_is_documented_in_the_readme() {
    assert_flags_documented("replay", &["README.md"]);
}

/// The README's exit-code table agrees with `replay --help`'s: four codes, and what makes 1.
#[test]
fn readme_replay_exit_codes_match_replay_help() {
    let readme = read("README.md");
    let help = run_ok(&["replay", "--help"]);
    for code in 0..=3 {
        assert!(
            readme.contains(&format!("\n| {code} | ")),
            "README.md: the replay exit-code table has no row {code}"
        );
        assert!(
            help.contains(&format!("\n  {code}  ")),
            "`replay --help` lists no exit status {code}"
        );
    }
    let row1 = readme
        .lines()
        .find(|l| l.starts_with("| 1 | "))
        .unwrap_or_default();
    for word in ["denial", "mismatch", "--fail-on-warn"] {
        assert!(
            row1.contains(word),
            "README.md: exit code 1 names {word}: {row1}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The README's shape
// ---------------------------------------------------------------------------------------------

/// The README's offline example prints exactly what the README shows.
#[test]
fn readme_replay_example_prints_what_it_shows() {
    let readme = read("README.md");
    let prompt = "$ cargo run --release -- replay tests/examples/bad-image.yaml\n";
    let start = readme
        .find(prompt)
        .map(|i| i + prompt.len())
        .expect("the README shows the offline replay example");
    let shown = readme[start..]
        .split("\n```")
        .next()
        .expect("the example's code block ends");
    let out = Command::new(BIN)
        .args(["replay", "tests/examples/bad-image.yaml"])
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{BIN}: {e}"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "the README says it exits 1 (denied)"
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        printed.trim_end(),
        shown.trim_end(),
        "README.md's replay example differs from what the command prints"
    );
}

#[test]
fn readme_set_up_commands_come_first() {
    let readme = read("README.md");
    let first_block = readme
        .split("```")
        .nth(1)
        .unwrap_or_else(|| panic!("README.md has no code block"));
    let serve = first_block.find("\ncargo run --release -- serve --dev\n");
    let test = first_block.find("\ncargo test --locked\n");
    assert!(
        serve.is_some() && test.is_some() && serve < test,
        "README.md's first code block runs `cargo run --release -- serve --dev`, then \
         `cargo test --locked`:\n{first_block}"
    );
}

/// Item 8: the README installs the binary before its first bare `image-config-webhook ...`.
#[test]
fn readme_puts_the_binary_on_path_before_calling_it() {
    let readme = read("README.md");
    let install = readme
        .find("cargo install --locked --path .")
        .unwrap_or_else(|| panic!("README.md never says `cargo install --locked --path .`"));
    assert!(
        readme[install..].contains("~/.cargo/bin"),
        "README.md says where `cargo install` puts the binary (~/.cargo/bin)"
    );
    // Before the install line only `cargo run --release -- ...` may run the binary.
    let bare_before = readme[..install]
        .lines()
        .filter(|l| {
            let l = l.trim_start().trim_start_matches("$ ");
            l.starts_with("image-config-webhook ")
                || l.contains("`image-config-webhook ")
                || l.contains("&& image-config-webhook ")
        })
        .collect::<Vec<_>>();
    assert!(
        bare_before.is_empty(),
        "README.md calls `image-config-webhook` before `cargo install` puts it on PATH; use \
         `cargo run --release --` there:\n{}",
        bare_before.join("\n")
    );
}

#[test]
fn readme_is_short() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move details to docs/"
    );
}

/// The `##` headings of a Markdown document, in order.
fn headings(doc: &str, level: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for line in doc.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if let Some(h) = line.strip_prefix(level).filter(|_| !in_fence) {
            out.push(h.trim().to_owned());
        }
    }
    out
}

#[test]
fn readme_sections_follow_what_a_user_needs() {
    let sections = headings(&read("README.md"), "## ");
    let order = [
        "Quick start",
        "Install",
        "Test a change offline",
        "Preview a change: `explain`",
        "Troubleshooting",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|want| {
            sections
                .iter()
                .position(|s| s.starts_with(want))
                .unwrap_or_else(|| panic!("README.md has no section {want:?}: {sections:?}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "README.md sections in the order {order:?}: {sections:?}"
    );
}

#[test]
fn server_internals_live_in_docs_operating() {
    let readme = headings(&read("README.md"), "### ");
    let operating = headings(&read("docs/operating.md"), "## ");
    for section in [
        "Flags",
        "Endpoints",
        "Bad requests",
        "Metrics",
        "Certificate rotation",
        "Limits and budgets",
        "Restarts and readiness",
        "Check a deployed webhook",
    ] {
        assert!(
            operating.iter().any(|h| h == section),
            "docs/operating.md has no section {section:?}: {operating:?}"
        );
        assert!(
            !readme.iter().any(|h| h == section),
            "README.md still has the server section {section:?}: move it to docs/operating.md"
        );
    }
    assert!(
        !read("README.md").contains("image_config_webhook_requests_total"),
        "README.md lists the metrics; they belong in docs/operating.md"
    );
}

/// "It has three parts" is followed by three bullets.
#[test]
fn counted_parts_match_their_lists() {
    let readme = read("README.md");
    let numbers = ["two", "three", "four", "five"];
    let mut checked = 0;
    for (i, word) in numbers.iter().enumerate() {
        let claim = format!("has {word} parts");
        for (at, _) in readme.match_indices(&claim) {
            let after = &readme[at..];
            let list_start = after.find("\n\n- ").map(|j| j + 2);
            let Some(list_start) = list_start else {
                panic!("README.md: {claim:?} is not followed by a list");
            };
            let list = &after[list_start..];
            let list = &list[..list.find("\n\n").unwrap_or(list.len())];
            let bullets = list.lines().filter(|l| l.starts_with("- ")).count();
            assert_eq!(
                bullets,
                i + 2,
                "README.md says it {claim:?} but lists {bullets}:\n{list}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "README.md no longer counts its parts");
}

// ---------------------------------------------------------------------------------------------
// Stale statements and links
// ---------------------------------------------------------------------------------------------

#[test]
fn no_document_refers_to_a_rulebook_that_is_not_here() {
    for file in documents() {
        let doc = read(&file);
        assert!(
            !doc.contains("RULEBOOK") && !doc.to_lowercase().contains("rule book"),
            "{file} refers to a rule book that is not in the repository; the rule table is \
             `image-config-webhook rules` and docs/rules.md"
        );
    }
}

#[test]
fn certs_readme_names_the_command_that_writes_them() {
    let doc = read("certs/README.md");
    assert!(
        !doc.contains("arrives with"),
        "certs/README.md says the certs command is still to come"
    );
    assert!(
        doc.contains("image-config-webhook certs") && doc.contains("serve --dev"),
        "certs/README.md names `image-config-webhook certs` and `serve --dev`"
    );
}

/// `kubectl apply -k` of an overlay deploys the placeholder image; the comments must show the
/// render-and-replace pipeline instead.
#[test]
fn overlay_comments_never_apply_the_placeholder_image() {
    for overlay in ["plain", "openshift", "cert-manager"] {
        let file = format!("manifests/overlays/{overlay}/kustomization.yaml");
        let text = read(&file);
        let comments: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .collect();
        for line in &comments {
            assert!(
                !line.contains("apply -k"),
                "{file} suggests `apply -k`, which deploys the placeholder image: {line}"
            );
        }
        let pipeline = format!("kustomize manifests/overlays/{overlay} | sed");
        assert!(
            comments.iter().any(|l| l.contains(&pipeline)),
            "{file} shows the render | sed | apply pipeline"
        );
    }
}

/// GitHub's anchor for a heading: lowercase, punctuation but `-` and `_` dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(doc: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for level in ["# ", "## ", "### ", "#### "] {
        out.extend(headings(doc, level).iter().map(|h| anchor(h)));
    }
    out
}

/// The `](target)` links of a document.
fn links(doc: &str) -> Vec<&str> {
    doc.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &doc[at + 2..];
            rest.find(')').map(|end| &rest[..end])
        })
        .collect()
}

#[test]
fn relative_links_between_documents_resolve() {
    let mut checked = 0;
    for file in documents() {
        let doc = read(&file);
        let dir: PathBuf = Path::new(&file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for link in links(&doc) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
            let (target_rel, target_doc) = if path.is_empty() {
                (file.clone(), doc.clone())
            } else {
                let target = repo().join(&dir).join(path);
                assert!(
                    target.exists(),
                    "{file}: the link ({link}) points to {}, which does not exist",
                    target.display()
                );
                let text = if path.ends_with(".md") {
                    std::fs::read_to_string(&target).unwrap_or_default()
                } else {
                    String::new()
                };
                (path.to_owned(), text)
            };
            if !fragment.is_empty() {
                assert!(
                    anchors(&target_doc).contains(fragment),
                    "{file}: the link ({link}): {target_rel} has no heading #{fragment}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 5, "only {checked} links checked");
}

// ---------------------------------------------------------------------------------------------
// Tests that could not run, and CI
// ---------------------------------------------------------------------------------------------

/// A test that could not run must fail, never print a note and pass.
#[test]
fn no_test_reports_a_skip_as_a_pass() {
    // A print macro whose text starts with the word, as `eprintln!` of a skip note did.
    let needle = concat!("!(\"SKIP", "PED");
    let dir = repo().join("tests");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                !text.contains(needle),
                "{} prints a SKIPPED note and passes: make the test fail, with the command \
                 that installs what it needs",
                path.display()
            );
        }
    }
}

#[test]
fn ci_installs_the_tools_before_the_tests_and_fails_without_them() {
    let run = read(".ci/run");
    let lines: Vec<&str> = run
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let position = |what: &str| {
        lines
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!(".ci/run never runs `{what}`"))
    };
    assert!(
        position("set -euo pipefail") < position("bash manifests/tools.sh"),
        ".ci/run stops when tools.sh fails"
    );
    assert!(
        position("bash manifests/tools.sh") < position("cargo test --locked"),
        ".ci/run installs the tools before `cargo test --locked`"
    );
    assert!(
        position("export CI") < position("cargo test --locked"),
        ".ci/run sets CI, so that a missing tool fails the tests instead of being installed \
         by them"
    );
    // The container image is built and run too, its tools installed by the script.
    position("bash tests/container/run.sh --install");
}
