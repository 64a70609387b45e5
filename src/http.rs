//! The only module that opens sockets: one HTTPS request per call, through ureq with
//! rustls on ring, with the roots, client certificate and proxy the caller chose.
//!
//! It owns the URL policy (no `http://` off loopback), the response size limit, and the
//! wording of network and TLS failures, so a user reads "server certificate not trusted"
//! rather than "Broken pipe". It never retries (see `exchange`) and never logs bodies.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};

use crate::error::{Error, summarize};
use crate::tls;

/// Bodies larger than this are refused without reading further.
pub const MAX_BODY: u64 = 1 << 20;
/// ureq's input and output buffers, per transport (TCP and TLS): one TLS record (16 KiB
/// plus overhead) fits, and so does an answer's head. ureq's default, 128 KiB each, is
/// zero-filled on every run and was half the CPU of an exchange.
const BUFFER: usize = 18 * 1024;
/// An answer's status line and headers must fit in the input buffer; a larger head is
/// refused as "response header is too big" rather than read as a closed connection.
const MAX_HEAD: usize = 16 * 1024;
/// A `Retry-After` beyond this many seconds is read as this (it ends the run anyway).
const MAX_RETRY_AFTER: u64 = 3600;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after: Option<Duration>,
}

/// Where a URL sends a request.
#[derive(Debug, PartialEq)]
pub struct Target<'a> {
    pub scheme: &'a str,
    /// Without IPv6 brackets.
    pub host: &'a str,
    pub port: u16,
}

/// Parses `http(s)://HOST[:PORT]/...`; `None` for anything else (user info, a bad port,
/// unclosed IPv6 brackets, other schemes).
pub fn target(url: &str) -> Option<Target<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            host.parse::<std::net::Ipv6Addr>().ok()?;
            (host, after)
        }
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    let port = match port {
        "" => default_port,
        port => port.strip_prefix(':')?.parse::<u16>().ok().filter(|p| *p != 0)?,
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '%');
    if host.is_empty() || !host.chars().all(valid) {
        return None;
    }
    Some(Target { scheme, host, port })
}

/// Refuses URLs that would carry secrets in clear: `http://` is allowed only to loopback
/// hosts, or everywhere with `--allow-insecure-http`.
pub fn check_url(url: &str, allow_insecure_http: bool, flag: &str) -> Result<(), Error> {
    let target = target(url)
        .ok_or_else(|| Error::Usage(format!("invalid {flag} '{url}': expected https://HOST[:PORT]/PATH")))?;
    if target.scheme == "http" && !allow_insecure_http && !is_loopback(target.host) {
        return Err(Error::Usage(format!(
            "refusing {flag} '{url}': http:// would send the ServiceAccount token in clear; use https:// (or --allow-insecure-http behind a TLS-terminating sidecar)"
        )));
    }
    Ok(())
}

pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Builds an agent: TLS as configured (see `tls`), and the proxy the caller chose
/// (`http://[user:pass@]host:port`); environment proxies are not read here (see `proxy`).
pub fn agent(tls: Arc<rustls::ClientConfig>, proxy: Option<&str>) -> Result<ureq::Agent, Error> {
    let proxy = match proxy {
        Some(url) if url.starts_with("http://") => Some(
            ureq::Proxy::new(url)
                .map_err(|_| Error::Usage(format!("invalid proxy URL {}", crate::proxy::masked(url))))?,
        ),
        Some(url) => {
            return Err(Error::Usage(format!(
                "unsupported proxy {}: only http:// proxies (HTTP CONNECT) are supported",
                crate::proxy::masked(url)
            )));
        }
        None => None,
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .https_only(false)
        .max_redirects(0)
        .proxy(proxy)
        .user_agent(concat!("tokenxchange/", env!("CARGO_PKG_VERSION")))
        .accept("application/json")
        .max_idle_connections(0)
        .input_buffer_size(BUFFER)
        .output_buffer_size(BUFFER)
        .max_response_header_size(MAX_HEAD)
        .build();
    let connector =
        ().chain(ConnectProxyConnector::default()).chain(TcpConnector::default()).chain(tls::TlsConnector(tls));
    Ok(ureq::Agent::with_parts(config, connector, LiteralFirst(DefaultResolver::default())))
}

/// Takes an IP address in the URL as it is; hands host names to ureq's resolver, which
/// looks them up on a thread of its own so that `--timeout` bounds the lookup.
#[derive(Debug)]
struct LiteralFirst(DefaultResolver);

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        match (host.parse::<std::net::IpAddr>(), port) {
            (Ok(ip), Some(port)) => {
                let mut addrs = self.0.empty();
                addrs.push(std::net::SocketAddr::new(ip, port));
                Ok(addrs)
            }
            _ => self.0.resolve(uri, config, timeout),
        }
    }
}

/// POSTs a form body. `timeout` bounds the whole call, connect to last body byte.
pub fn post_form(
    agent: &ureq::Agent,
    url: &str,
    authorization: &str,
    body: &str,
    timeout: Duration,
) -> Result<Response, Error> {
    let request = agent
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", authorization)
        .config()
        .output_buffer_size(head_room(url, authorization))
        .timeout_global(Some(timeout))
        .build();
    finish(agent, url, request.send(body))
}

/// GETs a document (OpenID discovery).
pub fn get(agent: &ureq::Agent, url: &str, timeout: Duration) -> Result<Response, Error> {
    let request = agent.get(url).config().output_buffer_size(head_room(url, "")).timeout_global(Some(timeout)).build();
    finish(agent, url, request.call())
}

