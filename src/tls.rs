//! TLS to the identity provider: the rustls `ClientConfig` (roots, client identity,
//! verification); `http` wraps connections in it.
//!
//! Owning the config, rather than handing ureq a list of certificates, lets the bundled
//! Mozilla roots be used as ready-made trust anchors (nothing parsed per run), turns a
//! bad client key into an error instead of a panic, and keeps the binary small.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::der;
use crate::error::{Error, TlsFailure};
use crate::fs::read_bounded;
use crate::secret::Secret;

/// Trust and identity for the TLS connection to the identity provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// When any CA is given, only these roots are trusted (as kubectl does).
    pub ca_files: Vec<PathBuf>,
    /// Base64 of PEM, as in a kubeconfig.
    pub ca_data: Vec<String>,
    pub client_certificate: Option<PemSource>,
    pub client_key: Option<PemSource>,
    pub insecure_skip_verify: bool,
}

/// Where the system's CA bundle is, from `SSL_CERT_FILE` and `SSL_CERT_DIR` as `main` read
/// them (raw: an empty value names no readable file, so no system bundle is read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemTrust {
    pub ssl_cert_file: Option<OsString>,
    pub ssl_cert_dir: Option<OsString>,
}

impl SystemTrust {
    /// The variables this reads; `main` collects them in its one reading of the environment.
    pub const VARIABLES: [&str; 2] = ["SSL_CERT_FILE", "SSL_CERT_DIR"];

    pub fn from_vars(get: &dyn Fn(&str) -> Option<OsString>) -> SystemTrust {
        SystemTrust { ssl_cert_file: get("SSL_CERT_FILE"), ssl_cert_dir: get("SSL_CERT_DIR") }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PemSource {
    File(PathBuf),
    /// Base64 of PEM (a key is a secret, so both forms are held as one).
    Data(Secret),
}

/// The rustls configuration for one run, and whether its roots were given explicitly
/// (which changes what an untrusted chain means).
#[derive(Debug, Clone)]
pub struct Client {
    pub config: Arc<ClientConfig>,
    pub given_ca: bool,
}

/// CA bundles and client certificates larger than this are refused (a distribution bundle
/// is about 200 KiB).
const MAX_PEM_FILE: u64 = 4 << 20;

/// Distribution CA bundles, tried in order when `SSL_CERT_FILE` and `SSL_CERT_DIR` are
/// unset (Debian/Ubuntu/Alpine, Fedora/RHEL, openSUSE, others). The hashed directory is
/// not read by default: it costs milliseconds per run.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The rustls configuration for one run: TLS 1.3 and 1.2 with the ring provider's
/// suites (ECDHE with AES-GCM or ChaCha20 only).
pub fn client(settings: &Settings, system: &SystemTrust) -> Result<Client, Error> {
    // Every suite stays offered; AES-128-GCM-SHA256 goes first, as Go servers (Dex) choose
    // by themselves: its key schedule on SHA-256 costs a quarter less than SHA-384's.
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let provider = Arc::new(provider);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Runtime(format!("TLS setup failed: {err}")))?;
    let given_ca = !settings.ca_files.is_empty() || !settings.ca_data.is_empty();
    let verifier = if settings.insecure_skip_verify {
        Verifier { webpki: None, pinned: Vec::new(), provider }
    } else {
        let (roots, pinned) = roots(settings, system)?;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|err| Error::Runtime(format!("TLS setup failed: {err}")))?;
        Verifier { webpki: Some(webpki), pinned, provider }
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier));
    let config = match client_identity(settings)? {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|err| match &settings.client_key {
            Some(PemSource::File(path)) => {
                config_file("client key", path, &format!("does not fit the client certificate: {err}"))
            }
            _ => Error::Usage(format!("invalid --client-key-data: does not fit the client certificate: {err}")),
        })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Client { config: Arc::new(config), given_ca })
}

