//! Which packages of a resolved workspace belong in its SBOM, with which
//! scope, and who depends on whom.
//!
//! The walk starts at every workspace member and follows the edges of
//! `cargo metadata`'s `resolve` graph:
//!
//! - dev-dependency edges are never followed: tests and benches do not ship,
//!   so a package reached only that way is absent (as in cargo-cyclonedx);
//! - a package reached through normal edges only is `required`;
//! - a package reached only through a build-dependency edge somewhere on
//!   every path (a build script's tools and their own dependencies) is
//!   `excluded`, the CycloneDX 1.5 scope for "not part of the shipped
//!   artifact" (CycloneDX/cyclonedx-rust-cargo#736, case 012).
//!
//! Edges are keyed by package id, never by `deps[].name`: that is the name of
//! the library target (`pkg_config`), not of the package (`pkg-config`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cargo_metadata::{DependencyKind, Metadata, Node, NodeDep, PackageId};

/// Whether a component ships in the built artifacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Linked into what the workspace builds.
    Required,
    /// Needed only to build it (build scripts, their dependencies).
    Excluded,
}

/// The part of the resolve graph the SBOM describes.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    /// Every package in the SBOM, workspace members included.
    pub(crate) scopes: BTreeMap<PackageId, Scope>,
    /// For each selected package, the selected packages it depends on.
    pub(crate) edges: BTreeMap<PackageId, BTreeSet<PackageId>>,
}

/// Walks the resolve graph of `metadata` from its workspace members.
/// `build_dependencies` false leaves build-only packages out entirely.
pub(crate) fn select(metadata: &Metadata, build_dependencies: bool) -> Result<Selection, String> {
    let Some(resolve) = &metadata.resolve else {
        return Err(
            "the metadata has no dependency graph (`resolve` is null); it must come \
                    from `cargo metadata` without `--no-deps`"
                .to_owned(),
        );
    };
    let nodes: BTreeMap<&PackageId, &Node> =
        resolve.nodes.iter().map(|node| (&node.id, node)).collect();
    let members: Vec<&PackageId> = metadata.workspace_members.iter().collect();
    if let Some(missing) = members.iter().find(|id| !nodes.contains_key(*id)) {
        return Err(format!(
            "workspace member `{}` is not in the dependency graph",
            missing.repr
        ));
    }

    let required = reachable(&members, &nodes, is_normal)?;
    let included = reachable(&members, &nodes, |dep| {
        is_normal(dep) || (build_dependencies && is_build(dep))
    })?;

    let mut selection = Selection::default();
    for id in &included {
        let scope = if required.contains(id) {
            Scope::Required
        } else {
            Scope::Excluded
        };
        selection.scopes.insert((*id).clone(), scope);
        let targets = nodes[id]
            .deps
            .iter()
            .filter(|dep| included.contains(&dep.pkg))
            .filter(|dep| is_normal(dep) || (build_dependencies && is_build(dep)))
            .map(|dep| dep.pkg.clone())
            .collect();
        selection.edges.insert((*id).clone(), targets);
    }
    Ok(selection)
}

/// Breadth-first walk from `roots` along the edges `follow` accepts.
fn reachable<'a>(
    roots: &[&'a PackageId],
    nodes: &BTreeMap<&'a PackageId, &'a Node>,
    follow: impl Fn(&NodeDep) -> bool,
) -> Result<BTreeSet<&'a PackageId>, String> {
    let mut seen: BTreeSet<&PackageId> = roots.iter().copied().collect();
    let mut queue: VecDeque<&PackageId> = roots.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        let node = nodes[id];
        for dep in node.deps.iter().filter(|dep| follow(dep)) {
            let Some((target, _)) = nodes.get_key_value(&dep.pkg) else {
                return Err(format!(
                    "`{}` depends on `{}`, which is not in the dependency graph",
                    id.repr, dep.pkg.repr
                ));
            };
            if seen.insert(target) {
                queue.push_back(target);
            }
        }
    }
    Ok(seen)
}

