//! The fuzz harness: one function per fuzz target, each taking the raw input.
//!
//! Every function must return normally on any input: errors from the libraries are expected,
//! panics are bugs (in the library, or a broken invariant asserted here). The same file is
//! compiled into `crates/ocitool-archive/tests/fuzz_regressions.rs` (by `#[path]`), which
//! replays every saved crash under `testdata/fuzz-regressions/<target>/`, so this file uses
//! only dependencies that crate also has: the ocitool libraries, `serde_json`, `tar` and
//! `tempfile`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use ocitool_archive::import::{self, ImportOptions, Mode};
use ocitool_archive::ingest::Limits;
use ocitool_compress::{Compression, EncodeOptions, Encoder};
use ocitool_digest::{Algorithm, Digest};
use ocitool_layout::{IndexDoc, Layout, NoProgress, Options, WaitMode};
use ocitool_spec::docker::{self, ManifestItem};
use ocitool_spec::refname;
use ocitool_spec::tags::{self, POLICY_ANNOTATION, Policy, VersionTag};
use ocitool_spec::views::{self, ConfigView, Descriptor, IndexView, ManifestView};
use ocitool_spec::{Document, Platform, media};
use ocitool_testkit::archives::push_long;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

include!("targets.rs");

/// Runs the harness of `target` on `data`; `false` for an unknown target.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "archive_import" => archive_import(data),
        "oci_archive_unpack" => oci_archive_unpack(data),
        "archive_structured" => archive_structured(data),
        "views" => views(data),
        "names" => names(data),
        "index_edit" => index_edit(data),
        "graph_roles" => graph_roles(data),
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------------------------------
// archive_import, oci_archive_unpack

/// `import` of the input as an archive (plain, gzip or zstd tar) into a fresh layout.
pub fn archive_import(data: &[u8]) {
    archive(data, Mode::Import);
}

/// `unpack` of the input as an oci-archive into a fresh layout.
pub fn oci_archive_unpack(data: &[u8]) {
    archive(data, Mode::Unpack);
}

/// Where temporary layouts go: tmpfs when there is one (each iteration creates a layout).
fn temp_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && std::fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly()) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Every file under `dir` (relative path → size); symlinks and other non-files listed too.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<u64>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).expect("under dir").to_path_buf();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => {
                    out.insert(rel, e.metadata().ok().map(|m| m.len()));
                }
                _ => {
                    out.insert(rel, None);
                }
            }
        }
    }
    out
}

/// Imports `data` into a fresh layout and checks what the layout looks like after it; whether
/// the import succeeded.
fn archive(data: &[u8], mode: Mode) -> bool {
    let tmp = tempfile::Builder::new()
        .prefix("ocitool-fuzz-")
        .tempdir_in(temp_base())
        .expect("create a temporary directory");
    let options = Options {
        wait: WaitMode::NoWait,
        durable: false,
        ..Options::default()
    };
    let (layout, _) = Layout::init(tmp.path(), options).expect("init a fresh layout");
    let index_before = std::fs::read(layout.index_path()).expect("read index.json");
    let blobs_before = tree(&tmp.path().join("blobs"));
    let opts = ImportOptions {
        mode,
        // Each iteration must stay cheap: a small input may not expand past a few MiB.
        limits: Limits {
            max_entries: 10_000,
            ratio_slack: 1 << 20,
            ..Limits::default()
        },
        ..ImportOptions::default()
    };
    let result = import::import(&layout, data, &opts, &NoProgress);
    let index_after = std::fs::read(layout.index_path()).expect("index.json still readable");
    let blobs_after = tree(&tmp.path().join("blobs"));
    let staging = tree(&tmp.path().join(".ocitool").join("tmp"));
    assert!(
        staging.is_empty(),
        "{mode:?} ({}) left files in .ocitool/tmp: {staging:?}",
        if result.is_ok() { "Ok" } else { "Err" }
    );
    let imported = result.is_ok();
    match result {
        Err(e) => {
            assert!(
                index_after == index_before,
                "{mode:?} failed ({e}) but changed index.json:\n{}",
                String::from_utf8_lossy(&index_after)
            );
            let added: Vec<_> = blobs_after
                .keys()
                .filter(|p| !blobs_before.contains_key(*p))
                .collect();
            assert!(
                blobs_after == blobs_before,
                "{mode:?} failed ({e}) but the blob directory changed; new: {added:?}"
            );
        }
        Ok(report) => {
            // index.json names only blobs that are there, with the sizes it declares.
            let index = IndexDoc::parse(index_after.clone(), &layout.index_path())
                .expect("index.json written by import parses");
            for (i, d) in index.iter() {
                let c = d
                    .checked()
                    .unwrap_or_else(|e| panic!("{mode:?}: manifests[{i}] is invalid: {e}"));
                let size = layout
                    .stat_blob(&c.digest)
                    .unwrap_or_else(|e| panic!("{mode:?}: stat {}: {e}", c.digest));
                assert_eq!(
                    size,
                    Some(c.size),
                    "{mode:?}: manifests[{i}] names {} of {} bytes; the layout has {size:?}",
                    c.digest,
                    c.size
                );
            }
            for img in &report.images {
                assert!(
                    layout.stat_blob(&img.digest).ok().flatten().is_some(),
                    "{mode:?}: reported image {} is not in the layout",
                    img.digest
                );
            }
            // Importing the same archive again succeeds and changes nothing.
            let again = import::import(&layout, data, &opts, &NoProgress);
            let index_again = std::fs::read(layout.index_path()).expect("read index.json");
            if let Err(e) = again {
                panic!("{mode:?}: the second import of an archive that imported failed: {e}");
            }
            assert!(
                index_again == index_after,
                "{mode:?}: importing the same archive twice changed index.json:\n{}\n-->\n{}",
                String::from_utf8_lossy(&index_after),
                String::from_utf8_lossy(&index_again)
            );
            assert!(
                tree(&tmp.path().join("blobs")) == blobs_after,
                "{mode:?}: importing the same archive twice changed the blobs"
            );
        }
    }
    imported
}

// ---------------------------------------------------------------------------------------------
// archive_structured

include!("structured_seeds.rs");
include!("graph_roles.rs");

/// `import` (or `unpack`) of an archive the input describes member by member, with digests,
/// sizes and names that reference the archive's own members (the format is described in
/// `structured_seeds.rs`), so that mutations reach image resolution instead of breaking a
/// digest; the same checks as `archive_import`.
pub fn archive_structured(data: &[u8]) {
    structured_import(data);
}

/// Decodes `data` into an archive and imports it: whether the import succeeded (`None`: an
/// empty input). With `OCITOOL_FUZZ_SHOW` set in the environment, prints the archive first.
pub fn structured_import(data: &[u8]) -> Option<bool> {
    let s = Structured::decode(data)?;
    if std::env::var_os("OCITOOL_FUZZ_SHOW").is_some() {
        eprintln!("{}", s.describe());
    }
    Some(archive(&s.archive, s.mode))
}

/// Most members an input describes.
const MAX_MEMBERS: usize = 32;

