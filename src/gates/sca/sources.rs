//! The source policy: which registries and git hosts packages may come
//! from, in the spirit of cargo-deny's `[sources]`.
//!
//! Sources are read from `Cargo.lock`, where Cargo records them: it needs no
//! network and no registry configuration, and each finding points at the
//! entry's `source = …` line. First-party (path) packages have no source and
//! are always allowed.
//!
//! Registry URLs are compared after normalisation, so `sparse+https://x/`,
//! `https://x` and `registry+https://x/` are one registry (cargo-deny issues
//! 500 and 507 failed exactly here), and the crates.io git index and
//! `sparse+https://index.crates.io/` are both crates.io.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::finding::{Finding, Location, PackagePolicyPayload, Payload, Severity};
use crate::gate::GateOutput;

use super::GATE;
use super::lockfile::LockedTree;

const CRATES_IO: &str = "crates.io";

/// `[gates.sca.sources]` in the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceOptions {
    /// What a registry not in `allow-registry` gets.
    #[serde(default)]
    pub unknown_registry: SourceLevel,
    /// What a git source not allowed by `allow-git` or `allow-git-hosts`
    /// gets.
    #[serde(default)]
    pub unknown_git: SourceLevel,
    /// Allowed registries: index URLs (with or without `sparse+` or
    /// `registry+`), or `crates.io`. Default: crates.io only.
    #[serde(default = "default_registries")]
    pub allow_registry: Vec<String>,
    /// Allowed git repositories, by URL (query and commit ignored).
    #[serde(default)]
    pub allow_git: Vec<String>,
    /// Allowed git hosts, e.g. `github.com`: any repository on them.
    #[serde(default)]
    pub allow_git_hosts: Vec<String>,
    /// The severity of a `deny` finding.
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

/// What a source outside the allow-lists gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceLevel {
    /// A finding at the policy's `severity`.
    #[default]
    Deny,
    /// A finding at severity info.
    Warn,
    /// Nothing.
    Allow,
}

fn default_registries() -> Vec<String> {
    vec![CRATES_IO.to_owned()]
}

fn default_severity() -> Severity {
    Severity::High
}

/// A registry URL reduced to what identifies it.
fn registry_key(url: &str) -> String {
    let url = url.trim();
    let url = url
        .strip_prefix("registry+")
        .or_else(|| url.strip_prefix("sparse+"))
        .unwrap_or(url);
    let url = url.trim_end_matches('/').to_ascii_lowercase();
    match url.as_str() {
        "crates.io"
        | "crates-io"
        | "https://github.com/rust-lang/crates.io-index"
        | "https://index.crates.io" => CRATES_IO.to_owned(),
        _ => url,
    }
}

/// A git URL without kind prefix, query, commit, trailing `/` or `.git`.
fn git_key(url: &str) -> String {
    let url = url.trim();
    let url = url.strip_prefix("git+").unwrap_or(url);
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let url = url.trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    url.to_ascii_lowercase()
}

/// The host of a URL such as `https://user@github.com:443/org/repo`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    authority.split(':').next().unwrap_or(authority)
}

/// Checks every package with a source against the policy.
pub(crate) fn check(trees: &[LockedTree], options: &SourceOptions, output: &mut GateOutput) {
    let registries: Vec<String> = options
        .allow_registry
        .iter()
        .map(|r| registry_key(r))
        .collect();
    let gits: Vec<String> = options.allow_git.iter().map(|g| git_key(g)).collect();
    let hosts: Vec<String> = options
        .allow_git_hosts
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let mut used_registries = BTreeSet::new();
    let mut used_gits = BTreeSet::new();
    let mut checked = 0_u64;

    for tree in trees {
        for (idx, package) in tree.packages().iter().enumerate() {
            let Some(source) = &package.source else {
                continue;
            };
            checked += 1;
            let text = source.to_string();
            let (allowed, level, what) = if source.is_git() {
                let key = git_key(&text);
                let host = host_of(&key).to_owned();
                let by_url = gits.iter().position(|g| *g == key);
                if let Some(position) = by_url {
                    used_gits.insert(position);
                }
                let allowed = by_url.is_some() || hosts.contains(&host);
                (allowed, options.unknown_git, "git repository")
            } else {
                let key = registry_key(&text);
                let position = registries.iter().position(|r| *r == key);
                if let Some(position) = position {
                    used_registries.insert(position);
                }
                (position.is_some(), options.unknown_registry, "registry")
            };
            if allowed || level == SourceLevel::Allow {
                continue;
            }

            let severity = match level {
                SourceLevel::Deny => options.severity,
                SourceLevel::Warn | SourceLevel::Allow => Severity::Info,
            };
            let lines = tree.lines[idx];
            let mut location = Location::file(tree.path.clone());
            if let Some(line) = lines.source.or(lines.name) {
                location = location.with_lines(line, line);
            }
            let help = if source.is_git() {
                "depend on a released version from an allowed registry, or add the repository \
                 to `allow-git` (or its host to `allow-git-hosts`) in `[gates.sca.sources]`"
            } else {
                "depend on the crate from an allowed registry, or add this registry to \
                 `allow-registry` in `[gates.sca.sources]` if it is trusted"
            };
            output.findings.push(
                Finding::builder(
                    GATE,
                    "source-not-allowed",
                    severity,
                    format!(
                        "{} {} comes from {what} `{text}`, which the source policy does not allow",
                        package.name, package.version
                    ),
                )
                .location(location)
                .help(help)
                .reference("https://embarkstudios.github.io/cargo-deny/checks/sources/cfg.html")
                .evidence(format!("{} {} {text}", package.name, package.version))
                .payload(Payload::PackagePolicy(PackagePolicyPayload {
                    package: package.name.to_string(),
                    version: package.version.to_string(),
                    subject: text,
                }))
                .build(),
            );
        }
    }

    // An allow-list entry nothing used is probably a typo or a leftover.
    for (position, entry) in options.allow_registry.iter().enumerate() {
        let is_default = registries[position] == CRATES_IO;
        if !is_default && !used_registries.contains(&position) {
            output.warnings.push(format!(
                "allowed registry `{entry}` in `[gates.sca.sources]` was not encountered; remove it if it is no longer used"
            ));
        }
    }
    for (position, entry) in options.allow_git.iter().enumerate() {
        if !used_gits.contains(&position) {
            output.warnings.push(format!(
                "allowed git repository `{entry}` in `[gates.sca.sources]` was not encountered; remove it if it is no longer used"
            ));
        }
    }
    output.stat("sources_checked", checked);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_spellings_normalise_to_one_key() {
        assert_eq!(
            registry_key("sparse+https://crates.example.com/index/"),
            registry_key("https://crates.example.com/index")
        );
        assert_eq!(registry_key("sparse+https://index.crates.io/"), CRATES_IO);
        assert_eq!(
            registry_key("registry+https://github.com/rust-lang/crates.io-index"),
            CRATES_IO
        );
        assert_ne!(
            registry_key("sparse+https://crates.untrusted.example/index/"),
            registry_key("sparse+https://crates.example.com/index/")
        );
    }

    #[test]
    fn git_urls_lose_query_commit_and_suffix() {
        assert_eq!(
            git_key("git+https://github.com/Example-Org/itoa.git?branch=fix%2Foverflow#28ef4e3"),
            "https://github.com/example-org/itoa"
        );
        assert_eq!(
            host_of("https://user@github.com:443/org/repo"),
            "github.com"
        );
    }
}
