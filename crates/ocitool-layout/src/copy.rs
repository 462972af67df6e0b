//! `copy`: images from one layout to another with every blob they reach.
//!
//! Blobs the destination already has (same digest and size) are skipped. Every other blob is
//! copied by the kernel when it can (a reflink where the file system shares extents, else
//! `copy_file_range`), or hard-linked with `--link`, and the copy is hashed before it is
//! accepted; across file systems it is read, hashed and written in one pass. Blobs are
//! published as they are verified, so an interrupted copy run again copies only what had not
//! arrived; refs change only at the end, after every blob is present and verified.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::rc::Rc;
use std::sync::Mutex;

use ocitool_digest::Digest;
use ocitool_spec::media::Kind;
use ocitool_spec::views::Checked;
use ocitool_spec::{Descriptor, Platform};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use crate::errors::{Error, Result};
use crate::fsutil::FILE_MODE;
use crate::graph::{Graph, Presence, WalkOptions, list_blobs};
use crate::index::{DuplicateName, IndexDoc, location};
use crate::layout::Layout;
use crate::resolve;
use crate::txn::{BUF_SIZE, BackgroundSync, Transaction};

use crate::Progress;

/// What to copy.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// Refs to copy; empty: every `index.json` entry.
    pub refs: Vec<String>,
    /// From multi-platform refs, copy this platform only (the destination ref then points at
    /// that platform's manifest, unchanged).
    pub platform: Option<Platform>,
    /// Also copy referrers (documents whose `subject` is copied).
    pub referrers: bool,
    /// Hard-link blobs instead of copying them (same file system only).
    pub link: bool,
    /// Move tags the destination's policy protects.
    pub force: bool,
    /// Copy blobs the destination already has too, replacing them with verified copies
    /// (`--repair`).
    pub repair: bool,
}

/// How blobs were copied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    #[default]
    None,
    Reflink,
    CopyFileRange,
    HardLink,
    ReadWrite,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Reflink => "reflink",
            Method::CopyFileRange => "copy_file_range",
            Method::HardLink => "hard link",
            Method::ReadWrite => "read and write",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct CopyReport {
    /// `(name or None, digest)` of every `index.json` entry written at the destination.
    pub refs: Vec<(Option<String>, Digest)>,
    pub copied: usize,
    pub bytes_copied: u64,
    pub skipped: usize,
    pub methods: Vec<Method>,
}

/// One entry to create at the destination.
struct Entry {
    name: Option<String>,
    descriptor: Source,
    digest: Digest,
}

/// The descriptor of an entry to write.
enum Source {
    /// An entry of the source's `index.json`, copied as it is (parsed only when written, so
    /// copying 100,000 refs does not hold 100,000 parsed descriptors).
    Position(usize),
    /// One made here (a resolved ref, or one platform of an index); entries that point at
    /// the same platform share it.
    Made(Rc<Value>),
}

/// Copies the selected images from `src` into `dst`: picks the entries, walks and checks
/// what they reach, copies the blobs `dst` lacks (hashed, synced and installed in parallel)
/// and writes the entries in one `index.json` update.
pub fn copy(
    src: &Layout,
    dst: &Layout,
    options: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    let _src_lock = src.read_lock()?;
    let index = src.read_index()?;
    let (entries, graph) = walk_entries(src, &index, options)?;
    let reach = checked_reach(&graph, &entries, options.referrers)?;
    // The transaction holds the destination's gc lock from here on: a blob found present
    // below cannot be swept by a concurrent `gc` before the refs that need it are written.
    let mut txn = Transaction::begin(dst)?;
    let mut report = CopyReport::default();
    let todo = blobs_to_copy(dst, &graph, &reach, options.repair, &mut report)?;
    txn.set_force(options.force);
    txn.set_repair(options.repair);
    report.methods = copy_blobs(src, dst, &mut txn, &todo, options.link, progress)?;
    report.copied = todo.len();
    report.bytes_copied = todo.iter().map(|c| c.size).sum();
    report.refs = txn.commit(|idx| {
        let mut written = Vec::with_capacity(entries.len());
        for e in entries {
            let made;
            let descriptor = match &e.descriptor {
                Source::Made(v) => v.as_ref(),
                Source::Position(p) => {
                    made = index.raw_entry(*p).unwrap_or(Value::Null);
                    &made
                }
            };
            match &e.name {
                Some(n) => {
                    idx.set_ref(n, descriptor);
                }
                None => {
                    idx.ensure_listed(descriptor);
                }
            }
            written.push((e.name, e.digest));
        }
        Ok(written)
    })?;
    Ok(report)
}

