//! The client-go side of the contract: reading `KUBERNETES_EXEC_INFO` and rendering the
//! one ExecCredential document printed on stdout (CONTRACTS.md §3).
//!
//! Pure functions only: the caller passes the environment value, the token and the
//! expiry; this module never reads the clock or writes anything.

use miniserde::json::{self, Object, Value};

use crate::error::Error;
use crate::token::Secret;

pub const V1: &str = "client.authentication.k8s.io/v1";
pub const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";
pub const API_VERSIONS: &str = "client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1";

/// What client-go told the plugin.
#[derive(Debug, Default)]
pub struct ExecInfo {
    /// The apiVersion the output must carry.
    pub api_version: Option<&'static str>,
    /// `spec.cluster` as canonical JSON (object keys sorted), when client-go sent it.
    pub cluster_json: Option<String>,
    /// `spec.cluster.config`: the kubeconfig cluster's exec extension.
    pub cluster_config: Option<Object>,
}

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
                "unsupported ExecCredential apiVersion '{text}' in KUBERNETES_EXEC_INFO: use {API_VERSIONS}"
            ))
        })?),
        Some(_) => return Err(invalid("apiVersion is not a string")),
    };
    let cluster = match root.get("spec") {
        Some(Value::Object(spec)) => spec.get("cluster"),
        None | Some(Value::Null) => None,
        Some(_) => return Err(invalid("spec is not an object")),
    };
    let (cluster_json, cluster_config) = match cluster {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(cluster)) => {
            let config = match cluster.get("config") {
                None | Some(Value::Null) => None,
                Some(Value::Object(config)) => Some(config.clone()),
                Some(_) => return Err(invalid("spec.cluster.config is not an object")),
            };
            (Some(json::to_string(cluster)), config)
        }
        Some(_) => return Err(invalid("spec.cluster is not an object")),
    };
    Ok(ExecInfo { api_version, cluster_json, cluster_config })
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

/// Seconds since the Unix epoch as RFC 3339 UTC with whole seconds, e.g. `2026-11-28T11:00:00Z`.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3_600, secs % 3_600 / 60, secs % 60)
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
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_863_600), "2026-11-28T11:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn parses_exec_info() {
        let info = parse_info(
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#,
        )
        .unwrap();
        assert_eq!(info.api_version, Some(V1));
        assert!(info.cluster_json.is_none() && info.cluster_config.is_none());

        let info = parse_info(
            r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"cluster":{"server":"https://b","certificate-authority-data":"Zm9v","config":{"audience":"x"}},"interactive":false}}"#,
        )
        .unwrap();
        assert_eq!(info.api_version, Some(V1BETA1));
        assert_eq!(
            info.cluster_json.as_deref(),
            Some(r#"{"certificate-authority-data":"Zm9v","config":{"audience":"x"},"server":"https://b"}"#)
        );
        assert!(matches!(info.cluster_config.unwrap().get("audience"), Some(Value::String(s)) if s == "x"));
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
    }
}
