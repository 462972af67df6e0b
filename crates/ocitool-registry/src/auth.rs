//! Registry authentication: the `WWW-Authenticate` challenge, Basic credentials, and the
//! bearer-token flow (distribution `docs/spec/auth/token.md` and `oauth.md`).
//!
//! A token is asked for a set of scopes (`repository:NAME:pull,push`, plus `pull` on a mount
//! source), anonymously or with Basic credentials (GET), or with an identity token (OAuth2
//! POST, `grant_type=refresh_token`). Not every token server speaks OAuth2: one that answers
//! the POST with 404 (or 405) is asked with a GET instead, the identity token sent as the
//! Basic password of the user `<token>` (what credential helpers return for it), and is not
//! POSTed to again. Tokens are cached per scope set and fetched again when
//! less than half their lifetime (at most a minute) is left, so a long transfer never starts a
//! request with a token about to expire; a 401 in the middle of one (a token revoked, or a
//! registry with a shorter clock) makes the caller re-authenticate once and retry.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use crate::creds::{Credential, Secret};
use crate::errors::{Error, Result};

/// What a `WWW-Authenticate` header asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-case scheme: `basic`, `bearer`.
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `Scheme k=v, k="quoted, with \"escapes\"", ...`; several challenges in one header
/// value are split where a new scheme starts. Unknown or malformed parts are skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let s = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t' || s[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < s.len() && !matches!(s[*i], b' ' | b'\t' | b',' | b'=' | b'"') {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= s.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            i += 1;
            continue;
        }
        // `word=` is a parameter of the current challenge, a bare word a new scheme.
        let mut j = i;
        while j < s.len() && (s[j] == b' ' || s[j] == b'\t') {
            j += 1;
        }
        if j < s.len() && s[j] == b'=' {
            i = j + 1;
            while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
                i += 1;
            }
            let value = if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut v = Vec::new();
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                    }
                    v.push(s[i]);
                    i += 1;
                }
                i += 1; // the closing quote
                String::from_utf8_lossy(&v).into_owned()
            } else {
                token(&mut i)
            };
            if let Some(c) = out.last_mut() {
                c.params.push((word.to_ascii_lowercase(), value));
            }
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: Vec::new(),
            });
        }
    }
    out
}

/// A sorted, de-duplicated set of token scopes.
pub type Scopes = BTreeSet<String>;

/// The scope for `repository` with `push` or only `pull`.
pub fn repository_scope(repository: &str, push: bool) -> String {
    if push {
        format!("repository:{repository}:pull,push")
    } else {
        format!("repository:{repository}:pull")
    }
}

#[derive(Clone, Debug)]
enum Scheme {
    /// No challenge seen yet (or the registry needs none).
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

struct Token {
    value: Secret,
    refresh_at: Instant,
}

/// The authentication state of one registry.
pub(crate) struct Auth {
    registry: String,
    cred: Option<Credential>,
    state: Mutex<State>,
    /// Held while a token is fetched.
    fetching: Mutex<()>,
}

struct State {
    scheme: Scheme,
    tokens: HashMap<Scopes, Token>,
    /// The token server answered the OAuth2 POST with 404/405: GET from now on.
    no_oauth: bool,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// How a token is fetched (the client does the HTTP).
pub(crate) enum TokenRequest {
    /// GET `url` (realm with `service` and `scope` parameters), with this `Authorization`.
    Get {
        url: String,
        authorization: Option<Secret>,
    },
    /// POST a form to `url` (OAuth2 refresh-token grant); if the token server has no such
    /// endpoint (404 or 405), `fallback` (a GET) instead.
    Post {
        url: String,
        form: Vec<(String, Secret)>,
        fallback: Box<TokenRequest>,
    },
}

impl Auth {
    pub fn new(registry: &str, cred: Option<Credential>) -> Auth {
        Auth {
            registry: registry.to_string(),
            cred,
            state: Mutex::new(State {
                scheme: Scheme::Unknown,
                tokens: HashMap::new(),
                no_oauth: false,
            }),
            fetching: Mutex::new(()),
        }
    }

    pub fn has_credentials(&self) -> bool {
        self.cred.is_some()
    }

