//! Archives someone else crafted, and what ocitool writes it must read back (issue #14's
//! archive items): sparse members, long names and pax records, xz and bzip2 archives, old Jib
//! keys, RepoTags without a tag, generated manifests over the JSON limit, configs without
//! rootfs, sha512 layouts in archives, and one ref-name grammar at every edge.

use std::path::{Path, PathBuf};
use std::process::Command;

use ocitool_compress::Compression;
use ocitool_digest::{Algorithm, Digest};
use ocitool_testkit::archives;
use ocitool_testkit::{Image, image};
use serde_json::{Value, json};

use crate::util::*;

const AMD64: image::Plat<'static> = ("linux", "amd64", None);

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn hostile_headers_are_named() {
    let d = empty_dir();
    let l = d.path().join("l");
    for (name, needles) in [
        (
            "gnu-sparse",
            &["layer.tar", "GNU sparse", "107374182400 bytes expanded"][..],
        ),
        (
            "long-name",
            &["aaaaaaaa", "GNU long name of 1073741824 bytes", "65536"][..],
        ),
        (
            "pax-header",
            &["PaxHeaders.0/layer.tar", "pax extended header", "65536"][..],
        ),
    ] {
        let f = testdata(&format!("malicious/{name}.tar"));
        fails(
            3,
            needles,
            ["import".as_ref(), f.as_os_str(), l.as_os_str()],
        );
        assert!(!l.exists(), "{name}");
    }
}

