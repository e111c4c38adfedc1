//! Rule packs in the gitleaks configuration format, parsed and compiled.
//!
//! Users bring their existing `.gitleaks.toml`: `[[rules]]` with `id`,
//! `description`, `regex`, `secretGroup`, `entropy`, `keywords`, `path` and
//! `tags`; allowlists global (`[allowlist]`, `[[allowlists]]` with
//! `targetRules`) and per rule (`[rules.allowlist]`, `[[rules.allowlists]]`)
//! by `paths`, `regexes` (with `regexTarget`), `stopwords` and `commits`, and
//! `[extend] useDefault` / `disabledRules`. Everything else gitleaks knows
//! (composite rules, `skipReport`, `[extend] path`, …) is rejected with a
//! message naming the key and line, never silently ignored: a rule that
//! quietly does nothing is a leak waiting to happen.
//!
//! The format is described at
//! <https://github.com/gitleaks/gitleaks/blob/master/README.md#configuration>.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use toml::Spanned;

use crate::finding::Severity;
use crate::policy::line_column;

/// The default rule pack, written for Portcullis in the gitleaks format.
pub const DEFAULT_PACK: &str = include_str!("../../../policies/secrets.toml");

/// The name the default pack has in errors.
pub const DEFAULT_PACK_NAME: &str = "<built-in policies/secrets.toml>";

/// Compiled regexes may not grow past this many bytes, so a rule such as
/// `(a{1000}){1000}` fails to load with a clear message instead of eating
/// memory and time.
const REGEX_SIZE_LIMIT: usize = 8 << 20;

/// A rule pack that could not be read, parsed or compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not load the secrets rule pack `{}`{}: {message}", origin.display(), line.map(|l| format!(" at line {l}")).unwrap_or_default())]
pub struct ConfigError {
    pub origin: PathBuf,
    pub line: Option<u32>,
    pub message: String,
}

/// One compiled detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub regex: Regex,
    /// Which capture group holds the secret; `None`: the first non-empty
    /// group, else the whole match (gitleaks' behaviour).
    pub secret_group: Option<usize>,
    /// Minimum Shannon entropy (bits per byte) of the secret.
    pub entropy: Option<f64>,
    /// Lowercase keywords; the rule runs only on text containing one.
    pub keywords: Vec<String>,
    /// Only files whose repository-relative path matches.
    pub path: Option<Regex>,
    pub tags: Vec<String>,
    pub allowlists: Vec<Allowlist>,
    pub severity: Severity,
    /// Generic rules give way to a specific rule that found the same text.
    pub is_generic: bool,
}

/// What an allowlist's regexes are matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegexTarget {
    Secret,
    Match,
    Line,
}

/// Conditions under which a finding is not reported.
#[derive(Debug, Clone)]
pub struct Allowlist {
    pub description: String,
    /// `true` for `condition = "AND"`: every kind of criterion given must
    /// match; otherwise any one is enough.
    pub require_all: bool,
    pub commits: Vec<String>,
    pub paths: Vec<Regex>,
    pub regexes: Vec<Regex>,
    pub regex_target: RegexTarget,
    /// Lowercase words; a secret containing one is allowed.
    pub stopwords: Vec<String>,
    /// For global allowlists: the rules it applies to (empty: all).
    pub target_rules: Vec<String>,
}

/// What an allowlist is asked about.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub path: &'a str,
    pub commit: Option<&'a str>,
    pub secret: &'a [u8],
    pub matched: &'a [u8],
    pub line: &'a [u8],
}

impl Allowlist {
    /// Whether this allowlist allows the candidate.
    pub fn allows(&self, candidate: &Candidate<'_>) -> bool {
        let mut results = Vec::with_capacity(4);
        if !self.commits.is_empty() {
            let hit = candidate
                .commit
                .is_some_and(|c| self.commits.iter().any(|a| c.starts_with(a.as_str())));
            results.push(hit);
        }
        if !self.paths.is_empty() {
            results.push(self.is_path_allowed(candidate.path));
        }
        if !self.regexes.is_empty() {
            let target = match self.regex_target {
                RegexTarget::Secret => candidate.secret,
                RegexTarget::Match => candidate.matched,
                RegexTarget::Line => candidate.line,
            };
            results.push(self.regexes.iter().any(|r| r.is_match(target)));
        }
        if !self.stopwords.is_empty() {
            let secret = candidate.secret.to_ascii_lowercase();
            let hit = self
                .stopwords
                .iter()
                .any(|word| contains(&secret, word.as_bytes()));
            results.push(hit);
        }
        if results.is_empty() {
            return false;
        }
        if self.require_all {
            results.iter().all(|&r| r)
        } else {
            results.iter().any(|&r| r)
        }
    }

