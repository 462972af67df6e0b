//! Registry credentials, read exactly where skopeo, podman and docker look, and written the
//! way `podman login` writes them.
//!
//! Files, in order (containers/image `pkg/docker/config`): the `--authfile` given, else
//! `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json` (without
//! `XDG_RUNTIME_DIR`: `/run/containers/$UID/auth.json`) — the *primary* file, which `login`
//! writes; then `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/...`),
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, and the legacy `~/.dockercfg`.
//! In each file: `credHelpers[registry]` (a `docker-credential-<name>` program), then `auths`
//! keys from the most specific (`reg/ns/repo`, `reg/ns`, `reg`) to the normalized forms
//! (`https://reg/v1/`, `http://reg`; Docker Hub also as `https://index.docker.io/v1/`), then
//! `credsStore`. An `auth` is base64 `user:password`; `identitytoken` is an OAuth2 refresh
//! token. The first file that has credentials for the registry wins.
//!
//! Secrets never appear in `Debug` output, errors or logs.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};

use ocitool_spec::reference::{DOCKER_HUB, DOCKER_HUB_AUTH_KEY, DOCKER_HUB_LEGACY};

use crate::errors::{Error, Result};

/// Largest credential file read.
const FILE_LIMIT: u64 = 4 << 20;

/// A string that never shows in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user's credentials for a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or a personal access token used as one).
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (`identitytoken`, or a helper's `<token>` user).
    IdentityToken(Secret),
}

impl Credential {
    /// Parses `USER:PASSWORD` (`--creds`); the password may contain ':'.
    pub fn from_user_pass(s: &str) -> Result<Credential> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credential::Basic {
                username: u.to_string(),
                password: Secret::new(p),
            }),
            _ => Err(Error::Invalid(
                "credentials must be USER:PASSWORD (the user name must not be empty)".into(),
            )),
        }
    }

    pub fn username(&self) -> &str {
        match self {
            Credential::Basic { username, .. } => username,
            Credential::IdentityToken(_) => "<token>",
        }
    }
}

/// Where credentials came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Explicit,
    File(PathBuf),
    Helper(String),
}

/// Where to look.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// `--authfile`.
    pub auth_file: Option<PathBuf>,
    /// Where `docker-credential-*` helpers are looked up (default: `PATH`).
    pub helper_path: Option<std::ffi::OsString>,
}

impl Store {
    /// The file `login` writes and `logout` edits (podman's primary file).
    pub fn primary(&self) -> PathBuf {
        if let Some(p) = &self.auth_file {
            return p.clone();
        }
        if let Some(p) = env_path("REGISTRY_AUTH_FILE") {
            return p;
        }
        if let Some(d) = env_path("XDG_RUNTIME_DIR") {
            return d.join("containers/auth.json");
        }
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        PathBuf::from(format!("/run/containers/{uid}/auth.json"))
    }

