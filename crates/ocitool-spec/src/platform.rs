//! Platforms (`os/arch[/variant]`) as descriptors carry them and users type them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A platform as found in an index descriptor or an image config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Why a platform string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid platform {input:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
)]
pub struct PlatformError {
    pub input: String,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            os_version: None,
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// The platform ocitool runs on, in OCI spelling.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = match arch {
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// The variant with the architecture's default filled in (arm64 → v8, arm → v7,
    /// amd64 → v1), so `linux/arm64` and `linux/arm64/v8` compare equal.
    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            (_, Some(v)) if !v.is_empty() => Some(v),
            ("arm64", _) => Some("v8"),
            ("arm", _) => Some("v7"),
            ("amd64", _) => Some("v1"),
            _ => None,
        }
    }

    /// Whether `self` (what a user asked for) selects `candidate`. A request without a
    /// variant matches the architecture's default variant.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && self.normalized_variant() == candidate.normalized_variant()
    }

    /// Whether `self` selects `candidate` ignoring variants.
    pub fn matches_os_arch(&self, candidate: &Platform) -> bool {
        self.os == candidate.os && self.architecture == candidate.architecture
    }

    /// Whether one of `wanted` (the `--platform`s a user gave) selects `candidate`: one with a
    /// variant selects that variant (defaults filled in, [`Platform::matches`]), one without
    /// selects every variant of its OS and architecture. The one rule of every command's
    /// `--platform` filter.
    pub fn any_selects(wanted: &[Platform], candidate: &Platform) -> bool {
        wanted.iter().any(|w| {
            if w.variant.is_some() {
                w.matches(candidate)
            } else {
                w.matches_os_arch(candidate)
            }
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = if self.os.is_empty() {
            "unknown"
        } else {
            &self.os
        };
        let arch = if self.architecture.is_empty() {
            "unknown"
        } else {
            &self.architecture
        };
        write!(f, "{os}/{arch}")?;
        if let Some(v) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PlatformError {
            input: s.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => {
                Ok(Platform::new(os, arch, Some(variant)))
            }
            _ => Err(err()),
        }
    }
}
