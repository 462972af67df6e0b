//! Housekeeping under the recommended tagging (issue #15): a release is its version tag plus
//! the build tags (SHA, date) on its image; `tag --semver` sets them in one update, `prune`
//! keeps or removes them together, `protect --sha` takes only commit SHAs, `ls --tree` shows
//! them on one row.

use std::ffi::OsStr;
use std::path::Path;

use serde_json::Value;

use crate::lifecycle::many_images;
use crate::util::*;

fn args<'a>(cmd: &'a str, l: &'a Path, rest: &'a [&'a str]) -> Vec<&'a OsStr> {
    let mut a: Vec<&OsStr> = vec![cmd.as_ref(), l.as_os_str()];
    a.extend(rest.iter().map(OsStr::new));
    a
}

/// Runs `ocitool CMD LAYOUT REST...`, expects exit 0; returns (stdout, stderr).
#[track_caller]
fn run_ok(cmd: &str, l: &Path, rest: &[&str]) -> (String, String) {
    let o = run(args(cmd, l, rest));
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    (stdout(&o), stderr(&o))
}

/// Four releases of `app` on the 1.0 line (so only the newest has aliases), each with its
/// SHA and date tags, and a `main` build without a version.
fn four_releases() -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
    let (d, l, ds) = many_images(5);
    let releases = [
        ("1.0.0", "a1b2c3d", "20240115"),
        ("1.0.1", "b2c3d4e", "20240215"),
        ("1.0.2", "c3d4e5f", "20240315"),
        ("1.0.3", "d4e5f60", "20240415"),
    ];
    for (i, (v, sha, date)) in releases.iter().enumerate() {
        let (v, sha, date) = (
            format!("app:{v}"),
            format!("app:{sha}"),
            format!("app:{date}"),
        );
        // The version first, then its build tags: `tag --semver` with all three is covered
        // on its own, and prune must not depend on how the tags were set.
        run_ok("tag", &l, &[&ds[i], &v, "--semver"]);
        run_ok("tag", &l, &[&ds[i], &sha, &date]);
    }
    run_ok(
        "tag",
        &l,
        &[&ds[4], "app:main", "app:e5f6071", "app:20240515"],
    );
    (d, l, ds)
}

fn names(l: &Path) -> Vec<String> {
    refs(l).into_keys().collect()
}

#[test]
fn tag_semver_sets_a_release_and_its_build_tags_in_one_update() {
    let (_d, l, ds) = many_images(3);
    let v = json(args(
        "tag",
        &l,
        &[
            &ds[0],
            "app:1.0.0",
            "app:a1b2c3d",
            "app:20240115",
            "--semver",
        ],
    ));
    let set: Vec<&str> = v["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        set,
        [
            "app:1.0.0",
            "app:1.0",
            "app:1",
            "app:latest",
            "app:a1b2c3d",
            "app:20240115"
        ]
    );
    assert!(refs(&l).values().all(|d| *d == ds[0]));
    // One update: when one of the names may not move (a protected SHA tag), nothing moves,
    // not even the version and its aliases.
    run_ok("protect", &l, &["--sha"]);
    let before = snapshot(&l);
    fails(
        3,
        &["app:a1b2c3d", "protected"],
        args(
            "tag",
            &l,
            &[
                &ds[1],
                "app:1.1.0",
                "app:a1b2c3d",
                "app:20240215",
                "--semver",
            ],
        ),
    );
    assert_eq!(snapshot(&l), before);
    // Aliases the cascade moves itself are refused as targets.
    fails(
        3,
        &["app:latest"],
        args("tag", &l, &[&ds[1], "app:1.1.0", "app:latest", "--semver"]),
    );
    // Without a version there is no release to cascade.
    fails(
        3,
        &["--semver needs an exact version"],
        args("tag", &l, &[&ds[1], "app:b2c3d4e", "--semver"]),
    );
    verify_clean(&l);
}

