//! The secrets gate: every rule's examples, the shared cases 013–018, the
//! planted corpus, history and staged modes, and bad input.
//!
//! Credential-shaped strings are built at run time (random characters into
//! templates), never written into this repository, so the repository passes
//! its own gate and hosted push protection never sees a token-shaped string.

use std::collections::BTreeSet;
use std::path::Path;

use portcullis::finding::{Finding, Payload};
use portcullis::gates::secrets::config::RulePack;
use portcullis::gates::secrets::engine::{Origin, Scanner};
use portcullis::gates::secrets::{SecretsOptions, scan_tree};
use portcullis::repo::RepoView;

use crate::common;

/// A small deterministic generator, so examples are random-looking (high
/// entropy) yet the same on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self, alphabet: &[u8], count: usize) -> String {
        (0..count)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

/// Expands the placeholders of tests/fixtures/secrets/rule-examples.toml.
fn expand(template: &str, random: &mut Random) -> String {
    const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let token = &rest[open + 1..open + close];
        let (kind, count) = token.split_once(':').unwrap_or((token, "0"));
        let count: usize = count.parse().unwrap_or(0);
        let expanded = match kind {
            "an" => random.pick(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                count,
            ),
            "alpha" => random.pick(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                count,
            ),
            "hex" => random.pick(b"0123456789abcdef", count),
            "ldn" => random.pick(b"abcdefghijklmnopqrstuvwxyz0123456789", count),
            "ld" => random.pick(b"abcdefghijklmnopqrstuvwxyz234567", count),
            "UD" => random.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", count),
            "B32" => random.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", count),
            "digit" => random.pick(b"0123456789", count),
            "b64" => random.pick(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                count,
            ),
            "bech" => random.pick(b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", count),
            "uuid" => {
                let hex = b"0123456789abcdef";
                format!(
                    "{}-{}-4{}-a{}-{}",
                    random.pick(hex, 8),
                    random.pick(hex, 4),
                    random.pick(hex, 3),
                    random.pick(hex, 3),
                    random.pick(hex, 12)
                )
            }
            "dash5" => "-----".to_owned(),
            _ => {
                let _ = LOWER;
                format!("{{{token}}}")
            }
        };
        out.push_str(&expanded);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn default_scanner() -> Scanner {
    Scanner::new(RulePack::builtin().unwrap_or_else(|err| panic!("{err}")))
}

fn scan_text(scanner: &Scanner, path: &str, text: &str) -> Vec<Finding> {
    scanner
        .scan(Origin { path, commit: None }, text.as_bytes())
        .findings
}

fn scan_dir(root: &Path, scanner: &Scanner) -> portcullis::gates::secrets::Collected {
    let repo = RepoView::new(root).expect("root exists");
    scan_tree(&repo, scanner, &SecretsOptions::default())
}

fn lines_of(finding: &Finding) -> (u32, u32) {
    let location = finding
        .location
        .as_ref()
        .expect("secrets findings have a location");
    (
        location.start_line.unwrap_or(0),
        location.end_line.unwrap_or(0),
    )
}

fn path_of(finding: &Finding) -> &str {
    &finding.location.as_ref().expect("location").path
}

#[derive(Debug, serde::Deserialize)]
struct Examples {
    example: Vec<Example>,
}

#[derive(Debug, serde::Deserialize)]
struct Example {
    rule: String,
    positive: String,
    negative: String,
}

#[test]
fn every_rule_has_examples_and_they_hold() {
    let text =
        std::fs::read_to_string(repo_root().join("tests/fixtures/secrets/rule-examples.toml"))
            .expect("examples file");
    let examples: Examples = toml::from_str(&text).expect("examples parse");
    let scanner = default_scanner();
    let ids: BTreeSet<&str> = scanner.pack().rules.iter().map(|r| r.id.as_str()).collect();
    let covered: BTreeSet<&str> = examples.example.iter().map(|e| e.rule.as_str()).collect();
    assert_eq!(
        ids, covered,
        "every rule needs exactly the examples of its id"
    );
    assert!(ids.len() >= 100, "{} rules", ids.len());

    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut failures = Vec::new();
    for example in &examples.example {
        let positive = expand(&example.positive, &mut random);
        let found = scan_text(&scanner, "src/example.txt", &positive);
        if !found.iter().any(|f| f.rule_id == example.rule) {
            let got: Vec<&str> = found.iter().map(|f| f.rule_id.as_str()).collect();
            failures.push(format!(
                "{}: positive not found (got {got:?})",
                example.rule
            ));
        }
        let negative = expand(&example.negative, &mut random);
        let found = scan_text(&scanner, "src/example.txt", &negative);
        if found.iter().any(|f| f.rule_id == example.rule) {
            failures.push(format!("{}: negative matched", example.rule));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The secret of a finding never shows in anything a report could print.
fn assert_redacted(findings: &[Finding], secret: &str) {
    let json = serde_json::to_string(findings).expect("serialise");
    assert!(
        !json.contains(secret),
        "secret leaked into a finding: {json}"
    );
}

#[test]
fn case_013_pkcs1_and_pkcs8_keys_are_one_finding_each() {
    let root = common::shared_path("cases/013-secret-pkcs1-rsa-private-key/repo");
    let collected = scan_dir(&root, &default_scanner());
    let mut got: Vec<(String, String, (u32, u32))> = collected
        .findings
        .iter()
        .map(|f| (path_of(f).to_owned(), f.rule_id.clone(), lines_of(f)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "deploy/service.key".to_owned(),
                "private-key".to_owned(),
                (1, 16)
            ),
            (
                "deploy/signing.pem".to_owned(),
                "private-key".to_owned(),
                (1, 15)
            ),
        ]
    );
    assert_redacted(&collected.findings, "MII");
}

#[test]
fn case_014_env_password_spans_one_line_and_the_secret_columns() {
    let root = common::shared_path("cases/014-secret-env-finding-line-span/repo");
    let collected = scan_dir(&root, &default_scanner());
    assert_eq!(collected.findings.len(), 1, "{:#?}", collected.findings);
    let location = collected.findings[0].location.clone().expect("location");
    assert_eq!(location.path, ".env.prod");
    assert_eq!((location.start_line, location.end_line), (Some(4), Some(4)));
    assert_eq!(
        (location.start_column, location.end_column),
        (Some(12), Some(33))
    );
    assert_redacted(&collected.findings, "8fed3f48d9151ee4074bcc");
}

#[test]
fn case_015_lockfile_and_asset_hashes_are_not_secrets() {
    let root = common::shared_path("cases/015-secret-lockfile-hash-false-positive/repo");
    let collected = scan_dir(&root, &default_scanner());
    assert!(collected.findings.is_empty(), "{:#?}", collected.findings);
    assert!(collected.errors.is_empty());
    assert_eq!(
        collected.stats.get("files_scanned").copied().unwrap_or(0)
            + collected
                .stats
                .get("skipped_allowlisted")
                .copied()
                .unwrap_or(0),
        4
    );
}

#[test]
fn case_015_lockfile_integrity_is_not_an_aws_secret_even_unallowlisted() {
    // The lockfile allowlist must not be what saves us: the AWS rule itself
    // needs AWS context (https://github.com/gitleaks/gitleaks/issues/538).
    let root = common::shared_path("cases/015-secret-lockfile-hash-false-positive/repo");
    let text = std::fs::read_to_string(root.join("web/package-lock.json")).expect("read");
    let found = scan_text(&default_scanner(), "web/renamed.json", &text);
    assert!(
        !found.iter().any(|f| f.rule_id.starts_with("aws")),
        "{found:#?}"
    );
}

#[test]
fn case_017_base64_pem_in_a_kubernetes_secret_is_found_on_its_line() {
    let root = common::shared_path("cases/017-secret-base64-pem-in-k8s-secret/repo");
    let collected = scan_dir(&root, &default_scanner());
    assert_eq!(collected.findings.len(), 1, "{:#?}", collected.findings);
    let finding = &collected.findings[0];
    assert_eq!(finding.rule_id, "private-key");
    assert_eq!(path_of(finding), "k8s/api-tls.yaml");
    assert_eq!(lines_of(finding), (9, 9));
    assert!(finding.message.contains("base64"), "{}", finding.message);
}

#[test]
fn case_018_allowlist_is_scoped_to_its_rule_and_path() {
    let root = common::shared_path("cases/018-secret-allowlist-scoped-to-rule-and-path/repo");
    let pack = RulePack::load(&root.join(".gitleaks.toml")).unwrap_or_else(|err| panic!("{err}"));
    let collected = scan_dir(&root, &Scanner::new(pack));
    let mut got: Vec<(String, String, (u32, u32))> = collected
        .findings
        .iter()
        .map(|f| (path_of(f).to_owned(), f.rule_id.clone(), lines_of(f)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "fixtures/test_key.pem".to_owned(),
                "private-key".to_owned(),
                (1, 15)
            ),
            (
                "src/settings.py".to_owned(),
                "generic-api-key".to_owned(),
                (4, 4)
            ),
        ]
    );
}

#[test]
fn case_018_target_rules_allowlist_really_silences_the_generic_rule() {
    // Without the allowlist the generic rule does fire on the GUID line, so
    // the case's "no finding" is the allowlist's doing.
    let root = common::shared_path("cases/018-secret-allowlist-scoped-to-rule-and-path/repo");
    let text = std::fs::read_to_string(root.join("fixtures/refactorlog.xml")).expect("read");
    let pack = RulePack::parse(
        "[[rules]]\nid = \"generic-api-key\"\nregex = '''(?i)key=\"([0-9a-f-]{36})\"'''\n",
        Path::new("t.toml"),
        false,
    )
    .unwrap_or_else(|err| panic!("{err}"));
    let found = scan_text(
        &Scanner::new(pack.clone()),
        "fixtures/refactorlog.xml",
        &text,
    );
    assert_eq!(found.len(), 1);
    let mut with_allowlist = pack;
    let config = RulePack::load(&root.join(".gitleaks.toml")).unwrap_or_else(|err| panic!("{err}"));
    with_allowlist.allowlists = config.allowlists;
    let found = scan_text(
        &Scanner::new(with_allowlist),
        "fixtures/refactorlog.xml",
        &text,
    );
    assert!(found.is_empty(), "{found:#?}");
}

/// A credential-shaped value built at run time: a GitHub-style token with
/// random characters (no valid checksum, so it is fake by construction).
fn fake_token(seed: u64) -> String {
    let mut random = Random(seed);
    format!(
        "gh{}_{}",
        "p",
        random.pick(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            36
        )
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn secrets_policy(extra: &str) -> portcullis::policy::Policy {
    common::policy(&format!(
        "version = 1\n[[stage]]\nname = \"static\"\ngates = [\"secrets\"]\n[gates.secrets]\n{extra}\n"
    ))
}

fn gate_report(result: &portcullis::pipeline::PipelineResult) -> &portcullis::pipeline::GateReport {
    result
        .gates
        .iter()
        .find(|g| g.id == "secrets")
        .expect("the secrets gate ran")
}

#[test]
fn history_mode_finds_a_deleted_secret_and_names_the_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let token = fake_token(7);
    git(root, &["init", "-q"]);
    std::fs::write(root.join("README.md"), "hello\n").expect("write");
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "first"]);
    std::fs::create_dir_all(root.join("app")).expect("mkdir");
    std::fs::write(
        root.join("app/config.py"),
        format!("# settings\nTOKEN = \"{token}\"\n"),
    )
    .expect("write");
    // The same content under a second path is the same blob: scanned once.
    std::fs::write(
        root.join("app/copy.py"),
        format!("# settings\nTOKEN = \"{token}\"\n"),
    )
    .expect("write");
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "add config"]);
    let leaking = git(root, &["rev-parse", "HEAD"]);
    std::fs::remove_file(root.join("app/config.py")).expect("rm");
    std::fs::remove_file(root.join("app/copy.py")).expect("rm");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "remove config"]);

    // Tree mode sees nothing: the secret is gone from the working tree.
    let tree = common::run(root, secrets_policy(""), &["secrets"]);
    assert!(gate_report(&tree).findings.is_empty());

    let result = common::run(root, secrets_policy("mode = \"history\""), &["secrets"]);
    let report = gate_report(&result);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let finding = &report.findings[0];
    assert_eq!(finding.rule_id, "github-pat");
    assert_eq!(lines_of(finding), (2, 2));
    assert!(path_of(finding).starts_with("app/"));
    let portcullis::finding::Payload::Secret(payload) = &finding.payload else {
        panic!("secret payload");
    };
    assert_eq!(payload.commit.as_deref(), Some(leaking.as_str()));
    assert_eq!(report.stats.get("commits"), Some(&3));
    // README, config (one blob for two paths): two distinct blobs.
    assert_eq!(report.stats.get("blobs"), Some(&2));
    assert_redacted(&report.findings, &token);
    assert_eq!(result.verdict, portcullis::pipeline::Verdict::Failed);
}

