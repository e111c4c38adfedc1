//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portcullis::gate::RunSettings;
use portcullis::pipeline::{Pipeline, PipelineResult, Silent};
use portcullis::policy::Policy;
use portcullis::repo::RepoView;

/// The shared material beside the repository: `PORTCULLIS_SHARED`, else
/// `../shared` next to this checkout. CI's copy is read-only: copy a case
/// into a temp dir before running anything that may write (cargo may rewrite
/// a lockfile).
pub fn shared() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORTCULLIS_SHARED") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

pub fn shared_path(relative: &str) -> PathBuf {
    shared().join(relative)
}

/// The advisory database snapshot.
pub fn advisory_db() -> PathBuf {
    shared_path("advisory-db")
}

/// The date tests pretend it is, so waiver expiry and database staleness do
/// not depend on the day the tests run.
pub fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 12, 1)
}

/// Settings for a run against the shared advisory database, offline.
pub fn settings() -> RunSettings {
    let mut settings = RunSettings::new(today());
    settings.offline = true;
    settings.advisory_db = Some(advisory_db());
    settings
}

/// Runs the named gates (all stages of `policy`, restricted to `only`) over
/// `root`.
pub fn run(root: &Path, policy: Policy, only: &[&str]) -> PipelineResult {
    run_with(root, policy, only, settings())
}

pub fn run_with(
    root: &Path,
    mut policy: Policy,
    only: &[&str],
    settings: RunSettings,
) -> PipelineResult {
    let only: Vec<String> = only.iter().map(|s| (*s).to_owned()).collect();
    policy.restrict(Some(&only), &[]);
    let repo = RepoView::new(root).expect("test root exists");
    let pipeline = Pipeline::new(policy, settings, repo).partial(true);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(pipeline.run(Arc::new(Silent)))
}

/// A policy from TOML text, panicking with the error if it is invalid.
pub fn policy(text: &str) -> Policy {
    Policy::from_toml(text, "test-policy.toml", None).unwrap_or_else(|err| panic!("{err}"))
}

/// Copies a directory tree into a fresh temp dir and returns it.
pub fn copy_tree(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(from, dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).expect("copy");
            let mut perms = std::fs::metadata(&target).expect("meta").permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).expect("chmod");
        }
    }
}

/// A fixture of this repository under `tests/fixtures/`.
pub fn shared_free_fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}
