//! `protect` and `prune`.

use ocitool_layout::gc::{self, GcOptions};
use ocitool_layout::{Graph, IndexDoc, Layout, Transaction, WalkOptions};
use ocitool_lifecycle::{Order, PruneOptions, PrunePlan, Reason, Unit, check_repos, plan_prune};
use ocitool_spec::tags::{self, Policy};
use serde_json::json;

use crate::cli::{ProtectArgs, PruneArgs, PruneOrder};
use crate::output::{human_size, table};
use crate::{Ctx, exit};

pub fn protect(ctx: &mut Ctx, a: &ProtectArgs) -> anyhow::Result<i32> {
    let patterns = if a.all_tags {
        a.patterns
            .iter()
            .map(|r| repository_pattern(r))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        a.patterns.clone()
    };
    let a = &ProtectArgs {
        patterns,
        all_tags: false,
        ..a.clone()
    };
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
        let (policy, unmatched) = txn.commit(|idx| {
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
            // A pattern without ':' matches only bare refs (skopeo's `1.0`): one that matches
            // none is most likely meant for a tag in every repository.
            let unmatched = if a.remove {
                Vec::new()
            } else {
                let without_colon: Vec<String> = a
                    .patterns
                    .iter()
                    .filter(|x| !x.contains(':'))
                    .cloned()
                    .collect();
                let names: Vec<String> = idx.ref_digests().into_keys().collect();
                unmatched_patterns(&without_colon, names.iter())
            };
            Ok((p, unmatched))
        })?;
        ctx.committed();
        for p in &unmatched {
            ctx.warn(format!("pattern {p:?} matches no ref{}", colon_hint(p)));
        }
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
        ctx.out.line(
            "protected: commit SHAs (7 to 40 hex digits with a letter a-f, or 40 hex digits; also after sha-)",
        )?;
    }
    for x in &p.patterns {
        ctx.out.line(format!("protected: refs matching {x:?}"))?;
    }
    Ok(())
}

/// `protect --all-tags app`: the pattern `app:*`, every tag of the repository (a pattern
/// already `REPO:*` is kept); a tag or a digest is refused, as `REPO:*` selections refuse it.
fn repository_pattern(repo: &str) -> anyhow::Result<String> {
    if repo.ends_with(":*") {
        return Ok(repo.to_string());
    }
    if ocitool_digest::Digest::parse(repo).is_ok()
        || ocitool_spec::reference::split_repo_tag(repo).1.is_some()
    {
        anyhow::bail!("{repo}: --all-tags takes repositories (app, not app:1 or a digest)");
    }
    Ok(format!("{repo}:*"))
}

pub fn prune(ctx: &mut Ctx, a: &PruneArgs) -> anyhow::Result<i32> {
    for p in &a.keep_tags {
        tags::check_pattern(p)?;
    }
    let layout = Layout::open(&a.layout, ctx.layout_options())?;
    let options = PruneOptions {
        keep: a.keep,
        older_than: match &a.older_than {
            Some(s) => Some(cutoff(parse_age(s).map_err(anyhow::Error::msg)?)),
            None => None,
        },
        keep_tags: a.keep_tags.clone(),
        repos: a.repos.clone(),
        order: match a.by {
            PruneOrder::Semver => Order::Semver,
            PruneOrder::Created => Order::Created,
        },
        force: a.force,
    };
    let created = Created::read(&layout, &options)?;
    let created = |d: &str| created.of(d);
    let decide = |idx: &mut IndexDoc| -> ocitool_layout::Result<(PrunePlan, Vec<String>)> {
        let refs = idx.ref_digests();
        check_repos(&refs, &options.repos)
            .map_err(|e| ocitool_layout::Error::Invalid(format!("--repo: {e}")))?;
        let plan = plan_prune(&refs, &idx.policy()?, &options, &created);
        let unmatched = unmatched_patterns(&options.keep_tags, refs.keys());
        for name in plan.removals() {
            idx.remove_ref(name);
        }
        Ok((plan, unmatched))
    };
    let ((plan, unmatched), after) = if a.dry_run {
        let _lock = layout.read_lock()?;
        let mut idx = layout.read_index()?;
        let plan = decide(&mut idx)?;
        (plan, idx)
    } else {
        let mut txn = Transaction::begin(&layout)?;
        txn.set_force(a.force);
        let plan = txn.commit(decide)?;
        ctx.committed();
        (plan, layout.read_index()?)
    };
    for p in &unmatched {
        ctx.warn(format!("--keep-tags {p:?} matches no ref{}", colon_hint(p)));
    }
    let gc_ran = a.gc && !a.dry_run;
    let gc_report = if gc_ran {
        gc::gc(&layout, GcOptions::default())?
    } else {
        gc::plan(&layout, &after, false)?
    };
    if ctx.global.json {
        return print_plan_json(ctx, &plan, a.dry_run, &gc_report, gc_ran);
    }
    print_plan(ctx, &plan, a)?;
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
    let removed = |release: bool| {
        plan.units
            .iter()
            .filter(|u| u.remove && u.is_release == release)
            .count()
    };
    ctx.info(format!(
        "{} {} release(s) and {} build(s), {} tag(s); {gc_line}",
        if a.dry_run { "would remove" } else { "removed" },
        removed(true),
        removed(false),
        plan.removals().count(),
    ));
    Ok(exit::OK)
}

