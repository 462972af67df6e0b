//! The `scale` campaign: 100,000 refs.
//!
//! A layout of 100,000 refs to four small images (`ocitool_testkit::many`, written in a
//! fraction of a second), then `ls`, `ls --tree`, `verify`, `tag`, `untag` of 10,000 refs at
//! once, `prune --keep 1 --dry-run`, `copy` of every ref, `prune --keep 1` and `gc`, each
//! under a time and a memory bound that a linear command meets many times over (on the
//! 2-core bench machine each takes 0.2-1.5 s and 40-110 MiB) and a quadratic one blows
//! (before the fix, `prune` and `copy` took 2-3 minutes and `ls --tree` ran out of memory past
//! 4 GiB on 10,000 refs). Each result is checked against a model of the refs: counts,
//! names, digests. The peak resident set of each child is its `VmHWM`, read from
//! `/proc/<pid>/status` every few milliseconds while it runs (the kernel keeps the high-water
//! mark, so only growth in the last milliseconds before exit could be missed).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use ocitool_testkit::Rng;
use ocitool_testkit::many::write_many_refs;
use serde_json::Value;

use super::{Ctx, Out, Refs, Report, read_refs, run_watched, s};

const REFS: usize = 100_000;
const IMAGES: usize = 4;
const REPOS: usize = 100;
/// Refs removed by the one `untag`.
const UNTAGGED: usize = 10_000;
/// Wall time allowed to each command.
const TIME_LIMIT: Duration = Duration::from_secs(30);
/// Peak resident set allowed to each command.
const RSS_LIMIT_KIB: u64 = 1 << 20;

pub(super) fn run(ctx: &Ctx, _rng: &mut Rng) -> anyhow::Result<Report> {
    let dir = ctx.work.join("scale");
    fs::create_dir_all(&dir)?;
    let layout = dir.join("layout");
    let t0 = Instant::now();
    let many = write_many_refs(&layout, REFS, IMAGES, REPOS).context("write the layout")?;
    let generated = t0.elapsed();
    let mut model: Refs = many
        .refs
        .iter()
        .map(|(n, d)| (n.clone(), d.to_string()))
        .collect();
    let mut c = Campaign {
        ctx,
        details: Vec::new(),
        figures: Vec::new(),
    };
    let l = s(&layout);

    if let Some(o) = c.step("ls", &["ls", &l, "--json"])? {
        let rows: Value = serde_json::from_str(&o.stdout).unwrap_or_default();
        let got: Refs = rows
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| (str_of(&r["ref"]), str_of(&r["digest"])))
            .collect();
        c.check(
            rows.as_array().map_or(0, Vec::len) == REFS && got == model,
            "ls --json does not list every ref with its digest once",
        );
    }
    if let Some(o) = c.step("ls --tree", &["ls", &l, "--tree", "--json"])? {
        c.check_tree(&o.stdout, &model);
    }
    c.step("verify", &["verify", &l])?;

    let first = many.refs[0].0.clone();
    if c.step("tag", &["tag", &l, &first, "scale:new"])?.is_some() {
        model.insert("scale:new".into(), many.refs[0].1.to_string());
    }
    c.check_refs(&layout, &model, "tag");

    // untag of 10,000 refs in one call (every tenth, so every repository loses some)
    let gone: Vec<String> = many
        .refs
        .iter()
        .step_by(REFS / UNTAGGED)
        .map(|(n, _)| n.clone())
        .collect();
    let mut args = vec!["untag".to_string(), l.clone()];
    args.extend(gone.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if c.step("untag", &args)?.is_some() {
        for n in &gone {
            model.remove(n);
        }
    }
    c.check_refs(&layout, &model, "untag");

    let kept = newest_per_repository(&model);
    let to_remove = model.len() - kept.len();
    if let Some(o) = c.step(
        "prune --dry-run",
        &["prune", &l, "--keep", "1", "--dry-run", "--json"],
    )? {
        let v: Value = serde_json::from_str(&o.stdout).unwrap_or_default();
        c.check(
            v["removed"].as_u64() == Some(to_remove as u64),
            &format!(
                "prune --dry-run would remove {} refs, not {to_remove}",
                v["removed"]
            ),
        );
    }
    c.check_refs(&layout, &model, "prune --dry-run");

    let copy = dir.join("copy");
    c.step("copy", &["copy", &l, &s(&copy)])?;
    c.check_refs(&copy, &model, "copy");

    if c.step("prune", &["prune", &l, "--keep", "1"])?.is_some() {
        model.retain(|n, _| kept.contains(n));
    }
    c.check_refs(&layout, &model, "prune");

    // gc after the refs of one image are gone frees exactly its blobs (manifest, config,
    // one layer); the others stay.
    let image = many.images[0].to_string();
    c.step("untag (an image)", &["untag", &l, &image])?;
    model.retain(|_, d| *d != image);
    c.check_refs(&layout, &model, "untag of an image");
    if let Some(o) = c.step("gc", &["gc", &l, "--json"])? {
        let v: Value = serde_json::from_str(&o.stdout).unwrap_or_default();
        let freed = v["removed"].as_array().map_or(0, Vec::len);
        c.check(freed == 3, &format!("gc removed {freed} blobs, not 3"));
    }
    for (what, dir) in [("layout", &layout), ("copy", &copy)] {
        if let Some(o) = c.step("verify", &["verify", &s(dir)])? {
            c.check(o.code == Some(0), &format!("verify of the {what} failed"));
        }
    }
    let ok = c.details.is_empty();
    if ok {
        let _ = fs::remove_dir_all(&dir);
    }
    Ok(Report {
        line: format!(
            "scale: {REFS} refs written in {:.1}s; {} (each under {}s and {} MiB)",
            generated.as_secs_f64(),
            c.figures.join(", "),
            TIME_LIMIT.as_secs(),
            RSS_LIMIT_KIB >> 10
        ),
        ok,
        details: c.details,
    })
}

