//! Turns a selected dependency graph into a CycloneDX 1.5 JSON document.
//!
//! Follows the CycloneDX 1.5 JSON specification
//! (<https://cyclonedx.org/docs/1.5/json/>) through the `cyclonedx-bom`
//! model, which writes 1.3 to 1.5:
//!
//! - `metadata.component` is the workspace: its root package when the root
//!   manifest has one, otherwise a component named after the workspace
//!   folder that depends on every member;
//! - `components` holds every other selected package, sorted by name,
//!   version and bom-ref, each with its purl (also its bom-ref), the
//!   SHA-256 checksum from `Cargo.lock`, its licence and its `scope`;
//! - `dependencies` has one entry per component, `dependsOn` sorted;
//! - with `SOURCE_DATE_EPOCH` the timestamp is that instant and the
//!   `serialNumber` is derived from the rest of the document, so the same
//!   input gives the same bytes.
//!
//! Purls follow the purl specification's `cargo` type
//! (<https://github.com/package-url/purl-spec/blob/main/types-doc/cargo-definition.md>):
//! `vcs_url` for git sources in the SPDX download-location form
//! `git+https://host/path@commit` (case 011), `repository_url` for
//! registries other than crates.io and `download_url=file://<dir>` for path
//! packages, the folder relative to the workspace root so the document does
//! not depend on where the checkout lives.

use std::collections::{BTreeMap, BTreeSet};

use cargo_metadata::camino::{Utf8Component, Utf8Path};
use cargo_metadata::{Metadata, Package, PackageId, TargetKind};
use cyclonedx_bom::external_models::date_time::DateTime;
use cyclonedx_bom::external_models::normalized_string::NormalizedString;
use cyclonedx_bom::external_models::spdx::SpdxExpression;
use cyclonedx_bom::external_models::uri::{Purl, Uri};
use cyclonedx_bom::models::bom::{Bom, SpecVersion, UrnUuid};
use cyclonedx_bom::models::component::{self, Classification, Component, Components};
use cyclonedx_bom::models::dependency::{Dependencies, Dependency};
use cyclonedx_bom::models::external_reference::{
    ExternalReference, ExternalReferenceType, ExternalReferences,
};
use cyclonedx_bom::models::hash::{Hash, HashAlgorithm, HashValue, Hashes};
use cyclonedx_bom::models::license::{License, LicenseChoice, Licenses};
use cyclonedx_bom::models::metadata::Metadata as BomMetadata;
use cyclonedx_bom::models::property::{Properties, Property};
use cyclonedx_bom::models::tool::Tools;
use cyclonedx_bom::validation::Validate;
use purl::GenericPurlBuilder;
use sha2::{Digest, Sha256};

use super::graph::{Scope, Selection};
use super::lockfile::LockedPackages;

/// The crates.io index as `cargo metadata` spells every crates.io source,
/// whichever protocol fetched it.
const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";
const CRATES_IO_SPARSE: &str = "sparse+https://index.crates.io/";

/// Everything one SBOM is made from.
#[derive(Debug)]
pub(crate) struct Input<'a> {
    pub(crate) metadata: &'a Metadata,
    pub(crate) selection: &'a Selection,
    pub(crate) locked: &'a LockedPackages,
    /// `metadata.timestamp`: `SOURCE_DATE_EPOCH` when set.
    pub(crate) timestamp: jiff::Timestamp,
    /// `all` or the target triple the graph was filtered for.
    pub(crate) target: &'a str,
}

/// A finished SBOM and what it contains.
#[derive(Debug)]
pub(crate) struct Document {
    /// The workspace's name: its root package, else its folder.
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) components: u64,
    pub(crate) required: u64,
    pub(crate) excluded: u64,
    pub(crate) hashed: u64,
    /// Registry packages whose checksum the lockfile does not have.
    pub(crate) registry_without_hash: Vec<String>,
}

