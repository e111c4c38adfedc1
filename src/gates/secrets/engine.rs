//! The matching core: keyword prefilter, one regex per rule, entropy,
//! allowlists, base64 decoding and inline suppressions, over one blob of
//! bytes at a time.
//!
//! The order is the one gitleaks uses and the one that makes scanning cheap:
//! an Aho-Corasick automaton finds which rules' keywords occur in the text at
//! all, only those rules' regexes run, the secret's Shannon entropy is
//! checked where the rule asks, and allowlists run last on the few
//! candidates left. Text is scanned as bytes, so invalid UTF-8 is read, not
//! refused. Nothing here reads files or logs: it is a pure function of the
//! bytes, the path and the pack, which is what makes it testable and lets
//! tree, history and staged modes share it.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use regex::bytes::Regex;
use sha2::{Digest, Sha256};

use super::config::{Candidate, RulePack};
use crate::finding::{Finding, Location, Payload, SecretPayload, Severity, Suppression};

/// The gate id findings carry.
pub const GATE: &str = "secrets";

/// The inline marker that suppresses a finding on its line, followed by a
/// reason.
pub const ALLOW_MARKER: &str = "portcullis:allow-secret";

/// The rule id of the finding reported for a marker without a reason.
pub const MARKER_WITHOUT_REASON: &str = "secret-allow-without-reason";

/// Base64 runs shorter than this are not decoded: below it, decoded text
/// is too short to hold a credential the rules would recognise, and
/// decoding every short token would cost time on every file.
const MIN_ENCODED_LEN: usize = 32;

/// Bytes of a file looked at to decide whether it is binary, as git does.
const BINARY_PROBE: usize = 8000;

/// A rule pack ready to scan: the pack plus its keyword automaton.
#[derive(Debug)]
pub struct Scanner {
    pack: RulePack,
    keywords: AhoCorasick,
    /// For each keyword pattern of the automaton, the rules that list it.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules without keywords: they run on every text.
    unconditional: Vec<usize>,
    encoded: Regex,
}

/// Where a blob comes from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// Repository-relative path with `/` separators.
    pub path: &'a str,
    /// The commit that introduced the blob (history mode).
    pub commit: Option<&'a str>,
}

/// What scanning one blob gave.
#[derive(Debug, Default)]
pub struct BlobScan {
    pub findings: Vec<Finding>,
    /// Whether a global path allowlist excluded the whole blob.
    pub allowlisted: bool,
}

/// One match that passed every check, before it becomes a [`Finding`].
#[derive(Debug, Clone)]
struct Hit {
    rule: usize,
    /// Byte span of the secret in the scanned text (for decoded hits: of
    /// the encoded run it came from).
    secret_start: usize,
    secret_end: usize,
    secret: Vec<u8>,
    entropy: Option<f64>,
    decoded: bool,
}

