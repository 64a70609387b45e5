//! `testkit serve --dir DIR`: runs a test Dex and an API server stand-in wired to it, for
//! trying tokenxchange and kubectl by hand. Writes the CAs, a ServiceAccount token and an
//! `env` file into DIR, then `DIR/ready` last, and serves until killed, keeping the number
//! of token requests Dex has seen in `DIR/token-requests` (for `make bench`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{fs, io, thread, time::Duration};

use testkit::{ApiServer, ApiServerConfig, Dex, DexConfig, mint_sa_token};

const USAGE: &str = "usage: testkit serve --dir DIR";

fn main() -> ExitCode {
    let dir = match parse(std::env::args().skip(1)) {
        Ok(dir) => dir,
        Err(message) => {
            eprintln!("testkit: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = serve(&dir) {
        eprintln!("testkit: cannot write into {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<PathBuf, String> {
    if args.next().as_deref() != Some("serve") {
        return Err("expected the subcommand `serve`".into());
    }
    match (args.next().as_deref(), args.next(), args.next()) {
        (Some("--dir"), Some(dir), None) => Ok(PathBuf::from(dir)),
        _ => Err("expected `--dir DIR` and nothing else".into()),
    }
}

fn serve(dir: &Path) -> io::Result<()> {
    let config = DexConfig::default();
    let client = config.clients[0].clone();
    let dex = Dex::start(config);
    let api = ApiServer::start(ApiServerConfig::new(&dex.issuer(), &client.id));
    fs::create_dir_all(dir)?;
    fs::write(dir.join("dex-ca.pem"), dex.ca_pem())?;
    fs::write(dir.join("apiserver-ca.pem"), api.ca_pem())?;
    fs::write(dir.join("token"), mint_sa_token("argocd", "argocd-application-controller", "dex", 3600))?;
    let env = [
        ("DEX_ISSUER", dex.issuer()),
        ("DEX_TOKEN_ENDPOINT", dex.token_endpoint()),
        ("APISERVER_URL", api.url()),
        ("CLIENT_ID", client.id),
        ("CLIENT_SECRET", client.secret),
        ("CONNECTOR", "kubernetes".into()),
    ];
    let env: String = env.iter().map(|(name, value)| format!("{name}='{value}'\n")).collect();
    fs::write(dir.join("env"), env)?;
    fs::write(dir.join("ready"), "")?;
    println!("dex {} apiserver {} dir {}", dex.issuer(), api.url(), dir.display());
    let counter = dir.join("token-requests");
    let mut written = usize::MAX;
    loop {
        let seen = dex.token_requests();
        if seen != written {
            let temp = dir.join(".token-requests.tmp");
            fs::write(&temp, format!("{seen}\n"))?;
            fs::rename(&temp, &counter)?;
            written = seen;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
