//! TLS to the identity provider: the rustls `ClientConfig` (roots, client identity,
//! verification) and the ureq connector that wraps a TCP or proxy tunnel in it.
//!
//! Owning the config, rather than handing ureq a list of certificates, lets the bundled
//! Mozilla roots be used as ready-made trust anchors (nothing parsed per run), turns a
//! bad client key into an error instead of a panic, and keeps the binary small. The
//! connector follows ureq's `unversioned` transport API, pinned by `Cargo.lock`.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

use crate::cli::{PemSource, Tls};
use crate::error::Error;
use crate::token::read_bounded;

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

/// The rustls configuration for one run.
pub fn client_config(tls: &Tls) -> Result<Arc<ClientConfig>, Error> {
    // Every suite stays offered; AES-128-GCM-SHA256 goes first, as Go servers (Dex) choose
    // by themselves: its key schedule on SHA-256 costs a quarter less than SHA-384's.
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let provider = Arc::new(provider);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Runtime(format!("TLS setup failed: {err}")))?;
    let builder = if tls.insecure_skip_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        builder.with_root_certificates(roots(tls)?)
    };
    let config = match client_identity(tls)? {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|err| match &tls.client_key {
            Some(PemSource::File(path)) => {
                config_file("client key", path, &format!("does not fit the client certificate: {err}"))
            }
            _ => Error::Usage(format!("invalid --client-key-data: does not fit the client certificate: {err}")),
        })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Only the given CAs when any is given (kubectl semantics); else the system store plus
/// the bundled Mozilla roots.
fn roots(tls: &Tls) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    if tls.ca_files.is_empty() && tls.ca_data.is_empty() {
        for pem in system_bundles() {
            store.add_parsable_certificates(CertificateDer::pem_slice_iter(&pem).flatten());
        }
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    for path in &tls.ca_files {
        let pem = read_config_file("certificate authority", path)?;
        if add_pem(&mut store, &pem) == 0 {
            return Err(config_file("certificate authority", path, "no usable PEM certificate found"));
        }
    }
    for data in &tls.ca_data {
        let pem = decode_data(data, "--certificate-authority-data")?;
        if add_pem(&mut store, &pem) == 0 {
            return Err(Error::Usage("invalid --certificate-authority-data: no usable PEM certificate found".into()));
        }
    }
    Ok(store)
}

/// `SSL_CERT_FILE`, else the files of `SSL_CERT_DIR`, else the first distribution bundle.
/// Unreadable entries are skipped: the bundled roots still apply.
fn system_bundles() -> Vec<Vec<u8>> {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        return read_bounded(Path::new(&file), MAX_PEM_FILE).into_iter().collect();
    }
    if let Some(dirs) = std::env::var_os("SSL_CERT_DIR") {
        return std::env::split_paths(&dirs)
            .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
            .filter_map(|entry| read_bounded(&entry.path(), MAX_PEM_FILE).ok())
            .collect();
    }
    SYSTEM_BUNDLES.iter().find_map(|path| read_bounded(Path::new(path), MAX_PEM_FILE).ok()).into_iter().collect()
}

fn add_pem(store: &mut RootCertStore, pem: &[u8]) -> usize {
    store.add_parsable_certificates(CertificateDer::pem_slice_iter(pem).flatten()).0
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(tls: &Tls) -> Result<Option<Identity>, Error> {
    let (Some(cert_source), Some(key_source)) = (&tls.client_certificate, &tls.client_key) else {
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
    read_bounded(path, MAX_PEM_FILE).map_err(|err| config_file(what, path, &err.to_string()))
}

fn config_file(what: &'static str, path: &Path, reason: &str) -> Error {
    Error::ConfigFile { what, path: path.into(), reason: reason.into() }
}

/// Wraps the chained transport in TLS when the URL is `https://`.
#[derive(Debug)]
pub struct TlsConnector(pub Arc<ClientConfig>);

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let name = ServerName::try_from(host.to_string()).map_err(|_| ureq::Error::Tls("invalid server name"))?;
        let connection =
            ClientConnection::new(self.0.clone(), name).map_err(|err| ureq::Error::Io(std::io::Error::other(err)))?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        let stream = StreamOwned {
            conn: connection,
            sock: TransportAdapter::new(transport.boxed(), details.current_time.clone()),
        };
        Ok(Some(Either::B(TlsTransport { buffers, stream })))
    }
}

pub struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        self.stream.write_all(&self.buffers.output()[..amount])?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let amount = self.stream.read(self.buffers.input_append_buf())?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// `--insecure-skip-tls-verify`: accepts any certificate, still checks handshake
/// signatures with the provider's algorithms.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Secret;

    fn error_of(tls: Tls) -> Error {
        client_config(&tls).unwrap_err()
    }

    #[test]
    fn certificate_authority_input_is_checked() {
        let err = error_of(Tls { ca_data: vec!["not base64!".into()], ..Tls::default() });
        assert_eq!(err.to_string(), "invalid --certificate-authority-data: not base64");
        let err = error_of(Tls { ca_data: vec![STANDARD.encode("hello")], ..Tls::default() });
        assert_eq!(err.to_string(), "invalid --certificate-authority-data: no usable PEM certificate found");
        let err = error_of(Tls { ca_files: vec!["/nonexistent/ca.pem".into()], ..Tls::default() });
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "cannot use certificate authority /nonexistent/ca.pem: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn client_identity_input_is_checked() {
        let err = error_of(Tls {
            client_certificate: Some(PemSource::Data(Secret::new(STANDARD.encode("no pem here")))),
            client_key: Some(PemSource::Data(Secret::new(STANDARD.encode("nor here")))),
            insecure_skip_verify: true,
            ..Tls::default()
        });
        assert_eq!(err.to_string(), "invalid --client-certificate-data: no PEM certificate found");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn default_roots_include_the_bundled_ones() {
        let store = roots(&Tls::default()).unwrap();
        assert!(store.len() >= webpki_roots::TLS_SERVER_ROOTS.len());
    }
}
