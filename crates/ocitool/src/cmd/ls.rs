use std::collections::{HashMap, HashSet};
use std::path::Path;

use ocitool_digest::Digest;
use ocitool_layout::{BlobSource, Graph, IndexDoc, Layout, WalkOptions, resolve};
use ocitool_lifecycle::check_repos;
use ocitool_spec::media;
use ocitool_spec::views::DescriptorKeys;
use serde::Serialize;
use serde::ser::SerializeSeq;

use crate::cli::LsArgs;
use crate::cmd::import;
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

/// Rows printed per call of `output::table` (see [`print_table`]).
const TABLE_BATCH: usize = 1024;

pub fn run(ctx: &mut Ctx, a: &LsArgs) -> anyhow::Result<i32> {
    let path = a.layout.as_path();
    if import::is_archive(path) {
        return archive(ctx, a);
    }
    let layout = Layout::open(path, ctx.layout_options())?;
    let _lock = layout.read_lock()?;
    let mut index = layout.read_index()?;
    only_repositories(&mut index, &a.repos)?;
    if a.tree {
        return tree(ctx, &index);
    }
    let graph = walk(&layout, &index);
    if !graph.problems.is_empty() {
        ctx.warn(format!(
            "{} problem(s) found while reading the layout; `ocitool verify {}` lists them",
            graph.problems.len(),
            path.display()
        ));
    }
    list(ctx, path, &index, &graph)
}

/// `ls ARCHIVE`: the refs an import into an empty layout would create, as `ls` would then
/// list them, read without writing anything.
fn archive(ctx: &mut Ctx, a: &LsArgs) -> anyhow::Result<i32> {
    let path = a.layout.as_path();
    let mut view = import::read_archive(ctx, path, &a.limits)?;
    only_repositories(&mut view.index, &a.repos)?;
    let summary = import::read_summary(path, &view);
    let code = if a.tree {
        tree(ctx, &view.index)?
    } else {
        let graph = walk(&view.blobs, &view.index);
        // What the archive lacks was said; anything else would be a defect of the reading.
        let other: Vec<_> = graph
            .problems
            .iter()
            .filter(|p| {
                p.digest
                    .as_ref()
                    .is_none_or(|d| !view.missing.iter().any(|(m, _)| m == d))
            })
            .collect();
        if let Some(p) = other.first() {
            ctx.warn(format!(
                "{} problem(s) found while reading {}, the first: {}: {}",
                other.len(),
                import::shown(path),
                p.path,
                p.problem
            ));
        }
        list(ctx, path, &view.index, &graph)?
    };
    ctx.info(summary);
    Ok(code)
}

/// `ls LAYOUT REPO...`: leaves in `index` only the entries of those repositories (compared
/// by normalized name, as `REPO:*` selects them); a repository without a ref is an error,
/// with suggestions as `prune --repo` gives them.
fn only_repositories(index: &mut IndexDoc, repos: &[String]) -> anyhow::Result<()> {
    if repos.is_empty() {
        return Ok(());
    }
    let mut keep: HashSet<String> = HashSet::new();
    for r in repos {
        let names = resolve::refs_of_repository(index, r);
        if names.is_empty() {
            return Err(
                match check_repos(&index.ref_digests(), std::slice::from_ref(r)) {
                    Err(e) => anyhow::Error::new(e),
                    Ok(()) => anyhow::anyhow!("no ref of repository {r:?} in the layout"),
                },
            );
        }
        keep.extend(names.into_iter().map(str::to_string));
    }
    let others: Vec<usize> = index
        .keys()
        .filter(|k| k.display_name().is_none_or(|n| !keep.contains(n)))
        .map(|k| k.position)
        .collect();
    index.remove_positions(&others);
    Ok(())
}

/// The graph `ls` reads. Many refs usually share few images: the walk starts once per
/// distinct descriptor, and size and platforms are computed once per digest.
fn walk(blobs: &dyn BlobSource, index: &IndexDoc) -> Graph {
    Graph::walk(
        blobs,
        &index.walk_roots(blobs.json_limit()),
        WalkOptions {
            read_configs: true,
            check_presence: false,
        },
    )
}

/// Prints the rows of `index` (a table, or `--json`).
fn list(ctx: &mut Ctx, path: &Path, index: &IndexDoc, graph: &Graph) -> anyhow::Result<i32> {
    let images = Images::of(graph, index);
    // Rows are made one at a time from the index as they are written: a listing of 100,000
    // refs holds no more than the index itself.
    if ctx.global.json {
        ctx.out.json(&Rows {
            index,
            images: &images,
        })?;
        return Ok(exit::OK);
    }
    if index.is_empty() {
        ctx.info(format!("{}: no refs", import::shown(path)));
        return Ok(exit::OK);
    }
    let header = ["REF", "DIGEST", "TYPE", "PLATFORMS", "SIZE"].map(String::from);
    let cells = || {
        std::iter::once(header.to_vec())
            .chain(index.views().map(|(_, k)| text_cells(&images.row(&k))))
    };
    print_table(ctx, cells)?;
    Ok(exit::OK)
}

