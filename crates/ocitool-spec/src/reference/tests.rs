use proptest::prelude::*;

use super::*;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// `(input, registry, repository, tag, digest?, normalized, familiar, api host)`.
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    bool,
    &'a str,
    &'a str,
    &'a str,
);

#[test]
fn parses_what_docker_pull_takes() {
    let cases: &[Case] = &[
        (
            "nginx",
            "docker.io",
            "library/nginx",
            None,
            false,
            "docker.io/library/nginx:latest",
            "nginx:latest",
            "registry-1.docker.io",
        ),
        (
            "nginx:1.25-alpine",
            "docker.io",
            "library/nginx",
            Some("1.25-alpine"),
            false,
            "docker.io/library/nginx:1.25-alpine",
            "nginx:1.25-alpine",
            "registry-1.docker.io",
        ),
        (
            "myuser/app:1.0",
            "docker.io",
            "myuser/app",
            Some("1.0"),
            false,
            "docker.io/myuser/app:1.0",
            "myuser/app:1.0",
            "registry-1.docker.io",
        ),
        (
            "ghcr.io/org/app:latest",
            "ghcr.io",
            "org/app",
            Some("latest"),
            false,
            "ghcr.io/org/app:latest",
            "ghcr.io/org/app:latest",
            "ghcr.io",
        ),
        (
            "localhost:5000/x",
            "localhost:5000",
            "x",
            None,
            false,
            "localhost:5000/x:latest",
            "localhost:5000/x:latest",
            "localhost:5000",
        ),
        (
            "localhost/x:1",
            "localhost",
            "x",
            Some("1"),
            false,
            "localhost/x:1",
            "localhost/x:1",
            "localhost",
        ),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v2.1",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "app",
            Some("v2.1"),
            false,
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v2.1",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v2.1",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        ),
        (
            "index.docker.io/library/nginx:1",
            "docker.io",
            "library/nginx",
            Some("1"),
            false,
            "docker.io/library/nginx:1",
            "nginx:1",
            "registry-1.docker.io",
        ),
        (
            "docker.io/nginx",
            "docker.io",
            "library/nginx",
            None,
            false,
            "docker.io/library/nginx:latest",
            "nginx:latest",
            "registry-1.docker.io",
        ),
        (
            "docker.io/library/a/b:2",
            "docker.io",
            "library/a/b",
            Some("2"),
            false,
            "docker.io/library/a/b:2",
            "library/a/b:2",
            "registry-1.docker.io",
        ),
        (
            "[::1]:5000/team/app:x_1",
            "[::1]:5000",
            "team/app",
            Some("x_1"),
            false,
            "[::1]:5000/team/app:x_1",
            "[::1]:5000/team/app:x_1",
            "[::1]:5000",
        ),
        (
            "127.0.0.1:5000/a__b/c-d.e--f",
            "127.0.0.1:5000",
            "a__b/c-d.e--f",
            None,
            false,
            "127.0.0.1:5000/a__b/c-d.e--f:latest",
            "127.0.0.1:5000/a__b/c-d.e--f:latest",
            "127.0.0.1:5000",
        ),
        // An upper-case first component is a registry host (Docker's rule).
        (
            "Reg/app:1",
            "Reg",
            "app",
            Some("1"),
            false,
            "Reg/app:1",
            "Reg/app:1",
            "Reg",
        ),
    ];
    for &(input, registry, repository, tag, _, normalized, familiar, api) in cases {
        let x = r(input);
        assert_eq!(x.registry(), registry, "{input}");
        assert_eq!(x.repository(), repository, "{input}");
        assert_eq!(x.tag(), tag, "{input}");
        assert_eq!(x.digest(), None, "{input}");
        assert_eq!(x.normalized(), normalized, "{input}");
        assert_eq!(x.familiar(), familiar, "{input}");
        assert_eq!(x.api_host(), api, "{input}");
        // Both renderings parse back to the same reference (with the default tag made
        // explicit).
        let explicit = if x.tag().is_none() {
            x.with_tag("latest").unwrap()
        } else {
            x.clone()
        };
        assert_eq!(r(&x.normalized()), explicit, "{input}");
        assert_eq!(r(&x.familiar()), explicit, "{input}");
        assert_eq!(r(&x.to_string()), x, "{input}");
    }
}

