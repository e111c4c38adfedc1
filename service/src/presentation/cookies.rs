//! Reading the `Cookie` header and writing `Set-Cookie` with the flags this
//! service requires. A name sent twice is treated as absent: two values for
//! one cookie is what cookie tossing from a sibling domain looks like.

use axum::http::{HeaderMap, HeaderValue, header};

/// The access token cookie (HttpOnly).
pub const ACCESS_TOKEN: &str = "access_token";
/// The refresh token cookie (HttpOnly).
pub const REFRESH_TOKEN: &str = "refresh_token";
/// The CSRF cookie (readable by scripts, which echo it in `X-CSRF-Token`).
pub const CSRF_TOKEN: &str = "csrf_token";

/// The value of cookie `name`, if sent exactly once.
pub fn get<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            let Some((key, value)) = pair.trim().split_once('=') else {
                continue;
            };
            if key != name {
                continue;
            }
            if found.is_some() {
                return None;
            }
            found = Some(value.trim_matches('"'));
        }
    }
    found
}

/// Whether `value` can go into a cookie unquoted (RFC 6265, section 4.1.1),
/// bounded in length. Values from clients are checked before they are set.
pub fn is_safe_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 4096
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
}

/// A `Set-Cookie` value: always `Secure` and `SameSite=Lax`, `HttpOnly` unless
/// scripts must read it, on `/`.
pub fn set(name: &str, value: &str, max_age_secs: u64, http_only: bool) -> Option<HeaderValue> {
    if !is_safe_value(value) && max_age_secs > 0 {
        return None;
    }
    let http_only = if http_only { "; HttpOnly" } else { "" };
    let cookie =
        format!("{name}={value}; Path=/; Max-Age={max_age_secs}; Secure; SameSite=Lax{http_only}");
    HeaderValue::from_str(&cookie).ok()
}

/// A `Set-Cookie` value that deletes `name`.
pub fn clear(name: &str, http_only: bool) -> Option<HeaderValue> {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Max-Age=0; Secure; SameSite=Lax{http_only}"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.append(header::COOKIE, value);
            }
        }
        map
    }

    #[test]
    fn reads_one_value_and_refuses_duplicates() {
        let map = headers(&["a=1; csrf_token=xyz", "b=2"]);
        assert_eq!(get(&map, "csrf_token"), Some("xyz"));
        assert_eq!(get(&map, "b"), Some("2"));
        assert_eq!(get(&map, "missing"), None);
        let tossed = headers(&["csrf_token=mine", "csrf_token=theirs"]);
        assert_eq!(get(&tossed, "csrf_token"), None);
    }

    #[test]
    fn set_cookie_flags() {
        let value =
            set(ACCESS_TOKEN, "abc.def", 60, true).map(|v| v.to_str().unwrap_or("").to_owned());
        assert_eq!(
            value.as_deref(),
            Some("access_token=abc.def; Path=/; Max-Age=60; Secure; SameSite=Lax; HttpOnly")
        );
        assert!(set(ACCESS_TOKEN, "a;b", 60, true).is_none());
        assert!(set(ACCESS_TOKEN, "a\r\nSet-Cookie: x", 60, true).is_none());
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in "[ -~]{0,200}") {
            let map = headers(&[&text]);
            let _ = get(&map, "csrf_token");
        }
    }
}
