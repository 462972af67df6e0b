//! How the command line speaks and teaches: every command's help (arguments described,
//! examples, global flags apart), hints for arguments in each other's place and for docker's
//! verbs, `-q` on every command, usage errors exiting 2, completions, manual pages and
//! `--version`.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// The names in the `Commands:` section of a help text, without `help`.
fn commands_in(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // Continuation lines of a long description are indented further.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| *w != "help")
        .map(str::to_string)
        .collect()
}

/// Every command as its words: `["tag"]`, `["blob", "put"]`.
pub fn every_command() -> Vec<Vec<String>> {
    let top = commands_in(&ok(["--help"]));
    assert!(top.len() >= 25, "{top:?}");
    let mut all = Vec::new();
    for c in top {
        let sub = commands_in(&ok([c.as_str(), "--help"]));
        all.push(vec![c.clone()]);
        for s in sub {
            all.push(vec![c.clone(), s]);
        }
    }
    all
}

/// The lines of one section of a help text (`Arguments:`, `Global options:`).
/// Ends at the next heading (an unindented line), so it holds the blank lines clap puts
/// between entries when it writes each description under its name.
fn section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

#[test]
fn every_command_help_describes_its_arguments_and_ends_with_examples() {
    let all = every_command();
    assert!(all.iter().any(|c| c == &["blob", "put"]), "{all:?}");
    for words in all {
        let name = words.join(" ");
        let help = ok(words.iter().map(String::as_str).chain(["--help"]));
        // Each positional argument has a description: on its line, or (when clap puts every
        // description under its name, as it does once one is long) on the next, deeper.
        let args = section(&help, "Arguments:");
        for (i, line) in args.iter().enumerate() {
            let t = line.trim_start();
            if t.starts_with('<') || t.starts_with('[') {
                let after = t.split_once(['>', ']']).map_or("", |(_, r)| r);
                let after = after.trim_start_matches(['.', ']']).trim();
                let indent = |l: &str| l.len() - l.trim_start().len();
                let below = args
                    .get(i + 1)
                    .is_some_and(|next| indent(next) > indent(line) && !next.trim().is_empty());
                assert!(
                    !after.is_empty() || below,
                    "`ocitool {name}`: {t:?} has no description:\n{help}"
                );
            }
        }
        // Global flags under their own heading, not among the command's own.
        let global = section(&help, "Global options:").join("\n");
        for flag in ["--json", "--quiet", "--no-wait", "--jobs"] {
            assert!(
                global.contains(flag),
                "`ocitool {name}`: {flag} not in Global options:\n{help}"
            );
        }
        let own = section(&help, "Options:").join("\n");
        assert!(
            !own.contains("--json"),
            "`ocitool {name}`: --json among its own options:\n{help}"
        );
        // Two or three examples, each a `#` line and an ocitool command.
        let examples = section(&help, "Examples:");
        let commands: Vec<&&str> = examples
            .iter()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        assert!(
            (2..=3).contains(&commands.len()) && commands.iter().all(|l| l.contains("ocitool ")),
            "`ocitool {name}` wants 2 or 3 examples:\n{help}"
        );
        assert!(
            commands
                .iter()
                .any(|l| l.contains(&format!("ocitool {name} "))),
            "`ocitool {name}`: no example runs it:\n{help}"
        );
    }
}

/// A layout and a file, in a fresh directory.
fn layout_and_tar() -> (Fx, std::path::PathBuf) {
    let fx = fixture("minimal");
    let tar = fx.dir.path().join("export.tar");
    ok([
        Path::new("export"),
        &fx.path,
        Path::new("app:1.0"),
        Path::new("-o"),
        &tar,
    ]
    .map(|p| p.as_os_str()));
    (fx, tar)
}

/// Exit 2, an `error:` line, each needle on standard error, nothing on standard output.
#[track_caller]
fn usage_error<I, S>(needles: &[&str], args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    usage_error_of(run(args), needles)
}

/// As [`usage_error`], for a command already run.
#[track_caller]
fn usage_error_of(o: std::process::Output, needles: &[&str]) -> String {
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout: {}\nstderr: {err}",
        stdout(&o)
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    err
}

