//! Building the application state from the configuration: connect and
//! migrate the database, set up the key fetcher, the secrets provider and the
//! rate-limit store. Every failure names what could not start and why.

use std::sync::Arc;
use std::time::Duration;

use crate::app::{AppServices, AppState};
use crate::application::auth::{TokenPolicy, TokenVerifier};
use crate::application::messages::MessageService;
use crate::application::rate_limit::RateLimitStore;
use crate::config::Config;
use crate::infrastructure::db::Database;
use crate::infrastructure::jwks::{JwksClient, JwksSettings, redact_url};
use crate::infrastructure::rate_store::{MemoryStore, RedisStore};
use crate::infrastructure::secrets::{
    CachedSecrets, DirectorySecrets, SECRET_CACHE_TTL, SecretBytes, SecretsError, SecretsProvider,
};
use crate::presentation::middleware::body_limit::SizeLimits;
use crate::presentation::middleware::csrf::SIGNING_KEY_SECRET;

/// The secret holding the PostgreSQL password (optional).
// portcullis:allow rust-hardcoded-password the name of the secret file, not its value
pub const DATABASE_PASSWORD_SECRET: &str = "database_password";

/// How often the database password is re-read. Reads go through the secrets
/// cache, so a rotated secret reaches new connections within this interval
/// plus the cache's five minutes.
pub const PASSWORD_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Keeps the pool's PostgreSQL password equal to the `database_password`
/// secret: every `every`, reads it from `secrets` and, when it differs from
/// the one in use, gives it to the pool for the connections it opens from
/// then on. A secret that cannot be read leaves the password in use alone and
/// is logged by name (never by value). Runs until the task is aborted or its
/// runtime stops.
pub fn watch_database_password(
    database: Database,
    secrets: Arc<dyn SecretsProvider>,
    mut current: Option<SecretBytes>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; `current` is fresh
        loop {
            ticks.tick().await;
            let latest = match secrets.get(DATABASE_PASSWORD_SECRET) {
                Ok(latest) => latest,
                // No secret, no password: trust or certificate authentication.
                Err(SecretsError::NotFound { .. }) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, "keeping the database password in use");
                    continue;
                }
            };
            if current
                .as_ref()
                .is_some_and(|current| current.expose() == latest.expose())
            {
                continue;
            }
            match database.set_password(&latest) {
                Ok(()) => {
                    tracing::info!("database password rotated; new connections use it");
                    current = Some(latest);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "keeping the database password in use");
                }
            }
        }
    })
}

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

    if matches!(database, Database::Postgres(_)) {
        // Detached: it lives as long as the runtime serving the state.
        drop(watch_database_password(
            database.clone(),
            secrets.clone(),
            password,
            PASSWORD_REFRESH_INTERVAL,
        ));
    }

    Ok(AppState::new(AppServices {
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
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::sync::mpsc;

    /// A PostgreSQL server that asks every client for a cleartext password,
    /// reports the password it was sent, and refuses the login.
    async fn password_recorder() -> (u16, mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sent, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let sent = sent.clone();
                tokio::spawn(async move {
                    // Startup packets: length (itself included), then payload.
                    loop {
                        let length = stream.read_u32().await.unwrap() as usize;
                        let mut payload = vec![0; length - 4];
                        stream.read_exact(&mut payload).await.unwrap();
                        if payload[..4] == 80_877_103u32.to_be_bytes() {
                            stream.write_all(b"N").await.unwrap(); // no TLS
                            continue;
                        }
                        break;
                    }
                    // AuthenticationCleartextPassword.
                    stream.write_all(b"R\0\0\0\x08\0\0\0\x03").await.unwrap();
                    assert_eq!(stream.read_u8().await.unwrap(), b'p');
                    let length = stream.read_u32().await.unwrap() as usize;
                    let mut password = vec![0; length - 4];
                    stream.read_exact(&mut password).await.unwrap();
                    password.pop(); // the terminating NUL
                    sent.send(String::from_utf8(password).unwrap()).unwrap();
                    let fields = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0";
                    let mut error = vec![b'E'];
                    error.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
                    error.extend_from_slice(fields);
                    let _ = stream.write_all(&error).await;
                });
            }
        });
        (port, received)
    }

    #[tokio::test]
    async fn a_rotated_database_password_reaches_new_connections() {
        let (port, mut received) = password_recorder().await;
        let options = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port)
            .username("service")
            .database("messages")
            .ssl_mode(PgSslMode::Disable)
            .password("first-password");
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        let database = Database::Postgres(pool.clone());

        assert!(pool.acquire().await.is_err());
        assert_eq!(received.recv().await.unwrap(), "first-password");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(DATABASE_PASSWORD_SECRET),
            "second-password\n",
        )
        .unwrap();
        let watcher = watch_database_password(
            database,
            Arc::new(DirectorySecrets::new(dir.path())),
            Some(SecretBytes::new(b"first-password".to_vec())),
            Duration::from_millis(10),
        );
        // The watcher applies the change within a tick or two.
        let mut seen = String::new();
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert!(pool.acquire().await.is_err());
            seen = received.recv().await.unwrap();
            if seen != "first-password" {
                break;
            }
        }
        watcher.abort();
        assert_eq!(seen, "second-password");
    }
}
