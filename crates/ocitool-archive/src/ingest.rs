//! One pass over an archive: every regular member streams into the layout's staging area (or,
//! when the layout already holds its bytes, only through the hashers), and comes out as a
//! `Member` with its digest, size, compression and, for a compressed member, the digest of its
//! decompressed bytes. Links are recorded and resolved inside the archive only at the end.
//!
//! Real archives put `manifest.json` and `index.json` after the blobs, so nothing can be
//! decided while streaming; the archive is never read twice and never copied whole.
//!
//! Reading an archive without a layout (`ls ARCHIVE`, `inspect ARCHIVE`) is the same pass with
//! [`Store::Memory`]: every member is hashed and checked exactly as on import, nothing is
//! written anywhere, and only the members that can be documents (not a layer) are kept, in memory,
//! within [`Limits::document_budget`].

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};

use ocitool_compress::{BombGuard, Compression, CountingReader, DecodeOptions};

use crate::side::{RatioLimit, SideDecoder, SideError};
use ocitool_digest::{Algorithm, Digest, HashingWriter};
use ocitool_layout::txn::BUF_SIZE;
use ocitool_layout::{Progress, Transaction};
use ocitool_spec::views::Checked;

use crate::errors::{Error, Result};
use crate::guard::{Refused, TarGuard};
use crate::paths;

/// Caps that stop hostile archives. Every one is documented in the README and can be raised.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Members in one archive.
    pub max_entries: usize,
    /// Links followed to reach a member.
    pub max_link_hops: usize,
    /// Decompressed bytes per compressed byte (outer archive and layers alike), once past
    /// `ratio_slack` bytes.
    pub max_ratio: u64,
    pub ratio_slack: u64,
    /// Largest JSON document read (`manifest.json`, `index.json`, configs, manifests).
    pub json_limit: u64,
    /// Largest GNU long name, long link or pax record (refused before it is read).
    pub max_header: u64,
    pub decode: DecodeOptions,
    /// Decompress compressed members (on a second thread) to know their diff_ids.
    pub diff_ids: bool,
}

impl Limits {
    /// Most bytes of JSON documents kept in memory while reading an archive without a layout:
    /// four documents of the JSON limit, and never less than 64 MiB.
    pub fn document_budget(&self) -> u64 {
        self.json_limit.saturating_mul(4).max(64 << 20)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1_000_000,
            max_link_hops: 16,
            max_ratio: 100,
            ratio_slack: 64 << 20,
            json_limit: ocitool_spec::DEFAULT_JSON_LIMIT,
            max_header: crate::guard::DEFAULT_MAX_HEADER,
            decode: DecodeOptions::default(),
            diff_ids: true,
        }
    }
}

/// A regular member of the archive.
#[derive(Clone, Debug)]
pub struct Member {
    /// sha256 of its bytes.
    pub digest: Digest,
    pub size: u64,
    /// Compression recognised by magic bytes.
    pub compression: Compression,
    /// For a compressed member, sha256 of its decompressed bytes (or why they could not be
    /// decompressed); for an uncompressed member named by a sha512 digest, its sha256 (what
    /// configs' diff_ids are); `None` for an uncompressed sha256 one (its digest is its own)
    /// or when diff_ids were not asked for.
    pub uncompressed: Option<std::result::Result<Digest, String>>,
    /// With `import --compression`: an uncompressed tar member was re-encoded on the way in;
    /// only this blob was staged (the member's own bytes were hashed, not kept).
    pub converted: Option<(Checked, Compression)>,
}

impl Member {
    pub fn checked(&self) -> Checked {
        Checked {
            digest: self.digest.clone(),
            size: self.size,
        }
    }

    /// The digest by `algorithm` of the member's uncompressed content (a layer's diff_id, to
    /// compare with a config's); `Ok(None)` when it was not computed.
    pub fn diff_id(&self, algorithm: Algorithm) -> std::result::Result<Option<&Digest>, &str> {
        if self.compression == Compression::None && self.digest.algorithm() == algorithm {
            return Ok(Some(&self.digest));
        }
        match &self.uncompressed {
            None => Ok(None),
            Some(Ok(d)) if d.algorithm() == algorithm => Ok(Some(d)),
            Some(Ok(_)) => Ok(None),
            Some(Err(e)) => Err(e),
        }
    }
}

