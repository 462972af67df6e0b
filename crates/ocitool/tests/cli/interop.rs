//! Interoperability with the real peers from Debian: skopeo and umoci. Missing peers fail
//! the run under CI=true and are reported as SKIPPED otherwise.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// A layout that ocitool creates (init, blob put, tag) and tags.
fn ocitool_made_layout(dir: &Path) -> (std::path::PathBuf, ocitool_testkit::Image) {
    let l = dir.join("made");
    ok(["init".as_ref(), l.as_os_str()]);
    let img = ocitool_testkit::fixtures::minimal_image();
    for b in img.blobs() {
        let f = dir.join(b.digest.encoded());
        std::fs::write(&f, &b.bytes).unwrap();
        ok([
            "blob".as_ref(),
            "put".as_ref(),
            l.as_os_str(),
            f.as_os_str(),
        ]);
    }
    ok([
        "tag".as_ref(),
        l.as_os_str(),
        img.manifest.digest.to_string().as_ref(),
        "app:1.0".as_ref(),
        "app:latest".as_ref(),
    ]);
    (l, img)
}

#[test]
fn skopeo_reads_what_ocitool_tags() {
    if !peer("skopeo") {
        return;
    }
    let d = empty_dir();
    let (l, img) = ocitool_made_layout(d.path());
    for r in ["app:1.0", "app:latest"] {
        let out = sh(Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:{r}", l.display())));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Digest"], img.manifest.digest.to_string(), "{r}");
        assert_eq!(v["Architecture"], "amd64");
        let raw = Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!("oci:{}:{r}", l.display()))
            .output()
            .unwrap();
        assert_eq!(raw.stdout, img.manifest.bytes);
    }
}

#[test]
fn umoci_reads_what_ocitool_tags() {
    if !peer("umoci") {
        return;
    }
    let d = empty_dir();
    let (l, img) = ocitool_made_layout(d.path());
    let out = sh(Command::new("umoci").args(["ls", "--layout"]).arg(&l));
    let mut tags: Vec<&str> = out.lines().collect();
    tags.sort();
    assert_eq!(tags, ["app:1.0", "app:latest"]);
    let stat = sh(Command::new("umoci")
        .args(["stat", "--json", "--image"])
        .arg(format!("{}:app:latest", l.display())));
    let v: serde_json::Value = serde_json::from_str(&stat).unwrap();
    let hist = v["history"].as_array().unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0]["diff_id"], img.diff_ids[0].to_string());
}

#[test]
fn ocitool_reads_what_umoci_and_skopeo_write() {
    if !peer("umoci") || !peer("skopeo") {
        return;
    }
    let d = empty_dir();
    let l = d.path().join("umoci");
    let bundle = d.path().join("bundle");
    sh(Command::new("umoci").args(["init", "--layout"]).arg(&l));
    sh(Command::new("umoci")
        .args(["new", "--image"])
        .arg(format!("{}:base", l.display())));
    sh(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:base", l.display()))
        .arg(&bundle));
    std::fs::write(bundle.join("rootfs/hello"), b"hello from umoci\n").unwrap();
    sh(Command::new("umoci")
        .args(["repack", "--image"])
        .arg(format!("{}:base", l.display()))
        .arg(&bundle));
    sh(Command::new("umoci")
        .args(["config", "--config.cmd", "/hello", "--image"])
        .arg(format!("{}:base", l.display()))
        .arg("--tag")
        .arg("v2"));

    let rows = json(["ls".as_ref(), l.as_os_str()]);
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base", "v2"]);
    let v = json(["inspect".as_ref(), l.as_os_str(), "v2".as_ref()]);
    assert_eq!(v["config"]["cmd"], serde_json::json!(["/hello"]));
    assert_eq!(v["layers"].as_array().unwrap().len(), 1);
    verify_clean(&l);

    // skopeo copy into a new layout, then ocitool agrees on the digest and verifies it.
    let s = d.path().join("skopeo");
    sh(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:v2", l.display()))
        .arg(format!("oci:{}:copied", s.display())));
    let a = json(["inspect".as_ref(), l.as_os_str(), "v2".as_ref()]);
    let b = json(["inspect".as_ref(), s.as_os_str(), "copied".as_ref()]);
    assert_eq!(a["digest"], b["digest"]);
    verify_clean(&s);
    // ocitool tags in a skopeo-written layout; skopeo reads it back.
    ok([
        "tag".as_ref(),
        s.as_os_str(),
        "copied".as_ref(),
        "again:1".as_ref(),
    ]);
    let out = sh(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:again:1", s.display())));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], a["digest"]);
}

#[test]
fn umoci_and_skopeo_read_every_clean_fixture_ocitool_verifies() {
    if !peer("skopeo") {
        return;
    }
    // Single-manifest fixtures: skopeo inspects them by ref.
    for (name, r) in [
        ("minimal", "app:1.0"),
        ("zstd", "zstd:1"),
        ("uncompressed", "plain:1"),
        ("unknown-fields", "canary:1"),
    ] {
        let fx = fixture(name);
        verify_clean(&fx.path);
        let out = sh(Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!("oci:{}:{r}", fx.path.display())));
        let ours = ok([
            "inspect".as_ref(),
            fx.path.as_os_str(),
            r.as_ref(),
            "--raw".as_ref(),
        ]);
        assert_eq!(out, ours, "{name}");
    }
}
