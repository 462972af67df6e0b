use proptest::prelude::*;

use super::*;
use crate::media::Kind;
use ocitool_compress::Compression;

#[test]
fn media_type_constants_agree_with_oci_spec() {
    use oci_spec::image::MediaType as M;
    let pairs = [
        (media::OCI_INDEX, M::ImageIndex),
        (media::OCI_MANIFEST, M::ImageManifest),
        (media::OCI_CONFIG, M::ImageConfig),
        (media::OCI_LAYER_TAR, M::ImageLayer),
        (media::OCI_LAYER_GZIP, M::ImageLayerGzip),
        (media::OCI_LAYER_ZSTD, M::ImageLayerZstd),
        (media::OCI_EMPTY, M::EmptyJSON),
        (media::OCI_LAYOUT_HEADER, M::LayoutHeader),
    ];
    for (ours, theirs) in pairs {
        assert_eq!(ours, theirs.to_string());
    }
}

#[test]
fn classifies_oci_and_docker_alike() {
    assert_eq!(media::classify(media::OCI_INDEX), Kind::Index);
    assert_eq!(media::classify(media::DOCKER_MANIFEST_LIST), Kind::Index);
    assert_eq!(media::classify(media::DOCKER_MANIFEST), Kind::Manifest);
    assert_eq!(media::classify(media::DOCKER_CONFIG), Kind::Config);
    assert_eq!(
        media::classify(media::DOCKER_LAYER_GZIP),
        Kind::Layer {
            compression: Compression::Gzip,
            distributable: true
        }
    );
    assert_eq!(
        media::classify(media::DOCKER_FOREIGN_LAYER),
        Kind::Layer {
            compression: Compression::Gzip,
            distributable: false
        }
    );
    assert_eq!(
        media::classify("application/vnd.example.sbom+json"),
        Kind::Other
    );
}

#[test]
fn media_type_shape() {
    for ok in [
        media::OCI_MANIFEST,
        media::DOCKER_LAYER_GZIP,
        "text/plain; charset=utf-8",
        "application/vnd.a+b",
    ] {
        assert!(media::is_well_formed(ok), "{ok}");
    }
    for bad in [
        "",
        "application",
        "application/",
        "/json",
        "app lication/json",
        "a/b/c",
        "-a/b",
        "text/plain;",
    ] {
        assert!(!media::is_well_formed(bad), "{bad}");
    }
}

