//! The sca gate against the shared corpus, the shared cases and broken
//! inputs.
//!
//! The expected advisory lists for `../shared/corpus/lockfiles` are what
//! `cargo audit --no-fetch --db ../shared/advisory-db -f <lockfile> --json`
//! (cargo-audit 0.22.2, informational warnings on, its default) reported on
//! the snapshot: vulnerabilities plus unmaintained/unsound/notice warnings,
//! as "ID package version". cargo-audit's yanked warnings carry no advisory
//! id and come from the local crates.io index cache, so they are not part of
//! the comparison (see docs/gates/sca.md).

use std::fs;
use std::path::{Path, PathBuf};

use portcullis::finding::{Finding, Payload, Severity};
use portcullis::pipeline::{GateReport, Outcome, PipelineResult, Verdict};
use portcullis::policy::Policy;

use crate::common;

fn sca_only(root: &Path, policy: Policy) -> PipelineResult {
    common::run(root, policy, &["sca"])
}

/// The built-in policy with only the advisory check: the licence policy
/// runs `cargo metadata`, which needs the cases' crates in cargo's cache.
fn advisories_only() -> Policy {
    let mut policy = Policy::builtin();
    policy.gates.sca.licenses = None;
    policy.gates.sca.sources = None;
    policy
}

fn gate(result: &PipelineResult) -> &GateReport {
    result
        .gates
        .iter()
        .find(|g| g.id == "sca")
        .expect("the sca gate ran")
}

/// "ID package version" of every advisory finding, sorted.
fn advisory_keys(report: &GateReport) -> Vec<String> {
    let mut keys: Vec<String> = report
        .findings
        .iter()
        .filter_map(|f| match &f.payload {
            Payload::Package(p) => Some(format!("{} {} {}", f.rule_id, p.package, p.version)),
            _ => None,
        })
        .collect();
    keys.sort();
    keys
}

fn corpus(name: &str) -> PathBuf {
    common::shared_path(&format!("corpus/lockfiles/{name}"))
}

fn case(name: &str) -> PathBuf {
    let cases = common::shared_path("cases");
    let entry = fs::read_dir(&cases)
        .expect("shared cases")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(name))
        .unwrap_or_else(|| panic!("case {name} under {}", cases.display()));
    entry.path()
}

fn assert_same_as_cargo_audit(name: &str, expected: &[&str]) {
    let result = sca_only(&corpus(name), advisories_only());
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(advisory_keys(report), expected, "{name}");
    if expected.is_empty() {
        assert_eq!(result.verdict, Verdict::Passed);
    } else {
        assert_eq!(result.verdict, Verdict::Failed, "{name}");
        assert_eq!(result.verdict.exit_code(), 1);
    }
}

#[test]
fn corpus_bat_0_18_0_matches_cargo_audit() {
    assert_same_as_cargo_audit(
        "bat-0.18.0",
        &[
            "RUSTSEC-2020-0095 difference 2.0.0",
            "RUSTSEC-2020-0100 sys-info 0.7.0",
            "RUSTSEC-2020-0159 chrono 0.4.19",
            "RUSTSEC-2020-0163 term_size 0.3.2",
            "RUSTSEC-2021-0119 nix 0.19.1",
            "RUSTSEC-2021-0139 ansi_term 0.11.0",
            "RUSTSEC-2021-0139 ansi_term 0.12.1",
            "RUSTSEC-2021-0145 atty 0.2.14",
            "RUSTSEC-2021-0153 encoding 0.2.33",
            "RUSTSEC-2022-0006 thread_local 1.1.3",
            "RUSTSEC-2022-0013 regex 1.4.3",
            "RUSTSEC-2023-0003 libgit2-sys 0.12.18+1.1.0",
            "RUSTSEC-2023-0018 remove_dir_all 0.5.3",
            "RUSTSEC-2023-0081 safemem 0.3.3",
            "RUSTSEC-2024-0013 libgit2-sys 0.12.18+1.1.0",
            "RUSTSEC-2024-0320 yaml-rust 0.4.5",
            "RUSTSEC-2024-0375 atty 0.2.14",
            "RUSTSEC-2024-0384 instant 0.1.9",
            "RUSTSEC-2024-0421 idna 0.2.1",
            "RUSTSEC-2025-0056 adler 0.2.3",
            "RUSTSEC-2025-0141 bincode 1.3.1",
            "RUSTSEC-2026-0008 git2 0.13.15",
            "RUSTSEC-2026-0097 rand 0.8.3",
            "RUSTSEC-2026-0183 git2 0.13.15",
            "RUSTSEC-2026-0184 git2 0.13.15",
        ],
    );
}

