use serde_json::Value;

use crate::util::*;

const CLEAN: &[&str] = &[
    "minimal",
    "multi-arch",
    "nested-index",
    "docker-v2s2",
    "artifact",
    "unknown-fields",
    "zstd",
    "uncompressed",
    "multi-member-gzip",
    "sparse-index",
];

#[test]
fn every_clean_fixture_verifies() {
    for name in CLEAN {
        let fx = fixture(name);
        let v = json(["verify".as_ref(), fx.path.as_os_str()]);
        assert_eq!(v["ok"], true, "{name}: {v}");
        assert_eq!(v["problems"], serde_json::json!([]), "{name}");
        let files = std::fs::read_dir(fx.path.join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(v["checked"], files, "{name}: every blob file is hashed");
    }
}

#[test]
fn the_corrupt_variant_of_every_fixture_is_caught() {
    for name in CLEAN {
        let fx = fixture(&format!("corrupt/{name}"));
        let o = run(["verify".as_ref(), fx.path.as_os_str(), "--json".as_ref()]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["ok"], false);
        let ps = v["problems"].as_array().unwrap();
        assert!(
            ps.iter().any(|p| p["problem"]
                .as_str()
                .unwrap()
                .starts_with("content hashes to")),
            "{name}: {v}"
        );
        for p in ps {
            assert!(
                p["path"].as_str().unwrap().starts_with("blobs/sha256/"),
                "{p}"
            );
            assert!(p["digest"].as_str().unwrap().starts_with("sha256:"), "{p}");
        }
    }
}

/// `(fixture, substrings that must appear in the text output)`.
const TARGETED: &[(&str, &[&str])] = &[
    ("missing-blob", &["blob is missing", "layers[1]"]),
    ("wrong-size", &["declared size", "but the blob file has"]),
    (
        "wrong-diff-id",
        &["layer 1 of manifest", "decompresses to", "says diff_id"],
    ),
    (
        "bad-descriptors",
        &[
            "manifests[1]: malformed digest",
            "manifests[2]: unsupported digest algorithm \"blake3\"",
            "manifests[3]: negative size -5",
        ],
    ),
    ("bad-index-json", &["index.json: malformed index.json"]),
    ("bad-oci-layout", &["oci-layout", "2.0.0"]),
    (
        "unreferenced-corrupt",
        &[
            "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000: content hashes to",
        ],
    ),
];

#[test]
fn targeted_corruptions_are_each_named() {
    for (name, needles) in TARGETED {
        let fx = fixture(&format!("corrupt/{name}"));
        let before = snapshot(&fx.path);
        let o = run(["verify".as_ref(), fx.path.as_os_str()]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{name}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let out = stdout(&o);
        for n in *needles {
            assert!(out.contains(n), "{name}: {n:?} not in:\n{out}");
        }
        assert!(!out.contains("panicked"));
        assert_eq!(
            snapshot(&fx.path),
            before,
            "{name}: verify changed the layout"
        );
    }
}

#[test]
fn a_traversal_digest_never_becomes_a_path() {
    let fx = fixture("corrupt/bad-descriptors");
    // Every command refuses the ref with the bad digest without touching the file system
    // outside the layout.
    fails(
        3,
        &["malformed digest"],
        ["inspect".as_ref(), fx.path.as_os_str(), "evil".as_ref()],
    );
    fails(
        3,
        &["unsupported digest algorithm"],
        ["inspect".as_ref(), fx.path.as_os_str(), "future".as_ref()],
    );
    fails(
        3,
        &["negative size"],
        [
            "tag".as_ref(),
            fx.path.as_os_str(),
            "negative".as_ref(),
            "x:1".as_ref(),
        ],
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let fx = fixture("minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    // Damage both layers in different ways and leave junk in blobs/.
    std::fs::write(
        blob_path(&fx.path, &img.layers[0].digest.to_string()),
        b"junk",
    )
    .unwrap();
    std::fs::remove_file(blob_path(&fx.path, &img.layers[1].digest.to_string())).unwrap();
    std::fs::write(fx.path.join("blobs/sha256/not-a-digest"), b"x").unwrap();
    let o = run(["verify".as_ref(), fx.path.as_os_str(), "--json".as_ref()]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = v["problems"].to_string();
    assert!(
        text.contains(&img.layers[0].digest.to_string()) && text.contains("declared size"),
        "{text}"
    );
    assert!(
        text.contains(&img.layers[1].digest.to_string()) && text.contains("missing"),
        "{text}"
    );
    assert!(
        text.contains("not-a-digest") && text.contains("not a valid sha256 digest"),
        "{text}"
    );
    assert!(v["problems"].as_array().unwrap().len() >= 3);
}

#[test]
fn symlinks_directories_and_unreadable_blobs_are_named() {
    let fx = fixture("minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    let l0 = blob_path(&fx.path, &img.layers[0].digest.to_string());
    let l1 = blob_path(&fx.path, &img.layers[1].digest.to_string());
    let cfg = blob_path(&fx.path, &img.config.digest.to_string());
    // layer 0 → symlink to a file outside the layout with the right content
    let outside = fx.dir.path().join("outside");
    std::fs::rename(&l0, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &l0).unwrap();
    // layer 1 → a directory
    std::fs::remove_file(&l1).unwrap();
    std::fs::create_dir(&l1).unwrap();
    // config → a fifo (must not hang)
    std::fs::remove_file(&cfg).unwrap();
    sh(std::process::Command::new("mkfifo").arg(&cfg));
    let o = run(["verify".as_ref(), fx.path.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("{}: ", img.layers[0].digest.encoded()))
            || out.contains(img.layers[0].digest.encoded()),
        "{out}"
    );
    assert!(out.contains("is a symlink, not a regular file"), "{out}");
    assert!(out.contains("is a directory, not a regular file"), "{out}");
    assert!(out.contains("is a fifo, not a regular file"), "{out}");
    // inspect refuses to read the config through the fifo and names it
    fails(
        3,
        &[&img.config.digest.to_string(), "fifo"],
        ["inspect".as_ref(), fx.path.as_os_str(), "app:1.0".as_ref()],
    );
}

#[test]
fn verify_refs_checks_only_what_they_reach() {
    let fx = fixture("corrupt/unreferenced-corrupt");
    let v = json(["verify".as_ref(), fx.path.as_os_str(), "app:1.0".as_ref()]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["checked"], 4);
    let fx = fixture("corrupt/multi-arch");
    let o = run(["verify".as_ref(), fx.path.as_os_str(), "multi:1.0".as_ref()]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn a_sparse_index_is_noted_not_failed() {
    let fx = fixture("sparse-index");
    let o = run(["verify".as_ref(), fx.path.as_os_str()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("note:") && stderr(&o).contains("absent, as the spec allows"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_read_only_layout_can_be_listed_inspected_and_verified() {
    let fx = fixture("multi-arch");
    let Some(ro) = read_only_mount(&fx.path) else {
        return;
    };
    let p = ro.path();
    assert!(
        std::fs::write(p.join("probe"), b"x").is_err(),
        "the mount is not read-only"
    );
    ok(["ls".as_ref(), p.as_os_str()]);
    ok(["inspect".as_ref(), p.as_os_str(), "multi:1.0".as_ref()]);
    verify_clean(p);
    // A write fails cleanly, naming the layout.
    fails(
        3,
        &["Read-only file system"],
        [
            "tag".as_ref(),
            p.as_os_str(),
            "multi:1.0".as_ref(),
            "x:1".as_ref(),
        ],
    );
}
