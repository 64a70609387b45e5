//! RS256 JSON Web Tokens for tests: the two fixture keys (the source cluster's
//! ServiceAccount issuer and Dex), compact JWS signing and signature verification, the
//! JWKS document, and ServiceAccount tokens shaped like the kubelet's. Verification here
//! checks only the signature; the servers check the claims they care about.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use miniserde::json::{self, Array, Number, Object, Value};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, RsaPublicKeyComponents};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;

/// The issuer of the source cluster's ServiceAccount tokens.
pub const SOURCE_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

const SOURCE_KEY_PEM: &str = include_str!("../fixtures/source-cluster-signing-key.pem");
const DEX_KEY_PEM: &str = include_str!("../fixtures/dex-signing-key.pem");
const DEX_ROTATED_KEY_PEM: &str = include_str!("../fixtures/dex-signing-key-2.pem");

/// An RSA signing key with its key id. Cheap to clone.
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<RsaKeyPair>,
    kid: &'static str,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(kid {})", self.kid)
    }
}

impl SigningKey {
    /// The source cluster's ServiceAccount token key, kid `source`.
    pub fn source_cluster() -> SigningKey {
        SigningKey::load(SOURCE_KEY_PEM, "source")
    }

    /// Dex's ID-token key, kid `dex`.
    pub fn dex() -> SigningKey {
        SigningKey::load(DEX_KEY_PEM, "dex")
    }

    /// The key the test Dex rotates to, kid `dex-2`.
    pub fn dex_rotated() -> SigningKey {
        SigningKey::load(DEX_ROTATED_KEY_PEM, "dex-2")
    }

