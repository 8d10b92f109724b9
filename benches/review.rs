//! Speed of `review`: raw AdmissionReview bytes in, response bytes out.
//!
//! Cases (see BENCHMARKS.md for the numbers and how to read them):
//!
//! - `a_typical`: a realistic cluster config with about a dozen entries.
//! - `b_largest`: the largest legal object, as CREATE (`create`), as an UPDATE whose `oldObject`
//!   equals `object` (`update_unchanged`), as CREATE with an allow-list that covers everything
//!   (`create_quiet`, no warnings), and as an unchanged UPDATE of a stored object whose 1024
//!   allow-list entries all break R2 (`update_ratcheted`: every error is ratcheted into W18, so
//!   every ratchet comparison runs).
//! - `*_fresh_globs`: (a) and (b) CREATE with `allowedRegistriesForImport` globs never seen
//!   before (a new salt per iteration, body built outside the timing). Globs are matched in
//!   place, with nothing compiled or cached, so these should cost what `review` costs; they
//!   stay to show it (they measured the cost of a miss in the former cache of compiled globs).
//! - `c_curve`: the construction of `b_largest` at 1, 10, 100 and 1024 entries per list;
//!   `c_curve_quiet`: the same with an allow-list that covers everything (no warnings).
//!
//! - `d_slope`: one list at a time, at 100, 1 000 and 10 000 entries (past `maxItems`, as a
//!   hostile request may be), for every list of the object: `registrySources.allowedRegistries`,
//!   `blockedRegistries`, `insecureRegistries` (each outside a one-entry allow-list: a warning
//!   per entry), `containerRuntimeSearchRegistries`, `allowedRegistriesForImport` (globs,
//!   ports and hosts, none admitting the release registries: W15 refuses), and
//!   `externalRegistryHostnames` in spec and (on a status UPDATE) in status. Throughput is in
//!   entries: the time per entry must stay flat from 1x to 100x. `scope_index` pits targets with
//!   many dots and slashes against keys of every length (1x, 10x, 100x the bytes), the worst
//!   case of the allow-list index, with throughput in bytes.
//!
//! Every case also times a no-op baseline on the same bytes (`serde_json::from_slice` into a
//! `Value`, then `serde_json::to_vec` of a small response), so that results on a shared, noisy
//! machine can be read as ratios measured in the same run.
//!
//! Request bodies are built before timing; only `review(&body, &policy)` (or the baseline) is
//! inside the timed closure. Each body is checked once, outside the timed loop, to be answered
//! `allowed: true`.
//!
//! `REVIEW_BENCH_BODIES=DIR` also writes the (b) bodies there, for `examples/review_file.rs`.
//!
//! Rerun: `cargo bench --bench review` (filter with e.g. `cargo bench --bench review -- c_curve`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use image_config_webhook::{Policy, review};
use serde_json::{Value, json};

/// The maximum length of a `registrySources` scope (R4).
const SCOPE_LEN: usize = 256;
/// The maximum number of entries of a `registrySources` list (R5).
const MAX_ENTRIES: usize = 1024;
/// The sizes of the cost curve, in entries per list.
const CURVE: [usize; 4] = [1, 10, 100, MAX_ENTRIES];

/// Repository path components that exercise every separator of the R2 path grammar
/// (`.`, `_`, `__`, `-`).
const COMPONENTS: [&str; 6] = [
    "openshift4",
    "ose-cli",
    "team_a.images",
    "ubi9__minimal",
    "app-name.v2",
    "x86-64",
];

/// A distinct, valid scope of exactly [`SCOPE_LEN`] characters: `host/path/...`, where the host
/// starts with `prefix` and `i`, and the path uses every separator of the R2 grammar.
fn long_scope(prefix: &str, i: usize) -> String {
    let mut s = format!("{prefix}{i:04}.example.com");
    let mut k = i;
    while s.len() + 1 + COMPONENTS[k % COMPONENTS.len()].len() + 1 < SCOPE_LEN {
        s.push('/');
        s.push_str(COMPONENTS[k % COMPONENTS.len()]);
        k += 1;
    }
    // Pad to the exact length with a last component of lowercase letters.
    s.push('/');
    while s.len() < SCOPE_LEN {
        s.push('z');
    }
    debug_assert_eq!(s.len(), SCOPE_LEN);
    s
}

