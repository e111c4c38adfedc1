//! End-to-end tests of the service over real HTTP on loopback: one test per
//! defence, with a local JWKS server and keys made in the test. The
//! repository tests run against SQLite and, when reachable, the PostgreSQL on
//! loopback; the shared rate limit runs against the Redis on loopback.

#![allow(clippy::unwrap_used, clippy::print_stdout)]
// Helpers in `common` are shared by the modules of this one test binary.
#![allow(unreachable_pub)]

mod auth;
mod bad_input;
mod common;
mod csrf;
mod headers;
mod limits;
mod logs;
mod messages;
mod redis_limit;
mod repository;
