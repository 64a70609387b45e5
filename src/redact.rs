//! The one door for text that reaches stderr. Every value that came from a server, a file
//! or the environment passes [`echo`] before it is put into a message, and every line is
//! passed through [`line`] once more as it is printed.
//!
//! Both blank the secrets of this run (the subject token, the client secret, the issued
//! token, the Basic credential, key data) in every form a server may echo them in: raw,
//! percent- and form-encoded, JSON-escaped, and base64 (standard and URL-safe, at any
//! offset inside a longer base64 text, also wrapped across lines); and beyond those exact
//! forms, any run of 16 bytes or more of a secret in any casing, in the text as it stands,
//! decoded (HTML entities, `\uXXXX`, percent-escapes, repeatedly) or as hex (also in groups
//! between separators, `5a 71`, `\x5a\x71`). Both escape
//! control characters, so that a message stays one line and cannot move the terminal.
//! Secrets are registered by `secret::Secret::new`, so no caller has to remember to pass
//! them; what to look for is computed when text is first echoed after a registration.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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
    stderr(&format!("tokenxchange: {}", line(text)));
}

/// Writes `text` and a newline to stderr, already redacted. A stderr that cannot be
/// written (a pipe whose reader left: EPIPE) changes nothing: `eprintln!` would panic,
/// which is SIGABRT in the release build, and drop the credential of a run that worked.
pub fn stderr(text: &str) {
    use std::io::Write;
    _ = writeln!(std::io::stderr().lock(), "{text}");
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
    let text = text.trim();
    let end = excerpt_end(text, max);
    let blanked = blank(&text[..end]);
    let mut out = String::new();
    for (count, c) in blanked.chars().enumerate() {
        if count == max {
            break;
        }
        push_escaped(&mut out, c);
    }
    if blanked.chars().nth(max).is_some() || end < text.len() {
        out.push('…');
    }
    out
}

/// Where [`echo`]'s blanking of `text` may stop for an excerpt of `max` characters: past
/// the excerpt (at most 4 bytes a character) and then room for the longest form a secret
/// beginning inside it can take (16 times the longest secret: `\uXXXX`, entities,
/// percent-escapes twice, hex, base64), white space not counted (wrapped base64 may hold
/// it anywhere). Blanking a whole error page of 1 MiB took some 60 MB.
fn excerpt_end(text: &str, max: usize) -> usize {
    let longest = SECRETS.lock().unwrap_or_else(PoisonError::into_inner).iter().map(String::len).max();
    let Some(longest) = longest else { return text.len() };
    let room = max.saturating_mul(4).saturating_add(longest.saturating_mul(16)).saturating_add(1024);
    let mut counted = 0;
    for (at, byte) in text.bytes().enumerate() {
        if !byte.is_ascii_whitespace() {
            counted += 1;
            if counted > room && text.is_char_boundary(at) {
                return at;
            }
        }
    }
    text.len()
}