/// The output buffer must hold the request's head: [`BUFFER`], or more for a URL or
/// client secret (in `Authorization`) of many KiB.
fn head_room(url: &str, authorization: &str) -> usize {
    BUFFER.max(url.len() + authorization.len() + 1024)
}

fn finish(
    agent: &ureq::Agent,
    url: &str,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Response, Error> {
    let mut response = result.map_err(|err| failure(agent, url, err))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs.min(MAX_RETRY_AFTER)));
    let body = match response.body_mut().with_config().limit(MAX_BODY).read_to_vec() {
        Ok(body) => body,
        // An oversized error page still tells the status; an oversized success is unusable.
        Err(ureq::Error::BodyExceedsLimit(_)) if !(200..=299).contains(&status) => {
            format!("(body larger than {} KiB)", MAX_BODY / 1024).into_bytes()
        }
        Err(ureq::Error::BodyExceedsLimit(_)) => {
            return Err(Error::BadResponse {
                url: url.into(),
                status,
                reason: format!("body larger than {} KiB; refused", MAX_BODY / 1024),
            });
        }
        Err(err) => return Err(failure(agent, url, err)),
    };
    Ok(Response { status, body, retry_after })
}

/// Words a failure without an HTTP answer, naming the proxy when one was used.
fn failure(agent: &ureq::Agent, url: &str, err: ureq::Error) -> Error {
    let proxy = agent.config().proxy().map(|p| format!("http://{}:{}", p.host(), p.port()));
    let network = |reason: String| Error::Network { url: url.into(), proxy: proxy.clone(), reason };
    match err {
        ureq::Error::Timeout(_) => network("no answer within the timeout (--timeout)".into()),
        ureq::Error::HostNotFound => network("host name not found (DNS)".into()),
        ureq::Error::ConnectionFailed => network("connection failed".into()),
        ureq::Error::ConnectProxyFailed(why) => Error::Proxy {
            url: url.into(),
            proxy: proxy.clone().unwrap_or_default(),
            reason: format!("the proxy refused the CONNECT tunnel: {}", summarize(why.as_bytes(), 200)),
        },
        ureq::Error::Io(err) => match err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(tls) => tls_failure(url, tls),
            None => network(io_reason(&err)),
        },
        ureq::Error::Protocol(err) => network(format!("malformed HTTP answer ({err})")),
        other => network(other.to_string()),
    }
}

fn io_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "no answer within the timeout (--timeout)".into(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionAborted => {
            "the server closed the connection (if it requires a TLS client certificate, set --client-certificate and --client-key)".into()
        }
        // The system resolver's failure arrives as a plain I/O error.
        _ if err.to_string().contains("failed to lookup address") => format!("host name not found (DNS): {err}"),
        _ => err.to_string(),
    }
}

fn tls_failure(url: &str, err: &rustls::Error) -> Error {
    use rustls::{AlertDescription, CertificateError};
    let reason = match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "server certificate not trusted: unknown issuer (give its CA with --certificate-authority)".into()
        }
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "server certificate has expired".into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "server certificate does not name this host".into(),
        rustls::Error::InvalidCertificate(other) => format!("server certificate rejected: {other:?}"),
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate (--client-certificate and --client-key)".into()
        }
        rustls::Error::AlertReceived(AlertDescription::BadCertificate | AlertDescription::UnknownCA) => {
            "the server rejected the client certificate".into()
        }
        other => format!("{other}"),
    };
    Error::Tls { url: url.into(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_policy() {
        assert!(check_url("https://dex.example.com/token", false, "--oidc-endpoint").is_ok());
        assert!(check_url("http://127.0.0.1:5556/token", false, "--oidc-endpoint").is_ok());
        assert!(check_url("http://localhost/token", false, "--oidc-endpoint").is_ok());
        assert!(check_url("http://[::1]:80/token", false, "--oidc-endpoint").is_ok());
        assert!(check_url("http://dex.dex.svc/token", true, "--oidc-endpoint").is_ok());
        let err = check_url("http://dex.dex.svc/token", false, "--oidc-endpoint").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().starts_with("refusing --oidc-endpoint 'http://dex.dex.svc/token': http:// would send"),
            "{err}"
        );
        for bad in ["dex.example.com/token", "ftp://x/y", "https:///token", "https://user:pw@dex/token"] {
            let err = check_url(bad, false, "--oidc-endpoint").unwrap_err();
            assert_eq!(err.to_string(), format!("invalid --oidc-endpoint '{bad}': expected https://HOST[:PORT]/PATH"));
        }
    }

    #[test]
    fn resolver_failures_are_named() {
        let err = io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(
            io_reason(&err),
            "host name not found (DNS): failed to lookup address information: Name or service not known"
        );
        assert_eq!(io_reason(&io::Error::from(io::ErrorKind::ConnectionRefused)), "connection refused");
    }

    #[test]
    fn targets() {
        let check = |url: &str, expected: Option<(&str, &str, u16)>| {
            assert_eq!(target(url).map(|t| (t.scheme, t.host, t.port)), expected, "{url}");
        };
        check("https://dex.example.com/token", Some(("https", "dex.example.com", 443)));
        check("http://dex:5556/dex/token?x", Some(("http", "dex", 5556)));
        check("https://[::1]:8443/token", Some(("https", "::1", 8443)));
        check("https://[fd00::1]", Some(("https", "fd00::1", 443)));
        check("https://127.0.0.1:99999/token", None);
        check("https://dex.example.com:abc/token", None);
        check("https://dex:0/token", None);
        check("https://[::1/token", None);
        check("https://[not-v6]/token", None);
        check("https://dex:443:1/token", None);
        check("https://a b/token", None);
        check("ftp://dex/token", None);
    }
}
