//! The HTTP/1.1 server: tokio tasks for connections, a bounded blocking pool for handlers,
//! and blob bodies copied from the file to the socket through one of a few large buffers, or
//! by `sendfile` when every buffer is in use (see [`send_file`]).
//!
//! Bounds, each against one kind of hostile client:
//! - at most `max_connections` connections; past that a new one gets a 503 at once;
//! - a request head must arrive whole within `header_timeout` of its first byte (of the
//!   connection, for the first request; TLS handshakes included) and within `max_head`
//!   bytes, else 408 or 431 and the connection is closed (slowloris);
//! - a keep-alive connection idle for `idle_timeout` is closed;
//! - a response that makes no progress for `io_timeout` (a reader that stopped reading) is
//!   abandoned and the connection closed;
//! - request bodies are never read: a request that has one is answered, then the connection
//!   closed after discarding at most 256 KiB for at most two seconds (so the answer is not
//!   lost to a reset);
//! - worker threads: one per core (at most 8); blocking threads: 16.
//!
//! Memory per connection is the request head buffer (grows to `max_head`); blob transfers
//! hold at most [`COPY_SLOTS`] buffers of [`COPY_BUFFER`] in all, plus [`SMALL_BUFFER`] for a
//! TLS transfer past them.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::auth::Htpasswd;
use crate::catalog::Catalog;
use crate::errors::{Error, Result};
use crate::http::{self, Head, HeadError, Method};
use crate::names;
use crate::registry::{self, Body, Response, State};

/// Hostile-client bounds (see the module docs).
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub max_head: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub io_timeout: Duration,
    /// How long requests in flight may finish after SIGINT or SIGTERM.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 2048,
            max_head: http::DEFAULT_MAX_HEAD,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            io_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(5),
        }
    }
}

/// What to serve, and how.
#[derive(Clone, Debug)]
pub struct Config {
    pub layouts: Vec<PathBuf>,
    pub listen: SocketAddr,
    /// Certificate chain and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    pub htpasswd: Option<PathBuf>,
    pub limits: Limits,
    pub layout_options: ocitool_layout::Options,
}

/// One answered request, for the access log.
#[derive(Clone, Debug)]
pub struct Access<'a> {
    pub time: SystemTime,
    pub remote: SocketAddr,
    /// `-` when the request could not be parsed.
    pub method: &'a str,
    pub target: &'a str,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    pub duration: Duration,
    pub user: Option<&'a str>,
}

/// Where the server reports. Called from the server's threads: implementations must not
/// block (queue the line and write it elsewhere).
pub trait Events: Send + Sync + 'static {
    fn request(&self, access: &Access<'_>);
    /// Something the operator should know (a ref that cannot be served after a reload, a
    /// damaged blob, the connection limit reached).
    fn note(&self, message: &str);
}

/// A served repository, for the startup summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositorySummary {
    pub name: String,
    pub tags: Vec<String>,
    /// Other names it is also served under.
    pub aliases: Vec<String>,
    /// The layout it comes from, as given.
    pub layout: String,
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    runtime: tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    notes: Vec<String>,
}

struct Shared {
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    events: Arc<dyn Events>,
    /// When the connection limit was last reported.
    full_noted: Mutex<Option<Instant>>,
    /// Blob transfers that may hold a [`COPY_BUFFER`] at once.
    copy_slots: Semaphore,
}

