//! Keeps the rule catalogue in `docs/gates/sast.md` in step with the pack:
//! each rule's section (what it checks, why it matters and how to fix it, an
//! example that triggers it, references) is generated from its YAML and its
//! first `invalid` sample. `UPDATE_DOCS=1` rewrites the page.

use std::fmt::Write;
use std::path::Path;

use serde::Deserialize;

use super::rules::load_rules;

#[derive(Debug, Deserialize)]
struct Samples {
    #[serde(default)]
    invalid: Vec<String>,
}

fn generate() -> String {
    let rules = load_rules(true, &[], &[]).expect("the default pack loads");
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/sast/tests");
    let mut text = String::new();
    let _ = writeln!(
        text,
        "| rule | language | severity | CWE |\n| --- | --- | --- | --- |"
    );
    for rule in &rules {
        let _ = writeln!(
            text,
            "| [`{id}`](#{id}) | {} | {} | {} |",
            rule.language,
            rule.severity,
            rule.cwe.join(", "),
            id = rule.id
        );
    }
    for rule in &rules {
        let samples = std::fs::read_to_string(tests.join(format!("{}-test.yml", rule.id)))
            .expect("every rule has samples");
        let samples: Samples = ast_grep_config::from_str(&samples).expect("valid samples");
        let fence = match rule.language {
            super::language::SastLanguage::Rust => "rust",
            super::language::SastLanguage::Bash => "sh",
            super::language::SastLanguage::Yaml => "yaml",
        };
        let _ = write!(
            text,
            "\n### `{}`\n\n**What it checks:** {} ({}, severity {}, from `{}`).\n\n**Why it matters and how to fix it:** {}\n\n**Example:**\n\n```{fence}\n{}```\n\n**References:** {}\n",
            rule.id,
            rule.message,
            rule.language,
            rule.severity,
            rule.source,
            rule.note
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            samples.invalid.first().map_or("", String::as_str),
            rule.references
                .iter()
                .map(|url| format!("<{url}>"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    text
}

#[test]
fn docs_list_every_rule_and_are_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/gates/sast.md");
    let page = std::fs::read_to_string(&path).expect("docs/gates/sast.md exists");
    let (head, rest) = page
        .split_once("<!-- rules:start -->\n")
        .expect("start marker");
    let (_, tail) = rest.split_once("<!-- rules:end -->").expect("end marker");
    let fresh = format!(
        "{head}<!-- rules:start -->\n{}<!-- rules:end -->{tail}",
        generate()
    );
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &fresh).expect("write docs");
        return;
    }
    assert!(
        page == fresh,
        "docs/gates/sast.md is stale: run `UPDATE_DOCS=1 cargo test --lib sast::docs`"
    );
}
