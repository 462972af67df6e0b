use ocitool_layout::resolve;
use ocitool_layout::{IndexDoc, Layout, Transaction, txn};
use ocitool_lifecycle::release_moves;
use ocitool_spec::refname;
use serde::Serialize;

use crate::cli::TagArgs;
use crate::{Ctx, exit};

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Move {
    #[serde(rename = "ref")]
    pub reference: String,
    pub digest: String,
    /// The digest the ref pointed at before, if it existed.
    pub previous: Option<String>,
    /// Entries of the same image name spelled another way (twins: `docker.io/library/app:1`
    /// for `app:1`) that this ref replaced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<String>,
}

pub fn run(ctx: &mut Ctx, a: &TagArgs) -> anyhow::Result<i32> {
    for t in &a.targets {
        check_target(ctx, t, a.allow_any)?;
    }
    let layout = Layout::open(&a.layout, ctx.layout_options())?;
    let edit = |index: &mut IndexDoc| apply(&layout, index, &a.source, &a.targets, a.semver);
    let moves = if a.dry_run {
        // The same edit and the same protection check as a commit, nothing written: a dry run
        // fails where the real command would.
        let _lock = layout.read_lock()?;
        let mut index = layout.read_index()?;
        txn::check_edit(&mut index, a.force, edit)?
    } else {
        let mut txn = Transaction::begin(&layout)?;
        txn.set_force(a.force);
        let moves = txn.commit(edit)?;
        ctx.committed();
        moves
    };
    report(ctx, &moves, a.dry_run)?;
    Ok(exit::OK)
}

/// Points every target (and, with `semver`, the aliases each version among them feeds) at
/// what `source` resolves to, in one edit of `index`.
pub fn apply(
    layout: &Layout,
    index: &mut IndexDoc,
    source: &str,
    targets: &[String],
    semver: bool,
) -> ocitool_layout::Result<Vec<Move>> {
    // A name resolves to an index.json entry (whatever its media type); a digest only to a
    // document that parses as a manifest or an index.
    let target = resolve::resolve(layout, index, source)?;
    let digest = target.digest.to_string();
    // With --semver the versions cascade and the build tags named with them are set in the
    // same edit (one release, one index.json update).
    let names: Vec<String> = if semver {
        release_moves(&index.ref_digests(), targets, &digest)
            .map_err(|e| ocitool_layout::Error::Invalid(e.to_string()))?
            .into_iter()
            .map(|m| m.name)
            .collect()
    } else {
        targets.to_vec()
    };
    let mut moves = Vec::new();
    for n in names {
        refname::validate_carried(&n)?;
        let replaced: Vec<String> = index
            .positions_twins(&n)
            .into_iter()
            .filter_map(|p| index.key(p).and_then(|k| k.ref_name))
            .filter(|t| *t != n)
            .map(str::to_string)
            .collect();
        let previous = index.set_ref(&n, &target.descriptor);
        moves.push(Move {
            reference: n,
            digest: digest.clone(),
            previous,
            replaced,
        });
    }
    Ok(moves)
}

/// A name `tag` creates must load in docker, podman and containerd (`refname::validate_new`);
/// with `--allow-any`, a name of the image-spec grammar is stored with a warning instead.
fn check_target(ctx: &mut Ctx, t: &str, allow_any: bool) -> anyhow::Result<()> {
    let Err(e) = refname::validate_new(t) else {
        return Ok(());
    };
    if !allow_any || refname::validate(t).is_err() {
        let hint = if refname::validate(t).is_ok() && !refname::is_digest_shaped(t) {
            "; docker, podman and containerd refuse it at load (--allow-any stores it anyway)"
        } else {
            ""
        };
        anyhow::bail!("{e}{hint}");
    }
    ctx.warn(format!(
        "{t:?} is not a name docker, podman and containerd load ({}); stored anyway (--allow-any): `export` refuses it, `pack` and `copy` carry it",
        e.why
    ));
    Ok(())
}

fn report(ctx: &mut Ctx, moves: &[Move], dry_run: bool) -> anyhow::Result<()> {
    if ctx.global.json {
        ctx.out
            .json(&serde_json::json!({ "dryRun": dry_run, "refs": moves }))?;
        return Ok(());
    }
    let verb = if dry_run { "would point" } else { "points" };
    for m in moves {
        let mut how = match &m.previous {
            None => "new".to_string(),
            Some(p) if *p == m.digest => "unchanged".to_string(),
            Some(p) => format!("moved from {p}"),
        };
        for r in &m.replaced {
            how.push_str(&format!("; replaces {r:?}, the same name"));
        }
        ctx.item(format!("{} {verb} at {} ({how})", m.reference, m.digest))?;
    }
    Ok(())
}