#[test]
fn digests_with_and_without_tags() {
    let x = r(&format!("nginx@{D}"));
    assert_eq!(x.tag(), None);
    assert_eq!(x.digest().unwrap().to_string(), D);
    assert_eq!(x.tag_or_default(), None);
    assert_eq!(x.normalized(), format!("docker.io/library/nginx@{D}"));
    assert_eq!(x.familiar(), format!("nginx@{D}"));

    let y = r(&format!("ghcr.io/org/app:1.0@{D}"));
    assert_eq!(y.tag(), Some("1.0"));
    assert_eq!(y.digest().unwrap().to_string(), D);
    assert_eq!(y.to_string(), format!("ghcr.io/org/app:1.0@{D}"));
    assert_eq!(y.familiar(), format!("ghcr.io/org/app:1.0@{D}"));
    assert_eq!(r(&y.to_string()), y);

    let z = r(&format!("localhost:5000/x@{D}"));
    assert_eq!(z.registry(), "localhost:5000");
    assert_eq!(z.repository(), "x");

    assert_eq!(r("nginx").tag_or_default(), Some("latest"));
    assert_eq!(r("nginx:1").tag_or_default(), Some("1"));
}

#[test]
fn refuses_what_docker_refuses() {
    let long_repo = format!("docker.io/{}", "a".repeat(246)); // docker.io/library/ + 246
    let long_tag = format!("app:{}", "t".repeat(129));
    let cases: Vec<(String, &str)> = vec![
        (String::new(), WHY_EMPTY),
        ("Nginx".into(), WHY_UPPER),
        ("team/App:1".into(), WHY_UPPER),
        ("nginx:".into(), WHY_TAG_LEN),
        (":1.0".into(), WHY_NAME_LEN),
        ("nginx:-x".into(), WHY_TAG_CHARS),
        ("nginx:.x".into(), WHY_TAG_CHARS),
        ("nginx:a+b".into(), WHY_TAG_CHARS),
        (long_tag, WHY_TAG_LEN),
        ("a//b".into(), WHY_PATH),
        ("/app".into(), WHY_PATH),
        ("app/".into(), WHY_PATH),
        ("a..b".into(), WHY_PATH),
        ("a_:1".into(), WHY_PATH),
        ("-a".into(), WHY_PATH),
        ("a___b".into(), WHY_PATH),
        ("ä".into(), WHY_PATH),
        ("reg:x/app".into(), WHY_HOST),
        ("-reg.io/app".into(), WHY_HOST),
        ("reg.io:/app".into(), WHY_HOST),
        ("[::1/app".into(), WHY_HOST),
        ("[zz]:5000/app".into(), WHY_HOST),
        (
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            WHY_IMAGE_ID,
        ),
        ("nginx@sha256:abc".into(), WHY_DIGEST),
        ("nginx@".into(), WHY_DIGEST),
        (format!("nginx@md5:{}", "a".repeat(32)), WHY_DIGEST_ALG),
        (
            format!("nginx@{}", D.to_uppercase().replace("SHA", "sha")),
            WHY_DIGEST,
        ),
        (long_repo, WHY_NAME_LEN),
    ];
    for (input, why) in cases {
        match Reference::parse(&input) {
            Ok(x) => panic!("{input:?} accepted as {x}"),
            Err(e) => assert_eq!(e.why, why, "{input:?}"),
        }
    }
    // 255 characters is the limit, counted on the normalized name.
    let at_limit = format!("docker.io/{}", "a/".repeat(122) + "abc"); // 9 + 1 + 247 = 257
    assert!(Reference::parse(&at_limit).is_err());
    let fits = format!("quay.io/{}", "a".repeat(247)); // 7 + 1 + 247 = 255
    assert_eq!(r(&fits).name().len(), 255);
    let one_part = "a".repeat(237); // docker.io/library/ + 237 = 255
    assert_eq!(r(&one_part).name().len(), 255);
    assert!(Reference::parse(&"a".repeat(238)).is_err());
    // A 128-character tag is fine.
    assert!(Reference::parse(&format!("app:{}", "t".repeat(128))).is_ok());
    // The error names the input.
    let e = Reference::parse("Bad:tag!").unwrap_err();
    assert!(e.to_string().contains("\"Bad:tag!\""), "{e}");
}

