//! The one error type of the program, its wording and its exit code.
//!
//! Every failure becomes exactly one line on stderr (`tokenxchange: error: ...`) and one
//! documented exit code. Nothing here ever holds a subject token, a client secret or an
//! issued token: variants carry paths, URLs, HTTP statuses and OAuth error fields only,
//! and text that came from a server or the environment is passed through
//! `redact::echo` first.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes, as documented in docs/usage.md ("Exit codes").
const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_SUBJECT_TOKEN: u8 = 3;
const EXIT_REFUSED: u8 = 4;
const EXIT_TRANSIENT: u8 = 5;
const EXIT_USERNAME: u8 = 6;

#[derive(Debug)]
pub enum Error {
    /// Bad command line, environment or `KUBERNETES_EXEC_INFO`.
    Usage(String),
    /// A configuration file (CA bundle, client secret, client certificate) is unusable.
    ConfigFile { what: &'static str, path: PathBuf, reason: String },
    /// The subject token file is missing, unreadable or empty.
    SubjectToken { path: PathBuf, reason: String },
    /// The identity provider answered 4xx with an OAuth error body.
    OAuth { status: u16, error: String, description: Option<String> },
    /// The identity provider answered 4xx without an OAuth error body.
    /// `what` was asked: `token exchange` or `discovery`.
    Refused { what: &'static str, url: String, status: u16, body: String },
    /// 5xx, 429 or 408: worth trying again later, after `retry_after` when the server said.
    Unavailable { url: String, status: u16, body: String, retry_after: Option<Duration> },
    /// No HTTP answer: DNS, connect, reset, timeout; `proxy` when one was in the way.
    Network { url: String, proxy: Option<String>, failure: NetFailure },
    /// The proxy refused the tunnel (credentials, policy): retrying will not help.
    Proxy { url: String, proxy: String, reason: String },
    /// TLS failed in a way that retrying cannot fix (certificates, versions, alerts).
    Tls { url: String, failure: TlsFailure },
    /// A 2xx answer we cannot use.
    BadResponse { url: String, status: u16, reason: String },
    /// Anything else at run time (writing stdout, `install`, `clean`).
    Runtime(String),
    /// `inspect`: the token was issued, but the target API server could not derive a
    /// username from it.
    Username(String),
    /// The operator policy (/etc/tokenxchange/policy.json) does not allow this run: the
    /// setting, its value (redacted) and the policy key, in words.
    Policy(String),
    /// Dex answered 500 `server_error` without a description to a request carrying
    /// cross-client scopes: most likely a peer that does not trust this client.
    CrossClient { url: String, client_id: String, audiences: Vec<String> },
    /// The issued JWT's `aud` lacks a requested audience: the token would not open the
    /// target it was asked for. `got` is the `aud` claim as JSON, escaped.
    Audience { url: String, asked: Vec<String>, got: String, dex: bool },
}

/// Why a request got no HTTP answer. Control flow matches on these; the words are in
/// `Display` only.
#[derive(Debug, Clone, PartialEq)]
pub enum NetFailure {
    Refused,
    /// The name did not resolve; the resolver's own words.
    Dns(String),
    Timeout,
    /// Reset, broken pipe or end of stream before an answer.
    Closed,
    /// Bytes that are not an HTTP/1.1 answer; the parser's words.
    Malformed(String),
    /// The run's `--timeout` was used up before this attempt.
    NoTimeLeft,
    Other(String),
}

/// Why the TLS handshake failed, in the terms a user can act on.
#[derive(Debug, Clone, PartialEq)]
pub enum TlsFailure {
    /// The chain does not end at a trusted root; `given_ca` when the roots were given
    /// with `--certificate-authority*` (then the chain may simply be incomplete).
    UnknownIssuer {
        given_ca: bool,
    },
    Expired,
    NotValidYet,
    WrongName,
    /// A `CA:TRUE` certificate served as the server's own, and not among the roots.
    CaAsServerCertificate,
    /// Versions or cipher suites do not meet; what the server said or chose.
    NoCommonVersion(String),
    ClientCertificateRequired,
    ClientCertificateRejected,
    /// Another certificate problem, in words.
    Certificate(String),
    /// Another alert from the server, by its TLS name.
    Alert(String),
    Other(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::ConfigFile { .. } | Error::Policy(_) => EXIT_USAGE,
            Error::SubjectToken { .. } => EXIT_SUBJECT_TOKEN,
            Error::OAuth { .. } | Error::Refused { .. } | Error::CrossClient { .. } => EXIT_REFUSED,
            Error::Unavailable { .. } | Error::Network { .. } | Error::Proxy { .. } | Error::Tls { .. } => {
                EXIT_TRANSIENT
            }
            Error::BadResponse { .. } | Error::Runtime(_) | Error::Audience { .. } => EXIT_RUNTIME,
            Error::Username(_) => EXIT_USERNAME,
        }
    }

    /// The exit-5 class: the identity provider could not be reached or answered 5xx, 429
    /// or 408; nothing it said refuses the request.
    pub fn is_transient(&self) -> bool {
        self.exit_code() == EXIT_TRANSIENT
    }

    /// Whether another attempt may succeed (connection trouble, 5xx, 429).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Network { .. })
    }
}

