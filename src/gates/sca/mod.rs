//! The sca gate: every `Cargo.lock` under the root against the RustSec
//! advisory database, plus the licence and source policies.
//!
//! - [`lockfile`]: finding and parsing lockfiles, entry lines, dependency
//!   paths;
//! - [`advisories`]: the database (location, fetch, staleness), loading only
//!   the advisories of locked crates, and matching them like cargo-audit;
//! - [`sources`]: allowed registries and git hosts, read from the lockfile;
//! - [`licenses`]: allowed SPDX expressions, read from `cargo metadata`.
//!
//! Findings for advisories carry the advisory id as their rule id
//! (`RUSTSEC-2021-0003`); policy violations use `license-not-allowed`,
//! `license-unparsable`, `license-missing` and `source-not-allowed`.

mod advisories;
mod licenses;
mod lockfile;
mod sources;
mod yanked;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer};

use crate::finding::Severity;
use crate::gate::{Gate, GateContext, GateError, GateOutput, Needs};
use crate::repo::WalkOptions;

pub use licenses::{LicenseException, LicenseOptions};
pub use sources::{SourceLevel, SourceOptions};

use advisories::DbLocation;
use lockfile::LockedTree;

const GATE: &str = "sca";

/// `[gates.sca]` in the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScaOptions {
    /// The advisory database folder, relative to the policy file. Used when
    /// neither `--advisory-db` nor `PORTCULLIS_ADVISORY_DB` is given; when
    /// none is, the copy cargo-audit keeps in `$CARGO_HOME/advisory-db`.
    #[serde(default)]
    pub advisory_db: Option<PathBuf>,
    /// Warn when the database is older than this many days.
    #[serde(default = "default_stale_days")]
    pub stale_days: u32,
    /// Which informational advisories are reported. The default is
    /// cargo-audit's: all three.
    #[serde(default = "default_informational")]
    pub informational: Vec<InformationalKind>,
    /// The severity of informational findings; `info` warns without
    /// failing under the default threshold.
    #[serde(default = "default_informational_severity")]
    pub informational_severity: Severity,
    /// The severity of a vulnerability whose advisory has no CVSS vector.
    #[serde(default = "default_unscored_severity")]
    pub unscored_severity: Severity,
    /// Only report advisories that affect one of these operating systems
    /// (like `cargo audit --target-os`); empty: all.
    #[serde(default)]
    pub target_os: Vec<platforms::Os>,
    /// Only report advisories that affect one of these architectures (like
    /// `cargo audit --target-arch`); empty: all.
    #[serde(default)]
    pub target_arch: Vec<platforms::Arch>,
    /// Report crates.io versions that were yanked (online runs only: the
    /// check asks the crates.io index; offline it is skipped with a
    /// warning).
    #[serde(default = "yes")]
    pub yanked: bool,
    /// Lockfiles to leave out, as globs relative to the root, e.g.
    /// `tests/fixtures/**`.
    #[serde(default)]
    pub exclude: Vec<ExcludeGlob>,
    /// Stop `cargo metadata` (licence checks) after this many seconds.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// The licence policy; off when absent.
    #[serde(default)]
    pub licenses: Option<LicenseOptions>,
    /// The source policy; off when absent.
    #[serde(default)]
    pub sources: Option<SourceOptions>,
}

impl Default for ScaOptions {
    fn default() -> Self {
        ScaOptions {
            advisory_db: None,
            stale_days: default_stale_days(),
            informational: default_informational(),
            informational_severity: default_informational_severity(),
            unscored_severity: default_unscored_severity(),
            target_os: Vec::new(),
            target_arch: Vec::new(),
            yanked: true,
            exclude: Vec::new(),
            timeout_seconds: default_timeout(),
            licenses: None,
            sources: None,
        }
    }
}

/// The kinds of informational advisory, as the policy names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InformationalKind {
    Unmaintained,
    Unsound,
    Notice,
}

/// A glob checked when the policy loads, so a bad one names its line.
#[derive(Debug, Clone)]
pub struct ExcludeGlob(globset::Glob);

impl<'de> Deserialize<'de> for ExcludeGlob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        globset::GlobBuilder::new(&text)
            .literal_separator(true)
            .build()
            .map(ExcludeGlob)
            .map_err(|err| serde::de::Error::custom(format!("invalid glob `{text}`: {err}")))
    }
}

