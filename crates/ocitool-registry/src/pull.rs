//! `pull`: images from registries into a layout, digests unchanged, resumable.
//!
//! For each image: the manifest (or index) is fetched by tag or digest, size-capped, hashed
//! and checked; its children are walked (an index whole, or only the platforms asked for),
//! documents read from the layout where it already has them; configs are read with the
//! documents (small, and they tell a manifest's platform); layers are queued. Referrers come
//! from the referrers API or the `sha256-<hex>` fallback tag (which must be an index, not the
//! subject itself, listing manifests whose `subject` is the digest), cosign's
//! `sha256-<hex>.sig/.att/.sbom` tags with `digest_tags`.
//!
//! Everything enters the layout through one `Transaction`: documents are staged, blobs are
//! downloaded in parallel into resumable partial files (`ocitool_layout::partial`), verified
//! and published one by one as they complete, so an interrupted pull run again continues
//! where it stopped (a half-downloaded blob with a `Range` request). Refs change only at the
//! commit, which refuses to move a protected tag unless forced.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ocitool_digest::Digest;
use ocitool_layout::partial::Download;
use ocitool_layout::{Layout, Progress, Transaction};
use ocitool_spec::media::{self, Kind};
use ocitool_spec::reference::Reference;
use ocitool_spec::refname::{CONTAINERD_IMAGE_NAME, REF_NAME};
use ocitool_spec::views::Checked;
use ocitool_spec::{Descriptor, Document, Platform};
use serde_json::{Map, Value};

use crate::api::{DigestTag, Manifest, digest_tag, referrers_tag};
use crate::client::{Client, Registry};
use crate::errors::{Error, Result};

/// Index nesting and referrer chains are followed this deep.
const MAX_DEPTH: usize = 16;

/// What to pull.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Every tag of each repository named (the images must not name a tag or digest).
    pub all_tags: bool,
    /// Keep only these platforms of multi-platform images (with exactly one, the ref points at
    /// that platform's manifest).
    pub platforms: Vec<Platform>,
    /// Bring referrers (signatures, SBOMs, attestations).
    pub referrers: bool,
    /// Also bring cosign's `sha256-<hex>.sig/.att/.sbom` tags.
    pub digest_tags: bool,
    /// Move protected tags.
    pub force: bool,
    /// Blobs downloaded at once.
    pub jobs: usize,
}

/// A ref written by a pull.
#[derive(Clone, Debug)]
pub struct PulledRef {
    /// `ref.name` (the familiar name, `nginx:1.25`).
    pub name: String,
    /// `io.containerd.image.name` (`docker.io/library/nginx:1.25`).
    pub full_name: String,
    pub digest: Digest,
    pub media_type: String,
    /// What the ref pointed at before, when the pull moved it.
    pub moved_from: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct PullReport {
    pub refs: Vec<PulledRef>,
    /// Blobs downloaded (in full or finished from a partial file).
    pub blobs_fetched: usize,
    /// Bytes downloaded in this run.
    pub bytes_fetched: u64,
    /// Bytes a partial file already held.
    pub bytes_resumed: u64,
    /// Blobs the layout already had.
    pub blobs_present: usize,
    /// Manifests and indexes written (new ones).
    pub documents: usize,
    /// Referrers found.
    pub referrers: usize,
}

/// A blob to download.
#[derive(Clone)]
struct Job {
    checked: Checked,
    registry: Arc<Registry>,
    repository: String,
    /// A non-distributable layer: absent from the registry is fine.
    optional: bool,
}

/// What a ref will name: a document, and for a platform manifest picked from an index, its
/// platform.
#[derive(Clone)]
struct Pick {
    digest: Digest,
    media_type: String,
    size: u64,
    platform: Option<Platform>,
}

/// An `index.json` entry to write.
struct Entry {
    name: String,
    full_name: String,
    descriptor: Value,
    digest: Digest,
    media_type: String,
}

/// What one pull gathers before downloading.
struct Plan<'l> {
    layout: &'l Layout,
    json_limit: u64,
    docs: BTreeMap<Digest, Vec<u8>>,
    blobs: BTreeMap<Digest, Job>,
    entries: Vec<Entry>,
    walked: BTreeSet<Digest>,
    referrers: usize,
    /// Tag lists per repository (for fallback tags and cosign tags), fetched once.
    tag_lists: HashMap<String, Vec<String>>,
    /// Repositories whose registry has no referrers API.
    no_referrers_api: BTreeSet<String>,
    /// Subjects whose referrers were looked for (per registry and repository): each is asked
    /// once, however many tags name it.
    referrers_asked: BTreeSet<(String, Digest)>,
}

