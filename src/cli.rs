//! The command line contract: flags, their environment variables, defaults and the
//! per-cluster settings from `KUBERNETES_EXEC_INFO`, turned into a validated [`Config`].
//!
//! Precedence, highest first: the cluster's `config` extension (per target cluster), a
//! flag, its `TOKENXCHANGE_*` variable, the default. Nothing here reads files or opens
//! sockets; the environment arrives as a lookup function so tests can fake it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::prelude::*;
use miniserde::json::Value;

use crate::error::Error;
use crate::exec_credential::{self, ExecInfo};
use crate::http;
use crate::token::Secret;

pub const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
pub const DEFAULT_SCOPES: &str = "openid,profile,federated:id";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_RETRIES: u32 = 2;
const TOKEN_TYPE_PREFIX: &str = "urn:ietf:params:oauth:token-type:";

/// What the user asked for.
#[derive(Debug)]
pub enum Command {
    GetToken(Box<Config>),
    Clean { cache_dir: PathBuf },
    Install { dir: PathBuf, force: bool },
    Help,
    Version,
}

/// Everything a `get-token` run needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: Endpoint,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub connector: Option<String>,
    /// Normalised: split on commas and spaces, empty entries and duplicates dropped.
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub token_file: PathBuf,
    /// Full URNs.
    pub subject_token_type: String,
    pub requested_token_type: String,
    pub tls: Tls,
    pub allow_insecure_http: bool,
    pub timeout: Duration,
    pub retries: u32,
    /// The ExecCredential apiVersion to print.
    pub api_version: &'static str,
    /// `spec.cluster` of `KUBERNETES_EXEC_INFO`, as canonical JSON (part of the cache key).
    pub cluster: Option<String>,
    /// `None`: the cache is off.
    pub cache_dir: Option<PathBuf>,
    pub force_refresh: bool,
    pub verbose: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// The token endpoint itself.
    Token(String),
    /// An issuer whose discovery document names the token endpoint.
    Issuer(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientSecret {
    Value(Secret),
    File(PathBuf),
}

/// Trust and identity for the TLS connection to the identity provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tls {
    /// When any CA is given, only these roots are trusted (as kubectl does).
    pub ca_files: Vec<PathBuf>,
    /// Base64 of PEM, as in a kubeconfig.
    pub ca_data: Vec<String>,
    pub client_certificate: Option<PemSource>,
    pub client_key: Option<PemSource>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PemSource {
    File(PathBuf),
    /// Base64 of PEM (a key is a secret, so both forms are held as one).
    Data(Secret),
}

pub const USAGE: &str = "\
tokenxchange: a client-go credential plugin that exchanges a Kubernetes ServiceAccount
token at Dex (OAuth 2.0 Token Exchange, RFC 8693) and prints an ExecCredential.

usage:
  tokenxchange [get-token] [OPTIONS]   print one ExecCredential on stdout
  tokenxchange clean [--cache-dir DIR] remove cached credentials
  tokenxchange install [--force] DIR   copy this binary to DIR/tokenxchange
  tokenxchange --help | --version

options (each also read from the variable in brackets; a flag wins over its variable):
  --oidc-endpoint URL           token endpoint, e.g. https://dex.example.com/token
                                (alias --token-endpoint) [TOKENXCHANGE_OIDC_ENDPOINT]
  --issuer URL                  discover the token endpoint from the issuer
                                [TOKENXCHANGE_ISSUER]
  --client-id ID                OAuth client (required) [TOKENXCHANGE_CLIENT_ID]
  --client-secret S             client secret; empty for public clients
                                [TOKENXCHANGE_CLIENT_SECRET]
  --client-secret-file PATH     read the client secret from a file
                                [TOKENXCHANGE_CLIENT_SECRET_FILE]
  --dex-connector ID            Dex connector_id (alias --connector-id)
                                [TOKENXCHANGE_DEX_CONNECTOR]
  --scopes LIST                 comma/space separated (default openid,profile,federated:id)
                                [TOKENXCHANGE_SCOPES]
  --audience AUD                RFC 8693 audience, repeatable [TOKENXCHANGE_AUDIENCE]
  --token-file PATH             subject token, re-read every run (default
                                /var/run/secrets/kubernetes.io/serviceaccount/token)
                                [TOKENXCHANGE_TOKEN_FILE]
  --subject-token-type T        id_token, access_token, jwt or a URN (default id_token)
                                [TOKENXCHANGE_SUBJECT_TOKEN_TYPE]
  --requested-token-type T      same forms (default id_token)
                                [TOKENXCHANGE_REQUESTED_TOKEN_TYPE]
  --certificate-authority PATH  trust only these PEM roots, repeatable
                                [TOKENXCHANGE_CERTIFICATE_AUTHORITY]
  --certificate-authority-data B64
                                base64 PEM roots [TOKENXCHANGE_CERTIFICATE_AUTHORITY_DATA]
  --client-certificate PATH, --client-key PATH
                                mTLS to the identity provider
                                [TOKENXCHANGE_CLIENT_CERTIFICATE, TOKENXCHANGE_CLIENT_KEY]
  --client-certificate-data B64, --client-key-data B64
                                the same as base64 PEM [..._DATA]
  --insecure-skip-tls-verify    do not verify the server certificate (last resort)
                                [TOKENXCHANGE_INSECURE_SKIP_TLS_VERIFY]
  --allow-insecure-http         allow http:// to non-loopback hosts (last resort)
                                [TOKENXCHANGE_ALLOW_INSECURE_HTTP]
  --timeout DURATION            bound on the whole run: 500ms, 15s, 2m (default 15s)
                                [TOKENXCHANGE_TIMEOUT]
  --retries N                   extra attempts on transient failures (default 2)
                                [TOKENXCHANGE_RETRIES]
  --cache-dir DIR               credential cache (default $KUBECACHEDIR/tokenxchange or
                                $HOME/.kube/cache/tokenxchange; empty: off)
                                [TOKENXCHANGE_CACHE_DIR]
  --no-cache                    do not read or write the cache [TOKENXCHANGE_NO_CACHE]
  --force-refresh               ignore a cached credential and replace it
                                [TOKENXCHANGE_FORCE_REFRESH]
  --api-version V               ExecCredential apiVersion when KUBERNETES_EXEC_INFO is
                                absent (default client.authentication.k8s.io/v1)
  -v, --verbose                 progress on stderr, never a token [TOKENXCHANGE_VERBOSE]
  -h, --help                    this text
  -V, --version                 the version

exit codes: 0 printed, 1 runtime failure, 2 usage or configuration, 3 subject token,
4 refused by the identity provider (4xx), 5 transient (network, proxy, TLS, timeout,
5xx, 429, 408)
";

/// Values as given on the command line, before defaults and validation.
#[derive(Default)]
struct Flags {
    oidc_endpoint: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_file: Option<PathBuf>,
    connector: Option<String>,
    scopes: Vec<String>,
    audiences: Vec<String>,
    token_file: Option<PathBuf>,
    subject_token_type: Option<String>,
    requested_token_type: Option<String>,
    ca_files: Vec<PathBuf>,
    ca_data: Vec<String>,
    client_certificate: Option<PathBuf>,
    client_key: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    insecure_skip_verify: bool,
    allow_insecure_http: bool,
    timeout: Option<String>,
    retries: Option<String>,
    api_version: Option<String>,
    cache_dir: Option<PathBuf>,
    no_cache: bool,
    force_refresh: bool,
    verbose: bool,
}

/// Parses the arguments (without the program name) against the environment `env`.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Command, Error> {
    let mut flags = Flags::default();
    let mut subcommand: Option<String> = None;
    let mut positionals: Vec<OsString> = Vec::new();
    let mut force = false;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Short('v') | Long("verbose") => flags.verbose = true,
            Long("oidc-endpoint") | Long("token-endpoint") => flags.oidc_endpoint = Some(string(&mut parser)?),
            Long("issuer") => flags.issuer = Some(string(&mut parser)?),
            Long("client-id") => flags.client_id = Some(string(&mut parser)?),
            Long("client-secret") => flags.client_secret = Some(string(&mut parser)?),
            Long("client-secret-file") => flags.client_secret_file = Some(path(&mut parser)?),
            Long("dex-connector") | Long("connector-id") => flags.connector = Some(string(&mut parser)?),
            Long("scopes") => flags.scopes.push(string(&mut parser)?),
            Long("audience") => flags.audiences.push(string(&mut parser)?),
            Long("token-file") => flags.token_file = Some(path(&mut parser)?),
            Long("subject-token-type") => flags.subject_token_type = Some(string(&mut parser)?),
            Long("requested-token-type") => flags.requested_token_type = Some(string(&mut parser)?),
            Long("certificate-authority") => flags.ca_files.push(path(&mut parser)?),
            Long("certificate-authority-data") => flags.ca_data.push(string(&mut parser)?),
            Long("client-certificate") => flags.client_certificate = Some(path(&mut parser)?),
            Long("client-key") => flags.client_key = Some(path(&mut parser)?),
            Long("client-certificate-data") => flags.client_certificate_data = Some(string(&mut parser)?),
            Long("client-key-data") => flags.client_key_data = Some(string(&mut parser)?),
            Long("insecure-skip-tls-verify") => flags.insecure_skip_verify = true,
            Long("allow-insecure-http") => flags.allow_insecure_http = true,
            Long("timeout") => flags.timeout = Some(string(&mut parser)?),
            Long("retries") => flags.retries = Some(string(&mut parser)?),
            Long("api-version") => flags.api_version = Some(string(&mut parser)?),
            Long("cache-dir") => flags.cache_dir = Some(path(&mut parser)?),
            Long("no-cache") => flags.no_cache = true,
            Long("force-refresh") => flags.force_refresh = true,
            Long("force") => force = true,
            Value(value) if subcommand.is_none() => {
                let name = value.into_string().map_err(|v| Error::Usage(format!("unknown command {v:?}")))?;
                match name.as_str() {
                    "get-token" | "clean" | "install" => subcommand = Some(name),
                    _ => return Err(Error::Usage(format!("unknown command '{name}' (see --help)"))),
                }
            }
            Value(value) => positionals.push(value),
            _ => return Err(usage(arg.unexpected())),
        }
    }

    if force && subcommand.as_deref() != Some("install") {
        return Err(Error::Usage("--force belongs to install (see --help)".into()));
    }
    match subcommand.as_deref() {
        Some("install") => {
            let [dir] = <[OsString; 1]>::try_from(positionals)
                .map_err(|_| Error::Usage("usage: tokenxchange install [--force] DIR".into()))?;
            Ok(Command::Install { dir: dir.into(), force })
        }
        Some("clean") => {
            no_positionals(&positionals, "clean")?;
            Ok(Command::Clean { cache_dir: cache_dir(&flags, env)? })
        }
        _ => {
            no_positionals(&positionals, "get-token")?;
            let info = match env("KUBERNETES_EXEC_INFO") {
                Some(raw) => Some(exec_credential::parse_info(&raw.to_string_lossy())?),
                None => None,
            };
            Ok(Command::GetToken(Box::new(config(flags, env, info)?)))
        }
    }
}