    pub fn username(&self) -> Option<&str> {
        self.cred.as_ref().map(Credential::username)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `Authorization` header for a request needing `scopes`, fetching a token with
    /// `fetch` when the registry wants one and none fresh is cached.
    pub fn header(
        &self,
        scopes: &Scopes,
        fetch: impl FnOnce(TokenRequest) -> Result<Vec<u8>>,
    ) -> Result<Option<Secret>> {
        let scheme = self.lock().scheme.clone();
        match scheme {
            Scheme::Unknown => Ok(None),
            Scheme::Basic => Ok(self.basic()),
            Scheme::Bearer { realm, service } => {
                let cached = || {
                    self.lock()
                        .tokens
                        .get(scopes)
                        .filter(|t| Instant::now() < t.refresh_at)
                        .map(|t| Secret::new(format!("Bearer {}", t.value.expose())))
                };
                if let Some(h) = cached() {
                    return Ok(Some(h));
                }
                // One fetch at a time: the transfer threads that all need the first token
                // wait for it instead of each asking the token server.
                let _one = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(h) = cached() {
                    return Ok(Some(h));
                }
                let req = self.token_request(&realm, service.as_deref(), scopes)?;
                let body = fetch(req)?;
                let ans: TokenAnswer =
                    serde_json::from_slice(&body).map_err(|_| Error::Protocol {
                        registry: self.registry.clone(),
                        repository: String::new(),
                        what: "token".into(),
                        why: "the token server's answer is not the JSON of a token".into(),
                    })?;
                let value = ans
                    .token
                    .filter(|t| !t.is_empty())
                    .or(ans.access_token.filter(|t| !t.is_empty()))
                    .ok_or_else(|| Error::Protocol {
                        registry: self.registry.clone(),
                        repository: String::new(),
                        what: "token".into(),
                        why: "the token server's answer holds no token".into(),
                    })?;
                // Default lifetime 60 s (spec); refresh with half of it (at most a minute) left.
                let life = Duration::from_secs(ans.expires_in.unwrap_or(60).max(1));
                let margin = (life / 2).min(Duration::from_secs(60));
                let header = Secret::new(format!("Bearer {value}"));
                self.lock().tokens.insert(
                    scopes.clone(),
                    Token {
                        value: Secret::new(value),
                        refresh_at: Instant::now() + life - margin,
                    },
                );
                Ok(Some(header))
            }
        }
    }

    /// The Basic `Authorization` of the credential (an identity token as the password of
    /// `<token>`, for token servers without OAuth2).
    fn basic(&self) -> Option<Secret> {
        let (user, secret) = match &self.cred {
            Some(Credential::Basic { username, password }) => (username.as_str(), password),
            Some(Credential::IdentityToken(t)) => ("<token>", t),
            None => return None,
        };
        Some(Secret::new(format!(
            "Basic {}",
            B64.encode(format!("{user}:{}", secret.expose()))
        )))
    }

    /// The token server answered the OAuth2 POST with 404 or 405: ask with GET from now on.
    pub fn oauth_unsupported(&self) {
        self.lock().no_oauth = true;
    }

    fn token_request(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
    ) -> Result<TokenRequest> {
        let url = url::Url::parse(realm).map_err(|_| Error::Protocol {
            registry: self.registry.clone(),
            repository: String::new(),
            what: "authentication".into(),
            why: format!("the token realm {realm:?} is not a URL"),
        })?;
        let mut get = url.clone();
        {
            let mut q = get.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let get = TokenRequest::Get {
            url: get.to_string(),
            authorization: self.basic(),
        };
        let Some(Credential::IdentityToken(t)) = &self.cred else {
            return Ok(get);
        };
        if self.lock().no_oauth {
            return Ok(get);
        }
        let mut form = vec![
            ("grant_type".to_string(), Secret::new("refresh_token")),
            ("refresh_token".to_string(), t.clone()),
            ("client_id".to_string(), Secret::new("ocitool")),
        ];
        if let Some(s) = service {
            form.push(("service".into(), Secret::new(s)));
        }
        if !scopes.is_empty() {
            let joined: Vec<&str> = scopes.iter().map(String::as_str).collect();
            form.push(("scope".into(), Secret::new(joined.join(" "))));
        }
        Ok(TokenRequest::Post {
            url: url.to_string(),
            form,
            fallback: Box::new(get),
        })
    }

    /// Learns from a 401's `WWW-Authenticate`. Returns the scopes the challenge adds (an
    /// `insufficient_scope` answer names what the request needs), and whether retrying can
    /// help; the cached token for `scopes` is dropped.
    pub fn on_challenge(
        &self,
        header: Option<&str>,
        scopes: &Scopes,
        plain_http: bool,
    ) -> Result<(Scopes, bool)> {
        let challenges = header.map(parse_challenges).unwrap_or_default();
        let mut st = self.lock();
        st.tokens.remove(scopes);
        if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer")
            && let Some(realm) = b.param("realm")
        {
            check_realm(&self.registry, realm, plain_http)?;
            st.scheme = Scheme::Bearer {
                realm: realm.to_string(),
                service: b.param("service").map(str::to_string),
            };
            let mut more = Scopes::new();
            if let Some(sc) = b.param("scope") {
                for one in sc.split(' ').filter(|s| !s.is_empty()) {
                    if !scopes.contains(one) {
                        more.insert(one.to_string());
                    }
                }
            }
            return Ok((more, true));
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let first = !matches!(st.scheme, Scheme::Basic);
            st.scheme = Scheme::Basic;
            return Ok((Scopes::new(), first && self.basic().is_some()));
        }
        Ok((Scopes::new(), false))
    }

    /// Sets the scheme from a ping's challenge without a request waiting on it.
    pub fn learn(&self, header: Option<&str>, plain_http: bool) -> Result<()> {
        self.on_challenge(header, &Scopes::new(), plain_http)
            .map(|_| ())
    }

    /// Whether the registry asked for a bearer token.
    pub fn is_bearer(&self) -> bool {
        matches!(self.lock().scheme, Scheme::Bearer { .. })
    }
}

/// A token realm must be https, unless the registry itself is spoken to over plain HTTP (a
/// local test registry with a local token server).
fn check_realm(registry: &str, realm: &str, plain_http: bool) -> Result<()> {
    let u = url::Url::parse(realm).map_err(|_| Error::Protocol {
        registry: registry.to_string(),
        repository: String::new(),
        what: "authentication".into(),
        why: format!("the token realm {realm:?} is not a URL"),
    })?;
    match u.scheme() {
        "https" => Ok(()),
        "http" if plain_http => Ok(()),
        _ => Err(Error::Protocol {
            registry: registry.to_string(),
            repository: String::new(),
            what: "authentication".into(),
            why: format!(
                "the token realm {realm:?} is not https; credentials are sent only over TLS (or with --plain-http)"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push",error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.example/token"));
        assert_eq!(c[0].param("scope"), Some("repository:a/b:pull,push"));
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
        let c = parse_challenges(r#"Basic realm="x, \"y\"", Bearer realm=https://t/x,service=s"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some(r#"x, "y""#));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("s"));
        assert!(parse_challenges("").is_empty());
        // Garbage never panics.
        for s in ["=", "\"", "a=\"", "Bearer realm", ",,,", "Bearer =x"] {
            let _ = parse_challenges(s);
        }
    }

    #[test]
    fn tokens_are_cached_per_scope_set_and_secrets_stay_hidden() {
        let a = Auth::new("r.io", Some(Credential::from_user_pass("u:p4ss").unwrap()));
        let scopes: Scopes = [repository_scope("x", false)].into();
        let (more, retry) = a
            .on_challenge(
                Some(
                    r#"Bearer realm="https://t.io/token",service="svc",scope="repository:x:pull""#,
                ),
                &scopes,
                false,
            )
            .unwrap();
        assert!(more.is_empty() && retry);
        let mut calls = 0;
        let mut fetch = |req: TokenRequest| {
            calls += 1;
            match req {
                TokenRequest::Get { url, authorization } => {
                    assert_eq!(
                        url,
                        "https://t.io/token?service=svc&scope=repository%3Ax%3Apull"
                    );
                    assert!(authorization.unwrap().expose().starts_with("Basic "));
                }
                TokenRequest::Post { .. } => panic!("no identity token"),
            }
            Ok(br#"{"token":"tok1","expires_in":300}"#.to_vec())
        };
        let h = a.header(&scopes, &mut fetch).unwrap().unwrap();
        assert_eq!(h.expose(), "Bearer tok1");
        assert!(!format!("{h:?}").contains("tok1"));
        let h2 = a.header(&scopes, &mut fetch).unwrap().unwrap();
        assert_eq!(h2.expose(), "Bearer tok1");
        assert_eq!(calls, 1);
        // An identity token is POSTed (OAuth2), with the GET it falls back to; once the
        // server said it has no OAuth2, only the GET.
        let t = Auth::new("r.io", Some(Credential::IdentityToken(Secret::new("idt"))));
        t.learn(
            Some(r#"Bearer realm="https://t.io/token?x=1",service="svc""#),
            false,
        )
        .unwrap();
        match t
            .token_request("https://t.io/token?x=1", Some("svc"), &scopes)
            .unwrap()
        {
            TokenRequest::Post {
                url,
                form,
                fallback,
            } => {
                assert_eq!(url, "https://t.io/token?x=1");
                let get = |k: &str| {
                    form.iter()
                        .find(|(x, _)| x == k)
                        .map(|(_, v)| v.expose().to_string())
                };
                assert_eq!(get("grant_type").as_deref(), Some("refresh_token"));
                assert_eq!(get("refresh_token").as_deref(), Some("idt"));
                assert_eq!(get("service").as_deref(), Some("svc"));
                assert_eq!(get("scope").as_deref(), Some("repository:x:pull"));
                match *fallback {
                    TokenRequest::Get { url, authorization } => {
                        assert!(url.contains("scope=repository%3Ax%3Apull"), "{url}");
                        assert_eq!(
                            authorization.unwrap().expose(),
                            format!("Basic {}", B64.encode("<token>:idt"))
                        );
                    }
                    TokenRequest::Post { .. } => panic!("the fallback is a GET"),
                }
            }
            TokenRequest::Get { .. } => panic!("an identity token is POSTed first"),
        }
        t.oauth_unsupported();
        assert!(matches!(
            t.token_request("https://t.io/token", Some("svc"), &scopes)
                .unwrap(),
            TokenRequest::Get { .. }
        ));
        // A realm over plain http is refused for a TLS registry.
        assert!(
            a.on_challenge(Some(r#"Bearer realm="http://t.io/token""#), &scopes, false)
                .is_err()
        );
    }
}
