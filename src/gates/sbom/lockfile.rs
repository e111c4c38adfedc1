//! The `Cargo.lock` side of the SBOM: which packages are locked and the
//! SHA-256 checksum cargo recorded for each registry package.
//!
//! The lockfile is parsed with the `cargo-lock` crate, through `toml` directly
//! so that a corrupt or truncated file gives an error with its line number.
//! Git and path packages have no checksum in a lockfile; that is normal and
//! their components simply carry no hash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cargo_lock::Lockfile;

use crate::gate::GateError;

/// What the SBOM needs from one `Cargo.lock`.
#[derive(Debug, Default)]
pub(crate) struct LockedPackages {
    /// `(name, version, source without fragment)` → lowercase hex SHA-256.
    checksums: BTreeMap<(String, String, String), String>,
    /// `(name, version)` → the checksums of every locked package with that
    /// name and version, for sources whose spelling differs between
    /// `cargo metadata` and the lockfile (a trailing slash on a registry URL).
    by_name: BTreeMap<(String, String), BTreeSet<String>>,
    /// `(name, version)` of every locked package, with or without source.
    locked: BTreeSet<(String, String)>,
}

impl LockedPackages {
    /// Parses the text of a `Cargo.lock`; `path` names the file in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Self, GateError> {
        let lockfile: Lockfile = toml::from_str(text).map_err(|err| GateError::Parse {
            path: path.to_owned(),
            line: err.span().map(|span| line_of(text, span.start)),
            message: err.message().trim_end().to_owned(),
            help: "the lockfile is corrupt or truncated: restore it from version control, or \
                   regenerate it with `cargo generate-lockfile` and review the diff"
                .to_owned(),
        })?;

        let mut locked = LockedPackages::default();
        for package in &lockfile.packages {
            let name = package.name.as_str().to_owned();
            let version = package.version.to_string();
            locked.locked.insert((name.clone(), version.clone()));
            let (Some(checksum), Some(source)) = (&package.checksum, &package.source) else {
                continue;
            };
            let checksum = format!("{checksum:x}");
            let source = without_fragment(&source.to_string()).to_owned();
            locked
                .by_name
                .entry((name.clone(), version.clone()))
                .or_default()
                .insert(checksum.clone());
            locked.checksums.insert((name, version, source), checksum);
        }
        Ok(locked)
    }

    /// The SHA-256 checksum of a package, when the lockfile has one.
    pub(crate) fn checksum(&self, name: &str, version: &str, source: &str) -> Option<&str> {
        let key = (
            name.to_owned(),
            version.to_owned(),
            without_fragment(source).to_owned(),
        );
        if let Some(checksum) = self.checksums.get(&key) {
            return Some(checksum);
        }
        // Only fall back to name and version when that is unambiguous: two
        // registries may publish different code under the same name.
        let candidates = self.by_name.get(&(key.0, key.1))?;
        match candidates.len() {
            1 => candidates.first().map(String::as_str),
            _ => None,
        }
    }

    /// Whether the lockfile has a package of this name and version.
    pub(crate) fn contains(&self, name: &str, version: &str) -> bool {
        self.locked.contains(&(name.to_owned(), version.to_owned()))
    }
}

/// `git+https://host/repo?branch=x#commit` → `git+https://host/repo?branch=x`.
fn without_fragment(source: &str) -> &str {
    source.split_once('#').map_or(source, |(before, _)| before)
}

/// The 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> u32 {
    let offset = offset.min(text.len());
    let newlines = text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["itoa"]

[[package]]
name = "itoa"
version = "1.0.19"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "3bd1574e617a9a6c1f8f8181bd7e841e1f20e4277607ef28945765188d6284d4"
"#;

    #[test]
    fn reads_checksums_of_registry_packages() {
        let locked = LockedPackages::parse(LOCK, Path::new("Cargo.lock")).expect("parses");
        assert_eq!(
            locked.checksum(
                "itoa",
                "1.0.19",
                "registry+https://github.com/rust-lang/crates.io-index"
            ),
            Some("3bd1574e617a9a6c1f8f8181bd7e841e1f20e4277607ef28945765188d6284d4")
        );
        assert!(locked.contains("app", "0.1.0"));
        assert_eq!(locked.checksum("app", "0.1.0", ""), None);
    }

    #[test]
    fn corrupt_lockfile_names_the_line() {
        let broken = LOCK.replace("version = \"1.0.19\"", "version = \"1.0.19");
        let err = LockedPackages::parse(&broken, Path::new("/x/Cargo.lock")).expect_err("fails");
        let GateError::Parse { line, .. } = &err else {
            panic!("expected a parse error, got {err:?}");
        };
        assert_eq!(*line, Some(10));
        assert!(err.to_string().contains("/x/Cargo.lock"), "{err}");
    }

    #[test]
    fn truncated_lockfile_is_a_parse_error() {
        let truncated = &LOCK[..LOCK.find("source").expect("has source") + 3];
        let err = LockedPackages::parse(truncated, Path::new("Cargo.lock")).expect_err("fails");
        assert!(
            matches!(err, GateError::Parse { line: Some(_), .. }),
            "{err:?}"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*") {
            let _ = LockedPackages::parse(&text, Path::new("Cargo.lock"));
        }

        #[test]
        fn mangled_lockfiles_never_panic(cut in 0usize..LOCK.len(), insert in "\\PC{0,8}") {
            let mut text = LOCK[..cut].to_owned();
            text.push_str(&insert);
            text.push_str(&LOCK[cut..]);
            let _ = LockedPackages::parse(&text, Path::new("Cargo.lock"));
        }
    }
}
