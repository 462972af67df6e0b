use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use anyhow::Context;
use ocitool_archive::import::{self, ImportOptions, Mode};
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

/// Opens ARCHIVE, or standard input for `-`; returns the reader and its size if known.
pub fn open_input(path: &Path) -> anyhow::Result<(Box<dyn Read>, u64)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(io::stdin().lock()), 0));
    }
    let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((Box::new(f), size))
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
    options: ImportOptions,
) -> anyhow::Result<i32> {
    let (input, size) = open_input(archive)?;
    let mode = options.mode;
    let verb = if mode == Mode::Unpack {
        "unpack"
    } else {
        "import"
    };
    let progress = ctx.progress();
    let shown = if archive.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        archive.display().to_string()
    };
    let report = with_destination(ctx, layout_path, |layout| {
        use ocitool_layout::Progress;
        progress.start(verb, size);
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
        "{verb}ed {} image(s) from {shown} ({}{}): {} blob(s) added, {} already present, {} read",
        report.images.len(),
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
