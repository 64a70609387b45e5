//! The test Dex over HTTPS: a full exchange, discovery, faults, delays and mutual TLS.

use std::time::{Duration, Instant};

use testkit::{ClientAuth, Dex, DexConfig, Fault, SigningKey, TempDir, decode_payload, mint_sa_token};

use crate::curl::curl;

const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

fn exchange_args(subject: &str) -> Vec<String> {
    [
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange".to_string(),
        format!("subject_token={subject}"),
        format!("subject_token_type={ID_TOKEN}"),
        "connector_id=kubernetes".into(),
        format!("requested_token_type={ID_TOKEN}"),
        "scope=openid profile".into(),
    ]
    .into_iter()
    .flat_map(|field| ["--data-urlencode".to_string(), field])
    .collect()
}

#[test]
fn exchanges_a_service_account_token() {
    let dex = Dex::start(DexConfig::default());
    let dir = TempDir::new("dex");
    let ca = dir.write("ca.pem", dex.ca_pem());
    let subject = mint_sa_token("argocd", "argocd-application-controller", "dex", 600);
    let endpoint = dex.token_endpoint();
    let mut args = vec!["-u", "argocd:s3cr%2Bt%2F%3D%25%3Ax"];
    let fields = exchange_args(&subject);
    args.extend(fields.iter().map(String::as_str));
    args.push(&endpoint);
    let out = curl(&ca, &args);
    assert_eq!((out.code, out.status), (0, 200), "{}", out.body);

    let body: miniserde::json::Value = miniserde::json::from_str(&out.body).expect("JSON body");
    let miniserde::json::Value::Object(body) = body else { panic!("not an object: {}", out.body) };
    let Some(miniserde::json::Value::String(token)) = body.get("access_token") else { panic!("{}", out.body) };
    let claims = SigningKey::dex().verify(token).expect("signed by Dex's key");
    assert_eq!(decode_payload(token).as_deref(), Some(claims.as_str()));
    assert!(claims.contains(&format!(r#""iss":"{}""#, dex.issuer())), "{claims}");
    assert!(claims.contains(r#""aud":"argocd""#), "{claims}");
    assert!(claims.contains(r#""name":"system:serviceaccount:argocd:argocd-application-controller""#), "{claims}");
    assert!(out.body.contains(r#""expires_in":86399"#), "{}", out.body);

    let requests = dex.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/dex/token"));
    assert_eq!(request.basic, Some(("argocd".into(), "s3cr+t/=%:x".into())));
    assert_eq!(request.field("subject_token"), Some(subject.as_str()));
    assert_eq!(request.fields("scope"), ["openid profile"]);
    assert_eq!(request.header("Content-Type"), Some("application/x-www-form-urlencoded"));
    assert!(!request.client_cert);
    assert_eq!(dex.token_requests(), 1);
}

#[test]
fn answers_errors_as_json() {
    let dex = Dex::start(DexConfig::default());
    let dir = TempDir::new("dex");
    let ca = dir.write("ca.pem", dex.ca_pem());
    let out = curl(&ca, &[&dex.token_endpoint()]);
    assert_eq!(
        (out.status, out.body.as_str()),
        (400, r#"{"error":"invalid_request","error_description":"method not allowed"}"#)
    );
    let out = curl(&ca, &["-d", "grant_type=password", &dex.token_endpoint()]);
    assert_eq!((out.status, out.body.as_str()), (400, r#"{"error":"unsupported_grant_type"}"#));
    let out = curl(
        &ca,
        &[
            "-u",
            "argocd:wrong",
            "-d",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange",
            &dex.token_endpoint(),
        ],
    );
    assert_eq!(
        (out.status, out.body.as_str()),
        (401, r#"{"error":"invalid_client","error_description":"Invalid client credentials."}"#)
    );
    assert_eq!(dex.token_requests(), 3);
}

#[test]
fn serves_discovery_and_keys() {
    let dex = Dex::start(DexConfig::default());
    let dir = TempDir::new("dex");
    let ca = dir.write("ca.pem", dex.ca_pem());
    let out = curl(&ca, &[&format!("{}/.well-known/openid-configuration", dex.issuer())]);
    assert_eq!(out.status, 200);
    assert!(out.body.contains(&format!(r#""token_endpoint":"{}""#, dex.token_endpoint())), "{}", out.body);
    assert!(out.body.contains("urn:ietf:params:oauth:grant-type:token-exchange"), "{}", out.body);
    let out = curl(&ca, &[&format!("{}/keys", dex.issuer())]);
    assert_eq!((out.status, out.body.as_str()), (200, SigningKey::dex().jwks_json().as_str()));
    let out = curl(&ca, &[&format!("https://localhost:{}/nope", dex.addr().port())]);
    assert_eq!(out.status, 404);
    assert_eq!(dex.token_requests(), 0);
    assert_eq!(dex.requests().len(), 3);
}

#[test]
fn plays_queued_faults_in_order() {
    let dex = Dex::start(DexConfig::default());
    let dir = TempDir::new("dex");
    let ca = dir.write("ca.pem", dex.ca_pem());
    dex.push_fault(Fault::status(503, "text/plain", "unavailable"));
    dex.push_fault(Fault::retry_after(429, 7));
    dex.push_fault(Fault::Reset);
    dex.push_fault(Fault::HugeBody { bytes: 3 << 20 });
    let endpoint = dex.token_endpoint();
    let post = ["-d", "x=1", endpoint.as_str()];

    let out = curl(&ca, &post);
    assert_eq!((out.status, out.body.as_str()), (503, "unavailable"));
    let out = curl(&ca, &["-D", "-", "-d", "x=1", &endpoint]);
    assert_eq!(out.status, 429);
    assert!(out.body.contains("Retry-After: 7\r\n"), "{}", out.body);
    assert!(
        out.body.ends_with(r#"{"error":"slow_down","error_description":"try again in 7 seconds"}"#),
        "{}",
        out.body
    );
    let out = curl(&ca, &post);
    assert_ne!(out.code, 0, "a reset gives no response");
    let out = curl(&ca, &post);
    assert_eq!((out.code, out.status, out.body.len()), (0, 200, 3 << 20));
    assert!(out.body.starts_with(r#"{"a":"xxx"#));
    let out = curl(&ca, &post);
    assert_eq!(out.status, 400, "faults are used up; normal handling again");
    assert_eq!(dex.token_requests(), 5);
}

#[test]
fn delays_token_answers() {
    let dex = Dex::start(DexConfig::default());
    let dir = TempDir::new("dex");
    let ca = dir.write("ca.pem", dex.ca_pem());
    dex.set_delay(Duration::from_millis(400));
    let start = Instant::now();
    let out = curl(&ca, &["-d", "x=1", &dex.token_endpoint()]);
    assert_eq!(out.status, 400);
    assert!(start.elapsed() >= Duration::from_millis(400));
}

#[test]
fn requires_client_certificates_when_configured() {
    let client_ca = testkit::Ca::new("client CA");
    let dex = Dex::start(DexConfig { client_auth: ClientAuth::Required(client_ca.cert_pem()), ..DexConfig::default() });
    let dir = TempDir::new("dex");
    let ca = dir.write("ca.pem", dex.ca_pem());
    let out = curl(&ca, &["-d", "x=1", &dex.token_endpoint()]);
    assert_ne!(out.code, 0, "no client certificate: the handshake fails");

    let identity = client_ca.client_identity("argocd-application-controller");
    let cert = dir.write("client.pem", &identity.cert_pem);
    let key = dir.write("client-key.pem", &identity.key_pem);
    let (cert, key) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    let out = curl(&ca, &["--cert", &cert, "--key", &key, "-d", "x=1", &dex.token_endpoint()]);
    assert_eq!(out.status, 400);

    let stranger = testkit::Ca::new("stranger").client_identity("x");
    let cert = dir.write("stranger.pem", &stranger.cert_pem);
    let key = dir.write("stranger-key.pem", &stranger.key_pem);
    let (cert, key) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    let out = curl(&ca, &["--cert", &cert, "--key", &key, "-d", "x=1", &dex.token_endpoint()]);
    assert_ne!(out.code, 0, "a certificate from another CA is refused");
    let seen: Vec<bool> = dex.requests().iter().map(|r| r.client_cert).collect();
    assert_eq!(seen, [true]);
}
