//! Presentation: HTTP routes, extractors, the error type every response goes
//! through, and the middleware stack. This is the only layer that knows HTTP.

pub mod cookies;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;
