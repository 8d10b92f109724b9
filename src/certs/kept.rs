//! A CA kept between runs, in a directory of its own (`certs --ca-dir DIR`): `ca.crt`, and
//! `ca.key` with mode 0600, which never goes into the output directory (the Secret).
//!
//! The output directory keeps the layout of [`super::generate`]; its `ca.crt` is the bundle the
//! API server trusts (the webhook configuration's `caBundle`), which may hold two CAs during a
//! rotation. At no step does that bundle lack the CA of a certificate the pods may serve:
//!
//! | command | bundle (`OUT/ca.crt`) | serving pair (`OUT/tls.*`) |
//! |---|---|---|
//! | [`generate`] | the CA | new, from the CA |
//! | [`renew`] | unchanged (must hold the CA) | new, from the CA |
//! | [`rotate_ca`] | the previous CA + a new CA | unchanged (from the previous CA) |
//! | [`renew`] | unchanged (both CAs) | new, from the new CA |
//! | [`finish_rotation`] | the new CA (refused until the pair is from it) | unchanged |
//!
//! Apply the output after each command, and after `renew` wait until the pods serve the new
//! pair (kubelet updates a mounted Secret a minute or so later) before the next command.

use std::path::{Path, PathBuf};

use rcgen::{Issuer, KeyPair};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::{
    CertsError, CertsErrorKind, Written, ca_params, create_dir, generate_error, issue, read,
    refuse_existing, time_now, write, write_pair,
};

/// Validity of a kept CA: ten years, so that renewing the serving certificate (yearly) is the
/// routine and rotating the CA the exception.
pub const CA_VALID_DAYS: i64 = 3650;

/// What a command wrote, and the operator's next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// Files written, in order.
    pub wrote: Vec<PathBuf>,
    /// Files removed.
    pub removed: Vec<PathBuf>,
    /// The bundle (`OUT/ca.crt`) after the command, PEM.
    pub bundle_pem: String,
    /// Whether the command changed the bundle.
    pub bundle_changed: bool,
    /// What to do next.
    pub next: &'static str,
}

/// The files of a CA directory.
struct CaDir {
    cert: PathBuf,
    key: PathBuf,
    previous_cert: PathBuf,
    previous_key: PathBuf,
}

impl CaDir {
    fn new(dir: &Path) -> Self {
        CaDir {
            cert: dir.join("ca.crt"),
            key: dir.join("ca.key"),
            previous_cert: dir.join("ca-previous.crt"),
            previous_key: dir.join("ca-previous.key"),
        }
    }
}

/// A CA read back from its directory.
struct Ca {
    pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    not_after: time::OffsetDateTime,
}

/// A new CA for `service` (ten years), written to `ca_dir`, and a serving pair from it with the
/// bundle (the CA) in `out`. Refuses to overwrite any of the five files unless `force`.
pub fn generate(
    service: &str,
    namespace: &str,
    ca_dir: &Path,
    out: &Path,
    force: bool,
) -> Result<Done, CertsError> {
    refuse_same_dir(ca_dir, out)?;
    let files = CaDir::new(ca_dir);
    let written = Written::in_dir(out);
    refuse_existing(
        &[
            &files.cert,
            &files.key,
            &written.ca,
            &written.cert,
            &written.key,
        ],
        force,
    )?;
    let ca = new_ca(service)?;
    create_ca_dir(ca_dir)?;
    write(&files.key, ca.key_pem.as_bytes(), 0o600)?;
    write(&files.cert, ca.pem.as_bytes(), 0o644)?;
    let pair = issue_from(&ca, service, namespace)?;
    create_dir(out)?;
    write(&written.ca, ca.pem.as_bytes(), 0o644)?;
    write_pair(&written, &pair)?;
    Ok(Done {
        wrote: vec![files.cert, files.key, written.ca, written.cert, written.key],
        removed: Vec::new(),
        bundle_pem: ca.pem,
        bundle_changed: true,
        next: "apply it; renew the serving certificate later with `certs renew`",
    })
}