/// Pulls `images` (references as `docker pull` takes them) into `layout`.
pub fn pull(
    client: &Client,
    layout: &Layout,
    images: &[String],
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<PullReport> {
    let refs = expand(client, images, options)?;
    let mut txn = Transaction::begin(layout)?;
    txn.set_force(options.force);
    let mut plan = Plan {
        layout,
        json_limit: client.options().json_limit,
        docs: BTreeMap::new(),
        blobs: BTreeMap::new(),
        entries: Vec::new(),
        walked: BTreeSet::new(),
        referrers: 0,
        tag_lists: HashMap::new(),
        no_referrers_api: BTreeSet::new(),
        referrers_asked: BTreeSet::new(),
    };
    for r in &refs {
        let reg = client.for_reference(r)?;
        plan.image(&reg, r, options)?;
    }

    let mut report = PullReport {
        referrers: plan.referrers,
        ..Default::default()
    };
    for (d, bytes) in &plan.docs {
        let c = Checked {
            digest: d.clone(),
            size: bytes.len() as u64,
        };
        if layout.stat_blob(d)? != Some(c.size) {
            report.documents += 1;
        }
        txn.stage_bytes(bytes, Some(&c))?;
    }
    let mut jobs: Vec<Job> = Vec::new();
    for (d, j) in std::mem::take(&mut plan.blobs) {
        if plan.docs.contains_key(&d) {
            continue;
        }
        if layout.stat_blob(&d)? == Some(j.checked.size) {
            report.blobs_present += 1;
        } else {
            jobs.push(j);
        }
    }
    download_all(&mut txn, jobs, options.jobs.max(1), progress, &mut report)?;

    let entries = std::mem::take(&mut plan.entries);
    let moved = txn.commit(|idx| {
        let before = idx.ref_digests();
        let mut moved = Vec::new();
        for e in &entries {
            moved.push(
                before
                    .get(&e.name)
                    .filter(|d| **d != e.digest.to_string())
                    .cloned(),
            );
            idx.put_verbatim(&e.descriptor);
        }
        Ok(moved)
    })?;
    report.refs = entries
        .into_iter()
        .zip(moved)
        .map(|(e, moved_from)| PulledRef {
            name: e.name,
            full_name: e.full_name,
            digest: e.digest,
            media_type: e.media_type,
            moved_from,
        })
        .collect();
    Ok(report)
}

/// The references to pull: each image as given, or with `all_tags` every tag of its
/// repository.
fn expand(client: &Client, images: &[String], options: &PullOptions) -> Result<Vec<Reference>> {
    let mut out = Vec::new();
    for i in images {
        let r = Reference::parse(i)?;
        if !options.all_tags {
            out.push(r);
            continue;
        }
        if r.tag().is_some() || r.digest().is_some() {
            return Err(Error::Invalid(format!(
                "{i}: --all-tags takes a repository without a tag or digest"
            )));
        }
        let reg = client.for_reference(&r)?;
        // Tags named after digests are not images of their own: referrers fallback indexes
        // come with their subjects, cosign's tags only with --digest-tags.
        let tags: Vec<String> = reg
            .tags(r.repository())?
            .into_iter()
            .filter(|t| match digest_tag(t) {
                None => true,
                Some(DigestTag::Referrers) => false,
                Some(DigestTag::Cosign) => options.digest_tags,
            })
            .collect();
        if tags.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: the repository has no tags",
                r.name()
            )));
        }
        for t in tags {
            out.push(r.with_tag(&t)?);
        }
    }
    Ok(out)
}

