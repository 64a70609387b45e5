//! TLS as deployments serve it: TLS 1.2-only ingresses, servers older than that, and
//! self-signed `CA:TRUE` certificates given as the CA (the `openssl req -x509` default).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use testkit::{AlertServer, DexConfig, SelfSigned};

use crate::util::*;

#[test]
fn a_tls12_only_server_is_reached() {
    let env = Env::with(DexConfig { tls12_only: true, ..DexConfig::default() });
    let credential = env.cmd().run().success();
    assert_eq!(claim_str(&credential.claims(), "name"), Some(SA_NAME.into()));
    assert_eq!(env.dex.token_requests(), 1);
}

#[test]
fn a_server_without_a_common_version_is_named_and_not_retried() {
    let env = Env::new();
    for (alert, name) in [(70, "protocol_version"), (40, "handshake_failure")] {
        let old = AlertServer::start(alert);
        let run = env
            .cmd()
            .arg(format!("--oidc-endpoint=https://127.0.0.1:{}/token", old.addr().port()))
            .args(["--retries", "3"])
            .run();
        run.failure(
            5,
            &format!(
                "failed: no TLS version or cipher suite in common with the server (this client offers TLS 1.2 and 1.3 with ECDHE and AES-GCM or ChaCha20); the server sent alert {name}"
            ),
            &env.secrets(),
        );
        assert_eq!(old.connections(), 1, "a TLS alert is not retried\n{run}");
        run.ended_within(DEFAULT_TIMEOUT);
    }
}

fn self_signed(names: &[&str]) -> Env {
    with_self_signed(SelfSigned::new(names))
}

fn with_self_signed(certificate: SelfSigned) -> Env {
    Env::with(DexConfig { self_signed: Some(certificate), ..DexConfig::default() })
}

#[test]
fn a_self_signed_ca_certificate_given_as_the_ca_is_trusted() {
    let env = self_signed(&["127.0.0.1", "localhost"]);
    assert!(env.dex.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    // by file, by data, and through SSL_CERT_FILE
    env.cmd().run().success();
    env.untrusted().arg(format!("--certificate-authority-data={}", STANDARD.encode(env.dex.ca_pem()))).run().success();
    env.untrusted().env("SSL_CERT_FILE", &env.ca).run().success();
    assert_eq!(env.dex.token_requests(), 3);

    // not given: said in plain words, no Rust debug text
    let run = env.untrusted().run();
    run.failure(
        5,
        "server certificate is a CA certificate (CA:TRUE) that is not among the trusted roots; give this exact certificate with --certificate-authority",
        &env.secrets(),
    );
    assert!(!run.stderr.contains("CaUsedAsEndEntity") && !run.stderr.contains("Other("), "{run}");
    // another CA given: the same words
    let other = env.dir.write("other.pem", testkit::Ca::new("other").cert_pem());
    env.untrusted().arg("--certificate-authority").arg(&other).run().failure(
        5,
        "server certificate is a CA certificate (CA:TRUE) that is not among the trusted roots",
        &env.secrets(),
    );
    assert_eq!(env.dex.token_requests(), 3);
}

#[test]
fn a_self_signed_certificate_for_another_name_is_refused() {
    let env = self_signed(&["dex.example.com"]);
    env.cmd().run().failure(5, "TLS with https://127.0.0.1:", &env.secrets()).failure(
        5,
        "failed: server certificate does not name this host",
        &env.secrets(),
    );
    assert_eq!(env.dex.token_requests(), 0);
}

#[test]
fn a_given_self_signed_certificate_is_still_checked_for_dates_and_purpose() {
    let names = ["127.0.0.1", "localhost"];
    let cases = [
        (SelfSigned { valid_days: (-30, -1), ..SelfSigned::new(&names) }, "server certificate has expired"),
        (
            SelfSigned { valid_days: (2, 30), ..SelfSigned::new(&names) },
            "server certificate is not valid yet (check this machine's clock)",
        ),
        (
            SelfSigned { client_auth_only: true, ..SelfSigned::new(&names) },
            "server certificate rejected: not for servers (its extended key usage lacks serverAuth)",
        ),
    ];
    for (certificate, expected) in cases {
        let env = with_self_signed(certificate);
        env.cmd().run().failure(5, expected, &env.secrets());
        assert_eq!(env.dex.token_requests(), 0, "{expected}");
    }
}
