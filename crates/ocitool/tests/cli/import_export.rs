//! import and export: round trips, digests kept, every tag, failures leave nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// Exports `refs` of a fixture as a docker archive; returns the archive path.
fn export_fixture(fx: &Fx, refs: &[&str], extra: &[&str]) -> PathBuf {
    let out = fx.dir.path().join("out.tar");
    let mut args: Vec<&std::ffi::OsStr> = vec!["export".as_ref(), fx.path.as_os_str()];
    args.extend(refs.iter().map(std::ffi::OsStr::new));
    args.extend(["-o".as_ref(), out.as_os_str()]);
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    ok(&args);
    out
}

fn tar_list(archive: &Path) -> Vec<String> {
    sh(Command::new("tar").arg("tf").arg(archive))
        .lines()
        .map(str::to_string)
        .collect()
}

pub(crate) fn tar_cat(archive: &Path, member: &str) -> Vec<u8> {
    Command::new("tar")
        .arg("xOf")
        .arg(archive)
        .arg(member)
        .output()
        .unwrap()
        .stdout
}

#[test]
fn export_writes_both_docker_formats_deterministically() {
    let fx = fixture("multi-arch");
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "multi:1.0".as_ref(),
        "app:1.0".as_ref(),
        "team/app:latest".as_ref(),
    ]);
    let a = export_fixture(
        &fx,
        &["app:1.0", "team/app:latest"],
        &["--platform", "linux/amd64"],
    );
    let first = std::fs::read(&a).unwrap();
    let b = export_fixture(
        &fx,
        &["app:1.0", "team/app:latest"],
        &["--platform", "linux/amd64"],
    );
    assert_eq!(
        first,
        std::fs::read(&b).unwrap(),
        "same layout and refs, same bytes"
    );
    // Created like `tar` would create it (0666 less the umask), not 0600 like a bare temp file.
    let c = fx.dir.path().join("umask.tar");
    sh(Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" export \"$1\" app:1.0 --platform linux/amd64 -o \"$2\"")
        .arg(bin())
        .arg(&fx.path)
        .arg(&c));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&c).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "archive mode under umask 022: {mode:o}");

    let names = tar_list(&a);
    let (_, amd, _, _) = ocitool_testkit::fixtures::multi_arch();
    let mut want: Vec<String> = vec!["blobs/".into(), "blobs/sha256/".into()];
    let mut blobs: Vec<String> = amd
        .blobs()
        .iter()
        .map(|b| format!("blobs/sha256/{}", b.digest.encoded()))
        .collect();
    blobs.sort();
    want.extend(blobs);
    want.extend(["index.json", "manifest.json", "oci-layout", "repositories"].map(String::from));
    assert_eq!(
        names, want,
        "sorted, each blob once, only the chosen platform"
    );

    let mj: Value = serde_json::from_slice(&tar_cat(&a, "manifest.json")).unwrap();
    assert_eq!(mj.as_array().unwrap().len(), 1);
    assert_eq!(
        mj[0]["Config"],
        format!("blobs/sha256/{}", amd.config.digest.encoded())
    );
    assert_eq!(
        mj[0]["RepoTags"],
        serde_json::json!(["docker.io/library/app:1.0", "docker.io/team/app:latest"])
    );
    assert_eq!(mj[0]["Layers"].as_array().unwrap().len(), 2);
    let idx: Value = serde_json::from_slice(&tar_cat(&a, "index.json")).unwrap();
    let ms = idx["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2, "one descriptor per tag");
    assert_eq!(ms[0]["digest"], amd.manifest.digest.to_string());
    assert_eq!(
        ms[0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/app:1.0"
    );
    assert_eq!(
        ms[0]["annotations"]["org.opencontainers.image.ref.name"],
        "1.0"
    );
    assert_eq!(
        ms[1]["annotations"]["io.containerd.image.name"],
        "docker.io/team/app:latest"
    );
    let repos: Value = serde_json::from_slice(&tar_cat(&a, "repositories")).unwrap();
    assert_eq!(repos["app"]["1.0"], amd.diff_ids[1].encoded());
    assert_eq!(
        tar_cat(&a, "oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
    // The archive is itself a valid OCI layout.
    let x = fx.dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    sh(Command::new("tar").arg("xf").arg(&a).arg("-C").arg(&x));
    verify_clean(&x);
}

#[test]
fn export_of_an_index_needs_a_platform_when_the_host_has_none() {
    let fx = fixture("multi-arch");
    // The host (linux/amd64 here) is picked by default.
    if ocitool_spec::Platform::host().to_string() == "linux/amd64" {
        export_fixture(&fx, &["multi:1.0"], &[]);
    }
    let out = fx.dir.path().join("x.tar");
    fails(
        3,
        &["linux/s390x", "linux/amd64", "linux/arm64/v8"],
        [
            "export".as_ref(),
            fx.path.as_os_str(),
            "multi:1.0".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            "--platform".as_ref(),
            "linux/s390x".as_ref(),
        ],
    );
    assert!(!out.exists(), "no partial archive");
    assert_eq!(
        std::fs::read_dir(fx.dir.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".ocitool"))
            .count(),
        0
    );
}

#[test]
fn export_refuses_damage_and_leaves_no_file() {
    let fx = fixture("corrupt/minimal");
    let out = fx.dir.path().join("x.tar");
    fails(
        3,
        &["sha256:"],
        [
            "export".as_ref(),
            fx.path.as_os_str(),
            "app:1.0".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    );
    assert!(!out.exists());
    let fx = fixture("corrupt/wrong-diff-id");
    fails(
        3,
        &["diff_id"],
        [
            "export".as_ref(),
            fx.path.as_os_str(),
            "app:1.0".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    );
    assert!(!out.exists());
}

#[test]
fn export_names_that_docker_cannot_load_are_refused() {
    let fx = fixture("minimal");
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "Bad:Tag".as_ref(),
        "--allow-any".as_ref(),
    ]);
    let out = fx.dir.path().join("x.tar");
    fails(
        3,
        &["Bad:Tag", "--format oci"],
        [
            "export".as_ref(),
            fx.path.as_os_str(),
            "Bad:Tag".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    );
    // The oci format keeps any ref name verbatim.
    ok([
        "export".as_ref(),
        fx.path.as_os_str(),
        "Bad:Tag".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "--format".as_ref(),
        "oci".as_ref(),
    ]);
    let idx: Value = serde_json::from_slice(&tar_cat(&out, "index.json")).unwrap();
    assert_eq!(
        idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "Bad:Tag"
    );
    assert!(!tar_list(&out).contains(&"manifest.json".to_string()));
}

#[test]
fn export_to_stdout_streams_the_same_bytes() {
    let fx = fixture("minimal");
    let file = export_fixture(&fx, &["app:1.0"], &[]);
    let o = run([
        "export".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "-o".as_ref(),
        "-".as_ref(),
    ]);
    assert!(o.status.success());
    assert_eq!(o.stdout, std::fs::read(file).unwrap());
}

#[test]
fn round_trip_keeps_manifest_and_config_digests_and_tags() {
    for (name, r) in [
        ("minimal", "app:1.0"),
        ("zstd", "zstd:1"),
        ("uncompressed", "plain:1"),
        ("unknown-fields", "canary:1"),
        ("docker-v2s2", "dockerish:amd64-only"),
    ] {
        let fx = fixture(name);
        let before = json(["inspect".as_ref(), fx.path.as_os_str(), r.as_ref()]);
        let tag = if r.contains(':') {
            r.to_string()
        } else {
            format!("{r}:latest")
        };
        let archive = export_fixture(&fx, &[r], &[]);
        let dest = fx.dir.path().join("dest");
        let rep = json(["import".as_ref(), archive.as_os_str(), dest.as_os_str()]);
        assert_eq!(rep["dialect"], "oci-layout+docker-save", "{name}");
        let expect_ref = ocitool_spec::refname::familiar(&tag).to_string();
        let after = json(["inspect".as_ref(), dest.as_os_str(), expect_ref.as_ref()]);
        assert_eq!(
            after["digest"], before["digest"],
            "{name}: manifest digest kept"
        );
        assert_eq!(
            after["config"]["digest"], before["config"]["digest"],
            "{name}: image ID kept"
        );
        assert_eq!(
            after["config"]["diffIds"], before["config"]["diffIds"],
            "{name}: diff_ids kept"
        );
        verify_clean(&dest);
        // Importing again changes nothing.
        let snap = snapshot(&dest);
        ok(["import".as_ref(), archive.as_os_str(), dest.as_os_str()]);
        assert_eq!(
            snapshot(&dest),
            snap,
            "{name}: second import changed the layout"
        );
    }
}

#[test]
fn import_from_standard_input_gzip_and_zstd() {
    let fx = fixture("minimal");
    let archive = export_fixture(&fx, &["app:1.0"], &[]);
    for (tool, magic) in [("gzip", "gzip"), ("zstd", "zstd")] {
        let compressed = fx.dir.path().join(format!("a.{tool}"));
        sh(Command::new("sh").arg("-c").arg(format!(
            "{tool} -c < '{}' > '{}'",
            archive.display(),
            compressed.display()
        )));
        let dest = fx.dir.path().join(format!("dest-{tool}"));
        let child = Command::new(bin())
            .args([
                "import".as_ref(),
                "-".as_ref(),
                dest.as_os_str(),
                "--json".as_ref(),
            ])
            .stdin(std::fs::File::open(&compressed).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["compression"], magic);
        assert_eq!(v["images"][0]["refs"], serde_json::json!(["app:1.0"]));
        verify_clean(&dest);
    }
}

#[test]
fn import_tag_adds_refs_and_needs_one_image() {
    let fx = fixture("minimal");
    let archive = export_fixture(&fx, &["app:1.0"], &[]);
    let dest = fx.dir.path().join("dest");
    ok([
        "import".as_ref(),
        archive.as_os_str(),
        dest.as_os_str(),
        "--tag".as_ref(),
        "mine:1".as_ref(),
        "--tag".as_ref(),
        "mine:latest".as_ref(),
    ]);
    let r = refs(&dest);
    assert_eq!(
        r.keys().collect::<Vec<_>>(),
        ["app:1.0", "mine:1", "mine:latest"]
    );
    let fx2 = fixture("multi-arch");
    ok([
        "tag".as_ref(),
        fx2.path.as_os_str(),
        "multi:1.0".as_ref(),
        "a:1".as_ref(),
    ]);
    let two = fx2.dir.path().join("two.tar");
    let (_, _, b, _) = ocitool_testkit::fixtures::multi_arch();
    ok([
        "tag".as_ref(),
        fx2.path.as_os_str(),
        b.manifest.digest.to_string().as_ref(),
        "b:1".as_ref(),
    ]);
    ok([
        "export".as_ref(),
        fx2.path.as_os_str(),
        "a:1".as_ref(),
        "b:1".as_ref(),
        "-o".as_ref(),
        two.as_os_str(),
    ]);
    let dest2 = fx2.dir.path().join("dest");
    fails(
        3,
        &["--tag", "exactly one image"],
        [
            "import".as_ref(),
            two.as_os_str(),
            dest2.as_os_str(),
            "--tag".as_ref(),
            "x:1".as_ref(),
        ],
    );
    assert!(
        !dest2.exists(),
        "a layout created for a failed import is removed"
    );
}

#[test]
fn an_untagged_image_is_listed_by_digest_and_said_so() {
    let fx = fixture("minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    let d = img.manifest.digest.to_string();
    let archive = export_fixture(&fx, &[&d], &[]);
    let dest = fx.dir.path().join("dest");
    let o = run(["import".as_ref(), archive.as_os_str(), dest.as_os_str()]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("no tag") && stderr(&o).contains(&d),
        "{}",
        stderr(&o)
    );
    let rows = json(["ls".as_ref(), dest.as_os_str()]);
    assert_eq!(rows[0]["ref"], "");
    assert_eq!(rows[0]["digest"], d);
}

#[test]
fn a_failed_import_leaves_the_destination_exactly_as_it_was() {
    let fx = fixture("minimal");
    let archive = export_fixture(&fx, &["app:1.0"], &[]);
    let dest = fixture("multi-arch");
    let before = snapshot(&dest.path);
    // Truncate the archive in the middle of a layer.
    let bytes = std::fs::read(&archive).unwrap();
    let cut = fx.dir.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        3,
        &["truncated"],
        ["import".as_ref(), cut.as_os_str(), dest.path.as_os_str()],
    );
    assert_eq!(snapshot(&dest.path), before);
    assert_eq!(
        std::fs::read_dir(dest.path.join(".ocitool/tmp"))
            .unwrap()
            .count(),
        0,
        "staging removed"
    );
}

/// Layers of several MiB go to the disk directly (aligned chunks, `O_DIRECT`) in a durable
/// layout, and a durable archive is written the same way; the bytes must not depend on it:
/// durable and `--no-fsync` imports store the same blobs, and durable, `--no-fsync` and
/// standard-output exports are the same archive.
#[test]
fn large_layers_are_the_same_bytes_written_directly_or_through_the_cache() {
    use ocitool_testkit::archives::{Docker25Options, docker25_classic};
    use ocitool_testkit::tarball::{Content, build};
    let d = empty_dir();
    let mut rng = ocitool_testkit::Rng::new(99);
    let mut big = vec![0u8; (6 << 20) + 777];
    rng.fill(&mut big);
    let mut small = vec![0u8; 5000];
    rng.fill(&mut small);
    let tars = vec![
        build(&[("big.bin", Content::File(&big))]),
        build(&[("small.bin", Content::File(&small))]),
    ];
    let img = ocitool_testkit::Image::from_tars(
        &tars,
        ("linux", "amd64", None),
        ocitool_testkit::Compression::None,
        false,
        Value::Null,
        Value::Null,
    );
    let archive = d.path().join("in.tar");
    std::fs::write(
        &archive,
        docker25_classic(&[(&img, &["big:1"])], &Docker25Options::default()),
    )
    .unwrap();
    let durable = d.path().join("durable");
    let cached = d.path().join("cached");
    ok(["import".as_ref(), archive.as_os_str(), durable.as_os_str()]);
    ok([
        "import".as_ref(),
        archive.as_os_str(),
        cached.as_os_str(),
        "--no-fsync".as_ref(),
    ]);
    for (tar, diff_id) in tars.iter().zip(&img.diff_ids) {
        for l in [&durable, &cached] {
            let stored = std::fs::read(blob_path(l, &diff_id.to_string())).unwrap();
            assert!(stored == *tar, "{diff_id} in {}", l.display());
        }
    }
    verify_clean(&durable);
    let a = d.path().join("a.tar");
    let b = d.path().join("b.tar");
    ok([
        "export".as_ref(),
        durable.as_os_str(),
        "big:1".as_ref(),
        "-o".as_ref(),
        a.as_os_str(),
    ]);
    ok([
        "export".as_ref(),
        durable.as_os_str(),
        "big:1".as_ref(),
        "-o".as_ref(),
        b.as_os_str(),
        "--no-fsync".as_ref(),
    ]);
    let o = run([
        "export".as_ref(),
        durable.as_os_str(),
        "big:1".as_ref(),
        "-o".as_ref(),
        "-".as_ref(),
    ]);
    assert!(o.status.success());
    let a = std::fs::read(a).unwrap();
    assert!(a.len() > 6 << 20);
    assert!(
        a == std::fs::read(b).unwrap(),
        "durable and --no-fsync archives differ"
    );
    assert!(a == o.stdout, "file and standard-output archives differ");
}
