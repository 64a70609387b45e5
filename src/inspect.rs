//! `tokenxchange inspect`: one real exchange (never the cache), reported step by step —
//! the subject token, the endpoint and where it came from, trust and route, the answer,
//! the issued token's claims — down to the username the target API server will derive,
//! with a warning for each known cause of a bare `Unauthorized`. It prints claims and
//! fingerprints, never a token or a secret.

use std::time::Instant;

use miniserde::json::{self, Array, Number, Object, Value};

use crate::claims;
use crate::cli::{Config, Inspect};
use crate::direct;
use crate::error::Error;
use crate::exchange::{Call, Endpoint, Network};
use crate::policy;
use crate::redact;
use crate::secret;
use crate::time::{rfc3339, span, unix_now};
use crate::tls;

/// A subject token this close to its expiry is worth a warning.
const EXPIRY_WARNING: i64 = 5 * 60;
/// Clocks further apart than this make tokens look expired or not yet valid.
const SKEW_WARNING: i64 = 30;
/// A span between two times that no real clock or token gives (a century): shown as
/// absurd rather than as a number of days.
const ABSURD: u64 = 100 * 366 * 86_400;
const ABSURD_TEXT: &str = "absurd (not a plausible time)";

/// A span in seconds when it was computed without overflow and is below [`ABSURD`].
fn plausible(span: Option<i64>) -> Option<i64> {
    span.filter(|s| s.unsigned_abs() <= ABSURD)
}

/// The report, in text or JSON, and how the run ended. The report is printed either way,
/// up to the step that failed.
pub fn run(config: &Config, inspect: &Inspect, network: &Network, started: Instant) -> (String, Result<(), Error>) {
    let mut report = Report::default();
    let outcome = fill(&mut report, config, inspect, network, started);
    if let Err(err) = &outcome {
        report.failed = Some(err.to_string());
    }
    let text = if inspect.json { report.json() } else { report.text() };
    (text, outcome)
}

/// One section per step; `None` for a step not reached.
#[derive(Default)]
struct Report {
    policy: Option<Section>,
    subject: Option<Section>,
    endpoint: Option<Section>,
    proxy: Option<Section>,
    tls: Option<Section>,
    exchange: Option<Section>,
    issued: Option<Section>,
    username: Option<String>,
    warnings: Vec<String>,
    /// The step that failed and its error.
    failed_step: Option<&'static str>,
    failed: Option<String>,
}

/// Ordered `name value` pairs; values are already escaped and redacted.
#[derive(Default)]
struct Section(Vec<(String, Value)>);

impl Section {
    fn put(&mut self, name: &str, value: Value) -> &mut Section {
        self.0.push((name.to_string(), value));
        self
    }

    fn text(&mut self, name: &str, value: &str) -> &mut Section {
        self.put(name, Value::String(redact::echo(value.as_bytes(), 300)))
    }

    fn number(&mut self, name: &str, value: i64) -> &mut Section {
        self.put(name, Value::Number(Number::I64(value)))
    }
}

