//! CSRF tokens for the double-submit cookie pattern, signed so that an
//! attacker who can plant a cookie (a sibling subdomain, say) still cannot
//! forge one: `base64url(issued_at_secs || nonce || HMAC-SHA256(key, issued_at || nonce))`.
//!
//! See the OWASP CSRF cheat sheet, "Signed Double-Submit Cookie".

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

use crate::application::secrets::SecretBytes;

/// How long a token stays valid.
pub const TOKEN_LIFETIME_SECS: u64 = 3600;
/// Tolerated clock skew for tokens minted by another replica.
const FUTURE_SKEW_SECS: u64 = 60;
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 32;
const TOKEN_LEN: usize = 8 + NONCE_LEN + TAG_LEN;

/// Why a token was refused; the variants become distinct error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    /// No `X-CSRF-Token` header or no `csrf_token` cookie.
    #[error("CSRF token missing")]
    Missing,
    /// The header and the cookie differ.
    #[error("CSRF token does not match its cookie")]
    Mismatch,
    /// Not a token this service signed (bad encoding or bad signature).
    #[error("CSRF token is invalid")]
    Invalid,
    /// Signed by us but older than an hour.
    #[error("CSRF token has expired")]
    Expired,
}

/// Mints and checks CSRF tokens with one HMAC key.
#[derive(Debug, Clone)]
pub struct CsrfTokens {
    key: hmac::Key,
}

impl CsrfTokens {
    /// Uses `secret` (at least 32 bytes, from the secrets provider) as the key.
    pub fn new(secret: &SecretBytes) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose()),
        }
    }

    /// A fresh token issued at `now_secs`.
    pub fn issue(&self, now_secs: u64) -> Result<String, CsrfError> {
        let mut raw = [0u8; TOKEN_LEN];
        raw[..8].copy_from_slice(&now_secs.to_be_bytes());
        aws_lc_rs::rand::fill(&mut raw[8..8 + NONCE_LEN]).map_err(|_| CsrfError::Invalid)?;

        let tag = hmac::sign(&self.key, &raw[..8 + NONCE_LEN]);
        raw[8 + NONCE_LEN..].copy_from_slice(tag.as_ref());
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Checks the double submit: the header value equals the cookie value (in
    /// constant time), and the token is ours and younger than an hour.
    pub fn verify(
        &self,
        header: Option<&str>,
        cookie: Option<&str>,
        now_secs: u64,
    ) -> Result<(), CsrfError> {
        let (Some(header), Some(cookie)) = (header, cookie) else {
            return Err(CsrfError::Missing);
        };
        if !bool::from(header.as_bytes().ct_eq(cookie.as_bytes())) {
            return Err(CsrfError::Mismatch);
        }

        let raw = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| CsrfError::Invalid)?;
        if raw.len() != TOKEN_LEN {
            return Err(CsrfError::Invalid);
        }
        let (signed, tag) = raw.split_at(8 + NONCE_LEN);
        // hmac::verify compares the tags in constant time.
        hmac::verify(&self.key, signed, tag).map_err(|_| CsrfError::Invalid)?;

        let mut issued = [0u8; 8];
        issued.copy_from_slice(&signed[..8]);
        let issued_at = u64::from_be_bytes(issued);
        let is_expired = now_secs.saturating_sub(issued_at) > TOKEN_LIFETIME_SECS;
        let is_from_future = issued_at > now_secs.saturating_add(FUTURE_SKEW_SECS);
        if is_expired || is_from_future {
            return Err(CsrfError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tokens() -> CsrfTokens {
        CsrfTokens::new(&SecretBytes::new(vec![7u8; 32]))
    }

    #[test]
    fn issued_token_verifies_for_an_hour() {
        let csrf = tokens();
        let token = csrf.issue(1_000).unwrap_or_default();
        assert_eq!(csrf.verify(Some(&token), Some(&token), 1_000), Ok(()));
        assert_eq!(
            csrf.verify(Some(&token), Some(&token), 1_000 + 3600),
            Ok(())
        );
        assert_eq!(
            csrf.verify(Some(&token), Some(&token), 1_000 + 3601),
            Err(CsrfError::Expired)
        );
    }

    #[test]
    fn refuses_missing_mismatched_tampered_and_foreign_tokens() {
        let csrf = tokens();
        let token = csrf.issue(1_000).unwrap_or_default();
        let other = csrf.issue(1_000).unwrap_or_default();
        assert_eq!(
            csrf.verify(None, Some(&token), 1_000),
            Err(CsrfError::Missing)
        );
        assert_eq!(
            csrf.verify(Some(&token), None, 1_000),
            Err(CsrfError::Missing)
        );
        assert_eq!(
            csrf.verify(Some(&token), Some(&other), 1_000),
            Err(CsrfError::Mismatch)
        );

        // Move the timestamp forward by one second: the signature no longer holds.
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap_or_default();
        raw[7] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(
            csrf.verify(Some(&tampered), Some(&tampered), 1_000),
            Err(CsrfError::Invalid)
        );

        let foreign = CsrfTokens::new(&SecretBytes::new(vec![8u8; 32]));
        let theirs = foreign.issue(1_000).unwrap_or_default();
        assert_eq!(
            csrf.verify(Some(&theirs), Some(&theirs), 1_000),
            Err(CsrfError::Invalid)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_never_verify_or_panic(text in ".{0,120}") {
            let csrf = tokens();
            prop_assert!(csrf.verify(Some(&text), Some(&text), 1_000).is_err());
        }
    }
}
