//! Request paths of the distribution API, and the grammar of the names in them.
//!
//! A path is split on its literal `/` first and each segment percent-decoded after, so an
//! encoded slash (`%2F`) or dot segment (`%2e%2e`) stays inside one segment, where the
//! grammar refuses it. Names and tags are checked against the grammar of
//! `ocitool_spec::reference` (the one parser of image references, whose repository paths and
//! tags are the distribution-spec's), digests by [`Digest::parse`], before anything looks
//! them up: no byte of a path ever reaches the file system.

use ocitool_digest::Digest;
use ocitool_spec::reference;

/// What a request path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    Manifest {
        name: String,
        reference: Reference,
    },
    Blob {
        name: String,
        digest: Digest,
    },
    Tags {
        name: String,
    },
    Referrers {
        name: String,
        digest: Digest,
    },
    /// `/v2/<name>/blobs/uploads/...`: only ever written to.
    Upload,
}

/// A manifest reference: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

/// Why a path is not one the server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// Not a path of the distribution API.
    NotFound,
    /// The repository name breaks the grammar.
    NameInvalid(String),
    /// A digest that does not parse, or names an algorithm ocitool does not compute.
    DigestInvalid(String),
    /// A manifest reference that is neither a tag nor a digest.
    TagInvalid(String),
}

/// Routes a request path (without its query).
pub fn route(path: &str) -> Result<Route, RouteError> {
    let rest = match path {
        "/v2" | "/v2/" => return Ok(Route::Base),
        p => p.strip_prefix("/v2/").ok_or(RouteError::NotFound)?,
    };
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let n = segments.len();
    let seg = |i: usize| segments[i].as_str();
    if n == 1 && seg(0) == "_catalog" {
        return Ok(Route::Catalog);
    }
    if n < 3 {
        return Err(RouteError::NotFound);
    }
    let name_of = |end: usize| -> Result<String, RouteError> {
        let name = segments[..end].join("/");
        // A decoded segment holding '/' joins into something other than what was sent.
        if segments[..end].iter().any(|s| s.contains('/'))
            || reference::check_repository(&name).is_err()
        {
            return Err(RouteError::NameInvalid(printable(&name)));
        }
        Ok(name)
    };
    let digest_of =
        |s: &str| Digest::parse(s).map_err(|e| RouteError::DigestInvalid(e.to_string()));
    if n >= 4 && seg(n - 3) == "blobs" && seg(n - 2) == "uploads" {
        name_of(n - 3)?;
        return Ok(Route::Upload);
    }
    match (seg(n - 2), seg(n - 1)) {
        ("blobs", "uploads") => {
            name_of(n - 2)?;
            Ok(Route::Upload)
        }
        ("manifests", reference) => {
            let name = name_of(n - 2)?;
            let reference = if reference.contains(':') {
                Reference::Digest(digest_of(reference)?)
            } else if reference::check_tag(reference).is_ok() {
                Reference::Tag(reference.to_string())
            } else {
                return Err(RouteError::TagInvalid(printable(reference)));
            };
            Ok(Route::Manifest { name, reference })
        }
        ("blobs", digest) => Ok(Route::Blob {
            name: name_of(n - 2)?,
            digest: digest_of(digest)?,
        }),
        ("referrers", digest) => Ok(Route::Referrers {
            name: name_of(n - 2)?,
            digest: digest_of(digest)?,
        }),
        ("tags", "list") => Ok(Route::Tags {
            name: name_of(n - 2)?,
        }),
        _ => Err(RouteError::NotFound),
    }
}

