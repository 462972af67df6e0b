//! Everything that is written to the terminal: text, JSON, sizes, progress.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Standard output, buffered; a closed pipe ends the program quietly (exit 0).
pub struct Out {
    inner: io::BufWriter<io::Stdout>,
}

/// Marks a write to a closed pipe, which `main_impl` turns into success.
#[derive(Debug)]
pub struct BrokenPipe;

impl std::fmt::Display for BrokenPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("broken pipe")
    }
}

impl std::error::Error for BrokenPipe {}

fn map_io(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(BrokenPipe)
    } else {
        anyhow::Error::new(e).context("write to standard output")
    }
}

impl Out {
    pub fn new() -> Out {
        Out {
            inner: io::BufWriter::with_capacity(64 << 10, io::stdout()),
        }
    }

    pub fn line(&mut self, s: impl AsRef<str>) -> anyhow::Result<()> {
        self.inner
            .write_all(s.as_ref().as_bytes())
            .map_err(map_io)?;
        self.inner.write_all(b"\n").map_err(map_io)
    }

    pub fn bytes(&mut self, b: &[u8]) -> anyhow::Result<()> {
        self.inner.write_all(b).map_err(map_io)
    }

    pub fn json<T: Serialize + ?Sized>(&mut self, v: &T) -> anyhow::Result<()> {
        serde_json::to_writer_pretty(&mut self.inner, v).map_err(|e| map_io(e.into()))?;
        self.line("")
    }

    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.inner.flush().map_err(map_io)
    }
}

/// Diagnostics on standard error (notes, summaries), silenced by `--quiet` and `--json`
/// keeps them off standard output.
#[derive(Clone, Copy)]
pub struct Diag {
    pub quiet: bool,
}

impl Diag {
    pub fn note(&self, s: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "note: {}", s.as_ref());
        }
    }

    pub fn warn(&self, s: impl AsRef<str>) {
        let _ = writeln!(io::stderr(), "warning: {}", s.as_ref());
    }

    pub fn info(&self, s: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "{}", s.as_ref());
        }
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Left-aligned columns, two spaces apart, the last column unpadded.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count() + 2));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// A progress bar on standard error when it is a terminal; nothing otherwise, with
/// `--quiet`, or with `--json`.
pub struct TermProgress {
    bar: Option<ProgressBar>,
}

impl TermProgress {
    pub fn new(enabled: bool) -> TermProgress {
        let on = enabled && io::stderr().is_terminal();
        TermProgress {
            bar: on.then(|| {
                let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                b.set_style(
                    ProgressStyle::with_template("{msg:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                b
            }),
        }
    }
}

impl ocitool_layout::Progress for TermProgress {
    fn start(&self, what: &str, total: u64) {
        if let Some(b) = &self.bar {
            b.reset();
            b.set_length(total);
            b.set_message(what.to_string());
        }
    }
    fn advance(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Progress of a transfer on a terminal: one bar for the total and one per blob in flight
/// (on standard error; nothing when it is not a terminal, with `--quiet` or `--json`).
pub struct TransferProgress {
    multi: Option<indicatif::MultiProgress>,
    total: Option<ProgressBar>,
    items: std::sync::Mutex<std::collections::HashMap<String, ProgressBar>>,
}

impl TransferProgress {
    pub fn new(enabled: bool) -> TransferProgress {
        let on = enabled && io::stderr().is_terminal();
        let multi =
            on.then(|| indicatif::MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let total = multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new(0));
            b.set_style(
                ProgressStyle::with_template(
                    "{msg:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        });
        TransferProgress {
            multi,
            total,
            items: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn items(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, ProgressBar>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ocitool_layout::Progress for TransferProgress {
    fn start(&self, what: &str, total: u64) {
        if let Some(b) = &self.total {
            b.reset();
            b.set_length(total);
            b.set_message(what.to_string());
        }
    }
    fn advance(&self, bytes: u64) {
        if let Some(b) = &self.total {
            b.inc(bytes);
        }
    }
    fn finish(&self) {
        for (_, b) in self.items().drain() {
            b.finish_and_clear();
        }
        if let Some(b) = &self.total {
            b.finish_and_clear();
        }
    }
    fn item_start(&self, id: &str, total: u64) {
        let Some(m) = &self.multi else { return };
        let b = m.add(ProgressBar::new(total));
        b.set_style(
            ProgressStyle::with_template("  {msg} [{bar:24}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        // The digest's first 12 hex digits, as `ls` shows them.
        let short = id
            .split_once(':')
            .map_or(id, |(_, h)| &h[..h.len().min(12)]);
        b.set_message(short.to_string());
        if let Some(old) = self.items().insert(id.to_string(), b) {
            old.finish_and_clear();
        }
    }
    fn item_advance(&self, id: &str, bytes: u64) {
        if self.multi.is_none() {
            return;
        }
        if let Some(b) = self.items().get(id) {
            b.inc(bytes);
        }
        self.advance(bytes);
    }
    fn item_finish(&self, id: &str) {
        if let Some(b) = self.items().remove(id) {
            b.finish_and_clear();
        }
    }
}
