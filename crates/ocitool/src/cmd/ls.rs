use ocitool_digest::Digest;
use ocitool_layout::{Graph, Layout, WalkOptions};
use ocitool_spec::media;
use serde::Serialize;

use crate::cli::LsArgs;
use crate::output::{human_size, table};
use crate::{Ctx, exit};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    /// The ref name; for an unnamed entry its containerd name, or "" when it has neither.
    #[serde(rename = "ref")]
    reference: String,
    digest: String,
    media_type: String,
    platforms: Vec<String>,
    size: u64,
}

pub fn run(ctx: &mut Ctx, a: &LsArgs) -> anyhow::Result<i32> {
    let path = a.layout.as_path();
    let layout = Layout::open(path, ctx.layout_options())?;
    let _lock = layout.read_lock()?;
    let index = layout.read_index()?;
    if a.tree {
        return tree(ctx, &index);
    }
    let graph = Graph::walk_index(
        &layout,
        &index,
        WalkOptions {
            read_configs: true,
            check_presence: false,
        },
    );
    // Many refs usually share few images: size and platforms are computed once per digest.
    let mut per_digest: std::collections::HashMap<&str, (Vec<String>, u64)> = Default::default();
    let mut rows = Vec::with_capacity(index.len());
    for (_, d) in index.iter() {
        let (platforms, size) = per_digest
            .entry(d.digest.as_str())
            .or_insert_with(|| match Digest::parse(&d.digest) {
                Ok(digest) => {
                    let size =
                        graph.total_size(&graph.closure(std::slice::from_ref(&digest), false));
                    let p: Vec<String> = graph
                        .platforms_of(&digest)
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    (p, size)
                }
                Err(_) => (Vec::new(), d.size.max(0) as u64),
            })
            .clone();
        let platforms = match (&d.platform, platforms.is_empty()) {
            (Some(pl), true) => vec![pl.to_string()],
            _ => platforms,
        };
        rows.push(Row {
            reference: d
                .ref_name()
                .or(d.containerd_name())
                .unwrap_or("")
                .to_string(),
            digest: d.digest.clone(),
            media_type: d.media_type.clone(),
            platforms,
            size,
        });
    }
    if !graph.problems.is_empty() {
        ctx.warn(format!(
            "{} problem(s) found while reading the layout; `ocitool verify {}` lists them",
            graph.problems.len(),
            path.display()
        ));
    }
    if ctx.global.json {
        ctx.out.json(&rows)?;
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        ctx.info(format!("{}: no refs", path.display()));
        return Ok(exit::OK);
    }
    let mut t = vec![vec![
        "REF".into(),
        "DIGEST".into(),
        "TYPE".into(),
        "PLATFORMS".into(),
        "SIZE".into(),
    ]];
    for r in &rows {
        t.push(vec![
            if r.reference.is_empty() {
                "<none>".into()
            } else {
                r.reference.clone()
            },
            Digest::parse(&r.digest)
                .map(|d| d.short())
                .unwrap_or_else(|_| r.digest.clone()),
            short_type(&r.media_type).into(),
            if r.platforms.is_empty() {
                "-".into()
            } else {
                r.platforms.join(",")
            },
            human_size(r.size),
        ]);
    }
    for line in table(&t) {
        ctx.out.line(line)?;
    }
    Ok(exit::OK)
}

/// A short word for a media type in tables.
pub fn short_type(mt: &str) -> &str {
    match mt {
        media::OCI_INDEX => "index",
        media::OCI_MANIFEST => "manifest",
        media::DOCKER_MANIFEST_LIST => "docker-list",
        media::DOCKER_MANIFEST => "docker-manifest",
        other => other,
    }
}

/// `ls --tree`: refs by repository, versions by semver precedence, each with the aliases that
/// point at its digest and the refs of other repositories sharing it.
fn tree(ctx: &mut Ctx, index: &ocitool_layout::IndexDoc) -> anyhow::Result<i32> {
    let repos = ocitool_lifecycle::tree(&index.ref_digests());
    if ctx.global.json {
        let v: Vec<_> = repos
            .iter()
            .map(|r| {
                let rows = |rows: &[ocitool_lifecycle::Row]| -> Vec<serde_json::Value> {
                    rows.iter()
                        .map(|x| serde_json::json!({"tag": x.tag, "digest": x.digest, "aliases": x.aliases, "sharedWith": x.shared_with}))
                        .collect()
                };
                serde_json::json!({"repository": r.name, "versions": rows(&r.versions), "others": rows(&r.others)})
            })
            .collect();
        ctx.out.json(&v)?;
        return Ok(exit::OK);
    }
    for r in &repos {
        ctx.out.line(if r.name.is_empty() {
            "(no repository)".to_string()
        } else {
            r.name.clone()
        })?;
        let mut t = Vec::new();
        for x in r.versions.iter().chain(&r.others) {
            let mut extra = Vec::new();
            if !x.aliases.is_empty() {
                extra.push(format!("<- {}", x.aliases.join(", ")));
            }
            if !x.shared_with.is_empty() {
                extra.push(format!("(= {})", x.shared_with.join(", ")));
            }
            t.push(vec![
                format!("  {}", x.tag),
                Digest::parse(&x.digest)
                    .map(|d| d.short())
                    .unwrap_or_else(|_| x.digest.clone()),
                extra.join(" "),
            ]);
        }
        for line in table(&t) {
            ctx.out.line(line)?;
        }
    }
    Ok(exit::OK)
}
