//! Loading SAST rules: ast-grep rule YAML plus the metadata Portcullis reads
//! from it (severity, CWE, OWASP, references).
//!
//! A rule file holds one or more YAML documents separated by `---`, each an
//! ast-grep rule (`id`, `language`, `rule`, `message`, `note`, `severity`,
//! `files`, `ignores`, `metadata`, …). Documents are parsed one at a time so
//! an error can name the file, the line the document starts on and the rule
//! id. The default pack is compiled into the binary, so the gate works on any
//! repository without the `policies/` folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ast_grep_config::{GlobalRules, RuleConfig, SerializableRuleConfig};
use ast_grep_core::Matcher;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use super::language::SastLanguage;
use crate::finding::Severity;

/// The default rule pack: every file of `policies/sast/`, embedded. A unit
/// test checks that this list and the folder agree.
pub const DEFAULT_PACK: &[(&str, &str)] = &[
    (
        "policies/sast/rust-tls.yml",
        include_str!("../../../policies/sast/rust-tls.yml"),
    ),
    (
        "policies/sast/rust-injection.yml",
        include_str!("../../../policies/sast/rust-injection.yml"),
    ),
    (
        "policies/sast/rust-crypto.yml",
        include_str!("../../../policies/sast/rust-crypto.yml"),
    ),
    (
        "policies/sast/rust-jwt.yml",
        include_str!("../../../policies/sast/rust-jwt.yml"),
    ),
    (
        "policies/sast/rust-web.yml",
        include_str!("../../../policies/sast/rust-web.yml"),
    ),
    (
        "policies/sast/rust-secrets.yml",
        include_str!("../../../policies/sast/rust-secrets.yml"),
    ),
    (
        "policies/sast/rust-filesystem.yml",
        include_str!("../../../policies/sast/rust-filesystem.yml"),
    ),
    (
        "policies/sast/rust-unsafe.yml",
        include_str!("../../../policies/sast/rust-unsafe.yml"),
    ),
    (
        "policies/sast/shell.yml",
        include_str!("../../../policies/sast/shell.yml"),
    ),
];

/// A rule ready to run, with the metadata findings carry.
pub struct SastRule {
    pub id: String,
    pub language: SastLanguage,
    pub severity: Severity,
    pub message: String,
    /// Why it matters and how to fix it.
    pub note: Option<String>,
    pub cwe: Vec<String>,
    pub owasp: Vec<String>,
    /// CWE and OWASP pages, then the rule's own `url` and `references`.
    pub references: Vec<String>,
    /// The file the rule came from, as the user named it.
    pub source: String,
    pub config: RuleConfig<SastLanguage>,
    files: Option<GlobSet>,
    ignores: Option<GlobSet>,
}

impl std::fmt::Debug for SastRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SastRule")
            .field("id", &self.id)
            .field("language", &self.language)
            .field("severity", &self.severity)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl SastRule {
    /// Whether the rule's `files`/`ignores` globs let it run on this
    /// repository-relative path.
    pub fn applies_to(&self, relative: &str) -> bool {
        if self
            .ignores
            .as_ref()
            .is_some_and(|set| set.is_match(relative))
        {
            return false;
        }
        self.files.as_ref().is_none_or(|set| set.is_match(relative))
    }

    /// The node kinds the rule can match, used to visit each node once for
    /// all rules instead of once per rule.
    pub fn potential_kinds(&self) -> Vec<usize> {
        match self.config.matcher.potential_kinds() {
            Some(kinds) => kinds.iter().collect(),
            None => Vec::new(),
        }
    }
}

/// A rule file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct RuleLoadError {
    /// The file, as the user named it.
    pub file: String,
    /// The 1-based line the problem is on, or the document starts on.
    pub line: Option<u32>,
    pub rule_id: Option<String>,
    pub message: String,
}

impl RuleLoadError {
    fn describe(&self) -> String {
        let mut text = format!("invalid SAST rule file `{}`", self.file);
        if let Some(line) = self.line {
            text.push_str(&format!(" at line {line}"));
        }
        if let Some(id) = &self.rule_id {
            text.push_str(&format!(", rule `{id}`"));
        }
        text.push_str(": ");
        text.push_str(&self.message);
        text
    }
}

/// What Portcullis reads from a rule's `metadata`; other keys are kept by
/// ast-grep and ignored here.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PortcullisMetadata {
    severity: Option<String>,
    #[serde(default)]
    cwe: OneOrMany,
    #[serde(default)]
    owasp: OneOrMany,
    #[serde(default)]
    references: OneOrMany,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// Only the id, read first so a later error in the document can name it.
