//! `index.json` as an editable document.
//!
//! Every member ocitool does not edit is kept as its raw JSON text: vendor keys, index
//! annotations, and each descriptor (unknown members, annotations, even its formatting). An
//! edit replaces only the descriptors it touches; new ones are written compact with sorted
//! keys. The top-level members are written in sorted order, so the same file and the same
//! edits always give the same bytes, and a document that no edit changed is not rewritten at
//! all. Holding descriptors as raw text also keeps large indexes cheap: 10,000 refs parse,
//! edit and serialize in a few milliseconds. Untouched descriptors are spans of the file's
//! text. Readers that go through every entry keep each parsed `Descriptor`; a transaction's
//! edit (`parse_for_edit`) keeps only names and digests, validating each entry and dropping it,
//! because holding 10,000 parsed descriptors costs more (page faults on a dozen MiB of heap)
//! than the edit itself.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ocitool_digest::Digest;
use ocitool_spec::Descriptor;
use ocitool_spec::media;
use ocitool_spec::refname::{CONTAINERD_IMAGE_NAME, REF_NAME};
use ocitool_spec::tags::{POLICY_ANNOTATION, Policy};
use ocitool_spec::views::{DescriptorKeys, Str};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::errors::{Error, Result};

/// Largest number of descriptors in `index.json` accepted by default.
pub const DEFAULT_MAX_DESCRIPTORS: usize = 1_000_000;

/// A parsed `index.json`.
#[derive(Clone, Debug)]
pub struct IndexDoc {
    /// The text of the file read (empty for a new document); untouched descriptors are spans
    /// of it.
    source: String,
    /// Top-level members other than `manifests`, as raw JSON.
    top: BTreeMap<String, Box<RawValue>>,
    /// The descriptors, raw and parsed.
    items: Vec<Item>,
    /// Whether `manifests` was present (possibly `null`) in the file.
    had_manifests: bool,
    changed: bool,
    path: PathBuf,
}

#[derive(Clone, Debug)]
struct Item {
    raw: Text,
    /// What every edit consults, kept from the validating parse: spans of the source
    /// where the JSON string has no escapes (nearly always), copies otherwise.
    digest: Text,
    ref_name: Option<Text>,
    containerd_name: Option<Text>,
    /// The full descriptor, parsed when first asked for (boxed: an unparsed entry stays small,
    /// which matters for a 10,000-entry edit).
    parsed: OnceLock<Box<Descriptor>>,
    /// Added or replaced by an edit of this document.
    fresh: bool,
}

/// Text of an entry (its whole JSON, or one of its string values): a span of the document's
/// source, or owned (made by an edit, or a string with escapes).
#[derive(Clone, Debug)]
enum Text {
    Span(Range<usize>),
    Owned(Box<str>),
}

impl Text {
    fn get<'a>(&'a self, source: &'a str) -> &'a str {
        match self {
            Text::Span(r) => &source[r.clone()],
            Text::Owned(b) => b,
        }
    }

    /// `s` as a span of `source` when it is a slice of it, else a copy.
    fn of(s: &Str<'_>, source: &str) -> Text {
        if let Cow::Borrowed(b) = &s.0 {
            let base = source.as_ptr() as usize;
            let at = b.as_ptr() as usize;
            if at >= base && at + b.len() <= base + source.len() {
                return Text::Span(at - base..at - base + b.len());
            }
        }
        Text::Owned(s.0.as_ref().into())
    }
}

/// What names an `index.json` entry, read without parsing the whole descriptor again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryKey<'a> {
    pub position: usize,
    pub ref_name: Option<&'a str>,
    pub containerd_name: Option<&'a str>,
    pub digest: &'a str,
}

impl EntryKey<'_> {
    /// The name a person knows this entry by: its ref name, else its containerd name.
    pub fn display_name(&self) -> Option<&str> {
        self.ref_name.or(self.containerd_name)
    }
}

/// One descriptor of `index.json`, with its position.
#[derive(Clone, Debug)]
pub struct Entry {
    pub position: usize,
    pub descriptor: Descriptor,
}

