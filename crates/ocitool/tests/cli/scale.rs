//! Many refs (commands on a large `index.json`, checked for what they do; their cost is
//! checked by `ocitool-layout`'s operation counts and the torture campaign `scale`), and the
//! integrity of refs: names shaped like digests, a name listed twice, a broken manifest that
//! no copied ref reaches.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ocitool_compress::Compression;
use ocitool_testkit::many::{ManyRefs, write_many_refs};
use ocitool_testkit::{Blob, Image, LayoutWriter};
use serde_json::{Value, json};

use crate::util::*;

fn many(refs: usize, images: usize, repos: usize) -> (tempfile::TempDir, PathBuf, ManyRefs) {
    let d = empty_dir();
    let l = d.path().join("layout");
    let m = write_many_refs(&l, refs, images, repos).unwrap();
    (d, l, m)
}

fn p(l: &Path) -> &std::ffi::OsStr {
    l.as_os_str()
}

fn image(seed: u64) -> Image {
    Image::small(seed, 1, ("linux", "amd64", None), Compression::Gzip, false)
}

#[test]
fn ten_thousand_refs_list_tag_untag_prune_and_copy_right() {
    let (d, l, m) = many(10_000, 3, 10);
    let want: BTreeMap<String, String> = m
        .refs
        .iter()
        .map(|(n, d)| (n.clone(), d.to_string()))
        .collect();
    assert_eq!(refs(&l), want);

    let rows = json(["ls".as_ref(), p(&l)]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 10_000);
    assert_eq!(rows[4321]["ref"], m.refs[4321].0);
    assert_eq!(rows[4321]["digest"], m.refs[4321].1.to_string());
    assert_eq!(rows[4321]["platforms"], json!(["linux/amd64"]));
    let text = ok(["ls".as_ref(), p(&l)]);
    assert_eq!(text.lines().count(), 10_001, "a header and a row per ref");

    // Every ref once in the tree; the refs sharing each image are listed once (on the first
    // row of its digest), later rows name that first row.
    let tree = json(["ls".as_ref(), p(&l), "--tree".as_ref()]);
    let tree = tree.as_array().unwrap();
    assert_eq!(tree.len(), 10);
    let rows: Vec<&Value> = tree
        .iter()
        .flat_map(|r| {
            r["versions"]
                .as_array()
                .unwrap()
                .iter()
                .chain(r["others"].as_array().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 10_000);
    let firsts: Vec<&&Value> = rows.iter().filter(|r| r["sameAs"].is_null()).collect();
    assert_eq!(firsts.len(), 3, "one first row per image");
    let listed: usize = rows
        .iter()
        .map(|r| r["sharedWith"].as_array().unwrap().len())
        .sum();
    // The first row of each image is in repository r0: its refs in the 9 others, once.
    assert_eq!(listed, 10_000 - 1000);

    verify_clean(&l);

    ok([
        "tag".as_ref(),
        p(&l),
        m.refs[0].0.as_ref(),
        "extra:edge".as_ref(),
    ]);
    // untag of 1,000 refs in one call
    let gone: Vec<&str> = m.refs[..1000].iter().map(|(n, _)| n.as_str()).collect();
    let mut args: Vec<&std::ffi::OsStr> = vec!["untag".as_ref(), p(&l)];
    args.extend(gone.iter().map(std::ffi::OsStr::new));
    let v = json(&args);
    assert_eq!(v["removed"].as_array().unwrap().len(), 1000);
    let mut model = want.clone();
    for n in &gone {
        model.remove(*n);
    }
    model.insert("extra:edge".into(), m.refs[0].1.to_string());
    assert_eq!(refs(&l), model);

    // copy of every ref
    let dst = d.path().join("copy");
    ok(["copy".as_ref(), p(&l), p(&dst)]);
    assert_eq!(refs(&dst), model);

    // prune keeps the newest version of each repository and the other tag
    let dry = json([
        "prune".as_ref(),
        p(&l),
        "--keep".as_ref(),
        "1".as_ref(),
        "--dry-run".as_ref(),
    ]);
    assert_eq!(dry["removed"], 9000 - 10);
    assert_eq!(refs(&l), model, "a dry run changes nothing");
    let v = json(["prune".as_ref(), p(&l), "--keep".as_ref(), "1".as_ref()]);
    assert_eq!(v["removed"], 9000 - 10);
    let kept: BTreeSet<String> = refs(&l).into_keys().collect();
    let mut want_kept: BTreeSet<String> = (0..10).map(|r| format!("r{r}:1.999.0")).collect();
    want_kept.insert("extra:edge".into());
    assert_eq!(kept, want_kept);
    verify_clean(&l);
}

#[test]
fn ls_tree_lists_who_shares_a_digest_once() {
    let (_d, l, m) = many(1, 2, 1);
    let (a, b) = (m.images[0].to_string(), m.images[1].to_string());
    ok(["untag".as_ref(), p(&l), m.refs[0].0.as_ref()]);
    for (src, name) in [
        (&a, "app:1.0.1"),
        (&a, "app:1.0.0"),
        (&a, "app:latest"),
        (&a, "mirror:1"),
        (&a, "zoo:x"),
        (&b, "zoo:y"),
    ] {
        ok(["tag".as_ref(), p(&l), src.as_ref(), name.as_ref()]);
    }
    let text = ok(["ls".as_ref(), p(&l), "--tree".as_ref()]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "app");
    assert!(
        lines[1].contains("1.0.1")
            && lines[1].contains("<- latest")
            && lines[1].ends_with("(= mirror:1, zoo:x)"),
        "{text}"
    );
    assert!(
        lines[2].contains("1.0.0") && lines[2].ends_with("(= app:1.0.1)"),
        "{text}"
    );
    assert_eq!(lines[3], "mirror");
    assert!(lines[4].ends_with("(= app:1.0.1)"), "{text}");
    assert_eq!(lines[5], "zoo");
    assert!(
        lines[6].contains('x') && lines[6].ends_with("(= app:1.0.1)"),
        "{text}"
    );
    assert!(lines[7].contains('y') && !lines[7].contains("(="), "{text}");
    let v = json(["ls".as_ref(), p(&l), "--tree".as_ref()]);
    assert_eq!(
        v[0]["versions"][0]["sharedWith"],
        json!(["mirror:1", "zoo:x"])
    );
    assert_eq!(v[0]["versions"][0]["sameAs"], Value::Null);
    assert_eq!(v[0]["versions"][1]["sharedWith"], json!([]));
    assert_eq!(v[0]["versions"][1]["sameAs"], "app:1.0.1");
    assert_eq!(v[2]["others"][0]["sameAs"], "app:1.0.1");
}

/// A layout whose `index.json` names an entry like a digest: `sha256:<digest of image a>`,
/// pointing at image b (as another tool could write it).
fn digest_named_layout() -> (tempfile::TempDir, PathBuf, String, String) {
    let (a, b) = (image(41), image(42));
    let d = empty_dir();
    let l = d.path().join("layout");
    let (ad, bd) = (a.manifest.digest.to_string(), b.manifest.digest.to_string());
    let mut w = LayoutWriter::new();
    w.add_image(&a)
        .add_image(&b)
        .list(&a.manifest, Some("a:1"))
        .list(&b.manifest, Some("b:1"))
        .list(&b.manifest, Some(&ad));
    w.write(&l).unwrap();
    (d, l, ad, bd)
}

#[test]
fn ref_names_shaped_like_digests_are_refused_and_an_existing_one_is_removed_deliberately() {
    let (_d, l, ad, bd) = digest_named_layout();
    let before = snapshot(&l);
    // `tag` refuses such a name (it would read as a digest).
    let hex = bd.strip_prefix("sha256:").unwrap();
    for bad in [bd.clone(), format!("sha256:{}", hex.to_uppercase())] {
        fails(
            3,
            &["invalid ref name", "form of a digest"],
            ["tag".as_ref(), p(&l), "a:1".as_ref(), bad.as_ref()],
        );
    }
    assert_eq!(snapshot(&l), before);
    // `untag <digest of a>` would remove a:1, another image's ref: refused, naming the entry.
    fails(
        3,
        &[&ad, "manifests[2]", &bd, "--name"],
        ["untag".as_ref(), p(&l), ad.as_ref()],
    );
    assert_eq!(snapshot(&l), before);
    // `--name` removes exactly that entry.
    let v = json(["untag".as_ref(), p(&l), "--name".as_ref(), ad.as_ref()]);
    assert_eq!(v["removed"][0]["digests"], json!([bd]));
    let r = refs(&l);
    assert_eq!(r.keys().collect::<Vec<_>>(), ["a:1", "b:1"]);
    // `--name` matches names only: a digest no entry is named is unknown.
    fails(
        3,
        &["unknown ref"],
        ["untag".as_ref(), p(&l), "--name".as_ref(), bd.as_ref()],
    );
    // Then the digest means the entries pointing at it, as always.
    ok(["untag".as_ref(), p(&l), ad.as_ref()]);
    assert_eq!(refs(&l).keys().collect::<Vec<_>>(), ["b:1"]);
    verify_clean(&l);
}

/// A layout listing ref `a:1` twice (image a, then image b) and `b:1` twice on one image.
fn duplicate_names_layout() -> (tempfile::TempDir, PathBuf, String, String) {
    let (a, b) = (image(51), image(52));
    let d = empty_dir();
    let l = d.path().join("layout");
    let mut w = LayoutWriter::new();
    w.add_image(&a)
        .add_image(&b)
        .list(&a.manifest, Some("a:1"))
        .list(&b.manifest, Some("b:1"))
        .list(&b.manifest, Some("a:1"))
        .list(&b.manifest, Some("b:1"))
        .list(&a.manifest, Some("c:1"));
    w.write(&l).unwrap();
    (
        d,
        l,
        a.manifest.digest.to_string(),
        b.manifest.digest.to_string(),
    )
}

#[test]
fn verify_reports_a_ref_name_listed_twice() {
    let (_d, l, a, b) = duplicate_names_layout();
    let o = run(["verify".as_ref(), p(&l)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines.contains(&format!(
            "index.json: ref name \"a:1\" is on 2 entries (manifests[0] -> {a}, manifests[2] -> {b}): which image it names is ambiguous"
        ).as_str()),
        "{out}"
    );
    assert!(
        lines.contains(
            &format!(
                "index.json: ref name \"b:1\" is on 2 entries (manifests[1] -> {b}, manifests[3] -> {b})"
            )
            .as_str()
        ),
        "{out}"
    );
    let o = run(["verify".as_ref(), p(&l), "--json".as_ref()]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 2);
}

#[test]
fn copy_refuses_a_ref_name_listed_twice() {
    let (d, l, a, _) = duplicate_names_layout();
    let dst = d.path().join("dst");
    // Every ref: refused, naming the name and its entries; nothing is written.
    fails(
        3,
        &["a:1", "2 entries", "manifests[0]", "manifests[2]"],
        ["copy".as_ref(), p(&l), p(&dst)],
    );
    assert!(!dst.join("index.json").exists() || refs(&dst).is_empty());
    // A duplicated name, even on one image, is refused when it is copied...
    fails(
        3,
        &["b:1", "2 entries"],
        ["copy".as_ref(), p(&l), p(&dst), "b:1".as_ref()],
    );
    // ...and the others copy.
    ok(["copy".as_ref(), p(&l), p(&dst), "c:1".as_ref()]);
    assert_eq!(refs(&dst), BTreeMap::from([("c:1".to_string(), a)]));
    verify_clean(&dst);
}

/// Image a (ref a:1) and a manifest b (ref b:1, listed first) that names a's config with a
/// wrong size: a problem of b alone.
fn unrelated_broken_manifest() -> (tempfile::TempDir, PathBuf, Image, Blob) {
    let a = image(61);
    let mut v: Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
    v["config"]["size"] = json!(a.config.size() + 1);
    v["annotations"] = json!({"note": "b"});
    let b = Blob::json(&a.manifest.media_type, &v);
    let d = empty_dir();
    let l = d.path().join("layout");
    let mut w = LayoutWriter::new();
    w.add_image(&a)
        .add_blob(&b)
        .list(&b, Some("b:1"))
        .list(&a.manifest, Some("a:1"));
    w.write(&l).unwrap();
    (d, l, a, b)
}

#[test]
fn copy_checks_what_each_copied_ref_reaches() {
    let (d, l, a, _) = unrelated_broken_manifest();
    let config = a.config.digest.to_string();
    // a:1 reaches nothing wrong: copied.
    let dst = d.path().join("a");
    ok(["copy".as_ref(), p(&l), p(&dst), "a:1".as_ref()]);
    assert_eq!(
        refs(&dst),
        BTreeMap::from([("a:1".to_string(), a.manifest.digest.to_string())])
    );
    verify_clean(&dst);
    // b:1, and every ref, reach the config with the wrong size: refused, nothing copied.
    for (dir, extra) in [("b", Some("b:1")), ("all", None)] {
        let dst = d.path().join(dir);
        let mut args: Vec<&std::ffi::OsStr> = vec!["copy".as_ref(), p(&l), p(&dst)];
        args.extend(extra.map(std::ffi::OsStr::new));
        fails(3, &["cannot copy", &config], &args);
        assert!(!dst.join("index.json").exists() || refs(&dst).is_empty());
    }
}
