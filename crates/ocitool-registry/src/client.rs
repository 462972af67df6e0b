//! The HTTP side: one [`Registry`] per registry host (a ureq agent with that host's TLS
//! trust, its scheme, its authentication state), requests with retries, and the mapping of
//! answers to errors.
//!
//! Scheme: https, or plain http with `--plain-http`; a loopback registry (`localhost`,
//! `127.0.0.0/8`, `::1`) is tried over https first and over http when https cannot connect
//! and http answers like a registry. Proxies come from `HTTPS_PROXY`/`HTTP_PROXY`/
//! `ALL_PROXY` with `NO_PROXY` (ureq). Requests send `Accept-Encoding: identity`: bytes must
//! arrive as the registry stores them.
//!
//! Retries: connection errors, 408, 429, 500, 502, 503 and 504 are retried with exponential
//! backoff (`retry_delay` doubling), honouring `Retry-After` (seconds or an HTTP date) up to
//! `max_retry_wait`; other 4xx never. A 401 re-authenticates (at most twice per request).
//!
//! Warnings: a registry may add `Warning: 299 - "text"` to any answer (distribution-spec
//! "Warnings": deprecations, quotas, an expiring credential). Each distinct text goes to
//! [`Warnings`] once per client, however many answers carry it.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use ureq::http;

use crate::auth::{self, Auth, Scopes, TokenRequest};
use crate::creds::{Credential, Store};
use crate::errors::{Error, Result};
use crate::tls;

/// Everything a client needs to know from the user.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where credentials are read and `login` writes them.
    pub store: Store,
    /// `--creds`/`--creds-stdin`: used for every registry instead of the files.
    pub creds: Option<Credential>,
    /// `--cert-dir`.
    pub cert_dir: Option<PathBuf>,
    /// `--tls-verify=false` turns certificate checks off (still TLS).
    pub tls_verify: bool,
    /// `--plain-http`: http for every registry.
    pub plain_http: bool,
    /// Retries of a failed request (connection error, 408, 429, 5xx).
    pub retries: u32,
    /// First backoff; doubles with each retry.
    pub retry_delay: Duration,
    /// Longest `Retry-After` waited for; a longer one fails with the wait named.
    pub max_retry_wait: Duration,
    /// Largest manifest or index read.
    pub json_limit: u64,
    /// A connection idle this long (no byte read or written) fails and is retried.
    pub idle_timeout: Duration,
    pub user_agent: String,
    /// Where the registries' `Warning` texts go.
    pub warnings: Warnings,
}

/// Shows each distinct registry warning once: the texts of `Warning: 299 - "..."` headers go
/// to a sink the caller chooses (the binary prints them as `warning:` lines), prefixed with
/// the registry's name. The texts come from the network: the sink must escape them for a
/// terminal. At most [`Warnings::MAX`] distinct texts (each cut to 500 characters) are kept
/// and shown; a registry sending more is not heard further.
#[derive(Clone, Default)]
pub struct Warnings {
    sink: Option<Arc<WarningSink>>,
    seen: Arc<Mutex<BTreeSet<String>>>,
}

/// What receives a warning's line.
type WarningSink = dyn Fn(&str) + Send + Sync;

impl std::fmt::Debug for Warnings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warnings")
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl Warnings {
    /// Most distinct warnings shown.
    pub const MAX: usize = 64;

    /// Warnings go to `sink`.
    pub fn new(sink: impl Fn(&str) + Send + Sync + 'static) -> Warnings {
        Warnings {
            sink: Some(Arc::new(sink)),
            seen: Arc::default(),
        }
    }

    /// Reports the `Warning` values of one answer from `registry`.
    fn report<'a>(&self, registry: &str, values: impl Iterator<Item = &'a str>) {
        let Some(sink) = &self.sink else { return };
        for value in values {
            for text in parse_warnings(value) {
                let line = format!("{registry}: {text}");
                let new = {
                    let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                    seen.len() < Self::MAX && seen.insert(line.clone())
                };
                if new {
                    sink(&line);
                }
            }
        }
    }
}

