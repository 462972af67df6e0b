// The input format of the `archive_structured` fuzz target, and seed inputs in it.
//
// Included (with `include!`) by the harness (`src/lib.rs`, whose decoder reads these byte
// values) and by `cargo xtask fuzz` (`xtask/src/fuzz.rs`, which writes the seeds into the
// corpus), so it holds nothing but constants.
//
// An input is: a flags byte (`F_*`), then up to 32 members, each
//   a name byte (`N_*`, optionally `| N_DOT | N_PREV`) and its parameters,
//   a kind byte (`K_*`) and its parameters.
// Every byte the input lacks reads as "stop": a member cut short is dropped. A file or link
// whose name an earlier one already has (same content, a fixed name used twice) is moved to
// `dup<n>/`, so only `N_SAME_AS` makes the duplicates the importer refuses outright.
//
// A reference byte (`R`) picks an earlier member: its low 5 bits count back from the most
// recent candidate (0 is the latest), its top 3 bits are a variant: 0..=5 exact, 6 (`R_OFF`)
// a descriptor one byte too large / the name with its `./` toggled / the compressed digest
// instead of the diff_id, 7 (`R_BAD`) a digest with its last hex digit changed / a name that
// is not in the archive / a link out of the archive. Digest references (descriptors, diff_ids,
// copies) pick among earlier regular files; name references (`manifest.json` paths, links,
// `repositories`) among earlier files and links.

/// Flags (first byte): the whole archive gzip-compressed.
pub const F_GZIP: u8 = 0x01;
/// Flags: the whole archive zstd-compressed (with `F_GZIP` too: xz-compressed).
pub const F_ZSTD: u8 = 0x02;
/// Flags: `unpack` (an oci-archive kept verbatim) instead of `import`.
pub const F_UNPACK: u8 = 0x04;
/// Flags: no end-of-archive blocks.
pub const F_NO_END: u8 = 0x08;

// Names (low 4 bits of the name byte). `{hex}` is the sha256 of the member's content (of its
// target's, for a link), `{v1}` an id derived from it.
pub const N_MANIFEST_JSON: u8 = 0; // manifest.json (as a directory: `` or `./`)
pub const N_INDEX_JSON: u8 = 1; // index.json
pub const N_OCI_LAYOUT: u8 = 2; // oci-layout
pub const N_REPOSITORIES: u8 = 3; // repositories
pub const N_BLOB: u8 = 4; // blobs/sha256/{hex} (as a directory: blobs/sha256/)
pub const N_HEX_JSON: u8 = 5; // {hex}.json
pub const N_V1_LAYER: u8 = 6; // {v1}/layer.tar (as a directory: {v1}/)
pub const N_HEX_TAR: u8 = 7; // {hex}.tar
pub const N_SHA256_HEX: u8 = 8; // sha256:{hex}
pub const N_HEX_TAR_GZ: u8 = 9; // {hex}.tar.gz
pub const N_V1_JSON: u8 = 10; // {v1}/json
pub const N_V1_VERSION: u8 = 11; // {v1}/VERSION
pub const N_BLOB_SHA512: u8 = 12; // blobs/sha512/{sha512 hex} (as a directory: blobs/)
pub const N_RAW: u8 = 13; // params: length (mod 101), bytes
pub const N_SAME_AS: u8 = 14; // params: R; the name of that earlier member (a duplicate)
pub const N_BLOB_WRONG: u8 = 15; // blobs/sha256/{hex with its last digit changed}
/// Name modifier: a `./` prefix.
pub const N_DOT: u8 = 0x10;
/// Name modifier: `{hex}`/`{v1}` of the previous member instead of its own (`{v1}/json` next
/// to `{v1}/layer.tar`; a blob under another blob's name).
pub const N_PREV: u8 = 0x20;

