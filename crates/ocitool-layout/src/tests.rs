//! Unit tests of the layout library: transactions, locks, the graph, resolution.

use std::path::Path;

use ocitool_digest::{Algorithm, Digest};
use ocitool_spec::tags::Policy;
use ocitool_spec::views::Checked;
use serde_json::json;

use crate::graph::{Graph, Presence, WalkOptions};
use crate::index::descriptor_value;
use crate::lock::WaitMode;
use crate::{Error, Layout, Options, Transaction, resolve};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

fn layout() -> (tempfile::TempDir, Layout) {
    let d = tempfile::tempdir().unwrap();
    let (l, created) = Layout::init(d.path().join("l"), Options::default()).unwrap();
    assert!(created);
    (d, l)
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Stages a tiny image (config, one layer, manifest) and returns the manifest's descriptor.
fn stage_image(txn: &mut Transaction<'_>, seed: &str) -> serde_json::Value {
    let layer = format!("layer {seed}").into_bytes();
    let l = txn.stage_bytes(&layer, None).unwrap();
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l.digest.to_string()]}});
    let config = serde_json::to_vec(&config).unwrap();
    let c = txn.stage_bytes(&config, None).unwrap();
    let m = json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": descriptor_value(CONFIG, &c.digest, c.size),
        "layers": [descriptor_value(LAYER, &l.digest, l.size)]});
    let m = serde_json::to_vec(&m).unwrap();
    let mc = txn.stage_bytes(&m, None).unwrap();
    descriptor_value(MANIFEST, &mc.digest, mc.size)
}

#[test]
fn nothing_is_visible_before_commit_and_a_failed_edit_publishes_nothing() {
    let (_d, l) = layout();
    let mut txn = Transaction::begin(&l).unwrap();
    let desc = stage_image(&mut txn, "a");
    assert!(
        files(l.root()).is_empty(),
        "staged blobs are not in blobs/ yet"
    );
    let r = txn.commit(|_| -> crate::Result<()> { Err(Error::Invalid("refused".into())) });
    assert!(r.is_err());
    assert!(files(l.root()).is_empty(), "a refused edit leaves no blob");
    assert_eq!(
        std::fs::read_dir(l.root().join(".ocitool/tmp"))
            .unwrap()
            .count(),
        0,
        "staging removed"
    );

    let mut txn = Transaction::begin(&l).unwrap();
    let desc2 = stage_image(&mut txn, "a");
    assert_eq!(desc, desc2);
    txn.commit(|idx| {
        idx.set_ref("app:1", &desc);
        Ok(())
    })
    .unwrap();
    assert_eq!(files(l.root()).len(), 3);
    assert_eq!(
        l.read_index().unwrap().ref_digests()["app:1"],
        desc["digest"].as_str().unwrap()
    );
}

#[test]
fn expected_digests_and_sizes_are_enforced_while_staging() {
    let (_d, l) = layout();
    let mut txn = Transaction::begin(&l).unwrap();
    let good = Checked {
        digest: Digest::sha256(b"hello"),
        size: 5,
    };
    let err = txn
        .stage_reader(&b"hellp"[..], Algorithm::Sha256, Some(&good))
        .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    let err = txn
        .stage_reader(&b"hello!"[..], Algorithm::Sha256, Some(&good))
        .unwrap_err();
    assert!(err.to_string().contains("size"), "{err}");
    // an endless stream is stopped at the declared size
    let err = txn
        .stage_reader(std::io::repeat(0), Algorithm::Sha256, Some(&good))
        .unwrap_err();
    assert!(err.to_string().contains("longer"), "{err}");
    assert_eq!(
        txn.stage_reader(&b"hello"[..], Algorithm::Sha256, Some(&good))
            .unwrap(),
        good
    );
}

