//! A user's message and the value types it is made of. Each type can only be
//! built through a constructor that validates it, so a `MessageBody` in hand is
//! always within bounds and free of control characters.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

/// Longest message body accepted, in characters (not bytes).
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest user id (the token's `sub`) accepted, in bytes.
pub const MAX_USER_ID_BYTES: usize = 255;
/// Page size used when the client does not ask for one.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Why a value was refused. The messages are safe to show to the client: they
/// describe the rule, never echo the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The value was empty or only whitespace.
    #[error("`{field}` must not be empty")]
    Empty {
        /// The field that was empty.
        field: &'static str,
    },
    /// The value was longer than allowed.
    #[error("`{field}` must be at most {max} characters")]
    TooLong {
        /// The field that was too long.
        field: &'static str,
        /// The bound it broke.
        max: usize,
    },
    /// The value held a control character (other than newline and tab in a body).
    #[error("`{field}` must not contain control characters")]
    ControlCharacter {
        /// The field that held one.
        field: &'static str,
    },
    /// A page size outside 1..=100.
    #[error("`limit` must be between 1 and {max}")]
    PageSize {
        /// The largest page size.
        max: u32,
    },
    /// An identifier that is not a UUID in its canonical hyphenated form.
    #[error("`{field}` must be a UUID")]
    InvalidId {
        /// The field that held it.
        field: &'static str,
    },
}

/// The owner of messages: the verified `sub` claim of an access token, and
/// nothing else (handlers never take it from the body, path or query).
/// Shared, not copied: one verified identity is handed to the rate limiter,
/// the handler and the access log of every request.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserId(Arc<str>);

impl UserId {
    /// Validates a subject: non-empty, at most 255 bytes, no control characters.
    pub fn parse(subject: &str) -> Result<Self, ValidationError> {
        const FIELD: &str = "sub";
        if subject.trim().is_empty() {
            return Err(ValidationError::Empty { field: FIELD });
        }
        if subject.len() > MAX_USER_ID_BYTES {
            return Err(ValidationError::TooLong {
                field: FIELD,
                max: MAX_USER_ID_BYTES,
            });
        }
        if subject.chars().any(char::is_control) {
            return Err(ValidationError::ControlCharacter { field: FIELD });
        }
        Ok(Self(Arc::from(subject)))
    }

    /// The subject as stored in the database.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// NOTE: a user id is an identifier, not a secret, but it is personal data; the
// Debug form is kept short so it does not leak into panics or error chains.
impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserId(..)")
    }
}

/// A message id: a UUIDv7, so ids sort in creation order and pagination can
/// use the last id seen as its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(Uuid);

impl MessageId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the canonical hyphenated, lowercase or uppercase form only, so
    /// one message has exactly one spelling in URLs and cursors.
    pub fn parse(text: &str, field: &'static str) -> Result<Self, ValidationError> {
        let is_hyphenated = text.len() == 36;
        match Uuid::try_parse(text) {
            Ok(uuid) if is_hyphenated => Ok(Self(uuid)),
            _ => Err(ValidationError::InvalidId { field }),
        }
    }

    /// The canonical lowercase hyphenated form, as stored.
    pub fn to_canonical(&self) -> String {
        self.0.hyphenated().to_string()
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// The text of a message: 1 to 4000 characters, not only whitespace, with no
/// control characters except newline and tab.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    /// Validates a body.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        const FIELD: &str = "body";
        if text.trim().is_empty() {
            return Err(ValidationError::Empty { field: FIELD });
        }
        if text.chars().count() > MAX_BODY_CHARS {
            return Err(ValidationError::TooLong {
                field: FIELD,
                max: MAX_BODY_CHARS,
            });
        }
        // Bidirectional overrides are refused with the C0/C1 controls: they
        // make a stored message read differently from what it contains.
        let is_refused = |c: char| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        };
        if text.chars().any(is_refused) {
            return Err(ValidationError::ControlCharacter { field: FIELD });
        }
        Ok(Self(text.to_owned()))
    }

    /// The validated text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Bodies are user content: never printed by Debug, so they cannot reach logs.
impl fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageBody({} chars)", self.0.chars().count())
    }
}

/// A stored message. Times are Unix milliseconds (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// Who owns it: the only user who can see or change it.
    pub owner: UserId,
    /// Its text.
    pub body: MessageBody,
    /// When it was created.
    pub created_at_ms: i64,
    /// When it was last changed.
    pub updated_at_ms: i64,
}

/// Which page of a user's messages to list: at most `limit` messages with ids
/// after `after` (keyset pagination, stable under concurrent inserts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Page size, 1..=100.
    pub limit: u32,
    /// The last id of the previous page.
    pub after: Option<MessageId>,
}

impl PageRequest {
    /// Validates a page size (default 20) and cursor.
    pub fn new(limit: Option<u32>, after: Option<MessageId>) -> Result<Self, ValidationError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ValidationError::PageSize { max: MAX_PAGE_SIZE });
        }
        Ok(Self { limit, after })
    }
}

/// One page of messages and the cursor of the next page, if there may be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The messages, oldest first.
    pub items: Vec<Message>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<MessageId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn body_bounds_and_control_characters() {
        assert!(MessageBody::parse("hello\nworld\t!").is_ok());
        assert_eq!(
            MessageBody::parse("  \n"),
            Err(ValidationError::Empty { field: "body" })
        );
        assert!(MessageBody::parse(&"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(matches!(
            MessageBody::parse(&"a".repeat(MAX_BODY_CHARS + 1)),
            Err(ValidationError::TooLong { .. })
        ));
        for refused in ["a\u{0}b", "a\rb", "a\u{1b}[31m", "a\u{85}", "a\u{202E}b"] {
            assert!(
                matches!(
                    MessageBody::parse(refused),
                    Err(ValidationError::ControlCharacter { .. })
                ),
                "{refused:?} should be refused"
            );
        }
    }

    #[test]
    fn ids_have_one_spelling() {
        let id = MessageId::new();
        assert_eq!(MessageId::parse(&id.to_canonical(), "id"), Ok(id));
        for bad in [
            "",
            "not-a-uuid",
            "0190a6e4b1c87c3a9f0e6d8b2a4c1e0f",
            "{0190a6e4-b1c8-7c3a-9f0e-6d8b2a4c1e0f}",
        ] {
            assert!(MessageId::parse(bad, "id").is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_sort_by_creation() {
        let first = MessageId::new();
        let second = MessageId::new();
        assert!(first.to_canonical() < second.to_canonical());
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(
            PageRequest::new(None, None).map(|p| p.limit),
            Ok(DEFAULT_PAGE_SIZE)
        );
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(MAX_PAGE_SIZE + 1), None).is_err());
    }

    #[test]
    fn user_ids_are_bounded() {
        assert!(UserId::parse("user-1").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a\u{7}").is_err());
        assert!(UserId::parse(&"u".repeat(256)).is_err());
        assert_eq!(
            format!("{:?}", UserId::parse("alice").ok()),
            "Some(UserId(..))"
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in ".{0,64}") {
            let _ = MessageBody::parse(&text);
            let _ = MessageId::parse(&text, "id");
            let _ = UserId::parse(&text);
        }

        #[test]
        fn accepted_bodies_hold_no_controls(text in "\\PC{1,64}") {
            if let Ok(body) = MessageBody::parse(&text) {
                prop_assert!(!body.as_str().chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
            }
        }
    }
}
