//! Prune plans under the recommended tagging (semver cascade, SHA and date tags on every
//! release, `main`-style aliases), checked by examples and against a model on random
//! histories.

use std::collections::{BTreeMap, BTreeSet};

use ocitool_spec::tags::{self, Globs, Policy, TagKind};
use proptest::prelude::*;

use super::{apply, refs};
use crate::*;

const DAY: i64 = 86_400;
/// 2024-01-01T00:00:00Z.
const JAN1: i64 = 1_704_067_200;

/// The date tag of day `n` of 2024 (n < 56: January and February).
fn date_tag(n: i64) -> String {
    let (m, d) = if n < 31 { (1, n + 1) } else { (2, n - 30) };
    format!("2024{m:02}{d:02}")
}

/// A release as CI tags it: `tag DIGEST repo:VERSION repo:SHA repo:DATE --semver`.
fn release(r: &mut BTreeMap<String, String>, repo: &str, version: &str, digest: &str, day: i64) {
    let targets = vec![
        format!("{repo}:{version}"),
        format!(
            "{repo}:{:07x}",
            0xa00_0000 + digest[1..].parse::<u32>().unwrap()
        ),
        format!("{repo}:{}", date_tag(day)),
    ];
    let moves = release_moves(r, &targets, digest).unwrap();
    apply(r, &moves);
}

fn options(keep: Option<usize>) -> PruneOptions {
    PruneOptions {
        keep,
        ..Default::default()
    }
}

fn removed(plan: &PrunePlan) -> Vec<&str> {
    let mut v: Vec<&str> = plan.removals().collect();
    v.sort_unstable();
    v
}

/// 1.0.0, 1.0.1, 1.1.0, 1.1.1, 1.2.0 (one a week), each with a SHA and a date tag.
fn five_releases() -> BTreeMap<String, String> {
    let mut r = BTreeMap::new();
    for (i, v) in ["1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.2.0"]
        .iter()
        .enumerate()
    {
        release(&mut r, "app", v, &format!("d{i}"), 7 * i as i64);
    }
    r
}

/// The issue's case: a SHA tag on every release no longer keeps every release.
#[test]
fn keep_counts_releases_not_tags_and_removes_their_build_tags() {
    let r = five_releases();
    assert_eq!(r["app:1.0"], "d1");
    assert_eq!(r["app:1.1"], "d3");
    assert_eq!(r["app:latest"], "d4");
    let plan = plan_prune(&r, &Policy::default(), &options(Some(2)), &|_| None);
    // Kept: 1.2.0 and 1.1.1 (the newest two), 1.0.1 (app:1.0 points at it).
    assert_eq!(
        removed(&plan),
        [
            "app:1.0.0",
            "app:1.1.0",
            "app:20240101",
            "app:20240115",
            "app:a000000",
            "app:a000002"
        ]
    );
    let unit = |n: &str| plan.units.iter().find(|u| u.name == n).unwrap();
    assert_eq!(unit("app:1.2.0").reason, Reason::Newest(2));
    assert_eq!(unit("app:1.1.1").reason, Reason::Newest(2));
    assert_eq!(unit("app:1.0.1").reason, Reason::Alias("app:1.0".into()));
    assert_eq!(unit("app:1.0.0").reason, Reason::Beyond(2));
    assert_eq!(unit("app:1.0.0").builds, ["app:a000000", "app:20240101"]);
    // Releases in semver order, as the tree shows them.
    let order: Vec<&str> = plan.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        order,
        [
            "app:1.2.0",
            "app:1.1.1",
            "app:1.1.0",
            "app:1.0.1",
            "app:1.0.0"
        ]
    );
    // Keeping 0 still keeps what the aliases point at.
    let plan = plan_prune(&r, &Policy::default(), &options(Some(0)), &|_| None);
    let kept: Vec<&str> = plan
        .units
        .iter()
        .filter(|u| !u.remove)
        .map(|u| u.name.as_str())
        .collect();
    assert_eq!(kept, ["app:1.2.0", "app:1.1.1", "app:1.0.1"]);
}

