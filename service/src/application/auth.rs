//! Access-token verification: RS256 JWTs only, keys from a `KeySource` (the
//! issuer's JWKS), audience and issuer pinned by configuration, `exp` enforced
//! with a small leeway, and `sub`, `exp`, `iat` and `iss` required.
//!
//! The algorithm is read from the header and refused before any key lookup or
//! signature work unless it is exactly `RS256`: this closes `alg: none` and
//! the HS256-with-the-public-key confusion (RFC 8725, section 2.1 and 3.1).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::domain::UserId;

/// Tokens longer than this are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 30;
/// Most verified tokens remembered at once.
const CACHE_CAPACITY: usize = 10_000;

/// Why a token was refused. Each becomes a stable error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the header or the cookie.
    #[error("authentication required")]
    Missing,
    /// Not three base64url segments with a JSON header and claims.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than RS256.
    #[error("token algorithm not accepted")]
    Algorithm,
    /// The header's `kid` is not in the issuer's key set.
    #[error("token signed with an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token signature invalid")]
    Signature,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` lies in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `aud` does not name this service.
    #[error("token audience not accepted")]
    Audience,
    /// `iss` is not the configured issuer.
    #[error("token issuer not accepted")]
    Issuer,
    /// A required claim is missing or has the wrong type.
    #[error("token claims missing or invalid")]
    Claims,
    /// The key endpoint could not be reached or answered garbage.
    #[error("signing keys unavailable")]
    KeysUnavailable,
}

/// Why a key could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key set (freshly fetched, or refetched too recently to try again)
    /// has no such key.
    #[error("no key with this id")]
    UnknownKid,
    /// The key set could not be fetched and none is cached.
    #[error("key set unavailable: {0}")]
    Unavailable(String),
}

/// Where verification keys come from.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + fmt::Debug {
    /// The RS256 key with this `kid`.
    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, KeyError>;
    /// Whether a key set is loaded (readiness).
    async fn is_ready(&self) -> bool;
}

/// What the service expects of its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// The only accepted `iss`.
    pub issuer: String,
    /// The `aud` that must be present.
    pub audience: String,
    /// How long a verified token is remembered (0 disables the cache).
    pub cache_ttl: Duration,
}

/// The identity proven by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The verified `sub`.
    pub user: UserId,
    /// Its `exp`, seconds since the epoch.
    pub expires_at: u64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)] // `iat` and `iss` are required to be present; jsonwebtoken checks `iss`.
struct Claims {
    sub: String,
    exp: u64,
    iat: u64,
    iss: String,
}

/// Recently verified tokens, by a keyed hash of the token (`TokenVerifier::
/// slot`).
type VerifiedCache = Arc<Mutex<HashMap<u64, Remembered>>>;

/// A verified token as the cache keeps it.
struct Remembered {
    /// The token itself, which a hit must equal (compared in constant time),
    /// so a hash collision costs a re-verification and never an identity.
    /// Wiped when the entry goes.
    token: Zeroizing<Box<[u8]>>,
    /// When it was verified, seconds since the epoch.
    verified_at: u64,
    verified: VerifiedToken,
}

// The token is a credential: never in debug output.
impl fmt::Debug for Remembered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remembered")
            .field("verified_at", &self.verified_at)
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

/// Verifies access tokens. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    keys: Arc<dyn KeySource>,
    validation: Arc<Validation>,
    cache_ttl: Duration,
    cache: VerifiedCache,
    /// SipHash with this process's random key: which slot a token takes.
    /// A keyed hash rather than SHA-256: it only spreads tokens (a hit is
    /// confirmed against the token itself), and SHA-256 of a token was a
    /// fifth of the stack's work per request, done twice (limiter, auth).
    slots: RandomState,
}

