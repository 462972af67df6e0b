//! Finding what a REF (a ref name or a digest) names in a layout, what REF arguments select,
//! and what `--platform` picks.
//!
//! A REF is looked up in this order; the first that matches wins:
//! 1. a full digest (`sha256:<64 hex>`) names a manifest or index: an `index.json` entry, a
//!    child of an index, or a blob of the layout;
//! 2. `org.opencontainers.image.ref.name` equal to the REF (skopeo's `oci:DIR:REF`): an exact
//!    name always wins over what follows;
//! 3. `io.containerd.image.name` equal to the REF (containerd, Docker 25+ `docker save`);
//! 4. a twin: a `ref.name` or `io.containerd.image.name` that is the same image name however
//!    spelled (`nginx`, `nginx:latest`, `docker.io/library/nginx:latest` and
//!    `index.docker.io/library/nginx:latest` are one name; see `reference::name_key`), so no
//!    tag means `:latest`;
//! 5. `name@sha256:<64 hex>`: that digest, as in 1 (the name is checked to be a reference, as
//!    `docker pull name@digest` fetches that digest whatever tags point at it);
//! 6. a digest prefix as `ls` prints it (`sha256:57dfcf804930`, at least
//!    [`MIN_DIGEST_PREFIX`] hex digits) that one digest of the `index.json` entries starts
//!    with.
//!
//! An unknown REF is reported with suggestions: names within a small edit distance
//! (`app:lates` → `app:latest`), the refs whose tag is a bare word given (`latest` →
//! `app:latest`), else refs of the same repository or tag.
//!
//! REF arguments select refs through [`select_refs`]: `REPO:*` is every tag of a repository
//! (compared by normalized name: `nginx:*` selects `docker.io/library/nginx:1`), and with
//! `--all-tags` every argument is a repository.

use std::collections::{HashMap, HashSet};

use ocitool_digest::Digest;
use ocitool_spec::media::{self, Kind};
use ocitool_spec::reference::{self, Reference, familiar_str, split_repo_tag};
use ocitool_spec::{Document, Platform};
use serde_json::Value;

use crate::errors::{Error, Result};
use crate::graph::{Graph, WalkOptions};
use crate::index::{IndexDoc, descriptor_value};
use crate::source::BlobSource;

/// Fewest hex digits of a digest prefix (`sha256:57df`) a lookup accepts.
pub const MIN_DIGEST_PREFIX: usize = 4;

/// What a REF resolved to.
#[derive(Clone, Debug)]
pub struct Target {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// The descriptor as raw JSON, ready to be copied into `index.json`.
    pub descriptor: Value,
}

impl Target {
    pub fn kind(&self) -> Kind {
        media::classify(&self.media_type)
    }

    pub fn checked(&self) -> ocitool_spec::views::Checked {
        ocitool_spec::views::Checked {
            digest: self.digest.clone(),
            size: self.size,
        }
    }
}

/// What a REF resolved to, and the ref name it is carried under.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub target: Target,
    /// The name a copy, pack or export carries: the REF as given when it matched a name
    /// exactly (or a containerd name), the stored `ref.name` when it matched a twin of it
    /// (`app:latest` for `app`), `None` for a digest, `name@digest` or a digest prefix.
    pub name: Option<String>,
}

/// Positions of the `index.json` entries a name matches (tiers 2 to 4 of the module docs).
/// The first tier is a lookup (no pass over the index once it was looked up by name).
pub fn match_name(index: &IndexDoc, name: &str) -> Vec<usize> {
    match_name_tier(index, name).0
}

/// The positions a name matches, and whether they matched as twins (tier 4).
fn match_name_tier(index: &IndexDoc, name: &str) -> (Vec<usize>, bool) {
    let tier1 = index.positions_named(name);
    if !tier1.is_empty() {
        return (tier1, false);
    }
    let tier2: Vec<usize> = index
        .keys()
        .filter(|k| k.containerd_name == Some(name))
        .map(|k| k.position)
        .collect();
    if !tier2.is_empty() {
        return (tier2, false);
    }
    let mut twins = index.positions_twins(name);
    twins.extend(
        index
            .keys()
            .filter(|k| {
                k.containerd_name
                    .is_some_and(|c| reference::same_name(c, name))
            })
            .map(|k| k.position),
    );
    twins.sort_unstable();
    twins.dedup();
    (twins, true)
}

