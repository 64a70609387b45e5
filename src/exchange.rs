//! The RFC 8693 exchange: the request fields, finding the endpoint (given, remembered or
//! discovered), the retry loop, and the reading of the answer into a [`Credential`] or an
//! [`Error`] (docs/usage.md, "Exit codes"; docs/troubleshooting.md).
//!
//! Request building, answer interpretation and expiry arithmetic are pure and take `now`
//! as an argument; [`Call::fetch`] and the methods it calls touch the network, through
//! `http`, and read the clock for the answer.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use miniserde::json::{self, Value};

use crate::cache::Cache;
use crate::claims;
use crate::error::{Error, NetFailure};
use crate::exec_credential::Credential;
use crate::form;
use crate::http;
use crate::proxy;
use crate::redact;
use crate::secret::Secret;
use crate::time::{rfc3339, unix_now};
use crate::tls;
use crate::url::Url;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Dex's cross-client scope: `aud` gets the peer client named after it (Dex
/// `server/oauth2.go`, `parseCrossClientScope`).
pub const CROSS_CLIENT_SCOPE: &str = "audience:server:client_id:";

/// Where the exchange is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// The token endpoint itself.
    Token(Url),
    /// An issuer whose discovery document names the token endpoint.
    Issuer(Url),
}

/// What to ask the identity provider for, and how hard to try.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub endpoint: Endpoint,
    pub client_id: String,
    pub connector: Option<String>,
    /// Normalised: split on commas and spaces, empty entries and duplicates dropped.
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    /// Full URNs.
    pub subject_token_type: String,
    pub requested_token_type: String,
    /// Whether a discovered or remembered `http://` endpoint off loopback is acceptable.
    pub allow_insecure_http: bool,
    pub retries: u32,
    /// The token endpoints the operator policy allows (exact URLs); `None`: any. A
    /// remembered endpoint outside it is forgotten, a discovered one refused.
    pub allowed_endpoints: Option<Vec<String>>,
}