#[test]
fn builds_from_parts_and_changes_tags() {
    let x = Reference::from_parts("index.docker.io", "library/nginx", Some("1"), None).unwrap();
    assert_eq!(x, r("nginx:1"));
    assert!(Reference::from_parts("reg.io", "Upper", None, None).is_err());
    assert!(Reference::from_parts("reg io", "x", None, None).is_err());
    assert!(Reference::from_parts("reg.io", "x", Some("bad tag"), None).is_err());
    let d = Digest::parse(D).unwrap();
    let y = x.with_digest(d.clone());
    assert_eq!(y.tag(), None);
    assert_eq!(y.digest(), Some(&d));
    assert_eq!(
        y.with_tag("2").unwrap().to_string(),
        "docker.io/library/nginx:2"
    );
    assert!(y.with_tag("-x").is_err());
    assert_eq!(y.repo_only().to_string(), "docker.io/library/nginx");
    assert_eq!("nginx".parse::<Reference>().unwrap(), r("nginx"));
    assert_eq!(
        format!("{:?}", r("nginx:1")),
        "Reference(docker.io/library/nginx:1)"
    );
}

#[test]
fn familiar_names_of_repositories() {
    assert_eq!(r("nginx").familiar_name(), "nginx");
    assert_eq!(r("team/app").familiar_name(), "team/app");
    assert_eq!(r("docker.io/library/a/b").familiar_name(), "library/a/b");
    assert_eq!(r("quay.io/library/x").familiar_name(), "quay.io/library/x");
    assert_eq!(r("nginx").name(), "docker.io/library/nginx");
    assert!(r("index.docker.io/x").is_docker_hub());
    assert!(!r("ghcr.io/x/y").is_docker_hub());
}

#[test]
fn total_functions_on_any_string() {
    // Not references at all: kept as they are (bare tags as skopeo writes them, cosign's).
    assert_eq!(familiar_str("1.0"), "1.0");
    assert_eq!(
        familiar_str("_cosign:sha256-abc.sig"),
        "_cosign:sha256-abc.sig"
    );
    assert_eq!(familiar_str("docker.io/library/app:1.0"), "app:1.0");
    assert_eq!(familiar_str("index.docker.io/library/app:1.0"), "app:1.0");
    assert_eq!(familiar_str("docker.io/team/app:1.0"), "team/app:1.0");
    assert_eq!(familiar_str("index.docker.io/app"), "app");
    assert_eq!(familiar_str("docker.io/library/a/b:1"), "library/a/b:1");
    assert_eq!(familiar_str("quay.io/team/app:1.0"), "quay.io/team/app:1.0");
    assert_eq!(familiar_str("docker.io"), "docker.io");
    assert_eq!(familiar_str("docker.io/a.b/c:1"), "docker.io/a.b/c:1");
    assert_eq!(r("docker.io/a.b/c:1").familiar(), "docker.io/a.b/c:1");
    assert_eq!(familiar_str(""), "");
    assert_eq!(normalize_str("app"), "docker.io/library/app:latest");
    assert_eq!(normalize_str("team/app:2"), "docker.io/team/app:2");
    assert_eq!(normalize_str("docker.io/app:2"), "docker.io/library/app:2");
    assert_eq!(
        normalize_str("index.docker.io/library/app:2"),
        "docker.io/library/app:2"
    );
    assert_eq!(
        normalize_str("localhost:5000/app:2"),
        "localhost:5000/app:2"
    );
    assert_eq!(
        normalize_str("localhost:5000"),
        "docker.io/library/localhost:5000"
    );
    assert_eq!(
        normalize_str(&format!("app@{D}")),
        format!("docker.io/library/app@{D}")
    );
    assert_eq!(normalize_str("Upper/x"), "Upper/x:latest");
    assert_eq!(split_domain("localhost/x"), (Some("localhost"), "x"));
    assert_eq!(split_domain("localhost"), (None, "localhost"));
    assert_eq!(split_domain("team/app"), (None, "team/app"));
    assert_eq!(split_domain("a.b/c/d"), (Some("a.b"), "c/d"));
    assert_eq!(
        split_repo_tag("reg:5000/app:1"),
        ("reg:5000/app", Some("1"))
    );
    assert_eq!(split_repo_tag("reg:5000/app"), ("reg:5000/app", None));
    assert_eq!(
        split_repo_tag("app:1@sha256:x"),
        ("app:1", Some("@sha256:x"))
    );
}

