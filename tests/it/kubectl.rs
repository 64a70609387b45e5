//! End to end with real kubectl: a kubeconfig whose user runs the binary through `exec`,
//! against a kube-apiserver stand-in that verifies the Dex-signed JWT.

use std::path::Path;

use testkit::{ApiServer, ApiServerConfig, Cluster, User};

use crate::util::*;

pub use testkit::{every_kubectl, newest_kubectl, whoami};

/// The API server stand-in trusting the test Dex of `env` for this client.
pub fn api_server(env: &Env) -> ApiServer {
    ApiServer::start(api_server_config(env))
}

/// The target API server's settings for the test Dex: claim `name`, prefix `oidc:`.
pub fn api_server_config(env: &Env) -> ApiServerConfig {
    ApiServerConfig::new(&env.dex.issuer(), CLIENT_ID)
}

pub fn plugin_args(env: &Env, cache_dir: &Path) -> Vec<String> {
    vec![
        format!("--oidc-endpoint={}", env.dex.token_endpoint()),
        format!("--client-id={CLIENT_ID}"),
        format!("--client-secret={CLIENT_SECRET}"),
        "--dex-connector=kubernetes".into(),
        format!("--token-file={}", env.token_file.display()),
        format!("--certificate-authority={}", env.ca.display()),
        format!("--cache-dir={}", cache_dir.display()),
    ]
}

#[test]
fn kubectl_auth_whoami_authenticates_through_the_plugin() {
    let kubectls = every_kubectl("the end-to-end test with real kubectl");
    if kubectls.is_empty() {
        return;
    }
    let env = Env::new();
    let api = api_server(&env);
    let expected = format!("oidc:{SA_NAME}");
    for api_version in ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"] {
        for kubectl in &kubectls {
            let name = kubectl.file_name().unwrap().to_string_lossy().into_owned();
            // A fresh cache per run, so every kubectl really runs an exchange.
            let cache = TempDir::new("kubectl-cache");
            let config =
                kubeconfig(&api.url(), &api.ca_pem(), api_version, Path::new(BIN), &plugin_args(&env, cache.path()));
            let path = env.dir.write(&format!("kubeconfig-{name}"), config);
            let before = env.dex.token_requests();
            let (code, stdout, stderr) = whoami(kubectl, &path, &env.home());
            assert_eq!(code, Some(0), "{name} {api_version}\nstdout: {stdout}\nstderr: {stderr}");
            assert!(stdout.contains(&expected), "{name} {api_version}: whoami printed\n{stdout}\nstderr: {stderr}");
            assert_eq!(env.dex.token_requests(), before + 1, "{name} {api_version}: one exchange per kubectl run");
            eprintln!("{name} with exec {api_version}: {expected}");
        }
    }
    assert!(!api.tokens_seen().is_empty());
}

#[test]
fn kubectl_shows_the_plugin_error() {
    let Some(kubectl) = newest_kubectl("the end-to-end failure test with real kubectl") else { return };
    let env = Env::new();
    let api = api_server(&env);
    let cache = TempDir::new("kubectl-cache");
    let mut args = plugin_args(&env, cache.path());
    args.push("--client-secret=wrong-secret-value".into());
    let config = kubeconfig(&api.url(), &api.ca_pem(), "client.authentication.k8s.io/v1", Path::new(BIN), &args);
    let path = env.dir.write("kubeconfig-wrong", config);
    let (code, stdout, stderr) = whoami(&kubectl, &path, &env.home());
    assert_ne!(code, Some(0), "{stdout}");
    assert!(stderr.contains("tokenxchange: error: token exchange refused: HTTP 401 invalid_client"), "{stderr}");
    assert!(!stderr.contains("wrong-secret-value") && !stderr.contains(&env.subject), "{stderr}");
    assert!(api.tokens_seen().is_empty());
}