/// Resolves flags, environment, per-cluster settings and defaults into a [`Config`].
fn config(flags: Flags, env: &dyn Fn(&str) -> Option<OsString>, info: Option<ExecInfo>) -> Result<Config, Error> {
    let var = |name: &str| -> Option<String> {
        env(name).map(|v| v.to_string_lossy().into_owned()).filter(|v| !v.is_empty())
    };
    let flag_or_var = |flag: Option<String>, name: &str| flag.or_else(|| var(name));
    let bool_var = |flag: bool, name: &str| -> Result<bool, Error> {
        if flag {
            return Ok(true);
        }
        var(name).map_or(Ok(false), |v| parse_bool(&v, name))
    };
    let list_var = |flags: Vec<String>, name: &str| -> Vec<String> {
        if flags.is_empty() { var(name).into_iter().collect() } else { flags }
    };

    let info = info.unwrap_or_default();
    let cluster = cluster_settings(info.cluster_config.as_ref())?;
    let verbose = bool_var(flags.verbose, "TOKENXCHANGE_VERBOSE")?;
    let allow_insecure_http = bool_var(flags.allow_insecure_http, "TOKENXCHANGE_ALLOW_INSECURE_HTTP")?;

    // The token endpoint and the issuer replace each other: the highest layer that sets
    // either one decides.
    let endpoint = match one_of([
        (cluster.token_endpoint, cluster.issuer, "tokenEndpoint and issuer in the cluster's exec config"),
        (flags.oidc_endpoint, flags.issuer, "--oidc-endpoint and --issuer"),
        (
            var("TOKENXCHANGE_OIDC_ENDPOINT"),
            var("TOKENXCHANGE_ISSUER"),
            "TOKENXCHANGE_OIDC_ENDPOINT and TOKENXCHANGE_ISSUER",
        ),
    ])? {
        Some(OneOf::First(url)) => Endpoint::Token(url),
        Some(OneOf::Second(url)) => Endpoint::Issuer(url),
        None => {
            return Err(Error::Usage(
                "missing --oidc-endpoint (or --issuer, TOKENXCHANGE_OIDC_ENDPOINT, TOKENXCHANGE_ISSUER)".into(),
            ));
        }
    };
    match &endpoint {
        Endpoint::Token(url) => http::check_url(url, allow_insecure_http, "--oidc-endpoint")?,
        Endpoint::Issuer(url) => http::check_url(url, allow_insecure_http, "--issuer")?,
    }

    let client_id = cluster
        .client_id
        .or_else(|| flag_or_var(flags.client_id, "TOKENXCHANGE_CLIENT_ID"))
        .ok_or_else(|| Error::Usage("missing --client-id (or TOKENXCHANGE_CLIENT_ID)".into()))?;

    let client_secret = match one_of([
        (
            flags.client_secret,
            flags.client_secret_file.map(PathBuf::into_os_string),
            "--client-secret and --client-secret-file",
        ),
        (
            var("TOKENXCHANGE_CLIENT_SECRET"),
            env("TOKENXCHANGE_CLIENT_SECRET_FILE").filter(|v| !v.is_empty()),
            "TOKENXCHANGE_CLIENT_SECRET and TOKENXCHANGE_CLIENT_SECRET_FILE",
        ),
    ])? {
        Some(OneOf::First(secret)) => ClientSecret::Value(Secret::new(secret)),
        Some(OneOf::Second(path)) => ClientSecret::File(path.into()),
        None => ClientSecret::Value(Secret::new("")),
    };

    let connector = cluster.connector.or_else(|| flag_or_var(flags.connector, "TOKENXCHANGE_DEX_CONNECTOR"));
    let scopes = match cluster.scopes {
        Some(scopes) => scopes,
        None => {
            let given = list_var(flags.scopes, "TOKENXCHANGE_SCOPES");
            if given.is_empty() { vec![DEFAULT_SCOPES.to_string()] } else { given }
        }
    };
    let scopes = split_list(&scopes);
    let audiences = match cluster.audiences {
        Some(audiences) => audiences,
        None if flags.audiences.is_empty() => split_list(&var("TOKENXCHANGE_AUDIENCE").into_iter().collect::<Vec<_>>()),
        None => flags.audiences,
    };

    let token_file = flags
        .token_file
        .or_else(|| var("TOKENXCHANGE_TOKEN_FILE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_TOKEN_FILE));
    let subject_token_type = token_type(
        &flag_or_var(flags.subject_token_type, "TOKENXCHANGE_SUBJECT_TOKEN_TYPE").unwrap_or("id_token".into()),
        "--subject-token-type",
    )?;
    let requested_token_type = token_type(
        &flag_or_var(flags.requested_token_type, "TOKENXCHANGE_REQUESTED_TOKEN_TYPE").unwrap_or("id_token".into()),
        "--requested-token-type",
    )?;

    let ca_files = if flags.ca_files.is_empty() {
        split_list(&var("TOKENXCHANGE_CERTIFICATE_AUTHORITY").into_iter().collect::<Vec<_>>())
            .into_iter()
            .map(PathBuf::from)
            .collect()
    } else {
        flags.ca_files
    };
    let ca_data = list_var(flags.ca_data, "TOKENXCHANGE_CERTIFICATE_AUTHORITY_DATA");
    let client_certificate = pem_source(
        flags.client_certificate.or_else(|| var("TOKENXCHANGE_CLIENT_CERTIFICATE").map(PathBuf::from)),
        flag_or_var(flags.client_certificate_data, "TOKENXCHANGE_CLIENT_CERTIFICATE_DATA"),
        "--client-certificate",
    )?;
    let client_key = pem_source(
        flags.client_key.or_else(|| var("TOKENXCHANGE_CLIENT_KEY").map(PathBuf::from)),
        flag_or_var(flags.client_key_data, "TOKENXCHANGE_CLIENT_KEY_DATA"),
        "--client-key",
    )?;
    if client_certificate.is_some() != client_key.is_some() {
        return Err(Error::Usage("--client-certificate and --client-key go together; give both or neither".into()));
    }
    let tls = Tls {
        ca_files,
        ca_data,
        client_certificate,
        client_key,
        insecure_skip_verify: bool_var(flags.insecure_skip_verify, "TOKENXCHANGE_INSECURE_SKIP_TLS_VERIFY")?,
    };

    let timeout = match flag_or_var(flags.timeout, "TOKENXCHANGE_TIMEOUT") {
        Some(text) => {
            parse_duration(&text).map_err(|why| Error::Usage(format!("invalid --timeout '{text}': {why}")))?
        }
        None => DEFAULT_TIMEOUT,
    };
    let retries =
        match flag_or_var(flags.retries, "TOKENXCHANGE_RETRIES") {
            Some(text) => text.parse::<u32>().ok().filter(|n| *n <= 10).ok_or_else(|| {
                Error::Usage(format!("invalid --retries '{text}': expected a whole number from 0 to 10"))
            })?,
            None => DEFAULT_RETRIES,
        };

    let api_version = match (info.api_version, flags.api_version) {
        (Some(version), _) => version,
        (None, Some(text)) => exec_credential::api_version(&text).ok_or_else(|| {
            Error::Usage(format!("invalid --api-version '{text}': use {}", exec_credential::API_VERSIONS))
        })?,
        (None, None) => exec_credential::V1,
    };

    let cache_dir =
        if bool_var(flags.no_cache, "TOKENXCHANGE_NO_CACHE")? { None } else { cache_dir_from(flags.cache_dir, env) };

    Ok(Config {
        endpoint,
        client_id,
        client_secret,
        connector,
        scopes,
        audiences,
        token_file,
        subject_token_type,
        requested_token_type,
        tls,
        allow_insecure_http,
        timeout,
        retries,
        api_version,
        cluster: info.cluster_json,
        cache_dir,
        force_refresh: bool_var(flags.force_refresh, "TOKENXCHANGE_FORCE_REFRESH")?,
        verbose,
    })
}

enum OneOf<A, B> {
    First(A),
    Second(B),
}

/// Two settings that replace each other, in layers from highest to lowest: the highest
/// layer that sets either decides; setting both in one layer is a usage error.
fn one_of<A, B, const N: usize>(layers: [(Option<A>, Option<B>, &str); N]) -> Result<Option<OneOf<A, B>>, Error> {
    for (first, second, names) in layers {
        match (first, second) {
            (Some(_), Some(_)) => return Err(Error::Usage(format!("{names} exclude each other; keep one"))),
            (Some(first), None) => return Ok(Some(OneOf::First(first))),
            (None, Some(second)) => return Ok(Some(OneOf::Second(second))),
            (None, None) => {}
        }
    }
    Ok(None)
}

/// Settings that the kubeconfig cluster's `client.authentication.k8s.io/exec` extension
/// (arriving as `spec.cluster.config`) may set for one target cluster.
#[derive(Default)]
struct ClusterSettings {
    audiences: Option<Vec<String>>,
    connector: Option<String>,
    client_id: Option<String>,
    scopes: Option<Vec<String>>,
    token_endpoint: Option<String>,
    issuer: Option<String>,
}

pub const CLUSTER_KEYS: &str = "audience, connectorID, clientID, scopes, tokenEndpoint, issuer";

fn cluster_settings(config: Option<&miniserde::json::Object>) -> Result<ClusterSettings, Error> {
    let mut settings = ClusterSettings::default();
    let Some(config) = config else { return Ok(settings) };
    for (key, value) in config.iter() {
        let strings = || -> Result<Vec<String>, Error> {
            match value {
                Value::String(s) => Ok(vec![s.clone()]),
                Value::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(cluster_value_error(key)),
                    })
                    .collect(),
                _ => Err(cluster_value_error(key)),
            }
        };
        let string = || -> Result<String, Error> {
            match value {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                _ => Err(cluster_value_error(key)),
            }
        };
        match key.as_str() {
            "audience" => settings.audiences = Some(split_list(&strings()?)),
            "connectorID" => settings.connector = Some(string()?),
            "clientID" => settings.client_id = Some(string()?),
            "scopes" => settings.scopes = Some(strings()?),
            "tokenEndpoint" => settings.token_endpoint = Some(string()?),
            "issuer" => settings.issuer = Some(string()?),
            _ => {
                return Err(Error::Usage(format!(
                    "unknown key '{key}' in the cluster's exec config (spec.cluster.config); known keys: {CLUSTER_KEYS}"
                )));
            }
        }
    }
    Ok(settings)
}