/// `--older-than`: an age before now, or a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    Ago(std::time::Duration),
    /// Seconds since the Unix epoch.
    Before(i64),
}

/// `--older-than`'s value (`usage::check` refuses a bad one as a usage error).
pub fn parse_age(s: &str) -> Result<Age, String> {
    if let Some(t) = tags::date_tag(s).or_else(|| tags::parse_rfc3339(s)) {
        return Ok(Age::Before(t));
    }
    humantime::parse_duration(s).map(Age::Ago).map_err(|e| {
        format!("{e}: give an age such as 30d, 12h, 2w, 6months, or a day such as 2024-01-15")
    })
}

/// `--older-than` as a time: now minus an age, or the day given.
fn cutoff(age: Age) -> i64 {
    match age {
        Age::Before(t) => t,
        Age::Ago(d) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |n| n.as_secs());
            i64::try_from(now.saturating_sub(d.as_secs())).unwrap_or(i64::MAX)
        }
    }
}

/// Image creation times from the configs, read only when the plan needs dates. Read before
/// the transaction: an image another writer adds meanwhile has no time, so it is kept.
struct Created(Option<Graph>);

impl Created {
    fn read(layout: &Layout, options: &PruneOptions) -> anyhow::Result<Created> {
        if options.older_than.is_none() && options.order != Order::Created {
            return Ok(Created(None));
        }
        let index = {
            let _lock = layout.read_lock()?;
            layout.read_index()?
        };
        Ok(Created(Some(Graph::walk_index(
            layout,
            &index,
            WalkOptions {
                read_configs: true,
                check_presence: false,
            },
        ))))
    }

    fn of(&self, digest: &str) -> Option<i64> {
        let created = self
            .0
            .as_ref()?
            .created_of(&ocitool_digest::Digest::parse(digest).ok()?)?;
        tags::parse_rfc3339(&created)
    }
}

/// The patterns (without `:`) that match none of `names`.
fn unmatched_patterns<'a>(
    patterns: &[String],
    names: impl Iterator<Item = &'a String> + Clone,
) -> Vec<String> {
    patterns
        .iter()
        .filter(|p| {
            let g = tags::Globs::new(std::slice::from_ref(p));
            !names.clone().any(|n| g.first_match(n).is_some())
        })
        .cloned()
        .collect()
}

/// For a pattern without `:`, how to match a tag in every repository.
fn colon_hint(p: &str) -> String {
    if p.contains(':') {
        String::new()
    } else {
        format!(
            " (patterns match the whole ref name, and {p:?} has no ':' for a repository: for that tag in every repository, write '*:{p}')"
        )
    }
}

