//! End-to-end tests of the `image-config-webhook` binary as a user runs it: `replay` (inputs,
//! expectations, `-o text|json|junit`, exit codes, stderr notes, `--server` against a live, a
//! dead and a silent endpoint), `rules`, and `serve`'s start-up errors.
//!
//! Every test runs the real binary from the crate root, so sources in the output are the
//! relative paths given on the command line. Small inputs live in `tests/cli_fixtures/`; inputs
//! that must be modified copies of the corpus are written into a temporary directory.
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

mod common;

use common::binary::{Run, run_binary};
use common::tmp::TempDir;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_image-config-webhook");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CLI: &str = "tests/cli_fixtures";
/// The corpus: the edge fixtures, one directory per rule id (`allowed/` for those that fire
/// none), and `upstream/`; their expectations are stated once, in the suites.
const CORPUS: &str = "tests/fixtures";
const SUITES: [&str; 2] = ["tests/suites/edge.yaml", "tests/suites/upstream.yaml"];
const WEBHOOK: &str = "image-config-webhook.openshift.io";
const R2_DETAIL: &str = "each registry must be a valid hostname[:port][/path] or wildcard *.hostname format without tags or digests";
const R2_ERROR: &str = "spec.registrySources.blockedRegistries[0]: Invalid value: \"registry.io/myrepo:latest\": each registry must be a valid hostname[:port][/path] or wildcard *.hostname format without tags or digests";
const W3_QUAY: &str = "spec.registrySources.blockedRegistries[0]: \"quay.io\" covers the release payload repository \"quay.io/openshift-release-dev/ocp-release\": the machine-config operator drops it and nodes do not block it";
const D1_MESSAGE: &str = "images.config.openshift.io \"cluster\" is forbidden: deleting required images.config.openshift.io resource, named cluster, is not allowed";

/// Every rule id of RULEBOOK section 1 (P6 is our id for the status hostname rule), and those
/// issue 10 added: M5 (name format), T2 (CEL evaluation errors), W19 (import glob spills).
const RULE_IDS: [&str; 43] = [
    "M1", "M2", "M3", "M4", "M5", "D1", "S1", "S2", "T1", "T2", "E1", "R1", "R2", "R3", "R4", "R5",
    "R6", "R7", "P1", "P2", "P3", "P4", "P5", "P6", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8",
    "W9", "W10", "W11", "W12", "W13", "W14", "W15", "W16", "W17", "W18", "W19",
];

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

impl Run {
    /// The whole of stdout parsed as exactly one JSON document (trailing text is an error).
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of {:?} is not exactly one JSON document ({e}):\n{}\nstderr:\n{}",
                self.args, self.stdout, self.stderr
            )
        })
    }

    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

fn run(args: &[&str]) -> Run {
    run_with_stdin(args, None)
}

fn run_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    run_binary(args, stdin)
}

fn cli(name: &str) -> String {
    format!("{CLI}/{name}")
}

/// A corpus fixture by its path under `tests/fixtures`, e.g. `R2/09-blocked-tag.yaml`.
fn fixture(path: &str) -> String {
    format!("{CORPUS}/{path}")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn results(doc: &Value) -> &Vec<Value> {
    doc["results"].as_array().expect("`results` is a list")
}

fn sources(doc: &Value) -> Vec<&str> {
    results(doc)
        .iter()
        .map(|r| r["source"].as_str().expect("every result has a source"))
        .collect()
}

fn result<'a>(doc: &'a Value, source: &str) -> &'a Value {
    let found: Vec<&Value> = results(doc)
        .iter()
        .filter(|r| r["source"] == source)
        .collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!(
            "expected exactly one result for {source:?}, found {}; sources: {:?}",
            found.len(),
            sources(doc)
        ),
    }
}

/// Asserts `summary` as `[total, allowed, denied, skipped, errors, mismatches]`.
fn assert_summary(doc: &Value, counts: [u64; 6]) {
    let s = &doc["summary"];
    let got = [
        "total",
        "allowed",
        "denied",
        "skipped",
        "errors",
        "mismatches",
    ]
    .map(|k| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("summary.{k} in {s}"))
    });
    assert_eq!(
        got, counts,
        "summary [total, allowed, denied, skipped, errors, mismatches] of {s}"
    );
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")))
        .collect()
}

/// The set of `(field, reason)` of a result's causes (empty when it has none).
fn cause_set(result: &Value) -> BTreeSet<(String, String)> {
    result["status"]["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or("").to_owned(),
                c["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur exactly once in the fixture"
    );
    text.replacen(from, to, 1)
}

/// The indented lines printed under the verdict line of `source` in `-o text`.
fn text_block<'a>(run: &'a Run, source: &str) -> Vec<&'a str> {
    let lines = run.lines();
    let head = format!("{source} (");
    let start = lines
        .iter()
        .position(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no verdict line for {source:?} in:\n{}", run.stdout));
    lines[start + 1..]
        .iter()
        .take_while(|l| l.starts_with(' '))
        .map(|l| l.trim())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// An independent reader for a recorded `response` and for a suite entry (no YAML crate: they
// use a handful of shapes, `{field: X, reason: Y}` flow items or block items).
// ---------------------------------------------------------------------------------------------

struct Recorded {
    allowed: bool,
    code: Option<u64>,
    causes: Option<BTreeSet<(String, String)>>,
}

fn word_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(key)? + key.len();
    let rest = text[at..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

fn recorded_response(fixture: &str, text: &str) -> Recorded {
    let start = text
        .find("\nresponse:")
        .unwrap_or_else(|| panic!("{fixture}: no recorded response"));
    let block = &text[start + 1..];
    let allowed = match word_after(block, "allowed:") {
        Some("true") => true,
        Some("false") => false,
        other => panic!("{fixture}: response.allowed is {other:?}"),
    };
    let code = word_after(block, "code:").map(|c| {
        c.parse()
            .unwrap_or_else(|_| panic!("{fixture}: code {c:?}"))
    });
    let causes = block.find("causes:").map(|at| {
        let mut set = BTreeSet::new();
        let mut rest = &block[at..];
        while let Some(i) = rest.find("field:") {
            rest = &rest[i + "field:".len()..];
            let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
            let field = rest[..end].trim().trim_matches(['\'', '"']).to_owned();
            let reason = word_after(rest, "reason:")
                .unwrap_or_else(|| panic!("{fixture}: a cause without reason"));
            set.insert((field, reason.to_owned()));
        }
        set
    });
    Recorded {
        allowed,
        code,
        causes,
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal XML well-formedness checker for `-o junit` (no XML crate).
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Element>,
}

impl Element {
    fn all<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        if self.name == name {
            out.push(self);
        }
        for c in &self.children {
            c.all(name, out);
        }
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

fn check_entities(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        rest = &rest[i + 1..];
        let end = rest
            .find(';')
            .ok_or_else(|| format!("bare '&' in {text:?}"))?;
        let entity = &rest[..end];
        let ok = matches!(entity, "amp" | "lt" | "gt" | "quot" | "apos")
            || entity
                .strip_prefix("#x")
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            || entity
                .strip_prefix('#')
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(format!("unknown entity &{entity}; in {text:?}"));
        }
        rest = &rest[end + 1..];
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
}

/// The end of a tag starting at `<`, skipping `>` inside quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_start_tag(tag: &str) -> Result<Element, String> {
    let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
    let name = &tag[..name_end];
    if !valid_name(name) {
        return Err(format!("bad element name {name:?}"));
    }
    let mut attrs = BTreeMap::new();
    let mut rest = tag[name_end..].trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("attribute without value in <{tag}>"))?;
        let attr = rest[..eq].trim();
        if !valid_name(attr) {
            return Err(format!("bad attribute name {attr:?} in <{tag}>"));
        }
        let value_part = rest[eq + 1..].trim_start();
        let quote = value_part
            .chars()
            .next()
            .filter(|q| matches!(q, '"' | '\''))
            .ok_or_else(|| format!("unquoted attribute {attr:?} in <{tag}>"))?;
        let close = value_part[1..]
            .find(quote)
            .ok_or_else(|| format!("unterminated attribute {attr:?} in <{tag}>"))?;
        let value = &value_part[1..1 + close];
        if value.contains('<') {
            return Err(format!("'<' in attribute {attr:?}"));
        }
        check_entities(value)?;
        let unescaped = value
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        if attrs.insert(attr.to_owned(), unescaped).is_some() {
            return Err(format!("duplicate attribute {attr:?} in <{tag}>"));
        }
        rest = value_part[close + 2..].trim_start();
    }
    Ok(Element {
        name: name.to_owned(),
        attrs,
        children: Vec::new(),
    })
}

