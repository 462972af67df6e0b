//! The read-only distribution API: one request head in, one response out. Handlers are
//! synchronous (they open files, read manifests, may rebuild a snapshot or check a bcrypt
//! password); the server runs them on its bounded blocking pool and moves the bytes itself.

use std::fs::File;

use ocitool_digest::Digest;
use ocitool_spec::media;
use ocitool_spec::views::Checked;
use serde_json::{Value, json};

use crate::auth::Htpasswd;
use crate::catalog::{Catalog, Snapshot};
use crate::http::{self, Head, Method, RangeAnswer};
use crate::names::Repository;
use crate::route::{self, Reference, Route, RouteError};

/// Most entries in one page of `tags/list` or `_catalog`, whatever `n` asks for.
pub const MAX_PAGE: usize = 10_000;

/// What every handler sees.
pub struct State {
    pub catalog: Catalog,
    pub auth: Option<Htpasswd>,
    /// Tells the operator about a damaged blob or a refused file (not the client).
    pub notify: Box<dyn Fn(&str) + Send + Sync>,
}

/// A response: status, header fields (the server adds `Content-Length`, `Date`, the API
/// version and `Connection`), and a body, which a HEAD request does not get.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub fields: Vec<(&'static str, String)>,
    pub body: Body,
    /// The authenticated user, for the access log.
    pub user: Option<String>,
}

#[derive(Debug)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `offset`: sent with sendfile on plain connections.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Response {
    fn new(status: u16) -> Response {
        Response {
            status,
            fields: Vec::new(),
            body: Body::Empty,
            user: None,
        }
    }

    fn field(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.fields.push((name, value.into()));
        self
    }

    fn json(status: u16, content_type: &str, value: &Value) -> Response {
        let mut body = serde_json::to_vec(value).expect("JSON values serialize");
        body.push(b'\n');
        Response {
            body: Body::Bytes(body),
            ..Response::new(status).field("Content-Type", content_type)
        }
    }

    /// A distribution-spec error: `{"errors":[{"code","message"}]}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Response {
        Response::json(
            status,
            "application/json; charset=utf-8",
            &json!({"errors": [{"code": code, "message": message.into()}]}),
        )
    }

    fn text(status: u16, text: &str) -> Response {
        Response {
            body: Body::Bytes(text.as_bytes().to_vec()),
            ..Response::new(status).field("Content-Type", "text/plain; charset=utf-8")
        }
    }
}

/// Answers one request.
pub fn handle(state: &State, head: &Head) -> Response {
    let user = match &state.auth {
        None => None,
        Some(auth) => match auth.check(head.authorization.as_deref()) {
            Some(user) => Some(user),
            None => {
                return Response::error(401, "UNAUTHORIZED", "authentication required").field(
                    "WWW-Authenticate",
                    "Basic realm=\"ocitool serve\", charset=\"UTF-8\"",
                );
            }
        },
    };
    let mut response = dispatch(state, head);
    response.user = user;
    response
}

