//! Prune plans: which releases and builds of each repository go.
//!
//! A *release* is a version tag together with the build tags (SHA, date) on its image; a
//! *build* is an image of the repository that has build tags but no version tag. Per
//! repository, `--keep N` keeps the newest N releases, `--older-than` removes the releases
//! and builds dated before a cutoff (both: a release goes only when it is beyond the newest N
//! *and* older). Whatever is asked, a release or build is kept when an alias of its
//! repository points at its image, when one of its tags matches `--keep-tags`, or (unless
//! forced) when the policy protects one of the tags that would go. Aliases are never removed.
//! A build tag goes only with the last release of its image.

use std::collections::BTreeMap;
use std::fmt;

use ocitool_spec::tags::{self, Globs, Policy, PolicyMatcher};

use crate::releases::{Image, Release, Repository, by_precedence, repo_key, repositories};

/// How `prune --keep` orders releases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Semver precedence, highest first.
    #[default]
    Semver,
    /// The release's date (its date tag, else its image's creation time), newest first, then
    /// semver; undated releases last.
    Created,
}

/// Image creation times before this (2000-01-01T00:00:00Z) are placeholders, not dates:
/// reproducible builds (ko, Bazel, Nix, `SOURCE_DATE_EPOCH=0`) write the Unix epoch.
pub const FIRST_PLAUSIBLE_CREATED: i64 = 946_684_800;

/// Options of a prune plan.
#[derive(Clone, Debug, Default)]
pub struct PruneOptions {
    /// Releases to keep per repository (`None`: no count limit).
    pub keep: Option<usize>,
    /// Remove only releases and builds dated before this time (seconds since the Unix epoch).
    pub older_than: Option<i64>,
    /// Glob patterns on whole ref names: a release or build with a matching tag is kept.
    pub keep_tags: Vec<String>,
    /// Only these repositories (all when empty), compared in their familiar spelling.
    pub repos: Vec<String>,
    pub order: Order,
    /// Remove protected releases too.
    pub force: bool,
}

/// Why a release or build is kept or removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Kept: among the newest N of its repository.
    Newest(usize),
    /// Kept: this alias (full ref name) points at its image.
    Alias(String),
    /// Kept: this tag matches this `--keep-tags` pattern.
    KeepTags { tag: String, pattern: String },
    /// Kept: one of the tags that would go is protected (why); `--force` removes it.
    Protected(String),
    /// Kept: dated at or after the cutoff.
    Recent(i64),
    /// Kept: `--older-than` was asked but it has no date.
    Undated,
    /// Kept: a build without a version, and only `--older-than` removes builds.
    Build,
    /// Removed: beyond the newest N.
    Beyond(usize),
    /// Removed: dated before the cutoff (and beyond the newest N, when given).
    Older { date: i64, keep: Option<usize> },
}

impl Reason {
    pub fn removes(&self) -> bool {
        matches!(self, Reason::Beyond(_) | Reason::Older { .. })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Newest(n) => write!(f, "among the newest {n}"),
            Reason::Alias(a) => write!(f, "{a} points at it"),
            Reason::KeepTags { tag, pattern } => {
                write!(f, "{tag} matches --keep-tags {pattern:?}")
            }
            Reason::Protected(why) => write!(f, "protected: {why}"),
            Reason::Recent(d) => write!(f, "dated {}", tags::format_date(*d)),
            Reason::Undated => f.write_str("no date tag and no creation time"),
            Reason::Build => f.write_str("a build without a version (--older-than removes builds)"),
            Reason::Beyond(n) => write!(f, "beyond the newest {n}"),
            Reason::Older { date, keep } => {
                write!(f, "dated {}", tags::format_date(*date))?;
                if let Some(n) = keep {
                    write!(f, ", beyond the newest {n}")?;
                }
                Ok(())
            }
        }
    }
}