/// What a TLS failure means for the user, without a Rust debug string.
pub fn describe(err: &rustls::Error, given_ca: bool) -> TlsFailure {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(CertificateError::UnknownIssuer) => TlsFailure::UnknownIssuer { given_ca },
        E::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            TlsFailure::Expired
        }
        E::InvalidCertificate(CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }) => {
            TlsFailure::NotValidYet
        }
        E::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }) => {
            TlsFailure::WrongName
        }
        E::InvalidCertificate(CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }) => {
            TlsFailure::Certificate("not for servers (its extended key usage lacks serverAuth)".into())
        }
        E::InvalidCertificate(CertificateError::Other(other)) => match other.0.downcast_ref::<webpki::Error>() {
            Some(webpki::Error::CaUsedAsEndEntity) => TlsFailure::CaAsServerCertificate,
            Some(inner) => TlsFailure::Certificate(words(&format!("{inner:?}"), ' ')),
            None => TlsFailure::Certificate(other.to_string()),
        },
        E::InvalidCertificate(other) => TlsFailure::Certificate(words(&format!("{other:?}"), ' ')),
        E::AlertReceived(AlertDescription::CertificateRequired) => TlsFailure::ClientCertificateRequired,
        E::AlertReceived(AlertDescription::BadCertificate | AlertDescription::UnknownCA) => {
            TlsFailure::ClientCertificateRejected
        }
        E::AlertReceived(
            alert @ (AlertDescription::ProtocolVersion
            | AlertDescription::HandshakeFailure
            | AlertDescription::InsufficientSecurity),
        ) => TlsFailure::NoCommonVersion(format!("the server sent alert {}", words(&format!("{alert:?}"), '_'))),
        E::AlertReceived(alert) => TlsFailure::Alert(words(&format!("{alert:?}"), '_')),
        E::PeerIncompatible(why) => TlsFailure::NoCommonVersion(incompatible(why)),
        other => TlsFailure::Other(other.to_string()),
    }
}

/// What the server offered that this client cannot take.
fn incompatible(why: &rustls::PeerIncompatible) -> String {
    use rustls::PeerIncompatible as P;
    match why {
        P::ServerDoesNotSupportTls12Or13 | P::ServerTlsVersionIsDisabledByOurConfig => {
            "the server chose a TLS version older than 1.2".into()
        }
        P::NoCipherSuitesInCommon => "the server offered no cipher suite this client has".into(),
        P::NoKxGroupsInCommon => {
            "the server offered no key exchange group this client has (X25519, P-256, P-384)".into()
        }
        P::NoSignatureSchemesInCommon => "the server offered no signature scheme this client has".into(),
        other => words(&format!("{other:?}"), ' '),
    }
}

/// `CaUsedAsEndEntity` → `ca used as end entity` (or `_`-joined for TLS alert names):
/// the name of an error kind in plain words; any fields are left out.
fn words(debug: &str, separator: char) -> String {
    let name = debug.split(['(', ' ', '{']).next().unwrap_or(debug);
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(separator);
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Only the given CAs when any is given (kubectl semantics); else the system store plus
/// the bundled Mozilla roots. Also returns the certificates read from PEM (given, or the
/// system's files), which are accepted as the server's own certificate when it presents
/// one of them byte for byte.
fn roots(settings: &Settings, system: &SystemTrust) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), Error> {
    let mut store = RootCertStore::empty();
    let mut given = Vec::new();
    if settings.ca_files.is_empty() && settings.ca_data.is_empty() {
        for (_, pem) in system_bundles(system) {
            add_pem(&mut store, &mut given, &pem);
        }
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok((store, given));
    }
    for path in &settings.ca_files {
        let pem = read_config_file("certificate authority", path)?;
        if add_pem(&mut store, &mut given, &pem) == 0 {
            return Err(config_file("certificate authority", path, "no usable PEM certificate found"));
        }
    }
    for data in &settings.ca_data {
        let pem = decode_data(data, "--certificate-authority-data")?;
        if add_pem(&mut store, &mut given, &pem) == 0 {
            return Err(Error::Usage("invalid --certificate-authority-data: no usable PEM certificate found".into()));
        }
    }
    Ok((store, given))
}

/// `SSL_CERT_FILE`, else the files of `SSL_CERT_DIR`, else the first distribution bundle,
/// each with where it was read. Unreadable entries are skipped: the bundled roots still
/// apply.
fn system_bundles(system: &SystemTrust) -> Vec<(PathBuf, Vec<u8>)> {
    let read = |path: PathBuf| read_bounded(&path, MAX_PEM_FILE).ok().map(|pem| (path, pem));
    if let Some(file) = &system.ssl_cert_file {
        return read(file.into()).into_iter().collect();
    }
    if let Some(dirs) = &system.ssl_cert_dir {
        return std::env::split_paths(dirs)
            .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
            .filter_map(|entry| read(entry.path()))
            .collect();
    }
    SYSTEM_BUNDLES.iter().find_map(|path| read(path.into())).into_iter().collect()
}

