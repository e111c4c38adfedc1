//! Infrastructure: the adapters behind the application's ports. The database
//! (sqlx, SQLite or PostgreSQL), the JWKS key fetcher, the secrets provider and
//! the rate-limit stores (in process or Redis).

pub mod db;
pub mod jwks;
pub mod rate_store;
pub mod secrets;