fn cluster_value_error(key: &str) -> Error {
    Error::Usage(format!(
        "invalid value for '{key}' in the cluster's exec config (spec.cluster.config): expected a non-empty string"
    ))
}

fn cache_dir(flags: &Flags, env: &dyn Fn(&str) -> Option<OsString>) -> Result<PathBuf, Error> {
    cache_dir_from(flags.cache_dir.clone(), env)
        .ok_or_else(|| Error::Usage("no cache directory: set --cache-dir, KUBECACHEDIR or HOME".into()))
}

/// `--cache-dir`, else `TOKENXCHANGE_CACHE_DIR`, else `$KUBECACHEDIR/tokenxchange`, else
/// `$HOME/.kube/cache/tokenxchange`. An empty `--cache-dir` or variable turns the cache off.
fn cache_dir_from(flag: Option<PathBuf>, env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let chosen = match flag.or_else(|| env("TOKENXCHANGE_CACHE_DIR").map(PathBuf::from)) {
        Some(dir) => dir,
        None => {
            let non_empty = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
            if let Some(kube) = non_empty("KUBECACHEDIR") {
                kube.join("tokenxchange")
            } else {
                non_empty("HOME")?.join(".kube/cache/tokenxchange")
            }
        }
    };
    if chosen.as_os_str().is_empty() { None } else { Some(chosen) }
}

