//! `--direct`: the subject token itself as the credential. Nothing is sent anywhere and
//! nothing is cached; this module only checks that the token is one the target API server
//! can take, and reads its expiry. Pure: the caller passes the token and `now`.

use std::path::Path;

use miniserde::json::Value;

use crate::claims;
use crate::error::Error;
use crate::exchange;
use crate::exec_credential::Credential;
use crate::secret::Secret;
use crate::time::rfc3339;

/// `--direct`: the subject token itself, valid until its `exp` less the usual margin.
/// Nothing is sent anywhere and nothing is cached. The token must be a compact JWT
/// (three non-empty base64url parts, a JSON payload) with a numeric `exp` in the future
/// and no `nbf` in the future: what the target API server will take as a bearer token.
pub fn credential(subject: &Secret, path: &Path, now: i64) -> Result<Credential, Error> {
    let bad = |reason: String| Error::SubjectToken { path: path.into(), reason };
    let base64url =
        |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let parts: Vec<&str> = subject.expose().split('.').collect();
    let claims = match parts[..] {
        [header, payload, signature] if [header, payload, signature].into_iter().all(base64url) => {
            claims::of(subject.expose())
        }
        _ => None,
    }
    .ok_or_else(|| bad("with --direct it must be a JWT (header.payload.signature), and it is not".into()))?;
    let number = |name: &str| match claims.get(name) {
        Some(Value::Number(_)) => claims.get(name).and_then(claims::integer),
        _ => None,
    };
    let exp =
        number("exp").ok_or_else(|| bad("with --direct it must carry a numeric exp claim, and it has none".into()))?;
    if exp <= now {
        return Err(bad(format!("it expired at {}", rfc3339(exp))));
    }
    if let Some(nbf) = number("nbf").filter(|nbf| *nbf > now + NBF_LEEWAY) {
        return Err(bad(format!("it is not valid before {} (check this machine's clock)", rfc3339(nbf))));
    }
    verbose!("--direct: subject token {} until {}", subject.fingerprint(), rfc3339(exp));
    Ok(Credential { token: subject.clone(), expires_at: exchange::expiration(now, None, Some(exp)) })
}

/// How far in the future an `nbf` may lie, for clocks that differ a little.
const NBF_LEEWAY: i64 = 60;
