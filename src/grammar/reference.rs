//! Image references as a user writes them (`nginx`, `quay.io/org/app:1.2`,
//! `registry:5000/ns/app@sha256:...`), parsed and normalised the way the container tools do it:
//! distribution/reference `ParseNormalizedNamed` (RULEBOOK section 6).
//!
//! - The grammar: `[domain[:port]/]path[:tag][@digest]`, where the domain is DNS labels or a
//!   bracketed IPv6 literal, each path component is `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`,
//!   the tag is `[\w][\w.-]{0,127}` and the digest is `algorithm:hex` (go-digest validates
//!   `sha256`, `sha384` and `sha512` lengths). The whole name is at most 255 characters.
//! - `splitDockerDomain`: the first path element names a registry only if it is `localhost`,
//!   contains `.` or `:`, or has an uppercase letter; otherwise the reference is a *short name*
//!   and belongs to `docker.io` (`nginx` -> `docker.io/library/nginx`). `index.docker.io` is
//!   rewritten to `docker.io`.
//! - A reference with neither tag nor digest gets the tag `latest` (`TagNameOnly`).
//!
//! A bad reference is an error for that reference only: [`Reference::parse`] returns a
//! [`ReferenceError`] whose text is the upstream message, never a panic.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// The registry of short names.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy Docker Hub name, rewritten to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of single-component Docker Hub names.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag of a reference that names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository name, domain included.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

const DOMAIN_COMPONENT: &str = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const PATH_COMPONENT: &str = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
const TAG: &str = r"[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
const DIGEST: &str = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";

fn domain_and_port() -> String {
    format!(
        r"(?:{c}(?:\.{c})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?",
        c = DOMAIN_COMPONENT
    )
}

/// distribution/reference `ReferenceRegexp`: name, tag, digest.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"^((?:{d}/)?{p}(?:/{p})*)(?::({TAG}))?(?:@({DIGEST}))?$",
        d = domain_and_port(),
        p = PATH_COMPONENT
    );
    // A constant pattern, exercised by the tests below.
    Regex::new(&pattern).expect("constant reference pattern compiles")
});

/// distribution/reference `anchoredNameRegexp`: the domain and path of a name.
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"^(?:({d})/)?({p}(?:/{p})*)$",
        d = domain_and_port(),
        p = PATH_COMPONENT
    );
    // A constant pattern, exercised by the tests below.
    Regex::new(&pattern).expect("constant name pattern compiles")
});

/// distribution/reference `anchoredIdentifierRegexp`: an image ID, never a name.
static IDENTIFIER: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern, exercised by the tests below.
    Regex::new("^[a-f0-9]{64}$").expect("constant identifier pattern compiles")
});

/// Why a reference cannot be parsed; `Display` is the upstream message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The empty string (`ErrNameEmpty`).
    Empty,
    /// Not the reference grammar (`ErrReferenceInvalidFormat`).
    InvalidFormat,
    /// The grammar matches only once lowercased (`ErrNameContainsUppercase`).
    NameContainsUppercase,
    /// The repository part has uppercase letters (the check of `ParseNormalizedNamed`).
    Uppercase {
        /// The repository name as normalised.
        repository: String,
    },
    /// A 64-hex-digit string: an image ID, not a name.
    Identifier(String),
    /// The name is longer than [`NAME_TOTAL_LENGTH_MAX`] (`ErrNameTooLong`).
    TooLong,
    /// The first element was read as a registry but is not a valid host.
    InvalidDomain(String),
    /// The digest is not `algorithm:hex` of the algorithm's length, lowercase.
    DigestFormat,
    /// The digest has the wrong number of hex digits for its algorithm.
    DigestLength,
    /// A digest algorithm other than sha256, sha384 and sha512.
    DigestAlgorithm,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceError::Empty => {
                f.write_str("repository name must have at least one component")
            }
            ReferenceError::InvalidFormat => f.write_str("invalid reference format"),
            ReferenceError::NameContainsUppercase => {
                f.write_str("repository name must be lowercase")
            }
            ReferenceError::Uppercase { repository } => write!(
                f,
                "invalid reference format: repository name ({repository}) must be lowercase"
            ),
            ReferenceError::Identifier(s) => write!(
                f,
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            ),
            ReferenceError::TooLong => write!(
                f,
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            ),
            ReferenceError::InvalidDomain(domain) => write!(
                f,
                "invalid reference format: {domain:?} is read as a registry but is not a valid host[:port]"
            ),
            ReferenceError::DigestFormat => f.write_str("invalid checksum digest format"),
            ReferenceError::DigestLength => f.write_str("invalid checksum digest length"),
            ReferenceError::DigestAlgorithm => f.write_str("unsupported digest algorithm"),
        }
    }
}

