//! The one writer of stdout, which carries exactly one document on success and nothing
//! otherwise. It writes to descriptor 1 itself: `std::io::stdout` takes a closed
//! descriptor for a sink, and a credential that reaches nobody must not exit 0.

use std::io;

use crate::error::Error;

/// Refuses to run when stdout was closed. Rust's runtime puts `/dev/null` on a standard
/// descriptor that is closed at start (so that a file opened later cannot take its
/// number), opened read-write; a shell's `>/dev/null` opens it write-only. So that
/// descriptor, read-write on `/dev/null`, means nobody would receive the credential.
pub fn check() -> Result<(), Error> {
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(1, libc::F_GETFL) };
    let closed = flags < 0 || (flags & libc::O_ACCMODE == libc::O_RDWR && is_dev_null(1));
    if closed {
        return Err(failed(io::Error::from_raw_os_error(libc::EBADF)));
    }
    Ok(())
}

fn is_dev_null(fd: libc::c_int) -> bool {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `stat` into the buffer when it returns 0.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstat returned 0, so the buffer is initialised.
    let stat = unsafe { stat.assume_init() };
    stat.st_mode & libc::S_IFMT == libc::S_IFCHR && stat.st_rdev == libc::makedev(1, 3)
}

/// Writes all of `text`, or fails.
pub fn write(mut text: &str) -> Result<(), Error> {
    while !text.is_empty() {
        // SAFETY: the pointer and length describe a live, initialised buffer.
        let written = unsafe { libc::write(1, text.as_ptr().cast(), text.len()) };
        match written {
            n if n > 0 => text = &text[n as usize..],
            0 => return Err(failed(io::Error::from(io::ErrorKind::WriteZero))),
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return Err(failed(io::Error::last_os_error())),
        }
    }
    Ok(())
}

fn failed(err: io::Error) -> Error {
    Error::Runtime(format!("cannot write to stdout: {err}"))
}