#[test]
fn a_large_blob_is_hashed_on_a_second_thread_correctly() {
    let (_d, l) = layout();
    let data: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 251) as u8).collect();
    let mut txn = Transaction::begin(&l).unwrap();
    let got = txn
        .stage_reader(&data[..], Algorithm::Sha256, None)
        .unwrap();
    assert_eq!(got.digest, Digest::sha256(&data));
    let got = txn
        .stage_reader(&data[..], Algorithm::Sha512, None)
        .unwrap();
    assert_eq!(got.digest, Digest::of(Algorithm::Sha512, &data));
}

/// Large blobs of a durable layout go to the disk directly in aligned chunks from a helper
/// thread after the first `PIPE_AFTER` bytes; the file must hold exactly what was written,
/// whatever the sizes of the writes and wherever the blob ends relative to a chunk.
#[test]
fn large_blobs_land_byte_for_byte_whatever_the_write_sizes() {
    use std::io::Write;
    const MIB: usize = 1 << 20;
    for durable in [true, false] {
        let d = tempfile::tempdir().unwrap();
        let options = Options {
            durable,
            ..Options::default()
        };
        let (l, _) = Layout::init(d.path().join("l"), options).unwrap();
        let sizes = [
            4 * MIB,
            4 * MIB + 1,
            5 * MIB,
            5 * MIB + 4095,
            7 * MIB + 12_345,
            13 * MIB + 4096,
        ];
        let writes = [1usize, 4095, 65_536, MIB + 3, 3 * MIB];
        let mut txn = Transaction::begin(&l).unwrap();
        let mut made = vec![];
        for (i, size) in sizes.into_iter().enumerate() {
            let data: Vec<u8> = (0..size)
                .map(|j| ((j * 7 + i * 13 + j / 4093) % 256) as u8)
                .collect();
            let mut w = txn.blob_writer(Algorithm::Sha256).unwrap();
            let mut rest = &data[..];
            let mut k = i;
            while !rest.is_empty() {
                let n = writes[k % writes.len()].min(rest.len());
                w.write_all(&rest[..n]).unwrap();
                rest = &rest[n..];
                k += 1;
            }
            if i % 2 == 0 {
                // Completing early (as convert does) gives the same blob, and no more writes.
                w.complete().unwrap();
                assert!(w.write_all(b"x").is_err());
            }
            let got = txn.finish_blob(w, None).unwrap();
            assert_eq!(
                got.digest,
                Digest::sha256(&data),
                "size {size}, durable {durable}"
            );
            assert_eq!(got.size, size as u64);
            made.push((got, data));
        }
        txn.commit(|_| Ok(())).unwrap();
        for (c, data) in made {
            let on_disk = std::fs::read(l.blob_path(&c.digest)).unwrap();
            assert!(
                on_disk == data,
                "{} differs on disk (durable {durable})",
                c.digest
            );
        }
    }
}

#[test]
fn commit_refuses_a_descriptor_whose_blob_is_absent() {
    let (_d, l) = layout();
    let mut txn = Transaction::begin(&l).unwrap();
    let real = stage_image(&mut txn, "real");
    let ghost = descriptor_value(MANIFEST, &Digest::sha256(b"ghost"), 5);
    let err = txn
        .commit(|idx| {
            idx.set_ref("ok", &real);
            idx.set_ref("x", &ghost);
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::MissingBlob { .. }), "{err}");
    assert!(l.read_index().unwrap().is_empty());
    assert!(
        files(l.root()).is_empty(),
        "no staged blob installed by a refused commit"
    );
}