// Kinds (kind byte modulo 12).
/// A generated layer tar. Params: spec (`L_*`), then per file a size and a fill byte.
pub const K_LAYER: u8 = 0;
/// An image config. Params: flags (`C_*`), count (mod 5), R per diff_id.
pub const K_CONFIG: u8 = 1;
/// An image manifest. Params: flags (`M_*`), R config, [R subject with `M_SUBJECT`],
/// count (mod 6), R per layer.
pub const K_MANIFEST: u8 = 2;
/// An image index (nested, or `index.json`). Params: flags (`I_*`), count (mod 6), per entry
/// R and an annotation byte (`A_*`).
pub const K_INDEX: u8 = 3;
/// A docker-save `manifest.json`. Params: flags (`D_*`), item count (mod 4), per item: R (by
/// name) config, tag byte (count in bits 0-1, bit 2: `null` when none, bit 3: lower-case
/// keys `config`, `repoTags`, `layers` as old Jib wrote them), one `REPO_TAGS`
/// index per tag, layer count (mod 6), R (by name) per layer.
pub const K_DOCKER_MANIFEST: u8 = 4;
/// `oci-layout` content. Params: variant (mod 5; 0 is the usual one).
pub const K_OCI_LAYOUT: u8 = 5;
/// A `repositories` file. Params: count (mod 3), per entry a `REPO_TAGS` index and R (by name:
/// its `{hex}`).
pub const K_REPOSITORIES: u8 = 6;
/// Raw bytes. Params: length, bytes.
pub const K_RAW: u8 = 7;
/// A symlink. Params: R (by name); the target is relative to the link's directory.
pub const K_SYMLINK: u8 = 8;
/// A hard link. Params: R (by name); the target is the name as written.
pub const K_HARDLINK: u8 = 9;
/// A directory record (its name from the name byte, see `N_*`).
pub const K_DIR: u8 = 10;
/// A copy of an earlier file's bytes under another name. Params: R.
pub const K_COPY: u8 = 11;

/// Reference variants (top 3 bits of a reference byte).
pub const R_OFF: u8 = 6 << 5;
pub const R_BAD: u8 = 7 << 5;

// Layer spec: compression in bits 0-1, file count in bits 2-3.
pub const L_TAR: u8 = 0;
pub const L_GZIP: u8 = 1;
pub const L_ZSTD: u8 = 2;
/// gzip without its trailer: does not decompress.
pub const L_BROKEN: u8 = 3;
pub const L_FILES1: u8 = 1 << 2;
pub const L_FILES2: u8 = 2 << 2;
pub const L_FILES3: u8 = 3 << 2;
/// A directory record `etc/` first.
pub const L_DIR: u8 = 0x10;
/// A whiteout `etc/.wh.gone` last.
pub const L_WHITEOUT: u8 = 0x20;

// Config flags: architecture in bits 0-1 (`ARCHES`).
/// No `os`.
pub const C_NO_OS: u8 = 0x04;
/// `rootfs.diff_ids` is `null`.
pub const C_NULL_DIFF_IDS: u8 = 0x08;
/// `config`, `history`, `created`: a config as Docker writes it.
pub const C_FULL: u8 = 0x10;
/// `os.version` and `variant`.
pub const C_OS_VERSION: u8 = 0x20;
/// No `rootfs` at all.
pub const C_NO_ROOTFS: u8 = 0x40;
/// `architecture` is a number.
pub const C_BAD_ARCH: u8 = 0x80;
pub const ARCHES: [&str; 4] = ["amd64", "arm64", "arm", ""];

// Manifest flags.
/// Docker v2s2 (else OCI).
pub const M_DOCKER: u8 = 0x01;
/// No `mediaType` member.
pub const M_NO_MEDIA_TYPE: u8 = 0x02;
/// The config descriptor has an artifact media type.
pub const M_ARTIFACT: u8 = 0x04;
pub const M_ANNOTATIONS: u8 = 0x08;
/// A `subject` (one more R after the config's).
pub const M_SUBJECT: u8 = 0x10;
/// The first layer is non-distributable, with `urls`.
pub const M_FOREIGN: u8 = 0x20;
/// `schemaVersion` 1.
pub const M_SCHEMA1: u8 = 0x40;
/// Every layer typed as an uncompressed tar, whatever its compression.
pub const M_TAR_TYPES: u8 = 0x80;

// Index flags.
/// A Docker manifest list (else an OCI index).
pub const I_DOCKER: u8 = 0x01;
pub const I_NO_MEDIA_TYPE: u8 = 0x02;
pub const I_ANNOTATIONS: u8 = 0x04;
/// `manifests` is `null` (the entries are still read from the input).
pub const I_NULL: u8 = 0x08;

