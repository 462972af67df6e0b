//! What a tag says about itself, and the protection policy that makes some tags immutable.
//!
//! Every tag is exactly one [`TagKind`], in this order:
//! - a **version**: an exact semver 2.0 version, with or without a leading `v` (`1.2.3`,
//!   `v1.2.3`, `1.3.0-rc.1`, `1.2.3+build.5`; `01.2.3` and `1.2` are not);
//! - a **date**: `YYYYMMDD` or `YYYY-MM-DD`, optionally followed by `T`, `-` or `_` and a time
//!   `HHMM` or `HHMMSS`, then optionally `Z` (`20240115`, `2024-01-15`, `20240115T1530Z`,
//!   `20240115-153000`); year 1970 to 9999, a real day and time; always read as UTC;
//! - a **SHA**: a git commit id, 7 to 40 lowercase hex digits with at least one letter `a`-`f`,
//!   or exactly 40 hex digits (`a1b2c3d`, `0123abcd`; not `20240115` or `1234567`, which are
//!   numbers), or the same after `sha-` (docker/metadata-action's `sha-a1b2c3d`; there digits
//!   alone count);
//! - an **alias**: every other tag, a name that moves from image to image (`1.2`, `1`, `v1`,
//!   `latest`, `main`, `stable`, `edge`, `prod`, `release-1.0`).
//!
//! SHA and date tags are *build tags*: with the version tag on the same image they make a
//! release (see `ocitool-lifecycle`).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::refname;

/// A tag that is an exact semver 2.0 version, with or without a leading `v`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionTag {
    pub v_prefix: bool,
    pub version: semver::Version,
}

impl VersionTag {
    /// Parses `1.2.3`, `v1.2.3`, `1.3.0-rc.1`, `1.2.3+build.5`. Anything else (`1.2`, `latest`,
    /// `01.2.3`) is not a version tag.
    pub fn parse(tag: &str) -> Option<VersionTag> {
        let (v_prefix, rest) = match tag.strip_prefix('v') {
            Some(r) => (true, r),
            None => (false, tag),
        };
        // semver accepts no leading `v` and rejects leading zeros, as semver 2.0 does.
        let version = semver::Version::parse(rest).ok()?;
        Some(VersionTag { v_prefix, version })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.version.pre.is_empty()
    }

    /// Semver 2.0 precedence: build metadata is ignored, pre-releases sort below releases.
    pub fn precedence(&self, other: &VersionTag) -> Ordering {
        self.version.cmp_precedence(&other.version)
    }

    /// The alias tags a release feeds: `1.2` and `1` (with the same `v` prefix) and `latest`.
    pub fn aliases(&self) -> [String; 3] {
        let v = if self.v_prefix { "v" } else { "" };
        [
            format!("{v}{}.{}", self.version.major, self.version.minor),
            format!("{v}{}", self.version.major),
            "latest".to_string(),
        ]
    }

    /// Whether this version belongs to the group an alias names: `1.2` holds every 1.2.x,
    /// `1` every 1.x.y, `latest` everything (releases only are ever compared).
    pub fn in_group(&self, alias: &str) -> bool {
        if alias == "latest" {
            return true;
        }
        let a = alias.strip_prefix('v').unwrap_or(alias);
        let mut parts = a.split('.');
        let major = parts.next().and_then(|p| p.parse::<u64>().ok());
        let minor = parts.next().map(|p| p.parse::<u64>().ok());
        match (major, minor, parts.next()) {
            (Some(m), None, None) => self.version.major == m,
            (Some(m), Some(Some(n)), None) => self.version.major == m && self.version.minor == n,
            _ => false,
        }
    }
}

/// The tag part of a ref name: `app:1.2.3` → `1.2.3`; a name without `:tag` is all tag
/// (skopeo-style `1.2.3` refs).
pub fn tag_of(name: &str) -> &str {
    match refname::split_repo_tag(name) {
        (_, Some(t)) if !t.starts_with('@') => t,
        (repo, None) => repo,
        (_, Some(t)) => t,
    }
}

/// The repository part of a ref name: `app:1.2.3` → `app`; a name without `:tag` has none.
pub fn repo_of(name: &str) -> &str {
    match refname::split_repo_tag(name) {
        (repo, Some(_)) => repo,
        (_, None) => "",
    }
}

/// Joins a repository and a tag back into a ref name.
pub fn join(repo: &str, tag: &str) -> String {
    if repo.is_empty() {
        tag.to_string()
    } else {
        format!("{repo}:{tag}")
    }
}

