//! Everything that is written to the terminal: text, JSON, sizes, progress.

use std::borrow::Cow;
use std::fmt::Write as _;
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

/// A write to standard output failed (other than a closed pipe): a full disk behind `> file`,
/// `> /dev/full`. After a committed change, `main_impl` turns it into a warning.
#[derive(Debug)]
pub struct StdoutFailed(io::Error);

impl std::fmt::Display for StdoutFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("write to standard output")
    }
}

impl std::error::Error for StdoutFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn map_io(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(BrokenPipe)
    } else {
        anyhow::Error::new(StdoutFailed(e))
    }
}

/// Text from an image or `index.json` (ref names, config fields, annotations, platforms) made
/// safe for a terminal: every control character (C0 including tab and newline, DEL, C1) and
/// every bidirectional override or isolate becomes a visible escape (`\x1b`, `\n`, `\u{9b}`,
/// `\u{202e}`), so content cannot move the cursor, set the title, clear the screen, fake rows
/// or reorder what is shown. Everything else, ordinary Unicode included, is kept. Applied to
/// every human line ([`Out::line`], [`table`] cells, notes, warnings and `error:` lines);
/// JSON is escaped by serde and raw bytes (`inspect --raw`, `blob get`) are data.
pub fn term_text(s: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && unsafe_char(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

impl Out {
    pub fn new() -> Out {
        Out {
            inner: io::BufWriter::with_capacity(64 << 10, io::stdout()),
        }
    }

    /// One line of human output, escaped for the terminal ([`term_text`]).
    pub fn line(&mut self, s: impl AsRef<str>) -> anyhow::Result<()> {
        self.inner
            .write_all(term_text(s.as_ref()).as_bytes())
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

/// Diagnostics on standard error (notes, warnings, summaries), silenced by `--quiet`; `--json`
/// keeps them off standard output.
#[derive(Clone, Copy)]
pub struct Diag {
    pub quiet: bool,
}

impl Diag {
    pub fn note(&self, s: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "note: {}", term_text(s.as_ref()));
        }
    }

    /// Something is wrong but did not stop the command. `--quiet` silences it too: it asks for
    /// errors only (a script that wants warnings runs without `-q` and reads standard error).
    pub fn warn(&self, s: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "warning: {}", term_text(s.as_ref()));
        }
    }

    pub fn info(&self, s: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "{}", term_text(s.as_ref()));
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
/// Cells are escaped for the terminal ([`term_text`]) before they are measured.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| term_text(c)).collect())
        .collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in &rows {
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
/// `--quiet`, or with `--json`. A phase of unknown size (an archive from standard input) shows
/// the bytes done and the rate, with no bar and no total.
pub struct TermProgress {
    bar: Option<ProgressBar>,
    /// Shown instead of the phase's own name (`pack` for the library's `export` phase).
    label: Option<&'static str>,
}

const BAR_TEMPLATE: &str =
    "{msg:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}";
const COUNT_TEMPLATE: &str = "{msg:>8} {bytes} {binary_bytes_per_sec}";

impl TermProgress {
    pub fn new(enabled: bool) -> TermProgress {
        let on = enabled && io::stderr().is_terminal();
        TermProgress::with_bar(
            on.then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())),
        )
    }

    fn with_bar(bar: Option<ProgressBar>) -> TermProgress {
        TermProgress { bar, label: None }
    }

    /// Names every phase `label` (the command's name where the library's phase is another's).
    pub fn labelled(mut self, label: &'static str) -> TermProgress {
        self.label = Some(label);
        self
    }
}

fn progress_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl ocitool_layout::Progress for TermProgress {
    fn start(&self, what: &str, total: u64) {
        if let Some(b) = &self.bar {
            b.reset();
            if total == 0 {
                b.set_style(progress_style(COUNT_TEMPLATE));
                b.unset_length();
            } else {
                b.set_style(progress_style(BAR_TEMPLATE));
                b.set_length(total);
            }
            b.set_message(self.label.unwrap_or(what).to_string());
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

#[cfg(test)]
mod progress_tests {
    use super::*;
    use ocitool_layout::Progress;

    #[test]
    fn a_label_replaces_the_phase_name_and_an_unknown_total_shows_no_total() {
        let p = TermProgress::with_bar(Some(ProgressBar::hidden())).labelled("pack");
        p.start("export", 1000);
        let b = p.bar.as_ref().unwrap();
        assert_eq!(b.message(), "pack");
        assert_eq!(b.length(), Some(1000));
        let p = TermProgress::with_bar(Some(ProgressBar::hidden()));
        p.start("import", 0);
        let b = p.bar.as_ref().unwrap();
        assert_eq!(b.message(), "import");
        assert_eq!(
            b.length(),
            None,
            "no fake total for a stream of unknown size"
        );
        p.advance(5);
        assert_eq!(b.position(), 5);
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
            b.set_style(progress_style(BAR_TEMPLATE));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_unicode_is_kept() {
        assert!(matches!(
            term_text("app:1.0 ünïcødé 日本"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            term_text("a\x1b]0;owned\x07b\x1b[2Jc"),
            "a\\x1b]0;owned\\x07b\\x1b[2Jc"
        );
        assert_eq!(term_text("x\ny\rz\tw\x7f"), "x\\ny\\rz\\tw\\x7f");
        assert_eq!(term_text("c1\u{9b}31m"), "c1\\u{9b}31m");
        assert_eq!(term_text("rev\u{202e}txt"), "rev\\u{202e}txt");
        // Escaping twice changes nothing more.
        let once = term_text("\x1b[31m").into_owned();
        assert_eq!(term_text(&once), once);
    }

    #[test]
    fn tables_measure_escaped_cells() {
        let t = table(&[
            vec!["a\x1b".into(), "x".into()],
            vec!["bbbbbb".into(), "y".into()],
        ]);
        assert_eq!(t, vec!["a\\x1b   x", "bbbbbb  y"]);
    }
}
