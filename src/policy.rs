//! The operator policy: a JSON file at the fixed path [`PATH`] (a ConfigMap mounted
//! read-only) that limits what the exec configuration may make a run do — where the
//! secrets go, which files are read, what trust is given up — and binds each credential
//! to the API server that will receive it (docs/policy.md).
//!
//! Nothing can name another path or turn the policy off: not a flag, a variable, the
//! cluster's exec config nor the working directory. The pure part is [`parse`] (bytes →
//! [`Policy`]) and [`check`] (policy and [`Facts`] → the rules that allowed the run, or
//! the refusal); [`enforce`] is the edge that reads the file without blocking and gathers
//! the facts from the validated [`Config`]. A check runs before any file is read, any
//! connection is made or the cache is looked at.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use miniserde::Deserialize;
use miniserde::de::{Map, Seq, Visitor};
use miniserde::json::{self, Object, Value};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::cli::{Config, Exchange};
use crate::error::Error;
use crate::exchange::{CROSS_CLIENT_SCOPE, Endpoint, Network};
use crate::exec_credential::{self, Destination};
use crate::fs::read_bounded;
use crate::proxy;
use crate::redact;
use crate::secret::ClientSecret;
use crate::tls::PemSource;
use crate::url::{Transport, Url, split_host_port};

/// Where the policy lives. A constant on purpose: see the module's documentation.
pub const PATH: &str = "/etc/tokenxchange/policy.json";

/// A policy larger than this is not one.
const MAX_POLICY_FILE: u64 = 1 << 20;

const KEYS: &str = "endpoints, issuers, clientIDs, files, insecure, inlineData, clusters";
const CLUSTER_KEYS: &str = "audiences, tokenFile, certificateAuthorityData";

/// The policy as written, validated. Absent lists allow nothing; absent switches are
/// `false`; absent `clusters` binds nothing.
#[derive(Debug, Default, PartialEq)]
pub struct Policy {
    /// Token endpoints a run may POST to, exact URLs.
    pub endpoints: Vec<String>,
    /// `--issuer` values, exact URLs.
    pub issuers: Vec<String>,
    pub client_ids: Vec<String>,
    /// Lexically normalised absolute paths; a directory ends with `/`.
    pub files: Vec<String>,
    pub insecure: bool,
    pub inline_data: bool,
    pub clusters: Option<Vec<Cluster>>,
}

/// What the policy binds to one API server.
#[derive(Debug, PartialEq)]
pub struct Cluster {
    /// The server as written in the policy.
    pub server: String,
    /// Its canonical form (see [`server_key`]).
    key: String,
    /// The exact set of audiences an exchange for this server must ask for; `None`:
    /// no exchange for it.
    pub audiences: Option<BTreeSet<String>>,
    /// The only token file `--direct` may print for it (normalised); `None`: no
    /// `--direct` for it.
    pub token_file: Option<String>,
    /// DER of the pinned CA certificates; `None`: no pin.
    pub pinned: Option<Vec<Vec<u8>>>,
}

/// What a run is about to do, as far as the policy cares. Values are as given; the
/// check normalises them.
#[derive(Debug, Default)]
pub struct Facts {
    /// Where the exchange goes: the setting that chose it, token endpoint or issuer.
    pub endpoint: Option<(&'static str, Endpoint)>,
    pub client_id: Option<String>,
    /// The requested audiences, those of cross-client scopes in `--scopes` included;
    /// `None` with `--direct`.
    pub audiences: Option<Vec<String>>,
    pub token_file: PathBuf,
    /// Every file the run may read, with the setting that names it.
    pub files: Vec<(&'static str, PathBuf)>,
    /// Directories whose files the run may read (`SSL_CERT_DIR`).
    pub dirs: Vec<(&'static str, PathBuf)>,
    /// Settings given as inline trust or key material.
    pub inline: Vec<&'static str>,
    /// Settings that give up TLS verification or allow plain HTTP.
    pub insecure: Vec<&'static str>,
    /// `spec.cluster` of `KUBERNETES_EXEC_INFO`, when client-go sent it.
    pub destination: Option<Destination>,
    /// The proxy variables (the exec config's `env` sets them too).
    pub proxies: proxy::Env,
}

/// A policy in force and what it allowed: the endpoints (for discovery) and one line per
/// rule that let this run through (for `-v` and `inspect`).
#[derive(Debug, PartialEq)]
pub struct Allowed {
    pub endpoints: Vec<String>,
    pub rules: Vec<String>,
}

/// Reads the policy at [`PATH`] and checks this run against it: `None` when there is no
/// policy, the rules that allowed the run, or the refusal.
/// `network` holds the trust and proxy variables: they choose files to read and where the
/// secrets travel, so the policy looks at them too.
pub fn enforce(config: &Config, network: &Network) -> Result<Option<Allowed>, Error> {
    let Some(policy) = load(Path::new(PATH))? else {
        verbose!("no operator policy at {PATH}");
        return Ok(None);
    };
    let facts = facts(config, network)?;
    let rules = check(&policy, &facts)?;
    for rule in &rules {
        verbose!("operator policy {PATH}: allowed by {rule}");
    }
    Ok(Some(Allowed { endpoints: policy.endpoints, rules }))
}

/// The exchange as it may run under `allowed`: a discovered or remembered token endpoint
/// must be one of the policy's endpoints too.
pub fn bound(exchange: &Exchange, allowed: Option<&Allowed>) -> Exchange {
    let mut exchange = exchange.clone();
    if let Some(allowed) = allowed {
        exchange.request.allowed_endpoints = Some(allowed.endpoints.clone());
    }
    exchange
}

/// The policy file at `path`: `None` when nothing is there. Opened without blocking (a
/// FIFO is refused at once), read only if it is a regular file; a symlink that leads
/// nowhere is an error, not an absence.
fn load(path: &Path) -> Result<Option<Policy>, Error> {
    let bad = |reason: String| Error::ConfigFile { what: "operator policy", path: path.into(), reason };
    match read_bounded(path, MAX_POLICY_FILE) {
        Ok(bytes) => parse(&bytes).map(Some).map_err(bad),
        Err(err) if err.kind() == io::ErrorKind::NotFound => match path.symlink_metadata() {
            Ok(_) => Err(bad("a symbolic link to nothing".into())),
            Err(_) => Ok(None),
        },
        Err(err) => Err(bad(err.to_string())),
    }
}

/// Parses the policy file's bytes; the error is the problem in words.
pub fn parse(bytes: &[u8]) -> Result<Policy, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    if let Ok(Repeated(Some(key))) = json::from_str::<Repeated>(text) {
        return Err(format!(
            "key '{}' appears twice in one object: which one counts depends on the reader",
            redact::echo(key.as_bytes(), 100)
        ));
    }
    let root = match json::from_str::<Value>(text) {
        Ok(Value::Object(root)) => root,
        Ok(_) => return Err("not a JSON object".into()),
        Err(_) => return Err("not valid JSON".into()),
    };
    let mut policy = Policy::default();
    for (key, value) in root.iter() {
        match key.as_str() {
            "endpoints" => policy.endpoints = strings(value, key)?,
            "issuers" => policy.issuers = strings(value, key)?,
            "clientIDs" => policy.client_ids = strings(value, key)?,
            "files" => {
                policy.files = strings(value, key)?.iter().map(|path| file_entry(path)).collect::<Result<_, _>>()?
            }
            "insecure" => policy.insecure = boolean(value, key)?,
            "inlineData" => policy.inline_data = boolean(value, key)?,
            "clusters" => policy.clusters = Some(clusters(value)?),
            _ => return Err(format!("unknown key '{}' (known keys: {KEYS})", redact::echo(key.as_bytes(), 100))),
        }
    }
    Ok(policy)
}

/// A JSON document read only for the first key that one object repeats. JSON readers
/// differ on which of two equal keys counts (miniserde keeps the last), so a policy with
/// one is refused rather than read one way.
struct Repeated(Option<String>);

impl Deserialize for Repeated {
    fn begin(out: &mut Option<Self>) -> &mut dyn Visitor {
        miniserde::make_place!(Place);

        impl Visitor for Place<Repeated> {
            fn null(&mut self) -> miniserde::Result<()> {
                self.out = Some(Repeated(None));
                Ok(())
            }

            fn boolean(&mut self, _: bool) -> miniserde::Result<()> {
                self.null()
            }

            fn string(&mut self, _: &str) -> miniserde::Result<()> {
                self.null()
            }

            fn negative(&mut self, _: i64) -> miniserde::Result<()> {
                self.null()
            }

            fn nonnegative(&mut self, _: u64) -> miniserde::Result<()> {
                self.null()
            }

            fn float(&mut self, _: f64) -> miniserde::Result<()> {
                self.null()
            }

            fn seq(&mut self) -> miniserde::Result<Box<dyn Seq + '_>> {
                Ok(Box::new(Within { out: &mut self.out, keys: BTreeSet::new(), found: None, item: None }))
            }

            fn map(&mut self) -> miniserde::Result<Box<dyn Map + '_>> {
                Ok(Box::new(Within { out: &mut self.out, keys: BTreeSet::new(), found: None, item: None }))
            }
        }

        /// An array or object being read: its keys so far, the first repeat found in it
        /// or below, and the value being read.
        struct Within<'a> {
            out: &'a mut Option<Repeated>,
            keys: BTreeSet<String>,
            found: Option<String>,
            item: Option<Repeated>,
        }

