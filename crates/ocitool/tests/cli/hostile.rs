//! Layouts crafted by someone else, seen through the command line: symlinks and special files
//! where ocitool keeps blobs and state are reported and never followed, nothing hangs, and a
//! damaged blob can be repaired from verified bytes.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::*;

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn decoy(dir: &Path) -> std::path::PathBuf {
    let o = dir.join("somebody-elses");
    std::fs::create_dir_all(&o).unwrap();
    std::fs::write(o.join("thesis.txt"), b"years of work").unwrap();
    std::fs::create_dir_all(o.join("txn-old")).unwrap();
    o
}

#[test]
fn gc_refuses_a_symlinked_tmp_and_empties_nothing_outside() {
    let fx = fixture("minimal");
    let o = decoy(fx.dir.path());
    let before = entries(&o);
    let state = fx.path.join(".ocitool");
    std::fs::create_dir_all(&state).unwrap();
    let _ = std::fs::remove_dir_all(state.join("tmp"));
    symlink(&o, state.join("tmp")).unwrap();
    fails(3, &[".ocitool/tmp", "symlink"], [Path::new("gc"), &fx.path]);
    fails(
        3,
        &[".ocitool/tmp"],
        [
            Path::new("tag"),
            &fx.path,
            Path::new("app:1.0"),
            Path::new("b:1"),
        ],
    );
    assert_eq!(entries(&o), before);
    // verify names it as a problem (exit 1), it does not fail to run.
    let o2 = run([Path::new("verify"), &fx.path]);
    assert_eq!(o2.status.code(), Some(1), "{}", stderr(&o2));
    assert!(stdout(&o2).contains(".ocitool/tmp"), "{}", stdout(&o2));
}

#[test]
fn a_symlinked_lock_file_creates_nothing_where_it_points() {
    let fx = fixture("minimal");
    let target = fx.dir.path().join("planted");
    let state = fx.path.join(".ocitool");
    std::fs::create_dir_all(&state).unwrap();
    for name in ["gc.lock", "index.lock"] {
        let _ = std::fs::remove_file(state.join(name));
        symlink(&target, state.join(name)).unwrap();
        fails(
            3,
            &[name, "symlink"],
            [
                Path::new("tag"),
                &fx.path,
                Path::new("app:1.0"),
                Path::new("b:1"),
            ],
        );
        fails(3, &[name], [Path::new("gc"), &fx.path]);
        assert!(
            !target.exists(),
            "{name}: a file was created through the symlink"
        );
        std::fs::remove_file(state.join(name)).unwrap();
    }
}

#[test]
fn a_fifo_lock_file_never_hangs_a_reader() {
    let fx = fixture("minimal");
    let state = fx.path.join(".ocitool");
    std::fs::create_dir_all(&state).unwrap();
    let lock = state.join("gc.lock");
    let _ = std::fs::remove_file(&lock);
    sh(std::process::Command::new("mkfifo").arg(&lock));
    let start = Instant::now();
    for extra in [None, Some("--no-wait")] {
        let mut args: Vec<&std::ffi::OsStr> = vec!["ls".as_ref(), fx.path.as_os_str()];
        args.extend(extra.map(std::ffi::OsStr::new));
        fails(3, &["gc.lock", "fifo"], &args);
        let o = run([Path::new("verify"), &fx.path]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stdout(&o).contains(".ocitool/gc.lock"), "{}", stdout(&o));
    }
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "a command blocked on the fifo"
    );
}

#[test]
fn a_symlinked_blob_directory_is_reported_and_nothing_is_written_through_it() {
    let fx = fixture("minimal");
    let o = decoy(fx.dir.path());
    let before = entries(&o);
    let real = fx.path.join("blobs/sha256");
    std::fs::rename(&real, fx.dir.path().join("moved")).unwrap();
    symlink(&o, &real).unwrap();
    let o2 = run([Path::new("verify"), &fx.path]);
    assert_eq!(o2.status.code(), Some(1));
    assert!(
        stdout(&o2).contains("blobs/sha256: is a symlink"),
        "{}",
        stdout(&o2)
    );
    let archive = testdata("archives/docker-save.tar");
    fails(
        3,
        &["blobs/sha256", "symlink"],
        [Path::new("import"), &archive, &fx.path],
    );
    fails(
        3,
        &["blobs/sha256"],
        [Path::new("gc"), &fx.path, Path::new("--force")],
    );
    assert_eq!(
        entries(&o),
        before,
        "nothing written or removed outside the layout"
    );
}

#[test]
fn a_layout_without_blobs_does_not_verify() {
    let fx = fixture("minimal");
    std::fs::remove_dir_all(fx.path.join("blobs")).unwrap();
    let o = run([Path::new("verify"), &fx.path]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("blobs: is missing"), "{}", stdout(&o));
}

/// Re-importing an intact archive skips blobs that are present, even a damaged one (that is
/// what keeps re-imports cheap); `--repair` stores the archive's verified bytes in its place.
#[test]
fn import_and_copy_repair_a_damaged_blob() {
    let d = empty_dir();
    let layout = d.path().join("l");
    let archive = testdata("archives/docker-save.tar");
    ok([Path::new("import"), &archive, &layout]);
    let mirror = d.path().join("mirror");
    ok([Path::new("copy"), &layout, &mirror]);
    // Damage the largest blob of each, keeping its size.
    let damage = |l: &Path| {
        let mut files: Vec<_> = std::fs::read_dir(l.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
        let mut bytes = std::fs::read(&files[0]).unwrap();
        bytes[100] ^= 0xff;
        std::fs::write(&files[0], bytes).unwrap();
    };
    damage(&layout);
    ok([Path::new("import"), &archive, &layout]);
    assert_eq!(
        run([Path::new("verify"), &layout]).status.code(),
        Some(1),
        "still damaged"
    );
    ok([
        Path::new("import"),
        &archive,
        &layout,
        Path::new("--repair"),
    ]);
    verify_clean(&layout);

    damage(&mirror);
    ok([Path::new("copy"), &layout, &mirror]);
    assert_eq!(run([Path::new("verify"), &mirror]).status.code(), Some(1));
    ok([Path::new("copy"), &layout, &mirror, Path::new("--repair")]);
    verify_clean(&mirror);
}

#[test]
fn gc_dry_run_works_on_read_only_media() {
    let fx = fixture("minimal");
    let Some(ro) = read_only_mount(&fx.path) else {
        return;
    };
    let report = json([Path::new("gc"), ro.path(), Path::new("--dry-run")]);
    assert_eq!(report["dryRun"], true);
    fails(3, &[], [Path::new("gc"), ro.path()]);
}
