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

/// Flags every command takes, listed apart from each command's own ("Global options").
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Print one JSON document on standard output instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but what a command lists or shows, and errors: no progress, notes,
    /// warnings, summaries or lines about what changed (README, "Output").
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Fail with exit code 4 instead of waiting when another ocitool process holds the layout's lock.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Do not fsync what is written (layouts, archives): faster, survives a kill but not a power
    /// loss. For scratch layouts and archives (CI) only.
    #[arg(long, global = true)]
    pub no_fsync: bool,
    /// Threads for hashing and compression (default: one per core); blobs moved at once by pull
    /// and push (default 4; a push to a registry on this machine: at most one per core and one
    /// more).
    #[arg(long, short = 'j', global = true, value_name = "N")]
    pub jobs: Option<usize>,
    /// Largest manifest, index or config read, in bytes (default 16 MiB).
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_size)]
    pub max_json_size: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an empty layout (a no-op on an existing valid layout).
    Init(InitArgs),
    /// List refs: ref, digest, media type, platforms, total size (of a layout, or of an
    /// archive read without importing it).
    Ls(LsArgs),
    /// Show a manifest, its config and layers; for an index, its platforms (in a layout, or
    /// in an archive read without importing it).
    Inspect(InspectArgs),
    /// Point every TARGET ref at what SOURCE (a ref or a digest) points at.
    Tag(TagArgs),
    /// Remove refs (a digest removes every entry for it); blobs stay until gc.
    Untag(UntagArgs),
    /// Declare immutable tags (exact semver versions, commit SHAs, glob patterns); moving one
    /// to another digest then needs --force. Without rules, shows the policy.
    Protect(ProtectArgs),
    /// Remove old releases (a version tag with the SHA and date tags on its image) of each
    /// repository: beyond the newest N, or dated before a cutoff; never an alias or what one
    /// points at. Reports what gc would free.
    Prune(PruneArgs),
    /// Check structure, descriptors, blob hashes and layer diff_ids; exit 1 on problems.
    Verify(VerifyArgs),
    /// Add every image of a docker-save or OCI archive (plain, gzip or zstd; `-` reads standard
    /// input) to LAYOUT, created if missing, with a ref for each of its tags.
    Import(ImportArgs),
    /// Merge an oci-archive (or a delta bundle from `pack --exclude-inventory`) into LAYOUT,
    /// created if missing: refs and blobs exactly as packed, every blob verified.
    Unpack(UnpackArgs),
    /// Write a layout (all refs, or those named) as one oci-archive holding only what they
    /// reach, referrers included.
    Pack(PackArgs),
    /// List the blobs a layout holds (digest and size), for delta bundles.
    Inventory(InventoryArgs),
    /// Copy images (all refs when none are named) with every blob they reach; blobs already
    /// present are skipped.
    Copy(CopyArgs),
    /// Write refs as one archive that `docker load`, `podman load`, `ctr import` and skopeo read.
    Export(ExportArgs),
    /// Low-level blob access: store a file as a blob, or print a blob verified.
    #[command(subcommand)]
    Blob(BlobCommand),
    /// A new image whose layers are recompressed (config and diff_ids unchanged), tagged TARGET.
    Convert(ConvertArgs),
    /// Delete blobs no ref reaches, and stale temporary files.
    Gc(GcArgs),
    /// Fetch images from a registry into LAYOUT (created if missing), digests unchanged,
    /// resumable: `nginx:1.25`, `ghcr.io/org/app:1.0`, `name@sha256:...`.
    Pull(PullArgs),
    /// Send refs (all when none are named) to the registry their names say, or mapped under
    /// --to REGISTRY[/PREFIX]; digests unchanged.
    Push(PushArgs),
    /// Check credentials with a registry and store them where podman and docker read them.
    Login(LoginArgs),
    /// Remove stored credentials for a registry.
    Logout(LogoutArgs),
    /// List the tags of a repository in a registry.
    #[command(name = "ls-remote")]
    LsRemote(LsRemoteArgs),
    /// Serve layouts read-only over the OCI distribution API: podman, skopeo, docker and
    /// containerd (Kubernetes nodes, through a mirror entry) pull from it.
    Serve(ServeArgs),
    /// Print the shell completion script for bash, zsh or fish.
    Completions(CompletionsArgs),
    /// Print a command's manual page, or install every page into a directory.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory to make a layout of (created if missing, with its parents).
    pub layout: PathBuf,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// A layout (a directory), or an archive to read without importing it (a file, or `-`
    /// for standard input): the refs an import would create.
    pub layout: PathBuf,
    /// List only these repositories (app, ghcr.io/org/app; any spelling of the name). One
    /// the layout lacks is an error.
    #[arg(value_name = "REPO")]
    pub repos: Vec<String>,
    /// Group refs by repository, versions by semver, with the aliases pointing at each.
    #[arg(long)]
    pub tree: bool,
    #[command(flatten)]
    pub limits: ArchiveLimits,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A layout (a directory), or an archive to read without importing it (a file, or `-`
    /// for standard input).
    pub layout: PathBuf,
    /// A ref name or a digest (sha256:...).
    pub reference: String,
    /// For an index: inspect the manifest of this platform (os/arch[/variant]).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Print the exact bytes of the manifest or index, nothing else.
    #[arg(long, conflicts_with_all = ["config"])]
    pub raw: bool,
    /// Print the exact bytes of the image config, nothing else.
    #[arg(long)]
    pub config: bool,
    #[command(flatten)]
    pub limits: ArchiveLimits,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// What to point at: a ref name or a digest (sha256:...).
    pub source: String,
    /// The refs to set (app:1.0, registry.example.com/team/app:1.0); existing ones are moved.
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Show what would change without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Tag a release: each TARGET that is an exact version (app:1.2.3) also points app:1.2,
    /// app:1 and app:latest at SOURCE, each only where it is the highest release of its group;
    /// the other TARGETs (build tags such as app:a1b2c3d, app:20240115) are set in the same
    /// update. TARGETs 1.2, 1 and latest are refused: the cascade moves them.
    #[arg(long)]
    pub semver: bool,
    /// Move tags the layout's policy protects.
    #[arg(long)]
    pub force: bool,
    /// Accept a TARGET that docker, podman and containerd refuse at load (upper-case
    /// repository, a tag with '+'), if it fits the image-spec grammar; warns.
    #[arg(long)]
    pub allow_any: bool,
}

