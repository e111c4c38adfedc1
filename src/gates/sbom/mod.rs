//! The sbom gate: a CycloneDX 1.5 JSON SBOM per Cargo workspace, returned
//! as an artifact that the pipeline writes into `--out`.
//!
//! For each workspace the gate parses `Cargo.lock` (checksums, and a precise
//! error when it is corrupt), runs `cargo metadata --locked` (the resolved
//! graph, licences, sources), keeps what ships or builds it
//! ([`graph`]), and writes the document ([`document`]). It never writes into
//! the scanned repository: `--locked` stops cargo from touching the lockfile,
//! and the SBOM goes to the pipeline, not next to the manifest.
//!
//! The gate produces no findings: its product is the SBOM. It errors (fail
//! closed) when a workspace cannot be described.

mod document;
mod graph;
mod lockfile;

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use cargo_metadata::Metadata;
use serde::Deserialize;

use crate::gate::{Artifact, Gate, GateContext, GateError, GateOutput, Needs};
use crate::process::Invocation;

use self::lockfile::LockedPackages;

const GATE: &str = "sbom";

/// The media type of CycloneDX JSON, as registered with IANA.
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// `[gates.sbom]` in the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SbomOptions {
    /// Folders of the workspaces to describe, relative to the repository
    /// root; one SBOM each.
    #[serde(default = "default_workspaces")]
    pub workspaces: Vec<String>,
    /// `all` to describe the dependencies of every platform, or a target
    /// triple (`x86_64-unknown-linux-gnu`) for that platform only.
    #[serde(default = "default_target")]
    pub target: String,
    /// Features to enable, as `cargo metadata --features`.
    #[serde(default)]
    pub features: Vec<String>,
    /// `cargo metadata --all-features`.
    #[serde(default)]
    pub all_features: bool,
    /// `cargo metadata --no-default-features`.
    #[serde(default)]
    pub no_default_features: bool,
    /// List build-only dependencies, with scope `excluded`. When false they
    /// are left out.
    #[serde(default = "yes")]
    pub build_dependencies: bool,
    /// Read this `cargo metadata --format-version 1` output (relative to
    /// each workspace folder) instead of running cargo: for inputs whose
    /// crates cannot be fetched. `Cargo.lock` is still read and must agree.
    #[serde(default)]
    pub metadata_file: Option<String>,
    /// Stop `cargo metadata` if it runs longer than this.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

impl Default for SbomOptions {
    fn default() -> Self {
        SbomOptions {
            workspaces: default_workspaces(),
            target: default_target(),
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            build_dependencies: true,
            metadata_file: None,
            timeout_seconds: default_timeout(),
        }
    }
}

fn default_workspaces() -> Vec<String> {
    vec![".".to_owned()]
}

fn default_target() -> String {
    "all".to_owned()
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    10 * 60
}

/// A CycloneDX SBOM of each workspace.
#[derive(Debug)]
pub struct Sbom;

#[async_trait]
impl Gate for Sbom {
    fn id(&self) -> &'static str {
        GATE
    }

    fn description(&self) -> &'static str {
        "a CycloneDX 1.5 JSON SBOM of each workspace: purls, lockfile checksums, licences, scopes and the dependency graph"
    }

    fn docs(&self) -> &'static str {
        "docs/gates/sbom.md"
    }

    fn needs(&self) -> Needs {
        Needs {
            tools: &["cargo"],
            network: true,
        }
    }

    async fn run(&self, ctx: &GateContext) -> Result<GateOutput, GateError> {
        let options = &ctx.policy.gates.sbom;
        let mut output = GateOutput::default();
        let mut names = std::collections::BTreeSet::new();
        if options.workspaces.is_empty() {
            return Err(GateError::Other {
                message: "`[gates.sbom] workspaces` is empty, so there is nothing to describe; \
                          list at least one workspace folder (`.` for the root) or skip the \
                          sbom gate in the policy"
                    .to_owned(),
            });
        }

        for workspace in &options.workspaces {
            // `.` and `./x` name the root and `x`: join without the `.` so
            // messages show `/repo/Cargo.lock`, not `/repo/./Cargo.lock`.
            let workspace: PathBuf = Path::new(workspace)
                .components()
                .filter(|c| *c != Component::CurDir)
                .collect();
            let workspace = workspace.to_string_lossy().into_owned();
            let sbom = match describe(ctx, options, &workspace).await {
                Ok(sbom) => sbom,
                Err(err) => {
                    output.errors.push(err);
                    continue;
                }
            };
            if !sbom.registry_without_hash.is_empty() {
                output.warnings.push(format!(
                    "{} registry packages of workspace `{}` have no checksum in its \
                     Cargo.lock, so their components carry no hash: {}",
                    sbom.registry_without_hash.len(),
                    if workspace.is_empty() {
                        "."
                    } else {
                        &workspace
                    },
                    sbom.registry_without_hash.join(", ")
                ));
            }
            for (stat, value) in [
                ("components", sbom.components),
                ("required", sbom.required),
                ("excluded", sbom.excluded),
                ("hashed", sbom.hashed),
            ] {
                let total = output.stats.get(stat).copied().unwrap_or(0);
                output.stat(stat, total + value);
            }
            output.artifacts.push(Artifact {
                name: artifact_name(&sbom.name, &workspace, &mut names),
                media_type: MEDIA_TYPE,
                bytes: sbom.bytes,
            });
        }
        output.stat("workspaces", output.artifacts.len() as u64);
        Ok(output)
    }
}

