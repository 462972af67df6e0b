//! Usage errors that clap cannot see, and tips on the ones it does. Values the libraries
//! parse (a platform, a compression level), arguments given in each other's place (an archive
//! where a layout goes, a layout that is a file), and docker's verbs all end as clap errors:
//! `error:`, the command's usage line, exit 2.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use ocitool_spec::Platform;
use ocitool_spec::reference::Reference;

use crate::cli::{BlobCommand, Cli, Command, CompressionArg};

/// What docker users type that ocitool names otherwise, and what to type instead.
const DOCKER_VERBS: &[(&str, &str)] = &[
    (
        "load",
        "`docker load -i ARCHIVE` is `ocitool import ARCHIVE LAYOUT` here (and `ocitool export` writes what `docker load` reads)",
    ),
    (
        "save",
        "`docker save -o ARCHIVE IMAGE` is `ocitool export LAYOUT REF... -o ARCHIVE` here (and `ocitool import` reads what `docker save` writes)",
    ),
    (
        "rmi",
        "`docker rmi IMAGE` is `ocitool untag LAYOUT REF` here; `ocitool gc LAYOUT` then frees the space",
    ),
    (
        "rm",
        "ocitool has no containers; to remove an image: `ocitool untag LAYOUT REF`, then `ocitool gc LAYOUT`",
    ),
    ("images", "`docker images` is `ocitool ls LAYOUT` here"),
    (
        "image",
        "`docker image ls`, `rm` and `inspect` are `ocitool ls LAYOUT`, `ocitool untag LAYOUT REF` and `ocitool inspect LAYOUT REF` here",
    ),
    (
        "history",
        "`docker history IMAGE` is `ocitool inspect LAYOUT REF` here (its History section)",
    ),
    (
        "search",
        "`ocitool ls-remote IMAGE` lists the tags of a repository",
    ),
    (
        "run",
        "ocitool moves, tags and checks images but runs no containers: `ocitool export LAYOUT REF -o - | docker load` hands an image to docker",
    ),
    (
        "build",
        "ocitool moves, tags and checks images but builds none: build with docker, podman or buildah, then `ocitool import`",
    ),
];

/// Adds tips to clap's own usage errors: docker verbs, and `pull IMAGE` without a layout.
pub fn with_tips(mut e: clap::Error, args: &[OsString]) -> clap::Error {
    let mut tips: Vec<String> = Vec::new();
    match e.kind() {
        ErrorKind::InvalidSubcommand => {
            if let Some(ContextValue::String(verb)) = e.get(ContextKind::InvalidSubcommand)
                && let Some((_, tip)) = DOCKER_VERBS.iter().find(|(v, _)| v == verb)
            {
                tips.push((*tip).to_string());
            }
        }
        ErrorKind::MissingRequiredArgument if subcommand_of(&e) == Some("pull") => {
            let given = positionals_after(args, "pull");
            let image = given.first().map_or("nginx", String::as_str);
            tips.push(format!(
                "the layout comes first, then the images: `ocitool pull ./layout {image}` (the layout is created if missing)"
            ));
        }
        _ => {}
    }
    if tips.is_empty() {
        return e;
    }
    let mut all = match e.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(v)) => v.clone(),
        _ => Vec::new(),
    };
    all.extend(tips.into_iter().map(StyledStr::from));
    e.insert(ContextKind::Suggested, ContextValue::StyledStrs(all));
    e
}

/// The subcommand a clap error is about, read from its usage line (`Usage: ocitool pull ...`).
fn subcommand_of(e: &clap::Error) -> Option<&'static str> {
    let Some(ContextValue::StyledStr(usage)) = e.get(ContextKind::Usage) else {
        return None;
    };
    let usage = usage.to_string();
    let rest = usage.split("ocitool ").nth(1)?;
    let word = rest.split_whitespace().next()?;
    ["pull", "push"].into_iter().find(|c| *c == word)
}

/// The words after `command` that are not flags.
fn positionals_after(args: &[OsString], command: &str) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .skip_while(|a| a != command)
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect()
}

/// Checks what clap cannot: platform values, compression levels, the order of arguments,
/// man page names. `cmd` is the built root command; errors show the subcommand's usage.
pub fn check(cli: &Cli, cmd: &clap::Command) -> Result<(), clap::Error> {
    let Some(problem) = problem(&cli.command) else {
        return Ok(());
    };
    let mut sub = cmd.clone();
    for name in command_path(&cli.command) {
        match sub.find_subcommand(name) {
            Some(s) => sub = s.clone(),
            None => break,
        }
    }
    Err(sub.error(problem.0, problem.1))
}

