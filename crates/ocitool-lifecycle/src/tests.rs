use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

mod prune;

fn refs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn apply(r: &mut BTreeMap<String, String>, moves: &[Move]) {
    for m in moves {
        r.insert(m.name.clone(), m.to.clone());
    }
}

#[test]
fn a_first_release_sets_every_alias() {
    let m = cascade(&refs(&[]), "app:1.2.3", "d1").unwrap();
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["app:1.2.3", "app:1.2", "app:1", "app:latest"]);
}

#[test]
fn a_hotfix_of_an_older_line_moves_only_its_minor_alias() {
    let mut r = refs(&[]);
    let m = cascade(&r, "app:1.1.8", "d0").unwrap();
    apply(&mut r, &m);
    let m = cascade(&r, "app:1.2.3", "d1").unwrap();
    apply(&mut r, &m);
    let m = cascade(&r, "app:1.1.9", "d2").unwrap();
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["app:1.1.9", "app:1.1"]);
    assert_eq!(m[1].from.as_deref(), Some("d0"));
}

#[test]
fn pre_releases_and_v_prefixes() {
    let mut r = refs(&[]);
    let m = cascade(&r, "app:v1.2.3", "d1").unwrap();
    apply(&mut r, &m);
    assert_eq!(r.get("app:v1.2").map(String::as_str), Some("d1"));
    assert_eq!(r.get("app:v1").map(String::as_str), Some("d1"));
    assert_eq!(r.get("app:latest").map(String::as_str), Some("d1"));
    let m = cascade(&r, "app:v1.3.0-rc.1", "d2").unwrap();
    assert_eq!(m.len(), 1, "a pre-release moves no alias");
    // Build metadata stays on the exact tag only.
    let m = cascade(&r, "app:1.4.0+build.7", "d3").unwrap();
    assert_eq!(
        m.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["app:1.4.0+build.7", "app:1.4", "app:1", "app:latest"]
    );
    assert!(cascade(&r, "app:1.2", "d").is_err());
    assert!(cascade(&r, "app:latest", "d").is_err());
}

/// One release in one command: the version cascades, the build tags are set as given.
#[test]
fn a_release_with_build_tags() {
    let mut r = refs(&[]);
    let targets = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let m = release_moves(
        &r,
        &targets(&["app:1.0.0", "app:a1b2c3d", "app:20240115"]),
        "d0",
    )
    .unwrap();
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "app:1.0.0",
            "app:1.0",
            "app:1",
            "app:latest",
            "app:a1b2c3d",
            "app:20240115"
        ]
    );
    apply(&mut r, &m);
    // A hotfix of an older line after 1.1.0: its minor alias only, plus its build tags.
    let m = release_moves(&r, &targets(&["app:1.1.0", "app:b2c3d4e"]), "d1").unwrap();
    apply(&mut r, &m);
    let m = release_moves(
        &r,
        &targets(&["app:1.0.1", "app:c3d4e5f", "app:2024-02-01", "app:stable"]),
        "d2",
    )
    .unwrap();
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "app:1.0.1",
            "app:1.0",
            "app:c3d4e5f",
            "app:2024-02-01",
            "app:stable"
        ]
    );
    assert_eq!(m[1].from.as_deref(), Some("d0"));
    // No version: refused; an alias the cascade moves: refused, naming it.
    assert!(matches!(
        release_moves(&r, &targets(&["app:a1b2c3d"]), "d"),
        Err(CascadeError::NoVersion(_))
    ));
    for alias in ["app:1.0", "app:1", "app:latest"] {
        assert_eq!(
            release_moves(&r, &targets(&["app:1.0.2", alias]), "d"),
            Err(CascadeError::VersionAlias(alias.to_string()))
        );
    }
    // Dates, build numbers and other lines' aliases are the user's to set.
    assert!(
        release_moves(
            &r,
            &targets(&["app:1.0.2", "app:20240301", "app:1234", "app:2"]),
            "d"
        )
        .is_ok()
    );
}

