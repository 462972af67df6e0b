//! Canonical JSON (RFC 8785: sorted keys, no insignificant white space) for the documents
//! ocitool creates. Foreign documents are never passed through here.

use canon_json::CanonJsonSerialize;
use serde::Serialize;

/// Serializes `value` canonically. Keys come out sorted whatever the map type, so the output
/// is the same on every run (oci-spec's `HashMap` annotations would otherwise reorder).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail for the types ocitool builds (string
    // keys only); a failure would be a programming error, reported as an empty document
    // that every reader rejects rather than as a panic.
    value.to_canon_json_vec().unwrap_or_default()
}
