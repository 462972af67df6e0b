use crate::cli::CopyArgs;

use ocitool_layout::Layout;
use ocitool_layout::copy::{self, CopyOptions};
use ocitool_spec::Platform;
use serde_json::json;

use crate::output::human_size;
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, a: CopyArgs) -> anyhow::Result<i32> {
    let platform: Option<Platform> = a.platform.as_deref().map(str::parse).transpose()?;
    let src = Layout::open(&a.src, ctx.layout_options())?;
    let refs = super::selected_refs(&src, &a.refs, a.all_tags)?;
    check_names(&src, &refs)?;
    let dst = &a.dst;
    let link = a.link;
    let options = CopyOptions {
        refs,
        platform,
        referrers: !a.no_referrers,
        force: a.force,
        link,
        repair: a.repair,
    };
    let progress = ctx.progress();
    // Created if missing and kept on failure: the blobs a failed copy verified and published
    // there are what a rerun resumes from.
    let dst = Layout::open_or_init(dst, ctx.layout_options())?;
    let report = copy::copy(&src, &dst, &options, &progress)?;
    ctx.committed();
    if ctx.global.json {
        let refs: Vec<_> = report
            .refs
            .iter()
            .map(|(n, d)| json!({"ref": n.clone().unwrap_or_default(), "digest": d.to_string()}))
            .collect();
        ctx.out.json(&json!({
            "refs": refs,
            "copied": report.copied,
            "bytesCopied": report.bytes_copied,
            "skipped": report.skipped,
            "methods": report.methods.iter().map(|m| m.name()).collect::<Vec<_>>(),
        }))?;
        return Ok(exit::OK);
    }
    for (n, d) in &report.refs {
        ctx.item(format!("{} -> {d}", n.as_deref().unwrap_or("<untagged>")))?;
    }
    ctx.info(format!(
        "copied {} blob(s) ({}), skipped {} already present{}",
        report.copied,
        human_size(report.bytes_copied),
        report.skipped,
        if report.methods.is_empty() {
            String::new()
        } else {
            format!(
                "; by {}",
                report
                    .methods
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    Ok(exit::OK)
}

/// The names copy would write into the destination are carried verbatim if they are safe text
/// (`refname::validate_carried`: cosign's `_cosign:…` and skopeo's bare `1.0` included, as
/// `pack`, `unpack` and `import` carry them); a layout written by another tool may hold names
/// that are not (a control character, a name of the form of a digest).
fn check_names(src: &Layout, refs: &[String]) -> anyhow::Result<()> {
    let names: Vec<String> = if refs.is_empty() {
        let index = src.read_index()?;
        index
            .entries()
            .into_iter()
            .filter_map(|e| e.descriptor.ref_name().map(str::to_string))
            .collect()
    } else {
        // A REF is resolved (a twin, a digest prefix); what it is written as is checked by
        // the copy.
        Vec::new()
    };
    for n in names {
        if let Err(e) = ocitool_spec::refname::validate_carried(&n) {
            anyhow::bail!(
                "{e}: copy carries only names that are safe text; give the image another name with `ocitool tag {} {n:?} NEW` and copy that",
                src.root().display()
            );
        }
    }
    Ok(())
}