/// A whole message as it is printed: secrets blanked, control characters escaped; no cap.
pub fn line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in blank(text).chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// A path for a line on stdout (`install`, `clean`): control characters escaped as in
/// messages, so a name cannot move the terminal; not redacted (paths are not secrets).
pub fn path(path: &std::path::Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
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

/// `text` with every known form of every registered secret replaced by `[redacted]`,
/// then every run of [`RUN`] or more bytes of a secret (any casing), found in the text as
/// it stands, decoded (HTML entities, `\uXXXX`, `%XX`, repeatedly), as hex (also in groups
/// between separators), or with line breaks taken out of base64.
fn blank(text: &str) -> String {
    let Some(prepared) = prepared() else { return text.to_owned() };
    // Every match is found in the text as it came, then all are blanked at once: a
    // secret inside another, or one match overlapping the next, cannot hide the rest.
    let mut ranges = Vec::new();
    // Base64 wrapped across lines: the forms, in the text without its line breaks
    // (removing ASCII whitespace keeps it UTF-8).
    let kept: Vec<usize> = text.bytes().enumerate().filter(|(_, b)| !b.is_ascii_whitespace()).map(|(i, _)| i).collect();
    let unwrapped: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    for form in &prepared.forms {
        ranges.extend(text.match_indices(form.as_str()).map(|(at, _)| (at, at + form.len())));
        if form.len() >= MIN_FRAGMENT && unwrapped.len() < text.len() {
            ranges.extend(
                unwrapped.match_indices(form.as_str()).map(|(at, _)| (kept[at], kept[at + form.len() - 1] + 1)),
            );
        }
    }
    for view in [decoded(text), hex_view(text, 0), hex_view(text, 1), hex_groups(text)] {
        ranges.extend(runs(&view, &prepared));
    }
    replace_ranges(text, ranges)
}

/// Runs of a secret at least this long are blanked wherever they appear, in any casing.
const RUN: usize = 16;

/// What [`blank`] looks for, computed once for the secrets registered so far.
struct Prepared {
    /// How many secrets it was computed from.
    count: usize,
    /// The exact forms of every secret.
    forms: Vec<String>,
    /// Every run of [`RUN`] bytes of the longer secrets, folded (see [`fold`]).
    windows: HashSet<u128>,
    /// The shorter secrets whole, folded.
    short: Vec<Vec<u8>>,
}

static PREPARED: Mutex<Option<Arc<Prepared>>> = Mutex::new(None);

/// The current [`Prepared`], recomputed when a secret was registered since; `None`
/// while there is no secret.
fn prepared() -> Option<Arc<Prepared>> {
    let secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner).clone();
    if secrets.is_empty() {
        return None;
    }
    let mut slot = PREPARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(prepared) = slot.as_ref().filter(|prepared| prepared.count == secrets.len()) {
        return Some(prepared.clone());
    }
    let mut forms: Vec<String> = secrets.iter().flat_map(|secret| forms(secret)).collect();
    forms.sort_unstable();
    forms.dedup();
    let mut windows = HashSet::new();
    let mut short = Vec::new();
    for secret in &secrets {
        let folded: Vec<u8> = secret.bytes().map(fold).collect();
        if folded.len() < RUN {
            short.push(folded);
        } else {
            windows.extend(folded.windows(RUN).map(window));
        }
    }
    let prepared = Arc::new(Prepared { count: secrets.len(), forms, windows, short });
    *slot = Some(prepared.clone());
    Some(prepared)
}

/// Case folded, and a space taken as `+` (form encoding writes one as the other).
fn fold(byte: u8) -> u8 {
    if byte == b' ' { b'+' } else { byte.to_ascii_lowercase() }
}

fn window(bytes: &[u8]) -> u128 {
    u128::from_le_bytes(bytes.try_into().unwrap_or([0; RUN]))
}

/// Bytes of a view of the text, each with the range of the original text it came from.
struct View(Vec<(u8, usize, usize)>);

/// The text with HTML entities (`&lt;`, `&#60;`, `&#x3c;`), JSON escapes (`\uXXXX`,
/// surrogate pairs too) and percent-escapes decoded, repeatedly (a value encoded twice).
fn decoded(text: &str) -> View {
    let mut view = View(text.bytes().enumerate().map(|(i, b)| (b, i, i + 1)).collect());
    for _ in 0..3 {
        let next = decode_once(&view);
        if next.0.len() == view.0.len() {
            break;
        }
        view = next;
    }
    view
}

fn decode_once(view: &View) -> View {
    let bytes: Vec<u8> = view.0.iter().map(|(b, _, _)| *b).collect();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let (decoded, used) = escape_at(&bytes[i..]).unwrap_or_else(|| (vec![bytes[i]], 1));
        let (start, end) = (view.0[i].1, view.0[i + used - 1].2);
        out.extend(decoded.into_iter().map(|b| (b, start, end)));
        i += used;
    }
    View(out)
}

