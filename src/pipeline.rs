//! Runs the policy's stages in order, the gates of one stage concurrently,
//! applies waivers and thresholds, and turns gate outcomes into the verdict.
//!
//! This is the only place that decides whether a finding fails the run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::finding::{Finding, Severity, Suppression, sort_findings};
use crate::gate::{Artifact, Gate, GateContext, GateError, GateOutput, RunSettings};
use crate::policy::{Policy, WaiverStatus};
use crate::process::ProcessRunner;
use crate::repo::RepoView;

/// How one gate ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// Looked and found nothing to report.
    Passed,
    /// Findings at or above the threshold.
    Failed,
    /// Findings below the threshold, or warnings that reduce coverage.
    Warned,
    /// The gate could not run, or not completely.
    Errored,
    /// Not run: the policy skipped it, or fail-fast stopped the pipeline.
    Skipped { reason: String },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Warned => "warned",
            Outcome::Errored => "errored",
            Outcome::Skipped { .. } => "skipped",
        }
    }
}

/// The one answer of a run, and its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
    Errored,
}

impl Verdict {
    /// 0 passed, 1 failed on findings, 3 a gate errored (2 is a usage or
    /// configuration error, decided before any gate runs).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::Failed => 1,
            Verdict::Errored => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Errored => "errored",
        }
    }
}

/// Everything one gate produced, judged by the policy.
#[derive(Debug, Clone)]
pub struct GateReport {
    pub id: String,
    pub description: String,
    pub docs: String,
    pub stage: String,
    pub outcome: Outcome,
    /// Sorted; suppressed findings stay in the list with their reason.
    pub findings: Vec<Finding>,
    pub threshold: Severity,
    pub stats: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
    /// Each error with its help line.
    pub errors: Vec<String>,
    /// Whether this gate's errors fail the run (the policy's `allow-errors`).
    pub errors_fail: bool,
    pub artifacts: Vec<Artifact>,
    pub duration: Duration,
}

impl GateReport {
    /// Findings that count against the verdict.
    pub fn failing(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| !f.is_suppressed() && f.severity >= self.threshold)
    }

    pub fn suppressed_count(&self) -> usize {
        self.findings.iter().filter(|f| f.is_suppressed()).count()
    }
}

/// Something about the policy itself worth telling: an expired waiver, a
/// waiver that matched nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyNote {
    pub kind: PolicyNoteKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyNoteKind {
    ExpiredWaiver,
    UnusedWaiver,
}

/// The whole result of a run: what every report is a pure function of.
#[derive(Debug, Clone)]
pub struct PipelineResult {
    pub tool_version: String,
    pub root: String,
    pub policy_origin: String,
    /// When the run started, as RFC 3339.
    pub started_at: String,
    pub duration: Duration,
    pub gates: Vec<GateReport>,
    pub policy_notes: Vec<PolicyNote>,
    pub verdict: Verdict,
}

impl PipelineResult {
    /// A sentence saying why the verdict is what it is.
    pub fn reason(&self) -> String {
        let count = |outcome: &str| {
            self.gates
                .iter()
                .filter(|g| g.outcome.label() == outcome)
                .map(|g| g.id.as_str())
                .collect::<Vec<_>>()
        };
        match self.verdict {
            Verdict::Passed => {
                let ran = self
                    .gates
                    .iter()
                    .filter(|g| !matches!(g.outcome, Outcome::Skipped { .. }))
                    .count();
                format!("passed: {ran} gate(s) ran and none failed")
            }
            Verdict::Failed => {
                let failed = count("failed");
                let findings: usize = self.gates.iter().map(|g| g.failing().count()).sum();
                format!(
                    "failed: {findings} finding(s) at or above the threshold in {}",
                    failed.join(", ")
                )
            }
            Verdict::Errored => {
                let errored: Vec<_> = self
                    .gates
                    .iter()
                    .filter(|g| g.outcome == Outcome::Errored && g.errors_fail)
                    .map(|g| g.id.as_str())
                    .collect();
                format!(
                    "errored: {} could not run completely, so the result is incomplete",
                    errored.join(", ")
                )
            }
        }
    }
}

