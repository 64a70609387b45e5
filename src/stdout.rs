//! The one writer of stdout, which carries exactly one document on success and nothing
//! otherwise. It writes to descriptor 1 itself: `std::io::stdout` takes a closed
//! descriptor for a sink, and a credential that reaches nobody must not exit 0.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;

/// Whether descriptor 1 was closed when the process started. Rust's runtime puts
/// `/dev/null` on a closed standard descriptor before `main` (so that a file opened later
/// cannot take its number), which would swallow the credential; so this is recorded
/// earlier, by the C runtime's start-up (`.init_array`), before Rust's.
static CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

#[used]
#[unsafe(link_section = ".init_array")]
static RECORD_AT_START: extern "C" fn() = record_at_start;

extern "C" fn record_at_start() {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } < 0 {
        CLOSED_AT_START.store(true, Ordering::Relaxed);
    }
}

/// Refuses to run when stdout was closed at start: nobody would receive the credential.
pub fn check() -> Result<(), Error> {
    if CLOSED_AT_START.load(Ordering::Relaxed) {
        return Err(failed(io::Error::from_raw_os_error(libc::EBADF)));
    }
    Ok(())
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