#[test]
fn arguments_in_each_others_place_get_a_hint() {
    let (fx, tar) = layout_and_tar();
    let (l, t) = (fx.path.display().to_string(), tar.display().to_string());
    let before = snapshot(&fx.path);
    // import LAYOUT ARCHIVE, unpack LAYOUT ARCHIVE: the order to type.
    for verb in ["import", "unpack"] {
        usage_error(
            &[
                "the archive comes first",
                &format!("ocitool {verb} {t} {l}"),
            ],
            [verb, &l, &t],
        );
    }
    // copy into or from a file.
    usage_error(
        &[
            "is a file",
            &format!("ocitool pack {l} -o {t}"),
            "ocitool export",
        ],
        ["copy", &l, &t],
    );
    usage_error(
        &["is a file", &format!("ocitool import {t} ")],
        ["copy", &t, &l],
    );
    // copy to an archive that does not exist yet: no directory named like an archive.
    let new_tar = fx.dir.path().join("new.tar.gz");
    let n = new_tar.display().to_string();
    usage_error(
        &["names an archive", &format!("ocitool pack {l} -o {n}")],
        ["copy", &l, &n],
    );
    assert!(!new_tar.exists());
    // A layout where an archive goes.
    let other = fx.dir.path().join("other");
    usage_error(
        &["is a layout", "ocitool copy"],
        ["import", &l, other.to_str().unwrap()],
    );
    assert!(!other.exists());
    // An archive where a layout goes.
    usage_error(
        &["is a file", "ocitool import"],
        ["tag", &t, "app:1.0", "app:2"],
    );
    usage_error(&["is a file"], ["gc", &t]);
    usage_error(&["layout comes first"], ["blob", "put", &t, &l]);
    assert_eq!(snapshot(&fx.path), before);
}

#[test]
fn docker_verbs_point_at_the_command_that_does_the_job() {
    for (args, want) in [
        (
            vec!["load", "-i", "nginx.tar"],
            "ocitool import ARCHIVE LAYOUT",
        ),
        (
            vec!["save", "-o", "nginx.tar", "nginx"],
            "ocitool export LAYOUT REF... -o ARCHIVE",
        ),
        (vec!["rmi", "nginx"], "ocitool untag LAYOUT REF"),
        (vec!["rm", "nginx"], "ocitool untag LAYOUT REF"),
        (vec!["images"], "ocitool ls LAYOUT"),
    ] {
        let err = usage_error(&["tip:", want], &args);
        assert!(err.contains(&format!("'{}'", args[0])), "{err}");
    }
}

#[test]
fn pull_without_a_layout_says_the_layout_comes_first() {
    let d = empty_dir();
    // `docker pull nginx`, typed as it is.
    usage_error(
        &["<IMAGE>", "tip:", "ocitool pull ./layout nginx"],
        ["pull", "nginx"],
    );
    // The image first: no directory named after it is created, nothing is fetched.
    let l = d.path().join("layout");
    std::fs::create_dir(&l).unwrap();
    // As docker users type it, in the directory where the layout is.
    let pull = |args: &[&str]| {
        Command::new(bin())
            .arg("pull")
            .args(args)
            .current_dir(d.path())
            .output()
            .unwrap()
    };
    usage_error_of(
        pull(&["nginx:1.25", "layout"]),
        &["looks like an image", "ocitool pull layout nginx:1.25"],
    );
    usage_error_of(
        pull(&["nginx:1.25", "alpine"]),
        &[
            "looks like an image",
            "ocitool pull ./layout nginx:1.25 alpine",
        ],
    );
    assert!(!d.path().join("nginx:1.25").exists());
    usage_error(&["push sends refs from a layout"], ["push", "nginx:1.25"]);
}

