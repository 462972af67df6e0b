/// How long operations report progress. Implemented by the binary (a terminal bar) or
/// [`NoProgress`]. Implementations must be cheap: `advance` is called for every buffer.
pub trait Progress: Sync {
    /// A phase begins with `total` bytes to process (0 if unknown).
    fn start(&self, _what: &str, _total: u64) {}
    /// `bytes` more were processed.
    fn advance(&self, _bytes: u64) {}
    /// The phase ended.
    fn finish(&self) {}
    /// One item of the phase (a blob moving over a network) begins, with `total` bytes (0 if
    /// unknown); `id` names it in the calls that follow. For per-item bars: implementations
    /// that show only the phase need not override the item methods.
    fn item_start(&self, _id: &str, _total: u64) {}
    /// `bytes` more of item `id` were processed; they count toward the phase too (the
    /// default is [`Progress::advance`]).
    fn item_advance(&self, _id: &str, bytes: u64) {
        self.advance(bytes);
    }
    /// Item `id` ended (done, failed, or set back to start over).
    fn item_finish(&self, _id: &str) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