impl Server {
    /// Reads the layouts, the TLS files and the htpasswd file, and binds the socket.
    pub fn bind(config: Config, events: Arc<dyn Events>) -> Result<Server> {
        let mut notes = Vec::new();
        let note_events = events.clone();
        let (catalog, catalog_notes) = Catalog::open(
            &config.layouts,
            config.layout_options.clone(),
            Box::new(move |m| note_events.note(m)),
        )?;
        notes.extend(catalog_notes);
        let auth = config.htpasswd.as_deref().map(Htpasswd::load).transpose()?;
        let tls = match &config.tls {
            Some((cert, key)) => Some(crate::tls::acceptor(cert, key)?),
            None => None,
        };
        let mut limits = config.limits.clone();
        if let Some(n) = raise_file_limit(limits.max_connections)
            && n < limits.max_connections
        {
            notes.push(format!(
                "the open-file limit allows {n} connections at once, not {}",
                limits.max_connections
            ));
            limits.max_connections = n;
        }
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| Error::Listen {
                addr: config.listen,
                source,
            })?;
        listener.set_nonblocking(true).map_err(Error::Runtime)?;
        let local_addr = listener.local_addr().map_err(Error::Runtime)?;
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 8);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .max_blocking_threads(16)
            .thread_name("ocitool-serve")
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Runtime)?;
        let notify_events = events.clone();
        let state = State {
            catalog,
            auth,
            notify: Box::new(move |m| notify_events.note(m)),
        };
        Ok(Server {
            runtime,
            listener,
            local_addr,
            shared: Arc::new(Shared {
                state: Arc::new(state),
                tls,
                limits,
                events,
                full_noted: Mutex::new(None),
                copy_slots: Semaphore::new(COPY_SLOTS),
            }),
            notes,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn tls(&self) -> bool {
        self.shared.tls.is_some()
    }

    pub fn authenticates(&self) -> bool {
        self.shared.state.auth.is_some()
    }

    /// What the operator should know before the first request: refs that are not served and
    /// why, aliases that lost, a lowered connection limit.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The served repositories, each with the other names it is served under.
    pub fn repositories(&self) -> Vec<RepositorySummary> {
        let catalog = &self.shared.state.catalog;
        let snapshot = catalog.snapshot();
        names::summary(&snapshot.repositories)
            .into_iter()
            .map(|(name, aliases)| {
                let r = &snapshot.repositories[&name];
                RepositorySummary {
                    tags: r.tags.keys().cloned().collect(),
                    layout: catalog.sources()[r.layout].label.clone(),
                    name,
                    aliases,
                }
            })
            .collect()
    }

    /// Serves until SIGINT or SIGTERM, then lets requests in flight finish (for
    /// `Limits::grace` at most).
    pub fn run(self) -> Result<()> {
        let Server {
            runtime,
            listener,
            shared,
            ..
        } = self;
        let result = runtime.block_on(serve(listener, shared));
        runtime.shutdown_timeout(Duration::from_secs(1));
        result
    }
}

/// Raises the soft open-file limit so that `connections` sockets (and a blob file each) fit;
/// returns how many connections fit when it cannot.
fn raise_file_limit(connections: usize) -> Option<usize> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    const SPARE: u64 = 64;
    let want = connections as u64 * 2 + SPARE;
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    if current >= want {
        return None;
    }
    let target = limit.maximum.map_or(want, |m| m.min(want));
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        },
    );
    let now = getrlimit(Resource::Nofile).current?;
    (now < want).then(|| (now.saturating_sub(SPARE) / 2).max(1) as usize)
}

async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = TcpListener::from_std(listener).map_err(Error::Runtime)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(Error::Runtime)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(Error::Runtime)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(shared.limits.max_connections));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let shared = shared.clone();
                        let stop = stop_rx.clone();
                        tasks.spawn(async move {
                            connection(stream, peer, shared, stop).await;
                            drop(permit);
                        });
                    }
                    Err(_) => refuse(stream, &shared),
                },
                // Out of file descriptors or memory: wait rather than spin.
                Err(e) if is_resource_error(&e) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(_) => {}
            },
        }
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = timeout(shared.limits.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    Ok(())
}

fn is_resource_error(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(e),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
    )
}

/// A connection past the limit: a 503 if the socket takes it at once, then closed.
fn refuse(stream: TcpStream, shared: &Shared) {
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let mut noted = shared.full_noted.lock().expect("not poisoned");
    if noted.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
        *noted = Some(Instant::now());
        shared.events.note(&format!(
            "{} connections are open (the limit): refusing new ones with 503",
            shared.limits.max_connections
        ));
    }
}

