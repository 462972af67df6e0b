//! Image references as `docker pull`, podman and the distribution spec write them:
//! `nginx`, `nginx:1.25-alpine`, `myuser/app:1.0`, `ghcr.io/org/app:latest`,
//! `localhost:5000/x`, `[::1]:5000/x`, `name@sha256:...`, `name:tag@sha256:...`.
//!
//! One place for everything that reads or writes such a name:
//! - [`Reference::parse`] applies the distribution reference grammar with Docker's
//!   normalization (`ParseNormalizedNamed`): a first path component is a registry host only if
//!   it holds a `.` or a `:`, is `localhost`, or has an upper-case letter; without one the
//!   registry is Docker Hub (`docker.io`; `index.docker.io` is an alias of it) and a one-part
//!   repository of Docker Hub is an official image under `library/`. Repository paths are
//!   lower case, tags match `[\w][\w.-]{0,127}`, and `registry/repository` is at most 255
//!   characters.
//! - Its renderings: [`Reference::normalized`] (`docker.io/library/nginx:latest`, what
//!   `io.containerd.image.name` holds), [`Reference::familiar`] (`nginx:latest`, what
//!   `docker images` shows and `import` stores as `ref.name`), and [`Reference::api_host`]
//!   (`registry-1.docker.io` for Docker Hub, the host the registry API is served from).
//! - Total functions over any string, for names that may not be references at all (a bare tag
//!   `1.0` as skopeo writes it, cosign's `_cosign:...`): [`split_repo_tag`], [`split_domain`],
//!   [`familiar_str`] and [`normalize_str`]. They follow the same rules as the parser and never
//!   fail; `refname::{familiar, split_repo_tag, docker_normalize}` are these.
//! - Names as keys, for everything that compares stored names: [`name_key`] (names docker
//!   reads as one image, "twins", share it: `nginx`, `nginx:latest`,
//!   `docker.io/library/nginx:latest`, `index.docker.io/library/nginx:latest`), with
//!   [`key_tail`] as its cheap necessary condition, and [`repository_key`] (the repository of
//!   a name, for `REPO:*` and `ls REPO`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use ocitool_digest::{Digest, DigestError};

/// Docker Hub's canonical registry name, as it appears in normalized references.
pub const DOCKER_HUB: &str = "docker.io";
/// The legacy name of Docker Hub, an alias of [`DOCKER_HUB`] in references.
pub const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key under which docker's `config.json` keeps Docker Hub credentials.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
/// The namespace of Docker Hub's official images.
pub const OFFICIAL_NAMESPACE: &str = "library";
/// The tag a reference without a tag or digest means.
pub const DEFAULT_TAG: &str = "latest";
/// Longest `registry/repository` the distribution grammar accepts.
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 128;

/// A parsed, normalized image reference: registry, repository, and a tag, a digest, both or
/// neither.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {why}")]
pub struct ReferenceError {
    /// The input (cut to 200 characters).
    pub input: String,
    pub why: &'static str,
}

// The reasons, shared with `docker::validate_repo_tag`.
pub(crate) const WHY_EMPTY: &str = "it is empty";
pub(crate) const WHY_IMAGE_ID: &str =
    "a 64-character hex string is an image ID, not a reference (write sha256:<hex> after '@')";
pub(crate) const WHY_TAG_LEN: &str = "the tag must be 1 to 128 characters";
pub(crate) const WHY_TAG_CHARS: &str =
    "the tag may hold only letters, digits, '_', '.' and '-', and must not start with '.' or '-'";
pub(crate) const WHY_NAME_LEN: &str = "the repository name must be 1 to 255 characters";
pub(crate) const WHY_HOST: &str = "the registry host is not a valid host[:port]";
pub(crate) const WHY_UPPER: &str = "repository names must be lowercase";
pub(crate) const WHY_PATH: &str = "repository path components must be lowercase letters and digits joined by '.', '_', '__' or '-'";
const WHY_DIGEST: &str = "the digest after '@' must be sha256:<64 hex> or sha512:<128 hex>";
const WHY_DIGEST_ALG: &str = "the digest algorithm is not supported (only sha256 and sha512)";

