//! The RFC 8693 exchange itself: the request fields, the retry loop, and the reading of
//! the answer into an [`Issued`] credential or an [`Error`] (CONTRACTS.md §1).
//!
//! Request building, answer interpretation and expiry arithmetic are pure and take `now`
//! as an argument; only [`exchange`] and [`discover`] touch the network, through `http`.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use miniserde::json::{self, Number, Object, Value};

use crate::cli::Config;
use crate::error::{Error, summarize};
use crate::form;
use crate::http;
use crate::token::Secret;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A credential from the identity provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Issued {
    pub token: Secret,
    /// The `expirationTimestamp` to print, in Unix seconds (margin already taken off);
    /// `None` when neither `expires_in` nor the JWT's `exp` told us.
    pub expires_at: Option<i64>,
}

/// The form fields, in the documented order.
pub fn request_body(config: &Config, subject: &Secret) -> String {
    let scope = config.scopes.join(" ");
    let mut pairs = vec![
        ("grant_type", GRANT_TYPE),
        ("subject_token", subject.expose()),
        ("subject_token_type", config.subject_token_type.as_str()),
        ("requested_token_type", config.requested_token_type.as_str()),
    ];
    if !scope.is_empty() {
        pairs.push(("scope", &scope));
    }
    if let Some(connector) = &config.connector {
        pairs.push(("connector_id", connector));
    }
    for audience in &config.audiences {
        pairs.push(("audience", audience));
    }
    form::encode(&pairs)
}

/// POSTs the exchange, retrying transient failures, and reads the answer.
pub fn exchange(
    agent: &ureq::Agent,
    url: &str,
    config: &Config,
    client_secret: &Secret,
    subject: &Secret,
    deadline: Instant,
    now: impl Fn() -> i64,
) -> Result<Issued, Error> {
    let body = request_body(config, subject);
    let authorization = form::basic_auth(&config.client_id, client_secret.expose());
    let secrets = [subject, client_secret];
    retry(url, deadline, config.retries, |attempt, timeout| {
        crate::verbose!("POST {url} (attempt {attempt}, timeout {} ms)", timeout.as_millis());
        let started = Instant::now();
        let response = http::post_form(agent, url, &authorization, &body, timeout)?;
        crate::verbose!("HTTP {} from {url} in {} ms", response.status, started.elapsed().as_millis());
        interpret(url, &response, &config.requested_token_type, &secrets, now())
    })
}

/// Finds the token endpoint in the issuer's OpenID discovery document.
pub fn discover(
    agent: &ureq::Agent,
    issuer: &str,
    allow_insecure_http: bool,
    retries: u32,
    deadline: Instant,
) -> Result<String, Error> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let response = retry(&url, deadline, retries, |attempt, timeout| {
        crate::verbose!("GET {url} (attempt {attempt})");
        let response = http::get(agent, &url, timeout)?;
        match response.status {
            200..=299 => Ok(response),
            status => Err(status_error(&url, status, &response, &[])),
        }
    })?;
    let bad = |reason: &str| Error::BadResponse { url: url.clone(), status: response.status, reason: reason.into() };
    let document = object(&response.body).ok_or_else(|| bad("discovery document is not a JSON object"))?;
    let endpoint = match document.get("token_endpoint") {
        Some(Value::String(endpoint)) if !endpoint.is_empty() => endpoint.clone(),
        _ => return Err(bad("discovery document has no token_endpoint")),
    };
    http::check_url(&endpoint, allow_insecure_http, "token_endpoint from discovery")?;
    crate::verbose!("discovered token endpoint {endpoint}");
    Ok(endpoint)
}

/// Reads the identity provider's answer. `secrets` are blanked out of any echoed body.
pub fn interpret(
    url: &str,
    response: &http::Response,
    requested_type: &str,
    secrets: &[&Secret],
    now: i64,
) -> Result<Issued, Error> {
    let status = response.status;
    if !(200..=299).contains(&status) {
        return Err(status_error(url, status, response, secrets));
    }
    let bad = |reason: String| Error::BadResponse { url: url.into(), status, reason };
    let Some(answer) = object(&response.body) else {
        // A success body may hold a credential in another encoding: show only its start.
        let start = summarize(redact(&String::from_utf8_lossy(&response.body), secrets).as_bytes(), 16);
        return Err(bad(format!("body is not a JSON object ({} bytes: {start})", response.body.len())));
    };
    let token = match answer.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => Secret::new(token.clone()),
        _ => return Err(bad("no access_token in the answer".into())),
    };
    match answer.get("issued_token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(issued)) if issued == requested_type => {}
        Some(Value::String(issued)) => {
            return Err(bad(format!(
                "issued_token_type is {}, requested {requested_type}",
                summarize(issued.as_bytes(), 100)
            )));
        }
        Some(_) => return Err(bad("issued_token_type is not a string".into())),
    }
    let expires_in = answer.get("expires_in").and_then(integer);
    let expires_at = expiration(now, expires_in, jwt_exp(token.expose()));
    crate::verbose!(
        "issued token {} (expires_in {}, expirationTimestamp {})",
        token.fingerprint(),
        expires_in.map_or("absent".into(), |s| s.to_string()),
        expires_at.map_or("unknown".into(), crate::exec_credential::rfc3339)
    );
    Ok(Issued { token, expires_at })
}