fn dispatch(state: &State, head: &Head) -> Response {
    if let Method::Other(m) = &head.method {
        return Response::error(
            405,
            "UNSUPPORTED",
            format!(
                "this registry is read-only (ocitool serve): {} is not supported",
                route::printable(m)
            ),
        )
        .field("Allow", "GET, HEAD");
    }
    let Some((path, query)) = http::split_target(&head.target) else {
        return Response::text(400, "400 bad request target\n");
    };
    let route = match route::route(path) {
        Ok(r) => r,
        Err(RouteError::NotFound) => return Response::text(404, "404 page not found\n"),
        Err(RouteError::NameInvalid(n)) => {
            return Response::error(
                400,
                "NAME_INVALID",
                format!("invalid repository name {n:?}"),
            );
        }
        Err(RouteError::DigestInvalid(m)) => return Response::error(400, "DIGEST_INVALID", m),
        Err(RouteError::TagInvalid(t)) => {
            return Response::error(
                404,
                "MANIFEST_UNKNOWN",
                format!("{t:?} is neither a tag nor a digest"),
            );
        }
    };
    let params = http::query(query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let snapshot = match route {
        Route::Base => {
            return Response::json(200, "application/json; charset=utf-8", &json!({}));
        }
        Route::Upload => {
            return Response::error(
                404,
                "BLOB_UPLOAD_UNKNOWN",
                "this registry is read-only (ocitool serve): there are no uploads",
            );
        }
        _ => state.catalog.snapshot(),
    };
    let lookup = |name: &str| match snapshot.repository(name, param("ns")) {
        Some(r) => Ok(r),
        None => Err(Response::error(
            404,
            "NAME_UNKNOWN",
            format!("repository {name} is not served here"),
        )),
    };
    let result = match &route {
        Route::Catalog => catalog(&snapshot, param("n"), param("last")),
        Route::Tags { name } => lookup(name).and_then(|r| tags(name, r, param("n"), param("last"))),
        Route::Manifest { name, reference } => {
            lookup(name).and_then(|r| manifest(state, &snapshot, head, name, r, reference))
        }
        Route::Blob { name, digest } => lookup(name).and_then(|r| blob(state, head, r, digest)),
        Route::Referrers { name, digest } => {
            lookup(name).map(|r| referrers(&snapshot, r, digest, param("artifactType")))
        }
        Route::Base | Route::Upload => unreachable!("answered above"),
    };
    result.unwrap_or_else(|e| e)
}

/// `n` and `last` applied to sorted `items`: the page and, when more follow, the `Link`.
fn page<'a>(
    items: impl Iterator<Item = &'a str>,
    n: Option<&str>,
    last: Option<&str>,
    link_path: &str,
) -> Result<(Vec<&'a str>, Option<String>), Response> {
    let limit = match n {
        None | Some("") => MAX_PAGE,
        Some(s) => match s.parse::<usize>() {
            Ok(v) => v.min(MAX_PAGE),
            Err(_) => {
                return Err(Response::error(
                    400,
                    "PAGINATION_NUMBER_INVALID",
                    format!(
                        "invalid number of results requested: {}",
                        route::printable(s)
                    ),
                ));
            }
        },
    };
    let mut rest = items.filter(|i| last.is_none_or(|l| *i > l)).peekable();
    let page: Vec<&str> = rest.by_ref().take(limit).collect();
    let link = match (page.last(), rest.peek()) {
        (Some(l), Some(_)) => Some(format!(
            "<{link_path}?n={limit}&last={}>; rel=\"next\"",
            percent_encoding::utf8_percent_encode(l, percent_encoding::NON_ALPHANUMERIC)
        )),
        _ => None,
    };
    Ok((page, link))
}

fn with_link(mut r: Response, link: Option<String>) -> Response {
    if let Some(l) = link {
        r.fields.push(("Link", l));
    }
    r
}

fn catalog(snapshot: &Snapshot, n: Option<&str>, last: Option<&str>) -> Result<Response, Response> {
    let (names, link) = page(
        snapshot.repositories.keys().map(String::as_str),
        n,
        last,
        "/v2/_catalog",
    )?;
    Ok(with_link(
        Response::json(
            200,
            "application/json; charset=utf-8",
            &json!({ "repositories": names }),
        ),
        link,
    ))
}

fn tags(
    name: &str,
    repo: &Repository,
    n: Option<&str>,
    last: Option<&str>,
) -> Result<Response, Response> {
    let (tags, link) = page(
        repo.tags.keys().map(String::as_str),
        n,
        last,
        &format!("/v2/{name}/tags/list"),
    )?;
    Ok(with_link(
        Response::json(
            200,
            "application/json; charset=utf-8",
            &json!({ "name": name, "tags": tags }),
        ),
        link,
    ))
}

/// Whether an `If-None-Match` field names `etag` (or is `*`).
fn none_match(field: Option<&str>, etag: &str) -> bool {
    field.is_some_and(|f| {
        f.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*")
    })
}

fn etag(digest: &Digest) -> String {
    format!("\"{digest}\"")
}

