//! The sast gate end to end: the fixture crate, the shared cases and corpus,
//! bad input, and this repository itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use portcullis::finding::Finding;
use portcullis::pipeline::{GateReport, Outcome, PipelineResult};

use crate::common;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A policy running only the sast gate, with extra `[gates.sast]` lines.
fn sast_policy(options: &str) -> portcullis::policy::Policy {
    common::policy(&format!(
        "version = 1\n[[stage]]\nname = \"static\"\ngates = [\"sast\"]\n[gates.sast]\n{options}\n"
    ))
}

fn sast_report(result: &PipelineResult) -> &GateReport {
    result
        .gates
        .iter()
        .find(|gate| gate.id == "sast")
        .expect("the sast gate ran")
}

/// `(rule, path, line)` of every finding.
fn hits(report: &GateReport) -> BTreeSet<(String, String, u32)> {
    report
        .findings
        .iter()
        .map(|finding| {
            let location = finding
                .location
                .as_ref()
                .expect("sast findings have a location");
            (
                finding.rule_id.clone(),
                location.path.clone(),
                location.start_line.expect("a line"),
            )
        })
        .collect()
}

fn describe(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {}",
                f.rule_id,
                f.location
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                f.suppression.is_some()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn this_repository_passes_its_own_sast_gate() {
    let root = repo_root();
    let policy = portcullis::policy::Policy::load(&root.join("policies/portcullis.toml"))
        .unwrap_or_else(|err| panic!("{err}"));
    let result = common::run(&root, policy, &["sast"]);
    let report = sast_report(&result);
    let failing: Vec<Finding> = report.failing().cloned().collect();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(failing.is_empty(), "{}", describe(&failing));
    assert_eq!(
        report.stats.get("files_with_parse_errors"),
        Some(&0),
        "{:?}",
        report.warnings
    );
    assert!(report.stats.get("files_scanned").copied().unwrap_or(0) > 10);
    let _ = Path::new("");
}

/// `sast-expect: rule-a, rule-b` comments in the fixture crate: the findings
/// that must start on that line; `(suppressed)` after the ids marks them
/// suppressed inline.
fn expected_in_fixture(root: &Path) -> BTreeSet<(String, String, u32, bool)> {
    let mut expected = BTreeSet::new();
    let walk = portcullis::repo::RepoView::new(root).expect("fixture exists");
    let options = portcullis::repo::WalkOptions {
        hidden: true,
        ..Default::default()
    };
    for path in walk.walk(&options) {
        let path = path.expect("walkable");
        let relative = walk.relative(&path);
        let text = std::fs::read_to_string(&path).expect("readable");
        for (index, line) in text.lines().enumerate() {
            let Some((_, rest)) = line.split_once("sast-expect:") else {
                continue;
            };
            let suppressed = rest.contains("(suppressed)");
            let ids = rest.split(['(', '/']).next().unwrap_or_default();
            for id in ids.split(',').map(str::trim).filter(|id| !id.is_empty()) {
                expected.insert((
                    id.to_owned(),
                    relative.clone(),
                    index as u32 + 1,
                    suppressed,
                ));
            }
        }
    }
    expected
}

#[test]
fn fixture_crate_is_fully_detected_at_exact_lines() {
    let root = repo_root().join("tests/fixtures/sast");
    let result = common::run(&root, sast_policy(""), &["sast"]);
    let report = sast_report(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let found: BTreeSet<(String, String, u32, bool)> = report
        .findings
        .iter()
        .map(|finding| {
            let location = finding.location.as_ref().expect("location");
            (
                finding.rule_id.clone(),
                location.path.clone(),
                location.start_line.expect("line"),
                finding.is_suppressed(),
            )
        })
        .collect();
    let expected = expected_in_fixture(&root);
    let missing: Vec<_> = expected.difference(&found).collect();
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    assert_eq!(
        report.findings.len(),
        found.len(),
        "one finding per rule and line"
    );

    // Every rule of the default pack has its target in the fixture.
    let rules = portcullis::gates::sast::rules::load_rules(true, &[], &[]).expect("default pack");
    let covered: BTreeSet<&str> = expected.iter().map(|(id, ..)| id.as_str()).collect();
    let uncovered: Vec<&str> = rules
        .iter()
        .map(|rule| rule.id.as_str())
        .filter(|id| !covered.contains(id))
        .collect();
    assert!(
        uncovered.is_empty(),
        "rules without a fixture target: {uncovered:?}"
    );
    // One target per rule, plus the second `unsafe` block (around the
    // transmute) and the two suppression cases.
    assert_eq!(expected.len(), rules.len() + 3);

    // One suppression with a reason, counted; the marker without one warned.
    assert_eq!(report.stats.get("suppressed_inline"), Some(&1));
    assert_eq!(report.suppressed_count(), 1);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("src/suppressed.rs:10") && w.contains("has no reason")),
        "{:?}",
        report.warnings
    );
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.stats.get("files_with_parse_errors"), Some(&0));
}

