//! Build-time facts of the binary: the git commit `--version` names, and a manual page per
//! command (clap_mangen), made from the same clap definition the binary parses with
//! (`src/cli.rs`, included here) and embedded for `ocitool man`.

use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;
#[path = "build/commit.rs"]
mod commit;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/commit.rs");
    println!("cargo:rerun-if-changed=src/cli.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let commit = commit::commit(&dir);
    println!("cargo:rustc-env=OCITOOL_COMMIT={commit}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let version = format!("{} ({commit})", env!("CARGO_PKG_VERSION"));
    let version: &'static str = version.leak();
    man_pages(&out, cli::command().version(version), version);
}

/// Writes `man/<page>.1` for ocitool and each of its commands, and `man_pages.rs`: the list
/// of (command, page) that `ocitool man` prints and installs.
fn man_pages(out: &Path, cmd: clap::Command, version: &str) {
    let dir = out.join("man");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/man");
    // As `clap_mangen::generate_to`, with every page naming the version (a subcommand has
    // none of its own).
    fn generate(cmd: clap::Command, dir: &Path, source: &str) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            generate(sub, dir, source);
        }
        clap_mangen::Man::new(cmd)
            .source(source)
            .generate_to(dir)
            .expect("write a manual page");
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    generate(cmd, &dir, &format!("ocitool {version}"));
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .expect("read OUT_DIR/man")
        .map(|e| {
            e.expect("read OUT_DIR/man")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    pages.sort();
    let mut rs = String::from("&[\n");
    for p in &pages {
        let name = p.strip_suffix(".1").expect("pages end in .1");
        rs.push_str(&format!(
            "    ({name:?}, include_str!(concat!(env!(\"OUT_DIR\"), \"/man/{p}\"))),\n"
        ));
    }
    rs.push(']');
    std::fs::write(out.join("man_pages.rs"), rs).expect("write OUT_DIR/man_pages.rs");
}