/// A distinct `hostname` for `containerRuntimeSearchRegistries`: no path allowed there, so the
/// length is in the labels (63, 63, 63, 43 characters) for a 253-character host, the RFC 1123
/// maximum.
fn long_search_host(i: usize) -> String {
    let label = |c: char, n: usize| std::iter::repeat_n(c, n).collect::<String>();
    let host = format!(
        "{}.{}.{}.{}.s{i:04}.example.com",
        label('a', 63),
        label('b', 63),
        label('c', 63),
        label('d', 43)
    );
    debug_assert_eq!(host.len(), 253);
    host
}

/// The `i`-th `allowedRegistriesForImport` entry: the release registries first (so that W15 is
/// quiet), then a mix of literal hosts, `*.domain` globs and `host:port` entries.
fn import_entry(i: usize) -> Value {
    match i {
        0 => json!({"domainName": "quay.io"}),
        1 => json!({"domainName": "registry.redhat.io"}),
        _ => match i % 3 {
            0 => json!({"domainName": format!("m{i:04}.example.com")}),
            1 => json!({"domainName": format!("*.d{i:04}.example.com")}),
            _ => json!({"domainName": format!("h{i:04}.example.com:5000"), "insecure": true}),
        },
    }
}

/// The entries of a quiet allow-list: a wildcard that covers every other host of the object
/// (so W4 and W5 stay quiet), the release registries (W1) and the internal registry (W2).
const QUIET_ALLOWED: [&str; 4] = [
    "*.example.com",
    "quay.io",
    "registry.redhat.io",
    "image-registry.openshift-image-registry.svc:5000",
];

