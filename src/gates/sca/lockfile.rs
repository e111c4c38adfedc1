//! Reading `Cargo.lock` files for the sca gate: parsing with `cargo-lock`,
//! the line of each `[[package]]` entry, and the dependency graph that gives
//! the path from a workspace member down to a vulnerable crate.
//!
//! `cargo-lock` gives no source positions, so a small line scanner finds the
//! `name = …` and `source = …` lines of each entry; a parse error is
//! re-located with the `toml` parser so the message names the line.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use rustsec::Lockfile;
use rustsec::SourceId;
use rustsec::cargo_lock::{Package, ResolveVersion};

use crate::gate::GateError;

/// The lockfile format versions this gate understands (Cargo writes v1 to
/// v4; v4 is the default since Cargo 1.83).
const KNOWN_VERSIONS: &[i64] = &[1, 2, 3, 4];

/// One parsed `Cargo.lock` with what the gate needs to report on it.
#[derive(Debug)]
pub(crate) struct LockedTree {
    /// The lockfile's path relative to the repository root, `/`-separated.
    pub(crate) path: String,
    pub(crate) lockfile: Lockfile,
    /// Per package (same index as `lockfile.packages`): where its entry is.
    pub(crate) lines: Vec<EntryLines>,
    /// Per package: the packages that depend on it.
    dependents: Vec<Vec<usize>>,
    /// Per package: whether it is a root of the graph (a workspace member,
    /// or another first-party package nothing depends on).
    is_root: Vec<bool>,
    /// Dependencies whose `[[package]]` entry is missing.
    pub(crate) dangling: Vec<String>,
}

/// The lines of one `[[package]]` entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EntryLines {
    /// The `name = …` line, where findings about the package point.
    pub(crate) name: Option<u32>,
    /// The `source = …` line, where source-policy findings point.
    pub(crate) source: Option<u32>,
}

impl LockedTree {
    /// Parses the text of a lockfile. `relative` names it in errors and
    /// findings; `absolute` is the path errors show.
    pub(crate) fn parse(relative: &str, absolute: &Path, text: &str) -> Result<Self, GateError> {
        check_version(absolute, text)?;
        let lockfile: Lockfile = text
            .parse()
            .map_err(|err: rustsec::cargo_lock::Error| parse_error(absolute, text, &err))?;

        let entries = scan_entries(text);
        let lines = lockfile
            .packages
            .iter()
            .map(|package| find_entry(&entries, package))
            .collect();

        let mut tree = LockedTree {
            path: relative.to_owned(),
            lockfile,
            lines,
            dependents: Vec::new(),
            is_root: Vec::new(),
            dangling: Vec::new(),
        };
        tree.link();
        Ok(tree)
    }

    pub(crate) fn packages(&self) -> &[Package] {
        &self.lockfile.packages
    }

    /// Fills in reverse edges and roots. A dependency without an entry is
    /// kept aside: Cargo never writes one, so the file is truncated or was
    /// edited by hand.
    fn link(&mut self) {
        let packages = &self.lockfile.packages;
        let mut by_name_version: HashMap<(&str, String), Vec<usize>> = HashMap::new();
        for (idx, package) in packages.iter().enumerate() {
            by_name_version
                .entry((package.name.as_str(), package.version.to_string()))
                .or_default()
                .push(idx);
        }

        let mut dependents = vec![Vec::new(); packages.len()];
        let mut depended_on = vec![false; packages.len()];
        let mut dangling = Vec::new();
        for (idx, package) in packages.iter().enumerate() {
            for dependency in &package.dependencies {
                let key = (dependency.name.as_str(), dependency.version.to_string());
                let candidates = by_name_version.get(&key).map_or(&[][..], Vec::as_slice);
                // Two entries with one name and version differ by source
                // (case 001: itoa from the registry and from a git fork);
                // the dependency then names its source.
                let target = match candidates {
                    [] => None,
                    [only] => Some(*only),
                    several => several
                        .iter()
                        .copied()
                        .find(|&c| packages[c].source == dependency.source)
                        .or_else(|| several.first().copied()),
                };
                match target {
                    Some(target) => {
                        dependents[target].push(idx);
                        depended_on[target] = true;
                    }
                    None => dangling.push(format!(
                        "`{} {}` (needed by `{} {}`)",
                        dependency.name, dependency.version, package.name, package.version
                    )),
                }
            }
        }

        let first_party: Vec<bool> = packages.iter().map(|p| p.source.is_none()).collect();
        let mut is_root: Vec<bool> = (0..packages.len())
            .map(|idx| first_party[idx] && !depended_on[idx])
            .collect();
        if !is_root.iter().any(|&r| r) {
            // A lockfile of a workspace whose members depend on each other
            // in a cycle, or a hand-made one without first-party packages:
            // every first-party package counts as a member, else every
            // package nothing depends on.
            is_root = first_party.clone();
            if !is_root.iter().any(|&r| r) {
                is_root = depended_on.iter().map(|&d| !d).collect();
            }
        }

        self.dependents = dependents;
        self.is_root = is_root;
        self.dangling = dangling;
    }

