//! Waivers: the only way to silence a finding. Each names a rule, may narrow
//! itself to a path, package or fingerprint, and must give a reason and an
//! expiry date. An expired waiver stops waiving and is reported; so is one
//! that matched nothing.

use std::ops::Range;

use globset::{Glob, GlobMatcher};
use jiff::civil::Date;
use serde::Deserialize;
use toml::Spanned;

use super::PolicyError;
use crate::finding::{Finding, Payload};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWaiver {
    rule: Spanned<String>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    reason: Option<Spanned<String>>,
    expires: Option<Spanned<toml::Value>>,
}

/// A validated waiver.
#[derive(Debug, Clone)]
pub struct Waiver {
    /// Its position among the policy's `[[waiver]]` entries, from 0.
    pub index: usize,
    /// The 1-based line of its `rule` key, for messages.
    pub line: usize,
    pub rule: String,
    pub path: Option<String>,
    path_matcher: Option<GlobMatcher>,
    /// A package name, or `name@version`.
    pub package: Option<String>,
    pub fingerprint: Option<String>,
    pub reason: String,
    pub expires: Date,
}

/// Where a waiver stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaiverStatus {
    Active,
    Expired,
}

impl Waiver {
    pub(super) fn validate(
        index: usize,
        raw: RawWaiver,
        at: &impl Fn(Range<usize>, String, Option<String>) -> PolicyError,
    ) -> Result<Waiver, PolicyError> {
        let rule_span = raw.rule.span();
        let line = at(rule_span.clone(), String::new(), None).line.unwrap_or(0);

        let reason = match raw.reason {
            Some(reason) if !reason.get_ref().trim().is_empty() => reason.into_inner(),
            Some(reason) => {
                return Err(at(
                    reason.span(),
                    "a waiver's reason must not be empty".to_owned(),
                    Some("say why this finding is acceptable and who decided".to_owned()),
                ));
            }
            None => {
                return Err(at(
                    rule_span,
                    format!("the waiver for `{}` has no `reason`", raw.rule.get_ref()),
                    Some(
                        "every waiver needs `reason = \"…\"` and `expires = YYYY-MM-DD`".to_owned(),
                    ),
                ));
            }
        };

        let Some(expires) = raw.expires else {
            return Err(at(
                rule_span,
                format!(
                    "the waiver for `{}` has no `expires` date",
                    raw.rule.get_ref()
                ),
                Some(
                    "add `expires = YYYY-MM-DD`; waivers without an end are not accepted"
                        .to_owned(),
                ),
            ));
        };
        let expires = parse_date(expires.get_ref()).ok_or_else(|| {
            at(
                expires.span(),
                format!(
                    "`expires` must be a date like 2027-01-31, not `{}`",
                    expires.get_ref()
                ),
                Some("write a plain date: `expires = 2027-01-31`".to_owned()),
            )
        })?;

        let path_matcher = match &raw.path {
            Some(path) => Some(
                Glob::new(path.get_ref())
                    .map_err(|err| {
                        at(
                            path.span(),
                            format!("`path` is not a valid glob: {err}"),
                            Some("use a path like `tests/fixtures/**`".to_owned()),
                        )
                    })?
                    .compile_matcher(),
            ),
            None => None,
        };

        Ok(Waiver {
            index,
            line,
            rule: raw.rule.into_inner(),
            path: raw.path.map(Spanned::into_inner),
            path_matcher,
            package: raw.package,
            fingerprint: raw.fingerprint,
            reason,
            expires,
        })
    }

    /// A waiver is good through the day it names and stops the day after.
    pub fn status(&self, today: Date) -> WaiverStatus {
        if today > self.expires {
            WaiverStatus::Expired
        } else {
            WaiverStatus::Active
        }
    }

    /// Whether this waiver covers the finding (ignoring expiry).
    pub fn matches(&self, finding: &Finding) -> bool {
        if finding.rule_id != self.rule {
            return false;
        }
        if let Some(fingerprint) = &self.fingerprint
            && finding.fingerprint.as_str() != fingerprint
        {
            return false;
        }
        if let Some(matcher) = &self.path_matcher {
            let Some(location) = &finding.location else {
                return false;
            };
            if !matcher.is_match(&location.path) {
                return false;
            }
        }
        if let Some(package) = &self.package {
            let (name, version) = match &finding.payload {
                Payload::Package(p) => (p.package.as_str(), p.version.as_str()),
                Payload::PackagePolicy(p) => (p.package.as_str(), p.version.as_str()),
                _ => return false,
            };
            let matches = match package.split_once('@') {
                Some((want_name, want_version)) => name == want_name && version == want_version,
                None => name == package,
            };
            if !matches {
                return false;
            }
        }
        true
    }
}