#[derive(Debug, Deserialize)]
struct IdOnly {
    id: Option<serde_json::Value>,
}

/// Parses every rule in `text`; `file` names it in errors.
pub fn parse_rule_file(file: &str, text: &str) -> Result<Vec<SastRule>, RuleLoadError> {
    let globals = GlobalRules::default();
    let mut rules = Vec::new();
    for (start_line, document) in split_documents(text) {
        if document.lines().all(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#')
        }) {
            continue;
        }
        rules.push(parse_rule(file, start_line, document, &globals)?);
    }
    Ok(rules)
}

fn parse_rule(
    file: &str,
    start_line: u32,
    document: &str,
    globals: &GlobalRules,
) -> Result<SastRule, RuleLoadError> {
    let error = |rule_id: Option<&str>, message: String| RuleLoadError {
        file: file.to_owned(),
        line: Some(start_line),
        rule_id: rule_id.map(str::to_owned),
        message,
    };

    // The id first, so every later error can name the rule.
    let id_only: IdOnly = ast_grep_config::from_str(document).map_err(|err| {
        error(
            None,
            format!("not valid YAML: {}", one_line(&err.to_string())),
        )
    })?;
    let id = match id_only.id {
        Some(serde_json::Value::String(id)) if !id.trim().is_empty() => id,
        Some(other) => {
            return Err(error(
                None,
                format!("`id` must be a string, found `{other}`"),
            ));
        }
        None => return Err(error(None, "the rule has no `id`".to_owned())),
    };
    if !is_kebab_case(&id) {
        return Err(error(
            Some(&id),
            "rule ids must be kebab-case (lowercase letters, digits and `-`)".to_owned(),
        ));
    }

    let serializable: SerializableRuleConfig<SastLanguage> = ast_grep_config::from_str(document)
        .map_err(|err| error(Some(&id), one_line(&err.to_string())))?;
    let language = serializable.language;
    let metadata: PortcullisMetadata = match &serializable.metadata {
        None => PortcullisMetadata::default(),
        Some(metadata) => serde_json::to_value(metadata)
            .and_then(serde_json::from_value)
            .map_err(|err| error(Some(&id), format!("invalid `metadata`: {err}")))?,
    };
    let severity = match &metadata.severity {
        Some(name) => name
            .parse::<Severity>()
            .map_err(|err| error(Some(&id), format!("invalid `metadata.severity`: {err}")))?,
        None => map_severity(&serializable.severity),
    };
    let files = build_globs(serializable.files.as_ref())
        .map_err(|err| error(Some(&id), format!("invalid `files`: {err}")))?;
    let ignores = build_globs(serializable.ignores.as_ref())
        .map_err(|err| error(Some(&id), format!("invalid `ignores`: {err}")))?;
    let note = serializable.note.clone().filter(|n| !n.trim().is_empty());
    let message = serializable.message.trim().to_owned();
    let url = serializable.url.clone();

    let config = RuleConfig::try_from(serializable, globals)
        .map_err(|err| error(Some(&id), describe_config_error(&err)))?;

    let cwe = metadata.cwe.into_vec();
    let owasp = metadata.owasp.into_vec();
    let mut references: Vec<String> = cwe.iter().filter_map(|c| cwe_url(c)).collect();
    references.extend(owasp.iter().filter_map(|o| owasp_url(o)));
    references.extend(url);
    references.extend(metadata.references.into_vec());
    references.dedup();

    Ok(SastRule {
        message: if message.is_empty() {
            id.clone()
        } else {
            message
        },
        id,
        language,
        severity,
        note,
        cwe,
        owasp,
        references,
        source: file.to_owned(),
        config,
        files,
        ignores,
    })
}

/// ast-grep's errors keep the detail in their source chain.
fn describe_config_error(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    one_line(&text)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// ast-grep severities, for rules without `metadata.severity`.
fn map_severity(severity: &ast_grep_config::Severity) -> Severity {
    match severity {
        ast_grep_config::Severity::Error => Severity::High,
        ast_grep_config::Severity::Warning => Severity::Medium,
        ast_grep_config::Severity::Info => Severity::Low,
        ast_grep_config::Severity::Hint | ast_grep_config::Severity::Off => Severity::Info,
    }
}

/// One entry of `files`/`ignores`: a glob, or `{glob, caseInsensitive}`.
/// ast-grep does not export its own type for these, so they are read back
/// from its serialised form.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileGlob {
    Glob(String),
    #[serde(rename_all = "camelCase")]
    Config {
        glob: String,
        #[serde(default)]
        case_insensitive: bool,
    },
}

