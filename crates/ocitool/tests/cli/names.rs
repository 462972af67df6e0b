//! One image name however it is spelled (#15): twins, lookups people type, the grammar of the
//! names ocitool creates and of those it carries, and `--platform` that matches nothing.

use std::ffi::OsString;
use std::path::Path;

use serde_json::{Value, json};

use crate::import_export::tar_cat;
use crate::util::*;

/// `ocitool <cmd> <layout> <rest...>`.
fn at(cmd: &str, layout: &Path, rest: &[&str]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![cmd.into(), layout.into()];
    v.extend(rest.iter().map(OsString::from));
    v
}

/// Appends entries to `index.json` as another tool would write them: `(name, manifest)`.
fn add_named(layout: &Path, entries: &[(&str, &ocitool_testkit::image::Blob)]) {
    let mut idx = index_json(layout);
    let list = idx["manifests"].as_array_mut().unwrap();
    for (name, m) in entries {
        list.push(json!({
            "mediaType": m.media_type,
            "digest": m.digest.to_string(),
            "size": m.bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
    }
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec_pretty(&idx).unwrap(),
    )
    .unwrap();
}

fn inspected_digest(layout: &Path, reference: &str, rest: &[&str]) -> String {
    let mut a = at("inspect", layout, &[reference]);
    a.extend(rest.iter().map(OsString::from));
    json(a)["digest"].as_str().unwrap().to_string()
}

#[test]
fn twins_are_one_ref_and_tag_replaces_the_spelling_stored() {
    let fx = fixture("multi-arch");
    let (_, a, b, idx) = ocitool_testkit::fixtures::multi_arch();
    let (a, b) = (a.manifest.digest.to_string(), b.manifest.digest.to_string());
    let l = &fx.path;
    ok(at("tag", l, &["multi:1.0", "docker.io/library/app:1.0"]));
    // Found by any spelling docker reads alike.
    for twin in [
        "app:1.0",
        "docker.io/library/app:1.0",
        "index.docker.io/library/app:1.0",
        "docker.io/app:1.0",
    ] {
        assert_eq!(
            inspected_digest(l, twin, &[]),
            idx.digest.to_string(),
            "{twin}"
        );
    }
    // Another repository, tag or registry is another name.
    fails(3, &["team/app:1.0"], at("inspect", l, &["team/app:1.0"]));
    fails(
        3,
        &["ghcr.io/app:1.0"],
        at("inspect", l, &["ghcr.io/app:1.0"]),
    );

    // `tag` to a twin replaces its entry, stored as typed, and says so.
    let out = ok(at("tag", l, &[&a, "app:1.0"]));
    assert!(
        out.contains("replaces \"docker.io/library/app:1.0\""),
        "{out}"
    );
    assert!(
        out.contains(&format!("moved from {idx}", idx = idx.digest)),
        "{out}"
    );
    let r = refs(l);
    assert_eq!(r.get("app:1.0"), Some(&a));
    assert!(!r.contains_key("docker.io/library/app:1.0"), "{r:?}");
    assert_eq!(r.len(), 2, "{r:?}");
    // No tag means :latest, both ways.
    ok(at("tag", l, &[&b, "nginx"]));
    assert_eq!(inspected_digest(l, "nginx:latest", &[]), b);
    assert_eq!(
        inspected_digest(l, "index.docker.io/library/nginx:latest", &[]),
        b
    );
    ok(at("tag", l, &[&a, "docker.io/library/nginx:latest"]));
    let r = refs(l);
    assert_eq!(r.get("docker.io/library/nginx:latest"), Some(&a), "{r:?}");
    assert!(!r.contains_key("nginx"), "{r:?}");
    verify_clean(l);
}

#[test]
fn twins_written_by_other_tools_are_reported_and_never_exported_as_one_repotag() {
    let fx = fixture("multi-arch");
    let (_, a, b, _) = ocitool_testkit::fixtures::multi_arch();
    let l = &fx.path;
    add_named(
        l,
        &[
            ("app:1.0", &a.manifest),
            ("docker.io/library/app:1.0", &b.manifest),
        ],
    );
    // An exact name always wins.
    assert_eq!(
        inspected_digest(l, "app:1.0", &[]),
        a.manifest.digest.to_string()
    );
    assert_eq!(
        inspected_digest(l, "docker.io/library/app:1.0", &[]),
        b.manifest.digest.to_string()
    );
    // A third spelling matches both: ambiguous.
    fails(
        3,
        &["index.docker.io/library/app:1.0"],
        at("inspect", l, &["index.docker.io/library/app:1.0"]),
    );
    // verify reports them.
    let o = run(at("verify", l, &[]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("\"app:1.0\", \"docker.io/library/app:1.0\" are one image name")
            && out.contains("ambiguous"),
        "{out}"
    );
    // export would write two images under one RepoTag: refused, nothing written.
    let tar = fx.dir.path().join("x.tar");
    let mut args = at("export", l, &["app:1.0", "docker.io/library/app:1.0", "-o"]);
    args.push(tar.clone().into());
    fails(3, &["RepoTag docker.io/library/app:1.0"], args);
    assert!(!tar.exists());
}

#[test]
fn twins_of_one_image_export_one_repotag() {
    let fx = fixture("minimal");
    let l = &fx.path;
    let img = ocitool_testkit::fixtures::minimal_image();
    add_named(l, &[("docker.io/library/app:1.0", &img.manifest)]);
    let o = run(at("verify", l, &[]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("one image name") || stdout(&o).contains("one image name"));
    let tar = fx.dir.path().join("x.tar");
    let mut args = at("export", l, &["app:1.0", "docker.io/library/app:1.0", "-o"]);
    args.push(tar.clone().into());
    ok(args);
    let m: Value = serde_json::from_slice(&tar_cat(&tar, "manifest.json")).unwrap();
    assert_eq!(m[0]["RepoTags"], json!(["docker.io/library/app:1.0"]));
}

#[test]
fn lookups_people_type() {
    let fx = fixture("minimal");
    let l = &fx.path;
    let d = ocitool_testkit::fixtures::minimal_image()
        .manifest
        .digest
        .to_string();
    ok(at("tag", l, &["app:1.0", "app:latest"]));
    assert_eq!(inspected_digest(l, "app", &[]), d);
    assert_eq!(inspected_digest(l, &format!("app@{d}"), &[]), d);
    assert_eq!(inspected_digest(l, &d[..19], &[]), d); // sha256:<12 hex>, as ls prints it
    fails(3, &["sha256:0000"], at("inspect", l, &["sha256:0000"]));
    // Suggestions by edit distance, and refs of a bare tag.
    fails(
        3,
        &["did you mean \"app:latest\""],
        at("inspect", l, &["app:lates"]),
    );
    let e = fails(3, &["\"app:latest\""], at("inspect", l, &["latest"]));
    assert!(!e.contains("\"app:1.0\""), "{e}");
    fails(
        3,
        &["did you mean \"app:latest\""],
        at("untag", l, &["app:lates"]),
    );
    // untag takes the same lookups.
    ok(at("untag", l, &["app"]));
    assert_eq!(refs(l).keys().collect::<Vec<_>>(), ["app:1.0"]);
}

#[test]
fn tag_refuses_names_docker_refuses_at_load_unless_allow_any() {
    let fx = fixture("minimal");
    let l = &fx.path;
    for bad in ["Upper/Case:1", "app:1.2.3+build.5"] {
        fails(3, &[bad, "--allow-any"], at("tag", l, &["app:1.0", bad]));
    }
    assert_eq!(refs(l).len(), 1);
    let o = run(at(
        "tag",
        l,
        &[
            "app:1.0",
            "Upper/Case:1",
            "app:1.2.3+build.5",
            "--allow-any",
        ],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning") && err.contains("Upper/Case:1") && err.contains("+build.5"),
        "{err}"
    );
    assert_eq!(refs(l).len(), 3);
    // Outside even the image-spec grammar: refused with --allow-any too.
    fails(
        3,
        &["a b"],
        at("tag", l, &["app:1.0", "a b", "--allow-any"]),
    );
}

#[test]
fn a_platform_that_matches_nothing_is_an_error_on_single_platform_images() {
    let fx = fixture("multi-arch");
    let l = &fx.path;
    let (_, _, b, _) = ocitool_testkit::fixtures::multi_arch();
    ok(at("tag", l, &[&b.manifest.digest.to_string(), "arm:1"]));
    let tar = fx.dir.path().join("x.tar");
    for cmd in ["export", "pack"] {
        let mut args = at(cmd, l, &["arm:1", "--platform", "linux/amd64", "-o"]);
        args.push(tar.clone().into());
        fails(3, &["arm:1", "linux/arm64", "not linux/amd64"], args);
        assert!(!tar.exists(), "{cmd}");
    }
    fails(
        3,
        &["arm:1", "not linux/amd64"],
        at("inspect", l, &["arm:1", "--platform", "linux/amd64"]),
    );
    let dst = fx.dir.path().join("dst");
    let mut args = at("copy", l, &[]);
    args.insert(2, dst.clone().into());
    args.extend(["arm:1", "--platform", "linux/amd64"].map(OsString::from));
    fails(3, &["arm:1", "not linux/amd64"], args);
    assert!(refs(&dst).is_empty());
    // The matching platform passes, and an index without the platform still fails.
    ok(at("inspect", l, &["arm:1", "--platform", "linux/arm64"]));
    fails(
        3,
        &["multi:1.0", "linux/s390x"],
        at("inspect", l, &["multi:1.0", "--platform", "linux/s390x"]),
    );
}

#[test]
fn carried_names_round_trip_through_pack_unpack_and_copy() {
    let fx = fixture("minimal");
    let l = &fx.path;
    let img = ocitool_testkit::fixtures::minimal_image();
    let cosign = format!("_cosign:sha256-{}.sig", "ab".repeat(32));
    add_named(l, &[("1.0", &img.manifest), (&cosign, &img.manifest)]);
    let want = refs(l);
    assert_eq!(want.len(), 3);
    // Looked up verbatim.
    ok(at("inspect", l, &["1.0"]));
    ok(at("inspect", l, &[&cosign]));
    // pack, then unpack, all refs and by name.
    let tar = fx.dir.path().join("all.tar");
    let mut args = at("pack", l, &["-o"]);
    args.push(tar.clone().into());
    ok(args);
    let back = fx.dir.path().join("back");
    ok([
        OsString::from("unpack"),
        tar.clone().into(),
        back.clone().into(),
    ]);
    assert_eq!(refs(&back), want);
    let one = fx.dir.path().join("one.tar");
    let mut args = at("pack", l, &["1.0", &cosign, "-o"]);
    args.push(one.clone().into());
    ok(args);
    let back1 = fx.dir.path().join("back1");
    ok([OsString::from("unpack"), one.into(), back1.clone().into()]);
    let mut r = refs(&back1);
    r.insert("app:1.0".into(), want["app:1.0"].clone());
    assert_eq!(r, want);
    // copy, whole and by name.
    for (dst, names) in [("c1", vec![]), ("c2", vec!["1.0", cosign.as_str()])] {
        let dst = fx.dir.path().join(dst);
        let mut args: Vec<OsString> = vec!["copy".into(), l.into(), dst.clone().into()];
        args.extend(names.iter().map(OsString::from));
        ok(args);
        let got = refs(&dst);
        for n in &names {
            assert_eq!(got.get(*n), want.get(*n), "{n}");
        }
        if names.is_empty() {
            assert_eq!(got, want);
        }
    }
    // A docker archive's RepoTags are docker references: the cosign name is refused there.
    let mut args = at("export", l, &[&cosign, "-o"]);
    args.push(fx.dir.path().join("d.tar").into());
    fails(3, &["_cosign"], args);
}

#[test]
fn untag_of_a_digest_names_the_tags_it_removed() {
    let fx = fixture("minimal");
    let l = &fx.path;
    let d = ocitool_testkit::fixtures::minimal_image()
        .manifest
        .digest
        .to_string();
    ok(at("tag", l, &["app:1.0", "app:latest"]));
    let out = ok(at("untag", l, &[&d]));
    assert!(
        out.contains(&format!("removed {d} (app:1.0, app:latest)")),
        "{out}"
    );
    assert!(refs(l).is_empty());
    ok(at("tag", l, &[&d, "app:2"]));
    let v = json(at("untag", l, &[&d[..19]]));
    assert_eq!(v["removed"][0]["refs"], json!(["app:2"]), "{v}");
}

#[test]
fn untag_of_every_tag_of_a_repository() {
    let fx = fixture("minimal");
    let l = &fx.path;
    ok(at(
        "tag",
        l,
        &[
            "app:1.0",
            "app:latest",
            "docker.io/library/app:2",
            "other:1",
        ],
    ));
    ok(at("untag", l, &["app:*"]));
    assert_eq!(refs(l).keys().collect::<Vec<_>>(), ["other:1"]);
    fails(
        3,
        &["did you mean \"other:*\""],
        at("untag", l, &["othr:*"]),
    );
    ok(at("untag", l, &["--all-tags", "other"]));
    assert!(refs(l).is_empty());
}

#[test]
fn import_stores_the_familiar_name_in_place_of_its_twin_and_protection_holds_across_spellings() {
    let fx = fixture("multi-arch");
    let l = &fx.path;
    let (_, a, _, idx) = ocitool_testkit::fixtures::multi_arch();
    ok(at("tag", l, &["multi:1.0", "docker.io/library/app:1.0"]));
    // A docker archive of another image as docker.io/library/app:1.0.
    let src = fixture("minimal");
    let tar = fx.dir.path().join("app.tar");
    let mut args = at("export", &src.path, &["app:1.0", "-o"]);
    args.push(tar.clone().into());
    ok(args);
    ok([OsString::from("import"), tar.into(), l.into()]);
    let r = refs(l);
    let img = ocitool_testkit::fixtures::minimal_image();
    assert_eq!(
        r.get("app:1.0"),
        Some(&img.manifest.digest.to_string()),
        "{r:?}"
    );
    assert!(!r.contains_key("docker.io/library/app:1.0"), "{r:?}");
    // A protected tag does not move under another spelling without --force.
    ok(at("tag", l, &["multi:1.0", "app:1.2.3"]));
    ok(at("protect", l, &["--semver"]));
    let a = a.manifest.digest.to_string();
    fails(
        3,
        &["protected"],
        at("tag", l, &[&a, "docker.io/library/app:1.2.3"]),
    );
    assert_eq!(refs(l).get("app:1.2.3"), Some(&idx.digest.to_string()));
    ok(at(
        "tag",
        l,
        &[&a, "docker.io/library/app:1.2.3", "--force"],
    ));
    let r = refs(l);
    assert_eq!(r.get("docker.io/library/app:1.2.3"), Some(&a), "{r:?}");
    assert!(!r.contains_key("app:1.2.3"), "{r:?}");
}