/// A new serving pair in `out` from the CA in `ca_dir`, for the same names; the bundle is left
/// as it is. Refused when the bundle does not hold the CA (the API server would refuse the new
/// certificate). Writes the bundle (the CA) when `out` has none yet.
pub fn renew(
    service: &str,
    namespace: &str,
    ca_dir: &Path,
    out: &Path,
) -> Result<Done, CertsError> {
    refuse_same_dir(ca_dir, out)?;
    let ca = load(&CaDir::new(ca_dir), ca_dir)?;
    if ca.not_after <= time_now() {
        return Err(CertsError::new(
            Some(&CaDir::new(ca_dir).cert),
            CertsErrorKind::BadCa("it has expired; rotate it with `certs rotate-ca`".to_owned()),
        ));
    }
    let written = Written::in_dir(out);
    let mut wrote = Vec::new();
    let (bundle_pem, bundle_changed) = match std::fs::read(&written.ca) {
        Ok(bundle) if bundle_holds(&bundle, &ca.der) => {
            (String::from_utf8_lossy(&bundle).into_owned(), false)
        }
        Ok(_) => {
            return Err(CertsError::new(
                Some(&written.ca),
                CertsErrorKind::BundleLacksCa,
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_dir(out)?;
            write(&written.ca, ca.pem.as_bytes(), 0o644)?;
            wrote.push(written.ca.clone());
            (ca.pem.clone(), true)
        }
        Err(e) => return Err(CertsError::new(Some(&written.ca), CertsErrorKind::Read(e))),
    };
    let pair = issue_from(&ca, service, namespace)?;
    write_pair(&written, &pair)?;
    wrote.extend([written.cert, written.key]);
    Ok(Done {
        wrote,
        removed: Vec::new(),
        bundle_pem,
        bundle_changed,
        next: "apply it; the pods serve the new certificate once kubelet updates the Secret",
    })
}

/// Step 1 of a CA rotation: a new CA in `ca_dir` (the current one kept as `ca-previous.*`),
/// and the bundle in `out` holding both. The serving pair is left as it is: apply, then
/// [`renew`] (step 2), then [`finish_rotation`] (step 3).
pub fn rotate_ca(service: &str, ca_dir: &Path, out: &Path) -> Result<Done, CertsError> {
    refuse_same_dir(ca_dir, out)?;
    let files = CaDir::new(ca_dir);
    if files.previous_cert.exists() {
        return Err(CertsError::new(
            Some(&files.previous_cert),
            CertsErrorKind::RotationInProgress,
        ));
    }
    let current = load(&files, ca_dir)?;
    let new = new_ca(service)?;
    write(&files.previous_key, current.key_pem.as_bytes(), 0o600)?;
    write(&files.previous_cert, current.pem.as_bytes(), 0o644)?;
    // The key first: a run cut short between the two leaves a pair that `load` refuses.
    write(&files.key, new.key_pem.as_bytes(), 0o600)?;
    write(&files.cert, new.pem.as_bytes(), 0o644)?;
    let bundle = format!("{}{}", with_newline(&current.pem), with_newline(&new.pem));
    let written = Written::in_dir(out);
    create_dir(out)?;
    write(&written.ca, bundle.as_bytes(), 0o644)?;
    Ok(Done {
        wrote: vec![
            files.previous_cert,
            files.previous_key,
            files.cert,
            files.key,
            written.ca,
        ],
        removed: Vec::new(),
        bundle_pem: bundle,
        bundle_changed: true,
        next: "apply it (the bundle now trusts both CAs; the serving certificate is unchanged), \
               then `certs renew`",
    })
}

/// Step 3 of a CA rotation: the bundle in `out` becomes the new CA alone, and the previous CA
/// is deleted. Refused until the serving certificate in `out` is issued by the new CA.
pub fn finish_rotation(
    service: &str,
    namespace: &str,
    ca_dir: &Path,
    out: &Path,
) -> Result<Done, CertsError> {
    refuse_same_dir(ca_dir, out)?;
    let files = CaDir::new(ca_dir);
    if !files.previous_cert.exists() {
        return Err(CertsError::new(
            Some(&files.previous_cert),
            CertsErrorKind::NoRotation,
        ));
    }
    let current = load(&files, ca_dir)?;
    let written = Written::in_dir(out);
    let chain = read(&written.cert)?;
    let name = format!("{service}.{namespace}.svc");
    let now = time_now().unix_timestamp();
    let verdict = super::check::check(current.pem.as_bytes(), &chain, &name, now, 0)
        .map(|report| report.verdict)
        .map_err(|e| CertsError::new(Some(&written.cert), CertsErrorKind::BadCa(e.to_string())))?;
    if let super::check::Verdict::Untrusted(why) = verdict {
        return Err(CertsError::new(
            Some(&written.cert),
            CertsErrorKind::NotRenewed(format!("not issued by the new CA ({why})")),
        ));
    }
    write(&written.ca, current.pem.as_bytes(), 0o644)?;
    let mut removed = Vec::new();
    for old in [files.previous_key, files.previous_cert] {
        std::fs::remove_file(&old)
            .map_err(|e| CertsError::new(Some(&old), CertsErrorKind::Remove(e)))?;
        removed.push(old);
    }
    Ok(Done {
        wrote: vec![written.ca],
        removed,
        bundle_pem: current.pem,
        bundle_changed: true,
        next: "apply it: the bundle trusts the new CA alone; the rotation is over",
    })
}

/// `CaDirIsOut` when the two name the same directory.
fn refuse_same_dir(ca_dir: &Path, out: &Path) -> Result<(), CertsError> {
    let same = ca_dir == out
        || matches!(
            (std::fs::canonicalize(ca_dir), std::fs::canonicalize(out)),
            (Ok(a), Ok(b)) if a == b
        );
    if same {
        return Err(CertsError::new(Some(ca_dir), CertsErrorKind::CaDirIsOut));
    }
    Ok(())
}

/// Creates the CA directory, readable by its owner only when it is created here.
fn create_ca_dir(dir: &Path) -> Result<(), CertsError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| CertsError::new(Some(dir), CertsErrorKind::CreateDir(e)))
}

