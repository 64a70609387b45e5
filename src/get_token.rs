//! The `get-token` command: check the run against the operator policy, read the subject
//! token and the client secret (on every run), serve a credential from the cache while it
//! is younger than `--cache-max-age`, else exchange, one run per key at a time across
//! processes (an older, unexpired entry is served only when that exchange fails for a
//! transient reason), and render the
//! ExecCredential.

use std::time::Instant;

use crate::cache::{self, Cache, Hit, Miss, Part};
use crate::cli::{Config, Exchange};
use crate::direct;
use crate::error::Error;
use crate::exchange::{Call, Endpoint, Network};
use crate::exec_credential::{self, Credential};
use crate::policy;
use crate::secret::{self, Secret, hex_sha256};
use crate::time::{rfc3339, unix_now};

/// The ExecCredential document for this run, with its newline.
/// `network` is what the process's variables say about trust and proxies.
pub fn run(config: &Config, network: &Network, started: Instant) -> Result<String, Error> {
    // Before any file is read, any connection made or the cache looked at.
    let allowed = policy::enforce(config, network)?;
    let credential = match &config.exchange {
        Some(exchange) => {
            credential(config, &policy::bound(exchange, allowed.as_ref()), network, started + config.timeout)?
        }
        None => direct::credential(&secret::read_subject(&config.token_file)?, &config.token_file, unix_now())?,
    };
    let expiration = credential.expires_at.map(rfc3339);
    Ok(exec_credential::render(config.api_version, &credential.token, expiration.as_deref()) + "\n")
}

/// The credential: from the cache when one younger than `--cache-max-age` is there, else
/// from the identity provider under the per-key lock (with an older, unexpired entry
/// served instead when the identity provider cannot be reached).
fn credential(config: &Config, exchange: &Exchange, network: &Network, deadline: Instant) -> Result<Credential, Error> {
    if exchange.tls.insecure_skip_verify {
        crate::redact::stderr(
            "tokenxchange: warning: --insecure-skip-tls-verify: the identity provider's certificate is not checked",
        );
    }
    let subject = secret::read_subject(&config.token_file)?;
    let client_secret = exchange.client_secret.read()?;
    verbose!("subject token {} from {}", subject.fingerprint(), config.token_file.display());
    let call = Call {
        request: &exchange.request,
        client_secret: &client_secret,
        subject: &subject,
        tls: &exchange.tls,
        network,
        deadline,
        trace: Default::default(),
    };
    let fetch = |cache: Option<&Cache>| call.fetch(cache);

    let Some(cache) = config.cache_dir.as_deref().and_then(Cache::open) else {
        return fetch(None);
    };
    let key = key(config, exchange, &client_secret, &subject);
    let short = cache::short(&key);
    // An unexpired entry younger than the maximum age is served; an older one is kept
    // for when the identity provider cannot be reached.
    let fresh_or_fallback = |read: Result<Hit, Miss>| match read {
        Ok(hit) if hit.age(unix_now()).is_some_and(|age| age < config.cache_max_age.as_secs()) => Ok(hit),
        Ok(hit) => {
            match hit.age(unix_now()) {
                Some(age) => verbose!(
                    "cache entry {short} is {age}s old, --cache-max-age {}s: exchanging again",
                    config.cache_max_age.as_secs()
                ),
                None => verbose!(
                    "cache entry {short} was stored in the future ({}): its age is unknown, exchanging again",
                    rfc3339(hit.stored_at)
                ),
            }
            Err(Some(hit))
        }
        Err(miss) => {
            verbose!("cache miss {short}: {miss}");
            Err(None)
        }
    };
    if config.force_refresh {
        verbose!("cache refresh {short}: --force-refresh");
    } else if let Ok(hit) = fresh_or_fallback(cache.read(&key, unix_now())) {
        return Ok(cache_hit(&key, hit));
    }
    // Wait for a concurrent run at most half the time left, so a stuck one still leaves
    // time for an exchange of our own.
    let _lock = cache.lock(&key, Instant::now() + deadline.saturating_duration_since(Instant::now()) / 2);
    // --force-refresh asks for a new credential: nothing cached stands in for it.
    let fallback = if config.force_refresh {
        None
    } else {
        match fresh_or_fallback(cache.read(&key, unix_now())) {
            Ok(hit) => return Ok(cache_hit(&key, hit)),
            Err(fallback) => fallback,
        }
    };
    match fetch(Some(&cache)) {
        Ok(credential) => {
            cache.write(&key, &credential, unix_now());
            Ok(credential)
        }
        // A credential still valid by its expiry beats no credential while the identity
        // provider is unreachable; a refusal is reported, never masked.
        Err(err) if err.is_transient() => {
            match fallback.filter(|hit| hit.credential.expires_at.is_some_and(|at| at > unix_now())) {
                Some(hit) => {
                    verbose!(
                        "{err}; serving the cached credential {short} stored at {}, valid until {}",
                        rfc3339(hit.stored_at),
                        hit.credential.expires_at.map_or("?".into(), rfc3339)
                    );
                    Ok(hit.credential)
                }
                None => Err(err),
            }
        }
        Err(err) => Err(err),
    }
}

/// Everything that changes the issued token: how the server is trusted, endpoint or
/// issuer, client, a hash of the secret, connector, scopes and audiences as sets, token
/// types, the cluster client-go named, and a hash of the subject token (a rotated token
/// never gets an old credential).
fn key(config: &Config, exchange: &Exchange, client_secret: &Secret, subject: &Secret) -> String {
    let request = &exchange.request;
    let (kind, url) = match &request.endpoint {
        Endpoint::Token(url) => ("token-endpoint", url),
        Endpoint::Issuer(url) => ("issuer", url),
    };
    let connector = request.connector.as_ref().map_or("none".to_string(), |c| format!("some:{c}"));
    // How the token was obtained counts too: one fetched without verifying the server, or
    // over plain HTTP, is never served to a run that verifies.
    let tls = &exchange.tls;
    let trust = match (tls.insecure_skip_verify, request.allow_insecure_http) {
        (true, _) => "unverified",
        (false, true) => "verified, http allowed",
        (false, false) => "verified",
    };
    let ca_files: Vec<String> = tls.ca_files.iter().map(|path| path.to_string_lossy().into_owned()).collect();
    cache::key(&[
        Part::One(trust),
        Part::Set(&ca_files),
        Part::Set(&tls.ca_data),
        Part::One(kind),
        Part::One(url.as_str()),
        Part::One(&request.client_id),
        Part::One(&hex_sha256(client_secret.expose().as_bytes())),
        Part::One(&connector),
        Part::Set(&request.scopes),
        Part::Set(&request.audiences),
        Part::One(&request.subject_token_type),
        Part::One(&request.requested_token_type),
        Part::One(config.cluster.as_deref().unwrap_or("")),
        Part::One(&hex_sha256(subject.expose().as_bytes())),
    ])
}

fn cache_hit(key: &str, hit: Hit) -> Credential {
    verbose!(
        "cache hit {}: token {} stored at {} until {}",
        cache::short(key),
        hit.credential.token.fingerprint(),
        rfc3339(hit.stored_at),
        hit.credential.expires_at.map_or("?".into(), rfc3339)
    );
    hit.credential
}
