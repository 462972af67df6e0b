//! The `ocitool` command: clap, terminals, exit codes, and the glue between the libraries.
//! **Only this crate knows clap, anyhow, indicatif or terminals.**

mod cli;
mod cmd;
mod exit;
mod outfile;
mod output;
mod signals;
mod usage;

use std::ffi::OsString;
use std::io::Write;

use clap::FromArgMatches;

use crate::cli::{Cli, Command, Global};
use crate::output::{BrokenPipe, Diag, Out, StdoutFailed, term_text};

/// What every command gets.
pub(crate) struct Ctx {
    pub global: Global,
    pub out: Out,
    pub diag: Diag,
    /// The command's change is committed: from here on, a failure to print its report is a
    /// warning, not a failure (the change happened; exit code 0 says so).
    pub committed: bool,
}

impl Ctx {
    /// Marks the command's change as done (see [`Ctx::committed`]).
    pub fn committed(&mut self) {
        self.committed = true;
    }

    pub fn layout_options(&self) -> ocitool_layout::Options {
        let mut o = ocitool_layout::Options::default();
        if self.global.no_wait {
            o.wait = ocitool_layout::WaitMode::NoWait;
        }
        if let Some(n) = self.global.max_json_size {
            o.json_limit = n;
        }
        o.durable = !self.global.no_fsync;
        o
    }

    /// A line about one thing the command changed (a ref set, a blob removed, a layer
    /// converted): standard output, silenced by `--quiet`. What a command lists or shows goes
    /// to `self.out` and is printed even then (README, "Output").
    pub fn item(&mut self, s: impl AsRef<str>) -> anyhow::Result<()> {
        if self.global.quiet {
            return Ok(());
        }
        self.out.line(s)
    }

    /// A summary line (counts and totals) or other commentary: standard error, after what
    /// standard output already holds, so a terminal shows results and summaries in order;
    /// silenced by `--quiet`.
    pub fn info(&mut self, s: impl AsRef<str>) {
        let _ = self.out.flush();
        self.diag.info(s);
    }

    pub fn note(&mut self, s: impl AsRef<str>) {
        let _ = self.out.flush();
        self.diag.note(s);
    }

    pub fn warn(&mut self, s: impl AsRef<str>) {
        let _ = self.out.flush();
        self.diag.warn(s);
    }

    pub fn progress(&self) -> output::TermProgress {
        output::TermProgress::new(!self.global.quiet && !self.global.json)
    }
}

/// What a panic says and where it happened, escaped for a terminal, for the `internal error`
/// line of every panic hook.
pub(crate) fn panic_text(info: &std::panic::PanicHookInfo<'_>) -> String {
    let msg = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_default();
    let loc = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    format!("{}{loc}", term_text(&msg))
}

/// Runs ocitool with these arguments and returns the exit code.
pub fn main_impl(args: impl IntoIterator<Item = OsString>) -> i32 {
    // First: a signal from here on removes what this process registered.
    signals::install();
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error (a bug in ocitool): {}",
            panic_text(info)
        );
        signals::remove_partials_now();
        std::process::exit(exit::INTERNAL);
    }));
    let cli = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    if let Some(n) = cli.global.jobs {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }
    let mut ctx = Ctx {
        diag: Diag {
            quiet: cli.global.quiet,
        },
        global: cli.global,
        out: Out::new(),
        committed: false,
    };
    let result = run(&mut ctx, cli.command).and_then(|code| {
        ctx.out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<BrokenPipe>().is_some() => exit::OK,
        Err(e) if ctx.committed && e.chain().any(|c| c.is::<StdoutFailed>()) => {
            ctx.diag.warn(format!(
                "the change is made, but its report could not be printed: {}",
                one_line(&e)
            ));
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", term_text(&one_line(&e)));
            exit_code(&e)
        }
    }
}

/// The version `--version` prints: the crate's, and the git commit it was built from
/// ("unknown" when built from sources without git).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("OCITOOL_COMMIT"), ")");

/// The command line, checked beyond what clap checks (values such as platforms and levels,
/// arguments in the wrong order); a usage error carries tips for docker users.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
    let args: Vec<OsString> = args.into_iter().collect();
    let mut cmd = cli::command().version(VERSION);
    let cli = cmd
        .try_get_matches_from_mut(&args)
        .and_then(|m| Cli::from_arg_matches(&m))
        .map_err(|e| usage::with_tips(e.format(&mut cmd), &args))?;
    usage::check(&cli, &cmd)?;
    Ok(cli)
}