    /// The shortest path from package `idx` up to a root, as
    /// `["smallvec 1.6.0", "local 0.1.0", "app 0.1.0"]`.
    pub(crate) fn dependency_path(&self, idx: usize) -> Vec<String> {
        let packages = &self.lockfile.packages;
        let label = |i: usize| format!("{} {}", packages[i].name, packages[i].version);
        let mut previous: Vec<Option<usize>> = vec![None; packages.len()];
        let mut seen = vec![false; packages.len()];
        let mut queue = VecDeque::from([idx]);
        seen[idx] = true;
        let mut reached = None;
        while let Some(current) = queue.pop_front() {
            if self.is_root[current] {
                reached = Some(current);
                break;
            }
            for &parent in &self.dependents[current] {
                if !seen[parent] {
                    seen[parent] = true;
                    previous[parent] = Some(current);
                    queue.push_back(parent);
                }
            }
        }

        let Some(mut at) = reached else {
            return vec![label(idx)];
        };
        let mut path = vec![label(at)];
        while let Some(next) = previous[at] {
            path.push(label(next));
            at = next;
        }
        path.reverse();
        path
    }
}

/// Rejects a format version we do not know before `cargo-lock` guesses at
/// it, so the message can say which version and what to do.
fn check_version(path: &Path, text: &str) -> Result<(), GateError> {
    for (idx, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            // The version key sits at the top, before any table.
            return Ok(());
        }
        let Some(value) = trimmed
            .strip_prefix("version")
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix('='))
        else {
            continue;
        };
        let value = value.split('#').next().unwrap_or("").trim();
        let known = value
            .parse::<i64>()
            .is_ok_and(|version| KNOWN_VERSIONS.contains(&version));
        if !known {
            return Err(GateError::Parse {
                path: path.to_owned(),
                line: u32::try_from(idx + 1).ok(),
                message: format!(
                    "unknown lockfile format version `{value}` (this release reads versions 1 to 4)"
                ),
                help: "the lockfile was written by a newer Cargo than Portcullis knows; \
                       upgrade Portcullis, or regenerate the lockfile with the toolchain \
                       pinned for this repository"
                    .to_owned(),
            });
        }
        return Ok(());
    }
    Ok(())
}

/// Turns a `cargo-lock` error into one naming the file and, where the
/// `toml` parser can place it, the line.
fn parse_error(path: &Path, text: &str, err: &rustsec::cargo_lock::Error) -> GateError {
    let line = match toml::from_str::<toml::Table>(text) {
        Err(toml_err) => toml_err
            .span()
            .map(|span| crate::policy::line_column(text, span.start).0),
        Ok(_) => None,
    };
    GateError::Parse {
        path: path.to_owned(),
        line: line.and_then(|l| u32::try_from(l).ok()),
        message: format!("not a valid Cargo.lock: {err}"),
        help: "the file is corrupt or truncated; restore it from version control or \
               regenerate it with `cargo generate-lockfile`"
            .to_owned(),
    }
}

/// One `[[package]]` entry as the line scanner saw it.
#[derive(Debug)]
struct RawEntry<'a> {
    name: &'a str,
    version: &'a str,
    source: Option<&'a str>,
    lines: EntryLines,
}

