//! GitHub workflow commands: one `::error`/`::warning`/`::notice` line per
//! finding that fails the run, so GitHub annotates the changed files, plus
//! one per gate error. Format and escaping follow GitHub's "Workflow commands
//! for GitHub Actions" documentation: in data, `%`, CR and LF are
//! percent-encoded; in properties also `:` and `,`.

use std::io::{self, Write};

use crate::finding::Severity;
use crate::pipeline::PipelineResult;

/// Writes the workflow commands.
pub fn write(result: &PipelineResult, out: &mut dyn Write) -> io::Result<()> {
    for gate in &result.gates {
        for error in &gate.errors {
            writeln!(
                out,
                "::error title={}::{}",
                escape_property(&format!("Portcullis {} could not run", gate.id)),
                escape_data(error)
            )?;
        }
        for finding in gate.failing() {
            let command = match finding.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Medium => "warning",
                Severity::Low | Severity::Info => "notice",
            };
            let mut properties = Vec::new();
            if let Some(location) = &finding.location {
                properties.push(format!("file={}", escape_property(&location.path)));
                if let Some(line) = location.start_line {
                    properties.push(format!("line={line}"));
                    if let Some(end) = location.end_line {
                        properties.push(format!("endLine={end}"));
                    }
                    // Columns only make sense on a one-line span.
                    if location.end_line.is_none_or(|end| end == line) {
                        if let Some(column) = location.start_column {
                            properties.push(format!("col={column}"));
                        }
                        if let Some(column) = location.end_column {
                            properties.push(format!("endColumn={column}"));
                        }
                    }
                }
            }
            properties.push(format!(
                "title={}",
                escape_property(&format!(
                    "{} {} ({})",
                    gate.id, finding.rule_id, finding.severity
                ))
            ));
            writeln!(
                out,
                "::{command} {}::{}",
                properties.join(","),
                escape_data(&finding.message)
            )?;
        }
    }
    Ok(())
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_per_the_workflow_command_rules() {
        assert_eq!(super::escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(super::escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