/// What a file of a structured archive is, for the descriptors that reference it.
#[derive(Clone, Copy, Debug)]
enum Doc {
    Layer,
    Config,
    Manifest(&'static str),
    Index(&'static str),
    Other,
}

#[derive(Clone, Debug)]
struct Blob {
    digest: Digest,
    size: u64,
    /// By magic bytes.
    compression: Compression,
    /// sha256 of the decompressed bytes (a layer's diff_id); the digest when not compressed.
    diff_id: Digest,
    doc: Doc,
}

impl Blob {
    fn of(bytes: &[u8], diff_id: Option<Digest>, doc: Doc) -> Blob {
        let digest = Digest::sha256(bytes);
        Blob {
            diff_id: diff_id.unwrap_or_else(|| digest.clone()),
            digest,
            size: bytes.len() as u64,
            compression: Compression::detect(bytes),
            doc,
        }
    }

    /// The media type a descriptor of this blob has where nothing else decides it.
    fn media_type(&self, docker: bool) -> &'static str {
        match self.doc {
            Doc::Layer => {
                media::layer_media_type(self.compression, docker).unwrap_or(media::OCI_LAYER_TAR)
            }
            Doc::Config if docker => media::DOCKER_CONFIG,
            Doc::Config => media::OCI_CONFIG,
            Doc::Manifest(mt) | Doc::Index(mt) => mt,
            Doc::Other => "application/octet-stream",
        }
    }

    /// A descriptor; `variant` 6 declares one byte too many, 7 a digest not in the archive.
    fn descriptor(&self, media_type: &str, variant: u8) -> Map<String, Value> {
        let mut digest = self.digest.to_string();
        let mut size = self.size;
        match variant {
            6 => size += 1,
            7 => digest = altered(&digest),
            _ => {}
        }
        let mut d = Map::new();
        d.insert("mediaType".into(), Value::from(media_type));
        d.insert("digest".into(), Value::from(digest));
        d.insert("size".into(), Value::from(size));
        d
    }
}

/// The same digest with its last hex digit changed.
fn altered(digest: &str) -> String {
    let mut s = digest.to_string();
    let last = s.pop();
    s.push(if last == Some('0') { '1' } else { '0' });
    s
}

#[derive(Clone, Debug)]
enum Body {
    File(Vec<u8>),
    Symlink(String),
    Hardlink(String),
    Dir,
}

#[derive(Clone, Debug)]
struct StructuredMember {
    /// As written in the tar header.
    name: String,
    body: Body,
    /// A file's own blob; a link's target's (when the target is a file or a link to one).
    blob: Option<Blob>,
    /// The hex `{hex}` and `{v1}` names derive from.
    anchor: String,
}

/// Which earlier members a reference byte picks among.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pool {
    /// Regular files (digest references).
    Files,
    /// Files and links (name references).
    Names,
}

/// An earlier member (its index) and the reference's variant (0..=7), or `None` when there
/// is no candidate.
fn pick(earlier: &[StructuredMember], r: u8, pool: Pool) -> Option<(usize, u8)> {
    let candidates: Vec<usize> = earlier
        .iter()
        .enumerate()
        .filter(|(_, m)| match pool {
            Pool::Files => matches!(m.body, Body::File(_)),
            Pool::Names => !matches!(m.body, Body::Dir),
        })
        .map(|(i, _)| i)
        .collect();
    let back = (r & 0x1f) as usize % candidates.len().max(1);
    let i = *candidates.get(candidates.len().checked_sub(1 + back)?)?;
    Some((i, r >> 5))
}

/// A member name as a `manifest.json` path: as written, with its `./` toggled (6), or one
/// the archive does not hold (7).
fn name_ref(earlier: &[StructuredMember], r: u8) -> String {
    match pick(earlier, r, Pool::Names) {
        None => "missing/layer.tar".into(),
        Some((i, 7)) => format!("missing-{i}/layer.tar"),
        Some((i, 6)) => toggle_dot(&earlier[i].name),
        Some((i, _)) => earlier[i].name.clone(),
    }
}

/// A member name as the importer compares names: without `.` and empty components.
fn normal(name: &str) -> Vec<&str> {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

fn toggle_dot(name: &str) -> String {
    match name.strip_prefix("./") {
        Some(rest) => rest.to_string(),
        None => format!("./{name}"),
    }
}

fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    if !c.is_layer_codec() {
        // ocitool only reads xz and bzip2; the testkit writes them.
        return ocitool_testkit::archives::compress(data, c);
    }
    let options = EncodeOptions {
        level: Some(1),
        zstd_workers: 0,
    };
    let mut e = Encoder::new(c, Vec::new(), options).expect("level 1 is valid");
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a Value serializes")
}

/// The name part of a member, as read before its content.
enum NameSpec {
    Base(u8),
    Raw(String),
    SameAs(Option<usize>),
}

/// An archive decoded from a fuzz input.
pub struct Structured {
    pub mode: Mode,
    /// The tar stream (compressed as `compression` says).
    pub archive: Vec<u8>,
    compression: Compression,
    end_blocks: bool,
    members: Vec<StructuredMember>,
}

impl Structured {
    /// `None` for an empty input.
    pub fn decode(data: &[u8]) -> Option<Structured> {
        let mut input = Input { data };
        let flags = input.byte()?;
        let compression = match flags & 3 {
            1 => Compression::Gzip,
            2 => Compression::Zstd,
            3 => Compression::Xz,
            _ => Compression::None,
        };
        let mode = if flags & F_UNPACK != 0 {
            Mode::Unpack
        } else {
            Mode::Import
        };
        let end_blocks = flags & F_NO_END == 0;
        let mut members = Vec::new();
        while members.len() < MAX_MEMBERS {
            let Some(m) = input.member(&members) else {
                break;
            };
            members.push(m);
        }
        let tar = build_tar(&members, end_blocks);
        let archive = match compression {
            Compression::None => tar,
            c => compress(&tar, c),
        };
        Some(Structured {
            mode,
            archive,
            compression,
            end_blocks,
            members,
        })
    }

    /// The archive, member by member, JSON documents in full.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{:?} of a {} tar of {} bytes ({} members{}):\n",
            self.mode,
            match self.compression {
                Compression::None => "plain",
                c => c.name(),
            },
            self.archive.len(),
            self.members.len(),
            if self.end_blocks {
                ""
            } else {
                ", no end blocks"
            }
        );
        for (i, m) in self.members.iter().enumerate() {
            out.push_str(&format!("  #{i:<2} {:?}", m.name));
            match &m.body {
                Body::File(bytes) => {
                    let b = m.blob.as_ref().expect("a file has a blob");
                    out.push_str(&format!(
                        " {} bytes {} {:?}, {}",
                        b.size, b.digest, b.doc, b.compression
                    ));
                    if b.diff_id != b.digest {
                        out.push_str(&format!(", diff_id {}", b.diff_id));
                    }
                    if matches!(bytes.first(), Some(b'{' | b'[' | b'n')) {
                        out.push_str(&format!("\n      {}", String::from_utf8_lossy(bytes)));
                    }
                }
                Body::Symlink(t) => out.push_str(&format!(" -> {t:?}")),
                Body::Hardlink(t) => out.push_str(&format!(" link to {t:?}")),
                Body::Dir => out.push_str(" (directory)"),
            }
            out.push('\n');
        }
        out
    }
}

