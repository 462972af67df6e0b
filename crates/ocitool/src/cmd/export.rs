use ocitool_archive::export::{self, ExportOptions, Format, Selection};
use ocitool_layout::Layout;
use ocitool_spec::Platform;
use serde_json::json;

use crate::cli::{ExportArgs, ExportFormat};
use crate::outfile::write_output;
use crate::output::human_size;
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, a: &ExportArgs) -> anyhow::Result<i32> {
    let (layout, refs, output, format) = (&a.layout, &a.refs, a.output.as_path(), a.format);
    let platform: Option<Platform> = a.platform.as_deref().map(str::parse).transpose()?;
    let layout = Layout::open(layout, ctx.layout_options())?;
    let refs = super::selected_refs(&layout, refs, a.all_tags)?;
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
    let durable = !ctx.global.no_fsync;
    let report = write_output(ctx, output, durable, |w| {
        let (r, _) = export::export(
            &layout,
            &Selection::Refs(refs.clone()),
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
