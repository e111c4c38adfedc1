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