impl Scanner {
    pub fn new(pack: RulePack) -> Scanner {
        let mut patterns: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut unconditional = Vec::new();
        for (index, rule) in pack.rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                unconditional.push(index);
            }
            for keyword in &rule.keywords {
                match patterns.iter().position(|p| p == keyword) {
                    Some(existing) => keyword_rules[existing].push(index),
                    None => {
                        patterns.push(keyword.clone());
                        keyword_rules.push(vec![index]);
                    }
                }
            }
        }
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .expect("keywords are plain strings, which always build an automaton");
        let encoded = Regex::new(r"[A-Za-z0-9+/_-]{32,}={0,2}")
            .expect("the base64 run pattern is a valid regex");
        Scanner {
            pack,
            keywords,
            keyword_rules,
            unconditional,
            encoded,
        }
    }

    pub fn pack(&self) -> &RulePack {
        &self.pack
    }

    /// Scans one blob. Binary blobs should be filtered with [`is_binary`]
    /// first; this function reads whatever it is given.
    pub fn scan(&self, origin: Origin<'_>, text: &[u8]) -> BlobScan {
        let skip_file = self.pack.allowlists.iter().any(|a| {
            a.target_rules.is_empty() && a.is_paths_only() && a.is_path_allowed(origin.path)
        });
        if skip_file {
            return BlobScan {
                findings: Vec::new(),
                allowlisted: true,
            };
        }

        let mut hits = self.match_rules(origin, text, text, None);
        self.match_decoded(origin, text, &mut hits);
        let hits = resolve_overlaps(&self.pack, hits);

        let lines = LineIndex::new(text);
        let mut findings = Vec::with_capacity(hits.len());
        for hit in hits {
            self.emit(origin, text, &lines, hit, &mut findings);
        }
        BlobScan {
            findings,
            allowlisted: false,
        }
    }

    /// The rules whose keywords occur in `text`, plus those without any.
    fn candidate_rules(&self, text: &[u8]) -> Vec<usize> {
        let mut wanted = vec![false; self.pack.rules.len()];
        for &index in &self.unconditional {
            wanted[index] = true;
        }
        let mut seen = vec![false; self.keyword_rules.len()];
        let mut remaining = seen.len();
        for found in self.keywords.find_overlapping_iter(text) {
            let pattern = found.pattern().as_usize();
            if seen[pattern] {
                continue;
            }
            seen[pattern] = true;
            for &rule in &self.keyword_rules[pattern] {
                wanted[rule] = true;
            }
            remaining -= 1;
            if remaining == 0 {
                break;
            }
        }
        (0..wanted.len()).filter(|&i| wanted[i]).collect()
    }

    /// Runs the candidate rules over `text`. `original` is the blob as
    /// stored, used for allowlist `line` targets; `encoded_span` is set when
    /// `text` is decoded from that span of the original.
    fn match_rules(
        &self,
        origin: Origin<'_>,
        original: &[u8],
        text: &[u8],
        encoded_span: Option<(usize, usize)>,
    ) -> Vec<Hit> {
        let mut hits = Vec::new();
        for index in self.candidate_rules(text) {
            let rule = &self.pack.rules[index];
            if let Some(path) = &rule.path
                && !path.is_match(origin.path.as_bytes())
            {
                continue;
            }
            for captures in rule.regex.captures_iter(text) {
                let Some(whole) = captures.get(0) else {
                    continue;
                };
                let secret_match = match rule.secret_group {
                    Some(group) => captures.get(group),
                    None => (1..captures.len())
                        .filter_map(|g| captures.get(g))
                        .find(|m| !m.is_empty())
                        .or(Some(whole)),
                };
                let Some(secret_match) = secret_match else {
                    continue;
                };
                let secret = secret_match.as_bytes();
                if secret.is_empty() {
                    continue;
                }
                let entropy = rule.entropy.map(|_| shannon_entropy(secret));
                if let (Some(min), Some(actual)) = (rule.entropy, entropy)
                    && actual < min
                {
                    continue;
                }

                let (start, end) =
                    encoded_span.unwrap_or((secret_match.start(), secret_match.end()));
                let line = line_around(original, start, end);
                let candidate = Candidate {
                    path: origin.path,
                    commit: origin.commit,
                    secret,
                    matched: whole.as_bytes(),
                    line,
                };
                let allowed = rule.allowlists.iter().any(|a| a.allows(&candidate))
                    || self
                        .pack
                        .allowlists
                        .iter()
                        .any(|a| a.applies_to(&rule.id) && a.allows(&candidate));
                if allowed {
                    continue;
                }
                hits.push(Hit {
                    rule: index,
                    secret_start: start,
                    secret_end: end,
                    secret: secret.to_vec(),
                    entropy,
                    decoded: encoded_span.is_some(),
                });
            }
        }
        hits
    }

    /// Decodes base64 runs that turn out to be text and scans the text, so
    /// a PEM key stored encoded (a Kubernetes Secret, a CI variable) is
    /// found at the line of the encoded value.
    // See https://github.com/gitleaks/gitleaks/issues/1426 (case 017).
    fn match_decoded(&self, origin: Origin<'_>, text: &[u8], hits: &mut Vec<Hit>) {
        for run in self.encoded.find_iter(text) {
            let encoded = run.as_bytes();
            if encoded.len() < MIN_ENCODED_LEN {
                continue;
            }
            let Some(decoded) = decode_base64_text(encoded) else {
                continue;
            };
            hits.extend(self.match_rules(origin, text, &decoded, Some((run.start(), run.end()))));
        }
    }

    fn emit(
        &self,
        origin: Origin<'_>,
        text: &[u8],
        lines: &LineIndex,
        hit: Hit,
        findings: &mut Vec<Finding>,
    ) {
        let rule = &self.pack.rules[hit.rule];
        let (start_line, start_column) = lines.position(text, hit.secret_start);
        let last = hit.secret_end.saturating_sub(1).max(hit.secret_start);
        let (end_line, end_column) = lines.position(text, last);
        let location = Location::file(origin.path)
            .with_lines(start_line, end_line)
            .with_columns(start_column, end_column);
        let secret_hash = hash_secret(&hit.secret);
        let redacted = redact(&hit.secret);

        let mut message = rule.description.clone();
        if hit.decoded {
            message.push_str(" (found after base64 decoding)");
        }
        let mut builder = Finding::builder(GATE, rule.id.clone(), rule.severity, message)
            .location(location.clone())
            .help(
                "revoke and rotate the credential, remove it from the file (and from git history), \
                 and load it from a secret store at run time; if it is not a secret, add \
                 `portcullis:allow-secret <reason>` on the line or a waiver in the policy",
            )
            .evidence(secret_hash.clone())
            .payload(Payload::Secret(SecretPayload {
                redacted: redacted.clone(),
                secret_hash,
                commit: origin.commit.map(str::to_owned),
                entropy: hit.entropy.map(|e| (e * 100.0).round() / 100.0),
            }));

        match inline_marker(lines, text, start_line, end_line) {
            Some(Marker::WithReason(reason)) => {
                let reason = scrub(&reason, &hit.secret, &redacted);
                builder = builder.suppressed(Suppression::Inline { reason });
            }
            Some(Marker::WithoutReason(line)) => {
                findings.push(
                    Finding::builder(
                        GATE,
                        MARKER_WITHOUT_REASON,
                        Severity::Low,
                        format!("`{ALLOW_MARKER}` without a reason does not suppress a finding"),
                    )
                    .location(Location::line(origin.path, line))
                    .help(format!(
                        "write why the value is not a secret: `{ALLOW_MARKER} <reason>`"
                    ))
                    .evidence(format!("{}:{}", rule.id, redacted))
                    .build(),
                );
            }
            None => {}
        }
        findings.push(builder.build());
    }
}

