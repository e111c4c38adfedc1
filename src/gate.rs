//! The [`Gate`] trait and the [`GateContext`] a gate receives.
//!
//! A gate is one check over a repository. It never opens files, sockets or
//! processes on its own: it asks the context, which holds a read-only view of
//! the repository ([`RepoView`]) and a process runner ([`ProcessRunner`]).
//! A gate returns findings and artifacts; whether they fail the run is the
//! policy's decision, taken in [`crate::pipeline`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::finding::Finding;
use crate::policy::Policy;
use crate::process::ProcessRunner;
use crate::repo::RepoView;

/// What a gate needs from the machine, shown in `--help` and docs and used
/// to explain an errored gate.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// External programs run through the process runner.
    pub tools: &'static [&'static str],
    /// Whether the gate may use the network when not `--offline`.
    pub network: bool,
}

/// Settings of one run that are not policy: where things are and what the
/// user asked for on the command line.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Use no network: never fetch the advisory database or anything else.
    pub offline: bool,
    /// `--advisory-db` or `PORTCULLIS_ADVISORY_DB`, when given.
    pub advisory_db: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`, for reproducible artifacts.
    pub source_date_epoch: Option<i64>,
    /// Today's date, for waiver expiry and database staleness; a parameter so
    /// tests can fix it.
    pub today: jiff::civil::Date,
    /// Fingerprints from `--baseline report.json`: findings already there are
    /// suppressed, so only new ones fail the run.
    pub baseline: Option<Arc<BTreeSet<String>>>,
}

impl RunSettings {
    pub fn new(today: jiff::civil::Date) -> Self {
        RunSettings {
            offline: false,
            advisory_db: None,
            source_date_epoch: None,
            today,
            baseline: None,
        }
    }
}

/// Everything a gate may use while it runs.
#[derive(Debug, Clone)]
pub struct GateContext {
    pub repo: RepoView,
    pub runner: ProcessRunner,
    pub policy: Arc<Policy>,
    pub settings: Arc<RunSettings>,
}

impl GateContext {
    pub fn root(&self) -> &Path {
        self.repo.root()
    }
}

/// A file a gate produced, such as an SBOM, written by the pipeline into
/// `--out` (never into the scanned repository).
#[derive(Clone, PartialEq, Eq)]
pub struct Artifact {
    /// A file name relative to the output folder, e.g. `sbom/app.cdx.json`.
    pub name: String,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Artifact")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// What a gate returns when it ran: findings, artifacts, counts of what it
/// covered, and the problems it met along the way.
#[derive(Debug, Default)]
pub struct GateOutput {
    pub findings: Vec<Finding>,
    pub artifacts: Vec<Artifact>,
    /// Counts worth showing: files scanned, lockfiles, tests passed, …
    pub stats: BTreeMap<String, u64>,
    /// Things that reduce coverage or need the user, e.g. a stale database.
    pub warnings: Vec<String>,
    /// Parts the gate could not do. Any error makes the outcome Errored even
    /// though the findings from the rest are kept: an empty finding list must
    /// always mean "looked and found nothing".
    pub errors: Vec<GateError>,
}

impl GateOutput {
    pub fn stat(&mut self, name: &str, value: u64) {
        self.stats.insert(name.to_owned(), value);
    }
}

/// Why a gate, or part of it, could not run.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("`{tool}` is not installed or not on PATH")]
    ToolMissing { tool: String, help: String },

    #[error("could not read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Input the gate could not understand: a corrupt lockfile, bad YAML.
    #[error("could not parse `{}`{}: {message}", path.display(), line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        line: Option<u32>,
        message: String,
        help: String,
    },

    /// A tool ran but failed in a way that is not a finding.
    #[error("`{tool}` failed: {message}")]
    Tool {
        tool: String,
        message: String,
        help: String,
    },

    /// Something the gate needs is unavailable: the advisory database, …
    #[error("{what} is unavailable: {message}")]
    Unavailable {
        what: String,
        message: String,
        help: String,
    },

    #[error("{message}")]
    Other { message: String },
}

impl GateError {
    /// What the user can do about it, when there is something.
    pub fn help(&self) -> Option<&str> {
        match self {
            GateError::ToolMissing { help, .. }
            | GateError::Parse { help, .. }
            | GateError::Tool { help, .. }
            | GateError::Unavailable { help, .. } => Some(help.as_str()).filter(|h| !h.is_empty()),
            GateError::Read { .. } => Some("check that the file exists and is readable"),
            GateError::Other { .. } => None,
        }
    }

    /// The message with its help line, as reports show it.
    pub fn describe(&self) -> String {
        match self.help() {
            Some(help) => format!("{self}\n  help: {help}"),
            None => self.to_string(),
        }
    }
}

/// One check over a repository. Implementations are unit structs in
/// `src/gates/`, listed in [`crate::gates::registry`].
#[async_trait]
pub trait Gate: Send + Sync + fmt::Debug {
    /// The stable id: the module name, the CLI subcommand and the policy
    /// section.
    fn id(&self) -> &'static str;

    /// One line saying what the gate checks.
    fn description(&self) -> &'static str;

    /// Where its documentation lives, relative to the repository's `docs/`.
    fn docs(&self) -> &'static str;

    fn needs(&self) -> Needs {
        Needs::default()
    }

    /// Runs the check. `Err` means the gate could not run at all; parts that
    /// failed go into [`GateOutput::errors`].
    async fn run(&self, ctx: &GateContext) -> Result<GateOutput, GateError>;
}