/// The roots a run with `settings` trusts, in words (for `inspect`): the given files
/// with the common names of their certificates, or the system's bundles and the bundled
/// Mozilla roots.
pub fn trust(settings: &Settings, system: &SystemTrust) -> Vec<String> {
    if settings.insecure_skip_verify {
        return vec!["nothing: the server certificate is not verified (--insecure-skip-tls-verify)".into()];
    }
    let names = |pem: &[u8]| -> String {
        let names: Vec<String> = CertificateDer::pem_slice_iter(pem)
            .flatten()
            .map(|cert| der::common_name(&cert).map_or("(no common name)".into(), |cn| format!("CN={cn}")))
            .collect();
        if names.is_empty() { "no certificate".into() } else { names.join("; ") }
    };
    let mut out = Vec::new();
    for path in &settings.ca_files {
        match read_config_file("certificate authority", path) {
            Ok(pem) => out.push(format!("{}: {}", path.display(), names(&pem))),
            Err(err) => out.push(err.to_string()),
        }
    }
    for data in &settings.ca_data {
        match decode_data(data, "--certificate-authority-data") {
            Ok(pem) => out.push(format!("--certificate-authority-data: {}", names(&pem))),
            Err(err) => out.push(err.to_string()),
        }
    }
    if out.is_empty() {
        for (path, pem) in system_bundles(system) {
            let count = CertificateDer::pem_slice_iter(&pem).flatten().count();
            out.push(format!("{}: {count} certificates", path.display()));
        }
        out.push(format!("{} bundled Mozilla roots", webpki_roots::TLS_SERVER_ROOTS.len()));
    }
    out.into_iter().map(|line| crate::redact::echo(line.as_bytes(), 400)).collect()
}

/// Adds the certificates of `pem` as roots; returns how many were usable.
fn add_pem(store: &mut RootCertStore, given: &mut Vec<CertificateDer<'static>>, pem: &[u8]) -> usize {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem).flatten().collect();
    let (added, _) = store.add_parsable_certificates(certs.iter().cloned());
    given.extend(certs);
    added
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(settings: &Settings) -> Result<Option<Identity>, Error> {
    let (Some(cert_source), Some(key_source)) = (&settings.client_certificate, &settings.client_key) else {
        return Ok(None);
    };
    let bad = |what: &'static str, source: &PemSource, why: &str| match source {
        PemSource::File(path) => config_file(what, path, why),
        PemSource::Data(_) => Error::Usage(format!("invalid --{}-data: {why}", what.replace(' ', "-"))),
    };
    let cert_pem = pem_bytes(cert_source, "client certificate")?;
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&cert_pem).flatten().collect();
    if chain.is_empty() {
        return Err(bad("client certificate", cert_source, "no PEM certificate found"));
    }
    let key_pem = pem_bytes(key_source, "client key")?;
    crate::redact::register(&String::from_utf8_lossy(&key_pem));
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| bad("client key", key_source, "no PEM private key found"))?;
    Ok(Some((chain, key)))
}

fn pem_bytes(source: &PemSource, what: &'static str) -> Result<Vec<u8>, Error> {
    match source {
        PemSource::File(path) => read_config_file(what, path),
        PemSource::Data(data) => decode_data(data.expose(), &format!("--{}-data", what.replace(' ', "-"))),
    }
}

fn decode_data(data: &str, flag: &str) -> Result<Vec<u8>, Error> {
    let compact: String = data.split_whitespace().collect();
    STANDARD.decode(compact).map_err(|_| Error::Usage(format!("invalid {flag}: not base64")))
}

fn read_config_file(what: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    read_bounded(path, MAX_PEM_FILE)
        .map_err(|err| crate::error::exhausted(&err).unwrap_or_else(|| config_file(what, path, &err.to_string())))
}

fn config_file(what: &'static str, path: &Path, reason: &str) -> Error {
    Error::ConfigFile { what, path: path.into(), reason: reason.into() }
}

