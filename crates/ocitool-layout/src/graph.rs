//! The content graph of a layout: from `index.json` through nested indexes, manifests,
//! configs and layers, plus OCI 1.1 referrers (documents whose `subject` is in the graph).
//!
//! Every JSON document is read verified (digest and size) before it is parsed, so a document
//! cannot point at itself or at an ancestor: such a cycle would need a hash collision, and a
//! tampered blob fails verification first. The walk also keeps a visited set and caps the
//! nesting depth, so it terminates whatever the input.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ocitool_compress::Compression;
use ocitool_digest::{Algorithm, Digest};
use ocitool_spec::media::{self, Kind};
use ocitool_spec::views::{self, Checked};
use ocitool_spec::{ConfigView, Descriptor, Document, Platform};

use crate::errors::{Error, Result};
use crate::layout::Layout;

/// Deepest nesting of indexes followed.
pub const MAX_DEPTH: usize = 32;

/// Largest blob considered when looking for unlisted referrers.
const REFERRER_SCAN_LIMIT: u64 = 4 << 20;

/// A problem found while walking or verifying.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The blob concerned, when there is one.
    pub digest: Option<Digest>,
    /// The file concerned, relative to the layout root (`index.json`, `blobs/sha256/…`).
    pub path: String,
    /// What is wrong, with the location of the descriptor where that helps.
    pub problem: String,
}

/// Whether a blob is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Present,
    /// Absent where the spec allows it: a child of an index (a sparse, single-platform copy
    /// of a multi-platform image), or a non-distributable layer with URLs.
    AbsentAllowed,
    /// Absent where the image needs it.
    Missing,
    /// Something other than a regular file is at its path.
    NotAFile,
}

/// A blob in the graph.
#[derive(Clone, Debug)]
pub struct Node {
    pub size: u64,
    pub media_type: String,
    pub kind: Kind,
    pub presence: Presence,
    /// Whether the walk read this document and found its digest and size right.
    pub verified: bool,
    /// Blobs this one references (manifests of an index; config and layers of a manifest).
    pub children: Vec<Digest>,
    /// The `subject` of an index or manifest.
    pub subject: Option<Digest>,
    /// For a manifest: its config and layers, in order.
    pub manifest: Option<ManifestInfo>,
    /// For a config: the parts ocitool uses.
    pub config: Option<ConfigInfo>,
    /// For an index: the platform of each child, in order.
    pub platforms: Vec<(Digest, Option<Platform>)>,
    pub artifact_type: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ManifestInfo {
    pub config: Checked,
    pub config_media_type: String,
    pub layers: Vec<(Checked, Kind)>,
}

#[derive(Clone, Debug)]
pub struct ConfigInfo {
    pub platform: Platform,
    pub diff_ids: Vec<String>,
    pub created: Option<String>,
}

/// The graph reachable from a set of roots.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: BTreeMap<Digest, Node>,
    pub problems: Vec<Problem>,
    /// Documents found only because their `subject` is in the graph, not listed anywhere.
    pub unlisted_referrers: Vec<Digest>,
}

/// What the walk reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct WalkOptions {
    /// Read and parse image configs (for diff_ids and platforms).
    pub read_configs: bool,
    /// Stat every leaf blob to record its presence.
    pub check_presence: bool,
}

impl Graph {
    /// Walks from `roots` (descriptors with a location for messages).
    pub fn walk(layout: &Layout, roots: &[(String, Descriptor)], options: WalkOptions) -> Graph {
        let mut g = Graph::default();
        for (location, d) in roots {
            g.visit(layout, d, location, 0, false, options);
        }
        g
    }

    /// Walks from every descriptor of `index.json`.
    pub fn walk_index(
        layout: &Layout,
        index: &crate::index::IndexDoc,
        options: WalkOptions,
    ) -> Graph {
        let roots: Vec<_> = index
            .entries()
            .into_iter()
            .map(|e| (e.location(), e.descriptor))
            .collect();
        Graph::walk(layout, &roots, options)
    }

    fn problem(&mut self, digest: Option<&Digest>, path: String, problem: String) {
        self.problems.push(Problem {
            digest: digest.cloned(),
            path,
            problem,
        });
    }

