//! `tokenxchange setup`: every document that wires N target clusters, printed from one
//! set of facts so that the six places which must agree (Dex's connector, Dex's clients,
//! each target's AuthenticationConfiguration and RBAC, Argo CD's cluster Secrets and the
//! operator policy) cannot disagree.
//!
//! [`plan`] checks the command line's [`Options`] into a [`Plan`] (reading only the
//! `--target-ca` files); [`documents`] and [`render`] are pure functions of the plan. It
//! never contacts a cluster or Dex. The shapes follow the deploy kit (deploy/), whose
//! checks (scripts/check-deploy) also run over this output.

use std::io;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{PemObject, SectionKind};

use crate::error::Error;
use crate::policy;
use crate::redact;
use crate::url::Url;
use crate::yaml::{self, Node, map, str, strs};

/// Where the component (deploy/argocd/component) puts the binary and the files.
const COMMAND: &str = "/usr/local/bin/tokenxchange";
const FILES: &str = "/var/run/secrets/tokenxchange/";
const TOKEN_FILE: &str = "/var/run/secrets/tokenxchange/token";
const CLIENT_SECRET_FILE: &str = "/var/run/secrets/tokenxchange/client-secret";
/// The variable Dex reads the Argo CD client's secret from (deploy/dex/deployment-patch.yaml).
const DEX_SECRET_ENV: &str = "DEX_ARGOCD_CLIENT_SECRET";
/// The CA of the source API server, where Dex runs in the source cluster.
const SOURCE_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
const POLICY_CONFIGMAP: &str = "tokenxchange-policy";
const POLICY_DIR: &str = "/etc/tokenxchange/";
const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1";
const AUTHENTICATION_API_VERSION: &str = "apiserver.config.k8s.io/v1beta1";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The lifetime of the projected tokens of `--direct` (the kubelet renews them at 80%).
const TOKEN_SECONDS: i64 = 3600;

/// The rules of upstream Argo CD's `argocd-server` ClusterRole (v3.5.1 install.yaml):
/// API groups, resources, verbs. scripts/check-deploy compares them with that file.
const ARGOCD_SERVER_RULES: &[(&[&str], &[&str], &[&str])] = &[
    (&["*"], &["*"], &["delete", "get", "patch"]),
    (&[""], &["events"], &["list"]),
    (&[""], &["pods", "pods/log"], &["get"]),
    (&["argoproj.io"], &["applications", "applicationsets"], &["get", "list", "watch"]),
    (&["batch"], &["jobs"], &["create"]),
    (&["argoproj.io"], &["workflows"], &["create"]),
];

/// `setup`'s flags as given, before any check.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Options {
    pub issuer: Option<String>,
    pub connector: Option<String>,
    pub client_id: Option<String>,
    pub source_issuer: Option<String>,
    /// `NAME=URL`, in order.
    pub targets: Vec<String>,
    /// `NAME=FILE`.
    pub target_cas: Vec<String>,
    pub direct: bool,
    pub namespace: Option<String>,
    pub controller: Option<String>,
    pub server: Option<String>,
    pub username_claim: Option<String>,
    pub username_prefix: Option<String>,
    pub output: Option<String>,
}

/// Everything the documents are made of, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `None` with `--direct`.
    pub dex: Option<Dex>,
    /// The source cluster's ServiceAccount issuer.
    pub source_issuer: String,
    pub namespace: String,
    /// The ServiceAccounts of argocd-application-controller and argocd-server.
    pub controller: String,
    pub server: String,
    pub username_claim: String,
    pub username_prefix: String,
    pub targets: Vec<Target>,
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dex {
    pub issuer: String,
    pub connector: String,
    pub client_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// A Kubernetes name: the audience, the Dex client id, the Secret's suffix.
    pub name: String,
    /// The API server URL, as given.
    pub server: String,
    /// The CA certificates of `--target-ca`, re-encoded as PEM.
    pub ca_pem: Option<String>,
}

