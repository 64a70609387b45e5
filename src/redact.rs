//! The one door for text that reaches stderr. Every value that came from a server, a file
//! or the environment passes [`echo`] before it is put into a message, and every line is
//! passed through [`line`] once more as it is printed.
//!
//! Both blank the secrets of this run (the subject token, the client secret, the issued
//! token, the Basic credential, key data) in every form a server may echo them in: raw,
//! percent- and form-encoded, and base64 (standard and URL-safe, at any offset inside a
//! longer base64 text); and both escape control characters, so that a message stays one
//! line and cannot move the terminal. Secrets are registered by `secret::Secret::new`, so
//! no caller has to remember to pass them; the encoded forms are only computed when text
//! is actually echoed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// Values shorter than this are not treated as secrets (an empty public-client secret,
/// say): blanking them would garble ordinary words.
const MIN_SECRET: usize = 4;
/// Encoded fragments shorter than this are not blanked, for the same reason.
const MIN_FRAGMENT: usize = 6;
const BLANK: &str = "[redacted]";

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Progress on stderr with `-v`, through [`line`]. Callers pass fingerprints, never
/// tokens or secrets (and [`line`] would blank them anyway).
macro_rules! verbose {
    ($($arg:tt)*) => {
        if $crate::redact::verbose() {
            $crate::redact::say(&format!($($arg)*));
        }
    };
}

/// Turns `-v` output on or off for this run.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// One `-v` line on stderr.
pub fn say(text: &str) {
    eprintln!("tokenxchange: {}", line(text));
}

/// Remembers `value` as a secret of this run.
pub fn register(value: &str) {
    if value.len() >= MIN_SECRET {
        SECRETS.lock().unwrap_or_else(PoisonError::into_inner).push(value.to_owned());
    }
}

/// Text received from elsewhere, fit for a message: lossily decoded, trimmed, secrets
/// blanked, control characters escaped, at most `max` characters (then `…`).
pub fn echo(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = blank(text.trim());
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c);
    }
    out
}

/// A whole message as it is printed: secrets blanked, control characters escaped; no cap.
pub fn line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in blank(text).chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    if c.is_control() {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

/// `text` with every known form of every registered secret replaced by `[redacted]`.
fn blank(text: &str) -> String {
    let secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner).clone();
    if secrets.is_empty() {
        return text.to_owned();
    }
    let mut forms: Vec<String> = secrets.iter().flat_map(|secret| forms(secret)).collect();
    // Longest first, so that a form containing a shorter one is blanked whole.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms.dedup();
    let mut text = text.to_owned();
    for form in forms {
        if text.contains(&form) {
            text = text.replace(&form, BLANK);
        }
    }
    text
}

/// The forms in which `secret` may come back: raw; percent-encoded with either common set
/// of unescaped punctuation (RFC 3986's `-._~`, or `-._*` as form encoders write it), a
/// space as `+` or `%20`, upper- or lowercase hex; and the base64 fragments of the raw and
/// form-encoded bytes (the Basic credential is base64 of the form-encoded secret).
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    for keep in [b"-._~", b"-._*"] {
        for plus in [true, false] {
            for upper in [true, false] {
                out.push(crate::form::Percent::new(keep, plus, upper).encode(secret));
            }
        }
    }
    for bytes in [secret.as_bytes(), crate::form::escape(secret).as_bytes()] {
        out.extend(base64_fragments(bytes));
    }
    out.extend(json_forms(secret));
    out.retain(|form| form.len() >= MIN_FRAGMENT || form == secret);
    out
}

