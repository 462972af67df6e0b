//! convert: recompression and media-type conversion keep the config and the diff_ids.

use serde_json::Value;

use crate::util::*;

fn convert(l: &std::path::Path, args: &[&str]) -> Value {
    let mut a: Vec<&std::ffi::OsStr> = vec!["convert".as_ref(), l.as_os_str()];
    a.extend(args.iter().map(std::ffi::OsStr::new));
    json(&a)
}

#[test]
fn every_compression_keeps_the_config_and_diff_ids() {
    let fx = fixture("minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    let before = snapshot(&fx.path);
    for (c, mt) in [
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("none", "application/vnd.oci.image.layer.v1.tar"),
        ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
    ] {
        let t = format!("app:{c}");
        let v = convert(&fx.path, &["app:1.0", &t, "--compression", c]);
        let i = json(["inspect".as_ref(), fx.path.as_os_str(), t.as_ref()]);
        assert_eq!(
            i["config"]["digest"],
            img.config.digest.to_string(),
            "{c}: image ID kept"
        );
        let diffs: Vec<String> = img.diff_ids.iter().map(ToString::to_string).collect();
        for (k, l) in i["layers"].as_array().unwrap().iter().enumerate() {
            assert_eq!(l["mediaType"], mt, "{c}");
            assert_eq!(l["diffId"], diffs[k]);
        }
        if c == "none" {
            // An uncompressed layer is its own diff_id.
            assert_eq!(i["layers"][0]["digest"], diffs[0]);
        }
        if c == "gzip" {
            // Already gzip: reused as it is, and the manifest is the source's.
            assert!(
                v["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|l| l["reused"] == true)
            );
            assert_eq!(v["digest"], img.manifest.digest.to_string());
        }
    }
    // SOURCE untouched: its blobs and its ref are as before.
    let after = snapshot(&fx.path);
    for (p, d) in &before {
        if p.starts_with("blobs") {
            assert_eq!(after.get(p), Some(d));
        }
    }
    assert_eq!(refs(&fx.path)["app:1.0"], img.manifest.digest.to_string());
    verify_clean(&fx.path);
}

#[test]
fn zstd_back_to_gzip_and_levels() {
    let fx = fixture("zstd");
    convert(
        &fx.path,
        &["zstd:1", "z:gz", "--compression", "gzip", "--level", "9"],
    );
    let i = json(["inspect".as_ref(), fx.path.as_os_str(), "z:gz".as_ref()]);
    assert_eq!(
        i["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    verify_clean(&fx.path);
    // A level out of the codec's range is a usage error (exit 2), named before any work.
    fails(
        2,
        &["'30'", "--level", "1 to 22"],
        [
            "convert".as_ref(),
            fx.path.as_os_str(),
            "zstd:1".as_ref(),
            "z:x".as_ref(),
            "--compression".as_ref(),
            "zstd".as_ref(),
            "--level".as_ref(),
            "30".as_ref(),
        ],
    );
}

#[test]
fn media_types_move_between_families_and_annotations_stay() {
    let fx = fixture("unknown-fields");
    let v = convert(
        &fx.path,
        &["canary:1", "canary:docker", "--media-types", "docker"],
    );
    let d = v["digest"].as_str().unwrap();
    let m: Value = serde_json::from_slice(&std::fs::read(blob_path(&fx.path, d)).unwrap()).unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(
        m["annotations"]["com.example.a"], "first",
        "annotations kept"
    );
    assert_eq!(
        m["com.example.vendor"],
        serde_json::json!([1, 2, 3]),
        "unknown fields kept"
    );
    // and back
    let v = convert(
        &fx.path,
        &["canary:docker", "canary:oci", "--media-types", "oci"],
    );
    let m: Value = serde_json::from_slice(
        &std::fs::read(blob_path(&fx.path, v["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    fails(
        3,
        &["zstd", "--media-types oci"],
        [
            "convert".as_ref(),
            fx.path.as_os_str(),
            "canary:1".as_ref(),
            "x:1".as_ref(),
            "--compression".as_ref(),
            "zstd".as_ref(),
            "--media-types".as_ref(),
            "docker".as_ref(),
        ],
    );
    verify_clean(&fx.path);
}

#[test]
fn an_index_converts_every_platform_or_one() {
    let fx = fixture("multi-arch");
    let (_, a, b, _) = ocitool_testkit::fixtures::multi_arch();
    let v = convert(
        &fx.path,
        &["multi:1.0", "multi:zstd", "--compression", "zstd"],
    );
    assert_eq!(v["manifestsWritten"], 2);
    assert_eq!(v["mediaType"], "application/vnd.oci.image.index.v1+json");
    for (p, img) in [("linux/amd64", &a), ("linux/arm64", &b)] {
        let i = json([
            "inspect".as_ref(),
            fx.path.as_os_str(),
            "multi:zstd".as_ref(),
            "--platform".as_ref(),
            p.as_ref(),
        ]);
        assert_eq!(i["config"]["digest"], img.config.digest.to_string());
    }
    let v = convert(
        &fx.path,
        &[
            "multi:1.0",
            "arm:plain",
            "--compression",
            "none",
            "--platform",
            "linux/arm64",
        ],
    );
    assert_eq!(v["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let rows = json(["ls".as_ref(), fx.path.as_os_str()]);
    let arm = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ref"] == "arm:plain")
        .unwrap();
    assert_eq!(arm["platforms"], serde_json::json!(["linux/arm64/v8"]));
    verify_clean(&fx.path);
    // A --platform the image is not for is refused, single-platform or index, and nothing
    // is written.
    let before = snapshot(&fx.path);
    let l = fx.path.to_str().unwrap();
    for (src, platform, needles) in [
        (
            "arm:plain",
            "linux/amd64",
            &[
                "arm:plain",
                "is an image for linux/arm64",
                "not linux/amd64",
            ][..],
        ),
        (
            "multi:1.0",
            "linux/s390x",
            &["linux/s390x", "linux/amd64"][..],
        ),
    ] {
        fails(
            3,
            needles,
            [
                "convert",
                l,
                src,
                "other:1",
                "--compression",
                "zstd",
                "--platform",
                platform,
            ],
        );
    }
    assert_eq!(snapshot(&fx.path), before);
}

#[test]
fn artifacts_and_damaged_layers_are_refused() {
    let fx = fixture("artifact");
    let (_, _, sbom, _) = ocitool_testkit::fixtures::artifact();
    let before = snapshot(&fx.path);
    fails(
        3,
        &["artifact"],
        [
            "convert".as_ref(),
            fx.path.as_os_str(),
            sbom.digest.to_string().as_ref(),
            "x:1".as_ref(),
            "--compression".as_ref(),
            "zstd".as_ref(),
        ],
    );
    assert_eq!(snapshot(&fx.path), before);
    let fx = fixture("corrupt/wrong-diff-id");
    let before = snapshot(&fx.path);
    fails(
        3,
        &["diff_id"],
        [
            "convert".as_ref(),
            fx.path.as_os_str(),
            "app:1.0".as_ref(),
            "x:1".as_ref(),
            "--compression".as_ref(),
            "zstd".as_ref(),
        ],
    );
    assert_eq!(
        snapshot(&fx.path),
        before,
        "no ref, no blob from a failed convert"
    );
    let fx = fixture("corrupt/minimal");
    fails(
        3,
        &["sha256:"],
        [
            "convert".as_ref(),
            fx.path.as_os_str(),
            "app:1.0".as_ref(),
            "x:1".as_ref(),
            "--compression".as_ref(),
            "none".as_ref(),
        ],
    );
}

#[test]
fn import_compression_converts_in_the_same_pass_as_convert_would() {
    let d = empty_dir();
    let archive = testdata("archives/docker-save.tar");
    // Plain import, then convert...
    let a = d.path().join("a");
    ok(["import".as_ref(), archive.as_os_str(), a.as_os_str()]);
    let plain = json(["inspect".as_ref(), a.as_os_str(), "app:1.0".as_ref()]);
    for c in ["zstd", "gzip"] {
        let converted = convert(&a, &["app:1.0", &format!("app:{c}"), "--compression", c]);
        // ...gives the same image as converting on the way in.
        let b = d.path().join(format!("b-{c}"));
        let v = json([
            "import".as_ref(),
            archive.as_os_str(),
            b.as_os_str(),
            "--compression".as_ref(),
            c.as_ref(),
        ]);
        let img = v["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["refs"][0] == "app:1.0")
            .unwrap();
        assert_eq!(img["digest"], converted["digest"], "{c}");
        let i = json(["inspect".as_ref(), b.as_os_str(), "app:1.0".as_ref()]);
        assert_eq!(i["config"]["digest"], plain["config"]["digest"]);
        assert_eq!(i["config"]["diffIds"], plain["config"]["diffIds"]);
        assert!(i["layers"][0]["mediaType"].as_str().unwrap().ends_with(c));
        verify_clean(&b);
        // The uncompressed layers were never stored.
        for l in plain["layers"].as_array().unwrap() {
            assert!(!blob_path(&b, l["digest"].as_str().unwrap()).exists());
        }
    }
    // Older dialects: the generated manifest names the compressed layers.
    let c = d.path().join("legacy");
    ok([
        "import".as_ref(),
        testdata("archives/docker-legacy.tar").as_os_str(),
        c.as_os_str(),
        "--compression".as_ref(),
        "gzip".as_ref(),
    ]);
    let i = json(["inspect".as_ref(), c.as_os_str(), "app:1.0".as_ref()]);
    assert_eq!(
        i["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(i["config"]["diffIds"], plain["config"]["diffIds"]);
    verify_clean(&c);
}