impl Plan {
    /// The Kubernetes username of a ServiceAccount of the source cluster on a target.
    fn username(&self, service_account: &str) -> String {
        format!("{}{}", self.username_prefix, self.service_account(service_account))
    }

    fn service_account(&self, name: &str) -> String {
        format!("system:serviceaccount:{}:{name}", self.namespace)
    }

    /// The file the plugin reads the subject token from for `target`.
    fn token_file(&self, target: &Target) -> String {
        match self.dex {
            Some(_) => TOKEN_FILE.into(),
            None => format!("{FILES}token-{}", target.name),
        }
    }
}

/// Checks `options` into a [`Plan`]; `read` reads a `--target-ca` file.
pub fn plan(options: Options, read: &dyn Fn(&Path) -> io::Result<Vec<u8>>) -> Result<Plan, Error> {
    let direct = options.direct;
    let dex = if direct {
        None
    } else {
        let required = |value: Option<String>, flag: &str, what: &str| {
            value.ok_or_else(|| Error::Usage(format!("setup needs {flag} ({what}), or --direct for no Dex")))
        };
        let issuer = required(options.issuer, "--issuer", "Dex's issuer URL")?;
        let issuer = https(&issuer, "--issuer")?;
        let connector = required(options.connector, "--dex-connector", "the id of Dex's oidc connector")?;
        let client_id = required(options.client_id, "--client-id", "Argo CD's Dex client")?;
        Some(Dex {
            issuer,
            connector: dex_id(connector, "--dex-connector")?,
            client_id: dex_id(client_id, "--client-id")?,
        })
    };
    let source_issuer = options.source_issuer.ok_or_else(|| {
        Error::Usage("setup needs --source-issuer (the source cluster's --service-account-issuer URL)".into())
    })?;
    let source_issuer = https(&source_issuer, "--source-issuer")?;
    let namespace = kubernetes_name(options.namespace.unwrap_or("argocd".into()), "--namespace", 63)?;
    let controller = kubernetes_name(
        options.controller.unwrap_or("argocd-application-controller".into()),
        "--controller-service-account",
        253,
    )?;
    let server = kubernetes_name(options.server.unwrap_or("argocd-server".into()), "--server-service-account", 253)?;
    let (default_claim, default_prefix) = if direct { ("sub", "source:") } else { ("name", "oidc:") };
    let username_claim = claim(options.username_claim.unwrap_or(default_claim.into()))?;
    let username_prefix = options.username_prefix.unwrap_or(default_prefix.into());
    if username_prefix.chars().any(|c| c.is_control() || yaml::special(c)) {
        return Err(Error::Usage("invalid --username-prefix: control characters or line separators".into()));
    }
    let json = match options.output.as_deref() {
        None | Some("yaml") => false,
        Some("json") => true,
        Some(other) => {
            return Err(Error::Usage(format!("invalid -o '{}': use yaml or json", redact::echo(other.as_bytes(), 50))));
        }
    };

    let mut targets: Vec<Target> = Vec::new();
    for given in &options.targets {
        let invalid =
            |why: &str| Error::Usage(format!("invalid --target '{}': {why}", redact::echo(given.as_bytes(), 200)));
        let (name, server) = given.split_once('=').ok_or_else(|| invalid("expected NAME=URL"))?;
        let name = kubernetes_name(name.to_string(), "--target name", 63)?;
        // the policy's clusters keys are read as policy::server_key reads them: a server it
        // cannot read would make the generated policy refuse every run
        if https(server, "--target URL").is_err() || policy::server_key(server).is_none() {
            return Err(invalid(
                "the API server URL must be https://HOST[:PORT][/PATH], without dot or empty path segments or % escapes",
            ));
        }
        if let Some(same) = targets.iter().find(|t| t.name == name) {
            return Err(invalid(&format!("the name {} is given twice", same.name)));
        }
        if let Some(same) = targets.iter().find(|t| same_server(&t.server, server)) {
            return Err(invalid(&format!("this API server is already target {}", same.name)));
        }
        if dex.as_ref().is_some_and(|dex| dex.client_id == name) {
            return Err(invalid("the name is also --client-id; Dex needs one client per name"));
        }
        targets.push(Target { name, server: server.to_string(), ca_pem: None });
    }
    if targets.is_empty() {
        return Err(Error::Usage("setup needs at least one --target NAME=URL".into()));
    }
    for given in &options.target_cas {
        let invalid =
            |why: &str| Error::Usage(format!("invalid --target-ca '{}': {why}", redact::echo(given.as_bytes(), 200)));
        let (name, file) = given.split_once('=').ok_or_else(|| invalid("expected NAME=FILE"))?;
        let target = targets.iter_mut().find(|t| t.name == name).ok_or_else(|| invalid("no --target has this name"))?;
        if target.ca_pem.is_some() {
            return Err(invalid("this target's CA is given twice"));
        }
        let path = Path::new(file);
        let bytes = read(path).map_err(|err| Error::ConfigFile {
            what: "CA file",
            path: path.into(),
            reason: redact::echo(err.to_string().as_bytes(), 200),
        })?;
        let pem = certificates(&bytes).map_err(|why| Error::ConfigFile {
            what: "CA file",
            path: path.into(),
            reason: why.into(),
        })?;
        target.ca_pem = Some(pem);
    }
    Ok(Plan { dex, source_issuer, namespace, controller, server, username_claim, username_prefix, targets, json })
}

