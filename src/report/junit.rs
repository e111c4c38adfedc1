//! `junit.xml`: one `<testsuite>` per gate. A gate with no failing finding is
//! one passing test case; each failing finding is a failed test case; an
//! errored gate is an `<error>`; a skipped gate is `<skipped>`. This is the
//! layout CI systems (GitLab, Jenkins, Buildkite) render as a test report.

use std::io::{self, Write};

use crate::pipeline::{Outcome, PipelineResult};

/// Writes the JUnit XML document.
pub fn write(result: &PipelineResult, out: &mut dyn Write) -> io::Result<()> {
    let mut tests = 0;
    let mut failures = 0;
    let mut errors = 0;
    for gate in &result.gates {
        let failing = gate.failing().count();
        tests += failing.max(1);
        failures += failing;
        errors += usize::from(gate.outcome == Outcome::Errored);
    }

    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="portcullis" tests="{tests}" failures="{failures}" errors="{errors}" time="{:.3}">"#,
        result.duration.as_secs_f64()
    )?;
    for gate in &result.gates {
        let failing: Vec<_> = gate.failing().collect();
        let gate_errors = usize::from(gate.outcome == Outcome::Errored);
        let skipped = usize::from(matches!(gate.outcome, Outcome::Skipped { .. }));
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{gate_errors}" skipped="{skipped}" time="{:.3}">"#,
            escape(&gate.id),
            failing.len().max(1),
            failing.len(),
            gate.duration.as_secs_f64()
        )?;
        if failing.is_empty() {
            write!(
                out,
                r#"    <testcase classname="portcullis.{0}" name="{0}""#,
                escape(&gate.id)
            )?;
            match &gate.outcome {
                Outcome::Skipped { reason } => {
                    writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(reason)
                    )?;
                }
                Outcome::Errored => {
                    let message = gate.errors.join("\n");
                    writeln!(
                        out,
                        ">\n      <error message=\"the gate could not run completely\">{}</error>\n    </testcase>",
                        escape(&message)
                    )?;
                }
                _ => writeln!(out, "/>")?,
            }
        }
        for finding in failing {
            let location = finding
                .location
                .as_ref()
                .map_or_else(String::new, ToString::to_string);
            let name = if location.is_empty() {
                finding.rule_id.clone()
            } else {
                format!("{} at {location}", finding.rule_id)
            };
            let body = match &finding.help {
                Some(help) => format!("{}\n\n{help}", finding.message),
                None => finding.message.clone(),
            };
            writeln!(
                out,
                r#"    <testcase classname="portcullis.{}" name="{}" file="{}">"#,
                escape(&gate.id),
                escape(&name),
                escape(finding.location.as_ref().map_or("", |l| l.path.as_str()))
            )?;
            writeln!(
                out,
                r#"      <failure message="{}" type="{}">{}</failure>"#,
                escape(finding.message.lines().next().unwrap_or_default()),
                finding.severity,
                escape(&body)
            )?;
            writeln!(out, "    </testcase>")?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// XML 1.0 escaping for attributes and text; characters XML cannot carry at
/// all (most C0 controls) are replaced so the document stays well-formed.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\n' => escaped.push_str("&#10;"),
            '\t' | '\r' => escaped.push(ch),
            c if (c as u32) < 0x20 => escaped.push('\u{FFFD}'),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            super::escape("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;\u{FFFD}"
        );
    }
}
