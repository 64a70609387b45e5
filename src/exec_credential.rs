//! The client-go side of the contract: reading `KUBERNETES_EXEC_INFO` (with the
//! cluster's per-cluster settings) and rendering the one ExecCredential document printed
//! on stdout (docs/usage.md, "Output" and "Per-cluster settings").
//!
//! Pure functions only: the caller passes the environment value, the token and the
//! expiry; this module never reads the clock or writes anything.

use miniserde::json::{self, Object, Value};

use crate::error::Error;
use crate::redact;
use crate::secret::Secret;

pub const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";
pub const API_VERSIONS: &str = "client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1";

/// A credential to print: the token, and the `expirationTimestamp` in Unix seconds
/// (margin already taken off); `None` when nothing told the lifetime.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub token: Secret,
    pub expires_at: Option<i64>,
}

/// What client-go told the plugin.
#[derive(Debug, Default)]
pub struct ExecInfo {
    /// The apiVersion the output must carry.
    pub api_version: Option<&'static str>,
    /// `spec.cluster` as canonical JSON (object keys sorted), when client-go sent it.
    pub cluster_json: Option<String>,
    /// `spec.cluster.config`: the kubeconfig cluster's exec extension, read.
    pub cluster: ClusterSettings,
}

/// Settings that the kubeconfig cluster's `client.authentication.k8s.io/exec` extension
/// (arriving as `spec.cluster.config`) may set for one target cluster.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClusterSettings {
    pub audiences: Option<Vec<String>>,
    pub connector: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub token_endpoint: Option<String>,
    pub issuer: Option<String>,
}

/// Where client-go will send the credential: `spec.cluster` as client-go fills it from
/// the config it really uses (`rest.ConfigToExecCluster`), with `provideClusterInfo: true`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Destination {
    pub server: Option<String>,
    pub insecure_skip_tls_verify: bool,
    /// Base64 of PEM, as client-go marshals `[]byte`.
    pub certificate_authority_data: Option<String>,
    /// The name client-go verifies the server's certificate for, when not the server's host.
    pub tls_server_name: Option<String>,
}

/// The destination in `spec.cluster` (the canonical JSON of [`ExecInfo::cluster_json`]).
pub fn destination(cluster_json: &str) -> Result<Destination, Error> {
    let invalid = |why: &str| Error::Usage(format!("invalid KUBERNETES_EXEC_INFO: spec.cluster.{why}"));
    let Ok(Value::Object(cluster)) = json::from_str::<Value>(cluster_json) else {
        return Err(invalid(" is not an object"));
    };
    let text = |key: &str| match cluster.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(&format!("{key} is not a string"))),
    };
    let insecure_skip_tls_verify = match cluster.get("insecure-skip-tls-verify") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(on)) => *on,
        Some(_) => return Err(invalid("insecure-skip-tls-verify is not a boolean")),
    };
    Ok(Destination {
        server: text("server")?,
        insecure_skip_tls_verify,
        certificate_authority_data: text("certificate-authority-data")?,
        tls_server_name: text("tls-server-name")?,
    })
}

const CLUSTER_KEYS: &str = "audience, connectorID, clientID, scopes, tokenEndpoint, issuer";

/// The supported apiVersion matching `text`, if any.
pub fn api_version(text: &str) -> Option<&'static str> {
    [V1, V1BETA1].into_iter().find(|v| *v == text)
}

/// Parses the `KUBERNETES_EXEC_INFO` value.
pub fn parse_info(raw: &str) -> Result<ExecInfo, Error> {
    let invalid = |why: &str| Error::Usage(format!("invalid KUBERNETES_EXEC_INFO: {why}"));
    let value: Value = json::from_str(raw).map_err(|_| invalid("not JSON"))?;
    let Value::Object(root) = value else { return Err(invalid("not a JSON object")) };
    let api_version = match root.get("apiVersion") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(api_version(text).ok_or_else(|| {
            Error::Usage(format!(
                "unsupported ExecCredential apiVersion '{}' in KUBERNETES_EXEC_INFO: use {API_VERSIONS}",
                redact::echo(text.as_bytes(), 100)
            ))
        })?),
        Some(_) => return Err(invalid("apiVersion is not a string")),
    };
    let cluster = match root.get("spec") {
        Some(Value::Object(spec)) => spec.get("cluster"),
        None | Some(Value::Null) => None,
        Some(_) => return Err(invalid("spec is not an object")),
    };
    let (cluster_json, settings) = match cluster {
        None | Some(Value::Null) => (None, ClusterSettings::default()),
        Some(Value::Object(cluster)) => {
            let settings = match cluster.get("config") {
                None | Some(Value::Null) => ClusterSettings::default(),
                Some(Value::Object(config)) => cluster_settings(config)?,
                Some(_) => return Err(invalid("spec.cluster.config is not an object")),
            };
            (Some(json::to_string(cluster)), settings)
        }
        Some(_) => return Err(invalid("spec.cluster is not an object")),
    };
    Ok(ExecInfo { api_version, cluster_json, cluster: settings })
}

