//! `index.json` as an editable document.
//!
//! The file is held as a JSON object so that every field ocitool does not know (vendor keys,
//! index annotations, unknown descriptor members) survives an edit. Output is canonical JSON
//! (sorted keys, compact), so the same edits give the same bytes; a file that an edit leaves
//! unchanged is not rewritten at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ocitool_digest::Digest;
use ocitool_spec::Descriptor;
use ocitool_spec::media;
use ocitool_spec::refname::{CONTAINERD_IMAGE_NAME, REF_NAME};
use ocitool_spec::tags::{POLICY_ANNOTATION, Policy};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::errors::{Error, Result};

/// Largest number of descriptors in `index.json` accepted by default.
pub const DEFAULT_MAX_DESCRIPTORS: usize = 1_000_000;

/// A parsed `index.json`.
#[derive(Clone, Debug)]
pub struct IndexDoc {
    obj: Map<String, Value>,
    path: PathBuf,
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

impl IndexDoc {
    /// The index of a new, empty layout.
    pub fn empty() -> IndexDoc {
        let mut obj = Map::new();
        obj.insert("schemaVersion".into(), Value::from(2));
        obj.insert("mediaType".into(), Value::from(media::OCI_INDEX));
        obj.insert("manifests".into(), Value::Array(Vec::new()));
        IndexDoc {
            obj,
            path: PathBuf::from("index.json"),
        }
    }

