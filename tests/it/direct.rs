//! `--direct`: no Dex at all. The projected ServiceAccount token is the credential, for a
//! target API server (Kubernetes ≥ 1.30) that trusts the source cluster's issuer itself.

use std::path::Path;

use testkit::{ApiServer, ApiServerConfig, SOURCE_ISSUER, SigningKey};

use crate::kubectl::whoami;
use crate::util::*;

/// The audience the target API server's AuthenticationConfiguration expects.
const TARGET: &str = "https://target.example.com";

fn direct(env: &Env, token_file: &Path) -> Cmd {
    let mut cmd = env.bare();
    cmd.arg("--direct").arg("--token-file").arg(token_file);
    cmd
}

fn target_token(env: &Env, ttl: i64) -> (String, std::path::PathBuf) {
    let token = testkit::mint_sa_token("argocd", "argocd-application-controller", TARGET, ttl);
    let file = env.dir.write("target-token", format!("{token}\n"));
    (token, file)
}

#[test]
fn the_token_file_is_the_credential() {
    let env = Env::new();
    let (token, file) = target_token(&env, 3600);
    let before = now();
    let credential = direct(&env, &file).run().success();
    assert_eq!(credential.token, token);
    let exp = testkit::decode_payload(&token).and_then(|p| p.split("\"exp\":").nth(1).map(String::from)).unwrap();
    let exp: i64 = exp.trim_end_matches('}').split(',').next().unwrap().parse().unwrap();
    assert_eq!(parse_rfc3339(credential.expiration.as_deref().unwrap()), exp - 60);
    assert!(exp - 60 >= before);

    // from the variable too; no request anywhere, no cache written
    let credential = env.bare().env("TOKENXCHANGE_DIRECT", "1").arg("--token-file").arg(&file).run().success();
    assert_eq!(credential.token, token);
    assert_eq!(env.dex.requests().len(), 0);
    assert!(!env.dir.join("home/.kube").exists(), "nothing is cached");

    // re-read on every run
    let (rotated, _) = target_token(&env, 7200);
    assert_eq!(direct(&env, &file).run().success().token, rotated);
}

#[test]
fn tokens_that_cannot_be_credentials_are_exit_3() {
    let env = Env::new();
    let opaque = env.dir.write("opaque", "not-a-jwt");
    direct(&env, &opaque).run().failure(3, "with --direct it must be a JWT", &["not-a-jwt"]);
    let no_exp = SigningKey::source_cluster().sign(r#"{"iss":"x","sub":"system:serviceaccount:a:b"}"#);
    let file = env.dir.write("no-exp", &no_exp);
    direct(&env, &file).run().failure(3, "with --direct it must carry a numeric exp claim", &[&no_exp]);
    let expired =
        testkit::mint_sa_token_at("argocd", "argocd-application-controller", TARGET, now() - 7200, now() - 60);
    let file = env.dir.write("expired", &expired);
    direct(&env, &file).run().failure(3, "it expired at ", &[&expired]);
    let future =
        testkit::mint_sa_token_at("argocd", "argocd-application-controller", TARGET, now() + 600, now() + 3600);
    let file = env.dir.write("future", &future);
    direct(&env, &file).run().failure(3, "it is not valid before ", &[&future]);

    // JWT-shaped but not a bearer token a server takes, or an exp that is not a number
    let good = testkit::mint_sa_token("argocd", "argocd-application-controller", TARGET, 3600);
    let [header, payload, signature] = <[&str; 3]>::try_from(good.split('.').collect::<Vec<_>>()).unwrap();
    use base64::Engine;
    let string_exp =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":"{}"}}"#, now() + 3600));
    for bad in [
        format!(".{payload}."),
        format!("{header}.{payload}."),
        format!("x\"y.{payload}.{signature}"),
        format!("é.{payload}.{signature}"),
        format!("{header}.{payload}.{signature}.extra"),
    ] {
        let file = env.dir.write("bad-jwt", &bad);
        direct(&env, &file).run().failure(3, "with --direct it must be a JWT", &[]);
    }
    let file = env.dir.write("string-exp", format!("{header}.{string_exp}.{signature}"));
    direct(&env, &file).run().failure(3, "it must carry a numeric exp claim", &[]);
}

#[test]
fn exchange_flags_are_refused_with_direct() {
    let env = Env::new();
    let (_, file) = target_token(&env, 3600);
    direct(&env, &file)
        .args(["--oidc-endpoint=https://dex/token", "--client-id", "argocd", "--certificate-authority", "/ca.pem"])
        .run()
        .failure(2, "--oidc-endpoint, --client-id, --certificate-authority (for an exchange) cannot go with it", &[]);
    direct(&env, &file).args(["--scopes", "openid", "--audience", "x"]).run().failure(
        2,
        "--scopes, --audience (for an exchange)",
        &[],
    );
}

#[test]
fn inspect_direct_shows_the_username_the_target_derives() {
    let env = Env::new();
    let (token, file) = target_token(&env, 3600);
    let run = direct(&env, &file).arg("inspect").run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!run.stdout.contains(&token), "{run}");
    assert!(run.stdout.contains(&format!("username  {SA_NAME}\n")), "{run}");
    assert!(run.stdout.contains(&format!("          aud: {TARGET}")), "{run}");
    let run = direct(&env, &file).args(["inspect", "--username-prefix", "source:"]).run();
    assert!(run.stdout.contains(&format!("username  source:{SA_NAME}\n")), "{run}");
    let run = direct(&env, &file).args(["inspect", "--username-claim", "email"]).run();
    assert_eq!(run.code, Some(6), "{run}");
    assert!(run.stderr.contains("the subject token has no string claim 'email'"), "{run}");
    assert_eq!(env.dex.requests().len(), 0);
}

