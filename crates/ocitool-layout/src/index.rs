//! `index.json` as an editable document.
//!
//! Every member ocitool does not edit is kept as its raw JSON text: vendor keys, index
//! annotations, and each descriptor (unknown members, annotations, even its formatting). An
//! edit replaces only the descriptors it touches; new ones are written compact with sorted
//! keys. The top-level members are written in sorted order, so the same file and the same
//! edits always give the same bytes, and a document that no edit changed is not rewritten at
//! all.
//!
//! Large indexes stay cheap in time and memory:
//! - Reading validates every entry through `DescriptorKeys` (a borrowing twin of `Descriptor`)
//!   and keeps only spans of the file's text: its JSON, digest and names. A full `Descriptor`
//!   is parsed when asked for; readers that go through every entry ([`IndexDoc::views`],
//!   [`IndexDoc::walk_roots`], [`IndexDoc::entries`]) parse each one without keeping it. A
//!   parsed descriptor costs about six times its text (a `BTreeMap` node for its annotations
//!   alone is half a KiB), so keeping them made `ls` and `verify` peak at 12 times the size of
//!   `index.json`.
//! - Edits by name or digest go through a [`Lookup`] (ref name → entries, digest → counts),
//!   built once lookups are more than a few (the first ones are passes over the entries,
//!   cheaper for a single `tag`) and kept in step by every edit. A removed entry leaves an
//!   empty slot that readers and the writer skip, so entries never shift; positions (ranks
//!   among the live slots) are counted by a Fenwick tree once something was removed. An edit
//!   therefore costs O(1) amortized (O(log n) by position after removals): `tag`, `untag`,
//!   `prune` or `copy` of k refs on an index of n entries cost O(n + k log n), not O(n k)
//!   (100,000 refs: a second, not hours).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use ocitool_digest::Digest;
use ocitool_spec::Descriptor;
use ocitool_spec::media;
use ocitool_spec::reference::{name_key, same_name};
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
    /// The descriptors in order. An entry removed by an edit leaves `None`, which every reader
    /// and the writer skip: a removal is O(1) and the slots of the others never move. The
    /// position of an entry (what readers see, `manifests[i]` of the file written) is its
    /// rank among the live slots; slot and position are equal while nothing was removed.
    slots: Vec<Option<Item>>,
    /// How many slots are `None`.
    removed: usize,
    /// Names and digests of the live entries, built when lookups become many (see
    /// [`SCANS_BEFORE_LOOKUP`]), then kept in step by every edit.
    lookup: OnceLock<Lookup>,
    /// Lookups answered by a pass over the entries so far.
    scans: Counter,
    /// Live slots counted, for positions once entries were removed: built on first use, kept
    /// in step by every edit.
    ranks: OnceLock<Ranks>,
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
    /// The full descriptor, parsed when first asked for through [`IndexDoc::descriptor`] or
    /// [`IndexDoc::iter`] (boxed: an unparsed entry stays small).
    parsed: OnceLock<Box<Descriptor>>,
    /// Added or replaced by an edit of this document.
    fresh: bool,
}

/// Lookups by name or digest answered by a pass over the entries before the [`Lookup`] is
/// built: one `tag` is quicker with two passes (no allocation) than with a map of every name
/// (100,000 refs: 0.4 s against 0.7 s); many edits build the map and make no more passes.
const SCANS_BEFORE_LOOKUP: usize = 4;

/// A count that a shared reference can raise (`IndexDoc` stays `Sync` and `Clone`).
#[derive(Debug, Default)]
struct Counter(AtomicUsize);

impl Counter {
    /// Raises the count; returns the count before.
    fn bump(&self) -> usize {
        self.0.fetch_add(1, AtomicOrdering::Relaxed)
    }
}

impl Clone for Counter {
    fn clone(&self) -> Counter {
        Counter(AtomicUsize::new(self.0.load(AtomicOrdering::Relaxed)))
    }
}

/// The live entries by ref name and by digest, for edits that name them.
#[derive(Clone, Debug, Default)]
struct Lookup {
    /// Name key ([`name_key`]) → slots of the entries whose ref name has it, ascending: the
    /// entries of one name and of its twins (one, unless the file lists a name twice or
    /// spells one image name two ways).
    names: HashMap<Box<str>, Vec<usize>>,
    /// Digest → (entries, entries without a ref name).
    digests: HashMap<Box<str>, (usize, usize)>,
}

