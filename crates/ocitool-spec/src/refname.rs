//! Ref names (`org.opencontainers.image.ref.name`) and the three rules they meet:
//! - [`validate_new`]: names ocitool *creates* (`tag`, `import --tag`, `convert`, `pull`) are
//!   image references that docker, podman and containerd load (the distribution grammar:
//!   lower-case repository, tag `[\w][\w.-]{0,127}`, no digest).
//! - [`validate`]: the image-spec grammar of `annotations.md`, what `tag --allow-any` accepts.
//! - [`validate_carried`]: names ocitool *carries* (already in a layout or an archive: `copy`,
//!   `pack`/`unpack`, `export --format oci`, `import` of an oci-archive, `untag`, lookups) are
//!   kept verbatim if they are safe text, so cosign's `_cosign:…` and skopeo's bare tags
//!   written by other tools keep working.
//!
//! All three refuse a name of the form of a digest ([`is_digest_shaped`]).

/// The annotation that names a descriptor in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker's, and podman's) full image name annotation.
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// Longest ref name ocitool writes. The spec sets none; registries cap repository paths at 255
/// and tags at 128 characters, so nothing real is longer.
pub const MAX_REF_LEN: usize = 512;

/// Digest algorithms and the length of their hex. A ref name `<algorithm>:<hex>` of one of
/// these reads as a digest wherever a REF may be a digest (every ocitool command that takes
/// a REF): it could never be named again without naming another image, so it is refused.
/// These are the algorithms ocitool reads (sha256, sha512) and the other one the OCI image
/// spec registers (blake3); other `word:hex` names, such as commit-SHA tags (`app:3f2a…`),
/// stay valid.
pub const DIGEST_SHAPES: [(&str, usize); 3] = [("sha256", 64), ("sha512", 128), ("blake3", 64)];

/// Whether `name` has the form of a digest (see [`DIGEST_SHAPES`]); hex of either case.
pub fn is_digest_shaped(name: &str) -> bool {
    name.split_once(':').is_some_and(|(alg, hex)| {
        DIGEST_SHAPES
            .iter()
            .any(|&(a, n)| a == alg && hex.len() == n)
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Why a string is not a valid ref name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ref name {name:?}: {why}")]
pub struct RefNameError {
    pub name: String,
    pub why: &'static str,
}

impl RefNameError {
    fn new(name: &str, why: &'static str) -> RefNameError {
        RefNameError {
            name: name.chars().take(200).collect(),
            why,
        }
    }
}

/// What every name must be: not empty, at most [`MAX_REF_LEN`] bytes, not of the form of a
/// digest.
fn bounded_and_not_a_digest(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name.len() > MAX_REF_LEN {
        Err("it is longer than 512 bytes")
    } else if is_digest_shaped(name) {
        Err(WHY_DIGEST_SHAPED)
    } else {
        Ok(())
    }
}

/// Checks `ref ::= component ("/" component)*`,
/// `component ::= alphanum (separator alphanum)*`, `alphanum ::= [A-Za-z0-9]+`,
/// `separator ::= [-._:@+] | "--"`; a name of the form of a digest ([`is_digest_shaped`]) is
/// refused too.
pub fn validate(name: &str) -> Result<(), RefNameError> {
    let err = |why| Err(RefNameError::new(name, why));
    if let Err(why) = bounded_and_not_a_digest(name) {
        return err(why);
    }
    for component in name.split('/') {
        if component.is_empty() {
            return err("empty component (leading, trailing or double '/')");
        }
        let b = component.as_bytes();
        let mut i = 0;
        let mut expect_alnum = true;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_alphanumeric() {
                expect_alnum = false;
                i += 1;
                continue;
            }
            if expect_alnum {
                return err(if i == 0 {
                    "each component must start with a letter or digit"
                } else {
                    "separators must be single (only '--' may be doubled)"
                });
            }
            match c {
                b'-' if b.get(i + 1) == Some(&b'-') => i += 2,
                b'-' | b'.' | b'_' | b':' | b'@' | b'+' => i += 1,
                _ => {
                    return err(
                        "only letters, digits and the separators - . _ : @ + / are allowed",
                    );
                }
            }
            expect_alnum = true;
        }
        if expect_alnum {
            return err("each component must end with a letter or digit");
        }
    }
    Ok(())
}

/// Checks a name ocitool creates: an image reference docker, podman and containerd load
/// (see [`crate::reference::Reference::parse`]), with no digest, not of the form of a digest.
pub fn validate_new(name: &str) -> Result<(), RefNameError> {
    let err = |why| Err(RefNameError::new(name, why));
    if is_digest_shaped(name) {
        return err(WHY_DIGEST_SHAPED);
    }
    match crate::reference::Reference::parse(name) {
        Err(e) => err(e.why),
        Ok(r) if r.digest().is_some() => {
            err("a digest reference names an image, not a ref (give a tag)")
        }
        Ok(_) => Ok(()),
    }
}

/// Checks a name ocitool carries from a layout or an archive: safe text, kept verbatim.
/// Not empty, at most [`MAX_REF_LEN`] bytes, no control character (C0, DEL, C1), not of the
/// form of a digest.
pub fn validate_carried(name: &str) -> Result<(), RefNameError> {
    if name.chars().any(char::is_control) {
        return Err(RefNameError::new(name, "it holds a control character"));
    }
    bounded_and_not_a_digest(name).map_err(|why| RefNameError::new(name, why))
}

const WHY_DIGEST_SHAPED: &str =
    "it has the form of a digest, which is what a REF of that form means";

/// The familiar form of a full image name as docker shows it:
/// `docker.io/library/app:1.0` → `app:1.0`, `docker.io/team/app:1.0` → `team/app:1.0`,
/// `index.docker.io/...` likewise; anything else is returned unchanged. Total: any string, the
/// result a suffix of it (see [`crate::reference::familiar_str`]).
pub fn familiar(name: &str) -> &str {
    crate::reference::familiar_str(name)
}

/// Splits `repo:tag` (the tag is what follows the last ':' after the last '/'); a digest
/// reference `repo@sha256:...` yields the digest as the "tag" part with `@` kept.
pub fn split_repo_tag(name: &str) -> (&str, Option<&str>) {
    crate::reference::split_repo_tag(name)
}

/// The fully qualified docker name: `app:1.0` → `docker.io/library/app:1.0`,
/// `team/app` → `docker.io/team/app:latest`, `reg.example.com:5000/app:1` unchanged.
/// This is what containerd, podman and Docker's containerd store expect in
/// `io.containerd.image.name` (see [`crate::reference::normalize_str`]).
pub fn docker_normalize(name: &str) -> String {
    crate::reference::normalize_str(name)
}
