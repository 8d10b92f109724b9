//! Unit tests of the node model: one line per case where a macro fits.

use serde_json::{Value, json};

use super::*;
use crate::image::decode;

const B: &str = "spec.registrySources.blockedRegistries";
const A: &str = "spec.registrySources.allowedRegistries";
const I: &str = "spec.registrySources.insecureRegistries";
const HEX64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn image(registry_sources: Value) -> Image {
    decode(&json!({"kind": "Image", "spec": {"registrySources": registry_sources}})).image
}

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// `(allowed, insecure, deciding field or "-", value or "-")` of a pull.
fn pull_of(node: &Node<'_>, r: &str) -> (bool, bool, String, String) {
    let p = node.pull(&reference(r));
    let (field, value) = p.decided_by.map_or(("-".to_owned(), "-".to_owned()), |d| {
        (d.field, d.value.unwrap_or_else(|| "-".to_owned()))
    });
    (p.allowed, p.insecure, field, value)
}

/// `sources; reference => allowed, insecure, field, value` (field relative to registrySources).
macro_rules! pulls {
    ($($rs:expr; $r:expr => $allowed:expr, $insecure:expr, $field:expr, $value:expr);* $(;)?) => {
        $(
            let img = image($rs);
            let settings = Settings::default();
            let node = Node::new(&img, &settings);
            let field = if $field == "-" { "-".to_owned() } else { format!("spec.registrySources.{}", $field) };
            assert_eq!(pull_of(&node, $r), ($allowed, $insecure, field, $value.to_owned()), "{} under {}", $r, $rs);
        )*
    };
}

#[test]
fn pulls_use_the_longest_prefix_and_the_policy_scopes() {
    pulls! {
        json!({}); "quay.io/a/b" => true, false, "-", "-";
        json!({"blockedRegistries": ["example.com"]}); "example.com:5000/x" => false, false, "blockedRegistries[0]", "example.com";
        json!({"blockedRegistries": ["example.com"]}); "example.com.evil.io/x" => true, false, "-", "-";
        json!({"blockedRegistries": ["*.example.com"]}); "a.b.example.com:5000/x" => false, false, "blockedRegistries[0]", "*.example.com";
        json!({"blockedRegistries": ["*.example.com"]}); "example.com/x" => true, false, "-", "-";
        json!({"blockedRegistries": ["reg.io/ns"]}); "reg.io/ns/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" => false, false, "blockedRegistries[0]", "reg.io/ns";
        json!({"blockedRegistries": ["reg.io/ns"]}); "reg.io/nsx/app" => true, false, "-", "-";
        // A longer insecure entry shadows a blocked parent only when it is not nested inside it.
        json!({"blockedRegistries": ["example.com"], "insecureRegistries": ["example.com:5000"]}); "example.com:5000/x" => true, true, "-", "-";
        json!({"blockedRegistries": ["reg.io"], "insecureRegistries": ["reg.io/ns"]}); "reg.io/ns/x" => false, true, "blockedRegistries[0]", "reg.io";
        json!({"allowedRegistries": ["quay.io", "*.corp.io"]}); "a.corp.io:8443/y" => true, false, "allowedRegistries[1]", "*.corp.io";
        json!({"allowedRegistries": ["quay.io"]}); "docker.io/library/nginx" => false, false, "allowedRegistries", "-";
        json!({"allowedRegistries": ["quay.io/ns/app:1"]}); "quay.io/ns/app:1" => true, false, "allowedRegistries[0]", "quay.io/ns/app:1";
        json!({"allowedRegistries": ["quay.io/ns/app:1"]}); "quay.io/ns/app:2" => false, false, "allowedRegistries", "-";
    }
    let (img, settings) = (
        image(json!({"insecureRegistries": ["reg.io:5000"]})),
        Settings::default(),
    );
    let node = Node::new(&img, &settings);
    let p = node.pull(&reference("reg.io:5000/team/app"));
    assert_eq!(
        p.insecure_by,
        Some(DecidedBy::entry(format!("{I}[0]"), "reg.io:5000"))
    );
    assert_eq!(p.policy, PolicyDecision::Template);
}

