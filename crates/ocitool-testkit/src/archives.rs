//! `docker save`-style archives in every dialect a user meets, as in-memory tar streams, plus
//! hostile variants for the importer's defences.
//!
//! Each generator follows the writer it is named after (file names, JSON shapes and member order,
//! entry order, tar modes, what is deduplicated and how); the sources are named on each function.
//! JSON is written the way Go's `encoding/json` writes the structs those tools use: struct
//! fields in declaration order, map keys sorted, compact, `<`/`>`/`&` escaped, and a trailing
//! newline only where the tool uses `json.Encoder`. Everything is deterministic: images and
//! tags are taken in the order given (where the tool iterates a Go map, that order is random in
//! the real tool), every entry has the same owner and mtime ([`crate::tarball::MTIME`]).
//!
//! Tar headers are GNU headers with the same fixed fields as [`crate::tarball::append`], but
//! written here byte for byte, because `tar::Header::set_path` normalises names: it drops a
//! leading `./` and the trailing `/` of directories and refuses `..` and absolute paths, all of
//! which these archives need (`gnu_retar`, Docker's `blobs/` directory records, [`malicious`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::OnceLock;

use ocitool_compress::{Compression, DecodeOptions, EncodeOptions, Encoder};
use ocitool_digest::Digest;
use ocitool_spec::{media, refname};
use serde_json::{Map, Value};

use crate::image::{Blob, Image};
use crate::tarball::MTIME;

/// An image with the names it is saved under, as the user typed them (`app:1.0`,
/// `team/app`, `ghcr.io/o/app:2`); an empty list saves it untagged (by ID).
pub type Saved<'a> = (&'a Image, &'a [&'a str]);

// ---------------------------------------------------------------------------------------------
// Tar entries
// ---------------------------------------------------------------------------------------------

/// What an archive entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: String,
    kind: Kind,
    mode: u32,
}

impl Entry {
    fn file(name: impl Into<String>, data: impl Into<Vec<u8>>) -> Entry {
        Entry::file_mode(name, data, 0o644)
    }
    fn file_mode(name: impl Into<String>, data: impl Into<Vec<u8>>, mode: u32) -> Entry {
        Entry {
            name: name.into(),
            kind: Kind::File(data.into()),
            mode,
        }
    }
    fn dir(name: impl Into<String>) -> Entry {
        Entry {
            name: name.into(),
            kind: Kind::Dir,
            mode: 0o755,
        }
    }
    fn symlink(name: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry {
            name: name.into(),
            kind: Kind::Symlink(target.into()),
            mode: 0o777,
        }
    }
    fn hardlink(name: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry {
            name: name.into(),
            kind: Kind::Hardlink(target.into()),
            mode: 0o644,
        }
    }
    fn data(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::File(d) => Some(d),
            _ => None,
        }
    }
}

fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % 512;
    if rem != 0 {
        out.resize(out.len() + 512 - rem, 0);
    }
}

/// A GNU long-name (`L`) or long-link (`K`) record, as tar-rs and GNU tar write them.
pub fn push_long(out: &mut Vec<u8>, flag: u8, value: &[u8]) {
    let mut h = tar::Header::new_gnu();
    let name = b"././@LongLink";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(value.len() as u64 + 1);
    h.set_entry_type(tar::EntryType::new(flag));
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(value);
    out.push(0);
    pad(out);
}

/// The header of `e`, with `size` as declared (it may lie, see [`malicious`]).
fn header(e: &Entry, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(e.mode);
    h.set_size(size);
    let (ty, link) = match &e.kind {
        Kind::File(_) => (tar::EntryType::Regular, None),
        Kind::Dir => (tar::EntryType::Directory, None),
        Kind::Symlink(t) => (tar::EntryType::Symlink, Some(t.as_bytes())),
        Kind::Hardlink(t) => (tar::EntryType::Link, Some(t.as_bytes())),
    };
    h.set_entry_type(ty);
    let old = h.as_old_mut();
    let n = e.name.as_bytes();
    old.name[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
    if let Some(l) = link {
        old.linkname[..l.len().min(100)].copy_from_slice(&l[..l.len().min(100)]);
    }
    h.set_cksum();
    h
}

/// Appends one entry (and its long-name records) without the end-of-archive blocks.
fn push_entry(out: &mut Vec<u8>, e: &Entry) {
    if let Kind::Symlink(t) | Kind::Hardlink(t) = &e.kind
        && t.len() > 100
    {
        push_long(out, b'K', t.as_bytes());
    }
    if e.name.len() > 100 {
        push_long(out, b'L', e.name.as_bytes());
    }
    let data = e.data().unwrap_or(&[]);
    out.extend_from_slice(header(e, data.len() as u64).as_bytes());
    out.extend_from_slice(data);
    pad(out);
}

/// Entries without the two zero blocks that end an archive.
fn serialize_open(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        push_entry(&mut out, e);
    }
    out
}

fn serialize(entries: &[Entry]) -> Vec<u8> {
    let mut out = serialize_open(entries);
    out.resize(out.len() + 1024, 0);
    out
}

/// The path components of an entry name (`./`, leading `/` and a trailing `/` ignored).
fn components(name: &str) -> Vec<&str> {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// Orders entries as a recursive directory walk with sorted names does (Go's
/// `filepath.WalkDir`, used by moby's `archive.Tar`; GNU `tar --sort=name`): a directory
/// before its contents, siblings by byte order. Adds a record for every parent directory that
/// has none when `dirs` is set.
fn walk_order(mut entries: Vec<Entry>, dirs: bool) -> Vec<Entry> {
    if dirs {
        let have: BTreeSet<Vec<String>> = entries
            .iter()
            .map(|e| components(&e.name).iter().map(|s| s.to_string()).collect())
            .collect();
        let mut add = BTreeSet::new();
        for e in &entries {
            let c = components(&e.name);
            for i in 1..c.len() {
                let p: Vec<String> = c[..i].iter().map(|s| s.to_string()).collect();
                if !have.contains(&p) {
                    add.insert(p);
                }
            }
        }
        for p in add {
            entries.push(Entry::dir(format!("{}/", p.join("/"))));
        }
    }
    entries.sort_by(|a, b| components(&a.name).cmp(&components(&b.name)));
    entries
}

// ---------------------------------------------------------------------------------------------
// JSON the way Go's encoding/json writes it
// ---------------------------------------------------------------------------------------------

/// `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 in strings; serde_json does not.
/// These characters only occur inside strings in JSON text, so a textual replace is exact.
fn go_escape(s: String) -> String {
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A JSON string.
fn js(s: &str) -> String {
    go_escape(serde_json::to_string(s).expect("a string serializes"))
}

/// A JSON value; objects get sorted keys, like Go maps.
fn jv(v: &Value) -> String {
    go_escape(serde_json::to_string(v).expect("a value serializes"))
}

/// An object with members in the given order (a Go struct).
fn obj<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let body: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}:{v}", js(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// A Go map: members sorted by key.
fn map<K: AsRef<str> + Ord>(fields: impl IntoIterator<Item = (K, String)>) -> String {
    let sorted: BTreeMap<K, String> = fields.into_iter().collect();
    obj(sorted.iter().map(|(k, v)| (k.as_ref(), v.clone())))
}

/// A Go slice; `None` is a nil slice (`null`).
fn arr(items: Option<Vec<String>>) -> String {
    match items {
        None => "null".to_string(),
        Some(v) => format!("[{}]", v.join(",")),
    }
}

/// Removes insignificant whitespace, as Go does when it re-encodes a `json.RawMessage`.
fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let (mut in_str, mut esc) = (false, false);
    for ch in raw.chars() {
        if in_str {
            out.push(ch);
            if esc {
                esc = false;
            } else if ch == '\\' {
                esc = true;
            } else if ch == '"' {
                in_str = false;
            }
        } else if !ch.is_ascii_whitespace() {
            if ch == '"' {
                in_str = true;
            }
            out.push(ch);
        }
    }
    go_escape(out)
}

// ---------------------------------------------------------------------------------------------
// Names, layers, IDs
// ---------------------------------------------------------------------------------------------

/// `docker.io/library/app:1.0` for `app:1.0` (`reference.ParseNormalizedNamed` + `TagNameOnly`).
fn full_name(tag: &str) -> String {
    refname::docker_normalize(tag)
}

/// `(repository, tag)` of a name.
fn repo_and_tag(name: &str) -> (String, String) {
    let (r, t) = refname::split_repo_tag(name);
    (r.to_string(), t.unwrap_or("latest").to_string())
}

/// The uncompressed tar of a layer blob (gzip, zstd or plain, detected by magic bytes).
fn uncompressed(b: &Blob) -> Vec<u8> {
    let (_, mut r) = ocitool_compress::auto_decoder(&b.bytes[..], DecodeOptions::default())
        .expect("decoder over memory");
    let mut out = Vec::new();
    r.read_to_end(&mut out).expect("testkit layers decompress");
    out
}

/// ChainIDs: `ChainID(L0) = DiffID(L0)`, `ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))`
/// over the `sha256:`-prefixed strings (image-spec `identity/chainid.go`).
fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(p) => Digest::sha256(format!("{p} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn config_value(img: &Image) -> Value {
    serde_json::from_slice(&img.config.bytes).unwrap_or(Value::Null)
}

/// Which moby release's `container.Config` struct shapes the legacy v1 JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Moby {
    /// v24: `MacAddress` (omitempty) present, `OnBuild` always written, `Created` a value.
    V24,
    /// v25 and later (checked at v29): no `MacAddress`, `OnBuild` omitempty, `Created` a pointer.
    Current,
}

