//! The distribution API calls: manifests, blobs, uploads, tags and referrers, on one
//! [`Registry`]. Every manifest read is size-capped before it is read and its digest checked;
//! every manifest written goes as its exact bytes with its own media type.

use std::fs::File;

use ocitool_digest::{Algorithm, Digest};
use ocitool_spec::media;
use serde::Deserialize;
use ureq::http::Method;

use crate::client::{self, Body, Registry, Request, Response, Subject, header, read_limited};
use crate::errors::{Error, Result};

/// Every manifest type ocitool stores (registry 2.8.2 answers 404 for an OCI manifest when
/// the OCI types are missing here, even by digest).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A manifest or index as the registry holds it.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// What a HEAD of a manifest says.
#[derive(Clone, Debug)]
pub struct ManifestHead {
    pub digest: Option<Digest>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

/// How a blob got into a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uploaded {
    /// Mounted from another repository of the registry.
    Mounted,
    /// Sent.
    Sent,
}

/// The answer to a manifest PUT.
#[derive(Clone, Debug)]
pub struct Put {
    /// `OCI-Subject`: the registry indexed the manifest's subject (it has a referrers API).
    pub subject_indexed: bool,
}

fn media_base(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

impl Registry {
    /// GET a manifest by tag or digest: size-capped, hashed, checked against the digest asked
    /// for or the `Docker-Content-Digest` the registry sent.
    pub fn get_manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let mut req = Request::new(
            Method::GET,
            format!("/v2/{repository}/manifests/{reference}"),
            repository,
            false,
        )
        .header("Accept", MANIFEST_ACCEPT)
        .subject(Subject::Manifest(reference.to_string()));
        let resp = self.send(&mut req)?;
        if resp.status().as_u16() != 200 {
            return Err(self.status_error(resp, &req));
        }
        let limit = self.options().json_limit;
        if let Some(n) = content_length(&resp)
            && n > limit
        {
            return Err(Error::TooLarge {
                registry: self.name().to_string(),
                repository: repository.to_string(),
                reference: reference.to_string(),
                size: n,
                limit,
            });
        }
        let ct = header(&resp, "content-type").unwrap_or_default();
        let sent = header(&resp, "docker-content-digest");
        let bytes = read_limited(resp, limit).map_err(|e| Error::Transport {
            registry: self.name().to_string(),
            what: format!("GET manifest {reference} of {repository}"),
            why: e.to_string(),
        })?;
        let want = Digest::parse(reference)
            .ok()
            .or_else(|| sent.as_deref().and_then(|s| Digest::parse(s).ok()));
        let alg = want.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
        let digest = Digest::of(alg, &bytes);
        if let Some(w) = want
            && w != digest
        {
            return Err(Error::DigestMismatch {
                registry: self.name().to_string(),
                repository: repository.to_string(),
                what: format!("manifest {reference}"),
                expected: w,
                actual: digest.to_string(),
            });
        }
        let media_type =
            self.document_media_type(repository, reference, &bytes, media_base(&ct))?;
        let digest = if alg == Algorithm::Sha256 {
            digest
        } else {
            Digest::sha256(&bytes)
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The media type of a document: its own `mediaType`, which must agree with the
    /// `Content-Type` when that names a manifest type, else the `Content-Type`.
    fn document_media_type(
        &self,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        ct: &str,
    ) -> Result<String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            #[serde(default)]
            media_type: Option<String>,
        }
        let bad = |why: String| Error::Protocol {
            registry: self.name().to_string(),
            repository: repository.to_string(),
            what: format!("manifest {reference}"),
            why,
        };
        let own = serde_json::from_slice::<Probe>(bytes)
            .map_err(|_| bad("the registry sent a manifest that is not a JSON object".into()))?
            .media_type;
        let ct_is_doc = matches!(
            media::classify(ct),
            media::Kind::Index | media::Kind::Manifest
        );
        match own {
            Some(m) if ct_is_doc && m != ct => Err(bad(format!(
                "its mediaType {m:?} disagrees with the Content-Type {ct:?} the registry sent"
            ))),
            Some(m) => Ok(m),
            None if ct_is_doc => Ok(ct.to_string()),
            None => {
                // No type at all: its shape decides (an old OCI manifest without mediaType).
                match ocitool_spec::Document::sniff(bytes) {
                    Ok(media::Kind::Index) => Ok(media::OCI_INDEX.to_string()),
                    Ok(media::Kind::Manifest) => Ok(media::OCI_MANIFEST.to_string()),
                    _ => Err(bad(format!(
                        "neither its content nor its Content-Type {ct:?} says what it is"
                    ))),
                }
            }
        }
    }

    /// HEAD a manifest: `None` when absent.
    pub fn head_manifest(
        &self,
        repository: &str,
        reference: &str,
        push: bool,
    ) -> Result<Option<ManifestHead>> {
        let mut req = Request::new(
            Method::HEAD,
            format!("/v2/{repository}/manifests/{reference}"),
            repository,
            push,
        )
        .header("Accept", MANIFEST_ACCEPT)
        .subject(Subject::Manifest(reference.to_string()));
        let resp = self.send(&mut req)?;
        match resp.status().as_u16() {
            200 => Ok(Some(ManifestHead {
                digest: header(&resp, "docker-content-digest").and_then(|d| Digest::parse(&d).ok()),
                media_type: header(&resp, "content-type").map(|c| media_base(&c).to_string()),
                size: content_length(&resp),
            })),
            404 => Ok(None),
            _ => Err(self.status_error(resp, &req)),
        }
    }

    /// HEAD a blob: its size when present.
    pub fn head_blob(&self, repository: &str, digest: &Digest, push: bool) -> Result<Option<u64>> {
        let mut req = Request::new(
            Method::HEAD,
            format!("/v2/{repository}/blobs/{digest}"),
            repository,
            push,
        )
        .subject(Subject::Blob(digest.clone()));
        let resp = self.send(&mut req)?;
        match resp.status().as_u16() {
            200 => Ok(Some(content_length(&resp).unwrap_or(0))),
            404 => Ok(None),
            _ => Err(self.status_error(resp, &req)),
        }
    }

    /// GET a blob from `offset` on. Returns the answer (200 from the start, or 206 from
    /// `offset`) and the offset it starts at; the caller reads and verifies the bytes.
    pub(crate) fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<(Response, u64)> {
        let mut req = Request::new(
            Method::GET,
            format!("/v2/{repository}/blobs/{digest}"),
            repository,
            false,
        )
        .subject(Subject::Blob(digest.clone()));
        if offset > 0 {
            req = req.header("Range", format!("bytes={offset}-"));
        }
        let resp = self.send(&mut req)?;
        match resp.status().as_u16() {
            200 => Ok((resp, 0)),
            206 => {
                // Accept only `Content-Range: bytes N-...` with N the offset asked for.
                let start = header(&resp, "content-range").and_then(|v| {
                    let r = v.trim().strip_prefix("bytes ")?;
                    r.split('-').next()?.trim().parse::<u64>().ok()
                });
                if start == Some(offset) {
                    Ok((resp, offset))
                } else {
                    client::drain(resp);
                    Err(Error::Protocol {
                        registry: self.name().to_string(),
                        repository: repository.to_string(),
                        what: format!("GET blob {digest}"),
                        why: format!(
                            "asked for bytes from {offset}, the registry answered another range"
                        ),
                    })
                }
            }
            416 if offset > 0 => {
                client::drain(resp);
                // The partial file is longer than the blob: start over.
                self.get_blob(repository, digest, 0)
            }
            _ => Err(self.status_error(resp, &req)),
        }
    }

    /// Sends a blob to `repository` (mounting it from `mount_from` of the same registry if
    /// given and possible): POST, one streamed PATCH, PUT `?digest=`; a registry that refuses
    /// the PATCH gets a monolithic PUT instead. A failed session is cancelled (DELETE).
    pub fn upload_blob(
        &self,
        repository: &str,
        digest: &Digest,
        file: &File,
        size: u64,
        mount_from: Option<&str>,
        progress: Option<(&dyn ocitool_layout::Progress, &str)>,
    ) -> Result<Uploaded> {
        let attempts = self.options().retries + 1;
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(
                    self.options()
                        .retry_delay
                        .saturating_mul(1 << (attempt - 1).min(10)),
                );
                if let Some((p, id)) = progress {
                    p.item_finish(id);
                    p.item_start(id, size);
                }
            }
            match self.upload_once(
                repository,
                digest,
                file,
                size,
                if attempt == 0 { mount_from } else { None },
                progress,
            ) {
                Ok(u) => return Ok(u),
                Err(
                    e @ (Error::Transport { .. }
                    | Error::Status {
                        status: 500..=599 | 408 | 429,
                        ..
                    }),
                ) => {
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn upload_once(
        &self,
        repository: &str,
        digest: &Digest,
        file: &File,
        size: u64,
        mount_from: Option<&str>,
        progress: Option<(&dyn ocitool_layout::Progress, &str)>,
    ) -> Result<Uploaded> {
        // 1. POST (with a mount, when another repository of this registry has the blob).
        let mut target = format!("/v2/{repository}/blobs/uploads/");
        if let Some(from) = mount_from {
            target.push_str(&format!("?mount={digest}&from={from}"));
        }
        let mut post = Request::new(Method::POST, target, repository, true)
            .subject(Subject::Upload(digest.clone()));
        if let Some(from) = mount_from {
            post.scopes
                .insert(crate::auth::repository_scope(from, false));
        }
        let post_url = self.url(&post.target)?;
        let resp = self.send(&mut post)?;
        let status = resp.status().as_u16();
        if status == 201 && mount_from.is_some() {
            client::drain(resp);
            return Ok(Uploaded::Mounted);
        }
        if status != 202 {
            if mount_from.is_some() && matches!(status, 401 | 403 | 404) {
                // A mount source the registry will not use for us: upload instead.
                client::drain(resp);
                return self.upload_once(repository, digest, file, size, None, progress);
            }
            return Err(self.status_error(resp, &post));
        }
        let mut location = self.location(&resp, &post_url, repository)?;
        client::drain(resp);

        // 2. PATCH the whole blob, streamed, with its length.
        let mut patch = Request::new(Method::PATCH, location.clone(), repository, true)
            .header("Content-Type", "application/octet-stream")
            .body(Body::File {
                file,
                len: size,
                progress,
            })
            .subject(Subject::Upload(digest.clone()));
        patch.retry = false;
        let resp = match self.send(&mut patch) {
            Ok(r) => r,
            Err(e) => {
                self.cancel(&location, repository);
                return Err(e);
            }
        };
        let status = resp.status().as_u16();
        let monolithic = match status {
            202 | 201 | 204 => {
                location = self
                    .location(&resp, &location, repository)
                    .unwrap_or(location);
                client::drain(resp);
                false
            }
            // A registry without streamed uploads: one PUT with the body.
            404 | 405 | 415 | 501 => {
                client::drain(resp);
                true
            }
            _ => {
                let e = self.status_error(resp, &patch);
                self.cancel(&location, repository);
                return Err(e);
            }
        };

        // 3. PUT ?digest= (empty, or the whole blob for a registry that took no PATCH).
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={digest}");
        let mut put = Request::new(Method::PUT, put_url, repository, true)
            .header("Content-Type", "application/octet-stream")
            .subject(Subject::Upload(digest.clone()));
        put.retry = false;
        if monolithic {
            put = put.body(Body::File {
                file,
                len: size,
                progress,
            });
        }
        let resp = match self.send(&mut put) {
            Ok(r) => r,
            Err(e) => {
                self.cancel(&location, repository);
                return Err(e);
            }
        };
        match resp.status().as_u16() {
            201 | 204 => {
                let sent = header(&resp, "docker-content-digest");
                client::drain(resp);
                if let Some(s) = sent
                    && s != digest.to_string()
                {
                    return Err(Error::DigestMismatch {
                        registry: self.name().to_string(),
                        repository: repository.to_string(),
                        what: format!("upload of {digest}"),
                        expected: digest.clone(),
                        actual: s,
                    });
                }
                Ok(Uploaded::Sent)
            }
            _ => {
                let e = self.status_error(resp, &put);
                self.cancel(&location, repository);
                Err(e)
            }
        }
    }

    fn location(&self, resp: &Response, request_url: &str, repository: &str) -> Result<String> {
        let loc = header(resp, "location").ok_or_else(|| Error::Protocol {
            registry: self.name().to_string(),
            repository: repository.to_string(),
            what: "upload".into(),
            why: "the registry started an upload without a Location".into(),
        })?;
        self.resolve_location(request_url, &loc)
    }

    /// Cancels an upload session; its outcome does not matter.
    fn cancel(&self, location: &str, repository: &str) {
        let mut req = Request::new(Method::DELETE, location.to_string(), repository, true);
        req.retry = false;
        if let Ok(r) = self.send(&mut req) {
            client::drain(r);
        }
    }

    /// PUT a manifest (by digest or tag) as its exact bytes with `media_type` as its
    /// `Content-Type`; checks the `Docker-Content-Digest` the registry answers.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
        digest: &Digest,
    ) -> Result<Put> {
        let mut req = Request::new(
            Method::PUT,
            format!("/v2/{repository}/manifests/{reference}"),
            repository,
            true,
        )
        .header("Content-Type", media_type)
        .body(Body::Bytes(bytes))
        .subject(Subject::Manifest(reference.to_string()));
        let resp = self.send(&mut req)?;
        let status = resp.status().as_u16();
        if status != 201 && status != 200 {
            if status == 400 || status == 415 {
                let e = self.status_error(resp, &req);
                if let Error::Status { code, message, .. } = &e
                    && matches!(code.as_str(), "MANIFEST_INVALID" | "UNSUPPORTED" | "")
                {
                    return Err(Error::Rejected {
                        registry: self.name().to_string(),
                        repository: repository.to_string(),
                        digest: digest.clone(),
                        media_type: media_type.to_string(),
                        message: if message.is_empty() {
                            format!("HTTP {status}")
                        } else {
                            message.clone()
                        },
                    });
                }
                return Err(e);
            }
            return Err(self.status_error(resp, &req));
        }
        let sent = header(&resp, "docker-content-digest");
        let subject_indexed = header(&resp, "oci-subject").is_some();
        client::drain(resp);
        if let Some(s) = sent
            && Digest::parse(&s).ok().as_ref() != Some(digest)
        {
            return Err(Error::DigestMismatch {
                registry: self.name().to_string(),
                repository: repository.to_string(),
                what: format!("manifest {reference}"),
                expected: digest.clone(),
                actual: s,
            });
        }
        Ok(Put { subject_indexed })
    }

    /// Every tag of a repository, following `Link` pages (at most `MAX_PAGES`), junk entries
    /// (empty, digests, `null`) left out, in the registry's order.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>> {
        const MAX_PAGES: usize = 10_000;
        #[derive(Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<Option<String>>>,
        }
        let mut out = Vec::new();
        let mut target = format!("/v2/{repository}/tags/list?n=1000");
        for _ in 0..MAX_PAGES {
            let mut req =
                Request::new(Method::GET, target.clone(), repository, false).subject(Subject::Tags);
            let url = self.url(&target)?;
            let resp = self.send(&mut req)?;
            if resp.status().as_u16() != 200 {
                return Err(self.status_error(resp, &req));
            }
            let next = header(&resp, "link").and_then(|l| next_link(&l));
            let body = read_limited(resp, 64 << 20).map_err(|e| Error::Transport {
                registry: self.name().to_string(),
                what: format!("GET tags of {repository}"),
                why: e.to_string(),
            })?;
            let page: TagList = serde_json::from_slice(&body).map_err(|_| Error::Protocol {
                registry: self.name().to_string(),
                repository: repository.to_string(),
                what: "tag list".into(),
                why: "the answer is not a tag list".into(),
            })?;
            for t in page.tags.unwrap_or_default().into_iter().flatten() {
                if ocitool_spec::reference::check_tag(&t).is_ok() && !out.contains(&t) {
                    out.push(t);
                }
            }
            match next {
                Some(n) => target = self.resolve_location(&url, &n)?,
                None => return Ok(out),
            }
        }
        Err(Error::Protocol {
            registry: self.name().to_string(),
            repository: repository.to_string(),
            what: "tag list".into(),
            why: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// The referrers of `digest` through the referrers API: `None` when the registry has
    /// none (404 or 405), else the descriptors of every page.
    pub fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<ocitool_spec::Descriptor>>> {
        let mut out = Vec::new();
        let mut target = format!("/v2/{repository}/referrers/{digest}");
        for _ in 0..1000 {
            let mut req = Request::new(Method::GET, target.clone(), repository, false)
                .header("Accept", media::OCI_INDEX)
                .subject(Subject::Manifest(format!("referrers of {digest}")));
            let url = self.url(&target)?;
            let resp = self.send(&mut req)?;
            match resp.status().as_u16() {
                200 => {}
                404 | 405 | 400 => {
                    client::drain(resp);
                    return Ok(if out.is_empty() { None } else { Some(out) });
                }
                _ => return Err(self.status_error(resp, &req)),
            }
            let next = header(&resp, "link").and_then(|l| next_link(&l));
            let body =
                read_limited(resp, self.options().json_limit).map_err(|e| Error::Transport {
                    registry: self.name().to_string(),
                    what: format!("GET referrers of {digest}"),
                    why: e.to_string(),
                })?;
            let idx: ocitool_spec::IndexView = ocitool_spec::views::parse(&body, "referrers index")
                .map_err(|_| Error::Protocol {
                    registry: self.name().to_string(),
                    repository: repository.to_string(),
                    what: format!("referrers of {digest}"),
                    why: "the answer is not an image index".into(),
                })?;
            out.extend(idx.manifests);
            match next {
                Some(n) => target = self.resolve_location(&url, &n)?,
                None => return Ok(Some(out)),
            }
        }
        Ok(Some(out))
    }
}

fn content_length(resp: &Response) -> Option<u64> {
    header(resp, "content-length").and_then(|v| v.trim().parse().ok())
}

/// The target of `Link: <...>; rel="next"`.
pub(crate) fn next_link(link: &str) -> Option<String> {
    for part in link.split(',') {
        let part = part.trim();
        let (url, params) = part.split_once(';').unwrap_or((part, ""));
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        if params.split(';').any(|p| {
            matches!(
                p.trim().replace(' ', "").as_str(),
                "rel=\"next\"" | "rel=next"
            )
        }) {
            return Some(url.to_string());
        }
    }
    None
}

/// The fallback tag of the referrers of `digest`: `<alg>-<hex>`, cut to 128 characters.
pub fn referrers_tag(digest: &Digest) -> String {
    let mut t = format!("{}-{}", digest.algorithm(), digest.encoded());
    t.truncate(128);
    t
}

/// The suffixes of cosign's tags: signatures, attestations, SBOMs.
pub const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// What a tag named after a digest is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestTag {
    /// `<alg>-<hex>`: the referrers fallback index of that digest.
    Referrers,
    /// `sha256-<hex>.sig`, `.att`, `.sbom`: cosign's signature, attestation or SBOM of it.
    Cosign,
}

/// Whether `tag` is named after a digest (`sha256-<64 hex>`, `sha512-<hex>` cut to 128
/// characters, either with a cosign suffix). Such tags are not images of their own: `--all-tags`
/// leaves them out (the referrers come with their subjects; cosign's with `--digest-tags`).
pub fn digest_tag(tag: &str) -> Option<DigestTag> {
    let (base, kind) = match tag.rsplit_once('.') {
        Some((b, suffix)) if COSIGN_SUFFIXES.contains(&suffix) => (b, DigestTag::Cosign),
        _ => (tag, DigestTag::Referrers),
    };
    let (alg, hex) = base.split_once('-')?;
    let want = match alg {
        "sha256" => 64,
        // 128 hex digits, cut with the prefix to the 128 characters of a tag.
        "sha512" => 128 - "sha512-".len(),
        _ => return None,
    };
    (hex.len() == want && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/x/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/x/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://r/a>; rel="prev", <https://r/b>; rel=next"#).as_deref(),
            Some("https://r/b")
        );
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn fallback_tags() {
        let d = Digest::sha256(b"x");
        assert_eq!(referrers_tag(&d), format!("sha256-{}", d.encoded()));
        assert_eq!(digest_tag(&referrers_tag(&d)), Some(DigestTag::Referrers));
        let long = Digest::parse(&format!("sha512:{}", "ab".repeat(64))).unwrap();
        assert_eq!(referrers_tag(&long).len(), 128);
        assert_eq!(
            digest_tag(&referrers_tag(&long)),
            Some(DigestTag::Referrers)
        );
        for s in COSIGN_SUFFIXES {
            let t = format!("{}.{s}", referrers_tag(&d));
            assert_eq!(digest_tag(&t), Some(DigestTag::Cosign), "{t}");
        }
        for plain in [
            "latest",
            "1.0",
            "sha256-abc",
            "sha256-abc.sig",
            &format!("sha256-{}", d.encoded().to_uppercase()),
            &format!("md5-{}", d.encoded()),
            &format!("{}.sig2", referrers_tag(&d)),
        ] {
            assert_eq!(digest_tag(plain), None, "{plain}");
        }
    }
}
