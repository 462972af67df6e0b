//! `export`: images of a layout as one archive, deterministic and streamed.
//!
//! The `docker` format is at once a Docker 25+ archive (an OCI layout: `oci-layout`,
//! `index.json` naming each ref with `io.containerd.image.name` and a tag-only
//! `org.opencontainers.image.ref.name`, `blobs/sha256/`) and a classic one (`manifest.json`
//! with `Config`, fully qualified `RepoTags`, `Layers`, and `repositories`), so every `docker load`, `podman
//! load`, `ctr import` and `skopeo copy docker-archive:` takes it. Layers are written as they
//! are stored (never recompressed: digests are kept); each is checked on the way to decompress
//! to its diff_id. The `oci` format is an oci-archive: the layout alone, refs stored verbatim.
//!
//! Entries are sorted, owners and mtimes fixed, so the same layout and refs give a
//! byte-identical archive.

use std::collections::{BTreeMap, BTreeSet};

use ocitool_compress::Compression;
use ocitool_digest::Digest;
use ocitool_layout::graph::{Graph, Presence, WalkOptions, layer_compression};
use ocitool_layout::resolve::{self, Target};
use ocitool_layout::{Layout, Progress};
use ocitool_spec::media::{self, Kind};
use ocitool_spec::views::Checked;
use ocitool_spec::{Descriptor, Platform, docker, refname};
use serde_json::{Map, Value, json};

use crate::errors::{Error, Result};
use crate::tarwrite::{Sink, TarWriter};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Docker,
    Oci,
}

