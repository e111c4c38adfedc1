//! The one type every gate emits and every report reads.
//!
//! A [`Finding`] is built through [`FindingBuilder`], so a finding without a
//! gate, rule, severity, message or fingerprint cannot exist. The fingerprint
//! is computed from the rule, the path and normalised evidence — never the
//! line number, never a raw secret — so it survives unrelated edits and can
//! key waivers, baselines and SARIF `partialFingerprints`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How serious a finding is. Whether it fails the run is the policy's
/// decision (see [`crate::policy::Policy::threshold_for`]), made in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Maps a CVSS base score (v3 or v4) to the qualitative rating of the
    /// CVSS v3.1 specification, section 5 ("Qualitative Severity Rating
    /// Scale"): 0.0 none, 0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9 high,
    /// 9.0–10.0 critical.
    pub fn from_cvss_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Info
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown severity `{s}`: expected one of info, low, medium, high, critical")
            })
    }
}

/// Where a finding is: a path relative to the repository root (always with
/// `/` separators) and, where known, a 1-based line and column range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Location {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_column: Option<u32>,
}

impl Location {
    /// A whole file.
    pub fn file(path: impl Into<String>) -> Self {
        Location {
            path: normalise_path(&path.into()),
            start_line: None,
            start_column: None,
            end_line: None,
            end_column: None,
        }
    }

    /// One line of a file.
    pub fn line(path: impl Into<String>, line: u32) -> Self {
        Location::file(path).with_lines(line, line)
    }

    pub fn with_lines(mut self, start: u32, end: u32) -> Self {
        self.start_line = Some(start);
        self.end_line = Some(end.max(start));
        self
    }

