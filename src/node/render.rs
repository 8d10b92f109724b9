//! The bytes of the files MCO writes, for `explain --render`.
//!
//! - registries.conf and the search drop-in: runtime-utils fills a containers/image
//!   `sysregistriesv2.V2RegistriesConf` and MCO encodes it with BurntSushi/toml's `Encoder`
//!   (MCO `updateRegistriesConfig`, `updateSearchRegistriesConfig`). The encoder writes a
//!   struct's plain keys in field order, then its tables; skips nil slices and maps and
//!   `omitempty` zero values, but writes empty strings without `omitempty`; indents keys of a
//!   `[[registry]]` table by two spaces and puts a blank line before each table. Field order and
//!   tags as in containers/image v5.35 `V2RegistriesConf` (`unqualified-search-registries`,
//!   `credential-helpers` (nil), `short-name-mode`, `additional-layer-store-auth-helper`,
//!   `aliases` (nil), then `[[registry]]` with `prefix` (always), `location`, `insecure`,
//!   `pull-from-mirror`, `blocked`, `mirror-by-digest-only` (all `omitempty`), then its
//!   `mirror` endpoints as `[[registry.mirror]]` tables (a table after the plain keys, its header
//!   indented one level, its keys two: `location`, `insecure`, `pull-from-mirror`).
//!   ASSUMPTION, not checked against a node's bytes: that the containers/image and BurntSushi
//!   versions MCO vendors write exactly these keys (`short-name-mode = ""` and
//!   `additional-layer-store-auth-helper = ""` included) with this layout.
//! - policy.json: Go `json.MarshalIndent(policy, "", "  ")` of containers/image
//!   `signature.Policy` (MCO `updatePolicyJSON`): keys `default` then `transports`, map keys
//!   sorted (`atomic`, `docker`, `docker-daemon`; scopes by byte order), strings escaped as Go
//!   does (`<`, `>`, `&` as `\u003c`...), no final newline.
//! - When MCO does not regenerate a file, the node keeps the template's (MCO-T). Its exact bytes
//!   are not in `MIRRORS.md`: registries.conf is taken to be the one line `MIRRORS.md` §1.6
//!   quotes, policy.json is its content (`default: insecureAcceptAnything`, `docker-daemon`)
//!   in the encoder's form. [`RenderedFile::note`] says so.

use super::POLICY_JSON_PATH;
use super::{
    Node, PolicyJson, PolicyScope, REGISTRIES_CONF_PATH, Requirement, TEMPLATE_SEARCH_REGISTRIES,
};

/// MCO's registries.conf template (`MIRRORS.md` §1.6; the exact template bytes are an
/// assumption).
pub const REGISTRIES_CONF_TEMPLATE: &str =
    "unqualified-search-registries = ['registry.access.redhat.com', 'docker.io']\n";

/// A file as it lands on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Where it is written.
    pub path: &'static str,
    /// Its bytes.
    pub content: String,
    /// Whether MCO's generated MachineConfig writes it (false: the template stays).
    pub generated: bool,
    /// What to know about these bytes.
    pub note: Option<String>,
}

