//! The message repository on sqlx: SQLite embedded by default, PostgreSQL in
//! production. The SQL is written once, with numbered parameters (`$1`) that
//! both drivers bind, and only ever parameterised: no value is formatted into
//! a query. Migrations are embedded in the binary and run at startup.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row as _, SqlSafeStr as _};

use crate::application::messages::{MessageRepository, RepositoryError};
use crate::domain::{Message, MessageBody, MessageId, PageRequest, UserId};
use crate::infrastructure::secrets::SecretBytes;

/// The embedded migrations, in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "messages",
    include_str!("../../migrations/0001_messages.sql"),
)];

/// A connection pool on one of the supported databases.
#[derive(Debug, Clone)]
pub enum Database {
    /// Embedded SQLite (file or memory).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs the same statement on whichever pool `$db` holds: the closure-like
/// body is type-checked once per driver.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Database::Sqlite($pool) => $body,
            Database::Postgres($pool) => $body,
        }
    };
}

fn storage(err: impl std::fmt::Display) -> RepositoryError {
    RepositoryError(err.to_string())
}

impl Database {
    /// Connects to `url` (`sqlite:…` or `postgres://…`). The PostgreSQL
    /// password, when given, comes from the secrets provider and never sits in
    /// the URL, which is logged.
    pub async fn connect(
        url: &str,
        password: Option<&SecretBytes>,
        max_connections: u32,
    ) -> Result<Self, RepositoryError> {
        let acquire_timeout = Duration::from_secs(5);
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(storage)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5));
            // An in-memory database exists per connection: keep one.
            let max = if url.contains(":memory:") || url.contains("mode=memory") {
                1
            } else {
                max_connections
            };
            let pool = SqlitePoolOptions::new()
                .max_connections(max)
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await
                .map_err(storage)?;
            return Ok(Self::Sqlite(pool));
        }

        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options = PgConnectOptions::from_str(url).map_err(storage)?;
            if let Some(password) = password {
                let text = password
                    .expose_str()
                    .ok_or_else(|| RepositoryError("database password is not UTF-8".into()))?;
                options = options.password(text);
            }
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await
                .map_err(storage)?;
            return Ok(Self::Postgres(pool));
        }

        Err(RepositoryError(
            "database URL must start with `sqlite:` or `postgres://`".into(),
        ))
    }

    /// Uses `password` for every PostgreSQL connection opened from now on:
    /// how a rotated `database_password` secret reaches the pool without a
    /// restart. Open connections stay as they are (PostgreSQL authenticates
    /// a connection once, when it opens); the pool replaces them as they
    /// reach their lifetime. Does nothing on SQLite, which has no password.
    pub fn set_password(&self, password: &SecretBytes) -> Result<(), RepositoryError> {
        let Self::Postgres(pool) = self else {
            return Ok(());
        };
        let text = password
            .expose_str()
            .ok_or_else(|| RepositoryError("database password is not UTF-8".into()))?;
        let options = (*pool.connect_options()).clone().password(text);
        pool.set_connect_options(options);
        Ok(())
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), RepositoryError> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect();
        let migrator = Migrator::with_migrations(migrations);
        on_pool!(self, pool => migrator.run(pool).await).map_err(storage)
    }
}

fn decode(
    id: String,
    owner: String,
    body: String,
    created_at_ms: i64,
    updated_at_ms: i64,
) -> Result<Message, RepositoryError> {
    // Rows are re-validated on the way out: the database is not trusted to
    // hold only what this service wrote.
    let invalid =
        |err: crate::domain::ValidationError| RepositoryError(format!("invalid stored row: {err}"));
    Ok(Message {
        id: MessageId::parse(&id, "id").map_err(invalid)?,
        owner: UserId::parse(&owner).map_err(invalid)?,
        body: MessageBody::parse(&body).map_err(invalid)?,
        created_at_ms,
        updated_at_ms,
    })
}

macro_rules! decode_row {
    ($row:expr) => {{
        let row = $row;
        decode(
            row.try_get("id").map_err(storage)?,
            row.try_get("owner").map_err(storage)?,
            row.try_get("body").map_err(storage)?,
            row.try_get("created_at").map_err(storage)?,
            row.try_get("updated_at").map_err(storage)?,
        )
    }};
}

#[async_trait::async_trait]
impl MessageRepository for Database {
    async fn insert(&self, message: &Message) -> Result<(), RepositoryError> {
        let sql = "INSERT INTO messages (id, owner, body, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(message.id.to_canonical())
            .bind(message.owner.as_str())
            .bind(message.body.as_str())
            .bind(message.created_at_ms)
            .bind(message.updated_at_ms)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(storage)
    }

    async fn get(&self, owner: &UserId, id: MessageId) -> Result<Option<Message>, RepositoryError> {
        let sql = "SELECT id, owner, body, created_at, updated_at FROM messages \
                   WHERE owner = $1 AND id = $2";
        on_pool!(self, pool => {
            let row = sqlx::query(sql)
                .bind(owner.as_str())
                .bind(id.to_canonical())
                .fetch_optional(pool)
                .await
                .map_err(storage)?;
            row.map(|row| decode_row!(row)).transpose()
        })
    }

    async fn list(
        &self,
        owner: &UserId,
        page: PageRequest,
    ) -> Result<Vec<Message>, RepositoryError> {
        let sql = "SELECT id, owner, body, created_at, updated_at FROM messages \
                   WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3";
        // The empty string sorts before every id: no cursor means from the start.
        let after = page.after.map(|id| id.to_canonical()).unwrap_or_default();
        on_pool!(self, pool => {
            let rows = sqlx::query(sql)
                .bind(owner.as_str())
                .bind(after)
                .bind(i64::from(page.limit))
                .fetch_all(pool)
                .await
                .map_err(storage)?;
            rows.into_iter().map(|row| decode_row!(row)).collect()
        })
    }

    async fn update(
        &self,
        owner: &UserId,
        id: MessageId,
        body: &MessageBody,
        updated_at_ms: i64,
    ) -> Result<Option<Message>, RepositoryError> {
        let sql = "UPDATE messages SET body = $1, updated_at = $2 WHERE owner = $3 AND id = $4 \
                   RETURNING id, owner, body, created_at, updated_at";
        on_pool!(self, pool => {
            let row = sqlx::query(sql)
                .bind(body.as_str())
                .bind(updated_at_ms)
                .bind(owner.as_str())
                .bind(id.to_canonical())
                .fetch_optional(pool)
                .await
                .map_err(storage)?;
            row.map(|row| decode_row!(row)).transpose()
        })
    }

    async fn delete(&self, owner: &UserId, id: MessageId) -> Result<bool, RepositoryError> {
        let sql = "DELETE FROM messages WHERE owner = $1 AND id = $2";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(owner.as_str())
            .bind(id.to_canonical())
            .execute(pool)
            .await
            .map(|done| done.rows_affected() > 0))
        .map_err(storage)
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
            .map_err(storage)
    }
}
