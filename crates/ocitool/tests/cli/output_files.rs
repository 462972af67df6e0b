//! `-o FILE` of export, pack and inventory: special files written in place, symlinks followed,
//! directories refused, partial files removed on SIGINT/SIGTERM and by the next run after a
//! `kill -9`, a closed standard output, a full disk named.

use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::*;

const PARTIAL: &str = ".ocitool-partial-";

/// A layout with one image of a `size`-byte incompressible layer under `big:1`.
fn big_layout(dir: &Path, size: usize) -> PathBuf {
    use ocitool_testkit::tarball::{Content, build};
    let mut data = vec![0u8; size];
    ocitool_testkit::Rng::new(7).fill(&mut data);
    let tar = build(&[("data.bin", Content::File(&data))]);
    let img = ocitool_testkit::Image::from_tars(
        &[tar],
        ("linux", "amd64", None),
        ocitool_compress::Compression::None,
        false,
        serde_json::Value::Null,
        serde_json::Value::Null,
    );
    let l = dir.join("big");
    let mut w = ocitool_testkit::LayoutWriter::new();
    w.add_image(&img).list(&img.manifest, Some("big:1"));
    w.write(&l).unwrap();
    l
}

/// The archive `export LAYOUT app:1.0` writes to standard output (it is deterministic).
fn archive_bytes(layout: &Path, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["export", layout.to_str().unwrap(), "app:1.0", "-o", "-"];
    args.extend(extra);
    let o = run(args);
    assert!(o.status.success(), "{}", stderr(&o));
    o.stdout
}

fn partials(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.starts_with(PARTIAL).then_some(n)
        })
        .collect()
}

#[test]
fn a_fifo_is_written_in_place_and_stays_a_fifo() {
    let fx = fixture("minimal");
    let want = archive_bytes(&fx.path, &[]);
    let fifo = fx.dir.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (tx, rx) = mpsc::channel();
    let reader = fifo.clone();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let r = std::fs::File::open(&reader).and_then(|mut f| f.read_to_end(&mut v));
        let _ = tx.send(r.map(|_| v));
    });
    let o = run([
        "export".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "-o".as_ref(),
        fifo.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the reader of the fifo got nothing: was the fifo replaced?")
        .unwrap();
    assert_eq!(got, want, "the fifo's reader got the archive");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the fifo is still a fifo"
    );
    assert!(partials(fx.dir.path()).is_empty());
}