#[test]
fn bad_values_are_usage_errors() {
    let fx = fixture("multi-arch");
    let l = fx.path.to_str().unwrap();
    let out = fx.dir.path().join("out.tar");
    let o = out.to_str().unwrap();
    let p = ["--platform", "linux"];
    for args in [
        vec!["inspect", l, "multi:1.0"],
        vec!["export", l, "multi:1.0", "-o", o],
        vec!["pack", l, "-o", o],
        vec!["copy", l, fx.dir.path().join("c").to_str().unwrap()],
        vec!["convert", l, "multi:1.0", "multi:z"],
        vec!["pull", l, "127.0.0.1:9/x:1"],
        vec!["push", l, "multi:1.0"],
    ] {
        usage_error(&["'linux'", "--platform", "os/arch"], args.iter().chain(&p));
    }
    let tar = testdata("archives/docker-save.tar");
    let t = tar.to_str().unwrap();
    let dest = fx.dir.path().join("imported");
    let dest = dest.to_str().unwrap();
    usage_error(
        &["'99'", "--level", "0 to 9"],
        ["import", t, dest, "--compression", "gzip", "--level", "99"],
    );
    usage_error(
        &["'99'", "--level", "1 to 22"],
        ["import", t, dest, "--compression", "zstd", "--level", "99"],
    );
    usage_error(
        &["'99'", "--level"],
        [
            "convert",
            l,
            "multi:1.0",
            "m:z",
            "--compression",
            "gzip",
            "--level",
            "99",
        ],
    );
    assert!(!Path::new(dest).exists());
    assert!(!out.exists());
    // clap's own: an unknown flag, a missing argument, a bad value.
    usage_error(&["--frobnicate"], ["ls", l, "--frobnicate"]);
    usage_error(&["<SOURCE>"], ["tag", l]);
    usage_error(
        &["--format"],
        ["export", l, "multi:1.0", "-o", o, "--format", "zip"],
    );
}

/// Runs `ocitool -q ARGS` and expects success with nothing on standard error; returns stdout.
#[track_caller]
fn quiet(args: &[&str]) -> String {
    let mut a = vec!["-q"];
    a.extend_from_slice(args);
    let o = run(&a);
    assert!(
        o.status.success(),
        "{a:?}: exit {:?}\n{}",
        o.status.code(),
        stderr(&o)
    );
    assert!(
        o.stderr.is_empty(),
        "{a:?} printed on standard error: {}",
        stderr(&o)
    );
    stdout(&o)
}

/// Without -q the same command says something (so the quiet run proves -q silenced it).
#[track_caller]
fn speaks(args: &[&str]) {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    assert!(
        !o.stdout.is_empty() || !o.stderr.is_empty(),
        "{args:?} says nothing even without -q"
    );
}