fn build_globs<T: serde::Serialize>(globs: Option<&T>) -> Result<Option<GlobSet>, String> {
    let Some(globs) = globs else {
        return Ok(None);
    };
    let globs: Vec<FileGlob> = serde_json::to_value(globs)
        .and_then(serde_json::from_value)
        .map_err(|err| err.to_string())?;
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let (pattern, case_insensitive) = match glob {
            FileGlob::Glob(pattern) => (pattern, false),
            FileGlob::Config {
                glob,
                case_insensitive,
            } => (glob, case_insensitive),
        };
        let glob = GlobBuilder::new(&pattern)
            .case_insensitive(case_insensitive)
            .build()
            .map_err(|err| err.to_string())?;
        builder.add(glob);
    }
    builder.build().map(Some).map_err(|err| err.to_string())
}

/// Splits a YAML stream at `---` lines, returning each document with the
/// 1-based line it starts on. A `---` at column 0 always ends a block scalar
/// (its content must be indented), so a line-based split is exact here.
fn split_documents(text: &str) -> Vec<(u32, &str)> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            documents.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = index as u32 + 2;
        }
        offset += line.len();
    }
    documents.push((start_line, &text[start..]));
    documents
}

fn is_kebab_case(id: &str) -> bool {
    !id.starts_with('-')
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `CWE-295` → its page at MITRE.
fn cwe_url(cwe: &str) -> Option<String> {
    let number = cwe.trim().strip_prefix("CWE-")?;
    number
        .chars()
        .all(|c| c.is_ascii_digit())
        .then(|| format!("https://cwe.mitre.org/data/definitions/{number}.html"))
}

/// `A02:2021` → its page in the OWASP Top 10 2021.
fn owasp_url(owasp: &str) -> Option<String> {
    let code = owasp.trim().get(..8)?;
    let slug = match code {
        "A01:2021" => "A01_2021-Broken_Access_Control",
        "A02:2021" => "A02_2021-Cryptographic_Failures",
        "A03:2021" => "A03_2021-Injection",
        "A04:2021" => "A04_2021-Insecure_Design",
        "A05:2021" => "A05_2021-Security_Misconfiguration",
        "A06:2021" => "A06_2021-Vulnerable_and_Outdated_Components",
        "A07:2021" => "A07_2021-Identification_and_Authentication_Failures",
        "A08:2021" => "A08_2021-Software_and_Data_Integrity_Failures",
        "A09:2021" => "A09_2021-Security_Logging_and_Monitoring_Failures",
        "A10:2021" => "A10_2021-Server-Side_Request_Forgery_%28SSRF%29",
        _ => return None,
    };
    Some(format!("https://owasp.org/Top10/{slug}/"))
}

/// The rules a run uses: the default pack unless turned off, then every
/// `.yml`/`.yaml` file in the folders (or files) the policy names, minus the
/// disabled ids. Ids must be unique across everything loaded.
pub fn load_rules(
    default_pack: bool,
    extra: &[(String, PathBuf)],
    disabled: &[String],
) -> Result<Vec<SastRule>, RuleLoadError> {
    let mut rules = Vec::new();
    if default_pack {
        for (file, text) in DEFAULT_PACK {
            rules.extend(parse_rule_file(file, text)?);
        }
    }
    for (shown, path) in extra {
        for (file_name, file_path) in rule_files(shown, path)? {
            let text = std::fs::read_to_string(&file_path).map_err(|err| RuleLoadError {
                file: file_name.clone(),
                line: None,
                rule_id: None,
                message: format!("could not read: {err}"),
            })?;
            rules.extend(parse_rule_file(&file_name, &text)?);
        }
    }

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for rule in &rules {
        if let Some(first) = seen.insert(rule.id.clone(), rule.source.clone()) {
            return Err(RuleLoadError {
                file: rule.source.clone(),
                line: None,
                rule_id: Some(rule.id.clone()),
                message: format!(
                    "the id is already used by a rule in `{first}`; rule ids must be unique"
                ),
            });
        }
    }
    for id in disabled {
        if !seen.contains_key(id) {
            return Err(RuleLoadError {
                file: "the policy".to_owned(),
                line: None,
                rule_id: Some(id.clone()),
                message: "`disable-rules` names a rule that is not loaded".to_owned(),
            });
        }
    }
    rules.retain(|rule| {
        !disabled.contains(&rule.id)
            && !matches!(rule.config.severity, ast_grep_config::Severity::Off)
    });
    Ok(rules)
}

/// The rule files of a folder (sorted, not recursive: `tests/` beside the
/// rules holds samples, not rules), or the file itself.
fn rule_files(shown: &str, path: &Path) -> Result<Vec<(String, PathBuf)>, RuleLoadError> {
    let unreadable = |err: std::io::Error| RuleLoadError {
        file: shown.to_owned(),
        line: None,
        rule_id: None,
        message: format!("could not read the rules folder: {err}"),
    };
    if path.is_file() {
        return Ok(vec![(shown.to_owned(), path.to_path_buf())]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let file_path = entry.path();
        let is_yaml = file_path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml");
        if is_yaml && file_path.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            files.push((format!("{}/{name}", shown.trim_end_matches('/')), file_path));
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pack_lists_every_rule_file() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/sast");
        let mut on_disk: Vec<String> = std::fs::read_dir(&folder)
            .expect("policies/sast exists")
            .filter_map(|entry| {
                let name = entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned();
                name.ends_with(".yml")
                    .then(|| format!("policies/sast/{name}"))
            })
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = DEFAULT_PACK.iter().map(|(f, _)| (*f).to_owned()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn default_pack_loads_with_full_metadata() {
        let rules = load_rules(true, &[], &[]).unwrap_or_else(|err| panic!("{err}"));
        assert!(rules.len() >= 34, "{} rules", rules.len());
        for rule in &rules {
            assert!(!rule.message.is_empty(), "{}", rule.id);
            assert!(rule.note.is_some(), "{} has no note", rule.id);
            assert!(!rule.cwe.is_empty(), "{} has no CWE", rule.id);
            assert!(!rule.owasp.is_empty(), "{} has no OWASP reference", rule.id);
            assert!(rule.references.len() >= 2, "{} references", rule.id);
        }
    }

    #[test]
    fn malformed_rules_name_file_line_and_id() {
        let text = "id: good\nlanguage: rust\nrule: {pattern: foo()}\n---\nid: bad-one\nlanguage: rust\nrule: {patern: foo()}\n";
        let err = parse_rule_file("rules/x.yml", text).expect_err("unknown key");
        assert_eq!(err.file, "rules/x.yml");
        assert_eq!(err.line, Some(5));
        assert_eq!(err.rule_id.as_deref(), Some("bad-one"));
        assert!(err.to_string().contains("rules/x.yml"), "{err}");

        let err = parse_rule_file("r.yml", "id: py\nlanguage: python\nrule: {pattern: x}\n")
            .expect_err("unsupported language");
        assert!(err.message.contains("python"), "{err}");

        let err = parse_rule_file("r.yml", "id: p\nlanguage: rust\nrule: {pattern: 'fn ('}\n")
            .expect_err("bad pattern");
        assert_eq!(err.rule_id.as_deref(), Some("p"));

        let err = parse_rule_file("r.yml", "id: Bad_Id\nlanguage: rust\nrule: {pattern: x}\n")
            .expect_err("not kebab-case");
        assert!(err.message.contains("kebab-case"), "{err}");

        let err = parse_rule_file("r.yml", "id: [\n").expect_err("bad yaml");
        assert!(err.message.contains("not valid YAML"), "{err}");
    }

    #[test]
    fn metadata_severity_overrides_and_references_resolve() {
        let text = "id: x\nlanguage: rust\nseverity: warning\nrule: {pattern: foo()}\nmetadata:\n  severity: critical\n  cwe: CWE-78\n  owasp: [\"A03:2021 Injection\"]\n";
        let rules = parse_rule_file("r.yml", text).expect("valid");
        assert_eq!(rules[0].severity, Severity::Critical);
        assert_eq!(
            rules[0].references,
            [
                "https://cwe.mitre.org/data/definitions/78.html",
                "https://owasp.org/Top10/A03_2021-Injection/"
            ]
        );
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("dup.yml"),
            "id: rust-weak-hash-md5\nlanguage: rust\nrule: {pattern: foo()}\n",
        )
        .expect("write");
        let extra = [("rules".to_owned(), dir.path().to_path_buf())];
        let err = load_rules(true, &extra, &[]).expect_err("duplicate");
        assert!(err.message.contains("already used"), "{err}");
        assert_eq!(err.file, "rules/dup.yml");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_rule_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse_rule_file("r.yml", &text);
        }

        #[test]
        fn rule_shaped_text_never_panics(
            id in "[a-z-]{0,6}",
            language in "(rust|bash|yaml|python|)",
            pattern in "[a-z$(){}.: ,;!]{0,20}",
        ) {
            let text = format!("id: {id}\nlanguage: {language}\nrule:\n  pattern: '{pattern}'\n");
            let _ = parse_rule_file("r.yml", &text);
        }
    }
}