/// The entries to write at the destination (`--platform` applied), and the graph of what
/// they reach, with their referrers when asked: walked from them alone, so that a problem in
/// an image no copied ref reaches does not stop the copy.
fn walk_entries(
    src: &Layout,
    index: &IndexDoc,
    options: &CopyOptions,
) -> Result<(Vec<Entry>, Graph)> {
    // Configs are read only to check an image's platform against `--platform`.
    let walk = WalkOptions {
        read_configs: options.platform.is_some(),
        check_presence: true,
    };
    let json_limit = src.options().json_limit;
    let (mut entries, roots) = if options.refs.is_empty() {
        (every_entry(src, index)?, index.walk_roots(json_limit))
    } else {
        named_entries(src, index, &options.refs)?
    };
    let mut graph = Graph::walk(src, &roots, walk);
    drop(roots);
    if options.referrers {
        let blobs = list_blobs(src)?;
        if options.refs.is_empty() {
            graph.add_unlisted_referrers(src, &blobs, walk);
        } else {
            // Referrers listed in `index.json` are found by walking every entry (as any
            // unlisted ones); only those whose subject a copied ref reaches join the graph.
            let mut all = Graph::walk(src, &index.walk_roots(json_limit), walk);
            all.add_unlisted_referrers(src, &blobs, walk);
            let candidates: Vec<(Digest, u64)> = all
                .nodes
                .iter()
                .filter(|(_, n)| n.subject.is_some())
                .map(|(d, n)| (d.clone(), n.size))
                .collect();
            graph.add_unlisted_referrers(src, &candidates, walk);
        }
    }
    if let Some(p) = &options.platform {
        pick_platform(&graph, &mut entries, p)?;
    }
    Ok((entries, graph))
}

/// Everything the entries reach (their referrers too, when asked), refused if any of it has
/// a problem.
fn checked_reach(graph: &Graph, entries: &[Entry], referrers: bool) -> Result<BTreeSet<Digest>> {
    let roots: BTreeSet<Digest> = entries.iter().map(|e| e.digest.clone()).collect();
    let roots: Vec<Digest> = roots.into_iter().collect();
    let reach = graph.closure(&roots, referrers);
    let relevant = |p: &&crate::Problem| p.digest.as_ref().is_none_or(|d| reach.contains(d));
    if let Some(p) = graph.problems.iter().find(relevant) {
        return Err(Error::Invalid(format!(
            "cannot copy: {}: {} (nothing was copied; run `ocitool verify`)",
            p.digest
                .as_ref()
                .map_or_else(|| p.path.clone(), ToString::to_string),
            p.problem
        )));
    }
    Ok(reach)
}

/// The present blobs of `reach` that `dst` lacks (all of them with `repair`), largest first;
/// the others are counted as skipped.
fn blobs_to_copy(
    dst: &Layout,
    graph: &Graph,
    reach: &BTreeSet<Digest>,
    repair: bool,
    report: &mut CopyReport,
) -> Result<Vec<Checked>> {
    let mut todo: Vec<Checked> = Vec::new();
    for d in reach {
        let n = &graph.nodes[d];
        if n.presence != Presence::Present {
            continue; // absent where the spec allows it (a sparse index)
        }
        if !repair && dst.stat_blob(d)? == Some(n.size) {
            report.skipped += 1;
        } else {
            todo.push(Checked {
                digest: d.clone(),
                size: n.size,
            });
        }
    }
    todo.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.digest.cmp(&b.digest)));
    Ok(todo)
}

