//! The on-disk credential cache: one entry per key, written atomically, served while
//! younger than the maximum age and unexpired, and a per-key lock so that a burst of runs
//! costs one exchange (single flight).
//!
//! The cache trusts nothing it did not make. Its directory is opened once, without
//! following symlinks, and used only when this user owns it, nobody else may enter it,
//! and every directory above it (symlinks resolved) belongs to root or to this user;
//! missing directories are made one by one inside their parent's descriptor (see
//! `fs::walk`). Every file in it is then opened, renamed and removed relative to that
//! directory's descriptor, without following symlinks and without blocking, and used only
//! when it is a regular file of this user. Swapping a path component after the checks
//! changes nothing.
//!
//! The cache can never make a run fail: every problem here (an unsafe directory, a
//! missing, corrupt or foreign entry, a FIFO where a file should be, a full disk, a lock
//! that cannot be had) is said with `-v` and the run carries on without it.

use std::ffi::CString;
use std::fmt;
use std::fs::{self, File, Metadata, TryLockError};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::exec_credential::Credential;
use crate::fs::{Walked, identity, identity_at, open_at, read_opened, unlink_at, walk, write_atomically};
use crate::secret::{Secret, hex_sha256};
use crate::time::rfc3339;
use crate::url::Url;

const VERSION: u32 = 3;
/// A lock without an entry, untouched this long and held by nobody, is removed.
const STALE_LOCK: Duration = Duration::from_secs(600);
/// The one size bound of a cache file, for writing and for reading: an entry that would
/// be larger is not written (its credential is still printed), a larger file is not ours.
pub const MAX_ENTRY: u64 = 64 * 1024;

/// An open, checked cache directory.
#[derive(Debug)]
pub struct Cache {
    dir: File,
    path: PathBuf,
    /// This process's effective uid, the owner everything in here must have.
    me: u32,
}

#[derive(miniserde::Serialize, miniserde::Deserialize)]
struct Entry {
    version: u32,
    /// When the credential was issued and stored, in Unix seconds (its age counts from here).
    stored_at: i64,
    expires_at: i64,
    token: String,
    check: String,
}

/// A cached credential, and when it was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub credential: Credential,
    pub stored_at: i64,
}

impl Hit {
    /// Seconds since the entry was stored; `None` for an entry stored in the future (the
    /// clock was stepped back since, or the entry was forged): its age is unknown, and
    /// counting it as new would serve it for as long as the clocks differ.
    pub fn age(&self, now: i64) -> Option<u64> {
        u64::try_from(now.checked_sub(self.stored_at)?).ok()
    }
}

/// Why there is no usable entry. Control flow matches on the kind; the words are in
/// `Display` only.
#[derive(Debug, Clone, PartialEq)]
pub enum Miss {
    NoEntry,
    Expired(i64),
    /// Another format version.
    Version(u32),
    /// Unreadable, foreign, oversized or failing its check, in words.
    Unusable(String),
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::NoEntry => f.write_str("no entry"),
            Miss::Expired(at) => write!(f, "entry expired at {}", rfc3339(*at)),
            Miss::Version(version) => write!(f, "entry of format version {version}"),
            Miss::Unusable(why) => f.write_str(why),
        }
    }
}

/// Why a cache directory is not used.
#[derive(Debug, Clone, PartialEq)]
enum Refused {
    /// It does not exist (and was not to be created).
    Missing,
    /// It or a directory above it is unsafe or unusable, in words.
    Unsafe(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Missing => f.write_str("does not exist"),
            Refused::Unsafe(why) => f.write_str(why),
        }
    }
}

impl From<String> for Refused {
    fn from(why: String) -> Refused {
        Refused::Unsafe(why)
    }
}

impl From<&str> for Refused {
    fn from(why: &str) -> Refused {
        Refused::Unsafe(why.into())
    }
}

