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
use crate::source::BlobSource;

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

/// What a descriptor makes of the blob it names, which decides how the walk reads it. A blob
/// can have several roles (OCI 1.1's empty `{}` is every artifact's config, and a hostile
/// `index.json` can name an image's manifest as `application/octet-stream`): the walk reads
/// it in each, so no first sighting decides what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Index,
    Manifest,
    Config,
    Layer,
    Other,
}

impl Role {
    pub fn of(kind: Kind) -> Role {
        match kind {
            Kind::Index => Role::Index,
            Kind::Manifest => Role::Manifest,
            Kind::Config => Role::Config,
            Kind::Layer { .. } => Role::Layer,
            Kind::Other => Role::Other,
        }
    }
}

/// A blob in the graph.
#[derive(Clone, Debug)]
pub struct Node {
    pub size: u64,
    /// The media type of its strongest role (index, manifest, config, layer, other).
    pub media_type: String,
    /// The kind of its strongest role.
    pub kind: Kind,
    /// Every role some descriptor gives it.
    pub roles: Vec<Role>,
    /// The worst presence any descriptor found (missing where one needs it beats absent
    /// where another allows it).
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
    /// The compression the first layer descriptor of it declared (any role may come first:
    /// a blob named as a layer twice with two compressions is a problem in every order).
    first_layer_compression: Option<Compression>,
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
    /// (blob, media type as the walk reads it, declared size, reached only as a child of an
    /// index) already walked. Media types ocitool does not read are all the same to it (""),
    /// so however many a hostile index.json invents, a blob is read at most once per known
    /// media type and size.
    visited: BTreeSet<(Digest, String, u64, bool)>,
}

impl Node {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

impl Presence {
    fn severity(self) -> u8 {
        match self {
            Presence::Present => 0,
            Presence::AbsentAllowed => 1,
            Presence::Missing => 2,
            Presence::NotAFile => 3,
        }
    }
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
    pub fn walk(
        layout: &dyn BlobSource,
        roots: &[(String, Descriptor)],
        options: WalkOptions,
    ) -> Graph {
        let mut g = Graph::default();
        for (location, d) in roots {
            g.visit(layout, d, location, 0, false, options);
        }
        g
    }

    /// Walks from every descriptor of `index.json`.
    pub fn walk_index(
        layout: &dyn BlobSource,
        index: &crate::index::IndexDoc,
        options: WalkOptions,
    ) -> Graph {
        Graph::walk(layout, &index.walk_roots(layout.json_limit()), options)
    }

    fn problem(&mut self, digest: Option<&Digest>, path: String, problem: String) {
        self.problems.push(Problem {
            digest: digest.cloned(),
            path,
            problem,
        });
    }

    /// Walks one descriptor: records the blob in the role the descriptor gives it, reads it
    /// if that role is a document, and descends. A blob already walked in this role is not
    /// read again; one reached in a new role (or, having been reached only as a child of an
    /// index, now where it must be present) is.
    fn visit(
        &mut self,
        layout: &dyn BlobSource,
        d: &Descriptor,
        location: &str,
        depth: usize,
        in_index: bool,
        options: WalkOptions,
    ) {
        let Some(checked) = self.checked_descriptor(layout, d, location) else {
            return;
        };
        let kind = d.kind();
        let role = Role::of(kind);
        let digest = checked.digest.clone();
        let size = checked.size;
        let as_read = if role == Role::Other {
            String::new()
        } else {
            d.media_type.clone()
        };
        if self
            .visited
            .contains(&(digest.clone(), as_read.clone(), size, false))
            || !self
                .visited
                .insert((digest.clone(), as_read.clone(), size, in_index))
        {
            return;
        }
        // Walked before as this, but only as a child of an index (where it may be absent):
        // now it must be present; what it references was walked already.
        let again = !in_index
            && self
                .visited
                .contains(&(digest.clone(), as_read, size, true));
        self.record(&checked, d, kind, location);
        match role {
            Role::Index | Role::Manifest if again => {
                self.read_blob_json(layout, &checked, location, false);
            }
            Role::Index | Role::Manifest => {
                self.read_document(layout, &checked, d, location, depth, in_index, options)
            }
            Role::Config if options.read_configs => {
                self.read_config(layout, &checked, location, in_index)
            }
            _ if options.check_presence => {
                let p = self.presence(layout, &checked, d, location, in_index);
                self.set_presence(&digest, p);
            }
            _ => {}
        }
    }

