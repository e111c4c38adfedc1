//! The test gate: runs the workspace's tests — with cargo-nextest when it is
//! installed, else `cargo test` — and makes each failing test a finding.
//!
//! nextest is read through its libtest-compatible JSON stream; `cargo test`
//! has no stable machine format, so its `test … FAILED` lines and
//! `test result:` summaries are read instead. Children see
//! `PORTCULLIS_TEST_GATE=1`, so a test suite that itself runs Portcullis can
//! avoid running its own tests recursively.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::finding::{DiagnosticPayload, Finding, Location, Payload, Severity};
use crate::gate::{Gate, GateContext, GateError, GateOutput, Needs};
use crate::process::{Invocation, ProcessOutput};

const GATE: &str = "test";

/// The variable set for every test the gate runs.
pub const IN_TEST_GATE: &str = "PORTCULLIS_TEST_GATE";

/// `[gates.test]` in the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestOptions {
    /// `auto` (nextest when installed), `nextest` or `cargo`.
    #[serde(default)]
    pub runner: TestRunner,
    /// Extra arguments for the runner, e.g. `["--features", "x"]`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Also run doc tests (nextest does not run them).
    #[serde(default = "yes")]
    pub doctests: bool,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            runner: TestRunner::Auto,
            args: Vec::new(),
            doctests: true,
            timeout_seconds: default_timeout(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestRunner {
    #[default]
    Auto,
    Nextest,
    Cargo,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    45 * 60
}

/// The workspace's tests.
#[derive(Debug)]
pub struct Test;

/// What a test run came to.
#[derive(Debug, Default, PartialEq, Eq)]
struct TestTally {
    passed: u64,
    failed: Vec<FailedTest>,
    ignored: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct FailedTest {
    name: String,
    output: String,
}

#[async_trait]
impl Gate for Test {
    fn id(&self) -> &'static str {
        GATE
    }

    fn description(&self) -> &'static str {
        "the workspace's tests (nextest or cargo test): each failing test a finding"
    }

    fn docs(&self) -> &'static str {
        "docs/gates/test.md"
    }

    fn needs(&self) -> Needs {
        Needs {
            tools: &["cargo", "cargo-nextest (optional)"],
            network: false,
        }
    }

    async fn run(&self, ctx: &GateContext) -> Result<GateOutput, GateError> {
        let options = &ctx.policy.gates.test;
        let root = ctx.root();
        if !root.join("Cargo.toml").is_file() {
            return Err(GateError::Unavailable {
                what: "a Cargo workspace".to_owned(),
                message: format!("no Cargo.toml at `{}`", root.display()),
                help: "point --root at a Rust project, or skip the test gate in the policy"
                    .to_owned(),
            });
        }
        let timeout = Duration::from_secs(options.timeout_seconds);
        let nextest = match options.runner {
            TestRunner::Nextest => true,
            TestRunner::Cargo => false,
            TestRunner::Auto => ctx.runner.has_program("cargo-nextest"),
        };

        let mut output = GateOutput::default();
        let (tally, result) = if nextest {
            let invocation = Invocation::new("cargo", root)
                .args(["nextest", "run", "--workspace", "--no-fail-fast"])
                .args(["--message-format", "libtest-json-plus"])
                .args(&options.args)
                .env("NEXTEST_EXPERIMENTAL_LIBTEST_JSON", "1")
                .env(IN_TEST_GATE, "1")
                .timeout(timeout);
            let result = ctx.runner.run(invocation).await?;
            (parse_libtest_json(&result.stdout_lossy()), result)
        } else {
            let invocation = Invocation::new("cargo", root)
                .args(["test", "--workspace", "--no-fail-fast"])
                .args(&options.args)
                .env(IN_TEST_GATE, "1")
                .timeout(timeout);
            let result = ctx.runner.run(invocation).await?;
            (parse_cargo_test(&result.stdout_lossy()), result)
        };
        let mut tally = tally;
        check_built(&result, &tally, &mut output);

        if nextest && options.doctests && root.join("src/lib.rs").is_file() {
            let invocation = Invocation::new("cargo", root)
                .args(["test", "--workspace", "--doc"])
                .args(&options.args)
                .env(IN_TEST_GATE, "1")
                .timeout(timeout);
            let result = ctx.runner.run(invocation).await?;
            let doc_tally = parse_cargo_test(&result.stdout_lossy());
            check_built(&result, &doc_tally, &mut output);
            tally.passed += doc_tally.passed;
            tally.ignored += doc_tally.ignored;
            tally.failed.extend(doc_tally.failed);
        }

        output.stat("tests_passed", tally.passed);
        output.stat("tests_failed", tally.failed.len() as u64);
        output.stat("tests_ignored", tally.ignored);
        output.stat("runner_nextest", u64::from(nextest));
        for failed in tally.failed {
            output.findings.push(
                Finding::builder(
                    GATE,
                    "test-failed",
                    Severity::High,
                    format!("test `{}` failed", failed.name),
                )
                .location(Location::file("Cargo.toml"))
                .help(failed.output)
                .evidence(failed.name.clone())
                .payload(Payload::Diagnostic(DiagnosticPayload {
                    tool: if nextest { "nextest" } else { "cargo-test" }.to_owned(),
                    code: None,
                }))
                .build(),
            );
        }
        Ok(output)
    }
}

