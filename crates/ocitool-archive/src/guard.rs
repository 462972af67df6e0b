//! A tar-aware guard between the (decompressed) archive stream and the tar crate.
//!
//! The tar crate reads a GNU long name (`L`), long link (`K`) or pax extended header (`x`)
//! into memory whole, inside `Entries::next`, before the caller sees any entry: a 4 MiB
//! gzipped archive declaring a 400 MiB long name would cost 400 MiB of memory (more while the
//! vector grows). And it expands a GNU sparse member (`S`) to the size its map declares, with
//! zeros that cost no input: a 10 KiB archive can write 100 GiB.
//!
//! [`TarGuard`] walks the same stream in lockstep: it sees every byte the tar crate reads, in
//! order, assembles each 512-byte header as it passes and frames the data that follows exactly
//! as the tar crate does (the header's size, or the `size` of the pax record that precedes it),
//! so it knows every header before the tar crate acts on it. It refuses:
//! - an `L`, `K`, `x` or `g` record larger than the limit (64 KiB by default), at its header,
//!   so nothing of it is buffered;
//! - a GNU sparse member (`S`), or a member whose pax record carries `GNU.sparse.*` keys (the
//!   pax form of sparse files): no image archive writer produces them, and expanded they are
//!   bytes the archive does not hold.
//!
//! It stops checking after the first all-zero block (where the tar crate stops reading) and at
//! a header the tar crate will refuse itself (an unparsable size).

use std::io::{self, Read};

/// Largest GNU long name, long link or pax record accepted by default. Real ones hold a path
/// of at most 4096 bytes (plus a few short keys); 64 KiB is generous.
pub const DEFAULT_MAX_HEADER: u64 = 64 << 10;

const BLOCK: u64 = 512;

/// Why the guard stopped the stream (carried inside the `io::Error` it returns).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{why}")]
pub struct Refused {
    /// The member, as far as the stream has named it.
    pub member: String,
    pub why: String,
    /// A refused long name: its first bytes, read after the refusal, name the member.
    peek: bool,
}

/// What the data now passing through belongs to.
enum Collect {
    Nothing,
    /// A pax local record (`x`), kept to know the next member's size and name.
    Pax(Vec<u8>),
    /// A GNU long name (`L`), kept to name the next member.
    LongName(Vec<u8>),
}

/// A reader that passes every byte through unchanged and fails the read that completes a
/// header the importer must not let the tar crate act on.
pub struct TarGuard<R> {
    inner: R,
    max: u64,
    /// Bytes passed so far.
    offset: u64,
    header: [u8; 512],
    filled: usize,
    /// Data and padding of the current member still to pass.
    data_left: u64,
    /// Of those, the bytes of the record being collected.
    record_left: u64,
    collect: Collect,
    /// The pax record and long name that describe the next member.
    pax: Option<Vec<u8>>,
    long_name: Option<Vec<u8>>,
    done: bool,
}

impl<R> TarGuard<R> {
    pub fn new(inner: R, max_header: u64) -> Self {
        TarGuard {
            inner,
            max: max_header,
            offset: 0,
            header: [0; 512],
            filled: 0,
            data_left: 0,
            record_left: 0,
            collect: Collect::Nothing,
            pax: None,
            long_name: None,
            done: false,
        }
    }

