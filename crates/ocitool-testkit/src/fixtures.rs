//! The small layouts committed under `testdata/layouts/`, generated here and checked by
//! `cargo xtask fixtures --check` (also run as a test).

use ocitool_compress::Compression;
use ocitool_spec::media;
use serde_json::{Value, json};

use crate::image::{self, Blob, Image};
use crate::layout::LayoutWriter;
use crate::tarball;

/// One fixture: a directory of files.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// Path under `testdata/`, e.g. `layouts/minimal`.
    pub name: String,
    pub description: String,
    pub files: Vec<(String, Vec<u8>)>,
}

const AMD64: image::Plat<'static> = ("linux", "amd64", None);
const ARM64: image::Plat<'static> = ("linux", "arm64", Some("v8"));

fn fixture(name: &str, description: &str, w: &LayoutWriter) -> Fixture {
    Fixture {
        name: format!("layouts/{name}"),
        description: description.to_string(),
        files: w.files(),
    }
}

/// The base image most fixtures use: two gzip layers, linux/amd64.
pub fn minimal_image() -> Image {
    Image::small(1, 2, AMD64, Compression::Gzip, false)
}

pub fn minimal() -> LayoutWriter {
    let img = minimal_image();
    let mut w = LayoutWriter::new();
    w.add_image(&img).list(&img.manifest, Some("app:1.0"));
    w
}

pub fn multi_arch() -> (LayoutWriter, Image, Image, Blob) {
    let a = Image::small(2, 2, AMD64, Compression::Gzip, false);
    let b = Image::small(3, 2, ARM64, Compression::Gzip, false);
    let idx = image::index(
        &[(&a.manifest, Some(AMD64)), (&b.manifest, Some(ARM64))],
        false,
        Value::Null,
    );
    let mut w = LayoutWriter::new();
    w.add_image(&a)
        .add_image(&b)
        .add_blob(&idx)
        .list(&idx, Some("multi:1.0"));
    (w, a, b, idx)
}

pub fn nested_index() -> LayoutWriter {
    let a = Image::small(4, 1, AMD64, Compression::Gzip, false);
    let b = Image::small(5, 1, ARM64, Compression::Gzip, false);
    let inner = image::index(
        &[(&a.manifest, Some(AMD64)), (&b.manifest, Some(ARM64))],
        false,
        Value::Null,
    );
    let outer = image::index(
        &[(&inner, None)],
        false,
        json!({"annotations": {"org.opencontainers.image.title": "nested"}}),
    );
    let mut w = LayoutWriter::new();
    w.add_image(&a)
        .add_image(&b)
        .add_blob(&inner)
        .add_blob(&outer)
        .list(&outer, Some("nested:1"));
    w
}

pub fn docker_v2s2() -> LayoutWriter {
    let a = Image::small(6, 2, AMD64, Compression::Gzip, true);
    let b = Image::small(7, 1, ARM64, Compression::Gzip, true);
    let list = image::index(
        &[(&a.manifest, Some(AMD64)), (&b.manifest, Some(ARM64))],
        true,
        Value::Null,
    );
    let mut w = LayoutWriter::new();
    w.add_image(&a).add_image(&b).add_blob(&list);
    // Docker 25+ `docker save` naming: tag-only ref.name plus the full containerd name.
    let mut d = list.descriptor();
    d["annotations"] = json!({
        "org.opencontainers.image.ref.name": "latest",
        "io.containerd.image.name": "docker.io/library/dockerish:latest",
    });
    w.list_raw(d);
    let mut d = a.manifest.descriptor();
    d["annotations"] =
        json!({"io.containerd.image.name": "docker.io/library/dockerish:amd64-only"});
    w.list_raw(d);
    w
}

/// An image with two referrers: an SBOM listed untagged in `index.json` (oras style) and a
/// signature listed nowhere (reachable only through its `subject`).
pub fn artifact() -> (LayoutWriter, Image, Blob, Blob) {
    let img = Image::small(8, 1, AMD64, Compression::Gzip, false);
    let empty = Blob::new(media::OCI_EMPTY, media::EMPTY_JSON.to_vec());
    let sbom_data = Blob::new(
        "application/spdx+json",
        br#"{"spdxVersion":"SPDX-2.3","name":"app"}"#.to_vec(),
    );
    let sig_data = Blob::new(
        "application/vnd.example.signature",
        b"not-really-a-signature".to_vec(),
    );
    let subject = img.manifest.descriptor();
    let sbom = image::manifest(
        &empty,
        std::slice::from_ref(&sbom_data),
        false,
        json!({"artifactType": "application/spdx+json", "subject": subject}),
    );
    let sig = image::manifest(
        &empty,
        std::slice::from_ref(&sig_data),
        false,
        json!({"artifactType": "application/vnd.example.signature", "subject": subject}),
    );
    let mut w = LayoutWriter::new();
    w.add_image(&img)
        .add_blob(&empty)
        .add_blob(&sbom_data)
        .add_blob(&sig_data)
        .add_blob(&sbom)
        .add_blob(&sig)
        .list(&img.manifest, Some("app:signed"));
    let mut d = sbom.descriptor();
    d["artifactType"] = Value::from("application/spdx+json");
    w.list_raw(d);
    (w, img, sbom, sig)
}