/// Protection keeps tags from moving; a prune keeps old protected releases unless forced,
/// and counts them once.
#[test]
fn protected_releases_go_only_with_force() {
    let r = five_releases();
    let semver = Policy {
        semver: true,
        ..Default::default()
    };
    let plan = plan_prune(&r, &semver, &options(Some(2)), &|_| None);
    assert!(removed(&plan).is_empty());
    assert_eq!(plan.protected_kept, 2);
    assert!(matches!(
        plan.units
            .iter()
            .find(|u| u.name == "app:1.0.0")
            .unwrap()
            .reason,
        Reason::Protected(_)
    ));
    let forced = plan_prune(
        &r,
        &semver,
        &PruneOptions {
            force: true,
            ..options(Some(2))
        },
        &|_| None,
    );
    assert_eq!(removed(&forced).len(), 6);
    assert_eq!((forced.protected_kept, forced.protected_removed), (0, 2));
    // A protected SHA (or date) tag keeps its release too: it would go with it.
    let sha = Policy {
        sha: true,
        ..Default::default()
    };
    let plan = plan_prune(&r, &sha, &options(Some(2)), &|_| None);
    assert!(removed(&plan).is_empty());
    assert_eq!(plan.protected_kept, 2);
    // A pattern on one old release keeps that one only.
    let one = Policy {
        patterns: vec!["app:1.1.0".into()],
        ..Default::default()
    };
    let plan = plan_prune(&r, &one, &options(Some(2)), &|_| None);
    assert_eq!(removed(&plan), ["app:1.0.0", "app:20240101", "app:a000000"]);
}

/// Several version tags on one image (a release candidate promoted as it is): each is a
/// release, and the image's build tags go with the last of them.
#[test]
fn build_tags_go_with_the_last_release_of_their_image() {
    let r = refs(&[
        ("app:1.0.0-rc.1", "d0"),
        ("app:1.0.0", "d0"),
        ("app:a0a0a0a", "d0"),
        ("app:20240101", "d0"),
        ("app:1.1.0", "d1"),
    ]);
    let plan = plan_prune(&r, &Policy::default(), &options(Some(2)), &|_| None);
    assert_eq!(removed(&plan), ["app:1.0.0-rc.1"]);
    let u = plan.units.iter().find(|u| u.name == "app:1.0.0").unwrap();
    assert_eq!(u.builds, ["app:a0a0a0a", "app:20240101"]);
    let plan = plan_prune(&r, &Policy::default(), &options(Some(1)), &|_| None);
    assert_eq!(
        removed(&plan),
        ["app:1.0.0", "app:1.0.0-rc.1", "app:20240101", "app:a0a0a0a"]
    );
    // A lower release of the image that stays (here by --keep-tags) keeps its build tags.
    let plan = plan_prune(
        &r,
        &Policy::default(),
        &PruneOptions {
            keep_tags: vec!["*:1.0.0-rc.*".into()],
            ..options(Some(1))
        },
        &|_| None,
    );
    assert_eq!(removed(&plan), ["app:1.0.0"]);
    let u = plan
        .units
        .iter()
        .find(|u| u.name == "app:1.0.0-rc.1")
        .unwrap();
    assert_eq!(u.builds, ["app:a0a0a0a", "app:20240101"]);
    // A cascade's aliases point at the promoted image: nothing of it goes.
    let mut r = BTreeMap::new();
    release(&mut r, "app", "1.1.0-rc.1", "d1", 10);
    let m = release_moves(&r, &["app:1.1.0".to_string()], "d1").unwrap();
    apply(&mut r, &m);
    release(&mut r, "app", "1.2.0", "d2", 20);
    let plan = plan_prune(&r, &Policy::default(), &options(Some(1)), &|_| None);
    assert_eq!(
        unit_reason(&plan, "app:1.1.0-rc.1"),
        Reason::Alias("app:1.1".into())
    );
}

