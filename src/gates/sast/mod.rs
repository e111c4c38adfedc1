//! The sast gate: structural pattern rules in the ast-grep rule format, run
//! over the repository's source files in parallel.
//!
//! Rules come from the embedded default pack (`policies/sast/*.yml`) and the
//! folders named by `rules` in `[gates.sast]`. Each file's language comes
//! from its extension ([`language`]); files are walked the way git sees them
//! (`.gitignore` respected), parsed with tree-sitter and matched by
//! [`scan::Engine`] on a rayon pool, inside `spawn_blocking` so the async
//! pipeline is never blocked. A file that does not parse is matched as far
//! as the parser recovers and counted; a malformed rule file stops the gate
//! with an error naming the file, the rule and the problem.

pub mod language;
pub mod rules;
pub mod scan;
pub mod suppress;

use std::path::PathBuf;

use async_trait::async_trait;
use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use serde::Deserialize;

use crate::finding::sort_findings;
use crate::gate::{Gate, GateContext, GateError, GateOutput};
use crate::repo::{RepoView, WalkOptions};
use language::SastLanguage;
use scan::Engine;

const GATE: &str = "sast";

/// Listed by name at most this many times in warnings before summarising.
const MAX_LISTED: usize = 10;

/// `[gates.sast]` in the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SastOptions {
    /// Run the embedded default pack. Turn off to use only `rules`.
    #[serde(default = "yes")]
    pub default_rules: bool,
    /// Folders (or single files) of ast-grep rule YAML to add, relative to
    /// the policy file.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Rule ids not to run at all (unlike a waiver, nothing is reported).
    #[serde(default)]
    pub disable_rules: Vec<String>,
    /// Globs of repository-relative paths never scanned.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Files larger than this many bytes are skipped and counted.
    #[serde(default = "default_max_file_size")]
    pub max_file_size: u64,
}

impl Default for SastOptions {
    fn default() -> Self {
        SastOptions {
            default_rules: true,
            rules: Vec::new(),
            disable_rules: Vec::new(),
            exclude: Vec::new(),
            max_file_size: default_max_file_size(),
        }
    }
}

fn yes() -> bool {
    true
}

/// 2 MiB: larger source files are almost always generated.
fn default_max_file_size() -> u64 {
    2 * 1024 * 1024
}

/// Structural pattern rules over source files.
#[derive(Debug)]
pub struct Sast;

#[async_trait]
impl Gate for Sast {
    fn id(&self) -> &'static str {
        GATE
    }

    fn description(&self) -> &'static str {
        "static analysis: ast-grep pattern rules over Rust, shell and workflow files"
    }

    fn docs(&self) -> &'static str {
        "docs/gates/sast.md"
    }

    async fn run(&self, ctx: &GateContext) -> Result<GateOutput, GateError> {
        let options = ctx.policy.gates.sast.clone();
        let extra: Vec<(String, PathBuf)> = options
            .rules
            .iter()
            .map(|path| {
                let shown = path.display().to_string();
                (shown, ctx.policy.resolve(ctx.root(), path))
            })
            .collect();
        let repo = ctx.repo.clone();
        let task = tokio::task::spawn_blocking(move || run_blocking(&repo, &options, &extra));
        task.await.map_err(|err| GateError::Other {
            message: format!(
                "the sast scan stopped unexpectedly: {err}; this is a bug, please report it"
            ),
        })?
    }
}

/// The whole scan, on a blocking thread.
fn run_blocking(
    repo: &RepoView,
    options: &SastOptions,
    extra: &[(String, PathBuf)],
) -> Result<GateOutput, GateError> {
    let rules = rules::load_rules(options.default_rules, extra, &options.disable_rules)
        .map_err(rule_error)?;
    let exclude = build_exclude(&options.exclude)?;
    let engine = Engine::new(rules);
    let mut output = GateOutput::default();
    output.stat("rules", engine.rules().len() as u64);

    let targets = collect_targets(repo, &engine, &exclude, options.max_file_size, &mut output);
    let results: Vec<Result<(String, scan::FileScan, bool), GateError>> = targets
        .par_iter()
        .map(|(relative, language)| {
            let bytes = repo.read(relative)?;
            let (text, utf8) = match String::from_utf8(bytes) {
                Ok(text) => (text, true),
                Err(err) => (String::from_utf8_lossy(err.as_bytes()).into_owned(), false),
            };
            Ok((
                relative.clone(),
                engine.scan(GATE, relative, *language, &text),
                utf8,
            ))
        })
        .collect();

    merge(results, &mut output);
    sort_findings(&mut output.findings);
    Ok(output)
}