/// What one pass found.
#[derive(Debug, Default)]
pub struct Ingested {
    pub members: BTreeMap<String, Member>,
    /// Link name → the member name it points at (one hop, already checked to stay inside).
    pub links: BTreeMap<String, String>,
    /// Bytes of archive read (after outer decompression).
    pub bytes: u64,
    /// Outer compression of the archive.
    pub compression: Option<Compression>,
}

impl Ingested {
    /// The member a name refers to, following links (with a hop limit).
    pub fn get(&self, name: &str, limits: &Limits) -> Result<&Member> {
        let mut cur = paths::normalize(name.as_bytes())?;
        for _ in 0..=limits.max_link_hops {
            if let Some(m) = self.members.get(&cur) {
                return Ok(m);
            }
            match self.links.get(&cur) {
                Some(next) => cur = next.clone(),
                None => return Err(Error::entry(name, "no such member in the archive")),
            }
        }
        Err(Error::entry(
            name,
            format!(
                "more than {} links to follow (a link loop?)",
                limits.max_link_hops
            ),
        ))
    }

    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(name) || self.links.contains_key(name)
    }
}

/// Where the members of an archive go.
pub enum Store<'a, 't> {
    /// Staged into a layout's transaction (`import`, `unpack`); a blob the layout already
    /// holds is only hashed.
    Layout(&'a mut Transaction<'t>),
    /// Nowhere (`ls ARCHIVE`, `inspect ARCHIVE`): every member is only hashed; those that can
    /// be JSON documents are kept in memory.
    Memory(&'a mut Documents),
}

/// The members of an archive that can be documents, read without a layout: those no larger
/// than the JSON limit that are neither a tar stream nor compressed (and `manifest.json`,
/// `index.json`, `oci-layout` whatever they hold), by digest, within
/// [`Limits::document_budget`] in all.
#[derive(Debug, Default)]
pub struct Documents {
    pub by_digest: BTreeMap<Digest, Vec<u8>>,
    /// Bytes kept so far.
    pub bytes: u64,
}

/// Whether a member whose first bytes are `first` may be read as a document (a manifest, an
/// index, a config, even one that turns out not to parse): anything that is not a layer, that
/// is not a tar stream nor compressed. A document that fails to parse then fails exactly as on
/// import.
fn may_be_document(first: &[u8]) -> bool {
    !is_tar(first) && Compression::detect(first) == Compression::None
}

/// Reads an archive (plain, gzip, zstd, xz or bzip2, detected by magic bytes) in one pass.
pub fn ingest(
    input: impl Read,
    mut store: Store<'_, '_>,
    limits: &Limits,
    convert: Option<ConvertTo>,
    progress: &dyn Progress,
) -> Result<Ingested> {
    let (counting, consumed) = CountingReader::new(BufReader::with_capacity(
        BUF_SIZE,
        ProgressRead {
            inner: input,
            progress,
        },
    ));
    let mut buffered = BufReader::with_capacity(BUF_SIZE, counting);
    let compression = Compression::sniff(&mut buffered).map_err(Error::io("read the archive"))?;
    let decoded = ocitool_compress::decoder(compression, buffered, limits.decode)
        .map_err(Error::io("read the archive"))?;
    let guarded: Box<dyn Read> = if compression == Compression::None {
        decoded
    } else {
        Box::new(BombGuard::new(
            decoded,
            consumed,
            u64::MAX,
            limits.max_ratio,
            limits.ratio_slack,
        ))
    };
    // Long names, pax records and sparse members are judged before the tar crate reads them.
    let mut archive = tar::Archive::new(TarGuard::new(guarded, limits.max_header));
    let mut out = Ingested {
        compression: Some(compression),
        ..Default::default()
    };
    let entries = archive.entries().map_err(Error::io("read the archive"))?;
    let mut buf = vec![0u8; BUF_SIZE];
    for (n, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| archive_error("read the next member header", e))?;
        if n >= limits.max_entries {
            return Err(Error::Archive(format!(
                "more than {} members (raise the limit with --max-entries)",
                limits.max_entries
            )));
        }
        let raw_name = entry.path_bytes().into_owned();
        let name = paths::normalize(&raw_name)?;
        let kind = entry.header().entry_type();
        if name.is_empty() {
            if kind.is_dir() {
                continue;
            }
            return Err(Error::entry("", "member with an empty name"));
        }
        if out.members.contains_key(&name) || out.links.contains_key(&name) {
            return Err(Error::entry(
                &name,
                "duplicate member (the archive holds this name twice)",
            ));
        }
        use tar::EntryType as T;
        match kind {
            T::Directory => continue,
            T::Symlink | T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::entry(&name, "link without a target"))?
                    .into_owned();
                let resolved = if kind == T::Symlink {
                    let t = std::str::from_utf8(&target)
                        .map_err(|_| Error::entry(&name, "link target is not UTF-8"))?;
                    paths::resolve_symlink(&name, t)?
                } else {
                    paths::resolve_hardlink(&name, &target)?
                };
                if resolved == name {
                    return Err(Error::entry(&name, "link to itself"));
                }
                out.links.insert(name, resolved);
            }
            T::Regular | T::Continuous => {
                let declared = entry.size();
                let member = stream_member(
                    &mut entry, &name, declared, &mut store, limits, convert, &mut buf,
                )?;
                out.bytes += member.size;
                out.members.insert(name, member);
            }
            T::XGlobalHeader => continue,
            // Refused by the guard before the tar crate expands it; kept for clarity.
            T::GNUSparse => {
                return Err(Error::entry(&name, "a GNU sparse file (refused)"));
            }
            other => {
                return Err(Error::entry(
                    &name,
                    format!("unsupported member type {other:?}"),
                ));
            }
        }
    }
    Ok(out)
}

