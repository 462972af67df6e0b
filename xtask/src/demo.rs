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
    Ok(root.join("target/release/ocitool"))
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
    std::fs::copy(root.join("testdata/archives/docker-save.tar"), dir.join("docker-save.tar"))?;
    println!("# The main job on the sample testdata/archives/docker-save.tar (what `docker save` writes),");
    println!("# in {}: import it into a layout, tag it, verify it, and send it on.\n", dir.display());
    step(&bin, &dir, &["import", "docker-save.tar", "layout"], 0)?;
    step(&bin, &dir, &["ls", "layout"], 0)?;
    step(&bin, &dir, &["tag", "layout", "app:1.0", "app:1.0.1", "registry.example.com/team/app:1.0"], 0)?;
    step(&bin, &dir, &["inspect", "layout", "app:1.0.1"], 0)?;
    step(&bin, &dir, &["verify", "layout"], 0)?;
    step(&bin, &dir, &["export", "layout", "app:1.0.1", "-o", "app.tar"], 0)?;
    step(&bin, &dir, &["pack", "layout", "-o", "bundle.tar"], 0)?;
    step(&bin, &dir, &["unpack", "bundle.tar", "other-site"], 0)?;
    step(&bin, &dir, &["verify", "other-site"], 0)?;
    println!("# demo finished: every step exited as expected");
    Ok(())
}
