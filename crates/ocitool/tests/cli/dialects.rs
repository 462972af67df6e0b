//! Every docker-save dialect imports with the right refs and digests; hostile archives give
//! one clear error and leave the destination as it was.

use std::path::{Path, PathBuf};
use std::process::Command;

use ocitool_compress::Compression;
use ocitool_testkit::archives::{self, ContainerdSave, Docker25Options};
use ocitool_testkit::{Image, image};
use serde_json::Value;

use crate::util::*;

const AMD64: image::Plat<'static> = ("linux", "amd64", None);
const ARM64: image::Plat<'static> = ("linux", "arm64", Some("v8"));

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Two images: `a` with a layer repeated (same diff_id twice), `b` sharing a layer with `a`.
fn images(c: Compression) -> (Image, Image) {
    let base = ocitool_testkit::tarball::small_layer(501, 3);
    let top = ocitool_testkit::tarball::small_layer(502, 2);
    let other = ocitool_testkit::tarball::small_layer(503, 2);
    let a = Image::from_tars(
        &[base.clone(), top.clone(), base.clone()],
        AMD64,
        c,
        true,
        Value::Null,
        Value::Null,
    );
    let b = Image::from_tars(&[base, other], AMD64, c, true, Value::Null, Value::Null);
    (a, b)
}

fn import(archive: &Path, dest: &Path) -> Value {
    json(["import".as_ref(), archive.as_os_str(), dest.as_os_str()])
}

fn config_of(l: &Path, r: &str) -> String {
    json(["inspect".as_ref(), l.as_os_str(), r.as_ref()])["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn docker_24_and_earlier_with_symlinked_layers() {
    let d = empty_dir();
    let (a, b) = images(Compression::None);
    let tar = archives::docker_legacy(&[(&a, &["app:1.0", "app:latest"]), (&b, &[])]);
    let f = write(d.path(), "legacy.tar", &tar);
    let l = d.path().join("l");
    let v = import(&f, &l);
    assert_eq!(v["dialect"], "docker-save");
    let imgs = v["images"].as_array().unwrap();
    assert_eq!(imgs.len(), 2);
    assert_eq!(
        imgs[0]["refs"],
        serde_json::json!(["app:1.0", "app:latest"])
    );
    assert_eq!(imgs[0]["generated"], true);
    assert_eq!(
        imgs[1]["refs"],
        serde_json::json!([]),
        "untagged, by digest"
    );
    assert_eq!(
        config_of(&l, "app:1.0"),
        a.config.digest.to_string(),
        "the image ID is kept"
    );
    let i = json(["inspect".as_ref(), l.as_os_str(), "app:latest".as_ref()]);
    let layers = i["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for (k, layer) in layers.iter().enumerate() {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
        assert_eq!(
            layer["digest"],
            a.diff_ids[k].to_string(),
            "layers stored byte-identical"
        );
    }
    verify_clean(&l);
    // Deterministic: the same archive gives the same manifest digest elsewhere.
    let l2 = d.path().join("l2");
    let v2 = import(&f, &l2);
    assert_eq!(v2["images"][0]["digest"], v["images"][0]["digest"]);
    // Re-tarred by GNU tar (./ prefixes, directory entries, hard links): the same images.
    let g = write(d.path(), "gnu.tar", &archives::gnu_retar(&tar));
    let l3 = d.path().join("l3");
    let v3 = import(&g, &l3);
    assert_eq!(v3["images"][0]["digest"], v["images"][0]["digest"]);
    assert_eq!(v3["images"][1]["digest"], v["images"][1]["digest"]);
}

#[test]
fn docker_25_classic_keeps_its_manifest_digests() {
    let d = empty_dir();
    let (a, b) = images(Compression::None);
    for opts in [
        Docker25Options::default(),
        Docker25Options {
            untagged_index_quirk: true,
            ..Default::default()
        },
        Docker25Options {
            v25_0_platform: true,
            untagged_repo_tags_empty: true,
            ..Default::default()
        },
    ] {
        let tar = archives::docker25_classic(&[(&a, &["app:1.0", "team/app:2"]), (&b, &[])], &opts);
        let f = write(d.path(), "d25.tar", &tar);
        let l = d.path().join(format!(
            "l{}",
            opts.untagged_index_quirk as u8 + 2 * opts.v25_0_platform as u8
        ));
        let v = import(&f, &l);
        assert_eq!(v["dialect"], "oci-layout+docker-save");
        // The archive's own index.json names the manifest; its digest is kept.
        let out = Command::new("tar")
            .arg("xOf")
            .arg(&f)
            .arg("index.json")
            .output()
            .unwrap();
        let idx: Value = serde_json::from_slice(&out.stdout).unwrap();
        let want = idx["manifests"][0]["digest"].as_str().unwrap();
        assert_eq!(refs(&l)["app:1.0"], want);
        assert_eq!(refs(&l)["team/app:2"], want);
        assert_eq!(config_of(&l, "app:1.0"), a.config.digest.to_string());
        // The untagged image is imported even when Docker's quirk left it out of index.json.
        let untagged: Vec<&Value> = v["images"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["refs"] == serde_json::json!([]))
            .collect();
        assert_eq!(untagged.len(), 1, "{v}");
        verify_clean(&l);
    }
    // An archive of no image: "manifests": null.
    let f = write(
        d.path(),
        "empty.tar",
        &archives::docker25_classic(&[], &Docker25Options::default()),
    );
    let l = d.path().join("empty");
    fails(3, &[], ["import".as_ref(), f.as_os_str(), l.as_os_str()]);
    assert!(!l.exists());
}

#[test]
fn containerd_store_sparse_index_imports_what_is_present() {
    let d = empty_dir();
    let amd = Image::small(601, 2, AMD64, Compression::Gzip, false);
    let arm = Image::small(602, 2, ARM64, Compression::Gzip, false);
    let idx = image::index(
        &[(&amd.manifest, Some(AMD64)), (&arm.manifest, Some(ARM64))],
        false,
        Value::Null,
    );
    let tar = archives::containerd_store(&[ContainerdSave {
        target: &idx,
        present: &[&amd],
        tags: &["app:1.0"],
    }]);
    let f = write(d.path(), "ctrd.tar", &tar);
    let l = d.path().join("l");
    let v = import(&f, &l);
    assert_eq!(
        v["images"][0]["digest"],
        idx.digest.to_string(),
        "the index digest is kept"
    );
    assert_eq!(v["images"][0]["refs"], serde_json::json!(["app:1.0"]));
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["digest"], arm.manifest.digest.to_string());
    assert_eq!(skipped[0]["platform"], "linux/arm64/v8");
    let o = run([
        "import".as_ref(),
        f.as_os_str(),
        d.path().join("l2").as_os_str(),
    ]);
    assert!(
        stderr(&o).contains("skipped linux/arm64/v8"),
        "{}",
        stderr(&o)
    );
    verify_clean(&l);
    // Layers stay compressed, with their registry digests.
    let i = json([
        "inspect".as_ref(),
        l.as_os_str(),
        "app:1.0".as_ref(),
        "--platform".as_ref(),
        "linux/amd64".as_ref(),
    ]);
    assert_eq!(i["layers"][0]["digest"], amd.layers[0].digest.to_string());
}

