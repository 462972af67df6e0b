//! `verify`: a recursive, offline fsck of a layout.
//!
//! It checks the structure (`oci-layout`, `index.json`), every reachable descriptor (digest
//! grammar, size, media type, presence), the content hash of every blob file (all of them, or
//! those the given refs reach), and each layer's uncompressed digest against the config's
//! `rootfs.diff_ids`. Each blob is read once: the raw bytes are hashed while they feed the
//! decompressor whose output is hashed for the diff_id. Blobs are processed in parallel,
//! largest first, on every core. Every problem is reported, not just the first.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};

use ocitool_compress::{Compression, DecodeOptions};
use ocitool_digest::{Algorithm, Digest, Hasher, HashingReader};
use ocitool_spec::Descriptor;
use ocitool_spec::media::Kind;
use rayon::prelude::*;

use crate::errors::Result;
use crate::graph::{Graph, Presence, Problem, WalkOptions, layer_compression};
use crate::index::IndexDoc;
use crate::layout::Layout;
use crate::txn::BUF_SIZE;

/// The outcome of `verify`.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Blobs whose content was hashed.
    pub checked: usize,
    /// Bytes read.
    pub bytes: u64,
    pub problems: Vec<Problem>,
    /// Things worth saying that are not problems (sparse indexes, foreign layers).
    pub notes: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What to verify.
pub enum Scope {
    /// Everything: every `index.json` descriptor and every blob file, referenced or not.
    Whole,
    /// Only what these roots reach.
    Roots(Vec<(String, Descriptor)>),
}

struct Job {
    digest: Digest,
    size: u64,
    compression: Option<Compression>,
}

struct Outcome {
    digest: Digest,
    bytes: u64,
    diff_id: Option<std::result::Result<Digest, String>>,
    problems: Vec<Problem>,
}

/// Verifies a layout. Problems go into the report; `Err` only for a failure to run at all.
pub fn verify(layout: &Layout, scope: Scope, progress: &dyn crate::Progress) -> Result<Report> {
    let mut report = Report::default();
    let whole = matches!(scope, Scope::Whole);
    if whole {
        report.problems.extend(structure_problems(layout));
    }
    let graph = walk_scope(layout, scope, &mut report);
    report.problems.extend(graph.problems.iter().cloned());
    note_allowed_absences(&graph, &mut report);
    let jobs = if whole {
        every_blob_file(layout, &graph, &mut report)?
    } else {
        reached_blobs(layout, &graph, &mut report)
    };
    let diff_ids = hash_blobs(layout, jobs, progress, &mut report);
    check_diff_ids(&graph, &diff_ids, &mut report);
    report.problems.sort();
    report.problems.dedup();
    report.notes.sort();
    report.notes.dedup();
    Ok(report)
}