/// The texts of the 299 warnings in one `Warning` field value: `299 - "text"` items,
/// comma-separated, each optionally followed by a quoted date (RFC 7234 §5.5). Other codes
/// and malformed items are skipped.
pub(crate) fn parse_warnings(value: &str) -> Vec<String> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < b.len() && set.contains(&b[*i]) {
            *i += 1;
        }
    };
    // A quoted string from `i` (at the opening quote); `None` if it is not one.
    let quoted = |i: &mut usize| -> Option<String> {
        if b.get(*i) != Some(&b'"') {
            return None;
        }
        *i += 1;
        let mut v = Vec::new();
        while *i < b.len() && b[*i] != b'"' {
            if b[*i] == b'\\' && *i + 1 < b.len() {
                *i += 1;
            }
            v.push(b[*i]);
            *i += 1;
        }
        if *i >= b.len() {
            return None;
        }
        *i += 1;
        Some(String::from_utf8_lossy(&v).into_owned())
    };
    while i < b.len() {
        skip(&mut i, b" \t,");
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let code = &value[start..i];
        skip(&mut i, b" \t");
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b',') {
            i += 1; // the agent
        }
        skip(&mut i, b" \t");
        match quoted(&mut i) {
            Some(text) if code == "299" && !text.trim().is_empty() => {
                out.push(text.trim().chars().take(500).collect());
            }
            Some(_) => {}
            None => {
                // Not a warning item: skip to the next comma outside quotes.
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                continue;
            }
        }
        skip(&mut i, b" \t");
        let _ = quoted(&mut i); // a warn-date
    }
    out
}

impl Default for Options {
    fn default() -> Self {
        Options {
            store: Store::default(),
            creds: None,
            cert_dir: None,
            tls_verify: true,
            plain_http: false,
            retries: 4,
            retry_delay: Duration::from_secs(1),
            max_retry_wait: Duration::from_secs(300),
            json_limit: ocitool_spec::DEFAULT_JSON_LIMIT,
            idle_timeout: Duration::from_secs(60),
            user_agent: concat!("ocitool/", env!("CARGO_PKG_VERSION")).to_string(),
            warnings: Warnings::default(),
        }
    }
}

/// A registry client: hands out one [`Registry`] per registry name.
pub struct Client {
    options: Arc<Options>,
    registries: Mutex<HashMap<String, Arc<Registry>>>,
}

impl Client {
    pub fn new(options: Options) -> Client {
        Client {
            options: Arc::new(options),
            registries: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The registry `name` (as in references: `docker.io`, `ghcr.io`, `host:port`) whose API
    /// is served from `api_host`; credentials are looked up for `repository`.
    pub fn registry(&self, name: &str, api_host: &str, repository: &str) -> Result<Arc<Registry>> {
        let mut m = self.registries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = m.get(name) {
            return Ok(r.clone());
        }
        let cred = match &self.options.creds {
            Some(c) => Some(c.clone()),
            None => self.options.store.lookup(name, repository)?.map(|(c, _)| c),
        };
        let r = Arc::new(Registry::new(name, api_host, cred, self.options.clone())?);
        m.insert(name.to_string(), r.clone());
        Ok(r)
    }

    /// The registry of a reference.
    pub fn for_reference(&self, r: &ocitool_spec::reference::Reference) -> Result<Arc<Registry>> {
        self.registry(r.registry(), r.api_host(), r.repository())
    }
}

/// A request body that can be sent again on a retry.
#[derive(Clone, Copy)]
pub(crate) enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from offset 0, read positionally (no shared file offset), with
    /// each chunk reported to `progress`.
    File {
        file: &'a File,
        len: u64,
        progress: Option<(&'a dyn ocitool_layout::Progress, &'a str)>,
    },
}

/// What a request is about, for error messages and their hints.
#[derive(Clone, Debug)]
pub(crate) enum Subject {
    Registry,
    Manifest(String),
    Blob(ocitool_digest::Digest),
    Upload(ocitool_digest::Digest),
    Tags,
}

/// One request.
pub(crate) struct Request<'a> {
    pub method: http::Method,
    /// A path (`/v2/...`, relative to the registry) or an absolute URL (an upload `Location`).
    pub target: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    pub repository: &'a str,
    /// Scopes the request needs (empty: none).
    pub scopes: Scopes,
    pub subject: Subject,
    /// Retry connection errors and 5xx (false where a retry could repeat a side effect).
    pub retry: bool,
}

