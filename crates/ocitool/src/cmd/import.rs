use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use anyhow::Context;
use ocitool_archive::import::{self, ArchiveView, ImportOptions, Mode};
use ocitool_archive::ingest::Limits;
use ocitool_layout::Layout;
use serde_json::json;

use crate::cli::ArchiveLimits;
use crate::output::human_size;
use crate::{Ctx, exit};

/// The `--compression`/`--level` of `import`.
pub fn convert_to(
    c: Option<crate::cli::CompressionArg>,
    level: Option<i32>,
) -> Option<ocitool_archive::ingest::ConvertTo> {
    use ocitool_compress::Compression;
    let compression = match c? {
        crate::cli::CompressionArg::Gzip => Compression::Gzip,
        crate::cli::CompressionArg::Zstd => Compression::Zstd,
        crate::cli::CompressionArg::None => return None,
    };
    Some(ocitool_archive::ingest::ConvertTo {
        compression,
        level,
        zstd_workers: rayon::current_num_threads() as u32,
    })
}

pub fn limits(ctx: &Ctx, l: &ArchiveLimits) -> Limits {
    Limits {
        max_ratio: l.max_ratio.max(1),
        max_entries: l.max_entries,
        json_limit: ctx.layout_options().json_limit,
        ..Limits::default()
    }
}

/// Opens ARCHIVE, or standard input for `-`; returns the reader and its size if known (a
/// regular file; not a pipe or a device).
pub fn open_input(path: &Path) -> anyhow::Result<(Box<dyn Read>, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(io::stdin().lock()), None));
    }
    let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    Ok((Box::new(f), size))
}

/// How an archive is named in messages.
pub fn shown(archive: &Path) -> String {
    if archive.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        archive.display().to_string()
    }
}

/// Runs `f` on a layout that is created if missing; if it was created here and `f` fails,
/// the directory is removed again, so a failed command leaves the destination as it was.
/// (`copy` keeps it: what it verified and published there is what a rerun resumes from.)
pub fn with_destination<T>(
    ctx: &Ctx,
    path: &Path,
    f: impl FnOnce(&Layout) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let existed = path.exists();
    let layout = Layout::open_or_init(path, ctx.layout_options())?;
    let r = f(&layout);
    if r.is_err() && !existed {
        let _ = std::fs::remove_dir_all(path);
    }
    r
}

