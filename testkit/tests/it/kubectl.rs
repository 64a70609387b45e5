//! The real kubectl against the API server stand-in: every kubectl version installed here
//! runs `auth whoami` with a static token that the test Dex issued, and must print the
//! prefixed ServiceAccount name. Without kubectl the test says so and passes, or fails
//! under `CI=true`.

use testkit::{
    ApiServer, ApiServerConfig, Dex, DexConfig, SigningKey, TempDir, every_kubectl, mint_sa_token, newest_kubectl,
    token_kubeconfig, whoami,
};

use crate::curl::curl;

const USERNAME: &str = "oidc:system:serviceaccount:argocd:argocd-application-controller";

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

#[test]
fn every_kubectl_prints_the_oidc_username() {
    let kubectls = every_kubectl("the kubectl auth whoami check");
    if kubectls.is_empty() {
        return;
    }
    let dex = Dex::start(DexConfig::default());
    let api = ApiServer::start(ApiServerConfig::new(&dex.issuer(), "argocd"));
    let dir = TempDir::new("kubectl");
    let token = exchanged_token(&dex, &dir);
    let config = dir.write("kubeconfig", token_kubeconfig(&api.url(), &api.ca_pem(), &token));
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("create HOME");

    for kubectl in kubectls {
        let before = api.requests().len();
        let (code, stdout, stderr) = whoami(&kubectl, &config, &home);
        let calls = api.requests()[before..].to_vec();
        eprintln!("{}: {calls:?}", kubectl.display());
        assert!(
            code == Some(0) && stdout.contains(USERNAME),
            "{} auth whoami\nexit: {code:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            kubectl.display()
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
    let Some(kubectl) = newest_kubectl("the kubectl refusal check") else { return };
    let api = ApiServer::start(ApiServerConfig::new("https://127.0.0.1:1/dex", "argocd"));
    let dir = TempDir::new("kubectl");
    let forged = SigningKey::source_cluster()
        .sign(r#"{"iss":"https://127.0.0.1:1/dex","aud":"argocd","exp":9999999999,"name":"intruder"}"#);
    let config = dir.write("kubeconfig", token_kubeconfig(&api.url(), &api.ca_pem(), &forged));
    let (code, _, stderr) = whoami(&kubectl, &config, dir.path());
    assert!(code.is_some_and(|code| code != 0), "kubectl accepted a forged token");
    assert!(stderr.contains("Unauthorized") || stderr.contains("credentials"), "{stderr}");
}