/// Finds the `name`, `version` and `source` lines of every `[[package]]`
/// entry. Cargo writes each key on its own line as `key = "value"`.
fn scan_entries(text: &str) -> Vec<RawEntry<'_>> {
    let mut entries = Vec::new();
    let mut current: Option<RawEntry<'_>> = None;
    for (idx, line) in text.lines().enumerate() {
        let number = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            entries.extend(current.take());
            if trimmed == "[[package]]" {
                current = Some(RawEntry {
                    name: "",
                    version: "",
                    source: None,
                    lines: EntryLines::default(),
                });
            }
            continue;
        }
        let Some(entry) = current.as_mut() else {
            continue;
        };
        let Some((key, value)) = trimmed.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match key.trim() {
            "name" => {
                entry.name = value;
                entry.lines.name = Some(number);
            }
            "version" => entry.version = value,
            "source" => {
                entry.source = Some(value);
                entry.lines.source = Some(number);
            }
            _ => {}
        }
    }
    entries.extend(current);
    entries
}

fn find_entry(entries: &[RawEntry<'_>], package: &Package) -> EntryLines {
    let version = package.version.to_string();
    let candidates: Vec<&RawEntry<'_>> = entries
        .iter()
        .filter(|e| e.name == package.name.as_str() && e.version == version)
        .collect();
    match candidates.as_slice() {
        [] => EntryLines::default(),
        [only] => only.lines,
        // Several entries with one name and version differ by source; parse
        // each entry's source text rather than comparing strings, since
        // `SourceId` may print a git query decoded (`fix/overflow`) where
        // the file has it encoded (`fix%2Foverflow`).
        several => several
            .iter()
            .find(|e| {
                let parsed = e.source.and_then(|s| SourceId::from_url(s).ok());
                parsed == package.source
            })
            .map_or(several[0].lines, |e| e.lines),
    }
}

/// The resolve version of a lockfile, as text for stats and messages.
pub(crate) fn version_label(version: ResolveVersion) -> &'static str {
    match version {
        ResolveVersion::V1 => "v1",
        ResolveVersion::V2 => "v2",
        ResolveVersion::V3 => "v3",
        ResolveVersion::V4 => "v4",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE_006: &str = r#"version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "local",
 "log",
]

[[package]]
name = "local"
version = "0.1.0"
dependencies = [
 "smallvec",
]

[[package]]
name = "log"
version = "0.4.22"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "smallvec"
version = "1.6.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;

    fn parse(text: &str) -> Result<LockedTree, GateError> {
        LockedTree::parse("Cargo.lock", Path::new("/repo/Cargo.lock"), text)
    }

    #[test]
    fn dependency_path_climbs_through_path_packages() {
        let tree = parse(CASE_006).expect("parses");
        let smallvec = tree
            .packages()
            .iter()
            .position(|p| p.name.as_str() == "smallvec")
            .expect("smallvec");
        assert_eq!(
            tree.dependency_path(smallvec),
            ["smallvec 1.6.0", "local 0.1.0", "app 0.1.0"]
        );
        assert_eq!(tree.lines[smallvec].name, Some(24));
        assert_eq!(tree.lines[smallvec].source, Some(26));
    }

    #[test]
    fn unknown_version_names_the_line() {
        let err = parse("# hi\nversion = 7\n").expect_err("unknown version");
        let GateError::Parse { line, message, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(*line, Some(2));
        assert!(message.contains("`7`"), "{message}");
    }

    #[test]
    fn broken_toml_names_the_line() {
        let err = parse("version = 4\n\n[[package]]\nname = \"a\nversion = \"1.0.0\"\n")
            .expect_err("broken");
        let GateError::Parse { line, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(*line, Some(4), "{err}");
    }

    #[test]
    fn missing_dependency_entry_is_dangling() {
        let text = "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"gone 1.0.0\",\n]\n";
        let tree = parse(text).expect("parses");
        assert_eq!(tree.dangling.len(), 1, "{:?}", tree.dangling);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn lockfile_shaped_text_never_panics(
            text in "(version = [0-9]\n)?(\\[\\[package\\]\\]\n(name = \"[a-z]{1,3}\"\n)?(version = \"[0-9]\\.[0-9]\\.[0-9]\"\n)?(source = \"(registry|git|sparse|path)\\+[a-z:/.]{0,12}\"\n)?(dependencies = \\[\n( \"[a-z]{1,3}( [0-9.]{1,5})?\",\n){0,3}\\]\n)?){0,4}"
        ) {
            if let Ok(tree) = parse(&text) {
                for idx in 0..tree.packages().len() {
                    let _ = tree.dependency_path(idx);
                }
            }
        }
    }
}
