//! Certificates for the tests: a CA and the leaves it signs (serving and client), made with
//! rcgen, and what x509-parser reads back from them.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A test certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub pem: String,
    /// The CA certificate, DER.
    pub der: CertificateDer<'static>,
}

/// A certificate signed by a [`Ca`], with its key.
pub struct Leaf {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
    /// notAfter in Unix seconds, as x509-parser reads it from the DER.
    pub not_after: i64,
}

impl Ca {
    /// A fresh CA whose common name is `name`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A serving certificate for localhost, 127.0.0.1 and ::1, valid until `year`-01-01.
    pub fn server_leaf(&self, serial: u64, year: i32) -> Leaf {
        self.leaf(
            serial,
            None,
            year,
            server_names(),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A serving certificate valid from `from`-01-01 until `until`-01-01 (an expired one, say).
    pub fn server_leaf_between(&self, serial: u64, from: i32, until: i32) -> Leaf {
        self.leaf(
            serial,
            Some(from),
            until,
            server_names(),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate (the API server's identity, in mTLS).
    pub fn client_leaf(&self, serial: u64) -> Leaf {
        self.leaf(
            serial,
            None,
            2040,
            vec!["kube-apiserver".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    fn leaf(
        &self,
        serial: u64,
        from: Option<i32>,
        until: i32,
        sans: Vec<String>,
        eku: ExtendedKeyUsagePurpose,
    ) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(sans).expect("leaf params");
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!("image-config-webhook test {serial}"),
        );
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from(serial));
        if let Some(year) = from {
            params.not_before = rcgen::date_time_ymd(year, 1, 1);
        }
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![eku];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        let der = cert.der().clone();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: not_after_of(&der),
            der,
        }
    }
}

fn server_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

impl Leaf {
    /// The private key, parsed.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("leaf key PEM")
    }
}

/// notAfter of a DER certificate, Unix seconds.
pub fn not_after_of(der: &[u8]) -> i64 {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("certificate parses");
    cert.validity().not_after.timestamp()
}

/// The serial number of a DER certificate, for messages.
pub fn serial_of(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => cert.raw_serial_as_string(),
        Err(_) => format!("<{} bytes that do not parse>", der.len()),
    }
}