/// Whether a blob looks binary: a NUL byte in its first 8000 bytes, the
/// test git itself uses.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_PROBE)].contains(&0)
}

/// Shannon entropy in bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

/// 32 hex digits of SHA-256 over the secret: enough to recognise the same
/// secret again (baselines, fingerprints), never the secret itself.
pub fn hash_secret(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    format!("sha256:{}", hex::encode(&digest[..16]))
}

/// The first few characters of a secret and an ellipsis: at most 4, and
/// never more than a fifth of it, so short secrets reveal almost nothing.
pub fn redact(secret: &[u8]) -> String {
    let text = String::from_utf8_lossy(secret);
    let count = text.chars().count();
    let shown = (count / 5).min(4);
    let prefix: String = text
        .chars()
        .take(shown)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    format!("{prefix}…")
}

/// Generic rules give way to a specific rule that found an overlapping
/// secret, and the same rule never reports the same span twice.
fn resolve_overlaps(pack: &RulePack, mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by_key(|h| (h.secret_start, h.secret_end, h.rule));
    hits.dedup_by(|a, b| {
        a.rule == b.rule && a.secret_start == b.secret_start && a.secret_end == b.secret_end
    });
    let specific: Vec<(usize, usize)> = hits
        .iter()
        .filter(|h| !pack.rules[h.rule].is_generic)
        .map(|h| (h.secret_start, h.secret_end))
        .collect();
    hits.retain(|hit| {
        !pack.rules[hit.rule].is_generic
            || !specific
                .iter()
                .any(|&(start, end)| start < hit.secret_end && hit.secret_start < end)
    });
    // Two generic rules on one secret: keep the first.
    let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
    for hit in hits {
        let duplicate = pack.rules[hit.rule].is_generic
            && kept.iter().any(|k| {
                pack.rules[k.rule].is_generic
                    && k.secret_start < hit.secret_end
                    && hit.secret_start < k.secret_end
            });
        if !duplicate {
            kept.push(hit);
        }
    }
    kept
}

