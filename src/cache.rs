//! The on-disk credential cache: one entry per key, written atomically, served while
//! fresh, and a per-key lock so that a burst of runs costs one exchange (single flight).
//!
//! The cache can never make a run fail: every problem here (a missing, corrupt or
//! foreign entry, an unsafe directory, a full disk, a lock that cannot be taken) is said
//! with `-v` and the run carries on without it. Entries hold the issued token, so the
//! directory is 0700 and files 0600 from the moment they are created.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::cli::{Config, Endpoint};
use crate::error::Error;
use crate::exchange::Issued;
use crate::token::{Secret, hex_sha256, read_bounded};

const VERSION: u32 = 1;
/// Entries larger than this are not ours.
const MAX_ENTRY: u64 = 64 * 1024;

#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
}

#[derive(miniserde::Serialize, miniserde::Deserialize)]
struct Entry {
    version: u32,
    expires_at: i64,
    token: String,
    check: String,
}

/// The cache key: a SHA-256 over everything that changes the issued token.
pub fn key(config: &Config, client_secret: &Secret, subject: &Secret) -> String {
    let endpoint = match &config.endpoint {
        Endpoint::Token(url) => format!("token-endpoint {url}"),
        Endpoint::Issuer(url) => format!("issuer {url}"),
    };
    let mut scopes = config.scopes.clone();
    scopes.sort();
    let mut audiences = config.audiences.clone();
    audiences.sort();
    let fields = [
        "tokenxchange cache key v1".to_string(),
        endpoint,
        config.client_id.clone(),
        hex_sha256(client_secret.expose().as_bytes()),
        config.connector.clone().unwrap_or_default(),
        scopes.join(" "),
        audiences.join(" "),
        config.subject_token_type.clone(),
        config.requested_token_type.clone(),
        config.cluster.clone().unwrap_or_default(),
        hex_sha256(subject.expose().as_bytes()),
    ];
    let mut material = String::new();
    for field in fields {
        material.extend([&field.len().to_string(), ":", &field, "\n"]);
    }
    hex_sha256(material.as_bytes())
}

/// The first 12 hex digits of a key, for messages.
pub fn short(key: &str) -> &str {
    &key[..12]
}