    pub fn with_columns(mut self, start: u32, end: u32) -> Self {
        self.start_column = Some(start);
        self.end_column = Some(end);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(line) = self.start_line {
            write!(f, ":{line}")?;
            if let Some(column) = self.start_column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// Turns `\` into `/` and strips a leading `./`, so the same file has one
/// spelling in every report and fingerprint.
fn normalise_path(path: &str) -> String {
    let path = path.replace('\\', "/");
    path.strip_prefix("./").unwrap_or(&path).to_owned()
}

/// A stable identity for a finding: 32 hex digits of SHA-256 over the gate,
/// rule, path and normalised evidence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn compute(gate: &str, rule_id: &str, path: &str, evidence: &str) -> Self {
        let mut hasher = Sha256::new();
        // Fields are separated by a byte that cannot occur in any of them, so
        // ("ab", "c") and ("a", "bc") never collide.
        for part in [gate, rule_id, path, &normalise_evidence(evidence)] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        let digest = hasher.finalize();
        Fingerprint(hex::encode(&digest[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Collapses runs of white space so re-indenting a line does not change the
/// fingerprint of what is on it.
fn normalise_evidence(evidence: &str) -> String {
    evidence.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What each gate adds to a finding beyond the common fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Payload {
    #[default]
    None,
    /// A vulnerable, unmaintained, unsound or yanked package.
    Package(PackagePayload),
    /// A licence or source policy violation.
    PackagePolicy(PackagePolicyPayload),
    /// A secret: only its redacted form ever leaves the gate.
    Secret(SecretPayload),
    /// A compiler, linter or test diagnostic.
    Diagnostic(DiagnosticPayload),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackagePayload {
    pub package: String,
    pub version: String,
    /// The advisory's kind: vulnerability, unmaintained, unsound, notice, yanked.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advisory_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cvss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cvss_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patched: Vec<String>,
    /// From the vulnerable crate up to a workspace member, e.g.
    /// `["smallvec 1.6.0", "local 0.1.0", "app 0.1.0"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependency_path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackagePolicyPayload {
    pub package: String,
    pub version: String,
    /// What was judged: the licence expression or the source URL.
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretPayload {
    /// The first few characters and an ellipsis; never the whole secret.
    pub redacted: String,
    /// A hash of the secret, so the same secret can be recognised without
    /// storing it.
    pub secret_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticPayload {
    /// The tool that produced it: rustfmt, clippy, rustc, cargo-test, nextest.
    pub tool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Why a finding does not count against the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Suppression {
    /// A waiver in the policy; `index` is its position in the policy file.
    Waiver {
        index: usize,
        reason: String,
        expires: String,
    },
    /// An inline marker in the source with a reason.
    Inline { reason: String },
    /// Already present in the baseline given with `--baseline`.
    Baseline,
}

/// One problem a gate found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub gate: String,
    pub rule_id: String,
    pub severity: Severity,
    pub message: String,
    pub location: Option<Location>,
    pub help: Option<String>,
    pub references: Vec<String>,
    pub fingerprint: Fingerprint,
    pub payload: Payload,
    pub suppression: Option<Suppression>,
}

impl Finding {
    /// Starts a finding with the fields every finding must have.
    pub fn builder(
        gate: impl Into<String>,
        rule_id: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> FindingBuilder {
        FindingBuilder {
            gate: gate.into(),
            rule_id: rule_id.into(),
            severity,
            message: message.into(),
            location: None,
            help: None,
            references: Vec::new(),
            evidence: None,
            payload: Payload::None,
            suppression: None,
        }
    }

    pub fn is_suppressed(&self) -> bool {
        self.suppression.is_some()
    }

    /// The order every report uses: by path, line, rule, then fingerprint,
    /// so concurrent gates still give byte-identical reports.
    pub fn sort_key(&self) -> impl Ord + '_ {
        let (path, line, column) = match &self.location {
            Some(location) => (
                location.path.as_str(),
                location.start_line.unwrap_or(0),
                location.start_column.unwrap_or(0),
            ),
            None => ("", 0, 0),
        };
        (
            &self.gate,
            path,
            line,
            column,
            &self.rule_id,
            &self.fingerprint,
        )
    }
}

/// Sorts findings into the one deterministic order reports rely on.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()).then(Ordering::Equal));
}

/// Builds a [`Finding`]; see [`Finding::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct FindingBuilder {
    gate: String,
    rule_id: String,
    severity: Severity,
    message: String,
    location: Option<Location>,
    help: Option<String>,
    references: Vec<String>,
    evidence: Option<String>,
    payload: Payload,
    suppression: Option<Suppression>,
}

impl FindingBuilder {
    pub fn location(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn reference(mut self, url: impl Into<String>) -> Self {
        self.references.push(url.into());
        self
    }

    pub fn references(mut self, urls: impl IntoIterator<Item = String>) -> Self {
        self.references.extend(urls);
        self
    }

    /// What identifies this finding within its file, without line numbers:
    /// the package and version, the matched code, a hash of a secret. When
    /// not given, the message stands in, so keep messages free of line
    /// numbers.
    pub fn evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = Some(evidence.into());
        self
    }

    pub fn payload(mut self, payload: Payload) -> Self {
        self.payload = payload;
        self
    }

    /// Marks the finding suppressed by an inline marker (the gate's call)
    /// or a baseline. Waivers are applied by the pipeline, not by gates.
    pub fn suppressed(mut self, suppression: Suppression) -> Self {
        self.suppression = Some(suppression);
        self
    }

    pub fn build(self) -> Finding {
        let path = self.location.as_ref().map_or("", |l| l.path.as_str());
        let evidence = self.evidence.as_deref().unwrap_or(&self.message);
        let fingerprint = Fingerprint::compute(&self.gate, &self.rule_id, path, evidence);
        Finding {
            gate: self.gate,
            rule_id: self.rule_id,
            severity: self.severity,
            message: self.message,
            location: self.location,
            help: self.help,
            references: self.references,
            fingerprint,
            payload: self.payload,
            suppression: self.suppression,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_parses_case_insensitively_and_orders() {
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("sever".parse::<Severity>().is_err());
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Info < Severity::Low);
    }

    #[test]
    fn cvss_scores_map_to_the_v31_rating_scale() {
        assert_eq!(Severity::from_cvss_score(0.0), Severity::Info);
        assert_eq!(Severity::from_cvss_score(3.9), Severity::Low);
        assert_eq!(Severity::from_cvss_score(4.0), Severity::Medium);
        assert_eq!(Severity::from_cvss_score(8.9), Severity::High);
        assert_eq!(Severity::from_cvss_score(9.8), Severity::Critical);
    }

    #[test]
    fn fingerprint_ignores_line_and_whitespace_but_not_path() {
        let at = |line, evidence: &str, path: &str| {
            Finding::builder("sast", "rule", Severity::Low, "msg")
                .location(Location::line(path, line))
                .evidence(evidence)
                .build()
                .fingerprint
        };
        assert_eq!(at(3, "a  b", "src/x.rs"), at(40, "a b", "src/x.rs"));
        assert_ne!(at(3, "a b", "src/x.rs"), at(3, "a b", "src/y.rs"));
        assert_eq!(at(3, "a b", "./src/x.rs"), at(3, "a b", "src/x.rs"));
    }

    #[test]
    fn fingerprint_fields_do_not_run_together() {
        assert_ne!(
            Fingerprint::compute("g", "ab", "c", ""),
            Fingerprint::compute("g", "a", "bc", "")
        );
    }
}