/// The SBOM of one workspace.
async fn describe(
    ctx: &GateContext,
    options: &SbomOptions,
    workspace: &str,
) -> Result<document::Document, GateError> {
    let dir = ctx.repo.path(workspace)?;
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(GateError::Unavailable {
            what: "a Cargo workspace".to_owned(),
            message: format!("no Cargo.toml at `{}`", dir.display()),
            help: "point --root at a Rust project, or list the workspace folders in \
                   `[gates.sbom] workspaces`"
                .to_owned(),
        });
    }

    let locked = read_lockfile(ctx, workspace)?;
    let metadata = match &options.metadata_file {
        Some(file) => read_metadata_file(ctx, &Path::new(workspace).join(file))?,
        None => run_cargo_metadata(ctx, options, &dir, &manifest).await?,
    };
    tracing::debug!(packages = metadata.packages.len(), "read cargo metadata");

    let metadata_path = describe_metadata_source(options, &dir);
    let selection = graph::select(&metadata, options.build_dependencies).map_err(|message| {
        GateError::Parse {
            path: metadata_path.clone(),
            line: None,
            message,
            help: "run `cargo metadata --format-version 1 --locked` yourself to see what \
                   cargo reports"
                .to_owned(),
        }
    })?;
    check_agreement(&metadata, &selection, &locked, &dir, &metadata_path)?;

    let timestamp = timestamp(ctx)?;
    let input = document::Input {
        metadata: &metadata,
        selection: &selection,
        locked: &locked,
        timestamp,
        target: &options.target,
    };
    document::build(&input).map_err(|message| GateError::Other { message })
}

/// Reads and parses `Cargo.lock`, which an SBOM cannot do without: it pins
/// the versions and carries the checksums.
fn read_lockfile(ctx: &GateContext, workspace: &str) -> Result<LockedPackages, GateError> {
    let relative = Path::new(workspace).join("Cargo.lock");
    let path = ctx.repo.path(&relative)?;
    if !path.exists() {
        return Err(GateError::Unavailable {
            what: "Cargo.lock".to_owned(),
            message: format!("`{}` does not exist", path.display()),
            help:
                "an SBOM describes the locked dependency versions: run `cargo generate-lockfile` \
                   and commit Cargo.lock; `[gates.sbom] workspaces` lists workspace roots, the folders \
                 that hold Cargo.lock"
                    .to_owned(),
        });
    }
    let text = ctx.repo.read_to_string(&relative)?;
    LockedPackages::parse(&text, &path)
}

/// Runs `cargo metadata --locked` in the workspace and parses its output.
async fn run_cargo_metadata(
    ctx: &GateContext,
    options: &SbomOptions,
    dir: &Path,
    manifest: &Path,
) -> Result<Metadata, GateError> {
    let mut invocation = Invocation::new("cargo", dir)
        .args(["metadata", "--format-version", "1", "--locked"])
        .arg("--manifest-path")
        .arg(manifest)
        .timeout(Duration::from_secs(options.timeout_seconds));
    if ctx.settings.offline {
        invocation = invocation.arg("--offline");
    }
    if options.target != "all" {
        invocation = invocation.args(["--filter-platform", options.target.as_str()]);
    }
    if options.all_features {
        invocation = invocation.arg("--all-features");
    }
    if options.no_default_features {
        invocation = invocation.arg("--no-default-features");
    }
    if !options.features.is_empty() {
        invocation = invocation.args(["--features".to_owned(), options.features.join(",")]);
    }

    let result = ctx.runner.run(invocation).await?;
    if !result.success() {
        let stderr = result.stderr_lossy();
        return Err(GateError::Tool {
            tool: "cargo metadata".to_owned(),
            message: cargo_error(&stderr),
            help: cargo_help(&stderr, dir),
        });
    }
    serde_json::from_slice(&result.stdout).map_err(|err| GateError::Tool {
        tool: "cargo metadata".to_owned(),
        message: format!("its output is not the JSON expected: {err}"),
        help: "check that `cargo` is a recent release (1.77 or later)".to_owned(),
    })
}

