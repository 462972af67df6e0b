use ocitool_layout::Layout;
use ocitool_registry::pull::{self, PullOptions};
use serde_json::json;

use crate::cli::PullArgs;
use crate::cmd::remote;
use crate::output::{TransferProgress, human_size};
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, a: &PullArgs) -> anyhow::Result<i32> {
    let client = remote::client(ctx, &a.registry)?;
    let options = PullOptions {
        all_tags: a.all_tags,
        platforms: remote::platforms(&a.platform)?,
        referrers: !a.no_referrers,
        digest_tags: a.digest_tags,
        force: a.force,
        jobs: remote::jobs(ctx),
    };
    // Created if missing and kept on failure: the blobs a failed pull verified and the
    // partial downloads are what a rerun continues from.
    let layout = Layout::open_or_init(&a.layout, ctx.layout_options())?;
    let progress = TransferProgress::new(!ctx.global.quiet && !ctx.global.json);
    let report = pull::pull(&client, &layout, &a.images, &options, &progress)?;
    if ctx.global.json {
        let refs: Vec<_> = report
            .refs
            .iter()
            .map(|r| {
                json!({
                    "ref": r.name,
                    "name": r.full_name,
                    "digest": r.digest.to_string(),
                    "mediaType": r.media_type,
                    "movedFrom": r.moved_from,
                })
            })
            .collect();
        ctx.out.json(&json!({
            "refs": refs,
            "blobsFetched": report.blobs_fetched,
            "bytesFetched": report.bytes_fetched,
            "bytesResumed": report.bytes_resumed,
            "blobsPresent": report.blobs_present,
            "documents": report.documents,
            "referrers": report.referrers,
        }))?;
        return Ok(exit::OK);
    }
    for r in &report.refs {
        let moved = r
            .moved_from
            .as_ref()
            .map(|m| format!(" (moved from {m})"))
            .unwrap_or_default();
        ctx.item(format!("{} -> {}{moved}", r.name, r.digest))?;
    }
    let resumed = if report.bytes_resumed > 0 {
        format!(
            ", {} resumed from an earlier run",
            human_size(report.bytes_resumed)
        )
    } else {
        String::new()
    };
    let referrers = if report.referrers > 0 {
        format!(", {} referrer(s)", report.referrers)
    } else {
        String::new()
    };
    ctx.info(format!(
        "pulled {} ref(s): fetched {} blob(s) ({}){resumed}, {} already present{referrers}",
        report.refs.len(),
        report.blobs_fetched,
        human_size(report.bytes_fetched),
        report.blobs_present,
    ));
    Ok(exit::OK)
}