/// The bytes an escape at the start of `bytes` stands for, and its length.
fn escape_at(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let hex = |digits: &[u8]| u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok();
    let utf8 = |code: u32| char::from_u32(code).map(|c| c.to_string().into_bytes());
    match bytes.first()? {
        b'%' if bytes.len() >= 3 && bytes[1..3].iter().all(u8::is_ascii_hexdigit) => {
            Some((vec![u8::try_from(hex(&bytes[1..3])?).ok()?], 3))
        }
        b'\\' if bytes.get(1) == Some(&b'u') && bytes.len() >= 6 => {
            let unit = hex(&bytes[2..6])?;
            if (0xd800..0xdc00).contains(&unit) && bytes.len() >= 12 && bytes[6..8] == *b"\\u" {
                let low = hex(&bytes[8..12])?;
                return Some((utf8(0x10000 + ((unit - 0xd800) << 10) + (low.checked_sub(0xdc00)?))?, 12));
            }
            Some((utf8(unit)?, 6))
        }
        b'&' => {
            let end = bytes.iter().take(10).position(|b| *b == b';')?;
            let name = std::str::from_utf8(&bytes[1..end]).ok()?;
            let code = match name {
                "lt" => u32::from(b'<'),
                "gt" => u32::from(b'>'),
                "amp" => u32::from(b'&'),
                "quot" => u32::from(b'"'),
                "apos" => u32::from(b'\''),
                _ => match name.strip_prefix('#')? {
                    hex_code if hex_code.starts_with(['x', 'X']) => hex(&hex_code.as_bytes()[1..])?,
                    decimal => decimal.parse().ok()?,
                },
            };
            Some((utf8(code)?, end + 1))
        }
        _ => None,
    }
}

/// Runs of hex digits, decoded two by two from `parity`.
fn hex_view(text: &str, parity: usize) -> View {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let run = hex_run(&bytes[i..]);
        if run == 0 {
            i += 1;
            continue;
        }
        let mut at = i + parity;
        while at + 2 <= i + run {
            out.push(hex_byte(bytes, at));
            at += 2;
        }
        // A gap between runs, so that no window spans two of them.
        out.push((0, i + run, i + run));
        i += run;
    }
    View(out)
}

/// How many hex digits `bytes` starts with.
fn hex_run(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_hexdigit()).count()
}

/// The byte the two hex digits at `at` spell, with where they stand.
fn hex_byte(bytes: &[u8], at: usize) -> (u8, usize, usize) {
    let digits = std::str::from_utf8(&bytes[at..at + 2]).unwrap_or("00");
    (u8::from_str_radix(digits, 16).unwrap_or(0), at, at + 2)
}

/// Hex written in groups between separators, as dumps and escapes write it (`5a 71 39`,
/// `5a:71`, `\x5a\x71`, `0x5a, 0x71`, `5a71 396b`): runs of an even number of hex digits
/// decoded, a gap of at most 4 other bytes between two runs skipped.
fn hex_groups(text: &str) -> View {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut last_end = 0;
    let mut i = 0;
    while i < bytes.len() {
        let run = hex_run(&bytes[i..]);
        if run == 0 {
            i += 1;
            continue;
        }
        // A lone digit (the 0 of 0x) belongs to the gap; other odd runs end a group.
        if run > 1 {
            if i - last_end > 4 || run % 2 == 1 {
                out.push((0, i, i));
            }
            if run.is_multiple_of(2) {
                for at in (i..i + run).step_by(2) {
                    out.push(hex_byte(bytes, at));
                }
            }
            last_end = i + run;
        }
        i += run;
    }
    View(out)
}

