//! Settings: a TOML file (kebab-case keys, unknown keys refused) with a few
//! environment overrides for deployment (`SERVICE_BIND`, `SERVICE_DATABASE_URL`,
//! `SERVICE_REDIS_URL`, `SERVICE_SECRETS_DIR`, `SERVICE_AUTH_ISSUER`,
//! `SERVICE_AUTH_AUDIENCE`, `SERVICE_AUTH_JWKS_URL`). Secrets are never
//! settings: a URL carrying a password is refused, and the password goes in the
//! secrets directory instead.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::application::rate_limit::{Limit, RateLimitPolicy};

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("could not read config file `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("invalid config file `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is invalid.
    #[error("invalid setting `{key}`: {message}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// All settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Listen address; loopback unless configured.
    pub bind: SocketAddr,
    /// `sqlite:…` or `postgres://user@host/db` (no password: see `database_password`).
    pub database_url: String,
    /// Pool size.
    pub database_max_connections: u32,
    /// The mounted secrets directory.
    pub secrets_dir: PathBuf,
    /// Redis for shared rate limits; in-process when absent.
    pub redis_url: Option<String>,
    /// Largest request body in bytes.
    pub body_limit_bytes: usize,
    /// Deadline of one request.
    pub request_timeout_secs: u64,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace_secs: u64,
    /// Token settings.
    pub auth: AuthConfig,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite:messages.db".to_owned(),
            database_max_connections: 8,
            secrets_dir: PathBuf::from("/run/secrets"),
            redis_url: None,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 10,
            shutdown_grace_secs: 10,
            auth: AuthConfig::default(),
            rate_limit: RateLimitConfig::default(),
        }
    }
}

/// Token settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AuthConfig {
    /// The only accepted `iss`.
    pub issuer: String,
    /// The `aud` tokens must carry.
    pub audience: String,
    /// The issuer's JWKS URL (https, or http on loopback for tests).
    pub jwks_url: String,
    /// How long a fetched key set is used.
    pub jwks_ttl_secs: u64,
    /// Least time between two refetches (unknown `kid`, failures).
    pub jwks_min_refresh_secs: u64,
    /// Timeout of one fetch.
    pub jwks_timeout_secs: u64,
    /// How long a verified token is remembered (0 disables).
    pub token_cache_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: String::new(),
            jwks_url: String::new(),
            jwks_ttl_secs: 300,
            jwks_min_refresh_secs: 30,
            jwks_timeout_secs: 5,
            token_cache_secs: 60,
        }
    }
}

/// Rate limits per key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RateLimitConfig {
    /// Requests per second (the burst).
    pub per_second: u32,
    /// Requests per minute.
    pub per_minute: u32,
    /// Requests per hour.
    pub per_hour: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_second: 10,
            per_minute: 60,
            per_hour: 1000,
        }
    }
}

impl RateLimitConfig {
    /// The policy these limits describe.
    pub fn policy(&self) -> RateLimitPolicy {
        let limit = |count, secs| Limit {
            count,
            period: Duration::from_secs(secs),
        };
        RateLimitPolicy {
            limits: vec![
                limit(self.per_second, 1),
                limit(self.per_minute, 60),
                limit(self.per_hour, 3600),
            ],
        }
    }
}

