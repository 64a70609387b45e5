//! The credential cache, counted at the test Dex: hits cost no request, everything that
//! changes the token costs exactly one, and a burst of parallel runs costs one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use miniserde::json::{self, Value};
use testkit::{DexConfig, Fault};

use crate::util::*;

fn entries(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, "json")
}

/// Makes the cache entry `file` one that expired at `expires_at`, its check recomputed as
/// the cache does (format version 3): expiry is tested by setting the clock's reading in
/// the entry, never by waiting for a short-lived token to run out.
fn expire(file: &Path, expires_at: i64) {
    restamp(file, None, expires_at);
}

/// Rewrites the cache entry `file` as stored at `stored_at` (when given) and expiring at
/// `expires_at`, its check recomputed as the cache does.
fn restamp(file: &Path, stored_at: Option<i64>, expires_at: i64) {
    let text = std::fs::read_to_string(file).unwrap();
    let Ok(Value::Object(entry)) = json::from_str::<Value>(&text) else {
        panic!("{} is not a JSON object", file.display())
    };
    let Some(Value::String(token)) = entry.get("token") else { panic!("no token in {}", file.display()) };
    let Some(Value::Number(stored)) = entry.get("stored_at") else { panic!("no stored_at in {}", file.display()) };
    let stored_at = stored_at.map_or_else(|| stored.to_string(), |at| at.to_string());
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("tokenxchange cache v3\n{stored_at}\n{expires_at}\n{token}").as_bytes(),
    );
    let check: String = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    let aged = format!(
        r#"{{"version":3,"stored_at":{stored_at},"expires_at":{expires_at},"token":{},"check":"{check}"}}"#,
        json::to_string(token)
    );
    std::fs::write(file, aged).unwrap();
}

/// A time long past: 2001-09-09.
const LONG_AGO: i64 = 1_000_000_000;