impl Entry {
    /// Where this entry sits, for messages: `index.json manifests[3]`.
    pub fn location(&self) -> String {
        format!("index.json manifests[{}]", self.position)
    }

    /// The name a person knows this entry by: its ref name, else its containerd name.
    pub fn display_name(&self) -> Option<&str> {
        self.descriptor
            .ref_name()
            .or(self.descriptor.containerd_name())
    }
}

fn json_err(path: &Path, message: String, at: String) -> Error {
    Error::Json {
        path: path.to_path_buf(),
        source: ocitool_spec::SpecError::Json {
            what: "index.json",
            path: at,
            message,
        },
    }
}

fn raw(v: &impl serde::Serialize) -> Box<RawValue> {
    // Serializing a JSON value to text cannot fail.
    serde_json::value::to_raw_value(v).expect("JSON values serialize")
}

impl Item {
    /// An entry made by an edit, with its parsed descriptor.
    fn from_value(v: &Value) -> Result<Item> {
        let descriptor =
            Descriptor::deserialize(v).map_err(|e| Error::Invalid(format!("descriptor: {e}")))?;
        let owned = |s: Option<&str>| s.map(|s| Text::Owned(s.into()));
        Ok(Item {
            raw: Text::Owned(raw(v).get().into()),
            digest: Text::Owned(descriptor.digest.as_str().into()),
            ref_name: owned(descriptor.ref_name()),
            containerd_name: owned(descriptor.containerd_name()),
            parsed: OnceLock::from(Box::new(descriptor)),
            fresh: true,
        })
    }

    fn ref_name<'a>(&'a self, source: &'a str) -> Option<&'a str> {
        self.ref_name.as_ref().map(|t| t.get(source))
    }

    fn digest<'a>(&'a self, source: &'a str) -> &'a str {
        self.digest.get(source)
    }
}

impl IndexDoc {
    /// The index of a new, empty layout.
    pub fn empty() -> IndexDoc {
        let mut top = BTreeMap::new();
        top.insert("schemaVersion".to_string(), raw(&2));
        top.insert("mediaType".to_string(), raw(&media::OCI_INDEX));
        IndexDoc {
            source: String::new(),
            top,
            items: Vec::new(),
            had_manifests: true,
            changed: false,
            path: PathBuf::from("index.json"),
        }
    }

    /// Parses `index.json` bytes. The top level must be an object, `manifests` an array, null
    /// or absent, and every entry a descriptor; anything else is reported with its location.
    pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<IndexDoc> {
        IndexDoc::parse_keeping(bytes, path, true)
    }

    /// Like [`IndexDoc::parse`] (every entry validated), but keeps only each entry's names and
    /// digest: for a read-modify-write that touches a few entries of a large index (`tag`,
    /// `untag`), holding every parsed descriptor costs more than the edit. Entries asked for
    /// later are parsed again.
    pub fn parse_for_edit(bytes: Vec<u8>, path: &Path) -> Result<IndexDoc> {
        IndexDoc::parse_keeping(bytes, path, false)
    }

