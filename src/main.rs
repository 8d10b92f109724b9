//! The `image-config-webhook` command: the only place that prints and picks exit codes.
//!
//! Every command ends in an [`Ended`]: what it concluded, or the [`Failure`] that stopped it,
//! built from the library's error kinds and printed here once (`error: <failure>`). The exit
//! status is chosen in one exhaustive function, [`exit_code`]: 0 all allowed (with
//! expectations: all met), 1 a denial (with expectations: a mismatch; with `replay
//! --fail-on-warn` also a warning), 2 an input that cannot be read or judged, or a usage error,
//! 3 an internal error; `explain` adds 4 (`--render`: the machine-config operator refuses) and
//! 5 (the API server would deny the config); `certs check` exits 1 when the bundle does not
//! verify the certificate or it expires within `--min-days`.
// The CLI, the outermost adapter (clippy.toml): files, the environment, the clock.
#![allow(clippy::disallowed_methods)]

use std::error::Error;
use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use image_config_webhook::certs::{self, CertsError};
use image_config_webhook::context::ClusterContext;
use image_config_webhook::context::load::{self as context_load, LoadErrors};
use image_config_webhook::envelope::Operation;
use image_config_webhook::explain::{self, ConfigSource};
use image_config_webhook::input::{self, ConfigFile, ConfigFileError};
use image_config_webhook::node;
use image_config_webhook::policy::{ConfigError, Policy, Settings};
use image_config_webhook::remote::{Remote, RemoteError};
use image_config_webhook::replay::{self, Expectation, ExpectationError, Options};
use image_config_webhook::rules::RULES;
use image_config_webhook::server::tls::{TlsSettings, TlsVersion};
use image_config_webhook::server::watch::ApiServer;
use image_config_webhook::server::{self, ServeConfig, ServerError};

#[derive(Parser)]
#[command(
    name = "image-config-webhook",
    version,
    about = "Guards the OpenShift config.openshift.io/v1 Image object"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge AdmissionReview fixtures or Image YAML offline, with the webhook's engine.
    Replay(Box<ReplayArgs>),
    /// Serve the admission webhook over TLS.
    Serve(Box<ServeArgs>),
    /// Write a CA and a serving certificate for the webhook's Service.
    Certs(Box<CertsArgs>),
    /// Show what an Image config does to image references: node pulls, imports, short names.
    ///
    /// With --old (or an AdmissionReview's oldObject), show what the change would change.
    Explain(Box<ExplainArgs>),
    /// List every rule the engine enforces: id, tier, operations (C create, U update, S status
    /// subresource update, D delete) and field.
    #[command(after_help = RULES_LEGEND)]
    Rules {
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = RulesFormat::Text)]
        output: RulesFormat,
    },
}

/// What the columns of `rules` mean; the head of its text output and of its `--help`.
const RULES_LEGEND: &str = "\
Each rule is listed as: ID TIER [OPS] FIELD, then what it checks, why, and its source.
  TIER  U upstream: OpenShift rejects it too; P protective: rejected here, upstream is silent;
        W warning: allowed, with a warning
  OPS   the operations it judges: C create, U update, S status subresource update, D delete";

#[derive(clap::Args)]
#[command(after_help = "\
Exit status:
  0  every input was allowed; with expectations (--expect, or a fixture's recorded response),
     every expectation was met
  1  a denial; with expectations, a mismatch or an expectation that matched no input; with
     --fail-on-warn, also any warning
  2  an input could not be read or parsed, a request could not be judged (with --server: the
     webhook was unreachable, timed out or gave an unusable answer), or a usage error
  3  an internal error: the engine panicked on an input (a bug)
The highest that applies wins.")]
struct ReplayArgs {
    /// Files or directories (recursive: .json, .yaml, .yml); `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ReplayFormat::Text)]
    output: ReplayFormat,
    /// Operation for bare Image documents [default: CREATE, or UPDATE with --old].
    #[arg(long, value_enum)]
    operation: Option<Op>,
    /// The current object (Image, one-item List or AdmissionReview): bare Images are replayed
    /// as an UPDATE of it.
    #[arg(long, value_name = "FILE")]
    old: Option<String>,
    /// Suite files of expectations (uid or source; allowed, code, causes, warnings, rules).
    #[arg(long, value_name = "FILE")]
    expect: Vec<String>,
    /// Send the requests to a live webhook (https://HOST:PORT/validate) instead of the
    /// in-process engine; rule ids are then not reported. A progress bar shows on stderr when
    /// it is a terminal and the output is text.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// CA bundle (PEM) to trust for --server [default: the system bundle].
    #[arg(long, value_name = "FILE", requires = "server")]
    ca: Option<PathBuf>,
    /// With --server: requests in flight at once. Results are reported in input order.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = concurrency, requires = "server")]
    concurrency: usize,
    /// With --server: longest call (connect, TLS handshake, request and answer), as the API
    /// server bounds a webhook call by its timeoutSeconds.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = call_timeout, requires = "server")]
    timeout: Duration,
    /// With --server: stop sending after 3 requests in a row found the webhook unreachable (a
    /// connection, TLS or timeout failure); the requests not sent are reported as errors.
    #[arg(long, requires = "server")]
    fail_fast: bool,
    /// Exit 1 when any warning fires, as for a denial (JUnit: a failure).
    #[arg(long)]
    fail_on_warn: bool,
    /// Cluster context to judge with: ImageDigestMirrorSets, ImageTagMirrorSets,
    /// ImageContentSourcePolicies and ClusterVersion `version`, from files or directories (YAML
    /// or JSON, several documents, Lists; e.g. the output of `oc get
    /// imagedigestmirrorsets,imagetagmirrorsets,imagecontentsourcepolicies,clusterversion -o
    /// yaml`). Objects of other kinds are ignored with a note on stderr. Repeatable [default:
    /// no context].
    #[arg(long = "context", value_name = "FILE|DIR", conflicts_with = "server")]
    context: Vec<String>,
    #[command(flatten)]
    settings: SettingsArgs,
}

/// The settings `serve`, `replay` and `explain` share: one set of flags and environment
/// variables, read into one [`Settings`].
#[derive(clap::Args)]
struct SettingsArgs {
    /// The release image (ClusterVersion status.desired.image), fully qualified, by digest or
    /// tag: quay.io/openshift-release-dev/ocp-release@sha256:<digest>. Its repository is the
    /// one the machine-config operator's payload exception protects, and its namespace holds
    /// the payload's images [default: the repository quay.io/openshift-release-dev/ocp-release].
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_RELEASE_IMAGE", value_name = "REF")]
    release_image: Option<String>,
    /// Deprecated, use --release-image (removed in the next release): release payload
    /// repositories; the first is taken as the release image's repository.
    #[arg(
        long = "release-repository",
        visible_alias = "release-repo",
        env = "IMAGE_CONFIG_WEBHOOK_RELEASE_REPOSITORY",
        value_delimiter = ',',
        value_name = "REPO"
    )]
    release_repositories: Vec<String>,
    /// Release registries that allow-lists and import lists must admit and block-lists must
    /// not block.
    #[arg(long = "release-registry", env = "IMAGE_CONFIG_WEBHOOK_RELEASE_REGISTRY", value_delimiter = ',', value_name = "REGISTRY", default_values_t = Settings::default().release_registries)]
    release_registries: Vec<String>,
    /// Internal registry, when the config's status.internalRegistryHostname is empty.
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_INTERNAL_REGISTRY", value_name = "HOST:PORT", default_value_t = Settings::default().internal_registry)]
    internal_registry: String,
    /// Registries that should not resolve short names.
    #[arg(long = "public-search-registry", env = "IMAGE_CONFIG_WEBHOOK_PUBLIC_SEARCH_REGISTRY", value_delimiter = ',', value_name = "REGISTRY", default_values_t = Settings::default().public_search_registries)]
    public_search_registries: Vec<String>,
    /// The webhook's name as the API server prints it in denials.
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_WEBHOOK_NAME", value_name = "NAME", default_value_t = Settings::default().webhook_name)]
    webhook_name: String,
}

