//! tokenxchange: a client-go credential exec plugin that exchanges a Kubernetes
//! ServiceAccount token at Dex (RFC 8693) and prints one ExecCredential.
//!
//! `main` only dispatches the commands, prints their one result and maps errors to exit
//! codes. The data flows one way: config → subject token → (cache) → request → answer →
//! ExecCredential → stdout (see `get_token`).

use std::process::ExitCode;
use std::time::Instant;

#[macro_use]
mod redact;
mod arena;
mod cache;
mod claims;
mod cli;
mod error;
mod exchange;
mod exec_credential;
mod form;
mod get_token;
mod http;
mod inspect;
mod install;
mod proxy;
mod stdout;
mod time;
mod tls;
mod token;
mod url;

use cli::Command;

#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena;
use error::Error;

fn main() -> ExitCode {
    match stdout::check().and_then(|()| run()).and_then(|text| stdout::write(&text)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tokenxchange: error: {}", redact::line(&err.to_string()));
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

/// Runs the command; returns what goes to stdout.
fn run() -> Result<String, Error> {
    let started = Instant::now();
    // The environment is read once: a getenv scans all of it, and an Argo CD pod has
    // hundreds of service variables.
    let vars: Vec<_> = std::env::vars_os().filter(|(name, _)| cli::reads(name)).collect();
    let env = |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    match cli::parse(std::env::args_os().skip(1), &env)? {
        Command::Help => Ok(cli::USAGE.to_string()),
        Command::Version => Ok(format!("tokenxchange {} (revision {REVISION})\n", env!("CARGO_PKG_VERSION"))),
        Command::Clean { cache_dir, verbose } => {
            redact::set_verbose(verbose);
            Ok(cache::clean(&cache_dir)?.iter().map(|path| format!("removed {}\n", path.display())).collect())
        }
        Command::Install { dir, force, verbose } => {
            redact::set_verbose(verbose);
            Ok(install::install(&dir, force)? + "\n")
        }
        Command::GetToken(config) => {
            redact::set_verbose(config.verbose);
            get_token::run(&config, started)
        }
        Command::Inspect(config, options) => {
            redact::set_verbose(config.verbose);
            let (report, outcome) = inspect::run(&config, &options, started);
            stdout::write(&report)?;
            outcome.map(|()| String::new())
        }
    }
}
