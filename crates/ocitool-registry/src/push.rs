//! `push`: refs of a layout to registries, bytes and digests unchanged.
//!
//! Each ref goes where its name says (`docker push`), or under `--to REGISTRY[/PREFIX]`
//! (`docker.io/library/nginx:1` → `REGISTRY/PREFIX/library/nginx:1`; with `scoped` the source
//! registry stays in the path, as `skopeo sync --scoped` does). What a ref reaches is walked
//! in the layout (`Graph`), then sent children first: blobs (in parallel; a HEAD skips what
//! the repository has, a blob another repository of the same registry has is mounted, the
//! rest goes as POST + one streamed PATCH + PUT `?digest=`), then manifests and indexes by
//! digest as their exact bytes with their media type as `Content-Type`, then the tag. Every
//! `Docker-Content-Digest` the registry answers is checked. An index whose children the
//! layout lacks is refused (registries refuse it too) with the missing children named;
//! `platforms` pushes the platform manifest that is there instead. Referrers follow their
//! subjects; where the registry does not index them (no `OCI-Subject` answer) the
//! `sha256-<hex>` fallback index is kept up to date.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ocitool_digest::Digest;
use ocitool_layout::graph::{Graph, Presence, WalkOptions, list_blobs};
use ocitool_layout::{Layout, Progress, resolve};
use ocitool_spec::media::{self, Kind};
use ocitool_spec::reference::Reference;
use ocitool_spec::views::Checked;
use ocitool_spec::{Descriptor, Document, Platform, refname};
use serde_json::{Map, Value};

use crate::api::{DigestTag, Uploaded, digest_tag, referrers_tag};
use crate::client::{Client, Registry};
use crate::errors::{Error, Result};

/// What to push.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    /// Refs to push (every named ref when empty), `REPO:*` for every tag of a repository
    /// (`resolve::select_refs`); with `all_tags`, repositories.
    pub refs: Vec<String>,
    /// `REGISTRY[/PREFIX]` every ref is mapped under.
    pub to: Option<String>,
    /// Keep the source registry in the mapped path.
    pub scoped: bool,
    pub all_tags: bool,
    /// For multi-platform refs: push this platform's manifest (the tag then names it).
    pub platforms: Vec<Platform>,
    /// Push referrers with their subjects.
    pub referrers: bool,
    /// Also push cosign's `sha256-<hex>.sig/.att/.sbom` tags of what is pushed.
    pub digest_tags: bool,
    /// Blobs sent at once; `None`: [`default_uploads`].
    pub jobs: Option<usize>,
}

/// Uploads at once when the user did not say: 4, since a transfer to a registry elsewhere
/// waits on the network rather than on the cores. A registry on this machine shares its
/// cores with the push, and it hashes and writes each upload on one thread: more uploads
/// than cores only split the cores, the largest blob gets less than its share and ends
/// alone while the other cores idle. So then one per core and one more (to keep the cores
/// busy while the registry syncs a finished blob), at most 4. Measured on 2 cores with
/// Distribution 2.8.2 and the bench image (six layers, the largest 35% of the bytes): 4
/// uploads left the machine idle 1.0-1.35 s of each push, 3 left it idle 0.4-0.8 s, and the
/// push took 4.3-5.2 s against 3.8-5.1 s.
pub fn default_uploads(registries_on_this_machine: bool) -> usize {
    const ELSEWHERE: usize = 4;
    if registries_on_this_machine {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ELSEWHERE.min(cores + 1)
    } else {
        ELSEWHERE
    }
}

#[derive(Clone, Debug)]
pub struct PushedRef {
    /// The ref in the layout.
    pub source: String,
    /// Where it went (`registry/repository:tag`).
    pub destination: String,
    pub digest: Digest,
    pub media_type: String,
}

#[derive(Clone, Debug, Default)]
pub struct PushReport {
    pub refs: Vec<PushedRef>,
    pub blobs_sent: usize,
    pub bytes_sent: u64,
    pub blobs_mounted: usize,
    /// Blobs the repository already had.
    pub blobs_present: usize,
    /// Manifests and indexes written (not already there).
    pub manifests_put: usize,
    pub referrers: usize,
}

