//! Lenient read views of the JSON documents ocitool traverses.
//!
//! They hold only the fields ocitool follows, read `null` arrays and maps as empty (Docker 25
//! writes `"manifests": null`, Docker configs `"Labels": null`), keep digests as strings so a
//! bad digest in one descriptor can be reported without losing the rest of the document, and
//! are never serialized back: the original bytes of a document are what ocitool stores,
//! copies and hashes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use ocitool_digest::{Digest, DigestError};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::platform::Platform;
use crate::{SpecError, media};

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A content descriptor.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default, deserialize_with = "null_default")]
    pub media_type: String,
    #[serde(default, deserialize_with = "null_default")]
    pub digest: String,
    /// Kept signed so a negative size can be reported rather than failing the parse.
    #[serde(default, deserialize_with = "null_default")]
    pub size: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub urls: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub artifact_type: Option<String>,
}

/// A descriptor whose digest and size passed validation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Checked {
    pub digest: Digest,
    pub size: u64,
}

/// What is wrong with a descriptor's own fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error("negative size {0}")]
    NegativeSize(i64),
    #[error("size {size} exceeds the limit of {limit} bytes for a {what}")]
    TooLarge {
        size: u64,
        limit: u64,
        what: &'static str,
    },
    #[error("malformed media type {0:?}")]
    MediaType(String),
}

/// A descriptor's digest and size, validated.
fn checked(digest: &str, size: i64) -> Result<Checked, DescriptorError> {
    let digest = Digest::parse(digest)?;
    if size < 0 {
        return Err(DescriptorError::NegativeSize(size));
    }
    Ok(Checked {
        digest,
        size: size as u64,
    })
}

impl Descriptor {
    /// The digest and size, validated.
    pub fn checked(&self) -> Result<Checked, DescriptorError> {
        checked(&self.digest, self.size)
    }

    /// Validates digest, size and media type; JSON documents (indexes, manifests, configs)
    /// must also fit `json_limit`.
    pub fn validate(&self, json_limit: u64) -> Result<Checked, DescriptorError> {
        let c = self.checked()?;
        if !media::is_well_formed(&self.media_type) {
            return Err(DescriptorError::MediaType(self.media_type.clone()));
        }
        let kind = media::classify(&self.media_type);
        if matches!(
            kind,
            media::Kind::Index | media::Kind::Manifest | media::Kind::Config
        ) && c.size > json_limit
        {
            return Err(DescriptorError::TooLarge {
                size: c.size,
                limit: json_limit,
                what: "JSON document",
            });
        }
        Ok(c)
    }

    pub fn kind(&self) -> media::Kind {
        media::classify(&self.media_type)
    }

    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(crate::refname::REF_NAME)
            .map(String::as_str)
    }

    pub fn containerd_name(&self) -> Option<&str> {
        self.annotations
            .get(crate::refname::CONTAINERD_IMAGE_NAME)
            .map(String::as_str)
    }
}

/// A JSON string, borrowed from the document's text when it has no escapes.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_string(V)
    }
}

/// The two naming annotations of a descriptor, read from its `annotations` map without
/// building the map: every value must still be a string, and a repeated key keeps its last
/// value, as in [`Descriptor::annotations`].
#[derive(Debug, Default)]
pub struct Names<'a> {
    pub ref_name: Option<Str<'a>>,
    pub containerd_name: Option<Str<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Names<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Names<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Names<'de>, M::Error> {
                let mut names = Names::default();
                while let Some(k) = m.next_key::<Str<'de>>()? {
                    let v: Str<'de> = m.next_value()?;
                    match &*k.0 {
                        crate::refname::REF_NAME => names.ref_name = Some(v),
                        crate::refname::CONTAINERD_IMAGE_NAME => names.containerd_name = Some(v),
                        _ => {}
                    }
                }
                Ok(names)
            }
        }
        d.deserialize_map(V)
    }
}

/// What names an `index.json` entry, read by borrowing from the document's text. It accepts
/// exactly the JSON [`Descriptor`] accepts (same fields, same types, same handling of `null`
/// and of repeated keys) but keeps only the digest and the two names, so that checking every
/// entry of a 10,000-entry index allocates next to nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescriptorKeys<'a> {
    #[serde(default, borrow, deserialize_with = "null_default")]
    pub media_type: Str<'a>,
    #[serde(default, borrow, deserialize_with = "null_default")]
    pub digest: Str<'a>,
    #[serde(default, deserialize_with = "null_default")]
    pub size: i64,
    #[serde(default, borrow, deserialize_with = "null_default")]
    pub urls: Vec<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "null_default")]
    pub annotations: Names<'a>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default, borrow)]
    pub artifact_type: Option<Str<'a>>,
}

