use std::process::{Child, Command, Stdio};

use crate::util::*;

fn spawn(args: &[&std::ffi::OsStr]) -> Child {
    Command::new(bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// 16 `ocitool tag` processes started together on one layout, each adding its own ref,
/// repeated over several rounds with a `gc` running among them: no update is lost, `gc`
/// deletes nothing a ref reaches, and the layout verifies clean.
#[test]
fn sixteen_concurrent_taggers_lose_no_update() {
    let fx = fixture("multi-arch");
    let p = fx.path.as_os_str();
    let mut want = vec!["multi:1.0".to_string()];
    for round in 0..4 {
        let names: Vec<String> = (0..16).map(|i| format!("app:r{round}-p{i}")).collect();
        let mut children: Vec<Child> = names
            .iter()
            .map(|n| spawn(&["tag".as_ref(), p, "multi:1.0".as_ref(), n.as_ref()]))
            .collect();
        children.push(spawn(&["gc".as_ref(), p]));
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
        }
        want.extend(names);
    }
    let mut got: Vec<String> = refs(&fx.path).into_keys().collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    verify_clean(&fx.path);
    let idx = index_json(&fx.path);
    assert_eq!(
        idx["manifests"].as_array().unwrap().len(),
        65,
        "one descriptor per ref"
    );
}

/// Concurrent taggers and untaggers of disjoint names: every tag that succeeded and was not
/// untagged is present.
#[test]
fn concurrent_tag_and_untag_keep_the_model() {
    let fx = fixture("minimal");
    let p = fx.path.as_os_str();
    let pre: Vec<String> = (0..8).map(|i| format!("old:{i}")).collect();
    let mut args: Vec<&std::ffi::OsStr> = vec!["tag".as_ref(), p, "app:1.0".as_ref()];
    args.extend(pre.iter().map(std::ffi::OsStr::new));
    let st = Command::new(bin()).args(&args).output().unwrap();
    assert!(st.status.success());
    let new: Vec<String> = (0..8).map(|i| format!("new:{i}")).collect();
    let mut children = Vec::new();
    for (o, n) in pre.iter().zip(&new) {
        children.push(spawn(&["untag".as_ref(), p, o.as_ref()]));
        children.push(spawn(&["tag".as_ref(), p, "app:1.0".as_ref(), n.as_ref()]));
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut got: Vec<String> = refs(&fx.path).into_keys().collect();
    got.sort();
    let mut want = new.clone();
    want.push("app:1.0".into());
    want.sort();
    assert_eq!(got, want);
    verify_clean(&fx.path);
}

#[test]
fn no_wait_fails_fast_with_exit_4_while_gc_holds_the_lock() {
    let fx = fixture("minimal");
    // Hold the gc lock exclusively from this process, as a running gc would.
    std::fs::create_dir_all(fx.path.join(".ocitool")).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(fx.path.join(".ocitool/gc.lock"))
        .unwrap();
    f.lock().unwrap();
    let before = snapshot(&fx.path);
    fails(
        4,
        &["locked"],
        [
            "tag".as_ref(),
            fx.path.as_os_str(),
            "app:1.0".as_ref(),
            "x:1".as_ref(),
            "--no-wait".as_ref(),
        ],
    );
    fails(
        4,
        &["locked"],
        ["gc".as_ref(), fx.path.as_os_str(), "--no-wait".as_ref()],
    );
    assert_eq!(snapshot(&fx.path), before);
    // Readers are blocked by nothing but gc: with --no-wait they fail too, rather than
    // reading a layout that gc is sweeping.
    fails(
        4,
        &["locked"],
        ["ls".as_ref(), fx.path.as_os_str(), "--no-wait".as_ref()],
    );
    f.unlock().unwrap();
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "x:1".as_ref(),
        "--no-wait".as_ref(),
    ]);
}

/// `copy` decides which blobs the destination already has only once it holds the destination's
/// gc lock, so a `gc` sweeping at that moment cannot delete a blob the copy then relies on
/// (found by `cargo xtask torture`: a ref left pointing at a missing config).
#[test]
fn copy_does_not_rely_on_a_blob_that_a_running_gc_deletes() {
    let src = testdata("layouts/minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    let d = empty_dir();
    let l = d.path().join("l");
    ok(["copy".as_ref(), src.as_os_str(), l.as_os_str()]);
    ok(["untag".as_ref(), l.as_os_str(), "app:1.0".as_ref()]); // every blob unreferenced now
    let victim = blob_path(&l, &img.config.digest.to_string());
    let held = d.path().join("held");
    // Stands in for a gc in its sweep: the exclusive gc lock, then an unreferenced blob deleted.
    let mut gc = Command::new("flock")
        .arg("-x")
        .arg(l.join(".ocitool/gc.lock"))
        .args(["sh", "-c", r#"touch "$0"; sleep 1; rm "$1""#])
        .arg(&held)
        .arg(&victim)
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !held.exists() {
        assert!(start.elapsed().as_secs() < 30, "flock never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    ok(["copy".as_ref(), src.as_os_str(), l.as_os_str()]);
    assert!(gc.wait().unwrap().success());
    verify_clean(&l);
    assert!(victim.is_file(), "the copy brought the deleted config back");
}