/// Where each document goes, and the document.
pub fn documents(plan: &Plan) -> Vec<(String, Node)> {
    let mut out = Vec::new();
    if let Some(dex) = &plan.dex {
        out.push((
            "Dex: merge into Dex's config.yaml (storage, web and expiry stay yours). oauth2.grantTypes\n\
             lists only token exchange: if this Dex also serves logins, add their grants, or leave\n\
             the key out where your config has none (all grants on), or they stop working. The oidc connector\n\
             trusts the source cluster's ServiceAccount tokens; Argo CD's client is confidential, its\n\
             secret read from $DEX_ARGOCD_CLIENT_SECRET (set it from a Secret with optional: false,\n\
             as deploy/dex/deployment-patch.yaml does); each target is a client that trusts Argo CD's\n\
             (trustedPeers), so that a token asked for with --audience NAME carries aud NAME. The\n\
             target clients share that secret (Dex wants one; they never sign in), so the kit's\n\
             per-target DEX_PROD_EU_CLIENT_SECRET is not needed: drop it from the patch."
                .into(),
            dex_config(plan, dex),
        ));
    }
    for target in &plan.targets {
        let issuer = match &plan.dex {
            Some(dex) => format!("Dex's issuer ({})", dex.issuer),
            None => format!("the source cluster's ServiceAccount issuer ({})", plan.source_issuer),
        };
        out.push((
            format!(
                "Target {} ({}):\n\
                 the kube-apiserver's --authentication-config file (Kubernetes 1.30+; if the API server\n\
                 has one already, add this jwt entry to it). It trusts {issuer}\n\
                 for audience {} and admits only Argo CD's two ServiceAccounts. The API server fetches\n\
                 that issuer's keys itself: if its host does not trust the issuer's certificate, add the\n\
                 CA's PEM as issuer.certificateAuthority, or every token is Unauthorized.",
                target.name, target.server, target.name
            ),
            authentication_config(plan, target),
        ));
        for (comment, node) in rbac(plan) {
            out.push((format!("Target {} ({}):\n{comment}", target.name, target.server), node));
        }
    }
    if plan.dex.is_none() {
        out.push((
            "Argo CD (--direct): a kustomize patch for argocd-application-controller and argocd-server,\n\
             in place of deploy/direct/component/projected-token.yaml (the component's kustomization\n\
             targets both): one projected ServiceAccount token per target, with that target's audience."
                .into(),
            projected_tokens(plan),
        ));
    }
    for target in &plan.targets {
        out.push((
            format!(
                "Argo CD: the cluster Secret of target {} ({}),\n\
                 in namespace {} of the cluster Argo CD runs in. provideClusterInfo needs Argo CD 3.5\n\
                 or later: older versions drop it, and the policy below then refuses every run.",
                target.name, target.server, plan.namespace
            ),
            cluster_secret(plan, target),
        ));
    }
    let (component, what) = match plan.dex {
        Some(_) => ("deploy/argocd/component", ""),
        None => ("deploy/direct/component", " (token file)"),
    };
    out.push((
        format!(
            "Argo CD: the operator policy, in place of {component}/policy.yaml\n\
             (Helm: of the ConfigMap in extraObjects of deploy/argocd/helm-values.yaml), which\n\
             already mount ConfigMap {POLICY_CONFIGMAP} read-only at {POLICY_DIR} in\n\
             argocd-application-controller and argocd-server; applied beside them, their example\n\
             policy would replace it. tokenxchange then makes a credential only for the servers\n\
             above, each with its own audience{what}."
        ),
        policy_config_map(plan),
    ));
    out
}