/// Why the settings flags cannot be used.
#[derive(Debug)]
enum SettingsError {
    /// The release image is no reference MCO can parse: the flag's value and MCO's render
    /// error.
    ReleaseImage(String, node::RenderError),
    /// A setting the policy cannot use.
    Invalid(ConfigError),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::ReleaseImage(image, e) => write!(
                f,
                "--release-image {image}: {e}: the machine-config operator renders nothing with it"
            ),
            SettingsError::Invalid(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl Error for SettingsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SettingsError::ReleaseImage(_, e) => Some(e),
            SettingsError::Invalid(e) => Some(e),
        }
    }
}

impl SettingsArgs {
    /// The checked settings, and the deprecation warnings to show.
    fn into_settings(self) -> Result<(Settings, Vec<String>), SettingsError> {
        let mut warnings = Vec::new();
        let payload_repository = match (&self.release_image, self.release_repositories.first()) {
            (Some(image), deprecated) => {
                if deprecated.is_some() {
                    warnings.push(
                        "--release-repository (IMAGE_CONFIG_WEBHOOK_RELEASE_REPOSITORY) is \
                         deprecated and ignored when --release-image is given"
                            .to_owned(),
                    );
                }
                node::payload_repository(image)
                    .map_err(|e| SettingsError::ReleaseImage(image.clone(), e))?
            }
            (None, Some(first)) => {
                warnings.push(format!(
                    "--release-repository and --release-repo (IMAGE_CONFIG_WEBHOOK_RELEASE_REPOSITORY) \
                     are deprecated and will be removed in the next release: use --release-image \
                     (taking {first:?} as the release image's repository)"
                ));
                first.clone()
            }
            (None, None) => node::DEFAULT_PAYLOAD_REPOSITORY.to_owned(),
        };
        let settings = Settings {
            release_registries: self.release_registries,
            payload_repository: Some(payload_repository),
            internal_registry: self.internal_registry,
            public_search_registries: self.public_search_registries,
            webhook_name: self.webhook_name,
        };
        settings.check().map_err(SettingsError::Invalid)?;
        Ok((settings, warnings))
    }
}

#[derive(clap::Args)]
#[command(after_help = "\
For each reference: its normalised name; for a short name the search registries CRI-O tries, in
order, and each candidate; whether a node may pull it (and over TLS or not), naming the deciding
entry (spec.registrySources.blockedRegistries[2]: *.example.com), as the machine-config operator
writes registries.conf and policy.json, with the release-payload exception; whether an ImageStream
may import it, with the API server's error text when refused.

The release-payload exception: the machine-config operator drops every blocked entry that covers
the repository of the release image (--release-image; without it
quay.io/openshift-release-dev/ocp-release).

--render FILE prints one file as the machine-config operator writes it on every node, byte for
byte, to diff against the node's copy: registries.conf (/etc/containers/registries.conf),
policy.json (/etc/containers/policy.json) or search
(/etc/containers/registries.conf.d/01-image-searchRegistries.conf). Notes go to stderr.

With --config, the engine judges the config first, as replay does (a CREATE, or an UPDATE of
--old): the verdict heads the output, with the field-path errors oc apply would print for a
denial, and the config's warnings, once.

Exit status: 0 no decision changes (always 0 without an old config; with --render: the file is
printed), 1 some decision changes against the old config, 2 a config file cannot be used or a
usage error, or no reference at all can be parsed, 4 (--render) the machine-config operator
refuses to render the config: nothing on stdout, its error verbatim on stderr, and nodes keep
their current files, 5 the API server would deny the config with this webhook installed (the
decisions shown are what nodes would do if it were applied anyway).
An invalid reference is an error for that reference only: it is reported in its result and the
others are still explained.")]
struct ExplainArgs {
    /// Image references as users write them: nginx, quay.io/org/app:1.2,
    /// registry:5000/ns/app@sha256:<digest>.
    #[arg(required_unless_present = "render", value_name = "IMAGE_REF")]
    references: Vec<String>,
    /// The Image config: an Image, a one-item ImageList or List, or an AdmissionReview (its
    /// object; its oldObject serves as --old) [default: an empty spec, everything allowed].
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// The current config, to show what changes (Image, one-item List or AdmissionReview's
    /// object).
    #[arg(long, value_name = "FILE", conflicts_with = "render")]
    old: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = RulesFormat::Text)]
    output: RulesFormat,
    /// Cluster context to judge with: ImageDigestMirrorSets, ImageTagMirrorSets,
    /// ImageContentSourcePolicies and ClusterVersion `version`, from files or directories (YAML
    /// or JSON, several documents, Lists; e.g. the output of `oc get
    /// imagedigestmirrorsets,imagetagmirrorsets,imagecontentsourcepolicies,clusterversion -o
    /// yaml`). Objects of other kinds are ignored with a note on stderr. Repeatable [default:
    /// no context].
    #[arg(long = "context", value_name = "FILE|DIR")]
    context: Vec<String>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Print the file the machine-config operator writes for --config instead of explaining
    /// references.
    #[arg(long, value_enum, value_name = "FILE", conflicts_with = "references")]
    render: Option<RenderFile>,
}

