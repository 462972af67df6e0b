//! Images built from parts: layers, configs, manifests and indexes, as exact bytes.

use std::io::Write;

use ocitool_compress::{Compression, EncodeOptions, Encoder};
use ocitool_digest::Digest;
use ocitool_spec::media;
use serde_json::{Value, json};

/// A blob with its media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: Digest::sha256(&bytes),
            bytes,
        }
    }

    /// A JSON document serialized with sorted keys (deterministic).
    pub fn json(media_type: &str, v: &Value) -> Blob {
        Blob::new(media_type, serde_json::to_vec(v).expect("serializable"))
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// `{"mediaType", "digest", "size"}`.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest.to_string(), "size": self.size()})
    }
}

/// Compresses `data` deterministically (gzip level 6, zstd level 3, one thread).
pub fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    // ocitool reads xz and bzip2 (whole archives) but never writes them; tests do.
    match c {
        Compression::Xz => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(data).expect("memory");
            return e.finish().expect("memory");
        }
        Compression::Bzip2 => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            e.write_all(data).expect("memory");
            return e.finish().expect("memory");
        }
        _ => {}
    }
    let mut e = Encoder::new(c, Vec::new(), EncodeOptions::default()).expect("default options");
    e.write_all(data).expect("memory");
    e.finish().expect("memory")
}

/// A layer blob from an uncompressed tar: `(blob, diff_id)`.
pub fn layer(tar: &[u8], c: Compression, docker: bool) -> (Blob, Digest) {
    let diff_id = Digest::sha256(tar);
    let bytes = compress(tar, c);
    (
        Blob::new(
            media::layer_media_type(c, docker).expect("test layers are gzip, zstd or none"),
            bytes,
        ),
        diff_id,
    )
}

/// Platform as `(os, arch, variant)`.
pub type Plat<'a> = (&'a str, &'a str, Option<&'a str>);

/// An image config listing these diff_ids; `extra` is merged at the top level (use it to add
/// `config`, `history`, vendor keys).
pub fn config(platform: Plat<'_>, diff_ids: &[Digest], docker: bool, extra: Value) -> Blob {
    let mut v = json!({
        "architecture": platform.1,
        "os": platform.0,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>()},
        "history": diff_ids.iter().enumerate().map(|(i, _)| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("/bin/sh -c #(nop) ADD layer {i}")})).collect::<Vec<_>>(),
    });
    if let Some(var) = platform.2 {
        v["variant"] = Value::from(var);
    }
    merge(&mut v, extra);
    Blob::json(
        if docker {
            media::DOCKER_CONFIG
        } else {
            media::OCI_CONFIG
        },
        &v,
    )
}

/// A manifest over a config and layers; `extra` is merged at the top level.
pub fn manifest(config: &Blob, layers: &[Blob], docker: bool, extra: Value) -> Blob {
    let mt = if docker {
        media::DOCKER_MANIFEST
    } else {
        media::OCI_MANIFEST
    };
    let mut v = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    merge(&mut v, extra);
    Blob::json(mt, &v)
}

/// An index over manifests with their platforms; `extra` is merged at the top level.
pub fn index(manifests: &[(&Blob, Option<Plat<'_>>)], docker: bool, extra: Value) -> Blob {
    let mt = if docker {
        media::DOCKER_MANIFEST_LIST
    } else {
        media::OCI_INDEX
    };
    let mut v = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "manifests": manifests.iter().map(|(m, p)| {
            let mut d = m.descriptor();
            if let Some(p) = p {
                d["platform"] = json!({"os": p.0, "architecture": p.1});
                if let Some(var) = p.2 { d["platform"]["variant"] = Value::from(var); }
            }
            d
        }).collect::<Vec<_>>(),
    });
    merge(&mut v, extra);
    Blob::json(mt, &v)
}

/// Merges the members of `extra` (an object) into `v`.
pub fn merge(v: &mut Value, extra: Value) {
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        for (k, x) in e {
            o.insert(k, x);
        }
    }
}

/// A single-platform image.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub diff_ids: Vec<Digest>,
}

impl Image {
    /// An image of `n` small layers derived from `seed`.
    pub fn small(seed: u64, n: usize, platform: Plat<'_>, c: Compression, docker: bool) -> Image {
        let tars: Vec<Vec<u8>> = (0..n)
            .map(|i| crate::tarball::small_layer(seed * 100 + i as u64, 3))
            .collect();
        Image::from_tars(&tars, platform, c, docker, Value::Null, Value::Null)
    }

    pub fn from_tars(
        tars: &[Vec<u8>],
        platform: Plat<'_>,
        c: Compression,
        docker: bool,
        config_extra: Value,
        manifest_extra: Value,
    ) -> Image {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for t in tars {
            let (b, d) = layer(t, c, docker);
            layers.push(b);
            diff_ids.push(d);
        }
        let config = config(platform, &diff_ids, docker, config_extra);
        let manifest = manifest(&config, &layers, docker, manifest_extra);
        Image {
            manifest,
            config,
            layers,
            diff_ids,
        }
    }

    /// Every blob of the image.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut v = vec![&self.manifest, &self.config];
        v.extend(self.layers.iter());
        v
    }
}
