//! The attacks of issue 16, one test each: plain http to a name that resolves off
//! loopback, a stdout nobody reads, memory and descriptors running out, an oversized
//! token, absurd times in `inspect`, a symlink at the install target, paths that move the
//! terminal, and a cached credential Dex no longer accepts.

use std::io::Read;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use testkit::{Fault, SigningKey};

use crate::util::*;

/// Whether `tool` runs; when it does not, says so, and fails under CI (which has it).
fn have(tool: &str, test: &str) -> bool {
    let found =
        Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{test}: {tool} is missing, and CI must run this test");
        eprintln!("{test}: {tool} not found; not run here");
    }
    found
}

/// A test-only address off loopback (TEST-NET-1), which exists only inside the network
/// namespace the test makes.
const ELSEWHERE: &str = "192.0.2.10";
const NAMESPACE_TEST: &str = "hostile::plain_http_goes_only_to_loopback_addresses";

/// §1: `/etc/hosts` maps `localhost` to an address off loopback, in a private mount and
/// network namespace; a listener there must see no connection, and the run must refuse,
/// naming the address. The test binary runs itself inside the namespace for that part.
#[test]
fn plain_http_goes_only_to_loopback_addresses() {
    if std::env::var_os("TOKENXCHANGE_TEST_IN_NAMESPACE").is_some() {
        return inside_the_namespace();
    }
    if !(have("unshare", NAMESPACE_TEST) && have("ip", NAMESPACE_TEST)) {
        return;
    }
    let dir = TempDir::new("hosts");
    let hosts = dir.write("hosts", format!("{ELSEWHERE} localhost\n"));
    let script = format!(
        r#"ip link set lo up && ip addr add {ELSEWHERE}/32 dev lo && mount --bind "$HOSTS" /etc/hosts && exec "$@""#
    );
    let output = Command::new("unshare")
        .args(["--net", "--mount", "--", "sh", "-c", &script, "sh"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", NAMESPACE_TEST, "--nocapture", "--test-threads=1"])
        .env("TOKENXCHANGE_TEST_IN_NAMESPACE", "1")
        .env("HOSTS", &hosts)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "inside the namespace:\n{stdout}\n{stderr}");
    assert!(stdout.contains("checked inside the namespace"), "the test ran inside:\n{stdout}\n{stderr}");
}

fn inside_the_namespace() {
    let listener = TcpListener::bind((ELSEWHERE, 0)).expect("the namespace has the address");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let env = Env::new();
    let mut cmd = env.bare();
    cmd.arg(format!("--oidc-endpoint=http://localhost:{port}/dex/token"))
        .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--no-cache", "--timeout", "3s"])
        .arg("--token-file")
        .arg(&env.token_file);
    let run = cmd.run();
    run.failure(2, &format!("localhost resolves to {ELSEWHERE}, which is not a loopback address"), &env.secrets());
    let seen = listener.accept();
    assert!(
        seen.as_ref().is_err_and(|err| err.kind() == std::io::ErrorKind::WouldBlock),
        "the listener off loopback saw a connection\n{run}"
    );
    // The same name mapped to loopback still works for plain http (no server: refused).
    let run = env
        .bare()
        .arg("--oidc-endpoint=http://127.0.0.1:9/dex/token")
        .args(["--client-id", CLIENT_ID, "--no-cache", "--retries", "0"])
        .arg("--token-file")
        .arg(&env.token_file)
        .run();
    run.failure(5, "connection refused", &env.secrets());
    println!("checked inside the namespace");
}

/// §2: stdout is a non-blocking pipe that is full and never read; the run gives up when
/// `--timeout` is used up, with one line. The run is a cache hit, so the credential is
/// ready long before the timeout however loaded the machine is.
#[test]
fn a_stdout_nobody_reads_is_given_up_within_the_timeout() {
    a_full_stdout_is_given_up(true);
}

/// §2 for a blocking pipe (the usual kind): write(2) there does not return while the
/// pipe is full, so the run must interrupt it when `--timeout` is used up.
#[test]
fn a_full_blocking_stdout_is_given_up_within_the_timeout() {
    a_full_stdout_is_given_up(false);
}

fn a_full_stdout_is_given_up(nonblocking: bool) {
    let env = Env::new();
    env.cached().run().success();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) returns.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor this test owns.
    unsafe {
        libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096);
        libc::fcntl(fds[1], libc::F_SETFL, libc::fcntl(fds[1], libc::F_GETFL) | libc::O_NONBLOCK);
    }
    // Fill it.
    // SAFETY: writes from a live buffer to the pipe this test owns.
    while unsafe { libc::write(fds[1], [b'x'; 512].as_ptr().cast(), 512) } > 0 {}
    if !nonblocking {
        // SAFETY: fcntl on a descriptor this test owns.
        unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::fcntl(fds[1], libc::F_GETFL) & !libc::O_NONBLOCK) };
    }
    let mut cmd = env.cached();
    cmd.args(["--timeout", "3s"]);
    let started = Instant::now();
    let mut child = cmd.command().stdout(Stdio::from(write_end)).stderr(Stdio::piped()).spawn().unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("still writing to a full stdout after 30 s with --timeout 3s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    drop(read_end);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "tokenxchange: error: cannot write to stdout: nobody read it within --timeout (the pipe stayed full)\n"
    );
    assert!(started.elapsed() < Duration::from_secs(3 + 15), "gave up within the timeout and slack");
    assert_eq!(env.dex.token_requests(), 1, "the run was a cache hit");
}

