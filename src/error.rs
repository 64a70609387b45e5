//! The one error type of the program, its wording and its exit code.
//!
//! Every failure becomes exactly one line on stderr (`tokenxchange: error: ...`) and one
//! documented exit code. Nothing here ever holds a subject token, a client secret or an
//! issued token: variants carry paths, URLs, HTTP statuses and OAuth error fields only,
//! and text that came from a server is passed through [`summarize`] first.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes, as documented in the README.
pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_SUBJECT_TOKEN: u8 = 3;
pub const EXIT_REFUSED: u8 = 4;
pub const EXIT_TRANSIENT: u8 = 5;

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
    Refused { url: String, status: u16, body: String },
    /// 5xx, 429 or 408: worth trying again later, after `retry_after` when the server said.
    Unavailable { url: String, status: u16, body: String, retry_after: Option<Duration> },
    /// No HTTP answer: DNS, connect, reset, timeout; `proxy` when one was in the way.
    Network { url: String, proxy: Option<String>, reason: String },
    /// The proxy refused the tunnel (credentials, policy): retrying will not help.
    Proxy { url: String, proxy: String, reason: String },
    /// TLS failed in a way that retrying cannot fix (certificates).
    Tls { url: String, reason: String },
    /// A 2xx answer we cannot use.
    BadResponse { url: String, status: u16, reason: String },
    /// Anything else at run time (writing stdout, `install`, `clean`).
    Runtime(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::ConfigFile { .. } => EXIT_USAGE,
            Error::SubjectToken { .. } => EXIT_SUBJECT_TOKEN,
            Error::OAuth { .. } | Error::Refused { .. } => EXIT_REFUSED,
            Error::Unavailable { .. } | Error::Network { .. } | Error::Proxy { .. } | Error::Tls { .. } => {
                EXIT_TRANSIENT
            }
            Error::BadResponse { .. } | Error::Runtime(_) => EXIT_RUNTIME,
        }
    }

    /// Whether another attempt may succeed (connection trouble, 5xx, 429).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Network { .. })
    }
}

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
            Error::Refused { url, status, body } => write!(
                f,
                "token exchange refused: {url} answered HTTP {status} without an OAuth error{}",
                body_suffix(body)
            ),
            Error::Unavailable { url, status, body, .. } => {
                write!(f, "identity provider unavailable: {url} answered HTTP {status}{}", body_suffix(body))
            }
            Error::Network { url, proxy: None, reason } => write!(f, "cannot reach {url}: {reason}"),
            Error::Network { url, proxy: Some(proxy), reason } | Error::Proxy { url, proxy, reason } => {
                write!(f, "cannot reach {url} through proxy {proxy}: {reason}")
            }
            Error::Tls { url, reason } => write!(f, "TLS with {url} failed: {reason}"),
            Error::BadResponse { url, status, reason } => {
                write!(f, "unusable answer from {url} (HTTP {status}): {reason}")
            }
            Error::Runtime(msg) => write!(f, "{msg}"),
        }
    }
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() { String::new() } else { format!(": {body}") }
}

/// What to check next for the errors Dex is known to return (CONTRACTS.md §1).
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

/// Turns text received from a server into a short single line: control characters escaped,
/// at most `max` characters kept.
pub fn summarize(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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

    #[test]
    fn summarize_escapes_control_characters_and_truncates() {
        assert_eq!(summarize(b"  <html>\r\n<b>bad\tgateway</b>", 100), "<html>\\r\\n<b>bad\\tgateway</b>");
        assert_eq!(summarize(b"abcdef", 3), "abc…");
        assert_eq!(summarize(b"\xff\x1b[31m", 10), "\u{fffd}\\u{1b}[31m");
    }
}
