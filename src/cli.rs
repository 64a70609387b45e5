//! The command line contract: flags, their environment variables, defaults and the
//! per-cluster settings from `KUBERNETES_EXEC_INFO`, turned into a validated [`Config`].
//!
//! Every flag is defined once, as a row of [`FLAGS`] (name, short form, aliases,
//! variable, value, help line, the commands that take it); parsing, `--help` and the
//! "does this command take this flag" check are all read from that table.
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
use crate::setup;
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
    Setup(Box<setup::Options>),
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

/// The subcommands, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subcommand {
    GetToken,
    Inspect,
    Clean,
    Install,
    Setup,
}

impl Subcommand {
    /// Every subcommand, in the order `--help` and messages list them.
    const ALL: [Subcommand; 5] =
        [Subcommand::GetToken, Subcommand::Inspect, Subcommand::Clean, Subcommand::Install, Subcommand::Setup];

    pub fn name(self) -> &'static str {
        match self {
            Subcommand::GetToken => "get-token",
            Subcommand::Inspect => "inspect",
            Subcommand::Clean => "clean",
            Subcommand::Install => "install",
            Subcommand::Setup => "setup",
        }
    }

    fn from_name(name: &str) -> Option<Subcommand> {
        Subcommand::ALL.into_iter().find(|command| command.name() == name)
    }
}

