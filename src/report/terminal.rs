//! The terminal summary: a table of gates (outcome, findings, time), the
//! findings that fail the run, errors and warnings, and the verdict with its
//! reason. Colour only when the caller asks for it.

use std::io::{self, Write};

use super::{TerminalStyle, human_duration};
use crate::finding::{Finding, Severity, Suppression};
use crate::pipeline::{GateReport, Outcome, PipelineResult, Verdict};

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const MAGENTA: &str = "\x1b[35m";
const DIM: &str = "\x1b[2m";

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }
}

/// Writes the summary.
pub fn write(result: &PipelineResult, style: TerminalStyle, out: &mut dyn Write) -> io::Result<()> {
    let painter = Painter { color: style.color };

    writeln!(
        out,
        "{:<10} {:<9} {:>9} {:>10}  note",
        "gate", "outcome", "findings", "time"
    )?;
    for gate in &result.gates {
        let outcome = gate.outcome.label();
        let colored = painter.paint(outcome_style(&gate.outcome), &format!("{outcome:<9}"));
        let findings = format!("{}/{}", gate.failing().count(), gate.findings.len());
        let note = match &gate.outcome {
            Outcome::Skipped { reason } => reason.clone(),
            _ => [quiet_note(gate), stats_note(gate)]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        };
        writeln!(
            out,
            "{:<10} {colored} {:>9} {:>10}  {}",
            gate.id,
            findings,
            human_duration(gate.duration),
            note
        )?;
    }
    writeln!(out, "{}", painter.paint(DIM, "findings: failing/total"))?;

    for gate in &result.gates {
        let shown: Vec<&Finding> = gate
            .findings
            .iter()
            .filter(|f| style.verbose || (!f.is_suppressed() && f.severity >= gate.threshold))
            .collect();
        let has_notes = !gate.errors.is_empty() || !gate.warnings.is_empty();
        if shown.is_empty() && !has_notes {
            continue;
        }
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            painter.paint(BOLD, &format!("── {} ──", gate.id))
        )?;
        for error in &gate.errors {
            writeln!(out, "{} {error}", painter.paint(MAGENTA, "error:"))?;
        }
        for warning in &gate.warnings {
            writeln!(out, "{} {warning}", painter.paint(YELLOW, "warning:"))?;
        }
        for finding in shown {
            write_finding(out, &painter, finding)?;
        }
        let hidden = gate.findings.len().saturating_sub(gate.failing().count());
        if !style.verbose && hidden > 0 {
            writeln!(
                out,
                "{}",
                painter.paint(
                    DIM,
                    &format!(
                        "({hidden} below the threshold or suppressed; --all-findings lists them)"
                    )
                )
            )?;
        }
    }

    if !result.policy_notes.is_empty() {
        writeln!(out)?;
        for note in &result.policy_notes {
            writeln!(out, "{} {}", painter.paint(YELLOW, "policy:"), note.message)?;
        }
    }

    writeln!(out)?;
    let verdict_style = match result.verdict {
        Verdict::Passed => GREEN,
        Verdict::Failed => RED,
        Verdict::Errored => MAGENTA,
    };
    writeln!(
        out,
        "{} {}",
        painter.paint(&format!("{BOLD}{verdict_style}"), "verdict:"),
        result.reason()
    )?;
    Ok(())
}

fn write_finding(out: &mut dyn Write, painter: &Painter, finding: &Finding) -> io::Result<()> {
    let severity = painter.paint(
        severity_style(finding.severity),
        &format!("{:<8}", finding.severity.as_str()),
    );
    let location = finding
        .location
        .as_ref()
        .map_or_else(String::new, |l| format!("{l}: "));
    let suppressed = if finding.is_suppressed() {
        " (suppressed)"
    } else {
        ""
    };
    writeln!(
        out,
        "{severity} {location}{} [{}]{suppressed}",
        first_line(&finding.message),
        finding.rule_id
    )
}

/// Why findings that do not fail the gate do not: how many are waived in
/// the policy, allowed inline, already in the baseline, or below the
/// threshold. Empty when every finding counts.
fn quiet_note(gate: &GateReport) -> String {
    let (mut waived, mut inline, mut baseline) = (0, 0, 0);
    for finding in &gate.findings {
        match &finding.suppression {
            Some(Suppression::Waiver { .. }) => waived += 1,
            Some(Suppression::Inline { .. }) => inline += 1,
            Some(Suppression::Baseline) => baseline += 1,
            None => {}
        }
    }
    let below = gate.findings.len() - gate.failing().count() - waived - inline - baseline;
    [
        (waived, "waived"),
        (inline, "allowed inline"),
        (baseline, "in the baseline"),
        (below, "below the threshold"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, why)| format!("{count} {why}"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn stats_note(gate: &GateReport) -> String {
    gate.stats
        .iter()
        .filter(|(_, value)| **value > 0)
        .take(3)
        .map(|(key, value)| format!("{}={value}", key.replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn outcome_style(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => GREEN,
        Outcome::Failed => RED,
        Outcome::Warned => YELLOW,
        Outcome::Errored => MAGENTA,
        Outcome::Skipped { .. } => DIM,
    }
}

fn severity_style(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => RED,
        Severity::Medium => YELLOW,
        Severity::Low | Severity::Info => DIM,
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn finding(severity: Severity, suppression: Option<Suppression>) -> Finding {
        let mut finding = Finding::builder("sast", "rule", severity, "message").build();
        finding.suppression = suppression;
        finding
    }

    #[test]
    fn the_note_says_why_findings_do_not_fail_the_gate() {
        let waiver = Suppression::Waiver {
            index: 0,
            reason: "reviewed".to_owned(),
            expires: "2027-01-31".to_owned(),
        };
        let inline = Suppression::Inline {
            reason: "test fixture".to_owned(),
        };
        let mut gate = GateReport {
            id: "sast".to_owned(),
            description: String::new(),
            docs: String::new(),
            stage: "static".to_owned(),
            outcome: Outcome::Passed,
            findings: vec![
                finding(Severity::High, Some(waiver.clone())),
                finding(Severity::High, Some(waiver)),
                finding(Severity::Medium, Some(inline)),
                finding(Severity::High, Some(Suppression::Baseline)),
                finding(Severity::Low, None),
            ],
            threshold: Severity::Medium,
            stats: BTreeMap::from([("files".to_owned(), 12)]),
            warnings: Vec::new(),
            errors: Vec::new(),
            errors_fail: true,
            artifacts: Vec::new(),
            duration: Duration::ZERO,
        };
        assert_eq!(
            quiet_note(&gate),
            "2 waived, 1 allowed inline, 1 in the baseline, 1 below the threshold"
        );
        // A finding that fails is not explained away.
        gate.findings.push(finding(Severity::High, None));
        assert_eq!(
            quiet_note(&gate),
            "2 waived, 1 allowed inline, 1 in the baseline, 1 below the threshold"
        );
        gate.findings.clear();
        assert_eq!(quiet_note(&gate), "");
    }
}
