//! Content digests as the OCI image spec defines them (`descriptor.md`), and streaming
//! hashing and verifying wrappers.
//!
//! A [`Digest`] can only be built through [`Digest::parse`] (or from a [`Hasher`]), which
//! checks the whole grammar and accepts only the algorithms ocitool can compute (`sha256`,
//! `sha512`). So a `Digest` is always safe to turn into a path component: its encoded part
//! is lowercase hex of the exact length.
//!
//! This crate knows nothing of paths, JSON or layouts.

mod errors;
mod hash;
mod pipe;

pub use errors::{DigestError, VerifyError};
pub use hash::{Hasher, HashingReader, HashingWriter, VerifyingReader};
pub use pipe::{HashPipe, HashPipeReader};

use std::fmt;
use std::str::FromStr;

/// A digest algorithm ocitool can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// Every supported algorithm, in the order blob directories are walked.
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    /// The name used in digests and as the directory under `blobs/`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex-encoded part.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// A fresh hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        Hasher::new(self)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated digest such as `sha256:<64 lowercase hex>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    encoded: Box<str>,
}

impl Digest {
    /// Parses and validates a digest string.
    ///
    /// The string must follow the grammar of image-spec `descriptor.md`; a grammatical digest
    /// with an algorithm other than `sha256` or `sha512` is [`DigestError::Unsupported`], and a
    /// registered algorithm whose encoded part is not lowercase hex of the right length is
    /// [`DigestError::Malformed`].
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let malformed = |why: &'static str| DigestError::Malformed {
            digest: truncate_for_message(s),
            why,
        };
        let (alg, encoded) = s
            .split_once(':')
            .ok_or_else(|| malformed("no ':' separator"))?;
        if !is_algorithm_grammar(alg) {
            return Err(malformed(
                "algorithm does not match [a-z0-9]+([+._-][a-z0-9]+)*",
            ));
        }
        if encoded.is_empty()
            || !encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
        {
            return Err(malformed("encoded part does not match [a-zA-Z0-9=_-]+"));
        }
        let algorithm = Algorithm::from_name(alg).ok_or_else(|| DigestError::Unsupported {
            algorithm: truncate_for_message(alg),
        })?;
        if encoded.len() != algorithm.hex_len() {
            return Err(malformed(match algorithm {
                Algorithm::Sha256 => "sha256 needs exactly 64 hex digits",
                Algorithm::Sha512 => "sha512 needs exactly 128 hex digits",
            }));
        }
        if !encoded
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(malformed("encoded part must be lowercase hex"));
        }
        Ok(Digest {
            algorithm,
            encoded: encoded.into(),
        })
    }

    /// Builds a digest from an algorithm and a raw hash value.
    pub fn from_bytes(algorithm: Algorithm, raw: &[u8]) -> Digest {
        debug_assert_eq!(raw.len() * 2, algorithm.hex_len());
        Digest {
            algorithm,
            encoded: hex(raw).into(),
        }
    }

    /// The digest of a byte slice.
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(data);
        h.finish()
    }

    /// The sha256 digest of a byte slice.
    pub fn sha256(data: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, data)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, safe to use as a file name.
    pub fn encoded(&self) -> &str {
        &self.encoded
    }

    /// A short form for humans: the algorithm and the first 12 hex digits.
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm, &self.encoded[..12])
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.encoded)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

fn is_algorithm_grammar(alg: &str) -> bool {
    // algorithm ::= component (separator component)*; component ::= [a-z0-9]+; separator ::= [+._-]
    let mut prev_sep = true; // start behaves as if after a separator: a component must follow
    for b in alg.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => prev_sep = false,
            b'+' | b'.' | b'_' | b'-' if !prev_sep => prev_sep = true,
            _ => return false,
        }
    }
    !prev_sep
}

/// Keeps error messages readable when a hostile input is huge.
fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 160;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Lowercase hex encoding (sha2 0.11 output no longer implements `LowerHex`).
pub fn hex(raw: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(raw.len() * 2);
    for &b in raw {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests;