impl TokenVerifier {
    /// A verifier for `policy` with keys from `keys`.
    pub fn new(keys: Arc<dyn KeySource>, policy: &TokenPolicy) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&policy.audience]);
        validation.set_issuer(&[&policy.issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        Self {
            keys,
            validation: Arc::new(validation),
            cache_ttl: policy.cache_ttl,
            cache: Arc::default(),
            slots: RandomState::new(),
        }
    }

    /// Whether the key source has keys.
    pub async fn is_ready(&self) -> bool {
        self.keys.is_ready().await
    }

    /// Verifies `token` and returns who it proves.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        let now = now_secs();
        let slot = self.slot(token);
        if let Some(verified) = self.cached(token, slot, now) {
            return Ok(verified);
        }
        // Boxed: the full check runs once per token per cache lifetime, and
        // its future is large; every request's future would otherwise carry
        // room for it.
        Box::pin(self.verify_uncached(token, slot, now)).await
    }

    /// The full check: header, key, signature, claims. Remembers the result.
    async fn verify_uncached(
        &self,
        token: &str,
        slot: u64,
        now: u64,
    ) -> Result<VerifiedToken, AuthError> {
        // The header alone decides whether any key or signature work happens.
        let header = read_header(token)?;
        if header.alg != "RS256" {
            return Err(AuthError::Algorithm);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;

        let key = self.keys.key(&kid).await.map_err(|err| match err {
            KeyError::UnknownKid => AuthError::UnknownKey,
            KeyError::Unavailable(_) => AuthError::KeysUnavailable,
        })?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map_err(|err| map_jwt_error(err.kind()))?;

        let claims = data.claims;
        if claims.iat > now + LEEWAY_SECS {
            return Err(AuthError::NotYetValid);
        }
        let user = UserId::parse(&claims.sub).map_err(|_| AuthError::Claims)?;
        let verified = VerifiedToken {
            user,
            expires_at: claims.exp,
        };
        self.remember(token, slot, &verified, now);
        Ok(verified)
    }

    /// Where `token` is remembered in the cache.
    fn slot(&self, token: &str) -> u64 {
        self.slots.hash_one(token.as_bytes())
    }

    fn cached(&self, token: &str, slot: u64, now: u64) -> Option<VerifiedToken> {
        if self.cache_ttl.is_zero() {
            return None;
        }
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let entry = cache.get(&slot)?;
        // Constant time: how much of another user's token matched must not
        // show in how long the answer took. (aws-lc's compare: `subtle`'s,
        // a byte at a time, took 0.65 us for a 600-byte token, this 0.03.)
        aws_lc_rs::constant_time::verify_slices_are_equal(&entry.token, token.as_bytes()).ok()?;
        // A cached token still has to be unexpired now, not just when it was
        // checked. Whole seconds of the wall clock already read for `exp`
        // (the TTL is configured in seconds); a clock that went back makes
        // the entry stale rather than fresh for longer.
        let age = now.checked_sub(entry.verified_at);
        let is_fresh = age.is_some_and(|age| age < self.cache_ttl.as_secs().max(1));
        let is_unexpired = entry.verified.expires_at + LEEWAY_SECS >= now;
        (is_fresh && is_unexpired).then(|| entry.verified.clone())
    }

    fn remember(&self, token: &str, slot: u64, verified: &VerifiedToken, now: u64) {
        if self.cache_ttl.is_zero() {
            return;
        }
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            // Crude but bounded: a flood of distinct valid tokens only costs
            // re-verification, never memory.
            cache.clear();
        }
        // A token already in this slot is replaced: a collision (which needs
        // two tokens that both verified) only makes both miss more often.
        let entry = Remembered {
            token: Zeroizing::new(token.as_bytes().into()),
            verified_at: now,
            verified: verified.clone(),
        };
        cache.insert(slot, entry);
    }
}

fn read_header(token: &str) -> Result<Header, AuthError> {
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(AuthError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::Signature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAudience => AuthError::Audience,
        ErrorKind::InvalidIssuer => AuthError::Issuer,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => AuthError::Claims,
        ErrorKind::Json(_) => AuthError::Claims,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::Algorithm,
        _ => AuthError::Malformed,
    }
}

