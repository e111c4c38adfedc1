//! History and staged modes: the blobs git stores, read in-process with
//! `gix`.
//!
//! gix (already a dependency through rustsec) reads objects from loose files
//! and packs without spawning `git`, and its repository handle can be shared
//! across threads, so every distinct blob is decoded and scanned once, in
//! parallel. Running `git cat-file --batch` would need a pipe to the child's
//! stdin, which the process runner deliberately does not offer.
//!
//! History: commits reachable from the chosen refs are visited oldest first;
//! each commit's tree is walked, skipping every subtree already seen (an
//! unchanged folder has the same tree id), so a blob is met first in the
//! commit that introduced it, under the path it had there. Staged: the
//! index entries whose blob differs from `HEAD`'s — exactly what
//! `git commit` would record.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use gix::ObjectId;
use gix::bstr::ByteSlice;
use rayon::prelude::*;

use super::engine::{Origin, Scanner, is_binary};
use super::{Collected, SecretsOptions};
use crate::gate::GateError;

/// A commit as the history walk met it.
#[derive(Debug, Clone)]
struct WalkedCommit {
    id: ObjectId,
    parents: Vec<ObjectId>,
    time: i64,
}

/// Orders commits so that every parent comes before its children (Kahn's
/// algorithm), the oldest ready commit first; ties keep walk order. Parents
/// outside the list (beyond a shallow boundary) do not hold a commit back.
fn parents_first(walked: Vec<WalkedCommit>) -> Vec<ObjectId> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    let index: HashMap<ObjectId, usize> =
        walked.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    let mut waiting_on = vec![0usize; walked.len()];
    let mut children = vec![Vec::new(); walked.len()];
    for (i, commit) in walked.iter().enumerate() {
        let mut parents: Vec<usize> = commit
            .parents
            .iter()
            .filter_map(|p| index.get(p).copied())
            .collect();
        parents.sort_unstable();
        parents.dedup();
        waiting_on[i] = parents.len();
        for parent in parents {
            children[parent].push(i);
        }
    }

    let mut ready: BinaryHeap<Reverse<(i64, usize)>> = (0..walked.len())
        .filter(|&i| waiting_on[i] == 0)
        .map(|i| Reverse((walked[i].time, i)))
        .collect();
    let mut order = Vec::with_capacity(walked.len());
    while let Some(Reverse((_, i))) = ready.pop() {
        order.push(walked[i].id);
        for &child in &children[i] {
            waiting_on[child] -= 1;
            if waiting_on[child] == 0 {
                ready.push(Reverse((walked[child].time, child)));
            }
        }
    }
    order
}

/// One blob to scan and where it was first seen.
#[derive(Debug, Clone)]
struct BlobJob {
    id: ObjectId,
    path: String,
    commit: Option<String>,
}

fn open(root: &Path) -> Result<gix::Repository, GateError> {
    gix::open(root).map_err(|err| GateError::Unavailable {
        what: "a git repository".to_owned(),
        message: format!("could not open `{}` as a git repository: {err}", root.display()),
        help: "history and staged modes read `.git`; run them at the root of a clone, or use `mode = \"tree\"`"
            .to_owned(),
    })
}

fn git_error(what: &str, err: impl std::fmt::Display) -> GateError {
    GateError::Other {
        message: format!("could not read git {what}: {err}"),
    }
}

