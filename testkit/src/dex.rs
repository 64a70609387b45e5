//! A Dex stand-in on 127.0.0.1 over HTTPS: OpenID discovery, the JWKS, and the RFC 8693
//! token endpoint with Dex's checks in Dex's order, status codes and error bodies
//! (docs/contracts.md §1). Every request is recorded before it is answered; tests can queue
//! faults (canned responses, resets, endless bodies) and delays for the token path. It
//! knows no other grant and keeps no state besides the recording.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use miniserde::json::{self, Object};

use crate::http::{self, After, Request, Response, Server, lock};
use crate::jwt::{self, SOURCE_ISSUER, SigningKey, array, int, object, string};
use crate::pki::{self, Ca};
use crate::time;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const TOKEN_PATH: &str = "/dex/token";
/// Dex's `scopeCrossClientPrefix`.
const CROSS_CLIENT: &str = "audience:server:client_id:";

/// How the test Dex behaves.
#[derive(Clone, Debug)]
pub struct DexConfig {
    pub clients: Vec<Client>,
    /// Ids of exchange-capable `oidc` connectors.
    pub connectors: Vec<String>,
    /// `false` answers 400 unsupported_grant_type, like a Dex without the grant enabled.
    pub grant_enabled: bool,
    /// Dex's `expiry.idTokens`: the issued JWT's `exp` is `iat` plus this.
    pub id_token_ttl: i64,
    /// The response's `expires_in`; `None` leaves it out.
    pub expires_in: Option<i64>,
    pub client_auth: ClientAuth,
    /// Speak TLS 1.2 only, as some ingress controllers and inspecting proxies do.
    pub tls12_only: bool,
    /// Serve a self-signed `CA:TRUE` certificate for these names instead of one issued by
    /// a test CA; [`Dex::ca_pem`] is then that certificate.
    pub self_signed: Option<pki::SelfSigned>,
    /// The `token_endpoint` the discovery document names, instead of `<issuer>/token`.
    pub discovered_token_endpoint: Option<String>,
}

/// A registered OAuth2 client (a Dex static client).
#[derive(Clone, Debug, Default)]
pub struct Client {
    pub id: String,
    pub secret: String,
    pub public: bool,
    /// Clients that may ask for this one as an audience (Dex's `trustedPeers`): their
    /// scope `audience:server:client_id:<this id>` puts this id in `aud`.
    pub trusted_peers: Vec<String>,
}

/// Whether TLS clients must present a certificate.
#[derive(Clone, Debug)]
pub enum ClientAuth {
    None,
    /// Required, signed by this CA (PEM).
    Required(String),
}

impl Default for DexConfig {
    fn default() -> DexConfig {
        DexConfig {
            clients: vec![
                Client { id: "argocd".into(), secret: "s3cr+t/=%:x".into(), ..Client::default() },
                Client { id: "public-cli".into(), public: true, ..Client::default() },
            ],
            connectors: vec!["kubernetes".into()],
            grant_enabled: true,
            id_token_ttl: 86400,
            expires_in: Some(86399),
            client_auth: ClientAuth::None,
            tls12_only: false,
            self_signed: None,
            discovered_token_endpoint: None,
        }
    }
}

impl DexConfig {
    /// Adds a static client per id in `peers`, each trusting every client already
    /// configured: a request for audience `<peer>` then succeeds as with Dex.
    pub fn trusting(mut self, peers: &[&str]) -> DexConfig {
        let clients: Vec<String> = self.clients.iter().map(|c| c.id.clone()).collect();
        for peer in peers {
            let id = peer.to_string();
            self.clients.push(Client {
                secret: format!("{id}-peer-secret"),
                id,
                trusted_peers: clients.clone(),
                ..Client::default()
            });
        }
        self
    }
}

/// A canned misbehaviour for the next token-path request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This response instead of the real one.
    Status { status: u16, content_type: String, body: Vec<u8>, headers: Vec<(String, String)> },
    /// Read the request, then close the connection without answering.
    Reset,
    /// 200 `application/json`, no `Content-Length`, a body of `bytes` bytes
    /// (`{"a":"xxx…`) streamed until done or the client goes away; then the connection closes.
    HugeBody { bytes: usize },
}

