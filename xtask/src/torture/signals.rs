//! The **signals** campaign: SIGINT, SIGTERM and SIGKILL at a uniformly random moment of the
//! measured normal duration of `export -o`, `pack -o`, `import`, `unpack`, `copy` and `tag`.
//!
//! After a SIGINT or SIGTERM that landed: the process exited 130 or 143 with one
//! `error: interrupted` line, no `.ocitool-partial-*` file is left next to the output, an
//! archive that exists is the complete one (byte-identical to an uninterrupted run's).
//! After a SIGKILL: the next `export`/`pack` into the same directory succeeds and leaves no
//! partial file. For the layout commands, after any signal: `verify` exits 0, the refs as a
//! whole are their state before or after the command, and `gc` leaves no stray file (nothing
//! in `.ocitool/tmp/`, nothing at the layout's root but its own files). It takes about 8 % of
//! `--minutes` (at least [`MIN_SIGNALS`] signals landed).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ocitool_testkit::{Compression, Rng};

use super::{
    CMD_TIMEOUT, Ctx, LayoutFindings, Refs, Report, argv, check_after_kill, docker_save, entries,
    fresh_copy, must, ocitool, random_image, read_refs, s, sha256, show, uniform, write_layout,
};

/// Signals that must land (the process still running when it is sent), whatever the budget.
const MIN_SIGNALS: usize = 36;
/// Share of `--minutes` this campaign takes.
const SHARE: f64 = 0.08;
const PARTIAL: &str = ".ocitool-partial-";
/// What a layout's root may hold once `gc` ran.
const LAYOUT_FILES: [&str; 4] = ["oci-layout", "index.json", "blobs", ".ocitool"];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Sig {
    Int,
    Term,
    Kill,
}

impl Sig {
    fn name(self) -> &'static str {
        match self {
            Sig::Int => "INT",
            Sig::Term => "TERM",
            Sig::Kill => "KILL",
        }
    }
    fn number(self) -> i32 {
        match self {
            Sig::Int => 2,
            Sig::Term => 15,
            Sig::Kill => 9,
        }
    }
}

struct Variant {
    cmd: &'static str,
    /// Arguments, `{L}` standing for the layout, `{O}` for the output file.
    args: Vec<String>,
    /// Writes an archive (`{O}`) rather than the layout.
    archive: bool,
    dur: Duration,
    /// Refs after an uninterrupted run (layout commands).
    after: Refs,
    /// SHA-256 of the archive of an uninterrupted run (export, pack).
    output: String,
}

impl Variant {
    fn args(&self, layout: &Path, out: &Path) -> Vec<String> {
        self.args
            .iter()
            .map(|a| match a.as_str() {
                "{L}" => s(layout),
                "{O}" => s(out),
                _ => a.clone(),
            })
            .collect()
    }
}

#[derive(Default)]
struct Stats {
    landed: usize,
    by_signal: BTreeMap<&'static str, usize>,
    by_cmd: BTreeMap<&'static str, usize>,
    missed: usize,
    /// SIGINT/SIGTERM that killed the process before its handler was installed (the first
    /// instants after exec): the default action, nothing written yet.
    early: usize,
    /// SIGINT/SIGTERM that landed.
    int_term: usize,
    wrong_exit: usize,
    partial_left: usize,
    bad_archive: usize,
    layout: LayoutFindings,
    stray: usize,
    rerun_failed: usize,
    kept: usize,
    details: Vec<String>,
}

