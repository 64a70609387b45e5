//! `testkit serve --dir DIR [--target NAME ...]`: runs a test Dex and an API server
//! stand-in wired to it, for trying tokenxchange and kubectl by hand. Writes the CAs, a
//! ServiceAccount token and an `env` file into DIR, then `DIR/ready` last, and serves until
//! killed, keeping the number of token requests Dex has seen in `DIR/token-requests` (for
//! `make bench`).
//!
//! Each `--target NAME` adds an API server stand-in configured as `tokenxchange setup`
//! configures a target (scripts/check-deploy): it trusts Dex for audience NAME (claim
//! `name`, prefix `oidc:`) and the source cluster's issuer for audience NAME (claim `sub`,
//! prefix `source:`, as with `--direct`). For each, DIR gets `apiserver-ca-NAME.pem`, a
//! controller token `token-NAME` for audience NAME, and a line `NAME URL` in `targets`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{fs, io, thread, time::Duration};

use testkit::{ApiServer, ApiServerConfig, Client, Dex, DexConfig, SOURCE_ISSUER, SigningKey, mint_sa_token};

const USAGE: &str = "usage: testkit serve --dir DIR [--target NAME ...]";

fn main() -> ExitCode {
    let (dir, targets) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("testkit: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = serve(&dir, &targets) {
        eprintln!("testkit: cannot write into {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(PathBuf, Vec<String>), String> {
    if args.next().as_deref() != Some("serve") {
        return Err("expected the subcommand `serve`".into());
    }
    let (mut dir, mut targets) = (None, Vec::new());
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--dir", Some(value)) if dir.is_none() => dir = Some(PathBuf::from(value)),
            ("--target", Some(name))
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                targets.push(name)
            }
            _ => {
                return Err(
                    "expected `--dir DIR` once and `--target NAME` (letters, digits, -) any number of times".into()
                );
            }
        }
    }
    Ok((dir.ok_or("expected `--dir DIR`")?, targets))
}

fn serve(dir: &Path, targets: &[String]) -> io::Result<()> {
    let mut config = DexConfig::default();
    let client = config.clients[0].clone();
    // Each target is also a Dex client, as setup's Dex config declares it (trustedPeers:
    // the Argo CD client), for Dex's cross-client audience (issue 15 §3).
    for name in targets {
        config.clients.push(Client {
            id: name.clone(),
            secret: client.secret.clone(),
            public: false,
            trusted_peers: vec![client.id.clone()],
        });
    }
    let dex = Dex::start(config);
    let api = ApiServer::start(ApiServerConfig::new(&dex.issuer(), &client.id));
    fs::create_dir_all(dir)?;
    fs::write(dir.join("dex-ca.pem"), dex.ca_pem())?;
    fs::write(dir.join("apiserver-ca.pem"), api.ca_pem())?;
    fs::write(dir.join("token"), mint_sa_token("argocd", "argocd-application-controller", "dex", 3600))?;
    let mut target_servers = Vec::new();
    let mut listing = String::new();
    for name in targets {
        let through_dex = ApiServerConfig::new(&dex.issuer(), name);
        let direct = ApiServerConfig {
            issuer: SOURCE_ISSUER.into(),
            client_id: name.clone(),
            key: SigningKey::source_cluster(),
            username_claim: "sub".into(),
            username_prefix: "source:".into(),
        };
        let server = ApiServer::start_with(vec![through_dex, direct]);
        fs::write(dir.join(format!("apiserver-ca-{name}.pem")), server.ca_pem())?;
        fs::write(
            dir.join(format!("token-{name}")),
            mint_sa_token("argocd", "argocd-application-controller", name, 3600),
        )?;
        listing.push_str(&format!("{name} {}\n", server.url()));
        target_servers.push(server);
    }
    fs::write(dir.join("targets"), listing)?;
    let env = [
        ("SOURCE_ISSUER", SOURCE_ISSUER.to_string()),
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
