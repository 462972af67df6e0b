//! Layouts crafted by someone else: symlinks and special files where ocitool keeps its blobs
//! and state, and `index.json` entries that contradict each other. Nothing outside the layout
//! may be read, written or deleted, nothing may hang, and `gc` must never delete a blob that
//! any descriptor reaches.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use ocitool_digest::Digest;
use rustix::fs::{FileType, Mode};
use serde_json::json;

use crate::gc::{GcOptions, gc};
use crate::index::descriptor_value;
use crate::lock::WaitMode;
use crate::verify::{Scope, verify};
use crate::{Error, Layout, NoProgress, Options, Transaction};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

fn layout() -> (tempfile::TempDir, Layout) {
    let d = tempfile::tempdir().unwrap();
    let (l, _) = Layout::init(d.path().join("l"), Options::default()).unwrap();
    (d, l)
}

fn reopen(l: &Layout) -> Layout {
    Layout::open(l.root(), Options::default()).unwrap()
}

/// A directory outside the layout holding a digest-named file and another file: what a
/// symlink in the layout could expose.
fn outside(d: &Path) -> std::path::PathBuf {
    let o = d.join("outside");
    std::fs::create_dir_all(&o).unwrap();
    std::fs::write(o.join("precious"), b"keep me").unwrap();
    std::fs::write(o.join(Digest::sha256(b"x").encoded()), b"not a blob").unwrap();
    o
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

fn tag_tiny_image(l: &Layout, name: &str) -> serde_json::Value {
    let mut txn = Transaction::begin(l).unwrap();
    let layer = txn
        .stage_bytes(format!("layer of {name}").as_bytes(), None)
        .unwrap();
    let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest.to_string()]}}))
    .unwrap();
    let config = txn.stage_bytes(&config, None).unwrap();
    let manifest = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": descriptor_value(CONFIG, &config.digest, config.size),
        "layers": [descriptor_value(LAYER, &layer.digest, layer.size)]}))
    .unwrap();
    let m = txn.stage_bytes(&manifest, None).unwrap();
    let desc = descriptor_value(MANIFEST, &m.digest, m.size);
    let d2 = desc.clone();
    txn.commit(|ix| Ok(ix.set_ref(name, &d2))).unwrap();
    desc
}

