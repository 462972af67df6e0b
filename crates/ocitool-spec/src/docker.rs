//! The docker-save `manifest.json` and the rules for names Docker accepts as RepoTags.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::views::Descriptor;

/// One image of a docker-save `manifest.json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestItem {
    /// Path of the config inside the archive.
    pub config: String,
    #[serde(default, deserialize_with = "null_default")]
    pub repo_tags: Vec<String>,
    /// Paths of the layers inside the archive, base first.
    #[serde(default, deserialize_with = "null_default")]
    pub layers: Vec<String>,
    /// Docker 25+: the distribution descriptor of each layer, by diff_id.
    #[serde(default, deserialize_with = "null_default")]
    pub layer_sources: BTreeMap<String, Descriptor>,
    #[serde(default)]
    pub parent: Option<String>,
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
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
