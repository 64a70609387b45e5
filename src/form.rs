//! `application/x-www-form-urlencoded` bodies and HTTP Basic client authentication, the
//! two encodings an OAuth token request needs (RFC 6749 §2.3.1, Appendix B).
//!
//! Dex runs `url.QueryUnescape` on both halves of the Basic credentials, so each half is
//! form-encoded before base64: a secret holding `+` would otherwise arrive as a space.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Encodes name/value pairs, keeping their order: `a=1&b=x+y`.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        escape_into(&mut out, name);
        out.push('=');
        escape_into(&mut out, value);
    }
    out
}

/// The `Authorization` header value for client id and secret.
pub fn basic_auth(client_id: &str, client_secret: &str) -> String {
    let mut credentials = String::new();
    escape_into(&mut credentials, client_id);
    credentials.push(':');
    escape_into(&mut credentials, client_secret);
    format!("Basic {}", STANDARD.encode(credentials))
}

/// `text` form-encoded, as one value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Unreserved characters pass, space becomes `+`, every other byte of the UTF-8
/// encoding becomes `%XX`.
fn escape_into(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(byte >> 4)] as char);
                out.push(HEX[usize::from(byte & 15)] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_reserved_space_and_non_ascii() {
        assert_eq!(
            encode(&[("scope", "openid profile federated:id"), ("x", "a+b%c/d=e&f"), ("ü", "日")]),
            "scope=openid+profile+federated%3Aid&x=a%2Bb%25c%2Fd%3De%26f&%C3%BC=%E6%97%A5"
        );
        assert_eq!(encode(&[("safe", "AZaz09-._*~")]), "safe=AZaz09-._*%7E");
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn basic_auth_form_encodes_each_half() {
        // "argocd:s3cr%2Bt%2F%3D%25%3Ax" in base64
        assert_eq!(basic_auth("argocd", "s3cr+t/=%:x"), "Basic YXJnb2NkOnMzY3IlMkJ0JTJGJTNEJTI1JTNBeA==");
        // a public client sends an empty secret
        assert_eq!(basic_auth("public-cli", ""), "Basic cHVibGljLWNsaTo=");
        // a space becomes '+', which Dex unescapes back to a space
        assert_eq!(basic_auth("a b", "c"), "Basic YStiOmM=");
    }
}
