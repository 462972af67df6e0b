//! Where the content graph reads its documents from: a [`Layout`] on disk, or anything else that
//! can hand out verified JSON documents by digest (an archive read into memory by
//! `ocitool-archive`, for `ls ARCHIVE` and `inspect ARCHIVE`).

use std::path::Path;

use ocitool_digest::Digest;
use ocitool_spec::views::Checked;

use crate::errors::{Error, Result};
use crate::layout::Layout;

/// Blobs by digest, read only. [`Graph::walk`](crate::Graph::walk) and
/// [`resolve`](crate::resolve::resolve) read through it.
pub trait BlobSource {
    /// What the blobs are read from (a layout's root, an archive's path), for messages.
    fn root(&self) -> &Path;
    /// The largest JSON document read whole.
    fn json_limit(&self) -> u64;
    /// The size of a blob, `None` when it is absent.
    fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>>;
    /// A JSON document, whole and verified (digest and size), within [`BlobSource::json_limit`].
    fn read_json_blob(&self, expected: &Checked) -> Result<Vec<u8>>;
    /// A document whose descriptor is unknown (a digest typed by a user).
    fn read_json_blob_by_digest(&self, digest: &Digest) -> Result<Vec<u8>> {
        let size = self.stat_blob(digest)?.ok_or_else(|| Error::MissingBlob {
            digest: digest.clone(),
            path: self.root().join(Layout::blob_rel(digest)),
        })?;
        self.read_json_blob(&Checked {
            digest: digest.clone(),
            size,
        })
    }
}

impl BlobSource for Layout {
    fn root(&self) -> &Path {
        Layout::root(self)
    }

    fn json_limit(&self) -> u64 {
        self.options().json_limit
    }

    fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>> {
        Layout::stat_blob(self, digest)
    }

    fn read_json_blob(&self, expected: &Checked) -> Result<Vec<u8>> {
        Layout::read_json_blob(self, expected)
    }

    fn read_json_blob_by_digest(&self, digest: &Digest) -> Result<Vec<u8>> {
        Layout::read_json_blob_by_digest(self, digest)
    }
}
