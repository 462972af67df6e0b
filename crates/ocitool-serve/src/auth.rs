//! HTTP Basic authentication against an htpasswd file of bcrypt entries (`htpasswd -B`
//! writes `$2y$`; `$2a$` and `$2b$` are the same scheme). Other schemes (MD5 `$apr1$`, SHA-1
//! `{SHA}`, crypt, plain text) are refused when the file is loaded, naming the line.
//!
//! bcrypt is slow on purpose (a few to a hundred milliseconds), and every request carries the
//! credentials again, so a successful check is remembered (by the SHA-256 of user and
//! password, never the password itself) and the next request with the same credentials
//! costs a hash. Checks run on the server's bounded blocking pool, never on the threads that
//! move bytes.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine;
use ocitool_digest::Digest;

use crate::errors::{Error, Result};

/// How many successful credentials are remembered before the memory is cleared.
const REMEMBERED: usize = 1024;

/// The users of an htpasswd file.
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// A user's hash, checked for unknown users too, so that their answer takes as long as a
    /// wrong password's.
    any_hash: String,
    remembered: Mutex<HashSet<Digest>>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish()
    }
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd> {
        let err = |why: String| Error::Htpasswd {
            path: path.to_path_buf(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Htpasswd::parse(&text).map_err(err)
    }

    /// Parses the file's text; the error names the line.
    pub fn parse(text: &str) -> Result<Htpasswd, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            let Some((user, hash)) = line.split_once(':') else {
                return Err(format!("line {n} is not user:hash"));
            };
            let scheme =
                if hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")
                {
                    None
                } else if hash.starts_with("$apr1$") {
                    Some("MD5 ($apr1$, htpasswd -m)")
                } else if hash.starts_with("{SHA}") {
                    Some("SHA-1 ({SHA}, htpasswd -s)")
                } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
                    Some("SHA-crypt")
                } else if hash.starts_with('$') {
                    Some("an unknown scheme")
                } else {
                    Some("crypt or plain text (htpasswd -d or -p)")
                };
            if let Some(scheme) = scheme {
                return Err(format!(
                    "line {n} (user {user:?}) uses {scheme}; only bcrypt entries are accepted: \
                     write them with `htpasswd -B`"
                ));
            }
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(format!(
                    "line {n} (user {user:?}) is not a valid bcrypt hash"
                ));
            }
            if users.insert(user.to_string(), hash.to_string()).is_some() {
                return Err(format!("line {n}: user {user:?} is listed twice"));
            }
        }
        let Some(any_hash) = users.values().next().cloned() else {
            return Err("no users".into());
        };
        Ok(Htpasswd {
            users,
            any_hash,
            remembered: Mutex::new(HashSet::new()),
        })
    }

    /// The user an `Authorization` field authenticates, if any.
    pub fn check(&self, authorization: Option<&str>) -> Option<String> {
        let value = authorization?.trim();
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let user = std::str::from_utf8(user).ok()?;
        let key = {
            let mut k = Vec::with_capacity(decoded.len());
            k.extend_from_slice(user.as_bytes());
            k.push(0);
            k.extend_from_slice(password);
            Digest::sha256(&k)
        };
        if self.remembered.lock().expect("not poisoned").contains(&key) {
            return Some(user.to_string());
        }
        let (hash, known) = match self.users.get(user) {
            Some(h) => (h.as_str(), true),
            None => (self.any_hash.as_str(), false),
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known;
        if !ok {
            return None;
        }
        let mut remembered = self.remembered.lock().expect("not poisoned");
        if remembered.len() >= REMEMBERED {
            remembered.clear();
        }
        remembered.insert(key);
        Some(user.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn bcrypt_entries_authenticate() {
        let hash = bcrypt::hash("s3cret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let h = Htpasswd::parse(&format!("# users\n\ntester:{hash}\n")).unwrap();
        assert_eq!(
            h.check(Some(&basic("tester", "s3cret"))),
            Some("tester".into())
        );
        // Remembered: the same again, and lower-case scheme.
        assert_eq!(
            h.check(Some(&basic("tester", "s3cret").replace("Basic", "basic"))),
            Some("tester".into())
        );
        assert_eq!(h.check(Some(&basic("tester", "wrong"))), None);
        assert_eq!(h.check(Some(&basic("nobody", "s3cret"))), None);
        assert_eq!(h.check(Some("Bearer abc")), None);
        assert_eq!(h.check(Some("Basic !!!")), None);
        assert_eq!(h.check(Some("Basic")), None);
        assert_eq!(h.check(None), None);
    }

    #[test]
    fn other_schemes_are_refused_naming_the_line() {
        for (entry, want) in [
            ("u:$apr1$abc$def", "MD5"),
            ("u:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1"),
            ("u:$6$salt$hash", "SHA-crypt"),
            ("u:plain", "plain text"),
            ("u:$2y$05$tooshort", "not a valid bcrypt hash"),
            ("no-colon", "not user:hash"),
        ] {
            let err = Htpasswd::parse(&format!("\n{entry}\n")).unwrap_err();
            assert!(
                err.contains(want) && err.contains("line 2"),
                "{entry}: {err}"
            );
        }
        assert!(
            Htpasswd::parse("# nobody\n")
                .unwrap_err()
                .contains("no users")
        );
    }
}