fn pem_source(file: Option<PathBuf>, data: Option<String>, flag: &str) -> Result<Option<PemSource>, Error> {
    match (file, data) {
        (Some(_), Some(_)) => Err(Error::Usage(format!("{flag} and {flag}-data exclude each other; keep one"))),
        (Some(path), None) => Ok(Some(PemSource::File(path))),
        (None, Some(data)) => Ok(Some(PemSource::Data(Secret::new(data)))),
        (None, None) => Ok(None),
    }
}

/// Splits values on commas and white space, dropping empty entries and repeats.
fn split_list(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in values.iter().flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace())) {
        if !item.is_empty() && !out.iter().any(|seen| seen == item) {
            out.push(item.to_string());
        }
    }
    out
}

/// `id_token`, `access_token`, `jwt` or a full `urn:` URN.
fn token_type(text: &str, flag: &str) -> Result<String, Error> {
    match text {
        "id_token" | "access_token" | "jwt" => Ok(format!("{TOKEN_TYPE_PREFIX}{text}")),
        urn if urn.starts_with("urn:") && urn.len() > 4 && !urn.contains(char::is_whitespace) => Ok(urn.to_string()),
        _ => Err(Error::Usage(format!("invalid {flag} '{text}': use id_token, access_token, jwt or a full urn: URN"))),
    }
}