/// The files `explain --render` prints.
#[derive(Clone, Copy, ValueEnum)]
enum RenderFile {
    /// /etc/containers/registries.conf
    #[value(name = "registries.conf")]
    RegistriesConf,
    /// /etc/containers/policy.json
    #[value(name = "policy.json")]
    PolicyJson,
    /// /etc/containers/registries.conf.d/01-image-searchRegistries.conf
    Search,
}

#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
Without a subcommand: a new CA and serving certificate. With --ca-dir the CA is kept there, and
`certs renew` later issues new serving certificates from it without changing the caBundle;
`certs rotate-ca` changes the CA itself in three steps (certs/README.md walks through them).
Exit status: 0 done (check: the bundle verifies the certificate, with --min-days left), 1 check:
not verified, expired or expiring within --min-days, 2 unusable flags or files."
)]
struct CertsArgs {
    #[command(subcommand)]
    action: Option<CertsAction>,
    #[command(flatten)]
    target: CertsTarget,
    /// Where to write ca.crt (the caBundle), tls.crt and tls.key.
    #[arg(long, value_name = "DIR", default_value = "certs")]
    out: PathBuf,
    /// Keep the CA in DIR (ca.crt, and ca.key with mode 0600), never in --out, so that `certs
    /// renew` can issue from it [default: the CA key is not kept].
    #[arg(long, value_name = "DIR")]
    ca_dir: Option<PathBuf>,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    /// Print the base64 CA bundle for a webhook configuration's caBundle (of the existing
    /// ca.crt when the files exist and --force is not given).
    #[arg(long)]
    print_ca_bundle: bool,
}

/// The Service a serving certificate is for.
#[derive(clap::Args)]
struct CertsTarget {
    /// The Service name.
    #[arg(long, default_value = certs::DEFAULT_SERVICE)]
    service: String,
    /// The Service's namespace.
    #[arg(long, default_value = certs::DEFAULT_NAMESPACE)]
    namespace: String,
}

#[derive(Subcommand)]
enum CertsAction {
    /// A new serving certificate from the CA kept in --ca-dir, for the same names; the caBundle
    /// (--out's ca.crt) does not change.
    Renew(KeptArgs),
    /// Change the CA: step 1 writes a caBundle with the current and a new CA; after `certs
    /// renew` (step 2) and once the pods serve its certificate, --finish (step 3) drops the old CA.
    RotateCa {
        #[command(flatten)]
        kept: KeptArgs,
        /// Step 3: the caBundle becomes the new CA alone and the previous CA is deleted; refused
        /// until --out's certificate is issued by the new CA.
        #[arg(long)]
        finish: bool,
    },
    /// Whether a CA bundle verifies the serving certificate for the Service's DNS name, and how
    /// long until it expires.
    Check(CheckArgs),
}

#[derive(clap::Args)]
struct KeptArgs {
    #[command(flatten)]
    target: CertsTarget,
    /// The CA's directory (ca.crt, ca.key), written by `certs --ca-dir DIR`.
    #[arg(long, value_name = "DIR")]
    ca_dir: PathBuf,
    /// Where ca.crt (the caBundle), tls.crt and tls.key are.
    #[arg(long, value_name = "DIR", default_value = "certs")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    target: CertsTarget,
    /// The CA bundle (PEM) the API server trusts: the caBundle, decoded.
    #[arg(long, value_name = "FILE")]
    ca_bundle: PathBuf,
    /// The directory of the serving certificate (DIR/tls.crt, leaf first).
    #[arg(long, value_name = "DIR")]
    cert_dir: PathBuf,
    /// Fail (exit 1) when the certificate expires within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = certs::check::DEFAULT_MIN_DAYS)]
    min_days: i64,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Local trial: when the certificate or key is missing, write throwaway ones (and their
    /// CA, ca.crt) next to them first.
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_DEV")]
    dev: bool,
    /// Address to serve HTTPS on; `[::]` also accepts IPv4.
    #[arg(
        long,
        env = "IMAGE_CONFIG_WEBHOOK_LISTEN",
        value_name = "ADDR",
        default_value = "[::]:8443"
    )]
    listen: SocketAddr,
    /// Certificate chain (leaf first), PEM.
    #[arg(
        long,
        env = "IMAGE_CONFIG_WEBHOOK_CERT",
        value_name = "FILE",
        default_value = "certs/tls.crt"
    )]
    cert: PathBuf,
    /// Private key, PEM.
    #[arg(
        long,
        env = "IMAGE_CONFIG_WEBHOOK_KEY",
        value_name = "FILE",
        default_value = "certs/tls.key"
    )]
    key: PathBuf,
    /// Read DIR/tls.crt and DIR/tls.key (a mounted kubernetes.io/tls Secret); overrides --cert and --key.
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_CERT_DIR", value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Require client certificates signed by this CA bundle (mTLS from the API server) [default: off].
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_CLIENT_CA", value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// Lowest TLS version accepted.
    #[arg(
        long,
        env = "IMAGE_CONFIG_WEBHOOK_TLS_MIN_VERSION",
        value_enum,
        default_value = "1.2"
    )]
    tls_min_version: TlsVersion,
    /// Also offer HTTP/2 (the API server speaks HTTP/1.1 to webhooks).
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_HTTP2")]
    http2: bool,
    /// How often to re-read the certificate files, on top of watching their directory.
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_CERT_POLL_INTERVAL", value_name = "DURATION", default_value = "10s", value_parser = duration)]
    cert_poll_interval: Duration,
    /// Also serve /healthz, /readyz and /metrics over plain HTTP on this address [default: off].
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_PROBE_ADDR", value_name = "ADDR")]
    probe_addr: Option<SocketAddr>,
    /// Longest TLS handshake.
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_HANDSHAKE_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = duration)]
    handshake_timeout: Duration,
    /// Longest wait for a new connection's first request headers (a slow client is cut off).
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_HEADER_READ_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = duration)]
    header_read_timeout: Duration,
    /// How long a kept-alive connection may stay idle. Short, so that idle connections cannot
    /// hoard the connection slots; the API server reconnects cheaply.
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_IDLE_TIMEOUT", value_name = "DURATION", default_value = "15s", value_parser = duration)]
    idle_timeout: Duration,
    /// How long a write to a client may make no progress before the connection is closed (a
    /// client that does not read its answer).
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_WRITE_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = duration)]
    write_timeout: Duration,
    /// Deadline for a request that carries no ?timeout= parameter (a ?timeout= is honoured up to
    /// 30 s, the API server's own maximum).
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_REQUEST_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = duration)]
    request_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM or SIGINT.
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_SHUTDOWN_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = duration)]
    shutdown_timeout: Duration,
    /// Most connections open at once on the HTTPS listener, counting those still in the TLS
    /// handshake; a connection beyond it is closed as soon as it is accepted, before any TLS
    /// work. Keep the file-descriptor limit (ulimit -n) above it.
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_MAX_CONNECTIONS", value_name = "N", default_value_t = server::limit::DEFAULT_MAX_CONNECTIONS, value_parser = max_connections)]
    max_connections: usize,
    /// Most connections open at once from one client address on the HTTPS listener, so that one
    /// pod cannot take every slot.
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_MAX_CONNECTIONS_PER_PEER", value_name = "N", default_value_t = server::limit::DEFAULT_MAX_CONNECTIONS_PER_PEER, value_parser = max_connections)]
    max_connections_per_peer: usize,
    /// Watch ImageDigestMirrorSets, ImageTagMirrorSets, ImageContentSourcePolicies and
    /// ClusterVersion `version` through the API server (the pod's service account, or
    /// KUBECONFIG) and judge every review with their current state. Never delays a review or
    /// readiness: a kind that cannot be listed (the API server unreachable, the kind not served,
    /// as on plain Kubernetes) is judged without, and retried [default: off].
    #[arg(long, env = "IMAGE_CONFIG_WEBHOOK_CLUSTER_CONTEXT")]
    cluster_context: bool,
    /// Log format.
    #[arg(
        long,
        env = "IMAGE_CONFIG_WEBHOOK_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Log level or tracing filter (e.g. `info`, `debug`, `image_config_webhook=debug`); an
    /// invalid one stops the start (exit 2).
    #[arg(
        long,
        env = "IMAGE_CONFIG_WEBHOOK_LOG_LEVEL",
        value_name = "FILTER",
        default_value = "info",
        value_parser = log_filter
    )]
    log_level: String,
    #[command(flatten)]
    settings: SettingsArgs,
}

