//! Hashing on another thread, so that reading and writing a stream on one core and hashing it
//! on the other overlap: a single pass uses two cores.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::{Algorithm, Digest, Hasher};

/// Buffers in flight between the caller and the hashing thread.
const DEPTH: usize = 4;

/// A hasher fed by [`HashPipe::update`], which copies each chunk into a pooled buffer and hands
/// it to a background thread. Memory is bounded by `DEPTH` buffers of the largest chunk.
pub struct HashPipe {
    tx: Option<SyncSender<Vec<u8>>>,
    pool: Receiver<Vec<u8>>,
    handle: Option<JoinHandle<Hasher>>,
    count: u64,
}

impl HashPipe {
    /// Starts a hashing thread, continuing from `hasher` (which may already hold a prefix).
    pub fn spawn(hasher: Hasher) -> HashPipe {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let (back, pool) = sync_channel::<Vec<u8>>(DEPTH + 1);
        let handle = std::thread::spawn(move || {
            let mut h = hasher;
            for chunk in rx {
                h.update(&chunk);
                let _ = back.try_send(chunk);
            }
            h
        });
        HashPipe {
            tx: Some(tx),
            pool,
            handle: Some(handle),
            count: 0,
        }
    }

    pub fn new(algorithm: Algorithm) -> HashPipe {
        HashPipe::spawn(Hasher::new(algorithm))
    }

    /// Queues `data` for hashing (blocks only when `DEPTH` chunks are already waiting).
    pub fn update(&mut self, data: &[u8]) {
        let mut buf = self.pool.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        self.count += data.len() as u64;
        if let Some(tx) = &self.tx {
            // The thread only ends when the sender is dropped, so a send cannot fail.
            let _ = tx.send(buf);
        }
    }

    /// Bytes queued so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Waits for the thread and returns the digest.
    pub fn finish(mut self) -> Digest {
        drop(self.tx.take());
        let h = self
            .handle
            .take()
            .expect("finished once")
            .join()
            .expect("the hashing thread does not panic");
        h.finish()
    }
}

impl Drop for HashPipe {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A reader whose bytes are hashed on another thread as they are read.
pub struct HashPipeReader<R> {
    inner: R,
    pipe: HashPipe,
}

impl<R: std::io::Read> HashPipeReader<R> {
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        HashPipeReader {
            inner,
            pipe: HashPipe::new(algorithm),
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.pipe.count()
    }

    /// The digest and size of everything read.
    pub fn finish(self) -> (Digest, u64) {
        let n = self.pipe.count();
        (self.pipe.finish(), n)
    }
}

impl<R: std::io::Read> std::io::Read for HashPipeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pipe.update(&buf[..n]);
        Ok(n)
    }
}