fn parse_xml(xml: &str) -> Result<Element, String> {
    let mut rest = xml.trim_start();
    if let Some(r) = rest.strip_prefix("<?xml") {
        let end = r.find("?>").ok_or("unterminated XML declaration")?;
        rest = &r[end + 2..];
    }
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let attach = |el: Element, stack: &mut Vec<Element>, root: &mut Option<Element>| match stack
        .last_mut()
    {
        Some(parent) => {
            parent.children.push(el);
            Ok(())
        }
        None if root.is_none() => {
            *root = Some(el);
            Ok(())
        }
        None => Err("a second root element".to_owned()),
    };
    loop {
        let lt = rest.find('<');
        let text = &rest[..lt.unwrap_or(rest.len())];
        check_entities(text)?;
        if stack.is_empty() && !text.trim().is_empty() {
            return Err(format!("text outside the root element: {text:?}"));
        }
        let Some(lt) = lt else { break };
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or("unterminated comment")?;
            rest = &r[end + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<![CDATA[") {
            if stack.is_empty() {
                return Err("CDATA outside the root element".to_owned());
            }
            let end = r.find("]]>").ok_or("unterminated CDATA")?;
            rest = &r[end + 3..];
            continue;
        }
        let gt = tag_end(rest).ok_or("unterminated tag")?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .ok_or_else(|| format!("</{name}> without an open element"))?;
            if open.name != name.trim() {
                return Err(format!("</{name}> closes <{}>", open.name));
            }
            attach(open, &mut stack, &mut root)?;
        } else if let Some(inner) = tag.strip_suffix('/') {
            attach(parse_start_tag(inner.trim_end())?, &mut stack, &mut root)?;
        } else {
            stack.push(parse_start_tag(tag)?);
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("<{}> is never closed", open.name));
    }
    root.ok_or_else(|| "no root element".to_owned())
}

#[test]
fn the_xml_checker_rejects_broken_documents() {
    assert!(parse_xml("<a><b x=\"1 &gt; 0\"/></a>").is_ok());
    assert!(parse_xml("<a><b></a></b>").is_err());
    assert!(parse_xml("<a x=1/>").is_err());
    assert!(parse_xml("<a>x & y</a>").is_err());
    assert!(parse_xml("<a></a><b/>").is_err());
    assert!(parse_xml("<a>").is_err());
}

// ---------------------------------------------------------------------------------------------
// 1. The corpus, and proof that the comparison happens.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_whole_corpus_meets_its_suites() {
    let run = run(&[
        "replay",
        "--expect",
        "tests/suites/edge.yaml",
        "--expect",
        "tests/suites/upstream.yaml",
        "-o",
        "json",
        "tests/fixtures",
    ]);
    run.expect_code(0);
    let doc = run.json();
    let s = &doc["summary"];
    assert_eq!(s["total"], 112, "{s}");
    assert_eq!(s["mismatches"], 0, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(s["skipped"], 0, "{s}");
    assert_eq!(
        s["allowed"].as_u64().unwrap() + s["denied"].as_u64().unwrap(),
        112,
        "{s}"
    );
    assert!(!run.stderr.contains("MISMATCH"), "{}", run.stderr);
    for r in results(&doc) {
        assert_eq!(r["mismatches"], json!([]), "{r}");
        assert!(r.get("error").is_none(), "{r}");
        assert!(!r["uid"].as_str().unwrap_or("").is_empty(), "{r}");
    }
    // The suites' rule ids really are in the output (spot checks of RULEBOOK section 2).
    let by_uid = |uid: &str| {
        results(&doc)
            .iter()
            .find(|r| r["uid"] == uid)
            .unwrap_or_else(|| panic!("no result for uid {uid}"))
    };
    assert_eq!(strings(&by_uid("edge-10")["rules"]), ["R2", "W1", "W2"]);
    assert_eq!(strings(&by_uid("edge-57")["rules"]), ["W18"]);
    assert_eq!(by_uid("edge-07")["status"]["code"], 403);
}

/// The `.yaml` files under `dir`, recursively, as paths relative to the crate root.
fn yaml_files(dir: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(Path::new(ROOT).join(dir)).expect("a fixture directory") {
        let entry = entry.expect("a dir entry");
        let path = format!("{dir}/{}", entry.file_name().into_string().unwrap());
        if entry.file_type().expect("a file type").is_dir() {
            yaml_files(&path, out);
        } else if path.ends_with(".yaml") {
            out.push(path);
        }
    }
}

/// The suite entry for `uid`, without its comments, read from the suite files' text.
fn suite_entry(suites: &str, uid: &str) -> String {
    let key = format!("- uid: {uid}\n");
    let mut found = suites.match_indices(&key).map(|(at, _)| at);
    let at = found
        .next()
        .unwrap_or_else(|| panic!("no suite entry for {uid}"));
    assert!(found.next().is_none(), "two suite entries for {uid}");
    suites[at + key.len()..]
        .lines()
        .take_while(|l| l.starts_with("  "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_corpus_fixture_is_judged_as_its_one_suite_entry_says() {
    // The suites are the one place that states a fixture's expectation: no fixture of the corpus
    // carries a recorded response (those live in tests/cli_fixtures/recorded-*.yaml).
    let suites: String = SUITES.iter().map(|s| read(s)).collect();
    let mut files = Vec::new();
    yaml_files(CORPUS, &mut files);
    files.sort();
    assert_eq!(files.len(), 112, "{files:?}");
    let run = run(&["replay", "-o", "json", CORPUS]);
    let doc = run.json();
    assert_eq!(results(&doc).len(), files.len(), "one result per fixture");
    let mut failures = Vec::new();
    let mut suite_causes = 0;
    for source in &files {
        let text = read(source);
        let mut fail = |what: String| failures.push(format!("{source}: {what}"));
        if text.contains("\nresponse:") {
            fail("carries a recorded response: its suite entry states the expectation".into());
        }
        let uid = word_after(&text, "uid:").expect("a uid");
        let entry = suite_entry(&suites, uid);
        let want = recorded_response(source, &format!("\nresponse:\n{entry}"));
        // Grouped by rule id: an edge fixture sits under the first rule of its entry.
        let rules = entry
            .split_once("rules: [")
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(r, _)| r)
            .unwrap_or_else(|| panic!("{source}: no rules in its suite entry"));
        let dir = source.rsplit('/').nth(1).unwrap_or("");
        let first = rules.split(',').next().unwrap_or("").trim();
        if dir != "upstream" && dir != if first.is_empty() { "allowed" } else { first } {
            fail(format!("in {dir}/, but its first rule is {first:?}"));
        }
        let got = result(&doc, source);
        if got["allowed"] != want.allowed {
            fail(format!(
                "allowed {} != suite {}",
                got["allowed"], want.allowed
            ));
        }
        let code = got["status"]["code"].as_u64();
        match want.code {
            Some(c) if code != Some(c) => fail(format!("code {code:?} != suite {c}")),
            None if want.allowed && code != Some(200) => fail(format!("code {code:?} != 200")),
            None if !want.allowed => fail("a denial without a code in its suite entry".into()),
            _ => {}
        }
        let got_causes = cause_set(got);
        let want_causes = want.causes.unwrap_or_default();
        if !want.allowed && !entry.contains("causes:") {
            fail("a denial without causes in its suite entry".into());
        }
        suite_causes += want_causes.len();
        if got_causes != want_causes {
            fail(format!(
                "causes (field, reason) {got_causes:?} != suite {want_causes:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The reader above really found the causes (the comparison is not vacuous).
    assert!(suite_causes >= 40, "only {suite_causes} causes read");
}

#[test]
fn a_wrong_recorded_response_is_a_mismatch_reported_per_fixture() {
    let tmp = TempDir::new("wrong-recorded");
    let untouched = tmp.file("01-spec-empty.yaml", &read(&cli("recorded-allow.yaml")));
    let flipped = tmp.file(
        "13-flipped.yaml",
        &replace_once(
            &read(&cli("recorded-warn-w3.yaml")),
            "allowed: true",
            "allowed: false",
        ),
    );
    let moved = tmp.file(
        "09-moved.yaml",
        &replace_once(
            &read(&cli("recorded-deny-r2.yaml")),
            "blockedRegistries[0]', reason",
            "blockedRegistries[1]', reason",
        ),
    );
    let recoded = tmp.file(
        "02-recoded.yaml",
        &replace_once(
            &read(&cli("recorded-deny-m1.yaml")),
            "code: 422",
            "code: 400",
        ),
    );

    let text = run(&["replay", &tmp.dir()]);
    text.expect_code(1);
    let mismatches = |source: &str| -> Vec<String> {
        text_block(&text, source)
            .into_iter()
            .filter(|l| l.starts_with("MISMATCH"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(mismatches(&untouched), Vec::<String>::new());
    let m = mismatches(&flipped);
    assert!(
        m.iter().any(|l| l.contains("allowed")),
        "{flipped}: {m:?}\n{}",
        text.stdout
    );
    let m = mismatches(&moved);
    assert!(
        m.iter()
            .any(|l| l.contains("spec.registrySources.blockedRegistries[1]")),
        "{moved}: {m:?}"
    );
    let m = mismatches(&recoded);
    assert!(
        m.iter().any(|l| l.contains("400") && l.contains("422")),
        "{recoded}: {m:?}"
    );
    let last = text.lines().last().copied().unwrap_or("");
    assert!(last.contains("3 mismatches"), "summary line {last:?}");

    let json_run = run(&["replay", "-o", "json", &tmp.dir()]);
    json_run.expect_code(1);
    let doc = json_run.json();
    assert_eq!(doc["summary"]["mismatches"], 3, "{}", doc["summary"]);
    assert_eq!(result(&doc, &untouched)["mismatches"], json!([]));
    for source in [&flipped, &moved, &recoded] {
        let m = &result(&doc, source)["mismatches"];
        assert!(m.as_array().is_some_and(|m| !m.is_empty()), "{source}: {m}");
    }
}

#[test]
fn a_wrong_suite_expectation_is_a_mismatch_on_rules_warnings_and_verdict() {
    let tmp = TempDir::new("wrong-suite");
    let suite = tmp.file(
        "suite.yaml",
        "- uid: edge-13\n  warnings: []\n- uid: edge-12\n  rules: [W9]\n- uid: edge-09\n  allowed: true\n",
    );
    let (f13, f12, f09) = (
        fixture("W3/13-blocked-quay.yaml"),
        fixture("allowed/12-blocked-valid-forms.yaml"),
        fixture("R2/09-blocked-tag.yaml"),
    );
    let wrong = run(&["replay", "-o", "json", "--expect", &suite, &f13, &f12, &f09]);
    wrong.expect_code(1);
    let doc = wrong.json();
    assert_summary(&doc, [3, 2, 1, 0, 0, 3]);
    let joined = |source: &str| strings(&result(&doc, source)["mismatches"]).join("\n");
    assert!(joined(&f13).contains("quay.io"), "{}", joined(&f13));
    assert!(joined(&f12).contains("W9"), "{}", joined(&f12));
    assert!(joined(&f09).contains("allowed"), "{}", joined(&f09));

    // Right expectations for the same fixtures are met: exit 0.
    let right = tmp.file(
        "right.yaml",
        &format!(
            "- uid: edge-13\n  warnings: ['{}']\n  rules: [W3]\n- uid: edge-12\n  rules: []\n- uid: edge-09\n  allowed: false\n  rules: [R2]\n",
            W3_QUAY.replace('\'', "''")
        ),
    );
    let ok = run(&["replay", "-o", "json", "--expect", &right, &f13, &f12, &f09]);
    ok.expect_code(0);
    assert_summary(&ok.json(), [3, 2, 1, 0, 0, 0]);
}

// ---------------------------------------------------------------------------------------------
// 2. JSON shape.
// ---------------------------------------------------------------------------------------------

fn row9_status() -> Value {
    json!({
        "status": "Failure",
        "code": 422,
        "reason": "Invalid",
        "message": format!("Image.config.openshift.io \"cluster\" is invalid: {R2_ERROR}"),
        "details": {
            "name": "cluster",
            "group": "config.openshift.io",
            "kind": "Image",
            "causes": [{
                "reason": "FieldValueInvalid",
                "message": format!("Invalid value: \"registry.io/myrepo:latest\": {R2_DETAIL}"),
                "field": "spec.registrySources.blockedRegistries[0]",
            }],
        },
    })
}

fn d1_status() -> Value {
    json!({
        "status": "Failure",
        "code": 403,
        "reason": "Forbidden",
        "message": D1_MESSAGE,
        "details": {"name": "cluster", "group": "config.openshift.io", "kind": "images"},
    })
}

const RESULT_KEYS: [&str; 8] = [
    "source",
    "uid",
    "operation",
    "allowed",
    "skipped",
    "status",
    "warnings",
    "rules",
];

#[test]
fn json_shape_of_a_denial_row_9() {
    // As a bare Image (no expectation): exactly the documented keys, exit 1.
    let source = cli("image-blocked-tag.yaml");
    let bare = run(&["replay", "-o", "json", &source]);
    bare.expect_code(1);
    let doc = bare.json();
    assert_eq!(keys(&doc), BTreeSet::from(["results", "summary"]));
    assert_eq!(
        keys(&doc["summary"]),
        BTreeSet::from([
            "total",
            "allowed",
            "denied",
            "skipped",
            "errors",
            "mismatches"
        ])
    );
    assert_summary(&doc, [1, 0, 1, 0, 0, 0]);
    let r = result(&doc, &source);
    assert_eq!(keys(r), BTreeSet::from(RESULT_KEYS), "{r}");
    assert_eq!(r["operation"], "CREATE");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["skipped"], false);
    assert_eq!(r["status"], row9_status());
    assert_eq!(r["warnings"], json!([]));
    assert_eq!(r["rules"], json!(["R2"]));

    // As the recorded fixture: the same Status; the recorded expectation is met, so exit 0.
    let source = cli("recorded-deny-r2.yaml");
    let fixture = run(&["replay", "-o", "json", &source]);
    fixture.expect_code(0);
    let doc = fixture.json();
    let r = result(&doc, &source);
    let extra: Vec<&str> = keys(r)
        .into_iter()
        .filter(|k| !RESULT_KEYS.contains(k))
        .collect();
    assert!(
        RESULT_KEYS.iter().all(|k| r.get(k).is_some()),
        "missing keys in {r}"
    );
    assert_eq!(extra, ["mismatches"], "{r}");
    assert_eq!(r["mismatches"], json!([]));
    assert_eq!(r["uid"], "edge-09");
    assert_eq!(r["status"], row9_status());
}

#[test]
fn json_shape_of_delete_of_cluster_is_403_forbidden() {
    let source = cli("recorded-delete-d1.yaml");
    let fixture = run(&["replay", "-o", "json", &source]);
    fixture.expect_code(0); // recorded 403 met
    let doc = fixture.json();
    let r = result(&doc, &source);
    assert_eq!(r["operation"], "DELETE");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"], d1_status());
    assert_eq!(r["rules"], json!(["D1"]));

    let source = cli("image-ok.yaml");
    let bare = run(&["replay", "-o", "json", "--operation", "DELETE", &source]);
    bare.expect_code(1);
    let doc = bare.json();
    let r = result(&doc, &source);
    assert_eq!(keys(r), BTreeSet::from(RESULT_KEYS), "{r}");
    assert_eq!(r["operation"], "DELETE");
    assert_eq!(r["status"], d1_status());
}

#[test]
fn json_output_is_exactly_one_document_even_with_notes_errors_and_mismatches() {
    let args = [
        "replay",
        "-o",
        "json",
        "--expect",
        "tests/cli_fixtures/suite-unmatched.yaml",
        "tests/cli_fixtures/image-ok.yaml",
        "tests/cli_fixtures/image-blocked-tag.yaml",
        "tests/cli_fixtures/does-not-exist.yaml",
        "tests/cli_fixtures/malformed.yaml",
        "tests/cli_fixtures/review-lenient-denied.yaml",
        "tests/cli_fixtures/review-pod.yaml",
        "tests/cli_fixtures/list-two.yaml",
    ];
    let run = run(&args);
    run.expect_code(2);
    let doc = run.json(); // the whole of stdout, one value
    assert!(run.stdout.trim_start().starts_with('{'));
    assert!(run.stdout.trim_end().ends_with('}'));
    assert_eq!(results(&doc).len(), 8);
    assert_summary(&doc, [8, 2, 3, 1, 2, 1]);
    // Notes are in the JSON (and on stderr); unmatched expectations are on stderr.
    let lenient = result(&doc, "tests/cli_fixtures/review-lenient-denied.yaml");
    assert!(
        lenient["notes"].as_array().is_some_and(|n| n
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("userInfo")))),
        "{lenient}"
    );
    assert!(run.stderr.contains("userInfo"), "{}", run.stderr);
    assert!(run.stderr.contains("no-such-uid"), "{}", run.stderr);
}

#[test]
fn the_status_of_an_allowed_request_is_success() {
    let source = cli("image-ok.yaml");
    let run = run(&["replay", "-o", "json", &source]);
    run.expect_code(0);
    let doc = run.json();
    let r = result(&doc, &source);
    assert_eq!(r["allowed"], true);
    assert_eq!(r["status"]["status"], "Success");
    assert_eq!(r["status"]["code"], 200);
    assert!(cause_set(r).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. Exit codes.
// ---------------------------------------------------------------------------------------------

#[test]
fn exit_0_when_everything_is_allowed_without_expectations() {
    let paths = [
        cli("image-ok.yaml"),
        cli("image-blocked-quay.yaml"),
        cli("multi-doc.yaml"),
        cli("request-only.yaml"),
    ];
    for format in ["text", "json", "junit"] {
        let mut args = vec!["replay", "-o", format];
        args.extend(paths.iter().map(String::as_str));
        run(&args).expect_code(0);
    }
}

#[test]
fn exit_1_on_a_denial_without_expectations() {
    for format in ["text", "json", "junit"] {
        run(&[
            "replay",
            "-o",
            format,
            &cli("image-ok.yaml"),
            &cli("image-blocked-tag.yaml"),
        ])
        .expect_code(1);
    }
}

#[test]
fn exit_0_for_a_denial_that_an_expectation_predicts() {
    let tmp = TempDir::new("expected-denial");
    let source = cli("image-blocked-tag.yaml");
    let suite = tmp.file(
        "suite.yaml",
        &format!(
            "- source: {source}\n  allowed: false\n  code: 422\n  rules: [R2]\n  causes:\n  - {{field: 'spec.registrySources.blockedRegistries[0]', reason: FieldValueInvalid}}\n"
        ),
    );
    let run = run(&["replay", "-o", "json", "--expect", &suite, &source]);
    run.expect_code(0);
    let doc = run.json();
    assert_summary(&doc, [1, 0, 1, 0, 0, 0]);
    assert_eq!(result(&doc, &source)["mismatches"], json!([]));
}

#[test]
fn exit_2_for_a_missing_file_and_the_other_inputs_are_still_reported() {
    let missing = cli("does-not-exist.yaml");
    let good = cli("image-ok.yaml");
    let run = run(&["replay", "-o", "json", &missing, &good]);
    run.expect_code(2);
    let doc = run.json();
    assert_eq!(sources(&doc), [missing.as_str(), good.as_str()]);
    assert_summary(&doc, [2, 1, 0, 0, 1, 0]);
    let m = result(&doc, &missing);
    assert!(m["error"].as_str().is_some_and(|e| !e.is_empty()), "{m}");
    assert!(m.get("allowed").is_none(), "{m}");
    let g = result(&doc, &good);
    assert_eq!(g["allowed"], true);
    assert!(g.get("error").is_none(), "{g}");

    // An unreadable input outranks a denial.
    let both = run_text_codes(&[&missing, &cli("image-blocked-tag.yaml")]);
    assert_eq!(both, 2);
}

fn run_text_codes(paths: &[&str]) -> i32 {
    let mut args = vec!["replay"];
    args.extend_from_slice(paths);
    let r = run(&args);
    for p in paths {
        assert!(
            r.stdout.lines().any(|l| l.starts_with(p)),
            "{p} not reported:\n{}",
            r.stdout
        );
    }
    r.code
}

#[test]
fn exit_2_for_malformed_yaml_or_json() {
    let tmp = TempDir::new("malformed");
    let not_utf8 = tmp.dir() + "/binary.yaml";
    std::fs::write(&not_utf8, [0xff, 0xfe, 0x00, 0x41]).expect("written");
    let good = cli("image-ok.yaml");
    for bad in [cli("malformed.yaml"), cli("malformed.json"), not_utf8] {
        let run = run(&["replay", "-o", "json", &bad, &good]);
        run.expect_code(2);
        let doc = run.json();
        assert_summary(&doc, [2, 1, 0, 0, 1, 0]);
        let r = result(&doc, &bad);
        assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
        assert_eq!(result(&doc, &good)["allowed"], true);
    }
}

#[test]
fn exit_2_for_usage_errors() {
    let ok = cli("image-ok.yaml");
    let cases: [&[&str]; 7] = [
        &[],
        &["replay"],
        &["replay", "-o", "xml", &ok],
        &["replay", "--operation", "PATCH", &ok],
        &["replay", "--no-such-flag", &ok],
        &[
            "replay",
            "--expect",
            "tests/cli_fixtures/no-such-suite.yaml",
            &ok,
        ],
        &["rules", "-o", "yaml"],
    ];
    for args in cases {
        let run = run(args);
        run.expect_code(2);
        assert!(run.stdout.is_empty(), "{args:?}: stdout {:?}", run.stdout);
        assert!(!run.stderr.trim().is_empty(), "{args:?}: no message");
    }
}

#[test]
fn exit_1_when_an_expectation_matches_no_input() {
    let suite = cli("suite-unmatched.yaml");
    let ok = cli("image-ok.yaml");
    let json_run = run(&["replay", "-o", "json", "--expect", &suite, &ok]);
    json_run.expect_code(1);
    let doc = json_run.json();
    assert_summary(&doc, [1, 1, 0, 0, 0, 1]);
    assert!(
        json_run.stderr.contains("no-such-uid"),
        "{}",
        json_run.stderr
    );

    let text = run(&["replay", "--expect", &suite, &ok]);
    text.expect_code(1);
    assert!(
        text.lines().iter().any(|l| l.contains("no-such-uid")),
        "{}",
        text.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Input forms.
// ---------------------------------------------------------------------------------------------

fn assert_replay_uid(r: &Value) {
    let uid = r["uid"].as_str().unwrap_or("");
    let n = uid.strip_prefix("replay-");
    assert!(
        n.is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())),
        "uid {uid:?} is not replay-N"
    );
}

#[test]
fn a_bare_image_is_a_create() {
    let source = cli("image-ok.yaml");
    let run = run(&["replay", "-o", "json", &source]);
    run.expect_code(0);
    let doc = run.json();
    let r = result(&doc, &source);
    assert_replay_uid(r);
    assert_eq!(r["operation"], "CREATE");
    assert_eq!(r["allowed"], true);
    assert_eq!(r["skipped"], false);
}

#[test]
fn old_replays_a_bare_image_as_a_ratcheted_update() {
    let old = cli("stored-tagged-blocked.yaml");
    let adds = cli("new-adds-external.yaml");
    let run1 = run(&["replay", "-o", "json", "--old", &old, &adds]);
    run1.expect_code(0);
    let doc = run1.json();
    let r = result(&doc, &adds);
    assert_replay_uid(r);
    assert_eq!(r["operation"], "UPDATE");
    assert_eq!(r["allowed"], true);
    assert_eq!(r["rules"], json!(["W18"]));
    assert_eq!(strings(&r["warnings"]), [R2_ERROR]);

    let changes = cli("new-changes-list.yaml");
    let run2 = run(&["replay", "-o", "json", "--old", &old, &changes]);
    run2.expect_code(1);
    let doc = run2.json();
    let r = result(&doc, &changes);
    assert_eq!(r["operation"], "UPDATE");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["rules"], json!(["R2"]));
    assert_eq!(
        cause_set(r),
        BTreeSet::from([(
            "spec.registrySources.blockedRegistries[0]".to_owned(),
            "FieldValueInvalid".to_owned()
        )])
    );
}

#[test]
fn old_from_oc_get_output_replays_like_the_api_server() {
    let old = cli("stored-tagged-blocked-oc-get.yaml");
    let adds = cli("new-adds-external.yaml");
    let run = run(&["replay", "-o", "json", "--old", &old, &adds]);
    let doc = run.json();
    let r = result(&doc, &adds);
    assert_eq!(r["operation"], "UPDATE");
    assert_eq!(r["allowed"], true, "{}", r["status"]["message"]);
    assert_eq!(r["rules"], json!(["W18"]));
    assert_eq!(strings(&r["warnings"]), [R2_ERROR]);
    run.expect_code(0);
}

#[test]
fn operation_delete_of_a_bare_image() {
    let cluster = cli("image-ok.yaml");
    let run1 = run(&["replay", "-o", "json", "--operation", "DELETE", &cluster]);
    run1.expect_code(1);
    let doc = run1.json();
    let r = result(&doc, &cluster);
    assert_eq!(r["operation"], "DELETE");
    assert_eq!(r["status"]["code"], 403);
    assert_eq!(r["status"]["reason"], "Forbidden");

    // RULEBOOK row 8: deleting anything but `cluster` is allowed.
    let foo = cli("image-foo.yaml");
    let run2 = run(&["replay", "-o", "json", "--operation", "DELETE", &foo]);
    run2.expect_code(0);
    let doc = run2.json();
    assert_eq!(result(&doc, &foo)["allowed"], true);
}

#[test]
fn a_list_as_oc_get_prints_it_gives_one_result_per_item() {
    let file = cli("list-two.yaml");
    let run = run(&["replay", "-o", "json", &file]);
    run.expect_code(1);
    let doc = run.json();
    let (s0, s1) = (format!("{file}#0"), format!("{file}#1"));
    assert_eq!(sources(&doc), [s0.as_str(), s1.as_str()]);
    let (r0, r1) = (result(&doc, &s0), result(&doc, &s1));
    assert_replay_uid(r0);
    assert_replay_uid(r1);
    assert_ne!(r0["uid"], r1["uid"]);
    assert_eq!(r0["allowed"], true);
    assert_eq!(r1["allowed"], false);
    assert_eq!(
        r1["status"]["message"],
        "Image.config.openshift.io \"foo\" is invalid: metadata.name: Invalid value: \"foo\": must be cluster"
    );
    assert_eq!(r1["status"]["details"]["name"], "foo");
    assert_eq!(r1["rules"], json!(["M1"]));
}

#[test]
fn multi_document_yaml_gives_one_result_per_document() {
    let file = cli("multi-doc.yaml");
    let run = run(&["replay", "-o", "json", &file]);
    run.expect_code(0);
    let doc = run.json();
    let (s0, s1) = (format!("{file}#0"), format!("{file}#1"));
    assert_eq!(sources(&doc), [s0.as_str(), s1.as_str()]);
    assert_eq!(result(&doc, &s0)["warnings"], json!([]));
    assert_eq!(strings(&result(&doc, &s1)["warnings"]), [W3_QUAY]);
    assert_eq!(result(&doc, &s1)["rules"], json!(["W3"]));
}

#[test]
fn an_admission_review_in_json() {
    let source = cli("review-one-of.json");
    let run = run(&["replay", "-o", "json", &source]);
    run.expect_code(1);
    let doc = run.json();
    let r = result(&doc, &source);
    assert_eq!(r["uid"], "cli-json-1");
    assert_eq!(r["allowed"], false);
    assert_eq!(
        r["status"]["message"],
        "Image.config.openshift.io \"cluster\" is invalid: spec.registrySources: Invalid value: Only one of blockedRegistries or allowedRegistries may be set"
    );
    assert_eq!(
        cause_set(r),
        BTreeSet::from([(
            "spec.registrySources".to_owned(),
            "FieldValueInvalid".to_owned()
        )])
    );
    // With both lists the node applies the blocked one (default accept): W1 and W2 stay silent.
    assert_eq!(r["rules"], json!(["R1", "W6"]));
}

#[test]
fn a_bare_admission_request() {
    let source = cli("request-only.yaml");
    let run = run(&["replay", "-o", "json", &source]);
    run.expect_code(0);
    let doc = run.json();
    let r = result(&doc, &source);
    assert_eq!(r["uid"], "cli-request-1");
    assert_eq!(r["operation"], "CREATE");
    assert_eq!(r["allowed"], true);
    assert_eq!(r["skipped"], false);
}

#[test]
fn stdin_via_dash() {
    let image = run_with_stdin(
        &["replay", "-o", "json", "-"],
        Some(&read(&cli("image-blocked-tag.yaml"))),
    );
    image.expect_code(1);
    let doc = image.json();
    let r = result(&doc, "-");
    assert_eq!(r["operation"], "CREATE");
    assert_eq!(r["status"], row9_status());

    let review = run_with_stdin(
        &["replay", "-o", "json", "-"],
        Some(&read(&cli("review-one-of.json"))),
    );
    review.expect_code(1);
    assert_eq!(result(&review.json(), "-")["uid"], "cli-json-1");
}

#[test]
fn a_directory_is_walked_recursively_in_sorted_order() {
    let dir = cli("tree");
    let run = run(&["replay", "-o", "json", &dir]);
    run.expect_code(0);
    let doc = run.json();
    let expected: Vec<String> = [
        "a-review.json",
        "m/deeper/x.yaml",
        "m/nested.yml",
        "z-image.yaml",
    ]
    .iter()
    .map(|f| Path::new(&dir).join(f).display().to_string())
    .collect();
    assert_eq!(sources(&doc), expected, ".txt and .md files are not inputs");
    assert_eq!(result(&doc, &expected[0])["uid"], "cli-tree-a");
    assert_eq!(strings(&result(&doc, &expected[2])["warnings"]), [W3_QUAY]);
    assert_summary(&doc, [4, 4, 0, 0, 0, 0]);
}

#[test]
fn reviews_of_other_resources_are_skipped_never_denied() {
    let pod = cli("review-pod.yaml");
    let image_openshift_io = cli("review-image-openshift-io.yaml");
    let run = run(&["replay", "-o", "json", &pod, &image_openshift_io]);
    run.expect_code(0);
    let doc = run.json();
    for source in [&pod, &image_openshift_io] {
        let r = result(&doc, source);
        assert_eq!(r["skipped"], true, "{r}");
        assert_eq!(r["allowed"], true, "{r}");
        assert!(cause_set(r).is_empty(), "{r}");
    }
    assert_eq!(result(&doc, &pod)["uid"], "cli-pod-1");
    assert_summary(&doc, [2, 0, 0, 2, 0, 0]);
}

#[test]
fn a_lenient_review_is_judged_normally_with_notes() {
    let denied = cli("review-lenient-denied.yaml");
    let allowed = cli("review-lenient-allowed.yaml");

    let run1 = run(&["replay", "-o", "json", &denied]);
    run1.expect_code(1);
    let doc = run1.json();
    let r = result(&doc, &denied);
    assert_eq!(r["uid"], "cli-lenient-1");
    assert_eq!(r["skipped"], false);
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"], row9_status());
    for word in ["userInfo", "group", "dryRun"] {
        assert!(
            run1.stderr
                .lines()
                .any(|l| l.contains(&denied) && l.contains("note") && l.contains(word)),
            "no stderr note about {word}:\n{}",
            run1.stderr
        );
    }

    let run2 = run(&["replay", "-o", "json", &allowed]);
    run2.expect_code(0);
    let doc = run2.json();
    let r = result(&doc, &allowed);
    assert_eq!(r["allowed"], true);
    assert_eq!(r["skipped"], false);
    assert!(run2.stderr.contains("userInfo"), "{}", run2.stderr);

    let text = run(&["replay", &denied]);
    text.expect_code(1);
    let block = text_block(&text, &denied);
    for word in ["userInfo", "group", "dryRun"] {
        assert!(
            block.iter().any(|l| l.contains("note") && l.contains(word)),
            "no text note about {word}: {block:?}"
        );
    }
}

#[test]
fn a_lenient_kind_without_group_and_without_resource_is_still_judged() {
    let source = cli("review-lenient-no-resource.yaml");
    let run = run(&["replay", "-o", "json", &source]);
    let doc = run.json();
    let r = result(&doc, &source);
    assert_eq!(r["skipped"], false, "{r}");
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"], row9_status());
    run.expect_code(1);
}

// ---------------------------------------------------------------------------------------------
// 5. `-o text`.
// ---------------------------------------------------------------------------------------------

#[test]
fn text_output_prints_what_oc_apply_would_print() {
    let denied = cli("image-blocked-tag.yaml");
    let warned = cli("image-blocked-quay.yaml");
    let run = run(&["replay", &denied, &warned]);
    run.expect_code(1);
    let lines = run.lines();

    let verdict = |source: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(&format!("{source} (")))
            .unwrap_or_else(|| panic!("no verdict line for {source}:\n{}", run.stdout))
    };
    let (d, w) = (verdict(&denied), verdict(&warned));
    assert!(lines[d].contains("DENIED"), "{}", lines[d]);
    assert!(lines[w].contains("ALLOWED"), "{}", lines[w]);
    assert!(d < w, "inputs are reported in order");

    let oc = format!(
        "Error from server (Invalid): error when creating \"{denied}\": admission webhook \"{WEBHOOK}\" denied the request: Image.config.openshift.io \"cluster\" is invalid: {R2_ERROR}"
    );
    assert_eq!(text_block(&run, &denied), [oc.as_str()]);
    assert_eq!(
        text_block(&run, &warned),
        [format!("Warning: {W3_QUAY}").as_str()]
    );
    assert_eq!(
        lines.last().copied(),
        Some("2 results: 1 allowed, 1 denied, 0 skipped, 0 errors, 0 mismatches")
    );
}

#[test]
fn text_output_of_a_denial_with_warnings() {
    let source = cli("review-one-of.json");
    let run = run(&["replay", "-o", "text", &source]);
    run.expect_code(1);
    let block = text_block(&run, &source);
    let oc = format!(
        "Error from server (Invalid): error when creating \"{source}\": admission webhook \"{WEBHOOK}\" denied the request: Image.config.openshift.io \"cluster\" is invalid: spec.registrySources: Invalid value: Only one of blockedRegistries or allowedRegistries may be set"
    );
    assert_eq!(block.first().copied(), Some(oc.as_str()), "{block:?}");
    let warnings: Vec<&str> = block
        .iter()
        .filter_map(|l| l.strip_prefix("Warning: "))
        .collect();
    assert_eq!(
        warnings,
        [
            "spec.registrySources.containerRuntimeSearchRegistries[0]: public registry in short-name search list (spoofing/credential risk)",
        ]
    );
}

#[test]
fn text_output_of_delete_and_errors() {
    let cluster = cli("image-ok.yaml");
    let run1 = run(&["replay", "--operation", "DELETE", &cluster]);
    run1.expect_code(1);
    assert!(
        text_block(&run1, &cluster).iter().any(|l| l
            .starts_with("Error from server (Forbidden): ")
            && l.ends_with(&format!(
                "admission webhook \"{WEBHOOK}\" denied the request: {D1_MESSAGE}"
            ))),
        "{}",
        run1.stdout
    );

    let missing = cli("does-not-exist.yaml");
    let run2 = run(&["replay", &missing, &cluster]);
    run2.expect_code(2);
    assert_eq!(
        run2.lines().last().copied(),
        Some("2 results: 1 allowed, 0 denied, 0 skipped, 1 error, 0 mismatches")
    );
}

// ---------------------------------------------------------------------------------------------
// 6. `-o junit`.
// ---------------------------------------------------------------------------------------------

#[test]
fn junit_is_well_formed_with_a_failure_per_denial() {
    let ok = cli("image-ok.yaml");
    let denied = cli("image-blocked-tag.yaml");
    let pod = cli("review-pod.yaml");
    let list = cli("list-two.yaml");
    let run1 = run(&["replay", "-o", "junit", &ok, &denied, &pod, &list]);
    run1.expect_code(1);
    let root = parse_xml(&run1.stdout)
        .unwrap_or_else(|e| panic!("not well-formed XML ({e}):\n{}", run1.stdout));
    let mut cases = Vec::new();
    root.all("testcase", &mut cases);
    let names: Vec<&str> = cases
        .iter()
        .map(|c| c.attrs.get("name").map_or("", String::as_str))
        .collect();
    let (l0, l1) = (format!("{list}#0"), format!("{list}#1"));
    assert_eq!(
        names,
        [
            ok.as_str(),
            denied.as_str(),
            pod.as_str(),
            l0.as_str(),
            l1.as_str()
        ]
    );
    let case = |name: &str| cases[names.iter().position(|n| *n == name).unwrap()];
    assert!(case(&ok).child("failure").is_none());
    assert!(case(&ok).child("error").is_none());
    assert!(case(&l0).child("failure").is_none());
    for name in [&denied, &l1] {
        let failure = case(name)
            .child("failure")
            .unwrap_or_else(|| panic!("no <failure> for {name}"));
        let message = failure.attrs.get("message").map_or("", String::as_str);
        assert!(message.contains("is invalid"), "{name}: {message}");
    }
    assert!(
        case(&denied).child("failure").unwrap().attrs["message"].contains(R2_ERROR),
        "the failure carries the denial"
    );
    let mut suites = Vec::new();
    root.all("testsuite", &mut suites);
    assert_eq!(suites.len(), 1);
    assert_eq!(suites[0].attrs.get("tests").map(String::as_str), Some("5"));
    assert_eq!(
        suites[0].attrs.get("failures").map(String::as_str),
        Some("2")
    );

    // An unreadable input is a test case too, and not a success.
    let missing = cli("does-not-exist.yaml");
    let run2 = run(&["replay", "-o", "junit", &missing, &ok]);
    run2.expect_code(2);
    let root = parse_xml(&run2.stdout).expect("well-formed XML");
    let mut cases = Vec::new();
    root.all("testcase", &mut cases);
    assert_eq!(cases.len(), 2);
    assert!(
        cases[0].child("error").is_some() || cases[0].child("failure").is_some(),
        "{:?}",
        cases[0]
    );
}

// ---------------------------------------------------------------------------------------------
// 7. `rules`.
// ---------------------------------------------------------------------------------------------

#[test]
fn rules_json_lists_every_rule_of_the_rulebook_once() {
    let run = run(&["rules", "-o", "json"]);
    run.expect_code(0);
    let doc = run.json();
    let rules = doc
        .get("rules")
        .unwrap_or(&doc)
        .as_array()
        .expect("a list of rules");
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for rule in rules {
        let id = rule["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id: {rule}"));
        *seen.entry(id).or_default() += 1;
        for key in ["tier", "field", "check", "why", "source"] {
            assert!(
                rule[key].as_str().is_some_and(|s| !s.trim().is_empty()),
                "{id}: empty {key} in {rule}"
            );
        }
        let ops = strings(&rule["ops"]);
        assert!(!ops.is_empty(), "{id}: no ops");
        assert!(
            ops.iter().all(|o| ["C", "U", "S", "D"].contains(o)),
            "{id}: ops {ops:?}"
        );
        let tier = rule["tier"].as_str().unwrap_or("");
        let want = if id.starts_with('W') {
            "W"
        } else if id.starts_with('P') {
            "P"
        } else {
            "U"
        };
        assert_eq!(tier, want, "{id}: tier");
    }
    for id in RULE_IDS {
        assert_eq!(
            seen.get(id).copied(),
            Some(1),
            "{id} must be listed exactly once"
        );
    }
}

#[test]
fn rules_text_lists_every_rule() {
    let run = run(&["rules"]);
    run.expect_code(0);
    let firsts: BTreeSet<&str> = run
        .lines()
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for id in RULE_IDS {
        assert!(firsts.contains(id), "{id} missing from:\n{}", run.stdout);
    }
}

#[test]
fn an_empty_file_or_a_directory_without_fixtures_is_an_error_not_silence() {
    let dir = TempDir::new("empty");
    let empty_file = dir.file("empty.yaml", "# only a comment\n");
    let sub = dir.path().join("nothing-here");
    std::fs::create_dir_all(&sub).expect("the subdirectory is created");
    std::fs::write(sub.join("notes.txt"), "not a fixture").expect("the note is written");
    let sub = sub.display().to_string();
    let run = run(&["replay", "-o", "json", &empty_file, &sub]);
    run.expect_code(2);
    let doc: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(result(&doc, &empty_file)["error"], "holds no document");
    assert_eq!(
        result(&doc, &sub)["error"],
        "the directory holds no .json, .yaml or .yml file"
    );
    assert_summary(&doc, [2, 0, 0, 0, 2, 0]);
}

// ---------------------------------------------------------------------------------------------
// 8. `replay --server`: bounded concurrency, --timeout, --fail-fast, no progress bar in a pipe
//    (issue 10, item 9).
// ---------------------------------------------------------------------------------------------

/// `run`, and how long it took.
fn run_timed(args: &[&str]) -> (Run, Duration) {
    let started = Instant::now();
    let r = run(args);
    (r, started.elapsed())
}

/// A CA bundle for `--ca` (the binary's `certs`), in `dir`.
fn some_ca(dir: &TempDir) -> String {
    let out = dir.path().join("certs");
    let out = out.display().to_string();
    run(&["certs", "--out", &out]).expect_code(0);
    format!("{out}/ca.crt")
}

/// A loopback port where nothing listens (connection refused).
fn dead_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
    listener.local_addr().expect("an address").port()
}

/// A listener that takes connections (the kernel's backlog) and never answers.
fn black_hole() -> (TcpListener, u16) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
    let port = listener.local_addr().expect("an address").port();
    (listener, port)
}

/// `count` allowed Images, `00.yaml`, `01.yaml`, ..., in a new directory.
fn numbered_images(dir: &TempDir, count: usize) -> String {
    let sub = dir.path().join("images");
    std::fs::create_dir_all(&sub).expect("created");
    let text = read(&cli("image-ok.yaml"));
    for i in 0..count {
        std::fs::write(sub.join(format!("{i:02}.yaml")), &text).expect("written");
    }
    sub.display().to_string()
}

/// No progress bar (nor any terminal control) reached a piped stderr.
fn assert_no_progress(run: &Run) {
    for mark in ['\r', '\u{1b}'] {
        assert!(!run.stderr.contains(mark), "{:?}", run.stderr);
    }
    assert!(!run.stderr.contains("requests"), "{}", run.stderr);
}

#[test]
fn server_timeout_bounds_each_call_and_calls_overlap() {
    let tmp = TempDir::new("timeout");
    let ca = some_ca(&tmp);
    let dir = numbered_images(&tmp, 6);
    let (_listener, port) = black_hole();
    let url = format!("https://127.0.0.1:{port}/validate");
    let (r, took) = run_timed(&[
        "replay",
        "-o",
        "json",
        "--server",
        &url,
        "--ca",
        &ca,
        "--timeout",
        "1s",
        "--concurrency",
        "6",
        &dir,
    ]);
    r.expect_code(2);
    // One after the other, 6 calls of 1 s would take 6 s (and 60 s with the old fixed 10 s).
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let doc = r.json();
    let want: Vec<String> = (0..6).map(|i| format!("{dir}/{i:02}.yaml")).collect();
    assert_eq!(sources(&doc), want, "results in input order");
    for result in results(&doc) {
        assert_eq!(
            result["error"],
            format!("no answer from 127.0.0.1:{port} within 1s (--timeout)"),
            "{result}"
        );
    }
    assert_summary(&doc, [6, 0, 0, 0, 6, 0]);
    assert_no_progress(&r);
}

#[test]
fn server_unreachable_is_an_error_per_input_and_quick() {
    let tmp = TempDir::new("refused");
    let ca = some_ca(&tmp);
    let port = dead_port();
    let url = format!("https://127.0.0.1:{port}/validate");
    let (r, took) = run_timed(&["replay", "--server", &url, "--ca", &ca, CORPUS]);
    r.expect_code(2);
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let lines = r.lines();
    let (summary, verdicts) = lines.split_last().expect("a summary line");
    assert!(!verdicts.is_empty());
    for line in verdicts {
        assert!(
            line.starts_with(CORPUS)
                && line.contains(&format!(": ERROR: cannot connect to 127.0.0.1:{port}: ")),
            "{line}"
        );
    }
    let n = verdicts.len();
    assert_eq!(
        *summary,
        format!("{n} results: 0 allowed, 0 denied, 0 skipped, {n} errors, 0 mismatches")
    );
    assert!(r.stderr.is_empty(), "text mode in a pipe: {:?}", r.stderr);
}

#[test]
fn fail_fast_stops_sending_after_three_unreachable_in_a_row() {
    let tmp = TempDir::new("fail-fast");
    let ca = some_ca(&tmp);
    let dir = numbered_images(&tmp, 30);
    let (_listener, port) = black_hole();
    let url = format!("https://127.0.0.1:{port}/validate");
    let (r, took) = run_timed(&[
        "replay",
        "-o",
        "json",
        "--server",
        &url,
        "--ca",
        &ca,
        "--timeout",
        "1s",
        "--concurrency",
        "2",
        "--fail-fast",
        &dir,
    ]);
    r.expect_code(2);
    // Without --fail-fast: 30 calls of 1 s, 2 at a time, 15 s.
    assert!(took < Duration::from_secs(9), "took {took:?}");
    let doc = r.json();
    assert_eq!(sources(&doc).len(), 30, "every input keeps its result");
    assert_summary(&doc, [30, 0, 0, 0, 30, 0]);
    let errors: Vec<&str> = results(&doc)
        .iter()
        .map(|r| r["error"].as_str().unwrap_or(""))
        .collect();
    let timed_out = errors
        .iter()
        .filter(|e| e.starts_with("no answer from"))
        .count();
    let not_sent = errors
        .iter()
        .filter(|e| **e == "not sent: the webhook was unreachable 3 times in a row (--fail-fast)")
        .count();
    assert_eq!(timed_out + not_sent, 30, "{errors:?}");
    assert!((3..=6).contains(&timed_out), "{errors:?}");

    // Refused connections stop the run just as well.
    let dead = format!("https://127.0.0.1:{}/validate", dead_port());
    let r = run(&[
        "replay",
        "-o",
        "json",
        "--server",
        &dead,
        "--ca",
        &ca,
        "--fail-fast",
        &dir,
    ]);
    r.expect_code(2);
    let doc = r.json();
    let sent = results(&doc)
        .iter()
        .filter(|r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("cannot connect"))
        })
        .count();
    assert!((3..=3 + 8).contains(&sent), "{sent} sent of 30");
}

#[test]
fn server_flags_need_server() {
    let ok = cli("image-ok.yaml");
    for flag in [
        &["--fail-fast"][..],
        &["--timeout", "1s"],
        &["--concurrency", "2"],
    ] {
        let mut args = vec!["replay"];
        args.extend_from_slice(flag);
        args.push(&ok);
        let r = run(&args);
        r.expect_code(2);
        assert!(r.stderr.contains("--server"), "{flag:?}: {}", r.stderr);
    }
    let r = run(&[
        "replay",
        "--server",
        "https://127.0.0.1:1/",
        "--concurrency",
        "0",
        &ok,
    ]);
    r.expect_code(2);
    assert!(r.stderr.contains("--concurrency"), "{}", r.stderr);
}

/// `serve --dev` on free loopback ports until `/readyz` answers; the HTTPS URL and the CA.
fn start_webhook(dir: &TempDir) -> (common::binary::ChildGuard, String, String) {
    let certs = dir.path().join("serving");
    let certs_arg = certs.display().to_string();
    let log = dir.path().join("serve.log");
    for _ in 0..3 {
        let (port, probe_port) = common::binary::free_ports();
        let listen = format!("127.0.0.1:{port}");
        let probe = format!("127.0.0.1:{probe_port}");
        let mut child = common::binary::spawn_binary(
            &[
                "serve",
                "--dev",
                "--cert-dir",
                &certs_arg,
                "--listen",
                &listen,
                "--probe-addr",
                &probe,
                "--log-level",
                "warn",
            ],
            &log,
        );
        let probe: SocketAddr = probe.parse().expect("an address");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if common::binary::plain_status(probe, "/readyz") == Some(200) {
                let ca = certs.join("ca.crt").display().to_string();
                return (child, format!("https://{listen}/validate"), ca);
            }
            if matches!(child.0.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!(
            "note: the webhook did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    panic!("the webhook did not start in three tries");
}

#[test]
fn server_results_are_in_input_order_and_as_sequential_ones() {
    let tmp = TempDir::new("live");
    let (_webhook, url, ca) = start_webhook(&tmp);
    let local = run(&[
        "replay", "-o", "json", "--expect", SUITES[0], "--expect", SUITES[1], CORPUS,
    ]);
    let sequential = run(&[
        "replay",
        "-o",
        "json",
        "--server",
        &url,
        "--ca",
        &ca,
        "--concurrency",
        "1",
        "--expect",
        SUITES[0],
        "--expect",
        SUITES[1],
        CORPUS,
    ]);
    let concurrent = run(&[
        "replay",
        "-o",
        "json",
        "--server",
        &url,
        "--ca",
        &ca,
        "--concurrency",
        "8",
        "--expect",
        SUITES[0],
        "--expect",
        SUITES[1],
        CORPUS,
    ]);
    local.expect_code(0);
    sequential.expect_code(0);
    concurrent.expect_code(0);
    assert_eq!(concurrent.stdout, sequential.stdout);
    assert_eq!(concurrent.stderr, sequential.stderr);
    // The notes of JSON mode, and nothing else: no progress bar in a pipe.
    assert_eq!(concurrent.stderr, local.stderr);
    assert_no_progress(&concurrent);
    let (remote, local) = (concurrent.json(), local.json());
    assert_eq!(sources(&remote), sources(&local));
    assert_eq!(remote["summary"], local["summary"]);
    for (r, l) in results(&remote).iter().zip(results(&local)) {
        for key in [
            "uid",
            "operation",
            "allowed",
            "status",
            "warnings",
            "mismatches",
        ] {
            assert_eq!(r[key], l[key], "{key} of {}", l["source"]);
        }
    }

    // Text output through a pipe: no progress bar either.
    let text = run(&[
        "replay",
        "--server",
        &url,
        "--ca",
        &ca,
        &cli("image-ok.yaml"),
    ]);
    text.expect_code(0);
    assert!(text.stderr.is_empty(), "{:?}", text.stderr);
}

// ---------------------------------------------------------------------------------------------
// 9. `--fail-on-warn` and the exit codes in `replay --help` (issue 10, item 10).
// ---------------------------------------------------------------------------------------------

#[test]
fn fail_on_warn_exits_1_when_a_warning_fires() {
    let warned = cli("image-blocked-quay.yaml");
    let ok = cli("image-ok.yaml");
    run(&["replay", &warned]).expect_code(0);
    run(&["replay", "--fail-on-warn", &ok]).expect_code(0);

    let text = run(&["replay", "--fail-on-warn", &ok, &warned]);
    text.expect_code(1);
    assert_eq!(
        text_block(&text, &warned),
        [format!("Warning: {W3_QUAY}").as_str()]
    );
    let lines = text.lines();
    assert_eq!(
        lines[lines.len() - 2..],
        [
            "WARNINGS: 1 result with warnings, which fail the run (--fail-on-warn)",
            "2 results: 2 allowed, 0 denied, 0 skipped, 0 errors, 0 mismatches",
        ]
    );

    let json_run = run(&["replay", "-o", "json", "--fail-on-warn", &warned]);
    json_run.expect_code(1);
    let doc = json_run.json();
    assert_eq!(result(&doc, &warned)["allowed"], true);
    assert_summary(&doc, [1, 1, 0, 0, 0, 0]);

    let junit = run(&["replay", "-o", "junit", "--fail-on-warn", &ok, &warned]);
    junit.expect_code(1);
    let root = parse_xml(&junit.stdout).expect("well-formed XML");
    let mut cases = Vec::new();
    root.all("testcase", &mut cases);
    assert!(cases[0].child("failure").is_none());
    let failure = cases[1]
        .child("failure")
        .expect("a failure for the warning");
    assert_eq!(
        failure.attrs.get("message").cloned(),
        Some(format!("warnings (--fail-on-warn): {W3_QUAY}"))
    );

    // A denial still outranks nothing: an error (2) outranks the warning's 1.
    let both = run(&[
        "replay",
        "--fail-on-warn",
        &warned,
        &cli("does-not-exist.yaml"),
    ]);
    both.expect_code(2);
}

#[test]
fn replay_help_lists_the_exit_codes() {
    let help = run(&["replay", "--help"]);
    help.expect_code(0);
    let out = &help.stdout;
    let at = out.find("Exit status:").unwrap_or_else(|| panic!("{out}"));
    let table = &out[at..];
    for code in ["  0  ", "  1  ", "  2  ", "  3  "] {
        assert!(table.contains(code), "{code:?} in:\n{table}");
    }
    assert!(
        table.contains("--fail-on-warn, also any warning"),
        "{table}"
    );
    for flag in [
        "--fail-on-warn",
        "--fail-fast",
        "--timeout",
        "--concurrency",
    ] {
        assert!(out.contains(flag), "{flag} in:\n{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Directory walking: symbolic link loops (issue 10, item 11).
// ---------------------------------------------------------------------------------------------

#[test]
fn a_symbolic_link_loop_is_one_error_and_each_file_one_result() {
    let tmp = TempDir::new("loop");
    let root = tmp.path().join("fixtures");
    std::fs::create_dir_all(root.join("sub")).expect("created");
    std::fs::write(root.join("a.yaml"), read(&cli("image-ok.yaml"))).expect("written");
    std::os::unix::fs::symlink("..", root.join("sub/back")).expect("a link");
    // A link to a directory that is not an ancestor is followed.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).expect("created");
    std::fs::write(other.join("b.yaml"), read(&cli("image-ok.yaml"))).expect("written");
    std::os::unix::fs::symlink(&other, root.join("sub/other")).expect("a link");
    let root_arg = root.display().to_string();

    let r = run(&["replay", "-o", "json", &root_arg]);
    r.expect_code(2);
    let doc = r.json();
    let (a, back, b) = (
        format!("{root_arg}/a.yaml"),
        format!("{root_arg}/sub/back"),
        format!("{root_arg}/sub/other/b.yaml"),
    );
    assert_eq!(sources(&doc), [a.as_str(), back.as_str(), b.as_str()]);
    assert_eq!(result(&doc, &a)["allowed"], true);
    assert_eq!(result(&doc, &b)["allowed"], true);
    assert_eq!(
        result(&doc, &back)["error"],
        format!("symbolic link loop: {back} leads back to {root_arg}; not followed")
    );
    assert_summary(&doc, [3, 2, 0, 0, 1, 0]);
}

// ---------------------------------------------------------------------------------------------
// 11. Messages (issue 10, item 12).
// ---------------------------------------------------------------------------------------------

const MALFORMED_MESSAGE: &str =
    "malformed YAML: illegal placement of ':' indicator at line 4, column 9";

#[test]
fn a_yaml_error_is_one_line_naming_the_place_and_its_snippet_names_the_file() {
    let bad = cli("malformed.yaml");
    let located = format!("{bad}:4:9");

    let json_run = run(&["replay", "-o", "json", &bad]);
    json_run.expect_code(2);
    let doc = json_run.json();
    let r = result(&doc, &bad);
    assert_eq!(r["error"], MALFORMED_MESSAGE);
    let detail = r["error_detail"].as_str().expect("error_detail");
    assert!(detail.contains(&located), "{detail}");
    assert!(detail.contains("4 | metadata: {name: cluster}"), "{detail}");
    assert!(
        !detail.contains("<input>") && !detail.contains("error:"),
        "{detail}"
    );

    let text = run(&["replay", &bad]);
    text.expect_code(2);
    assert_eq!(
        text.lines()[0],
        format!("{bad}: ERROR: {MALFORMED_MESSAGE}")
    );
    assert!(text.lines()[1].starts_with("    ") && text.lines()[1].contains(&located));
    assert!(!text.stdout.contains("<input>"), "{}", text.stdout);
    assert_eq!(
        text.lines().last().copied(),
        Some("1 result: 0 allowed, 0 denied, 0 skipped, 1 error, 0 mismatches")
    );

    let junit = run(&["replay", "-o", "junit", &bad]);
    junit.expect_code(2);
    let root = parse_xml(&junit.stdout).expect("well-formed XML");
    let mut cases = Vec::new();
    root.all("testcase", &mut cases);
    let error = cases[0].child("error").expect("an <error>");
    assert_eq!(
        error.attrs.get("message").map(String::as_str),
        Some(MALFORMED_MESSAGE)
    );
    assert!(cases[0].child("system-err").is_some(), "{}", junit.stdout);
    let err_at = junit.stdout.find("<system-err>").expect("system-err");
    assert!(
        junit.stdout[err_at..].contains(&located),
        "{}",
        junit.stdout
    );
}

#[test]
fn a_yaml_bomb_is_said_in_words() {
    let tmp = TempDir::new("bomb");
    let mut text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n".to_owned();
    for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e")] {
        let items = vec![format!("*{prev}"); 10].join(", ");
        text.push_str(&format!("{name}: &{name} [{items}]\n"));
    }
    let bomb = tmp.file("bomb.yaml", &text);
    let r = run(&["replay", "-o", "json", &bomb]);
    r.expect_code(2);
    let doc = r.json();
    let result = result(&doc, &bomb);
    assert_eq!(
        result["error"],
        "too many YAML nodes (alias expansion?): limit 250000"
    );
    assert!(
        result["error_detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("{bomb}:6:12"))),
        "{result}"
    );
}

#[test]
fn the_summary_line_counts_in_the_singular() {
    let r = run(&["replay", &cli("image-ok.yaml")]);
    r.expect_code(0);
    assert_eq!(
        r.lines().last().copied(),
        Some("1 result: 1 allowed, 0 denied, 0 skipped, 0 errors, 0 mismatches")
    );
    let suite = cli("suite-unmatched.yaml");
    let r = run(&["replay", "--expect", &suite, &cli("image-ok.yaml")]);
    r.expect_code(1);
    assert_eq!(
        r.lines().last().copied(),
        Some("1 result: 1 allowed, 0 denied, 0 skipped, 0 errors, 1 mismatch")
    );
}

#[test]
fn rules_explains_its_operation_codes() {
    let legend =
        "OPS   the operations it judges: C create, U update, S status subresource update, D delete";
    let text = run(&["rules"]);
    text.expect_code(0);
    assert!(
        text.lines()[..6].contains(&format!("#   {legend}").as_str()),
        "{}",
        text.stdout
    );
    let help = run(&["rules", "--help"]);
    help.expect_code(0);
    assert!(help.stdout.contains(legend), "{}", help.stdout);
    assert!(
        help.stdout
            .contains("C create, U update, S status subresource update, D delete"),
        "{}",
        help.stdout
    );
}

/// Runs the binary with `args`; kills it and fails the test when it is still running after
/// `limit` (a server that should have refused to start).
fn run_bounded(args: &[&str], limit: Duration) -> Run {
    let mut child = common::binary::ChildGuard(
        Command::new(BIN)
            .args(args)
            .current_dir(ROOT)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts"),
    );
    let status = common::binary::wait_exit_blocking(&mut child.0, limit)
        .unwrap_or_else(|| panic!("{args:?} still running after {limit:?}"));
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.0.stdout.take() {
        out.read_to_string(&mut stdout).expect("stdout is UTF-8");
    }
    if let Some(mut err) = child.0.stderr.take() {
        err.read_to_string(&mut stderr).expect("stderr is UTF-8");
    }
    Run {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        code: status.code().expect("the binary exits (no signal)"),
        stdout,
        stderr,
    }
}

#[test]
fn serve_without_certificates_says_how_to_get_them() {
    let tmp = TempDir::new("no-certs");
    let dir = tmp.path().join("nothing").display().to_string();
    let r = run_bounded(
        &["serve", "--cert-dir", &dir, "--listen", "127.0.0.1:0"],
        Duration::from_secs(10),
    );
    r.expect_code(2);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr
            .starts_with(&format!("error: {dir}/tls.crt does not exist")),
        "{}",
        r.stderr
    );
    for hint in [
        "--dev",
        "image-config-webhook certs --out DIR",
        "--cert-dir DIR",
    ] {
        assert!(r.stderr.contains(hint), "{hint} in: {}", r.stderr);
    }
}

#[test]
fn an_invalid_log_level_stops_serve_at_start() {
    let tmp = TempDir::new("log-level");
    let dir = tmp.path().join("certs").display().to_string();
    for (level, says) in [
        ("image_config_webhook=loud", "is not a log filter"),
        ("warning", "\"warning\" is not a level"),
    ] {
        let r = run_bounded(
            &[
                "serve",
                "--dev",
                "--cert-dir",
                &dir,
                "--listen",
                "127.0.0.1:0",
                "--log-level",
                level,
            ],
            Duration::from_secs(10),
        );
        r.expect_code(2);
        assert!(
            r.stderr.starts_with(&format!(
                "error: invalid value '{level}' for '--log-level <FILTER>'"
            )),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(says), "{}", r.stderr);
    }
}

/// What the binary wrote to its terminal when run with `args` under `script` (a pseudo-terminal
/// for stdin, stdout and stderr, with stdout sent to /dev/null). `script` is util-linux's
/// (Debian's essential package bsdutils): a machine without it fails the test, never skips it.
fn terminal_output(args: &[&str]) -> String {
    let quoted: Vec<String> = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("{} >/dev/null", quoted.join(" ")),
            "/dev/null",
        ])
        .current_dir(ROOT)
        .stdin(Stdio::null())
        .output()
        .expect("run `script` (util-linux; Debian package bsdutils) to give the binary a terminal");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_progress_bar_shows_on_a_terminal_for_text_output_only() {
    let tmp = TempDir::new("tty");
    let ca = some_ca(&tmp);
    let dir = numbered_images(&tmp, 4);
    let url = format!("https://127.0.0.1:{}/validate", dead_port());
    let base = ["replay", "--server", &url, "--ca", &ca];
    let text = terminal_output(&[&base[..], &[dir.as_str()]].concat());
    assert!(text.contains("/4 requests"), "{text:?}");
    let json = terminal_output(&[&base[..], &["-o", "json", dir.as_str()]].concat());
    assert!(!json.contains("requests"), "{json:?}");
}
