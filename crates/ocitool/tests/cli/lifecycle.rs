//! Semver cascades, protected tags, prune, ls --tree.

use std::path::Path;

use serde_json::Value;

use crate::util::*;

fn tag(l: &Path, args: &[&str]) -> Value {
    let mut a: Vec<&std::ffi::OsStr> = vec!["tag".as_ref(), l.as_os_str()];
    a.extend(args.iter().map(std::ffi::OsStr::new));
    json(&a)
}

/// A layout with `n` distinct small images (so each version has its own digest), not yet
/// listed in index.json (tagged by digest later).
pub(crate) fn many_images(n: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
    use ocitool_compress::Compression;
    let d = empty_dir();
    let l = d.path().join("layout");
    let mut w = ocitool_testkit::LayoutWriter::new();
    let mut digests = Vec::new();
    for i in 0..n {
        let img = ocitool_testkit::Image::small(
            1000 + i as u64,
            1,
            ("linux", "amd64", None),
            Compression::Gzip,
            false,
        );
        w.add_image(&img);
        digests.push(img.manifest.digest.to_string());
    }
    w.write(&l).unwrap();
    (d, l, digests)
}

#[test]
fn semver_cascade_moves_aliases_only_for_the_highest_release() {
    let (_d, l, ds) = many_images(5);
    let v = tag(&l, &[&ds[0], "app:1.2.3", "--semver"]);
    let names: Vec<&str> = v["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app:1.2.3", "app:1.2", "app:1", "app:latest"]);
    // A hotfix of the 1.1 line after 1.2.3 moves app:1.1 only.
    tag(&l, &[&ds[1], "app:1.1.8", "--semver"]);
    let r = refs(&l);
    assert_eq!(r["app:1.1"], ds[1]);
    assert_eq!(r["app:1"], ds[0]);
    assert_eq!(r["app:latest"], ds[0]);
    // A pre-release moves nothing but itself.
    let v = tag(&l, &[&ds[2], "app:1.3.0-rc.1", "--semver"]);
    assert_eq!(v["refs"].as_array().unwrap().len(), 1);
    // A dry run says from which digest to which, and changes nothing.
    let before = snapshot(&l);
    let v = tag(&l, &[&ds[3], "app:1.3.0", "--semver", "--dry-run"]);
    assert_eq!(v["dryRun"], true);
    let latest = v["refs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ref"] == "app:latest")
        .unwrap();
    assert_eq!(latest["previous"], ds[0].as_str());
    assert_eq!(latest["digest"], ds[3].as_str());
    assert_eq!(snapshot(&l), before);
    // v-prefixed versions keep the v in derived tags.
    tag(&l, &[&ds[4], "web:v2.0.1", "--semver"]);
    let r = refs(&l);
    assert!(r.contains_key("web:v2.0") && r.contains_key("web:v2") && r.contains_key("web:latest"));
    let err = fails(
        3,
        &["--semver needs an exact version"],
        [
            "tag".as_ref(),
            l.as_os_str(),
            ds[0].as_ref(),
            "app:1.2".as_ref(),
            "--semver".as_ref(),
        ],
    );
    assert!(err.contains("app:1.2"));
    verify_clean(&l);
}

#[test]
fn protected_tags_refuse_to_move_without_force() {
    let (_d, l, ds) = many_images(3);
    tag(
        &l,
        &[
            &ds[0],
            "app:1.0.0",
            "app:0123abcd",
            "app:release-1",
            "app:latest",
        ],
    );
    let p = json([
        "protect".as_ref(),
        l.as_os_str(),
        "--semver".as_ref(),
        "--sha".as_ref(),
        "*:release-*".as_ref(),
    ]);
    assert_eq!(
        p,
        serde_json::json!({"semver": true, "sha": true, "patterns": ["*:release-*"]})
    );
    // Stored as an annotation on index.json, where other tools keep it.
    let idx = index_json(&l);
    assert!(
        idx["annotations"]["dev.ocitool.protect"]
            .as_str()
            .unwrap()
            .contains("release-")
    );
    assert_eq!(
        json(["protect".as_ref(), l.as_os_str(), "--list".as_ref()]),
        p
    );

    let before = snapshot(&l);
    for t in ["app:1.0.0", "app:0123abcd", "app:release-1"] {
        fails(
            3,
            &[t, "is protected", &ds[0], &ds[1], "--force"],
            ["tag".as_ref(), l.as_os_str(), ds[1].as_ref(), t.as_ref()],
        );
        fails(
            3,
            &[t, "removing it needs --force"],
            ["untag".as_ref(), l.as_os_str(), t.as_ref()],
        );
    }
    // A cascade that would move a protected exact tag is refused as a whole.
    fails(
        3,
        &["app:1.0.0"],
        [
            "tag".as_ref(),
            l.as_os_str(),
            ds[1].as_ref(),
            "app:1.0.0".as_ref(),
            "--semver".as_ref(),
        ],
    );
    assert_eq!(snapshot(&l), before);
    // Aliases stay mutable; retagging a protected tag to the same digest is a no-op.
    tag(&l, &[&ds[1], "app:latest"]);
    let out = ok([
        "tag".as_ref(),
        l.as_os_str(),
        ds[0].as_ref(),
        "app:1.0.0".as_ref(),
    ]);
    assert!(out.contains("unchanged"));
    // --force moves it; --remove drops a rule.
    tag(&l, &[&ds[2], "app:1.0.0", "--force"]);
    assert_eq!(refs(&l)["app:1.0.0"], ds[2]);
    let p = json([
        "protect".as_ref(),
        l.as_os_str(),
        "--remove".as_ref(),
        "--sha".as_ref(),
    ]);
    assert_eq!(p["sha"], Value::Null);
    ok(["untag".as_ref(), l.as_os_str(), "app:0123abcd".as_ref()]);
    // Other writers obey the policy too: an import that would move a protected tag fails.
    let src = fixture("minimal");
    ok([
        "tag".as_ref(),
        src.path.as_os_str(),
        "app:1.0".as_ref(),
        "app:1.0.0".as_ref(),
    ]);
    let a = src.dir.path().join("a.tar");
    ok([
        "export".as_ref(),
        src.path.as_os_str(),
        "app:1.0.0".as_ref(),
        "-o".as_ref(),
        a.as_os_str(),
    ]);
    let before = snapshot(&l);
    fails(
        3,
        &["app:1.0.0", "is protected"],
        ["import".as_ref(), a.as_os_str(), l.as_os_str()],
    );
    assert_eq!(snapshot(&l), before);
    ok([
        "import".as_ref(),
        a.as_os_str(),
        l.as_os_str(),
        "--force".as_ref(),
    ]);
}

