//! HTTP/1.1 as far as a read-only registry needs it, as pure functions over bytes and strings
//! (no I/O, so the fuzz target `serve_request` in `crates/ocitool-fuzz` drives them directly):
//! request heads ([`parse_head`], on `httparse`), single byte ranges ([`parse_range`]),
//! content negotiation ([`accepts`]), query strings ([`split_target`], [`query`]) and
//! response heads ([`response_head`]).

use std::borrow::Cow;

/// Most header fields in a request head (httparse needs a fixed array).
pub const MAX_HEADERS: usize = 64;

/// Largest request head accepted by default (request line and header fields). Real clients
/// send well under 2 KiB; a Bearer token or a long `Accept` list stays far below this.
pub const DEFAULT_MAX_HEAD: usize = 16 << 10;

/// The request methods the server tells apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Anything else (every write method of the distribution API among them), as sent.
    Other(String),
}

impl Method {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Other(m) => m,
        }
    }
}

/// What the server uses of a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub method: Method,
    /// The request-target exactly as sent (path and query).
    pub target: String,
    /// HTTP/1.0 rather than HTTP/1.1.
    pub http10: bool,
    pub host: Option<String>,
    /// Every `Accept` field, in order.
    pub accept: Vec<String>,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub if_none_match: Option<String>,
    pub authorization: Option<String>,
    /// Whether the client wants the connection kept open after the response (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// The request carries a body (`Content-Length` above 0 or any `Transfer-Encoding`). The
    /// server never reads bodies: it answers, then closes the connection.
    pub has_body: bool,
}

/// Why a request head is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("request head larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

impl HeadError {
    /// The status that answers it.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooLarge { .. } | HeadError::TooManyHeaders => 431,
            HeadError::Malformed(_) => 400,
        }
    }
}

/// Parses one request head from the start of `buf`: `Ok(None)` while it is incomplete (and
/// under `max_head` bytes), else the head and the number of bytes it took (what follows is
/// the next pipelined request).
pub fn parse_head(buf: &[u8], max_head: usize) -> Result<Option<(Head, usize)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= max_head {
                return Err(HeadError::TooLarge { limit: max_head });
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(httparse::Error::Version) => {
            return Err(HeadError::Malformed("not an HTTP/1.x request"));
        }
        Err(_) => return Err(HeadError::Malformed("bad request line or header field")),
    };
    if consumed > max_head {
        return Err(HeadError::TooLarge { limit: max_head });
    }
    let method = match req.method.unwrap_or_default() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    let target = req.path.unwrap_or_default();
    if target.is_empty() {
        return Err(HeadError::Malformed("empty request target"));
    }
    let http10 = req.version == Some(0);
    let mut head = Head {
        method,
        target: target.to_string(),
        http10,
        host: None,
        accept: Vec::new(),
        range: None,
        if_range: None,
        if_none_match: None,
        authorization: None,
        keep_alive: !http10,
        has_body: false,
    };
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    for f in req.headers.iter() {
        let name = f.name;
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if !(is("host")
            || is("accept")
            || is("range")
            || is("if-range")
            || is("if-none-match")
            || is("authorization")
            || is("connection")
            || is("content-length")
            || is("transfer-encoding"))
        {
            continue;
        }
        let value = std::str::from_utf8(f.value)
            .map_err(|_| HeadError::Malformed("a header field value is not UTF-8"))?
            .trim_matches([' ', '\t']);
        if is("host") {
            if head.host.replace(value.to_string()).is_some() {
                return Err(HeadError::Malformed("more than one Host field"));
            }
        } else if is("accept") {
            head.accept.push(value.to_string());
        } else if is("range") {
            // Several Range fields make one list, which is then more than one range.
            head.range = Some(match head.range.take() {
                Some(r) => format!("{r},{value}"),
                None => value.to_string(),
            });
        } else if is("if-range") {
            head.if_range = Some(value.to_string());
        } else if is("if-none-match") {
            head.if_none_match = Some(value.to_string());
        } else if is("authorization") {
            if head.authorization.replace(value.to_string()).is_some() {
                return Err(HeadError::Malformed("more than one Authorization field"));
            }
        } else if is("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && http10 {
                    head.keep_alive = true;
                }
            }
        } else if is("content-length") {
            // A list of equal values is allowed (RFC 9112 6.3); anything else is smuggling.
            for v in value.split(',').map(str::trim) {
                if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HeadError::Malformed("invalid Content-Length"));
                }
                let n: u64 = v
                    .parse()
                    .map_err(|_| HeadError::Malformed("invalid Content-Length"))?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(HeadError::Malformed("conflicting Content-Length fields"));
                }
                content_length = Some(n);
            }
        } else if is("transfer-encoding") {
            chunked = true;
        }
    }
    if chunked && content_length.is_some() {
        return Err(HeadError::Malformed(
            "both Transfer-Encoding and Content-Length",
        ));
    }
    if chunked && http10 {
        return Err(HeadError::Malformed(
            "Transfer-Encoding in an HTTP/1.0 request",
        ));
    }
    if !http10 && head.host.is_none() {
        return Err(HeadError::Malformed("an HTTP/1.1 request without Host"));
    }
    head.has_body = chunked || content_length.is_some_and(|n| n > 0);
    Ok(Some((head, consumed)))
}

