//! The matching engine: parse one file, visit each node once, and run every
//! rule that can match that node's kind.
//!
//! Rules are indexed by the node kinds they can match
//! (`potential_kinds`), so a file is traversed once whatever the number of
//! rules, the way ast-grep's own combined scan works. ast-grep's combined
//! scan is not used because it honours `ast-grep-ignore` comments, which
//! suppress without a reason; here only `portcullis:allow RULE-ID <reason>`
//! suppresses (see [`super::suppress`]).

use std::collections::{BTreeSet, HashMap};

use ast_grep_core::Language;
use ast_grep_core::matcher::MatcherExt;
use ast_grep_core::tree_sitter::LanguageExt;

use super::language::SastLanguage;
use super::rules::SastRule;
use super::suppress::{Marker, parse_marker};
use crate::finding::{Finding, Location, Suppression};

/// The rules of one language, indexed by node kind id.
struct KindIndex {
    /// For each node kind id, the rules (indices into `Engine::rules`) that
    /// can match it.
    by_kind: Vec<Vec<usize>>,
    /// Kind ids of comment nodes, where suppression markers live.
    comment_kinds: Vec<u16>,
    /// The kind id of a macro invocation, for languages whose macro
    /// arguments are re-parsed (Rust).
    macro_kind: Option<u16>,
}

/// Every loaded rule, ready to scan files of any supported language.
pub struct Engine {
    rules: Vec<SastRule>,
    indexes: HashMap<SastLanguage, KindIndex>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

/// What scanning one file produced.
#[derive(Debug, Default)]
pub struct FileScan {
    pub findings: Vec<Finding>,
    /// The first place the parser had to recover (1-based line), when the
    /// file does not parse cleanly. Matching still ran on the recovered tree.
    pub parse_error_line: Option<u32>,
    /// Whether any rule applied, so the file was parsed at all.
    pub parsed: bool,
    /// Problems with suppression markers: no reason, unknown rule, unused.
    pub warnings: Vec<String>,
}

impl Engine {
    pub fn new(rules: Vec<SastRule>) -> Engine {
        let mut indexes = HashMap::new();
        for language in SastLanguage::ALL {
            let comment_kinds = ["comment", "line_comment", "block_comment"]
                .into_iter()
                .map(|kind| language.kind_to_id(kind))
                .filter(|&id| id != 0)
                .collect();
            let mut by_kind: Vec<Vec<usize>> = Vec::new();
            for (index, rule) in rules.iter().enumerate() {
                if rule.language != language {
                    continue;
                }
                for kind in rule.potential_kinds() {
                    if by_kind.len() <= kind {
                        by_kind.resize_with(kind + 1, Vec::new);
                    }
                    by_kind[kind].push(index);
                }
            }
            let macro_kind = (language == SastLanguage::Rust)
                .then(|| language.kind_to_id("macro_invocation"))
                .filter(|&id| id != 0);
            indexes.insert(
                language,
                KindIndex {
                    by_kind,
                    comment_kinds,
                    macro_kind,
                },
            );
        }
        Engine { rules, indexes }
    }

    pub fn rules(&self) -> &[SastRule] {
        &self.rules
    }

    /// Whether any rule could run on this file, so it is worth reading.
    pub fn wants(&self, relative: &str, language: SastLanguage) -> bool {
        self.rules
            .iter()
            .any(|rule| rule.language == language && rule.applies_to(relative))
    }

