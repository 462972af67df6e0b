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
/// `/` made of `[a-z0-9]` joined by `.`, `_`, `__` or `-`s, a tag `[\w][\w.-]{0,127}`, and at
/// most 255 characters for the normalized `registry/repository`. A digest reference is not a
/// tag. The grammar is [`crate::reference::Reference::parse`]'s.
pub fn validate_repo_tag(name: &str) -> Result<(), RepoTagError> {
    if name.contains('@') {
        return Err(RepoTagError("a digest reference is not a tag"));
    }
    if crate::reference::split_repo_tag(name).1.is_none() {
        return Err(RepoTagError("it has no :tag"));
    }
    crate::reference::Reference::parse(name)
        .map(|_| ())
        .map_err(|e| RepoTagError(e.why))
}
