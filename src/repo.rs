//! A read-only view of the repository under scan.
//!
//! Gates read files only through [`RepoView`]: it resolves paths against the
//! root, refuses to leave it, and walks the tree the way git sees it
//! (`.gitignore`, `.git/info/exclude`, global excludes), skipping `target/`.
//! Nothing here can write.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use ignore::WalkBuilder;

use crate::gate::GateError;

/// The repository a pipeline runs on.
#[derive(Debug, Clone)]
pub struct RepoView {
    root: PathBuf,
}

/// Which files a walk yields.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Also yield hidden files and folders (dot files). `.git` is never
    /// yielded.
    pub hidden: bool,
    /// Only files whose name is exactly this, e.g. `Cargo.lock`.
    pub file_name: Option<&'static str>,
    /// Skip files larger than this many bytes.
    pub max_size: Option<u64>,
}

impl RepoView {
    /// A view of `root`, which must be a readable directory.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        let root = fs::canonicalize(&root)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("`{}` is not a directory", root.display()),
            ));
        }
        Ok(RepoView { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of a repository-relative path. Refuses absolute
    /// paths and `..` so a gate cannot be tricked out of the repository.
    pub fn path(&self, relative: impl AsRef<Path>) -> Result<PathBuf, GateError> {
        let relative = relative.as_ref();
        let escapes = relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        if escapes {
            return Err(GateError::Other {
                message: format!(
                    "path `{}` leaves the repository; only relative paths inside it are read",
                    relative.display()
                ),
            });
        }
        Ok(self.root.join(relative))
    }

    /// The repository-relative spelling of an absolute path below the root,
    /// with `/` separators.
    pub fn relative(&self, path: &Path) -> String {
        let relative = path.strip_prefix(&self.root).unwrap_or(path);
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    pub fn read(&self, relative: impl AsRef<Path>) -> Result<Vec<u8>, GateError> {
        let path = self.path(relative)?;
        fs::read(&path).map_err(|source| GateError::Read { path, source })
    }

    pub fn read_to_string(&self, relative: impl AsRef<Path>) -> Result<String, GateError> {
        let path = self.path(relative.as_ref())?;
        let bytes = self.read(relative)?;
        String::from_utf8(bytes).map_err(|err| GateError::Parse {
            path,
            line: None,
            message: format!("not valid UTF-8 (byte {})", err.utf8_error().valid_up_to()),
            help: "save the file as UTF-8".to_owned(),
        })
    }

    /// Files below the root, in a stable order, respecting `.gitignore` and
    /// skipping `target/` and `.git/`. Entries that cannot be read (a
    /// permission problem, a symlink loop) come back as errors rather than
    /// being dropped, so callers can count them.
    pub fn walk(&self, options: &WalkOptions) -> Vec<Result<PathBuf, GateError>> {
        let mut builder = WalkBuilder::new(&self.root);
        builder
            .hidden(!options.hidden)
            .git_ignore(true)
            .git_exclude(true)
            .git_global(true)
            // Honour .gitignore even where the root is not a git checkout
            // (an unpacked source archive, a test fixture).
            .require_git(false)
            .follow_links(false)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|entry| {
                let name = entry.file_name();
                !(entry.depth() > 0
                    && entry.file_type().is_some_and(|t| t.is_dir())
                    && (name == "target" || name == ".git"))
            });
        if let Some(max) = options.max_size {
            builder.max_filesize(Some(max));
        }

        let mut files = Vec::new();
        for entry in builder.build() {
            match entry {
                Ok(entry) => {
                    if !entry.file_type().is_some_and(|t| t.is_file()) {
                        continue;
                    }
                    if let Some(name) = options.file_name
                        && entry.file_name() != name
                    {
                        continue;
                    }
                    files.push(Ok(entry.into_path()));
                }
                Err(err) => files.push(Err(GateError::Other {
                    message: format!("could not walk part of the repository: {err}"),
                })),
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_leave_the_root() {
        let dir = tempfile::tempdir().expect("temp dir");
        let view = RepoView::new(dir.path()).expect("view");
        assert!(view.path("../etc/passwd").is_err());
        assert!(view.path("/etc/passwd").is_err());
        assert!(view.path("./a/b").is_ok());
    }

    #[test]
    fn walk_respects_gitignore_and_skips_target() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        fs::create_dir_all(root.join("target/debug")).expect("mkdir");
        fs::create_dir_all(root.join("vendored")).expect("mkdir");
        fs::write(root.join(".gitignore"), "vendored/\n").expect("write");
        fs::write(root.join("target/debug/Cargo.lock"), "").expect("write");
        fs::write(root.join("vendored/Cargo.lock"), "").expect("write");
        fs::write(root.join("Cargo.lock"), "").expect("write");

        let view = RepoView::new(root).expect("view");
        let options = WalkOptions {
            file_name: Some("Cargo.lock"),
            ..WalkOptions::default()
        };
        let found: Vec<String> = view
            .walk(&options)
            .into_iter()
            .map(|p| view.relative(&p.expect("walk entry")))
            .collect();
        assert_eq!(found, ["Cargo.lock"]);
    }
}
