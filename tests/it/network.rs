//! Hostile networks: private CAs, proxies, retries, mutual TLS, per-cluster settings.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use testkit::{ClientAuth, Dex, DexConfig, Fault, Proxy};

use crate::util::*;

#[test]
fn private_ca_by_file_data_and_ssl_cert_file() {
    let env = Env::new();
    env.untrusted().arg("--certificate-authority").arg(&env.ca).run().success();
    env.untrusted().arg(format!("--certificate-authority-data={}", STANDARD.encode(env.dex.ca_pem()))).run().success();
    env.untrusted().env("SSL_CERT_FILE", &env.ca).run().success();

    // Without the CA the system and bundled roots do not know the test CA.
    env.untrusted().run().failure(5, "server certificate not trusted: unknown issuer", &env.secrets());

    // A wrong CA, given explicitly, replaces the system roots and is refused too.
    let wrong = env.dir.write("wrong-ca.pem", testkit::Ca::new("other").cert_pem());
    let mut wrong_ca = env.untrusted();
    wrong_ca.arg("--certificate-authority").arg(&wrong).env("SSL_CERT_FILE", &env.ca);
    wrong_ca.run().failure(5, "server certificate does not chain to the given --certificate-authority", &env.secrets());

    let not_pem = env.dir.write("not-pem", "hello");
    env.cmd().arg("--certificate-authority").arg(&not_pem).run().failure(
        2,
        "no usable PEM certificate",
        &env.secrets(),
    );
    assert_eq!(env.dex.token_requests(), 3);
}

#[test]
fn insecure_skip_tls_verify_warns_every_run() {
    let env = Env::new();
    let run = env.untrusted().arg("--insecure-skip-tls-verify").run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.starts_with("tokenxchange: warning: --insecure-skip-tls-verify"), "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "one warning per run\n{run}");
    Credential::parse(&run.stdout).unwrap();
}

#[test]
fn retries_transient_failures() {
    let env = Env::new();
    env.dex.push_fault(Fault::status(503, "text/plain", "unavailable"));
    env.cmd().run().success();
    assert_eq!(env.dex.token_requests(), 2);

    env.dex.push_fault(Fault::status(503, "text/plain", "unavailable"));
    env.dex.push_fault(Fault::Reset);
    env.cmd().run().success();
    assert_eq!(env.dex.token_requests(), 5);

    env.dex.push_fault(Fault::retry_after(429, 1));
    let run = env.cmd().arg("-v").run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.elapsed >= Duration::from_secs(1), "Retry-After: 1 is honoured\n{run}");
    assert!(run.stderr.contains("retrying in 1000 ms"), "{run}");
    assert_eq!(env.dex.token_requests(), 7);

    // three failures with the default 2 retries: the last error is reported
    for _ in 0..3 {
        env.dex.push_fault(Fault::status(503, "text/plain", "still down"));
    }
    env.cmd().run().failure(5, "HTTP 503: still down", &env.secrets());
    assert_eq!(env.dex.token_requests(), 10);
}

#[test]
fn refusals_are_not_retried() {
    let env = Env::new();
    env.cmd().args(["--client-secret", "wrong", "--retries", "5"]).run().failure(4, "invalid_client", &env.secrets());
    assert_eq!(env.dex.token_requests(), 1);
    let other = env.dir.write("other.pem", testkit::Ca::new("x").cert_pem());
    let mut wrong_ca = env.untrusted();
    wrong_ca.args(["--retries", "5", "--certificate-authority"]).arg(&other);
    wrong_ca.run().failure(5, "does not chain to the given --certificate-authority", &env.secrets());
    assert_eq!(env.dex.token_requests(), 1, "certificate errors are not retried");
}

