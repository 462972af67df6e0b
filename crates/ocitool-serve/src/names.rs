//! Which repository and tag names an `index.json` entry is served under, and how the names
//! of several layouts are put together.
//!
//! An entry's names come from its `org.opencontainers.image.ref.name` and its
//! `io.containerd.image.name`:
//! - `team/app:1.0` is repository `team/app`, tag `1.0` (a name without a tag is `latest`);
//! - a name with a registry host, `ghcr.io/org/app:1.0`, is served under its full name and
//!   under its path `org/app` (what a containerd mirror asks for, with `?ns=ghcr.io`);
//! - Docker Hub names are also served the ways Docker Hub knows them: `nginx:1.25` also as
//!   `library/nginx`, `docker.io/library/nginx:1.25` also as `library/nginx` and `nginx`;
//! - a bare tag (`1.25`, as `skopeo copy ... oci:DIR:1.25` writes it) belongs to the
//!   repository of the entry's containerd name, else to one named after the layout directory.
//!
//! A name as written is *primary*; the others are *aliases*. When two entries of one layout
//! claim the same repository and tag, a primary claim beats an alias and otherwise the first
//! entry wins. Across layouts a repository belongs to one layout: two layouts naming it as
//! primary is a collision (refused at startup), an alias loses to a primary, and an alias two
//! layouts share is served by neither.

use std::collections::{BTreeMap, BTreeSet};

use ocitool_digest::Digest;
use ocitool_spec::reference::{self, DOCKER_HUB, OFFICIAL_NAMESPACE, split_domain};
use ocitool_spec::refname;

/// A repository name the distribution API can serve (the reference grammar's paths).
fn valid_name(name: &str) -> bool {
    reference::check_repository(name).is_ok()
}

/// One (repository, tag) an entry is served under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    pub repository: String,
    pub tag: String,
    /// Written in the layout as this repository (not derived from another name).
    pub primary: bool,
    /// The repository the entry is known by (its first name), for the startup summary.
    pub origin: String,
}

/// The names of one entry; `dir_name` is the layout directory's name (for bare tags).
/// Names that break the distribution grammar are left out, and each is described in
/// `skipped`.
pub fn entry_names(
    ref_name: Option<&str>,
    containerd_name: Option<&str>,
    dir_name: Option<&str>,
    skipped: &mut Vec<String>,
) -> Vec<Name> {
    let mut out: Vec<Name> = Vec::new();
    let containerd = containerd_name.and_then(|c| {
        let (repo, tag) = refname::split_repo_tag(c);
        match tag {
            Some(t) if t.starts_with('@') => None,
            t => Some((repo, t.unwrap_or("latest"))),
        }
    });
    if let Some(r) = ref_name {
        let (repo, tag) = refname::split_repo_tag(r);
        match tag {
            Some(t) if t.starts_with('@') => {}
            Some(t) => add(&mut out, repo, t, true, skipped, r),
            None if repo.contains('/') => add(&mut out, repo, "latest", true, skipped, r),
            // A bare tag: the repository of the containerd name, or the directory's.
            None => match (containerd, dir_name) {
                (Some((crepo, _)), _) => add(&mut out, crepo, repo, true, skipped, r),
                (None, Some(dir)) => {
                    if valid_name(dir) {
                        add(&mut out, dir, repo, false, skipped, r);
                    } else {
                        skipped.push(format!(
                            "ref {} names no repository and the layout directory name {:?} is not one; \
                             give it one with `ocitool tag LAYOUT {r} REPO:{r}`",
                            crate::route::printable(r),
                            dir
                        ));
                    }
                }
                (None, None) => {}
            },
        }
    }
    if let (Some((repo, tag)), Some(c)) = (containerd, containerd_name) {
        add(&mut out, repo, tag, true, skipped, c);
    }
    out
}

