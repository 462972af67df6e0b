//! `ocitool serve`: the startup summary (what to paste into podman, ctr), the access log
//! (text on standard error, or one JSON line per request on standard output with `--json`),
//! and the server of `ocitool-serve` until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use anyhow::Context;
use ocitool_serve::{Access, Config, Events, Limits, RepositorySummary, Server};
use serde_json::json;

use crate::cli::ServeArgs;
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, a: &ServeArgs) -> anyhow::Result<i32> {
    let listen = a.listen;
    let mut limits = Limits {
        max_connections: a.max_connections.max(1),
        ..Limits::default()
    };
    if let Some(s) = a.header_timeout {
        limits.header_timeout = seconds(s)?;
    }
    if let Some(s) = a.io_timeout {
        limits.io_timeout = seconds(s)?;
    }
    let config = Config {
        layouts: a.layouts.clone(),
        listen,
        tls: a.tls_cert.clone().zip(a.tls_key.clone()),
        htpasswd: a.htpasswd.clone(),
        limits,
        layout_options: ctx.layout_options(),
    };
    let (log, writer) = Log::start(ctx.global.json, ctx.global.quiet);
    let server = Server::bind(config, log.clone())?;
    keep_serving_after_a_panic();
    for note in server.notes() {
        ctx.warn(note);
    }
    if a.htpasswd.is_some() && a.tls_cert.is_none() && !listen.ip().is_loopback() {
        ctx.warn(
            "--htpasswd without --tls-cert: passwords cross the network in clear text; add --tls-cert and --tls-key",
        );
    }
    summary(ctx, &server)?;
    ctx.out.flush()?;
    let result = server.run();
    let dropped = log.dropped.load(Ordering::Relaxed);
    drop(log);
    let _ = writer.join();
    result?;
    if dropped > 0 {
        ctx.warn(format!(
            "{dropped} access log lines were dropped (standard output did not keep up)"
        ));
    }
    ctx.info("ocitool serve: stopped");
    Ok(exit::OK)
}

fn seconds(s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{s} is not a number of seconds"))
}

/// Who to tell the clients to pull from: the listening address, or this host's name when
/// listening on every address.
fn host_port(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let uname = rustix::system::uname();
        let host = uname.nodename().to_string_lossy().into_owned();
        return format!("{host}:{}", addr.port());
    }
    addr.to_string()
}

/// The startup summary: the URL, then per repository its tags and the lines to paste.
fn summary(ctx: &mut Ctx, server: &Server) -> anyhow::Result<()> {
    let tls = server.tls();
    let hp = host_port(server.local_addr());
    let url = format!("{}://{hp}", if tls { "https" } else { "http" });
    let repos = server.repositories();
    if ctx.global.json {
        let list: Vec<_> = repos
            .iter()
            .map(|r| json!({"name": r.name, "tags": r.tags, "aliases": r.aliases, "layout": r.layout}))
            .collect();
        ctx.out
            .line(json!({"url": url, "repositories": list}).to_string())?;
        return Ok(());
    }
    if ctx.global.quiet {
        return Ok(());
    }
    let layouts: std::collections::BTreeSet<&str> =
        repos.iter().map(|r| r.layout.as_str()).collect();
    ctx.out.line(format!(
        "ocitool serve: {url} serves {} from {}, read-only (Ctrl-C stops)",
        plural(repos.len(), "repository", "repositories"),
        plural(layouts.len(), "layout", "layouts"),
    ))?;
    let (podman, ctr) = match (tls, server.authenticates()) {
        (false, false) => (
            "podman pull --tls-verify=false",
            "ctr image pull --plain-http",
        ),
        (false, true) => (
            "podman pull --tls-verify=false --creds USER",
            "ctr image pull --plain-http --user USER",
        ),
        (true, false) => ("podman pull", "ctr image pull"),
        (true, true) => ("podman pull --creds USER", "ctr image pull --user USER"),
    };
    for r in &repos {
        ctx.out.line(format!(
            "{}: {}{}",
            r.name,
            r.tags.join(", "),
            if r.aliases.is_empty() {
                String::new()
            } else {
                format!(" (also served as {})", r.aliases.join(", "))
            }
        ))?;
        let tag = paste_tag(r);
        ctx.out.line(format!("  {podman} {hp}/{}:{tag}", r.name))?;
        ctx.out.line(format!("  {ctr} {hp}/{}:{tag}", r.name))?;
    }
    if repos.is_empty() {
        ctx.out.line(
            "(no refs to serve yet: tag images in the layout, they appear without a restart)",
        )?;
    }
    Ok(())
}