/// `container.Config` as Go marshals it after unmarshalling `v` (an object or nothing).
fn container_config(v: Option<&Value>, moby: Moby) -> String {
    #[derive(Clone, Copy)]
    enum Zero {
        Str,
        False,
        Null,
        Omit,
    }
    use Zero::*;
    let mut fields: Vec<(&str, Zero)> = vec![
        ("Hostname", Str),
        ("Domainname", Str),
        ("User", Str),
        ("AttachStdin", False),
        ("AttachStdout", False),
        ("AttachStderr", False),
        ("ExposedPorts", Omit),
        ("Tty", False),
        ("OpenStdin", False),
        ("StdinOnce", False),
        ("Env", Null),
        ("Cmd", Null),
        ("Healthcheck", Omit),
        ("ArgsEscaped", Omit),
        ("Image", Str),
        ("Volumes", Null),
        ("WorkingDir", Str),
        ("Entrypoint", Null),
        ("NetworkDisabled", Omit),
    ];
    if moby == Moby::V24 {
        fields.push(("MacAddress", Omit));
        fields.push(("OnBuild", Null));
    } else {
        fields.push(("OnBuild", Omit));
    }
    fields.extend([
        ("Labels", Null),
        ("StopSignal", Omit),
        ("StopTimeout", Omit),
        ("Shell", Omit),
    ]);
    let empty = Map::new();
    let o = v.and_then(Value::as_object).unwrap_or(&empty);
    let is_empty = |x: &Value| match x {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Number(_) => false,
    };
    let mut out = Vec::new();
    for (k, z) in fields {
        let got = o.get(k).filter(|x| !x.is_null());
        match (got, z) {
            (Some(x), Omit) if !is_empty(x) => out.push((k, jv(x))),
            (_, Omit) => {}
            (Some(x), _) => out.push((k, jv(x))),
            (None, Str) => out.push((k, "\"\"".to_string())),
            (None, False) => out.push((k, "false".to_string())),
            (None, Null) => out.push((k, "null".to_string())),
        }
    }
    obj(out)
}

/// The members of moby's `image.V1Image` (after `id` and `parent`) in struct order.
/// `top`: the image's own V1 fields; otherwise an intermediate layer (`created` = epoch).
fn v1_fields(c: &Value, top: bool, moby: Moby) -> Vec<(&'static str, String)> {
    if !top {
        return vec![
            ("created", js("1970-01-01T00:00:00Z")),
            ("container_config", container_config(None, moby)),
        ];
    }
    let s = |k: &str| {
        c.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(js)
    };
    let mut f = Vec::new();
    if let Some(v) = s("comment") {
        f.push(("comment", v));
    }
    let created = match c.get("created") {
        Some(v @ Value::String(_)) => jv(v),
        _ if moby == Moby::V24 => js("0001-01-01T00:00:00Z"),
        _ => "null".to_string(),
    };
    f.push(("created", created));
    if let Some(v) = s("container") {
        f.push(("container", v));
    }
    f.push((
        "container_config",
        container_config(c.get("container_config"), moby),
    ));
    if let Some(v) = s("docker_version") {
        f.push(("docker_version", v));
    }
    if let Some(v) = s("author") {
        f.push(("author", v));
    }
    if let Some(cfg @ Value::Object(_)) = c.get("config") {
        f.push(("config", container_config(Some(cfg), moby)));
    }
    for k in ["architecture", "variant", "os"] {
        if let Some(v) = s(k) {
            f.push((k, v));
        }
    }
    if let Some(n) = c.get("Size").and_then(Value::as_i64).filter(|n| *n != 0) {
        f.push(("Size", n.to_string()));
    }
    f
}

/// Docker's legacy layer IDs and `json` documents for an image, base first
/// (moby `image/v1/imagev1.go` `CreateID`, `image/tarexport/save.go` `saveImage`): the V1Image
/// JSON without `id`, re-encoded as a sorted map with `layer_id` = the ChainID and `parent` =
/// `sha256:<parent v1 id>`, hashed; `os` is set only after hashing (intermediate layers).
fn docker_v1(img: &Image, moby: Moby) -> Vec<(String, Vec<u8>)> {
    let c = config_value(img);
    let os = c
        .get("os")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(js);
    let chains = chain_ids(&img.diff_ids);
    let mut parent: Option<String> = None;
    let mut out = Vec::new();
    for (i, chain) in chains.iter().enumerate() {
        let top = i + 1 == chains.len();
        let fields = v1_fields(&c, top, moby);
        let mut hashed: Vec<(&str, String)> = fields.clone();
        hashed.push(("layer_id", js(&chain.to_string())));
        if let Some(p) = &parent {
            hashed.push(("parent", js(&format!("sha256:{p}"))));
        }
        let id = Digest::sha256(map(hashed).as_bytes()).encoded().to_string();
        let mut doc: Vec<(&str, String)> = vec![("id", js(&id))];
        if let Some(p) = &parent {
            doc.push(("parent", js(p)));
        }
        doc.extend(fields);
        if !top && let Some(os) = &os {
            doc.push(("os", os.clone()));
        }
        out.push((id.clone(), obj(doc).into_bytes()));
        parent = Some(id);
    }
    out
}

/// containers/image's legacy layer IDs and `json` documents (`docker/internal/tarfile/writer.go`
/// `writeLegacyMetadataLocked`): a map of `parent` (previous id, bare hex) and, for the top
/// layer, seven members copied raw from the config (`null` when absent), plus `layer_id` =
/// ChainID, hashed; the document then drops `layer_id` and adds `id`.
fn cimage_legacy(img: &Image) -> Vec<(String, Vec<u8>)> {
    let raw: BTreeMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_slice(&img.config.bytes).unwrap_or_default();
    let chains = chain_ids(&img.diff_ids);
    let mut last: Option<String> = None;
    let mut out = Vec::new();
    for (i, chain) in chains.iter().enumerate() {
        let mut m: BTreeMap<&str, String> = BTreeMap::new();
        if let Some(p) = &last {
            m.insert("parent", js(p));
        }
        if i + 1 == chains.len() {
            for k in [
                "architecture",
                "config",
                "container",
                "container_config",
                "created",
                "docker_version",
                "os",
            ] {
                let v = raw
                    .get(k)
                    .map(|r| compact(r.get()))
                    .unwrap_or_else(|| "null".to_string());
                m.insert(k, v);
            }
        }
        m.insert("layer_id", js(&chain.to_string()));
        let id = Digest::sha256(map(m.clone()).as_bytes())
            .encoded()
            .to_string();
        m.remove("layer_id");
        m.insert("id", js(&id));
        out.push((id.clone(), map(m).into_bytes()));
        last = Some(id);
    }
    out
}

/// Images merged by config digest (Docker keys them by image ID, containers/image by config
/// digest, go-containerregistry by image): first-seen order, tags appended without repeats.
fn merge_by_config<'a>(images: &[Saved<'a>]) -> Vec<(&'a Image, Vec<&'a str>)> {
    let mut out: Vec<(&'a Image, Vec<&'a str>)> = Vec::new();
    for (img, tags) in images {
        let i = match out
            .iter()
            .position(|(o, _)| o.config.digest == img.config.digest)
        {
            Some(i) => i,
            None => {
                out.push((img, Vec::new()));
                out.len() - 1
            }
        };
        for t in tags.iter() {
            if !out[i].1.contains(t) {
                out[i].1.push(t);
            }
        }
    }
    out
}

