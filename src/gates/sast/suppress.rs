//! Inline suppression markers: `// portcullis:allow RULE-ID <reason>`.
//!
//! A marker must sit in a comment, start the comment's text, name one rule
//! and give a reason; it applies to a finding that starts on the marker's
//! line (a trailing comment) or on the next line (a comment above). A marker
//! without a reason suppresses nothing and is reported, so every suppression
//! in a report says why.

/// The word that starts a marker.
pub const MARKER: &str = "portcullis:allow";

/// One marker found in a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub rule_id: String,
    pub reason: Option<String>,
    /// The 1-based line of the comment.
    pub line: u32,
    /// Whether a finding used it.
    pub used: bool,
}

/// Reads a marker from the text of a comment node (`// …`, `/* … */`,
/// `# …`), or `None` when the comment is not a marker.
pub fn parse_marker(comment: &str, line: u32) -> Option<Marker> {
    let text = comment
        .trim()
        .trim_start_matches(['/', '*', '!', '#'])
        .trim_end_matches("*/")
        .trim();
    let rest = text.strip_prefix(MARKER)?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let mut words = rest.split_whitespace();
    let rule_id = words.next()?.to_owned();
    let reason = words.collect::<Vec<_>>().join(" ");
    Some(Marker {
        rule_id,
        reason: (!reason.is_empty()).then_some(reason),
        line,
        used: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_markers_in_every_comment_style() {
        let marker = parse_marker("// portcullis:allow rust-weak-hash-md5 cache key only", 3)
            .expect("marker");
        assert_eq!(marker.rule_id, "rust-weak-hash-md5");
        assert_eq!(marker.reason.as_deref(), Some("cache key only"));
        assert_eq!(marker.line, 3);
        assert!(parse_marker("/* portcullis:allow x why */", 1).is_some());
        assert!(parse_marker("# portcullis:allow x why", 1).is_some());
        assert_eq!(
            parse_marker("// portcullis:allow x", 1).and_then(|m| m.reason),
            None
        );
    }

    #[test]
    fn ignores_mentions_that_are_not_markers() {
        assert_eq!(parse_marker("// see portcullis:allow in the docs", 1), None);
        assert_eq!(parse_marker("// portcullis:allowed x y", 1), None);
        assert_eq!(parse_marker("// portcullis:allow", 1), None);
    }
}
