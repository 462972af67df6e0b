use std::path::Path;

use ocitool_layout::verify::{self, Scope};
use ocitool_layout::{Layout, Problem, resolve};
use serde_json::json;

use crate::output::human_size;
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, path: &Path, refs: &[String]) -> anyhow::Result<i32> {
    let (layout, layout_problem) = Layout::open_lenient(path, ctx.layout_options())?;
    // A lock file that is a fifo or a symlink is reported below as a problem, not followed.
    let _lock = match layout.read_lock() {
        Err(ocitool_layout::Error::UnsafePath { .. }) => None,
        other => other?,
    };
    let scope = if refs.is_empty() {
        Scope::Whole
    } else {
        let index = layout.read_index()?;
        let mut roots = Vec::new();
        // `REPO:*` as every command that takes refs reads it.
        for r in &resolve::select_refs(&layout, &index, refs, false)? {
            let t = resolve::resolve(&layout, &index, r)?;
            let d: ocitool_spec::Descriptor = serde_json::from_value(t.descriptor.clone())?;
            roots.push((format!("ref {r}"), d));
        }
        Scope::Roots(roots)
    };
    let progress = ctx.progress();
    let mut report = verify::verify(&layout, scope, &progress)?;
    if let Some(e) = layout_problem {
        report.problems.insert(
            0,
            Problem {
                digest: None,
                path: "oci-layout".into(),
                problem: e.to_string(),
            },
        );
    }
    if ctx.global.json {
        let problems: Vec<_> = report
            .problems
            .iter()
            .map(|p| {
                json!({
                    "digest": p.digest.as_ref().map(ToString::to_string).unwrap_or_default(),
                    "path": p.path,
                    "problem": p.problem,
                })
            })
            .collect();
        ctx.out.json(&json!({
            "ok": report.ok(),
            "checked": report.checked,
            "problems": problems,
            "notes": report.notes,
        }))?;
    } else {
        for p in &report.problems {
            ctx.out.line(problem_line(p))?;
        }
        for n in &report.notes {
            ctx.note(n);
        }
        ctx.out.flush()?;
        if report.ok() {
            ctx.info(format!(
                "ok: {} blobs verified ({})",
                report.checked,
                human_size(report.bytes)
            ));
        } else {
            ctx.info(format!(
                "{} problem(s); {} blobs checked ({})",
                report.problems.len(),
                report.checked,
                human_size(report.bytes)
            ));
        }
    }
    Ok(if report.ok() {
        exit::OK
    } else {
        exit::PROBLEMS
    })
}

/// One line per problem naming the file (and the digest when the path does not).
fn problem_line(p: &Problem) -> String {
    let names_digest = p
        .digest
        .as_ref()
        .is_none_or(|d| p.path.contains(d.encoded()) || p.problem.contains(&d.to_string()));
    let body = if p.problem.starts_with(&p.path) {
        p.problem.clone()
    } else {
        format!("{}: {}", p.path, p.problem)
    };
    match (&p.digest, names_digest) {
        (Some(d), false) => format!("{d}: {body}"),
        _ => body,
    }
}
