//! What a test needs from this machine beyond Rust: programs (kubectl, setpriv, unshare,
//! chroot, python3), root, a second user. A test that finds one missing calls [`skip`]:
//! on a developer's machine it says so on stderr and returns; under `CI=true` it fails,
//! naming what is missing, because CI (`.ci/run`) installs all of it and a test that
//! passes without running proves nothing.

use std::path::{Path, PathBuf};

/// The second user of the tests that need one (`nobody` on Debian): files are given to
/// it with `chown` and runs made as it with `setpriv`, so only root can do either.
pub const OTHER_UID: u32 = 65534;

/// Says that `test` cannot run because `missing` is absent: on stderr, or, under
/// `CI=true`, as a panic that fails the test. Meant as `return skip(..)`.
#[track_caller]
pub fn skip(test: &str, missing: &str) {
    match verdict(in_ci(), test, missing) {
        Ok(note) => eprintln!("{note}"),
        Err(failure) => panic!("{failure}"),
    }
}

/// Whether this run is CI's: `CI` is `true` (or `1`, `yes`), as CI services set it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| matches!(value.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// The stderr note for a skip (`Ok`), or, in CI, the failure (`Err`).
fn verdict(ci: bool, test: &str, missing: &str) -> Result<String, String> {
    if ci {
        Err(format!("{test} cannot run: {missing} is missing, and CI=true requires it (.ci/run installs it)"))
    } else {
        Ok(format!("{missing} is missing: skipping {test} (under CI=true this fails)"))
    }
}

/// The program `name` on PATH, else in /usr/sbin or /sbin (where `chroot` lives, often
/// off a user's PATH); `None` when there is none.
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// [`program`], or, when it is missing, [`skip`] for `test` and `None`.
#[track_caller]
pub fn need_program(name: &str, test: &str) -> Option<PathBuf> {
    let found = program(name);
    if found.is_none() {
        skip(test, &format!("the program {name}"));
    }
    found
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_a_note_outside_ci_and_a_failure_in_it() {
        assert_eq!(
            verdict(false, "the kubectl test", "kubectl on PATH"),
            Ok("kubectl on PATH is missing: skipping the kubectl test (under CI=true this fails)".into())
        );
        assert_eq!(
            verdict(true, "the kubectl test", "kubectl on PATH"),
            Err("the kubectl test cannot run: kubectl on PATH is missing, and CI=true requires it (.ci/run installs it)"
                .into())
        );
    }

    #[test]
    fn programs_are_found_on_path_and_in_sbin() {
        assert!(program("sh").is_some_and(|path| path.ends_with("sh")));
        assert_eq!(program("no-such-program-here"), None);
    }
}
