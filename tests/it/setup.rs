//! `tokenxchange setup`: golden files of its YAML and JSON for fixed inputs (reviewed by
//! eye; rewritten only by `TOKENXCHANGE_BLESS=1 cargo test --test it setup::`), and one
//! test per bad-input rule: exit 2, one line, nothing on stdout.

use std::path::{Path, PathBuf};

use crate::util::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/setup").join(name)
}

fn setup(args: &[&str]) -> Run {
    let home = TempDir::new("setup-home");
    let mut cmd = Cmd::new(home.path().into());
    // relative --target-ca paths are read from the fixtures directory; the watchdog kills
    // a run that blocks
    cmd.arg("setup").args(args).run_at(&fixture(""))
}

const DEX: &[&str] = &[
    "--issuer=https://dex.example.com",
    "--dex-connector=kubernetes",
    "--client-id=argocd",
    "--source-issuer=https://source.example.com:6443",
    "--target=prod-eu=https://prod-eu.example.com:6443",
    "--target-ca=prod-eu=prod-eu-ca.pem",
    "--target=prod-us=https://10.0.0.1",
];

const DIRECT: &[&str] = &[
    "--direct",
    "--source-issuer=https://source.example.com:6443",
    "--target=prod-eu=https://prod-eu.example.com:6443",
    "--target-ca=prod-eu=prod-eu-ca.pem",
    "--target=prod-us=https://10.0.0.1",
];

/// Compares `run`'s stdout with the golden file, or rewrites the file under
/// TOKENXCHANGE_BLESS=1.
fn golden(run: &Run, name: &str) {
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.is_empty(), "{run}");
    let path = fixture(name);
    if std::env::var_os("TOKENXCHANGE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &run.stdout).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with TOKENXCHANGE_BLESS=1)", path.display()));
    if run.stdout != expected {
        let line = run.stdout.lines().zip(expected.lines()).position(|(a, b)| a != b);
        panic!(
            "{} differs from the output (first at line {}); review, then TOKENXCHANGE_BLESS=1 cargo test --test it setup::\n{run}",
            path.display(),
            line.map_or("end".into(), |l| (l + 1).to_string())
        );
    }
}

#[test]
fn dex_documents_match_the_golden_files() {
    golden(&setup(DEX), "dex.yaml");
    golden(&setup(&[DEX, &["-o", "json"]].concat()), "dex.json");
}

#[test]
fn direct_documents_match_the_golden_files() {
    golden(&setup(DIRECT), "direct.yaml");
    golden(&setup(&[DIRECT, &["--output=json"]].concat()), "direct.json");
}

