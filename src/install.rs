//! `tokenxchange install DIR`: copies the running binary into `DIR/tokenxchange`, which
//! is what an init container runs in an image with no shell and no `cp`.
//!
//! The copy is atomic (`fs::write_atomically`: temp file in `DIR`, fsync, rename,
//! directory fsync) and idempotent; a different file already there, or a symlink, is only
//! replaced with `--force`, and then the link itself is replaced, never what it points to.
//! An identical file is made executable in place, unless it is a hard link (its other
//! names would change mode too): then the name is replaced.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::fs::{open_at, read_opened, write_atomically};
use crate::redact;

const NAME: &str = "tokenxchange";
/// A file at the target larger than this is not a tokenxchange binary.
const MAX_BINARY: u64 = 64 << 20;

/// Installs the running binary into `dir`; returns the line to print.
pub fn install(dir: &Path, force: bool) -> Result<String, Error> {
    let dir_file = match File::open(dir) {
        Ok(file) if file.metadata().is_ok_and(|meta| meta.is_dir()) => file,
        Ok(_) => return Err(Error::Usage(format!("cannot install into {}: not a directory", dir.display()))),
        Err(err) => {
            return Err(crate::error::exhausted(&err)
                .unwrap_or_else(|| Error::Usage(format!("cannot install into {}: {err}", dir.display()))));
        }
    };
    let runtime = |what: String, err: io::Error| {
        crate::error::exhausted(&err).unwrap_or_else(|| Error::Runtime(format!("{what}: {err}")))
    };
    let source = running_binary()?;
    let binary = fs::read(&source)
        .map_err(|err| runtime(format!("cannot read the running binary {}", source.display()), err))?;
    let target = dir.join(NAME);
    // Opened in `dir` without following a symlink, bounded, without blocking, regular
    // files only: a FIFO or /dev/zero planted at the target cannot hang an init
    // container, and a symlink's target is never read, changed or replaced.
    let name = CString::new(NAME).expect("no NUL in a constant");
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    let existing = open_at(dir_file.as_raw_fd(), &name, flags, 0).map(File::from).and_then(|file| {
        let meta = file.metadata()?;
        let bytes = read_opened(file.try_clone()?, &meta, MAX_BINARY)?;
        Ok((file, bytes))
    });
    if let Some(exhausted) = existing.as_ref().err().and_then(crate::error::exhausted) {
        return Err(exhausted);
    }
    match existing {
        Ok((file, existing)) if existing == binary => {
            let meta = file.metadata().map_err(|err| runtime(format!("cannot read {}", target.display()), err))?;
            // A hard link shares its mode with its other names: made executable in place,
            // a file elsewhere would change too, so such a name is replaced instead.
            if meta.permissions().mode() & 0o777 == 0o755 || meta.nlink() == 1 {
                ensure_executable(&file, &target)?;
                return Ok(format!("{} is already installed (unchanged)", redact::path(&target)));
            }
            verbose!("replacing {}: a hard link, not 0755", target.display());
        }
        Ok(_) if !force => {
            return Err(Error::Usage(format!(
                "{} exists and differs from this binary; use --force to replace it",
                target.display()
            )));
        }
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) && !force => {
            return Err(Error::Usage(format!(
                "{} is a symlink; use --force to replace the link itself (what it points to is never touched)",
                target.display()
            )));
        }
        Err(err) if force => {
            verbose!("replacing {}: {err}", target.display());
        }
        Err(err) => {
            return Err(Error::Runtime(format!("cannot read {}: {err}; use --force to replace it", target.display())));
        }
    }
    write_atomically(&dir_file, NAME, &binary, 0o755)
        .map_err(|err| runtime(format!("cannot install into {}", dir.display()), err))?;
    Ok(format!("installed {}", redact::path(&target)))
}

/// `/proc/self/exe`, else `argv[0]` (no `/proc` in some chroots).
fn running_binary() -> Result<PathBuf, Error> {
    if let Ok(path) = std::env::current_exe()
        && path.is_file()
    {
        return Ok(path);
    }
    std::env::args_os().next().map(PathBuf::from).filter(|path| path.is_file()).ok_or_else(|| {
        Error::Runtime("cannot find the running binary (no /proc/self/exe, argv[0] is not a path)".into())
    })
}

/// Mode 0755 on the installed file, through its descriptor (never a path a symlink could
/// redirect).
fn ensure_executable(file: &File, path: &Path) -> Result<(), Error> {
    let mode = file.metadata().map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
    if mode == 0o755 {
        return Ok(());
    }
    file.set_permissions(fs::Permissions::from_mode(0o755))
        .map_err(|err| Error::Runtime(format!("cannot make {} executable: {err}", path.display())))
}