/// A git commit id: 7 to 40 lowercase hex digits with at least one letter (a run of decimal
/// digits is a date or a build number), or exactly 40 hex digits; or either after `sha-`
/// (where digits alone count too, the prefix says what they are).
pub fn is_sha_tag(tag: &str) -> bool {
    let (hex, prefixed) = match tag.strip_prefix("sha-") {
        Some(h) => (h, true),
        None => (tag, false),
    };
    (7..=40).contains(&hex.len())
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (prefixed || hex.len() == 40 || hex.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// The time a date tag names, in seconds since the Unix epoch (UTC), or `None` if `tag` is
/// not a date tag (see the module documentation for the exact forms).
pub fn date_tag(tag: &str) -> Option<i64> {
    let b = tag.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day, rest) = if b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-') {
        (digits(0..4)?, digits(5..7)?, digits(8..10)?, 10)
    } else {
        (digits(0..4)?, digits(4..6)?, digits(6..8)?, 8)
    };
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if rest < b.len() {
        if !matches!(b[rest], b'T' | b'-' | b'_') {
            return None;
        }
        let time = &b[rest + 1..];
        let time = time.strip_suffix(b"Z").unwrap_or(time);
        let at = rest + 1;
        match time.len() {
            4 => (hour, minute) = (digits(at..at + 2)?, digits(at + 2..at + 4)?),
            6 => {
                (hour, minute, second) = (
                    digits(at..at + 2)?,
                    digits(at + 2..at + 4)?,
                    digits(at + 4..at + 6)?,
                )
            }
            _ => return None,
        }
    }
    if year < 1970 {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// An RFC 3339 time (an image config's `created`, any offset, any fraction of a second) in
/// seconds since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// A time in seconds since the Unix epoch as `YYYY-MM-DD` (UTC), or with the time of day
/// (`YYYY-MM-DD HH:MM`) when it is not midnight.
pub fn format_date(seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(t) if t.time() == time::Time::MIDNIGHT => t.date().to_string(),
        Ok(t) => format!("{} {:02}:{:02}", t.date(), t.hour(), t.minute()),
        Err(_) => seconds.to_string(),
    }
}

/// What a tag is, for the release rules (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagKind {
    /// An exact semver version: names a release.
    Version(VersionTag),
    /// A build date, in seconds since the Unix epoch (UTC): a build tag.
    Date(i64),
    /// A commit SHA: a build tag.
    Sha,
    /// Any other tag: a name that moves (`1.2`, `latest`, `main`, `prod`).
    Alias,
}

impl TagKind {
    /// Classifies a tag (the part after `repo:`; see [`tag_of`]).
    pub fn of(tag: &str) -> TagKind {
        if let Some(v) = VersionTag::parse(tag) {
            TagKind::Version(v)
        } else if let Some(d) = date_tag(tag) {
            TagKind::Date(d)
        } else if is_sha_tag(tag) {
            TagKind::Sha
        } else {
            TagKind::Alias
        }
    }

    /// A SHA or date tag: immutable, part of the release on its image.
    pub fn is_build(&self) -> bool {
        matches!(self, TagKind::Date(_) | TagKind::Sha)
    }
}

/// An alias that `tag --semver` moves itself: `latest`, or a version group `1`, `1.2`, `v1`,
/// `v1.2`.
pub fn is_version_alias(tag: &str) -> bool {
    if tag == "latest" {
        return true;
    }
    let core = tag.strip_prefix('v').unwrap_or(tag);
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() <= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The annotation on `index.json` that holds the protection policy (JSON).
pub const POLICY_ANNOTATION: &str = "dev.ocitool.protect";

/// Which tags are immutable: once they point at a digest, moving or removing them needs
/// `--force`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Exact semver versions (`1.2.3`, `v1.2.3-rc.1`), not aliases.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub semver: bool,
    /// Commit SHAs, as [`is_sha_tag`] says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sha: bool,
    /// Glob patterns on the whole ref name (`*` any run, `?` one character, `[...]` a class).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
}

/// A policy annotation that cannot be read, or a bad pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

impl Policy {
    pub fn from_annotation(value: Option<&str>) -> Result<Policy, PolicyError> {
        let Some(v) = value else {
            return Ok(Policy::default());
        };
        let p: Policy = serde_json::from_str(v)
            .map_err(|e| PolicyError(format!("index.json annotation {POLICY_ANNOTATION}: {e}")))?;
        for pat in &p.patterns {
            check_pattern(pat)?;
        }
        Ok(p)
    }

    /// The annotation value, or `None` for an empty policy (the annotation is then removed).
    pub fn to_annotation(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        Some(String::from_utf8(crate::canonical::to_vec(self)).unwrap_or_default())
    }

    pub fn is_empty(&self) -> bool {
        !self.semver && !self.sha && self.patterns.is_empty()
    }

    /// Why `name` is protected, or `None`. To ask about many names, [`Policy::matcher`]
    /// compiles the patterns once.
    pub fn protects(&self, name: &str) -> Option<String> {
        self.matcher().protects(name)
    }

    /// The policy with its patterns compiled.
    pub fn matcher(&self) -> PolicyMatcher<'_> {
        PolicyMatcher {
            policy: self,
            globs: Globs::new(&self.patterns),
        }
    }
}

/// A [`Policy`] ready to be asked about many names.
pub struct PolicyMatcher<'a> {
    policy: &'a Policy,
    globs: Globs,
}

impl PolicyMatcher<'_> {
    /// Why `name` is protected, or `None`.
    pub fn protects(&self, name: &str) -> Option<String> {
        let tag = tag_of(name);
        if self.policy.semver && VersionTag::parse(tag).is_some() {
            return Some("an exact semver version".into());
        }
        if self.policy.sha && is_sha_tag(tag) {
            return Some("a commit SHA".into());
        }
        self.globs
            .first_match(name)
            .map(|p| format!("it matches the pattern {p:?}"))
    }

    pub fn is_empty(&self) -> bool {
        self.policy.is_empty()
    }
}

/// Glob patterns on whole ref names, compiled (bad ones never match: they are refused where
/// they are given, with [`check_pattern`]).
#[derive(Clone, Debug, Default)]
pub struct Globs(Vec<(String, Option<glob::Pattern>)>);

impl Globs {
    pub fn new(patterns: &[String]) -> Globs {
        Globs(
            patterns
                .iter()
                .map(|p| (p.clone(), glob::Pattern::new(p).ok()))
                .collect(),
        )
    }

    /// The first pattern that matches `name`.
    pub fn first_match(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, g)| g.as_ref().is_some_and(|g| g.matches(name)))
            .map(|(p, _)| p.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks a glob pattern.
pub fn check_pattern(p: &str) -> Result<(), PolicyError> {
    glob::Pattern::new(p)
        .map(|_| ())
        .map_err(|e| PolicyError(format!("bad pattern {p:?}: {e}")))
}