impl Input<'_> {
    fn refs(&mut self, n: u8) -> Option<Vec<u8>> {
        (0..n).map(|_| self.byte()).collect()
    }

    /// One member: its name byte (and parameters), then its kind byte (and parameters).
    fn member(&mut self, earlier: &[StructuredMember]) -> Option<StructuredMember> {
        let nb = self.byte()?;
        let spec = match nb & 0x0f {
            N_RAW => {
                let n = self.byte()? as usize % 101;
                NameSpec::Raw(String::from_utf8_lossy(self.take(n)).into_owned())
            }
            N_SAME_AS => NameSpec::SameAs(pick(earlier, self.byte()?, Pool::Names).map(|p| p.0)),
            b => NameSpec::Base(b),
        };
        // A link's target, resolved after its own name is known.
        let mut link: Option<(bool, Option<(usize, u8)>)> = None;
        let (body, blob) = match self.byte()? % 12 {
            K_LAYER => {
                let (bytes, diff_id) = self.layer()?;
                let blob = Blob::of(&bytes, Some(diff_id), Doc::Layer);
                (Body::File(bytes), Some(blob))
            }
            K_CONFIG => {
                let bytes = self.config(earlier)?;
                let blob = Blob::of(&bytes, None, Doc::Config);
                (Body::File(bytes), Some(blob))
            }
            K_MANIFEST => {
                let (bytes, mt) = self.manifest(earlier)?;
                let blob = Blob::of(&bytes, None, Doc::Manifest(mt));
                (Body::File(bytes), Some(blob))
            }
            K_INDEX => {
                let (bytes, mt) = self.index(earlier)?;
                let blob = Blob::of(&bytes, None, Doc::Index(mt));
                (Body::File(bytes), Some(blob))
            }
            K_DOCKER_MANIFEST => {
                let bytes = self.docker_manifest(earlier)?;
                let blob = Blob::of(&bytes, None, Doc::Other);
                (Body::File(bytes), Some(blob))
            }
            K_OCI_LAYOUT => {
                let bytes = [
                    &br#"{"imageLayoutVersion":"1.0.0"}"#[..],
                    br#"{"imageLayoutVersion": "1.0.0"}"#,
                    br#"{"imageLayoutVersion":"2.0.0"}"#,
                    b"{}",
                    b"[]",
                ][self.byte()? as usize % 5]
                    .to_vec();
                let blob = Blob::of(&bytes, None, Doc::Other);
                (Body::File(bytes), Some(blob))
            }
            K_REPOSITORIES => {
                let bytes = self.repositories(earlier)?;
                let blob = Blob::of(&bytes, None, Doc::Other);
                (Body::File(bytes), Some(blob))
            }
            K_RAW => {
                let n = self.byte()? as usize;
                let bytes = self.take(n).to_vec();
                let blob = Blob::of(&bytes, None, Doc::Other);
                (Body::File(bytes), Some(blob))
            }
            k @ (K_SYMLINK | K_HARDLINK) => {
                let target = pick(earlier, self.byte()?, Pool::Names);
                link = Some((k == K_SYMLINK, target));
                let blob = target.and_then(|(i, _)| earlier[i].blob.clone());
                (Body::Dir, blob) // the body is set below
            }
            K_DIR => (Body::Dir, None),
            _ => {
                // K_COPY
                match pick(earlier, self.byte()?, Pool::Files) {
                    Some((i, _)) => (earlier[i].body.clone(), earlier[i].blob.clone()),
                    None => (
                        Body::File(Vec::new()),
                        Some(Blob::of(&[], None, Doc::Other)),
                    ),
                }
            }
        };

        // {hex}: the content's digest (a link's target's); with N_PREV the previous member's.
        let own = match (&blob, &link) {
            (Some(b), _) => b.digest.encoded().to_string(),
            (None, Some((_, Some((i, _))))) => earlier[*i].anchor.clone(),
            _ => String::new(),
        };
        let mut anchor = if nb & N_PREV != 0 {
            earlier.last().map(|m| m.anchor.clone()).unwrap_or_default()
        } else {
            own
        };
        if anchor.is_empty() {
            anchor = Digest::sha256(&[earlier.len() as u8]).encoded().to_string();
        }
        let hex = &anchor;
        let v1 = Digest::sha256(format!("v1 {anchor}").as_bytes());
        let v1 = v1.encoded();
        let is_dir = matches!(body, Body::Dir) && link.is_none();
        let same_as = matches!(spec, NameSpec::SameAs(_));
        let mut name = match spec {
            NameSpec::Raw(s) => s,
            NameSpec::SameAs(Some(i)) => earlier[i].name.clone(),
            NameSpec::SameAs(None) => "manifest.json".into(),
            NameSpec::Base(b) if is_dir => match b {
                N_MANIFEST_JSON => String::new(),
                N_BLOB => "blobs/sha256/".into(),
                N_BLOB_SHA512 => "blobs/".into(),
                N_V1_LAYER | N_V1_JSON | N_V1_VERSION => format!("{v1}/"),
                _ => format!("{hex}/"),
            },
            NameSpec::Base(b) => match b {
                N_MANIFEST_JSON => "manifest.json".into(),
                N_INDEX_JSON => "index.json".into(),
                N_OCI_LAYOUT => "oci-layout".into(),
                N_REPOSITORIES => "repositories".into(),
                N_BLOB => format!("blobs/sha256/{hex}"),
                N_HEX_JSON => format!("{hex}.json"),
                N_V1_LAYER => format!("{v1}/layer.tar"),
                N_HEX_TAR => format!("{hex}.tar"),
                N_SHA256_HEX => format!("sha256:{hex}"),
                N_HEX_TAR_GZ => format!("{hex}.tar.gz"),
                N_V1_JSON => format!("{v1}/json"),
                N_V1_VERSION => format!("{v1}/VERSION"),
                N_BLOB_SHA512 => {
                    let d = match (&body, nb & N_PREV) {
                        (Body::File(bytes), 0) => Digest::of(Algorithm::Sha512, bytes),
                        _ => Digest::of(Algorithm::Sha512, anchor.as_bytes()),
                    };
                    format!("blobs/sha512/{}", d.encoded())
                }
                _ => format!("blobs/sha256/{}", altered(hex)),
            },
        };
        if nb & N_DOT != 0 && !name.starts_with("./") {
            name = format!("./{name}");
        }
        // A name taken twice by accident (the same content stored twice, a fixed name used
        // again) moves to a directory of its own: the importer refuses duplicates outright,
        // and `N_SAME_AS` makes them on purpose.
        if !same_as
            && !is_dir
            && earlier
                .iter()
                .any(|m| !matches!(m.body, Body::Dir) && normal(&m.name) == normal(&name))
        {
            name = format!("dup{}/{}", earlier.len(), name.trim_start_matches("./"));
        }

        let body = match link {
            None => body,
            Some((symlink, target)) => {
                let to = match target {
                    None => "nowhere".to_string(),
                    Some((_, 7)) => "/etc/passwd".to_string(),
                    Some((_, 6)) if symlink => "../../../escape".to_string(),
                    Some((i, 6)) => toggle_dot(&earlier[i].name),
                    Some((i, _)) if symlink => {
                        // Relative to the link's directory.
                        let depth = name
                            .split('/')
                            .filter(|c| !c.is_empty() && *c != ".")
                            .count()
                            .saturating_sub(1);
                        let target = earlier[i].name.trim_start_matches("./");
                        format!("{}{target}", "../".repeat(depth))
                    }
                    Some((i, _)) => earlier[i].name.clone(),
                };
                if symlink {
                    Body::Symlink(to)
                } else {
                    Body::Hardlink(to)
                }
            }
        };
        Some(StructuredMember {
            name,
            body,
            blob,
            anchor,
        })
    }

    /// A layer: its bytes (compressed as asked) and its diff_id.
    fn layer(&mut self) -> Option<(Vec<u8>, Digest)> {
        let spec = self.byte()?;
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, ty: tar::EntryType, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_700_000_000);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mode(if ty.is_dir() { 0o755 } else { 0o644 });
            h.set_entry_type(ty);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, data)
                .expect("writing to memory");
        };
        if spec & L_DIR != 0 {
            add("etc/", tar::EntryType::Directory, &[]);
        }
        for i in 0..(spec >> 2) & 3 {
            let size = self.byte()? as usize;
            let fill = self.byte()?;
            let data: Vec<u8> = (0..size)
                .map(|j| fill.wrapping_add((j / 7) as u8))
                .collect();
            add(&format!("etc/file-{i}"), tar::EntryType::Regular, &data);
        }
        if spec & L_WHITEOUT != 0 {
            add("etc/.wh.gone", tar::EntryType::Regular, &[]);
        }
        let tar = b.into_inner().expect("writing to memory");
        let diff_id = Digest::sha256(&tar);
        let bytes = match spec & 3 {
            L_TAR => tar,
            L_GZIP => compress(&tar, Compression::Gzip),
            L_ZSTD => compress(&tar, Compression::Zstd),
            _ => {
                let mut gz = compress(&tar, Compression::Gzip);
                gz.truncate(gz.len() - 8); // without its CRC and length
                gz
            }
        };
        Some((bytes, diff_id))
    }

    fn config(&mut self, earlier: &[StructuredMember]) -> Option<Vec<u8>> {
        let flags = self.byte()?;
        let n = self.byte()? % 5;
        let mut diff_ids = Vec::new();
        for r in self.refs(n)? {
            if let Some((i, v)) = pick(earlier, r, Pool::Files) {
                let b = earlier[i].blob.as_ref().expect("a file has a blob");
                diff_ids.push(Value::from(match v {
                    6 => b.digest.to_string(),
                    7 => altered(&b.diff_id.to_string()),
                    _ => b.diff_id.to_string(),
                }));
            }
        }
        let mut c = Map::new();
        c.insert(
            "architecture".into(),
            if flags & C_BAD_ARCH != 0 {
                Value::from(7)
            } else {
                Value::from(ARCHES[flags as usize & 3])
            },
        );
        if flags & C_NO_OS == 0 {
            c.insert("os".into(), Value::from("linux"));
        }
        if flags & C_OS_VERSION != 0 {
            c.insert("os.version".into(), Value::from("10.0.17763.1"));
            c.insert("variant".into(), Value::from("v7"));
        }
        if flags & C_NO_ROOTFS == 0 {
            let ids = if flags & C_NULL_DIFF_IDS != 0 {
                Value::Null
            } else {
                Value::Array(diff_ids)
            };
            c.insert("rootfs".into(), json!({"type": "layers", "diff_ids": ids}));
        }
        if flags & C_FULL != 0 {
            c.insert(
                "config".into(),
                json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"], "Labels": null}),
            );
            c.insert("created".into(), Value::from("2023-11-14T22:13:20Z"));
            c.insert("history".into(), json!([{"created_by": "fuzz"}]));
        }
        Some(json_bytes(&Value::Object(c)))
    }

    fn manifest(&mut self, earlier: &[StructuredMember]) -> Option<(Vec<u8>, &'static str)> {
        let flags = self.byte()?;
        let docker = flags & M_DOCKER != 0;
        let config = self.byte()?;
        let subject = if flags & M_SUBJECT != 0 {
            Some(self.byte()?)
        } else {
            None
        };
        let n = self.byte()? % 6;
        let layers = self.refs(n)?;
        let mt = if docker {
            media::DOCKER_MANIFEST
        } else {
            media::OCI_MANIFEST
        };
        let config_type = match (flags & M_ARTIFACT != 0, docker) {
            (true, _) => "application/vnd.example.artifact.config.v1+json",
            (false, true) => media::DOCKER_CONFIG,
            (false, false) => media::OCI_CONFIG,
        };
        let mut m = Map::new();
        m.insert(
            "schemaVersion".into(),
            Value::from(if flags & M_SCHEMA1 != 0 { 1 } else { 2 }),
        );
        if flags & M_NO_MEDIA_TYPE == 0 {
            m.insert("mediaType".into(), Value::from(mt));
        }
        let config = match pick(earlier, config, Pool::Files) {
            Some((i, v)) => earlier[i]
                .blob
                .as_ref()
                .expect("a file")
                .descriptor(config_type, v),
            None => Blob::of(media::EMPTY_JSON, None, Doc::Other).descriptor(config_type, 0),
        };
        m.insert("config".into(), Value::Object(config));
        let mut ls = Vec::new();
        for (k, r) in layers.into_iter().enumerate() {
            let Some((i, v)) = pick(earlier, r, Pool::Files) else {
                continue;
            };
            let b = earlier[i].blob.as_ref().expect("a file");
            let c = if flags & M_TAR_TYPES != 0 {
                Compression::None
            } else {
                b.compression
            };
            let mut d = b.descriptor(
                media::layer_media_type(c, docker).unwrap_or(media::OCI_LAYER_TAR),
                v,
            );
            if k == 0 && flags & M_FOREIGN != 0 {
                let foreign = if docker {
                    media::DOCKER_FOREIGN_LAYER
                } else {
                    media::OCI_LAYER_ND_GZIP
                };
                d.insert("mediaType".into(), Value::from(foreign));
                d.insert("urls".into(), json!(["https://example.com/layer.tar.gz"]));
            }
            ls.push(Value::Object(d));
        }
        m.insert("layers".into(), Value::Array(ls));
        if flags & M_ANNOTATIONS != 0 {
            m.insert(
                "annotations".into(),
                json!({"org.opencontainers.image.created": "2023-11-14T22:13:20Z"}),
            );
        }
        if let Some((i, v)) = subject.and_then(|r| pick(earlier, r, Pool::Files)) {
            let b = earlier[i].blob.as_ref().expect("a file");
            m.insert(
                "subject".into(),
                Value::Object(b.descriptor(b.media_type(docker), v)),
            );
        }
        Some((json_bytes(&Value::Object(m)), mt))
    }

    fn index(&mut self, earlier: &[StructuredMember]) -> Option<(Vec<u8>, &'static str)> {
        let flags = self.byte()?;
        let docker = flags & I_DOCKER != 0;
        let n = self.byte()? % 6;
        let mut manifests = Vec::new();
        for _ in 0..n {
            let r = self.byte()?;
            let ann = self.byte()?;
            let Some((i, v)) = pick(earlier, r, Pool::Files) else {
                continue;
            };
            let b = earlier[i].blob.as_ref().expect("a file");
            let mut d = b.descriptor(b.media_type(docker), v);
            let mut a = Map::new();
            if ann & 7 != 0 {
                a.insert(
                    refname::REF_NAME.into(),
                    Value::from(REF_NAMES[ann as usize & 7]),
                );
            }
            if (ann >> 3) & 7 != 0 {
                a.insert(
                    refname::CONTAINERD_IMAGE_NAME.into(),
                    Value::from(CONTAINERD_NAMES[(ann as usize >> 3) & 7]),
                );
            }
            if !a.is_empty() {
                d.insert("annotations".into(), Value::Object(a));
            }
            let (os, arch, variant) = PLATFORMS[ann as usize >> 6];
            if !os.is_empty() {
                let mut p = json!({"architecture": arch, "os": os});
                if !variant.is_empty() {
                    p["variant"] = Value::from(variant);
                }
                d.insert("platform".into(), p);
            }
            manifests.push(Value::Object(d));
        }
        let mt = if docker {
            media::DOCKER_MANIFEST_LIST
        } else {
            media::OCI_INDEX
        };
        let mut x = Map::new();
        x.insert("schemaVersion".into(), Value::from(2));
        if flags & I_NO_MEDIA_TYPE == 0 {
            x.insert("mediaType".into(), Value::from(mt));
        }
        x.insert(
            "manifests".into(),
            if flags & I_NULL != 0 {
                Value::Null
            } else {
                Value::Array(manifests)
            },
        );
        if flags & I_ANNOTATIONS != 0 {
            x.insert("annotations".into(), json!({"com.example.note": "fuzz"}));
        }
        Some((json_bytes(&Value::Object(x)), mt))
    }

    fn docker_manifest(&mut self, earlier: &[StructuredMember]) -> Option<Vec<u8>> {
        let flags = self.byte()?;
        if flags & D_NULL != 0 {
            return Some(b"null".to_vec());
        }
        let n = self.byte()? % 4;
        let mut items = Vec::new();
        for _ in 0..n {
            let config = self.byte()?;
            let tb = self.byte()?;
            let tags: Vec<Value> = self
                .refs(tb & 3)?
                .into_iter()
                .map(|t| Value::from(REPO_TAGS[t as usize % REPO_TAGS.len()]))
                .collect();
            let nl = self.byte()? % 6;
            let layers = self.refs(nl)?;
            // Bit 3: the keys as old Jib wrote them (docker and ocitool match any case).
            let (k_config, k_tags, k_layers) = if tb & 8 != 0 {
                ("config", "repoTags", "layers")
            } else {
                ("Config", "RepoTags", "Layers")
            };
            let mut item = Map::new();
            item.insert(k_config.into(), Value::from(name_ref(earlier, config)));
            item.insert(
                k_tags.into(),
                if tags.is_empty() && tb & 4 != 0 {
                    Value::Null
                } else {
                    Value::Array(tags)
                },
            );
            item.insert(
                k_layers.into(),
                layers.iter().map(|&r| name_ref(earlier, r)).collect(),
            );
            if flags & D_LAYER_SOURCES != 0 {
                let mut sources = Map::new();
                for &r in &layers {
                    if let Some(b) =
                        pick(earlier, r, Pool::Names).and_then(|(i, _)| earlier[i].blob.as_ref())
                    {
                        let d = b.descriptor(
                            media::layer_media_type(b.compression, false)
                                .unwrap_or(media::OCI_LAYER_TAR),
                            0,
                        );
                        sources.insert(b.diff_id.to_string(), Value::Object(d));
                    }
                }
                item.insert("LayerSources".into(), Value::Object(sources));
            }
            if flags & D_PARENT != 0 {
                item.insert(
                    "Parent".into(),
                    Value::from(format!("sha256:{}", "1".repeat(64))),
                );
            }
            items.push(Value::Object(item));
        }
        Some(json_bytes(&Value::Array(items)))
    }

    fn repositories(&mut self, earlier: &[StructuredMember]) -> Option<Vec<u8>> {
        let n = self.byte()? % 3;
        let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for _ in 0..n {
            let t = REPO_TAGS[self.byte()? as usize % REPO_TAGS.len()];
            let hex = pick(earlier, self.byte()?, Pool::Names)
                .map_or_else(|| "0".repeat(64), |(i, _)| earlier[i].anchor.clone());
            let (repo, tag) = t.rsplit_once(':').unwrap_or((t, "latest"));
            repos
                .entry(repo.to_string())
                .or_default()
                .insert(tag.to_string(), hex);
        }
        Some(serde_json::to_vec(&repos).expect("a map serializes"))
    }
}