#[test]
fn a_symlinked_state_directory_is_refused_and_gc_never_empties_its_target() {
    let (d, l) = layout();
    let o = outside(d.path());
    let tmp = l.root().join(".ocitool/tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    symlink(&o, &tmp).unwrap();
    let before = entries(&o);

    let err = Layout::open(l.root(), Options::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsafePath {
                kind: "symlink",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(".ocitool/tmp"), "{err}");
    // Even a Layout opened before the symlink appeared refuses to use it.
    let e = gc(&l, GcOptions::default()).unwrap_err();
    assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
    assert!(Transaction::begin(&l).is_err());
    assert_eq!(
        entries(&o),
        before,
        "nothing outside the layout was removed"
    );

    // The same with `.ocitool` itself a symlink.
    std::fs::remove_file(&tmp).unwrap();
    let state = l.root().join(".ocitool");
    std::fs::remove_dir_all(&state).unwrap();
    symlink(&o, &state).unwrap();
    assert!(gc(&l, GcOptions::default()).is_err());
    assert!(Transaction::begin(&l).is_err());
    assert!(l.read_lock().is_err());
    assert_eq!(entries(&o), before, "no lock file or tmp created outside");
}

#[test]
fn symlinked_lock_files_are_never_followed_or_created_through() {
    let (d, l) = layout();
    let o = outside(d.path());
    for name in ["gc.lock", "index.lock"] {
        let lock = l.root().join(".ocitool").join(name);
        let _ = std::fs::remove_file(&lock);
        let target = o.join(format!("created-by-{name}"));
        symlink(&target, &lock).unwrap();
        let err = match Transaction::begin(&l) {
            Err(e) => e,
            Ok(txn) => txn.commit(|ix| Ok(ix.set_ref("a:1", &json!({"mediaType": MANIFEST, "digest": Digest::sha256(b"").to_string(), "size": 0})))).unwrap_err(),
        };
        assert!(
            matches!(
                err,
                Error::UnsafePath {
                    kind: "symlink",
                    ..
                }
            ),
            "{name}: {err}"
        );
        assert!(
            !target.exists(),
            "{name}: no file created through the symlink"
        );
        assert!(matches!(
            Layout::open(l.root(), Options::default()),
            Err(Error::UnsafePath { .. })
        ));
        if name == "gc.lock" {
            assert!(matches!(
                gc(&l, GcOptions::default()),
                Err(Error::UnsafePath { .. })
            ));
        }
        assert!(
            !target.exists(),
            "{name}: no file created through the symlink"
        );
        std::fs::remove_file(&lock).unwrap();
    }
}

#[test]
fn a_fifo_lock_file_fails_fast_instead_of_hanging() {
    let (_d, l) = layout();
    let lock = l.root().join(".ocitool/gc.lock");
    let _ = std::fs::remove_file(&lock);
    mkfifo(&lock);
    let start = Instant::now();
    for wait in [WaitMode::Wait, WaitMode::NoWait] {
        let l2 = Layout::open_lenient(
            l.root(),
            Options {
                wait,
                ..Default::default()
            },
        )
        .unwrap()
        .0;
        let e = l2.read_lock().unwrap_err();
        assert!(matches!(e, Error::UnsafePath { kind: "fifo", .. }), "{e}");
        assert!(Transaction::begin(&l2).is_err());
        assert!(
            gc(
                &l2,
                GcOptions {
                    dry_run: true,
                    force: false
                }
            )
            .is_err()
        );
        let report = verify(&l2, Scope::Whole, &NoProgress).unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.path == ".ocitool/gc.lock" && p.problem.contains("fifo")),
            "{:?}",
            report.problems
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "nothing blocked on the fifo"
    );
}

#[test]
fn a_symlinked_blob_directory_is_reported_never_written_or_swept() {
    let (d, l) = layout();
    tag_tiny_image(&l, "app:1");
    let o = outside(d.path());
    let before = entries(&o);
    let real = l.root().join("blobs/sha256");
    std::fs::rename(&real, d.path().join("moved")).unwrap();
    symlink(&o, &real).unwrap();

    assert!(matches!(
        Layout::open(l.root(), Options::default()),
        Err(Error::UnsafePath { .. })
    ));
    let fresh = Layout::open_lenient(l.root(), Options::default())
        .unwrap()
        .0;
    let report = verify(&fresh, Scope::Whole, &NoProgress).unwrap();
    assert!(!report.ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.path == "blobs/sha256" && p.problem.contains("symlink")),
        "{:?}",
        report.problems
    );
    // A new blob is never written there, and gc never deletes there.
    let mut txn = Transaction::begin(&fresh).unwrap();
    let c = txn.stage_bytes(b"new blob", None).unwrap();
    let desc = descriptor_value(LAYER, &c.digest, c.size);
    assert!(txn.commit(|ix| Ok(ix.set_ref("new:1", &desc))).is_err());
    assert!(gc(&fresh, GcOptions::default()).is_err());
    assert!(
        gc(
            &fresh,
            GcOptions {
                dry_run: false,
                force: true
            }
        )
        .is_err()
    );
    assert_eq!(entries(&o), before, "nothing written or removed outside");
}

#[test]
fn a_layout_without_blobs_does_not_verify() {
    let (_d, l) = layout();
    std::fs::remove_dir_all(l.root().join("blobs")).unwrap();
    let report = verify(&reopen(&l), Scope::Whole, &NoProgress).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.path == "blobs" && p.problem.contains("missing")),
        "{:?}",
        report.problems
    );
}

