//! `gc`: delete blobs that nothing in `index.json` reaches.
//!
//! It holds the `gc` lock exclusively, so no ocitool writer is between adding a blob and
//! referencing it, and every staging directory under `.ocitool/tmp/` belongs to a dead
//! process. It marks from every `index.json` descriptor (named or not) through nested
//! indexes, manifests, configs and layers, plus referrers (documents whose `subject` is
//! marked, listed or not). If any document it must read is damaged, it refuses to sweep:
//! a manifest it cannot read may reference blobs it would otherwise delete.

use std::collections::BTreeSet;
use std::fs;

use ocitool_digest::Digest;

use rustix::fs::{AtFlags, FileType};

use crate::errors::{Error, Result};
use crate::graph::{Graph, Presence, WalkOptions, list_blobs};
use crate::index::IndexDoc;
use crate::layout::Layout;
use crate::lock::LockName;

/// What `gc` did or would do.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// Blobs removed (or that would be), with their sizes.
    pub removed: Vec<(Digest, u64)>,
    pub freed_bytes: u64,
    /// Blobs kept.
    pub kept: usize,
    /// Stale temporary entries removed from `.ocitool/tmp/`.
    pub stale_temp: usize,
    pub dry_run: bool,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct GcOptions {
    pub dry_run: bool,
    /// Sweep even if some documents are damaged.
    pub force: bool,
}

pub fn gc(layout: &Layout, options: GcOptions) -> Result<GcReport> {
    // A dry run only reads: like every reader it creates nothing (so it works on read-only
    // media) and takes the gc lock shared, if it exists.
    let _gc = if options.dry_run {
        layout.read_lock()?
    } else {
        layout.state.ensure()?;
        Some(
            layout
                .state
                .acquire(LockName::Gc, true, layout.options.wait)?,
        )
    };
    let index = layout.read_index()?;
    let mut report = plan(layout, &index, options.force)?;
    report.dry_run = options.dry_run;
    if !options.dry_run {
        sweep(layout, &report.removed)?;
    }
    report.stale_temp = remove_stale_temp(layout, options.dry_run)?;
    report.stale_temp += crate::partial::sweep_stale(layout, options.dry_run)?;
    Ok(report)
}

/// Deletes the blobs of the plan (relative to `blobs/<alg>/`, never through a symlink).
fn sweep(layout: &Layout, removed: &[(Digest, u64)]) -> Result<()> {
    let mut dirs = BTreeSet::new();
    for (d, _) in removed {
        layout.remove_blob(d)?;
        dirs.insert(d.algorithm());
    }
    if layout.options.durable {
        for alg in dirs {
            layout.sync_blob_dir(alg)?;
        }
    }
    Ok(())
}

/// Removes the stale staging directories and temporary files of dead writers from
/// `.ocitool/tmp/` (opened without following symlinks; entries are removed relative to it);
/// returns how many there were.
fn remove_stale_temp(layout: &Layout, dry_run: bool) -> Result<usize> {
    let Some(tmp) = layout.state.open_tmp()? else {
        return Ok(0);
    };
    let tmp_path = &layout.state.tmp;
    let read_err = |e: rustix::io::Errno| Error::io("read directory", tmp_path)(e.into());
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&tmp).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            names.push(name);
        }
    }
    if dry_run {
        return Ok(names.len());
    }
    // Holding the gc lock exclusively, nothing here belongs to a live ocitool writer; an
    // entry that vanishes meanwhile (a writer of an older version, or a second remover) is
    // simply gone.
    let mut removed = 0;
    for name in names {
        let shown = tmp_path.join(name.to_string_lossy().as_ref());
        let st = match rustix::fs::statat(&tmp, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(Error::io("stat", shown)(e.into())),
        };
        let r: std::io::Result<()> = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            // A real directory inside the verified tmp/ (std's remove_dir_all never
            // follows symlinks inside what it removes).
            fs::remove_dir_all(&shown)
        } else {
            rustix::fs::unlinkat(&tmp, name.as_c_str(), AtFlags::empty()).map_err(Into::into)
        };
        match r {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => removed += 1,
            Err(e) => return Err(Error::io("remove", shown)(e)),
        }
    }
    Ok(removed)
}

/// What `gc` would remove if `index` were the layout's `index.json` (used by `prune` to say
/// what it frees). Marks from every entry through the graph and unlisted referrers; refuses,
/// unless `force`, when a document it must read is damaged.
pub fn plan(layout: &Layout, index: &IndexDoc, force: bool) -> Result<GcReport> {
    let walk = WalkOptions::default();
    let mut graph = Graph::walk_index(layout, index, walk);
    let blobs = list_blobs(layout)?;
    graph.add_unlisted_referrers(layout, &blobs, walk);
    if !force {
        // Missing blobs are fine (nothing below them to keep); damaged documents are not.
        let damaged = graph.problems.iter().find(|p| {
            p.digest
                .as_ref()
                .and_then(|d| graph.nodes.get(d))
                .is_none_or(|n| n.presence != Presence::Missing)
        });
        if let Some(p) = damaged {
            let what = p
                .digest
                .as_ref()
                .map_or_else(|| p.path.clone(), ToString::to_string);
            return Err(Error::GcUnsafe {
                first: format!("{what}: {}", p.problem),
            });
        }
    }
    let mut report = GcReport {
        dry_run: true,
        ..Default::default()
    };
    for (d, size) in &blobs {
        if graph.nodes.contains_key(d) {
            report.kept += 1;
        } else {
            report.removed.push((d.clone(), *size));
            report.freed_bytes += size;
        }
    }
    Ok(report)
}