/// No credential is kept longer than this, whatever the server says (a year).
pub const MAX_LIFETIME: i64 = 366 * 86_400;

/// The earlier of `now + expires_in` and the JWT's `exp`, minus a margin of
/// min(60 s, 10% of the lifetime), never before `now` nor more than a year after it.
pub fn expiration(now: i64, expires_in: Option<i64>, jwt_exp: Option<i64>) -> Option<i64> {
    let from_expires_in = expires_in.filter(|secs| *secs > 0).map(|secs| now.saturating_add(secs));
    let end = [from_expires_in, jwt_exp].into_iter().flatten().min()?.min(now.saturating_add(MAX_LIFETIME));
    let lifetime = end.saturating_sub(now).max(0);
    let margin = (lifetime / 10).min(60);
    Some((end - margin).max(now))
}

/// The `exp` claim of a JWT, decoded without verifying anything.
pub fn jwt_exp(token: &str) -> Option<i64> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    let payload = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    object(&payload)?.get("exp").and_then(integer)
}

/// Runs `attempt` until it succeeds, fails for good, runs out of `retries` or would pass
/// the deadline. Waits between attempts: `Retry-After` when given, else exponential
/// backoff with full jitter (base 250 ms, cap 4 s).
pub fn retry<T>(
    url: &str,
    deadline: Instant,
    retries: u32,
    mut attempt: impl FnMut(u32, Duration) -> Result<T, Error>,
) -> Result<T, Error> {
    let attempts = retries + 1;
    let mut number = 1;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Network {
                url: url.into(),
                proxy: None,
                reason: "no time left within --timeout".into(),
            });
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
            crate::verbose!("{err}; no time left for another attempt");
            return Err(err);
        }
        crate::verbose!("{err}; retrying in {} ms", wait.as_millis());
        std::thread::sleep(wait);
        number += 1;
    }
}

/// A uniformly random duration in `0..=max`.
fn jitter(max: Duration) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    max.mul_f64((random >> 11) as f64 / (1u64 << 53) as f64)
}

/// An error for a non-2xx answer: OAuth errors, refusals and transient statuses.
fn status_error(url: &str, status: u16, response: &http::Response, secrets: &[&Secret]) -> Error {
    let oauth = object(&response.body).and_then(|body| match body.get("error") {
        Some(Value::String(error)) if !error.is_empty() => {
            let description = match body.get("error_description") {
                Some(Value::String(d)) if !d.is_empty() => Some(summarize(redact(d, secrets).as_bytes(), 300)),
                _ => None,
            };
            Some((summarize(error.as_bytes(), 100), description))
        }
        _ => None,
    });
    match status {
        408 | 429 | 500..=599 => Error::Unavailable {
            url: url.into(),
            status,
            body: match oauth {
                Some((error, Some(description))) => format!("{error}: {description}"),
                Some((error, None)) => error,
                None => echo(&response.body, secrets),
            },
            retry_after: response.retry_after,
        },
        400..=499 => match oauth {
            Some((error, description)) => Error::OAuth { status, error, description },
            None => Error::Refused { url: url.into(), status, body: echo(&response.body, secrets) },
        },
        _ => Error::BadResponse {
            url: url.into(),
            status,
            reason: format!("unexpected HTTP status: {}", echo(&response.body, secrets)),
        },
    }
}

/// The first bytes of a body, one line, with any secret blanked out.
fn echo(body: &[u8], secrets: &[&Secret]) -> String {
    summarize(redact(&String::from_utf8_lossy(body), secrets).as_bytes(), 120)
}

fn redact(text: &str, secrets: &[&Secret]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| s.expose().len() >= 4) {
        text = text.replace(secret.expose(), "[redacted]");
    }
    text
}

