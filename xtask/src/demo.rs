//! `cargo xtask demo`: the main job on the sample in `testdata/`, command by command, with
//! the output of each, in `target/demo/`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// Builds the release binary and returns its path.
pub fn build_release() -> anyhow::Result<std::path::PathBuf> {
    let root = crate::root();
    let st = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--package", "ocitool"])
        .current_dir(&root)
        .status()
        .context("cargo build")?;
    if !st.success() {
        bail!("cargo build --release failed");
    }
    // Where cargo put it: CARGO_TARGET_DIR (relative to the workspace, where cargo ran) if
    // set, else target/.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || root.join("target"),
        |d| root.join(std::path::PathBuf::from(d)),
    );
    Ok(target.join("release/ocitool"))
}

fn step(bin: &Path, cwd: &Path, args: &[&str], expect: i32) -> anyhow::Result<()> {
    println!("$ ocitool {}", args.join(" "));
    let out = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .output()
        .context("run ocitool")?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    println!();
    if out.status.code() != Some(expect) {
        bail!(
            "`ocitool {}` exited with {:?}, expected {expect}",
            args.join(" "),
            out.status.code()
        );
    }
    Ok(())
}

pub fn run() -> anyhow::Result<()> {
    let bin = build_release()?;
    let root = crate::root();
    let dir = root.join("target/demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(
        root.join("testdata/archives/docker-save.tar"),
        dir.join("docker-save.tar"),
    )?;
    println!(
        "# The main job on the sample testdata/archives/docker-save.tar (what `docker save` writes),"
    );
    println!(
        "# in {}: import it into a layout, tag it, verify it, and send it on.\n",
        dir.display()
    );
    step(&bin, &dir, &["import", "docker-save.tar", "layout"], 0)?;
    step(&bin, &dir, &["ls", "layout"], 0)?;
    step(
        &bin,
        &dir,
        &[
            "tag",
            "layout",
            "app:1.0",
            "app:1.0.1",
            "registry.example.com/team/app:1.0",
        ],
        0,
    )?;
    step(&bin, &dir, &["inspect", "layout", "app:1.0.1"], 0)?;
    step(&bin, &dir, &["verify", "layout"], 0)?;
    step(
        &bin,
        &dir,
        &["export", "layout", "app:1.0.1", "-o", "app.tar"],
        0,
    )?;
    step(&bin, &dir, &["pack", "layout", "-o", "bundle.tar"], 0)?;
    step(&bin, &dir, &["unpack", "bundle.tar", "other-site"], 0)?;
    step(&bin, &dir, &["verify", "other-site"], 0)?;

    println!(
        "# Sneakernet: app:v2 shares 4 of its 5 layers with app:v1, which the far site already has.\n"
    );
    write_delta_sites(&dir)?;
    step(
        &bin,
        &dir,
        &["inventory", "far-site", "-o", "far-site.inventory.json"],
        0,
    )?;
    step(
        &bin,
        &dir,
        &[
            "pack",
            "near-site",
            "app:v2",
            "--exclude-inventory",
            "far-site.inventory.json",
            "-o",
            "delta.tar",
        ],
        0,
    )?;
    step(
        &bin,
        &dir,
        &["pack", "near-site", "app:v2", "-o", "full.tar"],
        0,
    )?;
    println!(
        "delta.tar is {} bytes; full.tar is {} bytes; the new layer is {} bytes\n",
        std::fs::metadata(dir.join("delta.tar"))?.len(),
        std::fs::metadata(dir.join("full.tar"))?.len(),
        delta_images().1.layers[4].size()
    );
    step(&bin, &dir, &["unpack", "delta.tar", "far-site"], 0)?;
    step(&bin, &dir, &["verify", "far-site"], 0)?;
    println!("# demo finished: every step exited as expected");
    Ok(())
}

/// v1 and v2 of an image: five layers of 256 KiB of random data, the first four shared.
pub fn delta_images() -> (ocitool_testkit::Image, ocitool_testkit::Image) {
    use ocitool_testkit::tarball::{Content, build};
    let mut rng = ocitool_testkit::Rng::new(2026);
    let mut layer = |n: usize| {
        let mut data = vec![0u8; n];
        rng.fill(&mut data);
        build(&[("data.bin", Content::File(&data))])
    };
    let shared: Vec<Vec<u8>> = (0..4).map(|_| layer(256 << 10)).collect();
    let mut v1 = shared.clone();
    v1.push(layer(256 << 10));
    let mut v2 = shared;
    v2.push(layer(256 << 10));
    let p = ("linux", "amd64", None);
    let gz = ocitool_testkit::Compression::Gzip;
    (
        ocitool_testkit::Image::from_tars(
            &v1,
            p,
            gz,
            false,
            serde_json::Value::Null,
            serde_json::Value::Null,
        ),
        ocitool_testkit::Image::from_tars(
            &v2,
            p,
            gz,
            false,
            serde_json::Value::Null,
            serde_json::Value::Null,
        ),
    )
}

fn write_delta_sites(dir: &Path) -> anyhow::Result<()> {
    let (v1, v2) = delta_images();
    let mut near = ocitool_testkit::LayoutWriter::new();
    near.add_image(&v1)
        .add_image(&v2)
        .list(&v1.manifest, Some("app:v1"))
        .list(&v2.manifest, Some("app:v2"));
    near.write(&dir.join("near-site"))?;
    let mut far = ocitool_testkit::LayoutWriter::new();
    far.add_image(&v1).list(&v1.manifest, Some("app:v1"));
    far.write(&dir.join("far-site"))?;
    Ok(())
}