/// Each blob: copied, hashed, fsynced by a worker, then installed into the transaction at
/// once. A copy made by the kernel is hashed while a helper thread waits for its fsync: the
/// disk writes it back as the CPU reads it. Returns the copy methods used.
fn copy_blobs(
    src: &Layout,
    dst: &Layout,
    txn: &mut Transaction,
    todo: &[Checked],
    link: bool,
    progress: &dyn Progress,
) -> Result<Vec<Method>> {
    let staging = txn.staging_path()?;
    progress.start("copy", todo.iter().map(|c| c.size).sum());
    let durable = dst.options().durable;
    let txn_cell = Mutex::new(txn);
    let methods = Mutex::new(Vec::new());
    todo.par_iter().try_for_each(|c| -> Result<()> {
        let (p, m) = copy_blob(src, c, &staging, link, progress)?;
        let synced = if durable && m != Method::HardLink {
            let f = File::open(&p).map_err(Error::io("open", p.to_path_buf()))?;
            Some(BackgroundSync::spawn(f))
        } else {
            None
        };
        let verified = if m == Method::ReadWrite {
            Ok(()) // hashed as it was copied
        } else {
            verify_named(&p, c, &src.blob_path(&c.digest))
        };
        let synced = synced.map_or(Ok(()), BackgroundSync::wait);
        verified?;
        synced.map_err(Error::io("fsync", p.to_path_buf()))?;
        if m != Method::ReadWrite && m != Method::CopyFileRange {
            progress.advance(c.size);
        }
        txn_cell
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .install_verified(&c.digest, p)?;
        let mut ms = methods.lock().unwrap_or_else(|e| e.into_inner());
        if !ms.contains(&m) {
            ms.push(m);
        }
        Ok(())
    })?;
    progress.finish();
    Ok(methods.into_inner().unwrap_or_default())
}

/// Every entry of the source: named ones keep their name, the others are listed unnamed. A
/// ref name on several entries is refused (which one would the copy mean?), and so are
/// twins (`app:1.0`, `docker.io/library/app:1.0`) on different images; twins of one image
/// arrive as one ref (the last spelling).
fn every_entry(src: &Layout, index: &IndexDoc) -> Result<Vec<Entry>> {
    if let Some(dup) = index
        .duplicate_ref_names()
        .iter()
        .find(|d| d.conflicting() || !d.twins())
    {
        return Err(duplicate_name(src, dup));
    }
    let mut entries = Vec::with_capacity(index.len());
    for (position, k) in index.views() {
        let c = k.checked().map_err(|source| Error::Descriptor {
            location: location(position),
            source,
        })?;
        entries.push(Entry {
            name: k.annotations.ref_name.map(|n| n.0.into_owned()),
            descriptor: Source::Position(position),
            digest: c.digest,
        });
    }
    Ok(entries)
}

/// The entries of the refs named, and the roots of their walk (once per descriptor).
#[allow(clippy::type_complexity)]
fn named_entries(
    src: &Layout,
    index: &IndexDoc,
    refs: &[String],
) -> Result<(Vec<Entry>, Vec<(String, Descriptor)>)> {
    let mut entries = Vec::with_capacity(refs.len());
    let mut roots = Vec::new();
    let mut seen = HashSet::new();
    for r in refs {
        if Digest::parse(r).is_err()
            && index.positions_named(r).len() > 1
            && let Some(dup) = index
                .duplicate_ref_names()
                .into_iter()
                .find(|d| d.spells(r))
        {
            return Err(duplicate_name(src, &dup));
        }
        // Carried under the name it was found by: as typed, or the stored spelling of a twin
        // (`app` copies `app:latest`); a digest, `name@digest` or a digest prefix unnamed.
        let found = resolve::resolve_named(src, index, r)?;
        if let Some(n) = &found.name {
            ocitool_spec::refname::validate_carried(n)?;
        }
        let (name, t) = (found.name, found.target);
        if seen.insert((t.digest.clone(), t.size, t.media_type.clone())) {
            let d = Descriptor::deserialize(&t.descriptor)
                .map_err(|e| Error::Invalid(format!("ref {r}: {e}")))?;
            roots.push((format!("ref {r}"), d));
        }
        entries.push(Entry {
            name,
            digest: t.digest,
            descriptor: Source::Made(Rc::new(t.descriptor)),
        });
    }
    Ok((entries, roots))
}

fn duplicate_name(src: &Layout, dup: &DuplicateName<'_>) -> Error {
    Error::Invalid(format!(
        "cannot copy: ref {:?} is on {} entries of {} ({}); nothing was copied (`ocitool untag --name` removes them by name, `ocitool tag` then names one)",
        dup.name,
        dup.entries.len(),
        src.index_path().display(),
        dup.describe()
    ))
}