/// A plain or TLS connection.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// What waiting for a request head gave.
enum Next {
    Head(Box<Head>, usize),
    /// The client closed, stayed idle too long, or the server is stopping.
    Gone,
    /// A head that is malformed, too large or too slow: answered with this status.
    Refused(u16, String),
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = &shared.limits;
    let _ = stream.set_nodelay(true);
    let mut conn = match &shared.tls {
        None => Conn::Plain(stream),
        Some(acceptor) => match timeout(limits.header_timeout, acceptor.accept(stream)).await {
            Ok(Ok(s)) => Conn::Tls(Box::new(s)),
            _ => return,
        },
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let next = next_head(&mut conn, &mut buf, first, limits, &mut stop).await;
        first = false;
        let time = SystemTime::now();
        let start = Instant::now();
        let (head, used) = match next {
            Next::Head(h, n) => (h, n),
            Next::Gone => return,
            Next::Refused(status, why) => {
                let body = format!("{why}\n");
                let mut out = http::response_head(
                    status,
                    &[
                        ("Content-Type", "text/plain; charset=utf-8".into()),
                        ("Content-Length", body.len().to_string()),
                    ],
                    true,
                    false,
                );
                out.extend_from_slice(body.as_bytes());
                let sent = write_all(&mut conn, &out, limits.io_timeout).await.is_ok();
                shared.events.request(&Access {
                    time,
                    remote,
                    method: "-",
                    target: "-",
                    status,
                    bytes: if sent { body.len() as u64 } else { 0 },
                    duration: start.elapsed(),
                    user: None,
                });
                linger(&mut conn).await;
                return;
            }
        };
        buf.drain(..used);
        let state = shared.state.clone();
        let (head, response) = match tokio::task::spawn_blocking(move || {
            let r = registry::handle(&state, &head);
            (head, r)
        })
        .await
        {
            Ok(x) => x,
            // The handler panicked (the panic hook reported it): drop the connection.
            Err(_) => return,
        };
        let close = !head.keep_alive || head.has_body || *stop.borrow();
        let status = response.status;
        let user = response.user.clone();
        let sent = respond(&mut conn, &head, response, close, &shared).await;
        shared.events.request(&Access {
            time,
            remote,
            method: head.method.as_str(),
            target: &head.target,
            status,
            bytes: match sent {
                Ok(n) | Err(n) => n,
            },
            duration: start.elapsed(),
            user: user.as_deref(),
        });
        if sent.is_err() {
            return;
        }
        if close {
            if head.has_body || !buf.is_empty() {
                linger(&mut conn).await;
            } else {
                let _ = timeout(limits.io_timeout, conn.shutdown()).await;
            }
            return;
        }
    }
}

/// Reads until `buf` starts with a whole request head.
async fn next_head(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    first: bool,
    limits: &Limits,
    stop: &mut watch::Receiver<bool>,
) -> Next {
    let waited = Instant::now();
    // Until the first byte: the idle timeout (a new connection gets the header timeout);
    // from the first byte: the header timeout.
    let mut deadline = if buf.is_empty() {
        waited
            + if first {
                limits.header_timeout
            } else {
                limits.idle_timeout
            }
    } else {
        waited + limits.header_timeout
    };
    loop {
        if !buf.is_empty() {
            match http::parse_head(buf, limits.max_head) {
                Ok(Some((head, used))) => return Next::Head(Box::new(head), used),
                Ok(None) => {}
                Err(e @ HeadError::TooLarge { .. }) | Err(e @ HeadError::TooManyHeaders) => {
                    return Next::Refused(e.status(), e.to_string());
                }
                Err(e) => return Next::Refused(e.status(), e.to_string()),
            }
        }
        if buf.capacity() - buf.len() < 512 {
            let room = buf
                .len()
                .max(1024)
                .min((limits.max_head + 1024).saturating_sub(buf.len()));
            buf.reserve(room);
        }
        let idle = buf.is_empty();
        let before = buf.len();
        tokio::select! {
            r = tokio::time::timeout_at(deadline.into(), conn.read_buf(buf)) => match r {
                Err(_) if idle => return Next::Gone,
                Err(_) => {
                    return Next::Refused(408, "the request head did not arrive in time".into());
                }
                Ok(Ok(0)) | Ok(Err(_)) => return Next::Gone,
                Ok(Ok(_)) => {
                    if before == 0 {
                        deadline = Instant::now() + limits.header_timeout;
                    }
                }
            },
            _ = stop.changed(), if idle => return Next::Gone,
        }
    }
}

/// Writes the response; returns the body bytes sent, as an error if it could not finish.
async fn respond(
    conn: &mut Conn,
    head: &Head,
    response: Response,
    close: bool,
    shared: &Shared,
) -> Result<u64, u64> {
    let io_timeout = shared.limits.io_timeout;
    let Response {
        status,
        mut fields,
        body,
        ..
    } = response;
    fields.push(("Docker-Distribution-Api-Version", "registry/2.0".into()));
    fields.push(("Date", httpdate::fmt_http_date(SystemTime::now())));
    if status != 304 {
        fields.push(("Content-Length", body.len().to_string()));
    }
    let mut out = http::response_head(status, &fields, close, head.http10);
    let with_body = head.method != Method::Head && status != 304;
    match body {
        Body::Bytes(b) if with_body => {
            out.extend_from_slice(&b);
            write_all(conn, &out, io_timeout).await.map_err(|_| 0u64)?;
            Ok(b.len() as u64)
        }
        Body::File { file, offset, len } if with_body => {
            write_all(conn, &out, io_timeout).await.map_err(|_| 0u64)?;
            send_file(conn, &file, offset, len, shared).await
        }
        _ => {
            write_all(conn, &out, io_timeout).await.map_err(|_| 0u64)?;
            Ok(0)
        }
    }
}