/// Accepts a TOML local date (`2027-01-31`) or the same as a string.
fn parse_date(value: &toml::Value) -> Option<Date> {
    match value {
        toml::Value::Datetime(datetime) => {
            if datetime.time.is_some() || datetime.offset.is_some() {
                return None;
            }
            let date = datetime.date?;
            Date::new(date.year as i16, date.month as i8, date.day as i8).ok()
        }
        toml::Value::String(text) => text.parse::<Date>().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::finding::{Finding, Location, PackagePayload, Payload, Severity};
    use crate::policy::Policy;

    const STAGES: &str = "version = 1\n[[stage]]\nname = \"a\"\ngates = [\"sca\"]\n";

    fn policy(waivers: &str) -> Result<Policy, crate::policy::PolicyError> {
        Policy::from_toml(&format!("{STAGES}{waivers}"), "p.toml", None)
    }

    fn vulnerable(package: &str, version: &str) -> Finding {
        Finding::builder("sca", "RUSTSEC-2021-0003", Severity::High, "smallvec")
            .location(Location::file("Cargo.lock"))
            .payload(Payload::Package(PackagePayload {
                package: package.to_owned(),
                version: version.to_owned(),
                kind: "vulnerability".to_owned(),
                advisory_id: None,
                aliases: vec![],
                cvss: None,
                cvss_score: None,
                patched: vec![],
                dependency_path: vec![],
            }))
            .build()
    }

    #[test]
    fn waiver_without_reason_names_its_line() {
        let err =
            policy("[[waiver]]\nrule = \"X\"\nexpires = 2027-01-01\n").expect_err("no reason");
        assert_eq!(err.line, Some(6));
        assert!(err.message.contains("no `reason`"));
    }

    #[test]
    fn waiver_without_expiry_is_rejected() {
        let err = policy("[[waiver]]\nrule = \"X\"\nreason = \"r\"\n").expect_err("no expiry");
        assert!(err.message.contains("no `expires`"));
    }

    #[test]
    fn bad_dates_are_rejected_with_their_line() {
        let err = policy("[[waiver]]\nrule = \"X\"\nreason = \"r\"\nexpires = \"2027-13-01\"\n")
            .expect_err("bad month");
        assert_eq!(err.line, Some(8));
        let err =
            policy("[[waiver]]\nrule = \"X\"\nreason = \"r\"\nexpires = 2027-01-01T10:00:00Z\n")
                .expect_err("datetime");
        assert!(err.message.contains("must be a date"));
    }

    #[test]
    fn expiry_is_inclusive() {
        let policy = policy("[[waiver]]\nrule = \"X\"\nreason = \"r\"\nexpires = 2027-01-31\n")
            .expect("valid");
        let waiver = &policy.waivers[0];
        let day = |d: &str| d.parse::<jiff::civil::Date>().expect("date");
        assert_eq!(
            waiver.status(day("2027-01-31")),
            super::WaiverStatus::Active
        );
        assert_eq!(
            waiver.status(day("2027-02-01")),
            super::WaiverStatus::Expired
        );
    }

    #[test]
    fn package_narrowing_matches_name_or_name_at_version() {
        let policy = policy(
            "[[waiver]]\nrule = \"RUSTSEC-2021-0003\"\npackage = \"smallvec@1.6.0\"\nreason = \"r\"\nexpires = 2027-01-31\n",
        )
        .expect("valid");
        let waiver = &policy.waivers[0];
        assert!(waiver.matches(&vulnerable("smallvec", "1.6.0")));
        assert!(!waiver.matches(&vulnerable("smallvec", "1.6.1")));
        assert!(!waiver.matches(&vulnerable("other", "1.6.0")));
    }

    #[test]
    fn path_narrowing_uses_globs() {
        let policy = policy(
            "[[waiver]]\nrule = \"RUSTSEC-2021-0003\"\npath = \"fixtures/**\"\nreason = \"r\"\nexpires = 2027-01-31\n",
        )
        .expect("valid");
        assert!(!policy.waivers[0].matches(&vulnerable("smallvec", "1.6.0")));
    }
}