/// One release (a version tag) or build (an image with build tags only) of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// The repository, in its familiar spelling.
    pub repository: String,
    /// The full ref name of its version tag; for a build, of its first build tag.
    pub name: String,
    pub digest: String,
    pub is_release: bool,
    /// The build tags (full ref names) that share its fate: the image's build tags are listed
    /// on the first release of the image that is kept, or when every release of the image
    /// goes, on its first (they go with the last one); on a build, its other build tags.
    pub builds: Vec<String>,
    pub remove: bool,
    pub reason: Reason,
    /// It goes although a tag of it is protected (`force`).
    pub forced: bool,
}

impl Unit {
    /// Its ref names: its version tag (or first build tag), then its build tags.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.builds.iter().map(String::as_str))
    }
}

/// A prune plan: every release and build of the repositories asked, in the order `ls --tree`
/// shows them (releases by the plan's order, then builds newest first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePlan {
    pub units: Vec<Unit>,
    /// Releases and builds kept only because a tag of theirs is protected.
    pub protected_kept: usize,
    /// Releases and builds removed although protected (`force`).
    pub protected_removed: usize,
    /// Releases and builds `--older-than` could not date (kept).
    pub undated: usize,
}

impl PrunePlan {
    /// The refs to remove.
    pub fn removals(&self) -> impl Iterator<Item = &str> {
        self.units.iter().filter(|u| u.remove).flat_map(Unit::names)
    }
}

/// A `--repo` that names no repository of the layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no repository {name:?} in the layout{hint}")]
pub struct UnknownRepo {
    pub name: String,
    /// ` (did you mean "app"?)`, or what the layout has.
    pub hint: String,
}

/// The repositories of `refs` (familiar spellings, sorted, once each).
pub fn repository_names(refs: &BTreeMap<String, String>) -> Vec<&str> {
    let mut out: Vec<&str> = refs.keys().map(|n| repo_key(n)).collect();
    out.dedup();
    out.sort_unstable();
    out.dedup();
    out
}

/// Checks that every `--repo` names a repository of `refs` (in any spelling of it), or
/// suggests the closest ones.
pub fn check_repos(refs: &BTreeMap<String, String>, repos: &[String]) -> Result<(), UnknownRepo> {
    if repos.is_empty() {
        return Ok(());
    }
    let names = repository_names(refs);
    for r in repos {
        let want = ocitool_spec::refname::familiar(r);
        if names.binary_search(&want).is_err() {
            return Err(UnknownRepo {
                name: r.clone(),
                hint: repo_hint(&names, want),
            });
        }
    }
    Ok(())
}

/// ` (did you mean "a", "b"?)` for the names closest to `want` by edit distance (or that
/// contain it, or that it contains), else what there is.
fn repo_hint(names: &[&str], want: &str) -> String {
    let shown = |n: &&str| {
        if n.is_empty() {
            "\"\" (bare tags)".to_string()
        } else {
            format!("{n:?}")
        }
    };
    if names.is_empty() {
        return " (the layout has no refs)".into();
    }
    let limit = (want.chars().count() / 3).max(2);
    let mut close: Vec<(usize, &str)> = names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| (strsim::levenshtein(n, want), *n))
        .filter(|(d, n)| *d <= limit || n.contains(want) || want.contains(n))
        .collect();
    close.sort_unstable();
    close.truncate(3);
    if !close.is_empty() {
        let list: Vec<String> = close.iter().map(|(_, n)| shown(n)).collect();
        return format!(" (did you mean {}?)", list.join(", "));
    }
    if names.len() <= 8 {
        let list: Vec<String> = names.iter().map(shown).collect();
        format!(" (it has {})", list.join(", "))
    } else {
        format!(
            " ({} repositories; `ocitool ls --tree` lists them)",
            names.len()
        )
    }
}