/// What a flag takes after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Takes {
    /// Nothing: the flag turns something on.
    Switch,
    /// One value, named in `--help` (`URL`, `PATH`); given twice, the last one counts.
    One(&'static str),
    /// One value per use, repeatable: every use counts.
    Many(&'static str),
    /// One value kept as the OS gave it, not checked as UTF-8 (a path).
    Path(&'static str),
}

/// One command-line flag: the only place it is defined.
#[derive(Debug)]
pub struct Flag {
    /// `--name`: the spelling `--help` shows, and the key its values are looked up by.
    pub name: &'static str,
    /// `-x`, if any.
    pub short: Option<char>,
    /// Other long spellings accepted, e.g. the names an older tool used.
    pub aliases: &'static [&'static str],
    /// The `TOKENXCHANGE_*` variable `get-token` and `inspect` read when the flag is absent.
    pub var: Option<&'static str>,
    pub takes: Takes,
    /// One line for `--help` (wrapped there).
    pub help: &'static str,
    /// The subcommands that take it; any other refuses it.
    pub commands: &'static [Subcommand],
    /// Serves only an exchange at the identity provider: refused with `--direct`.
    pub exchange: bool,
}

use Subcommand::{Clean as CLEAN, GetToken as GET, Inspect as INSPECT, Install as INSTALL, Setup as SETUP};
const RUN: &[Subcommand] = &[GET, INSPECT];
const ALL: &[Subcommand] = &[GET, INSPECT, CLEAN, INSTALL, SETUP];

/// Shorthand for a row: flag name, variable, value, help, commands, exchange-only; the
/// rarer short forms and aliases are set with struct update syntax.
const fn flag(
    name: &'static str,
    var: Option<&'static str>,
    takes: Takes,
    help: &'static str,
    commands: &'static [Subcommand],
    exchange: bool,
) -> Flag {
    Flag { name, short: None, aliases: &[], var, takes, help, commands, exchange }
}

use Takes::{Many, One, Path, Switch};

/// Every flag of every subcommand, in `--help` order. Adding a flag is one row here, plus
/// the code that uses its value (`flags.one("--name")`, `layers.one(..)`).
#[rustfmt::skip]
pub static FLAGS: &[Flag] = &[
    Flag { aliases: &["--token-endpoint"], ..flag("--oidc-endpoint", Some("TOKENXCHANGE_OIDC_ENDPOINT"), One("URL"),
        "token endpoint, e.g. https://dex.example.com/token", RUN, true) },
    flag("--issuer", Some("TOKENXCHANGE_ISSUER"), One("URL"),
        "discover the token endpoint from the issuer (setup: Dex's issuer)", &[GET, INSPECT, SETUP], true),
    flag("--client-id", Some("TOKENXCHANGE_CLIENT_ID"), One("ID"), "OAuth client (required)", &[GET, INSPECT, SETUP],
        true),
    flag("--client-secret", Some("TOKENXCHANGE_CLIENT_SECRET"), One("S"),
        "client secret; empty for public clients", RUN, true),
    flag("--client-secret-file", Some("TOKENXCHANGE_CLIENT_SECRET_FILE"), One("PATH"),
        "read the client secret from a file", RUN, true),
    Flag { aliases: &["--connector-id"], ..flag("--dex-connector", Some("TOKENXCHANGE_DEX_CONNECTOR"), One("ID"),
        "Dex connector_id", &[GET, INSPECT, SETUP], true) },
    flag("--scopes", Some("TOKENXCHANGE_SCOPES"), Many("LIST"),
        "comma/space separated (default openid,profile,federated:id)", RUN, true),
    flag("--audience", Some("TOKENXCHANGE_AUDIENCE"), Many("AUD"), "audience of the token, repeatable; with Dex also sent as scope audience:server:client_id:AUD", RUN, true),
    flag("--token-file", Some("TOKENXCHANGE_TOKEN_FILE"), One("PATH"),
        "subject token, re-read every run (default /var/run/secrets/kubernetes.io/serviceaccount/token)", RUN, false),
    flag("--subject-token-type", Some("TOKENXCHANGE_SUBJECT_TOKEN_TYPE"), One("T"),
        "id_token, access_token, jwt or a URN (default id_token)", RUN, true),
    flag("--requested-token-type", Some("TOKENXCHANGE_REQUESTED_TOKEN_TYPE"), One("T"),
        "same forms (default id_token)", RUN, true),
    flag("--certificate-authority", Some("TOKENXCHANGE_CERTIFICATE_AUTHORITY"), Many("PATH"),
        "trust only these PEM roots, repeatable", RUN, true),
    flag("--certificate-authority-data", Some("TOKENXCHANGE_CERTIFICATE_AUTHORITY_DATA"), Many("B64"),
        "base64 PEM roots", RUN, true),
    flag("--client-certificate", Some("TOKENXCHANGE_CLIENT_CERTIFICATE"), One("PATH"),
        "mTLS to the identity provider: the certificate", RUN, true),
    flag("--client-key", Some("TOKENXCHANGE_CLIENT_KEY"), One("PATH"), "and its key", RUN, true),
    flag("--client-certificate-data", Some("TOKENXCHANGE_CLIENT_CERTIFICATE_DATA"), One("B64"),
        "the certificate as base64 PEM", RUN, true),
    flag("--client-key-data", Some("TOKENXCHANGE_CLIENT_KEY_DATA"), One("B64"), "the key as base64 PEM", RUN, true),
    flag("--insecure-skip-tls-verify", Some("TOKENXCHANGE_INSECURE_SKIP_TLS_VERIFY"), Switch,
        "do not verify the server certificate (last resort)", RUN, true),
    flag("--allow-insecure-http", Some("TOKENXCHANGE_ALLOW_INSECURE_HTTP"), Switch,
        "allow http:// to non-loopback hosts (last resort)", RUN, true),
    flag("--timeout", Some("TOKENXCHANGE_TIMEOUT"), One("DURATION"),
        "bound on the whole run: 500ms, 15s, 2m (default 15s)", RUN, false),
    flag("--retries", Some("TOKENXCHANGE_RETRIES"), One("N"),
        "extra attempts on transient failures (default 2)", RUN, true),
    flag("--cache-dir", Some("TOKENXCHANGE_CACHE_DIR"), Path("DIR"),
        "credential cache (default $KUBECACHEDIR/tokenxchange or $HOME/.kube/cache/tokenxchange; empty: off)",
        &[GET, INSPECT, CLEAN], false),
    flag("--no-cache", Some("TOKENXCHANGE_NO_CACHE"), Switch, "do not read or write the cache", RUN, false),
    flag("--cache-max-age", Some("TOKENXCHANGE_CACHE_MAX_AGE"), One("DURATION"),
        "exchange again once a cached credential is this old; 0s: every run (default 5m)", RUN, false),
    flag("--force-refresh", Some("TOKENXCHANGE_FORCE_REFRESH"), Switch,
        "ignore a cached credential and replace it", RUN, false),
    flag("--api-version", None, One("V"),
        "ExecCredential apiVersion when KUBERNETES_EXEC_INFO is absent (default client.authentication.k8s.io/v1)",
        RUN, false),
    flag("--direct", Some("TOKENXCHANGE_DIRECT"), Switch, "no exchange: print the token file as the credential",
        &[GET, INSPECT, SETUP], false),
    flag("--username-claim", None, One("C"),
        "the claim the target takes the username from (default name, with --direct sub)",
        &[INSPECT, SETUP], false),
    flag("--username-prefix", None, One("P"),
        "what the target puts before it (default oidc:; with --direct: inspect nothing, setup source:)",
        &[INSPECT, SETUP], false),
    Flag { short: Some('o'), ..flag("--output", None, One("FORMAT"),
        "the output's form: inspect text or json, setup yaml or json", &[INSPECT, SETUP], false) },
    flag("--source-issuer", None, One("URL"),
        "the source cluster's ServiceAccount issuer (https)", &[SETUP], false),
    flag("--target", None, Many("NAME=URL"),
        "a target cluster: its name (audience, Dex client, Secret) and API server URL; repeatable", &[SETUP], false),
    flag("--target-ca", None, Many("NAME=FILE"), "the PEM CA of that target's API server; repeatable",
        &[SETUP], false),
    flag("--namespace", None, One("NS"), "Argo CD's namespace (default argocd)", &[SETUP], false),
    flag("--controller-service-account", None, One("SA"),
        "argocd-application-controller's ServiceAccount (default argocd-application-controller)", &[SETUP], false),
    flag("--server-service-account", None, One("SA"),
        "argocd-server's ServiceAccount (default argocd-server)", &[SETUP], false),
    flag("--force", None, Switch, "replace an existing DIR/tokenxchange", &[INSTALL], false),
    Flag { short: Some('v'), ..flag("--verbose", Some("TOKENXCHANGE_VERBOSE"), Switch,
        "progress on stderr, never a token", ALL, false) },
    Flag { short: Some('h'), ..flag("--help", None, Switch, "this text", ALL, false) },
    Flag { short: Some('V'), ..flag("--version", None, Switch, "the version and the git revision it was built from", ALL, false) },
];

/// The row of a flag by its `--name`. Every name the code asks for is a row: a misspelt
/// one is a bug, caught by the first test that takes that path.
fn row(name: &str) -> &'static Flag {
    FLAGS.iter().find(|flag| flag.name == name).unwrap_or_else(|| panic!("{name} is not in cli::FLAGS"))
}