/// Decodes a base64 run (standard or URL-safe alphabet) and returns it when
/// it is text: valid UTF-8, almost all printable.
fn decode_base64_text(encoded: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let url_safe = encoded.iter().any(|&b| b == b'-' || b == b'_');
    let alphabet = if url_safe {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    let decoded = GeneralPurpose::new(alphabet, config).decode(encoded).ok()?;
    let printable = decoded
        .iter()
        .filter(|&&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b))
        .count();
    let is_text = !decoded.is_empty() && printable * 100 >= decoded.len() * 95;
    is_text.then_some(decoded)
}

/// The full lines that hold `start..end`.
fn line_around(text: &[u8], start: usize, end: usize) -> &[u8] {
    let start = start.min(text.len());
    let end = end.clamp(start, text.len());
    let line_start = text[..start]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let line_end = text[end..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |p| end + p);
    &text[line_start..line_end]
}

/// Offsets of line starts, for turning byte offsets into lines and columns.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &[u8]) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, text: &[u8], offset: usize) -> (u32, u32) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let prefix = &text[start..offset.min(text.len())];
        let column = String::from_utf8_lossy(prefix).chars().count() + 1;
        (to_u32(line), to_u32(column))
    }

    /// The bytes of a 1-based line, without its newline.
    fn line<'t>(&self, text: &'t [u8], line: u32) -> &'t [u8] {
        let index = line as usize - 1;
        let Some(&start) = self.starts.get(index) else {
            return &[];
        };
        let end = self
            .starts
            .get(index + 1)
            .map_or(text.len(), |&next| next - 1);
        &text[start..end.max(start)]
    }
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

enum Marker {
    WithReason(String),
    /// The marker is there but says nothing; the line it is on.
    WithoutReason(u32),
}