impl<'a> Request<'a> {
    pub fn new(
        method: http::Method,
        target: impl Into<String>,
        repository: &'a str,
        push: bool,
    ) -> Request<'a> {
        let scopes = if repository.is_empty() {
            Scopes::new()
        } else {
            [auth::repository_scope(repository, push)].into()
        };
        Request {
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Body::None,
            repository,
            scopes,
            subject: Subject::Registry,
            retry: true,
        }
    }

    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }

    pub fn subject(mut self, s: Subject) -> Self {
        self.subject = s;
        self
    }

    pub fn body(mut self, b: Body<'a>) -> Self {
        self.body = b;
        self
    }

    fn what(&self) -> String {
        let about = match &self.subject {
            Subject::Registry => "the registry".to_string(),
            Subject::Manifest(r) => format!("manifest {r}"),
            Subject::Blob(d) => format!("blob {d}"),
            Subject::Upload(d) => format!("upload of {d}"),
            Subject::Tags => "the tag list".to_string(),
        };
        format!("{} {about}", self.method)
    }
}

pub(crate) type Response = http::Response<ureq::Body>;

/// One registry host.
pub struct Registry {
    name: String,
    host: String,
    agent: ureq::Agent,
    auth: Auth,
    options: Arc<Options>,
    /// `scheme://host`, decided by the first request.
    base: Mutex<Option<String>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("name", &self.name)
            .field("host", &self.host)
            .finish()
    }
}

fn is_loopback(host: &str) -> bool {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let h = host
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(h, _)| h)
        .unwrap_or_else(|| host.rsplit_once(':').map_or(host, |(h, _)| h));
    h == "localhost"
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