    /// The digest and size of a descriptor, or a problem.
    fn checked_descriptor(
        &mut self,
        layout: &dyn BlobSource,
        d: &Descriptor,
        location: &str,
    ) -> Option<Checked> {
        match d.validate(layout.json_limit()) {
            Ok(c) => Some(c),
            Err(e) => {
                let file = location.split(' ').next().unwrap_or(location).to_string();
                let digest = Digest::parse(&d.digest).ok();
                self.problem(digest.as_ref(), file, format!("{location}: {e}"));
                None
            }
        }
    }

    /// Adds the blob, or this role to it. A descriptor that contradicts another (a different
    /// size, another layer compression) is a problem, but the walk goes on with what it says:
    /// a wrong descriptor met first must not hide what the right one reaches.
    fn record(&mut self, c: &Checked, d: &Descriptor, kind: Kind, location: &str) {
        let role = Role::of(kind);
        let Some(node) = self.nodes.get_mut(&c.digest) else {
            self.nodes.insert(
                c.digest.clone(),
                Node {
                    size: c.size,
                    media_type: d.media_type.clone(),
                    kind,
                    roles: vec![role],
                    presence: Presence::Present,
                    verified: false,
                    children: Vec::new(),
                    subject: None,
                    manifest: None,
                    config: None,
                    platforms: Vec::new(),
                    artifact_type: d.artifact_type.clone(),
                    first_layer_compression: layer_compression(kind),
                },
            );
            return;
        };
        let conflict = if node.size != c.size {
            Some(format!(
                "declared size {} differs from size {} declared elsewhere",
                c.size, node.size
            ))
        } else {
            match (layer_compression(kind), node.first_layer_compression) {
                (Some(a), Some(b)) if a != b => Some(format!(
                    "declared as a layer compressed with {a}, but elsewhere with {b}"
                )),
                _ => None,
            }
        };
        if node.first_layer_compression.is_none() {
            node.first_layer_compression = layer_compression(kind);
        }
        if !node.roles.contains(&role) {
            node.roles.push(role);
            node.roles.sort();
        }
        // The strongest role decides what the blob is shown and checked as; between media
        // types of one role the smallest, so the order of descriptors never matters.
        let current = (Role::of(node.kind), node.media_type.as_str());
        if (role, d.media_type.as_str()) < current {
            node.kind = kind;
            node.media_type = d.media_type.clone();
        }
        if conflict.is_some() && !node.verified {
            node.size = node.size.min(c.size);
        }
        if node.artifact_type.is_none() {
            node.artifact_type = d.artifact_type.clone();
        }
        if let Some(why) = conflict {
            let path = Layout::blob_rel(&c.digest);
            self.problem(Some(&c.digest), path, format!("{location}: {why}"));
        }
    }

    fn set_presence(&mut self, digest: &Digest, p: Presence) {
        if let Some(n) = self.nodes.get_mut(digest)
            && p.severity() > n.presence.severity()
        {
            n.presence = p;
        }
    }

    /// Reads a JSON document blob verified; on failure records its presence and a problem
    /// (a child of an index may be absent).
    fn read_blob_json(
        &mut self,
        layout: &dyn BlobSource,
        c: &Checked,
        location: &str,
        in_index: bool,
    ) -> Option<Vec<u8>> {
        match layout.read_json_blob(c) {
            Ok(b) => {
                if let Some(n) = self.nodes.get_mut(&c.digest) {
                    n.verified = true;
                    n.size = c.size; // read and hashed at this size: the true one
                }
                Some(b)
            }
            Err(Error::MissingBlob { .. }) => {
                let p = if in_index {
                    Presence::AbsentAllowed
                } else {
                    self.problem(
                        Some(&c.digest),
                        Layout::blob_rel(&c.digest),
                        format!("{location}: blob is missing"),
                    );
                    Presence::Missing
                };
                self.set_presence(&c.digest, p);
                None
            }
            Err(e) => {
                if matches!(e, Error::NotRegularFile { .. }) {
                    self.set_presence(&c.digest, Presence::NotAFile);
                }
                self.problem(
                    Some(&c.digest),
                    Layout::blob_rel(&c.digest),
                    format!("{location}: {}", strip_blob_prefix(&e)),
                );
                None
            }
        }
    }

