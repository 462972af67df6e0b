//! The git commit the binary is built from, for `--version`. Shared by `build.rs` and a unit
//! test of the binary crate (which checks the fallback outside git).

use std::path::Path;
use std::process::Command;

/// `git rev-parse --short HEAD` of the checkout `dir` belongs to, if git is installed and
/// `dir` is tracked there; "unknown" otherwise: a source tarball, also one unpacked inside
/// some other git repository (whose commit says nothing about these sources). Prints the
/// `cargo:rerun-if-changed` lines that rebuild when HEAD or the branch it names moves.
pub fn commit(dir: &Path) -> String {
    let git = |args: &[&str]| -> Option<String> {
        let o = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        let s = String::from_utf8(o.stdout).ok()?;
        (o.status.success() && !s.trim().is_empty()).then(|| s.trim().to_string())
    };
    // Cargo.toml is tracked in a checkout of ocitool, not in a tarball unpacked elsewhere.
    if git(&["ls-files", "--error-unmatch", "--", "Cargo.toml"]).is_none() {
        return "unknown".into();
    }
    let Some(hash) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    // HEAD, the branch file it points at, and packed-refs (where a branch may live), each
    // only if it exists: a path that does not exist would rerun the build every time.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for p in watched.into_iter().flatten() {
        if Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    hash
}