#[test]
fn corpus_fd_8_2_1_matches_cargo_audit() {
    assert_same_as_cargo_audit(
        "fd-8.2.1",
        &[
            "RUSTSEC-2018-0017 tempdir 0.3.7",
            "RUSTSEC-2020-0163 term_size 0.3.2",
            "RUSTSEC-2021-0119 nix 0.18.0",
            "RUSTSEC-2021-0139 ansi_term 0.11.0",
            "RUSTSEC-2021-0139 ansi_term 0.12.1",
            "RUSTSEC-2021-0145 atty 0.2.14",
            "RUSTSEC-2022-0006 thread_local 1.0.1",
            "RUSTSEC-2022-0013 regex 1.4.2",
            "RUSTSEC-2022-0041 crossbeam-utils 0.8.1",
            "RUSTSEC-2023-0018 remove_dir_all 0.5.3",
            "RUSTSEC-2023-0040 users 0.11.0",
            "RUSTSEC-2023-0059 users 0.11.0",
            "RUSTSEC-2024-0375 atty 0.2.14",
            "RUSTSEC-2025-0040 users 0.11.0",
            "RUSTSEC-2026-0190 anyhow 1.0.35",
        ],
    );
}

#[test]
fn corpus_ripgrep_0_10_0_matches_cargo_audit() {
    assert_same_as_cargo_audit(
        "ripgrep-0.10.0",
        &[
            "RUSTSEC-2018-0017 tempdir 0.3.7",
            "RUSTSEC-2018-0018 smallvec 0.6.5",
            "RUSTSEC-2019-0009 smallvec 0.6.5",
            "RUSTSEC-2019-0011 memoffset 0.2.1",
            "RUSTSEC-2019-0012 smallvec 0.6.5",
            "RUSTSEC-2019-0035 rand_core 0.2.1",
            "RUSTSEC-2020-0070 lock_api 0.1.3",
            "RUSTSEC-2020-0077 memmap 0.6.2",
            "RUSTSEC-2021-0003 smallvec 0.6.5",
            "RUSTSEC-2021-0145 atty 0.2.11",
            "RUSTSEC-2022-0006 thread_local 0.3.6",
            "RUSTSEC-2022-0013 regex 1.0.5",
            "RUSTSEC-2022-0019 crossbeam-channel 0.2.4",
            "RUSTSEC-2022-0040 owning_ref 0.3.3",
            "RUSTSEC-2022-0041 crossbeam-utils 0.5.0",
            "RUSTSEC-2023-0018 remove_dir_all 0.5.1",
            "RUSTSEC-2023-0045 memoffset 0.2.1",
            "RUSTSEC-2023-0081 safemem 0.2.0",
            "RUSTSEC-2024-0375 atty 0.2.11",
        ],
    );
}

#[test]
fn corpus_ripgrep_head_is_clean_like_cargo_audit() {
    assert_same_as_cargo_audit("ripgrep-head", &[]);
}

