//! The languages the SAST engine parses, and how a file's language is found
//! from its extension.
//!
//! Rules name their language (`language: rust`), files get theirs from the
//! extension, and a rule only ever runs on files of its language. The set is
//! deliberately small: each grammar is C code compiled into the binary, so
//! only the grammars the default pack needs are built (see the
//! `ast-grep-language` features in the workspace `Cargo.toml`). Adding a
//! language is one feature there and one variant here; nothing else in the
//! engine knows which languages exist.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use ast_grep_core::Language;
use ast_grep_core::matcher::{Pattern, PatternBuilder, PatternError};
use ast_grep_core::tree_sitter::{LanguageExt, StrDoc, TSLanguage};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A language the engine can parse and match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SastLanguage {
    Rust,
    Bash,
    Yaml,
}

impl SastLanguage {
    pub const ALL: [SastLanguage; 3] = [SastLanguage::Rust, SastLanguage::Bash, SastLanguage::Yaml];

    /// The name rules use, in lowercase.
    pub fn name(self) -> &'static str {
        match self {
            SastLanguage::Rust => "rust",
            SastLanguage::Bash => "bash",
            SastLanguage::Yaml => "yaml",
        }
    }

    /// Names and aliases accepted in a rule's `language` key, the same ones
    /// ast-grep accepts for these languages.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            SastLanguage::Rust => &["rust", "rs"],
            SastLanguage::Bash => &["bash", "sh", "shell"],
            SastLanguage::Yaml => &["yaml", "yml"],
        }
    }

    /// File extensions of the language, without the dot.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            SastLanguage::Rust => &["rs"],
            SastLanguage::Bash => &["sh", "bash"],
            SastLanguage::Yaml => &["yml", "yaml"],
        }
    }

    /// The language of a file from its extension, or `None` when no rule
    /// language covers it (the file is then not parsed at all).
    pub fn from_extension(path: &Path) -> Option<SastLanguage> {
        let extension = path.extension()?.to_str()?;
        SastLanguage::ALL.into_iter().find(|language| {
            language
                .extensions()
                .iter()
                .any(|known| known.eq_ignore_ascii_case(extension))
        })
    }

    fn parse_name(name: &str) -> Option<SastLanguage> {
        SastLanguage::ALL.into_iter().find(|language| {
            language
                .aliases()
                .iter()
                .any(|alias| alias.eq_ignore_ascii_case(name))
        })
    }

    fn ts_language(self) -> TSLanguage {
        match self {
            SastLanguage::Rust => ast_grep_language::Rust.get_ts_language(),
            SastLanguage::Bash => ast_grep_language::Bash.get_ts_language(),
            SastLanguage::Yaml => ast_grep_language::Yaml.get_ts_language(),
        }
    }
}

impl fmt::Display for SastLanguage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Language for SastLanguage {
    // Rust does not accept `$` in identifiers, so ast-grep swaps the `$` of a
    // metavariable for `µ` before parsing a Rust pattern; Bash and YAML take
    // `$` as it is. We delegate to ast-grep-language to stay in step with it.
    fn pre_process_pattern<'q>(&self, query: &'q str) -> Cow<'q, str> {
        match self {
            SastLanguage::Rust => ast_grep_language::Rust.pre_process_pattern(query),
            SastLanguage::Bash => ast_grep_language::Bash.pre_process_pattern(query),
            SastLanguage::Yaml => ast_grep_language::Yaml.pre_process_pattern(query),
        }
    }

    fn expando_char(&self) -> char {
        match self {
            SastLanguage::Rust => ast_grep_language::Rust.expando_char(),
            SastLanguage::Bash => ast_grep_language::Bash.expando_char(),
            SastLanguage::Yaml => ast_grep_language::Yaml.expando_char(),
        }
    }

    fn from_path<P: AsRef<Path>>(path: P) -> Option<Self> {
        SastLanguage::from_extension(path.as_ref())
    }

    fn kind_to_id(&self, kind: &str) -> u16 {
        self.ts_language().id_for_node_kind(kind, true)
    }

    fn field_to_id(&self, field: &str) -> Option<u16> {
        self.ts_language()
            .field_id_for_name(field)
            .map(|id| id.get())
    }

    fn build_pattern(&self, builder: &PatternBuilder) -> Result<Pattern, PatternError> {
        builder.build(|source| StrDoc::try_new(source, *self))
    }
}

impl LanguageExt for SastLanguage {
    fn get_ts_language(&self) -> TSLanguage {
        self.ts_language()
    }
}

impl<'de> Deserialize<'de> for SastLanguage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl Visitor<'_> for NameVisitor {
            type Value = SastLanguage;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a language name: rust, bash or yaml")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<SastLanguage, E> {
                SastLanguage::parse_name(name).ok_or_else(|| {
                    E::custom(format!(
                        "language `{name}` is not supported by this build of Portcullis \
                         (supported: rust, bash, yaml)"
                    ))
                })
            }
        }

        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_decides_the_language() {
        assert_eq!(
            SastLanguage::from_extension(Path::new("src/main.rs")),
            Some(SastLanguage::Rust)
        );
        assert_eq!(
            SastLanguage::from_extension(Path::new("ci/install.SH")),
            Some(SastLanguage::Bash)
        );
        assert_eq!(
            SastLanguage::from_extension(Path::new(".github/workflows/ci.yml")),
            Some(SastLanguage::Yaml)
        );
        assert_eq!(SastLanguage::from_extension(Path::new("a.py")), None);
        assert_eq!(SastLanguage::from_extension(Path::new("Makefile")), None);
    }

    #[test]
    fn every_language_parses() {
        for language in SastLanguage::ALL {
            let root = language.ast_grep("x");
            assert!(!root.root().kind().is_empty(), "{language}");
        }
    }
}