/// `500ms`, `15s`, `2m`, `1h`, `1m30s`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return checked_positive(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err("empty".into());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err("expected a number followed by ms, s, m or h".into());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| "number too large".to_string())?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let millis = match &rest[..unit] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => return Err("missing unit (ms, s, m or h)".into()),
            other => return Err(format!("unknown unit '{other}' (use ms, s, m or h)")),
        };
        rest = &rest[unit..];
        let part = number.checked_mul(millis).ok_or_else(|| "number too large".to_string())?;
        total = total.checked_add(Duration::from_millis(part)).ok_or_else(|| "number too large".to_string())?;
    }
    checked_positive(total)
}

fn checked_positive(duration: Duration) -> Result<Duration, String> {
    if duration.is_zero() {
        Err("must be more than zero".into())
    } else if duration > Duration::from_secs(3600) {
        Err("must be at most 1h".into())
    } else {
        Ok(duration)
    }
}

fn parse_bool(value: &str, name: &str) -> Result<bool, Error> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::Usage(format!("invalid {name} '{value}': use 1/true or 0/false"))),
    }
}

/// The option's value as text. A value that is not UTF-8 is refused without echoing it:
/// it may be a secret.
fn string(parser: &mut lexopt::Parser) -> Result<String, Error> {
    parser.value().map_err(usage)?.into_string().map_err(|_| Error::Usage("an option value is not valid UTF-8".into()))
}