/// The repository-path grammar the registry API routes with (`ocitool serve`), and the tag
/// grammar, on their own.
#[test]
fn repository_paths_and_tags_alone() {
    for ok in [
        "a",
        "a/b",
        "a.b_c__d---e/f0",
        "docker.io/library/nginx",
        "0",
        &"a".repeat(MAX_NAME_LEN),
    ] {
        assert_eq!(check_repository(ok), Ok(()), "{ok}");
    }
    for (bad, why) in [
        ("", WHY_NAME_LEN),
        (&*"a".repeat(MAX_NAME_LEN + 1), WHY_NAME_LEN),
        ("A", WHY_UPPER),
        ("team/App", WHY_UPPER),
        ("a//b", WHY_PATH),
        ("/a", WHY_PATH),
        ("a/", WHY_PATH),
        ("a..b", WHY_PATH),
        ("a___b", WHY_PATH),
        ("-a", WHY_PATH),
        ("a-", WHY_PATH),
        ("a:b", WHY_PATH),
        ("a b", WHY_PATH),
        ("..", WHY_PATH),
        ("a/../b", WHY_PATH),
        ("a%2fb", WHY_PATH),
    ] {
        assert_eq!(check_repository(bad), Err(why), "{bad:?}");
    }
    for ok in ["1.0", "latest", "_x", "A-b.c_d", &"x".repeat(MAX_TAG_LEN)] {
        assert_eq!(check_tag(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        ".x",
        "-x",
        "a+b",
        "a/b",
        "a:b",
        &"x".repeat(MAX_TAG_LEN + 1),
    ] {
        assert!(check_tag(bad).is_err(), "{bad}");
    }
    for hub in [DOCKER_HUB, DOCKER_HUB_LEGACY, DOCKER_HUB_API] {
        assert!(is_docker_hub_host(hub));
    }
    assert!(!is_docker_hub_host("docker.io.example.com"));
}

#[test]
fn twins_share_a_key_and_other_names_are_their_own() {
    let twins = [
        "nginx",
        "nginx:latest",
        "docker.io/nginx",
        "docker.io/library/nginx:latest",
        "index.docker.io/library/nginx:latest",
        "index.docker.io/nginx",
    ];
    for t in twins {
        assert_eq!(name_key(t), "docker.io/library/nginx:latest", "{t}");
        assert!(same_name(t, "nginx"), "{t}");
    }
    assert_eq!(name_key("team/app:1"), "docker.io/team/app:1");
    assert_eq!(name_key("ghcr.io/org/app:1"), "ghcr.io/org/app:1");
    assert!(matches!(
        name_key("ghcr.io/org/app:1"),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_eq!(
        name_key(&format!("app@{D}")),
        format!("docker.io/library/app@{D}")
    );
    // Different images: another tag, another repository, another registry.
    for (a, b) in [
        ("nginx", "nginx:1"),
        ("nginx:1", "team/nginx:1"),
        ("nginx:1", "ghcr.io/library/nginx:1"),
        ("docker.io/library/a/b:1", "a/b:1"),
        ("localhost/app:1", "app:1"),
    ] {
        assert!(!same_name(a, b), "{a} {b}");
    }
    // Names that are not references are their own key, verbatim.
    for n in [
        "_cosign:sha256-0123.sig",
        "Upper/Case:1",
        "app:1.2.3+build.5",
        "Nginx",
    ] {
        assert_eq!(name_key(n), n);
        assert!(same_name(n, n));
    }
    assert!(!same_name("Nginx", "nginx"));
    // A bare word is a repository, as docker reads it.
    assert_eq!(name_key("1.0"), "docker.io/library/1.0:latest");
    assert!(same_name("1.0", "1.0:latest"));
    assert!(!same_name("1.0", "app:1.0"));
}

#[test]
fn repository_keys() {
    for (n, want) in [
        ("nginx:1", "docker.io/library/nginx"),
        ("nginx", "docker.io/library/nginx"),
        ("docker.io/library/nginx:2", "docker.io/library/nginx"),
        ("index.docker.io/nginx", "docker.io/library/nginx"),
        ("team/app:1", "docker.io/team/app"),
        ("ghcr.io/org/app:1", "ghcr.io/org/app"),
        ("localhost:5000/app:1", "localhost:5000/app"),
        ("app:1.2.3+build.5", "docker.io/library/app"),
        ("_cosign:sha256-abc.sig", "_cosign"),
        ("Upper/Case:1", "Upper/Case"),
        (&format!("app@{D}"), "docker.io/library/app"),
        (&format!("app:1@{D}"), "docker.io/library/app"),
    ] {
        assert_eq!(repository_key(n), want, "{n}");
    }
}

fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,4}(([._]|__|-{1,2})[a-z0-9]{1,4}){0,2}"
}

fn reference_text() -> impl Strategy<Value = String> {
    let registry = prop_oneof![
        Just(String::new()),
        Just("docker.io/".to_string()),
        Just("index.docker.io/".to_string()),
        Just("localhost:5000/".to_string()),
        Just("ghcr.io/".to_string()),
        Just("[::1]:5000/".to_string()),
        "[a-z]{1,5}\\.[a-z]{2,3}(:[0-9]{1,5})?/",
    ];
    let tag = prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}".prop_map(|t| format!(":{t}"))
    ];
    let digest = prop_oneof![Just(String::new()), Just(format!("@{D}"))];
    (
        registry,
        prop::collection::vec(component(), 1..4),
        tag,
        digest,
    )
        .prop_map(|(reg, mut comps, tag, dig)| {
            // Without a registry, a first component with a dot names a host (`a_0.a/a` is
            // host `a_0.a`, not a valid one): keep it a path component.
            if reg.is_empty() && comps.len() > 1 {
                comps[0] = comps[0].replace('.', "-");
            }
            format!("{reg}{}{tag}{dig}", comps.join("/"))
        })
}