/// An entry stored in the future (the clock was stepped back since, or the entry was
/// forged) has no age that can be trusted: it is exchanged again, not served as new for
/// as long as the clocks differ. It still stands in for an unreachable identity provider
/// while it is valid by its expiry.
#[test]
fn an_entry_from_the_future_is_not_fresh() {
    let env = Env::new();
    let first = env.cached().run().success();
    let files = entries(&env.cache_dir());
    let expires_at = parse_rfc3339(first.expiration.as_deref().unwrap());
    restamp(&files[0], Some(now() + 10 * 365 * 86_400), expires_at);
    let run = env.cached().args(["--cache-max-age", "24h", "-v"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("was stored in the future"), "{run}");
    assert_eq!(env.dex.token_requests(), 2, "exchanged again");

    let second = Credential::parse(&run.stdout).unwrap();
    let entry = entries(&env.cache_dir()).remove(0);
    let expires_at = parse_rfc3339(second.expiration.as_deref().unwrap());
    restamp(&entry, Some(now() + 10 * 365 * 86_400), expires_at);
    let mut outage = env.cached();
    outage.args(["--cache-max-age", "24h", "--retries", "0"]);
    let Env { dex, dir, .. } = env;
    drop(dex);
    assert_eq!(outage.run().success().token, second.token, "served while Dex is unreachable");
    drop(dir);
}

#[test]
fn second_run_is_a_hit_with_identical_output() {
    let env = Env::new();
    let first = env.cached().run();
    first.success();
    let second = env.cached().run();
    second.success();
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(env.dex.token_requests(), 1);

    // default directory under HOME, 0700, entry 0600
    let dir = env.cache_dir();
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    let files = entries(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);

    let verbose = env.cached().arg("-v").run();
    assert!(verbose.stderr.contains("cache hit "), "{verbose}");
    verbose.no_secrets(&[&env.subject, CLIENT_SECRET, &Credential::parse(&first.stdout).unwrap().token]);
    assert_eq!(env.dex.token_requests(), 1);
}

#[test]
fn kubecachedir_and_cache_dir_flag_choose_the_directory() {
    let env = Env::new();
    let kube = TempDir::new("kubecache");
    env.cached().env("KUBECACHEDIR", kube.path()).run().success();
    assert_eq!(entries(&kube.join("tokenxchange")).len(), 1);
    let flag = TempDir::new("flagcache");
    std::fs::set_permissions(flag.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    env.cached().env("KUBECACHEDIR", kube.path()).arg("--cache-dir").arg(flag.path()).run().success();
    assert_eq!(entries(flag.path()).len(), 1);
    assert_eq!(env.dex.token_requests(), 2);
}

#[test]
fn expired_entries_are_refreshed() {
    let env = Env::new();
    env.cached().run().success();
    env.cached().run().success();
    assert_eq!(env.dex.token_requests(), 1);
    let file = entries(&env.cache_dir()).pop().expect("an entry");
    expire(&file, LONG_AGO);
    let run = env.cached().arg("-v").run();
    assert!(run.stderr.contains("entry expired at 2001-09-09T01:46:40Z"), "{run}");
    assert_eq!(env.dex.token_requests(), 2);
    // replaced by the fresh credential, which is served
    let next = env.cached().run();
    assert_eq!(next.stdout, run.stdout);
    assert_eq!(env.dex.token_requests(), 2);
}

#[test]
fn everything_that_changes_the_token_changes_the_key() {
    let env = Env::with(
        DexConfig { connectors: vec!["kubernetes".into(), "kubernetes2".into()], ..DexConfig::default() }
            .trusting(&["target-a"]),
    );
    env.cached().run().success();
    let mut expected = 1;
    let mut check = |cmd: &mut Cmd, what: &str| {
        cmd.run().success();
        expected += 1;
        assert_eq!(env.dex.token_requests(), expected, "{what} must miss the cache");
        cmd.run().success();
        assert_eq!(env.dex.token_requests(), expected, "{what} must hit on the second run");
    };
    check(env.cached().args(["--scopes", "openid"]), "scopes");
    check(env.cached().args(["--dex-connector", "kubernetes2"]), "connector");
    check(env.cached().args(["--audience", "target-a"]), "audience");
    let ca_data = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(env.dex.ca_pem())
    };
    check(env.cached().arg(format!("--certificate-authority-data={ca_data}")), "the trusted roots");
    let cluster_a = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"cluster":{"server":"https://a.example:6443"},"interactive":false}}"#;
    check(env.cached().env("KUBERNETES_EXEC_INFO", cluster_a), "cluster");
    let rotated =
        env.dir.write("rotated", testkit::mint_sa_token("argocd", "argocd-application-controller", "dex", 7200));
    check(env.cached().arg("--token-file").arg(&rotated), "rotated subject token");
}

#[test]
fn a_rotated_token_file_never_gets_the_old_token() {
    let env = Env::new();
    env.cached().run().success();
    let rotated = env.rotate_token();
    env.cached().run().success();
    // The second run exchanged the new token instead of serving the old credential.
    assert_eq!(env.dex.token_requests(), 2);
    assert_eq!(env.dex.requests()[1].field("subject_token"), Some(rotated.as_str()));
}

#[test]
fn corrupt_and_truncated_entries_are_replaced() {
    let env = Env::new();
    let good = env.cached().run();
    good.success();
    let file = entries(&env.cache_dir()).pop().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let damaged = [
        text[..text.len() / 2].to_string(),
        String::new(),
        "\u{0}\u{1}garbage".to_string(),
        text.replacen("\"token\":\"ey", "\"token\":\"xy", 1),
        text.replace("\"version\":3", "\"version\":99"),
    ];
    let mut requests = 1;
    for bad in damaged {
        std::fs::write(&file, &bad).unwrap();
        let run = env.cached().arg("-v").run();
        assert_eq!(run.code, Some(0), "{run}");
        assert!(run.stderr.contains("cache miss"), "{run}");
        requests += 1;
        assert_eq!(env.dex.token_requests(), requests);
        // repaired: the next run is a hit
        env.cached().run().success();
        assert_eq!(env.dex.token_requests(), requests);
    }
}

