//! Loading and validating the policy: stages, thresholds, per-gate options
//! and waivers.
//!
//! A policy file is parsed into raw types that keep source spans, then
//! validated into [`Policy`], the type the engine uses. Every error names the
//! file, line and column, and says what to do. Unknown keys are errors, not
//! silently ignored: a typo in a security policy must never loosen it.

mod options;
mod waiver;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::finding::Severity;

pub use options::GateOptions;
pub use waiver::{Waiver, WaiverStatus};

/// The policy used when a repository has none of its own.
pub const DEFAULT_POLICY: &str = include_str!("../../policies/portcullis.toml");

/// Where a repository may keep its policy, looked up in this order when
/// `--policy` is not given.
pub const POLICY_LOCATIONS: &[&str] = &[
    "portcullis.toml",
    ".portcullis.toml",
    ".github/portcullis.toml",
    "policies/portcullis.toml",
];

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file it came from, or `<built-in default>`.
    pub origin: String,
    /// The folder relative paths in the policy (rule packs) resolve against;
    /// `None` for the built-in default.
    pub base_dir: Option<PathBuf>,
    pub stages: Vec<Stage>,
    /// Findings at or above this severity fail the run.
    pub threshold: Severity,
    /// Per-gate overrides of `threshold`.
    pub thresholds: BTreeMap<String, Severity>,
    /// Stop after the first stage whose verdict is not passed.
    pub fail_fast: bool,
    /// Gates whose errors only warn instead of failing the run.
    pub allow_errors: BTreeSet<String>,
    /// Gates skipped on purpose, with the reason the policy gives.
    pub skip: BTreeMap<String, String>,
    pub gates: GateOptions,
    pub waivers: Vec<Waiver>,
}

/// Gates that run together; stages run one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub gates: Vec<String>,
}

impl Policy {
    /// The built-in default policy.
    pub fn builtin() -> Policy {
        Policy::from_toml(DEFAULT_POLICY, "<built-in default>", None)
            .expect("the built-in policy is validated by the test suite")
    }

