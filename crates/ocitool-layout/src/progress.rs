/// How long operations report progress. Implemented by the binary (a terminal bar) or
/// [`NoProgress`]. Implementations must be cheap: `advance` is called for every buffer.
pub trait Progress: Sync {
    /// A phase begins with `total` bytes to process (0 if unknown).
    fn start(&self, _what: &str, _total: u64) {}
    /// `bytes` more were processed.
    fn advance(&self, _bytes: u64) {}
    /// The phase ended.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