/// Resolves a REF to one target.
pub fn resolve(layout: &dyn BlobSource, index: &IndexDoc, reference: &str) -> Result<Target> {
    resolve_named(layout, index, reference).map(|r| r.target)
}

/// Resolves a REF to one target (see the module docs), with the name it is carried under.
pub fn resolve_named(
    layout: &dyn BlobSource,
    index: &IndexDoc,
    reference: &str,
) -> Result<Resolved> {
    let unnamed = |target| Resolved { target, name: None };
    if let Ok(digest) = Digest::parse(reference) {
        return resolve_digest(layout, index, &digest).map(unnamed);
    }
    let (positions, as_twin) = match_name_tier(index, reference);
    let mut targets: Vec<(Target, Option<String>)> = Vec::new();
    for p in positions {
        let Some(raw) = index.raw_entry(p) else {
            continue;
        };
        let t = target_from_value(&raw, &format!("index.json manifests[{p}]"))?;
        let stored = index
            .key(p)
            .and_then(|k| k.ref_name)
            .filter(|_| as_twin)
            .map(str::to_string);
        match targets.iter_mut().find(|x| x.0.digest == t.digest) {
            Some(x) => {
                if x.1.is_none() {
                    x.1 = stored;
                }
            }
            None => targets.push((t, stored)),
        }
    }
    match targets.len() {
        0 => {}
        1 => {
            let (target, stored) = targets.pop().expect("one element");
            return Ok(Resolved {
                target,
                name: Some(stored.unwrap_or_else(|| reference.to_string())),
            });
        }
        _ => {
            return Err(Error::AmbiguousRef {
                name: reference.to_string(),
                layout: layout.root().to_path_buf(),
                candidates: targets.iter().map(|t| t.0.digest.to_string()).collect(),
            });
        }
    }
    if let Ok(r) = Reference::parse(reference)
        && let Some(d) = r.digest()
    {
        return resolve_digest(layout, index, d).map(unnamed);
    }
    if let Some(prefix) = digest_prefix(reference) {
        let mut found: Vec<&str> = index
            .keys()
            .map(|k| k.digest)
            .filter(|d| d.starts_with(prefix))
            .collect();
        found.sort_unstable();
        found.dedup();
        match found.as_slice() {
            [] => {}
            [one] => {
                let d = Digest::parse(one).map_err(|e| Error::Invalid(e.to_string()))?;
                return resolve_digest(layout, index, &d).map(unnamed);
            }
            many => {
                return Err(Error::AmbiguousRef {
                    name: reference.to_string(),
                    layout: layout.root().to_path_buf(),
                    candidates: many.iter().map(|d| d.to_string()).collect(),
                });
            }
        }
    }
    Err(Error::UnknownRef {
        name: reference.to_string(),
        layout: layout.root().to_path_buf(),
        hint: hint(index, reference),
    })
}

/// `sha256:<hex>` or `sha512:<hex>` with at least [`MIN_DIGEST_PREFIX`] lower-case hex
/// digits, fewer than a whole digest: a prefix of a digest as `ls` prints it.
fn digest_prefix(s: &str) -> Option<&str> {
    let (alg, hex) = s.split_once(':')?;
    let full = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return None,
    };
    ((MIN_DIGEST_PREFIX..full).contains(&hex.len())
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then_some(s)
}

fn target_from_value(raw: &Value, location: &str) -> Result<Target> {
    let d: ocitool_spec::Descriptor = serde::Deserialize::deserialize(raw)
        .map_err(|e| Error::Invalid(format!("{location}: {e}")))?;
    let c = d.checked().map_err(|source| Error::Descriptor {
        location: location.to_string(),
        source,
    })?;
    Ok(Target {
        digest: c.digest,
        size: c.size,
        media_type: d.media_type,
        descriptor: raw.clone(),
    })
}