    /// Scans one file's text. Never panics on any input: tree-sitter
    /// recovers from syntax errors and the rules match what it recovered.
    pub fn scan(
        &self,
        gate: &str,
        relative: &str,
        language: SastLanguage,
        source: &str,
    ) -> FileScan {
        let mut scan = FileScan::default();
        let applicable: Vec<bool> = self
            .rules
            .iter()
            .map(|rule| rule.language == language && rule.applies_to(relative))
            .collect();
        if !applicable.contains(&true) {
            return scan;
        }
        let Some(index) = self.indexes.get(&language) else {
            return scan;
        };
        scan.parsed = true;

        // One traversal: note recovery points and markers, run the rules.
        let mut root = language.ast_grep(source);
        if language == SastLanguage::Rust
            && root.root().get_inner_node().has_error()
            && let Some(patched) = blank_attributes_in_errors(&root, source)
        {
            let reparsed = language.ast_grep(&patched);
            if !reparsed.root().get_inner_node().has_error() {
                root = reparsed;
            }
        }
        let mut matches: Vec<(usize, std::ops::Range<usize>, String)> = Vec::new();
        let mut markers: Vec<Marker> = Vec::new();
        let mut macro_bodies: Vec<std::ops::Range<usize>> = Vec::new();
        for node in root.root().dfs() {
            if scan.parse_error_line.is_none() && (node.is_error() || node.is_missing()) {
                scan.parse_error_line = Some(node.start_pos().line() as u32 + 1);
            }
            let kind = node.kind_id();
            if index.comment_kinds.contains(&kind) {
                if let Some(marker) = parse_marker(&node.text(), node.start_pos().line() as u32 + 1)
                {
                    markers.push(marker);
                }
                continue;
            }
            if Some(kind) == index.macro_kind
                && let Some(body) = macro_body(&node)
            {
                macro_bodies.push(body);
            }
            self.match_node(index, &applicable, &node, 0, &mut matches);
        }

        // Arguments of macros (`format!`, `vec!`, `assert!`, …) are token
        // trees to the parser; re-parse those that are expressions, so a
        // call inside `format!("{}", md5::compute(x))` is still seen.
        let mut depth = 0;
        while !macro_bodies.is_empty() && depth < MAX_MACRO_DEPTH {
            let mut nested = Vec::new();
            for body in macro_bodies {
                self.scan_macro_body(
                    index,
                    &applicable,
                    language,
                    source,
                    body,
                    &mut matches,
                    &mut nested,
                );
            }
            macro_bodies = nested;
            depth += 1;
        }

        let lines = LineIndex::new(source);
        let mut seen = BTreeSet::new();
        let matches: Vec<(usize, Span, String)> = matches
            .into_iter()
            .filter(|(rule_index, range, _)| seen.insert((*rule_index, range.start, range.end)))
            .map(|(rule_index, range, text)| (rule_index, lines.span(source, range), text))
            .collect();

        // Markers apply to a finding on their own line or the next one.
        for (rule_index, span, text) in matches {
            let rule = &self.rules[rule_index];
            let marker = markers.iter_mut().find(|marker| {
                marker.rule_id == rule.id
                    && (marker.line == span.start_line || marker.line + 1 == span.start_line)
            });
            let mut builder = Finding::builder(gate, &rule.id, rule.severity, &rule.message)
                .location(
                    Location::file(relative)
                        .with_lines(span.start_line, span.end_line)
                        .with_columns(span.start_column, span.end_column),
                )
                .references(rule.references.iter().cloned())
                .evidence(text);
            if let Some(note) = &rule.note {
                builder = builder.help(note.trim());
            }
            if let Some(marker) = marker {
                marker.used = true;
                if let Some(reason) = &marker.reason {
                    builder = builder.suppressed(Suppression::Inline {
                        reason: reason.clone(),
                    });
                }
            }
            scan.findings.push(builder.build());
        }

        for marker in &markers {
            let known = self.rules.iter().any(|rule| rule.id == marker.rule_id);
            let at = format!("{relative}:{}", marker.line);
            if marker.reason.is_none() {
                scan.warnings.push(format!(
                    "{at}: `portcullis:allow {}` has no reason, so it suppresses nothing; write why after the rule id",
                    marker.rule_id
                ));
            } else if !known {
                scan.warnings.push(format!(
                    "{at}: `portcullis:allow` names unknown rule `{}`",
                    marker.rule_id
                ));
            } else if !marker.used {
                scan.warnings.push(format!(
                    "{at}: `portcullis:allow {}` suppresses nothing on this line or the next; remove it",
                    marker.rule_id
                ));
            }
        }
        scan
    }
}

impl Engine {
    /// Runs the rules that can match this node's kind, recording matches as
    /// byte ranges of the original file (`offset` maps a re-parsed macro
    /// body back to it).
    fn match_node<D: ast_grep_core::Doc>(
        &self,
        index: &KindIndex,
        applicable: &[bool],
        node: &ast_grep_core::Node<'_, D>,
        offset: isize,
        matches: &mut Vec<(usize, std::ops::Range<usize>, String)>,
    ) {
        let Some(candidates) = index.by_kind.get(node.kind_id() as usize) else {
            return;
        };
        for &rule_index in candidates {
            if !applicable[rule_index] {
                continue;
            }
            let rule = &self.rules[rule_index];
            let Some(found) = rule.config.matcher.match_node(node.clone()) else {
                continue;
            };
            let matched = found.get_node();
            let range = matched.range();
            let start = range.start as isize + offset;
            let end = range.end as isize + offset;
            if start < 0 {
                continue;
            }
            matches.push((
                rule_index,
                start as usize..end as usize,
                matched.text().into_owned(),
            ));
        }
    }

