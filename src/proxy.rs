//! Which HTTP proxy, if any, a request goes through: `HTTPS_PROXY` / `ALL_PROXY` and
//! `NO_PROXY` read the way curl reads them.
//!
//! ureq's own `NO_PROXY` handling skips CIDR ranges, ports and spaces after commas, so the
//! decision is made here and ureq is handed a proxy or none. Matching is on the host as
//! written in the URL; nothing is resolved.

use std::net::IpAddr;

/// The proxy variables of the process, captured once.
#[derive(Debug, Default, Clone)]
pub struct Env {
    pub https_proxy: Option<String>,
    pub http_proxy: Option<String>,
    pub all_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let var =
            |names: &[&str]| names.iter().find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
        Env {
            https_proxy: var(&["https_proxy", "HTTPS_PROXY"]),
            // curl reads only the lowercase form for http://, as uppercase HTTP_PROXY can
            // be set by a CGI client.
            http_proxy: var(&["http_proxy"]),
            all_proxy: var(&["all_proxy", "ALL_PROXY"]),
            no_proxy: var(&["no_proxy", "NO_PROXY"]),
        }
    }
}

/// The proxy URL (`http://[user:pass@]host:port`) for `url`, or `None` for a direct
/// connection. Plain `http://` to a loopback host is never proxied: it is allowed in clear
/// only because it stays on this machine.
pub fn for_url(url: &str, env: &Env) -> Option<String> {
    let target = crate::http::target(url)?;
    let host = target.host;
    let proxy = match target.scheme {
        "https" => env.https_proxy.as_ref().or(env.all_proxy.as_ref()),
        _ if crate::http::is_loopback(host) => None,
        _ => env.http_proxy.as_ref().or(env.all_proxy.as_ref()),
    };
    let Some(proxy) = proxy else {
        crate::verbose!("no proxy for {host}: no proxy variable applies");
        return None;
    };
    if let Some(entry) = env.no_proxy.as_deref().and_then(|list| bypass(list, host, target.port)) {
        crate::verbose!("no proxy for {host}: NO_PROXY entry '{entry}'");
        return None;
    }
    let proxy = if proxy.contains("://") { proxy.trim().to_string() } else { format!("http://{}", proxy.trim()) };
    crate::verbose!("using proxy {} for {host}", masked(&proxy));
    Some(proxy)
}

/// The `NO_PROXY` entry that sends `host:port` direct, if any.
pub fn bypass<'a>(list: &'a str, host: &str, port: u16) -> Option<&'a str> {
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

/// The proxy URL with its password replaced by `***`.
pub fn masked(proxy: &str) -> String {
    let Some((scheme, rest)) = proxy.split_once("://") else { return proxy.into() };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => proxy.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(no_proxy: &str) -> Env {
        Env { https_proxy: Some("proxy.corp:3128".into()), no_proxy: Some(no_proxy.into()), ..Env::default() }
    }

    #[test]
    fn no_proxy_forms() {
        let check = |list: &str, url: &str, direct: bool| {
            assert_eq!(for_url(url, &env(list)).is_none(), direct, "NO_PROXY={list:?} url={url}");
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
        let all = Env { all_proxy: Some("http://all:1".into()), ..Env::default() };
        assert_eq!(for_url("https://dex/token", &all).as_deref(), Some("http://all:1"));
        let https =
            Env { https_proxy: Some("http://h:1".into()), all_proxy: Some("http://all:1".into()), ..Env::default() };
        assert_eq!(for_url("https://dex/token", &https).as_deref(), Some("http://h:1"));
        assert_eq!(for_url("http://dex.internal/token", &https).as_deref(), Some("http://all:1"));
        assert_eq!(for_url("http://127.0.0.1/token", &https), None, "plain http to loopback stays local");
        assert_eq!(for_url("https://127.0.0.1/token", &https).as_deref(), Some("http://h:1"));
        assert_eq!(for_url("https://dex/token", &Env::default()), None);
        assert_eq!(for_url("https://dex/token", &env("")).as_deref(), Some("http://proxy.corp:3128"));
    }

    #[test]
    fn masks_credentials() {
        assert_eq!(masked("http://user:pa@ss@proxy:3128"), "http://user:***@proxy:3128");
        assert_eq!(masked("http://proxy:3128"), "http://proxy:3128");
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
