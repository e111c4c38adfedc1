//! `results.sarif`: SARIF 2.1.0 (OASIS Static Analysis Results Interchange
//! Format, <https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>).
//!
//! One run per gate (§3.14), each with its own driver name and
//! `automationDetails.id` (§3.17) so code scanning keeps the gates apart;
//! rules with help text (§3.49); results with `partialFingerprints` (§3.27.17)
//! carrying our stable fingerprint, and `suppressions` (§3.27.23) for waived
//! or inline-suppressed findings, which code scanning then shows as
//! dismissed rather than dropping them silently.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::finding::{Finding, Severity, Suppression};
use crate::pipeline::{GateReport, Outcome, PipelineResult};

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/portcullis-dev/portcullis";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool<'a>,
    automation_details: AutomationDetails,
    invocations: Vec<Invocation>,
    results: Vec<SarifResult<'a>>,
}

#[derive(Debug, Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: String,
    version: &'a str,
    semantic_version: &'a str,
    information_uri: &'static str,
    rules: Vec<Rule<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    short_description: Message,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help_uri: Option<&'a str>,
    default_configuration: Configuration,
    properties: RuleProperties,
}

#[derive(Debug, Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Debug, Serialize)]
struct RuleProperties {
    tags: Vec<String>,
    /// GitHub code scanning ranks security alerts by this number (0–10).
    #[serde(rename = "security-severity")]
    security_severity: String,
}

#[derive(Debug, Serialize)]
struct Message {
    text: String,
}

#[derive(Debug, Serialize)]
struct AutomationDetails {
    id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_execution_notifications: Vec<Notification>,
}

#[derive(Debug, Serialize)]
struct Notification {
    level: &'static str,
    message: Message,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: &'static str,
    message: Message,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<SarifLocation<'a>>,
    partial_fingerprints: BTreeMap<&'static str, &'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suppressions: Vec<SarifSuppression>,
    properties: ResultProperties,
}

#[derive(Debug, Serialize)]
struct ResultProperties {
    severity: Severity,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation<'a> {
    physical_location: PhysicalLocation<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation<'a> {
    artifact_location: ArtifactLocation<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation<'a> {
    uri: &'a str,
    uri_base_id: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_column: Option<u32>,
}

#[derive(Debug, Serialize)]
struct SarifSuppression {
    /// §3.35.2: `inSource` for a marker in the code, `external` for a
    /// waiver or baseline kept elsewhere.
    kind: &'static str,
    justification: String,
}

/// Writes the SARIF log.
pub fn write(result: &PipelineResult, out: &mut dyn Write) -> io::Result<()> {
    let runs = result
        .gates
        .iter()
        .map(|gate| run_for(gate, &result.tool_version))
        .collect();
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs,
    };
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

fn run_for<'a>(gate: &'a GateReport, version: &'a str) -> Run<'a> {
    // Rules in first-seen order over the sorted findings, so the output is
    // deterministic.
    let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules = Vec::new();
    for finding in &gate.findings {
        if rule_index.contains_key(finding.rule_id.as_str()) {
            continue;
        }
        rule_index.insert(&finding.rule_id, rules.len());
        rules.push(rule_for(finding));
    }

    let results = gate
        .findings
        .iter()
        .map(|finding| SarifResult {
            rule_id: &finding.rule_id,
            rule_index: rule_index[finding.rule_id.as_str()],
            level: level(finding.severity),
            message: Message {
                text: finding.message.clone(),
            },
            locations: finding
                .location
                .iter()
                .map(|location| SarifLocation {
                    physical_location: PhysicalLocation {
                        artifact_location: ArtifactLocation {
                            uri: &location.path,
                            uri_base_id: "%SRCROOT%",
                        },
                        region: location.start_line.map(|start_line| Region {
                            start_line,
                            start_column: location.start_column,
                            end_line: location.end_line,
                            end_column: location.end_column,
                        }),
                    },
                })
                .collect(),
            partial_fingerprints: BTreeMap::from([("portcullis/v1", finding.fingerprint.as_str())]),
            suppressions: finding.suppression.iter().map(suppression).collect(),
            properties: ResultProperties {
                severity: finding.severity,
            },
        })
        .collect();

    let notifications: Vec<Notification> = gate
        .errors
        .iter()
        .map(|error| Notification {
            level: "error",
            message: Message {
                text: error.clone(),
            },
        })
        .chain(gate.warnings.iter().map(|warning| Notification {
            level: "warning",
            message: Message {
                text: warning.clone(),
            },
        }))
        .chain(match &gate.outcome {
            Outcome::Skipped { reason } => Some(Notification {
                level: "note",
                message: Message {
                    text: reason.clone(),
                },
            }),
            _ => None,
        })
        .collect();

    Run {
        tool: Tool {
            driver: Driver {
                name: format!("Portcullis {}", gate.id),
                version,
                semantic_version: version,
                information_uri: INFORMATION_URI,
                rules,
            },
        },
        automation_details: AutomationDetails {
            id: format!("portcullis/{}/", gate.id),
        },
        invocations: vec![Invocation {
            execution_successful: gate.errors.is_empty(),
            tool_execution_notifications: notifications,
        }],
        results,
    }
}

fn rule_for(finding: &Finding) -> Rule<'_> {
    let help = finding
        .help
        .as_ref()
        .map(|help| Message { text: help.clone() });
    Rule {
        id: &finding.rule_id,
        short_description: Message {
            text: first_line(&finding.message),
        },
        help,
        help_uri: finding.references.first().map(String::as_str),
        default_configuration: Configuration {
            level: level(finding.severity),
        },
        properties: RuleProperties {
            tags: vec!["security".to_owned(), finding.gate.clone()],
            security_severity: security_severity(finding.severity).to_owned(),
        },
    }
}

/// §3.27.10: error, warning or note.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// A representative score inside each band GitHub maps to critical (≥ 9.0),
/// high (7.0–8.9), medium (4.0–6.9) and low (0.1–3.9).
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Info => "0.0",
    }
}

fn suppression(suppression: &Suppression) -> SarifSuppression {
    match suppression {
        Suppression::Inline { reason } => SarifSuppression {
            kind: "inSource",
            justification: reason.clone(),
        },
        Suppression::Waiver {
            reason, expires, ..
        } => SarifSuppression {
            kind: "external",
            justification: format!("{reason} (waiver expires {expires})"),
        },
        Suppression::Baseline => SarifSuppression {
            kind: "external",
            justification: "present in the baseline".to_owned(),
        },
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}
