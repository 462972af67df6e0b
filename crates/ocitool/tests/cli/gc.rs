use serde_json::Value;

use crate::util::*;

#[test]
fn gc_removes_what_no_ref_reaches_and_nothing_else() {
    let fx = fixture("multi-arch");
    let (_, a, b, idx) = ocitool_testkit::fixtures::multi_arch();
    // Keep only the amd64 image under a name, drop the index.
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        a.manifest.digest.to_string().as_ref(),
        "app:amd64".as_ref(),
    ]);
    ok(["untag".as_ref(), fx.path.as_os_str(), "multi:1.0".as_ref()]);
    let dry = json(["gc".as_ref(), fx.path.as_os_str(), "--dry-run".as_ref()]);
    assert_eq!(dry["dryRun"], true);
    let mut want: Vec<String> = b
        .blobs()
        .iter()
        .map(|x| x.digest.to_string())
        .chain([idx.digest.to_string()])
        .collect();
    want.sort();
    let mut got: Vec<String> = dry["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert!(
        blob_path(&fx.path, &idx.digest.to_string()).exists(),
        "dry run deleted"
    );
    let freed: u64 = b.blobs().iter().map(|x| x.size()).sum::<u64>() + idx.size();
    assert_eq!(dry["freed"], freed);

    let real = json(["gc".as_ref(), fx.path.as_os_str()]);
    assert_eq!(real["removed"], dry["removed"]);
    for d in &want {
        assert!(!blob_path(&fx.path, d).exists(), "{d} survived");
    }
    for x in a.blobs() {
        assert!(blob_path(&fx.path, &x.digest.to_string()).exists());
    }
    verify_clean(&fx.path);
    let again = json(["gc".as_ref(), fx.path.as_os_str()]);
    assert_eq!(again["removed"], Value::Array(vec![]));
}

#[test]
fn gc_keeps_referrers_listed_or_not() {
    let fx = fixture("artifact");
    let before = snapshot(&fx.path);
    let v = json(["gc".as_ref(), fx.path.as_os_str()]);
    assert_eq!(v["removed"], Value::Array(vec![]), "{v}");
    assert_eq!(snapshot(&fx.path), before);
    // Once the image is gone, its referrers go too.
    ok(["untag".as_ref(), fx.path.as_os_str(), "app:signed".as_ref()]);
    let (_, img, sbom, sig) = ocitool_testkit::fixtures::artifact();
    ok([
        "untag".as_ref(),
        fx.path.as_os_str(),
        sbom.digest.to_string().as_ref(),
    ]);
    ok(["gc".as_ref(), fx.path.as_os_str()]);
    for d in [&img.manifest.digest, &sbom.digest, &sig.digest] {
        assert!(!blob_path(&fx.path, &d.to_string()).exists());
    }
    assert_eq!(
        std::fs::read_dir(fx.path.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn gc_keeps_every_index_json_entry_even_untagged() {
    let fx = fixture("nested-index");
    let before = snapshot(&fx.path);
    ok(["gc".as_ref(), fx.path.as_os_str()]);
    assert_eq!(snapshot(&fx.path), before);
}

#[test]
fn gc_refuses_when_a_document_is_damaged() {
    let fx = fixture("minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    std::fs::write(
        blob_path(&fx.path, &img.manifest.digest.to_string()),
        b"{ not json",
    )
    .unwrap();
    let before = snapshot(&fx.path);
    fails(
        3,
        &[
            "refusing to collect garbage",
            &img.manifest.digest.to_string(),
        ],
        ["gc".as_ref(), fx.path.as_os_str()],
    );
    assert_eq!(snapshot(&fx.path), before);
}

#[test]
fn gc_tolerates_missing_blobs_and_cleans_stale_temporary_files() {
    let fx = fixture("corrupt/missing-blob");
    std::fs::create_dir_all(fx.path.join(".ocitool/tmp/txn-dead/x")).unwrap();
    std::fs::write(fx.path.join(".ocitool/tmp/txn-dead/x/blob-1"), b"partial").unwrap();
    let v = json(["gc".as_ref(), fx.path.as_os_str()]);
    assert_eq!(v["staleTemp"], 1);
    assert_eq!(
        std::fs::read_dir(fx.path.join(".ocitool/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn gc_leaves_files_that_are_not_blobs() {
    let fx = fixture("minimal");
    std::fs::write(fx.path.join("blobs/sha256/README"), b"someone else's").unwrap();
    std::fs::write(fx.path.join("manifest.json"), b"[]").unwrap();
    ok(["gc".as_ref(), fx.path.as_os_str()]);
    assert!(fx.path.join("blobs/sha256/README").exists());
    assert!(fx.path.join("manifest.json").exists());
}