impl Fault {
    pub fn status(status: u16, content_type: &str, body: &str) -> Fault {
        Fault::Status { status, content_type: content_type.into(), body: body.into(), headers: Vec::new() }
    }

    /// An OAuth error answer as Dex writes it: `error`, and `error_description` only when
    /// there is one.
    pub fn oauth(status: u16, error: &str, description: Option<&str>) -> Fault {
        let body = match description {
            Some(d) => format!(r#"{{"error":"{error}","error_description":"{d}"}}"#),
            None => format!(r#"{{"error":"{error}"}}"#),
        };
        Fault::status(status, "application/json", &body)
    }

    /// `status` with `Retry-After: seconds` and an OAuth-style JSON error body.
    pub fn retry_after(status: u16, seconds: u64) -> Fault {
        let error = if status == 429 { "slow_down" } else { "temporarily_unavailable" };
        let body = format!(r#"{{"error":"{error}","error_description":"try again in {seconds} seconds"}}"#);
        Fault::Status {
            status,
            content_type: "application/json".into(),
            body: body.into_bytes(),
            headers: vec![("Retry-After".into(), seconds.to_string())],
        }
    }

    fn send(&self, w: &mut dyn Write, keep_alive: bool) -> io::Result<After> {
        match self {
            Fault::Status { status, content_type, body, headers } => {
                let mut response = Response::new(*status, content_type, body.clone());
                response.headers.extend(headers.iter().cloned());
                response.send(w, keep_alive)
            }
            Fault::Reset => Ok(After::Abort),
            Fault::HugeBody { bytes } => {
                w.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")?;
                let opening = br#"{"a":""#;
                let mut left = *bytes;
                let first = opening.len().min(left);
                w.write_all(&opening[..first])?;
                left -= first;
                let chunk = [b'x'; 64 * 1024];
                while left > 0 {
                    let n = chunk.len().min(left);
                    w.write_all(&chunk[..n])?;
                    left -= n;
                }
                w.flush()?;
                Ok(After::Close)
            }
        }
    }
}

/// One request as the test Dex received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path including the query string.
    pub path: String,
    /// Names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body decoded as `application/x-www-form-urlencoded` (whatever the Content-Type),
    /// in order; pairs that do not decode are left out.
    pub form: Vec<(String, String)>,
    /// HTTP Basic credentials, each side URL-unescaped as Dex does; `None` when absent or
    /// when any step (base64, `:`, unescaping) fails.
    pub basic: Option<(String, String)>,
    /// Whether the TLS client presented a certificate.
    pub client_cert: bool,
}

impl Recorded {
    /// The first header with this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }

    /// The first form field with this name.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of this form field, in order.
    pub fn fields(&self, name: &str) -> Vec<&str> {
        self.form.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }

    fn from_request(request: &Request) -> Recorded {
        let basic = basic_credentials(request.header("authorization"))
            .and_then(|(id, secret)| Some((http::query_unescape(&id)?, http::query_unescape(&secret)?)));
        Recorded {
            method: request.method.clone(),
            path: request.target.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            form: http::parse_form(&request.body).0,
            basic,
            client_cert: request.client_cert,
        }
    }
}

/// A running test Dex; dropping it stops the server.
pub struct Dex {
    state: Arc<State>,
    ca: Ca,
    ca_pem: String,
    server: Server,
}

struct State {
    config: DexConfig,
    issuer: String,
    source_key: SigningKey,
    dex_key: Mutex<SigningKey>,
    requests: Mutex<Vec<Recorded>>,
    faults: Mutex<VecDeque<Fault>>,
    delay: Mutex<Duration>,
    issued: Mutex<Vec<String>>,
}

impl State {
    fn new(config: DexConfig, issuer: String) -> State {
        State {
            config,
            issuer,
            source_key: SigningKey::source_cluster(),
            dex_key: Mutex::new(SigningKey::dex()),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            delay: Mutex::new(Duration::ZERO),
            issued: Mutex::new(Vec::new()),
        }
    }
}

impl Dex {
    /// Starts on 127.0.0.1 with a port chosen by the kernel and a fresh CA.
    pub fn start(config: DexConfig) -> Dex {
        let listener = http::bind();
        let addr = listener.local_addr().expect("listener address");
        let ca = Ca::new("testkit dex CA");
        let client_ca = match &config.client_auth {
            ClientAuth::None => None,
            ClientAuth::Required(pem) => Some(pem.as_str()),
        };
        let identity = match &config.self_signed {
            Some(self_signed) => self_signed.identity(),
            None => ca.server_identity(),
        };
        let ca_pem = if config.self_signed.is_some() { identity.cert_pem.clone() } else { ca.cert_pem() };
        let tls = pki::server_config(&identity, client_ca, config.tls12_only);
        let state = Arc::new(State::new(config, format!("https://{addr}/dex")));
        let handler_state = Arc::clone(&state);
        let handler = move |request: &Request, w: &mut dyn Write| handle(&handler_state, request, w);
        let server = Server::start(listener, move |tcp| http::serve_tls(tcp, Arc::clone(&tls), &handler));
        Dex { state, ca, ca_pem, server }
    }

    /// `https://127.0.0.1:PORT/dex`
    pub fn issuer(&self) -> String {
        self.state.issuer.clone()
    }

    /// The issuer plus `/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.state.issuer)
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The CA that signed the server certificate, PEM (the certificate itself when it is
    /// self-signed).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA that signed the server certificate, to issue more certificates from.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// Every request received so far, on any path, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }

    /// How many requests went to the token path, with any method.
    pub fn token_requests(&self) -> usize {
        lock(&self.state.requests).iter().filter(|r| path_of(&r.path) == TOKEN_PATH).count()
    }

    /// Every token this Dex issued, in order (to prove none leaks).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    /// Queues `fault` for the next token-path request (first in, first out).
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.state.faults).push_back(fault);
    }

    /// Replaces the ID-token signing key, as a Dex restart with memory storage does: tokens
    /// issued from now on are signed by [`SigningKey::dex_rotated`], and the JWKS names only it.
    pub fn rotate_signing_key(&self) {
        *lock(&self.state.dex_key) = SigningKey::dex_rotated();
    }

    /// The key that signs the ID tokens this Dex issues now.
    pub fn signing_key(&self) -> SigningKey {
        lock(&self.state.dex_key).clone()
    }

    /// Delays every token-path answer by `delay`, counted from when the request was read.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.state.delay) = delay;
    }
}

