//! The command line contract: flags, their environment variables, defaults and the
//! per-cluster settings from `KUBERNETES_EXEC_INFO`, turned into a validated [`Config`].
//!
//! Two steps: [`parse`] reads the arguments into raw [`Flags`] (nothing else), then
//! `resolve` layers them with the environment and the cluster's settings, under one rule
//! written once in [`Layers`]: a flag wins over the cluster's exec config (per target
//! cluster), that over the flag's `TOKENXCHANGE_*` variable, a variable over the default. Nothing
//! here reads files or opens sockets; the environment arrives as a lookup function so
//! tests can fake it. The types it fills belong to the modules that use them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::prelude::*;

use crate::error::Error;
use crate::exchange::{Endpoint, Request};
use crate::exec_credential::{self, ClusterSettings};
use crate::redact;
use crate::secret::{ClientSecret, Secret};
use crate::tls::{PemSource, Settings as Tls};
use crate::url::Url;

const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const DEFAULT_SCOPES: &str = "openid,profile,federated:id";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Five minutes: a credential the target refuses (Dex's keys replaced) heals within an
/// Argo CD retry or two, while Dex sees at most one exchange per key per five minutes
/// (docs/usage.md, "Cache").
const DEFAULT_CACHE_MAX_AGE: Duration = Duration::from_secs(300);
const DEFAULT_RETRIES: u32 = 2;
const TOKEN_TYPE_PREFIX: &str = "urn:ietf:params:oauth:token-type:";

/// What the user asked for.
#[derive(Debug)]
pub enum Command {
    GetToken(Box<Config>),
    Inspect(Box<Config>, Inspect),
    Clean { cache_dir: PathBuf, verbose: bool },
    Install { dir: PathBuf, force: bool, verbose: bool },
    Help,
    Version,
}

/// Everything a `get-token` run needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// How the credential is made: `None` with `--direct` (the subject token itself).
    pub exchange: Option<Exchange>,
    pub token_file: PathBuf,
    pub timeout: Duration,
    /// The ExecCredential apiVersion to print.
    pub api_version: &'static str,
    /// `spec.cluster` of `KUBERNETES_EXEC_INFO`, as canonical JSON (part of the cache key).
    pub cluster: Option<String>,
    /// `None`: the cache is off.
    pub cache_dir: Option<PathBuf>,
    /// A cached credential older than this is exchanged again (and served only when that
    /// exchange fails for a transient reason).
    pub cache_max_age: Duration,
    pub force_refresh: bool,
    pub verbose: bool,
}

pub const USAGE: &str = "\
tokenxchange: a client-go credential plugin that exchanges a Kubernetes ServiceAccount
token at Dex (OAuth 2.0 Token Exchange, RFC 8693) and prints an ExecCredential.

usage:
  tokenxchange [get-token] [OPTIONS]   print one ExecCredential on stdout
  tokenxchange get-token --direct [--token-file PATH]
                                       the token file itself as the credential (no Dex)
  tokenxchange inspect [OPTIONS] [--username-claim C] [--username-prefix P] [-o text|json]
                                       one exchange, reported down to the username the
                                       target API server derives (never the cache)
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
  --cache-max-age DURATION      exchange again once a cached credential is this old;
                                0s: every run (default 5m) [TOKENXCHANGE_CACHE_MAX_AGE]
  --force-refresh               ignore a cached credential and replace it
                                [TOKENXCHANGE_FORCE_REFRESH]
  --api-version V               ExecCredential apiVersion when KUBERNETES_EXEC_INFO is
                                absent (default client.authentication.k8s.io/v1)
  --direct                      no exchange: print the token file as the credential
                                [TOKENXCHANGE_DIRECT]
  --username-claim C, --username-prefix P
                                inspect: how the target maps the token (default name
                                and oidc:, with --direct sub and nothing)
  -o, --output text|json        inspect: the report's form
  -v, --verbose                 progress on stderr, never a token [TOKENXCHANGE_VERBOSE]
  -h, --help                    this text
  -V, --version                 the version

exit codes: 0 printed, 1 runtime failure, 2 usage or configuration, 3 subject token,
4 refused by the identity provider (4xx), 5 transient (network, proxy, TLS, timeout,
5xx, 429, 408), 6 inspect: no username claim in the issued token
";

/// The exchange at the identity provider, as configured.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Request,
    pub client_secret: ClientSecret,
    pub tls: Tls,
    /// Where the endpoint or issuer came from: a flag, a variable or the cluster's config.
    pub endpoint_source: &'static str,
}

/// How `inspect` reads the issued token as the target API server will.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspect {
    /// The claim that holds the username (`--username-claim`; `name`, or `sub` with `--direct`).
    pub username_claim: String,
    /// Put before it (`--username-prefix`; `oidc:`, or nothing with `--direct`).
    pub username_prefix: String,
    /// `-o json` rather than text.
    pub json: bool,
}