/// The documents as one YAML stream, or with `-o json` as one JSON list.
pub fn render(plan: &Plan) -> String {
    let documents = documents(plan);
    if plan.json {
        return yaml::json(&Node::List(documents.into_iter().map(|(_, node)| node).collect())) + "\n";
    }
    documents.iter().map(|(comment, node)| format!("---\n{}", yaml::document(comment, node))).collect()
}

fn dex_config(plan: &Plan, dex: &Dex) -> Node {
    let mut clients = vec![map([
        ("id", str(&dex.client_id)),
        ("name", str("Argo CD (tokenxchange)")),
        ("secretEnv", str(DEX_SECRET_ENV)),
    ])];
    // A target's client only names an audience and never signs in. Dex wants a secret or
    // `public: true`; public would let a ServiceAccount token alone be exchanged for this
    // audience, so it shares the Argo CD client's secret and opens nothing more.
    clients.extend(plan.targets.iter().map(|target| {
        map([
            ("id", str(&target.name)),
            ("name", str(format!("{} (audience for tokenxchange)", target.name))),
            ("secretEnv", str(DEX_SECRET_ENV)),
            ("trustedPeers", strs(&[&dex.client_id])),
        ])
    }));
    map([
        ("issuer", str(&dex.issuer)),
        ("oauth2", map([("grantTypes", strs(&[TOKEN_EXCHANGE]))])),
        (
            "connectors",
            Node::List(vec![map([
                ("type", str("oidc")),
                ("id", str(&dex.connector)),
                ("name", str("Kubernetes ServiceAccounts")),
                (
                    "config",
                    map([
                        ("issuer", str(&plan.source_issuer)),
                        ("rootCAs", strs(&[SOURCE_CA])),
                        ("userNameKey", str("sub")),
                        ("scopes", strs(&["profile"])),
                        ("getUserInfo", Node::Bool(false)),
                    ]),
                ),
            ])]),
        ),
        ("staticClients", Node::List(clients)),
    ])
}

fn authentication_config(plan: &Plan, target: &Target) -> Node {
    let issuer = plan.dex.as_ref().map_or(&plan.source_issuer, |dex| &dex.issuer);
    let allowed = [&plan.controller, &plan.server]
        .iter()
        .map(|sa| cel_string(&plan.service_account(sa)))
        .collect::<Vec<_>>()
        .join(", ");
    // Behind Dex the `name` claim is whatever any of Dex's connectors calls its user, so
    // the rule checks the ServiceAccount where only the source cluster's connector can put
    // it: federated_claims (scope federated:id, which the plugin asks for by default).
    let expression = match &plan.dex {
        Some(dex) => format!(
            "claims.federated_claims.connector_id == {} && claims.federated_claims.user_id in [{allowed}]",
            cel_string(&dex.connector)
        ),
        None => format!("claims.{} in [{allowed}]", plan.username_claim),
    };
    map([
        ("apiVersion", str(AUTHENTICATION_API_VERSION)),
        ("kind", str("AuthenticationConfiguration")),
        (
            "jwt",
            Node::List(vec![map([
                ("issuer", map([("url", str(issuer)), ("audiences", strs(&[&target.name]))])),
                (
                    "claimValidationRules",
                    Node::List(vec![map([
                        ("expression", str(expression)),
                        ("message", str("only Argo CD's ServiceAccounts of the source cluster may sign in")),
                    ])]),
                ),
                (
                    "claimMappings",
                    map([(
                        "username",
                        map([("claim", str(&plan.username_claim)), ("prefix", str(&plan.username_prefix))]),
                    )]),
                ),
            ])]),
        ),
    ])
}

