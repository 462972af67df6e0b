//! `convert`: a new image whose layers are recompressed (gzip, zstd or uncompressed) and/or
//! whose media types move between the OCI and Docker families. The config blob is untouched,
//! so the image ID and the diff_ids stay the same; every produced layer is checked against its
//! diff_id before a manifest refers to it; SOURCE is untouched and TARGET is tagged at the end
//! in one `index.json` update.
//!
//! One pass per layer: the source blob is read once, verified against its digest, decoded,
//! hashed (the diff_id check) and re-encoded into a staged blob hashed as it is written.
//! zstd uses the library's multi-threaded mode on every core, two layers at a time; gzip and
//! decompression run one layer per core.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};

use ocitool_compress::{Compression, DecodeOptions, EncodeOptions, Encoder};
use ocitool_digest::{Algorithm, Digest, HashPipeReader, Hasher};
use ocitool_spec::media::{self, Kind};
use ocitool_spec::views::Checked;
use ocitool_spec::{Descriptor, Platform};
use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::Progress;
use crate::errors::{Error, Result};
use crate::graph::{Graph, Presence, WalkOptions};
use crate::layout::Layout;
use crate::resolve::{self, Target};
use crate::txn::{BUF_SIZE, Transaction};

/// Media type families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Oci,
    Docker,
}

#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    /// Target layer compression (default: keep each layer's).
    pub compression: Option<Compression>,
    /// Compression level (gzip 0-9, default 6; zstd 1-22, default 3).
    pub level: Option<i32>,
    /// Target media type family (default: keep the source's).
    pub family: Option<Family>,
    /// From a multi-platform source, convert only this platform; TARGET then points at its
    /// converted manifest.
    pub platform: Option<Platform>,
    /// Move TARGET even if the layout's policy protects it.
    pub force: bool,
}