proptest! {
    /// The total functions agree with the parser on every valid reference.
    #[test]
    fn total_functions_agree_with_the_parser(s in reference_text()) {
        let x = Reference::parse(&s).unwrap();
        prop_assert_eq!(normalize_str(&s), x.normalized());
        let fam = familiar_str(&s);
        prop_assert!(s.ends_with(fam));
        let mut want = x.familiar();
        if x.tag().is_none() && x.digest().is_none() {
            want.truncate(want.len() - ":latest".len());
        }
        // The same image either way; the same text unless the input spells Docker Hub by its
        // legacy name and must stay whole (`index.docker.io/a.b/c`).
        let mut explicit = Reference::parse(fam).unwrap();
        if x.tag().is_none() && x.digest().is_none() {
            explicit = explicit.with_tag("latest").unwrap();
        }
        prop_assert_eq!(explicit.normalized(), x.normalized());
        if fam != want {
            prop_assert!(fam.starts_with("index.docker.io/"), "{} vs {}", fam, want);
        }
        // Its repository path is one the registry API routes.
        prop_assert_eq!(check_repository(x.repository()), Ok(()));
        // Normal forms are fixed points and name the same image.
        prop_assert_eq!(normalize_str(&x.normalized()), x.normalized());
        prop_assert_eq!(Reference::parse(&x.familiar()).unwrap().normalized(), x.normalized());
        // Every spelling is a twin of the others, and keys are fixed points.
        let key = name_key(&s).into_owned();
        prop_assert_eq!(&key, &x.normalized());
        prop_assert_eq!(name_key(&key), key.as_str());
        prop_assert!(same_name(&s, &x.familiar()) && same_name(&s, &x.normalized()));
        prop_assert_eq!(key_tail(&s), key_tail(&key));
        prop_assert_eq!(repository_key(&s), x.name());
    }

    #[test]
    fn never_panics(s in "\\PC{0,80}") {
        let _ = Reference::parse(&s);
        let f = familiar_str(&s);
        prop_assert!(s.ends_with(f));
        let _ = normalize_str(&s);
        let (repo, tag) = split_repo_tag(&s);
        let rebuilt = match tag {
            Some(t) if t.starts_with('@') => format!("{repo}{t}"),
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        prop_assert_eq!(&rebuilt, &s);
        // Keys: total, fixed points, and equal keys have equal tails.
        let key = name_key(&s);
        prop_assert_eq!(name_key(&key), key.as_ref());
        prop_assert_eq!(key_tail(&s), key_tail(&key));
        let _ = repository_key(&s);
    }
}
