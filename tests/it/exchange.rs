//! The exchange against the Dex-compatible test server: exact request, output, every row
//! of Dex's error table, and the answers a real deployment meets.

use std::time::Duration;

use testkit::{Client, DexConfig, Fault, SOURCE_ISSUER};

use crate::util::*;

#[test]
fn happy_path_sends_the_documented_request_and_prints_one_credential() {
    let env = Env::new();
    let before = now();
    let credential = env.cmd().run().success();
    let after = now();

    let requests = env.dex.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/dex/token");
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("user-agent"), Some(concat!("tokenxchange/", env!("CARGO_PKG_VERSION"))));
    assert_eq!(request.basic, Some((CLIENT_ID.to_string(), CLIENT_SECRET.to_string())));
    let fields: Vec<(&str, &str)> = request.form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        fields,
        [
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", env.subject.as_str()),
            ("subject_token_type", ID_TOKEN),
            ("requested_token_type", ID_TOKEN),
            ("scope", "openid profile federated:id"),
            ("connector_id", "kubernetes"),
        ]
    );

    assert_eq!(credential.api_version, "client.authentication.k8s.io/v1");
    let claims = credential.claims();
    assert_eq!(claim_str(&claims, "iss"), Some(env.dex.issuer()));
    assert_eq!(claim_str(&claims, "aud"), Some(CLIENT_ID.into()));
    assert_eq!(claim_str(&claims, "name"), Some(SA_NAME.into()));
    // Dex's default: expires_in 86399 and exp = iat + 24h; the earlier one minus 60 s.
    let expiration = parse_rfc3339(credential.expiration.as_deref().expect("expirationTimestamp"));
    assert!(
        (before + 86_399 - 60..=after + 86_399 - 60).contains(&expiration),
        "{expiration} not in [{before}, {after}] + 86339"
    );
}

#[test]
fn expiry_follows_the_jwt_when_it_is_earlier() {
    let env = Env::with(DexConfig { id_token_ttl: 600, ..DexConfig::default() });
    let before = now();
    let credential = env.cmd().run().success();
    let exp = claim_int(&credential.claims(), "exp").unwrap();
    assert!(exp <= now() + 600 && exp >= before + 600);
    // 10 minutes of life: margin min(60 s, 60 s).
    assert_eq!(parse_rfc3339(credential.expiration.as_deref().unwrap()), exp - 60);
}