/// `/proc/self/fd/1` (what `/dev/stdout` links to) is the pipe of standard output: written in
/// place, not a file to create in `/proc/self/fd`.
#[test]
fn dev_stdout_style_links_write_into_the_pipe() {
    let fx = fixture("minimal");
    let want = archive_bytes(&fx.path, &["--format", "oci"]);
    let o = run([
        "export",
        fx.path.to_str().unwrap(),
        "app:1.0",
        "--format",
        "oci",
        "-o",
        "/proc/self/fd/1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, want);
}

#[test]
fn a_symlink_is_followed_and_kept() {
    let fx = fixture("minimal");
    let want = archive_bytes(&fx.path, &[]);
    let d = fx.dir.path();
    std::fs::create_dir(d.join("real")).unwrap();
    std::fs::write(d.join("real/app.tar"), b"old").unwrap();
    std::os::unix::fs::symlink("real/app.tar", d.join("link.tar")).unwrap();
    // A dangling link: its target is created.
    std::os::unix::fs::symlink("real/new.tar", d.join("dangling.tar")).unwrap();
    for (link, target) in [
        ("link.tar", "real/app.tar"),
        ("dangling.tar", "real/new.tar"),
    ] {
        ok([
            "export".as_ref(),
            fx.path.as_os_str(),
            "app:1.0".as_ref(),
            "-o".as_ref(),
            d.join(link).as_os_str(),
        ]);
        let md = std::fs::symlink_metadata(d.join(link)).unwrap();
        assert!(md.file_type().is_symlink(), "{link} is still a symlink");
        assert_eq!(std::fs::read_link(d.join(link)).unwrap(), Path::new(target));
        assert_eq!(std::fs::read(d.join(target)).unwrap(), want, "{target}");
    }
    assert!(partials(d).is_empty() && partials(&d.join("real")).is_empty());
}

#[test]
fn a_directory_is_refused_before_any_work() {
    let fx = fixture("minimal");
    let out = fx.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for cmd in [&["export", "app:1.0"][..], &["pack"], &["inventory"]] {
        let mut args: Vec<&std::ffi::OsStr> = vec![cmd[0].as_ref(), fx.path.as_os_str()];
        args.extend(cmd[1..].iter().map(std::ffi::OsStr::new));
        args.extend(["-o".as_ref(), out.as_os_str()]);
        fails(
            3,
            &["is a directory", "-o takes the name of the file"],
            args,
        );
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

/// A character device of our own (the same as `/dev/null`, made with mknod, so a regression
/// cannot destroy the machine's): written in place, still a device afterwards. Needs root.
#[test]
fn a_device_node_is_written_in_place_never_replaced() {
    let fx = fixture("minimal");
    let node = fx.dir.path().join("null");
    let made = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made || std::fs::OpenOptions::new().write(true).open(&node).is_err() {
        eprintln!("SKIPPED: cannot make and open a device node here (needs root and a dev mount)");
        return;
    }
    for cmd in [&["export", "app:1.0"][..], &["pack"], &["inventory"]] {
        let mut args: Vec<&std::ffi::OsStr> = vec![cmd[0].as_ref(), fx.path.as_os_str()];
        args.extend(cmd[1..].iter().map(std::ffi::OsStr::new));
        args.extend(["-o".as_ref(), node.as_os_str()]);
        ok(args);
        let ft = std::fs::symlink_metadata(&node).unwrap().file_type();
        assert!(ft.is_char_device(), "{} replaced {node:?}", cmd[0]);
    }
    assert!(partials(fx.dir.path()).is_empty());
}

/// Holds the layout's gc lock as a running gc would: an export creates its partial file, then
/// waits for the lock, so a signal finds it mid-way.
fn hold_gc_lock(layout: &Path) -> std::fs::File {
    std::fs::create_dir_all(layout.join(".ocitool")).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(layout.join(".ocitool/gc.lock"))
        .unwrap();
    f.lock().unwrap();
    f
}

fn spawn(args: &[&std::ffi::OsStr]) -> Child {
    Command::new(bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_partial(dir: &Path) {
    let t0 = Instant::now();
    while partials(dir).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no partial file appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sigint_and_sigterm_remove_the_partial_file_and_exit_130_or_143() {
    let fx = fixture("minimal");
    let out_dir = fx.dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("app.tar");
    let lock = hold_gc_lock(&fx.path);
    for (sig, code, cmd) in [
        ("TERM", 143, &["export", "app:1.0"][..]),
        ("INT", 130, &["pack"][..]),
        ("TERM", 143, &["pack"][..]),
        ("INT", 130, &["export", "app:1.0"][..]),
    ] {
        let mut args: Vec<&std::ffi::OsStr> = vec![cmd[0].as_ref(), fx.path.as_os_str()];
        args.extend(cmd[1..].iter().map(std::ffi::OsStr::new));
        args.extend(["-o".as_ref(), out.as_os_str()]);
        let child = spawn(&args);
        wait_for_partial(&out_dir);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(
            o.status.code(),
            Some(code),
            "SIG{sig} of {}: {:?} {err}",
            cmd[0],
            o.status.signal()
        );
        assert!(
            err.lines().any(|l| l.starts_with("error: interrupted")),
            "{err}"
        );
        assert_eq!(partials(&out_dir), Vec::<String>::new(), "SIG{sig}");
        assert!(!out.exists());
    }
    drop(lock);
}

/// `kill -9` leaves the partial file; the next export into that directory removes it (its lock
/// is free) and says so, while a partial file whose writer lives, a symlink and other files
/// stay.
#[test]
fn the_next_run_removes_partial_files_of_dead_writers_only() {
    let fx = fixture("minimal");
    let out_dir = fx.dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("app.tar");
    let lock = hold_gc_lock(&fx.path);
    let mut child = spawn(&[
        "export".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    wait_for_partial(&out_dir);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(lock);
    let killed = partials(&out_dir);
    assert_eq!(killed.len(), 1, "kill -9 leaves the partial file");

    // A live writer's partial (locked), a symlink with the prefix, an unrelated file.
    let live = out_dir.join(format!("{PARTIAL}live"));
    let held = std::fs::File::create(&live).unwrap();
    held.lock().unwrap();
    let outside = fx.dir.path().join("precious");
    std::fs::write(&outside, b"keep me").unwrap();
    std::os::unix::fs::symlink(&outside, out_dir.join(format!("{PARTIAL}link"))).unwrap();
    std::fs::write(out_dir.join("notes.txt"), b"x").unwrap();

    let o = run([
        "export".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("removed 1 partial file(s)"),
        "{}",
        stderr(&o)
    );
    let mut left = partials(&out_dir);
    left.sort();
    assert_eq!(
        left,
        vec![format!("{PARTIAL}link"), format!("{PARTIAL}live")]
    );
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep me");
    assert!(out_dir.join("notes.txt").exists() && out.exists());
    drop(held);
}

/// `export -o - | head -c 100`: the closed pipe ends the export quietly with exit 0, as for
/// `ls | head`.
#[test]
fn a_closed_standard_output_is_success() {
    let d = empty_dir();
    let l = big_layout(d.path(), 4 << 20);
    for cmd in [&["export", "big:1"][..], &["pack"]] {
        let mut child = Command::new(bin())
            .arg(cmd[0])
            .arg(&l)
            .args(&cmd[1..])
            .args(["-o", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 100];
        child.stdout.take().unwrap().read_exact(&mut head).unwrap();
        // The pipe is closed here, with megabytes still to come.
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}: {}", cmd[0], stderr(&o));
        assert!(!stderr(&o).contains("error"), "{}", stderr(&o));
    }
}

/// A full disk: the error names the output file, and nothing is left there. On a 1 MiB tmpfs
/// (needs root); elsewhere `outfile::tests::a_full_disk_names_the_file` covers the naming.
#[test]
fn a_full_disk_names_the_output_file() {
    let d = empty_dir();
    let l = big_layout(d.path(), 3 << 20);
    let mnt = d.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root); the unit test covers the message");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let out = mnt.join("big.tar");
    for extra in [&[][..], &["--no-fsync"][..]] {
        for cmd in [&["export", "big:1"][..], &["pack"]] {
            let mut args: Vec<&std::ffi::OsStr> = vec![cmd[0].as_ref(), l.as_os_str()];
            args.extend(cmd[1..].iter().map(std::ffi::OsStr::new));
            args.extend(["-o".as_ref(), out.as_os_str()]);
            args.extend(extra.iter().map(std::ffi::OsStr::new));
            let err = fails(3, &["No space left on device"], args);
            assert!(
                err.contains(&format!("write {}", out.display())),
                "{} {extra:?}: {err}",
                cmd[0]
            );
            assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0, "{err}");
        }
    }
}