/// Looks for the allow marker on the first and last line of a finding.
fn inline_marker(lines: &LineIndex, text: &[u8], start: u32, end: u32) -> Option<Marker> {
    let candidates = if start == end {
        vec![start]
    } else {
        vec![start, end]
    };
    for line_number in candidates {
        let line = lines.line(text, line_number);
        let Some(at) = find(line, ALLOW_MARKER.as_bytes()) else {
            continue;
        };
        let rest = String::from_utf8_lossy(&line[at + ALLOW_MARKER.len()..]).into_owned();
        let reason = rest
            .trim()
            .trim_start_matches(':')
            .trim()
            .trim_end_matches("*/")
            .trim_end_matches("-->")
            .trim_end_matches("#}")
            .trim()
            .to_owned();
        let has_words = reason.chars().any(char::is_alphanumeric);
        return Some(if has_words {
            Marker::WithReason(reason.chars().take(200).collect())
        } else {
            Marker::WithoutReason(line_number)
        });
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Keeps the secret out of a reason written after it on the same line.
fn scrub(reason: &str, secret: &[u8], redacted: &str) -> String {
    let secret = String::from_utf8_lossy(secret);
    if secret.is_empty() {
        return reason.to_owned();
    }
    reason.replace(secret.as_ref(), redacted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::secrets::config::RulePack;
    use std::path::Path;

    fn scanner(text: &str) -> Scanner {
        Scanner::new(
            RulePack::parse(text, Path::new("t.toml"), false).unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn scan(scanner: &Scanner, path: &str, text: &str) -> Vec<Finding> {
        scanner
            .scan(Origin { path, commit: None }, text.as_bytes())
            .findings
    }

    const PACK: &str = r#"
[[rules]]
id = "tok"
description = "A token"
regex = '''tok_([a-z0-9]{10})'''
keywords = ["tok_"]

[[rules]]
id = "generic-thing"
description = "Generic"
regex = '''(?i)secret\s*=\s*"([^"]{8,})"'''
entropy = 3.0
keywords = ["secret"]
[rules.allowlist]
stopwords = ["example"]
"#;

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn keyword_gates_the_rule_and_group_gives_columns() {
        let scanner = scanner(PACK);
        let text = "x\n  a = tok_abcdef1234\n";
        let findings = scan(&scanner, "a.txt", text);
        assert_eq!(findings.len(), 1);
        let location = findings[0].location.clone().expect("location");
        assert_eq!(
            (location.start_line, location.start_column),
            (Some(2), Some(11))
        );
        assert_eq!(location.end_column, Some(20));
        let Payload::Secret(payload) = &findings[0].payload else {
            panic!("secret payload");
        };
        assert!(!payload.redacted.contains("abcdef1234"));
    }

    #[test]
    fn entropy_and_stopwords_filter() {
        let scanner = scanner(PACK);
        assert!(scan(&scanner, "a", "secret = \"aaaaaaaaaaaa\"").is_empty());
        assert!(scan(&scanner, "a", "secret = \"example-Zq8#kP2x\"").is_empty());
        assert_eq!(scan(&scanner, "a", "secret = \"Zq8#kP2xLm4$\"").len(), 1);
    }

    #[test]
    fn fingerprint_ignores_line_but_not_secret() {
        let scanner = scanner(PACK);
        let a = scan(&scanner, "a", "tok_abcdef1234");
        let b = scan(&scanner, "a", "\n\n\ntok_abcdef1234");
        let c = scan(&scanner, "a", "tok_abcdef9999");
        assert_eq!(a[0].fingerprint, b[0].fingerprint);
        assert_ne!(a[0].fingerprint, c[0].fingerprint);
    }

    #[test]
    fn inline_marker_needs_a_reason() {
        let scanner = scanner(PACK);
        let with = scan(
            &scanner,
            "a",
            "tok_abcdef1234 # portcullis:allow-secret test vector",
        );
        assert_eq!(with.len(), 1);
        assert_eq!(
            with[0].suppression,
            Some(Suppression::Inline {
                reason: "test vector".to_owned()
            })
        );
        let without = scan(&scanner, "a", "tok_abcdef1234 # portcullis:allow-secret");
        assert_eq!(without.len(), 2);
        assert!(without.iter().all(|f| f.suppression.is_none()));
        assert!(without.iter().any(|f| f.rule_id == MARKER_WITHOUT_REASON));
    }

    #[test]
    fn reason_never_repeats_the_secret() {
        let scanner = scanner(PACK);
        let found = scan(&scanner, "a", "# portcullis:allow-secret ok tok_abcdef1234");
        let Some(Suppression::Inline { reason }) = &found[0].suppression else {
            panic!("suppressed");
        };
        assert!(!reason.contains("abcdef1234"), "{reason}");
    }

    #[test]
    fn generic_gives_way_to_specific() {
        let scanner = scanner(PACK);
        let found = scan(&scanner, "a", "secret = \"tok_abcdef1234\"");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule_id, "tok");
    }

    #[test]
    fn base64_encoded_secret_is_found_at_the_encoded_line() {
        let scanner = scanner(PACK);
        let encoded = base64::engine::general_purpose::STANDARD
            .encode("key: tok_abcdef1234 and some more text"); // portcullis:allow-secret test vector
        let found = scan(&scanner, "a", &format!("a: 1\nvalue: {encoded}\n"));
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("base64"));
        assert_eq!(
            found[0].location.as_ref().and_then(|l| l.start_line),
            Some(2)
        );
    }

    #[test]
    fn redaction_shows_little() {
        assert_eq!(redact(b"abcdefghijklmnopqrstuvwxyz"), "abcd…");
        assert_eq!(redact(b"abcdefgh"), "a…");
        assert_eq!(redact(b"abc"), "…");
    }

    #[test]
    fn invalid_utf8_is_scanned() {
        let scanner = scanner(PACK);
        let mut bytes = b"\xff\xfe tok_abcdef1234 \xc3".to_vec();
        bytes.push(b'\n');
        let found = scanner
            .scan(
                Origin {
                    path: "a",
                    commit: None,
                },
                &bytes,
            )
            .findings;
        assert_eq!(found.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let scanner = scanner(PACK);
            let _ = scanner.scan(Origin { path: "a", commit: None }, &bytes);
        }

        #[test]
        fn redaction_never_shows_more_than_a_fifth(secret in "\\PC{0,60}") {
            let shown = redact(secret.as_bytes()).chars().count() - 1;
            proptest::prop_assert!(shown * 5 <= secret.chars().count());
        }
    }
}
