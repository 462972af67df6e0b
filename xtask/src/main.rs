//! `cargo xtask <task>`: project automation that needs no shell scripts.

mod bench;
mod demo;
mod fixtures;
mod fuzz;
mod torture;

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
    /// The whole test suite, as CI runs it: every unit, integration, interop, property and
    /// fuzz-regression test (`cargo test --workspace --locked`), then the bounded torture run.
    Ci {
        /// Budget of the torture run, in minutes (0 skips it).
        #[arg(long, default_value_t = 3)]
        torture_minutes: u64,
    },
    /// Time ocitool against its peers and floors on a large generated layout (warm cache).
    Bench(bench::Args),
    /// Run the fuzz targets (cargo +nightly fuzz), seeded from testdata/; crashes are saved
    /// under testdata/fuzz-regressions/.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Only this target (default: all).
        target: Option<String>,
    },
    /// Try to make ocitool lose data: kill -9, concurrent writers, a full disk, damaged and
    /// read-only layouts, SIGINT/SIGTERM; exits non-zero if any campaign found a problem.
    Torture {
        /// Budget of the timed campaigns, in minutes.
        #[arg(long, default_value_t = 3)]
        minutes: u64,
        /// Seed of every random choice (default: from the clock; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Only these campaigns (comma-separated: crash, concurrency, disk-full, faults, hostile, signals, scale).
        #[arg(long)]
        campaign: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::Fixtures { check } => fixtures::run(check),
        Task::Demo => demo::run(),
        Task::Ci { torture_minutes } => ci(torture_minutes),
        Task::Bench(args) => bench::run(args),
        Task::Fuzz { secs, target } => fuzz::run(secs, target.as_deref()),
        Task::Torture {
            minutes,
            seed,
            campaign,
        } => torture::run(minutes, seed, campaign),
    }
}

fn ci(torture_minutes: u64) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["test", "--workspace", "--locked"])
        .current_dir(root())
        .status()?;
    anyhow::ensure!(status.success(), "cargo test failed ({status})");
    if torture_minutes > 0 {
        torture::run(torture_minutes, None, None)?;
    }
    eprintln!("ci: every test passed");
    Ok(())
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}