        impl Within<'_> {
            fn shift(&mut self) {
                if let Some(Repeated(Some(key))) = self.item.take() {
                    self.found.get_or_insert(key);
                }
            }

            fn done(&mut self) -> miniserde::Result<()> {
                self.shift();
                *self.out = Some(Repeated(self.found.take()));
                Ok(())
            }
        }

        impl Seq for Within<'_> {
            fn element(&mut self) -> miniserde::Result<&mut dyn Visitor> {
                self.shift();
                Ok(Deserialize::begin(&mut self.item))
            }

            fn finish(&mut self) -> miniserde::Result<()> {
                self.done()
            }
        }

        impl Map for Within<'_> {
            fn key(&mut self, key: &str) -> miniserde::Result<&mut dyn Visitor> {
                self.shift();
                if !self.keys.insert(key.to_owned()) {
                    self.found.get_or_insert_with(|| key.to_owned());
                }
                Ok(Deserialize::begin(&mut self.item))
            }

            fn finish(&mut self) -> miniserde::Result<()> {
                self.done()
            }
        }

        Place::new(out)
    }
}

fn strings(value: &Value, key: &str) -> Result<Vec<String>, String> {
    let bad = || format!("{key} must be a list of non-empty strings");
    let Value::Array(items) = value else { return Err(bad()) };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(bad()),
        })
        .collect()
}

fn boolean(value: &Value, key: &str) -> Result<bool, String> {
    match value {
        Value::Bool(on) => Ok(*on),
        _ => Err(format!("{key} must be true or false")),
    }
}

/// A `files` entry: an absolute path, normalised; a directory keeps its trailing `/`.
fn file_entry(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("files entry '{}' is not an absolute path", redact::echo(path.as_bytes(), 200)));
    }
    let normal = normalise(path);
    Ok(if path.ends_with('/') && normal != "/" { normal + "/" } else { normal })
}

fn clusters(value: &Value) -> Result<Vec<Cluster>, String> {
    let Value::Object(entries) = value else { return Err("clusters must be an object".into()) };
    let mut out: Vec<Cluster> = Vec::new();
    for (server, entry) in entries.iter() {
        let shown = redact::echo(server.as_bytes(), 200);
        let key = server_key(server).ok_or_else(|| {
            format!(
                "clusters key '{shown}' is not an API server URL (https://HOST[:PORT][/PATH], no query or dot segments)"
            )
        })?;
        if let Some(same) = out.iter().find(|c| c.key == key) {
            return Err(format!("clusters keys '{}' and '{shown}' name the same server", same.server));
        }
        let Value::Object(entry) = entry else { return Err(format!("clusters['{shown}'] must be an object")) };
        out.push(cluster(server, key, entry, &shown)?);
    }
    Ok(out)
}

fn cluster(server: &str, key: String, entry: &Object, shown: &str) -> Result<Cluster, String> {
    let mut cluster = Cluster { server: server.into(), key, audiences: None, token_file: None, pinned: None };
    for (name, value) in entry.iter() {
        let path = format!("clusters['{shown}'].{name}");
        match name.as_str() {
            "audiences" => {
                let list = strings(value, &path)?;
                if list.is_empty() {
                    return Err(format!("{path} is empty: a token without an audience would open every target"));
                }
                cluster.audiences = Some(list.into_iter().collect());
            }
            "tokenFile" => match value {
                Value::String(file) if file.starts_with('/') => cluster.token_file = Some(normalise(file)),
                _ => return Err(format!("{path} must be an absolute path")),
            },
            "certificateAuthorityData" => match value {
                Value::String(data) => {
                    let certs = certificates(data)
                        .ok_or_else(|| format!("{path} must be base64 of PEM certificates, as Argo CD's caData"))?;
                    cluster.pinned = Some(certs);
                }
                _ => return Err(format!("{path} must be a string")),
            },
            _ => {
                return Err(format!(
                    "unknown key '{}' in clusters['{shown}'] (known keys: {CLUSTER_KEYS})",
                    redact::echo(name.as_bytes(), 100)
                ));
            }
        }
    }
    Ok(cluster)
}