/// Cargo's error without its progress lines (`Updating`, `Downloading`) and
/// without its own `help:` lines, which suggest dropping `--locked`: the
/// gate gives its own help instead.
fn cargo_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("error"))
        .filter(|line| !line.trim().is_empty() && !line.starts_with("help:"))
        .take(20)
        .collect();
    if lines.is_empty() {
        stderr.trim().to_owned()
    } else {
        lines.join("\n")
    }
}

fn cargo_help(stderr: &str, dir: &Path) -> String {
    if stderr.contains("--locked") {
        "Cargo.lock does not match Cargo.toml (out of date or truncated): run `cargo update \
         --workspace`, review and commit Cargo.lock"
            .to_owned()
    } else if stderr.contains("--offline") || stderr.contains("download") {
        "cargo could not fetch a dependency: run once with network access, or `cargo fetch` \
         first"
            .to_owned()
    } else {
        format!(
            "run `cargo metadata --format-version 1 --locked` in `{}` to see the problem",
            dir.display()
        )
    }
}

/// Reads pre-computed `cargo metadata` output named by `metadata-file`.
fn read_metadata_file(ctx: &GateContext, relative: &Path) -> Result<Metadata, GateError> {
    let path = ctx.repo.path(relative)?;
    let text = ctx.repo.read_to_string(relative)?;
    serde_json::from_str(&text).map_err(|err| {
        // serde_json ends its message with the position, which `line`
        // already carries.
        let message = err.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(before, _)| before)
            .to_owned();
        GateError::Parse {
            path,
            line: u32::try_from(err.line()).ok().filter(|&line| line > 0),
            message,
            help: "`metadata-file` must hold the output of `cargo metadata --format-version 1`"
                .to_owned(),
        }
    })
}

/// The file or command the metadata came from, for error messages.
fn describe_metadata_source(options: &SbomOptions, dir: &Path) -> PathBuf {
    match &options.metadata_file {
        Some(file) => dir.join(file),
        None => dir.join("Cargo.toml"),
    }
}

/// Every selected package from a registry or git must be in `Cargo.lock`:
/// `--locked` guarantees it when cargo ran, and a stale `metadata-file`
/// would otherwise describe dependencies the repository no longer has.
fn check_agreement(
    metadata: &Metadata,
    selection: &graph::Selection,
    locked: &LockedPackages,
    dir: &Path,
    metadata_path: &Path,
) -> Result<(), GateError> {
    let missing: Vec<String> = metadata
        .packages
        .iter()
        .filter(|package| package.source.is_some() && selection.scopes.contains_key(&package.id))
        .filter(|package| !locked.contains(&package.name, &package.version.to_string()))
        .map(|package| format!("{} {}", package.name, package.version))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(GateError::Parse {
        path: metadata_path.to_owned(),
        line: None,
        message: format!(
            "the metadata names packages that `{}` does not lock: {}",
            dir.join("Cargo.lock").display(),
            missing.join(", ")
        ),
        help: "regenerate the metadata file with `cargo metadata --format-version 1 --locked`"
            .to_owned(),
    })
}

/// `SOURCE_DATE_EPOCH` when given (reproducible builds), else now.
fn timestamp(ctx: &GateContext) -> Result<jiff::Timestamp, GateError> {
    let Some(epoch) = ctx.settings.source_date_epoch else {
        return Ok(jiff::Timestamp::now());
    };
    jiff::Timestamp::from_second(epoch).map_err(|err| GateError::Other {
        message: format!("SOURCE_DATE_EPOCH `{epoch}` is not a usable time: {err}"),
    })
}

/// `sbom/<name>.cdx.json`, with the workspace folder added when two
/// workspaces share a name.
fn artifact_name(
    name: &str,
    workspace: &str,
    taken: &mut std::collections::BTreeSet<String>,
) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut stem = clean(name);
    if taken.contains(&stem) {
        stem = format!("{stem}-{}", clean(workspace.trim_matches('/')));
    }
    while taken.contains(&stem) {
        stem.push('_');
    }
    taken.insert(stem.clone());
    format!("sbom/{stem}.cdx.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_are_unique_and_safe() {
        let mut taken = std::collections::BTreeSet::new();
        assert_eq!(artifact_name("app", ".", &mut taken), "sbom/app.cdx.json");
        assert_eq!(
            artifact_name("app", "tools/app", &mut taken),
            "sbom/app-tools_app.cdx.json"
        );
        assert_eq!(
            artifact_name("a/b c", "x", &mut taken),
            "sbom/a_b_c.cdx.json"
        );
    }

    #[test]
    fn cargo_error_skips_progress_lines() {
        let stderr = "    Updating crates.io index\nerror: failed to parse lock file at: /x/Cargo.lock\n\nCaused by:\n  TOML parse error at line 3\n";
        assert_eq!(
            cargo_error(stderr),
            "error: failed to parse lock file at: /x/Cargo.lock\nCaused by:\n  TOML parse error at line 3"
        );
    }
}