/// What to export.
#[derive(Clone, Debug)]
pub enum Selection {
    /// Every `index.json` entry, its descriptor kept verbatim (OCI format only).
    All,
    /// These refs (names or digests); each name becomes a ref in the archive.
    Refs(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub format: Format,
    /// The platform to take from multi-platform refs.
    pub platform: Option<Platform>,
    /// Also carry referrers (documents whose `subject` is exported). OCI format only.
    pub referrers: bool,
    /// Blobs the receiver already has (an inventory): configs and layers listed here are left
    /// out. Manifests and indexes are always written, so the bundle resolves its refs.
    pub exclude: Option<BTreeMap<Digest, u64>>,
}

/// What `export` wrote.
#[derive(Clone, Debug, Default)]
pub struct ExportReport {
    pub images: Vec<ExportedImage>,
    pub blobs: usize,
    pub bytes: u64,
    /// Blobs left out because the inventory lists them, and their total size.
    pub excluded: usize,
    pub excluded_bytes: u64,
}

#[derive(Clone, Debug)]
pub struct ExportedImage {
    pub digest: Digest,
    pub media_type: String,
    pub names: Vec<String>,
    pub platforms: Vec<String>,
}

/// One image to write.
struct Item {
    target: Target,
    names: Vec<String>,
    /// Write `target.descriptor` into `index.json` as it is (naming annotations included).
    verbatim: bool,
}

/// Writes the archive of the selection to `out`: selects the images, walks and checks their
/// graph, decides the blobs and the metadata files, then streams the archive while every blob
/// is checked on other threads.
pub fn export<W: Sink>(
    layout: &Layout,
    selection: &Selection,
    options: &ExportOptions,
    out: W,
    progress: &dyn Progress,
) -> Result<(ExportReport, W)> {
    let _lock = layout.read_lock()?;
    let index = layout.read_index()?;
    let items = select(layout, &index, selection, options)?;
    check_one_image_per_name(&items, options.format)?;
    let (graph, reach) = walk_items(layout, &index, &items, options)?;
    let mut report = ExportReport::default();
    let blobs = blobs_to_write(&graph, reach, options, &mut report);
    let meta = Metadata::of(layout, &graph, &items, options.format, &mut report.images)?;
    let checks = checks_of(&graph, &blobs, options.format);
    let total: u64 = blobs
        .iter()
        .filter_map(|d| graph.nodes.get(d))
        .map(|n| n.size)
        .sum();
    progress.start("export", total);
    let archive = Archive {
        layout,
        graph: &graph,
        blobs: &blobs,
        format: options.format,
    };
    let (written, out) = archive.write(checks, meta, out, progress, &mut report.blobs)?;
    progress.finish();
    report.bytes = written;
    Ok((report, out))
}

/// The graph of every exported image (and, with `referrers`, of their referrers) and what the
/// images reach, refused if anything reached has a problem.
fn walk_items(
    layout: &Layout,
    index: &ocitool_layout::IndexDoc,
    items: &[Item],
    options: &ExportOptions,
) -> Result<(Graph, BTreeSet<Digest>)> {
    let roots: Vec<(String, Descriptor)> = items
        .iter()
        .map(|i| {
            (
                format!("image {}", i.target.digest),
                as_descriptor(&i.target),
            )
        })
        .collect();
    let walk = WalkOptions {
        read_configs: true,
        check_presence: true,
    };
    let mut graph = Graph::walk(layout, &roots, walk);
    let referrers = options.referrers && options.format == Format::Oci;
    if referrers {
        // Referrers listed in index.json are found through its graph, unlisted ones by scan.
        for (d, n) in Graph::walk_index(layout, index, walk).nodes {
            graph.nodes.entry(d).or_insert(n);
        }
        graph.add_unlisted_referrers(layout, &ocitool_layout::graph::list_blobs(layout)?, walk);
    }
    let root_digests: Vec<Digest> = items.iter().map(|i| i.target.digest.clone()).collect();
    let reach = graph.closure(&root_digests, referrers);
    if let Some(p) = graph
        .problems
        .iter()
        .find(|p| p.digest.as_ref().is_none_or(|d| reach.contains(d)))
    {
        return Err(Error::Image {
            image: p
                .digest
                .as_ref()
                .map_or_else(|| p.path.clone(), ToString::to_string),
            why: format!("{} (run `ocitool verify`; nothing was exported)", p.problem),
        });
    }
    Ok((graph, reach))
}

/// The blobs the archive holds: everything reached and present, but configs and layers the
/// receiver's inventory lists (counted in `report`).
fn blobs_to_write(
    graph: &Graph,
    reach: BTreeSet<Digest>,
    options: &ExportOptions,
    report: &mut ExportReport,
) -> BTreeSet<Digest> {
    let mut blobs: BTreeSet<Digest> = BTreeSet::new();
    for d in reach {
        let Some(n) = graph
            .nodes
            .get(&d)
            .filter(|n| n.presence == Presence::Present)
        else {
            continue; // absent where the spec allows it (a sparse index)
        };
        let is_doc = matches!(n.kind, Kind::Index | Kind::Manifest);
        if !is_doc
            && options
                .exclude
                .as_ref()
                .is_some_and(|ex| ex.get(&d) == Some(&n.size))
        {
            report.excluded += 1;
            report.excluded_bytes += n.size;
            continue;
        }
        blobs.insert(d);
    }
    blobs
}

/// The archive's metadata files, decided before any blob is written.
#[derive(Default)]
struct Metadata {
    /// `index.json`'s entries.
    index_entries: Vec<Value>,
    /// `manifest.json` (docker format).
    manifest_json: Vec<Value>,
    /// `repositories` (docker format): repository, tag, hex of the top layer's diff_id.
    repositories: BTreeMap<String, BTreeMap<String, String>>,
}

impl Metadata {
    /// Every item's entries, each image reported in `images`.
    fn of(
        layout: &Layout,
        graph: &Graph,
        items: &[Item],
        format: Format,
        images: &mut Vec<ExportedImage>,
    ) -> Result<Metadata> {
        let mut meta = Metadata::default();
        for it in items {
            let t = &it.target;
            images.push(ExportedImage {
                digest: t.digest.clone(),
                media_type: t.media_type.clone(),
                names: it.names.clone(),
                platforms: graph
                    .platforms_of(&t.digest)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            });
            if it.verbatim {
                meta.index_entries.push(t.descriptor.clone());
                continue;
            }
            let mut base = t.descriptor.clone();
            strip_names(&mut base);
            match format {
                Format::Oci => {
                    if it.names.is_empty() {
                        meta.index_entries.push(base.clone());
                    }
                    for n in &it.names {
                        let mut d = base.clone();
                        set_annotation(&mut d, refname::REF_NAME, n);
                        meta.index_entries.push(d);
                    }
                }
                Format::Docker => meta.add_docker_image(layout, graph, it, &base)?,
            }
        }
        Ok(meta)
    }

