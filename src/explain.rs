//! `explain`: what an Image config does to real image references, before it rolls out to every
//! node. A presentation of the node model ([`crate::node`]): the decisions are the model's, this
//! module puts them in words (text and JSON) and compares two configs.
//!
//! ```text
//! Image (config, and optionally the old one) -> node::Node: what MCO and openshift-apiserver make of it
//! IMAGE_REF...                               -> Reference (normalised)  -> Explanation per reference
//!                                                                          (and Changes against the old)
//! Image --render FILE                        -> the file MCO writes (registries.conf, policy.json,
//!                                               search drop-in), or MCO's refusal
//! ```
//!
//! For each reference:
//!
//! 1. **Normalisation** (distribution/reference): `nginx` is `docker.io/library/nginx:latest`.
//!    An invalid reference is an error for that reference only.
//! 2. **Short names** (no registry in the first element): CRI-O tries each
//!    `containerRuntimeSearchRegistries` entry in order (the node default
//!    `registry.access.redhat.com`, `docker.io` when the list is absent) and pulls the first
//!    candidate that is allowed and exists. Short-name aliases of `registries.conf.d` are not
//!    modelled.
//! 3. **Pull on a node** (CRI-O with the files the machine-config operator writes): blocked
//!    entries that cover the release payload repository P (the repository of `--release-image`)
//!    are dropped (the digest-mirror case, where MCO keeps them, is not modelled); `registries.conf` gets one `[[registry]]` per blocked or
//!    insecure scope and the longest matching prefix decides `blocked` and `insecure`;
//!    `policy.json` rejects blocked scopes (default accept) or accepts allowed scopes (default
//!    reject), looked up from the most specific scope (`repo:tag` or `repo@digest`, repository,
//!    parent namespaces, `host[:port]`, then `*.domain` from the closest parent).
//! 4. **Import into an ImageStream** (openshift-apiserver whitelister, secure import): an empty
//!    `allowedRegistriesForImport` allows everything; otherwise a glob entry or the internal
//!    registry (`status.internalRegistryHostname`, else the setting) must admit the registry's
//!    host and port (443 when the reference names none), and a refusal carries the API server's
//!    error text.
//! 5. **Changes** (with an old config): every decision that differs, as
//!    `<reference>: pull allowed -> BLOCKED by spec.registrySources.allowedRegistries (not listed)`.
//!    The aspects are `pull` (allowed or not; for a short name also which candidate),
//!    `transport` (TLS verified or insecure, for a pull allowed before and after), `import`, and
//!    `short-name candidates`. The same decision reached through another entry is no change.
//!
//! A reference with both a tag and a digest is looked up in `policy.json` as `repo@digest`: the
//! digest chooses the image.
//!
//! # JSON (`-o json`), stable
//!
//! ```text
//! {
//!   "verdict": {"operation": "CREATE" | "UPDATE", "allowed": bool,   absent without --config;
//!               "skipped": bool, "denial": "Error from server ...",  the engine's answer, as
//!               "errors": ["field: message"], "warnings": [...],     replay gives it; denial
//!               "notes": [...]},                                    only when denied
//!   "config": {"source": "new.yaml" | null, "notes": ["..."]},       null source: empty spec
//!   "old":    {"source": "current.yaml", "notes": [...]} | null,      null without an old config
//!   "changed": true | false | null,                                   null without an old config
//!   "results": [{
//!     "input": "nginx",
//!     "error": null | "invalid reference format",                     the rest is null on error
//!     "reference": {"normalized": "docker.io/library/nginx:latest", "repository": "docker.io/library/nginx",
//!                   "registry": "docker.io", "path": "library/nginx", "tag": "latest" | null,
//!                   "digest": null | "sha256:...", "default_tag": true, "short_name": true},
//!     "short_name": null | {"search_field": "spec.registrySources.containerRuntimeSearchRegistries" | null,
//!                           "registries": ["quay.io", ...],
//!                           "candidates": [{"registry": "quay.io", "name": "quay.io/nginx:latest" | null,
//!                                           "error": null | "...", "pull": <pull> | null}]},
//!     "pull":   <pull>,
//!     "import": {"allowed": true, "checked": "docker.io:443", "decided_by": <decided_by> | null,
//!                "how": "...", "error": null | "registry \"docker.io:443\" not allowed by whitelist: ...",
//!                "notes": [...]},
//!     "changes": null | [{"reference": "nginx", "aspect": "pull", "before": "allowed",   null: no old config or an error
//!                         "after": "BLOCKED by ...", "summary": "nginx: pull allowed -> BLOCKED by ..."}]
//!   }]
//! }
//! <pull> = {"allowed": false, "insecure": false, "candidate": null | "quay.io/nginx:latest",
//!           "decided_by": <decided_by> | null, "insecure_by": <decided_by> | null, "how": "...",
//!           "error": null | "what CRI-O reports", "notes": [...]}
//! <decided_by> = {"field": "spec.registrySources.blockedRegistries[2]", "value": "*.example.com"}
//!                (value null = "not listed": nothing in the list matches)
//! ```
//!
//! `decided_by` is null when nothing restricts the decision (no list, or a blocked list that does
//! not match). `candidate` is set for short names: the candidate the summary is about.

use serde::Serialize;
use serde_json::Value;

use crate::context::ClusterContext;
use crate::field::FieldError;
use crate::field::go_quote;
use crate::grammar::reference::Reference;
use crate::image::decode;
use crate::node::{self, ImportBasis, Node, PolicyDecision, RenderError, RenderedFile};

const IMPORT_LIST: &str = "spec.allowedRegistriesForImport";
const SEARCH_LIST: &str = "spec.registrySources.containerRuntimeSearchRegistries";

/// What `explain` needs besides the config: the node model's settings.
pub use crate::node::Settings;

pub use crate::input::{ConfigFile, ConfigFileError, read_image as read_config};
pub use crate::replay::ObjectError;

pub use crate::node::DecidedBy;

/// A pull on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pull {
    /// Whether CRI-O may pull it.
    pub allowed: bool,
    /// Whether TLS is skipped (`insecure = true`).
    pub insecure: bool,
    /// For a short name: the candidate this summary is about.
    pub candidate: Option<String>,
    /// The entry that decided.
    pub decided_by: Option<DecidedBy>,
    /// The insecure entry that applies.
    pub insecure_by: Option<DecidedBy>,
    /// How the node reaches the decision.
    pub how: String,
    /// What CRI-O reports for a refused pull.
    pub error: Option<String>,
    /// Anything else worth knowing (dropped entries, short-name order).
    pub notes: Vec<String>,
}

impl Pull {
    /// The decision in words: `allowed`, `allowed by ...`, `BLOCKED by ...`.
    pub fn state(&self) -> String {
        match (self.allowed, &self.candidate, &self.decided_by) {
            (true, Some(candidate), _) => format!("allowed as {candidate}"),
            (true, None, Some(by)) => format!("allowed by {by}"),
            (true, None, None) => "allowed".to_owned(),
            (false, _, Some(by)) => format!("BLOCKED by {by}"),
            (false, _, None) => "BLOCKED".to_owned(),
        }
    }

    fn transport(&self) -> String {
        match &self.insecure_by {
            Some(by) if self.insecure => format!("insecure by {by}"),
            _ if self.insecure => "insecure".to_owned(),
            _ => "TLS verified".to_owned(),
        }
    }
}

/// An import into an ImageStream (a secure import, the default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Import {
    /// Whether openshift-apiserver admits it.
    pub allowed: bool,
    /// The `host:port` the whitelister checks.
    pub checked: String,
    /// The entry that decided.
    pub decided_by: Option<DecidedBy>,
    /// How the API server reaches the decision.
    pub how: String,
    /// The error the API server returns for a refused import.
    pub error: Option<String>,
    /// Anything else worth knowing.
    pub notes: Vec<String>,
}

