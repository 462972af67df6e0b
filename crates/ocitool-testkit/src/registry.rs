//! Real registries for tests: Debian's `docker-registry` (Distribution 2.8.2) started on
//! 127.0.0.1 with a free port, in three configurations, plus a small token issuer and a
//! fault-injecting TCP relay. Nothing here mocks a registry.
//!
//! - [`Mode::Plain`]: plain HTTP, no authentication.
//! - [`Mode::TlsBasic`]: TLS with a certificate from a CA made here (`ca.crt` in
//!   [`TestRegistry::cert_dir`]) and htpasswd Basic auth ([`USER`]/[`PASSWORD`], bcrypt).
//! - [`Mode::Token`]: plain HTTP with bearer tokens that the registry verifies against the
//!   root certificate of [`TokenServer`], which signs ES256 JWTs with an `x5c` header; anonymous
//!   tokens may pull, [`USER`] may push, and so may the holder of [`IDENTITY_TOKEN`] (an OAuth2
//!   refresh token, POSTed as `grant_type=refresh_token`, or for a server without OAuth2 sent
//!   as the Basic password of `<token>`).
//!
//! Servers are stopped by their pid when dropped. A test calls [`TestRegistry::start`], which
//! returns `None` (after printing `SKIPPED`) when `docker-registry` is not installed, and
//! panics instead under `CI=true`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// The user of the authenticated modes.
pub const USER: &str = "tester";
/// Its password.
pub const PASSWORD: &str = "s3cret";
/// An OAuth2 refresh token of [`USER`] that the token server knows from the start (what
/// `identitytoken` in a credential file, or a helper's `<token>` user, holds).
pub const IDENTITY_TOKEN: &str = "ocitool-test-identity-token";

const BINARY: &str = "docker-registry";
const ISSUER: &str = "ocitool-test-issuer";
const SERVICE: &str = "ocitool-test-registry";

/// How the registry is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    TlsBasic,
    Token,
}

/// A running `docker-registry`.
pub struct TestRegistry {
    pub mode: Mode,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    token: Option<TokenServer>,
}

/// Whether `docker-registry` is installed; without it: `SKIPPED` (or a panic under CI=true).
pub fn available() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(BINARY).is_file()));
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{BINARY} is required in CI (CI=true) but is not installed; .ci/run installs it");
    }
    eprintln!(
        "SKIPPED: {BINARY} is not installed; registry test not run (apt-get install docker-registry)"
    );
    false
}

/// A free port on 127.0.0.1 (free when asked; tests live with the small race).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

impl TestRegistry {
    /// Starts a registry, or returns `None` when `docker-registry` is missing (see
    /// [`available`]).
    pub fn start(mode: Mode) -> Option<TestRegistry> {
        if !available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let d = dir.path();
        std::fs::create_dir_all(d.join("data")).unwrap();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: ocitool-test-secret\n",
            data = d.join("data").display()
        );
        let mut token = None;
        match mode {
            Mode::Plain => {}
            Mode::TlsBasic => {
                let certs = make_tls(d);
                yaml.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: ocitool-test\n    path: {}\n",
                    certs.server_cert.display(),
                    certs.server_key.display(),
                    make_htpasswd(d).display()
                ));
            }
            Mode::Token => {
                let t = TokenServer::start(d);
                yaml.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    t.realm(),
                    t.root_cert.display()
                ));
                token = Some(t);
            }
        }
        std::fs::write(d.join("config.yml"), yaml).unwrap();
        let mut r = TestRegistry {
            mode,
            addr,
            dir,
            child: None,
            token,
        };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("registry.log"))
            .unwrap();
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .env_remove("REGISTRY_HTTP_ADDR")
            .spawn()
            .expect("start docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not start on {}; its log:\n{}",
            self.addr,
            self.log()
        );
    }

    /// Stops the registry (by pid) and waits for it; its storage stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The registry's log, access log included.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The access log's request lines (`METHOD PATH STATUS BYTES`), in order.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| {
                // ... "GET /v2/ HTTP/1.1" 401 87 "" "ua"
                let (_, rest) = l.split_once('"')?;
                let (req, after) = rest.split_once('"')?;
                let mut it = req.split(' ');
                let (m, p) = (it.next()?, it.next()?);
                let mut nums = after.split_whitespace();
                let status = nums.next()?;
                let bytes = nums.next().unwrap_or("0");
                status.parse::<u16>().ok()?;
                Some(format!("{m} {p} {status} {bytes}"))
            })
            .collect()
    }

    /// The directory holding `ca.crt` (TLS mode), for `--cert-dir`.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    /// The registry's storage.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A scratch directory that lives as long as the registry.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The token server (token mode).
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

