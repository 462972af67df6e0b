//! Reading an archive without a layout (`import::read`) resolves what `import` resolves and
//! fails where it fails; `import`, `unpack` and `read` report their phase to the progress
//! display under their own name, with the archive's size as the total.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ocitool_archive::export::{self, ExportOptions, Format, Selection};
use ocitool_archive::import::{self, ImportOptions, Mode};
use ocitool_archive::ingest::Limits;
use ocitool_layout::{Layout, NoProgress, Options, Progress};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// Every call a phase gets: `(name, total)` per start, and the bytes advanced.
#[derive(Default)]
struct Recording {
    starts: Mutex<Vec<(String, u64)>>,
    advanced: Mutex<u64>,
}

impl Progress for Recording {
    fn start(&self, what: &str, total: u64) {
        self.starts.lock().unwrap().push((what.to_string(), total));
    }
    fn advance(&self, bytes: u64) {
        *self.advanced.lock().unwrap() += bytes;
    }
}

/// The whole layout as an oci-archive (what `pack` writes).
fn pack(layout: &Layout) -> Vec<u8> {
    let opts = ExportOptions {
        format: Format::Oci,
        platform: None,
        referrers: true,
        exclude: None,
    };
    export::export(layout, &Selection::All, &opts, Vec::new(), &NoProgress)
        .unwrap()
        .1
}

fn options(mode: Mode, size: Option<u64>) -> ImportOptions {
    ImportOptions {
        mode,
        size,
        ..Default::default()
    }
}

#[test]
fn each_phase_is_named_for_its_command_with_the_archive_size_as_total() {
    let d = tempfile::tempdir().unwrap();
    let archive = std::fs::read(testdata("archives/docker-save.tar")).unwrap();
    let size = archive.len() as u64;
    let layout = Layout::open_or_init(d.path().join("l"), Options::default()).unwrap();

    let p = Recording::default();
    import::import(
        &layout,
        &archive[..],
        &options(Mode::Import, Some(size)),
        &p,
    )
    .unwrap();
    assert_eq!(*p.starts.lock().unwrap(), [("import".to_string(), size)]);
    assert_eq!(*p.advanced.lock().unwrap(), size);

    // A stream of unknown size (standard input) has no total.
    let p = Recording::default();
    import::import(&layout, &archive[..], &options(Mode::Import, None), &p).unwrap();
    assert_eq!(*p.starts.lock().unwrap(), [("import".to_string(), 0)]);

    let pack = pack(&layout);
    let u = Layout::open_or_init(d.path().join("u"), Options::default()).unwrap();
    let p = Recording::default();
    let n = pack.len() as u64;
    import::import(&u, &pack[..], &options(Mode::Unpack, Some(n)), &p).unwrap();
    assert_eq!(*p.starts.lock().unwrap(), [("unpack".to_string(), n)]);
    assert_eq!(*p.advanced.lock().unwrap(), n);

    let p = Recording::default();
    import::read(
        &archive[..],
        Path::new("docker-save.tar"),
        &Limits::default(),
        Some(size),
        &p,
    )
    .unwrap();
    assert_eq!(*p.starts.lock().unwrap(), [("read".to_string(), size)]);
    assert_eq!(*p.advanced.lock().unwrap(), size);
}

#[test]
fn unpack_reports_one_image_with_every_ref() {
    let d = tempfile::tempdir().unwrap();
    let archive = std::fs::read(testdata("archives/docker-save.tar")).unwrap();
    let layout = Layout::open_or_init(d.path().join("l"), Options::default()).unwrap();
    import::import(
        &layout,
        &archive[..],
        &ImportOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let pack = pack(&layout);
    let u = Layout::open_or_init(d.path().join("u"), Options::default()).unwrap();
    let r = import::import(&u, &pack[..], &options(Mode::Unpack, None), &NoProgress).unwrap();
    // app:1.0 and app:latest are two descriptors of one image in index.json.
    assert_eq!(r.images.len(), 2, "{:?}", r.images);
    assert_eq!(r.refs(), 3);
    let app = r.images.iter().find(|i| i.refs.len() == 2).unwrap();
    assert_eq!(app.refs, ["app:1.0", "app:latest"]);
}

/// Every hostile archive that `import` refuses, `read` refuses with the same message.
#[test]
fn read_fails_where_import_fails_with_the_same_error() {
    for (name, bytes, what) in ocitool_testkit::archives::malicious() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_init(d.path().join("l"), Options::default()).unwrap();
        let imported = import::import(&layout, &bytes[..], &ImportOptions::default(), &NoProgress)
            .err()
            .unwrap_or_else(|| panic!("{name} ({what}) imports"));
        let read = import::read(
            &bytes[..],
            Path::new("x.tar"),
            &Limits::default(),
            None,
            &NoProgress,
        )
        .err()
        .unwrap_or_else(|| panic!("{name} ({what}) reads"));
        assert_eq!(read.to_string(), imported.to_string(), "{name} ({what})");
    }
}