/// `s` cut to 200 characters with control characters escaped, for error messages.
pub fn printable(s: &str) -> String {
    s.chars().take(200).flat_map(char::escape_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:3d3d1d6ae926c347b2fc0e01c21f12d7898ec2460d16823064eb4b7e03c7ca29";

    fn digest() -> Digest {
        Digest::parse(D).unwrap()
    }

    #[test]
    fn api_paths() {
        assert_eq!(route("/v2/"), Ok(Route::Base));
        assert_eq!(route("/v2"), Ok(Route::Base));
        assert_eq!(route("/v2/_catalog"), Ok(Route::Catalog));
        assert_eq!(
            route("/v2/team/app/manifests/1.0"),
            Ok(Route::Manifest {
                name: "team/app".into(),
                reference: Reference::Tag("1.0".into())
            })
        );
        assert_eq!(
            route(&format!("/v2/app/manifests/{D}")),
            Ok(Route::Manifest {
                name: "app".into(),
                reference: Reference::Digest(digest())
            })
        );
        assert_eq!(
            route(&format!("/v2/docker.io/library/nginx/blobs/{D}")),
            Ok(Route::Blob {
                name: "docker.io/library/nginx".into(),
                digest: digest()
            })
        );
        assert_eq!(
            route("/v2/a/tags/list"),
            Ok(Route::Tags { name: "a".into() })
        );
        assert_eq!(
            route(&format!("/v2/a/referrers/{D}")),
            Ok(Route::Referrers {
                name: "a".into(),
                digest: digest()
            })
        );
        // A repository may be called like a keyword: the path is read from its end.
        assert_eq!(
            route("/v2/manifests/blobs/manifests/x"),
            Ok(Route::Manifest {
                name: "manifests/blobs".into(),
                reference: Reference::Tag("x".into())
            })
        );
        assert_eq!(route("/v2/a/blobs/uploads/"), Ok(Route::Upload));
        assert_eq!(route("/v2/a/blobs/uploads"), Ok(Route::Upload));
        assert_eq!(route("/v2/a/blobs/uploads/1234-abcd"), Ok(Route::Upload));
    }

    #[test]
    fn hostile_paths_are_refused() {
        use RouteError::*;
        assert_eq!(route("/"), Err(NotFound));
        assert_eq!(route("/v22/"), Err(NotFound));
        assert_eq!(route("/v2/a/tags/list/"), Err(NotFound));
        assert_eq!(route("/v2/a/manifests"), Err(NotFound));
        assert!(matches!(
            route("/v2/../../etc/manifests/x"),
            Err(NameInvalid(_))
        ));
        assert!(matches!(
            route("/v2/a%2Fb/manifests/x"),
            Err(NameInvalid(_))
        ));
        assert!(matches!(
            route("/v2/%2e%2e/manifests/x"),
            Err(NameInvalid(_))
        ));
        assert!(matches!(route("/v2/A/manifests/x"), Err(NameInvalid(_))));
        assert!(matches!(route("/v2//a/manifests/x"), Err(NameInvalid(_))));
        assert!(matches!(
            route("/v2/a/manifests/..%2F..%2Fx"),
            Err(TagInvalid(_))
        ));
        assert!(matches!(
            route("/v2/a/manifests/.hidden"),
            Err(TagInvalid(_))
        ));
        assert!(matches!(
            route("/v2/a/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd"),
            Err(DigestInvalid(_))
        ));
        assert!(matches!(
            route("/v2/a/blobs/sha256%3A..%2F..%2Fetc%2Fpasswd"),
            Err(DigestInvalid(_))
        ));
        let blake3 = format!("/v2/a/blobs/blake3:{}", &D[7..]);
        match route(&blake3) {
            Err(DigestInvalid(m)) => assert!(m.contains("unsupported"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            route(&format!("/v2/a/blobs/{}", D.to_uppercase())),
            Err(DigestInvalid(_))
        ));
        assert!(matches!(
            route(&format!("/v2/{}/tags/list", "a".repeat(256))),
            Err(NameInvalid(_))
        ));
    }

    /// The grammar is `ocitool_spec::reference`'s (its own tests are there): a name the
    /// reference parser takes as a repository path is routed, one it refuses is not.
    #[test]
    fn names_and_tags_follow_the_reference_grammar() {
        for (path, name) in [
            ("/v2/a.b_c__d---e/f0/tags/list", "a.b_c__d---e/f0"),
            ("/v2/0/tags/list", "0"),
        ] {
            assert_eq!(route(path), Ok(Route::Tags { name: name.into() }));
            assert!(
                reference::Reference::from_parts("r.io", name, Some("t"), None).is_ok(),
                "{name}"
            );
        }
        for bad in ["a..b", "a___b", "-a", "a-", "a:b", "a b"] {
            assert!(
                matches!(
                    route(&format!("/v2/{bad}/tags/list")),
                    Err(RouteError::NameInvalid(_))
                ),
                "{bad}"
            );
            assert!(reference::check_repository(bad).is_err());
        }
        let longest = format!("/v2/a/manifests/{}", "x".repeat(reference::MAX_TAG_LEN));
        assert!(route(&longest).is_ok());
        let longer = format!("/v2/a/manifests/{}", "x".repeat(reference::MAX_TAG_LEN + 1));
        assert!(matches!(route(&longer), Err(RouteError::TagInvalid(_))));
    }
}
