//! Test certificate authorities, made fresh at run time: a self-signed CA that issues
//! ECDSA P-256 server certificates (for 127.0.0.1 and localhost) and client certificates,
//! and the rustls server configuration built from them. Nothing here is ever written to
//! disk by this module; callers decide where PEM goes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// A self-signed certificate authority with its key.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate (PEM, leaf first then any chain) and its PKCS#8 private key (PEM).
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    /// A fresh CA whose subject common name is `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("generate CA key");
        Ca { issuer: CertifiedIssuer::self_signed(params, key).expect("self-sign CA certificate") }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for IP 127.0.0.1 and DNS localhost.
    pub fn server_identity(&self) -> Identity {
        let names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into().expect("valid DNS name")),
        ];
        self.issue("localhost", names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate whose subject common name is `cn`.
    pub fn client_identity(&self, cn: &str) -> Identity {
        self.issue(cn, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, cn: &str, names: Vec<SanType>, usage: ExtendedKeyUsagePurpose) -> Identity {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(cn);
        params.subject_alt_names = names;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf certificate");
        Identity { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

/// A self-signed server certificate that is also a CA (`CA:TRUE`), as `openssl req -x509`
/// makes by default. Clients trust it by being given the certificate itself.
#[derive(Clone, Debug)]
pub struct SelfSigned {
    /// IP addresses or DNS names.
    pub names: Vec<String>,
    /// Valid from and until, in days from now (negative: in the past).
    pub valid_days: (i64, i64),
    /// Marked for client authentication only (extended key usage), not for servers.
    pub client_auth_only: bool,
}

impl SelfSigned {
    /// Valid from yesterday for a year, for `names`, with no extended key usage.
    pub fn new(names: &[&str]) -> SelfSigned {
        SelfSigned {
            names: names.iter().map(|n| n.to_string()).collect(),
            valid_days: (-1, 365),
            client_auth_only: false,
        }
    }

    pub fn identity(&self) -> Identity {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(self.names.first().map_or("self-signed", String::as_str));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.subject_alt_names = self
            .names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(name.as_str().try_into().expect("valid DNS name")),
            })
            .collect();
        let day = |offset: i64| {
            let date = crate::time::rfc3339(crate::time::now() + offset * 86_400);
            let n = |range: std::ops::Range<usize>| date[range].parse::<u16>().expect("a date");
            rcgen::date_time_ymd(i32::from(n(0..4)), n(5..7) as u8, n(8..10) as u8)
        };
        (params.not_before, params.not_after) = (day(self.valid_days.0), day(self.valid_days.1));
        if self.client_auth_only {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let key = KeyPair::generate().expect("generate key");
        let cert = params.self_signed(&key).expect("self-sign certificate");
        Identity { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    name
}

/// A rustls server configuration (ring provider, no ALPN) presenting `identity`; TLS 1.2
/// and 1.3, or TLS 1.2 alone with `tls12_only`; with `client_ca_pem`, clients must present
/// a certificate signed by that CA.
pub(crate) fn server_config(identity: &Identity, client_ca_pem: Option<&str>, tls12_only: bool) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls12_only { &[&rustls::version::TLS12] } else { rustls::DEFAULT_VERSIONS };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .expect("protocol versions");
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in certs(pem) {
                roots.add(cert).expect("client CA certificate");
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).expect("server key PEM");
    let config = builder.with_single_cert(certs(&identity.cert_pem), key).expect("server certificate and key");
    Arc::new(config)
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().expect("certificate PEM")
}
