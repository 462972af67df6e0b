//! Release engineering on ref names, as pure functions over `name → digest` maps, so they
//! are easy to test against a model.
//!
//! What a tag is (version, SHA, date, alias) is decided by `ocitool_spec::tags`. Here a
//! *release* is a version tag together with the build tags (SHA, date) on its image, and a
//! *build* an image with build tags but no version ([`releases`]). On that:
//! - the semver cascade ([`cascade`], [`release_moves`]): `app:1.2.3` also moves `app:1.2`,
//!   `app:1`, `app:latest` where it is the highest release of their group, and the build tags
//!   named with it are set in the same edit;
//! - prune plans ([`prune`]): the newest N releases per repository, or those dated after a
//!   cutoff, and whatever an alias points at or the policy protects, are kept; the rest go with
//!   their build tags;
//! - the release tree of `ls --tree` ([`tree`]), grouped exactly as prune plans are.
//!
//! Applying a plan is the caller's job, inside one `index.json` transaction.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use ocitool_spec::tags::{self, TagKind, VersionTag};

pub mod prune;
pub mod releases;
pub mod tree;

pub use prune::{
    Order, PruneOptions, PrunePlan, Reason, Unit, UnknownRepo, check_repos, plan_prune,
};
pub use releases::repo_key;
pub use tree::{Repo, Row, tree};

/// A ref to move (or create): `from` is the digest it had, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub name: String,
    pub from: Option<String>,
    pub to: String,
}

/// Targets that `tag --semver` cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CascadeError {
    /// No target is an exact version.
    #[error("--semver needs an exact version tag such as app:1.2.3 or app:v1.2.3-rc.1, not {0:?}")]
    NoVersion(String),
    /// A target is an alias the cascade moves itself.
    #[error(
        "--semver moves {0:?} itself, to the highest release of its group; name the exact version (app:1.2.3) and any build tags (SHA, date)"
    )]
    VersionAlias(String),
}

/// The moves of `tag SOURCE repo:X.Y.Z --semver`: the exact tag, then each alias (`X.Y`, `X`,
/// `latest`) whose group has no release of higher precedence. Pre-releases move only their
/// exact tag. Build metadata stays on the exact tag; derived tags never carry it. `refs` is the
/// layout's current `name → digest`.
pub fn cascade(
    refs: &BTreeMap<String, String>,
    target: &str,
    digest: &str,
) -> Result<Vec<Move>, CascadeError> {
    let repo = tags::repo_of(target);
    let key = repo_key(target);
    let tag = tags::tag_of(target);
    let new = VersionTag::parse(tag).ok_or_else(|| CascadeError::NoVersion(target.to_string()))?;
    let mut moves = vec![Move {
        name: target.to_string(),
        from: refs.get(target).cloned(),
        to: digest.to_string(),
    }];
    if new.is_prerelease() {
        return Ok(moves);
    }
    // The other releases of the repository (the target itself is being replaced).
    let releases: Vec<VersionTag> = refs
        .keys()
        .filter(|n| n.as_str() != target && repo_key(n) == key)
        .filter_map(|n| VersionTag::parse(tags::tag_of(n)))
        .filter(|v| !v.is_prerelease())
        .collect();
    for alias in new.aliases() {
        let higher = releases
            .iter()
            .any(|v| v.in_group(&alias) && v.precedence(&new) == Ordering::Greater);
        if !higher {
            let name = tags::join(repo, &alias);
            moves.push(Move {
                from: refs.get(&name).cloned(),
                name,
                to: digest.to_string(),
            });
        }
    }
    Ok(moves)
}

/// The moves of `tag SOURCE TARGET... --semver`, one release in one edit: each exact version
/// among the targets cascades ([`cascade`]); the other targets (build tags such as
/// `app:a1b2c3d` and `app:20240115`, or names such as `app:stable`) are set as given. At least
/// one target must be an exact version, and none may be an alias the cascade of those versions
/// moves itself (`app:1.2`, `app:1`, `app:latest` beside `app:1.2.3`). A name is moved once,
/// at its first mention.
pub fn release_moves(
    refs: &BTreeMap<String, String>,
    targets: &[String],
    digest: &str,
) -> Result<Vec<Move>, CascadeError> {
    let is_version = |t: &str| matches!(TagKind::of(tags::tag_of(t)), TagKind::Version(_));
    if !targets.iter().any(|t| is_version(t)) {
        return Err(CascadeError::NoVersion(
            targets.first().cloned().unwrap_or_default(),
        ));
    }
    // The names the cascade of these versions owns (`1.2`, `1`, `latest` of 1.2.3).
    let owned: Vec<String> = targets
        .iter()
        .filter_map(|t| {
            let v = VersionTag::parse(tags::tag_of(t))?;
            Some(v.aliases().map(|a| tags::join(tags::repo_of(t), &a)))
        })
        .flatten()
        .collect();
    if let Some(alias) = targets.iter().find(|t| owned.contains(t)) {
        return Err(CascadeError::VersionAlias(alias.clone()));
    }
    let mut moves: Vec<Move> = Vec::new();
    for t in targets {
        let these = if is_version(t) {
            cascade(refs, t, digest)?
        } else {
            vec![Move {
                name: t.clone(),
                from: refs.get(t).cloned(),
                to: digest.to_string(),
            }]
        };
        for m in these {
            if !moves.iter().any(|x| x.name == m.name) {
                moves.push(m);
            }
        }
    }
    Ok(moves)
}

#[cfg(test)]
mod tests;
