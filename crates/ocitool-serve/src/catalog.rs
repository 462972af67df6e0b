//! What the served layouts hold, read once and read again when `index.json` changes.
//!
//! A [`View`] of one layout is built from its `index.json` and its content graph (every
//! manifest and index, verified, and the referrers of each, listed or not) under the
//! layout's shared read lock, which takes no lock file that does not exist (read-only media
//! work). A [`Snapshot`] puts the views' names together ([`crate::names::assemble`]).
//! Before each request the server compares every `index.json`'s identity (device, inode,
//! size, modification and change times) with the one its view was built from; a changed
//! layout is read again by the one request that finds it first while the others go on with
//! the previous snapshot, so a `tag` or `unpack` while serving is picked up without a
//! restart and nothing waits on a rebuild.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use ocitool_digest::Digest;
use ocitool_layout::graph::list_blobs;
use ocitool_layout::{Graph, Layout, WalkOptions};
use ocitool_spec::media::Kind;
use ocitool_spec::views::Checked;
use serde_json::{Map, Value};

use crate::errors::{Error, Result};
use crate::names::{self, Claim, Repository, Target};

/// The identity of an `index.json` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// A manifest or an index the layout holds.
#[derive(Clone, Debug)]
pub struct Document {
    pub media_type: String,
    pub size: u64,
}

/// A referrer, as the referrers API lists it.
#[derive(Clone, Debug)]
pub struct Referrer {
    pub artifact_type: Option<String>,
    /// Its descriptor: mediaType, digest, size, artifactType and annotations.
    pub descriptor: Value,
}

/// What one layout serves.
#[derive(Debug)]
pub struct View {
    stamp: Option<Stamp>,
    pub claims: Vec<Claim>,
    /// Every manifest and index the graph read and verified, by digest.
    pub documents: HashMap<Digest, Document>,
    /// Referrers by subject, in digest order.
    pub referrers: HashMap<Digest, Vec<Referrer>>,
    /// Refs that are not served, and why.
    pub notes: Vec<String>,
}

/// One served layout.
#[derive(Debug)]
pub struct Source {
    pub layout: Layout,
    /// The path as given, for messages.
    pub label: String,
    /// The directory's own name, which names the repository of bare tags.
    dir_name: Option<String>,
}

impl Source {
    pub fn open(path: &Path, options: ocitool_layout::Options) -> Result<Source> {
        let layout = Layout::open(path, options)?;
        let dir_name = std::fs::canonicalize(path)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()));
        Ok(Source {
            layout,
            label: path.display().to_string(),
            dir_name,
        })
    }

    /// Reads the layout: names, documents, referrers.
    fn view(&self) -> Result<View> {
        let layout = &self.layout;
        let _lock = layout.read_lock()?;
        let index_path = layout.index_path();
        let stamp = stamp(&index_path).ok();
        let index = layout.read_index()?;
        let options = WalkOptions {
            read_configs: false,
            check_presence: false,
        };
        let mut graph = Graph::walk_index(layout, &index, options);
        graph.add_unlisted_referrers(layout, &list_blobs(layout)?, options);
        let mut notes = Vec::new();
        let mut claims = Vec::new();
        for (position, d) in index.iter() {
            let mut skipped = Vec::new();
            let names = names::entry_names(
                d.ref_name(),
                d.containerd_name(),
                self.dir_name.as_deref(),
                &mut skipped,
            );
            notes.extend(skipped.into_iter().map(|s| format!("{}: {s}", self.label)));
            if names.is_empty() {
                continue;
            }
            let what = d.ref_name().or(d.containerd_name()).unwrap_or_default();
            let checked = match d.checked() {
                Ok(c) if matches!(d.kind(), Kind::Index | Kind::Manifest) => c,
                Ok(_) => {
                    notes.push(format!(
                        "{}: ref {what} is not served: it names a {}, not a manifest or an index",
                        self.label, d.media_type
                    ));
                    continue;
                }
                Err(e) => {
                    notes.push(format!(
                        "{}: ref {what} is not served: index.json manifests[{position}]: {e}",
                        self.label
                    ));
                    continue;
                }
            };
            for name in names {
                claims.push(Claim {
                    name,
                    position,
                    target: Target {
                        digest: checked.digest.clone(),
                        media_type: d.media_type.clone(),
                        size: checked.size,
                    },
                });
            }
        }
        let mut documents = HashMap::new();
        let mut referrers: HashMap<Digest, Vec<Referrer>> = HashMap::new();
        for (digest, node) in &graph.nodes {
            if !node.verified || !matches!(node.kind, Kind::Index | Kind::Manifest) {
                continue;
            }
            documents.insert(
                digest.clone(),
                Document {
                    media_type: node.media_type.clone(),
                    size: node.size,
                },
            );
            if let Some(subject) = &node.subject {
                let r = referrer(layout, digest, node);
                referrers.entry(subject.clone()).or_default().push(r);
            }
        }
        Ok(View {
            stamp,
            claims,
            documents,
            referrers,
            notes,
        })
    }
}

