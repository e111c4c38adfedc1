//! The issuer's JSON Web Key Set, fetched over HTTPS with rustls, cached for a
//! TTL, and refetched once when a token names an unknown `kid` (key rotation).
//! Refetches are spaced by a minimum interval, so a stream of tokens with
//! made-up `kid`s cannot make the service hammer the issuer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use tokio::sync::{Mutex, RwLock};

use crate::application::auth::{KeyError, KeySource};

/// A key set larger than this is refused as garbage.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// How the key set is fetched and cached.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// The JWKS URL (https in production; http is allowed for loopback tests).
    pub url: String,
    /// How long a fetched set is used before it is refetched.
    pub ttl: Duration,
    /// The least time between two fetches triggered by unknown `kid`s or failures.
    pub min_refresh_interval: Duration,
    /// Timeout of one fetch.
    pub timeout: Duration,
}

#[derive(Default)]
struct Cached {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// A caching JWKS client.
pub struct JwksClient {
    settings: JwksSettings,
    http: reqwest::Client,
    cached: RwLock<Cached>,
    // Single flight: concurrent misses wait for one fetch instead of each fetching.
    refresh: Mutex<()>,
}

impl std::fmt::Debug for JwksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksClient")
            .field("url", &redact_url(&self.settings.url))
            .finish()
    }
}

/// The URL without credentials or query, fit for logs.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}

impl JwksClient {
    /// A client for `settings`; nothing is fetched until the first token.
    pub fn new(settings: JwksSettings) -> Result<Self, KeyError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| KeyError::Unavailable(format!("could not build HTTP client: {err}")))?;
        Ok(Self {
            settings,
            http,
            cached: RwLock::default(),
            refresh: Mutex::new(()),
        })
    }

    /// Fetches the key set now (at startup, so readiness reflects it).
    pub async fn prefetch(&self) -> Result<(), KeyError> {
        let _guard = self.refresh.lock().await;
        self.fetch_and_store().await
    }

    async fn fetch_and_store(&self) -> Result<(), KeyError> {
        self.cached.write().await.last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(url = %redact_url(&self.settings.url), keys = keys.len(), "fetched JWKS");
                let mut cached = self.cached.write().await;
                cached.keys = keys;
                cached.fetched_at = Some(Instant::now());
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(url = %redact_url(&self.settings.url), %reason, "could not fetch JWKS");
                Err(KeyError::Unavailable(reason))
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let mut response = self
            .http
            .get(&self.settings.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| format!("request failed: {}", err.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }

        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| err.without_url().to_string())?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("key set larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }

        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|err| format!("not a JWK set: {err}"))?;
        let keys = usable_keys(&set);
        if keys.is_empty() {
            return Err("key set holds no RS256 signing key with a `kid`".to_owned());
        }
        Ok(keys)
    }
}

/// RSA signing keys with a `kid`, whose `alg` (when given) is RS256.
fn usable_keys(set: &JwkSet) -> HashMap<String, Arc<DecodingKey>> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
            continue;
        };
        let Some(kid) = &jwk.common.key_id else {
            continue;
        };
        let is_signing = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
        let is_rs256 = matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256));
        if !(is_signing && is_rs256) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_rsa_components(&rsa.n, &rsa.e) {
            keys.insert(kid.clone(), Arc::new(key));
        }
    }
    keys
}

impl JwksClient {
    async fn fresh_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let cached = self.cached.read().await;
        let is_fresh = cached
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.settings.ttl);
        cached.keys.get(kid).filter(|_| is_fresh).cloned()
    }

    async fn may_refetch(&self) -> bool {
        let cached = self.cached.read().await;
        let interval = self.settings.min_refresh_interval;
        cached
            .last_attempt
            .is_none_or(|at| at.elapsed() >= interval)
    }

    async fn cached_key(&self, kid: &str) -> Result<Arc<DecodingKey>, KeyError> {
        let cached = self.cached.read().await;
        match cached.keys.get(kid) {
            Some(key) => Ok(key.clone()),
            None if cached.keys.is_empty() => {
                Err(KeyError::Unavailable("no key set fetched".to_owned()))
            }
            None => Err(KeyError::UnknownKid),
        }
    }
}

#[async_trait::async_trait]
impl KeySource for JwksClient {
    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, KeyError> {
        if let Some(key) = self.fresh_key(kid).await {
            return Ok(key);
        }
        if !self.may_refetch().await {
            // Too soon to ask the issuer again: answer from what we have.
            return self.cached_key(kid).await;
        }

        let _guard = self.refresh.lock().await;
        // Another task may have refetched while this one waited for the lock.
        if let Some(key) = self.fresh_key(kid).await {
            return Ok(key);
        }
        if self.may_refetch().await {
            // A failure is logged; the last good set keeps serving below
            // (stale keys beat an outage), and an unknown `kid` stays unknown.
            let _ = self.fetch_and_store().await;
        }
        self.cached_key(kid).await
    }

    async fn is_ready(&self) -> bool {
        !self.cached.read().await.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            redact_url("https://user:pw@issuer.test/jwks.json?token=x#frag"),
            "https://issuer.test/jwks.json"
        );
        assert_eq!(redact_url("not a url"), "<invalid url>");
    }

    #[test]
    fn only_rs256_signing_keys_with_kid_are_kept() {
        let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        let set: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [
            { "kty": "RSA", "kid": "good", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB" },
            { "kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB" },
            { "kty": "RSA", "kid": "ps", "alg": "PS256", "n": n, "e": "AQAB" },
            { "kty": "RSA", "n": n, "e": "AQAB" },
        ]}))
        .unwrap_or_else(|err| panic!("{err}"));
        let keys = usable_keys(&set);
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["good"]);
    }
}
