//! Runs only the sast gate over a folder and prints one line per finding
//! (`rule<TAB>path<TAB>line`), for `bench/sast.sh` to time and to compare
//! finding sets with semgrep's. The CLI (`cargo xtask sast`) is the user
//! interface; this is a measuring tool.
//!
//! Usage: `sast_scan ROOT [POLICY]`

// Printing the findings is this program's output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use portcullis::gate::RunSettings;
use portcullis::pipeline::{Pipeline, Silent};
use portcullis::policy::Policy;
use portcullis::repo::RepoView;

fn main() -> anyhow::Result<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let Some(root) = args.next().map(PathBuf::from) else {
        eprintln!("usage: sast_scan ROOT [POLICY]");
        return Ok(ExitCode::from(2));
    };
    let policy_path = args.next().map(PathBuf::from);
    let mut policy = Policy::discover(&root, policy_path.as_deref(), &[])?;
    policy.restrict(Some(&["sast".to_owned()]), &[]);

    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    let pipeline =
        Pipeline::new(policy, RunSettings::new(today), RepoView::new(&root)?).partial(true);
    let result = tokio::runtime::Runtime::new()?.block_on(pipeline.run(Arc::new(Silent)));

    for gate in &result.gates {
        for error in &gate.errors {
            eprintln!("error: {error}");
        }
        for warning in &gate.warnings {
            eprintln!("warning: {warning}");
        }
        for finding in &gate.findings {
            let location = finding.location.as_ref();
            println!(
                "{}\t{}\t{}",
                finding.rule_id,
                location.map_or("", |l| l.path.as_str()),
                location.and_then(|l| l.start_line).unwrap_or(0)
            );
        }
        let stats: Vec<String> = gate.stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "{}: {} ({})",
            gate.id,
            gate.outcome.label(),
            stats.join(" ")
        );
    }
    Ok(ExitCode::from(result.verdict.exit_code()))
}