fn handle(state: &State, request: &Request, w: &mut dyn Write) -> io::Result<After> {
    lock(&state.requests).push(Recorded::from_request(request));
    let response = match request.path() {
        TOKEN_PATH => {
            let delay = *lock(&state.delay);
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            let fault = lock(&state.faults).pop_front();
            if let Some(fault) = fault {
                return fault.send(w, request.keep_alive);
            }
            token(state, request, time::now())
        }
        "/dex/.well-known/openid-configuration" => Response::json(200, discovery(&state.issuer, &state.config)),
        "/dex/keys" => Response::json(200, lock(&state.dex_key).jwks_json()),
        _ => Response::new(404, "text/plain; charset=utf-8", "404 page not found\n"),
    };
    response.send(w, request.keep_alive)
}

/// The token endpoint: Dex's `handleToken`, `withClientFromStorage` and
/// `handleTokenExchange`, check for check.
fn token(state: &State, request: &Request, now: i64) -> Response {
    let config = &state.config;
    if request.method != "POST" {
        return oauth_error(400, "invalid_request", "method not allowed");
    }
    let (form, form_ok) =
        if is_form(request.header("content-type")) { http::parse_form(&request.body) } else { (Vec::new(), true) };
    if !form_ok {
        return oauth_error(400, "invalid_request", "");
    }
    let field = |name: &str| form.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str());
    if field("grant_type") != TOKEN_EXCHANGE || !config.grant_enabled {
        return oauth_error(400, "unsupported_grant_type", "");
    }
    let (client_id, client_secret) = match basic_credentials(request.header("authorization")) {
        Some((id, secret)) => {
            let Some(id) = http::query_unescape(&id) else {
                return oauth_error(400, "invalid_request", "client_id improperly encoded");
            };
            let Some(secret) = http::query_unescape(&secret) else {
                return oauth_error(400, "invalid_request", "client_secret improperly encoded");
            };
            (id, secret)
        }
        None => (field("client_id").to_string(), field("client_secret").to_string()),
    };
    let Some(client) = config.clients.iter().find(|c| c.id == client_id && c.secret == client_secret) else {
        return oauth_error(401, "invalid_client", "Invalid client credentials.");
    };
    let subject_token_type = field("subject_token_type");
    if subject_token_type != ID_TOKEN && subject_token_type != ACCESS_TOKEN {
        return oauth_error(400, "request_not_supported", "Invalid subject_token_type.");
    }
    let subject_token = field("subject_token");
    if subject_token.is_empty() {
        return oauth_error(400, "invalid_request", "Missing subject_token");
    }
    let connector = field("connector_id");
    if !config.connectors.iter().any(|c| c == connector) {
        return oauth_error(400, "invalid_request", "Requested connector does not exist.");
    }
    // The oidc connector needs userinfo for access tokens, which ServiceAccount issuers lack.
    let subject = match subject_token_type {
        ID_TOKEN => verify_subject(&state.source_key, subject_token, now),
        _ => None,
    };
    let Some(subject) = subject else {
        return oauth_error(401, "access_denied", "");
    };
    let requested = match field("requested_token_type") {
        "" => ACCESS_TOKEN,
        other => other,
    };
    if requested != ID_TOKEN && requested != ACCESS_TOKEN {
        return oauth_error(400, "request_not_supported", "Invalid requested_token_type.");
    }
    let scopes: Vec<&str> = field("scope").split_whitespace().collect();
    // Dex's newIDToken: every cross-client peer must trust the client, or the whole
    // exchange fails with a bare 500. RFC 8693 `audience` is never read.
    let peers: Vec<&str> = scopes.iter().filter_map(|scope| scope.strip_prefix(CROSS_CLIENT)).collect();
    let trusted = |peer: &str| {
        peer == client.id || config.clients.iter().any(|c| c.id == peer && c.trusted_peers.contains(&client.id))
    };
    if !peers.iter().all(|peer| trusted(peer)) {
        return oauth_error(500, "server_error", "");
    }
    let claims = issued_claims(&state.issuer, &client.id, &subject, connector, &scopes, now, config.id_token_ttl);
    let access_token = lock(&state.dex_key).sign(&claims);
    lock(&state.issued).push(access_token.clone());
    let mut body = format!(
        r#"{{"access_token":{},"issued_token_type":{},"token_type":"bearer""#,
        json::to_string(&access_token),
        json::to_string(requested)
    );
    if let Some(expires_in) = config.expires_in {
        body.push_str(&format!(r#","expires_in":{expires_in}"#));
    }
    body.push_str("}\n");
    Response::json(200, body).with_header("Cache-Control", "no-store")
}

/// The subject's `sub` when the token is signed by the source cluster and is current.
fn verify_subject(key: &SigningKey, token: &str, now: i64) -> Option<String> {
    let claims: Object = json::from_str(&key.verify(token).ok()?).ok()?;
    let current = jwt::claim_int(&claims, "exp").is_some_and(|exp| exp > now)
        && jwt::claim_int(&claims, "nbf").is_none_or(|nbf| nbf <= now);
    let sub = jwt::claim_str(&claims, "sub").filter(|s| !s.is_empty())?;
    (jwt::claim_str(&claims, "iss").as_deref() == Some(SOURCE_ISSUER) && current).then_some(sub)
}

/// Dex's ID token claims for `subject` (the ServiceAccount's `sub`) via `connector`.
fn issued_claims(
    issuer: &str,
    client_id: &str,
    subject: &str,
    connector: &str,
    scopes: &[&str],
    now: i64,
    ttl: i64,
) -> String {
    let mut claims = Object::new();
    claims.insert("iss".into(), string(issuer));
    claims.insert("sub".into(), string(&opaque_subject(subject, connector)));
    // Dex's getAudience: the requested peers (in order, as asked), then the client unless
    // asked already; one audience is written as a string, and with more than one `azp`
    // names the client.
    let mut audience: Vec<&str> = scopes.iter().filter_map(|scope| scope.strip_prefix(CROSS_CLIENT)).collect();
    if !audience.contains(&client_id) {
        audience.push(client_id);
    }
    if let [only] = audience[..] {
        claims.insert("aud".into(), string(only));
    } else {
        let mut list = miniserde::json::Array::new();
        list.extend(audience.iter().map(|a| string(a)));
        claims.insert("aud".into(), miniserde::json::Value::Array(list));
        claims.insert("azp".into(), string(client_id));
    }
    claims.insert("exp".into(), int(now + ttl));
    claims.insert("iat".into(), int(now));
    if scopes.contains(&"profile") {
        claims.insert("name".into(), string(subject));
        claims.insert("preferred_username".into(), string(subject));
    }
    if scopes.contains(&"federated:id") {
        let federated = object([("connector_id", string(connector)), ("user_id", string(subject))]);
        claims.insert("federated_claims".into(), federated);
    }
    json::to_string(&claims)
}

/// Dex's `sub`: base64url of the protobuf message `{1: user_id, 2: connector_id}`.
fn opaque_subject(user_id: &str, connector: &str) -> String {
    let mut message = Vec::new();
    for (tag, value) in [(0x0a_u8, user_id), (0x12, connector)] {
        message.push(tag);
        let mut len = value.len();
        while len >= 0x80 {
            message.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        message.push(len as u8);
        message.extend_from_slice(value.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(message)
}

fn discovery(issuer: &str, config: &DexConfig) -> String {
    let grant_enabled = config.grant_enabled;
    let token_endpoint = config.discovered_token_endpoint.clone().unwrap_or_else(|| format!("{issuer}/token"));
    let mut grants = vec!["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"];
    if grant_enabled {
        grants.push(TOKEN_EXCHANGE);
    }
    let strings = |items: &[&str]| {
        let mut list = miniserde::json::Array::new();
        list.extend(items.iter().map(|s| string(s)));
        miniserde::json::Value::Array(list)
    };
    let document = object([
        ("issuer", string(issuer)),
        ("authorization_endpoint", string(&format!("{issuer}/auth"))),
        ("token_endpoint", string(&token_endpoint)),
        ("jwks_uri", string(&format!("{issuer}/keys"))),
        ("userinfo_endpoint", string(&format!("{issuer}/userinfo"))),
        ("device_authorization_endpoint", string(&format!("{issuer}/device/code"))),
        ("introspection_endpoint", string(&format!("{issuer}/token/introspect"))),
        ("grant_types_supported", strings(&grants)),
        ("response_types_supported", array([string("code")])),
        ("subject_types_supported", array([string("public")])),
        ("id_token_signing_alg_values_supported", array([string("RS256")])),
        ("code_challenge_methods_supported", strings(&["S256", "plain"])),
        ("scopes_supported", strings(&["openid", "email", "groups", "profile", "offline_access"])),
        ("token_endpoint_auth_methods_supported", strings(&["client_secret_basic", "client_secret_post"])),
        (
            "claims_supported",
            strings(&[
                "iss",
                "sub",
                "aud",
                "iat",
                "exp",
                "email",
                "email_verified",
                "locale",
                "name",
                "preferred_username",
                "at_hash",
            ]),
        ),
    ]);
    json::to_string(&document)
}

/// Go's `Request.BasicAuth`: scheme `Basic` (any case), standard base64, split at the first
/// `:`. Not yet unescaped.
fn basic_credentials(authorization: Option<&str>) -> Option<(String, String)> {
    let value = authorization?;
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case("basic ") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(&value[6..]).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn is_form(content_type: Option<&str>) -> bool {
    let media = content_type.unwrap_or_default().split(';').next().unwrap_or_default();
    media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    let body = if description.is_empty() {
        format!(r#"{{"error":{}}}"#, json::to_string(error))
    } else {
        format!(r#"{{"error":{},"error_description":{}}}"#, json::to_string(error), json::to_string(description))
    };
    Response::json(status, body)
}

fn path_of(target: &str) -> &str {
    target.split('?').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{mint_sa_token, mint_sa_token_at};

    const ISSUER: &str = "https://127.0.0.1:1/dex";

    fn state(config: DexConfig) -> State {
        State::new(config, ISSUER.into())
    }

    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// A token-path request with these form fields and Authorization header.
    fn request(method: &str, fields: &[(&str, &str)], authorization: Option<String>) -> Request {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        let mut headers = vec![("content-type".to_string(), "application/x-www-form-urlencoded".to_string())];
        if let Some(authorization) = authorization {
            headers.push(("authorization".into(), authorization));
        }
        Request {
            method: method.into(),
            target: TOKEN_PATH.into(),
            headers,
            body: body.join("&").into_bytes(),
            client_cert: false,
            keep_alive: false,
        }
    }

    fn basic(id: &str, secret: &str) -> Option<String> {
        Some(format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))))
    }

    fn good_fields(subject: &str) -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", TOKEN_EXCHANGE.into()),
            ("subject_token", subject.into()),
            ("subject_token_type", ID_TOKEN.into()),
            ("connector_id", "kubernetes".into()),
            ("requested_token_type", ID_TOKEN.into()),
            ("scope", "openid profile federated:id".into()),
        ]
    }

    /// Runs the good request with `changes` applied (value `None` removes the field).
    fn check(changes: &[(&str, Option<&str>)], authorization: Option<String>, expected: (u16, &str)) {
        let subject = mint_sa_token("argocd", "argocd-application-controller", "dex", 600);
        let mut fields = good_fields(&subject);
        for (name, value) in changes {
            fields.retain(|(n, _)| n != name);
            if let Some(value) = value {
                fields.push((name, value.to_string()));
            }
        }
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = token(&state(DexConfig::default()), &request("POST", &fields, authorization), time::now());
        assert_eq!((response.status, String::from_utf8_lossy(&response.body).as_ref()), expected);
    }

    fn argocd() -> Option<String> {
        basic("argocd", &encode("s3cr+t/=%:x"))
    }

    #[test]
    fn error_table_in_dex_order() {
        let bad = (400, r#"{"error":"invalid_request","error_description":"method not allowed"}"#);
        let response = token(&state(DexConfig::default()), &request("GET", &[], None), 0);
        assert_eq!((response.status, String::from_utf8_lossy(&response.body).as_ref()), bad);

        // Each row also breaks every later check, to prove which one wins.
        let later = [
            ("subject_token_type", Some("urn:x")),
            ("subject_token", Some("")),
            ("connector_id", Some("nope")),
            ("requested_token_type", Some("urn:y")),
        ];
        let unsupported = (400, r#"{"error":"unsupported_grant_type"}"#);
        check(&[&[("grant_type", Some("password"))][..], &later].concat(), basic("%zz", "x"), unsupported);
        let encoded = (400, r#"{"error":"invalid_request","error_description":"client_id improperly encoded"}"#);
        check(&later, basic("%zz", "x"), encoded);
        let encoded = (400, r#"{"error":"invalid_request","error_description":"client_secret improperly encoded"}"#);
        check(&later, basic("argocd", "100%"), encoded);
        let invalid_client = (401, r#"{"error":"invalid_client","error_description":"Invalid client credentials."}"#);
        check(&later, basic("argocd", "s3cr+t%2F%3D%25%3Ax"), invalid_client); // '+' is read as a space
        check(&later, None, invalid_client);
        check(&later, basic("public-cli", "x"), invalid_client);
        let subject_type =
            (400, r#"{"error":"request_not_supported","error_description":"Invalid subject_token_type."}"#);
        check(&later, argocd(), subject_type);
        let missing = (400, r#"{"error":"invalid_request","error_description":"Missing subject_token"}"#);
        check(&later[1..], argocd(), missing);
        let connector =
            (400, r#"{"error":"invalid_request","error_description":"Requested connector does not exist."}"#);
        check(&later[2..], argocd(), connector);
        check(&[("connector_id", None), later[3]], argocd(), connector);
        let denied = (401, r#"{"error":"access_denied"}"#);
        check(&[("subject_token", Some("a.b.c")), later[3]], argocd(), denied);
        check(&[("subject_token_type", Some(ACCESS_TOKEN)), later[3]], argocd(), denied);
        let expired = mint_sa_token_at("argocd", "x", "dex", time::now() - 7200, time::now() - 3600);
        check(&[("subject_token", Some(&expired))], argocd(), denied);
        let foreign = SigningKey::dex()
            .sign(r#"{"iss":"https://kubernetes.default.svc.cluster.local","sub":"x","exp":9999999999}"#);
        check(&[("subject_token", Some(&foreign))], argocd(), denied);
        let requested =
            (400, r#"{"error":"request_not_supported","error_description":"Invalid requested_token_type."}"#);
        check(&later[3..], argocd(), requested);
    }

    #[test]
    fn form_credentials_and_public_clients_authenticate() {
        let subject = mint_sa_token("argocd", "argocd-application-controller", "dex", 600);
        let state = state(DexConfig::default());
        let mut fields = good_fields(&subject);
        fields.push(("client_id", "argocd".into()));
        fields.push(("client_secret", "s3cr+t/=%:x".into()));
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(token(&state, &request("POST", &fields, None), time::now()).status, 200);
        let fields = good_fields(&subject);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(token(&state, &request("POST", &fields, basic("public-cli", "")), time::now()).status, 200);
    }

    #[test]
    fn success_issues_a_dex_token() -> Result<(), String> {
        let subject = mint_sa_token("argocd", "argocd-application-controller", "dex", 600);
        let fields = good_fields(&subject);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = token(&state(DexConfig::default()), &request("POST", &fields, argocd()), 1_000_000);
        assert_eq!(response.status, 401, "the subject token is not yet valid at t=1000000");
        let now = time::now();
        let response = token(&state(DexConfig::default()), &request("POST", &fields, argocd()), now);
        assert_eq!(response.status, 200);
        assert_eq!(http::header(&response.headers, "cache-control"), Some("no-store"));
        let body: Object = json::from_str(&String::from_utf8_lossy(&response.body)).map_err(|e| e.to_string())?;
        assert_eq!(jwt::claim_str(&body, "issued_token_type").as_deref(), Some(ID_TOKEN));
        assert_eq!(jwt::claim_str(&body, "token_type").as_deref(), Some("bearer"));
        assert_eq!(jwt::claim_int(&body, "expires_in"), Some(86399));
        let token = jwt::claim_str(&body, "access_token").ok_or("no access_token")?;
        let claims: Object = json::from_str(&SigningKey::dex().verify(&token)?).map_err(|e| e.to_string())?;
        let sa = "system:serviceaccount:argocd:argocd-application-controller";
        assert_eq!(jwt::claim_str(&claims, "iss").as_deref(), Some(ISSUER));
        assert_eq!(jwt::claim_str(&claims, "aud").as_deref(), Some("argocd"));
        assert_eq!(jwt::claim_str(&claims, "name").as_deref(), Some(sa));
        assert_eq!(jwt::claim_str(&claims, "preferred_username").as_deref(), Some(sa));
        assert_eq!(jwt::claim_int(&claims, "exp"), Some(now + 86400));
        assert_eq!(jwt::claim_str(&claims, "sub").as_deref(), Some(opaque_subject(sa, "kubernetes").as_str()));
        let Some(miniserde::json::Value::Object(federated)) = claims.get("federated_claims") else {
            return Err("no federated_claims".into());
        };
        assert_eq!(jwt::claim_str(federated, "user_id").as_deref(), Some(sa));
        assert_eq!(jwt::claim_str(federated, "connector_id").as_deref(), Some("kubernetes"));
        Ok(())
    }

    /// A good exchange by `argocd` with these extra form fields; the status and the claims.
    fn exchange_with(config: DexConfig, extra: &[(&str, &str)]) -> (u16, Option<Object>) {
        let subject = mint_sa_token("argocd", "argocd-application-controller", "dex", 600);
        let mut fields: Vec<(&str, String)> = good_fields(&subject);
        fields.retain(|(name, _)| !extra.iter().any(|(n, _)| n == name));
        fields.extend(extra.iter().map(|(n, v)| (*n, v.to_string())));
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = token(&state(config), &request("POST", &fields, argocd()), time::now());
        let claims = (response.status == 200).then(|| {
            let body: Object = json::from_str(&String::from_utf8_lossy(&response.body)).unwrap();
            let token = jwt::claim_str(&body, "access_token").unwrap();
            json::from_str(&SigningKey::dex().verify(&token).unwrap()).unwrap()
        });
        if response.status == 500 {
            assert_eq!(String::from_utf8_lossy(&response.body), r#"{"error":"server_error"}"#);
        }
        (response.status, claims)
    }

    fn with_peers() -> DexConfig {
        let mut config = DexConfig::default();
        for (id, peers) in [("prod-eu", vec!["argocd"]), ("prod-us", vec!["argocd"]), ("stranger", vec!["other"])] {
            config.clients.push(Client {
                id: id.into(),
                secret: format!("{id}-secret"),
                trusted_peers: peers.into_iter().map(String::from).collect(),
                ..Client::default()
            });
        }
        config
    }

    #[test]
    fn audiences_follow_dex_cross_client_scopes() {
        let aud = |claims: &Object| json::to_string(claims.get("aud").unwrap());
        // RFC 8693 audience is ignored: aud stays the client
        let (status, claims) = exchange_with(with_peers(), &[("audience", "prod-eu")]);
        let claims = claims.unwrap();
        assert_eq!((status, aud(&claims)), (200, r#""argocd""#.to_string()));
        assert!(claims.get("azp").is_none());
        // a trusting peer: aud is the peer plus the client, azp the client
        let (_, claims) = exchange_with(with_peers(), &[("scope", "openid audience:server:client_id:prod-eu")]);
        let claims = claims.unwrap();
        assert_eq!(aud(&claims), r#"["prod-eu","argocd"]"#);
        assert_eq!(jwt::claim_str(&claims, "azp").as_deref(), Some("argocd"));
        let both = "openid audience:server:client_id:prod-us audience:server:client_id:prod-eu";
        assert_eq!(
            aud(&exchange_with(with_peers(), &[("scope", both)]).1.unwrap()),
            r#"["prod-us","prod-eu","argocd"]"#
        );
        // the client itself may be asked for
        let own = "openid audience:server:client_id:argocd";
        assert_eq!(aud(&exchange_with(with_peers(), &[("scope", own)]).1.unwrap()), r#""argocd""#);
        // a peer that does not trust the client, or no such client: a bare 500
        for peer in ["stranger", "nobody"] {
            let scope = format!("openid audience:server:client_id:prod-eu audience:server:client_id:{peer}");
            assert_eq!(exchange_with(with_peers(), &[("scope", &scope)]).0, 500, "{peer}");
        }
    }

    #[test]
    fn opaque_subject_is_dex_protobuf() {
        // Dex's sub for user "CgR1c2VyEgVsb2NhbA" is {1:"user",2:"local"}.
        assert_eq!(opaque_subject("user", "local"), "CgR1c2VyEgVsb2NhbA");
    }
}