#[test]
fn corpus_zizmor_1_0_0_matches_cargo_audit() {
    assert_same_as_cargo_audit(
        "zizmor-1.0.0",
        &[
            "RUSTSEC-2025-0009 ring 0.17.8",
            "RUSTSEC-2025-0023 tokio 1.42.0",
            "RUSTSEC-2025-0055 tracing-subscriber 0.3.19",
            "RUSTSEC-2025-0119 number_prefix 0.4.0",
            "RUSTSEC-2025-0134 rustls-pemfile 2.2.0",
            "RUSTSEC-2025-0141 bincode 1.3.3",
            "RUSTSEC-2026-0007 bytes 1.8.0",
            "RUSTSEC-2026-0009 time 0.3.37",
            "RUSTSEC-2026-0037 quinn-proto 0.11.8",
            "RUSTSEC-2026-0049 rustls-webpki 0.102.8",
            "RUSTSEC-2026-0067 tar 0.4.43",
            "RUSTSEC-2026-0068 tar 0.4.43",
            "RUSTSEC-2026-0097 rand 0.8.5",
            "RUSTSEC-2026-0098 rustls-webpki 0.102.8",
            "RUSTSEC-2026-0099 rustls-webpki 0.102.8",
            "RUSTSEC-2026-0104 rustls-webpki 0.102.8",
            "RUSTSEC-2026-0185 quinn-proto 0.11.8",
            "RUSTSEC-2026-0186 memmap2 0.5.10",
            "RUSTSEC-2026-0190 anyhow 1.0.95",
        ],
    );
}

#[test]
fn corpus_zizmor_head_matches_cargo_audit() {
    assert_same_as_cargo_audit(
        "zizmor-head",
        &[
            "RUSTSEC-2026-0186 memmap2 0.5.10",
            "RUSTSEC-2026-0204 crossbeam-epoch 0.9.18",
            "RUSTSEC-2026-0258 h2 0.4.13",
        ],
    );
}

