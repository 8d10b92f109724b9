//! Certificates for running the webhook: a CA and a serving certificate for the Service.
//!
//! Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600) in the layout of a `kubernetes.io/tls`
//! Secret, so the same directory works for `serve --cert-dir` and for `kubectl create secret`.
//! There, `ca.crt` is the bundle the API server trusts (the webhook configuration's `caBundle`).
//!
//! - [`generate`]: a throwaway CA and a serving pair (`certs`); renewing means a new CA.
//! - [`kept`]: a CA kept in a directory of its own (`certs --ca-dir`), so that renewing the
//!   serving pair leaves the `caBundle` alone (`certs renew`), and the CA itself changes in three
//!   steps that never leave the bundle without the served certificate's CA (`certs rotate-ca`).
//! - [`check`]: whether a bundle verifies a serving certificate, and how long until it expires
//!   (`certs check`, and the server's daily warning). Pure: bytes and the time in, a report out.
//!
//! Every file is written whole to a temporary name and renamed into place, so a server that
//! hot-reloads the directory never reads half a file.
// An adapter (clippy.toml): it writes the certificate files.
#![allow(clippy::disallowed_methods)]

pub mod check;
pub mod kept;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The Service name the manifests use.
pub const DEFAULT_SERVICE: &str = "image-config-webhook";
/// The namespace the manifests use.
pub const DEFAULT_NAMESPACE: &str = "image-config-webhook";
/// Validity of generated certificates.
const VALID_DAYS: i64 = 365;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `ca.crt`.
    pub ca: PathBuf,
    /// `tls.crt`.
    pub cert: PathBuf,
    /// `tls.key`.
    pub key: PathBuf,
    /// The CA certificate, PEM (what a webhook configuration's `caBundle` holds, base64-encoded).
    pub ca_pem: String,
}

/// Why certificates could not be written: which file or directory (when one is at fault),
/// and what went wrong with it. Modelled on globset's `Error { glob, kind }`.
#[derive(Debug)]
pub struct CertsError {
    /// The file or directory at fault, when one is.
    path: Option<PathBuf>,
    /// What went wrong.
    kind: CertsErrorKind,
}

/// The kinds of [`CertsError`].
#[derive(Debug)]
#[non_exhaustive]
pub enum CertsErrorKind {
    /// The file exists and overwriting was not asked for (`--force`).
    Exists,
    /// rcgen could not create a key or a certificate; `what` names it ("CA key", "CA",
    /// "serving key", "serving certificate").
    Generate {
        /// The key or certificate that could not be created.
        what: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// The output directory could not be created.
    CreateDir(std::io::Error),
    /// A file could not be written, or its mode set.
    Write(std::io::Error),
    /// A file could not be read.
    Read(std::io::Error),
    /// A file could not be removed.
    Remove(std::io::Error),
    /// The CA directory holds no CA (`ca.crt` and `ca.key`).
    NoCa,
    /// The kept CA's certificate or key cannot be used: why.
    BadCa(String),
    /// `--ca-dir` is the output directory: the CA key would end up in the Secret.
    CaDirIsOut,
    /// The bundle (`ca.crt` of the output directory) does not hold the CA that would issue the
    /// serving certificate: the API server would refuse it.
    BundleLacksCa,
    /// A CA rotation is already under way (`ca-previous.crt` exists).
    RotationInProgress,
    /// `rotate-ca --finish` without a rotation under way.
    NoRotation,
    /// `rotate-ca --finish` while the serving certificate is not yet issued by the new CA: why.
    NotRenewed(String),
}

impl CertsError {
    fn new(path: Option<&Path>, kind: CertsErrorKind) -> Self {
        CertsError {
            path: path.map(Path::to_owned),
            kind,
        }
    }

    /// The file or directory at fault, when one is.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> &CertsErrorKind {
        &self.kind
    }
}

