//! The release tree of `ls --tree`: per repository, its releases (highest version first, each
//! with the build tags and aliases of its image), then its builds and other tags. It groups
//! refs exactly as prune plans do ([`crate::releases`]).

use std::collections::{BTreeMap, HashMap};

use ocitool_spec::tags;

use crate::releases::{repo_key, repositories};

/// One repository of the release tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    pub name: String,
    /// Version tags, highest precedence first; the first of each image carries the image's
    /// build tags and aliases.
    pub versions: Vec<Row>,
    /// The images without a version tag: a build (build tags, any aliases) is one row, headed
    /// by its first build tag, newest first; then each alias of an image with neither
    /// versions nor build tags, one row each.
    pub others: Vec<Row>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub tag: String,
    pub digest: String,
    /// Build tags (SHA, date) of the image, on its first row: SHA tags, then date tags.
    pub builds: Vec<String>,
    /// Aliases of the image, on its first row: `1.2`, `1`, `latest`, then other names.
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
/// the refs sharing a digest are listed once, on the first row of that digest.
pub fn tree(refs: &BTreeMap<String, String>) -> Vec<Repo> {
    let mut by_digest: HashMap<&str, Vec<&str>> = HashMap::new();
    for (n, d) in refs {
        by_digest.entry(d.as_str()).or_default().push(n.as_str());
    }
    let mut sharing = Sharing {
        by_digest,
        first_row: HashMap::new(),
    };
    let tag_list = |names: &mut dyn Iterator<Item = &str>| -> Vec<String> {
        names.map(|n| tags::tag_of(n).to_string()).collect()
    };
    let mut out = Vec::new();
    for repo in repositories(refs) {
        let mut shown = vec![false; repo.images.len()];
        let mut versions = Vec::new();
        for r in repo.releases() {
            let img = &repo.images[r.image];
            let (builds, aliases) = if std::mem::replace(&mut shown[r.image], true) {
                (Vec::new(), Vec::new())
            } else {
                (
                    tag_list(&mut img.builds.iter().map(|(n, _)| *n)),
                    tag_list(&mut img.aliases.iter().copied()),
                )
            };
            versions.push(sharing.row(repo.name, r.name, img.digest, builds, aliases));
        }
        // Builds newest first (by date tag), then by first build tag.
        let mut builds: Vec<usize> = (0..repo.images.len())
            .filter(|&i| repo.images[i].versions.is_empty() && !repo.images[i].builds.is_empty())
            .collect();
        builds.sort_by(|&a, &b| {
            let (a, b) = (&repo.images[a], &repo.images[b]);
            b.tagged_date()
                .cmp(&a.tagged_date())
                .then_with(|| a.builds[0].0.cmp(b.builds[0].0))
        });
        let mut others = Vec::new();
        for i in builds {
            let img = &repo.images[i];
            let head = img.builds[0].0;
            let rest = tag_list(&mut img.builds[1..].iter().map(|(n, _)| *n));
            let aliases = tag_list(&mut img.aliases.iter().copied());
            others.push(sharing.row(repo.name, head, img.digest, rest, aliases));
        }
        let mut plain: Vec<(&str, &str)> = repo
            .images
            .iter()
            .filter(|img| img.versions.is_empty() && img.builds.is_empty())
            .flat_map(|img| img.aliases.iter().map(move |a| (*a, img.digest)))
            .collect();
        plain.sort_unstable();
        for (name, digest) in plain {
            others.push(sharing.row(repo.name, name, digest, Vec::new(), Vec::new()));
        }
        out.push(Repo {
            name: repo.name.to_string(),
            versions,
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
    fn row(
        &mut self,
        repo: &str,
        name: &'a str,
        digest: &'a str,
        builds: Vec<String>,
        aliases: Vec<String>,
    ) -> Row {
        let (shared_with, same_as) = match self.first_row.get(digest) {
            Some(first) => (Vec::new(), Some(first.to_string())),
            None => {
                self.first_row.insert(digest, name);
                let shared = self.by_digest[digest]
                    .iter()
                    .filter(|n| repo_key(n) != repo)
                    .map(|n| n.to_string())
                    .collect();
                (shared, None)
            }
        };
        Row {
            tag: tags::tag_of(name).to_string(),
            digest: digest.to_string(),
            builds,
            aliases,
            shared_with,
            same_as,
        }
    }
}