/// Builds the CycloneDX document. An `Err` is a message about input we
/// could not describe (a package the graph names but the metadata lacks).
pub(crate) fn build(input: &Input<'_>) -> Result<Document, String> {
    let packages: BTreeMap<&PackageId, &Package> = input
        .metadata
        .packages
        .iter()
        .map(|package| (&package.id, package))
        .collect();
    let workspace_root = input.metadata.workspace_root.as_path();

    // bom-refs are the purls: unique per name, version and source, and free
    // of the absolute paths that cargo's package ids carry.
    let mut refs: BTreeMap<&PackageId, String> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for id in input.selection.scopes.keys() {
        let package = packages.get(id).ok_or_else(|| {
            format!(
                "package `{}` is in the graph but not in the metadata",
                id.repr
            )
        })?;
        let purl = purl_for(package, workspace_root)?;
        if !seen.insert(purl.clone()) {
            return Err(format!(
                "two packages share the purl `{purl}`; this is a bug in Portcullis, please report it"
            ));
        }
        refs.insert(id, purl);
    }

    let members: BTreeSet<&PackageId> = input.metadata.workspace_members.iter().collect();
    let root = input
        .metadata
        .resolve
        .as_ref()
        .and_then(|resolve| resolve.root.as_ref())
        .filter(|id| members.contains(id));
    let name = match root.and_then(|id| packages.get(id)) {
        Some(package) => package.name.to_string(),
        None => workspace_root.file_name().unwrap_or("workspace").to_owned(),
    };

    let mut document = Document {
        name: name.clone(),
        bytes: Vec::new(),
        components: 0,
        required: 0,
        excluded: 0,
        hashed: 0,
        registry_without_hash: Vec::new(),
    };

    let mut components = Vec::new();
    let mut metadata_component = None;
    for (id, scope) in &input.selection.scopes {
        let package = packages[id];
        let is_member = members.contains(id);
        let mut component = component_for(package, &refs[id], input.locked, is_member);
        let has_hash = component.hashes.is_some();
        let from_registry = package
            .source
            .as_ref()
            .is_some_and(|s| s.repr.starts_with("registry+") || s.repr.starts_with("sparse+"));
        if has_hash {
            document.hashed += 1;
        } else if from_registry {
            document
                .registry_without_hash
                .push(format!("{} {}", package.name, package.version));
        }
        if root == Some(id) {
            metadata_component = Some(component);
            continue;
        }
        component.scope = Some(match scope {
            Scope::Required => component::Scope::Required,
            Scope::Excluded => component::Scope::Excluded,
        });
        match scope {
            Scope::Required => document.required += 1,
            Scope::Excluded => document.excluded += 1,
        }
        components.push(component);
    }
    components.sort_by(|a, b| {
        let key = |c: &Component| {
            let name: &str = c.name.as_ref();
            (
                name.to_owned(),
                version_of(c).map(str::to_owned),
                c.bom_ref.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    document.components = components.len() as u64;

    let mut dependencies: Vec<Dependency> = input
        .selection
        .edges
        .iter()
        .map(|(id, targets)| {
            let mut depends_on: Vec<String> = targets.iter().map(|t| refs[t].clone()).collect();
            depends_on.sort();
            Dependency {
                dependency_ref: refs[id].clone(),
                dependencies: depends_on,
            }
        })
        .collect();

    // A virtual workspace has no package to stand for it: describe the
    // workspace itself and let it depend on its members.
    let metadata_component = match metadata_component {
        Some(component) => component,
        None => {
            let bom_ref = format!("workspace:{name}");
            let mut members: Vec<String> = members.iter().map(|id| refs[id].clone()).collect();
            members.sort();
            dependencies.push(Dependency {
                dependency_ref: bom_ref.clone(),
                dependencies: members,
            });
            let mut component =
                Component::new(Classification::Application, &name, "", Some(bom_ref));
            component.version = None;
            component
        }
    };
    dependencies.sort_by(|a, b| a.dependency_ref.cmp(&b.dependency_ref));

    let timestamp = input.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut metadata = BomMetadata {
        timestamp: Some(DateTime::try_from(timestamp).map_err(|err| err.to_string())?),
        ..BomMetadata::default()
    };
    metadata.tools = Some(Tools::Object {
        services: None,
        components: Some(Components(vec![Component::new(
            Classification::Application,
            "portcullis",
            env!("CARGO_PKG_VERSION"),
            None,
        )])),
    });
    metadata.component = Some(metadata_component);
    // The property names cargo-cyclonedx registered in the CycloneDX
    // property taxonomy (`cdx:rustc`), so consumers read both alike.
    let target_property = match input.target {
        "all" => Property::new("cdx:rustc:sbom:target:all_targets", "true"),
        triple => Property::new("cdx:rustc:sbom:target:triple", triple),
    };
    metadata.properties = Some(Properties(vec![target_property]));

    let mut bom = Bom {
        serial_number: None,
        metadata: Some(metadata),
        components: Some(Components(components)),
        dependencies: Some(Dependencies(dependencies)),
        spec_version: SpecVersion::V1_5,
        ..Bom::default()
    };
    let validation = bom.validate_version(SpecVersion::V1_5);
    if validation.has_errors() {
        return Err(format!(
            "the generated SBOM is not valid CycloneDX 1.5 ({:?}); this is a bug in Portcullis, \
             please report it",
            validation.errors().collect::<Vec<_>>()
        ));
    }

    // The serial number is derived from everything else in the document
    // (timestamp included), so it changes whenever the content does and is
    // stable when it does not. RFC 9562 §5.8 (UUIDv8) is the form for such
    // custom, hash-based UUIDs.
    let unsigned = to_json(bom.clone())?;
    let digest = Sha256::digest(&unsigned);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let uuid = uuid::Builder::from_custom_bytes(bytes).into_uuid();
    bom.serial_number = Some(UrnUuid::from(uuid));
    document.bytes = to_json(bom)?;
    Ok(document)
}

fn version_of(component: &Component) -> Option<&str> {
    component.version.as_ref().map(|v| v.as_ref())
}

fn to_json(bom: Bom) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    bom.output_as_json_v1_5(&mut bytes)
        .map_err(|err| format!("could not write the SBOM as CycloneDX 1.5 JSON: {err}"))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// One package as a component, without its scope.
fn component_for(
    package: &Package,
    purl: &str,
    locked: &LockedPackages,
    is_member: bool,
) -> Component {
    let has_bin = package
        .targets
        .iter()
        .any(|target| target.kind.contains(&TargetKind::Bin));
    let classification = if is_member && has_bin {
        Classification::Application
    } else {
        Classification::Library
    };
    let version = package.version.to_string();
    let mut component = Component::new(
        classification,
        package.name.trim(),
        &version,
        Some(purl.to_owned()),
    );
    component.purl = purl.parse::<Purl>().ok();
    component.description = package.description.as_deref().map(NormalizedString::new);
    if !package.authors.is_empty() {
        component.author = Some(NormalizedString::new(&package.authors.join(", ")));
    }
    component.licenses = licenses_for(package);
    component.external_references = external_references_for(package);

    let source = package.source.as_ref().map_or("", |s| s.repr.as_str());
    if let Some(checksum) = locked.checksum(&package.name, &version, source) {
        component.hashes = Some(Hashes(vec![Hash {
            alg: HashAlgorithm::SHA_256,
            content: HashValue(checksum.to_owned()),
        }]));
    }
    component
}

/// The purl of a package; see the module docs for the qualifiers.
pub(crate) fn purl_for(package: &Package, workspace_root: &Utf8Path) -> Result<String, String> {
    let mut builder = GenericPurlBuilder::<String>::new("cargo".to_owned(), package.name.as_str())
        .with_version(package.version.to_string());
    let qualifier = match &package.source {
        Some(source) if source.repr == CRATES_IO || source.repr == CRATES_IO_SPARSE => None,
        Some(source) => match source.repr.split_once('+') {
            Some(("git", _)) => Some(("vcs_url", vcs_url(&source.repr))),
            Some(("registry" | "sparse", url)) => Some(("repository_url", url.to_owned())),
            _ => {
                return Err(format!(
                    "package `{} {}` has a source of a kind Portcullis does not know: `{}`",
                    package.name, package.version, source.repr
                ));
            }
        },
        None => {
            let dir = package
                .manifest_path
                .parent()
                .unwrap_or(package.manifest_path.as_path());
            let relative = relative_dir(dir, workspace_root);
            Some(("download_url", format!("file://{relative}")))
        }
    };
    if let Some((key, value)) = qualifier {
        builder = builder
            .with_qualifier(key, value)
            .map_err(|err| format!("could not build the purl of `{}`: {err}", package.name))?;
    }
    builder
        .build()
        .map(|purl| purl.to_string())
        .map_err(|err| format!("could not build the purl of `{}`: {err}", package.name))
}

/// `git+https://host/repo?branch=x#commit` → `git+https://host/repo@commit`,
/// the SPDX download-location form the purl spec asks `vcs_url` to use. The
/// query goes: the commit already names the code exactly.
fn vcs_url(source: &str) -> String {
    let (before_fragment, commit) = match source.split_once('#') {
        Some((before, commit)) => (before, Some(commit)),
        None => (source, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (before_fragment, None),
    };
    // Without a locked commit (metadata of an unlocked workspace), the
    // branch, tag or rev the manifest asked for is the best revision known.
    let revision = commit.or_else(|| {
        query?.split('&').find_map(|param| {
            param
                .strip_prefix("rev=")
                .or_else(|| param.strip_prefix("tag="))
                .or_else(|| param.strip_prefix("branch="))
        })
    });
    match revision {
        Some(revision) => format!("{base}@{revision}"),
        None => base.to_owned(),
    }
}

/// `dir` relative to `root` with `/` separators: `.` for the root itself,
/// `../x` for a path dependency outside the workspace.
fn relative_dir(dir: &Utf8Path, root: &Utf8Path) -> String {
    let dir_parts: Vec<Utf8Component<'_>> = dir.components().collect();
    let root_parts: Vec<Utf8Component<'_>> = root.components().collect();
    let common = dir_parts
        .iter()
        .zip(&root_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<&str> = vec![".."; root_parts.len() - common];
    parts.extend(dir_parts[common..].iter().map(|part| part.as_str()));
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// The `license` expression, as SPDX when it parses (leniently, so the
/// deprecated `MIT/Apache-2.0` becomes `MIT OR Apache-2.0`), else as a named
/// licence so that nothing the author wrote is lost.
fn licenses_for(package: &Package) -> Option<Licenses> {
    if let Some(expression) = &package.license {
        let choice = SpdxExpression::try_from(expression.clone())
            .or_else(|_| SpdxExpression::parse_lax(expression.clone()))
            .map(LicenseChoice::Expression)
            .unwrap_or_else(|_| LicenseChoice::License(License::named_license(expression)));
        return Some(Licenses(vec![choice]));
    }
    // NOTE: a `license-file` is named, not embedded: its text lives outside
    // the repository (in cargo's registry cache) and gates read only the
    // repository.
    let file = package.license_file.as_ref()?;
    let file_name = file.file_name().unwrap_or(file.as_str());
    Some(Licenses(vec![LicenseChoice::License(
        License::named_license(&format!("LicenseRef-file-{file_name}")),
    )]))
}

/// Documentation, homepage and repository links, plus the git repository of
/// a git source (case 011), when they are URLs.
fn external_references_for(package: &Package) -> Option<ExternalReferences> {
    let mut candidates: Vec<(ExternalReferenceType, String)> = Vec::new();
    if let Some(url) = &package.documentation {
        candidates.push((ExternalReferenceType::Documentation, url.clone()));
    }
    if let Some(url) = &package.homepage {
        candidates.push((ExternalReferenceType::Website, url.clone()));
    }
    if let Some(url) = &package.repository {
        candidates.push((ExternalReferenceType::Vcs, url.clone()));
    }
    if let Some(repository) = package
        .source
        .as_ref()
        .and_then(|source| source.repr.strip_prefix("git+"))
    {
        let url = repository
            .split(['?', '#'])
            .next()
            .unwrap_or(repository)
            .to_owned();
        candidates.push((ExternalReferenceType::Vcs, url));
    }

    let mut seen = BTreeSet::new();
    let references: Vec<ExternalReference> = candidates
        .into_iter()
        .filter(|(kind, url)| seen.insert((kind.to_string(), url.clone())))
        .filter_map(|(kind, url)| {
            let uri = Uri::try_from(url).ok()?;
            Some(ExternalReference::new(kind, uri))
        })
        .collect();
    (!references.is_empty()).then_some(ExternalReferences(references))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcs_url_uses_the_locked_commit_and_drops_the_query() {
        assert_eq!(
            vcs_url("git+https://github.com/example-org/itoa#28ef4e3d"),
            "git+https://github.com/example-org/itoa@28ef4e3d"
        );
        assert_eq!(
            vcs_url("git+https://host/repo?branch=fix%2Foverflow#abc123"),
            "git+https://host/repo@abc123"
        );
        assert_eq!(
            vcs_url("git+https://host/repo?tag=v1"),
            "git+https://host/repo@v1"
        );
    }

    #[test]
    fn relative_dirs_stay_inside_or_climb_out() {
        let root = Utf8Path::new("/w/ws");
        assert_eq!(relative_dir(Utf8Path::new("/w/ws"), root), ".");
        assert_eq!(
            relative_dir(Utf8Path::new("/w/ws/crates/a"), root),
            "crates/a"
        );
        assert_eq!(relative_dir(Utf8Path::new("/w/other"), root), "../other");
    }

    fn package(source: Option<&str>, license: Option<&str>, manifest: &str) -> Package {
        serde_json::from_value(serde_json::json!({
            "name": "demo", "version": "1.2.3", "id": "demo-id", "source": source,
            "license": license, "license_file": "LICENSE.txt", "dependencies": [],
            "targets": [], "features": {}, "manifest_path": manifest, "authors": [],
            "categories": [], "keywords": [], "edition": "2021", "metadata": null,
            "publish": null
        }))
        .expect("valid package")
    }

    #[test]
    fn purls_encode_the_source() {
        let root = Utf8Path::new("/w");
        let purl = |source| purl_for(&package(source, None, "/w/x/Cargo.toml"), root);
        assert_eq!(purl(Some(CRATES_IO)).as_deref(), Ok("pkg:cargo/demo@1.2.3"));
        assert_eq!(
            purl(Some("sparse+https://crates.example.com/index/")).as_deref(),
            Ok("pkg:cargo/demo@1.2.3?repository_url=https://crates.example.com/index/")
        );
        assert_eq!(
            purl(None).as_deref(),
            Ok("pkg:cargo/demo@1.2.3?download_url=file://x")
        );
        let outside = purl_for(&package(None, None, "/elsewhere/demo/Cargo.toml"), root);
        assert_eq!(
            outside.as_deref(),
            Ok("pkg:cargo/demo@1.2.3?download_url=file://../elsewhere/demo")
        );
        assert!(purl(Some("weird+thing")).is_err());
    }

    #[test]
    fn licences_are_spdx_when_they_parse_and_named_otherwise() {
        let licence = |expression| {
            let licenses = licenses_for(&package(None, expression, "/w/Cargo.toml"));
            match licenses.map(|l| l.0.into_iter().next()) {
                Some(Some(LicenseChoice::Expression(e))) => format!("expression {e}"),
                Some(Some(LicenseChoice::License(l))) => {
                    format!("license {:?}", l.license_identifier)
                }
                other => format!("{other:?}"),
            }
        };
        assert_eq!(
            licence(Some("MIT OR Apache-2.0")),
            "expression MIT OR Apache-2.0"
        );
        assert_eq!(
            licence(Some("MIT/Apache-2.0")),
            "expression MIT OR Apache-2.0"
        );
        assert!(licence(Some("Proprietary by ACME")).contains("Proprietary by ACME"));
        assert!(licence(None).contains("LicenseRef-file-LICENSE.txt"));
    }
}