fn command_path(c: &Command) -> Vec<&'static str> {
    let name = match c {
        Command::Init(_) => "init",
        Command::Ls(_) => "ls",
        Command::Inspect(_) => "inspect",
        Command::Tag(_) => "tag",
        Command::Untag(_) => "untag",
        Command::Protect(_) => "protect",
        Command::Prune(_) => "prune",
        Command::Verify(_) => "verify",
        Command::Import(_) => "import",
        Command::Unpack(_) => "unpack",
        Command::Pack(_) => "pack",
        Command::Inventory(_) => "inventory",
        Command::Copy(_) => "copy",
        Command::Export(_) => "export",
        Command::Blob(BlobCommand::Put { .. }) => return vec!["blob", "put"],
        Command::Blob(BlobCommand::Get { .. }) => return vec!["blob", "get"],
        Command::Convert(_) => "convert",
        Command::Gc(_) => "gc",
        Command::Pull(_) => "pull",
        Command::Push(_) => "push",
        Command::Login(_) => "login",
        Command::Logout(_) => "logout",
        Command::LsRemote(_) => "ls-remote",
        Command::Serve(_) => "serve",
        Command::Completions(_) => "completions",
        Command::Man(_) => "man",
    };
    vec![name]
}

type Problem = (ErrorKind, String);

fn problem(c: &Command) -> Option<Problem> {
    platforms(c)
        .into_iter()
        .find_map(check_platform)
        .or_else(|| level(c))
        .or_else(|| older_than(c))
        .or_else(|| order(c))
        .or_else(|| man_page(c))
}

/// Every `--platform` value of the command.
fn platforms(c: &Command) -> Vec<&str> {
    let (one, many): (Option<&String>, &[String]) = match c {
        Command::Inspect(a) => (a.platform.as_ref(), &[]),
        Command::Pack(a) => (a.platform.as_ref(), &[]),
        Command::Copy(a) => (a.platform.as_ref(), &[]),
        Command::Export(a) => (a.platform.as_ref(), &[]),
        Command::Convert(a) => (a.platform.as_ref(), &[]),
        Command::Pull(a) => (None, &a.platform),
        Command::Push(a) => (None, &a.platform),
        _ => (None, &[]),
    };
    one.into_iter().chain(many).map(String::as_str).collect()
}

fn check_platform(value: &str) -> Option<Problem> {
    let e = value.parse::<Platform>().err()?;
    Some((
        ErrorKind::InvalidValue,
        format!("invalid value '{value}' for '--platform <PLATFORM>': {e}"),
    ))
}

/// `prune --older-than` as an age or a day.
fn older_than(c: &Command) -> Option<Problem> {
    let Command::Prune(a) = c else { return None };
    let value = a.older_than.as_deref()?;
    let e = crate::cmd::lifecycle::parse_age(value).err()?;
    Some((
        ErrorKind::InvalidValue,
        format!("invalid value '{value}' for '--older-than <AGE|DATE>': {e}"),
    ))
}

/// `--level` within the range of the codec `--compression` names.
fn level(c: &Command) -> Option<Problem> {
    let (compression, level) = match c {
        Command::Import(a) => (a.compression?, a.level?),
        Command::Convert(a) => (a.compression?, a.level?),
        _ => return None,
    };
    let (codec, name) = match compression {
        CompressionArg::Gzip => (ocitool_compress::Compression::Gzip, "gzip"),
        CompressionArg::Zstd => (ocitool_compress::Compression::Zstd, "zstd"),
        CompressionArg::None => {
            return Some((
                ErrorKind::ArgumentConflict,
                "--level has no meaning with --compression none".into(),
            ));
        }
    };
    let (min, max) = ocitool_compress::level_range(codec);
    (!(min..=max).contains(&level)).then(|| {
        (
            ErrorKind::InvalidValue,
            format!("invalid value '{level}' for '--level <N>': {name} levels are {min} to {max}"),
        )
    })
}

/// Arguments in each other's place: an archive given where a layout goes or the other way
/// round, an image name where a layout goes.
fn order(c: &Command) -> Option<Problem> {
    let wrong = |s: String| Some((ErrorKind::ValueValidation, s));
    match c {
        Command::Import(a) => archive_then_layout("import", &a.archive, &a.layout),
        Command::Unpack(a) => archive_then_layout("unpack", &a.archive, &a.layout),
        Command::Copy(a) => {
            let (src, dst) = (show(&a.src), show(&a.dst));
            if is_file(&a.src) {
                return wrong(format!(
                    "SRC_LAYOUT {src} is a file, not a layout: copy reads a layout; `ocitool import {src} {dst}` reads a docker-save or OCI archive (`ocitool unpack` an ocitool pack)"
                ));
            }
            let what = if is_file(&a.dst) {
                "is a file"
            } else if !a.dst.exists() && names_an_archive(&a.dst) {
                // A new directory called file.tar is rarely what was meant.
                "names an archive"
            } else {
                return None;
            };
            wrong(format!(
                "DST_LAYOUT {dst} {what}, not a layout: copy writes into a layout directory; `ocitool pack {src} -o {dst}` writes an oci-archive, `ocitool export {src} REF... -o {dst}` one that `docker load` reads"
            ))
        }
        Command::Blob(BlobCommand::Put { layout, file, .. })
            if is_file(layout) && file.is_dir() =>
        {
            wrong(format!(
                "the layout comes first, then the file: `ocitool blob put {} {}`",
                show(file),
                show(layout)
            ))
        }
        Command::Pull(a) => {
            let layout = a.layout.to_string_lossy();
            let looks_like_image = !a.layout.exists()
                && layout.contains([':', '@'])
                && Reference::parse(&layout).is_ok();
            let dir_image = a.images.iter().find(|i| Path::new(i).is_dir());
            if looks_like_image || (dir_image.is_some() && Reference::parse(&layout).is_ok()) {
                let target = dir_image.map_or("./layout", String::as_str);
                let images: Vec<&str> = std::iter::once(layout.as_ref())
                    .chain(
                        a.images
                            .iter()
                            .map(String::as_str)
                            .filter(|i| Some(*i) != dir_image.map(String::as_str)),
                    )
                    .collect();
                return wrong(format!(
                    "LAYOUT {layout} looks like an image: the layout comes first, then the images: `ocitool pull {target} {}`",
                    images.join(" ")
                ));
            }
            layout_is_file(&a.layout)
        }
        Command::Push(a) if !a.layout.exists() => {
            let layout = a.layout.to_string_lossy();
            Reference::parse(&layout).ok().and_then(|_| {
                wrong(format!(
                    "LAYOUT {layout} does not exist; push sends refs from a layout, which comes first: `ocitool push ./layout {layout}`"
                ))
            })
        }
        other => layouts(other).into_iter().find_map(|p| layout_is_file(p)),
    }
}