/// The options that only serve an exchange, refused with `--direct`.
const EXCHANGE_ONLY: &[&str] = &[
    "--oidc-endpoint",
    "--token-endpoint",
    "--issuer",
    "--client-id",
    "--client-secret",
    "--client-secret-file",
    "--dex-connector",
    "--connector-id",
    "--scopes",
    "--audience",
    "--subject-token-type",
    "--requested-token-type",
    "--certificate-authority",
    "--certificate-authority-data",
    "--client-certificate",
    "--client-key",
    "--client-certificate-data",
    "--client-key-data",
    "--insecure-skip-tls-verify",
    "--allow-insecure-http",
    "--retries",
];

/// The options that only `inspect` takes.
const INSPECT_ONLY: &[&str] = &["--username-claim", "--username-prefix", "--output", "-o"];

/// Values as given on the command line, before the environment, defaults and validation.
#[derive(Default)]
struct Flags {
    oidc_endpoint: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_file: Option<String>,
    connector: Option<String>,
    scopes: Vec<String>,
    audiences: Vec<String>,
    token_file: Option<String>,
    subject_token_type: Option<String>,
    requested_token_type: Option<String>,
    ca_files: Vec<String>,
    ca_data: Vec<String>,
    client_certificate: Option<String>,
    client_key: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    insecure_skip_verify: bool,
    allow_insecure_http: bool,
    timeout: Option<String>,
    retries: Option<String>,
    api_version: Option<String>,
    cache_dir: Option<PathBuf>,
    cache_max_age: Option<String>,
    no_cache: bool,
    force_refresh: bool,
    force: bool,
    verbose: bool,
    direct: bool,
    username_claim: Option<String>,
    username_prefix: Option<String>,
    output: Option<String>,
    /// The options given, by name, for refusing them where they do not belong.
    given: Vec<String>,
}

/// Whether `name` is a variable this parser reads.
pub fn reads(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b"TOKENXCHANGE_")
        || ["KUBERNETES_EXEC_INFO", "KUBECACHEDIR", "HOME"].iter().any(|known| name == *known)
}

