//! Tried as an attacker would: a cache directory someone else controls, files that are
//! not what they claim, servers that echo secrets or send control characters, and a
//! remembered endpoint that went stale.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use testkit::{DexConfig, Fault, OTHER_UID};

use crate::util::*;

/// Gives `path` to the second user, [`OTHER_UID`]; `false`, after [`skip`]ping `test`
/// (a failure under `CI=true`), where this process cannot: it is not root.
fn give_away(path: &Path, test: &str) -> bool {
    match std::os::unix::fs::chown(path, Some(OTHER_UID), Some(OTHER_UID)) {
        Ok(()) => true,
        Err(err) => {
            skip(test, &format!("a second user (giving {} to uid {OTHER_UID} failed: {err})", path.display()));
            false
        }
    }
}

fn private_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn cache_directories_another_user_controls_are_never_used() {
    let test = "the foreign cache directory test";
    let env = Env::new();
    // A genuine run, to learn the file names an attacker would plant.
    let good = TempDir::new("good-cache");
    private_dir(good.path());
    env.issuer().arg("--cache-dir").arg(good.path()).run().success();
    let entry = files_with(good.path(), "json").pop().expect("an entry");
    let endpoint = files_with(good.path(), "endpoint").pop().expect("a remembered endpoint");
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let planted = format!("{}\nhttp://127.0.0.1:{}/token\n", env.dex.issuer(), trap.local_addr().unwrap().port());
    let plant = |dir: &Path| {
        std::fs::copy(&entry, dir.join(entry.file_name().unwrap())).unwrap();
        std::fs::write(dir.join(endpoint.file_name().unwrap()), &planted).unwrap();
    };

    let hostile = TempDir::new("hostile");
    // 1. a directory above the cache belongs to another user
    let theirs = hostile.join("theirs");
    private_dir(&theirs.join("cache"));
    plant(&theirs.join("cache"));
    if !give_away(&theirs, test) {
        return;
    }
    // 2. the cache directory itself belongs to another user
    let owned = hostile.join("owned");
    private_dir(&owned);
    plant(&owned);
    give_away(&owned, test);
    // 3. $HOME/.kube is a symlink into another user's directory
    let linked = hostile.join("linked");
    private_dir(&linked.join("cache/tokenxchange"));
    plant(&linked.join("cache/tokenxchange"));
    give_away(&linked, test);
    let home = TempDir::new("symlinked-home");
    std::os::unix::fs::symlink(&linked, home.join(".kube")).unwrap();

    let cases: [(&str, Vec<String>, String); 3] = [
        (
            "parent of another user",
            vec!["--cache-dir".into(), theirs.join("cache").display().to_string()],
            format!("{} above it is owned by uid {OTHER_UID}, neither root nor this user", theirs.display()),
        ),
        (
            "directory of another user",
            vec!["--cache-dir".into(), owned.display().to_string()],
            format!("owned by uid {OTHER_UID}, not by this user"),
        ),
        ("symlinked parent", Vec::new(), format!("{} above it is owned by uid {OTHER_UID}", linked.display())),
    ];
    for (name, args, reason) in cases {
        let before = env.dex.requests().len();
        let run = env.issuer().args(&args).env("HOME", home.path()).arg("-v").run();
        assert_eq!(run.code, Some(0), "{name}\n{run}");
        assert!(run.stderr.contains("cache off: ") && run.stderr.contains(&reason), "{name}: {reason}\n{run}");
        let methods: Vec<String> =
            env.dex.requests()[before..].iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        assert_eq!(methods, ["GET /dex/.well-known/openid-configuration", "POST /dex/token"], "{name}");
        assert!(trap.accept().is_err(), "{name}: the planted endpoint was contacted");
    }

    // `clean` refuses what get-token refuses
    let clean = env.bare().args(["clean", "--cache-dir"]).arg(&owned).run();
    clean.failure(1, &format!("refusing to clean {}: owned by uid {OTHER_UID}", owned.display()), &[]);
    assert!(files_with(&owned, "json").len() == 1, "nothing was removed");
}

#[test]
fn a_symlinked_parent_into_a_directory_of_this_user_still_caches() {
    // $HOME/.kube as a symlink to a directory of the same user (or root) is fine.
    let env = Env::new();
    let real = TempDir::new("real-kube");
    let home = TempDir::new("linked-home");
    std::os::unix::fs::symlink(real.path(), home.join(".kube")).unwrap();
    for _ in 0..2 {
        let run = env.cached().env("HOME", home.path()).arg("-v").run();
        assert_eq!(run.code, Some(0), "{run}");
        assert!(!run.stderr.contains("cache off"), "{run}");
    }
    assert_eq!(env.dex.token_requests(), 1);
    assert_eq!(files_with(&real.join("cache/tokenxchange"), "json").len(), 1);
}