fn fill(
    report: &mut Report,
    config: &Config,
    inspect: &Inspect,
    network: &Network,
    started: Instant,
) -> Result<(), Error> {
    report.failed_step = Some("policy");
    let mut policy = Section::default();
    policy.text("file", policy::PATH);
    let allowed = match policy::enforce(config, network) {
        Ok(allowed) => allowed,
        Err(err) => {
            policy.text("in force", "yes");
            report.policy = Some(policy);
            return Err(err);
        }
    };
    match &allowed {
        None => policy.text("in force", "no: no file there, so nothing is restricted"),
        Some(allowed) => policy.text("in force", "yes").put(
            "allowed by",
            Value::Array(allowed.rules.iter().map(|rule| Value::String(redact::echo(rule.as_bytes(), 300))).collect()),
        ),
    };
    report.policy = Some(policy);

    let now = unix_now();
    report.failed_step = Some("subject");
    let mut subject = Section::default();
    subject.text("file", &config.token_file.to_string_lossy());
    let token = secret::read_subject(&config.token_file);
    let token = match token {
        Ok(token) => token,
        Err(err) => {
            report.subject = Some(subject);
            return Err(err);
        }
    };
    subject.text("fingerprint", &token.fingerprint());
    let subject_claims = claims::of(token.expose());
    match &subject_claims {
        Some(found) => {
            for name in ["iss", "sub", "aud", "iat", "exp"] {
                if let Some(value) = found.get(name) {
                    subject.put(name, shown(value));
                }
            }
            let kubernetes = |path: [&str; 2]| match found.get("kubernetes.io") {
                Some(Value::Object(k8s)) => match k8s.get(path[0]) {
                    Some(Value::Object(inner)) => claims::text(inner, path[1]),
                    _ => None,
                },
                _ => None,
            };
            if let Some(pod) = kubernetes(["pod", "name"]) {
                subject.text("pod", &pod);
            }
            if let Some(sa) = kubernetes(["serviceaccount", "name"]) {
                subject.text("serviceaccount", &sa);
            }
            if let Some(exp) = found.get("exp").and_then(claims::integer) {
                match plausible(exp.checked_sub(now)) {
                    None => {
                        subject.text("expires_in", ABSURD_TEXT);
                        report.warnings.push(format!("the subject token's exp ({exp}) is absurd: no plausible time"));
                    }
                    Some(left) => {
                        subject.number("expires_in", left);
                        if left <= 0 {
                            report.warnings.push(format!("the subject token expired {} ago; the kubelet should have replaced it (is the file a projected token?)", span(-left)));
                        } else if left < EXPIRY_WARNING {
                            report.warnings.push(format!("the subject token expires in {}", span(left)));
                        }
                    }
                }
            }
        }
        None => {
            subject.text("format", "not a JWT: no claims to show");
        }
    }
    report.subject = Some(subject);

    let Some(exchange) = &config.exchange else {
        // --direct: the subject token is the credential; the target reads its claims.
        report.failed_step = Some("subject");
        direct::credential(&token, &config.token_file, now)?;
        return username(report, subject_claims.as_ref(), inspect, "the subject token");
    };

    report.failed_step = Some("endpoint");
    let mut endpoint = Section::default();
    let (kind, url) = match &exchange.request.endpoint {
        Endpoint::Token(url) => ("token endpoint", url),
        Endpoint::Issuer(url) => ("issuer", url),
    };
    endpoint.text(kind, url.as_str()).text("source", exchange.endpoint_source);
    report.endpoint = Some(endpoint);
    let mut trust = Section::default();
    trust.put(
        "roots",
        Value::Array(tls::trust(&exchange.tls, &network.trust).into_iter().map(Value::String).collect::<Array>()),
    );
    report.tls = Some(trust);

    report.failed_step = Some("exchange");
    let client_secret = exchange.client_secret.read()?;
    let begun = Instant::now();
    let exchange = &policy::bound(exchange, allowed.as_ref());
    let call = Call {
        request: &exchange.request,
        client_secret: &client_secret,
        subject: &token,
        tls: &exchange.tls,
        network,
        deadline: started + config.timeout,
        trace: Default::default(),
    };
    let result = call.fetch(None);
    let trace = call.trace.into_inner();
    if let (Some((used, source)), Some(section)) = (&trace.endpoint, report.endpoint.as_mut())
        && *source != "given"
    {
        section.text("token endpoint", used.as_str()).text("token endpoint source", source);
    }
    if let Some(route) = &trace.route {
        let mut proxy = Section::default();
        match &route.proxy {
            Some(_) => proxy.text("via", &route.why),
            None => proxy.text("direct", &route.why),
        };
        report.proxy = Some(proxy);
    }
    if let (Some(version), Some(section)) = (trace.tls_version, report.tls.as_mut()) {
        section.text("version", version);
    }
    let mut answer = Section::default();
    if let Some(status) = trace.status {
        answer.number("status", i64::from(status));
    }
    answer.number("elapsed_ms", i64::try_from(begun.elapsed().as_millis()).unwrap_or(i64::MAX));
    if let Some(date) = trace.server_date {
        match plausible(now.checked_sub(date)) {
            None => report.warnings.push(format!(
                "the identity provider's Date header ({}) is absurd: no plausible time",
                rfc3339(date)
            )),
            Some(skew) if skew.abs() > SKEW_WARNING => report.warnings.push(format!(
                "this machine's clock is {} {} the identity provider's (its Date header); tokens may look expired or not yet valid",
                span(skew.abs()),
                if skew > 0 { "ahead of" } else { "behind" }
            )),
            Some(_) => {}
        }
    }
    let credential = match result {
        Ok(credential) => credential,
        Err(err) => {
            answer.text("error", &err.to_string());
            report.exchange = Some(answer);
            return Err(err);
        }
    };
    report.exchange = Some(answer);

    report.failed_step = Some("issued");
    let issued_claims = claims::of(credential.token.expose());
    let mut issued = Section::default();
    issued.text("fingerprint", &credential.token.fingerprint());
    match &issued_claims {
        Some(found) => {
            for (name, value) in found.iter() {
                // claim names come from the server too: escaped, so no line can be forged
                issued.put(&redact::echo(name.as_bytes(), 100), shown(value));
            }
            if !claims::has_audience(found, &exchange.request.client_id) {
                report.warnings.push(format!(
                    "the issued token's aud does not contain the client id '{}': the target API server checks it against its --oidc-client-id",
                    redact::echo(exchange.request.client_id.as_bytes(), 100)
                ));
            }
        }
        None => {
            issued.text("format", "not a JWT: no claims to show");
        }
    }
    if let Some(at) = credential.expires_at {
        issued.text("expirationTimestamp", &rfc3339(at));
    }
    report.issued = Some(issued);
    username(report, issued_claims.as_ref(), inspect, "the issued token")
}

