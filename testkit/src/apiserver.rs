//! A kube-apiserver stand-in over HTTPS on 127.0.0.1, just enough for `kubectl auth whoami`:
//! OIDC bearer-token authentication the way `--oidc-*` flags configure it (signature, `iss`,
//! `aud`, `exp`, a username claim with a prefix), SelfSubjectReview in v1, v1beta1 and
//! v1alpha1, and minimal discovery. It stores nothing but what it saw.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use miniserde::json::{self, Object, Value};

use crate::http::{self, After, Request, Response, Server, lock};
use crate::jwt::{self, SigningKey, array, object, string};
use crate::pki::{self, Ca};

const GROUP: &str = "authentication.k8s.io";
const VERSIONS: [&str; 3] = ["v1", "v1beta1", "v1alpha1"];

/// How the API server authenticates bearer tokens (its `--oidc-*` flags).
#[derive(Clone, Debug)]
pub struct ApiServerConfig {
    pub issuer: String,
    pub client_id: String,
    /// The key the issuer signs with.
    pub key: SigningKey,
    pub username_claim: String,
    pub username_prefix: String,
}

impl ApiServerConfig {
    /// Trusting the test Dex's key for `issuer` and `client_id`, with the username from the
    /// `name` claim prefixed `oidc:` (the flags the demo and the tests use).
    pub fn new(issuer: &str, client_id: &str) -> ApiServerConfig {
        ApiServerConfig {
            issuer: issuer.into(),
            client_id: client_id.into(),
            key: SigningKey::dex(),
            username_claim: "name".into(),
            username_prefix: "oidc:".into(),
        }
    }
}

/// A running API server stand-in; dropping it stops the server.
pub struct ApiServer {
    url: String,
    ca: Ca,
    seen: Arc<Mutex<Seen>>,
    _server: Server,
}

#[derive(Default)]
struct Seen {
    tokens: Vec<String>,
    requests: Vec<String>,
}

impl ApiServer {
    /// Starts on 127.0.0.1 with a port chosen by the kernel and a fresh CA.
    pub fn start(config: ApiServerConfig) -> ApiServer {
        ApiServer::start_with(vec![config])
    }

    /// Trusts several issuers, as a structured `AuthenticationConfiguration` with several
    /// `jwt` entries does: the first whose checks pass names the user.
    pub fn start_with(issuers: Vec<ApiServerConfig>) -> ApiServer {
        let listener = http::bind();
        let addr = listener.local_addr().expect("listener address");
        let ca = Ca::new("testkit apiserver CA");
        let tls = pki::server_config(&ca.server_identity(), None, false);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let handler_seen = Arc::clone(&seen);
        let address = addr.to_string();
        let handler = move |request: &Request, w: &mut dyn Write| {
            handle(&issuers, &address, &handler_seen, request, crate::time::now(), w)
        };
        let server = Server::start(listener, move |tcp| http::serve_tls(tcp, Arc::clone(&tls), &handler));
        ApiServer { url: format!("https://{addr}"), ca, seen, _server: server }
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The CA that signed the server certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.cert_pem()
    }

    /// Bearer tokens received, valid or not, in order.
    pub fn tokens_seen(&self) -> Vec<String> {
        lock(&self.seen).tokens.clone()
    }

    /// Every request as `METHOD target`, in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.seen).requests.clone()
    }
}

fn handle(
    issuers: &[ApiServerConfig],
    address: &str,
    seen: &Mutex<Seen>,
    request: &Request,
    now: i64,
    w: &mut dyn Write,
) -> io::Result<After> {
    let token = bearer(request.header("authorization"));
    {
        let mut seen = lock(seen);
        seen.requests.push(format!("{} {}", request.method, request.target));
        seen.tokens.extend(token.map(String::from));
    }
    let user = token.and_then(|token| issuers.iter().find_map(|config| authenticate(config, token, now)));
    let response = match user {
        None => status(401, "Unauthorized", "Unauthorized"),
        Some(username) => route(request, address, &username, now),
    };
    response.send(w, request.keep_alive)
}

/// The username for a valid token: prefix plus the username claim.
fn authenticate(config: &ApiServerConfig, token: &str, now: i64) -> Option<String> {
    let claims: Object = json::from_str(&config.key.verify(token).ok()?).ok()?;
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == config.client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| matches!(a, Value::String(a) if *a == config.client_id)),
        _ => false,
    };
    let current = jwt::claim_int(&claims, "exp").is_some_and(|exp| exp > now);
    let issuer_ok = jwt::claim_str(&claims, "iss").as_ref() == Some(&config.issuer);
    let name = jwt::claim_str(&claims, &config.username_claim)?;
    (audience_ok && current && issuer_ok).then(|| format!("{}{name}", config.username_prefix))
}