/// A secret left untouched by later commits is still credited to the commit
/// that added it, not to the newest commit that holds it (the history walk
/// starts at the tip, so it must be reordered parents first).
#[test]
fn history_mode_credits_the_commit_that_introduced_a_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    git(root, &["init", "-q"]);
    std::fs::write(root.join("README.md"), "hello\n").expect("write");
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "first"]);
    let config = format!("TOKEN = \"{}\"\n", fake_token(11));
    std::fs::write(root.join("config.py"), &config).expect("write");
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "add config"]);
    let leaking = git(root, &["rev-parse", "HEAD"]);
    for index in 0..5 {
        std::fs::write(root.join("README.md"), format!("edit {index}\n")).expect("write");
        // Later edits of the same file make new blobs holding the same
        // secret: still one finding, at the commit that added it.
        std::fs::write(root.join("config.py"), format!("{config}# edit {index}\n")).expect("write");
        git(root, &["commit", "-qam", "unrelated"]);
    }

    let result = common::run(root, secrets_policy("mode = \"history\""), &["secrets"]);
    let report = gate_report(&result);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let portcullis::finding::Payload::Secret(payload) = &report.findings[0].payload else {
        panic!("secret payload");
    };
    assert_eq!(payload.commit.as_deref(), Some(leaking.as_str()));
    assert_eq!(report.stats.get("commits"), Some(&7));
    assert_eq!(report.stats.get("repeated_in_later_commits"), Some(&5));
}

