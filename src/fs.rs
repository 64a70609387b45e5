//! Files and directories opened relative to a descriptor: the checked walk down a
//! directory path, bounded reads that never block, and the atomic write (temp file,
//! fsync, rename, directory fsync) that the cache and `install` share.
//!
//! Inside a directory, everything goes through `openat`, `mkdirat`, `renameat` and
//! `unlinkat` on its checked descriptor, never through a path that could be swapped in
//! between, and nothing follows a symlink unless the caller resolved it on purpose (a
//! file the user named, like the token file, is opened once by its path and then only
//! used through that descriptor). It decides nothing about what a file means; the cache,
//! `secret`, `tls` and `install` do.

use std::ffi::{CStr, CString};
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// Reads a regular file of at most `max` bytes. The file is opened once, without
/// blocking (a FIFO opens at once), and checked on that descriptor: devices, FIFOs and
/// directories are refused before anything is read, so swapping the path for one of them
/// can neither block a run past `--timeout` nor make it read forever.
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let name = cstring(path.as_os_str().as_bytes())?;
    let file = File::from(open_at(libc::AT_FDCWD, &name, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY, 0)?);
    let meta = file.metadata()?;
    read_opened(file, &meta, max)
}

/// [`read_bounded`] for a file already opened without blocking, with its `fstat`.
pub fn read_opened(mut file: File, meta: &Metadata, max: u64) -> io::Result<Vec<u8>> {
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let too_large = || io::Error::new(io::ErrorKind::InvalidInput, format!("larger than {} KiB", max / 1024));
    if meta.len() > max {
        return Err(too_large());
    }
    // Sized from the stat plus one byte: a short read of a regular file is its end, so a
    // file read whole costs one read(2); one that grew meanwhile is read on, up to `max`.
    let mut bytes = vec![0; meta.len() as usize + 1];
    let mut filled = 0;
    loop {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
        if filled < bytes.len() {
            break;
        }
        if filled as u64 > max {
            return Err(too_large());
        }
        bytes.resize((bytes.len() * 2).min(max as usize + 1), 0);
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// `openat(2)` with close-on-exec, straight through libc (musl's `open` adds an
/// `fcntl` per file).
pub fn open_at(dir: libc::c_int, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string; the returned descriptor is owned by
    // nothing else and is closed by the `OwnedFd`.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, libc::c_uint::from(mode)) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the directory `name` inside `dir`, never following a symlink.
pub fn open_dir_at(dir: &File, name: &CStr) -> io::Result<File> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    open_at(dir.as_raw_fd(), name, flags, 0).map(File::from)
}

/// `mkdirat(2)`: creates the directory `name` inside `dir`.
pub fn mkdir_at(dir: &File, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string and the descriptor an open directory.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn rename_at(dir: &File, from: &str, to: &str) -> io::Result<()> {
    let (from, to) = (cstring(from.as_bytes())?, cstring(to.as_bytes())?);
    let fd = dir.as_raw_fd();
    // SAFETY: both names are valid NUL-terminated strings and `fd` is an open directory.
    if unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn unlink_at(dir: &File, name: &str) -> io::Result<()> {
    let name = cstring(name.as_bytes())?;
    // SAFETY: `name` is a valid NUL-terminated string and the descriptor an open directory.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `(device, inode)` of `name` inside `dir`, not following a symlink.
pub fn identity_at(dir: &File, name: &str) -> io::Result<(u64, u64)> {
    let name = cstring(name.as_bytes())?;
    // SAFETY: an all-zero `stat` is a valid value for fstatat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid string, open directory, and `stat` is writable.
    if unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut stat, libc::AT_SYMLINK_NOFOLLOW) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((stat.st_dev, stat.st_ino))
}

/// `(device, inode)` of an open file.
pub fn identity(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Writes `bytes` to `name` inside `dir` with `mode`, atomically: a temp file beside it
/// (`.<pid>.<stem>.<nanos>.tmp`, created exclusively, never through a symlink), fsync,
/// rename over `name`, then fsync of the directory so that the rename survives a crash.
/// A failure leaves `name` as it was and removes the temp file.
pub fn write_atomically(dir: &File, name: &str, bytes: &[u8], mode: libc::mode_t) -> io::Result<()> {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let stem = name.split('.').next().filter(|stem| !stem.is_empty()).unwrap_or("file");
    let temp = format!(".{}.{stem}.{nanos}.tmp", std::process::id());
    let result = (|| {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_NOCTTY;
        let mut file = File::from(open_at(dir.as_raw_fd(), &cstring(temp.as_bytes())?, flags, mode)?);
        // The umask may have taken bits away; the file gets exactly `mode`.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        pause_for_tests();
        rename_at(dir, &temp, name)?;
        dir.sync_all()
    })();
    if result.is_err() {
        let _ = unlink_at(dir, &temp);
    }
    result
}

/// How a walk down a path ended.
pub enum Walked {
    /// The last directory, open.
    Dir(File),
    /// A component is a symlink (or not a directory); `upto` is the path up to and
    /// including it, `rest` what follows. Resolve `upto` and walk again.
    Symlink { upto: PathBuf, rest: PathBuf },
    /// A component does not exist (and `create` was not asked).
    Missing,
}

/// Opens each directory of the absolute path `dirs` from the root down, each relative to
/// the last one's descriptor and never following a symlink, so the directories checked
/// are the directories used; each must belong to root or to `me`. With `create`, a
/// missing directory is made (mode 0700) with `mkdirat` in its parent's descriptor, so a
/// symlink swapped in above it cannot redirect the creation.
pub fn walk(dirs: &Path, me: u32, create: bool) -> Result<Walked, String> {
    // O_PATH: passing through a directory needs only search permission (a 0711 /home),
    // and fstat and openat work on such a descriptor. A directory made here is opened
    // readable, which mkdirat's mode grants to its owner.
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let mut dir = File::from(open_at(libc::AT_FDCWD, c"/", flags, 0).map_err(|err| format!("/: {err}"))?);
    let mut walked = PathBuf::from("/");
    check_ancestor(&dir, &walked, me)?;
    let components: Vec<Component> = dirs.components().collect();
    for (i, component) in components.iter().enumerate() {
        let step = match component {
            Component::Normal(step) => step.as_bytes(),
            Component::ParentDir => b"..",
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        };
        walked.push(component);
        let step = cstring(step).map_err(|_| "a path component holds NUL")?;
        let mut opened = open_at(dir.as_raw_fd(), &step, flags, 0);
        if create && opened.as_ref().is_err_and(|err| err.kind() == io::ErrorKind::NotFound) {
            match mkdir_at(&dir, &step, 0o700) {
                Ok(()) => verbose!("created {}", walked.display()),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(format!("cannot create {}: {err}", walked.display())),
            }
            opened = open_at(dir.as_raw_fd(), &step, flags, 0);
        }
        dir = match opened {
            Ok(fd) => File::from(fd),
            Err(err) if matches!(err.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                let rest: PathBuf = components[i + 1..].iter().collect();
                return Ok(Walked::Symlink { upto: walked, rest });
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

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::other("name holds NUL"))
}

/// Debug builds only: waits `TOKENXCHANGE_TEST_PAUSE_BEFORE_RENAME_MS` between writing a
/// temp file and renaming it, so a test can kill a run at exactly that point. The one read
/// of the environment outside `main`: the release binary has no such hook (below), and
/// threading a test-only pause through `main`, the cache and `install` would put it in
/// every build.
#[cfg(debug_assertions)]
fn pause_for_tests() {
    if let Some(ms) = std::env::var("TOKENXCHANGE_TEST_PAUSE_BEFORE_RENAME_MS").ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

#[cfg(not(debug_assertions))]
fn pause_for_tests() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_the_mode_and_leaves_no_temp_file() {
        let temp = testkit::TempDir::new("fs-write");
        let dir = File::open(temp.path()).unwrap();
        write_atomically(&dir, "x.bin", b"one", 0o755).unwrap();
        write_atomically(&dir, "x.bin", b"two", 0o600).unwrap();
        let path = temp.path().join("x.bin");
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 1);
    }

    #[test]
    fn walk_creates_missing_directories_below_the_last_one_it_opened() {
        let temp = testkit::TempDir::new("fs-walk");
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let deep = temp.path().join("a/b/c");
        assert!(matches!(walk(&deep, me, false), Ok(Walked::Missing)));
        assert!(matches!(walk(&deep, me, true), Ok(Walked::Dir(_))));
        assert_eq!(std::fs::metadata(&deep).unwrap().mode() & 0o777, 0o700);
        // A symlink on the way stops the walk, names where, and creates nothing behind it.
        let elsewhere = temp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, temp.path().join("link")).unwrap();
        match walk(&temp.path().join("link/x/y"), me, true) {
            Ok(Walked::Symlink { upto, rest }) => {
                assert_eq!((upto, rest), (temp.path().join("link"), PathBuf::from("x/y")));
            }
            _ => panic!("expected a symlink"),
        }
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }
}