pub fn run(
    ctx: &mut Ctx,
    archive: &Path,
    layout_path: &Path,
    mut options: ImportOptions,
) -> anyhow::Result<i32> {
    let (input, size) = open_input(archive)?;
    options.size = size;
    let mode = options.mode;
    let verb = mode.verb();
    let progress = ctx.progress();
    let shown = shown(archive);
    let report = with_destination(ctx, layout_path, |layout| {
        use ocitool_layout::Progress;
        let r = import::import(layout, input, &options, &progress)
            .with_context(|| format!("{verb} {shown}"));
        progress.finish();
        r
    })?;
    ctx.committed();
    if ctx.global.json {
        let images: Vec<_> = report
            .images
            .iter()
            .map(|i| {
                json!({
                    "digest": i.digest.to_string(),
                    "mediaType": i.media_type,
                    "size": i.size,
                    "refs": i.refs,
                    "platforms": i.platforms,
                    "generated": i.generated,
                    "moved": i.moved.iter().map(|(r, from)| json!({"ref": r, "from": from})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let skipped: Vec<_> = report
            .skipped
            .iter()
            .map(|s| json!({"digest": s.digest.to_string(), "platform": s.platform, "reason": s.reason}))
            .collect();
        ctx.out.json(&json!({
            "images": images,
            "skipped": skipped,
            "dialect": report.dialect,
            "compression": report.compression,
            "blobsAdded": report.blobs_added,
            "blobsPresent": report.blobs_present,
            "bytesRead": report.bytes_read,
            "notes": report.notes,
        }))?;
        return Ok(exit::OK);
    }
    for i in &report.images {
        let names = if i.refs.is_empty() {
            "<untagged>".to_string()
        } else {
            i.refs.join(", ")
        };
        let plat = if i.platforms.is_empty() {
            String::new()
        } else {
            format!(" ({})", i.platforms.join(", "))
        };
        ctx.item(format!("{names} -> {}{plat}", i.digest))?;
        for (r, from) in &i.moved {
            ctx.item(format!("  {r} moved from {from}"))?;
        }
        if i.refs.is_empty() && mode == Mode::Import {
            ctx.note(format!(
                "the archive gives {} no tag; it is listed untagged; name it with `ocitool tag {} {} NAME`",
                i.digest,
                layout_path.display(),
                i.digest
            ));
        }
    }
    for n in &report.notes {
        ctx.note(n.clone());
    }
    for s in &report.skipped {
        ctx.note(format!(
            "skipped {} ({}): {}",
            s.platform.as_deref().unwrap_or("a manifest"),
            s.digest,
            s.reason
        ));
    }
    ctx.info(format!(
        "{verb}ed {} image(s) with {} ref(s) from {shown} ({}{}): {} blob(s) added, {} already present, {} read",
        report.images.len(),
        report.refs(),
        report.dialect,
        if report.compression == "none" {
            String::new()
        } else {
            format!(", {}", report.compression)
        },
        report.blobs_added,
        report.blobs_present,
        human_size(report.bytes_read)
    ));
    Ok(exit::OK)
}

/// Whether the first argument of a reading command (`ls`, `inspect`) names an archive: `-`
/// (standard input) or anything that is not a directory (a file, a device, a pipe). A
/// directory, or a path that does not exist, is a layout.
pub fn is_archive(path: &Path) -> bool {
    path.as_os_str() == "-" || std::fs::metadata(path).is_ok_and(|m| !m.is_dir())
}

/// Reads an archive without a layout (every member verified as `import` verifies it, nothing
/// written anywhere) and says on standard error what `import` would note: lenient reads,
/// skipped platforms, blobs the archive lacks.
pub fn read_archive(
    ctx: &mut Ctx,
    archive: &Path,
    limits: &ArchiveLimits,
) -> anyhow::Result<ArchiveView> {
    let (input, size) = open_input(archive)?;
    let shown = shown(archive);
    let progress = ctx.progress();
    let view = {
        use ocitool_layout::Progress;
        let r = import::read(
            input,
            Path::new(&shown),
            &self::limits(ctx, limits),
            size,
            &progress,
        )
        .with_context(|| format!("read {shown}"));
        progress.finish();
        r?
    };
    for n in &view.report.notes {
        ctx.note(n.clone());
    }
    for s in &view.report.skipped {
        ctx.note(format!(
            "{} ({}) would be skipped: {}",
            s.platform.as_deref().unwrap_or("a manifest"),
            s.digest,
            s.reason
        ));
    }
    if !view.missing.is_empty() {
        ctx.warn(format!(
            "{} blob(s) the images need are not in {shown} (a delta bundle?); only a layout that has them can take it: {}",
            view.missing.len(),
            view.missing
                .iter()
                .map(|(d, what)| format!("{d} ({what})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let generated = view.report.images.iter().filter(|i| i.generated).count();
    if generated > 0 {
        ctx.note(format!(
            "{shown} is a docker-save archive without OCI manifests: the manifest digests shown are those ocitool generates for {generated} image(s), the same `import` stores"
        ));
    }
    Ok(view)
}

/// The summary line of a read archive.
pub fn read_summary(archive: &Path, view: &ArchiveView) -> String {
    let r = &view.report;
    format!(
        "read {} ({}{}): {} image(s) with {} ref(s), {} blob(s), {} read and verified; nothing written",
        shown(archive),
        r.dialect,
        if r.compression == "none" {
            String::new()
        } else {
            format!(", {}", r.compression)
        },
        r.images.len(),
        r.refs(),
        r.blobs_added,
        human_size(r.bytes_read)
    )
}
