//! The operator policy at /etc/tokenxchange/policy.json, destination binding and
//! per-target audiences, tried as the writer of a cluster Secret would try them. Every
//! run that needs a policy runs in a private mount namespace (testkit's `PolicyDir`), so
//! nothing depends on, or touches, this machine's /etc.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use miniserde::json::{self, Value};
use testkit::{ApiServer, ApiServerConfig, Client, Cluster, DexConfig, Fault, User};

use crate::util::*;

/// A change to a run's arguments and variables.
type Change<'a> = dyn Fn(&mut Vec<String>, &mut Vars) + 'a;
type Vars = Vec<(&'static str, String)>;
/// Lays out a policy directory.
type Setup = dyn Fn(&Path);

/// A listener that never answers and counts the connections made to it.
struct Trap(TcpListener);

impl Trap {
    fn new() -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Trap(listener)
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.0.local_addr().unwrap().port())
    }

    /// Connections made since the last call (the kernel queues them even unanswered).
    fn connections(&self) -> usize {
        let mut count = 0;
        loop {
            match self.0.accept() {
                Ok(_) => count += 1,
                Err(err) if err.kind() == ErrorKind::WouldBlock => return count,
                Err(err) => panic!("accept: {err}"),
            }
        }
    }
}

fn js(text: &str) -> String {
    json::to_string(text)
}

/// The test Dex with static clients `prod-eu` and `prod-us` that trust `argocd`.
fn dex_with_targets() -> DexConfig {
    let mut config = DexConfig::default();
    for id in ["prod-eu", "prod-us"] {
        config.clients.push(Client {
            id: id.into(),
            secret: format!("{id}-peer-secret"),
            trusted_peers: vec![CLIENT_ID.into()],
            ..Client::default()
        });
    }
    config
}