impl Import {
    /// The decision in words.
    pub fn state(&self) -> String {
        match (self.allowed, &self.decided_by) {
            (true, Some(by)) => format!("allowed by {by}"),
            (true, None) => "allowed".to_owned(),
            (false, Some(by)) => format!("REFUSED by {by}"),
            (false, None) => "REFUSED".to_owned(),
        }
    }
}

/// One fully qualified name CRI-O tries for a short name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The search registry.
    pub registry: String,
    /// The candidate, when the registry makes a valid reference.
    pub name: Option<String>,
    /// Why it does not.
    pub error: Option<String>,
    /// Its pull decision.
    pub pull: Option<Pull>,
}

/// How a short name is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShortName {
    /// The search list's field, or `None` for the node default.
    pub search_field: Option<String>,
    /// The search registries, in order.
    pub registries: Vec<String>,
    /// The candidates, in the order CRI-O tries them.
    pub candidates: Vec<Candidate>,
}

/// A reference after normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Normalized {
    /// The fully qualified form, e.g. `docker.io/library/nginx:latest`.
    pub normalized: String,
    /// The repository, e.g. `docker.io/library/nginx`.
    pub repository: String,
    /// The registry.
    pub registry: String,
    /// The path inside the registry.
    pub path: String,
    /// The tag (default `latest` when neither tag nor digest was given).
    pub tag: Option<String>,
    /// The digest.
    pub digest: Option<String>,
    /// Whether the tag is the default.
    pub default_tag: bool,
    /// Whether the reference names no registry.
    pub short_name: bool,
}

impl Normalized {
    fn of(r: &Reference) -> Self {
        Normalized {
            normalized: r.to_string(),
            repository: r.name(),
            registry: r.domain().to_owned(),
            path: r.path().to_owned(),
            tag: r.tag().map(str::to_owned),
            digest: r.digest().map(str::to_owned),
            default_tag: r.has_default_tag(),
            short_name: r.is_short_name(),
        }
    }
}

/// A decision that differs between the old and the new config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The reference as given.
    pub reference: String,
    /// `pull`, `transport`, `import` or `short-name candidates`.
    pub aspect: &'static str,
    /// Under the old config.
    pub before: String,
    /// Under the new config.
    pub after: String,
    /// The one-line form.
    pub summary: String,
}

impl Change {
    fn new(reference: &str, aspect: &'static str, before: String, after: String) -> Self {
        let summary = format!("{reference}: {aspect} {before} -> {after}");
        Change {
            reference: reference.to_owned(),
            aspect,
            before,
            after,
            summary,
        }
    }
}

/// Everything `explain` says about one reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The reference as given.
    pub input: String,
    /// Why it cannot be parsed.
    pub error: Option<String>,
    /// The normalised reference.
    pub reference: Option<Normalized>,
    /// Short-name resolution.
    pub short_name: Option<ShortName>,
    /// The pull decision (for a short name, the summary over its candidates).
    pub pull: Option<Pull>,
    /// The import decision.
    pub import: Option<Import>,
    /// What changes against the old config; `None` without one.
    pub changes: Option<Vec<Change>>,
}

/// Where a config came from and what to know about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigSummary {
    /// The file, or `None` for the empty spec.
    pub source: Option<String>,
    /// Notes on the config as a whole.
    pub notes: Vec<String>,
}

/// What the API server would answer to the config with this webhook installed: the engine's
/// verdict on it as a CREATE, or as an UPDATE of the old config, as `replay` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigVerdict {
    /// `CREATE` or `UPDATE`.
    pub operation: &'static str,
    /// Whether it would be allowed.
    pub allowed: bool,
    /// Whether the engine does not judge it (another group or kind).
    pub skipped: bool,
    /// For a denial, what `oc apply` prints, with every field-path error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denial: Option<String>,
    /// The field-path errors (`field: message`), one per cause.
    pub errors: Vec<String>,
    /// The warnings, once for the config.
    pub warnings: Vec<String>,
    /// What the API server changes before admission, and why a config was skipped.
    pub notes: Vec<String>,
}

/// Asks the engine about the config first: `replay`'s verdict on the same file.
pub fn judge_config(
    config: ConfigSource<'_>,
    old: Option<ConfigSource<'_>>,
    policy: &crate::policy::Policy,
) -> Result<ConfigVerdict, ObjectError> {
    let judged =
        crate::replay::judge_object(config.object.clone(), old.map(|o| o.object.clone()), policy)?;
    let verdict = &judged.verdict;
    let errors = verdict
        .status
        .details
        .iter()
        .flat_map(|d| &d.causes)
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    let denial = (!verdict.allowed).then(|| {
        crate::replay::oc_message(
            config.source.unwrap_or("-"),
            Some(judged.operation),
            &verdict.status,
            &policy.settings().webhook_name,
        )
    });
    Ok(ConfigVerdict {
        operation: judged.operation,
        allowed: verdict.allowed,
        skipped: verdict.skipped,
        denial,
        errors,
        warnings: verdict.warnings.clone(),
        notes: judged.notes,
    })
}

/// What an `explain` run concluded, for the exit status (the command chooses the codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Not `non_exhaustive`: the command maps every conclusion to an exit status in one
// exhaustive match, which a new conclusion must join.
pub enum Conclusion {
    /// No decision changes (always so without an old config).
    Unchanged,
    /// Some decision changes against the old config.
    Changed,
    /// No reference at all could be parsed.
    NoReference,
    /// The API server would deny the config with this webhook installed.
    Denied,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// What the API server would answer to the config with this webhook installed; `None`
    /// without a config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<ConfigVerdict>,
    /// The config explained.
    pub config: ConfigSummary,
    /// The old config, when comparing.
    pub old: Option<ConfigSummary>,
    /// Whether any decision changes; `None` without an old config.
    pub changed: Option<bool>,
    /// One result per reference, in the order given.
    pub results: Vec<Explanation>,
}

/// A config to explain: where it came from (`None` for the empty spec) and the object.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSource<'a> {
    /// The file name.
    pub source: Option<&'a str>,
    /// The Image object.
    pub object: &'a Value,
}

/// Explains `references` under `config`, and compares with `old` when given; in `context` (the
/// mirror sets and release image of the cluster) when given.
pub fn explain(
    config: ConfigSource<'_>,
    old: Option<ConfigSource<'_>>,
    references: &[String],
    settings: &Settings,
    context: Option<&ClusterContext>,
) -> Report {
    let new_decoded = decode(config.object);
    let new_node = Node::with_context(&new_decoded.image, settings, context);
    let old_decoded = old.map(|o| decode(o.object));
    let old_node = old_decoded
        .as_ref()
        .map(|d| Node::with_context(&d.image, settings, context));
    let summary = |source: Option<&str>, node: &Node<'_>, errors: &[FieldError]| {
        let mut notes: Vec<String> = errors.iter().map(|e| format!("ignored: {e}")).collect();
        notes.extend(node.notes().iter().cloned());
        ConfigSummary {
            source: source.map(str::to_owned),
            notes,
        }
    };
    let mut results = Vec::with_capacity(references.len());
    for input in references {
        let mut explanation = explain_one(&new_node, input);
        if let Some(old_node) = old_node.as_ref().filter(|_| explanation.error.is_none()) {
            let before = explain_one(old_node, input);
            explanation.changes = Some(compare(input, &before, &explanation));
        }
        results.push(explanation);
    }
    let changed = old.map(|_| {
        results
            .iter()
            .any(|r| r.changes.as_ref().is_some_and(|c| !c.is_empty()))
    });
    Report {
        verdict: None,
        config: summary(config.source, &new_node, &new_decoded.errors),
        old: old
            .zip(old_node.as_ref())
            .zip(old_decoded.as_ref())
            .map(|((o, c), d)| summary(o.source, c, &d.errors)),
        changed,
        results,
    }
}

