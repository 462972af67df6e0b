//! The fuzz harness: one function per fuzz target, each taking the raw input.
//!
//! Every function must return normally on any input: errors from the libraries are expected,
//! panics are bugs (in the library, or a broken invariant asserted here). The same file is
//! compiled into `crates/ocitool-archive/tests/fuzz_regressions.rs` (by `#[path]`), which
//! replays every saved crash under `testdata/fuzz-regressions/<target>/`, so this file uses
//! only dependencies that crate also has: the ocitool libraries, `serde_json` and `tempfile`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ocitool_archive::import::{self, ImportOptions, Mode};
use ocitool_archive::ingest::Limits;
use ocitool_digest::Digest;
use ocitool_layout::{IndexDoc, Layout, NoProgress, Options, WaitMode};
use ocitool_spec::docker::{self, ManifestItem};
use ocitool_spec::refname;
use ocitool_spec::tags::{self, POLICY_ANNOTATION, Policy, VersionTag};
use ocitool_spec::views::{self, ConfigView, Descriptor, IndexView, ManifestView};
use ocitool_spec::{Document, Platform, media};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// The names of the fuzz targets, as `cargo fuzz` and `testdata/fuzz-regressions/` know them.
pub const TARGETS: [&str; 5] = [
    "archive_import",
    "oci_archive_unpack",
    "views",
    "names",
    "index_edit",
];

/// Runs the harness of `target` on `data`; `false` for an unknown target.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "archive_import" => archive_import(data),
        "oci_archive_unpack" => oci_archive_unpack(data),
        "views" => views(data),
        "names" => names(data),
        "index_edit" => index_edit(data),
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

fn archive(data: &[u8], mode: Mode) {
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
    let Ok(mut doc) = IndexDoc::parse(seed.clone(), Path::new("index.json")) else {
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
        match op % 7 {
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
                    doc.set_policy(&Policy::default()).expect("annotations is an object");
                }
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