// Index entry annotation byte: `REF_NAMES` index in bits 0-2, `CONTAINERD_NAMES` index in bits
// 3-5, `PLATFORMS` index in bits 6-7 (index 0 of each: none).
pub const REF_NAMES: [&str; 8] = [
    "",
    "1.0",
    "latest",
    "app:1.0",
    "docker.io/library/app:1.0",
    "Bad Name",
    "v1.2.3",
    "",
];
pub const CONTAINERD_NAMES: [&str; 8] = [
    "",
    "docker.io/library/app:1.0",
    "docker.io/library/app:latest",
    "ghcr.io/o/app:2",
    "app:1.0",
    "docker.io/library/app@sha256:1111111111111111111111111111111111111111111111111111111111111111",
    "UPPER/x:1",
    "docker.io/team/other:latest",
];
pub const PLATFORMS: [(&str, &str, &str); 4] = [
    ("", "", ""),
    ("linux", "amd64", ""),
    ("linux", "arm64", "v8"),
    ("windows", "amd64", ""),
];
pub const A_REF_1_0: u8 = 1;
pub const A_REF_LATEST: u8 = 2;
pub const A_CTRD_APP_1_0: u8 = 1 << 3;
pub const A_CTRD_GHCR: u8 = 3 << 3;
pub const A_LINUX_AMD64: u8 = 1 << 6;
pub const A_LINUX_ARM64: u8 = 2 << 6;

// manifest.json flags.
/// The whole document is `null` (nothing more is read).
pub const D_NULL: u8 = 0x01;
/// `LayerSources` for every layer (Docker 25+).
pub const D_LAYER_SOURCES: u8 = 0x02;
/// A `Parent` member.
pub const D_PARENT: u8 = 0x04;

/// RepoTags (`manifest.json`) and `repositories` entries (split at the last `:`).
pub const REPO_TAGS: [&str; 16] = [
    "app:1.0",
    "app:latest",
    "docker.io/library/app:1.0",
    "team/app:2",
    "localhost:5000/a/b:v1",
    "ghcr.io/o/app:2",
    "app",
    "UPPER:1",
    "app:1.0:2",
    "app@sha256:1111111111111111111111111111111111111111111111111111111111111111",
    "",
    "docker.io/library/app:latest",
    "x/y:z",
    "app:v1.2.3",
    "registry.example.com/x/y:1.0-rc.1",
    "app:1.0",
];
pub const T_APP_1_0: u8 = 0;
pub const T_APP_LATEST: u8 = 1;
pub const T_DOCKER_IO_APP_1_0: u8 = 2;
pub const T_TEAM_APP_2: u8 = 3;

/// Seeds: inputs that decode to archives `import` (or, with `F_UNPACK`, `unpack`) accepts,
/// one per dialect. `crates/ocitool-archive/tests/fuzz_regressions.rs` checks that they do.
pub const STRUCTURED_SEEDS: [(&str, &[u8]); 14] = [
    ("docker-legacy", DOCKER_LEGACY),
    ("docker-legacy-zstd", &SEED_DOCKER_LEGACY_ZSTD),
    ("docker25", DOCKER25),
    ("docker25-two-images", DOCKER25_TWO),
    ("containerd-sparse", CONTAINERD),
    ("containerd-sparse-gzip", &SEED_CONTAINERD_GZIP),
    ("oci-archive-unpack", OCI_ARCHIVE_UNPACK),
    ("oci-archive-import", &SEED_OCI_ARCHIVE_IMPORT),
    ("skopeo-docker-archive", SKOPEO),
    ("crane-tarball", CRANE),
    ("gnu-retar-gzip", GNU_RETAR),
    ("docker-legacy-no-end", &SEED_DOCKER_LEGACY_NO_END),
    ("docker-legacy-xz", &SEED_DOCKER_LEGACY_XZ),
    ("jib-lower-case-keys", JIB),
];