    fn parse_keeping(bytes: Vec<u8>, path: &Path, keep: bool) -> Result<IndexDoc> {
        let source = String::from_utf8(bytes).map_err(|e| {
            json_err(
                path,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
                String::new(),
            )
        })?;
        let (top, had_manifests, items) = {
            let mut top: BTreeMap<String, &RawValue> =
                serde_json::from_str(&source).map_err(|e| {
                    json_err(
                        path,
                        format!("{e} (the top level must be a JSON object)"),
                        String::new(),
                    )
                })?;
            let manifests = top.remove("manifests");
            let had_manifests = manifests.is_some();
            let mut items = Vec::new();
            if let Some(m) = manifests {
                let raws: Option<Vec<&RawValue>> = serde_json::from_str(m.get()).map_err(|e| {
                    json_err(
                        path,
                        format!("\"manifests\" is not an array: {e}"),
                        "manifests".into(),
                    )
                })?;
                let raws = raws.unwrap_or_default();
                if raws.len() > DEFAULT_MAX_DESCRIPTORS {
                    return Err(json_err(
                        path,
                        format!(
                            "{} descriptors exceed the limit of {DEFAULT_MAX_DESCRIPTORS}",
                            raws.len()
                        ),
                        "manifests".into(),
                    ));
                }
                items.reserve(raws.len());
                let base = source.as_ptr() as usize;
                for (i, r) in raws.into_iter().enumerate() {
                    let text = r.get();
                    let err = |e: serde_json::Error| {
                        json_err(path, e.to_string(), format!("manifests[{i}]"))
                    };
                    // A borrowed RawValue is a slice of `source`.
                    let start = text.as_ptr() as usize - base;
                    let raw = Text::Span(start..start + text.len());
                    let item = if keep {
                        let d: Descriptor = serde_json::from_str(text).map_err(err)?;
                        Item {
                            raw,
                            digest: Text::Owned(d.digest.as_str().into()),
                            ref_name: d.ref_name().map(|s| Text::Owned(s.into())),
                            containerd_name: d.containerd_name().map(|s| Text::Owned(s.into())),
                            parsed: OnceLock::from(Box::new(d)),
                            fresh: false,
                        }
                    } else {
                        // Accepts exactly what `Descriptor` accepts, borrowing its strings.
                        let k: DescriptorKeys = serde_json::from_str(text).map_err(err)?;
                        let names = &k.annotations;
                        Item {
                            raw,
                            digest: Text::of(&k.digest, &source),
                            ref_name: names.ref_name.as_ref().map(|s| Text::of(s, &source)),
                            containerd_name: names
                                .containerd_name
                                .as_ref()
                                .map(|s| Text::of(s, &source)),
                            parsed: OnceLock::new(),
                            fresh: false,
                        }
                    };
                    items.push(item);
                }
            }
            let top: BTreeMap<String, Box<RawValue>> =
                top.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
            (top, had_manifests, items)
        };
        Ok(IndexDoc {
            source,
            top,
            items,
            had_manifests,
            changed: false,
            path: path.to_path_buf(),
        })
    }

    /// The JSON text of an entry.
    fn text<'a>(&'a self, it: &'a Item) -> &'a str {
        it.raw.get(&self.source)
    }

