//! Building the application state from the configuration: connect and
//! migrate the database, set up the key fetcher, the secrets provider and the
//! rate-limit store. Every failure names what could not start and why.

use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::application::auth::{TokenPolicy, TokenVerifier};
use crate::application::messages::MessageService;
use crate::application::rate_limit::RateLimitStore;
use crate::config::Config;
use crate::infrastructure::db::Database;
use crate::infrastructure::jwks::{JwksClient, JwksSettings, redact_url};
use crate::infrastructure::rate_store::{MemoryStore, RedisStore};
use crate::infrastructure::secrets::{
    CachedSecrets, DirectorySecrets, SECRET_CACHE_TTL, SecretsError, SecretsProvider,
};
use crate::presentation::middleware::body_limit::SizeLimits;
use crate::presentation::middleware::csrf::SIGNING_KEY_SECRET;

/// The secret holding the PostgreSQL password (optional).
// portcullis:allow rust-hardcoded-password the name of the secret file, not its value
pub const DATABASE_PASSWORD_SECRET: &str = "database_password";

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A secret is missing or unreadable.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(String),
    /// The key fetcher could not be built.
    #[error("JWKS client: {0}")]
    Jwks(String),
    /// Redis could not be reached.
    #[error("rate-limit store: {0}")]
    RateLimit(String),
}

/// Connects everything the configuration names and returns the state.
pub async fn build_state(config: &Config) -> Result<AppState, StartupError> {
    let secrets = Arc::new(CachedSecrets::new(
        DirectorySecrets::new(&config.secrets_dir),
        SECRET_CACHE_TTL,
    ));
    // Fail at startup, not on the first form post, when the CSRF key is absent.
    let csrf_key = secrets.get(SIGNING_KEY_SECRET)?;
    if csrf_key.expose().len() < 32 {
        return Err(StartupError::Secrets(SecretsError::Unreadable {
            name: SIGNING_KEY_SECRET.to_owned(),
            reason: "must hold at least 32 bytes".to_owned(),
        }));
    }

    let password = match secrets.get(DATABASE_PASSWORD_SECRET) {
        Ok(password) => Some(password),
        Err(SecretsError::NotFound { .. }) => None,
        Err(err) => return Err(err.into()),
    };
    let database = Database::connect(
        &config.database_url,
        password.as_ref(),
        config.database_max_connections,
    )
    .await
    .map_err(|err| StartupError::Database(err.to_string()))?;
    database
        .migrate()
        .await
        .map_err(|err| StartupError::Database(err.to_string()))?;

    let auth = &config.auth;
    let jwks = JwksClient::new(JwksSettings {
        url: auth.jwks_url.clone(),
        ttl: Duration::from_secs(auth.jwks_ttl_secs),
        min_refresh_interval: Duration::from_secs(auth.jwks_min_refresh_secs),
        timeout: Duration::from_secs(auth.jwks_timeout_secs),
    })
    .map_err(|err| StartupError::Jwks(err.to_string()))?;
    // A failed first fetch is not fatal: the service starts unready and
    // answers 503 to authenticated requests until the issuer is back.
    if jwks.prefetch().await.is_err() {
        tracing::warn!(url = %redact_url(&auth.jwks_url), "starting without signing keys");
    }
    let policy = TokenPolicy {
        issuer: auth.issuer.clone(),
        audience: auth.audience.clone(),
        cache_ttl: Duration::from_secs(auth.token_cache_secs),
    };

    let rate_limits: Arc<dyn RateLimitStore> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisStore::connect(url)
                .await
                .map_err(|err| StartupError::RateLimit(err.to_string()))?,
        ),
        None => Arc::new(MemoryStore::new()),
    };

    Ok(AppState {
        messages: MessageService::new(Arc::new(database)),
        verifier: TokenVerifier::new(Arc::new(jwks), &policy),
        secrets,
        rate_limits,
        rate_policy: Arc::new(config.rate_limit.policy()),
        size_limits: SizeLimits {
            body_bytes: config.body_limit_bytes,
            ..SizeLimits::default()
        },
        request_timeout: Duration::from_secs(config.request_timeout_secs),
    })
}