#[test]
fn unsafe_or_unusable_directories_mean_no_cache_not_failure() {
    let env = Env::new();
    // a symlink
    let real = TempDir::new("real-cache");
    std::fs::set_permissions(real.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = env.dir.join("link-cache");
    std::os::unix::fs::symlink(real.path(), &link).unwrap();
    let run = env.cached().arg("-v").arg("--cache-dir").arg(&link).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("is a symlink"), "{run}");
    assert!(entries(real.path()).is_empty());

    // open to others: writable, or only readable
    for mode in [0o777, 0o755] {
        let open = TempDir::new("open-cache");
        std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let run = env.cached().arg("-v").arg("--cache-dir").arg(open.path()).run();
        assert!(run.stderr.contains(&format!("open to group or others (mode {mode:o})")), "{run}");
        assert!(entries(open.path()).is_empty());
    }

    // cannot be created (a file stands in the way; works as root too)
    let blocker = env.dir.write("blocker", "x");
    let run = env.cached().arg("-v").arg("--cache-dir").arg(blocker.join("cache")).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("cache off: "), "{run}");

    // a directory nobody can write in, root included (/proc takes no new files, and is
    // open to others, so it is refused before any write)
    let run = env.cached().arg("-v").args(["--cache-dir", "/proc"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("cache off: /proc: open to group or others"), "{run}");
    assert_eq!(env.dex.token_requests(), 5);
}

#[test]
fn no_cache_and_force_refresh() {
    let env = Env::new();
    env.cached().run().success();
    env.cached().arg("--no-cache").run().success();
    env.cached().env("TOKENXCHANGE_NO_CACHE", "1").run().success();
    env.cached().arg("--cache-dir=").run().success();
    assert_eq!(env.dex.token_requests(), 4);
    let refreshed = env.cached().args(["--force-refresh", "-v"]).run();
    assert!(refreshed.stderr.contains("--force-refresh"), "{refreshed}");
    assert_eq!(env.dex.token_requests(), 5);
    // the refreshed entry replaced the old one and is served
    let next = env.cached().run();
    assert_eq!(next.stdout, refreshed.stdout);
    assert_eq!(env.dex.token_requests(), 5);
}

#[test]
fn failures_are_not_cached() {
    let env = Env::new();
    env.dex.push_fault(Fault::oauth(401, "access_denied", None));
    env.cached().run().failure(4, "access_denied", &env.secrets());
    env.cached().run().success();
    assert_eq!(env.dex.token_requests(), 2);
}

