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

use crate::errors::{Error, Result};
use crate::fsutil;
use crate::graph::{Graph, Presence, WalkOptions, list_blobs};
use crate::index::IndexDoc;
use crate::layout::Layout;
use crate::lock;

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
    layout.state.ensure()?;
    let _gc = lock::acquire(&layout.state.gc_lock, true, layout.options.wait)?;
    let index = layout.read_index()?;
    let mut report = plan(layout, &index, options.force)?;
    report.dry_run = options.dry_run;
    if !options.dry_run {
        let mut dirs = BTreeSet::new();
        for (d, _) in &report.removed {
            let p = layout.blob_path(d);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", p)(e)),
            }
            dirs.insert(layout.blob_dir(d.algorithm()));
        }
        if layout.options.durable {
            for d in dirs {
                fsutil::fsync_dir(&d)?;
            }
        }
    }
    // Stale staging directories and temporary files of dead writers.
    if let Ok(rd) = fs::read_dir(&layout.state.tmp) {
        // Holding the gc lock exclusively, nothing here belongs to a live ocitool writer; an
        // entry that vanishes meanwhile (a writer of an older version, or a second remover) is
        // simply gone.
        for e in rd.flatten() {
            if !options.dry_run {
                let p = e.path();
                let r = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
                match r {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io("remove", p)(e)),
                }
            }
            report.stale_temp += 1;
        }
    }
    report.stale_temp += crate::partial::sweep_stale(layout, options.dry_run)?;
    Ok(report)
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