#[test]
fn skopeo_podman_and_crane_archives() {
    let d = empty_dir();
    let (a, b) = images(Compression::None);
    let f = write(
        d.path(),
        "skopeo.tar",
        &archives::skopeo_docker_archive(&[(&a, &["app:1.0"]), (&b, &["docker.io/team/b:3"])]),
    );
    let l = d.path().join("l");
    let v = import(&f, &l);
    let names: Vec<Value> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["refs"][0].clone())
        .collect();
    assert_eq!(
        names,
        [Value::from("app:1.0"), Value::from("team/b:3")],
        "fully qualified RepoTags become familiar refs"
    );
    assert_eq!(config_of(&l, "team/b:3"), b.config.digest.to_string());
    verify_clean(&l);

    let (ga, _) = images(Compression::Gzip);
    let f = write(
        d.path(),
        "crane.tar",
        &archives::crane_tarball(&[(&ga, &["app:1.0"])]),
    );
    let l = d.path().join("crane");
    import(&f, &l);
    let i = json(["inspect".as_ref(), l.as_os_str(), "app:1.0".as_ref()]);
    assert_eq!(i["config"]["digest"], ga.config.digest.to_string());
    for (k, layer) in i["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            layer["digest"],
            ga.layers[k].digest.to_string(),
            "compressed layers kept as they are"
        );
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    verify_clean(&l);
}