    /// Parses the text of one macro body as call arguments and matches it.
    /// Bodies that are not expressions (`macro_rules!`, `json!({…})`, DSLs)
    /// do not parse cleanly and are skipped: they are not Rust code.
    #[allow(clippy::too_many_arguments)]
    fn scan_macro_body(
        &self,
        index: &KindIndex,
        applicable: &[bool],
        language: SastLanguage,
        source: &str,
        body: std::ops::Range<usize>,
        matches: &mut Vec<(usize, std::ops::Range<usize>, String)>,
        nested: &mut Vec<std::ops::Range<usize>>,
    ) {
        let Some(text) = source.get(body.clone()) else {
            return;
        };
        let wrapped = format!("{MACRO_PREFIX}{text}{MACRO_SUFFIX}");
        let root = language.ast_grep(&wrapped);
        if root.root().dfs().any(|n| n.is_error() || n.is_missing()) {
            return;
        }
        let offset = body.start as isize - MACRO_PREFIX.len() as isize;
        let content = MACRO_PREFIX.len()..MACRO_PREFIX.len() + text.len();
        for node in root.root().dfs() {
            let range = node.range();
            if range.start < content.start || range.end > content.end {
                continue;
            }
            if Some(node.kind_id()) == index.macro_kind
                && let Some(inner) = macro_body(&node)
            {
                let start = (inner.start as isize + offset) as usize;
                nested.push(start..start + inner.len());
            }
            self.match_node(index, applicable, &node, offset, matches);
        }
    }
}

/// HACK: tree-sitter-rust (0.24) has no attributes on struct pattern
/// fields, so valid code such as `let S { #[cfg(x)] f, .. } = s;` does not
/// parse (shared case 020, the same grammar gap semgrep has:
/// https://github.com/semgrep/semgrep/issues/10471). When a Rust file has
/// errors, the attributes on the lines with errors are blanked with
/// spaces (same bytes, same lines and columns) and the file is parsed again;
/// the second tree is used only if it has no errors at all. No rule in the
/// pack looks at attributes inside expressions or patterns.
fn blank_attributes_in_errors(
    root: &ast_grep_core::AstGrep<ast_grep_core::tree_sitter::StrDoc<SastLanguage>>,
    source: &str,
) -> Option<String> {
    let bytes = source.as_bytes();
    let mut patched = bytes.to_vec();
    let mut changed = false;

    // From the line of the first error to the line of the last one: an
    // error is often reported before the attribute that caused it.
    let errors: Vec<std::ops::Range<usize>> = root
        .root()
        .dfs()
        .filter(|node| node.is_error())
        .map(|node| node.range())
        .collect();
    let first = errors.iter().map(|r| r.start).min()?;
    let last = errors.iter().map(|r| r.end).max()?;
    let start = source.get(..first)?.rfind('\n').map_or(0, |at| at + 1);
    let end = source
        .get(last..)?
        .find('\n')
        .map_or(source.len(), |at| last + at);

    let mut at = start;
    while let Some(found) = source.get(at..end).and_then(|text| text.find("#[")) {
        let open = at + found;
        let Some(close) = closing_bracket(bytes, open + 1) else {
            break;
        };
        if bytes[open..=close].is_ascii() {
            for byte in &mut patched[open..=close] {
                if *byte != b'\n' {
                    *byte = b' ';
                }
            }
            changed = true;
        }
        at = close + 1;
    }
    changed.then(|| String::from_utf8(patched).ok()).flatten()
}

/// The index of the `]` that closes the `[` at `open`, skipping string
/// literals.
fn closing_bracket(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut index = open;
    while index < bytes.len() {
        match (in_string, bytes[index]) {
            (true, b'\\') => index += 1,
            (true, b'"') => in_string = false,
            (false, b'"') => in_string = true,
            (false, b'[') => depth += 1,
            (false, b']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
        index += 1;
    }
    None
}

/// How deep macros inside macros are followed.
const MAX_MACRO_DEPTH: usize = 4;
/// A macro body is parsed as the arguments of a call inside a function.
const MACRO_PREFIX: &str = "fn __portcullis_macro() { __portcullis_args(";
const MACRO_SUFFIX: &str = "\n); }";

/// The byte range inside the delimiters of a macro invocation's token tree.
fn macro_body<D: ast_grep_core::Doc>(
    node: &ast_grep_core::Node<'_, D>,
) -> Option<std::ops::Range<usize>> {
    let tree = node.children().find(|child| child.kind() == "token_tree")?;
    let range = tree.range();
    if tree.text().starts_with('{') || range.end < range.start + 2 {
        return None;
    }
    Some(range.start + 1..range.end - 1)
}

/// Line starts of a file, to turn byte offsets into lines and columns.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(source: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(at, _)| at + 1));
        LineIndex { starts }
    }

    /// 1-based line and character column of a byte offset.
    fn position(&self, source: &str, offset: usize) -> (u32, u32) {
        let line = self
            .starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let line_start = self.starts[line];
        let column = source
            .get(line_start..offset)
            .map_or(0, |text| text.chars().count());
        (line as u32 + 1, column as u32 + 1)
    }

    fn span(&self, source: &str, range: std::ops::Range<usize>) -> Span {
        let (start_line, start_column) = self.position(source, range.start);
        let (end_line, end_column) = self.position(source, range.end);
        Span {
            start_line,
            start_column,
            end_line,
            end_column,
        }
    }
}

/// 1-based lines and columns of a match; columns count characters, and the
/// end column is one past the last character.
#[derive(Debug, Clone, Copy)]
struct Span {
    start_line: u32,
    start_column: u32,
    end_line: u32,
    end_column: u32,
}

#[cfg(test)]
mod tests {
    use super::super::rules::parse_rule_file;
    use super::*;