/// One layer of the result.
#[derive(Clone, Debug)]
pub struct LayerResult {
    pub from: Checked,
    pub from_media_type: String,
    pub to: Checked,
    pub to_media_type: String,
    /// The source blob was used as it is.
    pub reused: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ConvertReport {
    pub source: Option<Digest>,
    pub target_digest: Option<Digest>,
    pub target_media_type: String,
    /// Manifests written (0 when nothing had to change: TARGET then names SOURCE's bytes).
    pub manifests_written: usize,
    pub layers: Vec<LayerResult>,
}

/// A layer to re-encode.
#[derive(Clone, Debug)]
struct Job {
    blob: Checked,
    from: Compression,
    diff_id: Digest,
}

/// Converts SOURCE into TARGET: checks the options, walks SOURCE, plans the layers that change
/// compression, re-encodes them, writes the manifests (and index) that change, and sets TARGET
/// in one `index.json` update.
pub fn convert(
    layout: &Layout,
    source: &str,
    target: &str,
    options: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    // A name ocitool creates: one docker, podman and containerd load.
    ocitool_spec::refname::validate_new(target)?;
    check_options(options)?;
    let mut txn = Transaction::begin(layout)?;
    txn.set_force(options.force);
    let (src, graph) = walk_source(layout, source)?;
    let root = resolve::for_platform(
        &graph,
        (Digest::parse(source).is_err()).then_some(source),
        &src,
        options.platform.as_ref(),
        false,
    )?;
    let manifests = manifests_of(&graph, &root, source)?;
    let jobs = plan_layers(&graph, &manifests, options)?;
    let produced = reencode_all(layout, &mut txn, jobs, options, progress)?;

    let mut report = ConvertReport {
        source: Some(src.digest.clone()),
        ..Default::default()
    };
    let mut new_manifests: BTreeMap<Digest, (Checked, String)> = BTreeMap::new();
    for md in &manifests {
        if let Some(written) = rewrite_manifest(
            layout,
            &mut txn,
            &graph,
            md,
            &produced,
            options,
            &mut report.layers,
        )? {
            report.manifests_written += 1;
            new_manifests.insert(md.clone(), written);
        }
    }
    let (new_root, root_mt) = new_root(layout, &mut txn, &root, &new_manifests, options.family)?;
    let mut desc = root.descriptor.clone();
    if let Some(o) = desc.as_object_mut() {
        o.insert("mediaType".into(), Value::from(root_mt.as_str()));
        o.insert("digest".into(), Value::from(new_root.digest.to_string()));
        o.insert("size".into(), Value::from(new_root.size));
        o.remove("annotations");
    }
    report.target_digest = Some(new_root.digest.clone());
    report.target_media_type = root_mt;
    txn.commit(|idx| {
        idx.set_ref(target, &desc);
        Ok(())
    })?;
    Ok(report)
}

/// Refuses options that cannot make a loadable image, before anything is read.
fn check_options(options: &ConvertOptions) -> Result<()> {
    if let Some(c) = options.compression
        && !c.is_layer_codec()
    {
        return Err(Error::Invalid(format!(
            "{c} is not a layer compression; use gzip, zstd or none"
        )));
    }
    if let (Some(Compression::Zstd), Some(Family::Docker)) = (options.compression, options.family) {
        return Err(Error::Invalid(
            "Docker v2s2 manifests have no zstd layer media type that docker and skopeo accept; use --media-types oci for zstd".into(),
        ));
    }
    if let Some(c) = options.compression
        && let Some(l) = options.level
    {
        let (min, max) = ocitool_compress::level_range(c);
        if c != Compression::None && !(min..=max).contains(&l) {
            return Err(Error::Invalid(format!(
                "--level {l} is out of range for {c} ({min}..={max})"
            )));
        }
    }
    Ok(())
}

/// Resolves SOURCE and walks its graph with configs read and blobs checked present; any
/// problem refuses the conversion.
fn walk_source(layout: &Layout, source: &str) -> Result<(Target, Graph)> {
    let index = layout.read_index()?;
    let src = resolve::resolve(layout, &index, source)?;
    let walk = WalkOptions {
        read_configs: true,
        check_presence: true,
    };
    let graph = Graph::walk(
        layout,
        &[(format!("ref {source}"), as_descriptor(&src))],
        walk,
    );
    if let Some(p) = graph.problems.first() {
        return Err(Error::Invalid(format!(
            "cannot convert {source}: {}: {} (run `ocitool verify`)",
            p.digest
                .as_ref()
                .map_or_else(|| p.path.clone(), ToString::to_string),
            p.problem
        )));
    }
    Ok((src, graph))
}

/// The manifests to convert: the root itself, or the present manifests of the root index.
fn manifests_of(graph: &Graph, root: &Target, source: &str) -> Result<Vec<Digest>> {
    match root.kind() {
        Kind::Manifest => Ok(vec![root.digest.clone()]),
        Kind::Index => Ok(graph.nodes[&root.digest]
            .children
            .iter()
            .filter(|d| {
                graph
                    .nodes
                    .get(*d)
                    .is_some_and(|n| n.kind == Kind::Manifest && n.presence == Presence::Present)
            })
            .cloned()
            .collect()),
        _ => Err(Error::Invalid(format!(
            "{source} is a {}, not an image manifest or index",
            root.media_type
        ))),
    }
}

/// One job per (layer, target compression) whose compression changes, with the diff_id its
/// decoded bytes must hash to. Artifacts, foreign layers and unknown layer types are refused.
fn plan_layers(
    graph: &Graph,
    manifests: &[Digest],
    options: &ConvertOptions,
) -> Result<BTreeMap<(Digest, Compression), Job>> {
    let mut jobs: BTreeMap<(Digest, Compression), Job> = BTreeMap::new();
    for md in manifests {
        let node = &graph.nodes[md];
        let m = node
            .manifest
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("{md} is not an image manifest")))?;
        let cfg = graph
            .nodes
            .get(&m.config.digest)
            .and_then(|c| c.config.as_ref())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{md} is an artifact (its config is {}), not an image: it is not converted",
                    m.config_media_type
                ))
            })?;
        for (i, (l, kind)) in m.layers.iter().enumerate() {
            let Kind::Layer {
                compression,
                distributable,
            } = *kind
            else {
                return Err(Error::Invalid(format!(
                    "{md} layers[{i}] has a media type ocitool cannot convert"
                )));
            };
            if !distributable {
                return Err(Error::Invalid(format!(
                    "{md} layers[{i}] ({}) is a non-distributable (foreign) layer; it is not converted",
                    l.digest
                )));
            }
            let to = options.compression.unwrap_or(compression);
            if to != compression {
                let want = cfg
                    .diff_ids
                    .get(i)
                    .and_then(|d| Digest::parse(d).ok())
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "{md}: config {} has no valid diff_id for layer {i}",
                            m.config.digest
                        ))
                    })?;
                jobs.entry((l.digest.clone(), to)).or_insert(Job {
                    blob: l.clone(),
                    from: compression,
                    diff_id: want,
                });
            }
        }
    }
    Ok(jobs)
}

