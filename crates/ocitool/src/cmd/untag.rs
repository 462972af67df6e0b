use crate::cli::UntagArgs;

use ocitool_layout::resolve;
use ocitool_layout::{Error, Layout, Transaction};
use serde::Serialize;

use crate::{Ctx, exit};

#[derive(Serialize)]
struct Removed {
    /// The REF as given.
    #[serde(rename = "ref")]
    reference: String,
    digests: Vec<String>,
    /// The name of each entry removed ("" for an unnamed one): the tags a digest removed,
    /// the stored spelling a twin matched.
    refs: Vec<String>,
    /// Whether the REF named a digest (a full one, a prefix, `name@digest`).
    #[serde(skip)]
    by_digest: bool,
}

pub fn run(ctx: &mut Ctx, a: &UntagArgs) -> anyhow::Result<i32> {
    let layout = Layout::open(&a.layout, ctx.layout_options())?;
    let mut txn = Transaction::begin(&layout)?;
    txn.set_force(a.force);
    let removed = txn.commit(|index| {
        let refs = if a.name {
            a.refs.clone()
        } else {
            resolve::select_refs(&layout, index, &a.refs, a.all_tags)?
        };
        let mut lookup = resolve::EntryLookup::new(&layout);
        let mut positions = Vec::new();
        let mut removed = Vec::new();
        for r in &refs {
            let (matched, digest_ref) = if a.name {
                (index.positions_named(r), false)
            } else {
                lookup.entries(index, r)?
            };
            if matched.is_empty() {
                return Err(Error::UnknownRef {
                    name: r.clone(),
                    layout: layout.root().to_path_buf(),
                    hint: if a.name {
                        String::new()
                    } else {
                        resolve::hint(index, r)
                    },
                });
            }
            let keys: Vec<_> = matched.iter().filter_map(|p| index.key(*p)).collect();
            let mut digests: Vec<String> = keys.iter().map(|k| k.digest.to_string()).collect();
            digests.dedup();
            removed.push(Removed {
                reference: r.clone(),
                digests,
                refs: keys
                    .iter()
                    .map(|k| k.display_name().unwrap_or_default().to_string())
                    .collect(),
                by_digest: digest_ref,
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
            ctx.item(describe(r))?;
        }
        ctx.info("blobs stay until `ocitool gc`");
    }
    Ok(exit::OK)
}

/// `removed app:1.0 (was sha256:…)`; for a digest, the tags it removed:
/// `removed sha256:… (app:1.0, app:latest)`; for a twin or a containerd name, the spelling
/// stored: `removed app (as app:latest; was sha256:…)`.
fn describe(r: &Removed) -> String {
    let names: Vec<&str> = r
        .refs
        .iter()
        .map(|n| if n.is_empty() { "<untagged>" } else { n })
        .collect();
    if r.by_digest {
        format!("removed {} ({})", r.reference, names.join(", "))
    } else if r.refs.iter().all(|n| *n == r.reference) {
        format!("removed {} (was {})", r.reference, r.digests.join(", "))
    } else {
        format!(
            "removed {} (as {}; was {})",
            r.reference,
            names.join(", "),
            r.digests.join(", ")
        )
    }
}
