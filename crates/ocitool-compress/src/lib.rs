//! Layer and archive compression: detection by magic bytes, decoders that read every member
//! or frame, and encoders that must be finished explicitly.
//!
//! gzip and zstd are what layers use. xz and bzip2 are recognised too, and decoded for whole
//! archives (`docker load` and `podman load` read `docker save | xz`), but no OCI or Docker
//! layer media type names them, so they are never encoded and a layer in them is named, not
//! read (see [`Compression::is_layer_codec`]).
//!
//! Pitfalls this crate exists to contain (see `../shared/research/crates.md`):
//! - `flate2::GzDecoder` stops silently after the first gzip member; only `MultiGzDecoder` is
//!   ever used here, so pigz-style or eStargz layers hash to their true diff_id.
//! - zstd frames may ask for a huge window; the decoder caps it (`window_log_max`).
//! - Encoders swallow errors on drop; [`Encoder::finish`] must be called.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

/// How a byte stream is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
        }
    }

    /// Whether layers may use it: an OCI (and Docker) layer media type names it.
    pub fn is_layer_codec(self) -> bool {
        matches!(
            self,
            Compression::None | Compression::Gzip | Compression::Zstd
        )
    }

    /// Recognises gzip, zstd, xz and bzip2 by their magic bytes; anything else is `None`.
    /// bzip2's `BZh` and level digit are followed by the magic of a block or of the stream's
    /// end, so a tar whose first member is named `BZh9…` is still a tar.
    pub fn detect(prefix: &[u8]) -> Compression {
        const BZ_BLOCK: [u8; 6] = [0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
        const BZ_END: [u8; 6] = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90];
        if prefix.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if prefix.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if prefix.len() >= 10
            && prefix.starts_with(b"BZh")
            && (b'1'..=b'9').contains(&prefix[3])
            && (prefix[4..10] == BZ_BLOCK || prefix[4..10] == BZ_END)
        {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }

    /// Peeks at a buffered reader without consuming anything.
    pub fn sniff<R: BufRead>(reader: &mut R) -> io::Result<Compression> {
        // fill_buf may return fewer than 4 bytes on a short read; that only matters for
        // inputs shorter than a magic number, which are then not compressed anyway.
        let buf = reader.fill_buf()?;
        Ok(Compression::detect(buf))
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bytes per job of multi-threaded zstd. The library's default at level 3 (8 MiB) keeps about
/// 117 MiB in flight with two workers; 1 MiB jobs keep 36 MiB, with the same output size to
/// within 0.1 % and about 5 % more time (measured on the 3 GiB benchmark layout).
pub const ZSTD_JOB_SIZE: u32 = 1 << 20;

/// Largest zstd window (as a power of two) accepted by default: 128 MiB, the zstd CLI's
/// default limit. Frames written with `--long=31` need [`DecodeOptions::zstd_window_log_max`]
/// raised.
pub const DEFAULT_ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Most memory the xz decoder may use by default: 128 MiB, room for the largest dictionary
/// of `xz -9` (64 MiB). A stream that asks for more (`--lzma2=dict=1GiB`) is refused.
pub const DEFAULT_XZ_MEMLIMIT: u64 = 128 << 20;

/// Options for decoders.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    pub zstd_window_log_max: u32,
    pub xz_memlimit: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            zstd_window_log_max: DEFAULT_ZSTD_WINDOW_LOG_MAX,
            xz_memlimit: DEFAULT_XZ_MEMLIMIT,
        }
    }
}

/// The error for a codec that only whole archives use, where a layer decoder was asked for.
fn not_a_layer_codec(c: Compression) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{c} is not a layer compression (no OCI or Docker layer media type names it)"),
    )
}

/// A decoder for `compression` over `reader`. Gzip reads every member; zstd every frame; xz
/// and bzip2 every concatenated stream (`pixz`, `pbzip2`), xz within its memory limit.
pub fn decoder<'a, R: BufRead + 'a>(
    compression: Compression,
    reader: R,
    options: DecodeOptions,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(reader)?;
            d.window_log_max(options.zstd_window_log_max)?;
            Box::new(d)
        }
        Compression::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(
                options.xz_memlimit,
                liblzma::stream::CONCATENATED,
            )
            .map_err(io::Error::other)?;
            Box::new(XzMemlimit {
                inner: liblzma::bufread::XzDecoder::new_stream(reader, stream),
                limit: options.xz_memlimit,
            })
        }
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
    })
}

