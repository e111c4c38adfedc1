//! Yanked crates: like cargo-audit, ask the crates.io index whether each
//! locked crates.io version was yanked.
//!
//! This needs the network (the sparse index at `index.crates.io`), so it
//! only runs when the run is online. Offline, cargo-audit reads whatever
//! entries happen to sit in cargo's local index cache, which gives answers
//! that differ from machine to machine and misses crates never fetched;
//! this gate does not guess: it skips the check and says so in a warning
//! (turn `yanked` off in the policy to silence it).

use std::time::Duration;

use rustsec::cargo_lock::Package;

use crate::finding::{Finding, Location, PackagePayload, Payload, Severity};
use crate::gate::GateError;

use super::GATE;
use super::advisories::is_crates_io;
use super::lockfile::LockedTree;

/// The crates.io packages of all trees, once each.
pub(crate) fn packages(trees: &[LockedTree]) -> Vec<Package> {
    let mut packages: Vec<Package> = trees
        .iter()
        .flat_map(|tree| tree.packages().iter())
        .filter(|package| is_crates_io(package))
        .cloned()
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

/// Asks the crates.io sparse index which packages are yanked. Blocking:
/// call it from a blocking task. Returns "name version" of each yanked
/// package and the number that could not be checked.
pub(crate) fn query(packages: &[Package]) -> Result<(Vec<String>, usize), GateError> {
    let user_agent = format!("portcullis/{}", env!("CARGO_PKG_VERSION"));
    let mut index = rustsec::registry::CachedIndex::fetch_as(Duration::from_secs(60), user_agent)
        .map_err(|err| GateError::Unavailable {
        what: "the crates.io index".to_owned(),
        message: format!("could not open it to check for yanked crates: {err}"),
        help: "check the network, or set `yanked = false` in `[gates.sca]`".to_owned(),
    })?;

    let mut yanked = Vec::new();
    let mut unchecked = 0_usize;
    for result in index.find_yanked(packages.iter()) {
        match result {
            Ok(package) => yanked.push(format!("{} {}", package.name, package.version)),
            Err(err) if err.kind() == rustsec::ErrorKind::Registry => {
                return Err(GateError::Unavailable {
                    what: "the crates.io index".to_owned(),
                    message: format!("could not download it: {err}"),
                    help: "check the network, or set `yanked = false` in `[gates.sca]`".to_owned(),
                });
            }
            Err(_) => unchecked += 1,
        }
    }
    Ok((yanked, unchecked))
}

/// One finding per yanked package per lockfile.
pub(crate) fn findings(
    trees: &[LockedTree],
    yanked: &[String],
    severity: Severity,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for tree in trees {
        for (idx, package) in tree.packages().iter().enumerate() {
            let subject = format!("{} {}", package.name, package.version);
            if !is_crates_io(package) || !yanked.contains(&subject) {
                continue;
            }
            let mut location = Location::file(tree.path.clone());
            if let Some(line) = tree.lines[idx].name {
                location = location.with_lines(line, line);
            }
            findings.push(
                Finding::builder(
                    GATE,
                    "yanked",
                    severity,
                    format!("{subject} was yanked from crates.io"),
                )
                .location(location)
                .help(format!(
                    "yanked releases are withdrawn by their authors, often for a bug; move to \
                     another version with `cargo update -p {}@{}`",
                    package.name, package.version
                ))
                .reference(format!(
                    "https://crates.io/crates/{}/{}",
                    package.name, package.version
                ))
                .evidence(format!("{subject} yanked"))
                .payload(Payload::Package(PackagePayload {
                    package: package.name.to_string(),
                    version: package.version.to_string(),
                    kind: "yanked".to_owned(),
                    advisory_id: None,
                    aliases: Vec::new(),
                    cvss: None,
                    cvss_score: None,
                    patched: Vec::new(),
                    dependency_path: tree.dependency_path(idx),
                }))
                .build(),
            );
        }
    }
    findings
}
