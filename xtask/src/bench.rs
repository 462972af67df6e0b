//! `cargo xtask bench`: ocitool against its peers and floors, in the same run, on the same files.
//!
//! Methodology:
//! - ocitool is built in release mode first; the data is generated deterministically under
//!   `target/bench/` (a six-layer gzip image of `--size` bytes, see `ocitool_testkit::big`,
//!   cached across runs by a stamp file) and small derived layouts under `target/bench/work/`.
//! - **Warm cache.** Nothing is dropped from the page cache: every file is read once during
//!   generation and by an untimed warm-up run of each command, so the times measure CPU and
//!   system-call work, not the disk.
//! - Each command runs once untimed under GNU time (`/usr/bin/time -f '%M %U %S'`), which gives
//!   its peak RSS (`ru_maxrss`) and CPU time, then `--runs` times (3 by default) directly under
//!   `std::process::Command`; the reported time is the best (minimum) wall time, process start
//!   and exit included. Standard output goes to `/dev/null`.
//! - Commands that change the layout (`tag`) create a fresh name on each run and remove it
//!   after, untimed, so every run does the same work. Peers run on their own copies (blobs
//!   hard-linked, so they share the page cache); gc checks that neither tool removed anything.
//! - Targets are those of issue 2: ratios are ocitool's best time over the peer's or floor's
//!   best time. The memory target (peak RSS under 64 MiB) applies to every ocitool measurement
//!   but those on a large `index.json` (100,000 refs), which have a bound of their own.
//! - The table is printed and written as JSON to `<dir>/results.json`.
//!
//! New benchmarks are one more [`Measurement`]: time ocitool and its references with
//! [`Timer::time_cmd`] or [`Timer::time_with`], attach [`Target`]s, push it onto the list.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ocitool_testkit::big::{BigLayout, write_big_layout};
use serde_json::{Value, json};

/// Peak RSS allowed to every measured ocitool process.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// GNU time, which reports a child's `ru_maxrss` (xtask forbids `unsafe`, so no `wait4` here).
const GNU_TIME: &str = "/usr/bin/time";

#[derive(clap::Args)]
pub struct Args {
    /// Uncompressed layer bytes of the big image (K, M, G suffixes are powers of 1024;
    /// default 3G).
    #[arg(long)]
    size: Option<String>,
    /// Where the data and results go (default: target/bench in the workspace).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Timed runs of each command; the best is reported (default 3; 1 with --quick).
    #[arg(long)]
    runs: Option<u32>,
    /// A smoke run: 64M of data and one timed run, unless --size or --runs say otherwise.
    #[arg(long)]
    quick: bool,
    /// Refs in the many-refs layout.
    #[arg(long, default_value_t = 10_000)]
    refs: usize,
    /// Refs in the large-index layout (ls, ls --tree, tag, prune, copy, verify); 0 skips it.
    #[arg(long, default_value_t = 100_000)]
    many_refs: usize,
    /// Time this ocitool binary instead of building one (`cargo build --release`).
    #[arg(long, value_name = "PATH")]
    ocitool: Option<PathBuf>,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only verify, gc and the many-refs measurements (skip import, export, copy, pack,
    /// unpack and convert).
    #[arg(long)]
    no_transfer: bool,
    /// Also time push and pull against a local docker-registry (on by default when it is
    /// installed; see --no-registry).
    #[arg(long)]
    no_registry: bool,
    /// Only the network measurements: push, re-push and pull against docker-registry, and
    /// serve against Distribution, for a quick check.
    #[arg(long)]
    registry_only: bool,
}

/// The outcome of timing one command.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Best (minimum) wall time of the timed runs.
    pub best: Duration,
    /// Every timed run.
    pub runs: Vec<Duration>,
    /// Peak resident set of the warm-up run, KiB (None without GNU time).
    pub max_rss_kib: Option<u64>,
    /// User + system CPU time of the warm-up run (None without GNU time).
    pub cpu: Option<Duration>,
    /// The runs alternated with the other commands of the measurement
    /// ([`Timer::time_alternating`]): run `i` of each was timed in the same round.
    pub paired: bool,
}

/// What ocitool's time is held to.
#[derive(Clone, Debug)]
pub enum Target {
    /// Best time under this.
    Under(Duration),
    /// Best time at most `max` times the best time of the reference labelled `reference`.
    RatioAtMost { reference: String, max: f64 },
    /// A target that covers only part of what is measured: the ratio is shown against it but
    /// decides nothing (`why` says where the deciding measurement is).
    Indicative {
        reference: String,
        max: f64,
        why: String,
    },
    /// Peak RSS under this many KiB, instead of the 64 MiB every other measurement is held
    /// to (a command whose input is a large `index.json` holds part of it).
    PeakRssUnder(u64),
}

/// One benchmark: ocitool's timing, the peers or floors it is compared with, its targets.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub name: String,
    pub ours: Timing,
    pub reference: Vec<(String, Timing)>,
    pub targets: Vec<Target>,
    /// Remarks printed under the table (checks done, caveats).
    pub notes: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Miss,
    Info,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::Info => "info",
        }
    }
}