pub(super) fn run(ctx: &Ctx, rng: &mut Rng) -> anyhow::Result<Report> {
    let dir = ctx.work.join("signals");
    fs::create_dir_all(&dir)?;
    let budget = Duration::from_secs(ctx.minutes * 60).mul_f64(SHARE);
    let testdata = ctx.root.join("testdata");

    // Inputs: an archive adding big:1 and moving app:latest; an oci-archive adding packed:1;
    // a layout to copy adding copied:1.
    let a1 = random_image(rng, &[6 << 20, 2 << 20], Compression::None, false);
    let a2 = random_image(rng, &[512 << 10], Compression::None, false);
    let import_tar = dir.join("import.tar");
    fs::write(
        &import_tar,
        docker_save(&[(&a1, &["big:1"]), (&a2, &["app:latest"])]),
    )?;
    let p1 = random_image(rng, &[4 << 20, 1 << 20], Compression::Gzip, false);
    let packsrc = dir.join("packsrc");
    write_layout(&packsrc, &[(&p1, "packed:1")])?;
    let unpack_tar = dir.join("unpack.tar");
    must(ctx, &argv(&["pack", &s(&packsrc), "-o", &s(&unpack_tar)]))?;
    let c1 = random_image(rng, &[4 << 20, 1 << 20], Compression::Zstd, false);
    let copysrc = dir.join("copysrc");
    write_layout(&copysrc, &[(&c1, "copied:1")])?;

    // The layout every attempt starts from: testdata's sample, a multi-arch layout, an image of
    // 8 MiB to export, 300 more refs so index.json edits take a while.
    let base = dir.join("base");
    let b = s(&base);
    must(
        ctx,
        &argv(&["import", &s(&testdata.join("archives/docker-save.tar")), &b]),
    )?;
    must(
        ctx,
        &argv(&["copy", &s(&testdata.join("layouts/multi-arch")), &b]),
    )?;
    let e1 = random_image(rng, &[6 << 20, 2 << 20], Compression::Gzip, false);
    let exportsrc = dir.join("exportsrc");
    write_layout(&exportsrc, &[(&e1, "export:1")])?;
    must(ctx, &argv(&["copy", &s(&exportsrc), &b]))?;
    let mut tag_many = argv(&["tag", &b, "app:1.0"]);
    tag_many.extend((0..300).map(|i| format!("many/r{i}:1")));
    must(ctx, &tag_many)?;
    let before = read_refs(&base)?;

    let (l, o) = ("{L}", "{O}");
    let mut tag_args = argv(&["tag", l, "export:1", "app:1.0", "app:latest"]);
    tag_args.extend((0..150).map(|i| format!("many/r{i}:1")));
    tag_args.extend((0..150).map(|i| format!("new/t{i}:1")));
    let plans: Vec<(&'static str, Vec<String>, bool)> = vec![
        (
            "export",
            argv(&["export", l, "export:1", "app:1.0", "-o", o]),
            true,
        ),
        (
            "export",
            argv(&["export", l, "multi:1.0", "--format", "oci", "-o", o]),
            true,
        ),
        ("pack", argv(&["pack", l, "-o", o]), true),
        ("import", argv(&["import", &s(&import_tar), l]), false),
        ("unpack", argv(&["unpack", &s(&unpack_tar), l]), false),
        ("copy", argv(&["copy", &s(&copysrc), l]), false),
        ("tag", tag_args, false),
    ];

    // Archives are written from a layout of their own, never changed (no copy per attempt).
    let src = dir.join("src");
    fresh_copy(&base, &src)?;
    let w = dir.join("layout");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("archive.tar");
    let mut variants = Vec::new();
    for (cmd, args, archive) in plans {
        let mut v = Variant {
            cmd,
            args,
            archive,
            dur: Duration::ZERO,
            after: Refs::new(),
            output: String::new(),
        };
        let mut durs = Vec::new();
        for _ in 0..3 {
            let layout = if archive {
                &src
            } else {
                fresh_copy(&base, &w)?;
                &w
            };
            let _ = fs::remove_file(&out);
            let args = v.args(layout, &out);
            let t0 = Instant::now();
            let o = ocitool(ctx, &args, CMD_TIMEOUT)?;
            durs.push(t0.elapsed());
            if !o.ok() {
                bail!("`{}` failed uninterrupted: {}", show(&args), o.brief());
            }
            if archive {
                v.output = sha256(fs::read(&out)?);
            } else {
                v.after = read_refs(&w)?;
            }
        }
        durs.sort();
        v.dur = durs[1];
        variants.push(v);
    }

    let mut st = Stats::default();
    let start = Instant::now();
    let hard_stop = budget * 4 + Duration::from_secs(60);
    let mut attempt = 0usize;
    while (start.elapsed() < budget || st.landed < MIN_SIGNALS) && start.elapsed() < hard_stop {
        attempt += 1;
        let v = &variants[uniform(rng, variants.len())];
        let sig = [Sig::Int, Sig::Int, Sig::Term, Sig::Term, Sig::Kill][uniform(rng, 5)];
        let layout = if v.archive {
            src.clone()
        } else {
            fresh_copy(&base, &w)?;
            w.clone()
        };
        let _ = fs::remove_file(&out);
        let args = v.args(&layout, &out);
        let delay = v.dur.mul_f64((rng.next_u64() % 1_000_000) as f64 / 1e6);
        let label = format!(
            "attempt {attempt}: SIG{} after {:.1} ms of `{}`",
            sig.name(),
            delay.as_secs_f64() * 1e3,
            show(&args)
        );
        let Some(end) = signal_at(ctx, &args, sig, delay, &dir)? else {
            st.missed += 1;
            continue;
        };
        st.landed += 1;
        *st.by_signal.entry(sig.name()).or_default() += 1;
        *st.by_cmd.entry(v.cmd).or_default() += 1;
        check_exit(sig, &end, &label, &mut st);
        if v.archive {
            check_archive(ctx, v, sig, &args, &out_dir, &out, &label, &mut st)?;
        } else {
            check_layout(ctx, &dir, &w, &before, &v.after, &label, &mut st)?;
        }
    }

    // A handler that is never installed would show as nothing but early deaths.
    let too_early = st.early * 2 > st.int_term;
    if too_early {
        st.details.push(format!(
            "{} of {} SIGINT/SIGTERM killed ocitool by their default action: is the handler installed?",
            st.early, st.int_term
        ));
    }
    let ok = !too_early
        && st.layout.ok()
        && st.wrong_exit + st.partial_left + st.bad_archive + st.stray + st.rerun_failed == 0
        && st.landed >= MIN_SIGNALS;
    if st.landed < MIN_SIGNALS {
        st.details.push(format!(
            "only {} signals landed (want {MIN_SIGNALS})",
            st.landed
        ));
    }
    let join = |m: &BTreeMap<&str, usize>| -> String {
        m.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let durs: Vec<String> = variants
        .iter()
        .map(|v| format!("{:.0}", v.dur.as_secs_f64() * 1e3))
        .collect();
    let line = format!(
        "signals: {} signals ({}; {}; normal ms {}), {} missed, {} before the handler: wrong exits {}, partial files left {}, bad archives {}, corrupt layouts {}, lost refs {}, torn refs {}, dangling refs {}, stray files after gc {}, failed reruns {}",
        st.landed,
        join(&st.by_signal),
        join(&st.by_cmd),
        durs.join("/"),
        st.missed,
        st.early,
        st.wrong_exit,
        st.partial_left,
        st.bad_archive,
        st.layout.corrupt,
        st.layout.lost_refs,
        st.layout.torn,
        st.layout.dangling,
        st.stray,
        st.rerun_failed,
    );
    Ok(Report {
        line,
        ok,
        details: st.details,
    })
}

/// How a signalled process ended.
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
}