#[test]
fn retries_stop_at_the_timeout() {
    let env = Env::new();
    for _ in 0..2 {
        env.dex.push_fault(Fault::retry_after(503, 3600));
    }
    // A retry is allowed and the first attempt has 10 s for its answer; the Retry-After
    // of an hour lies beyond the deadline, so the run ends at once, saying why.
    let run = env.cmd().args(["--timeout", "20s", "--retries", "1", "-v"]).run();
    assert_eq!(run.code, Some(5), "{run}");
    assert!(run.stderr.contains("HTTP 503") && run.stderr.contains("no time left for another attempt"), "{run}");
    assert_eq!(env.dex.token_requests(), 1, "a Retry-After beyond the deadline ends the run");
    run.ended_within(Duration::from_secs(20));
}

fn proxied(env: &Env, name: &str, value: &str) -> Cmd {
    let mut cmd = env.cmd();
    cmd.env(name, value);
    cmd
}

#[test]
fn proxies_from_each_variable() {
    let env = Env::new();
    let proxy = Proxy::start(None);
    for (n, name) in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"].into_iter().enumerate() {
        proxied(&env, name, &proxy.url()).run().success();
        assert_eq!(proxy.tunnels(), n + 1, "{name}");
    }
    // without a scheme, as curl reads it
    proxied(&env, "HTTPS_PROXY", proxy.url().trim_start_matches("http://")).run().success();
    assert_eq!(proxy.tunnels(), 5);
    assert_eq!(env.dex.token_requests(), 5);
    assert!(proxy.requests().iter().all(|target| target == &env.dex.addr().to_string()), "{:?}", proxy.requests());
}

#[test]
fn no_proxy_forms_bypass_the_proxy() {
    let env = Env::new();
    let proxy = Proxy::start(None);
    let port = env.dex.addr().port();
    for entry in ["127.0.0.1", "*", "127.0.0.0/8", "10.0.0.0/8, 127.0.0.1", &format!("127.0.0.1:{port}")] {
        proxied(&env, "HTTPS_PROXY", &proxy.url()).env("NO_PROXY", entry).run().success();
        assert_eq!(proxy.tunnels(), 0, "NO_PROXY={entry}");
    }
    // host names: exact, suffix and .suffix, against https://localhost
    let by_name = env.dex.token_endpoint().replace("127.0.0.1", "localhost");
    for entry in ["localhost", ".localhost", "LOCALHOST"] {
        proxied(&env, "HTTPS_PROXY", &proxy.url())
            .env("no_proxy", entry)
            .arg(format!("--oidc-endpoint={by_name}"))
            .run()
            .success();
        assert_eq!(proxy.tunnels(), 0, "no_proxy={entry}");
    }
    // a non-matching entry and a different port still go through the proxy
    proxied(&env, "HTTPS_PROXY", &proxy.url()).env("NO_PROXY", "10.0.0.0/8,127.0.0.1:1").run().success();
    assert_eq!(proxy.tunnels(), 1);
}

#[test]
fn proxy_credentials_and_failures() {
    let env = Env::new();
    let proxy = Proxy::start(Some(("user".into(), "pa:ss".into())));
    let with_auth = proxy.url().replace("http://", "http://user:pa%3Ass@");
    proxied(&env, "HTTPS_PROXY", &with_auth).run().success();
    assert_eq!(proxy.tunnels(), 1);

    let wrong = proxy.url().replace("http://", "http://user:wrong-proxy-pass@");
    let run = proxied(&env, "HTTPS_PROXY", &wrong).args(["--retries", "0"]).run();
    run.failure(5, "the proxy refused the CONNECT tunnel", &env.secrets());
    run.no_secrets(&["wrong-proxy-pass"]);

    let verbose = proxied(&env, "HTTPS_PROXY", &with_auth).arg("-v").run();
    assert!(verbose.stderr.contains("using proxy http://***@127.0.0.1:"), "{verbose}");
    verbose.no_secrets(&["pa%3Ass", "pa:ss", "user:"]);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    proxied(&env, "HTTPS_PROXY", &format!("http://127.0.0.1:{port}")).args(["--retries", "0"]).run().failure(
        5,
        &format!("through proxy http://127.0.0.1:{port}: connection refused"),
        &env.secrets(),
    );
}