/// Issue 11: blocked `example.com` and search `example.com:5000`; the search registry's
/// candidate is blocked by registries.conf prefix matching (`example.com` followed by `:`).
#[test]
fn r11_blocked_registry_blocks_a_search_registry_with_a_port() {
    let img = image(json!({
        "blockedRegistries": ["example.com"],
        "containerRuntimeSearchRegistries": ["example.com:5000"],
    }));
    let settings = Settings::default();
    let node = Node::new(&img, &settings);
    let short = node.short_name(&reference("team/app:1"));
    let candidate = &short.candidates[0];
    assert_eq!(
        candidate.reference.as_ref().map(ToString::to_string),
        Ok("example.com:5000/team/app:1".to_owned())
    );
    let pull = candidate.pull.as_ref().unwrap_or_else(|| panic!("no pull"));
    assert!(!pull.allowed && pull.blocked);
    assert_eq!(
        pull.entry
            .and_then(|i| node.registries_conf().get(i))
            .map(RegistryEntry::scope),
        Some("example.com")
    );
    assert_eq!(
        pull.decided_by,
        Some(DecidedBy::entry(format!("{B}[0]"), "example.com"))
    );
    assert!(short.first_allowed().is_none());
}

#[test]
fn short_names_use_the_drop_in_or_the_template() {
    let settings = Settings::default();
    let none = image(json!({}));
    let node = Node::new(&none, &settings);
    let short = node.short_name(&reference("nginx"));
    assert_eq!(short.search_field, None);
    assert_eq!(short.registries, TEMPLATE_SEARCH_REGISTRIES);
    let names: Vec<String> = short
        .candidates
        .iter()
        .filter_map(|c| c.reference.as_ref().ok().map(ToString::to_string))
        .collect();
    assert_eq!(
        names,
        [
            "registry.access.redhat.com/nginx:latest",
            "docker.io/library/nginx:latest"
        ]
    );
    let listed = image(
        json!({"containerRuntimeSearchRegistries": ["reg.example.com", "myregistry"], "blockedRegistries": ["reg.example.com"]}),
    );
    let node = Node::new(&listed, &settings);
    let short = node.short_name(&reference("nginx"));
    assert_eq!(short.search_field.as_deref(), Some(SEARCH_LIST));
    assert!(
        short.candidates[0]
            .pull
            .as_ref()
            .is_some_and(|p| !p.allowed)
    );
    assert!(
        short.candidates[1].reference.is_err(),
        "no registry without . or :"
    );
    let empty = image(json!({"containerRuntimeSearchRegistries": []}));
    let node = Node::new(&empty, &settings);
    assert_eq!(node.search_registries(), Some(&[][..]));
    assert!(node.short_name(&reference("nginx")).candidates.is_empty());
}

#[test]
fn imports_follow_the_whitelister() {
    let settings = Settings::default();
    let img = decode(
        &json!({"kind": "Image", "spec": {"allowedRegistriesForImport": [
        {"domainName": "*.example.com"}, {"domainName": "quay.io", "insecure": true}]}}),
    )
    .image;
    let node = Node::new(&img, &settings);
    let i = node.import(&reference("a.example.com/x"));
    assert_eq!((i.allowed, i.basis), (true, ImportBasis::Entry));
    let i = node.import(&reference("quay.io/x"));
    assert_eq!((i.allowed, i.basis), (false, ImportBasis::NotListed));
    assert_eq!(
        i.insecure_alternative,
        Some(DecidedBy::entry(
            "spec.allowedRegistriesForImport[1]".to_owned(),
            "quay.io (insecure)"
        ))
    );
    let i = node.import(&reference(
        "image-registry.openshift-image-registry.svc:5000/ns/is",
    ));
    assert_eq!((i.allowed, i.basis), (true, ImportBasis::Internal));
    let broken = decode(&json!({"kind": "Image", "spec": {"allowedRegistriesForImport": [{"domainName": "a:b:c"}]}})).image;
    let i = Node::new(&broken, &settings).import(&reference("quay.io/x"));
    assert_eq!((i.allowed, i.basis), (false, ImportBasis::Broken));
    let open = image(json!({}));
    let i = Node::new(&open, &settings).import(&reference("nginx"));
    assert_eq!(
        (i.allowed, i.basis, i.checked.as_str()),
        (true, ImportBasis::Unrestricted, "docker.io:443")
    );
}

