use std::collections::HashMap;

use crate::cli::UntagArgs;

use ocitool_digest::Digest;
use ocitool_layout::resolve::match_name;
use ocitool_layout::{Error, IndexDoc, Layout, Transaction};
use serde::Serialize;

use crate::{Ctx, exit};

#[derive(Serialize)]
struct Removed {
    #[serde(rename = "ref")]
    reference: String,
    digests: Vec<String>,
}

pub fn run(ctx: &mut Ctx, a: &UntagArgs) -> anyhow::Result<i32> {
    let refs = &a.refs;
    let layout = Layout::open(&a.layout, ctx.layout_options())?;
    let mut txn = Transaction::begin(&layout)?;
    txn.set_force(a.force);
    let removed = txn.commit(|index| {
        // Entries by digest, made once, on the first digest asked for.
        let mut by_digest: Option<HashMap<String, Vec<usize>>> = None;
        let mut positions = Vec::new();
        let mut removed = Vec::new();
        for r in refs {
            let matched: Vec<usize> = if a.name {
                index.positions_named(r)
            } else if Digest::parse(r).is_ok() {
                refuse_digest_named_entry(index, r)?;
                by_digest
                    .get_or_insert_with(|| entries_by_digest(index))
                    .get(r.as_str())
                    .cloned()
                    .unwrap_or_default()
            } else {
                match_name(index, r)
            };
            if matched.is_empty() {
                return Err(Error::UnknownRef {
                    name: r.clone(),
                    layout: layout.root().to_path_buf(),
                    hint: String::new(),
                });
            }
            let mut digests: Vec<String> = matched
                .iter()
                .filter_map(|p| index.key(*p).map(|k| k.digest.to_string()))
                .collect();
            digests.dedup();
            removed.push(Removed {
                reference: r.clone(),
                digests,
            });
            positions.extend(matched);
        }
        index.remove_positions(&positions);
        Ok(removed)
    })?;
    ctx.committed();
    if ctx.global.json {
        ctx.out.json(&serde_json::json!({ "removed": removed }))?;
    } else {
        for r in &removed {
            ctx.item(format!(
                "removed {} (was {})",
                r.reference,
                r.digests.join(", ")
            ))?;
        }
        ctx.info("blobs stay until `ocitool gc`");
    }
    Ok(exit::OK)
}

fn entries_by_digest(index: &IndexDoc) -> HashMap<String, Vec<usize>> {
    let mut m: HashMap<String, Vec<usize>> = HashMap::new();
    for k in index.keys() {
        m.entry(k.digest.to_string()).or_default().push(k.position);
    }
    m
}

/// A digest given to `untag` means the entries pointing at it. If an entry is also *named*
/// that very text (not a valid ref name, but another tool may have written it), which one
/// the user means cannot be known: removing the refs of the image with that digest could
/// remove another image's refs by surprise. Refused; `--name` removes the named entry.
fn refuse_digest_named_entry(index: &IndexDoc, r: &str) -> ocitool_layout::Result<()> {
    let Some(&p) = index.positions_named(r).first() else {
        return Ok(());
    };
    let points_at = index.key(p).map(|k| k.digest).unwrap_or_default();
    Err(Error::Invalid(format!(
        "{r} is a digest, and also the ref name of index.json manifests[{p}] (which points at {points_at}): untag --name {r} removes that entry, and after it untag {r} removes the entries pointing at the digest"
    )))
}