impl Lookup {
    fn add(&mut self, name: Option<&str>, digest: &str, slot: usize) {
        if let Some(n) = name {
            let key = name_key(n);
            match self.names.get_mut(key.as_ref()) {
                Some(v) => {
                    let at = v.partition_point(|&s| s < slot);
                    v.insert(at, slot);
                }
                None => {
                    self.names.insert(key.into(), vec![slot]);
                }
            }
        }
        let unnamed = usize::from(name.is_none());
        match self.digests.get_mut(digest) {
            Some(c) => {
                c.0 += 1;
                c.1 += unnamed;
            }
            None => {
                self.digests.insert(digest.into(), (1, unnamed));
            }
        }
    }

    fn remove(&mut self, name: Option<&str>, digest: &str, slot: usize) {
        if let Some(n) = name {
            let key = name_key(n);
            if let Some(v) = self.names.get_mut(key.as_ref()) {
                v.retain(|&s| s != slot);
                if v.is_empty() {
                    self.names.remove(key.as_ref());
                }
            }
        }
        if let Some(c) = self.digests.get_mut(digest) {
            c.0 -= 1;
            c.1 -= usize::from(name.is_none());
            if c.0 == 0 {
                self.digests.remove(digest);
            }
        }
    }
}

/// Which slots are live, as a Fenwick tree: the position of a slot (live slots before it)
/// and the slot of a position in O(log n), kept in step as slots are emptied or added.
#[derive(Clone, Debug, Default)]
struct Ranks {
    /// 1-based: `tree[i]` counts the live slots among `i - lowbit(i) .. i` (0-based slots).
    tree: Vec<usize>,
}

fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl Ranks {
    fn build(live: impl ExactSizeIterator<Item = bool>) -> Ranks {
        let n = live.len();
        let mut tree = vec![0; n + 1];
        for (slot, l) in live.enumerate() {
            let i = slot + 1;
            tree[i] += usize::from(l);
            let up = i + lowbit(i);
            if up <= n {
                tree[up] += tree[i];
            }
        }
        Ranks { tree }
    }

    /// Live slots among the first `slots`.
    fn prefix(&self, slots: usize) -> usize {
        let mut i = slots;
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i];
            i -= lowbit(i);
        }
        sum
    }

    /// Marks a slot emptied.
    fn remove(&mut self, slot: usize) {
        let mut i = slot + 1;
        while i < self.tree.len() {
            self.tree[i] -= 1;
            i += lowbit(i);
        }
    }

    /// Marks an emptied slot filled again.
    fn restore(&mut self, slot: usize) {
        let mut i = slot + 1;
        while i < self.tree.len() {
            self.tree[i] += 1;
            i += lowbit(i);
        }
    }

    /// Adds a live slot at the end.
    fn push(&mut self) {
        let i = self.tree.len();
        let below = self.prefix(i - 1) - self.prefix(i - lowbit(i));
        self.tree.push(below + 1);
    }

    /// The slot of the live entry at `position`, if there are that many.
    fn slot_of(&self, position: usize) -> Option<usize> {
        let n = self.tree.len() - 1;
        // The largest prefix of slots holding at most `position` live ones.
        let mut at = 0;
        let mut left = position;
        let mut step = if n == 0 { 0 } else { 1 << n.ilog2() };
        while step > 0 {
            if at + step <= n && self.tree[at + step] <= left {
                at += step;
                left -= self.tree[at];
            }
            step >>= 1;
        }
        // Slot `at` (0-based) is the next live one, holding position `position`.
        (at < n).then_some(at)
    }
}

#[cfg(test)]
thread_local! {
    /// Entries visited by passes over the whole index (see [`scanned`]).
    static SCANNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts a pass over `n` entries, so tests can check that an edit of k refs makes one pass
/// over the index, not one per ref.
fn scanned(n: usize) {
    #[cfg(test)]
    SCANNED.with(|c| c.set(c.get() + n));
    let _ = n;
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

impl<'a> EntryKey<'a> {
    /// The name a person knows this entry by: its ref name, else its containerd name.
    pub fn display_name(&self) -> Option<&'a str> {
        self.ref_name.or(self.containerd_name)
    }
}

/// One descriptor of `index.json`, with its position.
#[derive(Clone, Debug)]
pub struct Entry {
    pub position: usize,
    pub descriptor: Descriptor,
}

/// Where an entry sits, for messages: `index.json manifests[3]`.
pub fn location(position: usize) -> String {
    format!("index.json manifests[{position}]")
}

impl Entry {
    /// Where this entry sits, for messages: `index.json manifests[3]`.
    pub fn location(&self) -> String {
        location(self.position)
    }

    /// The name a person knows this entry by: its ref name, else its containerd name.
    pub fn display_name(&self) -> Option<&str> {
        self.descriptor
            .ref_name()
            .or(self.descriptor.containerd_name())
    }
}

/// One image name on more than one entry of `index.json`, listed twice or spelled two ways
/// that docker reads as one (twins: `app:1.0` and `docker.io/library/app:1.0`; see
/// [`IndexDoc::duplicate_ref_names`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateName<'a> {
    /// The name of the first entry.
    pub name: &'a str,
    /// `(position, ref name, digest)` of each entry of that name or a twin of it, in order.
    pub entries: Vec<(usize, &'a str, &'a str)>,
}

