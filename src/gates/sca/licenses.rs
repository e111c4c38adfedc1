//! The licence policy: every package's SPDX licence expression, evaluated
//! as an expression against an allow-list, in the spirit of cargo-deny's
//! `[licenses]`.
//!
//! Licences are not in `Cargo.lock`, so they come from `cargo metadata
//! --format-version 1 --locked` (with `--offline` when the run is offline):
//! `--locked` makes cargo fail rather than rewrite the lockfile, so nothing
//! in the scanned repository changes.
//!
//! Expressions are parsed in lax mode, as crates.io accepts them: `GPL-2.0+`
//! is read as `GPL-2.0-or-later` and `/` as `OR` (cargo-deny issue 498 made
//! a whole `Apache-2.0 OR GPL-2.0+` crate "unlicensed" by parsing strictly).
//! `MIT OR Apache-2.0` passes when either licence is allowed.

use std::path::Path;

use serde::{Deserialize, Deserializer};

use crate::finding::{Finding, Location, PackagePolicyPayload, Payload, Severity};
use crate::gate::{GateContext, GateError, GateOutput};
use crate::process::Invocation;

use super::lockfile::LockedTree;
use super::{GATE, ScaOptions, metadata_timeout};

/// `[gates.sca.licenses]` in the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LicenseOptions {
    /// Licences any package may use, as SPDX identifiers (`MIT`,
    /// `Apache-2.0`, `Apache-2.0 WITH LLVM-exception`).
    pub allow: Vec<AllowedLicense>,
    /// Extra licences allowed for one package only.
    #[serde(default)]
    pub exceptions: Vec<LicenseException>,
    /// The severity of a violation.
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

/// Extra licences for one package.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LicenseException {
    /// The package name.
    pub name: String,
    pub allow: Vec<AllowedLicense>,
}

/// One allowed licence, checked when the policy loads so a typo names its
/// line.
#[derive(Debug, Clone)]
pub struct AllowedLicense(spdx::Licensee);

impl<'de> Deserialize<'de> for AllowedLicense {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        spdx::Licensee::parse(&text)
            .map(AllowedLicense)
            .map_err(|err| {
                serde::de::Error::custom(format!(
                    "`{text}` is not an SPDX licence identifier: {}",
                    err.reason
                ))
            })
    }
}

fn default_severity() -> Severity {
    Severity::High
}

/// What `cargo metadata` says about one package; only the fields we read.
#[derive(Debug, Deserialize)]
struct MetadataPackage {
    name: String,
    version: String,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    license_file: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    packages: Vec<MetadataPackage>,
}

/// Runs `cargo metadata` for each lockfile's workspace and judges every
/// package's licence.
pub(crate) async fn check(
    ctx: &GateContext,
    options: &ScaOptions,
    licenses: &LicenseOptions,
    trees: &[LockedTree],
    output: &mut GateOutput,
) {
    let mut checked = 0_u64;
    for tree in trees {
        let Ok(lockfile) = ctx.repo.path(&tree.path) else {
            continue;
        };
        let Some(dir) = lockfile.parent() else {
            continue;
        };
        match metadata(ctx, options, dir).await {
            Ok(packages) => {
                checked += packages.len() as u64;
                for package in &packages {
                    if let Some(finding) = judge(tree, package, licenses) {
                        output.findings.push(finding);
                    }
                }
            }
            Err(err) => output.errors.push(err),
        }
    }
    output.stat("licenses_checked", checked);
}

async fn metadata(
    ctx: &GateContext,
    options: &ScaOptions,
    dir: &Path,
) -> Result<Vec<MetadataPackage>, GateError> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(GateError::Unavailable {
            what: "licence data".to_owned(),
            message: format!(
                "`{}` has no Cargo.toml beside it, so `cargo metadata` cannot list licences",
                dir.join("Cargo.lock").display()
            ),
            help: "exclude this lockfile with `exclude` in `[gates.sca]`, or turn the licence \
                   policy off"
                .to_owned(),
        });
    }
    let mut invocation = Invocation::new("cargo", dir)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(manifest.as_os_str())
        .timeout(metadata_timeout(options));
    if ctx.settings.offline {
        invocation = invocation.arg("--offline");
    }
    let result = ctx.runner.run(invocation).await?;
    if !result.success() {
        let stderr = result.stderr_lossy();
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(6)..].join("\n");
        return Err(GateError::Tool {
            tool: "cargo metadata".to_owned(),
            message: format!(
                "could not list the packages of `{}`: {tail}",
                manifest.display()
            ),
            help: "run `cargo metadata --format-version 1 --locked` there to see the problem; \
                   offline, the crates must already be in cargo's cache (`cargo fetch`)"
                .to_owned(),
        });
    }
    let metadata: Metadata =
        serde_json::from_slice(&result.stdout).map_err(|err| GateError::Tool {
            tool: "cargo metadata".to_owned(),
            message: format!("printed output that is not the expected JSON: {err}"),
            help: "this is probably a bug in Portcullis or an unsupported cargo; please report it"
                .to_owned(),
        })?;
    Ok(metadata.packages)
}