/// The variable of a flag, for the layering rule.
fn var(name: &str) -> &'static str {
    row(name).var.unwrap_or_else(|| panic!("{name} has no variable"))
}

const USAGE_HEAD: &str = "\
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
  tokenxchange setup --issuer URL --dex-connector ID --client-id ID --source-issuer URL
                     --target NAME=URL [--target NAME=URL ...] [--target-ca NAME=FILE]
                     [--direct] [--namespace NS] [--username-claim C] [--username-prefix P]
                     [-o yaml|json]
                                       print every document that wires these targets
                                       (Dex, each target, Argo CD); reads flags only
  tokenxchange --help | --version

options (each also read by get-token and inspect from the variable in brackets; a flag
wins over its variable; the commands that take it when not get-token and inspect):
";

const USAGE_TAIL: &str = "
exit codes: 0 printed, 1 runtime failure, 2 usage or configuration, 3 subject token,
4 refused by the identity provider (4xx), 5 transient (network, proxy, TLS, timeout,
5xx, 429, 408), 6 inspect: no username claim in the issued token

operator policy: /etc/tokenxchange/policy.json, when present, limits what a run may do
(endpoints, client ids, files, destinations); nothing here can name another file
";

/// `--help`: the head, one entry per row of [`FLAGS`], the exit codes.
pub fn usage() -> String {
    const COLUMN: usize = 32;
    const WIDTH: usize = 90;
    let mut out = String::from(USAGE_HEAD);
    for flag in FLAGS {
        let mut left = String::from("  ");
        if let Some(short) = flag.short {
            left.push_str(&format!("-{short}, "));
        }
        left.push_str(flag.name);
        if let One(meta) | Many(meta) | Path(meta) = flag.takes {
            left.push(' ');
            left.push_str(meta);
        }
        let mut help = flag.help.to_string();
        for alias in flag.aliases {
            help.push_str(&format!(" (alias {alias})"));
        }
        if flag.commands != RUN && flag.commands != ALL {
            let names: Vec<&str> = flag.commands.iter().map(|c| c.name()).collect();
            help.push_str(&format!(" ({})", names.join(", ")));
        }
        if let Some(var) = flag.var {
            help.push_str(&format!(" [{var}]"));
        }
        out.push_str(&left);
        let mut column = left.len();
        if column + 2 > COLUMN {
            out.push('\n');
            column = 0;
        }
        for word in help.split(' ') {
            if column > COLUMN && column + 1 + word.len() > WIDTH {
                out.push('\n');
                column = 0;
            }
            if column < COLUMN {
                out.push_str(&" ".repeat(COLUMN - column));
                column = COLUMN;
            } else {
                out.push(' ');
                column += 1;
            }
            out.push_str(word);
            column += word.len();
        }
        out.push('\n');
    }
    out.push_str(USAGE_TAIL);
    out
}