#[test]
fn protected_tags_are_enforced_inside_the_locked_edit() {
    let (_d, l) = layout();
    let mut txn = Transaction::begin(&l).unwrap();
    let a = stage_image(&mut txn, "a");
    let b = stage_image(&mut txn, "b");
    txn.commit(|idx| {
        idx.set_ref("app:1.0.0", &a);
        idx.set_ref("app:latest", &a);
        idx.set_policy(&Policy {
            semver: true,
            ..Default::default()
        })?;
        Ok(())
    })
    .unwrap();
    let move_to_b = |force: bool| {
        let mut txn = Transaction::begin(&l).unwrap();
        txn.set_force(force);
        txn.commit(|idx| {
            idx.set_ref("app:1.0.0", &b);
            idx.set_ref("app:latest", &b);
            Ok(())
        })
    };
    let err = move_to_b(false).unwrap_err();
    assert!(
        matches!(err, Error::Protected { ref name, .. } if name == "app:1.0.0"),
        "{err}"
    );
    assert_eq!(
        l.read_index().unwrap().ref_digests()["app:latest"],
        a["digest"].as_str().unwrap(),
        "all or nothing"
    );
    // A dry run (check_edit) refuses what commit refuses, and writes nothing either way.
    let before = std::fs::read(l.index_path()).unwrap();
    let dry = |force: bool| {
        let mut idx = l.read_index().unwrap();
        crate::txn::check_edit(&mut idx, force, |idx| {
            idx.set_ref("app:1.0.0", &b);
            Ok(())
        })
    };
    assert!(
        matches!(dry(false).unwrap_err(), Error::Protected { ref name, .. } if name == "app:1.0.0")
    );
    dry(true).unwrap();
    assert_eq!(std::fs::read(l.index_path()).unwrap(), before);
    move_to_b(true).unwrap();
    assert_eq!(
        l.read_index().unwrap().ref_digests()["app:1.0.0"],
        b["digest"].as_str().unwrap()
    );
}

#[test]
fn no_wait_reports_a_held_lock() {
    let (_d, l) = layout();
    let held = l
        .state
        .acquire(crate::lock::LockName::Gc, true, WaitMode::Wait)
        .unwrap();
    let l2 = Layout::open(
        l.root(),
        Options {
            wait: WaitMode::NoWait,
            ..Default::default()
        },
    )
    .unwrap();
    let err = Transaction::begin(&l2).err().unwrap();
    assert!(err.is_locked(), "{err}");
    // Readers take the lock shared only if it exists, never creating files.
    assert!(l2.read_lock().err().unwrap().is_locked());
    drop(held);
    assert!(Transaction::begin(&l2).is_ok());
}

/// A `gc` waiting for the lock must never find a live writer's staging directory: the writer
/// removes it before it lets the lock go (a `gc` would otherwise sweep it as stale, or fail on
/// it). Many staged files make the removal slow enough that the old order was always caught.
#[test]
fn a_writer_removes_its_staging_directory_before_releasing_the_gc_lock() {
    let (_d, l) = layout();
    let mut txn = Transaction::begin(&l).unwrap();
    for i in 0..2000 {
        txn.stage_bytes(format!("blob {i}").as_bytes(), None)
            .unwrap();
    }
    let staging = txn.staging_path().unwrap();
    assert!(staging.is_dir());
    let gc_lock = l.root().join(".ocitool/gc.lock");
    let (ready, wait) = std::sync::mpsc::channel();
    let gc = std::thread::spawn(move || {
        let f = std::fs::File::open(&gc_lock).unwrap();
        ready.send(()).unwrap();
        f.lock().unwrap(); // what `gc` does: exclusive, after every writer
        staging.exists()
    });
    wait.recv().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!gc.is_finished(), "gc must wait for the writer");
    drop(txn);
    assert!(
        !gc.join().unwrap(),
        "gc got the lock while the writer's staging directory still existed"
    );
}

