//! Domain types of the messages API: identifiers, validated message bodies and
//! pages. Nothing here knows about HTTP, tokens or databases, so every rule
//! about what a valid message is lives in one place and is tested without
//! either.

pub mod message;

pub use message::{Message, MessageBody, MessageId, Page, PageRequest, UserId, ValidationError};