/// `-o json` is one JSON list holding as many documents as the YAML stream, and the
/// policy inside its ConfigMap is JSON binding each server to its audience.
#[test]
fn json_is_a_list_of_the_yaml_documents() {
    use miniserde::json::{self, Value};
    let yaml = setup(DEX).stdout;
    let list: Value = json::from_str(&setup(&[DEX, &["-o", "json"]].concat()).stdout).expect("-o json is JSON");
    let Value::Array(list) = list else { panic!("not a list") };
    assert_eq!(list.len(), yaml.matches("---\n").count(), "one JSON item per YAML document");
    let get = |value: &Value, key: &str| match value {
        Value::Object(object) => object.get(key).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let config_map = list.iter().find(|d| matches!(get(d, "kind"), Value::String(k) if k == "ConfigMap")).unwrap();
    let Value::String(policy) = get(&get(config_map, "data"), "policy.json") else { panic!("no policy.json") };
    let policy: Value = json::from_str(&policy).expect("policy.json is JSON");
    assert_eq!(
        json::to_string(&get(&policy, "clusters")),
        format!(
            r#"{{"https://10.0.0.1":{{"audiences":["prod-us"]}},"https://prod-eu.example.com:6443":{{"audiences":["prod-eu"],"certificateAuthorityData":"{}"}}}}"#,
            base64_of(&std::fs::read(fixture("prod-eu-ca.pem")).unwrap())
        )
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn bad(args: &[&str], needle: &str) {
    let run = setup(args);
    run.failure(2, needle, &[]);
}

fn with(base: &[&str], replace: &str, by: &str) -> Vec<String> {
    let key = replace.split('=').next().unwrap();
    let mut out: Vec<String> =
        base.iter().filter(|a| !a.starts_with(&format!("{key}="))).map(|a| a.to_string()).collect();
    if !by.is_empty() {
        out.push(by.into());
    }
    out
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn non_https_urls_are_refused() {
    bad(&strs(&with(DEX, "--issuer", "--issuer=http://dex.example.com")), "invalid --issuer 'http://dex.example.com'");
    // loopback http is fine for the plugin, never for what an API server or Argo CD reads
    bad(&strs(&with(DEX, "--issuer", "--issuer=http://127.0.0.1:5556/dex")), "invalid --issuer");
    bad(
        &strs(&with(DEX, "--source-issuer", "--source-issuer=http://source.example.com")),
        "invalid --source-issuer 'http://source.example.com'",
    );
    let mut args = DEX.to_vec();
    args.push("--target=dev=http://dev.example.com");
    bad(&args, "invalid --target 'dev=http://dev.example.com'");
    bad(&strs(&with(DEX, "--issuer", "--issuer=https://dex.example.com/?x=1")), "only https://HOST[:PORT][/PATH]");
    // a server the policy file could not take as a clusters key: the generated policy
    // would fail to load and refuse every run
    for server in [
        "https://b.example.com/a/../b",
        "https://b.example.com//",
        "https://b.example.com/%2e",
        "https://b.example.com/./x",
    ] {
        let target = format!("--target=b={server}");
        bad(&[DEX, &[target.as_str()]].concat(), &format!("invalid --target 'b={server}'"));
    }
}

#[test]
fn a_target_listed_twice_is_refused() {
    let mut args = DEX.to_vec();
    args.push("--target=prod-eu=https://other.example.com");
    bad(&args, "the name prod-eu is given twice");
    let mut args = DEX.to_vec();
    args.push("--target=again=https://PROD-EU.example.com:6443/");
    bad(&args, "this API server is already target prod-eu");
    // the same server as the policy file compares them (default port, one final /)
    let mut args = DEX.to_vec();
    args.push("--target=again=https://10.0.0.1:443/");
    bad(&args, "this API server is already target prod-us");
    let mut args = DEX.to_vec();
    args.push("--target-ca=prod-eu=prod-eu-ca.pem");
    bad(&args, "this target's CA is given twice");
}

#[test]
fn names_that_are_not_kubernetes_names_are_refused() {
    let mut args = DEX.to_vec();
    args.push("--target=Prod_EU=https://x.example.com");
    bad(&args, "invalid --target name 'Prod_EU': not a Kubernetes name");
    bad(&[DEX, &["--namespace=argo cd"]].concat(), "invalid --namespace 'argo cd': not a Kubernetes name");
    bad(&[DEX, &["--server-service-account=-x"]].concat(), "invalid --server-service-account '-x'");
    let mut args = DEX.to_vec();
    args.push("--target=argocd=https://x.example.com");
    bad(&args, "the name is also --client-id");
}

#[test]
fn a_ca_file_that_is_not_pem_is_refused() {
    let dir = TempDir::new("setup-ca");
    let not_pem = dir.write("not-pem", "just text\n");
    let key = dir.write("key.pem", "-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n");
    for (file, needle) in [(&not_pem, "not PEM: no CERTIFICATE block"), (&key, "not a CERTIFICATE")] {
        let ca = format!("--target-ca=prod-eu={}", file.display());
        let run = setup(&strs(&with(DEX, "--target-ca", &ca)));
        run.failure(2, needle, &[]);
        assert!(!run.stderr.contains("MAMCAQE"), "{run}");
    }
    bad(
        &strs(&with(DEX, "--target-ca", "--target-ca=prod-eu=/nonexistent/ca.pem")),
        "cannot use CA file /nonexistent/ca.pem",
    );
    bad(&strs(&with(DEX, "--target-ca", "--target-ca=prod-eu=/dev")), "cannot use CA file /dev");
    // a FIFO nobody writes to is refused at once, not waited on; a huge file is not read
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let ca = format!("--target-ca=prod-eu={}", fifo.display());
    setup(&strs(&with(DEX, "--target-ca", &ca))).failure(2, "not a regular file", &[]).ended_within(DEFAULT_TIMEOUT);
    let huge = dir.write("huge.pem", "A".repeat(2 << 20));
    let ca = format!("--target-ca=prod-eu={}", huge.display());
    bad(&strs(&with(DEX, "--target-ca", &ca)), "larger than 1024 KiB");
    bad(&strs(&with(DEX, "--target-ca", "--target-ca=staging=prod-eu-ca.pem")), "no --target has this name");
}

#[test]
fn missing_and_misplaced_inputs_are_refused() {
    bad(&strs(&with(DEX, "--issuer", "")), "setup needs --issuer");
    bad(&strs(&with(DEX, "--source-issuer", "")), "setup needs --source-issuer");
    let no_targets: Vec<&str> = DEX.iter().copied().filter(|a| !a.starts_with("--target")).collect();
    bad(&no_targets, "setup needs at least one --target NAME=URL");
    bad(
        &[DEX, &["--direct"]].concat(),
        "setup --direct wires no Dex, so --issuer, --dex-connector, --client-id cannot go with it",
    );
    bad(&[DEX, &["-o", "text"]].concat(), "invalid -o 'text': use yaml or json");
    bad(&[DEX, &["--username-claim=a.b"]].concat(), "invalid --username-claim 'a.b'");
    bad(&[DEX, &["--timeout=5s"]].concat(), "--timeout belongs to get-token and inspect, not setup");
    bad(&[DEX, &["extra"]].concat(), "unexpected argument 'extra' for setup");
    let mut args = DEX.to_vec();
    args.push("--target=noequals");
    bad(&args, "expected NAME=URL");
}

/// What a user types is quoted wherever it lands: a prefix full of YAML syntax stays one
/// string in the YAML and in the JSON inside it.
#[test]
fn typed_values_cannot_change_the_structure() {
    let run = setup(&[DEX, &["--username-prefix=x\" # y: z\\"]].concat());
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("        prefix: \"x\\\" # y: z\\\\\"\n"), "{run}");
    assert!(
        run.stdout
            .contains("    name: \"x\\\" # y: z\\\\system:serviceaccount:argocd:argocd-application-controller\"\n"),
        "{run}"
    );
    bad(&[DEX, &["--username-prefix=a\nkind: Pod"]].concat(), "invalid --username-prefix: control characters");
    // what YAML readers take for a line break, or refuse, has no place in a username:
    // kubectl's YAML writer fails on it even where the reader got it right
    for c in ['\u{2028}', '\u{2029}', '\u{feff}', '\u{fffe}', '\u{ffff}'] {
        let prefix = format!("--username-prefix=a{c}b:");
        bad(&[DEX, &[prefix.as_str()]].concat(), "invalid --username-prefix: control characters");
        let connector = format!("--dex-connector=k{c}");
        bad(&strs(&with(DEX, "--dex-connector", &connector)), "invalid --dex-connector");
    }
}

/// The component (and the Helm values) already ship a ConfigMap `tokenxchange-policy`
/// with the kit's example policy: the generated one must say that it replaces that file,
/// or the two fight and the example one refuses every run.
#[test]
fn the_policy_says_which_kit_file_it_replaces() {
    for (args, file) in [(DEX, "deploy/argocd/component/policy.yaml"), (DIRECT, "deploy/direct/component/policy.yaml")]
    {
        let run = setup(args);
        assert_eq!(run.code, Some(0), "{run}");
        let policy = run.stdout.rsplit("---\n").next().unwrap();
        let comment: String =
            policy.lines().take_while(|l| l.starts_with("# ")).map(|l| &l[2..]).collect::<Vec<_>>().join(" ");
        assert!(comment.contains(&format!("in place of {file}")), "{comment}");
        assert!(comment.contains("extraObjects of deploy/argocd/helm-values.yaml"), "{comment}");
    }
}

/// Two Argo CD instances (namespaces) wired to one target: `kubectl apply` of the second's
/// RBAC must not replace the first's bindings, so the cluster-scoped names carry the
/// namespace (the default namespace keeps the names of the golden files).
#[test]
fn cluster_scoped_names_carry_the_namespace() {
    let run = setup(&[DEX, &["--namespace=team-b"]].concat());
    assert_eq!(run.code, Some(0), "{run}");
    for name in ["tokenxchange-team-b-application-controller", "tokenxchange-team-b-server"] {
        assert!(run.stdout.contains(&format!("  name: \"{name}\"\n")), "{name}\n{run}");
    }
    assert!(!run.stdout.contains("tokenxchange-argocd-"), "{run}");
}