#[test]
fn findings_carry_rule_metadata_and_exact_spans() {
    let root = repo_root().join("tests/fixtures/sast");
    let result = common::run(&root, sast_policy(""), &["sast"]);
    let report = sast_report(&result);
    let finding = report
        .findings
        .iter()
        .find(|f| f.rule_id == "rust-shell-command-injection")
        .expect("shell injection found");
    assert_eq!(finding.gate, "sast");
    assert_eq!(finding.severity, portcullis::finding::Severity::High);
    let location = finding.location.as_ref().expect("location");
    assert_eq!(location.path, "src/injection.rs");
    assert_eq!(
        (location.start_line, location.start_column),
        (Some(17), Some(13))
    );
    assert_eq!(
        (location.end_line, location.end_column),
        (Some(17), Some(77))
    );
    assert!(
        finding
            .help
            .as_deref()
            .unwrap_or("")
            .contains("without a shell")
    );
    assert_eq!(
        finding.references[..2],
        [
            "https://cwe.mitre.org/data/definitions/78.html".to_owned(),
            "https://owasp.org/Top10/A03_2021-Injection/".to_owned()
        ]
    );
}

/// Case 019: a call imported through a nested `use` group is found by its
/// short name (line 7) as well as its full path (line 14); a URI from the
/// environment (line 21) is not.
#[test]
fn case_019_nested_use_group_call_is_found() {
    let root = common::shared_path("cases/019-sast-nested-use-group-path");
    let result = common::run(&root, sast_policy(""), &["sast"]);
    let report = sast_report(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let lines: Vec<u32> = hits(report)
        .into_iter()
        .filter(|(rule, ..)| rule == "rust-hardcoded-mongodb-uri-no-password")
        .map(|(_, path, line)| {
            assert_eq!(path, "src/db.rs");
            line
        })
        .collect();
    assert_eq!(lines, [7, 14]);
}

/// Case 020: valid Rust that semgrep's parser rejected parses cleanly here,
/// and the shell sink in each file is found exactly once at its line.
#[test]
fn case_020_valid_rust_parses_and_sinks_are_found() {
    let root = common::shared_path("cases/020-sast-parse-valid-rust-syntax");
    let result = common::run(&root, sast_policy(""), &["sast"]);
    let report = sast_report(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.stats.get("files_scanned"), Some(&4));
    assert_eq!(
        report.stats.get("files_with_parse_errors"),
        Some(&0),
        "{:?}",
        report.warnings
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let expected: BTreeSet<(String, String, u32)> = [
        ("src/cfg_field_pattern.rs", 19),
        ("src/range_from_pattern.rs", 12),
        ("src/maybe_sized_impl.rs", 8),
        ("src/raw_ref.rs", 14),
    ]
    .into_iter()
    .map(|(path, line)| {
        (
            "rust-shell-command-injection".to_owned(),
            path.to_owned(),
            line,
        )
    })
    .collect();
    assert_eq!(hits(report), expected);
}

#[test]
fn a_file_that_does_not_parse_is_scanned_and_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("src")).expect("mkdir");
    std::fs::write(
        dir.path().join("src/broken.rs"),
        "fn broken( {\n    let x = ;\n}\n\npub fn digest(d: &[u8]) -> md5::Digest {\n    md5::compute(d)\n}\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("src/latin1.rs"),
        b"// caf\xe9\nfn f() { md5::compute(b\"\"); }\n",
    )
    .expect("write");
    let result = common::run(dir.path(), sast_policy(""), &["sast"]);
    let report = sast_report(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.stats.get("files_with_parse_errors"), Some(&1));
    assert_eq!(report.stats.get("files_not_utf8"), Some(&1));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("src/broken.rs:1")),
        "{:?}",
        report.warnings
    );
    let lines: Vec<(String, u32)> = hits(report)
        .into_iter()
        .map(|(_, path, line)| (path, line))
        .collect();
    assert_eq!(
        lines,
        [
            ("src/broken.rs".to_owned(), 6),
            ("src/latin1.rs".to_owned(), 2)
        ]
    );
}

