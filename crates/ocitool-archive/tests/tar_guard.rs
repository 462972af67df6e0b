//! The tar guard (`ocitool_archive::guard`): long names, pax records and sparse members are
//! judged from their headers, before the tar crate buffers or expands them, and the guard
//! frames the stream exactly as the tar crate does (a pax `size` overrides the header's).

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ocitool_archive::import::{self, ImportOptions};
use ocitool_digest::Digest;
use ocitool_layout::{Layout, NoProgress, Options, WaitMode};

fn layout(dir: &tempfile::TempDir) -> Layout {
    let options = Options {
        wait: WaitMode::NoWait,
        durable: false,
        ..Options::default()
    };
    Layout::init(dir.path().join("l"), options).unwrap().0
}

fn import_err(input: impl Read) -> String {
    let d = tempfile::tempdir().unwrap();
    let l = layout(&d);
    let e = import::import(&l, input, &ImportOptions::default(), &NoProgress)
        .expect_err("the archive must be refused");
    // Nothing was published.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(l.index_path()).unwrap()).unwrap();
    assert_eq!(index["manifests"], serde_json::json!([]));
    e.to_string()
}

/// A stream of `head` followed by `fill` bytes without end, counting what is read of it.
struct Generator {
    head: Vec<u8>,
    pos: usize,
    fill: u8,
    read: Arc<AtomicU64>,
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            n
        } else {
            buf.fill(self.fill);
            buf.len()
        };
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn record_header(name: &[u8], flag: u8, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::new(flag));
    h.set_cksum();
    h
}

fn file_header(name: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    h
}

fn pad(v: &mut Vec<u8>) {
    v.resize(v.len().div_ceil(512) * 512, 0);
}

fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = k.len() + v.len() + 3;
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}={v}\n").as_bytes());
    }
    out
}

#[test]
fn a_100_mb_long_name_fails_at_its_header_without_being_read() {
    for (flag, what) in [(b'L', "GNU long name"), (b'K', "GNU long link name")] {
        let read = Arc::new(AtomicU64::new(0));
        let g = Generator {
            head: record_header(b"././@LongLink", flag, 100 << 20)
                .as_bytes()
                .to_vec(),
            pos: 0,
            fill: b'n',
            read: read.clone(),
        };
        let e = import_err(g);
        assert!(e.contains(what), "{e}");
        assert!(e.contains("104857600 bytes"), "{e}");
        assert!(e.contains("over the limit of 65536"), "{e}");
        // The member is named by the start of its name.
        assert!(e.contains("nnnnnnnn"), "{e}");
        // Only the reader's buffers were filled: nothing like 100 MB was read.
        let n = read.load(Ordering::Relaxed);
        assert!(n < 1 << 20, "{n} bytes read");
    }
}

#[test]
fn a_100_mb_pax_header_fails_at_its_header_without_being_read() {
    for flag in [b'x', b'g'] {
        let read = Arc::new(AtomicU64::new(0));
        let g = Generator {
            head: record_header(b"PaxHeaders.0/layer.tar", flag, 100 << 20)
                .as_bytes()
                .to_vec(),
            pos: 0,
            fill: b'9',
            read: read.clone(),
        };
        let e = import_err(g);
        assert!(e.contains("pax"), "{e}");
        assert!(e.contains("PaxHeaders.0/layer.tar"), "{e}");
        assert!(read.load(Ordering::Relaxed) < 1 << 20);
    }
}

#[test]
fn long_names_and_pax_records_under_the_limit_are_read() {
    // A 60 KiB long name passes the guard (the path is then refused for its length by the
    // importer's own 4096-byte rule, which names it).
    let name = "d/".repeat(30 << 10);
    let mut a = Vec::new();
    a.extend_from_slice(record_header(b"././@LongLink", b'L', name.len() as u64).as_bytes());
    a.extend_from_slice(name.as_bytes());
    pad(&mut a);
    a.extend_from_slice(file_header("x", 1).as_bytes());
    a.push(b'x');
    pad(&mut a);
    a.resize(a.len() + 1024, 0);
    let e = import_err(&a[..]);
    assert!(!e.contains("over the limit of 65536"), "{e}");
}