    fn visit(
        &mut self,
        layout: &Layout,
        d: &Descriptor,
        location: &str,
        depth: usize,
        in_index: bool,
        options: WalkOptions,
    ) {
        let checked = match d.validate(layout.options().json_limit) {
            Ok(c) => c,
            Err(e) => {
                let file = location.split(' ').next().unwrap_or(location).to_string();
                let digest = Digest::parse(&d.digest).ok();
                self.problem(digest.as_ref(), file, format!("{location}: {e}"));
                return;
            }
        };
        let digest = checked.digest.clone();
        if let Some(existing) = self.nodes.get(&digest) {
            if existing.size != checked.size {
                let (es, path) = (existing.size, Layout::blob_rel(&digest));
                self.problem(
                    Some(&digest),
                    path,
                    format!(
                        "{location}: declared size {} differs from size {es} declared elsewhere",
                        checked.size
                    ),
                );
            }
            return;
        }
        let kind = d.kind();
        let mut node = Node {
            size: checked.size,
            media_type: d.media_type.clone(),
            kind,
            presence: Presence::Present,
            verified: false,
            children: Vec::new(),
            subject: None,
            manifest: None,
            config: None,
            platforms: Vec::new(),
            artifact_type: d.artifact_type.clone(),
        };
        let is_doc = matches!(kind, Kind::Index | Kind::Manifest)
            || (kind == Kind::Config && options.read_configs);
        if !is_doc {
            if options.check_presence {
                node.presence = self.presence(layout, &checked, d, location, in_index);
            }
            self.nodes.insert(digest, node);
            return;
        }
        let bytes = match layout.read_json_blob(&checked) {
            Ok(b) => b,
            Err(Error::MissingBlob { .. }) => {
                node.presence = if in_index {
                    Presence::AbsentAllowed
                } else {
                    Presence::Missing
                };
                if !in_index {
                    self.problem(
                        Some(&digest),
                        Layout::blob_rel(&digest),
                        format!("{location}: blob is missing"),
                    );
                }
                self.nodes.insert(digest, node);
                return;
            }
            Err(e) => {
                if matches!(e, Error::NotRegularFile { .. }) {
                    node.presence = Presence::NotAFile;
                }
                self.problem(
                    Some(&digest),
                    Layout::blob_rel(&digest),
                    format!("{location}: {}", strip_blob_prefix(&e)),
                );
                self.nodes.insert(digest, node);
                return;
            }
        };
        node.verified = true;
        let here = format!("blob {}", digest);
        match kind {
            Kind::Config => {
                match views::parse::<ConfigView>(&bytes, "image config") {
                    Ok(c) => {
                        node.config = Some(ConfigInfo {
                            platform: c.platform(),
                            created: c.created.clone(),
                            diff_ids: c.rootfs.diff_ids,
                        })
                    }
                    Err(e) => self.problem(
                        Some(&digest),
                        Layout::blob_rel(&digest),
                        format!("{location}: {e}"),
                    ),
                }
                self.nodes.insert(digest, node);
            }
            Kind::Index | Kind::Manifest => {
                let doc = match Document::parse(&bytes, Some(&d.media_type)) {
                    Ok(doc) => doc,
                    Err(e) => {
                        self.problem(
                            Some(&digest),
                            Layout::blob_rel(&digest),
                            format!("{location}: {e}"),
                        );
                        self.nodes.insert(digest, node);
                        return;
                    }
                };
                if let Some(own) = doc.media_type()
                    && !own.is_empty()
                    && own != d.media_type
                {
                    self.problem(
                        Some(&digest),
                        Layout::blob_rel(&digest),
                        format!(
                            "{location}: descriptor says {} but the document says {own}",
                            d.media_type
                        ),
                    );
                }
                if let Some(s) = doc.subject().and_then(|s| s.checked().ok()) {
                    node.subject = Some(s.digest);
                }
                node.artifact_type = node
                    .artifact_type
                    .or(doc.artifact_type().map(str::to_string));
                // Insert before descending so a (hash-colliding) cycle stops here.
                match doc {
                    Document::Index(ix) => {
                        if depth >= MAX_DEPTH {
                            self.problem(
                                Some(&digest),
                                Layout::blob_rel(&digest),
                                format!("{location}: indexes nested deeper than {MAX_DEPTH}"),
                            );
                            self.nodes.insert(digest, node);
                            return;
                        }
                        for c in &ix.manifests {
                            if let Ok(ck) = c.checked() {
                                node.children.push(ck.digest.clone());
                                node.platforms.push((ck.digest, c.platform.clone()));
                            }
                        }
                        self.nodes.insert(digest.clone(), node);
                        for (i, c) in ix.manifests.iter().enumerate() {
                            self.visit(
                                layout,
                                c,
                                &format!("{here} manifests[{i}]"),
                                depth + 1,
                                true,
                                options,
                            );
                        }
                    }
                    Document::Manifest(m) => {
                        let mut info = None;
                        if let Ok(cc) = m.config.checked() {
                            node.children.push(cc.digest.clone());
                            let layers = m
                                .layers
                                .iter()
                                .filter_map(|l| l.checked().ok().map(|c| (c, l.kind())))
                                .collect::<Vec<_>>();
                            node.children
                                .extend(layers.iter().map(|(c, _)| c.digest.clone()));
                            info = Some(ManifestInfo {
                                config: cc,
                                config_media_type: m.config.media_type.clone(),
                                layers,
                            });
                        } else {
                            for l in &m.layers {
                                if let Ok(c) = l.checked() {
                                    node.children.push(c.digest);
                                }
                            }
                        }
                        node.manifest = info;
                        self.nodes.insert(digest.clone(), node);
                        self.visit(
                            layout,
                            &m.config,
                            &format!("{here} config"),
                            depth + 1,
                            false,
                            options,
                        );
                        for (i, l) in m.layers.iter().enumerate() {
                            self.visit(
                                layout,
                                l,
                                &format!("{here} layers[{i}]"),
                                depth + 1,
                                false,
                                options,
                            );
                        }
                    }
                }
            }
            _ => {
                self.nodes.insert(digest, node);
            }
        }
    }