    /// The full descriptor of an entry, parsed on first use (its text was validated when the
    /// document was read, so this parse cannot fail).
    fn parsed<'a>(&'a self, it: &'a Item) -> &'a Descriptor {
        it.parsed
            .get_or_init(|| Box::new(serde_json::from_str(self.text(it)).unwrap_or_default()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an edit changed the document since it was read.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Every descriptor, in order (cheap: no copy of the descriptors).
    pub fn entries(&self) -> Vec<Entry> {
        self.items
            .iter()
            .enumerate()
            .map(|(position, it)| Entry {
                position,
                descriptor: self.parsed(it).clone(),
            })
            .collect()
    }

    /// The names and digest of every entry, in order (no parsing).
    pub fn keys(&self) -> impl Iterator<Item = EntryKey<'_>> {
        self.items
            .iter()
            .enumerate()
            .map(|(position, it)| EntryKey {
                position,
                ref_name: it.ref_name(&self.source),
                containerd_name: it.containerd_name.as_ref().map(|t| t.get(&self.source)),
                digest: it.digest(&self.source),
            })
    }

    /// The descriptor at `position`, parsed.
    pub fn descriptor(&self, position: usize) -> Option<&Descriptor> {
        self.items.get(position).map(|it| self.parsed(it))
    }

    /// Iterates `(position, descriptor)` without copying.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Descriptor)> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, it)| (i, self.parsed(it)))
    }

    /// Descriptors added or replaced by edits of this document.
    pub fn fresh(&self) -> impl Iterator<Item = (usize, &Descriptor)> {
        self.items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.fresh)
            .map(|(i, it)| (i, self.parsed(it)))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The raw JSON of the descriptor at `position`, as a value.
    pub fn raw_entry(&self, position: usize) -> Option<Value> {
        self.items
            .get(position)
            .and_then(|it| serde_json::from_str(self.text(it)).ok())
    }

    /// The bytes of the document: top-level members sorted, untouched descriptors as they were.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.items
                .iter()
                .map(|i| self.text(i).len() + 1)
                .sum::<usize>()
                + 256,
        );
        self.write_to(&mut out)
            .expect("writing to a Vec cannot fail");
        out
    }

    /// Writes the bytes of [`IndexDoc::to_bytes`] to `out`, without building them in memory
    /// first (a 10,000-ref index is 2 MB: streaming it through a small buffer spares the page
    /// faults of a second copy).
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(b"{")?;
        let mut first = true;
        let mut manifests_done = false;
        let emit_manifests = |out: &mut dyn Write, first: &mut bool| -> io::Result<()> {
            if !*first {
                out.write_all(b",")?;
            }
            *first = false;
            out.write_all(b"\"manifests\":[")?;
            for (i, it) in self.items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                out.write_all(self.text(it).as_bytes())?;
            }
            out.write_all(b"]")
        };
        for (k, v) in &self.top {
            if !manifests_done && k.as_str() > "manifests" {
                emit_manifests(out, &mut first)?;
                manifests_done = true;
            }
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            serde_json::to_writer(&mut *out, k).map_err(io::Error::other)?;
            out.write_all(b":")?;
            out.write_all(v.get().as_bytes())?;
        }
        if !manifests_done {
            emit_manifests(out, &mut first)?;
        }
        out.write_all(b"}")
    }

    fn mark(&mut self) {
        self.changed = true;
        self.had_manifests = true;
    }

    /// Points `name` at `target` (a descriptor as raw JSON): the first entry already named
    /// `name` is replaced in place and any other entry of that name removed; otherwise the
    /// descriptor is appended. Returns the digest the name pointed at before, if any.
    /// Naming annotations of `target` are replaced by `name`.
    pub fn set_ref(&mut self, name: &str, target: &Value) -> Option<String> {
        let mut desc = target.clone();
        set_name(&mut desc, name);
        let positions: Vec<usize> = self.positions_named(name);
        let previous = positions
            .first()
            .map(|&i| self.items[i].digest(&self.source).to_string());
        if let Some(&first) = positions.first() {
            let same = positions.len() == 1
                && serde_json::from_str::<Value>(self.text(&self.items[first]))
                    .ok()
                    .as_ref()
                    == Some(&desc);
            if same {
                return previous;
            }
        }
        let Ok(item) = Item::from_value(&desc) else {
            return previous;
        };
        self.mark();
        match positions.first() {
            Some(&first) => {
                self.items[first] = item;
                for &i in positions[1..].iter().rev() {
                    self.items.remove(i);
                }
            }
            None => self.items.push(item),
        }
        previous
    }

    fn positions_named(&self, name: &str) -> Vec<usize> {
        self.items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.ref_name(&self.source) == Some(name))
            .map(|(i, _)| i)
            .collect()
    }

    /// Adds a descriptor exactly as given (every annotation kept): an entry of the same ref
    /// name is replaced, others of that name removed; an unnamed descriptor is added unless an
    /// unnamed entry for its digest exists.
    pub fn put_verbatim(&mut self, desc: &Value) {
        let Ok(item) = Item::from_value(desc) else {
            return;
        };
        match item.ref_name(&self.source).map(str::to_string) {
            Some(name) => {
                let positions = self.positions_named(&name);
                if positions.len() == 1
                    && serde_json::from_str::<Value>(self.text(&self.items[positions[0]]))
                        .ok()
                        .as_ref()
                        == Some(desc)
                {
                    return;
                }
                self.mark();
                match positions.first() {
                    Some(&first) => {
                        self.items[first] = item;
                        for &i in positions[1..].iter().rev() {
                            self.items.remove(i);
                        }
                    }
                    None => self.items.push(item),
                }
            }
            None => {
                let digest = item.digest(&self.source);
                if !self
                    .items
                    .iter()
                    .any(|it| it.ref_name.is_none() && it.digest(&self.source) == digest)
                {
                    self.mark();
                    self.items.push(item);
                }
            }
        }
    }

    /// Removes every entry named `name`; returns how many.
    pub fn remove_ref(&mut self, name: &str) -> usize {
        self.remove_where(|src, it| it.ref_name(src) == Some(name))
    }

    /// Removes the entries at these positions; returns how many.
    pub fn remove_positions(&mut self, positions: &[usize]) -> usize {
        let mut i = 0;
        let before = self.items.len();
        self.items.retain(|_| {
            let keep = !positions.contains(&i);
            i += 1;
            keep
        });
        let n = before - self.items.len();
        if n > 0 {
            self.mark();
        }
        n
    }

    /// Removes every entry pointing at `digest`, named or not; returns how many.
    pub fn remove_digest(&mut self, digest: &Digest) -> usize {
        let d = digest.to_string();
        self.remove_where(|src, it| it.digest(src) == d)
    }

    fn remove_where(&mut self, f: impl Fn(&str, &Item) -> bool) -> usize {
        let before = self.items.len();
        let source = &self.source;
        self.items.retain(|it| !f(source, it));
        let n = before - self.items.len();
        if n > 0 {
            self.mark();
        }
        n
    }

    /// Adds an untagged entry for `target` unless some entry already points at its digest.
    /// Returns whether it was added.
    pub fn ensure_listed(&mut self, target: &Value) -> bool {
        let digest = target.get("digest").and_then(Value::as_str);
        if self
            .items
            .iter()
            .any(|it| Some(it.digest(&self.source)) == digest)
        {
            return false;
        }
        let mut desc = target.clone();
        if let Some(Value::Object(ann)) = desc.get_mut("annotations") {
            ann.remove(REF_NAME);
            ann.remove(CONTAINERD_IMAGE_NAME);
            if ann.is_empty() {
                desc.as_object_mut().map(|o| o.remove("annotations"));
            }
        }
        let Ok(item) = Item::from_value(&desc) else {
            return false;
        };
        self.mark();
        self.items.push(item);
        true
    }

    /// `ref.name` → digest for every named entry (the first entry wins for a duplicated name).
    pub fn ref_digests(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for it in &self.items {
            if let Some(n) = it.ref_name(&self.source) {
                m.entry(n.to_string())
                    .or_insert_with(|| it.digest(&self.source).to_string());
            }
        }
        m
    }

    /// The top-level annotations with each value's original text (a number such as `1e400`
    /// that no `f64` holds is kept as written). `None` when `annotations` is present but is
    /// not an object (not spec-valid).
    fn raw_annotations(&self) -> Option<BTreeMap<String, Box<RawValue>>> {
        match self.top.get("annotations") {
            None => Some(BTreeMap::new()),
            Some(a) => serde_json::from_str(a.get()).ok(),
        }
    }

    /// The tag protection policy stored on the index. An index without an annotations object
    /// has no policy; a policy annotation that is not a valid policy string is an error (never
    /// read as "nothing is protected").
    pub fn policy(&self) -> Result<Policy> {
        let Some(ann) = self.raw_annotations() else {
            return Ok(Policy::default());
        };
        let protect: Option<String> = ann
            .get(POLICY_ANNOTATION)
            .map(|r| serde_json::from_str(r.get()))
            .transpose()
            .map_err(|e| {
                Error::Invalid(format!(
                    "index.json annotation {POLICY_ANNOTATION} is not a string: {e}"
                ))
            })?;
        Policy::from_annotation(protect.as_deref()).map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Stores the policy on the index (an empty policy removes the annotation).
    pub fn set_policy(&mut self, p: &Policy) -> Result<()> {
        self.set_annotation(POLICY_ANNOTATION, p.to_annotation().as_deref())
    }

    /// The top-level annotations of the index, for display (values that `serde_json::Value`
    /// cannot hold make this `None`).
    pub fn annotations(&self) -> Option<Map<String, Value>> {
        self.top
            .get("annotations")
            .and_then(|a| serde_json::from_str(a.get()).ok())
    }

    /// Sets or removes a top-level annotation of the index; every other annotation is kept
    /// byte for byte. Refused when `annotations` is not an object, rather than replacing it.
    pub fn set_annotation(&mut self, key: &str, value: Option<&str>) -> Result<()> {
        let mut ann = self.raw_annotations().ok_or_else(|| {
            Error::Invalid(
                "index.json: \"annotations\" is not an object; refusing to replace it".into(),
            )
        })?;
        let text = |a: &BTreeMap<String, Box<RawValue>>| a.get(key).map(|r| r.get().to_string());
        let before = text(&ann);
        match value {
            Some(v) => {
                ann.insert(key.to_string(), raw(&v));
            }
            None => {
                ann.remove(key);
            }
        }
        if text(&ann) == before {
            return Ok(());
        }
        self.changed = true;
        if ann.is_empty() {
            self.top.remove("annotations");
        } else {
            self.top.insert("annotations".to_string(), raw(&ann));
        }
        Ok(())
    }
}