/// Runs `cmd` with stderr a pipe nobody reads any more (its read end closed): writing
/// there fails with EPIPE (SIGPIPE is ignored by Rust's runtime).
fn with_a_closed_stderr(cmd: &Cmd) -> (Option<i32>, Option<i32>, String) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) returns.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read_end);
    let output = cmd.command().stdout(Stdio::piped()).stderr(Stdio::from(write_end)).output().unwrap();
    (output.status.code(), output.status.signal(), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A stderr nobody reads does not change the outcome: the exit code stays the documented
/// one (Rust's `eprintln!` panics on EPIPE: exit 101, or SIGABRT in the release build),
/// and a credential is still printed after a warning or a `-v` line.
#[test]
fn a_stderr_nobody_reads_changes_no_exit_code() {
    let env = Env::new();
    let mut bogus = env.bare();
    bogus.arg("--no-such-flag");
    assert_eq!(with_a_closed_stderr(&bogus), (Some(2), None, String::new()));
    let mut verbose = env.cached();
    verbose.arg("-v");
    let (code, signal, stdout) = with_a_closed_stderr(&verbose);
    assert_eq!((code, signal), (Some(0), None));
    Credential::parse(&stdout).unwrap();
    assert_eq!(env.dex.token_requests(), 1);
}

/// Runs `cmd` under an address-space limit of `bytes`.
fn limited(cmd: &Cmd, resource: libc::__rlimit_resource_t, limit: u64) -> Run {
    let mut command = cmd.command();
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(move || {
            let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(resource, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap();
    let signal = output.status.signal();
    let mut run = Run::from_output(format!("{} under limit {limit}", cmd.describe()), output, Duration::ZERO);
    if let Some(signal) = signal {
        run.stderr.push_str(&format!("[killed by signal {signal}]"));
    }
    run
}

/// The smallest address-space limit, in whole MiB, under which `--version` runs: the
/// floor of the memory sweeps below.
fn version_floor(env: &Env) -> u64 {
    let mib = 1u64 << 20;
    let version = |limit: u64| limited(Cmd::new(env.dir.join("home")).arg("--version"), libc::RLIMIT_AS, limit);
    (1..512).map(|n| n * mib).find(|limit| version(*limit).code == Some(0)).expect("--version runs")
}

/// §3: under every address-space limit from what `--version` needs up, a run that gets a
/// large answer ends either with its result or with the one out-of-memory line: never
/// SIGABRT, never "cannot reach".
#[test]
fn running_out_of_memory_is_one_line_and_exit_1() {
    let env = Env::new();
    let mib = 1u64 << 20;
    let floor = version_floor(&env);
    // An 800 KB answer: read whole, then refused as too large for a credential.
    let token = format!("eyJhbGciOiJub25lIn0.{}.c2ln", URL_SAFE_NO_PAD.encode("x".repeat(600_000)));
    let body = format!(r#"{{"access_token":"{token}","issued_token_type":"{ID_TOKEN}","token_type":"bearer"}}"#);
    let (mut out_of_memory, mut answered) = (0, 0);
    for step in 0..64 {
        env.dex.push_fault(Fault::status(200, "application/json", &body));
        let mut cmd = env.cmd();
        cmd.args(["--retries", "0"]);
        let run = limited(&cmd, libc::RLIMIT_AS, floor + step * mib);
        if run.stderr.contains("memory ran out") {
            run.failure(1, "memory ran out (raise the container's memory limit)", &env.secrets());
            out_of_memory += 1;
        } else {
            run.failure(1, "KiB is larger than a credential may be (63 KiB; not shown)", &env.secrets());
            answered += 1;
        }
    }
    assert!(out_of_memory > 0 && answered > 0, "{out_of_memory} out of memory, {answered} answered");
}

/// §3: a host name is looked up on a thread of its own (so that `--timeout` bounds the
/// lookup); under every address-space limit, a thread that cannot start is one line and
/// exit 1, never a panic (exit 101, or SIGABRT in the release build).
#[test]
fn a_lookup_thread_that_cannot_start_is_one_line_and_exit_1() {
    let env = Env::new();
    let mib = 1u64 << 20;
    let floor = version_floor(&env);
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = env.bare();
    cmd.arg(format!("--oidc-endpoint=http://localhost:{port}/dex/token"))
        .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--no-cache", "--retries", "0"])
        .arg("--token-file")
        .arg(&env.token_file);
    let (mut ran_out, mut refused) = (0, 0);
    for step in 0..32 {
        let run = limited(&cmd, libc::RLIMIT_AS, floor + step * mib);
        if run.code == Some(5) {
            run.failure(5, "connection refused", &env.secrets());
            refused += 1;
        } else {
            run.failure(1, "ran out", &env.secrets());
            ran_out += 1;
        }
    }
    assert!(ran_out > 0 && refused > 0, "{ran_out} ran out, {refused} refused");
}

/// An error page of 1 MiB (the most that is read) is shown as a short excerpt; blanking
/// secrets in it is done on what can be shown plus room for a secret's longest form, not
/// on the whole page (which took some 60 MB and a quarter of a second): the run refuses
/// with the page's start under a limit of 16 MiB above what `--version` needs.
#[test]
fn a_huge_error_page_is_blanked_in_little_memory() {
    let env = Env::new();
    let mib = 1u64 << 20;
    let floor = version_floor(&env);
    let page: String = (0..(1 << 20)).map(|i| char::from(b"0123456789abcdef"[(i * 7 + i / 16) % 16])).collect();
    env.dex.push_fault(Fault::status(400, "text/plain", &page));
    let mut cmd = env.cmd();
    cmd.args(["--retries", "0"]);
    let run = limited(&cmd, libc::RLIMIT_AS, floor + 16 * mib);
    run.failure(4, &format!("answered HTTP 400 without an OAuth error: {}…", &page[..120]), &env.secrets());
}

/// §7: out of file descriptors is a failure of the run (exit 1), not of a file: under
/// every descriptor limit, a run either succeeds or says so in one line.
#[test]
fn running_out_of_file_descriptors_is_exit_1() {
    let env = Env::new();
    let mut out_of_descriptors = 0;
    for limit in 3..24 {
        let run = limited(&env.cached(), libc::RLIMIT_NOFILE, limit);
        if run.code == Some(127) && run.stderr.contains("error while loading shared libraries") {
            continue; // the dynamic loader of a debug build needs a descriptor before main
        }
        if run.code == Some(0) {
            continue;
        }
        run.failure(1, "ran out of file descriptors: Too many open files (os error 24)", &env.secrets());
        out_of_descriptors += 1;
    }
    assert!(out_of_descriptors > 0, "some limit must run out");
}

/// §4: a token too large for a cache entry is refused, not printed, cached or re-fetched
/// on every run; one just below the bound is cached and served.
#[test]
fn an_oversized_token_is_refused_and_a_large_one_cached() {
    let env = Env::new();
    let jwt = |pad: usize| {
        let claims = format!(r#"{{"exp":{},"pad":"{}"}}"#, now() + 3600, "p".repeat(pad));
        format!("eyJhbGciOiJub25lIn0.{}.c2ln", URL_SAFE_NO_PAD.encode(claims))
    };
    let answer = |token: &str| {
        Fault::status(
            200,
            "application/json",
            &format!(r#"{{"access_token":"{token}","issued_token_type":"{ID_TOKEN}"}}"#),
        )
    };
    env.dex.push_fault(answer(&jwt(600_000)));
    let run = env.cached().args(["--retries", "0"]).run();
    run.failure(1, "KiB is larger than a credential may be (63 KiB; not shown)", &env.secrets());

    let large = jwt(45_000);
    env.dex.push_fault(answer(&large));
    assert_eq!(env.cached().run().success().token, large);
    assert_eq!(env.cached().args(["--cache-max-age", "24h"]).run().success().token, large, "served from the cache");
    assert_eq!(env.dex.token_requests(), 2);
}

/// §5: absurd times in `inspect` are said to be absurd, without overflow (a debug build
/// would panic).
#[test]
fn inspect_reports_absurd_times_as_absurd() {
    let env = Env::new();
    let subject = SigningKey::source_cluster().sign(&format!(r#"{{"iss":"x","sub":"s","exp":{}}}"#, i64::MIN));
    std::fs::write(&env.token_file, subject).unwrap();
    let mut date_far = Fault::status(
        200,
        "application/json",
        &format!(
            r#"{{"access_token":"{}","issued_token_type":"{ID_TOKEN}"}}"#,
            SigningKey::dex().sign(r#"{"name":"n"}"#)
        ),
    );
    if let Fault::Status { headers, .. } = &mut date_far {
        headers.push(("Date".into(), "Sun, 06 Nov 9999 08:49:37 GMT".into()));
    }
    env.dex.push_fault(date_far);
    let mut cmd = env.cmd();
    cmd.arg("inspect");
    let run = cmd.run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("expires_in: absurd (not a plausible time)"), "{run}");
    assert!(run.stdout.contains(&format!("the subject token's exp ({}) is absurd", i64::MIN)), "{run}");
    assert!(run.stdout.contains("Date header (9999-11-06T08:49:37Z) is absurd"), "{run}");
    assert!(!run.stdout.contains("clock is"), "{run}");

    // A year beyond every format is no date at all: no skew, no panic.
    let mut date_huge = Fault::status(
        200,
        "application/json",
        &format!(
            r#"{{"access_token":"{}","issued_token_type":"{ID_TOKEN}"}}"#,
            SigningKey::dex().sign(r#"{"name":"n"}"#)
        ),
    );
    if let Fault::Status { headers, .. } = &mut date_huge {
        headers.push(("Date".into(), format!("Sun, 06 Nov {} 08:49:37 GMT", i64::MAX)));
    }
    env.dex.push_fault(date_huge);
    let run = cmd.run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!run.stdout.contains("clock is") && !run.stdout.contains("Date header"), "{run}");
}

/// §8: Dex's keys are replaced; the next run after the maximum age gets a token signed by
/// the new key. Then Dex stops: a run past the maximum age still gets the cached,
/// unexpired token (exit 0, said with -v), while a refusal is never masked.
#[test]
fn a_rejected_credential_heals_after_the_maximum_age_and_outlives_an_outage() {
    let env = Env::new();
    let first = env.cached().run().success();
    env.dex.rotate_signing_key();
    let within_max_age = env.cached().args(["--cache-max-age", "24h"]).run().success();
    assert_eq!(within_max_age.token, first.token, "younger than the maximum age: served");
    let past_max_age = || {
        let mut cmd = env.cached();
        cmd.args(["--cache-max-age", "0s", "--retries", "0"]);
        cmd
    };
    let healed = past_max_age().run().success();
    assert_ne!(healed.token, first.token);
    env.dex.signing_key().verify(&healed.token).expect("signed by the new key");
    assert!(SigningKey::dex().verify(&healed.token).is_err());
    assert_eq!(env.dex.token_requests(), 2);

    env.dex.push_fault(Fault::oauth(401, "invalid_client", Some("Invalid client credentials.")));
    past_max_age().run().failure(4, "token exchange refused: HTTP 401 invalid_client", &env.secrets());

    let (quiet, mut verbose) = (past_max_age(), past_max_age());
    verbose.arg("-v");
    let variable = {
        let mut cmd = env.cached();
        cmd.env("TOKENXCHANGE_CACHE_MAX_AGE", "0s").args(["--retries", "0"]);
        cmd
    };
    let Env { dex, dir, .. } = env;
    drop(dex);
    let served = quiet.run().success();
    assert_eq!(served.token, healed.token, "the cached, unexpired token outlives the outage");
    assert_eq!(variable.run().success().token, healed.token);
    let run = verbose.run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("connection refused; serving the cached credential"), "{run}");
    drop(dir);
}

#[test]
fn a_bad_cache_max_age_is_a_usage_error() {
    let env = Env::new();
    env.cmd().args(["--cache-max-age", "2d"]).run().failure(2, "invalid --cache-max-age '2d'", &[]);
    env.cmd().args(["--cache-max-age", "25h"]).run().failure(2, "must be at most 24h", &[]);
}

/// §7: a symlink at the install target is refused, and replaced itself with --force; what
/// it points to is never touched. Paths on stdout are escaped.
#[test]
fn install_never_touches_a_symlinks_target_and_escapes_paths() {
    let dir = TempDir::new("install-link");
    let target = dir.join("elsewhere");
    std::fs::copy(BIN, &target).unwrap();
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(&target, bin.join("tokenxchange")).unwrap();
    let run = Cmd::new(dir.path().into()).arg("install").arg(&bin).run();
    run.failure(2, "is a symlink; use --force to replace the link itself", &[]);
    let mode = |path: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
    };
    assert_eq!(mode(&target), 0o700, "the link's target is untouched");
    let run = Cmd::new(dir.path().into()).args(["install", "--force"]).arg(&bin).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!std::fs::symlink_metadata(bin.join("tokenxchange")).unwrap().is_symlink());
    assert_eq!(mode(&target), 0o700, "the link's target is untouched");

    let odd = dir.join("bin\u{1b}[2J");
    std::fs::create_dir(&odd).unwrap();
    let run = Cmd::new(dir.path().into()).arg("install").arg(&odd).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(run.stdout, format!("installed {}/bin\\u{{1b}}[2J/tokenxchange\n", dir.path().display()));
}

/// §7 for a hard link: the installed name shares its inode with another file; making it
/// executable in place would change that other file's mode, so the name is replaced.
#[test]
fn install_never_changes_the_mode_of_a_hard_links_other_name() {
    let dir = TempDir::new("install-hard-link");
    let other = dir.join("other");
    std::fs::copy(BIN, &other).unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::hard_link(&other, bin.join("tokenxchange")).unwrap();
    let run = Cmd::new(dir.path().into()).arg("install").arg(&bin).run();
    assert_eq!(run.code, Some(0), "{run}");
    let meta = |path: &std::path::Path| std::fs::metadata(path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta(&other).mode() & 0o777, 0o700, "the other name's mode is untouched\n{run}");
    assert_eq!(meta(&bin.join("tokenxchange")).mode() & 0o777, 0o755, "{run}");
    assert_ne!(meta(&other).ino(), meta(&bin.join("tokenxchange")).ino(), "the name was replaced");
}

/// §7: missing cache directories are made one by one inside their parent's descriptor
/// after it passed the checks: a path through a stranger's directory (`$HOME/.kube`
/// symlinked into it) is refused without making anything there.
#[test]
fn a_cache_path_through_a_strangers_directory_makes_nothing_there() {
    let env = Env::new();
    let stranger = TempDir::new("stranger");
    if let Err(err) = std::os::unix::fs::chown(stranger.path(), Some(65534), Some(65534)) {
        assert!(std::env::var_os("CI").is_none(), "cannot give a directory away ({err}); CI runs as root");
        eprintln!("cannot give a directory away ({err}): not run here");
        return;
    }
    let home = TempDir::new("home-linked");
    std::os::unix::fs::symlink(stranger.path(), home.join(".kube")).unwrap();
    let run = env.cached().env("HOME", home.path()).arg("-v").run();
    assert_eq!(run.code, Some(0), "{run}");
    let reason = format!("{} above it is owned by uid 65534, neither root nor this user", stranger.path().display());
    assert!(run.stderr.contains(&reason), "{run}");
    assert_eq!(std::fs::read_dir(stranger.path()).unwrap().count(), 0, "nothing made in the stranger's directory");
}

/// §7: `clean` prints the paths it removed escaped, as stderr text is.
#[test]
fn clean_escapes_the_paths_it_prints() {
    let env = Env::new();
    let dir = TempDir::new("clean-odd");
    let cache = dir.join("cache\u{1b}[2J");
    env.cached().arg("--cache-dir").arg(&cache).run().success();
    let run = env.bare().args(["clean", "--cache-dir"]).arg(&cache).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!run.stdout.contains('\u{1b}'), "{run}");
    let shown = format!("removed {}/cache\\u{{1b}}[2J/", dir.path().display());
    assert!(run.stdout.lines().count() >= 2 && run.stdout.lines().all(|line| line.starts_with(&shown)), "{run}");
}