/// Scans every distinct blob reachable from `options.refs` (all refs when
/// empty).
pub fn scan_history(
    root: &Path,
    scanner: &Scanner,
    options: &SecretsOptions,
) -> Result<Collected, GateError> {
    let repo = open(root)?;
    let mut collected = Collected::default();

    if repo.is_shallow().unwrap_or(false) {
        collected.warnings.push(
            "the repository is a shallow clone: commits before the shallow boundary were not scanned; fetch with `--unshallow` (or `fetch-depth: 0` in actions/checkout) to scan all history"
                .to_owned(),
        );
        collected.stat("shallow", 1);
    }

    let tips = resolve_tips(&repo, &options.refs)?;
    if tips.is_empty() {
        collected
            .warnings
            .push("the repository has no commits to scan".to_owned());
        return Ok(collected);
    }

    let walk = repo
        .rev_walk(tips)
        .sorting(gix::revision::walk::Sorting::ByCommitTime(
            gix::traverse::commit::simple::CommitTimeOrder::OldestFirst,
        ))
        .all()
        .map_err(|err| git_error("history", err))?;
    let mut walked = Vec::new();
    for info in walk {
        match info {
            Ok(info) => walked.push(WalkedCommit {
                id: info.id,
                parents: info.parent_ids.iter().copied().collect(),
                time: info.commit_time.unwrap_or(0),
            }),
            Err(err) => {
                collected.errors.push(git_error("part of the history", err));
                break;
            }
        }
    }
    // gix sorts only the commits it has queued, starting from the tips, so
    // its "oldest first" is not parents-before-children on a straight line.
    // Attribution needs exactly that order: a blob is credited to the first
    // commit that holds it.
    let commits = parents_first(walked);
    collected.stat("commits", commits.len() as u64);

    let mut seen_trees = HashSet::new();
    let mut seen_blobs = HashSet::new();
    let mut jobs = Vec::new();
    for commit_id in &commits {
        let tree_id = match repo.find_commit(*commit_id).and_then(|c| c.tree_id()) {
            Ok(tree_id) => tree_id.detach(),
            Err(err) => {
                collected
                    .errors
                    .push(git_error(&format!("commit {commit_id}"), err));
                continue;
            }
        };
        let commit = commit_id.to_string();
        let mut visit = |path: String, blob: ObjectId| {
            if seen_blobs.insert(blob) {
                jobs.push(BlobJob {
                    id: blob,
                    path,
                    commit: Some(commit.clone()),
                });
            }
        };
        if let Err(err) = walk_tree(&repo, tree_id, "", &mut seen_trees, &mut visit) {
            collected.errors.push(err);
        }
    }
    collected.stat("blobs", jobs.len() as u64);

    scan_blobs(repo, scanner, options, jobs, &mut collected);
    Ok(collected)
}

/// Scans what `git commit` would record: index entries whose blob differs
/// from the one at the same path in `HEAD`.
pub fn scan_staged(
    root: &Path,
    scanner: &Scanner,
    options: &SecretsOptions,
) -> Result<Collected, GateError> {
    let repo = open(root)?;
    let mut collected = Collected::default();

    let mut head: HashMap<String, ObjectId> = HashMap::new();
    if let Ok(tree_id) = repo.head_tree_id() {
        let mut seen = HashSet::new();
        let mut visit = |path: String, blob: ObjectId| {
            head.insert(path, blob);
        };
        walk_tree(&repo, tree_id.detach(), "", &mut seen, &mut visit)?;
    }

    let index = repo
        .open_index()
        .map_err(|err| git_error("the index", err))?;
    let mut jobs = Vec::new();
    for entry in index.entries() {
        let is_file = matches!(
            entry.mode,
            gix::index::entry::Mode::FILE | gix::index::entry::Mode::FILE_EXECUTABLE
        );
        if !is_file {
            continue;
        }
        let path = entry.path(&index).to_str_lossy().into_owned();
        if head.get(&path) == Some(&entry.id) {
            continue;
        }
        jobs.push(BlobJob {
            id: entry.id,
            path,
            commit: None,
        });
    }
    collected.stat("staged_files", jobs.len() as u64);
    scan_blobs(repo, scanner, options, jobs, &mut collected);
    Ok(collected)
}

/// The commits the refs name; all references (branches, tags, remotes,
/// stash) when none are given.
fn resolve_tips(repo: &gix::Repository, refs: &[String]) -> Result<Vec<ObjectId>, GateError> {
    let mut tips = Vec::new();
    if refs.is_empty() {
        let platform = repo
            .references()
            .map_err(|err| git_error("references", err))?;
        let all = platform.all().map_err(|err| git_error("references", err))?;
        for reference in all {
            let Ok(mut reference) = reference else {
                continue;
            };
            // Tags may point at trees or blobs; only commits start a walk.
            if let Ok(commit) = reference.peel_to_commit() {
                tips.push(commit.id);
            }
        }
        if let Ok(head) = repo.head_commit() {
            tips.push(head.id);
        }
    } else {
        for name in refs {
            let id = repo
                .rev_parse_single(name.as_str())
                .map_err(|err| GateError::Other {
                    message: format!("could not resolve ref `{name}` for the history scan: {err}"),
                })?;
            let commit = id
                .object()
                .and_then(|o| o.peel_to_commit())
                .map_err(|err| GateError::Other {
                    message: format!("ref `{name}` does not lead to a commit: {err}"),
                })?;
            tips.push(commit.id);
        }
    }
    tips.sort();
    tips.dedup();
    Ok(tips)
}