/// `MIRRORS.md` §5.2: `reference.ParseNamed(...).Name()`.
#[test]
fn payload_repository_is_the_release_image_s_canonical_name() {
    let ok = [
        (
            "quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64",
            "quay.io/openshift-release-dev/ocp-release",
        ),
        (
            &format!("quay.io/openshift-release-dev/ocp-release@sha256:{HEX64}"),
            "quay.io/openshift-release-dev/ocp-release",
        ),
        (
            "mirror.local:5000/ocp/release",
            "mirror.local:5000/ocp/release",
        ),
        ("docker.io/library/busybox:1", "docker.io/library/busybox"),
    ];
    for (image, want) in ok {
        assert_eq!(payload_repository(image).as_deref(), Ok(want), "{image}");
    }
    for bad in [
        "ocp-release:4.18",
        "docker.io/busybox",
        "index.docker.io/library/busybox",
        "",
        "quay.io/x@sha256:abc",
    ] {
        let e = payload_repository(bad)
            .err()
            .unwrap_or_else(|| panic!("{bad} parsed"));
        assert_eq!(
            (e.kind(), e.message(), e.logged()),
            (
                RenderErrorKind::ReleaseImage,
                "error parsing reference of release image",
                "error parsing reference of release image".to_owned()
            ),
            "{bad}"
        );
    }
    let s = Settings::from_release_image("mirror.local/ocp/release:4.18", "r.io:5000");
    assert_eq!(
        s.map(|s| s.payload_repository),
        Ok(Some("mirror.local/ocp/release".to_owned()))
    );
}

/// `MIRRORS.md` §5.3 with no mirror sets: every blocked entry covering P is dropped from both
/// files, and logged once.
#[test]
fn the_payload_exception_drops_every_entry_covering_p() {
    let img = image(json!({"blockedRegistries": [
        "quay.io", "docker.io", "*.io", "quay.io/openshift-release-dev/ocp-v4.0-art-dev",
        "quay.io/openshift-release-dev/ocp-release/sub"]}));
    let settings = Settings::default();
    let node = Node::new(&img, &settings);
    let dropped: Vec<&str> = node
        .dropped()
        .iter()
        .filter_map(|d| d.entry.value.as_deref())
        .collect();
    assert_eq!(dropped, ["quay.io", "*.io"]);
    assert_eq!(
        node.dropped_log().as_deref(),
        Some(
            r#"error adding ["quay.io" "*.io"] to blocked registries, cannot block the repository being used by the payload, skipping...."#
        )
    );
    let scopes: Vec<&str> = node
        .registries_conf()
        .iter()
        .map(RegistryEntry::scope)
        .collect();
    assert_eq!(
        scopes,
        [
            "docker.io",
            "quay.io/openshift-release-dev/ocp-v4.0-art-dev",
            "quay.io/openshift-release-dev/ocp-release/sub"
        ]
    );
    let policy: Vec<&str> = node
        .policy_json()
        .docker
        .iter()
        .map(|s| s.scope.as_str())
        .collect();
    assert_eq!(
        policy,
        [
            "docker.io",
            "quay.io/openshift-release-dev/ocp-release/sub",
            "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
        ]
    );
    let p = node.pull(&reference("quay.io/openshift-release-dev/ocp-release:4.18"));
    assert!(p.allowed);
    assert_eq!(p.rescued_by_exception, [0, 1]);
    // No P: nothing is dropped.
    let none = Settings {
        payload_repository: None,
        ..Settings::default()
    };
    let node = Node::new(&img, &none);
    assert!(node.dropped().is_empty());
    assert!(
        !node
            .pull(&reference("quay.io/openshift-release-dev/ocp-release:4.18"))
            .allowed
    );
}

/// `(kind, message, field)` of a refusal.
type Refused<'s> = Option<(RenderErrorKind, &'s str, Option<&'s str>)>;