#[test]
fn mutual_tls_with_the_identity_provider() {
    let client_ca = testkit::Ca::new("client-ca");
    let dex = Dex::start(DexConfig { client_auth: ClientAuth::Required(client_ca.cert_pem()), ..DexConfig::default() });
    let env = Env::with_dex(dex);
    let identity = client_ca.client_identity("argocd-application-controller");
    let cert = env.dir.write("client.pem", &identity.cert_pem);
    let key = env.dir.write("client-key.pem", &identity.key_pem);

    env.cmd().args(["--retries", "0"]).run().failure(5, "client certificate", &env.secrets());

    env.cmd().arg("--client-certificate").arg(&cert).arg("--client-key").arg(&key).run().success();
    env.cmd()
        .arg(format!("--client-certificate-data={}", STANDARD.encode(&identity.cert_pem)))
        .arg(format!("--client-key-data={}", STANDARD.encode(&identity.key_pem)))
        .run()
        .success();
    let accepted: Vec<bool> = env.dex.requests().iter().map(|r| r.client_cert).collect();
    assert_eq!(accepted, [true, true]);

    // a key that does not belong to the certificate is a configuration error, not a crash
    let stranger = client_ca.client_identity("someone-else");
    let wrong_key = env.dir.write("wrong-key.pem", &stranger.key_pem);
    env.cmd().arg("--client-certificate").arg(&cert).arg("--client-key").arg(&wrong_key).run().failure(
        2,
        "client key",
        &[&identity.key_pem, &stranger.key_pem],
    );
    env.cmd().arg("--client-certificate").arg(&cert).run().failure(2, "go together", &env.secrets());
}

#[test]
fn insecure_http_needs_the_flag() {
    // Refused without the flag (exchange.rs); with it the URL is accepted, and a closed
    // local proxy shows the request was made (and keeps the test off DNS).
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    env.cmd()
        .args(["--oidc-endpoint=http://dex.example.invalid/token", "--allow-insecure-http", "--retries", "0"])
        .env("http_proxy", format!("http://127.0.0.1:{port}"))
        .run()
        .failure(5, "cannot reach http://dex.example.invalid/token through proxy http://127.0.0.1:", &env.secrets());
}

fn methods(env: &Env) -> Vec<String> {
    env.dex.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

#[test]
fn discovered_endpoints_are_remembered() {
    let env = Env::new();
    env.issuer().run().success();
    assert_eq!(methods(&env), ["GET /dex/.well-known/openid-configuration", "POST /dex/token"]);
    // a cached credential: no network at all
    env.issuer().run().success();
    assert_eq!(env.dex.requests().len(), 2);
    // a new credential: one POST, no discovery
    env.issuer().arg("--force-refresh").run().success();
    assert_eq!(methods(&env)[2..], ["POST /dex/token"]);

    // A remembered endpoint that refuses connections is discovered again, once.
    let cache = env.dir.join("home/.kube/cache/tokenxchange");
    let remembered: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "endpoint"))
        .collect();
    assert_eq!(remembered.len(), 1);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let remember = |endpoint: &str| {
        let text = format!("{}\n{endpoint}\n", env.dex.issuer());
        std::fs::write(&remembered[0], text).unwrap();
    };
    remember(&format!("https://127.0.0.1:{port}/dex/token"));
    env.issuer().args(["--force-refresh", "--retries", "0"]).run().success();
    assert_eq!(methods(&env)[3..], ["GET /dex/.well-known/openid-configuration", "POST /dex/token"]);
    assert!(std::fs::read_to_string(&remembered[0]).unwrap().contains(&env.dex.token_endpoint()));

    // A remembered endpoint that answers 404 is discovered again, once.
    remember(&format!("{}/nowhere", env.dex.issuer()));
    env.issuer().args(["--force-refresh", "--retries", "0"]).run().success();
    assert_eq!(
        methods(&env)[5..],
        ["POST /dex/nowhere", "GET /dex/.well-known/openid-configuration", "POST /dex/token"]
    );
}