/// Docker 24 and earlier: `{v1}/layer.tar`, `{v1}/json`, `{v1}/VERSION`, `{config}.json`,
/// `manifest.json`, `repositories`.
#[rustfmt::skip]
const DOCKER_LEGACY: &[u8] = &[
    0,
    // #0 {v1a}/layer.tar
    N_V1_LAYER, K_LAYER, L_TAR | L_FILES2 | L_DIR, 100, b'a', 50, b'b',
    // #1 {v1a}/json
    N_V1_JSON | N_PREV, K_RAW, 2, b'{', b'}',
    // #2 {v1a}/VERSION
    N_V1_VERSION | N_PREV, K_RAW, 3, b'1', b'.', b'0',
    // #3 {v1b}/layer.tar
    N_V1_LAYER, K_LAYER, L_TAR | L_FILES1 | L_WHITEOUT, 30, b'c',
    // #4 {config}.json: diff_ids of #0 and #3
    N_HEX_JSON, K_CONFIG, C_FULL, 2, 3, 0,
    // #5 manifest.json: Config #4, RepoTags app:1.0, Layers #0 #3
    N_MANIFEST_JSON, K_DOCKER_MANIFEST, 0, 1, 0, 1, T_APP_1_0, 2, 4, 1,
    // #6 repositories: app 1.0 → {hex} of #3
    N_REPOSITORIES, K_REPOSITORIES, 1, T_APP_1_0, 2,
];
const SEED_DOCKER_LEGACY_ZSTD: [u8; DOCKER_LEGACY.len()] = with_flags(DOCKER_LEGACY, F_ZSTD);
const SEED_DOCKER_LEGACY_NO_END: [u8; DOCKER_LEGACY.len()] = with_flags(DOCKER_LEGACY, F_NO_END);
const SEED_DOCKER_LEGACY_XZ: [u8; DOCKER_LEGACY.len()] =
    with_flags(DOCKER_LEGACY, F_GZIP | F_ZSTD);

/// Old Jib (before mid-2020): gzip layers `{hex}.tar.gz`, `config.json`, and `manifest.json`
/// keys `config`, `repoTags`, `layers`.
#[rustfmt::skip]
const JIB: &[u8] = &[
    0,
    // #0, #1 layers
    N_HEX_TAR_GZ, K_LAYER, L_GZIP | L_FILES2, 40, b'j', 30, b'J',
    N_HEX_TAR_GZ, K_LAYER, L_GZIP | L_FILES1, 20, b'k',
    // #2 config.json: diff_ids of #0 and #1
    N_RAW, 11, b'c', b'o', b'n', b'f', b'i', b'g', b'.', b'j', b's', b'o', b'n',
    K_CONFIG, C_FULL, 2, 1, 0,
    // #3 manifest.json: config #2, repoTags app:1.0, layers #0 #1, lower-case keys (bit 3)
    N_MANIFEST_JSON, K_DOCKER_MANIFEST, 0, 1, 0, 1 | 8, T_APP_1_0, 2, 2, 1,
];

/// Docker 25 to 29: an OCI layout (blobs, `index.json` with containerd and ref names,
/// `oci-layout`) plus `manifest.json` (with `LayerSources`) and `repositories`.
#[rustfmt::skip]
const DOCKER25: &[u8] = &[
    0,
    // directory records blobs/ and blobs/sha256/
    N_BLOB_SHA512, K_DIR,
    N_BLOB, K_DIR,
    // #0, #1 layers
    N_BLOB, K_LAYER, L_TAR | L_FILES2, 200, b'x', 10, b'y',
    N_BLOB, K_LAYER, L_TAR | L_FILES1, 64, b'z',
    // #2 config: diff_ids #0 #1
    N_BLOB, K_CONFIG, 1, 2, 1, 0,
    // #3 OCI manifest: config #2, layers #0 #1
    N_BLOB, K_MANIFEST, 0, 0, 2, 2, 1,
    // #4 index.json: #3 named 1.0 / docker.io/library/app:1.0
    N_INDEX_JSON, K_INDEX, 0, 1, 0, A_REF_1_0 | A_CTRD_APP_1_0,
    // #5 manifest.json: Config #2, RepoTags app:1.0, Layers #0 #1, LayerSources
    N_MANIFEST_JSON, K_DOCKER_MANIFEST, D_LAYER_SOURCES, 1, 2, 1, T_APP_1_0, 2, 4, 3,
    // #6 oci-layout, #7 repositories (→ {hex} of #1)
    N_OCI_LAYOUT, K_OCI_LAYOUT, 0,
    N_REPOSITORIES, K_REPOSITORIES, 1, T_APP_1_0, 5,
];

