//! `tokenxchange inspect`: the report of one real exchange, step by step, as the target
//! API server will see it; and never a token or a secret in it.

use miniserde::json::{self, Object, Value};
use testkit::Fault;

use crate::util::*;

fn inspect(env: &Env) -> Cmd {
    let mut cmd = env.cmd();
    cmd.arg("inspect");
    cmd
}

/// `inspect` with `args`, once as text and once with `-o json`: (json, the run) each.
fn both_forms(env: &Env, args: &[&str]) -> [(bool, Run); 2] {
    [false, true].map(|json| {
        let mut cmd = inspect(env);
        cmd.args(args);
        if json {
            cmd.args(["-o", "json"]);
        }
        (json, cmd.run())
    })
}

/// No token and no secret in stdout or stderr, whatever happened.
fn clean(env: &Env, run: &Run) {
    run.no_secrets(&env.secrets());
    for secret in env.secrets() {
        assert!(!run.stdout.contains(secret), "stdout leaks a secret\n{run}");
    }
    for token in env.dex.issued_tokens() {
        assert!(!run.stdout.contains(&token) && !run.stderr.contains(&token), "an issued token leaked\n{run}");
    }
}

fn report(run: &Run) -> Object {
    match json::from_str::<Value>(&run.stdout) {
        Ok(Value::Object(report)) => report,
        _ => panic!("stdout is not one JSON object\n{run}"),
    }
}

fn section<'a>(report: &'a Object, name: &str) -> &'a Object {
    match report.get(name) {
        Some(Value::Object(section)) => section,
        other => panic!("{name} is {other:?}"),
    }
}

/// A value as JSON text (`null`, `[]`, `"x"`).
fn raw(object: &Object, key: &str) -> String {
    object.get(key).map_or("absent".into(), json::to_string)
}

fn text(section: &Object, key: &str) -> String {
    match section.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => json::to_string(other),
        None => panic!("no {key} in {}", json::to_string(section)),
    }
}

#[test]
fn the_report_follows_the_chain_down_to_the_username() {
    let env = Env::new();
    let run = inspect(&env).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.is_empty(), "{run}");
    clean(&env, &run);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let has = |prefix: &str| lines.iter().any(|line| line.starts_with(prefix));
    assert!(has(&format!("subject   file: {}", env.token_file.display())), "{run}");
    assert!(has("          fingerprint: sha256:"), "{run}");
    assert!(has(&format!("          sub: {SA_NAME}")), "{run}");
    assert!(has("          pod: argocd-application-controller-0"), "{run}");
    assert!(has("          serviceaccount: argocd-application-controller"), "{run}");
    assert!(has("          aud: dex"), "{run}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("          expires_in: 3") && (l.ends_with("(in 1h0m)") || l.ends_with("(in 59m)"))),
        "{run}"
    );
    assert!(has(&format!("endpoint  token endpoint: {}", env.dex.token_endpoint())), "{run}");
    assert!(has("          source: --oidc-endpoint"), "{run}");
    assert!(has("proxy     direct: no proxy variable applies"), "{run}");
    assert!(has(&format!("tls       roots: {}: CN=testkit dex CA", env.ca.display())), "{run}");
    assert!(has("          version: TLS 1.3"), "{run}");
    assert!(has("exchange  status: 200"), "{run}");
    assert!(has("issued    fingerprint: sha256:"), "{run}");
    assert!(has(&format!("          name: {SA_NAME}")), "{run}");
    assert!(has("          aud: argocd"), "{run}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("username  ")).collect::<Vec<_>>(),
        [&format!("username  oidc:{SA_NAME}")]
    );
    assert!(!has("warning"), "{run}");
    assert_eq!(lines.last(), Some(&"ok"), "{run}");
    assert_eq!(env.dex.token_requests(), 1);

    // never the cache: a second run exchanges again, and nothing is written
    inspect(&env).arg("--cache-dir").arg(env.dir.join("cache")).run();
    assert_eq!(env.dex.token_requests(), 2);
    assert!(!env.dir.join("cache").exists());
}