/// What one [`Call::fetch`] did, for `inspect` and `-v`: the last attempt wins.
#[derive(Debug, Default)]
pub struct Trace {
    /// The token endpoint used, and where it came from when not given.
    pub endpoint: Option<(Url, &'static str)>,
    pub route: Option<proxy::Route>,
    pub status: Option<u16>,
    pub tls_version: Option<&'static str>,
    pub elapsed: Option<Duration>,
    /// The server's clock, from its `Date` header.
    pub server_date: Option<i64>,
}

/// The scopes sent: the configured ones, and with Dex (a connector is set) Dex's
/// cross-client scope for each audience, since Dex never reads RFC 8693 `audience`.
pub fn scopes(request: &Request) -> Vec<String> {
    let mut scopes = request.scopes.clone();
    if request.connector.is_some() {
        for audience in &request.audiences {
            let scope = format!("{CROSS_CLIENT_SCOPE}{audience}");
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    }
    scopes
}

/// The form fields, in the documented order.
fn request_body(request: &Request, subject: &Secret) -> String {
    let scope = scopes(request).join(" ");
    let mut pairs = vec![
        ("grant_type", GRANT_TYPE),
        ("subject_token", subject.expose()),
        ("subject_token_type", request.subject_token_type.as_str()),
        ("requested_token_type", request.requested_token_type.as_str()),
    ];
    if !scope.is_empty() {
        pairs.push(("scope", &scope));
    }
    if let Some(connector) = &request.connector {
        pairs.push(("connector_id", connector));
    }
    for audience in &request.audiences {
        pairs.push(("audience", audience));
    }
    form::encode(&pairs)
}

/// The process variables a connection depends on, read once by `main` (docs/usage.md,
/// "Networks"): where the system's CA bundle is, and the proxies. The policy checks them
/// too, since they choose files to read and where secrets travel.
#[derive(Debug, Default)]
pub struct Network {
    pub trust: tls::SystemTrust,
    pub proxies: proxy::Env,
}

/// One exchange as `get-token` and `inspect` make it: what to ask, the two secrets it is
/// asked with, how the identity provider is reached (the run's TLS settings and the
/// process's [`Network`]), and by when. [`Call::fetch`] makes it; `trace` keeps what it
/// did (start it empty).
pub struct Call<'a> {
    pub request: &'a Request,
    pub client_secret: &'a Secret,
    pub subject: &'a Secret,
    pub tls: &'a tls::Settings,
    pub network: &'a Network,
    pub deadline: Instant,
    pub trace: RefCell<Trace>,
}

/// The request as it goes on the wire, built once for every endpoint tried: both hold a
/// secret.
struct Wire {
    authorization: Secret,
    body: String,
}

impl Call<'_> {
    /// One exchange at the identity provider. With an issuer, the token endpoint comes from
    /// the cache when remembered (it gets half the time left, so a dead one leaves time to
    /// look again), else from discovery (then remembered). A remembered endpoint that fails
    /// in any way but an OAuth refusal is discovered again, once; when discovery names the
    /// same URL, the first error stands.
    pub fn fetch(&self, cache: Option<&Cache>) -> Result<Credential, Error> {
        let request = self.request;
        let tls = tls::client(self.tls, &self.network.trust)?;
        let proxies = self.network.proxies.checked()?;
        let client_for = |url: &Url| {
            let route = proxy::route(url, proxies)?;
            let client = http::client(&tls, route.proxy.as_deref(), url);
            self.trace.borrow_mut().route = Some(route);
            client
        };
        let wire = Wire {
            authorization: Secret::new(form::basic_auth(&request.client_id, self.client_secret.expose())),
            body: request_body(request, self.subject),
        };
        let exchange_at = |url: &Url, source: &'static str, deadline: Instant| {
            self.trace.borrow_mut().endpoint = Some((url.clone(), source));
            if !endpoint_allowed(request, url) {
                return Err(Error::Policy(format!(
                    "the token endpoint {} ({source}) is not in the policy's endpoints",
                    redact::echo(url.as_str().as_bytes(), 200)
                )));
            }
            self.exchange(&client_for(url)?, url, &wire, deadline)
        };
        let issuer = match &request.endpoint {
            Endpoint::Token(url) => return exchange_at(url, "given", self.deadline),
            Endpoint::Issuer(issuer) => issuer,
        };
        let discover_at = |deadline: Instant| -> Result<Url, Error> {
            let discovery = issuer.discovery();
            let found = self.discover(&client_for(&discovery)?, &discovery, deadline)?;
            if let Some(cache) = cache {
                cache.write_endpoint(issuer, &found);
            }
            Ok(found)
        };
        let remembered = cache.and_then(|cache| cache.read_endpoint(issuer, request.allow_insecure_http));
        let remembered = remembered.filter(|url| {
            let allowed = endpoint_allowed(request, url);
            if !allowed {
                verbose!("remembered token endpoint {url} is not in the policy's endpoints; discovering again");
            }
            allowed
        });
        let Some(remembered) = remembered else {
            return exchange_at(&discover_at(self.deadline)?, "discovered", self.deadline);
        };
        let half = Instant::now() + self.deadline.saturating_duration_since(Instant::now()) / 2;
        match exchange_at(&remembered, "remembered from an earlier discovery", half) {
            Err(err) if is_stale(&err) => {
                verbose!("remembered token endpoint {remembered} failed ({err}); discovering again");
                let found = discover_at(self.deadline)?;
                if found == remembered {
                    verbose!("discovery names the same token endpoint");
                    return Err(err);
                }
                exchange_at(&found, "discovered", self.deadline)
            }
            result => result,
        }
    }

    /// POSTs the exchange to `url`, retrying transient failures until `deadline`, and reads
    /// the answer.
    fn exchange(&self, client: &http::Client, url: &Url, wire: &Wire, deadline: Instant) -> Result<Credential, Error> {
        retry(url, deadline, self.request.retries, |attempt, timeout| {
            verbose!("POST {url} (attempt {attempt}, timeout {} ms)", timeout.as_millis());
            let started = Instant::now();
            let result = http::post_form(client, url, &wire.authorization, &wire.body, timeout);
            let mut seen = self.trace.borrow_mut();
            seen.elapsed = Some(started.elapsed());
            seen.tls_version = client.tls_version();
            let response = result?;
            (seen.status, seen.server_date) = (Some(response.status), response.date);
            drop(seen);
            verbose!("HTTP {} from {url} in {} ms", response.status, started.elapsed().as_millis());
            interpret(url, &response, self.request, unix_now())
        })
    }

    /// Finds the token endpoint in the issuer's OpenID discovery document at `url`.
    fn discover(&self, client: &http::Client, url: &Url, deadline: Instant) -> Result<Url, Error> {
        let response = retry(url, deadline, self.request.retries, |attempt, timeout| {
            verbose!("GET {url} (attempt {attempt})");
            let response = http::get(client, url, timeout)?;
            match response.status {
                200..=299 => Ok(response),
                status => Err(status_error("discovery", url, status, &response)),
            }
        })?;
        let bad =
            |reason: &str| Error::BadResponse { url: url.to_string(), status: response.status, reason: reason.into() };
        let document = claims::object(&response.body).ok_or_else(|| bad("discovery document is not a JSON object"))?;
        let endpoint = match document.get("token_endpoint") {
            Some(Value::String(endpoint)) if !endpoint.is_empty() => endpoint,
            _ => return Err(bad("discovery document has no token_endpoint")),
        };
        let endpoint = Url::parse(endpoint, self.request.allow_insecure_http, "token_endpoint from discovery")?;
        verbose!("discovered token endpoint {endpoint}");
        Ok(endpoint)
    }
}

