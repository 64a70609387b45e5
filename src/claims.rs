//! JWT claims read without verifying anything: the `exp` that sets a credential's expiry,
//! and the claims `inspect` shows. Verification is the receiver's job (Dex for the
//! subject token, the target API server for the issued one); this module only reads.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use miniserde::json::{self, Number, Object, Value};

/// The payload of a compact JWS (`header.payload.signature`), when it is a JSON object.
pub fn of(token: &str) -> Option<Object> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    object(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?)
}

/// The `exp` claim of a JWT.
pub fn exp(token: &str) -> Option<i64> {
    of(token)?.get("exp").and_then(integer)
}

/// A JSON object, from bytes that may be anything.
pub fn object(bytes: &[u8]) -> Option<Object> {
    match json::from_str::<Value>(std::str::from_utf8(bytes).ok()?).ok()? {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// A whole number, also from a float or a numeric string (servers differ).
pub fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(Number::U64(n)) => i64::try_from(*n).ok(),
        Value::Number(Number::I64(n)) => Some(*n),
        Value::Number(Number::F64(n)) if n.is_finite() => Some(*n as i64),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A claim as text: a string as it is, anything else as JSON.
pub fn text(claims: &Object, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(json::to_string(other)),
    }
}

/// Whether the `aud` claim (a string or a list) holds `audience`.
pub fn has_audience(claims: &Object, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| matches!(a, Value::String(a) if a == audience)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn payload_decoding() {
        assert_eq!(exp(&jwt(r#"{"iss":"x","exp":1795863600}"#)), Some(1_795_863_600));
        assert_eq!(exp(&jwt(r#"{"exp":1795863600.5}"#)), Some(1_795_863_600));
        assert_eq!(exp(&jwt(r#"{"iss":"x"}"#)), None);
        assert_eq!(exp("opaque-token"), None);
        assert_eq!(exp("a.!!!.c"), None);
        assert!(of("a.b.c.d").is_none());
        let claims = of(&jwt(r#"{"aud":["x","argocd"],"n":1,"s":"t"}"#)).unwrap();
        assert!(has_audience(&claims, "argocd") && !has_audience(&claims, "y"));
        assert_eq!(text(&claims, "n").as_deref(), Some("1"));
        assert_eq!(text(&claims, "s").as_deref(), Some("t"));
        assert_eq!(text(&claims, "missing"), None);
    }
}
