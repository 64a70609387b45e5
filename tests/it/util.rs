//! Running the built binary the way client-go does: a clean environment, a temporary
//! HOME, arguments and variables given explicitly; and reading what it did.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use miniserde::json::{self, Value};
use testkit::{Dex, DexConfig};

pub const BIN: &str = env!("CARGO_BIN_EXE_tokenxchange");
pub const CLIENT_ID: &str = "argocd";
pub const CLIENT_SECRET: &str = "s3cr+t/=%:x";
pub const SA_NAME: &str = "system:serviceaccount:argocd:argocd-application-controller";
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tokenxchange-it-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

pub fn claim_str(claims: &json::Object, name: &str) -> Option<String> {
    match claims.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

pub fn claim_int(claims: &json::Object, name: &str) -> Option<i64> {
    match claims.get(name) {
        Some(Value::Number(json::Number::U64(n))) => Some(*n as i64),
        Some(Value::Number(json::Number::I64(n))) => Some(*n),
        Some(Value::Number(json::Number::F64(n))) => Some(*n as i64),
        _ => None,
    }
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` into Unix seconds.
pub fn parse_rfc3339(text: &str) -> i64 {
    let b = text.as_bytes();
    assert!(text.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z', "not RFC 3339 UTC seconds: {text}");
    let n = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3_600 + n(14..16) * 60 + n(17..19)
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

    /// The binary with a clean environment (HOME in the temp dir) and no arguments.
    pub fn bare(&self) -> Cmd {
        Cmd::new(self.dir.join("home"))
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

/// A command line under construction.
pub struct Cmd {
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    home: PathBuf,
}

impl Cmd {
    pub fn new(home: PathBuf) -> Cmd {
        Cmd { args: Vec::new(), envs: Vec::new(), home }
    }

    pub fn arg(&mut self, arg: impl Into<OsString>) -> &mut Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(&mut self, args: I) -> &mut Cmd {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(&mut self, name: &str, value: impl Into<OsString>) -> &mut Cmd {
        self.envs.push((name.into(), value.into()));
        self
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command.env_clear().env("HOME", &self.home).args(&self.args).stdin(Stdio::null());
        for (name, value) in &self.envs {
            command.env(name, value);
        }
        command
    }

    pub fn describe(&self) -> String {
        let mut text: String =
            self.envs.iter().map(|(k, v)| format!("{}={} ", k.to_string_lossy(), v.to_string_lossy())).collect();
        text.push_str(BIN);
        for arg in &self.args {
            text.push(' ');
            text.push_str(&arg.to_string_lossy());
        }
        text
    }

    pub fn run(&self) -> Run {
        let started = Instant::now();
        let output = self.command().output().expect("run tokenxchange");
        Run::from_output(self.describe(), output, started.elapsed())
    }
}

/// The kubectl binaries on this machine: every `kubectl.1.NN` beside the dispatcher that
/// `kubectl` on PATH resolves to, else that `kubectl` itself; empty when there is none.
pub fn kubectls() -> Vec<PathBuf> {
    let Some(kubectl) = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
    else {
        return Vec::new();
    };
    let resolved = std::fs::canonicalize(&kubectl).unwrap_or(kubectl.clone());
    let mut versioned: Vec<PathBuf> = resolved
        .parent()
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("kubectl.1.")))
        .collect();
    versioned.sort_by_key(|p| {
        p.file_name().and_then(|n| n.to_str()).and_then(|n| n.rsplit('.').next()).and_then(|m| m.parse::<u32>().ok())
    });
    if versioned.is_empty() { vec![kubectl] } else { versioned }
}

/// A kubeconfig whose user runs tokenxchange through `exec`.
pub fn kubeconfig(server: &str, server_ca_pem: &str, api_version: &str, command: &Path, args: &[String]) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(server_ca_pem);
    let args: String = args.iter().map(|a| format!("\n      - {}", json::to_string(a))).collect();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: target
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: argocd
  user:
    exec:
      apiVersion: {api_version}
      command: {command}
      interactiveMode: Never
      args:{args}
contexts:
- name: target
  context:
    cluster: target
    user: argocd
current-context: target
",
        command = json::to_string(&command.to_string_lossy().into_owned()),
    )
}