#[test]
fn prune_on_hundreds_of_versions_keeps_what_it_must() {
    let n = 300;
    let (_d, l, ds) = many_images(n);
    // 300 releases 1.<i/100>.<i%100>.
    let names: Vec<String> = (0..n)
        .map(|i| format!("app:1.{}.{}", i / 100, i % 100))
        .collect();
    for (i, name) in names.iter().enumerate() {
        ok(["tag".as_ref(), l.as_os_str(), ds[i].as_ref(), name.as_ref()]);
    }
    // Aliases: latest on the newest, `1.0` on an old one; protection for 1.1.5.
    tag(&l, &[&ds[n - 1], "app:latest"]);
    tag(&l, &[&ds[42], "app:1.0"]);
    ok(["protect".as_ref(), l.as_os_str(), "app:1.1.5".as_ref()]);
    // Another repository is left alone when --repo names one.
    tag(&l, &[&ds[0], "other:9.9.9"]);

    let before = snapshot(&l);
    let plan = json([
        "prune".as_ref(),
        l.as_os_str(),
        "--keep".as_ref(),
        "10".as_ref(),
        "--repo".as_ref(),
        "app".as_ref(),
        "--dry-run".as_ref(),
    ]);
    assert_eq!(snapshot(&l), before, "dry run changed the layout");
    let removed: Vec<String> = plan["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["remove"] == true)
        .map(|d| d["ref"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        removed.len(),
        n - 10 - 2,
        "all but the newest 10, the alias target and the protected one"
    );
    assert!(
        !removed.contains(&"app:1.0.42".to_string()),
        "app:1.0 points at it"
    );
    assert!(!removed.contains(&"app:1.1.5".to_string()), "protected");
    for name in &names[n - 10..] {
        assert!(!removed.contains(name));
    }
    let would_free = plan["gc"]["freed"].as_u64().unwrap();
    assert!(would_free > 0);

    let real = json([
        "prune".as_ref(),
        l.as_os_str(),
        "--keep".as_ref(),
        "10".as_ref(),
        "--repo".as_ref(),
        "app".as_ref(),
        "--gc".as_ref(),
    ]);
    assert_eq!(real["removed"], removed.len());
    assert_eq!(real["gc"]["ran"], true);
    // ds[0] stays reachable through other:9.9.9, so gc freed exactly what the plan said.
    assert_eq!(real["gc"]["freed"].as_u64().unwrap(), would_free);
    let r = refs(&l);
    assert_eq!(r.len(), 10 + 2 + 2 + 1);
    assert!(r.contains_key("other:9.9.9"));
    verify_clean(&l);

    // --force also prunes the protected tag.
    let v = json([
        "prune".as_ref(),
        l.as_os_str(),
        "--keep".as_ref(),
        "10".as_ref(),
        "--repo".as_ref(),
        "app".as_ref(),
        "--force".as_ref(),
    ]);
    assert_eq!(v["removed"], 1);
    assert!(!refs(&l).contains_key("app:1.1.5"));
}

#[test]
fn ls_tree_shows_release_history() {
    let (_d, l, ds) = many_images(3);
    tag(&l, &[&ds[0], "app:1.1.9", "--semver"]);
    tag(&l, &[&ds[1], "app:1.2.3", "--semver"]);
    tag(&l, &[&ds[1], "mirror:stable"]);
    tag(&l, &[&ds[2], "app:main"]);
    let text = ok(["ls".as_ref(), l.as_os_str(), "--tree".as_ref()]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "app");
    assert!(
        lines[1].contains("1.2.3")
            && lines[1].contains("<- 1.2, 1, latest")
            && lines[1].contains("(= mirror:stable)"),
        "{text}"
    );
    assert!(
        lines[2].contains("1.1.9") && lines[2].contains("<- 1.1"),
        "{text}"
    );
    assert!(lines[3].contains("main"), "{text}");
    assert_eq!(lines[4], "mirror");
    let v = json(["ls".as_ref(), l.as_os_str(), "--tree".as_ref()]);
    assert_eq!(
        v[0]["versions"][0]["aliases"],
        serde_json::json!(["1.2", "1", "latest"])
    );
}