fn archive_error(what: &str, e: io::Error) -> Error {
    if let Some(r) = e.get_ref().and_then(|x| x.downcast_ref::<Refused>()) {
        return Error::entry(&r.member, r.why.clone());
    }
    if let Some(b) = e
        .get_ref()
        .and_then(|x| x.downcast_ref::<ocitool_compress::BombError>())
    {
        return Error::Archive(format!("{b} (raise the limit with --max-ratio)"));
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return Error::Archive(format!("{what}: the archive is truncated"));
    }
    Error::Archive(format!("{what}: {e}"))
}

/// The digest a member's name promises (`blobs/sha256/<hex>`), if any.
fn promised_digest(name: &str) -> Option<Digest> {
    let rest = name.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    Digest::parse(&format!("{alg}:{hex}")).ok()
}

/// Re-encoding of uncompressed tar members on the way in (`import --compression`).
#[derive(Clone, Copy, Debug)]
pub struct ConvertTo {
    pub compression: Compression,
    pub level: Option<i32>,
    /// zstd worker threads (0: in the calling thread).
    pub zstd_workers: u32,
}

/// Destination of a member's bytes: a staged blob, only the hasher when the layout already
/// holds that blob (or there is no layout), memory for a document read without a layout, or
/// an encoder into a staged blob when uncompressed layers are converted on the way in (the
/// raw bytes are then only hashed).
#[allow(clippy::large_enum_variant)] // one per member, never moved in a hot loop
enum Dest {
    Stage(ocitool_layout::txn::BlobWriter),
    Hash(HashingWriter<io::Sink>),
    Keep(HashingWriter<Vec<u8>>),
    Convert {
        raw: ocitool_digest::Hasher,
        count: u64,
        enc: ocitool_compress::Encoder<ocitool_layout::txn::BlobWriter>,
        to: Compression,
    },
}

impl Dest {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Dest::Stage(w) => w.write_all(b),
            Dest::Hash(h) => h.write_all(b),
            Dest::Keep(h) => h.write_all(b),
            Dest::Convert {
                raw, count, enc, ..
            } => {
                raw.update(b);
                *count += b.len() as u64;
                enc.write_all(b)
            }
        }
    }
}

/// An uncompressed tar stream: the ustar magic at offset 257 of its first header.
fn is_tar(first: &[u8]) -> bool {
    first.len() >= 262 && &first[257..262] == b"ustar"
}