impl DuplicateName<'_> {
    /// Whether the entries disagree on the digest (then the name is ambiguous).
    pub fn conflicting(&self) -> bool {
        self.entries.iter().any(|(_, _, d)| *d != self.entries[0].2)
    }

    /// Whether the entries spell the name in more than one way (twins).
    pub fn twins(&self) -> bool {
        self.entries.iter().any(|(_, n, _)| *n != self.name)
    }

    /// Whether `name` is one of the spellings.
    pub fn spells(&self, name: &str) -> bool {
        self.entries.iter().any(|(_, n, _)| *n == name)
    }

    /// `manifests[1] -> sha256:…, manifests[7] -> sha256:…`, for messages; with twins, each
    /// entry's name too (`manifests[1] "app:1.0" -> sha256:…`).
    pub fn describe(&self) -> String {
        let twins = self.twins();
        self.entries
            .iter()
            .map(|(p, n, d)| {
                if twins {
                    format!("manifests[{p}] {n:?} -> {d}")
                } else {
                    format!("manifests[{p}] -> {d}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
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
    /// An entry made by an edit (validated as a descriptor, which is not kept: a copy of
    /// 100,000 refs would hold 100,000 of them).
    fn from_value(v: &Value) -> Result<Item> {
        let descriptor =
            Descriptor::deserialize(v).map_err(|e| Error::Invalid(format!("descriptor: {e}")))?;
        let owned = |s: Option<&str>| s.map(|s| Text::Owned(s.into()));
        Ok(Item {
            raw: Text::Owned(raw(v).get().into()),
            digest: Text::Owned(descriptor.digest.as_str().into()),
            ref_name: owned(descriptor.ref_name()),
            containerd_name: owned(descriptor.containerd_name()),
            parsed: OnceLock::new(),
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
            slots: Vec::new(),
            removed: 0,
            lookup: OnceLock::new(),
            scans: Counter::default(),
            ranks: OnceLock::new(),
            had_manifests: true,
            changed: false,
            path: PathBuf::from("index.json"),
        }
    }

    /// Parses `index.json` bytes. The top level must be an object, `manifests` an array, null
    /// or absent, and every entry a descriptor; anything else is reported with its location.
    /// Each entry is validated, and only its text, digest and names are kept (see the module
    /// docs).
    pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<IndexDoc> {
        IndexDoc::parse_keeping(bytes, path, false)
    }

    /// Like [`IndexDoc::parse`], but validates each entry as a whole `Descriptor` and keeps
    /// it: the reference the borrowing parse is checked against (by the tests and the
    /// `index_edit` fuzz target). Not for use elsewhere: it costs ten times the memory.
    #[doc(hidden)]
    pub fn parse_whole(bytes: Vec<u8>, path: &Path) -> Result<IndexDoc> {
        IndexDoc::parse_keeping(bytes, path, true)
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
                items.reserve_exact(raws.len());
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
                    items.push(Some(item));
                }
            }
            let top: BTreeMap<String, Box<RawValue>> =
                top.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
            (top, had_manifests, items)
        };
        Ok(IndexDoc {
            source,
            top,
            slots: items,
            removed: 0,
            lookup: OnceLock::new(),
            scans: Counter::default(),
            ranks: OnceLock::new(),
            had_manifests,
            changed: false,
            path: path.to_path_buf(),
        })
    }

    /// The JSON text of an entry.
    fn text<'a>(&'a self, it: &'a Item) -> &'a str {
        it.raw.get(&self.source)
    }

    /// The full descriptor of an entry, parsed on first use and kept (its text was validated
    /// when the document was read, so this parse cannot fail).
    fn parsed<'a>(&'a self, it: &'a Item) -> &'a Descriptor {
        it.parsed.get_or_init(|| Box::new(self.parse_item(it)))
    }

    /// The full descriptor of an entry, parsed again unless it is kept already.
    fn parse_item(&self, it: &Item) -> Descriptor {
        match it.parsed.get() {
            Some(d) => (**d).clone(),
            None => serde_json::from_str(self.text(it)).unwrap_or_default(),
        }
    }

    /// The live entries in order, with their positions.
    fn live(&self) -> impl Iterator<Item = (usize, &Item)> {
        scanned(self.slots.len());
        self.slots.iter().flatten().enumerate()
    }

    /// The live slots counted (built on first use, once entries were removed).
    fn ranks(&self) -> &Ranks {
        self.ranks.get_or_init(|| {
            scanned(self.slots.len());
            Ranks::build(self.slots.iter().map(Option::is_some))
        })
    }

    /// The slot of the entry at a position.
    fn slot_of(&self, position: usize) -> Option<usize> {
        if self.removed == 0 {
            return (position < self.slots.len()).then_some(position);
        }
        self.ranks().slot_of(position)
    }

    /// The entry at a position.
    fn item(&self, position: usize) -> Option<&Item> {
        self.slot_of(position)
            .and_then(|s| self.slots.get(s))
            .and_then(Option::as_ref)
    }

    /// The positions of live slots.
    fn positions_of(&self, slots: &[usize]) -> Vec<usize> {
        if self.removed == 0 {
            return slots.to_vec();
        }
        slots.iter().map(|&s| self.ranks().prefix(s)).collect()
    }

    fn build_lookup(&self) -> Lookup {
        scanned(self.slots.len());
        let mut l = Lookup::default();
        l.names.reserve(self.slots.len() - self.removed);
        for (slot, it) in self.slots.iter().enumerate() {
            if let Some(it) = it {
                l.add(it.ref_name(&self.source), it.digest(&self.source), slot);
            }
        }
        l
    }

    /// The lookup of names and digests, unless the next lookup should rather be a pass over
    /// the entries (the first few).
    fn lookup(&self) -> Option<&Lookup> {
        if self.lookup.get().is_none() && self.scans.bump() < SCANS_BEFORE_LOOKUP {
            return None;
        }
        Some(self.lookup.get_or_init(|| self.build_lookup()))
    }

    /// The slots of the entries named `name`, ascending.
    fn slots_named(&self, name: &str) -> Vec<usize> {
        match self.lookup() {
            Some(l) => l
                .names
                .get(name_key(name).as_ref())
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|&s| {
                            self.slots[s]
                                .as_ref()
                                .is_some_and(|it| it.ref_name(&self.source) == Some(name))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            None => self.scan(|it| it.ref_name(&self.source) == Some(name)),
        }
    }

    /// The slots of the entries named `name` or a twin of it ([`same_name`]), ascending.
    fn slots_twins(&self, name: &str) -> Vec<usize> {
        match self.lookup() {
            Some(l) => l
                .names
                .get(name_key(name).as_ref())
                .cloned()
                .unwrap_or_default(),
            None => self.scan(|it| {
                it.ref_name(&self.source)
                    .is_some_and(|n| same_name(n, name))
            }),
        }
    }

    /// Whether an entry (an unnamed one, with `unnamed`) points at `digest`.
    fn lists_digest(&self, digest: &str, unnamed: bool) -> bool {
        match self.lookup() {
            Some(l) => l
                .digests
                .get(digest)
                .is_some_and(|&(all, no_name)| if unnamed { no_name > 0 } else { all > 0 }),
            None => !self
                .scan(|it| it.digest(&self.source) == digest && !(unnamed && it.ref_name.is_some()))
                .is_empty(),
        }
    }

    /// The slots of the entries `f` picks, by a pass over them all.
    fn scan(&self, f: impl Fn(&Item) -> bool) -> Vec<usize> {
        scanned(self.slots.len());
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, it)| it.as_ref().is_some_and(&f))
            .map(|(s, _)| s)
            .collect()
    }

    /// Appends an entry.
    fn push(&mut self, item: Item) {
        let slot = self.slots.len();
        if let Some(l) = self.lookup.get_mut() {
            l.add(item.ref_name(&self.source), item.digest(&self.source), slot);
        }
        if let Some(r) = self.ranks.get_mut() {
            r.push();
        }
        self.slots.push(Some(item));
    }

    /// Removes the entry in a slot (a no-op for an empty slot).
    fn take(&mut self, slot: usize) {
        let Some(item) = self.slots[slot].take() else {
            return;
        };
        self.removed += 1;
        if let Some(l) = self.lookup.get_mut() {
            l.remove(item.ref_name(&self.source), item.digest(&self.source), slot);
        }
        if let Some(r) = self.ranks.get_mut() {
            r.remove(slot);
        }
    }

    /// Puts an entry in a slot, replacing what is there.
    fn replace(&mut self, slot: usize, item: Item) {
        self.take(slot);
        if let Some(l) = self.lookup.get_mut() {
            l.add(item.ref_name(&self.source), item.digest(&self.source), slot);
        }
        if let Some(r) = self.ranks.get_mut() {
            r.restore(slot);
        }
        self.slots[slot] = Some(item);
        self.removed -= 1;
    }

    /// Whether the entry in a slot is `desc` (as JSON values).
    fn slot_is(&self, slot: usize, desc: &Value) -> bool {
        self.slots[slot].as_ref().is_some_and(|it| {
            serde_json::from_str::<Value>(self.text(it)).ok().as_ref() == Some(desc)
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an edit changed the document since it was read.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Every descriptor, in order, each parsed for the caller (nothing is kept: a reader
    /// that needs only the digests and names should use [`IndexDoc::keys`] or
    /// [`IndexDoc::views`]).
    pub fn entries(&self) -> Vec<Entry> {
        self.live()
            .map(|(position, it)| Entry {
                position,
                descriptor: self.parse_item(it),
            })
            .collect()
    }

    /// The names and digest of every entry, in order (no parsing).
    pub fn keys(&self) -> impl Iterator<Item = EntryKey<'_>> {
        self.live().map(|(position, it)| self.key_of(position, it))
    }

    fn key_of<'a>(&'a self, position: usize, it: &'a Item) -> EntryKey<'a> {
        EntryKey {
            position,
            ref_name: it.ref_name(&self.source),
            containerd_name: it.containerd_name.as_ref().map(|t| t.get(&self.source)),
            digest: it.digest(&self.source),
        }
    }

    /// Every entry read through [`DescriptorKeys`] (its strings borrowed from the text, its
    /// platform parsed; nothing is kept), in order, with its position: for readers that go
    /// through every entry once, such as `ls`.
    pub fn views(&self) -> impl Iterator<Item = (usize, DescriptorKeys<'_>)> {
        // Every entry was validated by this same parse when the document was read (or built
        // from a `Descriptor` by an edit), so it cannot fail.
        self.live()
            .map(|(p, it)| (p, serde_json::from_str(self.text(it)).unwrap_or_default()))
    }

    /// The roots of a walk of the content graph from every entry (`Graph::walk`), leaving out
    /// entries that would add nothing to it: one whose digest, size and media type repeat
    /// those of an earlier entry whose descriptor is valid (`json_limit` as the walk checks
    /// it) finds that blob already walked. Many refs usually share few images, so a walk of
    /// 100,000 refs holds a handful of parsed descriptors instead of 100,000. The one thing
    /// the left-out entries could add is a second report of the same problem: a declared size
    /// that disagrees with another declaration of the digest is reported for the first entry
    /// of each (digest, size, media type).
    pub fn walk_roots(&self, json_limit: u64) -> Vec<(String, Descriptor)> {
        type Key<'a> = (Cow<'a, str>, i64, Cow<'a, str>);
        let mut seen: HashMap<Key<'_>, bool> = HashMap::new();
        let mut roots = Vec::new();
        for (position, it) in self.live() {
            let k: DescriptorKeys = serde_json::from_str(self.text(it)).unwrap_or_default();
            let key = (k.digest.0, k.size, k.media_type.0);
            if seen.get(&key) == Some(&true) {
                continue;
            }
            let d = self.parse_item(it);
            let valid = d.validate(json_limit).is_ok();
            seen.entry(key).or_insert(valid);
            roots.push((location(position), d));
        }
        roots
    }

    /// The names and digest of the entry at `position`.
    pub fn key(&self, position: usize) -> Option<EntryKey<'_>> {
        self.item(position).map(|it| self.key_of(position, it))
    }

    /// The descriptor at `position`, parsed (and kept).
    pub fn descriptor(&self, position: usize) -> Option<&Descriptor> {
        self.item(position).map(|it| self.parsed(it))
    }

    /// Iterates `(position, descriptor)`, each parsed and kept (prefer [`IndexDoc::views`] for
    /// a pass over a large index).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Descriptor)> {
        self.live().map(|(i, it)| (i, self.parsed(it)))
    }

    /// Descriptors added or replaced by edits of this document, each parsed for the caller
    /// (nothing is kept).
    pub fn fresh(&self) -> impl Iterator<Item = (usize, Descriptor)> {
        self.live()
            .filter(|(_, it)| it.fresh)
            .map(|(i, it)| (i, self.parse_item(it)))
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.removed
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw JSON of the descriptor at `position`, as a value.
    pub fn raw_entry(&self, position: usize) -> Option<Value> {
        self.item(position)
            .and_then(|it| serde_json::from_str(self.text(it)).ok())
    }

    /// The positions of the entries whose ref name is `name` (after the first lookup by
    /// name, without a pass over the index).
    pub fn positions_named(&self, name: &str) -> Vec<usize> {
        self.positions_of(&self.slots_named(name))
    }

    /// The positions of the entries whose ref name is `name` or a twin of it (the same image
    /// name however spelled: [`same_name`]), in order.
    pub fn positions_twins(&self, name: &str) -> Vec<usize> {
        self.positions_of(&self.slots_twins(name))
    }

    /// Image names on more than one entry, listed twice or spelled as twins, by name key:
    /// tools disagree on which entry such a name means (ocitool calls it ambiguous when the
    /// digests differ; skopeo takes the first, a copy would keep the last).
    pub fn duplicate_ref_names(&self) -> Vec<DuplicateName<'_>> {
        let mut named: Vec<(Cow<'_, str>, usize, &str, &str)> = self
            .live()
            .filter_map(|(p, it)| {
                it.ref_name(&self.source)
                    .map(|n| (name_key(n), p, n, it.digest(&self.source)))
            })
            .collect();
        named.sort_unstable();
        named
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|g| g.len() > 1)
            .map(|g| DuplicateName {
                name: g[0].2,
                entries: g.iter().map(|&(_, p, n, d)| (p, n, d)).collect(),
            })
            .collect()
    }

    /// The bytes of the document: top-level members sorted, untouched descriptors as they were.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.live()
                .map(|(_, i)| self.text(i).len() + 1)
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
            for (i, it) in self.live() {
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
    /// `name` or a twin of it (`docker.io/library/app:1.0` for `app:1.0`: one image name
    /// however spelled) is replaced in place and any other entry of that name or its twins
    /// removed; otherwise the descriptor is appended. The entry is named `name` as given.
    /// Returns the digest the name pointed at before, if any (the digest of the entry of that
    /// very name, else of the first twin). Naming annotations of `target` are replaced by
    /// `name`.
    pub fn set_ref(&mut self, name: &str, target: &Value) -> Option<String> {
        let mut desc = target.clone();
        set_name(&mut desc, name);
        let slots = self.slots_twins(name);
        let previous = self.previous_digest(&slots, name);
        if slots.len() == 1 && self.slot_is(slots[0], &desc) {
            return previous;
        }
        let Ok(item) = Item::from_value(&desc) else {
            return previous;
        };
        self.install_named(&slots, item);
        previous
    }

    /// The digest of the entry of `slots` named `name`, else of the first.
    fn previous_digest(&self, slots: &[usize], name: &str) -> Option<String> {
        let named = |&&s: &&usize| {
            self.slots[s]
                .as_ref()
                .is_some_and(|it| it.ref_name(&self.source) == Some(name))
        };
        slots
            .iter()
            .find(named)
            .or(slots.first())
            .and_then(|&s| self.slots[s].as_ref())
            .map(|it| it.digest(&self.source).to_string())
    }

    /// Makes `item` the one entry of its name: it takes the place of the first of `slots`
    /// (the entries of that name) and the others are removed; with none, it is appended.
    fn install_named(&mut self, slots: &[usize], item: Item) {
        self.mark();
        match slots.split_first() {
            Some((&first, rest)) => {
                self.replace(first, item);
                for &s in rest {
                    self.take(s);
                }
            }
            None => self.push(item),
        }
    }

    /// Adds a descriptor exactly as given (every annotation kept): an entry of the same ref
    /// name or a twin of it is replaced, others of that name or its twins removed; an unnamed
    /// descriptor is added unless an unnamed entry for its digest exists.
    pub fn put_verbatim(&mut self, desc: &Value) {
        let Ok(item) = Item::from_value(desc) else {
            return;
        };
        match item.ref_name(&self.source).map(str::to_string) {
            Some(name) => {
                let slots = self.slots_twins(&name);
                if slots.len() == 1 && self.slot_is(slots[0], desc) {
                    return;
                }
                self.install_named(&slots, item);
            }
            None => {
                if !self.lists_digest(item.digest(&self.source), true) {
                    self.mark();
                    self.push(item);
                }
            }
        }
    }

    /// Removes every entry named `name`; returns how many.
    pub fn remove_ref(&mut self, name: &str) -> usize {
        let slots = self.slots_named(name);
        for &s in &slots {
            self.take(s);
        }
        if !slots.is_empty() {
            self.mark();
        }
        slots.len()
    }

    /// Removes the entries at these positions (in any order, repeats and positions past the
    /// end ignored); returns how many.
    pub fn remove_positions(&mut self, positions: &[usize]) -> usize {
        let mut slots: Vec<usize> = positions.iter().filter_map(|&p| self.slot_of(p)).collect();
        slots.sort_unstable();
        slots.dedup();
        for &s in &slots {
            self.take(s);
        }
        if !slots.is_empty() {
            self.mark();
        }
        slots.len()
    }

    /// Removes every entry pointing at `digest`, named or not; returns how many.
    pub fn remove_digest(&mut self, digest: &Digest) -> usize {
        let d = digest.to_string();
        let slots = self.scan(|it| it.digest(&self.source) == d);
        for &s in &slots {
            self.take(s);
        }
        if !slots.is_empty() {
            self.mark();
        }
        slots.len()
    }

    /// Adds an untagged entry for `target` unless some entry already points at its digest.
    /// Returns whether it was added.
    pub fn ensure_listed(&mut self, target: &Value) -> bool {
        if let Some(d) = target.get("digest").and_then(Value::as_str)
            && self.lists_digest(d, false)
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
        self.push(item);
        true
    }

    /// `ref.name` → digest for every named entry (the first entry wins for a duplicated name).
    pub fn ref_digests(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for (_, it) in self.live() {
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

    /// The parse keeps only names and digests; it must behave exactly like the whole parse.
    #[test]
    fn parse_behaves_like_the_whole_parse() {
        let src = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D}","size":1,"annotations":{{"org.opencontainers.image.ref.name":"a:1","x":"y"}},"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{D}","size":1,"annotations":{{"io.containerd.image.name":"docker.io/library/b:2"}}}},
            {{"mediaType": "m/x",  "digest":"{D}","size":1}}]}}"#
        );
        let full =
            IndexDoc::parse_whole(src.clone().into_bytes(), Path::new("index.json")).unwrap();
        let lazy = doc(&src);
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

    /// The parse reads entries through a borrowing twin of `Descriptor`: it must accept and
    /// refuse the same entries as the whole parse, and read the same names (escaped ones and
    /// repeated keys included).
    #[test]
    fn parse_accepts_and_refuses_what_the_whole_parse_does() {
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
            let full = IndexDoc::parse_whole(src.clone().into_bytes(), p);
            let lazy = IndexDoc::parse(src.into_bytes(), p);
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
                (f, l) => panic!("{e}: parse_whole {:?}, parse {:?}", f.is_ok(), l.is_ok()),
            }
        }
        // Seven are refused by both; `[]` and `{}` parse (serde reads a struct from an array
        // too) and are reported later, by `checked`, as descriptors without a digest.
        assert_eq!(refused, 7, "the refused entries are refused by both");
        let d = IndexDoc::parse(
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

    /// Entries visited by passes over the whole index since the thread started.
    fn scanned_so_far() -> usize {
        SCANNED.with(|c| c.get())
    }

    /// An edit of k refs on an index of n entries costs O(n + k): the index is gone through
    /// once (to build the lookup), not once per ref, whatever the edits (as `tag`, `untag`,
    /// `prune` and `copy` make them), and the result is what a model says.
    #[test]
    fn edits_of_many_refs_go_through_the_index_once() {
        let n = 5_000;
        let k = 1_000;
        let a = descriptor_value(media::OCI_MANIFEST, &Digest::parse(D).unwrap(), 3);
        let b = descriptor_value(media::OCI_MANIFEST, &Digest::sha256(b"b"), 4);
        let mut d = IndexDoc::empty();
        for i in 0..n {
            d.set_ref(&format!("app:{i}"), &a);
        }
        let mut d = doc(std::str::from_utf8(&d.to_bytes()).unwrap());
        let mut model = d.ref_digests();
        let before = scanned_so_far();
        for i in 0..k {
            // tag: a new name, and a moved one
            assert_eq!(d.set_ref(&format!("new:{i}"), &b), None);
            assert_eq!(d.set_ref(&format!("app:{i}"), &b).as_deref(), Some(D));
            // prune / untag by name
            assert_eq!(d.remove_ref(&format!("app:{}", n - 1 - i)), 1);
            // copy of an unnamed entry, already listed or not
            assert!(!d.ensure_listed(&a));
            let mut named = b.clone();
            named["annotations"] = serde_json::json!({REF_NAME: format!("v:{i}")});
            d.put_verbatim(&named);
            assert_eq!(d.positions_named(&format!("v:{i}")).len(), 1);
        }
        // untag by position, once for many
        let positions: Vec<usize> = d
            .keys()
            .filter(|k| k.ref_name.is_some_and(|n| n.starts_with("v:")))
            .map(|k| k.position)
            .collect();
        assert_eq!(d.remove_positions(&positions), k);
        // The first lookups by name are passes (SCANS_BEFORE_LOOKUP), then the lookup and the
        // ranks are built once, and the `keys` above is one more: a few passes, never one per
        // edit (6,000).
        let passes = scanned_so_far() - before;
        assert!(
            passes <= 10 * n,
            "{passes} entries visited for {} edits of an index of {n} entries",
            6 * k
        );
        for i in 0..k {
            model.insert(format!("new:{i}"), b["digest"].as_str().unwrap().into());
            model.insert(format!("app:{i}"), b["digest"].as_str().unwrap().into());
            model.remove(&format!("app:{}", n - 1 - i));
        }
        assert_eq!(d.ref_digests(), model);
        assert_eq!(d.len(), n);
        // What is written reads back the same, entries in the same order.
        let again = doc(std::str::from_utf8(&d.to_bytes()).unwrap());
        assert_eq!(
            again.keys().collect::<Vec<_>>(),
            d.keys().collect::<Vec<_>>()
        );
        assert_eq!(again.to_bytes(), d.to_bytes());
    }

    /// The counted live slots agree with counting them one by one, through any sequence of
    /// removals, restorations and appends.
    #[test]
    fn ranks_agree_with_counting() {
        let mut live = vec![true; 37];
        let mut r = Ranks::build(live.iter().copied());
        let mut x: u64 = 7;
        for _ in 0..2_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let slot = (x >> 33) as usize % live.len();
            match (x >> 20) % 3 {
                0 if live[slot] => {
                    live[slot] = false;
                    r.remove(slot);
                }
                1 if !live[slot] => {
                    live[slot] = true;
                    r.restore(slot);
                }
                2 => {
                    live.push(true);
                    r.push();
                }
                _ => {}
            }
            let slots: Vec<usize> = (0..live.len()).filter(|&s| live[s]).collect();
            for (p, &s) in slots.iter().enumerate() {
                assert_eq!(r.slot_of(p), Some(s));
                assert_eq!(r.prefix(s), p);
            }
            assert_eq!(r.slot_of(slots.len()), None);
            assert_eq!(r.prefix(live.len()), slots.len());
        }
    }

    #[test]
    fn duplicate_names_and_walk_roots() {
        let m = media::OCI_MANIFEST;
        let e = |name: &str, digest: &str, size: i64, mt: &str| {
            format!(
                r#"{{"mediaType":"{mt}","digest":"{digest}","size":{size},"annotations":{{"{REF_NAME}":"{name}"}}}}"#
            )
        };
        let other = Digest::sha256(b"x").to_string();
        let entries = [
            e("a:1", D, 3, m),
            e("a:2", D, 3, m),
            e("a:1", &other, 5, m),
            e("b:1", D, 4, m),
            e("b:1", D, 4, m),
            e("c:1", D, 3, "not a media type"),
            e("c:2", D, 3, "not a media type"),
            e("c:3", &other, 5, m),
        ];
        let d = doc(&format!(r#"{{"manifests":[{}]}}"#, entries.join(",")));
        let dups = d.duplicate_ref_names();
        let got: Vec<(&str, Vec<usize>, bool)> = dups
            .iter()
            .map(|x| {
                (
                    x.name,
                    x.entries.iter().map(|e| e.0).collect(),
                    x.conflicting(),
                )
            })
            .collect();
        assert_eq!(got, [("a:1", vec![0, 2], true), ("b:1", vec![3, 4], false)]);
        assert!(
            dups[0]
                .describe()
                .contains(&format!("manifests[2] -> {other}"))
        );
        // One root per (digest, size, media type) of valid descriptors; every invalid one is
        // kept, so each is reported where it is.
        let roots: Vec<String> = d.walk_roots(1 << 20).into_iter().map(|r| r.0).collect();
        assert_eq!(
            roots,
            [0, 2, 3, 5, 6].map(|p| format!("index.json manifests[{p}]"))
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
