//! The secrets gate: leaked credentials in the working tree, in git history,
//! or in what is about to be committed.
//!
//! Rules are data, in the gitleaks format ([`config`]); the default pack is
//! `policies/secrets.toml`. The matching core ([`engine`]) is a pure
//! function of bytes; this module picks the blobs — files under the root in
//! tree mode, every distinct blob of history ([`git`]), or the index in
//! staged mode — scans them in parallel on the blocking pool, and turns what
//! it met into the gate's output. Secrets never leave the engine: findings
//! hold a redacted prefix and a hash.

pub mod config;
pub mod engine;
pub mod git;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use rayon::prelude::*;
use serde::Deserialize;

use crate::finding::Finding;
use crate::gate::{Gate, GateContext, GateError, GateOutput};
use crate::repo::{RepoView, WalkOptions};
use config::{ConfigError, RulePack};
use engine::{BlobScan, GATE, Origin, Scanner, is_binary};

/// Which blobs the gate scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Files under the root, respecting `.gitignore`.
    #[default]
    Tree,
    /// Every blob reachable from `refs`, each once.
    History,
    /// What `git commit` would record (for a pre-commit hook).
    Staged,
}

/// `[gates.secrets]` in the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretsOptions {
    #[serde(default)]
    pub mode: Mode,
    /// Refs whose history is scanned in history mode; empty: all refs.
    #[serde(default)]
    pub refs: Vec<String>,
    /// Files (and blobs) larger than this many bytes are skipped and
    /// counted.
    #[serde(default = "default_max_file_size")]
    pub max_file_size: u64,
    /// A gitleaks-format rule pack replacing the default one, relative to
    /// the policy file.
    #[serde(default)]
    pub config: Option<PathBuf>,
}

impl Default for SecretsOptions {
    fn default() -> Self {
        SecretsOptions {
            mode: Mode::Tree,
            refs: Vec::new(),
            max_file_size: default_max_file_size(),
            config: None,
        }
    }
}

fn default_max_file_size() -> u64 {
    10 * 1024 * 1024
}

/// Leaked credentials.
#[derive(Debug)]
pub struct Secrets;

#[async_trait]
impl Gate for Secrets {
    fn id(&self) -> &'static str {
        GATE
    }

    fn description(&self) -> &'static str {
        "leaked credentials in the tree, git history or staged changes (gitleaks-format rules)"
    }

    fn docs(&self) -> &'static str {
        "docs/gates/secrets.md"
    }

    async fn run(&self, ctx: &GateContext) -> Result<GateOutput, GateError> {
        let options = ctx.policy.gates.secrets.clone();
        let pack = load_pack(ctx, &options)?;
        let rules = pack.rules.len();
        let scanner = Arc::new(Scanner::new(pack));
        let repo = ctx.repo.clone();

        let task = tokio::task::spawn_blocking(move || match options.mode {
            Mode::Tree => Ok(scan_tree(&repo, &scanner, &options)),
            Mode::History => git::scan_history(repo.root(), &scanner, &options),
            Mode::Staged => git::scan_staged(repo.root(), &scanner, &options),
        });
        let collected = task.await.map_err(|err| GateError::Other {
            message: format!(
                "the secrets scan stopped unexpectedly: {err}; this is a bug, please report it"
            ),
        })??;

        let mut output = collected.into_output();
        output.stat("rules", rules as u64);
        Ok(output)
    }
}

/// The rule pack the policy names, or the built-in one.
pub fn load_pack(ctx: &GateContext, options: &SecretsOptions) -> Result<RulePack, GateError> {
    let result = match &options.config {
        Some(path) => RulePack::load(&ctx.policy.resolve(ctx.root(), path)),
        None => RulePack::builtin(),
    };
    result.map_err(config_error)
}

fn config_error(err: ConfigError) -> GateError {
    GateError::Parse {
        path: err.origin,
        line: err.line,
        message: err.message,
        help: "fix the rule named above; docs/gates/secrets.md lists the supported gitleaks keys"
            .to_owned(),
    }
}

/// Scans the files under the root, in parallel across cores.
pub fn scan_tree(repo: &RepoView, scanner: &Scanner, options: &SecretsOptions) -> Collected {
    let walk_options = WalkOptions {
        hidden: true,
        ..WalkOptions::default()
    };
    let mut collected = Collected::default();
    let mut paths = Vec::new();
    for entry in repo.walk(&walk_options) {
        match entry {
            Ok(path) => paths.push(path),
            Err(err) => collected.errors.push(err),
        }
    }

    let max = options.max_file_size;
    let parts: Vec<Collected> = paths
        .par_iter()
        .map(|path| {
            let mut part = Collected::default();
            let relative = repo.relative(path);
            let size = std::fs::symlink_metadata(path)
                .map(|m| m.len())
                .unwrap_or(0);
            if size > max {
                part.skipped_large.push(relative);
                return part;
            }
            let bytes = match repo.read(&relative) {
                Ok(bytes) => bytes,
                Err(err) => {
                    part.errors.push(err);
                    return part;
                }
            };
            if is_binary(&bytes) {
                part.stat("skipped_binary", 1);
                return part;
            }
            let origin = Origin {
                path: &relative,
                commit: None,
            };
            part.add_scan(scanner.scan(origin, &bytes), bytes.len());
            part
        })
        .collect();
    for part in parts {
        collected.merge(part);
    }
    collected
}

/// What the scan of some blobs gave, merged across threads.
#[derive(Debug, Default)]
pub struct Collected {
    pub findings: Vec<Finding>,
    pub stats: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
    pub errors: Vec<GateError>,
    pub skipped_large: Vec<String>,
}

impl Collected {
    pub fn stat(&mut self, name: &str, value: u64) {
        *self.stats.entry(name.to_owned()).or_default() += value;
    }

    fn add_scan(&mut self, scan: BlobScan, bytes: usize) {
        if scan.allowlisted {
            self.stat("skipped_allowlisted", 1);
            return;
        }
        self.stat("files_scanned", 1);
        self.stat("bytes_scanned", bytes as u64);
        let suppressed = scan.findings.iter().filter(|f| f.is_suppressed()).count();
        if suppressed > 0 {
            self.stat("suppressed_inline", suppressed as u64);
        }
        self.findings.extend(scan.findings);
    }

    fn merge(&mut self, other: Collected) {
        self.findings.extend(other.findings);
        for (name, value) in other.stats {
            self.stat(&name, value);
        }
        self.warnings.extend(other.warnings);
        self.errors.extend(other.errors);
        self.skipped_large.extend(other.skipped_large);
    }

    fn into_output(mut self) -> GateOutput {
        let mut output = GateOutput::default();
        if !self.skipped_large.is_empty() {
            self.skipped_large.sort();
            let count = self.skipped_large.len();
            let sample = self
                .skipped_large
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            self.warnings.push(format!(
                "{count} file(s) larger than `max-file-size` were not scanned (e.g. {sample}); raise `[gates.secrets] max-file-size` to scan them"
            ));
            self.stat("skipped_large", count as u64);
        }
        crate::finding::sort_findings(&mut self.findings);
        output.stat("findings", self.findings.len() as u64);
        output.findings = self.findings;
        for (name, value) in self.stats {
            output.stat(&name, value);
        }
        output.warnings = self.warnings;
        output.errors = self.errors;
        output
    }
}
