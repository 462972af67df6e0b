//! The refs of a layout as releases: per repository, per image (digest), its version tags,
//! its build tags (SHA, date) and its aliases. Prune plans and the release tree both start
//! here, so they always agree on what a release is.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use ocitool_spec::refname;
use ocitool_spec::tags::{self, TagKind, VersionTag};

/// The repository a ref belongs to, in its familiar spelling (`docker.io/library/app:1.0` and
/// `app:1.0` are both in `app`); `""` for a bare tag such as skopeo's `1.0`.
pub fn repo_key(name: &str) -> &str {
    refname::familiar(tags::repo_of(name))
}

/// One image (digest) of a repository and the tags of that repository on it.
#[derive(Debug)]
pub(crate) struct Image<'a> {
    pub digest: &'a str,
    /// Version tags (full ref names), in name order.
    pub versions: Vec<(VersionTag, &'a str)>,
    /// Build tags (full ref names) with the date of each date tag: SHA tags first, then date
    /// tags, each in name order.
    pub builds: Vec<(&'a str, Option<i64>)>,
    /// Aliases (full ref names): the most specific version group first (`1.2`, `1`), then
    /// `latest`, then the others by name.
    pub aliases: Vec<&'a str>,
}

impl Image<'_> {
    /// The newest date among its date tags.
    pub fn tagged_date(&self) -> Option<i64> {
        self.builds.iter().filter_map(|(_, d)| *d).max()
    }
}

/// The images of one repository.
#[derive(Debug)]
pub(crate) struct Repository<'a> {
    pub name: &'a str,
    pub images: Vec<Image<'a>>,
}

/// A version tag of a repository: which image it is on, and its version.
pub(crate) struct Release<'r, 'a> {
    pub image: usize,
    pub version: &'r VersionTag,
    pub name: &'a str,
}

impl<'a> Repository<'a> {
    /// Its version tags, highest precedence first (equal precedence: by name, descending, as
    /// `ls --tree` has always shown them).
    pub fn releases(&self) -> Vec<Release<'_, 'a>> {
        let mut out: Vec<Release<'_, 'a>> = self
            .images
            .iter()
            .enumerate()
            .flat_map(|(i, img)| {
                img.versions.iter().map(move |(v, n)| Release {
                    image: i,
                    version: v,
                    name: n,
                })
            })
            .collect();
        out.sort_by(|a, b| by_precedence(b, a));
        out
    }
}

/// Ascending semver precedence, then name.
pub(crate) fn by_precedence(a: &Release<'_, '_>, b: &Release<'_, '_>) -> Ordering {
    a.version
        .precedence(b.version)
        .then_with(|| a.name.cmp(b.name))
}

/// Groups `name → digest` by repository (in name order) and image. Linear in the refs.
pub(crate) fn repositories(refs: &BTreeMap<String, String>) -> Vec<Repository<'_>> {
    let mut repos: BTreeMap<&str, (Vec<Image<'_>>, HashMap<&str, usize>)> = BTreeMap::new();
    for (name, digest) in refs {
        let (images, by_digest) = repos.entry(repo_key(name)).or_default();
        let i = *by_digest.entry(digest.as_str()).or_insert_with(|| {
            images.push(Image {
                digest,
                versions: Vec::new(),
                builds: Vec::new(),
                aliases: Vec::new(),
            });
            images.len() - 1
        });
        let img = &mut images[i];
        match TagKind::of(tags::tag_of(name)) {
            TagKind::Version(v) => img.versions.push((v, name)),
            TagKind::Date(d) => img.builds.push((name, Some(d))),
            TagKind::Sha => img.builds.push((name, None)),
            TagKind::Alias => img.aliases.push(name),
        }
    }
    repos
        .into_iter()
        .map(|(name, (mut images, _))| {
            for img in &mut images {
                img.builds
                    .sort_by(|a, b| (a.1.is_some(), a.0).cmp(&(b.1.is_some(), b.0)));
                img.aliases.sort_by_key(|a| alias_rank(tags::tag_of(a)));
            }
            Repository { name, images }
        })
        .collect()
}

/// Orders aliases from the most specific version group to the least (`1.2`, `1`, `latest`),
/// then any other name.
pub(crate) fn alias_rank(a: &str) -> (u8, std::cmp::Reverse<usize>, &str) {
    if a == "latest" {
        (1, std::cmp::Reverse(0), a)
    } else if tags::is_version_alias(a) {
        let core = a.strip_prefix('v').unwrap_or(a);
        (0, std::cmp::Reverse(core.split('.').count()), a)
    } else {
        (2, std::cmp::Reverse(0), a)
    }
}
