//! **hostile**: layouts crafted by someone else.
//!
//! 1. Special files at every path ocitool opens in a layout (its own `.ocitool/` state, the
//!    lock files, `blobs/`, `blobs/<alg>/`, `index.json`, `oci-layout`, blobs of each kind):
//!    a symlink to a decoy directory or file outside the layout, a fifo, a device (as root),
//!    a directory where a file belongs and a file where a directory belongs. Every command
//!    runs on each: none may hang, panic or exit with another code than 0, 1 or 3 (3 with one
//!    `error:` line), and nothing outside the layout may change (the decoys are compared byte
//!    for byte, and no file appears where a symlink points).
//! 2. Contradicting descriptors: `index.json` gains entries that name the same blobs with
//!    other media types (a manifest as `application/octet-stream`, a config as a layer, an
//!    index as a manifest...), other sizes, and children of indexes directly, in random
//!    orders. `gc --dry-run` must never plan to delete a blob the original refs reach, the
//!    plan and `verify`'s findings must not depend on the order of the entries, and a real
//!    `gc` must keep every reachable blob.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ocitool_testkit::{Compression, Image, LayoutWriter, Rng, image};
use serde_json::{Value, json};

use super::{Ctx, Report, argv, copy_dir, fresh_copy, ocitool, s, snapshot, uniform};

/// Long enough for any command on these small layouts; a hang is what it catches.
const TIMEOUT: Duration = Duration::from_secs(20);
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const OCTETS: &str = "application/octet-stream";

#[derive(Clone, Copy, Debug)]
enum Shape {
    SymlinkToDir,
    SymlinkToFile,
    Fifo,
    Device,
    Directory,
    File,
}

const SHAPES: [Shape; 6] = [
    Shape::SymlinkToDir,
    Shape::SymlinkToFile,
    Shape::Fifo,
    Shape::Device,
    Shape::Directory,
    Shape::File,
];

pub(super) fn run(ctx: &Ctx, rng: &mut Rng) -> anyhow::Result<Report> {
    let dir = ctx.work.join("hostile");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let mut details = Vec::new();
    let (runs, special_problems) = special_files(ctx, &dir, &mut details)?;
    let (orders, contradiction_problems) = contradictions(ctx, rng, &dir, &mut details)?;
    let ok = special_problems + contradiction_problems == 0;
    let line = format!(
        "hostile: {runs} commands on layouts with symlinks, fifos, devices and misplaced files at every path ocitool opens: hangs, panics, wrong exits or changes outside {special_problems}; {orders} orders of contradicting index.json entries: blobs lost or order-dependent results {contradiction_problems}"
    );
    Ok(Report { line, ok, details })
}

// ---------------------------------------------------------------------------------------------
// 1. special files
// ---------------------------------------------------------------------------------------------

/// The test image: a multi-platform index, an image with a referrer, all in one layout.
struct Fixture {
    layout: LayoutWriter,
    index: ocitool_testkit::Blob,
    a: Image,
    b: Image,
    referrer: ocitool_testkit::Blob,
    empty: ocitool_testkit::Blob,
    payload: ocitool_testkit::Blob,
}

fn fixture() -> Fixture {
    let amd = ("linux", "amd64", None);
    let arm = ("linux", "arm64", Some("v8"));
    let a = Image::small(41, 2, amd, Compression::Gzip, false);
    let b = Image::small(42, 1, arm, Compression::Gzip, false);
    let index = image::index(
        &[(&a.manifest, Some(amd)), (&b.manifest, Some(arm))],
        false,
        Value::Null,
    );
    let empty = ocitool_testkit::Blob::new(EMPTY, b"{}".to_vec());
    let payload = ocitool_testkit::Blob::new("application/vnd.example.sig", b"signature".to_vec());
    let referrer = image::manifest(
        &empty,
        std::slice::from_ref(&payload),
        false,
        json!({"artifactType": "application/vnd.example.sig", "subject": a.manifest.descriptor()}),
    );
    let mut layout = LayoutWriter::new();
    layout
        .add_image(&a)
        .add_image(&b)
        .add_blob(&index)
        .add_blob(&empty)
        .add_blob(&payload)
        .add_blob(&referrer)
        .list(&index, Some("multi:1"))
        .list(&a.manifest, Some("app:1"));
    Fixture {
        layout,
        index,
        a,
        b,
        referrer,
        empty,
        payload,
    }
}