/// Calls `visit` for each blob under a tree not seen before, with its path.
fn walk_tree(
    repo: &gix::Repository,
    tree_id: ObjectId,
    prefix: &str,
    seen_trees: &mut HashSet<ObjectId>,
    visit: &mut dyn FnMut(String, ObjectId),
) -> Result<(), GateError> {
    if !seen_trees.insert(tree_id) {
        return Ok(());
    }
    let tree = repo
        .find_tree(tree_id)
        .map_err(|err| git_error(&format!("tree {tree_id}"), err))?;
    let mut subtrees = Vec::new();
    for entry in tree.iter() {
        let entry = entry.map_err(|err| git_error(&format!("tree {tree_id}"), err))?;
        let name = entry.filename().to_str_lossy();
        let path = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let mode = entry.mode();
        if mode.is_tree() {
            subtrees.push((entry.object_id(), path));
        } else if mode.is_blob() {
            // Plain and executable files; symlinks and submodules hold no
            // content of ours.
            visit(path, entry.object_id());
        }
    }
    for (id, path) in subtrees {
        walk_tree(repo, id, &path, seen_trees, visit)?;
    }
    Ok(())
}

/// Reads and scans blobs in parallel, one repository handle per thread.
fn scan_blobs(
    repo: gix::Repository,
    scanner: &Scanner,
    options: &SecretsOptions,
    jobs: Vec<BlobJob>,
    collected: &mut Collected,
) {
    let shared = repo.into_sync();
    let max = options.max_file_size;
    let results: Vec<Collected> = jobs
        .par_iter()
        .map_init(
            || shared.to_thread_local(),
            |repo, job| {
                let mut part = Collected::default();
                let blob = match repo.find_blob(job.id) {
                    Ok(blob) => blob,
                    Err(err) => {
                        part.errors
                            .push(git_error(&format!("blob {} (`{}`)", job.id, job.path), err));
                        return part;
                    }
                };
                let data = &blob.data;
                if data.len() as u64 > max {
                    part.skipped_large.push(job.path.clone());
                    return part;
                }
                if is_binary(data) {
                    part.stat("skipped_binary", 1);
                    return part;
                }
                let origin = Origin {
                    path: &job.path,
                    commit: job.commit.as_deref(),
                };
                part.add_scan(scanner.scan(origin, data), data.len());
                part
            },
        )
        .collect();

    // A secret left in a file that later commits edit is in every later
    // version of the blob. Report it once, at the commit that introduced it:
    // the results are in job order, which is parents-first commit order, and
    // the fingerprint (rule, path, hash of the secret) ignores the commit.
    let mut seen = HashSet::new();
    for mut part in results {
        let before = part.findings.len();
        part.findings
            .retain(|f| seen.insert(f.fingerprint.as_str().to_owned()));
        let repeated = (before - part.findings.len()) as u64;
        if repeated > 0 {
            part.stat("repeated_in_later_commits", repeated);
        }
        collected.merge(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    fn commit(n: u8, parents: &[u8], time: i64) -> WalkedCommit {
        WalkedCommit {
            id: id(n),
            parents: parents.iter().map(|&p| id(p)).collect(),
            time,
        }
    }

    #[test]
    fn parents_come_before_children_whatever_the_walk_order() {
        // Tip first, as gix yields a straight line; equal times.
        let walked = vec![commit(3, &[2], 10), commit(2, &[1], 10), commit(1, &[], 10)];
        assert_eq!(parents_first(walked), vec![id(1), id(2), id(3)]);
    }

    #[test]
    fn a_merge_waits_for_both_parents_and_older_branches_go_first() {
        // 1 -> 2 (t=30) and 1 -> 3 (t=20), merged in 4.
        let walked = vec![
            commit(4, &[2, 3], 40),
            commit(2, &[1], 30),
            commit(3, &[1], 20),
            commit(1, &[], 10),
        ];
        assert_eq!(parents_first(walked), vec![id(1), id(3), id(2), id(4)]);
    }

    #[test]
    fn parents_beyond_a_shallow_boundary_do_not_block() {
        let walked = vec![commit(2, &[1], 5), commit(1, &[9], 1)];
        assert_eq!(parents_first(walked), vec![id(1), id(2)]);
    }
}
