//! The RustSec advisory database for the sca gate: where it is, whether it
//! is stale, loading the advisories of the crates a lockfile holds, and
//! matching them the way cargo-audit does.
//!
//! cargo-audit parses every advisory in the database (about 1,200 files)
//! before it looks at a lockfile. This gate reads the lockfiles first and
//! parses only `crates/<name>/*.md` for the crate names they contain, in
//! parallel. The database indexes advisories by that folder name (rustsec
//! refuses an advisory whose folder is not its package), so the advisories
//! considered are exactly the ones cargo-audit would consider.
//!
//! Matching uses rustsec's own [`Query`] for versions, withdrawn advisories
//! and target filters, so the semantics (pre-releases, `unaffected` ranges,
//! `[affected] os`) are rustsec's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustsec::advisory::{Advisory, Informational};
use rustsec::cargo_lock::Package;
use rustsec::database::Query;

use crate::finding::{Finding, Location, PackagePayload, Payload, Severity};
use crate::gate::{GateContext, GateError};

use super::lockfile::LockedTree;
use super::{GATE, InformationalKind, ScaOptions};

/// Where the advisory database comes from, in order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DbLocation {
    /// `--advisory-db` or `PORTCULLIS_ADVISORY_DB`.
    Cli(PathBuf),
    /// `advisory-db` in the policy, resolved against the policy's folder.
    Policy(PathBuf),
    /// The copy cargo-audit keeps in `$CARGO_HOME/advisory-db`, fetched or
    /// updated unless offline.
    Default(PathBuf),
}

impl DbLocation {
    pub(crate) fn path(&self) -> &Path {
        match self {
            DbLocation::Cli(path) | DbLocation::Policy(path) | DbLocation::Default(path) => path,
        }
    }

    fn origin(&self) -> &'static str {
        match self {
            DbLocation::Cli(_) => "--advisory-db / PORTCULLIS_ADVISORY_DB",
            DbLocation::Policy(_) => "the policy's `advisory-db`",
            DbLocation::Default(_) => "the default location",
        }
    }
}

/// Decides which database to use.
pub(crate) fn locate(ctx: &GateContext, options: &ScaOptions) -> Result<DbLocation, GateError> {
    if let Some(path) = &ctx.settings.advisory_db {
        return Ok(DbLocation::Cli(path.clone()));
    }
    if let Some(path) = &options.advisory_db {
        return Ok(DbLocation::Policy(ctx.policy.resolve(ctx.root(), path)));
    }
    default_db_path().map(DbLocation::Default)
}

/// `$CARGO_HOME/advisory-db`, the folder cargo-audit fetches into.
fn default_db_path() -> Result<PathBuf, GateError> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    cargo_home
        .map(|home| home.join("advisory-db"))
        .ok_or_else(|| GateError::Unavailable {
            what: "the advisory database".to_owned(),
            message: "neither CARGO_HOME nor HOME is set, so its default location is unknown"
                .to_owned(),
            help: "pass --advisory-db PATH (or set PORTCULLIS_ADVISORY_DB)".to_owned(),
        })
}

/// Fetches or updates the default database with rustsec's git support.
/// Blocking: call it from a blocking task.
pub(crate) fn fetch_default(path: &Path) -> Result<(), GateError> {
    rustsec::repository::git::Repository::fetch(
        rustsec::repository::git::DEFAULT_URL,
        path,
        true,
        Duration::from_secs(60),
    )
    .map(|_| ())
    .map_err(|err| GateError::Unavailable {
        what: "the advisory database".to_owned(),
        message: format!(
            "could not fetch {} into `{}`: {err}",
            rustsec::repository::git::DEFAULT_URL,
            path.display()
        ),
        help: "check the network, or pass --advisory-db PATH (or set PORTCULLIS_ADVISORY_DB) \
               to use a local copy, with --offline"
            .to_owned(),
    })
}

/// Checks that `location` holds a database and returns its `crates` folder.
pub(crate) fn open(location: &DbLocation) -> Result<PathBuf, GateError> {
    let path = location.path();
    let crates = path.join("crates");
    let help = match location {
        DbLocation::Default(_) => {
            "run without --offline to fetch it, or pass --advisory-db PATH (or set \
             PORTCULLIS_ADVISORY_DB) to a copy of https://github.com/rustsec/advisory-db"
        }
        _ => {
            "point it at a copy of https://github.com/rustsec/advisory-db (the folder that \
             holds `crates/`)"
        }
    };
    if !path.is_dir() {
        return Err(GateError::Unavailable {
            what: "the advisory database".to_owned(),
            message: format!(
                "`{}` (from {}) is not a folder",
                path.display(),
                location.origin()
            ),
            help: help.to_owned(),
        });
    }
    if !crates.is_dir() {
        return Err(GateError::Unavailable {
            what: "the advisory database".to_owned(),
            message: format!(
                "`{}` (from {}) has no `crates` folder, so it is not a RustSec advisory database",
                path.display(),
                location.origin()
            ),
            help: help.to_owned(),
        });
    }
    Ok(crates)
}

