use ocitool_compress::Compression;
use ocitool_layout::Layout;
use ocitool_layout::convert::{self, ConvertOptions, Family};
use ocitool_spec::Platform;
use serde_json::json;

use crate::cli::{CompressionArg, ConvertArgs, MediaTypesArg};
use crate::output::human_size;
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, a: &ConvertArgs) -> anyhow::Result<i32> {
    let platform: Option<Platform> = a.platform.as_deref().map(str::parse).transpose()?;
    let layout = Layout::open(&a.layout, ctx.layout_options())?;
    let options = ConvertOptions {
        compression: a.compression.map(|c| match c {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::None => Compression::None,
        }),
        level: a.level,
        family: a.media_types.map(|f| match f {
            MediaTypesArg::Oci => Family::Oci,
            MediaTypesArg::Docker => Family::Docker,
        }),
        platform,
        force: a.force,
    };
    let progress = ctx.progress();
    let r = convert::convert(&layout, &a.source, &a.target, &options, &progress)?;
    ctx.committed();
    let before: u64 = r.layers.iter().map(|l| l.from.size).sum();
    let after: u64 = r.layers.iter().map(|l| l.to.size).sum();
    let digest = r
        .target_digest
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    if ctx.global.json {
        let layers: Vec<_> = r
            .layers
            .iter()
            .map(|l| {
                json!({
                    "from": {"digest": l.from.digest.to_string(), "size": l.from.size, "mediaType": l.from_media_type},
                    "to": {"digest": l.to.digest.to_string(), "size": l.to.size, "mediaType": l.to_media_type},
                    "reused": l.reused,
                })
            })
            .collect();
        ctx.out.json(&json!({
            "ref": a.target,
            "digest": digest,
            "mediaType": r.target_media_type,
            "source": r.source.as_ref().map(ToString::to_string),
            "manifestsWritten": r.manifests_written,
            "layers": layers,
            "sizeBefore": before,
            "sizeAfter": after,
        }))?;
        return Ok(exit::OK);
    }
    for l in &r.layers {
        if l.reused {
            ctx.item(format!(
                "  {}  {:>9}  kept ({})",
                l.from.digest.short(),
                human_size(l.from.size),
                l.to_media_type
            ))?;
        } else {
            ctx.item(format!(
                "  {} {:>9} -> {} {:>9}  {}",
                l.from.digest.short(),
                human_size(l.from.size),
                l.to.digest.short(),
                human_size(l.to.size),
                l.to_media_type
            ))?;
        }
    }
    ctx.item(format!(
        "{} points at {digest}: layers {} -> {}{}",
        a.target,
        human_size(before),
        human_size(after),
        if r.manifests_written == 0 {
            " (nothing to change: the same image)"
        } else {
            ""
        }
    ))?;
    Ok(exit::OK)
}