fn object(bytes: &[u8]) -> Option<Object> {
    match json::from_str::<Value>(std::str::from_utf8(bytes).ok()?).ok()? {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(Number::U64(n)) => i64::try_from(*n).ok(),
        Value::Number(Number::I64(n)) => Some(*n),
        Value::Number(Number::F64(n)) if n.is_finite() => Some(*n as i64),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli;

    const NOW: i64 = 1_795_860_000;
    const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

    fn config(extra: &[&str]) -> Config {
        cli::config_for_tests(extra)
    }

    fn jwt(payload: &str) -> String {
        format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    fn answer(status: u16, body: &str) -> http::Response {
        http::Response { status, body: body.as_bytes().to_vec(), retry_after: None }
    }

    fn check_error(response: http::Response, expected: &str, code: u8) {
        let subject = Secret::new("subject-token-value");
        let err = interpret("https://dex/token", &response, ID_TOKEN, &[&subject], NOW).unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert_eq!(err.exit_code(), code);
    }

    #[test]
    fn request_carries_the_documented_fields() {
        let body = request_body(
            &config(&["--dex-connector=kubernetes", "--audience=a b", "--audience=c"]),
            &Secret::new("sa.jwt"),
        );
        assert_eq!(
            body,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=sa.jwt\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
             &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
             &scope=openid+profile+federated%3Aid&connector_id=kubernetes&audience=a+b&audience=c"
        );
        let body = request_body(&config(&["--scopes="]), &Secret::new("t"));
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
    fn jwt_payload_decoding() {
        assert_eq!(jwt_exp(&jwt(r#"{"iss":"x","exp":1795863600}"#)), Some(1_795_863_600));
        assert_eq!(jwt_exp(&jwt(r#"{"exp":1795863600.5}"#)), Some(1_795_863_600));
        assert_eq!(jwt_exp(&jwt(r#"{"iss":"x"}"#)), None);
        assert_eq!(jwt_exp("opaque-token"), None);
        assert_eq!(jwt_exp("a.!!!.c"), None);
    }

    #[test]
    fn success_takes_the_earlier_expiry() {
        let token = jwt(&format!(r#"{{"exp":{}}}"#, NOW + 600));
        let body = format!(
            r#"{{"access_token":"{token}","issued_token_type":"{ID_TOKEN}","token_type":"bearer","expires_in":86399}}"#
        );
        let issued = interpret("https://dex/token", &answer(200, &body), ID_TOKEN, &[], NOW).unwrap();
        assert_eq!(issued, Issued { token: Secret::new(token), expires_at: Some(NOW + 540) });
    }

    #[test]
    fn unusable_successes_are_errors() {
        check_error(
            answer(200, r#"{"token_type":"bearer"}"#),
            "unusable answer from https://dex/token (HTTP 200): no access_token in the answer",
            1,
        );
        check_error(
            answer(200, r#"{"access_token":"x","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#),
            "unusable answer from https://dex/token (HTTP 200): issued_token_type is urn:ietf:params:oauth:token-type:access_token, requested urn:ietf:params:oauth:token-type:id_token",
            1,
        );
        check_error(
            answer(200, "ok"),
            "unusable answer from https://dex/token (HTTP 200): body is not a JSON object (2 bytes: ok)",
            1,
        );
        check_error(
            answer(200, "access_token=eyJhbGciOiJSUzI1NiJ9.e30.c2ln&expires_in=3600"),
            "unusable answer from https://dex/token (HTTP 200): body is not a JSON object (58 bytes: access_token=eyJ…)",
            1,
        );
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
        let result = retry("https://dex/token", deadline, 2, |_, _| {
            calls += 1;
            if calls < 3 { Err(unavailable()) } else { Ok(calls) }
        });
        assert_eq!(result.unwrap(), 3);

        let mut calls = 0;
        let result: Result<(), Error> = retry("https://dex/token", deadline, 5, |_, _| {
            calls += 1;
            Err(Error::OAuth { status: 401, error: "invalid_client".into(), description: None })
        });
        assert_eq!((result.unwrap_err().exit_code(), calls), (4, 1));

        let mut calls = 0;
        let result: Result<(), Error> = retry("https://dex/token", deadline, 1, |_, _| {
            calls += 1;
            Err(unavailable())
        });
        assert_eq!((result.unwrap_err().exit_code(), calls), (5, 2));
    }

    #[test]
    fn retry_never_sleeps_past_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut calls = 0;
        let result: Result<(), Error> = retry("https://dex/token", deadline, 5, |_, _| {
            calls += 1;
            Err(Error::Unavailable {
                url: "u".into(),
                status: 429,
                body: String::new(),
                retry_after: Some(Duration::from_secs(1)),
            })
        });
        assert!(result.is_err());
        assert_eq!(calls, 1);
        assert!(Instant::now() < deadline);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_millis(250)) <= Duration::from_millis(250));
        }
    }
}
