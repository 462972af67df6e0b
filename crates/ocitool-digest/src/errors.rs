use crate::Digest;

/// A digest string that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    #[error("malformed digest {digest:?}: {why}")]
    Malformed { digest: String, why: &'static str },
    #[error("unsupported digest algorithm {algorithm:?} (ocitool computes sha256 and sha512)")]
    Unsupported { algorithm: String },
}

/// Content that does not match what its descriptor declares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch: declared {expected} bytes, content has {actual}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("size mismatch: declared {expected} bytes, content is longer")]
    TooLong { expected: u64 },
}

impl VerifyError {
    /// What is wrong with content of `actual_size` bytes hashing to `actual`, expected to be
    /// `expected_size` bytes hashing to `expected`: the size first, then the digest.
    pub fn compare(
        expected: &Digest,
        expected_size: u64,
        actual: &Digest,
        actual_size: u64,
    ) -> Option<VerifyError> {
        if actual_size != expected_size {
            Some(VerifyError::SizeMismatch {
                expected: expected_size,
                actual: actual_size,
            })
        } else if actual != expected {
            Some(VerifyError::DigestMismatch {
                expected: expected.clone(),
                actual: actual.clone(),
            })
        } else {
            None
        }
    }

    /// Wraps the error so it travels through `std::io` adapters (tar, flate2, `io::copy`).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }

    /// Recovers a `VerifyError` from an `io::Error` made by [`VerifyError::into_io`].
    pub fn from_io(err: &std::io::Error) -> Option<&VerifyError> {
        err.get_ref()?.downcast_ref::<VerifyError>()
    }
}