/// How old the database is in days, when that can be told: from the last
/// commit of a git checkout, else from the modification time of its
/// `crates` folder (which changes whenever a crate gets its first advisory).
pub(crate) fn age_days(db: &Path, today: jiff::civil::Date) -> Option<i64> {
    let updated: jiff::civil::Date = if db.join(".git").exists() {
        let repo = rustsec::repository::git::Repository::open(db).ok()?;
        let commit = repo.latest_commit().ok()?;
        let timestamp = jiff::Timestamp::from_second(commit.timestamp.unix_timestamp()).ok()?;
        jiff::tz::TimeZone::UTC.to_datetime(timestamp).date()
    } else {
        let modified = std::fs::metadata(db.join("crates")).ok()?.modified().ok()?;
        let seconds = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?
            .as_secs();
        let timestamp = jiff::Timestamp::from_second(i64::try_from(seconds).ok()?).ok()?;
        jiff::tz::TimeZone::UTC.to_datetime(timestamp).date()
    };
    let span = updated.until(today).ok()?;
    Some(i64::from(span.get_days()))
}

/// The advisories of the named crates, loaded in parallel. A file that does
/// not parse is an error naming it; the others are still returned.
pub(crate) fn load(
    crates_dir: &Path,
    names: &BTreeSet<String>,
) -> (BTreeMap<String, Vec<Advisory>>, Vec<GateError>) {
    // One listing of `crates/` (about 900 entries) is cheaper than a failed
    // lookup for each of several hundred locked crates.
    let listed: Vec<String> = match std::fs::read_dir(crates_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| names.contains(name))
            .collect(),
        Err(source) => {
            return (
                BTreeMap::new(),
                vec![GateError::Read {
                    path: crates_dir.to_owned(),
                    source,
                }],
            );
        }
    };

    let mut files = Vec::new();
    let mut errors = Vec::new();
    for name in &listed {
        let dir = crates_dir.join(name);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(source) => {
                errors.push(GateError::Read { path: dir, source });
                continue;
            }
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            // Like rustsec: skip dot files; drafts are checked but never
            // reported (their id is the RUSTSEC-0000-0000 placeholder).
            if file_name.starts_with('.') || !file_name.ends_with(".md") {
                continue;
            }
            files.push((name.clone(), path));
        }
    }

    let parsed = parse_parallel(files);
    let mut advisories: BTreeMap<String, Vec<Advisory>> = BTreeMap::new();
    for (name, path, result) in parsed {
        match result {
            Ok(advisory) if advisory.metadata.id.is_placeholder() => {}
            Ok(advisory) if advisory.metadata.package.as_str() != name => {
                errors.push(GateError::Parse {
                    path,
                    line: None,
                    message: format!(
                        "advisory {} is for `{}` but sits in the `{name}` folder",
                        advisory.metadata.id, advisory.metadata.package
                    ),
                    help: "the advisory database is damaged; fetch a fresh copy".to_owned(),
                });
            }
            Ok(mut advisory) => {
                // rustsec takes the collection from the folder, as here.
                advisory.metadata.collection = Some(rustsec::Collection::Crates);
                advisories.entry(name).or_default().push(advisory);
            }
            Err(message) => errors.push(GateError::Parse {
                path,
                line: None,
                message,
                help: "the advisory database is damaged or newer than this release reads; \
                       fetch a fresh copy, or report the file if it is current"
                    .to_owned(),
            }),
        }
    }
    for list in advisories.values_mut() {
        list.sort_by(|a, b| a.metadata.id.as_str().cmp(b.metadata.id.as_str()));
    }
    (advisories, errors)
}

type Parsed = (String, PathBuf, Result<Advisory, String>);

/// Parses advisory files on all cores; each is a few kilobytes of TOML and
/// Markdown.
fn parse_parallel(files: Vec<(String, PathBuf)>) -> Vec<Parsed> {
    let parse = |(name, path): (String, PathBuf)| -> Parsed {
        let result = std::fs::read_to_string(&path)
            .map_err(|err| format!("could not read the advisory: {err}"))
            .and_then(|text| {
                text.parse::<Advisory>()
                    .map_err(|err| format!("not a valid advisory: {}", error_chain(&err)))
            });
        (name, path, result)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if files.len() < 16 || threads < 2 {
        return files.into_iter().map(parse).collect();
    }
    let chunk = files.len().div_ceil(threads);
    let mut chunks: Vec<Vec<(String, PathBuf)>> = Vec::new();
    let mut files = files.into_iter().peekable();
    while files.peek().is_some() {
        chunks.push(files.by_ref().take(chunk).collect());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(parse).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(parsed) => parsed,
                // A panic inside rustsec's parser: our dependency's bug,
                // reported rather than propagated.
                Err(_) => vec![(
                    String::new(),
                    PathBuf::new(),
                    Err("the advisory parser panicked".to_owned()),
                )],
            })
            .collect()
    })
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What an advisory is, as the payload and messages name it.
fn kind_of(advisory: &Advisory) -> &'static str {
    match &advisory.metadata.informational {
        None => "vulnerability",
        Some(Informational::Unmaintained) => "unmaintained",
        Some(Informational::Unsound) => "unsound",
        Some(Informational::Notice) => "notice",
        Some(_) => "informational",
    }
}