/// The ranges of the original text where `view` holds a secret's run: any [`RUN`] bytes
/// in a row of a secret (a shorter secret whole), ASCII case ignored, a space and a `+`
/// alike.
fn runs(view: &View, prepared: &Prepared) -> Vec<(usize, usize)> {
    let folded: Vec<u8> = view.0.iter().map(|(b, _, _)| fold(*b)).collect();
    let mut ranges = Vec::new();
    for secret in &prepared.short {
        let mut from = 0;
        while let Some(at) = find(&folded[from..], secret) {
            let (start, end) = (from + at, from + at + secret.len());
            ranges.push((view.0[start].1, view.0[end - 1].2));
            from = end;
        }
    }
    if !prepared.windows.is_empty() {
        for (start, bytes) in folded.windows(RUN).enumerate() {
            if prepared.windows.contains(&window(bytes)) {
                ranges.push((view.0[start].1, view.0[start + RUN - 1].2));
            }
        }
    }
    ranges
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// `text` with each of `ranges` (merged where they overlap or touch, widened to whole
/// characters) replaced by [`BLANK`].
fn replace_ranges(text: &str, mut ranges: Vec<(usize, usize)>) -> String {
    if ranges.is_empty() {
        return text.to_owned();
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < ranges.len() {
        let (mut start, mut end) = ranges[i];
        while i + 1 < ranges.len() && ranges[i + 1].0 <= end {
            end = end.max(ranges[i + 1].1);
            i += 1;
        }
        i += 1;
        start = start.max(copied);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        start = start.max(copied);
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if end <= start {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(BLANK);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
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

    /// The forms a server echoed that the exact forms above miss, each blanked.
    #[test]
    fn blanks_runs_of_a_secret_in_any_case_and_decoding() {
        let secret = "Run<16>&more s3cr+t/=%:xyz-0123456789";
        register(secret);
        let every_char_u: String = secret.chars().map(|c| format!("\\u{:04x}", u32::from(c))).collect();
        let html = secret.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let numeric: String = secret.chars().map(|c| format!("&#{};", u32::from(c))).collect();
        let twice = crate::form::FORM.encode(&crate::form::FORM.encode(secret));
        let pairs_of = |size: usize, between: &str| -> String {
            let groups: Vec<String> =
                secret.as_bytes().chunks(size).map(|group| crate::form::hex(group, false)).collect();
            groups.join(between)
        };
        let pairs = |between: &str, before: &str| -> String {
            let groups: Vec<String> = secret.bytes().map(|b| format!("{before}{b:02x}")).collect();
            groups.join(between)
        };
        let wrapped: String = {
            let b64 = STANDARD.encode(secret);
            let (a, b) = b64.split_at(20);
            format!("{a}\n{b}")
        };
        for (what, echoed) in [
            ("html entities", html),
            ("numeric entities", numeric),
            ("\\u per char", every_char_u),
            ("upper case", secret.to_uppercase()),
            ("lower case", secret.to_lowercase()),
            ("hex", crate::form::hex(secret.as_bytes(), false)),
            ("HEX", crate::form::hex(secret.as_bytes(), true)),
            ("percent twice", twice),
            ("base64 across lines", wrapped),
            ("16-char prefix", secret[..16].to_string()),
            ("16-char middle, upper", secret[10..26].to_uppercase()),
            ("hex, spaced", pairs(" ", "")),
            ("hex, colons", pairs(":", "")),
            ("hex, \\x", pairs("", "\\x")),
            ("hex, 0x and commas", pairs(", ", "0x")),
            ("hex, groups of 4", pairs_of(2, " ")),
        ] {
            let out = echo(format!("said: {echoed}.").as_bytes(), 10_000);
            let out = out
                .replace("said: \\x[redacted]", "said: [redacted]")
                .replace("said: 0x[redacted]", "said: [redacted]");
            assert!(out.starts_with("said: [redacted]"), "{what}: {out}");
            let echoed: Vec<char> = echoed.chars().filter(|c| *c != '\n').collect();
            for window in echoed.windows(8) {
                let window: String = window.iter().collect();
                assert!(!out.contains(&window), "{what}: {window} left in {out}");
            }
        }
        // 15 characters of it are not a run: ordinary text stays.
        assert_eq!(echo(&secret.as_bytes()[..15], 100), secret[..15]);
    }

    /// A secret inside another one, echoed in another casing: the longer one goes whole.
    #[test]
    fn a_secret_inside_another_does_not_shield_the_rest() {
        register("Inner5ecret");
        register("Outer-part-Inner5ecret-more-text");
        assert_eq!(echo(b"x OUTER-PART-Inner5ecret-MORE-TEXT y", 100), "x [redacted] y");
    }

    #[test]
    fn an_excerpt_of_a_long_text_still_blanks_a_secret_that_reaches_past_it() {
        let secret = "excerpt-unit-Zq9kPw7X-secret";
        register(secret);
        // Each character as a hex entity: a form 8 times the secret, most of it past
        // the excerpt's characters; then much more text.
        let entities: String = secret.chars().map(|c| format!("&#x{:x};", u32::from(c))).collect();
        let text = format!("said: {entities} {}", "y".repeat(100_000));
        let shown = echo(text.as_bytes(), 12);
        assert_eq!(shown, "said: [redac…");
        assert_eq!(echo(text.as_bytes(), 40), "said: [redacted] yyyyyyyyyyyyyyyyyyyyyyy…");
    }

    #[test]
    fn short_values_are_not_secrets() {
        register("abc");
        assert_eq!(echo(b"abc abc", 100), "abc abc");
    }
}
