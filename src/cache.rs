//! The on-disk credential cache: one entry per key, written atomically, served while
//! fresh, and a per-key lock so that a burst of runs costs one exchange (single flight).
//!
//! The cache trusts nothing it did not make. Its directory is opened once, without
//! following symlinks, and used only when this user owns it, nobody else may enter it,
//! and every directory above it (symlinks resolved) belongs to root or to this user.
//! Every file in it is then opened, renamed and removed relative to that directory's
//! descriptor, without following symlinks and without blocking, and used only when it is
//! a regular file of this user. Swapping a path component after the checks changes
//! nothing.
//!
//! The cache can never make a run fail: every problem here (an unsafe directory, a
//! missing, corrupt or foreign entry, a FIFO where a file should be, a full disk, a lock
//! that cannot be had) is said with `-v` and the run carries on without it.

use std::ffi::CString;
use std::fs::{self, DirBuilder, File, Metadata, TryLockError};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::error::Error;
use crate::exec_credential::Credential;
use crate::time::rfc3339;
use crate::token::{Secret, hex_sha256, open_at, read_opened};
use crate::url::Url;

const VERSION: u32 = 2;
/// A lock without an entry, untouched this long and held by nobody, is removed.
const STALE_LOCK: Duration = Duration::from_secs(600);
/// Entries larger than this are not ours.
const MAX_ENTRY: u64 = 64 * 1024;

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
    expires_at: i64,
    token: String,
    check: String,
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

    /// The entry for `key` if it is intact and not expired at `now`; else why not.
    pub fn read(&self, key: &str, now: i64) -> Result<Credential, String> {
        let name = entry_name(key);
        let (file, meta) = match self.open_file(&name, libc::O_RDONLY, false) {
            Ok(opened) => opened,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err("no entry".into()),
            Err(err) => return Err(format!("cannot read {name}: {err}")),
        };
        let text = read_opened(file, &meta, MAX_ENTRY)
            .and_then(|bytes| String::from_utf8(bytes).map_err(|_| io::Error::other("not UTF-8")))
            .map_err(|err| format!("cannot read {name}: {err}"))?;
        let entry = match miniserde::json::from_str::<Entry>(&text) {
            Ok(entry) if entry.version != VERSION => return Err(format!("entry of format version {}", entry.version)),
            Ok(entry) if entry.check == check(entry.expires_at, &entry.token) => entry,
            _ => return Err(format!("corrupt entry {name}")),
        };
        if entry.expires_at <= now {
            return Err(format!("entry expired at {}", rfc3339(entry.expires_at)));
        }
        Ok(Credential { token: Secret::new(entry.token), expires_at: Some(entry.expires_at) })
    }

    /// Takes the per-key lock, waiting at most until `until`. `None` when it cannot be
    /// had; the caller then exchanges without it. The lock is released when the file drops.
    pub fn lock(&self, key: &str, until: Instant) -> Option<File> {
        let name = format!("{}.lock", &key[..32]);
        let file = match self.open_file(&name, libc::O_RDWR | libc::O_CREAT, false) {
            Ok((file, _)) => file,
            Err(err) => {
                verbose!("cache lock {}: cannot use {name}: {err}", short(key));
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

    /// Stores `credential` for `key` (temp file, fsync, rename), then prunes expired entries.
    pub fn write(&self, key: &str, credential: &Credential, now: i64) {
        let Some(expires_at) = credential.expires_at.filter(|at| *at > now) else {
            verbose!("cache {}: not stored, the credential's expiry is unknown or past", short(key));
            return;
        };
        let token = credential.token.expose().to_string();
        let entry = Entry { version: VERSION, expires_at, check: check(expires_at, &token), token };
        match self.write_atomically(&entry_name(key), miniserde::json::to_string(&entry).as_bytes()) {
            Ok(()) => verbose!("cache {}: stored until {}", short(key), rfc3339(expires_at)),
            Err(err) => verbose!("cache {}: not stored: {err}", short(key)),
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
        if let Err(err) = self.write_atomically(&endpoint_name(issuer), text.as_bytes()) {
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

    fn write_atomically(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let stem = name.split('.').next().unwrap_or("entry");
        let temp = format!(".{}.{stem}.{nanos}.tmp", std::process::id());
        let result = (|| {
            let (mut file, _) = self.open_file(&temp, libc::O_WRONLY | libc::O_CREAT, true)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            pause_for_tests();
            renameat(&self.dir, &temp, name)?;
            self.dir.sync_all()
        })();
        if result.is_err() {
            let _ = unlinkat(&self.dir, &temp);
        }
        result
    }

    /// Removes expired or unreadable entries (other than `keep`), stale temp files, and
    /// the locks of keys that have no entry any more (each rotation of the subject token
    /// makes new keys) once nobody holds them.
    fn prune(&self, keep: &str, now: i64) {
        let keep = entry_name(keep);
        let names = self.own_files();
        let older_than = |name: &str, age: Duration| {
            self.open_file(name, libc::O_RDONLY, false)
                .and_then(|(_, meta)| meta.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|elapsed| elapsed > age))
        };
        for name in &names {
            let stale = if name.ends_with(".tmp") {
                older_than(name, Duration::from_secs(60))
            } else if name.ends_with(".json") && *name != keep {
                self.read(&name[..32], now).is_err_and(|why| why != "no entry")
            } else if name.ends_with(".lock") && !names.contains(&format!("{}.json", &name[..32])) {
                older_than(name, STALE_LOCK)
                    && self.open_file(name, libc::O_RDWR, false).is_ok_and(|(file, _)| file.try_lock().is_ok())
            } else {
                false
            };
            if stale && unlinkat(&self.dir, name).is_ok() {
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
        Err(why) if why == MISSING => return Ok(Vec::new()),
        Err(why) => return Err(Error::Runtime(format!("refusing to clean {}: {why}", dir.display()))),
    };
    let mut removed = Vec::new();
    for name in cache.own_files() {
        let owned = cache.open_file(&name, libc::O_RDONLY, false).is_ok();
        if owned {
            unlinkat(&cache.dir, &name)
                .map_err(|err| Error::Runtime(format!("cannot remove {}: {err}", dir.join(&name).display())))?;
            removed.push(dir.join(&name));
        }
    }
    Ok(removed)
}

const MISSING: &str = "does not exist";

/// Opens the cache directory `path` (creating it when `create`), checking it and every
/// directory above it as the module documentation says.
fn open_dir(path: &Path, create: bool) -> Result<Cache, String> {
    let name = match path.components().next_back() {
        Some(Component::Normal(name)) => CString::new(name.as_bytes()).map_err(|_| "the name holds NUL")?,
        _ => return Err("is not a plain directory name".into()),
    };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let parent = if parent.is_absolute() {
        parent.to_path_buf()
    } else {
        std::env::current_dir().map_err(|err| format!("cannot resolve its parent: {err}"))?.join(parent)
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let make =
        || DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(|err| format!("cannot create: {err}"));
    // The path as written; when a directory above is a symlink, the path it resolves to.
    let mut walked = walk(&parent, me)?;
    if matches!(walked, Walked::Missing) {
        if !create {
            return Err(MISSING.into());
        }
        make()?;
        walked = walk(&parent, me)?;
    }
    let above = match walked {
        Walked::Dir(dir) => dir,
        Walked::Symlink | Walked::Missing => {
            let resolved = match fs::canonicalize(&parent) {
                Err(err) if err.kind() == io::ErrorKind::NotFound && create => {
                    make()?;
                    fs::canonicalize(&parent)
                }
                other => other,
            };
            let resolved = resolved.map_err(|err| format!("cannot resolve its parent: {err}"))?;
            match walk(&resolved, me)? {
                Walked::Dir(dir) => dir,
                _ => return Err("a directory above it changed while it was checked".into()),
            }
        }
    };
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let opened = match open_at(above.as_raw_fd(), &name, flags, 0) {
        Err(err) if err.kind() == io::ErrorKind::NotFound && create => {
            make()?;
            open_at(above.as_raw_fd(), &name, flags, 0)
        }
        other => other,
    };
    let dir = File::from(opened.map_err(|err| match err.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR) if fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) => {
            "is a symlink".to_string()
        }
        Some(libc::ELOOP | libc::ENOTDIR) => "is not a directory".to_string(),
        Some(libc::ENOENT) => MISSING.to_string(),
        _ => err.to_string(),
    })?);
    let meta = dir.metadata().map_err(|err| err.to_string())?;
    if meta.uid() != me {
        return Err(format!("owned by uid {}, not by this user (uid {me})", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!("open to group or others (mode {:o}); chmod 700 it", meta.mode() & 0o777));
    }
    Ok(Cache { dir, path: path.into(), me })
}

/// How a walk down a path ended.
enum Walked {
    /// The last directory, open.
    Dir(File),
    /// A component is a symlink (or not a directory): resolve the path and walk again.
    Symlink,
    /// A component does not exist.
    Missing,
}

/// Opens each directory of the absolute path `dirs` from the root down, each relative to
/// the last one's descriptor and never following a symlink, so the directories checked
/// are the directories used; each must belong to root or to `me`.
fn walk(dirs: &Path, me: u32) -> Result<Walked, String> {
    // O_PATH: passing through a directory needs only search permission (a 0711 /home),
    // and fstat and openat work on such a descriptor.
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let mut dir = File::from(open_at(libc::AT_FDCWD, c"/", flags, 0).map_err(|err| format!("/: {err}"))?);
    let mut walked = PathBuf::from("/");
    check_ancestor(&dir, &walked, me)?;
    for component in dirs.components() {
        let step = match component {
            Component::Normal(step) => step.as_bytes(),
            Component::ParentDir => b"..",
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        };
        walked.push(component);
        let step = CString::new(step).map_err(|_| "a path component holds NUL")?;
        dir = match open_at(dir.as_raw_fd(), &step, flags, 0) {
            Ok(fd) => File::from(fd),
            Err(err) if matches!(err.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                return Ok(Walked::Symlink);
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Walked::Missing),
            Err(err) => return Err(format!("{}: {err}", walked.display())),
        };
        check_ancestor(&dir, &walked, me)?;
    }
    Ok(Walked::Dir(dir))
}

fn check_ancestor(dir: &File, path: &Path, me: u32) -> Result<(), String> {
    let uid = dir.metadata().map_err(|err| format!("{}: {err}", path.display()))?.uid();
    if uid != 0 && uid != me {
        return Err(format!("{} above it is owned by uid {uid}, neither root nor this user", path.display()));
    }
    Ok(())
}

fn renameat(dir: &File, from: &str, to: &str) -> io::Result<()> {
    let from = CString::new(from).map_err(|_| io::Error::other("name holds NUL"))?;
    let to = CString::new(to).map_err(|_| io::Error::other("name holds NUL"))?;
    let fd = dir.as_raw_fd();
    // SAFETY: both names are valid NUL-terminated strings and `fd` is an open directory.
    if unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn unlinkat(dir: &File, name: &str) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::other("name holds NUL"))?;
    // SAFETY: `name` is a valid NUL-terminated string and the descriptor an open directory.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn entry_name(key: &str) -> String {
    format!("{}.json", &key[..32])
}

fn endpoint_name(issuer: &Url) -> String {
    format!("{}.endpoint", &hex_sha256(issuer.as_str().as_bytes())[..32])
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

#[cfg(test)]
mod tests {
    use super::*;

    use testkit::TempDir;

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
        let temp = TempDir::new("cache-round-trip");
        let dir = temp.join("cache");
        let cache = Cache::open(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let k = "a".repeat(64);
        let credential = Credential { token: Secret::new("tok-value"), expires_at: Some(1_000) };
        assert_eq!(cache.read(&k, 0).ok(), None);
        cache.write(&k, &credential, 0);
        let path = dir.join(entry_name(&k));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(cache.read(&k, 999).ok(), Some(credential.clone()));
        assert_eq!(cache.read(&k, 1_000).ok(), None);

        let text = fs::read_to_string(&path).unwrap();
        // Change the token's value only: the key names stay, so only the check can tell.
        let changed = text.replace("\"tok-value\"", "\"tak-value\"");
        assert_ne!(changed, text);
        fs::write(&path, &changed).unwrap();
        assert_eq!(
            cache.read(&k, 0),
            Err(format!("corrupt entry {}", entry_name(&k))),
            "a changed token fails the check"
        );
        fs::write(&path, &text[..text.len() / 2]).unwrap();
        assert_eq!(cache.read(&k, 0).ok(), None, "a truncated entry is a miss");
        fs::write(&path, text.replace("\"version\":2", "\"version\":9")).unwrap();
        assert_eq!(cache.read(&k, 0), Err("entry of format version 9".into()), "a foreign version is a miss");

        cache.write(&k, &Credential { token: Secret::new("x"), expires_at: None }, 0);
        fs::write(&path, &text).unwrap();
        assert!(cache.read(&k, 0).is_ok());
    }

    #[test]
    fn prune_removes_expired_entries_of_other_keys() {
        let temp = TempDir::new("cache-prune");
        let dir = temp.join("cache");
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
        let temp = TempDir::new("cache-unsafe");
        let dir = temp.join("cache");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        assert_eq!(open_dir(&dir, true).unwrap_err(), "open to group or others (mode 750); chmod 700 it");
        let link = temp.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(open_dir(&link, true).unwrap_err(), "is a symlink");
        assert!(Cache::open(&dir).is_some());
        assert_eq!(
            clean(&link).unwrap_err().to_string(),
            format!("refusing to clean {}: is a symlink", link.display())
        );
    }

    #[test]
    fn endpoints_are_remembered_per_issuer() {
        let temp = TempDir::new("cache-endpoint");
        let dir = temp.join("cache");
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
