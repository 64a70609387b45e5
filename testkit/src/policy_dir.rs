//! The operator policy's fixed directory, `/etc/tokenxchange`, for tests: a temporary
//! directory that a command sees at that path inside a private mount namespace, so no
//! test reads or writes the build machine's `/etc`. The one helper every such test uses.
//!
//! How: `unshare --mount` (root), mounts made private, a tmpfs for scratch, an overlay on
//! `/etc` whose upper layer lives in that tmpfs (so the missing `/etc/tokenxchange` can be
//! created without touching the real `/etc`), and the temporary directory bind-mounted
//! there. Everything vanishes with the namespace when the command exits. Where a namespace
//! cannot be made (not root, no `unshare`), [`PolicyDir::available`] says so on stderr
//! and the test returns; under `CI=true` it fails instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::temp_dir::TempDir;

/// The policy file's path in the namespace, as the binary knows it.
pub const POLICY_PATH: &str = "/etc/tokenxchange/policy.json";

const SCRIPT: &str = r#"set -e
PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount --make-rprivate /
mount -t tmpfs tokenxchange-test "$1"
mkdir "$1/upper" "$1/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc
mkdir -p /etc/tokenxchange
mount --bind "$0" /etc/tokenxchange
shift
exec env -u PWD "$@""#;

/// A temporary directory that commands made by [`PolicyDir::wrap`] see as
/// `/etc/tokenxchange`; empty (no policy) until a test writes into it.
pub struct PolicyDir {
    dir: TempDir,
    scratch: TempDir,
}

impl Default for PolicyDir {
    fn default() -> PolicyDir {
        PolicyDir::new()
    }
}

impl PolicyDir {
    pub fn new() -> PolicyDir {
        PolicyDir { dir: TempDir::new("etc-tokenxchange"), scratch: TempDir::new("etc-scratch") }
    }

    /// Whether private mount namespaces work here; when not, says on stderr that `test`
    /// is skipped, and panics under `CI=true` (CI runs as root and must run it).
    pub fn available(test: &str) -> bool {
        static WORKS: OnceLock<Result<(), String>> = OnceLock::new();
        let works = WORKS.get_or_init(|| {
            let probe = PolicyDir::new();
            let mut command = Command::new("true");
            command.env_clear();
            match probe.wrap(&command).stdout(Stdio::null()).stderr(Stdio::piped()).output() {
                Ok(output) if output.status.success() => Ok(()),
                Ok(output) => Err(String::from_utf8_lossy(&output.stderr).trim().replace('\n', " ")),
                Err(err) => Err(err.to_string()),
            }
        });
        match works {
            Ok(()) => true,
            Err(why) => {
                crate::skip(test, &format!("a private mount namespace for /etc/tokenxchange ({why})"));
                false
            }
        }
    }

    /// The directory on this machine.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `policy.json` as a plain file.
    pub fn write(&self, policy: &str) -> PathBuf {
        self.dir.write("policy.json", policy)
    }

    /// Writes `policy.json` the way a ConfigMap volume lays it out: the file in a
    /// timestamped directory, `..data` a symlink to that, `policy.json` a symlink to
    /// `..data/policy.json`.
    pub fn write_as_configmap(&self, policy: &str) {
        let stamp = "..2026_12_06_03_00_00.000000001";
        std::fs::create_dir_all(self.dir.join(stamp)).unwrap();
        std::fs::write(self.dir.join(stamp).join("policy.json"), policy).unwrap();
        std::os::unix::fs::symlink(stamp, self.dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/policy.json", self.dir.join("policy.json")).unwrap();
    }

    /// `command` run inside a new private mount namespace where this directory is
    /// `/etc/tokenxchange`. The new command has a clear environment holding only what was
    /// set on `command` (tests run the binary with `env_clear` anyway), its arguments and
    /// no stdin.
    pub fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = Command::new(unshare());
        wrapped.env_clear().stdin(Stdio::null());
        wrapped.args(["--mount", "--", "/bin/sh", "-c", SCRIPT]).arg(self.dir.path()).arg(self.scratch.path());
        wrapped.arg(resolve(command.get_program())).args(command.get_args());
        for (name, value) in command.get_envs() {
            if let Some(value) = value {
                wrapped.env(name, value);
            }
        }
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }
}

/// `unshare` from this process's PATH (the wrapped command's environment has none).
fn unshare() -> PathBuf {
    resolve("unshare".as_ref())
}

/// A program name as an absolute path, searched on this process's PATH.
fn resolve(program: &std::ffi::OsStr) -> PathBuf {
    let path = Path::new(program);
    if path.components().count() > 1 {
        return path.into();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| path.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_appears_at_the_fixed_path_only_inside() {
        if !PolicyDir::available("the PolicyDir test") {
            return;
        }
        let host_had = Path::new("/etc/tokenxchange").exists();
        let policy = PolicyDir::new();
        policy.write_as_configmap(r#"{"clientIDs":["argocd"]}"#);
        let mut cat = Command::new("cat");
        cat.env_clear().env("MARK", "kept").arg(POLICY_PATH);
        let output = policy.wrap(&cat).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8_lossy(&output.stdout), r#"{"clientIDs":["argocd"]}"#);
        let mut env = Command::new("env");
        env.env_clear().env("MARK", "kept");
        let output = policy.wrap(&env).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), "MARK=kept\n");
        // the rest of /etc is still there, and nothing leaked out of the namespace
        let mut hosts = Command::new("test");
        hosts.env_clear().args(["-d", "/etc/ssl"]);
        assert!(policy.wrap(&hosts).status().unwrap().success());
        assert_eq!(Path::new("/etc/tokenxchange").exists(), host_had);
    }
}
