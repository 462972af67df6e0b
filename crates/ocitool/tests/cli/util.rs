#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ocitool")
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn testdata(rel: &str) -> PathBuf {
    workspace().join("testdata").join(rel)
}

/// A temporary directory holding a copy of `testdata/layouts/<name>` at `<tmp>/layout`.
pub struct Fx {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn fixture(name: &str) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout");
    copy_dir(&testdata(&format!("layouts/{name}")), &path);
    Fx { dir, path }
}

pub fn empty_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// Runs ocitool with these arguments.
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(bin()).args(args).output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs ocitool, expects exit 0, returns stdout.
#[track_caller]
pub fn ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let o = run(args);
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Runs ocitool with `--json`, expects exit 0, parses stdout.
#[track_caller]
pub fn json<I, S>(args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut a: Vec<std::ffi::OsString> = args
        .into_iter()
        .map(|s| s.as_ref().to_os_string())
        .collect();
    a.push("--json".into());
    let out = ok(&a);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Expects a failure with exit `code` and a single `error:` line on stderr mentioning every
/// one of `needles`; returns stderr.
#[track_caller]
pub fn fails<I, S>(code: i32, needles: &[&str], args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {err}",
        stdout(&o)
    );
    if code >= 3 {
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "want one error line, got: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
    }
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    err
}

/// Every file of a layout (but ocitool's private state) with the digest of its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if rel.starts_with(".ocitool") {
                continue;
            }
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                );
            } else {
                out.insert(
                    rel,
                    ocitool_digest::Digest::sha256(&std::fs::read(&p).unwrap()).to_string(),
                );
            }
        }
    }
    out
}

pub fn index_json(layout: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap()
}

/// `ref.name` → digest for every named entry of index.json.
pub fn refs(layout: &Path) -> BTreeMap<String, String> {
    let idx = index_json(layout);
    let mut m = BTreeMap::new();
    for d in idx["manifests"].as_array().cloned().unwrap_or_default() {
        if let Some(n) = d["annotations"]["org.opencontainers.image.ref.name"].as_str() {
            m.insert(n.to_string(), d["digest"].as_str().unwrap().to_string());
        }
    }
    m
}

/// Asserts `ocitool verify` passes.
#[track_caller]
pub fn verify_clean(layout: &Path) {
    let o = run([Path::new("verify"), layout]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "verify failed:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// Whether an external tool is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// For interop tests: true if the peer is present. Without it, fails under CI=true and
/// otherwise prints a loud SKIPPED line and returns false.
pub fn peer(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is required in CI (CI=true) but is not installed; .ci/run installs it");
    }
    eprintln!("SKIPPED: {tool} is not installed; interop test not run (install it or see .ci/run)");
    false
}

/// Runs an external command, expecting success.
#[track_caller]
pub fn sh(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(alg).join(hex)
}

/// A read-only bind mount of `dir` (needs root); unmounted on drop.
pub struct RoMount {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl RoMount {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RoMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Mounts `dir` read-only elsewhere, or says loudly why it cannot (and fails under CI=true).
pub fn read_only_mount(dir: &Path) -> Option<RoMount> {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("ro");
    std::fs::create_dir(&path).unwrap();
    let bind = Command::new("mount")
        .arg("--bind")
        .arg(dir)
        .arg(&path)
        .output();
    let ok = bind.as_ref().is_ok_and(|o| o.status.success())
        && Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        let _ = Command::new("umount").arg(&path).status();
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("cannot make a read-only bind mount (needs root) in CI");
        }
        eprintln!("SKIPPED: cannot make a read-only bind mount here (needs root)");
        return None;
    }
    Some(RoMount { _dir: t, path })
}

/// podman as root with vfs storage in a private root under `dir`.
pub fn podman(dir: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(dir.join("podman-root"))
        .arg("--runroot")
        .arg(dir.join("podman-run"))
        .args([
            "--storage-driver",
            "vfs",
            "--events-backend",
            "none",
            "--cgroup-manager",
            "cgroupfs",
        ]);
    c
}

/// A private containerd (own root, state and socket), stopped by its pid when dropped.
pub struct Containerd {
    child: std::process::Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Containerd {
    pub fn start() -> Containerd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let socket = d.join("containerd.sock");
        let config = d.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n[grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{ttrpc}\"\n[debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
                root = d.join("root").display(),
                state = d.join("state").display(),
                sock = socket.display(),
                ttrpc = d.join("ttrpc.sock").display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd {
            child,
            socket,
            _dir: dir,
        };
        for _ in 0..100 {
            if c.ctr()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return c;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("private containerd did not start; see its log");
    }

    pub fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address").arg(&self.socket);
        c
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A running `ocitool serve` on a free 127.0.0.1 port (`--listen 127.0.0.1:0` unless the
/// arguments say otherwise), stopped by its pid when dropped. Registry clients under test
/// (skopeo, podman, ctr, `ocitool pull`) pull from `addr`.
pub struct Served {
    child: Option<std::process::Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The first line it printed, which holds the URL.
    pub banner: String,
    rest: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts `ocitool serve ARGS...` and waits for its first line.
pub fn serve<I, S>(args: I) -> Served
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("stderr");
    let mut args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
    if !args.iter().any(|a| a == "--listen") {
        args.extend(["--listen".into(), "127.0.0.1:0".into()]);
    }
    let mut child = Command::new(bin())
        .arg("serve")
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let rest = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = rest.clone();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let Ok(banner) = rx.recv_timeout(std::time::Duration::from_secs(60)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "ocitool serve {args:?} printed nothing: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
    };
    let at = banner.find("://").expect("the banner holds the URL") + 3;
    let addr: String = banner[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    Served {
        child: Some(child),
        addr,
        banner,
        rest,
        stderr,
        _dir: dir,
    }
}

impl Served {
    /// What it wrote on standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Its standard error once it holds `needle` (or after 10 s): a server logs from a
    /// thread of its own, after the answer went out.
    pub fn stderr_with(&self, needle: &str) -> String {
        self.stderr_when(|log| log.contains(needle))
    }

    /// Its standard error once `done` says so (or after 10 s).
    pub fn stderr_when(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = self.stderr();
            if done(&text) || std::time::Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The lines it printed on standard output after the first.
    pub fn lines(&self) -> Vec<String> {
        self.rest.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `signal` (`TERM`, `INT`) and waits; the exit code.
    pub fn stop(&mut self, signal: &str) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                // Let the reader thread take the last lines.
                std::thread::sleep(std::time::Duration::from_millis(50));
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("ocitool serve did not stop within 10 s of SIG{signal}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            for _ in 0..200 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Registry commands (pull, push, login, logout, ls-remote).

/// Registry commands never see the host's proxies or credential files.
pub fn oci(dir: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("https_proxy")
        .env_remove("http_proxy")
        .env("HOME", dir)
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .env_remove("XDG_CONFIG_HOME");
    c
}

#[track_caller]
pub fn run_ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

#[track_caller]
pub fn run_json(c: &mut Command) -> Value {
    let out = run_ok(c.arg("--json"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[track_caller]
pub fn run_fails(c: &mut Command, needles: &[&str]) -> String {
    let o = c.output().unwrap();
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{c:?}\nstdout: {}\nstderr: {err}",
        stdout(&o)
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    err
}

pub fn ref_digest(layout: &Path, name: &str) -> String {
    refs(layout)
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no ref {name} in {:?}", refs(layout)))
}