fn make(shape: Shape, at: &Path, decoy: &Path) -> anyhow::Result<bool> {
    if fs::symlink_metadata(at).is_ok() {
        if fs::symlink_metadata(at)?.is_dir() {
            fs::remove_dir_all(at)?;
        } else {
            fs::remove_file(at)?;
        }
    }
    if let Some(p) = at.parent() {
        fs::create_dir_all(p)?;
    }
    match shape {
        Shape::SymlinkToDir => std::os::unix::fs::symlink(decoy, at)?,
        Shape::SymlinkToFile => std::os::unix::fs::symlink(decoy.join("precious"), at)?,
        Shape::Fifo => {
            let st = Command::new("mkfifo").arg(at).status()?;
            anyhow::ensure!(st.success(), "mkfifo {} failed", at.display());
        }
        Shape::Device => {
            // The null device's numbers: harmless even if something wrongly wrote to it.
            let st = Command::new("mknod")
                .arg(at)
                .args(["c", "1", "3"])
                .status()?;
            if !st.success() {
                return Ok(false); // not root: no devices
            }
        }
        Shape::Directory => fs::create_dir_all(at.join("inside"))?,
        Shape::File => fs::write(at, b"a file where a directory belongs")?,
    }
    Ok(true)
}

fn special_files(
    ctx: &Ctx,
    dir: &Path,
    details: &mut Vec<String>,
) -> anyhow::Result<(usize, usize)> {
    let fx = fixture();
    let pristine = dir.join("pristine");
    fx.layout.write(&pristine)?;
    // Lock files and tmp exist as ocitool leaves them.
    super::must(ctx, &argv(&["tag", &s(&pristine), "app:1", "app:latest"]))?;
    let other = dir.join("other");
    fx.layout.write(&other)?;
    let archive = dir.join("input.tar");
    super::must(ctx, &argv(&["pack", &s(&other), "-o", &s(&archive)]))?;
    let docker = dir.join("input-docker.tar");
    super::must(
        ctx,
        &argv(&["export", &s(&other), "app:1", "-o", &s(&docker)]),
    )?;

    let blob = |b: &ocitool_testkit::Blob| format!("blobs/sha256/{}", b.digest.encoded());
    let targets: Vec<String> = vec![
        ".ocitool".into(),
        ".ocitool/tmp".into(),
        ".ocitool/partial".into(),
        ".ocitool/gc.lock".into(),
        ".ocitool/index.lock".into(),
        "blobs".into(),
        "blobs/sha256".into(),
        "blobs/sha512".into(),
        "index.json".into(),
        "oci-layout".into(),
        blob(&fx.index),
        blob(&fx.a.manifest),
        blob(&fx.a.config),
        blob(&fx.a.layers[0]),
        blob(&fx.referrer),
    ];
    let decoy = dir.join("decoy");
    let out = dir.join("out");
    let (mut runs, mut problems) = (0, 0);
    for target in &targets {
        for shape in SHAPES {
            let layout = dir.join("layout");
            fresh_copy(&pristine, &layout)?;
            fresh_copy(&pristine, &decoy)?; // digest-named files and all, outside the layout
            fs::write(decoy.join("precious"), b"keep me")?;
            let decoy_before = snapshot(&decoy, false)?;
            if !make(shape, &layout.join(target), &decoy)? {
                continue;
            }
            let l = s(&layout);
            let o = s(&out);
            let commands: Vec<Vec<String>> = vec![
                argv(&["ls", &l]),
                argv(&["ls", &l, "--tree"]),
                argv(&["inspect", &l, "app:1"]),
                argv(&["inspect", &l, "multi:1", "--platform", "linux/arm64"]),
                argv(&["verify", &l]),
                argv(&["verify", &l, "app:1"]),
                argv(&["tag", &l, "app:1", "app:2"]),
                argv(&["untag", &l, "app:latest"]),
                argv(&["gc", &l, "--dry-run"]),
                argv(&["gc", &l]),
                argv(&["gc", &l, "--force"]),
                argv(&["import", &s(&docker), &l]),
                argv(&["unpack", &s(&archive), &l]),
                argv(&["copy", &l, &s(&dir.join("copy-out")), "app:1"]),
                argv(&["copy", &s(&other), &l, "multi:1"]),
                argv(&["export", &l, "app:1", "-o", &format!("{o}/e.tar")]),
                argv(&["pack", &l, "-o", &format!("{o}/p.tar")]),
                argv(&["inventory", &l]),
                argv(&["convert", &l, "app:1", "app:zstd", "--compression", "zstd"]),
                argv(&["prune", &l, "--keep", "1"]),
                argv(&["protect", &l, "--semver"]),
            ];
            for args in &commands {
                fs::create_dir_all(&out)?;
                let _ = fs::remove_dir_all(dir.join("copy-out"));
                let r = ocitool(ctx, args, TIMEOUT)?;
                runs += 1;
                let label = format!("{target} as {shape:?}: `{}`", super::show(args));
                let mut bad = Vec::new();
                if r.timed_out {
                    bad.push("hung".to_string());
                }
                match r.code {
                    Some(0) | Some(1) => {}
                    Some(3) if r.error_lines().len() == 1 => {}
                    _ => bad.push(format!("exit {:?} (stderr {:?})", r.code, r.stderr.trim())),
                }
                if r.stderr.contains("panicked") || r.stderr.contains("internal error") {
                    bad.push("panicked".into());
                }
                if snapshot(&decoy, false)? != decoy_before {
                    bad.push("changed the decoy outside the layout".into());
                    fresh_copy(&pristine, &decoy)?;
                    fs::write(decoy.join("precious"), b"keep me")?;
                }
                if !bad.is_empty() {
                    problems += 1;
                    details.push(format!("{label}: {}", bad.join("; ")));
                }
                let _ = fs::remove_dir_all(&out);
            }
        }
    }
    Ok((runs, problems))
}