fn endpoint_allowed(request: &Request, url: &Url) -> bool {
    request.allowed_endpoints.as_ref().is_none_or(|allowed| allowed.iter().any(|a| a == url.as_str()))
}

/// Whether a failure at a remembered endpoint may mean the endpoint moved: anything but
/// the identity provider's own OAuth answer, or a problem on this side.
fn is_stale(err: &Error) -> bool {
    match err {
        Error::Network { .. }
        | Error::Tls { .. }
        | Error::Proxy { .. }
        | Error::Refused { .. }
        | Error::Unavailable { .. }
        | Error::BadResponse { .. } => true,
        Error::OAuth { .. }
        | Error::Usage(_)
        | Error::ConfigFile { .. }
        | Error::SubjectToken { .. }
        | Error::Runtime(_)
        | Error::Username(_)
        | Error::Policy(_)
        | Error::CrossClient { .. }
        | Error::Audience { .. } => false,
    }
}

/// Reads the identity provider's answer. Nothing of a 2xx body is echoed but its length
/// and, for a wrong `issued_token_type`, that field (redacted and escaped); the `aud` of
/// an issued JWT must hold every requested audience (an opaque token is not checked).
fn interpret(url: &Url, response: &http::Response, request: &Request, now: i64) -> Result<Credential, Error> {
    let requested_type = request.requested_token_type.as_str();
    let status = response.status;
    if !(200..=299).contains(&status) {
        let cross_client = request.connector.is_some() && !request.audiences.is_empty();
        if cross_client && status == 500 && is_bare_server_error(&response.body) {
            return Err(Error::CrossClient {
                url: url.to_string(),
                client_id: redact::echo(request.client_id.as_bytes(), 100),
                audiences: request.audiences.iter().map(|a| redact::echo(a.as_bytes(), 100)).collect(),
            });
        }
        return Err(status_error("token exchange", url, status, response));
    }
    let bad = |reason: String| Error::BadResponse { url: url.to_string(), status, reason };
    let length = response.body.len();
    let Some(answer) = claims::object(&response.body) else {
        return Err(bad(format!("not JSON ({length} bytes, not shown)")));
    };
    let token = match answer.get("access_token") {
        Some(Value::String(token)) if token.len() > MAX_TOKEN => {
            return Err(bad(format!(
                "access_token of {} KiB is larger than a credential may be ({} KiB; not shown)",
                token.len() / 1024,
                MAX_TOKEN / 1024
            )));
        }
        Some(Value::String(token)) if !token.is_empty() => Secret::new(token.clone()),
        _ => return Err(bad(format!("no access_token ({length} bytes, not shown)"))),
    };
    if !is_bearer_token(token.expose()) {
        return Err(bad(format!(
            "access_token is not a valid bearer token (RFC 6750: visible ASCII, no spaces; {} bytes, not shown)",
            token.expose().len()
        )));
    }
    match answer.get("issued_token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(issued)) if issued == requested_type => {}
        Some(Value::String(issued)) => {
            return Err(bad(format!(
                "issued_token_type is {}, requested {requested_type}",
                redact::echo(issued.as_bytes(), 100)
            )));
        }
        Some(_) => return Err(bad("issued_token_type is not a string".into())),
    }
    if let Some(issued) = claims::of(token.expose()) {
        let missing = request.audiences.iter().any(|audience| !claims::has_audience(&issued, audience));
        if missing {
            let got =
                issued.get("aud").map_or("absent".into(), |aud| redact::echo(json::to_string(aud).as_bytes(), 300));
            return Err(Error::Audience {
                url: url.to_string(),
                asked: request.audiences.iter().map(|a| redact::echo(a.as_bytes(), 100)).collect(),
                got,
                dex: request.connector.is_some(),
            });
        }
    }
    let expires_in = answer.get("expires_in").and_then(claims::integer);
    let expires_at = expiration(now, expires_in, claims::exp(token.expose()));
    verbose!(
        "issued token {} (expires_in {}, expirationTimestamp {})",
        token.fingerprint(),
        expires_in.map_or("absent".into(), |s| s.to_string()),
        expires_at.map_or("unknown".into(), rfc3339)
    );
    Ok(Credential { token, expires_at })
}