#[test]
fn a_sparse_member_is_refused_before_it_expands() {
    let mut a = ocitool_testkit::archives::sparse_header("layer.tar", 100 << 30, 512)
        .as_bytes()
        .to_vec();
    a.extend_from_slice(&[7; 512]);
    a.resize(a.len() + 1024, 0);
    let e = import_err(&a[..]);
    assert!(e.contains("layer.tar") && e.contains("sparse"), "{e}");
    assert!(e.contains("107374182400 bytes expanded from 512"), "{e}");

    // The pax form of a sparse file (GNU tar --format=posix --sparse): GNU.sparse.* keys.
    let rec = pax(&[
        ("GNU.sparse.major", "1"),
        ("GNU.sparse.minor", "0"),
        ("GNU.sparse.name", "layer.tar"),
        ("GNU.sparse.realsize", "107374182400"),
    ]);
    let mut a = record_header(b"PaxHeaders.0/layer.tar", b'x', rec.len() as u64)
        .as_bytes()
        .to_vec();
    a.extend_from_slice(&rec);
    pad(&mut a);
    a.extend_from_slice(file_header("GNUSparseFile.0/layer.tar", 1024).as_bytes());
    a.extend_from_slice(&[0; 1024]);
    a.resize(a.len() + 1024, 0);
    let e = import_err(&a[..]);
    assert!(
        e.contains("sparse") && e.contains("GNUSparseFile.0/layer.tar"),
        "{e}"
    );
}

/// A member whose data holds what looks like a huge long-name header.
fn decoy() -> Vec<u8> {
    let mut data = record_header(b"././@LongLink", b'L', 1 << 30)
        .as_bytes()
        .to_vec();
    data.resize(1024, b'z');
    data
}

#[test]
fn a_pax_size_frames_the_next_member_as_the_tar_crate_does() {
    // The header says 0 bytes, the pax record 1024: the decoy is data, not a header.
    let data = decoy();
    let name = format!("blobs/sha256/{}", Digest::sha256(&data).encoded());
    let rec = pax(&[("size", "1024")]);
    let mut a = record_header(b"PaxHeaders.0/x", b'x', rec.len() as u64)
        .as_bytes()
        .to_vec();
    a.extend_from_slice(&rec);
    pad(&mut a);
    a.extend_from_slice(file_header(&name, 0).as_bytes());
    a.extend_from_slice(&data);
    a.resize(a.len() + 1024, 0);
    let e = import_err(&a[..]);
    assert!(e.contains("not an image archive"), "{e}");

    // The header says 1024 bytes, the pax record 0: the decoy is the next header.
    let rec = pax(&[("size", "0")]);
    let mut a = record_header(b"PaxHeaders.0/x", b'x', rec.len() as u64)
        .as_bytes()
        .to_vec();
    a.extend_from_slice(&rec);
    pad(&mut a);
    a.extend_from_slice(file_header("empty", 1024).as_bytes());
    a.extend_from_slice(&data);
    a.resize(a.len() + 1024, 0);
    let e = import_err(&a[..]);
    assert!(e.contains("GNU long name of 1073741824 bytes"), "{e}");

    // Without a pax record the header's size holds: the decoy is data.
    let mut a = file_header(&name, 1024).as_bytes().to_vec();
    a.extend_from_slice(&data);
    a.resize(a.len() + 1024, 0);
    let e = import_err(&a[..]);
    assert!(e.contains("not an image archive"), "{e}");
}

#[test]
fn the_guard_stops_at_the_end_of_the_archive() {
    // After the two zero blocks the tar crate reads nothing more; neither does the guard
    // judge what follows (here a huge long-name header).
    let mut a = file_header("x", 1).as_bytes().to_vec();
    a.push(b'x');
    pad(&mut a);
    a.resize(a.len() + 1024, 0);
    a.extend_from_slice(&decoy());
    let e = import_err(&a[..]);
    assert!(e.contains("not an image archive"), "{e}");
}