#[test]
fn informational_findings_warn_and_vulnerabilities_fail() {
    let result = sca_only(&corpus("zizmor-head"), advisories_only());
    let report = gate(&result);
    let by_id = |id: &str| -> &Finding {
        report
            .findings
            .iter()
            .find(|f| f.rule_id == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    // Unsound: informational, severity info, below the default threshold.
    let unsound = by_id("RUSTSEC-2026-0186");
    assert_eq!(unsound.severity, Severity::Info);
    let Payload::Package(payload) = &unsound.payload else {
        panic!("package payload");
    };
    assert_eq!(payload.kind, "unsound");
    // A vulnerability fails the run.
    assert!(by_id("RUSTSEC-2026-0258").severity >= Severity::Low);
    assert_eq!(report.outcome, Outcome::Failed);
}

#[test]
fn informational_kinds_follow_the_policy() {
    let policy = common::policy(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n[gates.sca]\ninformational = []\n",
    );
    let result = sca_only(&corpus("zizmor-head"), policy);
    assert_eq!(
        advisory_keys(gate(&result)),
        [
            "RUSTSEC-2026-0204 crossbeam-epoch 0.9.18",
            "RUSTSEC-2026-0258 h2 0.4.13"
        ]
    );
}

#[test]
fn case_001_v4_lockfile_with_encoded_git_branch() {
    let result = sca_only(&case("001"), advisories_only());
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(advisory_keys(report), ["RUSTSEC-2021-0003 smallvec 1.6.0"]);
    assert_eq!(report.stats.get("packages"), Some(&4));
    let finding = &report.findings[0];
    let Payload::Package(payload) = &finding.payload else {
        panic!("package payload");
    };
    assert_eq!(payload.patched, [">=0.6.14, <1.0.0", ">=1.6.1"]);
    assert_eq!(
        payload.dependency_path,
        ["smallvec 1.6.0", "ledger-tool 0.3.0"]
    );
    let location = finding.location.as_ref().expect("location");
    assert_eq!(
        (location.path.as_str(), location.start_line),
        ("Cargo.lock", Some(26))
    );
    assert_eq!(result.verdict.exit_code(), 1);
}

#[test]
fn case_002_withdrawn_advisory_is_never_reported() {
    let result = sca_only(&case("002"), advisories_only());
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(result.verdict, Verdict::Passed);
}

#[test]
fn case_003_prerelease_above_patched_range() {
    let result = sca_only(&case("003"), advisories_only());
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(result.verdict, Verdict::Passed);
}

fn with_target_os(os: &str) -> Policy {
    common::policy(&format!(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n[gates.sca]\ntarget-os = [\"{os}\"]\n"
    ))
}

#[test]
fn case_005_cvss_v4_advisory_and_os_scope() {
    let result = sca_only(&case("005"), advisories_only());
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        advisory_keys(report),
        ["RUSTSEC-2024-0445 cap-primitives 3.4.0"]
    );
    let finding = &report.findings[0];
    let Payload::Package(payload) = &finding.payload else {
        panic!("package payload");
    };
    assert_eq!(
        payload.cvss.as_deref(),
        Some("CVSS:4.0/AV:N/AC:L/AT:P/PR:L/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N")
    );
    let score = payload.cvss_score.expect("a v4 base score");
    assert_eq!(finding.severity, Severity::from_cvss_score(score));
    assert_eq!(
        finding.location.as_ref().and_then(|l| l.start_line),
        Some(18)
    );

    let linux = sca_only(&case("005"), with_target_os("linux"));
    assert!(gate(&linux).findings.is_empty());
    let windows = sca_only(&case("005"), with_target_os("windows"));
    assert_eq!(
        advisory_keys(gate(&windows)),
        ["RUSTSEC-2024-0445 cap-primitives 3.4.0"]
    );
}

#[test]
fn case_006_vulnerable_crate_behind_a_path_dependency() {
    let result = sca_only(&case("006"), advisories_only());
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(advisory_keys(report), ["RUSTSEC-2021-0003 smallvec 1.6.0"]);
    let Payload::Package(payload) = &report.findings[0].payload else {
        panic!("package payload");
    };
    assert_eq!(
        payload.dependency_path,
        ["smallvec 1.6.0", "local 0.1.0", "app 0.1.0"]
    );
}

#[test]
fn case_007_gnu_plus_inside_an_or_expression() {
    // policy.toml beside the case, in cargo-deny syntax:
    // [licenses] allow = ["Apache-2.0", "MIT"].
    let dir = common::copy_tree(&case("007"));
    let policy = common::policy(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n\
         [gates.sca.licenses]\nallow = [\"Apache-2.0\", \"MIT\"]\n",
    );
    let before = fs::read(dir.path().join("Cargo.lock")).expect("lockfile");
    let result = sca_only(dir.path(), policy);
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let licence: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.rule_id.starts_with("license-"))
        .collect();
    assert_eq!(licence.len(), 1, "{licence:?}");
    let finding = licence[0];
    assert_eq!(finding.rule_id, "license-not-allowed");
    assert!(
        finding.message.contains("legacy-codec 0.3.0"),
        "{}",
        finding.message
    );
    assert!(
        finding
            .message
            .contains("`GPL-2.0-or-later` not in the allow list"),
        "{}",
        finding.message
    );
    assert_eq!(report.stats.get("licenses_checked"), Some(&3));
    // `cargo metadata --locked` left the lockfile as it was.
    assert_eq!(
        fs::read(dir.path().join("Cargo.lock")).expect("lockfile"),
        before
    );
}

#[test]
fn case_008_allowed_sparse_registry() {
    // policy.toml beside the case, in cargo-deny syntax: unknown registries
    // and git denied; allow-registry = crates.io index and the example
    // sparse registry.
    let policy = common::policy(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n\
         [gates.sca.sources]\nunknown-registry = \"deny\"\nunknown-git = \"deny\"\n\
         allow-registry = [\"https://github.com/rust-lang/crates.io-index\", \
         \"sparse+https://crates.example.com/index/\"]\n",
    );
    let result = sca_only(&case("008"), policy);
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let sources: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.rule_id == "source-not-allowed")
        .collect();
    assert_eq!(sources.len(), 1, "{sources:?}");
    let finding = sources[0];
    assert!(
        finding.message.contains("quickfmt 0.2.7"),
        "{}",
        finding.message
    );
    assert!(
        finding
            .message
            .contains("sparse+https://crates.untrusted.example/index/"),
        "{}",
        finding.message
    );
    let location = finding.location.as_ref().expect("location");
    assert_eq!(
        (location.path.as_str(), location.start_line),
        ("Cargo.lock", Some(29))
    );
    assert!(
        report
            .warnings
            .iter()
            .all(|w| !w.contains("not encountered")),
        "{:?}",
        report.warnings
    );
}

// --- bad input -----------------------------------------------------------

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sca")
        .join(name)
}