impl Registry {
    fn new(
        name: &str,
        host: &str,
        cred: Option<Credential>,
        options: Arc<Options>,
    ) -> Result<Registry> {
        let tls = tls::config(name, options.cert_dir.as_deref(), options.tls_verify)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .accept_encoding(ureq::config::AutoHeaderValue::Provided(Arc::new(
                "identity".into(),
            )))
            .user_agent(ureq::config::AutoHeaderValue::Provided(Arc::new(
                options.user_agent.clone(),
            )))
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .max_redirects(10)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(options.idle_timeout))
            .timeout_per_write(Some(options.idle_timeout))
            .max_idle_connections_per_host(16)
            .build();
        Ok(Registry {
            name: name.to_string(),
            host: host.to_string(),
            agent: config.new_agent(),
            auth: Auth::new(name, cred),
            options,
            base: Mutex::new(None),
        })
    }

    /// The registry's name as in references.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the registry is on this machine (`localhost`, 127.0.0.0/8, `::1`): it then
    /// shares this machine's cores with the transfer.
    pub fn on_this_machine(&self) -> bool {
        is_loopback(&self.host)
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn has_credentials(&self) -> bool {
        self.auth.has_credentials()
    }

    fn plain(&self) -> bool {
        self.base
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            .is_some_and(|b| b.starts_with("http:"))
    }

    /// `scheme://host`, found by pinging `/v2/` the first time (which also learns how the
    /// registry authenticates).
    pub(crate) fn base(&self) -> Result<String> {
        let mut b = self.base.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(x) = b.as_ref() {
            return Ok(x.clone());
        }
        let https = format!("https://{}", self.host);
        let http = format!("http://{}", self.host);
        let chosen = if self.options.plain_http {
            self.ping(&http)?;
            http
        } else {
            match self.ping(&https) {
                Ok(()) => https,
                Err(e @ Error::Transport { .. }) if is_loopback(&self.host) => {
                    match self.ping(&http) {
                        Ok(()) => http,
                        Err(_) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        };
        *b = Some(chosen.clone());
        Ok(chosen)
    }

    /// `GET /v2/`: 200, or 401 with the challenge the registry uses. Other answers are left to
    /// the requests that follow (some registries answer 404 here).
    fn ping(&self, base: &str) -> Result<()> {
        let url = format!("{base}/v2/");
        let mut attempt = 0;
        loop {
            match self.agent.get(&url).call() {
                Ok(resp) => {
                    self.warn_from(&resp);
                    let status = resp.status().as_u16();
                    if status == 401 {
                        let h = header(&resp, "www-authenticate");
                        self.auth.learn(h.as_deref(), base.starts_with("http:"))?;
                        return Ok(());
                    }
                    if retryable_status(status) && attempt < self.options.retries {
                        let wait = retry_after(&resp).unwrap_or_else(|| self.backoff(attempt));
                        if wait > self.options.max_retry_wait {
                            return Err(self.status_error(
                                resp,
                                &Request::new(http::Method::GET, "/v2/", "", false),
                            ));
                        }
                        attempt += 1;
                        std::thread::sleep(wait);
                        continue;
                    }
                    if base.starts_with("http:") && status == 400 {
                        // Go's answer to plain HTTP on a TLS port.
                        return Err(Error::Transport {
                            registry: self.name.clone(),
                            what: format!("GET {url}"),
                            why: "the server speaks TLS".into(),
                        });
                    }
                    return Ok(());
                }
                Err(e) => {
                    if is_retryable_transport(&e)
                        && attempt < self.options.retries
                        && !is_tls_error(&e)
                    {
                        attempt += 1;
                        std::thread::sleep(self.backoff(attempt - 1));
                        continue;
                    }
                    return Err(Error::Transport {
                        registry: self.name.clone(),
                        what: format!("GET {url}"),
                        why: describe_transport(&e),
                    });
                }
            }
        }
    }

    /// Passes the answer's `Warning` fields on.
    fn warn_from(&self, resp: &Response) {
        let values: Vec<std::borrow::Cow<'_, str>> = resp
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect();
        if !values.is_empty() {
            self.options
                .warnings
                .report(&self.name, values.iter().map(|v| v.as_ref()));
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.options
            .retry_delay
            .saturating_mul(1 << attempt.min(10))
    }

    /// Checks the credentials this registry was opened with (for `login`): a token with them
    /// from the token server, or `GET /v2/` with Basic auth. A registry that asks for no
    /// authentication accepts any.
    pub fn check_credentials(&self) -> Result<()> {
        self.base()?;
        if self.auth.is_bearer() {
            self.auth
                .header(&Scopes::new(), |t| self.fetch_token(t, ""))
                .map(|_| ())
        } else {
            let mut req = Request::new(http::Method::GET, "/v2/", "", false);
            let resp = self.send(&mut req)?;
            match resp.status().as_u16() {
                200 => {
                    drain(resp);
                    Ok(())
                }
                _ => Err(self.status_error(resp, &req)),
            }
        }
    }

    /// The absolute URL of a target.
    pub(crate) fn url(&self, target: &str) -> Result<String> {
        if target.starts_with("http://") || target.starts_with("https://") {
            return Ok(target.to_string());
        }
        Ok(format!("{}{target}", self.base()?))
    }

    /// Resolves an upload `Location` (absolute, or relative to the request URL).
    pub(crate) fn resolve_location(&self, request_url: &str, location: &str) -> Result<String> {
        let base = url::Url::parse(request_url).map_err(|_| Error::Protocol {
            registry: self.name.clone(),
            repository: String::new(),
            what: "upload".into(),
            why: format!("bad request URL {request_url:?}"),
        })?;
        let u = base.join(location).map_err(|_| Error::Protocol {
            registry: self.name.clone(),
            repository: String::new(),
            what: "upload".into(),
            why: format!("the registry sent an upload location that is not a URL: {location:?}"),
        })?;
        // An upload must stay with the registry: a Location on another host is accepted only
        // if it is not a loopback or private address the registry itself is not on.
        if u.host_str() != base.host_str()
            && let Some(h) = u.host_str()
            && (is_loopback(h) || h.parse::<std::net::IpAddr>().is_ok_and(is_private))
            && !is_loopback(&self.host)
        {
            return Err(Error::Protocol {
                registry: self.name.clone(),
                repository: String::new(),
                what: "upload".into(),
                why: format!(
                    "the registry sent an upload location on a private address ({h}); refused"
                ),
            });
        }
        Ok(u.to_string())
    }

    /// Sends a request; retries and re-authenticates as the module docs say. Returns the
    /// answer whatever its status, except those that end in an error here (authentication
    /// refused, rate limit past the wait allowed, connection failed after retries).
    pub(crate) fn send(&self, req: &mut Request<'_>) -> Result<Response> {
        let url = self.url(&req.target)?;
        let mut attempt = 0u32;
        let mut auth_tries = 0u32;
        loop {
            let authorization = self
                .auth
                .header(&req.scopes, |t| self.fetch_token(t, req.repository))?;
            let result = self.execute(req, &url, authorization.as_ref());
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    if req.retry && attempt < self.options.retries && is_retryable_transport(&e) {
                        std::thread::sleep(self.backoff(attempt));
                        attempt += 1;
                        continue;
                    }
                    return Err(Error::Transport {
                        registry: self.name.clone(),
                        what: format!("{} {}", req.what(), req.repository),
                        why: describe_transport(&e),
                    });
                }
            };
            self.warn_from(&resp);
            let status = resp.status().as_u16();
            if status == 401 && auth_tries < 2 {
                let h = header(&resp, "www-authenticate");
                let (more, retry) =
                    self.auth
                        .on_challenge(h.as_deref(), &req.scopes, self.plain())?;
                if retry {
                    req.scopes.extend(more);
                    auth_tries += 1;
                    drain(resp);
                    continue;
                }
            }
            if retryable_status(status) && req.retry && attempt < self.options.retries {
                let wait = retry_after(&resp).unwrap_or_else(|| self.backoff(attempt));
                if wait <= self.options.max_retry_wait {
                    drain(resp);
                    std::thread::sleep(wait);
                    attempt += 1;
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    fn execute(
        &self,
        req: &Request<'_>,
        url: &str,
        authorization: Option<&crate::creds::Secret>,
    ) -> std::result::Result<Response, ureq::Error> {
        let mut b = http::Request::builder().method(req.method.clone()).uri(url);
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        if let Some(a) = authorization {
            b = b.header("Authorization", a.expose());
        }
        match req.body {
            Body::None
                if matches!(
                    req.method,
                    http::Method::GET | http::Method::HEAD | http::Method::DELETE
                ) =>
            {
                self.agent.run(b.body(())?)
            }
            Body::None => self
                .agent
                .run(b.header("Content-Length", "0").body(&[] as &[u8])?),
            Body::Bytes(x) => self
                .agent
                .run(b.header("Content-Length", x.len().to_string()).body(x)?),
            Body::File {
                file,
                len,
                progress,
            } => {
                let mut reader = FileAt {
                    file,
                    pos: 0,
                    end: len,
                    progress,
                };
                let body = ureq::SendBody::from_reader(&mut reader);
                self.agent
                    .run(b.header("Content-Length", len.to_string()).body(body)?)
            }
        }
    }

    /// Fetches a token (no retry on 401: the credentials are wrong).
    fn fetch_token(&self, t: TokenRequest, repository: &str) -> Result<Vec<u8>> {
        let mut attempt = 0;
        loop {
            let (what, r) = match &t {
                TokenRequest::Get { url, authorization } => {
                    let mut rb = self.agent.get(url);
                    if let Some(a) = authorization {
                        rb = rb.header("Authorization", a.expose());
                    }
                    ("GET token", rb.call())
                }
                TokenRequest::Post { url, form, .. } => {
                    let pairs: Vec<(&str, &str)> =
                        form.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
                    ("POST token", self.agent.post(url).send_form(pairs))
                }
            };
            match r {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if matches!(status, 404 | 405)
                        && let TokenRequest::Post { fallback, .. } = t
                    {
                        // A token server without OAuth2 (distribution's `oauth.md`: "fall
                        // back to GET").
                        drain(resp);
                        self.auth.oauth_unsupported();
                        return self.fetch_token(*fallback, repository);
                    }
                    if status == 200 {
                        return read_limited(resp, 1 << 20).map_err(|e| Error::Transport {
                            registry: self.name.clone(),
                            what: what.into(),
                            why: e.to_string(),
                        });
                    }
                    if retryable_status(status) && attempt < self.options.retries {
                        let wait = retry_after(&resp).unwrap_or_else(|| self.backoff(attempt));
                        attempt += 1;
                        std::thread::sleep(wait.min(self.options.max_retry_wait));
                        continue;
                    }
                    if status == 401 || status == 403 {
                        return Err(Error::Unauthorized {
                            registry: self.name.clone(),
                            repository: repository.to_string(),
                            why: match self.auth.username() {
                                Some(u) => format!(
                                    "the token server refused the credentials of {u:?} (HTTP {status}); check them, or `ocitool login {}` again",
                                    self.name
                                ),
                                None => format!(
                                    "the token server refused an anonymous token (HTTP {status}); log in with `ocitool login {}`",
                                    self.name
                                ),
                            },
                        });
                    }
                    return Err(Error::Status {
                        registry: self.name.clone(),
                        repository: repository.to_string(),
                        what: what.into(),
                        status,
                        code: String::new(),
                        message: String::new(),
                    });
                }
                Err(e) => {
                    if is_retryable_transport(&e) && attempt < self.options.retries {
                        std::thread::sleep(self.backoff(attempt));
                        attempt += 1;
                        continue;
                    }
                    return Err(Error::Transport {
                        registry: self.name.clone(),
                        what: what.into(),
                        why: describe_transport(&e),
                    });
                }
            }
        }
    }

    /// The error for an answer the caller did not expect.
    pub(crate) fn status_error(&self, resp: Response, req: &Request<'_>) -> Error {
        let status = resp.status().as_u16();
        let wait = retry_after(&resp);
        let body = read_limited(resp, 64 << 10).unwrap_or_default();
        let (code, message) = error_body(&body);
        let registry = self.name.clone();
        let repository = req.repository.to_string();
        let push = req.scopes.iter().any(|s| s.ends_with(",push"));
        match (status, code.as_str()) {
            (_, "NAME_UNKNOWN") => Error::NameUnknown {
                registry,
                repository,
                push,
            },
            (404, "MANIFEST_UNKNOWN") | (404, "") | (404, "UNKNOWN")
                if matches!(req.subject, Subject::Manifest(_)) =>
            {
                Error::ManifestUnknown {
                    registry,
                    repository,
                    reference: match &req.subject {
                        Subject::Manifest(r) => r.clone(),
                        _ => String::new(),
                    },
                }
            }
            (404, "BLOB_UNKNOWN") | (404, "") if matches!(req.subject, Subject::Blob(_)) => {
                Error::BlobUnknown {
                    registry,
                    repository,
                    digest: match &req.subject {
                        Subject::Blob(d) => d.clone(),
                        _ => unreachable!(),
                    },
                }
            }
            (429, _) | (_, "TOOMANYREQUESTS") => Error::RateLimited {
                docker_hub: self.name == ocitool_spec::reference::DOCKER_HUB,
                registry,
                what: req.what(),
                wait,
            },
            (403, _) | (_, "DENIED") => Error::Denied {
                hint: denied_hint(&registry, &repository, push, self.auth.username()),
                registry,
                repository,
                action: if push { "push" } else { "pull" },
                message,
            },
            (401, _) => Error::Unauthorized {
                registry,
                repository,
                why: match self.auth.username() {
                    Some(u) => format!("the registry refused the credentials of {u:?}"),
                    None => format!(
                        "the registry wants credentials; log in with `ocitool login {}` or pass --creds USER:PASS",
                        self.name
                    ),
                },
            },
            _ => Error::Status {
                registry,
                repository,
                what: req.what(),
                status,
                code,
                message,
            },
        }
    }
}

/// What to do about a refused request. Pushing, a registry such as ECR or Harbor refuses a
/// repository (or Harbor project) that does not exist yet with DENIED as readily as it
/// refuses a user without rights, so both are named.
fn denied_hint(registry: &str, repository: &str, push: bool, user: Option<&str>) -> String {
    let login = format!("log in with `ocitool login {registry}` or pass --creds USER:PASS");
    match (push, user) {
        (false, None) => login,
        (false, Some(u)) => format!("check that {u:?} may pull {repository}"),
        (true, None) => format!(
            "{login}; registries such as ECR and Harbor also refuse a push to a repository that does not exist yet: create {repository} there first"
        ),
        (true, Some(u)) => format!(
            "check that {u:?} may push to {repository}; registries such as ECR and Harbor also answer this when the repository (or Harbor project) does not exist yet: create it, then run again"
        ),
    }
}

/// `{"errors":[{"code","message"}]}`, when the body is that; never its raw text (a body may
/// echo what was sent).
fn error_body(body: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<E>,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let first = &e.errors[0];
            let msg: String = first.message.chars().take(300).collect();
            (first.code.to_ascii_uppercase(), msg)
        }
        _ => (String::new(), String::new()),
    }
}

/// A file region sent as a request body, read with `pread` (several uploads may share no
/// offset), reporting progress per chunk.
struct FileAt<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    progress: Option<(&'a dyn ocitool_layout::Progress, &'a str)>,
}

impl Read for FileAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the blob file is shorter than its size",
            ));
        }
        self.pos += n as u64;
        if let Some((p, id)) = self.progress {
            p.item_advance(id, n as u64);
        }
        Ok(n)
    }
}