/// A policy allowing `endpoint` (and the test Dex's issuer), the client, and the files of
/// `env`'s directory; `clusters` is the JSON of that key, or nothing.
fn policy_json(env: &Env, endpoint: &str, clusters: Option<&str>) -> String {
    let clusters = clusters.map_or(String::new(), |c| format!(r#","clusters":{c}"#));
    format!(
        r#"{{"endpoints":[{}],"issuers":[{}],"clientIDs":["argocd"],"files":[{}]{clusters}}}"#,
        js(endpoint),
        js(&env.dex.issuer()),
        js(&format!("{}/", env.dir.path().display())),
    )
}

/// `{"spec":{"cluster":{...}}}` for `server` as client-go sends it with provideClusterInfo.
fn exec_info(server: &str, ca_pem: Option<&str>, insecure: bool) -> String {
    let mut cluster = format!(r#""server":{}"#, js(server));
    if let Some(pem) = ca_pem {
        cluster.push_str(&format!(r#","certificate-authority-data":{}"#, js(&STANDARD.encode(pem))));
    }
    if insecure {
        cluster.push_str(r#","insecure-skip-tls-verify":true"#);
    }
    format!(
        r#"{{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{{"interactive":false,"cluster":{{{cluster}}}}}}}"#
    )
}

fn refused(run: &Run, needle: &str, env: &Env) {
    run.failure(2, needle, &env.secrets());
    assert!(run.stderr.contains("refused by the operator policy /etc/tokenxchange/policy.json: "), "{run}");
}

#[test]
fn without_a_policy_file_nothing_changes_and_verbose_says_so() {
    if !PolicyDir::available("the absent-policy test") {
        return;
    }
    let env = Env::new();
    let policy = PolicyDir::new();
    let run = env.cmd().arg("-v").run_in(&policy);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("tokenxchange: no operator policy at /etc/tokenxchange/policy.json"), "{run}");
    let run = env.cmd().arg("inspect").run_in(&policy);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.starts_with(
            "policy    file: /etc/tokenxchange/policy.json\n          in force: no: no file there, so nothing is restricted\n"
        ),
        "{run}"
    );
}

#[test]
fn a_valid_policy_allows_the_run_and_names_the_rules() {
    if !PolicyDir::available("the valid-policy test") {
        return;
    }
    let env = Env::new();
    for configmap in [false, true] {
        let policy = PolicyDir::new();
        let text = policy_json(&env, &env.dex.token_endpoint(), None);
        if configmap {
            policy.write_as_configmap(&text);
        } else {
            policy.write(&text);
        }
        env.cmd().run_in(&policy).success();
        let run = env.cmd().arg("-v").run_in(&policy);
        assert_eq!(run.code, Some(0), "{run}");
        let allowed = "tokenxchange: operator policy /etc/tokenxchange/policy.json: allowed by ";
        for rule in [
            format!("endpoints: {}", env.dex.token_endpoint()),
            "clientIDs: argocd".into(),
            format!("files: {}/ (--token-file {})", env.dir.path().display(), env.token_file.display()),
            "clusters: none, so the credential is not bound to a destination".into(),
        ] {
            assert!(run.stderr.contains(&format!("{allowed}{rule}\n")), "{rule}\n{run}");
        }
        let run = env.cmd().args(["inspect", "-o", "json"]).run_in(&policy);
        assert_eq!(run.code, Some(0), "{run}");
        let Ok(Value::Object(report)) = json::from_str::<Value>(&run.stdout) else { panic!("{run}") };
        let Some(Value::Object(section)) = report.get("policy") else { panic!("{run}") };
        assert_eq!(json::to_string(section.get("in force").unwrap()), r#""yes""#);
        assert!(json::to_string(section.get("allowed by").unwrap()).contains("clientIDs: argocd"), "{run}");
    }
    assert_eq!(env.dex.token_requests(), 6, "three runs per layout");

    // inspect reports a refusal at its first step, and sends nothing
    let policy = PolicyDir::new();
    policy.write(&policy_json(&env, "https://dex.example.com/token", None));
    let run = env.cmd().arg("inspect").run_in(&policy);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stdout.starts_with("policy    file: /etc/tokenxchange/policy.json\n          in force: yes\n"),
        "{run}"
    );
    let refusal = format!(
        "failed at policy: refused by the operator policy /etc/tokenxchange/policy.json: --oidc-endpoint '{}' is not in the policy's endpoints\n",
        env.dex.token_endpoint()
    );
    assert!(run.stdout.ends_with(&refusal), "{run}");
    assert_eq!(env.dex.token_requests(), 6);
}

#[test]
fn a_policy_file_that_cannot_be_used_fails_closed() {
    if !PolicyDir::available("the broken-policy test") {
        return;
    }
    let env = Env::new();
    let cases: [(&str, &Setup, &str); 8] = [
        ("malformed", &|dir| drop(std::fs::write(dir.join("policy.json"), "{\"endpoints\": [")), "not valid JSON"),
        (
            "unknown key",
            &|dir| drop(std::fs::write(dir.join("policy.json"), r#"{"endpoint":["https://x/token"]}"#)),
            "unknown key 'endpoint' (known keys: endpoints, issuers, clientIDs, files, insecure, inlineData, clusters)",
        ),
        ("not an object", &|dir| drop(std::fs::write(dir.join("policy.json"), "[]")), "not a JSON object"),
        (
            "a repeated key",
            &|dir| drop(std::fs::write(dir.join("policy.json"), r#"{"insecure":false,"insecure":true}"#)),
            "key 'insecure' appears twice in one object: which one counts depends on the reader",
        ),
        ("a directory", &|dir| std::fs::create_dir(dir.join("policy.json")).unwrap(), "not a regular file"),
        (
            "a FIFO",
            &|dir| {
                let status = std::process::Command::new("mkfifo").arg(dir.join("policy.json")).status().unwrap();
                assert!(status.success());
            },
            "not a regular file",
        ),
        (
            "a dangling symlink",
            &|dir| std::os::unix::fs::symlink("..data/policy.json", dir.join("policy.json")).unwrap(),
            "a symbolic link to nothing",
        ),
        (
            "a symlink loop",
            &|dir| std::os::unix::fs::symlink("policy.json", dir.join("policy.json")).unwrap(),
            "Too many levels of symbolic links",
        ),
    ];
    for (name, make, reason) in cases {
        let policy = PolicyDir::new();
        make(policy.path());
        let run = env.cmd().run_in(&policy);
        run.failure(2, &format!("cannot use operator policy /etc/tokenxchange/policy.json: {reason}"), &env.secrets());
        assert!(run.elapsed < WATCHDOG, "{name} blocked\n{run}");
    }
    // unreadable: a file only root may read, and a run as another user
    let policy = PolicyDir::new();
    let file = policy.write(&policy_json(&env, &env.dex.token_endpoint(), None));
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut nobody = std::process::Command::new("setpriv");
    nobody
        .env_clear()
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(env.cmd().command().get_args());
    let output = policy.wrap(&nobody).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    assert_eq!(
        stderr,
        "tokenxchange: error: cannot use operator policy /etc/tokenxchange/policy.json: Permission denied (os error 13)\n"
    );
    assert_eq!(env.dex.requests().len(), 0, "nothing may be sent");
}

/// Every key refuses a changed value, and the refused run makes no connection at all.
#[test]
fn each_key_refuses_a_changed_value_without_connecting() {
    if !PolicyDir::available("the policy key test") {
        return;
    }
    let env = Env::new();
    let trap = Trap::new();
    let endpoint = trap.url("/token");
    let policy = PolicyDir::new();
    policy.write(&policy_json(&env, &endpoint, None));
    let outside = TempDir::new("outside");
    let outside_file = outside.write("file", "x");
    let secret_file = env.dir.write("client-secret", CLIENT_SECRET);
    let cmd = |changes: &Change<'_>| {
        let mut args: Vec<String> = vec![
            format!("--oidc-endpoint={endpoint}"),
            format!("--client-id={CLIENT_ID}"),
            format!("--client-secret-file={}", secret_file.display()),
            "--dex-connector=kubernetes".into(),
            format!("--token-file={}", env.token_file.display()),
            format!("--certificate-authority={}", env.ca.display()),
            "--no-cache".into(),
            "--timeout=2s".into(),
            "--retries=0".into(),
        ];
        let mut vars = Vec::new();
        changes(&mut args, &mut vars);
        let mut cmd = env.bare();
        cmd.args(&args);
        for (name, value) in vars {
            cmd.env(name, value);
        }
        cmd.run_in(&policy)
    };
    let set = |flag: &'static str, value: String| {
        move |args: &mut Vec<String>, _: &mut Vars| {
            args.retain(|a| !a.starts_with(&format!("{flag}=")));
            args.push(format!("{flag}={value}"));
        }
    };
    // The control: unchanged, the run is allowed and goes to the (silent) endpoint.
    let run = cmd(&|_, _| {});
    assert_eq!(run.code, Some(5), "{run}");
    assert!(trap.connections() >= 1, "the allowed run must connect\n{run}");

    let dir = env.dir.path().display().to_string();
    // A symbolic link to a directory elsewhere, inside the allowed directory: link/../token
    // reads as the allowed token, but the kernel opens the token beside link's target.
    std::fs::create_dir(outside.join("sub")).unwrap();
    outside.write("token", "not the allowed token");
    std::os::unix::fs::symlink(outside.join("sub"), env.dir.join("link")).unwrap();
    let cases: Vec<(Box<Change<'_>>, String)> = vec![
        (
            Box::new(set("--token-file", format!("{dir}/link/../token"))),
            format!(
                "--token-file '{dir}/link/../token' goes up ('..') out of the symbolic link {dir}/link, so the file opened is not the one the path reads as; write it without '..'"
            ),
        ),
        (
            Box::new(|_: &mut Vec<String>, vars: &mut Vars| {
                vars.push(("SSL_CERT_DIR", format!("{}/link/..", env.dir.path().display())))
            }),
            format!(
                "SSL_CERT_DIR '{dir}/link/..' goes up ('..') out of the symbolic link {dir}/link, so the file opened is not the one the path reads as; write it without '..'"
            ),
        ),
        (
            Box::new(set("--oidc-endpoint", trap.url("/elsewhere"))),
            format!("--oidc-endpoint '{}' is not in the policy's endpoints", trap.url("/elsewhere")),
        ),
        (
            Box::new(|args: &mut Vec<String>, _: &mut Vars| {
                args.retain(|a| !a.starts_with("--oidc-endpoint="));
                args.push(format!("--issuer={}", trap.url("/dex")));
            }),
            format!("--issuer '{}' is not in the policy's issuers", trap.url("/dex")),
        ),
        (Box::new(set("--client-id", "other".into())), "--client-id 'other' is not in the policy's clientIDs".into()),
        (
            Box::new(set("--token-file", "/proc/self/environ".into())),
            "--token-file '/proc/self/environ' is not in the policy's files".into(),
        ),
        (
            Box::new(set("--token-file", format!("{dir}/../{}", outside_file.strip_prefix(std::env::temp_dir()).unwrap().display()))),
            "is not in the policy's files".into(),
        ),
        (
            Box::new(set("--client-secret-file", outside_file.display().to_string())),
            format!("--client-secret-file '{}' is not in the policy's files", outside_file.display()),
        ),
        (
            Box::new(set("--certificate-authority", outside_file.display().to_string())),
            format!("--certificate-authority '{}' is not in the policy's files", outside_file.display()),
        ),
        (
            Box::new(|_: &mut Vec<String>, vars: &mut Vars| {
                vars.push(("SSL_CERT_FILE", "/tmp/evil-ca.pem".into()))
            }),
            "SSL_CERT_FILE '/tmp/evil-ca.pem' is not in the policy's files".into(),
        ),
        (
            Box::new(|_: &mut Vec<String>, vars: &mut Vars| vars.push(("SSL_CERT_DIR", "/tmp".into()))),
            "SSL_CERT_DIR '/tmp' is not a directory in the policy's files".into(),
        ),
        (
            Box::new(|args: &mut Vec<String>, _: &mut Vars| {
                args.push("--insecure-skip-tls-verify".into())
            }),
            "--insecure-skip-tls-verify is not allowed (policy key insecure is not true)".into(),
        ),
        (
            Box::new(|args: &mut Vec<String>, _: &mut Vars| args.push("--allow-insecure-http".into())),
            "--allow-insecure-http is not allowed (policy key insecure is not true)".into(),
        ),
        (
            Box::new(|args: &mut Vec<String>, _: &mut Vars| {
                args.retain(|a| !a.starts_with("--certificate-authority="));
                args.push(format!("--certificate-authority-data={}", STANDARD.encode(env.dex.ca_pem())));
            }),
            "--certificate-authority-data (inline data, not shown) is not allowed (policy key inlineData is not true; name a file instead)".into(),
        ),
        (
            Box::new(|_: &mut Vec<String>, vars: &mut Vars| {
                vars.push(("TOKENXCHANGE_CLIENT_KEY_DATA", STANDARD.encode("-----BEGIN PRIVATE KEY-----")));
                vars.push(("TOKENXCHANGE_CLIENT_CERTIFICATE_DATA", STANDARD.encode("-----BEGIN CERTIFICATE-----")));
            }),
            "--client-certificate-data (inline data, not shown) is not allowed".into(),
        ),
    ];
    for (change, needle) in &cases {
        let run = cmd(change.as_ref());
        refused(&run, needle, &env);
        assert_eq!(trap.connections(), 0, "a refused run connected\n{run}");
    }

    // With clusters in the policy: no cluster info, or a server it does not list.
    let clusters = format!(r#"{{{}:{{"audiences":["prod-eu"]}}}}"#, js("https://prod-eu.example.com:6443"));
    policy.write(&policy_json(&env, &endpoint, Some(&clusters)));
    let audience = |args: &mut Vec<String>, _: &mut Vars| args.push("--audience=prod-eu".into());
    refused(&cmd(&audience), "KUBERNETES_EXEC_INFO carries no spec.cluster.server", &env);
    let elsewhere = |args: &mut Vec<String>, vars: &mut Vars| {
        args.push("--audience=prod-eu".into());
        vars.push(("KUBERNETES_EXEC_INFO", exec_info(&trap.url(""), None, false)));
    };
    refused(
        &cmd(&elsewhere),
        &format!("the cluster's server '{}' is not in the policy's clusters", trap.url("")),
        &env,
    );
    // a second audience smuggled in as Dex's cross-client scope counts as one
    let smuggled = |args: &mut Vec<String>, vars: &mut Vars| {
        args.push("--audience=prod-eu".into());
        args.push("--scopes=openid,audience:server:client_id:prod-us".into());
        vars.push(("KUBERNETES_EXEC_INFO", exec_info("https://prod-eu.example.com:6443", None, false)));
    };
    refused(
        &cmd(&smuggled),
        "--audience prod-eu, prod-us for the cluster https://prod-eu.example.com:6443: the policy's clusters['https://prod-eu.example.com:6443'].audiences are exactly prod-eu",
        &env,
    );
    // the listed server, verified as another name (with a proxy-url of the writer's own)
    let renamed = |args: &mut Vec<String>, vars: &mut Vars| {
        args.push("--audience=prod-eu".into());
        let info = exec_info("https://prod-eu.example.com:6443", None, false).replace(
            r#""server":"#,
            r#""tls-server-name":"attacker.example.net","proxy-url":"http://127.0.0.1:9","server":"#,
        );
        vars.push(("KUBERNETES_EXEC_INFO", info));
    };
    refused(
        &cmd(&renamed),
        "the cluster https://prod-eu.example.com:6443 sets tls-server-name 'attacker.example.net', not its server's host prod-eu.example.com",
        &env,
    );
    assert_eq!(trap.connections(), 0);
    let listed = |args: &mut Vec<String>, vars: &mut Vars| {
        args.push("--audience=prod-eu".into());
        vars.push(("KUBERNETES_EXEC_INFO", exec_info("https://PROD-EU.example.com:6443/", None, false)));
    };
    assert_eq!(cmd(&listed).code, Some(5), "the listed server is allowed");
    assert!(trap.connections() >= 1);
}

/// A discovered token endpoint must be in `endpoints`, and so must a remembered one.
#[test]
fn discovered_and_remembered_endpoints_must_be_allowed() {
    if !PolicyDir::available("the discovery policy test") {
        return;
    }
    let env = Env::new();
    let policy = PolicyDir::new();
    // Remember the endpoint without a policy first.
    env.issuer().run_in(&policy).success();
    assert_eq!(env.dex.token_requests(), 1);
    policy.write(&policy_json(&env, "https://dex.example.com/token", None));
    let run = env.issuer().args(["--force-refresh", "-v"]).run_in(&policy);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("is not in the policy's endpoints; discovering again"), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "tokenxchange: error: refused by the operator policy /etc/tokenxchange/policy.json: the token endpoint {} (discovered) is not in the policy's endpoints",
            env.dex.token_endpoint()
        )),
        "{run}"
    );
    assert_eq!(env.dex.token_requests(), 1, "nothing was posted");
    policy.write(&policy_json(&env, &env.dex.token_endpoint(), None));
    env.issuer().arg("--force-refresh").run_in(&policy).success();
    assert_eq!(env.dex.token_requests(), 2);
}

/// The policy is checked before the cache: a credential cached for a server that the
/// policy no longer lists is not served.
#[test]
fn the_policy_is_checked_before_the_cache() {
    if !PolicyDir::available("the policy-before-cache test") {
        return;
    }
    let env = Env::with(dex_with_targets());
    let policy = PolicyDir::new();
    let server = "https://prod-eu.example.com:6443";
    let info = exec_info(server, None, false);
    policy.write(&policy_json(
        &env,
        &env.dex.token_endpoint(),
        Some(&format!(r#"{{{}:{{"audiences":["prod-eu"]}}}}"#, js(server))),
    ));
    let cached = || {
        let mut cmd = env.cached();
        cmd.arg("--audience=prod-eu").env("KUBERNETES_EXEC_INFO", &info);
        cmd
    };
    cached().run_in(&policy).success();
    cached().run_in(&policy).success();
    assert_eq!(env.dex.token_requests(), 1, "the second run is a cache hit");
    policy.write(&policy_json(
        &env,
        &env.dex.token_endpoint(),
        Some(r#"{"https://other.example.com":{"audiences":["prod-eu"]}}"#),
    ));
    refused(
        &cached().run_in(&policy),
        "the cluster's server 'https://prod-eu.example.com:6443' is not in the policy's clusters",
        &env,
    );
    assert_eq!(env.dex.token_requests(), 1);
}

/// `--audience` with Dex: the cross-client scope is sent besides RFC 8693 `audience`, and
/// the token's `aud` holds the audience.
#[test]
fn audiences_reach_dex_as_cross_client_scopes() {
    let env = Env::with(dex_with_targets());
    let credential = env.cmd().args(["--audience", "prod-eu"]).run().success();
    let claims = credential.claims();
    assert_eq!(json::to_string(claims.get("aud").unwrap()), r#"["prod-eu","argocd"]"#);
    assert_eq!(claim_str(&claims, "azp").as_deref(), Some("argocd"));
    let request = env.dex.requests().pop().unwrap();
    assert_eq!(request.field("scope"), Some("openid profile federated:id audience:server:client_id:prod-eu"));
    assert_eq!(request.fields("audience"), ["prod-eu"]);

    // a peer that does not trust our client: Dex's bare 500, worded, not retried
    let before = env.dex.token_requests();
    env.cmd().args(["--audience", "prod-asia"]).run().failure(
        4,
        "answered HTTP 500 server_error without a description to the cross-client scopes for audience prod-asia; Dex answers so when a peer is not a static client that trusts this one: add to Dex's staticClients, for each audience, a client with that id whose trustedPeers lists 'argocd' (e.g. id: prod-asia, trustedPeers: [argocd])",
        &env.secrets(),
    );
    assert_eq!(env.dex.token_requests(), before + 1);

    // with Dex an audience is a client id
    env.cmd().args(["--audience", "prod eu"]).run().failure(2, "invalid --audience 'prod eu'", &env.secrets());
    assert_eq!(env.dex.token_requests(), before + 1);
}

/// An answer whose JWT lacks the requested audience is unusable: exit 1, nothing on
/// stdout, nothing cached.
#[test]
fn a_token_without_the_requested_audience_is_refused_and_not_cached() {
    let env = Env::with(dex_with_targets());
    // What a server that ignores `audience` issues: aud is the client only.
    let token = testkit::SigningKey::dex().sign(&format!(
        r#"{{"iss":{},"aud":"argocd","exp":{},"name":"x"}}"#,
        js(&env.dex.issuer()),
        now() + 3600
    ));
    let body = format!(r#"{{"access_token":"{token}","issued_token_type":"{ID_TOKEN}","token_type":"bearer"}}"#);
    for _ in 0..2 {
        env.dex.push_fault(Fault::status(200, "application/json", &body));
        let run = env.cached().args(["--audience", "prod-eu"]).run();
        run.failure(
            1,
            &format!(
                "unusable answer from {}: asked for audience prod-eu, the issued token's aud is \"argocd\"; check that Dex honours cross-client scopes",
                env.dex.token_endpoint()
            ),
            &env.secrets(),
        );
        assert!(!run.stderr.contains(&token), "{run}");
    }
    assert_eq!(env.dex.token_requests(), 2, "nothing was cached");
    // without --dex-connector the fix names the other cause
    env.dex.push_fault(Fault::status(200, "application/json", &body));
    let mut cmd = env.bare();
    cmd.arg(format!("--oidc-endpoint={}", env.dex.token_endpoint()))
        .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--no-cache", "--audience", "prod-eu"])
        .arg("--token-file")
        .arg(&env.token_file)
        .arg("--certificate-authority")
        .arg(&env.ca);
    cmd.run().failure(1, "the identity provider ignores RFC 8693 audience", &env.secrets());
}

/// A target given another target's token refuses it: audiences keep a compromised target
/// from replaying what it receives.
#[test]
fn a_target_refuses_another_targets_token() {
    let Some(kubectl) = testkit::newest_kubectl("the cross-target replay test") else { return };
    let env = Env::with(dex_with_targets());
    let eu = ApiServer::start(ApiServerConfig::new(&env.dex.issuer(), "prod-eu"));
    let us = ApiServer::start(ApiServerConfig::new(&env.dex.issuer(), "prod-us"));
    let token = env.cmd().args(["--audience", "prod-eu"]).run().success().token;
    let at = |api: &ApiServer| {
        let path = env.dir.write("kubeconfig-replay", testkit::token_kubeconfig(&api.url(), &api.ca_pem(), &token));
        testkit::whoami(&kubectl, &path, &env.dir.join("home"))
    };
    let (code, stdout, stderr) = at(&eu);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("oidc:{SA_NAME}")), "{stdout}");
    let (code, stdout, stderr) = at(&us);
    assert_ne!(code, Some(0), "prod-us accepted prod-eu's token\n{stdout}");
    assert!(stderr.contains("Unauthorized"), "{stderr}");
    assert_eq!(us.tokens_seen().len(), 1, "the token reached prod-us and was refused there");
}

/// Real kubectl, two clusters, `provideClusterInfo: true`: each gets its own audience; a
/// server not in the policy, a cluster pointed at the other's server, insecure TLS and a
/// CA that is not the pinned one are refused.
#[test]
fn kubectl_clusters_are_bound_to_their_servers() {
    let Some(kubectl) = testkit::newest_kubectl("the destination binding test with real kubectl") else { return };
    if !PolicyDir::available("the destination binding test with real kubectl") {
        return;
    }
    let env = Env::with(dex_with_targets());
    let eu = ApiServer::start(ApiServerConfig::new(&env.dex.issuer(), "prod-eu"));
    let us = ApiServer::start(ApiServerConfig::new(&env.dex.issuer(), "prod-us"));
    let third = ApiServer::start(ApiServerConfig::new(&env.dex.issuer(), "prod-eu"));
    let policy = PolicyDir::new();
    let clusters = format!(
        r#"{{{}:{{"audiences":["prod-eu"],"certificateAuthorityData":{}}},{}:{{"audiences":["prod-us"]}}}}"#,
        js(&eu.url()),
        js(&STANDARD.encode(eu.ca_pem())),
        js(&us.url())
    );
    policy.write(&policy_json(&env, &env.dex.token_endpoint(), Some(&clusters)));
    let cache = TempDir::new("binding-cache");
    let args: Vec<String> = crate::kubectl::plugin_args(&env, cache.path());
    let user = User::Exec {
        api_version: "client.authentication.k8s.io/v1",
        command: Path::new(BIN),
        args: &args,
        provide_cluster_info: true,
    };
    let (eu_url, us_url, third_url) = (eu.url(), us.url(), third.url());
    let (eu_ca, us_ca, third_ca) = (eu.ca_pem(), us.ca_pem(), third.ca_pem());
    let eu_and_us_ca = format!("{eu_ca}{us_ca}");
    let cluster = |name, server, ca_pem, audience| Cluster { name, server, ca_pem, exec_extension: Some(audience) };
    let clusters = [
        cluster("eu", &eu_url, &eu_ca, "{audience: prod-eu}"),
        cluster("us", &us_url, &us_ca, "{audience: prod-us}"),
        cluster("third", &third_url, &third_ca, "{audience: prod-eu}"),
        cluster("eu-pointed-at-us", &us_url, &us_ca, "{audience: prod-eu}"),
        cluster("eu-insecure", &eu_url, "", "{audience: prod-eu}"),
        cluster("eu-other-ca", &eu_url, &eu_and_us_ca, "{audience: prod-eu}"),
    ];
    let run = |context: &str| {
        let path = env.dir.write(&format!("kubeconfig-{context}"), testkit::kubeconfig(&clusters, &user, context));
        testkit::outcome(policy.wrap(&testkit::whoami_command(&kubectl, &path, &env.dir.join("home"))))
    };
    for (context, api) in [("eu", &eu), ("us", &us)] {
        let (code, stdout, stderr) = run(context);
        assert_eq!(code, Some(0), "{context}\n{stdout}\n{stderr}");
        assert!(stdout.contains(&format!("oidc:{SA_NAME}")), "{context}: {stdout}");
        let seen = api.tokens_seen();
        let claims = testkit::decode_payload(seen.last().unwrap()).unwrap();
        let expected = format!(r#""aud":["prod-{context}","argocd"]"#);
        assert!(claims.contains(&expected), "{context}: {claims}");
    }
    let requests = env.dex.token_requests();
    for (context, needle) in [
        ("third", format!("the cluster's server '{third_url}' is not in the policy's clusters")),
        (
            "eu-pointed-at-us",
            format!(
                "--audience prod-eu for the cluster {us_url}: the policy's clusters['{us_url}'].audiences are exactly prod-us"
            ),
        ),
        ("eu-insecure", format!("the cluster {eu_url} sets insecure-skip-tls-verify: true")),
        (
            "eu-other-ca",
            format!(
                "the certificate-authority-data of the cluster {eu_url} holds a certificate that is not in the policy's clusters['{eu_url}'].certificateAuthorityData"
            ),
        ),
    ] {
        let (code, stdout, stderr) = run(context);
        assert_ne!(code, Some(0), "{context}\n{stdout}");
        assert!(
            stderr.contains(&format!(
                "tokenxchange: error: refused by the operator policy /etc/tokenxchange/policy.json: {needle}"
            )),
            "{context}\n{stderr}"
        );
        assert!(!stderr.contains(&env.subject) && !stderr.contains(CLIENT_SECRET), "{stderr}");
    }
    assert_eq!(env.dex.token_requests(), requests, "refused runs send nothing");
    assert!(third.tokens_seen().is_empty(), "no credential reached the third server");
}

/// `insecure: true` gives up TLS verification, and the exec config sets the proxy
/// variables: a proxy of the writer's would read the secrets, so none is used.
#[test]
fn insecure_runs_never_go_through_a_proxy() {
    if !PolicyDir::available("the insecure-proxy test") {
        return;
    }
    let env = Env::new();
    let (endpoint, proxy) = (Trap::new(), Trap::new());
    let policy = PolicyDir::new();
    policy.write(&policy_json(&env, &endpoint.url("/token"), None).replacen('{', r#"{"insecure":true,"#, 1));
    let run = |vars: &[(&str, String)]| {
        let mut cmd = env.bare();
        cmd.arg(format!("--oidc-endpoint={}", endpoint.url("/token")))
            .args(["--client-id", CLIENT_ID, "--no-cache", "--timeout=2s", "--retries=0", "--insecure-skip-tls-verify"])
            .arg("--token-file")
            .arg(&env.token_file);
        for (name, value) in vars {
            cmd.env(name, value);
        }
        cmd.run_in(&policy)
    };
    let through = format!("http://127.0.0.1:{}", proxy.0.local_addr().unwrap().port());
    refused(
        &run(&[("HTTPS_PROXY", through.clone())]),
        &format!(
            "--insecure-skip-tls-verify: {} would go through the proxy {through} from HTTPS_PROXY, which could read the secrets without TLS verification",
            endpoint.url("/token")
        ),
        &env,
    );
    assert_eq!((endpoint.connections(), proxy.connections()), (0, 0), "a refused run connected");
    // NO_PROXY sends it direct, which the policy allows
    let run = run(&[("HTTPS_PROXY", through), ("NO_PROXY", "127.0.0.1".into())]);
    assert_eq!(run.code, Some(5), "{run}");
    assert_eq!(proxy.connections(), 0);
    assert!(endpoint.connections() >= 1, "{run}");
}