/// Dex's answer when a cross-client peer does not trust the client: `{"error":"server_error"}`
/// and nothing else.
fn is_bare_server_error(body: &[u8]) -> bool {
    claims::object(body).is_some_and(|answer| {
        matches!(answer.get("error"), Some(Value::String(error)) if error == "server_error")
            && matches!(answer.get("error_description"), None | Some(Value::Null))
    })
}

/// RFC 6750's `b64token`: letters, digits, `-._~+/`, then optional `=` padding. A table
/// lookup per byte: a token is a kilobyte or more.
fn is_bearer_token(token: &str) -> bool {
    const ALLOWED: [bool; 256] = {
        let mut table = [false; 256];
        let mut byte = 0;
        while byte < 256 {
            let b = byte as u8;
            table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            byte += 1;
        }
        table
    };
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| ALLOWED[usize::from(b)])
}

/// An issued token larger than this is refused: it would fit no cache entry
/// (`cache::MAX_ENTRY`, with room for the entry's other fields), so every run would
/// exchange again, and an API server takes no bearer header near this size anyway.
pub const MAX_TOKEN: usize = crate::cache::MAX_ENTRY as usize - 1024;

/// No credential is kept longer than this, whatever the server says (a year).
const MAX_LIFETIME: i64 = 366 * 86_400;

/// The earlier of `now + expires_in` and the JWT's `exp`, minus a margin of
/// min(60 s, 10% of the lifetime), never before `now` nor more than a year after it.
pub fn expiration(now: i64, expires_in: Option<i64>, jwt_exp: Option<i64>) -> Option<i64> {
    let from_expires_in = expires_in.filter(|secs| *secs > 0).map(|secs| now.saturating_add(secs));
    let end = [from_expires_in, jwt_exp].into_iter().flatten().min()?.min(now.saturating_add(MAX_LIFETIME));
    let lifetime = end.saturating_sub(now).max(0);
    let margin = (lifetime / 10).min(60);
    Some((end - margin).max(now))
}

/// Runs `attempt` until it succeeds, fails for good, runs out of `retries` or would pass
/// the deadline. Waits between attempts: `Retry-After` when given, else exponential
/// backoff with full jitter (base 250 ms, cap 4 s).
pub fn retry<T>(
    url: &Url,
    deadline: Instant,
    retries: u32,
    mut attempt: impl FnMut(u32, Duration) -> Result<T, Error>,
) -> Result<T, Error> {
    let attempts = retries + 1;
    let mut number = 1;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Network { url: url.to_string(), proxy: None, failure: NetFailure::NoTimeLeft });
        }
        let left = attempts - number + 1;
        let timeout = (remaining / left).max(remaining.min(Duration::from_secs(2)));
        let err = match attempt(number, timeout) {
            Ok(value) => return Ok(value),
            Err(err) if number < attempts && err.is_retryable() => err,
            Err(err) => return Err(err),
        };
        let wait = match &err {
            Error::Unavailable { retry_after: Some(after), .. } => *after,
            _ => {
                jitter(Duration::from_millis(250).saturating_mul(1 << (number - 1).min(4)).min(Duration::from_secs(4)))
            }
        };
        if wait >= deadline.saturating_duration_since(Instant::now()) {
            verbose!("{err}; no time left for another attempt");
            return Err(err);
        }
        verbose!("{err}; retrying in {} ms", wait.as_millis());
        std::thread::sleep(wait);
        number += 1;
    }
}