fn yes() -> bool {
    true
}

fn default_stale_days() -> u32 {
    7
}

fn default_informational() -> Vec<InformationalKind> {
    vec![
        InformationalKind::Unmaintained,
        InformationalKind::Unsound,
        InformationalKind::Notice,
    ]
}

fn default_informational_severity() -> Severity {
    Severity::Info
}

// NOTE: a vulnerability without a CVSS vector is treated as high: most
// RustSec advisories without a score are memory-safety bugs, and failing on
// an unknown is the fail-closed choice. The policy can change it.
fn default_unscored_severity() -> Severity {
    Severity::High
}

fn default_timeout() -> u64 {
    10 * 60
}

/// Vulnerable, unmaintained and unsound crates, licences and sources.
#[derive(Debug)]
pub struct Sca;

#[async_trait]
impl Gate for Sca {
    fn id(&self) -> &'static str {
        GATE
    }

    fn description(&self) -> &'static str {
        "Cargo.lock against the RustSec advisory database, plus licence and source policies"
    }

    fn docs(&self) -> &'static str {
        "docs/gates/sca.md"
    }

    fn needs(&self) -> Needs {
        Needs {
            // cargo only for the licence policy (`cargo metadata`).
            tools: &["cargo"],
            network: true,
        }
    }

    async fn run(&self, ctx: &GateContext) -> Result<GateOutput, GateError> {
        let options = ctx.policy.gates.sca.clone();
        let mut output = GateOutput::default();

        let trees = read_lockfiles(ctx, &options, &mut output)?;
        let packages: usize = trees.iter().map(|t| t.packages().len()).sum();
        output.stat("lockfiles", trees.len() as u64);
        output.stat("packages", packages as u64);

        check_advisories(ctx, &options, &trees, &mut output).await;
        if options.yanked {
            check_yanked(ctx, &options, &trees, &mut output).await;
        }
        if let Some(source_options) = &options.sources {
            sources::check(&trees, source_options, &mut output);
        }
        if let Some(license_options) = &options.licenses {
            licenses::check(ctx, &options, license_options, &trees, &mut output).await;
        }
        Ok(output)
    }
}

/// Finds and parses every `Cargo.lock` under the root. A lockfile that
/// cannot be read or parsed is an error naming it; the others are scanned.
fn read_lockfiles(
    ctx: &GateContext,
    options: &ScaOptions,
    output: &mut GateOutput,
) -> Result<Vec<LockedTree>, GateError> {
    let mut exclude = globset::GlobSetBuilder::new();
    for glob in &options.exclude {
        exclude.add(glob.0.clone());
    }
    let exclude = exclude.build().map_err(|err| GateError::Other {
        message: format!("could not build the sca gate's `exclude` globs: {err}"),
    })?;

    let walk = WalkOptions {
        file_name: Some("Cargo.lock"),
        ..WalkOptions::default()
    };
    let mut trees = Vec::new();
    let mut found = 0_usize;
    for entry in ctx.repo.walk(&walk) {
        let path = match entry {
            Ok(path) => path,
            Err(err) => {
                output.errors.push(err);
                continue;
            }
        };
        let relative = ctx.repo.relative(&path);
        if exclude.is_match(&relative) {
            tracing::debug!(lockfile = %relative, "excluded by the policy");
            continue;
        }
        found += 1;
        let parsed = ctx
            .repo
            .read_to_string(&relative)
            .and_then(|text| LockedTree::parse(&relative, &path, &text));
        match parsed {
            Ok(tree) => {
                if !tree.dangling.is_empty() {
                    output.errors.push(GateError::Parse {
                        path: path.clone(),
                        line: None,
                        message: format!(
                            "dependencies without a `[[package]]` entry: {}",
                            tree.dangling.join(", ")
                        ),
                        help: "the file is truncated or was edited by hand; restore it from \
                               version control or regenerate it with `cargo generate-lockfile`"
                            .to_owned(),
                    });
                }
                tracing::debug!(
                    lockfile = %relative,
                    format = lockfile::version_label(tree.lockfile.version),
                    packages = tree.packages().len(),
                    "parsed"
                );
                trees.push(tree);
            }
            Err(err) => output.errors.push(err),
        }
    }

    if found == 0 {
        return Err(GateError::Unavailable {
            what: "a Cargo.lock".to_owned(),
            message: format!(
                "no Cargo.lock under `{}` (files ignored by .gitignore, target/ and the policy's \
                 `exclude` are not read)",
                ctx.root().display()
            ),
            help: "commit the lockfile (`cargo generate-lockfile` writes one), or skip the sca \
                   gate in the policy if this is not a Rust project"
                .to_owned(),
        });
    }
    Ok(trees)
}

