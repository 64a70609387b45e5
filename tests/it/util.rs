//! Running the built binary the way client-go does: a clean environment, a temporary
//! HOME, arguments and variables given explicitly; and reading what it did. What tests
//! share beyond this binary (temp dirs, claims, the clock, kubectl) lives in testkit and
//! is re-exported here.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use miniserde::json::{self, Value};
use testkit::{Dex, DexConfig};

pub use testkit::exec_kubeconfig as kubeconfig;
pub use testkit::{
    PolicyDir, TempDir, claim_int, claim_str, files_with, mkfifo, need_program, now, parse_rfc3339, skip,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_tokenxchange");
pub const CLIENT_ID: &str = "argocd";
pub const CLIENT_SECRET: &str = "s3cr+t/=%:x";
pub const SA_NAME: &str = "system:serviceaccount:argocd:argocd-application-controller";
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// A finished run of the binary.
pub struct Run {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Failure reports show the run with the issued token and the client secret blanked, so
/// no credential lands in a test log.
impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stdout = match Credential::parse(&self.stdout) {
            Ok(credential) => {
                self.stdout.replace(&credential.token, &format!("<token of {} bytes>", credential.token.len()))
            }
            Err(_) => self.stdout.clone(),
        };
        write!(
            f,
            "command: {}\nexit: {:?}\nstdout: {stdout}\nstderr: {}",
            self.command.replace(CLIENT_SECRET, "***"),
            self.code,
            self.stderr
        )
    }
}

impl Run {
    pub fn from_output(command: String, output: Output, elapsed: Duration) -> Run {
        Run {
            command,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        }
    }

    /// Exit 0, one ExecCredential on stdout, nothing on stderr.
    pub fn success(&self) -> Credential {
        assert_eq!(self.code, Some(0), "expected success\n{self}");
        assert!(self.stderr.is_empty(), "stderr must stay empty on success\n{self}");
        Credential::parse(&self.stdout).unwrap_or_else(|why| panic!("{why}\n{self}"))
    }

    /// Exit `code`, nothing on stdout, one `tokenxchange: error:` line on stderr holding
    /// `needle` and none of `secrets`.
    pub fn failure(&self, code: i32, needle: &str, secrets: &[&str]) -> &Run {
        assert_eq!(self.code, Some(code), "expected exit {code}\n{self}");
        assert!(self.stdout.is_empty(), "stdout must stay empty on failure\n{self}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected exactly one stderr line\n{self}");
        assert!(lines[0].starts_with("tokenxchange: error: "), "{self}");
        assert!(lines[0].contains(needle), "stderr lacks {needle:?}\n{self}");
        self.no_secrets(secrets);
        self
    }

    /// Ended within `timeout` plus [`SLACK`]: the run gave up in time, however loaded
    /// the machine. (Never a bound on how fast it works: that would race the clock.)
    pub fn ended_within(&self, timeout: Duration) -> &Run {
        assert!(
            self.elapsed < timeout + SLACK,
            "ran {:?}: more than the timeout of {timeout:?} plus {SLACK:?} of slack\n{self}",
            self.elapsed
        );
        self
    }

    pub fn no_secrets(&self, secrets: &[&str]) {
        for secret in secrets.iter().filter(|s| s.len() >= 4) {
            assert!(!self.stderr.contains(secret), "stderr leaks a secret\n{self}");
        }
    }
}

/// The parsed ExecCredential (its Debug leaves the token out).
pub struct Credential {
    pub api_version: String,
    pub token: String,
    pub expiration: Option<String>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credential({}, token of {} bytes, expires {:?})",
            self.api_version,
            self.token.len(),
            self.expiration
        )
    }
}