/// webpki's verification, except for a server certificate that is byte for byte one of
/// the roots read from PEM: that one is accepted after checking the host name and the
/// validity period, as Go's crypto/x509 and curl do. It is how a self-signed certificate
/// (often `CA:TRUE`, the `openssl req -x509` default) is trusted by giving it as the CA.
/// Without `webpki` (`--insecure-skip-tls-verify`) any certificate is accepted. Handshake
/// signatures are always checked with the provider's algorithms.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else { return Ok(ServerCertVerified::assertion()) };
        if !self.pinned.iter().any(|given| given.as_ref() == end_entity.as_ref()) {
            return webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        }
        let invalid = |err: CertificateError| rustls::Error::InvalidCertificate(err);
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| invalid(CertificateError::BadEncoding))?;
        cert.verify_is_valid_for_subject_name(server_name).map_err(|_| invalid(CertificateError::NotValidForName))?;
        let (not_before, not_after) = der::validity(end_entity).ok_or(invalid(CertificateError::BadEncoding))?;
        if !der::for_servers(end_entity).ok_or(invalid(CertificateError::BadEncoding))? {
            return Err(invalid(CertificateError::InvalidPurpose));
        }
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if now < not_before {
            return Err(invalid(CertificateError::NotValidYet));
        }
        if now > not_after {
            return Err(invalid(CertificateError::Expired));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(settings: Settings) -> Error {
        client(&settings, &SystemTrust::default()).unwrap_err()
    }

    #[test]
    fn certificate_authority_input_is_checked() {
        let err = error_of(Settings { ca_data: vec!["not base64!".into()], ..Settings::default() });
        assert_eq!(err.to_string(), "invalid --certificate-authority-data: not base64");
        let err = error_of(Settings { ca_data: vec![STANDARD.encode("hello")], ..Settings::default() });
        assert_eq!(err.to_string(), "invalid --certificate-authority-data: no usable PEM certificate found");
        let err = error_of(Settings { ca_files: vec!["/nonexistent/ca.pem".into()], ..Settings::default() });
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "cannot use certificate authority /nonexistent/ca.pem: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn client_identity_input_is_checked() {
        let err = error_of(Settings {
            client_certificate: Some(PemSource::Data(Secret::new(STANDARD.encode("no pem here")))),
            client_key: Some(PemSource::Data(Secret::new(STANDARD.encode("nor here")))),
            insecure_skip_verify: true,
            ..Settings::default()
        });
        assert_eq!(err.to_string(), "invalid --client-certificate-data: no PEM certificate found");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn default_roots_include_the_bundled_ones() {
        let (store, _) = roots(&Settings::default(), &SystemTrust::default()).unwrap();
        assert!(store.len() >= webpki_roots::TLS_SERVER_ROOTS.len());
    }

    #[test]
    fn the_system_bundle_is_where_the_variables_name_it() {
        let temp = testkit::TempDir::new("tls-system-trust");
        let ca = testkit::Ca::new("system-test-root");
        let file = temp.path().join("bundle.pem");
        std::fs::write(&file, ca.cert_pem()).unwrap();
        let dir = temp.path().join("certs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("one.pem"), ca.cert_pem()).unwrap();
        let vars = |pairs: &[(&str, &std::path::Path)]| {
            let pairs: Vec<(String, OsString)> =
                pairs.iter().map(|(name, path)| (name.to_string(), path.as_os_str().into())).collect();
            SystemTrust::from_vars(&|name| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
        };
        let read =
            |system: &SystemTrust| -> Vec<PathBuf> { system_bundles(system).into_iter().map(|(p, _)| p).collect() };
        assert_eq!(read(&vars(&[("SSL_CERT_FILE", &file)])), vec![file.clone()]);
        assert_eq!(read(&vars(&[("SSL_CERT_DIR", &dir)])), [dir.join("one.pem")]);
        // SSL_CERT_FILE wins; an empty one names no readable file, so nothing is read.
        assert_eq!(read(&vars(&[("SSL_CERT_FILE", &file), ("SSL_CERT_DIR", &dir)])), vec![file.clone()]);
        assert_eq!(read(&vars(&[("SSL_CERT_FILE", std::path::Path::new(""))])), Vec::<PathBuf>::new());
        let (_, pinned) = roots(&Settings::default(), &vars(&[("SSL_CERT_FILE", &file)])).unwrap();
        assert_eq!(pinned.len(), 1, "the system bundle's certificate is read");
        let words = trust(&Settings::default(), &vars(&[("SSL_CERT_FILE", &file)]));
        assert_eq!(words[0], format!("{}: 1 certificates", file.display()));
    }

    #[test]
    fn failures_are_worded() {
        use rustls::Error as E;
        let check = |err: E, given_ca: bool, expected: &str| assert_eq!(describe(&err, given_ca).to_string(), expected);
        check(
            E::InvalidCertificate(CertificateError::UnknownIssuer),
            false,
            "server certificate not trusted: unknown issuer (give its CA with --certificate-authority)",
        );
        check(
            E::InvalidCertificate(CertificateError::UnknownIssuer),
            true,
            "server certificate does not chain to the given --certificate-authority (a different CA, or the server does not send its intermediate certificates)",
        );
        let other =
            |err: webpki::Error| E::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(err))));
        check(
            other(webpki::Error::CaUsedAsEndEntity),
            true,
            "server certificate is a CA certificate (CA:TRUE) that is not among the trusted roots; give this exact certificate with --certificate-authority",
        );
        check(
            other(webpki::Error::PathLenConstraintViolated),
            false,
            "server certificate rejected: path len constraint violated",
        );
        check(
            E::InvalidCertificate(CertificateError::BadSignature),
            false,
            "server certificate rejected: bad signature",
        );
        check(
            E::AlertReceived(AlertDescription::ProtocolVersion),
            false,
            "no TLS version or cipher suite in common with the server (this client offers TLS 1.2 and 1.3 with ECDHE and AES-GCM or ChaCha20); the server sent alert protocol_version",
        );
        check(
            E::PeerIncompatible(rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13),
            false,
            "no TLS version or cipher suite in common with the server (this client offers TLS 1.2 and 1.3 with ECDHE and AES-GCM or ChaCha20); the server chose a TLS version older than 1.2",
        );
        check(
            E::AlertReceived(AlertDescription::DecryptError),
            false,
            "the server ended the handshake with alert decrypt_error",
        );
    }
}