/// Runs ocitool and sends `sig` after `delay`; None when it had finished by then (a miss).
fn signal_at(
    ctx: &Ctx,
    args: &[String],
    sig: Sig,
    delay: Duration,
    dir: &Path,
) -> anyhow::Result<Option<Ended>> {
    let err_path = dir.join("victim.stderr");
    let mut child = Command::new(&ctx.bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(fs::File::create(&err_path)?))
        .spawn()
        .context("spawn ocitool")?;
    let t0 = Instant::now();
    std::thread::sleep(delay.saturating_sub(t0.elapsed()));
    if child.try_wait()?.is_some() {
        return Ok(None);
    }
    if sig == Sig::Kill {
        let _ = child.kill();
    } else {
        let st = Command::new("kill")
            .args([format!("-{}", sig.name()), child.id().to_string()])
            .status()
            .context("run kill")?;
        if !st.success() {
            bail!("kill -{} {} failed", sig.name(), child.id());
        }
    }
    let t1 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if t1.elapsed() > CMD_TIMEOUT {
            let _ = child.kill();
            bail!("`{}` did not stop after SIG{}", show(args), sig.name());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    Ok(Some(Ended {
        code: status.code(),
        signal: status.signal(),
        stderr,
    }))
}

/// SIGINT/SIGTERM: exit 128 + the signal with one `error: interrupted` line, or 0 when the
/// signal arrived as the command was ending, or death by the signal before the handler was
/// installed (counted apart; it must stay rare). SIGKILL: death by it.
fn check_exit(sig: Sig, end: &Ended, label: &str, st: &mut Stats) {
    let (code, signal, stderr) = (end.code, end.signal, end.stderr.as_str());
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    if sig != Sig::Kill {
        st.int_term += 1;
        if signal == Some(sig.number()) && stderr.is_empty() {
            st.early += 1;
            return;
        }
    }
    // A signal sent as the command was ending finds it done: exit 0.
    let finished = code == Some(0) && errors.is_empty();
    let good = finished
        || match sig {
            Sig::Kill => signal == Some(9),
            _ => {
                code == Some(128 + sig.number())
                    && errors.len() == 1
                    && errors[0].starts_with("error: interrupted")
            }
        };
    if !good {
        st.wrong_exit += 1;
        st.details.push(format!(
            "{label}: exit {code:?} (signal {signal:?}), want {}; stderr {:?}",
            if sig == Sig::Kill {
                "death by SIGKILL".to_string()
            } else {
                format!("{} with one `error: interrupted` line", 128 + sig.number())
            },
            stderr.trim()
        ));
    }
}

fn partials(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(PARTIAL))
                .collect()
        })
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn check_archive(
    ctx: &Ctx,
    v: &Variant,
    sig: Sig,
    args: &[String],
    out_dir: &Path,
    out: &Path,
    label: &str,
    st: &mut Stats,
) -> anyhow::Result<()> {
    // An archive that exists is the whole one: it is renamed into place only when complete.
    if out.exists() && sha256(fs::read(out)?) != v.output {
        st.bad_archive += 1;
        st.details
            .push(format!("{label}: {} exists but is not complete", s(out)));
    }
    let left = partials(out_dir);
    if sig != Sig::Kill && !left.is_empty() {
        st.partial_left += 1;
        st.details
            .push(format!("{label}: left {}", left.join(", ")));
    }
    if sig == Sig::Kill {
        // The next run completes and removes what the killed one left.
        let o = ocitool(ctx, args, CMD_TIMEOUT)?;
        let left = partials(out_dir);
        if !o.ok() {
            st.rerun_failed += 1;
            st.details
                .push(format!("{label}: the rerun failed: {}", o.brief()));
        } else if !left.is_empty() {
            st.partial_left += 1;
            st.details.push(format!(
                "{label}: after the rerun, {} still there",
                left.join(", ")
            ));
        } else if sha256(fs::read(out)?) != v.output {
            st.bad_archive += 1;
            st.details
                .push(format!("{label}: the rerun's archive differs"));
        }
        for p in left {
            let _ = fs::remove_file(out_dir.join(p));
        }
    }
    Ok(())
}

/// The checks of `check_after_kill`, then: `gc` removes what the interrupted command staged,
/// and nothing else may be left.
fn check_layout(
    ctx: &Ctx,
    dir: &Path,
    w: &Path,
    before: &Refs,
    after: &Refs,
    label: &str,
    st: &mut Stats,
) -> anyhow::Result<()> {
    check_after_kill(
        ctx,
        dir,
        w,
        (before, after),
        label,
        &mut st.layout,
        &mut st.kept,
        &mut st.details,
    )?;
    // gc removes what the interrupted command staged; nothing else may be left.
    let g = ocitool(ctx, &argv(&["gc", &s(w)]), CMD_TIMEOUT)?;
    let tmp = entries(&w.join(".ocitool/tmp"));
    let strays: Vec<PathBuf> = fs::read_dir(w)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| !LAYOUT_FILES.contains(&n))
        })
        .collect();
    if !g.ok() || tmp > 0 || !strays.is_empty() {
        st.stray += 1;
        st.details.push(format!(
            "{label}: after gc ({}): {tmp} entries in .ocitool/tmp, strays {strays:?}",
            g.brief()
        ));
    }
    Ok(())
}
