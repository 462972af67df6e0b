use std::path::Path;

use ocitool_layout::Layout;
use ocitool_layout::gc::{self, GcOptions};
use serde_json::json;

use crate::output::human_size;
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, path: &Path, dry_run: bool, force: bool) -> anyhow::Result<i32> {
    let layout = Layout::open(path, ctx.layout_options())?;
    let r = gc::gc(&layout, GcOptions { dry_run, force })?;
    if !dry_run {
        ctx.committed();
    }
    if ctx.global.json {
        let removed: Vec<_> = r
            .removed
            .iter()
            .map(|(d, s)| json!({"digest": d.to_string(), "size": s}))
            .collect();
        ctx.out.json(&json!({
            "dryRun": r.dry_run,
            "removed": removed,
            "freed": r.freed_bytes,
            "kept": r.kept,
            "staleTemp": r.stale_temp,
        }))?;
        return Ok(exit::OK);
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for (d, s) in &r.removed {
        ctx.item(format!("{verb} {d} ({})", human_size(*s)))?;
    }
    let mut summary = format!(
        "{} {} blob(s) ({}), kept {}",
        if dry_run { "would remove" } else { "removed" },
        r.removed.len(),
        human_size(r.freed_bytes),
        r.kept
    );
    if r.stale_temp > 0 {
        summary.push_str(&format!(
            "; {} {} stale temporary item(s)",
            if dry_run { "would remove" } else { "removed" },
            r.stale_temp
        ));
    }
    if dry_run {
        summary.push_str(" (dry run: nothing changed)");
    }
    ctx.info(summary);
    Ok(exit::OK)
}
