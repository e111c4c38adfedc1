//! The lint gate: `cargo fmt --check` and `cargo clippy`, each diagnostic a
//! finding at its file and line.
//!
//! Clippy runs with `--message-format=json`, so findings come from the
//! compiler's structured diagnostics rather than scraped text. rustfmt has no
//! stable machine format, so its `--check` diff headers are read instead.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::finding::{DiagnosticPayload, Finding, Location, Payload, Severity};
use crate::gate::{Gate, GateContext, GateError, GateOutput, Needs};
use crate::process::Invocation;

const GATE: &str = "lint";

/// `[gates.lint]` in the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LintOptions {
    /// Run `cargo fmt --check`.
    #[serde(default = "yes")]
    pub fmt: bool,
    /// Run `cargo clippy`.
    #[serde(default = "yes")]
    pub clippy: bool,
    /// Arguments after `cargo clippy --message-format=json`.
    #[serde(default = "default_clippy_args")]
    pub clippy_args: Vec<String>,
    /// Stop a tool that runs longer than this.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            fmt: true,
            clippy: true,
            clippy_args: default_clippy_args(),
            timeout_seconds: default_timeout(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_clippy_args() -> Vec<String> {
    vec!["--workspace".to_owned(), "--all-targets".to_owned()]
}

fn default_timeout() -> u64 {
    30 * 60
}

/// Formatting and clippy diagnostics.
#[derive(Debug)]
pub struct Lint;

#[async_trait]
impl Gate for Lint {
    fn id(&self) -> &'static str {
        GATE
    }

    fn description(&self) -> &'static str {
        "rustfmt and clippy: each diagnostic a finding at its file and line"
    }

    fn docs(&self) -> &'static str {
        "docs/gates/lint.md"
    }

    fn needs(&self) -> Needs {
        Needs {
            tools: &["cargo", "rustfmt", "clippy-driver"],
            network: false,
        }
    }

    async fn run(&self, ctx: &GateContext) -> Result<GateOutput, GateError> {
        let options = &ctx.policy.gates.lint;
        let root = ctx.root();
        if !root.join("Cargo.toml").is_file() {
            return Err(GateError::Unavailable {
                what: "a Cargo workspace".to_owned(),
                message: format!("no Cargo.toml at `{}`", root.display()),
                help: "point --root at a Rust project, or skip the lint gate in the policy"
                    .to_owned(),
            });
        }
        let timeout = Duration::from_secs(options.timeout_seconds);
        let mut output = GateOutput::default();

        if options.fmt {
            let invocation = Invocation::new("cargo", root)
                .args(["fmt", "--all", "--check", "--", "--color", "never"])
                .timeout(timeout);
            let result = ctx.runner.run(invocation).await?;
            let findings = parse_rustfmt_check(&result.stdout_lossy(), &ctx.repo);
            if !result.success() && findings.is_empty() {
                output.errors.push(GateError::Tool {
                    tool: "cargo fmt".to_owned(),
                    message: first_lines(&result.stderr_lossy(), 5),
                    help: "run `cargo fmt --all --check` yourself to see the problem".to_owned(),
                });
            }
            output.stat("rustfmt_findings", findings.len() as u64);
            output.findings.extend(findings);
        }

        if options.clippy {
            let invocation = Invocation::new("cargo", root)
                .args(["clippy", "--message-format=json"])
                .args(&options.clippy_args)
                .timeout(timeout);
            let result = ctx.runner.run(invocation).await?;
            let findings = parse_clippy_json(&result.stdout_lossy());
            let failed_without_diagnostics =
                !result.success() && !findings.iter().any(|f| f.severity >= Severity::High);
            if failed_without_diagnostics {
                output.errors.push(GateError::Tool {
                    tool: "cargo clippy".to_owned(),
                    message: first_lines(&result.stderr_lossy(), 8),
                    help: "run `cargo clippy` yourself to see the problem".to_owned(),
                });
            }
            output.stat("clippy_findings", findings.len() as u64);
            output.findings.extend(findings);
        }
        Ok(output)
    }
}

/// Reads the diffs of `cargo fmt --check`. Each hunk starts with a header,
/// `Diff in /abs/file.rs:12:` (rustfmt 1.5 and later) or `Diff in
/// /abs/file.rs at line 12:` (older), whose line is where the hunk's leading
/// context starts; the finding goes on the first line that actually changes.
fn parse_rustfmt_check(stdout: &str, repo: &crate::repo::RepoView) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut seen = BTreeSet::new();
    // The hunk being read: its file, its first line, the context lines so far.
    let mut hunk: Option<(String, Option<u32>, u32)> = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("Diff in ") {
            let rest = rest.trim_end_matches(':');
            let (path, start) = if let Some((path, n)) = rest.rsplit_once(" at line ") {
                (path, n.parse::<u32>().ok())
            } else if let Some((path, n)) = rest.rsplit_once(':') {
                (path, n.parse::<u32>().ok())
            } else {
                (rest, None)
            };
            hunk = Some((repo.relative(Path::new(path)), start, 0));
            continue;
        }
        let Some((relative, start, context)) = hunk.as_mut() else {
            continue;
        };
        if !(line.starts_with('-') || line.starts_with('+')) {
            *context += 1;
            continue;
        }
        let line_number = start.map(|s| s + *context);
        let relative = relative.clone();
        hunk = None;
        if !seen.insert((relative.clone(), line_number)) {
            continue;
        }
        let mut location = Location::file(relative.clone());
        if let Some(n) = line_number {
            location = location.with_lines(n, n);
        }
        findings.push(
            Finding::builder(
                GATE,
                "rustfmt",
                Severity::Low,
                "code is not formatted as rustfmt formats it",
            )
            .location(location)
            .help("run `cargo fmt --all`")
            .evidence(format!("{relative}:{}", line_number.unwrap_or(0)))
            .payload(Payload::Diagnostic(DiagnosticPayload {
                tool: "rustfmt".to_owned(),
                code: None,
            }))
            .build(),
        );
    }
    findings
}

