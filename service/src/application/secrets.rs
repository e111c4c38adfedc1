//! The secrets port: what the application needs from a secrets provider, and
//! the `SecretBytes` type secrets travel in. `Debug` and `Display` print a
//! placeholder, and the memory is wiped when the last copy is dropped. The
//! directory-backed provider lives in `infrastructure::secrets`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A secret value. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct SecretBytes(Arc<Zeroizing<Vec<u8>>>);

impl SecretBytes {
    /// Wraps a value.
    pub fn new(value: Vec<u8>) -> Self {
        Self(Arc::new(Zeroizing::new(value)))
    }

    /// The value, for the one call that needs it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The value as UTF-8 text, if it is.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a secret could not be had. Names the secret, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The name is not a plain file name.
    #[error("invalid secret name `{0}`: use letters, digits, `-` and `_`")]
    InvalidName(String),
    /// The provider has no such secret.
    #[error("secret `{name}` not found in {dir}")]
    NotFound {
        /// The secret.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The provider failed.
    #[error("could not read secret `{name}`: {reason}")]
    Unreadable {
        /// The secret.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Where secrets come from.
pub trait SecretsProvider: Send + Sync + fmt::Debug {
    /// The current value of the secret `name`.
    fn get(&self, name: &str) -> Result<SecretBytes, SecretsError>;
}