    fn engine(text: &str) -> Engine {
        Engine::new(parse_rule_file("r.yml", text).unwrap_or_else(|err| panic!("{err}")))
    }

    const UNWRAP: &str =
        "id: no-unwrap\nlanguage: rust\nmessage: unwrap\nrule: {pattern: $X.unwrap()}\n";

    #[test]
    fn reports_exact_span() {
        let scan = engine(UNWRAP).scan(
            "sast",
            "a.rs",
            SastLanguage::Rust,
            "fn f() {\n    let é = x.unwrap();\n}\n",
        );
        assert_eq!(scan.findings.len(), 1);
        let location = scan.findings[0].location.clone().expect("location");
        assert_eq!(
            (location.start_line, location.start_column),
            (Some(2), Some(13))
        );
        assert_eq!(
            (location.end_line, location.end_column),
            (Some(2), Some(23))
        );
        assert_eq!(scan.parse_error_line, None);
    }

    #[test]
    fn suppression_needs_a_reason_and_the_right_rule() {
        let source = "fn f() {\n    // portcullis:allow no-unwrap the value was checked above\n    a.unwrap();\n    b.unwrap(); // portcullis:allow no-unwrap\n    c.unwrap(); // portcullis:allow other-rule because\n}\n";
        let scan = engine(UNWRAP).scan("sast", "a.rs", SastLanguage::Rust, source);
        let suppressed: Vec<bool> = scan.findings.iter().map(Finding::is_suppressed).collect();
        assert_eq!(suppressed, [true, false, false]);
        assert_eq!(scan.warnings.len(), 2, "{:?}", scan.warnings);
        assert!(scan.warnings[0].contains("has no reason"));
        assert!(scan.warnings[1].contains("unknown rule `other-rule`"));
    }

