use std::path::Path;

use anyhow::Context;
use ocitool_archive::export::{self, ExportOptions, Format, Selection};
use ocitool_layout::Layout;
use ocitool_layout::inventory::{self, Inventory};
use ocitool_spec::Platform;
use serde_json::json;

use crate::cli::PackArgs;
use crate::outfile::write_output;
use crate::output::human_size;
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, a: &PackArgs) -> anyhow::Result<i32> {
    let (layout, refs, output, exclude, referrers) = (
        a.layout.as_path(),
        &a.refs,
        a.output.as_path(),
        a.exclude_inventory.as_deref(),
        !a.no_referrers,
    );
    let platform: Option<Platform> = a.platform.as_deref().map(str::parse).transpose()?;
    let layout = Layout::open(layout, ctx.layout_options())?;
    let refs = super::selected_refs(&layout, refs, a.all_tags)?;
    let exclude = match exclude {
        Some(p) => {
            let bytes = read_limited(p, inventory::LIMIT)?;
            Some(Inventory::parse(&bytes, &p.display().to_string())?)
        }
        None => None,
    };
    let delta = exclude.is_some();
    let options = ExportOptions {
        format: Format::Oci,
        platform,
        referrers,
        exclude,
    };
    let selection = if refs.is_empty() {
        Selection::All
    } else {
        Selection::Refs(refs)
    };
    let progress = ctx.progress().labelled("pack");
    let durable = !ctx.global.no_fsync;
    let report = write_output(ctx, output, durable, |w| {
        Ok(export::export(&layout, &selection, &options, w, &progress)?.0)
    })?;
    if ctx.global.json && output.as_os_str() != "-" {
        let images: Vec<_> = report
            .images
            .iter()
            .map(|i| json!({"digest": i.digest.to_string(), "mediaType": i.media_type, "refs": i.names}))
            .collect();
        ctx.out.json(&json!({
            "output": output,
            "images": images,
            "blobs": report.blobs,
            "bytes": report.bytes,
            "excluded": report.excluded,
            "excludedBytes": report.excluded_bytes,
        }))?;
        return Ok(exit::OK);
    }
    ctx.info(format!(
        "packed {} ref(s) ({} image(s)) into {}: {} blob(s), {}{}",
        report.images.iter().map(|i| i.names.len()).sum::<usize>(),
        report
            .images
            .iter()
            .map(|i| &i.digest)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        if output.as_os_str() == "-" {
            "standard output".to_string()
        } else {
            output.display().to_string()
        },
        report.blobs,
        human_size(report.bytes),
        if delta {
            format!(
                "; left out {} blob(s) ({}) the inventory lists",
                report.excluded,
                human_size(report.excluded_bytes)
            )
        } else {
            String::new()
        }
    ));
    Ok(exit::OK)
}

pub fn inventory(ctx: &mut Ctx, layout: &Path, output: Option<&Path>) -> anyhow::Result<i32> {
    let layout = Layout::open(layout, ctx.layout_options())?;
    let _lock = layout.read_lock()?;
    let inv = inventory::of_layout(&layout)?;
    let bytes = inv.to_bytes();
    match output {
        Some(p) if p.as_os_str() != "-" => {
            let durable = !ctx.global.no_fsync;
            write_output(ctx, p, durable, |w| {
                w.write_all(&bytes)
                    .with_context(|| format!("write {}", p.display()))?;
                Ok(())
            })?;
            let bytes: u64 = inv.blobs.iter().map(|b| b.size).sum();
            if ctx.global.json {
                ctx.out
                    .json(&json!({"output": p, "blobs": inv.blobs.len(), "bytes": bytes}))?;
            } else {
                ctx.info(format!(
                    "{}: {} blob(s), {}",
                    p.display(),
                    inv.blobs.len(),
                    human_size(bytes)
                ));
            }
        }
        _ => ctx.out.bytes(&bytes)?,
    }
    Ok(exit::OK)
}

fn read_limited(p: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("read {}", p.display()))?;
    if buf.len() as u64 > limit {
        anyhow::bail!(
            "{} is larger than {} bytes: not an inventory",
            p.display(),
            limit
        );
    }
    Ok(buf)
}
