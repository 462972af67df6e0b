use std::fs::File;
use std::io::{self, Read, Write};

use anyhow::Context;
use ocitool_digest::{Algorithm, Digest};
use ocitool_layout::{Layout, Transaction};
use ocitool_spec::views::Checked;

use crate::cli::BlobCommand;
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, cmd: BlobCommand) -> anyhow::Result<i32> {
    match cmd {
        BlobCommand::Put {
            layout,
            file,
            digest,
        } => {
            let expected = digest.as_deref().map(Digest::parse).transpose()?;
            let layout = Layout::open(&layout, ctx.layout_options())?;
            let input: Box<dyn Read> = if file.as_os_str() == "-" {
                Box::new(io::stdin().lock())
            } else {
                Box::new(File::open(&file).with_context(|| format!("open {}", file.display()))?)
            };
            let mut txn = Transaction::begin(&layout)?;
            let alg = expected
                .as_ref()
                .map_or(Algorithm::Sha256, Digest::algorithm);
            let mut w = txn.blob_writer(alg)?;
            let n = io::copy(&mut { input }, &mut w)
                .with_context(|| format!("read {}", file.display()))?;
            let got = txn.finish_blob(w, None)?;
            if let Some(e) = &expected
                && *e != got.digest
            {
                anyhow::bail!(
                    "{}: content hashes to {}, not {e}; nothing was stored",
                    file.display(),
                    got.digest
                );
            }
            txn.commit(|_| Ok(()))?;
            ctx.committed();
            if ctx.global.json {
                ctx.out
                    .json(&serde_json::json!({"digest": got.digest.to_string(), "size": n}))?;
            } else {
                ctx.out.line(got.digest.to_string())?;
            }
            Ok(exit::OK)
        }
        BlobCommand::Get { layout, digest } => {
            let digest = Digest::parse(&digest)?;
            let layout = Layout::open(&layout, ctx.layout_options())?;
            let _lock = layout.read_lock()?;
            let size =
                layout
                    .stat_blob(&digest)?
                    .ok_or_else(|| ocitool_layout::Error::MissingBlob {
                        path: layout.blob_path(&digest),
                        digest: digest.clone(),
                    })?;
            let mut r = layout.open_verified(&Checked {
                digest: digest.clone(),
                size,
            })?;
            let mut stdout = io::stdout().lock();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = r
                    .read(&mut buf)
                    .map_err(|e| layout.read_error(&digest, e))?;
                if n == 0 {
                    break;
                }
                if let Err(e) = stdout.write_all(&buf[..n]) {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        return Ok(exit::OK);
                    }
                    return Err(e).context("write to standard output");
                }
            }
            Ok(exit::OK)
        }
    }
}