/// Vendor fields and annotations everywhere: the byte-preservation canary.
pub fn unknown_fields() -> LayoutWriter {
    let tars = vec![tarball::small_layer(9, 2)];
    let img = Image::from_tars(
        &tars,
        AMD64,
        Compression::Gzip,
        false,
        json!({"com.example.vendor": {"keep": true}, "config": {"Labels": {"org.example.team": "core"}, "Entrypoint": ["/app"], "Cmd": null}}),
        json!({
            "com.example.vendor": [1, 2, 3],
            "annotations": {
                "org.opencontainers.image.created": "2024-01-01T00:00:00Z",
                "org.opencontainers.image.source": "https://example.com/app",
                "org.opencontainers.image.revision": "0123456789abcdef",
                "com.example.z": "last",
                "com.example.a": "first",
            }
        }),
    );
    let mut w = LayoutWriter::new();
    w.add_image(&img);
    let mut d = img.manifest.descriptor();
    d["annotations"] = json!({
        "org.opencontainers.image.ref.name": "canary:1",
        "org.opencontainers.image.created": "2024-01-01T00:00:00Z",
        "com.example.descriptor-note": "kept",
    });
    d["com.example.unknown-descriptor-field"] = json!({"nested": [true, null]});
    w.list_raw(d);
    w.index_extra
        .insert("annotations".into(), json!({"com.example.index": "kept"}));
    w.index_extra
        .insert("com.example.top-level".into(), json!("kept too"));
    w
}

pub fn zstd() -> LayoutWriter {
    let img = Image::small(10, 2, AMD64, Compression::Zstd, false);
    let mut w = LayoutWriter::new();
    w.add_image(&img).list(&img.manifest, Some("zstd:1"));
    w
}

pub fn uncompressed() -> LayoutWriter {
    let img = Image::small(11, 2, AMD64, Compression::None, false);
    let mut w = LayoutWriter::new();
    w.add_image(&img).list(&img.manifest, Some("plain:1"));
    w
}

/// A layer made of two gzip members (as pigz or eStargz write): its diff_id covers both.
pub fn multi_member_gzip() -> LayoutWriter {
    let tar = tarball::small_layer(12, 4);
    let half = tar.len() / 2;
    let mut bytes = image::compress(&tar[..half], Compression::Gzip);
    bytes.extend(image::compress(&tar[half..], Compression::Gzip));
    let layer = Blob::new(media::OCI_LAYER_GZIP, bytes);
    let diff_id = ocitool_digest::Digest::sha256(&tar);
    let config = image::config(AMD64, std::slice::from_ref(&diff_id), false, Value::Null);
    let manifest = image::manifest(&config, std::slice::from_ref(&layer), false, Value::Null);
    let img = Image {
        manifest,
        config,
        layers: vec![layer],
        diff_ids: vec![diff_id],
    };
    let mut w = LayoutWriter::new();
    w.add_image(&img).list(&img.manifest, Some("members:1"));
    w
}

/// A multi-platform index of which only linux/amd64 is present (Docker's containerd store).
pub fn sparse_index() -> LayoutWriter {
    let (_, a, b, idx) = multi_arch();
    let _ = b;
    let mut w = LayoutWriter::new();
    w.add_image(&a).add_blob(&idx).list(&idx, Some("sparse:1"));
    w
}

/// Flips one byte in the middle of the largest blob of a layout.
fn flip_largest(files: &mut [(String, Vec<u8>)]) -> String {
    let (name, bytes) = files
        .iter_mut()
        .filter(|(n, _)| n.starts_with("blobs/"))
        .max_by_key(|(n, b)| (b.len(), n.clone()))
        .expect("has blobs");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    name.clone()
}