    /// Whether the path alone is allowed (used to skip whole files).
    pub fn is_path_allowed(&self, path: &str) -> bool {
        self.paths.iter().any(|r| r.is_match(path.as_bytes()))
    }

    /// Whether the allowlist consists of paths only, so a matching file can
    /// be skipped without scanning it.
    pub fn is_paths_only(&self) -> bool {
        !self.paths.is_empty()
            && self.commits.is_empty()
            && self.regexes.is_empty()
            && self.stopwords.is_empty()
    }

    pub fn applies_to(&self, rule_id: &str) -> bool {
        self.target_rules.is_empty() || self.target_rules.iter().any(|r| r == rule_id)
    }
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A compiled rule pack: rules and global allowlists.
#[derive(Debug, Clone)]
pub struct RulePack {
    pub origin: PathBuf,
    pub rules: Vec<Rule>,
    pub allowlists: Vec<Allowlist>,
}

impl RulePack {
    /// The built-in default pack.
    pub fn builtin() -> Result<RulePack, ConfigError> {
        RulePack::parse(DEFAULT_PACK, Path::new(DEFAULT_PACK_NAME), false)
    }

    /// Loads a pack from a file; `[extend] useDefault = true` in it merges
    /// the built-in pack.
    pub fn load(path: &Path) -> Result<RulePack, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            origin: path.to_owned(),
            line: None,
            message: format!("could not read it: {err}"),
        })?;
        RulePack::parse(&text, path, true)
    }

    /// Parses and compiles pack text. `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path, allow_extend: bool) -> Result<RulePack, ConfigError> {
        let error_at = |offset: Option<usize>, message: String| ConfigError {
            origin: origin.to_owned(),
            line: offset.map(|o| line_column(text, o).0 as u32),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|err| {
            let message = format!(
                "{}\n  help: see docs/gates/secrets.md for the parts of the gitleaks format Portcullis reads",
                err.message().trim()
            );
            error_at(err.span().map(|s| s.start), message)
        })?;

        let mut pack = RulePack {
            origin: origin.to_owned(),
            rules: Vec::new(),
            allowlists: Vec::new(),
        };
        let mut disabled = BTreeSet::new();
        if let Some(extend) = &raw.extend {
            if let Some(path) = &extend.path {
                return Err(error_at(
                    Some(path.span().start),
                    "`[extend] path` is not supported; merge the rules into one file or use `useDefault = true`".to_owned(),
                ));
            }
            if extend.use_default && allow_extend {
                let base = RulePack::builtin()?;
                pack.rules = base.rules;
                pack.allowlists = base.allowlists;
            }
            disabled.extend(extend.disabled_rules.iter().cloned());
        }

        let compile = |pattern: &Spanned<String>, what: &str| -> Result<Regex, ConfigError> {
            compile_regex(pattern.get_ref()).map_err(|message| {
                error_at(
                    Some(pattern.span().start),
                    format!("{what}: invalid regex: {message}"),
                )
            })
        };
        let compile_allowlist = |raw: &RawAllowlist, what: &str, global: bool| {
            compile_allowlist(raw, what, global, &compile, &error_at)
        };

        if let Some(raw_allowlist) = &raw.allowlist {
            pack.allowlists
                .push(compile_allowlist(raw_allowlist, "global allowlist", true)?);
        }
        for raw_allowlist in &raw.allowlists {
            pack.allowlists
                .push(compile_allowlist(raw_allowlist, "global allowlist", true)?);
        }

        let mut seen = BTreeSet::new();
        for raw_rule in &raw.rules {
            let id = raw_rule.id.get_ref().trim().to_owned();
            let at_rule = Some(raw_rule.id.span().start);
            if id.is_empty() {
                return Err(error_at(at_rule, "a rule has an empty `id`".to_owned()));
            }
            if !seen.insert(id.clone()) {
                return Err(error_at(at_rule, format!("rule id `{id}` appears twice")));
            }
            if let Some(key) = raw_rule.unsupported_key() {
                return Err(error_at(
                    at_rule,
                    format!(
                        "rule `{id}`: `{key}` is not supported by Portcullis; see docs/gates/secrets.md"
                    ),
                ));
            }
            let Some(pattern) = &raw_rule.regex else {
                return Err(error_at(
                    at_rule,
                    format!("rule `{id}` has no `regex`; path-only rules are not supported"),
                ));
            };
            let what = format!("rule `{id}`");
            let regex = compile(pattern, &what)?;
            if let Some(group) = raw_rule.secret_group
                && group >= regex.captures_len()
            {
                return Err(error_at(
                    at_rule,
                    format!(
                        "rule `{id}`: `secretGroup = {group}` but the regex has only {} group(s)",
                        regex.captures_len() - 1
                    ),
                ));
            }
            let path = raw_rule
                .path
                .as_ref()
                .map(|p| compile(p, &format!("rule `{id}` path")))
                .transpose()?;
            let mut allowlists = Vec::new();
            for raw_allowlist in raw_rule.allowlist.iter().chain(&raw_rule.allowlists) {
                allowlists.push(compile_allowlist(
                    raw_allowlist,
                    &format!("rule `{id}` allowlist"),
                    false,
                )?);
            }
            let severity = severity_from_tags(&raw_rule.tags)
                .map_err(|message| error_at(at_rule, format!("rule `{id}`: {message}")))?;
            let rule = Rule {
                is_generic: id.starts_with("generic")
                    || raw_rule.tags.iter().any(|t| t == "generic"),
                id: id.clone(),
                description: raw_rule.description.clone().unwrap_or_else(|| id.clone()),
                regex,
                secret_group: raw_rule.secret_group.filter(|&g| g > 0),
                entropy: raw_rule.entropy.filter(|&e| e > 0.0),
                keywords: raw_rule
                    .keywords
                    .iter()
                    .map(|k| k.to_lowercase())
                    .filter(|k| !k.is_empty())
                    .collect(),
                path,
                tags: raw_rule.tags.clone(),
                allowlists,
                severity,
            };
            // A user rule with the id of a default one replaces it.
            match pack.rules.iter_mut().find(|r| r.id == id) {
                Some(existing) => *existing = rule,
                None => pack.rules.push(rule),
            }
        }

        pack.rules.retain(|rule| !disabled.contains(&rule.id));
        if pack.rules.is_empty() {
            return Err(error_at(
                None,
                "the pack has no rules; add `[[rules]]` or `[extend] useDefault = true`".to_owned(),
            ));
        }
        Ok(pack)
    }
}