#[test]
fn tree_shows_releases_with_build_tags_and_builds() {
    let r = refs(&[
        ("app:1.2.0", "d2"),
        ("app:c3d4e5f", "d2"),
        ("app:20240301", "d2"),
        ("app:1.2", "d2"),
        ("app:latest", "d2"),
        ("app:1.1.0", "d1"),
        ("app:b2c3d4e", "d1"),
        ("app:f0f0f0f", "d3"),
        ("app:20240310", "d3"),
        ("app:main", "d3"),
        ("app:e0e0e0e", "d4"),
        ("app:20240305", "d4"),
        ("app:edge", "d5"),
        ("app:beta", "d5"),
    ]);
    let t = tree(&r);
    let v = &t[0].versions;
    assert_eq!(
        (v[0].tag.as_str(), &v[0].builds, &v[0].aliases),
        (
            "1.2.0",
            &vec!["c3d4e5f".to_string(), "20240301".into()],
            &vec!["1.2".to_string(), "latest".into()]
        )
    );
    assert_eq!(v[1].builds, ["b2c3d4e"]);
    let o: Vec<(&str, &Vec<String>, &Vec<String>)> = t[0]
        .others
        .iter()
        .map(|x| (x.tag.as_str(), &x.builds, &x.aliases))
        .collect();
    // Builds newest first, headed by their SHA; then plain aliases, one row each.
    assert_eq!(o[0].0, "f0f0f0f");
    assert_eq!(o[0].1, &["20240310"]);
    assert_eq!(o[0].2, &["main"]);
    assert_eq!(o[1].0, "e0e0e0e");
    assert_eq!((o[2].0, o[3].0), ("beta", "edge"));
    assert_eq!(t[0].others[3].same_as.as_deref(), Some("app:beta"));
}

#[test]
fn tree_groups_versions_and_aliases() {
    let r = refs(&[
        ("app:1.2.3", "d1"),
        ("app:1.2", "d1"),
        ("app:latest", "d1"),
        ("app:1.1.9", "d0"),
        ("app:main", "dx"),
        ("mirror:x", "d1"),
    ]);
    let t = tree(&r);
    assert_eq!(t[0].name, "app");
    assert_eq!(t[0].versions[0].tag, "1.2.3");
    assert_eq!(t[0].versions[0].aliases, ["1.2", "latest"]);
    assert_eq!(t[0].versions[0].shared_with, ["mirror:x"]);
    assert_eq!(t[0].versions[1].tag, "1.1.9");
    assert_eq!(t[0].others[0].tag, "main");
    let t = tree(&refs(&[
        ("app:1.2.3", "d"),
        ("app:latest", "d"),
        ("app:1", "d"),
        ("app:1.2", "d"),
        ("app:edge", "d"),
    ]));
    assert_eq!(t[0].versions[0].aliases, ["1.2", "1", "latest", "edge"]);
}

/// Every ref is on one row; the first row of each digest (in the order of the tree) lists the
/// refs of other repositories sharing it, every later row names that first row. So the tree
/// stays linear in the refs when thousands share one image (it listed every sharer on every
/// row: 20,000 refs in 10,000 repositories made 400 million names).
#[test]
fn tree_lists_the_sharers_of_a_digest_once() {
    let mut r = BTreeMap::new();
    for i in 0..20_000 {
        let digest = if i % 7 == 0 { "d1" } else { "d0" };
        r.insert(
            format!("repo{}:{}.0.{}", i % 10_000, i / 10_000, i % 3),
            digest.to_string(),
        );
    }
    r.insert("repo0:latest".into(), "d0".into());
    let t = tree(&r);
    let rows: Vec<(String, &Row)> = t
        .iter()
        .flat_map(|repo| {
            repo.versions
                .iter()
                .chain(&repo.others)
                .map(move |x| (format!("{}:{}", repo.name, x.tag), x))
        })
        .collect();
    assert_eq!(
        rows.len(),
        r.len() - 1,
        "every ref once (latest is an alias)"
    );
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    let mut listed = 0;
    for (name, x) in &rows {
        assert_eq!(r[name], x.digest, "{name}");
        match first.get(x.digest.as_str()) {
            None => {
                assert_eq!(x.same_as, None, "{name} is the first row of {}", x.digest);
                let repo = name.split(':').next().unwrap();
                let want: Vec<&String> = r
                    .iter()
                    .filter(|(n, d)| **d == x.digest && n.split(':').next() != Some(repo))
                    .map(|(n, _)| n)
                    .collect();
                assert_eq!(x.shared_with.iter().collect::<Vec<_>>(), want);
                first.insert(&x.digest, name);
            }
            Some(f) => {
                assert_eq!(x.same_as.as_deref(), Some(*f), "{name}");
                assert!(x.shared_with.is_empty(), "{name}");
            }
        }
        listed += x.shared_with.len();
    }
    assert_eq!(first.len(), 2);
    assert!(listed < r.len(), "{listed} names listed as sharers");
    assert_eq!(t[0].versions[0].aliases, ["latest"]);
}