/// Runs the gate on a fixture copied to a temp dir and checks the gate
/// errored and left every file as it was.
fn errored_run(name: &str, policy: Policy) -> (GateReport, Verdict) {
    let dir = common::copy_tree(&fixture(name));
    let before = snapshot(dir.path());
    let result = sca_only(dir.path(), policy);
    assert_eq!(
        snapshot(dir.path()),
        before,
        "{name}: the repository changed"
    );
    let report = gate(&result).clone();
    assert_eq!(report.outcome, Outcome::Errored, "{name}: {report:?}");
    (report, result.verdict)
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.clone(), fs::read(&path).unwrap_or_default()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn corrupt_lockfile_names_file_and_line() {
    let (report, verdict) = errored_run("corrupt-toml", advisories_only());
    assert_eq!(verdict, Verdict::Errored);
    assert_eq!(verdict.exit_code(), 3);
    let error = &report.errors[0];
    assert!(error.contains("Cargo.lock` at line 7"), "{error}");
    assert!(error.contains("help:"), "{error}");
}

#[test]
fn truncated_lockfile_is_an_error_naming_the_file() {
    // Case 006's lockfile cut after the smallvec entry: `yansi`, which
    // pretty_assertions needs, is gone.
    let dir = common::copy_tree(&case("006"));
    let lockfile = dir.path().join("Cargo.lock");
    let text = fs::read_to_string(&lockfile).expect("lockfile");
    let cut = text
        .find("[[package]]\nname = \"yansi\"")
        .expect("yansi entry");
    fs::write(&lockfile, &text[..cut]).expect("truncate");

    let result = sca_only(dir.path(), advisories_only());
    let report = gate(&result);
    assert_eq!(report.outcome, Outcome::Errored);
    let error = &report.errors[0];
    assert!(error.contains("Cargo.lock"), "{error}");
    assert!(error.contains("yansi"), "{error}");
    assert!(error.contains("truncated"), "{error}");
    assert_eq!(
        fs::read_to_string(&lockfile).expect("lockfile"),
        text[..cut]
    );
}

#[test]
fn unknown_lockfile_version_names_file_and_line() {
    let (report, _) = errored_run("unknown-version", advisories_only());
    let error = &report.errors[0];
    assert!(error.contains("Cargo.lock` at line 3"), "{error}");
    assert!(
        error.contains("unknown lockfile format version `9`"),
        "{error}"
    );
}

#[test]
fn lockfile_that_is_not_utf8_is_an_error() {
    let (report, _) = errored_run("not-utf8", advisories_only());
    assert!(
        report.errors[0].contains("not valid UTF-8"),
        "{:?}",
        report.errors
    );
}

#[cfg(unix)]
#[test]
#[allow(clippy::print_stderr)]
fn unreadable_lockfile_is_an_error_naming_it() {
    use std::os::unix::fs::PermissionsExt;

    let dir = common::copy_tree(&case("006"));
    let lockfile = dir.path().join("Cargo.lock");
    fs::set_permissions(&lockfile, fs::Permissions::from_mode(0o000)).expect("chmod");
    if fs::read(&lockfile).is_ok() {
        // Running as root: permissions do not stop reads.
        eprintln!("skipped: this user can read files without read permission");
        return;
    }
    let result = sca_only(dir.path(), advisories_only());
    let report = gate(&result);
    assert_eq!(report.outcome, Outcome::Errored);
    assert!(
        report.errors[0].contains("could not read"),
        "{:?}",
        report.errors
    );
    assert!(
        report.errors[0].contains("Cargo.lock"),
        "{:?}",
        report.errors
    );
}

#[test]
fn missing_advisory_database_is_unavailable() {
    let mut settings = common::settings();
    settings.advisory_db = Some(PathBuf::from("/nonexistent/advisory-db"));
    let result = common::run_with(&case("006"), advisories_only(), &["sca"], settings);
    let report = gate(&result);
    assert_eq!(report.outcome, Outcome::Errored);
    let error = &report.errors[0];
    assert!(error.contains("/nonexistent/advisory-db"), "{error}");
    assert!(error.contains("--advisory-db"), "{error}");
    assert_eq!(result.verdict, Verdict::Errored);
}

#[test]
fn folder_without_crates_is_not_a_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = common::settings();
    settings.advisory_db = Some(dir.path().to_owned());
    let result = common::run_with(&case("006"), advisories_only(), &["sca"], settings);
    let error = &gate(&result).errors[0];
    assert!(error.contains("has no `crates` folder"), "{error}");
}