/// Re-encodes every planned layer, largest first, in parallel. Writers are made here (they
/// need the transaction), filled in parallel, and finished here: each is the transaction's own
/// blob writer, hashed as it is written.
fn reencode_all(
    layout: &Layout,
    txn: &mut Transaction,
    jobs: BTreeMap<(Digest, Compression), Job>,
    options: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<BTreeMap<(Digest, Compression), Checked>> {
    let mut job_list: Vec<((Digest, Compression), Job)> = jobs.into_iter().collect();
    job_list.sort_by_key(|j| std::cmp::Reverse(j.1.blob.size));
    progress.start("convert", job_list.iter().map(|(_, j)| j.blob.size).sum());
    let threads = rayon::current_num_threads().max(1) as u32;
    let mut work: Vec<(&(Digest, Compression), &Job, crate::txn::BlobWriter)> = Vec::new();
    for (key, job) in &job_list {
        work.push((key, job, txn.blob_writer(Algorithm::Sha256)?));
    }
    let encode = |(key, job, w): (&(Digest, Compression), &Job, crate::txn::BlobWriter),
                  workers: u32| {
        reencode(layout, job, key.1, options.level, workers, w, progress).map(|w| (key.clone(), w))
    };
    let results: Vec<((Digest, Compression), crate::txn::BlobWriter)> =
        if job_list.iter().any(|((_, c), _)| *c == Compression::Zstd) {
            // zstd parallelises inside each stream, and two layers go at once all the same:
            // one layer's stream leaves the cores idle at its start and end, and while its
            // reader waits (measured on the 3 GiB bench layout: 9.3 s one at a time, 7.5-7.8 s
            // two at once, for ~70 MiB of memory instead of ~45).
            work.into_par_iter()
                .map(|j| {
                    let workers = if j.0.1 == Compression::Zstd {
                        threads
                    } else {
                        0
                    };
                    encode(j, workers)
                })
                .collect::<Result<_>>()?
        } else {
            work.into_par_iter()
                .map(|j| encode(j, 0))
                .collect::<Result<_>>()?
        };
    progress.finish();
    let mut produced: BTreeMap<(Digest, Compression), Checked> = BTreeMap::new();
    for (key, w) in results {
        let made = txn.finish_blob(w, None)?;
        produced.insert(key, made);
    }
    Ok(produced)
}

/// Manifest `md` with its layers pointed at their converted blobs and its media types in the
/// target family, staged; `None` when nothing changes (the manifest stays as it is, bytes and
/// digest). Every layer's outcome is pushed to `layers`.
fn rewrite_manifest(
    layout: &Layout,
    txn: &mut Transaction,
    graph: &Graph,
    md: &Digest,
    produced: &BTreeMap<(Digest, Compression), Checked>,
    options: &ConvertOptions,
    layers_out: &mut Vec<LayerResult>,
) -> Result<Option<(Checked, String)>> {
    let raw = layout.read_json_blob(&Checked {
        digest: md.clone(),
        size: graph.nodes[md].size,
    })?;
    let mut doc: Value =
        serde_json::from_slice(&raw).map_err(|e| Error::Invalid(format!("{md}: {e}")))?;
    let from_family = if media::is_docker(&graph.nodes[md].media_type) {
        Family::Docker
    } else {
        Family::Oci
    };
    let family = options.family.unwrap_or(from_family);
    let mut changed = family != from_family;
    let layers = doc
        .get_mut("layers")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::Invalid(format!("{md}: no layers array")))?;
    let m = graph.nodes[md]
        .manifest
        .as_ref()
        .expect("plan_layers checked it");
    for (l, (c, kind)) in layers.iter_mut().zip(&m.layers) {
        let Kind::Layer { compression, .. } = *kind else {
            continue;
        };
        let to = options.compression.unwrap_or(compression);
        let (out, reused) = if to == compression {
            (c.clone(), true)
        } else {
            changed = true;
            (produced[&(c.digest.clone(), to)].clone(), false)
        };
        let mt = media_type_of(to, family);
        if let Some(o) = l.as_object_mut() {
            if !reused {
                drop_compression_annotations(o);
            }
            o.insert("mediaType".into(), Value::from(mt.as_str()));
            o.insert("digest".into(), Value::from(out.digest.to_string()));
            o.insert("size".into(), Value::from(out.size));
        }
        layers_out.push(LayerResult {
            from: c.clone(),
            from_media_type: media_type_of(compression, from_family),
            to: out,
            to_media_type: mt.to_string(),
            reused,
        });
    }
    if !changed {
        return Ok(None);
    }
    let (mmt, cmt) = match family {
        Family::Oci => (media::OCI_MANIFEST, media::OCI_CONFIG),
        Family::Docker => (media::DOCKER_MANIFEST, media::DOCKER_CONFIG),
    };
    if let Some(o) = doc.as_object_mut() {
        o.insert("mediaType".into(), Value::from(mmt));
        if let Some(cfg) = o.get_mut("config").and_then(Value::as_object_mut) {
            cfg.insert("mediaType".into(), Value::from(cmt));
        }
    }
    let bytes = ocitool_spec::canonical::to_vec(&doc);
    let c = txn.stage_bytes(&bytes, None)?;
    Ok(Some((c, mmt.to_string())))
}