#[test]
fn the_graph_finds_children_sparse_children_and_referrers() {
    let (_d, l) = layout();
    let mut txn = Transaction::begin(&l).unwrap();
    let img = stage_image(&mut txn, "x");
    let missing = descriptor_value(MANIFEST, &Digest::sha256(b"not here"), 8);
    let mut child = img.clone();
    child["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let mut absent = missing.clone();
    absent["platform"] = json!({"os": "linux", "architecture": "arm64"});
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [child, absent]});
    let ic = txn
        .stage_bytes(&serde_json::to_vec(&index).unwrap(), None)
        .unwrap();
    // A referrer of the image, listed nowhere.
    let empty = txn.stage_bytes(b"{}", None).unwrap();
    let sig = json!({"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": "application/x-sig",
        "config": descriptor_value("application/vnd.oci.empty.v1+json", &empty.digest, 2),
        "layers": [], "subject": img});
    let sc = txn
        .stage_bytes(&serde_json::to_vec(&sig).unwrap(), None)
        .unwrap();
    let idesc = descriptor_value(
        "application/vnd.oci.image.index.v1+json",
        &ic.digest,
        ic.size,
    );
    txn.commit(|idx| {
        idx.set_ref("multi", &idesc);
        Ok(())
    })
    .unwrap();
    let index = l.read_index().unwrap();
    let opts = WalkOptions {
        read_configs: true,
        check_presence: true,
    };
    let mut g = Graph::walk_index(&l, &index, opts);
    assert!(g.problems.is_empty(), "{:?}", g.problems);
    let absent_d = Digest::parse(missing["digest"].as_str().unwrap()).unwrap();
    assert_eq!(g.nodes[&absent_d].presence, Presence::AbsentAllowed);
    assert_eq!(g.platforms_of(&ic.digest).len(), 2);
    assert!(!g.nodes.contains_key(&sc.digest));
    g.add_unlisted_referrers(&l, &crate::graph::list_blobs(&l).unwrap(), opts);
    assert_eq!(g.unlisted_referrers, vec![sc.digest.clone()]);
    let all = g.closure(std::slice::from_ref(&ic.digest), true);
    assert!(all.contains(&sc.digest) && all.contains(&empty.digest));
    assert!(
        !g.closure(std::slice::from_ref(&ic.digest), false)
            .contains(&sc.digest)
    );
    // gc keeps the unlisted referrer of a live image.
    let plan = crate::gc::plan(&l, &index, false).unwrap();
    assert!(plan.removed.is_empty(), "{:?}", plan.removed);
    // A child of an index resolves by digest, with its platform.
    let img_d = img["digest"].as_str().unwrap();
    let t = resolve::resolve(&l, &index, img_d).unwrap();
    assert_eq!(t.descriptor["platform"]["architecture"], "amd64");
    let host =
        resolve::select_platform(&g, &ic.digest, Some(&"linux/amd64".parse().unwrap())).unwrap();
    assert_eq!(host.to_string(), img_d);
    let err = resolve::select_platform(&g, &ic.digest, Some(&"linux/s390x".parse().unwrap()))
        .unwrap_err();
    assert!(err.to_string().contains("linux/arm64"), "{err}");
}

#[test]
fn names_resolve_by_ref_name_then_containerd_name_then_familiar_form() {
    let (_d, l) = layout();
    let mut txn = Transaction::begin(&l).unwrap();
    let a = stage_image(&mut txn, "a");
    let b = stage_image(&mut txn, "b");
    let mut docker = a.clone();
    docker["annotations"] = json!({"org.opencontainers.image.ref.name": "latest", "io.containerd.image.name": "docker.io/library/busybox:latest"});
    txn.commit(|idx| {
        idx.put_verbatim(&docker);
        idx.set_ref("busybox:latest", &b);
        Ok(())
    })
    .unwrap();
    let index = l.read_index().unwrap();
    let d = |r: &str| resolve::resolve(&l, &index, r).map(|t| t.digest.to_string());
    assert_eq!(d("latest").unwrap(), a["digest"].as_str().unwrap());
    // ref.name wins over the familiar containerd name
    assert_eq!(d("busybox:latest").unwrap(), b["digest"].as_str().unwrap());
    assert_eq!(
        d("docker.io/library/busybox:latest").unwrap(),
        a["digest"].as_str().unwrap()
    );
    let err = d("busybox:1").unwrap_err().to_string();
    assert!(
        err.contains("busybox:latest"),
        "a hint names the close match: {err}"
    );
}

