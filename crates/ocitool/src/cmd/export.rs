use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use ocitool_archive::export::{self, ExportOptions, Format, Selection};
use ocitool_archive::tarwrite::{FileSink, Sink};
use ocitool_layout::Layout;
use ocitool_spec::Platform;
use serde_json::json;

use crate::cli::{ExportArgs, ExportFormat};
use crate::output::human_size;
use crate::{Ctx, exit};

/// Writes to `path` through a temporary file in the same directory, renamed into place only
/// when `f` succeeds (so a failed or killed export leaves no partial archive), fsynced first
/// when `durable`; `-` writes to standard output.
pub fn write_output<T>(
    path: &Path,
    durable: bool,
    f: impl FnOnce(&mut dyn Sink) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if path.as_os_str() == "-" {
        let stdout = io::stdout();
        let mut w = io::BufWriter::with_capacity(1 << 20, stdout.lock());
        let r = f(&mut w)?;
        w.flush().context("write standard output")?;
        return Ok(r);
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (file, tmp) = tempfile::Builder::new()
        .prefix(".ocitool-partial-")
        // An archive is meant to be shared: 0666 less the umask, as `tar` or `cp` would create it.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?
        .into_parts();
    let mut sink = FileSink::new(file, durable)
        .with_context(|| format!("start writing {}", path.display()))?;
    let r = f(&mut sink)?;
    sink.finish()
        .with_context(|| format!("write and fsync {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("rename into {}", path.display()))?;
    Ok(r)
}

pub fn run(ctx: &mut Ctx, a: &ExportArgs) -> anyhow::Result<i32> {
    let (layout, refs, output, format) = (&a.layout, &a.refs, a.output.as_path(), a.format);
    let platform: Option<Platform> = a.platform.as_deref().map(str::parse).transpose()?;
    let layout = Layout::open(layout, ctx.layout_options())?;
    let options = ExportOptions {
        format: match format {
            ExportFormat::Docker => Format::Docker,
            ExportFormat::Oci => Format::Oci,
        },
        platform,
        referrers: false,
        exclude: None,
    };
    let progress = ctx.progress();
    let report = write_output(output, !ctx.global.no_fsync, |w| {
        let (r, _) = export::export(
            &layout,
            &Selection::Refs(refs.to_vec()),
            &options,
            w,
            &progress,
        )?;
        Ok(r)
    })?;
    let to_stdout = output.as_os_str() == "-";
    if ctx.global.json && !to_stdout {
        let images: Vec<_> = report
            .images
            .iter()
            .map(|i| json!({"digest": i.digest.to_string(), "mediaType": i.media_type, "refs": i.names, "platforms": i.platforms}))
            .collect();
        ctx.out.json(&json!({"output": output, "images": images, "blobs": report.blobs, "bytes": report.bytes}))?;
        return Ok(exit::OK);
    }
    for i in &report.images {
        let names = if i.names.is_empty() {
            "<untagged>".to_string()
        } else {
            i.names.join(", ")
        };
        ctx.info(format!(
            "exported {names} ({}, {})",
            i.digest,
            i.platforms.join(", ")
        ));
    }
    ctx.info(format!(
        "wrote {} ({} blob(s), {})",
        if to_stdout {
            "standard output".to_string()
        } else {
            output.display().to_string()
        },
        report.blobs,
        human_size(report.bytes)
    ));
    Ok(exit::OK)
}