/// The new root and its media type: the converted manifest, or an index over the converted
/// manifests (in the target family), or the root as it is when nothing changed.
fn new_root(
    layout: &Layout,
    txn: &mut Transaction,
    root: &Target,
    new_manifests: &BTreeMap<Digest, (Checked, String)>,
    family: Option<Family>,
) -> Result<(Checked, String)> {
    if root.kind() == Kind::Manifest {
        return Ok(match new_manifests.get(&root.digest) {
            Some((c, mt)) => (c.clone(), mt.clone()),
            None => (root.checked(), root.media_type.clone()),
        });
    }
    if new_manifests.is_empty() && family.is_none() {
        return Ok((root.checked(), root.media_type.clone()));
    }
    let raw = layout.read_json_blob(&root.checked())?;
    let mut doc: Value = serde_json::from_slice(&raw)
        .map_err(|e| Error::Invalid(format!("{}: {e}", root.digest)))?;
    if let Some(children) = doc.get_mut("manifests").and_then(Value::as_array_mut) {
        for ch in children.iter_mut() {
            let Some(d) = ch
                .get("digest")
                .and_then(Value::as_str)
                .and_then(|d| Digest::parse(d).ok())
            else {
                continue;
            };
            if let (Some((c, mt)), Some(o)) = (new_manifests.get(&d), ch.as_object_mut()) {
                o.insert("mediaType".into(), Value::from(mt.as_str()));
                o.insert("digest".into(), Value::from(c.digest.to_string()));
                o.insert("size".into(), Value::from(c.size));
            }
        }
    }
    let imt = match family {
        Some(Family::Docker) => media::DOCKER_MANIFEST_LIST,
        Some(Family::Oci) => media::OCI_INDEX,
        None => root.media_type.as_str(),
    }
    .to_string();
    if let Some(o) = doc.as_object_mut() {
        o.insert("mediaType".into(), Value::from(imt.as_str()));
    }
    let bytes = ocitool_spec::canonical::to_vec(&doc);
    Ok((txn.stage_bytes(&bytes, None)?, imt))
}