/// The path and the query of a request-target (origin form, or absolute form as proxies
/// send it); `None` for anything else (`*`, an authority).
pub fn split_target(target: &str) -> Option<(&str, &str)> {
    let mut t = target;
    for scheme in ["http://", "https://"] {
        // Compared as bytes: the target may hold UTF-8 (httparse lets it through), and a
        // character may straddle the scheme's length. A match is ASCII, so `rest` starts on a
        // character boundary.
        let head = t.as_bytes().get(..scheme.len());
        if head.is_some_and(|h| h.eq_ignore_ascii_case(scheme.as_bytes())) {
            let rest = &t[scheme.len()..];
            t = &rest[rest.find('/')?..];
            break;
        }
    }
    if !t.starts_with('/') {
        return None;
    }
    let t = t.split('#').next().unwrap_or(t);
    Some(match t.split_once('?') {
        Some((p, q)) => (p, q),
        None => (t, ""),
    })
}

/// The parameters of a query string, percent-decoded (`+` stays `+`: registry clients encode
/// a space as `%20`, and media types such as `application/spdx+json` hold a literal `+`).
pub fn query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k).into_owned(), decode(v).into_owned())
        })
        .collect()
}

fn decode(s: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

/// The answer to a `Range` field for a resource of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable range: the whole resource, 200. Also for a unit other than bytes and for
    /// several ranges (the server sends no multipart bodies; RFC 9110 lets it ignore Range).
    Full,
    /// Bytes `start..=end` (end < size), 206.
    Partial { start: u64, end: u64 },
    /// A malformed or unsatisfiable byte range, 416.
    Unsatisfiable,
}

/// Decides what to send for `range` (the Range field, if any) over `size` bytes; `if_range`
/// is the If-Range field, honoured only when it equals `etag` (a strong validator).
pub fn parse_range(
    range: Option<&str>,
    if_range: Option<&str>,
    etag: &str,
    size: u64,
) -> RangeAnswer {
    let Some(range) = range else {
        return RangeAnswer::Full;
    };
    if if_range.is_some_and(|v| v.trim() != etag) {
        return RangeAnswer::Full;
    }
    let range = range.trim_matches([' ', '\t']);
    let Some((unit, set)) = range.split_once('=') else {
        return RangeAnswer::Unsatisfiable;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeAnswer::Full;
    }
    let mut specs = set
        .split(',')
        .map(|s| s.trim_matches([' ', '\t']))
        .filter(|s| !s.is_empty());
    let Some(spec) = specs.next() else {
        return RangeAnswer::Unsatisfiable;
    };
    if specs.next().is_some() {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeAnswer::Unsatisfiable;
    };
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // A number past u64 is a position past any resource.
        Some(s.bytes().fold(0u64, |n, b| {
            n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        }))
    };
    if first.is_empty() {
        // bytes=-N: the last N bytes.
        return match number(last) {
            Some(n) if n > 0 && size > 0 => RangeAnswer::Partial {
                start: size - n.min(size),
                end: size - 1,
            },
            _ => RangeAnswer::Unsatisfiable,
        };
    }
    let Some(start) = number(first) else {
        return RangeAnswer::Unsatisfiable;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(e) if e >= start => e,
            _ => return RangeAnswer::Unsatisfiable,
        }
    };
    if start >= size {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Partial {
        start,
        end: end.min(size - 1),
    }
}

