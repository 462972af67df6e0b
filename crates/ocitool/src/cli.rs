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
    /// Do not fsync what is written (layouts, archives): faster, survives a kill but not a power
    /// loss. For scratch layouts and archives (CI) only.
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
    Init(InitArgs),
    /// List refs: ref, digest, media type, platforms, total size.
    Ls(LsArgs),
    /// Show a manifest, its config and layers; for an index, its platforms.
    Inspect(InspectArgs),
    /// Point every TARGET ref at what SOURCE (a ref or a digest) points at.
    Tag(TagArgs),
    /// Remove refs (a digest removes every entry for it); blobs stay until gc.
    Untag(UntagArgs),
    /// Declare immutable tags (exact semver versions, commit SHAs, glob patterns); moving one
    /// to another digest then needs --force. Without rules, shows the policy.
    Protect(ProtectArgs),
    /// Remove the version tags of each repository beyond the newest N, keeping what aliases
    /// and protection need, and report what gc would free.
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
}

#[derive(Debug, Args)]
pub struct InitArgs {
    pub layout: PathBuf,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    pub layout: PathBuf,
    /// Group refs by repository, versions by semver, with the aliases pointing at each.
    #[arg(long)]
    pub tree: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
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
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub layout: PathBuf,
    pub source: String,
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Show what would change without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Each TARGET is a version (app:1.2.3): also point app:1.2, app:1 and app:latest at
    /// SOURCE, each only where it is the highest release of its group.
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

#[derive(Debug, Args)]
pub struct ProtectArgs {
    pub layout: PathBuf,
    /// Glob patterns on the whole ref name, e.g. 'app:release-*'.
    pub patterns: Vec<String>,
    /// Protect exact semver versions (1.2.3, v1.2.3-rc.1), not aliases such as 1.2 or latest.
    #[arg(long)]
    pub semver: bool,
    /// Protect commit-SHA tags (7 to 40 hex digits).
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
pub struct PruneArgs {
    pub layout: PathBuf,
    /// Version tags to keep per repository.
    #[arg(long, value_name = "N")]
    pub keep: usize,
    /// Only these repositories (repeatable; default: all).
    #[arg(long = "repo", value_name = "NAME")]
    pub repos: Vec<String>,
    /// Order versions by semver precedence or by the config's `created`.
    #[arg(long, value_enum, default_value_t = PruneOrder::Semver)]
    pub by: PruneOrder,
    /// Show the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run gc afterwards.
    #[arg(long)]
    pub gc: bool,
    /// Remove protected tags too.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub layout: PathBuf,
    /// Verify only what these refs reach (default: the whole layout, unreferenced blobs included).
    pub refs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    pub archive: PathBuf,
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
    pub archive: PathBuf,
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
    pub layout: PathBuf,
    pub refs: Vec<String>,
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
    pub layout: PathBuf,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub refs: Vec<String>,
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
    pub layout: PathBuf,
    #[arg(required = true)]
    pub refs: Vec<String>,
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
    Semver,
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
        layout: PathBuf,
        file: PathBuf,
        /// Refuse the content unless it has this digest.
        #[arg(long, value_name = "DIGEST")]
        digest: Option<String>,
    },
    /// Write a blob to standard output; exit 3 if its content does not match its digest.
    Get { layout: PathBuf, digest: String },
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
    pub layout: PathBuf,
    /// Refs to push (default: every ref); with --all-tags, repositories.
    #[arg(value_name = "REF")]
    pub refs: Vec<String>,
    /// Map REG/PATH:TAG to REGISTRY/PREFIX/PATH:TAG.
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub to: Option<String>,
    /// With --to, keep the source registry in the path (REGISTRY/PREFIX/REG/PATH:TAG).
    #[arg(long, requires = "to")]
    pub scoped: bool,
    /// Every tag of each repository named.
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