/// Tags as Docker records them: normalised and deduplicated on the full name.
fn docker_refs(tags: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let f = full_name(t);
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Docker <= 24
// ---------------------------------------------------------------------------------------------

fn legacy_entries(images: &[Saved<'_>]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut saved_v1: BTreeSet<String> = BTreeSet::new();
    let mut layer_paths: BTreeMap<Digest, String> = BTreeMap::new();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut items = Vec::new();
    for (img, tags) in merge_by_config(images) {
        let v1 = docker_v1(img, Moby::V24);
        for (i, (id, json)) in v1.iter().enumerate() {
            if !saved_v1.insert(id.clone()) {
                continue;
            }
            entries.push(Entry::dir(format!("{id}/")));
            entries.push(Entry::file(format!("{id}/VERSION"), b"1.0".to_vec()));
            entries.push(Entry::file(format!("{id}/json"), json.clone()));
            let path = format!("{id}/layer.tar");
            let diff_id = &img.diff_ids[i];
            match layer_paths.get(diff_id) {
                Some(first) => entries.push(Entry::symlink(path, format!("../{first}"))),
                None => {
                    entries.push(Entry::file(path.clone(), uncompressed(&img.layers[i])));
                    layer_paths.insert(diff_id.clone(), path);
                }
            }
        }
        let top = v1.last().map(|(id, _)| id.clone()).unwrap_or_default();
        let refs = docker_refs(&tags);
        for r in &refs {
            let (repo, tag) = repo_and_tag(refname::familiar(r));
            repos.entry(repo).or_default().insert(tag, top.clone());
        }
        entries.push(Entry::file(
            format!("{}.json", img.config.digest.encoded()),
            img.config.bytes.clone(),
        ));
        let repo_tags =
            (!refs.is_empty()).then(|| refs.iter().map(|r| js(refname::familiar(r))).collect());
        items.push(obj([
            (
                "Config",
                js(&format!("{}.json", img.config.digest.encoded())),
            ),
            ("RepoTags", arr(repo_tags)),
            (
                "Layers",
                arr(Some(
                    v1.iter()
                        .map(|(id, _)| js(&format!("{id}/layer.tar")))
                        .collect(),
                )),
            ),
        ]));
    }
    if !repos.is_empty() {
        let doc = map(repos.iter().map(|(r, tags)| {
            (
                r.as_str(),
                map(tags.iter().map(|(t, id)| (t.as_str(), js(id)))),
            )
        }));
        entries.push(Entry::file("repositories", format!("{doc}\n")));
    }
    entries.push(Entry::file(
        "manifest.json",
        format!("{}\n", arr((!items.is_empty()).then_some(items))),
    ));
    walk_order(entries, false)
}

/// The archive `docker save` writes in Docker 24 and earlier (moby `image/tarexport/save.go` at
/// v24.0.9): per layer a `<v1id>/` directory with `VERSION` (`1.0`), `json` (the legacy v1
/// layer JSON) and `layer.tar` (uncompressed); the config as `<config hex>.json`;
/// `manifest.json` with familiar `RepoTags` (`null` when untagged) and `<v1id>/layer.tar`
/// paths; `repositories` mapping familiar repository → tag → top v1 ID (only when something is
/// tagged). v1 IDs follow Docker's `CreateID`, so a layer shared at the same position of two
/// images is written once; a diff_id met again under another v1 ID is a symlink
/// `<v1id>/layer.tar -> ../<first v1id>/layer.tar`. Entries come in the order of a sorted
/// directory walk (`archive.Tar`), which interleaves `<config>.json` files with the layer
/// directories by hex; `manifest.json` and `repositories` sort last.
pub fn docker_legacy(images: &[Saved<'_>]) -> Vec<u8> {
    serialize(&legacy_entries(images))
}

// ---------------------------------------------------------------------------------------------
// 2. Docker 25+ classic store
// ---------------------------------------------------------------------------------------------

/// Variations of [`docker25_classic`]. The default is what Docker 26 to 29 write.
#[derive(Clone, Copy, Debug, Default)]
pub struct Docker25Options {
    /// Write `"RepoTags":[]` for an untagged image; Docker writes `"RepoTags":null` (a nil Go
    /// slice), which is the default.
    pub untagged_repo_tags_empty: bool,
    /// Reproduce moby's check `if len(manifestDescriptors) == 0`, evaluated over the descriptors
    /// of *all* images so far: an untagged image saved after a tagged one gets no `index.json`
    /// descriptor (it is still in `manifest.json`). Off: every untagged image is listed.
    pub untagged_index_quirk: bool,
    /// Docker 25.0.x: the synthesized manifest's config descriptor and every `index.json`
    /// descriptor carry the image's `platform` (removed in 26.0).
    pub v25_0_platform: bool,
}

fn platform_json(c: &Value) -> String {
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut f = vec![
        ("architecture", js(&s("architecture"))),
        ("os", js(&s("os"))),
    ];
    if let Some(v) = c.get("os.version").and_then(Value::as_str) {
        f.push(("os.version", js(v)));
    }
    if let Some(v @ Value::Array(a)) = c.get("os.features")
        && !a.is_empty()
    {
        f.push(("os.features", jv(v)));
    }
    if let Some(v) = c.get("variant").and_then(Value::as_str) {
        f.push(("variant", js(v)));
    }
    obj(f)
}

fn docker25_entries(images: &[Saved<'_>], opts: &Docker25Options) -> Vec<Entry> {
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut layer_sources_seen: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut items = Vec::new();
    let mut descriptors: Vec<String> = Vec::new();
    for (img, tags) in merge_by_config(images) {
        let c = config_value(img);
        for (_, json) in docker_v1(img, Moby::Current) {
            blobs.insert(Digest::sha256(&json).encoded().to_string(), json);
        }
        let mut sizes = Vec::new();
        for (l, d) in img.layers.iter().zip(&img.diff_ids) {
            let size = match layer_sources_seen.get(d) {
                Some(s) => *s,
                None => {
                    let tar = uncompressed(l);
                    let s = tar.len() as u64;
                    blobs.insert(d.encoded().to_string(), tar);
                    layer_sources_seen.insert(d.clone(), s);
                    s
                }
            };
            sizes.push(size);
        }
        blobs.insert(
            img.config.digest.encoded().to_string(),
            img.config.bytes.clone(),
        );
        let layer_desc = |d: &Digest, size: u64| {
            obj([
                ("mediaType", js(media::OCI_LAYER_TAR)),
                ("digest", js(&d.to_string())),
                ("size", size.to_string()),
            ])
        };
        let mut config_desc = vec![
            ("mediaType", js(media::OCI_CONFIG)),
            ("digest", js(&img.config.digest.to_string())),
            ("size", img.config.size().to_string()),
        ];
        if opts.v25_0_platform {
            config_desc.push(("platform", platform_json(&c)));
        }
        let manifest = obj([
            ("schemaVersion", "2".to_string()),
            ("mediaType", js(media::OCI_MANIFEST)),
            ("config", obj(config_desc)),
            (
                "layers",
                arr(Some(
                    img.diff_ids
                        .iter()
                        .zip(&sizes)
                        .map(|(d, s)| layer_desc(d, *s))
                        .collect(),
                )),
            ),
        ]);
        let mdigest = Digest::sha256(manifest.as_bytes());
        let desc = |annotations: Option<String>| {
            let mut f = vec![
                ("mediaType", js(media::OCI_MANIFEST)),
                ("digest", js(&mdigest.to_string())),
                ("size", manifest.len().to_string()),
            ];
            if let Some(a) = annotations {
                f.push(("annotations", a));
            }
            if opts.v25_0_platform {
                f.push(("platform", platform_json(&c)));
            }
            obj(f)
        };
        blobs.insert(mdigest.encoded().to_string(), manifest.clone().into_bytes());
        let refs = docker_refs(&tags);
        let top = img
            .diff_ids
            .last()
            .map(|d| d.encoded().to_string())
            .unwrap_or_default();
        let mut repo_tags = Vec::new();
        for r in &refs {
            let fam = refname::familiar(r);
            let (repo, tag) = repo_and_tag(fam);
            repos
                .entry(repo)
                .or_default()
                .insert(tag.clone(), top.clone());
            repo_tags.push(js(fam));
            descriptors.push(desc(Some(map([
                (refname::CONTAINERD_IMAGE_NAME, js(r)),
                (refname::REF_NAME, js(&tag)),
            ]))));
        }
        let untagged = if opts.untagged_index_quirk {
            descriptors.is_empty()
        } else {
            refs.is_empty()
        };
        if untagged {
            descriptors.push(desc(None));
        }
        let repo_tags =
            (!repo_tags.is_empty() || opts.untagged_repo_tags_empty).then_some(repo_tags);
        let mut sources: BTreeMap<String, String> = BTreeMap::new();
        for (d, s) in img.diff_ids.iter().zip(&sizes) {
            sources.insert(
                d.to_string(),
                obj([
                    ("mediaType", js(media::OCI_LAYER_TAR)),
                    ("size", s.to_string()),
                    ("digest", js(&d.to_string())),
                ]),
            );
        }
        let mut item = vec![
            (
                "Config",
                js(&format!("blobs/sha256/{}", img.config.digest.encoded())),
            ),
            ("RepoTags", arr(repo_tags)),
            (
                "Layers",
                arr(Some(
                    img.diff_ids
                        .iter()
                        .map(|d| js(&format!("blobs/sha256/{}", d.encoded())))
                        .collect(),
                )),
            ),
        ];
        if !sources.is_empty() {
            item.push(("LayerSources", map(sources)));
        }
        items.push(obj(item));
    }
    let mut entries: Vec<Entry> = blobs
        .into_iter()
        .map(|(hex, b)| Entry::file(format!("blobs/sha256/{hex}"), b))
        .collect();
    if !entries.is_empty() {
        entries.push(Entry::dir("blobs/"));
        entries.push(Entry::dir("blobs/sha256/"));
    }
    if !repos.is_empty() {
        let doc = map(repos.iter().map(|(r, tags)| {
            (
                r.as_str(),
                map(tags.iter().map(|(t, id)| (t.as_str(), js(id)))),
            )
        }));
        entries.push(Entry::file("repositories", format!("{doc}\n")));
    }
    entries.push(Entry::file(
        "manifest.json",
        format!("{}\n", arr((!items.is_empty()).then_some(items))),
    ));
    entries.push(Entry::file(
        "oci-layout",
        br#"{"imageLayoutVersion": "1.0.0"}"#.to_vec(),
    ));
    let index = obj([
        ("schemaVersion", "2".to_string()),
        ("mediaType", js(media::OCI_INDEX)),
        (
            "manifests",
            arr((!descriptors.is_empty()).then_some(descriptors)),
        ),
    ]);
    entries.push(Entry::file("index.json", index));
    walk_order(entries, false)
}

/// The archive `docker save` writes in Docker 25+ with the classic (graphdriver) image store
/// (moby `daemon/internal/image/tarexport/save.go`): `blobs/sha256/` holds each layer
/// uncompressed under its diff_id, the config under the image ID, one legacy v1 JSON per layer
/// (referenced by nothing) and the OCI manifest Docker synthesizes (config media type
/// `application/vnd.oci.image.config.v1+json`, layers `application/vnd.oci.image.layer.v1.tar`);
/// `index.json` has one descriptor per RepoTag (`org.opencontainers.image.ref.name` = the tag,
/// `io.containerd.image.name` = `docker.io/library/app:1.0`) and an untagged one for an untagged
/// image, `"manifests":null` when `images` is empty (then `manifest.json` is `null` too, as Go
/// encodes a nil slice); `oci-layout` is the literal `{"imageLayoutVersion": "1.0.0"}`;
/// `manifest.json` has familiar RepoTags and `LayerSources` for every layer; `repositories`
/// maps to the top layer's diff_id. Sorted directory-walk order: `blobs/` first.
pub fn docker25_classic(images: &[Saved<'_>], opts: &Docker25Options) -> Vec<u8> {
    serialize(&docker25_entries(images, opts))
}

// ---------------------------------------------------------------------------------------------
// 3. Docker containerd store / ctr export
// ---------------------------------------------------------------------------------------------

/// One image of a containerd-store save.
#[derive(Clone, Copy, Debug)]
pub struct ContainerdSave<'a> {
    /// What the name points at: usually a multi-platform index (Docker keeps the registry's
    /// index), or a single manifest.
    pub target: &'a Blob,
    /// The platform images whose blobs are in the content store. Index children not listed
    /// here are absent from the archive (a sparse index). The first one is what
    /// `manifest.json` describes (Docker prefers the host platform).
    pub present: &'a [&'a Image],
    /// Names as typed; empty: saved by ID, no name annotations.
    pub tags: &'a [&'a str],
}

fn containerd_entries(images: &[ContainerdSave<'_>]) -> Vec<Entry> {
    let mut records: Vec<Entry> = vec![Entry::file_mode(
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        0o444,
    )];
    let blob = |b: &Blob| {
        Entry::file_mode(
            format!("blobs/sha256/{}", b.digest.encoded()),
            b.bytes.clone(),
            0o444,
        )
    };
    let mut descriptors = Vec::new();
    // (chosen manifest digest, its image, names) in first-seen order
    let mut chosen: Vec<(Digest, &Image, Vec<String>)> = Vec::new();
    for s in images {
        records.push(blob(s.target));
        for img in s.present {
            for b in img.blobs() {
                records.push(blob(b));
            }
        }
        let names = docker_refs(s.tags);
        let base = s.target.descriptor();
        if names.is_empty() {
            descriptors.push(desc_json(&base));
        }
        for n in &names {
            let mut d = base.clone();
            let (_, tag) = repo_and_tag(n);
            d["annotations"] = serde_json::json!({
                refname::CONTAINERD_IMAGE_NAME: n,
                refname::REF_NAME: tag,
            });
            descriptors.push(desc_json(&d));
        }
        if let Some(first) = s.present.first() {
            let key = first.manifest.digest.clone();
            let i = match chosen.iter().position(|(d, _, _)| *d == key) {
                Some(i) => i,
                None => {
                    chosen.push((key, first, Vec::new()));
                    chosen.len() - 1
                }
            };
            for n in &names {
                chosen[i].2.push(refname::familiar(n).to_string());
            }
        }
    }
    let index = obj([
        ("schemaVersion", "2".to_string()),
        ("mediaType", js(media::OCI_INDEX)),
        (
            "manifests",
            arr((!descriptors.is_empty()).then_some(descriptors)),
        ),
    ]);
    records.push(Entry::file("index.json", index));
    if !chosen.is_empty() {
        let items: Vec<String> = chosen
            .iter()
            .map(|(_, img, names)| {
                obj([
                    (
                        "Config",
                        js(&format!("blobs/sha256/{}", img.config.digest.encoded())),
                    ),
                    (
                        "RepoTags",
                        arr((!names.is_empty()).then(|| names.iter().map(|n| js(n)).collect())),
                    ),
                    (
                        "Layers",
                        arr(Some(
                            img.layers
                                .iter()
                                .map(|l| js(&format!("blobs/sha256/{}", l.digest.encoded())))
                                .collect(),
                        )),
                    ),
                ])
            })
            .collect();
        records.push(Entry::file("manifest.json", arr(Some(items))));
    }
    if records.iter().any(|r| r.name.starts_with("blobs/")) {
        records.push(Entry::dir("blobs/"));
        records.push(Entry::dir("blobs/sha256/"));
    }
    // writeTar: sort.Slice by header name, later records with the same name skipped.
    records.sort_by(|a, b| a.name.cmp(&b.name));
    records.dedup_by(|b, a| a.name == b.name);
    records
}

/// An OCI descriptor in ocispec field order (mediaType, digest, size, urls, annotations,
/// data, platform, artifactType); unknown members follow, sorted.
fn desc_json(d: &Value) -> String {
    let o = d.as_object().cloned().unwrap_or_default();
    let order = [
        "mediaType",
        "digest",
        "size",
        "urls",
        "annotations",
        "data",
        "platform",
        "artifactType",
    ];
    let mut f: Vec<(&str, String)> = Vec::new();
    for k in order {
        if let Some(v) = o.get(k) {
            f.push((k, jv(v)));
        }
    }
    for (k, v) in &o {
        if !order.contains(&k.as_str()) {
            f.push((k, jv(v)));
        }
    }
    obj(f)
}

/// The archive Docker's containerd image store writes (`docker save` when the containerd
/// store is on, the default for new installs of Docker 29) and `ctr export` (containerd
/// `core/images/archive/exporter.go`, options from moby `daemon/containerd/image_exporter.go`):
/// an OCI layout whose `index.json` descriptors (one per name, tag-only ref.name plus the full
/// `io.containerd.image.name`) point at the target, usually the registry's multi-platform index;
/// only the present platforms' manifests, configs and **compressed** layers are included (a
/// sparse index); `manifest.json` (no trailing newline) describes one platform with familiar
/// RepoTags (`null` when unnamed) and `blobs/sha256/` paths, without `LayerSources`; no
/// `repositories`. Blobs and `oci-layout` have mode 0444; records are sorted by name, so
/// `blobs/…` precede `index.json`, `manifest.json` and `oci-layout`.
pub fn containerd_store(images: &[ContainerdSave<'_>]) -> Vec<u8> {
    serialize(&containerd_entries(images))
}

// ---------------------------------------------------------------------------------------------
// 4. containers/image docker-archive
// ---------------------------------------------------------------------------------------------

fn skopeo_entries(images: &[Saved<'_>]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut sent: BTreeSet<Digest> = BTreeSet::new();
    let mut legacy_sent: BTreeSet<String> = BTreeSet::new();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    // items merged per config digest: (config digest, config path, layer paths, repo tags)
    let mut items: Vec<(Digest, String, Vec<String>, Vec<String>)> = Vec::new();
    for (img, tags) in images {
        // copyLayers: each layer decompressed, stored once as <diffid hex>.tar
        for (l, d) in img.layers.iter().zip(&img.diff_ids) {
            if sent.insert(d.clone()) {
                entries.push(Entry::file_mode(
                    format!("{}.tar", d.encoded()),
                    uncompressed(l),
                    0o444,
                ));
            }
        }
        // copyConfig
        if sent.insert(img.config.digest.clone()) {
            entries.push(Entry::file_mode(
                format!("{}.json", img.config.digest.encoded()),
                img.config.bytes.clone(),
                0o444,
            ));
        }
        // PutManifest: legacy metadata, then the manifest item
        let legacy = cimage_legacy(img);
        for ((id, json), d) in legacy.iter().zip(&img.diff_ids) {
            if legacy_sent.insert(id.clone()) {
                let mut link =
                    Entry::symlink(format!("{id}/layer.tar"), format!("../{}.tar", d.encoded()));
                link.mode = 0;
                entries.push(link);
                entries.push(Entry::file_mode(
                    format!("{id}/VERSION"),
                    b"1.0".to_vec(),
                    0o444,
                ));
                entries.push(Entry::file_mode(format!("{id}/json"), json.clone(), 0o444));
            }
        }
        let full: Vec<String> = tags.iter().map(|t| full_name(t)).collect();
        if let Some((top, _)) = legacy.last() {
            for f in &full {
                let (repo, tag) = repo_and_tag(f);
                repos.entry(repo).or_default().insert(tag, top.clone());
            }
        }
        let i = match items
            .iter()
            .position(|(c, _, _, _)| *c == img.config.digest)
        {
            Some(i) => i,
            None => {
                items.push((
                    img.config.digest.clone(),
                    format!("{}.json", img.config.digest.encoded()),
                    img.diff_ids
                        .iter()
                        .map(|d| format!("{}.tar", d.encoded()))
                        .collect(),
                    Vec::new(),
                ));
                items.len() - 1
            }
        };
        for f in full {
            if !items[i].3.contains(&f) {
                items[i].3.push(f);
            }
        }
    }
    // Close: manifest.json, then repositories, at the end of the stream.
    let manifest = arr(Some(
        items
            .iter()
            .map(|(_, config, layers, tags)| {
                obj([
                    ("Config", js(config)),
                    ("RepoTags", arr(Some(tags.iter().map(|t| js(t)).collect()))),
                    ("Layers", arr(Some(layers.iter().map(|l| js(l)).collect()))),
                ])
            })
            .collect(),
    ));
    entries.push(Entry::file_mode("manifest.json", manifest, 0o444));
    let repositories = map(repos.iter().map(|(r, tags)| {
        (
            r.as_str(),
            map(tags.iter().map(|(t, id)| (t.as_str(), js(id)))),
        )
    }));
    entries.push(Entry::file_mode("repositories", repositories, 0o444));
    entries
}

/// What containers/image writes for `docker-archive:` (`skopeo copy … docker-archive:f.tar:app:1.0`,
/// `podman save --format docker-archive [-m]`; `docker/internal/tarfile/writer.go`, `dest.go`):
/// per image, its layers decompressed at the root as `<diffid hex>.tar` (each once), the config
/// as `<config hex>.json`, then per legacy layer `<legacyID>/layer.tar` (a symlink to
/// `../<diffid hex>.tar`), `<legacyID>/VERSION` and `<legacyID>/json` (no directory records);
/// at the end `manifest.json` (items merged per config digest, RepoTags fully qualified as
/// `docker.io/library/app:1.0`, `[]` when untagged) and then `repositories` (keyed by the full
/// repository name, `{}` when nothing is tagged). Files have mode 0444.
pub fn skopeo_docker_archive(images: &[Saved<'_>]) -> Vec<u8> {
    serialize(&skopeo_entries(images))
}

// ---------------------------------------------------------------------------------------------
// 5. go-containerregistry tarball
// ---------------------------------------------------------------------------------------------

/// File extension of a layer in a ggcr tarball (`layerExtension`): only the OCI zstd type gets
/// `.tar.zst`, uncompressed types `.tar`, everything else (Docker zstd included) `.tar.gz`.
fn ggcr_ext(media_type: &str) -> &'static str {
    match media_type {
        media::OCI_LAYER_ZSTD => ".tar.zst",
        media::OCI_LAYER_TAR | media::OCI_LAYER_ND_TAR | media::DOCKER_LAYER_TAR => ".tar",
        _ => ".tar.gz",
    }
}

fn crane_entries(images: &[Saved<'_>]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut items: Vec<(String, String)> = Vec::new(); // (sort key, item json)
    for (img, tags) in merge_by_config(images) {
        entries.push(Entry::file(
            img.config.digest.to_string(),
            img.config.bytes.clone(),
        ));
        let files: Vec<String> = img
            .layers
            .iter()
            .map(|l| format!("{}{}", l.digest.encoded(), ggcr_ext(&l.media_type)))
            .collect();
        for (l, f) in img.layers.iter().zip(&files) {
            if seen.insert(l.digest.encoded().to_string()) {
                entries.push(Entry::file(f.clone(), l.bytes.clone()));
            }
        }
        let typed: Vec<String> = tags
            .iter()
            .map(|t| {
                if refname::split_repo_tag(t).1.is_none() {
                    format!("{t}:latest")
                } else {
                    t.to_string()
                }
            })
            .collect();
        let key = typed.join(",");
        let repo_tags = (!typed.is_empty()).then(|| typed.iter().map(|t| js(t)).collect());
        items.push((
            key,
            obj([
                ("Config", js(&img.config.digest.to_string())),
                ("RepoTags", arr(repo_tags)),
                ("Layers", arr(Some(files.iter().map(|f| js(f)).collect()))),
            ]),
        ));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys keep input order
    let manifest = arr(Some(items.into_iter().map(|(_, j)| j).collect()));
    entries.push(Entry::file("manifest.json", manifest));
    entries
}

/// What Jib wrote for `jib:buildTar` and its Docker daemon builds before mid-2020
/// (`ImageTarball`, `DockerLoadManifestEntryTemplate` serialised by Jackson): the layers as
/// pushed (gzip) named `<compressed digest hex>.tar.gz`, then `config.json`, then a
/// `manifest.json` of one item whose keys are lower camel case: `config`, `repoTags`,
/// `layers`. `docker load` and skopeo read it because Go matches JSON keys regardless of
/// case. One image, one tag, no directories, no `repositories`.
pub fn jib_tarball(img: &Image, tag: &str) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut files = Vec::new();
    for l in &img.layers {
        let f = format!("{}.tar.gz", l.digest.encoded());
        if !files.contains(&f) {
            entries.push(Entry::file(f.clone(), l.bytes.clone()));
        }
        files.push(f);
    }
    entries.push(Entry::file("config.json", img.config.bytes.clone()));
    let item = obj([
        ("config", js("config.json")),
        ("repoTags", arr(Some(vec![js(tag)]))),
        ("layers", arr(Some(files.iter().map(|f| js(f)).collect()))),
    ]);
    entries.push(Entry::file("manifest.json", arr(Some(vec![item]))));
    serialize(&entries)
}

/// What go-containerregistry's `tarball.MultiWrite` writes (`crane pull img f.tar`,
/// `pkg/v1/tarball/write.go`): per image the config as an entry named `sha256:<hex>`, then its
/// layers as stored in the registry (compressed), named `<compressed digest hex>.tar.gz`
/// (`.tar.zst` for OCI zstd, `.tar` for uncompressed), each once; `manifest.json` last, items
/// sorted by their joined RepoTags, RepoTags as typed with `:latest` appended to a bare name
/// (`null` when untagged), `LayerSources` only for non-distributable layers (never here); no
/// `repositories`, no directories.
pub fn crane_tarball(images: &[Saved<'_>]) -> Vec<u8> {
    serialize(&crane_entries(images))
}

// ---------------------------------------------------------------------------------------------
// 6. Re-tarring and outer compression
// ---------------------------------------------------------------------------------------------

/// Reads an archive into entries (names and link targets as stored).
fn read_entries(archive: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut a = tar::Archive::new(archive);
    for e in a.entries().expect("a tar stream") {
        let mut e = e.expect("a readable entry");
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let mode = e.header().mode().unwrap_or(0o644);
        let kind = match e.header().entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(link),
            tar::EntryType::Link => Kind::Hardlink(link),
            _ => {
                let mut d = Vec::new();
                e.read_to_end(&mut d).expect("entry data");
                Kind::File(d)
            }
        };
        out.push(Entry { name, kind, mode });
    }
    out
}

/// Re-tars an archive as `tar --sort=name -cf - -C dir .` (GNU tar) would after extracting it:
/// every name prefixed `./`, an explicit `./` record and a record for every directory, sorted
/// directory-walk order, GNU headers, the last of same-named entries kept (as extraction
/// does), and every later regular file whose (non-empty) content equals an earlier one's stored
/// as a hardlink to the first (as if the extracted files had been hardlinked). Symlink targets
/// are kept; hardlink targets get the `./` prefix.
pub fn gnu_retar(archive: &[u8]) -> Vec<u8> {
    let mut tree: BTreeMap<Vec<String>, Entry> = BTreeMap::new();
    for e in read_entries(archive) {
        let c: Vec<String> = components(&e.name).iter().map(|s| s.to_string()).collect();
        if c.is_empty() {
            continue;
        }
        for i in 1..c.len() {
            tree.entry(c[..i].to_vec())
                .or_insert_with(|| Entry::dir(String::new()));
        }
        if e.kind == Kind::Dir && tree.contains_key(&c) {
            continue;
        }
        tree.insert(c, e);
    }
    let mut out = vec![Entry::dir("./")];
    let mut first_by_content: BTreeMap<Digest, String> = BTreeMap::new();
    for (c, mut e) in tree {
        let path = format!("./{}", c.join("/"));
        e.kind = match e.kind {
            Kind::Dir => {
                out.push(Entry {
                    name: format!("{path}/"),
                    kind: Kind::Dir,
                    mode: e.mode,
                });
                continue;
            }
            Kind::File(d) if !d.is_empty() => {
                let digest = Digest::sha256(&d);
                match first_by_content.get(&digest) {
                    Some(first) => Kind::Hardlink(first.clone()),
                    None => {
                        first_by_content.insert(digest, path.clone());
                        Kind::File(d)
                    }
                }
            }
            Kind::Hardlink(t) => Kind::Hardlink(format!("./{}", components(&t).join("/"))),
            k => k,
        };
        e.name = path;
        out.push(e);
    }
    serialize(&out)
}

/// The archive compressed as a whole (`docker save | gzip`, `| zstd`), deterministically.
pub fn compress(archive: &[u8], c: Compression) -> Vec<u8> {
    crate::image::compress(archive, c)
}

// ---------------------------------------------------------------------------------------------
// 7. Hostile archives
// ---------------------------------------------------------------------------------------------

const AMD64: crate::image::Plat<'static> = ("linux", "amd64", None);

/// How many zero bytes the gzip bomb expands to: 1 GiB + 1 MiB.
pub const BOMB_EXPANDED: u64 = (1 << 30) + (1 << 20);

/// A gzip stream of a tar whose one entry (`layer.tar`) holds [`BOMB_EXPANDED`] − 1536 zero
/// bytes: > 1 GiB expanded, about 1 MiB compressed. Built by streaming zeros through the
/// encoder (never holding the expansion) and computed once per process.
pub fn gzip_bomb() -> Vec<u8> {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let body = BOMB_EXPANDED - 1536; // header block + two end blocks
        let mut enc = Encoder::new(
            Compression::Gzip,
            Vec::new(),
            EncodeOptions {
                level: Some(9),
                zstd_workers: 0,
            },
        )
        .expect("gzip level 9 is valid");
        let e = Entry::file("layer.tar", Vec::new());
        enc.write_all(header(&e, body).as_bytes()).expect("memory");
        let zeros = vec![0u8; 1 << 20];
        let mut left = body + 1024;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            enc.write_all(&zeros[..n]).expect("memory");
            left -= n as u64;
        }
        enc.finish().expect("memory")
    })
    .clone()
}

/// A GNU sparse header (typeflag `S`) for a file of `real_size` bytes whose only data, `stored`
/// bytes, is mapped at its end; written byte for byte as GNU tar does (`--sparse`).
pub fn sparse_header(name: &str, real_size: u64, stored: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(stored);
    h.set_entry_type(tar::EntryType::GNUSparse);
    let g = h.as_gnu_mut().expect("a GNU header");
    g.set_real_size(real_size);
    g.sparse[0].set_offset(real_size - stored);
    g.sparse[0].set_length(stored);
    h.set_cksum();
    h
}

fn replace(entries: &mut [Entry], pred: impl Fn(&Entry) -> bool, kind: Kind) -> String {
    let e = entries
        .iter_mut()
        .find(|e| pred(e))
        .expect("the entry to replace exists");
    e.kind = kind;
    e.name.clone()
}

fn set_manifest(entries: &mut [Entry], data: &[u8]) {
    replace(
        entries,
        |e| e.name == "manifest.json",
        Kind::File(data.to_vec()),
    );
}

/// Hostile and broken archives an importer must refuse or survive: `(name, archive bytes,
/// one-line description)`. Each is a small image in one of the dialects above with one thing
/// wrong.
pub fn malicious() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let img = Image::small(900, 1, AMD64, Compression::Gzip, true);
    let img2 = Image::small(901, 2, AMD64, Compression::Gzip, true);
    let tags: &[&str] = &["app:1.0"];
    let legacy = legacy_entries(&[(&img, tags)]);
    let d25 = docker25_entries(&[(&img, tags)], &Docker25Options::default());
    let layer_hex = img.diff_ids[0].encoded().to_string();
    let layer_blob = format!("blobs/sha256/{layer_hex}");
    let is_layer_tar = |e: &Entry| e.name.ends_with("/layer.tar");
    let mut out = Vec::new();

    let mut e = legacy.clone();
    e.insert(0, Entry::file("../evil", b"escaped\n".to_vec()));
    out.push((
        "dotdot-entry",
        serialize(&e),
        "a Docker 24 archive whose first entry is `../evil`",
    ));

    let mut e = legacy.clone();
    e.insert(0, Entry::file("/etc/evil", b"escaped\n".to_vec()));
    out.push((
        "absolute-entry",
        serialize(&e),
        "a Docker 24 archive whose first entry is the absolute path `/etc/evil`",
    ));

    let mut e = d25.clone();
    let i = e.iter().position(|x| x.name == layer_blob).expect("layer");
    e[i] = Entry::symlink(layer_blob.clone(), "/etc/passwd");
    out.push((
        "blob-symlink-etc-passwd",
        serialize(&e),
        "a Docker 25 archive whose layer blob is a symlink to /etc/passwd",
    ));

    let mut e = legacy.clone();
    replace(&mut e, is_layer_tar, Kind::Symlink("../../x".into()));
    out.push((
        "symlink-escape",
        serialize(&e),
        "a Docker 24 archive whose <v1id>/layer.tar is a symlink to ../../x, outside the archive",
    ));

    let mut e = d25.clone();
    let i = e.iter().position(|x| x.name == layer_blob).expect("layer");
    e[i] = Entry::hardlink(layer_blob.clone(), "/etc/passwd");
    out.push((
        "blob-hardlink-etc-passwd",
        serialize(&e),
        "a Docker 25 archive whose layer blob is a hardlink to /etc/passwd",
    ));

    let cfg = format!("{}.json", img.config.digest.encoded());
    let e = vec![
        Entry::file(cfg.clone(), img.config.bytes.clone()),
        Entry::symlink("a", "b"),
        Entry::symlink("b", "a"),
        Entry::file(
            "manifest.json",
            format!(
                "{}\n",
                arr(Some(vec![obj([
                    ("Config", js(&cfg)),
                    ("RepoTags", arr(Some(vec![js("app:1.0")]))),
                    ("Layers", arr(Some(vec![js("a")]))),
                ])]))
            ),
        ),
    ];
    out.push((
        "symlink-loop",
        serialize(&e),
        "symlinks a -> b and b -> a, with manifest.json naming `a` as the layer",
    ));

    let mut e = d25.clone();
    let i = e.iter().position(|x| x.name == layer_blob).expect("layer");
    let other = crate::tarball::small_layer(902, 2);
    e.insert(i + 1, Entry::file(layer_blob.clone(), other));
    out.push((
        "duplicate-entry",
        serialize(&e),
        "a Docker 25 archive with the layer blob twice: the right content, then another tar",
    ));

    let full = serialize(&d25);
    let cut = {
        let mut a = tar::Archive::new(&full[..]);
        let mut at = None;
        for x in a.entries().expect("tar") {
            let x = x.expect("entry");
            if x.path_bytes().as_ref() == layer_blob.as_bytes() {
                at = Some(x.raw_file_position() + x.size() / 2);
            }
        }
        at.expect("layer entry") as usize
    };
    out.push((
        "truncated",
        full[..cut].to_vec(),
        "a Docker 25 archive cut off in the middle of its layer blob",
    ));

    let mut bytes = serialize_open(&legacy);
    let e = Entry::file(format!("{layer_hex}/huge.tar"), Vec::new());
    bytes.extend_from_slice(header(&e, 1 << 40).as_bytes());
    bytes.extend_from_slice(&[0x55; 4096]);
    out.push((
        "absurd-size",
        bytes,
        "a Docker 24 archive followed by an entry declaring 2^40 bytes, of which 4 KiB follow",
    ));

    // A GNU sparse member (typeflag `S`, GNU header): one 512-byte data block mapped to the
    // end of a 100 GiB file; the tar crate expands the holes to zeros that cost no input.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(sparse_header("layer.tar", 100 << 30, 512).as_bytes());
    bytes.extend_from_slice(&[0x55; 512]);
    bytes.resize(bytes.len() + 1024, 0);
    out.push((
        "gnu-sparse",
        bytes,
        "a GNU sparse member `layer.tar` of 1.5 KiB that expands to 100 GiB",
    ));

    // Records the tar crate reads whole into memory: the header declares 1 GiB, 4 KiB follow.
    for (name, flag, what) in [
        (
            "long-name",
            b'L',
            "a GNU long-name record declaring 1 GiB (4 KiB of it present)",
        ),
        (
            "pax-header",
            b'x',
            "a pax extended header declaring 1 GiB (4 KiB of it present)",
        ),
    ] {
        let mut h = tar::Header::new_gnu();
        let n: &[u8] = if flag == b'L' {
            b"././@LongLink"
        } else {
            b"PaxHeaders.0/layer.tar"
        };
        h.as_old_mut().name[..n.len()].copy_from_slice(n);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(1 << 30);
        h.set_entry_type(tar::EntryType::new(flag));
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        if flag == b'L' {
            bytes.extend(std::iter::repeat_n(b'a', 4096));
        } else {
            let mut rec = Vec::new();
            while rec.len() < 4096 {
                rec.extend_from_slice(b"30 SCHILY.xattr.user.x=abcdef\n");
            }
            bytes.extend_from_slice(&rec);
        }
        out.push((name, bytes, what));
    }

    out.push((
        "gzip-bomb",
        gzip_bomb(),
        "a gzip-compressed tar of about 1 MiB that expands to over 1 GiB of zeros",
    ));

    let mut e = legacy.clone();
    let other = compress(&crate::tarball::small_layer(903, 2), Compression::Gzip);
    replace(&mut e, is_layer_tar, Kind::File(other));
    out.push((
        "wrong-diffid",
        serialize(&e),
        "a Docker 24 archive whose layer.tar is a gzip stream of a tar that is not the config's diff_id",
    ));

    let mut e = legacy.clone();
    set_manifest(
        &mut e,
        br#"[{"Config":"x.json","RepoTags":["app:1.0"],"Layers":["#,
    );
    out.push((
        "manifest-malformed",
        serialize(&e),
        "a Docker 24 archive whose manifest.json is truncated JSON",
    ));

    let mut e = legacy.clone();
    e.retain(|x| x.name != "manifest.json");
    out.push((
        "no-manifest",
        serialize(&e),
        "layer directories and repositories but no manifest.json and no index.json (pre-1.10 format)",
    ));

    let mut e = legacy_entries(&[(&img2, tags)]);
    let v1 = docker_v1(&img2, Moby::V24);
    let m = arr(Some(vec![obj([
        (
            "Config",
            js(&format!("{}.json", img2.config.digest.encoded())),
        ),
        ("RepoTags", arr(Some(vec![js("app:1.0")]))),
        (
            "Layers",
            arr(Some(vec![js(&format!("{}/layer.tar", v1[0].0))])),
        ),
    ])]));
    set_manifest(&mut e, format!("{m}\n").as_bytes());
    out.push((
        "layer-count-mismatch",
        serialize(&e),
        "a Docker 24 archive whose manifest.json lists 1 layer for a config with 2 diff_ids",
    ));

    out.push((
        "invalid-repotag",
        docker_legacy(&[(&img, &["UPPER/case:tag!"])]),
        "a Docker 24 archive whose RepoTags is [\"UPPER/case:tag!\"]",
    ));

    let mut e = legacy.clone();
    replace(
        &mut e,
        |x| x.name == cfg,
        Kind::File(b"this is not JSON\n".to_vec()),
    );
    out.push((
        "config-not-json",
        serialize(&e),
        "a Docker 24 archive whose config file is not JSON",
    ));

    out
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image;
    use ocitool_spec::docker::ManifestItem;

    const ARM64: image::Plat<'static> = ("linux", "arm64", Some("v8"));

    /// Two images sharing a base layer; the first repeats its base layer on top.
    fn images() -> (Image, Image) {
        let base = crate::tarball::small_layer(1, 3);
        let a1 = crate::tarball::small_layer(2, 2);
        let b1 = crate::tarball::small_layer(3, 2);
        let a = Image::from_tars(
            &[base.clone(), a1, base.clone()],
            AMD64,
            Compression::Gzip,
            true,
            Value::Null,
            Value::Null,
        );
        let b = Image::from_tars(
            &[base, b1],
            AMD64,
            Compression::Zstd,
            false,
            Value::Null,
            Value::Null,
        );
        (a, b)
    }

    fn read(archive: &[u8]) -> Vec<Entry> {
        read_entries(archive)
    }

    fn files(archive: &[u8]) -> BTreeMap<String, Vec<u8>> {
        read(archive)
            .into_iter()
            .filter_map(|e| match e.kind {
                Kind::File(d) => Some((e.name, d)),
                _ => None,
            })
            .collect()
    }

    fn is_hex64(s: &str) -> bool {
        s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    /// Resolves a path through the archive's symlinks (relative to the link's directory) to a
    /// regular file; `None` if it leaves the archive, loops, or ends nowhere.
    fn resolve(entries: &[Entry], path: &str) -> Option<Vec<u8>> {
        let mut cur = path.to_string();
        for _ in 0..16 {
            let e = entries.iter().rev().find(|e| e.name == cur)?;
            match &e.kind {
                Kind::File(d) => return Some(d.clone()),
                Kind::Symlink(t) => {
                    let mut parts: Vec<&str> = cur.split('/').collect();
                    parts.pop();
                    for c in t.split('/') {
                        match c {
                            ".." => {
                                parts.pop()?;
                            }
                            "." | "" => {}
                            c => parts.push(c),
                        }
                    }
                    cur = parts.join("/");
                }
                _ => return None,
            }
        }
        None
    }

    fn manifest_items(archive: &[u8]) -> Vec<ManifestItem> {
        let f = files(archive);
        serde_json::from_slice(&f["manifest.json"]).expect("manifest.json parses")
    }

    /// Every path manifest.json names resolves to a file; layers hash to the config's diff_ids
    /// (after decompression).
    fn check_manifest(archive: &[u8]) {
        let entries = read(archive);
        for item in manifest_items(archive) {
            let config = resolve(&entries, &item.config).expect("config exists");
            let c: Value = serde_json::from_slice(&config).expect("config is JSON");
            let diff_ids = c["rootfs"]["diff_ids"].as_array().expect("diff_ids");
            assert_eq!(diff_ids.len(), item.layers.len());
            for (l, d) in item.layers.iter().zip(diff_ids) {
                let bytes = resolve(&entries, l).unwrap_or_else(|| panic!("{l} exists"));
                let tar = uncompressed(&Blob::new("x", bytes));
                assert_eq!(Digest::sha256(&tar).to_string(), d.as_str().unwrap());
            }
        }
    }

    fn all_dialects() -> Vec<(&'static str, Vec<u8>)> {
        let (a, b) = images();
        let (ma, mb) = (
            Image::small(20, 2, AMD64, Compression::Gzip, false),
            Image::small(21, 1, ARM64, Compression::Gzip, false),
        );
        let idx = image::index(
            &[(&ma.manifest, Some(AMD64)), (&mb.manifest, Some(ARM64))],
            false,
            Value::Null,
        );
        let saved: &[Saved<'_>] = &[(&a, &["app:1.0", "app:latest"]), (&b, &[])];
        vec![
            ("legacy", docker_legacy(saved)),
            ("d25", docker25_classic(saved, &Docker25Options::default())),
            (
                "containerd",
                containerd_store(&[ContainerdSave {
                    target: &idx,
                    present: &[&ma],
                    tags: &["multi:1.0", "multi:latest"],
                }]),
            ),
            ("skopeo", skopeo_docker_archive(saved)),
            ("crane", crane_tarball(saved)),
        ]
    }

    #[test]
    fn deterministic() {
        let x = all_dialects();
        let y = all_dialects();
        assert_eq!(x, y);
        let rx: Vec<_> = x.iter().map(|(_, a)| gnu_retar(a)).collect();
        let ry: Vec<_> = y.iter().map(|(_, a)| gnu_retar(a)).collect();
        assert_eq!(rx, ry);
        assert_eq!(malicious(), malicious());
    }

    #[test]
    fn manifests_parse_and_paths_exist() {
        for (name, archive) in all_dialects() {
            check_manifest(&archive);
            // and the same after a GNU re-tar (paths gain ./, the manifest does not)
            let r = read(&gnu_retar(&archive));
            assert!(r.iter().all(|e| e.name.starts_with("./")), "{name}");
        }
    }

    #[test]
    fn legacy_paths_and_symlinks() {
        let (a, b) = images();
        let archive = docker_legacy(&[(&a, &["app:1.0"]), (&b, &[])]);
        let entries = read(&archive);
        let mut symlinks = 0;
        for e in &entries {
            let parts: Vec<&str> = e.name.split('/').collect();
            match &e.kind {
                Kind::File(_) => assert!(
                    (parts.len() == 2
                        && is_hex64(parts[0])
                        && ["VERSION", "json", "layer.tar"].contains(&parts[1]))
                        || (parts.len() == 1
                            && (e.name == "manifest.json"
                                || e.name == "repositories"
                                || e.name.strip_suffix(".json").is_some_and(is_hex64))),
                    "{}",
                    e.name
                ),
                Kind::Dir => assert!(parts.len() == 2 && is_hex64(parts[0]) && parts[1].is_empty()),
                Kind::Symlink(t) => {
                    symlinks += 1;
                    assert!(e.name.ends_with("/layer.tar") && t.starts_with("../"));
                    assert!(resolve(&entries, &e.name).is_some(), "{} dangles", e.name);
                }
                Kind::Hardlink(_) => panic!("no hardlinks"),
            }
        }
        // a's base layer repeats on top (another chain, another v1 id): one symlink; b shares
        // a's base at the same position (same v1 id): written once, no symlink.
        assert_eq!(symlinks, 1);
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.name.ends_with("/layer.tar"))
                .count(),
            4
        );
        let f = files(&archive);
        assert_eq!(
            f[&format!("{}/VERSION", docker_v1(&a, Moby::V24)[0].0)],
            b"1.0"
        );
        let m = manifest_items(&archive);
        assert_eq!(m[0].repo_tags, vec!["app:1.0"]);
        assert!(m[1].repo_tags.is_empty());
        assert!(String::from_utf8_lossy(&f["manifest.json"]).contains("\"RepoTags\":null"));
        let repos: Value = serde_json::from_slice(&f["repositories"]).unwrap();
        assert_eq!(
            repos["app"]["1.0"],
            Value::from(docker_v1(&a, Moby::V24)[2].0.clone())
        );
        // sorted walk order ends with manifest.json, repositories
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            &names[names.len() - 2..],
            &["manifest.json", "repositories"]
        );
    }

    #[test]
    fn docker_v1_id_matches_create_id() {
        // Intermediate layer, base: sha256 over the sorted map moby's CreateID marshals.
        let img = Image::small(5, 2, AMD64, Compression::None, true);
        let v1 = docker_v1(&img, Moby::V24);
        let zero = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#;
        let hashed = format!(
            r#"{{"container_config":{zero},"created":"1970-01-01T00:00:00Z","layer_id":"{}"}}"#,
            img.diff_ids[0]
        );
        assert_eq!(v1[0].0, Digest::sha256(hashed.as_bytes()).encoded());
        let json = format!(
            r#"{{"id":"{}","created":"1970-01-01T00:00:00Z","container_config":{zero},"os":"linux"}}"#,
            v1[0].0
        );
        assert_eq!(String::from_utf8(v1[0].1.clone()).unwrap(), json);
        let top: Value = serde_json::from_slice(&v1[1].1).unwrap();
        assert_eq!(top["parent"], Value::from(v1[0].0.clone()));
        assert_eq!(top["config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    }

    #[test]
    fn docker25_layout() {
        let (a, b) = images();
        let archive = docker25_classic(&[(&a, &["app:1.0"]), (&b, &[])], &Default::default());
        let entries = read(&archive);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(&names[..2], &["blobs/", "blobs/sha256/"]);
        assert_eq!(
            &names[names.len() - 4..],
            &["index.json", "manifest.json", "oci-layout", "repositories"]
        );
        let f = files(&archive);
        for (n, d) in &f {
            if let Some(hex) = n.strip_prefix("blobs/sha256/") {
                assert!(is_hex64(hex));
                assert_eq!(Digest::sha256(d).encoded(), hex, "{n}");
            } else {
                assert!(
                    ["index.json", "manifest.json", "oci-layout", "repositories"]
                        .contains(&n.as_str())
                );
            }
        }
        assert_eq!(f["oci-layout"], br#"{"imageLayoutVersion": "1.0.0"}"#);
        let index: Value = serde_json::from_slice(&f["index.json"]).unwrap();
        let ms = index["manifests"].as_array().unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(
            ms[0]["annotations"],
            serde_json::json!({"io.containerd.image.name": "docker.io/library/app:1.0", "org.opencontainers.image.ref.name": "1.0"})
        );
        assert!(ms[1].get("annotations").is_none());
        for d in ms {
            let m: Value = serde_json::from_slice(
                &f[&format!(
                    "blobs/sha256/{}",
                    d["digest"]
                        .as_str()
                        .unwrap()
                        .strip_prefix("sha256:")
                        .unwrap()
                )],
            )
            .unwrap();
            assert_eq!(m["config"]["mediaType"], media::OCI_CONFIG);
            for l in m["layers"].as_array().unwrap() {
                assert_eq!(l["mediaType"], media::OCI_LAYER_TAR);
            }
        }
        let m = manifest_items(&archive);
        assert_eq!(m[0].layer_sources.len(), 2); // a: 3 layers, 2 distinct diff_ids
        assert!(String::from_utf8_lossy(&f["manifest.json"]).contains("\"RepoTags\":null"));
        let repos: Value = serde_json::from_slice(&f["repositories"]).unwrap();
        assert_eq!(repos["app"]["1.0"], a.diff_ids[2].encoded());

        // the Docker 25-29 quirk drops the untagged image from index.json
        let q = docker25_classic(
            &[(&a, &["app:1.0"]), (&b, &[])],
            &Docker25Options {
                untagged_index_quirk: true,
                untagged_repo_tags_empty: true,
                ..Default::default()
            },
        );
        let qf = files(&q);
        let qi: Value = serde_json::from_slice(&qf["index.json"]).unwrap();
        assert_eq!(qi["manifests"].as_array().unwrap().len(), 1);
        assert!(String::from_utf8_lossy(&qf["manifest.json"]).contains("\"RepoTags\":[]"));

        // no images: manifests null
        let empty = files(&docker25_classic(&[], &Default::default()));
        let ei: Value = serde_json::from_slice(&empty["index.json"]).unwrap();
        assert!(ei["manifests"].is_null());
    }

    #[test]
    fn containerd_sparse() {
        let ma = Image::small(20, 2, AMD64, Compression::Gzip, false);
        let mb = Image::small(21, 1, ARM64, Compression::Gzip, false);
        let idx = image::index(
            &[(&ma.manifest, Some(AMD64)), (&mb.manifest, Some(ARM64))],
            false,
            Value::Null,
        );
        let archive = containerd_store(&[ContainerdSave {
            target: &idx,
            present: &[&ma],
            tags: &["multi:1.0"],
        }]);
        let entries = read(&archive);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(
            &names[names.len() - 3..],
            &["index.json", "manifest.json", "oci-layout"]
        );
        let f = files(&archive);
        let blob = |b: &Blob| format!("blobs/sha256/{}", b.digest.encoded());
        assert!(f.contains_key(&blob(&idx)));
        assert!(
            f.contains_key(&blob(&ma.layers[0])),
            "compressed layer by its digest"
        );
        assert!(!f.contains_key(&blob(&mb.manifest)), "absent platform");
        assert!(!f.contains_key("repositories"));
        for (n, d) in &f {
            if let Some(hex) = n.strip_prefix("blobs/sha256/") {
                assert_eq!(Digest::sha256(d).encoded(), hex);
            }
        }
        let m = manifest_items(&archive);
        assert_eq!(m[0].repo_tags, vec!["multi:1.0"]);
        assert!(m[0].layer_sources.is_empty());
        let index: Value = serde_json::from_slice(&f["index.json"]).unwrap();
        assert_eq!(index["manifests"][0]["digest"], idx.digest.to_string());
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "1.0"
        );
        assert_eq!(f["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
    }

    #[test]
    fn skopeo_paths_and_symlinks() {
        let (a, b) = images();
        let archive = skopeo_docker_archive(&[(&a, &["app:1.0"]), (&b, &["team/other"])]);
        let entries = read(&archive);
        for e in &entries {
            match &e.kind {
                Kind::File(_) => {
                    let ok = e.name == "manifest.json"
                        || e.name == "repositories"
                        || e.name.strip_suffix(".tar").is_some_and(is_hex64)
                        || e.name.strip_suffix(".json").is_some_and(is_hex64)
                        || e.name
                            .split_once('/')
                            .is_some_and(|(id, f)| is_hex64(id) && (f == "VERSION" || f == "json"));
                    assert!(ok, "{}", e.name);
                }
                Kind::Symlink(t) => {
                    assert!(e.name.ends_with("/layer.tar"));
                    assert!(t.starts_with("../") && t.ends_with(".tar"));
                    assert!(resolve(&entries, &e.name).is_some(), "{} dangles", e.name);
                }
                _ => panic!("unexpected {}", e.name),
            }
        }
        let n = entries.len();
        assert_eq!(entries[n - 2].name, "manifest.json");
        assert_eq!(entries[n - 1].name, "repositories");
        let m = manifest_items(&archive);
        assert_eq!(m[0].repo_tags, vec!["docker.io/library/app:1.0"]);
        assert_eq!(m[1].repo_tags, vec!["docker.io/team/other:latest"]);
        let f = files(&archive);
        let repos: Value = serde_json::from_slice(&f["repositories"]).unwrap();
        assert!(repos["docker.io/library/app"]["1.0"].is_string());
    }

    #[test]
    fn crane_paths() {
        let (a, b) = images();
        let archive = crane_tarball(&[(&a, &["app"]), (&b, &["docker.io/library/app:2"])]);
        for e in read(&archive) {
            let ok = e.name == "manifest.json"
                || e.name.strip_prefix("sha256:").is_some_and(is_hex64)
                || e.name.strip_suffix(".tar.gz").is_some_and(is_hex64)
                || e.name.strip_suffix(".tar.zst").is_some_and(is_hex64);
            assert!(ok && matches!(e.kind, Kind::File(_)), "{}", e.name);
        }
        let m = manifest_items(&archive);
        assert_eq!(m[0].repo_tags, vec!["app:latest"]);
        assert_eq!(m[1].repo_tags, vec!["docker.io/library/app:2"]);
        assert_eq!(m[0].config, a.config.digest.to_string());
        assert!(m[1].layers.iter().all(|l| l.ends_with(".tar.zst")));
        assert!(!files(&archive).contains_key("repositories"));
    }

    #[test]
    fn retar_gnu() {
        let (a, _) = images();
        let archive = docker_legacy(&[(&a, &["app:1.0"])]);
        let r = read(&gnu_retar(&archive));
        assert_eq!(r[0].name, "./");
        assert!(r.iter().all(|e| e.name.starts_with("./")));
        let dirs: Vec<&str> = r
            .iter()
            .filter(|e| e.kind == Kind::Dir)
            .map(|e| e.name.as_str())
            .collect();
        assert!(dirs.iter().all(|d| d.ends_with('/')));
        // the three VERSION files are identical: two become hardlinks to the first
        let links: Vec<&Entry> = r
            .iter()
            .filter(|e| matches!(e.kind, Kind::Hardlink(_)))
            .collect();
        assert!(links.len() >= 2);
        for l in links {
            let Kind::Hardlink(t) = &l.kind else {
                unreachable!()
            };
            let target = r.iter().find(|e| &e.name == t).expect("target exists");
            assert!(matches!(target.kind, Kind::File(_)));
            assert!(r.iter().position(|e| &e.name == t) < r.iter().position(|e| e.name == l.name));
        }
        let hdr = &gnu_retar(&archive)[..512];
        assert_eq!(&hdr[257..265], b"ustar  \0", "GNU magic");
        let gz = compress(&archive, Compression::Gzip);
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    }

    #[test]
    fn hostile_archives() {
        let all = malicious();
        let names: BTreeSet<&str> = all.iter().map(|m| m.0).collect();
        assert_eq!(names.len(), all.len(), "unique names");
        assert_eq!(all.len(), 19);
        let get = |n: &str| &all.iter().find(|m| m.0 == n).expect(n).1;
        // The sparse member is what the tar crate expands: 1.5 KiB that reads as 100 GiB.
        let sparse = get("gnu-sparse");
        assert!(sparse.len() <= 2048);
        let mut a = tar::Archive::new(&sparse[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().entry_type(), tar::EntryType::GNUSparse);
        assert_eq!(e.size(), 100 << 30);
        // The long-name and pax records declare 1 GiB.
        for (n, flag) in [("long-name", b'L'), ("pax-header", b'x')] {
            let h = tar::Header::from_byte_slice(&get(n)[..512]);
            assert_eq!(h.entry_type(), tar::EntryType::new(flag));
            assert_eq!(h.entry_size().unwrap(), 1 << 30);
        }
        let bomb = get("gzip-bomb");
        assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
        assert_eq!(inflated_len(bomb), BOMB_EXPANDED);
        // raw names survive
        let first = |n: &str| {
            let a = get(n);
            String::from_utf8_lossy(&a[..100])
                .trim_end_matches('\0')
                .to_string()
        };
        assert_eq!(first("dotdot-entry"), "../evil");
        assert_eq!(first("absolute-entry"), "/etc/evil");
        let e = read(get("symlink-loop"));
        assert!(resolve(&e, "a").is_none());
        let items = manifest_items(get("invalid-repotag"));
        assert_eq!(items[0].repo_tags, vec!["UPPER/case:tag!"]);
        // the truncated stream ends inside an entry
        let mut short = false;
        for e in tar::Archive::new(&get("truncated")[..]).entries().unwrap() {
            match e {
                Ok(mut e) => {
                    let size = e.size();
                    let n = std::io::copy(&mut e, &mut std::io::sink()).unwrap_or(0);
                    short |= n < size;
                }
                Err(_) => {
                    short = true;
                    break;
                }
            }
        }
        assert!(short);
        assert!(
            serde_json::from_slice::<Value>(&files(get("manifest-malformed"))["manifest.json"])
                .is_err()
        );
        assert!(!files(get("no-manifest")).contains_key("manifest.json"));
    }

    /// Counts the bytes a gzip stream expands to, streaming.
    fn inflated_len(gz: &[u8]) -> u64 {
        let mut r = ocitool_compress::decoder(Compression::Gzip, gz, DecodeOptions::default())
            .expect("decoder");
        std::io::copy(&mut r, &mut std::io::sink()).expect("inflates")
    }
}
