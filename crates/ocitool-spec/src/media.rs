//! Media types of OCI and Docker documents and layers, and what each one means to ocitool.

use ocitool_compress::Compression;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_ND_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_ND_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_ND_ZSTD: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_LAYOUT_HEADER: &str = "application/vnd.oci.layout.header.v1+json";

pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The empty JSON object `{}` used as the config of artifacts (image-spec `manifest.md`).
pub const EMPTY_JSON: &[u8] = b"{}";

/// What a descriptor's media type tells ocitool to do with the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An OCI image index or a Docker manifest list: has `manifests`.
    Index,
    /// An OCI image manifest or a Docker v2s2 manifest: has `config` and `layers`.
    Manifest,
    /// An image configuration (OCI or Docker).
    Config,
    /// A layer whose bytes decompress (per the compression) to a tar with a diff_id.
    Layer {
        compression: Compression,
        distributable: bool,
    },
    /// Anything else: artifact blobs, the empty descriptor, unknown types. Not traversed.
    Other,
}

/// Classifies a media type. Unknown types are [`Kind::Other`], never an error
/// (image-spec: "An encountered mediaType that is unknown MUST NOT generate an error").
pub fn classify(media_type: &str) -> Kind {
    use Compression::*;
    let layer = |compression, distributable| Kind::Layer {
        compression,
        distributable,
    };
    match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Kind::Index,
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        OCI_CONFIG | DOCKER_CONFIG => Kind::Config,
        OCI_LAYER_TAR | DOCKER_LAYER_TAR => layer(None, true),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => layer(Gzip, true),
        OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD => layer(Zstd, true),
        OCI_LAYER_ND_TAR => layer(None, false),
        OCI_LAYER_ND_GZIP | DOCKER_FOREIGN_LAYER => layer(Gzip, false),
        OCI_LAYER_ND_ZSTD => layer(Zstd, false),
        _ => Kind::Other,
    }
}

pub fn is_index(media_type: &str) -> bool {
    classify(media_type) == Kind::Index
}

pub fn is_manifest(media_type: &str) -> bool {
    classify(media_type) == Kind::Manifest
}

/// True for Docker (v2s2) media types.
pub fn is_docker(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
}

/// The layer media type for a compression, in the OCI or the Docker family; `None` for xz and
/// bzip2, which no layer media type names.
pub fn layer_media_type(compression: Compression, docker: bool) -> Option<&'static str> {
    Some(match (compression, docker) {
        (Compression::None, false) => OCI_LAYER_TAR,
        (Compression::Gzip, false) => OCI_LAYER_GZIP,
        (Compression::Zstd, false) => OCI_LAYER_ZSTD,
        (Compression::None, true) => DOCKER_LAYER_TAR,
        (Compression::Gzip, true) => DOCKER_LAYER_GZIP,
        (Compression::Zstd, true) => DOCKER_LAYER_ZSTD,
        (Compression::Xz | Compression::Bzip2, _) => return None,
    })
}

/// Checks the RFC 6838 shape `type "/" subtype` (restricted-name characters, as the OCI
/// descriptor schema asks), with optional `;param=value` parameters.
pub fn is_well_formed(media_type: &str) -> bool {
    fn restricted_name(s: &str) -> bool {
        // restricted-name = restricted-name-first *126restricted-name-chars
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 127
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(c))
    }
    let mut parts = media_type.split(';');
    let essence = parts.next().unwrap_or("");
    let Some((ty, sub)) = essence.split_once('/') else {
        return false;
    };
    if !restricted_name(ty) || !restricted_name(sub) {
        return false;
    }
    parts.all(|p| {
        let p = p.trim_start();
        matches!(p.split_once('='), Some((k, v)) if restricted_name(k) && !v.is_empty())
    })
}