impl Config {
    /// Reads `path` (defaults when `None`), applies overrides from `env`, and validates.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => Self::parse_file(path)?,
            None => Self::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn parse_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string(),
        })
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(bind) = env("SERVICE_BIND") {
            self.bind = bind.parse().map_err(|_| ConfigError::Invalid {
                key: "bind",
                message: "SERVICE_BIND must be an address like 127.0.0.1:8080".to_owned(),
            })?;
        }
        let strings: [(&str, &mut String); 4] = [
            ("SERVICE_DATABASE_URL", &mut self.database_url),
            ("SERVICE_AUTH_ISSUER", &mut self.auth.issuer),
            ("SERVICE_AUTH_AUDIENCE", &mut self.auth.audience),
            ("SERVICE_AUTH_JWKS_URL", &mut self.auth.jwks_url),
        ];
        for (name, slot) in strings {
            if let Some(value) = env(name) {
                *slot = value;
            }
        }
        if let Some(url) = env("SERVICE_REDIS_URL") {
            self.redis_url = Some(url);
        }
        if let Some(dir) = env("SERVICE_SECRETS_DIR") {
            self.secrets_dir = PathBuf::from(dir);
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if self.auth.issuer.is_empty() {
            return invalid("auth.issuer", "set the issuer tokens must name in `iss`");
        }
        if self.auth.audience.is_empty() {
            return invalid(
                "auth.audience",
                "set the audience tokens must name in `aud`",
            );
        }
        match reqwest::Url::parse(&self.auth.jwks_url) {
            Ok(url) if url.scheme() == "https" => {}
            Ok(url) if url.scheme() == "http" && is_loopback(&url) => {}
            _ => return invalid("auth.jwks-url", "use an https URL (http only on loopback)"),
        }
        if has_password(&self.database_url) {
            return invalid(
                "database-url",
                "remove the password from the URL and put it in the secrets directory as `database_password`",
            );
        }
        if self.redis_url.as_deref().is_some_and(has_password) {
            return invalid(
                "redis-url",
                "a password in the Redis URL is a secret in a setting; use an unauthenticated loopback or sidecar Redis, or TLS with ACLs",
            );
        }
        let limits = &self.rate_limit;
        if limits.per_second == 0 || limits.per_minute == 0 || limits.per_hour == 0 {
            return invalid("rate-limit", "every limit must be at least 1");
        }
        if self.body_limit_bytes == 0 || self.request_timeout_secs == 0 {
            return invalid("body-limit-bytes", "limits must be positive");
        }
        Ok(())
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn has_password(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|url| url.password().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        // The last pair for a name wins, so a test can override a default.
        move |name| {
            pairs
                .iter()
                .rev()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    const AUTH: &[(&str, &str)] = &[
        ("SERVICE_AUTH_ISSUER", "https://issuer.test"),
        ("SERVICE_AUTH_AUDIENCE", "portcullis"),
        ("SERVICE_AUTH_JWKS_URL", "https://issuer.test/jwks.json"),
    ];

    #[test]
    fn defaults_bind_loopback_and_need_auth_settings() {
        let config = Config::load(None, env(AUTH)).unwrap_or_else(|err| panic!("{err}"));
        assert!(config.bind.ip().is_loopback());
        assert_eq!(config.body_limit_bytes, 1024 * 1024);
        assert!(matches!(
            Config::load(None, env(&[])),
            Err(ConfigError::Invalid {
                key: "auth.issuer",
                ..
            })
        ));
    }

    #[test]
    fn refuses_passwords_in_urls_and_plain_http_keys() {
        let mut pairs = AUTH.to_vec();
        // portcullis:allow rust-hardcoded-credentials-in-url the test shows such a URL is refused
        pairs.push(("SERVICE_DATABASE_URL", "postgres://app:hunter2@db/app")); // portcullis:allow-secret a refused example
        let err = Config::load(None, env(&pairs))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("database_password") && !err.contains("hunter2"),
            "{err}"
        );

        let mut pairs = AUTH.to_vec();
        pairs.push(("SERVICE_AUTH_JWKS_URL", "http://issuer.test/jwks.json"));
        assert!(Config::load(None, env(&pairs)).is_err());
        let loopback = [
            AUTH,
            &[("SERVICE_AUTH_JWKS_URL", "http://127.0.0.1:9/jwks.json")],
        ]
        .concat();
        assert!(Config::load(None, env(&loopback)).is_ok());
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        let path = dir.path().join("service.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:1\"\nbodylimit = 3\n")
            .unwrap_or_else(|err| panic!("{err}"));
        let err = Config::load(Some(&path), env(AUTH))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("bodylimit"), "{err}");
    }
}