#[test]
fn quiet_silences_everything_but_results_and_errors() {
    let d = empty_dir();
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let (a, b, c) = (p("a"), p("b"), p("c"));
    let tar = testdata("archives/docker-save.tar");
    let t = tar.to_str().unwrap();
    // Commands that change something: silent with -q, talkative without.
    let changers: Vec<Vec<String>> = vec![
        vec!["init".into(), p("x")],
        vec!["import".into(), t.into(), a.clone()],
        vec!["tag".into(), a.clone(), "app:1.0".into(), "app:1.1".into()],
        vec![
            "tag".into(),
            a.clone(),
            "app:1.0".into(),
            "app:1.2.0".into(),
            "--semver".into(),
        ],
        vec!["protect".into(), a.clone(), "--sha".into()],
        vec!["untag".into(), a.clone(), "app:1.1".into()],
        vec![
            "prune".into(),
            a.clone(),
            "--keep".into(),
            "1".into(),
            "--dry-run".into(),
        ],
        vec![
            "convert".into(),
            a.clone(),
            "app:1.0".into(),
            "app:z".into(),
            "--compression".into(),
            "zstd".into(),
        ],
        vec!["copy".into(), a.clone(), b.clone()],
        vec!["pack".into(), a.clone(), "-o".into(), p("a.tar")],
        vec!["unpack".into(), p("a.tar"), c.clone()],
        vec![
            "export".into(),
            a.clone(),
            "app:1.0".into(),
            "-o".into(),
            p("e.tar"),
        ],
        vec!["inventory".into(), a.clone(), "-o".into(), p("inv.json")],
        vec!["gc".into(), a.clone()],
        vec!["man".into(), "--dir".into(), p("man")],
    ];
    for args in &changers {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = quiet(&args);
        assert!(out.is_empty(), "{args:?} printed with -q: {out}");
    }
    // The same kinds again without -q, on the copies, to show they do speak.
    speaks(&["tag", &b, "app:1.0", "app:1.3"]);
    speaks(&["untag", &b, "app:1.3"]);
    speaks(&["gc", &b]);
    speaks(&["init", &p("y")]);
    speaks(&["copy", &a, &p("d")]);
    speaks(&["prune", &b, "--keep", "1", "--dry-run"]);
    // Commands that list or show something still print it.
    let digest = ok(["-q", "blob", "put", &a, t]).trim().to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    for args in [
        vec!["ls", a.as_str()],
        vec!["ls", a.as_str(), "--tree"],
        vec!["inspect", a.as_str(), "app:1.0"],
        vec!["verify", a.as_str()],
        vec!["inventory", a.as_str()],
        vec!["protect", a.as_str(), "--list"],
        vec!["blob", "get", a.as_str(), digest.as_str()],
        vec!["completions", "bash"],
        vec!["man", "tag"],
        vec!["tag", a.as_str(), "app:1.0", "app:q", "--json"],
    ] {
        let out = quiet(&args);
        if args[0] == "verify" {
            // Intact: nothing to report, and no summary.
            assert!(out.is_empty(), "{out}");
        } else {
            assert!(!out.is_empty(), "{args:?} printed nothing with -q");
        }
    }
    // A warning (a name docker will refuse, tagged anyway) is silenced too: -q keeps errors only.
    let o = run(["tag", &b, "app:1.0", "Upper/Case:1", "--allow-any"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning:"), "{}", stderr(&o));
    let out = quiet(&["tag", &b, "app:1.0", "Upper/Case:2", "--allow-any"]);
    assert!(out.is_empty(), "{out}");
    // Errors still speak, once.
    let o = run(["-q", "tag", &a, "no-such:ref", "x:1"]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // verify's problems are its result: printed with -q, exit 1, no summary.
    let fx = fixture("corrupt/minimal");
    let o = run([Path::new("-q"), Path::new("verify"), &fx.path].map(Path::as_os_str));
    assert_eq!(o.status.code(), Some(1));
    assert!(!o.stdout.is_empty());
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

#[test]
fn quiet_registry_commands_print_nothing() {
    let fx = fixture("minimal");
    let s = serve([&fx.path]);
    let d = empty_dir();
    let l = d.path().join("pulled");
    let l = l.to_str().unwrap();
    let image = format!("{}/app:1.0", s.addr);
    let out = quiet(&["pull", l, &image]);
    assert!(out.is_empty(), "{out}");
    assert!(!refs(Path::new(l)).is_empty());
    let tags = quiet(&["ls-remote", &format!("{}/app", s.addr)]);
    assert_eq!(tags.trim(), "1.0");
    // serve -q: no startup lines, no access log.
    let child = Command::new(bin())
        .args(["-q", "serve", "--listen", "127.0.0.1:0"])
        .arg(&fx.path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn completions_are_scripts_the_shells_accept() {
    let d = empty_dir();
    for (shell, check) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let script = ok(["completions", shell]);
        assert!(
            script.contains("ocitool") && script.contains("import"),
            "{shell}"
        );
        let f = d.path().join(shell);
        std::fs::write(&f, &script).unwrap();
        if shell == "bash" || peer(check) {
            // `bash -n`, `zsh -n`, `fish -n`: the script parses.
            sh(Command::new(check).arg("-n").arg(&f));
        }
    }
    // fish completes the commands and a command's flags.
    if peer("fish") {
        let f = d.path().join("fish");
        let words = sh(Command::new("fish").arg("-c").arg(format!(
            "source {}; complete -C 'ocitool im'; complete -C 'ocitool import --com'",
            f.display()
        )));
        assert!(words.lines().any(|l| l.starts_with("import\t")), "{words}");
        assert!(
            words.lines().any(|l| l.starts_with("--compression")),
            "{words}"
        );
    }
    // bash completes the commands and a command's flags.
    let f = d.path().join("bash");
    let words = sh(Command::new("bash").arg("-c").arg(format!(
        ". {}; COMP_WORDS=(ocitool im); COMP_CWORD=1; _ocitool ocitool im ocitool; echo ${{COMPREPLY[@]}}; COMP_WORDS=(ocitool import --com); COMP_CWORD=2; _ocitool ocitool --com import; echo ${{COMPREPLY[@]}}",
        f.display()
    )));
    assert!(
        words
            .lines()
            .next()
            .unwrap()
            .split(' ')
            .any(|w| w == "import"),
        "{words}"
    );
    assert!(words.contains("--compression"), "{words}");
    usage_error(&["'tcsh'"], ["completions", "tcsh"]);
}

#[test]
fn every_command_has_a_manual_page() {
    let d = empty_dir();
    let dir = d.path().join("man1");
    ok([Path::new("man"), Path::new("--dir"), &dir].map(Path::as_os_str));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want: Vec<String> = every_command()
        .iter()
        .map(|w| format!("ocitool-{}.1", w.join("-")))
        .chain(["ocitool.1".to_string()])
        .collect();
    want.sort();
    assert_eq!(files, want);
    for words in every_command() {
        let page = ok(["man"].into_iter().chain(words.iter().map(String::as_str)));
        let name = format!("ocitool-{}", words.join("-"));
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{name}");
        assert!(
            page.contains(&format!(".TH {name} 1")),
            "{name}: {}",
            &page[..200.min(page.len())]
        );
        assert_eq!(
            page,
            std::fs::read_to_string(dir.join(format!("{name}.1"))).unwrap()
        );
        // The examples and the version are in it.
        assert!(page.contains("Examples:"), "{name}");
        assert!(page.contains(&version_line()[8..]), "{name}");
    }
    // `man` renders a page, where it is installed.
    if have("man") {
        let text = sh(Command::new("man")
            .arg("-l")
            .arg(dir.join("ocitool-import.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"));
        assert!(
            text.contains("ARCHIVE") && text.contains("docker-save.tar"),
            "{text}"
        );
    } else {
        eprintln!("SKIPPED: man is not installed; the pages were checked but not rendered");
    }
    usage_error(&["no manual page", "tag"], ["man", "frobnicate"]);
}

/// `ocitool --version`'s line.
fn version_line() -> String {
    ok(["--version"]).trim().to_string()
}

#[test]
fn version_names_the_commit() {
    let v = version_line();
    let rest = v.strip_prefix("ocitool ").unwrap_or_else(|| panic!("{v}"));
    let (version, commit) = rest.split_once(' ').unwrap_or_else(|| panic!("{v}"));
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let commit = commit
        .strip_prefix('(')
        .and_then(|c| c.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{v}"));
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(workspace())
        .output();
    match head {
        Ok(o) if o.status.success() => assert_eq!(commit, stdout(&o).trim(), "{v}"),
        // A source tarball: no git, no commit.
        _ => assert_eq!(commit, "unknown", "{v}"),
    }
}

#[test]
fn quiet_push_login_and_logout_print_nothing() {
    let Some(reg) =
        ocitool_testkit::registry::TestRegistry::start(ocitool_testkit::registry::Mode::Plain)
    else {
        return;
    };
    let fx = fixture("minimal");
    let d = empty_dir();
    let home = d.path().join("home");
    let auth = home.join("auth.json");
    let to = format!("{}/site", reg.addr);
    let quiet_ok = |args: &[&str]| {
        let mut c = Command::new(bin());
        crate::json_schemas::isolated(c.arg("-q").args(args), &home);
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(
            o.stdout.is_empty() && o.stderr.is_empty(),
            "{args:?} printed with -q: {}{}",
            stdout(&o),
            stderr(&o)
        );
    };
    let (l, a) = (fx.path.to_str().unwrap(), auth.to_str().unwrap());
    quiet_ok(&["push", l, "--to", &to]);
    quiet_ok(&[
        "login",
        &reg.addr,
        "--creds",
        "tester:s3cret",
        "--authfile",
        a,
    ]);
    assert!(auth.exists());
    quiet_ok(&["logout", &reg.addr, "--authfile", a]);
}