/// Every committed fixture.
pub fn all() -> Vec<Fixture> {
    let mut out = vec![
        fixture(
            "minimal",
            "one image (two gzip layers, linux/amd64) tagged app:1.0",
            &minimal(),
        ),
        fixture(
            "multi-arch",
            "an OCI index over linux/amd64 and linux/arm64/v8, tagged multi:1.0",
            &multi_arch().0,
        ),
        fixture(
            "nested-index",
            "an index whose only child is another index over two platforms, tagged nested:1",
            &nested_index(),
        ),
        fixture(
            "docker-v2s2",
            "Docker media types (manifest list, v2s2 manifests, gzip layers), named as Docker 25+ saves: ref.name `latest` plus io.containerd.image.name, and an entry with only a containerd name",
            &docker_v2s2(),
        ),
        fixture(
            "artifact",
            "an image with two OCI 1.1 referrers: an SBOM listed untagged in index.json and a signature listed nowhere (found through its subject)",
            &artifact().0,
        ),
        fixture(
            "unknown-fields",
            "vendor keys and annotations in the manifest, config, index.json and its descriptors (byte-preservation canary), tagged canary:1",
            &unknown_fields(),
        ),
        fixture("zstd", "one image with zstd layers, tagged zstd:1", &zstd()),
        fixture(
            "uncompressed",
            "one image with uncompressed tar layers, tagged plain:1",
            &uncompressed(),
        ),
        fixture(
            "multi-member-gzip",
            "a layer of two concatenated gzip members, tagged members:1",
            &multi_member_gzip(),
        ),
        fixture(
            "sparse-index",
            "a two-platform index of which only linux/amd64 is present, tagged sparse:1",
            &sparse_index(),
        ),
    ];
    // A corrupt variant of each: one byte flipped in its largest blob.
    let bases: Vec<Fixture> = out.clone();
    for b in bases {
        let mut files = b.files.clone();
        let which = flip_largest(&mut files);
        out.push(Fixture {
            name: format!("layouts/corrupt/{}", b.name.trim_start_matches("layouts/")),
            description: format!(
                "{} with one byte flipped in {which}",
                b.name.trim_start_matches("layouts/")
            ),
            files,
        });
    }
    out.extend(targeted_corruptions());
    out.extend(archives());
    out
}

/// One archive fixture.
fn archive(name: &str, description: &str, bytes: Vec<u8>) -> Fixture {
    let (dir, file) = name.rsplit_once('/').expect("dir/file");
    Fixture {
        name: dir.to_string(),
        description: format!("`{file}`: {description}"),
        files: vec![(file.to_string(), bytes)],
    }
}

/// The sample docker-save archives (one per dialect) and the hostile ones.
fn archives() -> Vec<Fixture> {
    use crate::archives as a;
    let app = Image::small(21, 2, AMD64, Compression::None, true);
    let tool = Image::small(22, 1, AMD64, Compression::None, true);
    let d25 = a::docker25_classic(
        &[
            (&app, &["app:1.0", "app:latest"]),
            (&tool, &["tools/lint:3"]),
        ],
        &a::Docker25Options::default(),
    );
    let gz = Image::small(23, 2, AMD64, Compression::Gzip, false);
    let arm = Image::small(24, 1, ARM64, Compression::Gzip, false);
    let idx = image::index(
        &[(&gz.manifest, Some(AMD64)), (&arm.manifest, Some(ARM64))],
        false,
        Value::Null,
    );
    let mut out = vec![
        archive(
            "archives/docker-save.tar",
            "what Docker 25+ `docker save app:1.0 app:latest tools/lint:3` writes (OCI layout plus manifest.json): the README's sample",
            d25.clone(),
        ),
        archive(
            "archives/docker-save.tar.gz",
            "the same, gzip-compressed",
            a::compress(&d25, Compression::Gzip),
        ),
        archive(
            "archives/docker-save.tar.xz",
            "the same, xz-compressed (`docker save | xz`, which docker load and podman load read)",
            a::compress(&d25, Compression::Xz),
        ),
        archive(
            "archives/docker-save.tar.bz2",
            "the same, bzip2-compressed",
            a::compress(&d25, Compression::Bzip2),
        ),
        archive(
            "archives/jib.tar",
            "a Jib (before mid-2020) tarball: gzip layers `<hex>.tar.gz`, `config.json`, manifest.json keys `config`, `repoTags`, `layers`",
            a::jib_tarball(&gz, "jib/app:1"),
        ),
        archive(
            "archives/docker-legacy.tar",
            "Docker 24 and earlier: `<v1id>/layer.tar`, config `<hex>.json`, repositories",
            a::docker_legacy(&[(&app, &["app:1.0"]), (&tool, &[])]),
        ),
        archive(
            "archives/skopeo.tar",
            "skopeo/podman docker-archive: `<diffid>.tar` at the root, symlinked legacy dirs, fully qualified RepoTags",
            a::skopeo_docker_archive(&[(&app, &["docker.io/library/app:1.0"])]),
        ),
        archive(
            "archives/crane.tar",
            "a crane tarball: config named `sha256:<hex>`, gzip layers",
            a::crane_tarball(&[(&gz, &["app:gz"])]),
        ),
        archive(
            "archives/containerd-sparse.tar",
            "Docker's containerd store: a two-platform index of which only linux/amd64 is present",
            a::containerd_store(&[a::ContainerdSave {
                target: &idx,
                present: &[&gz],
                tags: &["app:multi"],
            }]),
        ),
    ];
    // The gzip bomb (1 MiB) is made at test time rather than committed.
    for (name, bytes, what) in a::malicious()
        .into_iter()
        .filter(|(n, _, _)| *n != "gzip-bomb")
    {
        out.push(archive(&format!("malicious/{name}.tar"), what, bytes));
    }
    out
}