fn run(ctx: &mut Ctx, command: Command) -> anyhow::Result<i32> {
    use ocitool_archive::import::{ImportOptions, Mode};
    match command {
        Command::Init(a) => cmd::init::run(ctx, &a.layout),
        Command::Ls(a) => cmd::ls::run(ctx, &a),
        Command::Inspect(a) => cmd::inspect::run(ctx, &a),
        Command::Tag(a) => cmd::tag::run(ctx, &a),
        Command::Untag(a) => cmd::untag::run(ctx, &a),
        Command::Protect(a) => cmd::lifecycle::protect(ctx, &a),
        Command::Prune(a) => cmd::lifecycle::prune(ctx, &a),
        Command::Verify(a) => cmd::verify::run(ctx, &a.layout, &a.refs),
        Command::Blob(b) => cmd::blob::run(ctx, b),
        Command::Export(a) => cmd::export::run(ctx, &a),
        Command::Import(a) => {
            let options = ImportOptions {
                tags: a.tags,
                limits: cmd::import::limits(ctx, &a.limits),
                mode: Mode::Import,
                force: a.force,
                compression: cmd::import::convert_to(a.compression, a.level),
                repair: a.repair,
                size: None, // known once the archive is open
            };
            cmd::import::run(ctx, &a.archive, &a.layout, options)
        }
        Command::Unpack(a) => {
            let options = ImportOptions {
                limits: cmd::import::limits(ctx, &a.limits),
                mode: Mode::Unpack,
                force: a.force,
                repair: a.repair,
                ..Default::default()
            };
            cmd::import::run(ctx, &a.archive, &a.layout, options)
        }
        Command::Pack(a) => cmd::pack::run(ctx, &a),
        Command::Inventory(a) => cmd::pack::inventory(ctx, &a.layout, a.output.as_deref()),
        Command::Copy(a) => cmd::copy::run(ctx, a),
        Command::Convert(a) => cmd::convert::run(ctx, &a),
        Command::Gc(a) => cmd::gc::run(ctx, &a.layout, a.dry_run, a.force),
        Command::Pull(a) => cmd::pull::run(ctx, &a),
        Command::Push(a) => cmd::push::run(ctx, &a),
        Command::Login(a) => cmd::login::login(ctx, &a),
        Command::Logout(a) => cmd::login::logout(ctx, &a),
        Command::LsRemote(a) => cmd::ls_remote::run(ctx, &a),
        Command::Serve(a) => {
            signals::hand_over();
            cmd::serve::run(ctx, &a)
        }
        Command::Completions(a) => cmd::docs::completions(ctx, &a),
        Command::Man(a) => cmd::docs::man(ctx, &a),
    }
}

/// Ends the process with `code` (what `main_impl` returned), unless a SIGINT or SIGTERM is
/// being handled, which then ends it.
pub fn exit(code: i32) -> ! {
    signals::exit(code)
}

/// The error chain on one line: `context: cause: cause`, without repeating a cause that the
/// message above it already includes.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if parts.last().is_some_and(|p| p.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ").replace('\n', " ")
}

fn exit_code(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(le) = cause.downcast_ref::<ocitool_layout::Error>()
            && le.is_locked()
        {
            return exit::LOCKED;
        }
    }
    exit::FAILED
}

/// `build.rs`'s reading of the commit, checked here where tests can run it.
#[cfg(test)]
#[path = "../build/commit.rs"]
mod build_commit;

#[cfg(test)]
mod version_tests {
    use std::path::Path;
    use std::process::Command;

    use super::build_commit::commit;

    fn git(dir: &Path, args: &[&str]) -> Option<String> {
        let o = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    #[test]
    fn sources_outside_git_have_an_unknown_commit() {
        // A source tarball, unpacked where no git repository is.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Cargo.toml"), "[package]\n").unwrap();
        assert_eq!(commit(d.path()), "unknown");
        if git(d.path(), &["--version"]).is_none() {
            eprintln!("SKIPPED: git is not installed; the checks inside a repository are not run");
            return;
        }
        // Unpacked inside some other repository: its commit is not these sources'.
        git(d.path(), &["init", "-q"]).unwrap();
        std::fs::write(d.path().join("other"), "x").unwrap();
        git(d.path(), &["add", "other"]).unwrap();
        git(d.path(), &["commit", "-qm", "other"]).unwrap();
        assert_eq!(commit(d.path()), "unknown");
        // A checkout of the sources: the commit they are at.
        git(d.path(), &["add", "Cargo.toml"]).unwrap();
        git(d.path(), &["commit", "-qm", "sources"]).unwrap();
        let head = git(d.path(), &["rev-parse", "--short", "HEAD"]).unwrap();
        assert_eq!(commit(d.path()), head);
    }
}
