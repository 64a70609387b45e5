//! Real kubectl for end-to-end tests: which binaries this machine has, kubeconfig files
//! for them (a static token or an exec plugin as the user), and `kubectl auth whoami`.
//! Tests that find no kubectl [`skip`](crate::skip): a note on stderr, a failure under
//! `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use miniserde::json;

/// The kubectl binaries on this machine, oldest first: every `kubectl.1.NN` beside the file
/// that `kubectl` on PATH resolves to, else that `kubectl` itself; empty when there is none.
pub fn kubectls() -> Vec<PathBuf> {
    let Some(kubectl) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("kubectl"))
        .find(|path| path.is_file())
    else {
        return Vec::new();
    };
    let resolved = std::fs::canonicalize(&kubectl).unwrap_or(kubectl.clone());
    let mut versions: Vec<(u32, PathBuf)> = resolved
        .parent()
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let minor = entry.file_name().to_str()?.strip_prefix("kubectl.1.")?.parse().ok()?;
            Some((minor, entry.path()))
        })
        .collect();
    versions.sort();
    if versions.is_empty() { vec![kubectl] } else { versions.into_iter().map(|(_, path)| path).collect() }
}

/// [`kubectls`]; when there is none, [`skip`](crate::skip)s `test` (a failure under
/// `CI=true`) and returns none.
#[track_caller]
pub fn every_kubectl(test: &str) -> Vec<PathBuf> {
    let found = kubectls();
    if found.is_empty() {
        crate::skip(test, "kubectl on PATH");
    }
    found
}

/// The newest kubectl here; `None` after [`skip`](crate::skip)ping `test` when there is
/// none.
#[track_caller]
pub fn newest_kubectl(test: &str) -> Option<PathBuf> {
    every_kubectl(test).pop()
}

/// `kubectl --kubeconfig KUBECONFIG auth whoami` with only HOME and PATH set; returns
/// (exit code, stdout, stderr).
pub fn whoami(kubectl: &Path, kubeconfig: &Path, home: &Path) -> (Option<i32>, String, String) {
    outcome(whoami_command(kubectl, kubeconfig, home))
}

/// The command [`whoami`] runs, to run it elsewhere (e.g. [`crate::PolicyDir::wrap`]).
pub fn whoami_command(kubectl: &Path, kubeconfig: &Path, home: &Path) -> Command {
    let mut command = Command::new(kubectl);
    command
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["auth", "whoami"])
        .stdin(Stdio::null());
    command
}

/// Runs `command` to its end: (exit code, stdout, stderr).
pub fn outcome(mut command: Command) -> (Option<i32>, String, String) {
    let output = command.output().unwrap_or_else(|e| panic!("run {:?}: {e}", command.get_program()));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A kubeconfig cluster; its context has the same name.
pub struct Cluster<'a> {
    pub name: &'a str,
    pub server: &'a str,
    /// The CA of the server's certificate, PEM; empty: `insecure-skip-tls-verify: true`.
    pub ca_pem: &'a str,
    /// The `client.authentication.k8s.io/exec` extension, as a YAML flow value.
    pub exec_extension: Option<&'a str>,
}

/// The kubeconfig user.
pub enum User<'a> {
    /// A static bearer token.
    Token(&'a str),
    /// An exec credential plugin.
    Exec { api_version: &'a str, command: &'a Path, args: &'a [String], provide_cluster_info: bool },
}

/// A kubeconfig with `clusters`, one user for all of them, a context per cluster, and
/// `current` as the current context.
pub fn kubeconfig(clusters: &[Cluster], user: &User, current: &str) -> String {
    let quote = |text: &str| json::to_string(text);
    let mut out = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    for cluster in clusters {
        out.push_str(&format!("- name: {}\n  cluster:\n    server: {}\n", cluster.name, cluster.server));
        if cluster.ca_pem.is_empty() {
            out.push_str("    insecure-skip-tls-verify: true\n");
        } else {
            out.push_str(&format!("    certificate-authority-data: {}\n", STANDARD.encode(cluster.ca_pem)));
        }
        if let Some(extension) = cluster.exec_extension {
            out.push_str(&format!(
                "    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension: {extension}\n"
            ));
        }
    }
    out.push_str("users:\n- name: user\n  user:\n");
    match user {
        User::Token(token) => out.push_str(&format!("    token: {token}\n")),
        User::Exec { api_version, command, args, provide_cluster_info } => {
            out.push_str(&format!(
                "    exec:\n      apiVersion: {api_version}\n      command: {}\n      interactiveMode: Never\n",
                quote(&command.to_string_lossy())
            ));
            if *provide_cluster_info {
                out.push_str("      provideClusterInfo: true\n");
            }
            out.push_str("      args:\n");
            for arg in args.iter() {
                out.push_str(&format!("      - {}\n", quote(arg)));
            }
        }
    }
    out.push_str("contexts:\n");
    for cluster in clusters {
        out.push_str(&format!("- name: {0}\n  context:\n    cluster: {0}\n    user: user\n", cluster.name));
    }
    out.push_str(&format!("current-context: {current}\n"));
    out
}

/// A kubeconfig for one cluster whose user runs `command args` through `exec`.
pub fn exec_kubeconfig(server: &str, ca_pem: &str, api_version: &str, command: &Path, args: &[String]) -> String {
    let cluster = Cluster { name: "target", server, ca_pem, exec_extension: None };
    kubeconfig(&[cluster], &User::Exec { api_version, command, args, provide_cluster_info: false }, "target")
}

/// A kubeconfig for one cluster whose user presents a static bearer `token`.
pub fn token_kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    let cluster = Cluster { name: "target", server, ca_pem, exec_extension: None };
    kubeconfig(&[cluster], &User::Token(token), "target")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_exec_kubeconfig() {
        let args = ["--client-id=argocd".to_string(), "a \"quoted\" arg".to_string()];
        let config = exec_kubeconfig(
            "https://127.0.0.1:1",
            "PEM",
            "client.authentication.k8s.io/v1",
            Path::new("/bin/tx"),
            &args,
        );
        assert_eq!(
            config,
            r#"apiVersion: v1
kind: Config
clusters:
- name: target
  cluster:
    server: https://127.0.0.1:1
    certificate-authority-data: UEVN
users:
- name: user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: "/bin/tx"
      interactiveMode: Never
      args:
      - "--client-id=argocd"
      - "a \"quoted\" arg"
contexts:
- name: target
  context:
    cluster: target
    user: user
current-context: target
"#
        );
    }

    #[test]
    fn writes_clusters_with_extensions_and_a_token_user() {
        let clusters = [
            Cluster { name: "a", server: "https://a", ca_pem: "A", exec_extension: Some("{audience: x}") },
            Cluster { name: "b", server: "https://b", ca_pem: "B", exec_extension: None },
        ];
        let config = kubeconfig(&clusters, &User::Token("t0k"), "b");
        assert!(config.contains(
            "- name: a\n  cluster:\n    server: https://a\n    certificate-authority-data: QQ==\n    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension: {audience: x}\n- name: b\n"
        ), "{config}");
        assert!(config.contains("users:\n- name: user\n  user:\n    token: t0k\ncontexts:\n"), "{config}");
        assert!(config.ends_with("    cluster: b\n    user: user\ncurrent-context: b\n"), "{config}");
    }
}