/// The Image of case (b) with `n` entries in each filled list:
///
/// - `registrySources.allowedRegistries`: `n` scopes of 256 characters (`a0000.example.com/...`);
///   `blockedRegistries` is absent (R1 forbids both).
/// - `registrySources.insecureRegistries`: `n` other scopes of 256 characters
///   (`i0000.example.com/...`).
/// - `registrySources.containerRuntimeSearchRegistries`: `n` hostnames of 253 characters.
/// - `allowedRegistriesForImport`: `n` entries.
/// - `externalRegistryHostnames` and `additionalTrustedCA`: one each, as in (a).
///
/// Every insecure and search entry is outside the allow-list, so each draws a warning (W4, W5),
/// plus W1 and W2: the verdict has `2n + 3` warnings, the most this shape can produce (the
/// answer carries at most `MAX_WARNINGS` of them plus a summary, from 10 entries per list up).
/// With `quiet`, the first (up to) four allow-list entries are [`QUIET_ALLOWED`] instead, which
/// cover everything else: no warning at all from 4 entries per list up.
fn large_image(n: usize, quiet: bool) -> Value {
    let short = if quiet { n.min(QUIET_ALLOWED.len()) } else { 0 };
    let allowed: Vec<String> = QUIET_ALLOWED[..short]
        .iter()
        .map(|s| (*s).to_owned())
        .chain((short..n).map(|i| long_scope("a", i)))
        .collect();
    let insecure: Vec<String> = (0..n).map(|i| long_scope("i", i)).collect();
    let search: Vec<String> = (0..n).map(long_search_host).collect();
    let import: Vec<Value> = (0..n).map(import_entry).collect();
    json!({
        "apiVersion": "config.openshift.io/v1",
        "kind": "Image",
        "metadata": {"name": "cluster", "uid": "5b2a9bd4-5d6c-4a6b-9a43-8a5f3e7a9c01",
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {
            "additionalTrustedCA": {"name": "registry-ca"},
            "allowedRegistriesForImport": import,
            "externalRegistryHostnames": ["registry.apps.example.com"],
            "registrySources": {
                "allowedRegistries": allowed,
                "insecureRegistries": insecure,
                "containerRuntimeSearchRegistries": search,
            },
        },
    })
}

/// Case (b) as stored before R2 existed: every allow-list entry carries a tag (`...:v1`, still
/// 256 characters), which R2 rejects; an unchanged UPDATE ratchets each error into W18.
fn ratcheted_image(n: usize) -> Value {
    let mut image = large_image(n, false);
    let tagged: Vec<String> = (0..n)
        .map(|i| {
            let mut s = long_scope("a", i);
            s.replace_range(SCOPE_LEN - 3.., ":v1");
            s
        })
        .collect();
    image["spec"]["registrySources"]["allowedRegistries"] = json!(tagged);
    image
}

/// The Image of case (a): a realistic cluster configuration, a dozen entries in all.
fn typical_image() -> Value {
    json!({
        "apiVersion": "config.openshift.io/v1",
        "kind": "Image",
        "metadata": {"name": "cluster", "uid": "5b2a9bd4-5d6c-4a6b-9a43-8a5f3e7a9c01",
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {
            "additionalTrustedCA": {"name": "registry-ca"},
            "allowedRegistriesForImport": [
                {"domainName": "quay.io"},
                {"domainName": "registry.redhat.io"},
                {"domainName": "registry.corp.example.com"},
                {"domainName": "*.mirror.corp.example.com:5000"},
            ],
            "externalRegistryHostnames": ["default-route-openshift-image-registry.apps.example.com"],
            "registrySources": {
                "allowedRegistries": [
                    "quay.io",
                    "registry.redhat.io",
                    "image-registry.openshift-image-registry.svc:5000",
                    "registry.corp.example.com",
                    "mirror.corp.example.com:5000/ocp4/openshift4",
                ],
                "insecureRegistries": ["mirror.corp.example.com:5000/ocp4/openshift4"],
                "containerRuntimeSearchRegistries": [
                    "registry.corp.example.com",
                    "registry.redhat.io",
                ],
            },
        },
    })
}

/// `image` with every glob of `allowedRegistriesForImport` made unique by `salt`
/// (`*.d0004.example.com` becomes `*.x<salt>.d0004.example.com`): a request whose globs the
/// webhook has not seen before, so no cache of compiled globs can answer it.
fn with_fresh_globs(image: &Value, salt: u64) -> Value {
    let mut image = image.clone();
    if let Some(list) = image["spec"]["allowedRegistriesForImport"].as_array_mut() {
        for entry in list {
            if let Some(glob) = entry["domainName"]
                .as_str()
                .and_then(|d| d.strip_prefix("*."))
            {
                entry["domainName"] = json!(format!("*.x{salt}.{glob}"));
            }
        }
    }
    image
}

/// An AdmissionReview v1 around `object` (and `oldObject` for an UPDATE), serialized.
fn admission_review(operation: &str, object: &Value, old_object: Option<&Value>) -> Vec<u8> {
    let doc = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "config.openshift.io", "version": "v1", "kind": "Image"},
            "resource": {"group": "config.openshift.io", "version": "v1", "resource": "images"},
            "requestKind": {"group": "config.openshift.io", "version": "v1", "kind": "Image"},
            "requestResource": {"group": "config.openshift.io", "version": "v1", "resource": "images"},
            "name": "cluster",
            "operation": operation,
            "userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": old_object,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": if operation == "CREATE" { "CreateOptions" } else { "UpdateOptions" }},
        },
    });
    serde_json::to_vec(&doc).expect("a JSON value serializes")
}

fn create(object: &Value) -> Vec<u8> {
    admission_review("CREATE", object, None)
}

fn update_unchanged(object: &Value) -> Vec<u8> {
    admission_review("UPDATE", object, Some(object))
}

/// Outside the timed loop: the body is answered, allowed, and the answer is what it should be.
/// Prints the body size and the number of warnings, for the report.
fn check_allowed(label: &str, body: &[u8], policy: &Policy) {
    let reviewed = review(body, policy).unwrap_or_else(|e| panic!("{label}: review failed: {e}"));
    let response: Value = serde_json::from_slice(&reviewed.body)
        .unwrap_or_else(|e| panic!("{label}: response is not JSON: {e}"));
    assert_eq!(
        response["response"]["allowed"],
        Value::Bool(true),
        "{label}: not allowed: {}",
        String::from_utf8_lossy(&reviewed.body)
    );
    let text = String::from_utf8_lossy(&reviewed.body);
    assert!(text.contains(r#""allowed":true"#), "{label}: {text}");
    let warnings = response["response"]["warnings"]
        .as_array()
        .map_or(0, Vec::len);
    eprintln!(
        "[sanity] {label}: request {} bytes, response {} bytes, allowed, {warnings} warnings",
        body.len(),
        reviewed.body.len(),
    );
}

/// The no-op baseline: parse the same bytes into a `Value` and serialize a small answer.
fn baseline(body: &[u8]) -> Vec<u8> {
    let doc: Value = serde_json::from_slice(body).expect("valid JSON");
    let uid = doc["request"]["uid"].as_str().unwrap_or("");
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": true, "status": {"code": 200, "status": "Success"}},
    }))
    .expect("a JSON value serializes")
}