fn route(request: &Request, address: &str, username: &str, now: i64) -> Response {
    let path = request.path().trim_end_matches('/');
    let get = request.method == "GET";
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        ["api"] if get => Response::json(200, api_versions(address)),
        ["apis"] if get => Response::json(200, group_list()),
        ["version"] if get => Response::json(200, VERSION_INFO),
        ["apis", GROUP, version] if get && VERSIONS.contains(version) => Response::json(200, resource_list(version)),
        ["apis", GROUP, version, "selfsubjectreviews"] if VERSIONS.contains(version) => {
            if request.method == "POST" {
                Response::json(201, self_subject_review(version, username, now))
            } else {
                status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            }
        }
        _ => status(404, "NotFound", "the server could not find the requested resource"),
    }
}

const VERSION_INFO: &str = r#"{"major":"1","minor":"33","gitVersion":"v1.33.0-testkit","gitCommit":"0000000000000000000000000000000000000000","gitTreeState":"clean","buildDate":"2025-01-01T00:00:00Z","goVersion":"go1.24.0","compiler":"gc","platform":"linux/amd64"}"#;

fn api_versions(address: &str) -> String {
    let cidr = object([("clientCIDR", string("0.0.0.0/0")), ("serverAddress", string(address))]);
    json::to_string(&object([
        ("kind", string("APIVersions")),
        ("versions", array([string("v1")])),
        ("serverAddressByClientCIDRs", array([cidr])),
    ]))
}

fn group_list() -> String {
    let version = |v: &str| object([("groupVersion", string(&format!("{GROUP}/{v}"))), ("version", string(v))]);
    let group = object([
        ("name", string(GROUP)),
        ("versions", array(VERSIONS.map(version))),
        ("preferredVersion", version(VERSIONS[0])),
    ]);
    json::to_string(&object([
        ("kind", string("APIGroupList")),
        ("apiVersion", string("v1")),
        ("groups", array([group])),
    ]))
}

fn resource_list(version: &str) -> String {
    let resource = object([
        ("name", string("selfsubjectreviews")),
        ("singularName", string("selfsubjectreview")),
        ("namespaced", Value::Bool(false)),
        ("kind", string("SelfSubjectReview")),
        ("verbs", array([string("create")])),
    ]);
    json::to_string(&object([
        ("kind", string("APIResourceList")),
        ("apiVersion", string("v1")),
        ("groupVersion", string(&format!("{GROUP}/{version}"))),
        ("resources", array([resource])),
    ]))
}

fn self_subject_review(version: &str, username: &str, now: i64) -> String {
    let user = object([("username", string(username)), ("groups", array([string("system:authenticated")]))]);
    json::to_string(&object([
        ("kind", string("SelfSubjectReview")),
        ("apiVersion", string(&format!("{GROUP}/{version}"))),
        ("metadata", object([("creationTimestamp", string(&crate::time::rfc3339(now)))])),
        ("status", object([("userInfo", user)])),
    ]))
}

/// A Kubernetes `Status` failure.
fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json::to_string(&object([
        ("kind", string("Status")),
        ("apiVersion", string("v1")),
        ("metadata", object([])),
        ("status", string("Failure")),
        ("message", string(message)),
        ("reason", string(reason)),
        ("code", jwt::int(code.into())),
    ]));
    Response::json(code, body)
}

/// The token of an `Authorization: Bearer` header.
fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ApiServerConfig {
        ApiServerConfig::new("https://dex.test/dex", "argocd")
    }

    fn check(claims: &str, expected: Option<&str>) {
        let token = SigningKey::dex().sign(claims);
        assert_eq!(authenticate(&config(), &token, 1000).as_deref(), expected, "{claims}");
    }

    #[test]
    fn authenticates_like_the_oidc_flags() {
        let iss = r#""iss":"https://dex.test/dex""#;
        check(&format!(r#"{{{iss},"aud":"argocd","exp":1001,"name":"sa"}}"#), Some("oidc:sa"));
        check(&format!(r#"{{{iss},"aud":["x","argocd"],"exp":1001,"name":"sa"}}"#), Some("oidc:sa"));
        check(&format!(r#"{{{iss},"aud":"other","exp":1001,"name":"sa"}}"#), None);
        check(&format!(r#"{{{iss},"aud":"argocd","exp":1000,"name":"sa"}}"#), None);
        check(&format!(r#"{{{iss},"aud":"argocd","exp":1001}}"#), None);
        check(r#"{"iss":"https://other","aud":"argocd","exp":1001,"name":"sa"}"#, None);
        let foreign = SigningKey::source_cluster().sign(&format!(r#"{{{iss},"aud":"argocd","exp":1001,"name":"sa"}}"#));
        assert_eq!(authenticate(&config(), &foreign, 1000), None);
    }

    #[test]
    fn parses_bearer_headers() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