/// Told as gates start and finish, for live progress lines.
pub trait Progress: Send + Sync {
    fn gate_started(&self, _gate: &str) {}
    fn gate_finished(&self, _report: &GateReport) {}
}

/// A [`Progress`] that says nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {}

/// One run of the policy over one repository.
#[derive(Debug)]
pub struct Pipeline {
    policy: Arc<Policy>,
    settings: Arc<RunSettings>,
    repo: RepoView,
    runner: ProcessRunner,
    /// Whether only some gates run (a gate subcommand, `--only`); waivers
    /// that matched nothing are then not reported, since their gate may not
    /// have run.
    partial: bool,
}

impl Pipeline {
    pub fn new(policy: Policy, settings: RunSettings, repo: RepoView) -> Self {
        Pipeline {
            policy: Arc::new(policy),
            settings: Arc::new(settings),
            repo,
            runner: ProcessRunner::default(),
            partial: false,
        }
    }

    pub fn with_runner(mut self, runner: ProcessRunner) -> Self {
        self.runner = runner;
        self
    }

    pub fn partial(mut self, partial: bool) -> Self {
        self.partial = partial;
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Runs every stage and returns the judged result.
    pub async fn run(&self, progress: Arc<dyn Progress>) -> PipelineResult {
        let started = Instant::now();
        let started_at = jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string());
        let ctx = GateContext {
            repo: self.repo.clone(),
            runner: self.runner.clone(),
            policy: Arc::clone(&self.policy),
            settings: Arc::clone(&self.settings),
        };

        let mut reports = Vec::new();
        let mut stop_reason: Option<String> = None;
        // Baselines and waivers apply to each gate as it finishes, so that its
        // live line, and a fail-fast decision, already see the judged outcome.
        let mut ledger = WaiverLedger::new(self.policy.waivers.len());
        for stage in &self.policy.stages {
            let mut pending = JoinSet::new();
            for id in &stage.gates {
                let Some(gate) = crate::gates::by_id(id) else {
                    // The policy was validated against the registry.
                    continue;
                };
                if let Some(reason) = self.skip_reason(id, stop_reason.as_deref()) {
                    reports.push(self.skipped(gate, &stage.name, reason));
                    continue;
                }
                progress.gate_started(id);
                let ctx = ctx.clone();
                pending.spawn(async move {
                    let start = Instant::now();
                    let result = gate.run(&ctx).await;
                    (gate, result, start.elapsed())
                });
            }

            let mut stage_reports = Vec::new();
            while let Some(joined) = pending.join_next().await {
                let mut report = match joined {
                    Ok((gate, result, elapsed)) => self.judge(gate, &stage.name, result, elapsed),
                    Err(err) => self.crashed(&stage.name, err),
                };
                self.apply_waivers(&mut report, &mut ledger);
                progress.gate_finished(&report);
                stage_reports.push(report);
            }
            stage_reports.sort_by_key(|r| stage.gates.iter().position(|g| *g == r.id));

            let stage_ok = stage_reports.iter().all(|r| {
                matches!(
                    r.outcome,
                    Outcome::Passed | Outcome::Warned | Outcome::Skipped { .. }
                )
            });
            reports.extend(stage_reports);
            if self.policy.fail_fast && !stage_ok && stop_reason.is_none() {
                stop_reason = Some(format!("fail-fast: stage `{}` did not pass", stage.name));
            }
        }

        let policy_notes = self.waiver_notes(&ledger);
        let verdict = verdict_of(&reports);
        PipelineResult {
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            root: self.repo.root().display().to_string(),
            policy_origin: self.policy.origin.clone(),
            started_at,
            duration: started.elapsed(),
            gates: reports,
            policy_notes,
            verdict,
        }
    }

    fn skip_reason(&self, id: &str, stop_reason: Option<&str>) -> Option<String> {
        if let Some(reason) = self.policy.skip.get(id) {
            return Some(format!("skipped by policy: {reason}"));
        }
        stop_reason.map(str::to_owned)
    }