pub(crate) fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn retryable_status(s: u16) -> bool {
    matches!(s, 408 | 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(resp: &Response) -> Option<Duration> {
    let v = header(resp, "retry-after")?;
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn is_retryable_transport(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::HostNotFound
    ) && !is_tls_error(e)
}

fn is_tls_error(e: &ureq::Error) -> bool {
    if matches!(e, ureq::Error::Rustls(_) | ureq::Error::Tls(_)) {
        return true;
    }
    let s = e.to_string().to_ascii_lowercase();
    s.contains("certificate")
        || s.contains("invalidcontenttype")
        || s.contains("tls")
        || s.contains("handshake")
}

fn describe_transport(e: &ureq::Error) -> String {
    let s = e.to_string();
    let lower = s.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        format!(
            "{s} (a private CA goes in certs.d or --cert-dir; --tls-verify=false skips the check)"
        )
    } else if lower.contains("invalidcontenttype") || lower.contains("corrupt message") {
        format!(
            "{s} (the server does not speak TLS here; use --plain-http for a plain HTTP registry)"
        )
    } else {
        s
    }
}

pub(crate) fn drain(resp: Response) {
    let mut r = resp.into_body().into_reader();
    let _ = std::io::copy(&mut (&mut r).take(1 << 20), &mut std::io::sink());
}

/// Reads a body of at most `limit` bytes.
pub(crate) fn read_limited(resp: Response, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut r = resp.into_body().into_reader().take(limit + 1);
    r.read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "the answer is longer than {limit} bytes"
        )));
    }
    Ok(out)
}

