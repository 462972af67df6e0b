use ocitool_layout::Layout;
use ocitool_registry::push::{self, PushOptions};
use serde_json::json;

use crate::cli::PushArgs;
use crate::cmd::remote;
use crate::output::{TransferProgress, human_size};
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, a: &PushArgs) -> anyhow::Result<i32> {
    let client = remote::client(ctx, &a.registry)?;
    let options = PushOptions {
        refs: a.refs.clone(),
        to: a.to.clone(),
        scoped: a.scoped,
        all_tags: a.all_tags,
        platforms: remote::platforms(&a.platform)?,
        referrers: !a.no_referrers,
        digest_tags: a.digest_tags,
        jobs: ctx.global.jobs.map(|n| n.max(1)),
    };
    let layout = Layout::open(&a.layout, ctx.layout_options())?;
    let progress = TransferProgress::new(!ctx.global.quiet && !ctx.global.json);
    let report = push::push(&client, &layout, &options, &progress)?;
    if ctx.global.json {
        let refs: Vec<_> = report
            .refs
            .iter()
            .map(|r| {
                json!({
                    "ref": r.source,
                    "destination": r.destination,
                    "digest": r.digest.to_string(),
                    "mediaType": r.media_type,
                })
            })
            .collect();
        ctx.out.json(&json!({
            "refs": refs,
            "blobsSent": report.blobs_sent,
            "bytesSent": report.bytes_sent,
            "blobsMounted": report.blobs_mounted,
            "blobsPresent": report.blobs_present,
            "manifestsPut": report.manifests_put,
            "referrers": report.referrers,
        }))?;
        return Ok(exit::OK);
    }
    for r in &report.refs {
        ctx.item(format!("{} -> {}@{}", r.source, r.destination, r.digest))?;
    }
    ctx.info(format!(
        "pushed {} ref(s): sent {} blob(s) ({}), mounted {}, {} already there; {} manifest(s) written{}",
        report.refs.len(),
        report.blobs_sent,
        human_size(report.bytes_sent),
        report.blobs_mounted,
        report.blobs_present,
        report.manifests_put,
        if report.referrers > 0 {
            format!(", {} referrer(s)", report.referrers)
        } else {
            String::new()
        }
    ));
    Ok(exit::OK)
}