    /// Every file read, in order; `bool` marks the legacy `.dockercfg` format.
    pub fn files(&self) -> Vec<(PathBuf, bool)> {
        let mut out = vec![(self.primary(), false)];
        let home = env_path("HOME");
        let config_home =
            env_path("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")));
        if let Some(c) = config_home {
            out.push((c.join("containers/auth.json"), false));
        }
        match env_path("DOCKER_CONFIG") {
            Some(d) => out.push((d.join("config.json"), false)),
            None => {
                if let Some(h) = &home {
                    out.push((h.join(".docker/config.json"), false));
                }
            }
        }
        if let Some(h) = &home {
            out.push((h.join(".dockercfg"), true));
        }
        let mut seen = Vec::new();
        out.retain(|(p, _)| {
            let new = !seen.contains(p);
            seen.push(p.clone());
            new
        });
        out
    }

    /// The credentials for `registry` (as in references: `docker.io`, `host:port`) and
    /// `repository` (for namespaced keys), or `None`.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<(Credential, Source)>> {
        for (path, legacy) in self.files() {
            let Some(doc) = read_json(&path)? else {
                continue;
            };
            if legacy {
                let found = find_auth(&doc, registry, repository)
                    .map(|e| entry_credential(e, &path))
                    .transpose()?
                    .flatten();
                if let Some(c) = found {
                    return Ok(Some((c, Source::File(path))));
                }
                continue;
            }
            if let Some(h) = doc.get("credHelpers").and_then(|m| helper_for(m, registry)) {
                if let Some(c) = self.helper_get(&h, registry)? {
                    return Ok(Some((c, Source::Helper(h))));
                }
                continue;
            }
            if let Some(auths) = doc.get("auths")
                && let Some(e) = find_auth(auths, registry, repository)
                && let Some(c) = entry_credential(e, &path)?
            {
                return Ok(Some((c, Source::File(path))));
            }
            if let Some(h) = doc.get("credsStore").and_then(Value::as_str)
                && !h.is_empty()
                && let Some(c) = self.helper_get(h, registry)?
            {
                return Ok(Some((c, Source::Helper(h.to_string()))));
            }
        }
        Ok(None)
    }

    /// Stores credentials for `registry` in the primary file, keeping everything else in it;
    /// or, as docker does, in the helper the file names for it (its `credHelpers` entry, else
    /// its `credsStore`), which keeps the secret out of the file. Returns where they went.
    pub fn store(&self, registry: &str, cred: &Credential) -> Result<Source> {
        let path = self.primary();
        let mut doc = read_json(&path)?.unwrap_or_else(|| Value::Object(Map::new()));
        if let Some(h) = helper_of(&doc, registry) {
            self.helper_store(&h, registry, cred)?;
            return Ok(Source::Helper(h));
        }
        let obj = doc.as_object_mut().ok_or_else(|| Error::CredentialFile {
            path: path.clone(),
            why: "not a JSON object".into(),
        })?;
        let auths = obj
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let mut entry = Map::new();
        match cred {
            Credential::Basic { username, password } => {
                entry.insert(
                    "auth".into(),
                    Value::from(B64.encode(format!("{username}:{}", password.expose()))),
                );
            }
            Credential::IdentityToken(t) => {
                entry.insert("identitytoken".into(), Value::from(t.expose()));
            }
        }
        if let Some(a) = auths.as_object_mut() {
            a.insert(registry.to_string(), Value::Object(entry));
        }
        write_json(&path, &doc)?;
        Ok(Source::File(path))
    }

    /// Removes the credentials for `registry` from the primary file and from the helper it
    /// names for the registry (`credHelpers`, else `credsStore`). `Ok(false)` when there were
    /// none.
    pub fn remove(&self, registry: &str) -> Result<bool> {
        let path = self.primary();
        let Some(mut doc) = read_json(&path)? else {
            return Ok(false);
        };
        let in_helper = match helper_of(&doc, registry) {
            Some(h) => self.helper_erase(&h, registry)?,
            None => false,
        };
        let mut in_file = false;
        if let Some(a) = doc.get_mut("auths").and_then(Value::as_object_mut) {
            let keys: Vec<String> = a
                .keys()
                .filter(|k| *k == registry || normalize_key(k) == registry_key(registry))
                .cloned()
                .collect();
            for k in keys {
                a.remove(&k);
                in_file = true;
            }
        }
        if in_file {
            write_json(&path, &doc)?;
        }
        Ok(in_helper || in_file)
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    let bad = |why: String| Error::CredentialFile {
        path: path.to_path_buf(),
        why,
    };
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(None),
        Err(e) => return Err(bad(format!("cannot read it: {e}"))),
    };
    let md = f.metadata().map_err(|e| bad(e.to_string()))?;
    if !md.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if md.len() > FILE_LIMIT {
        return Err(bad(format!("larger than {FILE_LIMIT} bytes")));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, FILE_LIMIT), &mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    // serde_json's messages name positions, never the content, so no secret leaks here.
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(bad("not a JSON object".into()));
    }
    Ok(Some(v))
}