/// Writes all of `data`, giving up when a write makes no progress for `io_timeout`.
async fn write_all(conn: &mut Conn, mut data: &[u8], io_timeout: Duration) -> io::Result<()> {
    while !data.is_empty() {
        let n = timeout(io_timeout, conn.write(data))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    timeout(io_timeout, conn.flush())
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Largest piece handed to one sendfile call: bounds how long one call may read from a slow
/// disk on a worker thread.
const SENDFILE_CHUNK: usize = 4 << 20;

/// Blob transfers that copy through a large buffer at once; the rest use `sendfile` (plain)
/// or a [`SMALL_BUFFER`] (TLS). 16 x 256 KiB = 4 MiB at most.
pub const COPY_SLOTS: usize = 16;

/// The buffer of a copy slot.
pub const COPY_BUFFER: usize = 256 << 10;

/// The buffer of a TLS transfer that found every copy slot taken.
pub const SMALL_BUFFER: usize = 16 << 10;

/// Sends `len` bytes of `file` from `offset`. Returns the bytes sent, as an error if it could
/// not finish.
///
/// A transfer that gets one of the [`COPY_SLOTS`] copies through a 256 KiB buffer (`pread`,
/// then write); past them, a plain connection uses `sendfile` and a TLS one a small buffer.
/// Copying first, though `sendfile` saves the server a copy, because the client pays for
/// `sendfile` on a loopback or LAN link: its socket fills in page-sized fragments as the
/// sender's buffer drains, so a Go client (skopeo, podman, containerd) wakes twice as often
/// and reads each byte more slowly (measured with skopeo pulling 1.3 GiB: 7.4-8.2k
/// `epoll_pwait` wakeups against 2.9-3.5k, and 15% more of its CPU in all, where its CPU
/// is what bounds the pull; see ARCHITECTURE.md, "Serving").
async fn send_file(
    conn: &mut Conn,
    file: &std::fs::File,
    offset: u64,
    len: u64,
    shared: &Shared,
) -> Result<u64, u64> {
    let io_timeout = shared.limits.io_timeout;
    let slot = shared.copy_slots.try_acquire().ok();
    match conn {
        Conn::Plain(stream) if slot.is_none() => {
            let end = offset + len;
            let mut at = offset;
            while at < end {
                match timeout(io_timeout, stream.writable()).await {
                    Ok(Ok(())) => {}
                    _ => return Err(at - offset),
                }
                let want = (end - at).min(SENDFILE_CHUNK as u64) as usize;
                let sent = stream.try_io(Interest::WRITABLE, || {
                    rustix::fs::sendfile(&*stream, file, Some(&mut at), want)
                        .map_err(io::Error::from)
                });
                match sent {
                    // The file is shorter than it was when opened.
                    Ok(0) => return Err(at - offset),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return Err(at - offset),
                }
                // A fast reader never makes the socket wait: let other connections run.
                tokio::task::consume_budget().await;
            }
            Ok(len)
        }
        _ => {
            let size = if slot.is_some() {
                COPY_BUFFER
            } else {
                SMALL_BUFFER
            };
            copy_file(conn, file, offset, len, size, io_timeout).await
        }
    }
}

/// Sends `len` bytes of `file` from `offset` through a buffer of `size` bytes.
async fn copy_file(
    conn: &mut Conn,
    file: &std::fs::File,
    offset: u64,
    len: u64,
    size: usize,
    io_timeout: Duration,
) -> Result<u64, u64> {
    use std::os::unix::fs::FileExt;
    let end = offset + len;
    let mut at = offset;
    let mut buffer = vec![0u8; (len.min(size as u64)) as usize];
    while at < end {
        let want = (end - at).min(buffer.len() as u64) as usize;
        let n = match file.read_at(&mut buffer[..want], at) {
            // The file is shorter than it was when opened.
            Ok(0) | Err(_) => return Err(at - offset),
            Ok(n) => n,
        };
        if write_all(conn, &buffer[..n], io_timeout).await.is_err() {
            return Err(at - offset);
        }
        at += n as u64;
    }
    Ok(len)
}

/// Closes a connection whose client may still be sending (a request body, a refused head):
/// the write side first, then up to 256 KiB of what arrives is discarded for up to two
/// seconds, so the client reads the answer before the connection goes away.
async fn linger(conn: &mut Conn) {
    let _ = timeout(Duration::from_secs(2), async {
        let _ = conn.shutdown().await;
        // On the heap: an array here would grow every connection's future.
        let mut sink = vec![0u8; 8192];
        let mut left: usize = 256 << 10;
        while left > 0 {
            match conn.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}
