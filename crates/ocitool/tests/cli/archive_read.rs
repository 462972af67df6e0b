//! Archives (issue #15's archive items): `ls ARCHIVE` and `inspect ARCHIVE` read a docker or
//! OCI archive without importing it and show what an import would; `import` says which tags
//! it moved; `pack` and `unpack` count refs and images; progress is labelled by the command
//! with the archive's size as total; and what podman and skopeo load of packs and exports.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// Every dialect in `testdata/archives`.
const DIALECTS: &[&str] = &[
    "docker-save.tar",
    "docker-save.tar.gz",
    "docker-save.tar.xz",
    "docker-save.tar.bz2",
    "docker-legacy.tar",
    "skopeo.tar",
    "crane.tar",
    "containerd-sparse.tar",
    "jib.tar",
];

fn a(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

/// Runs ocitool in `cwd` with `TMPDIR` set to `tmp`.
fn run_in(cwd: &Path, tmp: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("TMPDIR", tmp)
        .output()
        .unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// What a REF of an `ls --json` row is looked up by: its name, else its digest.
fn lookup(row: &Value) -> String {
    match row["ref"].as_str() {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => row["digest"].as_str().unwrap().to_string(),
    }
}

#[test]
fn ls_and_inspect_of_every_dialect_show_what_an_import_shows() {
    for name in DIALECTS {
        let d = empty_dir();
        let archive = testdata(&format!("archives/{name}"));
        let l = d.path().join("l");
        let imported = json([a("import"), archive.as_os_str(), l.as_os_str()]);
        let before = entries(d.path());

        let rows = json([a("ls"), l.as_os_str()]);
        assert!(!rows.as_array().unwrap().is_empty(), "{name}");
        assert_eq!(json([a("ls"), archive.as_os_str()]), rows, "{name}");
        assert_eq!(
            ok([a("ls"), archive.as_os_str()]),
            ok([a("ls"), l.as_os_str()]),
            "{name}"
        );
        assert_eq!(
            json([a("ls"), archive.as_os_str(), a("--tree")]),
            json([a("ls"), l.as_os_str(), a("--tree")]),
            "{name}"
        );

        for row in rows.as_array().unwrap() {
            let r = lookup(row);
            let generated = imported["images"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["digest"] == row["digest"] && i["generated"] == true);
            let mut from_archive = json([a("inspect"), archive.as_os_str(), a(&r)]);
            let flag = from_archive.as_object_mut().unwrap().remove("generated");
            assert_eq!(flag, generated.then_some(Value::Bool(true)), "{name} {r}");
            let from_layout = json([a("inspect"), l.as_os_str(), a(&r)]);
            assert_eq!(from_archive, from_layout, "{name} {r}");

            let text = ok([a("inspect"), archive.as_os_str(), a(&r)]);
            assert_eq!(text.contains("Generated:"), generated, "{name} {r}: {text}");
            let without: String = text
                .lines()
                .filter(|line| !line.starts_with("Generated:"))
                .map(|line| format!("{line}\n"))
                .collect();
            assert_eq!(
                without,
                ok([a("inspect"), l.as_os_str(), a(&r)]),
                "{name} {r}"
            );
            assert_eq!(
                ok([a("inspect"), archive.as_os_str(), a(&r), a("--raw")]),
                ok([a("inspect"), l.as_os_str(), a(&r), a("--raw")]),
                "{name} {r}"
            );
            // An index: each platform whose manifest is there.
            for m in from_layout["manifests"].as_array().into_iter().flatten() {
                let (Some(p), true) = (m["platform"].as_str(), m["present"] == true) else {
                    continue;
                };
                if p.starts_with("unknown") {
                    continue;
                }
                let args = |src: &Path| {
                    json([a("inspect"), src.as_os_str(), a(&r), a("--platform"), a(p)])
                };
                let mut x = args(&archive);
                x.as_object_mut().unwrap().remove("generated");
                assert_eq!(x, args(&l), "{name} {r} {p}");
            }
        }
        assert_eq!(entries(d.path()), before, "{name}: reading wrote something");
    }
}

#[test]
fn an_archive_from_standard_input_lists_like_the_file() {
    let archive = testdata("archives/docker-save.tar.gz");
    let o = Command::new(bin())
        .args(["ls", "-", "--json"])
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let from_stdin: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(from_stdin, json([a("ls"), archive.as_os_str()]));
    let o = Command::new(bin())
        .args(["inspect", "-", "app:1.0", "--json"])
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let from_stdin: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        from_stdin,
        json([a("inspect"), archive.as_os_str(), a("app:1.0")])
    );
}

#[test]
fn reading_an_archive_says_what_it_read_and_writes_nothing_anywhere() {
    let d = empty_dir();
    let cwd = d.path().join("cwd");
    let tmp = d.path().join("tmp");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    let archive = d.path().join("docker-save.tar");
    std::fs::copy(testdata("archives/docker-save.tar"), &archive).unwrap();
    let o = run_in(&cwd, &tmp, &[a("ls"), archive.as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 image(s) with 3 ref(s)") && stderr(&o).contains("nothing written"),
        "{}",
        stderr(&o)
    );
    let o = run_in(
        &cwd,
        &tmp,
        &[a("inspect"), archive.as_os_str(), a("app:1.0")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(entries(&cwd), Vec::<String>::new());
    assert_eq!(entries(&tmp), Vec::<String>::new());
    assert_eq!(entries(d.path()), ["cwd", "docker-save.tar", "tmp"]);
    // An unknown ref names the archive and suggests what it holds.
    fails(
        3,
        &["app:2.0", "docker-save.tar", "app:1.0"],
        [a("inspect"), archive.as_os_str(), a("app:2.0")],
    );
}

/// Flips one byte in the middle of the largest member whose name `pick` accepts; returns
/// that member's name.
fn tamper(from: &Path, to: &Path, pick: impl Fn(&str) -> bool) -> String {
    let mut bytes = std::fs::read(from).unwrap();
    let mut best: Option<(String, u64, u64)> = None;
    let mut ar = tar::Archive::new(&bytes[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if e.header().entry_type().is_file()
            && pick(&name)
            && best.as_ref().is_none_or(|b| e.size() > b.2)
        {
            best = Some((name, e.raw_file_position(), e.size()));
        }
    }
    let (name, pos, size) = best.unwrap();
    bytes[(pos + size / 2) as usize] ^= 0x20;
    std::fs::write(to, bytes).unwrap();
    name
}

#[test]
fn a_tampered_archive_fails_naming_the_member_and_writes_nothing() {
    let d = empty_dir();
    let cwd = d.path().join("cwd");
    let tmp = d.path().join("tmp");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    for (name, pick) in [
        // Named by digest: the hash is wrong.
        (
            "docker-save.tar",
            (|n: &str| n.starts_with("blobs/sha256/")) as fn(&str) -> bool,
        ),
        ("skopeo.tar", |n: &str| !n.ends_with(".json")),
        // Named by layer ID: it no longer decompresses to its diff_id.
        ("docker-legacy.tar", |n: &str| n.ends_with("layer.tar")),
    ] {
        let bad = d.path().join(format!("bad-{name}"));
        let member = tamper(&testdata(&format!("archives/{name}")), &bad, pick);
        for args in [
            vec![a("ls"), bad.as_os_str()],
            vec![a("inspect"), bad.as_os_str(), a("app:1.0")],
        ] {
            let o = run_in(&cwd, &tmp, &args);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(3), "{name}: {err}");
            assert_eq!(
                err.lines().filter(|l| l.starts_with("error:")).count(),
                1,
                "{err}"
            );
            assert!(err.contains(&member), "{name}: {member} not named: {err}");
            assert!(stdout(&o).is_empty(), "{}", stdout(&o));
        }
        // import refuses it too, naming the same member.
        let l = d.path().join("l");
        fails(3, &[&member], [a("import"), bad.as_os_str(), l.as_os_str()]);
        assert!(!l.exists());
    }
    assert_eq!(entries(&cwd), Vec::<String>::new());
    assert_eq!(entries(&tmp), Vec::<String>::new());
}

/// The `error:` line of a command, without the verb and archive it starts with.
fn cause(o: &std::process::Output, archive: &Path) -> String {
    let err = stderr(o);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
    let prefix = format!("{}: ", archive.display());
    line.split_once(&prefix)
        .map_or(line.to_string(), |(_, rest)| rest.to_string())
}

#[test]
fn hostile_archives_fail_to_read_as_they_fail_to_import() {
    let d = empty_dir();
    let mut names: Vec<PathBuf> = std::fs::read_dir(testdata("malicious"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 18);
    for f in names {
        let l = d.path().join("l");
        let imported = run([a("import"), f.as_os_str(), l.as_os_str()]);
        assert_eq!(imported.status.code(), Some(3), "{}", f.display());
        assert!(!l.exists());
        for args in [
            vec![a("ls"), f.as_os_str()],
            vec![a("inspect"), f.as_os_str(), a("app:1.0")],
        ] {
            let o = run(&args);
            assert_eq!(o.status.code(), Some(3), "{}: {}", f.display(), stderr(&o));
            assert_eq!(
                cause(&o, &f),
                cause(&imported, &f),
                "{}: read and import fail differently",
                f.display()
            );
            assert!(stderr(&o).starts_with(&format!("error: read {}", f.display())));
        }
    }
    assert_eq!(entries(d.path()), Vec::<String>::new());
}

#[test]
fn import_says_which_tags_it_moved() {
    let d = empty_dir();
    let archive = testdata("archives/docker-save.tar");
    let l = d.path().join("l");
    let first = ok([a("import"), archive.as_os_str(), l.as_os_str()]);
    assert!(!first.contains("moved"), "{first}");
    let r = refs(&l);
    let (app, lint) = (r["app:latest"].clone(), r["tools/lint:3"].clone());
    ok([a("tag"), l.as_os_str(), a("tools/lint:3"), a("app:latest")]);
    let again = ok([a("import"), archive.as_os_str(), l.as_os_str()]);
    assert!(
        again.contains(&format!("  app:latest moved from {lint}\n")),
        "{again}"
    );
    assert_eq!(again.matches("moved").count(), 1, "{again}");
    assert_eq!(refs(&l)["app:latest"], app);

    ok([a("tag"), l.as_os_str(), a("tools/lint:3"), a("app:1.0")]);
    let v = json([a("import"), archive.as_os_str(), l.as_os_str()]);
    let img = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["digest"] == app.as_str())
        .unwrap();
    assert_eq!(
        img["moved"],
        serde_json::json!([{"ref": "app:1.0", "from": lint}])
    );

    // unpack says it too.
    let p = d.path().join("p.tar");
    ok([a("pack"), l.as_os_str(), a("-o"), p.as_os_str()]);
    let u = d.path().join("u");
    ok([a("unpack"), p.as_os_str(), u.as_os_str()]);
    ok([a("tag"), u.as_os_str(), a("tools/lint:3"), a("app:1.0")]);
    let out = ok([a("unpack"), p.as_os_str(), u.as_os_str()]);
    assert!(
        out.contains(&format!("  app:1.0 moved from {lint}\n")),
        "{out}"
    );
}

#[test]
fn pack_and_unpack_count_refs_and_images() {
    let d = empty_dir();
    let l = d.path().join("l");
    ok([
        a("import"),
        testdata("archives/docker-save.tar").as_os_str(),
        l.as_os_str(),
    ]);
    // app:1.0 and app:latest are one image; tools/lint:3 another.
    let p = d.path().join("p.tar");
    let o = run([
        a("pack"),
        l.as_os_str(),
        a("app:1.0"),
        a("app:latest"),
        a("tools/lint:3"),
        a("-o"),
        p.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("packed 3 ref(s) (2 image(s))"),
        "{}",
        stderr(&o)
    );
    // One image with three tags.
    ok([a("tag"), l.as_os_str(), a("app:1.0"), a("app:v2")]);
    let q = d.path().join("q.tar");
    let o = run([
        a("pack"),
        l.as_os_str(),
        a("app:v2"),
        a("app:latest"),
        a("app:1.0"),
        a("-o"),
        q.as_os_str(),
    ]);
    assert!(
        stderr(&o).contains("packed 3 ref(s) (1 image(s))"),
        "{}",
        stderr(&o)
    );
    let u = d.path().join("u");
    let o = run([a("unpack"), q.as_os_str(), u.as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unpacked 1 image(s) with 3 ref(s)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("app:v2, app:latest, app:1.0 -> sha256:"),
        "{}",
        stdout(&o)
    );
    let v = json([a("unpack"), q.as_os_str(), d.path().join("w").as_os_str()]);
    assert_eq!(v["images"].as_array().unwrap().len(), 1);
}

/// indicatif's rendering of a byte count (`{bytes}`, `{total_bytes}`).
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", UNITS[u])
}

/// Runs a shell command line under a pseudo-terminal (`script`); returns what it drew.
fn under_terminal(cmd: &str) -> String {
    let out = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn progress_is_labelled_by_the_command_with_the_archive_size_as_total() {
    // `script` (bsdutils) gives the commands a terminal; missing, this says SKIPPED (and fails
    // under CI=true).
    if !peer("script") {
        return;
    }
    let d = empty_dir();
    let archive = testdata("archives/docker-save.tar");
    let size = std::fs::metadata(&archive).unwrap().len();
    let total = format!("/{}", human_bytes(size));
    let l = d.path().join("l");
    let text = under_terminal(&format!(
        "{} import {} {}",
        bin(),
        archive.display(),
        l.display()
    ));
    assert!(text.contains("  import ["), "{text:?}");
    assert!(text.contains(&total), "no total {total}: {text:?}");
    assert!(!text.contains("/0 B "), "{text:?}");

    let p = d.path().join("p.tar");
    let text = under_terminal(&format!(
        "{} pack {} -o {}",
        bin(),
        l.display(),
        p.display()
    ));
    assert!(text.contains("    pack ["), "{text:?}");
    assert!(!text.contains("export ["), "{text:?}");

    let psize = std::fs::metadata(&p).unwrap().len();
    let u = d.path().join("u");
    let text = under_terminal(&format!("{} unpack {} {}", bin(), p.display(), u.display()));
    assert!(text.contains("  unpack ["), "{text:?}");
    assert!(
        text.contains(&format!("/{}", human_bytes(psize))),
        "{text:?}"
    );

    // From standard input the size is unknown: bytes and rate, no bar, no total.
    let s = d.path().join("s");
    let text = under_terminal(&format!(
        "{} import - {} < {}",
        bin(),
        s.display(),
        archive.display()
    ));
    assert!(text.contains("  import "), "{text:?}");
    assert!(!text.contains("  import ["), "{text:?}");
    assert!(!text.contains("0 B/0 B"), "{text:?}");

    let text = under_terminal(&format!("{} ls {}", bin(), archive.display()));
    assert!(text.contains("    read ["), "{text:?}");
}

/// `podman images` as `REPOSITORY:TAG` lines, sorted.
fn podman_images(dir: &Path) -> Vec<String> {
    let list = sh(podman(dir).args(["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    let mut v: Vec<String> = list.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// What podman 4.3 and skopeo load of a single-ref pack, a multi-ref pack (several images, or
/// one image under two refs) and an export: exactly what the README's pack section and
/// interop table say.
#[test]
fn what_peers_load_of_packs_and_exports() {
    if !peer("podman") || !peer("skopeo") {
        return;
    }
    let d = empty_dir();
    let l = d.path().join("l");
    ok([
        a("import"),
        testdata("archives/docker-save.tar").as_os_str(),
        l.as_os_str(),
    ]);
    let refs = refs(&l);
    let pack = |name: &str, what: &[&str]| {
        let out = d.path().join(name);
        let mut args = vec![a("pack"), l.as_os_str()];
        args.extend(what.iter().map(|r| a(r)));
        args.extend([a("-o"), out.as_os_str()]);
        ok(args);
        out
    };
    let single = pack("single.tar", &["app:1.0"]);
    let multi = pack("multi.tar", &["app:1.0", "tools/lint:3"]);
    let aliases = pack("aliases.tar", &["app:1.0", "app:latest"]);
    let export = d.path().join("export.tar");
    ok([
        a("export"),
        l.as_os_str(),
        a("app:1.0"),
        a("tools/lint:3"),
        a("-o"),
        export.as_os_str(),
    ]);

    // podman load: an oci-archive must hold one index.json entry; an export loads every tag.
    let pd = d.path().join("podman");
    for refused in [&multi, &aliases] {
        let o = podman(&pd)
            .args(["load", "-i"])
            .arg(refused)
            .output()
            .unwrap();
        assert!(!o.status.success(), "podman loads {}", refused.display());
        assert!(
            stderr(&o).contains("more than one image in oci, choose an image"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(podman_images(&pd), Vec::<String>::new());
    sh(podman(&pd).args(["load", "-i"]).arg(&single));
    assert_eq!(podman_images(&pd), ["localhost/app:1.0"]);
    let pe = d.path().join("podman-export");
    sh(podman(&pe).args(["load", "-i"]).arg(&export));
    assert_eq!(
        podman_images(&pe),
        ["docker.io/library/app:1.0", "docker.io/tools/lint:3"]
    );

    // skopeo: a single-ref pack without a ref; a multi-ref pack only with one, digests kept.
    let y = d.path().join("y");
    let copy = |from: String, to: &str| {
        Command::new("skopeo")
            .args(["copy", "--preserve-digests"])
            .arg(from)
            .arg(format!("oci:{}:{to}", y.display()))
            .output()
            .unwrap()
    };
    for refused in [&multi, &aliases] {
        let o = copy(format!("oci-archive:{}", refused.display()), "any");
        assert!(
            !o.status.success(),
            "skopeo reads {} without a ref",
            refused.display()
        );
        assert!(
            stderr(&o).contains("more than one image in oci, choose an image"),
            "{}",
            stderr(&o)
        );
    }
    let o = copy(format!("oci-archive:{}", single.display()), "single");
    assert!(o.status.success(), "{}", stderr(&o));
    for (from, archive, to) in [
        ("tools/lint:3", &multi, "lint"),
        ("app:1.0", &multi, "app"),
        ("app:latest", &aliases, "latest"),
    ] {
        let o = copy(format!("oci-archive:{}:{from}", archive.display()), to);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let got = crate::util::refs(&y);
    assert_eq!(got["single"], refs["app:1.0"]);
    assert_eq!(got["lint"], refs["tools/lint:3"]);
    assert_eq!(got["app"], refs["app:1.0"]);
    assert_eq!(got["latest"], refs["app:latest"]);
}