/// Which file `explain --render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenderTarget {
    /// `/etc/containers/registries.conf`.
    RegistriesConf,
    /// `/etc/containers/policy.json`.
    PolicyJson,
    /// `/etc/containers/registries.conf.d/01-image-searchRegistries.conf`.
    Search,
}

/// What `explain --render` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rendering {
    /// The file's bytes (stdout), and a note about them (stderr).
    File(RenderedFile),
    /// MCO writes no such file for this config (a note for stderr).
    NotWritten(String),
    /// MCO refuses to render: nothing on stdout, its error on stderr.
    Refused(RenderError),
}

/// The file MCO renders for `object` on every node, in `context` when given.
pub fn render(
    object: &Value,
    settings: &Settings,
    context: Option<&ClusterContext>,
    target: RenderTarget,
) -> Rendering {
    let decoded = decode(object);
    let node = Node::with_context(&decoded.image, settings, context);
    if let Some(refusal) = node.refusal() {
        return Rendering::Refused(refusal.clone());
    }
    match target {
        RenderTarget::RegistriesConf => Rendering::File(node.render_registries_conf()),
        RenderTarget::PolicyJson => Rendering::File(node.render_policy_json()),
        RenderTarget::Search => match node.render_search_registries() {
            Some(content) => Rendering::File(RenderedFile {
                path: node::SEARCH_DROP_IN_PATH,
                content,
                generated: true,
                note: None,
            }),
            None => Rendering::NotWritten(format!(
                "the machine-config operator writes no {} for this config \
                 (containerRuntimeSearchRegistries is absent): the node searches {}",
                node::SEARCH_DROP_IN_PATH,
                node::TEMPLATE_SEARCH_REGISTRIES.join(", ")
            )),
        },
    }
}