#[test]
fn a_directory_above_that_can_be_passed_but_not_listed_still_caches() {
    // As /home is on hardened hosts: mode 0711. Only another user feels it: run as one.
    let test = "the 0711 ancestor test";
    let env = Env::new();
    let top = TempDir::new("passable");
    let theirs = top.join("user");
    private_dir(&theirs);
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    // the other user must read the token, the CA and run the binary
    for path in [env.dir.path(), env.token_file.as_path(), env.ca.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    if !give_away(&theirs, test) {
        return;
    }
    let Some(setpriv) = need_program("setpriv", test) else { return };
    // the binary where the other user can run it (the checkout may be closed to others)
    let bin_dir = TempDir::new("bin-for-others");
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let program = bin_dir.join("tokenxchange");
    testkit::copy_program(BIN.as_ref(), &program);
    let as_other = |args: &[&str]| {
        let mut command = env.cached().command();
        let given: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
        let envs: Vec<_> = command.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))).collect();
        command = std::process::Command::new(&setpriv);
        let other = OTHER_UID.to_string();
        command.args(["--reuid", &other, "--regid", &other, "--clear-groups"]).arg(&program).args(given).args(args);
        command.env_clear().envs(envs).env("HOME", &theirs);
        Run::from_output("setpriv … tokenxchange".into(), command.output().unwrap(), Duration::ZERO)
    };
    for _ in 0..2 {
        let run = as_other(&["-v"]);
        assert_eq!(run.code, Some(0), "{run}");
        assert!(!run.stderr.contains("cache off"), "{run}");
    }
    assert_eq!(env.dex.token_requests(), 1, "the second run was a hit");
}

