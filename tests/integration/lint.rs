//! The lint gate on a real crate: rustfmt and clippy findings at exact lines.

use portcullis::finding::Severity;
use portcullis::pipeline::{Outcome, Verdict};
use portcullis::policy::Policy;

use crate::common;

#[test]
fn finds_the_formatting_problem_and_the_clippy_warning() {
    let dir = common::copy_tree(&common::shared_free_fixture("lint/messy"));
    let result = common::run(dir.path(), Policy::builtin(), &["lint"]);
    let gate = &result.gates[0];
    assert_eq!(gate.errors, Vec::<String>::new());

    let found: Vec<(String, String)> = gate
        .findings
        .iter()
        .map(|f| {
            (
                f.rule_id.clone(),
                f.location
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        found.contains(&("rustfmt".to_owned(), "src/lib.rs:4".to_owned()))
            || found
                .iter()
                .any(|(r, l)| r == "rustfmt" && l.starts_with("src/lib.rs:")),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            "clippy::needless_return".to_owned(),
            "src/lib.rs:9:5".to_owned()
        )),
        "{found:?}"
    );
    assert!(gate.findings.iter().all(|f| f.severity == Severity::Low));
    assert_eq!(gate.outcome, Outcome::Failed);
    assert_eq!(result.verdict, Verdict::Failed);
    // The gate only reads: the fixture is still unformatted.
    let source = std::fs::read_to_string(dir.path().join("src/lib.rs")).expect("read");
    assert!(source.contains("x+1"));
}

#[test]
fn a_directory_without_cargo_toml_is_an_error_not_a_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    let result = common::run(dir.path(), Policy::builtin(), &["lint"]);
    assert_eq!(result.gates[0].outcome, Outcome::Errored);
    assert_eq!(result.verdict, Verdict::Errored);
    assert!(
        result.gates[0].errors[0].contains("no Cargo.toml"),
        "{:?}",
        result.gates[0].errors
    );
}