/// The decisions that differ between two explanations of the same reference.
fn compare(input: &str, before: &Explanation, after: &Explanation) -> Vec<Change> {
    let mut changes = Vec::new();
    let candidates = |e: &Explanation| {
        e.short_name.as_ref().map(|s| {
            s.candidates
                .iter()
                .map(|c| {
                    c.name
                        .clone()
                        .unwrap_or_else(|| format!("{} (invalid)", c.registry))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    if let (Some(b), Some(a)) = (candidates(before), candidates(after))
        && b != a
    {
        changes.push(Change::new(input, "short-name candidates", b, a));
    }
    if let (Some(b), Some(a)) = (&before.pull, &after.pull) {
        if b.allowed != a.allowed || (a.allowed && b.candidate != a.candidate) {
            changes.push(Change::new(input, "pull", b.state(), a.state()));
        }
        if b.allowed && a.allowed && b.insecure != a.insecure {
            changes.push(Change::new(
                input,
                "transport",
                b.transport(),
                a.transport(),
            ));
        }
    }
    if let (Some(b), Some(a)) = (&before.import, &after.import)
        && b.allowed != a.allowed
    {
        changes.push(Change::new(input, "import", b.state(), a.state()));
    }
    changes
}

impl Report {
    /// What the run concluded, the first that applies: no reference could be parsed, the
    /// config would be denied, a decision changes, nothing changes.
    pub fn conclusion(&self) -> Conclusion {
        if self.results.iter().all(|r| r.error.is_some()) {
            Conclusion::NoReference
        } else if self.verdict.as_ref().is_some_and(|v| !v.allowed) {
            Conclusion::Denied
        } else if self.changed == Some(true) {
            Conclusion::Changed
        } else {
            Conclusion::Unchanged
        }
    }

    /// The JSON document of the module docs.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings, booleans and options cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The text report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        write_config(&mut out, "config", &self.config, self.verdict.as_ref());
        if let Some(old) = &self.old {
            write_config(&mut out, "old", old, None);
        }
        for result in &self.results {
            out.push('\n');
            write_result(&mut out, result);
        }
        if let Some(changed) = self.changed {
            out.push('\n');
            let changes: Vec<&Change> = self
                .results
                .iter()
                .flat_map(|r| r.changes.iter().flatten())
                .collect();
            if changed {
                out.push_str(&format!("changes ({}):\n", changes.len()));
                for change in changes {
                    out.push_str(&format!("  {}\n", change.summary));
                }
            } else {
                out.push_str("changes: none, every decision stays the same\n");
            }
        }
        out
    }
}

fn write_config(
    out: &mut String,
    label: &str,
    config: &ConfigSummary,
    verdict: Option<&ConfigVerdict>,
) {
    match &config.source {
        Some(source) => out.push_str(&format!("{label}: {source}\n")),
        None => out.push_str(&format!(
            "{label}: (none: an empty spec, everything allowed)\n"
        )),
    }
    if let Some(verdict) = verdict {
        write_verdict(out, verdict);
    }
    for note in &config.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
}

/// The engine's verdict under the config line: a denial first, as `replay` prints it, then
/// each warning once.
fn write_verdict(out: &mut String, verdict: &ConfigVerdict) {
    let op = verdict.operation;
    let state = match (verdict.skipped, verdict.allowed) {
        (true, _) => format!("SKIPPED ({op}): the webhook does not judge it"),
        (false, true) => format!("ALLOWED ({op}) by the API server with this webhook"),
        (false, false) => format!(
            "DENIED ({op}) by the API server with this webhook: nodes never get this config"
        ),
    };
    line(out, "verdict:", &state);
    if let Some(denial) = &verdict.denial {
        more(out, denial);
    }
    for warning in &verdict.warnings {
        out.push_str(&format!("  Warning: {warning}\n"));
    }
    for note in &verdict.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
}

const LABEL: usize = 12;

fn line(out: &mut String, label: &str, text: &str) {
    out.push_str(&format!("  {label:<LABEL$}{text}\n"));
}

fn more(out: &mut String, text: &str) {
    out.push_str(&format!("  {:<LABEL$}{text}\n", ""));
}

fn write_result(out: &mut String, r: &Explanation) {
    out.push_str(&r.input);
    out.push('\n');
    if let Some(error) = &r.error {
        line(out, "error:", &format!("invalid reference: {error}"));
        return;
    }
    if let Some(n) = &r.reference {
        let mut what = Vec::new();
        if n.short_name {
            what.push("short name".to_owned());
        }
        if n.default_tag {
            what.push("tag \"latest\" by default".to_owned());
        }
        let text = if what.is_empty() {
            n.normalized.clone()
        } else {
            format!("{} ({})", n.normalized, what.join("; "))
        };
        line(out, "normalized:", &text);
    }
    if let Some(s) = &r.short_name {
        let source = s
            .search_field
            .clone()
            .unwrap_or_else(|| "the node default search list".to_owned());
        line(
            out,
            "short name:",
            &format!("CRI-O tries {source} in order:"),
        );
        for (i, c) in s.candidates.iter().enumerate() {
            let text = match (&c.name, &c.pull, &c.error) {
                (Some(name), Some(pull), _) => format!("{name}: pull {}", pull.state()),
                (_, _, Some(error)) => format!("{}: not usable: {error}", c.registry),
                _ => c.registry.clone(),
            };
            more(out, &format!("  {}. {text}", i + 1));
        }
        if s.candidates.is_empty() {
            more(out, "  (no search registries)");
        }
    }
    if let Some(p) = &r.pull {
        line(out, "pull:", &p.state());
        more(out, &p.how);
        if p.allowed {
            more(out, &format!("transport: {}", p.transport()));
        }
        if let Some(error) = &p.error {
            more(out, &format!("CRI-O: {error}"));
        }
        for note in &p.notes {
            more(out, &format!("note: {note}"));
        }
    }
    if let Some(i) = &r.import {
        line(out, "import:", &i.state());
        more(out, &i.how);
        if let Some(error) = &i.error {
            more(out, &format!("API server: {error}"));
        }
        for note in &i.notes {
            more(out, &format!("note: {note}"));
        }
    }
}

/// `(index, value)` of the string items of a list.
/// Explains one reference under the node model.
fn explain_one(node: &Node<'_>, input: &str) -> Explanation {
    let reference = match Reference::parse(input) {
        Ok(r) => r,
        Err(e) => {
            return Explanation {
                input: input.to_owned(),
                error: Some(e.to_string()),
                reference: None,
                short_name: None,
                pull: None,
                import: None,
                changes: None,
            };
        }
    };
    let (short_name, pull) = if reference.is_short_name() {
        let short = present_short_name(node, &node.short_name(&reference));
        let pull = summarize(&short, &reference);
        (Some(short), pull)
    } else {
        (None, present_pull(node, &reference, &node.pull(&reference)))
    };
    Explanation {
        input: input.to_owned(),
        error: None,
        reference: Some(Normalized::of(&reference)),
        short_name,
        pull: Some(pull),
        import: Some(present_import(&node.import(&reference))),
        changes: None,
    }
}

fn present_short_name(node: &Node<'_>, short: &node::ShortName) -> ShortName {
    ShortName {
        search_field: short.search_field.clone(),
        registries: short.registries.clone(),
        candidates: short
            .candidates
            .iter()
            .map(|c| match (&c.reference, &c.pull) {
                (Ok(reference), Some(pull)) => Candidate {
                    registry: c.registry.clone(),
                    name: Some(reference.to_string()),
                    error: None,
                    pull: Some(present_pull(node, reference, pull)),
                },
                (Ok(reference), None) => Candidate {
                    registry: c.registry.clone(),
                    name: Some(reference.to_string()),
                    error: None,
                    pull: None,
                },
                (Err(e), _) => Candidate {
                    registry: c.registry.clone(),
                    name: None,
                    error: Some(e.to_string()),
                    pull: None,
                },
            })
            .collect(),
    }
}

/// The node's pull answer in words: how the node decides and what CRI-O reports.
fn present_pull(node: &Node<'_>, reference: &Reference, answer: &node::Pull) -> Pull {
    let mut pull = Pull {
        allowed: answer.allowed,
        insecure: answer.insecure,
        candidate: None,
        decided_by: answer.decided_by.clone(),
        insecure_by: answer.insecure_by.clone(),
        how: String::new(),
        error: None,
        notes: Vec::new(),
    };
    let identity = &answer.identity;
    let entry = answer.entry.and_then(|i| node.registries_conf().get(i));
    if let Some(entry) = entry.filter(|_| answer.blocked) {
        let prefix = entry.match_prefix();
        pull.how = format!(
            "registries.conf: the longest [[registry]] prefix matching {} is {}, blocked = true",
            answer.name,
            go_quote(prefix)
        );
        pull.error = Some(format!(
            "registry {prefix} is blocked in /etc/containers/registries.conf or /etc/containers/registries.conf.d"
        ));
    } else {
        pull.how = match &answer.policy {
            PolicyDecision::Scope(k) => {
                let (scope, verb) =
                    node.policy_json()
                        .docker
                        .get(*k)
                        .map_or(("", "decides"), |s| {
                            let verb = if s.requirement.accepts() {
                                "accepts"
                            } else {
                                "rejects"
                            };
                            (s.scope.as_str(), verb)
                        });
                format!(
                    "policy.json: the most specific scope for {identity} is {}, which {verb} it",
                    go_quote(scope)
                )
            }
            PolicyDecision::Default(r) if r.accepts() => {
                format!("policy.json: no blocked scope matches {identity}; the default accepts it")
            }
            PolicyDecision::Default(_) => {
                format!("policy.json: no allowed scope matches {identity}; the default rejects it")
            }
            _ => "no allowedRegistries or blockedRegistries: policy.json accepts every image"
                .to_owned(),
        };
        if !pull.allowed {
            pull.error = Some(format!(
                "Source image rejected: Running image docker://{} is rejected by policy.",
                reference.familiar()
            ));
        }
    }
    for d in answer
        .rescued_by_exception
        .iter()
        .filter_map(|i| node.dropped().get(*i))
    {
        pull.notes.push(format!(
            "{} ({}) would block it, but the machine-config operator drops that entry: \
             it covers the release payload repository {}",
            d.entry.field,
            d.entry.value.as_deref().unwrap_or(""),
            d.payload_repository
        ));
    }
    if reference.tag().is_some() && reference.digest().is_some() {
        pull.notes.push(
            "both a tag and a digest: the digest chooses the image, the tag is ignored".to_owned(),
        );
    }
    pull.notes.extend(source_notes(answer, entry));
    pull
}

/// The endpoints of a pull with a cluster context, in words; none without one.
fn source_notes<'p>(
    answer: &'p node::Pull,
    entry: Option<&'p node::RegistryEntry>,
) -> impl Iterator<Item = String> + 'p {
    answer.sources.iter().map(move |s| source_note(s, entry))
}

/// One endpoint of a pull with a cluster context, in words (`MIRRORS.md` §7 step 5).
fn source_note(source: &node::PullSource, entry: Option<&node::RegistryEntry>) -> String {
    let mirror = source.mirror.zip(entry).and_then(|(k, e)| e.mirrors.get(k));
    let endpoint = match mirror {
        Some(m) => format!("mirror {} ({})", m.location, m.pull_from_mirror.as_str()),
        None => "source".to_owned(),
    };
    let what = match &source.decision {
        node::SourceDecision::Try => {
            let tls = match &source.insecure_by {
                Some(by) => format!("insecure by {by}"),
                None if source.insecure => "insecure".to_owned(),
                None => "TLS verified".to_owned(),
            };
            format!(
                "would contact {} if the image exists there ({tls})",
                source.reference
            )
        }
        node::SourceDecision::DigestOnlyMirror => "skipped: the pull is by tag".to_owned(),
        node::SourceDecision::TagOnlyMirror => "skipped: the pull is by digest".to_owned(),
        node::SourceDecision::Blocked { prefix, by } => {
            let by = by
                .as_ref()
                .map(|b| format!(" (by {b})"))
                .unwrap_or_default();
            format!("skipped: registry {prefix} is blocked{by}")
        }
    };
    format!("{endpoint}: {what}")
}

/// The node's import answer in words.
fn present_import(answer: &node::Import) -> Import {
    let checked = &answer.checked;
    let how = match answer.basis {
        ImportBasis::Unrestricted => format!(
            "whitelist: {IMPORT_LIST} is empty, openshift-apiserver allows every registry ({checked})"
        ),
        ImportBasis::Broken => {
            "whitelist: two or more colons, openshift-apiserver cannot build it".to_owned()
        }
        ImportBasis::Internal => {
            format!("whitelist: the internal registry is always allowed ({checked})")
        }
        ImportBasis::Entry => format!("whitelist: the entry's host and port globs match {checked}"),
        _ => format!("whitelist: no entry's host and port globs match {checked}"),
    };
    Import {
        allowed: answer.allowed,
        checked: checked.clone(),
        decided_by: answer.decided_by.clone(),
        how,
        error: answer.error.clone(),
        notes: answer
            .insecure_alternative
            .iter()
            .map(|by| {
                format!("an import with importPolicy.insecure: true would be allowed by {by}")
            })
            .collect(),
    }
}

/// The pull of a short name: the first allowed candidate, else the first candidate's refusal.
fn summarize(short: &ShortName, reference: &Reference) -> Pull {
    let usable: Vec<(&String, &Pull)> = short
        .candidates
        .iter()
        .filter_map(|c| c.name.as_ref().zip(c.pull.as_ref()))
        .collect();
    let order =
        "CRI-O tries the candidates in order and pulls the first that is allowed and exists";
    if let Some((name, pull)) = usable.iter().find(|(_, p)| p.allowed) {
        let mut pull = (*pull).clone();
        pull.candidate = Some((*name).clone());
        pull.notes.insert(0, order.to_owned());
        return pull;
    }
    if let Some((name, pull)) = usable.first() {
        let mut pull = (*pull).clone();
        pull.candidate = Some((*name).clone());
        pull.notes
            .insert(0, format!("{order}; every candidate is refused"));
        return pull;
    }
    Pull {
        allowed: false,
        insecure: false,
        candidate: None,
        decided_by: Some(DecidedBy::entry(
            short
                .search_field
                .clone()
                .unwrap_or_else(|| SEARCH_LIST.to_owned()),
            &format!("[{}]", short.registries.join(", ")),
        )),
        insecure_by: None,
        how: "no search registry makes a valid reference".to_owned(),
        error: Some(format!(
            "short-name {} did not resolve to an alias and no unqualified-search registries are defined",
            go_quote(reference.written_path())
        )),
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::input::Input;

    fn image(spec: Value) -> Value {
        json!({"apiVersion": "config.openshift.io/v1", "kind": "Image", "metadata": {"name": "cluster"}, "spec": spec})
    }

    fn report(spec: Value, old: Option<Value>, refs: &[&str]) -> Report {
        let refs: Vec<String> = refs.iter().map(|r| (*r).to_owned()).collect();
        let new = image(spec);
        let old = old.map(image);
        explain(
            ConfigSource {
                source: Some("new"),
                object: &new,
            },
            old.as_ref().map(|o| ConfigSource {
                source: Some("old"),
                object: o,
            }),
            &refs,
            &Settings::default(),
            None,
        )
    }

    fn one(spec: Value, reference: &str) -> Explanation {
        report(spec, None, &[reference]).results.remove(0)
    }

    /// With a cluster context, a pull lists its sources; without one, nothing is added.
    #[test]
    fn mirror_sources_are_notes_only_with_a_context() {
        use crate::context::{ClusterContext, MirrorRule, MirrorSet, MirrorSourcePolicy};
        let object =
            image(json!({"registrySources": {"blockedRegistries": ["registry.example.com"]}}));
        let decoded = decode(&object);
        let settings = Settings::default();
        let context = ClusterContext {
            digest_mirror_sets: vec![MirrorSet {
                name: "team".into(),
                rules: vec![MirrorRule {
                    source: "registry.example.com/team".into(),
                    mirrors: vec!["mirror.example.net/team".into()],
                    source_policy: Some(MirrorSourcePolicy::AllowContactingSource),
                }],
            }],
            ..ClusterContext::default()
        };
        let digest = "registry.example.com/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let reference = Reference::parse(digest).unwrap();
        let node = Node::with_context(&decoded.image, &settings, Some(&context));
        let pull = present_pull(&node, &reference, &node.pull(&reference));
        assert_eq!(
            pull.notes,
            [
                format!("mirror mirror.example.net/team (digest-only): would contact mirror.example.net/team/app@{} if the image exists there (TLS verified)", reference.digest().unwrap_or("")),
                "source: skipped: registry registry.example.com/team is blocked (by spec.registrySources.blockedRegistries[0]: registry.example.com)".to_owned(),
            ]
        );
        assert!(
            !pull.allowed,
            "policy.json still rejects the name: {pull:?}"
        );
        let node = Node::new(&decoded.image, &settings);
        assert!(
            present_pull(&node, &reference, &node.pull(&reference))
                .notes
                .is_empty()
        );
    }

    fn pull(spec: &Value, reference: &str) -> Pull {
        let e = one(spec.clone(), reference);
        e.pull
            .unwrap_or_else(|| panic!("{reference}: {:?}", e.error))
    }

    fn import(spec: &Value, reference: &str) -> Import {
        let e = one(spec.clone(), reference);
        e.import
            .unwrap_or_else(|| panic!("{reference}: {:?}", e.error))
    }

    /// `spec; reference => allowed, deciding field, deciding value` (`-` for none).
    macro_rules! pulls {
        ($($spec:expr; $reference:expr => $allowed:expr, $field:expr, $value:expr);* $(;)?) => {
            $(
                let p = pull(&$spec, $reference);
                let by = p.decided_by.clone().map(|d| (d.field, d.value.unwrap_or_else(|| "-".to_owned())));
                let want = Some(($field, $value)).filter(|(f, _)| *f != "-").map(|(f, v): (&str, &str)| (f.to_owned(), v.to_owned()));
                assert_eq!((p.allowed, by), ($allowed, want), "{} under {}\n{:#?}", $reference, $spec, p);
            )*
        };
    }

    /// `spec; reference => allowed, deciding field, deciding value, checked host:port`.
    macro_rules! imports {
        ($($spec:expr; $reference:expr => $allowed:expr, $field:expr, $value:expr, $checked:expr);* $(;)?) => {
            $(
                let i = import(&$spec, $reference);
                let by = i.decided_by.clone().map(|d| (d.field, d.value.unwrap_or_else(|| "-".to_owned())));
                let want = Some(($field, $value)).filter(|(f, _)| *f != "-").map(|(f, v): (&str, &str)| (f.to_owned(), v.to_owned()));
                assert_eq!((i.allowed, by, i.checked.as_str()), ($allowed, want, $checked), "{} under {}\n{:#?}", $reference, $spec, i);
            )*
        };
    }

    const B: &str = "spec.registrySources.blockedRegistries";
    const A: &str = "spec.registrySources.allowedRegistries";

    fn blocked(list: &[&str]) -> Value {
        json!({"registrySources": {"blockedRegistries": list}})
    }

    fn allowed(list: &[&str]) -> Value {
        json!({"registrySources": {"allowedRegistries": list}})
    }

    /// RULEBOOK section 6: registries.conf prefixes and policy.json scopes as MCO writes them.
    #[test]
    fn pulls_follow_registries_conf_and_policy_json() {
        let none = json!({});
        let wildcard = blocked(&["*.example.com"]);
        let plain = blocked(&["example.com"]);
        let namespace = blocked(&["reg.io/ns"]);
        let list = allowed(&["quay.io", "*.corp.example.com", "reg.io/ns/app"]);
        pulls! {
            none; "quay.io/a/b" => true, "-", "-";
            none; "nginx" => true, "-", "-";
            wildcard; "a.b.example.com/x" => false, "spec.registrySources.blockedRegistries[0]", "*.example.com";
            wildcard; "a.example.com:5000/x:1" => false, "spec.registrySources.blockedRegistries[0]", "*.example.com";
            wildcard; "example.com/x" => true, "-", "-";
            wildcard; "a.example.community/x" => true, "-", "-";
            // registries.conf: `example.com` also matches `example.com:5000` ("DON'T RELY").
            plain; "example.com:5000/x" => false, "spec.registrySources.blockedRegistries[0]", "example.com";
            plain; "example.com/x" => false, "spec.registrySources.blockedRegistries[0]", "example.com";
            plain; "a.example.com/x" => true, "-", "-";
            namespace; "reg.io/ns/app:1" => false, "spec.registrySources.blockedRegistries[0]", "reg.io/ns";
            namespace; "reg.io/nsx/app" => true, "-", "-";
            namespace; "reg.io/app" => true, "-", "-";
            list; "quay.io/x/y:1" => true, "spec.registrySources.allowedRegistries[0]", "quay.io";
            list; "a.corp.example.com:8443/y" => true, "spec.registrySources.allowedRegistries[1]", "*.corp.example.com";
            list; "reg.io/ns/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" => true, "spec.registrySources.allowedRegistries[2]", "reg.io/ns/app";
            list; "reg.io/ns/other" => false, A, "-";
            list; "corp.example.com/y" => false, A, "-";
            list; "nginx" => false, A, "-";
            list; "registry.redhat.io/ubi9/ubi:latest" => false, A, "-";
            // Scopes that never match a parsed reference.
            blocked(&["index.docker.io"]); "index.docker.io/library/nginx" => true, "-", "-";
            blocked(&["myregistry"]); "myregistry/app" => true, "-", "-";
            blocked(&["docker.io"]); "index.docker.io/nginx" => false, "spec.registrySources.blockedRegistries[0]", "docker.io";
        }
        let p = pull(&plain, "example.com:5000/x");
        assert!(p.how.starts_with("registries.conf:"), "{}", p.how);
        assert_eq!(
            p.error.as_deref(),
            Some(
                "registry example.com is blocked in /etc/containers/registries.conf or /etc/containers/registries.conf.d"
            )
        );
        let p = pull(&list, "docker.io/nginx:1");
        assert_eq!(
            p.how,
            "policy.json: no allowed scope matches docker.io/library/nginx:1; the default rejects it"
        );
        let p = pull(&list, "docker.io/library/nginx:1");
        assert_eq!(
            p.error.as_deref(),
            Some("Source image rejected: Running image docker://nginx:1 is rejected by policy.")
        );
        assert_eq!(p.state(), format!("BLOCKED by {A} (not listed)"));
    }

    #[test]
    fn insecure_registries() {
        let spec = json!({"registrySources": {"insecureRegistries": ["reg.io:5000", "*.lab.example.com"], "blockedRegistries": ["reg.io:5000/private"]}});
        let p = pull(&spec, "reg.io:5000/team/app");
        assert!(p.allowed && p.insecure);
        assert_eq!(
            p.insecure_by,
            Some(DecidedBy::entry(
                "spec.registrySources.insecureRegistries[0]".to_owned(),
                "reg.io:5000"
            ))
        );
        assert_eq!(
            p.transport(),
            "insecure by spec.registrySources.insecureRegistries[0]: reg.io:5000"
        );
        let p = pull(&spec, "reg.io:5000/private/app");
        assert!(
            !p.allowed && p.insecure,
            "the blocked table is insecure too"
        );
        let p = pull(&spec, "a.lab.example.com/x");
        assert!(p.insecure);
        let p = pull(&spec, "reg.io/team/app");
        assert!(p.allowed && !p.insecure);
        assert_eq!(p.transport(), "TLS verified");
    }

    /// MCO drops blocked entries that would block the release payload repository.
    #[test]
    fn the_release_payload_exception() {
        let spec = blocked(&[
            "quay.io",
            "docker.io",
            "*.io",
            "quay.io/openshift-release-dev/ocp-v4.0-art-dev",
            "quay.io/openshift-release-dev/ocp-release/sub",
        ]);
        let r = report(
            spec.clone(),
            None,
            &["quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64"],
        );
        assert_eq!(
            r.config.notes[0],
            "spec.registrySources.blockedRegistries[0]: \"quay.io\" is dropped by the machine-config operator: it covers the release payload repository quay.io/openshift-release-dev/ocp-release, so neither registries.conf nor policy.json blocks it"
        );
        let dropped: Vec<_> = r
            .config
            .notes
            .iter()
            .filter(|n| n.contains("is dropped"))
            .collect();
        // Only P, the release image's repository, is protected (MCO getPayloadRepo): an entry
        // for the component images' repository is kept.
        assert_eq!(dropped.len(), 2, "{:#?}", r.config.notes);
        let p = pull(
            &spec,
            "quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64",
        );
        assert!(p.allowed);
        assert_eq!(p.notes.len(), 2, "{:#?}", p.notes);
        assert_eq!(
            p.notes[0],
            "spec.registrySources.blockedRegistries[0] (quay.io) would block it, but the machine-config operator drops that entry: it covers the release payload repository quay.io/openshift-release-dev/ocp-release"
        );
        // The whole entry is gone: everything else on quay.io is allowed too.
        pulls! {
            spec; "quay.io/org/app" => true, "-", "-";
            spec; "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" => false, "spec.registrySources.blockedRegistries[3]", "quay.io/openshift-release-dev/ocp-v4.0-art-dev";
            spec; "quay.io/openshift-release-dev/ocp-release/sub/x" => false, "spec.registrySources.blockedRegistries[4]", "quay.io/openshift-release-dev/ocp-release/sub";
            spec; "docker.io/nginx" => false, "spec.registrySources.blockedRegistries[1]", "docker.io";
            // A short name falls through to the next search registry.
            spec; "nginx" => true, "-", "-";
        }
        // With another payload repository, `quay.io` is blocked.
        let refs = vec!["quay.io/org/app".to_owned()];
        let object = image(blocked(&["quay.io"]));
        let settings = Settings {
            payload_repository: Some("mirror.corp.example.com/ocp/release".to_owned()),
            ..Settings::default()
        };
        let r = explain(
            ConfigSource {
                source: None,
                object: &object,
            },
            None,
            &refs,
            &settings,
            None,
        );
        let p = r.results[0]
            .pull
            .clone()
            .unwrap_or_else(|| panic!("no pull"));
        assert!(!p.allowed);
        assert!(r.config.notes.is_empty());
    }

    #[test]
    fn config_notes_for_what_mco_and_crio_refuse() {
        let r = report(
            json!({"registrySources": {
                "allowedRegistries": ["quay.io", "*.a.com/x"],
                "blockedRegistries": ["docker.io", "http://evil.io"],
                "containerRuntimeSearchRegistries": ["quay.io", "https://x.io"],
            }, "allowedRegistriesForImport": [{"domainName": "a:b:c"}]}),
            None,
            &["quay.io/x"],
        );
        let notes = r.config.notes.join("\n");
        for want in [
            "spec.registrySources.allowedRegistries[1]: the machine-config operator refuses it (invalid entry for allowed registries \"*.a.com/x\")",
            "spec.registrySources.blockedRegistries[1]: containers/image refuses the location \"http://evil.io\"",
            "spec.registrySources: both allowedRegistries and blockedRegistries are set",
            "spec.registrySources.containerRuntimeSearchRegistries[1]: \"https://x.io\" is not a hostname[:port]",
            "spec.allowedRegistriesForImport[0].domainName: failed to parse allowed registry \"a:b:c\": too many colons",
        ] {
            assert!(notes.contains(want), "missing {want:?} in\n{notes}");
        }
        let i = r.results[0]
            .import
            .clone()
            .unwrap_or_else(|| panic!("no import"));
        assert!(!i.allowed);
        assert_eq!(
            i.decided_by,
            Some(DecidedBy::entry(
                "spec.allowedRegistriesForImport[0].domainName".to_owned(),
                "a:b:c"
            ))
        );
        let typed = report(
            json!({"registrySources": {"blockedRegistries": ["ok.io", 7]}}),
            None,
            &["ok.io/x"],
        );
        assert!(
            typed.config.notes[0]
                .starts_with("ignored: spec.registrySources.blockedRegistries[1]: Invalid value"),
            "{:?}",
            typed.config.notes
        );
        assert!(!typed.results[0].pull.as_ref().is_some_and(|p| p.allowed));
    }

    /// RULEBOOK section 7, through the references a user writes.
    #[test]
    fn imports_follow_the_whitelister() {
        let list = |entries: Value| json!({"allowedRegistriesForImport": entries});
        let none = json!({});
        let wildcard = list(json!([{"domainName": "*.example.com"}]));
        let hub = list(json!([{"domainName": "docker.io:*"}]));
        let two = list(json!([{"domainName": "??.example.com"}]));
        let star = list(json!([{"domainName": "*"}]));
        let any = list(json!([{"domainName": "*:*"}]));
        let insecure = list(json!([{"domainName": "quay.io", "insecure": true}]));
        let upper = list(json!([{"domainName": "Quay.io"}]));
        let path = list(json!([{"domainName": "quay.io/openshift-release-dev"}]));
        let empty = list(json!([{"domainName": ""}]));
        const I: &str = "spec.allowedRegistriesForImport";
        imports! {
            none; "quay.io/x" => true, "-", "-", "quay.io:443";
            wildcard; "a.example.com/x" => true, "spec.allowedRegistriesForImport[0]", "*.example.com", "a.example.com:443";
            wildcard; "a.b.example.com/x" => true, "spec.allowedRegistriesForImport[0]", "*.example.com", "a.b.example.com:443";
            wildcard; "example.com/x" => false, I, "-", "example.com:443";
            wildcard; "a.example.com:5000/x" => false, I, "-", "a.example.com:5000";
            hub; "nginx" => true, "spec.allowedRegistriesForImport[0]", "docker.io:*", "docker.io:443";
            hub; "docker.io:5000/x" => true, "spec.allowedRegistriesForImport[0]", "docker.io:*", "docker.io:5000";
            hub; "index.docker.io/library/nginx" => true, "spec.allowedRegistriesForImport[0]", "docker.io:*", "registry-1.docker.io:443";
            hub; "docker.io/nginx" => true, "spec.allowedRegistriesForImport[0]", "docker.io:*", "registry-1.docker.io:443";
            two; "ab.example.com/x" => true, "spec.allowedRegistriesForImport[0]", "??.example.com", "ab.example.com:443";
            two; "a.example.com/x" => false, I, "-", "a.example.com:443";
            two; "abc.example.com/x" => false, I, "-", "abc.example.com:443";
            two; "a.b.example.com/x" => false, I, "-", "a.b.example.com:443";
            star; "any.io/x" => true, "spec.allowedRegistriesForImport[0]", "*", "any.io:443";
            star; "any.io:80/x" => false, I, "-", "any.io:80";
            any; "any.io:8080/x" => true, "spec.allowedRegistriesForImport[0]", "*:*", "any.io:8080";
            insecure; "quay.io/x" => false, I, "-", "quay.io:443";
            insecure; "quay.io:80/x" => true, "spec.allowedRegistriesForImport[0]", "quay.io (insecure)", "quay.io:80";
            upper; "quay.io/x" => false, I, "-", "quay.io:443";
            path; "quay.io/openshift-release-dev/ocp-release" => false, I, "-", "quay.io:443";
            empty; "quay.io/x" => false, I, "-", "quay.io:443";
            empty; "image-registry.openshift-image-registry.svc:5000/ns/is:1" => true, "internal registry (--internal-registry)", "image-registry.openshift-image-registry.svc:5000", "image-registry.openshift-image-registry.svc:5000";
        }
    }

    /// A refused import quotes the whitelister's error, and says when an insecure import
    /// would pass.
    #[test]
    fn refused_imports_quote_the_whitelister() {
        let list = |entries: Value| json!({"allowedRegistriesForImport": entries});
        let wildcard = list(json!([{"domainName": "*.example.com"}]));
        let insecure = list(json!([{"domainName": "quay.io", "insecure": true}]));
        let path = list(json!([{"domainName": "quay.io/openshift-release-dev"}]));
        let i = import(&path, "quay.io/openshift-release-dev/ocp-release:4.18");
        assert_eq!(
            i.error.as_deref(),
            Some(
                r#"registry "quay.io" not allowed by whitelist: "image-registry.openshift-image-registry.svc:5000", "quay.io/openshift-release-dev:443""#
            )
        );
        let i = import(&insecure, "quay.io/x");
        assert_eq!(
            i.notes,
            [
                "an import with importPolicy.insecure: true would be allowed by spec.allowedRegistriesForImport[0]: quay.io (insecure)"
            ]
        );
        let i = import(&wildcard, "nginx");
        assert_eq!(
            i.error.as_deref(),
            Some(
                r#"registry "docker.io:443" not allowed by whitelist: "image-registry.openshift-image-registry.svc:5000", "*.example.com:443""#
            )
        );
    }

    #[test]
    fn the_status_names_the_internal_registry_for_imports() {
        let wildcard = json!({"allowedRegistriesForImport": [{"domainName": "*.example.com"}]});
        let mut spec = wildcard.clone();
        let object = json!({"kind": "Image", "spec": spec.take(), "status": {"internalRegistryHostname": "registry.internal:5000"}});
        let refs = vec!["registry.internal:5000/ns/is".to_owned()];
        let r = explain(
            ConfigSource {
                source: None,
                object: &object,
            },
            None,
            &refs,
            &Settings::default(),
            None,
        );
        let i = r.results[0]
            .import
            .clone()
            .unwrap_or_else(|| panic!("no import"));
        assert_eq!(
            i.decided_by,
            Some(DecidedBy::entry(
                "status.internalRegistryHostname".to_owned(),
                "registry.internal:5000"
            ))
        );
    }

    #[test]
    fn short_names_try_the_search_registries_in_order() {
        let names = |e: &Explanation| -> Vec<Option<String>> {
            e.short_name
                .iter()
                .flat_map(|s| s.candidates.iter().map(|c| c.name.clone()))
                .collect()
        };
        let default = one(json!({}), "nginx");
        assert_eq!(
            default.short_name.as_ref().map(|s| s.search_field.clone()),
            Some(None)
        );
        assert_eq!(
            names(&default),
            [
                Some("registry.access.redhat.com/nginx:latest".to_owned()),
                Some("docker.io/library/nginx:latest".to_owned())
            ]
        );
        let spec = json!({"registrySources": {"containerRuntimeSearchRegistries": ["quay.io", "docker.io"], "blockedRegistries": ["docker.io"]}});
        let e = one(spec.clone(), "library/nginx:1.25");
        assert_eq!(
            names(&e),
            [
                Some("quay.io/library/nginx:1.25".to_owned()),
                Some("docker.io/library/nginx:1.25".to_owned())
            ]
        );
        let p = e.pull.unwrap_or_else(|| panic!("no pull"));
        assert_eq!(p.state(), "allowed as quay.io/library/nginx:1.25");
        let candidates = e.short_name.map(|s| s.candidates).unwrap_or_default();
        assert_eq!(
            candidates[1].pull.as_ref().map(Pull::state),
            Some(format!("BLOCKED by {B}[0]: docker.io"))
        );
        let all = json!({"registrySources": {"containerRuntimeSearchRegistries": ["docker.io"], "blockedRegistries": ["docker.io"]}});
        let p = pull(&all, "nginx");
        assert!(!p.allowed);
        assert_eq!(
            p.candidate.as_deref(),
            Some("docker.io/library/nginx:latest")
        );
        assert!(
            p.notes[0].ends_with("every candidate is refused"),
            "{:?}",
            p.notes
        );
        let bad = json!({"registrySources": {"containerRuntimeSearchRegistries": ["myregistry", "https://x.io"]}});
        let e = one(bad, "nginx");
        assert_eq!(names(&e), [None, None]);
        let p = e.pull.unwrap_or_else(|| panic!("no pull"));
        assert!(!p.allowed);
        assert_eq!(
            p.decided_by,
            Some(DecidedBy::entry(
                SEARCH_LIST.to_owned(),
                "[myregistry, https://x.io]"
            ))
        );
        // An explicit registry is never expanded.
        for qualified in [
            "quay.io/nginx",
            "localhost/nginx",
            "docker.io/nginx",
            "reg:5000/nginx",
        ] {
            assert!(
                one(json!({}), qualified).short_name.is_none(),
                "{qualified}"
            );
        }
    }

    #[test]
    fn invalid_references_are_errors_for_themselves_only() {
        let r = report(json!({}), None, &["Nginx", "quay.io/ok"]);
        assert_eq!(
            r.results[0].error.as_deref(),
            Some("invalid reference format: repository name (library/Nginx) must be lowercase")
        );
        assert!(r.results[0].pull.is_none());
        assert!(r.results[1].pull.as_ref().is_some_and(|p| p.allowed));
        assert_eq!(r.conclusion(), Conclusion::Unchanged);
        assert_eq!(
            report(json!({}), None, &["", "a b"]).conclusion(),
            Conclusion::NoReference
        );
    }

    /// The `--old` comparison, reference by reference.
    #[test]
    fn changes_against_the_old_config() {
        let payload = "quay.io/openshift-release-dev/ocp-release";
        let r = report(
            allowed(&["registry.example.com"]),
            Some(json!({})),
            &[payload, "registry.example.com/a"],
        );
        let summaries: Vec<&str> = r
            .results
            .iter()
            .flat_map(|e| e.changes.iter().flatten())
            .map(|c| c.summary.as_str())
            .collect();
        assert_eq!(
            summaries,
            [
                "quay.io/openshift-release-dev/ocp-release: pull allowed -> BLOCKED by spec.registrySources.allowedRegistries (not listed)"
            ]
        );
        assert_eq!(
            (r.changed, r.conclusion()),
            (Some(true), Conclusion::Changed)
        );
        let back = report(
            json!({}),
            Some(allowed(&["registry.example.com"])),
            &[payload],
        );
        assert_eq!(
            back.results[0]
                .changes
                .as_ref()
                .map(|c| c[0].summary.clone())
                .as_deref(),
            Some(
                "quay.io/openshift-release-dev/ocp-release: pull BLOCKED by spec.registrySources.allowedRegistries (not listed) -> allowed"
            )
        );
        // The same decisions, reached by other entries, are no change.
        let same = report(
            allowed(&["quay.io"]),
            Some(allowed(&["quay.io/openshift-release-dev"])),
            &[payload],
        );
        assert_eq!(
            (same.changed, same.conclusion()),
            (Some(false), Conclusion::Unchanged)
        );
        assert_eq!(same.results[0].changes, Some(vec![]));
        // Without an old config there is nothing to compare.
        let alone = report(allowed(&["quay.io"]), None, &[payload]);
        assert_eq!(
            (
                alone.changed,
                alone.results[0].changes.clone(),
                alone.conclusion()
            ),
            (None, None, Conclusion::Unchanged)
        );
    }

    /// Every aspect that changes is a change of its own: short names, transport and imports.
    #[test]
    fn each_changed_aspect_is_reported() {
        let payload = "quay.io/openshift-release-dev/ocp-release";
        let new = json!({
            "registrySources": {"containerRuntimeSearchRegistries": ["quay.io"], "insecureRegistries": ["quay.io"]},
            "allowedRegistriesForImport": [{"domainName": "quay.io"}],
        });
        let r = report(new, Some(json!({})), &["nginx"]);
        let changes: Vec<(&str, String, String)> = r.results[0]
            .changes
            .iter()
            .flatten()
            .map(|c| (c.aspect, c.before.clone(), c.after.clone()))
            .collect();
        assert_eq!(
            changes,
            [
                (
                    "short-name candidates",
                    "registry.access.redhat.com/nginx:latest, docker.io/library/nginx:latest"
                        .to_owned(),
                    "quay.io/nginx:latest".to_owned()
                ),
                (
                    "pull",
                    "allowed as registry.access.redhat.com/nginx:latest".to_owned(),
                    "allowed as quay.io/nginx:latest".to_owned()
                ),
                (
                    "transport",
                    "TLS verified".to_owned(),
                    "insecure by spec.registrySources.insecureRegistries[0]: quay.io".to_owned()
                ),
                (
                    "import",
                    "allowed".to_owned(),
                    "REFUSED by spec.allowedRegistriesForImport (not listed)".to_owned()
                ),
            ]
        );
        // A payload-covering block is dropped: blocking quay.io changes nothing for the payload.
        let r = report(
            blocked(&["quay.io"]),
            Some(json!({})),
            &[payload, "quay.io/org/app"],
        );
        assert_eq!(r.changed, Some(false));
    }

    #[test]
    fn config_files_of_every_shape() {
        let input = |text: &str| Input {
            source: "t".to_owned(),
            text: Ok(text.to_owned()),
            json: false,
        };
        let image = r#"{"kind": "Image", "spec": {}}"#;
        assert!(read_config(&input(image)).is_ok_and(|f| f.old.is_none()));
        let list = r#"{"kind": "ImageList", "items": [{"kind": "Image", "spec": {}}]}"#;
        assert!(read_config(&input(list)).is_ok());
        let review = r#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "operation": "UPDATE",
            "object": {"kind": "Image", "spec": {"registrySources": {"blockedRegistries": ["a.io"]}}}, "oldObject": {"kind": "Image", "spec": {}}}}"#;
        let file = read_config(&input(review)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.old, Some(json!({"kind": "Image", "spec": {}})));
        let errors = [
            (r#"{"kind": "List", "items": []}"#, "holds no Image"),
            (
                r#"{"kind": "List", "items": [{}, {}]}"#,
                "holds 2 objects; one Image is needed",
            ),
            (r#"{"kind": "Pod"}"#, "holds a Pod, not an Image"),
            ("[1, 2]", "the Image is not a JSON object"),
            (
                r#"{"kind": "AdmissionReview", "request": {"uid": "u", "operation": "DELETE", "oldObject": {}}}"#,
                "the AdmissionReview carries no object",
            ),
        ];
        for (text, want) in errors {
            let got = read_config(&input(text)).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_owned()), "{text}");
        }
        assert!(
            read_config(&input("{")).is_err_and(|e| matches!(e, ConfigFileError::Input(_))
                && e.to_string().starts_with("malformed YAML"))
        );
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(Settings::default().check(), Ok(()));
        let bad = Settings {
            payload_repository: Some("quay.io/x:tag".to_owned()),
            ..Settings::default()
        };
        assert!(bad.check().is_err());
        let bad = Settings {
            internal_registry: "https://x".to_owned(),
            ..Settings::default()
        };
        assert!(bad.check().is_err());
    }

    proptest::proptest! {
        /// Any references under any lists: never a panic, always one JSON document.
        #[test]
        fn never_panics(
            refs in proptest::collection::vec("[a-zA-Z0-9./:@_*?\\[\\]-]{0,40}", 1..4),
            lists in proptest::collection::vec(proptest::collection::vec("[a-zA-Z0-9./:@_*?\\[\\]-]{0,20}", 0..4), 5),
            insecure in proptest::bool::ANY,
        ) {
            let spec = json!({
                "registrySources": {
                    "allowedRegistries": lists[0], "blockedRegistries": lists[1],
                    "insecureRegistries": lists[2], "containerRuntimeSearchRegistries": lists[3],
                },
                "allowedRegistriesForImport": lists[4].iter().map(|d| json!({"domainName": d, "insecure": insecure})).collect::<Vec<_>>(),
            });
            let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
            let r = report(spec, Some(json!({})), &refs);
            let parsed: Result<Value, _> = serde_json::from_str(&r.to_json());
            proptest::prop_assert!(parsed.is_ok());
            proptest::prop_assert!(!r.to_text().is_empty());
        }
    }
}