/// Reads a layer once: its bytes hashed (on another thread) and checked against its digest,
/// decoded and hashed for the diff_id check (an uncompressed layer is its own diff_id, so it is
/// hashed once), and re-encoded into `out`.
fn reencode(
    layout: &Layout,
    job: &Job,
    to: Compression,
    level: Option<i32>,
    zstd_workers: u32,
    out: crate::txn::BlobWriter,
    progress: &dyn Progress,
) -> Result<crate::txn::BlobWriter> {
    let d = &job.blob.digest;
    let not_diff_id = || {
        Error::Invalid(format!(
            "layer {d} decompresses to something other than the config's diff_id {}; nothing was converted",
            job.diff_id
        ))
    };
    if job.from == Compression::None && *d != job.diff_id {
        return Err(not_diff_id());
    }
    let (file, size) = layout.open_blob(d)?;
    if size != job.blob.size {
        return Err(Error::Verify {
            digest: d.clone(),
            path: layout.blob_path(d),
            source: ocitool_digest::VerifyError::SizeMismatch {
                expected: job.blob.size,
                actual: size,
            },
        });
    }
    let mut raw = HashPipeReader::new(
        ProgressRead {
            inner: file,
            progress,
        },
        d.algorithm(),
    );
    let mut enc = Encoder::new(
        to,
        out,
        EncodeOptions {
            level,
            zstd_workers,
        },
    )
    .map_err(|e| Error::Invalid(e.to_string()))?;
    let write_err = |e: io::Error| Error::io("write a converted layer of", d.to_string())(e);
    let mut buf = vec![0u8; BUF_SIZE];
    if job.from == Compression::None {
        loop {
            let n = raw
                .read(&mut buf)
                .map_err(|e| Error::io("read", layout.blob_path(d))(e))?;
            if n == 0 {
                break;
            }
            enc.write_all(&buf[..n]).map_err(write_err)?;
        }
    } else {
        let mut diff = Hasher::new(Algorithm::Sha256);
        {
            let mut dec = ocitool_compress::decoder(
                job.from,
                BufReader::with_capacity(BUF_SIZE, &mut raw),
                DecodeOptions::default(),
            )
            .map_err(|e| Error::io("read", layout.blob_path(d))(e))?;
            loop {
                let n = dec.read(&mut buf).map_err(|e| {
                    Error::Invalid(format!(
                        "layer {d} does not decompress as {}: {e}",
                        job.from
                    ))
                })?;
                if n == 0 {
                    break;
                }
                diff.update(&buf[..n]);
                enc.write_all(&buf[..n]).map_err(write_err)?;
            }
        }
        // What the decoder left unread is still part of the blob's digest.
        io::copy(&mut raw, &mut io::sink())
            .map_err(|e| Error::io("read", layout.blob_path(d))(e))?;
        if diff.finish() != job.diff_id {
            return Err(not_diff_id());
        }
    }
    let (actual, n) = raw.finish();
    if let Some(source) = ocitool_digest::VerifyError::compare(d, job.blob.size, &actual, n) {
        return Err(Error::Verify {
            digest: d.clone(),
            path: layout.blob_path(d),
            source,
        });
    }
    let mut w = enc.finish().map_err(write_err)?;
    // The writers wait for `finish_blob` until every layer is done; their buffers need not.
    w.complete().map_err(write_err)?;
    Ok(w)
}

/// Annotations that describe one compressed form of a layer (zstd:chunked and eStargz tables
/// of contents) are wrong for another and are dropped when a layer is re-encoded.
fn drop_compression_annotations(o: &mut Map<String, Value>) {
    if let Some(Value::Object(a)) = o.get_mut("annotations") {
        a.retain(|k, _| {
            !(k.starts_with("io.github.containers.zstd-chunked.")
                || k.starts_with("containerd.io/snapshot/stargz/"))
        });
        if a.is_empty() {
            o.remove("annotations");
        }
    }
}

/// The layer media type of a layer codec (what layers' media types and `--compression` give;
/// xz and bzip2 are refused on the way in).
fn media_type_of(c: Compression, f: Family) -> String {
    media::layer_media_type(c, f == Family::Docker)
        .unwrap_or(media::OCI_LAYER_TAR)
        .to_string()
}

fn as_descriptor(t: &Target) -> Descriptor {
    serde_json::from_value(t.descriptor.clone()).unwrap_or(Descriptor {
        media_type: t.media_type.clone(),
        digest: t.digest.to_string(),
        size: t.size as i64,
        ..Default::default()
    })
}

struct ProgressRead<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for ProgressRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