/// The DER certificates in base64 of PEM; `None` when it is not that or holds none.
fn certificates(base64_pem: &str) -> Option<Vec<Vec<u8>>> {
    let pem = STANDARD.decode(base64_pem.trim()).ok()?;
    let certs: Vec<Vec<u8>> =
        CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().ok()?.iter().map(|c| c.to_vec()).collect();
    (!certs.is_empty()).then_some(certs)
}

/// An API server URL in one canonical form, `scheme://host:port[/path]`: scheme and host
/// in lower case, the default port written out, one trailing `/` dropped. `None` for
/// anything that could be read two ways: user info, a query or fragment, `%` escapes,
/// backslashes, empty or dot path segments, a scheme other than http(s).
pub fn server_key(text: &str) -> Option<String> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '\\' | '?' | '#' | '@' | '%')) {
        return None;
    }
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = split_host_port(authority)?;
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
    if host.is_empty() || !host.chars().all(valid) || host.starts_with('.') {
        return None;
    }
    let host = host.to_ascii_lowercase();
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.split('/').skip(1).any(|segment| matches!(segment, "" | "." | "..")) {
        return None;
    }
    Some(format!("{scheme}://{host}:{}{path}", port.unwrap_or(default_port)))
}

/// `path` with `.`, `..` and repeated slashes resolved lexically (symbolic links are not
/// followed: the policy names paths as given). A relative path stays relative, so it
/// never matches an entry.
pub fn normalise(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if absolute => {
                parts.pop();
            }
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if absolute { format!("/{joined}") } else { joined }
}

/// The first symbolic link in `path` that a later `..` goes up out of, if any. The kernel
/// goes up from the link's target, so `dir/link/../x` opens `x` beside that target while
/// it reads, lexically, as `dir/x`. Without such a link both readings agree.
fn link_left_by_dot_dot(path: &Path) -> Option<PathBuf> {
    let mut walked = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if walked.symlink_metadata().is_ok_and(|meta| meta.file_type().is_symlink()) {
                    return Some(walked);
                }
                walked.pop();
            }
            other => walked.push(other),
        }
    }
    None
}

/// The entry of `files` that allows reading `path`, if any.
fn file_rule<'a>(policy: &'a Policy, path: &Path) -> Option<&'a str> {
    let path = normalise(&path.to_string_lossy());
    policy
        .files
        .iter()
        .find(|entry| if entry.ends_with('/') { path.starts_with(entry.as_str()) } else { **entry == path })
        .map(String::as_str)
}

/// Checks the run's `facts` against `policy`: the rules that allowed it, one line each,
/// or the first refusal.
pub fn check(policy: &Policy, facts: &Facts) -> Result<Vec<String>, Error> {
    let refuse = |text: String| Err(Error::Policy(text));
    let echo = |text: &str| redact::echo(text.as_bytes(), 200);
    let mut rules = Vec::new();

    for setting in &facts.insecure {
        if !policy.insecure {
            return refuse(format!("{setting} is not allowed (policy key insecure is not true)"));
        }
        rules.push(format!("insecure: true ({setting})"));
    }
    for setting in &facts.inline {
        if !policy.inline_data {
            return refuse(format!(
                "{setting} (inline data, not shown) is not allowed (policy key inlineData is not true; name a file instead)"
            ));
        }
        rules.push(format!("inlineData: true ({setting})"));
    }
    for (setting, path) in &facts.files {
        let shown = echo(&path.to_string_lossy());
        match file_rule(policy, path) {
            Some(entry) => rules.push(format!("files: {entry} ({setting} {shown})")),
            None => return refuse(format!("{setting} '{shown}' is not in the policy's files")),
        }
    }
    for (setting, dir) in &facts.dirs {
        let shown = echo(&dir.to_string_lossy());
        let inside = normalise(&dir.to_string_lossy()) + "/";
        let entry = policy.files.iter().find(|entry| entry.ends_with('/') && inside.starts_with(entry.as_str()));
        match entry {
            Some(entry) => rules.push(format!("files: {entry} ({setting} {shown})")),
            None => return refuse(format!("{setting} '{shown}' is not a directory in the policy's files")),
        }
    }
    if let Some((setting, endpoint)) = &facts.endpoint {
        let (key, list, url) = match endpoint {
            Endpoint::Token(url) => ("endpoints", &policy.endpoints, url),
            Endpoint::Issuer(url) => ("issuers", &policy.issuers, url),
        };
        if !list.iter().any(|allowed| allowed == url.as_str()) {
            return refuse(format!("{setting} '{}' is not in the policy's {key}", echo(url.as_str())));
        }
        rules.push(format!("{key}: {}", url.as_str()));
    }
    unproxied(policy, facts)?;
    if let Some(client_id) = &facts.client_id {
        if !policy.client_ids.contains(client_id) {
            return refuse(format!("--client-id '{}' is not in the policy's clientIDs", echo(client_id)));
        }
        rules.push(format!("clientIDs: {client_id}"));
    }
    match &policy.clusters {
        None => rules.push("clusters: none, so the credential is not bound to a destination".into()),
        Some(clusters) => rules.push(bind(clusters, facts)?),
    }
    Ok(rules)
}

/// With TLS verification given up, no request of the run may go through a proxy: the exec
/// config sets the proxy variables, and such a proxy reads the secrets. The requests are to
/// the token endpoint given, or to the issuer's discovery document and any endpoint of the
/// policy that it may name.
fn unproxied(policy: &Policy, facts: &Facts) -> Result<(), Error> {
    let (Some((_, endpoint)), false) = (&facts.endpoint, facts.insecure.is_empty()) else { return Ok(()) };
    let skip_verify = facts.insecure.contains(&"--insecure-skip-tls-verify");
    let allow_http = facts.insecure.contains(&"--allow-insecure-http");
    let urls: Vec<Url> = match endpoint {
        Endpoint::Token(url) => vec![url.clone()],
        Endpoint::Issuer(issuer) => std::iter::once(issuer.discovery())
            .chain(policy.endpoints.iter().filter_map(|e| Url::parse(e, allow_http, "endpoints").ok()))
            .collect(),
    };
    for url in urls {
        let setting = match url.transport() {
            Transport::Https if skip_verify => "--insecure-skip-tls-verify",
            Transport::InsecureHttp => "--allow-insecure-http",
            _ => continue,
        };
        let route = proxy::route(&url, &facts.proxies)?;
        if route.proxy.is_some() {
            let why = route.why;
            return Err(Error::Policy(format!(
                "{setting}: {} would go through the proxy {why}, which could read the secrets without TLS verification (policy key insecure allows no proxy; add the host to NO_PROXY)",
                redact::echo(url.as_str().as_bytes(), 200)
            )));
        }
    }
    Ok(())
}