    fn load(pem: &str, kid: &'static str) -> SigningKey {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).expect("fixture key is PKCS#8 PEM");
        let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).expect("fixture key is an RSA key");
        SigningKey { pair: Arc::new(pair), kid }
    }

    pub fn kid(&self) -> &str {
        self.kid
    }

    /// A compact JWS over `claims_json` with header `{"alg":"RS256","kid":..,"typ":"JWT"}`.
    pub fn sign(&self, claims_json: &str) -> String {
        let header = format!(r#"{{"alg":"RS256","kid":{},"typ":"JWT"}}"#, json::to_string(self.kid));
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims_json));
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .expect("RSA signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// `{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":..,"n":..,"e":..}]}`.
    pub fn jwks_json(&self) -> String {
        let (n, e) = self.components();
        let key = object([
            ("kty", string("RSA")),
            ("alg", string("RS256")),
            ("use", string("sig")),
            ("kid", string(self.kid)),
            ("n", string(&URL_SAFE_NO_PAD.encode(n))),
            ("e", string(&URL_SAFE_NO_PAD.encode(e))),
        ]);
        json::to_string(&object([("keys", array([key]))]))
    }

    /// The payload JSON of `jwt` when its RS256 signature is valid for this key.
    pub fn verify(&self, jwt: &str) -> Result<String, String> {
        let [header, payload, sig] = split(jwt).ok_or("not a compact JWS with three parts")?;
        let header = decode_part(header).ok_or("header is not base64url JSON")?;
        let header: Object = json::from_str(&header).map_err(|_| "header is not a JSON object")?;
        if claim_str(&header, "alg").as_deref() != Some("RS256") {
            return Err("alg is not RS256".into());
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| "signature is not base64url")?;
        let (n, e) = self.components();
        let input = &jwt[..jwt.rfind('.').unwrap_or_default()];
        RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
            .map_err(|_| format!("signature does not verify with key {}", self.kid))?;
        decode_part(payload).ok_or_else(|| "payload is not base64url UTF-8".into())
    }

    /// Modulus and exponent, big-endian without leading zeros.
    fn components(&self) -> (Vec<u8>, Vec<u8>) {
        let parts: signature::RsaPublicKeyComponents<Vec<u8>> = self.pair.public().into();
        (strip_zeros(parts.n), strip_zeros(parts.e))
    }
}

/// The payload JSON of `jwt`, without any verification.
pub fn decode_payload(jwt: &str) -> Option<String> {
    decode_part(split(jwt)?[1])
}

/// A ServiceAccount token like the kubelet's, valid from now for `ttl_secs`.
pub fn mint_sa_token(namespace: &str, name: &str, audience: &str, ttl_secs: i64) -> String {
    let now = crate::time::now();
    mint_sa_token_at(namespace, name, audience, now, now + ttl_secs)
}

/// A ServiceAccount token issued at `iat` (also `nbf`) and expiring at `exp`, signed with
/// [`SigningKey::source_cluster`].
pub fn mint_sa_token_at(namespace: &str, name: &str, audience: &str, iat: i64, exp: i64) -> String {
    let pod = format!("{name}-0");
    let kubernetes = object([
        ("namespace", string(namespace)),
        ("pod", object([("name", string(&pod)), ("uid", string(&uid(&["pod", namespace, &pod])))])),
        ("serviceaccount", object([("name", string(name)), ("uid", string(&uid(&["sa", namespace, name])))])),
    ]);
    let claims = object([
        ("aud", array([string(audience)])),
        ("exp", int(exp)),
        ("iat", int(iat)),
        ("iss", string(SOURCE_ISSUER)),
        ("jti", string(&uid(&["jti", namespace, name, &iat.to_string()]))),
        ("kubernetes.io", kubernetes),
        ("nbf", int(iat)),
        ("sub", string(&format!("system:serviceaccount:{namespace}:{name}"))),
    ]);
    SigningKey::source_cluster().sign(&json::to_string(&claims))
}

/// The string member `name` of a JSON object (JWT claims, a header, a response body).
pub fn claim_str(claims: &Object, name: &str) -> Option<String> {
    match claims.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The integer member `name` of a JSON object; a float is truncated.
pub fn claim_int(claims: &Object, name: &str) -> Option<i64> {
    match claims.get(name) {
        Some(Value::Number(Number::U64(n))) => i64::try_from(*n).ok(),
        Some(Value::Number(Number::I64(n))) => Some(*n),
        Some(Value::Number(Number::F64(n))) => Some(*n as i64),
        _ => None,
    }
}

pub(crate) fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let mut object = Object::new();
    for (name, value) in fields {
        object.insert(name.to_string(), value);
    }
    Value::Object(object)
}

pub(crate) fn array<const N: usize>(items: [Value; N]) -> Value {
    let mut array = Array::new();
    array.extend(items);
    Value::Array(array)
}

pub(crate) fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

pub(crate) fn int(n: i64) -> Value {
    Value::Number(Number::I64(n))
}

fn split(jwt: &str) -> Option<[&str; 3]> {
    let mut parts = jwt.split('.');
    let parts = [parts.next()?, parts.next()?, parts.next()?];
    (jwt.matches('.').count() == 2).then_some(parts)
}

fn decode_part(part: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

fn strip_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// A stable UUID-shaped id derived from `parts`.
fn uid(parts: &[&str]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, parts.join("/").as_bytes());
    let hex: String = digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() -> Result<(), String> {
        let key = SigningKey::dex();
        let jwt = key.sign(r#"{"sub":"x"}"#);
        assert_eq!(key.verify(&jwt)?, r#"{"sub":"x"}"#);
        assert_eq!(decode_payload(&jwt).as_deref(), Some(r#"{"sub":"x"}"#));
        let header = decode_part(jwt.split('.').next().unwrap_or_default());
        assert_eq!(header.as_deref(), Some(r#"{"alg":"RS256","kid":"dex","typ":"JWT"}"#));
        Ok(())
    }

    #[test]
    fn rejects_other_keys_and_tampering() {
        let jwt = SigningKey::source_cluster().sign(r#"{"sub":"x"}"#);
        assert!(SigningKey::dex().verify(&jwt).is_err());
        let [h, _, s] = split(&jwt).expect("three parts");
        let forged = format!("{h}.{}.{s}", URL_SAFE_NO_PAD.encode(r#"{"sub":"y"}"#));
        assert!(SigningKey::source_cluster().verify(&forged).is_err());
        assert!(SigningKey::source_cluster().verify("a.b").is_err());
        assert!(SigningKey::source_cluster().verify("a.b.c.d").is_err());
    }

    #[test]
    fn jwks_has_the_public_key() -> Result<(), String> {
        let jwks: Object = json::from_str(&SigningKey::source_cluster().jwks_json()).map_err(|e| e.to_string())?;
        let Some(Value::Array(keys)) = jwks.get("keys") else { return Err("no keys".into()) };
        let Some(Value::Object(key)) = keys.first() else { return Err("no key".into()) };
        assert_eq!(claim_str(key, "kid").as_deref(), Some("source"));
        assert_eq!(claim_str(key, "e").as_deref(), Some("AQAB"));
        let n = URL_SAFE_NO_PAD.decode(claim_str(key, "n").unwrap_or_default()).map_err(|e| e.to_string())?;
        assert_eq!(n.len(), 256);
        Ok(())
    }

    #[test]
    fn mints_kubelet_shaped_tokens() -> Result<(), String> {
        let jwt = mint_sa_token_at("argocd", "argocd-server", "dex", 1000, 4600);
        let claims: Object = json::from_str(&SigningKey::source_cluster().verify(&jwt)?).map_err(|e| e.to_string())?;
        assert_eq!(claim_str(&claims, "iss").as_deref(), Some(SOURCE_ISSUER));
        assert_eq!(claim_str(&claims, "sub").as_deref(), Some("system:serviceaccount:argocd:argocd-server"));
        assert_eq!(
            (claim_int(&claims, "iat"), claim_int(&claims, "nbf"), claim_int(&claims, "exp")),
            (Some(1000), Some(1000), Some(4600))
        );
        let Some(Value::Array(aud)) = claims.get("aud") else { return Err("aud is not an array".into()) };
        assert!(matches!(aud.as_slice(), [Value::String(a)] if a == "dex"));
        let Some(Value::Object(k8s)) = claims.get("kubernetes.io") else { return Err("no kubernetes.io".into()) };
        assert_eq!(claim_str(k8s, "namespace").as_deref(), Some("argocd"));
        Ok(())
    }
}
