//! The identity provider's URLs, parsed once where they enter (a flag, a variable, the
//! cluster's exec config, a discovery document, the cache) into a [`Url`] that carries
//! the decision about sending secrets over it. Everything after that takes the type and
//! never parses the text again.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::error::Error;
use crate::redact;

/// An `http(s)://HOST[:PORT]/PATH` URL that may carry the subject token and the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    text: String,
    transport: Transport,
    /// Without IPv6 brackets.
    host: String,
    port: u16,
}

/// How requests to a URL travel, decided once by [`Url::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Https,
    /// `http://` to this machine: allowed because it never leaves it.
    LoopbackHttp,
    /// `http://` elsewhere, allowed by `--allow-insecure-http` (a TLS-terminating sidecar).
    InsecureHttp,
}

impl Url {
    /// Parses `text`, named `what` in errors (`--oidc-endpoint`, `token_endpoint from
    /// discovery`, …), and applies the policy: `http://` only to loopback hosts unless
    /// `allow_insecure_http`.
    pub fn parse(text: &str, allow_insecure_http: bool, what: &str) -> Result<Url, Error> {
        let invalid = || {
            Error::Usage(format!(
                "invalid {what} '{}': expected https://HOST[:PORT]/PATH (no user info)",
                redact::echo(masked(text).as_bytes(), 200)
            ))
        };
        let (scheme, host, port) = split(text).ok_or_else(invalid)?;
        let transport = match scheme {
            "https" => Transport::Https,
            _ if is_loopback(host) => Transport::LoopbackHttp,
            _ if allow_insecure_http => Transport::InsecureHttp,
            _ => {
                return Err(Error::Usage(format!(
                    "refusing {what} '{}': http:// would send the ServiceAccount token in clear; use https:// (or --allow-insecure-http behind a TLS-terminating sidecar)",
                    redact::echo(text.as_bytes(), 200)
                )));
            }
        };
        Ok(Url { text: text.to_owned(), transport, host: host.to_owned(), port })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `<issuer>/.well-known/openid-configuration`, under the same policy.
    pub fn discovery(&self) -> Url {
        let text = format!("{}/.well-known/openid-configuration", self.text.trim_end_matches('/'));
        Url { text, ..self.clone() }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `text` with everything from after `://` to its last `@` replaced by `***`: the user
/// info (`user:password@`), also when a password holds an unescaped `/`, `?` or `#`,
/// which would end the authority early. An `@` further on (in a path) masks more than
/// needed, which a refusal can afford.
fn masked(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else { return text.to_owned() };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => text.to_owned(),
    }
}

/// `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Scheme, host (without IPv6 brackets) and port of `http(s)://HOST[:PORT]/...`; `None`
/// for anything else: user info, a bad or zero port, unclosed brackets, other schemes,
/// characters that cannot be in a host name, whitespace or control characters anywhere.
fn split(url: &str) -> Option<(&str, &str, u16)> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = split_host_port(authority)?;
    let port = match port {
        None => default_port,
        Some(port) => port,
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '%');
    if host.is_empty() || !host.chars().all(valid) {
        return None;
    }
    Some((scheme, host, port))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the port, when given, must be decimal
/// digits, 1–65535.
pub fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            host.parse::<Ipv6Addr>().ok()?;
            (host, after)
        }
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    let port = match port {
        "" => None,
        port => {
            // Digits only: `str::parse` takes a leading `+`, which Go's URL parser refuses.
            let digits = port.strip_prefix(':').filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))?;
            Some(digits.parse::<u16>().ok().filter(|p| *p != 0)?)
        }
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        let check = |text: &str, allow: bool, expected: Transport| {
            assert_eq!(Url::parse(text, allow, "--oidc-endpoint").unwrap().transport(), expected, "{text}");
        };
        check("https://dex.example.com/token", false, Transport::Https);
        check("http://127.0.0.1:5556/token", false, Transport::LoopbackHttp);
        check("http://localhost/token", false, Transport::LoopbackHttp);
        check("http://[::1]:80/token", false, Transport::LoopbackHttp);
        check("http://dex.dex.svc/token", true, Transport::InsecureHttp);
        let err = Url::parse("http://dex.dex.svc/token", false, "--oidc-endpoint").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().starts_with("refusing --oidc-endpoint 'http://dex.dex.svc/token': http:// would send"),
            "{err}"
        );
        for bad in ["dex.example.com/token", "ftp://x/y", "https:///token"] {
            let err = Url::parse(bad, false, "--oidc-endpoint").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid --oidc-endpoint '{bad}': expected https://HOST[:PORT]/PATH (no user info)")
            );
        }
        let err = Url::parse("https://user:pa55word@dex/token", false, "--oidc-endpoint").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --oidc-endpoint 'https://***@dex/token': expected https://HOST[:PORT]/PATH (no user info)"
        );
        // A password with an unescaped '/', '?' or '#' ends the authority early as a URL
        // parser reads it; it is masked all the same.
        for bad in ["https://user:pa/55@dex/token", "https://user:pa?55@dex/token", "https://user:pa#55@dex/t@x"] {
            let err = Url::parse(bad, false, "--oidc-endpoint").unwrap_err().to_string();
            assert!(!err.contains("pa") && !err.contains("55") && err.contains("'https://***@"), "{err}");
        }
        let err = Url::parse("https://dex/\u{1b}[2Jtoken\n", false, "token_endpoint from discovery").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid token_endpoint from discovery 'https://dex/\\u{1b}[2Jtoken': expected https://HOST[:PORT]/PATH (no user info)"
        );
    }

    #[test]
    fn parts() {
        let check = |url: &str, expected: Option<(&str, &str, u16)>| {
            assert_eq!(split(url), expected, "{url}");
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
        // Rust's integer parser takes a sign, Go's URL parser (client-go) takes digits only
        check("https://dex:+443/token", None);
        check("https://dex:0443/token", Some(("https", "dex", 443)));
        check("https://a b/token", None);
        check("ftp://dex/token", None);
        let url = Url::parse("https://dex.example.com:8443/dex/", false, "--issuer").unwrap();
        assert_eq!((url.host(), url.port()), ("dex.example.com", 8443));
        assert_eq!(url.discovery().as_str(), "https://dex.example.com:8443/dex/.well-known/openid-configuration");
    }
}