/// The username the target API server derives: the prefix and the claim's value.
fn username(report: &mut Report, found: Option<&Object>, inspect: &Inspect, what: &str) -> Result<(), Error> {
    report.failed_step = Some("username");
    let claim = &inspect.username_claim;
    match found.and_then(|claims| claims.get(claim)) {
        Some(Value::String(value)) if !value.is_empty() => {
            report.username = Some(redact::echo(format!("{}{value}", inspect.username_prefix).as_bytes(), 300));
            report.failed_step = None;
            Ok(())
        }
        _ => {
            let hint =
                if claim == "name" { " (Dex adds name only with the profile scope: check --scopes)" } else { "" };
            let message = format!(
                "{what} has no string claim '{}', so the target API server cannot derive a username{hint}",
                redact::echo(claim.as_bytes(), 100)
            );
            report.warnings.push(message.clone());
            Err(Error::Username(message))
        }
    }
}

/// A claim value for the report: strings escaped, numbers as they are, lists of strings
/// as lists, the rest as JSON text.
fn shown(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact::echo(s.as_bytes(), 300)),
        Value::Number(_) | Value::Bool(_) | Value::Null => value.clone(),
        Value::Array(items) if items.iter().all(|item| matches!(item, Value::String(_))) => {
            Value::Array(items.iter().map(shown).collect())
        }
        other => Value::String(redact::echo(json::to_string(other).as_bytes(), 300)),
    }
}

impl Report {
    fn sections(&self) -> [(&'static str, &Option<Section>); 7] {
        [
            ("policy", &self.policy),
            ("subject", &self.subject),
            ("endpoint", &self.endpoint),
            ("proxy", &self.proxy),
            ("tls", &self.tls),
            ("exchange", &self.exchange),
            ("issued", &self.issued),
        ]
    }

    fn json(&self) -> String {
        let mut root = Object::new();
        for (name, section) in self.sections() {
            let value = match section {
                Some(section) => Value::Object(section.0.iter().cloned().collect()),
                None => Value::Null,
            };
            root.insert(name.into(), value);
        }
        root.insert("username".into(), self.username.clone().map_or(Value::Null, Value::String));
        let warnings: Array = self.warnings.iter().cloned().map(Value::String).collect();
        root.insert("warnings".into(), Value::Array(warnings));
        root.insert("result".into(), Value::String(self.result()));
        json::to_string(&root) + "\n"
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, text: &str| out.push_str(&format!("{label:<10}{text}\n"));
        for (name, section) in self.sections() {
            let Some(section) = section else { continue };
            for (i, (key, value)) in section.0.iter().enumerate() {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Array(items) => items
                        .iter()
                        .map(|item| match item {
                            Value::String(s) => s.clone(),
                            other => json::to_string(other),
                        })
                        .collect::<Vec<_>>()
                        .join(if key == "roots" || key == "allowed by" { "\n          " } else { ", " }),
                    other => json::to_string(other),
                };
                let value = match key.as_str() {
                    "expires_in" => format!("{} ({})", value, in_words(&value)),
                    "exp" | "iat" | "nbf" => {
                        value.parse::<i64>().map_or(value.clone(), |t| format!("{t} ({})", rfc3339(t)))
                    }
                    _ => value,
                };
                line(if i == 0 { name } else { "" }, &format!("{key}: {value}"));
            }
        }
        if let Some(username) = &self.username {
            line("username", username);
        }
        for warning in &self.warnings {
            line("warning", warning);
        }
        out.push_str(&self.result());
        out.push('\n');
        out
    }

    /// `ok`, or the step that failed and why.
    fn result(&self) -> String {
        match (&self.failed, self.failed_step) {
            (Some(error), Some(step)) => format!("failed at {step}: {}", redact::line(error)),
            (Some(error), None) => format!("failed: {}", redact::line(error)),
            (None, _) => "ok".into(),
        }
    }
}

/// `2460` seconds as `in 41m`, a negative one as `expired 41m ago`.
fn in_words(seconds: &str) -> String {
    match seconds.parse::<i64>() {
        Ok(s) if s > 0 => format!("in {}", span(s)),
        Ok(s) => format!("expired {} ago", span(-s)),
        Err(_) => seconds.into(),
    }
}