fn now_secs() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug)]
    struct NoKeys;

    #[async_trait::async_trait]
    impl KeySource for NoKeys {
        async fn key(&self, _kid: &str) -> Result<Arc<DecodingKey>, KeyError> {
            Err(KeyError::UnknownKid)
        }
        async fn is_ready(&self) -> bool {
            false
        }
    }

    fn verifier() -> TokenVerifier {
        let policy = TokenPolicy {
            issuer: "https://issuer.test".into(),
            audience: "portcullis".into(),
            cache_ttl: Duration::from_secs(60),
        };
        TokenVerifier::new(Arc::new(NoKeys), &policy)
    }

    fn token(header: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode("{}"),
            "c2ln"
        )
    }

    #[tokio::test]
    async fn refuses_other_algorithms_from_the_header() {
        let verifier = verifier();
        for alg in ["none", "HS256", "RS512", "PS256", "ES256", "rs256"] {
            let header = format!(r#"{{"alg":"{alg}","kid":"k1"}}"#);
            assert_eq!(
                verifier.verify(&token(&header)).await,
                Err(AuthError::Algorithm),
                "{alg}"
            );
        }
        let unknown = token(r#"{"alg":"RS256","kid":"k1"}"#);
        assert_eq!(verifier.verify(&unknown).await, Err(AuthError::UnknownKey));
        let no_kid = token(r#"{"alg":"RS256"}"#);
        assert_eq!(verifier.verify(&no_kid).await, Err(AuthError::UnknownKey));
    }

    #[tokio::test]
    async fn refuses_malformed_shapes() {
        let verifier = verifier();
        for bad in ["", "a", "a.b", "a.b.c.d", "!!.e30.e30", "e30.e30.e30"] {
            assert!(verifier.verify(bad).await.is_err(), "{bad}");
        }
        assert_eq!(
            verifier.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)).await,
            Err(AuthError::Malformed)
        );
    }

    /// Alice, verified, her token expiring at 1 100 s.
    fn alice() -> VerifiedToken {
        VerifiedToken {
            user: UserId::parse("alice").unwrap_or_else(|_| unreachable!()),
            expires_at: 1_100,
        }
    }

    #[test]
    fn cached_tokens_live_the_ttl_never_past_exp_and_not_across_a_clock_going_back() {
        let verifier = verifier();
        let verified = alice();
        let remember = |token: &str, verified: &VerifiedToken| {
            verifier.remember(token, verifier.slot(token), verified, 1_000);
        };
        let cached = |token: &str, now| verifier.cached(token, verifier.slot(token), now);
        remember("t.seven", &verified);
        let at = |now| cached("t.seven", now).is_some();
        assert!(at(1_000) && at(1_059), "within the 60 s TTL");
        assert!(!at(1_060), "the TTL has passed");
        assert!(!at(999), "the clock went back");
        assert!(cached("t.eight", 1_000).is_none(), "another token");

        // A token close to its `exp` stays only until `exp` and the leeway.
        let short = VerifiedToken {
            expires_at: 1_010,
            ..verified
        };
        remember("t.nine", &short);
        assert!(cached("t.nine", 1_000 + 10 + LEEWAY_SECS).is_some());
        assert!(cached("t.nine", 1_000 + 11 + LEEWAY_SECS).is_none());
    }

    #[test]
    fn a_slot_hit_counts_only_for_the_very_token_remembered() {
        let verifier = verifier();
        let alice = alice();
        let slot = verifier.slot("alice.token.sig");
        verifier.remember("alice.token.sig", slot, &alice, 1_000);
        // Another token that lands in the same slot (a collision, forced
        // here) is not taken for Alice, whatever it shares with her token.
        for other in ["alice.token.sih", "alice.token.si", "alice.token.sig.", ""] {
            assert_eq!(verifier.cached(other, slot, 1_000), None, "{other:?}");
        }
        assert_eq!(
            verifier.cached("alice.token.sig", slot, 1_000),
            Some(alice.clone())
        );
        // It takes the slot over, and Alice's token misses from then on.
        verifier.remember("bob.token.sig", slot, &alice, 1_000);
        assert_eq!(verifier.cached("alice.token.sig", slot, 1_000), None);
    }

    proptest! {
        #[test]
        fn header_reader_never_panics(text in ".{0,200}") {
            let _ = read_header(&text);
        }
    }
}