/// An `index.json` entry that names an image's manifest as `application/octet-stream` before
/// the real ref: the walk must still read the manifest, so `gc` keeps its config and layers
/// and `verify` checks them, whatever the order of the entries.
#[test]
fn a_digest_reached_in_two_roles_is_walked_in_both() {
    for first_as_octets in [true, false] {
        let (_d, l) = layout();
        let desc = tag_tiny_image(&l, "app:1");
        let digest = desc["digest"].as_str().unwrap().to_string();
        let octets = json!({"mediaType": "application/octet-stream", "digest": digest, "size": desc["size"]});
        let mut text: serde_json::Value =
            serde_json::from_slice(&std::fs::read(l.root().join("index.json")).unwrap()).unwrap();
        let ms = text["manifests"].as_array_mut().unwrap();
        if first_as_octets {
            ms.insert(0, octets);
        } else {
            ms.push(octets);
        }
        std::fs::write(
            l.root().join("index.json"),
            serde_json::to_vec(&text).unwrap(),
        )
        .unwrap();
        let before = entries(&l.root().join("blobs/sha256"));
        assert_eq!(before.len(), 3);
        let report = gc(&reopen(&l), GcOptions::default()).unwrap();
        assert!(report.removed.is_empty(), "{:?}", report.removed);
        assert_eq!(entries(&l.root().join("blobs/sha256")), before);
        let v = verify(&reopen(&l), Scope::Whole, &NoProgress).unwrap();
        assert!(v.ok(), "{:?}", v.problems);
    }
}

#[test]
fn a_top_level_ref_to_an_absent_child_of_an_index_is_missing() {
    let (_d, l) = layout();
    let child = tag_tiny_image(&l, "app:1");
    let mut txn = Transaction::begin(&l).unwrap();
    let absent = json!({"mediaType": MANIFEST, "digest": Digest::sha256(b"absent").to_string(), "size": 6, "platform": {"os": "linux", "architecture": "arm64"}});
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX,
        "manifests": [child, absent]}))
    .unwrap();
    let ic = txn.stage_bytes(&index, None).unwrap();
    let idesc = descriptor_value(INDEX, &ic.digest, ic.size);
    txn.commit(|ix| Ok(ix.set_ref("multi:1", &idesc))).unwrap();
    // A sparse index is fine ...
    let v = verify(&reopen(&l), Scope::Whole, &NoProgress).unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    // ... but a top-level entry that names the absent child directly needs it, in either order.
    let mut text: serde_json::Value =
        serde_json::from_slice(&std::fs::read(l.root().join("index.json")).unwrap()).unwrap();
    text["manifests"]
        .as_array_mut()
        .unwrap()
        .push(absent.clone());
    std::fs::write(
        l.root().join("index.json"),
        serde_json::to_vec(&text).unwrap(),
    )
    .unwrap();
    let v = verify(&reopen(&l), Scope::Whole, &NoProgress).unwrap();
    let missing = Digest::sha256(b"absent");
    assert!(
        v.problems
            .iter()
            .any(|p| p.digest.as_ref() == Some(&missing) && p.problem.contains("missing")),
        "{:?}",
        v.problems
    );
}

/// OCI 1.1's empty blob `{}` is the config of an artifact here and named with the image-config
/// media type by another manifest there: each manifest is judged by its own descriptor, so the
/// report does not depend on which entry comes first.
#[test]
fn the_empty_blob_is_judged_in_each_of_its_roles_whatever_the_order() {
    let mut reports = Vec::new();
    for artifact_first in [true, false] {
        let (_d, l) = layout();
        let mut txn = Transaction::begin(&l).unwrap();
        let empty = txn.stage_bytes(b"{}", None).unwrap();
        let blob = txn.stage_bytes(b"payload", None).unwrap();
        let artifact = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MANIFEST,
            "artifactType": "application/vnd.example+type",
            "config": descriptor_value(EMPTY, &empty.digest, empty.size),
            "layers": [descriptor_value("application/vnd.example.payload", &blob.digest, blob.size)]}))
        .unwrap();
        // An image config `{}` with no layers: a valid (if odd) image.
        let image = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MANIFEST,
            "config": descriptor_value(CONFIG, &empty.digest, empty.size), "layers": []}))
        .unwrap();
        let a = txn.stage_bytes(&artifact, None).unwrap();
        let i = txn.stage_bytes(&image, None).unwrap();
        let (ad, id) = (
            descriptor_value(MANIFEST, &a.digest, a.size),
            descriptor_value(MANIFEST, &i.digest, i.size),
        );
        txn.commit(|ix| {
            if artifact_first {
                ix.set_ref("art:1", &ad);
                ix.set_ref("img:1", &id);
            } else {
                ix.set_ref("img:1", &id);
                ix.set_ref("art:1", &ad);
            }
            Ok(())
        })
        .unwrap();
        let v = verify(&reopen(&l), Scope::Whole, &NoProgress).unwrap();
        assert!(v.ok(), "artifact first: {artifact_first}: {:?}", v.problems);
        reports.push(v.checked);
    }
    assert_eq!(reports[0], reports[1]);
}