impl Credential {
    pub fn parse(stdout: &str) -> Result<Credential, String> {
        let text = stdout.strip_suffix('\n').ok_or("stdout must end with one newline")?;
        if text.contains('\n') {
            return Err("stdout must hold exactly one line".into());
        }
        let Value::Object(root) = json::from_str::<Value>(text).map_err(|_| "stdout is not JSON")? else {
            return Err("stdout is not a JSON object".into());
        };
        let string = |v: Option<&Value>| match v {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        if string(root.get("kind")).as_deref() != Some("ExecCredential") {
            return Err("kind is not ExecCredential".into());
        }
        let Some(Value::Object(status)) = root.get("status") else { return Err("no status".into()) };
        Ok(Credential {
            api_version: string(root.get("apiVersion")).ok_or("no apiVersion")?,
            token: string(status.get("token")).ok_or("no status.token")?,
            expiration: string(status.get("expirationTimestamp")),
        })
    }

    /// The issued JWT's claims, after checking Dex's signature.
    pub fn claims(&self) -> json::Object {
        let payload = testkit::SigningKey::dex().verify(&self.token).expect("token signed by the test Dex");
        match json::from_str::<Value>(&payload).unwrap() {
            Value::Object(claims) => claims,
            _ => panic!("claims are not an object"),
        }
    }
}

/// A test Dex plus the files a run needs: CA, subject token, HOME.
pub struct Env {
    pub dex: Dex,
    pub dir: TempDir,
    pub ca: PathBuf,
    pub token_file: PathBuf,
    pub subject: String,
}

impl Env {
    pub fn new() -> Env {
        Env::with(DexConfig::default())
    }

    pub fn with(config: DexConfig) -> Env {
        Env::with_dex(Dex::start(config))
    }

    pub fn with_dex(dex: Dex) -> Env {
        let dir = TempDir::new("env");
        let ca = dir.write("dex-ca.pem", dex.ca_pem());
        let subject = testkit::mint_sa_token("argocd", "argocd-application-controller", "dex", 3600);
        let token_file = dir.write("token", format!("{subject}\n"));
        std::fs::create_dir_all(dir.join("home")).unwrap();
        Env { dex, dir, ca, token_file, subject }
    }

    /// HOME of the runs.
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// The cache directory under HOME that runs use by default.
    pub fn cache_dir(&self) -> PathBuf {
        testkit::default_cache_dir(&self.home())
    }

    /// The binary with a clean environment (HOME in the temp dir) and no arguments.
    pub fn bare(&self) -> Cmd {
        Cmd::new(self.home())
    }

    /// The binary with the standard flags: endpoint, client, connector, token file, CA;
    /// the cache off.
    pub fn cmd(&self) -> Cmd {
        let mut cmd = self.cached();
        cmd.arg("--no-cache");
        cmd
    }

    /// The standard flags with the default cache (under the temporary HOME).
    pub fn cached(&self) -> Cmd {
        let mut cmd = self.client(format!("--oidc-endpoint={}", self.dex.token_endpoint()));
        cmd.arg("--certificate-authority").arg(&self.ca);
        cmd
    }

    /// The standard flags without a CA (the cache off): the test Dex is not trusted.
    pub fn untrusted(&self) -> Cmd {
        let mut cmd = self.client(format!("--oidc-endpoint={}", self.dex.token_endpoint()));
        cmd.arg("--no-cache");
        cmd
    }

    /// The standard flags with `--issuer` instead of the token endpoint, the CA, and the
    /// default cache.
    pub fn issuer(&self) -> Cmd {
        let mut cmd = self.client(format!("--issuer={}", self.dex.issuer()));
        cmd.arg("--certificate-authority").arg(&self.ca);
        cmd
    }

    /// `endpoint_flag`, client id and secret, connector and token file.
    fn client(&self, endpoint_flag: String) -> Cmd {
        let mut cmd = self.bare();
        cmd.arg(endpoint_flag)
            .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--dex-connector", "kubernetes"])
            .arg("--token-file")
            .arg(&self.token_file);
        cmd
    }

    /// Writes a newly minted ServiceAccount token into the token file, as the kubelet
    /// does on rotation; returns it.
    pub fn rotate_token(&self) -> String {
        let rotated = testkit::mint_sa_token("argocd", "argocd-application-controller", "dex", 7200);
        std::fs::write(&self.token_file, &rotated).unwrap();
        rotated
    }