fn resolve_digest(layout: &dyn BlobSource, index: &IndexDoc, digest: &Digest) -> Result<Target> {
    let ds = digest.to_string();
    for k in index.keys() {
        let p = k.position;
        if k.digest == ds
            && let Some(raw) = index.raw_entry(p)
        {
            return target_from_value(&raw, &format!("index.json manifests[{p}]"));
        }
    }
    // A child of an index (one platform of a multi-platform image), found by walking.
    let g = Graph::walk_index(layout, index, WalkOptions::default());
    for n in g.nodes.values() {
        for (child, platform) in &n.platforms {
            if child == digest
                && let Some(c) = g.nodes.get(child)
                && matches!(c.kind, Kind::Index | Kind::Manifest)
            {
                let mut v = descriptor_value(&c.media_type, digest, c.size);
                if let Some(p) = platform {
                    v["platform"] = serde_json::to_value(p).unwrap_or(Value::Null);
                }
                if let Some(a) = &c.artifact_type {
                    v["artifactType"] = Value::from(a.as_str());
                }
                return Ok(Target {
                    digest: digest.clone(),
                    size: c.size,
                    media_type: c.media_type.clone(),
                    descriptor: v,
                });
            }
        }
    }
    // Any manifest or index blob of the layout.
    match layout.stat_blob(digest)? {
        Some(_) => {
            let bytes = layout.read_json_blob_by_digest(digest)?;
            let doc = Document::parse(&bytes, None).map_err(|source| Error::BlobJson {
                digest: digest.clone(),
                source,
            })?;
            let media_type = match (&doc, doc.media_type()) {
                (_, Some(mt)) if !mt.is_empty() => mt.to_string(),
                (Document::Index(_), _) => media::OCI_INDEX.to_string(),
                (Document::Manifest(_), _) => media::OCI_MANIFEST.to_string(),
            };
            let mut v = descriptor_value(&media_type, digest, bytes.len() as u64);
            if let Some(a) = doc.artifact_type() {
                v["artifactType"] = Value::from(a);
            }
            Ok(Target {
                digest: digest.clone(),
                size: bytes.len() as u64,
                media_type,
                descriptor: v,
            })
        }
        None => Err(Error::UnknownRef {
            name: digest.to_string(),
            layout: layout.root().to_path_buf(),
            hint: " (no index.json entry, index child or blob has that digest)".into(),
        }),
    }
}

/// The name a person knows each entry by (its ref name, else its containerd name), once
/// each.
fn known_names(index: &IndexDoc) -> Vec<&str> {
    let mut seen = HashSet::new();
    index
        .keys()
        .filter_map(|k| k.ref_name.or(k.containerd_name))
        .filter(|n| seen.insert(*n))
        .collect()
}

/// How many edits a suggestion may be away from what was typed: about one in four
/// characters, one at least and three at most.
fn max_edits(typed: &str) -> usize {
    (typed.chars().count() / 4).clamp(1, 3)
}