/// Adds `repo:tag` and its aliases.
fn add(
    out: &mut Vec<Name>,
    repo: &str,
    tag: &str,
    written: bool,
    skipped: &mut Vec<String>,
    source: &str,
) {
    if reference::check_tag(tag).is_err() {
        skipped.push(format!(
            "ref {} is not served: {:?} is not a valid registry tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})",
            crate::route::printable(source),
            crate::route::printable(tag)
        ));
        return;
    }
    let mut names: Vec<(String, bool)> = Vec::new();
    match split_domain(repo) {
        (Some(h), path) => {
            let hub = reference::is_docker_hub_host(h);
            let full = if hub {
                format!("{DOCKER_HUB}/{path}")
            } else {
                repo.to_string()
            };
            names.push((full, written));
            names.push((path.to_string(), false));
            if hub
                && let Some(short) = path
                    .strip_prefix(OFFICIAL_NAMESPACE)
                    .and_then(|p| p.strip_prefix('/'))
            {
                names.push((short.to_string(), false));
            }
        }
        (None, _) => {
            names.push((repo.to_string(), written));
            if !repo.contains('/') {
                names.push((format!("{OFFICIAL_NAMESPACE}/{repo}"), false));
            }
        }
    }
    names.retain(|(n, _)| valid_name(n));
    let Some(origin) = names.first().map(|(n, _)| n.clone()) else {
        skipped.push(format!(
            "ref {} is not served: {:?} is not a registry repository name (lowercase letters and digits \
             joined by '.', '_', '__' or '-', in '/'-separated parts)",
            crate::route::printable(source),
            crate::route::printable(repo)
        ));
        return;
    };
    for (repository, primary) in names {
        if out
            .iter()
            .any(|n| n.repository == repository && n.tag == tag && (n.primary || !primary))
        {
            continue;
        }
        out.retain(|n| !(n.repository == repository && n.tag == tag));
        out.push(Name {
            repository,
            tag: tag.to_string(),
            primary,
            origin: origin.clone(),
        });
    }
}

/// What a tag points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A served name of one layout: the name, its entry's position in `index.json`, its target.
#[derive(Clone, Debug)]
pub struct Claim {
    pub name: Name,
    pub position: usize,
    pub target: Target,
}

/// A served repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repository {
    /// Which layout serves it (its position on the command line).
    pub layout: usize,
    pub tags: BTreeMap<String, Target>,
    /// The repository its entries are known by: itself unless it is an alias.
    pub origin: String,
}

/// Two layouts that both name a repository as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collision {
    pub repository: String,
    pub layouts: (usize, usize),
}

/// The repositories of several layouts (`claims[i]` are layout `i`'s) and notes about names
/// that are not served. With `strict`, a collision is returned as an error; otherwise the
/// first layout keeps the repository and the collision is a note.
pub fn assemble(
    claims: &[Vec<Claim>],
    labels: &[String],
    strict: bool,
) -> Result<(BTreeMap<String, Repository>, Vec<String>), Collision> {
    let mut notes = Vec::new();
    // Per layout: (repository, tag) -> the winning claim.
    let mut per_layout: Vec<BTreeMap<(&str, &str), &Claim>> = Vec::new();
    for (li, layout_claims) in claims.iter().enumerate() {
        let mut won: BTreeMap<(&str, &str), &Claim> = BTreeMap::new();
        for c in layout_claims {
            let key = (c.name.repository.as_str(), c.name.tag.as_str());
            match won.get(&key) {
                None => {
                    won.insert(key, c);
                }
                Some(prev) => {
                    let better = (c.name.primary && !prev.name.primary)
                        || (c.name.primary == prev.name.primary && c.position < prev.position);
                    if prev.target.digest != c.target.digest && c.name.primary == prev.name.primary
                    {
                        let (first, second) = if better { (c, *prev) } else { (*prev, c) };
                        notes.push(format!(
                            "{}: {}:{} is named by index.json manifests[{}] and manifests[{}]; serving the first ({})",
                            labels[li],
                            key.0,
                            key.1,
                            first.position,
                            second.position,
                            first.target.digest
                        ));
                    }
                    if better {
                        won.insert(key, c);
                    }
                }
            }
        }
        per_layout.push(won);
    }
    // Per repository: which layouts claim it, and whether as written.
    let mut holders: BTreeMap<&str, Vec<(usize, bool)>> = BTreeMap::new();
    for (li, won) in per_layout.iter().enumerate() {
        let mut repos: BTreeMap<&str, bool> = BTreeMap::new();
        for ((repo, _), c) in won {
            *repos.entry(repo).or_default() |= c.name.primary;
        }
        for (repo, primary) in repos {
            holders.entry(repo).or_default().push((li, primary));
        }
    }
    let mut out = BTreeMap::new();
    for (repo, hs) in holders {
        let primaries: Vec<usize> = hs.iter().filter(|h| h.1).map(|h| h.0).collect();
        let winner = match (primaries.as_slice(), hs.as_slice()) {
            (_, [(only, _)]) => *only,
            ([a, b, ..], _) => {
                if strict {
                    return Err(Collision {
                        repository: repo.to_string(),
                        layouts: (*a, *b),
                    });
                }
                notes.push(format!(
                    "repository {repo} is in {} and {}; serving the first",
                    labels[*a], labels[*b]
                ));
                *a
            }
            ([one], _) => *one,
            ([], all) => {
                let names: Vec<&str> = all.iter().map(|h| labels[h.0].as_str()).collect();
                notes.push(format!(
                    "{repo} is an alias of images in {}; it is served by none of them",
                    names.join(" and ")
                ));
                continue;
            }
        };
        let mut r = Repository {
            layout: winner,
            ..Default::default()
        };
        for ((name, tag), c) in &per_layout[winner] {
            if *name == repo {
                r.tags.insert(tag.to_string(), c.target.clone());
                if r.origin.is_empty() || c.name.primary {
                    r.origin = c.name.origin.clone();
                }
            }
        }
        out.insert(repo.to_string(), r);
    }
    Ok((out, notes))
}