#[derive(Debug, Args)]
pub struct UntagArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// Refs, digests, or `REPO:*` (every tag of a repository).
    #[arg(required = true)]
    pub refs: Vec<String>,
    /// Each REF is a repository: remove all its tags.
    #[arg(long)]
    pub all_tags: bool,
    /// Match each REF only as an exact ref name (org.opencontainers.image.ref.name), never as
    /// a digest or a containerd name: removes an entry another tool named like a digest.
    #[arg(long)]
    pub name: bool,
    /// Remove tags the layout's policy protects.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ProtectArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// Glob patterns on the whole ref name (`*`, `?`, `[...]`): 'app:release-*', or
    /// '*:release-*' in every repository ('release-*' matches the bare ref release-1, not
    /// app:release-1); 'app:*' is every tag of app, present and future, as the layout spells
    /// the name.
    pub patterns: Vec<String>,
    /// Each PATTERN is a repository: protect all its tags, present and future (app is the
    /// pattern 'app:*').
    #[arg(long, requires = "patterns")]
    pub all_tags: bool,
    /// Protect exact semver versions (1.2.3, v1.2.3, 1.3.0-rc.1), not aliases such as 1.2 or
    /// latest.
    #[arg(long)]
    pub semver: bool,
    /// Protect commit-SHA tags: 7 to 40 lowercase hex digits with at least one letter a-f
    /// (a1b2c3d), exactly 40 hex digits, or either after sha- (sha-a1b2c3d). Dates
    /// (20240115) and build numbers are not SHAs.
    #[arg(long)]
    pub sha: bool,
    /// Remove the given rules instead of adding them.
    #[arg(long)]
    pub remove: bool,
    /// Show the policy.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["keep", "older_than"])))]