/// One part of a cache key: a value, or a list whose order does not matter.
pub enum Part<'a> {
    One(&'a str),
    Set(&'a [String]),
}

/// The cache key: a SHA-256 over `parts`, each encoded with its length so that no two
/// different inputs give the same material (`["a b"]` and `["a", "b"]` differ).
pub fn key(parts: &[Part<'_>]) -> String {
    let mut material = String::from("tokenxchange cache key v2\n");
    for part in parts {
        match part {
            Part::One(value) => material.extend([&value.len().to_string(), ":", value, "\n"]),
            Part::Set(values) => {
                let mut sorted: Vec<&String> = values.iter().collect();
                sorted.sort();
                sorted.dedup();
                material.extend(["[", &sorted.len().to_string(), "]"]);
                for value in sorted {
                    material.extend([&value.len().to_string(), ":", value.as_str()]);
                }
                material.push('\n');
            }
        }
    }
    hex_sha256(material.as_bytes())
}

/// The first 12 hex digits of a key, for messages.
pub fn short(key: &str) -> &str {
    &key[..12]
}

impl Cache {
    /// Uses `path`, creating it (mode 0700, parents too) when missing; `None`, said with
    /// `-v`, when it is not safe to use.
    pub fn open(path: &Path) -> Option<Cache> {
        match open_dir(path, true) {
            Ok(cache) => Some(cache),
            Err(why) => {
                verbose!("cache off: {}: {why}", path.display());
                None
            }
        }
    }

    /// The entry for `key` if it is intact and not expired at `now`; else why not. Its
    /// age is for the caller to judge.
    pub fn read(&self, key: &str, now: i64) -> Result<Hit, Miss> {
        let name = entry_name(key);
        let (file, meta) = match self.open_file(&name, libc::O_RDONLY, false) {
            Ok(opened) => opened,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(Miss::NoEntry),
            Err(err) => return Err(Miss::Unusable(format!("cannot read {name}: {err}"))),
        };
        let text = read_opened(file, &meta, MAX_ENTRY)
            .and_then(|bytes| String::from_utf8(bytes).map_err(|_| io::Error::other("not UTF-8")))
            .map_err(|err| Miss::Unusable(format!("cannot read {name}: {err}")))?;
        let entry = match miniserde::json::from_str::<Entry>(&text) {
            Ok(entry) if entry.version != VERSION => return Err(Miss::Version(entry.version)),
            Ok(entry) if entry.check == check(entry.stored_at, entry.expires_at, &entry.token) => entry,
            // An entry of an older format (without `stored_at`) lands here too.
            _ => return Err(Miss::Unusable(format!("corrupt entry {name}"))),
        };
        if entry.expires_at <= now {
            return Err(Miss::Expired(entry.expires_at));
        }
        let credential = Credential { token: Secret::new(entry.token), expires_at: Some(entry.expires_at) };
        Ok(Hit { credential, stored_at: entry.stored_at })
    }

    /// Takes the per-key lock, waiting at most until `until`. `None` when it cannot be
    /// had; the caller then exchanges without it. The lock is released when the file drops.
    pub fn lock(&self, key: &str, until: Instant) -> Option<File> {
        let name = lock_name(key);
        let mut pause = Duration::from_millis(2);
        loop {
            let file = match self.open_file(&name, libc::O_RDWR | libc::O_CREAT, false) {
                Ok((file, _)) => file,
                Err(err) => {
                    verbose!("cache lock {}: cannot use {name}: {err}", short(key));
                    return None;
                }
            };
            match self.acquire(&file, &name) {
                Ok(true) => return Some(file),
                // Pruned between our open and our lock: the name is a new file now.
                Ok(false) => continue,
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

    /// Tries once to lock `file`, opened as `name`: `Ok(true)` when this run now holds
    /// the lock that the name stands for, `Ok(false)` when the name no longer leads to
    /// this file (a run pruned it while we waited), so the lock would exclude nobody.
    fn acquire(&self, file: &File, name: &str) -> Result<bool, TryLockError> {
        file.try_lock()?;
        let held = identity(&file.metadata().map_err(TryLockError::Error)?);
        Ok(identity_at(&self.dir, name).is_ok_and(|named| named == held))
    }

    /// Stores `credential` for `key` as issued at `now` (temp file, fsync, rename), then
    /// prunes expired entries. A credential without a known expiry, or too large for an
    /// entry, is not stored.
    pub fn write(&self, key: &str, credential: &Credential, now: i64) {
        let Some(expires_at) = credential.expires_at.filter(|at| *at > now) else {
            verbose!("cache {}: not stored, the credential's expiry is unknown or past", short(key));
            return;
        };
        let token = credential.token.expose().to_string();
        let entry =
            Entry { version: VERSION, stored_at: now, expires_at, check: check(now, expires_at, &token), token };
        let text = miniserde::json::to_string(&entry);
        if text.len() as u64 > MAX_ENTRY {
            verbose!(
                "cache {}: not stored, the token ({} KiB) is larger than an entry may be ({} KiB)",
                short(key),
                credential.token.expose().len() / 1024,
                MAX_ENTRY / 1024
            );
        } else {
            match write_atomically(&self.dir, &entry_name(key), text.as_bytes(), 0o600) {
                Ok(()) => verbose!("cache {}: stored until {}", short(key), rfc3339(expires_at)),
                Err(err) => verbose!("cache {}: not stored: {err}", short(key)),
            }
        }
        self.prune(key, now);
    }

    /// The token endpoint discovered earlier for exactly this `issuer`, if remembered and
    /// acceptable under the same policy as a flag.
    pub fn read_endpoint(&self, issuer: &Url, allow_insecure_http: bool) -> Option<Url> {
        let name = endpoint_name(issuer);
        let bytes = self
            .open_file(&name, libc::O_RDONLY, false)
            .and_then(|(file, meta)| read_opened(file, &meta, MAX_ENTRY))
            .ok()?;
        // Two lines: the issuer it was discovered from, then the token endpoint (URLs hold
        // no line breaks).
        let (from, endpoint) = std::str::from_utf8(&bytes).ok()?.trim_end().split_once('\n')?;
        if from != issuer.as_str() {
            verbose!("remembered token endpoint in {name} is for another issuer; ignored");
            return None;
        }
        match Url::parse(endpoint, allow_insecure_http, "remembered token endpoint") {
            Ok(endpoint) => {
                verbose!("remembered token endpoint {endpoint} for {issuer}");
                Some(endpoint)
            }
            Err(err) => {
                verbose!("{err}; ignored");
                None
            }
        }
    }

    pub fn write_endpoint(&self, issuer: &Url, endpoint: &Url) {
        let text = format!("{issuer}\n{endpoint}\n");
        if text.len() as u64 > MAX_ENTRY {
            verbose!("discovered endpoint not remembered: larger than {} KiB", MAX_ENTRY / 1024);
        } else if let Err(err) = write_atomically(&self.dir, &endpoint_name(issuer), text.as_bytes(), 0o600) {
            verbose!("discovered endpoint not remembered: {err}");
        }
    }

    /// Opens `name` in the cache directory without following a symlink and without
    /// blocking, and accepts it only as a regular file of this user; returns its `fstat`.
    fn open_file(&self, name: &str, flags: libc::c_int, exclusive: bool) -> io::Result<(File, Metadata)> {
        let flags = flags | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        let flags = if exclusive { flags | libc::O_EXCL } else { flags };
        let name = CString::new(name).map_err(|_| io::Error::other("name holds NUL"))?;
        let file = File::from(open_at(self.dir.as_raw_fd(), &name, flags, 0o600)?);
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        if meta.uid() != self.me {
            return Err(io::Error::other(format!("owned by uid {}, not this user", meta.uid())));
        }
        Ok((file, meta))
    }

    /// Removes expired or unreadable entries (other than `keep`), stale temp files, and
    /// the locks of keys that have no entry any more (each rotation of the subject token
    /// makes new keys) once nobody holds them. A lock is removed only while this run holds
    /// it, so a run that opened it meanwhile finds its name gone after locking (see
    /// [`Cache::acquire`]) and takes the new one.
    fn prune(&self, keep: &str, now: i64) {
        let keep = entry_name(keep);
        let names = self.own_files();
        let older_than = |name: &str, age: Duration| {
            self.open_file(name, libc::O_RDONLY, false)
                .and_then(|(_, meta)| meta.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|elapsed| elapsed > age))
        };
        for name in &names {
            let removed = if name.ends_with(".tmp") {
                older_than(name, Duration::from_secs(60)) && unlink_at(&self.dir, name).is_ok()
            } else if name.ends_with(".json") && *name != keep {
                self.read(&name[..32], now).is_err_and(|miss| miss != Miss::NoEntry)
                    && unlink_at(&self.dir, name).is_ok()
            } else if name.ends_with(".lock") && !names.contains(&format!("{}.json", &name[..32])) {
                older_than(name, STALE_LOCK)
                    && self.open_file(name, libc::O_RDWR, false).is_ok_and(|(file, _)| {
                        // Held while it is unlinked; released when `file` drops.
                        self.acquire(&file, name).is_ok_and(|held| held) && unlink_at(&self.dir, name).is_ok()
                    })
            } else {
                false
            };
            if removed {
                verbose!("cache: pruned {name}");
            }
        }
    }

    /// The names in the directory that this cache writes, sorted. The names are listed by
    /// path; everything done with them goes through the directory's descriptor.
    fn own_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| is_ours(name))
            .collect();
        names.sort();
        names
    }
}

/// Removes the cache's own files from `dir`; returns what was removed. Other files stay.
/// A directory that `get-token` would not use is refused here too.
pub fn clean(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let cache = match open_dir(dir, false) {
        Ok(cache) => cache,
        Err(Refused::Missing) => return Ok(Vec::new()),
        Err(why) => return Err(Error::Runtime(format!("refusing to clean {}: {why}", dir.display()))),
    };
    let mut removed = Vec::new();
    for name in cache.own_files() {
        let owned = cache.open_file(&name, libc::O_RDONLY, false).is_ok();
        if owned {
            unlink_at(&cache.dir, &name)
                .map_err(|err| Error::Runtime(format!("cannot remove {}: {err}", dir.join(&name).display())))?;
            removed.push(dir.join(&name));
        }
    }
    Ok(removed)
}

/// Opens the cache directory `path` (creating it and the directories above it when
/// `create`), checking it and every directory above it as the module documentation says.
fn open_dir(path: &Path, create: bool) -> Result<Cache, Refused> {
    let name = match path.components().next_back() {
        Some(Component::Normal(name)) => CString::new(name.as_bytes()).map_err(|_| "the name holds NUL")?,
        _ => return Err("is not a plain directory name".into()),
    };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut parent = if parent.is_absolute() {
        parent.to_path_buf()
    } else {
        std::env::current_dir().map_err(|err| format!("cannot resolve its parent: {err}"))?.join(parent)
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    // The path as written; when a directory above is a symlink, the path it resolves to
    // (resolved as far as it exists, the rest walked and made below it).
    let mut resolutions = 0;
    let above = loop {
        match walk(&parent, me, create)? {
            Walked::Dir(dir) => break dir,
            Walked::Missing => return Err(Refused::Missing),
            Walked::Symlink { upto, rest } => {
                resolutions += 1;
                if resolutions > 8 {
                    return Err("too many symlinks above it".into());
                }
                let resolved = fs::canonicalize(&upto).map_err(|err| match err.kind() {
                    io::ErrorKind::NotFound if !create => Refused::Missing,
                    _ => Refused::Unsafe(format!("cannot resolve its parent: {err}")),
                })?;
                if resolved == upto {
                    return Err(format!("{} above it is not a directory", upto.display()).into());
                }
                parent = resolved.join(rest);
            }
        }
    };
    let mut opened = crate::fs::open_dir_at(&above, &name);
    if create && opened.as_ref().is_err_and(|err| err.kind() == io::ErrorKind::NotFound) {
        match crate::fs::mkdir_at(&above, &name, 0o700) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(format!("cannot create: {err}").into()),
        }
        opened = crate::fs::open_dir_at(&above, &name);
    }
    let dir = opened.map_err(|err| match err.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR) if fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) => {
            Refused::Unsafe("is a symlink".into())
        }
        Some(libc::ELOOP | libc::ENOTDIR) => Refused::Unsafe("is not a directory".into()),
        Some(libc::ENOENT) => Refused::Missing,
        _ => Refused::Unsafe(err.to_string()),
    })?;
    let meta = dir.metadata().map_err(|err| err.to_string())?;
    if meta.uid() != me {
        return Err(format!("owned by uid {}, not by this user (uid {me})", meta.uid()).into());
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!("open to group or others (mode {:o}); chmod 700 it", meta.mode() & 0o777).into());
    }
    Ok(Cache { dir, path: path.into(), me })
}