/// Files worth parsing: a supported extension, not excluded, some rule
/// applies, not too large. Skips are counted and, when they reduce
/// coverage, warned about.
fn collect_targets(
    repo: &RepoView,
    engine: &Engine,
    exclude: &GlobSet,
    max_file_size: u64,
    output: &mut GateOutput,
) -> Vec<(String, SastLanguage)> {
    let walk = WalkOptions {
        hidden: true,
        ..WalkOptions::default()
    };
    let mut targets = Vec::new();
    let mut excluded = 0;
    let mut too_large = Vec::new();
    for entry in repo.walk(&walk) {
        let path = match entry {
            Ok(path) => path,
            Err(err) => {
                output.errors.push(err);
                continue;
            }
        };
        let Some(language) = SastLanguage::from_extension(&path) else {
            continue;
        };
        let relative = repo.relative(&path);
        if exclude.is_match(&relative) {
            excluded += 1;
            continue;
        }
        if !engine.wants(&relative, language) {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > max_file_size => too_large.push(relative),
            Ok(_) => targets.push((relative, language)),
            Err(source) => output.errors.push(GateError::Read { path, source }),
        }
    }
    output.stat("files_excluded", excluded);
    output.stat("files_too_large", too_large.len() as u64);
    if !too_large.is_empty() {
        output.warnings.push(format!(
            "{} file(s) larger than max-file-size ({max_file_size} bytes) were not scanned: {}",
            too_large.len(),
            list(&too_large)
        ));
    }
    targets
}

fn merge(results: Vec<Result<(String, scan::FileScan, bool), GateError>>, output: &mut GateOutput) {
    let mut scanned = 0;
    let mut parse_errors = Vec::new();
    let mut not_utf8 = Vec::new();
    for result in results {
        let (relative, file_scan, utf8) = match result {
            Ok(done) => done,
            Err(err) => {
                output.errors.push(err);
                continue;
            }
        };
        if file_scan.parsed {
            scanned += 1;
        }
        if let Some(line) = file_scan.parse_error_line {
            parse_errors.push(format!("{relative}:{line}"));
        }
        if !utf8 {
            not_utf8.push(relative);
        }
        output.warnings.extend(file_scan.warnings);
        output.findings.extend(file_scan.findings);
    }

    let suppressed = output.findings.iter().filter(|f| f.is_suppressed()).count();
    output.stat("files_scanned", scanned);
    output.stat("files_with_parse_errors", parse_errors.len() as u64);
    output.stat("files_not_utf8", not_utf8.len() as u64);
    output.stat("suppressed_inline", suppressed as u64);
    if !parse_errors.is_empty() {
        output.warnings.push(format!(
            "{} file(s) did not parse cleanly and were scanned as far as the parser recovered (first error at): {}",
            parse_errors.len(),
            list(&parse_errors)
        ));
    }
    if !not_utf8.is_empty() {
        output.warnings.push(format!(
            "{} file(s) are not valid UTF-8 and were scanned with invalid bytes replaced: {}",
            not_utf8.len(),
            list(&not_utf8)
        ));
    }
}

fn list(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_LISTED {
        text.push_str(&format!(" and {} more", items.len() - MAX_LISTED));
    }
    text
}

fn build_exclude(globs: &[String]) -> Result<GlobSet, GateError> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let glob = Glob::new(glob).map_err(|err| GateError::Other {
            message: format!("invalid glob in `[gates.sast] exclude`: {err}"),
        })?;
        builder.add(glob);
    }
    builder.build().map_err(|err| GateError::Other {
        message: format!("invalid `[gates.sast] exclude`: {err}"),
    })
}

fn rule_error(err: rules::RuleLoadError) -> GateError {
    GateError::Parse {
        path: PathBuf::from(&err.file),
        line: err.line,
        message: match &err.rule_id {
            Some(id) => format!("rule `{id}`: {}", err.message),
            None => err.message.clone(),
        },
        help: "fix the rule file; the ast-grep rule reference is at https://ast-grep.github.io/reference/yaml.html".to_owned(),
    }
}

#[cfg(test)]
mod pack_tests;

#[cfg(test)]
mod docs_tests;