#[test]
fn prune_keep_counts_releases_and_removes_their_build_tags() {
    let (_d, l, ds) = four_releases();
    // An alias on an old release keeps it.
    run_ok("tag", &l, &[&ds[0], "app:stable"]);
    let (out, err) = run_ok("prune", &l, &["--keep", "2"]);
    let left = names(&l);
    for gone in ["app:1.0.1", "app:b2c3d4e", "app:20240215"] {
        assert!(
            !left.iter().any(|n| n == gone),
            "{gone} left: {left:?}\n{out}"
        );
    }
    for kept in [
        "app:1.0.3",
        "app:d4e5f60",
        "app:20240415", // newest
        "app:1.0.2",
        "app:c3d4e5f",
        "app:20240315", // second newest
        "app:1.0.0",
        "app:a1b2c3d",
        "app:20240115", // app:stable points at it
        "app:main",
        "app:e5f6071",
        "app:20240515", // a build, and main points at it
        "app:1.0",
        "app:1",
        "app:latest",
        "app:stable",
    ] {
        assert!(
            left.iter().any(|n| n == kept),
            "{kept} removed: {left:?}\n{out}"
        );
    }
    assert!(
        err.contains("removed 1 release(s) and 0 build(s), 3 tag(s)"),
        "{err}"
    );
    assert!(out.contains("app:stable points at it"), "{out}");
    verify_clean(&l);
}

#[test]
fn protected_releases_go_only_with_force_and_it_is_said_once() {
    let (_d, l, _ds) = four_releases();
    run_ok("protect", &l, &["--semver", "--sha"]);
    let before = snapshot(&l);
    let (out, err) = run_ok("prune", &l, &["--keep", "1"]);
    assert_eq!(
        snapshot(&l),
        before,
        "protected releases went without --force"
    );
    let says = |s: &str| s.lines().filter(|x| x.contains("protected")).count();
    assert_eq!(says(&out) + says(&err), 1, "{out}\n{err}");
    assert!(
        err.contains("kept 3 protected release(s)") && err.contains("--force"),
        "{err}"
    );
    // Forced: the three old releases go with their build tags; one line says so.
    let (out, err) = run_ok("prune", &l, &["--keep", "1", "--force"]);
    assert!(!err.contains("error"), "{err}");
    assert!(err.contains("removed 3 protected release(s)"), "{err}");
    assert!(
        err.contains("removed 3 release(s) and 0 build(s), 9 tag(s)"),
        "{err}"
    );
    let left = names(&l);
    assert_eq!(
        left,
        [
            "app:1",
            "app:1.0",
            "app:1.0.3",
            "app:20240415",
            "app:20240515",
            "app:d4e5f60",
            "app:e5f6071",
            "app:latest",
            "app:main",
        ],
        "{out}"
    );
    verify_clean(&l);
}

#[test]
fn prune_older_than_reads_date_tags_then_creation_times() {
    let (_d, l, ds) = four_releases();
    // A release without a date tag: its config's `created` (2024-01-01) dates it.
    run_ok("tag", &l, &[&ds[4], "web:2.0.0", "--semver"]);
    run_ok("untag", &l, &["web:2.0", "web:2", "web:latest"]);
    let before = snapshot(&l);
    let v = json(args(
        "prune",
        &l,
        &["--older-than", "2024-03-01", "--dry-run"],
    ));
    assert_eq!(snapshot(&l), before);
    let mut removed: Vec<&str> = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["remove"] == true)
        .map(|d| d["ref"].as_str().unwrap())
        .collect();
    removed.sort_unstable();
    assert_eq!(
        removed,
        [
            "app:1.0.0",
            "app:1.0.1",
            "app:20240115",
            "app:20240215",
            "app:a1b2c3d",
            "app:b2c3d4e",
            "web:2.0.0"
        ],
        "{v}"
    );
    // An age: everything is older than 30 days, but the newest release stays with --keep 1,
    // and --keep-tags keeps what it matches.
    run_ok(
        "prune",
        &l,
        &[
            "--older-than",
            "30d",
            "--keep",
            "1",
            "--keep-tags",
            "app:1.0.1",
        ],
    );
    let left = names(&l);
    for kept in [
        "app:1.0.3",
        "app:1.0.1",
        "app:b2c3d4e",
        "app:main",
        "web:2.0.0",
    ] {
        assert!(left.iter().any(|n| n == kept), "{kept} removed: {left:?}");
    }
    for gone in ["app:1.0.0", "app:1.0.2", "app:c3d4e5f", "app:20240315"] {
        assert!(!left.iter().any(|n| n == gone), "{gone} left: {left:?}");
    }
    // A bad age is a usage error.
    fails(2, &["30x"], args("prune", &l, &["--older-than", "30x"]));
    verify_clean(&l);
}