impl std::error::Error for ReferenceError {}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry as written, `None` for a short name (no registry in the first element).
    written_domain: Option<String>,
    /// The registry after normalisation: `docker.io` for short names and `index.docker.io`.
    domain: String,
    /// The repository path inside the registry, `library/` added for Docker Hub single names.
    path: String,
    /// The tag as written.
    tag: Option<String>,
    /// The digest as written.
    digest: Option<String>,
    /// The path as written, before `library/` was added.
    written_path: String,
}

impl Reference {
    /// `ParseNormalizedNamed`: parses and normalises a reference as a user writes it.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            // Upstream normalises "" to `docker.io/library/` first and reports a bad format;
            // the message of the plain parser says more.
            return Err(ReferenceError::Empty);
        }
        if IDENTIFIER.is_match(s) {
            return Err(ReferenceError::Identifier(s.to_owned()));
        }
        let (written_domain, domain, remainder, library_added) = split_docker_domain(s);
        let remote = remainder
            .split_once(':')
            .map_or(remainder.as_str(), |(r, _)| r);
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase {
                repository: remote.to_owned(),
            });
        }
        let parsed = parse_unnormalized(&format!("{domain}/{remainder}"))?;
        if parsed.domain != domain {
            // The grammar read the intended registry as part of the path (`a_b.io/x`): the
            // upstream parser returns a name without a registry, which no runtime can pull.
            return Err(ReferenceError::InvalidDomain(domain));
        }
        let written_path = match parsed.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if library_added => rest.to_owned(),
            _ => parsed.path.clone(),
        };
        Ok(Reference {
            written_domain,
            written_path,
            domain: parsed.domain,
            path: parsed.path,
            tag: parsed.tag,
            digest: parsed.digest,
        })
    }

    /// The registry as normalised (`docker.io` for short names).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The registry as written; `None` for a short name.
    pub fn written_domain(&self) -> Option<&str> {
        self.written_domain.as_deref()
    }

    /// The repository path inside the registry.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The repository name: `domain/path` (`Named.Name()`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Whether the reference names no registry, so that CRI-O resolves it through the search
    /// registries (containers/image `shortnames`).
    pub fn is_short_name(&self) -> bool {
        self.written_domain.is_none()
    }

    /// The tag: as written, or `latest` when neither tag nor digest was given.
    pub fn tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// Whether the tag is the default one, not written by the user.
    pub fn has_default_tag(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The digest as written.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The repository path as the user wrote it, without the `library/` that normalisation
    /// adds (what CRI-O appends to each search registry for a short name).
    pub fn written_path(&self) -> &str {
        &self.written_path
    }

    /// distribution/reference `FamiliarString` of the normalised form: Docker Hub names without
    /// `docker.io/` and `library/` (`nginx:latest`), as containers/image prints image names.
    pub fn familiar(&self) -> String {
        let mut out = if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        };
        if let Some(tag) = self.tag() {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    /// The containers/image policy identity: `name:tag`, or `name@digest` when a digest is
    /// given (a tag next to a digest does not choose the image, so the digest identifies it).
    pub fn policy_identity(&self) -> String {
        match (&self.digest, self.tag()) {
            (Some(digest), _) => format!("{}@{digest}", self.name()),
            (None, Some(tag)) => format!("{}:{tag}", self.name()),
            (None, None) => self.name(),
        }
    }

    /// The same image in another registry: what CRI-O tries for a short name with each search
    /// registry (`ParseNormalizedNamed(registry + "/" + name)`, tag and digest kept).
    pub fn in_registry(&self, registry: &str) -> Result<Self, ReferenceError> {
        let mut candidate = format!("{registry}/{}", self.written_path());
        if let Some(tag) = &self.tag {
            candidate.push(':');
            candidate.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            candidate.push('@');
            candidate.push_str(digest);
        }
        let parsed = Reference::parse(&candidate)?;
        if parsed.is_short_name() {
            // A search registry without `.`, `:` or `localhost` would turn into a namespace.
            return Err(ReferenceError::InvalidDomain(registry.to_owned()));
        }
        Ok(parsed)
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `domain/path[:tag][@digest]`, with the default tag when the
    /// reference had neither.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = self.tag() {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// `splitDockerDomain`: (registry as written, registry, remainder, whether `library/` was added).
/// The repository name of `path` in `registry` as `ParseNormalizedNamed` normalises it
/// (`docker.io/library/x` for a one-component path on Docker Hub), without the grammar check of
/// [`Reference::parse`]: for names built from values that rules already checked. `None` when
/// `registry` would read as a Docker Hub namespace (no `.` or `:`, not `localhost`).
pub fn normalized_name(registry: &str, path: &str) -> Option<String> {
    if is_plain_domain(registry) {
        // `splitDockerDomain` keeps such a registry as written and the path as it is.
        // Room for a tag: the probes of the rules append `:latest`.
        let mut name = String::with_capacity(registry.len() + 1 + path.len() + ":latest".len());
        name.push_str(registry);
        name.push('/');
        name.push_str(path);
        return Some(name);
    }
    let (written, domain, remainder, _) = split_docker_domain(&format!("{registry}/{path}"));
    written.map(|_| format!("{domain}/{remainder}"))
}

/// Whether `splitDockerDomain` reads `registry` (one component, no `/`) as a domain that it
/// keeps as written: `localhost` or text with a `.` or `:`, but neither Docker Hub name (which
/// become `docker.io`, with `library/` for a one-component path).
fn is_plain_domain(registry: &str) -> bool {
    !registry.contains('/')
        && (registry == "localhost" || registry.contains(['.', ':']))
        && registry != DEFAULT_DOMAIN
        && registry != LEGACY_DEFAULT_DOMAIN
}

fn split_docker_domain(name: &str) -> (Option<String>, String, String, bool) {
    let (written, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.to_lowercase() != first =>
        {
            (Some(first.to_owned()), rest.to_owned())
        }
        _ => (None, name.to_owned()),
    };
    let domain = match written.as_deref() {
        None | Some(LEGACY_DEFAULT_DOMAIN) => DEFAULT_DOMAIN.to_owned(),
        Some(d) => d.to_owned(),
    };
    let library_added = domain == DEFAULT_DOMAIN && !remainder.contains('/');
    if library_added {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (written, domain, remainder, library_added)
}

/// The parts of a reference before normalisation.
struct Unnormalized {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// distribution/reference `Parse`, then go-digest `Parse` of the digest.
fn parse_unnormalized(s: &str) -> Result<Unnormalized, ReferenceError> {
    let Some(caps) = REFERENCE.captures(s) else {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if REFERENCE.is_match(&s.to_lowercase()) {
            return Err(ReferenceError::NameContainsUppercase);
        }
        return Err(ReferenceError::InvalidFormat);
    };
    let name = caps.get(1).map_or("", |m| m.as_str());
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::TooLong);
    }
    let (domain, path) = match NAME.captures(name) {
        Some(n) => (
            n.get(1).map_or("", |m| m.as_str()),
            n.get(2).map_or("", |m| m.as_str()),
        ),
        None => ("", name),
    };
    let digest = caps.get(3).map(|m| m.as_str().to_owned());
    if let Some(d) = &digest {
        validate_digest(d)?;
    }
    Ok(Unnormalized {
        domain: domain.to_owned(),
        path: path.to_owned(),
        tag: caps.get(2).map(|m| m.as_str().to_owned()),
        digest,
    })
}

/// go-digest `Digest.Validate` for the algorithms a Go binary registers.
fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    let Some((algorithm, encoded)) = d
        .split_once(':')
        .filter(|(a, e)| !a.is_empty() && !e.is_empty())
    else {
        return Err(ReferenceError::DigestFormat);
    };
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestAlgorithm),
    };
    if encoded.len() != hex_len {
        return Err(ReferenceError::DigestLength);
    }
    if !encoded
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ReferenceError::DigestFormat);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// `input => (fully qualified form, short name)`.
    macro_rules! normalizes {
        ($($input:expr => $want:expr, $short:expr);* $(;)?) => {
            $(
                let r = Reference::parse($input).unwrap_or_else(|e| panic!("{:?}: {e}", $input));
                assert_eq!(r.to_string(), $want, "normalised form of {:?}", $input);
                assert_eq!(r.is_short_name(), $short, "short name {:?}", $input);
            )*
        };
    }

    /// `input => error text`.
    macro_rules! rejects {
        ($($input:expr => $want:expr);* $(;)?) => {
            $(
                let got = Reference::parse(&$input).map(|r| r.to_string()).map_err(|e| e.to_string());
                assert_eq!(got, Err(String::from($want)), "{:?}", $input);
            )*
        };
    }

    /// RULEBOOK section 6, distribution/reference normalize.go and its tests.
    #[test]
    fn normalisation() {
        let digest = format!("sha256:{HEX64}");
        normalizes! {
            "nginx" => "docker.io/library/nginx:latest", true;
            "nginx:1.25" => "docker.io/library/nginx:1.25", true;
            "library/nginx" => "docker.io/library/nginx:latest", true;
            "foo/bar" => "docker.io/foo/bar:latest", true;
            "foo/bar/baz:v1" => "docker.io/foo/bar/baz:v1", true;
            "docker.io/nginx" => "docker.io/library/nginx:latest", false;
            "docker.io/library/nginx" => "docker.io/library/nginx:latest", false;
            "index.docker.io/nginx" => "docker.io/library/nginx:latest", false;
            "index.docker.io/library/nginx:1" => "docker.io/library/nginx:1", false;
            "registry-1.docker.io/nginx" => "registry-1.docker.io/nginx:latest", false;
            "quay.io/org/app:1.2" => "quay.io/org/app:1.2", false;
            "localhost/app" => "localhost/app:latest", false;
            "localhost:5000/app" => "localhost:5000/app:latest", false;
            "registry:5000/ns/app" => "registry:5000/ns/app:latest", false;
            "Registry.Example.com/app" => "Registry.Example.com/app:latest", false;
            "UPPER/app" => "UPPER/app:latest", false;
            "192.168.1.10:5000/a" => "192.168.1.10:5000/a:latest", false;
            "[::1]:5000/app:v1" => "[::1]:5000/app:v1", false;
            "[fe80::1]/app" => "[fe80::1]/app:latest", false;
            // A bare host is a Docker Hub name: the grammar cannot tell (upstream FIXME).
            "quay.io" => "docker.io/library/quay.io:latest", true;
            "foo:5000" => "docker.io/library/foo:5000", true;
            "r.io/a.b_c__d---e" => "r.io/a.b_c__d---e:latest", false;
        }
        let r = Reference::parse(&format!("registry:5000/ns/app@{digest}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.to_string(), format!("registry:5000/ns/app@{digest}"));
        assert_eq!((r.tag(), r.digest()), (None, Some(digest.as_str())));
        assert_eq!(
            r.policy_identity(),
            format!("registry:5000/ns/app@{digest}")
        );
        let both =
            Reference::parse(&format!("quay.io/app:1@{digest}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(both.to_string(), format!("quay.io/app:1@{digest}"));
        assert_eq!(
            both.policy_identity(),
            format!("quay.io/app@{digest}"),
            "the digest identifies it"
        );
        let short = Reference::parse("nginx").unwrap_or_else(|e| panic!("{e}"));
        assert!(short.has_default_tag());
        assert_eq!(short.policy_identity(), "docker.io/library/nginx:latest");
        assert_eq!(
            (short.domain(), short.path(), short.written_domain()),
            ("docker.io", "library/nginx", None)
        );
        let legacy = Reference::parse("index.docker.io/nginx").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (legacy.domain(), legacy.written_domain()),
            ("docker.io", Some("index.docker.io"))
        );
        assert_eq!(legacy.name(), "docker.io/library/nginx");
        assert_eq!(short.familiar(), "nginx:latest");
        assert_eq!(legacy.familiar(), "nginx:latest");
        let ns = Reference::parse("docker.io/foo/bar").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ns.familiar(), "foo/bar:latest");
        assert_eq!(r.familiar(), format!("registry:5000/ns/app@{digest}"));
        let tagged = Reference::parse("nginx:1").unwrap_or_else(|e| panic!("{e}"));
        assert!(!tagged.has_default_tag());
        assert_eq!(
            Reference::parse(&format!("a.io/{}", "b".repeat(NAME_TOTAL_LENGTH_MAX - 5)))
                .map(|r| r.name().len()),
            Ok(255)
        );
        assert!(Reference::parse(&format!("a.io/b:{}", "t".repeat(128))).is_ok());
    }

    #[test]
    fn invalid_references_are_errors_with_upstream_text() {
        rejects! {
            "" => "repository name must have at least one component";
            "Nginx" => "invalid reference format: repository name (library/Nginx) must be lowercase";
            "quay.io/App" => "invalid reference format: repository name (App) must be lowercase";
            "quay.io/app:" => "invalid reference format";
            "quay.io//app" => "invalid reference format";
            "quay.io/app/" => "invalid reference format";
            "https://quay.io/app" => "invalid reference format";
            "quay.io/app:tag with space" => "invalid reference format";
            "quay.io/app@sha256:abc" => "invalid reference format";
            "quay.io/_app" => "invalid reference format";
            "-quay.io/app" => "invalid reference format";
            " nginx" => "invalid reference format";
            "nginx\n" => "invalid reference format";
            "ünicode.io/app" => "invalid reference format";
            format!("a.io/b:{}", "t".repeat(129)) => "invalid reference format";
            HEX64 => format!("invalid repository name ({HEX64}), cannot specify 64-byte hexadecimal strings");
            format!("a.io/{}", "b".repeat(NAME_TOTAL_LENGTH_MAX - 4)) => "repository name must not be more than 255 characters";
            "a_b.io/x" => "invalid reference format: \"a_b.io\" is read as a registry but is not a valid host[:port]";
            format!("quay.io/app@sha256:{}", &HEX64[..32]) => "invalid checksum digest length";
            format!("quay.io/app@md5:{}", &HEX64[..32]) => "unsupported digest algorithm";
            format!("quay.io/app@sha256:{}", HEX64.to_uppercase()) => "invalid checksum digest format";
        }
    }

    /// The fast path of `normalized_name` (a registry kept as written) gives what the general
    /// `splitDockerDomain` path gives.
    #[test]
    fn normalized_name_fast_path_agrees() {
        let general = |registry: &str, path: &str| {
            let (written, domain, remainder, _) =
                split_docker_domain(&format!("{registry}/{path}"));
            written.map(|_| format!("{domain}/{remainder}"))
        };
        let registries = [
            "quay.io",
            "docker.io",
            "index.docker.io",
            "localhost",
            "localhost:5000",
            "Localhost",
            "LOCALHOST:5000",
            "Quay.IO",
            "MYREG",
            "myreg",
            "reg:5000",
            "a.b.c:1",
            "quay.io/ns",
            "docker.io/ns",
            "",
            ".",
            ":",
        ];
        let paths = ["nginx", "ns/app", "library/nginx", "", "a/b/c"];
        for registry in registries {
            for path in paths {
                assert_eq!(
                    normalized_name(registry, path),
                    general(registry, path),
                    "{registry:?} / {path:?}"
                );
            }
        }
        assert!(is_plain_domain("localhost:5000") && is_plain_domain("Quay.IO"));
        assert!(!is_plain_domain("docker.io") && !is_plain_domain("index.docker.io"));
        assert!(!is_plain_domain("MYREG") && !is_plain_domain("quay.io/ns"));
        assert_eq!(
            normalized_name("docker.io", "nginx").as_deref(),
            Some("docker.io/library/nginx")
        );
        assert_eq!(
            normalized_name("index.docker.io", "ns/app").as_deref(),
            Some("docker.io/ns/app")
        );
        assert_eq!(normalized_name("myreg", "nginx"), None);
    }

    /// containers/image shortnames: `ParseNormalizedNamed(registry + "/" + name)`.
    #[test]
    fn short_name_candidates() {
        let cases = [
            ("nginx", "quay.io", "quay.io/nginx:latest"),
            ("nginx", "docker.io", "docker.io/library/nginx:latest"),
            (
                "nginx:1.25",
                "registry.access.redhat.com",
                "registry.access.redhat.com/nginx:1.25",
            ),
            ("library/nginx", "quay.io", "quay.io/library/nginx:latest"),
            ("foo/bar", "reg:5000", "reg:5000/foo/bar:latest"),
            ("foo/bar", "index.docker.io", "docker.io/foo/bar:latest"),
            ("nginx", "localhost", "localhost/nginx:latest"),
        ];
        for (input, registry, want) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{e}"));
            let got = r.in_registry(registry).map(|c| c.to_string());
            assert_eq!(got.as_deref(), Ok(want), "{input} in {registry}");
        }
        let digested =
            Reference::parse(&format!("nginx@sha256:{HEX64}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            digested.in_registry("quay.io").map(|c| c.to_string()),
            Ok(format!("quay.io/nginx@sha256:{HEX64}"))
        );
        let nginx = Reference::parse("nginx").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            nginx.in_registry("myregistry").map_err(|e| e.to_string()),
            Err("invalid reference format: \"myregistry\" is read as a registry but is not a valid host[:port]".to_owned())
        );
        assert!(nginx.in_registry("https://quay.io").is_err());
        assert!(nginx.in_registry("").is_err());
    }
}