impl Cache {
    /// Uses `dir`, creating it (mode 0700) when missing. Refuses a directory that is a
    /// symlink or writable by group or others.
    pub fn open(dir: &Path) -> Option<Cache> {
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                verbose!("cache off: {} is a symlink", dir.display());
                None
            }
            Ok(meta) if !meta.is_dir() => {
                verbose!("cache off: {} is not a directory", dir.display());
                None
            }
            Ok(meta) if meta.mode() & 0o022 != 0 => {
                verbose!(
                    "cache off: {} is writable by group or others (mode {:o}); chmod 700 it",
                    dir.display(),
                    meta.mode() & 0o777
                );
                None
            }
            Ok(_) => Some(Cache { dir: dir.into() }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
                    Ok(()) => Some(Cache { dir: dir.into() }),
                    Err(err) => {
                        verbose!("cache off: cannot create {}: {err}", dir.display());
                        None
                    }
                }
            }
            Err(err) => {
                verbose!("cache off: {}: {err}", dir.display());
                None
            }
        }
    }

    /// The entry for `key` if it is intact and not expired at `now`; else why not.
    pub fn read(&self, key: &str, now: i64) -> Result<Issued, String> {
        let path = self.entry_path(key);
        let text = match read_small(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err("no entry".into()),
            Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
        };
        let entry = match miniserde::json::from_str::<Entry>(&text) {
            Ok(entry) if entry.version != VERSION => return Err(format!("entry of format version {}", entry.version)),
            Ok(entry) if entry.check == check(entry.expires_at, &entry.token) => entry,
            _ => return Err(format!("corrupt entry {}", path.display())),
        };
        if entry.expires_at <= now {
            return Err(format!("entry expired at {}", crate::exec_credential::rfc3339(entry.expires_at)));
        }
        Ok(Issued { token: Secret::new(entry.token), expires_at: Some(entry.expires_at) })
    }

    /// Takes the per-key lock, waiting at most until `until`. `None` when it cannot be
    /// had; the caller then exchanges without it. The lock is released when the file drops.
    pub fn lock(&self, key: &str, until: Instant) -> Option<File> {
        let path = self.dir.join(format!("{}.lock", &key[..32]));
        let file = match OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&path) {
            Ok(file) => file,
            Err(err) => {
                verbose!("cache lock {}: cannot open {}: {err}", short(key), path.display());
                return None;
            }
        };
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => return Some(file),
                Err(TryLockError::WouldBlock) if Instant::now() + pause < until => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(25));
                }
                Err(TryLockError::WouldBlock) => {
                    verbose!("cache lock {}: still held by another run; exchanging without it", short(key));
                    return None;
                }
                Err(TryLockError::Error(err)) => {
                    verbose!("cache lock {}: {err}", short(key));
                    return None;
                }
            }
        }
    }

    /// Stores `issued` for `key` (temp file, fsync, rename), then prunes expired entries.
    pub fn write(&self, key: &str, issued: &Issued, now: i64) {
        let Some(expires_at) = issued.expires_at.filter(|at| *at > now) else {
            verbose!("cache {}: not stored, the credential's expiry is unknown or past", short(key));
            return;
        };
        let token = issued.token.expose().to_string();
        let entry = Entry { version: VERSION, expires_at, check: check(expires_at, &token), token };
        match self.write_atomically(&self.entry_path(key), miniserde::json::to_string(&entry).as_bytes()) {
            Ok(()) => verbose!("cache {}: stored until {}", short(key), crate::exec_credential::rfc3339(expires_at)),
            Err(err) => verbose!("cache {}: not stored: {err}", short(key)),
        }
        self.prune(key, now);
    }

    /// The token endpoint discovered earlier for `issuer`, if remembered and acceptable.
    pub fn read_endpoint(&self, issuer: &str, allow_insecure_http: bool) -> Option<String> {
        let text = read_small(&self.endpoint_path(issuer)).ok()?;
        let endpoint = text.trim();
        crate::http::check_url(endpoint, allow_insecure_http, "remembered token endpoint").ok()?;
        verbose!("remembered token endpoint {endpoint} for {issuer}");
        Some(endpoint.to_string())
    }

    pub fn write_endpoint(&self, issuer: &str, endpoint: &str) {
        if let Err(err) = self.write_atomically(&self.endpoint_path(issuer), format!("{endpoint}\n").as_bytes()) {
            verbose!("discovered endpoint not remembered: {err}");
        }
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", &key[..32]))
    }

    fn endpoint_path(&self, issuer: &str) -> PathBuf {
        self.dir.join(format!("{}.endpoint", &hex_sha256(issuer.as_bytes())[..32]))
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let temp = self.dir.join(format!(
            ".{}.{}.{nanos}.tmp",
            std::process::id(),
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("entry")
        ));
        let result = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            pause_for_tests();
            fs::rename(&temp, path)?;
            File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Removes expired or unreadable entries (other than `keep`) and stale temp files.
    fn prune(&self, keep: &str, now: i64) {
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        let keep = format!("{}.json", &keep[..32]);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = entry.path();
            let stale = if !is_ours(&name) {
                false
            } else if name.ends_with(".tmp") {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60)))
            } else if name.ends_with(".json") && *name != keep {
                read_small(&path)
                    .ok()
                    .and_then(|text| miniserde::json::from_str::<Entry>(&text).ok())
                    .is_none_or(|e| e.expires_at <= now)
            } else {
                false
            };
            if stale && fs::remove_file(&path).is_ok() {
                verbose!("cache: pruned {}", path.display());
            }
        }
    }
}

