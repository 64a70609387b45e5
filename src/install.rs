//! `tokenxchange install DIR`: copies the running binary into `DIR/tokenxchange`, which
//! is what an init container runs in an image with no shell and no `cp`.
//!
//! The copy is atomic (temp file in `DIR`, fsync, rename) and idempotent; a different
//! file already there is only replaced with `--force`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

const NAME: &str = "tokenxchange";
/// A file at the target larger than this is not a tokenxchange binary.
const MAX_BINARY: u64 = 64 << 20;

/// Installs the running binary into `dir`; returns the line to print.
pub fn install(dir: &Path, force: bool) -> Result<String, Error> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(Error::Usage(format!("cannot install into {}: not a directory", dir.display()))),
        Err(err) => return Err(Error::Usage(format!("cannot install into {}: {err}", dir.display()))),
    }
    let source = running_binary()?;
    let binary = fs::read(&source)
        .map_err(|err| Error::Runtime(format!("cannot read the running binary {}: {err}", source.display())))?;
    let target = dir.join(NAME);
    // Bounded, without blocking, regular files only: a FIFO or /dev/zero planted at the
    // target cannot hang an init container.
    match crate::fs::read_bounded(&target, MAX_BINARY) {
        Ok(existing) if existing == binary => {
            ensure_executable(&target)?;
            return Ok(format!("{} is already installed (unchanged)", target.display()));
        }
        Ok(_) if !force => {
            return Err(Error::Usage(format!(
                "{} exists and differs from this binary; use --force to replace it",
                target.display()
            )));
        }
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) if force => {
            verbose!("replacing unreadable {}: {err}", target.display());
        }
        Err(err) => {
            return Err(Error::Runtime(format!("cannot read {}: {err}; use --force to replace it", target.display())));
        }
    }
    let temp = dir.join(format!(".{NAME}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o755).open(&temp)?;
        file.write_all(&binary)?;
        file.set_permissions(fs::Permissions::from_mode(0o755))?;
        file.sync_all()?;
        fs::rename(&temp, &target)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(Error::Runtime(format!("cannot install into {}: {err}", dir.display())));
    }
    Ok(format!("installed {}", target.display()))
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

fn ensure_executable(path: &Path) -> Result<(), Error> {
    let mode = fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
    if mode == 0o755 {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|err| Error::Runtime(format!("cannot make {} executable: {err}", path.display())))
}