#[test]
fn older_than_uses_the_date_tag_then_the_creation_time() {
    let mut r = five_releases();
    // An untagged-date release whose config says when it was built, one whose config has the
    // reproducible-build epoch, and a build of main.
    r.insert("app:0.9.0".into(), "e0".into());
    r.insert("app:0.8.0".into(), "e1".into());
    r.insert("app:b0b0b0b".into(), "e2".into());
    r.insert("app:20231201".into(), "e2".into());
    r.insert("app:c0c0c0c".into(), "e3".into());
    r.insert("app:main".into(), "e3".into());
    r.insert("app:20231202".into(), "e3".into());
    let created = |d: &str| match d {
        "e0" => Some(JAN1 - 30 * DAY),
        "e1" => Some(0),
        "d4" => Some(JAN1 - 400 * DAY), // the date tag wins
        _ => None,
    };
    let opts = PruneOptions {
        older_than: Some(JAN1 + 14 * DAY),
        ..Default::default()
    };
    let plan = plan_prune(&r, &Policy::default(), &opts, &created);
    // Before 2024-01-15: 1.0.0 (01-01), 1.0.1 (01-08; pinned by app:1.0), 0.9.0 (created
    // 2023-12-02), the build b0b0b0b (2023-12-01); 0.8.0 has no date; the main build is
    // pinned; 1.1.0 (01-15) is not older.
    assert_eq!(
        removed(&plan),
        [
            "app:0.9.0",
            "app:1.0.0",
            "app:20231201",
            "app:20240101",
            "app:a000000",
            "app:b0b0b0b"
        ]
    );
    assert_eq!(plan.undated, 1);
    let unit = |n: &str| plan.units.iter().find(|u| u.name == n).unwrap();
    assert_eq!(unit("app:0.8.0").reason, Reason::Undated);
    assert_eq!(unit("app:1.1.0").reason, Reason::Recent(JAN1 + 14 * DAY));
    assert_eq!(unit("app:c0c0c0c").reason, Reason::Alias("app:main".into()));
    assert!(!unit("app:c0c0c0c").is_release);
    assert_eq!(unit("app:b0b0b0b").builds, ["app:20231201"]);
    // With --keep, the newest stay whatever their age, and builds still go by age.
    let plan = plan_prune(
        &r,
        &Policy::default(),
        &PruneOptions {
            keep: Some(10),
            ..opts.clone()
        },
        &created,
    );
    assert_eq!(removed(&plan), ["app:20231201", "app:b0b0b0b"]);
    // --keep alone never removes builds.
    let plan = plan_prune(&r, &Policy::default(), &options(Some(0)), &created);
    assert_eq!(unit_reason(&plan, "app:b0b0b0b"), Reason::Build);
    // --by created orders by the same dates: 0.9.0 (created 2023-12-02) is older than
    // 1.0.0 (2024-01-01) although undated 0.8.0 sorts last.
    let plan = plan_prune(
        &r,
        &Policy::default(),
        &PruneOptions {
            keep: Some(5),
            order: Order::Created,
            ..Default::default()
        },
        &created,
    );
    let order: Vec<&str> = plan
        .units
        .iter()
        .filter(|u| u.is_release)
        .map(|u| u.name.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "app:1.2.0",
            "app:1.1.1",
            "app:1.1.0",
            "app:1.0.1",
            "app:1.0.0",
            "app:0.9.0",
            "app:0.8.0"
        ]
    );
    assert_eq!(removed(&plan), ["app:0.8.0", "app:0.9.0"]);
}

fn unit_reason(plan: &PrunePlan, name: &str) -> Reason {
    plan.units
        .iter()
        .find(|u| u.name == name)
        .unwrap()
        .reason
        .clone()
}