/// The secret as it stands inside a JSON string, as encoders write it: `"` and `\`
/// escaped, control characters as `\uXXXX`; optionally also `/` (`\/`), everything
/// outside ASCII (`\u00e9`, either hex case, surrogate pairs beyond the BMP), and `<`,
/// `>`, `&` (Go's encoding/json does, by default).
fn json_forms(secret: &str) -> Vec<String> {
    let mut out = Vec::new();
    for slash in [false, true] {
        for ascii in [None, Some(false), Some(true)] {
            for html in [false, true] {
                let mut text = String::with_capacity(secret.len() + 8);
                for c in secret.chars() {
                    match c {
                        '"' => text.push_str("\\\""),
                        '\\' => text.push_str("\\\\"),
                        '/' if slash => text.push_str("\\/"),
                        '<' | '>' | '&' if html => push_unicode(&mut text, c, false),
                        c if c.is_control() => push_unicode(&mut text, c, false),
                        c if !c.is_ascii() && ascii.is_some() => push_unicode(&mut text, c, ascii == Some(true)),
                        c => text.push(c),
                    }
                }
                out.push(text);
            }
        }
    }
    out
}

/// `\uXXXX` for `c`, as a surrogate pair beyond the BMP.
fn push_unicode(out: &mut String, c: char, upper: bool) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        if upper {
            out.push_str(&format!("\\u{unit:04X}"));
        } else {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
}

/// The base64 characters that depend on `bytes` alone, for each of the three offsets the
/// bytes can have inside a longer encoded text (as a secret has inside a Basic
/// credential), in the standard and the URL-safe alphabet.
fn base64_fragments(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for offset in 0..3 {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(bytes);
        padded.extend_from_slice(&[0, 0]);
        let first = (8 * offset).div_ceil(6);
        let end = 8 * (offset + bytes.len()) / 6;
        if end <= first {
            continue;
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&padded);
            out.push(encoded[first..end].to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    #[test]
    fn escapes_control_characters_and_truncates() {
        assert_eq!(echo(b"  <html>\r\n<b>bad\tgateway</b>", 100), "<html>\\r\\n<b>bad\\tgateway</b>");
        assert_eq!(echo(b"abcdef", 3), "abc…");
        assert_eq!(echo(b"\xff\x1b[31m\0", 10), "\u{fffd}\\u{1b}[31m\\u{0}");
        assert_eq!(line("two\nlines"), "two\\nlines");
    }

    #[test]
    fn blanks_a_secret_in_every_encoding() {
        let secret = "redact-unit s3cr+t/=%:x";
        register(secret);
        let basic = crate::form::basic_auth("argocd", secret);
        for (n, prefix) in ["", "a", "ab", "abc"].into_iter().enumerate() {
            let samples = [
                format!("{prefix}{secret}"),
                crate::form::escape(secret),
                crate::form::Percent::new(b"-._~", false, false).encode(secret),
                STANDARD.encode(format!("{prefix}{secret}")),
                URL_SAFE.encode(format!("{prefix}{secret}")),
                basic.clone(),
            ];
            for sample in samples {
                let echoed = echo(format!("error: {sample} end").as_bytes(), 1000);
                assert!(echoed.contains(BLANK), "offset {n}: {sample} -> {echoed}");
                for form in forms(secret) {
                    assert!(!echoed.contains(&form), "offset {n}: {form} left in {echoed}");
                }
            }
        }
        assert_eq!(line(&format!("x{secret}y")), "x[redacted]y");
    }

    #[test]
    fn blanks_a_secret_echoed_inside_json() {
        let secret = "Zq9\"kP\\w7éX/<𝄞>";
        register(secret);
        for escaped in [
            r#"Zq9\"kP\\w7éX/<𝄞>"#,
            r#"Zq9\"kP\\w7\u00e9X\/<\ud834\udd1e>"#,
            r#"Zq9\"kP\\w7\u00E9X/\u003c\uD834\uDD1E\u003e"#,
        ] {
            let echoed = echo(format!(r#"{{"client_secret": "{escaped}"}}"#).as_bytes(), 1000);
            assert_eq!(echoed, r#"{"client_secret": "[redacted]"}"#, "{escaped}");
        }
    }

    #[test]
    fn short_values_are_not_secrets() {
        register("abc");
        assert_eq!(echo(b"abc abc", 100), "abc abc");
    }
}
