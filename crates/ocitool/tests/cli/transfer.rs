//! copy, pack, unpack, inventory and delta bundles.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

fn blob_files(l: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(l.join("blobs/sha256"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn copy_all_refs_keeps_every_digest_and_skips_what_is_there() {
    let fx = fixture("multi-arch");
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "multi:1.0".as_ref(),
        "app:1.0".as_ref(),
    ]);
    let dst = fx.dir.path().join("dst");
    let v = json(["copy".as_ref(), fx.path.as_os_str(), dst.as_os_str()]);
    assert_eq!(v["copied"], 9);
    assert_eq!(v["skipped"], 0);
    assert_eq!(refs(&dst), refs(&fx.path));
    assert_eq!(blob_files(&dst), blob_files(&fx.path));
    verify_clean(&dst);
    let again = json(["copy".as_ref(), fx.path.as_os_str(), dst.as_os_str()]);
    assert_eq!(again["copied"], 0);
    assert_eq!(again["skipped"], 9);
}

#[test]
fn copy_carries_referrers_listed_or_not_unless_told_not_to() {
    let fx = fixture("artifact");
    let (_, img, sbom, sig) = ocitool_testkit::fixtures::artifact();
    let dst = fx.dir.path().join("dst");
    ok([
        "copy".as_ref(),
        fx.path.as_os_str(),
        dst.as_os_str(),
        "app:signed".as_ref(),
    ]);
    for d in [&img.manifest.digest, &sbom.digest, &sig.digest] {
        assert!(blob_path(&dst, &d.to_string()).exists(), "{d} not copied");
    }
    assert_eq!(refs(&dst).keys().collect::<Vec<_>>(), ["app:signed"]);
    // gc at the destination keeps them: their subject is live.
    let g = json(["gc".as_ref(), dst.as_os_str()]);
    assert_eq!(g["removed"], serde_json::json!([]));
    verify_clean(&dst);
    let bare = fx.dir.path().join("bare");
    ok([
        "copy".as_ref(),
        fx.path.as_os_str(),
        bare.as_os_str(),
        "app:signed".as_ref(),
        "--no-referrers".as_ref(),
    ]);
    assert!(!blob_path(&bare, &sbom.digest.to_string()).exists());
    assert!(!blob_path(&bare, &sig.digest.to_string()).exists());
    assert_eq!(blob_files(&bare).len(), img.blobs().len());
}

#[test]
fn copy_one_platform_points_the_ref_at_that_manifest_unchanged() {
    let fx = fixture("multi-arch");
    let (_, _, arm, _) = ocitool_testkit::fixtures::multi_arch();
    let dst = fx.dir.path().join("dst");
    ok([
        "copy".as_ref(),
        fx.path.as_os_str(),
        dst.as_os_str(),
        "multi:1.0".as_ref(),
        "--platform".as_ref(),
        "linux/arm64".as_ref(),
    ]);
    assert_eq!(refs(&dst)["multi:1.0"], arm.manifest.digest.to_string());
    assert_eq!(blob_files(&dst).len(), arm.blobs().len());
    assert_eq!(
        std::fs::read(blob_path(&dst, &arm.manifest.digest.to_string())).unwrap(),
        arm.manifest.bytes
    );
    verify_clean(&dst);
}

#[test]
fn copy_link_hard_links_blobs() {
    use std::os::unix::fs::MetadataExt;
    let fx = fixture("minimal");
    let dst = fx.dir.path().join("dst");
    let v = json([
        "copy".as_ref(),
        fx.path.as_os_str(),
        dst.as_os_str(),
        "--link".as_ref(),
    ]);
    assert_eq!(v["methods"], serde_json::json!(["hard link"]));
    for b in blob_files(&fx.path) {
        let a = std::fs::metadata(fx.path.join("blobs/sha256").join(&b)).unwrap();
        let c = std::fs::metadata(dst.join("blobs/sha256").join(&b)).unwrap();
        assert_eq!(
            (a.dev(), a.ino()),
            (c.dev(), c.ino()),
            "{b} is not a hard link"
        );
    }
    verify_clean(&dst);
}

#[test]
fn a_corrupt_source_blob_stops_the_copy_and_a_rerun_resumes() {
    let fx = fixture("minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    // Add a few bigger layers so the copy has work to interrupt.
    let dst = fx.dir.path().join("dst");
    let cfg_path = blob_path(&fx.path, &img.config.digest.to_string());
    let good = std::fs::read(&cfg_path).unwrap();
    let mut bad = good.clone();
    bad[10] ^= 1;
    std::fs::write(&cfg_path, &bad).unwrap();
    let err = fails(
        3,
        &[&img.config.digest.to_string()],
        ["copy".as_ref(), fx.path.as_os_str(), dst.as_os_str()],
    );
    assert!(err.contains("blobs/sha256"), "{err}");
    // Refs did not change; blobs that were verified may already be there.
    let idx = index_json(&dst);
    assert_eq!(idx["manifests"], serde_json::json!([]));
    let arrived = blob_files(&dst).len();
    std::fs::write(&cfg_path, &good).unwrap();
    let v = json(["copy".as_ref(), fx.path.as_os_str(), dst.as_os_str()]);
    assert_eq!(
        v["copied"].as_u64().unwrap() as usize + arrived,
        img.blobs().len()
    );
    assert_eq!(v["skipped"].as_u64().unwrap() as usize, arrived);
    verify_clean(&dst);
}

/// Pack and export copy blobs with the kernel and hash them on other threads: a layer whose
/// bytes changed (same size) still fails the archive, naming the blob, whether it goes to a
/// file (no file left) or to standard output.
#[test]
fn pack_and_export_refuse_a_layer_whose_bytes_changed() {
    let fx = fixture("minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    let layer = img.layers[1].digest.to_string();
    let p = blob_path(&fx.path, &layer);
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&p, &bytes).unwrap();
    let out = fx.dir.path().join("x.tar");
    for cmd in ["pack", "export"] {
        let mut args: Vec<&std::ffi::OsStr> = vec![cmd.as_ref(), fx.path.as_os_str()];
        if cmd == "export" {
            args.push("app:1.0".as_ref());
        }
        let mut to_file = args.clone();
        to_file.extend(["-o".as_ref(), out.as_os_str()]);
        let err = fails(3, &[&layer], &to_file);
        assert!(err.starts_with("error:"), "{err}");
        assert!(!out.exists(), "{cmd} left {}", out.display());
        let mut to_stdout = args.clone();
        to_stdout.extend([std::ffi::OsStr::new("-o"), std::ffi::OsStr::new("-")]);
        fails(3, &[&layer], &to_stdout);
    }
}

fn pack(fx: &Fx, args: &[&str], name: &str) -> PathBuf {
    let out = fx.dir.path().join(name);
    let mut a: Vec<&std::ffi::OsStr> = vec!["pack".as_ref(), fx.path.as_os_str()];
    a.extend(args.iter().map(std::ffi::OsStr::new));
    a.extend(["-o".as_ref(), out.as_os_str()]);
    ok(&a);
    out
}

#[test]
fn pack_then_unpack_keeps_every_digest_and_ref() {
    for name in [
        "multi-arch",
        "nested-index",
        "artifact",
        "docker-v2s2",
        "unknown-fields",
        "sparse-index",
    ] {
        let fx = fixture(name);
        let a = pack(&fx, &[], "a.tar");
        let b = pack(&fx, &[], "b.tar");
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{name}: pack is deterministic"
        );
        // The pack is itself an OCI layout.
        let x = fx.dir.path().join("x");
        std::fs::create_dir(&x).unwrap();
        sh(Command::new("tar").arg("xf").arg(&a).arg("-C").arg(&x));
        verify_clean(&x);
        let dst = fx.dir.path().join("dst");
        ok(["unpack".as_ref(), a.as_os_str(), dst.as_os_str()]);
        verify_clean(&dst);
        let src_idx = index_json(&fx.path)["manifests"].clone();
        let dst_idx = index_json(&dst)["manifests"].clone();
        assert_eq!(
            dst_idx, src_idx,
            "{name}: index.json descriptors kept verbatim"
        );
        assert_eq!(blob_files(&dst), blob_files(&fx.path), "{name}");
        let snap = snapshot(&dst);
        ok(["unpack".as_ref(), a.as_os_str(), dst.as_os_str()]);
        assert_eq!(
            snapshot(&dst),
            snap,
            "{name}: unpacking again changes nothing"
        );
    }
}

#[test]
fn pack_of_named_refs_carries_only_what_they_reach() {
    let fx = fixture("multi-arch");
    let (_, amd, _, _) = ocitool_testkit::fixtures::multi_arch();
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        amd.manifest.digest.to_string().as_ref(),
        "amd:1".as_ref(),
    ]);
    let a = pack(&fx, &["amd:1"], "a.tar");
    let names: Vec<String> = sh(Command::new("tar").arg("tf").arg(&a))
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("blobs/sha256/") && n.len() > 14)
            .count(),
        amd.blobs().len()
    );
    let dst = fx.dir.path().join("dst");
    ok(["unpack".as_ref(), a.as_os_str(), dst.as_os_str()]);
    assert_eq!(refs(&dst).keys().collect::<Vec<_>>(), ["amd:1"]);
}

