//! The bundled secured service of Portcullis: a small messages API built as a
//! reference for layered defence and zero-trust request handling, and the
//! real input of the pipeline's container and DAST stages.
//!
//! Layers, inside out: `domain` (types and rules, no framework),
//! `application` (use cases over ports), `infrastructure` (sqlx, JWKS,
//! secrets, rate-limit stores), `presentation` (routes, extractors,
//! middleware). `app::build_router` assembles them; `startup` builds the
//! state from a `config::Config`.

pub mod app;
pub mod application;
pub mod config;
pub mod domain;
pub mod infrastructure;
pub mod logging;
pub mod presentation;
pub mod startup;

pub use app::{AppState, bare_router, build_router};
pub use config::Config;
