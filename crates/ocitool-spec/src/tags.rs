//! What a tag says about itself: an exact semver version (`1.2.3`, `v1.2.3-rc.1+build.5`), an
//! alias of a version group (`1`, `1.2`, `latest`), a commit SHA (`0123abc`); and the
//! protection policy that makes some tags immutable.

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

/// 7 to 40 lowercase hex digits: a (short) commit SHA.
pub fn is_sha_tag(tag: &str) -> bool {
    (7..=40).contains(&tag.len()) && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
    /// Commit SHAs: 7 to 40 hex digits.
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

    /// Why `name` is protected, or `None`.
    pub fn protects(&self, name: &str) -> Option<String> {
        let tag = tag_of(name);
        if self.semver && VersionTag::parse(tag).is_some() {
            return Some("an exact semver version".into());
        }
        if self.sha && is_sha_tag(tag) {
            return Some("a commit SHA".into());
        }
        for p in &self.patterns {
            if glob::Pattern::new(p).is_ok_and(|g| g.matches(name)) {
                return Some(format!("it matches the pattern {p:?}"));
            }
        }
        None
    }
}

/// Checks a glob pattern.
pub fn check_pattern(p: &str) -> Result<(), PolicyError> {
    glob::Pattern::new(p)
        .map(|_| ())
        .map_err(|e| PolicyError(format!("bad pattern {p:?}: {e}")))
}
