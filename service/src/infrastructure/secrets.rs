//! Secrets: read from a secrets provider (a mounted directory, one file per
//! secret, as Kubernetes and Docker secrets mount them), cached for five
//! minutes so a rotated file is picked up without a restart. Never from
//! environment variables (they leak into child processes, crash reports and
//! `/proc`), and never logged: values travel in `SecretBytes`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use crate::application::secrets::{SecretBytes, SecretsError, SecretsProvider};

/// How long a secret read from the provider is reused.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);
/// Secret files larger than this are refused (a secret is not a document).
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Secrets mounted as files in a directory: `<dir>/<name>`, trailing newline
/// trimmed (editors and `echo` add one).
#[derive(Debug, Clone)]
pub struct DirectorySecrets {
    dir: PathBuf,
}

impl DirectorySecrets {
    /// Reads secrets from `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SecretsProvider for DirectorySecrets {
    fn get(&self, name: &str) -> Result<SecretBytes, SecretsError> {
        // The name becomes a path: refuse anything that could leave the directory.
        if !is_valid_name(name) {
            return Err(SecretsError::InvalidName(name.to_owned()));
        }
        let path = self.dir.join(name);
        let unreadable = |reason: String| SecretsError::Unreadable {
            name: name.to_owned(),
            reason,
        };

        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(SecretsError::NotFound {
                    name: name.to_owned(),
                    dir: self.dir.clone(),
                });
            }
            Err(err) => return Err(unreadable(err.to_string())),
        };
        if !metadata.is_file() || metadata.len() > MAX_SECRET_BYTES {
            return Err(unreadable(format!(
                "not a regular file of at most {MAX_SECRET_BYTES} bytes"
            )));
        }

        let mut value = std::fs::read(&path).map_err(|err| unreadable(err.to_string()))?;
        while value.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            value.pop();
        }
        Ok(SecretBytes::new(value))
    }
}

/// A provider in front of another that reuses each value for a TTL.
#[derive(Debug)]
pub struct CachedSecrets<P> {
    inner: P,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, SecretBytes)>>,
}

impl<P: SecretsProvider> CachedSecrets<P> {
    /// Caches `inner` for `ttl` (five minutes in the service).
    pub fn new(inner: P, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl<P: SecretsProvider> SecretsProvider for CachedSecrets<P> {
    fn get(&self, name: &str) -> Result<SecretBytes, SecretsError> {
        let now = Instant::now();
        {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            if let Some((read_at, value)) = cache.get(name)
                && now.duration_since(*read_at) < self.ttl
            {
                return Ok(value.clone());
            }
        }

        let value = self.inner.get(name)?;
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache.insert(name.to_owned(), (now, value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trims_and_redacts() {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        std::fs::write(dir.path().join("csrf_signing_key"), "s3cr3t-value\n")
            .unwrap_or_else(|err| panic!("{err}"));
        let secrets = DirectorySecrets::new(dir.path());

        let value = secrets
            .get("csrf_signing_key")
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(value.expose(), b"s3cr3t-value");
        assert!(!format!("{value:?} {value}").contains("s3cr3t"));
        assert!(matches!(
            secrets.get("missing"),
            Err(SecretsError::NotFound { .. })
        ));
        for name in ["../etc/passwd", "a/b", "", ".hidden"] {
            assert!(
                matches!(secrets.get(name), Err(SecretsError::InvalidName(_))),
                "{name}"
            );
        }
    }

    #[test]
    fn cache_serves_the_old_value_until_the_ttl() {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        let path = dir.path().join("key");
        std::fs::write(&path, "one").unwrap_or_else(|err| panic!("{err}"));

        let cached = CachedSecrets::new(DirectorySecrets::new(dir.path()), SECRET_CACHE_TTL);
        let read =
            |c: &CachedSecrets<DirectorySecrets>| c.get("key").map(|v| v.expose().to_vec()).ok();
        assert_eq!(read(&cached), Some(b"one".to_vec()));
        std::fs::write(&path, "two").unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(read(&cached), Some(b"one".to_vec()));

        let uncached = CachedSecrets::new(DirectorySecrets::new(dir.path()), Duration::ZERO);
        assert_eq!(read(&uncached), Some(b"two".to_vec()));
    }
}