fn entry_name(key: &str) -> String {
    format!("{}.json", &key[..32])
}

fn lock_name(key: &str) -> String {
    format!("{}.lock", &key[..32])
}

fn endpoint_name(issuer: &Url) -> String {
    format!("{}.endpoint", &hex_sha256(issuer.as_str().as_bytes())[..32])
}

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

fn check(stored_at: i64, expires_at: i64, token: &str) -> String {
    hex_sha256(format!("tokenxchange cache v{VERSION}\n{stored_at}\n{expires_at}\n{token}").as_bytes())[..16]
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path for a cache directory that does not exist yet, inside a temp dir that
    /// goes when the test ends, however it ends.
    fn temp_dir(name: &str) -> (testkit::TempDir, PathBuf) {
        let temp = testkit::TempDir::new("cache");
        let dir = temp.join(name);
        (temp, dir)
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn keys_are_unambiguous_and_ignore_set_order() {
        let key_of = |audiences: &[&str]| key(&[Part::One("https://dex/token"), Part::Set(&strings(audiences))]);
        assert_eq!(key_of(&["a", "b"]), key_of(&["b", "a"]), "set order is normalised");
        assert_ne!(key_of(&["a b"]), key_of(&["a", "b"]));
        assert_ne!(key_of(&["a,b"]), key_of(&["a", "b"]));
        assert_ne!(key(&[Part::One("ab"), Part::One("c")]), key(&[Part::One("a"), Part::One("bc")]));
        assert_eq!(key_of(&[]).len(), 64);
    }

    #[test]
    fn round_trip_expiry_and_corruption() {
        let (_temp, dir) = temp_dir("round-trip");
        let cache = Cache::open(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let k = "a".repeat(64);
        let credential = Credential { token: Secret::new("tok-value"), expires_at: Some(1_000) };
        assert_eq!(cache.read(&k, 0), Err(Miss::NoEntry));
        cache.write(&k, &credential, 10);
        let path = dir.join(entry_name(&k));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let hit = cache.read(&k, 999).unwrap();
        assert_eq!((hit.age(10), hit.age(9), hit.age(i64::MIN)), (Some(0), None, None));
        assert_eq!((hit.age(999), hit.stored_at, hit.credential), (Some(989), 10, credential.clone()));
        assert_eq!(cache.read(&k, 1_000), Err(Miss::Expired(1_000)));

        let text = fs::read_to_string(&path).unwrap();
        // Change the token's value only: the key names stay, so only the check can tell.
        let changed = text.replace("\"tok-value\"", "\"tak-value\"");
        assert_ne!(changed, text);
        fs::write(&path, &changed).unwrap();
        assert_eq!(
            cache.read(&k, 0),
            Err(Miss::Unusable(format!("corrupt entry {}", entry_name(&k)))),
            "a changed token fails the check"
        );
        fs::write(&path, &text[..text.len() / 2]).unwrap();
        assert_eq!(cache.read(&k, 0).ok(), None, "a truncated entry is a miss");
        fs::write(&path, text.replace("\"version\":3", "\"version\":9")).unwrap();
        assert_eq!(cache.read(&k, 0), Err(Miss::Version(9)), "a foreign version is a miss");
        fs::write(&path, r#"{"version":2,"expires_at":1000,"token":"t","check":"x"}"#).unwrap();
        assert_eq!(
            cache.read(&k, 0),
            Err(Miss::Unusable(format!("corrupt entry {}", entry_name(&k)))),
            "an entry of the last format is a miss"
        );

        cache.write(&k, &Credential { token: Secret::new("x"), expires_at: None }, 0);
        fs::write(&path, &text).unwrap();
        assert!(cache.read(&k, 0).is_ok());
    }

    #[test]
    fn prune_removes_expired_entries_of_other_keys() {
        let (_temp, dir) = temp_dir("prune");
        let cache = Cache::open(&dir).unwrap();
        let (old, fresh, current) = ("b".repeat(64), "c".repeat(64), "d".repeat(64));
        cache.write(&old, &Credential { token: Secret::new("1"), expires_at: Some(100) }, 0);
        cache.write(&fresh, &Credential { token: Secret::new("2"), expires_at: Some(10_000) }, 0);
        cache.write(&current, &Credential { token: Secret::new("3"), expires_at: Some(10_000) }, 500);
        assert!(!dir.join(entry_name(&old)).exists());
        assert!(dir.join(entry_name(&fresh)).exists());

        // the lock of a key without an entry goes once old and free, not before
        let orphan = "e".repeat(64);
        let lock_path = dir.join(format!("{}.lock", &orphan[..32]));
        let held = cache.lock(&orphan, Instant::now()).unwrap();
        let old_time = std::time::SystemTime::now() - Duration::from_secs(3600);
        File::options().write(true).open(&lock_path).unwrap().set_modified(old_time).unwrap();
        cache.write(&current, &Credential { token: Secret::new("3"), expires_at: Some(10_000) }, 500);
        assert!(lock_path.exists(), "a held lock stays");
        drop(held);
        cache.write(&current, &Credential { token: Secret::new("3"), expires_at: Some(10_000) }, 500);
        assert!(!lock_path.exists(), "an old, free lock without an entry goes");
        let removed = clean(&dir).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(fs::read_dir(&dir).unwrap().next().is_none());
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
        let (temp, dir) = temp_dir("unsafe");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        let refused = |path: &Path| open_dir(path, true).unwrap_err().to_string();
        assert_eq!(refused(&dir), "open to group or others (mode 750); chmod 700 it");
        let link = temp.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(refused(&link), "is a symlink");
        assert!(Cache::open(&dir).is_some());
        assert_eq!(
            clean(&link).unwrap_err().to_string(),
            format!("refusing to clean {}: is a symlink", link.display())
        );
    }

    #[test]
    fn an_entry_too_large_to_read_back_is_not_written() {
        let (_temp, dir) = temp_dir("large");
        let cache = Cache::open(&dir).unwrap();
        let k = "f".repeat(64);
        let fits = "t".repeat(MAX_ENTRY as usize - 200);
        cache.write(&k, &Credential { token: Secret::new(fits.clone()), expires_at: Some(1_000) }, 0);
        assert_eq!(cache.read(&k, 0).unwrap().credential.token.expose(), fits);
        let large = "t".repeat(MAX_ENTRY as usize);
        cache.write(&k, &Credential { token: Secret::new(large), expires_at: Some(1_000) }, 0);
        assert_eq!(cache.read(&k, 0).unwrap().credential.token.expose(), fits, "the entry that fits stays");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file or oversized entry is left");
    }

    #[test]
    fn a_lock_pruned_before_it_was_taken_is_not_held() {
        let (_temp, dir) = temp_dir("lock-race");
        let cache = Cache::open(&dir).unwrap();
        let k = "a".repeat(64);
        let name = lock_name(&k);
        // A run opens the lock file; before it locks it, another run prunes it.
        let (opened, _) = cache.open_file(&name, libc::O_RDWR | libc::O_CREAT, false).unwrap();
        unlink_at(&cache.dir, &name).unwrap();
        assert!(!cache.acquire(&opened, &name).unwrap(), "the pruned file's lock excludes nobody");
        drop(opened);
        // `lock` then takes the file the name now leads to, which a third run also sees.
        let (replaced, _) = cache.open_file(&name, libc::O_RDWR | libc::O_CREAT, false).unwrap();
        unlink_at(&cache.dir, &name).unwrap();
        drop(replaced);
        let held = cache.lock(&k, Instant::now()).unwrap();
        assert!(cache.lock(&k, Instant::now()).is_none(), "a second run must wait for the first");
        drop(held);
    }

    #[test]
    fn missing_directories_are_made_inside_their_parents() {
        let (temp, _) = temp_dir("unused");
        let deep = temp.join("home/.kube/cache/tokenxchange");
        let cache = Cache::open(&deep).unwrap();
        for dir in ["home", "home/.kube", "home/.kube/cache", "home/.kube/cache/tokenxchange"] {
            assert_eq!(fs::metadata(temp.join(dir)).unwrap().mode() & 0o777, 0o700, "{dir}");
        }
        drop(cache);
        // Through a symlink above it: made in the directory the link resolves to.
        fs::create_dir(temp.join("real")).unwrap();
        std::os::unix::fs::symlink(temp.join("real"), temp.join("link")).unwrap();
        assert!(Cache::open(&temp.join("link/x/cache")).is_some());
        assert!(temp.join("real/x/cache").is_dir());
        assert_eq!(clean(&temp.join("nothing/here")).unwrap(), Vec::<PathBuf>::new());
        fs::write(temp.join("file"), "").unwrap();
        let refused = open_dir(&temp.join("file/cache"), true).unwrap_err();
        assert_eq!(refused.to_string(), format!("{} above it is not a directory", temp.join("file").display()));
        assert!(!temp.join("nothing").exists(), "clean creates nothing");
    }

    #[test]
    fn endpoints_are_remembered_per_issuer() {
        let (_temp, dir) = temp_dir("endpoint");
        let cache = Cache::open(&dir).unwrap();
        let url = |text: &str| Url::parse(text, true, "test").unwrap();
        let dex = url("https://dex");
        assert_eq!(cache.read_endpoint(&dex, false), None);
        cache.write_endpoint(&dex, &url("https://dex/token"));
        assert_eq!(cache.read_endpoint(&dex, false), Some(url("https://dex/token")));
        assert_eq!(cache.read_endpoint(&url("https://other"), false), None);
        cache.write_endpoint(&dex, &url("http://dex.example/token"));
        assert_eq!(cache.read_endpoint(&dex, false), None, "an unsafe remembered URL is ignored");
        assert_eq!(cache.read_endpoint(&dex, true), Some(url("http://dex.example/token")));

        // An entry planted under the issuer's name but naming another issuer is ignored.
        let planted = "https://evil\nhttps://evil/token\n";
        fs::write(dir.join(endpoint_name(&dex)), planted).unwrap();
        assert_eq!(cache.read_endpoint(&dex, false), None);
    }
}
