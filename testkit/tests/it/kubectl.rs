//! The real kubectl against the API server stand-in: every kubectl version installed here
//! runs `auth whoami` with a static token that the test Dex issued, and must print the
//! prefixed ServiceAccount name. Without kubectl the test says so and passes.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use testkit::{ApiServer, ApiServerConfig, Dex, DexConfig, SigningKey, mint_sa_token};

use crate::util::{TempDir, curl};

const USERNAME: &str = "oidc:system:serviceaccount:argocd:argocd-application-controller";

/// `kubectl.1.NN` next to the resolved `kubectl`, oldest first, else `kubectl` itself.
fn kubectls() -> Vec<PathBuf> {
    let Some(kubectl) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("kubectl"))
        .find(|path| path.is_file())
    else {
        return Vec::new();
    };
    let resolved = std::fs::canonicalize(&kubectl).unwrap_or(kubectl.clone());
    let mut versions: Vec<(u32, PathBuf)> = resolved
        .parent()
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let minor = name.strip_prefix("kubectl.1.")?.parse().ok()?;
            Some((minor, entry.path()))
        })
        .collect();
    versions.sort();
    if versions.is_empty() { vec![kubectl] } else { versions.into_iter().map(|(_, path)| path).collect() }
}

/// A token from the test Dex, by a real exchange over HTTPS.
fn exchanged_token(dex: &Dex, dir: &TempDir) -> String {
    let ca = dir.write("dex-ca.pem", dex.ca_pem());
    let subject = mint_sa_token("argocd", "argocd-application-controller", "dex", 600);
    let subject = format!("subject_token={subject}");
    let out = curl(
        &ca,
        &[
            "-u",
            "argocd:s3cr%2Bt%2F%3D%25%3Ax",
            "-d",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange",
            "-d",
            "subject_token_type=urn:ietf:params:oauth:token-type:id_token",
            "-d",
            "requested_token_type=urn:ietf:params:oauth:token-type:id_token",
            "-d",
            "connector_id=kubernetes",
            "-d",
            "scope=openid profile",
            "--data-urlencode",
            &subject,
            &dex.token_endpoint(),
        ],
    );
    assert_eq!(out.status, 200, "{}", out.body);
    let start = out.body.find(r#""access_token":""#).expect("access_token") + r#""access_token":""#.len();
    let end = start + out.body[start..].find('"').expect("end of access_token");
    out.body[start..end].to_string()
}

fn kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: sa\ncurrent-context: test\n",
        STANDARD.encode(ca_pem)
    )
}

#[test]
fn every_kubectl_prints_the_oidc_username() {
    let kubectls = kubectls();
    if kubectls.is_empty() {
        eprintln!("kubectl not found on PATH: skipping the kubectl auth whoami check");
        return;
    }
    let dex = Dex::start(DexConfig::default());
    let api = ApiServer::start(ApiServerConfig {
        issuer: dex.issuer(),
        client_id: "argocd".into(),
        key: SigningKey::dex(),
        username_claim: "name".into(),
        username_prefix: "oidc:".into(),
    });
    let dir = TempDir::new();
    let token = exchanged_token(&dex, &dir);
    let config = dir.write("kubeconfig", kubeconfig(&api.url(), &api.ca_pem(), &token));
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("create HOME");

    for kubectl in kubectls {
        let before = api.requests().len();
        let mut command = Command::new(&kubectl);
        command.env_clear().env("HOME", &home).arg("--kubeconfig").arg(&config).args(["auth", "whoami"]);
        let output = command.output().expect("run kubectl");
        let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        let calls = api.requests()[before..].to_vec();
        eprintln!("{}: {calls:?}", kubectl.display());
        assert!(
            output.status.success() && stdout.contains(USERNAME),
            "{command:?}\nstatus: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            output.status
        );
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("POST /apis/authentication.k8s.io/") && c.ends_with("/selfsubjectreviews"))
        );
    }
    assert!(api.tokens_seen().iter().all(|seen| *seen == token));
}

#[test]
fn kubectl_is_refused_with_a_foreign_token() {
    let Some(kubectl) = kubectls().pop() else {
        eprintln!("kubectl not found on PATH: skipping the kubectl refusal check");
        return;
    };
    let api = ApiServer::start(ApiServerConfig {
        issuer: "https://127.0.0.1:1/dex".into(),
        client_id: "argocd".into(),
        key: SigningKey::dex(),
        username_claim: "name".into(),
        username_prefix: "oidc:".into(),
    });
    let dir = TempDir::new();
    let forged = SigningKey::source_cluster()
        .sign(r#"{"iss":"https://127.0.0.1:1/dex","aud":"argocd","exp":9999999999,"name":"intruder"}"#);
    let config = dir.write("kubeconfig", kubeconfig(&api.url(), &api.ca_pem(), &forged));
    let output = Command::new(&kubectl)
        .env_clear()
        .env("HOME", dir.path())
        .arg("--kubeconfig")
        .arg(&config)
        .args(["auth", "whoami"])
        .output()
        .expect("run kubectl");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "kubectl accepted a forged token");
    assert!(stderr.contains("Unauthorized") || stderr.contains("credentials"), "{stderr}");
}