#[test]
fn unpack_from_stdin_compressed() {
    let fx = fixture("minimal");
    let a = pack(&fx, &[], "a.tar");
    let z = fx.dir.path().join("a.tar.zst");
    sh(Command::new("zstd").arg("-q").arg(&a).arg("-o").arg(&z));
    let dst = fx.dir.path().join("dst");
    let o = Command::new(bin())
        .args(["unpack".as_ref(), "-".as_ref(), dst.as_os_str()])
        .stdin(std::fs::File::open(&z).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    verify_clean(&dst);
    assert!(refs(&dst).contains_key("app:1.0"));
}

#[test]
fn unpack_refuses_a_docker_archive_and_a_tampered_blob() {
    let fx = fixture("minimal");
    let docker = fx.dir.path().join("d.tar");
    // A docker-save archive without the OCI part.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "manifest.json", &b"[]"[..]).unwrap();
    std::fs::write(&docker, b.into_inner().unwrap()).unwrap();
    let dst = fx.dir.path().join("dst");
    fails(
        3,
        &["not an oci-archive", "ocitool import"],
        ["unpack".as_ref(), docker.as_os_str(), dst.as_os_str()],
    );
    assert!(!dst.exists());

    // A blob whose bytes do not match its name.
    let a = pack(&fx, &[], "a.tar");
    let x = fx.dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    sh(Command::new("tar").arg("xf").arg(&a).arg("-C").arg(&x));
    let img = ocitool_testkit::fixtures::minimal_image();
    let layer = blob_path(&x, &img.layers[0].digest.to_string());
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();
    let tampered = fx.dir.path().join("t.tar");
    sh(Command::new("tar")
        .arg("cf")
        .arg(&tampered)
        .arg("-C")
        .arg(&x)
        .arg("."));
    let target = fixture("multi-arch");
    let before = snapshot(&target.path);
    fails(
        3,
        &[img.layers[0].digest.encoded(), "promises"],
        [
            "unpack".as_ref(),
            tampered.as_os_str(),
            target.path.as_os_str(),
        ],
    );
    assert_eq!(snapshot(&target.path), before);
}

/// A v2 sharing 4 of 5 layers with v1: the delta is about the size of the one new layer, and
/// the receiver ends with v2 verifying clean.
#[test]
fn a_delta_bundle_carries_only_what_the_receiver_lacks() {
    use ocitool_compress::Compression;
    use ocitool_testkit::{Image, LayoutWriter, Rng};
    let mut rng = Rng::new(99);
    let mut layer = |n: usize| {
        let mut data = vec![0u8; n];
        rng.fill(&mut data);
        ocitool_testkit::tarball::build(&[(
            "data.bin",
            ocitool_testkit::tarball::Content::File(&data),
        )])
    };
    let shared: Vec<Vec<u8>> = (0..4).map(|_| layer(512 << 10)).collect();
    let mut v1_tars = shared.clone();
    v1_tars.push(layer(256 << 10));
    let mut v2_tars = shared.clone();
    v2_tars.push(layer(300 << 10));
    let plat = ("linux", "amd64", None);
    let v1 = Image::from_tars(
        &v1_tars,
        plat,
        Compression::Gzip,
        false,
        Value::Null,
        Value::Null,
    );
    let v2 = Image::from_tars(
        &v2_tars,
        plat,
        Compression::Gzip,
        false,
        Value::Null,
        Value::Null,
    );
    let d = empty_dir();
    let sender = d.path().join("sender");
    let mut w = LayoutWriter::new();
    w.add_image(&v1)
        .add_image(&v2)
        .list(&v1.manifest, Some("app:v1"))
        .list(&v2.manifest, Some("app:v2"));
    w.write(&sender).unwrap();
    let receiver = d.path().join("receiver");
    let mut w = LayoutWriter::new();
    w.add_image(&v1).list(&v1.manifest, Some("app:v1"));
    w.write(&receiver).unwrap();

    let inv = d.path().join("inventory.json");
    ok([
        "inventory".as_ref(),
        receiver.as_os_str(),
        "-o".as_ref(),
        inv.as_os_str(),
    ]);
    let iv: Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    assert_eq!(iv["mediaType"], "application/vnd.ocitool.inventory.v1+json");
    assert_eq!(iv["blobs"].as_array().unwrap().len(), v1.blobs().len());
    let delta = d.path().join("delta.tar");
    let v = json([
        "pack".as_ref(),
        sender.as_os_str(),
        "app:v2".as_ref(),
        "--exclude-inventory".as_ref(),
        inv.as_os_str(),
        "-o".as_ref(),
        delta.as_os_str(),
    ]);
    assert_eq!(v["excluded"], 4);
    let new_layer = v2.layers[4].size();
    let size = std::fs::metadata(&delta).unwrap().len();
    assert!(
        size > new_layer && size < new_layer + 16 * 1024,
        "delta is {size} bytes, new layer {new_layer}"
    );
    let full = d.path().join("full.tar");
    ok([
        "pack".as_ref(),
        sender.as_os_str(),
        "app:v2".as_ref(),
        "-o".as_ref(),
        full.as_os_str(),
    ]);
    assert!(
        std::fs::metadata(&full).unwrap().len() > 4 * size,
        "the delta saves the shared layers"
    );

    // Into an empty layout it cannot resolve: every missing digest named, nothing changed.
    let empty = d.path().join("empty");
    ok(["init".as_ref(), empty.as_os_str()]);
    let before = snapshot(&empty);
    let err = fails(
        3,
        &["neither in the archive nor in the layout"],
        ["unpack".as_ref(), delta.as_os_str(), empty.as_os_str()],
    );
    for l in &v2.layers[..4] {
        assert!(
            err.contains(&l.digest.to_string()),
            "{} not named: {err}",
            l.digest
        );
    }
    assert!(
        !err.contains(&v2.layers[4].digest.to_string()),
        "the new layer is in the bundle"
    );
    assert_eq!(snapshot(&empty), before);

    ok(["unpack".as_ref(), delta.as_os_str(), receiver.as_os_str()]);
    verify_clean(&receiver);
    let r = refs(&receiver);
    assert_eq!(r["app:v2"], v2.manifest.digest.to_string());
    assert_eq!(r["app:v1"], v1.manifest.digest.to_string());
}

#[test]
fn progress_goes_to_a_terminal_only() {
    if !have("script") {
        eprintln!("SKIPPED: `script` (util-linux) is not installed; cannot run under a terminal");
        return;
    }
    let fx = fixture("multi-arch");
    let a = fx.dir.path().join("a.tar");
    // Not a terminal: nothing on stderr but the summary.
    let o = run([
        "pack".as_ref(),
        fx.path.as_os_str(),
        "-o".as_ref(),
        a.as_os_str(),
    ]);
    assert!(
        !stderr(&o).contains('\u{1b}') && !stderr(&o).contains('\r'),
        "{:?}",
        stderr(&o)
    );
    // A terminal: a bar with bytes and rate.
    let cmd = format!("{} pack {} -o {}", bin(), fx.path.display(), a.display());
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("export") || text.contains("B/s") || text.contains("packed"),
        "{text}"
    );
    let quiet = Command::new("script")
        .args(["-qec", &format!("{cmd} --quiet"), "/dev/null"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&quiet.stdout).trim().is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stdout)
    );
}
