use crate::util::*;

#[test]
fn untag_removes_refs_and_keeps_blobs() {
    let fx = fixture("minimal");
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "app:latest".as_ref(),
        "app:old".as_ref(),
    ]);
    let blobs_before: Vec<_> = snapshot(&fx.path)
        .into_keys()
        .filter(|p| p.starts_with("blobs"))
        .collect();
    let v = json([
        "untag".as_ref(),
        fx.path.as_os_str(),
        "app:latest".as_ref(),
        "app:old".as_ref(),
    ]);
    assert_eq!(v["removed"].as_array().unwrap().len(), 2);
    let r = refs(&fx.path);
    assert_eq!(r.keys().collect::<Vec<_>>(), ["app:1.0"]);
    let blobs_after: Vec<_> = snapshot(&fx.path)
        .into_keys()
        .filter(|p| p.starts_with("blobs"))
        .collect();
    assert_eq!(blobs_before, blobs_after);
    verify_clean(&fx.path);
}

#[test]
fn untag_of_an_unknown_ref_fails_and_changes_nothing() {
    let fx = fixture("minimal");
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "app:latest".as_ref(),
    ]);
    let before = snapshot(&fx.path);
    // one good, one unknown: nothing is removed
    fails(
        3,
        &["unknown ref", "ghost"],
        [
            "untag".as_ref(),
            fx.path.as_os_str(),
            "app:latest".as_ref(),
            "ghost".as_ref(),
        ],
    );
    assert_eq!(snapshot(&fx.path), before);
}

#[test]
fn untag_by_digest_removes_every_entry_for_it() {
    let fx = fixture("artifact");
    let (_, _, sbom, _) = ocitool_testkit::fixtures::artifact();
    ok([
        "untag".as_ref(),
        fx.path.as_os_str(),
        sbom.digest.to_string().as_ref(),
    ]);
    let idx = index_json(&fx.path);
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1);
}

#[test]
fn untag_by_containerd_name() {
    let fx = fixture("docker-v2s2");
    ok([
        "untag".as_ref(),
        fx.path.as_os_str(),
        "dockerish:amd64-only".as_ref(),
    ]);
    let idx = index_json(&fx.path);
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1);
}