fn is_private(a: std::net::IpAddr) -> bool {
    match a {
        std::net::IpAddr::V4(v) => v.is_private() || v.is_loopback() || v.is_link_local(),
        std::net::IpAddr::V6(v) => {
            v.is_loopback()
                || (v.segments()[0] & 0xfe00) == 0xfc00
                || (v.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1:5000",
            "[::2]:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn warning_fields() {
        assert_eq!(
            parse_warnings(r#"299 - "Your auth token will expire in 30 seconds.""#),
            ["Your auth token will expire in 30 seconds."]
        );
        assert_eq!(
            parse_warnings(
                r#"299 - "one, with a comma" "Sat, 25 Aug 2012 23:34:45 GMT", 299 registry.io "two \"quoted\"", 199 - "not shown", 299 - """#
            ),
            ["one, with a comma", r#"two "quoted""#]
        );
        for junk in [
            "",
            "299",
            "299 -",
            "299 - \"unterminated",
            ",,,",
            "abc, 299 - x",
        ] {
            assert!(parse_warnings(junk).is_empty(), "{junk:?}");
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let w = Warnings::new(move |s| sink.lock().unwrap().push(s.to_string()));
        let values = [r#"299 - "a""#, r#"299 - "b", 299 - "a""#];
        w.report("r.io", values.iter().copied());
        w.clone().report("r.io", values.iter().copied());
        w.report("s.io", [r#"299 - "a""#].into_iter());
        assert_eq!(*seen.lock().unwrap(), ["r.io: a", "r.io: b", "s.io: a"]);
        for n in 0..2 * Warnings::MAX {
            w.report("r.io", [format!("299 - \"{n}\"").as_str()].into_iter());
        }
        assert_eq!(seen.lock().unwrap().len(), Warnings::MAX);
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_body(br#"{"errors":[{"code":"name_unknown","message":"repository name not known to registry","detail":{}}]}"#),
            ("NAME_UNKNOWN".to_string(), "repository name not known to registry".to_string())
        );
        assert_eq!(
            error_body(b"404 page not found"),
            (String::new(), String::new())
        );
    }
}
