//! Runs the samples of every rule in the default pack: each rule has
//! `policies/sast/tests/<rule-id>-test.yml` in the ast-grep test format
//! (`id`, `valid`, `invalid`), where every `invalid` snippet must match and
//! no `valid` snippet may.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::language::SastLanguage;
use super::rules::load_rules;
use super::scan::Engine;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleTest {
    id: String,
    #[serde(default)]
    valid: Vec<String>,
    #[serde(default)]
    invalid: Vec<String>,
}

/// A path of the rule's language that its `files` globs accept, so
/// workflow rules see a workflow file.
fn sample_path(language: SastLanguage) -> &'static str {
    match language {
        SastLanguage::Rust => "src/sample.rs",
        SastLanguage::Bash => "scripts/sample.sh",
        SastLanguage::Yaml => ".github/workflows/sample.yml",
    }
}

#[test]
fn every_rule_has_samples_and_they_hold() {
    let rules = load_rules(true, &[], &[]).unwrap_or_else(|err| panic!("{err}"));
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/sast/tests");
    let mut tests = BTreeMap::new();
    for entry in std::fs::read_dir(&folder).expect("policies/sast/tests exists") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        let test: RuleTest = ast_grep_config::from_str(&text)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let expected = format!("{}-test.yml", test.id);
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some(expected.as_str()),
            "test file name must be <rule-id>-test.yml"
        );
        tests.insert(test.id.clone(), test);
    }

    let mut failures = Vec::new();
    for rule in &rules {
        let Some(test) = tests.remove(&rule.id) else {
            failures.push(format!(
                "{}: no policies/sast/tests/{}-test.yml",
                rule.id, rule.id
            ));
            continue;
        };
        if test.valid.is_empty() || test.invalid.is_empty() {
            failures.push(format!(
                "{}: needs at least one valid and one invalid sample",
                rule.id
            ));
        }
        let engine = Engine::new(
            load_rules(true, &[], &[])
                .expect("loaded above")
                .into_iter()
                .filter(|r| r.id == rule.id)
                .collect(),
        );
        let path = sample_path(rule.language);
        for (index, code) in test.invalid.iter().enumerate() {
            let scan = engine.scan("sast", path, rule.language, code);
            if scan.findings.is_empty() {
                failures.push(format!(
                    "{}: invalid[{index}] did not match:\n{code}",
                    rule.id
                ));
            }
        }
        for (index, code) in test.valid.iter().enumerate() {
            let scan = engine.scan("sast", path, rule.language, code);
            if !scan.findings.is_empty() {
                failures.push(format!("{}: valid[{index}] matched:\n{code}", rule.id));
            }
        }
    }
    for id in tests.keys() {
        failures.push(format!("{id}: a test file for a rule that does not exist"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