#[test]
fn history_mode_on_a_shallow_clone_warns_and_scans_what_is_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    let origin = dir.path().join("origin");
    std::fs::create_dir_all(&origin).expect("mkdir");
    git(&origin, &["init", "-q"]);
    for index in 0..3 {
        std::fs::write(origin.join("a.txt"), format!("{index}\n")).expect("write");
        git(&origin, &["add", "."]);
        git(&origin, &["commit", "-qm", "c"]);
    }
    let url = format!("file://{}", origin.display());
    git(
        dir.path(),
        &["clone", "-q", "--depth", "1", &url, "shallow"],
    );
    let result = common::run(
        &dir.path().join("shallow"),
        secrets_policy("mode = \"history\""),
        &["secrets"],
    );
    let report = gate_report(&result);
    assert!(
        report.warnings.iter().any(|w| w.contains("shallow")),
        "{:?}",
        report.warnings
    );
    assert_eq!(report.stats.get("commits"), Some(&1));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn history_mode_reports_a_corrupt_object_without_panicking() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    git(root, &["init", "-q"]);
    std::fs::write(root.join("a.txt"), "some text that will be corrupted\n").expect("write");
    std::fs::write(
        root.join("b.txt"),
        format!("TOKEN = \"{}\"\n", fake_token(11)),
    )
    .expect("write");
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "c"]);
    let blob = git(root, &["rev-parse", "HEAD:a.txt"]);
    let object = root.join(".git/objects").join(&blob[..2]).join(&blob[2..]);
    let mut perms = std::fs::metadata(&object).expect("object").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&object, perms).expect("chmod");
    std::fs::write(&object, b"this is not zlib data at all").expect("corrupt");

    let result = common::run(root, secrets_policy("mode = \"history\""), &["secrets"]);
    let report = gate_report(&result);
    assert!(
        !report.errors.is_empty(),
        "a corrupt object must be an error"
    );
    assert!(
        report.errors.iter().any(|e| e.contains("a.txt")),
        "{:?}",
        report.errors
    );
    // The rest is still scanned.
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.outcome, portcullis::pipeline::Outcome::Errored);
}