/// Suggestions for an unknown name, as ` (did you mean "app:latest"?)`: names within a few
/// edits of it (compared in their familiar forms, so `docker.io/library/app:lates` finds
/// `app:latest`), the refs whose tag is a bare word given (`latest`), else refs of the same
/// repository or the same tag. At most five, closest first.
pub fn hint(index: &IndexDoc, reference: &str) -> String {
    let names = known_names(index);
    if names.is_empty() {
        return " (the layout has no refs)".into();
    }
    let typed = familiar_str(reference);
    let limit = max_edits(typed);
    let bare = !reference.contains([':', '/', '@']);
    let (repo, tag) = split_repo_tag(typed);
    let mut close: Vec<(usize, &str)> = Vec::new();
    for &n in &names {
        let f = familiar_str(n);
        let (r, t) = split_repo_tag(f);
        let score = if bare && t == Some(reference) {
            Some(0)
        } else if f.len().abs_diff(typed.len()) <= limit {
            let d = strsim::levenshtein(typed, f);
            (d <= limit).then_some(d)
        } else {
            None
        };
        let score = score.or_else(|| {
            ((!repo.is_empty() && r == repo) || (tag.is_some() && t == tag) || n == reference)
                .then_some(limit + 1)
        });
        if let Some(d) = score {
            close.push((d, n));
        }
    }
    close.sort_unstable();
    close.dedup();
    close.truncate(5);
    if close.is_empty() {
        format!(" ({} refs; `ocitool ls` lists them)", names.len())
    } else {
        format!(
            " (did you mean {}?)",
            close
                .iter()
                .map(|(_, s)| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Expands REF arguments into the refs they select, in order, each once: `REPO:*` is every
/// ref of repository `REPO` (compared by normalized name, so `nginx:*` selects
/// `docker.io/library/nginx:1` too), in `index.json` order; with `all_tags` every argument
/// is a repository (`app` or `app:*`; a tag or digest is refused); any other argument is kept
/// as it is, to be resolved. A repository with no ref is an error with suggestions.
pub fn select_refs(
    layout: &dyn BlobSource,
    index: &IndexDoc,
    args: &[String],
    all_tags: bool,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for a in args {
        let repo = match a.strip_suffix(":*") {
            Some(r) if !r.is_empty() => Some(r),
            _ if all_tags => {
                if Digest::parse(a).is_ok() || split_repo_tag(a).1.is_some() {
                    return Err(Error::Invalid(format!(
                        "{a}: --all-tags takes repositories (app, not app:1 or a digest)"
                    )));
                }
                Some(a.as_str())
            }
            _ => None,
        };
        let Some(repo) = repo else {
            if seen.insert(a.clone()) {
                out.push(a.clone());
            }
            continue;
        };
        let matched = refs_of_repository(index, repo);
        if matched.is_empty() {
            return Err(Error::UnknownRef {
                name: format!("{repo}:*"),
                layout: layout.root().to_path_buf(),
                hint: repository_hint(index, repo),
            });
        }
        for n in matched {
            if seen.insert(n.to_string()) {
                out.push(n.to_string());
            }
        }
    }
    Ok(out)
}

/// The names of the entries of repository `repo` (by [`reference::repository_key`]), in
/// order, each once.
pub fn refs_of_repository<'a>(index: &'a IndexDoc, repo: &str) -> Vec<&'a str> {
    let want = reference::repository_key(repo);
    let last = repo_last(repo);
    known_names(index)
        .into_iter()
        .filter(|n| repo_last(n) == last && reference::repository_key(n) == want)
        .collect()
}

/// The last path component of a name's repository (normalizing does not change it).
fn repo_last(name: &str) -> &str {
    let name = name.split_once('@').map_or(name, |(n, _)| n);
    let (repo, _) = split_repo_tag(name);
    repo.rsplit('/').next().unwrap_or(repo)
}

/// Suggestions for a repository no ref belongs to: repositories within a few edits.
fn repository_hint(index: &IndexDoc, repo: &str) -> String {
    let typed = familiar_str(repo);
    let limit = max_edits(typed);
    let mut repos: Vec<&str> = known_names(index)
        .into_iter()
        .map(|n| split_repo_tag(familiar_str(n.split_once('@').map_or(n, |(r, _)| r))).0)
        .filter(|r| !r.is_empty())
        .collect();
    repos.sort_unstable();
    repos.dedup();
    let mut close: Vec<(usize, &str)> = repos
        .iter()
        .map(|r| (strsim::levenshtein(typed, r), *r))
        .filter(|(d, _)| *d <= limit)
        .collect();
    close.sort_unstable();
    close.truncate(5);
    if close.is_empty() {
        format!(
            " (no ref of repository {typed}; {} repositories: `ocitool ls` lists them)",
            repos.len()
        )
    } else {
        format!(
            " (no ref of repository {typed}; did you mean {}?)",
            close
                .iter()
                .map(|(_, r)| format!("\"{r}:*\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The `index.json` entries REFs name, for commands that act on entries rather than on what
/// a REF resolves to (`untag`): the same lookups as [`resolve_named`], each entry of a name,
/// a twin or a digest. Entries by digest are listed once, on the first digest asked for.
pub struct EntryLookup<'l> {
    layout: &'l dyn BlobSource,
    by_digest: Option<HashMap<String, Vec<usize>>>,
}

impl<'l> EntryLookup<'l> {
    pub fn new(layout: &'l dyn BlobSource) -> Self {
        EntryLookup {
            layout,
            by_digest: None,
        }
    }

    /// The positions of the entries `r` names, and whether it named a digest (a full one, a
    /// prefix, `name@digest`); none when it names nothing. `index` must be the same
    /// document on every call (the digest list is kept).
    pub fn entries(&mut self, index: &IndexDoc, r: &str) -> Result<(Vec<usize>, bool)> {
        entries_matching(self.layout, index, r, &mut self.by_digest)
    }
}

/// The entries a REF removes: those pointing at a digest (a full one, or a prefix as `ls`
/// prints it, when no name matches); those of a name, its containerd name or a twin of it;
/// for `name@digest`, the refs of that repository pointing at the digest.
fn entries_matching(
    layout: &dyn BlobSource,
    index: &IndexDoc,
    r: &str,
    by_digest: &mut Option<HashMap<String, Vec<usize>>>,
) -> Result<(Vec<usize>, bool)> {
    let mut of_digest = |d: &str| {
        by_digest
            .get_or_insert_with(|| entries_by_digest(index))
            .get(d)
            .cloned()
            .unwrap_or_default()
    };
    if Digest::parse(r).is_ok() {
        refuse_digest_named_entry(index, r)?;
        return Ok((of_digest(r), true));
    }
    let named = match_name(index, r);
    if !named.is_empty() {
        return Ok((named, false));
    }
    if let Ok(x) = Reference::parse(r)
        && let Some(d) = x.digest()
    {
        let repo = x.name();
        let all = of_digest(&d.to_string());
        let mine: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&p| {
                index
                    .key(p)
                    .and_then(|k| k.display_name())
                    .is_some_and(|n| reference::repository_key(n) == repo)
            })
            .collect();
        if mine.is_empty() && !all.is_empty() {
            let names: Vec<String> = all
                .iter()
                .filter_map(|&p| index.key(p).and_then(|k| k.display_name()))
                .map(|n| format!("{n:?}"))
                .collect();
            return Err(Error::UnknownRef {
                name: r.to_string(),
                layout: layout.root().to_path_buf(),
                hint: format!(
                    " (no ref of repository {} points at {d}; {} do{})",
                    x.familiar_name(),
                    if names.is_empty() {
                        "only unnamed entries".to_string()
                    } else {
                        names.join(", ")
                    },
                    if names.len() == 1 { "es" } else { "" }
                ),
            });
        }
        return Ok((mine, true));
    }
    // A digest prefix as `ls` prints it, naming one digest.
    match resolve_named(layout, index, r) {
        Ok(found) if found.name.is_none() => {
            Ok((of_digest(&found.target.digest.to_string()), true))
        }
        Ok(_) | Err(Error::UnknownRef { .. }) => Ok((Vec::new(), false)),
        Err(e) => Err(e),
    }
}

fn entries_by_digest(index: &IndexDoc) -> HashMap<String, Vec<usize>> {
    let mut m: HashMap<String, Vec<usize>> = HashMap::new();
    for k in index.keys() {
        m.entry(k.digest.to_string()).or_default().push(k.position);
    }
    m
}

/// A digest given to `untag` means the entries pointing at it. If an entry is also *named*
/// that very text (not a valid ref name, but another tool may have written it), which one
/// the user means cannot be known: removing the refs of the image with that digest could
/// remove another image's refs by surprise. Refused; `--name` removes the named entry.
fn refuse_digest_named_entry(index: &IndexDoc, r: &str) -> Result<()> {
    let Some(&p) = index.positions_named(r).first() else {
        return Ok(());
    };
    let points_at = index.key(p).map(|k| k.digest).unwrap_or_default();
    Err(Error::Invalid(format!(
        "{r} is a digest, and also the ref name of index.json manifests[{p}] (which points at {points_at}): untag --name {r} removes that entry, and after it untag {r} removes the entries pointing at the digest"
    )))
}

/// What `--platform` picks from a target, the one rule of `export`, `pack`, `copy`,
/// `convert`, `inspect` and `push` (`graph` must have walked the target with its configs):
/// - an index: its manifest for `wanted` (with the index's platform on the descriptor);
///   without `wanted`, the index itself, or with `one` its only manifest or the host's;
/// - an image manifest: itself, if its config's platform is `wanted` (os/arch, and the
///   variant when one is asked for); otherwise an error, never another platform's image;
/// - anything else (an artifact, a manifest whose config names no platform): itself.
///
/// `name` is the ref the target was found by, for errors.
pub fn for_platform(
    graph: &Graph,
    name: Option<&str>,
    target: &Target,
    wanted: Option<&Platform>,
    one: bool,
) -> Result<Target> {
    let kind = graph
        .nodes
        .get(&target.digest)
        .map_or(target.kind(), |n| n.kind);
    match kind {
        Kind::Index if wanted.is_some() || one => {
            let child = select_platform(graph, &target.digest, wanted).map_err(|e| match e {
                Error::NoSuchPlatform {
                    image,
                    digest,
                    wanted,
                    available,
                } => Error::NoSuchPlatform {
                    image: match name {
                        Some(n) => format!("ref {n:?} ({image})"),
                        None => image,
                    },
                    digest,
                    wanted,
                    available,
                },
                other => other,
            })?;
            let node = graph.nodes.get(&child).ok_or_else(|| {
                Error::Invalid(format!(
                    "{child} (of {}) is not in the layout",
                    target.digest
                ))
            })?;
            let mut v = descriptor_value(&node.media_type, &child, node.size);
            if let Some(p) = graph.nodes[&target.digest]
                .platforms
                .iter()
                .find(|(d, _)| *d == child)
                .and_then(|(_, p)| p.clone())
            {
                v["platform"] = serde_json::to_value(p).unwrap_or(Value::Null);
            }
            Ok(Target {
                digest: child,
                size: node.size,
                media_type: node.media_type.clone(),
                descriptor: v,
            })
        }
        Kind::Manifest => {
            if let Some(w) = wanted {
                check_image_platform(graph, name, &target.digest, std::slice::from_ref(w))?;
            }
            Ok(target.clone())
        }
        _ => Ok(target.clone()),
    }
}

/// Refuses an image manifest whose config's platform is none of `wanted`; a manifest whose
/// config names no platform (an artifact) passes. `name` is the ref it was found by.
pub fn check_image_platform(
    graph: &Graph,
    name: Option<&str>,
    digest: &Digest,
    wanted: &[Platform],
) -> Result<()> {
    let have: Vec<Platform> = graph
        .platforms_of(digest)
        .into_iter()
        .filter(|p| !p.os.is_empty() && p.os != "unknown")
        .collect();
    if wanted.is_empty() || have.is_empty() || have.iter().any(|p| Platform::any_selects(wanted, p))
    {
        return Ok(());
    }
    Err(Error::WrongPlatform {
        image: match name {
            Some(n) => format!("ref {n:?} ({digest})"),
            None => digest.to_string(),
        },
        have,
        wanted: wanted.to_vec(),
    })
}

/// Picks one manifest of an index for a platform: the one matching `wanted`, or, without
/// `wanted`, the only one, or the host's.
pub fn select_platform(graph: &Graph, index: &Digest, wanted: Option<&Platform>) -> Result<Digest> {
    let Some(node) = graph.nodes.get(index) else {
        return Err(Error::Invalid(format!("{index} is not in the layout")));
    };
    let candidates: Vec<(Digest, Platform)> = node
        .platforms
        .iter()
        .filter_map(|(d, p)| {
            let p = p
                .clone()
                .or_else(|| graph.platforms_of(d).into_iter().next())?;
            (p.os != "unknown").then_some((d.clone(), p))
        })
        .collect();
    let available: Vec<Platform> = candidates.iter().map(|(_, p)| p.clone()).collect();
    let pick = |want: &Platform| -> Option<Digest> {
        let exact: Vec<&(Digest, Platform)> =
            candidates.iter().filter(|(_, p)| want.matches(p)).collect();
        if let Some((d, _)) = exact.first() {
            return Some(d.clone());
        }
        if want.variant.is_none() {
            let loose: Vec<&(Digest, Platform)> = candidates
                .iter()
                .filter(|(_, p)| want.matches_os_arch(p))
                .collect();
            if loose.len() == 1 {
                return Some(loose[0].0.clone());
            }
        }
        None
    };
    match wanted {
        Some(w) => pick(w).ok_or_else(|| Error::NoSuchPlatform {
            image: format!("index {index}"),
            digest: index.clone(),
            wanted: w.clone(),
            available,
        }),
        None if candidates.len() == 1 => Ok(candidates[0].0.clone()),
        None => pick(&Platform::host()).ok_or_else(|| Error::PlatformNeeded {
            digest: index.clone(),
            available,
        }),
    }
}