/// Values as given on the command line, by flag, before the environment, defaults and
/// validation.
#[derive(Default)]
struct Flags {
    /// Each use of a flag in order: its row and its value (empty for a switch).
    given: Vec<(&'static Flag, OsString)>,
    /// The spelling each flag was given as, for messages that name it.
    spelled: Vec<String>,
}

impl Flags {
    /// A single value: the last given.
    fn one(&self, name: &str) -> Option<String> {
        let flag = row(name);
        self.given.iter().rev().find(|(f, _)| f.name == flag.name).map(|(_, v)| text(v))
    }

    /// Every value of a repeatable flag, in order.
    fn all(&self, name: &str) -> Vec<String> {
        let flag = row(name);
        self.given.iter().filter(|(f, _)| f.name == flag.name).map(|(_, v)| text(v)).collect()
    }

    /// The flags given that only serve an exchange, as they were spelled (for refusing
    /// them with `--direct`).
    fn exchange_only(&self) -> Vec<&str> {
        self.given.iter().zip(&self.spelled).filter(|((flag, _), _)| flag.exchange).map(|(_, s)| s.as_str()).collect()
    }

    /// Whether a switch was given.
    fn on(&self, name: &str) -> bool {
        let flag = row(name);
        self.given.iter().any(|(f, _)| f.name == flag.name)
    }