/// The repositories as a person reads them: each origin with the other names it is also
/// served under.
pub fn summary(repos: &BTreeMap<String, Repository>) -> Vec<(String, Vec<String>)> {
    let mut by_origin: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, r) in repos {
        let origin = if repos.contains_key(&r.origin) {
            r.origin.as_str()
        } else {
            name.as_str()
        };
        let aliases = by_origin.entry(origin).or_default();
        if name != origin {
            aliases.insert(name);
        }
    }
    by_origin
        .into_iter()
        .map(|(o, a)| (o.to_string(), a.into_iter().map(str::to_string).collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: Option<&str>, c: Option<&str>, dir: Option<&str>) -> Vec<(String, String, bool)> {
        let mut skipped = Vec::new();
        entry_names(r, c, dir, &mut skipped)
            .into_iter()
            .map(|n| (n.repository, n.tag, n.primary))
            .collect()
    }

    fn n(repo: &str, tag: &str, primary: bool) -> (String, String, bool) {
        (repo.into(), tag.into(), primary)
    }

    #[test]
    fn names_of_entries() {
        assert_eq!(
            names(Some("team/app:1.0"), None, Some("disk")),
            [n("team/app", "1.0", true)]
        );
        assert_eq!(
            names(Some("nginx:1.25"), None, None),
            [n("nginx", "1.25", true), n("library/nginx", "1.25", false)]
        );
        assert_eq!(
            names(Some("ghcr.io/org/app:1.0"), None, None),
            [
                n("ghcr.io/org/app", "1.0", true),
                n("org/app", "1.0", false)
            ]
        );
        assert_eq!(
            names(None, Some("docker.io/library/nginx:1.25"), None),
            [
                n("docker.io/library/nginx", "1.25", true),
                n("library/nginx", "1.25", false),
                n("nginx", "1.25", false)
            ]
        );
        // Docker 25's `docker save`: a bare tag beside the full name.
        assert_eq!(
            names(
                Some("latest"),
                Some("docker.io/library/dockerish:latest"),
                Some("x")
            ),
            [
                n("docker.io/library/dockerish", "latest", true),
                n("library/dockerish", "latest", false),
                n("dockerish", "latest", false)
            ]
        );
        // skopeo's `oci:DIR:1.25`: the directory names the repository.
        assert_eq!(
            names(Some("1.25"), None, Some("nginx")),
            [n("nginx", "1.25", false), n("library/nginx", "1.25", false)]
        );
        // A primary name beats the same name derived from another.
        assert_eq!(
            names(
                Some("library/nginx:1"),
                Some("docker.io/library/nginx:1"),
                None
            ),
            [
                n("library/nginx", "1", true),
                n("docker.io/library/nginx", "1", true),
                n("nginx", "1", false)
            ]
        );
        assert_eq!(
            names(Some("team/app"), None, None),
            [n("team/app", "latest", true)]
        );
        assert_eq!(
            names(Some("localhost:5000/a:1"), None, None),
            [n("a", "1", false)]
        );
    }

    #[test]
    fn unservable_names_are_explained() {
        let mut skipped = Vec::new();
        assert!(entry_names(Some("app:1.2.3+build"), None, None, &mut skipped).is_empty());
        assert!(
            skipped[0].contains("not a valid registry tag"),
            "{skipped:?}"
        );
        skipped.clear();
        assert!(entry_names(Some("Team/App:1"), None, None, &mut skipped).is_empty());
        assert!(
            skipped[0].contains("not a registry repository name"),
            "{skipped:?}"
        );
        skipped.clear();
        assert!(entry_names(Some("1.0"), None, Some("My Disk"), &mut skipped).is_empty());
        assert!(skipped[0].contains("ocitool tag"), "{skipped:?}");
        skipped.clear();
        assert!(entry_names(Some("app@sha256:00"), None, None, &mut skipped).is_empty());
        assert!(skipped.is_empty());
    }

    fn target(d: u8) -> Target {
        Target {
            digest: Digest::sha256(&[d]),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 1,
        }
    }

    fn claims(refs: &[(&str, u8)]) -> Vec<Claim> {
        let mut out = Vec::new();
        for (i, (r, d)) in refs.iter().enumerate() {
            for name in entry_names(Some(r), None, None, &mut Vec::new()) {
                out.push(Claim {
                    name,
                    position: i,
                    target: target(*d),
                });
            }
        }
        out
    }

    fn labels() -> Vec<String> {
        vec!["A".into(), "B".into()]
    }

    #[test]
    fn one_layout() {
        let (repos, notes) = assemble(
            &[claims(&[
                ("nginx:1", 1),
                ("library/nginx:2", 2),
                ("nginx:1", 3),
            ])],
            &labels(),
            true,
        )
        .unwrap();
        assert_eq!(repos["nginx"].tags["1"], target(1), "first entry wins");
        assert!(
            notes[0].contains("manifests[0] and manifests[2]"),
            "{notes:?}"
        );
        let lib = &repos["library/nginx"];
        assert_eq!(lib.tags.keys().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(lib.tags["2"], target(2));
        assert_eq!(
            summary(&repos),
            [
                ("library/nginx".to_string(), vec![]),
                ("nginx".to_string(), vec![])
            ]
        );
    }

    #[test]
    fn layouts_collide_only_on_names_as_written() {
        let a = claims(&[("app:1", 1)]);
        let b = claims(&[("app:2", 2)]);
        let err = assemble(&[a.clone(), b], &labels(), true).unwrap_err();
        assert_eq!(
            err,
            Collision {
                repository: "app".into(),
                layouts: (0, 1)
            }
        );
        // An alias loses to a name as written; a shared alias is served by neither.
        let b = claims(&[("library/app:2", 2), ("ghcr.io/x/y:1", 2)]);
        let c = claims(&[("quay.io/x/y:1", 3)]);
        let (repos, notes) =
            assemble(&[a, b, c], &["A".into(), "B".into(), "C".into()], true).unwrap();
        assert_eq!(repos["app"].layout, 0);
        assert_eq!(repos["library/app"].layout, 1);
        assert_eq!(repos["library/app"].tags.len(), 1);
        assert!(!repos.contains_key("x/y"));
        assert_eq!(repos["ghcr.io/x/y"].layout, 1);
        assert_eq!(repos["quay.io/x/y"].layout, 2);
        assert!(
            notes.iter().any(|n| n.contains("x/y is an alias")),
            "{notes:?}"
        );
        // Not strict (a reload): the first layout keeps a colliding repository.
        let (repos, notes) = assemble(
            &[claims(&[("app:1", 1)]), claims(&[("app:2", 2)])],
            &labels(),
            false,
        )
        .unwrap();
        assert_eq!(repos["app"].tags.keys().collect::<Vec<_>>(), ["1"]);
        assert!(notes[0].contains("is in A and B"), "{notes:?}");
    }

    #[test]
    fn summary_groups_aliases_under_their_origin() {
        let mut c = Vec::new();
        for name in entry_names(
            None,
            Some("docker.io/library/nginx:1"),
            None,
            &mut Vec::new(),
        ) {
            c.push(Claim {
                name,
                position: 0,
                target: target(1),
            });
        }
        let (repos, _) = assemble(&[c], &labels(), true).unwrap();
        assert_eq!(
            summary(&repos),
            [(
                "docker.io/library/nginx".to_string(),
                vec!["library/nginx".to_string(), "nginx".to_string()]
            )]
        );
    }
}