pub struct PruneArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// Releases to keep per repository, the newest by --by (a release: a version tag, with
    /// the SHA and date tags on its image, which go with it).
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Remove releases, and builds without a version, dated before AGE ago (30d, 12h, 2w,
    /// 6months) or before a day (2024-01-15, UTC). A date is the image's newest date tag,
    /// else its config's `created`. With --keep, the newest N stay whatever their age.
    // Checked as a usage error by `usage::check` (this file is also the build script's, which
    // has no ocitool crate to parse it with).
    #[arg(long, value_name = "AGE|DATE")]
    pub older_than: Option<String>,
    /// Keep every release or build with a tag matching GLOB (the whole ref name, as for
    /// protect: 'app:1.*', '*:lts-*'); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub keep_tags: Vec<String>,
    /// Only these repositories (repeatable; default: all). A name the layout lacks is an
    /// error.
    #[arg(long = "repo", value_name = "NAME")]
    pub repos: Vec<String>,
    /// Which releases are the newest: highest semver, or latest date (date tag, else the
    /// config's `created`).
    #[arg(long, value_enum, default_value_t = PruneOrder::Semver)]
    pub by: PruneOrder,
    /// Show the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run gc afterwards.
    #[arg(long)]
    pub gc: bool,
    /// Remove protected releases too (protection otherwise keeps them).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// Verify only what these refs reach (`REPO:*`: every tag of a repository; default: the
    /// whole layout, unreferenced blobs included).
    pub refs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A docker-save or OCI archive: tar, tar.gz, tar.zst, tar.xz or tar.bz2; `-` reads
    /// standard input.
    pub archive: PathBuf,
    /// The layout to add the images to (created if missing).
    pub layout: PathBuf,
    /// An extra ref for the imported image (repeatable; the archive must hold one image).
    #[arg(long = "tag", value_name = "REF")]
    pub tags: Vec<String>,
    /// Compress uncompressed layers on the way in, in the same pass (their diff_ids are kept;
    /// manifests that name them are rewritten).
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// Compression level: gzip 0-9 (default 6), zstd 1-22 (default 3).
    #[arg(long, value_name = "N", requires = "compression")]
    pub level: Option<i32>,
    #[command(flatten)]
    pub limits: ArchiveLimits,
    /// Move tags the layout's policy protects.
    #[arg(long)]
    pub force: bool,
    /// Re-verify blobs the layout already has: store the verified bytes from the archive
    /// in place of each (a blob damaged on disk since it was written is then repaired)
    /// instead of skipping it. Costs the writes a first import makes.
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// An oci-archive from `ocitool pack` (or another tool); `-` reads standard input.
    pub archive: PathBuf,
    /// The layout to merge into (created if missing).
    pub layout: PathBuf,
    #[command(flatten)]
    pub limits: ArchiveLimits,
    /// Move tags the layout's policy protects.
    #[arg(long)]
    pub force: bool,
    /// Re-verify blobs the layout already has: store the verified bytes from the archive
    /// in place of each (a blob damaged on disk since it was written is then repaired)
    /// instead of skipping it. Costs the writes a first import makes.
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// Refs, digests or `REPO:*` (every tag of a repository) to pack (default: every ref).
    pub refs: Vec<String>,
    /// Each REF is a repository: pack all its tags.
    #[arg(long, requires = "refs")]
    pub all_tags: bool,
    /// Output file, or `-` for standard output.
    #[arg(short = 'o', long = "output", value_name = "ARCHIVE")]
    pub output: PathBuf,
    /// Leave out the blobs this inventory (from `ocitool inventory` at the receiving
    /// site) lists: a delta bundle. Manifests and indexes are always included.
    #[arg(long, value_name = "FILE")]
    pub exclude_inventory: Option<PathBuf>,
    /// Leave out referrers (signatures, SBOMs, attestations).
    #[arg(long)]
    pub no_referrers: bool,
    /// For multi-platform refs: pack this platform only.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The layout to copy from.
    pub src: PathBuf,
    /// The layout to copy into (created if missing).
    pub dst: PathBuf,
    /// Refs, digests or `REPO:*` (every tag of a repository) to copy (default: every ref).
    pub refs: Vec<String>,
    /// Each REF is a repository: copy all its tags.
    #[arg(long, requires = "refs")]
    pub all_tags: bool,
    /// From multi-platform refs, copy this platform only; the ref then points at that
    /// platform's manifest, unchanged.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Leave out referrers (signatures, SBOMs, attestations).
    #[arg(long)]
    pub no_referrers: bool,
    /// Hard-link blobs instead of copying them (same file system; a shared inode spreads
    /// later damage to both layouts).
    #[arg(long)]
    pub link: bool,
    /// Move tags the destination's policy protects.
    #[arg(long)]
    pub force: bool,
    /// Copy blobs the destination already has too, each verified, in place of what is there
    /// (repairs a destination blob damaged since it was written).
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// The refs, digests or `REPO:*` (every tag of a repository) to write; each ref name
    /// becomes a tag of the archive.
    #[arg(required = true)]
    pub refs: Vec<String>,
    /// Each REF is a repository: write all its tags.
    #[arg(long)]
    pub all_tags: bool,
    /// Output file, or `-` for standard output. A file appears only when complete.
    #[arg(short = 'o', long = "output", value_name = "ARCHIVE")]
    pub output: PathBuf,
    /// docker: Docker 25+ and classic at once; oci: an oci-archive.
    #[arg(long, value_enum, default_value_t = ExportFormat::Docker)]
    pub format: ExportFormat,
    /// For multi-platform refs: the platform to export (default: the host's, if present).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// Print what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Sweep even when some documents are damaged (their blobs may be deleted).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// The image to convert (a ref or a digest); it is not changed.
    pub source: String,
    /// The ref to give the converted image.
    pub target: String,
    /// Layer compression of the result (default: keep each layer's). Layers already in that
    /// form are reused as they are.
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// Compression level: gzip 0-9 (default 6), zstd 1-22 (default 3).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub level: Option<i32>,
    /// Media type family of the result (default: keep the source's).
    #[arg(long, value_enum)]
    pub media_types: Option<MediaTypesArg>,
    /// From a multi-platform source, convert only this platform; TARGET then points at its
    /// converted manifest.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Move TARGET even if the layout's policy protects it.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The layouts to serve (their repository names must not collide).
    #[arg(required = true)]
    pub layouts: Vec<PathBuf>,
    /// Where to listen. The default serves this host only; 0.0.0.0:5000 serves the site.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:5000", value_parser = parse_listen)]
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS with this certificate, followed by its chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require HTTP Basic authentication by the users of this file (bcrypt entries, as
    /// `htpasswd -B` writes them).
    #[arg(long, value_name = "FILE")]
    pub htpasswd: Option<PathBuf>,
    /// Most connections at once; more are refused with 503.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub max_connections: usize,
    /// Seconds a request head may take to arrive (default 10).
    #[arg(long, value_name = "SECS", hide = true)]
    pub header_timeout: Option<f64>,
    /// Seconds a response may make no progress before the connection is dropped (default 30).
    #[arg(long, value_name = "SECS", hide = true)]
    pub io_timeout: Option<f64>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: ShellArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (`tag`, `blob put`); default: ocitool's own page.
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
    /// Write every page (ocitool.1, ocitool-tag.1, ...) into this directory instead, e.g.
    /// ~/.local/share/man/man1.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
    None,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MediaTypesArg {
    Oci,
    Docker,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PruneOrder {
    /// Highest semver precedence first.
    Semver,
    /// Latest date first: the image's newest date tag, else its config's `created`.
    #[value(alias = "date")]
    Created,
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
    #[arg(long, value_name = "N", default_value_t = 100)]
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
        /// The OCI image layout (a directory).
        layout: PathBuf,
        /// The file to store; `-` reads standard input.
        file: PathBuf,
        /// Refuse the content unless it has this digest.
        #[arg(long, value_name = "DIGEST")]
        digest: Option<String>,
    },
    /// Write a blob to standard output; exit 3 if its content does not match its digest.
    Get {
        /// The OCI image layout (a directory).
        layout: PathBuf,
        /// The blob's digest (sha256:...).
        digest: String,
    },
}

/// `ADDR:PORT`, or `HOST:PORT` resolved to its first address.
pub fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("{s:?} is not ADDR:PORT (e.g. 127.0.0.1:5000, 0.0.0.0:5000)"))
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

/// Flags of every command that talks to a registry (skopeo's meanings).
#[derive(Debug, Args, Clone)]
pub struct RegistryFlags {
    /// Credentials file to read first and to write (default: $REGISTRY_AUTH_FILE, else
    /// $XDG_RUNTIME_DIR/containers/auth.json; then podman's and docker's other files).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Credentials for the registry, USER:PASSWORD (instead of the credential files).
    #[arg(long, value_name = "USER:PASSWORD", conflicts_with = "creds_stdin")]
    pub creds: Option<String>,
    /// Read USER:PASSWORD from standard input.
    #[arg(long)]
    pub creds_stdin: bool,
    /// Directory of CA certificates (*.crt) and a client certificate (*.cert with its *.key)
    /// for the registry (default: its certs.d directory).
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Verify the registry's TLS certificate; --tls-verify=false skips the check (still TLS).
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Speak plain HTTP to the registry (loopback registries fall back to it by themselves).
    #[arg(long)]
    pub plain_http: bool,
    /// Retries of a failed request (connection errors, 408, 429, 5xx).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub retry_times: u32,
    /// Wait before the first retry, doubling after each (e.g. 1s, 250ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub retry_delay: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The layout to fetch into (created if missing).
    pub layout: PathBuf,
    /// Images as `docker pull` takes them; no tag means latest.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Every tag of each repository named.
    #[arg(long)]
    pub all_tags: bool,
    /// Keep only this platform of multi-platform images (repeatable); with one, the ref
    /// points at that platform's manifest.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Vec<String>,
    /// Leave out referrers (signatures, SBOMs, attestations).
    #[arg(long)]
    pub no_referrers: bool,
    /// Also bring cosign's sha256-<hex>.sig/.att/.sbom tags.
    #[arg(long)]
    pub digest_tags: bool,
    /// Move tags the layout's policy protects.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The OCI image layout (a directory).
    pub layout: PathBuf,
    /// Refs or `REPO:*` (every tag of a repository) to push (default: every ref); with
    /// --all-tags, repositories.
    #[arg(value_name = "REF")]
    pub refs: Vec<String>,
    /// Map REG/PATH:TAG to REGISTRY/PREFIX/PATH:TAG.
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub to: Option<String>,
    /// With --to, keep the source registry in the path (REGISTRY/PREFIX/REG/PATH:TAG).
    #[arg(long, requires = "to")]
    pub scoped: bool,
    /// Each REF is a repository: push all its tags (as `REPO:*`).
    #[arg(long)]
    pub all_tags: bool,
    /// For multi-platform refs: push this platform's manifest, which the tag then names.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Vec<String>,
    /// Leave out referrers (signatures, SBOMs, attestations).
    #[arg(long)]
    pub no_referrers: bool,
    /// Also push cosign's sha256-<hex>.sig/.att/.sbom tags of the refs named.
    #[arg(long)]
    pub digest_tags: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: docker.io, ghcr.io, host:port.
    pub registry: String,
    /// User name (asked on the terminal when missing).
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub flags: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry.
    pub registry: String,
    /// Credentials file to edit.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LsRemoteArgs {
    /// A repository (a tag or digest given is ignored).
    pub image: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Parses `1s`, `250ms`, `2m`, `0`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 1s, 250ms)"))?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    Ok(std::time::Duration::from_millis(ms))
}