#[test]
fn a_gc_dry_run_creates_nothing() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("l");
    std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    std::fs::write(root.join("oci-layout"), crate::OCI_LAYOUT_CONTENT).unwrap();
    std::fs::write(
        root.join("index.json"),
        br#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let l = Layout::open(&root, Options::default()).unwrap();
    let r = gc(
        &l,
        GcOptions {
            dry_run: true,
            force: false,
        },
    )
    .unwrap();
    assert!(r.removed.is_empty());
    assert!(!root.join(".ocitool").exists(), "a dry run only reads");
}

#[test]
fn repair_replaces_a_damaged_blob_with_the_verified_copy() {
    let (_d, l) = layout();
    let desc = tag_tiny_image(&l, "app:1");
    let layer = Digest::sha256(b"layer of app:1");
    let path = l.blob_path(&layer);
    std::fs::write(&path, b"LAYER OF APP:1").unwrap(); // same size, other bytes
    let stage_again = |repair: bool| {
        let mut txn = Transaction::begin(&l).unwrap();
        txn.set_repair(repair);
        let c = ocitool_spec::views::Checked {
            digest: layer.clone(),
            size: 14,
        };
        if !txn.has_blob(&c).unwrap() {
            txn.stage_bytes(b"layer of app:1", Some(&c)).unwrap();
        }
        let d2 = desc.clone();
        txn.commit(|ix| Ok(ix.set_ref("app:1", &d2))).unwrap();
    };
    stage_again(false);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"LAYER OF APP:1",
        "present: kept"
    );
    stage_again(true);
    assert_eq!(std::fs::read(&path).unwrap(), b"layer of app:1", "repaired");
    let v = verify(&reopen(&l), Scope::Whole, &NoProgress).unwrap();
    assert!(v.ok(), "{:?}", v.problems);
}

/// The new `index.json` is written before any blob is put in place: when it cannot be
/// written (a full disk), the commit fails and leaves no new blob.
#[test]
fn a_commit_whose_index_cannot_be_written_leaves_no_new_blob() {
    let (_d, l) = layout();
    let before = entries(&l.root().join("blobs/sha256"));
    let mut txn = Transaction::begin(&l).unwrap();
    let c = txn.stage_bytes(b"a new layer", None).unwrap();
    let desc = descriptor_value(LAYER, &c.digest, c.size);
    crate::fsutil::FAIL_NEXT_PREPARE.with(|f| f.set(true));
    let err = txn.commit(|ix| Ok(ix.set_ref("a:1", &desc))).unwrap_err();
    assert!(err.to_string().contains("index.json"), "{err}");
    assert_eq!(entries(&l.root().join("blobs/sha256")), before);
}

/// An unlisted referrer (a signature whose `subject` is a listed image) that some entry names
/// in another role (as a config here) is still read as the manifest it is, so `gc` keeps
/// what it references.
#[test]
fn a_referrer_named_in_another_role_keeps_its_children() {
    let (_d, l) = layout();
    let subject = tag_tiny_image(&l, "app:1");
    let mut txn = Transaction::begin(&l).unwrap();
    let empty = txn.stage_bytes(b"{}", None).unwrap();
    let sig = txn.stage_bytes(b"signature", None).unwrap();
    let referrer = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "artifactType": "application/vnd.example.sig",
        "config": descriptor_value(EMPTY, &empty.digest, empty.size),
        "layers": [descriptor_value("application/vnd.example.sig", &sig.digest, sig.size)],
        "subject": subject}))
    .unwrap();
    let r = txn.stage_bytes(&referrer, None).unwrap();
    let as_config = descriptor_value(CONFIG, &r.digest, r.size);
    txn.commit(|ix| {
        ix.ensure_listed(&as_config);
        Ok(())
    })
    .unwrap();
    let report = gc(
        &reopen(&l),
        GcOptions {
            dry_run: true,
            force: true,
        },
    )
    .unwrap();
    let removed: Vec<&Digest> = report.removed.iter().map(|(d, _)| d).collect();
    assert!(!removed.contains(&&empty.digest), "{removed:?}");
    assert!(!removed.contains(&&sig.digest), "{removed:?}");
}