#[test]
fn json_has_the_stable_keys() {
    let env = Env::new();
    let run = inspect(&env).args(["-o", "json"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    clean(&env, &run);
    let report = report(&run);
    let keys: Vec<&String> = report.keys().collect();
    assert_eq!(
        keys,
        ["endpoint", "exchange", "issued", "policy", "proxy", "result", "subject", "tls", "username", "warnings"],
        "{run}"
    );
    assert_eq!(text(section(&report, "subject"), "sub"), SA_NAME);
    assert_eq!(text(section(&report, "endpoint"), "source"), "--oidc-endpoint");
    assert_eq!(text(section(&report, "exchange"), "status"), "200");
    assert_eq!(text(section(&report, "tls"), "version"), "TLS 1.3");
    assert_eq!(text(section(&report, "issued"), "aud"), CLIENT_ID);
    assert_eq!(raw(&report, "username"), format!("\"oidc:{SA_NAME}\""));
    assert_eq!(raw(&report, "warnings"), "[]");
    assert_eq!(text(&report, "result"), "ok");
}

#[test]
fn a_missing_profile_scope_is_exit_6_with_the_reason() {
    let env = Env::new();
    for (json, run) in both_forms(&env, &["--scopes", "openid"]) {
        assert_eq!(run.code, Some(6), "{run}");
        clean(&env, &run);
        assert_eq!(run.stderr.lines().count(), 1, "{run}");
        assert!(run.stderr.contains("the issued token has no string claim 'name'"), "{run}");
        assert!(run.stdout.contains("Dex adds name only with the profile scope"), "{run}");
        if json {
            let report = report(&run);
            assert_eq!(raw(&report, "username"), "null");
            assert!(text(&report, "result").starts_with("failed at username: "), "{run}");
        } else {
            assert!(run.stdout.lines().last().unwrap().starts_with("failed at username: "), "{run}");
        }
    }
}

#[test]
fn an_expired_subject_token_is_warned_and_refused() {
    let env = Env::new();
    let expired =
        testkit::mint_sa_token_at("argocd", "argocd-application-controller", "dex", now() - 7200, now() - 3600);
    let file = env.dir.write("expired", &expired);
    let run = inspect(&env).arg("--token-file").arg(&file).run();
    assert_eq!(run.code, Some(4), "{run}");
    run.no_secrets(&[&expired]);
    assert!(!run.stdout.contains(&expired), "{run}");
    assert!(run.stdout.contains("warning   the subject token expired 1h0m ago"), "{run}");
    assert!(run.stdout.contains("exchange  status: 401"), "{run}");
    assert!(
        run.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("failed at exchange: token exchange refused: HTTP 401 access_denied"),
        "{run}"
    );
}

#[test]
fn a_skewed_clock_is_warned() {
    let env = Env::new();
    let claims =
        format!(r#"{{"iss":"{}","aud":"argocd","exp":{},"name":"{SA_NAME}"}}"#, env.dex.issuer(), now() + 3600);
    let token = testkit::SigningKey::dex().sign(&claims);
    let body = format!(r#"{{"access_token":"{token}","issued_token_type":"{ID_TOKEN}","expires_in":3600}}"#);
    let skewed = now() - 600;
    let date = rfc1123(skewed);
    env.dex.push_fault(Fault::Status {
        status: 200,
        content_type: "application/json".into(),
        body: body.into_bytes(),
        headers: vec![("Date".into(), date)],
    });
    let run = inspect(&env).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("warning   this machine's clock is 10m ahead of the identity provider's"), "{run}");
    assert!(!run.stdout.contains(&token), "{run}");
}

/// An HTTP date, `Sun, 06 Nov 1994 08:49:37 GMT`, as `date` writes it.
fn rfc1123(unix: i64) -> String {
    let output = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{unix}"), "+%a, %d %b %Y %H:%M:%S GMT"])
        .env("LC_ALL", "C")
        .output()
        .expect("run date");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[test]
fn an_oauth_error_still_reports_the_subject() {
    let env = Env::new();
    for (json, run) in both_forms(&env, &["--client-secret", "wrong-secret-value"]) {
        assert_eq!(run.code, Some(4), "{run}");
        run.no_secrets(&[&env.subject, "wrong-secret-value"]);
        assert!(!run.stdout.contains("wrong-secret-value") && !run.stdout.contains(&env.subject), "{run}");
        assert_eq!(run.stderr.lines().count(), 1, "{run}");
        assert!(run.stderr.contains("HTTP 401 invalid_client"), "{run}");
        if json {
            let report = report(&run);
            assert_eq!(text(section(&report, "subject"), "sub"), SA_NAME);
            assert!(text(section(&report, "exchange"), "error").contains("invalid_client"), "{run}");
            assert_eq!(raw(&report, "issued"), "null");
            assert_eq!(raw(&report, "username"), "null");
        } else {
            assert!(run.stdout.contains(&format!("          sub: {SA_NAME}")), "{run}");
            assert!(run.stdout.lines().last().unwrap().starts_with("failed at exchange: "), "{run}");
        }
    }
}

#[test]
fn an_audience_without_the_client_id_is_warned() {
    let env = Env::new();
    let claims =
        format!(r#"{{"iss":"{}","aud":"someone-else","exp":{},"name":"{SA_NAME}"}}"#, env.dex.issuer(), now() + 3600);
    let token = testkit::SigningKey::dex().sign(&claims);
    let body = format!(r#"{{"access_token":"{token}","issued_token_type":"{ID_TOKEN}","expires_in":3600}}"#);
    env.dex.push_fault(Fault::status(200, "application/json", &body));
    let run = inspect(&env).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("warning   the issued token's aud does not contain the client id 'argocd'"), "{run}");
}

#[test]
fn an_issuer_shows_the_discovered_endpoint() {
    let env = Env::new();
    let run = env.issuer().args(["inspect", "-o", "json"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    clean(&env, &run);
    let report = report(&run);
    let endpoint = section(&report, "endpoint");
    assert_eq!(text(endpoint, "issuer"), env.dex.issuer());
    assert_eq!(text(endpoint, "source"), "--issuer");
    assert_eq!(text(endpoint, "token endpoint"), env.dex.token_endpoint());
    assert_eq!(text(endpoint, "token endpoint source"), "discovered");
    assert!(!env.dir.join("home/.kube").exists(), "inspect never touches the cache");
}

#[test]
fn claims_from_the_server_cannot_forge_report_lines() {
    let env = Env::new();
    let claims = format!(
        r#"{{"iss":"{}","aud":"argocd","exp":{},"name":"{SA_NAME}","x\nusername  root\u001b[2J":"v\nok"}}"#,
        env.dex.issuer(),
        now() + 3600
    );
    let token = testkit::SigningKey::dex().sign(&claims);
    let body = format!(r#"{{"access_token":"{token}","issued_token_type":"{ID_TOKEN}","expires_in":3600}}"#);
    env.dex.push_fault(Fault::status(200, "application/json", &body));
    let run = inspect(&env).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains(r"x\nusername  root\u{1b}[2J: v\nok"), "{run}");
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("username")).count(), 1, "{run}");
    assert!(!run.stdout.contains('\u{1b}'), "{run}");
}