/// Parses the arguments (without the program name) against the environment `env`.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Command, Error> {
    let mut flags = Flags::default();
    let mut subcommand: Option<String> = None;
    let mut positionals: Vec<OsString> = Vec::new();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(usage)? {
        match &arg {
            Long(name) => flags.given.push(["--", name].concat()),
            Short('o') => flags.given.push("-o".into()),
            _ => {}
        }
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Short('v') | Long("verbose") => flags.verbose = true,
            Long("oidc-endpoint") | Long("token-endpoint") => flags.oidc_endpoint = Some(string(&mut parser)?),
            Long("issuer") => flags.issuer = Some(string(&mut parser)?),
            Long("client-id") => flags.client_id = Some(string(&mut parser)?),
            Long("client-secret") => flags.client_secret = Some(string(&mut parser)?),
            Long("client-secret-file") => flags.client_secret_file = Some(string(&mut parser)?),
            Long("dex-connector") | Long("connector-id") => flags.connector = Some(string(&mut parser)?),
            Long("scopes") => flags.scopes.push(string(&mut parser)?),
            Long("audience") => flags.audiences.push(string(&mut parser)?),
            Long("token-file") => flags.token_file = Some(string(&mut parser)?),
            Long("subject-token-type") => flags.subject_token_type = Some(string(&mut parser)?),
            Long("requested-token-type") => flags.requested_token_type = Some(string(&mut parser)?),
            Long("certificate-authority") => flags.ca_files.push(string(&mut parser)?),
            Long("certificate-authority-data") => flags.ca_data.push(string(&mut parser)?),
            Long("client-certificate") => flags.client_certificate = Some(string(&mut parser)?),
            Long("client-key") => flags.client_key = Some(string(&mut parser)?),
            Long("client-certificate-data") => flags.client_certificate_data = Some(string(&mut parser)?),
            Long("client-key-data") => flags.client_key_data = Some(string(&mut parser)?),
            Long("insecure-skip-tls-verify") => flags.insecure_skip_verify = true,
            Long("allow-insecure-http") => flags.allow_insecure_http = true,
            Long("timeout") => flags.timeout = Some(string(&mut parser)?),
            Long("retries") => flags.retries = Some(string(&mut parser)?),
            Long("api-version") => flags.api_version = Some(string(&mut parser)?),
            Long("cache-dir") => flags.cache_dir = Some(parser.value().map_err(usage)?.into()),
            Long("no-cache") => flags.no_cache = true,
            Long("cache-max-age") => flags.cache_max_age = Some(string(&mut parser)?),
            Long("force-refresh") => flags.force_refresh = true,
            Long("force") => flags.force = true,
            Long("direct") => flags.direct = true,
            Long("username-claim") => flags.username_claim = Some(string(&mut parser)?),
            Long("username-prefix") => flags.username_prefix = Some(string(&mut parser)?),
            Short('o') | Long("output") => flags.output = Some(string(&mut parser)?),
            Value(value) if subcommand.is_none() => {
                let name = value.into_string().map_err(|v| {
                    Error::Usage(format!("unknown command '{}' (see --help)", redact::echo(v.as_encoded_bytes(), 100)))
                })?;
                match name.as_str() {
                    "get-token" | "inspect" | "clean" | "install" => subcommand = Some(name),
                    _ => {
                        return Err(Error::Usage(format!(
                            "unknown command '{}' (see --help)",
                            redact::echo(name.as_bytes(), 100)
                        )));
                    }
                }
            }
            Value(value) => positionals.push(value),
            _ => return Err(usage(arg.unexpected())),
        }
    }

    let command = subcommand.as_deref().unwrap_or("get-token");
    let takes = |flag: &str| match command {
        "install" => matches!(flag, "--force" | "--verbose"),
        "clean" => matches!(flag, "--cache-dir" | "--verbose"),
        "get-token" => flag != "--force" && !INSPECT_ONLY.contains(&flag),
        _ => flag != "--force",
    };
    if let Some(flag) = flags.given.iter().find(|flag| !takes(flag)) {
        let owner = match flag.as_str() {
            "--force" => "install",
            "--cache-dir" => "get-token, inspect and clean",
            flag if INSPECT_ONLY.contains(&flag) => "inspect",
            _ => "get-token and inspect",
        };
        return Err(Error::Usage(format!("{flag} belongs to {owner}, not {command} (see --help)")));
    }
    match command {
        "install" => {
            let [dir] = <[OsString; 1]>::try_from(positionals)
                .map_err(|_| Error::Usage("usage: tokenxchange install [--force] DIR".into()))?;
            Ok(Command::Install { dir: dir.into(), force: flags.force, verbose: flags.verbose })
        }
        "clean" => {
            no_positionals(&positionals, "clean")?;
            let cache_dir = cache_dir_from(flags.cache_dir.clone(), env)
                .ok_or_else(|| Error::Usage("no cache directory: set --cache-dir, KUBECACHEDIR or HOME".into()))?;
            Ok(Command::Clean { cache_dir, verbose: flags.verbose })
        }
        _ => {
            no_positionals(&positionals, command)?;
            let info = match env("KUBERNETES_EXEC_INFO") {
                Some(raw) => {
                    let raw = raw
                        .into_string()
                        .map_err(|_| Error::Usage("KUBERNETES_EXEC_INFO is not valid UTF-8".into()))?;
                    exec_credential::parse_info(&raw)?
                }
                None => exec_credential::ExecInfo::default(),
            };
            let layers = Layers { env, cluster: info.cluster.clone() };
            let (claim, prefix, json) = inspect_options(&flags)?;
            let config = Box::new(resolve(flags, &layers, info)?);
            if command == "get-token" {
                return Ok(Command::GetToken(config));
            }
            let direct = config.exchange.is_none();
            let inspect = Inspect {
                username_claim: claim.unwrap_or(if direct { "sub" } else { "name" }.into()),
                username_prefix: prefix.unwrap_or(if direct { "" } else { "oidc:" }.into()),
                json,
            };
            Ok(Command::Inspect(config, inspect))
        }
    }
}

/// `--username-claim`, `--username-prefix` (their defaults follow the mode) and
/// `-o text|json`.
fn inspect_options(flags: &Flags) -> Result<(Option<String>, Option<String>, bool), Error> {
    let json = match flags.output.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(Error::Usage(format!("invalid -o '{}': use text or json", redact::echo(other.as_bytes(), 50))));
        }
    };
    if flags.username_claim.as_deref() == Some("") {
        return Err(Error::Usage("invalid --username-claim '': name a claim, e.g. name or sub".into()));
    }
    Ok((flags.username_claim.clone(), flags.username_prefix.clone(), json))
}

/// Where a setting can come from, highest first: a flag, the cluster's exec config, the
/// flag's variable. A flag is the exec configuration's own word; a cluster entry may come
/// from a less trusted kubeconfig, so it cannot redirect the secrets that flags aim. Every setting is read through [`Layers::one`], [`Layers::list`] or
/// [`Layers::switch`], which apply that order; a variable that is set but empty counts as
/// unset, and one that is not UTF-8 is a usage error naming it.
struct Layers<'a> {
    env: &'a dyn Fn(&str) -> Option<OsString>,
    cluster: ClusterSettings,
}

