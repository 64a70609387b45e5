//! tokenxchange: a client-go credential exec plugin that exchanges a Kubernetes
//! ServiceAccount token at Dex (RFC 8693) and prints one ExecCredential.
//!
//! `main` only wires the modules and maps errors to exit codes. The data flows one way:
//! config → subject token → (cache) → request → answer → ExecCredential → stdout.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Set once from `-v`; read by [`verbose!`].
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Progress on stderr with `-v`. Callers pass fingerprints, never tokens or secrets.
macro_rules! verbose {
    ($($arg:tt)*) => {
        if $crate::VERBOSE.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("tokenxchange: {}", format_args!($($arg)*));
        }
    };
}
pub(crate) use verbose;

mod arena;
mod cache;
mod cli;
mod error;
mod exchange;
mod exec_credential;
mod form;
mod http;
mod install;
mod proxy;
mod tls;
mod token;

use cli::{ClientSecret, Command, Config, Endpoint};

#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena;
use error::Error;
use exchange::Issued;
use token::Secret;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tokenxchange: error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn run() -> Result<(), Error> {
    let started = Instant::now();
    let env = |name: &str| std::env::var_os(name);
    match cli::parse(std::env::args_os().skip(1), &env)? {
        Command::Help => print(cli::USAGE.trim_end()),
        Command::Version => print(concat!("tokenxchange ", env!("CARGO_PKG_VERSION"))),
        Command::Clean { cache_dir } => {
            for removed in cache::clean(&cache_dir)? {
                print(&format!("removed {}", removed.display()))?;
            }
            Ok(())
        }
        Command::Install { dir, force } => print(&install::install(&dir, force)?),
        Command::GetToken(config) => {
            VERBOSE.store(config.verbose, Ordering::Relaxed);
            let issued = get_token(&config, started)?;
            let expiration = issued.expires_at.map(exec_credential::rfc3339);
            print(&exec_credential::render(config.api_version, &issued.token, expiration.as_deref()))
        }
    }
}

/// The credential for this run: from the cache when a fresh one is there, else from the
/// identity provider (one exchange per key at a time, across processes).
fn get_token(config: &Config, started: Instant) -> Result<Issued, Error> {
    let deadline = started + config.timeout;
    if config.tls.insecure_skip_verify {
        eprintln!(
            "tokenxchange: warning: --insecure-skip-tls-verify: the identity provider's certificate is not checked"
        );
    }
    let subject = token::read_subject(&config.token_file)?;
    let client_secret = match &config.client_secret {
        ClientSecret::Value(secret) => secret.clone(),
        ClientSecret::File(path) => token::read_client_secret(path)?,
    };
    verbose!("subject token {} from {}", subject.fingerprint(), config.token_file.display());

    let Some(cache) = config.cache_dir.as_deref().and_then(cache::Cache::open) else {
        return fetch(config, None, &client_secret, &subject, deadline);
    };
    let key = cache::key(config, &client_secret, &subject);
    if config.force_refresh {
        verbose!("cache refresh {}: --force-refresh", cache::short(&key));
    } else {
        match cache.read(&key, unix_now()) {
            Ok(hit) => return Ok(cache_hit(&key, hit)),
            Err(why) => verbose!("cache miss {}: {why}", cache::short(&key)),
        }
    }
    // Wait for a concurrent run at most half the time left, so a stuck one still leaves
    // time for an exchange of our own.
    let _lock = cache.lock(&key, Instant::now() + deadline.saturating_duration_since(Instant::now()) / 2);
    if !config.force_refresh
        && let Ok(hit) = cache.read(&key, unix_now())
    {
        return Ok(cache_hit(&key, hit));
    }
    let issued = fetch(config, Some(&cache), &client_secret, &subject, deadline)?;
    cache.write(&key, &issued, unix_now());
    Ok(issued)
}

fn cache_hit(key: &str, hit: Issued) -> Issued {
    verbose!(
        "cache hit {}: token {} until {}",
        cache::short(key),
        hit.token.fingerprint(),
        hit.expires_at.map_or("?".into(), exec_credential::rfc3339)
    );
    hit
}

/// One exchange at the identity provider, discovering the token endpoint first when
/// configured with an issuer (remembered in the cache directory).
fn fetch(
    config: &Config,
    cache: Option<&cache::Cache>,
    client_secret: &Secret,
    subject: &Secret,
    deadline: Instant,
) -> Result<Issued, Error> {
    let proxy_env = proxy::Env::from_process();
    let tls = tls::client_config(&config.tls)?;
    let agent_for = |url: &str| http::agent(tls.clone(), proxy::for_url(url, &proxy_env).as_deref());
    let exchange_at =
        |url: &str| exchange::exchange(&agent_for(url)?, url, config, client_secret, subject, deadline, unix_now);
    match &config.endpoint {
        Endpoint::Token(url) => exchange_at(url),
        Endpoint::Issuer(issuer) => {
            let discover = || -> Result<String, Error> {
                let endpoint = exchange::discover(
                    &agent_for(issuer)?,
                    issuer,
                    config.allow_insecure_http,
                    config.retries,
                    deadline,
                )?;
                if let Some(cache) = cache {
                    cache.write_endpoint(issuer, &endpoint);
                }
                Ok(endpoint)
            };
            let Some(remembered) = cache.and_then(|c| c.read_endpoint(issuer, config.allow_insecure_http)) else {
                return exchange_at(&discover()?);
            };
            match exchange_at(&remembered) {
                Err(err) if is_stale_endpoint(&err) => {
                    verbose!("remembered token endpoint {remembered} failed ({err}); discovering again");
                    exchange_at(&discover()?)
                }
                result => result,
            }
        }
    }
}

/// A remembered endpoint that no longer answers: connection refused or 404.
fn is_stale_endpoint(err: &Error) -> bool {
    match err {
        Error::Refused { status: 404, .. } => true,
        Error::Network { reason, proxy: None, .. } => reason == "connection refused",
        _ => false,
    }
}

fn print(text: &str) -> Result<(), Error> {
    // One write(2) for the line and its newline: stdout's line buffer would split them.
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all([text, "\n"].concat().as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| Error::Runtime(format!("cannot write to stdout: {err}")))
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
