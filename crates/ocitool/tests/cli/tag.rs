use serde_json::json;

use crate::util::*;

#[test]
fn tag_stores_each_target_verbatim_as_ref_name() {
    let fx = fixture("minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    let d = img.manifest.digest.to_string();
    let out = ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "app:latest".as_ref(),
        "registry.example.com:5000/team/app:1.0".as_ref(),
    ]);
    assert!(
        out.contains("app:latest points at") && out.contains("(new)"),
        "{out}"
    );
    let r = refs(&fx.path);
    assert_eq!(r.len(), 3);
    for n in [
        "app:1.0",
        "app:latest",
        "registry.example.com:5000/team/app:1.0",
    ] {
        assert_eq!(r[n], d, "{n}");
    }
    // Every descriptor keeps mediaType and size; one per name.
    let idx = index_json(&fx.path);
    for e in idx["manifests"].as_array().unwrap() {
        assert_eq!(e["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(e["size"], img.manifest.size());
    }
    verify_clean(&fx.path);
}

#[test]
fn tagging_an_existing_name_moves_it() {
    let fx = fixture("multi-arch");
    let (_, a, _, idx) = ocitool_testkit::fixtures::multi_arch();
    let ad = a.manifest.digest.to_string();
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        ad.as_ref(),
        "app:amd64".as_ref(),
    ]);
    let v = json([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "multi:1.0".as_ref(),
        "app:amd64".as_ref(),
    ]);
    assert_eq!(v["refs"][0]["previous"], ad);
    assert_eq!(v["refs"][0]["digest"], idx.digest.to_string());
    let i = index_json(&fx.path);
    let named: Vec<_> = i["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"]["org.opencontainers.image.ref.name"] == "app:amd64")
        .collect();
    assert_eq!(named.len(), 1, "one descriptor per ref name");
    assert_eq!(
        named[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    // Re-tagging to the same digest is reported unchanged and does not rewrite index.json.
    let before = std::fs::read(fx.path.join("index.json")).unwrap();
    let out = ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "multi:1.0".as_ref(),
        "app:amd64".as_ref(),
    ]);
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(std::fs::read(fx.path.join("index.json")).unwrap(), before);
}

#[test]
fn a_digest_source_may_be_a_child_of_an_index_and_keeps_its_platform() {
    let fx = fixture("multi-arch");
    let (_, _, b, _) = ocitool_testkit::fixtures::multi_arch();
    let bd = b.manifest.digest.to_string();
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        bd.as_ref(),
        "app:arm64".as_ref(),
    ]);
    let i = index_json(&fx.path);
    let e = i["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["digest"] == bd.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        e["platform"],
        json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
    );
    let rows = json(["ls".as_ref(), fx.path.as_os_str()]);
    assert_eq!(rows[1]["platforms"], json!(["linux/arm64/v8"]));
    verify_clean(&fx.path);
}

#[test]
fn an_artifact_can_be_tagged() {
    let fx = fixture("artifact");
    let (_, _, sbom, _) = ocitool_testkit::fixtures::artifact();
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        sbom.digest.to_string().as_ref(),
        "app:sbom".as_ref(),
    ]);
    let e = index_json(&fx.path)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == "app:sbom")
        .cloned()
        .unwrap();
    assert_eq!(e["artifactType"], "application/spdx+json");
}

#[test]
fn unknown_fields_and_annotations_survive_and_blobs_are_untouched() {
    let fx = fixture("unknown-fields");
    let before = snapshot(&fx.path);
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "canary:1".as_ref(),
        "canary:latest".as_ref(),
    ]);
    let after = snapshot(&fx.path);
    // Every blob byte-identical.
    for (p, b) in &before {
        if p.starts_with("blobs") {
            assert_eq!(after.get(p), Some(b), "{}", p.display());
        }
    }
    let i = index_json(&fx.path);
    assert_eq!(i["com.example.top-level"], "kept too");
    assert_eq!(i["annotations"]["com.example.index"], "kept");
    let ms = i["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    assert_eq!(
        ms[0]["com.example.unknown-descriptor-field"],
        json!({"nested": [true, null]})
    );
    assert_eq!(ms[0]["annotations"]["com.example.descriptor-note"], "kept");
    // The new descriptor is a copy of the source's, renamed.
    assert_eq!(
        ms[1]["com.example.unknown-descriptor-field"],
        json!({"nested": [true, null]})
    );
    assert_eq!(
        ms[1]["annotations"]["org.opencontainers.image.ref.name"],
        "canary:latest"
    );
    assert_eq!(
        ms[1]["annotations"]["org.opencontainers.image.created"],
        "2024-01-01T00:00:00Z"
    );
    verify_clean(&fx.path);
}

#[test]
fn the_containerd_name_of_the_source_is_not_copied_to_a_new_ref() {
    let fx = fixture("docker-v2s2");
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "dockerish:latest".as_ref(),
        "mine:1".as_ref(),
    ]);
    let i = index_json(&fx.path);
    let e = i["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == "mine:1")
        .cloned()
        .unwrap();
    assert!(
        e["annotations"].get("io.containerd.image.name").is_none(),
        "{e}"
    );
    // The source entry is untouched.
    assert_eq!(
        i["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/dockerish:latest"
    );
}

#[test]
fn output_is_deterministic() {
    let a = fixture("multi-arch");
    let b = fixture("multi-arch");
    for fx in [&a, &b] {
        ok([
            "tag".as_ref(),
            fx.path.as_os_str(),
            "multi:1.0".as_ref(),
            "x:1".as_ref(),
            "y:2".as_ref(),
        ]);
        ok(["untag".as_ref(), fx.path.as_os_str(), "x:1".as_ref()]);
    }
    assert_eq!(
        std::fs::read(a.path.join("index.json")).unwrap(),
        std::fs::read(b.path.join("index.json")).unwrap()
    );
}

#[test]
fn invalid_targets_and_unknown_sources_change_nothing() {
    let fx = fixture("minimal");
    let before = snapshot(&fx.path);
    for bad in ["app:", "_app", "app/../x", "app:1.0 x", "a//b", ""] {
        fails(
            3,
            &["invalid ref name"],
            [
                "tag".as_ref(),
                fx.path.as_os_str(),
                "app:1.0".as_ref(),
                "good:1".as_ref(),
                bad.as_ref(),
            ],
        );
    }
    fails(
        3,
        &["unknown ref", "nope:1"],
        [
            "tag".as_ref(),
            fx.path.as_os_str(),
            "nope:1".as_ref(),
            "good:1".as_ref(),
        ],
    );
    let cfg = ocitool_testkit::fixtures::minimal_image()
        .config
        .digest
        .to_string();
    fails(
        3,
        &["not an image index or manifest", &cfg],
        [
            "tag".as_ref(),
            fx.path.as_os_str(),
            cfg.as_ref(),
            "good:1".as_ref(),
        ],
    );
    assert_eq!(snapshot(&fx.path), before);
}

#[test]
fn dry_run_changes_nothing() {
    let fx = fixture("minimal");
    let before = snapshot(&fx.path);
    let v = json([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "app:2".as_ref(),
        "--dry-run".as_ref(),
    ]);
    assert_eq!(v["dryRun"], true);
    assert_eq!(v["refs"][0]["ref"], "app:2");
    assert_eq!(snapshot(&fx.path), before);
}

#[test]
fn skopeo_convention_tag_only_names_round_trip() {
    let fx = fixture("minimal");
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "1.0".as_ref(),
        "latest".as_ref(),
    ]);
    let r = refs(&fx.path);
    assert!(r.contains_key("1.0") && r.contains_key("latest"));
}