fn path(parser: &mut lexopt::Parser) -> Result<PathBuf, Error> {
    Ok(parser.value().map_err(usage)?.into())
}

fn no_positionals(positionals: &[OsString], command: &str) -> Result<(), Error> {
    match positionals.first() {
        None => Ok(()),
        Some(extra) => Err(Error::Usage(format!("unexpected argument {extra:?} for {command} (see --help)"))),
    }
}

fn usage(err: lexopt::Error) -> Error {
    Error::Usage(format!("{err} (see --help)"))
}

/// A `Config` from the standard test endpoint and client plus `extra` flags, for the unit
/// tests of the modules that take a `Config`.
#[cfg(test)]
pub fn config_for_tests(extra: &[&str]) -> Config {
    let mut args = vec!["--oidc-endpoint=https://dex/token", "--client-id=argocd", "--no-cache"];
    args.extend(extra);
    match parse(args.into_iter().map(OsString::from), &|_| None) {
        Ok(Command::GetToken(config)) => *config,
        other => panic!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Command, Error> {
        let env: HashMap<String, OsString> = env.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        parse(args.iter().map(OsString::from), &|name| env.get(name).cloned())
    }

    fn config_of(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse_with(args, env) {
            Ok(Command::GetToken(config)) => *config,
            other => panic!("expected get-token, got {other:?}"),
        }
    }

    fn usage_error(args: &[&str], env: &[(&str, &str)]) -> String {
        match parse_with(args, env) {
            Err(err) => {
                assert_eq!(err.exit_code(), 2, "{err}");
                err.to_string()
            }
            Ok(other) => panic!("expected a usage error, got {other:?}"),
        }
    }

    const BASE: [&str; 4] = ["--oidc-endpoint=https://dex.example.com/token", "--client-id", "argocd", "--no-cache"];

    #[test]
    fn defaults_follow_the_contract() {
        let config = config_of(&BASE, &[]);
        assert_eq!(config.endpoint, Endpoint::Token("https://dex.example.com/token".into()));
        assert_eq!(config.client_secret, ClientSecret::Value(Secret::new("")));
        assert_eq!(config.scopes, ["openid", "profile", "federated:id"]);
        assert_eq!(config.token_file, PathBuf::from(DEFAULT_TOKEN_FILE));
        assert_eq!(config.subject_token_type, "urn:ietf:params:oauth:token-type:id_token");
        assert_eq!(config.requested_token_type, "urn:ietf:params:oauth:token-type:id_token");
        assert_eq!(config.timeout, Duration::from_secs(15));
        assert_eq!(config.retries, 2);
        assert_eq!(config.api_version, "client.authentication.k8s.io/v1");
        assert_eq!(config.connector, None);
        assert!(config.audiences.is_empty() && !config.verbose && config.cache_dir.is_none());
    }

    #[test]
    fn old_tool_flags_and_aliases_are_accepted() {
        let config = config_of(
            &[
                "get-token",
                "--token-endpoint",
                "https://dex/token",
                "--client-id=argocd",
                "--client-secret",
                "s",
                "--connector-id",
                "k8s",
                "--scopes",
                "openid,email",
                "--scopes",
                "groups",
                "--token-file",
                "/t",
                "--no-cache",
            ],
            &[],
        );
        assert_eq!(config.endpoint, Endpoint::Token("https://dex/token".into()));
        assert_eq!(config.connector.as_deref(), Some("k8s"));
        assert_eq!(config.scopes, ["openid", "email", "groups"]);
        assert_eq!(config.token_file, PathBuf::from("/t"));
        assert_eq!(config.client_secret, ClientSecret::Value(Secret::new("s")));
    }

    #[test]
    fn flags_win_over_environment() {
        let env = [
            ("TOKENXCHANGE_OIDC_ENDPOINT", "https://env/token"),
            ("TOKENXCHANGE_CLIENT_ID", "env-client"),
            ("TOKENXCHANGE_SCOPES", "openid groups"),
            ("TOKENXCHANGE_DEX_CONNECTOR", "env-conn"),
            ("TOKENXCHANGE_TIMEOUT", "2m"),
            ("TOKENXCHANGE_AUDIENCE", "a, b"),
            ("TOKENXCHANGE_VERBOSE", "1"),
            ("TOKENXCHANGE_NO_CACHE", "true"),
        ];
        let from_env = config_of(&[], &env);
        assert_eq!(from_env.endpoint, Endpoint::Token("https://env/token".into()));
        assert_eq!(from_env.client_id, "env-client");
        assert_eq!(from_env.scopes, ["openid", "groups"]);
        assert_eq!(from_env.connector.as_deref(), Some("env-conn"));
        assert_eq!(from_env.timeout, Duration::from_secs(120));
        assert_eq!(from_env.audiences, ["a", "b"]);
        assert!(from_env.verbose);

        let from_flags = config_of(
            &[
                "--issuer",
                "https://flag",
                "--client-id",
                "flag-client",
                "--scopes",
                "openid",
                "--audience",
                "c",
                "--timeout",
                "3s",
            ],
            &env,
        );
        assert_eq!(from_flags.endpoint, Endpoint::Issuer("https://flag".into()));
        assert_eq!(from_flags.client_id, "flag-client");
        assert_eq!(from_flags.scopes, ["openid"]);
        assert_eq!(from_flags.audiences, ["c"]);
        assert_eq!(from_flags.timeout, Duration::from_secs(3));
    }

    #[test]
    fn secret_file_from_environment_loses_to_secret_flag() {
        let env = [("TOKENXCHANGE_CLIENT_SECRET_FILE", "/s")];
        assert_eq!(config_of(&BASE, &env).client_secret, ClientSecret::File("/s".into()));
        let mut args = BASE.to_vec();
        args.extend(["--client-secret", "x"]);
        assert_eq!(config_of(&args, &env).client_secret, ClientSecret::Value(Secret::new("x")));
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert_eq!(
            usage_error(&["--client-id", "a"], &[]),
            "missing --oidc-endpoint (or --issuer, TOKENXCHANGE_OIDC_ENDPOINT, TOKENXCHANGE_ISSUER)"
        );
        assert_eq!(
            usage_error(&["--oidc-endpoint", "https://d/token"], &[]),
            "missing --client-id (or TOKENXCHANGE_CLIENT_ID)"
        );
        assert_eq!(usage_error(&["--bogus"], &[]), "invalid option '--bogus' (see --help)");
        assert_eq!(usage_error(&["frobnicate"], &[]), "unknown command 'frobnicate' (see --help)");
        assert_eq!(usage_error(&["--client-id"], &[]), "missing argument for option '--client-id' (see --help)");
        let mut args = BASE.to_vec();
        args.extend(["--timeout", "soon"]);
        assert_eq!(usage_error(&args, &[]), "invalid --timeout 'soon': expected a number followed by ms, s, m or h");
        let mut args = BASE.to_vec();
        args.extend(["--subject-token-type", "saml"]);
        assert_eq!(
            usage_error(&args, &[]),
            "invalid --subject-token-type 'saml': use id_token, access_token, jwt or a full urn: URN"
        );
        let mut args = BASE.to_vec();
        args.extend(["--api-version", "client.authentication.k8s.io/v1alpha1"]);
        assert!(usage_error(&args, &[]).starts_with("invalid --api-version"));
        let err = usage_error(&["--oidc-endpoint", "http://dex.example.com/token", "--client-id", "a"], &[]);
        assert!(err.contains("http://"), "{err}");
    }

    #[test]
    fn loopback_http_is_allowed() {
        let config = config_of(&["--oidc-endpoint", "http://127.0.0.1:5556/dex/token", "--client-id", "a"], &[]);
        assert_eq!(config.endpoint, Endpoint::Token("http://127.0.0.1:5556/dex/token".into()));
    }

    #[test]
    fn token_types_accept_short_names_and_urns() {
        let mut args = BASE.to_vec();
        args.extend(["--subject-token-type", "jwt", "--requested-token-type", "urn:example:custom"]);
        let config = config_of(&args, &[]);
        assert_eq!(config.subject_token_type, "urn:ietf:params:oauth:token-type:jwt");
        assert_eq!(config.requested_token_type, "urn:example:custom");
    }

    #[test]
    fn durations() {
        let check =
            |text: &str, millis: u64| assert_eq!(parse_duration(text), Ok(Duration::from_millis(millis)), "{text}");
        check("500ms", 500);
        check("15s", 15_000);
        check("2m", 120_000);
        check("1m30s", 90_000);
        check("1h", 3_600_000);
        check("30", 30_000);
        assert_eq!(parse_duration("0s"), Err("must be more than zero".into()));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5x"), Err("unknown unit 'x' (use ms, s, m or h)".into()));
        assert_eq!(parse_duration("2h"), Err("must be at most 1h".into()));
        assert_eq!(parse_duration(""), Err("empty".into()));
        assert_eq!(parse_duration(&"18446744073709551615ms".repeat(1001)), Err("number too large".into()));
        assert_eq!(parse_duration("99999999999999999999s"), Err("number too large".into()));
    }

    #[test]
    fn help_version_and_subcommands() {
        assert!(matches!(parse_with(&["--help"], &[]), Ok(Command::Help)));
        assert!(matches!(parse_with(&["-V"], &[]), Ok(Command::Version)));
        match parse_with(&["install", "--force", "/opt/bin"], &[]) {
            Ok(Command::Install { dir, force: true }) => assert_eq!(dir, PathBuf::from("/opt/bin")),
            other => panic!("{other:?}"),
        }
        assert!(usage_error(&["install"], &[]).starts_with("usage: tokenxchange install"));
        match parse_with(&["clean"], &[("HOME", "/home/argocd")]) {
            Ok(Command::Clean { cache_dir }) => {
                assert_eq!(cache_dir, PathBuf::from("/home/argocd/.kube/cache/tokenxchange"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cache_directory_defaults() {
        let args = ["--oidc-endpoint=https://d/token", "--client-id=a"];
        assert_eq!(config_of(&args, &[("HOME", "/h")]).cache_dir, Some("/h/.kube/cache/tokenxchange".into()));
        assert_eq!(
            config_of(&args, &[("HOME", "/h"), ("KUBECACHEDIR", "/k")]).cache_dir,
            Some("/k/tokenxchange".into())
        );
        assert_eq!(config_of(&args, &[("HOME", "/h"), ("TOKENXCHANGE_CACHE_DIR", "/c")]).cache_dir, Some("/c".into()));
        assert_eq!(config_of(&args, &[("HOME", "/h"), ("TOKENXCHANGE_CACHE_DIR", "")]).cache_dir, None);
        let mut with_flag = args.to_vec();
        with_flag.extend(["--cache-dir", ""]);
        assert_eq!(config_of(&with_flag, &[("HOME", "/h")]).cache_dir, None);
        assert_eq!(config_of(&args, &[]).cache_dir, None);
    }

    #[test]
    fn cluster_config_overrides_flags() {
        let info = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false,"cluster":{"server":"https://a","config":{"audience":"aud-a","connectorID":"c-a","clientID":"id-a","scopes":["openid","groups"],"issuer":"https://dex-a"}}}}"#;
        let config = config_of(&BASE, &[("KUBERNETES_EXEC_INFO", info)]);
        assert_eq!(config.api_version, "client.authentication.k8s.io/v1beta1");
        assert_eq!(config.audiences, ["aud-a"]);
        assert_eq!(config.connector.as_deref(), Some("c-a"));
        assert_eq!(config.client_id, "id-a");
        assert_eq!(config.scopes, ["openid", "groups"]);
        assert_eq!(config.endpoint, Endpoint::Issuer("https://dex-a".into()));
        assert!(config.cluster.as_deref().unwrap().contains("\"server\":\"https://a\""));

        // the cluster layer beats flags and variables; tokenEndpoint replaces an --issuer
        let info = r#"{"apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"server":"https://b","config":{"tokenEndpoint":"https://dex-b/token","scopes":"openid groups","clientID":"id-b"}}}}"#;
        let env =
            [("KUBERNETES_EXEC_INFO", info), ("TOKENXCHANGE_CLIENT_ID", "env-id"), ("TOKENXCHANGE_SCOPES", "email")];
        let config = config_of(&["--issuer=https://flag-issuer", "--client-id=flag-id", "--no-cache"], &env);
        assert_eq!(config.endpoint, Endpoint::Token("https://dex-b/token".into()));
        assert_eq!(config.client_id, "id-b");
        assert_eq!(config.scopes, ["openid", "groups"]);
        let both = r#"{"spec":{"cluster":{"config":{"tokenEndpoint":"https://a/token","issuer":"https://a"}}}}"#;
        assert!(usage_error(&BASE, &[("KUBERNETES_EXEC_INFO", both)]).contains("exclude each other"));

        let unknown = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"cluster":{"server":"https://a","config":{"audiance":"x"}}}}"#;
        assert_eq!(
            usage_error(&BASE, &[("KUBERNETES_EXEC_INFO", unknown)]),
            "unknown key 'audiance' in the cluster's exec config (spec.cluster.config); known keys: audience, connectorID, clientID, scopes, tokenEndpoint, issuer"
        );
    }
}
