//! The CONNECT proxy: tunnels to the test Dex, with and without proxy authentication, and
//! never beyond loopback.

use testkit::{Dex, DexConfig, Proxy, TempDir};

use crate::curl::curl;

#[test]
fn tunnels_to_dex() {
    let dex = Dex::start(DexConfig::default());
    let proxy = Proxy::start(None);
    let dir = TempDir::new("proxy");
    let ca = dir.write("ca.pem", dex.ca_pem());
    let out = curl(&ca, &["-x", &proxy.url(), &format!("{}/keys", dex.issuer())]);
    assert_eq!(out.status, 200);
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(proxy.requests(), [dex.addr().to_string()]);
    assert_eq!(dex.requests().len(), 1);
}

#[test]
fn requires_credentials_when_configured() {
    let dex = Dex::start(DexConfig::default());
    let proxy = Proxy::start(Some(("user".into(), "pa:ss".into())));
    let dir = TempDir::new("proxy");
    let ca = dir.write("ca.pem", dex.ca_pem());
    let url = format!("{}/keys", dex.issuer());
    let out = curl(&ca, &["-x", &proxy.url(), &url]);
    assert_ne!(out.code, 0, "407 ends the attempt");
    let out = curl(&ca, &["-x", &proxy.url(), "--proxy-user", "user:wrong", &url]);
    assert_ne!(out.code, 0);
    let out = curl(&ca, &["-x", &proxy.url(), "--proxy-user", "user:pa:ss", &url]);
    assert_eq!(out.status, 200);
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(proxy.requests().len(), 3);
    assert_eq!(dex.requests().len(), 1);
}

#[test]
fn refuses_targets_off_this_machine() {
    let proxy = Proxy::start(None);
    let dir = TempDir::new("proxy");
    let ca = dir.write("ca.pem", testkit::Ca::new("unused").cert_pem());
    let out = curl(&ca, &["-x", &proxy.url(), "https://example.invalid/"]);
    assert_ne!(out.code, 0);
    assert_eq!(proxy.requests(), ["example.invalid:443"]);
    assert_eq!(proxy.tunnels(), 0);
}
