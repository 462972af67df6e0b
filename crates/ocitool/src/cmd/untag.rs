use std::collections::HashMap;

use crate::cli::UntagArgs;

use ocitool_digest::Digest;
use ocitool_layout::resolve::{self, match_name};
use ocitool_layout::{Error, IndexDoc, Layout, Transaction};
use ocitool_spec::reference::{Reference, repository_key};
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
        // Entries by digest, made once, on the first digest asked for.
        let mut by_digest: Option<HashMap<String, Vec<usize>>> = None;
        let mut positions = Vec::new();
        let mut removed = Vec::new();
        for r in &refs {
            let (matched, digest_ref) = if a.name {
                (index.positions_named(r), false)
            } else {
                matching(&layout, index, r, &mut by_digest)?
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
            ctx.out.line(describe(r))?;
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

/// The entries a REF removes: those pointing at a digest (a full one, or a prefix as `ls`
/// prints it, when no name matches); those of a name, its containerd name or a twin of it;
/// for `name@digest`, the refs of that repository pointing at the digest.
fn matching(
    layout: &Layout,
    index: &IndexDoc,
    r: &str,
    by_digest: &mut Option<HashMap<String, Vec<usize>>>,
) -> ocitool_layout::Result<(Vec<usize>, bool)> {
    let mut of_digest = |d: &str| {
        by_digest
            .get_or_insert_with(|| entries_by_digest(index))
            .get(d)
            .cloned()
            .unwrap_or_default()
    };
    if Digest::parse(r).is_ok() {
        refuse_digest_named_entry(index, r)?;
        return Ok((of_digest(r), true));
    }
    let named = match_name(index, r);
    if !named.is_empty() {
        return Ok((named, false));
    }
    if let Ok(x) = Reference::parse(r)
        && let Some(d) = x.digest()
    {
        let repo = x.name();
        let all = of_digest(&d.to_string());
        let mine: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&p| {
                index
                    .key(p)
                    .and_then(|k| k.display_name())
                    .is_some_and(|n| repository_key(n) == repo)
            })
            .collect();
        if mine.is_empty() && !all.is_empty() {
            let names: Vec<String> = all
                .iter()
                .filter_map(|&p| index.key(p).and_then(|k| k.display_name()))
                .map(|n| format!("{n:?}"))
                .collect();
            return Err(Error::UnknownRef {
                name: r.to_string(),
                layout: layout.root().to_path_buf(),
                hint: format!(
                    " (no ref of repository {} points at {d}; {} do{})",
                    x.familiar_name(),
                    if names.is_empty() {
                        "only unnamed entries".to_string()
                    } else {
                        names.join(", ")
                    },
                    if names.len() == 1 { "es" } else { "" }
                ),
            });
        }
        return Ok((mine, true));
    }
    // A digest prefix as `ls` prints it, naming one digest.
    match resolve::resolve_named(layout, index, r) {
        Ok(found) if found.name.is_none() => {
            Ok((of_digest(&found.target.digest.to_string()), true))
        }
        Ok(_) | Err(Error::UnknownRef { .. }) => Ok((Vec::new(), false)),
        Err(e) => Err(e),
    }
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
