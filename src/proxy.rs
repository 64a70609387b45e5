//! Which HTTP proxy, if any, a request goes through: `HTTPS_PROXY` / `ALL_PROXY` and
//! `NO_PROXY` read the way curl reads them.
//!
//! ureq's own `NO_PROXY` handling skips CIDR ranges, ports and spaces after commas, so the
//! decision is made here and ureq is handed a proxy or none. Matching is on the host as
//! written in the URL; nothing is resolved.

use std::ffi::OsString;
use std::net::IpAddr;

use crate::error::Error;
use crate::redact;
use crate::url::{Transport, Url};

/// The proxy variables this module reads; `main` collects them in its one reading of the
/// environment.
pub const VARIABLES: [&str; 7] =
    ["https_proxy", "HTTPS_PROXY", "http_proxy", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"];

/// The proxy variables of the process, captured once: (variable name, value).
#[derive(Debug, Default, Clone)]
pub struct Env {
    pub https_proxy: Option<(&'static str, String)>,
    pub http_proxy: Option<(&'static str, String)>,
    pub all_proxy: Option<(&'static str, String)>,
    pub no_proxy: Option<String>,
    /// The first variable read that is not UTF-8: an error only for a run that needs a
    /// route ([`Env::checked`]), so `--help` or `--direct` still work beside it.
    pub not_utf8: Option<&'static str>,
}

impl Env {
    /// The proxy settings from the variables `get` returns (the environment as `main` read
    /// it). Lowercase wins over uppercase, and an empty or blank value counts as unset,
    /// as curl has it.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<OsString>) -> Env {
        let mut env = Env::default();
        let mut var = |names: &[&'static str]| -> Option<(&'static str, String)> {
            for name in names {
                match get(name).map(OsString::into_string) {
                    _ if env.not_utf8.is_some() => return None,
                    Some(Ok(value)) if !value.trim().is_empty() => return Some((name, value)),
                    Some(Err(_)) => env.not_utf8 = Some(name),
                    _ => {}
                }
            }
            None
        };
        let https_proxy = var(&["https_proxy", "HTTPS_PROXY"]);
        // curl reads only the lowercase form for http://, as uppercase HTTP_PROXY can
        // be set by a CGI client.
        let http_proxy = var(&["http_proxy"]);
        let all_proxy = var(&["all_proxy", "ALL_PROXY"]);
        let no_proxy = var(&["no_proxy", "NO_PROXY"]).map(|(_, value)| value);
        Env { https_proxy, http_proxy, all_proxy, no_proxy, ..env }
    }

    /// The settings, or a usage error naming the variable that is not UTF-8.
    pub fn checked(&self) -> Result<&Env, Error> {
        match self.not_utf8 {
            Some(name) => Err(Error::Usage(format!("{name} is not valid UTF-8"))),
            None => Ok(self),
        }
    }
}

/// How a request travels: through `proxy` (`http://[user:pass@]host:port`, unmasked: for
/// the agent only) or direct, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub proxy: Option<String>,
    /// In words, for `-v` and `inspect`: the variable used, or why none is.
    pub why: String,
}

/// The route for `url`. Plain `http://` to a loopback host is never proxied: it is allowed
/// in clear only because it stays on this machine. A proxy value that is not a usable
/// `http://[user:pass@]host[:port]` is a usage error naming its variable.
pub fn route(url: &Url, env: &Env) -> Result<Route, Error> {
    let host = url.host();
    let direct = |why: String| {
        verbose!("no proxy for {host}: {why}");
        Ok(Route { proxy: None, why })
    };
    let proxy = match url.transport() {
        Transport::Https => env.https_proxy.as_ref().or(env.all_proxy.as_ref()),
        Transport::LoopbackHttp => return direct("plain http:// to this machine is never proxied".into()),
        Transport::InsecureHttp => env.http_proxy.as_ref().or(env.all_proxy.as_ref()),
    };
    let Some((name, proxy)) = proxy else {
        return direct("no proxy variable applies".into());
    };
    if let Some(entry) = env.no_proxy.as_deref().and_then(|list| bypass(list, host, url.port())) {
        return direct(format!("NO_PROXY entry '{}'", redact::echo(entry.as_bytes(), 100)));
    }
    let proxy = proxy.trim();
    let proxy = if proxy.contains("://") { proxy.to_string() } else { format!("http://{proxy}") };
    if let Some((userinfo, _)) = proxy.split_once("://").and_then(|(_, rest)| rest.rsplit_once('@')) {
        // The proxy's password is a secret of this run like the others.
        redact::register(userinfo);
        redact::register(userinfo.split_once(':').map_or("", |(_, password)| password));
    }
    check(&proxy).map_err(|why| Error::Usage(format!("invalid {name} '{}': {why}", masked(&proxy))))?;
    verbose!("using proxy {} for {host} ({name})", masked(&proxy));
    Ok(Route { why: format!("{} from {name}", masked(&proxy)), proxy: Some(proxy) })
}

/// Whether `proxy` is `http://[user:pass@]host[:port][/]`.
fn check(proxy: &str) -> Result<(), &'static str> {
    let Some(rest) = proxy.strip_prefix("http://") else {
        return Err("only http:// proxies (HTTP CONNECT) are supported");
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match crate::url::split_host_port(host_port) {
        Some((host, _)) if !host.is_empty() && !host.contains(['/', '?', '#']) => Ok(()),
        _ => Err("expected http://[USER:PASSWORD@]HOST[:PORT] with a port from 1 to 65535"),
    }
}

/// The `NO_PROXY` entry that sends `host:port` direct, if any.
fn bypass<'a>(list: &'a str, host: &str, port: u16) -> Option<&'a str> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok();
    list.split(',').map(str::trim).filter(|e| !e.is_empty()).find(|entry| {
        if *entry == "*" {
            return true;
        }
        let (pattern, entry_port) = split_port(entry);
        if entry_port.is_some_and(|p| p != port) {
            return false;
        }
        let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
        if let Some((network, bits)) = pattern.split_once('/') {
            return match (host_ip, network.parse::<IpAddr>(), bits.parse::<u8>()) {
                (Some(ip), Ok(network), Ok(bits)) => in_network(ip, network, bits),
                _ => false,
            };
        }
        if let (Some(ip), Ok(entry_ip)) = (host_ip, pattern.parse::<IpAddr>()) {
            return ip == entry_ip;
        }
        let suffix = pattern.strip_prefix("*.").or(pattern.strip_prefix('.')).unwrap_or(&pattern);
        !suffix.is_empty() && (host == suffix || host.ends_with(&format!(".{suffix}")))
    })
}