impl std::fmt::Display for CertsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}", path.display())?;
        }
        match &self.kind {
            CertsErrorKind::Exists => f.write_str(" exists; pass --force to overwrite it"),
            CertsErrorKind::Generate { what, source } => {
                write!(f, "cannot create the {what}: {source}")
            }
            CertsErrorKind::CreateDir(e) => write!(f, ": cannot create: {e}"),
            CertsErrorKind::Write(e) => write!(f, ": cannot write: {e}"),
            CertsErrorKind::Read(e) => write!(f, ": cannot read: {e}"),
            CertsErrorKind::Remove(e) => write!(f, ": cannot remove: {e}"),
            CertsErrorKind::NoCa => f.write_str(
                " holds no CA (ca.crt and ca.key): write one with `certs --ca-dir DIR --out DIR`",
            ),
            CertsErrorKind::BadCa(why) => write!(f, ": unusable CA: {why}"),
            CertsErrorKind::CaDirIsOut => f.write_str(
                " is both --ca-dir and --out: the CA key must never go into the Secret; \
                 keep it in a directory of its own",
            ),
            CertsErrorKind::BundleLacksCa => f.write_str(
                " does not hold the CA that issues the new certificate: the API server would \
                 refuse it (start a CA rotation with `certs rotate-ca`)",
            ),
            CertsErrorKind::RotationInProgress => f.write_str(
                " exists: a CA rotation is under way; finish it first (`certs renew`, apply, \
                 wait for the pods, then `certs rotate-ca --finish`)",
            ),
            CertsErrorKind::NoRotation => f.write_str(
                " does not exist: no CA rotation is under way (start one with `certs rotate-ca`)",
            ),
            CertsErrorKind::NotRenewed(why) => write!(
                f,
                ": {why}; run `certs renew`, apply, and wait until the pods serve the new \
                 certificate before dropping the previous CA"
            ),
        }
    }
}

impl std::error::Error for CertsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            CertsErrorKind::Generate { source, .. } => Some(source),
            CertsErrorKind::CreateDir(e)
            | CertsErrorKind::Write(e)
            | CertsErrorKind::Read(e)
            | CertsErrorKind::Remove(e) => Some(e),
            CertsErrorKind::Exists
            | CertsErrorKind::NoCa
            | CertsErrorKind::BadCa(_)
            | CertsErrorKind::CaDirIsOut
            | CertsErrorKind::BundleLacksCa
            | CertsErrorKind::RotationInProgress
            | CertsErrorKind::NoRotation
            | CertsErrorKind::NotRenewed(_) => None,
        }
    }
}

/// The DNS names and addresses the serving certificate is valid for.
pub fn subject_alt_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ]
}

/// Generates a CA and a serving certificate into `out`. Refuses to overwrite any of the three
/// files unless `force`. The CA key is not kept: renewing means a new CA (see [`kept`] for one
/// that is kept).
pub fn generate(
    service: &str,
    namespace: &str,
    out: &Path,
    force: bool,
) -> Result<Written, CertsError> {
    let written = Written::in_dir(out);
    refuse_existing(&[&written.ca, &written.cert, &written.key], force)?;
    let now = time_now();
    let not_before = now - time::Duration::minutes(5);
    let not_after = now + time::Duration::days(VALID_DAYS);
    let ca_key = KeyPair::generate().map_err(|e| generate_error("CA key", e))?;
    let ca_params = ca_params(&format!("{service}-ca"), not_before, not_after)?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| generate_error("CA", e))?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let pair = issue(service, namespace, &issuer, not_before, not_after)?;
    create_dir(out)?;
    let ca_pem = ca_cert.pem();
    write(&written.ca, ca_pem.as_bytes(), 0o644)?;
    write_pair(&written, &pair)?;
    Ok(Written { ca_pem, ..written })
}

impl Written {
    /// The three paths in `out`, before anything is written.
    fn in_dir(out: &Path) -> Self {
        Written {
            ca: out.join("ca.crt"),
            cert: out.join("tls.crt"),
            key: out.join("tls.key"),
            ca_pem: String::new(),
        }
    }
}

/// A serving certificate and its key, PEM.
struct Pair {
    cert: String,
    key: String,
}

fn generate_error(what: &'static str, source: rcgen::Error) -> CertsError {
    CertsError::new(None, CertsErrorKind::Generate { what, source })
}

/// `Exists` for the first of `paths` that exists, unless `force`.
fn refuse_existing(paths: &[&Path], force: bool) -> Result<(), CertsError> {
    match paths.iter().find(|p| p.exists()) {
        Some(existing) if !force => Err(CertsError::new(Some(existing), CertsErrorKind::Exists)),
        _ => Ok(()),
    }
}

