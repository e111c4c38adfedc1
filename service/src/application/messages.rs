//! The messages use cases. Every operation takes the owner as its first
//! argument and every repository query is scoped by it, so a message of
//! another user is indistinguishable from one that does not exist.

use std::fmt;
use std::sync::Arc;

use crate::domain::{Message, MessageBody, MessageId, Page, PageRequest, UserId};

/// A storage failure. Its text is for logs, never for clients.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RepositoryError(pub String);

/// What the messages service needs from storage. Implementations must scope
/// every query by `owner`.
#[async_trait::async_trait]
pub trait MessageRepository: Send + Sync + fmt::Debug {
    /// Stores a new message.
    async fn insert(&self, message: &Message) -> Result<(), RepositoryError>;
    /// The owner's message with this id, if any.
    async fn get(&self, owner: &UserId, id: MessageId) -> Result<Option<Message>, RepositoryError>;
    /// Up to `page.limit` of the owner's messages after `page.after`, by id.
    async fn list(
        &self,
        owner: &UserId,
        page: PageRequest,
    ) -> Result<Vec<Message>, RepositoryError>;
    /// Replaces the body of the owner's message; `None` when there is none.
    async fn update(
        &self,
        owner: &UserId,
        id: MessageId,
        body: &MessageBody,
        updated_at_ms: i64,
    ) -> Result<Option<Message>, RepositoryError>;
    /// Deletes the owner's message; `false` when there was none.
    async fn delete(&self, owner: &UserId, id: MessageId) -> Result<bool, RepositoryError>;
    /// Checks that storage answers (readiness).
    async fn ping(&self) -> Result<(), RepositoryError>;
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// No message with this id belongs to the caller (it may belong to
    /// someone else: the caller cannot tell, by design).
    #[error("message not found")]
    NotFound,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Repository(#[from] RepositoryError),
}

/// The messages use cases.
#[derive(Debug, Clone)]
pub struct MessageService {
    repository: Arc<dyn MessageRepository>,
}

impl MessageService {
    /// A service over this repository.
    pub fn new(repository: Arc<dyn MessageRepository>) -> Self {
        Self { repository }
    }

    /// Creates a message owned by `owner`.
    pub async fn create(&self, owner: &UserId, body: MessageBody) -> Result<Message, MessageError> {
        let now = now_ms();
        let message = Message {
            id: MessageId::new(),
            owner: owner.clone(),
            body,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.repository.insert(&message).await?;
        Ok(message)
    }

    /// One page of the owner's messages.
    pub async fn list(&self, owner: &UserId, page: PageRequest) -> Result<Page, MessageError> {
        // One extra row tells whether a next page exists without a count query.
        let probe = PageRequest {
            limit: page.limit + 1,
            after: page.after,
        };
        let mut items = self.repository.list(owner, probe).await?;

        let has_more = items.len() > page.limit as usize;
        items.truncate(page.limit as usize);
        let next = if has_more {
            items.last().map(|m| m.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// The owner's message with this id.
    pub async fn read(&self, owner: &UserId, id: MessageId) -> Result<Message, MessageError> {
        self.repository
            .get(owner, id)
            .await?
            .ok_or(MessageError::NotFound)
    }

    /// Replaces the body of the owner's message.
    pub async fn update(
        &self,
        owner: &UserId,
        id: MessageId,
        body: MessageBody,
    ) -> Result<Message, MessageError> {
        let updated = self.repository.update(owner, id, &body, now_ms()).await?;
        updated.ok_or(MessageError::NotFound)
    }

    /// Deletes the owner's message.
    pub async fn delete(&self, owner: &UserId, id: MessageId) -> Result<(), MessageError> {
        match self.repository.delete(owner, id).await? {
            true => Ok(()),
            false => Err(MessageError::NotFound),
        }
    }

    /// Whether storage answers.
    pub async fn is_ready(&self) -> Result<(), MessageError> {
        Ok(self.repository.ping().await?)
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