/// Removes the cache's files from `dir`; returns what was removed. Other files stay.
pub fn clean(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::Runtime(format!("cannot read cache directory {}: {err}", dir.display()))),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if is_ours(&name) {
            let path = entry.path();
            fs::remove_file(&path).map_err(|err| Error::Runtime(format!("cannot remove {}: {err}", path.display())))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Debug builds only: waits `TOKENXCHANGE_TEST_PAUSE_BEFORE_RENAME_MS` between writing a
/// temp file and renaming it, so a test can kill a run at exactly that point.
#[cfg(debug_assertions)]
fn pause_for_tests() {
    if let Some(ms) = std::env::var("TOKENXCHANGE_TEST_PAUSE_BEFORE_RENAME_MS").ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

#[cfg(not(debug_assertions))]
fn pause_for_tests() {}

/// Whether a file name is one this cache writes: `<32 hex>.json|.lock|.endpoint`, or a
/// temp file `.<pid>.<32 hex>.<nanos>.tmp`. Anything else in the directory is left alone.
fn is_ours(name: &str) -> bool {
    let hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(temp) = name.strip_prefix('.') {
        return matches!(temp.split('.').collect::<Vec<_>>()[..], [pid, stem, nanos, "tmp"] if digits(pid) && hex32(stem) && digits(nanos));
    }
    matches!(name.split_once('.'), Some((stem, "json" | "lock" | "endpoint")) if hex32(stem))
}

fn check(expires_at: i64, token: &str) -> String {
    hex_sha256(format!("tokenxchange cache v{VERSION}\n{expires_at}\n{token}").as_bytes())[..16].to_string()
}

fn read_small(path: &Path) -> io::Result<String> {
    String::from_utf8(read_bounded(path, MAX_ENTRY)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli;

    fn config(extra: &[&str]) -> Config {
        cli::config_for_tests(extra)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tokenxchange-cache-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn key_changes_with_everything_that_changes_the_token() {
        let secret = Secret::new("s");
        let subject = Secret::new("t");
        let base = key(&config(&[]), &secret, &subject);
        assert_eq!(base.len(), 64);
        assert_eq!(
            base,
            key(&config(&["--scopes", "federated:id profile openid"]), &secret, &subject),
            "scope order is normalised"
        );
        for extra in [
            &["--scopes", "openid"][..],
            &["--dex-connector", "k"],
            &["--audience", "a"],
            &["--client-id", "other"],
            &["--requested-token-type", "access_token"],
            &["--subject-token-type", "jwt"],
        ] {
            assert_ne!(base, key(&config(extra), &secret, &subject), "{extra:?}");
        }
        assert_ne!(base, key(&config(&[]), &Secret::new("s2"), &subject));
        assert_ne!(base, key(&config(&[]), &secret, &Secret::new("t2")));
        let mut with_cluster = config(&[]);
        with_cluster.cluster = Some("{\"server\":\"https://a\"}".into());
        assert_ne!(base, key(&with_cluster, &secret, &subject));
    }

    #[test]
    fn round_trip_expiry_and_corruption() {
        let dir = temp_dir("round-trip");
        let cache = Cache::open(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let k = "a".repeat(64);
        let issued = Issued { token: Secret::new("tok"), expires_at: Some(1_000) };
        assert_eq!(cache.read(&k, 0).ok(), None);
        cache.write(&k, &issued, 0);
        assert_eq!(fs::metadata(cache.entry_path(&k)).unwrap().mode() & 0o777, 0o600);
        assert_eq!(cache.read(&k, 999).ok(), Some(issued.clone()));
        assert_eq!(cache.read(&k, 1_000).ok(), None);

        let text = fs::read_to_string(cache.entry_path(&k)).unwrap();
        fs::write(cache.entry_path(&k), text.replace("tok", "tak")).unwrap();
        assert_eq!(cache.read(&k, 0).ok(), None, "a changed token fails the check");
        fs::write(cache.entry_path(&k), &text[..text.len() / 2]).unwrap();
        assert_eq!(cache.read(&k, 0).ok(), None, "a truncated entry is a miss");
        fs::write(cache.entry_path(&k), text.replace("\"version\":1", "\"version\":9")).unwrap();
        assert_eq!(cache.read(&k, 0).ok(), None, "a foreign version is a miss");

        cache.write(&k, &Issued { token: Secret::new("x"), expires_at: None }, 0);
        assert_eq!(cache.read(&k, 0).ok(), None, "unknown expiry is not stored");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prune_removes_expired_entries_of_other_keys() {
        let dir = temp_dir("prune");
        let cache = Cache::open(&dir).unwrap();
        let (old, fresh, current) = ("b".repeat(64), "c".repeat(64), "d".repeat(64));
        cache.write(&old, &Issued { token: Secret::new("1"), expires_at: Some(100) }, 0);
        cache.write(&fresh, &Issued { token: Secret::new("2"), expires_at: Some(10_000) }, 0);
        cache.write(&current, &Issued { token: Secret::new("3"), expires_at: Some(10_000) }, 500);
        assert!(!cache.entry_path(&old).exists());
        assert!(cache.entry_path(&fresh).exists());
        let removed = clean(&dir).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(fs::read_dir(&dir).unwrap().next().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_its_own_files_are_touched() {
        let hex = "0123456789abcdef0123456789abcdef";
        for ours in
            [format!("{hex}.json"), format!("{hex}.lock"), format!("{hex}.endpoint"), format!(".42.{hex}.123.tmp")]
        {
            assert!(is_ours(&ours), "{ours}");
        }
        for theirs in
            ["important.json", "app.lock", "config", &format!("{hex}.yaml"), ".x.tmp", &format!("{hex}x.json")]
        {
            assert!(!is_ours(theirs), "{theirs}");
        }
    }

    #[test]
    fn unsafe_directories_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("unsafe");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(Cache::open(&dir).is_none());
        let link = temp_dir("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(Cache::open(&link).is_none());
        assert!(Cache::open(&dir).is_some());
        fs::remove_file(&link).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn endpoints_are_remembered_per_issuer() {
        let dir = temp_dir("endpoint");
        let cache = Cache::open(&dir).unwrap();
        assert_eq!(cache.read_endpoint("https://dex", false), None);
        cache.write_endpoint("https://dex", "https://dex/token");
        assert_eq!(cache.read_endpoint("https://dex", false).as_deref(), Some("https://dex/token"));
        assert_eq!(cache.read_endpoint("https://other", false), None);
        cache.write_endpoint("https://dex", "http://dex.example/token");
        assert_eq!(cache.read_endpoint("https://dex", false), None, "an unsafe remembered URL is ignored");
        fs::remove_dir_all(&dir).unwrap();
    }
}