    /// An image of the docker format: an `index.json` entry per name (containerd's full name,
    /// the tag as ref.name), its `manifest.json` entry and its `repositories` tags.
    fn add_docker_image(
        &mut self,
        layout: &Layout,
        graph: &Graph,
        it: &Item,
        base: &Value,
    ) -> Result<()> {
        let t = &it.target;
        let m = graph.nodes[&t.digest]
            .manifest
            .as_ref()
            .ok_or_else(|| Error::Image {
                image: t.digest.to_string(),
                why: format!(
                    "is a {}, not an image manifest; the docker format carries images only (use --format oci)",
                    t.media_type
                ),
            })?;
        let cfg = graph
            .nodes
            .get(&m.config.digest)
            .and_then(|c| c.config.as_ref())
            .ok_or_else(|| Error::Image {
                image: t.digest.to_string(),
                why: "its config is not an image config (an artifact?); use --format oci".into(),
            })?;
        check_loadable_config(layout, it, &m.config, m.layers.len())?;
        let mut tags = Vec::new();
        for n in &it.names {
            let tag = docker_tag(n)?;
            let full = refname::docker_normalize(&tag);
            if tags.contains(&full) {
                continue; // a twin of a name written already
            }
            let (repo, tg) = refname::split_repo_tag(&tag);
            let tg = tg.unwrap_or("latest").to_string();
            let mut d = base.clone();
            set_annotation(
                &mut d,
                refname::CONTAINERD_IMAGE_NAME,
                &refname::docker_normalize(&tag),
            );
            set_annotation(&mut d, refname::REF_NAME, &tg);
            self.index_entries.push(d);
            if let Some(top) = cfg.diff_ids.last() {
                let hex = top
                    .split_once(':')
                    .map_or(top.as_str(), |(_, h)| h)
                    .to_string();
                self.repositories
                    .entry(repo.to_string())
                    .or_default()
                    .insert(tg, hex);
            }
            // Fully qualified, as skopeo and podman write them: `docker load` accepts them,
            // and podman then names the image docker.io/… as Docker does, rather than
            // localhost/….
            tags.push(full);
        }
        if it.names.is_empty() {
            self.index_entries.push(base.clone());
        }
        self.manifest_json.push(json!({
            "Config": blob_path(&m.config.digest),
            "RepoTags": tags,
            "Layers": m.layers.iter().map(|(l, _)| blob_path(&l.digest)).collect::<Vec<_>>(),
        }));
        Ok(())
    }
}

/// What is checked of each blob written, the costliest first (decompressions, then by size).
/// For the docker format every compressed layer is decompressed to its diff_id (its digest
/// checked in the same read); every other blob has its digest checked.
fn checks_of(graph: &Graph, blobs: &BTreeSet<Digest>, format: Format) -> Vec<(Checked, Check)> {
    let mut diff_of: BTreeMap<Digest, (Compression, Digest)> = BTreeMap::new();
    if format == Format::Docker {
        for n in graph.nodes.values() {
            let Some(m) = &n.manifest else { continue };
            let Some(cfg) = graph
                .nodes
                .get(&m.config.digest)
                .and_then(|c| c.config.as_ref())
            else {
                continue;
            };
            for ((l, kind), want) in m.layers.iter().zip(&cfg.diff_ids) {
                if let (Some(c), Ok(w)) = (layer_compression(*kind), Digest::parse(want)) {
                    diff_of.entry(l.digest.clone()).or_insert((c, w));
                }
            }
        }
    }
    let mut checks: Vec<(Checked, Check)> = blobs
        .iter()
        .map(|d| {
            let c = Checked {
                digest: d.clone(),
                size: graph.nodes[d].size,
            };
            let check = match diff_of.get(d) {
                Some((comp, want)) if !(*comp == Compression::None && want == d) => {
                    Check::DiffId(*comp, want.clone())
                }
                _ => Check::Digest,
            };
            (c, check)
        })
        .collect();
    checks.sort_by_key(|(c, k)| (!matches!(k, Check::DiffId(..)), std::cmp::Reverse(c.size)));
    checks
}

/// What the archive is written from.
struct Archive<'a> {
    layout: &'a Layout,
    graph: &'a Graph,
    blobs: &'a BTreeSet<Digest>,
    format: Format,
}

