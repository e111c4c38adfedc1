//! The command line as a user meets it: exit codes, error messages that name
//! the file and line, and help text a newcomer can read. Each test runs the
//! real `portcullis` binary against a throwaway repository.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn portcullis() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    // Plain output whatever the environment of the test run.
    command
        .env_remove("GITHUB_ACTIONS")
        .env("CI", "true")
        .env("NO_COLOR", "1");
    command
}

fn run(args: &[&str]) -> Output {
    portcullis().args(args).output().expect("run portcullis")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn shared() -> PathBuf {
    std::env::var_os("PORTCULLIS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// A repository holding only `portcullis.toml` with this text.
fn repo_with_policy(policy: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("portcullis.toml"), policy).expect("write policy");
    dir
}

#[test]
fn help_lists_every_gate_and_the_exit_codes() {
    let output = run(&["--help"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let help = stdout(&output);
    insta::assert_snapshot!("help", help);
    for gate in portcullis::gates::ids() {
        assert!(
            help.contains(gate),
            "--help does not mention the {gate} gate"
        );
    }
}

#[test]
fn pipeline_help_explains_the_options() {
    // clap shows an environment variable's value in the help: clear it so
    // the snapshot does not depend on the machine.
    let output = portcullis()
        .args(["pipeline", "--help"])
        .env_remove("PORTCULLIS_ADVISORY_DB")
        .output()
        .expect("run portcullis");
    assert!(output.status.success(), "{}", stderr(&output));
    insta::assert_snapshot!("pipeline-help", stdout(&output));
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let output = run(&["scaa"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("scaa"), "{}", stderr(&output));
}

#[test]
fn unknown_gate_in_skip_is_a_usage_error_listing_the_gates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_str().expect("utf-8 temp path");
    let output = run(&["pipeline", "--root", root, "--skip", "secret"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("unknown gate `secret`"), "{message}");
    assert!(message.contains("secrets"), "{message}");
}

#[test]
fn policy_typo_names_the_file_and_line_and_exits_2() {
    let dir = repo_with_policy("version = 1\n\n[pipeline]\nthreshhold = \"low\"\n");
    let root = dir.path().to_str().expect("utf-8 temp path");
    for args in [
        vec!["policy", "check", "--root", root],
        vec!["pipeline", "--root", root],
    ] {
        let output = run(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(message.contains("portcullis.toml"), "{message}");
        assert!(message.contains("portcullis.toml` at 4:1"), "{message}");
        assert!(message.contains("threshhold"), "{message}");
    }
}

#[test]
fn policy_with_a_bad_waiver_date_names_the_line() {
    let policy = "version = 1\n\n[[stage]]\nname = \"static\"\ngates = [\"sca\"]\n\n[[waiver]]\nrule = \"RUSTSEC-2020-0001\"\nreason = \"no fix yet\"\nexpires = \"2026-13-01\"\n";
    let dir = repo_with_policy(policy);
    let root = dir.path().to_str().expect("utf-8 temp path");
    let output = run(&["policy", "check", "--root", root]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("at 10:"), "{}", stderr(&output));
}

#[test]
fn default_policy_is_valid() {
    let output = run(&["policy", "default"]);
    assert!(output.status.success());
    let dir = repo_with_policy(&stdout(&output));
    let root = dir.path().to_str().expect("utf-8 temp path");
    let check = run(&["policy", "check", "--root", root]);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn unreadable_root_is_a_usage_error() {
    let output = run(&["pipeline", "--root", "/nonexistent/portcullis-root"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("/nonexistent/portcullis-root"));
}

#[test]
fn vulnerable_lockfile_fails_with_1_and_missing_database_errors_with_3() {
    let shared = shared();
    let project = shared.join("corpus/lockfiles/ripgrep-0.10.0");
    let root = project.to_str().expect("utf-8 corpus path");
    // The advisory check alone: the licence policy runs `cargo metadata`,
    // which offline needs the project's crates in cargo's cache.
    let policy_dir =
        repo_with_policy("version = 1\n[[stage]]\nname = \"sca\"\ngates = [\"sca\"]\n");
    let policy_file = policy_dir.path().join("portcullis.toml");
    let policy = policy_file.to_str().expect("utf-8 temp path");
    let db = shared.join("advisory-db");
    let db = db.to_str().expect("utf-8 database path");

    let failed = run(&[
        "sca",
        "--root",
        root,
        "--policy",
        policy,
        "--advisory-db",
        db,
        "--offline",
    ]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));

    let missing = tempfile::tempdir().expect("temp dir");
    let missing_db = missing.path().join("no-db");
    let errored = run(&[
        "sca",
        "--root",
        root,
        "--policy",
        policy,
        "--advisory-db",
        missing_db.to_str().expect("utf-8 temp path"),
        "--offline",
    ]);
    assert_eq!(errored.status.code(), Some(3), "{}", stdout(&errored));
}

#[test]
fn out_dir_holds_every_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("notes.txt"), "nothing secret here\n").expect("write");
    let out = tempfile::tempdir().expect("temp dir");
    let output = run(&[
        "secrets",
        "--root",
        dir.path().to_str().expect("utf-8 temp path"),
        "--out",
        out.path().to_str().expect("utf-8 temp path"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for name in ["report.json", "results.sarif", "summary.md", "junit.xml"] {
        assert!(out.path().join(name).is_file(), "{name} missing from --out");
    }
    // Nothing was written into the scanned repository.
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
}

#[test]
fn only_and_skip_on_a_single_gate_command_are_usage_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_str().expect("utf-8 temp path");
    let output = run(&["secrets", "--root", root, "--only", "sbom"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`--only` and `--skip`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn quiet_prints_no_progress_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("notes.txt"), "nothing secret here\n").expect("write");
    let root = dir.path().to_str().expect("utf-8 temp path");
    let output = run(&["secrets", "--root", root, "--quiet"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("portcullis: gate"),
        "{}",
        stderr(&output)
    );
}