#[test]
fn xz_and_bzip2_archives_import_like_the_plain_one() {
    let d = empty_dir();
    let plain = d.path().join("plain");
    ok([
        "import".as_ref(),
        testdata("archives/docker-save.tar").as_os_str(),
        plain.as_os_str(),
    ]);
    for (ext, word) in [("xz", "xz"), ("bz2", "bzip2")] {
        let l = d.path().join(ext);
        let f = testdata(&format!("archives/docker-save.tar.{ext}"));
        let o = run(["import".as_ref(), f.as_os_str(), l.as_os_str()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains(word), "{}", stderr(&o));
        assert_eq!(refs(&l), refs(&plain));
        verify_clean(&l);
    }
}

#[test]
fn an_xz_layer_in_a_legacy_archive_is_named() {
    // docker load reads an xz-compressed layer.tar; no layer media type could describe it.
    let img = Image::small(610, 1, AMD64, Compression::None, true);
    let tar = archives::docker_legacy(&[(&img, &["xzl:1"])]);
    // Re-tar with the layer xz-compressed (the config's diff_id still matches its content).
    let mut out = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(&tar[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let mut h = e.header().clone();
        if e.path().unwrap().ends_with("layer.tar") {
            data = archives::compress(&data, Compression::Xz);
            h.set_size(data.len() as u64);
            h.set_cksum();
        }
        out.append(&h, &data[..]).unwrap();
    }
    let d = empty_dir();
    let f = write(d.path(), "xzl.tar", &out.into_inner().unwrap());
    let l = d.path().join("l");
    fails(
        3,
        &[
            "layer.tar",
            "xz-compressed",
            "no OCI or Docker layer media type",
        ],
        ["import".as_ref(), f.as_os_str(), l.as_os_str()],
    );
}

/// A one-image archive with this `manifest.json`, its config and layer at the paths it names.
fn legacy_with_manifest(img: &Image, manifest: &str) -> Vec<u8> {
    let layers: Vec<&[u8]> = img.layers.iter().map(|l| &l.bytes[..]).collect();
    legacy_archive(&img.config.bytes, &layers, manifest)
}

/// `config.json`, `layer<i>.tar` and `manifest.json`.
fn legacy_archive(config: &[u8], layers: &[&[u8]], manifest: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add("config.json", config);
    for (i, l) in layers.iter().enumerate() {
        add(&format!("layer{i}.tar"), l);
    }
    add("manifest.json", manifest.as_bytes());
    b.into_inner().unwrap()
}

#[test]
fn old_jib_lower_case_keys_import() {
    let d = empty_dir();
    let l = d.path().join("l");
    ok([
        "import".as_ref(),
        testdata("archives/jib.tar").as_os_str(),
        l.as_os_str(),
    ]);
    assert!(refs(&l).contains_key("jib/app:1"), "{:?}", refs(&l));
    verify_clean(&l);

    // Any ASCII case, as Go matches; a key given twice in two cases is refused, not guessed.
    let img = Image::small(611, 1, AMD64, Compression::Gzip, false);
    let f = write(
        d.path(),
        "mixed.tar",
        &legacy_with_manifest(
            &img,
            r#"[{"CONFIG":"config.json","repotags":["mixed:1"],"lAyErS":["layer0.tar"],"Extra":1}]"#,
        ),
    );
    let m = d.path().join("m");
    ok(["import".as_ref(), f.as_os_str(), m.as_os_str()]);
    assert!(refs(&m).contains_key("mixed:1"));
    let f = write(
        d.path(),
        "twice.tar",
        &legacy_with_manifest(
            &img,
            r#"[{"Config":"config.json","config":"other.json","Layers":["layer0.tar"]}]"#,
        ),
    );
    fails(
        3,
        &["manifest.json", "Config is given twice"],
        [
            "import".as_ref(),
            f.as_os_str(),
            d.path().join("t").as_os_str(),
        ],
    );
}

#[test]
fn a_repo_tag_without_a_tag_imports_as_latest_with_a_note() {
    let img = Image::small(612, 1, AMD64, Compression::Gzip, false);
    let d = empty_dir();
    let f = write(
        d.path(),
        "ggcr.tar",
        &legacy_with_manifest(
            &img,
            r#"[{"Config":"config.json","RepoTags":["test_image_2","ok:2"],"Layers":["layer0.tar"]}]"#,
        ),
    );
    let l = d.path().join("l");
    let o = run(["import".as_ref(), f.as_os_str(), l.as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "\"test_image_2\" in manifest.json has no tag; imported as \"test_image_2:latest\""
        ),
        "{}",
        stderr(&o)
    );
    let r = refs(&l);
    assert!(
        r.contains_key("test_image_2:latest") && r.contains_key("ok:2"),
        "{r:?}"
    );
    let j = json([
        "--json".as_ref(),
        "import".as_ref(),
        f.as_os_str(),
        d.path().join("j").as_os_str(),
    ]);
    assert_eq!(j["notes"].as_array().map(Vec::len), Some(1), "{j}");
    // A name that is invalid even with :latest still fails the archive.
    let f = write(
        d.path(),
        "bad.tar",
        &legacy_with_manifest(
            &img,
            r#"[{"Config":"config.json","RepoTags":["Bad_Name"],"Layers":["layer0.tar"]}]"#,
        ),
    );
    fails(
        3,
        &["Bad_Name"],
        [
            "import".as_ref(),
            f.as_os_str(),
            d.path().join("b").as_os_str(),
        ],
    );
}

#[test]
fn import_refuses_a_generated_manifest_over_the_json_limit() {
    // 20 layers: manifest.json and the config fit under the limit, the manifest ocitool would
    // generate (OCI descriptors, ~150 bytes a layer) does not; `verify` with the same limit
    // would refuse it.
    let tars: Vec<Vec<u8>> = (0..20)
        .map(|i| ocitool_testkit::tarball::small_layer(620 + i, 1))
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {
            "type": "layers",
            "diff_ids": tars.iter().map(|t| Digest::sha256(t).to_string()).collect::<Vec<_>>(),
        },
    }))
    .unwrap();
    let names: Vec<String> = (0..20).map(|i| format!("\"layer{i}.tar\"")).collect();
    let manifest = format!(
        r#"[{{"Config":"config.json","RepoTags":["many:1"],"Layers":[{}]}}]"#,
        names.join(",")
    );
    let d = empty_dir();
    let layers: Vec<&[u8]> = tars.iter().map(|t| &t[..]).collect();
    let f = write(
        d.path(),
        "many.tar",
        &legacy_archive(&config, &layers, &manifest),
    );
    let l = d.path().join("l");
    let limit = config.len().max(manifest.len()) + 64;
    assert!(limit < 20 * 150, "{limit}");
    let limit = limit.to_string();
    fails(
        3,
        &["many:1", "manifest ocitool would write", "--max-json-size"],
        [
            "--max-json-size".as_ref(),
            limit.as_str().as_ref(),
            "import".as_ref(),
            f.as_os_str(),
            l.as_os_str(),
        ],
    );
    assert!(!l.exists());
    // Under the default limit it imports, and verifies.
    ok(["import".as_ref(), f.as_os_str(), l.as_os_str()]);
    verify_clean(&l);
}