/// One row per release or build that goes or stays for a reason worth a row; the releases
/// kept by protection, builds kept because only --older-than removes them, and undated ones
/// are counted once each, after the rows.
fn print_plan(ctx: &mut Ctx, plan: &PrunePlan, a: &PruneArgs) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for u in &plan.units {
        if !u.remove
            && matches!(
                u.reason,
                Reason::Protected(_) | Reason::Build | Reason::Undated
            )
        {
            continue;
        }
        let verb = match (u.remove, a.dry_run) {
            (true, true) => "would remove",
            (true, false) => "removed",
            (false, true) => "keep",
            (false, false) => "kept",
        };
        let mut reason = u.reason.to_string();
        if u.forced {
            reason.push_str(" (protected, --force)");
        }
        rows.push(vec![
            verb.to_string(),
            u.name.clone(),
            u.builds
                .iter()
                .map(|b| tags::tag_of(b))
                .collect::<Vec<_>>()
                .join(" "),
            short(&u.digest),
            reason,
        ]);
    }
    for line in table(&rows) {
        ctx.item(line)?;
    }
    let count = |f: &dyn Fn(&Unit) -> bool| plan.units.iter().filter(|u| !u.remove && f(u)).count();
    let builds = count(&|u| u.reason == Reason::Build);
    if plan.protected_kept > 0 {
        let first = plan
            .units
            .iter()
            .find(|u| matches!(u.reason, Reason::Protected(_)));
        let why = match first.map(|u| &u.reason) {
            Some(Reason::Protected(why)) => {
                format!(" ({} is {why})", first.map_or("", |u| &u.name))
            }
            _ => String::new(),
        };
        ctx.info(format!(
            "kept {} protected release(s) or build(s) that would otherwise go{why}; --force removes them",
            plan.protected_kept
        ));
    }
    if plan.protected_removed > 0 {
        ctx.info(format!(
            "{} {} protected release(s) or build(s) (--force)",
            if a.dry_run { "would remove" } else { "removed" },
            plan.protected_removed
        ));
    }
    if plan.undated > 0 {
        ctx.info(format!(
            "kept {} release(s) or build(s) with no date (no date tag, no config `created` after 2000)",
            plan.undated
        ));
    }
    if builds > 0 {
        ctx.info(format!(
            "kept {builds} build(s) without a version (only --older-than removes builds)"
        ));
    }
    Ok(())
}

fn print_plan_json(
    ctx: &mut Ctx,
    plan: &PrunePlan,
    dry_run: bool,
    gc_report: &gc::GcReport,
    gc_ran: bool,
) -> anyhow::Result<i32> {
    // Borrowed rows, not a JSON value per decision (100,000 of them cost 70 MB); keys in
    // sorted order.
    #[derive(serde::Serialize)]
    struct Decision<'a> {
        digest: &'a str,
        reason: String,
        #[serde(rename = "ref")]
        name: &'a str,
        remove: bool,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Release<'a> {
        builds: Vec<&'a str>,
        digest: &'a str,
        forced: bool,
        reason: String,
        #[serde(rename = "ref")]
        name: &'a str,
        release: bool,
        remove: bool,
        repository: &'a str,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Out<'a> {
        decisions: Vec<Decision<'a>>,
        dry_run: bool,
        gc: serde_json::Value,
        protected_kept: usize,
        protected_removed: usize,
        releases: Vec<Release<'a>>,
        removed: usize,
        undated: usize,
    }
    ctx.out.json(&Out {
        decisions: plan
            .units
            .iter()
            .flat_map(|u| {
                u.names().map(move |n| Decision {
                    digest: &u.digest,
                    reason: u.reason.to_string(),
                    name: n,
                    remove: u.remove,
                })
            })
            .collect(),
        dry_run,
        gc: json!({"blobs": gc_report.removed.len(), "freed": gc_report.freed_bytes, "ran": gc_ran}),
        protected_kept: plan.protected_kept,
        protected_removed: plan.protected_removed,
        releases: plan
            .units
            .iter()
            .map(|u| Release {
                builds: u.builds.iter().map(String::as_str).collect(),
                digest: &u.digest,
                forced: u.forced,
                reason: u.reason.to_string(),
                name: &u.name,
                release: u.is_release,
                remove: u.remove,
                repository: &u.repository,
            })
            .collect(),
        removed: plan.removals().count(),
        undated: plan.undated,
    })?;
    Ok(exit::OK)
}

fn short(d: &str) -> String {
    ocitool_digest::Digest::parse(d)
        .map(|d| d.short())
        .unwrap_or_else(|_| d.to_string())
}
