//! The `testkit serve` binary: writes its files, `ready` last, and serves until killed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::TempDir;

use crate::curl::curl;

#[test]
fn serve_writes_its_files_and_answers() {
    let dir = TempDir::new("serve");
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_testkit"))
        .args(["serve", "--target", "alpha", "--dir"])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start testkit serve");
    let start = Instant::now();
    while !out.join("ready").exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "no ready file after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let env = std::fs::read_to_string(out.join("env")).expect("env file");
    let value = |name: &str| {
        env.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}='"))?.strip_suffix('\'').map(String::from))
            .unwrap_or_else(|| panic!("{name} missing from env:\n{env}"))
    };
    assert_eq!(value("CLIENT_ID"), "argocd");
    assert_eq!(value("CLIENT_SECRET"), "s3cr+t/=%:x");
    assert_eq!(value("CONNECTOR"), "kubernetes");
    assert_eq!(value("DEX_TOKEN_ENDPOINT"), format!("{}/token", value("DEX_ISSUER")));
    let token = std::fs::read_to_string(out.join("token")).expect("token file");
    assert!(testkit::SigningKey::source_cluster().verify(&token).is_ok());

    let discovery =
        curl(&out.join("dex-ca.pem"), &[&format!("{}/.well-known/openid-configuration", value("DEX_ISSUER"))]);
    assert_eq!(discovery.status, 200);
    let version = curl(&out.join("apiserver-ca.pem"), &[&format!("{}/version", value("APISERVER_URL"))]);
    assert_eq!(version.status, 401, "the API server wants a token");

    // --target alpha: an API server that takes alpha's --direct token, and no other
    let targets = std::fs::read_to_string(out.join("targets")).expect("targets file");
    let url = targets.strip_prefix("alpha ").and_then(|rest| rest.strip_suffix('\n')).expect("one line `alpha URL`");
    let alpha_ca = out.join("apiserver-ca-alpha.pem");
    let alpha = std::fs::read_to_string(out.join("token-alpha")).expect("token-alpha");
    let bearer = |token: &str| format!("Authorization: Bearer {}", token.trim());
    assert_eq!(curl(&alpha_ca, &["-H", &bearer(&alpha), &format!("{url}/version")]).status, 200);
    assert_eq!(curl(&alpha_ca, &["-H", &bearer(&token), &format!("{url}/version")]).status, 401, "audience dex");
    assert_eq!(value("SOURCE_ISSUER"), testkit::SOURCE_ISSUER);

    child.kill().expect("kill testkit serve");
    let output = child.wait_with_output().expect("wait for testkit serve");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&value("DEX_ISSUER")) && stdout.contains(&value("APISERVER_URL")), "{stdout}");
}