#[test]
fn prune_of_an_unknown_repository_is_an_error_with_a_suggestion() {
    let (_d, l, _ds) = four_releases();
    let before = snapshot(&l);
    fails(
        3,
        &["no repository \"ap\"", "did you mean \"app\""],
        args("prune", &l, &["--keep", "1", "--repo", "ap"]),
    );
    fails(
        3,
        &["no repository \"zzz\""],
        args("prune", &l, &["--keep", "1", "--repo", "zzz", "--dry-run"]),
    );
    assert_eq!(snapshot(&l), before);
    // Any spelling of a repository the layout has is that repository.
    run_ok(
        "prune",
        &l,
        &[
            "--keep",
            "3",
            "--repo",
            "docker.io/library/app",
            "--dry-run",
        ],
    );
}

#[test]
fn sha_protection_takes_commit_shas_not_dates_or_build_numbers() {
    let (_d, l, ds) = many_images(2);
    let tags = [
        "app:a1b2c3d",
        "app:0123456789012345678901234567890123456789",
        "app:20240115",
        "app:1234567",
        "app:12345678",
    ];
    let mut t = vec![ds[0].as_str()];
    t.extend(tags);
    run_ok("tag", &l, &t);
    run_ok("protect", &l, &["--sha"]);
    // Dates and build numbers move freely.
    for free in ["app:20240115", "app:1234567", "app:12345678"] {
        run_ok("tag", &l, &[&ds[1], free]);
    }
    // SHAs do not.
    for sha in [
        "app:a1b2c3d",
        "app:0123456789012345678901234567890123456789",
    ] {
        fails(3, &[sha, "a commit SHA"], args("tag", &l, &[&ds[1], sha]));
    }
    let r = refs(&l);
    assert_eq!(r["app:20240115"], ds[1]);
    assert_eq!(r["app:a1b2c3d"], ds[0]);
}

#[test]
fn protect_warns_about_a_pattern_that_can_match_nothing() {
    let (_d, l, ds) = many_images(1);
    run_ok("tag", &l, &[&ds[0], "app:release-1"]);
    let (out, err) = run_ok("protect", &l, &["release-*"]);
    assert!(
        err.contains("warning")
            && err.contains("\"release-*\" matches no ref")
            && err.contains("'*:release-*'"),
        "{err}"
    );
    assert!(out.contains("release-*"), "{out}");
    // With a repository part it matches, and says nothing.
    let (_, err) = run_ok("protect", &l, &["*:release-*"]);
    assert!(!err.contains("warning"), "{err}");
    fails(
        3,
        &["app:release-1", "protected"],
        args("untag", &l, &["app:release-1"]),
    );
}