fn max_connections(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of connections from 1 to 1000000"
        )),
    }
}

fn concurrency(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a number of requests from 1 to 256")),
    }
}

/// Words often given for a level that tracing would read as a target name (and so log
/// nothing at the intended level).
const NOT_LEVELS: [&str; 7] = [
    "warning",
    "err",
    "fatal",
    "critical",
    "verbose",
    "notice",
    "information",
];

/// A `--log-level`: a tracing filter that parses, and no level misspelt as a target.
fn log_filter(s: &str) -> Result<String, String> {
    for directive in s.split(',').map(str::trim) {
        if NOT_LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{directive:?} is not a level: use error, warn, info, debug, trace or off \
                 (or TARGET=LEVEL)"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| {
            format!("{s:?} is not a log filter ({e}): use a level (error, warn, info, debug, trace, off) or TARGET=LEVEL, comma-separated")
        })
}

fn call_timeout(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: a call needs some time")),
        d => Ok(d),
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    server::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration like 10s, 500ms or 2m"))
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReplayFormat {
    Text,
    Json,
    Junit,
}

#[derive(Clone, Copy, ValueEnum)]
enum RulesFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
enum Op {
    Create,
    Update,
    Delete,
}

/// How a command ended: what it concluded, or the failure that stopped it. [`exit_code`] turns
/// it into the process's exit status.
#[derive(Debug)]
enum Ended {
    /// The work was done (or stdout was closed under it, as by `| head`).
    Done,
    /// Only help or the version was asked for (clap printed it).
    Help,
    /// `replay` judged every input.
    Replayed(replay::Conclusion),
    /// `explain` explained the references.
    Explained(explain::Conclusion),
    /// `explain --render`: the machine-config operator refuses to render the config (its
    /// error is already on stderr).
    RenderRefused,
    /// `certs check`: the bundle does not verify the certificate, or it expires within
    /// `--min-days` (the report is already on stdout).
    CheckFailed,
    /// The command stopped: the failure, printed as `error: <failure>` (clap's own errors as
    /// clap prints them).
    Failed(Failure),
}

impl From<Failure> for Ended {
    fn from(failure: Failure) -> Self {
        Ended::Failed(failure)
    }
}

/// Why a command stopped before doing its work.
#[derive(Debug)]
enum Failure {
    /// The command line does not parse (clap's error).
    Arguments(clap::Error),
    /// The settings flags (shared by `serve`, `replay` and `explain`) cannot be used.
    Settings(SettingsError),
    /// A file named by a flag (`--old`, `--expect`, `--config`) cannot be used.
    File(FileFlagError),
    /// A `--context` input cannot be read, or holds a malformed object: every such error.
    Context(LoadErrors),
    /// `replay --server` (or `--ca`) cannot be used.
    Remote(RemoteError),
    /// `certs` cannot write the certificates.
    Certs(CertsError),
    /// `certs` cannot read a certificate file (`--print-ca-bundle`: the existing CA; `check`:
    /// the bundle or the serving certificate).
    ReadCa(PathBuf, std::io::Error),
    /// `certs check`: the bundle, the certificate or the name cannot be used.
    Check(Option<PathBuf>, certs::check::CheckError),
    /// `serve --dev` cannot write its throwaway certificates.
    DevCerts(CertsError),
    /// `serve --dev` with a certificate and key that are not `DIR/tls.crt` and `DIR/tls.key`.
    DevLayout,
    /// `serve` without `--dev`: the certificate or the key does not exist.
    MissingCert(PathBuf),
    /// `serve` cannot start the async runtime (the system is at fault, not the flags).
    Runtime(std::io::Error),
    /// `serve` cannot bind, load its certificates, or serve.
    Serve(ServerError),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Arguments(e) => std::fmt::Display::fmt(e, f),
            Failure::Settings(e) => std::fmt::Display::fmt(e, f),
            Failure::File(e) => std::fmt::Display::fmt(e, f),
            // One `error:` line each, as `main` heads the first.
            Failure::Context(errors) => {
                for (i, e) in errors.0.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\nerror: ")?;
                    }
                    write!(f, "--context {e}")?;
                }
                Ok(())
            }
            Failure::Remote(e) => write!(f, "--server: {e}"),
            Failure::Certs(e) => std::fmt::Display::fmt(e, f),
            Failure::ReadCa(path, e) => write!(f, "{}: cannot read: {e}", path.display()),
            Failure::Check(Some(path), e) => write!(f, "{}: {e}", path.display()),
            Failure::Check(None, e) => std::fmt::Display::fmt(e, f),
            Failure::DevCerts(e) => write!(f, "--dev: {e}"),
            Failure::DevLayout => f.write_str(
                "--dev writes DIR/tls.crt and DIR/tls.key: use --cert-dir DIR (or the defaults)",
            ),
            Failure::MissingCert(path) => write!(
                f,
                "{} does not exist: the webhook needs a serving certificate and key.\n\
                 For a local trial, add --dev: it writes throwaway ones (and their CA, ca.crt) there.\n\
                 For a cluster, write them with `image-config-webhook certs --out DIR` (or mount a \
                 kubernetes.io/tls Secret) and pass --cert-dir DIR, or --cert and --key.",
                path.display()
            ),
            Failure::Runtime(e) => write!(f, "cannot start the async runtime: {e}"),
            Failure::Serve(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Failure::Arguments(e) => Some(e),
            Failure::Settings(e) => Some(e),
            Failure::File(e) => Some(e),
            Failure::Context(e) => Some(e),
            Failure::Remote(e) => Some(e),
            Failure::Certs(e) | Failure::DevCerts(e) => Some(e),
            Failure::ReadCa(_, e) | Failure::Runtime(e) => Some(e),
            Failure::Check(_, e) => Some(e),
            Failure::DevLayout | Failure::MissingCert(_) => None,
            Failure::Serve(e) => Some(e),
        }
    }
}