/// A model of the cascade: after any sequence of releases, every alias points at the
/// highest release of its group (the last one tagged among equals).
fn model_check(seq: &[(u64, u64, u64, Option<u64>)]) -> Result<(), TestCaseError> {
    let mut r: BTreeMap<String, String> = BTreeMap::new();
    let mut released: Vec<(semver::Version, String)> = Vec::new();
    for (i, (ma, mi, pa, pre)) in seq.iter().enumerate() {
        let mut v = format!("{ma}.{mi}.{pa}");
        if let Some(p) = pre {
            v.push_str(&format!("-rc.{p}"));
        }
        let digest = format!("d{i}");
        let moves = cascade(&r, &format!("app:{v}"), &digest).unwrap();
        apply(&mut r, &moves);
        let parsed = semver::Version::parse(&v).unwrap();
        released.retain(|(x, _)| x.cmp_precedence(&parsed) != std::cmp::Ordering::Equal);
        released.push((parsed, digest));
    }
    let rel: Vec<&(semver::Version, String)> =
        released.iter().filter(|(v, _)| v.pre.is_empty()).collect();
    let best = |f: &dyn Fn(&semver::Version) -> bool| -> Option<String> {
        rel.iter()
            .filter(|(v, _)| f(v))
            .max_by(|a, b| a.0.cmp_precedence(&b.0))
            .map(|(_, d)| d.clone())
    };
    prop_assert_eq!(r.get("app:latest").cloned(), best(&|_| true));
    for (v, _) in &rel {
        let (ma, mi) = (v.major, v.minor);
        prop_assert_eq!(
            r.get(&format!("app:{ma}")).cloned(),
            best(&|x| x.major == ma)
        );
        prop_assert_eq!(
            r.get(&format!("app:{ma}.{mi}")).cloned(),
            best(&|x| x.major == ma && x.minor == mi)
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn aliases_always_point_at_the_highest_release_of_their_group(
        seq in proptest::collection::vec((0u64..3, 0u64..3, 0u64..4, proptest::option::weighted(0.2, 0u64..3)), 1..40)
    ) {
        model_check(&seq)?;
    }

    #[test]
    fn precedence_agrees_with_a_model(a in (0u64..4, 0u64..4, 0u64..4, proptest::option::of(0u64..3)), b in (0u64..4, 0u64..4, 0u64..4, proptest::option::of(0u64..3))) {
        // Model: compare (major, minor, patch), then a release beats any pre-release, then rc numbers.
        let s = |x: (u64, u64, u64, Option<u64>)| match x.3 { Some(p) => format!("{}.{}.{}-rc.{p}", x.0, x.1, x.2), None => format!("{}.{}.{}", x.0, x.1, x.2) };
        let va = ocitool_spec::tags::VersionTag::parse(&s(a)).unwrap();
        let vb = ocitool_spec::tags::VersionTag::parse(&s(b)).unwrap();
        let key = |x: (u64, u64, u64, Option<u64>)| (x.0, x.1, x.2, x.3.is_none(), x.3.unwrap_or(0));
        prop_assert_eq!(va.precedence(&vb), key(a).cmp(&key(b)));
    }
}