/// A uniformly random duration in `0..=max`, from the system's random source (ring's,
/// which TLS uses anyway); no jitter at all if that fails.
fn jitter(max: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        return Duration::ZERO;
    }
    max.mul_f64((u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64)
}

/// An error for a non-2xx answer: OAuth errors, refusals and transient statuses. Every
/// echoed field is redacted and escaped.
fn status_error(what: &'static str, url: &Url, status: u16, response: &http::Response) -> Error {
    let oauth = claims::object(&response.body).and_then(|body| match body.get("error") {
        Some(Value::String(error)) if !error.is_empty() => {
            let description = match body.get("error_description") {
                Some(Value::String(d)) if !d.is_empty() => Some(redact::echo(d.as_bytes(), 300)),
                _ => None,
            };
            Some((redact::echo(error.as_bytes(), 100), description))
        }
        _ => None,
    });
    let echo = || redact::echo(&response.body, 120);
    match status {
        408 | 429 | 500..=599 => Error::Unavailable {
            url: url.to_string(),
            status,
            body: match oauth {
                Some((error, Some(description))) => format!("{error}: {description}"),
                Some((error, None)) => error,
                None => echo(),
            },
            retry_after: response.retry_after,
        },
        400..=499 => match oauth {
            Some((error, description)) => Error::OAuth { status, error, description },
            None => Error::Refused { what, url: url.to_string(), status, body: echo() },
        },
        _ => Error::BadResponse { url: url.to_string(), status, reason: format!("unexpected HTTP status: {}", echo()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use miniserde::json;

    const NOW: i64 = 1_795_860_000;
    const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

    fn request(connector: Option<&str>, scopes: &[&str], audiences: &[&str]) -> Request {
        Request {
            endpoint: Endpoint::Token(dex()),
            client_id: "argocd".into(),
            connector: connector.map(String::from),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
            subject_token_type: ID_TOKEN.into(),
            requested_token_type: ID_TOKEN.into(),
            allow_insecure_http: false,
            retries: 2,
            allowed_endpoints: None,
        }
    }

    fn dex() -> Url {
        Url::parse("https://dex/token", false, "test").unwrap()
    }

    fn jwt(payload: &str) -> String {
        format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    fn answer(status: u16, body: &str) -> http::Response {
        http::Response { status, body: body.as_bytes().to_vec(), retry_after: None, date: None }
    }

    fn check_error(response: http::Response, expected: &str, code: u8) {
        let _subject = Secret::new("subject-token-value");
        let err = interpret(&dex(), &response, &request(None, &[], &[]), NOW).unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert_eq!(err.exit_code(), code);
    }

    /// A call to testkit's Dex whose trust and proxies come only from `network`, never from
    /// the process environment.
    fn call_with(
        network: &Network,
        dex: &testkit::Dex,
        secret: &Secret,
        subject: &Secret,
    ) -> (Result<Credential, Error>, Trace) {
        let mut request = request(Some("kubernetes"), &["openid"], &[]);
        request.endpoint = Endpoint::Token(Url::parse(&dex.token_endpoint(), false, "test").unwrap());
        request.retries = 0;
        let call = Call {
            request: &request,
            client_secret: secret,
            subject,
            tls: &tls::Settings::default(),
            network,
            deadline: Instant::now() + Duration::from_secs(30),
            trace: Default::default(),
        };
        (call.fetch(None), call.trace.into_inner())
    }

    #[test]
    fn a_call_trusts_and_routes_by_the_network_it_is_given() {
        let dex = testkit::Dex::start(testkit::DexConfig::default());
        let temp = testkit::TempDir::new("exchange-network");
        let bundle = temp.path().join("ca.pem");
        std::fs::write(&bundle, dex.ca_pem()).unwrap();
        let secret = Secret::new("s3cr+t/=%:x");
        let subject = Secret::new(testkit::mint_sa_token("argocd", "argocd-server", "dex", 3600));
        let trusting = |proxies: proxy::Env| Network {
            trust: tls::SystemTrust { ssl_cert_file: Some(bundle.clone().into()), ssl_cert_dir: None },
            proxies,
        };

        let (issued, trace) = call_with(&trusting(proxy::Env::default()), &dex, &secret, &subject);
        assert_eq!(dex.issued_tokens(), [issued.unwrap().token.expose().to_string()]);
        assert_eq!(trace.endpoint.map(|(_, source)| source), Some("given"));
        assert_eq!((trace.status, trace.route.unwrap().why.as_str()), (Some(200), "no proxy variable applies"));

        // Without that bundle the test CA is trusted nowhere.
        let err = call_with(&Network::default(), &dex, &secret, &subject).0.unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err}");

        // A proxy variable that is not UTF-8 stops the call before any connection.
        let not_utf8 = proxy::Env { not_utf8: Some("HTTPS_PROXY"), ..proxy::Env::default() };
        let (result, trace) = call_with(&trusting(not_utf8), &dex, &secret, &subject);
        let err = result.unwrap_err();
        assert!(trace.endpoint.is_none());
        assert_eq!((err.exit_code(), err.to_string()), (2, "HTTPS_PROXY is not valid UTF-8".into()));
        assert_eq!(dex.token_requests(), 1, "only the first call reached the token endpoint");
    }

    #[test]
    fn request_carries_the_documented_fields() {
        let body = request_body(
            &request(Some("kubernetes"), &["openid", "profile", "federated:id"], &["prod-eu", "c"]),
            &Secret::new("sa.jwt"),
        );
        // with Dex, each audience is also Dex's cross-client scope
        assert_eq!(
            body,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=sa.jwt\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
             &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
             &scope=openid+profile+federated%3Aid+audience%3Aserver%3Aclient_id%3Aprod-eu+audience%3Aserver%3Aclient_id%3Ac\
             &connector_id=kubernetes&audience=prod-eu&audience=c"
        );
        // without a connector (not Dex), RFC 8693 audience only
        let body = request_body(&request(None, &["openid"], &["a b"]), &Secret::new("sa.jwt"));
        assert!(body.ends_with("&scope=openid&audience=a+b"), "{body}");
        let body = request_body(&request(None, &[], &[]), &Secret::new("t"));
        assert!(!body.contains("scope=") && !body.contains("connector_id"), "{body}");
    }

    #[test]
    fn expiry_arithmetic() {
        // 24 h lifetime: margin 60 s
        assert_eq!(expiration(NOW, Some(86_400), None), Some(NOW + 86_340));
        // the JWT's exp is earlier than expires_in
        assert_eq!(expiration(NOW, Some(86_400), Some(NOW + 300)), Some(NOW + 270));
        // 5 minutes: 10% = 30 s
        assert_eq!(expiration(NOW, None, Some(NOW + 300)), Some(NOW + 270));
        // already expired: never in the past
        assert_eq!(expiration(NOW, None, Some(NOW - 10)), Some(NOW));
        // absurd lifetimes are capped at a year
        assert_eq!(expiration(NOW, None, Some(99_999_999_999_999)), Some(NOW + MAX_LIFETIME - 60));
        assert_eq!(expiration(NOW, Some(i64::MAX), None), Some(NOW + MAX_LIFETIME - 60));
        // expires_in 0 means unknown
        assert_eq!(expiration(NOW, Some(0), None), None);
        assert_eq!(expiration(NOW, None, None), None);
    }

    #[test]
    fn success_takes_the_earlier_expiry() {
        let token = jwt(&format!(r#"{{"exp":{}}}"#, NOW + 600));
        let body = format!(
            r#"{{"access_token":"{token}","issued_token_type":"{ID_TOKEN}","token_type":"bearer","expires_in":86399}}"#
        );
        let issued = interpret(&dex(), &answer(200, &body), &request(None, &[], &[]), NOW).unwrap();
        assert_eq!(issued, Credential { token: Secret::new(token), expires_at: Some(NOW + 540) });
    }

    #[test]
    fn unusable_successes_are_errors() {
        check_error(
            answer(200, r#"{"token_type":"bearer"}"#),
            "unusable answer from https://dex/token (HTTP 200): no access_token (23 bytes, not shown)",
            1,
        );
        check_error(
            answer(200, r#"{"access_token":"x","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#),
            "unusable answer from https://dex/token (HTTP 200): issued_token_type is urn:ietf:params:oauth:token-type:access_token, requested urn:ietf:params:oauth:token-type:id_token",
            1,
        );
        check_error(
            answer(200, "ok"),
            "unusable answer from https://dex/token (HTTP 200): not JSON (2 bytes, not shown)",
            1,
        );
        check_error(
            answer(200, "access_token=eyJhbGciOiJSUzI1NiJ9.e30.c2ln&expires_in=3600"),
            "unusable answer from https://dex/token (HTTP 200): not JSON (58 bytes, not shown)",
            1,
        );
        check_error(
            answer(200, r#"{"token_type":"bearer","note":"opaque"}"#),
            "unusable answer from https://dex/token (HTTP 200): no access_token (39 bytes, not shown)",
            1,
        );
        for bad in ["a b", r"abc\r\nX-Injected: 1", r"ab\u0000c", "tök", "=abc"] {
            check_error(
                answer(200, &format!(r#"{{"access_token":"{bad}"}}"#)),
                &format!(
                    "unusable answer from https://dex/token (HTTP 200): access_token is not a valid bearer token (RFC 6750: visible ASCII, no spaces; {} bytes, not shown)",
                    json::from_str::<String>(&format!("\"{bad}\"")).unwrap().len()
                ),
                1,
            );
        }
        assert!(is_bearer_token("eyJ.a-b_c~d+e/f=="));
    }

    #[test]
    fn the_issued_aud_must_hold_every_requested_audience() {
        let ok = |aud: &str, asked: &[&str], connector: Option<&str>| {
            let body = format!(r#"{{"access_token":"{}"}}"#, jwt(&format!(r#"{{"aud":{aud}}}"#)));
            interpret(&dex(), &answer(200, &body), &request(connector, &[], asked), NOW)
        };
        assert!(ok(r#"["prod-eu","argocd"]"#, &["prod-eu"], Some("k")).is_ok());
        assert!(ok(r#""prod-eu""#, &["prod-eu"], None).is_ok());
        assert!(ok(r#""argocd""#, &[], Some("k")).is_ok());
        let err = ok(r#""argocd""#, &["prod-eu"], None).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert_eq!(
            err.to_string(),
            "unusable answer from https://dex/token: asked for audience prod-eu, the issued token's aud is \"argocd\"; the identity provider ignores RFC 8693 audience: configure it to honour it (with Dex, set --dex-connector so that tokenxchange asks with Dex's cross-client scope)"
        );
        let err = ok(r#"["prod-eu","argocd"]"#, &["prod-eu", "prod-us"], Some("k")).unwrap_err();
        assert!(err.to_string().starts_with("unusable answer from https://dex/token: asked for audience prod-eu, prod-us, the issued token's aud is [\"prod-eu\",\"argocd\"]; check that Dex"), "{err}");
        assert!(ok("1", &["x"], None).unwrap_err().to_string().contains("aud is 1;"));
        // an opaque token is not checked
        let opaque =
            interpret(&dex(), &answer(200, r#"{"access_token":"opaque-token"}"#), &request(None, &[], &["x"]), NOW);
        assert!(opaque.is_ok());
    }

    #[test]
    fn a_bare_server_error_after_cross_client_scopes_names_the_cause() {
        let bare = answer(500, r#"{"error":"server_error"}"#);
        let err = interpret(&dex(), &bare, &request(Some("kubernetes"), &[], &["prod-eu"]), NOW).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "token exchange refused: https://dex/token answered HTTP 500 server_error without a description to the cross-client scopes for audience prod-eu; Dex answers so when a peer is not a static client that trusts this one: add to Dex's staticClients, for each audience, a client with that id whose trustedPeers lists 'argocd' (e.g. id: prod-eu, trustedPeers: [argocd])"
        );
        // without cross-client scopes, or with a description, it stays a 5xx
        let err = interpret(&dex(), &bare, &request(Some("kubernetes"), &[], &[]), NOW).unwrap_err();
        assert_eq!(err.exit_code(), 5);
        let described = answer(500, r#"{"error":"server_error","error_description":"db down"}"#);
        let err = interpret(&dex(), &described, &request(Some("kubernetes"), &[], &["prod-eu"]), NOW).unwrap_err();
        assert_eq!(err.exit_code(), 5);
    }

    #[test]
    fn error_answers() {
        check_error(
            answer(401, r#"{"error":"access_denied"}"#),
            "token exchange refused: HTTP 401 access_denied (Dex could not verify the ServiceAccount token: check the connector's issuer, that Dex can fetch its JWKS, the token's expiry and userNameKey: sub; Dex's log says why)",
            4,
        );
        check_error(
            answer(400, r#"{"error":"unsupported_grant_type"}"#),
            "token exchange refused: HTTP 400 unsupported_grant_type (Dex older than v2.38 or token exchange missing from oauth2.grantTypes)",
            4,
        );
        check_error(
            answer(502, "<html>\r\n<body>Bad Gateway</body></html>"),
            "identity provider unavailable: https://dex/token answered HTTP 502: <html>\\r\\n<body>Bad Gateway</body></html>",
            5,
        );
        check_error(
            answer(503, r#"{"error":"server_error"}"#),
            "identity provider unavailable: https://dex/token answered HTTP 503: server_error",
            5,
        );
        check_error(answer(429, ""), "identity provider unavailable: https://dex/token answered HTTP 429", 5);
        check_error(
            answer(404, "404 page not found\n"),
            "token exchange refused: https://dex/token answered HTTP 404 without an OAuth error: 404 page not found",
            4,
        );
        check_error(
            answer(400, r#"{"error":"invalid_request","error_description":"bad subject-token-value"}"#),
            "token exchange refused: HTTP 400 invalid_request: bad [redacted]",
            4,
        );
    }

    #[test]
    fn retry_stops_on_success_permanent_errors_and_exhaustion() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let unavailable = || Error::Unavailable {
            url: "u".into(),
            status: 503,
            body: String::new(),
            retry_after: Some(Duration::ZERO),
        };
        let mut calls = 0;
        let result = retry(&dex(), deadline, 2, |_, _| {
            calls += 1;
            if calls < 3 { Err(unavailable()) } else { Ok(calls) }
        });
        assert_eq!(result.unwrap(), 3);

        let mut calls = 0;
        let result: Result<(), Error> = retry(&dex(), deadline, 5, |_, _| {
            calls += 1;
            Err(Error::OAuth { status: 401, error: "invalid_client".into(), description: None })
        });
        assert_eq!((result.unwrap_err().exit_code(), calls), (4, 1));

        let mut calls = 0;
        let result: Result<(), Error> = retry(&dex(), deadline, 1, |_, _| {
            calls += 1;
            Err(unavailable())
        });
        assert_eq!((result.unwrap_err().exit_code(), calls), (5, 2));
    }

    #[test]
    fn retry_never_sleeps_past_the_deadline() {
        // A Retry-After of an hour against a deadline a minute away: no sleep, no second
        // call, the answer's error at once. The minute is slack, not a race.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut calls = 0;
        let result: Result<(), Error> = retry(&dex(), deadline, 5, |_, _| {
            calls += 1;
            Err(Error::Unavailable {
                url: "u".into(),
                status: 429,
                body: String::new(),
                retry_after: Some(Duration::from_secs(3600)),
            })
        });
        assert!(matches!(result, Err(Error::Unavailable { status: 429, .. })), "{result:?}");
        assert_eq!(calls, 1);
        assert!(Instant::now() < deadline);
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        // 400 draws of 0..=250 ms: none beyond the bound, and every quarter of the range
        // drawn at least 20 times (100 expected; a uniform source misses that with
        // probability below 1e-20). A constant, zero or one-sided jitter fails.
        let max = Duration::from_millis(250);
        let mut quarters = [0; 4];
        for _ in 0..400 {
            let wait = jitter(max);
            assert!(wait <= max, "{wait:?}");
            quarters[((wait.as_secs_f64() / max.as_secs_f64()) * 4.0).min(3.0) as usize] += 1;
        }
        assert!(quarters.iter().all(|&n| n >= 20), "draws per quarter of the range: {quarters:?}");
    }
}