    /// A single value kept as the OS gave it (a path).
    fn path(&self, name: &str) -> Option<PathBuf> {
        let flag = row(name);
        self.given.iter().rev().find(|(f, _)| f.name == flag.name).map(|(_, v)| v.into())
    }
}

/// A value checked as UTF-8 when it was parsed (see [`parse`]), unless its flag takes a
/// [`Takes::Path`].
fn text(value: &OsString) -> String {
    value.to_string_lossy().into_owned()
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
    let mut subcommand: Option<Subcommand> = None;
    let mut positionals: Vec<OsString> = Vec::new();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(lexopt_error)? {
        let (spelled, flag) = match &arg {
            Long(name) => {
                let found = FLAGS.iter().find(|f| f.name[2..] == **name || f.aliases.iter().any(|a| a[2..] == **name));
                (["--", name].concat(), found)
            }
            Short(c) => (format!("-{c}"), FLAGS.iter().find(|f| f.short == Some(*c))),
            Value(_) => (String::new(), None),
        };
        let Some(flag) = flag else {
            match arg {
                Value(value) if subcommand.is_none() => {
                    let name = value.into_string().map_err(|v| unknown_command(v.as_encoded_bytes()))?;
                    subcommand = Some(Subcommand::from_name(&name).ok_or_else(|| unknown_command(name.as_bytes()))?);
                }
                Value(value) => positionals.push(value),
                _ => return Err(lexopt_error(arg.unexpected())),
            }
            continue;
        };
        match flag.name {
            "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            _ => {}
        }
        let value = match flag.takes {
            Switch => OsString::new(),
            Path(_) => parser.value().map_err(lexopt_error)?,
            One(_) | Many(_) => string(&mut parser)?.into(),
        };
        flags.given.push((flag, value));
        flags.spelled.push(spelled);
    }

    let command = subcommand.unwrap_or(Subcommand::GetToken);
    if let Some((index, (flag, _))) = flags.given.iter().enumerate().find(|(_, (f, _))| !f.commands.contains(&command))
    {
        let names: Vec<&str> = flag.commands.iter().map(|c| c.name()).collect();
        let owner = match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => "no command".into(),
        };
        return Err(Error::Usage(format!(
            "{} belongs to {owner}, not {} (see --help)",
            flags.spelled[index],
            command.name()
        )));
    }
    let verbose = flags.on("--verbose");
    match command {
        Subcommand::Install => {
            let [dir] = <[OsString; 1]>::try_from(positionals)
                .map_err(|_| Error::Usage("usage: tokenxchange install [--force] DIR".into()))?;
            Ok(Command::Install { dir: dir.into(), force: flags.on("--force"), verbose })
        }
        Subcommand::Clean => {
            no_positionals(&positionals, command)?;
            let cache_dir = cache_dir_from(flags.path("--cache-dir"), env)
                .ok_or_else(|| Error::Usage("no cache directory: set --cache-dir, KUBECACHEDIR or HOME".into()))?;
            Ok(Command::Clean { cache_dir, verbose })
        }
        Subcommand::Setup => {
            no_positionals(&positionals, command)?;
            let direct = flags.on("--direct");
            let conflicts = flags.exchange_only();
            if direct && !conflicts.is_empty() {
                return Err(Error::Usage(format!(
                    "setup --direct wires no Dex, so {} cannot go with it; remove them",
                    conflicts.join(", ")
                )));
            }
            Ok(Command::Setup(Box::new(setup::Options {
                issuer: flags.one("--issuer"),
                connector: flags.one("--dex-connector"),
                client_id: flags.one("--client-id"),
                source_issuer: flags.one("--source-issuer"),
                targets: flags.all("--target"),
                target_cas: flags.all("--target-ca"),
                direct,
                namespace: flags.one("--namespace"),
                controller: flags.one("--controller-service-account"),
                server: flags.one("--server-service-account"),
                username_claim: flags.one("--username-claim"),
                username_prefix: flags.one("--username-prefix"),
                output: flags.one("--output"),
            })))
        }
        Subcommand::GetToken | Subcommand::Inspect => {
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
            if command == Subcommand::GetToken {
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

fn unknown_command(name: &[u8]) -> Error {
    Error::Usage(format!("unknown command '{}' (see --help)", redact::echo(name, 100)))
}

/// `--username-claim`, `--username-prefix` (their defaults follow the mode) and
/// `-o text|json`.
fn inspect_options(flags: &Flags) -> Result<(Option<String>, Option<String>, bool), Error> {
    let json = match flags.one("--output").as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(Error::Usage(format!("invalid -o '{}': use text or json", redact::echo(other.as_bytes(), 50))));
        }
    };
    let claim = flags.one("--username-claim");
    if claim.as_deref() == Some("") {
        return Err(Error::Usage("invalid --username-claim '': name a claim, e.g. name or sub".into()));
    }
    Ok((claim, flags.one("--username-prefix"), json))
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

    /// A single value: the flag `name`, the cluster's setting, the flag's variable.
    fn one(&self, flags: &Flags, cluster: Option<String>, name: &str) -> Result<Option<String>, Error> {
        Ok(match flags.one(name).or(cluster) {
            Some(value) => Some(value),
            None => self.var(var(name))?,
        })
    }

    /// A list: the repeated flag, else the cluster's list, else the variable's
    /// comma-separated entries.
    fn list(&self, flags: &Flags, cluster: Option<Vec<String>>, name: &str) -> Result<Vec<String>, Error> {
        let flag = flags.all(name);
        if !flag.is_empty() {
            return Ok(flag);
        }
        if let Some(list) = cluster {
            return Ok(list);
        }
        Ok(self.var(var(name))?.map(|v| v.split(',').map(|s| s.trim().to_string()).collect()).unwrap_or_default())
    }

    /// An on/off setting: the flag, else the variable (`1`/`true`/`yes`/`on`, `0`/…).
    fn switch(&self, flags: &Flags, name: &str) -> Result<bool, Error> {
        if flags.on(name) {
            return Ok(true);
        }
        let var = var(name);
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
    let direct = layers.switch(&flags, "--direct")?;
    let conflicts = flags.exchange_only();
    if direct && !conflicts.is_empty() {
        return Err(Error::Usage(format!(
            "--direct prints the token file itself, so {} (for an exchange) cannot go with it; remove them",
            conflicts.join(", ")
        )));
    }
    let token_file = layers.one(&flags, None, "--token-file")?.unwrap_or(DEFAULT_TOKEN_FILE.into());
    let timeout = match layers.one(&flags, None, "--timeout")? {
        Some(text) => parse_duration(&text)
            .map_err(|why| Error::Usage(format!("invalid --timeout '{}': {why}", redact::echo(text.as_bytes(), 50))))?,
        None => DEFAULT_TIMEOUT,
    };
    let api_version = match (info.api_version, flags.one("--api-version").as_deref()) {
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
    let cache_dir =
        if layers.switch(&flags, "--no-cache")? { None } else { cache_dir_from(flags.path("--cache-dir"), layers.env) };
    let cache_max_age = match layers.one(&flags, None, "--cache-max-age")? {
        Some(text) => parse_span(&text)
            .and_then(|age| if age > Duration::from_secs(86_400) { Err("must be at most 24h".into()) } else { Ok(age) })
            .map_err(|why| {
                Error::Usage(format!("invalid --cache-max-age '{}': {why}", redact::echo(text.as_bytes(), 50)))
            })?,
        None => DEFAULT_CACHE_MAX_AGE,
    };
    let force_refresh = layers.switch(&flags, "--force-refresh")?;
    let verbose = layers.switch(&flags, "--verbose")?;
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
    let allow_insecure_http = layers.switch(&flags, "--allow-insecure-http")?;

    // The token endpoint and the issuer replace each other: the highest layer that sets
    // either one decides.
    let (endpoint, endpoint_source) = match one_of([
        (flags.one("--oidc-endpoint"), flags.one("--issuer"), "--oidc-endpoint and --issuer"),
        (
            cluster.token_endpoint.clone(),
            cluster.issuer.clone(),
            "tokenEndpoint and issuer in the cluster's exec config",
        ),
        (
            layers.var(var("--oidc-endpoint"))?,
            layers.var(var("--issuer"))?,
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
        .one(&flags, cluster.client_id.clone(), "--client-id")?
        .ok_or_else(|| Error::Usage("missing --client-id (or TOKENXCHANGE_CLIENT_ID)".into()))?;
    let client_secret = match one_of([
        (flags.one("--client-secret"), flags.one("--client-secret-file"), "--client-secret and --client-secret-file"),
        (
            layers.var(var("--client-secret"))?,
            layers.var(var("--client-secret-file"))?,
            "TOKENXCHANGE_CLIENT_SECRET and TOKENXCHANGE_CLIENT_SECRET_FILE",
        ),
    ])? {
        Some((_, OneOf::First(secret))) => ClientSecret::Value(Secret::new(secret)),
        Some((_, OneOf::Second(path))) => ClientSecret::File(path.into()),
        None => ClientSecret::Value(Secret::new("")),
    };

    let scopes = layers.list(&flags, cluster.scopes.clone(), "--scopes")?;
    let scopes = if scopes.is_empty() { vec![DEFAULT_SCOPES.to_string()] } else { scopes };
    // Each flag holds one audience as given; the cluster's config and the variable hold
    // audiences separated by commas or spaces.
    let audiences = match flags.all("--audience") {
        given if given.is_empty() => split_list(&layers.list(&flags, cluster.audiences.clone(), "--audience")?),
        given => given,
    };
    let token_type_of = |name: &str| -> Result<String, Error> {
        token_type(&layers.one(&flags, None, name)?.unwrap_or("id_token".into()), name)
    };
    let retries = match layers.one(&flags, None, "--retries")? {
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
        connector: layers.one(&flags, cluster.connector.clone(), "--dex-connector")?,
        scopes: split_list(&scopes),
        audiences,
        subject_token_type: token_type_of("--subject-token-type")?,
        requested_token_type: token_type_of("--requested-token-type")?,
        allow_insecure_http,
        retries,
        allowed_endpoints: None,
    };
    // With Dex each audience becomes a cross-client scope naming a Dex client id.
    if request.connector.is_some()
        && let Some(bad) = request.audiences.iter().find(|a| a.is_empty() || a.contains(char::is_whitespace))
    {
        return Err(Error::Usage(format!(
            "invalid --audience '{}': with Dex (--dex-connector) an audience is a Dex client id, without spaces",
            redact::echo(bad.as_bytes(), 100)
        )));
    }

    let ca_files = layers.list(&flags, None, "--certificate-authority")?;
    let client_certificate = pem_source(
        layers.one(&flags, None, "--client-certificate")?,
        layers.one(&flags, None, "--client-certificate-data")?,
        "--client-certificate",
    )?;
    let client_key = pem_source(
        layers.one(&flags, None, "--client-key")?,
        layers.one(&flags, None, "--client-key-data")?,
        "--client-key",
    )?;
    if client_certificate.is_some() != client_key.is_some() {
        return Err(Error::Usage("--client-certificate and --client-key go together; give both or neither".into()));
    }
    let tls = Tls {
        ca_files: ca_files.into_iter().filter(|f| !f.is_empty()).map(PathBuf::from).collect(),
        ca_data: layers.list(&flags, None, "--certificate-authority-data")?,
        client_certificate,
        client_key,
        insecure_skip_verify: layers.switch(&flags, "--insecure-skip-tls-verify")?,
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
    parser
        .value()
        .map_err(lexopt_error)?
        .into_string()
        .map_err(|_| Error::Usage("an option value is not valid UTF-8".into()))
}

fn no_positionals(positionals: &[OsString], command: Subcommand) -> Result<(), Error> {
    match positionals.first() {
        None => Ok(()),
        Some(extra) => Err(Error::Usage(format!(
            "unexpected argument '{}' for {} (see --help)",
            redact::echo(extra.as_encoded_bytes(), 100),
            command.name()
        ))),
    }
}

fn lexopt_error(err: lexopt::Error) -> Error {
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
    fn the_flag_table_is_consistent_and_drives_help() {
        let mut spellings: Vec<String> = Vec::new();
        for flag in FLAGS {
            assert!(flag.name.starts_with("--") && !flag.commands.is_empty() && !flag.help.is_empty(), "{flag:?}");
            spellings.push(flag.name.into());
            spellings.extend(flag.aliases.iter().map(|a| a.to_string()));
            spellings.extend(flag.short.map(|c| format!("-{c}")));
            if let Some(var) = flag.var {
                assert!(var.starts_with("TOKENXCHANGE_") && reads(var.as_ref()), "{var}");
            }
            let help = usage();
            let shown = match flag.takes {
                Takes::Switch => flag.name.to_string(),
                Takes::One(meta) | Takes::Many(meta) | Takes::Path(meta) => format!("{} {meta}", flag.name),
            };
            assert!(
                help.contains(&format!("  {shown} "))
                    || help.contains(&format!("  {shown}\n"))
                    || help.contains(&format!(", {shown}")),
                "{shown}"
            );
            for alias in flag.aliases {
                let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(words.contains(&format!("(alias {alias})")), "{alias}");
            }
        }
        let count = spellings.len();
        spellings.sort();
        spellings.dedup();
        assert_eq!(spellings.len(), count, "a spelling is used twice");
        // every flag a command does not take is refused for it, naming the ones that do
        assert_eq!(usage_error(&["clean", "--force"], &[]), "--force belongs to install, not clean (see --help)");
        assert_eq!(
            usage_error(&["install", "--connector-id=k", "/opt"], &[]),
            "--connector-id belongs to get-token, inspect and setup, not install (see --help)"
        );
    }

    #[test]
    fn setup_reads_its_flags_and_no_variable() {
        let env = [("TOKENXCHANGE_ISSUER", "https://env"), ("TOKENXCHANGE_CLIENT_ID", "env")];
        match parse_with(
            &["setup", "--issuer=https://dex", "--target", "a=https://a", "--target=b=https://b", "-o", "json"],
            &env,
        ) {
            Ok(Command::Setup(options)) => assert_eq!(
                *options,
                setup::Options {
                    issuer: Some("https://dex".into()),
                    targets: vec!["a=https://a".into(), "b=https://b".into()],
                    output: Some("json".into()),
                    ..setup::Options::default()
                }
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            usage_error(&["setup", "--direct", "--client-id=x", "--target=a=https://a"], &[]),
            "setup --direct wires no Dex, so --client-id cannot go with it; remove them"
        );
        assert_eq!(
            usage_error(&["--target=a=https://a", "--oidc-endpoint=https://d/token", "--client-id=a"], &[]),
            "--target belongs to setup, not get-token (see --help)"
        );
    }

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
        // with Dex an audience is a client id: no spaces, not empty
        for bad in ["prod eu", ""] {
            let mut args = BASE.to_vec();
            args.extend(["--dex-connector", "k", "--audience", bad]);
            assert_eq!(
                usage_error(&args, &[]),
                format!(
                    "invalid --audience '{bad}': with Dex (--dex-connector) an audience is a Dex client id, without spaces"
                )
            );
        }
        let mut args = BASE.to_vec();
        args.extend(["--audience", "prod eu"]);
        assert_eq!(config_of(&args, &[]).exchange().request.audiences, ["prod eu"]);
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
            "--username-claim belongs to inspect and setup, not get-token (see --help)"
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
