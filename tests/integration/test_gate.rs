//! The test gate on a real crate: one failing test is one finding; counts in
//! the stats.

use portcullis::pipeline::{Outcome, Verdict};

use crate::common;

fn run_with_runner(runner: &str) {
    let dir = common::copy_tree(&common::shared_free_fixture("test/mixed"));
    let policy = common::policy(&format!(
        "version = 1\n[[stage]]\nname = \"t\"\ngates = [\"test\"]\n[gates.test]\nrunner = \"{runner}\"\n"
    ));
    let result = common::run(dir.path(), policy, &["test"]);
    let gate = &result.gates[0];
    assert_eq!(gate.errors, Vec::<String>::new(), "{runner}");
    let failed: Vec<&str> = gate.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(failed.len(), 1, "{runner}: {failed:?}");
    assert!(
        failed[0].contains("fails_on_purpose"),
        "{runner}: {failed:?}"
    );
    assert_eq!(gate.stats["tests_passed"], 1, "{runner}");
    assert_eq!(gate.stats["tests_failed"], 1, "{runner}");
    assert_eq!(gate.stats["tests_ignored"], 1, "{runner}");
    assert_eq!(gate.outcome, Outcome::Failed);
    assert_eq!(result.verdict, Verdict::Failed);
}

#[test]
fn cargo_test_failures_are_findings() {
    run_with_runner("cargo");
}

#[test]
fn nextest_failures_are_findings() {
    if which("cargo-nextest").is_none() {
        eprintln!("skipped: cargo-nextest is not installed");
        return;
    }
    run_with_runner("nextest");
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
