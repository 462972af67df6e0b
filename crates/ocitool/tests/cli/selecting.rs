//! Selecting many (#15): `REPO:*` (every tag of a repository) and `--all-tags` (every
//! argument a repository) in every command that takes refs, and `ls REPO...`. `untag`'s own
//! tests are in `names.rs`.

use std::ffi::OsString;
use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// `ocitool <cmd> <layout> <rest...>`.
fn at(cmd: &str, layout: &Path, rest: &[&str]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![cmd.into(), layout.into()];
    v.extend(rest.iter().map(OsString::from));
    v
}

/// The minimal fixture (`app:1.0`) with `app:latest`, `docker.io/library/app:2` (the same
/// repository spelled in full) and `other:1`, all on its one image.
fn two_repositories() -> Fx {
    let fx = fixture("minimal");
    ok(at(
        "tag",
        &fx.path,
        &[
            "app:1.0",
            "app:latest",
            "docker.io/library/app:2",
            "other:1",
        ],
    ));
    fx
}

/// The ref names of every image of an export or pack report, sorted.
fn reported_refs(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no images: {v}"))
        .iter()
        .flat_map(|i| i["refs"].as_array().unwrap().iter())
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

const APP: [&str; 3] = ["app:1.0", "app:latest", "docker.io/library/app:2"];

#[test]
fn export_writes_every_tag_of_a_repository() {
    let fx = two_repositories();
    let l = &fx.path;
    let out = fx.dir.path().join("a.tar");
    let mut args = at("export", l, &["app:*", "--format", "oci", "-o"]);
    args.push(out.clone().into());
    assert_eq!(reported_refs(&json(args)), APP);
    let mut args = at(
        "export",
        l,
        &["other", "--all-tags", "--format", "oci", "-o"],
    );
    args.push(out.clone().into());
    assert_eq!(reported_refs(&json(args)), ["other:1"]);
    // --all-tags takes repositories; an unknown one gets a suggestion.
    let mut args = at("export", l, &["app:1.0", "--all-tags", "-o"]);
    args.push(out.clone().into());
    fails(3, &["--all-tags takes repositories"], args);
    let mut args = at("export", l, &["othr:*", "-o"]);
    args.push(out.into());
    fails(3, &["did you mean \"other:*\""], args);
}

#[test]
fn pack_writes_every_tag_of_a_repository() {
    let fx = two_repositories();
    let l = &fx.path;
    let out = fx.dir.path().join("p.tar");
    let mut args = at("pack", l, &["app:*", "-o"]);
    args.push(out.clone().into());
    let v = json(args);
    assert_eq!(reported_refs(&v), APP);
    let mut args = at("pack", l, &["--all-tags", "other", "-o"]);
    args.push(out.clone().into());
    assert_eq!(reported_refs(&json(args)), ["other:1"]);
    // --all-tags names repositories: without any it is a usage error, not "every ref".
    let mut args = at("pack", l, &["--all-tags", "-o"]);
    args.push(out.into());
    fails(2, &["--all-tags"], args);
}

#[test]
fn copy_copies_every_tag_of_a_repository() {
    let fx = two_repositories();
    let l = &fx.path;
    let dst = fx.dir.path().join("dst");
    let mut args: Vec<OsString> = vec!["copy".into(), l.into(), dst.clone().into()];
    args.push("app:*".into());
    ok(args);
    assert_eq!(refs(&dst).keys().collect::<Vec<_>>(), APP);
    let dst2 = fx.dir.path().join("dst2");
    ok([
        OsString::from("copy"),
        l.into(),
        dst2.clone().into(),
        "other".into(),
        "--all-tags".into(),
    ]);
    assert_eq!(refs(&dst2).keys().collect::<Vec<_>>(), ["other:1"]);
}

/// `protect 'app:*'` is already the pattern of every tag of app, present and future;
/// `--all-tags app` stores that same pattern.
#[test]
fn protect_all_tags_is_the_repository_pattern() {
    let fx = two_repositories();
    let l = &fx.path;
    ok(at("protect", l, &["--all-tags", "app"]));
    let v = json(at("protect", l, &["--list"]));
    assert_eq!(v["patterns"], serde_json::json!(["app:*"]), "{v}");
    // A present tag and a future one are protected; another repository is not.
    fails(3, &["app:latest"], at("untag", l, &["app:latest"]));
    ok(at("tag", l, &["app:1.0", "app:new"]));
    fails(3, &["app:new"], at("untag", l, &["app:new"]));
    ok(at("untag", l, &["other:1"]));
    // A tag is not a repository.
    fails(
        3,
        &["--all-tags takes repositories"],
        at("protect", l, &["--all-tags", "app:1.0"]),
    );
}

#[test]
fn push_sends_every_tag_of_a_repository() {
    use ocitool_testkit::registry::{Mode, TestRegistry};
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let fx = two_repositories();
    let l = &fx.path;
    let to = format!("{}/sel", reg.addr);
    let v = run_json(
        oci(fx.dir.path())
            .arg("push")
            .arg(l)
            .args(["app:*", "--to", &to]),
    );
    let mut pushed: Vec<&str> = v["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap())
        .collect();
    pushed.sort_unstable();
    assert_eq!(pushed, APP, "{v}");
    run_fails(
        oci(fx.dir.path())
            .arg("push")
            .arg(l)
            .args(["othr:*", "--to", &to]),
        &["did you mean \"other:*\""],
    );
}

#[test]
fn ls_lists_the_repositories_named() {
    let fx = two_repositories();
    let l = &fx.path;
    let names = |v: Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["ref"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    // Any spelling of the name.
    assert_eq!(names(json(at("ls", l, &["docker.io/library/app"]))), APP);
    assert_eq!(names(json(at("ls", l, &["other"]))), ["other:1"]);
    let mut all: Vec<&str> = APP.to_vec();
    all.push("other:1");
    assert_eq!(names(json(at("ls", l, &["app", "other"]))), all);
    let tree = ok(at("ls", l, &["other", "--tree"]));
    assert!(tree.contains("other") && !tree.contains("app"), "{tree}");
    fails(
        3,
        &["othr", "did you mean \"other\""],
        at("ls", l, &["othr"]),
    );
    // An archive read without importing it, the same way.
    let tar = fx.dir.path().join("all.tar");
    let mut args = at("pack", l, &["-o"]);
    args.push(tar.clone().into());
    ok(args);
    assert_eq!(names(json(at("ls", &tar, &["other"]))), ["other:1"]);
}

#[test]
fn verify_checks_every_tag_of_a_repository_and_only_those() {
    // app:1.0 has a corrupt blob; zstd:1, copied in, is intact.
    let fx = fixture("corrupt/minimal");
    let l = &fx.path;
    let zstd = fixture("zstd");
    ok([OsString::from("copy"), zstd.path.clone().into(), l.into()]);
    ok(at("tag", l, &["app:1.0", "app:2"]));
    let v = json(at("verify", l, &["zstd:*"]));
    assert_eq!(v["ok"], true, "{v}");
    let o = run(at("verify", l, &["app:*", "--json"]));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["problems"][0]["problem"]
            .as_str()
            .unwrap()
            .starts_with("content hashes to"),
        "{v}"
    );
    fails(
        3,
        &["ap:*", "did you mean \"app:*\""],
        at("verify", l, &["ap:*"]),
    );
}
