use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

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

#[test]
fn prune_keeps_newest_protected_and_alias_targets() {
    let r = refs(&[
        ("app:1.0.0", "a"),
        ("app:1.1.0", "b"),
        ("app:1.2.0", "c"),
        ("app:1.3.0", "d"),
        ("app:latest", "d"),
        ("app:1.0", "a"),
        ("app:stable-1.1.0", "b"),
        ("other:0.1.0", "x"),
    ]);
    let policy = Policy {
        patterns: vec!["app:1.1.*".into()],
        ..Default::default()
    };
    let plan = plan_prune(
        &r,
        &policy,
        &PruneOptions {
            keep: 1,
            repos: vec!["app".into()],
            ..Default::default()
        },
        &|_| None,
    );
    let removed: Vec<&str> = plan
        .iter()
        .filter(|d| d.remove)
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(removed, ["app:1.2.0"]);
    let why = |n: &str| plan.iter().find(|d| d.name == n).unwrap().reason.clone();
    assert!(why("app:1.3.0").contains("newest"));
    assert!(why("app:1.0.0").contains("alias"), "{}", why("app:1.0.0"));
    assert!(why("app:1.1.0").contains("alias") || why("app:1.1.0").contains("protected"));
    assert!(
        plan.iter().all(|d| d.name != "other:0.1.0"),
        "other repos untouched"
    );
    let forced = plan_prune(
        &r,
        &policy,
        &PruneOptions {
            keep: 0,
            force: true,
            ..Default::default()
        },
        &|_| None,
    );
    assert!(forced.iter().any(|d| d.name == "other:0.1.0" && d.remove));
}

#[test]
fn prune_by_created() {
    let r = refs(&[("app:2.0.0", "old"), ("app:1.0.0", "new")]);
    let created = |d: &str| {
        Some(
            if d == "new" {
                "2025-01-01"
            } else {
                "2020-01-01"
            }
            .to_string(),
        )
    };
    let plan = plan_prune(
        &r,
        &Policy::default(),
        &PruneOptions {
            keep: 1,
            order: Order::Created,
            ..Default::default()
        },
        &created,
    );
    let removed: Vec<&str> = plan
        .iter()
        .filter(|d| d.remove)
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(removed, ["app:2.0.0"]);
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
