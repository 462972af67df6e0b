//! What a command says about a change: once committed, a report that cannot be printed is a
//! warning with exit 0; a dry run refuses what the real command would.

use std::process::{Command, Output, Stdio};

use crate::util::*;

/// Runs ocitool with standard output on `/dev/full` (every write fails with ENOSPC).
fn to_dev_full(args: &[&std::ffi::OsStr]) -> Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    Command::new(bin())
        .args(args)
        .stdout(Stdio::from(full))
        .output()
        .unwrap()
}

#[track_caller]
fn committed_with_warning(o: &Output) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.lines().any(|l| l
            .starts_with("warning: the change is made, but its report could not be printed")
            && l.contains("No space left on device")),
        "{err}"
    );
    assert!(!err.contains("error:"), "{err}");
}

#[test]
fn a_committed_change_whose_report_cannot_be_printed_exits_0_with_a_warning() {
    let fx = fixture("minimal");
    let p = fx.path.as_os_str();
    let o = to_dev_full(&["tag".as_ref(), p, "app:1.0".as_ref(), "b:1".as_ref()]);
    committed_with_warning(&o);
    assert!(refs(&fx.path).contains_key("b:1"), "the tag is there");

    let o = to_dev_full(&["--json".as_ref(), "untag".as_ref(), p, "b:1".as_ref()]);
    committed_with_warning(&o);
    assert!(!refs(&fx.path).contains_key("b:1"), "the untag happened");

    let src = fixture("multi-arch");
    let o = to_dev_full(&["copy".as_ref(), src.path.as_os_str(), p]);
    committed_with_warning(&o);
    assert!(refs(&fx.path).contains_key("multi:1.0"));

    let o = to_dev_full(&["protect".as_ref(), p, "--semver".as_ref()]);
    committed_with_warning(&o);

    let archive = fx.dir.path().join("app.tar");
    ok([
        "export".as_ref(),
        p,
        "app:1.0".as_ref(),
        "-o".as_ref(),
        archive.as_os_str(),
    ]);
    // An archive written is the work done too (its --json report goes to standard output).
    let o = to_dev_full(&[
        "--json".as_ref(),
        "pack".as_ref(),
        p,
        "-o".as_ref(),
        fx.dir.path().join("packed.tar").as_os_str(),
    ]);
    committed_with_warning(&o);
    assert!(fx.dir.path().join("packed.tar").exists());
    let fresh = fx.dir.path().join("fresh");
    let o = to_dev_full(&["import".as_ref(), archive.as_os_str(), fresh.as_os_str()]);
    committed_with_warning(&o);
    assert!(refs(&fresh).contains_key("app:1.0"));
    verify_clean(&fx.path);
    verify_clean(&fresh);

    // A command that changes nothing still fails when it cannot print its result.
    let o = to_dev_full(&["ls".as_ref(), p]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("error: write to standard output"));
}

#[test]
fn tag_dry_run_of_a_protected_tag_fails_like_the_real_tag() {
    let src = fixture("multi-arch");
    let fx = fixture("minimal");
    let p = fx.path.as_os_str();
    ok(["copy".as_ref(), src.path.as_os_str(), p]);
    ok(["tag".as_ref(), p, "app:1.0".as_ref(), "app:1.0.0".as_ref()]);
    ok(["protect".as_ref(), p, "--semver".as_ref()]);
    let before = snapshot(&fx.path);
    let args = |extra: &[&'static str]| -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec![
            "tag".into(),
            p.into(),
            "multi:1.0".into(),
            "app:1.0.0".into(),
        ];
        a.extend(extra.iter().map(Into::into));
        a
    };
    let real = fails(3, &["app:1.0.0", "is protected", "--force"], args(&[]));
    let dry = fails(
        3,
        &["app:1.0.0", "is protected", "--force"],
        args(&["--dry-run"]),
    );
    assert_eq!(dry, real, "the dry run says what the real command says");
    // Forced, the dry run says it would move; nothing is written either way.
    let out = ok(args(&["--dry-run", "--force"]));
    assert!(out.contains("app:1.0.0 would point at"), "{out}");
    // A tag that is not protected is a plain dry run.
    let out = ok([
        "tag".as_ref(),
        p,
        "multi:1.0".as_ref(),
        "app:other".as_ref(),
        "--dry-run".as_ref(),
    ]);
    assert!(out.contains("app:other would point at"), "{out}");
    assert_eq!(snapshot(&fx.path), before);
}