/// The descriptor of a referrer: its `artifactType` (else its config's media type, as the
/// distribution-spec asks) and its annotations, read from the document.
fn referrer(layout: &Layout, digest: &Digest, node: &ocitool_layout::graph::Node) -> Referrer {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Doc {
        #[serde(default)]
        annotations: Option<Map<String, Value>>,
    }
    let doc: Doc = layout
        .read_json_blob(&Checked {
            digest: digest.clone(),
            size: node.size,
        })
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let artifact_type = node.artifact_type.clone().or_else(|| {
        node.manifest
            .as_ref()
            .map(|m| m.config_media_type.clone())
            .filter(|t| !t.is_empty())
    });
    let mut d = Map::new();
    d.insert("mediaType".into(), Value::from(node.media_type.as_str()));
    d.insert("digest".into(), Value::from(digest.to_string()));
    d.insert("size".into(), Value::from(node.size));
    if let Some(t) = &artifact_type {
        d.insert("artifactType".into(), Value::from(t.as_str()));
    }
    if let Some(a) = doc.annotations.filter(|a| !a.is_empty()) {
        d.insert("annotations".into(), Value::Object(a));
    }
    Referrer {
        artifact_type,
        descriptor: Value::Object(d),
    }
}

/// The served state at one moment.
#[derive(Debug)]
pub struct Snapshot {
    pub views: Vec<Arc<View>>,
    pub repositories: BTreeMap<String, Repository>,
}

impl Snapshot {
    /// A repository by name; with `ns` (containerd's mirror parameter, the upstream
    /// registry), `<ns>/<name>` first.
    pub fn repository(&self, name: &str, ns: Option<&str>) -> Option<&Repository> {
        if let Some(ns) = ns.filter(|ns| !ns.is_empty()) {
            let ns = if ns == "index.docker.io" || ns == "registry-1.docker.io" {
                "docker.io"
            } else {
                ns
            };
            if let Some(r) = self.repositories.get(&format!("{ns}/{name}")) {
                return Some(r);
            }
        }
        self.repositories.get(name)
    }
}

/// Something to tell the operator, from a reload.
pub type Notify = dyn Fn(&str) + Send + Sync;

/// The served layouts and their current snapshot.
pub struct Catalog {
    sources: Vec<Source>,
    current: RwLock<Arc<Snapshot>>,
    /// Held by the request that rebuilds; the others do not wait for it.
    rebuilding: Mutex<()>,
    /// The stamps of `index.json` files that failed to read, so a broken file is reported
    /// once, not on every request.
    failed: Mutex<Vec<Option<Stamp>>>,
    notify: Box<Notify>,
}

impl Catalog {
    /// Opens and reads every layout; two layouts naming one repository is an error.
    pub fn open(
        paths: &[PathBuf],
        options: ocitool_layout::Options,
        notify: Box<Notify>,
    ) -> Result<(Catalog, Vec<String>)> {
        let sources = paths
            .iter()
            .map(|p| Source::open(p, options.clone()))
            .collect::<Result<Vec<_>>>()?;
        let views = sources
            .iter()
            .map(|s| s.view().map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let (snapshot, mut notes) = assemble(&sources, views, true)?;
        let mut all: Vec<String> = snapshot
            .views
            .iter()
            .flat_map(|v| v.notes.iter().cloned())
            .collect();
        all.append(&mut notes);
        let n = sources.len();
        Ok((
            Catalog {
                sources,
                current: RwLock::new(Arc::new(snapshot)),
                rebuilding: Mutex::new(()),
                failed: Mutex::new(vec![None; n]),
                notify,
            },
            all,
        ))
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// The snapshot, read again first if an `index.json` changed (see the module docs).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        let current = self.current.read().expect("not poisoned").clone();
        let stamps: Vec<Option<Stamp>> = self
            .sources
            .iter()
            .map(|s| stamp(&s.layout.index_path()).ok())
            .collect();
        let changed: Vec<usize> = (0..self.sources.len())
            .filter(|&i| stamps[i] != current.views[i].stamp)
            .collect();
        if changed.is_empty() {
            return current;
        }
        let Ok(_guard) = self.rebuilding.try_lock() else {
            return current;
        };
        // Another request may have rebuilt while this one looked.
        let current = self.current.read().expect("not poisoned").clone();
        let mut views = current.views.clone();
        let mut failed = self.failed.lock().expect("not poisoned");
        let mut rebuilt = false;
        for i in changed {
            if stamps[i] == views[i].stamp || (stamps[i].is_some() && stamps[i] == failed[i]) {
                continue;
            }
            match self.sources[i].view() {
                Ok(v) => {
                    for note in &v.notes {
                        if !views[i].notes.contains(note) {
                            (self.notify)(note);
                        }
                    }
                    views[i] = Arc::new(v);
                    failed[i] = None;
                    rebuilt = true;
                }
                Err(e) => {
                    failed[i] = stamps[i];
                    (self.notify)(&format!(
                        "{}: cannot read the layout again, serving it as it was: {e}",
                        self.sources[i].label
                    ));
                }
            }
        }
        if !rebuilt {
            return current;
        }
        let (snapshot, notes) = match assemble(&self.sources, views, false) {
            Ok(x) => x,
            Err(_) => return current,
        };
        for n in notes {
            (self.notify)(&n);
        }
        let snapshot = Arc::new(snapshot);
        *self.current.write().expect("not poisoned") = snapshot.clone();
        snapshot
    }
}

fn assemble(
    sources: &[Source],
    views: Vec<Arc<View>>,
    strict: bool,
) -> Result<(Snapshot, Vec<String>)> {
    let labels: Vec<String> = sources.iter().map(|s| s.label.clone()).collect();
    let claims: Vec<Vec<Claim>> = views.iter().map(|v| v.claims.clone()).collect();
    let (repositories, notes) =
        names::assemble(&claims, &labels, strict).map_err(|c| Error::Collision {
            repository: c.repository,
            first: labels[c.layouts.0].clone(),
            second: labels[c.layouts.1].clone(),
        })?;
    Ok((
        Snapshot {
            views,
            repositories,
        },
        notes,
    ))
}
