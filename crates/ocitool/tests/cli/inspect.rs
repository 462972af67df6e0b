use serde_json::json;

use crate::util::*;

#[test]
fn a_manifest_with_config_and_layers() {
    let fx = fixture("minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    let v = json(["inspect".as_ref(), fx.path.as_os_str(), "app:1.0".as_ref()]);
    assert_eq!(v["digest"], img.manifest.digest.to_string());
    assert_eq!(v["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        v["manifest"],
        serde_json::from_slice::<serde_json::Value>(&img.manifest.bytes).unwrap()
    );
    assert_eq!(v["config"]["digest"], img.config.digest.to_string());
    assert_eq!(v["config"]["platform"], "linux/amd64");
    assert_eq!(v["config"]["cmd"], json!(["/bin/sh"]));
    assert_eq!(v["config"]["created"], "2024-01-01T00:00:00Z");
    assert_eq!(v["config"]["history"].as_array().unwrap().len(), 2);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (l, (blob, diff)) in layers.iter().zip(img.layers.iter().zip(&img.diff_ids)) {
        assert_eq!(l["digest"], blob.digest.to_string());
        assert_eq!(l["size"], blob.size());
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(l["diffId"], diff.to_string());
    }
    assert_eq!(v["size"], img.blobs().iter().map(|b| b.size()).sum::<u64>());

    let text = ok(["inspect".as_ref(), fx.path.as_os_str(), "app:1.0".as_ref()]);
    for want in [
        "Platform:    linux/amd64",
        "Cmd:         [\"/bin/sh\"]",
        "Layers:      2",
        "diff_id",
        "History:",
        "Total size:",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn raw_prints_the_exact_bytes() {
    let fx = fixture("unknown-fields");
    let idx = index_json(&fx.path);
    let digest = idx["manifests"][0]["digest"].as_str().unwrap().to_string();
    let o = run([
        "inspect".as_ref(),
        fx.path.as_os_str(),
        "canary:1".as_ref(),
        "--raw".as_ref(),
    ]);
    assert_eq!(
        o.stdout,
        std::fs::read(blob_path(&fx.path, &digest)).unwrap()
    );
    let v = json(["inspect".as_ref(), fx.path.as_os_str(), "canary:1".as_ref()]);
    assert_eq!(v["config"]["labels"], json!({"org.example.team": "core"}));
    assert_eq!(v["config"]["entrypoint"], json!(["/app"]));
    assert_eq!(v["annotations"]["com.example.a"], "first");
    let cfg = run([
        "inspect".as_ref(),
        fx.path.as_os_str(),
        "canary:1".as_ref(),
        "--config".as_ref(),
    ]);
    let cfg_digest = v["config"]["digest"].as_str().unwrap();
    assert_eq!(
        cfg.stdout,
        std::fs::read(blob_path(&fx.path, cfg_digest)).unwrap()
    );
}

#[test]
fn an_index_lists_its_platforms_and_platform_picks_one() {
    let fx = fixture("multi-arch");
    let (_, a, b, idx) = ocitool_testkit::fixtures::multi_arch();
    let v = json([
        "inspect".as_ref(),
        fx.path.as_os_str(),
        "multi:1.0".as_ref(),
    ]);
    assert_eq!(v["digest"], idx.digest.to_string());
    let ms = v["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    assert_eq!(ms[0]["platform"], "linux/amd64");
    assert_eq!(ms[1]["platform"], "linux/arm64/v8");
    assert_eq!(ms[1]["digest"], b.manifest.digest.to_string());

    for (p, want) in [
        ("linux/arm64", &b),
        ("linux/arm64/v8", &b),
        ("linux/amd64", &a),
    ] {
        let v = json([
            "inspect".as_ref(),
            fx.path.as_os_str(),
            "multi:1.0".as_ref(),
            "--platform".as_ref(),
            p.as_ref(),
        ]);
        assert_eq!(v["digest"], want.manifest.digest.to_string(), "{p}");
        assert_eq!(v["index"], idx.digest.to_string());
        assert_eq!(v["layers"].as_array().unwrap().len(), 2);
    }
    fails(
        3,
        &["linux/s390x", "linux/amd64", "linux/arm64/v8"],
        [
            "inspect".as_ref(),
            fx.path.as_os_str(),
            "multi:1.0".as_ref(),
            "--platform".as_ref(),
            "linux/s390x".as_ref(),
        ],
    );
    // Not os/arch: a usage error (exit 2).
    fails(
        2,
        &["invalid platform"],
        [
            "inspect".as_ref(),
            fx.path.as_os_str(),
            "multi:1.0".as_ref(),
            "--platform".as_ref(),
            "linux".as_ref(),
        ],
    );
}

#[test]
fn by_digest_including_a_child_of_an_index() {
    let fx = fixture("multi-arch");
    let (_, _, b, _) = ocitool_testkit::fixtures::multi_arch();
    let d = b.manifest.digest.to_string();
    let v = json(["inspect".as_ref(), fx.path.as_os_str(), d.as_ref()]);
    assert_eq!(v["digest"], d);
    assert_eq!(v["config"]["platform"], "linux/arm64/v8");
}

#[test]
fn docker_names_resolve_by_ref_name_or_containerd_name() {
    let fx = fixture("docker-v2s2");
    for name in [
        "latest",
        "docker.io/library/dockerish:latest",
        "dockerish:latest",
    ] {
        let v = json(["inspect".as_ref(), fx.path.as_os_str(), name.as_ref()]);
        assert_eq!(
            v["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json",
            "{name}"
        );
    }
    let v = json([
        "inspect".as_ref(),
        fx.path.as_os_str(),
        "dockerish:amd64-only".as_ref(),
    ]);
    assert_eq!(
        v["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        v["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
}

#[test]
fn an_artifact_shows_its_type_and_subject() {
    let fx = fixture("artifact");
    let (_, img, sbom, _) = ocitool_testkit::fixtures::artifact();
    let v = json([
        "inspect".as_ref(),
        fx.path.as_os_str(),
        sbom.digest.to_string().as_ref(),
    ]);
    assert_eq!(v["artifactType"], "application/spdx+json");
    assert_eq!(v["subject"], img.manifest.digest.to_string());
    assert_eq!(
        v["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
}

#[test]
fn unknown_refs_and_bad_digests_are_clear_errors() {
    let fx = fixture("minimal");
    let err = fails(
        3,
        &["unknown ref", "app:2.0", "did you mean", "app:1.0"],
        ["inspect".as_ref(), fx.path.as_os_str(), "app:2.0".as_ref()],
    );
    assert!(err.starts_with("error:"));
    let zero = format!("sha256:{}", "0".repeat(64));
    fails(
        3,
        &[&zero],
        ["inspect".as_ref(), fx.path.as_os_str(), zero.as_ref()],
    );
    fails(
        3,
        &["no such directory"],
        ["inspect", "/nonexistent/layout", "x"],
    );
}

#[test]
fn a_damaged_manifest_is_named() {
    let fx = fixture("corrupt/missing-blob");
    let img = ocitool_testkit::fixtures::minimal_image();
    // the manifest is intact; inspect works without reading layers
    ok(["inspect".as_ref(), fx.path.as_os_str(), "app:1.0".as_ref()]);
    std::fs::write(blob_path(&fx.path, &img.config.digest.to_string()), b"{}").unwrap();
    fails(
        3,
        &[&img.config.digest.to_string()],
        ["inspect".as_ref(), fx.path.as_os_str(), "app:1.0".as_ref()],
    );
}
