use std::path::Path;

use ocitool_layout::resolve;
use ocitool_layout::{Layout, Transaction};
use ocitool_spec::refname;
use serde::Serialize;

use crate::{Ctx, exit};

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Move {
    #[serde(rename = "ref")]
    pub reference: String,
    pub digest: String,
    /// The digest the ref pointed at before, if it existed.
    pub previous: Option<String>,
}

pub fn run(
    ctx: &mut Ctx,
    path: &Path,
    source: &str,
    targets: &[String],
    dry_run: bool,
) -> anyhow::Result<i32> {
    for t in targets {
        refname::validate(t)?;
    }
    let layout = Layout::open(path, ctx.layout_options())?;
    let moves = if dry_run {
        let _lock = layout.read_lock()?;
        let mut index = layout.read_index()?;
        apply(&layout, &mut index, source, targets)?
    } else {
        let txn = Transaction::begin(&layout)?;
        txn.commit(|index| apply(&layout, index, source, targets))?
    };
    report(ctx, &moves, dry_run)?;
    Ok(exit::OK)
}

/// Points every target at what `source` resolves to, in one edit of `index`.
pub fn apply(
    layout: &Layout,
    index: &mut ocitool_layout::IndexDoc,
    source: &str,
    targets: &[String],
) -> ocitool_layout::Result<Vec<Move>> {
    // A name resolves to an index.json entry (whatever its media type); a digest only to a
    // document that parses as a manifest or an index.
    let target = resolve::resolve(layout, index, source)?;
    let mut moves = Vec::new();
    for t in targets {
        let previous = index.set_ref(t, &target.descriptor);
        moves.push(Move {
            reference: t.clone(),
            digest: target.digest.to_string(),
            previous,
        });
    }
    Ok(moves)
}

fn report(ctx: &mut Ctx, moves: &[Move], dry_run: bool) -> anyhow::Result<()> {
    if ctx.global.json {
        ctx.out
            .json(&serde_json::json!({ "dryRun": dry_run, "refs": moves }))?;
        return Ok(());
    }
    let verb = if dry_run { "would point" } else { "points" };
    for m in moves {
        let how = match &m.previous {
            None => "new".to_string(),
            Some(p) if *p == m.digest => "unchanged".to_string(),
            Some(p) => format!("moved from {p}"),
        };
        ctx.out
            .line(format!("{} {verb} at {} ({how})", m.reference, m.digest))?;
    }
    Ok(())
}
