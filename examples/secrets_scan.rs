//! Scans a directory with the default secrets pack and prints one line per
//! finding (path, lines, rule, redacted form): a library-level driver for
//! benchmarks (bench/secrets.sh) and for reviewing results on a corpus.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use portcullis::finding::Payload;
use portcullis::gates::secrets::config::RulePack;
use portcullis::gates::secrets::engine::Scanner;
use portcullis::gates::secrets::{SecretsOptions, scan_tree};
use portcullis::repo::RepoView;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".to_owned()));
    let pack = match std::env::args().nth(2) {
        Some(path) => RulePack::load(std::path::Path::new(&path))?,
        None => RulePack::builtin()?,
    };
    let scanner = Scanner::new(pack);
    let repo = RepoView::new(&root)?;
    let collected = scan_tree(&repo, &scanner, &SecretsOptions::default());
    let mut findings = collected.findings;
    portcullis::finding::sort_findings(&mut findings);
    for finding in &findings {
        let redacted = match &finding.payload {
            Payload::Secret(secret) => secret.redacted.as_str(),
            _ => "",
        };
        let location = finding
            .location
            .as_ref()
            .map(|l| l.to_string())
            .unwrap_or_default();
        let suppressed = if finding.is_suppressed() {
            " (suppressed)"
        } else {
            ""
        };
        println!("{location}\t{}\t{redacted}{suppressed}", finding.rule_id);
    }
    println!(
        "# findings={} stats={:?} errors={}",
        findings.len(),
        collected.stats,
        collected.errors.len()
    );
    Ok(())
}