impl Plan<'_> {
    /// Plans one image: its root document, everything below it, its referrers; adds its ref.
    fn image(&mut self, reg: &Arc<Registry>, r: &Reference, options: &PullOptions) -> Result<()> {
        let repo = r.repository();
        let root = self.root_document(reg, r)?;
        let mut target = Pick {
            digest: root.digest.clone(),
            media_type: root.media_type.clone(),
            size: root.bytes.len() as u64,
            platform: None,
        };
        let wanted = &options.platforms;
        let roots = if wanted.is_empty() {
            self.walk(reg, repo, root, &[], 0)?;
            vec![target.digest.clone()]
        } else {
            let chosen = self.walk(reg, repo, root, wanted, 0)?;
            if chosen.is_empty() {
                return Err(Error::Invalid(format!(
                    "{}: no manifest for platform {}",
                    r.familiar(),
                    wanted
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if wanted.len() == 1 && media::is_index(&target.media_type) {
                target = chosen[0].clone();
            }
            chosen.iter().map(|c| c.digest.clone()).collect()
        };
        if options.referrers {
            let docs: Vec<Digest> = self.walked_from(&roots);
            for d in docs {
                self.referrers_of(reg, repo, &d, 0)?;
            }
        }
        if options.digest_tags {
            self.digest_tags(reg, r)?;
        }
        // `name:tag@digest` was pulled by digest (checked) and is stored under its tag.
        let shown = match (r.tag(), r.digest()) {
            (Some(t), Some(_)) => r.with_tag(t)?,
            _ => r.clone(),
        };
        self.add_entry(shown.familiar(), shown.normalized(), target);
        Ok(())
    }

    fn add_entry(&mut self, name: String, full_name: String, target: Pick) {
        let Pick {
            digest,
            media_type,
            size,
            platform,
        } = target;
        let mut m = Map::new();
        m.insert("mediaType".into(), Value::from(media_type.clone()));
        m.insert("digest".into(), Value::from(digest.to_string()));
        m.insert("size".into(), Value::from(size));
        if let Some(p) = platform {
            m.insert(
                "platform".into(),
                serde_json::to_value(p).unwrap_or(Value::Null),
            );
        }
        let mut ann = Map::new();
        ann.insert(CONTAINERD_IMAGE_NAME.into(), Value::from(full_name.clone()));
        ann.insert(REF_NAME.into(), Value::from(name.clone()));
        m.insert("annotations".into(), Value::Object(ann));
        self.entries.retain(|e| e.name != name);
        self.entries.push(Entry {
            name,
            full_name,
            descriptor: Value::Object(m),
            digest,
            media_type,
        });
    }

    /// The manifest a reference names. A tag the layout already holds the target of (HEAD
    /// says its digest) is read from the layout: a pull run again asks the registry once.
    fn root_document(&mut self, reg: &Registry, r: &Reference) -> Result<Manifest> {
        let repo = r.repository();
        if let Some(d) = r.digest() {
            return self.document(reg, repo, d, None);
        }
        let tag = r.tag_or_default().unwrap_or("latest");
        let head = reg.head_manifest(repo, tag, false)?;
        // Another tag of this run named the same document (`--all-tags`): no second GET.
        if let Some(h) = &head
            && let Some(d) = &h.digest
            && let Some(bytes) = self.docs.get(d)
            && h.size.is_none_or(|s| s == bytes.len() as u64)
            && let Some(mt) = h
                .media_type
                .as_ref()
                .filter(|m| media::is_index(m) || media::is_manifest(m))
        {
            return Ok(Manifest {
                bytes: bytes.clone(),
                media_type: mt.clone(),
                digest: d.clone(),
            });
        }
        if let Some(head) = head
            && let Some(d) = head.digest
            && let Some(size) = self.layout.stat_blob(&d)?
            && head.size.is_none_or(|s| s == size)
            && let Ok(bytes) = self.layout.read_json_blob(&Checked {
                digest: d.clone(),
                size,
            })
            && let Some(mt) = head
                .media_type
                .filter(|m| media::is_index(m) || media::is_manifest(m))
        {
            return Ok(Manifest {
                bytes,
                media_type: mt,
                digest: d,
            });
        }
        reg.get_manifest(repo, tag)
    }

    /// A document by digest: from the layout when it has it (verified), else the registry.
    fn document(
        &mut self,
        reg: &Registry,
        repo: &str,
        d: &Digest,
        media_type: Option<&str>,
    ) -> Result<Manifest> {
        if let Some(bytes) = self.docs.get(d) {
            return Ok(Manifest {
                bytes: bytes.clone(),
                media_type: media_type
                    .map(str::to_string)
                    .unwrap_or_else(|| sniffed(bytes)),
                digest: d.clone(),
            });
        }
        if let Some(size) = self.layout.stat_blob(d)?
            && let Ok(bytes) = self.layout.read_json_blob(&Checked {
                digest: d.clone(),
                size,
            })
        {
            return Ok(Manifest {
                media_type: media_type
                    .map(str::to_string)
                    .unwrap_or_else(|| sniffed(&bytes)),
                bytes,
                digest: d.clone(),
            });
        }
        let m = reg.get_manifest(repo, &d.to_string())?;
        Ok(match media_type {
            Some(mt) => Manifest {
                media_type: mt.to_string(),
                ..m
            },
            None => m,
        })
    }

    /// Walks a document: records it, queues its blobs, walks its children (with `wanted`
    /// platforms, only theirs). Returns the platform manifests chosen by `wanted`.
    fn walk(
        &mut self,
        reg: &Arc<Registry>,
        repo: &str,
        m: Manifest,
        wanted: &[Platform],
        depth: usize,
    ) -> Result<Vec<Pick>> {
        if depth > MAX_DEPTH {
            return Err(Error::Protocol {
                registry: reg.name().to_string(),
                repository: repo.to_string(),
                what: format!("manifest {}", m.digest),
                why: format!("indexes nested deeper than {MAX_DEPTH}"),
            });
        }
        let doc = Document::parse(&m.bytes, Some(&m.media_type)).map_err(|e| Error::Protocol {
            registry: reg.name().to_string(),
            repository: repo.to_string(),
            what: format!("manifest {}", m.digest),
            why: e.to_string(),
        })?;
        let first = self.walked.insert(m.digest.clone());
        self.docs.insert(m.digest.clone(), m.bytes.clone());
        let mut chosen = Vec::new();
        match doc {
            Document::Index(ix) => {
                let kept: Vec<&Descriptor> = if wanted.is_empty() {
                    ix.manifests.iter().collect()
                } else {
                    select_children(&ix.manifests, wanted)
                };
                for c in kept {
                    let checked = self.checked(reg, repo, c)?;
                    match media::classify(&c.media_type) {
                        Kind::Index | Kind::Manifest => {}
                        _ => {
                            // An index may list any blob (an artifact); take it as it is.
                            self.queue(reg, repo, checked, false);
                            continue;
                        }
                    }
                    let child = self.document(reg, repo, &checked.digest, Some(&c.media_type))?;
                    let nested = self.walk(reg, repo, child, wanted, depth + 1)?;
                    if !wanted.is_empty() {
                        if media::is_index(&c.media_type) {
                            chosen.extend(nested);
                        } else if c
                            .platform
                            .as_ref()
                            .is_some_and(|p| Platform::any_selects(wanted, p))
                        {
                            chosen.push(Pick {
                                digest: checked.digest,
                                media_type: c.media_type.clone(),
                                size: checked.size,
                                platform: c.platform.clone(),
                            });
                        }
                    }
                }
            }
            Document::Manifest(mv) => {
                if !first && wanted.is_empty() {
                    return Ok(chosen);
                }
                let config = self.checked(reg, repo, &mv.config)?;
                let config_platform = if config.size <= self.json_limit
                    && matches!(media::classify(&mv.config.media_type), Kind::Config)
                {
                    let bytes = self.blob_document(reg, repo, &config)?;
                    let p = serde_json::from_slice::<ocitool_spec::ConfigView>(&bytes)
                        .ok()
                        .map(|c| c.platform());
                    self.docs.insert(config.digest.clone(), bytes);
                    p
                } else {
                    self.queue(reg, repo, config, false);
                    None
                };
                if depth == 0
                    && !wanted.is_empty()
                    && let Some(p) = &config_platform
                    && Platform::any_selects(wanted, p)
                {
                    chosen.push(Pick {
                        digest: m.digest.clone(),
                        media_type: m.media_type.clone(),
                        size: m.bytes.len() as u64,
                        platform: None,
                    });
                }
                for l in &mv.layers {
                    let c = self.checked(reg, repo, l)?;
                    let optional = matches!(
                        media::classify(&l.media_type),
                        Kind::Layer {
                            distributable: false,
                            ..
                        }
                    );
                    self.queue(reg, repo, c, optional);
                }
            }
        }
        Ok(chosen)
    }

    /// A small JSON blob (a config): from the layout, else downloaded whole and checked.
    fn blob_document(&mut self, reg: &Registry, repo: &str, c: &Checked) -> Result<Vec<u8>> {
        if let Some(b) = self.docs.get(&c.digest) {
            return Ok(b.clone());
        }
        if self.layout.stat_blob(&c.digest)? == Some(c.size)
            && let Ok(b) = self.layout.read_json_blob(c)
        {
            return Ok(b);
        }
        let (resp, _) = reg.get_blob(repo, &c.digest, 0)?;
        let mut bytes = Vec::new();
        resp.into_body()
            .into_reader()
            .take(c.size + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Transport {
                registry: reg.name().to_string(),
                what: format!("GET blob {}", c.digest),
                why: e.to_string(),
            })?;
        let actual = Digest::of(c.digest.algorithm(), &bytes);
        if actual != c.digest || bytes.len() as u64 != c.size {
            return Err(Error::DigestMismatch {
                registry: reg.name().to_string(),
                repository: repo.to_string(),
                what: format!("blob {}", c.digest),
                expected: c.digest.clone(),
                actual: format!("{actual} ({} bytes)", bytes.len()),
            });
        }
        Ok(bytes)
    }

    fn checked(&self, reg: &Registry, repo: &str, d: &Descriptor) -> Result<Checked> {
        d.validate(self.json_limit).map_err(|e| Error::Protocol {
            registry: reg.name().to_string(),
            repository: repo.to_string(),
            what: format!("descriptor {}", d.digest),
            why: e.to_string(),
        })
    }

    fn queue(&mut self, reg: &Arc<Registry>, repo: &str, c: Checked, optional: bool) {
        self.blobs.entry(c.digest.clone()).or_insert_with(|| Job {
            checked: c,
            registry: reg.clone(),
            repository: repo.to_string(),
            optional,
        });
    }

    /// The documents (manifests and indexes) walked from `roots`.
    fn walked_from(&self, roots: &[Digest]) -> Vec<Digest> {
        let mut out = Vec::new();
        let mut queue: Vec<Digest> = roots.to_vec();
        while let Some(d) = queue.pop() {
            if out.contains(&d) || !self.walked.contains(&d) {
                continue;
            }
            if let Some(bytes) = self.docs.get(&d)
                && let Ok(Document::Index(ix)) = Document::parse(bytes, None)
            {
                for c in &ix.manifests {
                    if let Ok(cd) = Digest::parse(&c.digest) {
                        queue.push(cd);
                    }
                }
            }
            out.push(d);
        }
        out
    }

    fn tag_list(&mut self, reg: &Registry, repo: &str) -> Result<&Vec<String>> {
        let key = format!("{}/{repo}", reg.name());
        if !self.tag_lists.contains_key(&key) {
            let tags = match reg.tags(repo) {
                Ok(t) => t,
                Err(e) if e.is_not_found() => Vec::new(),
                Err(e) => return Err(e),
            };
            self.tag_lists.insert(key.clone(), tags);
        }
        Ok(&self.tag_lists[&key])
    }

    /// Pulls the referrers of `subject` (and theirs, to `MAX_DEPTH`).
    fn referrers_of(
        &mut self,
        reg: &Arc<Registry>,
        repo: &str,
        subject: &Digest,
        depth: usize,
    ) -> Result<()> {
        if depth > 4 {
            return Ok(());
        }
        let key = format!("{}/{repo}", reg.name());
        if !self.referrers_asked.insert((key.clone(), subject.clone())) {
            return Ok(());
        }
        let listed = if self.no_referrers_api.contains(&key) {
            None
        } else {
            reg.referrers(repo, subject)?
        };
        let descriptors: Vec<Descriptor> = match listed {
            Some(l) => l,
            None => {
                self.no_referrers_api.insert(key);
                let tag = referrers_tag(subject);
                if !self.tag_list(reg, repo)?.contains(&tag) {
                    return Ok(());
                }
                let ix = reg.get_manifest(repo, &tag)?;
                // GitLab resolves `sha256-<hex>` as the digest itself: that is the subject, not
                // a list of its referrers.
                if ix.digest == *subject || !media::is_index(&ix.media_type) {
                    return Ok(());
                }
                match Document::parse(&ix.bytes, Some(&ix.media_type)) {
                    Ok(Document::Index(v)) => v.manifests,
                    _ => return Ok(()),
                }
            }
        };
        for d in descriptors {
            if !matches!(media::classify(&d.media_type), Kind::Index | Kind::Manifest) {
                continue;
            }
            let c = self.checked(reg, repo, &d)?;
            if self.walked.contains(&c.digest) {
                continue;
            }
            let m = self.document(reg, repo, &c.digest, Some(&d.media_type))?;
            let Ok(doc) = Document::parse(&m.bytes, Some(&m.media_type)) else {
                continue;
            };
            // Only what really names the subject is a referrer.
            if doc
                .subject()
                .and_then(|s| Digest::parse(&s.digest).ok())
                .as_ref()
                != Some(subject)
            {
                continue;
            }
            self.referrers += 1;
            let digest = m.digest.clone();
            self.walk(reg, repo, m, &[], 0)?;
            self.referrers_of(reg, repo, &digest, depth + 1)?;
        }
        Ok(())
    }

    /// cosign's `sha256-<hex>.sig/.att/.sbom` tags of every document pulled for `r`.
    fn digest_tags(&mut self, reg: &Arc<Registry>, r: &Reference) -> Result<()> {
        let repo = r.repository();
        let wanted: Vec<String> = {
            self.tag_list(reg, repo)?;
            let key = format!("{}/{repo}", reg.name());
            let tags: BTreeSet<&String> = self.tag_lists[&key].iter().collect();
            let mut w = Vec::new();
            for d in &self.walked {
                let base = referrers_tag(d);
                for suffix in crate::api::COSIGN_SUFFIXES {
                    let t = format!("{base}.{suffix}");
                    if tags.contains(&t) {
                        w.push(t);
                    }
                }
            }
            w
        };
        for tag in wanted {
            let tr = r.with_tag(&tag)?;
            if self.entries.iter().any(|e| e.name == tr.familiar()) {
                continue; // pulled already (another tag of the repository named it)
            }
            let m = reg.get_manifest(repo, &tag)?;
            let target = Pick {
                digest: m.digest.clone(),
                media_type: m.media_type.clone(),
                size: m.bytes.len() as u64,
                platform: None,
            };
            self.walk(reg, repo, m, &[], 0)?;
            self.add_entry(tr.familiar(), tr.normalized(), target);
        }
        Ok(())
    }
}

fn sniffed(bytes: &[u8]) -> String {
    match Document::sniff(bytes) {
        Ok(Kind::Index) => media::OCI_INDEX.to_string(),
        _ => media::OCI_MANIFEST.to_string(),
    }
}

/// The children of an index kept for `wanted` platforms: the matching manifests, nested
/// indexes (filtered in turn), and attestation manifests (`unknown/unknown`) that refer to a
/// kept manifest (`vnd.docker.reference.digest`).
fn select_children<'a>(children: &'a [Descriptor], wanted: &[Platform]) -> Vec<&'a Descriptor> {
    let mut kept: Vec<&Descriptor> = children
        .iter()
        .filter(|c| match &c.platform {
            Some(p) => Platform::any_selects(wanted, p),
            None => media::is_index(&c.media_type),
        })
        .collect();
    let kept_digests: BTreeSet<&str> = kept.iter().map(|c| c.digest.as_str()).collect();
    for c in children {
        if let Some(r) = c.annotations.get("vnd.docker.reference.digest")
            && kept_digests.contains(r.as_str())
            && !kept.iter().any(|k| std::ptr::eq(*k, c))
        {
            kept.push(c);
        }
    }
    kept
}

/// Downloads `jobs` (largest first) on `n` threads.
fn download_all(
    txn: &mut Transaction<'_>,
    mut jobs: Vec<Job>,
    n: usize,
    progress: &dyn Progress,
    report: &mut PullReport,
) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    jobs.sort_by(|a, b| {
        a.checked
            .size
            .cmp(&b.checked.size)
            .then_with(|| b.checked.digest.cmp(&a.checked.digest))
    });
    progress.start("pull", jobs.iter().map(|j| j.checked.size).sum());
    let queue = Mutex::new(jobs);
    let txn = Mutex::new(txn);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let fetched = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let resumed = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..n {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some(job) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                        return;
                    };
                    match download(&txn, &job, progress) {
                        Ok(Some((got, had))) => {
                            fetched.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(got, Ordering::Relaxed);
                            resumed.fetch_add(had, Ordering::Relaxed);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    progress.finish();
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    report.blobs_fetched += fetched.into_inner();
    report.bytes_fetched += bytes.into_inner();
    report.bytes_resumed += resumed.into_inner();
    Ok(())
}

/// Downloads one blob into a resumable partial file, continuing it across broken
/// connections with `Range`, and publishes it verified. Returns the bytes received and the
/// bytes a partial file already held; `None` for an optional blob the registry lacks.
fn download(
    txn: &Mutex<&mut Transaction<'_>>,
    job: &Job,
    progress: &dyn Progress,
) -> Result<Option<(u64, u64)>> {
    let lock = || txn.lock().unwrap_or_else(|e| e.into_inner());
    let id = job.checked.digest.to_string();
    let reg = &job.registry;
    let retries = reg.options().retries;
    let mut started_over = false;
    loop {
        let mut d = Download::begin(&mut lock(), &job.checked)?;
        let had = d.offset();
        progress.item_start(&id, job.checked.size);
        if had > 0 {
            progress.item_advance(&id, had);
        }
        let mut failures = 0u32;
        while d.offset() < job.checked.size {
            let at = d.offset();
            let (resp, start) = match reg.get_blob(&job.repository, &job.checked.digest, at) {
                Ok(x) => x,
                Err(e) if job.optional && e.is_not_found() => {
                    progress.item_finish(&id);
                    return Ok(None);
                }
                Err(e) => {
                    progress.item_finish(&id);
                    return Err(e);
                }
            };
            if start == 0 && at > 0 {
                d.restart()?;
            }
            let mut r = resp.into_body().into_reader();
            let mut buf = vec![0u8; 64 << 10];
            let mut broke = None;
            loop {
                match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => {
                        d.write(&buf[..k])
                            .map_err(|e| annotate(e, reg, &job.repository))?;
                        progress.item_advance(&id, k as u64);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        broke = Some(e.to_string());
                        break;
                    }
                }
            }
            if d.offset() >= job.checked.size {
                break;
            }
            // A broken or short answer: continue from where it stopped.
            if d.offset() > at {
                failures = 0;
            } else {
                failures += 1;
            }
            if failures > retries {
                progress.item_finish(&id);
                return Err(Error::Transport {
                    registry: reg.name().to_string(),
                    what: format!("GET blob {} of {}", job.checked.digest, job.repository),
                    why: broke.unwrap_or_else(|| "the registry ended the answer early".into()),
                });
            }
            std::thread::sleep(
                reg.options()
                    .retry_delay
                    .saturating_mul(1 << failures.saturating_sub(1).min(10)),
            );
        }
        let got = job.checked.size - had;
        let r = d.finish(&mut lock());
        progress.item_finish(&id);
        match r {
            Ok(_) => return Ok(Some((got, had))),
            // What a partial file held may have been damaged (a crash mid-write): the check
            // removed it; download it whole once more.
            Err(ocitool_layout::Error::Verify { .. }) if had > 0 && !started_over => {
                started_over = true;
            }
            Err(e) => return Err(annotate(e, reg, &job.repository)),
        }
    }
}

fn annotate(e: ocitool_layout::Error, reg: &Registry, repo: &str) -> Error {
    match e {
        ocitool_layout::Error::Verify { digest, source, .. } => Error::DigestMismatch {
            registry: reg.name().to_string(),
            repository: repo.to_string(),
            what: format!("blob {digest}"),
            expected: digest,
            actual: source.to_string(),
        },
        other => Error::Layout(other),
    }
}