/// The graph to check: every `index.json` descriptor (duplicate ref names and an unreadable
/// `index.json` reported), or the given roots.
fn walk_scope(layout: &Layout, scope: Scope, report: &mut Report) -> Graph {
    let opts = WalkOptions {
        read_configs: true,
        check_presence: true,
    };
    match scope {
        Scope::Whole => match layout.read_index() {
            Ok(index) => {
                let dups = duplicate_ref_names(&index, &mut report.notes);
                report.problems.extend(dups);
                // Once per distinct descriptor: 100,000 refs to a few images hold a few roots.
                let roots = index.walk_roots(layout.options().json_limit);
                Graph::walk(layout, &roots, opts)
            }
            Err(e) => {
                let problem = match &e {
                    crate::Error::Json { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                report.problems.push(Problem {
                    digest: None,
                    path: "index.json".into(),
                    problem,
                });
                Graph::default()
            }
        },
        Scope::Roots(roots) => Graph::walk(layout, &roots, opts),
    }
}

/// Blobs absent where the spec allows it are said, not reported as problems.
fn note_allowed_absences(graph: &Graph, report: &mut Report) {
    for (d, n) in &graph.nodes {
        if n.presence == Presence::AbsentAllowed {
            report.notes.push(format!(
                "{d} ({}) is absent, as the spec allows for {}",
                n.media_type,
                match n.kind {
                    Kind::Layer { .. } => "a non-distributable layer with URLs",
                    _ => "a child of an index",
                }
            ));
        }
    }
}

/// A blob to hash; a layer is decompressed to its diff_id in the same read.
fn job_for(graph: &Graph, digest: &Digest, size: u64) -> Job {
    Job {
        digest: digest.clone(),
        size,
        compression: graph
            .nodes
            .get(digest)
            .and_then(|n| layer_compression(n.kind)),
    }
}

/// Every file under `blobs/`, referenced or not, but those the walk already hashed; names
/// that are not digests and files that are not regular are problems, unsupported algorithm
/// directories notes.
fn every_blob_file(layout: &Layout, graph: &Graph, report: &mut Report) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for alg in Algorithm::ALL {
        let entries = match layout.list_blob_dir(alg) {
            Ok(entries) => entries,
            Err(crate::Error::UnsafePath { .. }) => continue, // reported above
            Err(e) => return Err(e),
        };
        for e in entries {
            let rel = format!("blobs/{}/{}", alg, e.name);
            match (&e.digest, e.file_type) {
                (None, _) => report.problems.push(Problem {
                    digest: None,
                    path: rel,
                    problem: format!("file name is not a valid {alg} digest"),
                }),
                (Some(d), "regular file") => {
                    let size = e.size;
                    if graph.nodes.get(d).is_some_and(|n| n.verified) {
                        report.checked += 1;
                        report.bytes += size;
                    } else {
                        jobs.push(job_for(graph, d, size));
                    }
                }
                (Some(d), kind) => {
                    // Reachable ones were already reported by the walk.
                    if !graph.nodes.contains_key(d) {
                        report.problems.push(Problem {
                            digest: Some(d.clone()),
                            path: rel,
                            problem: format!("is a {kind}, not a regular file"),
                        });
                    }
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(layout.root().join("blobs")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if Algorithm::from_name(&name).is_none() {
                report.notes.push(format!(
                    "blobs/{name} is not a supported digest algorithm; its content was not checked"
                ));
            }
        }
    }
    Ok(jobs)
}

/// The present blobs the roots reach, but those the walk already hashed.
fn reached_blobs(layout: &Layout, graph: &Graph, report: &mut Report) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (d, n) in &graph.nodes {
        if n.presence != Presence::Present {
            continue;
        }
        if n.verified {
            report.checked += 1;
            report.bytes += n.size;
            continue;
        }
        if let Ok(Some(size)) = layout.stat_blob(d) {
            jobs.push(job_for(graph, d, size));
        }
    }
    jobs
}

/// Hashes the blobs in parallel, largest first; returns each layer's diff_id (or why it has
/// none).
fn hash_blobs(
    layout: &Layout,
    mut jobs: Vec<Job>,
    progress: &dyn crate::Progress,
    report: &mut Report,
) -> BTreeMap<Digest, std::result::Result<Digest, String>> {
    jobs.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.digest.cmp(&b.digest)));
    progress.start("verify", jobs.iter().map(|j| j.size).sum());
    let outcomes: Vec<Outcome> = jobs
        .par_iter()
        .map(|j| check_blob(layout, j, progress))
        .collect();
    progress.finish();
    let mut diff_ids = BTreeMap::new();
    for o in outcomes {
        report.checked += 1;
        report.bytes += o.bytes;
        report.problems.extend(o.problems);
        if let Some(d) = o.diff_id {
            diff_ids.insert(o.digest, d);
        }
    }
    diff_ids
}

/// Each image manifest's layers against its config's `rootfs.diff_ids`.
fn check_diff_ids(
    graph: &Graph,
    diff_ids: &BTreeMap<Digest, std::result::Result<Digest, String>>,
    report: &mut Report,
) {
    for (md, n) in &graph.nodes {
        let Some(m) = &n.manifest else { continue };
        let Some(cfg_node) = graph.nodes.get(&m.config.digest) else {
            continue;
        };
        // As this manifest's own descriptor names its config (the same blob may be an
        // image config elsewhere and an artifact's empty config here, or the reverse).
        if ocitool_spec::media::classify(&m.config_media_type) != Kind::Config {
            continue; // an artifact: its "layers" are arbitrary blobs
        }
        let Some(cfg) = &cfg_node.config else {
            continue;
        };
        let cfg_path = Layout::blob_rel(&m.config.digest);
        if cfg.diff_ids.len() != m.layers.len() {
            report.problems.push(Problem {
                digest: Some(md.clone()),
                path: Layout::blob_rel(md),
                problem: format!(
                    "manifest has {} layers but its config {} lists {} diff_ids",
                    m.layers.len(),
                    m.config.digest,
                    cfg.diff_ids.len()
                ),
            });
        }
        for (i, ((layer, kind), want)) in m.layers.iter().zip(&cfg.diff_ids).enumerate() {
            if !matches!(kind, Kind::Layer { .. }) {
                continue;
            }
            let want = match Digest::parse(want) {
                Ok(w) => w,
                Err(e) => {
                    report.problems.push(Problem {
                        digest: Some(m.config.digest.clone()),
                        path: cfg_path.clone(),
                        problem: format!("rootfs.diff_ids[{i}]: {e}"),
                    });
                    continue;
                }
            };
            match diff_ids.get(&layer.digest) {
                Some(Ok(got)) if *got == want => {}
                Some(Ok(got)) => report.problems.push(Problem {
                    digest: Some(layer.digest.clone()),
                    path: Layout::blob_rel(&layer.digest),
                    problem: format!(
                        "layer {i} of manifest {md} decompresses to {got}, but config {} says diff_id {want}",
                        m.config.digest
                    ),
                }),
                Some(Err(_)) | None => {} // a read or decode problem is already reported, or absent
            }
        }
    }
}

/// What is wrong with the layout's directories themselves: no `blobs/` (the image-layout
/// spec requires it), and symlinks or special files where ocitool keeps blobs and state.
fn structure_problems(layout: &Layout) -> Vec<Problem> {
    let mut out = Vec::new();
    let rel = |p: &std::path::Path| {
        p.strip_prefix(layout.root())
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    match std::fs::symlink_metadata(layout.root().join("blobs")) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => out.push(Problem {
            digest: None,
            path: "blobs".into(),
            problem: "is missing (the image-layout spec requires a blobs directory)".into(),
        }),
        _ => {}
    }
    for e in layout.unsafe_paths() {
        let (path, problem) = match &e {
            crate::Error::UnsafePath {
                path,
                kind,
                expected,
            } => (
                rel(path),
                format!("is a {kind}, not a {expected}: ocitool neither follows nor opens it"),
            ),
            other => (String::new(), other.to_string()),
        };
        out.push(Problem {
            digest: None,
            path,
            problem,
        });
    }
    out
}

/// A ref name on several `index.json` entries is a problem: tools disagree on which entry it
/// means (skopeo takes the first, `ocitool inspect` calls it ambiguous when the digests
/// differ, and `copy` refuses it). So are twins (one image name spelled two ways that docker
/// reads as one, `app:1.0` and `docker.io/library/app:1.0`) that point at different images:
/// `ocitool` looks names up by their normalized form, so which image they name is ambiguous,
/// and `export` would write two images under one RepoTag. Twins of one image are a note.
fn duplicate_ref_names(index: &IndexDoc, notes: &mut Vec<String>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for d in index.duplicate_ref_names() {
        let exact = d
            .entries
            .iter()
            .enumerate()
            .any(|(i, e)| d.entries[..i].iter().any(|x| x.1 == e.1));
        let what = if d.twins() {
            let mut names: Vec<String> = d.entries.iter().map(|e| format!("{:?}", e.1)).collect();
            names.dedup();
            format!(
                "ref names {} are one image name (docker reads them alike) on {} entries ({})",
                names.join(", "),
                d.entries.len(),
                d.describe()
            )
        } else {
            format!(
                "ref name {:?} is on {} entries ({})",
                d.name,
                d.entries.len(),
                d.describe()
            )
        };
        if d.conflicting() {
            problems.push(Problem {
                digest: None,
                path: "index.json".into(),
                problem: format!("{what}: which image it names is ambiguous"),
            });
        } else if exact {
            problems.push(Problem {
                digest: None,
                path: "index.json".into(),
                problem: what,
            });
        } else {
            notes.push(format!(
                "index.json: {what}; `ocitool untag --name` removes a spelling"
            ));
        }
    }
    problems
}

fn check_blob(layout: &Layout, job: &Job, progress: &dyn crate::Progress) -> Outcome {
    let rel = Layout::blob_rel(&job.digest);
    let mut out = Outcome {
        digest: job.digest.clone(),
        bytes: 0,
        diff_id: None,
        problems: Vec::new(),
    };
    let problem = |out: &mut Outcome, text: String| {
        out.problems.push(Problem {
            digest: Some(job.digest.clone()),
            path: rel.clone(),
            problem: text,
        })
    };
    let file = match layout.open_blob(&job.digest) {
        Ok((f, _)) => f,
        Err(crate::Error::NotRegularFile { kind, .. }) => {
            problem(&mut out, format!("is a {kind}, not a regular file"));
            return out;
        }
        Err(e) => {
            problem(&mut out, format!("cannot be read: {e}"));
            return out;
        }
    };
    let mut raw = HashingReader::new(
        ProgressReader {
            inner: file,
            progress,
        },
        job.digest.algorithm(),
    );
    // An uncompressed layer hashed with sha256 is its own diff_id: no second hash.
    let decode = job
        .compression
        .filter(|c| !(*c == Compression::None && job.digest.algorithm() == Algorithm::Sha256));
    if let Some(c) = decode {
        let decoded = (|| -> io::Result<Digest> {
            let mut dec = ocitool_compress::decoder(
                c,
                BufReader::with_capacity(BUF_SIZE, &mut raw),
                DecodeOptions::default(),
            )?;
            let mut h = Hasher::new(Algorithm::Sha256);
            let mut buf = vec![0u8; BUF_SIZE];
            loop {
                let n = dec.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(h.finish())
        })();
        if let Err(e) = &decoded {
            problem(&mut out, format!("layer does not decompress as {c}: {e}"));
        }
        out.diff_id = Some(decoded.map_err(|e| e.to_string()));
    }
    // Whatever the decoder left (trailing data, or all of it after an error) is still hashed.
    if let Err(e) = io::copy(&mut raw, &mut io::sink()) {
        problem(&mut out, format!("cannot be read: {e}"));
        return out;
    }
    let (actual, size, _) = raw.finish();
    out.bytes = size;
    if job.compression.is_some() && decode.is_none() {
        out.diff_id = Some(Ok(actual.clone()));
    }
    if size != job.size {
        problem(
            &mut out,
            format!(
                "file changed while being read ({} then {size} bytes)",
                job.size
            ),
        );
    }
    if actual != job.digest {
        problem(&mut out, format!("content hashes to {actual}"));
        // A corrupt blob's diff_id means nothing; the content problem says it all.
        out.diff_id = Some(Err("corrupt".into()));
    }
    out
}

struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a dyn crate::Progress,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