fn targeted_corruptions() -> Vec<Fixture> {
    let img = minimal_image();
    let mut out = Vec::new();
    let named = |name: &str, description: &str, w: &LayoutWriter| Fixture {
        name: format!("layouts/corrupt/{name}"),
        description: description.to_string(),
        files: w.files(),
    };

    let mut w = minimal();
    w.blobs.remove(&img.layers[1].digest.to_string());
    out.push(named(
        "missing-blob",
        "minimal without its second layer blob",
        &w,
    ));

    // The manifest declares layer 0 one byte longer than it is.
    let mut layers = img.layers.clone();
    let mut d0 = layers[0].descriptor();
    d0["size"] = Value::from(layers[0].size() + 1);
    let manifest = Blob::json(
        media::OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": img.config.descriptor(), "layers": [d0, layers[1].descriptor()]}),
    );
    let mut w = LayoutWriter::new();
    w.add_blob(&manifest).add_blob(&img.config);
    for l in layers.drain(..) {
        w.add_blob(&l);
    }
    w.list(&manifest, Some("app:1.0"));
    out.push(named(
        "wrong-size",
        "a manifest that declares its first layer one byte longer than it is",
        &w,
    ));

    // The config lists a wrong diff_id for layer 1.
    let mut diff_ids = img.diff_ids.clone();
    diff_ids[1] = ocitool_digest::Digest::sha256(b"not the layer");
    let config = image::config(AMD64, &diff_ids, false, Value::Null);
    let manifest = image::manifest(&config, &img.layers, false, Value::Null);
    let mut w = LayoutWriter::new();
    w.add_blob(&manifest).add_blob(&config);
    for l in &img.layers {
        w.add_blob(l);
    }
    w.list(&manifest, Some("app:1.0"));
    out.push(named(
        "wrong-diff-id",
        "a config whose second diff_id does not match its layer",
        &w,
    ));

    let mut w = minimal();
    let mut d = img.manifest.descriptor();
    d["digest"] = Value::from("sha256:../../../../etc/passwd");
    d["annotations"] = json!({"org.opencontainers.image.ref.name": "evil"});
    w.list_raw(d);
    let mut d = img.manifest.descriptor();
    d["digest"] =
        Value::from("blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    d["annotations"] = json!({"org.opencontainers.image.ref.name": "future"});
    w.list_raw(d);
    let mut d = img.manifest.descriptor();
    d["size"] = Value::from(-5);
    d["annotations"] = json!({"org.opencontainers.image.ref.name": "negative"});
    w.list_raw(d);
    out.push(named(
        "bad-descriptors",
        "minimal plus index.json entries with a path-traversal digest, an unsupported algorithm (blake3) and a negative size",
        &w,
    ));

    let mut f = named(
        "bad-index-json",
        "minimal with index.json cut off mid-document",
        &minimal(),
    );
    for (n, b) in f.files.iter_mut() {
        if n == "index.json" {
            b.truncate(b.len() / 2);
        }
    }
    out.push(f);

    let mut f = named(
        "bad-oci-layout",
        "minimal with an oci-layout file of version 2.0.0",
        &minimal(),
    );
    for (n, b) in f.files.iter_mut() {
        if n == "oci-layout" {
            *b = b"{\"imageLayoutVersion\":\"2.0.0\"}\n".to_vec();
        }
    }
    out.push(f);

    let mut w = minimal();
    w.blobs.insert(
        "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
        b"unreferenced and corrupt".to_vec(),
    );
    out.push(named(
        "unreferenced-corrupt",
        "minimal plus an unreferenced blob whose content does not match its name",
        &w,
    ));
    out
}