struct TlsFiles {
    server_cert: PathBuf,
    server_key: PathBuf,
}

/// A CA, and a server certificate for 127.0.0.1 and localhost signed by it; the CA goes to
/// `certs.d/ca.crt`.
fn make_tls(d: &Path) -> TlsFiles {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "ocitool test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, &issuer).unwrap();
    std::fs::create_dir_all(d.join("certs.d")).unwrap();
    std::fs::write(d.join("certs.d/ca.crt"), ca_cert.pem()).unwrap();
    let server_cert = d.join("server.crt");
    let server_key = d.join("server.key");
    std::fs::write(&server_cert, cert.pem()).unwrap();
    std::fs::write(&server_key, key.serialize_pem()).unwrap();
    TlsFiles {
        server_cert,
        server_key,
    }
}

/// An htpasswd file with [`USER`] and a bcrypt hash of [`PASSWORD`] (`$2y$`, as
/// `htpasswd -B` writes).
fn make_htpasswd(d: &Path) -> PathBuf {
    let h = bcrypt::hash_with_result(PASSWORD, 5)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let p = d.join("htpasswd");
    std::fs::write(&p, format!("{USER}:{h}\n")).unwrap();
    p
}

/// A token issuer for [`Mode::Token`]: `GET /token?service=&scope=` (anonymous or Basic) and
/// the OAuth2 `POST /token` (password and refresh_token grants), answering ES256 JWTs signed
/// with a key whose self-signed certificate is the registry's `rootcertbundle`.
pub struct TokenServer {
    pub addr: String,
    pub root_cert: PathBuf,
    /// Lifetime of the tokens issued, in seconds.
    pub expires_in: Arc<AtomicU64>,
    /// Tokens issued so far.
    pub issued: Arc<AtomicUsize>,
    /// Whether the OAuth2 `POST /token` is served; without it a POST gets 404, as from a token
    /// server that only knows the GET form.
    pub oauth: Arc<AtomicBool>,
    /// One line per request: `GET anonymous 200`, `GET basic tester 200`,
    /// `POST refresh_token 200`, `POST 404`...
    pub log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

/// What [`serve_token`] shares with the server.
struct TokenState {
    signer: Signer,
    expires_in: Arc<AtomicU64>,
    issued: Arc<AtomicUsize>,
    oauth: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<String>>>,
    /// Refresh tokens and their users.
    refresh: Mutex<Vec<(String, String)>>,
}

struct Signer {
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
}

impl TokenServer {
    fn start(d: &Path) -> TokenServer {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let kp = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "issuer");
        let cert = params.self_signed(&kp).unwrap();
        let root_cert = d.join("token-root.crt");
        std::fs::write(&root_cert, cert.pem()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(TokenState {
            signer: Signer {
                key,
                cert_der: cert.der().to_vec(),
            },
            expires_in: Arc::new(AtomicU64::new(300)),
            issued: Arc::new(AtomicUsize::new(0)),
            oauth: Arc::new(AtomicBool::new(true)),
            log: Arc::default(),
            refresh: Mutex::new(vec![(IDENTITY_TOKEN.to_string(), USER.to_string())]),
        });
        let server = TokenServer {
            addr,
            root_cert,
            expires_in: state.expires_in.clone(),
            issued: state.issued.clone(),
            oauth: state.oauth.clone(),
            log: state.log.clone(),
            stop: stop.clone(),
        };
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let state = state.clone();
                        std::thread::spawn(move || {
                            let _ = serve_token(s, &state);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        server
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The requests served so far (see [`TokenServer::log`]).
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn serve_token(s: TcpStream, st: &TokenState) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut it = line.split_whitespace();
    let method = it.next().unwrap_or("").to_string();
    let target = it.next().unwrap_or("").to_string();
    let mut auth = None;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "authorization" => auth = Some(v.trim().to_string()),
                "content-length" => len = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; len.min(1 << 20)];
    r.read_exact(&mut body)?;
    let reply = |what: &str, code: u16, json: String| -> std::io::Result<()> {
        st.log
            .lock()
            .unwrap()
            .push(format!("{method} {what} {code}"));
        let mut w = &s;
        write!(
            w,
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        )?;
        w.flush()
    };
    let (what, user, scopes, out_refresh) = if method == "GET" {
        let q = target.split_once('?').map_or("", |(_, q)| q);
        let p = params(q);
        let mut user = None;
        let mut what = "anonymous".to_string();
        if let Some(a) = auth.as_deref().and_then(|a| a.strip_prefix("Basic ")) {
            let dec = String::from_utf8(STANDARD.decode(a.trim()).unwrap_or_default())
                .unwrap_or_default();
            if dec == format!("{USER}:{PASSWORD}") {
                what = format!("basic {USER}");
            } else if dec == format!("<token>:{IDENTITY_TOKEN}") {
                what = "basic <token>".to_string();
            } else {
                return reply(
                    "basic",
                    401,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
                );
            }
            user = Some(USER.to_string());
        }
        let scopes: Vec<String> = p
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect();
        (what, user, scopes, None)
    } else if method == "POST" {
        if !st.oauth.load(Ordering::Relaxed) {
            return reply("", 404, r#"{"errors":[{"code":"NOT_FOUND"}]}"#.into());
        }
        let p = params(&String::from_utf8_lossy(&body));
        let get = |k: &str| {
            p.iter()
                .find(|(x, _)| x == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let grant = get("grant_type");
        let user = match grant.as_str() {
            "password" => {
                if get("username") != USER || get("password") != PASSWORD {
                    return reply(&grant, 401, r#"{"error":"invalid_grant"}"#.into());
                }
                USER.to_string()
            }
            "refresh_token" => {
                let t = get("refresh_token");
                match st.refresh.lock().unwrap().iter().find(|(rt, _)| *rt == t) {
                    Some((_, u)) => u.clone(),
                    None => return reply(&grant, 401, r#"{"error":"invalid_grant"}"#.into()),
                }
            }
            _ => return reply(&grant, 400, r#"{"error":"unsupported_grant_type"}"#.into()),
        };
        let scopes: Vec<String> = get("scope")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let rt = format!("rt-{}", st.issued.load(Ordering::Relaxed));
        st.refresh.lock().unwrap().push((rt.clone(), user.clone()));
        (grant, Some(user), scopes, Some(rt))
    } else {
        return reply("", 405, "{}".into());
    };
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter_map(|one| {
            let parts: Vec<&str> = one.split(':').collect();
            if parts.len() < 3 || parts[0] != "repository" {
                return None;
            }
            let name = parts[1..parts.len() - 1].join(":");
            let actions: Vec<&str> = parts[parts.len() - 1]
                .split(',')
                .filter(|a| {
                    *a == "pull" || (user.is_some() && matches!(*a, "push" | "delete" | "*"))
                })
                .collect();
            Some(serde_json::json!({"type": "repository", "name": name, "actions": actions}))
        })
        .collect();
    let life = st.expires_in.load(Ordering::Relaxed);
    let tok = jwt(&st.signer, user.as_deref().unwrap_or(""), access, life);
    st.issued.fetch_add(1, Ordering::Relaxed);
    let mut ans = serde_json::json!({"token": tok, "access_token": tok, "expires_in": life});
    if let Some(rt) = out_refresh {
        ans["refresh_token"] = serde_json::Value::from(rt);
    }
    let _ = s.shutdown(Shutdown::Read);
    reply(&what, 200, ans.to_string())
}

fn jwt(signer: &Signer, sub: &str, access: Vec<serde_json::Value>, life: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&signer.cert_der)]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": sub, "aud": SERVICE,
        "exp": now + life, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", rand_id()), "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let rng = ring::rand::SystemRandom::new();
    let sig = signer.key.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

fn rand_id() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// What a [`Relay`] does to the traffic it carries.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Cut a connection (both ways) after a random number of bytes from the server, drawn
    /// in this range; at most `max_cuts` times.
    pub cut_after: Option<(u64, u64)>,
    pub max_cuts: usize,
    /// Answer this many requests with `429 Too Many Requests` and `Retry-After: <secs>`
    /// instead of forwarding them.
    pub too_many: usize,
    pub retry_after_secs: u64,
    /// Bytes per second in each direction (0: unlimited).
    pub rate: u64,
    pub seed: u64,
    /// Requests the relay answers itself instead of forwarding them (the first rule that
    /// matches).
    pub canned: Vec<Canned>,
    /// `Warning` header values added to every answer forwarded.
    pub warnings: Vec<String>,
}

/// An answer the relay gives in the registry's place, to requests whose method is `method`
/// and whose path contains `path_contains`: how registries that are not Distribution answer
/// (ECR's NAME_UNKNOWN for a repository not created yet, Harbor's DENIED).
#[derive(Clone, Debug)]
pub struct Canned {
    pub method: String,
    pub path_contains: String,
    pub status: u16,
    pub body: String,
}

impl Canned {
    /// A distribution-spec error answer.
    pub fn error(
        method: &str,
        path_contains: &str,
        status: u16,
        code: &str,
        message: &str,
    ) -> Canned {
        Canned {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            status,
            body: serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string(),
        }
    }
}

/// Counters of a relay.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub connections: AtomicUsize,
    /// Bytes from the client to the server.
    pub up: AtomicU64,
    /// Bytes from the server to the client.
    pub down: AtomicU64,
    pub cuts: AtomicUsize,
    pub too_many_sent: AtomicUsize,
    /// With canned answers or warnings (the relay then reads each request): `METHOD PATH
    /// STATUS`, `STATUS` being `relayed` for what went to the server.
    pub requests: Mutex<Vec<String>>,
}

/// A TCP relay on 127.0.0.1 in front of a server, injecting [`Faults`].
pub struct Relay {
    pub addr: String,
    pub stats: Arc<RelayStats>,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(target: &str, faults: Faults) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let stats = Arc::new(RelayStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let target = target.to_string();
        {
            let stats = stats.clone();
            let stop = stop.clone();
            let live = live.clone();
            std::thread::spawn(move || {
                let mut rng = crate::Rng::new(faults.seed.max(1));
                while !stop.load(Ordering::Relaxed) {
                    let Ok((client, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let _ = client.set_nonblocking(false);
                    let n = stats.connections.fetch_add(1, Ordering::Relaxed);
                    let _ = n;
                    let mut first = [0u8; 1];
                    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
                    let tls_probe =
                        client.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16;
                    let _ = client.set_read_timeout(None);
                    if !tls_probe && stats.too_many_sent.load(Ordering::Relaxed) < faults.too_many {
                        stats.too_many_sent.fetch_add(1, Ordering::Relaxed);
                        let secs = faults.retry_after_secs;
                        std::thread::spawn(move || answer_429(client, secs));
                        continue;
                    }
                    // (A TLS probe goes to the server as it is, which answers it as the
                    // plain HTTP server it is.)
                    if !tls_probe && (!faults.canned.is_empty() || !faults.warnings.is_empty()) {
                        let (stats, target, faults) =
                            (stats.clone(), target.clone(), faults.clone());
                        std::thread::spawn(move || relay_request(client, &target, &faults, &stats));
                        continue;
                    }
                    let cut = match faults.cut_after {
                        Some((lo, hi)) if stats.cuts.load(Ordering::Relaxed) < faults.max_cuts => {
                            Some(lo + rng.next_u64() % hi.saturating_sub(lo).max(1))
                        }
                        _ => None,
                    };
                    let Ok(server) = TcpStream::connect(&target) else {
                        continue;
                    };
                    if let (Ok(c), Ok(sv)) = (client.try_clone(), server.try_clone()) {
                        let mut l = live.lock().unwrap();
                        l.push(c);
                        l.push(sv);
                    }
                    let stats = stats.clone();
                    let rate = faults.rate;
                    let max_cuts = faults.max_cuts;
                    std::thread::spawn(move || pipe(client, server, cut, rate, max_cuts, &stats));
                }
            });
        }
        Relay {
            addr,
            stats,
            stop,
            live,
        }
    }

    /// Cuts every connection open now, both ways, dropping what is buffered (the network
    /// dies at this instant); new connections are still relayed.
    pub fn cut_all(&self) {
        for c in self.live.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one request head from `client` (at most 64 KiB, byte by byte so nothing after it is
/// taken).
fn read_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= 64 << 10 {
            return None;
        }
        match client.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    Some(head)
}

/// The HTTP mode of the relay: one request per connection. A request a [`Canned`] rule
/// matches is answered by the relay; any other goes to the server with `Connection: close`
/// (so the client opens a new connection, which the relay reads again), and its answer comes
/// back with the [`Faults::warnings`] added.
fn relay_request(mut client: TcpStream, target: &str, faults: &Faults, stats: &RelayStats) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut first = text.lines().next().unwrap_or("").split(' ');
    let (method, path) = (
        first.next().unwrap_or("").to_string(),
        first.next().unwrap_or("").to_string(),
    );
    let log = |what: &str| {
        stats
            .requests
            .lock()
            .unwrap()
            .push(format!("{method} {path} {what}"));
    };
    if let Some(c) = faults
        .canned
        .iter()
        .find(|c| c.method == method && path.contains(&c.path_contains))
    {
        log(&c.status.to_string());
        let body = if method == "HEAD" {
            ""
        } else {
            c.body.as_str()
        };
        let _ = write!(
            client,
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nDocker-Distribution-Api-Version: registry/2.0\r\nConnection: close\r\n\r\n{body}",
            c.status,
            c.body.len()
        );
        let _ = client.flush();
        let _ = client.shutdown(Shutdown::Write);
        // Let the client finish sending a body it had begun, so it reads the answer.
        let _ = client.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = std::io::copy(&mut (&mut client).take(64 << 20), &mut std::io::sink());
        return;
    }
    log("relayed");
    let Ok(mut server) = TcpStream::connect(target) else {
        return;
    };
    // The request head with `Connection: close`.
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    if server.write_all(out.as_bytes()).is_err() {
        return;
    }
    // The request body, as it comes.
    if let (Ok(mut from), Ok(mut to)) = (client.try_clone(), server.try_clone()) {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
    // The answer's head with the warnings, then the rest as it comes.
    let Some(answer) = read_head(&mut server) else {
        return;
    };
    let mut answer = String::from_utf8_lossy(&answer).into_owned();
    answer.truncate(answer.len() - 2);
    for w in &faults.warnings {
        answer.push_str(&format!("Warning: {w}\r\n"));
    }
    answer.push_str("\r\n");
    if client.write_all(answer.as_bytes()).is_ok() {
        let _ = std::io::copy(&mut server, &mut client);
    }
    let _ = client.shutdown(Shutdown::Both);
}

fn answer_429(mut c: TcpStream, secs: u64) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    // A TLS client (an https probe) gets no HTTP answer: it is closed at once.
    let mut first = [0u8; 1];
    if c.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16 {
        let _ = c.shutdown(Shutdown::Both);
        return;
    }
    // Read the request head, then answer and close.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 << 10 {
        match c.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    let _ = write!(
        c,
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {secs}\r\nContent-Type: text/plain\r\nContent-Length: 27\r\nConnection: close\r\n\r\nToo Many Requests (HAP429)."
    );
    let _ = c.flush();
    let _ = c.shutdown(Shutdown::Both);
}

fn pipe(
    client: TcpStream,
    server: TcpStream,
    cut: Option<u64>,
    rate: u64,
    max_cuts: usize,
    stats: &Arc<RelayStats>,
) {
    let (c2, s2) = match (client.try_clone(), server.try_clone()) {
        (Ok(c), Ok(s)) => (c, s),
        _ => return,
    };
    let up_stats = stats.clone();
    let up = std::thread::spawn(move || {
        copy_counted(client, s2, cut, rate, max_cuts, &up_stats, true);
    });
    copy_counted(server, c2, cut, rate, max_cuts, stats, false);
    let _ = up.join();
}

fn copy_counted(
    mut from: TcpStream,
    mut to: TcpStream,
    cut: Option<u64>,
    rate: u64,
    max_cuts: usize,
    stats: &RelayStats,
    upward: bool,
) {
    let mut buf = vec![0u8; 16 << 10];
    let mut sent = 0u64;
    let start = Instant::now();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut n = n;
        if let Some(c) = cut
            && sent + n as u64 >= c
        {
            n = (c - sent) as usize;
            let _ = to.write_all(&buf[..n]);
            if upward {
                stats.up.fetch_add(n as u64, Ordering::Relaxed);
            } else {
                stats.down.fetch_add(n as u64, Ordering::Relaxed);
            }
            if stats.cuts.fetch_add(1, Ordering::Relaxed) < max_cuts {
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        if upward {
            stats.up.fetch_add(n as u64, Ordering::Relaxed);
        } else {
            stats.down.fetch_add(n as u64, Ordering::Relaxed);
        }
        if rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
