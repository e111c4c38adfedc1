//! The same repository tests against SQLite and PostgreSQL. PostgreSQL comes
//! from `SERVICE_TEST_POSTGRES_URL` (default: the server on loopback); the
//! tests create a database of their own and drop it afterwards, and skip
//! with a printed reason when no server is reachable.

use std::sync::Arc;

use service::application::messages::{MessageError, MessageRepository, MessageService};
use service::domain::{MessageBody, MessageId, PageRequest, UserId};
use service::infrastructure::db::Database;
use sqlx::Connection as _;

fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

fn body(text: &str) -> MessageBody {
    MessageBody::parse(text).unwrap()
}

/// The behaviour every backend must have.
async fn exercise(db: Database) {
    db.migrate().await.unwrap();
    // Migrating twice is a no-op.
    db.migrate().await.unwrap();
    db.ping().await.unwrap();
    let service = MessageService::new(Arc::new(db));
    let (alice, bob) = (user("alice"), user("bob"));

    let mut ids = Vec::new();
    for idx in 0..5 {
        ids.push(
            service
                .create(&alice, body(&format!("note {idx}")))
                .await
                .unwrap()
                .id,
        );
    }
    let bobs = service
        .create(&bob, body("bob's; DROP TABLE messages; --"))
        .await
        .unwrap();

    // Keyset pagination, in creation order, scoped by owner.
    let first = service
        .list(&alice, PageRequest::new(Some(2), None).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        ids[..2]
    );
    let second = service
        .list(&alice, PageRequest::new(Some(2), first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        ids[2..4]
    );
    let last = service
        .list(&alice, PageRequest::new(Some(2), second.next).unwrap())
        .await
        .unwrap();
    assert_eq!((last.items.len(), last.next), (1, None));

    // Read, update, delete are scoped by owner.
    assert_eq!(
        service.read(&alice, ids[0]).await.unwrap().body.as_str(),
        "note 0"
    );
    assert!(matches!(
        service.read(&bob, ids[0]).await,
        Err(MessageError::NotFound)
    ));
    assert!(matches!(
        service.update(&bob, ids[0], body("x")).await,
        Err(MessageError::NotFound)
    ));
    assert!(matches!(
        service.delete(&bob, ids[0]).await,
        Err(MessageError::NotFound)
    ));
    assert_eq!(
        service.read(&alice, ids[0]).await.unwrap().body.as_str(),
        "note 0"
    );

    let updated = service
        .update(&alice, ids[0], body("changed"))
        .await
        .unwrap();
    assert_eq!(updated.body.as_str(), "changed");
    assert!(updated.updated_at_ms >= updated.created_at_ms);
    service.delete(&alice, ids[0]).await.unwrap();
    assert!(matches!(
        service.read(&alice, ids[0]).await,
        Err(MessageError::NotFound)
    ));
    assert!(matches!(
        service.read(&alice, MessageId::new()).await,
        Err(MessageError::NotFound)
    ));

    // Hostile text is stored as data, never run.
    assert_eq!(
        service.read(&bob, bobs.id).await.unwrap().body.as_str(),
        "bob's; DROP TABLE messages; --"
    );
}

#[tokio::test]
async fn sqlite_repository() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("repo.db").display());
    exercise(Database::connect(&url, None, 4).await.unwrap()).await;
    exercise(Database::connect("sqlite::memory:", None, 4).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_repository() {
    let admin_url = std::env::var("SERVICE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let connect = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        sqlx::PgConnection::connect(&admin_url),
    );
    let mut admin = match connect.await {
        Ok(Ok(connection)) => connection,
        Ok(Err(err)) => {
            println!(
                "SKIPPED postgres_repository: cannot connect to PostgreSQL ({err}); set SERVICE_TEST_POSTGRES_URL"
            );
            return;
        }
        Err(_) => {
            println!("SKIPPED postgres_repository: PostgreSQL connection timed out");
            return;
        }
    };

    // A database of our own, so concurrent runs and other users never collide.
    let name = format!(
        "service_test_{}",
        MessageId::new().to_canonical().replace('-', "")
    );
    // portcullis:allow rust-sqlx-query-format identifiers cannot be bound; the name is ours (a UUID)
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");

    let outcome =
        tokio::spawn(
            async move { exercise(Database::connect(&url, None, 4).await.unwrap()).await },
        )
        .await;

    // portcullis:allow rust-sqlx-query-format identifiers cannot be bound; the name is ours (a UUID)
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}