    fn presence(
        &mut self,
        layout: &Layout,
        c: &Checked,
        d: &Descriptor,
        location: &str,
        in_index: bool,
    ) -> Presence {
        let rel = Layout::blob_rel(&c.digest);
        match layout.stat_blob(&c.digest) {
            Ok(Some(size)) => {
                if size != c.size {
                    self.problem(
                        Some(&c.digest),
                        rel,
                        format!(
                            "{location}: declared size {} but the blob file has {size} bytes",
                            c.size
                        ),
                    );
                }
                Presence::Present
            }
            Ok(None) => {
                let foreign = matches!(
                    d.kind(),
                    Kind::Layer {
                        distributable: false,
                        ..
                    }
                ) && !d.urls.is_empty();
                if in_index || foreign {
                    Presence::AbsentAllowed
                } else {
                    self.problem(Some(&c.digest), rel, format!("{location}: blob is missing"));
                    Presence::Missing
                }
            }
            Err(e) => {
                self.problem(
                    Some(&c.digest),
                    rel,
                    format!("{location}: {}", strip_blob_prefix(&e)),
                );
                Presence::NotAFile
            }
        }
    }

    /// Adds documents that are not reachable but whose `subject` is (signatures, SBOMs and
    /// attestations stored without an `index.json` entry), repeating until nothing changes.
    /// Only blobs named in `candidates` and no larger than a few MiB are read.
    pub fn add_unlisted_referrers(
        &mut self,
        layout: &Layout,
        candidates: &[(Digest, u64)],
        options: WalkOptions,
    ) {
        let mut pending: Vec<(Digest, u64, Digest, String)> = Vec::new();
        for (digest, size) in candidates {
            if self.nodes.contains_key(digest) || *size > REFERRER_SCAN_LIMIT || *size == 0 {
                continue;
            }
            let Ok(bytes) = layout.read_json_blob(&Checked {
                digest: digest.clone(),
                size: *size,
            }) else {
                continue;
            };
            if bytes.first() != Some(&b'{') {
                continue;
            }
            let Ok(kind) = Document::sniff(&bytes) else {
                continue;
            };
            let Ok(doc) = Document::parse(&bytes, None) else {
                continue;
            };
            let Some(subject) = doc.subject().and_then(|s| s.checked().ok()) else {
                continue;
            };
            let mt = doc.media_type().map(str::to_string).unwrap_or_else(|| {
                if kind == Kind::Index {
                    media::OCI_INDEX
                } else {
                    media::OCI_MANIFEST
                }
                .to_string()
            });
            pending.push((digest.clone(), *size, subject.digest, mt));
        }
        loop {
            let mut progressed = false;
            let mut rest = Vec::new();
            for (digest, size, subject, mt) in pending {
                if self.nodes.contains_key(&subject) {
                    let d = Descriptor {
                        media_type: mt,
                        digest: digest.to_string(),
                        size: size as i64,
                        ..Default::default()
                    };
                    self.visit(
                        layout,
                        &d,
                        &format!("referrer of {subject}"),
                        0,
                        false,
                        options,
                    );
                    self.unlisted_referrers.push(digest);
                    progressed = true;
                } else {
                    rest.push((digest, size, subject, mt));
                }
            }
            pending = rest;
            if !progressed || pending.is_empty() {
                break;
            }
        }
    }

