//! [`Secret`], the only type that holds a token or a client secret, and where the two
//! secrets read from files come from (the subject token, the client secret file).
//!
//! A `Secret` has no `Display`, and its `Debug` prints a short SHA-256 fingerprint, so a
//! secret cannot end up in a message by accident. The files are read on every run (the
//! kubelet rotates the token), through `fs::read_bounded`.

use std::fmt;
use std::path::Path;

use crate::error::Error;
use crate::fs::read_bounded;
use crate::redact;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Holds `value`, and registers it with `redact`, so that it is blanked out of every
    /// message from now on.
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        redact::register(&value);
        Secret(value)
    }

    /// The secret itself, for the request body, the Authorization header or stdout.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `sha256:` and the first 12 hex digits of the digest: safe to log, enough to compare.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", &hex_sha256(self.0.as_bytes())[..12])
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

/// Where the client secret comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientSecret {
    Value(Secret),
    File(std::path::PathBuf),
}

impl ClientSecret {
    /// The secret, read from its file when it has one.
    pub fn read(&self) -> Result<Secret, Error> {
        match self {
            ClientSecret::Value(secret) => Ok(secret.clone()),
            ClientSecret::File(path) => read_client_secret(path),
        }
    }
}

/// Reads the subject token, trimming surrounding whitespace (a trailing newline is usual).
pub fn read_subject(path: &Path) -> Result<Secret, Error> {
    read_trimmed(path)
}

/// Reads a client secret file, trimming surrounding whitespace. An empty file is an empty
/// secret (a Dex public client).
fn read_client_secret(path: &Path) -> Result<Secret, Error> {
    let bad = |reason: String| Error::ConfigFile { what: "client secret file", path: path.into(), reason };
    let bytes = read_bounded(path, MAX_SECRET_FILE)
        .map_err(|err| crate::error::exhausted(&err).unwrap_or_else(|| bad(err.to_string())))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("file is not UTF-8 text".into()))?;
    Ok(Secret::new(text.trim()))
}

/// Token and secret files larger than this are not what they claim to be.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Lowercase hex SHA-256, for fingerprints and cache keys.
pub fn hex_sha256(bytes: &[u8]) -> String {
    crate::form::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref(), false)
}

fn read_trimmed(path: &Path) -> Result<Secret, Error> {
    let bad = |reason: String| Error::SubjectToken { path: path.into(), reason };
    let bytes = read_bounded(path, MAX_SECRET_FILE)
        .map_err(|err| crate::error::exhausted(&err).unwrap_or_else(|| bad(err.to_string())))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("file is not UTF-8 text".into()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(bad("file is empty".into()));
    }
    // Bytes first: a JWT is ASCII, and a byte test is a tenth of the cost per character.
    let ascii_space = |b: &u8| matches!(b, b' ' | b'\t'..=b'\r');
    if token.as_bytes().iter().any(ascii_space) || (!token.is_ascii() && token.chars().any(char::is_whitespace)) {
        return Err(bad("file holds more than one word; expected a single token".into()));
    }
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, content: &[u8]) -> (testkit::TempDir, std::path::PathBuf) {
        let dir = testkit::TempDir::new("secret");
        let path = dir.write(name, content);
        (dir, path)
    }

    #[test]
    fn debug_shows_a_fingerprint_never_the_secret() {
        let secret = Secret::new("eyJhbGciOi.payload.sig");
        let debug = format!("{secret:?}");
        assert!(!debug.contains("payload"), "{debug}");
        assert_eq!(debug, format!("Secret({})", secret.fingerprint()));
        assert_eq!(Secret::new("abc").fingerprint(), "sha256:ba7816bf8f01");
        assert_eq!(hex_sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn subject_token_is_trimmed() {
        let (_dir, path) = temp_file("trim", b"  header.payload.sig\n\n");
        assert_eq!(read_subject(&path).unwrap().expose(), "header.payload.sig");
    }

    #[test]
    fn inner_whitespace_of_any_kind_is_refused() {
        for text in ["a b", "a\tb", "a\u{b}b", "a\u{c}b", "a\u{a0}b", "日\u{2003}本"] {
            let (_dir, path) = temp_file("words", text.as_bytes());
            let err = read_subject(&path).unwrap_err();
            assert!(err.to_string().contains("more than one word"), "{text:?}: {err}");
        }
    }

    #[test]
    fn empty_and_missing_subject_tokens_are_exit_3() {
        let (_dir, path) = temp_file("empty", b" \n");
        let err = read_subject(&path).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("file is empty"), "{err}");

        let err = read_subject(Path::new("/nonexistent/token")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot use subject token file /nonexistent/token: No such file or directory (os error 2) (set --token-file to the projected ServiceAccount token)"
        );
    }

    #[test]
    fn client_secret_file_is_trimmed_and_may_be_empty() {
        let (_dir, path) = temp_file("secret", b"s3cr+t\n");
        assert_eq!(read_client_secret(&path).unwrap().expose(), "s3cr+t");
        let (_dir, path) = temp_file("secret-empty", b"");
        assert_eq!(read_client_secret(&path).unwrap().expose(), "");
        assert_eq!(read_client_secret(Path::new("/nonexistent")).unwrap_err().exit_code(), 2);
    }
}