/// Whether the policy reports this informational advisory.
fn informational_enabled(advisory: &Advisory, options: &ScaOptions) -> bool {
    let Some(info) = &advisory.metadata.informational else {
        return true;
    };
    let kind = match info {
        Informational::Unmaintained => InformationalKind::Unmaintained,
        Informational::Unsound => InformationalKind::Unsound,
        Informational::Notice => InformationalKind::Notice,
        // cargo-audit has no warning kind for other informational values
        // and never reports them.
        _ => return false,
    };
    options.informational.contains(&kind)
}

/// Whether a package comes from crates.io, the registry the database covers.
/// `registry+https://github.com/rust-lang/crates.io-index` and
/// `sparse+https://index.crates.io/` are the same registry.
pub(crate) fn is_crates_io(package: &Package) -> bool {
    package
        .source
        .as_ref()
        .is_some_and(rustsec::SourceId::is_default_registry)
}

/// The advisories matching each crates.io package of `tree`, as findings.
pub(crate) fn findings(
    tree: &LockedTree,
    advisories: &BTreeMap<String, Vec<Advisory>>,
    options: &ScaOptions,
) -> Vec<Finding> {
    let target_os: Vec<String> = options.target_os.iter().map(|os| os.to_string()).collect();
    let target_arch: Vec<String> = options
        .target_arch
        .iter()
        .map(|arch| arch.to_string())
        .collect();

    let mut findings = Vec::new();
    for (idx, package) in tree.packages().iter().enumerate() {
        if !is_crates_io(package) {
            continue;
        }
        let Some(candidates) = advisories.get(package.name.as_str()) else {
            continue;
        };
        // rustsec's query, less the source comparison: rustsec compares the
        // source kind, so a `sparse+https://index.crates.io/` package would
        // never match a crates.io advisory. Advisories for other registries
        // (a `source` key) are compared below.
        let query = Query::crate_scope()
            .package_name(package.name.clone())
            .package_version(package.version.clone())
            .target_os(target_os.clone())
            .target_arch(target_arch.clone())
            .withdrawn(false);
        for advisory in candidates {
            let query = query
                .clone()
                .informational(advisory.metadata.informational.is_some());
            let for_crates_io = advisory
                .metadata
                .source
                .as_ref()
                .is_none_or(rustsec::SourceId::is_default_registry);
            if !for_crates_io || !query.matches(advisory) {
                continue;
            }
            if !informational_enabled(advisory, options) {
                continue;
            }
            findings.push(finding(tree, idx, package, advisory, options));
        }
    }
    findings
}

fn finding(
    tree: &LockedTree,
    idx: usize,
    package: &Package,
    advisory: &Advisory,
    options: &ScaOptions,
) -> Finding {
    let id = advisory.metadata.id.as_str();
    let kind = kind_of(advisory);
    let cvss = advisory.metadata.cvss.as_ref();
    let severity = match (&advisory.metadata.informational, cvss) {
        (Some(_), _) => options.informational_severity,
        (None, Some(cvss)) => Severity::from_cvss_score(cvss.score()),
        (None, None) => options.unscored_severity,
    };
    let patched: Vec<String> = advisory
        .versions
        .patched()
        .iter()
        .map(ToString::to_string)
        .collect();

    let subject = format!("{} {}", package.name, package.version);
    let message = match kind {
        "vulnerability" => format!("{subject}: {} ({id})", advisory.title()),
        other => format!("{subject} is {other}: {} ({id})", advisory.title()),
    };
    let help = if patched.is_empty() {
        match kind {
            "unmaintained" => format!(
                "`{}` is no longer maintained; move to a maintained alternative (the advisory names some)",
                package.name
            ),
            _ => format!(
                "no fixed release of `{}` exists; remove it or replace it with an alternative",
                package.name
            ),
        }
    } else {
        format!(
            "upgrade `{}` to a patched version ({}), e.g. `cargo update -p {}@{}`",
            package.name,
            patched.join(" or "),
            package.name,
            package.version
        )
    };

    let mut references = vec![format!("https://rustsec.org/advisories/{id}.html")];
    if let Some(url) = &advisory.metadata.url {
        references.push(url.to_string());
    }
    references.extend(advisory.metadata.references.iter().map(ToString::to_string));
    references.dedup();

    let mut location = Location::file(tree.path.clone());
    if let Some(line) = tree.lines[idx].name {
        location = location.with_lines(line, line);
    }

    Finding::builder(GATE, id, severity, message)
        .location(location)
        .help(help)
        .references(references)
        .evidence(format!("{} {} {id}", package.name, package.version))
        .payload(Payload::Package(PackagePayload {
            package: package.name.to_string(),
            version: package.version.to_string(),
            kind: kind.to_owned(),
            advisory_id: Some(id.to_owned()),
            aliases: advisory
                .metadata
                .aliases
                .iter()
                .map(ToString::to_string)
                .collect(),
            cvss: cvss.map(ToString::to_string),
            cvss_score: cvss.map(|c| c.score()),
            patched,
            dependency_path: tree.dependency_path(idx),
        }))
        .build()
}