/// Destination binding: the server client-go will send the credential to must be one of
/// `clusters`, with TLS verified, and the request must be what the policy binds to it.
fn bind(clusters: &[Cluster], facts: &Facts) -> Result<String, Error> {
    let refuse = |text: String| Err(Error::Policy(text));
    let echo = |text: &str| redact::echo(text.as_bytes(), 200);
    let Some(server) = facts.destination.as_ref().and_then(|d| d.server.as_deref()) else {
        return refuse(
            "KUBERNETES_EXEC_INFO carries no spec.cluster.server, and the policy binds credentials to clusters: set provideClusterInfo: true in the exec config (Argo CD 3.5 or later passes it)".into(),
        );
    };
    let destination = facts.destination.as_ref().expect("checked above");
    let Some(cluster) = server_key(server).and_then(|key| clusters.iter().find(|c| c.key == key)) else {
        return refuse(format!("the cluster's server '{}' is not in the policy's clusters", echo(server)));
    };
    let name = echo(&cluster.server);
    if destination.insecure_skip_tls_verify {
        return refuse(format!(
            "the cluster {name} sets insecure-skip-tls-verify: true; the policy's clusters never allow it"
        ));
    }
    // client-go verifies the server's certificate for tls-server-name when set: with a
    // proxy-url of its own, a Secret could have a certificate for another name the same CA
    // signs accepted, and the credential delivered to that server.
    let host = server.split_once("://").and_then(|(_, rest)| split_host_port(rest.split('/').next()?));
    if let Some(given) = &destination.tls_server_name
        && !host.is_some_and(|(host, _)| host.eq_ignore_ascii_case(given))
    {
        return refuse(format!(
            "the cluster {name} sets tls-server-name '{}', not its server's host {}; the policy's clusters allow no other name (with a proxy, another server could receive the credential)",
            echo(given),
            echo(host.map_or("", |(host, _)| host))
        ));
    }
    let mut rule = format!("clusters: {name}");
    match &facts.audiences {
        Some(asked) => {
            let asked_set: BTreeSet<String> = asked.iter().cloned().collect();
            let shown = if asked.is_empty() { "none".to_string() } else { echo(&asked.join(", ")) };
            match &cluster.audiences {
                None => {
                    return refuse(format!(
                        "an exchange for the cluster {name} (audience {shown}): the policy's clusters['{name}'] has no audiences"
                    ));
                }
                Some(bound) if *bound != asked_set => {
                    let bound: Vec<&str> = bound.iter().map(String::as_str).collect();
                    return refuse(format!(
                        "--audience {shown} for the cluster {name}: the policy's clusters['{name}'].audiences are exactly {}",
                        echo(&bound.join(", "))
                    ));
                }
                Some(_) => rule.push_str(&format!(" (audiences {shown})")),
            }
        }
        None => {
            let given = normalise(&facts.token_file.to_string_lossy());
            let shown = echo(&facts.token_file.to_string_lossy());
            match &cluster.token_file {
                Some(bound) if *bound == given => rule.push_str(&format!(" (tokenFile {shown})")),
                Some(bound) => {
                    return refuse(format!(
                        "--token-file '{shown}' for the cluster {name}: the policy's clusters['{name}'].tokenFile is {}",
                        echo(bound)
                    ));
                }
                None => {
                    return refuse(format!(
                        "--direct for the cluster {name}: the policy's clusters['{name}'] has no tokenFile"
                    ));
                }
            }
        }
    }
    if let Some(pinned) = &cluster.pinned {
        let given = destination.certificate_authority_data.as_deref().and_then(certificates);
        let Some(given) = given else {
            return refuse(format!(
                "the cluster {name} has no certificate-authority-data, and the policy's clusters['{name}'] pins its CA"
            ));
        };
        if given.iter().any(|cert| !pinned.contains(cert)) {
            return refuse(format!(
                "the certificate-authority-data of the cluster {name} holds a certificate that is not in the policy's clusters['{name}'].certificateAuthorityData"
            ));
        }
        rule.push_str(", CA pinned");
    } else {
        rule.push_str(", CA not pinned");
    }
    Ok(rule)
}

/// The facts of a run, from its validated configuration and the trust and proxy variables
/// (an empty trust variable names no file).
fn facts(config: &Config, network: &Network) -> Result<Facts, Error> {
    let mut facts = Facts {
        token_file: config.token_file.clone(),
        files: vec![("--token-file", config.token_file.clone())],
        destination: config.cluster.as_deref().map(exec_credential::destination).transpose()?,
        ..Facts::default()
    };
    let set = |value: &Option<OsString>| value.clone().filter(|value| !value.is_empty());
    if let Some(file) = set(&network.trust.ssl_cert_file) {
        facts.files.push(("SSL_CERT_FILE", file.into()));
    }
    if let Some(dirs) = set(&network.trust.ssl_cert_dir) {
        facts.dirs.extend(std::env::split_paths(&dirs).map(|dir| ("SSL_CERT_DIR", dir)));
    }
    let Some(exchange) = &config.exchange else {
        return no_dot_dot_out_of_links(facts);
    };
    let request = &exchange.request;
    facts.proxies = network.proxies.checked()?.clone();
    facts.endpoint = Some((exchange.endpoint_source, request.endpoint.clone()));
    facts.client_id = Some(request.client_id.clone());
    // A cross-client scope given with --scopes asks Dex for an audience too.
    let mut audiences = request.audiences.clone();
    for peer in request.scopes.iter().filter_map(|scope| scope.strip_prefix(CROSS_CLIENT_SCOPE)) {
        if !audiences.iter().any(|a| a == peer) {
            audiences.push(peer.to_string());
        }
    }
    facts.audiences = Some(audiences);
    if let ClientSecret::File(path) = &exchange.client_secret {
        facts.files.push(("--client-secret-file", path.clone()));
    }
    let tls = &exchange.tls;
    facts.files.extend(tls.ca_files.iter().map(|path| ("--certificate-authority", path.clone())));
    if !tls.ca_data.is_empty() {
        facts.inline.push("--certificate-authority-data");
    }
    for (source, file, data) in [
        (&tls.client_certificate, "--client-certificate", "--client-certificate-data"),
        (&tls.client_key, "--client-key", "--client-key-data"),
    ] {
        match source {
            Some(PemSource::File(path)) => facts.files.push((file, path.clone())),
            Some(PemSource::Data(_)) => facts.inline.push(data),
            None => {}
        }
    }
    if tls.insecure_skip_verify {
        facts.insecure.push("--insecure-skip-tls-verify");
    }
    if request.allow_insecure_http {
        facts.insecure.push("--allow-insecure-http");
    }
    no_dot_dot_out_of_links(facts)
}

