//! Finding what a REF (a ref name or a digest) names in a layout.
//!
//! A name is looked up in three tiers, the first that matches wins:
//! 1. `org.opencontainers.image.ref.name` equal to the REF (skopeo's `oci:DIR:REF`);
//! 2. `io.containerd.image.name` equal to the REF (containerd, Docker 25+ `docker save`);
//! 3. the familiar form of `io.containerd.image.name` equal to the REF's familiar form
//!    (`busybox:latest` finds `docker.io/library/busybox:latest`).
//!
//! A REF that is a full digest names a manifest or index: an `index.json` entry, a child of
//! an index, or a blob of the layout.

use ocitool_digest::Digest;
use ocitool_spec::media::{self, Kind};
use ocitool_spec::refname;
use ocitool_spec::{Document, Platform};
use serde_json::Value;

use crate::errors::{Error, Result};
use crate::graph::{Graph, WalkOptions};
use crate::index::{IndexDoc, descriptor_value};
use crate::source::BlobSource;

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

/// Positions of the `index.json` entries a name matches (see the module docs).
/// The first tier is a lookup (no pass over the index once it was looked up by name).
pub fn match_name(index: &IndexDoc, name: &str) -> Vec<usize> {
    let tier1 = index.positions_named(name);
    if !tier1.is_empty() {
        return tier1;
    }
    let tier2: Vec<usize> = index
        .keys()
        .filter(|k| k.containerd_name == Some(name))
        .map(|k| k.position)
        .collect();
    if !tier2.is_empty() {
        return tier2;
    }
    let want = refname::familiar(name);
    index
        .keys()
        .filter(|k| k.containerd_name.map(refname::familiar) == Some(want))
        .map(|k| k.position)
        .collect()
}

/// Resolves a REF to one target.
pub fn resolve(layout: &dyn BlobSource, index: &IndexDoc, reference: &str) -> Result<Target> {
    if let Ok(digest) = Digest::parse(reference) {
        return resolve_digest(layout, index, &digest);
    }
    let positions = match_name(index, reference);
    let mut targets: Vec<Target> = Vec::new();
    for p in positions {
        let Some(raw) = index.raw_entry(p) else {
            continue;
        };
        let t = target_from_value(&raw, &format!("index.json manifests[{p}]"))?;
        if !targets.iter().any(|x| x.digest == t.digest) {
            targets.push(t);
        }
    }
    match targets.len() {
        0 => Err(Error::UnknownRef {
            name: reference.to_string(),
            layout: layout.root().to_path_buf(),
            hint: hint(index, reference),
        }),
        1 => Ok(targets.pop().expect("one element")),
        _ => Err(Error::AmbiguousRef {
            name: reference.to_string(),
            layout: layout.root().to_path_buf(),
            candidates: targets.iter().map(|t| t.digest.to_string()).collect(),
        }),
    }
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

/// A suggestion for an unknown name: refs with the same tag or repository.
fn hint(index: &IndexDoc, reference: &str) -> String {
    let names: Vec<String> = index
        .keys()
        .filter_map(|k| k.display_name().map(str::to_string))
        .collect();
    if names.is_empty() {
        return " (the layout has no refs)".into();
    }
    let (repo, tag) = refname::split_repo_tag(refname::familiar(reference));
    let mut close: Vec<&String> = names
        .iter()
        .filter(|n| {
            let (r, t) = refname::split_repo_tag(refname::familiar(n));
            (!repo.is_empty() && r == repo)
                || (tag.is_some() && t == tag)
                || n.as_str() == tag.unwrap_or("")
        })
        .collect();
    close.sort();
    close.dedup();
    close.truncate(5);
    if close.is_empty() {
        format!(" ({} refs; `ocitool ls` lists them)", names.len())
    } else {
        format!(
            " (did you mean {}?)",
            close
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
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
