//! `report.json`: the full result of a run in a stable, versioned schema.
//!
//! The structs here are frozen: a field is never renamed or removed within a
//! `schema_version`; new optional fields may appear. The same file read back
//! is a baseline (`--baseline report.json`): [`read_baseline`] takes the
//! fingerprints out of it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::millis;
use crate::finding::{Finding, Location, Severity, Suppression};
use crate::pipeline::{Outcome, PipelineResult, PolicyNote};

/// The schema version written in every report.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
struct Report<'a> {
    schema_version: u32,
    tool: Tool<'a>,
    root: &'a str,
    policy: &'a str,
    started_at: &'a str,
    duration_ms: u64,
    verdict: &'static str,
    exit_code: u8,
    reason: String,
    summary: Summary,
    gates: Vec<Gate<'a>>,
    policy_notes: &'a [PolicyNote],
}

#[derive(Debug, Serialize)]
struct Tool<'a> {
    name: &'static str,
    version: &'a str,
}

#[derive(Debug, Serialize)]
struct Summary {
    findings: usize,
    failing: usize,
    suppressed: usize,
    by_severity: BTreeMap<Severity, usize>,
}

#[derive(Debug, Serialize)]
struct Gate<'a> {
    id: &'a str,
    stage: &'a str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    skip_reason: Option<&'a str>,
    threshold: Severity,
    duration_ms: u64,
    stats: &'a BTreeMap<String, u64>,
    warnings: &'a [String],
    errors: &'a [String],
    errors_fail: bool,
    artifacts: Vec<&'a str>,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Debug, Serialize)]
struct JsonFinding<'a> {
    rule_id: &'a str,
    severity: Severity,
    /// Whether it counts against the verdict: unsuppressed and at or above
    /// the gate's threshold.
    failing: bool,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    references: &'a [String],
    fingerprint: &'a str,
    /// Gate-specific data; its `kind` names the shape.
    payload: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppression: Option<&'a Suppression>,
}

/// Writes the report as pretty JSON with a trailing newline.
pub fn write(result: &PipelineResult, out: &mut dyn Write) -> io::Result<()> {
    let mut by_severity = BTreeMap::new();
    let mut summary = Summary {
        findings: 0,
        failing: 0,
        suppressed: 0,
        by_severity: BTreeMap::new(),
    };
    let gates = result
        .gates
        .iter()
        .map(|gate| {
            let findings = gate
                .findings
                .iter()
                .map(|finding| {
                    let failing = !finding.is_suppressed() && finding.severity >= gate.threshold;
                    summary.findings += 1;
                    summary.failing += usize::from(failing);
                    summary.suppressed += usize::from(finding.is_suppressed());
                    *by_severity.entry(finding.severity).or_insert(0) += 1;
                    to_json_finding(finding, failing)
                })
                .collect();
            Gate {
                id: &gate.id,
                stage: &gate.stage,
                outcome: gate.outcome.label(),
                skip_reason: match &gate.outcome {
                    Outcome::Skipped { reason } => Some(reason),
                    _ => None,
                },
                threshold: gate.threshold,
                duration_ms: millis(gate.duration),
                stats: &gate.stats,
                warnings: &gate.warnings,
                errors: &gate.errors,
                errors_fail: gate.errors_fail,
                artifacts: gate.artifacts.iter().map(|a| a.name.as_str()).collect(),
                findings,
            }
        })
        .collect();
    summary.by_severity = by_severity;

    let report = Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "portcullis",
            version: &result.tool_version,
        },
        root: &result.root,
        policy: &result.policy_origin,
        started_at: &result.started_at,
        duration_ms: millis(result.duration),
        verdict: result.verdict.label(),
        exit_code: result.verdict.exit_code(),
        reason: result.reason(),
        summary,
        gates,
        policy_notes: &result.policy_notes,
    };
    serde_json::to_writer_pretty(&mut *out, &report)?;
    writeln!(out)
}

fn to_json_finding(finding: &Finding, failing: bool) -> JsonFinding<'_> {
    JsonFinding {
        rule_id: &finding.rule_id,
        severity: finding.severity,
        failing,
        message: &finding.message,
        location: finding.location.as_ref(),
        help: finding.help.as_deref(),
        references: &finding.references,
        fingerprint: finding.fingerprint.as_str(),
        payload: serde_json::to_value(&finding.payload).unwrap_or(serde_json::Value::Null),
        suppression: finding.suppression.as_ref(),
    }
}

/// Why a baseline could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("not a Portcullis report.json: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "report schema version {0} is not supported; this release reads version {SCHEMA_VERSION}"
    )]
    Version(u32),
}

#[derive(Debug, Deserialize)]
struct BaselineReport {
    schema_version: u32,
    gates: Vec<BaselineGate>,
}

#[derive(Debug, Deserialize)]
struct BaselineGate {
    findings: Vec<BaselineFinding>,
}

#[derive(Debug, Deserialize)]
struct BaselineFinding {
    fingerprint: String,
}

/// The fingerprints of every finding in a previous `report.json`.
pub fn read_baseline(text: &str) -> Result<BTreeSet<String>, BaselineError> {
    let report: BaselineReport = serde_json::from_str(text)?;
    if report.schema_version != SCHEMA_VERSION {
        return Err(BaselineError::Version(report.schema_version));
    }
    Ok(report
        .gates
        .into_iter()
        .flat_map(|gate| gate.findings.into_iter().map(|f| f.fingerprint))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_rejects_other_documents() {
        assert!(read_baseline("{}").is_err());
        assert!(read_baseline("not json").is_err());
        assert!(matches!(
            read_baseline(r#"{"schema_version": 9, "gates": []}"#),
            Err(BaselineError::Version(9))
        ));
        let fingerprints = read_baseline(
            r#"{"schema_version": 1, "gates": [{"findings": [{"fingerprint": "ab"}]}]}"#,
        )
        .expect("valid");
        assert!(fingerprints.contains("ab"));
    }

    proptest::proptest! {
        #[test]
        fn baseline_parser_never_panics(text in "\\PC{0,300}") {
            let _ = read_baseline(&text);
        }
    }
}