/// The controller's binding to cluster-admin; argocd-server's narrower role and binding.
/// Their names carry Argo CD's namespace: they are cluster-scoped, and two Argo CD
/// instances wired to one target must not replace each other's bindings.
fn rbac(plan: &Plan) -> Vec<(String, Node)> {
    let server_name = format!("tokenxchange-{}-server", plan.namespace);
    let user = |sa: &str| {
        Node::List(vec![map([
            ("apiGroup", str("rbac.authorization.k8s.io")),
            ("kind", str("User")),
            ("name", str(plan.username(sa))),
        ])])
    };
    let binding = |name: &str, role: &str, sa: &str| {
        map([
            ("apiVersion", str("rbac.authorization.k8s.io/v1")),
            ("kind", str("ClusterRoleBinding")),
            ("metadata", map([("name", str(name))])),
            (
                "roleRef",
                map([
                    ("apiGroup", str("rbac.authorization.k8s.io")),
                    ("kind", str("ClusterRole")),
                    ("name", str(role)),
                ]),
            ),
            ("subjects", user(sa)),
        ])
    };
    let rules = ARGOCD_SERVER_RULES
        .iter()
        .map(|(groups, resources, verbs)| {
            map([("apiGroups", strs(groups)), ("resources", strs(resources)), ("verbs", strs(verbs))])
        })
        .collect();
    let server_role = map([
        ("apiVersion", str("rbac.authorization.k8s.io/v1")),
        ("kind", str("ClusterRole")),
        ("metadata", map([("name", str(&server_name))])),
        ("rules", Node::List(rules)),
    ]);
    vec![
        (
            format!(
                "RBAC: argocd-application-controller, signed in as {},\n\
                 gets cluster-admin, as Argo CD has on the cluster it runs in.",
                plan.username(&plan.controller)
            ),
            binding(
                &format!("tokenxchange-{}-application-controller", plan.namespace),
                "cluster-admin",
                &plan.controller,
            ),
        ),
        (
            "RBAC: for argocd-server, exactly what upstream Argo CD's argocd-server ClusterRole allows\n\
             (v3.5.1): read, patch and delete anything, pod logs, events, and create Jobs and Workflows."
                .into(),
            server_role,
        ),
        (
            format!("RBAC: binds that role to argocd-server, signed in as {}.", plan.username(&plan.server)),
            binding(&server_name, &server_name, &plan.server),
        ),
    ]
}

fn projected_tokens(plan: &Plan) -> Node {
    let sources = plan
        .targets
        .iter()
        .map(|target| {
            map([(
                "serviceAccountToken",
                map([
                    ("audience", str(&target.name)),
                    ("expirationSeconds", Node::Int(TOKEN_SECONDS)),
                    ("path", str(format!("token-{}", target.name))),
                ]),
            )])
        })
        .collect();
    map([
        ("apiVersion", str("apps/v1")),
        ("kind", str("Deployment")),
        ("metadata", map([("name", str("tokenxchange-direct"))])),
        (
            "spec",
            map([(
                "template",
                map([(
                    "spec",
                    map([(
                        "volumes",
                        Node::List(vec![map([
                            ("name", str("tokenxchange")),
                            ("projected", map([("sources", Node::List(sources))])),
                        ])]),
                    )]),
                )]),
            )]),
        ),
    ])
}