/// The tar stream, names written byte for byte (`tar::Header::set_path` would drop `./`).
fn build_tar(members: &[StructuredMember], end_blocks: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let (ty, mode, data, link): (tar::EntryType, u32, &[u8], Option<&str>) = match &m.body {
            Body::File(d) => (tar::EntryType::Regular, 0o644, d, None),
            Body::Symlink(t) => (tar::EntryType::Symlink, 0o777, &[], Some(t)),
            Body::Hardlink(t) => (tar::EntryType::Link, 0o644, &[], Some(t)),
            Body::Dir => (tar::EntryType::Directory, 0o755, &[], None),
        };
        if let Some(l) = link.filter(|l| l.len() > 100) {
            // Raw records go straight to the builder's buffer (it does not buffer itself).
            push_long(b.get_mut(), b'K', l.as_bytes());
        }
        if m.name.len() > 100 {
            push_long(b.get_mut(), b'L', m.name.as_bytes());
        }
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_entry_type(ty);
        let old = h.as_old_mut();
        let n = m.name.as_bytes();
        old.name[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
        if let Some(l) = link {
            let l = l.as_bytes();
            old.linkname[..l.len().min(100)].copy_from_slice(&l[..l.len().min(100)]);
        }
        h.set_cksum();
        b.append(&h, data).expect("writing to memory");
    }
    let mut out = b.into_inner().expect("writing to memory");
    if !end_blocks {
        out.truncate(out.len() - 1024);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// views

fn touch_descriptor(d: &Descriptor) {
    let _ = d.checked();
    let _ = d.validate(ocitool_spec::DEFAULT_JSON_LIMIT);
    let _ = d.validate(0);
    let _ = d.kind();
    let _ = d.ref_name();
    let _ = d.containerd_name();
    if let Some(p) = &d.platform {
        let _ = p.to_string();
        let _ = p.matches(&Platform::host());
    }
}

/// The lenient views, document sniffing, `manifest.json` and `index.json` parsing.
pub fn views(data: &[u8]) {
    if let Ok(i) = views::parse::<IndexView>(data, "image index") {
        i.manifests.iter().for_each(touch_descriptor);
        i.subject.iter().for_each(touch_descriptor);
    }
    if let Ok(m) = views::parse::<ManifestView>(data, "image manifest") {
        touch_descriptor(&m.config);
        m.layers.iter().for_each(touch_descriptor);
        m.subject.iter().for_each(touch_descriptor);
    }
    if let Ok(c) = views::parse::<ConfigView>(data, "image config") {
        let p = c.platform();
        let _ = p.to_string();
    }
    for mt in [
        None,
        Some(media::OCI_INDEX),
        Some(media::OCI_MANIFEST),
        Some(media::DOCKER_MANIFEST_LIST),
        Some(media::OCI_CONFIG),
        Some("not a media type"),
    ] {
        if let Ok(d) = Document::parse(data, mt) {
            let _ = d.media_type();
            d.subject().iter().for_each(|s| touch_descriptor(s));
            let _ = d.artifact_type();
        }
    }
    let _ = Document::sniff(data);
    if let Ok(items) = views::parse::<Vec<ManifestItem>>(data, "manifest.json") {
        for it in &items {
            for t in &it.repo_tags {
                let _ = docker::validate_repo_tag(t);
                let _ = refname::familiar(t);
            }
            it.layer_sources.values().for_each(touch_descriptor);
        }
    }
    if let Ok(doc) = IndexDoc::parse(data.to_vec(), Path::new("index.json")) {
        for e in doc.entries() {
            let _ = (e.location(), e.display_name());
        }
        let _ = doc.policy();
        let _ = doc.annotations();
        doc.iter().for_each(|(_, d)| touch_descriptor(d));
        // Writing back and reading again gives the same refs and the same bytes.
        let bytes = doc.to_bytes();
        let again = IndexDoc::parse(bytes.clone(), Path::new("index.json")).unwrap_or_else(|e| {
            panic!(
                "IndexDoc::to_bytes output does not parse: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(again.ref_digests(), doc.ref_digests());
        assert_eq!(again.len(), doc.len());
        assert!(again.to_bytes() == bytes, "to_bytes is not stable");
        for i in 0..doc.len() {
            assert_eq!(again.descriptor(i), doc.descriptor(i));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// names

/// Digests, ref names, docker names, RepoTags, version tags, platforms and policies.
pub fn names(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();

    match Digest::parse(s) {
        Ok(d) => {
            let enc = d.encoded();
            assert_eq!(enc.len(), d.algorithm().hex_len(), "{s:?}");
            assert!(
                enc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "accepted non-lowercase-hex digest {s:?}"
            );
            assert_eq!(d.to_string(), s, "Display does not round-trip");
            assert_eq!(Digest::parse(&d.to_string()).as_ref(), Ok(&d));
            assert_eq!(s.parse::<Digest>().as_ref(), Ok(&d));
            let _ = d.short();
            let _ = format!("{d:?}");
        }
        Err(e) => {
            let _ = e.to_string();
            // The canonical forms are always accepted.
            if let Some((alg, hex)) = s.split_once(':') {
                let lower_hex = hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                assert!(
                    !(lower_hex
                        && ((alg == "sha256" && hex.len() == 64)
                            || (alg == "sha512" && hex.len() == 128))),
                    "refused a well-formed digest {s:?}: {e}"
                );
            }
        }
    }

    if refname::validate(s).is_ok() {
        assert!(!s.is_empty() && s.len() <= refname::MAX_REF_LEN);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:@+/".contains(&b)),
            "accepted ref name with a bad character: {s:?}"
        );
    }

    let (repo, tag) = refname::split_repo_tag(s);
    let rebuilt = match tag {
        Some(t) if t.starts_with('@') => format!("{repo}{t}"),
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    assert_eq!(rebuilt, s, "split_repo_tag lost characters");
    let f = refname::familiar(s);
    assert!(s.ends_with(f));
    let normalized = refname::docker_normalize(s);
    let _ = tags::tag_of(s);
    let _ = tags::repo_of(s);
    let _ = tags::is_sha_tag(s);

    if docker::validate_repo_tag(s).is_ok() {
        assert!(!s.contains('@'));
        assert!(tag.is_some());
        // A RepoTag Docker accepts normalizes to one it still accepts (when that fits), and
        // normalizing is idempotent.
        if repo.len() <= 200 {
            assert!(
                docker::validate_repo_tag(&normalized).is_ok(),
                "{s:?} is a valid RepoTag, its normal form {normalized:?} is not"
            );
        }
        assert_eq!(
            refname::docker_normalize(&normalized),
            normalized,
            "docker_normalize is not idempotent on {s:?}"
        );
    }

    if let Some(v) = VersionTag::parse(s) {
        let _ = v.is_prerelease();
        assert_eq!(v.precedence(&v), std::cmp::Ordering::Equal);
        for a in v.aliases() {
            assert!(v.in_group(&a), "{s:?} is not in its own group {a:?}");
        }
    }
    let _ = VersionTag::parse(tags::tag_of(s));

    if let Ok(p) = s.parse::<Platform>() {
        assert_eq!(p.to_string(), s, "Platform does not round-trip");
        assert!(p.matches(&p) && p.matches_os_arch(&p));
    }

    // A policy: the whole input, or the part before the first newline with the rest as a name.
    let (pol, name) = s.split_once('\n').unwrap_or((s, s));
    for input in [s, pol] {
        if let Ok(p) = Policy::from_annotation(Some(input)) {
            let _ = p.protects(name);
            let _ = p.protects(s);
            let back = Policy::from_annotation(p.to_annotation().as_deref())
                .unwrap_or_else(|e| panic!("policy {p:?} does not round-trip: {e}"));
            assert_eq!(back, p);
        }
    }
    let _ = tags::check_pattern(s);
}

// ---------------------------------------------------------------------------------------------
// index_edit

/// Seeds for `index_edit`; the first input byte picks one (or, past the last, an `index.json`
/// carried by the input itself: two bytes of length, little-endian, then the document).
const SEEDS: [&[u8]; 6] = [
    include_bytes!("../../../testdata/layouts/unknown-fields/index.json"),
    include_bytes!("../../../testdata/layouts/docker-v2s2/index.json"),
    include_bytes!("../../../testdata/layouts/corrupt/bad-descriptors/index.json"),
    include_bytes!("../../../testdata/layouts/artifact/index.json"),
    br#"{"schemaVersion":2,"manifests":null,"annotations":{"dev.ocitool.protect":"{\"semver\":true}","k":"v"},"x-top":[1,{"b":null}]}"#,
    br#"{"zzz":1,"aaa":{"n":[1.5e3,-0]},"manifests":[{"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"annotations":{"org.opencontainers.image.ref.name":"dup"}},{"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":2,"annotations":{"org.opencontainers.image.ref.name":"dup"}},{"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1}]}"#,
];

const DIGESTS: [&str; 10] = [
    "sha256:1111111111111111111111111111111111111111111111111111111111111111",
    "sha256:2222222222222222222222222222222222222222222222222222222222222222",
    "sha256:3d3d1d6ae926c347b2fc0e01c21f12d7898ec2460d16823064eb4b7e03c7ca29",
    "sha256:7b06472b68bc5ce875746594537ba3d67dffe7d222000f232eda0a35f303917a",
    "sha256:baeb5eab6cbdea90ee43019286a9025036fa842f8f66cb9f16f4f64a4761c1db",
    "sha256:786d57a67e82172d339760ea3a397182b74b654ed37e530de852d0d65868e229",
    "sha512:33333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333",
    // Not valid digests: listed in index.json all the same (a lenient read keeps them).
    "sha256:../../../../etc/passwd",
    "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
    "",
];

const NAMES: [&str; 14] = [
    "app:1.0", "latest", "canary:1", "evil", "future", "negative", "dup", "a", "b:1", "", "x/y:z",
    "1.2.3", "sparse:1", "app:1.0 ",
];

const PATTERNS: [&str; 8] = [
    "*:1.*",
    "app:*",
    "[",
    "**/x",
    "release-?",
    "[a-",
    "v[0-9]*",
    "",
];

/// Reads the operations out of the input.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }

    /// A name from the pool, or (from 0xf0 on) up to 32 bytes of the input.
    fn name(&mut self) -> Option<String> {
        let b = self.byte()?;
        if b < 0xf0 {
            return Some(NAMES[b as usize % NAMES.len()].to_string());
        }
        let n = self.byte()? as usize % 33;
        Some(String::from_utf8_lossy(self.take(n)).into_owned())
    }

    fn digest(&mut self) -> Option<&'static str> {
        Some(DIGESTS[self.byte()? as usize % DIGESTS.len()])
    }

    /// A descriptor as JSON, and whether `Descriptor` accepts it (with `named`: how
    /// `set_ref` treats it, replacing a non-object `annotations`).
    fn descriptor(&mut self) -> Option<(Value, bool, bool)> {
        let flags = self.byte()?;
        let digest = self.digest()?;
        let size = self.byte()?;
        let name = if flags & 2 != 0 {
            self.name()?
        } else {
            String::new()
        };
        let mut d = Map::new();
        d.insert(
            "mediaType".into(),
            Value::from(if flags & 0x80 != 0 {
                media::DOCKER_MANIFEST
            } else {
                media::OCI_MANIFEST
            }),
        );
        d.insert("digest".into(), Value::from(digest));
        let mut valid = true;
        if flags & 0x10 != 0 {
            d.insert("size".into(), Value::from("x"));
            valid = false;
        } else {
            d.insert("size".into(), Value::from(size));
        }
        let valid_for_set_ref = valid;
        if flags & 8 != 0 {
            d.insert("annotations".into(), Value::from(7));
            valid = false;
        } else {
            let mut a = Map::new();
            if flags & 1 != 0 {
                a.insert(
                    refname::CONTAINERD_IMAGE_NAME.into(),
                    Value::from("docker.io/library/x:1"),
                );
            }
            if flags & 2 != 0 {
                a.insert(refname::REF_NAME.into(), Value::from(name));
            }
            if flags & 4 != 0 {
                a.insert("com.example.note".into(), Value::from("kept"));
            }
            if !a.is_empty() || flags & 0x40 != 0 {
                d.insert("annotations".into(), Value::Object(a));
            }
        }
        if flags & 0x20 != 0 {
            d.insert("x-vendor".into(), json!({"a": [1, null], "b": 1.5}));
        }
        Some((Value::Object(d), valid, valid_for_set_ref))
    }

    fn policy(&mut self) -> Option<Policy> {
        let flags = self.byte()?;
        let mut patterns = Vec::new();
        for _ in 0..(flags >> 2) % 3 {
            let b = self.byte()?;
            patterns.push(if b < 0xf0 {
                PATTERNS[b as usize % PATTERNS.len()].to_string()
            } else {
                let n = self.byte()? as usize % 17;
                String::from_utf8_lossy(self.take(n)).into_owned()
            });
        }
        Some(Policy {
            semver: flags & 1 != 0,
            sha: flags & 2 != 0,
            patterns,
        })
    }
}

type Model = Vec<(Option<String>, String)>;

fn entries_of(doc: &IndexDoc) -> Model {
    doc.iter()
        .map(|(_, d)| (d.ref_name().map(str::to_string), d.digest.clone()))
        .collect()
}

fn ref_map(model: &Model) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (n, d) in model {
        if let Some(n) = n {
            m.entry(n.clone()).or_insert_with(|| d.clone());
        }
    }
    m
}

/// The model of `set_ref` / a named `put_verbatim`: the first entry of that name is replaced,
/// the others removed, or the entry appended.
fn model_name(model: &mut Model, name: &str, digest: &str) {
    let positions: Vec<usize> = (0..model.len())
        .filter(|&i| model[i].0.as_deref() == Some(name))
        .collect();
    match positions.first() {
        Some(&first) => {
            model[first] = (Some(name.to_string()), digest.to_string());
            for &i in positions[1..].iter().rev() {
                model.remove(i);
            }
        }
        None => model.push((Some(name.to_string()), digest.to_string())),
    }
}

fn top_members(bytes: &[u8]) -> BTreeMap<String, Box<RawValue>> {
    serde_json::from_slice(bytes).expect("index.json bytes are a JSON object")
}

/// Annotation keys of the index, if `annotations` is an object.
fn annotation_keys(top: &BTreeMap<String, Box<RawValue>>) -> Option<BTreeSet<String>> {
    let a = top.get("annotations")?;
    let m: BTreeMap<String, Box<RawValue>> = serde_json::from_str(a.get()).ok()?;
    Some(m.into_keys().collect())
}

/// A sequence of edits on an `IndexDoc`, each checked against a model.
pub fn index_edit(data: &[u8]) {
    let mut input = Input { data };
    let Some(sel) = input.byte() else {
        return;
    };
    let seed: Vec<u8> = match SEEDS.get(sel as usize % (SEEDS.len() + 1)) {
        Some(s) => s.to_vec(),
        None => {
            let lo = input.byte().unwrap_or(0) as usize;
            let hi = input.byte().unwrap_or(0) as usize;
            input.take(lo | (hi << 8)).to_vec()
        }
    };
    // The parse (entries read by the borrowing `DescriptorKeys`) accepts and refuses exactly
    // what the whole parse (each entry a `Descriptor`) does, and reads the same names and
    // digests.
    let whole = IndexDoc::parse_whole(seed.clone(), Path::new("index.json"));
    let lazy = IndexDoc::parse(seed.clone(), Path::new("index.json"));
    match (&whole, &lazy) {
        (Ok(f), Ok(l)) => assert!(
            f.keys().eq(l.keys()),
            "parse reads other names or digests than parse_whole"
        ),
        (Err(f), Err(l)) => assert!(
            f.to_string() == l.to_string(),
            "parse and parse_whole refuse with different errors: {f} / {l}"
        ),
        (f, l) => panic!("parse_whole ok={} but parse ok={}", f.is_ok(), l.is_ok()),
    }
    // Edits run on the document as commands read it (lazily parsed).
    let Ok(mut doc) = lazy else {
        return;
    };
    let top_before = top_members(&seed);
    let unknown: BTreeMap<String, String> = top_before
        .iter()
        .filter(|(k, _)| *k != "manifests" && *k != "annotations")
        .map(|(k, v)| (k.clone(), v.get().to_string()))
        .collect();
    let mut keys_before = annotation_keys(&top_before);
    if let Some(k) = keys_before.as_mut() {
        k.remove(POLICY_ANNOTATION);
    }
    let mut model = entries_of(&doc);
    let mut log: Vec<String> = Vec::new();

    for step in 0..64 {
        let Some(op) = input.byte() else {
            break;
        };
        let mut must_be_single: Option<String> = None;
        let mut gone_name: Option<String> = None;
        let mut gone_digest: Option<String> = None;
        match op % 8 {
            0 => {
                let Some(name) = input.name() else { break };
                let Some((desc, _, valid)) = input.descriptor() else {
                    break;
                };
                log.push(format!("set_ref({name:?}, {desc})"));
                let before = ref_map(&model).get(&name).cloned();
                let previous = doc.set_ref(&name, &desc);
                assert_eq!(
                    previous, before,
                    "set_ref returned the wrong previous digest"
                );
                if valid {
                    model_name(&mut model, &name, desc["digest"].as_str().expect("set"));
                    must_be_single = Some(name);
                }
            }
            1 => {
                let Some(name) = input.name() else { break };
                log.push(format!("remove_ref({name:?})"));
                let n = doc.remove_ref(&name);
                let before = model.len();
                model.retain(|(m, _)| m.as_deref() != Some(name.as_str()));
                assert_eq!(n, before - model.len(), "remove_ref count");
                gone_name = Some(name);
            }
            2 => {
                let Some(d) = input.digest() else { break };
                let Ok(digest) = Digest::parse(d) else {
                    continue;
                };
                log.push(format!("remove_digest({digest})"));
                let n = doc.remove_digest(&digest);
                let before = model.len();
                model.retain(|(_, x)| *x != d);
                assert_eq!(n, before - model.len(), "remove_digest count");
                gone_digest = Some(d.to_string());
            }
            3 => {
                let Some((desc, valid, _)) = input.descriptor() else {
                    break;
                };
                log.push(format!("ensure_listed({desc})"));
                let d = desc["digest"].as_str().expect("set").to_string();
                let listed = model.iter().any(|(_, x)| *x == d);
                let added = doc.ensure_listed(&desc);
                assert_eq!(added, !listed && valid, "ensure_listed result");
                if added {
                    model.push((None, d));
                }
            }
            4 => {
                let Some((desc, valid, _)) = input.descriptor() else {
                    break;
                };
                log.push(format!("put_verbatim({desc})"));
                doc.put_verbatim(&desc);
                let d = desc["digest"].as_str().expect("set");
                let name = desc
                    .get("annotations")
                    .and_then(|a| a.get(refname::REF_NAME))
                    .and_then(Value::as_str);
                if valid {
                    match name {
                        Some(n) => {
                            model_name(&mut model, n, d);
                            must_be_single = Some(n.to_string());
                        }
                        None => {
                            if !model.iter().any(|(n, x)| n.is_none() && x == d) {
                                model.push((None, d.to_string()));
                            }
                        }
                    }
                }
            }
            5 => {
                let Some(p) = input.policy() else { break };
                log.push(format!("set_policy({p:?})"));
                if let Err(e) = doc.set_policy(&p) {
                    // Only an index whose annotations are not an object refuses a policy.
                    assert!(e.to_string().contains("not an object"), "set_policy: {e}");
                    break;
                }
                let valid = p.patterns.iter().all(|x| tags::check_pattern(x).is_ok());
                match doc.policy() {
                    Ok(got) => assert!(valid && got == p, "policy read back {got:?}, set {p:?}"),
                    Err(e) => assert!(!valid, "policy {p:?} does not read back: {e}"),
                }
                // A bad pattern would make every later commit fail: clear it as a user would.
                if !valid {
                    doc.set_policy(&Policy::default())
                        .expect("annotations is an object");
                }
            }
            6 => {
                // `untag`: entries by position, in any order, repeats and positions past the
                // end included.
                let Some(k) = input.byte() else { break };
                let mut positions = Vec::new();
                for _ in 0..k % 4 {
                    let Some(b) = input.byte() else { break };
                    positions.push(b as usize % (model.len() + 2));
                }
                log.push(format!("remove_positions({positions:?})"));
                let n = doc.remove_positions(&positions);
                let before = model.len();
                let mut i = 0;
                model.retain(|_| {
                    i += 1;
                    !positions.contains(&(i - 1))
                });
                assert_eq!(n, before - model.len(), "remove_positions count");
            }
            _ => {
                log.push("reparse".into());
                doc = IndexDoc::parse(doc.to_bytes(), Path::new("index.json"))
                    .expect("to_bytes output parses");
            }
        }

        let ctx = || format!("after:\n  {}", log.join("\n  "));
        assert_eq!(
            entries_of(&doc),
            model,
            "entries differ from the model {}",
            ctx()
        );
        assert_eq!(doc.ref_digests(), ref_map(&model), "ref_digests {}", ctx());
        check_lookups(&doc, &model, &ctx);
        if let Some(n) = must_be_single {
            let count = doc.iter().filter(|(_, d)| d.ref_name() == Some(&n)).count();
            assert_eq!(count, 1, "{n:?} is on {count} entries {}", ctx());
        }
        if let Some(n) = gone_name {
            assert!(
                doc.iter().all(|(_, d)| d.ref_name() != Some(&n)),
                "{n:?} survived remove_ref {}",
                ctx()
            );
        }
        if let Some(g) = gone_digest {
            assert!(
                doc.iter().all(|(_, d)| d.digest != g),
                "{g} survived remove_digest {}",
                ctx()
            );
        }
        // Writing out and reading back is the expensive check: after each of the first
        // steps, then every eighth, and at the end.
        if step < 8 || step % 8 == 7 {
            check_bytes(&doc, &model, &unknown, keys_before.as_ref(), &ctx);
        }
    }
    let ctx = || format!("after:\n  {}", log.join("\n  "));
    check_bytes(&doc, &model, &unknown, keys_before.as_ref(), &ctx);
}

/// The readers that look entries up (by name, by position, duplicates) agree with the model:
/// an edit keeps the lookup of names and digests in step, and positions count live entries.
fn check_lookups(doc: &IndexDoc, model: &Model, ctx: &dyn Fn() -> String) {
    assert_eq!(doc.len(), model.len(), "len {}", ctx());
    let keys: Vec<_> = doc.keys().collect();
    for (p, k) in keys.iter().enumerate() {
        assert_eq!(k.position, p, "positions are not 0..len {}", ctx());
        assert_eq!(doc.key(p).as_ref(), Some(k), "key({p}) {}", ctx());
    }
    assert!(doc.key(model.len()).is_none(), "key past the end {}", ctx());
    let views: Vec<(usize, String)> = doc
        .views()
        .map(|(p, v)| (p, v.digest.0.into_owned()))
        .collect();
    let want: Vec<(usize, String)> = model
        .iter()
        .enumerate()
        .map(|(p, (_, d))| (p, d.clone()))
        .collect();
    assert_eq!(views, want, "views {}", ctx());
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (p, (n, _)) in model.iter().enumerate() {
        if let Some(n) = n {
            by_name.entry(n.as_str()).or_default().push(p);
        }
    }
    for n in NAMES.iter().copied().chain(by_name.keys().copied()) {
        let want = by_name.get(n).cloned().unwrap_or_default();
        assert_eq!(
            doc.positions_named(n),
            want,
            "positions_named({n:?}) {}",
            ctx()
        );
    }
    let dups: Vec<(String, Vec<usize>)> = doc
        .duplicate_ref_names()
        .into_iter()
        .map(|d| (d.name.to_string(), d.entries.iter().map(|e| e.0).collect()))
        .collect();
    let want: Vec<(String, Vec<usize>)> = by_name
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    assert_eq!(dups, want, "duplicate_ref_names {}", ctx());
}

/// `to_bytes` re-parses to the same entries and bytes, and keeps the members no edit touches.
fn check_bytes(
    doc: &IndexDoc,
    model: &Model,
    unknown: &BTreeMap<String, String>,
    keys_before: Option<&BTreeSet<String>>,
    ctx: &dyn Fn() -> String,
) {
    let bytes = doc.to_bytes();
    let again = IndexDoc::parse(bytes.clone(), Path::new("index.json")).unwrap_or_else(|e| {
        panic!(
            "to_bytes does not parse: {e}\n{}\n{}",
            String::from_utf8_lossy(&bytes),
            ctx()
        )
    });
    assert_eq!(again.ref_digests(), doc.ref_digests(), "{}", ctx());
    assert_eq!(&entries_of(&again), model, "{}", ctx());
    assert!(
        again.to_bytes() == bytes,
        "to_bytes is not stable {}",
        ctx()
    );
    let top = top_members(&bytes);
    for (k, v) in unknown {
        assert_eq!(
            top.get(k).map(|r| r.get()),
            Some(v.as_str()),
            "top-level member {k:?} was lost or changed {}",
            ctx()
        );
    }
    if let Some(keys) = keys_before {
        let now = annotation_keys(&top).unwrap_or_default();
        let lost: Vec<_> = keys.difference(&now).collect();
        assert!(
            lost.is_empty(),
            "index annotations {lost:?} were lost {}",
            ctx()
        );
    }
}