    /// Loads a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        Policy::load_with_overrides(path, &[])
    }

    /// Loads a policy file and applies `--set` overrides.
    pub fn load_with_overrides(path: &Path, overrides: &[String]) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|err| PolicyError {
            origin: path.display().to_string(),
            line: None,
            column: None,
            message: format!("could not read the policy: {err}"),
            help: Some("check the path given to --policy".to_owned()),
        })?;
        let base_dir = path.parent().map(Path::to_path_buf);
        Policy::from_toml_with_overrides(&text, &path.display().to_string(), base_dir, overrides)
    }

    /// Finds the policy for a repository: an explicit file, else the first of
    /// [`POLICY_LOCATIONS`] that exists under `root`, else the built-in one;
    /// then applies `--set` overrides.
    pub fn discover(
        root: &Path,
        explicit: Option<&Path>,
        overrides: &[String],
    ) -> Result<Policy, PolicyError> {
        if let Some(path) = explicit {
            return Policy::load_with_overrides(path, overrides);
        }
        for candidate in POLICY_LOCATIONS {
            let path = root.join(candidate);
            if path.is_file() {
                return Policy::load_with_overrides(&path, overrides);
            }
        }
        Policy::from_toml_with_overrides(DEFAULT_POLICY, "<built-in default>", None, overrides)
    }

    /// Applies `--set KEY=VALUE` overrides (KEY a dotted path such as
    /// `gates.secrets.mode` or `pipeline.threshold`) to policy text, then
    /// validates the result. The text is validated on its own first, so an
    /// error in the file still names its line.
    pub fn from_toml_with_overrides(
        text: &str,
        origin: &str,
        base_dir: Option<PathBuf>,
        overrides: &[String],
    ) -> Result<Policy, PolicyError> {
        let policy = Policy::from_toml(text, origin, base_dir.clone())?;
        if overrides.is_empty() {
            return Ok(policy);
        }
        let override_error = |message: String| PolicyError {
            origin: origin.to_owned(),
            line: None,
            column: None,
            message,
            help: Some("write overrides as `--set gates.<gate>.<key>=<value>`".to_owned()),
        };
        let mut table: toml::Table = toml::from_str(text)
            .map_err(|err| override_error(format!("could not re-read the policy: {err}")))?;
        for assignment in overrides {
            let Some((key, value)) = assignment.split_once('=') else {
                return Err(override_error(format!("`--set {assignment}` has no `=`")));
            };
            set_dotted(&mut table, key.trim(), parse_override_value(value.trim()))
                .map_err(|message| override_error(format!("`--set {assignment}`: {message}")))?;
        }
        let text = toml::to_string(&table)
            .map_err(|err| override_error(format!("could not apply the overrides: {err}")))?;
        let mut policy =
            Policy::from_toml(&text, &format!("{origin} with --set overrides"), base_dir)?;
        policy.origin = origin.to_owned();
        Ok(policy)
    }

    /// Parses and validates policy text. `origin` names it in errors.
    pub fn from_toml(
        text: &str,
        origin: &str,
        base_dir: Option<PathBuf>,
    ) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|err| {
            let (line, column) = err.span().map(|span| line_column(text, span.start)).unzip();
            PolicyError {
                origin: origin.to_owned(),
                line,
                column,
                message: err.message().trim().to_owned(),
                help: Some("see docs/policy.md for every key the policy accepts".to_owned()),
            }
        })?;
        let at = |span: std::ops::Range<usize>, message: String, help: Option<String>| {
            let (line, column) = line_column(text, span.start);
            PolicyError {
                origin: origin.to_owned(),
                line: Some(line),
                column: Some(column),
                message,
                help,
            }
        };

        if raw.version.get_ref() != &1 {
            return Err(at(
                raw.version.span(),
                format!("unsupported policy version {}", raw.version.get_ref()),
                Some("this release reads `version = 1`".to_owned()),
            ));
        }

        let known = crate::gates::ids();
        let check_gate = |gate: &Spanned<String>| -> Result<String, PolicyError> {
            if known.contains(&gate.get_ref().as_str()) {
                Ok(gate.get_ref().clone())
            } else {
                Err(at(
                    gate.span(),
                    format!("unknown gate `{}`", gate.get_ref()),
                    Some(format!("known gates: {}", known.join(", "))),
                ))
            }
        };

        let mut stages = Vec::new();
        let mut seen = BTreeSet::new();
        for stage in &raw.stage {
            let mut gates = Vec::new();
            for gate in &stage.gates {
                let id = check_gate(gate)?;
                if !seen.insert(id.clone()) {
                    return Err(at(
                        gate.span(),
                        format!("gate `{id}` appears in more than one place in the stages"),
                        Some("list each gate once".to_owned()),
                    ));
                }
                gates.push(id);
            }
            stages.push(Stage {
                name: stage.name.clone(),
                gates,
            });
        }
        if stages.is_empty() {
            return Err(PolicyError {
                origin: origin.to_owned(),
                line: None,
                column: None,
                message: "the policy names no stages".to_owned(),
                help: Some("add at least one `[[stage]]` with `name` and `gates`".to_owned()),
            });
        }

        let pipeline = raw.pipeline;
        let mut thresholds = BTreeMap::new();
        for (gate, severity) in &pipeline.thresholds {
            check_gate(gate)?;
            thresholds.insert(gate.get_ref().clone(), *severity);
        }
        let mut allow_errors = BTreeSet::new();
        for gate in &pipeline.allow_errors {
            allow_errors.insert(check_gate(gate)?);
        }
        let mut skip = BTreeMap::new();
        for (gate, reason) in &pipeline.skip {
            check_gate(gate)?;
            if reason.trim().is_empty() {
                return Err(at(
                    gate.span(),
                    format!("skipping gate `{}` needs a reason", gate.get_ref()),
                    Some("write why it is skipped, e.g. `dast = \"no staging server\"`".to_owned()),
                ));
            }
            skip.insert(gate.get_ref().clone(), reason.clone());
        }

        let mut waivers = Vec::new();
        for (index, raw_waiver) in raw.waiver.into_iter().enumerate() {
            waivers.push(Waiver::validate(index, raw_waiver, &at)?);
        }

        Ok(Policy {
            origin: origin.to_owned(),
            base_dir,
            stages,
            threshold: pipeline.threshold,
            thresholds,
            fail_fast: pipeline.fail_fast,
            allow_errors,
            skip,
            gates: raw.gates,
            waivers,
        })
    }

    /// The severity at or above which this gate's findings fail the run.
    pub fn threshold_for(&self, gate: &str) -> Severity {
        self.thresholds.get(gate).copied().unwrap_or(self.threshold)
    }

    /// Whether an error in this gate fails the run (the default) or warns.
    pub fn errors_fail(&self, gate: &str) -> bool {
        !self.allow_errors.contains(gate)
    }

    /// Resolves a path named in the policy (a rule pack) against the
    /// policy's folder, or the repository root for the built-in policy.
    pub fn resolve(&self, root: &Path, path: &Path) -> PathBuf {
        match &self.base_dir {
            Some(dir) => dir.join(path),
            None => root.join(path),
        }
    }

    /// Keeps only the named gates in the stages (for `cargo xtask sca` and
    /// `--only`), and drops `skipped` ones from them.
    pub fn restrict(&mut self, only: Option<&[String]>, skipped: &[String]) {
        for stage in &mut self.stages {
            stage.gates.retain(|gate| {
                only.is_none_or(|only| only.contains(gate)) && !skipped.contains(gate)
            });
        }
        self.stages.retain(|stage| !stage.gates.is_empty());
    }

    /// Every gate the stages name, in order.
    pub fn gate_ids(&self) -> impl Iterator<Item = &str> {
        self.stages
            .iter()
            .flat_map(|stage| stage.gates.iter().map(String::as_str))
    }
}