struct Campaign<'a> {
    ctx: &'a Ctx,
    details: Vec<String>,
    figures: Vec<String>,
}

impl Campaign<'_> {
    /// Runs one command and checks its exit code, time and peak memory; the output when it
    /// succeeded.
    fn step(&mut self, what: &str, args: &[&str]) -> anyhow::Result<Option<Out>> {
        let o = run_watched(&self.ctx.bin, args, 2 * TIME_LIMIT, true)?;
        let peak = o
            .peak_kib
            .map_or_else(|| "?".to_string(), |k| format!("{}", k >> 10));
        self.figures
            .push(format!("{what} {:.2}s {peak} MiB", o.elapsed.as_secs_f64()));
        let shown = args.iter().take(6).copied().collect::<Vec<_>>().join(" ");
        if o.timed_out || o.elapsed > TIME_LIMIT {
            self.details.push(format!(
                "`ocitool {shown} …` took {:.1}s (limit {}s)",
                o.elapsed.as_secs_f64(),
                TIME_LIMIT.as_secs()
            ));
        }
        if o.peak_kib.is_some_and(|k| k > RSS_LIMIT_KIB) {
            self.details.push(format!(
                "`ocitool {shown} …` peaked at {peak} MiB (limit {} MiB)",
                RSS_LIMIT_KIB >> 10
            ));
        }
        if o.code != Some(0) || o.timed_out {
            let err: Vec<&str> = o.stderr.lines().take(3).collect();
            self.details.push(format!(
                "`ocitool {shown} …` exited {:?}: {}",
                o.code,
                err.join(" | ")
            ));
            return Ok(None);
        }
        Ok(Some(o))
    }

    fn check(&mut self, ok: bool, problem: &str) {
        if !ok {
            self.details.push(problem.to_string());
        }
    }

    fn check_refs(&mut self, layout: &Path, model: &Refs, after: &str) {
        match read_refs(layout) {
            Ok(r) if r == *model => {}
            Ok(r) => {
                let missing = model.keys().filter(|n| !r.contains_key(*n)).count();
                let extra = r.keys().filter(|n| !model.contains_key(*n)).count();
                let moved = r
                    .iter()
                    .filter(|(n, d)| model.get(*n).is_some_and(|m| m != *d))
                    .count();
                self.details.push(format!(
                    "after {after}: {} refs, {missing} missing, {extra} unexpected, {moved} moved",
                    r.len()
                ));
            }
            Err(e) => self.details.push(format!("after {after}: {e:#}")),
        }
    }

    /// Every ref is on one row of the tree; each image's digest has one first row.
    fn check_tree(&mut self, json: &str, model: &Refs) {
        let v: Value = serde_json::from_str(json).unwrap_or_default();
        let mut seen: Refs = BTreeMap::new();
        let mut rows = 0;
        let mut firsts = 0;
        for repo in v.as_array().into_iter().flatten() {
            let name = str_of(&repo["repository"]);
            for part in ["versions", "others"] {
                for r in repo[part].as_array().into_iter().flatten() {
                    rows += 1;
                    firsts += usize::from(r["sameAs"].is_null());
                    seen.insert(
                        format!("{name}:{}", str_of(&r["tag"])),
                        str_of(&r["digest"]),
                    );
                }
            }
        }
        let images: BTreeSet<&String> = model.values().collect();
        self.check(
            rows == model.len() && seen == *model && firsts == images.len(),
            &format!(
                "ls --tree shows {rows} rows ({} refs), {firsts} first rows of a digest; want {} refs, {} digests",
                seen.len(),
                model.len(),
                images.len()
            ),
        );
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The refs `prune --keep 1` keeps: the highest version of each repository (the names are
/// `rN:1.M.0`) and every other tag.
fn newest_per_repository(model: &Refs) -> BTreeSet<String> {
    let mut best: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    let mut kept = BTreeSet::new();
    for n in model.keys() {
        let minor = n
            .split_once(':')
            .and_then(|(repo, tag)| Some((repo, tag.strip_prefix("1.")?.strip_suffix(".0")?)))
            .and_then(|(repo, m)| Some((repo, m.parse::<u64>().ok()?)));
        match minor {
            Some((repo, m)) => {
                let b = best.entry(repo).or_insert((m, n));
                if m >= b.0 {
                    *b = (m, n);
                }
            }
            None => {
                kept.insert(n.clone());
            }
        }
    }
    kept.extend(best.values().map(|(_, n)| n.to_string()));
    kept
}