#[test]
fn a_cache_below_a_world_writable_root_owned_directory_still_caches() {
    // As Kubernetes creates emptyDir volumes: root-owned, mode 0777, mounted at /tmp.
    let env = Env::new();
    let empty_dir = TempDir::new("emptydir");
    std::fs::set_permissions(empty_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let kubecache = empty_dir.join("kubecache");
    env.cached().env("KUBECACHEDIR", &kubecache).run().success();
    env.cached().env("KUBECACHEDIR", &kubecache).run().success();
    assert_eq!(env.dex.token_requests(), 1);
    assert_eq!(files_with(&kubecache.join("tokenxchange"), "json").len(), 1);
}

#[test]
fn fifos_in_the_cache_never_block_a_run() {
    let env = Env::new();
    env.cached().run().success();
    let dir = env.cache_dir();
    for extension in ["lock", "json"] {
        mkfifo(&files_with(&dir, extension).pop().unwrap_or_else(|| panic!("a .{extension} file")));
    }
    // FIFOs are never opened for waiting: no lock, no entry, and an exchange of its own
    // (about 10 s of room for work of milliseconds).
    let run = env.cached().args(["--timeout", "10s", "-v"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    run.ended_within(Duration::from_secs(10));
    assert!(run.stderr.contains("not a regular file"), "{run}");
    assert_eq!(env.dex.token_requests(), 2);
}

/// The forms in which a server may echo `value`: raw, base64 (standard and URL-safe, and
/// wrapped across lines), percent-encoded (once and twice), HTML entities, `\uXXXX` for
/// every character, upper- and lower-cased, hex, and its first 16 characters.
fn encodings(value: &str) -> Vec<String> {
    let percent = |text: &str| -> String {
        text.bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect()
    };
    let wrapped: String = {
        let b64 = STANDARD.encode(value);
        let lines: Vec<&str> = b64.as_bytes().chunks(20).map(|c| std::str::from_utf8(c).unwrap()).collect();
        lines.join("\n")
    };
    let mut forms = vec![
        value.to_string(),
        STANDARD.encode(value),
        URL_SAFE.encode(value),
        percent(value),
        percent(&percent(value)),
        wrapped,
        value.chars().map(|c| format!("&#{};", u32::from(c))).collect(),
        value.chars().map(|c| format!("\\u{:04x}", u32::from(c))).collect(),
        value.to_uppercase(),
        value.to_lowercase(),
        value.bytes().map(|b| format!("{b:02x}")).collect(),
    ];
    if value.len() > 16 {
        forms.push(value[..16].to_string());
    }
    forms
}

/// Whether `stderr` shows any 12 characters in a row of a line of `form`.
fn leaked(stderr: &str, form: &str) -> bool {
    form.split('\n').any(|line| {
        let chars: Vec<char> = line.chars().collect();
        chars.windows(12.min(chars.len()).max(1)).any(|w| stderr.contains(&w.iter().collect::<String>()))
    })
}

#[test]
fn echoed_secrets_never_reach_stderr_in_any_encoding() {
    let env = Env::new();
    let basic = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:s3cr%2Bt%2F%3D%25%3Ax")));
    let mut echoed: Vec<String> = [CLIENT_SECRET, env.subject.as_str()].iter().flat_map(|s| encodings(s)).collect();
    echoed.push(basic.clone());
    let token = testkit::SigningKey::dex().sign(r#"{"exp":9999999999}"#);
    for value in &echoed {
        let json = miniserde::json::to_string(value);
        let answers = [
            Fault::status(400, "application/json", &format!(r#"{{"error":{json}}}"#)),
            Fault::status(
                400,
                "application/json",
                &format!(r#"{{"error":"invalid_request","error_description":{json}}}"#),
            ),
            Fault::status(503, "text/plain", &format!("upstream said {value}")),
            Fault::status(
                200,
                "application/json",
                &format!(r#"{{"access_token":"{token}","issued_token_type":{json}}}"#),
            ),
            Fault::status(200, "text/plain", value),
        ];
        for answer in answers {
            for verbose in [false, true] {
                env.dex.push_fault(answer.clone());
                let mut cmd = env.cmd();
                cmd.args(["--retries", "0"]);
                if verbose {
                    cmd.arg("-v");
                }
                let run = cmd.run();
                assert_ne!(run.code, Some(0), "{run}");
                for secret in &echoed {
                    assert!(!leaked(&run.stderr, secret), "{secret} leaked\n{run}");
                }
                assert!(!run.stderr.contains(&token), "the issued token leaked\n{run}");
            }
        }
    }
}

#[test]
fn control_characters_from_every_source_are_escaped_on_one_line() {
    let env = Env::new();
    let no_escape = |run: &Run| {
        assert!(!run.stderr.contains('\u{1b}') && !run.stderr.contains('\r') && !run.stderr.contains('\0'), "{run}");
    };
    let info = r#"{"apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"config":{"evil\u001b[2J\nforged: line\u0000":"x"}}}}"#;
    let run = env.cmd().env("KUBERNETES_EXEC_INFO", info).run();
    run.failure(2, "unknown key 'evil\\u{1b}[2J\\nforged: line\\u{0}'", &env.secrets());
    no_escape(&run);

    let info = r#"{"apiVersion":"v1\r\ntokenxchange: error: forged\u001b]0;title\u0007"}"#;
    let run = env.cmd().env("KUBERNETES_EXEC_INFO", info).run();
    run.failure(
        2,
        "unsupported ExecCredential apiVersion 'v1\\r\\ntokenxchange: error: forged\\u{1b}]0;title\\u{7}'",
        &[],
    );
    no_escape(&run);

    env.dex.push_fault(Fault::status(400, "application/json", r#"{"error":"bad\u001b[31m\nline two"}"#));
    let run = env.cmd().run();
    run.failure(4, "HTTP 400 bad\\u{1b}[31m\\nline two", &env.secrets());
    no_escape(&run);

    let forged = Env::with(DexConfig {
        discovered_token_endpoint: Some("https://dex.example/\u{1b}[2J\ntokenxchange: forged".into()),
        ..DexConfig::default()
    });
    let run = forged.issuer().arg("--no-cache").run();
    run.failure(
        2,
        "invalid token_endpoint from discovery 'https://dex.example/\\u{1b}[2J\\ntokenxchange: forged'",
        &forged.secrets(),
    );
    no_escape(&run);
}

#[test]
fn a_stale_remembered_endpoint_is_discovered_again() {
    let env = Env::new();
    env.issuer().run().success();
    let file = files_with(&env.cache_dir(), "endpoint").pop().expect("a remembered endpoint");
    let remember = |endpoint: &str| {
        let text = format!("{}\n{endpoint}\n", env.dex.issuer());
        std::fs::write(&file, text).unwrap();
    };
    let methods_since = |before: usize| -> Vec<String> {
        env.dex.requests()[before..].iter().map(|r| format!("{} {}", r.method, r.path)).collect()
    };
    let rediscovered = ["GET /dex/.well-known/openid-configuration", "POST /dex/token"];

    // DNS failure: a 70-character label fails in the resolver itself, without a query.
    remember(&format!("https://{}.invalid/dex/token", "a".repeat(70)));
    let before = env.dex.requests().len();
    let run = env.issuer().args(["--force-refresh", "--retries", "0", "-v"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("host name not found (DNS)") && run.stderr.contains("discovering again"), "{run}");
    assert_eq!(methods_since(before), rediscovered);

    // 410 Gone at the remembered URL
    remember(&format!("{}?moved", env.dex.token_endpoint()));
    env.dex.push_fault(Fault::status(410, "text/plain", "gone"));
    let before = env.dex.requests().len();
    env.issuer().args(["--force-refresh", "--retries", "0"]).run().success();
    assert_eq!(methods_since(before), ["POST /dex/token?moved", rediscovered[0], rediscovered[1]]);

    // a timeout: the remembered endpoint gets half the time (5 s), discovery and the
    // exchange the rest (5 s, for work of milliseconds)
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    remember(&format!("https://127.0.0.1:{}/dex/token", silent.local_addr().unwrap().port()));
    let before = env.dex.requests().len();
    let run = env.issuer().args(["--force-refresh", "--retries", "0", "--timeout", "10s", "-v"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("discovering again"), "{run}");
    run.ended_within(Duration::from_secs(10));
    assert_eq!(methods_since(before), rediscovered);

    // discovery names the same URL: the first error stands, and no second POST is made
    env.dex.push_fault(Fault::status(410, "text/plain", "gone"));
    let before = env.dex.requests().len();
    env.issuer().args(["--force-refresh", "--retries", "0"]).run().failure(4, "answered HTTP 410", &env.secrets());
    assert_eq!(methods_since(before), ["POST /dex/token", rediscovered[0]]);

    // an OAuth refusal is the endpoint's own answer: no discovery
    env.dex.push_fault(Fault::oauth(401, "invalid_client", Some("Invalid client credentials.")));
    let before = env.dex.requests().len();
    env.issuer().args(["--force-refresh"]).run().failure(4, "invalid_client", &env.secrets());
    assert_eq!(methods_since(before), ["POST /dex/token"]);
}

#[test]
fn audience_sets_that_differ_only_in_splitting_are_different_keys() {
    let env = Env::with(DexConfig::default().trusting(&["a,b", "a", "b"]));
    let one = ["--audience", "a,b"];
    let two = ["--audience", "a", "--audience", "b"];
    env.cached().args(one).run().success();
    env.cached().args(two).run().success();
    assert_eq!(env.dex.token_requests(), 2);
    env.cached().args(one).run().success();
    env.cached().args(["--audience", "b", "--audience", "a"]).run().success();
    assert_eq!(env.dex.token_requests(), 2, "the same sets hit, whatever their order");
    assert_eq!(env.dex.requests()[0].fields("audience"), ["a,b"]);
    assert_eq!(env.dex.requests()[1].fields("audience"), ["a", "b"]);
}

#[test]
fn a_token_file_swapped_with_a_fifo_never_blocks() {
    let env = Env::new();
    let path = env.dir.join("swapped-token");
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (path, stop, subject) = (path.clone(), Arc::clone(&stop), env.subject.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&path);
                std::fs::write(&path, &subject).unwrap();
                std::thread::sleep(Duration::from_millis(2));
                mkfifo(&path);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    // Run until a run has met the FIFO (and one the file), at most 400 runs. A run that
    // blocked on the FIFO would outlast its timeout (and be killed by the watchdog).
    let (mut fifo, mut file) = (0, 0);
    for _ in 0..400 {
        let run = env.cmd().arg("--token-file").arg(&path).args(["--timeout", "10s"]).run();
        run.ended_within(Duration::from_secs(10));
        assert!(matches!(run.code, Some(0) | Some(3)), "{run}");
        fifo += usize::from(run.stderr.contains("not a regular file"));
        file += usize::from(run.code == Some(0));
        if fifo > 0 && file > 0 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(fifo > 0 && file > 0, "the runs met the FIFO {fifo} times and the file {file} times");
}

#[test]
fn values_that_are_not_what_they_claim_are_refused() {
    use std::os::unix::ffi::OsStringExt;
    let env = Env::new();
    let not_utf8 = std::ffi::OsString::from_vec(b"argo\xffcd".to_vec());
    let mut bare = env.bare();
    bare.arg(format!("--oidc-endpoint={}", env.dex.token_endpoint()));
    bare.env("TOKENXCHANGE_CLIENT_ID", not_utf8).run().failure(2, "TOKENXCHANGE_CLIENT_ID is not valid UTF-8", &[]);

    for proxy in ["http://127.0.0.1:notaport", "http://127.0.0.1:99999", "http://user:pass@proxy:0"] {
        env.cmd().env("HTTPS_PROXY", proxy).run().failure(2, "invalid HTTPS_PROXY '", &["pass"]);
    }
    assert_eq!(env.dex.token_requests(), 0);

    for token in ["abc\r\nX-Injected: yes", "two words", "t\u{0}ken"] {
        let body = format!(
            r#"{{"access_token":{},"issued_token_type":"{ID_TOKEN}","expires_in":3600}}"#,
            miniserde::json::to_string(token)
        );
        env.dex.push_fault(Fault::status(200, "application/json", &body));
        let run = env.cached().run();
        run.failure(1, "access_token is not a valid bearer token (RFC 6750", &env.secrets());
        assert!(!run.stderr.contains("Injected") && !run.stderr.contains("words"), "{run}");
    }
    assert!(files_with(&env.cache_dir(), "json").is_empty(), "an invalid token is never cached");
}

#[test]
fn a_closed_or_broken_stdout_is_a_failure() {
    let env = Env::new();
    let mut shell = std::process::Command::new("sh");
    let cmd = env.cmd();
    let described = cmd.command();
    shell.arg("-c").arg(r#"exec "$0" "$@" >&-"#).arg(described.get_program()).args(described.get_args());
    shell.env_clear().envs(described.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    let output = shell.output().unwrap();
    let run = Run::from_output("tokenxchange >&-".into(), output, Duration::ZERO);
    run.failure(1, "cannot write to stdout: Bad file descriptor", &env.secrets());

    // /dev/null opened read-write (as Python's DEVNULL is) is a place the caller chose
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null").unwrap();
    let output = env.cmd().command().stdout(null).output().unwrap();
    let run = Run::from_output("tokenxchange <>/dev/null".into(), output, Duration::ZERO);
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{run}");

    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let output = env.cmd().command().stdout(full).output().unwrap();
    let run = Run::from_output("tokenxchange >/dev/full".into(), output, Duration::ZERO);
    run.failure(1, "cannot write to stdout: No space left on device", &env.secrets());
}

/// A non-blocking pipe of one page as stdout, read slowly: every write is partial, some
/// cut inside a character of a non-ASCII report, and some meet a full pipe (EAGAIN).
#[test]
fn a_slow_non_blocking_stdout_still_gets_everything() {
    let Some(python) = need_program("python3", "the non-blocking stdout test") else { return };
    let env = Env::new();
    const SLOW_READER: &str = r#"
import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ: one page
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
child = subprocess.Popen(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)
os.close(w)
out = b""
while True:
    time.sleep(0.002)
    chunk = os.read(r, 1000)
    if not chunk:
        break
    out += chunk
err = child.stderr.read()
sys.stdout.buffer.write(b"%d\n" % child.wait() + err + b"\n--\n" + out)
"#;
    for pad in 0..2 {
        // An issued token whose claims make a report of several pages, mostly 2-byte
        // characters, shifted by `pad` bytes so that cuts fall inside characters.
        let wide: Vec<String> =
            (0..30).map(|i| format!(r#""c{i:02}":"{}{}""#, "x".repeat(pad), "é".repeat(120))).collect();
        let claims = format!(
            r#"{{"iss":"{}","aud":"{CLIENT_ID}","exp":{},"name":"{SA_NAME}",{}}}"#,
            env.dex.issuer(),
            now() + 3600,
            wide.join(",")
        );
        let token = testkit::SigningKey::dex().sign(&claims);
        let body = format!(r#"{{"access_token":"{token}","issued_token_type":"{ID_TOKEN}","expires_in":3600}}"#);
        env.dex.push_fault(Fault::status(200, "application/json", &body));
        let mut args = vec![BIN.to_string(), "inspect".into()];
        args.extend(env.cmd().command().get_args().map(|a| a.to_string_lossy().into_owned()));
        let output = std::process::Command::new(&python)
            .args(["-c", SLOW_READER])
            .args(&args)
            .env_clear()
            .env("HOME", env.dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).expect("the report is whole UTF-8");
        let (status, report) = text.split_once("\n--\n").unwrap();
        assert!(status.starts_with("0\n"), "exit and stderr: {status}");
        assert!(report.len() > 8192, "a report of several pages: {} bytes", report.len());
        assert!(report.contains(&format!("username  oidc:{SA_NAME}\n")) && report.ends_with("ok\n"), "{report}");
    }
}

#[test]
fn a_token_fetched_without_verification_is_never_served_to_a_verifying_run() {
    let env = Env::new();
    let unverified = env.cached().arg("--insecure-skip-tls-verify").run();
    assert_eq!(unverified.code, Some(0), "{unverified}");
    env.cached().run().success();
    assert_eq!(env.dex.token_requests(), 2, "the verifying run exchanged for itself");
}