/// A policy that could not be read or is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub origin: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid policy `{}`", self.origin)?;
        if let Some(line) = self.line {
            write!(f, " at {line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Reads an override's value as TOML (`true`, `3`, `["a"]`, `"x"`), and
/// anything that is not valid TOML as a plain string.
fn parse_override_value(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()))
}

fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("`{key}` is not a dotted key"));
    }
    let (last, parents) = parts.split_last().ok_or_else(|| "empty key".to_owned())?;
    let mut current = table;
    for part in parents {
        let entry = current
            .entry((*part).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` in `{key}` is not a table"))?;
    }
    current.insert((*last).to_owned(), value);
    Ok(())
}

/// The 1-based line and column of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Spanned<i64>,
    #[serde(default)]
    pipeline: RawPipeline,
    #[serde(default)]
    stage: Vec<RawStage>,
    #[serde(default)]
    gates: GateOptions,
    #[serde(default)]
    waiver: Vec<waiver::RawWaiver>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPipeline {
    #[serde(default = "default_threshold")]
    threshold: Severity,
    #[serde(default)]
    thresholds: BTreeMap<Spanned<String>, Severity>,
    #[serde(default)]
    fail_fast: bool,
    #[serde(default)]
    allow_errors: Vec<Spanned<String>>,
    #[serde(default)]
    skip: BTreeMap<Spanned<String>, String>,
}

impl Default for RawPipeline {
    fn default() -> Self {
        RawPipeline {
            threshold: default_threshold(),
            thresholds: BTreeMap::new(),
            fail_fast: false,
            allow_errors: Vec::new(),
            skip: BTreeMap::new(),
        }
    }
}

fn default_threshold() -> Severity {
    Severity::Low
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: String,
    gates: Vec<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::from_toml(text, "policy.toml", None)
    }

    #[test]
    fn builtin_policy_is_valid() {
        let policy = Policy::builtin();
        assert!(policy.gate_ids().any(|g| g == "sca"));
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = parse("version = 1\n[pipeline]\nthreshhold = \"low\"\n").expect_err("typo");
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("threshhold"), "{err}");
    }

    #[test]
    fn unknown_gate_is_an_error_at_its_line() {
        let err = parse("version = 1\n[[stage]]\nname = \"a\"\ngates = [\"sca\", \"sacs\"]\n")
            .expect_err("unknown gate");
        assert_eq!(err.line, Some(4));
        assert!(err.to_string().contains("unknown gate `sacs`"), "{err}");
    }

    #[test]
    fn bad_severity_is_an_error() {
        let err = parse("version = 1\n[pipeline]\nthreshold = \"severe\"\n[[stage]]\nname = \"a\"\ngates = [\"sca\"]\n")
            .expect_err("bad severity");
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn wrong_version_is_rejected() {
        let err = parse("version = 2\n").expect_err("version");
        assert!(err.message.contains("unsupported policy version 2"));
    }

    #[test]
    fn no_stages_is_rejected() {
        assert!(parse("version = 1\n").is_err());
    }

    #[test]
    fn restrict_keeps_only_named_gates() {
        let mut policy = Policy::builtin();
        policy.restrict(Some(&["sca".to_owned()]), &[]);
        assert_eq!(policy.gate_ids().collect::<Vec<_>>(), ["sca"]);
    }

    #[test]
    fn overrides_set_dotted_keys_and_are_validated() {
        let policy = Policy::from_toml_with_overrides(
            DEFAULT_POLICY,
            "default",
            None,
            &[
                "pipeline.threshold=high".to_owned(),
                "pipeline.fail-fast=true".to_owned(),
            ],
        )
        .expect("valid overrides");
        assert_eq!(policy.threshold, Severity::High);
        assert!(policy.fail_fast);

        let err = Policy::from_toml_with_overrides(
            DEFAULT_POLICY,
            "default",
            None,
            &["pipeline.treshold=high".to_owned()],
        )
        .expect_err("typo in override");
        assert!(err.message.contains("treshold"), "{err}");
        assert!(
            Policy::from_toml_with_overrides(DEFAULT_POLICY, "d", None, &["novalue".to_owned()])
                .is_err()
        );
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn arbitrary_tomlish_text_never_panics(text in "(version = 1\n)?(\\[\\[?[a-z.]{1,10}\\]\\]?\n)?([a-z-]{1,8} = (\"[a-z]{0,5}\"|[0-9]{1,3}|\\[\\]|2027-0[1-9]-1[0-9])\n){0,6}") {
            let _ = parse(&text);
        }
    }
}
