//! The command line (binding contract: `../shared/CLI.md`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ocitool",
    version,
    about = "Tag, inspect, verify and move container images in OCI image layouts. No daemon, no network.",
    after_help = "Exit codes: 0 ok; 1 verify found problems; 2 usage error; 3 the operation failed; 4 the layout is locked (--no-wait).",
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Print one JSON document on standard output instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but results and errors (no progress, notes or summaries).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Fail with exit code 4 instead of waiting when another ocitool process holds the layout's lock.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Do not fsync what is written: faster, survives a kill but not a power loss. For scratch
    /// layouts (CI) only.
    #[arg(long, global = true)]
    pub no_fsync: bool,
    /// Threads for hashing and compression (default: one per core).
    #[arg(long, short = 'j', global = true, value_name = "N")]
    pub jobs: Option<usize>,
    /// Largest manifest, index or config read, in bytes (default 16 MiB).
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_size)]
    pub max_json_size: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an empty layout (a no-op on an existing valid layout).
    Init { layout: PathBuf },
    /// List refs: ref, digest, media type, platforms, total size.
    Ls { layout: PathBuf },
    /// Show a manifest, its config and layers; for an index, its platforms.
    Inspect {
        layout: PathBuf,
        /// A ref name or a digest (sha256:...).
        reference: String,
        /// For an index: inspect the manifest of this platform (os/arch[/variant]).
        #[arg(long, value_name = "PLATFORM")]
        platform: Option<String>,
        /// Print the exact bytes of the manifest or index, nothing else.
        #[arg(long, conflicts_with_all = ["config"])]
        raw: bool,
        /// Print the exact bytes of the image config, nothing else.
        #[arg(long)]
        config: bool,
    },
    /// Point every TARGET ref at what SOURCE (a ref or a digest) points at.
    Tag {
        layout: PathBuf,
        source: String,
        #[arg(required = true)]
        targets: Vec<String>,
        /// Show what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove refs (a digest removes every entry for it); blobs stay until gc.
    Untag {
        layout: PathBuf,
        #[arg(required = true)]
        refs: Vec<String>,
    },
    /// Check structure, descriptors, blob hashes and layer diff_ids; exit 1 on problems.
    Verify {
        layout: PathBuf,
        /// Verify only what these refs reach (default: the whole layout, unreferenced blobs included).
        refs: Vec<String>,
    },
    /// Add every image of a docker-save or OCI archive (plain, gzip or zstd; `-` reads standard
    /// input) to LAYOUT, created if missing, with a ref for each of its tags.
    Import {
        archive: PathBuf,
        layout: PathBuf,
        /// An extra ref for the imported image (repeatable; the archive must hold one image).
        #[arg(long = "tag", value_name = "REF")]
        tags: Vec<String>,
        #[command(flatten)]
        limits: ArchiveLimits,
    },
    /// Merge an oci-archive (or a delta bundle from `pack --exclude-inventory`) into LAYOUT,
    /// created if missing: refs and blobs exactly as packed, every blob verified.
    Unpack {
        archive: PathBuf,
        layout: PathBuf,
        #[command(flatten)]
        limits: ArchiveLimits,
    },
    /// Write a layout (all refs, or those named) as one oci-archive holding only what they
    /// reach, referrers included.
    Pack {
        layout: PathBuf,
        refs: Vec<String>,
        /// Output file, or `-` for standard output.
        #[arg(short = 'o', long = "output", value_name = "ARCHIVE")]
        output: PathBuf,
        /// Leave out the blobs this inventory (from `ocitool inventory` at the receiving
        /// site) lists: a delta bundle. Manifests and indexes are always included.
        #[arg(long, value_name = "FILE")]
        exclude_inventory: Option<PathBuf>,
        /// Leave out referrers (signatures, SBOMs, attestations).
        #[arg(long)]
        no_referrers: bool,
        /// For multi-platform refs: pack this platform only.
        #[arg(long, value_name = "PLATFORM")]
        platform: Option<String>,
    },
    /// List the blobs a layout holds (digest and size), for delta bundles.
    Inventory {
        layout: PathBuf,
        /// Write to FILE instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Copy images (all refs when none are named) with every blob they reach; blobs already
    /// present are skipped.
    Copy {
        src: PathBuf,
        dst: PathBuf,
        refs: Vec<String>,
        /// From multi-platform refs, copy this platform only; the ref then points at that
        /// platform's manifest, unchanged.
        #[arg(long, value_name = "PLATFORM")]
        platform: Option<String>,
        /// Leave out referrers (signatures, SBOMs, attestations).
        #[arg(long)]
        no_referrers: bool,
        /// Hard-link blobs instead of copying them (same file system; a shared inode spreads
        /// later damage to both layouts).
        #[arg(long)]
        link: bool,
    },
    /// Write refs as one archive that `docker load`, `podman load`, `ctr import` and skopeo read.
    Export {
        layout: PathBuf,
        #[arg(required = true)]
        refs: Vec<String>,
        /// Output file, or `-` for standard output. A file appears only when complete.
        #[arg(short = 'o', long = "output", value_name = "ARCHIVE")]
        output: PathBuf,
        /// docker: Docker 25+ and classic at once; oci: an oci-archive.
        #[arg(long, value_enum, default_value_t = ExportFormat::Docker)]
        format: ExportFormat,
        /// For multi-platform refs: the platform to export (default: the host's, if present).
        #[arg(long, value_name = "PLATFORM")]
        platform: Option<String>,
    },
    /// Low-level blob access: store a file as a blob, or print a blob verified.
    #[command(subcommand)]
    Blob(BlobCommand),
    /// Delete blobs no ref reaches, and stale temporary files.
    Gc {
        layout: PathBuf,
        /// Print what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Sweep even when some documents are damaged (their blobs may be deleted).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Docker,
    Oci,
}

/// Caps that stop hostile archives (see the README's Limits).
#[derive(Debug, Args, Clone)]
pub struct ArchiveLimits {
    /// Most decompressed bytes per compressed byte, for the archive and each layer.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_ratio: u64,
    /// Most members in an archive.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_entries: usize,
}

#[derive(Debug, Subcommand)]
pub enum BlobCommand {
    /// Store FILE (or standard input, `-`) as a blob and print its digest. The blob is
    /// unreferenced until a manifest that names it is tagged; `gc` removes it before that.
    Put {
        layout: PathBuf,
        file: PathBuf,
        /// Refuse the content unless it has this digest.
        #[arg(long, value_name = "DIGEST")]
        digest: Option<String>,
    },
    /// Write a blob to standard output; exit 3 if its content does not match its digest.
    Get { layout: PathBuf, digest: String },
}

/// Parses `123`, `16M`, `16MiB`, `1G`, `4k` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 4096, 16M, 1G)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use K, M, G or T)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}