/// Compiles one rule or allowlist regex with the size limit.
///
/// Unicode classes are off: gitleaks patterns are RE2 patterns, where `\w`,
/// `\d` and `\s` are ASCII, and ASCII classes keep the automata small and
/// fast. Non-ASCII literals still match their UTF-8 bytes.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|err| {
            // The regex crate's messages span several lines with a caret;
            // keep them, indented, so the position stays readable.
            err.to_string().replace('\n', "\n    ")
        })
}

/// Compiles one pattern of the pack, naming what it belongs to in errors.
type CompileFn<'a> = dyn Fn(&Spanned<String>, &str) -> Result<Regex, ConfigError> + 'a;

fn compile_allowlist(
    raw: &RawAllowlist,
    what: &str,
    global: bool,
    compile: &CompileFn<'_>,
    error_at: &dyn Fn(Option<usize>, String) -> ConfigError,
) -> Result<Allowlist, ConfigError> {
    let require_all = match raw
        .condition
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("OR") => false,
        Some("AND") => true,
        Some(other) => {
            return Err(error_at(
                None,
                format!("{what}: `condition = \"{other}\"` must be \"OR\" or \"AND\""),
            ));
        }
    };
    let regex_target = match raw.regex_target.as_deref() {
        None | Some("secret") => RegexTarget::Secret,
        Some("match") => RegexTarget::Match,
        Some("line") => RegexTarget::Line,
        Some(other) => {
            return Err(error_at(
                None,
                format!("{what}: `regexTarget = \"{other}\"` must be secret, match or line"),
            ));
        }
    };
    if !global && !raw.target_rules.is_empty() {
        return Err(error_at(
            None,
            format!("{what}: `targetRules` belongs in a global `[[allowlists]]`"),
        ));
    }
    let paths = raw
        .paths
        .iter()
        .map(|p| compile(p, &format!("{what} path")))
        .collect::<Result<_, _>>()?;
    let regexes = raw
        .regexes
        .iter()
        .map(|p| compile(p, what))
        .collect::<Result<_, _>>()?;
    Ok(Allowlist {
        description: raw.description.clone().unwrap_or_default(),
        require_all,
        commits: raw.commits.clone(),
        paths,
        regexes,
        regex_target,
        stopwords: raw.stopwords.iter().map(|w| w.to_lowercase()).collect(),
        target_rules: raw.target_rules.clone(),
    })
}