impl Reference {
    /// Parses a reference as `docker pull` does, normalizing it (see the module docs).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let err = |why| ReferenceError {
            input: s.chars().take(200).collect(),
            why,
        };
        if s.is_empty() {
            return Err(err(WHY_EMPTY));
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(err(WHY_IMAGE_ID));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                let d = Digest::parse(d).map_err(|e| {
                    err(match e {
                        DigestError::Unsupported { .. } => WHY_DIGEST_ALG,
                        _ => WHY_DIGEST,
                    })
                })?;
                (n, Some(d))
            }
            None => (s, None),
        };
        let (name, tag) = split_repo_tag(name_tag);
        if let Some(t) = tag {
            check_tag(t).map_err(err)?;
        }
        let (domain, path) = split_domain(name);
        let registry = match domain {
            Some(d) => {
                if !is_domain(d) {
                    return Err(err(WHY_HOST));
                }
                canonical_registry(d)
            }
            None => DOCKER_HUB,
        };
        if path.is_empty() {
            return Err(err(WHY_NAME_LEN));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err(WHY_UPPER));
        }
        if !path.split('/').all(is_path_component) {
            return Err(err(WHY_PATH));
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}/{path}")
        } else {
            path.to_string()
        };
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(err(WHY_NAME_LEN));
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Builds a reference from its parts, checking each as [`Reference::parse`] would. The
    /// registry is taken as given (`index.docker.io` becomes `docker.io`), the repository must
    /// already be in normal form (`library/nginx` on Docker Hub, not `nginx`).
    pub fn from_parts(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Reference, ReferenceError> {
        let shown = format!("{registry}/{repository}");
        let err = |why| ReferenceError {
            input: shown.chars().take(200).collect(),
            why,
        };
        if !is_domain(registry) {
            return Err(err(WHY_HOST));
        }
        let registry = canonical_registry(registry);
        if repository.is_empty() || registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(err(WHY_NAME_LEN));
        }
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err(WHY_UPPER));
        }
        if !repository.split('/').all(is_path_component) {
            return Err(err(WHY_PATH));
        }
        if let Some(t) = tag {
            check_tag(t).map_err(err)?;
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry as it appears in the normalized name: `docker.io`, `ghcr.io`,
    /// `localhost:5000`, `[::1]:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The `host[:port]` that serves the registry API: [`DOCKER_HUB_API`] for Docker Hub,
    /// the registry itself otherwise.
    pub fn api_host(&self) -> &str {
        if self.is_docker_hub() {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Whether the registry is Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// The repository path in normal form: `library/nginx`, `org/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The tag, or `latest` when the reference has neither a tag nor a digest; `None` for a
    /// digest-only reference.
    pub fn tag_or_default(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// `registry/repository`: `docker.io/library/nginx`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository as docker shows it: `nginx` for an official image, `user/app` for
    /// another Docker Hub repository, `ghcr.io/org/app` elsewhere.
    pub fn familiar_name(&self) -> String {
        if !self.is_docker_hub() || split_domain(&self.repository).0.is_some() {
            // `docker.io/a.b/c` stays whole: `a.b/c` would name registry `a.b`.
            return self.name();
        }
        match self.repository.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.repository.clone(),
        }
    }

    /// The fully qualified name with `:latest` when there is neither tag nor digest:
    /// `docker.io/library/nginx:latest`, what `io.containerd.image.name` holds.
    pub fn normalized(&self) -> String {
        self.render(self.name(), true)
    }

    /// The familiar name with `:latest` when there is neither tag nor digest: `nginx:latest`,
    /// `user/app:1.0`, `ghcr.io/org/app:v1`.
    pub fn familiar(&self) -> String {
        self.render(self.familiar_name(), true)
    }

    fn render(&self, mut name: String, default_tag: bool) -> String {
        match (&self.tag, &self.digest) {
            (None, None) if default_tag => {
                name.push(':');
                name.push_str(DEFAULT_TAG);
            }
            _ => {}
        }
        if let Some(t) = &self.tag {
            name.push(':');
            name.push_str(t);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(&d.to_string());
        }
        name
    }

    /// The same repository with this tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        check_tag(tag).map_err(|why| ReferenceError {
            input: tag.chars().take(200).collect(),
            why,
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository with this digest (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same reference without tag and digest.
    pub fn repo_only(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }
}

/// The fully qualified name, with the tag and digest the reference has (no default tag):
/// `docker.io/library/nginx`, `ghcr.io/org/app:1@sha256:...`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(self.name(), false))
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// `index.docker.io` is Docker Hub; any other registry is kept as written.
fn canonical_registry(domain: &str) -> &str {
    if domain == DOCKER_HUB_LEGACY {
        DOCKER_HUB
    } else {
        domain
    }
}

/// Splits `name[:tag]` (the tag is what follows the last ':' after the last '/'); a digest
/// reference `name@sha256:...` yields the digest as the "tag" part with its `@` kept. Total:
/// for any string, `repo + ":" + tag` (or `repo + tag` when the tag starts with `@`) gives the
/// string back.
pub fn split_repo_tag(name: &str) -> (&str, Option<&str>) {
    if let Some(at) = name.find('@') {
        return (&name[..at], Some(&name[at..]));
    }
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
        None => (name, None),
    }
}

/// Docker's rule for the registry part of a name (without tag): the first `/`-separated
/// component is a registry if the name has a `/` after it and the component holds a `.` or
/// a `:`, is `localhost`, or has an upper-case letter (which no repository may). Returns the
/// registry as written and the rest. Total: checks nothing else.
pub fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// The familiar form of any name, as a suffix of it: the Docker Hub registry
/// (`docker.io/`, `index.docker.io/`) is dropped, and so is `library/` before a one-part
/// repository (`docker.io/library/app:1.0` → `app:1.0`, `docker.io/team/app:1.0` →
/// `team/app:1.0`, but `docker.io/library/a/b` → `library/a/b`, as `a/b` is another
/// repository, and `docker.io/a.b/c` stays whole, as `a.b/c` names registry `a.b`). Anything
/// else is returned unchanged.
pub fn familiar_str(name: &str) -> &str {
    let (domain, rest) = split_domain(name);
    if !domain.is_some_and(|d| d == DOCKER_HUB || d == DOCKER_HUB_LEGACY)
        || split_domain(split_repo_tag(rest).0).0.is_some()
    {
        // Not Docker Hub, or `docker.io/a.b/c`, whose rest would name registry `a.b`.
        return name;
    }
    if let Some(after) = rest.strip_prefix("library/")
        && !split_repo_tag(after).0.contains('/')
    {
        return after;
    }
    rest
}

/// The fully qualified form of any name, with `:latest` when it has neither tag nor digest:
/// `app:1.0` → `docker.io/library/app:1.0`, `team/app` → `docker.io/team/app:latest`,
/// `index.docker.io/app` → `docker.io/library/app:latest`, `reg.example.com:5000/app:1`
/// unchanged. For a valid reference this is [`Reference::normalized`]; other strings are
/// completed by the same rules without being checked.
pub fn normalize_str(name: &str) -> String {
    let (repo, tag) = split_repo_tag(name);
    let (domain, path) = split_domain(repo);
    let registry = domain.map_or(DOCKER_HUB, canonical_registry);
    let mut out = String::with_capacity(name.len() + 24);
    out.push_str(registry);
    out.push('/');
    if registry == DOCKER_HUB && !path.contains('/') {
        out.push_str(OFFICIAL_NAMESPACE);
        out.push('/');
    }
    out.push_str(path);
    match tag {
        Some(t) if t.starts_with('@') => out.push_str(t),
        Some(t) => {
            out.push(':');
            out.push_str(t);
        }
        None => {
            out.push(':');
            out.push_str(DEFAULT_TAG);
        }
    }
    out
}

/// Checks a repository path as the distribution API names it (`<name>` in
/// `/v2/<name>/manifests/...`): `/`-separated components of lowercase letters and digits
/// joined by `.`, `_`, `__` or runs of `-`, at most [`MAX_NAME_LEN`] characters. This is the
/// path part of [`Reference::parse`]'s grammar, without a registry host and without Docker's
/// normalization; `ocitool serve` routes requests with it.
pub fn check_repository(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.len() > MAX_NAME_LEN {
        return Err(WHY_NAME_LEN);
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(WHY_UPPER);
    }
    if !path.split('/').all(is_path_component) {
        return Err(WHY_PATH);
    }
    Ok(())
}

/// Whether `name` is a Docker Hub registry name: `docker.io`, its legacy alias
/// `index.docker.io`, or the API host `registry-1.docker.io`.
pub fn is_docker_hub_host(name: &str) -> bool {
    matches!(name, DOCKER_HUB | DOCKER_HUB_LEGACY | DOCKER_HUB_API)
}

/// The key under which names that docker reads as one image compare equal (twins): for a
/// name that parses as an image reference, its normalized form ([`Reference::normalized`]:
/// `nginx`, `nginx:latest`, `docker.io/library/nginx:latest` and
/// `index.docker.io/library/nginx:latest` all give `docker.io/library/nginx:latest`); any
/// other name (a tag-only `_cosign:sha256-….sig`, `Upper/Case:1`, `app:1.2.3+build.5`) is
/// its own key. A normalized form always parses, so a name of the second kind never shares a
/// key with one of the first. A bare word is a repository here, as docker reads it (`1.0` is
/// `docker.io/library/1.0:latest`), so a bare tag as skopeo writes it is a twin only of that.
pub fn name_key(name: &str) -> Cow<'_, str> {
    match Reference::parse(name) {
        Ok(r) => {
            let n = r.normalized();
            if n == name {
                Cow::Borrowed(name)
            } else {
                Cow::Owned(n)
            }
        }
        Err(_) => Cow::Borrowed(name),
    }
}

/// The last component of a name's repository and its tag (`latest` when it has neither tag
/// nor digest; `@<digest>` for a digest reference), without parsing: normalizing changes
/// neither, so two names with the same [`name_key`] have the same tail. A cheap filter before
/// computing keys.
pub fn key_tail(name: &str) -> (&str, &str) {
    let (repo, tag) = split_repo_tag(name);
    let last = repo.rsplit('/').next().unwrap_or(repo);
    (last, tag.unwrap_or(DEFAULT_TAG))
}

/// Whether two names are the same image name however spelled (their [`name_key`]s agree).
pub fn same_name(a: &str, b: &str) -> bool {
    a == b || (key_tail(a) == key_tail(b) && name_key(a) == name_key(b))
}

/// The repository of a name, as a key: normalized (`registry/repository`) when the part
/// before the tag parses as a repository (`nginx:1` and `docker.io/library/nginx:2` both give
/// `docker.io/library/nginx`; `app:1.2.3+build.5` gives `docker.io/library/app`), else that
/// part as written (`_cosign` for `_cosign:sha256-….sig`).
pub fn repository_key(name: &str) -> Cow<'_, str> {
    let without_digest = name.split_once('@').map_or(name, |(n, _)| n);
    let (repo, _) = split_repo_tag(without_digest);
    match Reference::parse(repo) {
        Ok(r) if r.tag().is_none() && r.digest().is_none() => Cow::Owned(r.name()),
        _ => Cow::Borrowed(repo),
    }
}

/// Checks the tag grammar `[\w][\w.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), &'static str> {
    let b = tag.as_bytes();
    if b.is_empty() || b.len() > MAX_TAG_LEN {
        return Err(WHY_TAG_LEN);
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if !word(b[0]) || !b.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        return Err(WHY_TAG_CHARS);
    }
    Ok(())
}

/// `host[:port]`: a domain name of `[A-Za-z0-9-]` labels (no label starting or ending with
/// '-'), an IPv4 address (which that covers), or a bracketed IPv6 address; the port is
/// decimal digits.
fn is_domain(d: &str) -> bool {
    let port_ok =
        |p: Option<&str>| p.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        return !v6.is_empty()
            && v6
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
            && port_ok(port);
    }
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && port_ok(port)
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or one or more `-`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !b.get(i).is_some_and(|&c| alnum(c)) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