fn cluster_settings(config: &Object) -> Result<ClusterSettings, Error> {
    let mut settings = ClusterSettings::default();
    for (key, value) in config.iter() {
        let bad = || {
            Error::Usage(format!(
                "invalid value for '{}' in the cluster's exec config (spec.cluster.config): expected a non-empty string",
                redact::echo(key.as_bytes(), 100)
            ))
        };
        let strings = || -> Result<Vec<String>, Error> {
            match value {
                Value::String(s) => Ok(vec![s.clone()]),
                Value::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(bad()),
                    })
                    .collect(),
                _ => Err(bad()),
            }
        };
        let string = || -> Result<String, Error> {
            match value {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                _ => Err(bad()),
            }
        };
        match key.as_str() {
            "audience" => settings.audiences = Some(strings()?),
            "connectorID" => settings.connector = Some(string()?),
            "clientID" => settings.client_id = Some(string()?),
            "scopes" => settings.scopes = Some(strings()?),
            "tokenEndpoint" => settings.token_endpoint = Some(string()?),
            "issuer" => settings.issuer = Some(string()?),
            _ => {
                return Err(Error::Usage(format!(
                    "unknown key '{}' in the cluster's exec config (spec.cluster.config); known keys: {CLUSTER_KEYS}",
                    redact::echo(key.as_bytes(), 100)
                )));
            }
        }
    }
    Ok(settings)
}

/// The ExecCredential document, without a trailing newline. `expiration` is an RFC 3339
/// timestamp; `None` omits `expirationTimestamp` (client-go then keeps the token until a 401).
pub fn render(api_version: &str, token: &Secret, expiration: Option<&str>) -> String {
    let mut out = format!(
        "{{\"apiVersion\":{},\"kind\":\"ExecCredential\",\"status\":{{\"token\":{}",
        json::to_string(api_version),
        json::to_string(token.expose())
    );
    if let Some(expiration) = expiration {
        out.push_str(&format!(",\"expirationTimestamp\":{}", json::to_string(expiration)));
    }
    out.push_str("}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_v1_and_v1beta1() {
        let token = Secret::new("a.b\"c");
        assert_eq!(
            render(V1, &token, Some("2026-11-28T11:00:00Z")),
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"a.b\"c","expirationTimestamp":"2026-11-28T11:00:00Z"}}"#
        );
        assert_eq!(
            render(V1BETA1, &token, None),
            r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"a.b\"c"}}"#
        );
    }

    #[test]
    fn parses_exec_info() {
        let info = parse_info(
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#,
        )
        .unwrap();
        assert_eq!(info.api_version, Some(V1));
        assert!(info.cluster_json.is_none() && info.cluster == ClusterSettings::default());

        let info = parse_info(
            r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"cluster":{"server":"https://b","certificate-authority-data":"Zm9v","config":{"audience":"x"}},"interactive":false}}"#,
        )
        .unwrap();
        assert_eq!(info.api_version, Some(V1BETA1));
        assert_eq!(
            info.cluster_json.as_deref(),
            Some(r#"{"certificate-authority-data":"Zm9v","config":{"audience":"x"},"server":"https://b"}"#)
        );
        assert_eq!(info.cluster.audiences, Some(vec!["x".to_string()]));
    }

    #[test]
    fn reads_the_destination() {
        let info = parse_info(
            r#"{"spec":{"cluster":{"server":"https://t:6443","insecure-skip-tls-verify":true,"certificate-authority-data":"Zm9v","proxy-url":"http://p","tls-server-name":"t.example"}}}"#,
        )
        .unwrap();
        assert_eq!(
            destination(info.cluster_json.as_deref().unwrap()).unwrap(),
            Destination {
                server: Some("https://t:6443".into()),
                insecure_skip_tls_verify: true,
                certificate_authority_data: Some("Zm9v".into()),
                tls_server_name: Some("t.example".into())
            }
        );
        assert_eq!(destination(r#"{"config":{}}"#).unwrap(), Destination::default());
        assert_eq!(
            destination(r#"{"insecure-skip-tls-verify":"true"}"#).unwrap_err().to_string(),
            "invalid KUBERNETES_EXEC_INFO: spec.cluster.insecure-skip-tls-verify is not a boolean"
        );
    }

    #[test]
    fn rejects_bad_exec_info() {
        let check = |raw: &str, expected: &str| {
            let err = parse_info(raw).unwrap_err();
            assert_eq!(err.to_string(), expected);
            assert_eq!(err.exit_code(), 2);
        };
        check("{", "invalid KUBERNETES_EXEC_INFO: not JSON");
        check(
            r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#,
            "unsupported ExecCredential apiVersion 'client.authentication.k8s.io/v1alpha1' in KUBERNETES_EXEC_INFO: use client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1",
        );
        check(
            r#"{"spec":{"cluster":{"config":"x"}}}"#,
            "invalid KUBERNETES_EXEC_INFO: spec.cluster.config is not an object",
        );
        // Values echoed from the environment are escaped: one line, no terminal escapes.
        check(
            r#"{"apiVersion":"v9\n\u001b[2Jforged line"}"#,
            "unsupported ExecCredential apiVersion 'v9\\n\\u{1b}[2Jforged line' in KUBERNETES_EXEC_INFO: use client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1",
        );
        check(
            r#"{"spec":{"cluster":{"config":{"evil\u0000\r\nkey":"x"}}}}"#,
            "unknown key 'evil\\u{0}\\r\\nkey' in the cluster's exec config (spec.cluster.config); known keys: audience, connectorID, clientID, scopes, tokenEndpoint, issuer",
        );
    }
}