/// The parameters of a CA named `common_name`, valid between the two times.
fn ca_params(
    common_name: &str,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> Result<CertificateParams, CertsError> {
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| generate_error("CA", e))?;
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = not_before;
    params.not_after = not_after;
    Ok(params)
}

/// A new key and a serving certificate for the Service, signed by `issuer`.
fn issue(
    service: &str,
    namespace: &str,
    issuer: &Issuer<'_, impl rcgen::SigningKey>,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> Result<Pair, CertsError> {
    let fail = |e| generate_error("serving certificate", e);
    let key = KeyPair::generate().map_err(|e| generate_error("serving key", e))?;
    let mut params = CertificateParams::new(subject_alt_names(service, namespace)).map_err(fail)?;
    params.distinguished_name = name(&format!("{service}.{namespace}.svc"));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params.signed_by(&key, issuer).map_err(fail)?;
    Ok(Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Writes the serving pair: both files whole under temporary names first, then renamed into
/// place back to back, the certificate first. A reloading server that reads between the two
/// renames sees a certificate that does not match its key, which it does not use (and it waits
/// for two reads 100 ms apart to agree before it even tries: `server::tls`).
fn write_pair(written: &Written, pair: &Pair) -> Result<(), CertsError> {
    let cert = stage(&written.cert, pair.cert.as_bytes(), 0o644)?;
    let key = stage(&written.key, pair.key.as_bytes(), 0o600)?;
    commit(&cert, &written.cert)?;
    commit(&key, &written.key)
}

fn create_dir(dir: &Path) -> Result<(), CertsError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CertsError::new(Some(dir), CertsErrorKind::CreateDir(e)))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Writes `bytes` to `path` with `mode`: whole, under a temporary name, then renamed into place.
fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertsError> {
    let staged = stage(path, bytes, mode)?;
    commit(&staged, path)
}

/// Writes `bytes` with `mode` to a temporary file beside `path`; returns its name.
fn stage(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, CertsError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = path.with_file_name(format!(".{file_name}.tmp"));
    let fail = |e: std::io::Error| CertsError::new(Some(path), CertsErrorKind::Write(e));
    // A leftover from an interrupted run would keep its old mode: start afresh.
    let _ = std::fs::remove_file(&staged);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&staged).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    #[cfg(unix)]
    {
        // The umask may have narrowed `mode` at creation; set it exactly.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    }
    Ok(staged)
}

/// Renames a staged file over `path`.
fn commit(staged: &Path, path: &Path) -> Result<(), CertsError> {
    std::fs::rename(staged, path).map_err(|e| CertsError::new(Some(path), CertsErrorKind::Write(e)))
}

/// Reads a file, naming it when it cannot be read.
fn read(path: &Path) -> Result<Vec<u8>, CertsError> {
    std::fs::read(path).map_err(|e| CertsError::new(Some(path), CertsErrorKind::Read(e)))
}

/// Base64 of `bytes` (standard alphabet, padded), for a webhook configuration's `caBundle`.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn generates_a_usable_pair_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("certs-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let written = generate("svc", "ns", &dir, false).map_err(|e| e.to_string());
        let written = written.as_ref().map_err(Clone::clone);
        assert!(written.is_ok(), "{written:?}");
        let settings = crate::server::tls::TlsSettings {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            client_ca: None,
            min_version: crate::server::tls::TlsVersion::Tls12,
            http2: false,
        };
        assert!(
            settings.load().is_ok(),
            "the pair loads and the key matches"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode =
                std::fs::metadata(dir.join("tls.key")).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
        let again = generate("svc", "ns", &dir, false);
        assert!(
            again
                .as_ref()
                .is_err_and(|e| matches!(e.kind(), CertsErrorKind::Exists)),
            "{again:?}"
        );
        let again = again.map_err(|e| e.to_string());
        assert!(
            again
                .as_ref()
                .is_err_and(|e| e.ends_with("exists; pass --force to overwrite it")),
            "{again:?}"
        );
        assert!(generate("svc", "ns", &dir, true).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