#[test]
fn ref_names_follow_the_annotations_grammar() {
    for ok in [
        "latest",
        "1.0",
        "app:1.0",
        "v1.0.0-vendor.0",
        "docker.io/library/app:1.0",
        "registry.example.com:5000/team/app:1.0",
        "app@sha256:abc",
        "a--b",
        "A+b",
        // Commit-SHA tags and other `word:hex` names are not digests.
        "app:3f2a9c1d4e5b6a7f8091a2b3c4d5e6f708192a3b",
        &format!("cache:{}", "a".repeat(64)),
        &format!("sha256:{}", "a".repeat(63)),
        &format!("team/sha256:{}", "a".repeat(64)),
        &format!("app@sha256:{}", "a".repeat(64)),
    ] {
        refname::validate(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "", "app:", ":1.0", "a//b", "/app", "app/", "a..b", "a---b", "a b", "app:1.0!", "ä", "a:-b",
    ] {
        assert!(refname::validate(bad).is_err(), "{bad:?} accepted");
    }
    // Names of the form of a digest would be read as one (and `untag` would remove the
    // entries of the image with that digest instead).
    for bad in [
        format!("sha256:{}", "3d".repeat(32)),
        format!("sha256:{}", "3D".repeat(32)),
        format!("sha512:{}", "0".repeat(128)),
        format!("blake3:{}", "f".repeat(64)),
    ] {
        let e = refname::validate(&bad).unwrap_err();
        assert!(e.to_string().contains("form of a digest"), "{e}");
    }
    assert!(refname::validate(&"a".repeat(513)).is_err());
}

#[test]
fn names_created_carried_and_in_between() {
    // What ocitool creates loads in docker, podman and containerd.
    for ok in [
        "app:1.0",
        "app",
        "1.0",
        "team/app:v1.2.3-rc.1",
        "docker.io/library/app:1.0",
        "registry.example.com:5000/team/app:1.0",
        "app:3f2a9c1d4e5b6a7f8091a2b3c4d5e6f708192a3b",
    ] {
        refname::validate_new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, why) in [
        ("Upper/Case:1", "lowercase"),
        ("App:1", "lowercase"),
        ("app:1.2.3+build.5", "the tag may hold only"),
        ("_cosign:sha256-abc.sig", "path components"),
        ("app:", "the tag must be"),
        ("", "empty"),
        (
            "app@sha256:3d3d1d6ae926c347b2fc0e01c21f12d7898ec2460d16823064eb4b7e03c7ca29",
            "digest reference",
        ),
        (
            "sha256:3d3d1d6ae926c347b2fc0e01c21f12d7898ec2460d16823064eb4b7e03c7ca29",
            "form of a digest",
        ),
        (
            "sha256:3D3D1D6AE926C347B2FC0E01C21F12D7898EC2460D16823064EB4B7E03C7CA29",
            "form of a digest",
        ),
    ] {
        let e = refname::validate_new(bad).expect_err(bad);
        assert!(e.to_string().contains(why), "{bad}: {e}");
    }
    // The image-spec grammar (tag --allow-any) takes some of those.
    for n in ["Upper/Case:1", "app:1.2.3+build.5"] {
        refname::validate(n).unwrap();
    }
    // What ocitool carries is any safe text.
    for ok in [
        "_cosign:sha256-0123abc.sig",
        "1.0",
        "Upper/Case:1",
        "app:1.2.3+build.5",
        "a b",
        "ä",
        "ocidir://path:tag",
    ] {
        refname::validate_carried(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        String::new(),
        "a\nb".into(),
        "a\u{1b}[31m".into(),
        "a\u{85}".into(),
        "a".repeat(513),
        format!("sha256:{}", "3d".repeat(32)),
    ] {
        assert!(refname::validate_carried(&bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn names_familiar_and_normalized() {
    assert_eq!(refname::familiar("docker.io/library/app:1.0"), "app:1.0");
    assert_eq!(refname::familiar("docker.io/team/app:1.0"), "team/app:1.0");
    assert_eq!(
        refname::familiar("quay.io/team/app:1.0"),
        "quay.io/team/app:1.0"
    );
    assert_eq!(
        refname::docker_normalize("app:1.0"),
        "docker.io/library/app:1.0"
    );
    assert_eq!(
        refname::docker_normalize("app"),
        "docker.io/library/app:latest"
    );
    assert_eq!(
        refname::docker_normalize("team/app:2"),
        "docker.io/team/app:2"
    );
    assert_eq!(
        refname::docker_normalize("localhost:5000/app:2"),
        "localhost:5000/app:2"
    );
    assert_eq!(
        refname::docker_normalize("quay.io/x/app:2"),
        "quay.io/x/app:2"
    );
    assert_eq!(
        refname::split_repo_tag("reg:5000/app:1"),
        ("reg:5000/app", Some("1"))
    );
    assert_eq!(
        refname::split_repo_tag("reg:5000/app"),
        ("reg:5000/app", None)
    );
}

#[test]
fn docker_25_null_manifests_and_layers_read_as_empty() {
    let idx: IndexView = views::parse(br#"{"schemaVersion":2,"manifests":null}"#, "index").unwrap();
    assert!(idx.manifests.is_empty());
    let m: ManifestView = views::parse(
        br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:x","size":2},"layers":null}"#,
        "manifest",
    )
    .unwrap();
    assert!(m.layers.is_empty());
}

#[test]
fn manifest_json_keys_match_in_any_ascii_case_as_go_does() {
    use crate::docker::ManifestItem;
    let parse = |s: &str| views::parse::<Vec<ManifestItem>>(s.as_bytes(), "manifest.json");
    // Old Jib: lower camel case.
    let items =
        parse(r#"[{"config":"config.json","repoTags":["a:1"],"layers":["l.tar.gz"]}]"#).unwrap();
    assert_eq!(items[0].config, "config.json");
    assert_eq!(items[0].repo_tags, vec!["a:1"]);
    assert_eq!(items[0].layers, vec!["l.tar.gz"]);
    // Any case; nulls read as empty; unknown keys ignored.
    let items = parse(
        r#"[{"CONFIG":"c","REPOTAGS":null,"LaYeRs":null,"layersources":null,"PARENT":"p","X":{}}]"#,
    )
    .unwrap();
    assert_eq!(items[0].config, "c");
    assert!(items[0].repo_tags.is_empty() && items[0].layers.is_empty());
    assert_eq!(items[0].parent.as_deref(), Some("p"));
    // A key twice (in any case) is refused, Config is required.
    let e = parse(r#"[{"Config":"a","config":"b"}]"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Config is given twice"), "{e}");
    let e = parse(r#"[{"Layers":[]}]"#).unwrap_err().to_string();
    assert!(e.contains("Config"), "{e}");
}

#[test]
fn docker_config_with_nulls_reads() {
    let c: ConfigView = views::parse(
        br#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Cmd":["sh"],"Labels":null,"Entrypoint":null},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"history":[{"created_by":"x","empty_layer":true}],"container_config":{"Hostname":"h"}}"#,
        "config",
    )
    .unwrap();
    assert_eq!(c.platform().to_string(), "linux/amd64");
    assert_eq!(c.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
    assert!(c.config.labels.is_empty());
    assert_eq!(c.rootfs.diff_ids.len(), 1);
    assert!(c.history[0].empty_layer);
}

#[test]
fn parse_errors_name_the_place() {
    let err = views::parse::<IndexView>(
        br#"{"manifests":[{"digest":"sha256:x","size":"big"}]}"#,
        "image index",
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("manifests[0].size"), "{msg}");
    assert!(msg.starts_with("malformed image index"), "{msg}");
}

#[test]
fn descriptor_checks() {
    let d: Descriptor = views::parse(br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":-1}"#, "d").unwrap();
    assert_eq!(
        d.checked().unwrap_err(),
        views::DescriptorError::NegativeSize(-1)
    );
    let d: Descriptor = views::parse(br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":99999999999}"#, "d").unwrap();
    assert!(matches!(
        d.validate(DEFAULT_JSON_LIMIT),
        Err(views::DescriptorError::TooLarge { .. })
    ));
    let d: Descriptor = views::parse(br#"{"mediaType":"bogus","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}"#, "d").unwrap();
    assert!(matches!(
        d.validate(DEFAULT_JSON_LIMIT),
        Err(views::DescriptorError::MediaType(_))
    ));
}

#[test]
fn documents_are_sniffed_without_a_media_type() {
    assert!(matches!(
        Document::parse(br#"{"manifests":[]}"#, None).unwrap(),
        Document::Index(_)
    ));
    assert!(matches!(
        Document::parse(
            br#"{"config":{"mediaType":"a/b","digest":"d","size":1},"layers":[]}"#,
            None
        )
        .unwrap(),
        Document::Manifest(_)
    ));
    assert!(matches!(
        Document::parse(br#"{"hello":1}"#, None),
        Err(SpecError::NotADocument)
    ));
    // An image config has a "config" member too, but it is not a descriptor.
    assert!(matches!(
        Document::parse(
            br#"{"architecture":"amd64","config":{"Cmd":["sh"]},"rootfs":{"diff_ids":[]}}"#,
            None
        ),
        Err(SpecError::NotADocument)
    ));
    assert!(Document::parse(b"\x00\x01", None).is_err());
}

#[test]
fn platforms_parse_display_and_match() {
    let p: Platform = "linux/arm64".parse().unwrap();
    assert!(p.matches(&Platform::new("linux", "arm64", Some("v8"))));
    assert!(!p.matches(&Platform::new("linux", "arm", Some("v7"))));
    assert_eq!(
        Platform::new("linux", "arm", Some("v7")).to_string(),
        "linux/arm/v7"
    );
    for bad in ["linux", "linux/", "linux/amd64/v1/x", "lin ux/amd64", ""] {
        assert!(bad.parse::<Platform>().is_err(), "{bad}");
    }
}

#[test]
fn canonical_json_sorts_keys_at_every_level() {
    let mut annotations = std::collections::HashMap::new();
    for k in ["z", "a", "m", "b", "y"] {
        annotations.insert(k.to_string(), "v".to_string());
    }
    let v = serde_json::json!({"zeta": 1, "alpha": {"y": 2, "b": [3, {"d": 1, "c": 2}]}, "ann": annotations});
    let out = String::from_utf8(canonical::to_vec(&v)).unwrap();
    assert_eq!(
        out,
        r#"{"alpha":{"b":[3,{"c":2,"d":1}],"y":2},"ann":{"a":"v","b":"v","m":"v","y":"v","z":"v"},"zeta":1}"#
    );
}

proptest! {
    #[test]
    fn ref_name_validation_never_panics(s in "\\PC{0,80}") {
        let _ = refname::validate(&s);
        let _ = refname::split_repo_tag(&s);
        let _ = refname::docker_normalize(&s);
    }

    #[test]
    fn valid_ref_names_are_printable_ascii(s in "[a-zA-Z0-9._:@+/-]{1,40}") {
        if refname::validate(&s).is_ok() {
            prop_assert!(!s.contains("//") && !s.starts_with('/') && !s.ends_with('/'));
        }
    }
}

#[test]
fn docker_repo_tags() {
    for ok in [
        "app:1.0",
        "team/app:v1",
        "docker.io/library/app:latest",
        "localhost:5000/a/b:1",
        "a__b/c-d.e:T_1",
        "a--b:x",
    ] {
        docker::validate_repo_tag(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "app",
        "App:1",
        "UPPER/case:tag!",
        "app@sha256:ab",
        "app:.x",
        "app:",
        "a/:1",
        "-a:1",
        "a_:1",
        "reg:x/app:1",
    ] {
        assert!(docker::validate_repo_tag(bad).is_err(), "{bad}");
    }
}

#[test]
fn manifest_json_with_nulls() {
    let items: Vec<docker::ManifestItem> = views::parse(
        br#"[{"Config":"blobs/sha256/aa","RepoTags":null,"Layers":["blobs/sha256/bb"],"LayerSources":{"sha256:bb":{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":3,"digest":"sha256:bb"}}}]"#,
        "manifest.json",
    )
    .unwrap();
    assert!(items[0].repo_tags.is_empty());
    assert_eq!(items[0].layer_sources.len(), 1);
}

#[test]
fn version_tags() {
    use crate::tags::VersionTag;
    for ok in [
        "1.2.3",
        "v1.2.3",
        "1.3.0-rc.1",
        "1.2.3+build.5",
        "0.0.1",
        "10.20.30-alpha.beta+exp.sha.5114f85",
    ] {
        assert!(VersionTag::parse(ok).is_some(), "{ok}");
    }
    for bad in [
        "1.2", "1", "latest", "01.2.3", "1.2.3.4", "v", "vv1.2.3", "1.2.3-", "main",
    ] {
        assert!(VersionTag::parse(bad).is_none(), "{bad}");
    }
    let v = VersionTag::parse("v1.2.3").unwrap();
    assert_eq!(
        v.aliases(),
        ["v1.2".to_string(), "v1".to_string(), "latest".to_string()]
    );
    assert!(
        v.in_group("v1.2")
            && v.in_group("1")
            && v.in_group("latest")
            && !v.in_group("1.3")
            && !v.in_group("2")
    );
    let a = VersionTag::parse("1.2.3+a").unwrap();
    let b = VersionTag::parse("1.2.3+b").unwrap();
    assert_eq!(
        a.precedence(&b),
        std::cmp::Ordering::Equal,
        "build metadata has no precedence"
    );
    let rc = VersionTag::parse("1.2.3-rc.1").unwrap();
    assert_eq!(rc.precedence(&a), std::cmp::Ordering::Less);
}

#[test]
fn protection_policy() {
    use crate::tags::Policy;
    let p = Policy {
        semver: true,
        sha: true,
        patterns: vec!["*:release-*".into(), "prod".into()],
    };
    assert!(p.protects("app:1.2.3").is_some());
    assert!(p.protects("app:v1.2.3-rc.1").is_some());
    assert!(p.protects("app:1.2").is_none());
    assert!(p.protects("app:latest").is_none());
    assert!(p.protects("app:0123abc").is_some());
    assert!(
        p.protects("app:0123ab").is_none(),
        "6 hex digits are not a SHA"
    );
    assert!(p.protects("app:release-7").unwrap().contains("release-"));
    assert!(p.protects("prod").is_some());
    let a = p.to_annotation().unwrap();
    assert_eq!(Policy::from_annotation(Some(&a)).unwrap(), p);
    assert_eq!(Policy::default().to_annotation(), None);
    assert!(Policy::from_annotation(Some("{")).is_err());
    assert!(crate::tags::check_pattern("[").is_err());
}

/// The exact forms of each kind of tag, as the README documents them.
#[test]
fn tag_kinds() {
    use crate::tags::{TagKind, date_tag, format_date, is_sha_tag, is_version_alias};
    let day = 1_705_276_800; // 2024-01-15T00:00:00Z
    for (tag, secs) in [
        ("20240115", day),
        ("2024-01-15", day),
        ("20240115T1530Z", day + 15 * 3600 + 30 * 60),
        ("20240115T1530", day + 15 * 3600 + 30 * 60),
        ("20240115-1530", day + 15 * 3600 + 30 * 60),
        ("20240115_153007", day + 15 * 3600 + 30 * 60 + 7),
        ("2024-01-15T153007Z", day + 15 * 3600 + 30 * 60 + 7),
        ("2024-01-15-1530", day + 15 * 3600 + 30 * 60),
        ("19700101", 0),
        ("20240229", day + 45 * 86400),
    ] {
        assert_eq!(date_tag(tag), Some(secs), "{tag}");
        assert_eq!(TagKind::of(tag), TagKind::Date(secs), "{tag}");
    }
    for not_a_date in [
        "2024011",
        "202401150",
        "20241301",
        "20240230",
        "20230229",
        "19691231",
        "20240115T2400",
        "20240115T1560",
        "20240115T15",
        "20240115T1530ZZ",
        "20240115Z",
        "20240115.1530",
        "20240115-1",
        "2024-1-15",
        "2024-01-15x",
        "2024/01/15",
        "１２３４0115",
    ] {
        assert_eq!(date_tag(not_a_date), None, "{not_a_date}");
    }
    for sha in [
        "a1b2c3d",
        "0123abcd",
        "abcdef0",
        "1e10000",
        "0123456789012345678901234567890123456789",
        "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
        "sha-a1b2c3d",
        "sha-1234567",
    ] {
        assert!(is_sha_tag(sha), "{sha}");
        assert_eq!(TagKind::of(sha), TagKind::Sha, "{sha}");
    }
    for not_a_sha in [
        "1234567",
        "12345678901234567890123456789012345678901",
        "a1b2c3",
        "A1B2C3D",
        "a1b2c3g",
        "a1b2c3d4e5f60718293a4b5c6d7e8f90123456789",
        "sha-a1b2c3",
        "sha-",
        "g1b2c3d",
    ] {
        assert!(!is_sha_tag(not_a_sha), "{not_a_sha}");
    }
    // A date or build number is never a SHA, whichever policy asks.
    assert_eq!(TagKind::of("20240115"), TagKind::Date(day));
    assert_eq!(TagKind::of("12345678"), TagKind::Alias, "a build number");
    for alias in [
        "1",
        "1.2",
        "v1",
        "v1.2",
        "latest",
        "main",
        "stable",
        "prod",
        "1.25-alpine",
    ] {
        assert_eq!(TagKind::of(alias), TagKind::Alias, "{alias}");
    }
    assert!(matches!(TagKind::of("1.2.3"), TagKind::Version(_)));
    assert!(matches!(TagKind::of("v1.2.3-rc.1"), TagKind::Version(_)));
    assert!(TagKind::of("a1b2c3d").is_build() && TagKind::of("2024-01-15").is_build());
    assert!(!TagKind::of("main").is_build() && !TagKind::of("1.2.3").is_build());
    for yes in ["1", "1.2", "v1", "v1.2", "latest", "10.20"] {
        assert!(is_version_alias(yes), "{yes}");
    }
    for no in ["1.2.3", "main", "v", "1.", ".1", "1.x", "stable", "v1.2-rc"] {
        assert!(!is_version_alias(no), "{no}");
    }
    assert_eq!(format_date(day), "2024-01-15");
    assert_eq!(format_date(day + 15 * 3600 + 30 * 60), "2024-01-15 15:30");
    assert_eq!(
        crate::tags::parse_rfc3339("2024-01-15T01:00:00.123456789+01:00"),
        Some(day)
    );
    assert_eq!(crate::tags::parse_rfc3339("2024-01-15"), None);
}

/// `--sha` protects commit SHAs, never dates or build numbers.
#[test]
fn sha_protection_takes_no_dates_or_numbers() {
    use crate::tags::Policy;
    let p = Policy {
        sha: true,
        ..Default::default()
    };
    for name in [
        "app:20240115",
        "app:1234567",
        "app:20240115123456",
        "app:2024-01-15",
    ] {
        assert_eq!(p.protects(name), None, "{name}");
    }
    for name in ["app:a1b2c3d", "app:sha-a1b2c3d", "a1b2c3d"] {
        assert!(p.protects(name).is_some(), "{name}");
    }
}