/// Writes `doc` atomically, readable by the owner only (as podman does).
fn write_json(path: &Path, doc: &Value) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |why: String| Error::CredentialFile {
        path: path.to_path_buf(),
        why,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| bad(format!("cannot create its directory: {e}")))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| bad(format!("cannot write next to it: {e}")))?;
    let mut text = serde_json::to_vec_pretty(doc).map_err(|e| bad(e.to_string()))?;
    text.push(b'\n');
    tmp.write_all(&text)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| bad(format!("cannot write it: {e}")))?;
    tmp.persist(path)
        .map_err(|e| bad(format!("cannot replace it: {}", e.error)))?;
    Ok(())
}

/// `host[:port]` of an `auths` key: `https://index.docker.io/v1/` → `index.docker.io`.
fn normalize_key(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// The registry as credential keys name it (Docker Hub's aliases are one).
fn registry_key(registry: &str) -> &str {
    match registry {
        DOCKER_HUB_LEGACY | "registry-1.docker.io" => DOCKER_HUB,
        r => r,
    }
}

fn find_auth<'a>(auths: &'a Value, registry: &str, repository: &str) -> Option<&'a Value> {
    let m = auths.as_object()?;
    // Most specific first: reg/ns/repo, reg/ns, reg.
    let mut path = format!("{registry}/{repository}");
    loop {
        if let Some(e) = m.get(&path) {
            return Some(e);
        }
        match path.rfind('/') {
            Some(i) => path.truncate(i),
            None => break,
        }
    }
    // Normalized keys: https://reg/v1/, http://reg; Docker Hub's legacy spellings.
    let want = registry_key(registry);
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort(); // deterministic when several spellings exist
    keys.into_iter()
        .find(|k| registry_key(normalize_key(k)) == want)
        .and_then(|k| m.get(k))
}

