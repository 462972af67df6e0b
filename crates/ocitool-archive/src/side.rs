//! Decompress-and-hash on a second thread: the diff_id of a compressed layer computed from the
//! same buffers that are being staged or written, without a second pass and without slowing
//! the reading thread.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use ocitool_compress::{Compression, DecodeOptions, PushDecoder};
use ocitool_digest::{Algorithm, Digest, Hasher};

const DEPTH: usize = 4;

/// Stops decompression beyond `ratio` output bytes per input byte past `slack` bytes.
#[derive(Clone, Copy, Debug)]
pub struct RatioLimit {
    pub ratio: u64,
    pub slack: u64,
}

/// Why a side decoder produced no digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SideError {
    /// The stream decompresses beyond the ratio limit.
    Bomb(String),
    /// The stream is not valid in its compression.
    Decode(String),
}

impl std::fmt::Display for SideError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SideError::Bomb(s) | SideError::Decode(s) => f.write_str(s),
        }
    }
}

/// Marks the error a [`Sink`] raises for a bomb, to tell it from a decoding error.
#[derive(Debug)]
struct BombMark(String);

impl std::fmt::Display for BombMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BombMark {}

fn classify(e: io::Error) -> SideError {
    match e.get_ref().and_then(|x| x.downcast_ref::<BombMark>()) {
        Some(b) => SideError::Bomb(b.0.clone()),
        None => SideError::Decode(e.to_string()),
    }
}

pub struct SideDecoder {
    tx: Option<SyncSender<Vec<u8>>>,
    pool: Receiver<Vec<u8>>,
    handle: Option<JoinHandle<Result<Digest, SideError>>>,
    produced: Arc<AtomicU64>,
}

/// Hashes what the decoder produces, counting it, and refuses a decompression bomb.
struct Sink {
    hasher: Hasher,
    produced: Arc<AtomicU64>,
    consumed: Arc<AtomicU64>,
    limit: RatioLimit,
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.hasher.update(b);
        let p = self.produced.fetch_add(b.len() as u64, Ordering::Relaxed) + b.len() as u64;
        let c = self.consumed.load(Ordering::Relaxed);
        if p > self.limit.slack
            && p > c
                .saturating_mul(self.limit.ratio)
                .saturating_add(self.limit.slack)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                BombMark(format!(
                    "decompresses more than {}:1 ({p} bytes from {c}; raise the limit with --max-ratio)",
                    self.limit.ratio
                )),
            ));
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SideDecoder {
    pub fn spawn(c: Compression, options: DecodeOptions, limit: RatioLimit) -> SideDecoder {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let (back, pool) = sync_channel::<Vec<u8>>(DEPTH + 1);
        let produced = Arc::new(AtomicU64::new(0));
        let consumed = Arc::new(AtomicU64::new(0));
        let sink = Sink {
            hasher: Hasher::new(Algorithm::Sha256),
            produced: produced.clone(),
            consumed: consumed.clone(),
            limit,
        };
        let handle = std::thread::spawn(move || {
            let mut dec = match PushDecoder::new(c, sink, options) {
                Ok(d) => Some(d),
                Err(e) => {
                    for _ in rx {}
                    return Err(SideError::Decode(e.to_string()));
                }
            };
            let mut failed: Option<SideError> = None;
            for chunk in rx {
                consumed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if failed.is_none()
                    && let Some(d) = dec.as_mut()
                    && let Err(e) = d.write_all(&chunk)
                {
                    failed = Some(classify(e));
                    dec = None; // keep draining so the sender never blocks
                }
                let _ = back.try_send(chunk);
            }
            if let Some(f) = failed {
                return Err(f);
            }
            match dec {
                Some(d) => d.finish().map(|s| s.hasher.finish()).map_err(classify),
                None => Err(SideError::Decode("no decoder".into())),
            }
        });
        SideDecoder {
            tx: Some(tx),
            pool,
            handle: Some(handle),
            produced,
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        let mut buf = self.pool.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        if let Some(tx) = &self.tx {
            let _ = tx.send(buf);
        }
    }

    /// Decompressed bytes so far (lags the feeding a little).
    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::Relaxed)
    }

    /// The sha256 of the whole decompressed stream, or why it could not be decompressed.
    pub fn finish(mut self) -> Result<Digest, SideError> {
        drop(self.tx.take());
        self.handle
            .take()
            .expect("finished once")
            .join()
            .unwrap_or_else(|_| Err(SideError::Decode("the decoder thread panicked".into())))
    }
}

impl Drop for SideDecoder {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