impl Layers<'_> {
    fn var(&self, name: &str) -> Result<Option<String>, Error> {
        match (self.env)(name) {
            None => Ok(None),
            Some(value) => match value.into_string() {
                Ok(value) if value.is_empty() => Ok(None),
                Ok(value) => Ok(Some(value)),
                Err(_) => Err(Error::Usage(format!("{name} is not valid UTF-8"))),
            },
        }
    }

    /// A single value.
    fn one(&self, cluster: Option<String>, flag: Option<String>, var: &str) -> Result<Option<String>, Error> {
        Ok(match flag.or(cluster) {
            Some(value) => Some(value),
            None => self.var(var)?,
        })
    }

    /// A list: the repeated flag, else the cluster's list, else the variable's
    /// comma-separated entries.
    fn list(&self, cluster: Option<Vec<String>>, flag: Vec<String>, var: &str) -> Result<Vec<String>, Error> {
        if !flag.is_empty() {
            return Ok(flag);
        }
        if let Some(list) = cluster {
            return Ok(list);
        }
        Ok(self.var(var)?.map(|v| v.split(',').map(|s| s.trim().to_string()).collect()).unwrap_or_default())
    }

    /// An on/off setting: the flag, else the variable (`1`/`true`/`yes`/`on`, `0`/…).
    fn switch(&self, flag: bool, var: &str) -> Result<bool, Error> {
        if flag {
            return Ok(true);
        }
        match self.var(var)? {
            None => Ok(false),
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(Error::Usage(format!(
                    "invalid {var} '{}': use 1/true or 0/false",
                    redact::echo(value.as_bytes(), 50)
                ))),
            },
        }
    }
}

/// Layers flags, environment, per-cluster settings and defaults into a [`Config`].
fn resolve(flags: Flags, layers: &Layers<'_>, info: exec_credential::ExecInfo) -> Result<Config, Error> {
    let direct = layers.switch(flags.direct, "TOKENXCHANGE_DIRECT")?;
    let conflicts: Vec<&str> =
        flags.given.iter().map(String::as_str).filter(|flag| EXCHANGE_ONLY.contains(flag)).collect();
    if direct && !conflicts.is_empty() {
        return Err(Error::Usage(format!(
            "--direct prints the token file itself, so {} (for an exchange) cannot go with it; remove them",
            conflicts.join(", ")
        )));
    }
    let token_file =
        layers.one(None, flags.token_file.clone(), "TOKENXCHANGE_TOKEN_FILE")?.unwrap_or(DEFAULT_TOKEN_FILE.into());
    let timeout = match layers.one(None, flags.timeout.clone(), "TOKENXCHANGE_TIMEOUT")? {
        Some(text) => parse_duration(&text)
            .map_err(|why| Error::Usage(format!("invalid --timeout '{}': {why}", redact::echo(text.as_bytes(), 50))))?,
        None => DEFAULT_TIMEOUT,
    };
    let api_version = match (info.api_version, flags.api_version.as_deref()) {
        (Some(version), _) => version,
        (None, Some(text)) => exec_credential::api_version(text).ok_or_else(|| {
            Error::Usage(format!(
                "invalid --api-version '{}': use {}",
                redact::echo(text.as_bytes(), 100),
                exec_credential::API_VERSIONS
            ))
        })?,
        (None, None) => exec_credential::V1,
    };
    let cache_dir = if layers.switch(flags.no_cache, "TOKENXCHANGE_NO_CACHE")? {
        None
    } else {
        cache_dir_from(flags.cache_dir.clone(), layers.env)
    };
    let cache_max_age = match layers.one(None, flags.cache_max_age.clone(), "TOKENXCHANGE_CACHE_MAX_AGE")? {
        Some(text) => parse_span(&text)
            .and_then(|age| if age > Duration::from_secs(86_400) { Err("must be at most 24h".into()) } else { Ok(age) })
            .map_err(|why| {
                Error::Usage(format!("invalid --cache-max-age '{}': {why}", redact::echo(text.as_bytes(), 50)))
            })?,
        None => DEFAULT_CACHE_MAX_AGE,
    };
    let force_refresh = layers.switch(flags.force_refresh, "TOKENXCHANGE_FORCE_REFRESH")?;
    let verbose = layers.switch(flags.verbose, "TOKENXCHANGE_VERBOSE")?;
    let exchange = if direct { None } else { Some(exchange(flags, layers)?) };
    Ok(Config {
        exchange,
        token_file: token_file.into(),
        timeout,
        api_version,
        cluster: info.cluster_json,
        cache_dir,
        cache_max_age,
        force_refresh,
        verbose,
    })
}

