//! tokenxchange: a client-go credential exec plugin that exchanges a Kubernetes
//! ServiceAccount token at Dex (RFC 8693) and prints one ExecCredential.
//!
//! `main` only dispatches the commands, prints their one result and maps errors to exit
//! codes. The data flows one way: config → subject token → (cache) → request → answer →
//! ExecCredential → stdout (see `get_token`).

use std::ffi::OsStr;
use std::process::ExitCode;
use std::time::Instant;

#[macro_use]
mod redact;
mod arena;
mod cache;
mod claims;
mod cli;
mod der;
mod direct;
mod error;
mod exchange;
mod exec_credential;
mod form;
mod fs;
mod get_token;
mod http;
mod inspect;
mod install;
mod policy;
mod proxy;
mod secret;
mod setup;
mod stdout;
mod time;
mod tls;
mod url;
mod yaml;

use cli::Command;

#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena;
use error::Error;

fn main() -> ExitCode {
    let started = Instant::now();
    match stdout::check().and_then(|()| run(started)).and_then(|(text, deadline)| stdout::write(&text, deadline)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            redact::stderr(&format!("tokenxchange: error: {}", redact::line(&err.to_string())));
            ExitCode::from(err.exit_code())
        }
    }
}

/// The git revision the build came from, `-dirty` when tracked files had uncommitted
/// changes, as `scripts/revision` prints it; `make` and the release scripts set it, a bare
/// `cargo build` leaves it `unknown`. The image's revision label carries the same value.
const REVISION: &str = match option_env!("TOKENXCHANGE_BUILD_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

/// Runs the command; returns what goes to stdout, and by when it must be written (the end
/// of `--timeout`, or of the default one for commands without it).
fn run(started: Instant) -> Result<(String, Instant), Error> {
    // The environment is read once, here, and lower modules get what they need: a getenv
    // scans all of it, an Argo CD pod has hundreds of service variables, and one reading
    // means the policy checks the very values the TLS client and the proxy route use.
    let wanted = |name: &OsStr| {
        cli::reads(name) || proxy::VARIABLES.iter().chain(&tls::SystemTrust::VARIABLES).any(|known| name == *known)
    };
    let vars: Vec<_> = std::env::vars_os().filter(|(name, _)| wanted(name)).collect();
    let env = |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let network = exchange::Network { trust: tls::SystemTrust::from_vars(&env), proxies: proxy::Env::from_vars(&env) };
    let default_deadline = started + cli::DEFAULT_TIMEOUT;
    match cli::parse(std::env::args_os().skip(1), &env)? {
        Command::Help => Ok((cli::usage(), default_deadline)),
        Command::Version => {
            Ok((format!("tokenxchange {} (revision {REVISION})\n", env!("CARGO_PKG_VERSION")), default_deadline))
        }
        Command::Clean { cache_dir, verbose } => {
            redact::set_verbose(verbose);
            let removed = cache::clean(&cache_dir)?;
            Ok((removed.iter().map(|path| format!("removed {}\n", redact::path(path))).collect(), default_deadline))
        }
        Command::Install { dir, force, verbose } => {
            redact::set_verbose(verbose);
            Ok((install::install(&dir, force)? + "\n", default_deadline))
        }
        Command::Setup(options) => {
            // The CA files are small PEM bundles: a bounded read refuses devices and FIFOs.
            let plan = setup::plan(*options, &|path| fs::read_bounded(path, 1 << 20))?;
            Ok((setup::render(&plan), default_deadline))
        }
        Command::GetToken(config) => {
            redact::set_verbose(config.verbose);
            Ok((get_token::run(&config, &network, started)?, started + config.timeout))
        }
        Command::Inspect(config, options) => {
            redact::set_verbose(config.verbose);
            let (report, outcome) = inspect::run(&config, &options, &network, started);
            stdout::write(&report, started + config.timeout)?;
            outcome.map(|()| (String::new(), started + config.timeout))
        }
    }
}