#[test]
fn keep_tags_repos_and_unknown_repos() {
    let mut r = five_releases();
    r.insert("docker.io/library/web:2.0.0".into(), "w0".into());
    r.insert("web:1.0.0".into(), "w1".into());
    let opts = PruneOptions {
        keep_tags: vec!["app:1.1.*".into(), "*:20240101".into()],
        repos: vec!["app".into()],
        ..options(Some(1))
    };
    let plan = plan_prune(&r, &Policy::default(), &opts, &|_| None);
    assert_eq!(
        unit_reason(&plan, "app:1.1.0"),
        Reason::KeepTags {
            tag: "app:1.1.0".into(),
            pattern: "app:1.1.*".into()
        }
    );
    assert!(matches!(
        unit_reason(&plan, "app:1.0.0"),
        Reason::KeepTags { .. }
    ));
    assert!(plan.units.iter().all(|u| u.repository == "app"));
    // Repositories compare in their familiar spelling.
    let plan = plan_prune(
        &r,
        &Policy::default(),
        &PruneOptions {
            repos: vec!["docker.io/library/web".into()],
            ..options(Some(1))
        },
        &|_| None,
    );
    assert_eq!(removed(&plan), ["web:1.0.0"]);
    assert!(check_repos(&r, &["index.docker.io/library/web".into()]).is_ok());
    let e = check_repos(&r, &["apps".into()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"no repository "apps" in the layout (did you mean "app"?)"#
    );
    let e = check_repos(&r, &["zzzzzzzz".into()]).unwrap_err();
    assert!(e.hint.contains(r#""app", "web""#), "{e}");
    assert!(
        check_repos(&BTreeMap::new(), &["app".into()])
            .unwrap_err()
            .hint
            .contains("no refs")
    );
}

// ---------------------------------------------------------------------------------------------
// The model

/// One step of a random history.
#[derive(Clone, Debug)]
enum Step {
    /// `tag dN r:VERSION [r:SHA] [r:DATE] --semver`.
    Release {
        repo: u8,
        version: (u64, u64, u64, Option<u64>),
        sha: bool,
        day: Option<i64>,
    },
    /// A build of a branch: SHA and/or date tags, maybe `main` moved to it.
    Build {
        repo: u8,
        day: Option<i64>,
        main: bool,
    },
    /// An alias set by hand on an earlier image.
    Alias { repo: u8, name: u8, back: usize },
    /// A version tag added to an earlier image, as it is (a release candidate promoted, a
    /// `v`-prefixed twin), without the cascade.
    Promote {
        repo: u8,
        version: (u64, u64, u64),
        back: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..2, (0u64..2, 0u64..3, 0u64..3, proptest::option::weighted(0.2, 0u64..2)), any::<bool>(), proptest::option::weighted(0.8, 0i64..56))
            .prop_map(|(repo, version, sha, day)| Step::Release { repo, version, sha, day }),
        2 => (0u8..2, proptest::option::weighted(0.7, 0i64..56), any::<bool>())
            .prop_map(|(repo, day, main)| Step::Build { repo, day, main }),
        1 => (0u8..2, 0u8..3, 0usize..8).prop_map(|(repo, name, back)| Step::Alias { repo, name, back }),
        3 => (0u8..2, (0u64..2, 0u64..3, 0u64..3), 0usize..8)
            .prop_map(|(repo, version, back)| Step::Promote { repo, version, back }),
    ]
}

/// The refs after a history, and each image's creation time.
fn replay(
    steps: &[Step],
    created: &[Option<i64>],
) -> (BTreeMap<String, String>, BTreeMap<String, i64>) {
    let mut r = BTreeMap::new();
    let mut times = BTreeMap::new();
    for (i, s) in steps.iter().enumerate() {
        let digest = format!("d{i}");
        if let Some(Some(t)) = created.get(i) {
            times.insert(digest.clone(), *t);
        }
        let sha = |repo: u8| format!("r{repo}:{:07x}", 0xa00_0000 + i);
        match s {
            Step::Release {
                repo,
                version: (a, b, c, pre),
                sha: with_sha,
                day,
            } => {
                let mut v = format!("r{repo}:{a}.{b}.{c}");
                if let Some(p) = pre {
                    v.push_str(&format!("-rc.{p}"));
                }
                let mut targets = vec![v];
                if *with_sha {
                    targets.push(sha(*repo));
                }
                if let Some(d) = day {
                    targets.push(format!("r{repo}:{}", date_tag(*d)));
                }
                let m = release_moves(&r, &targets, &digest).unwrap();
                apply(&mut r, &m);
            }
            Step::Build { repo, day, main } => {
                r.insert(sha(*repo), digest.clone());
                if let Some(d) = day {
                    r.insert(format!("r{repo}:{}", date_tag(*d)), digest.clone());
                }
                if *main {
                    r.insert(format!("r{repo}:main"), digest.clone());
                }
            }
            Step::Promote {
                repo,
                version: (a, b, c),
                back,
            } => {
                if i > 0 {
                    let target = format!("d{}", i - 1 - back % i);
                    r.insert(format!("r{repo}:{a}.{b}.{c}"), target);
                }
            }
            Step::Alias { repo, name, back } => {
                if i > 0 {
                    let target = format!("d{}", i - 1 - back % i);
                    let name = ["main", "prod", "stable"][*name as usize];
                    r.insert(format!("r{repo}:{name}"), target);
                }
            }
        }
    }
    (r, times)
}

/// What prune keeps, said tag by tag in the words of the README (quadratic, and sharing no
/// code with the plan but the classification of tags).
fn model(
    refs: &BTreeMap<String, String>,
    policy: &Policy,
    o: &PruneOptions,
    created: &dyn Fn(&str) -> Option<i64>,
) -> BTreeSet<String> {
    let mut kept: BTreeSet<String> = refs.keys().cloned().collect();
    let globs = Globs::new(&o.keep_tags);
    let repos: BTreeSet<&str> = refs.keys().map(|n| repo_key(n)).collect();
    for repo in repos {
        if !o.repos.is_empty() && !o.repos.iter().any(|x| x == repo) {
            continue;
        }
        let tags_on = |d: &str, pred: &dyn Fn(&TagKind) -> bool| -> Vec<&String> {
            refs.iter()
                .filter(|(n, x)| repo_key(n) == repo && x.as_str() == d)
                .filter(|(n, _)| pred(&TagKind::of(tags::tag_of(n))))
                .map(|(n, _)| n)
                .collect()
        };
        let builds_on = |d: &str| tags_on(d, &|k| k.is_build());
        let pinned = |d: &str| !tags_on(d, &|k| *k == TagKind::Alias).is_empty();
        let date = |d: &str| -> Option<i64> {
            let tagged = builds_on(d)
                .iter()
                .filter_map(|n| tags::date_tag(tags::tag_of(n)))
                .max();
            tagged.or(created(d).filter(|t| *t >= prune::FIRST_PLAUSIBLE_CREATED))
        };
        let versions: Vec<(&String, &String, tags::VersionTag)> = refs
            .iter()
            .filter(|(n, _)| repo_key(n) == repo)
            .filter_map(|(n, d)| match TagKind::of(tags::tag_of(n)) {
                TagKind::Version(v) => Some((n, d, v)),
                _ => None,
            })
            .collect();
        let newer = |a: &(&String, &String, tags::VersionTag),
                     b: &(&String, &String, tags::VersionTag)|
         -> bool {
            let semver = a.2.precedence(&b.2).then_with(|| a.0.cmp(b.0)).is_gt();
            match o.order {
                Order::Semver => semver,
                Order::Created => match date(a.1).cmp(&date(b.1)) {
                    std::cmp::Ordering::Equal => semver,
                    c => c.is_gt(),
                },
            }
        };
        let old = |d: &str| match o.older_than {
            None => true,
            Some(cut) => date(d).is_some_and(|t| t < cut),
        };
        let matches_keep = |names: &[&String]| names.iter().any(|n| globs.first_match(n).is_some());
        let mut gone: BTreeSet<&String> = BTreeSet::new();
        for v in &versions {
            let rank = versions.iter().filter(|w| newer(w, v)).count();
            let beyond = o.keep.is_none_or(|k| rank >= k);
            let mut names = builds_on(v.1);
            names.push(v.0);
            if beyond
                && (o.keep.is_some() || o.older_than.is_some())
                && !pinned(v.1)
                && !matches_keep(&names)
                && old(v.1)
                && (o.force || policy.protects(v.0).is_none())
            {
                gone.insert(v.0);
            }
        }
        let digests: BTreeSet<&String> = versions.iter().map(|v| v.1).collect();
        for d in digests {
            let all = versions
                .iter()
                .filter(|v| v.1 == d)
                .all(|v| gone.contains(v.0));
            if all && !o.force && builds_on(d).iter().any(|b| policy.protects(b).is_some()) {
                for v in versions.iter().filter(|v| v.1 == d) {
                    gone.remove(v.0);
                }
            } else if all {
                for b in builds_on(d) {
                    kept.remove(b);
                }
            }
        }
        for g in gone {
            kept.remove(g);
        }
        // Builds: images with build tags and no version.
        let build_images: BTreeSet<&String> = refs
            .iter()
            .filter(|(n, _)| repo_key(n) == repo)
            .map(|(_, d)| d)
            .filter(|d| tags_on(d, &|k| matches!(k, TagKind::Version(_))).is_empty())
            .collect();
        for d in build_images {
            let b = builds_on(d);
            if o.older_than.is_some()
                && !b.is_empty()
                && !pinned(d)
                && !matches_keep(&b)
                && old(d)
                && (o.force || b.iter().all(|n| policy.protects(n).is_none()))
            {
                for n in b {
                    kept.remove(n);
                }
            }
        }
    }
    kept
}

fn check(
    steps: &[Step],
    created: &[Option<i64>],
    policy: &Policy,
    o: &PruneOptions,
) -> Result<(), TestCaseError> {
    let (r, times) = replay(steps, created);
    let created = |d: &str| times.get(d).copied();
    let plan = plan_prune(&r, policy, o, &created);
    let removals: Vec<&str> = plan.removals().collect();
    let set: BTreeSet<&str> = removals.iter().copied().collect();
    prop_assert_eq!(set.len(), removals.len(), "a ref removed twice");
    let after: BTreeSet<String> = r
        .keys()
        .filter(|n| !set.contains(n.as_str()))
        .cloned()
        .collect();
    prop_assert_eq!(&after, &model(&r, policy, o, &created), "refs {:?}", r);
    // What the README promises, directly.
    for n in &removals {
        let kind = TagKind::of(tags::tag_of(n));
        prop_assert!(kind != TagKind::Alias, "alias {} removed", n);
        if !o.force {
            prop_assert!(policy.protects(n).is_none(), "protected {} removed", n);
        }
    }
    let mut on_image: BTreeMap<(&str, &str), (usize, usize, usize)> = BTreeMap::new();
    for n in &after {
        let e = on_image.entry((repo_key(n), r[n].as_str())).or_default();
        match TagKind::of(tags::tag_of(n)) {
            TagKind::Version(_) => e.0 += 1,
            TagKind::Alias => e.2 += 1,
            _ => e.1 += 1,
        }
    }
    for (n, d) in &r {
        let k = TagKind::of(tags::tag_of(n));
        if let Some((_, _, aliases)) = on_image.get(&(repo_key(n), d.as_str()))
            && *aliases > 0
        {
            prop_assert!(
                after.contains(n),
                "{} removed, an alias points at its image",
                n
            );
        }
        // A build tag of an image with versions stays exactly when one of them does.
        let versions_before = r
            .iter()
            .filter(|(m, e)| {
                repo_key(m) == repo_key(n)
                    && *e == d
                    && matches!(TagKind::of(tags::tag_of(m)), TagKind::Version(_))
            })
            .count();
        if k.is_build() && versions_before > 0 {
            let versions_after = on_image.get(&(repo_key(n), d.as_str())).map_or(0, |e| e.0);
            prop_assert_eq!(after.contains(n), versions_after > 0, "{}", n);
        }
    }
    if let Some(k) = o.keep {
        for repo in repository_of(&r, o) {
            let total = r
                .keys()
                .filter(|n| repo_key(n) == repo)
                .filter(|n| matches!(TagKind::of(tags::tag_of(n)), TagKind::Version(_)))
                .count();
            let left = after
                .iter()
                .filter(|n| repo_key(n) == repo)
                .filter(|n| matches!(TagKind::of(tags::tag_of(n)), TagKind::Version(_)))
                .count();
            prop_assert!(
                left >= k.min(total),
                "{repo}: {left} of {total} left, keep {k}"
            );
        }
    }
    Ok(())
}

fn repository_of<'a>(r: &'a BTreeMap<String, String>, o: &PruneOptions) -> BTreeSet<&'a str> {
    r.keys()
        .map(|n| repo_key(n))
        .filter(|x| o.repos.is_empty() || o.repos.iter().any(|y| y == x))
        .collect()
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::option::weighted(
            0.4,
            prop_oneof![Just("r0:*"), Just("*:1.0.*"), Just("*:202401*")],
        ),
    )
        .prop_map(|(semver, sha, p)| Policy {
            semver,
            sha,
            patterns: p.map(|p| vec![p.to_string()]).unwrap_or_default(),
        })
}