    fn read_config(
        &mut self,
        layout: &dyn BlobSource,
        c: &Checked,
        location: &str,
        in_index: bool,
    ) {
        let Some(bytes) = self.read_blob_json(layout, c, location, in_index) else {
            return;
        };
        match views::parse::<ConfigView>(&bytes, "image config") {
            Ok(cfg) => {
                if let Some(n) = self.nodes.get_mut(&c.digest) {
                    n.config = Some(ConfigInfo {
                        platform: cfg.platform(),
                        created: cfg.created.clone(),
                        diff_ids: cfg.rootfs.diff_ids,
                    });
                }
            }
            Err(e) => self.problem(
                Some(&c.digest),
                Layout::blob_rel(&c.digest),
                format!("{location}: {e}"),
            ),
        }
    }

    /// Reads an index or a manifest as the descriptor's media type says, records what it
    /// references, and walks its children.
    #[allow(clippy::too_many_arguments)]
    fn read_document(
        &mut self,
        layout: &dyn BlobSource,
        c: &Checked,
        d: &Descriptor,
        location: &str,
        depth: usize,
        in_index: bool,
        options: WalkOptions,
    ) {
        let digest = &c.digest;
        let Some(bytes) = self.read_blob_json(layout, c, location, in_index) else {
            return;
        };
        let rel = Layout::blob_rel(digest);
        let doc = match Document::parse(&bytes, Some(&d.media_type)) {
            Ok(doc) => doc,
            Err(e) => {
                self.problem(Some(digest), rel, format!("{location}: {e}"));
                return;
            }
        };
        if let Some(own) = doc.media_type()
            && !own.is_empty()
            && own != d.media_type
        {
            self.problem(
                Some(digest),
                rel.clone(),
                format!(
                    "{location}: descriptor says {} but the document says {own}",
                    d.media_type
                ),
            );
        }
        let node = self.nodes.get_mut(digest).expect("recorded before reading");
        if let Some(s) = doc.subject().and_then(|s| s.checked().ok()) {
            node.subject = Some(s.digest);
        }
        if node.artifact_type.is_none() {
            node.artifact_type = doc.artifact_type().map(str::to_string);
        }
        let here = format!("blob {digest}");
        match doc {
            Document::Index(ix) => {
                if depth >= MAX_DEPTH {
                    self.problem(
                        Some(digest),
                        rel,
                        format!("{location}: indexes nested deeper than {MAX_DEPTH}"),
                    );
                    return;
                }
                for m in &ix.manifests {
                    if let Ok(ck) = m.checked() {
                        node.children.push(ck.digest.clone());
                        node.platforms.push((ck.digest, m.platform.clone()));
                    }
                }
                for (i, m) in ix.manifests.iter().enumerate() {
                    let at = format!("{here} manifests[{i}]");
                    self.visit(layout, m, &at, depth + 1, true, options);
                }
            }
            Document::Manifest(m) => {
                let layers: Vec<(Checked, Kind)> = m
                    .layers
                    .iter()
                    .filter_map(|l| l.checked().ok().map(|c| (c, l.kind())))
                    .collect();
                if let Ok(cc) = m.config.checked() {
                    node.children.push(cc.digest.clone());
                    node.manifest = Some(ManifestInfo {
                        config: cc,
                        config_media_type: m.config.media_type.clone(),
                        layers: layers.clone(),
                    });
                }
                node.children
                    .extend(layers.iter().map(|(l, _)| l.digest.clone()));
                self.visit(
                    layout,
                    &m.config,
                    &format!("{here} config"),
                    depth + 1,
                    false,
                    options,
                );
                for (i, l) in m.layers.iter().enumerate() {
                    let at = format!("{here} layers[{i}]");
                    self.visit(layout, l, &at, depth + 1, false, options);
                }
            }
        }
    }

    fn presence(
        &mut self,
        layout: &dyn BlobSource,
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
                } else if let Some(n) = self.nodes.get_mut(&c.digest) {
                    n.size = size; // the file agrees with this descriptor
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
            // A blob already read as a document needs no second look; one reached only in
            // another role (named as a config, a layer, or as an index it is not) may still
            // be a referrer whose own children must be kept.
            let read_as_document = self
                .nodes
                .get(digest)
                .is_some_and(|n| n.manifest.is_some() || !n.platforms.is_empty());
            if read_as_document || *size > REFERRER_SCAN_LIMIT || *size == 0 {
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
            out.push((d, e.size));
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