/// The severity a rule's tags ask for with `severity:<level>`; high when
/// none does (a leaked credential is rarely less).
fn severity_from_tags(tags: &[String]) -> Result<Severity, String> {
    for tag in tags {
        if let Some(level) = tag.strip_prefix("severity:") {
            return level.parse::<Severity>();
        }
    }
    Ok(Severity::High)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    #[allow(dead_code)]
    title: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    min_version: Option<String>,
    #[serde(default)]
    extend: Option<RawExtend>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    allowlist: Option<RawAllowlist>,
    #[serde(default)]
    allowlists: Vec<RawAllowlist>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawExtend {
    #[serde(default)]
    use_default: bool,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    disabled_rules: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    id: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    regex: Option<Spanned<String>>,
    #[serde(default)]
    secret_group: Option<usize>,
    #[serde(default)]
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    allowlist: Option<RawAllowlist>,
    #[serde(default)]
    allowlists: Vec<RawAllowlist>,
    // Known gitleaks keys Portcullis does not implement: read so the error
    // can name them instead of saying "unknown field".
    #[serde(default)]
    required: Option<toml::Value>,
    #[serde(default)]
    skip_report: Option<toml::Value>,
    #[serde(default)]
    regex_target: Option<toml::Value>,
}

impl RawRule {
    fn unsupported_key(&self) -> Option<&'static str> {
        if self.required.is_some() {
            Some("required (composite rules)")
        } else if self.skip_report.is_some() {
            Some("skipReport")
        } else if self.regex_target.is_some() {
            Some("regexTarget outside an allowlist")
        } else {
            None
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAllowlist {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    commits: Vec<String>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
    #[serde(default)]
    regexes: Vec<Spanned<String>>,
    #[serde(default)]
    regex_target: Option<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    target_rules: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RulePack, ConfigError> {
        RulePack::parse(text, Path::new("pack.toml"), true)
    }

    #[test]
    fn default_pack_loads_with_at_least_a_hundred_rules() {
        let pack = RulePack::builtin().unwrap_or_else(|err| panic!("{err}"));
        assert!(pack.rules.len() >= 100, "{} rules", pack.rules.len());
    }

    #[test]
    fn invalid_regex_names_rule_and_line() {
        let err = parse("[[rules]]\nid = \"a\"\nregex = 'ok'\n\n[[rules]]\nid = \"broken\"\nregex = '''(unclosed'''\n")
            .expect_err("must fail");
        assert_eq!(err.line, Some(7), "{err}");
        assert!(err.to_string().contains("rule `broken`"), "{err}");
    }

    #[test]
    fn catastrophic_regex_is_refused_not_run() {
        let err = parse("[[rules]]\nid = \"huge\"\nregex = '''((a{100}){100}){100}'''\n")
            .expect_err("must fail");
        assert!(err.to_string().contains("rule `huge`"), "{err}");
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn unsupported_keys_are_named() {
        let err = parse("[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules.required]]\nid = \"b\"\n")
            .expect_err("composite");
        assert!(err.to_string().contains("composite"), "{err}");
        let err = parse("[[rules]]\nid = \"a\"\nregexx = 'x'\n").expect_err("typo");
        assert_eq!(err.line, Some(3), "{err}");
        let err = parse("[extend]\npath = \"other.toml\"\n").expect_err("extend path");
        assert!(err.to_string().contains("[extend] path"), "{err}");
    }

    #[test]
    fn secret_group_beyond_the_regex_is_an_error() {
        let err =
            parse("[[rules]]\nid = \"a\"\nregex = '(x)'\nsecretGroup = 2\n").expect_err("group");
        assert!(err.to_string().contains("secretGroup = 2"), "{err}");
    }

    #[test]
    fn extend_default_merges_and_disables() {
        let pack = parse("[extend]\nuseDefault = true\ndisabledRules = [\"jwt\"]\n[[rules]]\nid = \"mine\"\nregex = 'x'\n")
            .unwrap_or_else(|err| panic!("{err}"));
        assert!(pack.rules.iter().any(|r| r.id == "mine"));
        assert!(pack.rules.iter().any(|r| r.id == "private-key"));
        assert!(!pack.rules.iter().any(|r| r.id == "jwt"));
    }

    #[test]
    fn allowlist_conditions() {
        let pack = parse(
            "[[rules]]\nid = \"a\"\nregex = 'x'\n[[allowlists]]\ncondition = \"AND\"\npaths = ['^tests/']\nstopwords = [\"fake\"]\ntargetRules = [\"a\"]\n",
        )
        .unwrap_or_else(|err| panic!("{err}"));
        let allowlist = &pack.allowlists[0];
        let candidate = |path, secret| Candidate {
            path,
            commit: None,
            secret,
            matched: secret,
            line: secret,
        };
        assert!(allowlist.allows(&candidate("tests/a", b"FAKE-1")));
        assert!(!allowlist.allows(&candidate("src/a", b"FAKE-1")));
        assert!(!allowlist.allows(&candidate("tests/a", b"real")));
        assert!(allowlist.applies_to("a") && !allowlist.applies_to("b"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn rule_shaped_text_never_panics(
            id in "[a-z-]{0,6}",
            regex in "[\\[\\]()a-z{}0-9\\\\*+?|.^$]{0,20}",
            group in 0usize..4,
        ) {
            let text = format!("[[rules]]\nid = \"{id}\"\nregex = '''{regex}'''\nsecretGroup = {group}\n");
            let _ = parse(&text);
        }
    }
}