fn cluster_secret(plan: &Plan, target: &Target) -> Node {
    let (args, component) = match &plan.dex {
        Some(dex) => (
            vec![
                "--oidc-endpoint".to_string(),
                token_endpoint(dex),
                "--client-id".into(),
                dex.client_id.clone(),
                "--client-secret-file".into(),
                CLIENT_SECRET_FILE.into(),
                "--dex-connector".into(),
                dex.connector.clone(),
                "--token-file".into(),
                TOKEN_FILE.into(),
                "--audience".into(),
                target.name.clone(),
            ],
            "deploy/argocd/component",
        ),
        None => (vec!["--direct".into(), "--token-file".into(), plan.token_file(target)], "deploy/direct/component"),
    };
    let mut config = vec![(
        "execProviderConfig".to_string(),
        map([
            ("command", str(COMMAND)),
            ("args", strs(&args)),
            ("apiVersion", str(EXEC_API_VERSION)),
            ("provideClusterInfo", Node::Bool(true)),
            (
                "installHint",
                str(format!(
                    "tokenxchange is installed into argocd-application-controller and argocd-server by the kustomize component {component} of the tokenxchange repository"
                )),
            ),
        ]),
    )];
    if let Some(pem) = &target.ca_pem {
        config.push(("tlsClientConfig".into(), map([("caData", str(STANDARD.encode(pem)))])));
    }
    map([
        ("apiVersion", str("v1")),
        ("kind", str("Secret")),
        (
            "metadata",
            map([
                ("name", str(format!("cluster-{}", target.name))),
                ("namespace", str(&plan.namespace)),
                ("labels", map([("argocd.argoproj.io/secret-type", str("cluster"))])),
            ]),
        ),
        ("type", str("Opaque")),
        (
            "stringData",
            map([
                ("name", str(&target.name)),
                ("server", str(&target.server)),
                ("config", str(yaml::json(&Node::Map(config)) + "\n")),
            ]),
        ),
    ])
}

/// The policy file (issue 15): exactly what the Secrets above need, each server bound to
/// its audience (or, with `--direct`, its token file) and to its CA when one was given.
pub fn policy(plan: &Plan) -> Node {
    let clusters = plan
        .targets
        .iter()
        .map(|target| {
            let mut entry = match plan.dex {
                Some(_) => vec![("audiences".to_string(), strs(&[&target.name]))],
                None => vec![("tokenFile".to_string(), str(plan.token_file(target)))],
            };
            if let Some(pem) = &target.ca_pem {
                entry.push(("certificateAuthorityData".into(), str(STANDARD.encode(pem))));
            }
            (target.server.clone(), Node::Map(entry))
        })
        .collect();
    let mut policy = Vec::new();
    match &plan.dex {
        Some(dex) => {
            policy.push(("endpoints".to_string(), strs(&[token_endpoint(dex)])));
            policy.push(("clientIDs".into(), strs(&[&dex.client_id])));
            policy.push(("files".into(), strs(&[CLIENT_SECRET_FILE, TOKEN_FILE])));
        }
        None => {
            let files: Vec<String> = plan.targets.iter().map(|t| plan.token_file(t)).collect();
            policy.push(("files".into(), strs(&files)));
        }
    }
    policy.push(("clusters".into(), Node::Map(clusters)));
    Node::Map(policy)
}

fn policy_config_map(plan: &Plan) -> Node {
    map([
        ("apiVersion", str("v1")),
        ("kind", str("ConfigMap")),
        ("metadata", map([("name", str(POLICY_CONFIGMAP)), ("namespace", str(&plan.namespace))])),
        ("data", map([("policy.json", str(yaml::json(&policy(plan)) + "\n"))])),
    ])
}

/// Dex serves the token endpoint at `<issuer>/token`.
fn token_endpoint(dex: &Dex) -> String {
    format!("{}/token", dex.issuer.trim_end_matches('/'))
}

