//! Every report writer over one fixed pipeline result: snapshots of each
//! format, SARIF validated against the published 2.1.0 schema, and the
//! properties every writer must keep (deterministic, pure, escaped).

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis::finding::{Finding, Location, PackagePayload, Payload, Severity, Suppression};
use portcullis::pipeline::{
    GateReport, Outcome, PipelineResult, PolicyNote, PolicyNoteKind, Verdict,
};
use portcullis::report::{self, Format, TerminalStyle};

use crate::common;

fn gate(id: &str, outcome: Outcome, findings: Vec<Finding>) -> GateReport {
    GateReport {
        id: id.to_owned(),
        description: format!("the {id} gate"),
        docs: format!("docs/gates/{id}.md"),
        stage: "static".to_owned(),
        outcome,
        findings,
        threshold: Severity::Low,
        stats: BTreeMap::from([("files".to_owned(), 3)]),
        warnings: Vec::new(),
        errors: Vec::new(),
        errors_fail: true,
        artifacts: Vec::new(),
        duration: Duration::from_millis(1234),
    }
}

/// A result with one of everything: a failing vulnerability, a waived one,
/// an info finding below the threshold, an errored gate, a skipped gate, an
/// expired waiver, and text that needs escaping in every format.
fn sample_result() -> PipelineResult {
    let vulnerable = Finding::builder(
        "sca",
        "RUSTSEC-2021-0003",
        Severity::High,
        "Buffer overflow in SmallVec::insert_many",
    )
    .location(Location::line("Cargo.lock", 120))
    .help("upgrade smallvec to >= 1.6.1")
    .reference("https://rustsec.org/advisories/RUSTSEC-2021-0003")
    .evidence("smallvec 1.6.0")
    .payload(Payload::Package(PackagePayload {
        package: "smallvec".to_owned(),
        version: "1.6.0".to_owned(),
        kind: "vulnerability".to_owned(),
        advisory_id: Some("RUSTSEC-2021-0003".to_owned()),
        aliases: vec!["CVE-2021-25900".to_owned()],
        cvss: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".to_owned()),
        cvss_score: Some(9.8),
        patched: vec![">=1.6.1".to_owned()],
        dependency_path: vec!["smallvec 1.6.0".to_owned(), "app 0.1.0".to_owned()],
    }))
    .build();
    let mut waived = Finding::builder(
        "sca",
        "RUSTSEC-2020-0071",
        Severity::Medium,
        "time: segfault",
    )
    .location(Location::line("Cargo.lock", 300))
    .evidence("time 0.1.43")
    .build();
    waived.suppression = Some(Suppression::Waiver {
        index: 0,
        reason: "not reachable from our code".to_owned(),
        expires: "2027-01-31".to_owned(),
    });
    let lint = Finding::builder(
        "lint",
        "clippy::needless_return",
        Severity::Info,
        "unneeded `return` statement | with <markup> & \"quotes\"\nsecond line",
    )
    .location(Location::line("src/lib.rs", 7).with_columns(5, 17))
    .build();

    let mut lint_gate = gate("lint", Outcome::Failed, vec![lint]);
    lint_gate.threshold = Severity::Info;
    let mut errored = gate("sbom", Outcome::Errored, Vec::new());
    errored.errors =
        vec!["could not parse `Cargo.lock` at line 3: truncated\n  help: regenerate it".to_owned()];
    let mut sca = gate("sca", Outcome::Failed, vec![vulnerable, waived]);
    sca.warnings = vec!["the advisory database is 40 days old".to_owned()];

    PipelineResult {
        tool_version: "0.0.0-test".to_owned(),
        root: "/repo".to_owned(),
        policy_origin: "<built-in default>".to_owned(),
        started_at: "2026-12-01T00:00:00Z".to_owned(),
        duration: Duration::from_millis(4321),
        gates: vec![
            lint_gate,
            sca,
            errored,
            gate(
                "test",
                Outcome::Skipped {
                    reason: "skipped by policy: run by the test job".to_owned(),
                },
                Vec::new(),
            ),
        ],
        policy_notes: vec![PolicyNote {
            kind: PolicyNoteKind::ExpiredWaiver,
            message:
                "the waiver for `X` (policy line 9) expired on 2026-11-30 and no longer applies"
                    .to_owned(),
        }],
        verdict: Verdict::Errored,
    }
}

fn render(format: Format, result: &PipelineResult) -> String {
    let mut bytes = Vec::new();
    report::write(format, result, TerminalStyle::default(), &mut bytes).expect("writing to memory");
    String::from_utf8(bytes).expect("reports are UTF-8")
}

#[test]
fn terminal_snapshot() {
    insta::assert_snapshot!(render(Format::Terminal, &sample_result()));
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!(render(Format::Json, &sample_result()));
}

#[test]
fn sarif_snapshot() {
    insta::assert_snapshot!(render(Format::Sarif, &sample_result()));
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!(render(Format::Markdown, &sample_result()));
}

#[test]
fn junit_snapshot() {
    insta::assert_snapshot!(render(Format::Junit, &sample_result()));
}

#[test]
fn github_snapshot() {
    insta::assert_snapshot!(render(Format::Github, &sample_result()));
}

#[test]
fn writers_are_deterministic() {
    for format in Format::ALL {
        assert_eq!(
            render(format, &sample_result()),
            render(format, &sample_result()),
            "{format:?}"
        );
    }
}

#[test]
fn sarif_validates_against_the_published_schema() {
    let schema_path = common::shared_path("schemas/sarif-schema-2.1.0.json");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&schema_path).expect("SARIF schema in ../shared"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let sarif: serde_json::Value =
        serde_json::from_str(&render(Format::Sarif, &sample_result())).expect("SARIF is JSON");
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "SARIF schema errors: {errors:#?}");

    let runs = sarif["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 4, "one run per gate");
    let result = &runs[1]["results"][0];
    assert_eq!(result["ruleId"], "RUSTSEC-2021-0003");
    assert!(result["partialFingerprints"]["portcullis/v1"].is_string());
    assert_eq!(runs[1]["results"][1]["suppressions"][0]["kind"], "external");
}

#[test]
fn junit_is_well_formed_xml() {
    let xml = render(Format::Junit, &sample_result());
    // Balanced elements and no raw markup from messages.
    assert_eq!(
        xml.matches("<testsuite ").count(),
        xml.matches("</testsuite>").count()
    );
    assert!(!xml.contains("<markup>"));
    assert!(xml.contains("&lt;markup&gt;"));
}

#[test]
fn json_report_reads_back_as_a_baseline() {
    let json = render(Format::Json, &sample_result());
    let fingerprints = report::json::read_baseline(&json).expect("own report is a baseline");
    let result = sample_result();
    for gate in &result.gates {
        for finding in &gate.findings {
            assert!(fingerprints.contains(finding.fingerprint.as_str()));
        }
    }
}