fn prune_options() -> impl Strategy<Value = PruneOptions> {
    (
        proptest::option::of(0usize..4),
        proptest::option::weighted(0.5, 0i64..60),
        proptest::option::weighted(
            0.4,
            prop_oneof![Just("*:1.0.*"), Just("r1:*"), Just("*:a*")],
        ),
        proptest::option::weighted(0.2, Just("r1")),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(keep, older, keep_tag, repo, by_created, force)| PruneOptions {
                keep: keep.or(if older.is_none() { Some(1) } else { None }),
                older_than: older.map(|d| JAN1 + d * DAY),
                keep_tags: keep_tag.map(|p| vec![p.to_string()]).unwrap_or_default(),
                repos: repo.map(|r| vec![r.to_string()]).unwrap_or_default(),
                order: if by_created {
                    Order::Created
                } else {
                    Order::Semver
                },
                force,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// On random histories of releases, builds and aliases, with random protection and
    /// options, the plan removes exactly what the model says, and keeps what the README
    /// promises: aliases and their images, protected tags unless forced, the newest N, and
    /// build tags with the last release of their image.
    #[test]
    fn prune_agrees_with_the_model(
        steps in proptest::collection::vec(step(), 1..30),
        created in proptest::collection::vec(
            proptest::option::weighted(0.5, prop_oneof![Just(0i64), (0i64..60).prop_map(|d| JAN1 + d * DAY)]),
            30,
        ),
        policy in policy(),
        o in prune_options(),
    ) {
        check(&steps, &created, &policy, &o)?;
    }

    /// The tree lists every ref once (as a row, a build tag or an alias), each image's build
    /// tags and aliases on its first row, and its releases in the order prune counts them.
    #[test]
    fn the_tree_shows_releases_as_prune_sees_them(
        steps in proptest::collection::vec(step(), 1..30),
    ) {
        let (r, _) = replay(&steps, &[]);
        let t = tree(&r);
        let mut seen: Vec<String> = Vec::new();
        for repo in &t {
            let full = |tag: &str| tags::join(&repo.name, tag);
            let mut images: BTreeSet<&str> = BTreeSet::new();
            for row in repo.versions.iter().chain(&repo.others) {
                seen.push(full(&row.tag));
                seen.extend(row.builds.iter().map(|b| full(b)));
                seen.extend(row.aliases.iter().map(|a| full(a)));
                let first = images.insert(&row.digest);
                prop_assert!(first || (row.builds.is_empty() && row.aliases.is_empty()));
                for b in &row.builds {
                    prop_assert!(TagKind::of(b).is_build(), "{}", b);
                    prop_assert_eq!(&r[&full(b)], &row.digest);
                }
                for a in &row.aliases {
                    prop_assert_eq!(TagKind::of(a), TagKind::Alias);
                    prop_assert_eq!(&r[&full(a)], &row.digest);
                }
            }
            let plan = plan_prune(&r, &Policy::default(), &PruneOptions { keep: Some(usize::MAX), repos: vec![repo.name.clone()], ..Default::default() }, &|_| None);
            let releases: Vec<String> = plan.units.iter().filter(|u| u.is_release).map(|u| tags::tag_of(&u.name).to_string()).collect();
            let rows: Vec<String> = repo.versions.iter().map(|v| v.tag.clone()).collect();
            prop_assert_eq!(releases, rows);
        }
        seen.sort();
        let all: Vec<String> = r.keys().cloned().collect();
        prop_assert_eq!(seen, all);
    }
}
