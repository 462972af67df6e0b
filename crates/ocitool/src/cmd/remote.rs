//! What every registry command shares: the client built from the registry flags.

use std::io::Read;

use anyhow::Context;
use ocitool_registry::client::Warnings;
use ocitool_registry::creds::{Credential, Store};
use ocitool_registry::{Client, Options};

use crate::Ctx;
use crate::cli::RegistryFlags;

/// The client for these flags. `--creds-stdin` reads USER:PASSWORD from standard input.
pub fn client(ctx: &Ctx, f: &RegistryFlags) -> anyhow::Result<Client> {
    let creds = if f.creds_stdin {
        let mut s = String::new();
        std::io::stdin()
            .take(64 << 10)
            .read_to_string(&mut s)
            .context("read credentials from standard input")?;
        Some(Credential::from_user_pass(
            s.trim_end_matches(['\n', '\r']),
        )?)
    } else {
        f.creds
            .as_deref()
            .map(Credential::from_user_pass)
            .transpose()?
    };
    let mut o = Options {
        store: Store {
            auth_file: f.authfile.clone(),
            helper_path: None,
        },
        creds,
        cert_dir: f.cert_dir.clone(),
        tls_verify: f.tls_verify,
        plain_http: f.plain_http,
        retries: f.retry_times,
        retry_delay: f.retry_delay,
        // A registry's `Warning` texts (once each), escaped for the terminal like every line.
        warnings: {
            let diag = ctx.diag;
            Warnings::new(move |w| diag.warn(w))
        },
        ..Options::default()
    };
    if let Some(n) = ctx.global.max_json_size {
        o.json_limit = n;
    }
    Ok(Client::new(o))
}

/// Blobs pulled at once: `--jobs`, else 4 (a transfer waits on the network more than on the
/// cores). Push chooses its own default (`ocitool_registry::push::default_uploads`).
pub fn jobs(ctx: &Ctx) -> usize {
    ctx.global.jobs.unwrap_or(4).max(1)
}

/// Parses `--platform` values.
pub fn platforms(v: &[String]) -> anyhow::Result<Vec<ocitool_spec::Platform>> {
    v.iter()
        .map(|p| p.parse().map_err(anyhow::Error::from))
        .collect()
}
