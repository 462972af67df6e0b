//! Writing a layout directory from blobs and `index.json` entries.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::image::{Blob, Image};

/// A layout to be written: blobs by digest, `index.json` descriptors in order, and extra
/// top-level members of `index.json`.
#[derive(Clone, Debug, Default)]
pub struct LayoutWriter {
    pub blobs: BTreeMap<String, Vec<u8>>,
    pub manifests: Vec<Value>,
    pub index_extra: Map<String, Value>,
}

impl LayoutWriter {
    pub fn new() -> LayoutWriter {
        LayoutWriter::default()
    }

    pub fn add_blob(&mut self, b: &Blob) -> &mut Self {
        self.blobs.insert(b.digest.to_string(), b.bytes.clone());
        self
    }

    pub fn add_image(&mut self, img: &Image) -> &mut Self {
        for b in img.blobs() {
            self.add_blob(b);
        }
        self
    }

    /// Lists `b` in `index.json` under `name` (none: untagged).
    pub fn list(&mut self, b: &Blob, name: Option<&str>) -> &mut Self {
        let mut d = b.descriptor();
        if let Some(n) = name {
            d["annotations"] = json!({ ocitool_spec::refname::REF_NAME: n });
        }
        self.manifests.push(d);
        self
    }

    /// Lists a raw descriptor in `index.json`.
    pub fn list_raw(&mut self, d: Value) -> &mut Self {
        self.manifests.push(d);
        self
    }

    /// The `index.json` bytes: sorted keys, two-space indentation.
    pub fn index_json(&self) -> Vec<u8> {
        let mut o = Map::new();
        o.insert("schemaVersion".into(), Value::from(2));
        o.insert(
            "mediaType".into(),
            Value::from(ocitool_spec::media::OCI_INDEX),
        );
        o.insert("manifests".into(), Value::Array(self.manifests.clone()));
        for (k, v) in &self.index_extra {
            o.insert(k.clone(), v.clone());
        }
        let mut out = serde_json::to_vec_pretty(&Value::Object(o)).expect("serializable");
        out.push(b'\n');
        out
    }

    /// Writes the layout into `dir` (created; must not hold another layout).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs)?;
        std::fs::write(
            dir.join("oci-layout"),
            b"{\"imageLayoutVersion\":\"1.0.0\"}\n",
        )?;
        std::fs::write(dir.join("index.json"), self.index_json())?;
        for (d, bytes) in &self.blobs {
            let hex = d.strip_prefix("sha256:").expect("fixtures use sha256");
            std::fs::write(blobs.join(hex), bytes)?;
        }
        Ok(())
    }

    /// Every file of the layout as `(relative path, bytes)`, sorted.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut v = vec![
            ("index.json".to_string(), self.index_json()),
            (
                "oci-layout".to_string(),
                b"{\"imageLayoutVersion\":\"1.0.0\"}\n".to_vec(),
            ),
        ];
        for (d, bytes) in &self.blobs {
            v.push((
                format!(
                    "blobs/sha256/{}",
                    d.strip_prefix("sha256:").expect("sha256")
                ),
                bytes.clone(),
            ));
        }
        v.sort();
        v
    }
}
