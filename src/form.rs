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

/// One way of percent-encoding: which bytes pass as they are, whether a space becomes
/// `+`, and the hex case. [`FORM`] is the one requests use; `redact` tries the others a
/// server may echo a secret in.
pub struct Percent {
    unreserved: [bool; 256],
    plus: bool,
    upper: bool,
}

/// Form encoding: `A-Z a-z 0-9 - . _ *` pass, space becomes `+`, uppercase hex.
pub const FORM: Percent = Percent::new(b"-._*", true, true);

impl Percent {
    /// ASCII letters and digits and the bytes of `keep` pass; `plus` writes a space as
    /// `+`; `upper` chooses the hex case. The table makes it a lookup per byte.
    pub const fn new(keep: &[u8], plus: bool, upper: bool) -> Percent {
        let mut unreserved = [false; 256];
        let mut byte = 0;
        while byte < 256 {
            unreserved[byte] = (byte as u8).is_ascii_alphanumeric();
            byte += 1;
        }
        let mut i = 0;
        while i < keep.len() {
            unreserved[keep[i] as usize] = true;
            i += 1;
        }
        Percent { unreserved, plus, upper }
    }

    /// `text` encoded this way.
    pub fn encode(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        self.encode_into(&mut out, text);
        out
    }

    /// Appends `text` encoded. Runs of unreserved characters (all of a JWT) are copied
    /// whole; every other byte of the UTF-8 encoding becomes `%XX`.
    pub fn encode_into(&self, out: &mut String, text: &str) {
        let mut run = 0; // start of the current run of unreserved bytes
        for (i, &byte) in text.as_bytes().iter().enumerate() {
            if self.unreserved[usize::from(byte)] {
                continue;
            }
            if run < i {
                out.push_str(&text[run..i]); // ASCII only, so both ends are char boundaries
            }
            run = i + 1;
            if byte == b' ' && self.plus {
                out.push('+');
            } else {
                out.push('%');
                push_hex(out, byte, self.upper);
            }
        }
        if run < text.len() {
            out.push_str(&text[run..]);
        }
    }
}

fn escape_into(out: &mut String, text: &str) {
    FORM.encode_into(out, text);
}

/// `bytes` as hex, two digits a byte.
pub fn hex(bytes: &[u8], upper: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        push_hex(&mut out, byte, upper);
    }
    out
}

/// The two hex digits of `byte`; the one hex table of the program.
pub fn push_hex(out: &mut String, byte: u8, upper: bool) {
    const LOWER: &[u8; 16] = b"0123456789abcdef";
    let digit = |n: u8| {
        let c = char::from(LOWER[usize::from(n)]);
        if upper { c.to_ascii_uppercase() } else { c }
    };
    out.push(digit(byte >> 4));
    out.push(digit(byte & 15));
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
        assert_eq!(encode(&[("runs", "日x ü-y.z")]), "runs=%E6%97%A5x+%C3%BC-y.z");
        assert_eq!(encode(&[]), "");
        assert_eq!(Percent::new(b"-._~", false, false).encode("a b~*/"), "a%20b~%2a%2f");
        assert_eq!(hex(&[0, 0xab, 0x7f], true), "00AB7F");
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