    /// Follows `bytes`, the next bytes of the stream.
    fn follow(&mut self, mut bytes: &[u8]) -> Result<(), Refused> {
        while !bytes.is_empty() && !self.done {
            if self.data_left > 0 {
                let n = (self.data_left.min(bytes.len() as u64)) as usize;
                let take = (self.record_left.min(n as u64)) as usize;
                if take > 0 {
                    match &mut self.collect {
                        Collect::Pax(v) | Collect::LongName(v) => {
                            v.extend_from_slice(&bytes[..take])
                        }
                        Collect::Nothing => {}
                    }
                    self.record_left -= take as u64;
                    if self.record_left == 0 {
                        self.end_record();
                    }
                }
                self.data_left -= n as u64;
                self.offset += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (512 - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            self.offset += n as u64;
            bytes = &bytes[n..];
            if self.filled == 512 {
                self.filled = 0;
                self.on_header(bytes)?;
            }
        }
        Ok(())
    }

    fn end_record(&mut self) {
        match std::mem::replace(&mut self.collect, Collect::Nothing) {
            Collect::Pax(v) => self.pax = Some(v),
            Collect::LongName(v) => self.long_name = Some(v),
            Collect::Nothing => {}
        }
    }

    /// A complete header. `after` is what follows it in the current read.
    fn on_header(&mut self, after: &[u8]) -> Result<(), Refused> {
        if self.header.iter().all(|&b| b == 0) {
            // The end of the archive for the tar crate (it does not skip zero blocks).
            self.done = true;
            return Ok(());
        }
        let h = tar::Header::from_byte_slice(&self.header);
        let Ok(mut size) = h.entry_size() else {
            // The tar crate refuses this header itself.
            self.done = true;
            return Ok(());
        };
        let t = h.entry_type();
        let at = self.offset - BLOCK;
        // As the tar crate: only GNU and ustar headers make L, K and x records (others are
        // returned as members, which the importer refuses).
        let recognized = h.as_gnu().is_some() || h.as_ustar().is_some();
        let extension = t.is_gnu_longname()
            || t.is_gnu_longlink()
            || t.is_pax_local_extensions()
            || t.is_pax_global_extensions();
        if extension && size > self.max {
            let what = if t.is_gnu_longname() {
                "a GNU long name"
            } else if t.is_gnu_longlink() {
                "a GNU long link name"
            } else if t.is_pax_global_extensions() {
                "a pax global header"
            } else {
                "a pax extended header"
            };
            let long = t.is_gnu_longname() || t.is_gnu_longlink();
            let mut r = Refused {
                why: format!(
                    "{what} of {size} bytes (at byte {at} of the archive), over the limit of {} bytes for long names and pax headers",
                    self.max
                ),
                member: if long {
                    format!("the member after byte {at}")
                } else {
                    self.name_of(h)
                },
                peek: long,
            };
            if long && !after.is_empty() {
                r.named_by(after);
            }
            return Err(r);
        }
        let record = recognized
            && (t.is_gnu_longname() || t.is_gnu_longlink() || t.is_pax_local_extensions());
        if record {
            self.collect = if t.is_pax_local_extensions() {
                Collect::Pax(Vec::with_capacity(size as usize))
            } else if t.is_gnu_longname() {
                Collect::LongName(Vec::with_capacity(size as usize))
            } else {
                Collect::Nothing
            };
            self.record_left = size;
            if size == 0 {
                self.end_record();
            }
        } else {
            // A member: the pending records are its own (the tar crate applies a pax `size`
            // only to a member that is not itself an extension record).
            let pax = self.pax.take();
            let sparse_pax = pax.as_deref().is_some_and(|p| {
                tar::PaxExtensions::new(p)
                    .any(|e| e.is_ok_and(|e| e.key_bytes().starts_with(b"GNU.sparse.")))
            });
            if t.is_gnu_sparse() || sparse_pax {
                let member = self.name_with(h, pax.as_deref());
                let expanded = h
                    .as_gnu()
                    .and_then(|g| g.real_size().ok())
                    .map(|s| format!(", {s} bytes expanded from {size} in the archive"))
                    .unwrap_or_default();
                return Err(Refused {
                    member,
                    why: format!(
                        "a GNU sparse file{expanded}: image archives never hold sparse members, and their holes are bytes the archive does not contain"
                    ),
                    peek: false,
                });
            }
            if !extension && let Some(s) = pax.as_deref().and_then(pax_size) {
                size = s;
            }
            self.long_name = None;
        }
        self.data_left = size.div_ceil(BLOCK).saturating_mul(BLOCK);
        Ok(())
    }

    fn name_of(&self, h: &tar::Header) -> String {
        self.name_with(h, self.pax.as_deref())
    }

    /// The member's name as the tar crate will give it: a long name, else a pax `path`, else
    /// the header's.
    fn name_with(&self, h: &tar::Header, pax: Option<&[u8]>) -> String {
        if let Some(n) = &self.long_name {
            let n = n.split(|&b| b == 0).next().unwrap_or_default();
            return String::from_utf8_lossy(n).into_owned();
        }
        if let Some(p) = pax.and_then(|p| {
            tar::PaxExtensions::new(p)
                .flatten()
                .find(|e| e.key_bytes() == b"path")
                .map(|e| e.value_bytes().to_vec())
        }) {
            return String::from_utf8_lossy(&p).into_owned();
        }
        String::from_utf8_lossy(&h.path_bytes()).into_owned()
    }
}

impl Refused {
    /// Names the member by the first bytes of its refused long name.
    fn named_by(&mut self, start: &[u8]) {
        let start = start.split(|&b| b == 0).next().unwrap_or_default();
        if !start.is_empty() {
            self.member = format!("{}…", String::from_utf8_lossy(start));
        }
        self.peek = false;
    }
}

/// Bytes of a refused long name read to name its member in the error.
const PEEK: usize = 64;

/// The `size` of a pax record exactly as the tar crate reads it: the first `size` key, if the
/// records before it parse and its value is a decimal `u64`.
fn pax_size(p: &[u8]) -> Option<u64> {
    for e in tar::PaxExtensions::new(p) {
        let e = e.ok()?;
        if e.key() != Ok("size") {
            continue;
        }
        return e.value().ok()?.parse().ok();
    }
    None
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(mut r) = self.follow(&buf[..n]) {
            if r.peek {
                // The stream is abandoned: a few more bytes of it name the member.
                let mut start = Vec::with_capacity(PEEK);
                let _ = (&mut self.inner).take(PEEK as u64).read_to_end(&mut start);
                r.named_by(&start);
            }
            return Err(io::Error::new(io::ErrorKind::InvalidData, r));
        }
        Ok(n)
    }
}