/// Streams one member into its destination, hashed as it goes (and decoded on the side for
/// its diff_id), and checks it against its declared size and the digest its name promises.
fn stream_member(
    entry: &mut impl Read,
    name: &str,
    declared: u64,
    store: &mut Store<'_, '_>,
    limits: &Limits,
    convert: Option<ConvertTo>,
    buf: &mut [u8],
) -> Result<Member> {
    let promised = promised_digest(name);
    let incoming = Incoming {
        name,
        declared,
        algorithm: promised
            .as_ref()
            .map_or(Algorithm::Sha256, Digest::algorithm),
        already: match (&promised, &*store) {
            (Some(d), Store::Layout(txn)) => txn.has_blob(&Checked {
                digest: d.clone(),
                size: declared,
            })?,
            _ => false,
        },
        limits,
        convert,
    };
    let read_err = |e: io::Error| match archive_error("read", e) {
        Error::Archive(m) => Error::entry(name, m),
        other => other,
    };
    let stage_err = |e: io::Error| Error::io(format!("stage archive member {name}"))(e);
    let mut dest: Option<Dest> = None;
    let mut side = SideHash::none();
    let mut total: u64 = 0;
    loop {
        let n = match entry.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        if total == 0 {
            side = SideHash::start(&buf[..n], incoming.algorithm, limits);
            dest = Some(incoming.choose(&buf[..n], store)?);
        }
        total += n as u64;
        dest.as_mut()
            .expect("chosen on the first chunk")
            .write_all(&buf[..n])
            .map_err(stage_err)?;
        side.feed(&buf[..n], total, limits, name)?;
    }
    if total != declared {
        return Err(Error::entry(
            name,
            format!("the archive is truncated ({total} of {declared} bytes)"),
        ));
    }
    let compression = side.compression;
    let uncompressed = side.finish(limits, name)?;
    let dest = match dest {
        Some(d) => d,
        None => incoming.choose(&[], store)?, // an empty member
    };
    let (checked, converted) = dest.finish(store, name)?;
    if let Some(p) = promised
        && p != checked.digest
    {
        return Err(Error::entry(
            name,
            format!(
                "content hashes to {}, not the digest its name promises",
                checked.digest
            ),
        ));
    }
    Ok(Member {
        digest: checked.digest,
        size: checked.size,
        compression,
        uncompressed,
        converted,
    })
}

/// What is known of a member before its bytes: where they may go.
struct Incoming<'a> {
    name: &'a str,
    declared: u64,
    algorithm: Algorithm,
    /// The layout already holds the blob the name promises: its bytes are only hashed.
    already: bool,
    limits: &'a Limits,
    convert: Option<ConvertTo>,
}

impl Incoming<'_> {
    /// The destination, chosen on the first chunk: its magic bytes say whether the member is
    /// an uncompressed tar (then re-encoded on the way in when asked) and, without a layout,
    /// whether it may be a JSON document to keep.
    fn choose(&self, first: &[u8], store: &mut Store<'_, '_>) -> Result<Dest> {
        let (name, declared, algorithm) = (self.name, self.declared, self.algorithm);
        let txn = match store {
            Store::Layout(txn) => txn,
            Store::Memory(docs) => {
                let named = matches!(name, "manifest.json" | "index.json" | "oci-layout");
                if declared > self.limits.json_limit || !(named || may_be_document(first)) {
                    return Ok(Dest::Hash(HashingWriter::new(io::sink(), algorithm)));
                }
                let budget = self.limits.document_budget();
                if docs.bytes.saturating_add(declared) > budget {
                    return Err(Error::entry(
                        name,
                        format!(
                            "the archive's JSON documents are more than {budget} bytes, the most ocitool keeps in memory to read an archive without a layout (import it, or raise the limit with --max-json-size: four times that)"
                        ),
                    ));
                }
                docs.bytes += declared;
                return Ok(Dest::Keep(HashingWriter::new(
                    Vec::with_capacity(declared as usize),
                    algorithm,
                )));
            }
        };
        if let Some(c) = self.convert
            && algorithm == Algorithm::Sha256
            && is_tar(first)
        {
            let w = txn.blob_writer(Algorithm::Sha256)?;
            let enc = ocitool_compress::Encoder::new(
                c.compression,
                w,
                ocitool_compress::EncodeOptions {
                    level: c.level,
                    zstd_workers: c.zstd_workers,
                },
            )
            .map_err(|e| Error::Archive(e.to_string()))?;
            return Ok(Dest::Convert {
                raw: ocitool_digest::Hasher::new(Algorithm::Sha256),
                count: 0,
                enc,
                to: c.compression,
            });
        }
        Ok(if self.already {
            Dest::Hash(HashingWriter::new(io::sink(), algorithm))
        } else {
            Dest::Stage(txn.blob_writer(algorithm)?)
        })
    }
}

/// What computes a member's diff_id while it streams: a decoder on another thread for a
/// compressed layer (bounded by the ratio limit), or a sha256 of an uncompressed member named
/// by another algorithm.
struct SideHash {
    /// Detected on the first chunk.
    compression: Compression,
    decoder: Option<SideDecoder>,
    sha256: Option<ocitool_digest::Hasher>,
}