/// Gives a descriptor exactly one name: `org.opencontainers.image.ref.name` = `name`; the
/// containerd name of another ref is dropped, since it would name a different image.
fn set_name(desc: &mut Value, name: &str) {
    let Some(obj) = desc.as_object_mut() else {
        return;
    };
    let ann = obj
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !ann.is_object() {
        *ann = Value::Object(Map::new());
    }
    if let Value::Object(m) = ann {
        m.remove(CONTAINERD_IMAGE_NAME);
        m.insert(REF_NAME.to_string(), Value::from(name));
    }
}

/// A minimal descriptor as raw JSON.
pub fn descriptor_value(media_type: &str, digest: &Digest, size: u64) -> Value {
    let mut m = Map::new();
    m.insert("mediaType".into(), Value::from(media_type));
    m.insert("digest".into(), Value::from(digest.to_string()));
    m.insert("size".into(), Value::from(size));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:3d3d1d6ae926c347b2fc0e01c21f12d7898ec2460d16823064eb4b7e03c7ca29";

    fn doc(s: &str) -> IndexDoc {
        IndexDoc::parse(s.as_bytes().to_vec(), Path::new("index.json")).unwrap()
    }

    /// The edit mode keeps only names and digests; it must behave exactly like the full parse.
    #[test]
    fn parse_for_edit_behaves_like_parse() {
        let src = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D}","size":1,"annotations":{{"org.opencontainers.image.ref.name":"a:1","x":"y"}},"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{D}","size":1,"annotations":{{"io.containerd.image.name":"docker.io/library/b:2"}}}},
            {{"mediaType": "m/x",  "digest":"{D}","size":1}}]}}"#
        );
        let full = doc(&src);
        let lazy =
            IndexDoc::parse_for_edit(src.clone().into_bytes(), Path::new("index.json")).unwrap();
        let ds = |d: &IndexDoc| d.iter().map(|(_, x)| x.clone()).collect::<Vec<_>>();
        assert_eq!(ds(&full), ds(&lazy));
        let keys = |d: &IndexDoc| {
            d.keys()
                .map(|k| {
                    (
                        k.position,
                        k.ref_name.map(String::from),
                        k.display_name().map(String::from),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&full), keys(&lazy));
        assert_eq!(keys(&lazy)[1].2.as_deref(), Some("docker.io/library/b:2"));
        let target = descriptor_value(
            "application/vnd.oci.image.manifest.v1+json",
            &Digest::sha256(b"t"),
            1,
        );
        for d in [&mut full.clone(), &mut lazy.clone()] {
            assert_eq!(d.set_ref("a:1", &target).as_deref(), Some(D));
            assert_eq!(d.remove_ref("nothing"), 0);
            assert!(!d.ensure_listed(&descriptor_value("m/x", &Digest::parse(D).unwrap(), 1)));
        }
        let mut a = full.clone();
        let mut b = lazy.clone();
        for d in [&mut a, &mut b] {
            d.set_ref("a:1", &target);
            d.set_ref("c:3", &target);
            d.remove_digest(&Digest::parse(D).unwrap());
        }
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_eq!(ds(&a), ds(&b));
        assert_eq!(a.ref_digests(), b.ref_digests());
        // Untouched entries keep their text (white space inside them included).
        let mut c = lazy.clone();
        c.set_ref("z:9", &target);
        let out = String::from_utf8(c.to_bytes()).unwrap();
        assert!(out.contains(r#"{"mediaType": "m/x",  "digest""#), "{out}");
    }

    /// The edit parse reads entries through a borrowing twin of `Descriptor`: it must accept
    /// and refuse the same entries, and read the same names (escaped ones and repeated keys
    /// included).
    #[test]
    fn parse_for_edit_accepts_and_refuses_what_parse_does() {
        let entries = [
            format!(
                r#"{{"digest":"{D}","size":1,"annotations":{{"org.opencontainers.image.ref.name":"a\u003a1"}}}}"#
            ),
            format!(
                r#"{{"digest":"{D}","size":1,"annotations":{{"org.opencontainers.image.ref.name":"a:1","org.opencontainers.image.ref.name":"b:2"}}}}"#
            ),
            r#"{"digest":"sha256:\u0061b","size":null,"annotations":null,"urls":null,"mediaType":null}"#.to_string(),
            format!(
                r#"{{"digest":"{D}","size":1,"urls":["u"],"artifactType":"a/b","platform":{{"os":"linux","architecture":"amd64"}}}}"#
            ),
            format!(r#"{{"digest":"{D}","size":1,"annotations":{{"x":1}}}}"#),
            format!(r#"{{"digest":"{D}","digest":"{D}","size":1}}"#),
            format!(r#"{{"digest":"{D}","size":"1"}}"#),
            format!(r#"{{"digest":"{D}","size":1,"urls":[1]}}"#),
            format!(r#"{{"digest":"{D}","size":1,"platform":"linux"}}"#),
            format!(r#"{{"digest":"{D}","size":1,"artifactType":7}}"#),
            r#"{"digest":1,"size":1}"#.to_string(),
            r#"[]"#.to_string(),
            r#"{}"#.to_string(),
        ];
        let mut refused = 0;
        for e in &entries {
            let src = format!(r#"{{"manifests":[{e}]}}"#);
            let p = Path::new("index.json");
            let full = IndexDoc::parse(src.clone().into_bytes(), p);
            let lazy = IndexDoc::parse_for_edit(src.into_bytes(), p);
            match (full, lazy) {
                (Ok(f), Ok(l)) => {
                    assert_eq!(
                        f.keys().collect::<Vec<_>>(),
                        l.keys().collect::<Vec<_>>(),
                        "{e}"
                    );
                    assert_eq!(f.descriptor(0), l.descriptor(0), "{e}");
                }
                (Err(f), Err(l)) => {
                    refused += 1;
                    assert_eq!(f.to_string(), l.to_string(), "{e}");
                }
                (f, l) => panic!("{e}: parse {:?}, parse_for_edit {:?}", f.is_ok(), l.is_ok()),
            }
        }
        // Seven are refused by both; `[]` and `{}` parse (serde reads a struct from an array
        // too) and are reported later, by `checked`, as descriptors without a digest.
        assert_eq!(refused, 7, "the refused entries are refused by both");
        let d = IndexDoc::parse_for_edit(
            format!(r#"{{"manifests":[{}]}}"#, entries[0]).into_bytes(),
            Path::new("index.json"),
        )
        .unwrap();
        assert_eq!(d.keys().next().unwrap().ref_name, Some("a:1"));
    }

    /// Found by the `index_edit` fuzz target: setting the policy on an index whose annotations
    /// hold a number no f64 can represent dropped every other annotation.
    #[test]
    fn policy_edits_keep_every_other_annotation_byte_for_byte() {
        let mut d =
            doc(r#"{"schemaVersion":2,"manifests":[],"annotations":{"a":1e400,"b":{"x":[1.50]}}}"#);
        d.set_policy(&Policy {
            semver: true,
            ..Default::default()
        })
        .unwrap();
        let out = String::from_utf8(d.to_bytes()).unwrap();
        assert!(out.contains(r#""a":1e400"#), "{out}");
        assert!(out.contains(r#""b":{"x":[1.50]}"#), "{out}");
        assert!(d.policy().unwrap().semver);
        d.set_policy(&Policy::default()).unwrap();
        let out = String::from_utf8(d.to_bytes()).unwrap();
        assert!(
            out.contains(r#""a":1e400"#) && !out.contains(POLICY_ANNOTATION),
            "{out}"
        );

        // Not an object: there is no policy, and none is written over it.
        let mut d = doc(r#"{"schemaVersion":2,"manifests":[],"annotations":"x"}"#);
        assert_eq!(d.policy().unwrap(), Policy::default());
        assert!(
            d.set_policy(&Policy {
                sha: true,
                ..Default::default()
            })
            .is_err()
        );
        assert!(!d.changed());
        // A policy annotation that is not a string is an error, never "nothing protected".
        let d = doc(&format!(
            r#"{{"schemaVersion":2,"manifests":[],"annotations":{{"{POLICY_ANNOTATION}":7}}}}"#
        ));
        assert!(d.policy().is_err());
    }

    #[test]
    fn untouched_documents_keep_their_bytes_and_edits_keep_the_rest() {
        let src = format!(
            r#"{{"schemaVersion":2,"zz":{{"b":1,"a":[1.5,null]}},"manifests":[ {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D}","size":1,"x-vendor":true}} ],"annotations":{{"k":"v"}}}}"#
        );
        let mut d = doc(&src);
        assert!(!d.changed());
        d.set_ref(
            "a:1",
            &descriptor_value(
                "application/vnd.oci.image.manifest.v1+json",
                &Digest::parse(D).unwrap(),
                1,
            ),
        );
        assert!(d.changed());
        let out = String::from_utf8(d.to_bytes()).unwrap();
        // sorted top level; the untouched descriptor verbatim (spaces around it were outside it)
        assert!(
            out.starts_with(r#"{"annotations":{"k":"v"},"manifests":[{"mediaType""#),
            "{out}"
        );
        assert!(out.contains(r#""x-vendor":true}"#), "{out}");
        assert!(
            out.ends_with(r#""schemaVersion":2,"zz":{"b":1,"a":[1.5,null]}}"#),
            "{out}"
        );
        let again = doc(&out);
        assert_eq!(again.ref_digests().get("a:1").map(String::as_str), Some(D));
        assert_eq!(again.to_bytes(), out.as_bytes(), "stable");
    }

    #[test]
    fn null_and_absent_manifests() {
        for s in [
            r#"{"schemaVersion":2,"manifests":null}"#,
            r#"{"schemaVersion":2}"#,
        ] {
            let mut d = doc(s);
            assert!(d.is_empty());
            d.set_ref("x", &descriptor_value("a/b", &Digest::parse(D).unwrap(), 3));
            let out = String::from_utf8(d.to_bytes()).unwrap();
            assert!(out.starts_with(r#"{"manifests":[{"#), "{out}");
        }
        assert!(IndexDoc::parse(br#"{"manifests":{}}"#.to_vec(), Path::new("i")).is_err());
        assert!(IndexDoc::parse(br#"[]"#.to_vec(), Path::new("i")).is_err());
        assert!(
            IndexDoc::parse(br#"{"manifests":[{"size":"x"}]}"#.to_vec(), Path::new("i"))
                .unwrap_err()
                .to_string()
                .contains("manifests[0]")
        );
    }

    #[test]
    fn retagging_to_the_same_descriptor_changes_nothing() {
        let mut d = IndexDoc::empty();
        let v = descriptor_value("a/b", &Digest::parse(D).unwrap(), 3);
        d.set_ref("x", &v);
        let bytes = d.to_bytes();
        let mut d = IndexDoc::parse(bytes.clone(), Path::new("i")).unwrap();
        d.set_ref("x", &v);
        assert!(!d.changed());
        assert_eq!(d.to_bytes(), bytes);
    }
}