fn paste_tag(r: &RepositorySummary) -> &str {
    if r.tags.iter().any(|t| t == "latest") {
        "latest"
    } else {
        r.tags.last().map_or("latest", String::as_str)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The panic hook of the other commands ends the process; a server drops the connection
/// whose request hit the bug and goes on serving the others. A panic on the main thread
/// still ends it.
fn keep_serving_after_a_panic() {
    std::panic::set_hook(Box::new(|info| {
        let main = std::thread::current().name() == Some("main");
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error (a bug in ocitool){}: {}",
            if main {
                ""
            } else {
                " while answering a request; its connection was closed"
            },
            crate::panic_text(info)
        );
        if main {
            std::process::exit(exit::INTERNAL);
        }
    }));
}

/// A line for standard output (the JSON access log) or standard error (text).
enum Line {
    Out(String),
    Err(String),
}

/// The access log: the server's threads queue lines, one thread writes them, so a slow
/// terminal or pipe never stalls a request. Lines past a full queue are counted, not kept.
struct Log {
    tx: SyncSender<Line>,
    json: bool,
    quiet: bool,
    dropped: AtomicU64,
}

impl Log {
    fn start(json: bool, quiet: bool) -> (Arc<Log>, std::thread::JoinHandle<()>) {
        let (tx, rx) = sync_channel(4096);
        let writer = std::thread::Builder::new()
            .name("ocitool-serve-log".into())
            .spawn(move || write_lines(rx))
            .expect("spawn the log writer");
        (
            Arc::new(Log {
                tx,
                json,
                quiet,
                dropped: AtomicU64::new(0),
            }),
            writer,
        )
    }

    fn send(&self, line: Line) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_lines(rx: Receiver<Line>) {
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut out_ok = true;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(line) = next {
            match line {
                Line::Out(s) if out_ok => {
                    out_ok = writeln!(out, "{s}").is_ok();
                }
                Line::Out(_) => {}
                Line::Err(s) => {
                    let _ = writeln!(std::io::stderr(), "{s}");
                }
            }
            next = rx.try_recv().ok();
        }
        if out_ok {
            out_ok = out.flush().is_ok();
        }
    }
}

impl Events for Log {
    fn request(&self, a: &Access<'_>) {
        let time = humantime::format_rfc3339_millis(a.time);
        let ms = a.duration.as_secs_f64() * 1000.0;
        if self.json {
            let mut v = json!({
                "time": time.to_string(),
                "remote": a.remote.to_string(),
                "method": a.method,
                "path": a.target,
                "status": a.status,
                "bytes": a.bytes,
                "ms": (ms * 1000.0).round() / 1000.0,
            });
            if let Some(u) = a.user {
                v["user"] = json!(u);
            }
            self.send(Line::Out(v.to_string()));
        } else if !self.quiet {
            self.send(Line::Err(format!(
                "{time} {} {}\"{} {}\" {} {} {ms:.1}ms",
                a.remote,
                a.user.map(|u| format!("{u} ")).unwrap_or_default(),
                ocitool_serve::route::printable(a.method),
                ocitool_serve::route::printable(a.target),
                a.status,
                a.bytes,
            )));
        }
    }

    fn note(&self, message: &str) {
        if !self.quiet {
            self.send(Line::Err(format!("warning: {message}")));
        }
    }
}