impl SideHash {
    /// Before the first chunk (and for an empty member).
    fn none() -> SideHash {
        SideHash {
            compression: Compression::None,
            decoder: None,
            sha256: None,
        }
    }

    fn start(first: &[u8], algorithm: Algorithm, limits: &Limits) -> SideHash {
        let compression = Compression::detect(first);
        let decoder =
            (compression != Compression::None && compression.is_layer_codec() && limits.diff_ids)
                .then(|| {
                    SideDecoder::spawn(
                        compression,
                        limits.decode,
                        RatioLimit {
                            ratio: limits.max_ratio,
                            slack: limits.ratio_slack,
                        },
                    )
                });
        let sha256 =
            (compression == Compression::None && algorithm != Algorithm::Sha256 && limits.diff_ids)
                .then(|| ocitool_digest::Hasher::new(Algorithm::Sha256));
        SideHash {
            compression,
            decoder,
            sha256,
        }
    }

    /// Feeds a chunk; `total` is what the member has given so far, this chunk included.
    fn feed(&mut self, chunk: &[u8], total: u64, limits: &Limits, name: &str) -> Result<()> {
        if let Some(h) = self.sha256.as_mut() {
            h.update(chunk);
        }
        if let Some(d) = self.decoder.as_mut() {
            d.feed(chunk);
            let produced = d.produced();
            if produced > limits.ratio_slack
                && produced
                    > total
                        .saturating_mul(limits.max_ratio)
                        .saturating_add(limits.ratio_slack)
            {
                return Err(Error::entry(
                    name,
                    format!(
                        "decompresses more than {}:1 ({produced} bytes from {total}; raise the limit with --max-ratio)",
                        limits.max_ratio
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The diff_id of the member, or why it has none; `None` when not computed (unpack, or
    /// uncompressed and named by sha256: its digest is its diff_id).
    fn finish(
        self,
        limits: &Limits,
        name: &str,
    ) -> Result<Option<std::result::Result<Digest, String>>> {
        let compression = self.compression;
        Ok(match self.decoder.map(SideDecoder::finish) {
            Some(Err(SideError::Bomb(msg))) => return Err(Error::entry(name, msg)),
            Some(Err(SideError::Decode(e))) => Some(Err(e)),
            Some(Ok(d)) => Some(Ok(d)),
            // xz and bzip2 (which `docker load` reads in layers) are named, not decoded: no
            // layer media type could describe such a layer as it is.
            None if self.sha256.is_some() => self.sha256.map(|h| Ok(h.finish())),
            None if limits.diff_ids && !compression.is_layer_codec() => Some(Err(format!(
                "it is {compression}-compressed, and no OCI or Docker layer media type names {compression}"
            ))),
            None => None,
        })
    }
}

impl Dest {
    /// What the member's bytes hash to, and for a converted member the blob it became.
    fn finish(
        self,
        store: &mut Store<'_, '_>,
        name: &str,
    ) -> Result<(Checked, Option<(Checked, Compression)>)> {
        Ok(match self {
            Dest::Stage(w) => (store.finish_blob(w)?, None),
            Dest::Hash(h) => {
                let (digest, size, _) = h.finish();
                (Checked { digest, size }, None)
            }
            Dest::Keep(h) => {
                let (digest, size, bytes) = h.finish();
                if let Store::Memory(docs) = store {
                    docs.by_digest.insert(digest.clone(), bytes);
                }
                (Checked { digest, size }, None)
            }
            Dest::Convert {
                raw,
                count,
                enc,
                to,
            } => {
                let w = enc
                    .finish()
                    .map_err(Error::io(format!("stage archive member {name}")))?;
                let made = store.finish_blob(w)?;
                (
                    Checked {
                        digest: raw.finish(),
                        size: count,
                    },
                    Some((made, to)),
                )
            }
        })
    }
}

impl Store<'_, '_> {
    /// Finishes a staged blob (only a layout stages).
    fn finish_blob(&mut self, w: ocitool_layout::txn::BlobWriter) -> Result<Checked> {
        match self {
            Store::Layout(txn) => Ok(txn.finish_blob(w, None)?),
            Store::Memory(_) => Err(Error::Archive(
                "internal error: a blob was staged without a layout".into(),
            )),
        }
    }
}

struct ProgressRead<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for ProgressRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