#[test]
fn malformed_advisory_names_its_file() {
    let db = common::copy_tree(&fixture("malformed-db"));
    let mut settings = common::settings();
    settings.advisory_db = Some(db.path().to_owned());
    let result = common::run_with(&case("006"), advisories_only(), &["sca"], settings);
    let report = gate(&result);
    assert_eq!(report.outcome, Outcome::Errored);
    let error = &report.errors[0];
    assert!(error.contains("RUSTSEC-2099-0001.md"), "{error}");
    assert!(error.contains("not a valid advisory"), "{error}");
}

#[test]
fn policy_database_path_that_does_not_exist_says_what_to_do() {
    let home = tempfile::tempdir().expect("temp dir");
    let mut settings = common::settings();
    settings.advisory_db = None;
    let policy = common::policy(&format!(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n[gates.sca]\nadvisory-db = \"{}\"\n",
        home.path().join("advisory-db").display()
    ));
    let result = common::run_with(&case("006"), policy, &["sca"], settings);
    let error = &gate(&result).errors[0];
    assert!(
        error.contains("advisory database is unavailable"),
        "{error}"
    );
    assert!(error.contains("the policy's `advisory-db`"), "{error}");
}

#[test]
fn stale_database_warns() {
    let mut settings = common::settings();
    settings.today = jiff::civil::date(2099, 1, 1);
    let result = common::run_with(&case("006"), advisories_only(), &["sca"], settings);
    let report = gate(&result);
    assert!(
        report.warnings.iter().any(|w| w.contains("days old")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn no_lockfile_is_an_error_not_a_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    let result = sca_only(dir.path(), advisories_only());
    let report = gate(&result);
    assert_eq!(report.outcome, Outcome::Errored);
    assert!(
        report.errors[0].contains("no Cargo.lock"),
        "{:?}",
        report.errors
    );
}

#[test]
fn policy_typo_in_sca_options_names_the_line() {
    let err = Policy::from_toml(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n[gates.sca]\ntarget-oss = [\"linux\"]\n",
        "portcullis.toml",
        None,
    )
    .expect_err("typo");
    assert_eq!(err.line, Some(6), "{err}");
    assert!(err.to_string().contains("target-oss"), "{err}");

    let err = Policy::from_toml(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n[gates.sca]\ntarget-os = [\"linx\"]\n",
        "portcullis.toml",
        None,
    )
    .expect_err("unknown os");
    assert_eq!(err.line, Some(6), "{err}");

    let err = Policy::from_toml(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n[gates.sca.licenses]\nallow = [\"MIT\", \"Apache2\"]\n",
        "portcullis.toml",
        None,
    )
    .expect_err("bad licence id");
    assert_eq!(err.line, Some(6), "{err}");
    assert!(err.to_string().contains("Apache2"), "{err}");
}

#[test]
fn excluded_lockfiles_are_not_read() {
    let dir = common::copy_tree(&fixture("corrupt-toml"));
    let sub = dir.path().join("vendor/ok");
    fs::create_dir_all(&sub).expect("mkdir");
    fs::copy(case("003").join("Cargo.lock"), sub.join("Cargo.lock")).expect("copy");
    let policy = common::policy(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n[gates.sca]\nexclude = [\"Cargo.lock\"]\n",
    );
    let result = sca_only(dir.path(), policy);
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.stats.get("lockfiles"), Some(&1));
}

#[test]
fn crates_io_through_the_sparse_index_is_still_crates_io() {
    // cargo-audit 0.22.2 reports nothing here: rustsec compares the source
    // kind (sparse vs git index) and misses the advisory. Deliberate
    // difference, see docs/gates/sca.md.
    let result = sca_only(&fixture("sparse-crates-io"), advisories_only());
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(advisory_keys(report), ["RUSTSEC-2021-0003 smallvec 1.6.0"]);
    assert_eq!(
        report.findings[0]
            .location
            .as_ref()
            .and_then(|l| l.start_line),
        Some(12)
    );
}

#[test]
fn this_repository_passes_its_own_policy() {
    // Runs `cargo metadata --locked --offline` on this checkout: the licence
    // allow-list in policies/portcullis.toml must cover our real tree.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lockfile = fs::read(root.join("Cargo.lock")).expect("lockfile");
    let result = sca_only(root, Policy::builtin());
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let policy_findings: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| matches!(f.payload, Payload::PackagePolicy(_)))
        .collect();
    assert!(policy_findings.is_empty(), "{policy_findings:?}");
    assert!(report.stats.get("licenses_checked").copied().unwrap_or(0) > 100);
    assert_eq!(report.stats.get("lockfiles"), Some(&1));
    assert_eq!(
        fs::read(root.join("Cargo.lock")).expect("lockfile"),
        lockfile
    );
}

#[test]
fn offline_runs_say_yanked_crates_were_not_checked() {
    let result = sca_only(&case("003"), advisories_only());
    let report = gate(&result);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("yanked crates were not checked")),
        "{:?}",
        report.warnings
    );
    assert_eq!(report.outcome, Outcome::Warned);
    assert_eq!(result.verdict, Verdict::Passed);
}

#[test]
#[allow(clippy::print_stderr)]
fn online_yanked_check_finds_yanked_xml_rs() {
    // Needs the crates.io sparse index; the default test run has no network.
    if std::env::var_os("PORTCULLIS_NETWORK_TESTS").is_none() {
        eprintln!("skipped: set PORTCULLIS_NETWORK_TESTS=1 to ask the crates.io index");
        return;
    }
    let mut settings = common::settings();
    settings.offline = false;
    let result = common::run_with(&corpus("bat-0.18.0"), advisories_only(), &["sca"], settings);
    let report = gate(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let yanked: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.rule_id == "yanked")
        .map(|f| f.message.as_str())
        .collect();
    // cargo-audit 0.22.2 reported xml-rs 0.8.3 as yanked on this lockfile.
    assert!(
        yanked.contains(&"xml-rs 0.8.3 was yanked from crates.io"),
        "{yanked:?}"
    );
}

#[test]
fn a_waiver_by_package_silences_one_advisory() {
    let policy = common::policy(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n[gates.sca]\nyanked = false\n\
         [[waiver]]\nrule = \"RUSTSEC-2021-0003\"\npackage = \"smallvec@1.6.0\"\n\
         reason = \"test: waived\"\nexpires = 2027-01-01\n",
    );
    let result = sca_only(&case("006"), policy);
    let report = gate(&result);
    assert_eq!(report.findings.len(), 1);
    assert!(report.findings[0].is_suppressed());
    assert_eq!(report.outcome, Outcome::Passed);
    assert_eq!(result.verdict, Verdict::Passed);
}

#[test]
fn case_001_git_source_points_at_its_own_entry() {
    // The git fork of itoa shares name and version with the registry one;
    // a source finding must point at the fork's `source` line (14).
    let policy = common::policy(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"sca\"]\n[gates.sca]\nyanked = false\n\
         [gates.sca.sources]\nallow-registry = [\"crates.io\"]\n",
    );
    let result = sca_only(&case("001"), policy);
    let report = gate(&result);
    let sources: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.rule_id == "source-not-allowed")
        .collect();
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert!(
        sources[0].message.contains("itoa 1.0.11"),
        "{}",
        sources[0].message
    );
    assert_eq!(
        sources[0].location.as_ref().and_then(|l| l.start_line),
        Some(14)
    );
}