#[test]
fn twins_are_one_entry_and_lookups_take_what_people_type() {
    let (_d, l) = layout();
    let mut txn = Transaction::begin(&l).unwrap();
    let a = stage_image(&mut txn, "a");
    let b = stage_image(&mut txn, "b");
    let (da, db) = (a["digest"].as_str().unwrap(), b["digest"].as_str().unwrap());
    txn.commit(|idx| {
        assert_eq!(idx.set_ref("docker.io/library/app:1", &a), None);
        // A twin replaces the entry, stored as given; the previous digest is the twin's.
        assert_eq!(idx.set_ref("app:1", &b).as_deref(), Some(da));
        idx.set_ref("app:latest", &a);
        Ok(())
    })
    .unwrap();
    let index = l.read_index().unwrap();
    let names: Vec<_> = index.keys().filter_map(|k| k.ref_name).collect();
    assert_eq!(names, ["app:1", "app:latest"]);
    let found = |r: &str| resolve::resolve_named(&l, &index, r);
    // No tag means :latest, carried under the stored name; an exact name as typed.
    let r = found("app").unwrap();
    assert_eq!(
        (r.target.digest.to_string().as_str(), r.name.as_deref()),
        (da, Some("app:latest"))
    );
    let r = found("index.docker.io/library/app:1").unwrap();
    assert_eq!(
        (r.target.digest.to_string().as_str(), r.name.as_deref()),
        (db, Some("app:1"))
    );
    assert_eq!(found("app:1").unwrap().name.as_deref(), Some("app:1"));
    // name@digest and a digest prefix name a digest, unnamed.
    let r = found(&format!("app@{db}")).unwrap();
    assert_eq!((r.target.digest.to_string().as_str(), r.name), (db, None));
    let r = found(&db[..7 + resolve::MIN_DIGEST_PREFIX]).unwrap();
    assert_eq!(r.target.digest.to_string(), db);
    assert!(matches!(
        found(&db[..7 + resolve::MIN_DIGEST_PREFIX - 1]),
        Err(Error::UnknownRef { .. })
    ));
    // Suggestions: by edit distance, and the refs of a bare tag.
    for (typed, want) in [
        ("app:lates", "\"app:latest\""),
        ("latest", "\"app:latest\""),
        ("ap:1", "\"app:1\""),
    ] {
        let e = found(typed).unwrap_err().to_string();
        assert!(e.contains(want), "{typed}: {e}");
    }
    let e = found("latest").unwrap_err().to_string();
    assert!(!e.contains("\"app:1\""), "{e}");
}

#[test]
fn init_completes_an_interrupted_init_and_refuses_foreign_directories() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("half");
    std::fs::create_dir_all(p.join("blobs/sha256")).unwrap();
    std::fs::write(
        p.join("index.json"),
        br#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let (_, created) = Layout::init(&p, Options::default()).unwrap();
    assert!(created);
    assert!(Layout::open(&p, Options::default()).is_ok());
    let q = d.path().join("foreign");
    std::fs::create_dir_all(&q).unwrap();
    std::fs::write(q.join("x"), b"x").unwrap();
    assert!(matches!(
        Layout::init(&q, Options::default()),
        Err(Error::NotALayout { .. })
    ));
    let err = Layout::open(d.path().join("nope"), Options::default()).unwrap_err();
    assert!(err.to_string().contains("no such directory"));
}

#[test]
fn blobs_are_never_read_through_symlinks_or_from_fifos() {
    let (d, l) = layout();
    let target = d.path().join("outside");
    std::fs::write(&target, b"secret").unwrap();
    let digest = Digest::sha256(b"secret");
    std::os::unix::fs::symlink(&target, l.blob_path(&digest)).unwrap();
    assert!(matches!(
        l.open_blob(&digest),
        Err(Error::NotRegularFile {
            kind: "symlink",
            ..
        })
    ));
    assert!(matches!(
        l.stat_blob(&digest),
        Err(Error::NotRegularFile { .. })
    ));
}