/// Says which limit an xz stream hit, rather than liblzma's bare "memory limit reached".
struct XzMemlimit<R> {
    inner: R,
    limit: u64,
}

impl<R: Read> Read for XzMemlimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let memlimit = e
                .get_ref()
                .and_then(|x| x.downcast_ref::<liblzma::stream::Error>())
                .is_some_and(|x| matches!(x, liblzma::stream::Error::MemLimit));
            if memlimit {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the xz stream needs more than {} MiB of memory to decode (a dictionary larger than xz -9's)",
                        self.limit >> 20
                    ),
                )
            } else {
                e
            }
        })
    }
}

/// Detects the compression of `reader` by magic bytes and returns it with a decoder.
pub fn auto_decoder<'a, R: BufRead + 'a>(
    mut reader: R,
    options: DecodeOptions,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let c = Compression::sniff(&mut reader)?;
    Ok((c, decoder(c, reader, options)?))
}

/// A decoder fed by writes: compressed bytes are written in, decompressed bytes come out
/// into the inner writer. Used where the compressed stream is already being consumed by
/// something else (an archive being staged), so one pass yields both digests.
#[allow(clippy::large_enum_variant)] // one per stream; boxing buys nothing
pub enum PushDecoder<W: Write> {
    None(W),
    Gzip(flate2::write::MultiGzDecoder<W>),
    Zstd(zstd::stream::write::Decoder<'static, W>),
}

impl<W: Write> PushDecoder<W> {
    /// Layer codecs only: xz and bzip2 are refused (`Unsupported`).
    pub fn new(compression: Compression, inner: W, options: DecodeOptions) -> io::Result<Self> {
        Ok(match compression {
            Compression::Xz | Compression::Bzip2 => return Err(not_a_layer_codec(compression)),
            Compression::None => PushDecoder::None(inner),
            Compression::Gzip => PushDecoder::Gzip(flate2::write::MultiGzDecoder::new(inner)),
            Compression::Zstd => {
                let mut raw = zstd::stream::raw::Decoder::new()?;
                raw.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(
                    options.zstd_window_log_max,
                ))?;
                PushDecoder::Zstd(zstd::stream::write::Decoder::with_decoder(inner, raw))
            }
        })
    }

    pub fn get_ref(&self) -> &W {
        match self {
            PushDecoder::None(w) => w,
            PushDecoder::Gzip(d) => d.get_ref(),
            PushDecoder::Zstd(d) => d.get_ref(),
        }
    }

    /// Ends the stream; an incomplete compressed stream is an error.
    pub fn finish(self) -> io::Result<W> {
        match self {
            PushDecoder::None(w) => Ok(w),
            PushDecoder::Gzip(d) => d.finish(),
            PushDecoder::Zstd(mut d) => {
                d.flush()?;
                d.do_finish()?;
                Ok(d.into_inner())
            }
        }
    }
}

impl<W: Write> Write for PushDecoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            PushDecoder::None(w) => w.write(buf),
            PushDecoder::Gzip(d) => d.write(buf),
            PushDecoder::Zstd(d) => d.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            PushDecoder::None(w) => w.flush(),
            PushDecoder::Gzip(d) => d.flush(),
            PushDecoder::Zstd(d) => d.flush(),
        }
    }
}

/// Settings for encoders.
#[derive(Clone, Copy, Debug, Default)]
pub struct EncodeOptions {
    /// Compression level; `None` picks the default (gzip 6, zstd 3).
    pub level: Option<i32>,
    /// zstd worker threads (0 = single-threaded in the caller's thread).
    pub zstd_workers: u32,
}