/// A normal (linked) dependency on some platform. Cargo before 1.41 gave no
/// kinds, and a kind this crate does not know is treated as normal too: the
/// SBOM must over-report rather than drop a shipped package.
fn is_normal(dep: &NodeDep) -> bool {
    dep.dep_kinds.is_empty()
        || dep
            .dep_kinds
            .iter()
            .any(|info| matches!(info.kind, DependencyKind::Normal | DependencyKind::Unknown))
}

fn is_build(dep: &NodeDep) -> bool {
    dep.dep_kinds
        .iter()
        .any(|info| info.kind == DependencyKind::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace `app` with: `itoa` normal and build, `cc` build only (which
    /// itself depends on `shlex`), `smallvec` dev only.
    fn metadata() -> Metadata {
        let node = |id: &str, deps: &[(&str, &[&str])]| {
            let kind = |k: &str| match k {
                "normal" => serde_json::Value::Null,
                other => other.into(),
            };
            let entries: Vec<serde_json::Value> = deps
                .iter()
                .map(|(pkg, kinds)| {
                    let kinds: Vec<serde_json::Value> = kinds
                        .iter()
                        .map(|k| serde_json::json!({"kind": kind(k), "target": null}))
                        .collect();
                    // The lib target name, as cargo spells it in `deps`.
                    let name = pkg.replace('-', "_");
                    serde_json::json!({"name": name, "pkg": pkg, "dep_kinds": kinds})
                })
                .collect();
            let ids: Vec<&str> = deps.iter().map(|(pkg, _)| *pkg).collect();
            serde_json::json!({"id": id, "deps": entries, "dependencies": ids, "features": []})
        };
        let package = |id: &str| {
            serde_json::json!({"name": id, "version": "1.0.0", "id": id, "source": null,
                "dependencies": [], "targets": [], "features": {}, "manifest_path": format!("/w/{id}/Cargo.toml"),
                "authors": [], "categories": [], "keywords": [], "edition": "2021", "metadata": null, "publish": null})
        };
        let ids = ["app", "itoa", "cc", "shlex", "smallvec"];
        let json = serde_json::json!({
            "packages": ids.iter().map(|id| package(id)).collect::<Vec<_>>(),
            "workspace_members": ["app"],
            "resolve": {"root": "app", "nodes": [
                node("app", &[("itoa", &["normal", "build"]), ("cc", &["build"]), ("smallvec", &["dev"])]),
                node("itoa", &[]),
                node("cc", &[("shlex", &["normal"])]),
                node("shlex", &[]),
                node("smallvec", &[]),
            ]},
            "workspace_root": "/w", "target_directory": "/w/target", "version": 1,
        });
        serde_json::from_value(json).expect("valid metadata")
    }

    fn scope_of(selection: &Selection, id: &str) -> Option<Scope> {
        selection
            .scopes
            .iter()
            .find(|(pkg, _)| pkg.repr == id)
            .map(|(_, scope)| *scope)
    }

    #[test]
    fn build_only_is_excluded_dev_only_is_absent() {
        let selection = select(&metadata(), true).expect("selects");
        assert_eq!(scope_of(&selection, "app"), Some(Scope::Required));
        assert_eq!(scope_of(&selection, "itoa"), Some(Scope::Required));
        assert_eq!(scope_of(&selection, "cc"), Some(Scope::Excluded));
        // Reached through a normal edge, but only from a build dependency.
        assert_eq!(scope_of(&selection, "shlex"), Some(Scope::Excluded));
        assert_eq!(scope_of(&selection, "smallvec"), None);
    }

    #[test]
    fn build_dependencies_can_be_left_out() {
        let selection = select(&metadata(), false).expect("selects");
        let ids: Vec<&str> = selection.scopes.keys().map(|id| id.repr.as_str()).collect();
        assert_eq!(ids, ["app", "itoa"]);
        let app_edges: Vec<&str> = selection.edges[&PackageId {
            repr: "app".to_owned(),
        }]
            .iter()
            .map(|id| id.repr.as_str())
            .collect();
        assert_eq!(app_edges, ["itoa"]);
    }

    #[test]
    fn missing_resolve_is_an_error() {
        let mut metadata = metadata();
        metadata.resolve = None;
        assert!(select(&metadata, true).is_err());
    }

    /// Any graph cargo could (or could not) produce: missing nodes, members
    /// that are not packages, unknown kinds, cycles, odd sources.
    fn arbitrary_metadata(
        sources: Vec<u8>,
        edges: Vec<(u8, u8, u8)>,
        members: Vec<u8>,
        dropped_node: Option<u8>,
    ) -> Option<Metadata> {
        let source = |pick: u8| match pick % 5 {
            0 => serde_json::Value::Null,
            1 => "registry+https://github.com/rust-lang/crates.io-index".into(),
            2 => "git+https://example.com/r?branch=a%2Fb#0123abc".into(),
            3 => "sparse+https://crates.example.com/index/".into(),
            _ => "weird-kind".into(),
        };
        let kinds = ["normal", "build", "dev", "future"];
        let packages: Vec<serde_json::Value> = sources
            .iter()
            .enumerate()
            .map(|(idx, pick)| {
                serde_json::json!({"name": format!("p{idx}"), "version": "1.0.0", "id": format!("id{idx}"),
                    "source": source(*pick), "dependencies": [], "targets": [], "features": {},
                    "manifest_path": format!("/w/p{idx}/Cargo.toml"), "license": "MIT/Apache-2.0",
                    "authors": [], "categories": [], "keywords": [], "edition": "2021",
                    "metadata": null, "publish": null})
            })
            .collect();
        let nodes: Vec<serde_json::Value> = (0..sources.len() as u8)
            .filter(|idx| Some(*idx) != dropped_node)
            .map(|idx| {
                let deps: Vec<serde_json::Value> = edges
                    .iter()
                    .filter(|(from, _, _)| *from == idx)
                    .map(|(_, to, kind)| {
                        let kind = match kinds[usize::from(*kind) % kinds.len()] {
                            "normal" => serde_json::Value::Null,
                            other => other.into(),
                        };
                        serde_json::json!({"name": format!("p{to}"), "pkg": format!("id{to}"),
                            "dep_kinds": [{"kind": kind, "target": null}]})
                    })
                    .collect();
                serde_json::json!({"id": format!("id{idx}"), "deps": deps, "dependencies": [], "features": []})
            })
            .collect();
        let members: Vec<String> = members.iter().map(|m| format!("id{m}")).collect();
        let json = serde_json::json!({
            "packages": packages, "workspace_members": members,
            "resolve": {"root": members.first(), "nodes": nodes},
            "workspace_root": "/w", "target_directory": "/w/target", "version": 1,
        });
        serde_json::from_value(json).ok()
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_graphs_never_panic_and_stay_consistent(
            sources in proptest::collection::vec(0u8..5, 1..7),
            edges in proptest::collection::vec((0u8..7, 0u8..8, 0u8..4), 0..14),
            members in proptest::collection::vec(0u8..8, 0..3),
            dropped_node in proptest::option::of(0u8..7),
            build_dependencies in proptest::bool::ANY,
        ) {
            let Some(metadata) = arbitrary_metadata(sources, edges, members, dropped_node) else {
                return Ok(());
            };
            let Ok(selection) = select(&metadata, build_dependencies) else {
                return Ok(());
            };
            let locked = super::super::lockfile::LockedPackages::default();
            let input = super::super::document::Input {
                metadata: &metadata,
                selection: &selection,
                locked: &locked,
                timestamp: jiff::Timestamp::UNIX_EPOCH,
                target: "all",
            };
            let Ok(document) = super::super::document::build(&input) else {
                return Ok(());
            };
            let sbom: serde_json::Value = serde_json::from_slice(&document.bytes).expect("JSON");
            let mut refs: BTreeSet<&str> = sbom["components"]
                .as_array()
                .expect("components")
                .iter()
                .filter_map(|c| c["bom-ref"].as_str())
                .collect();
            refs.extend(sbom["metadata"]["component"]["bom-ref"].as_str());
            for dependency in sbom["dependencies"].as_array().expect("dependencies") {
                let from = dependency["ref"].as_str().expect("ref");
                proptest::prop_assert!(refs.contains(from), "{from} not a component");
                for to in dependency["dependsOn"].as_array().into_iter().flatten() {
                    let to = to.as_str().expect("ref");
                    proptest::prop_assert!(refs.contains(to), "{to} not a component");
                }
            }
        }
    }
}