impl Archive<'_> {
    /// Streams the archive into `out` (by the kernel when it is a file) while `checks` run in
    /// parallel on other threads (one job per core, each blob read once more, from the page
    /// cache). The archive is reported written only when every check passed: the bytes
    /// written, with the end-of-archive blocks, and the sink.
    fn write<W: Sink>(
        &self,
        checks: Vec<(Checked, Check)>,
        meta: Metadata,
        out: W,
        progress: &dyn Progress,
        blobs_written: &mut usize,
    ) -> Result<(u64, W)> {
        let layout = self.layout;
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| -> Result<(u64, W)> {
            let checker = scope.spawn(|| -> Result<()> {
                use rayon::prelude::*;
                use std::sync::atomic::Ordering;
                checks.par_iter().try_for_each(|(c, k)| {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    match k {
                        Check::Digest => {
                            ocitool_layout::txn::verify_file(&layout.blob_path(&c.digest), c)
                                .map_err(Error::from)
                        }
                        Check::DiffId(comp, want) => check_diff_id(layout, c, *comp, want),
                    }
                })
            });
            let mut tw = TarWriter::new(out);
            let wrote = self.entries(&mut tw, meta, progress, blobs_written);
            if wrote.is_err() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let checked = checker
                .join()
                .unwrap_or_else(|_| Err(Error::Archive("the diff_id checker panicked".into())));
            wrote?;
            checked?;
            let written = tw.written() + 1024;
            Ok((written, tw.finish()?))
        })
    }

    /// The entries: blobs (sorted), then the metadata, like `docker save` (lexical order).
    fn entries<W: Sink>(
        &self,
        tw: &mut TarWriter<W>,
        meta: Metadata,
        progress: &dyn Progress,
        blobs_written: &mut usize,
    ) -> Result<()> {
        tw.dir("blobs/")?;
        let mut algs: Vec<&str> = self.blobs.iter().map(|d| d.algorithm().name()).collect();
        algs.dedup();
        for alg in algs {
            tw.dir(&format!("blobs/{alg}/"))?;
            for d in self.blobs.iter().filter(|d| d.algorithm().name() == alg) {
                let size = self.graph.nodes[d].size;
                tw.blob(
                    self.layout,
                    &blob_path(d),
                    &Checked {
                        digest: d.clone(),
                        size,
                    },
                    progress,
                )?;
                *blobs_written += 1;
            }
        }
        let mut index_doc = Map::new();
        index_doc.insert("schemaVersion".into(), Value::from(2));
        index_doc.insert("mediaType".into(), Value::from(media::OCI_INDEX));
        index_doc.insert("manifests".into(), Value::Array(meta.index_entries));
        tw.file("index.json", &ocitool_spec::canonical::to_vec(&index_doc))?;
        if self.format == Format::Docker {
            tw.file(
                "manifest.json",
                &ocitool_spec::canonical::to_vec(&meta.manifest_json),
            )?;
        }
        tw.file("oci-layout", ocitool_layout::OCI_LAYOUT_CONTENT)?;
        if self.format == Format::Docker {
            tw.file(
                "repositories",
                &ocitool_spec::canonical::to_vec(&meta.repositories),
            )?;
        }
        Ok(())
    }
}

/// What is checked of an exported blob.
enum Check {
    /// Its digest.
    Digest,
    /// Its digest, and that it decompresses (from this compression) to this diff_id.
    DiffId(Compression, Digest),
}

/// Decompresses a layer of the layout and compares its digest with the diff_id.
fn check_diff_id(
    layout: &Layout,
    c: &Checked,
    compression: Compression,
    want: &Digest,
) -> Result<()> {
    let (f, _) = layout.open_blob(&c.digest)?;
    // One read of the blob: its bytes feed the digest check and the decompressor.
    // The digest and the diff_id are hashed on two more threads, so that a large layer's
    // check (two hashes and a decompression) spreads over both cores.
    let mut raw = ocitool_digest::HashPipeReader::new(f, c.digest.algorithm());
    let decoded = (|| -> std::io::Result<Digest> {
        let dec = ocitool_compress::decoder(
            compression,
            std::io::BufReader::with_capacity(ocitool_layout::txn::BUF_SIZE, &mut raw),
            ocitool_compress::DecodeOptions::default(),
        )?;
        let mut h = ocitool_digest::HashPipeReader::new(dec, ocitool_digest::Algorithm::Sha256);
        ocitool_layout::txn::copy_limited(&mut h, &mut std::io::sink(), None)?;
        Ok(h.finish().0)
    })();
    // Whatever the decoder left (trailing data, or all of it after an error) is still hashed.
    std::io::copy(&mut raw, &mut std::io::sink()).map_err(|e| layout.read_error(&c.digest, e))?;
    let (actual, size) = raw.finish();
    // A corrupt blob is the cause of whatever its decompression says: reported first.
    if let Some(source) = ocitool_digest::VerifyError::compare(&c.digest, c.size, &actual, size) {
        return Err(ocitool_layout::Error::Verify {
            digest: c.digest.clone(),
            path: layout.blob_path(&c.digest),
            source,
        }
        .into());
    }
    let got = decoded.map_err(|e| Error::Image {
        image: format!("layer {}", c.digest),
        why: format!("does not decompress as {compression}: {e}"),
    })?;
    if got != *want {
        return Err(Error::Image {
            image: format!("layer {}", c.digest),
            why: format!("decompresses to {got}, but its diff_id is {want}"),
        });
    }
    Ok(())
}