/// Running out of memory or of file descriptors, wherever it happens: a failure of this
/// run (exit 1), not a fault of a file, the network or the configuration.
pub fn exhausted(err: &io::Error) -> Option<Error> {
    match err.raw_os_error() {
        Some(libc::ENOMEM) => Some(out_of_memory()),
        Some(libc::EMFILE | libc::ENFILE) => Some(Error::Runtime(format!(
            "ran out of file descriptors: {err} (raise the limit, ulimit -n, or find what holds them)"
        ))),
        _ if err.kind() == io::ErrorKind::OutOfMemory => Some(out_of_memory()),
        _ => None,
    }
}

/// The one wording for memory that ran out (see also `arena`, which says it for a failed
/// allocation).
pub fn out_of_memory() -> Error {
    Error::Runtime(OUT_OF_MEMORY.into())
}

pub const OUT_OF_MEMORY: &str = "memory ran out (raise the container's memory limit)";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg}"),
            Error::ConfigFile { what, path, reason } => {
                write!(f, "cannot use {what} {}: {reason}", path.display())
            }
            Error::SubjectToken { path, reason } => write!(
                f,
                "cannot use subject token file {}: {reason} (set --token-file to the projected ServiceAccount token)",
                path.display()
            ),
            Error::OAuth { status, error, description } => {
                write!(f, "token exchange refused: HTTP {status} {error}")?;
                if let Some(description) = description {
                    write!(f, ": {description}")?;
                }
                if let Some(hint) = oauth_hint(error, description.as_deref()) {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
            Error::Refused { what, url, status, body } => {
                write!(f, "{what} refused: {url} answered HTTP {status} without an OAuth error{}", body_suffix(body))
            }
            Error::Unavailable { url, status, body, .. } => {
                write!(f, "identity provider unavailable: {url} answered HTTP {status}{}", body_suffix(body))
            }
            Error::Network { url, proxy: None, failure } => write!(f, "cannot reach {url}: {failure}"),
            Error::Network { url, proxy: Some(proxy), failure } => {
                write!(f, "cannot reach {url} through proxy {proxy}: {failure}")
            }
            Error::Proxy { url, proxy, reason } => write!(f, "cannot reach {url} through proxy {proxy}: {reason}"),
            Error::Tls { url, failure } => write!(f, "TLS with {url} failed: {failure}"),
            Error::BadResponse { url, status, reason } => {
                write!(f, "unusable answer from {url} (HTTP {status}): {reason}")
            }
            Error::Runtime(msg) | Error::Username(msg) => write!(f, "{msg}"),
            Error::Policy(msg) => write!(f, "refused by the operator policy {}: {msg}", crate::policy::PATH),
            Error::CrossClient { url, client_id, audiences } => write!(
                f,
                "token exchange refused: {url} answered HTTP 500 server_error without a description to the cross-client scopes for audience {list}; Dex answers so when a peer is not a static client that trusts this one: add to Dex's staticClients, for each audience, a client with that id whose trustedPeers lists '{client_id}' (e.g. id: {first}, trustedPeers: [{client_id}])",
                list = audiences.join(", "),
                first = audiences.first().map_or("", String::as_str),
            ),
            Error::Audience { url, asked, got, dex: true } => write!(
                f,
                "unusable answer from {url}: asked for audience {}, the issued token's aud is {got}; check that Dex honours cross-client scopes (static client per audience with trustedPeers) and that nothing between rewrites the request",
                asked.join(", ")
            ),
            Error::Audience { url, asked, got, dex: false } => write!(
                f,
                "unusable answer from {url}: asked for audience {}, the issued token's aud is {got}; the identity provider ignores RFC 8693 audience: configure it to honour it (with Dex, set --dex-connector so that tokenxchange asks with Dex's cross-client scope)",
                asked.join(", ")
            ),
        }
    }
}