#[test]
fn ls_tree_shows_each_release_with_its_build_tags() {
    let (_d, l, ds) = four_releases();
    let text = ok(args("ls", &l, &["--tree"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "app", "{text}");
    let row = |v: &str| {
        lines
            .iter()
            .find(|x| x.trim_start().starts_with(v))
            .unwrap_or_else(|| panic!("no row {v}: {text}"))
            .to_string()
    };
    let newest = row("1.0.3 ");
    assert!(
        newest.contains("d4e5f60 20240415") && newest.contains("<- 1.0, 1, latest"),
        "{text}"
    );
    assert!(row("1.0.0 ").contains("a1b2c3d 20240115"), "{text}");
    // The build without a version is one row, headed by its SHA tag, with main on it.
    let build = row("e5f6071");
    assert!(
        build.contains("20240515") && build.contains("<- main"),
        "{text}"
    );
    // Build tags are never rows of their own.
    assert_eq!(lines.len(), 1 + 4 + 1, "{text}");
    let v: Value = json(args("ls", &l, &["--tree"]));
    assert_eq!(v[0]["versions"][0]["tag"], "1.0.3");
    assert_eq!(
        v[0]["versions"][0]["builds"],
        serde_json::json!(["d4e5f60", "20240415"])
    );
    assert_eq!(v[0]["others"][0]["tag"], "e5f6071");
    let _ = ds;
}

/// Digests masked (the README's images were made with umoci, these by the testkit), and what
/// gc would free (it depends on the images' sizes).
fn masked(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let line = match line.find("; gc ") {
                Some(i) => &line[..i],
                None => line,
            };
            let mut out = String::new();
            let mut rest = line;
            while let Some(i) = rest.find("sha256:") {
                out.push_str(&rest[..i + 7]);
                rest = rest[i + 7..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
                out.push('…');
            }
            out.push_str(rest);
            out.trim_end().to_string()
        })
        .collect()
}

/// The README's release tour, replayed: every `$ ocitool ...` of its section runs in order on
/// a layout with five builds as `ci:build-1` to `ci:build-5`, and where the README shows an
/// output, this run prints the same (digests and gc sizes masked).
#[test]
fn the_readme_release_tour_is_what_ocitool_prints() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let start = readme
        .find("### Releases: semver, SHA and date tags")
        .expect("README has the release tour");
    let section = &readme[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    // (command, shown output) in order, from the fenced blocks.
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_block = false;
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
        } else if in_block {
            if let Some(cmd) = line.strip_prefix("$ ocitool ") {
                steps.push((cmd.to_string(), Vec::new()));
            } else if !line.is_empty()
                && let Some((_, out)) = steps.last_mut()
            {
                out.push(line.to_string());
            }
        }
    }
    assert!(steps.len() >= 12, "{steps:?}");
    let (_d, l, ds) = many_images(5);
    for (i, d) in ds.iter().enumerate() {
        run_ok("tag", &l, &[d, &format!("ci:build-{}", i + 1)]);
    }
    for (cmd, shown) in &steps {
        let words: Vec<String> = cmd
            .split_whitespace()
            .map(|w| w.trim_matches('\'').to_string())
            .collect();
        assert_eq!(words[1], "layout", "{cmd}");
        let mut a: Vec<&OsStr> = vec![words[0].as_ref(), l.as_os_str()];
        a.extend(words[2..].iter().map(OsStr::new));
        // Both streams into one file, as a terminal shows them (ocitool flushes its
        // standard output before each line on standard error).
        let screen = tempfile::tempfile().unwrap();
        let o = std::process::Command::new(bin())
            .args(&a)
            .stdout(screen.try_clone().unwrap())
            .stderr(screen.try_clone().unwrap())
            .status()
            .unwrap();
        let shown_text = {
            use std::io::{Read, Seek};
            let mut screen = screen;
            let mut text = String::new();
            screen.rewind().unwrap();
            screen.read_to_string(&mut text).unwrap();
            text
        };
        if shown.is_empty() {
            assert!(o.success(), "{cmd}: {shown_text}");
            continue;
        }
        let got = masked(&shown_text);
        let want = masked(&shown.join("\n"));
        assert_eq!(got, want, "README and ocitool differ for `ocitool {cmd}`");
    }
}