/// `facts`, unless one of its paths goes up out of a symbolic link: lexical resolution
/// (which the check uses) and the kernel would then name different files.
fn no_dot_dot_out_of_links(facts: Facts) -> Result<Facts, Error> {
    for (setting, path) in facts.files.iter().chain(&facts.dirs) {
        if let Some(link) = link_left_by_dot_dot(path) {
            return Err(Error::Policy(format!(
                "{setting} '{}' goes up ('..') out of the symbolic link {}, so the file opened is not the one the path reads as; write it without '..'",
                redact::echo(path.to_string_lossy().as_bytes(), 200),
                redact::echo(link.to_string_lossy().as_bytes(), 200)
            )));
        }
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls;
    use crate::url::Url;

    const CA_A: &str = "MIIBcert-a";

    fn pem_b64(ders: &[&[u8]]) -> String {
        let pem: String = ders
            .iter()
            .map(|der| format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", STANDARD.encode(der)))
            .collect();
        STANDARD.encode(pem)
    }

    fn policy(text: &str) -> Policy {
        parse(text.as_bytes()).unwrap_or_else(|why| panic!("{why}: {text}"))
    }

    fn exchange_facts(endpoint: &str, audiences: &[&str], server: Option<&str>) -> Facts {
        Facts {
            endpoint: Some(("--oidc-endpoint", Endpoint::Token(Url::parse(endpoint, false, "t").unwrap()))),
            client_id: Some("argocd".into()),
            audiences: Some(audiences.iter().map(|a| a.to_string()).collect()),
            token_file: "/var/run/secrets/tokenxchange/token".into(),
            files: vec![
                ("--token-file", "/var/run/secrets/tokenxchange/token".into()),
                ("--client-secret-file", "/var/run/secrets/tokenxchange/client-secret".into()),
            ],
            destination: server.map(|server| Destination {
                server: Some(server.into()),
                insecure_skip_tls_verify: false,
                certificate_authority_data: None,
                tls_server_name: None,
            }),
            ..Facts::default()
        }
    }

    /// The get-token configuration of `args`, parsed with an empty environment.
    fn config(args: &[&str]) -> Config {
        match crate::cli::parse(args.iter().map(OsString::from), &|_| None) {
            Ok(crate::cli::Command::GetToken(config)) => *config,
            other => panic!("expected get-token, got {other:?}"),
        }
    }

    #[test]
    fn facts_take_the_trust_and_proxy_variables_from_the_network() {
        let exchange = config(&["--oidc-endpoint=https://dex.example.com/token", "--client-id", "argocd"]);
        let network = Network {
            trust: tls::SystemTrust {
                ssl_cert_file: Some("/ca/bundle.pem".into()),
                ssl_cert_dir: Some("/a:/b".into()),
            },
            proxies: proxy::Env {
                https_proxy: Some(("HTTPS_PROXY", "http://proxy:3128".into())),
                ..Default::default()
            },
        };
        let found = facts(&exchange, &network).unwrap();
        assert!(found.files.contains(&("SSL_CERT_FILE", "/ca/bundle.pem".into())), "{:?}", found.files);
        assert_eq!(found.dirs, [("SSL_CERT_DIR", "/a".into()), ("SSL_CERT_DIR", "/b".into())]);
        assert_eq!(found.proxies.https_proxy, network.proxies.https_proxy);

        // An empty trust variable names no file to check.
        let empty = Network {
            trust: tls::SystemTrust { ssl_cert_file: Some("".into()), ssl_cert_dir: Some("".into()) },
            ..Network::default()
        };
        let found = facts(&exchange, &empty).unwrap();
        assert!(found.files.iter().all(|(setting, _)| *setting != "SSL_CERT_FILE"), "{:?}", found.files);
        assert!(found.dirs.is_empty());

        // A proxy variable that is not UTF-8 refuses an exchange, and is no matter to --direct.
        let not_utf8 =
            Network { proxies: proxy::Env { not_utf8: Some("no_proxy"), ..Default::default() }, ..Network::default() };
        let err = facts(&exchange, &not_utf8).unwrap_err();
        assert_eq!((err.exit_code(), err.to_string()), (2, "no_proxy is not valid UTF-8".into()));
        assert!(facts(&config(&["--direct"]), &not_utf8).is_ok());
    }

    const EXAMPLE: &str = r#"{
        "endpoints": ["https://dex.example.com/token"],
        "issuers": ["https://dex.example.com"],
        "clientIDs": ["argocd"],
        "files": ["/var/run/secrets/tokenxchange/", "/etc/ssl/certs/ca-certificates.crt"],
        "clusters": {
            "https://prod-eu.example.com:6443": {"audiences": ["prod-eu"]},
            "https://Prod-US.example.com": {"audiences": ["prod-us"], "tokenFile": "/var/run/secrets/tokenxchange/prod-us/token"}
        }
    }"#;

    fn refusal(policy: &Policy, facts: &Facts) -> String {
        match check(policy, facts) {
            Ok(rules) => panic!("expected a refusal, allowed by {rules:?}"),
            Err(err) => {
                assert_eq!(err.exit_code(), 2);
                err.to_string()
                    .strip_prefix("refused by the operator policy /etc/tokenxchange/policy.json: ")
                    .unwrap()
                    .to_string()
            }
        }
    }

    #[test]
    fn parses_every_key_and_refuses_what_it_does_not_know() {
        let parsed = policy(EXAMPLE);
        assert_eq!(parsed.endpoints, ["https://dex.example.com/token"]);
        assert_eq!(parsed.files, ["/var/run/secrets/tokenxchange/", "/etc/ssl/certs/ca-certificates.crt"]);
        assert!(!parsed.insecure && !parsed.inline_data);
        let clusters = parsed.clusters.unwrap();
        assert_eq!(clusters[0].key, "https://prod-us.example.com:443");
        assert_eq!(clusters[0].token_file.as_deref(), Some("/var/run/secrets/tokenxchange/prod-us/token"));
        assert_eq!(policy("{}"), Policy::default());
        assert!(policy(r#"{"insecure":true,"inlineData":true}"#).insecure);

        let check = |text: &str, expected: &str| assert_eq!(parse(text.as_bytes()).unwrap_err(), expected, "{text}");
        check("{", "not valid JSON");
        check("[]", "not a JSON object");
        check(
            r#"{"endpoint":["x"]}"#,
            "unknown key 'endpoint' (known keys: endpoints, issuers, clientIDs, files, insecure, inlineData, clusters)",
        );
        check(r#"{"insecure":"yes"}"#, "insecure must be true or false");
        check(r#"{"clientIDs":"argocd"}"#, "clientIDs must be a list of non-empty strings");
        check(r#"{"files":["relative/x"]}"#, "files entry 'relative/x' is not an absolute path");
        check(
            r#"{"clusters":{"https://a":{"audience":["x"]}}}"#,
            "unknown key 'audience' in clusters['https://a'] (known keys: audiences, tokenFile, certificateAuthorityData)",
        );
        check(
            r#"{"clusters":{"https://a":{"audiences":[]}}}"#,
            "clusters['https://a'].audiences is empty: a token without an audience would open every target",
        );
        check(
            r#"{"clusters":{"https://a":{},"https://A:443/":{}}}"#,
            "clusters keys 'https://A:443/' and 'https://a' name the same server",
        );
        check(
            r#"{"clusters":{"https://a/x/../y":{}}}"#,
            "clusters key 'https://a/x/../y' is not an API server URL (https://HOST[:PORT][/PATH], no query or dot segments)",
        );
        check(
            r#"{"clusters":{"https://a":{"certificateAuthorityData":"bm90IHBlbQ=="}}}"#,
            "clusters['https://a'].certificateAuthorityData must be base64 of PEM certificates, as Argo CD's caData",
        );
        assert_eq!(parse(b"\xff"), Err("not UTF-8".into()));
        // JSON readers differ on which of two equal keys counts (miniserde keeps the last,
        // a reviewer or a linter may read the first): such a file is not one policy.
        check(
            r#"{"insecure":false,"files":["/"],"insecure":true}"#,
            "key 'insecure' appears twice in one object: which one counts depends on the reader",
        );
        check(
            r#"{"clusters":{"https://a":{"audiences":["a"],"audiences":["b"]}}}"#,
            "key 'audiences' appears twice in one object: which one counts depends on the reader",
        );
        check(
            r#"{"clusters":{"https://a":{"audiences":["a"]},"https://a":{"audiences":["b"]}}}"#,
            "key 'https://a' appears twice in one object: which one counts depends on the reader",
        );
        check(
            r#"{"\u0069nsecure":true,"insecure":false}"#,
            "key 'insecure' appears twice in one object: which one counts depends on the reader",
        );
        assert!(
            parse(br#"{"files":["/a","/a"],"clusters":{"https://a":{},"https://b":{}}}"#).is_ok(),
            "equal values in a list are no keys"
        );
    }

    #[test]
    fn servers_match_as_urls() {
        let key = |text: &str| server_key(text);
        assert_eq!(key("https://API.Example.com").as_deref(), Some("https://api.example.com:443"));
        assert_eq!(key("HTTPS://api.example.com:443/").as_deref(), Some("https://api.example.com:443"));
        assert_eq!(
            key("https://api.example.com:6443/k8s/c-1").as_deref(),
            Some("https://api.example.com:6443/k8s/c-1")
        );
        assert_eq!(key("http://127.0.0.1").as_deref(), Some("http://127.0.0.1:80"));
        assert_eq!(key("https://[FD00::1]:6443").as_deref(), Some("https://[fd00::1]:6443"));
        for bad in [
            "https://api.example.com/a/../b",
            "https://api.example.com//x",
            "https://api.example.com/./x",
            "https://api.example.com/%2e%2e",
            "https://user@api.example.com",
            "https://api.example.com?x",
            "https://api.example.com#x",
            "https://api.example.com\\@evil",
            "ftp://api.example.com",
            "https://",
            "api.example.com",
            "https://api.example.com:0",
            "https://api.example.com:+6443",
        ] {
            assert_eq!(key(bad), None, "{bad}");
        }
        assert_ne!(key("https://api.example.com:6443"), key("https://api.example.com"));
        assert_ne!(key("https://api.example.com/x"), key("https://api.example.com/y"));
    }

    #[test]
    fn paths_are_normalised_lexically() {
        assert_eq!(normalise("/var//run/./secrets/../secrets/x"), "/var/run/secrets/x");
        assert_eq!(normalise("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalise("a/../../b"), "../b");
        let parsed = policy(r#"{"files":["/var/run/secrets/tokenxchange/","/etc/ca.pem"]}"#);
        let allowed = |path: &str| file_rule(&parsed, Path::new(path)).is_some();
        assert!(allowed("/var/run/secrets/tokenxchange/token"));
        assert!(allowed("/var/run/secrets//tokenxchange/./sub/token"));
        assert!(allowed("/etc/ca.pem") && allowed("/etc/./ca.pem"));
        assert!(!allowed("/var/run/secrets/tokenxchange/../kubernetes.io/serviceaccount/token"));
        assert!(!allowed("/var/run/secrets/tokenxchange"));
        assert!(!allowed("/var/run/secrets/tokenxchange-other/token"));
        assert!(!allowed("/proc/self/environ"));
        assert!(!allowed("var/run/secrets/tokenxchange/token"));
        assert!(!allowed("/etc/ca.pem/x"));
    }

    #[test]
    fn a_dot_dot_out_of_a_symbolic_link_is_found() {
        // dir/link/../x reads as dir/x, but the kernel goes up from link's target
        let temp = testkit::TempDir::new("policy-links");
        let (allowed, elsewhere) = (temp.join("allowed"), temp.join("elsewhere/deep"));
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, allowed.join("link")).unwrap();
        std::fs::create_dir(allowed.join("real")).unwrap();
        let found = |path: &str| link_left_by_dot_dot(&allowed.join(path));
        assert_eq!(found("link/../token"), Some(allowed.join("link")));
        assert_eq!(found("real/../link/./x/../../token"), Some(allowed.join("link")));
        assert_eq!(found("real/../link/../token"), Some(allowed.join("link")));
        assert_eq!(found("real/../token"), None);
        assert_eq!(found("link/token"), None, "no '..', nothing to tell apart");
        assert_eq!(found("missing/../token"), None);
    }

    #[test]
    fn each_key_refuses_a_changed_value() {
        let parsed = policy(EXAMPLE);
        let good =
            || exchange_facts("https://dex.example.com/token", &["prod-eu"], Some("https://prod-eu.example.com:6443"));
        assert_eq!(
            check(&parsed, &good()).unwrap(),
            [
                "files: /var/run/secrets/tokenxchange/ (--token-file /var/run/secrets/tokenxchange/token)",
                "files: /var/run/secrets/tokenxchange/ (--client-secret-file /var/run/secrets/tokenxchange/client-secret)",
                "endpoints: https://dex.example.com/token",
                "clientIDs: argocd",
                "clusters: https://prod-eu.example.com:6443 (audiences prod-eu), CA not pinned",
            ]
        );

        let mut facts = good();
        facts.endpoint =
            Some(("--oidc-endpoint", Endpoint::Token(Url::parse("https://attacker/token", false, "t").unwrap())));
        assert_eq!(
            refusal(&parsed, &facts),
            "--oidc-endpoint 'https://attacker/token' is not in the policy's endpoints"
        );
        facts.endpoint = Some(("--issuer", Endpoint::Issuer(Url::parse("https://attacker", false, "t").unwrap())));
        assert_eq!(refusal(&parsed, &facts), "--issuer 'https://attacker' is not in the policy's issuers");
        facts.endpoint =
            Some(("--issuer", Endpoint::Issuer(Url::parse("https://dex.example.com", false, "t").unwrap())));
        assert!(check(&parsed, &facts).unwrap().contains(&"issuers: https://dex.example.com".to_string()));

        let mut facts = good();
        facts.client_id = Some("other".into());
        assert_eq!(refusal(&parsed, &facts), "--client-id 'other' is not in the policy's clientIDs");

        let mut facts = good();
        facts.files[0] = ("--token-file", "/proc/self/environ".into());
        assert_eq!(refusal(&parsed, &facts), "--token-file '/proc/self/environ' is not in the policy's files");
        let mut facts = good();
        facts.files.push(("SSL_CERT_FILE", "/tmp/evil-ca.pem".into()));
        assert_eq!(refusal(&parsed, &facts), "SSL_CERT_FILE '/tmp/evil-ca.pem' is not in the policy's files");
        let mut facts = good();
        facts.dirs.push(("SSL_CERT_DIR", "/tmp/certs".into()));
        assert_eq!(refusal(&parsed, &facts), "SSL_CERT_DIR '/tmp/certs' is not a directory in the policy's files");
        facts.dirs[0].1 = "/var/run/secrets/tokenxchange/certs".into();
        assert!(check(&parsed, &facts).is_ok());

        let mut facts = good();
        facts.insecure.push("--insecure-skip-tls-verify");
        assert_eq!(
            refusal(&parsed, &facts),
            "--insecure-skip-tls-verify is not allowed (policy key insecure is not true)"
        );
        let mut facts = good();
        facts.inline.push("--client-key-data");
        assert_eq!(
            refusal(&parsed, &facts),
            "--client-key-data (inline data, not shown) is not allowed (policy key inlineData is not true; name a file instead)"
        );
        let open = policy(
            r#"{"insecure":true,"inlineData":true,"endpoints":["https://dex.example.com/token"],"clientIDs":["argocd"],"files":["/"]}"#,
        );
        let mut facts = good();
        facts.insecure.push("--allow-insecure-http");
        facts.inline.push("--certificate-authority-data");
        let rules = check(&open, &facts).unwrap();
        assert!(rules.contains(&"insecure: true (--allow-insecure-http)".to_string()), "{rules:?}");
        assert!(rules.contains(&"clusters: none, so the credential is not bound to a destination".to_string()));
    }

    #[test]
    fn insecure_never_goes_through_a_proxy() {
        // The exec config sets the proxy variables; without TLS verification the proxy
        // would read the client secret and the subject token.
        let open = policy(
            r#"{"insecure":true,"endpoints":["https://dex.example.com/token","http://dex.dex.svc:5556/token"],"issuers":["https://dex.example.com"],"clientIDs":["argocd"],"files":["/"]}"#,
        );
        let proxied = |var: &'static str| crate::proxy::Env {
            https_proxy: Some((var, "http://u:p@attacker:3128".into())),
            ..Default::default()
        };
        let mut facts = exchange_facts("https://dex.example.com/token", &[], None);
        facts.insecure.push("--insecure-skip-tls-verify");
        facts.proxies = proxied("HTTPS_PROXY");
        assert_eq!(
            refusal(&open, &facts),
            "--insecure-skip-tls-verify: https://dex.example.com/token would go through the proxy http://***@attacker:3128 from HTTPS_PROXY, which could read the secrets without TLS verification (policy key insecure allows no proxy; add the host to NO_PROXY)"
        );
        facts.proxies.no_proxy = Some("dex.example.com".into());
        assert!(check(&open, &facts).is_ok());
        // an issuer: its discovery document, and every endpoint it may name
        let mut facts = exchange_facts("https://dex.example.com/token", &[], None);
        facts.endpoint =
            Some(("--issuer", Endpoint::Issuer(Url::parse("https://dex.example.com", false, "t").unwrap())));
        facts.insecure.push("--insecure-skip-tls-verify");
        facts.proxies =
            crate::proxy::Env { all_proxy: Some(("ALL_PROXY", "http://attacker:3128".into())), ..Default::default() };
        assert!(refusal(&open, &facts).starts_with("--insecure-skip-tls-verify: https://dex.example.com/.well-known/openid-configuration would go through the proxy http://attacker:3128 from ALL_PROXY"));
        facts.proxies.no_proxy = Some("dex.example.com".into());
        assert!(check(&open, &facts).is_ok());
        // plain http through http_proxy; TLS verified through a proxy is fine
        let mut facts = exchange_facts("https://dex.example.com/token", &[], None);
        facts.endpoint =
            Some(("--oidc-endpoint", Endpoint::Token(Url::parse("http://dex.dex.svc:5556/token", true, "t").unwrap())));
        facts.insecure.push("--allow-insecure-http");
        facts.proxies =
            crate::proxy::Env { http_proxy: Some(("http_proxy", "http://attacker:3128".into())), ..Default::default() };
        assert!(refusal(&open, &facts).starts_with("--allow-insecure-http: http://dex.dex.svc:5556/token would go through the proxy http://attacker:3128 from http_proxy"));
        let mut facts = exchange_facts("https://dex.example.com/token", &[], None);
        facts.insecure.push("--allow-insecure-http");
        facts.proxies = proxied("HTTPS_PROXY");
        assert!(check(&open, &facts).is_ok(), "TLS is verified");
    }

    #[test]
    fn clusters_bind_the_destination() {
        let parsed = policy(EXAMPLE);
        let facts = |audiences: &[&str], server: Option<&str>| {
            exchange_facts("https://dex.example.com/token", audiences, server)
        };
        assert!(check(&parsed, &facts(&["prod-us"], Some("https://prod-us.example.com/"))).is_ok());
        assert_eq!(
            refusal(&parsed, &facts(&["prod-eu"], None)),
            "KUBERNETES_EXEC_INFO carries no spec.cluster.server, and the policy binds credentials to clusters: set provideClusterInfo: true in the exec config (Argo CD 3.5 or later passes it)"
        );
        assert_eq!(
            refusal(&parsed, &facts(&["prod-eu"], Some("https://attacker.example.com:6443"))),
            "the cluster's server 'https://attacker.example.com:6443' is not in the policy's clusters"
        );
        assert_eq!(
            refusal(&parsed, &facts(&["prod-eu"], Some("https://prod-eu.example.com:6443/../x"))),
            "the cluster's server 'https://prod-eu.example.com:6443/../x' is not in the policy's clusters"
        );
        assert_eq!(
            refusal(&parsed, &facts(&["prod-us"], Some("https://prod-eu.example.com:6443"))),
            "--audience prod-us for the cluster https://prod-eu.example.com:6443: the policy's clusters['https://prod-eu.example.com:6443'].audiences are exactly prod-eu"
        );
        assert!(
            refusal(&parsed, &facts(&[], Some("https://prod-eu.example.com:6443"))).starts_with("--audience none for")
        );
        assert!(
            refusal(&parsed, &facts(&["prod-eu", "prod-us"], Some("https://prod-eu.example.com:6443")))
                .starts_with("--audience prod-eu, prod-us for")
        );
        let mut insecure = facts(&["prod-eu"], Some("https://prod-eu.example.com:6443"));
        insecure.destination.as_mut().unwrap().insecure_skip_tls_verify = true;
        assert_eq!(
            refusal(&parsed, &insecure),
            "the cluster https://prod-eu.example.com:6443 sets insecure-skip-tls-verify: true; the policy's clusters never allow it"
        );

        // tls-server-name: with a proxy of its own (proxy-url), a Secret could have the
        // credential verified as another name the same CA signs, and so delivered there.
        let named = |name: &str, server: &str| {
            let mut facts = facts(&["prod-eu"], Some(server));
            facts.destination.as_mut().unwrap().tls_server_name = Some(name.into());
            facts
        };
        assert_eq!(
            refusal(&parsed, &named("attacker.example.net", "https://prod-eu.example.com:6443")),
            "the cluster https://prod-eu.example.com:6443 sets tls-server-name 'attacker.example.net', not its server's host prod-eu.example.com; the policy's clusters allow no other name (with a proxy, another server could receive the credential)"
        );
        assert!(check(&parsed, &named("PROD-EU.example.com", "https://prod-eu.example.com:6443")).is_ok());
        let mut v6 = policy(
            r#"{"endpoints":["https://dex.example.com/token"],"clientIDs":["argocd"],"files":["/var/run/secrets/tokenxchange/"],"clusters":{"https://[fd00::1]:6443":{"audiences":["prod-eu"]}}}"#,
        );
        assert!(check(&v6, &named("fd00::1", "https://[FD00::1]:6443")).is_ok());
        assert!(check(&v6, &named("prod-eu.example.com", "https://[fd00::1]:6443")).is_err());
        v6.clusters = None;
        assert!(check(&v6, &named("anything", "https://[fd00::1]:6443")).is_ok(), "nothing bound, nothing checked");

        // --direct: the token file bound to the server, and nothing else
        let direct = |file: &str, server: &str| Facts {
            token_file: file.into(),
            files: vec![("--token-file", file.into())],
            destination: Some(Destination { server: Some(server.into()), ..Destination::default() }),
            ..Facts::default()
        };
        let rules =
            check(&parsed, &direct("/var/run/secrets/tokenxchange/prod-us//token", "https://prod-us.example.com"))
                .unwrap();
        assert_eq!(
            rules.last().unwrap(),
            "clusters: https://Prod-US.example.com (tokenFile /var/run/secrets/tokenxchange/prod-us//token), CA not pinned"
        );
        assert_eq!(
            refusal(&parsed, &direct("/var/run/secrets/tokenxchange/token", "https://prod-us.example.com")),
            "--token-file '/var/run/secrets/tokenxchange/token' for the cluster https://Prod-US.example.com: the policy's clusters['https://Prod-US.example.com'].tokenFile is /var/run/secrets/tokenxchange/prod-us/token"
        );
        assert_eq!(
            refusal(&parsed, &direct("/var/run/secrets/tokenxchange/token", "https://prod-eu.example.com:6443")),
            "--direct for the cluster https://prod-eu.example.com:6443: the policy's clusters['https://prod-eu.example.com:6443'] has no tokenFile"
        );
        let exchange_for_direct_only = policy(
            r#"{"endpoints":["https://dex.example.com/token"],"clientIDs":["argocd"],"files":["/var/run/secrets/tokenxchange/"],"clusters":{"https://d":{"tokenFile":"/var/run/secrets/tokenxchange/token"}}}"#,
        );
        assert_eq!(
            refusal(&exchange_for_direct_only, &facts(&["d"], Some("https://d"))),
            "an exchange for the cluster https://d (audience d): the policy's clusters['https://d'] has no audiences"
        );
    }

    #[test]
    fn a_pinned_ca_admits_only_its_certificates() {
        let (a, b) = (CA_A.as_bytes(), b"MIIBcert-b".as_slice());
        let parsed = policy(&format!(
            r#"{{"endpoints":["https://dex.example.com/token"],"clientIDs":["argocd"],"files":["/var/run/secrets/tokenxchange/"],"clusters":{{"https://t":{{"audiences":["t"],"certificateAuthorityData":"{}"}}}}}}"#,
            pem_b64(&[a, b])
        ));
        let with_ca = |ca: Option<String>| {
            let mut facts = exchange_facts("https://dex.example.com/token", &["t"], Some("https://t"));
            facts.destination.as_mut().unwrap().certificate_authority_data = ca;
            facts
        };
        assert_eq!(
            check(&parsed, &with_ca(Some(pem_b64(&[b])))).unwrap().last().unwrap(),
            "clusters: https://t (audiences t), CA pinned"
        );
        assert!(check(&parsed, &with_ca(Some(pem_b64(&[a, b])))).is_ok());
        let foreign = "the certificate-authority-data of the cluster https://t holds a certificate that is not in the policy's clusters['https://t'].certificateAuthorityData";
        assert_eq!(refusal(&parsed, &with_ca(Some(pem_b64(&[b"MIIBevil"])))), foreign);
        assert_eq!(refusal(&parsed, &with_ca(Some(pem_b64(&[a, b"MIIBevil"])))), foreign);
        let missing = "the cluster https://t has no certificate-authority-data, and the policy's clusters['https://t'] pins its CA";
        assert_eq!(refusal(&parsed, &with_ca(None)), missing);
        assert_eq!(refusal(&parsed, &with_ca(Some("bm90IHBlbQ==".into()))), missing);
    }
}