/// Plans `prune` (see the module documentation). `created` gives an image's creation time
/// (seconds since the Unix epoch, from its config) and is asked only for `--older-than` or
/// [`Order::Created`]; a time before [`FIRST_PLAUSIBLE_CREATED`] counts as none. Linear in
/// the refs, plus sorting each repository's releases.
pub fn plan_prune(
    refs: &BTreeMap<String, String>,
    policy: &Policy,
    options: &PruneOptions,
    created: &dyn Fn(&str) -> Option<i64>,
) -> PrunePlan {
    let planner = Planner {
        options,
        policy: policy.matcher(),
        keep_tags: Globs::new(&options.keep_tags),
        created,
    };
    let wanted: Vec<&str> = options
        .repos
        .iter()
        .map(|r| ocitool_spec::refname::familiar(r))
        .collect();
    let mut plan = PrunePlan::default();
    for repo in repositories(refs) {
        if wanted.is_empty() || wanted.contains(&repo.name) {
            planner.repository(&repo, &mut plan);
        }
    }
    plan
}

struct Planner<'p> {
    options: &'p PruneOptions,
    policy: PolicyMatcher<'p>,
    keep_tags: Globs,
    created: &'p dyn Fn(&str) -> Option<i64>,
}

impl Planner<'_> {
    /// The date of an image: its newest date tag, else a plausible creation time.
    fn date(&self, img: &Image<'_>) -> Option<i64> {
        img.tagged_date()
            .or_else(|| (self.created)(img.digest).filter(|&t| t >= FIRST_PLAUSIBLE_CREATED))
    }

    fn repository(&self, repo: &Repository<'_>, plan: &mut PrunePlan) {
        let dated = self.options.older_than.is_some() || self.options.order == Order::Created;
        let dates: Vec<Option<i64>> = repo
            .images
            .iter()
            .map(|img| if dated { self.date(img) } else { None })
            .collect();
        let mut releases = repo.releases();
        if self.options.order == Order::Created {
            releases.sort_by(|a, b| {
                dates[b.image]
                    .cmp(&dates[a.image])
                    .then_with(|| by_precedence(b, a))
            });
        }
        let mut reasons: Vec<Reason> = releases
            .iter()
            .enumerate()
            .map(|(i, r)| self.release_reason(i, r, &repo.images[r.image], dates[r.image]))
            .collect();
        let mut forced = vec![false; releases.len()];
        // Per image, in the order of the releases: which of them carries the build tags.
        let mut carrier: Vec<Option<usize>> = vec![None; repo.images.len()];
        let mut by_image: Vec<Vec<usize>> = vec![Vec::new(); repo.images.len()];
        for (i, r) in releases.iter().enumerate() {
            by_image[r.image].push(i);
        }
        for (img_i, rels) in by_image.iter().enumerate() {
            if rels.is_empty() {
                continue;
            }
            let img = &repo.images[img_i];
            self.protect_releases(img, rels, &releases, &mut reasons, &mut forced, plan);
            let kept = rels.iter().find(|&&i| !reasons[i].removes());
            carrier[img_i] = Some(*kept.unwrap_or(&rels[0]));
        }
        for (i, r) in releases.iter().enumerate() {
            let img = &repo.images[r.image];
            let builds = if carrier[r.image] == Some(i) {
                img.builds.iter().map(|(n, _)| n.to_string()).collect()
            } else {
                Vec::new()
            };
            let remove = reasons[i].removes();
            plan.protected_removed += usize::from(remove && forced[i]);
            plan.undated += usize::from(reasons[i] == Reason::Undated);
            plan.units.push(Unit {
                repository: repo.name.to_string(),
                name: r.name.to_string(),
                digest: img.digest.to_string(),
                is_release: true,
                builds,
                remove,
                reason: std::mem::replace(&mut reasons[i], Reason::Build),
                forced: remove && forced[i],
            });
        }
        self.builds(repo, &dates, plan);
    }

    /// Why release `i` (in the plan's order) is kept or removed, before protection.
    fn release_reason(
        &self,
        i: usize,
        r: &Release<'_, '_>,
        img: &Image<'_>,
        date: Option<i64>,
    ) -> Reason {
        let keep = self.options.keep;
        if let Some(k) = keep.filter(|&k| i < k) {
            return Reason::Newest(k);
        }
        if let Some(a) = img.aliases.first() {
            return Reason::Alias(a.to_string());
        }
        let names = std::iter::once(r.name).chain(img.builds.iter().map(|(n, _)| *n));
        if let Some(kt) = self.keep_tag(names) {
            return kt;
        }
        match (self.options.older_than, keep) {
            (Some(cutoff), _) => match date {
                None => Reason::Undated,
                Some(d) if d >= cutoff => Reason::Recent(d),
                Some(d) => Reason::Older { date: d, keep },
            },
            (None, Some(k)) => Reason::Beyond(k),
            (None, None) => Reason::Newest(usize::MAX),
        }
    }

    fn keep_tag<'a>(&self, mut names: impl Iterator<Item = &'a str>) -> Option<Reason> {
        if self.keep_tags.is_empty() {
            return None;
        }
        names.find_map(|n| {
            self.keep_tags.first_match(n).map(|p| Reason::KeepTags {
                tag: n.to_string(),
                pattern: p.to_string(),
            })
        })
    }

    /// Unless forced, keeps the releases of one image whose version tag is protected, and all
    /// of them if they would all go and a build tag (which goes with the last) is protected.
    /// Forced, marks the protected ones that go.
    fn protect_releases(
        &self,
        img: &Image<'_>,
        rels: &[usize],
        releases: &[Release<'_, '_>],
        reasons: &mut [Reason],
        forced: &mut [bool],
        plan: &mut PrunePlan,
    ) {
        if self.policy.is_empty() {
            return;
        }
        for &i in rels {
            if let Some(why) = reasons[i]
                .removes()
                .then(|| self.policy.protects(releases[i].name))
                .flatten()
            {
                if self.options.force {
                    forced[i] = true;
                } else {
                    reasons[i] = Reason::Protected(why);
                    plan.protected_kept += 1;
                }
            }
        }
        if rels.iter().all(|&i| reasons[i].removes())
            && let Some(why) = img.builds.iter().find_map(|(n, _)| self.policy.protects(n))
        {
            for &i in rels {
                if self.options.force {
                    forced[i] = true;
                } else {
                    reasons[i] = Reason::Protected(why.clone());
                    plan.protected_kept += 1;
                }
            }
        }
    }

    /// The builds of a repository (images with build tags and no version), newest first.
    fn builds(&self, repo: &Repository<'_>, dates: &[Option<i64>], plan: &mut PrunePlan) {
        let mut builds: Vec<usize> = (0..repo.images.len())
            .filter(|&i| repo.images[i].versions.is_empty() && !repo.images[i].builds.is_empty())
            .collect();
        let date = |i: usize| dates[i].or_else(|| repo.images[i].tagged_date());
        builds.sort_by(|&a, &b| {
            date(b)
                .cmp(&date(a))
                .then_with(|| repo.images[a].builds[0].0.cmp(repo.images[b].builds[0].0))
        });
        for i in builds {
            let img = &repo.images[i];
            let mut reason = if let Some(a) = img.aliases.first() {
                Reason::Alias(a.to_string())
            } else if let Some(kt) = self.keep_tag(img.builds.iter().map(|(n, _)| *n)) {
                kt
            } else {
                match (self.options.older_than, dates[i]) {
                    (None, _) => Reason::Build,
                    (Some(_), None) => Reason::Undated,
                    (Some(cutoff), Some(d)) if d >= cutoff => Reason::Recent(d),
                    (Some(_), Some(d)) => Reason::Older {
                        date: d,
                        keep: None,
                    },
                }
            };
            let mut forced = false;
            if reason.removes()
                && let Some(why) = img.builds.iter().find_map(|(n, _)| self.policy.protects(n))
            {
                if self.options.force {
                    forced = true;
                    plan.protected_removed += 1;
                } else {
                    reason = Reason::Protected(why);
                    plan.protected_kept += 1;
                }
            }
            plan.undated += usize::from(reason == Reason::Undated);
            let mut names = img.builds.iter().map(|(n, _)| n.to_string());
            plan.units.push(Unit {
                repository: repo.name.to_string(),
                name: names.next().unwrap_or_default(),
                digest: img.digest.to_string(),
                is_release: false,
                builds: names.collect(),
                remove: reason.removes(),
                reason,
                forced,
            });
        }
    }
}