/// Prints rows laid out exactly as one `output::table` of all of them would be, without
/// holding them all: a first pass finds each column's width, a second formats batches of
/// rows, each headed by a row of blanks that wide.
fn print_table<I: Iterator<Item = Vec<String>>>(
    ctx: &mut Ctx,
    rows: impl Fn() -> I,
) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = Vec::new();
    for r in rows() {
        widths.resize(widths.len().max(r.len()), 0);
        for (w, c) in widths.iter_mut().zip(&r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let blanks: Vec<String> = widths.iter().map(|w| " ".repeat(*w)).collect();
    let mut batch = vec![blanks.clone()];
    let flush = |ctx: &mut Ctx, batch: &mut Vec<Vec<String>>| -> anyhow::Result<()> {
        for line in table(batch).into_iter().skip(1) {
            ctx.out.line(line)?;
        }
        batch.truncate(1);
        Ok(())
    };
    for r in rows() {
        batch.push(r);
        if batch.len() > TABLE_BATCH {
            flush(ctx, &mut batch)?;
        }
    }
    flush(ctx, &mut batch)
}

fn text_cells(r: &Row) -> Vec<String> {
    vec![
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
    ]
}

/// Platforms and total size of each digest the index lists, computed once per digest.
struct Images(HashMap<String, (Vec<String>, u64)>);

impl Images {
    fn of(graph: &Graph, index: &IndexDoc) -> Images {
        let mut m = HashMap::new();
        for k in index.keys() {
            if m.contains_key(k.digest) {
                continue;
            }
            let Ok(digest) = Digest::parse(k.digest) else {
                continue;
            };
            let size = graph.total_size(&graph.closure(std::slice::from_ref(&digest), false));
            let platforms = graph
                .platforms_of(&digest)
                .iter()
                .map(ToString::to_string)
                .collect();
            m.insert(k.digest.to_string(), (platforms, size));
        }
        Images(m)
    }

    /// The row of one entry.
    fn row(&self, k: &DescriptorKeys<'_>) -> Row {
        let digest: &str = &k.digest.0;
        let (platforms, size) = match self.0.get(digest) {
            Some((p, s)) => (p.clone(), *s),
            // Not a valid digest: nothing was walked.
            None => (Vec::new(), k.size.max(0) as u64),
        };
        let platforms = match (&k.platform, platforms.is_empty()) {
            (Some(pl), true) => vec![pl.to_string()],
            _ => platforms,
        };
        let names = &k.annotations;
        Row {
            reference: names
                .ref_name
                .as_ref()
                .or(names.containerd_name.as_ref())
                .map(|s| s.0.to_string())
                .unwrap_or_default(),
            digest: digest.to_string(),
            media_type: k.media_type.0.to_string(),
            platforms,
            size,
        }
    }
}

/// `ls --json`: the rows as a JSON array, each made as it is written.
struct Rows<'a> {
    index: &'a IndexDoc,
    images: &'a Images,
}

impl Serialize for Rows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.index.len()))?;
        for (_, k) in self.index.views() {
            seq.serialize_element(&self.images.row(&k))?;
        }
        seq.end()
    }
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

/// One repository of `ls --tree --json`.
#[derive(Serialize)]
struct TreeRepo<'a> {
    repository: &'a str,
    versions: Vec<TreeRow<'a>>,
    others: Vec<TreeRow<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TreeRow<'a> {
    tag: &'a str,
    digest: &'a str,
    builds: &'a [String],
    aliases: &'a [String],
    shared_with: &'a [String],
    same_as: Option<&'a str>,
}

impl<'a> TreeRow<'a> {
    fn of(x: &'a ocitool_lifecycle::Row) -> TreeRow<'a> {
        TreeRow {
            tag: &x.tag,
            digest: &x.digest,
            builds: &x.builds,
            aliases: &x.aliases,
            shared_with: &x.shared_with,
            same_as: x.same_as.as_deref(),
        }
    }
}

/// `ls --tree`: refs by repository, releases by semver precedence, each with the build tags
/// (SHA, date) and the aliases of its image, then builds without a version and other tags;
/// the first row of a digest lists the refs of other repositories sharing it, later rows of
/// that digest name that first row (`(= app:1.2.3)`).
fn tree(ctx: &mut Ctx, index: &IndexDoc) -> anyhow::Result<i32> {
    let repos = ocitool_lifecycle::tree(&index.ref_digests());
    if ctx.global.json {
        let v: Vec<TreeRepo> = repos
            .iter()
            .map(|r| TreeRepo {
                repository: &r.name,
                versions: r.versions.iter().map(TreeRow::of).collect(),
                others: r.others.iter().map(TreeRow::of).collect(),
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
            if let Some(first) = &x.same_as {
                extra.push(format!("(= {first})"));
            } else if !x.shared_with.is_empty() {
                extra.push(format!("(= {})", x.shared_with.join(", ")));
            }
            t.push(vec![
                format!("  {}", x.tag),
                Digest::parse(&x.digest)
                    .map(|d| d.short())
                    .unwrap_or_else(|_| x.digest.clone()),
                x.builds.join(" "),
                extra.join(" "),
            ]);
        }
        // No build-tag column in a repository without build tags.
        if t.iter().all(|r| r[2].is_empty()) {
            for r in &mut t {
                r.remove(2);
            }
        }
        for line in table(&t) {
            ctx.out.line(line)?;
        }
    }
    Ok(exit::OK)
}