#[test]
fn a_malformed_rule_file_errors_the_gate_naming_file_and_rule() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    std::fs::write(
        rules.join("team.yml"),
        "id: team-ok\nlanguage: rust\nrule: {pattern: foo()}\n---\nid: team-broken\nlanguage: rust\nrule:\n  pattern: $X.unwrap()\n  notakey: 1\n",
    )
    .expect("write");
    let options = format!("rules = [{:?}]", rules.display().to_string());
    let result = common::run(dir.path(), sast_policy(&options), &["sast"]);
    let report = sast_report(&result);
    assert_eq!(report.outcome, Outcome::Errored);
    let error = report.errors.join("\n");
    assert!(error.contains("team.yml"), "{error}");
    assert!(error.contains("line 5"), "{error}");
    assert!(error.contains("team-broken"), "{error}");
    assert!(error.contains("notakey"), "{error}");
}

#[test]
fn policy_rules_add_to_or_replace_the_default_pack() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("lib.rs"),
        "pub fn f(x: Option<u8>) -> u8 { md5::compute(b\"\"); x.unwrap() }\n",
    )
    .expect("write");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    std::fs::write(
        rules.join("team.yml"),
        "id: team-no-unwrap\nlanguage: rust\nseverity: warning\nmessage: no unwrap\nrule: {pattern: $X.unwrap()}\n",
    )
    .expect("write");
    let rules_option = format!("rules = [{:?}]", rules.display().to_string());

    let added = common::run(dir.path(), sast_policy(&rules_option), &["sast"]);
    let ids: BTreeSet<String> = hits(sast_report(&added))
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from(["rust-weak-hash-md5".to_owned(), "team-no-unwrap".to_owned()])
    );

    let replaced = common::run(
        dir.path(),
        sast_policy(&format!("{rules_option}\ndefault-rules = false")),
        &["sast"],
    );
    let ids: BTreeSet<String> = hits(sast_report(&replaced))
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    assert_eq!(ids, BTreeSet::from(["team-no-unwrap".to_owned()]));

    let excluded = common::run(
        dir.path(),
        sast_policy("exclude = [\"lib.rs\"]\nmax-file-size = 10"),
        &["sast"],
    );
    let report = sast_report(&excluded);
    assert!(report.findings.is_empty());
    assert_eq!(report.stats.get("files_excluded"), Some(&1));

    let too_large = common::run(dir.path(), sast_policy("max-file-size = 10"), &["sast"]);
    let report = sast_report(&too_large);
    assert!(report.findings.is_empty());
    assert_eq!(report.stats.get("files_too_large"), Some(&1));
    assert!(
        report.warnings.iter().any(|w| w.contains("lib.rs")),
        "{:?}",
        report.warnings
    );
}

/// The shared corpus file with planted patterns and near-misses for the
/// five benchmark rules (bench/rules/semgrep-five.yml, the same five as the
/// semgrep benchmark config). semgrep 1.185 reports the same set except the
/// `transmute::<u32, f32>` turbofish call (line 15) and the `md5::compute`
/// inside `format!` (line 39), which it misses.
#[test]
fn rust_positive_corpus_matches_expected_with_benchmark_rules() {
    let root = common::shared_path("corpus/sast/rust-positive");
    let policy = portcullis::policy::Policy::load(&repo_root().join("bench/sast-policy.toml"))
        .unwrap_or_else(|err| panic!("{err}"));
    let result = common::run(&root, policy, &["sast"]);
    let report = sast_report(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let found: Vec<(String, u32)> = hits(report)
        .into_iter()
        .map(|(rule, path, line)| {
            assert_eq!(path, "src/lib.rs");
            (rule, line)
        })
        .collect();
    let mut expected: Vec<(String, u32)> = [
        ("rust-unsafe-block", 7),
        ("rust-unsafe-block", 11),
        ("rust-unsafe-block", 15),
        ("rust-mem-transmute", 11),
        ("rust-mem-transmute", 15),
        ("rust-command-shell-c", 19),
        ("rust-command-shell-c", 23),
        ("rust-tls-verification-disabled", 27),
        ("rust-tls-verification-disabled", 35),
        ("rust-weak-hash", 39),
        ("rust-weak-hash", 44),
    ]
    .into_iter()
    .map(|(rule, line)| (rule.to_owned(), line))
    .collect();
    expected.sort();
    assert_eq!(found, expected);
}