fn manifest(
    state: &State,
    snapshot: &Snapshot,
    head: &Head,
    name: &str,
    repo: &Repository,
    reference: &Reference,
) -> Result<Response, Response> {
    let unknown = |what: String| Response::error(404, "MANIFEST_UNKNOWN", what);
    let (digest, media_type, size) = match reference {
        Reference::Tag(tag) => {
            let t = repo
                .tags
                .get(tag)
                .ok_or_else(|| unknown(format!("manifest unknown: {name}:{tag}")))?;
            (&t.digest, t.media_type.as_str(), t.size)
        }
        Reference::Digest(d) => {
            let doc = snapshot.views[repo.layout]
                .documents
                .get(d)
                .ok_or_else(|| unknown(format!("manifest unknown: {name}@{d}")))?;
            (d, doc.media_type.as_str(), doc.size)
        }
    };
    if !http::accepts(&head.accept, media_type) {
        // What Distribution answers; converting the document would change its digest.
        return Err(unknown(format!(
            "{name}: the manifest is a {media_type}, which the Accept header does not list"
        )));
    }
    let tag = etag(digest);
    let fields = |r: Response| {
        r.field("Docker-Content-Digest", digest.to_string())
            .field("ETag", tag.clone())
    };
    if none_match(head.if_none_match.as_deref(), &tag) {
        return Ok(fields(Response::new(304)));
    }
    let layout = &state.catalog.sources()[repo.layout].layout;
    let bytes = layout
        .read_json_blob(&Checked {
            digest: digest.clone(),
            size,
        })
        .map_err(|e| match e {
            ocitool_layout::Error::MissingBlob { .. } => unknown(format!(
                "manifest unknown: {name}@{digest} is not in the layout"
            )),
            e => {
                (state.notify)(&format!("cannot serve manifest {digest}: {e}"));
                Response::error(
                    500,
                    "UNKNOWN",
                    format!("manifest {digest} cannot be read on the server"),
                )
            }
        })?;
    let mut r = fields(Response::new(200).field("Content-Type", media_type));
    if matches!(reference, Reference::Digest(_)) {
        r.fields
            .push(("Cache-Control", "max-age=31536000".to_string()));
    }
    r.body = Body::Bytes(bytes);
    Ok(r)
}

fn blob(
    state: &State,
    head: &Head,
    repo: &Repository,
    digest: &Digest,
) -> Result<Response, Response> {
    let layout = &state.catalog.sources()[repo.layout].layout;
    let (file, size) = layout.open_blob(digest).map_err(|e| {
        if !matches!(e, ocitool_layout::Error::MissingBlob { .. }) {
            (state.notify)(&format!("refused to serve blob {digest}: {e}"));
        }
        Response::error(
            404,
            "BLOB_UNKNOWN",
            format!("blob unknown to registry: {digest}"),
        )
    })?;
    let tag = etag(digest);
    let base = |status: u16| {
        Response::new(status)
            .field("Docker-Content-Digest", digest.to_string())
            .field("ETag", tag.clone())
            .field("Accept-Ranges", "bytes")
            .field("Cache-Control", "max-age=31536000")
    };
    if none_match(head.if_none_match.as_deref(), &tag) {
        return Ok(base(304));
    }
    let answer = http::parse_range(head.range.as_deref(), head.if_range.as_deref(), &tag, size);
    Ok(match answer {
        RangeAnswer::Full => Response {
            body: Body::File {
                file,
                offset: 0,
                len: size,
            },
            ..base(200).field("Content-Type", "application/octet-stream")
        },
        RangeAnswer::Partial { start, end } => Response {
            body: Body::File {
                file,
                offset: start,
                len: end - start + 1,
            },
            ..base(206)
                .field("Content-Type", "application/octet-stream")
                .field("Content-Range", format!("bytes {start}-{end}/{size}"))
        },
        RangeAnswer::Unsatisfiable => Response {
            body: Body::Bytes(b"range not satisfiable\n".to_vec()),
            ..base(416)
                .field("Content-Type", "text/plain; charset=utf-8")
                .field("Content-Range", format!("bytes */{size}"))
        },
    })
}

fn referrers(
    snapshot: &Snapshot,
    repo: &Repository,
    digest: &Digest,
    artifact_type: Option<&str>,
) -> Response {
    let filter = artifact_type.filter(|t| !t.is_empty());
    let manifests: Vec<&Value> = snapshot.views[repo.layout]
        .referrers
        .get(digest)
        .into_iter()
        .flatten()
        .filter(|r| filter.is_none_or(|f| r.artifact_type.as_deref() == Some(f)))
        .map(|r| &r.descriptor)
        .collect();
    let r = Response::json(
        200,
        media::OCI_INDEX,
        &json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests}),
    );
    match filter {
        Some(_) => r.field("OCI-Filters-Applied", "artifactType"),
        None => r,
    }
}
