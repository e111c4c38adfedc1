//! The secrets gate: every rule's examples, the shared cases 013–018, the
//! planted corpus, history and staged modes, and bad input.
//!
//! Credential-shaped strings are built at run time (random characters into
//! templates), never written into this repository, so the repository passes
//! its own gate and hosted push protection never sees a token-shaped string.

use std::collections::BTreeSet;
use std::path::Path;

use portcullis::finding::Finding;
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