#[test]
fn no_expiry_known_means_no_expiration_timestamp() {
    // expires_in absent and an opaque token: nothing tells the lifetime
    let env = Env::new();
    env.dex.push_fault(Fault::status(200, "application/json", r#"{"access_token":"opaque-token-value","issued_token_type":"urn:ietf:params:oauth:token-type:id_token","token_type":"bearer"}"#));
    let credential = env.cmd().run().success();
    assert_eq!(credential.token, "opaque-token-value");
    assert_eq!(credential.expiration, None);
}

#[test]
fn api_version_follows_kubernetes_exec_info() {
    let env = Env::new();
    let v1beta1 =
        r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#;
    let credential = env.cmd().env("KUBERNETES_EXEC_INFO", v1beta1).run().success();
    assert_eq!(credential.api_version, "client.authentication.k8s.io/v1beta1");

    let credential = env.cmd().args(["--api-version", "client.authentication.k8s.io/v1beta1"]).run().success();
    assert_eq!(credential.api_version, "client.authentication.k8s.io/v1beta1");

    let v1alpha1 = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1","spec":{}}"#;
    env.cmd().env("KUBERNETES_EXEC_INFO", v1alpha1).run().failure(
        2,
        "unsupported ExecCredential apiVersion",
        &env.secrets(),
    );
    env.cmd().env("KUBERNETES_EXEC_INFO", "{not json").run().failure(2, "invalid KUBERNETES_EXEC_INFO", &env.secrets());
    assert_eq!(env.dex.token_requests(), 2, "usage errors make no request");
}

#[test]
fn public_client_sends_an_empty_secret() {
    let env = Env::new();
    env.bare()
        .arg(format!("--oidc-endpoint={}", env.dex.token_endpoint()))
        .args(["--client-id", "public-cli", "--dex-connector", "kubernetes", "--certificate-authority"])
        .arg(&env.ca)
        .arg("--token-file")
        .arg(&env.token_file)
        .run()
        .success();
    assert_eq!(env.dex.requests()[0].basic, Some(("public-cli".into(), String::new())));
}

#[test]
fn client_secret_file_is_read_and_trimmed() {
    let env = Env::new();
    let file = env.dir.write("client-secret", format!("{CLIENT_SECRET}\n"));
    env.bare()
        .arg(format!("--oidc-endpoint={}", env.dex.token_endpoint()))
        .args(["--client-id", CLIENT_ID, "--dex-connector", "kubernetes", "--client-secret-file"])
        .arg(&file)
        .arg("--certificate-authority")
        .arg(&env.ca)
        .env("TOKENXCHANGE_TOKEN_FILE", &env.token_file)
        .run()
        .success();
    assert_eq!(env.dex.requests()[0].basic, Some((CLIENT_ID.into(), CLIENT_SECRET.into())));

    let missing = env.dir.join("no-such-secret");
    env.cmd().arg("--client-secret-file").arg(&missing).run().failure(2, "exclude each other", &env.secrets());
    env.bare()
        .arg(format!("--oidc-endpoint={}", env.dex.token_endpoint()))
        .args(["--client-id", CLIENT_ID, "--client-secret-file"])
        .arg(&missing)
        .arg("--token-file")
        .arg(&env.token_file)
        .run()
        .failure(2, "cannot use client secret file", &env.secrets());
}

#[test]
fn environment_configures_and_flags_win() {
    let env = Env::new();
    let credential = env
        .bare()
        .env("TOKENXCHANGE_OIDC_ENDPOINT", env.dex.token_endpoint())
        .env("TOKENXCHANGE_CLIENT_ID", CLIENT_ID)
        .env("TOKENXCHANGE_CLIENT_SECRET", CLIENT_SECRET)
        .env("TOKENXCHANGE_DEX_CONNECTOR", "kubernetes")
        .env("TOKENXCHANGE_SCOPES", "openid,profile")
        .env("TOKENXCHANGE_TOKEN_FILE", &env.token_file)
        .env("TOKENXCHANGE_CERTIFICATE_AUTHORITY", &env.ca)
        .run()
        .success();
    assert_eq!(claim_str(&credential.claims(), "name"), Some(SA_NAME.into()));
    assert_eq!(env.dex.requests()[0].field("scope"), Some("openid profile"));

    // Every variable wrong, every flag right: the flags win.
    env.cmd()
        .env("TOKENXCHANGE_OIDC_ENDPOINT", "https://127.0.0.1:1/token")
        .env("TOKENXCHANGE_CLIENT_ID", "wrong")
        .env("TOKENXCHANGE_CLIENT_SECRET", "wrong")
        .env("TOKENXCHANGE_DEX_CONNECTOR", "wrong")
        .env("TOKENXCHANGE_TOKEN_FILE", "/nonexistent")
        .env("TOKENXCHANGE_SCOPES", "wrong")
        .args(["--scopes", "openid groups"])
        .run()
        .success();
    let request = &env.dex.requests()[1];
    assert_eq!(request.basic, Some((CLIENT_ID.into(), CLIENT_SECRET.into())));
    assert_eq!(request.field("connector_id"), Some("kubernetes"));
    assert_eq!(request.field("scope"), Some("openid groups"));
}

#[test]
fn audiences_and_token_types_are_sent() {
    let env = Env::with(DexConfig::default().trusting(&["https://target-a", "target-b"]));
    env.cmd()
        .args(["--audience", "https://target-a", "--audience", "target-b", "--requested-token-type", "access_token"])
        .run()
        .success();
    let request = &env.dex.requests()[0];
    assert_eq!(request.fields("audience"), ["https://target-a", "target-b"]);
    assert_eq!(
        request.field("scope"),
        Some(
            "openid profile federated:id audience:server:client_id:https://target-a audience:server:client_id:target-b"
        )
    );
    assert_eq!(request.field("requested_token_type"), Some("urn:ietf:params:oauth:token-type:access_token"));
}

#[test]
fn issuer_discovery_finds_the_token_endpoint() {
    let env = Env::new();
    let credential = env.issuer().arg("--no-cache").run().success();
    assert_eq!(claim_str(&credential.claims(), "aud"), Some(CLIENT_ID.into()));
    let paths: Vec<String> = env.dex.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(paths, ["GET /dex/.well-known/openid-configuration", "POST /dex/token"]);

    // a wrong issuer path: discovery is refused, not the exchange
    let wrong = format!("--issuer={}/nowhere", env.dex.issuer());
    env.bare()
        .arg(&wrong)
        .args(["--client-id", CLIENT_ID, "--no-cache", "--certificate-authority"])
        .arg(&env.ca)
        .arg("--token-file")
        .arg(&env.token_file)
        .run()
        .failure(4, "discovery refused: https://127.0.0.1:", &env.secrets())
        .failure(4, "/dex/nowhere/.well-known/openid-configuration answered HTTP 404 without an OAuth error", &[]);
}

#[test]
fn subject_token_file_problems_are_exit_3() {
    let env = Env::new();
    let missing = env.dir.join("missing");
    env.cmd().arg("--token-file").arg(&missing).run().failure(3, "No such file or directory", &env.secrets());
    let empty = env.dir.write("empty", " \n\n");
    env.cmd().arg("--token-file").arg(&empty).run().failure(3, "file is empty", &env.secrets());
    let dir = env.dir.path();
    env.cmd().arg("--token-file").arg(dir).run().failure(3, "cannot use subject token file", &env.secrets());
    assert_eq!(env.dex.token_requests(), 0);

    // A trailing newline and surrounding spaces are trimmed.
    let spaced = env.dir.write("spaced", format!("  {}\n\n", env.subject));
    env.cmd().arg("--token-file").arg(&spaced).run().success();
    assert_eq!(env.dex.requests()[0].field("subject_token"), Some(env.subject.as_str()));
}

#[test]
fn special_files_are_refused_without_blocking() {
    let env = Env::new();
    let fifo = env.dir.join("fifo");
    mkfifo(&fifo);
    let run = env.cmd().arg("--token-file").arg(&fifo).run();
    run.failure(3, "not a regular file", &env.secrets());
    run.ended_within(DEFAULT_TIMEOUT);
    env.cmd().args(["--token-file", "/dev/zero"]).run().failure(3, "not a regular file", &env.secrets());
    let big = env.dir.write("big", vec![b'a'; 70 * 1024]);
    env.cmd().arg("--token-file").arg(&big).run().failure(3, "larger than 64 KiB", &env.secrets());
    env.bare()
        .arg(format!("--oidc-endpoint={}", env.dex.token_endpoint()))
        .args(["--client-id", CLIENT_ID, "--client-secret-file", "/dev/zero"])
        .arg("--token-file")
        .arg(&env.token_file)
        .run()
        .failure(2, "cannot use client secret file /dev/zero: not a regular file", &env.secrets());
    assert_eq!(env.dex.token_requests(), 0);
}

#[test]
fn a_value_that_is_not_utf8_is_refused_without_echo() {
    use std::os::unix::ffi::OsStringExt;
    let env = Env::new();
    let secret = std::ffi::OsString::from_vec(b"super-secret-\xff-value".to_vec());
    let run = env.cmd().arg("--client-secret").arg(secret).run();
    run.failure(2, "an option value is not valid UTF-8", &["super-secret"]);
}

#[test]
fn the_token_file_is_read_on_every_run() {
    let env = Env::new();
    env.cmd().run().success();
    let rotated = env.rotate_token();
    env.cmd().run().success();
    let seen: Vec<String> =
        env.dex.requests().iter().filter_map(|r| r.field("subject_token").map(String::from)).collect();
    assert_eq!(seen, [env.subject.clone(), rotated]);
}

#[test]
fn usage_errors_are_exit_2_with_one_line() {
    let env = Env::new();
    env.bare().args(["--client-id", "x"]).run().failure(2, "missing --oidc-endpoint", &[]);
    env.bare().arg(format!("--oidc-endpoint={}", env.dex.token_endpoint())).run().failure(
        2,
        "missing --client-id",
        &[],
    );
    env.cmd().arg("--frobnicate").run().failure(2, "invalid option '--frobnicate'", &env.secrets());
    env.cmd().args(["--timeout", "soon"]).run().failure(2, "invalid --timeout 'soon'", &env.secrets());
    env.cmd().args(["--subject-token-type", "saml"]).run().failure(2, "invalid --subject-token-type", &env.secrets());
    env.cmd().arg("extra").run().failure(2, "unknown command 'extra'", &env.secrets());
    env.cmd().arg("--oidc-endpoint=https://127.0.0.1:99999/token").run().failure(
        2,
        "expected https://HOST[:PORT]/PATH",
        &env.secrets(),
    );
    env.cmd().arg("--force").run().failure(2, "--force belongs to install", &env.secrets());
    assert_eq!(env.dex.token_requests(), 0);
}

#[test]
fn http_endpoints_off_loopback_are_refused_before_any_traffic() {
    let env = Env::new();
    env.cmd().arg("--oidc-endpoint=http://dex.example.invalid/token").run().failure(
        2,
        "http:// would send the ServiceAccount token in clear; use https:// (or --allow-insecure-http",
        &env.secrets(),
    );
}

#[test]
fn help_and_version() {
    let env = Env::new();
    for flag in ["--help", "-h"] {
        let run = env.bare().arg(flag).run();
        assert_eq!(run.code, Some(0), "{run}");
        assert!(run.stdout.contains("--oidc-endpoint URL") && run.stdout.contains("exit codes"), "{run}");
        assert!(run.stderr.is_empty());
    }
    for flag in ["--version", "-V"] {
        let run = env.bare().arg(flag).run();
        assert_eq!(run.stdout, version_line(), "{run}");
    }
}

/// Each row of Dex's error table (docs/contracts.md §1), triggered for real where the binary
/// can cause it, else as Dex's exact answer.
#[test]
fn every_dex_error_is_reported_with_status_fields_and_hint() {
    let check = |env: &Env, run: Run, code: i32, needle: &str| {
        run.failure(code, needle, &env.secrets());
    };

    // 1. not POST: the binary always POSTs; Dex's answer as sent.
    let env = Env::new();
    env.dex.push_fault(Fault::oauth(400, "invalid_request", Some("method not allowed")));
    check(&env, env.cmd().run(), 4, "HTTP 400 invalid_request: method not allowed");

    // 2. grant type disabled
    let env = Env::with(DexConfig { grant_enabled: false, ..DexConfig::default() });
    check(&env, env.cmd().run(), 4, "HTTP 400 unsupported_grant_type (Dex older than v2.38");

    // 3. Basic credentials not decodable
    let env = Env::new();
    env.dex.push_fault(Fault::oauth(400, "invalid_request", Some("client_id improperly encoded")));
    check(&env, env.cmd().run(), 4, "HTTP 400 invalid_request: client_id improperly encoded");

    // 4. wrong secret, unknown client
    let env = Env::new();
    check(
        &env,
        env.cmd().args(["--client-secret", "wrong-secret"]).run(),
        4,
        "HTTP 401 invalid_client: Invalid client credentials. (check --client-id and --client-secret",
    );
    check(&env, env.cmd().args(["--client-id", "nobody"]).run(), 4, "HTTP 401 invalid_client");

    // 5. subject token type Dex does not take
    check(
        &env,
        env.cmd().args(["--subject-token-type", "jwt"]).run(),
        4,
        "HTTP 400 request_not_supported: Invalid subject_token_type.",
    );

    // 6. empty subject token: the binary refuses an empty file itself (exit 3); Dex's answer as sent
    env.dex.push_fault(Fault::oauth(400, "invalid_request", Some("Missing subject_token")));
    check(&env, env.cmd().run(), 4, "HTTP 400 invalid_request: Missing subject_token");

    // 7. unknown connector
    check(
        &env,
        env.cmd().args(["--dex-connector", "github"]).run(),
        4,
        "Requested connector does not exist. (check --dex-connector",
    );

    // 8. subject token rejected by the connector: expired, and signed by a stranger
    let expired =
        testkit::mint_sa_token_at("argocd", "argocd-application-controller", "dex", now() - 7200, now() - 3600);
    let file = env.dir.write("expired", &expired);
    let run = env.cmd().arg("--token-file").arg(&file).run();
    run.failure(4, "HTTP 401 access_denied (Dex could not verify the ServiceAccount token", &[&expired, CLIENT_SECRET]);
    let forged = testkit::SigningKey::dex().sign(&format!(
        r#"{{"iss":"{SOURCE_ISSUER}","sub":"{SA_NAME}","aud":["dex"],"exp":{},"iat":{}}}"#,
        now() + 600,
        now()
    ));
    let file = env.dir.write("forged", &forged);
    env.cmd().arg("--token-file").arg(&file).run().failure(4, "access_denied", &[&forged, CLIENT_SECRET]);

    // 9. requested token type Dex does not issue
    check(
        &env,
        env.cmd().args(["--requested-token-type", "jwt"]).run(),
        4,
        "HTTP 400 request_not_supported: Invalid requested_token_type.",
    );

    // 10. signing failure
    env.dex.push_fault(Fault::oauth(500, "server_error", None));
    check(&env, env.cmd().args(["--retries", "0"]).run(), 5, "answered HTTP 500: server_error");

    // Unreleased Dex: connector not allowed for this client
    env.dex.push_fault(Fault::oauth(400, "invalid_grant", Some("Connector not allowed for this client.")));
    check(&env, env.cmd().run(), 4, "(add the connector to the client's allowedConnectors)");
}

#[test]
fn unusable_answers() {
    let env = Env::new();
    let secrets = env.secrets();
    env.dex.push_fault(Fault::status(503, "text/plain", "upstream connect error"));
    env.cmd().args(["--retries", "0"]).run().failure(5, "answered HTTP 503: upstream connect error", &secrets);

    env.dex.push_fault(Fault::status(
        502,
        "text/html",
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\n</html>",
    ));
    env.cmd().args(["--retries", "0"]).run().failure(
        5,
        "HTTP 502: <html>\\r\\n<head><title>502 Bad Gateway</title>",
        &secrets,
    );

    env.dex.push_fault(Fault::status(200, "text/html", "<html>login</html>"));
    let run = env.cmd().run();
    run.failure(1, "(HTTP 200): not JSON (18 bytes, not shown)", &secrets);
    assert!(!run.stderr.contains("login"), "a 2xx body is never echoed\n{run}");

    env.dex.push_fault(Fault::status(200, "application/json", r#"{"token_type":"bearer","expires_in":3600}"#));
    env.cmd().run().failure(1, "no access_token (41 bytes, not shown)", &secrets);

    env.dex.push_fault(Fault::status(
        200,
        "application/json",
        r#"{"access_token":"x.y.z","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#,
    ));
    env.cmd().run().failure(1, "issued_token_type is urn:ietf:params:oauth:token-type:access_token", &secrets);

    env.dex.push_fault(Fault::status(404, "text/plain", "404 page not found"));
    env.cmd().run().failure(4, "answered HTTP 404 without an OAuth error: 404 page not found", &secrets);

    // A server that echoes the request: the subject token is blanked out.
    let echo = format!(r#"{{"error":"invalid_request","error_description":"bad token {}"}}"#, env.subject);
    env.dex.push_fault(Fault::status(400, "application/json", &echo));
    env.cmd().run().failure(4, "bad token [redacted]", &secrets);
}

#[test]
fn answers_up_to_the_limit_pass_through_the_small_buffers() {
    // ureq's buffers hold one TLS record (src/http.rs BUFFER); a body just under 1 MiB and
    // a 12 KiB head still arrive whole.
    let env = Env::new();
    let mut body = String::from(
        r#"{"access_token":"opaque-token-value","issued_token_type":"urn:ietf:params:oauth:token-type:id_token","token_type":"bearer","padding":""#,
    );
    body.push_str(&"p".repeat((1 << 20) - body.len() - 2));
    body.push_str(r#""}"#);
    env.dex.push_fault(Fault::Status {
        status: 200,
        content_type: "application/json".into(),
        body: body.into_bytes(),
        headers: vec![("X-Padding".into(), "h".repeat(12 * 1024))],
    });
    assert_eq!(env.cmd().run().success().token, "opaque-token-value");
}

#[test]
fn a_client_secret_of_many_kib_still_fits_the_request_head() {
    // The Authorization header outgrows the 18 KiB output buffer: the request sizes its own.
    let secret = "s+".repeat(5_000);
    let env = Env::with(DexConfig {
        clients: vec![Client { id: "long".into(), secret: secret.clone(), ..Client::default() }],
        ..DexConfig::default()
    });
    env.cmd().args(["--client-id", "long", "--client-secret", &secret]).run().success();
    assert_eq!(env.dex.requests()[0].basic, Some(("long".into(), secret)));
}

#[test]
fn a_huge_body_is_refused_without_reading_it_all() {
    let env = Env::new();
    env.dex.push_fault(Fault::HugeBody { bytes: 20 << 20 });
    let run = env.cmd().run();
    run.failure(1, "body larger than 1024 KiB; refused", &env.secrets());
    run.ended_within(DEFAULT_TIMEOUT);
}

#[test]
fn a_closed_port_is_transient() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    env.cmd().arg(format!("--oidc-endpoint=https://127.0.0.1:{port}/token")).args(["--retries", "0"]).run().failure(
        5,
        "connection refused",
        &env.secrets(),
    );
}

#[test]
fn a_slow_server_is_given_up_within_the_timeout() {
    let env = Env::new();
    // The answer would come long after the timeout and its slack.
    env.dex.set_delay(Duration::from_secs(30));
    let run = env.cmd().args(["--timeout", "2s"]).run();
    run.failure(5, "no answer within the timeout", &env.secrets());
    run.ended_within(Duration::from_secs(2));
}

#[test]
fn secrets_never_reach_stderr_even_verbose() {
    let env = Env::new();
    let run = env.cmd().arg("-v").run();
    assert_eq!(run.code, Some(0), "{run}");
    let credential = Credential::parse(&run.stdout).unwrap();
    run.no_secrets(&[&env.subject, CLIENT_SECRET, &credential.token]);
    assert!(run.stderr.contains("subject token sha256:"), "{run}");
    assert!(run.stderr.contains("HTTP 200"), "{run}");

    env.dex.push_fault(Fault::oauth(401, "access_denied", None));
    let run = env.cmd().args(["-v", "--client-secret", "another-secret-value"]).run();
    assert_eq!(run.code, Some(4), "{run}");
    run.no_secrets(&[&env.subject, "another-secret-value"]);
    assert!(run.stdout.is_empty());
}

#[test]
fn a_second_client_from_config_is_accepted() {
    let env = Env::with(DexConfig {
        clients: vec![Client { id: "argo cd+x".into(), secret: "p a+s%s".into(), ..Client::default() }],
        ..DexConfig::default()
    });
    env.cmd().args(["--client-id", "argo cd+x", "--client-secret", "p a+s%s"]).run().success();
    assert_eq!(env.dex.requests()[0].basic, Some(("argo cd+x".into(), "p a+s%s".into())));
}
