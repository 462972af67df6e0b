//! `protect` and `prune`.

use ocitool_layout::gc::{self, GcOptions};
use ocitool_layout::{Graph, Layout, Transaction, WalkOptions};
use ocitool_lifecycle::{Order, PruneOptions, plan_prune};
use ocitool_spec::tags::{self, Policy};
use serde_json::json;

use crate::cli::{ProtectArgs, PruneArgs, PruneOrder};
use crate::output::human_size;
use crate::{Ctx, exit};

pub fn protect(ctx: &mut Ctx, a: &ProtectArgs) -> anyhow::Result<i32> {
    for p in &a.patterns {
        tags::check_pattern(p)?;
    }
    let layout = Layout::open(&a.layout, ctx.layout_options())?;
    let no_rules = !a.semver && !a.sha && a.patterns.is_empty();
    let policy = if a.list || no_rules {
        if a.remove && no_rules {
            anyhow::bail!("--remove needs the rules to remove (--semver, --sha or patterns)");
        }
        let _lock = layout.read_lock()?;
        layout.read_index()?.policy()?
    } else {
        let txn = Transaction::begin(&layout)?;
        let policy = txn.commit(|idx| {
            let mut p = idx.policy()?;
            if a.remove {
                p.semver &= !a.semver;
                p.sha &= !a.sha;
                p.patterns.retain(|x| !a.patterns.contains(x));
            } else {
                p.semver |= a.semver;
                p.sha |= a.sha;
                for x in &a.patterns {
                    if !p.patterns.contains(x) {
                        p.patterns.push(x.clone());
                    }
                }
            }
            idx.set_policy(&p)?;
            Ok(p)
        })?;
        ctx.committed();
        policy
    };
    // A changed policy is shown as a report (silenced by --quiet); asked for, as the result.
    if !(ctx.global.quiet && !(a.list || no_rules)) {
        print_policy(ctx, &policy)?;
    }
    Ok(exit::OK)
}

fn print_policy(ctx: &mut Ctx, p: &Policy) -> anyhow::Result<()> {
    if ctx.global.json {
        return ctx.out.json(p);
    }
    if p.is_empty() {
        ctx.out.line("no tag is protected")?;
        return Ok(());
    }
    if p.semver {
        ctx.out
            .line("protected: exact semver versions (1.2.3, v1.2.3-rc.1)")?;
    }
    if p.sha {
        ctx.out
            .line("protected: commit SHAs (7 to 40 hex digits)")?;
    }
    for x in &p.patterns {
        ctx.out.line(format!("protected: refs matching {x:?}"))?;
    }
    Ok(())
}

pub fn prune(ctx: &mut Ctx, a: &PruneArgs) -> anyhow::Result<i32> {
    let layout = Layout::open(&a.layout, ctx.layout_options())?;
    let options = PruneOptions {
        keep: a.keep,
        repos: a.repos.clone(),
        order: match a.by {
            PruneOrder::Semver => Order::Semver,
            PruneOrder::Created => Order::Created,
        },
        force: a.force,
    };
    let created_graph = (options.order == Order::Created).then(|| {
        let index = layout.read_index();
        index.map(|i| {
            Graph::walk_index(
                &layout,
                &i,
                WalkOptions {
                    read_configs: true,
                    check_presence: false,
                },
            )
        })
    });
    let created_graph = created_graph.transpose()?;
    let created = |d: &str| -> Option<String> {
        let g = created_graph.as_ref()?;
        g.created_of(&ocitool_digest::Digest::parse(d).ok()?)
    };
    let decide = |idx: &mut ocitool_layout::IndexDoc,
                  apply: bool|
     -> ocitool_layout::Result<Vec<ocitool_lifecycle::Decision>> {
        let plan = plan_prune(&idx.ref_digests(), &idx.policy()?, &options, &created);
        if apply {
            for d in plan.iter().filter(|d| d.remove) {
                idx.remove_ref(&d.name);
            }
        }
        Ok(plan)
    };
    let (plan, after) = if a.dry_run {
        let _lock = layout.read_lock()?;
        let mut idx = layout.read_index()?;
        let plan = decide(&mut idx, true)?;
        (plan, idx)
    } else {
        let mut txn = Transaction::begin(&layout)?;
        txn.set_force(a.force);
        let plan = txn.commit(|idx| decide(idx, true))?;
        ctx.committed();
        (plan, layout.read_index()?)
    };
    let removed = plan.iter().filter(|d| d.remove).count();
    let gc_report = if a.gc && !a.dry_run {
        gc::gc(&layout, GcOptions::default())?
    } else {
        gc::plan(&layout, &after, false)?
    };
    let gc_ran = a.gc && !a.dry_run;
    if ctx.global.json {
        // Borrowed rows, not a JSON value per decision (100,000 of them cost 70 MB); keys
        // in the sorted order `json!` gave them.
        #[derive(serde::Serialize)]
        struct Row<'a> {
            digest: &'a str,
            reason: &'a str,
            #[serde(rename = "ref")]
            name: &'a str,
            remove: bool,
        }
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            decisions: Vec<Row<'a>>,
            dry_run: bool,
            gc: serde_json::Value,
            removed: usize,
        }
        ctx.out.json(&Out {
            decisions: plan
                .iter()
                .map(|d| Row {
                    digest: &d.digest,
                    reason: &d.reason,
                    name: &d.name,
                    remove: d.remove,
                })
                .collect(),
            dry_run: a.dry_run,
            gc: json!({"blobs": gc_report.removed.len(), "freed": gc_report.freed_bytes, "ran": gc_ran}),
            removed,
        })?;
        return Ok(exit::OK);
    }
    for d in &plan {
        let verb = match (d.remove, a.dry_run) {
            (true, true) => "would remove",
            (true, false) => "removed",
            (false, _) => "kept",
        };
        ctx.item(format!(
            "{verb:<12} {}  ({}: {})",
            d.name,
            short(&d.digest),
            d.reason
        ))?;
    }
    let gc_line = if gc_ran {
        format!(
            "gc freed {} blob(s), {}",
            gc_report.removed.len(),
            human_size(gc_report.freed_bytes)
        )
    } else {
        format!(
            "gc would free {} blob(s), {} (run `ocitool gc` or pass --gc)",
            gc_report.removed.len(),
            human_size(gc_report.freed_bytes)
        )
    };
    ctx.info(format!(
        "{} {removed} tag(s); {gc_line}",
        if a.dry_run { "would remove" } else { "removed" }
    ));
    Ok(exit::OK)
}

fn short(d: &str) -> String {
    ocitool_digest::Digest::parse(d)
        .map(|d| d.short())
        .unwrap_or_else(|_| d.to_string())
}