/// Docker 25+ with two images sharing a base layer, one tagged twice, one untagged (in
/// `manifest.json` only, as Docker 25-29 leave untagged images out of `index.json`).
#[rustfmt::skip]
const DOCKER25_TWO: &[u8] = &[
    0,
    // #0 shared base, #1 top of image a, #2 top of image b (gzip)
    N_BLOB, K_LAYER, L_TAR | L_FILES1, 90, b'B',
    N_BLOB, K_LAYER, L_TAR | L_FILES2, 9, b'a', 8, b'A',
    N_BLOB, K_LAYER, L_GZIP | L_FILES1, 77, b'b',
    // #3 config a: #0 #1; #4 config b: #0 #2
    N_BLOB, K_CONFIG, 0, 2, 2, 1,
    N_BLOB, K_CONFIG, 1 | C_OS_VERSION, 2, 3, 1,
    // #5 manifest a: config #3, layers #0 #1; #6 manifest b: config #4, layers #0 #2
    N_BLOB, K_MANIFEST, 0, 1, 2, 4, 3,
    N_BLOB, K_MANIFEST, M_ANNOTATIONS, 1, 2, 5, 3,
    // #7 index.json: #5 as app:1.0 and as ghcr.io/o/app:2
    N_INDEX_JSON, K_INDEX, 0, 2, 1, A_REF_1_0 | A_CTRD_APP_1_0, 1, A_CTRD_GHCR,
    // #8 manifest.json: a (app:1.0, ghcr.io/o/app:2), b (untagged, RepoTags null)
    N_MANIFEST_JSON, K_DOCKER_MANIFEST, 0, 2,
    4, 2, T_APP_1_0, 5, 2, 7, 6,
    3, 4, 2, 7, 5,
    N_OCI_LAYOUT, K_OCI_LAYOUT, 0,
];

/// Docker's containerd image store: a multi-platform index of which only one platform's blobs
/// are present (the other is skipped), gzip layers, `manifest.json` without `repositories`.
#[rustfmt::skip]
const CONTAINERD: &[u8] = &[
    0,
    // #0 layer (gzip), #1 config, #2 manifest
    N_BLOB, K_LAYER, L_GZIP | L_FILES2, 150, b'g', 20, b'h',
    N_BLOB, K_CONFIG, 0, 1, 0,
    N_BLOB, K_MANIFEST, 0, 0, 1, 1,
    // #3 index: #2 for linux/amd64, an absent manifest for linux/arm64
    N_BLOB, K_INDEX, 0, 2, 0, A_LINUX_AMD64, R_BAD, A_LINUX_ARM64,
    // #4 index.json: #3 named docker.io/library/app:1.0
    N_INDEX_JSON, K_INDEX, 0, 1, 0, A_REF_1_0 | A_CTRD_APP_1_0,
    // #5 manifest.json: Config #1, RepoTags docker.io/library/app:1.0, Layers #0
    N_MANIFEST_JSON, K_DOCKER_MANIFEST, 0, 1, 3, 1, T_DOCKER_IO_APP_1_0, 1, 4,
    N_OCI_LAYOUT, K_OCI_LAYOUT, 0,
];
const SEED_CONTAINERD_GZIP: [u8; CONTAINERD.len()] = with_flags(CONTAINERD, F_GZIP);

/// An oci-archive as skopeo and podman write it, unpacked verbatim.
#[rustfmt::skip]
const OCI_ARCHIVE_UNPACK: &[u8] = &[
    F_UNPACK,
    // #0 layer (zstd), #1 config, #2 manifest
    N_BLOB, K_LAYER, L_ZSTD | L_FILES1, 120, b'z',
    N_BLOB, K_CONFIG, 1 | C_OS_VERSION, 1, 0,
    N_BLOB, K_MANIFEST, M_ANNOTATIONS, 0, 1, 1,
    // #3 oci-layout; #4 index.json: #2 named latest
    N_OCI_LAYOUT, K_OCI_LAYOUT, 0,
    N_INDEX_JSON, K_INDEX, I_ANNOTATIONS, 1, 1, A_REF_LATEST,
];
const SEED_OCI_ARCHIVE_IMPORT: [u8; OCI_ARCHIVE_UNPACK.len()] = with_flags(OCI_ARCHIVE_UNPACK, 0);