fn bench_typical(c: &mut Criterion) {
    let policy = Policy::default();
    let body = create(&typical_image());
    check_allowed("a_typical", &body, &policy);
    let mut group = c.benchmark_group("a_typical");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(100);
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(&body))));
    group.bench_function("review", |b| {
        b.iter(|| review(black_box(&body), black_box(&policy)))
    });
    let image = typical_image();
    check_allowed(
        "a_typical/fresh_globs",
        &create(&with_fresh_globs(&image, 0)),
        &policy,
    );
    let mut salt = 0;
    group.bench_function("review_fresh_globs", |b| {
        b.iter_batched(
            || {
                salt += 1;
                create(&with_fresh_globs(&image, salt))
            },
            |body| review(black_box(&body), black_box(&policy)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

#[allow(clippy::disallowed_methods)] // writes the bodies when asked (REVIEW_BENCH_BODIES)
fn bench_largest(c: &mut Criterion) {
    let policy = Policy::default();
    let image = large_image(MAX_ENTRIES, false);
    let quiet = large_image(MAX_ENTRIES, true);
    let bodies = [
        ("create", create(&image)),
        ("update_unchanged", update_unchanged(&image)),
        ("create_quiet", create(&quiet)),
        (
            "update_ratcheted",
            update_unchanged(&ratcheted_image(MAX_ENTRIES)),
        ),
    ];
    for (label, body) in &bodies {
        check_allowed(&format!("b_largest/{label}"), body, &policy);
        // For `examples/review_file.rs` under callgrind: the bodies, as files.
        if let Some(dir) = std::env::var_os("REVIEW_BENCH_BODIES") {
            let file = std::path::Path::new(&dir).join(format!("b_{label}.json"));
            std::fs::write(&file, body).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
    let mut group = c.benchmark_group("b_largest");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    for (label, body) in &bodies {
        group.bench_with_input(BenchmarkId::new("baseline", label), body, |b, body| {
            b.iter(|| baseline(black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("review", label), body, |b, body| {
            b.iter(|| review(black_box(body), black_box(&policy)))
        });
    }
    check_allowed(
        "b_largest/create_fresh_globs",
        &create(&with_fresh_globs(&image, 0)),
        &policy,
    );
    let mut salt = 0;
    group.bench_function(BenchmarkId::new("review", "create_fresh_globs"), |b| {
        b.iter_batched(
            || {
                salt += 1;
                create(&with_fresh_globs(&image, salt))
            },
            |body| review(black_box(&body), black_box(&policy)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn bench_curve(c: &mut Criterion) {
    let policy = Policy::default();
    for (name, quiet) in [("c_curve", false), ("c_curve_quiet", true)] {
        let mut group = c.benchmark_group(name);
        group
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(20);
        for n in CURVE {
            let body = create(&large_image(n, quiet));
            check_allowed(&format!("{name}/{n}"), &body, &policy);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new("baseline", n), &body, |b, body| {
                b.iter(|| baseline(black_box(body)))
            });
            group.bench_with_input(BenchmarkId::new("review", n), &body, |b, body| {
                b.iter(|| review(black_box(body), black_box(&policy)))
            });
        }
        group.finish();
    }
}

/// The sizes of the slope, in entries of one list.
const SLOPE: [usize; 3] = [100, 1_000, 10_000];

/// An Image whose `spec` is `spec`.
fn image_with(spec: Value) -> Value {
    json!({
        "apiVersion": "config.openshift.io/v1",
        "kind": "Image",
        "metadata": {"name": "cluster", "uid": "5b2a9bd4-5d6c-4a6b-9a43-8a5f3e7a9c01",
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": spec,
    })
}

/// The request of `d_slope` for `field` with `n` entries.
fn slope_body(field: &str, n: usize) -> Vec<u8> {
    let scopes = |prefix: &str| -> Vec<String> {
        (0..n)
            .map(|i| format!("{prefix}{i}.example.com/ns/app"))
            .collect()
    };
    let hosts = |prefix: &str| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}.example.com")).collect()
    };
    let spec = match field {
        "allowedRegistries" => json!({"registrySources": {"allowedRegistries": scopes("a")}}),
        "blockedRegistries" => json!({"registrySources": {"blockedRegistries": scopes("b")}}),
        "insecureRegistries" => json!({"registrySources": {
            "allowedRegistries": ["quay.io"],
            "insecureRegistries": scopes("i"),
        }}),
        "containerRuntimeSearchRegistries" => {
            json!({"registrySources": {"containerRuntimeSearchRegistries": hosts("s")}})
        }
        "allowedRegistriesForImport" => {
            let entries: Vec<Value> = (0..n)
                .map(|i| match i % 3 {
                    0 => json!({"domainName": format!("*.d{i}.example.com")}),
                    1 => json!({"domainName": format!("h{i}.example.com:5000"), "insecure": true}),
                    _ => json!({"domainName": format!("m{i}.example.?om:*")}),
                })
                .collect();
            json!({"allowedRegistriesForImport": entries})
        }
        "externalRegistryHostnames" => json!({"externalRegistryHostnames": hosts("r")}),
        "status.externalRegistryHostnames" => {
            let old = image_with(json!({}));
            let mut new = old.clone();
            new["status"] = json!({"externalRegistryHostnames": hosts("r")});
            // The status subresource, as the registry operator writes it.
            let mut doc: Value =
                serde_json::from_slice(&admission_review("UPDATE", &new, Some(&old)))
                    .expect("a review parses back");
            doc["request"]["subResource"] = json!("status");
            doc["request"]["userInfo"] = json!({"username": "system:serviceaccount:openshift-image-registry:cluster-image-registry-operator"});
            return serde_json::to_vec(&doc).expect("a JSON value serializes");
        }
        other => panic!("no slope case for {other}"),
    };
    create(&image_with(spec))
}

/// The worst case of the allow-list index at scale `k`: `k` wildcard and `k` plain allow-list
/// entries of every length from 1 to `k`, none covering anything, and `k` insecure registries
/// of about `2k` characters, all dots and slashes (each a W4 warning). A lookup per parent
/// that hashed the whole parent cost targets times keys; now each target is read once.
fn scope_index_body(k: usize) -> Vec<u8> {
    let mut allowed: Vec<String> = (1..=k).map(|l| format!("*.{}", "b".repeat(l))).collect();
    allowed.extend((1..=k).map(|l| "c".repeat(l)));
    let insecure: Vec<String> = (0..k)
        .map(|i| format!("{}{i}", "a.".repeat(k / 2) + &"a/".repeat(k / 2)))
        .collect();
    create(&image_with(json!({"registrySources": {
        "allowedRegistries": allowed,
        "insecureRegistries": insecure,
    }})))
}

/// Outside the timed loop: the body is answered; prints its size and verdict.
fn check_answered(label: &str, body: &[u8], policy: &Policy) {
    let reviewed = review(body, policy).unwrap_or_else(|e| panic!("{label}: review failed: {e}"));
    eprintln!(
        "[sanity] {label}: request {} bytes, response {} bytes, allowed {}, {} warnings",
        body.len(),
        reviewed.body.len(),
        reviewed.verdict.allowed,
        reviewed.verdict.warnings.len(),
    );
}

fn bench_slope(c: &mut Criterion) {
    let policy = Policy::default();
    let mut group = c.benchmark_group("d_slope");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    for field in [
        "allowedRegistries",
        "blockedRegistries",
        "insecureRegistries",
        "containerRuntimeSearchRegistries",
        "allowedRegistriesForImport",
        "externalRegistryHostnames",
        "status.externalRegistryHostnames",
    ] {
        for n in SLOPE {
            let body = slope_body(field, n);
            check_answered(&format!("d_slope/{field}/{n}"), &body, &policy);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(field, n), &body, |b, body| {
                b.iter(|| review(black_box(body), black_box(&policy)))
            });
        }
    }
    // 1x, 10x and 100x the bytes: k grows by sqrt(10).
    for k in [100, 316, 1000] {
        let body = scope_index_body(k);
        check_answered(&format!("d_slope/scope_index/{k}"), &body, &policy);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("scope_index", k), &body, |b, body| {
            b.iter(|| review(black_box(body), black_box(&policy)))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_typical,
    bench_largest,
    bench_curve,
    bench_slope
);
criterion_main!(benches);