#[test]
fn compressed_archives_and_standard_input() {
    let d = empty_dir();
    let (a, _) = images(Compression::None);
    let tar = archives::docker_legacy(&[(&a, &["app:1.0"])]);
    for c in [Compression::Gzip, Compression::Zstd] {
        let f = write(d.path(), &format!("a.{c}"), &archives::compress(&tar, c));
        let l = d.path().join(format!("l-{c}"));
        let o = Command::new(bin())
            .args([
                "import".as_ref(),
                "-".as_ref(),
                l.as_os_str(),
                "--json".as_ref(),
            ])
            .stdin(std::fs::File::open(&f).unwrap())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["compression"], c.to_string());
        assert_eq!(config_of(&l, "app:1.0"), a.config.digest.to_string());
    }
}

#[test]
fn hostile_archives_give_one_clear_error_and_change_nothing() {
    let d = empty_dir();
    let dest = fixture("minimal");
    let before = snapshot(&dest.path);
    let cases = archives::malicious();
    assert!(cases.len() >= 14);
    for (name, bytes, what) in cases {
        let f = write(d.path(), &format!("{name}.tar"), &bytes);
        let t = std::time::Instant::now();
        let o = run(["import".as_ref(), f.as_os_str(), dest.path.as_os_str()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{name} ({what}): {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "{name} took {:?}",
            t.elapsed()
        );
        assert_eq!(
            snapshot(&dest.path),
            before,
            "{name} changed the destination"
        );
        assert_eq!(
            std::fs::read_dir(dest.path.join(".ocitool/tmp"))
                .map(|r| r.count())
                .unwrap_or(0),
            0,
            "{name}: staging left"
        );
        // Into a new directory: nothing is left behind at all.
        let fresh = d.path().join(format!("fresh-{name}"));
        let o = run(["import".as_ref(), f.as_os_str(), fresh.as_os_str()]);
        assert_eq!(o.status.code(), Some(3), "{name}");
        assert!(
            !fresh.exists(),
            "{name}: a failed import left {}",
            fresh.display()
        );
    }
    assert!(!Path::new("/etc/evil").exists());
    assert!(!d.path().join("evil").exists() && !d.path().parent().unwrap().join("evil").exists());
}

#[test]
fn hostile_errors_name_the_entry() {
    let d = empty_dir();
    let l = d.path().join("l");
    let by: std::collections::BTreeMap<&str, Vec<u8>> = archives::malicious()
        .into_iter()
        .map(|(n, b, _)| (n, b))
        .collect();
    let expect: &[(&str, &[&str])] = &[
        ("dotdot-entry", &["../evil", "'..'"]),
        ("absolute-entry", &["/etc/evil", "absolute"]),
        (
            "blob-symlink-etc-passwd",
            &["/etc/passwd", "leaves the archive"],
        ),
        ("symlink-escape", &["../../x", "leaves the archive"]),
        (
            "blob-hardlink-etc-passwd",
            &["/etc/passwd", "leaves the archive"],
        ),
        ("symlink-loop", &["link"]),
    ];
    for (name, needles) in expect {
        let f = write(d.path(), "x.tar", &by[name]);
        fails(
            3,
            needles,
            ["import".as_ref(), f.as_os_str(), l.as_os_str()],
        );
    }
    // A gzip'd archive whose one member declares 1 GiB of zeros: stopped by the ratio guard
    // long before the disk fills.
    let f = d.path().join("bomb.tar.gz");
    {
        use std::io::Write;
        let mut e = ocitool_compress::Encoder::new(
            Compression::Gzip,
            std::fs::File::create(&f).unwrap(),
            Default::default(),
        )
        .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000")
            .unwrap();
        h.set_size(1 << 30);
        h.set_mode(0o644);
        h.set_cksum();
        e.write_all(h.as_bytes()).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            e.write_all(&zeros).unwrap();
        }
        e.finish().unwrap();
    }
    assert!(std::fs::metadata(&f).unwrap().len() < 4 << 20);
    let t = std::time::Instant::now();
    fails(
        3,
        &["--max-ratio", "100:1"],
        ["import".as_ref(), f.as_os_str(), l.as_os_str()],
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
    assert!(!l.exists());
    // Raising the limit is possible (here the member then fails its promised digest).
    fails(
        3,
        &["promises"],
        [
            "import".as_ref(),
            f.as_os_str(),
            l.as_os_str(),
            "--max-ratio".as_ref(),
            "100000".as_ref(),
        ],
    );
}