/// skopeo's docker-archive: layers as `{hex}.tar`, the config as `{hex}.json`, and
/// `{v1}/layer.tar` symlinks to the layers, which `manifest.json` names.
#[rustfmt::skip]
const SKOPEO: &[u8] = &[
    0,
    // #0, #1 layers; #2 config
    N_HEX_TAR, K_LAYER, L_TAR | L_FILES1, 80, b'q',
    N_HEX_TAR, K_LAYER, L_TAR | L_FILES2, 10, b'r', 20, b's',
    N_HEX_JSON, K_CONFIG, C_FULL, 2, 1, 0,
    // #3 {v1}/layer.tar → ../{hex of #0}.tar; #4 its VERSION; #5 the same for #1
    N_V1_LAYER, K_SYMLINK, 2,
    N_V1_VERSION | N_PREV, K_RAW, 3, b'1', b'.', b'0',
    N_V1_LAYER, K_SYMLINK, 3,
    // #6 manifest.json: Config #2, RepoTags docker.io/library/app:1.0, Layers #3 (the
    // symlink) and #5
    N_MANIFEST_JSON, K_DOCKER_MANIFEST, 0, 1, 3, 1, T_DOCKER_IO_APP_1_0, 2, 2, 0,
    // repositories → {hex} of #5
    N_REPOSITORIES, K_REPOSITORIES, 1, T_DOCKER_IO_APP_1_0, 1,
];

/// crane's tarball: `sha256:{hex}` config, `{hex}.tar.gz` layers.
#[rustfmt::skip]
const CRANE: &[u8] = &[
    0,
    N_HEX_TAR_GZ, K_LAYER, L_GZIP | L_FILES2, 100, 1, 100, 2,
    N_SHA256_HEX, K_CONFIG, 0, 1, 0,
    N_MANIFEST_JSON, K_DOCKER_MANIFEST, 0, 1, 0, 1, T_APP_LATEST, 1, 1,
];

/// A docker-save archive re-packed by GNU tar and gzip: a `./` record, `./`-prefixed names
/// (not in `manifest.json`), the second VERSION a hard link to the first.
#[rustfmt::skip]
const GNU_RETAR: &[u8] = &[
    F_GZIP,
    N_MANIFEST_JSON | N_DOT, K_DIR,
    // #0 ./{v1a}/layer.tar, #1 ./{v1a}/VERSION, #2 ./{v1b}/layer.tar
    N_V1_LAYER | N_DOT, K_LAYER, L_TAR | L_FILES1, 40, 7,
    N_V1_VERSION | N_DOT | N_PREV, K_RAW, 3, b'1', b'.', b'0',
    N_V1_LAYER | N_DOT, K_LAYER, L_TAR | L_FILES1, 41, 8,
    // #3 ./{v1b}/VERSION, a hard link to #1
    N_V1_VERSION | N_DOT | N_PREV, K_HARDLINK, 1,
    // #4 ./{config}.json: diff_ids #0 #2
    N_HEX_JSON | N_DOT, K_CONFIG, 0, 2, 2, 0,
    // #5 ./manifest.json: Config #4, RepoTags team/app:2, Layers #0 #2 (without ./)
    N_MANIFEST_JSON | N_DOT, K_DOCKER_MANIFEST, 0, 1, R_OFF, 1, T_TEAM_APP_2, 2, R_OFF | 4, R_OFF | 2,
    N_REPOSITORIES | N_DOT, K_REPOSITORIES, 1, T_TEAM_APP_2, 3,
];

/// `seed` with another flags byte.
const fn with_flags<const N: usize>(seed: &[u8], flags: u8) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = seed[i];
        i += 1;
    }
    out[0] = flags;
    out
}