    /// Secrets that must never reach stderr.
    pub fn secrets(&self) -> Vec<&str> {
        vec![self.subject.as_str(), CLIENT_SECRET]
    }
}

/// No run of the binary in a test may take longer than this (runs get `--timeout` 20 s
/// at most, and the default is 15 s).
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// The timeout of a run without `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// How much longer than its timeout a run may take before a test calls it stuck: process
/// start-up and exit on a loaded two-core machine, several times over.
pub const SLACK: Duration = Duration::from_secs(10);

/// The binary, under construction: a [`Command`] with a clean environment, HOME in a
/// temporary directory, and stdin from /dev/null.
pub struct Cmd(Command);

impl Cmd {
    pub fn new(home: PathBuf) -> Cmd {
        let mut command = Command::new(BIN);
        command.env_clear().env("HOME", home).stdin(Stdio::null());
        Cmd(command)
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Cmd {
        self.0.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&mut self, args: I) -> &mut Cmd {
        self.0.args(args);
        self
    }

    pub fn env(&mut self, name: &str, value: impl AsRef<OsStr>) -> &mut Cmd {
        self.0.env(name, value);
        self
    }

    /// A fresh [`Command`] for this run (to spawn it, or to pipe its output).
    pub fn command(&self) -> Command {
        let mut command = Command::new(self.0.get_program());
        command.env_clear().args(self.0.get_args()).stdin(Stdio::null());
        for (name, value) in self.0.get_envs() {
            if let Some(value) = value {
                command.env(name, value);
            }
        }
        command
    }

    /// `NAME=value ... BIN args`, as a shell would show it (HOME included).
    pub fn describe(&self) -> String {
        let envs = self.0.get_envs().filter_map(|(name, value)| Some((name, value?)));
        let words = envs
            .map(|(name, value)| format!("{}={}", name.to_string_lossy(), value.to_string_lossy()))
            .chain([self.0.get_program().to_string_lossy().into_owned()])
            .chain(self.0.get_args().map(|arg| arg.to_string_lossy().into_owned()));
        words.collect::<Vec<_>>().join(" ")
    }

    /// Runs the binary to its end, or kills it after [`WATCHDOG`]: a run that blocks
    /// (a regression of the never-block rules) fails its test with the command shown
    /// instead of hanging the suite.
    pub fn run(&self) -> Run {
        self.run_command(self.command())
    }

    /// [`Cmd::run`] in the working directory `dir`.
    pub fn run_at(&self, dir: &std::path::Path) -> Run {
        let mut command = self.command();
        command.current_dir(dir);
        self.run_command(command)
    }

    /// [`Cmd::run`] in a private mount namespace where `policy` is `/etc/tokenxchange`.
    pub fn run_in(&self, policy: &PolicyDir) -> Run {
        self.run_command(policy.wrap(&self.command()))
    }

    fn run_command(&self, mut command: Command) -> Run {
        let started = Instant::now();
        let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run tokenxchange");
        let pid = child.id();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if wait.recv_timeout(WATCHDOG).is_err() {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        });
        let output = child.wait_with_output().expect("wait for tokenxchange");
        let _ = done.send(());
        let _ = watchdog.join();
        let mut run = Run::from_output(self.describe(), output, started.elapsed());
        if run.elapsed >= WATCHDOG {
            run.stderr.push_str(&format!("\n[killed by the test watchdog after {} s]", WATCHDOG.as_secs()));
        }
        run
    }
}

/// What `--version` prints: the version, and the revision the build recorded (these tests
/// are built in the same cargo run as the binary, with the same TOKENXCHANGE_BUILD_REVISION):
/// 40 hex digits of HEAD, `-dirty` after them for uncommitted changes, or `unknown`.
pub fn version_line() -> String {
    let revision = option_env!("TOKENXCHANGE_BUILD_REVISION").unwrap_or("unknown");
    let hex = revision.strip_suffix("-dirty").unwrap_or(revision);
    let commit = hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(revision == "unknown" || commit, "TOKENXCHANGE_BUILD_REVISION={revision:?}");
    format!("tokenxchange {} (revision {revision})\n", env!("CARGO_PKG_VERSION"))
}