/// An `https://` URL without query or fragment: what an API server takes as a JWT issuer
/// and what Argo CD's exec config may carry.
fn https(text: &str, flag: &str) -> Result<String, Error> {
    // checked before the parse, whose words about http:// are for the plugin's own flags
    if !text.starts_with("https://") || text.contains(['?', '#']) || Url::parse(text, false, flag).is_err() {
        return Err(Error::Usage(format!(
            "invalid {flag} '{}': setup writes it where only https://HOST[:PORT][/PATH] works",
            redact::echo(text.as_bytes(), 200)
        )));
    }
    Ok(text.to_string())
}

/// Two spellings of one API server, as the policy file compares its clusters keys: scheme
/// and host without case, the default port made explicit, one trailing slash dropped.
fn same_server(a: &str, b: &str) -> bool {
    policy::server_key(a).is_some() && policy::server_key(a) == policy::server_key(b)
}

/// A DNS-1123 label (`max` 63) or subdomain (`max` 253): lower-case letters, digits and
/// `-` (and `.` in a subdomain), starting and ending with a letter or digit.
fn kubernetes_name(name: String, flag: &str, max: usize) -> Result<String, Error> {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = !name.is_empty()
        && name.len() <= max
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (c == '.' && max > 63))
        && alnum(name.chars().next())
        && alnum(name.chars().last());
    if valid {
        Ok(name)
    } else {
        Err(Error::Usage(format!(
            "invalid {flag} '{}': not a Kubernetes name (lower-case letters, digits and '-'{}, at most {max})",
            redact::echo(name.as_bytes(), 100),
            if max > 63 { " and '.'" } else { "" }
        )))
    }
}

/// A Dex connector or client id: printable, no white space.
fn dex_id(id: String, flag: &str) -> Result<String, Error> {
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control() || yaml::special(c)) {
        return Err(Error::Usage(format!(
            "invalid {flag} '{}': a Dex id without white space",
            redact::echo(id.as_bytes(), 100)
        )));
    }
    Ok(id)
}

/// The username claim, written into a CEL expression as `claims.<name>`: an identifier
/// that is not one of CEL's reserved words.
fn claim(name: String) -> Result<String, Error> {
    const RESERVED: &[&str] = &[
        "as",
        "break",
        "const",
        "continue",
        "else",
        "false",
        "for",
        "function",
        "if",
        "import",
        "in",
        "let",
        "loop",
        "package",
        "namespace",
        "null",
        "return",
        "true",
        "var",
        "void",
        "while",
    ];
    let identifier = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier || RESERVED.contains(&name.as_str()) {
        return Err(Error::Usage(format!(
            "invalid --username-claim '{}': a claim name of letters, digits and _, e.g. name or sub",
            redact::echo(name.as_bytes(), 100)
        )));
    }
    Ok(name)
}

