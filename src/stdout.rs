//! The one writer of stdout, which carries exactly one document on success and nothing
//! otherwise. It writes to descriptor 1 itself: `std::io::stdout` takes a closed
//! descriptor for a sink, and a credential that reaches nobody must not exit 0.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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

/// Writes all of `text` by `deadline`, or fails. Partial writes continue where they
/// stopped (by bytes: a cut may fall inside a character). A full stdout is waited for
/// until the deadline, then given up on: a non-blocking one in `poll`, a blocking one in
/// `write` itself, which the [`Alarm`] interrupts.
pub fn write(text: &str, deadline: Instant) -> Result<(), Error> {
    let _alarm = Alarm::at(deadline);
    let mut bytes = text.as_bytes();
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe a live, initialised buffer.
        let written = unsafe { libc::write(1, bytes.as_ptr().cast(), bytes.len()) };
        if written > 0 {
            bytes = &bytes[written as usize..];
            continue;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            _ if written == 0 => return Err(failed(io::Error::from(io::ErrorKind::WriteZero))),
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Runtime(
                        "cannot write to stdout: nobody read it within --timeout (the pipe stayed full)".into(),
                    ));
                }
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                let millis = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
                let mut ready = libc::pollfd { fd: 1, events: libc::POLLOUT, revents: 0 };
                // SAFETY: one valid pollfd; poll only writes its `revents`.
                unsafe { libc::poll(&mut ready, 1, millis) };
            }
            _ => return Err(failed(err)),
        }
    }
    Ok(())
}

fn failed(err: io::Error) -> Error {
    Error::Runtime(format!("cannot write to stdout: {err}"))
}

/// SIGALRM from the deadline on, every 100 ms until dropped, with a handler that does
/// nothing and no `SA_RESTART`: a blocking `write` or `poll` still waiting then returns
/// (EINTR, or the bytes it wrote). Repeating, so that a signal that lands just before a
/// call is not the last one. The kernel hands the process's SIGALRM to the main thread
/// first, the one writing.
struct Alarm;

impl Alarm {
    fn at(deadline: Instant) -> Alarm {
        extern "C" fn wake(_: libc::c_int) {}
        let left = deadline.saturating_duration_since(Instant::now()).max(std::time::Duration::from_millis(1));
        let timer = libc::itimerval {
            it_interval: libc::timeval { tv_sec: 0, tv_usec: 100_000 },
            it_value: libc::timeval {
                tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_usec: libc::suseconds_t::from(left.subsec_micros()),
            },
        };
        // SAFETY: a zeroed sigaction is a valid empty one; the handler is async-signal-safe
        // (it does nothing); setitimer only reads `timer`.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = wake as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut());
            libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
        }
        Alarm
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        // SAFETY: a zeroed itimerval disarms the timer; the handler stays, harmless.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &std::mem::zeroed(), std::ptr::null_mut()) };
    }
}