// ---------------------------------------------------------------------------------------------
// 2. contradicting descriptors
// ---------------------------------------------------------------------------------------------

fn contradictions(
    ctx: &Ctx,
    rng: &mut Rng,
    dir: &Path,
    details: &mut Vec<String>,
) -> anyhow::Result<(usize, usize)> {
    let fx = fixture();
    let base = dir.join("contra-base");
    fx.layout.write(&base)?;
    let all: BTreeSet<String> = [
        &fx.index,
        &fx.a.manifest,
        &fx.a.config,
        &fx.b.manifest,
        &fx.b.config,
        &fx.referrer,
        &fx.empty,
        &fx.payload,
    ]
    .into_iter()
    .chain(fx.a.layers.iter())
    .chain(fx.b.layers.iter())
    .map(|b| b.digest.to_string())
    .collect();
    let original: Value = serde_json::from_slice(&fx.layout.index_json())?;
    let blobs = [
        (&fx.index, INDEX),
        (&fx.a.manifest, MANIFEST),
        (&fx.b.manifest, MANIFEST),
        (&fx.a.config, CONFIG),
        (&fx.a.layers[0], LAYER_GZ),
        (&fx.referrer, MANIFEST),
        (&fx.empty, EMPTY),
    ];
    let types = [
        OCTETS,
        MANIFEST,
        INDEX,
        CONFIG,
        LAYER_GZ,
        EMPTY,
        "application/vnd.docker.distribution.manifest.v2+json",
    ];
    let rounds = 12 + 4 * ctx.minutes as usize;
    let (mut orders, mut problems) = (0, 0);
    for round in 0..rounds {
        // Mutations: extra entries that contradict the real ones.
        let mut entries: Vec<Value> = original["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for _ in 0..1 + uniform(rng, 6) {
            let (b, _) = blobs[uniform(rng, blobs.len())];
            let mt = types[uniform(rng, types.len())];
            let size = if uniform(rng, 5) == 0 {
                b.size() + 1
            } else {
                b.size()
            };
            let mut d = json!({"mediaType": mt, "digest": b.digest.to_string(), "size": size});
            if uniform(rng, 3) == 0 {
                d["annotations"] = json!({"org.opencontainers.image.ref.name": format!("x{}:{}", round, uniform(rng, 1000))});
            }
            entries.push(d);
        }
        let mut results = Vec::new();
        for order in 0..3 {
            let mut e = entries.clone();
            if order > 0 {
                // Fisher-Yates with the campaign's generator.
                for i in (1..e.len()).rev() {
                    e.swap(i, uniform(rng, i + 1));
                }
            }
            let layout = dir.join(format!("contra-{order}"));
            fresh_copy(&base, &layout)?;
            let mut ix = original.clone();
            ix["manifests"] = Value::Array(e);
            fs::write(layout.join("index.json"), serde_json::to_vec(&ix)?)?;
            let l = s(&layout);
            let plan = ocitool(
                ctx,
                &argv(&["gc", &l, "--dry-run", "--json", "--force"]),
                TIMEOUT,
            )?;
            let verify = ocitool(ctx, &argv(&["verify", &l, "--json"]), TIMEOUT)?;
            orders += 1;
            let label = format!("round {round} order {order}");
            let removed: BTreeSet<String> = if plan.ok() {
                serde_json::from_str::<Value>(&plan.stdout)?["removed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["digest"].as_str().map(str::to_string))
                    .collect()
            } else {
                problems += 1;
                details.push(format!("{label}: gc --dry-run --force: {}", plan.brief()));
                continue;
            };
            let lost: Vec<&String> = removed.intersection(&all).collect();
            if !lost.is_empty() {
                problems += 1;
                details.push(format!("{label}: gc would delete reachable blobs {lost:?}"));
                let _ = copy_dir(&layout, &dir.join(format!("failed-gc-{round}-{order}")));
            }
            let findings: BTreeSet<(String, String)> =
                match serde_json::from_str::<Value>(&verify.stdout) {
                    Ok(v) => v["problems"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            (
                                p["digest"].as_str().unwrap_or_default().to_string(),
                                p["path"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                    Err(_) => {
                        problems += 1;
                        details.push(format!("{label}: verify --json: {}", verify.brief()));
                        continue;
                    }
                };
            // A real gc (when it dares) keeps every reachable blob.
            let real = ocitool(ctx, &argv(&["gc", &l]), TIMEOUT)?;
            if real.ok() {
                for d in &all {
                    let hex = d.trim_start_matches("sha256:");
                    if !layout.join("blobs/sha256").join(hex).exists() {
                        problems += 1;
                        details.push(format!("{label}: gc deleted reachable {d}"));
                    }
                }
            } else if real.code != Some(3) {
                problems += 1;
                details.push(format!("{label}: gc: {}", real.brief()));
            }
            results.push((removed, findings, verify.code));
        }
        if results.windows(2).any(|w| w[0] != w[1]) {
            problems += 1;
            details.push(format!(
                "round {round}: results depend on the order of index.json entries: {:?}",
                results
                    .iter()
                    .map(|(r, f, c)| (r.len(), f.len(), *c))
                    .collect::<Vec<_>>()
            ));
            let _ = copy_dir(
                &dir.join("contra-0"),
                &dir.join(format!("failed-order-{round}")),
            );
        }
    }
    Ok((orders, problems))
}
