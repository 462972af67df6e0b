//! Deterministic tar streams (fixed owner, mode and mtime) for layers and archives.

use std::io::{self, Write};

/// What a tar entry is.
#[derive(Clone, Debug)]
pub enum Content<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(&'a str),
    Hardlink(&'a str),
}

/// The mtime of every entry ocitool's fixtures write: 2023-11-14T22:13:20Z.
pub const MTIME: u64 = 1_700_000_000;

/// Writes a tar entry with a ustar header (GNU long-name records for long paths).
pub fn append<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    content: Content<'_>,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    match content {
        Content::File(data) => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, data)
        }
        Content::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, path, io::empty())
        }
        Content::Symlink(target) => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            b.append_link(&mut h, path, target)
        }
        Content::Hardlink(target) => {
            h.set_entry_type(tar::EntryType::Link);
            h.set_mode(0o644);
            h.set_size(0);
            b.append_link(&mut h, path, target)
        }
    }
}

/// A whole tar in memory.
pub fn build(entries: &[(&str, Content<'_>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    for (p, c) in entries {
        append(&mut b, p, c.clone()).expect("writing to memory cannot fail");
    }
    b.into_inner().expect("writing to memory cannot fail")
}

/// A small layer with a few files whose content depends on `seed`.
pub fn small_layer(seed: u64, files: usize) -> Vec<u8> {
    let mut rng = crate::Rng::new(seed);
    let mut datas = Vec::new();
    for i in 0..files {
        let mut d = vec![0u8; 64 + (rng.next_u64() % 512) as usize];
        if i % 2 == 0 {
            rng.fill_compressible(&mut d);
        } else {
            rng.fill(&mut d);
        }
        datas.push((format!("etc/file-{seed}-{i}.txt"), d));
    }
    let mut entries: Vec<(&str, Content<'_>)> = vec![("etc/", Content::Dir)];
    for (p, d) in &datas {
        entries.push((p.as_str(), Content::File(d)));
    }
    build(&entries)
}