#[test]
fn fifty_parallel_cold_runs_cost_one_exchange() {
    let env = Env::new();
    env.dex.set_delay(Duration::from_millis(300));
    let children: Vec<_> = (0..50)
        .map(|_| {
            let mut cmd = env.cached();
            // Waiters give up on the lock after half the timeout: 20 s, far beyond the
            // first run's exchange, even with fifty debug builds starting on two cores.
            cmd.args(["--timeout", "40s"]);
            cmd.command().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for output in &outputs {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(output.stderr.is_empty());
        assert_eq!(output.stdout, outputs[0].stdout);
    }
    assert_eq!(env.dex.token_requests(), 1);
}

/// Kills a run after it wrote its temp file and before the rename (debug builds pause
/// there on request): the old entry, or none, must remain, and be served or replaced.
#[test]
fn a_run_killed_while_writing_never_leaves_a_broken_entry() {
    let env = Env::new();
    let dir = env.cache_dir();
    let kill_while_writing = |extra: &[&str]| {
        let before = files_with(&dir, "tmp").len();
        // The pause outlasts any wait below: the run is killed inside it, never after it.
        let mut child = env
            .cached()
            .args(extra)
            .env("TOKENXCHANGE_TEST_PAUSE_BEFORE_RENAME_MS", "600000")
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while files_with(&dir, "tmp").len() == before {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
                panic!("the run ended ({status}) before writing its temp file\nstderr: {stderr}");
            }
            if started.elapsed() > WATCHDOG {
                child.kill().unwrap();
                panic!("no temp file appeared within {WATCHDOG:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    };

    // no entry before: none after, and the next run is an ordinary miss
    kill_while_writing(&[]);
    assert!(entries(&dir).is_empty(), "a half-written entry was left");
    let first = env.cached().arg("-v").run();
    assert!(first.stderr.contains("cache miss") && first.stderr.contains("no entry"), "{first}");

    // an entry before: the same entry after, served as a hit
    kill_while_writing(&["--force-refresh"]);
    let after = env.cached().arg("-v").run();
    assert!(after.stderr.contains("cache hit"), "{after}");
    assert_eq!(after.stdout, first.stdout);
    assert_eq!(env.dex.token_requests(), 3);
}

#[test]
fn clean_removes_the_entries() {
    let env = Env::new();
    env.cached().run().success();
    let dir = env.cache_dir();
    let foreign = dir.join("keep-me.txt");
    std::fs::write(&foreign, "not ours").unwrap();
    let foreign_json = dir.join("important.json");
    std::fs::write(&foreign_json, "{}").unwrap();
    let run = env.bare().arg("clean").run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.starts_with("removed "), "{run}");
    assert!(run.stdout.contains(".json"), "{run}");
    assert_eq!(entries(&dir), std::slice::from_ref(&foreign_json));
    assert!(foreign.exists() && foreign_json.exists(), "clean removes only the cache's own files");
    let again = env.bare().arg("clean").run();
    assert_eq!((again.code, again.stdout.as_str()), (Some(0), ""), "{again}");
}

#[test]
fn expired_entries_of_other_keys_are_pruned_on_write() {
    let env = Env::new();
    env.cached().args(["--scopes", "openid"]).run().success();
    let other = entries(&env.cache_dir()).pop().expect("an entry");
    expire(&other, LONG_AGO);
    env.cached().run().success();
    let left = entries(&env.cache_dir());
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0], other, "the expired entry of the other key is gone");
}

#[test]
fn a_stuck_lock_holder_delays_but_never_fails_a_run() {
    let env = Env::new();
    env.cached().run().success();
    let lock_path = files_with(&env.cache_dir(), "lock").pop().expect("a lock file");
    // The stuck holder: this test, which lets go only after the run has ended.
    let held = std::fs::File::open(&lock_path).unwrap();
    held.lock().unwrap();
    let run = env.cached().args(["--force-refresh", "--timeout", "10s", "-v"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    Credential::parse(&run.stdout).unwrap_or_else(|why| panic!("{why}\n{run}"));
    assert_eq!(env.dex.token_requests(), 2);
    // Delayed: it waited for the lock until half of the 10 s were gone (the wait ends at
    // most one 25 ms pause early), then exchanged without it. Never failed: the exchange
    // ran with what was left of the timeout (about 5 s, for work of milliseconds) as its
    // own and was answered within it. Each bound holds however slow the machine is.
    let lines: Vec<&str> = run.stderr.lines().collect();
    let at =
        |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?}\n{run}"));
    let gave_up = at("still held by another run; exchanging without it");
    let post = at("(attempt 1, timeout ");
    let answered = at("HTTP 200 from ");
    assert!(gave_up < post && post < answered, "{run}");
    let millis = |line: &str, suffix: &str| -> u128 {
        let number = line.strip_suffix(suffix).and_then(|head| head.rsplit_once(' ')).map(|(_, n)| n);
        number.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no milliseconds in {line:?}\n{run}"))
    };
    let left = millis(lines[post], " ms)");
    assert!(left > 0 && left <= 5_025, "the exchange started with {left} ms left of 10 s\n{run}");
    assert!(millis(lines[answered], " ms") <= left, "{run}");
    assert!(run.elapsed >= Duration::from_millis(4_975), "{run}");
    run.ended_within(Duration::from_secs(10));
    held.unlock().unwrap();
}