/// A CEL string literal: single-quoted, its quote and backslash escaped.
fn cel_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The certificates of a PEM file, re-encoded; an error unless the file is PEM holding
/// certificates and nothing else.
fn certificates(bytes: &[u8]) -> Result<String, &'static str> {
    let mut pem = String::new();
    let mut count = 0;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        let (kind, der) = section.map_err(|_| "not PEM: a block is cut or its base64 is invalid")?;
        if kind != SectionKind::Certificate {
            return Err("holds a PEM block that is not a CERTIFICATE (give the CA certificates only)");
        }
        // a DER certificate is one SEQUENCE
        if der.first() != Some(&0x30) {
            return Err("a CERTIFICATE block does not hold a DER certificate");
        }
        let der = CertificateDer::from(der);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let body = STANDARD.encode(der.as_ref());
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        count += 1;
    }
    if count == 0 {
        return Err("not PEM: no CERTIFICATE block");
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            issuer: Some("https://dex.example.com".into()),
            connector: Some("kubernetes".into()),
            client_id: Some("argocd".into()),
            source_issuer: Some("https://source.example.com:6443".into()),
            targets: vec!["prod-eu=https://prod-eu.example.com:6443".into(), "prod-us=https://10.0.0.1".into()],
            ..Options::default()
        }
    }

    fn no_files(_: &Path) -> io::Result<Vec<u8>> {
        Err(io::Error::from(io::ErrorKind::NotFound))
    }

    #[test]
    fn defaults_follow_the_kit() {
        let plan = plan(options(), &no_files).unwrap();
        assert_eq!((plan.namespace.as_str(), plan.controller.as_str()), ("argocd", "argocd-application-controller"));
        assert_eq!((plan.username_claim.as_str(), plan.username_prefix.as_str()), ("name", "oidc:"));
        assert_eq!(plan.username(&plan.server), "oidc:system:serviceaccount:argocd:argocd-server");
        let direct = super::plan(
            Options { direct: true, issuer: None, connector: None, client_id: None, ..options() },
            &no_files,
        )
        .unwrap();
        assert_eq!((direct.username_claim.as_str(), direct.username_prefix.as_str()), ("sub", "source:"));
        assert_eq!(direct.token_file(&direct.targets[0]), "/var/run/secrets/tokenxchange/token-prod-eu");
    }

    #[test]
    fn policy_binds_each_server_to_its_audience() {
        let plan = plan(options(), &no_files).unwrap();
        assert_eq!(
            yaml::json(&policy(&plan)).split_whitespace().collect::<String>(),
            r#"{"endpoints":["https://dex.example.com/token"],"clientIDs":["argocd"],"files":["/var/run/secrets/tokenxchange/client-secret","/var/run/secrets/tokenxchange/token"],"clusters":{"https://prod-eu.example.com:6443":{"audiences":["prod-eu"]},"https://10.0.0.1":{"audiences":["prod-us"]}}}"#
        );
    }

    fn rule(plan: &Plan) -> String {
        let Node::Map(document) = authentication_config(plan, &plan.targets[0]) else { panic!() };
        let text = yaml::json(&document[2].1);
        let start = text.find("\"expression\": ").unwrap() + 14;
        text[start..start + text[start..].find('\n').unwrap()].trim_end_matches(',').to_string()
    }

    /// Behind Dex, `name` is what any connector calls its user: the rule must ask for the
    /// source cluster's connector, whose user id is the ServiceAccount.
    #[test]
    fn dex_rules_admit_the_service_accounts_through_the_connector_only() {
        let plan = plan(Options { connector: Some("k8s'\\x".into()), ..options() }, &no_files).unwrap();
        assert_eq!(
            rule(&plan),
            r#""claims.federated_claims.connector_id == 'k8s\\'\\\\x' && claims.federated_claims.user_id in ['system:serviceaccount:argocd:argocd-application-controller', 'system:serviceaccount:argocd:argocd-server']""#
        );
        let direct = super::plan(
            Options { direct: true, issuer: None, connector: None, client_id: None, ..options() },
            &no_files,
        )
        .unwrap();
        assert_eq!(
            rule(&direct),
            r#""claims.sub in ['system:serviceaccount:argocd:argocd-application-controller', 'system:serviceaccount:argocd:argocd-server']""#
        );
    }

    #[test]
    fn servers_compare_as_urls() {
        assert!(same_server("https://A.example.com", "https://a.example.com:443/"));
        assert!(!same_server("https://a.example.com", "https://a.example.com:6443"));
        assert!(!same_server("https://a.example.com/x", "https://a.example.com/y"));
    }

    #[test]
    fn certificates_are_re_encoded_and_anything_else_refused() {
        let der = [0x30u8, 0x03, 0x02, 0x01, 0x01];
        let pem = format!("junk\n-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", STANDARD.encode(der));
        assert_eq!(
            certificates(pem.as_bytes()),
            Ok(format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", STANDARD.encode(der)))
        );
        assert!(certificates(b"no pem here").is_err());
        assert!(certificates(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").is_err());
        let key = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(der));
        assert!(certificates(format!("{pem}{key}").as_bytes()).is_err());
    }
}