#[test]
fn staged_mode_scans_only_what_commit_would_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    git(root, &["init", "-q"]);
    std::fs::write(
        root.join("old.py"),
        format!("TOKEN = \"{}\"\n", fake_token(21)),
    )
    .expect("write");
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "c"]);
    // Staged: a new secret. Unstaged: another one, only in the worktree.
    std::fs::write(
        root.join("staged.py"),
        format!("\n\nTOKEN = \"{}\"\n", fake_token(22)),
    )
    .expect("write");
    git(root, &["add", "staged.py"]);
    std::fs::write(
        root.join("unstaged.py"),
        format!("TOKEN = \"{}\"\n", fake_token(23)),
    )
    .expect("write");

    let result = common::run(root, secrets_policy("mode = \"staged\""), &["secrets"]);
    let report = gate_report(&result);
    let paths: Vec<&str> = report.findings.iter().map(path_of).collect();
    assert_eq!(paths, ["staged.py"]);
    assert_eq!(lines_of(&report.findings[0]), (3, 3));
}

#[test]
fn bad_input_in_the_tree_is_scanned_or_skipped_and_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let token = fake_token(31);
    // Invalid UTF-8 around a secret: still found.
    let mut bytes = b"\xff\xfe\xfd junk\n".to_vec();
    bytes.extend_from_slice(format!("TOKEN = \"{token}\" ").as_bytes());
    bytes.extend_from_slice(b"\xc3\n");
    std::fs::write(root.join("latin1.txt"), &bytes).expect("write");
    // Binary: skipped and counted.
    std::fs::write(root.join("blob.bin"), [0u8, 1, 2, 3, 0, 255]).expect("write");
    // A huge single-line "minified" file with the secret at its end.
    let mut line = "var a=1;".repeat(400_000);
    line.push_str(&format!("var t=\"{token}\";"));
    std::fs::write(root.join("app.min.js"), &line).expect("write");
    // A deep tree.
    let deep: std::path::PathBuf = (0..60).map(|i| format!("d{i}")).collect();
    std::fs::create_dir_all(root.join(&deep)).expect("mkdir");
    std::fs::write(
        root.join(&deep).join("deep.env"),
        format!("TOKEN={token}\n"),
    )
    .expect("write");
    // A symlink loop.
    #[cfg(unix)]
    std::os::unix::fs::symlink(root, root.join("loop")).expect("symlink");

    let result = common::run(root, secrets_policy(""), &["secrets"]);
    let report = gate_report(&result);
    let mut paths: Vec<&str> = report.findings.iter().map(path_of).collect();
    paths.sort();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(paths.contains(&"app.min.js") && paths.contains(&"latin1.txt"));
    assert_eq!(report.stats.get("skipped_binary"), Some(&1));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_redacted(&report.findings, &token);

    // Above max-file-size: skipped, counted and warned about.
    let result = common::run(root, secrets_policy("max-file-size = 100000"), &["secrets"]);
    let report = gate_report(&result);
    assert_eq!(report.stats.get("skipped_large"), Some(&1));
    assert!(
        report.warnings.iter().any(|w| w.contains("app.min.js")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn a_user_rule_that_does_not_compile_errors_with_rule_id_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::write(
        root.join("rules.toml"),
        "title = \"mine\"\n\n[[rules]]\nid = \"ok\"\nregex = 'ok'\n\n[[rules]]\nid = \"bad-one\"\ndescription = \"broken\"\nregex = '''[a-'''\n",
    )
    .expect("write");
    std::fs::write(root.join("a.txt"), "nothing\n").expect("write");
    let policy = portcullis::policy::Policy::from_toml(
        "version = 1\n[[stage]]\nname = \"s\"\ngates = [\"secrets\"]\n[gates.secrets]\nconfig = \"rules.toml\"\n",
        "portcullis.toml",
        Some(root.to_owned()),
    )
    .expect("policy");
    let result = common::run(root, policy, &["secrets"]);
    let report = gate_report(&result);
    assert_eq!(report.outcome, portcullis::pipeline::Outcome::Errored);
    let text = report.errors.join("\n");
    assert!(
        text.contains("bad-one") && text.contains("rules.toml") && text.contains("line 10"),
        "{text}"
    );
}

#[test]
fn inline_suppressions_are_counted_and_need_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let marker = ["portcullis", ":allow-secret"].concat();
    std::fs::write(
        root.join("a.py"),
        format!(
            "A = \"{}\"  # {marker} documented test vector\nB = \"{}\"  # {marker}\n",
            fake_token(41),
            fake_token(42)
        ),
    )
    .expect("write");
    let result = common::run(root, secrets_policy(""), &["secrets"]);
    let report = gate_report(&result);
    assert_eq!(report.suppressed_count(), 1);
    assert_eq!(report.stats.get("suppressed_inline"), Some(&1));
    let rules: BTreeSet<&str> = report.failing().map(|f| f.rule_id.as_str()).collect();
    assert_eq!(
        rules,
        BTreeSet::from(["github-pat", "secret-allow-without-reason"])
    );
}

