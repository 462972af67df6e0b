use crate::util::*;

#[test]
fn creates_a_layout_that_verifies_and_is_idempotent() {
    let d = empty_dir();
    let l = d.path().join("new/nested/layout");
    let out = json(["init".as_ref(), l.as_os_str()]);
    assert_eq!(out["created"], true);
    assert_eq!(
        std::fs::read(l.join("oci-layout")).unwrap(),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let idx = index_json(&l);
    assert_eq!(idx["schemaVersion"], 2);
    assert_eq!(idx["manifests"], serde_json::json!([]));
    assert!(l.join("blobs/sha256").is_dir());
    verify_clean(&l);
    let before = snapshot(&l);
    let out = json(["init".as_ref(), l.as_os_str()]);
    assert_eq!(out["created"], false);
    assert_eq!(snapshot(&l), before);
}

#[test]
fn init_on_an_existing_layout_keeps_its_content() {
    let fx = fixture("minimal");
    let before = snapshot(&fx.path);
    ok(["init".as_ref(), fx.path.as_os_str()]);
    assert_eq!(snapshot(&fx.path), before);
}

#[test]
fn refuses_a_directory_that_is_not_a_layout() {
    let d = empty_dir();
    std::fs::write(d.path().join("notes.txt"), "mine").unwrap();
    fails(
        3,
        &["not an OCI image layout", "notes.txt"],
        ["init".as_ref(), d.path().as_os_str()],
    );
    assert!(!d.path().join("oci-layout").exists());
}

#[test]
fn refuses_a_layout_of_another_version() {
    let fx = fixture("corrupt/bad-oci-layout");
    fails(
        3,
        &["imageLayoutVersion", "2.0.0"],
        ["init".as_ref(), fx.path.as_os_str()],
    );
    fails(
        3,
        &["2.0.0", "oci-layout"],
        ["ls".as_ref(), fx.path.as_os_str()],
    );
}

#[test]
fn usage_errors_exit_2() {
    fails(2, &["Usage"], ["init"]);
    fails(2, &["unrecognized subcommand"], ["frobnicate"]);
    fails(2, &["unexpected argument"], ["ls", "x", "--no-such-flag"]);
    let o = run(["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Exit codes"));
}