/// `MIRRORS.md` §3: the first error MCO reports, verbatim, and where it stops.
#[test]
fn refusals_in_mco_order() {
    let settings = Settings::default();
    let cases: &[(Value, Refused<'_>)] = &[
        (json!({"blockedRegistries": ["a.io"]}), None),
        (
            json!({"allowedRegistries": ["a.io"], "blockedRegistries": ["b.io"]}),
            Some((
                RenderErrorKind::OnlyOneOf,
                "invalid images config: only one of AllowedRegistries or BlockedRegistries may be specified",
                None,
            )),
        ),
        // The payload exception empties the blocked list first: no conflict.
        (
            json!({"allowedRegistries": ["a.io"], "blockedRegistries": ["quay.io"]}),
            None,
        ),
        // allowed == [P] exactly is no conflict.
        (
            json!({"allowedRegistries": ["quay.io/openshift-release-dev/ocp-release"], "blockedRegistries": ["b.io"]}),
            None,
        ),
        (
            json!({"insecureRegistries": ["ok.io", "*"], "blockedRegistries": ["*.a/x"]}),
            Some((
                RenderErrorKind::InvalidInsecure,
                "invalid entry for insecure registries \"*\"",
                Some("spec.registrySources.insecureRegistries[1]"),
            )),
        ),
        (
            json!({"blockedRegistries": ["ok.io", ""]}),
            Some((
                RenderErrorKind::InvalidBlocked,
                "invalid entry for blocked registries \"\"",
                Some("spec.registrySources.blockedRegistries[1]"),
            )),
        ),
        (
            json!({"allowedRegistries": ["*.a.com/x"]}),
            Some((
                RenderErrorKind::InvalidAllowed,
                "invalid entry for allowed registries \"*.a.com/x\"",
                Some("spec.registrySources.allowedRegistries[0]"),
            )),
        ),
        // registries.conf is validated before policy.json.
        (
            json!({"allowedRegistries": ["x.io"], "blockedRegistries": ["*.a.com:1"]}),
            Some((
                RenderErrorKind::InvalidBlocked,
                "invalid entry for blocked registries \"*.a.com:1\"",
                Some("spec.registrySources.blockedRegistries[0]"),
            )),
        ),
    ];
    for (rs, want) in cases {
        let img = image(rs.clone());
        let node = Node::new(&img, &settings);
        let got = node
            .refusal()
            .map(|e| (e.kind(), e.message(), e.field().map(|f| f.field.as_str())));
        assert_eq!(got, *want, "{rs}");
    }
    let img = image(json!({"allowedRegistries": ["a.io"], "blockedRegistries": ["b.io"]}));
    let node = Node::new(&img, &settings);
    assert_eq!(
        node.refusal().map(RenderError::logged).as_deref(),
        Some(
            "could not Create/Update MachineConfig: could not update policy json with new changes: invalid images config: only one of AllowedRegistries or BlockedRegistries may be specified"
        )
    );
}

#[test]
fn which_files_mco_regenerates() {
    let settings = Settings::default();
    let cases = [
        (json!({}), false, false),
        (json!({"insecureRegistries": []}), true, false),
        (json!({"blockedRegistries": ["quay.io"]}), false, false),
        (json!({"blockedRegistries": ["b.io"]}), true, true),
        (json!({"allowedRegistries": ["a.io"]}), false, true),
        (json!({"allowedRegistries": []}), false, false),
    ];
    for (rs, registries, policy) in cases {
        let img = image(rs.clone());
        let node = Node::new(&img, &settings);
        assert_eq!(
            (node.writes_registries_conf(), node.writes_policy_json()),
            (registries, policy),
            "{rs}"
        );
    }
}

#[test]
fn entries_and_scopes_as_mco_writes_them() {
    let settings = Settings::default();
    let img = image(json!({
        "blockedRegistries": ["b.io/ns", "*.w.io", "b.io/ns"],
        "insecureRegistries": ["b.io", "x.w.io/r", "b.io/ns"],
        "allowedRegistries": ["b.io/ns", "a.io/1/2/3"],
    }));
    let node = Node::new(&img, &settings);
    let entries: Vec<(&str, &str, bool, bool)> = node
        .registries_conf()
        .iter()
        .map(|e| {
            (
                e.prefix.as_str(),
                e.location.as_str(),
                e.insecure,
                e.blocked,
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("", "b.io/ns", true, true),
            ("*.w.io", "", false, true),
            ("", "b.io", true, false),
            ("", "x.w.io/r", true, true),
        ]
    );
    // A scope in both lists is rejected: the blocked list is written last.
    let policy = node.policy_json();
    assert_eq!(policy.default, Requirement::InsecureAcceptAnything);
    let docker: Vec<(&str, Requirement, bool)> = policy
        .docker
        .iter()
        .map(|s| (s.scope.as_str(), s.requirement, s.in_atomic()))
        .collect();
    assert_eq!(
        docker,
        [
            ("*.w.io", Requirement::Reject, true),
            ("a.io/1/2/3", Requirement::InsecureAcceptAnything, false),
            ("b.io/ns", Requirement::Reject, true),
        ]
    );
    assert_eq!(
        policy.docker[2].decided_by,
        DecidedBy::entry(format!("{B}[0]"), "b.io/ns")
    );
    assert_eq!(policy.atomic().count(), 2);
    let allowed_only = image(json!({"allowedRegistries": ["a.io"]}));
    let node = Node::new(&allowed_only, &settings);
    assert_eq!(node.policy_json().default, Requirement::Reject);
    assert_eq!(
        node.policy_json().docker[0].decided_by,
        DecidedBy::entry(format!("{A}[0]"), "a.io")
    );
}

#[test]
fn go_encoders_escape_as_upstream() {
    assert_eq!(
        render::json_string("a<b>&\u{2028}\"\\\n\u{1}"),
        r#""a\u003cb\u003e\u0026\u2028\"\\\n\u0001""#
    );
    assert_eq!(
        render::toml_string("a<b>&\"\\\n\u{1}\u{7f}"),
        r#""a<b>&\"\\\n\u0001\u007f""#
    );
}

/// Lists of 1024 entries each stay fast to build and to query.
#[allow(clippy::disallowed_methods)] // times the check to show it stays linear
#[test]
fn large_lists_stay_linear() {
    let blocked: Vec<String> = (0..1024)
        .map(|i| format!("r{i}.example.com/ns/{i}"))
        .collect();
    let insecure: Vec<String> = (0..1024).map(|i| format!("*.i{i}.example.com")).collect();
    let img = image(json!({"blockedRegistries": blocked, "insecureRegistries": insecure}));
    let settings = Settings::default();
    let started = std::time::Instant::now();
    let node = Node::new(&img, &settings);
    for i in 0..1024 {
        let _ = node.pull(&reference(&format!("r{i}.example.com/ns/{i}/app:1")));
    }
    assert_eq!(node.registries_conf().len(), 2048);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// sysregistriesv2 `FindRegistry` on the entries MCO writes (moved from `grammar::scope`, where
/// a second registries.conf model used to live).
#[test]
fn find_registry_longest_prefix_and_flag_propagation() {
    let img = image(json!({
        "blockedRegistries": ["reg.io/ns", "*.example.com", "example.com"],
        "insecureRegistries": ["reg.io", "a.example.com/x", "example.com:5000"],
    }));
    let settings = Settings::default();
    let node = Node::new(&img, &settings);
    let find = |name: &str| {
        node.find_registry(name)
            .and_then(|i| node.registries_conf().get(i))
            .map(|e| (e.scope().to_owned(), e.blocked, e.insecure))
    };
    let entry = |s: &str, b, i| Some((s.to_owned(), b, i));
    // The blocked entry of a namespace is insecure too: reg.io covers it.
    assert_eq!(find("reg.io/ns/app"), entry("reg.io/ns", true, true));
    assert_eq!(find("reg.io/other"), entry("reg.io", false, true));
    // An insecure entry inside a blocked wildcard is blocked too.
    assert_eq!(
        find("a.example.com/x/y"),
        entry("a.example.com/x", true, true)
    );
    assert_eq!(find("b.example.com/y"), entry("*.example.com", true, false));
    // `example.com` matches `example.com:5000/...`, but the longer entry wins.
    assert_eq!(
        find("example.com:5000/y"),
        entry("example.com:5000", false, true)
    );
    assert_eq!(
        find("example.com:6000/y"),
        entry("example.com", true, false)
    );
    assert_eq!(find("quay.io/x"), None);
    assert_eq!(node.registries_conf().len(), 6);
    // containers/image trims trailing slashes when it loads the file; MCO writes both entries.
    let img = image(json!({"blockedRegistries": ["b.io/"], "insecureRegistries": ["b.io"]}));
    let node = Node::new(&img, &settings);
    assert_eq!(node.registries_conf().len(), 2);
    let found = node
        .find_registry("b.io/a")
        .and_then(|i| node.registries_conf().get(i));
    assert_eq!(
        found.map(|e| (e.scope(), e.blocked, e.insecure)),
        Some(("b.io/", true, true))
    );
}

/// Few entries are searched one by one, many are looked up by key: the same answers, odd
/// entries included (trailing slashes, wildcards with a port or path, equal match prefixes).
#[test]
fn few_and_many_entries_find_the_same_registry() {
    let img = image(json!({
        "blockedRegistries": ["reg.io/ns", "*.example.com", "example.com", "b.io/", "*.a.io:5000", "*.x.io/"],
        "insecureRegistries": ["reg.io", "a.example.com/x", "example.com:5000", "b.io", "*.x.io", "*.a.io:5000/p", "q.io@x", ""],
    }));
    let settings = Settings::default();
    let few = Node::new(&img, &settings);
    assert!(matches!(few.prefixes, Prefixes::Few));
    let mut many = Node::new(&img, &settings);
    many.prefixes = Prefixes::hashed(&many.entries);
    let names = [
        "reg.io/ns/app",
        "reg.io/other",
        "reg.io",
        "a.example.com/x/y",
        "b.example.com/y",
        "example.com:5000/y",
        "example.com:6000/y",
        "example.com",
        "b.io/a",
        "b.io",
        "c.a.io:5000/p/q",
        "c.a.io:5000",
        "c.a.io/p",
        "y.x.io/z",
        "y.x.io",
        "q.io@x",
        "q.io@xy",
        "x:1.example.com/y",
        "quay.io/x",
        "",
        "/",
    ];
    for name in names {
        assert_eq!(few.find_registry(name), many.find_registry(name), "{name}");
    }
    let scopes = img
        .spec
        .iter()
        .flat_map(|s| s.registry_sources.iter())
        .flat_map(|rs| rs.blocked.iter().chain(rs.insecure.iter()).flatten())
        .filter_map(|s| s.as_deref())
        .chain(["reg.io/", "*.x.io//", "*.a.io", "nope.io"]);
    for scope in scopes {
        assert_eq!(
            few.entry_for_scope(scope),
            many.entry_for_scope(scope),
            "{scope}"
        );
    }
}

/// A context of digest mirror sets (`(source, mirrors, NeverContactSource)` each), tag mirror
/// sets and a release image.
fn context(
    digest: &[(&str, &[&str], bool)],
    tag: &[(&str, &[&str], bool)],
    release: Option<&str>,
) -> ClusterContext {
    use crate::context::{MirrorRule, MirrorSet, MirrorSourcePolicy};
    let set = |name: &str, rules: &[(&str, &[&str], bool)]| MirrorSet {
        name: name.to_owned(),
        rules: rules
            .iter()
            .map(|(source, mirrors, never)| MirrorRule {
                source: (*source).to_owned(),
                mirrors: mirrors.iter().map(|m| (*m).to_owned()).collect(),
                source_policy: never.then_some(MirrorSourcePolicy::NeverContactSource),
            })
            .collect(),
    };
    ClusterContext {
        digest_mirror_sets: vec![set("digest", digest)],
        tag_mirror_sets: if tag.is_empty() {
            Vec::new()
        } else {
            vec![set("tag", tag)]
        },
        content_source_policies: Vec::new(),
        release_image: release.map(str::to_owned),
        ..ClusterContext::default()
    }
}

const P: &str = "quay.io/openshift-release-dev/ocp-release";
const C: &str = "quay.io/openshift-release-dev/ocp-v4.0-art-dev";

/// `(decision, physical reference)` of each source of a pull, as one string each:
/// `try mirror.local/x@sha256:...`, `digest-only ...`, `tag-only ...`, `blocked(<prefix>) ...`.
fn sources_of(node: &Node<'_>, r: &str) -> Vec<String> {
    node.pull(&reference(r))
        .sources
        .iter()
        .map(|s| {
            let decision = match &s.decision {
                SourceDecision::Try => "try".to_owned(),
                SourceDecision::DigestOnlyMirror => "digest-only".to_owned(),
                SourceDecision::TagOnlyMirror => "tag-only".to_owned(),
                SourceDecision::Blocked { prefix, .. } => format!("blocked({prefix})"),
            };
            let tls = if s.insecure { " insecure" } else { "" };
            format!("{decision} {}{tls}", s.reference)
        })
        .collect()
}

/// `MIRRORS.md` §5.4, the two pull columns: with quay.io blocked and a digest mirror for P and
/// C, P by digest is pulled through the mirror, C by digest is served by the mirror but rejected
/// by policy.json, and P by tag finds only the blocked source.
#[test]
fn payload_pulls_with_a_digest_mirror() {
    let img = image(json!({"blockedRegistries": ["quay.io"]}));
    let settings = Settings::default();
    let release = format!("{P}@sha256:{HEX64}");
    let ctx = context(
        &[
            (P, &["mirror.local/ocp/release"], false),
            (C, &["mirror.local/ocp/release"], false),
        ],
        &[],
        Some(&release),
    );
    let node = Node::with_context(&img, &settings, Some(&ctx));
    assert_eq!(node.refusal(), None);
    assert!(node.dropped().is_empty());
    let p = format!("{P}@sha256:{HEX64}");
    assert_eq!(
        sources_of(&node, &p),
        [
            format!("try mirror.local/ocp/release@sha256:{HEX64}"),
            format!("blocked(quay.io/openshift-release-dev/ocp-release) {p}"),
        ]
    );
    let pull = node.pull(&reference(&p));
    assert!(pull.allowed && !pull.blocked, "{pull:?}");
    assert_eq!(
        pull.decided_by,
        Some(DecidedBy::entry(
            format!("release payload exception of {B}[0]"),
            P
        ))
    );
    let c = format!("{C}@sha256:{HEX64}");
    let (allowed, _, field, value) = pull_of(&node, &c);
    assert_eq!(
        (allowed, field.as_str(), value.as_str()),
        (false, &*format!("{B}[0]"), "quay.io")
    );
    assert!(!node.pull(&reference(&c)).blocked);
    let tagged = node.pull(&reference(&format!("{P}:4.18")));
    assert!(tagged.blocked && !tagged.allowed);
    assert_eq!(
        sources_of(&node, &format!("{P}:4.18")),
        [
            "digest-only mirror.local/ocp/release:4.18".to_owned(),
            format!("blocked(quay.io/openshift-release-dev/ocp-release) {P}:4.18"),
        ]
    );
    // Without a context nothing changes: quay.io is dropped, no sources are listed.
    let alone = Node::new(&img, &settings);
    assert_eq!(alone.dropped().len(), 1);
    assert!(alone.pull(&reference(&p)).sources.is_empty());
}

/// `MIRRORS.md` §4.3-§4.4: tag mirrors serve tags, digest mirrors digests; a mirror under a
/// blocked scope is skipped; a mirror endpoint is insecure by its own flag; a wildcard source
/// rewrites the host.
#[test]
fn pull_sources_follow_containers_image() {
    let img = image(json!({
        "blockedRegistries": ["blocked.example.net"],
        "insecureRegistries": ["insecure.example.net"],
    }));
    let settings = Settings::default();
    let ctx = context(
        &[
            (
                "registry.example.com/team",
                &["blocked.example.net/team", "insecure.example.net/team"],
                true,
            ),
            ("*.redhat.io", &["mirror.example.net/redhat"], false),
        ],
        &[(
            "registry.example.com/team",
            &["tags.example.net/team"],
            true,
        )],
        None,
    );
    let node = Node::with_context(&img, &settings, Some(&ctx));
    assert_eq!(node.refusal(), None);
    let digest = format!("registry.example.com/team/app@sha256:{HEX64}");
    assert_eq!(
        sources_of(&node, &digest),
        [
            format!("blocked(blocked.example.net) blocked.example.net/team/app@sha256:{HEX64}"),
            format!("try insecure.example.net/team/app@sha256:{HEX64} insecure"),
            format!("tag-only tags.example.net/team/app@sha256:{HEX64}"),
            format!("blocked(registry.example.com/team) {digest}"),
        ]
    );
    assert!(node.pull(&reference(&digest)).allowed);
    assert_eq!(
        sources_of(&node, "registry.example.com/team/app:v1"),
        [
            "digest-only blocked.example.net/team/app:v1".to_owned(),
            "digest-only insecure.example.net/team/app:v1 insecure".to_owned(),
            "try tags.example.net/team/app:v1".to_owned(),
            "blocked(registry.example.com/team) registry.example.com/team/app:v1".to_owned(),
        ]
    );
    assert_eq!(
        sources_of(
            &node,
            &format!("registry.redhat.io/product/repo@sha256:{HEX64}")
        ),
        [
            format!("try mirror.example.net/redhat/product/repo@sha256:{HEX64}"),
            format!("try registry.redhat.io/product/repo@sha256:{HEX64}"),
        ]
    );
    // The source entry says which item blocked it.
    let entry = node.entry_for_scope("registry.example.com/team").cloned();
    assert_eq!(
        entry.and_then(|e| e.blocked_by),
        Some(DecidedBy::entry(
            "ImageDigestMirrorSet/digest spec.imageDigestMirrors[0].mirrorSourcePolicy".into(),
            "NeverContactSource"
        ))
    );
}

/// `MIRRORS.md` §3 with a context: MCO's first error, and the first one the Image takes part
/// in (past the mirror sets' own).
#[test]
fn refusals_with_a_context() {
    let settings = Settings::default();
    // Two blocked entries covering P with a digest mirror: `[P, P]`.
    let img = image(json!({"blockedRegistries": ["quay.io", "quay.io/openshift-release-dev"]}));
    let release = format!("{P}@sha256:{HEX64}");
    let ctx = context(
        &[(P, &["mirror.local/ocp/release"], false)],
        &[],
        Some(&release),
    );
    let node = Node::with_context(&img, &settings, Some(&ctx));
    let refusal = node.refusal().cloned();
    assert_eq!(
        refusal.as_ref().map(RenderError::kind),
        Some(RenderErrorKind::OnlyOneOf)
    );
    assert_eq!(
        refusal.and_then(|r| r.field().cloned()),
        Some(DecidedBy::entry(
            format!("{B}[1]"),
            "quay.io/openshift-release-dev"
        ))
    );
    assert_eq!(node.refusal_by_image(), node.refusal());
    // A conflict in the mirror sets comes first, but the Image's wildcard problem is still found.
    let img = image(json!({"insecureRegistries": ["registry.redhat.io"]}));
    let mut ctx = context(&[("*.redhat.io", &["m.example.net/rh"], false)], &[], None);
    ctx.tag_mirror_sets =
        context(&[("*.redhat.io", &["t.example.net/rh"], true)], &[], None).digest_mirror_sets;
    let node = Node::with_context(&img, &settings, Some(&ctx));
    assert_eq!(
        node.refusal().map(RenderError::kind),
        Some(RenderErrorKind::ConflictingSourcePolicy)
    );
    let by_image = node.refusal_by_image();
    assert_eq!(
        by_image.map(RenderError::kind),
        Some(RenderErrorKind::WildcardNestedScope)
    );
    assert_eq!(
        by_image.and_then(RenderError::field),
        Some(&DecidedBy::entry(format!("{I}[0]"), "registry.redhat.io"))
    );
    // A release image MCO cannot parse stops everything; P then comes from the settings.
    let ctx = context(&[], &[], Some("ocp-release:4.18"));
    let node = Node::with_context(&img, &settings, Some(&ctx));
    assert_eq!(
        node.refusal().map(RenderError::kind),
        Some(RenderErrorKind::ReleaseImage)
    );
    assert_eq!(node.refusal_by_image(), None);
    assert_eq!(node.payload_repository(), Some(P));
}

/// runtime-utils keeps the source among the mirrors when a cycle is broken at it (it sorts
/// first), and drops it only when it sorts last.
#[test]
fn a_cycle_broken_at_the_source_keeps_it_as_a_mirror() {
    let img = image(json!({}));
    let settings = Settings::default();
    let mut ctx = context(
        &[(
            "registry.example.com/app",
            &["y.example.net/app", "x.example.net/app"],
            false,
        )],
        &[],
        None,
    );
    ctx.digest_mirror_sets.extend(
        context(
            &[(
                "registry.example.com/app",
                &["x.example.net/app", "y.example.net/app"],
                false,
            )],
            &[],
            None,
        )
        .digest_mirror_sets,
    );
    let node = Node::with_context(&img, &settings, Some(&ctx));
    let locations: Vec<String> = node
        .registries_conf()
        .iter()
        .flat_map(|e| e.mirrors.iter().map(|m| m.location.clone()))
        .collect();
    assert_eq!(
        locations,
        [
            "registry.example.com/app",
            "x.example.net/app",
            "y.example.net/app"
        ]
    );
}

/// A context too large to model with the Image (a source with many mirrors, many scopes nested
/// inside it) gives the Image's node alone and says so, instead of a copy of every mirror per
/// scope; a modest one is modelled.
#[test]
fn a_context_too_large_to_model_is_left_out_and_said() {
    let many: Vec<String> = (0..400).map(|m| format!("m{m}.example.net/r")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let huge = context(&[("registry.example.com", &many, false)], &[], None);
    let blocked: Vec<String> = (0..300)
        .map(|i| format!("registry.example.com/team{i}"))
        .collect();
    let img = image(json!({"blockedRegistries": blocked}));
    let settings = Settings::default();
    let node = Node::with_context(&img, &settings, Some(&huge));
    assert!(node.registries_conf().iter().all(|e| e.mirrors.is_empty()));
    let note = node
        .notes()
        .iter()
        .find(|n| n.contains("too large to model"));
    assert_eq!(
        note.map(String::as_str),
        Some(
            "the cluster context is too large to model with this Image (up to 120400 \
             [[registry.mirror]] tables, more than 100000): judged without it"
        )
    );
    let few = img.clone();
    let modest = context(&[("registry.example.com", &many[..10], false)], &[], None);
    let node = Node::with_context(&few, &settings, Some(&modest));
    assert!(node.registries_conf().iter().any(|e| !e.mirrors.is_empty()));
    assert!(!node.notes().iter().any(|n| n.contains("too large")));
}