pub(super) fn registries_conf(node: &Node<'_>) -> RenderedFile {
    if !node.writes_registries_conf() {
        return RenderedFile {
            path: REGISTRIES_CONF_PATH,
            content: REGISTRIES_CONF_TEMPLATE.to_owned(),
            generated: false,
            note: Some(format!(
                "the machine-config operator does not regenerate {REGISTRIES_CONF_PATH} for this \
                 config (no insecureRegistries, no kept blockedRegistries): the node keeps the \
                 template's file, shown as MIRRORS.md quotes it"
            )),
        };
    }
    let mut out = v2_header(&TEMPLATE_SEARCH_REGISTRIES);
    for entry in node.registries_conf() {
        out.push_str("\n[[registry]]\n");
        out.push_str(&format!("  prefix = {}\n", toml_string(&entry.prefix)));
        if !entry.location.is_empty() {
            out.push_str(&format!("  location = {}\n", toml_string(&entry.location)));
        }
        if entry.insecure {
            out.push_str("  insecure = true\n");
        }
        if entry.blocked {
            out.push_str("  blocked = true\n");
        }
        for mirror in &entry.mirrors {
            out.push_str("\n  [[registry.mirror]]\n");
            out.push_str(&format!(
                "    location = {}\n",
                toml_string(&mirror.location)
            ));
            if mirror.insecure {
                out.push_str("    insecure = true\n");
            }
            out.push_str(&format!(
                "    pull-from-mirror = {}\n",
                toml_string(mirror.pull_from_mirror.as_str())
            ));
        }
    }
    RenderedFile {
        path: REGISTRIES_CONF_PATH,
        content: out,
        generated: true,
        note: None,
    }
}

pub(super) fn search_drop_in(registries: &[&str]) -> String {
    v2_header(registries)
}

/// The plain keys of a `V2RegistriesConf` with `unqualified-search-registries` set.
fn v2_header<S: AsRef<str>>(search: &[S]) -> String {
    let list: Vec<String> = search.iter().map(|s| toml_string(s.as_ref())).collect();
    format!(
        "unqualified-search-registries = [{}]\nshort-name-mode = \"\"\nadditional-layer-store-auth-helper = \"\"\n",
        list.join(", ")
    )
}

pub(super) fn policy_json(node: &Node<'_>) -> RenderedFile {
    let template = PolicyJson {
        default: Requirement::InsecureAcceptAnything,
        docker: Vec::new(),
    };
    let (policy, generated) = if node.writes_policy_json() {
        (node.policy_json(), true)
    } else {
        (&template, false)
    };
    let mut out = String::from("{\n  \"default\": ");
    requirements(&mut out, policy.default, 2);
    out.push_str(",\n  \"transports\": {\n");
    let mut transports: Vec<(&str, Vec<&PolicyScope>)> = Vec::new();
    if !policy.docker.is_empty() {
        transports.push(("atomic", policy.atomic().collect()));
        transports.push(("docker", policy.docker.iter().collect()));
    }
    let mut first = true;
    for (name, scopes) in &transports {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        out.push_str(&format!("    {}: ", json_string(name)));
        if scopes.is_empty() {
            out.push_str("{}");
            continue;
        }
        out.push_str("{\n");
        for (i, scope) in scopes.iter().enumerate() {
            if i > 0 {
                out.push_str(",\n");
            }
            out.push_str(&format!("      {}: ", json_string(&scope.scope)));
            requirements(&mut out, scope.requirement, 6);
        }
        out.push_str("\n    }");
    }
    if !first {
        out.push_str(",\n");
    }
    out.push_str("    \"docker-daemon\": {\n      \"\": ");
    requirements(&mut out, Requirement::InsecureAcceptAnything, 6);
    out.push_str("\n    }\n  }\n}");
    RenderedFile {
        path: POLICY_JSON_PATH,
        content: out,
        generated,
        note: (!generated).then(|| {
            format!(
                "the machine-config operator does not regenerate {POLICY_JSON_PATH} for this config \
                 (no allowedRegistries, no kept blockedRegistries): the node keeps the template's \
                 file, shown here in the encoder's layout (the template's own bytes may differ)"
            )
        }),
    }
}

/// `[{"type": ...}]` at an indent of `level` spaces.
fn requirements(out: &mut String, requirement: Requirement, level: usize) {
    let pad = " ".repeat(level);
    out.push_str(&format!(
        "[\n{pad}  {{\n{pad}    \"type\": {}\n{pad}  }}\n{pad}]",
        json_string(requirement.as_str())
    ));
}

/// A string as BurntSushi/toml writes it (`dblQuotedReplacer`).
pub(super) fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A string as Go's `encoding/json` writes it with HTML escaping (the `Marshal` default).
pub(super) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
