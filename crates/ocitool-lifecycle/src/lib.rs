//! Release engineering on ref names, as pure functions over `name → digest` maps, so they
//! are easy to test against a model: the semver cascade (`app:1.2.3` also moves `app:1.2`,
//! `app:1`, `app:latest` where it is the highest release of their group), prune plans
//! (newest N versions per repository, never a protected tag, never what an alias points at),
//! and the release tree that `ls --tree` shows.
//!
//! Applying a plan is the caller's job, inside one `index.json` transaction.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use ocitool_spec::tags::{self, Policy, VersionTag};

/// A ref to move (or create): `from` is the digest it had, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub name: String,
    pub from: Option<String>,
    pub to: String,
}

/// A `--semver` target that is not `repo:X.Y.Z`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--semver needs an exact version tag such as app:1.2.3 or app:v1.2.3-rc.1, not {0:?}")]
pub struct CascadeError(pub String);

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
    let tag = tags::tag_of(target);
    let new = VersionTag::parse(tag).ok_or_else(|| CascadeError(target.to_string()))?;
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
        .filter(|n| n.as_str() != target && tags::repo_of(n) == repo)
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

/// How `prune` orders versions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Semver precedence, highest first.
    #[default]
    Semver,
    /// The image config's `created`, newest first (then semver).
    Created,
}

/// One decision of a prune plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub name: String,
    pub digest: String,
    pub remove: bool,
    pub reason: String,
}

/// Options of a prune plan.
#[derive(Clone, Debug, Default)]
pub struct PruneOptions {
    pub keep: usize,
    /// Only these repositories (all when empty).
    pub repos: Vec<String>,
    pub order: Order,
    /// Remove protected tags too.
    pub force: bool,
}

/// Plans `prune`: per repository, the version tags beyond the newest `keep` are removed,
/// except protected ones (unless forced) and those whose digest an alias of the repository
/// (any tag that is not a version: `latest`, `1`, `1.2`, `main`) points at. Other tags are
/// never touched. `created` gives a digest's creation time for [`Order::Created`].
pub fn plan_prune(
    refs: &BTreeMap<String, String>,
    policy: &Policy,
    options: &PruneOptions,
    created: &dyn Fn(&str) -> Option<String>,
) -> Vec<Decision> {
    let mut by_repo: BTreeMap<&str, Vec<(&String, &String)>> = BTreeMap::new();
    for (n, d) in refs {
        by_repo.entry(tags::repo_of(n)).or_default().push((n, d));
    }
    let mut out = Vec::new();
    for (repo, names) in by_repo {
        if !options.repos.is_empty() && !options.repos.iter().any(|r| r == repo) {
            continue;
        }
        let alias_digests: BTreeMap<&str, &str> = names
            .iter()
            .filter(|(n, _)| VersionTag::parse(tags::tag_of(n)).is_none())
            .map(|(n, d)| (d.as_str(), tags::tag_of(n)))
            .collect();
        let mut versions: Vec<(VersionTag, &String, &String)> = names
            .iter()
            .filter_map(|(n, d)| VersionTag::parse(tags::tag_of(n)).map(|v| (v, *n, *d)))
            .collect();
        versions.sort_by(|a, b| {
            let by_semver = b.0.precedence(&a.0).then_with(|| b.1.cmp(a.1));
            match options.order {
                Order::Semver => by_semver,
                Order::Created => created(b.2).cmp(&created(a.2)).then(by_semver),
            }
        });
        for (i, (_, n, d)) in versions.iter().enumerate() {
            let (remove, reason) = if i < options.keep {
                (false, format!("among the newest {}", options.keep))
            } else if let Some(alias) = alias_digests.get(d.as_str()) {
                (
                    false,
                    format!("the alias {:?} points at it", tags::join(repo, alias)),
                )
            } else if let Some(why) = policy.protects(n).filter(|_| !options.force) {
                (false, format!("protected ({why})"))
            } else {
                (true, format!("older than the newest {}", options.keep))
            };
            out.push(Decision {
                name: (*n).clone(),
                digest: (*d).clone(),
                remove,
                reason,
            });
        }
    }
    out
}