    #[test]
    fn broken_file_is_scanned_as_far_as_it_recovers() {
        let source = "fn f() {\n    a.unwrap();\n}\nfn g( {\n    b.unwrap();\n";
        let scan = engine(UNWRAP).scan("sast", "a.rs", SastLanguage::Rust, source);
        assert!(scan.parse_error_line.is_some());
        assert!(!scan.findings.is_empty());
    }

    #[test]
    fn calls_inside_macros_are_matched_at_their_place() {
        let source =
            "fn f() {\n    println!(\"{}\", vec![a, format!(\"{}\",\n  b.unwrap())].len());\n}\n";
        let scan = engine(UNWRAP).scan("sast", "a.rs", SastLanguage::Rust, source);
        assert_eq!(scan.findings.len(), 1);
        let location = scan.findings[0].location.clone().expect("location");
        assert_eq!(
            (location.start_line, location.start_column),
            (Some(3), Some(3))
        );
        assert_eq!(
            (location.end_line, location.end_column),
            (Some(3), Some(13))
        );
        let dsl = "fn f() { json!({\"a\": b.unwrap()}); m!(=> b.unwrap() <=); }";
        let scan = engine(UNWRAP).scan("sast", "a.rs", SastLanguage::Rust, dsl);
        assert!(scan.findings.is_empty());
        assert_eq!(scan.parse_error_line, None);
    }

    #[test]
    fn attributes_on_pattern_fields_do_not_break_parsing() {
        let source = "fn f(l: L) -> u8 {\n    let L {\n        a,\n        #[cfg(x)]\n        b,\n        ..\n    } = l;\n    a.unwrap()\n}\n";
        let scan = engine(UNWRAP).scan("sast", "a.rs", SastLanguage::Rust, source);
        assert_eq!(scan.parse_error_line, None);
        let location = scan.findings[0].location.clone().expect("location");
        assert_eq!(
            (location.start_line, location.start_column),
            (Some(8), Some(5))
        );
    }

    #[test]
    fn rules_run_only_on_their_language_and_files() {
        let text =
            "id: only-src\nlanguage: rust\nfiles: ['src/**']\nrule: {pattern: $X.unwrap()}\n";
        let engine = engine(text);
        let source = "fn f() { a.unwrap(); }";
        assert_eq!(
            engine
                .scan("sast", "src/a.rs", SastLanguage::Rust, source)
                .findings
                .len(),
            1
        );
        assert!(
            !engine
                .scan("sast", "benches/a.rs", SastLanguage::Rust, source)
                .parsed
        );
        assert!(
            !engine
                .scan("sast", "src/a.sh", SastLanguage::Bash, source)
                .parsed
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_source_never_panics(source in "\\PC{0,300}") {
            let engine = engine(UNWRAP);
            let _ = engine.scan("sast", "a.rs", SastLanguage::Rust, &source);
        }
    }
}