/// A new self-signed CA for `service`, named with the time it was made so that the two CAs of
/// a rotation never share a name.
fn new_ca(service: &str) -> Result<Ca, CertsError> {
    let now = time_now();
    let stamp = super::check::rfc3339(now.unix_timestamp());
    let not_after = now + time::Duration::days(CA_VALID_DAYS);
    let params = ca_params(
        &format!("{service}-ca {stamp}"),
        now - time::Duration::minutes(5),
        not_after,
    )?;
    let key = KeyPair::generate().map_err(|e| generate_error("CA key", e))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| generate_error("CA", e))?;
    let key_pem = key.serialize_pem();
    Ok(Ca {
        pem: cert.pem(),
        key_pem,
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
        not_after,
    })
}

/// Reads the CA of `files` back, checking that its key matches its certificate.
fn load(files: &CaDir, dir: &Path) -> Result<Ca, CertsError> {
    if !files.cert.exists() && !files.key.exists() {
        return Err(CertsError::new(Some(dir), CertsErrorKind::NoCa));
    }
    let pem = String::from_utf8_lossy(&read(&files.cert)?).into_owned();
    let key_pem = String::from_utf8_lossy(&read(&files.key)?).into_owned();
    let bad = |path: &Path, why: String| CertsError::new(Some(path), CertsErrorKind::BadCa(why));
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| bad(&files.cert, format!("not a PEM certificate: {e}")))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| bad(&files.cert, format!("does not parse: {e}")))?;
    let not_after =
        time::OffsetDateTime::from_unix_timestamp(parsed.validity().not_after.timestamp())
            .map_err(|e| bad(&files.cert, format!("notAfter out of range: {e}")))?;
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| bad(&files.key, format!("not a PEM private key: {e}")))?;
    use rcgen::PublicKeyData as _;
    if parsed.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        return Err(bad(
            &files.key,
            format!("does not match {}", files.cert.display()),
        ));
    }
    let issuer = Issuer::from_ca_cert_der(&der, key)
        .map_err(|e| bad(&files.cert, format!("cannot issue with it: {e}")))?;
    Ok(Ca {
        pem,
        key_pem,
        der,
        issuer,
        not_after,
    })
}

/// A serving pair from `ca`: valid for [`super::VALID_DAYS`], and never past the CA.
fn issue_from(ca: &Ca, service: &str, namespace: &str) -> Result<super::Pair, CertsError> {
    let now = time_now();
    let not_after = (now + time::Duration::days(super::VALID_DAYS)).min(ca.not_after);
    issue(
        service,
        namespace,
        &ca.issuer,
        now - time::Duration::minutes(5),
        not_after,
    )
}

/// Whether the PEM `bundle` holds the certificate `ca`.
fn bundle_holds(bundle: &[u8], ca: &CertificateDer<'_>) -> bool {
    CertificateDer::pem_slice_iter(bundle).any(|c| c.is_ok_and(|c| c.as_ref() == ca.as_ref()))
}

