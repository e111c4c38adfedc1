//! Report writers, each a pure function of the [`PipelineResult`]: they take
//! the result and write to a `Write`. None reads files, the clock or the
//! environment, and none logs. Machine formats (JSON, SARIF, JUnit) are
//! written from their own frozen structs so refactoring the engine's types
//! never changes what a consumer reads.

pub mod github;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod terminal;

use std::io::{self, Write};

use crate::pipeline::PipelineResult;

/// Every output format, as `--format` and the `--out` folder know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A table of gates and the findings, for people at a terminal.
    Terminal,
    /// `report.json`: the full result, versioned schema.
    Json,
    /// `results.sarif`: SARIF 2.1.0, one run per gate.
    Sarif,
    /// `summary.md`: for `$GITHUB_STEP_SUMMARY` and pull-request comments.
    Markdown,
    /// `junit.xml`: one test suite per gate.
    Junit,
    /// GitHub workflow commands (`::error file=…::…`), one per finding.
    Github,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Terminal,
        Format::Json,
        Format::Sarif,
        Format::Markdown,
        Format::Junit,
        Format::Github,
    ];

    /// The file name this format gets in `--out`, if it is written there.
    pub fn file_name(self) -> Option<&'static str> {
        match self {
            Format::Json => Some("report.json"),
            Format::Sarif => Some("results.sarif"),
            Format::Markdown => Some("summary.md"),
            Format::Junit => Some("junit.xml"),
            Format::Terminal | Format::Github => None,
        }
    }
}

/// How the terminal writer renders.
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalStyle {
    pub color: bool,
    /// Also list findings below the threshold and suppressed ones.
    pub verbose: bool,
}

/// Writes `result` in `format`.
pub fn write(
    format: Format,
    result: &PipelineResult,
    style: TerminalStyle,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Terminal => terminal::write(result, style, out),
        Format::Json => json::write(result, out),
        Format::Sarif => sarif::write(result, out),
        Format::Markdown => markdown::write(result, out),
        Format::Junit => junit::write(result, out),
        Format::Github => github::write(result, out),
    }
}

/// Milliseconds, rounded, for reports.
pub(crate) fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A human duration: `850 ms`, `12.3 s`, `2 min 5 s`. The terminal table
/// and the CLI's progress lines both use it, so the two never disagree.
pub fn human_duration(duration: std::time::Duration) -> String {
    let ms = millis(duration);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}