    /// Parses `index.json` bytes. The top level must be an object, `manifests` an array, null
    /// or absent, and every entry an object; anything else is reported with its location.
    pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<IndexDoc> {
        let json_err = |message: String, at: String| Error::Json {
            path: path.to_path_buf(),
            source: ocitool_spec::SpecError::Json {
                what: "index.json",
                path: at,
                message,
            },
        };
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| json_err(e.to_string(), String::new()))?;
        let Value::Object(obj) = value else {
            return Err(json_err(
                "the top level is not a JSON object".into(),
                String::new(),
            ));
        };
        match obj.get("manifests") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                if items.len() > DEFAULT_MAX_DESCRIPTORS {
                    return Err(json_err(
                        format!(
                            "{} descriptors exceed the limit of {DEFAULT_MAX_DESCRIPTORS}",
                            items.len()
                        ),
                        "manifests".into(),
                    ));
                }
                for (i, item) in items.iter().enumerate() {
                    if let Err(e) = Descriptor::deserialize(item) {
                        return Err(json_err(e.to_string(), format!("manifests[{i}]")));
                    }
                }
            }
            Some(_) => {
                return Err(json_err(
                    "\"manifests\" is not an array".into(),
                    "manifests".into(),
                ));
            }
        }
        Ok(IndexDoc {
            obj,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn items(&self) -> &[Value] {
        match self.obj.get("manifests") {
            Some(Value::Array(a)) => a,
            _ => &[],
        }
    }

    fn items_mut(&mut self) -> &mut Vec<Value> {
        let slot = self.obj.entry("manifests").or_insert(Value::Null);
        if !slot.is_array() {
            *slot = Value::Array(Vec::new());
        }
        match slot {
            Value::Array(a) => a,
            _ => unreachable!("just set to an array"),
        }
    }

    /// Every descriptor (already checked to parse when the document was read).
    pub fn entries(&self) -> Vec<Entry> {
        self.items()
            .iter()
            .enumerate()
            .filter_map(|(position, v)| {
                Descriptor::deserialize(v).ok().map(|descriptor| Entry {
                    position,
                    descriptor,
                })
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.items().len()
    }

    pub fn is_empty(&self) -> bool {
        self.items().is_empty()
    }

    /// The raw JSON of the descriptor at `position`.
    pub fn raw_entry(&self, position: usize) -> Option<&Value> {
        self.items().get(position)
    }

    /// The canonical bytes of the document.
    pub fn to_bytes(&self) -> Vec<u8> {
        ocitool_spec::canonical::to_vec(&self.obj)
    }

    /// Points `name` at `target` (a descriptor as raw JSON): the first entry already named
    /// `name` is replaced in place and any other entry of that name removed; otherwise the
    /// descriptor is appended. Returns the digest the name pointed at before, if any.
    /// Naming annotations of `target` are replaced by `name`.
    pub fn set_ref(&mut self, name: &str, target: &Value) -> Option<String> {
        let mut desc = target.clone();
        set_name(&mut desc, name);
        let items = self.items_mut();
        let mut previous = None;
        let mut first = None;
        let mut i = 0;
        while i < items.len() {
            if ref_name_of(&items[i]) == Some(name) {
                if first.is_none() {
                    previous = items[i]
                        .get("digest")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    first = Some(i);
                    i += 1;
                } else {
                    items.remove(i);
                }
            } else {
                i += 1;
            }
        }
        match first {
            Some(i) => items[i] = desc,
            None => items.push(desc),
        }
        previous
    }

    /// Adds a descriptor exactly as given (every annotation kept): an entry of the same ref
    /// name is replaced, others of that name removed; an unnamed descriptor is added unless an
    /// unnamed entry for its digest exists.
    pub fn put_verbatim(&mut self, desc: &Value) {
        match ref_name_of(desc).map(str::to_string) {
            Some(name) => {
                let items = self.items_mut();
                let mut first = None;
                let mut i = 0;
                while i < items.len() {
                    if ref_name_of(&items[i]) == Some(name.as_str()) {
                        if first.is_none() {
                            first = Some(i);
                            i += 1;
                        } else {
                            items.remove(i);
                        }
                    } else {
                        i += 1;
                    }
                }
                match first {
                    Some(i) => items[i] = desc.clone(),
                    None => items.push(desc.clone()),
                }
            }
            None => {
                let digest = desc.get("digest");
                let items = self.items_mut();
                if !items
                    .iter()
                    .any(|v| ref_name_of(v).is_none() && v.get("digest") == digest)
                {
                    items.push(desc.clone());
                }
            }
        }
    }

    /// Removes every entry named `name`; returns how many.
    pub fn remove_ref(&mut self, name: &str) -> usize {
        let items = self.items_mut();
        let before = items.len();
        items.retain(|v| ref_name_of(v) != Some(name));
        before - items.len()
    }

    /// Removes the entries at these positions; returns how many.
    pub fn remove_positions(&mut self, positions: &[usize]) -> usize {
        let items = self.items_mut();
        let before = items.len();
        let mut i = 0;
        items.retain(|_| {
            let keep = !positions.contains(&i);
            i += 1;
            keep
        });
        before - items.len()
    }

    /// Removes every entry pointing at `digest`, named or not; returns how many.
    pub fn remove_digest(&mut self, digest: &Digest) -> usize {
        let d = digest.to_string();
        let items = self.items_mut();
        let before = items.len();
        items.retain(|v| v.get("digest").and_then(Value::as_str) != Some(d.as_str()));
        before - items.len()
    }

    /// Adds an untagged entry for `target` unless some entry already points at its digest.
    /// Returns whether it was added.
    pub fn ensure_listed(&mut self, target: &Value) -> bool {
        let digest = target.get("digest").and_then(Value::as_str);
        if self
            .items()
            .iter()
            .any(|v| v.get("digest").and_then(Value::as_str) == digest)
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
        self.items_mut().push(desc);
        true
    }

    /// `ref.name` → digest for every named entry (the first entry wins for a duplicated name).
    pub fn ref_digests(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for v in self.items() {
            if let (Some(n), Some(d)) = (ref_name_of(v), v.get("digest").and_then(Value::as_str)) {
                m.entry(n.to_string()).or_insert_with(|| d.to_string());
            }
        }
        m
    }

    /// The tag protection policy stored on the index.
    pub fn policy(&self) -> Result<Policy> {
        let v = self
            .annotations()
            .and_then(|a| a.get(POLICY_ANNOTATION))
            .and_then(Value::as_str);
        Policy::from_annotation(v).map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Stores the policy on the index (an empty policy removes the annotation).
    pub fn set_policy(&mut self, p: &Policy) {
        self.set_annotation(POLICY_ANNOTATION, p.to_annotation().as_deref());
    }

    /// The top-level annotations of the index.
    pub fn annotations(&self) -> Option<&Map<String, Value>> {
        self.obj.get("annotations").and_then(Value::as_object)
    }

    /// Sets or removes a top-level annotation of the index.
    pub fn set_annotation(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => {
                let slot = self
                    .obj
                    .entry("annotations")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(m) = slot {
                    m.insert(key.to_string(), Value::from(v));
                }
            }
            None => {
                if let Some(Value::Object(m)) = self.obj.get_mut("annotations") {
                    m.remove(key);
                    if m.is_empty() {
                        self.obj.remove("annotations");
                    }
                }
            }
        }
    }
}

fn ref_name_of(v: &Value) -> Option<&str> {
    v.get("annotations")?.get(REF_NAME)?.as_str()
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