fn archive_then_layout(verb: &str, archive: &Path, layout: &Path) -> Option<Problem> {
    let (a, l) = (show(archive), show(layout));
    let msg = if archive.is_dir() && is_file(layout) {
        format!(
            "ARCHIVE {a} is a directory and LAYOUT {l} a file: the archive comes first: `ocitool {verb} {l} {a}`"
        )
    } else if archive.is_dir()
        && (archive.join("oci-layout").exists() || archive.join("index.json").exists())
    {
        format!(
            "ARCHIVE {a} is a layout, not an archive: `ocitool copy {a} {l}` copies images between layouts"
        )
    } else if archive.is_dir() {
        format!("ARCHIVE {a} is a directory, not an archive (a tar file, or - for standard input)")
    } else if is_file(layout) {
        format!("LAYOUT {l} is a file: {verb} writes into a layout directory (created if missing)")
    } else {
        return None;
    };
    Some((ErrorKind::ValueValidation, msg))
}

/// The LAYOUT arguments of commands that read or write a layout directory. (`ls` and
/// `inspect` are left out: they may read archives.)
fn layouts(c: &Command) -> Vec<&PathBuf> {
    match c {
        Command::Init(a) => vec![&a.layout],
        Command::Tag(a) => vec![&a.layout],
        Command::Untag(a) => vec![&a.layout],
        Command::Protect(a) => vec![&a.layout],
        Command::Prune(a) => vec![&a.layout],
        Command::Verify(a) => vec![&a.layout],
        Command::Pack(a) => vec![&a.layout],
        Command::Inventory(a) => vec![&a.layout],
        Command::Export(a) => vec![&a.layout],
        Command::Convert(a) => vec![&a.layout],
        Command::Gc(a) => vec![&a.layout],
        Command::Push(a) => vec![&a.layout],
        Command::Serve(a) => a.layouts.iter().collect(),
        Command::Blob(BlobCommand::Put { layout, .. } | BlobCommand::Get { layout, .. }) => {
            vec![layout]
        }
        _ => Vec::new(),
    }
}

fn layout_is_file(p: &Path) -> Option<Problem> {
    is_file(p).then(|| {
        let l = show(p);
        (
            ErrorKind::ValueValidation,
            format!(
                "LAYOUT {l} is a file, not a layout directory; an archive is read into a layout first: `ocitool import {l} ./layout`"
            ),
        )
    })
}

/// `man COMMAND` names a command that has a page.
fn man_page(c: &Command) -> Option<Problem> {
    let Command::Man(a) = c else { return None };
    if a.command.is_empty() {
        return None;
    }
    let name = crate::cmd::docs::page_name(&a.command);
    if crate::cmd::docs::PAGES.iter().any(|(n, _)| *n == name) {
        return None;
    }
    let known: Vec<&str> = crate::cmd::docs::PAGES
        .iter()
        .filter_map(|(n, _)| n.strip_prefix("ocitool-"))
        .collect();
    Some((
        ErrorKind::InvalidValue,
        format!(
            "no manual page for '{}'; there are pages for: {}",
            a.command.join(" "),
            known.join(", ")
        ),
    ))
}

/// Ends as archives do: `.tar`, `.tar.gz`, `.tgz`, `.tar.zst`, `.tar.xz`, `.tar.bz2`.
fn names_an_archive(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase());
    name.is_some_and(|n| {
        [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".tar.bz2"]
            .iter()
            .any(|e| n.ends_with(e))
    })
}

/// Exists and is not a directory (a symlink to a directory is one).
fn is_file(p: &Path) -> bool {
    p.as_os_str() != "-" && std::fs::metadata(p).is_ok_and(|m| !m.is_dir())
}

fn show(p: &Path) -> String {
    crate::output::term_text(&p.to_string_lossy()).into_owned()
}