/// One ref to push.
struct Item {
    source: String,
    dest: Reference,
    /// What the tag names (the ref's target, or the platform manifest chosen).
    root: Digest,
    /// Where the source name says the image came from, for mounts.
    origin: Option<Reference>,
}

/// Pushes refs of `layout` (see the module docs).
pub fn push(
    client: &Client,
    layout: &Layout,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<PushReport> {
    let _lock = layout.read_lock()?;
    let index = layout.read_index()?;
    let selected = select(layout, &index, options)?;
    let walk = WalkOptions {
        read_configs: !options.platforms.is_empty(),
        check_presence: true,
    };
    let roots: Vec<(String, Descriptor)> = selected
        .iter()
        .map(|(name, t)| {
            let d: Descriptor = serde_json::from_value(t.descriptor.clone()).unwrap_or_default();
            (format!("ref {name}"), d)
        })
        .collect();
    let mut graph = Graph::walk(layout, &roots, walk);
    if options.referrers {
        graph.add_unlisted_referrers(layout, &list_blobs(layout)?, walk);
    }
    if let Some(p) = graph.problems.iter().find(|p| {
        p.digest.as_ref().is_none_or(|d| {
            graph
                .nodes
                .get(d)
                .is_none_or(|n| n.presence != Presence::AbsentAllowed)
        })
    }) {
        return Err(Error::Invalid(format!(
            "cannot push: {}: {} (nothing was pushed; run `ocitool verify`)",
            p.digest
                .as_ref()
                .map_or_else(|| p.path.clone(), ToString::to_string),
            p.problem
        )));
    }
    let mut items = Vec::new();
    for (name, t) in &selected {
        let src = source_reference(&index, name)?;
        let dest = destination(&src, options)?;
        let root = choose_root(&graph, name, &t.digest, &options.platforms)?;
        items.push(Item {
            source: name.clone(),
            dest,
            root,
            origin: Some(src),
        });
    }
    let mut pusher = Pusher {
        client,
        layout,
        graph: &graph,
        options,
        report: PushReport::default(),
        known: HashMap::new(),
        referrers_api: HashMap::new(),
    };
    pusher.send_blobs(&items, progress)?;
    for it in &items {
        pusher.send_documents(it)?;
    }
    Ok(pusher.report)
}

/// The refs to push with what they name: every named entry, the refs given (`REPO:*`, or with
/// `all_tags` every argument, is every ref of a repository but its referrers fallback tags,
/// and its cosign tags unless `digest_tags`); plus cosign digest tags when asked.
fn select(
    layout: &Layout,
    index: &ocitool_layout::IndexDoc,
    options: &PushOptions,
) -> Result<Vec<(String, resolve::Target)>> {
    let mut names: Vec<String> = Vec::new();
    let all_names: Vec<String> = index
        .entries()
        .iter()
        .filter_map(|e| e.display_name().map(str::to_string))
        .collect();
    if options.refs.is_empty() {
        names = all_names.clone();
    } else {
        for r in &options.refs {
            if Digest::parse(r).is_ok() {
                return Err(Error::Invalid(format!(
                    "{r}: a digest has no repository to push to; push a ref that names it (`ocitool tag` one first)"
                )));
            }
            // `REPO:*`, or with --all-tags a repository: its refs, through the one selection
            // every command uses; referrers fallback tags go with their subjects.
            let repository = options.all_tags || r.ends_with(":*");
            for n in resolve::select_refs(layout, index, std::slice::from_ref(r), options.all_tags)?
            {
                if !repository || all_tags_takes(&n, options.digest_tags) {
                    names.push(n);
                }
            }
        }
    }
    names.dedup();
    let mut out: Vec<(String, resolve::Target)> = Vec::new();
    for n in names {
        if out.iter().any(|(m, _)| *m == n) {
            continue;
        }
        let t = resolve::resolve(layout, index, &n)?;
        out.push((n, t));
    }
    if options.digest_tags && !options.refs.is_empty() {
        // cosign tags of what is pushed, from the same repositories.
        let pushed: BTreeSet<(String, String)> = out
            .iter()
            .map(|(n, t)| (repository_of(n), referrers_tag(&t.digest)))
            .collect();
        for n in &all_names {
            let (_, tag) = refname::split_repo_tag(n);
            let Some(tag) = tag else { continue };
            let Some((base, _)) = tag.rsplit_once('.') else {
                continue;
            };
            if digest_tag(tag) == Some(DigestTag::Cosign)
                && pushed.contains(&(repository_of(n), base.to_string()))
                && !out.iter().any(|(m, _)| m == n)
            {
                out.push((n.clone(), resolve::resolve(layout, index, n)?));
            }
        }
    }
    Ok(out)
}

/// Whether `--all-tags` takes ref `name`: not a referrers fallback tag (`sha256-<hex>`: the
/// referrers go with their subjects), and a cosign tag (`sha256-<hex>.sig`) only with
/// `--digest-tags`.
fn all_tags_takes(name: &str, digest_tags: bool) -> bool {
    match refname::split_repo_tag(name).1.and_then(digest_tag) {
        None => true,
        Some(DigestTag::Referrers) => false,
        Some(DigestTag::Cosign) => digest_tags,
    }
}

/// The repository a ref name is in, normalized (`app:1` and `docker.io/library/app:2` are
/// one); the name itself when it is not a reference.
fn repository_of(name: &str) -> String {
    Reference::parse(name).map_or_else(
        |_| refname::split_repo_tag(name).0.to_string(),
        |r| r.name(),
    )
}

/// The name a ref stands for: its `io.containerd.image.name` when it has one, else its name.
fn source_reference(index: &ocitool_layout::IndexDoc, name: &str) -> Result<Reference> {
    let full = resolve::match_name(index, name)
        .into_iter()
        .filter_map(|p| index.descriptor(p))
        .find_map(|d| d.containerd_name().map(str::to_string));
    let r =
        Reference::parse(full.as_deref().unwrap_or(name)).or_else(|_| Reference::parse(name))?;
    Ok(r)
}

/// Where a ref goes: its own name, or mapped under `--to`.
fn destination(src: &Reference, options: &PushOptions) -> Result<Reference> {
    let Some(to) = &options.to else {
        return Ok(src.clone());
    };
    let (registry, prefix) = match to.split_once('/') {
        Some((r, p)) => (r, p.trim_end_matches('/')),
        None => (to.as_str(), ""),
    };
    let probe = format!("{registry}/x");
    if ocitool_spec::reference::split_domain(&probe).0.is_none() {
        return Err(Error::Invalid(format!(
            "--to {to}: the first part must be a registry host (with a '.' or a port, or localhost)"
        )));
    }
    let mut repo = String::new();
    if !prefix.is_empty() {
        repo.push_str(prefix);
        repo.push('/');
    }
    if options.scoped {
        repo.push_str(src.registry());
        repo.push('/');
    }
    repo.push_str(src.repository());
    let repo = if options.scoped {
        // A registry host is no path component (`:` is not allowed): write the port with '_'.
        repo.replace(':', "_")
    } else {
        repo
    };
    Ok(Reference::from_parts(
        registry,
        &repo,
        src.tag(),
        src.digest().cloned(),
    )?)
}

/// What the tag of `name` points at in the registry: its target, or with `platforms` the
/// one platform manifest of it that the layout holds. An index whose children are missing
/// is refused.
fn choose_root(
    graph: &Graph,
    name: &str,
    target: &Digest,
    platforms: &[Platform],
) -> Result<Digest> {
    let Some(node) = graph.nodes.get(target) else {
        return Err(Error::Invalid(format!(
            "{name}: {target} is not in the layout"
        )));
    };
    if node.kind != Kind::Index {
        resolve::check_image_platform(graph, Some(name), target, platforms)?;
        return Ok(target.clone());
    }
    if platforms.is_empty() {
        let missing = missing_children(graph, target);
        if !missing.is_empty() {
            return Err(Error::IncompleteIndex {
                name: name.to_string(),
                digest: target.clone(),
                total: node.children.len(),
                missing,
            });
        }
        return Ok(target.clone());
    }
    let mut found: Vec<Digest> = Vec::new();
    for (child, p) in &node.platforms {
        let present = graph
            .nodes
            .get(child)
            .is_some_and(|n| n.presence == Presence::Present);
        let Some(p) = p
            .clone()
            .or_else(|| graph.platforms_of(child).into_iter().next())
        else {
            continue;
        };
        if present && Platform::any_selects(platforms, &p) && !found.contains(child) {
            found.push(child.clone());
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Invalid(format!(
            "{name}: the layout holds no manifest of index {target} for {}",
            platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        _ => Err(Error::Invalid(format!(
            "{name}: the layout holds {} manifests of index {target} for {}; a tag names one: give one --platform per push, or push the index whole without --platform",
            found.len(),
            platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Children of an index (nested ones included) that the layout lacks, with their platforms.
fn missing_children(graph: &Graph, index: &Digest) -> Vec<String> {
    let mut out = Vec::new();
    let Some(n) = graph.nodes.get(index) else {
        return out;
    };
    for (child, p) in &n.platforms {
        match graph.nodes.get(child) {
            Some(c) if c.presence == Presence::Present => {
                if c.kind == Kind::Index {
                    out.extend(missing_children(graph, child));
                }
            }
            _ => out.push(match p {
                Some(p) => format!("{} ({p})", child.short()),
                None => child.short(),
            }),
        }
    }
    out
}

struct Pusher<'a> {
    client: &'a Client,
    layout: &'a Layout,
    graph: &'a Graph,
    options: &'a PushOptions,
    report: PushReport,
    /// Per registry: blobs known to be in a repository (for mounts).
    known: HashMap<String, HashMap<Digest, String>>,
    /// Per registry and repository: whether it has the referrers API.
    referrers_api: HashMap<String, bool>,
}

/// A blob to send to one repository.
struct BlobJob {
    registry: Arc<Registry>,
    repository: String,
    checked: Checked,
    mount_from: Option<String>,
}

impl Pusher<'_> {
    /// Documents reachable from `root`, children first, referrers after their subjects.
    fn documents(&self, root: &Digest) -> Vec<Digest> {
        let by_subject: BTreeMap<&Digest, Vec<&Digest>> = if self.options.referrers {
            let mut m: BTreeMap<&Digest, Vec<&Digest>> = BTreeMap::new();
            for (d, n) in &self.graph.nodes {
                if let Some(s) = &n.subject {
                    m.entry(s).or_default().push(d);
                }
            }
            m
        } else {
            BTreeMap::new()
        };
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        self.post_order(root, &by_subject, &mut seen, &mut out);
        out
    }

    fn post_order<'g>(
        &'g self,
        d: &'g Digest,
        by_subject: &BTreeMap<&'g Digest, Vec<&'g Digest>>,
        seen: &mut BTreeSet<&'g Digest>,
        out: &mut Vec<Digest>,
    ) {
        if !seen.insert(d) {
            return;
        }
        let Some(n) = self.graph.nodes.get(d) else {
            return;
        };
        if n.presence != Presence::Present {
            return;
        }
        if matches!(n.kind, Kind::Index | Kind::Manifest) {
            for c in &n.children {
                self.post_order(c, by_subject, seen, out);
            }
            out.push(d.clone());
        }
        if let Some(rs) = by_subject.get(d) {
            for r in rs {
                self.post_order(r, by_subject, seen, out);
            }
        }
    }

    /// Blobs (not manifests) under the documents of `root`.
    fn blobs(&self, docs: &[Digest]) -> Vec<Checked> {
        let mut out: Vec<Checked> = Vec::new();
        let mut seen = BTreeSet::new();
        for d in docs {
            for c in &self.graph.nodes[d].children {
                let Some(n) = self.graph.nodes.get(c) else {
                    continue;
                };
                if matches!(n.kind, Kind::Index | Kind::Manifest) || n.presence != Presence::Present
                {
                    continue;
                }
                if seen.insert(c.clone()) {
                    out.push(Checked {
                        digest: c.clone(),
                        size: n.size,
                    });
                }
            }
        }
        out
    }

    fn registry(&self, r: &Reference) -> Result<Arc<Registry>> {
        self.client.for_reference(r)
    }

    /// Sends every blob every item needs, in parallel: HEAD, mount or upload.
    fn send_blobs(&mut self, items: &[Item], progress: &dyn Progress) -> Result<()> {
        let mut jobs: Vec<BlobJob> = Vec::new();
        let mut planned: BTreeSet<(String, String, Digest)> = BTreeSet::new();
        for it in items {
            let reg = self.registry(&it.dest)?;
            let docs = self.documents(&it.root);
            for c in self.blobs(&docs) {
                let key = (
                    reg.name().to_string(),
                    it.dest.repository().to_string(),
                    c.digest.clone(),
                );
                if !planned.insert(key) {
                    continue;
                }
                // The source repository of the same registry may hold it already.
                let mount_from = it
                    .origin
                    .as_ref()
                    .filter(|o| {
                        o.registry() == it.dest.registry() && o.repository() != it.dest.repository()
                    })
                    .map(|o| o.repository().to_string());
                jobs.push(BlobJob {
                    registry: reg.clone(),
                    repository: it.dest.repository().to_string(),
                    checked: c,
                    mount_from,
                });
            }
        }
        if jobs.is_empty() {
            return Ok(());
        }
        // Blobs already sent to one repository of a registry are mounted into the others:
        // the first job of each digest per registry goes first, the rest after it.
        jobs.sort_by(|a, b| {
            b.checked
                .size
                .cmp(&a.checked.size)
                .then_with(|| a.checked.digest.cmp(&b.checked.digest))
        });
        let mut first: Vec<BlobJob> = Vec::new();
        let mut later: Vec<BlobJob> = Vec::new();
        let mut firsts: BTreeSet<(String, Digest)> = BTreeSet::new();
        for j in jobs {
            if firsts.insert((j.registry.name().to_string(), j.checked.digest.clone())) {
                first.push(j);
            } else {
                later.push(j);
            }
        }
        progress.start(
            "push",
            first.iter().chain(&later).map(|j| j.checked.size).sum(),
        );
        let r = self.run_jobs(first, progress).and_then(|()| {
            for j in &mut later {
                if let Some(repo) = self
                    .known
                    .get(j.registry.name())
                    .and_then(|m| m.get(&j.checked.digest))
                {
                    j.mount_from = Some(repo.clone());
                }
            }
            self.run_jobs(later, progress)
        });
        progress.finish();
        r
    }

    fn run_jobs(&mut self, mut jobs: Vec<BlobJob>, progress: &dyn Progress) -> Result<()> {
        jobs.reverse(); // pop takes the largest first
        let uploads = self
            .options
            .jobs
            .unwrap_or_else(|| default_uploads(jobs.iter().all(|j| j.registry.on_this_machine())))
            .max(1);
        let queue = Mutex::new(jobs);
        let failed = AtomicBool::new(false);
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        let sent = AtomicUsize::new(0);
        let mounted = AtomicUsize::new(0);
        let present = AtomicUsize::new(0);
        let bytes = AtomicU64::new(0);
        let done: Mutex<Vec<(String, Digest, String)>> = Mutex::new(Vec::new());
        let layout = self.layout;
        std::thread::scope(|s| {
            for _ in 0..uploads {
                s.spawn(|| {
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            return;
                        }
                        let Some(j) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                            return;
                        };
                        match send_blob(layout, &j, progress) {
                            Ok(outcome) => {
                                match outcome {
                                    Outcome::Present => present.fetch_add(1, Ordering::Relaxed),
                                    Outcome::Mounted => mounted.fetch_add(1, Ordering::Relaxed),
                                    Outcome::Sent => {
                                        bytes.fetch_add(j.checked.size, Ordering::Relaxed);
                                        sent.fetch_add(1, Ordering::Relaxed)
                                    }
                                };
                                done.lock().unwrap_or_else(|e| e.into_inner()).push((
                                    j.registry.name().to_string(),
                                    j.checked.digest.clone(),
                                    j.repository.clone(),
                                ));
                            }
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
        if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        for (reg, d, repo) in done.into_inner().unwrap_or_default() {
            self.known.entry(reg).or_default().entry(d).or_insert(repo);
        }
        self.report.blobs_sent += sent.into_inner();
        self.report.blobs_mounted += mounted.into_inner();
        self.report.blobs_present += present.into_inner();
        self.report.bytes_sent += bytes.into_inner();
        Ok(())
    }

    /// Manifests and indexes of one item, children first, then its tag and the referrers'
    /// fallback indexes.
    fn send_documents(&mut self, it: &Item) -> Result<()> {
        let reg = self.registry(&it.dest)?;
        let repo = it.dest.repository().to_string();
        let docs = self.documents(&it.root);
        for d in &docs {
            let n = &self.graph.nodes[d];
            let bytes = self.layout.read_json_blob(&Checked {
                digest: d.clone(),
                size: n.size,
            })?;
            let media_type = own_media_type(&bytes).unwrap_or_else(|| n.media_type.clone());
            let exists = reg.head_manifest(&repo, &d.to_string(), true)?.is_some();
            let mut indexed = false;
            if !exists {
                let put = reg.put_manifest(&repo, &d.to_string(), &bytes, &media_type, d)?;
                indexed = put.subject_indexed;
                self.report.manifests_put += 1;
            }
            if let Some(subject) = &n.subject
                && *d != it.root
            {
                self.report.referrers += 1;
                if !indexed {
                    self.fallback_index(&reg, &repo, subject, d, &bytes, &media_type)?;
                }
            }
        }
        // The tag last, when it does not already name the root.
        let root = &self.graph.nodes[&it.root];
        let media_type = {
            let bytes = self.layout.read_json_blob(&Checked {
                digest: it.root.clone(),
                size: root.size,
            })?;
            own_media_type(&bytes).unwrap_or_else(|| root.media_type.clone())
        };
        if let Some(tag) = it.dest.tag() {
            let current = reg.head_manifest(&repo, tag, true)?.and_then(|h| h.digest);
            if current.as_ref() != Some(&it.root) {
                let bytes = self.layout.read_json_blob(&Checked {
                    digest: it.root.clone(),
                    size: root.size,
                })?;
                reg.put_manifest(&repo, tag, &bytes, &media_type, &it.root)?;
            }
        }
        self.report.refs.push(PushedRef {
            source: it.source.clone(),
            destination: it.dest.to_string(),
            digest: it.root.clone(),
            media_type,
        });
        Ok(())
    }

    /// Adds referrer `d` of `subject` to the `sha256-<hex>` fallback index of a registry
    /// without the referrers API (a new index if there is none; nothing if it is listed).
    fn fallback_index(
        &mut self,
        reg: &Registry,
        repo: &str,
        subject: &Digest,
        d: &Digest,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<()> {
        let key = format!("{}/{repo}", reg.name());
        let has_api = match self.referrers_api.get(&key) {
            Some(x) => *x,
            None => {
                let x = reg.referrers(repo, subject)?.is_some();
                self.referrers_api.insert(key, x);
                x
            }
        };
        if has_api {
            return Ok(());
        }
        let tag = referrers_tag(subject);
        let mut index: Value = match reg.get_manifest(repo, &tag) {
            Ok(m) if media::is_index(&m.media_type) && m.digest != *subject => {
                serde_json::from_slice(&m.bytes).unwrap_or(Value::Null)
            }
            Ok(_) => Value::Null,
            Err(e) if e.is_not_found() => Value::Null,
            Err(e) => return Err(e),
        };
        if !index.is_object() {
            let mut m = Map::new();
            m.insert("schemaVersion".into(), Value::from(2));
            m.insert("mediaType".into(), Value::from(media::OCI_INDEX));
            m.insert("manifests".into(), Value::Array(Vec::new()));
            index = Value::Object(m);
        }
        let listed = index["manifests"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["digest"].as_str() == Some(&d.to_string()))
        });
        if listed {
            return Ok(());
        }
        let mut desc = Map::new();
        desc.insert("mediaType".into(), Value::from(media_type));
        desc.insert("digest".into(), Value::from(d.to_string()));
        desc.insert("size".into(), Value::from(bytes.len()));
        if let Ok(doc) = Document::parse(bytes, Some(media_type)) {
            let artifact_type = doc
                .artifact_type()
                .map(str::to_string)
                .or_else(|| match &doc {
                    Document::Manifest(m) => Some(m.config.media_type.clone()),
                    Document::Index(_) => None,
                });
            if let Some(a) = artifact_type {
                desc.insert("artifactType".into(), Value::from(a));
            }
            let ann = match &doc {
                Document::Manifest(m) => &m.annotations,
                Document::Index(i) => &i.annotations,
            };
            if !ann.is_empty() {
                desc.insert(
                    "annotations".into(),
                    serde_json::to_value(ann).unwrap_or(Value::Null),
                );
            }
        }
        match index.get_mut("manifests").and_then(Value::as_array_mut) {
            Some(a) => a.push(Value::Object(desc)),
            None => index["manifests"] = Value::Array(vec![Value::Object(desc)]),
        }
        let out = ocitool_spec::canonical::to_vec(&index);
        let digest = Digest::sha256(&out);
        reg.put_manifest(repo, &tag, &out, media::OCI_INDEX, &digest)?;
        Ok(())
    }
}

fn own_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct P {
        #[serde(default)]
        media_type: Option<String>,
    }
    serde_json::from_slice::<P>(bytes)
        .ok()
        .and_then(|p| p.media_type)
}

enum Outcome {
    Present,
    Mounted,
    Sent,
}

/// One blob into one repository.
fn send_blob(layout: &Layout, j: &BlobJob, progress: &dyn Progress) -> Result<Outcome> {
    let id = j.checked.digest.to_string();
    if j.registry
        .head_blob(&j.repository, &j.checked.digest, true)?
        .is_some()
    {
        progress.advance(j.checked.size);
        return Ok(Outcome::Present);
    }
    let (file, size) = layout.open_blob(&j.checked.digest)?;
    if size != j.checked.size {
        return Err(Error::Layout(ocitool_layout::Error::Verify {
            digest: j.checked.digest.clone(),
            path: layout.blob_path(&j.checked.digest),
            source: ocitool_digest::VerifyError::SizeMismatch {
                expected: j.checked.size,
                actual: size,
            },
        }));
    }
    progress.item_start(&id, size);
    let r = j.registry.upload_blob(
        &j.repository,
        &j.checked.digest,
        &file,
        size,
        j.mount_from.as_deref(),
        Some((progress, &id)),
    );
    progress.item_finish(&id);
    match r? {
        Uploaded::Mounted => {
            progress.advance(size);
            Ok(Outcome::Mounted)
        }
        Uploaded::Sent => Ok(Outcome::Sent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(to: &str, scoped: bool) -> PushOptions {
        PushOptions {
            to: Some(to.into()),
            scoped,
            ..Default::default()
        }
    }

    #[test]
    fn uploads_to_a_registry_here_leave_no_core_idle_and_none_starved() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(default_uploads(false), 4);
        assert_eq!(default_uploads(true), (cores + 1).min(4));
        assert!(default_uploads(true) >= 2, "one core still overlaps a sync");
    }

    #[test]
    fn maps_names_under_to() {
        let src = Reference::parse("nginx:1.27").unwrap();
        assert_eq!(
            destination(&src, &opts("registry.site.local/mirror", false))
                .unwrap()
                .to_string(),
            "registry.site.local/mirror/library/nginx:1.27"
        );
        assert_eq!(
            destination(&src, &opts("registry.site.local/mirror/", true))
                .unwrap()
                .to_string(),
            "registry.site.local/mirror/docker.io/library/nginx:1.27"
        );
        let src = Reference::parse("localhost:5000/team/app:2").unwrap();
        assert_eq!(
            destination(&src, &opts("127.0.0.1:6000", false))
                .unwrap()
                .to_string(),
            "127.0.0.1:6000/team/app:2"
        );
        assert_eq!(
            destination(&src, &opts("127.0.0.1:6000", true))
                .unwrap()
                .to_string(),
            "127.0.0.1:6000/localhost_5000/team/app:2"
        );
        assert!(destination(&src, &opts("mirror", false)).is_err());
        assert!(destination(&src, &opts("reg.io/UPPER", false)).is_err());
        let same = PushOptions::default();
        assert_eq!(destination(&src, &same).unwrap(), src);
    }
}