/// Opens (or fetches) the database and reports matching advisories.
async fn check_advisories(
    ctx: &GateContext,
    options: &ScaOptions,
    trees: &[LockedTree],
    output: &mut GateOutput,
) {
    let location = match advisories::locate(ctx, options) {
        Ok(location) => location,
        Err(err) => {
            output.errors.push(err);
            return;
        }
    };
    if let DbLocation::Default(path) = &location
        && !ctx.settings.offline
    {
        let path = path.clone();
        let fetched = tokio::task::spawn_blocking(move || advisories::fetch_default(&path)).await;
        let fetched = fetched.unwrap_or_else(|err| {
            Err(GateError::Other {
                message: format!("fetching the advisory database crashed: {err}"),
            })
        });
        if let Err(err) = fetched {
            output.errors.push(err);
            return;
        }
    }
    let crates_dir = match advisories::open(&location) {
        Ok(dir) => dir,
        Err(err) => {
            output.errors.push(err);
            return;
        }
    };
    if let Some(age) = advisories::age_days(location.path(), ctx.settings.today)
        && age > i64::from(options.stale_days)
    {
        output.warnings.push(format!(
            "the advisory database at `{}` is {age} days old (more than the policy's stale-days \
             = {}); newer advisories are missing: update it (`cargo audit fetch`, or run \
             without --offline)",
            location.path().display(),
            options.stale_days
        ));
    }

    let names: BTreeSet<String> = trees
        .iter()
        .flat_map(|tree| tree.packages().iter())
        .filter(|package| advisories::is_crates_io(package))
        .map(|package| package.name.to_string())
        .collect();
    let (loaded, errors) = advisories::load(&crates_dir, &names);
    output.errors.extend(errors);
    output.stat(
        "advisories_loaded",
        loaded.values().map(Vec::len).sum::<usize>() as u64,
    );

    let mut vulnerabilities = 0_u64;
    let mut informational = 0_u64;
    for tree in trees {
        for finding in advisories::findings(tree, &loaded, options) {
            let is_vulnerability = matches!(
                &finding.payload,
                crate::finding::Payload::Package(p) if p.kind == "vulnerability"
            );
            if is_vulnerability {
                vulnerabilities += 1;
            } else {
                informational += 1;
            }
            output.findings.push(finding);
        }
    }
    output.stat("vulnerabilities", vulnerabilities);
    output.stat("informational", informational);
}

/// Reports yanked crates when online; offline, says the check was skipped.
async fn check_yanked(
    ctx: &GateContext,
    options: &ScaOptions,
    trees: &[LockedTree],
    output: &mut GateOutput,
) {
    if ctx.settings.offline {
        output.warnings.push(
            "yanked crates were not checked: that needs the crates.io index and the run is \
             offline (set `yanked = false` in `[gates.sca]` to turn the check off)"
                .to_owned(),
        );
        return;
    }
    let packages = yanked::packages(trees);
    let result = tokio::task::spawn_blocking(move || yanked::query(&packages))
        .await
        .unwrap_or_else(|err| {
            Err(GateError::Other {
                message: format!("the yanked-crate check crashed: {err}"),
            })
        });
    match result {
        Ok((names, unchecked)) => {
            if unchecked > 0 {
                output.warnings.push(format!(
                    "{unchecked} crate(s) could not be checked for yanked versions (not found in the crates.io index)"
                ));
            }
            let findings = yanked::findings(trees, &names, options.informational_severity);
            output.stat("yanked", findings.len() as u64);
            output.findings.extend(findings);
        }
        Err(err) => output.errors.push(err),
    }
}

/// The timeout for `cargo metadata`.
fn metadata_timeout(options: &ScaOptions) -> Duration {
    Duration::from_secs(options.timeout_seconds)
}