impl Measurement {
    fn reference(&self, label: &str) -> Option<&Timing> {
        self.reference
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, t)| t)
    }

    /// The ratio a target is judged by: for runs timed in alternation the median of the
    /// rounds' ratios ([`Measurement::round_ratios`]), otherwise best against best.
    fn ratio(&self, label: &str) -> Option<f64> {
        match self.round_ratios(label) {
            Some(r) => Some(median(&r)),
            None => self.best_ratio(label),
        }
    }

    /// Best time against best time.
    fn best_ratio(&self, label: &str) -> Option<f64> {
        self.reference(label)
            .map(|t| self.ours.best.as_secs_f64() / t.best.as_secs_f64())
    }

    /// For runs timed in alternation, each round's ratio: the two runs of a round were timed
    /// next to each other, so a drift of the machine's speed (this VM's wanders by 10-30% over
    /// minutes) falls on both, where best against best may pair one side's luckiest minute
    /// with the other's unluckiest.
    fn round_ratios(&self, label: &str) -> Option<Vec<f64>> {
        let t = self.reference(label)?;
        (self.ours.paired && t.paired && !t.runs.is_empty() && t.runs.len() == self.ours.runs.len())
            .then(|| {
                self.ours
                    .runs
                    .iter()
                    .zip(&t.runs)
                    .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
                    .collect()
            })
    }

    /// Notes on how each paired ratio was reached.
    fn ratio_notes(&self) -> Vec<String> {
        self.reference
            .iter()
            .filter_map(|(label, _)| {
                let rounds = self.round_ratios(label)?;
                Some(format!(
                    "ratio to {label}: median of {} alternated rounds ({}); best against best {}",
                    rounds.len(),
                    rounds
                        .iter()
                        .map(|r| format!("{r:.2}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.best_ratio(label).map_or(String::new(), fmt_ratio),
                ))
            })
            .collect()
    }

    /// `(label shown in the target column, verdict)` of one target.
    fn judge(&self, t: &Target) -> (String, Verdict) {
        match t {
            Target::Under(d) => (
                format!("< {}", fmt_dur(*d)),
                if self.ours.best < *d {
                    Verdict::Pass
                } else {
                    Verdict::Miss
                },
            ),
            Target::RatioAtMost { reference, max } => (
                format!("<= {max:.2}x"),
                match self.ratio(reference) {
                    Some(r) if r <= *max => Verdict::Pass,
                    Some(_) => Verdict::Miss,
                    None => Verdict::Info,
                },
            ),
            Target::Indicative { max, why, .. } => (format!("<= {max:.2}x ({why})"), Verdict::Info),
            Target::PeakRssUnder(kib) => (
                format!("RSS < {}", fmt_kib(Some(*kib))),
                match self.ours.max_rss_kib {
                    Some(k) if k < *kib => Verdict::Pass,
                    Some(_) => Verdict::Miss,
                    None => Verdict::Info,
                },
            ),
        }
    }

    /// The memory bound of this measurement: its own, or the 64 MiB of all the others.
    fn own_rss_limit(&self) -> Option<u64> {
        self.targets.iter().find_map(|t| match t {
            Target::PeakRssUnder(k) => Some(*k),
            _ => None,
        })
    }

    fn rss_ok(&self) -> Option<bool> {
        let limit = self.own_rss_limit().unwrap_or(RSS_LIMIT_KIB);
        self.ours.max_rss_kib.map(|k| k < limit)
    }

    fn to_json(&self) -> Value {
        let timing = |t: &Timing| {
            json!({
                "best_s": t.best.as_secs_f64(),
                "runs_s": t.runs.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
                "max_rss_kib": t.max_rss_kib,
                "cpu_s": t.cpu.map(|c| c.as_secs_f64()),
            })
        };
        json!({
            "name": self.name,
            "ocitool": timing(&self.ours),
            "references": self.reference.iter().map(|(l, t)| {
                let mut v = timing(t);
                v["label"] = Value::from(l.as_str());
                v["ratio"] = Value::from(self.ratio(l));
                v["best_ratio"] = Value::from(self.best_ratio(l));
                v["round_ratios"] = json!(self.round_ratios(l));
                v
            }).collect::<Vec<_>>(),
            "targets": self.targets.iter().map(|t| {
                let (label, verdict) = self.judge(t);
                let mut v = match t {
                    Target::Under(d) => json!({"kind": "under", "seconds": d.as_secs_f64()}),
                    Target::RatioAtMost { reference, max } =>
                        json!({"kind": "ratio_at_most", "reference": reference, "max": max}),
                    Target::Indicative { reference, max, why } =>
                        json!({"kind": "indicative", "reference": reference, "max": max, "why": why}),
                    Target::PeakRssUnder(kib) => json!({"kind": "peak_rss_under", "kib": kib}),
                };
                v["label"] = Value::from(label);
                v["verdict"] = Value::from(verdict.as_str());
                v
            }).collect::<Vec<_>>(),
            "rss_under_64mib": self.own_rss_limit().is_none().then(|| self.rss_ok()).flatten(),
            "rss_under_own_limit": self.own_rss_limit().and(self.rss_ok()),
            "notes": self.notes,
        })
    }
}

/// Runs commands and times them; knows whether GNU time is there.
pub struct Timer {
    runs: u32,
    gnu_time: bool,
    scratch: PathBuf,
}

impl Timer {
    /// Times `cmd`: one untimed warm-up run, then `runs` timed runs (see [`Timer::time_with`]).
    pub fn time_cmd(&self, cmd: &mut Command) -> anyhow::Result<Timing> {
        let p = proto(cmd);
        self.time_with(|_| rebuild(&p), |_| Ok(()))
    }

    /// One untimed warm-up run under GNU time (peak RSS, CPU), then `runs` timed runs; the
    /// command of run `i` is `make(i)` (run 0 is the warm-up), and `after(i)` runs untimed after
    /// each (to undo what the run changed). Every run must exit 0.
    pub fn time_with(
        &self,
        mut make: impl FnMut(u32) -> Command,
        mut after: impl FnMut(u32) -> anyhow::Result<()>,
    ) -> anyhow::Result<Timing> {
        let mut timing = self.warm_up(make(0))?;
        after(0)?;
        for i in 1..=self.runs {
            timing.runs.push(self.timed_run(make(i))?);
            after(i)?;
        }
        timing.best = timing.runs.iter().copied().min().unwrap_or_default();
        Ok(timing)
    }

    /// Times commands that are compared with each other (one client against two servers, two
    /// clients against one registry): one warm-up of each, then their timed runs in turn, the
    /// order rotated every round (a b c, b c a, c a b, ...), so a drift of the machine's speed
    /// (this VM's wanders by 10-30% over minutes) falls on all alike rather than on whichever
    /// ran last. `after` runs untimed after every run.
    pub fn time_alternating(
        &self,
        makers: &mut [&mut dyn FnMut() -> Command],
        mut after: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<Timing>> {
        let mut timings = Vec::new();
        for make in makers.iter_mut() {
            timings.push(self.warm_up(make())?);
            after()?;
        }
        let n = makers.len();
        for round in 0..self.runs as usize {
            for k in 0..n {
                let which = (round + k) % n;
                timings[which].runs.push(self.timed_run(makers[which]())?);
                after()?;
            }
        }
        for t in &mut timings {
            t.best = t.runs.iter().copied().min().unwrap_or_default();
            t.paired = true;
        }
        Ok(timings)
    }

    /// The untimed warm-up run: under GNU time when it is there (peak RSS, CPU). The result
    /// has no timed runs yet.
    fn warm_up(&self, warm: Command) -> anyhow::Result<Timing> {
        let mut max_rss_kib = None;
        let mut cpu = None;
        if self.gnu_time {
            let out = self.scratch.join("gnu-time.out");
            let mut wrapped = Command::new(GNU_TIME);
            wrapped.arg("-f").arg("%M %U %S").arg("-o").arg(&out);
            wrapped.arg(warm.get_program()).args(warm.get_args());
            copy_setup(&warm, &mut wrapped);
            run_checked(&mut wrapped, &describe(&warm))?;
            let text = std::fs::read_to_string(&out).context("GNU time output")?;
            let last = text.lines().last().unwrap_or_default();
            let f: Vec<&str> = last.split_whitespace().collect();
            if let [m, u, s] = f[..] {
                max_rss_kib = m.parse().ok();
                let secs = u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0);
                cpu = Some(Duration::from_secs_f64(secs));
            }
        } else {
            let mut w = warm;
            let d = describe(&w);
            run_checked(&mut w, &d)?;
        }
        Ok(Timing {
            best: Duration::ZERO,
            runs: Vec::new(),
            max_rss_kib,
            cpu,
            paired: false,
        })
    }

    /// One timed run, which must exit 0.
    fn timed_run(&self, mut c: Command) -> anyhow::Result<Duration> {
        let d = describe(&c);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        let t0 = Instant::now();
        let out = c.output().with_context(|| format!("run {d}"))?;
        let dt = t0.elapsed();
        if !out.status.success() {
            bail!(
                "`{d}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(dt)
    }
}

struct Proto {
    program: std::ffi::OsString,
    args: Vec<std::ffi::OsString>,
    dir: Option<PathBuf>,
    envs: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)>,
}

fn proto(cmd: &Command) -> Proto {
    Proto {
        program: cmd.get_program().to_owned(),
        args: cmd.get_args().map(ToOwned::to_owned).collect(),
        dir: cmd.get_current_dir().map(Path::to_path_buf),
        envs: cmd
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
            .collect(),
    }
}

fn rebuild(p: &Proto) -> Command {
    let mut c = Command::new(&p.program);
    c.args(&p.args);
    if let Some(d) = &p.dir {
        c.current_dir(d);
    }
    for (k, v) in &p.envs {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

fn copy_setup(from: &Command, to: &mut Command) {
    if let Some(d) = from.get_current_dir() {
        to.current_dir(d);
    }
    for (k, v) in from.get_envs() {
        match v {
            Some(v) => to.env(k, v),
            None => to.env_remove(k),
        };
    }
}

fn describe(cmd: &Command) -> String {
    let p = proto(cmd);
    let mut s = Path::new(&p.program)
        .file_name()
        .unwrap_or(&p.program)
        .to_string_lossy()
        .into_owned();
    for (i, a) in p.args.iter().enumerate() {
        if i == 8 {
            let _ = write!(s, " …({} args)", p.args.len());
            break;
        }
        let _ = write!(s, " {}", a.to_string_lossy());
    }
    s
}

fn run_checked(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("run {what}"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn has_gnu_time() -> bool {
    Command::new(GNU_TIME)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU"))
}

/// CPU ticks (USER_HZ) spent by the whole machine, and by this process and its waited-for
/// children (Linux `/proc`): their difference over the measurements is what other processes
/// took from the cores.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?;
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_comm = &me[me.rfind(')')? + 1..];
    let g: Vec<u64> = after_comm
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime stime cutime cstime are fields 14..=17; field 3 is the first after the name.
    let ours = g.get(11)? + g.get(12)? + g.get(13)? + g.get(14)?;
    Some((busy, ours))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

/// `1G`, `512M`, `64MiB`, `1000000`: K, M, G, T are powers of 1024.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("invalid size {s:?}"))?;
    if !(n.is_finite() && n > 0.0) {
        bail!("invalid size {s:?}");
    }
    Ok((n * (1u64 << shift) as f64) as u64)
}

fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 0.01 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

/// The median of a non-empty list (the mean of the middle two for an even count).
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn fmt_ratio(x: f64) -> String {
    if x >= 0.095 {
        format!("{x:.2}x")
    } else {
        format!("{x:.4}x")
    }
}

fn fmt_kib(k: Option<u64>) -> String {
    match k {
        Some(k) if k >= 1024 * 1024 => format!("{:.2} GiB", k as f64 / 1048576.0),
        Some(k) => format!("{:.1} MiB", k as f64 / 1024.0),
        None => "n/a".into(),
    }
}

fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

/// Copies a layout: blobs hard-linked (read-only for everyone here, and they share the page
/// cache), every other file copied, `.ocitool/` left out.
fn link_layout(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        let t = to.join(&name);
        if name == ".ocitool" {
            continue;
        }
        if name == "blobs" {
            for alg in std::fs::read_dir(e.path())? {
                let alg = alg?;
                std::fs::create_dir_all(t.join(alg.file_name()))?;
                for b in std::fs::read_dir(alg.path())? {
                    let b = b?;
                    std::fs::hard_link(b.path(), t.join(alg.file_name()).join(b.file_name()))?;
                }
            }
        } else {
            std::fs::copy(e.path(), &t)?;
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let t = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &t)?;
        } else {
            std::fs::copy(e.path(), &t)?;
        }
    }
    Ok(())
}

/// Sorted names of every blob file of a layout.
fn blob_names(layout: &Path) -> anyhow::Result<Vec<String>> {
    let mut v = Vec::new();
    for alg in std::fs::read_dir(layout.join("blobs"))? {
        let alg = alg?;
        for b in std::fs::read_dir(alg.path())? {
            v.push(format!(
                "{}/{}",
                alg.file_name().to_string_lossy(),
                b?.file_name().to_string_lossy()
            ));
        }
    }
    v.sort();
    Ok(v)
}

/// Times `skopeo copy -q [flags] SRC DST`, removing `out` after each run; returns the reference
/// row, labelled `label`, and the target that ocitool takes at most `max` times as long.
fn time_skopeo(
    ctx: &Ctx,
    skopeo: &Path,
    flags: &[&str],
    (src, dst): (String, String),
    out: &Path,
    label: &str,
    max: f64,
) -> anyhow::Result<((String, Timing), Target)> {
    let t = ctx.timer.time_with(
        |_| {
            let mut c = Command::new(skopeo);
            c.args(["copy", "-q"]).args(flags).arg(&src).arg(&dst);
            c
        },
        |_| clean(out),
    )?;
    Ok((
        (label.to_string(), t),
        Target::RatioAtMost {
            reference: label.into(),
            max,
        },
    ))
}

fn cmd(program: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let mut c = Command::new(program);
    for a in args {
        c.arg(a);
    }
    c
}

struct Ctx {
    timer: Timer,
    ocitool: PathBuf,
    work: PathBuf,
    big: BigLayout,
    refs: usize,
    many_refs: usize,
    notes: Vec<String>,
}

impl Ctx {
    fn peer(&mut self, name: &str) -> Option<PathBuf> {
        let p = which(name);
        let note = format!("{name} is not installed: its comparisons are skipped");
        if p.is_none() && !self.notes.contains(&note) {
            self.notes.push(note);
        }
        p
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (dir, mut ctx, gen_time) = prepare(&args)?;
    let ticks_before = cpu_ticks();
    let t_measure = Instant::now();
    let ms = measure(&mut ctx, &args)?;
    // Ticks are 1/100 s on Linux (USER_HZ).
    let others = match (ticks_before, cpu_ticks()) {
        (Some((b0, o0)), Some((b1, o1))) => {
            let other = (b1 - b0).saturating_sub(o1 - o0) as f64 / 100.0;
            Some(other / t_measure.elapsed().as_secs_f64())
        }
        _ => None,
    };
    if let Some(x) = others
        && x > 0.15
    {
        ctx.notes.push(format!(
            "the machine was busy: other processes used {x:.2} cores on average while the bench ran, so the times are pessimistic; rerun on a quiet machine"
        ));
    }
    report(&dir, &ctx, &ms, gen_time, others)
}

/// The bench directory, the context (a private copy of the binary, the big layout generated
/// or reused, an empty work directory) and how long the layout took to generate.
fn prepare(args: &Args) -> anyhow::Result<(PathBuf, Ctx, Duration)> {
    let size = parse_size(
        args.size
            .as_deref()
            // 3 GiB of layer data: a gzip layout over 2 GB and a plain archive over 2 GiB, the
            // smallest sizes the issues' targets are stated for.
            .unwrap_or(if args.quick { "64M" } else { "3G" }),
    )?;
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| crate::root().join("target/bench"));
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;

    let built = match &args.ocitool {
        Some(p) => p.clone(),
        None => {
            eprintln!("building ocitool (release)…");
            crate::demo::build_release()?
        }
    };
    // A private copy: a concurrent `cargo build` cannot swap the binary mid-run.
    let ocitool = dir.join("ocitool");
    std::fs::copy(&built, &ocitool).with_context(|| format!("copy {}", built.display()))?;

    let big_dir = dir.join(format!("big-{size}-seed{}", args.seed));
    eprintln!(
        "generating {} of layer data in {} (cached across runs)…",
        fmt_bytes(size),
        big_dir.display()
    );
    let t0 = Instant::now();
    let big = write_big_layout(&big_dir, size, args.seed)
        .with_context(|| format!("generate {}", big_dir.display()))?;
    let gen_time = t0.elapsed();

    let work = dir.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let gnu_time = has_gnu_time();
    let mut ctx = Ctx {
        timer: Timer {
            runs,
            gnu_time,
            scratch: work.clone(),
        },
        ocitool,
        work,
        big,
        refs: args.refs,
        many_refs: args.many_refs,
        notes: Vec::new(),
    };
    if !gnu_time {
        ctx.notes.push(format!(
            "{GNU_TIME} is not GNU time: peak RSS and CPU time are not measured"
        ));
    }

    Ok((dir, ctx, gen_time))
}

/// Every measurement the arguments ask for, in the table's order.
fn measure(ctx: &mut Ctx, args: &Args) -> anyhow::Result<Vec<Measurement>> {
    let mut ms: Vec<Measurement> = Vec::new();
    if !args.registry_only {
        eprintln!("timing verify and its floors…");
        ms.extend(bench_verify(ctx)?);
        eprintln!("timing gc…");
        ms.extend(bench_gc(ctx)?);
        eprintln!("timing {} refs: tag and ls…", ctx.refs);
        ms.extend(bench_refs(ctx)?);
        if ctx.many_refs > 0 {
            eprintln!(
                "timing {} refs: ls, ls --tree, tag, prune, copy, verify…",
                ctx.many_refs
            );
            ms.extend(bench_many_refs(ctx)?);
        }
    }
    if !args.no_transfer && !args.registry_only {
        eprintln!("timing import and export…");
        ms.extend(bench_archives(ctx)?);
        eprintln!("timing copy, pack and unpack…");
        ms.extend(bench_transfer(ctx)?);
        eprintln!("timing convert…");
        ms.extend(bench_convert(ctx)?);
    }
    if !args.no_transfer || args.registry_only {
        eprintln!("timing serve against Distribution…");
        ms.extend(bench_serve(ctx)?);
    }
    if !args.no_registry || args.registry_only {
        eprintln!("timing push and pull against docker-registry…");
        ms.extend(bench_registry(ctx)?);
    }
    Ok(ms)
}

/// Prints the table, the memory verdict and the notes, and writes `results.json`.
fn report(
    dir: &Path,
    ctx: &Ctx,
    ms: &[Measurement],
    gen_time: Duration,
    others: Option<f64>,
) -> anyhow::Result<()> {
    let (runs, gnu_time) = (ctx.timer.runs, ctx.timer.gnu_time);
    let header = format!(
        "ocitool bench: {} cores; image of {} layers, {} uncompressed ({} as blobs, gzip ratio {:.2}), {} ({:.1} s); warm cache (nothing dropped from the page cache); best of {runs} timed run(s) after one untimed warm-up{}; commands compared in alternated rounds are judged by the median of the rounds' ratios",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        ctx.big.layers.len(),
        fmt_bytes(ctx.big.tar_bytes()),
        fmt_bytes(ctx.big.blob_bytes()),
        ctx.big.tar_bytes() as f64 / ctx.big.blob_bytes() as f64,
        if ctx.big.reused {
            "reused"
        } else {
            "generated"
        },
        gen_time.as_secs_f64(),
        if gnu_time {
            " (under GNU time: peak RSS, CPU)"
        } else {
            ""
        },
    );
    let table = render(ms);
    println!("{header}\n");
    print!("{table}");
    // Measurements with a memory bound of their own (large indexes) are judged by it.
    let all_rss: Vec<(&str, u64)> = ms
        .iter()
        .filter(|m| m.own_rss_limit().is_none())
        .filter_map(|m| m.ours.max_rss_kib.map(|k| (m.name.as_str(), k)))
        .collect();
    if let Some((name, k)) = all_rss.iter().max_by_key(|(_, k)| *k) {
        println!(
            "\nmemory target (ocitool peak RSS < 64 MiB in every measurement; large-index ones have their own bound): {} (largest {} in {name})",
            if *k < RSS_LIMIT_KIB { "PASS" } else { "MISS" },
            fmt_kib(Some(*k)),
        );
    }
    let mut notes: Vec<String> = ms
        .iter()
        .flat_map(|m| {
            m.notes
                .iter()
                .cloned()
                .chain(m.ratio_notes())
                .map(move |n| format!("{}: {n}", m.name))
        })
        .collect();
    notes.extend(ctx.notes.iter().cloned());
    if !notes.is_empty() {
        println!();
        for n in &notes {
            println!("note: {n}");
        }
    }

    let results = json!({
        "header": header,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "runs": runs,
        "warm_cache": true,
        "image": {
            "dir": ctx.big.dir,
            "layers": ctx.big.layers.len(),
            "tar_bytes": ctx.big.tar_bytes(),
            "blob_bytes": ctx.big.blob_bytes(),
            "reused": ctx.big.reused,
            "generation_s": gen_time.as_secs_f64(),
        },
        "refs": ctx.refs,
        "other_processes_cores": others,
        "rss_limit_kib": RSS_LIMIT_KIB,
        "measurements": ms.iter().map(Measurement::to_json).collect::<Vec<_>>(),
        "notes": notes,
    });
    let out = dir.join("results.json");
    let mut bytes = serde_json::to_vec_pretty(&results)?;
    bytes.push(b'\n');
    std::fs::write(&out, bytes)?;
    println!("\nresults: {}", out.display());
    Ok(())
}

/// 1. Blob digests and layer diff_ids: `ocitool verify` against `openssl dgst` and `pigz -dc`.
fn bench_verify(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    let big = ctx.big.clone();
    let openssl = ctx.peer("openssl");
    let pigz = ctx.peer("pigz");
    let mut refs = Vec::new();
    const OPENSSL: &str = "openssl dgst -sha256, every blob (1 thread)";
    const PIGZ: &str = "pigz -dc, every layer";
    if let Some(o) = &openssl {
        let mut c = Command::new(o);
        c.args(["dgst", "-sha256"]).args(big.blob_paths());
        refs.push((OPENSSL.to_string(), ctx.timer.time_cmd(&mut c)?));
    }
    if let Some(p) = &pigz {
        let mut c = Command::new(p);
        c.arg("-dc").args(big.layer_paths());
        refs.push((PIGZ.to_string(), ctx.timer.time_cmd(&mut c)?));
    }
    let full = ctx
        .timer
        .time_cmd(&mut cmd(&ctx.ocitool, &[&"verify", &big.dir]))?;

    // Digests only: the same blobs (hard links) under an index that lists nothing, so verify
    // hashes every blob file and decompresses none.
    let bare = ctx.work.join("digests-only");
    link_layout(&big.dir, &bare)?;
    std::fs::write(
        bare.join("index.json"),
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
    )?;
    let digests = ctx
        .timer
        .time_cmd(&mut cmd(&ctx.ocitool, &[&"verify", &bare]))?;

    let openssl_ref: Vec<_> = refs.iter().filter(|(l, _)| l == OPENSSL).cloned().collect();
    Ok(vec![
        Measurement {
            name: "verify: blob digests + diff_ids".into(),
            ours: full,
            reference: refs,
            targets: vec![
                Target::RatioAtMost {
                    reference: PIGZ.into(),
                    max: 1.0,
                },
                Target::Indicative {
                    reference: OPENSSL.into(),
                    max: 0.65,
                    why: "digests-only target, see next row".into(),
                },
            ],
            notes: vec![format!(
                "ocitool verify {} (the whole layout: {} blobs, {} layers decompressed)",
                big.dir.display(),
                big.blob_paths().len(),
                big.layers.len()
            )],
        },
        Measurement {
            name: "verify: blob digests only".into(),
            ours: digests,
            reference: openssl_ref,
            targets: vec![Target::RatioAtMost {
                reference: OPENSSL.into(),
                max: 0.65,
            }],
            notes: vec![
                "ocitool verify on a copy (blobs hard-linked) whose index.json lists nothing: every blob file is hashed as unreferenced, none decompressed".into(),
            ],
        },
    ])
}

/// 2. gc with nothing to free.
fn bench_gc(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    let big = ctx.big.clone();
    let before = blob_names(&big.dir)?;
    let ours = ctx
        .timer
        .time_cmd(&mut cmd(&ctx.ocitool, &[&"gc", &big.dir]))?;
    let after = blob_names(&big.dir)?;
    if before != after {
        bail!(
            "ocitool gc removed {} blob(s) from the bench layout",
            before.len() - after.len()
        );
    }
    let mut reference = Vec::new();
    let mut notes = vec![format!(
        "nothing to free ({} blobs); checked that no blob was removed",
        before.len()
    )];
    if let Some(umoci) = ctx.peer("umoci") {
        let copy = ctx.work.join("umoci-gc");
        link_layout(&big.dir, &copy)?;
        let t = ctx
            .timer
            .time_cmd(&mut cmd(&umoci, &[&"gc", &"--layout", &copy]))?;
        if blob_names(&copy)? != before {
            bail!("umoci gc removed blobs from its copy of the bench layout");
        }
        reference.push(("umoci gc".to_string(), t));
        notes.push("umoci runs on its own copy (blobs hard-linked)".into());
    }
    Ok(vec![Measurement {
        name: "gc, nothing to free".into(),
        ours,
        reference,
        targets: vec![Target::Under(Duration::from_millis(100))],
        notes,
    }])
}

/// 3. A layout with many refs: tag one more, list them.
fn bench_refs(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    let n = ctx.refs;
    let layout = ctx.work.join("refs-ocitool");
    copy_tree(&crate::root().join("testdata/layouts/minimal"), &layout)?;
    const SRC: &str = "app:1.0";
    let names: Vec<String> = (0..n).map(|i| format!("r{i:05}")).collect();
    // Batched so the argument list stays far below ARG_MAX whatever --refs is.
    for chunk in names.chunks(20_000) {
        let mut c = Command::new(&ctx.ocitool);
        c.arg("tag").arg(&layout).arg(SRC).args(chunk);
        run_checked(&mut c, "ocitool tag (setting up the refs)")?;
    }
    let umoci = ctx.peer("umoci");
    let ulayout = ctx.work.join("refs-umoci");
    if umoci.is_some() {
        copy_tree(&layout, &ulayout)?;
        let _ = std::fs::remove_dir_all(ulayout.join(".ocitool"));
    }
    let ocitool = ctx.ocitool.clone();
    let timer = &ctx.timer;

    // tag: a fresh name each run, removed after it (untimed).
    let ours = timer.time_with(
        |i| cmd(&ocitool, &[&"tag", &layout, &SRC, &format!("new-{i}")]),
        |i| {
            run_checked(
                &mut cmd(&ocitool, &[&"untag", &layout, &format!("new-{i}")]),
                "ocitool untag",
            )
        },
    )?;
    let mut tag_refs = Vec::new();
    let mut ls_refs = Vec::new();
    if let Some(u) = &umoci {
        let image = format!("{}:{}", ulayout.display(), names.first().map_or(SRC, |s| s));
        let t = timer.time_with(
            |i| cmd(u, &[&"tag", &"--image", &image, &format!("new-{i}")]),
            |i| {
                run_checked(
                    &mut cmd(
                        u,
                        &[&"rm", &"--image", &format!("{}:new-{i}", ulayout.display())],
                    ),
                    "umoci rm",
                )
            },
        )?;
        tag_refs.push(("umoci tag".to_string(), t));
        let t = timer.time_cmd(&mut cmd(u, &[&"ls", &"--layout", &ulayout]))?;
        ls_refs.push(("umoci ls".to_string(), t));
    }
    let ls = timer.time_cmd(&mut cmd(&ocitool, &[&"ls", &layout]))?;
    let what = format!(
        "{} refs to one small image (testdata/layouts/minimal)",
        n + 1
    );
    Ok(vec![
        Measurement {
            name: format!("tag one new ref, {n} refs"),
            ours,
            reference: tag_refs,
            targets: vec![Target::Under(Duration::from_millis(20))],
            notes: vec![format!(
                "{what}; each run adds a fresh name (fsync on, the default) and it is removed after, untimed"
            )],
        },
        Measurement {
            name: format!("ls, {n} refs"),
            ours: ls,
            reference: ls_refs,
            targets: vec![],
            notes: vec![],
        },
    ])
}

/// Repositories and images of the large-index layout.
const MANY_REPOS: usize = 100;
const MANY_IMAGES: usize = 4;
/// Memory bound of each large-index measurement (the index itself is about 19 MB).
const MANY_RSS_LIMIT_KIB: u64 = 256 * 1024;

/// 4. A large `index.json`, every command that goes through all refs.
///
/// `--many-refs` refs (100,000 by default) in 100 repositories to 4 small images, written
/// directly by `ocitool_testkit::many`; each command with its time and peak memory. Those that
/// change the layout get the original `index.json` back after each run (untimed).
fn bench_many_refs(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    let n = ctx.many_refs;
    let layout = ctx.work.join("many-refs");
    let many = ocitool_testkit::many::write_many_refs(&layout, n, MANY_IMAGES, MANY_REPOS)
        .context("write the large-index layout")?;
    let index_path = layout.join("index.json");
    let index = std::fs::read(&index_path)?;
    let restore = |_| -> anyhow::Result<()> {
        std::fs::write(&index_path, &index)?;
        Ok(())
    };
    let first = many.refs.first().map_or("r0:1.0.0".into(), |r| r.0.clone());
    let copy_dst = ctx.work.join("many-refs-copy");
    clean(&copy_dst)?;
    let ocitool = ctx.ocitool.clone();
    let timer = &ctx.timer;
    let ls = timer.time_cmd(&mut cmd(&ocitool, &[&"ls", &layout]))?;
    let tree = timer.time_cmd(&mut cmd(&ocitool, &[&"ls", &layout, &"--tree"]))?;
    let tag = timer.time_with(
        |i| cmd(&ocitool, &[&"tag", &layout, &first, &format!("new:{i}")]),
        restore,
    )?;
    let prune = timer.time_with(
        |_| cmd(&ocitool, &[&"prune", &layout, &"--keep", &"1"]),
        restore,
    )?;
    let copy = timer.time_with(
        |_| cmd(&ocitool, &[&"copy", &layout, &copy_dst]),
        |_| clean(&copy_dst),
    )?;
    let verify = timer.time_cmd(&mut cmd(&ocitool, &[&"verify", &layout]))?;
    let what = format!(
        "{n} refs in {MANY_REPOS} repositories to {MANY_IMAGES} small images (index.json {})",
        fmt_bytes(index.len() as u64)
    );
    let row = |name: &str, ours: Timing, note: &str| Measurement {
        name: format!("{name}, {n} refs"),
        ours,
        reference: vec![],
        targets: vec![Target::PeakRssUnder(MANY_RSS_LIMIT_KIB)],
        notes: vec![format!("{what}; {note}")],
    };
    Ok(vec![
        row("ls", ls, "every row"),
        row(
            "ls --tree",
            tree,
            "every ref, sharers of each digest listed once",
        ),
        row(
            "tag",
            tag,
            "one new name (fsync on); index.json restored after each run, untimed",
        ),
        row(
            "prune --keep 1",
            prune,
            &format!(
                "removes all but {MANY_REPOS} refs (fsync on); index.json restored after each run, untimed"
            ),
        ),
        row(
            "copy",
            copy,
            "every ref into a new layout; removed after each run, untimed",
        ),
        row("verify", verify, "the whole layout"),
    ])
}

/// Removes a path if it exists (between timed runs).
fn clean(p: &Path) -> anyhow::Result<()> {
    if p.is_dir() {
        std::fs::remove_dir_all(p)?;
    } else if p.exists() {
        std::fs::remove_file(p)?;
    }
    Ok(())
}

/// A shell command (for pipelines of floors such as `tar -x && sync`).
/// `tar -x` of `archive` into `dir` (created), then `sync` of that file system if asked: the
/// I/O floors of import and unpack.
fn untar(archive: &Path, dir: &Path, sync: bool) -> Command {
    let then = if sync { " && sync -f \"$1\"" } else { "" };
    let mut c = shell(&format!(
        "mkdir -p \"$1\" && tar -xf \"$0\" -C \"$1\"{then}"
    ));
    c.arg(archive).arg(dir);
    c
}

fn shell(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

/// The big layout as an uncompressed docker-save archive (what `docker save` writes), made
/// once per run: `convert --compression none` into a hard-linked copy, then `export`.
fn plain_archive(ctx: &mut Ctx) -> anyhow::Result<(PathBuf, PathBuf)> {
    let plain_layout = ctx.work.join("plain-layout");
    let archive = ctx.work.join("plain.tar");
    if !archive.exists() {
        link_layout(&ctx.big.dir, &plain_layout)?;
        run_checked(
            &mut cmd(
                &ctx.ocitool,
                &[
                    &"convert",
                    &plain_layout,
                    &ctx.big.reference,
                    &"bench:plain",
                    &"--compression",
                    &"none",
                    &"-q",
                ],
            ),
            "ocitool convert (setting up an uncompressed layout)",
        )?;
        run_checked(
            &mut cmd(
                &ctx.ocitool,
                &[&"untag", &plain_layout, &ctx.big.reference, &"-q"],
            ),
            "ocitool untag",
        )?;
        run_checked(
            &mut cmd(&ctx.ocitool, &[&"gc", &plain_layout, &"-q"]),
            "ocitool gc",
        )?;
        run_checked(
            &mut cmd(
                &ctx.ocitool,
                &[
                    &"export",
                    &plain_layout,
                    &"bench:plain",
                    &"-o",
                    &archive,
                    &"-q",
                ],
            ),
            "ocitool export (setting up the docker-save archive)",
        )?;
    }
    Ok((plain_layout, archive))
}

/// Import of an uncompressed docker-save archive; export of the gzip layout.
fn bench_archives(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    let (_, archive) = plain_archive(ctx)?;
    let size = std::fs::metadata(&archive)?.len();
    let ocitool = ctx.ocitool.clone();
    let dst = ctx.work.join("import-dst");
    let timer = &ctx.timer;
    let ours = timer.time_with(
        |_| cmd(&ocitool, &[&"import", &archive, &dst, &"-q"]),
        |_| clean(&dst),
    )?;
    let nofsync = timer.time_with(
        |_| cmd(&ocitool, &[&"import", &archive, &dst, &"-q", &"--no-fsync"]),
        |_| clean(&dst),
    )?;
    let stdin = timer.time_with(
        |_| {
            shell(&format!(
                "'{}' import - '{}' -q < '{}'",
                ocitool.display(),
                dst.display(),
                archive.display()
            ))
        },
        |_| clean(&dst),
    )?;
    let x = ctx.work.join("tar-x");
    let tar_x = timer.time_with(|_| untar(&archive, &x, false), |_| clean(&x))?;
    let tar_x_sync = timer.time_with(|_| untar(&archive, &x, true), |_| clean(&x))?;
    let tar_x_alone = tar_x.clone();
    let mut import_refs = vec![
        ("tar -x (the I/O floor)".to_string(), tar_x),
        ("tar -x && sync (durable floor)".to_string(), tar_x_sync),
    ];
    let mut targets = vec![Target::RatioAtMost {
        reference: "tar -x (the I/O floor)".into(),
        max: 1.5,
    }];
    let skopeo = ctx.peer("skopeo");
    if let Some(sk) = &skopeo {
        let y = ctx.work.join("skopeo-import");
        let (r, t) = time_skopeo(
            ctx,
            sk,
            &["--dest-oci-accept-uncompressed-layers"],
            (
                format!("docker-archive:{}", archive.display()),
                format!("oci:{}:x", y.display()),
            ),
            &y,
            "skopeo copy docker-archive: oci: (uncompressed, its fastest)",
            0.35,
        )?;
        import_refs.push(r);
        targets.push(t);
    }
    let mut out = vec![
        Measurement {
            name: "import docker-save archive".into(),
            ours,
            reference: import_refs,
            targets,
            notes: vec![format!(
                "an uncompressed docker-save archive of {} (the big image, layers uncompressed); durable (fsync before success), as by default",
                fmt_bytes(size)
            )],
        },
        no_fsync_row(
            "import",
            nofsync,
            "tar -x (the I/O floor)",
            tar_x_alone,
            1.5,
        ),
        Measurement {
            name: "import from standard input".into(),
            ours: stdin,
            reference: vec![],
            targets: vec![],
            notes: vec!["the same archive piped in: one pass, memory bounded".into()],
        },
    ];

    // export of the gzip layout
    let exp = ctx.work.join("export.tar");
    let big = ctx.big.clone();
    let ours = ctx.timer.time_with(
        |_| {
            cmd(
                &ocitool,
                &[&"export", &big.dir, &big.reference, &"-o", &exp, &"-q"],
            )
        },
        |_| clean(&exp),
    )?;
    let mut refs = vec![];
    let mut targets = vec![];
    if let Some(sk) = &skopeo {
        let (r, t) = time_skopeo(
            ctx,
            sk,
            &[],
            (
                format!("oci:{}:{}", big.dir.display(), big.reference),
                format!("docker-archive:{}:bench:1", exp.display()),
            ),
            &exp,
            "skopeo copy oci: docker-archive:",
            0.25,
        )?;
        refs.push(r);
        targets.push(t);
    }
    out.push(Measurement {
        name: "export docker archive".into(),
        ours,
        reference: refs,
        targets,
        notes: vec!["the gzip layout; ocitool writes layers as stored and checks each diff_id (decompressing on every core); skopeo decompresses and writes them uncompressed".into()],
    });
    Ok(out)
}

/// A `--no-fsync` run against a floor that does not wait for the disk either.
fn no_fsync_row(op: &str, ours: Timing, floor: &str, t: Timing, max: f64) -> Measurement {
    let tool = floor.split(' ').next().unwrap_or(floor);
    Measurement {
        name: format!("{op}, --no-fsync"),
        ours,
        reference: vec![(floor.to_string(), t)],
        targets: vec![Target::RatioAtMost {
            reference: floor.into(),
            max,
        }],
        notes: vec![format!(
            "like for like: neither {tool} nor this run waits for the disk"
        )],
    }
}

/// copy, pack and unpack of the big layout, against cp -a, tar and skopeo.
fn bench_transfer(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    let mut ms = bench_copy(ctx)?;
    ms.extend(bench_pack_unpack(ctx)?);
    Ok(ms)
}

/// The blob bytes the transfer rows move, for their notes.
fn transfer_what(big: &BigLayout) -> String {
    format!(
        "the big layout ({} of blobs), same file system",
        fmt_bytes(big.blob_bytes())
    )
}

/// copy to a new layout (durable, `--no-fsync`, `--link`) against `cp -a` (with and without
/// `sync`), skopeo, and for `--link` the hashing floor.
fn bench_copy(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    let ocitool = ctx.ocitool.clone();
    let big = ctx.big.clone();
    let skopeo = ctx.peer("skopeo");
    let dst = ctx.work.join("copy-dst");
    let timer = &ctx.timer;
    let copy = timer.time_with(
        |_| cmd(&ocitool, &[&"copy", &big.dir, &dst, &"-q"]),
        |_| clean(&dst),
    )?;
    let link = timer.time_with(
        |_| cmd(&ocitool, &[&"copy", &big.dir, &dst, &"-q", &"--link"]),
        |_| clean(&dst),
    )?;
    let copy_nofsync = timer.time_with(
        |_| cmd(&ocitool, &[&"copy", &big.dir, &dst, &"-q", &"--no-fsync"]),
        |_| clean(&dst),
    )?;
    let cp = timer.time_with(
        |_| cmd(Path::new("cp"), &[&"-a", &big.dir, &dst]),
        |_| clean(&dst),
    )?;
    let cp_sync = timer.time_with(
        |_| {
            shell(&format!(
                "cp -a '{}' '{1}' && sync -f '{1}'",
                big.dir.display(),
                dst.display()
            ))
        },
        |_| clean(&dst),
    )?;
    let openssl = which("openssl");
    let cp_alone = cp.clone();
    let mut copy_refs = vec![
        ("cp -a".to_string(), cp),
        ("cp -a && sync (durable floor)".to_string(), cp_sync),
    ];
    let mut copy_targets = vec![Target::RatioAtMost {
        reference: "cp -a".into(),
        max: 2.5,
    }];
    if let Some(sk) = &skopeo {
        let (r, t) = time_skopeo(
            ctx,
            sk,
            &[],
            (
                format!("oci:{}:{}", big.dir.display(), big.reference),
                format!("oci:{}:x", dst.display()),
            ),
            &dst,
            "skopeo copy oci: oci:",
            0.2,
        )?;
        copy_refs.push(r);
        copy_targets.push(t);
    }
    let mut link_refs = vec![];
    let mut link_targets = vec![];
    if let Some(o) = &openssl {
        let mut c = Command::new(o);
        c.arg("dgst").arg("-sha256").args(big.blob_paths());
        let t = ctx.timer.time_cmd(&mut c)?;
        link_refs.push(("openssl dgst -sha256, every blob (1 thread)".to_string(), t));
        link_targets.push(Target::RatioAtMost {
            reference: "openssl dgst -sha256, every blob (1 thread)".into(),
            max: 1.0,
        });
    }

    let what = transfer_what(&big);
    Ok(vec![
        Measurement {
            name: "copy to a new layout".into(),
            ours: copy,
            reference: copy_refs,
            targets: copy_targets,
            notes: vec![format!("{what}; every blob hashed as copied; durable")],
        },
        no_fsync_row("copy", copy_nofsync, "cp -a", cp_alone, 2.5),
        Measurement {
            name: "copy --link".into(),
            ours: link,
            reference: link_refs,
            targets: link_targets,
            notes: vec!["hard links, every blob still hashed (on every core)".into()],
        },
    ])
}

/// pack and unpack (durable and `--no-fsync`) against `tar -c`/`tar -x` (with and without
/// `sync`) and skopeo.
fn bench_pack_unpack(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    let ocitool = ctx.ocitool.clone();
    let big = ctx.big.clone();
    let skopeo = ctx.peer("skopeo");
    let pack = ctx.work.join("pack.tar");
    let ours_pack = ctx.timer.time_with(
        |_| cmd(&ocitool, &[&"pack", &big.dir, &"-o", &pack, &"-q"]),
        |_| clean(&pack),
    )?;
    let pack_nofsync = ctx.timer.time_with(
        |_| {
            cmd(
                &ocitool,
                &[&"pack", &big.dir, &"-o", &pack, &"-q", &"--no-fsync"],
            )
        },
        |_| clean(&pack),
    )?;
    run_checked(
        &mut cmd(&ocitool, &[&"pack", &big.dir, &"-o", &pack, &"-q"]),
        "ocitool pack",
    )?;
    let tarc = ctx.work.join("tar-c.tar");
    let tar_c = ctx.timer.time_with(
        |_| {
            shell(&format!(
                "tar -cf '{}' -C '{}' .",
                tarc.display(),
                big.dir.display()
            ))
        },
        |_| clean(&tarc),
    )?;
    let tar_c_sync = ctx.timer.time_with(
        |_| {
            shell(&format!(
                "tar -cf '{0}' -C '{1}' . && sync -f '{0}'",
                tarc.display(),
                big.dir.display()
            ))
        },
        |_| clean(&tarc),
    )?;
    let up = ctx.work.join("unpack-dst");
    let ours_unpack = ctx.timer.time_with(
        |_| cmd(&ocitool, &[&"unpack", &pack, &up, &"-q"]),
        |_| clean(&up),
    )?;
    let unpack_nofsync = ctx.timer.time_with(
        |_| cmd(&ocitool, &[&"unpack", &pack, &up, &"-q", &"--no-fsync"]),
        |_| clean(&up),
    )?;
    let x = ctx.work.join("tar-x-pack");
    let tar_x = ctx
        .timer
        .time_with(|_| untar(&pack, &x, false), |_| clean(&x))?;
    let tar_c_alone = tar_c.clone();
    let tar_x_alone = tar_x.clone();
    let mut pack_refs = vec![
        ("tar -c".to_string(), tar_c),
        ("tar -c && sync (durable floor)".to_string(), tar_c_sync),
    ];
    let mut pack_targets = vec![Target::RatioAtMost {
        reference: "tar -c".into(),
        max: 1.5,
    }];
    let tar_x_sync = ctx
        .timer
        .time_with(|_| untar(&pack, &x, true), |_| clean(&x))?;
    let mut unpack_refs = vec![
        ("tar -x".to_string(), tar_x),
        ("tar -x && sync (durable floor)".to_string(), tar_x_sync),
    ];
    let mut unpack_targets = vec![Target::RatioAtMost {
        reference: "tar -x".into(),
        max: 1.5,
    }];
    if let Some(sk) = &skopeo {
        let oa = ctx.work.join("skopeo-pack.tar");
        let (r, t) = time_skopeo(
            ctx,
            sk,
            &[],
            (
                format!("oci:{}:{}", big.dir.display(), big.reference),
                format!("oci-archive:{}:x", oa.display()),
            ),
            &oa,
            "skopeo copy oci: oci-archive:",
            0.2,
        )?;
        pack_refs.push(r);
        pack_targets.push(t);
        let y = ctx.work.join("skopeo-unpack");
        let (r, t) = time_skopeo(
            ctx,
            sk,
            &[],
            (
                format!("oci-archive:{}", pack.display()),
                format!("oci:{}:x", y.display()),
            ),
            &y,
            "skopeo copy oci-archive: oci:",
            0.2,
        )?;
        unpack_refs.push(r);
        unpack_targets.push(t);
    }
    clean(&pack)?;
    let what = transfer_what(&big);
    Ok(vec![
        Measurement {
            name: "pack".into(),
            ours: ours_pack,
            reference: pack_refs,
            targets: pack_targets,
            notes: vec![what],
        },
        no_fsync_row("pack", pack_nofsync, "tar -c", tar_c_alone, 1.5),
        Measurement {
            name: "unpack".into(),
            ours: ours_unpack,
            reference: unpack_refs,
            targets: unpack_targets,
            notes: vec!["every blob verified; durable".into()],
        },
        no_fsync_row("unpack", unpack_nofsync, "tar -x", tar_x_alone, 1.5),
    ])
}

/// convert of the uncompressed layout to zstd and gzip, against zstd -T0, pigz and skopeo.
fn bench_convert(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    let (plain, _) = plain_archive(ctx)?;
    let ocitool = ctx.ocitool.clone();
    let layers: Vec<PathBuf> = {
        let idx: Value = serde_json::from_slice(&std::fs::read(plain.join("index.json"))?)?;
        let d = idx["manifests"][0]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let m: Value = serde_json::from_slice(&std::fs::read(
            plain
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )?)?;
        m["layers"]
            .as_array()
            .map(|ls| {
                ls.iter()
                    .filter_map(|l| l["digest"].as_str())
                    .map(|d| {
                        plain
                            .join("blobs/sha256")
                            .join(d.trim_start_matches("sha256:"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let cat = layers
        .iter()
        .map(|p| format!("'{}'", p.display()))
        .collect::<Vec<_>>()
        .join(" ");
    let undo = |t: &str| {
        let o = ocitool.clone();
        let p = plain.clone();
        let t = t.to_string();
        move |_| -> anyhow::Result<()> {
            run_checked(&mut cmd(&o, &[&"untag", &p, &t, &"-q"]), "ocitool untag")?;
            run_checked(&mut cmd(&o, &[&"gc", &p, &"-q"]), "ocitool gc")
        }
    };
    let timer = &ctx.timer;
    let zstd_ours = timer.time_with(
        |_| {
            cmd(
                &ocitool,
                &[
                    &"convert",
                    &plain,
                    &"bench:plain",
                    &"bench:zstd",
                    &"--compression",
                    &"zstd",
                    &"-q",
                ],
            )
        },
        undo("bench:zstd"),
    )?;
    let gzip_ours = timer.time_with(
        |_| {
            cmd(
                &ocitool,
                &[
                    &"convert",
                    &plain,
                    &"bench:plain",
                    &"bench:gzip",
                    &"--compression",
                    &"gzip",
                    &"-q",
                ],
            )
        },
        undo("bench:gzip"),
    )?;
    let mut zrefs = vec![];
    let mut ztargets = vec![];
    if which("zstd").is_some() {
        let t = timer.time_cmd(&mut shell(&format!(
            "cat {cat} | zstd -T0 -3 -q -c > /dev/null"
        )))?;
        zrefs.push(("zstd -T0 -3 over the layers".to_string(), t));
        ztargets.push(Target::RatioAtMost {
            reference: "zstd -T0 -3 over the layers".into(),
            max: 1.2,
        });
    }
    let mut grefs = vec![];
    let mut gtargets = vec![];
    if which("pigz").is_some() {
        let t = timer.time_cmd(&mut shell(&format!("cat {cat} | pigz -6 -c > /dev/null")))?;
        grefs.push(("pigz -6 over the layers".to_string(), t));
        gtargets.push(Target::RatioAtMost {
            reference: "pigz -6 over the layers".into(),
            max: 1.2,
        });
    }
    if let Some(sk) = ctx.peer("skopeo") {
        let y = ctx.work.join("skopeo-convert");
        let (r, t) = time_skopeo(
            ctx,
            &sk,
            &["--dest-compress-format", "zstd"],
            (
                format!("oci:{}:bench:plain", plain.display()),
                format!("oci:{}:x", y.display()),
            ),
            &y,
            "skopeo copy --dest-compress-format zstd oci: oci:",
            0.5,
        )?;
        zrefs.push(r);
        ztargets.push(t);
    }
    let note = "the uncompressed layout; every layer read once, its diff_id checked, re-encoded into a staged blob; durable".to_string();
    Ok(vec![
        Measurement {
            name: "convert --compression zstd".into(),
            ours: zstd_ours,
            reference: zrefs,
            targets: ztargets,
            notes: vec![note.clone()],
        },
        Measurement {
            name: "convert --compression gzip".into(),
            ours: gzip_ours,
            reference: grefs,
            targets: gtargets,
            notes: vec![note],
        },
    ])
}

/// A server started for a measurement, stopped (by its pid) when dropped.
struct Daemon {
    child: std::process::Child,
    addr: String,
}

impl Daemon {
    /// Peak resident set so far (`VmHWM`), KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// `ocitool serve LAYOUT` on a free port, quiet (`-q` prints no startup lines and no access
/// log, so the address is chosen here).
fn start_serve(ocitool: &Path, layout: &Path) -> anyhow::Result<Daemon> {
    let addr = free_addr()?;
    let child = Command::new(ocitool)
        .arg("serve")
        .arg(layout)
        .args(["--listen", &addr, "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start ocitool serve")?;
    Daemon { child, addr }.listening("ocitool serve")
}

/// A free port on 127.0.0.1, as `ADDR:PORT`.
fn free_addr() -> anyhow::Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("127.0.0.1:{port}"))
}

impl Daemon {
    /// The server once it accepts connections (10 s at most).
    fn listening(self, what: &str) -> anyhow::Result<Daemon> {
        for _ in 0..100 {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return Ok(self);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{what} did not start listening on {}", self.addr)
    }
}

/// `skopeo copy --preserve-digests` from `src` to a plain-HTTP registry's `dst`: how skopeo
/// pushes in the bench and how it fills the Distribution that `serve` is compared with.
fn skopeo_push(skopeo: &Path, src: &str, dst: &str) -> Command {
    let mut c = Command::new(skopeo);
    c.args([
        "copy",
        "-q",
        "--preserve-digests",
        "--dest-tls-verify=false",
        src,
        dst,
    ]);
    c
}

/// Uploads every file of `blobs` (a layout's `blobs/sha256`) to `addr`'s repository
/// `curl/bench` with curl, four at once, largest first: a POST for the upload's location,
/// then one PUT of the whole file with `?digest=`. Fails if any upload fails.
fn curl_push(curl: &Path, addr: &str, blobs: &Path) -> Command {
    let script = r#"
up() {
  loc=$("$CURL" -sf -D - -o /dev/null -X POST "http://$ADDR/v2/curl/bench/blobs/uploads/" \
    | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
  [ -n "$loc" ] || exit 1
  case $loc in http*) ;; *) loc="http://$ADDR$loc" ;; esac
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  "$CURL" -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -T "$1" \
    "$loc${sep}digest=sha256:$(basename "$1")"
}
export -f up
ls -S "$BLOBS"/* | xargs -P 4 -I{} bash -c 'up "$1"' _ {}
"#;
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(script)
        .env("CURL", curl)
        .env("ADDR", addr)
        .env("BLOBS", blobs);
    c
}

/// Distribution (`docker-registry`) on a free 127.0.0.1 port, storing in `data`.
fn start_registry(registry: &Path, dir: &Path, data: &Path) -> anyhow::Result<Daemon> {
    let addr = free_addr()?;
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{level: error, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: {addr}}}\n",
            data.display()
        ),
    )?;
    let child = Command::new(registry)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start docker-registry")?;
    Daemon { child, addr }.listening("docker-registry")
}

/// A client of the serve measurements: the command for a server address.
type Client<'a> = Box<dyn Fn(&str) -> Command + 'a>;

/// Serving the big image: `skopeo copy` from the registry, and N parallel curls each fetching
/// every blob, from `ocitool serve` and from Distribution 2.8.2 (`docker-registry`, fed the
/// same image by `skopeo copy --preserve-digests`), their runs alternated
/// ([`Timer::time_alternating`]). Each measurement gets fresh servers, so the RSS columns are each
/// server's peak (`VmHWM`) over that measurement, not the client's.
fn bench_serve(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    let (Some(skopeo), Some(curl), Some(registry)) = (
        ctx.peer("skopeo"),
        ctx.peer("curl"),
        ctx.peer("docker-registry"),
    ) else {
        return Ok(Vec::new());
    };
    let big = ctx.big.clone();
    let (repo, tag) = big
        .reference
        .split_once(':')
        .context("the bench ref has a tag")?;
    let data = ctx.work.join("registry-data");
    clean(&data)?;
    {
        let r = start_registry(&registry, &ctx.work, &data)?;
        run_checked(
            &mut skopeo_push(
                &skopeo,
                &format!("oci:{}:{}", big.dir.display(), big.reference),
                &format!("docker://{}/{repo}:{tag}", r.addr),
            ),
            "skopeo copy into docker-registry",
        )?;
    }
    let label = "Distribution 2.8.2 (docker-registry)";
    let out = ctx.work.join("serve-pull");
    let mut blobs = vec![big.config.to_string()];
    blobs.extend(big.layers.iter().map(|l| l.digest.to_string()));
    let curls = |addr: &str, n: usize| {
        let urls: String = blobs
            .iter()
            .map(|b| format!(" -o /dev/null http://{addr}/v2/{repo}/blobs/{b}"))
            .collect();
        let mut script = String::from("pids=''\n");
        for _ in 0..n {
            let _ = writeln!(script, "'{}' -sf{urls} & pids=\"$pids $!\"", curl.display());
        }
        script.push_str("for p in $pids; do wait $p || exit 1; done\n");
        shell(&script)
    };
    let cases: Vec<(&str, Client, f64)> = vec![
        (
            "serve: skopeo copy docker:// oci: of the image",
            Box::new(|addr: &str| {
                let mut c = Command::new(&skopeo);
                c.args(["copy", "-q", "--src-tls-verify=false"])
                    .arg(format!("docker://{addr}/{repo}:{tag}"))
                    .arg(format!("oci:{}:x", out.display()));
                c
            }),
            1.0,
        ),
        (
            "serve: 4 parallel curls, every blob",
            Box::new(|addr: &str| curls(addr, 4)),
            1.0,
        ),
        (
            "serve: 16 parallel curls, every blob",
            Box::new(|addr: &str| curls(addr, 16)),
            1.0,
        ),
    ];
    let mut ms = Vec::new();
    for (name, client, max) in cases {
        // Both servers run through the measurement, each serving only its own client's runs,
        // which alternate; so each peak RSS is still that server's own.
        let served = start_serve(&ctx.ocitool, &big.dir)?;
        let distribution = start_registry(&registry, &ctx.work, &data)?;
        let mut t = ctx.timer.time_alternating(
            &mut [&mut || client(&served.addr), &mut || {
                client(&distribution.addr)
            }],
            || clean(&out),
        )?;
        let (mut theirs, mut ours) = (
            t.pop().context("two timings")?,
            t.pop().context("two timings")?,
        );
        ours.max_rss_kib = served.peak_rss_kib();
        theirs.max_rss_kib = distribution.peak_rss_kib();
        drop(served);
        drop(distribution);
        ms.push(Measurement {
            name: name.to_string(),
            ours,
            reference: vec![(label.to_string(), theirs)],
            targets: vec![Target::RatioAtMost {
                reference: label.into(),
                max,
            }],
            notes: vec![
                "RSS columns: the server's peak over the measurement (VmHWM), not the client's"
                    .into(),
            ],
        });
    }
    Ok(ms)
}

/// The table: one row per reference (at least one per measurement).
fn render(ms: &[Measurement]) -> String {
    let head = [
        "operation",
        "ocitool",
        "ocitool RSS",
        "peer / floor",
        "time",
        "peer RSS",
        "ratio",
        "target",
        "result",
    ];
    let mut rows: Vec<[String; 9]> = Vec::new();
    for m in ms {
        let n = m.reference.len().max(1);
        for k in 0..n {
            let r = m.reference.get(k);
            let mut targets = Vec::new();
            for t in &m.targets {
                let on_this_row = match t {
                    Target::Under(_) | Target::PeakRssUnder(_) => k == 0,
                    Target::RatioAtMost { reference, .. }
                    | Target::Indicative { reference, .. } => {
                        r.is_some_and(|(l, _)| l == reference)
                            || (k == 0 && m.reference(reference).is_none())
                    }
                };
                if on_this_row {
                    targets.push(m.judge(t));
                }
            }
            let rss = if k == 0 {
                let s = fmt_kib(m.ours.max_rss_kib);
                if m.rss_ok() == Some(false) {
                    format!("{s} (MISS)")
                } else {
                    s
                }
            } else {
                String::new()
            };
            rows.push([
                if k == 0 {
                    m.name.clone()
                } else {
                    String::new()
                },
                if k == 0 {
                    fmt_dur(m.ours.best)
                } else {
                    String::new()
                },
                rss,
                r.map_or("—".into(), |(l, _)| l.clone()),
                r.map_or(String::new(), |(_, t)| fmt_dur(t.best)),
                r.map_or(String::new(), |(_, t)| fmt_kib(t.max_rss_kib)),
                r.and_then(|(l, _)| m.ratio(l))
                    .map_or(String::new(), fmt_ratio),
                targets
                    .iter()
                    .map(|(l, _)| l.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                targets
                    .iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ]);
        }
    }
    let mut w = [0usize; 9];
    for (i, h) in head.iter().enumerate() {
        w[i] = h.chars().count();
    }
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            // Times and ratios right-aligned, text left-aligned.
            if matches!(i, 1 | 2 | 4 | 5 | 6) {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str("  ");
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut out, &head);
    let total: usize = w.iter().sum::<usize>() + 2 * (w.len() - 1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for r in &rows {
        line(&mut out, &r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// push to an empty registry, push again with everything present, and pull into an empty
/// layout, against `skopeo copy --preserve-digests` both ways, with Debian's docker-registry
/// (Distribution 2.8.2) on 127.0.0.1 (plain HTTP). The registry's storage is wiped (and the
/// registry restarted) after each run that must start empty.
fn bench_registry(ctx: &mut Ctx) -> anyhow::Result<Vec<Measurement>> {
    use ocitool_testkit::registry::{Mode, TestRegistry};
    let Some(mut reg) = TestRegistry::start(Mode::Plain) else {
        ctx.notes
            .push("docker-registry is not installed: push and pull are not timed".into());
        return Ok(Vec::new());
    };
    let ocitool = ctx.ocitool.clone();
    let big = ctx.big.clone();
    let addr = reg.addr.clone();
    let skopeo = ctx.peer("skopeo");
    let to = format!("{addr}/bench");
    let image = format!("{to}/library/{}", big.reference);
    let wipe = |reg: &mut TestRegistry| -> anyhow::Result<()> {
        reg.stop();
        clean(&reg.storage())?;
        std::fs::create_dir_all(reg.storage())?;
        reg.restart();
        Ok(())
    };
    let reg_cell = std::cell::RefCell::new(&mut reg);
    let curl = ctx.peer("curl");
    let sk_dst = format!("docker://{addr}/skopeo/{}", big.reference);
    let sk_src = format!("oci:{}:{}", big.dir.display(), big.reference);
    const CURL_PUSH: &str = "curl: POST + PUT of every blob, 4 at once";
    const SKOPEO_PUSH: &str = "skopeo copy --preserve-digests oci: docker://";
    // Push to an empty registry: ocitool, the protocol's floor (curl: every blob by POST + one
    // PUT with the body, four at once, largest first; what the registry must do whoever the
    // client is) and skopeo, in turn, the registry wiped after each run.
    let blobs = big.dir.join("blobs/sha256");
    let push_cmd = || cmd(&ocitool, &[&"push", &big.dir, &"--to", &to, &"-q"]);
    let mut make_ours = push_cmd;
    let mut make_curl = || {
        curl_push(
            curl.as_deref().expect("timed when installed"),
            &addr,
            &blobs,
        )
    };
    let mut make_skopeo = || {
        skopeo_push(
            skopeo.as_deref().expect("timed when installed"),
            &sk_src,
            &sk_dst,
        )
    };
    let mut makers: Vec<&mut dyn FnMut() -> Command> = vec![&mut make_ours];
    let mut labels = Vec::new();
    if curl.is_some() {
        makers.push(&mut make_curl);
        labels.push(CURL_PUSH);
    }
    if skopeo.is_some() {
        makers.push(&mut make_skopeo);
        labels.push(SKOPEO_PUSH);
    }
    let mut timings = ctx
        .timer
        .time_alternating(&mut makers, || wipe(&mut reg_cell.borrow_mut()))?
        .into_iter();
    let push = timings.next().context("ocitool's push timing")?;
    let push_refs: Vec<(String, Timing)> =
        labels.iter().map(|l| l.to_string()).zip(timings).collect();
    let mut push_targets = Vec::new();
    if skopeo.is_some() {
        push_targets.push(Target::RatioAtMost {
            reference: SKOPEO_PUSH.into(),
            max: 0.5,
        });
    }
    run_checked(&mut push_cmd(), "ocitool push")?;
    let repush = ctx.timer.time_cmd(&mut push_cmd())?;
    let mut repush_refs = Vec::new();
    if let Some(sk) = &skopeo {
        run_checked(
            &mut skopeo_push(sk, &sk_src, &sk_dst),
            "skopeo copy (to fill the registry)",
        )?;
        let t = ctx.timer.time_cmd(&mut skopeo_push(sk, &sk_src, &sk_dst))?;
        repush_refs.push(("skopeo copy, everything present".to_string(), t));
    }
    // Pull into an empty directory: ocitool and skopeo in turn (each from what it pushed).
    const SKOPEO_PULL: &str = "skopeo copy --preserve-digests docker:// oci:";
    let dst = ctx.work.join("pull-dst");
    let out = ctx.work.join("skopeo-pull");
    let mut make_ours = || cmd(&ocitool, &[&"pull", &dst, &image, &"-q"]);
    let mut make_skopeo = || {
        let mut c = Command::new(skopeo.as_deref().expect("timed when installed"));
        c.args(["copy", "-q", "--preserve-digests", "--src-tls-verify=false"])
            .arg(&sk_dst)
            .arg(format!("oci:{}:x", out.display()));
        c
    };
    let mut makers: Vec<&mut dyn FnMut() -> Command> = vec![&mut make_ours];
    if skopeo.is_some() {
        makers.push(&mut make_skopeo);
    }
    let mut timings = ctx
        .timer
        .time_alternating(&mut makers, || {
            clean(&dst)?;
            clean(&out)
        })?
        .into_iter();
    let pull = timings.next().context("ocitool's pull timing")?;
    let mut pull_refs = Vec::new();
    let mut pull_targets = Vec::new();
    if let Some(t) = timings.next() {
        pull_refs.push((SKOPEO_PULL.to_string(), t));
        pull_targets.push(Target::RatioAtMost {
            reference: SKOPEO_PULL.into(),
            max: 0.5,
        });
    }
    drop(reg);
    Ok(vec![
        Measurement {
            name: "push to an empty registry".into(),
            ours: push,
            reference: push_refs,
            targets: push_targets,
            notes: vec![
                "docker-registry 2.8.2 on 127.0.0.1, plain HTTP, storage wiped before each run"
                    .into(),
            ],
        },
        Measurement {
            name: "push again, everything present".into(),
            ours: repush,
            reference: repush_refs,
            targets: vec![Target::Under(Duration::from_millis(100))],
            notes: vec![],
        },
        Measurement {
            name: "pull into an empty layout".into(),
            ours: pull,
            reference: pull_refs,
            targets: pull_targets,
            notes: vec![],
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(runs: &[f64], paired: bool) -> Timing {
        let runs: Vec<Duration> = runs.iter().map(|s| Duration::from_secs_f64(*s)).collect();
        Timing {
            best: runs.iter().copied().min().unwrap_or_default(),
            runs,
            max_rss_kib: None,
            cpu: None,
            paired,
        }
    }

    fn measurement(ours: Timing, theirs: Timing) -> Measurement {
        Measurement {
            name: "m".into(),
            ours,
            reference: vec![("peer".into(), theirs)],
            targets: vec![Target::RatioAtMost {
                reference: "peer".into(),
                max: 1.0,
            }],
            notes: Vec::new(),
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn alternated_runs_are_judged_round_by_round() {
        // The machine slowed down over the rounds: each round ours is 10% faster, but our
        // best (a slow-minute run) is worse than the peer's best (a fast-minute run).
        let m = measurement(
            timing(&[5.4, 4.5, 3.6], true),
            timing(&[6.0, 5.0, 3.0], true),
        );
        let rounds = m.round_ratios("peer").expect("paired");
        assert_eq!(rounds.len(), 3);
        assert!((m.best_ratio("peer").unwrap() - 1.2).abs() < 1e-9);
        assert!((m.ratio("peer").unwrap() - 0.9).abs() < 1e-9);
        assert_eq!(m.judge(&m.targets[0]).1, Verdict::Pass);
        assert_eq!(m.ratio_notes().len(), 1);
    }

    #[test]
    fn runs_timed_apart_are_judged_best_against_best() {
        let m = measurement(
            timing(&[5.4, 4.5, 3.6], false),
            timing(&[6.0, 5.0, 3.0], false),
        );
        assert!(m.round_ratios("peer").is_none());
        assert!((m.ratio("peer").unwrap() - 1.2).abs() < 1e-9);
        assert_eq!(m.judge(&m.targets[0]).1, Verdict::Miss);
        assert!(m.ratio_notes().is_empty());
    }
}