/// The credential of an `auths` entry; `None` for an empty entry (`{}` marks a helper).
fn entry_credential(e: &Value, path: &Path) -> Result<Option<Credential>> {
    let bad = |why: &str| Error::CredentialFile {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    if let Some(t) = e.get("identitytoken").and_then(Value::as_str)
        && !t.is_empty()
    {
        return Ok(Some(Credential::IdentityToken(Secret::new(t))));
    }
    if let Some(a) = e.get("auth").and_then(Value::as_str)
        && !a.is_empty()
    {
        let raw = B64
            .decode(a.trim())
            .map_err(|_| bad("an \"auth\" entry is not valid base64"))?;
        let s = String::from_utf8(raw).map_err(|_| bad("an \"auth\" entry is not UTF-8"))?;
        return Credential::from_user_pass(&s)
            .map(Some)
            .map_err(|_| bad("an \"auth\" entry is not base64 of USER:PASSWORD"));
    }
    if let (Some(u), Some(p)) = (
        e.get("username").and_then(Value::as_str),
        e.get("password").and_then(Value::as_str),
    ) && !u.is_empty()
    {
        return Ok(Some(Credential::Basic {
            username: u.to_string(),
            password: Secret::new(p),
        }));
    }
    Ok(None)
}

/// The helper a credential file names for `registry`: its `credHelpers` entry, else its
/// `credsStore`.
fn helper_of(doc: &Value, registry: &str) -> Option<String> {
    doc.get("credHelpers")
        .and_then(|m| helper_for(m, registry))
        .or_else(|| {
            doc.get("credsStore")
                .and_then(Value::as_str)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
        })
}

fn helper_for(helpers: &Value, registry: &str) -> Option<String> {
    let m = helpers.as_object()?;
    let want = registry_key(registry);
    m.get(registry)
        .or_else(|| {
            m.iter()
                .find(|(k, _)| registry_key(normalize_key(k)) == want)
                .map(|(_, v)| v)
        })
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

/// What a helper is told the server is: Docker Hub's legacy URL, else the host.
fn helper_server(registry: &str) -> &str {
    if registry_key(registry) == DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY
    } else {
        registry
    }
}

fn helper_name_ok(h: &str) -> bool {
    h.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Store {
    /// Runs `docker-credential-<helper> <verb>` with `input` on stdin; returns stdout.
    fn run_helper(
        &self,
        helper: &str,
        registry: &str,
        verb: &str,
        input: &[u8],
    ) -> Result<(bool, Vec<u8>)> {
        let err = |why: String| Error::Helper {
            helper: helper.to_string(),
            registry: registry.to_string(),
            why,
        };
        if !helper_name_ok(helper) {
            return Err(err("not a valid helper name".into()));
        }
        let mut cmd = Command::new(format!("docker-credential-{helper}"));
        if let Some(p) = &self.helper_path {
            cmd.env("PATH", p);
        }
        let mut child = cmd
            .arg(verb)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("cannot run it: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| err(format!("cannot run it: {e}")))?;
        let mut combined = out.stdout.clone();
        combined.extend_from_slice(&out.stderr);
        Ok((out.status.success(), combined))
    }

    fn helper_get(&self, helper: &str, registry: &str) -> Result<Option<Credential>> {
        let (ok, out) =
            self.run_helper(helper, registry, "get", helper_server(registry).as_bytes())?;
        if !ok {
            let text = String::from_utf8_lossy(&out);
            if text.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            // A helper's own message, cut short; it describes the failure, not the secret.
            let first: String = text
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            return Err(Error::Helper {
                helper: helper.to_string(),
                registry: registry.to_string(),
                why: format!("`get` failed: {first}"),
            });
        }
        let v: Value = serde_json::from_slice(&out).map_err(|_| Error::Helper {
            helper: helper.to_string(),
            registry: registry.to_string(),
            why: "`get` printed something that is not its JSON answer".into(),
        })?;
        let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
        let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
        if secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if user == "<token>" {
            Credential::IdentityToken(Secret::new(secret))
        } else {
            Credential::Basic {
                username: user.to_string(),
                password: Secret::new(secret),
            }
        }))
    }

    fn helper_store(&self, helper: &str, registry: &str, cred: &Credential) -> Result<()> {
        let secret = match cred {
            Credential::Basic { password, .. } => password.expose(),
            Credential::IdentityToken(t) => t.expose(),
        };
        let input = serde_json::json!({
            "ServerURL": helper_server(registry),
            "Username": cred.username(),
            "Secret": secret,
        });
        let (ok, _) = self.run_helper(helper, registry, "store", input.to_string().as_bytes())?;
        if ok {
            Ok(())
        } else {
            Err(Error::Helper {
                helper: helper.to_string(),
                registry: registry.to_string(),
                why: "`store` failed".into(),
            })
        }
    }

    fn helper_erase(&self, helper: &str, registry: &str) -> Result<bool> {
        let (ok, out) = self.run_helper(
            helper,
            registry,
            "erase",
            helper_server(registry).as_bytes(),
        )?;
        if ok {
            return Ok(true);
        }
        if String::from_utf8_lossy(&out)
            .to_ascii_lowercase()
            .contains("not found")
        {
            return Ok(false);
        }
        Err(Error::Helper {
            helper: helper.to_string(),
            registry: registry.to_string(),
            why: "`erase` failed".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_at(p: &Path) -> Store {
        Store {
            auth_file: Some(p.to_path_buf()),
            helper_path: None,
        }
    }

    #[test]
    fn reads_auths_by_specificity_and_normal_form() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("auth.json");
        let enc = |s: &str| B64.encode(s);
        std::fs::write(
            &p,
            serde_json::json!({"auths": {
                "quay.io": {"auth": enc("org:a")},
                "quay.io/team": {"auth": enc("team:b")},
                "quay.io/team/app": {"auth": enc("app:c:with:colons")},
                "https://index.docker.io/v1/": {"auth": enc("hub:d")},
                "http://reg.local:5000": {"username": "u", "password": "p"},
                "tok.io": {"identitytoken": "refresh"},
                "helper.io": {}
            }})
            .to_string(),
        )
        .unwrap();
        let s = store_at(&p);
        let user = |reg: &str, repo: &str| {
            s.lookup(reg, repo)
                .unwrap()
                .map(|(c, _)| c.username().to_string())
        };
        assert_eq!(user("quay.io", "team/app").as_deref(), Some("app"));
        assert_eq!(user("quay.io", "team/other").as_deref(), Some("team"));
        assert_eq!(user("quay.io", "x/y").as_deref(), Some("org"));
        assert_eq!(user("docker.io", "library/nginx").as_deref(), Some("hub"));
        assert_eq!(user("reg.local:5000", "x").as_deref(), Some("u"));
        assert_eq!(user("tok.io", "x").as_deref(), Some("<token>"));
        assert_eq!(user("helper.io", "x"), None);
        assert_eq!(user("other.io", "x"), None);
        let (c, src) = s.lookup("quay.io", "team/app").unwrap().unwrap();
        assert_eq!(src, Source::File(p.clone()));
        match c {
            Credential::Basic { password, .. } => assert_eq!(password.expose(), "c:with:colons"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let c = Credential::from_user_pass("me:hunter2").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("auth.json");
        std::fs::write(&p, r#"{"auths": {"x.io": {"auth": "%%%hunter2"}}}"#).unwrap();
        let e = store_at(&p).lookup("x.io", "a").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("auth.json"), "{e}");
        std::fs::write(&p, r#"{"auths": {"x.io": {"auth": "hunter2"#).unwrap();
        let e = store_at(&p).lookup("x.io", "a").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn login_writes_what_it_reads_and_keeps_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/auth.json");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            r#"{"auths": {"keep.io": {"auth": "a2VlcDptZQ=="}}, "other": 1}"#,
        )
        .unwrap();
        let s = store_at(&p);
        let c = Credential::from_user_pass("tester:s3cret").unwrap();
        s.store("127.0.0.1:5000", &c).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["other"], 1);
        assert_eq!(v["auths"]["keep.io"]["auth"], "a2VlcDptZQ==");
        assert_eq!(
            v["auths"]["127.0.0.1:5000"]["auth"],
            B64.encode("tester:s3cret")
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(s.lookup("127.0.0.1:5000", "x").unwrap().unwrap().0, c);
        assert!(s.remove("127.0.0.1:5000").unwrap());
        assert!(!s.remove("127.0.0.1:5000").unwrap());
        assert!(s.lookup("127.0.0.1:5000", "x").unwrap().is_none());
        assert!(s.lookup("keep.io", "x").unwrap().is_some());
    }

    #[test]
    fn helpers_are_run_with_the_server_on_stdin() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let helper = bin.join("docker-credential-ocitest");
        // A helper that answers for hub's legacy URL only, and logs its input.
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nread server\necho \"$1 $server\" >> {log}\nif [ \"$server\" = https://index.docker.io/v1/ ]; then echo '{{\"ServerURL\":\"x\",\"Username\":\"hubuser\",\"Secret\":\"pw\"}}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
                log = d.path().join("log").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = d.path().join("auth.json");
        std::fs::write(
            &p,
            r#"{"credHelpers": {"docker.io": "ocitest"}, "credsStore": "ocitest"}"#,
        )
        .unwrap();
        let mut path = std::ffi::OsString::from(bin.as_os_str());
        path.push(":/usr/bin:/bin");
        let s = Store {
            auth_file: Some(p.clone()),
            helper_path: Some(path),
        };
        let (c, src) = s.lookup("docker.io", "library/x").unwrap().unwrap();
        assert_eq!(c.username(), "hubuser");
        assert_eq!(src, Source::Helper("ocitest".into()));
        // Not found in the helper: nothing (the credsStore says the same).
        assert!(s.lookup("quay.io", "x").unwrap().is_none());
        let log = std::fs::read_to_string(d.path().join("log")).unwrap();
        assert!(log.contains("get https://index.docker.io/v1/"), "{log}");
        assert!(log.contains("get quay.io"), "{log}");
        // A helper that is not installed is an error naming it.
        std::fs::write(&p, r#"{"credsStore": "nosuchhelper"}"#).unwrap();
        let e = s.lookup("quay.io", "x").unwrap_err();
        assert!(
            e.to_string().contains("docker-credential-nosuchhelper"),
            "{e}"
        );
    }
}