/// A file named by a flag that cannot be used: the flag, the path as given, and why.
#[derive(Debug)]
struct FileFlagError {
    /// `--old`, `--expect` or `--config`.
    flag: &'static str,
    /// The path as given.
    path: String,
    /// Why it cannot be used.
    kind: FileFlagErrorKind,
}

/// The kinds of [`FileFlagError`].
#[derive(Debug)]
enum FileFlagErrorKind {
    /// The path names no input at all.
    Unreadable,
    /// The path names a directory of several files, where one is needed.
    NotOneFile,
    /// The file holds no usable Image config.
    Config(ConfigFileError),
    /// The file holds no usable suite of expectations.
    Suite(ExpectationError),
}

impl FileFlagError {
    fn new(flag: &'static str, path: &str, kind: FileFlagErrorKind) -> Self {
        FileFlagError {
            flag,
            path: path.to_owned(),
            kind,
        }
    }
}

impl fmt::Display for FileFlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.flag, self.path)?;
        match &self.kind {
            FileFlagErrorKind::Unreadable => f.write_str("cannot be read"),
            FileFlagErrorKind::NotOneFile => f.write_str("one file is needed"),
            FileFlagErrorKind::Config(e) => std::fmt::Display::fmt(e, f),
            FileFlagErrorKind::Suite(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl Error for FileFlagError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.kind {
            FileFlagErrorKind::Unreadable | FileFlagErrorKind::NotOneFile => None,
            FileFlagErrorKind::Config(e) => Some(e),
            FileFlagErrorKind::Suite(e) => Some(e),
        }
    }
}

/// The exit status for how a command ended: the one place the codes are chosen.
///
/// `replay`: 0 every input allowed (with expectations: every one met), 1 a denial or mismatch
/// (with `--fail-on-warn` also a warning), 2 an input that cannot be read or judged, or a usage
/// error, 3 an internal error. `explain`: 0 no decision changes, 1 some decision changes, 2 a
/// usage error or no reference can be parsed, 4 (`--render`) the machine-config operator
/// refuses to render, 5 the API server would deny the config. `serve`, `certs`: 2 for unusable
/// flags, certificates or addresses, 3 when the async runtime cannot start; `certs check` 1 when
/// the bundle does not verify the certificate or it expires within `--min-days`.
fn exit_code(ended: &Ended) -> u8 {
    match ended {
        Ended::Done | Ended::Help => 0,
        Ended::Replayed(conclusion) => match conclusion {
            replay::Conclusion::Pass => 0,
            replay::Conclusion::Fail => 1,
            replay::Conclusion::Error => 2,
            replay::Conclusion::Internal => 3,
        },
        Ended::Explained(conclusion) => match conclusion {
            explain::Conclusion::Unchanged => 0,
            explain::Conclusion::Changed => 1,
            explain::Conclusion::NoReference => 2,
            explain::Conclusion::Denied => 5,
        },
        Ended::RenderRefused => 4,
        Ended::CheckFailed => 1,
        Ended::Failed(failure) => match failure {
            Failure::Arguments(_)
            | Failure::Settings(_)
            | Failure::File(_)
            | Failure::Context(_)
            | Failure::Remote(_)
            | Failure::Certs(_)
            | Failure::ReadCa(..)
            | Failure::Check(..)
            | Failure::DevCerts(_)
            | Failure::DevLayout
            | Failure::MissingCert(_)
            | Failure::Serve(_) => 2,
            Failure::Runtime(_) => 3,
        },
    }
}

fn main() -> ExitCode {
    let ended = match Cli::try_parse() {
        Ok(cli) => match cli.command {
            Command::Replay(args) => run_replay(*args),
            Command::Serve(args) => run_serve(*args),
            Command::Certs(args) => run_certs(*args),
            Command::Explain(args) => run_explain(*args),
            Command::Rules { output } => print_rules(output),
        },
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                Ended::Failed(Failure::Arguments(e))
            } else {
                Ended::Help
            }
        }
    };
    match &ended {
        // clap has printed its own error, with its own layout.
        Ended::Failed(Failure::Arguments(_)) => {}
        // One line naming the flag, file or address and the problem.
        Ended::Failed(failure) => eprintln!("error: {failure}"),
        _ => {}
    }
    ExitCode::from(exit_code(&ended))
}

/// The policy the settings flags give, after printing their deprecation warnings with `warn`.
fn policy_from(settings: SettingsArgs, warn: impl Fn(&str)) -> Result<Policy, Failure> {
    let (settings, warnings) = settings.into_settings().map_err(Failure::Settings)?;
    for warning in warnings {
        warn(&warning);
    }
    Policy::new(settings).map_err(|e| Failure::Settings(SettingsError::Invalid(e)))
}