/// Errors raised before any byte is encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("compression level {level} is out of range for {compression} ({min}..={max})")]
    Level {
        compression: Compression,
        level: i32,
        min: i32,
        max: i32,
    },
    #[error("ocitool does not write {compression} (it only reads archives compressed with it)")]
    Unsupported { compression: Compression },
    #[error("cannot set up the {compression} encoder")]
    Setup {
        compression: Compression,
        #[source]
        source: io::Error,
    },
}

/// The accepted level range of each codec.
pub fn level_range(compression: Compression) -> (i32, i32) {
    match compression {
        Compression::None | Compression::Xz | Compression::Bzip2 => (0, 0),
        Compression::Gzip => (0, 9),
        Compression::Zstd => (1, 22),
    }
}

/// A compressing writer that must be finished with [`Encoder::finish`].
pub enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub fn new(
        compression: Compression,
        inner: W,
        options: EncodeOptions,
    ) -> Result<Self, EncodeError> {
        if !compression.is_layer_codec() {
            return Err(EncodeError::Unsupported { compression });
        }
        let (min, max) = level_range(compression);
        if let Some(level) = options.level
            && compression != Compression::None
            && !(min..=max).contains(&level)
        {
            return Err(EncodeError::Level {
                compression,
                level,
                min,
                max,
            });
        }
        Ok(match compression {
            // xz and bzip2 were refused above.
            Compression::None | Compression::Xz | Compression::Bzip2 => Encoder::None(inner),
            Compression::Gzip => {
                let level = options.level.unwrap_or(6) as u32;
                Encoder::Gzip(flate2::write::GzEncoder::new(
                    inner,
                    flate2::Compression::new(level),
                ))
            }
            Compression::Zstd => {
                let setup = |source| EncodeError::Setup {
                    compression,
                    source,
                };
                let mut e = zstd::stream::write::Encoder::new(inner, options.level.unwrap_or(3))
                    .map_err(setup)?;
                if options.zstd_workers > 0 {
                    e.multithread(options.zstd_workers).map_err(setup)?;
                    e.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))
                        .map_err(setup)?;
                }
                Encoder::Zstd(e)
            }
        })
    }

    /// Flushes the trailer and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// Stops a decompression that produces more than `limit` bytes, or more than `ratio` times
/// the compressed bytes read so far (plus a fixed allowance of `slack` bytes, so tiny inputs
/// of zeros are not refused).
pub struct BombGuard<R> {
    inner: R,
    produced: u64,
    limit: u64,
    ratio: u64,
    slack: u64,
    consumed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A reader that counts how many bytes pass through it, into a shared counter, so a
/// [`BombGuard`] further down the chain can compare input and output.
pub struct CountingReader<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R> CountingReader<R> {
    pub fn new(inner: R) -> (Self, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        (
            CountingReader {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.count
            .fetch_add(amt as u64, std::sync::atomic::Ordering::Relaxed);
        self.inner.consume(amt)
    }
}

/// Why a [`BombGuard`] stopped a stream.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BombError {
    #[error("decompressed data exceeds the limit of {limit} bytes")]
    Size { limit: u64 },
    #[error("decompression ratio exceeds {ratio}:1 ({produced} bytes from {consumed})")]
    Ratio {
        ratio: u64,
        produced: u64,
        consumed: u64,
    },
}

impl<R> BombGuard<R> {
    pub fn new(
        inner: R,
        consumed: std::sync::Arc<std::sync::atomic::AtomicU64>,
        limit: u64,
        ratio: u64,
        slack: u64,
    ) -> Self {
        BombGuard {
            inner,
            produced: 0,
            limit,
            ratio,
            slack,
            consumed,
        }
    }
}

impl<R: Read> Read for BombGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        if self.produced > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                BombError::Size { limit: self.limit },
            ));
        }
        let consumed = self.consumed.load(std::sync::atomic::Ordering::Relaxed);
        if self.produced > self.slack
            && self.produced
                > consumed
                    .saturating_mul(self.ratio)
                    .saturating_add(self.slack)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                BombError::Ratio {
                    ratio: self.ratio,
                    produced: self.produced,
                    consumed,
                },
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