/// A layout with one image whose config declares the image-config media type but has no
/// rootfs (as some registries' test images do), with `layers` layers.
fn rootless_layout(dir: &Path, layers: usize) -> PathBuf {
    let l = dir.join(format!("rootless-{layers}"));
    let mut w = ocitool_testkit::LayoutWriter::new();
    let config = ocitool_testkit::Blob::new(
        ocitool_spec::media::OCI_CONFIG,
        br#"{"architecture":"amd64","os":"linux"}"#.to_vec(),
    );
    let layer_blobs: Vec<ocitool_testkit::Blob> = (0..layers)
        .map(|i| {
            ocitool_testkit::Blob::new(
                ocitool_spec::media::OCI_LAYER_TAR,
                ocitool_testkit::tarball::small_layer(630 + i as u64, 1),
            )
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": ocitool_spec::media::OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": layer_blobs.iter().map(|b| b.descriptor()).collect::<Vec<_>>(),
    });
    let manifest = ocitool_testkit::Blob::new(
        ocitool_spec::media::OCI_MANIFEST,
        serde_json::to_vec(&manifest).unwrap(),
    );
    w.add_blob(&config).add_blob(&manifest);
    for b in &layer_blobs {
        w.add_blob(b);
    }
    w.list(&manifest, Some("rootless:1"));
    w.write(&l).unwrap();
    l
}

#[test]
fn export_refuses_a_config_without_rootfs_naming_the_ref() {
    let d = empty_dir();
    for layers in [0, 1] {
        let l = rootless_layout(d.path(), layers);
        let out = d.path().join(format!("out-{layers}.tar"));
        fails(
            3,
            &["rootless:1", "has no rootfs", "--format oci"],
            [
                "export".as_ref(),
                l.as_os_str(),
                "rootless:1".as_ref(),
                "-o".as_ref(),
                out.as_os_str(),
            ],
        );
        assert!(!out.exists());
        // The oci format keeps it as it is, and so do pack and unpack (as copy does);
        // `verify` reports it.
        ok([
            "export".as_ref(),
            l.as_os_str(),
            "rootless:1".as_ref(),
            "--format".as_ref(),
            "oci".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let p = d.path().join(format!("pack-{layers}.tar"));
        ok(["pack".as_ref(), l.as_os_str(), "-o".as_ref(), p.as_os_str()]);
        let u = d.path().join(format!("unpacked-{layers}"));
        ok(["unpack".as_ref(), p.as_os_str(), u.as_os_str()]);
        assert_eq!(refs(&u), refs(&l));
    }
}

/// A layout whose every blob is addressed by sha512 (`blobs/sha512/<128 hex>`): one image,
/// one uncompressed layer, tagged `s512:1`.
fn sha512_layout(dir: &Path) -> PathBuf {
    let l = dir.join("sha512");
    let blobs = l.join("blobs/sha512");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8], mt: &str| -> Value {
        let d = Digest::of(Algorithm::Sha512, bytes);
        std::fs::write(blobs.join(d.encoded()), bytes).unwrap();
        json!({"mediaType": mt, "digest": d.to_string(), "size": bytes.len()})
    };
    let tar = ocitool_testkit::tarball::small_layer(640, 3);
    let layer = put(&tar, ocitool_spec::media::OCI_LAYER_TAR);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256(&tar).to_string()]},
    }))
    .unwrap();
    let config = put(&config, ocitool_spec::media::OCI_CONFIG);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": ocitool_spec::media::OCI_MANIFEST,
        "config": config,
        "layers": [layer],
    }))
    .unwrap();
    let mut m = put(&manifest, ocitool_spec::media::OCI_MANIFEST);
    m["annotations"] = json!({ocitool_spec::refname::REF_NAME: "s512:1"});
    std::fs::write(
        l.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [m]})).unwrap(),
    )
    .unwrap();
    std::fs::write(l.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    l
}

