//! Whether a CA bundle verifies a serving certificate for the Service, and how long until the
//! certificate expires: `certs check`, and the server's daily expiry warning.
//!
//! Pure: PEM bytes, a DNS name and the time in, a [`Report`] out. The verification is the one a
//! TLS client does (rustls' webpki verifier, as the API server's Go client does it): the chain to
//! one of the bundle's CAs, the name among the certificate's SANs, the validity period.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// Default of `certs check --min-days`, and how close to expiry the server starts warning.
pub const DEFAULT_MIN_DAYS: i64 = 30;

/// What `certs check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The serving certificate's subject.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// Its notAfter, Unix seconds.
    pub not_after: i64,
    /// Whole days from the time of the check until notAfter (negative once expired).
    pub days_left: i64,
    /// The DNS name it was verified for.
    pub name: String,
    /// The conclusion.
    pub verdict: Verdict,
}

/// The conclusion of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The bundle verifies the certificate, which has at least the minimum days left.
    Pass,
    /// The bundle verifies the certificate, but it expires within the minimum days.
    ExpiresSoon {
        /// The minimum asked for.
        min_days: i64,
    },
    /// The certificate has expired: every TLS client refuses it.
    Expired,
    /// The bundle does not verify the certificate: the reason, from the verifier.
    Untrusted(String),
}

impl Report {
    /// Whether the check passed (exit 0).
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "subject:   {}", self.subject)?;
        writeln!(f, "issuer:    {}", self.issuer)?;
        writeln!(
            f,
            "not after: {} ({} days left)",
            rfc3339(self.not_after),
            self.days_left
        )?;
        match &self.verdict {
            Verdict::Pass => write!(f, "ok: the bundle verifies it for {}", self.name),
            Verdict::ExpiresSoon { min_days } => write!(
                f,
                "expires soon: the bundle verifies it for {}, but it expires in {} days, within \
                 {min_days}; renew it (`certs renew`)",
                self.name, self.days_left
            ),
            Verdict::Expired => write!(
                f,
                "expired: every client refuses it; renew it now (`certs renew`)"
            ),
            Verdict::Untrusted(why) => write!(
                f,
                "not verified: the bundle does not verify it for {}: {why}",
                self.name
            ),
        }
    }
}

/// Which input of a check cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// The CA bundle.
    Bundle,
    /// The serving certificate chain.
    Chain,
    /// The DNS name.
    Name,
}

/// An input of a check that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    /// The input at fault.
    pub input: Input,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.problem)
    }
}

impl std::error::Error for CheckError {}

fn error(input: Input, problem: impl Into<String>) -> CheckError {
    CheckError {
        input,
        problem: problem.into(),
    }
}

/// Checks that `bundle` (PEM CA certificates) verifies `chain` (PEM, leaf first) for the DNS
/// name `name` at `now` (Unix seconds), and that the leaf has at least `min_days` left.
pub fn check(
    bundle: &[u8],
    chain: &[u8],
    name: &str,
    now: i64,
    min_days: i64,
) -> Result<Report, CheckError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
        .collect::<Result<_, _>>()
        .map_err(|e| error(Input::Chain, format!("not a PEM certificate chain: {e}")))?;
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| error(Input::Chain, "holds no certificate"))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| {
        error(
            Input::Chain,
            format!("the first certificate does not parse: {e}"),
        )
    })?;
    let not_after = parsed.validity().not_after.timestamp();
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|e| error(Input::Name, format!("{name:?} is not a DNS name: {e}")))?;
    let verifier = verifier(bundle)?;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    let days_left = (not_after - now).div_euclid(DAY);
    let verdict = match verifier.verify_server_cert(leaf, intermediates, &server_name, &[], at) {
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired))
        | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext {
            ..
        })) => Verdict::Expired,
        Err(e) => Verdict::Untrusted(e.to_string()),
        Ok(_) if days_left < min_days => Verdict::ExpiresSoon { min_days },
        Ok(_) => Verdict::Pass,
    };
    Ok(Report {
        subject: parsed.subject().to_string(),
        issuer: parsed.issuer().to_string(),
        not_after,
        days_left,
        name: name.to_owned(),
        verdict,
    })
}

