//! `tokenxchange install DIR` and the static binary in an empty root (`scratch`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;

fn install(home: &TempDir, args: &[&std::ffi::OsStr]) -> Run {
    let mut cmd = Cmd::new(home.path().into());
    cmd.arg("install").args(args.iter().copied());
    cmd.run()
}

#[test]
fn install_copies_the_running_binary_idempotently() {
    let dir = TempDir::new("install");
    let target = dir.join("tokenxchange");

    let run = install(&dir, &[dir.path().as_os_str()]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(run.stdout, format!("installed {}\n", target.display()));
    assert!(run.stderr.is_empty());
    assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(BIN).unwrap());
    assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o755);
    let version = Command::new(&target).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout), version_line());

    let again = install(&dir, &[dir.path().as_os_str()]);
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(again.stdout, format!("{} is already installed (unchanged)\n", target.display()));

    std::fs::write(&target, "#!/bin/sh\necho another tool\n").unwrap();
    install(&dir, &[dir.path().as_os_str()]).failure(2, "differs from this binary; use --force", &[]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "#!/bin/sh\necho another tool\n");

    // --force before or after the subcommand
    let mut before = Cmd::new(dir.path().into());
    before.args(["--force", "install"]).arg(dir.path());
    assert_eq!(before.run().code, Some(0));
    std::fs::write(&target, "#!/bin/sh\necho another tool\n").unwrap();
    let forced = install(&dir, &["--force".as_ref(), dir.path().as_os_str()]);
    assert_eq!(forced.code, Some(0), "{forced}");
    assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(BIN).unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("tokenxchange")], "no temp files left");
}

#[test]
fn install_into_missing_or_read_only_directories_fails_clearly() {
    let dir = TempDir::new("install-bad");
    let missing = dir.join("missing");
    install(&dir, &[missing.as_os_str()]).failure(2, "cannot install into", &[]);

    let readonly = dir.join("readonly");
    std::fs::create_dir(&readonly).unwrap();
    std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o555)).unwrap();
    // root ignores mode bits; /proc refuses new files to everyone
    let probe = readonly.join("probe");
    let readonly: PathBuf = if std::fs::write(&probe, "x").is_ok() { "/proc".into() } else { readonly };
    install(&dir, &[readonly.as_os_str()]).failure(1, "cannot install into", &[]);
    install(&dir, &[]).failure(2, "usage: tokenxchange install [--force] DIR", &[]);
}

/// The release binary built by `make build`, when it is there; a panic when it is older
/// than the sources, so a stale build can neither pass nor fail this test.
fn static_binary() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = std::env::var_os("TOKENXCHANGE_STATIC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/x86_64-unknown-linux-musl/release/tokenxchange"));
    if !path.is_file() {
        return None;
    }
    let built = modified(&path);
    let mut sources = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    sources.extend(files_under(&root.join("src")));
    if let Some(newer) = sources.iter().find(|source| modified(source) > built) {
        panic!(
            "the static binary {} is older than {}: run make build (if cargo finds nothing to \
             rebuild, the change did not touch the binary: touch src/main.rs first)",
            path.display(),
            newer.display()
        );
    }
    Some(path)
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file below `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let paths = entries.map(|entry| entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path());
    paths.flat_map(|path| if path.is_dir() { files_under(&path) } else { vec![path] }).collect()
}

#[test]
fn the_static_binary_runs_in_an_empty_root() {
    let test = "the scratch test";
    let Some(binary) = static_binary() else {
        return skip(test, "the static release binary (run `make build` first)");
    };
    let Some(chroot_bin) = need_program("chroot", test) else { return };
    let env = Env::new();
    let root = TempDir::new("scratch");
    testkit::copy_program(&binary, &root.join("tokenxchange"));
    std::fs::write(root.join("token"), format!("{}\n", env.subject)).unwrap();
    std::fs::write(root.join("ca.pem"), env.dex.ca_pem()).unwrap();
    std::fs::create_dir(root.join("out")).unwrap();

    let chroot = |args: &[&str]| {
        Command::new(&chroot_bin)
            .arg(root.path())
            .arg("/tokenxchange")
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .map(|output| {
                Run::from_output(
                    format!("chroot {} /tokenxchange {args:?}", root.path().display()),
                    output,
                    Default::default(),
                )
            })
    };
    let endpoint = format!("--oidc-endpoint={}", env.dex.token_endpoint());
    let exchange = [
        endpoint.as_str(),
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
        "--dex-connector",
        "kubernetes",
        "--token-file",
        "/token",
    ];
    let mut with_ca = exchange.to_vec();
    with_ca.extend(["--certificate-authority", "/ca.pem"]);
    let run = match chroot(&with_ca) {
        Ok(run) if run.code == Some(125) || run.stderr.contains("Operation not permitted") => {
            return skip(test, &format!("the right to chroot (root)\n{run}"));
        }
        Ok(run) => run,
        Err(err) => return skip(test, &format!("a working chroot ({err})")),
    };
    // no /etc, no libc, no HOME: no cache, and the exchange still works
    let credential = run.success();
    assert_eq!(claim_str(&credential.claims(), "name"), Some(SA_NAME.into()));

    // without the CA: only the bundled roots exist in here, and they do not know the test CA
    chroot(&exchange).unwrap().failure(5, "unknown issuer", &env.secrets());

    // install works without /proc (argv[0] fallback)
    let installed = chroot(&["install", "/out"]).unwrap();
    assert_eq!(installed.code, Some(0), "{installed}");
    assert_eq!(std::fs::read(root.join("out/tokenxchange")).unwrap(), std::fs::read(&binary).unwrap());
}

#[test]
fn a_fifo_or_device_at_the_target_never_blocks_install() {
    let dir = TempDir::new("install-fifo");
    let target = dir.join("tokenxchange");
    mkfifo(&target);
    let run = install(&dir, &[dir.path().as_os_str()]);
    run.failure(1, "not a regular file; use --force to replace it", &[]);
    let forced = install(&dir, &["--force".as_ref(), dir.path().as_os_str()]);
    assert_eq!(forced.code, Some(0), "{forced}");
    assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(BIN).unwrap());
}