fn with_newline(pem: &str) -> String {
    if pem.ends_with('\n') {
        pem.to_owned()
    } else {
        format!("{pem}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct Tmp(PathBuf);

    impl Tmp {
        fn new(tag: &str) -> Tmp {
            let dir = std::env::temp_dir().join(format!("kept-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Tmp(dir)
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn kind(result: Result<Done, CertsError>) -> String {
        match result {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{:?}", e.kind())
                .split(['(', ' '])
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    #[test]
    fn the_ca_key_stays_in_the_ca_dir_with_mode_0600() {
        let tmp = Tmp::new("mode");
        let (ca, out) = (tmp.0.join("ca"), tmp.0.join("out"));
        let done = generate("svc", "ns", &ca, &out, false).map_err(|e| e.to_string());
        assert!(done.is_ok(), "{done:?}");
        assert!(
            !out.join("ca.key").exists(),
            "never in the Secret's directory"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| {
                std::fs::metadata(p)
                    .map(|m| m.permissions().mode() & 0o777)
                    .ok()
            };
            assert_eq!(mode(&ca.join("ca.key")), Some(0o600));
            assert_eq!(mode(&out.join("tls.key")), Some(0o600));
            assert_eq!(mode(&ca), Some(0o700));
        }
        assert_eq!(
            std::fs::read(ca.join("ca.crt")).ok(),
            std::fs::read(out.join("ca.crt")).ok(),
            "the bundle is the CA"
        );
        // Written under temporary names and renamed: none is left behind.
        for dir in [&ca, &out] {
            let names: Vec<String> = std::fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        }
        assert_eq!(kind(generate("svc", "ns", &ca, &out, false)), "Exists");
        assert_eq!(kind(generate("svc", "ns", &ca, &ca, true)), "CaDirIsOut");
    }

    #[test]
    fn each_step_is_refused_out_of_order() {
        let tmp = Tmp::new("order");
        let (ca, out) = (tmp.0.join("ca"), tmp.0.join("out"));
        assert_eq!(kind(renew("svc", "ns", &ca, &out)), "NoCa");
        assert_eq!(kind(rotate_ca("svc", &ca, &out)), "NoCa");
        assert_eq!(kind(generate("svc", "ns", &ca, &out, false)), "ok");
        assert_eq!(kind(finish_rotation("svc", "ns", &ca, &out)), "NoRotation");
        assert_eq!(kind(renew("svc", "ns", &ca, &out)), "ok");
        assert_eq!(kind(rotate_ca("svc", &ca, &out)), "ok");
        assert_eq!(kind(rotate_ca("svc", &ca, &out)), "RotationInProgress");
        assert_eq!(kind(finish_rotation("svc", "ns", &ca, &out)), "NotRenewed");
        assert_eq!(kind(renew("svc", "ns", &ca, &out)), "ok");
        assert_eq!(kind(finish_rotation("svc", "ns", &ca, &out)), "ok");
        assert!(!ca.join("ca-previous.crt").exists());
        // A bundle without the CA: the API server would refuse the renewed certificate.
        let other = tmp.0.join("other");
        assert_eq!(kind(generate("svc", "ns", &other, &out, true)), "ok");
        assert_eq!(kind(renew("svc", "ns", &ca, &out)), "BundleLacksCa");
    }

    #[test]
    fn a_key_that_does_not_match_its_ca_is_refused() {
        let tmp = Tmp::new("mismatch");
        let (ca, out, other) = (tmp.0.join("ca"), tmp.0.join("out"), tmp.0.join("other"));
        assert_eq!(kind(generate("svc", "ns", &ca, &out, false)), "ok");
        assert_eq!(
            kind(generate("svc", "ns", &other, &tmp.0.join("o2"), false)),
            "ok"
        );
        let _ = std::fs::copy(other.join("ca.key"), ca.join("ca.key"));
        let err = renew("svc", "ns", &ca, &out).map_err(|e| e.to_string());
        assert!(
            err.as_ref().is_err_and(|e| e.contains("does not match")),
            "{err:?}"
        );
    }

    #[test]
    fn renewed_and_rotated_certificates_verify_against_the_bundle() {
        let tmp = Tmp::new("verify");
        let (ca, out) = (tmp.0.join("ca"), tmp.0.join("out"));
        let now = time_now().unix_timestamp();
        let verify = || {
            let bundle = std::fs::read(out.join("ca.crt")).unwrap_or_default();
            let chain = std::fs::read(out.join("tls.crt")).unwrap_or_default();
            super::super::check::check(&bundle, &chain, "svc.ns.svc", now, 30)
                .map(|r| r.verdict)
                .map_err(|e| e.to_string())
        };
        let pass = Ok(super::super::check::Verdict::Pass);
        assert_eq!(kind(generate("svc", "ns", &ca, &out, false)), "ok");
        assert_eq!(verify(), pass);
        assert_eq!(kind(renew("svc", "ns", &ca, &out)), "ok");
        assert_eq!(verify(), pass);
        assert_eq!(kind(rotate_ca("svc", &ca, &out)), "ok");
        assert_eq!(verify(), pass, "the old pair, by the old CA in the bundle");
        assert_eq!(kind(renew("svc", "ns", &ca, &out)), "ok");
        assert_eq!(verify(), pass, "the new pair, by the new CA in the bundle");
        assert_eq!(kind(finish_rotation("svc", "ns", &ca, &out)), "ok");
        assert_eq!(verify(), pass);
    }
}
