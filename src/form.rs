//! `application/x-www-form-urlencoded` bodies and HTTP Basic client authentication, the
//! two encodings an OAuth token request needs (RFC 6749 §2.3.1, Appendix B).
//!
//! Dex runs `url.QueryUnescape` on both halves of the Basic credentials, so each half is
//! form-encoded before base64: a secret holding `+` would otherwise arrive as a space.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Encodes name/value pairs, keeping their order: `a=1&b=x+y`.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(pairs.iter().map(|(name, value)| name.len() + value.len() + 2).sum());
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
/// encoding becomes `%XX`. Runs of unreserved characters (all of a JWT) are copied whole.
fn escape_into(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut run = 0; // start of the current run of unreserved bytes
    for (i, &byte) in text.as_bytes().iter().enumerate() {
        if UNRESERVED[usize::from(byte)] {
            continue;
        }
        if run < i {
            out.push_str(&text[run..i]); // ASCII only, so both ends are char boundaries
        }
        run = i + 1;
        if byte == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 15)] as char);
        }
    }
    if run < text.len() {
        out.push_str(&text[run..]);
    }
}

/// `A-Z a-z 0-9 - . _ *` by byte value: a table lookup per byte instead of four ranges.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = (byte as u8).is_ascii_alphanumeric() || matches!(byte as u8, b'-' | b'.' | b'_' | b'*');
        byte += 1;
    }
    table
};

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
        assert_eq!(encode(&[("runs", "日x ü-y.z")]), "runs=%E6%97%A5x+%C3%BC-y.z");
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