#[derive(Debug, Deserialize)]
struct CargoMessage {
    reason: String,
    #[serde(default)]
    message: Option<Diagnostic>,
}

#[derive(Debug, Deserialize)]
struct Diagnostic {
    message: String,
    level: String,
    #[serde(default)]
    code: Option<DiagnosticCode>,
    #[serde(default)]
    spans: Vec<DiagnosticSpan>,
    #[serde(default)]
    rendered: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DiagnosticCode {
    code: String,
}

#[derive(Debug, Deserialize)]
struct DiagnosticSpan {
    file_name: String,
    line_start: u32,
    line_end: u32,
    column_start: u32,
    column_end: u32,
    is_primary: bool,
    #[serde(default)]
    text: Vec<SpanText>,
}

#[derive(Debug, Deserialize)]
struct SpanText {
    text: String,
}

/// Turns clippy's JSON lines into findings: one per primary span, duplicates
/// (the same diagnostic for the lib and its test target) folded.
fn parse_clippy_json(stdout: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut seen = BTreeSet::new();
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<CargoMessage>(line) else {
            continue;
        };
        if message.reason != "compiler-message" {
            continue;
        }
        let Some(diagnostic) = message.message else {
            continue;
        };
        let severity = match diagnostic.level.as_str() {
            "error" => Severity::High,
            "warning" => Severity::Low,
            // Notes and help attached to nothing, and the "N warnings
            // emitted" summaries, are not findings.
            _ => continue,
        };
        let Some(span) = diagnostic.spans.iter().find(|s| s.is_primary) else {
            continue;
        };
        let code = diagnostic.code.as_ref().map(|c| c.code.clone());
        let rule_id = match &code {
            Some(code) => code.clone(),
            None if severity == Severity::High => "compile-error".to_owned(),
            None => "compiler-warning".to_owned(),
        };
        let key = (
            rule_id.clone(),
            span.file_name.clone(),
            span.line_start,
            span.column_start,
            diagnostic.message.clone(),
        );
        if !seen.insert(key) {
            continue;
        }
        let evidence = span
            .text
            .iter()
            .map(|t| t.text.trim())
            .collect::<Vec<_>>()
            .join("\n");
        let tool = if rule_id.starts_with("clippy::") {
            "clippy"
        } else {
            "rustc"
        };
        let mut builder =
            Finding::builder(GATE, rule_id.clone(), severity, diagnostic.message.clone())
                .location(
                    Location::file(span.file_name.clone())
                        .with_lines(span.line_start, span.line_end)
                        .with_columns(span.column_start, span.column_end),
                )
                .evidence(format!("{}\n{evidence}", diagnostic.message))
                .payload(Payload::Diagnostic(DiagnosticPayload {
                    tool: tool.to_owned(),
                    code: code.clone(),
                }));
        if let Some(name) = rule_id.strip_prefix("clippy::") {
            builder = builder.reference(format!(
                "https://rust-lang.github.io/rust-clippy/master/index.html#{name}"
            ));
        }
        if let Some(rendered) = &diagnostic.rendered {
            builder = builder.help(rendered.trim_end().to_owned());
        }
        findings.push(builder.build());
    }
    findings
}

fn first_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(count);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_rustfmt_header_styles() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = crate::repo::RepoView::new(dir.path()).expect("view");
        let root = repo.root().display().to_string();
        let stdout = format!(
            "Diff in {root}/src/lib.rs:12:\n ctx\n ctx\n-a\n+b\nDiff in {root}/src/main.rs at line 3:\n-x\n"
        );
        let findings = parse_rustfmt_check(&stdout, &repo);
        let locations: Vec<String> = findings
            .iter()
            .map(|f| f.location.as_ref().expect("location").to_string())
            .collect();
        assert_eq!(locations, ["src/lib.rs:14", "src/main.rs:3"]);
    }

    #[test]
    fn reads_clippy_json_and_folds_duplicates() {
        let message = r#"{"reason":"compiler-message","message":{"message":"used `unwrap()` on an `Option` value","level":"warning","code":{"code":"clippy::unwrap_used"},"spans":[{"file_name":"src/lib.rs","line_start":4,"line_end":4,"column_start":5,"column_end":17,"is_primary":true,"text":[{"text":"    x.unwrap()"}]}],"rendered":"warning: used unwrap"}}"#;
        let stdout = format!(
            "{message}\n{message}\n{{\"reason\":\"build-finished\",\"success\":true}}\nnot json\n"
        );
        let findings = parse_clippy_json(&stdout);
        assert_eq!(findings.len(), 1);
        let finding = &findings[0];
        assert_eq!(finding.rule_id, "clippy::unwrap_used");
        assert_eq!(finding.severity, Severity::Low);
        assert_eq!(
            finding.location.as_ref().expect("location").to_string(),
            "src/lib.rs:4:5"
        );
    }

    #[test]
    fn compile_errors_are_high() {
        let stdout = r#"{"reason":"compiler-message","message":{"message":"cannot find value `x`","level":"error","code":{"code":"E0425"},"spans":[{"file_name":"src/main.rs","line_start":2,"line_end":2,"column_start":1,"column_end":2,"is_primary":true,"text":[]}]}}"#;
        let findings = parse_clippy_json(stdout);
        assert_eq!(findings[0].severity, Severity::High);
        assert_eq!(findings[0].rule_id, "E0425");
    }
}
