//! Archive member names: normalised, and refused when they could leave the archive.
//!
//! ocitool never extracts an archive by name: every regular file goes into the staging
//! directory under a random name and is then addressed by digest. Names matter only to find
//! `manifest.json`, `index.json` and the files they point at, and links are resolved inside
//! the archive's own namespace. Still, a name that is absolute or climbs with `..` is refused
//! outright, as is a link whose target would leave the archive.

use crate::errors::{Error, Result};

/// Longest member name accepted.
pub const MAX_NAME_LEN: usize = 4096;

/// Normalises a member name: `./a//b/` → `a/b`. Refuses absolute names, `..` components,
/// NUL bytes, non-UTF-8 and over-long names.
pub fn normalize(raw: &[u8]) -> Result<String> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    if raw.len() > MAX_NAME_LEN {
        return Err(Error::entry(
            &shown,
            format!("name longer than {MAX_NAME_LEN} bytes"),
        ));
    }
    let s =
        std::str::from_utf8(raw).map_err(|_| Error::entry(&shown, "name is not valid UTF-8"))?;
    if s.contains('\0') {
        return Err(Error::entry(&shown, "name contains a NUL byte"));
    }
    if s.starts_with('/') {
        return Err(Error::entry(s, "absolute path"));
    }
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(Error::entry(s, "path climbs out with '..'")),
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a symlink target against the directory of the link, lexically, inside the
/// archive: `a/b -> ../c` is `c`; `a -> ../../x` or `a -> /etc/passwd` escapes and is refused.
pub fn resolve_symlink(link: &str, target: &str) -> Result<String> {
    if target.starts_with('/') {
        return Err(Error::entry(
            link,
            format!("symlink to absolute path {target:?} leaves the archive"),
        ));
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop(); // the link's own name
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Error::entry(
                        link,
                        format!("symlink to {target:?} leaves the archive"),
                    ));
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(Error::entry(
            link,
            format!("symlink to {target:?} points at the archive root"),
        ));
    }
    Ok(parts.join("/"))
}

/// A hard link's target is a member name relative to the archive root.
pub fn resolve_hardlink(link: &str, target: &[u8]) -> Result<String> {
    let shown = String::from_utf8_lossy(target).into_owned();
    if target.starts_with(b"/") {
        return Err(Error::entry(
            link,
            format!("hard link to absolute path {shown:?} leaves the archive"),
        ));
    }
    normalize(target)
        .map_err(|_| Error::entry(link, format!("hard link to {shown:?} leaves the archive")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            normalize(b"./blobs//sha256/ab/").unwrap(),
            "blobs/sha256/ab"
        );
        assert_eq!(normalize(b"manifest.json").unwrap(), "manifest.json");
        assert_eq!(normalize(b"./").unwrap(), "");
        for bad in [
            &b"/etc/passwd"[..],
            b"../evil",
            b"a/../../b",
            b"a/..",
            b"a\0b",
            b"\xff\xfe",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn symlinks() {
        assert_eq!(
            resolve_symlink("abc/layer.tar", "../def/layer.tar").unwrap(),
            "def/layer.tar"
        );
        assert_eq!(
            resolve_symlink("abc/layer.tar", "../0123.tar").unwrap(),
            "0123.tar"
        );
        assert_eq!(resolve_symlink("a", "b").unwrap(), "b");
        assert!(resolve_symlink("abc/layer.tar", "../../x").is_err());
        assert!(resolve_symlink("a", "/etc/passwd").is_err());
        assert!(resolve_symlink("a", "..").is_err());
        assert!(resolve_hardlink("a", b"/etc/passwd").is_err());
        assert!(resolve_hardlink("a", b"../x").is_err());
        assert_eq!(resolve_hardlink("a", b"./x/y").unwrap(), "x/y");
    }
}