/// The finding for one package, if its licence breaks the policy.
fn judge(
    tree: &LockedTree,
    package: &MetadataPackage,
    licenses: &LicenseOptions,
) -> Option<Finding> {
    let allowed: Vec<&spdx::Licensee> = licenses
        .allow
        .iter()
        .chain(
            licenses
                .exceptions
                .iter()
                .filter(|e| e.name == package.name)
                .flat_map(|e| e.allow.iter()),
        )
        .map(|a| &a.0)
        .collect();

    let (rule, message, subject) = match package.license.as_deref().map(str::trim) {
        None | Some("") => {
            let why = match &package.license_file {
                Some(file) => format!(
                    "has only a licence file (`{file}`), no SPDX expression, so its licence cannot be judged"
                ),
                None => "declares no licence".to_owned(),
            };
            (
                "license-missing",
                format!("{} {} {why}", package.name, package.version),
                package.license_file.clone().unwrap_or_default(),
            )
        }
        Some(text) => {
            let expression = match spdx::Expression::parse_mode(text, spdx::ParseMode::LAX) {
                Ok(expression) => expression,
                Err(err) => {
                    return Some(build(
                        tree,
                        package,
                        licenses.severity,
                        "license-unparsable",
                        format!(
                            "{} {}: licence `{text}` is not a valid SPDX expression: {}",
                            package.name, package.version, err.reason
                        ),
                        text,
                    ));
                }
            };
            let verdict = expression.evaluate_with_failures(|req| {
                allowed.iter().any(|licensee| licensee.satisfies(req))
            });
            let Err(failures) = verdict else {
                return None;
            };
            let failed: Vec<String> = failures.iter().map(|f| f.req.to_string()).collect();
            (
                "license-not-allowed",
                format!(
                    "{} {}: licence `{text}` is not allowed: {} not in the allow list",
                    package.name,
                    package.version,
                    failed
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                text.to_owned(),
            )
        }
    };
    Some(build(
        tree,
        package,
        licenses.severity,
        rule,
        message,
        &subject,
    ))
}

fn build(
    tree: &LockedTree,
    package: &MetadataPackage,
    severity: Severity,
    rule: &str,
    message: String,
    subject: &str,
) -> Finding {
    let line = tree
        .packages()
        .iter()
        .position(|p| p.name.as_str() == package.name && p.version.to_string() == package.version)
        .and_then(|idx| tree.lines[idx].name);
    let mut location = Location::file(tree.path.clone());
    if let Some(line) = line {
        location = location.with_lines(line, line);
    }
    let help = match rule {
        "license-missing" => format!(
            "set `license` in the Cargo.toml of `{}` if it is yours, or add an `exceptions` entry for it in `[gates.sca.licenses]` once you have read its licence",
            package.name
        ),
        "license-unparsable" => {
            "write the licence as an SPDX expression, e.g. `MIT OR Apache-2.0`".to_owned()
        }
        _ => format!(
            "replace `{}`, or allow the licence in `[gates.sca.licenses]` (`allow`, or an `exceptions` entry for this package) if your legal review accepts it",
            package.name
        ),
    };
    Finding::builder(GATE, rule, severity, message)
        .location(location)
        .help(help)
        .reference("https://spdx.org/licenses/")
        .evidence(format!("{} {} {subject}", package.name, package.version))
        .payload(Payload::PackagePolicy(PackagePolicyPayload {
            package: package.name.clone(),
            version: package.version.clone(),
            subject: subject.to_owned(),
        }))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(allow: &[&str]) -> LicenseOptions {
        LicenseOptions {
            allow: allow
                .iter()
                .map(|a| AllowedLicense(spdx::Licensee::parse(a).expect("licensee")))
                .collect(),
            exceptions: Vec::new(),
            severity: Severity::High,
        }
    }

    fn tree() -> LockedTree {
        LockedTree::parse(
            "Cargo.lock",
            Path::new("/r/Cargo.lock"),
            "version = 4\n\n[[package]]\nname = \"x\"\nversion = \"1.0.0\"\n",
        )
        .expect("lockfile")
    }

    fn package(license: Option<&str>) -> MetadataPackage {
        MetadataPackage {
            name: "x".to_owned(),
            version: "1.0.0".to_owned(),
            license: license.map(str::to_owned),
            license_file: None,
        }
    }

    #[test]
    fn or_expression_passes_when_either_side_is_allowed() {
        let policy = options(&["Apache-2.0", "MIT"]);
        assert!(judge(&tree(), &package(Some("MIT OR Apache-2.0")), &policy).is_none());
        assert!(judge(&tree(), &package(Some("Apache-2.0 OR GPL-2.0+")), &policy).is_none());
        assert!(judge(&tree(), &package(Some("MIT/Apache-2.0")), &policy).is_none());
    }

    #[test]
    fn gnu_plus_alone_is_not_allowed_rather_than_unlicensed() {
        let policy = options(&["Apache-2.0", "MIT"]);
        let finding = judge(&tree(), &package(Some("GPL-2.0+")), &policy).expect("violation");
        assert_eq!(finding.rule_id, "license-not-allowed");
        assert!(
            finding.message.contains("GPL-2.0-or-later"),
            "{}",
            finding.message
        );
        assert_eq!(finding.location.expect("location").start_line, Some(4));
    }

    #[test]
    fn and_expression_needs_both() {
        let policy = options(&["MIT"]);
        let finding =
            judge(&tree(), &package(Some("MIT AND BSD-3-Clause")), &policy).expect("violation");
        assert!(
            finding.message.contains("`BSD-3-Clause`"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn missing_and_unparsable_licences_have_their_own_rules() {
        let policy = options(&["MIT"]);
        let missing = judge(&tree(), &package(None), &policy).expect("missing");
        assert_eq!(missing.rule_id, "license-missing");
        let broken = judge(&tree(), &package(Some("MIT OR OR")), &policy).expect("broken");
        assert_eq!(broken.rule_id, "license-unparsable");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_expressions_never_panic(text in "\\PC{0,60}") {
            let policy = options(&["MIT"]);
            let _ = judge(&tree(), &package(Some(&text)), &policy);
        }
    }
}