impl DescriptorKeys<'_> {
    /// The digest and size, validated (as [`Descriptor::checked`]).
    pub fn checked(&self) -> Result<Checked, DescriptorError> {
        checked(&self.digest.0, self.size)
    }
}

/// An OCI image index or a Docker manifest list.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexView {
    #[serde(default)]
    pub schema_version: Option<i64>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub manifests: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest or a Docker v2s2 manifest.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestView {
    #[serde(default)]
    pub schema_version: Option<i64>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default, deserialize_with = "null_default")]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: BTreeMap<String, String>,
}

/// The parts of an image configuration ocitool shows and checks.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ConfigView {
    #[serde(default, deserialize_with = "null_default")]
    pub architecture: String,
    #[serde(default, deserialize_with = "null_default")]
    pub os: String,
    #[serde(default, rename = "os.version")]
    pub os_version: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub config: ContainerConfig,
    #[serde(default, deserialize_with = "null_default")]
    pub rootfs: RootFs,
    #[serde(default, deserialize_with = "null_default")]
    pub history: Vec<History>,
}

impl ConfigView {
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            os_version: self.os_version.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// The `config` member of an image configuration (Docker spells its keys in PascalCase).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub env: Vec<String>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub stop_signal: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RootFs {
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub empty_layer: bool,
}

/// Parses a JSON document, reporting where it failed (`manifests[3].size: ...`).
pub fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<T, SpecError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| SpecError::Json {
        what,
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    Ok(value)
}

/// A manifest or an index, told apart by media type.
#[derive(Clone, Debug)]
pub enum Document {
    Index(Box<IndexView>),
    Manifest(Box<ManifestView>),
}

impl Document {
    /// Parses `bytes` as the kind the media type names. Without a usable media type (a
    /// digest given on the command line), the document's own `mediaType` decides, then its
    /// shape (`manifests` means an index).
    pub fn parse(bytes: &[u8], media_type: Option<&str>) -> Result<Document, SpecError> {
        let kind = match media_type.map(media::classify) {
            Some(media::Kind::Index) => media::Kind::Index,
            Some(media::Kind::Manifest) => media::Kind::Manifest,
            _ => Self::sniff(bytes)?,
        };
        match kind {
            media::Kind::Index => Ok(Document::Index(Box::new(parse(bytes, "image index")?))),
            media::Kind::Manifest => Ok(Document::Manifest(Box::new(parse(
                bytes,
                "image manifest",
            )?))),
            _ => Err(SpecError::NotADocument),
        }
    }

    /// Guesses the kind of a document from its content.
    pub fn sniff(bytes: &[u8]) -> Result<media::Kind, SpecError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            #[serde(default)]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Option<Vec<serde::de::IgnoredAny>>,
            #[serde(default)]
            config: Option<serde_json::Value>,
        }
        let p: Probe = parse(bytes, "document")?;
        if let Some(k @ (media::Kind::Index | media::Kind::Manifest)) =
            p.media_type.as_deref().map(media::classify)
        {
            return Ok(k);
        }
        // An image config also has a "config" member (the container config, PascalCase keys);
        // a manifest's "config" is a descriptor with a digest.
        if p.manifests.is_some() {
            Ok(media::Kind::Index)
        } else if p
            .config
            .as_ref()
            .is_some_and(|c| c.get("digest").is_some_and(serde_json::Value::is_string))
        {
            Ok(media::Kind::Manifest)
        } else {
            Err(SpecError::NotADocument)
        }
    }

    /// The media type the document declares for itself, if any.
    pub fn media_type(&self) -> Option<&str> {
        match self {
            Document::Index(i) => i.media_type.as_deref(),
            Document::Manifest(m) => m.media_type.as_deref(),
        }
    }

    pub fn subject(&self) -> Option<&Descriptor> {
        match self {
            Document::Index(i) => i.subject.as_ref(),
            Document::Manifest(m) => m.subject.as_ref(),
        }
    }

    pub fn artifact_type(&self) -> Option<&str> {
        match self {
            Document::Index(i) => i.artifact_type.as_deref(),
            Document::Manifest(m) => m.artifact_type.as_deref(),
        }
    }
}
