//! pull, push, login, logout and ls-remote against Debian's docker-registry (Distribution
//! 2.8.2) in its three test configurations, with skopeo and podman as peers, and faults
//! injected by stopping the registry or through a relay. Without docker-registry each test
//! prints SKIPPED (and fails under CI=true).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ocitool_testkit::registry::{
    Canned, Faults, IDENTITY_TOKEN, Mode, PASSWORD, Relay, TestRegistry, USER,
};
use serde_json::Value;

use crate::util::*;

/// Plain HTTP: push with --to, pull back into an empty layout with the same digests; a
/// second push sends nothing; refs are stored as import stores them.
#[test]
fn push_then_pull_keeps_every_digest() {
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let fx = fixture("multi-arch");
    let want = ref_digest(&fx.path, "multi:1.0");
    let to = format!("{}/site", reg.addr);
    let v = run_json(oci(d.path()).arg("push").arg(&fx.path).args(["--to", &to]));
    assert_eq!(
        v["refs"][0]["destination"],
        format!("{to}/library/multi:1.0")
    );
    assert_eq!(v["refs"][0]["digest"], want);
    assert!(v["blobsSent"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["blobsPresent"], 0);

    // Everything is there: nothing is sent again, and it is quick.
    let t = Instant::now();
    let again = run_json(oci(d.path()).arg("push").arg(&fx.path).args(["--to", &to]));
    let took = t.elapsed();
    assert_eq!(again["blobsSent"], 0, "{again}");
    assert_eq!(again["manifestsPut"], 0, "{again}");
    assert!(took < Duration::from_secs(5), "re-push took {took:?}");

    let l = d.path().join("pulled");
    let image = format!("{to}/library/multi:1.0");
    let p = run_json(oci(d.path()).arg("pull").arg(&l).arg(&image));
    assert_eq!(p["refs"][0]["digest"], want);
    assert_eq!(p["refs"][0]["ref"], image);
    assert_eq!(p["refs"][0]["name"], image);
    let idx = index_json(&l);
    let entry = &idx["manifests"][0];
    assert_eq!(entry["annotations"]["io.containerd.image.name"], image);
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    verify_clean(&l);
    // Every blob arrived with the digest and bytes it had.
    for (rel, digest) in snapshot(&fx.path) {
        if rel.starts_with("blobs") {
            assert_eq!(snapshot(&l).get(&rel), Some(&digest), "{}", rel.display());
        }
    }
    // A second pull asks for little and writes nothing new.
    let before = snapshot(&l);
    let p2 = run_json(oci(d.path()).arg("pull").arg(&l).arg(&image));
    assert_eq!(p2["blobsFetched"], 0, "{p2}");
    assert_eq!(snapshot(&l), before);

    // ls-remote lists the tag.
    let tags = run_json(
        oci(d.path())
            .arg("ls-remote")
            .arg(format!("{to}/library/multi")),
    );
    assert_eq!(tags["tags"], serde_json::json!(["1.0"]));
}

/// One platform of an index: the ref names that platform's manifest; an index the layout
/// holds only partly cannot be pushed whole, and --platform pushes what is there.
#[test]
fn platforms_on_pull_and_push() {
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let fx = fixture("multi-arch");
    let (_, amd, arm, index) = ocitool_testkit::fixtures::multi_arch();
    let base = format!("{}/p", reg.addr);
    run_ok(
        oci(d.path())
            .arg("push")
            .arg(&fx.path)
            .args(["--to", &base]),
    );
    let image = format!("{base}/library/multi:1.0");

    let one = d.path().join("one");
    run_ok(
        oci(d.path())
            .arg("pull")
            .arg(&one)
            .arg(&image)
            .args(["--platform", "linux/arm64"]),
    );
    assert_eq!(ref_digest(&one, &image), arm.manifest.digest.to_string());
    verify_clean(&one);
    assert!(!blob_path(&one, &amd.manifest.digest.to_string()).exists());
    // A single-platform image is pushed for its own platform and refused for another (the
    // rule every command's --platform follows), before anything is sent.
    let to_one = format!("{}/one", reg.addr);
    run_fails(
        oci(d.path())
            .arg("push")
            .arg(&one)
            .args(["--to", &to_one, "--platform", "linux/amd64"]),
        &["is an image for linux/arm64", "not linux/amd64"],
    );
    let v = run_json(oci(d.path()).arg("push").arg(&one).args([
        "--to",
        &to_one,
        "--platform",
        "linux/arm64/v8",
    ]));
    assert_eq!(v["refs"][0]["digest"], arm.manifest.digest.to_string());

    // Two platforms: the index itself, with only those children.
    let two = d.path().join("two");
    run_ok(oci(d.path()).arg("pull").arg(&two).arg(&image).args([
        "--platform",
        "linux/arm64",
        "--platform",
        "linux/amd64",
    ]));
    assert_eq!(ref_digest(&two, &image), index.digest.to_string());

    // A sparse layout: the whole index is refused with the missing child named...
    let sparse = fixture("sparse-index");
    let err = run_fails(
        oci(d.path())
            .arg("push")
            .arg(&sparse.path)
            .args(["--to", &format!("{}/s", reg.addr)]),
        &["sparse:1", "missing"],
    );
    assert!(err.contains("--platform"), "{err}");
    // ...and the platform it holds goes with --platform.
    let v = run_json(oci(d.path()).arg("push").arg(&sparse.path).args([
        "--to",
        &format!("{}/s", reg.addr),
        "--platform",
        "linux/amd64",
    ]));
    assert_eq!(v["refs"][0]["digest"], amd.manifest.digest.to_string());
}

/// skopeo reads what ocitool pushed with the same digests, podman pulls it, and ocitool pulls
/// what skopeo pushed with the same digests.
#[test]
fn skopeo_and_podman_interoperate() {
    if !peer("skopeo") || !peer("podman") {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let fx = fixture("multi-arch");
    let want = ref_digest(&fx.path, "multi:1.0");
    run_ok(
        oci(d.path())
            .arg("push")
            .arg(&fx.path)
            .args(["--to", &format!("{}/oci", reg.addr)]),
    );
    let remote = format!("docker://{}/oci/library/multi:1.0", reg.addr);
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(&remote)
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", stderr(&raw));
    assert_eq!(
        ocitool_digest::Digest::sha256(&raw.stdout).to_string(),
        want
    );
    let sk = d.path().join("skopeo-copy");
    sh(Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
        ])
        .arg(&remote)
        .arg(format!("oci:{}:x", sk.display())));
    assert_eq!(ref_digest(&sk, "x"), want);

    let out = sh(podman(d.path())
        .args(["pull", "--tls-verify=false"])
        .arg(format!("{}/oci/library/multi:1.0", reg.addr)));
    assert!(!out.trim().is_empty());
    let dig = sh(podman(d.path())
        .args(["image", "inspect", "--format", "{{.Digest}}"])
        .arg(format!("{}/oci/library/multi:1.0", reg.addr)));
    assert_eq!(dig.trim(), want);

    // skopeo pushes, ocitool pulls.
    let mini = fixture("minimal");
    let mwant = ref_digest(&mini.path, "app:1.0");
    sh(Command::new("skopeo")
        .args(["copy", "--preserve-digests", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:app:1.0", mini.path.display()))
        .arg(format!("docker://{}/from-skopeo/app:1.0", reg.addr)));
    let l = d.path().join("from-skopeo");
    let image = format!("{}/from-skopeo/app:1.0", reg.addr);
    run_ok(oci(d.path()).arg("pull").arg(&l).arg(&image));
    assert_eq!(ref_digest(&l, &image), mwant);
    verify_clean(&l);
}

/// TLS with a private CA and htpasswd: certs.d (--cert-dir), --tls-verify=false, --creds,
/// login/logout through the auth file, and clear errors without them.
#[test]
fn tls_and_basic_auth() {
    let Some(reg) = TestRegistry::start(Mode::TlsBasic) else {
        return;
    };
    let d = empty_dir();
    let fx = fixture("minimal");
    let to = format!("{}/secure", reg.addr);
    let certs = reg.cert_dir();
    // No CA: the certificate is refused, and the message says what to do.
    run_fails(
        oci(d.path()).arg("push").arg(&fx.path).args([
            "--to",
            &to,
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ]),
        &["certs.d"],
    );
    // No credentials: refused, naming the registry.
    run_fails(
        oci(d.path())
            .arg("push")
            .arg(&fx.path)
            .args(["--to", &to])
            .arg("--cert-dir")
            .arg(&certs),
        &[&reg.addr, "ocitool login"],
    );
    // A wrong password does not log in, and never shows in the error.
    let auth = d.path().join("auth.json");
    let mut login = oci(d.path());
    login
        .args([
            "login",
            &reg.addr,
            "-u",
            USER,
            "--password-stdin",
            "--authfile",
        ])
        .arg(&auth)
        .arg("--cert-dir")
        .arg(&certs);
    let mut child = login
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"wrong-hunter2\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(!stderr(&o).contains("hunter2"));
    assert!(!auth.exists());
    // The right one is stored as podman stores it.
    let mut child = login.stdin(Stdio::piped()).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let stored: Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert!(stored["auths"][&reg.addr]["auth"].is_string(), "{stored}");
    // skopeo reads that file.
    if have("skopeo") {
        let mini_remote = format!("docker://{}/secure/library/app:1.0", reg.addr);
        let _ = mini_remote;
    }
    let v = run_json(
        oci(d.path())
            .arg("push")
            .arg(&fx.path)
            .args(["--to", &to, "--authfile"])
            .arg(&auth)
            .arg("--cert-dir")
            .arg(&certs),
    );
    assert_eq!(v["refs"][0]["digest"], ref_digest(&fx.path, "app:1.0"));
    if have("skopeo") {
        let o = Command::new("skopeo")
            .args(["inspect", "--raw", "--authfile"])
            .arg(&auth)
            .arg("--cert-dir")
            .arg(&certs)
            .arg(format!("docker://{}/secure/library/app:1.0", reg.addr))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // --tls-verify=false with --creds works without the CA.
    let l = d.path().join("pulled");
    run_ok(
        oci(d.path())
            .arg("pull")
            .arg(&l)
            .arg(format!("{to}/library/app:1.0"))
            .args([
                "--tls-verify=false",
                "--creds",
                &format!("{USER}:{PASSWORD}"),
            ]),
    );
    verify_clean(&l);
    // Logout removes it; a second logout says it was not logged in.
    run_ok(
        oci(d.path())
            .args(["logout", &reg.addr, "--authfile"])
            .arg(&auth),
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert!(stored["auths"].get(&reg.addr).is_none(), "{stored}");
    run_fails(
        oci(d.path())
            .args(["logout", &reg.addr, "--authfile"])
            .arg(&auth),
        &["not logged in"],
    );
}

/// Bearer tokens from a token server: anonymous pulls, pushes with credentials, an
/// anonymous push denied with advice.
#[test]
fn token_auth() {
    let Some(reg) = TestRegistry::start(Mode::Token) else {
        return;
    };
    let d = empty_dir();
    let fx = fixture("multi-arch");
    let to = format!("{}/tok", reg.addr);
    run_fails(
        oci(d.path()).arg("push").arg(&fx.path).args(["--to", &to]),
        &[&reg.addr],
    );
    let v = run_json(oci(d.path()).arg("push").arg(&fx.path).args([
        "--to",
        &to,
        "--creds",
        &format!("{USER}:{PASSWORD}"),
    ]));
    let want = ref_digest(&fx.path, "multi:1.0");
    assert_eq!(v["refs"][0]["digest"], want);
    let l = d.path().join("anon");
    let image = format!("{to}/library/multi:1.0");
    run_ok(oci(d.path()).arg("pull").arg(&l).arg(&image));
    assert_eq!(ref_digest(&l, &image), want);
    assert!(
        reg.token_server()
            .unwrap()
            .issued
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
}

/// A big image for the fault tests: six gzip layers, about `mib` MiB.
fn big_layout(dir: &Path, mib: u64) -> std::path::PathBuf {
    let l = dir.join("big");
    ocitool_testkit::big::write_big_layout(&l, mib << 20, 7).unwrap();
    l
}

/// A relay that cuts connections at random points: push and pull still finish, digests
/// intact; a 429 with Retry-After is waited out.
#[test]
fn survives_cut_connections_and_rate_limits() {
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let big = big_layout(d.path(), 12);
    let want = ref_digest(&big, "bench:1");
    let relay = Relay::start(
        &reg.addr,
        Faults {
            cut_after: Some((200 << 10, 3 << 20)),
            max_cuts: 6,
            seed: 42,
            ..Default::default()
        },
    );
    // The relay is on 127.0.0.1 too: plain HTTP by the loopback rule.
    let to = format!("{}/cut", relay.addr);
    run_ok(
        oci(d.path())
            .arg("push")
            .arg(&big)
            .args(["--to", &to, "--retry-delay", "50ms"]),
    );
    let l = d.path().join("pulled");
    let image = format!("{to}/library/bench:1");
    run_ok(
        oci(d.path())
            .arg("pull")
            .arg(&l)
            .arg(&image)
            .args(["--retry-delay", "50ms"]),
    );
    assert_eq!(ref_digest(&l, &image), want);
    verify_clean(&l);
    assert!(
        relay.stats.cuts.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the relay cut nothing"
    );

    let limited = Relay::start(
        &reg.addr,
        Faults {
            too_many: 2,
            retry_after_secs: 1,
            ..Default::default()
        },
    );
    let l2 = d.path().join("limited");
    let t = Instant::now();
    run_ok(
        oci(d.path())
            .arg("pull")
            .arg(&l2)
            .arg(format!("{}/cut/library/bench:1", limited.addr))
            .args(["--retry-delay", "10ms"]),
    );
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(
        limited
            .stats
            .too_many_sent
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // Past the retries, the error says it was rate-limited and for how long.
    let always = Relay::start(
        &reg.addr,
        Faults {
            too_many: 100,
            retry_after_secs: 0,
            ..Default::default()
        },
    );
    run_fails(
        oci(d.path())
            .arg("pull")
            .arg(d.path().join("x"))
            .arg(format!("{}/cut/library/bench:1", always.addr))
            .args(["--retry-delay", "1ms", "--retry-times", "2"]),
        &["rate-limited"],
    );
}

/// A registry stopped in the middle of a push and of a pull, then restarted on the same
/// storage: the reruns finish without sending again what had arrived.
#[test]
fn reruns_after_a_stopped_registry_resume() {
    let Some(mut reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let big = big_layout(d.path(), 24);
    let want = ref_digest(&big, "bench:1");
    // A slow relay so the transfer is under way when the registry stops.
    let relay = Relay::start(
        &reg.addr,
        Faults {
            rate: 8 << 20,
            ..Default::default()
        },
    );
    let to = format!("{}/stop", relay.addr);
    let mut push = oci(d.path());
    push.arg("push").arg(&big).args([
        "--to",
        &to,
        "--retry-times",
        "1",
        "--retry-delay",
        "10ms",
        "-j",
        "1",
    ]);
    let child = push
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| relay.stats.up.load(std::sync::atomic::Ordering::Relaxed) > 10 << 20);
    relay.cut_all();
    reg.stop();
    let o = child.wait_with_output().unwrap();
    assert!(
        !o.status.success(),
        "the push finished before the registry stopped"
    );
    reg.restart();
    let sent_before: Vec<String> = uploads(&reg);
    assert!(
        !sent_before.is_empty(),
        "nothing arrived before the stop: {:?}",
        reg.requests()
    );
    run_ok(oci(d.path()).arg("push").arg(&big).args(["--to", &to]));
    let all = uploads(&reg);
    for digest in &sent_before {
        assert_eq!(
            all.iter().filter(|x| *x == digest).count(),
            1,
            "{digest} was sent twice: {all:?}"
        );
    }

    // Pull: stop mid-blob; the rerun asks for the rest only (a 206 answer).
    let l = d.path().join("pulled");
    let image = format!("{to}/library/bench:1");
    let down_before = relay.stats.down.load(std::sync::atomic::Ordering::Relaxed);
    let child = oci(d.path())
        .arg("pull")
        .arg(&l)
        .arg(&image)
        .args(["--retry-times", "1", "--retry-delay", "10ms", "-j", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(|| {
        relay.stats.down.load(std::sync::atomic::Ordering::Relaxed) > down_before + (3 << 20)
    });
    relay.cut_all();
    reg.stop();
    let o = child.wait_with_output().unwrap();
    assert!(
        !o.status.success(),
        "the pull finished before the registry stopped"
    );
    let partial = l.join(".ocitool/partial");
    let kept: u64 = std::fs::read_dir(&partial)
        .map(|rd| rd.flatten().map(|e| e.metadata().unwrap().len()).sum())
        .unwrap_or(0);
    assert!(
        kept > 0,
        "no partial download kept; the pull said: {}; the registry saw: {:#?}; partial: {:?}; blobs: {:?}",
        stderr(&o),
        reg.requests().iter().rev().take(12).collect::<Vec<_>>(),
        std::fs::read_dir(&partial)
            .map(|rd| rd
                .flatten()
                .map(|e| (e.file_name(), e.metadata().unwrap().len()))
                .collect::<Vec<_>>())
            .ok(),
        std::fs::read_dir(l.join("blobs/sha256"))
            .map(|rd| rd
                .flatten()
                .map(|e| (e.file_name(), e.metadata().unwrap().len()))
                .collect::<Vec<_>>())
            .ok(),
    );
    reg.restart();
    let v = run_json(oci(d.path()).arg("pull").arg(&l).arg(&image));
    assert!(v["bytesResumed"].as_u64().unwrap() > 0, "{v}");
    assert!(
        reg.requests()
            .iter()
            .any(|r| r.starts_with("GET ") && r.contains("/blobs/") && r.contains(" 206 ")),
        "no range request: {:?}",
        reg.requests()
    );
    assert_eq!(ref_digest(&l, &image), want);
    verify_clean(&l);
}

fn wait_for(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Digests whose upload completed (PUT ...?digest=... answered 201), in order.
fn uploads(reg: &TestRegistry) -> Vec<String> {
    reg.requests()
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("/blobs/uploads/") && r.contains(" 201 "))
        .filter_map(|r| {
            r.split("digest=")
                .nth(1)
                .map(|d| d.split([' ', '&']).next().unwrap_or("").replace("%3A", ":"))
        })
        .collect()
}

/// Referrers travel with their subjects: pushed to a registry without the referrers API,
/// they are listed in the fallback tag, and a pull brings them back.
#[test]
fn referrers_go_along() {
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let fx = fixture("artifact");
    let (_, img, sbom, sig) = ocitool_testkit::fixtures::artifact();
    let to = format!("{}/ref", reg.addr);
    let v = run_json(
        oci(d.path())
            .arg("push")
            .arg(&fx.path)
            .arg("app:signed")
            .args(["--to", &to]),
    );
    assert_eq!(v["referrers"], 2, "{v}");
    let tags = run_json(
        oci(d.path())
            .arg("ls-remote")
            .arg(format!("{to}/library/app")),
    );
    let fallback = format!("sha256-{}", img.manifest.digest.encoded());
    assert!(
        tags["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == &fallback),
        "{tags}"
    );
    let l = d.path().join("pulled");
    let p = run_json(
        oci(d.path())
            .arg("pull")
            .arg(&l)
            .arg(format!("{to}/library/app:signed")),
    );
    assert_eq!(p["referrers"], 2, "{p}");
    assert!(blob_path(&l, &sbom.digest.to_string()).exists());
    assert!(blob_path(&l, &sig.digest.to_string()).exists());
    verify_clean(&l);
    // Distribution 2.8.2 has no referrers API (404): the pull read the tag list and the
    // fallback index. (serve.rs checks the referrers API path against `ocitool serve`.)
    let log = reg.requests();
    let at = |needle: &str| {
        log.iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {log:#?}"))
    };
    let asked = at(&format!(
        "GET /v2/ref/library/app/referrers/{} 404",
        img.manifest.digest
    ));
    assert!(asked < at("GET /v2/ref/library/app/tags/list"));
    assert!(asked < at(&format!("GET /v2/ref/library/app/manifests/{fallback} 200")));
    // --all-tags takes the image, not the fallback tag (its referrers came with it).
    let all = d.path().join("all");
    let v = run_json(
        oci(d.path())
            .arg("pull")
            .arg(&all)
            .arg(format!("{to}/library/app"))
            .arg("--all-tags"),
    );
    let names: Vec<&str> = v["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap())
        .collect();
    assert_eq!(names, [format!("{to}/library/app:signed")], "{v}");
    assert_eq!(v["referrers"], 2, "{v}");
    // --no-referrers leaves it.
    let l2 = d.path().join("bare");
    run_ok(
        oci(d.path())
            .arg("pull")
            .arg(&l2)
            .arg(format!("{to}/library/app:signed"))
            .arg("--no-referrers"),
    );
    assert!(!blob_path(&l2, &sbom.digest.to_string()).exists());
}

/// --all-tags pulls every tag; a protected tag does not move on pull without --force.
#[test]
fn all_tags_and_protection() {
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let fx = fixture("multi-arch");
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "multi:1.0".as_ref(),
        "multi:2.0".as_ref(),
    ]);
    let to = format!("{}/all", reg.addr);
    run_ok(
        oci(d.path())
            .arg("push")
            .arg(&fx.path)
            .arg("multi")
            .args(["--all-tags", "--to", &to]),
    );
    let l = d.path().join("pulled");
    let v = run_json(
        oci(d.path())
            .arg("pull")
            .arg(&l)
            .arg(format!("{to}/library/multi"))
            .arg("--all-tags"),
    );
    assert_eq!(v["refs"].as_array().unwrap().len(), 2, "{v}");
    // Protect the pulled 1.0, then make the registry's 1.0 another image and pull again.
    let name = format!("{to}/library/multi:1.0");
    ok(["protect".as_ref(), l.as_os_str(), name.as_ref()]);
    let mini = fixture("minimal");
    run_ok(
        oci(d.path())
            .arg("push")
            .arg(&mini.path)
            .args(["--to", &format!("{}/x", reg.addr)]),
    );
    ok([
        "tag".as_ref(),
        mini.path.as_os_str(),
        "app:1.0".as_ref(),
        "multi:1.0".as_ref(),
    ]);
    run_ok(
        oci(d.path())
            .arg("push")
            .arg(&mini.path)
            .arg("multi:1.0")
            .args(["--to", &to]),
    );
    run_fails(oci(d.path()).arg("pull").arg(&l).arg(&name), &["protected"]);
    run_ok(oci(d.path()).arg("pull").arg(&l).arg(&name).arg("--force"));
    assert_eq!(ref_digest(&l, &name), ref_digest(&mini.path, "app:1.0"));
}

/// A layout with `app:1.0` (the minimal image) and cosign's tags of it: a signature
/// (`sha256-<hex>.sig`) and an attestation (`.att`), each a small manifest of its own; plus
/// `other:1`, with a `.sig` tag named after the same digest in another repository.
fn cosign_layout(dir: &Path) -> (std::path::PathBuf, String, Vec<String>) {
    use ocitool_testkit::image::{self, Blob};
    let img = ocitool_testkit::fixtures::minimal_image();
    let digest = img.manifest.digest.to_string();
    let base = format!("sha256-{}", img.manifest.digest.encoded());
    let mut w = ocitool_testkit::layout::LayoutWriter::new();
    w.add_image(&img).list(&img.manifest, Some("app:1.0"));
    w.list(&img.manifest, Some("other:1"));
    let mut tags = Vec::new();
    for (suffix, payload) in [("sig", "simplesigning"), ("att", "in-toto")] {
        let layer = Blob::new(
            &format!("application/vnd.dev.cosign.{payload}.v1+json"),
            format!("{{\"critical\":{{\"image\":{{\"docker-manifest-digest\":\"{digest}\"}}}}}}")
                .into_bytes(),
        );
        // As cosign writes it: a config whose rootfs lists the payload (it is not gzip).
        let config = Blob::json(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::json!({
                "architecture": "", "os": "", "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer.digest.to_string()]},
            }),
        );
        let m = image::manifest(&config, std::slice::from_ref(&layer), false, Value::Null);
        let tag = format!("{base}.{suffix}");
        w.add_blob(&config)
            .add_blob(&layer)
            .add_blob(&m)
            .list(&m, Some(&format!("app:{tag}")));
        if suffix == "sig" {
            w.list(&m, Some(&format!("other:{tag}")));
        }
        tags.push(tag);
    }
    let l = dir.join("cosign");
    w.write(&l).unwrap();
    (l, digest, tags)
}

/// cosign's `sha256-<hex>.sig/.att/.sbom` tags travel only with --digest-tags, on push and on
/// pull, with their digests; --all-tags leaves them out without it.
#[test]
fn digest_tags_travel_only_when_asked() {
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let (l, _, cosign) = cosign_layout(d.path());
    let to = format!("{}/cs", reg.addr);
    let remote_tags = |repo: &str| -> Vec<String> {
        let v = run_json(
            oci(d.path())
                .arg("ls-remote")
                .arg(format!("{to}/library/{repo}")),
        );
        let mut t: Vec<String> = v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    // Push app:1.0 alone: its cosign tags stay behind.
    run_ok(
        oci(d.path())
            .arg("push")
            .arg(&l)
            .arg("app:1.0")
            .args(["--to", &to]),
    );
    assert_eq!(remote_tags("app"), ["1.0"]);
    // With --digest-tags they go too, from app's repository only.
    let v = run_json(oci(d.path()).arg("push").arg(&l).arg("app:1.0").args([
        "--to",
        &to,
        "--digest-tags",
    ]));
    let mut want = vec!["1.0".to_string()];
    want.extend(cosign.iter().cloned());
    want.sort();
    assert_eq!(remote_tags("app"), want, "{v}");
    for (i, tag) in cosign.iter().enumerate() {
        let pushed = v["refs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ref"] == format!("app:{tag}"))
            .unwrap_or_else(|| panic!("{tag} not pushed: {v}"));
        assert_eq!(
            pushed["digest"],
            ref_digest(&l, &format!("app:{tag}")),
            "{i}"
        );
    }
    assert!(
        !v["refs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ref"].as_str().unwrap().starts_with("other:")),
        "{v}"
    );
    // push --all-tags without --digest-tags: the image tags only.
    let to2 = format!("{}/cs2", reg.addr);
    run_ok(
        oci(d.path())
            .arg("push")
            .arg(&l)
            .arg("app")
            .args(["--all-tags", "--to", &to2]),
    );
    let v = run_json(
        oci(d.path())
            .arg("ls-remote")
            .arg(format!("{to2}/library/app")),
    );
    assert_eq!(v["tags"], serde_json::json!(["1.0"]));

    // Pull app:1.0: no cosign tag without --digest-tags...
    let image = format!("{to}/library/app:1.0");
    let plain = d.path().join("plain");
    run_ok(oci(d.path()).arg("pull").arg(&plain).arg(&image));
    assert_eq!(refs(&plain).len(), 1, "{:?}", refs(&plain));
    // ...and both with it, their digests and blobs unchanged.
    let with = d.path().join("with");
    let v = run_json(
        oci(d.path())
            .arg("pull")
            .arg(&with)
            .arg(&image)
            .arg("--digest-tags"),
    );
    assert_eq!(v["refs"].as_array().unwrap().len(), 3, "{v}");
    for tag in &cosign {
        assert_eq!(
            ref_digest(&with, &format!("{to}/library/app:{tag}")),
            ref_digest(&l, &format!("app:{tag}"))
        );
    }
    verify_clean(&with);
    // --all-tags: the image only, unless --digest-tags.
    let all = d.path().join("all");
    let v = run_json(
        oci(d.path())
            .arg("pull")
            .arg(&all)
            .arg(format!("{to}/library/app"))
            .arg("--all-tags"),
    );
    assert_eq!(v["refs"].as_array().unwrap().len(), 1, "{v}");
    let v = run_json(
        oci(d.path())
            .arg("pull")
            .arg(&all)
            .arg(format!("{to}/library/app"))
            .args(["--all-tags", "--digest-tags"]),
    );
    assert_eq!(v["refs"].as_array().unwrap().len(), 3, "{v}");
}

/// A `docker-credential-ocitest` helper on a private PATH: `store` keeps a secret in a file
/// named after the server, `get` prints it, `erase` removes it; every call is logged.
fn credential_helper(dir: &Path) -> (std::ffi::OsString, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    let store = dir.join("helper-store");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    let log = dir.join("helper.log");
    let script = format!(
        r#"#!/bin/sh
store={store}
input=$(cat)
case "$1" in
store)
  server=$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
  echo "store $server" >> {log}
  printf '%s' "$input" > "$store/$(printf '%s' "$server" | tr '/:' '__')" ;;
get)
  echo "get $input" >> {log}
  f="$store/$(printf '%s' "$input" | tr '/:' '__')"
  if [ -f "$f" ]; then cat "$f"; else echo 'credentials not found in native keychain'; exit 1; fi ;;
erase)
  echo "erase $input" >> {log}
  f="$store/$(printf '%s' "$input" | tr '/:' '__')"
  if [ -f "$f" ]; then rm "$f"; else echo 'credentials not found in native keychain'; exit 1; fi ;;
*) exit 2 ;;
esac
"#,
        store = store.display(),
        log = log.display()
    );
    let helper = bin.join("docker-credential-ocitest");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut path = std::ffi::OsString::from(bin.as_os_str());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    (path, log)
}

/// Credential helpers, as docker and podman use them: `login` stores through the helper the
/// auth file names (`credHelpers` for the registry, else `credsStore`) and writes no secret
/// in the file, `push`/`pull` get the credentials from it, `logout` erases them.
#[test]
fn credential_helpers_get_store_and_erase() {
    let Some(reg) = TestRegistry::start(Mode::TlsBasic) else {
        return;
    };
    let d = empty_dir();
    let (path, log) = credential_helper(d.path());
    let fx = fixture("minimal");
    let certs = reg.cert_dir();
    let helper_log = || std::fs::read_to_string(&log).unwrap_or_default();
    for (i, config) in [
        serde_json::json!({"credHelpers": {reg.addr.clone(): "ocitest"}, "auths": {}}),
        serde_json::json!({"credsStore": "ocitest"}),
    ]
    .into_iter()
    .enumerate()
    {
        let auth = d.path().join(format!("auth-{i}.json"));
        std::fs::write(&auth, config.to_string()).unwrap();
        let before = std::fs::read(&auth).unwrap();
        let with = |c: &mut Command| {
            c.env("PATH", &path)
                .arg("--authfile")
                .arg(&auth)
                .arg("--cert-dir")
                .arg(&certs);
        };
        // login: stored by the helper, the file untouched.
        let mut login = oci(d.path());
        login.args(["login", &reg.addr, "-u", USER, "--password-stdin"]);
        with(&mut login);
        let mut child = login
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("docker-credential-ocitest"),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            std::fs::read(&auth).unwrap(),
            before,
            "the secret went into the file"
        );
        assert!(
            helper_log().contains(&format!("store {}", reg.addr)),
            "{}",
            helper_log()
        );
        // push: credentials from the helper's `get`.
        let to = format!("{}/helper{i}", reg.addr);
        let mut push = oci(d.path());
        push.arg("push").arg(&fx.path).args(["--to", &to]);
        with(&mut push);
        let v = run_json(&mut push);
        assert_eq!(v["refs"][0]["digest"], ref_digest(&fx.path, "app:1.0"));
        assert!(
            helper_log().contains(&format!("get {}", reg.addr)),
            "{}",
            helper_log()
        );
        // logout: erased by the helper; a push is then refused, naming the registry.
        let mut logout = oci(d.path());
        logout
            .env("PATH", &path)
            .args(["logout", &reg.addr, "--authfile"])
            .arg(&auth);
        run_ok(&mut logout);
        assert!(
            helper_log().contains(&format!("erase {}", reg.addr)),
            "{}",
            helper_log()
        );
        let mut push = oci(d.path());
        push.arg("push").arg(&fx.path).args(["--to", &to]);
        with(&mut push);
        run_fails(&mut push, &[&reg.addr, "ocitool login"]);
        let mut again = oci(d.path());
        again
            .env("PATH", &path)
            .args(["logout", &reg.addr, "--authfile"])
            .arg(&auth);
        run_fails(&mut again, &["not logged in"]);
    }
    // docker's config.json ($DOCKER_CONFIG) with a credsStore is read too, after the
    // (absent) podman files: the helper's credentials pull.
    let docker = d.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.json"), r#"{"credsStore": "ocitest"}"#).unwrap();
    std::fs::write(
        d.path()
            .join("helper-store")
            .join(reg.addr.replace(':', "_")),
        serde_json::json!({"ServerURL": reg.addr, "Username": USER, "Secret": PASSWORD})
            .to_string(),
    )
    .unwrap();
    let l = d.path().join("pulled");
    run_ok(
        oci(d.path())
            .env("PATH", &path)
            .env("DOCKER_CONFIG", &docker)
            .arg("pull")
            .arg(&l)
            .arg(format!("{}/helper0/library/app:1.0", reg.addr))
            .arg("--cert-dir")
            .arg(&certs),
    );
    verify_clean(&l);
}

/// The OAuth2 side of the token flow: an identity token (`identitytoken` in an auth file, or
/// a helper's `<token>` user) is POSTed to the token server as a `refresh_token` grant; a
/// token server without the POST form (404) is asked with a GET instead.
#[test]
fn identity_tokens_use_the_oauth2_flow() {
    let Some(reg) = TestRegistry::start(Mode::Token) else {
        return;
    };
    let tokens = reg.token_server().unwrap();
    let d = empty_dir();
    let fx = fixture("minimal");
    let auth = d.path().join("auth.json");
    std::fs::write(
        &auth,
        serde_json::json!({"auths": {reg.addr.clone(): {"identitytoken": IDENTITY_TOKEN}}})
            .to_string(),
    )
    .unwrap();
    // Pushing needs the identity token's user: anonymous tokens may only pull.
    let to = format!("{}/oauth", reg.addr);
    let v = run_json(
        oci(d.path())
            .arg("push")
            .arg(&fx.path)
            .args(["--to", &to, "--authfile"])
            .arg(&auth),
    );
    assert_eq!(v["refs"][0]["digest"], ref_digest(&fx.path, "app:1.0"));
    let log = tokens.requests();
    assert!(log.iter().any(|l| l == "POST refresh_token 200"), "{log:?}");
    assert!(!log.iter().any(|l| l.starts_with("GET")), "{log:?}");

    // A token server that knows only GET: one POST (404), then GETs with the identity token
    // as the password of `<token>`, here from a credential helper.
    tokens
        .oauth
        .store(false, std::sync::atomic::Ordering::Relaxed);
    tokens.log.lock().unwrap().clear();
    let (path, _) = credential_helper(d.path());
    std::fs::write(
        d.path()
            .join("helper-store")
            .join(reg.addr.replace(':', "_")),
        serde_json::json!({"ServerURL": reg.addr, "Username": "<token>", "Secret": IDENTITY_TOKEN})
            .to_string(),
    )
    .unwrap();
    let helper_auth = d.path().join("helper-auth.json");
    std::fs::write(
        &helper_auth,
        serde_json::json!({"credHelpers": {reg.addr.clone(): "ocitest"}}).to_string(),
    )
    .unwrap();
    let to2 = format!("{}/oauth2", reg.addr);
    run_ok(
        oci(d.path())
            .env("PATH", &path)
            .arg("push")
            .arg(&fx.path)
            .args(["--to", &to2, "--authfile"])
            .arg(&helper_auth),
    );
    let log = tokens.requests();
    assert_eq!(
        log.iter().filter(|l| l.starts_with("POST")).count(),
        1,
        "{log:?}"
    );
    assert_eq!(log[0], "POST  404", "{log:?}");
    assert!(log.iter().any(|l| l == "GET basic <token> 200"), "{log:?}");

    // A wrong identity token is refused, and the token never shows.
    tokens
        .oauth
        .store(true, std::sync::atomic::Ordering::Relaxed);
    std::fs::write(
        &auth,
        serde_json::json!({"auths": {reg.addr.clone(): {"identitytoken": "wrong-hunter2"}}})
            .to_string(),
    )
    .unwrap();
    let err = run_fails(
        oci(d.path())
            .arg("push")
            .arg(&fx.path)
            .args(["--to", &to, "--authfile"])
            .arg(&auth),
        &[&reg.addr, "refused"],
    );
    assert!(!err.contains("hunter2"), "{err}");
}

/// ECR and Harbor refuse a push to a repository nobody created (NAME_UNKNOWN, DENIED), and
/// retrying cannot help: the error names the registry and repository and says to create it.
/// (Distribution creates repositories on push, so a relay answers for such a registry.)
#[test]
fn a_push_to_a_repository_not_created_says_to_create_it() {
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let fx = fixture("minimal");
    for (status, code, message, needles) in [
        (
            404,
            "NAME_UNKNOWN",
            "The repository with name 'ecr/library/app' does not exist in the registry",
            &["does not exist", "ECR", "create it"][..],
        ),
        (
            403,
            "DENIED",
            "requested access to the resource is denied",
            &["denied", "Harbor", "create it"][..],
        ),
    ] {
        let relay = Relay::start(
            &reg.addr,
            Faults {
                canned: vec![Canned::error("POST", "/v2/ecr/", status, code, message)],
                ..Default::default()
            },
        );
        let started = Instant::now();
        let err = run_fails(
            oci(d.path()).arg("push").arg(&fx.path).args([
                "--to",
                &format!("{}/ecr", relay.addr),
                "--creds",
                &format!("{USER}:{PASSWORD}"),
            ]),
            needles,
        );
        assert!(err.contains(&relay.addr), "{err}");
        assert!(err.contains("ecr/library/app"), "{err}");
        // Refused at once: not retried with backoff.
        assert!(started.elapsed() < Duration::from_secs(5), "{err}");
        let asked = relay.stats.requests.lock().unwrap().clone();
        assert!(
            asked
                .iter()
                .any(|r| r.starts_with("POST /v2/ecr/library/app/blobs/uploads/")
                    && r.ends_with(&status.to_string())),
            "{asked:?}"
        );
        // Another repository of the same registry is pushed as usual.
        run_ok(
            oci(d.path())
                .arg("push")
                .arg(&fx.path)
                .args(["--to", &format!("{}/ok", relay.addr)]),
        );
    }
}

/// `Warning: 299 - "..."` headers (distribution-spec "Warnings") are printed once each,
/// however many answers carry them, escaped like every line.
#[test]
fn registry_warnings_are_printed_once_each() {
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let fx = fixture("multi-arch");
    let relay = Relay::start(
        &reg.addr,
        Faults {
            warnings: vec![
                r#"299 - "this registry is read-only from 2027-01-01, move to new.example""#.into(),
                r#"299 - "quota: 80% used" "Sat, 25 Aug 2012 23:34:45 GMT""#.into(),
                "299 - \"right-to-left \u{202e}txet\"".into(),
            ],
            ..Default::default()
        },
    );
    let to = format!("{}/warn", relay.addr);
    let check = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", stderr(o));
        let err = stderr(o);
        for w in [
            "this registry is read-only from 2027-01-01, move to new.example",
            "quota: 80% used",
        ] {
            let line = format!("warning: {}: {w}", relay.addr);
            assert_eq!(
                err.lines().filter(|l| *l == line).count(),
                1,
                "{line:?} in {err}"
            );
        }
        // Text from the network cannot reorder the terminal's line.
        assert!(!err.contains('\u{202e}'), "{err:?}");
        assert!(err.contains("right-to-left \\u{202e}txet"), "{err}");
        assert!(!err.contains("Sat, 25 Aug"), "{err}");
    };
    let o = oci(d.path())
        .arg("push")
        .arg(&fx.path)
        .args(["--to", &to])
        .output()
        .unwrap();
    check(&o);
    let o = oci(d.path())
        .arg("pull")
        .arg(d.path().join("pulled"))
        .arg(format!("{to}/library/multi:1.0"))
        .output()
        .unwrap();
    check(&o);
    assert!(relay.stats.requests.lock().unwrap().len() > 5);
}