    fn skipped(&self, gate: &dyn Gate, stage: &str, reason: String) -> GateReport {
        GateReport {
            id: gate.id().to_owned(),
            description: gate.description().to_owned(),
            docs: gate.docs().to_owned(),
            stage: stage.to_owned(),
            outcome: Outcome::Skipped { reason },
            findings: Vec::new(),
            threshold: self.policy.threshold_for(gate.id()),
            stats: BTreeMap::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
            errors_fail: self.policy.errors_fail(gate.id()),
            artifacts: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    /// A gate task that panicked: our bug, reported as an errored gate so
    /// the run still fails closed.
    fn crashed(&self, stage: &str, err: tokio::task::JoinError) -> GateReport {
        GateReport {
            id: "unknown".to_owned(),
            description: String::new(),
            docs: String::new(),
            stage: stage.to_owned(),
            outcome: Outcome::Errored,
            findings: Vec::new(),
            threshold: self.policy.threshold,
            stats: BTreeMap::new(),
            warnings: Vec::new(),
            errors: vec![format!(
                "a gate crashed: {err}\n  help: this is a bug in Portcullis; please report it with the command you ran"
            )],
            errors_fail: true,
            artifacts: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    /// Turns what a gate returned into its outcome under the policy.
    fn judge(
        &self,
        gate: &dyn Gate,
        stage: &str,
        result: Result<GateOutput, GateError>,
        duration: Duration,
    ) -> GateReport {
        let id = gate.id();
        let output = result.unwrap_or_else(|err| GateOutput {
            errors: vec![err],
            ..GateOutput::default()
        });
        let GateOutput {
            mut findings,
            artifacts,
            stats,
            warnings,
            errors,
        } = output;
        sort_findings(&mut findings);
        for error in &errors {
            tracing::warn!(gate = id, "{}", error.describe());
        }

        let mut report = GateReport {
            id: id.to_owned(),
            description: gate.description().to_owned(),
            docs: gate.docs().to_owned(),
            stage: stage.to_owned(),
            outcome: Outcome::Passed,
            findings,
            threshold: self.policy.threshold_for(id),
            stats,
            warnings,
            errors: errors.iter().map(GateError::describe).collect(),
            errors_fail: self.policy.errors_fail(id),
            artifacts,
            duration,
        };
        report.outcome = outcome_of(&report);
        report
    }

    /// Marks findings already in the baseline or covered by an active waiver,
    /// then re-judges each gate.
    /// Returns notes on expired and unused waivers.
    /// Suppresses the findings of one gate that the baseline or an active
    /// waiver covers, notes in `ledger` which waivers were used, and judges
    /// the gate's outcome again.
    fn apply_waivers(&self, report: &mut GateReport, ledger: &mut WaiverLedger) {
        let today = self.settings.today;
        for finding in report.findings.iter_mut().filter(|f| !f.is_suppressed()) {
            let in_baseline = self
                .settings
                .baseline
                .as_ref()
                .is_some_and(|baseline| baseline.contains(finding.fingerprint.as_str()));
            if in_baseline {
                finding.suppression = Some(Suppression::Baseline);
                continue;
            }
            let Some(waiver) = self.policy.waivers.iter().find(|w| w.matches(finding)) else {
                continue;
            };
            match waiver.status(today) {
                WaiverStatus::Active => {
                    ledger.used[waiver.index] = true;
                    finding.suppression = Some(Suppression::Waiver {
                        index: waiver.index,
                        reason: waiver.reason.clone(),
                        expires: waiver.expires.to_string(),
                    });
                }
                WaiverStatus::Expired => ledger.expired_hit[waiver.index] = true,
            }
        }
        if !matches!(report.outcome, Outcome::Skipped { .. }) {
            report.outcome = outcome_of(report);
        }
    }

    /// The notes about waivers once every gate ran: expired ones, and ones
    /// that matched nothing in a full run.
    fn waiver_notes(&self, ledger: &WaiverLedger) -> Vec<PolicyNote> {
        let today = self.settings.today;
        let mut notes = Vec::new();
        for waiver in &self.policy.waivers {
            if waiver.status(today) == WaiverStatus::Expired {
                let matched = if ledger.expired_hit[waiver.index] {
                    "; the findings it covered count again"
                } else {
                    ""
                };
                notes.push(PolicyNote {
                    kind: PolicyNoteKind::ExpiredWaiver,
                    message: format!(
                        "the waiver for `{}` (policy line {}) expired on {} and no longer applies{matched}",
                        waiver.rule, waiver.line, waiver.expires
                    ),
                });
            } else if !ledger.used[waiver.index] && !self.partial {
                notes.push(PolicyNote {
                    kind: PolicyNoteKind::UnusedWaiver,
                    message: format!(
                        "the waiver for `{}` (policy line {}) matched no finding; remove it if the problem is gone",
                        waiver.rule, waiver.line
                    ),
                });
            }
        }
        for note in &notes {
            tracing::warn!("{}", note.message);
        }
        notes
    }
}

/// Which waivers matched something during a run, by waiver index.
#[derive(Debug)]
struct WaiverLedger {
    used: Vec<bool>,
    expired_hit: Vec<bool>,
}

impl WaiverLedger {
    fn new(waivers: usize) -> Self {
        WaiverLedger {
            used: vec![false; waivers],
            expired_hit: vec![false; waivers],
        }
    }
}

fn outcome_of(report: &GateReport) -> Outcome {
    if !report.errors.is_empty() {
        Outcome::Errored
    } else if report.failing().next().is_some() {
        Outcome::Failed
    } else if report.findings.iter().any(|f| !f.is_suppressed()) || !report.warnings.is_empty() {
        Outcome::Warned
    } else {
        Outcome::Passed
    }
}

/// Errors outrank findings: a result we could not complete must not read as
/// a plain failure someone can fix by addressing the findings shown.
fn verdict_of(reports: &[GateReport]) -> Verdict {
    let errored = reports
        .iter()
        .any(|r| r.outcome == Outcome::Errored && r.errors_fail);
    let failed = reports.iter().any(|r| r.outcome == Outcome::Failed);
    if errored {
        Verdict::Errored
    } else if failed {
        Verdict::Failed
    } else {
        Verdict::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Location;

    fn report(findings: Vec<Finding>, errors: Vec<String>) -> GateReport {
        let mut report = GateReport {
            id: "sca".to_owned(),
            description: String::new(),
            docs: String::new(),
            stage: "s".to_owned(),
            outcome: Outcome::Passed,
            findings,
            threshold: Severity::Medium,
            stats: BTreeMap::new(),
            warnings: Vec::new(),
            errors,
            errors_fail: true,
            artifacts: Vec::new(),
            duration: Duration::ZERO,
        };
        report.outcome = outcome_of(&report);
        report
    }

    fn finding(severity: Severity) -> Finding {
        Finding::builder("sca", "R", severity, "m")
            .location(Location::file("Cargo.lock"))
            .build()
    }

    #[test]
    fn outcome_follows_threshold() {
        assert_eq!(report(vec![], vec![]).outcome, Outcome::Passed);
        assert_eq!(
            report(vec![finding(Severity::Low)], vec![]).outcome,
            Outcome::Warned
        );
        assert_eq!(
            report(vec![finding(Severity::High)], vec![]).outcome,
            Outcome::Failed
        );
    }

    #[test]
    fn errors_win_over_findings_and_fail_closed() {
        let errored = report(vec![finding(Severity::High)], vec!["boom".to_owned()]);
        assert_eq!(errored.outcome, Outcome::Errored);
        assert_eq!(verdict_of(std::slice::from_ref(&errored)), Verdict::Errored);

        let mut allowed = errored;
        allowed.errors_fail = false;
        assert_eq!(verdict_of(&[allowed]), Verdict::Passed);
    }

    #[test]
    fn exit_codes_are_distinct() {
        assert_eq!(Verdict::Passed.exit_code(), 0);
        assert_eq!(Verdict::Failed.exit_code(), 1);
        assert_eq!(Verdict::Errored.exit_code(), 3);
    }
}