/// The exchange settings, from flags, variables and the cluster's config.
fn exchange(flags: Flags, layers: &Layers<'_>) -> Result<Exchange, Error> {
    let cluster = &layers.cluster;
    let allow_insecure_http = layers.switch(flags.allow_insecure_http, "TOKENXCHANGE_ALLOW_INSECURE_HTTP")?;

    // The token endpoint and the issuer replace each other: the highest layer that sets
    // either one decides.
    let (endpoint, endpoint_source) = match one_of([
        (flags.oidc_endpoint, flags.issuer, "--oidc-endpoint and --issuer"),
        (
            cluster.token_endpoint.clone(),
            cluster.issuer.clone(),
            "tokenEndpoint and issuer in the cluster's exec config",
        ),
        (
            layers.var("TOKENXCHANGE_OIDC_ENDPOINT")?,
            layers.var("TOKENXCHANGE_ISSUER")?,
            "TOKENXCHANGE_OIDC_ENDPOINT and TOKENXCHANGE_ISSUER",
        ),
    ])? {
        Some((layer, OneOf::First(url))) => (
            Endpoint::Token(Url::parse(&url, allow_insecure_http, "--oidc-endpoint")?),
            ["--oidc-endpoint", "the cluster's exec config (tokenEndpoint)", "TOKENXCHANGE_OIDC_ENDPOINT"][layer],
        ),
        Some((layer, OneOf::Second(url))) => (
            Endpoint::Issuer(Url::parse(&url, allow_insecure_http, "--issuer")?),
            ["--issuer", "the cluster's exec config (issuer)", "TOKENXCHANGE_ISSUER"][layer],
        ),
        None => {
            return Err(Error::Usage(
                "missing --oidc-endpoint (or --issuer, TOKENXCHANGE_OIDC_ENDPOINT, TOKENXCHANGE_ISSUER)".into(),
            ));
        }
    };

    let client_id = layers
        .one(cluster.client_id.clone(), flags.client_id, "TOKENXCHANGE_CLIENT_ID")?
        .ok_or_else(|| Error::Usage("missing --client-id (or TOKENXCHANGE_CLIENT_ID)".into()))?;
    let client_secret = match one_of([
        (flags.client_secret, flags.client_secret_file, "--client-secret and --client-secret-file"),
        (
            layers.var("TOKENXCHANGE_CLIENT_SECRET")?,
            layers.var("TOKENXCHANGE_CLIENT_SECRET_FILE")?,
            "TOKENXCHANGE_CLIENT_SECRET and TOKENXCHANGE_CLIENT_SECRET_FILE",
        ),
    ])? {
        Some((_, OneOf::First(secret))) => ClientSecret::Value(Secret::new(secret)),
        Some((_, OneOf::Second(path))) => ClientSecret::File(path.into()),
        None => ClientSecret::Value(Secret::new("")),
    };

    let scopes = layers.list(cluster.scopes.clone(), flags.scopes, "TOKENXCHANGE_SCOPES")?;
    let scopes = if scopes.is_empty() { vec![DEFAULT_SCOPES.to_string()] } else { scopes };
    // Each flag holds one audience as given; the cluster's config and the variable hold
    // audiences separated by commas or spaces.
    let audiences = if flags.audiences.is_empty() {
        split_list(&layers.list(cluster.audiences.clone(), Vec::new(), "TOKENXCHANGE_AUDIENCE")?)
    } else {
        flags.audiences
    };
    let token_type_of = |flag: Option<String>, var: &str, name: &str| -> Result<String, Error> {
        token_type(&layers.one(None, flag, var)?.unwrap_or("id_token".into()), name)
    };
    let retries = match layers.one(None, flags.retries, "TOKENXCHANGE_RETRIES")? {
        Some(text) => text.parse::<u32>().ok().filter(|n| *n <= 10).ok_or_else(|| {
            Error::Usage(format!(
                "invalid --retries '{}': expected a whole number from 0 to 10",
                redact::echo(text.as_bytes(), 50)
            ))
        })?,
        None => DEFAULT_RETRIES,
    };
    let request = Request {
        endpoint,
        client_id,
        connector: layers.one(cluster.connector.clone(), flags.connector, "TOKENXCHANGE_DEX_CONNECTOR")?,
        scopes: split_list(&scopes),
        audiences,
        subject_token_type: token_type_of(
            flags.subject_token_type,
            "TOKENXCHANGE_SUBJECT_TOKEN_TYPE",
            "--subject-token-type",
        )?,
        requested_token_type: token_type_of(
            flags.requested_token_type,
            "TOKENXCHANGE_REQUESTED_TOKEN_TYPE",
            "--requested-token-type",
        )?,
        allow_insecure_http,
        retries,
    };

    let ca_files = layers.list(None, flags.ca_files, "TOKENXCHANGE_CERTIFICATE_AUTHORITY")?;
    let client_certificate = pem_source(
        layers.one(None, flags.client_certificate, "TOKENXCHANGE_CLIENT_CERTIFICATE")?,
        layers.one(None, flags.client_certificate_data, "TOKENXCHANGE_CLIENT_CERTIFICATE_DATA")?,
        "--client-certificate",
    )?;
    let client_key = pem_source(
        layers.one(None, flags.client_key, "TOKENXCHANGE_CLIENT_KEY")?,
        layers.one(None, flags.client_key_data, "TOKENXCHANGE_CLIENT_KEY_DATA")?,
        "--client-key",
    )?;
    if client_certificate.is_some() != client_key.is_some() {
        return Err(Error::Usage("--client-certificate and --client-key go together; give both or neither".into()));
    }
    let tls = Tls {
        ca_files: ca_files.into_iter().filter(|f| !f.is_empty()).map(PathBuf::from).collect(),
        ca_data: layers.list(None, flags.ca_data, "TOKENXCHANGE_CERTIFICATE_AUTHORITY_DATA")?,
        client_certificate,
        client_key,
        insecure_skip_verify: layers.switch(flags.insecure_skip_verify, "TOKENXCHANGE_INSECURE_SKIP_TLS_VERIFY")?,
    };
    Ok(Exchange { request, client_secret, tls, endpoint_source })
}

