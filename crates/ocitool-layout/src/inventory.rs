//! Inventories: what blobs a site already holds, for delta bundles.
//!
//! ```json
//! {"mediaType":"application/vnd.ocitool.inventory.v1+json","blobs":[{"digest":"sha256:…","size":123}]}
//! ```
//! Made at the receiving site with `ocitool inventory`, carried back, and given to
//! `ocitool pack --exclude-inventory`. It is a statement, not a proof: `unpack` checks that
//! every blob a bundle needs is really there.

use std::collections::BTreeMap;

use ocitool_digest::Digest;
use serde::{Deserialize, Serialize};

use crate::errors::{Error, Result};
use crate::graph::list_blobs;
use crate::layout::Layout;

pub const MEDIA_TYPE: &str = "application/vnd.ocitool.inventory.v1+json";

/// Largest inventory read (about two million blobs).
pub const LIMIT: u64 = 256 << 20;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    pub media_type: String,
    pub blobs: Vec<Entry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub digest: String,
    pub size: u64,
}

/// The blob files of a layout (regular files with digest names), sorted.
pub fn of_layout(layout: &Layout) -> Result<Inventory> {
    let mut blobs: Vec<Entry> = list_blobs(layout)?
        .into_iter()
        .map(|(d, size)| Entry {
            digest: d.to_string(),
            size,
        })
        .collect();
    blobs.sort();
    Ok(Inventory {
        media_type: MEDIA_TYPE.into(),
        blobs,
    })
}

impl Inventory {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = ocitool_spec::canonical::to_vec(self);
        v.push(b'\n');
        v
    }

    /// Parses an inventory; every digest must be valid.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<BTreeMap<Digest, u64>> {
        let inv: Inventory =
            ocitool_spec::views::parse(bytes, "inventory").map_err(|source| Error::Json {
                path: origin.into(),
                source,
            })?;
        if inv.media_type != MEDIA_TYPE {
            return Err(Error::Invalid(format!(
                "{origin}: not an ocitool inventory (mediaType {:?})",
                inv.media_type
            )));
        }
        let mut out = BTreeMap::new();
        for (i, e) in inv.blobs.iter().enumerate() {
            let d = Digest::parse(&e.digest).map_err(|source| Error::Digest {
                context: format!("{origin}: blobs[{i}]"),
                source,
            })?;
            out.insert(d, e.size);
        }
        Ok(out)
    }
}
