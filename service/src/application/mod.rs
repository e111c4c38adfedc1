//! Application services: the use cases of the API (messages, token
//! verification, CSRF tokens, rate limiting) written against small ports
//! (traits) that the infrastructure layer implements. No HTTP types here.

pub mod auth;
pub mod csrf;
pub mod messages;
pub mod rate_limit;
pub mod secrets;