enum OneOf<A, B> {
    First(A),
    Second(B),
}

/// The layer (its index) that set one of two settings, and which one.
type Chosen<A, B> = Option<(usize, OneOf<A, B>)>;

/// Two settings that replace each other, in layers from highest to lowest: the highest
/// layer that sets either decides (its index is returned); setting both in one layer is a
/// usage error.
fn one_of<A, B, const N: usize>(layers: [(Option<A>, Option<B>, &str); N]) -> Result<Chosen<A, B>, Error> {
    for (index, (first, second, names)) in layers.into_iter().enumerate() {
        match (first, second) {
            (Some(_), Some(_)) => return Err(Error::Usage(format!("{names} exclude each other; keep one"))),
            (Some(first), None) => return Ok(Some((index, OneOf::First(first)))),
            (None, Some(second)) => return Ok(Some((index, OneOf::Second(second)))),
            (None, None) => {}
        }
    }
    Ok(None)
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

fn pem_source(file: Option<String>, data: Option<String>, flag: &str) -> Result<Option<PemSource>, Error> {
    match (file, data) {
        (Some(_), Some(_)) => Err(Error::Usage(format!("{flag} and {flag}-data exclude each other; keep one"))),
        (Some(path), None) => Ok(Some(PemSource::File(path.into()))),
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
        _ => Err(Error::Usage(format!(
            "invalid {flag} '{}': use id_token, access_token, jwt or a full urn: URN",
            redact::echo(text.as_bytes(), 100)
        ))),
    }
}

/// `500ms`, `15s`, `2m`, `1h`, `1m30s`, or a bare number of seconds; more than zero and
/// at most an hour.
fn parse_duration(text: &str) -> Result<Duration, String> {
    checked_positive(parse_span(text)?)
}

/// [`parse_duration`]'s syntax, zero included, without bounds.
fn parse_span(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
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
    Ok(total)
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

/// The option's value as text. A value that is not UTF-8 is refused without echoing it:
/// it may be a secret.
fn string(parser: &mut lexopt::Parser) -> Result<String, Error> {
    parser.value().map_err(usage)?.into_string().map_err(|_| Error::Usage("an option value is not valid UTF-8".into()))
}

fn no_positionals(positionals: &[OsString], command: &str) -> Result<(), Error> {
    match positionals.first() {
        None => Ok(()),
        Some(extra) => Err(Error::Usage(format!(
            "unexpected argument '{}' for {command} (see --help)",
            redact::echo(extra.as_encoded_bytes(), 100)
        ))),
    }
}

fn usage(err: lexopt::Error) -> Error {
    Error::Usage(format!("{} (see --help)", redact::echo(err.to_string().as_bytes(), 200)))
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

    impl Config {
        fn exchange(&self) -> &Exchange {
            self.exchange.as_ref().expect("an exchange, not --direct")
        }
    }

    fn url(text: &str) -> Url {
        Url::parse(text, false, "test").unwrap()
    }

    const BASE: [&str; 4] = ["--oidc-endpoint=https://dex.example.com/token", "--client-id", "argocd", "--no-cache"];

    #[test]
    fn defaults_follow_the_contract() {
        let config = config_of(&BASE, &[]);
        assert_eq!(config.exchange().request.endpoint, Endpoint::Token(url("https://dex.example.com/token")));
        assert_eq!(config.cache_max_age, Duration::from_secs(300));
        let mut args = BASE.to_vec();
        args.extend(["--cache-max-age", "0s"]);
        assert_eq!(config_of(&args, &[("TOKENXCHANGE_CACHE_MAX_AGE", "9m")]).cache_max_age, Duration::ZERO);
        assert_eq!(config_of(&BASE, &[("TOKENXCHANGE_CACHE_MAX_AGE", "90s")]).cache_max_age, Duration::from_secs(90));
        assert_eq!(config.exchange().client_secret, ClientSecret::Value(Secret::new("")));
        assert_eq!(config.exchange().request.scopes, ["openid", "profile", "federated:id"]);
        assert_eq!(config.token_file, PathBuf::from(DEFAULT_TOKEN_FILE));
        assert_eq!(config.exchange().request.subject_token_type, "urn:ietf:params:oauth:token-type:id_token");
        assert_eq!(config.exchange().request.requested_token_type, "urn:ietf:params:oauth:token-type:id_token");
        assert_eq!(config.timeout, Duration::from_secs(15));
        assert_eq!(config.exchange().request.retries, 2);
        assert_eq!(config.api_version, "client.authentication.k8s.io/v1");
        assert_eq!(config.exchange().request.connector, None);
        assert!(config.exchange().request.audiences.is_empty() && !config.verbose && config.cache_dir.is_none());
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
        assert_eq!(config.exchange().request.endpoint, Endpoint::Token(url("https://dex/token")));
        assert_eq!(config.exchange().request.connector.as_deref(), Some("k8s"));
        assert_eq!(config.exchange().request.scopes, ["openid", "email", "groups"]);
        assert_eq!(config.token_file, PathBuf::from("/t"));
        assert_eq!(config.exchange().client_secret, ClientSecret::Value(Secret::new("s")));
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
        assert_eq!(from_env.exchange().request.endpoint, Endpoint::Token(url("https://env/token")));
        assert_eq!(from_env.exchange().endpoint_source, "TOKENXCHANGE_OIDC_ENDPOINT");
        assert_eq!(from_env.exchange().request.client_id, "env-client");
        assert_eq!(from_env.exchange().request.scopes, ["openid", "groups"]);
        assert_eq!(from_env.exchange().request.connector.as_deref(), Some("env-conn"));
        assert_eq!(from_env.timeout, Duration::from_secs(120));
        assert_eq!(from_env.exchange().request.audiences, ["a", "b"]);
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
        assert_eq!(from_flags.exchange().request.endpoint, Endpoint::Issuer(url("https://flag")));
        assert_eq!(from_flags.exchange().request.client_id, "flag-client");
        assert_eq!(from_flags.exchange().request.scopes, ["openid"]);
        assert_eq!(from_flags.exchange().request.audiences, ["c"]);
        assert_eq!(from_flags.timeout, Duration::from_secs(3));
    }

    #[test]
    fn secret_file_from_environment_loses_to_secret_flag() {
        let env = [("TOKENXCHANGE_CLIENT_SECRET_FILE", "/s")];
        assert_eq!(config_of(&BASE, &env).exchange().client_secret, ClientSecret::File("/s".into()));
        let mut args = BASE.to_vec();
        args.extend(["--client-secret", "x"]);
        assert_eq!(config_of(&args, &env).exchange().client_secret, ClientSecret::Value(Secret::new("x")));
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
        assert_eq!(config.exchange().request.endpoint, Endpoint::Token(url("http://127.0.0.1:5556/dex/token")));
    }

    #[test]
    fn token_types_accept_short_names_and_urns() {
        let mut args = BASE.to_vec();
        args.extend(["--subject-token-type", "jwt", "--requested-token-type", "urn:example:custom"]);
        let config = config_of(&args, &[]);
        assert_eq!(config.exchange().request.subject_token_type, "urn:ietf:params:oauth:token-type:jwt");
        assert_eq!(config.exchange().request.requested_token_type, "urn:example:custom");
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
            Ok(Command::Install { dir, force: true, verbose: false }) => assert_eq!(dir, PathBuf::from("/opt/bin")),
            other => panic!("{other:?}"),
        }
        assert!(usage_error(&["install"], &[]).starts_with("usage: tokenxchange install"));
        assert_eq!(
            usage_error(&["install", "--timeout=bogus", "--client-id=x", "/opt/bin"], &[]),
            "--timeout belongs to get-token and inspect, not install (see --help)"
        );
        assert_eq!(
            usage_error(&["clean", "--no-cache"], &[]),
            "--no-cache belongs to get-token and inspect, not clean (see --help)"
        );
        assert_eq!(
            usage_error(&["install", "--cache-dir=/c", "/opt/bin"], &[]),
            "--cache-dir belongs to get-token, inspect and clean, not install (see --help)"
        );
        assert!(matches!(parse_with(&["install", "-v", "/opt"], &[]), Ok(Command::Install { verbose: true, .. })));
        assert_eq!(
            usage_error(&["--username-claim", "sub", "--oidc-endpoint=https://d/token", "--client-id=a"], &[]),
            "--username-claim belongs to inspect, not get-token (see --help)"
        );
        assert_eq!(usage_error(&["inspect", "-o", "yaml"], &[]), "invalid -o 'yaml': use text or json");
        assert_eq!(
            usage_error(&["inspect", "--username-claim="], &[]),
            "invalid --username-claim '': name a claim, e.g. name or sub"
        );
        match parse_with(&["inspect", "--direct", "-o", "json"], &[]) {
            Ok(Command::Inspect(config, inspect)) => {
                assert!(config.exchange.is_none());
                assert_eq!(
                    inspect,
                    Inspect { username_claim: "sub".into(), username_prefix: String::new(), json: true }
                );
            }
            other => panic!("{other:?}"),
        }
        match parse_with(
            &["inspect", "--oidc-endpoint=https://d/token", "--client-id=a"],
            &[("TOKENXCHANGE_ISSUER", "")],
        ) {
            Ok(Command::Inspect(config, inspect)) => {
                assert_eq!(config.exchange().endpoint_source, "--oidc-endpoint");
                assert_eq!(
                    inspect,
                    Inspect { username_claim: "name".into(), username_prefix: "oidc:".into(), json: false }
                );
            }
            other => panic!("{other:?}"),
        }
        match parse_with(&["clean"], &[("HOME", "/home/argocd")]) {
            Ok(Command::Clean { cache_dir, verbose: false }) => {
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
    fn flags_beat_the_cluster_config_which_beats_variables() {
        // the cluster's keys fill what no flag sets; a flag's endpoint and client stand
        let info = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false,"cluster":{"server":"https://a","config":{"audience":"aud-a","connectorID":"c-a","clientID":"id-a","scopes":["openid","groups"],"issuer":"https://dex-a"}}}}"#;
        let config = config_of(&BASE, &[("KUBERNETES_EXEC_INFO", info)]);
        assert_eq!(config.api_version, "client.authentication.k8s.io/v1beta1");
        assert_eq!(config.exchange().request.audiences, ["aud-a"]);
        assert_eq!(config.exchange().request.connector.as_deref(), Some("c-a"));
        assert_eq!(config.exchange().request.client_id, "argocd");
        assert_eq!(config.exchange().request.scopes, ["openid", "groups"]);
        assert_eq!(config.exchange().request.endpoint, Endpoint::Token(url("https://dex.example.com/token")));
        assert_eq!(config.exchange().endpoint_source, "--oidc-endpoint");
        assert!(config.cluster.as_deref().unwrap().contains("\"server\":\"https://a\""));

        // without flags, the cluster's keys beat the variables; tokenEndpoint replaces the
        // variable's issuer
        let info = r#"{"apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"server":"https://b","config":{"tokenEndpoint":"https://dex-b/token","scopes":"openid groups","clientID":"id-b","audience":"b1, b2"}}}}"#;
        let env = [
            ("KUBERNETES_EXEC_INFO", info),
            ("TOKENXCHANGE_CLIENT_ID", "env-id"),
            ("TOKENXCHANGE_SCOPES", "email"),
            ("TOKENXCHANGE_ISSUER", "https://env-issuer"),
            ("TOKENXCHANGE_AUDIENCE", "env-aud"),
        ];
        let config = config_of(&["--no-cache"], &env);
        assert_eq!(config.exchange().request.endpoint, Endpoint::Token(url("https://dex-b/token")));
        assert_eq!(config.exchange().endpoint_source, "the cluster's exec config (tokenEndpoint)");
        assert_eq!(config.exchange().request.client_id, "id-b");
        assert_eq!(config.exchange().request.scopes, ["openid", "groups"]);
        assert_eq!(config.exchange().request.audiences, ["b1", "b2"]);

        // flags beat the cluster: a cluster entry cannot send the secrets elsewhere
        let flags = ["--issuer=https://flag-issuer", "--client-id=flag-id", "--audience=flag-aud", "--no-cache"];
        let config = config_of(&flags, &env);
        assert_eq!(config.exchange().request.endpoint, Endpoint::Issuer(url("https://flag-issuer")));
        assert_eq!(config.exchange().request.client_id, "flag-id");
        assert_eq!(config.exchange().request.audiences, ["flag-aud"]);
        let both = r#"{"spec":{"cluster":{"config":{"tokenEndpoint":"https://a/token","issuer":"https://a"}}}}"#;
        assert!(usage_error(&["--client-id=a"], &[("KUBERNETES_EXEC_INFO", both)]).contains("exclude each other"));

        let unknown = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"cluster":{"server":"https://a","config":{"audiance":"x"}}}}"#;
        assert_eq!(
            usage_error(&BASE, &[("KUBERNETES_EXEC_INFO", unknown)]),
            "unknown key 'audiance' in the cluster's exec config (spec.cluster.config); known keys: audience, connectorID, clientID, scopes, tokenEndpoint, issuer"
        );
    }
}