/// A run that failed without a single failing test did not build (or the
/// runner broke): that is a finding against the code, with the compiler's
/// last words as help.
fn check_built(result: &ProcessOutput, tally: &TestTally, output: &mut GateOutput) {
    if result.success() || !tally.failed.is_empty() {
        return;
    }
    let stderr = result.stderr_lossy();
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let looks_like_compile_error =
        stderr.contains("error[E") || stderr.contains("could not compile");
    if looks_like_compile_error {
        output.findings.push(
            Finding::builder(
                GATE,
                "test-build-failed",
                Severity::High,
                "the tests do not compile",
            )
            .location(Location::file("Cargo.toml"))
            .help(tail.join("\n"))
            .evidence("test-build-failed")
            .build(),
        );
    } else {
        output.errors.push(GateError::Tool {
            tool: "cargo test".to_owned(),
            message: format!(
                "exited with {:?} without reporting a failing test:\n{}",
                result.status,
                tail.join("\n")
            ),
            help: "run the tests yourself to see what went wrong".to_owned(),
        });
    }
}

#[derive(Debug, Deserialize)]
struct LibtestEvent {
    #[serde(rename = "type")]
    kind: String,
    event: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    stdout: Option<String>,
}

/// Reads nextest's libtest-json stream: one JSON object per line.
fn parse_libtest_json(stdout: &str) -> TestTally {
    let mut tally = TestTally::default();
    for line in stdout.lines() {
        let Ok(event) = serde_json::from_str::<LibtestEvent>(line) else {
            continue;
        };
        if event.kind != "test" {
            continue;
        }
        match event.event.as_str() {
            "ok" => tally.passed += 1,
            "ignored" => tally.ignored += 1,
            "failed" | "timeout" => tally.failed.push(FailedTest {
                name: event.name.unwrap_or_default(),
                output: tail_of(event.stdout.as_deref().unwrap_or(""), 40),
            }),
            _ => {}
        }
    }
    tally
}

/// Reads `cargo test`'s human output: `test path ... FAILED` lines, the
/// `---- path stdout ----` sections and the `test result:` summaries.
fn parse_cargo_test(stdout: &str) -> TestTally {
    let mut tally = TestTally::default();
    let mut failed_names = BTreeSet::new();
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;

    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            tally.passed += count_before(rest, " passed");
            tally.ignored += count_before(rest, " ignored");
            if let Some(section) = current.take() {
                sections.push(section);
            }
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            if let Some(section) = current.take() {
                sections.push(section);
            }
            current = Some((name.to_owned(), String::new()));
            continue;
        }
        if line == "failures:" || line.starts_with("failures:") {
            if let Some(section) = current.take() {
                sections.push(section);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("test ")
            && let Some(name) = rest.strip_suffix(" ... FAILED")
        {
            failed_names.insert(name.to_owned());
            continue;
        }
        if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    if let Some(section) = current.take() {
        sections.push(section);
    }

    for name in failed_names {
        let output = sections
            .iter()
            .find(|(section, _)| *section == name)
            .map(|(_, text)| tail_of(text, 40))
            .unwrap_or_default();
        tally.failed.push(FailedTest { name, output });
    }
    tally
}

/// The number just before `label` in `ok. 3 passed; 1 failed; …`.
fn count_before(summary: &str, label: &str) -> u64 {
    summary
        .split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label.trim())
                .map(str::trim)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn tail_of(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_test_output() {
        let stdout = "\
running 3 tests
test a::passes ... ok
test a::breaks ... FAILED
test a::skipped ... ignored

failures:

---- a::breaks stdout ----
thread 'a::breaks' panicked at src/lib.rs:3:5:
assertion failed

failures:
    a::breaks

test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let tally = parse_cargo_test(stdout);
        assert_eq!(tally.passed, 1);
        assert_eq!(tally.ignored, 1);
        assert_eq!(tally.failed.len(), 1);
        assert_eq!(tally.failed[0].name, "a::breaks");
        assert!(tally.failed[0].output.contains("assertion failed"));
    }

    #[test]
    fn reads_nextest_libtest_json() {
        let stdout = r#"{"type":"suite","event":"started","test_count":2}
{"type":"test","event":"started","name":"crate$a::ok"}
{"type":"test","event":"ok","name":"crate$a::ok","exec_time":0.1}
{"type":"test","event":"failed","name":"crate$a::bad","stdout":"boom\n"}
{"type":"suite","event":"failed","passed":1,"failed":1}
"#;
        let tally = parse_libtest_json(stdout);
        assert_eq!(tally.passed, 1);
        assert_eq!(
            tally.failed,
            [FailedTest {
                name: "crate$a::bad".to_owned(),
                output: "boom".to_owned()
            }]
        );
    }

    #[test]
    fn summary_counts() {
        assert_eq!(
            count_before("ok. 12 passed; 0 failed; 2 ignored", " passed"),
            12
        );
        assert_eq!(
            count_before("ok. 12 passed; 0 failed; 2 ignored", " ignored"),
            2
        );
    }
}
