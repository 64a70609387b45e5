//! Helpers for the tests: a temporary directory that removes itself, and curl runs whose
//! failures print the command and its output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("testkit-it-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What curl reported: exit code, HTTP status (0 when none), body.
pub struct Curl {
    pub code: i32,
    pub status: u16,
    pub body: String,
    pub stderr: String,
}

/// Runs `curl -sS` with `args` plus `--cacert ca`, writing the status after the body.
pub fn curl(ca: &Path, args: &[&str]) -> Curl {
    let mut command = Command::new("curl");
    command.env_clear().args(["-sS", "--max-time", "20", "--cacert"]).arg(ca).args(["-w", "\n%{http_code}"]).args(args);
    let output: Output = command.output().expect("run curl");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let result = Curl {
        code: output.status.code().unwrap_or(-1),
        status: status.trim().parse().unwrap_or(0),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    eprintln!("{command:?}\n  exit {} status {} stderr {}", result.code, result.status, result.stderr.trim());
    result
}