    /// Every blob reachable from `roots`, following children and, with `referrers`, every
    /// document in the graph whose subject is reachable.
    pub fn closure(&self, roots: &[Digest], referrers: bool) -> BTreeSet<Digest> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<Digest> = roots.iter().cloned().collect();
        let by_subject: BTreeMap<&Digest, Vec<&Digest>> = if referrers {
            let mut m: BTreeMap<&Digest, Vec<&Digest>> = BTreeMap::new();
            for (d, n) in &self.nodes {
                if let Some(s) = &n.subject {
                    m.entry(s).or_default().push(d);
                }
            }
            m
        } else {
            BTreeMap::new()
        };
        while let Some(d) = queue.pop_front() {
            if !seen.insert(d.clone()) {
                continue;
            }
            if let Some(n) = self.nodes.get(&d) {
                queue.extend(n.children.iter().cloned());
            }
            if let Some(refs) = by_subject.get(&d) {
                queue.extend(refs.iter().map(|r| (*r).clone()));
            }
        }
        seen
    }

    /// Sum of the declared sizes of a set of blobs.
    pub fn total_size<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) -> u64 {
        digests
            .into_iter()
            .filter_map(|d| self.nodes.get(d))
            .map(|n| n.size)
            .sum()
    }

    /// When an image was created: its config's `created`, or for an index the newest of its
    /// platforms' (RFC 3339 strings compare in time order).
    pub fn created_of(&self, digest: &Digest) -> Option<String> {
        let n = self.nodes.get(digest)?;
        match n.kind {
            Kind::Manifest => n
                .manifest
                .as_ref()
                .and_then(|m| self.nodes.get(&m.config.digest))
                .and_then(|c| c.config.as_ref())
                .and_then(|c| c.created.clone()),
            Kind::Index => n.children.iter().filter_map(|c| self.created_of(c)).max(),
            _ => None,
        }
    }

    /// The platforms of an image: a manifest's config platform, or an index's platform
    /// descriptors (attestation entries `unknown/unknown` left out).
    pub fn platforms_of(&self, digest: &Digest) -> Vec<Platform> {
        let Some(n) = self.nodes.get(digest) else {
            return Vec::new();
        };
        match n.kind {
            Kind::Manifest => n
                .manifest
                .as_ref()
                .and_then(|m| self.nodes.get(&m.config.digest))
                .and_then(|c| c.config.as_ref())
                .map(|c| vec![c.platform.clone()])
                .unwrap_or_default(),
            Kind::Index => {
                let mut out: Vec<Platform> = Vec::new();
                for (child, p) in &n.platforms {
                    match p {
                        Some(p) if p.os != "unknown" && !p.os.is_empty() => {
                            if !out.contains(p) {
                                out.push(p.clone());
                            }
                        }
                        Some(_) => {}
                        None => {
                            for p in self.platforms_of(child) {
                                if !out.contains(&p) {
                                    out.push(p);
                                }
                            }
                        }
                    }
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

/// Every blob file of every supported algorithm, as `(digest, size)`; files that are not
/// regular files or whose names are not digests are left out.
pub fn list_blobs(layout: &Layout) -> Result<Vec<(Digest, u64)>> {
    let mut out = Vec::new();
    for alg in Algorithm::ALL {
        for e in layout.list_blob_dir(alg)? {
            let Some(d) = e.digest else { continue };
            if e.file_type != "regular file" {
                continue;
            }
            let size = std::fs::symlink_metadata(&e.path)
                .map(|m| m.len())
                .unwrap_or(0);
            out.push((d, size));
        }
    }
    Ok(out)
}

/// Error text without a leading "blob <digest>" (the problem line names the digest already).
fn strip_blob_prefix(e: &Error) -> String {
    match e {
        Error::Verify { source, .. } => source.to_string(),
        Error::NotRegularFile { kind, .. } => format!("is a {kind}, not a regular file"),
        Error::JsonTooLarge { size, limit, .. } => {
            format!(
                "{size} bytes exceed the limit of {limit} bytes for JSON metadata (raise it with --max-json-size)"
            )
        }
        other => other.to_string(),
    }
}

/// The layer compression of a node, if it is a layer ocitool can decompress.
pub fn layer_compression(kind: Kind) -> Option<Compression> {
    match kind {
        Kind::Layer { compression, .. } => Some(compression),
        _ => None,
    }
}
