//! `summary.md`: the verdict, a table of gates and the findings that fail
//! the run, for `$GITHUB_STEP_SUMMARY` and pull-request comments.
//! GitHub-flavoured Markdown; text from findings is escaped so a message can
//! never inject markup or break the table.

use std::io::{self, Write};

use super::human_duration;
use crate::pipeline::{Outcome, PipelineResult, Verdict};

/// Findings listed per gate before the rest is summarised.
const MAX_LISTED: usize = 50;

/// Writes the summary.
pub fn write(result: &PipelineResult, out: &mut dyn Write) -> io::Result<()> {
    let headline = match result.verdict {
        Verdict::Passed => "✅ Portcullis passed",
        Verdict::Failed => "❌ Portcullis failed",
        Verdict::Errored => "⚠️ Portcullis errored",
    };
    writeln!(out, "## {headline}\n")?;
    writeln!(out, "{}\n", escape(&result.reason()))?;

    writeln!(
        out,
        "| gate | outcome | failing | total | suppressed | time |"
    )?;
    writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: |")?;
    for gate in &result.gates {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            gate.id,
            gate.outcome.label(),
            gate.failing().count(),
            gate.findings.len(),
            gate.suppressed_count(),
            human_duration(gate.duration)
        )?;
    }

    for gate in &result.gates {
        let failing: Vec<_> = gate.failing().collect();
        let skipped = match &gate.outcome {
            Outcome::Skipped { reason } => Some(reason),
            _ => None,
        };
        if failing.is_empty()
            && gate.errors.is_empty()
            && gate.warnings.is_empty()
            && skipped.is_none()
        {
            continue;
        }
        writeln!(out, "\n### {}\n", gate.id)?;
        if let Some(reason) = skipped {
            writeln!(out, "Skipped: {}\n", escape(reason))?;
        }
        for error in &gate.errors {
            writeln!(
                out,
                "> **error:** {}\n",
                escape(error).replace('\n', "<br>")
            )?;
        }
        for warning in &gate.warnings {
            writeln!(out, "> **warning:** {}\n", escape(warning))?;
        }
        if failing.is_empty() {
            continue;
        }
        writeln!(out, "| severity | rule | location | message |")?;
        writeln!(out, "| --- | --- | --- | --- |")?;
        for finding in failing.iter().take(MAX_LISTED) {
            let location = finding.location.as_ref().map_or_else(String::new, |l| {
                format!("`{}`", l.to_string().replace('`', "'"))
            });
            writeln!(
                out,
                "| {} | `{}` | {} | {} |",
                finding.severity,
                finding.rule_id.replace('`', "'"),
                location,
                escape(finding.message.lines().next().unwrap_or_default())
            )?;
        }
        if failing.len() > MAX_LISTED {
            writeln!(
                out,
                "\n…and {} more in `report.json`.",
                failing.len() - MAX_LISTED
            )?;
        }
    }

    if !result.policy_notes.is_empty() {
        writeln!(out, "\n### Policy\n")?;
        for note in &result.policy_notes {
            writeln!(out, "- {}", escape(&note.message))?;
        }
    }
    Ok(())
}

/// Escapes what Markdown or a table cell would read as markup.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '!' => {
                escaped.push('\\');
                escaped.push(ch);
            }
            '\r' => {}
            _ => escaped.push(ch),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_table_breaking_characters() {
        assert_eq!(super::escape("a|b <script>"), "a\\|b \\<script\\>");
    }
}
