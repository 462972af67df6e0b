//! `cargo xtask <task>`: project automation that needs no shell scripts.

mod bench;
mod demo;
mod fixtures;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Regenerate testdata/ deterministically (--check: fail if it differs).
    Fixtures {
        #[arg(long)]
        check: bool,
    },
    /// Run the main job on the sample in testdata/, showing each command and its output.
    Demo,
    /// Time ocitool against its peers and floors on a large generated layout (warm cache).
    Bench(bench::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::Fixtures { check } => fixtures::run(check),
        Task::Demo => demo::run(),
        Task::Bench(args) => bench::run(args),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}