/// One repository of the release tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    pub name: String,
    /// Version tags, highest precedence first, each with the aliases pointing at its digest.
    pub versions: Vec<Row>,
    /// Other tags whose digest no version tag of the repository has.
    pub others: Vec<Row>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub tag: String,
    pub digest: String,
    pub aliases: Vec<String>,
    /// On the first row of a digest (in the order of the tree): the refs of other
    /// repositories pointing at the same digest. Empty on the later rows of that digest.
    pub shared_with: Vec<String>,
    /// On a later row of a digest: the full name of its first row (which lists who shares
    /// it). Each digest's sharers are listed once, so the tree stays linear in the number of
    /// refs even when thousands of them share one image.
    pub same_as: Option<String>,
}

/// Groups refs by repository for `ls --tree`. Linear in the number of refs (after sorting):
/// each alias is placed through a map of digests, and the refs sharing a digest are listed
/// once, on the first row of that digest.
pub fn tree(refs: &BTreeMap<String, String>) -> Vec<Repo> {
    let mut by_digest: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut by_repo: BTreeMap<&str, Vec<(&String, &String)>> = BTreeMap::new();
    for (n, d) in refs {
        by_digest.entry(d.as_str()).or_default().push(n.as_str());
        by_repo.entry(tags::repo_of(n)).or_default().push((n, d));
    }
    let mut sharing = Sharing {
        by_digest,
        first_row: HashMap::new(),
    };
    let mut out = Vec::new();
    for (repo, names) in &by_repo {
        let mut versions: Vec<(VersionTag, &String, &String)> = names
            .iter()
            .filter_map(|(n, d)| VersionTag::parse(tags::tag_of(n)).map(|v| (v, *n, *d)))
            .collect();
        versions.sort_by(|a, b| b.0.precedence(&a.0).then_with(|| b.1.cmp(a.1)));
        let version_digests: HashSet<&str> = versions.iter().map(|(_, _, d)| d.as_str()).collect();
        // Aliases by digest; each is shown once, beside the highest version sharing its digest.
        let mut aliases: HashMap<&str, Vec<String>> = HashMap::new();
        let mut others = Vec::new();
        for (n, d) in names {
            if VersionTag::parse(tags::tag_of(n)).is_some() {
                continue;
            }
            if version_digests.contains(d.as_str()) {
                aliases
                    .entry(d.as_str())
                    .or_default()
                    .push(tags::tag_of(n).to_string());
            } else {
                others.push((*n, *d));
            }
        }
        let mut rows = Vec::with_capacity(versions.len());
        for (_, n, d) in &versions {
            let (n, d) = (*n, *d);
            let mut al = aliases.remove(d.as_str()).unwrap_or_default();
            al.sort_by_key(|a| alias_rank(a));
            rows.push(sharing.row(repo, n, d, al));
        }
        let others = others
            .into_iter()
            .map(|(n, d)| sharing.row(repo, n, d, Vec::new()))
            .collect();
        out.push(Repo {
            name: repo.to_string(),
            versions: rows,
            others,
        });
    }
    out
}

/// Who shares each digest, and which row of the tree shows it first.
struct Sharing<'a> {
    by_digest: HashMap<&'a str, Vec<&'a str>>,
    /// The full name of the first row of each digest, in the order rows are shown.
    first_row: HashMap<&'a str, &'a str>,
}

impl<'a> Sharing<'a> {
    /// The next row of the tree: the first of its digest lists the refs of other repositories
    /// sharing it, a later one names that first row.
    fn row(&mut self, repo: &str, name: &'a str, digest: &'a str, aliases: Vec<String>) -> Row {
        let (shared_with, same_as) = match self.first_row.get(digest) {
            Some(first) => (Vec::new(), Some(first.to_string())),
            None => {
                self.first_row.insert(digest, name);
                let shared = self.by_digest[digest]
                    .iter()
                    .filter(|n| tags::repo_of(n) != repo)
                    .map(|n| n.to_string())
                    .collect();
                (shared, None)
            }
        };
        Row {
            tag: tags::tag_of(name).to_string(),
            digest: digest.to_string(),
            aliases,
            shared_with,
            same_as,
        }
    }
}

/// Orders aliases from the most specific version group to the least (`1.2`, `1`, `latest`),
/// then any other name.
fn alias_rank(a: &str) -> (u8, std::cmp::Reverse<usize>, String) {
    let core = a.strip_prefix('v').unwrap_or(a);
    if !core.is_empty()
        && core
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        (0, std::cmp::Reverse(core.split('.').count()), a.to_string())
    } else if a == "latest" {
        (1, std::cmp::Reverse(0), a.to_string())
    } else {
        (2, std::cmp::Reverse(0), a.to_string())
    }
}

#[cfg(test)]
mod tests;