/// The clap command with everything the derive does not say: each command's examples. The
/// binary parses with it and `build.rs` makes the manual pages from it, so both show the same.
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    for (path, text) in EXAMPLES {
        let text = examples_section(text);
        cmd = match path.split_once(' ') {
            Some((group, sub)) => {
                cmd.mut_subcommand(group, |g| g.mut_subcommand(sub, |c| c.after_help(text)))
            }
            None => cmd.mut_subcommand(path, |c| c.after_help(text)),
        };
    }
    cmd
}

/// `Examples:` and the lines, indented as clap indents its sections.
fn examples_section(text: &str) -> String {
    let mut s = String::from("Examples:");
    for line in text.lines() {
        s.push_str("\n  ");
        s.push_str(line);
    }
    s
}

/// Two or three examples per command (and per `blob` subcommand), shown at the end of its
/// `--help` and in its manual page: a `#` line saying what it does, then a line to paste into
/// a shell. A unit test parses every `ocitool` line with [`command`].
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "init",
        "\
# a new, empty layout
ocitool init ./layout
# on a mounted disk, creating the directories on the way
ocitool init /mnt/disk/images",
    ),
    (
        "ls",
        "\
# one row per ref
ocitool ls ./layout
# one repository: its versions by semver, and the aliases pointing at each
ocitool ls ./layout app --tree
# the ref names only, for a script
ocitool ls ./layout --json | jq -r '.[].ref'",
    ),
    (
        "inspect",
        "\
# manifest, config and layers of a ref
ocitool inspect ./layout app:1.0
# one platform of a multi-platform image
ocitool inspect ./layout app:1.0 --platform linux/arm64
# the exact bytes of the image config
ocitool inspect ./layout app:1.0 --config",
    ),
    (
        "tag",
        "\
# one more name for an image
ocitool tag ./layout app:1.0 app:latest
# a release: app:1.2.3, and app:1.2, app:1 and app:latest where it is the newest
ocitool tag ./layout app:candidate app:1.2.3 --semver
# the name a registry needs, checked first
ocitool tag ./layout app:1.0 registry.example.com/team/app:1.0 --dry-run",
    ),
    (
        "untag",
        "\
# remove a ref (its blobs stay until gc)
ocitool untag ./layout app:1.0-rc1
# remove several, then free the space
ocitool untag ./layout app:old tools/lint:3 && ocitool gc ./layout
# every tag of a repository
ocitool untag ./layout 'app:*'",
    ),
    (
        "protect",
        "\
# releases and commit-SHA tags can no longer be moved
ocitool protect ./layout --semver --sha
# nor tags matching a pattern
ocitool protect ./layout 'app:release-*'
# show the policy
ocitool protect ./layout --list",
    ),
    (
        "prune",
        "\
# what keeping the newest 3 versions per repository would remove
ocitool prune ./layout --keep 3 --dry-run
# do it for one repository, and free the blobs
ocitool prune ./layout --keep 3 --repo app --gc",
    ),
    (
        "verify",
        "\
# every blob of the layout, against its digest
ocitool verify ./layout
# only what one ref reaches, as JSON
ocitool verify ./layout app:1.0 --json",
    ),
    (
        "import",
        "\
# every image and tag of a docker save
ocitool import docker-save.tar ./layout
# straight from docker, no file in between
docker save nginx:1.25 | ocitool import - ./layout
# with one more tag, layers compressed with zstd on the way in
ocitool import app.tar ./layout --tag app:candidate --compression zstd",
    ),
    (
        "unpack",
        "\
# a bundle from `ocitool pack`, at the receiving site
ocitool unpack bundle.tar /srv/images
# a delta bundle, from standard input
ocitool unpack - /srv/images < delta.tar",
    ),
    (
        "pack",
        "\
# the whole layout, for a disk
ocitool pack ./layout -o bundle.tar
# every tag of one repository
ocitool pack ./layout 'app:*' -o app.tar
# only the blobs the other site lacks (its inventory, from `ocitool inventory`)
ocitool pack ./layout --exclude-inventory site-inventory.json -o delta.tar",
    ),
    (
        "inventory",
        "\
# at the receiving site: what it has, for the next delta bundle
ocitool inventory /srv/images -o site-inventory.json
# how many blobs a layout holds
ocitool inventory ./layout | jq '.blobs | length'",
    ),
    (
        "copy",
        "\
# every ref, with every blob they reach
ocitool copy ./layout /mnt/disk/layout
# one platform of one image
ocitool copy ./layout ./arm app:1.0 --platform linux/arm64
# every tag of two repositories, hard-linked on one file system
ocitool copy ./layout ./mirror app tools/lint --all-tags --link",
    ),
    (
        "export",
        "\
# an archive `docker load` and `podman load` take
ocitool export ./layout app:1.0 -o app.tar
# straight into docker
ocitool export ./layout app:1.0 -o - | docker load
# every tag of a repository, as an oci-archive
ocitool export ./layout 'app:*' --format oci -o app-oci.tar",
    ),
    (
        "blob",
        "\
# store a file as a blob, printing its digest
digest=$(ocitool blob put ./layout sbom.json)
# read it back, verified
ocitool blob get ./layout \"$digest\" > sbom-copy.json",
    ),
    (
        "blob put",
        "\
# store a file, printing its digest
ocitool blob put ./layout sbom.json
# from standard input, refused unless it has the expected digest
ocitool blob put ./layout - --digest \"$digest\" < sbom.json",
    ),
    (
        "blob get",
        "\
# a blob's bytes into a file, verified as they stream
ocitool blob get ./layout \"$digest\" > blob.bin
# a config blob, pretty-printed
ocitool blob get ./layout \"$config_digest\" | jq .",
    ),
    (
        "convert",
        "\
# layers recompressed with zstd, as a new ref
ocitool convert ./layout app:1.0 app:1.0-zstd --compression zstd
# the smallest gzip
ocitool convert ./layout app:1.0 app:1.0-gz9 --compression gzip --level 9
# Docker media types, for an old registry
ocitool convert ./layout app:1.0 app:1.0-docker --media-types docker",
    ),
    (
        "gc",
        "\
# what would be deleted
ocitool gc ./layout --dry-run
# delete blobs no ref reaches
ocitool gc ./layout",
    ),
    (
        "pull",
        "\
# two images from Docker Hub (no tag means latest)
ocitool pull ./layout nginx:1.25 alpine
# every tag of a repository
ocitool pull ./layout ghcr.io/org/app --all-tags
# two platforms of a multi-platform image
ocitool pull ./layout nginx:1.25 --platform linux/amd64 --platform linux/arm64",
    ),
    (
        "push",
        "\
# to the registry the ref names
ocitool push ./layout registry.example.com/team/app:1.0
# every ref, mapped under the site's registry
ocitool push ./layout --to registry.site.internal/mirror
# every tag of a repository
ocitool push ./layout registry.example.com/team/app --all-tags",
    ),
    (
        "login",
        "\
# a token from a file
ocitool login ghcr.io -u octocat --password-stdin < token.txt
# in CI
echo \"$TOKEN\" | ocitool login registry.site.internal -u ci --password-stdin",
    ),
    (
        "logout",
        "\
# forget the credentials of a registry
ocitool logout ghcr.io
# from a given credentials file
ocitool logout registry.site.internal --authfile ./auth.json",
    ),
    (
        "ls-remote",
        "\
# the tags of a Docker Hub repository
ocitool ls-remote nginx
# of a private registry, as JSON
ocitool ls-remote registry.site.internal:5000/team/app --json",
    ),
    (
        "serve",
        "\
# this host only, on port 5000
ocitool serve ./layout
# the whole site, over HTTPS
ocitool serve /mnt/disk/layout --listen 0.0.0.0:5000 --tls-cert cert.pem --tls-key key.pem
# two layouts, with passwords, one JSON line per request
ocitool serve ./a ./b --htpasswd ./htpasswd --json",
    ),
    (
        "completions",
        "\
# bash
ocitool completions bash > ~/.local/share/bash-completion/completions/ocitool
# zsh (a directory on $fpath)
ocitool completions zsh > ~/.zfunc/_ocitool
# fish
ocitool completions fish > ~/.config/fish/completions/ocitool.fish",
    ),
    (
        "man",
        "\
# read a command's page
ocitool man tag | man -l -
# install every page where man finds them
ocitool man --dir ~/.local/share/man/man1",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command and `blob` subcommand, as paths (`["blob", "put"]`), without clap's `help`.
    fn commands(c: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
        for s in c.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut p = path.clone();
            p.push(s.get_name().to_string());
            out.push((p.clone(), s.clone()));
            commands(s, p, out);
        }
    }

    fn all() -> Vec<(Vec<String>, clap::Command)> {
        let mut out = Vec::new();
        commands(&command(), Vec::new(), &mut out);
        out
    }

    enum Tok {
        Word(String),
        Sep,
        Redirect,
    }

    /// The words of a shell line, quotes removed; `|`, `&&`, `;`, `$(` and `)` separate
    /// commands, `<` and `>` redirect (their target is not an argument).
    fn tokens(line: &str) -> Vec<Tok> {
        let mut out = Vec::new();
        let mut w = String::new();
        let mut has = false;
        let mut it = line.chars().peekable();
        let flush = |w: &mut String, has: &mut bool, out: &mut Vec<Tok>| {
            if *has {
                out.push(Tok::Word(std::mem::take(w)));
                *has = false;
            }
        };
        while let Some(c) = it.next() {
            match c {
                '\'' | '"' => {
                    has = true;
                    for q in it.by_ref() {
                        if q == c {
                            break;
                        }
                        w.push(q);
                    }
                }
                ' ' => flush(&mut w, &mut has, &mut out),
                '|' | ';' | ')' => {
                    flush(&mut w, &mut has, &mut out);
                    out.push(Tok::Sep);
                }
                '&' | '$' if it.peek() == Some(if c == '&' { &'&' } else { &'(' }) => {
                    it.next();
                    flush(&mut w, &mut has, &mut out);
                    out.push(Tok::Sep);
                }
                '<' | '>' => {
                    flush(&mut w, &mut has, &mut out);
                    out.push(Tok::Redirect);
                }
                c => {
                    has = true;
                    w.push(c);
                }
            }
        }
        flush(&mut w, &mut has, &mut out);
        out
    }

    /// The `ocitool ...` commands of a shell line, each as its argument list.
    fn invocations(line: &str) -> Vec<Vec<String>> {
        let mut segments = vec![Vec::new()];
        let mut skip = false;
        for t in tokens(line) {
            match t {
                Tok::Sep => segments.push(Vec::new()),
                Tok::Redirect => skip = true,
                Tok::Word(_) if skip => skip = false,
                Tok::Word(w) => segments.last_mut().expect("one").push(w),
            }
        }
        segments
            .into_iter()
            .filter(|s| s.first().is_some_and(|w| w == "ocitool"))
            .collect()
    }

    #[test]
    fn the_shell_line_reader_finds_each_ocitool_command() {
        assert_eq!(
            invocations("digest=$(ocitool blob put ./l 'a b.json') && ocitool gc ./l > x"),
            vec![
                vec!["ocitool", "blob", "put", "./l", "a b.json"],
                vec!["ocitool", "gc", "./l"]
            ]
        );
        assert_eq!(
            invocations("docker save n | ocitool import - ./l < in"),
            vec![vec!["ocitool", "import", "-", "./l"]]
        );
    }

    #[test]
    fn every_command_has_two_or_three_examples_that_parse() {
        let cmds = all();
        for (path, _) in &cmds {
            let key = path.join(" ");
            let (_, text) = EXAMPLES
                .iter()
                .find(|(k, _)| *k == key)
                .unwrap_or_else(|| panic!("no examples for `ocitool {key}`"));
            let comments = text.lines().filter(|l| l.starts_with('#')).count();
            let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            assert!(
                (2..=3).contains(&lines.len()) && comments == lines.len(),
                "`ocitool {key}` wants 2 or 3 examples, each under a # line:\n{text}"
            );
            for line in lines {
                let calls = invocations(line);
                assert!(!calls.is_empty(), "{key}: no ocitool command in {line:?}");
                assert!(
                    calls.iter().any(|c| c[1..].starts_with(path)),
                    "{key}: {line:?} does not run `ocitool {key}`"
                );
                for args in calls {
                    if let Err(e) = command().try_get_matches_from(&args) {
                        panic!("{key}: example {line:?} does not parse:\n{e}");
                    }
                }
            }
        }
        for (k, _) in EXAMPLES {
            assert!(
                cmds.iter().any(|(p, _)| p.join(" ") == *k),
                "examples for a command that does not exist: {k}"
            );
        }
    }

    #[test]
    fn every_positional_argument_is_described() {
        for (path, c) in all() {
            for a in c.get_arguments().filter(|a| a.is_positional()) {
                assert!(
                    a.get_help()
                        .is_some_and(|h| !h.to_string().trim().is_empty()),
                    "`ocitool {}`: <{}> has no description",
                    path.join(" "),
                    a.get_id()
                );
            }
        }
    }

    #[test]
    fn global_flags_have_their_own_heading() {
        let c = command();
        for a in c.get_arguments().filter(|a| a.is_global_set()) {
            assert_eq!(
                a.get_help_heading(),
                Some("Global options"),
                "{}",
                a.get_id()
            );
        }
    }
}
