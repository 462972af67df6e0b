//! The docker-save `manifest.json` and the rules for names Docker accepts as RepoTags.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::views::Descriptor;

/// One image of a docker-save `manifest.json`.
///
/// Keys are matched without regard to ASCII case, as Go's `encoding/json` (and so `docker
/// load` and skopeo) matches them: Jib before mid-2020 wrote `config`, `repoTags`, `layers`.
/// A key given twice (in any case) is refused rather than guessed at. Other keys are ignored.
#[derive(Clone, Debug, Default)]
pub struct ManifestItem {
    /// Path of the config inside the archive.
    pub config: String,
    pub repo_tags: Vec<String>,
    /// Paths of the layers inside the archive, base first.
    pub layers: Vec<String>,
    /// Docker 25+: the distribution descriptor of each layer, by diff_id.
    pub layer_sources: BTreeMap<String, Descriptor>,
    pub parent: Option<String>,
}

impl<'de> Deserialize<'de> for ManifestItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> serde::de::Visitor<'de> for ItemVisitor {
    type Value = ManifestItem;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a manifest.json item (an object with Config, RepoTags and Layers)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ManifestItem, A::Error> {
        use serde::de::Error;
        let mut item = ManifestItem::default();
        let mut config = None;
        let mut seen: Vec<&'static str> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let field = match key.to_ascii_lowercase().as_str() {
                "config" => "Config",
                "repotags" => "RepoTags",
                "layers" => "Layers",
                "layersources" => "LayerSources",
                "parent" => "Parent",
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            if seen.contains(&field) {
                return Err(A::Error::custom(format!(
                    "{field} is given twice (as {key:?} again; keys are matched regardless of case)"
                )));
            }
            seen.push(field);
            match field {
                "Config" => config = Some(map.next_value::<String>()?),
                "RepoTags" => {
                    item.repo_tags = map.next_value::<Option<_>>()?.unwrap_or_default();
                }
                "Layers" => item.layers = map.next_value::<Option<_>>()?.unwrap_or_default(),
                "LayerSources" => {
                    item.layer_sources = map.next_value::<Option<_>>()?.unwrap_or_default();
                }
                _ => item.parent = map.next_value()?,
            }
        }
        item.config = config.ok_or_else(|| A::Error::missing_field("Config"))?;
        Ok(item)
    }
}

/// Why a name cannot be a Docker RepoTag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RepoTagError(pub &'static str);

/// Checks a `repo:tag` as Docker's reference grammar (distribution/reference) accepts it for
/// `docker load`: an optional registry host (with port), lowercase path components separated by
/// `/` made of `[a-z0-9]` joined by `.`, `_`, `__` or `-`s, and a tag `[\w][\w.-]{0,127}`.
/// A digest reference is not a tag.
pub fn validate_repo_tag(name: &str) -> Result<(), RepoTagError> {
    if name.contains('@') {
        return Err(RepoTagError("a digest reference is not a tag"));
    }
    let (repo, tag) = crate::refname::split_repo_tag(name);
    let tag = tag.ok_or(RepoTagError("it has no :tag"))?;
    let tb = tag.as_bytes();
    if tb.is_empty() || tb.len() > 128 {
        return Err(RepoTagError("the tag must be 1 to 128 characters"));
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if !word(tb[0]) || !tb.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        return Err(RepoTagError(
            "the tag may hold only letters, digits, '_', '.' and '-', and must not start with '.' or '-'",
        ));
    }
    if repo.is_empty() || repo.len() > 255 {
        return Err(RepoTagError(
            "the repository name must be 1 to 255 characters",
        ));
    }
    let mut comps: Vec<&str> = repo.split('/').collect();
    let first = comps[0];
    let has_domain =
        comps.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_domain {
        let (host, port) = match first.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (first, None),
        };
        let host_ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !host_ok || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
        {
            return Err(RepoTagError("the registry host is not a valid host[:port]"));
        }
        comps.remove(0);
    }
    for c in comps {
        if !path_component(c) {
            return Err(RepoTagError(
                "repository path components must be lowercase letters and digits joined by '.', '_', '__' or '-'",
            ));
        }
    }
    Ok(())
}

fn path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // separator: '.', '_', '__', or one or more '-'
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !b.get(i).is_some_and(|&c| is_alnum(c)) {
            return false;
        }
    }
    true
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}