impl fmt::Display for NetFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetFailure::Refused => f.write_str("connection refused"),
            NetFailure::Dns(detail) if detail.is_empty() => f.write_str("host name not found (DNS)"),
            NetFailure::Dns(detail) => write!(f, "host name not found (DNS): {detail}"),
            NetFailure::Timeout => f.write_str("no answer within the timeout (--timeout)"),
            NetFailure::Closed => f.write_str(
                "the server closed the connection (if it requires a TLS client certificate, set --client-certificate and --client-key)",
            ),
            NetFailure::Malformed(detail) => write!(f, "malformed HTTP answer ({detail})"),
            NetFailure::NoTimeLeft => f.write_str("no time left within --timeout"),
            NetFailure::Other(detail) => f.write_str(detail),
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::UnknownIssuer { given_ca: false } => {
                f.write_str("server certificate not trusted: unknown issuer (give its CA with --certificate-authority)")
            }
            TlsFailure::UnknownIssuer { given_ca: true } => f.write_str(
                "server certificate does not chain to the given --certificate-authority (a different CA, or the server does not send its intermediate certificates)",
            ),
            TlsFailure::Expired => f.write_str("server certificate has expired"),
            TlsFailure::NotValidYet => f.write_str("server certificate is not valid yet (check this machine's clock)"),
            TlsFailure::WrongName => f.write_str("server certificate does not name this host"),
            TlsFailure::CaAsServerCertificate => f.write_str(
                "server certificate is a CA certificate (CA:TRUE) that is not among the trusted roots; give this exact certificate with --certificate-authority",
            ),
            TlsFailure::NoCommonVersion(what) => write!(
                f,
                "no TLS version or cipher suite in common with the server (this client offers TLS 1.2 and 1.3 with ECDHE and AES-GCM or ChaCha20); {what}"
            ),
            TlsFailure::ClientCertificateRequired => {
                f.write_str("the server requires a client certificate (--client-certificate and --client-key)")
            }
            TlsFailure::ClientCertificateRejected => f.write_str("the server rejected the client certificate"),
            TlsFailure::Certificate(words) => write!(f, "server certificate rejected: {words}"),
            TlsFailure::Alert(name) => write!(f, "the server ended the handshake with alert {name}"),
            TlsFailure::Other(words) => f.write_str(words),
        }
    }
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() { String::new() } else { format!(": {body}") }
}

/// What to check next for the errors Dex is known to return (docs/troubleshooting.md).
fn oauth_hint(error: &str, description: Option<&str>) -> Option<&'static str> {
    Some(match (error, description.unwrap_or("")) {
        ("invalid_client", _) => "check --client-id and --client-secret against Dex's staticClients",
        (_, "Requested connector does not exist.") => "check --dex-connector: it must name an oidc connector of Dex",
        ("access_denied", _) => {
            "Dex could not verify the ServiceAccount token: check the connector's issuer, that Dex can fetch its JWKS, the token's expiry and userNameKey: sub; Dex's log says why"
        }
        ("unsupported_grant_type", _) => "Dex older than v2.38 or token exchange missing from oauth2.grantTypes",
        ("invalid_grant", "Connector not allowed for this client.") => {
            "add the connector to the client's allowedConnectors"
        }
        ("request_not_supported", _) => "check --subject-token-type and --requested-token-type",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: Error, expected: &str, code: u8) {
        assert_eq!(error.to_string(), expected);
        assert_eq!(error.exit_code(), code);
    }

    #[test]
    fn oauth_errors_carry_status_fields_and_hints() {
        check(
            Error::OAuth {
                status: 401,
                error: "invalid_client".into(),
                description: Some("Invalid client credentials.".into()),
            },
            "token exchange refused: HTTP 401 invalid_client: Invalid client credentials. (check --client-id and --client-secret against Dex's staticClients)",
            4,
        );
        check(
            Error::OAuth {
                status: 400,
                error: "invalid_request".into(),
                description: Some("Requested connector does not exist.".into()),
            },
            "token exchange refused: HTTP 400 invalid_request: Requested connector does not exist. (check --dex-connector: it must name an oidc connector of Dex)",
            4,
        );
        check(
            Error::OAuth { status: 400, error: "invalid_scope".into(), description: None },
            "token exchange refused: HTTP 400 invalid_scope",
            4,
        );
    }

    #[test]
    fn exit_codes_follow_the_table() {
        check(Error::Usage("unknown option --x".into()), "unknown option --x", 2);
        check(
            Error::SubjectToken { path: "/t".into(), reason: "file is empty".into() },
            "cannot use subject token file /t: file is empty (set --token-file to the projected ServiceAccount token)",
            3,
        );
        check(
            Error::Unavailable { url: "https://d/token".into(), status: 503, body: String::new(), retry_after: None },
            "identity provider unavailable: https://d/token answered HTTP 503",
            5,
        );
        check(
            Error::BadResponse { url: "u".into(), status: 200, reason: "not JSON".into() },
            "unusable answer from u (HTTP 200): not JSON",
            1,
        );
    }
}