/// `host:port`, `[v6]:port`, `v6` or `host` → (host, port).
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(v6) = entry.strip_prefix('[') {
        let (host, rest) = v6.split_once(']').unwrap_or((v6, ""));
        return (host, rest.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.rsplit_once(':') {
        // A bare IPv6 address (with or without /bits) has several colons and no port.
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The proxy URL with its user info replaced by `***` whole (user name included), and
/// control characters escaped.
pub fn masked(proxy: &str) -> String {
    let shown = match proxy.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => proxy.into(),
        },
        None => proxy.into(),
    };
    redact::echo(shown.as_bytes(), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(no_proxy: &str) -> Env {
        Env {
            https_proxy: Some(("HTTPS_PROXY", "proxy.corp:3128".into())),
            no_proxy: Some(no_proxy.into()),
            ..Env::default()
        }
    }

    fn for_text(url: &str, env: &Env) -> Option<String> {
        let url = Url::parse(url, true, "--oidc-endpoint").unwrap();
        route(&url, env).unwrap().proxy
    }

    #[test]
    fn no_proxy_forms() {
        let check = |list: &str, url: &str, direct: bool| {
            assert_eq!(for_text(url, &env(list)).is_none(), direct, "NO_PROXY={list:?} url={url}");
        };
        check("", "https://dex.example.com/token", false);
        check("dex.example.com", "https://dex.example.com/token", true);
        check("DEX.example.com.", "https://dex.example.com/token", true);
        check("example.com", "https://dex.example.com/token", true);
        check(".example.com", "https://dex.example.com/token", true);
        check("*.example.com", "https://dex.example.com/token", true);
        check("ample.com", "https://dex.example.com/token", false);
        check("*", "https://anything/token", true);
        check("10.0.0.0/8", "https://10.1.2.3/token", true);
        check("10.0.0.0/8", "https://11.1.2.3/token", false);
        check("10.0.0.0/8", "https://ten.example/token", false);
        check("::1/128", "https://[::1]:8443/token", true);
        check("fd00::/8", "https://[fd12::1]/token", true);
        check("192.168.1.5", "https://192.168.1.5/token", true);
        check("dex.example.com:8443", "https://dex.example.com:8443/token", true);
        check("dex.example.com:8443", "https://dex.example.com/token", false);
        check("[::1]:8443", "https://[::1]:8443/token", true);
        check("foo.com , dex.example.com", "https://dex.example.com/token", true);
        check(" foo.com,\tdex.example.com ", "https://dex.example.com/token", true);
    }

    #[test]
    fn variables_and_schemes() {
        let all = Env { all_proxy: Some(("ALL_PROXY", "http://all:1".into())), ..Env::default() };
        assert_eq!(for_text("https://dex/token", &all).as_deref(), Some("http://all:1"));
        let https = Env {
            https_proxy: Some(("HTTPS_PROXY", "http://h:1".into())),
            all_proxy: Some(("ALL_PROXY", "http://all:1".into())),
            ..Env::default()
        };
        assert_eq!(for_text("https://dex/token", &https).as_deref(), Some("http://h:1"));
        assert_eq!(for_text("http://dex.internal/token", &https).as_deref(), Some("http://all:1"));
        assert_eq!(for_text("http://127.0.0.1/token", &https), None, "plain http to loopback stays local");
        assert_eq!(for_text("https://127.0.0.1/token", &https).as_deref(), Some("http://h:1"));
        assert_eq!(for_text("https://dex/token", &Env::default()), None);
        assert_eq!(for_text("https://dex/token", &env("")).as_deref(), Some("http://proxy.corp:3128"));
    }

    fn from(pairs: &[(&str, &[u8])]) -> Env {
        use std::os::unix::ffi::OsStringExt;
        let pairs: Vec<(String, OsString)> =
            pairs.iter().map(|(name, value)| (name.to_string(), OsString::from_vec(value.to_vec()))).collect();
        Env::from_vars(&|name| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn variables_are_read_as_curl_reads_them() {
        let env = from(&[("https_proxy", b"http://lower:1"), ("HTTPS_PROXY", b"http://upper:1")]);
        assert_eq!(env.https_proxy, Some(("https_proxy", "http://lower:1".into())), "lowercase wins");
        let env = from(&[("https_proxy", b"  "), ("HTTPS_PROXY", b"http://upper:1")]);
        assert_eq!(env.https_proxy, Some(("HTTPS_PROXY", "http://upper:1".into())), "a blank value is unset");
        let env = from(&[("HTTP_PROXY", b"http://cgi:1"), ("ALL_PROXY", b"http://all:1"), ("NO_PROXY", b"x")]);
        assert_eq!(env.http_proxy, None, "uppercase HTTP_PROXY is never read");
        assert_eq!(env.all_proxy, Some(("ALL_PROXY", "http://all:1".into())));
        assert_eq!(env.no_proxy.as_deref(), Some("x"));
        assert_eq!(for_text("http://dex.internal/token", &env).as_deref(), Some("http://all:1"));
        let env = from(&[("HTTPS_PROXY", b"http://upper:1"), ("no_proxy", b"dex"), ("NO_PROXY", b"other")]);
        assert_eq!(for_text("https://dex/token", &env), None, "lowercase no_proxy wins");
        assert!(env.checked().is_ok());
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_an_error_only_when_checked() {
        let env = from(&[("HTTPS_PROXY", b"http://proxy:1"), ("NO_PROXY", b"\xff")]);
        assert_eq!(env.not_utf8, Some("NO_PROXY"));
        let err = env.checked().unwrap_err();
        assert_eq!((err.exit_code(), err.to_string()), (2, "NO_PROXY is not valid UTF-8".into()));
        // The first one read is named, and a valid lowercase value hides the uppercase one.
        let env = from(&[("https_proxy", b"\xfe"), ("all_proxy", b"\xff")]);
        assert_eq!(env.checked().unwrap_err().to_string(), "https_proxy is not valid UTF-8");
        let env = from(&[("https_proxy", b"http://proxy:1"), ("HTTPS_PROXY", b"\xff")]);
        assert!(env.checked().is_ok());
    }

    #[test]
    fn masks_credentials() {
        assert_eq!(masked("http://user:pa@ss@proxy:3128"), "http://***@proxy:3128");
        assert_eq!(masked("http://token@proxy:3128"), "http://***@proxy:3128");
        assert_eq!(masked("http://proxy:3128"), "http://proxy:3128");
    }

    #[test]
    fn bad_proxy_urls_are_usage_errors_naming_the_variable() {
        let url = Url::parse("https://dex/token", false, "--oidc-endpoint").unwrap();
        for (value, why) in [
            ("proxy:notaport", "expected http://[USER:PASSWORD@]HOST[:PORT]"),
            ("http://proxy:99999", "expected http://[USER:PASSWORD@]HOST[:PORT]"),
            ("http://u:p@proxy:0", "expected http://[USER:PASSWORD@]HOST[:PORT]"),
            ("socks5://proxy:1080", "only http:// proxies"),
        ] {
            let env = Env { https_proxy: Some(("https_proxy", value.into())), ..Env::default() };
            let err = route(&url, &env).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().starts_with("invalid https_proxy '"), "{err}");
            assert!(err.to_string().contains(why), "{err}");
            assert!(!err.to_string().contains(":p@"), "{err}");
        }
    }

    #[test]
    fn entries_with_ports() {
        assert_eq!(split_port("dex:8443"), ("dex", Some(8443)));
        assert_eq!(split_port("[::1]:8443"), ("::1", Some(8443)));
        assert_eq!(split_port("::1/128"), ("::1/128", None));
        assert_eq!(split_port("fd00::"), ("fd00::", None));
        assert_eq!(split_port("10.0.0.0/8"), ("10.0.0.0/8", None));
    }
}