#[test]
fn sha512_layouts_pack_export_and_read_back() {
    let d = empty_dir();
    let l = sha512_layout(d.path());
    verify_clean(&l);
    let pack = d.path().join("p.tar");
    let pack2 = d.path().join("p2.tar");
    for p in [&pack, &pack2] {
        ok(["pack".as_ref(), l.as_os_str(), "-o".as_ref(), p.as_os_str()]);
    }
    // Deterministic, run to run.
    assert_eq!(
        std::fs::read(&pack).unwrap(),
        std::fs::read(&pack2).unwrap()
    );
    // GNU tar reads the pax path records: every blob under its full name.
    if peer("tar") {
        let list = sh(Command::new("tar").arg("-tf").arg(&pack));
        let names: Vec<&str> = list.lines().collect();
        let blobs: Vec<&&str> = names
            .iter()
            .filter(|n| n.starts_with("blobs/sha512/") && n.len() == 13 + 128)
            .collect();
        assert_eq!(blobs.len(), 3, "{list}");
        assert!(!list.contains("PaxHeaders"), "{list}");
    }
    let u = d.path().join("u");
    ok(["unpack".as_ref(), pack.as_os_str(), u.as_os_str()]);
    assert_eq!(refs(&u), refs(&l));
    verify_clean(&u);
    // The docker format too, read back by import.
    let x = d.path().join("x.tar");
    ok([
        "export".as_ref(),
        l.as_os_str(),
        "s512:1".as_ref(),
        "-o".as_ref(),
        x.as_os_str(),
    ]);
    let i = d.path().join("i");
    ok(["import".as_ref(), x.as_os_str(), i.as_os_str()]);
    assert_eq!(refs(&i).get("s512:1"), refs(&l).get("s512:1"));
    verify_clean(&i);
    // skopeo reads the packed archive (containers/image's oci-archive transport untars it
    // with Go's archive/tar).
    // It finds the manifest by its sha512 path. (skopeo 1.9 goes no further with sha512: it
    // checks configs against sha256 and writes sha256 blobs.)
    if peer("skopeo") {
        let src = format!("oci-archive:{}:s512:1", pack.display());
        let raw = sh(Command::new("skopeo").args(["inspect", "--raw", &src]));
        let m = index_json(&l)["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(raw.as_bytes(), std::fs::read(blob_path(&l, &m)).unwrap());
    }
}

#[test]
fn names_other_tools_write_are_carried_and_unsafe_text_never_reaches_an_archive() {
    // A layout written by another tool may hold a ref.name outside the grammar `tag` enforces
    // (cosign's `_cosign` tags): copy, pack and unpack carry it verbatim, so what ocitool
    // writes it reads back (#14 item 16). A name that is not safe text (a control character)
    // is refused, naming the way out.
    let d = empty_dir();
    let fx = fixture("minimal");
    let l = &fx.path;
    let add = |name: &str| {
        let mut index = index_json(l);
        let mut entry = index["manifests"][0].clone();
        entry["annotations"][ocitool_spec::refname::REF_NAME] = json!(name);
        index["manifests"].as_array_mut().unwrap().push(entry);
        std::fs::write(l.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    };
    add("app:_cosign");
    add("_cosign:sha256-0123.sig");
    let p = d.path().join("p.tar");
    let u = d.path().join("u");
    ok(["pack".as_ref(), l.as_os_str(), "-o".as_ref(), p.as_os_str()]);
    ok(["unpack".as_ref(), p.as_os_str(), u.as_os_str()]);
    assert_eq!(refs(&u), refs(l));
    let c = d.path().join("c");
    ok(["copy".as_ref(), l.as_os_str(), c.as_os_str()]);
    assert_eq!(refs(&c), refs(l));
    let c1 = d.path().join("c1");
    ok([
        "copy".as_ref(),
        l.as_os_str(),
        c1.as_os_str(),
        "app:_cosign".as_ref(),
    ]);
    assert_eq!(refs(&c1).keys().collect::<Vec<_>>(), ["app:_cosign"]);

    add("app:\u{7}bell");
    std::fs::remove_file(&p).unwrap();
    for args in [
        vec!["pack".as_ref(), l.as_os_str(), "-o".as_ref(), p.as_os_str()],
        vec![
            "export".as_ref(),
            l.as_os_str(),
            "app:\u{7}bell".as_ref(),
            "--format".as_ref(),
            "oci".as_ref(),
            "-o".as_ref(),
            p.as_os_str(),
        ],
        vec![
            "copy".as_ref(),
            l.as_os_str(),
            d.path().join("c2").as_os_str(),
        ],
    ] {
        fails(3, &["control character", "ocitool tag"], &args);
        assert!(!p.exists());
    }
    fails(
        3,
        &["control character"],
        [
            "copy".as_ref(),
            l.as_os_str(),
            d.path().join("c2").as_os_str(),
            "app:\u{7}bell".as_ref(),
        ],
    );
}

#[test]
fn every_name_tag_accepts_survives_every_archive() {
    let d = empty_dir();
    let fx = fixture("minimal");
    let l = &fx.path;
    let names = [
        "a:b:c",
        "app:1.0+build",
        "APP:1",
        "a@b",
        "reg.example.com:5000/team/app:1",
        "x/y/z:w",
        "latest",
        "app:sha256-0123abcd.sig",
        "a--b.c_d:e",
    ];
    for n in names {
        ok([
            "tag".as_ref(),
            l.as_os_str(),
            "app:1.0".as_ref(),
            n.as_ref(),
            "--allow-any".as_ref(),
        ]);
    }
    let p = d.path().join("p.tar");
    ok(["pack".as_ref(), l.as_os_str(), "-o".as_ref(), p.as_os_str()]);
    let u = d.path().join("u");
    ok(["unpack".as_ref(), p.as_os_str(), u.as_os_str()]);
    assert_eq!(refs(&u), refs(l));
    let i = d.path().join("i");
    ok(["import".as_ref(), p.as_os_str(), i.as_os_str()]);
    assert_eq!(refs(&i), refs(l));
}

#[test]
fn an_unreadable_containerd_name_gives_way_to_the_ref_name() {
    // regctl writes `ocidir://<path>:<tag>` as io.containerd.image.name (spire#6515).
    let fx = fixture("minimal");
    let mut index = index_json(&fx.path);
    index["manifests"][0]["annotations"] = json!({
        ocitool_spec::refname::REF_NAME: "1.0",
        ocitool_spec::refname::CONTAINERD_IMAGE_NAME: "ocidir://oci/app:1.0",
    });
    std::fs::write(
        fx.path.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let d = empty_dir();
    let p = d.path().join("p.tar");
    ok([
        "pack".as_ref(),
        fx.path.as_os_str(),
        "-o".as_ref(),
        p.as_os_str(),
    ]);
    let i = d.path().join("i");
    ok(["import".as_ref(), p.as_os_str(), i.as_os_str()]);
    assert!(refs(&i).contains_key("1.0"), "{:?}", refs(&i));
}