fn run_replay(args: ReplayArgs) -> Ended {
    let policy = match policy_from(args.settings, |w| eprintln!("warning: {w}")) {
        Ok(policy) => policy,
        Err(failure) => return failure.into(),
    };
    let policy = match context_from(&args.context) {
        Ok(context) => policy.with_context(context),
        Err(failure) => return failure.into(),
    };
    let options = match replay_options(
        args.old.as_deref(),
        &args.expect,
        args.operation,
        args.fail_on_warn,
    ) {
        Ok(options) => options,
        Err(failure) => return failure.into(),
    };
    let inputs = input::load_inputs(&args.paths);
    let report = match &args.server {
        Some(url) => match Remote::new(url, args.ca.as_deref()) {
            Ok(remote) => {
                let options = Options {
                    concurrency: args.concurrency,
                    fail_fast: args.fail_fast,
                    ..options
                };
                let remote = remote.with_timeout(args.timeout);
                let stderr_is_terminal = std::io::stderr().is_terminal();
                if shows_progress(args.output, stderr_is_terminal) {
                    replay::replay_with(&inputs, &options, &remote, &Bar::new())
                } else {
                    replay::replay(&inputs, &options, &remote)
                }
            }
            Err(e) => return Failure::Remote(e).into(),
        },
        None => replay::replay(&inputs, &options, &replay::Local(&policy)),
    };
    let text = match args.output {
        ReplayFormat::Text => report.to_text(&policy.settings().webhook_name),
        ReplayFormat::Json => {
            for r in &report.results {
                for note in &r.notes {
                    eprintln!("{}: note: {note}", r.source);
                }
            }
            for u in &report.unmatched {
                eprintln!("MISMATCH: {u}");
            }
            report.to_json() + "\n"
        }
        ReplayFormat::Junit => report.to_junit(),
    };
    if write_stdout(&text).is_err() {
        return Ended::Done;
    }
    Ended::Replayed(report.conclusion())
}

/// The context `--context` names (`None` without the flag), its notes printed on stderr.
fn context_from(paths: &[String]) -> Result<Option<Arc<ClusterContext>>, Failure> {
    if paths.is_empty() {
        return Ok(None);
    }
    let loaded = context_load::from_inputs(&input::load_inputs(paths)).map_err(Failure::Context)?;
    for note in &loaded.notes {
        eprintln!("note: {note}");
    }
    Ok(Some(Arc::new(loaded.context)))
}

/// `replay`'s options from its flags: the operation, `--old`, the `--expect` suites and
/// `--fail-on-warn`.
fn replay_options(
    old: Option<&str>,
    expect: &[String],
    operation: Option<Op>,
    fail_on_warn: bool,
) -> Result<Options, Failure> {
    let mut options = Options {
        operation: operation.map(|op| match op {
            Op::Create => Operation::Create,
            Op::Update => Operation::Update,
            Op::Delete => Operation::Delete,
        }),
        fail_on_warn,
        ..Options::default()
    };
    if let Some(old) = old {
        let input = input::load_inputs(&[old.to_owned()]).into_iter().next();
        let fail = |kind| Failure::File(FileFlagError::new("--old", old, kind));
        match input.map(|i| input::old_object_from(&i)) {
            Some(Ok(old)) => options.old = Some(old),
            Some(Err(e)) => return Err(fail(FileFlagErrorKind::Config(e))),
            None => return Err(fail(FileFlagErrorKind::Unreadable)),
        }
    }
    for suite in input::load_inputs(expect) {
        match Expectation::parse_suite(&suite) {
            Ok(entries) => options.expectations.extend(entries),
            Err(e) => {
                let kind = FileFlagErrorKind::Suite(e);
                return Err(Failure::File(FileFlagError::new(
                    "--expect",
                    &suite.source,
                    kind,
                )));
            }
        }
    }
    Ok(options)
}

/// Whether `replay --server` draws a progress bar: only for a person watching a terminal,
/// never into a pipe or a file, nor beside a machine-read report.
fn shows_progress(output: ReplayFormat, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && matches!(output, ReplayFormat::Text)
}

/// The progress bar of `replay --server`, on stderr.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed}] {wide_bar} {pos}/{len} requests",
        ) {
            bar.set_style(style);
        }
        Bar(bar)
    }
}

impl replay::Progress for Bar {
    fn start(&self, total: usize) {
        self.0.set_length(u64::try_from(total).unwrap_or(u64::MAX));
        // Redraws (the elapsed time) while every request in flight waits for its answer.
        self.0.enable_steady_tick(Duration::from_millis(200));
    }

