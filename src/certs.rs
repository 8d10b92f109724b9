//! Certificates for running the webhook: a CA and a serving certificate for the Service.
//!
//! Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600) in the layout of a `kubernetes.io/tls`
//! Secret, so the same directory works for `serve --cert-dir` and for `kubectl create secret`.
// An adapter (clippy.toml): it writes the certificate files.
#![allow(clippy::disallowed_methods)]

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
        }
    }
}

impl std::error::Error for CertsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            CertsErrorKind::Exists => None,
            CertsErrorKind::Generate { source, .. } => Some(source),
            CertsErrorKind::CreateDir(e) | CertsErrorKind::Write(e) => Some(e),
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
/// files unless `force`.
pub fn generate(
    service: &str,
    namespace: &str,
    out: &Path,
    force: bool,
) -> Result<Written, CertsError> {
    let written = Written {
        ca: out.join("ca.crt"),
        cert: out.join("tls.crt"),
        key: out.join("tls.key"),
        ca_pem: String::new(),
    };
    if !force
        && let Some(existing) = [&written.ca, &written.cert, &written.key]
            .into_iter()
            .find(|p| p.exists())
    {
        return Err(CertsError::new(Some(existing), CertsErrorKind::Exists));
    }
    let fail = |what: &'static str, source: rcgen::Error| {
        CertsError::new(None, CertsErrorKind::Generate { what, source })
    };
    let now = time_now();

    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", e))?;
    ca_params.distinguished_name = name(&format!("{service}-ca"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - time::Duration::minutes(5);
    ca_params.not_after = now + time::Duration::days(VALID_DAYS);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| fail("CA", e))?;

    let key = KeyPair::generate().map_err(|e| fail("serving key", e))?;
    let mut params = CertificateParams::new(subject_alt_names(service, namespace))
        .map_err(|e| fail("serving certificate", e))?;
    params.distinguished_name = name(&format!("{service}.{namespace}.svc"));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = ca_params.not_before;
    params.not_after = ca_params.not_after;
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| fail("serving certificate", e))?;

    std::fs::create_dir_all(out)
        .map_err(|e| CertsError::new(Some(out), CertsErrorKind::CreateDir(e)))?;
    let ca_pem = ca_cert.pem();
    write(&written.ca, ca_pem.as_bytes(), 0o644)?;
    write(&written.cert, cert.pem().as_bytes(), 0o644)?;
    write(&written.key, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(Written { ca_pem, ..written })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertsError> {
    let fail = |e: std::io::Error| CertsError::new(Some(path), CertsErrorKind::Write(e));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    #[cfg(unix)]
    {
        // `mode` applies only when the file is created; tighten an existing one too.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    }
    Ok(())
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