/// Applies `--platform` to every entry ([`resolve::for_platform`]): an entry that points at a
/// multi-platform index points at its manifest for `platform` instead (once per index); an
/// image of another platform is an error.
fn pick_platform(graph: &Graph, entries: &mut [Entry], platform: &Platform) -> Result<()> {
    let mut picked: HashMap<Digest, (Digest, Rc<Value>)> = HashMap::new();
    for e in entries {
        let Some(node) = graph.nodes.get(&e.digest) else {
            continue;
        };
        if node.kind != Kind::Index {
            resolve::check_image_platform(
                graph,
                e.name.as_deref(),
                &e.digest,
                std::slice::from_ref(platform),
            )?;
            continue;
        }
        if !picked.contains_key(&e.digest) {
            let target = resolve::Target {
                digest: e.digest.clone(),
                size: node.size,
                media_type: node.media_type.clone(),
                descriptor: Value::Null,
            };
            let t = resolve::for_platform(graph, e.name.as_deref(), &target, Some(platform), true)?;
            picked.insert(e.digest.clone(), (t.digest, Rc::new(t.descriptor)));
        }
        let (child, v) = &picked[&e.digest];
        e.digest = child.clone();
        e.descriptor = Source::Made(v.clone());
    }
    Ok(())
}

/// Copies one blob into the staging directory. A blob copied through user space
/// (`Method::ReadWrite`) is verified on the way; the caller verifies the others.
fn copy_blob(
    src: &Layout,
    c: &Checked,
    staging: &std::path::Path,
    link: bool,
    progress: &dyn Progress,
) -> Result<(tempfile::TempPath, Method)> {
    let src_path = src.blob_path(&c.digest);
    let (src_file, size) = src.open_blob(&c.digest)?;
    if size != c.size {
        return Err(Error::Verify {
            digest: c.digest.clone(),
            path: src_path,
            source: ocitool_digest::VerifyError::SizeMismatch {
                expected: c.size,
                actual: size,
            },
        });
    }
    let tmp = tempfile::Builder::new()
        .prefix("copy-")
        .permissions(fs::Permissions::from_mode(FILE_MODE))
        .tempfile_in(staging)
        .map_err(Error::io("create a temporary blob in", staging))?;
    let (mut dst_file, dst_path) = tmp.into_parts();
    if link {
        drop(dst_file);
        fs::remove_file(&dst_path).map_err(Error::io("remove", dst_path.to_path_buf()))?;
        match fs::hard_link(&src_path, &dst_path) {
            Ok(()) => return Ok((dst_path, Method::HardLink)),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                // Another file system: fall back to a copy.
                dst_file =
                    File::create(&dst_path).map_err(Error::io("create", dst_path.to_path_buf()))?;
                fs::set_permissions(&dst_path, fs::Permissions::from_mode(FILE_MODE))
                    .map_err(Error::io("chmod", dst_path.to_path_buf()))?;
            }
            Err(e) => return Err(Error::io("hard link", dst_path.to_path_buf())(e)),
        }
    }
    if reflink_copy::reflink_file(&src_file, &dst_file).is_ok() {
        return Ok((dst_path, Method::Reflink));
    }
    // copy_file_range: the kernel copies, possibly without touching user space at all.
    let mut copied: u64 = 0;
    let mut kernel_ok = true;
    while copied < c.size {
        match rustix::fs::copy_file_range(
            &src_file,
            None,
            &dst_file,
            None,
            (c.size - copied).min(1 << 30) as usize,
        ) {
            Ok(0) => break,
            Ok(n) => {
                copied += n as u64;
                progress.advance(n as u64);
            }
            Err(_) if copied == 0 => {
                kernel_ok = false;
                break;
            }
            Err(e) => {
                return Err(Error::io("copy_file_range", dst_path.to_path_buf())(
                    e.into(),
                ));
            }
        }
    }
    if kernel_ok {
        return Ok((dst_path, Method::CopyFileRange));
    }
    // Read, hash and write in one pass.
    let mut r = ocitool_digest::VerifyingReader::new(src_file, c.digest.clone(), c.size);
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = r.read(&mut buf).map_err(|e| src.read_error(&c.digest, e))?;
        if n == 0 {
            break;
        }
        dst_file
            .write_all(&buf[..n])
            .map_err(Error::io("write", dst_path.to_path_buf()))?;
        progress.advance(n as u64);
    }
    Ok((dst_path, Method::ReadWrite))
}

/// Hashes the copy; a mismatch means the *source* blob is corrupt (the kernel copied it
/// faithfully), so the error names the source file.
fn verify_named(copy: &std::path::Path, c: &Checked, src_path: &std::path::Path) -> Result<()> {
    crate::txn::verify_file(copy, c).map_err(|e| match e {
        Error::Verify { digest, source, .. } => Error::Verify {
            digest,
            path: src_path.to_path_buf(),
            source,
        },
        other => other,
    })
}