/// The images to export: each ref resolved (several names of one image merged), or every
/// `index.json` entry verbatim. A multi-platform image becomes one platform's manifest for
/// the docker format, and for the oci format when a platform is asked for.
fn select(
    layout: &Layout,
    index: &ocitool_layout::IndexDoc,
    selection: &Selection,
    options: &ExportOptions,
) -> Result<Vec<Item>> {
    let picks: Vec<(Option<String>, Target, bool)> = match selection {
        Selection::Refs(refs) => refs
            .iter()
            .map(|r| {
                let found = resolve::resolve_named(layout, index, r)?;
                Ok((found.name, found.target, false))
            })
            .collect::<Result<_>>()?,
        Selection::All => {
            if options.format == Format::Docker {
                return Err(Error::Archive(
                    "the docker format needs the refs to export".into(),
                ));
            }
            index
                .entries()
                .into_iter()
                .map(|e| {
                    let c = e.descriptor.checked().map_err(|source| {
                        ocitool_layout::Error::Descriptor {
                            location: e.location(),
                            source,
                        }
                    })?;
                    let t = Target {
                        digest: c.digest,
                        size: c.size,
                        media_type: e.descriptor.media_type.clone(),
                        descriptor: index.raw_entry(e.position).unwrap_or(Value::Null),
                    };
                    Ok((e.display_name().map(str::to_string), t, true))
                })
                .collect::<Result<_>>()?
        }
    };
    let mut items: Vec<Item> = Vec::new();
    for (name, mut t, verbatim) in picks {
        // Names are carried verbatim if they are safe text (`unpack` and `import` read back
        // the same); a verbatim entry carries its own ref.name. The docker format's RepoTags
        // are checked where they are made.
        let written = if verbatim {
            t.descriptor
                .get("annotations")
                .and_then(|a| a.get(refname::REF_NAME))
                .and_then(Value::as_str)
                .map(str::to_string)
        } else {
            name.clone()
        };
        if let Some(n) = written {
            check_ref_name(&n)?;
        }
        // `--platform` (and, for the docker format, one platform of an index) as every
        // command applies it.
        let one = options.format == Format::Docker && t.kind() == Kind::Index;
        if options.platform.is_some() || one {
            let g = Graph::walk(
                layout,
                &[(
                    name.as_ref()
                        .map_or_else(|| t.digest.to_string(), |n| format!("ref {n}")),
                    as_descriptor(&t),
                )],
                WalkOptions {
                    read_configs: true,
                    check_presence: false,
                },
            );
            let picked =
                resolve::for_platform(&g, name.as_deref(), &t, options.platform.as_ref(), one)?;
            if picked.digest != t.digest {
                let mut v = picked.descriptor.clone();
                if verbatim && let Some(a) = t.descriptor.get("annotations") {
                    v["annotations"] = a.clone();
                }
                t = Target {
                    descriptor: v,
                    ..picked
                };
            }
        }
        match items
            .iter_mut()
            .find(|i| i.target.digest == t.digest && !verbatim && !i.verbatim)
        {
            Some(i) => i.names.extend(name),
            None => items.push(Item {
                target: t,
                names: name.into_iter().collect(),
                verbatim,
            }),
        }
    }
    Ok(items)
}

/// The docker format is for `docker load`, `podman load` and skopeo, which all decode the
/// config as an image config and refuse one without `rootfs` (Docker: "invalid image JSON, no
/// RootFS key") or whose `rootfs.diff_ids` do not pair with the layers ("layers length
/// mismatch"). Some registries' test images declare the image-config media type for a config
/// that is not one (`{}`); such an image is refused here, naming the ref, rather than written
/// into an archive that nothing loads.
fn check_loadable_config(
    layout: &Layout,
    it: &Item,
    config: &Checked,
    layers: usize,
) -> Result<()> {
    let image = || match it.names.as_slice() {
        [] => format!("{}", it.target.digest),
        names => format!("ref {}", names.join(", ")),
    };
    let bytes = layout.read_json_blob(config)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Image {
        image: image(),
        why: format!("its config {} is not JSON: {e}", config.digest),
    })?;
    let why = match v.get("rootfs") {
        None | Some(Value::Null) => Some("has no rootfs".to_string()),
        Some(r) => match r.get("diff_ids").and_then(Value::as_array) {
            None => Some("has no rootfs.diff_ids".to_string()),
            Some(ids) if ids.len() != layers => {
                Some(format!("lists {} diff_ids for {layers} layers", ids.len()))
            }
            Some(_) if r.get("type").and_then(Value::as_str) != Some("layers") => {
                Some("has a rootfs.type other than \"layers\"".to_string())
            }
            Some(_) => None,
        },
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::Image {
            image: image(),
            why: format!(
                "its config {} {why}: docker load, podman load and skopeo refuse such an image, so the docker format cannot carry it (`ocitool verify` reports it; --format oci keeps it as it is)",
                config.digest
            ),
        }),
    }
}