/// Whether the `Accept` fields allow `media_type`. No field (or only empty ones) allows
/// everything; otherwise some media range with a non-zero `q` must match it exactly, by its
/// type (`application/*`) or as `*/*`. Parameters of the stored type are ignored.
pub fn accepts(fields: &[String], media_type: &str) -> bool {
    let stored = media_type.split(';').next().unwrap_or("").trim();
    let (stype, _) = stored.split_once('/').unwrap_or((stored, ""));
    let mut any = false;
    for range in fields.iter().flat_map(|f| f.split(',')) {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or("").trim();
        if essence.is_empty() {
            continue;
        }
        any = true;
        let refused = parts.any(|p| {
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        });
        if refused {
            continue;
        }
        let matched = essence == "*/*"
            || essence.eq_ignore_ascii_case(stored)
            || essence
                .strip_suffix("/*")
                .is_some_and(|t| t.eq_ignore_ascii_case(stype));
        if matched {
            return true;
        }
    }
    !any
}

/// The reason phrase of the statuses the server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A response head: the status line, `fields` in order, then the blank line. `Connection:
/// close` or `keep-alive` (the latter for HTTP/1.0 clients only) is added from `close`.
pub fn response_head(status: u16, fields: &[(&str, String)], close: bool, http10: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        // Values come from the layout (media types, digests) or from the server; a CR or LF
        // in one would split the response.
        out.extend(value.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        parse_head(raw.as_bytes(), DEFAULT_MAX_HEAD)
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn heads_are_parsed_and_pipelined_requests_kept() {
        let raw = "GET /v2/app/manifests/1.0 HTTP/1.1\r\nHost: x\r\nAccept: a/b\r\naccept: c/d\r\nRange: bytes=1-2\r\n\r\nHEAD /v2/ HTTP/1.1\r\n";
        let (h, n) = parse_head(raw.as_bytes(), DEFAULT_MAX_HEAD)
            .unwrap()
            .unwrap();
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.target, "/v2/app/manifests/1.0");
        assert_eq!(h.accept, ["a/b", "c/d"]);
        assert_eq!(h.range.as_deref(), Some("bytes=1-2"));
        assert!(h.keep_alive && !h.has_body);
        assert!(raw[n..].starts_with("HEAD /v2/"));
        // The second head is incomplete.
        assert_eq!(
            parse_head(&raw.as_bytes()[n..], DEFAULT_MAX_HEAD).unwrap(),
            None
        );
    }

    #[test]
    fn connection_and_bodies() {
        assert!(!head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(head("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n").has_body);
        assert!(!head("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").has_body);
        assert!(head("PATCH / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").has_body);
        assert!(head("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 7, 7\r\n\r\n").has_body);
    }

    #[test]
    fn bad_heads_are_refused() {
        let err = |raw: &str| parse_head(raw.as_bytes(), DEFAULT_MAX_HEAD).unwrap_err();
        assert_eq!(err("GET / HTTP/1.1\r\n\r\n").status(), 400, "no Host");
        assert_eq!(
            err("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status(),
            400
        );
        assert_eq!(
            err("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .status(),
            400
        );
        assert_eq!(
            err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
                .status(),
            400
        );
        assert_eq!(
            err("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n").status(),
            400
        );
        assert_eq!(err("GET / HTTP/2.0\r\n\r\n").status(), 400);
        assert_eq!(
            err("\x16\x03\x01\x02\x00\x01\x00").status(),
            400,
            "TLS on plain"
        );
        assert_eq!(err("GET /\0 HTTP/1.1\r\n\r\n").status(), 400);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        assert_eq!(
            err(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")).status(),
            431
        );
    }

    #[test]
    fn heads_are_capped() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(100));
        assert_eq!(
            parse_head(long.as_bytes(), 64),
            Err(HeadError::TooLarge { limit: 64 })
        );
        assert_eq!(parse_head(&long.as_bytes()[..50], 64), Ok(None));
        let full = format!("{long}Host: x\r\n\r\n");
        assert!(parse_head(full.as_bytes(), 64).is_err());
        assert!(parse_head(full.as_bytes(), 4096).unwrap().is_some());
    }

    #[test]
    fn targets_and_queries() {
        assert_eq!(split_target("/v2/a?n=1#x"), Some(("/v2/a", "n=1")));
        assert_eq!(split_target("http://host:5000/v2/?q"), Some(("/v2/", "q")));
        assert_eq!(split_target("*"), None);
        assert_eq!(split_target("host:443"), None);
        assert_eq!(split_target("http://host"), None);
        // A character across the scheme's length (found by the fuzzer).
        assert_eq!(split_target("abcdef\u{e9}xyz"), None);
        assert_eq!(split_target("https:/\u{e9}"), None);
        assert_eq!(split_target("HTTP://h/\u{e9}"), Some(("/\u{e9}", "")));
        assert_eq!(
            query("n=2&last=a%2Fb&artifactType=application/spdx+json&&x"),
            [
                ("n".into(), "2".into()),
                ("last".into(), "a/b".into()),
                ("artifactType".into(), "application/spdx+json".into()),
                ("x".into(), String::new())
            ]
        );
    }

    #[test]
    fn ranges() {
        use RangeAnswer::*;
        let r = |v: &str, size| parse_range(Some(v), None, "\"e\"", size);
        assert_eq!(parse_range(None, None, "\"e\"", 10), Full);
        assert_eq!(r("bytes=0-9", 10), Partial { start: 0, end: 9 });
        assert_eq!(r("bytes=2-", 10), Partial { start: 2, end: 9 });
        assert_eq!(r("bytes=2-4", 10), Partial { start: 2, end: 4 });
        assert_eq!(r("Bytes = 2-400", 10), Partial { start: 2, end: 9 });
        assert_eq!(r("bytes=-3", 10), Partial { start: 7, end: 9 });
        assert_eq!(r("bytes=-30", 10), Partial { start: 0, end: 9 });
        assert_eq!(
            r("bytes=0-99999999999999999999999999", 10),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(r("bytes=10-", 10), Unsatisfiable);
        assert_eq!(r("bytes=99999999999999999999999-", 10), Unsatisfiable);
        assert_eq!(r("bytes=5-4", 10), Unsatisfiable);
        assert_eq!(r("bytes=-0", 10), Unsatisfiable);
        assert_eq!(r("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(r("bytes=-1", 0), Unsatisfiable);
        assert_eq!(r("bytes=a-b", 10), Unsatisfiable);
        assert_eq!(r("bytes=+1-2", 10), Unsatisfiable);
        assert_eq!(r("bytes=1", 10), Unsatisfiable);
        assert_eq!(r("bytes=", 10), Unsatisfiable);
        assert_eq!(r("bytes", 10), Unsatisfiable);
        assert_eq!(r("bytes=0-1,3-4", 10), Full);
        assert_eq!(r("items=0-1", 10), Full);
        assert_eq!(
            parse_range(Some("bytes=1-2"), Some("\"other\""), "\"e\"", 10),
            Full
        );
        assert_eq!(
            parse_range(Some("bytes=1-2"), Some("\"e\""), "\"e\"", 10),
            Partial { start: 1, end: 2 }
        );
    }

    #[test]
    fn negotiation() {
        let oci = "application/vnd.oci.image.manifest.v1+json";
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(accepts(&[], oci));
        assert!(accepts(&f(&[""]), oci));
        assert!(accepts(&f(&["*/*"]), oci));
        assert!(accepts(&f(&["application/*;q=0.5"]), oci));
        assert!(accepts(
            &f(&[
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.oci.image.manifest.v1+json; q=0.9"
            ]),
            oci
        ));
        assert!(!accepts(
            &f(&[
                "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json"
            ]),
            oci
        ));
        assert!(!accepts(&f(&[&format!("{oci};q=0")]), oci));
        assert!(!accepts(&f(&["text/*"]), oci));
    }

    #[test]
    fn response_heads_cannot_be_split() {
        let h = response_head(200, &[("X", "a\r\nEvil: 1".into())], true, false);
        let s = String::from_utf8(h).unwrap();
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nX: aEvil: 1\r\nConnection: close\r\n\r\n"
        );
    }
}