    fn advance(&self) {
        self.0.inc(1);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn run_explain(args: ExplainArgs) -> Ended {
    let settings = match args.settings.into_settings() {
        Ok((settings, warnings)) => {
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            settings
        }
        Err(SettingsError::ReleaseImage(_, e)) if args.render.is_some() => {
            eprintln!("{}", e.logged());
            return Ended::RenderRefused;
        }
        Err(e) => return Failure::Settings(e).into(),
    };
    let context = match context_from(&args.context) {
        Ok(context) => context,
        Err(failure) => return failure.into(),
    };
    let (config, review_old) = match &args.config {
        Some(path) => match read_config_flag("--config", path) {
            Ok(file) => (Some(file.image), file.old),
            Err(failure) => return failure.into(),
        },
        None => (None, None),
    };
    let empty = serde_json::json!({});
    if let Some(file) = args.render {
        return render(
            config.as_ref().unwrap_or(&empty),
            &settings,
            context.as_deref(),
            file,
        );
    }
    let old = match &args.old {
        Some(path) => match read_config_flag("--old", path) {
            Ok(file) => Some((path.clone(), file.image)),
            Err(failure) => return failure.into(),
        },
        None => review_old.map(|v| {
            let source = args.config.as_deref().unwrap_or("-");
            (format!("{source} (oldObject)"), v)
        }),
    };
    let config_source = ConfigSource {
        source: args.config.as_deref(),
        object: config.as_ref().unwrap_or(&empty),
    };
    let old_source = old.as_ref().map(|(source, object)| ConfigSource {
        source: Some(source),
        object,
    });
    let mut report = explain::explain(
        config_source,
        old_source,
        &args.references,
        &settings,
        context.as_deref(),
    );
    // The engine first: would the API server take this config at all?
    if config.is_some() {
        let verdict = match Policy::new(settings) {
            Ok(policy) => {
                let policy = policy.with_context(context);
                explain::judge_config(config_source, old_source, &policy).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match verdict {
            Ok(verdict) => report.verdict = Some(verdict),
            Err(e) => report.config.notes.push(format!("not judged: {e}")),
        }
    }
    let text = match args.output {
        RulesFormat::Text => report.to_text(),
        RulesFormat::Json => report.to_json() + "\n",
    };
    if write_stdout(&text).is_err() {
        return Ended::Done;
    }
    Ended::Explained(report.conclusion())
}

/// The config `flag` names: one file holding an Image, a one-item List or an AdmissionReview.
fn read_config_flag(flag: &'static str, path: &str) -> Result<ConfigFile, Failure> {
    let fail = |kind| Failure::File(FileFlagError::new(flag, path, kind));
    let mut inputs = input::load_inputs(&[path.to_owned()]);
    match (inputs.pop(), inputs.is_empty()) {
        (Some(input), true) => {
            explain::read_config(&input).map_err(|e| fail(FileFlagErrorKind::Config(e)))
        }
        _ => Err(fail(FileFlagErrorKind::NotOneFile)),
    }
}

/// `explain --render`: prints the file the machine-config operator writes for `config`, or its
/// refusal on stderr.
fn render(
    config: &serde_json::Value,
    settings: &Settings,
    context: Option<&ClusterContext>,
    file: RenderFile,
) -> Ended {
    let target = match file {
        RenderFile::RegistriesConf => explain::RenderTarget::RegistriesConf,
        RenderFile::PolicyJson => explain::RenderTarget::PolicyJson,
        RenderFile::Search => explain::RenderTarget::Search,
    };
    match explain::render(config, settings, context, target) {
        explain::Rendering::File(file) => {
            if let Some(note) = &file.note {
                eprintln!("note: {note}");
            }
            let _ = write_stdout(&file.content);
            Ended::Done
        }
        explain::Rendering::NotWritten(note) => {
            eprintln!("note: {note}");
            Ended::Done
        }
        explain::Rendering::Refused(e) => {
            eprintln!("{}", e.logged());
            eprintln!(
                "note: the machine-config operator refuses to render this config; nodes keep their current files"
            );
            Ended::RenderRefused
        }
        _ => Ended::Done,
    }
}

fn run_certs(args: CertsArgs) -> Ended {
    let CertsArgs {
        action,
        target,
        out,
        ca_dir,
        force,
        print_ca_bundle,
    } = args;
    let (service, namespace) = (target.service.as_str(), target.namespace.as_str());
    match action {
        Some(CertsAction::Renew(k)) => print_done(certs::kept::renew(
            &k.target.service,
            &k.target.namespace,
            &k.ca_dir,
            &k.out,
        )),
        Some(CertsAction::RotateCa { kept: k, finish }) => print_done(if finish {
            certs::kept::finish_rotation(&k.target.service, &k.target.namespace, &k.ca_dir, &k.out)
        } else {
            certs::kept::rotate_ca(&k.target.service, &k.ca_dir, &k.out)
        }),
        Some(CertsAction::Check(c)) => run_check(&c),
        None => {
            let ca = out.join("ca.crt");
            if print_ca_bundle && !force && ca.exists() {
                return match std::fs::read(&ca) {
                    Ok(pem) => {
                        let _ = write_stdout(&(certs::base64(&pem) + "\n"));
                        Ended::Done
                    }
                    Err(e) => Failure::ReadCa(ca, e).into(),
                };
            }
            match ca_dir {
                Some(dir) => match certs::kept::generate(service, namespace, &dir, &out, force) {
                    Ok(done) if print_ca_bundle => {
                        let _ = write_stdout(&(certs::base64(done.bundle_pem.as_bytes()) + "\n"));
                        Ended::Done
                    }
                    other => print_done(other),
                },
                None => generate_certs(service, namespace, &out, force, print_ca_bundle),
            }
        }
    }
}

/// `certs` without --ca-dir: a CA that is not kept, and a serving pair.
fn generate_certs(
    service: &str,
    namespace: &str,
    out: &Path,
    force: bool,
    print_ca_bundle: bool,
) -> Ended {
    match certs::generate(service, namespace, out, force) {
        Ok(written) => {
            if print_ca_bundle {
                let _ = write_stdout(&(certs::base64(written.ca_pem.as_bytes()) + "\n"));
            } else {
                let names = certs::subject_alt_names(service, namespace).join(", ");
                let _ = write_stdout(&format!(
                    "wrote {}, {} and {} (key mode 0600)\nserving certificate valid for: {names}\n",
                    written.ca.display(),
                    written.cert.display(),
                    written.key.display()
                ));
            }
            Ended::Done
        }
        Err(e) => Failure::Certs(e).into(),
    }
}

/// What a kept-CA command wrote and removed, whether the caBundle changed, and the next step.
fn print_done(done: Result<certs::kept::Done, CertsError>) -> Ended {
    let done = match done {
        Ok(done) => done,
        Err(e) => return Failure::Certs(e).into(),
    };
    let mut text = String::new();
    for path in &done.wrote {
        let mode = if path.extension().is_some_and(|e| e == "key") {
            " (mode 0600)"
        } else {
            ""
        };
        text += &format!("wrote {}{mode}\n", path.display());
    }
    for path in &done.removed {
        text += &format!("removed {}\n", path.display());
    }
    text += if done.bundle_changed {
        "caBundle: changed\n"
    } else {
        "caBundle: unchanged\n"
    };
    text += &format!("next: {}\n", done.next);
    let _ = write_stdout(&text);
    Ended::Done
}

/// `certs check`: the report on stdout; exit 1 unless it passed.
fn run_check(args: &CheckArgs) -> Ended {
    let chain_path = args.cert_dir.join("tls.crt");
    let read = |path: &Path| std::fs::read(path).map_err(|e| Failure::ReadCa(path.to_owned(), e));
    let (bundle, chain) = match (read(&args.ca_bundle), read(&chain_path)) {
        (Ok(bundle), Ok(chain)) => (bundle, chain),
        (Err(failure), _) | (_, Err(failure)) => return failure.into(),
    };
    let name = format!("{}.{}.svc", args.target.service, args.target.namespace);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    match certs::check::check(&bundle, &chain, &name, now, args.min_days) {
        Ok(report) => {
            let _ = write_stdout(&format!("{report}\n"));
            if report.passed() {
                Ended::Done
            } else {
                Ended::CheckFailed
            }
        }
        Err(e) => {
            let path = match e.input {
                certs::check::Input::Bundle => Some(args.ca_bundle.clone()),
                certs::check::Input::Chain => Some(chain_path),
                _ => None,
            };
            Failure::Check(path, e).into()
        }
    }
}

fn run_serve(args: ServeArgs) -> Ended {
    init_logging(args.log_format, &args.log_level);
    let policy = match policy_from(args.settings, |w| tracing::warn!("{w}")) {
        Ok(policy) => policy,
        Err(failure) => return failure.into(),
    };
    let (cert, key) = match &args.cert_dir {
        Some(dir) => (dir.join("tls.crt"), dir.join("tls.key")),
        None => (args.cert.clone(), args.key.clone()),
    };
    if let Err(failure) = ensure_serving_pair(args.dev, &cert, &key) {
        return failure.into();
    }
    let config = ServeConfig {
        listen: args.listen,
        probe_addr: args.probe_addr,
        tls: TlsSettings {
            cert,
            key,
            client_ca: args.client_ca,
            min_version: args.tls_min_version,
            http2: args.http2,
        },
        cert_poll_interval: args.cert_poll_interval,
        handshake_timeout: args.handshake_timeout,
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        write_timeout: args.write_timeout,
        request_timeout: args.request_timeout,
        shutdown_timeout: args.shutdown_timeout,
        max_connections: args.max_connections,
        max_connections_per_peer: args.max_connections_per_peer,
        body_budgets: Default::default(),
        evictable_after: server::limit::EVICTABLE_AFTER,
        policy,
        cluster_context: args.cluster_context.then_some(ApiServer::Infer),
    };
    match serve(config) {
        Ok(()) => Ended::Done,
        Err(failure) => failure.into(),
    }
}

/// Checks that the serving certificate and key exist; with `dev`, writes throwaway ones (and
/// their CA) first when either is missing.
fn ensure_serving_pair(dev: bool, cert: &Path, key: &Path) -> Result<(), Failure> {
    if dev && !(cert.exists() && key.exists()) {
        let dir = cert.parent().unwrap_or(Path::new("")).to_owned();
        if cert != dir.join("tls.crt") || key != dir.join("tls.key") {
            return Err(Failure::DevLayout);
        }
        let w = certs::generate(
            certs::DEFAULT_SERVICE,
            certs::DEFAULT_NAMESPACE,
            &dir,
            false,
        )
        .map_err(Failure::DevCerts)?;
        tracing::warn!(
            ca = %w.ca.display(),
            cert = %w.cert.display(),
            "DEV MODE: generated a THROWAWAY CA and serving certificate; trust {} to call the webhook. \
             Never use these in a cluster.",
            w.ca.display()
        );
    }
    if !dev
        && let Some(missing) = [cert, key]
            .into_iter()
            .find(|p| matches!(p.try_exists(), Ok(false)))
    {
        return Err(Failure::MissingCert(missing.to_owned()));
    }
    Ok(())
}

/// Serves until a shutdown signal, on a runtime of its own.
fn serve(config: ServeConfig) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::Runtime)?;
    let outcome = runtime.block_on(server::run(config, server::shutdown_signal()));
    // Nothing left on the runtime after the drain may keep the process alive past the grace
    // period. (A review still running on a review thread is not waited for at all: those are
    // plain threads, ended with the process.)
    runtime.shutdown_timeout(Duration::from_millis(500));
    outcome.map_err(Failure::Serve)
}

fn init_logging(format: LogFormat, filter: &str) {
    // rustls warns about every client that sends an IP address as SNI (curl, wrk do): a client
    // must not be able to flood the log, so its records are off unless asked for by name.
    let mut directives = filter.to_owned();
    if !filter.contains("rustls") {
        directives.push_str(",rustls=off");
    }
    // The kube client logs an error per failed request, so one per retry while the API server
    // is away: `--cluster-context` says each change of state once itself (server::watch), with
    // the reason. Its records are off unless asked for by name, as rustls's are.
    if !filter.contains("kube") {
        directives.push_str(",kube_client=off,kube_runtime=off");
    }
    // `filter` was checked by `log_filter` when the arguments were parsed.
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustls=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn print_rules(format: RulesFormat) -> Ended {
    let text = match format {
        RulesFormat::Json => {
            let rules: Vec<_> = RULES
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "tier": r.tier.code(),
                        "field": r.field,
                        "check": r.check,
                        "why": r.why,
                        "source": r.source,
                        "ops": r.phases.iter().map(|p| p.code()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            serde_json::to_string_pretty(&json!({ "rules": rules })).unwrap_or_default() + "\n"
        }
        RulesFormat::Text => {
            let mut out: String = RULES_LEGEND.lines().map(|l| format!("# {l}\n")).collect();
            out.push('\n');
            for r in RULES {
                let ops: Vec<_> = r.phases.iter().map(|p| p.code()).collect();
                out.push_str(&format!(
                    "{:<4} {} [{}] {}\n",
                    r.id,
                    r.tier.code(),
                    ops.join(","),
                    r.field
                ));
                out.push_str(&format!(
                    "     checks: {}\n     why:    {}\n     source: {}\n",
                    r.check, r.why, r.source
                ));
            }
            out
        }
    };
    let _ = write_stdout(&text);
    Ended::Done
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_is_for_a_terminal_and_text_output_only() {
        assert!(shows_progress(ReplayFormat::Text, true));
        assert!(!shows_progress(ReplayFormat::Text, false));
        assert!(!shows_progress(ReplayFormat::Json, true));
        assert!(!shows_progress(ReplayFormat::Junit, true));
    }

    #[test]
    fn the_default_timeout_is_the_webhook_s_own() {
        assert_eq!(
            call_timeout("5s"),
            Ok(image_config_webhook::remote::DEFAULT_TIMEOUT)
        );
        assert!(call_timeout("0s").is_err());
    }

    #[test]
    fn log_filters() {
        for ok in [
            "info",
            "warn,image_config_webhook=debug",
            "off",
            "rustls=info",
        ] {
            assert_eq!(log_filter(ok).as_deref(), Ok(ok));
        }
        for bad in ["warning", "info,Verbose", "x=loud", "[{"] {
            assert!(log_filter(bad).is_err(), "{bad}");
        }
    }
}