/// Real kubectl, every version here, against an API server that trusts the source
/// cluster's issuer (claim `sub`, prefix `source:`) beside Dex.
#[test]
fn kubectl_authenticates_with_the_projected_token_itself() {
    let kubectls = crate::kubectl::every_kubectl("the --direct end-to-end test");
    if kubectls.is_empty() {
        return;
    }
    let env = Env::new();
    let api = ApiServer::start_with(vec![
        crate::kubectl::api_server_config(&env),
        ApiServerConfig {
            issuer: SOURCE_ISSUER.into(),
            client_id: TARGET.into(),
            key: SigningKey::source_cluster(),
            username_claim: "sub".into(),
            username_prefix: "source:".into(),
        },
    ]);
    let (_, file) = target_token(&env, 3600);
    let args = ["--direct".to_string(), format!("--token-file={}", file.display())];
    for api_version in ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"] {
        for kubectl in &kubectls {
            let name = kubectl.file_name().unwrap().to_string_lossy().into_owned();
            let config = kubeconfig(&api.url(), &api.ca_pem(), api_version, Path::new(BIN), &args);
            let path = env.dir.write(&format!("kubeconfig-direct-{name}"), config);
            let (code, stdout, stderr) = whoami(kubectl, &path, &env.home());
            assert_eq!(code, Some(0), "{name} {api_version}\nstdout: {stdout}\nstderr: {stderr}");
            assert!(stdout.contains(&format!("source:{SA_NAME}")), "{name} {api_version}: {stdout}");
        }
    }
    assert_eq!(env.dex.requests().len(), 0, "--direct never talks to Dex");
}

/// The example cluster Secret of `deploy/direct`, its token path mapped onto the test's
/// file, authenticates real kubectl as the source ServiceAccount, without Dex.
#[test]
fn the_direct_cluster_secret_example_authenticates() {
    use miniserde::json::Value;
    let Some(kubectl) = crate::kubectl::newest_kubectl("the --direct cluster Secret end-to-end test") else { return };
    let config = crate::kubectl::cluster_secret_config("deploy/direct/cluster-secret.yaml");
    let Some(Value::Object(exec)) = config.get("execProviderConfig") else { panic!("no execProviderConfig") };
    let Some(Value::Array(args)) = exec.get("args") else { panic!("no args") };
    let env = Env::new();
    let (_, file) = target_token(&env, 3600);
    let mapped: Vec<String> = args
        .iter()
        .map(|arg| match arg {
            Value::String(s) => s.replace("/var/run/secrets/tokenxchange/token", &file.to_string_lossy()),
            other => panic!("argument {other:?} is not a string"),
        })
        .collect();
    assert_eq!(mapped, ["--direct".to_string(), "--token-file".into(), file.display().to_string()]);
    let api = ApiServer::start_with(vec![ApiServerConfig {
        issuer: SOURCE_ISSUER.into(),
        client_id: TARGET.into(),
        key: SigningKey::source_cluster(),
        username_claim: "sub".into(),
        username_prefix: "source:".into(),
    }]);
    let path = env.dir.write(
        "kubeconfig-direct-secret",
        kubeconfig(&api.url(), &api.ca_pem(), "client.authentication.k8s.io/v1", Path::new(BIN), &mapped),
    );
    let (code, stdout, stderr) = whoami(&kubectl, &path, &env.home());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("source:{SA_NAME}")), "{stdout}");
}
