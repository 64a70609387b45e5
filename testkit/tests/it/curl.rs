//! curl against the test servers: runs whose failures print the command and its output.

use std::path::Path;
use std::process::{Command, Output};

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