/// The rule that a test which cannot run fails in CI, proved on this binary: one kubectl
/// test run again with kubectl hidden from PATH passes saying it skipped, and under
/// `CI=true` fails naming kubectl.
#[test]
fn without_kubectl_a_kubectl_test_fails_under_ci() {
    let test_binary = std::env::current_exe().expect("the test binary");
    let no_kubectl = TempDir::new("path-without-kubectl");
    let run_hidden = |ci: Option<&str>| {
        let mut command = std::process::Command::new(&test_binary);
        command
            .args(["--exact", "kubectl::kubectl_shows_the_plugin_error", "--nocapture", "--test-threads=1"])
            .env("PATH", no_kubectl.path())
            .env_remove("CI");
        if let Some(ci) = ci {
            command.env("CI", ci);
        }
        let output = command.output().expect("run the test binary again");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    };

    let (passed, text) = run_hidden(None);
    assert!(passed && text.contains("1 passed"), "{text}");
    assert!(text.contains("kubectl on PATH is missing: skipping the end-to-end failure test"), "{text}");

    let (passed, text) = run_hidden(Some("true"));
    assert!(!passed && text.contains("1 failed"), "{text}");
    assert!(
        text.contains("the end-to-end failure test with real kubectl cannot run: kubectl on PATH is missing"),
        "{text}"
    );
}

/// One exec configuration, two target clusters: each cluster's `config` extension picks
/// its own audience and connector (client-go sends it with `provideClusterInfo: true`).
#[test]
fn per_cluster_settings_from_the_kubeconfig_extension() {
    let Some(kubectl) = newest_kubectl("the per-cluster end-to-end test with real kubectl") else { return };
    let env = Env::with(
        testkit::DexConfig {
            connectors: vec!["kubernetes".into(), "kubernetes-b".into()],
            ..testkit::DexConfig::default()
        }
        .trusting(&["cluster-a", "cluster-b", "shared", "cluster-c"]),
    );
    let api = api_server(&env);
    let cache = TempDir::new("per-cluster-cache");
    let (server, ca_pem) = (api.url(), api.ca_pem());
    let cluster = |name, extension| Cluster { name, server: &server, ca_pem: &ca_pem, exec_extension: Some(extension) };
    // Cluster c tries to send the secrets elsewhere: the exec config's --oidc-endpoint
    // flag wins over a cluster's tokenEndpoint (flags > cluster > variables).
    let clusters = [
        cluster("a", "{audience: cluster-a, connectorID: kubernetes}"),
        cluster("b", "{audience: [cluster-b, shared], connectorID: kubernetes-b}"),
        cluster("c", "{audience: cluster-c, connectorID: kubernetes, tokenEndpoint: 'https://127.0.0.1:9/elsewhere'}"),
        cluster("bad", "{audiance: typo}"),
    ];
    // The connector is left to the clusters: a flag would win over their connectorID.
    let args: Vec<String> =
        plugin_args(&env, cache.path()).into_iter().filter(|a| !a.starts_with("--dex-connector")).collect();
    let user = User::Exec {
        api_version: "client.authentication.k8s.io/v1",
        command: Path::new(BIN),
        args: &args,
        provide_cluster_info: true,
    };
    // The same kubeconfig once per current context.
    let run = |context: &str| {
        let path = env.dir.write(&format!("kubeconfig-{context}"), testkit::kubeconfig(&clusters, &user, context));
        let (code, stdout, stderr) = whoami(&kubectl, &path, &env.home());
        (code == Some(0), stdout, stderr)
    };
    for context in ["a", "b", "c"] {
        let (ok, stdout, stderr) = run(context);
        assert!(ok && stdout.contains(&format!("oidc:{SA_NAME}")), "context {context}\n{stdout}\n{stderr}");
    }
    let seen: Vec<(Vec<String>, Option<String>)> = env
        .dex
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| {
            (r.fields("audience").into_iter().map(String::from).collect(), r.field("connector_id").map(String::from))
        })
        .collect();
    assert_eq!(
        seen,
        [
            (vec!["cluster-a".to_string()], Some("kubernetes".to_string())),
            (vec!["cluster-b".to_string(), "shared".to_string()], Some("kubernetes-b".to_string())),
            (vec!["cluster-c".to_string()], Some("kubernetes".to_string())),
        ]
    );

    let (ok, _, stderr) = run("bad");
    assert!(!ok);
    assert!(stderr.contains("tokenxchange: error: unknown key 'audiance' in the cluster's exec config"), "{stderr}");
}