/// A verifier trusting exactly the certificates of `bundle`.
fn verifier(bundle: &[u8]) -> Result<Arc<WebPkiServerVerifier>, CheckError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(bundle) {
        let cert =
            cert.map_err(|e| error(Input::Bundle, format!("not a PEM certificate bundle: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| error(Input::Bundle, format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(error(Input::Bundle, "holds no certificate"));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crate::crypto::provider())
        .build()
        .map_err(|e| error(Input::Bundle, format!("cannot verify with it: {e}")))
}

/// How close a certificate is to its notAfter, as the server's daily look judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expiry {
    /// More than the warning period left.
    Distant,
    /// Within the warning period: whole days left.
    Soon {
        /// Whole days until notAfter.
        days_left: i64,
    },
    /// Past notAfter.
    Expired,
}

/// How close `not_after` is at `now` (both Unix seconds), warning within `warn_days`.
pub fn expiry(not_after: i64, now: i64, warn_days: i64) -> Expiry {
    if not_after <= now {
        Expiry::Expired
    } else if not_after - now < warn_days.saturating_mul(DAY) {
        Expiry::Soon {
            days_left: (not_after - now).div_euclid(DAY),
        }
    } else {
        Expiry::Distant
    }
}

/// The server's warning about a serving certificate whose notAfter is `not_after`, at `now`:
/// `None` while more than [`DEFAULT_MIN_DAYS`] are left.
pub fn expiry_warning(not_after: i64, now: i64) -> Option<String> {
    let at = rfc3339(not_after);
    match expiry(not_after, now, DEFAULT_MIN_DAYS) {
        Expiry::Distant => None,
        Expiry::Soon { days_left } => Some(format!(
            "the serving certificate expires in {days_left} days ({at}); renew it before then \
             (`image-config-webhook certs renew`, or check the certificate controller)"
        )),
        Expiry::Expired => Some(format!(
            "the serving certificate expired at {at}; the API server refuses it until it is renewed"
        )),
    }
}

/// `unix` seconds as an RFC 3339 UTC time (`2027-01-01T00:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{unix} (Unix seconds)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn expiry_is_judged_in_whole_days_with_a_thirty_day_window() {
        for (left, want) in [
            (400 * DAY, Expiry::Distant),
            (30 * DAY, Expiry::Distant),
            (30 * DAY - 1, Expiry::Soon { days_left: 29 }),
            (DAY, Expiry::Soon { days_left: 1 }),
            (1, Expiry::Soon { days_left: 0 }),
            (0, Expiry::Expired),
            (-DAY, Expiry::Expired),
        ] {
            assert_eq!(expiry(NOW + left, NOW, 30), want, "{left} s left");
        }
    }

    #[test]
    fn the_server_warns_within_thirty_days_with_the_days_left_and_the_date() {
        assert_eq!(expiry_warning(NOW + 31 * DAY, NOW), None);
        let soon = expiry_warning(NOW + 12 * DAY + 5, NOW).unwrap_or_default();
        assert!(
            soon.starts_with("the serving certificate expires in 12 days ("),
            "{soon}"
        );
        assert!(soon.contains(&rfc3339(NOW + 12 * DAY + 5)), "{soon}");
        assert!(soon.contains("certs renew"), "{soon}");
        let expired = expiry_warning(NOW - 1, NOW).unwrap_or_default();
        assert!(expired.contains("expired at"), "{expired}");
    }

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_600), "2027-01-01T00:00:00Z");
    }
}

#[cfg(test)]
mod verify_tests {
    use super::*;

    /// A CA and a serving chain for `svc.ns.svc`, written by [`crate::certs::generate`].
    fn pair(tag: &str) -> (Vec<u8>, Vec<u8>, i64) {
        let dir = std::env::temp_dir().join(format!("check-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let written = crate::certs::generate("svc", "ns", &dir, false);
        assert!(written.is_ok(), "{:?}", written.map_err(|e| e.to_string()));
        let bundle = std::fs::read(dir.join("ca.crt")).unwrap_or_default();
        let chain = std::fs::read(dir.join("tls.crt")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        let not_after = check(&bundle, &chain, "svc.ns.svc", 0, 0)
            .map(|r| r.not_after)
            .unwrap_or_default();
        (bundle, chain, not_after)
    }

    fn verdict(bundle: &[u8], chain: &[u8], name: &str, now: i64) -> Result<Verdict, Input> {
        check(bundle, chain, name, now, DEFAULT_MIN_DAYS)
            .map(|r| r.verdict)
            .map_err(|e| e.input)
    }

    #[test]
    fn a_bundle_verifies_its_own_certificate_for_the_service_name_only() {
        let (bundle, chain, not_after) = pair("own");
        let (other_bundle, _, _) = pair("other");
        let now = not_after - 100 * DAY;
        assert_eq!(
            verdict(&bundle, &chain, "svc.ns.svc", now),
            Ok(Verdict::Pass)
        );
        assert!(matches!(
            verdict(&bundle, &chain, "other.ns.svc", now),
            Ok(Verdict::Untrusted(_))
        ));
        assert!(matches!(
            verdict(&other_bundle, &chain, "svc.ns.svc", now),
            Ok(Verdict::Untrusted(_))
        ));
        let both = [other_bundle.as_slice(), bundle.as_slice()].concat();
        assert_eq!(verdict(&both, &chain, "svc.ns.svc", now), Ok(Verdict::Pass));
    }

    #[test]
    fn thirty_days_before_expiry_the_check_fails() {
        let (bundle, chain, not_after) = pair("soon");
        let at =
            |days_left: i64| verdict(&bundle, &chain, "svc.ns.svc", not_after - days_left * DAY);
        assert_eq!(at(31), Ok(Verdict::Pass));
        assert_eq!(at(30), Ok(Verdict::Pass));
        assert_eq!(at(29), Ok(Verdict::ExpiresSoon { min_days: 30 }));
        assert_eq!(
            verdict(&bundle, &chain, "svc.ns.svc", not_after + 1),
            Ok(Verdict::Expired)
        );
        let report = check(&bundle, &chain, "svc.ns.svc", not_after - 12 * DAY, 30)
            .map(|r| r.to_string())
            .unwrap_or_default();
        assert!(report.contains("(12 days left)"), "{report}");
        assert!(report.contains("expires soon"), "{report}");
    }

    #[test]
    fn unusable_inputs_are_named() {
        let (bundle, chain, _) = pair("inputs");
        assert_eq!(verdict(b"", &chain, "svc.ns.svc", 0), Err(Input::Bundle));
        assert_eq!(
            verdict(&bundle, b"nothing", "svc.ns.svc", 0),
            Err(Input::Chain)
        );
        assert_eq!(verdict(&bundle, &chain, "not a name!", 0), Err(Input::Name));
    }
}
