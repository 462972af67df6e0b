//! `completions` and `man`: the shell completion scripts (clap_complete) and the manual
//! pages, which `build.rs` makes from the same clap definition and this binary embeds.

use anyhow::Context;
use clap_complete::Shell;

use crate::cli::{CompletionsArgs, ManArgs, ShellArg};
use crate::{Ctx, exit};

/// Every manual page as (name, roff): `("ocitool", ...)`, `("ocitool-tag", ...)`,
/// `("ocitool-blob-put", ...)`.
pub const PAGES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/man_pages.rs"));

pub fn completions(ctx: &mut Ctx, a: &CompletionsArgs) -> anyhow::Result<i32> {
    let shell = match a.shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::command(), "ocitool", &mut script);
    ctx.out.bytes(&script)?;
    Ok(exit::OK)
}

/// The page name of a command path: `[]` is `ocitool`, `["blob", "put"]` is `ocitool-blob-put`.
pub fn page_name(command: &[String]) -> String {
    std::iter::once("ocitool")
        .chain(command.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-")
}

pub fn man(ctx: &mut Ctx, a: &ManArgs) -> anyhow::Result<i32> {
    let Some(dir) = &a.dir else {
        let name = page_name(&a.command);
        // `usage::check` refused commands without a page.
        let (_, page) = PAGES
            .iter()
            .find(|(n, _)| *n == name)
            .with_context(|| format!("no manual page {name}"))?;
        ctx.out.bytes(page.as_bytes())?;
        return Ok(exit::OK);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, page) in PAGES {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).with_context(|| format!("write {}", path.display()))?;
    }
    ctx.committed();
    if ctx.global.json {
        let pages: Vec<String> = PAGES.iter().map(|(n, _)| format!("{n}.1")).collect();
        ctx.out
            .json(&serde_json::json!({"dir": dir, "pages": pages}))?;
    } else {
        ctx.info(format!(
            "wrote {} manual pages into {} (`man ocitool-tag` reads one if the directory is on the manual path)",
            PAGES.len(),
            dir.display()
        ));
    }
    Ok(exit::OK)
}