/// The `config` JSON of the example Argo CD cluster Secret (the block under `config: |`).
pub fn cluster_secret_config(file: &str) -> miniserde::json::Object {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let yaml = std::fs::read_to_string(&path).unwrap();
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "config: |").skip(1);
    let first = lines.next().expect("config block");
    let indent = first.len() - first.trim_start().len();
    let mut json = first.trim_start().to_string();
    for line in lines.take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent) {
        json.push('\n');
        json.push_str(line.get(indent..).unwrap_or(""));
    }
    match miniserde::json::from_str(&json).expect("the cluster Secret's config is JSON") {
        miniserde::json::Value::Object(object) => object,
        _ => panic!("config is not an object"),
    }
}

/// The example cluster Secret's exec settings, with the pod's paths and the example Dex
/// URL mapped onto the test environment, authenticate real kubectl as documented.
#[test]
fn the_argocd_cluster_secret_example_authenticates() {
    use miniserde::json::Value;
    let Some(kubectl) = newest_kubectl("the cluster Secret end-to-end test") else { return };
    let config = cluster_secret_config("deploy/argocd/cluster-secret.yaml");
    let Some(Value::Object(exec)) = config.get("execProviderConfig") else { panic!("no execProviderConfig") };
    assert!(exec.get("env").is_none(), "settings go in args, not env");
    let text = |key: &str| match exec.get(key) {
        Some(Value::String(s)) => s.clone(),
        other => panic!("execProviderConfig.{key}: {other:?}"),
    };
    assert_eq!(text("command"), "/usr/local/bin/tokenxchange");
    assert_eq!(text("apiVersion"), "client.authentication.k8s.io/v1");
    assert!(!text("installHint").is_empty());
    let Some(Value::Array(args)) = exec.get("args") else { panic!("no args") };
    assert!(matches!(exec.get("provideClusterInfo"), Some(Value::Bool(true))), "provideClusterInfo: true");

    // The Secret asks for audience prod-eu: Dex's static client prod-eu trusts argocd,
    // and the target accepts that audience only.
    let env = Env::with(testkit::DexConfig::default().trusting(&["prod-eu"]));
    let api = ApiServer::start(ApiServerConfig::new(&env.dex.issuer(), "prod-eu"));
    let secret_file = env.dir.write("client-secret", format!("{CLIENT_SECRET}\n"));
    let mut mapped: Vec<String> = args
        .iter()
        .map(|arg| match arg {
            Value::String(s) => s
                .replace("https://dex.example.com/token", &env.dex.token_endpoint())
                .replace("/var/run/secrets/tokenxchange/token", &env.token_file.to_string_lossy())
                .replace("/var/run/secrets/tokenxchange/client-secret", &secret_file.to_string_lossy()),
            other => panic!("argument {other:?} is not a string"),
        })
        .collect();
    // The example trusts Dex through public roots; the test Dex has a private CA.
    mapped.push(format!("--certificate-authority={}", env.ca.display()));
    let cache = TempDir::new("secret-cache");
    mapped.push(format!("--cache-dir={}", cache.path().display()));

    let path = env.dir.write(
        "kubeconfig-secret",
        kubeconfig(&api.url(), &api.ca_pem(), &text("apiVersion"), Path::new(BIN), &mapped),
    );
    let (code, stdout, stderr) = whoami(&kubectl, &path, &env.home());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("oidc:system:serviceaccount:argocd:argocd-application-controller"), "{stdout}");
    assert_eq!(env.dex.token_requests(), 1);
}