#[test]
fn fingerprints_survive_moved_lines_and_differ_across_secrets() {
    let scanner = default_scanner();
    let token = fake_token(51);
    let a = scan_text(&scanner, "a.py", &format!("T = \"{token}\"\n"));
    let b = scan_text(
        &scanner,
        "a.py",
        &format!("\n\n# moved\nT   =   \"{token}\"\n"),
    );
    let c = scan_text(&scanner, "a.py", &format!("T = \"{}\"\n", fake_token(52)));
    assert_eq!(a[0].fingerprint, b[0].fingerprint);
    assert_ne!(a[0].fingerprint, c[0].fingerprint);
}

#[test]
fn this_repository_passes_its_own_secrets_gate() {
    // With the repository's own policy: its waivers (rule samples of the SAST
    // pack, which must hold fake credentials) are part of what is tested.
    let root = repo_root();
    let policy = portcullis::policy::Policy::load(&root.join("policies/portcullis.toml"))
        .unwrap_or_else(|err| panic!("{err}"));
    let result = common::run(root, policy, &["secrets"]);
    let report = gate_report(&result);
    let open: Vec<String> = report
        .findings
        .iter()
        .filter(|f| !f.is_suppressed())
        .map(|f| {
            let location = f
                .location
                .as_ref()
                .map(|l| l.to_string())
                .unwrap_or_default();
            format!("{} {location} {}", f.rule_id, f.message)
        })
        .collect();
    assert!(open.is_empty(), "{}", open.join("\n"));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

/// The planted corpus (`../shared/corpus/secrets`: 96 fake credentials of 38
/// kinds among 135 look-alike decoys). The full list of findings is held by
/// a snapshot; the decoy files that other scanners trip on are held here by
/// name, as are the plants that need more than a prefix to find.
#[test]
fn planted_corpus_finds_the_fakes_and_skips_the_decoys() {
    let root = common::shared_path("corpus/secrets");
    let collected = scan_dir(&root, &default_scanner());
    assert!(collected.errors.is_empty(), "{:?}", collected.errors);
    let mut found: Vec<String> = collected
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f.location
                    .as_ref()
                    .map(|l| l.to_string())
                    .unwrap_or_default(),
                f.rule_id
            )
        })
        .collect();
    found.sort();
    let in_file = |path: &str| {
        found
            .iter()
            .filter(|f| f.starts_with(&format!("{path}:")))
            .count()
    };

    // Decoys: placeholders, env references, ETags, SRI hashes, base64 test
    // vectors, the documented AWS example key, a publishable Stripe key.
    for decoy in [
        ".env.example",
        "app/settings.py",
        "crates/core/tests/vectors.rs",
        "deploy/helm/values/prod-values.yaml",
        "docs/aws-setup.md",
        "logs/access-2024-03-01.log",
        "web/public/index.html",
        "web/src/stripe-config.ts",
    ] {
        assert_eq!(in_file(decoy), 0, "decoy {decoy} matched: {found:#?}");
    }
    // Plants that need structure: a Django SECRET_KEY with punctuation, a
    // PEM key in a Kubernetes Secret block, a key at the end of minified JS.
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("tools/search_reducer.py:58:") && f.ends_with("session-secret")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("deploy/k8s/tls-secret.yaml:9") && f.ends_with("private-key")),
        "{found:#?}"
    );
    for finding in &collected.findings {
        let Payload::Secret(secret) = &finding.payload else {
            panic!("secret payload")
        };
        assert!(
            secret.redacted.ends_with('…'),
            "not redacted: {}",
            secret.redacted
        );
    }
    insta::assert_snapshot!("planted-corpus", found.join("\n"));
}
