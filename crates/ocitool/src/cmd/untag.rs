use crate::cli::UntagArgs;

use ocitool_digest::Digest;
use ocitool_layout::resolve::match_name;
use ocitool_layout::{Error, Layout, Transaction};
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
        // Names and digests only: no entry is parsed whole.
        let keys: Vec<(usize, String)> = index
            .keys()
            .map(|k| (k.position, k.digest.to_string()))
            .collect();
        let mut positions = Vec::new();
        let mut removed = Vec::new();
        for r in refs {
            let matched: Vec<usize> = match Digest::parse(r) {
                Ok(d) => {
                    let d = d.to_string();
                    keys.iter()
                        .filter(|(_, k)| *k == d)
                        .map(|(p, _)| *p)
                        .collect()
                }
                Err(_) => match_name(index, r),
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
                .filter_map(|p| keys.get(*p).map(|(_, d)| d.clone()))
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
            ctx.out.line(format!(
                "removed {} (was {})",
                r.reference,
                r.digests.join(", ")
            ))?;
        }
        ctx.info("blobs stay until `ocitool gc`");
    }
    Ok(exit::OK)
}