/// A ref name is carried into an archive verbatim if it is safe text
/// (`refname::validate_carried`, what `unpack` and `import` read back); a layout written by
/// another tool may hold one that is not.
fn check_ref_name(name: &str) -> Result<()> {
    refname::validate_carried(name).map_err(|e| Error::Image {
        image: format!("ref {name:?}"),
        why: format!(
            "{}: no archive carries it; give the image another name with `ocitool tag LAYOUT {name:?} NEW`",
            e.why
        ),
    })
}

/// Two refs that name different images must not become one name in the archive: for the
/// docker format one RepoTag (`app:1.0` and `docker.io/library/app:1.0` are both
/// `docker.io/library/app:1.0`: `docker load` and `podman load` would keep one image and
/// silently drop the other), for the oci format one image name however spelled (`unpack`
/// keeps one entry per name and its twins).
fn check_one_image_per_name(items: &[Item], format: Format) -> Result<()> {
    let mut named: Vec<(String, &str, &Digest)> = Vec::new();
    for it in items {
        let names: Vec<&str> = if it.verbatim {
            it.target
                .descriptor
                .get("annotations")
                .and_then(|a| a.get(refname::REF_NAME))
                .and_then(Value::as_str)
                .into_iter()
                .collect()
        } else {
            it.names.iter().map(String::as_str).collect()
        };
        for n in names {
            let key = match format {
                Format::Docker => refname::docker_normalize(&docker_tag(n)?),
                Format::Oci => ocitool_spec::reference::name_key(n).into_owned(),
            };
            named.push((key, n, &it.target.digest));
        }
    }
    named.sort();
    for w in named.windows(2) {
        let ((k, a, da), (k2, b, db)) = (&w[0], &w[1]);
        if k == k2 && da != db {
            let what = match format {
                Format::Docker => format!(
                    "both become RepoTag {k}, which docker load and podman load give one image"
                ),
                Format::Oci => {
                    "are one image name (docker reads them alike), which unpack keeps once".into()
                }
            };
            return Err(Error::Image {
                image: format!("refs {a:?} and {b:?}"),
                why: format!(
                    "name two images ({da}, {db}) but {what}; export one of them (`ocitool verify` reports such names)"
                ),
            });
        }
    }
    Ok(())
}

/// The RepoTag Docker would show for a ref: familiar, with `:latest` when it has no tag.
fn docker_tag(name: &str) -> Result<String> {
    let f = refname::familiar(name);
    let tag = match refname::split_repo_tag(f) {
        (_, Some(_)) => f.to_string(),
        (_, None) => format!("{f}:latest"),
    };
    docker::validate_repo_tag(&tag).map_err(|e| Error::Image {
        image: format!("ref {name:?}"),
        why: format!("cannot be a docker tag ({e}); give it a repo:tag name with `ocitool tag`, or export with --format oci"),
    })?;
    Ok(tag)
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.encoded())
}

fn as_descriptor(t: &Target) -> Descriptor {
    serde_json::from_value(t.descriptor.clone()).unwrap_or(Descriptor {
        media_type: t.media_type.clone(),
        digest: t.digest.to_string(),
        size: t.size as i64,
        ..Default::default()
    })
}

fn strip_names(desc: &mut Value) {
    if let Some(Value::Object(a)) = desc.get_mut("annotations") {
        a.remove(refname::REF_NAME);
        a.remove(refname::CONTAINERD_IMAGE_NAME);
        if a.is_empty()
            && let Some(o) = desc.as_object_mut()
        {
            o.remove("annotations");
        }
    }
}

fn set_annotation(desc: &mut Value, key: &str, value: &str) {
    if let Some(o) = desc.as_object_mut() {
        let a = o
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = a {
            m.insert(key.to_string(), Value::from(value));
        }
    }
}
