//! Policy loading from files: errors name the file and line.

use std::fs;

use portcullis::policy::Policy;

#[test]
fn policy_file_with_typo_names_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("portcullis.toml");
    fs::write(
        &path,
        "version = 1\n\n[[stage]]\nname = \"a\"\ngatez = [\"sca\"]\n",
    )
    .expect("write");
    let err = Policy::load(&path).expect_err("typo must be rejected");
    let text = err.to_string();
    assert!(text.contains("portcullis.toml"), "{text}");
    assert_eq!(err.line, Some(5), "{text}");
    assert!(text.contains("gatez"), "{text}");
}

#[test]
fn missing_policy_file_is_an_error_not_the_default() {
    let err = Policy::load(std::path::Path::new("/nonexistent/portcullis.toml"))
        .expect_err("missing file");
    assert!(err.to_string().contains("could not read the policy"));
}

#[test]
fn discover_prefers_the_repository_policy() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(
        dir.path().join("portcullis.toml"),
        "version = 1\n[[stage]]\nname = \"only\"\ngates = [\"sca\"]\n",
    )
    .expect("write");
    let policy = Policy::discover(dir.path(), None, &[]).expect("valid");
    assert_eq!(policy.stages[0].name, "only");
    let builtin =
        Policy::discover(tempfile::tempdir().expect("dir").path(), None, &[]).expect("builtin");
    assert_eq!(builtin.origin, "<built-in default>");
}

/// A waived finding must not trip fail-fast: waivers are applied to each
/// gate as it finishes, before the stage is judged. (They were once applied
/// only after every stage, so a waived secret skipped the later stages.)
#[test]
fn a_waived_finding_does_not_stop_the_pipeline_with_fail_fast() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Built at run time so this file holds no credential-shaped string.
    let line = format!("DB_{}WORD=\"{}\"\n", "PASS", "Zq8rT2vLw9kP4mXc7Hn");
    fs::write(dir.path().join("settings.env"), line).expect("write");
    let policy = crate::common::policy(
        "version = 1\n\
         [pipeline]\nfail-fast = true\n\
         [[stage]]\nname = \"first\"\ngates = [\"secrets\"]\n\
         [[stage]]\nname = \"second\"\ngates = [\"sast\"]\n\
         [[waiver]]\nrule = \"generic-password\"\npath = \"settings.env\"\n\
         reason = \"a test value\"\nexpires = 2099-01-01\n",
    );
    let result = crate::common::run(dir.path(), policy, &["secrets", "sast"]);
    let outcome = |id: &str| {
        let gate = result
            .gates
            .iter()
            .find(|g| g.id == id)
            .expect("gate reported");
        format!("{:?}", gate.outcome)
    };
    let secrets = result
        .gates
        .iter()
        .find(|g| g.id == "secrets")
        .expect("secrets ran");
    assert_eq!(secrets.findings.len(), 1, "{:#?}", secrets.findings);
    assert!(secrets.findings[0].is_suppressed());
    assert_eq!(outcome("secrets"), "Passed");
    assert_eq!(outcome("sast"), "Passed");
    assert_eq!(result.verdict, portcullis::pipeline::Verdict::Passed);
}
