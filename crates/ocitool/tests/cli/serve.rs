//! `ocitool serve`: the distribution API over layouts, driven with raw HTTP (every header
//! and status checked), by hostile clients, and by the real clients (skopeo, podman, a
//! private containerd). Each server listens on a free 127.0.0.1 port and is stopped by its
//! pid.
//!
//! `ocitool pull` from `ocitool serve` is here too (the section "ocitool's own pull"): every
//! fixture round-trips with the same digests, referrers come through serve's referrers API,
//! and `--all-tags` follows serve's `tags/list` pages. serve is the referrers-capable registry
//! of the pull tests: Distribution 2.8.2 has no referrers API (its fallback-tag path is tested
//! in `registry.rs`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ocitool_digest::Digest;
use serde_json::Value;

use crate::util::*;

const MINIMAL_MANIFEST: &str =
    "sha256:3d3d1d6ae926c347b2fc0e01c21f12d7898ec2460d16823064eb4b7e03c7ca29";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// What containerd sends.
const ACCEPT_ALL: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";

/// A parsed HTTP response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The code of a distribution-spec error body.
    fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Sends `raw` on a new connection and reads until the server closes it.
fn raw(addr: &str, raw: &[u8]) -> Vec<u8> {
    let mut s = connect(addr);
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Splits the responses in `bytes` (bodies by Content-Length; `head` says the first request
/// was a HEAD).
fn parse(bytes: &[u8], heads: &[bool]) -> Vec<Resp> {
    let mut out = Vec::new();
    let mut at = 0;
    for &head in heads {
        let rest = &bytes[at..];
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(rest)));
        let text = std::str::from_utf8(&rest[..end]).unwrap();
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status: u16 = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_string(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let body_len = if head || status == 304 { 0 } else { len };
        let start = end + 4;
        let body = rest[start..(start + body_len).min(rest.len())].to_vec();
        at += start + body.len();
        out.push(Resp {
            status,
            headers,
            body,
        });
    }
    out
}

/// One request with `Connection: close`.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    parse(&raw(addr, req.as_bytes()), &[method == "HEAD"])
        .pop()
        .unwrap()
}

fn get(addr: &str, path: &str) -> Resp {
    http(addr, "GET", path, &[])
}

fn blob_bytes(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(blob_path(layout, digest)).unwrap()
}

/// The digests of every blob file of a layout.
fn blob_set(layout: &Path) -> std::collections::BTreeSet<String> {
    snapshot(layout)
        .into_iter()
        .filter(|(p, _)| p.starts_with("blobs"))
        .map(|(p, _)| {
            let alg = p.parent().unwrap().file_name().unwrap().to_string_lossy();
            format!("{alg}:{}", p.file_name().unwrap().to_string_lossy())
        })
        .collect()
}

#[test]
fn serves_the_distribution_api() {
    let fx = fixture("minimal");
    let l = &fx.path;
    let s = serve([l]);
    assert!(s.banner.contains("http://127.0.0.1:"), "{}", s.banner);
    let a = s.addr.as_str();

    let base = get(a, "/v2/");
    assert_eq!(base.status, 200);
    assert_eq!(base.json(), serde_json::json!({}));
    assert_eq!(
        base.header("Docker-Distribution-Api-Version"),
        Some("registry/2.0")
    );
    assert!(base.header("Date").is_some());

    // Manifests by tag and by digest: the exact bytes and the descriptor's media type.
    let bytes = blob_bytes(l, MINIMAL_MANIFEST);
    for path in [
        "/v2/app/manifests/1.0".to_string(),
        format!("/v2/app/manifests/{MINIMAL_MANIFEST}"),
        "/v2/library/app/manifests/1.0".to_string(),
    ] {
        for method in ["GET", "HEAD"] {
            let r = http(a, method, &path, &[("Accept", ACCEPT_ALL)]);
            assert_eq!(r.status, 200, "{method} {path}");
            assert_eq!(r.header("Content-Type"), Some(OCI_MANIFEST));
            assert_eq!(r.header("Docker-Content-Digest"), Some(MINIMAL_MANIFEST));
            assert_eq!(
                r.header("ETag"),
                Some(format!("\"{MINIMAL_MANIFEST}\"").as_str())
            );
            assert_eq!(
                r.header("Content-Length"),
                Some(bytes.len().to_string().as_str())
            );
            if method == "GET" {
                assert_eq!(r.body, bytes);
            } else {
                assert!(r.body.is_empty());
            }
        }
    }
    // No Accept at all allows anything; an Accept that excludes the stored type gets what
    // Distribution answers, never a converted document.
    assert_eq!(get(a, "/v2/app/manifests/1.0").body, bytes);
    for accept in [DOCKER_MANIFEST, &format!("{DOCKER_MANIFEST}, {OCI_INDEX}")] {
        let r = http(a, "GET", "/v2/app/manifests/1.0", &[("Accept", accept)]);
        assert_eq!(r.status, 404, "{accept}");
        assert_eq!(r.code(), "MANIFEST_UNKNOWN");
    }
    let r = http(
        a,
        "GET",
        "/v2/app/manifests/1.0",
        &[("If-None-Match", &format!("\"{MINIMAL_MANIFEST}\""))],
    );
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());

    // Unknown names, tags and digests.
    let r = get(a, "/v2/app/manifests/9.9");
    assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));
    let r = get(a, "/v2/nope/manifests/1.0");
    assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));
    let absent = Digest::sha256(b"absent").to_string();
    let r = get(a, &format!("/v2/app/blobs/{absent}"));
    assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UNKNOWN"));
    let r = get(a, &format!("/v2/app/manifests/{absent}"));
    assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));

    // Blobs: every one of the image, whole, with its headers.
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let mut digests = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
    for layer in manifest["layers"].as_array().unwrap() {
        digests.push(layer["digest"].as_str().unwrap().to_string());
    }
    for d in &digests {
        let want = blob_bytes(l, d);
        let r = get(a, &format!("/v2/app/blobs/{d}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, want);
        assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
        assert_eq!(r.header("Docker-Content-Digest"), Some(d.as_str()));
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
        let h = http(a, "HEAD", &format!("/v2/app/blobs/{d}"), &[]);
        assert_eq!(h.status, 200);
        assert_eq!(
            h.header("Content-Length"),
            Some(want.len().to_string().as_str())
        );
    }

    // Tags and the catalog, with n/last pagination and Link.
    ok([
        "tag".as_ref(),
        l.as_os_str(),
        "app:1.0".as_ref(),
        "app:2.0".as_ref(),
        "app:latest".as_ref(),
    ]);
    let before = snapshot(l);
    let r = get(a, "/v2/app/tags/list");
    assert_eq!(
        r.json(),
        serde_json::json!({"name": "app", "tags": ["1.0", "2.0", "latest"]})
    );
    assert_eq!(r.header("Link"), None);
    let r = get(a, "/v2/app/tags/list?n=2");
    assert_eq!(r.json()["tags"], serde_json::json!(["1.0", "2.0"]));
    assert_eq!(
        r.header("Link"),
        Some("</v2/app/tags/list?n=2&last=2%2E0>; rel=\"next\"")
    );
    let r = get(a, "/v2/app/tags/list?n=2&last=2%2E0");
    assert_eq!(r.json()["tags"], serde_json::json!(["latest"]));
    assert_eq!(r.header("Link"), None);
    let r = get(a, "/v2/app/tags/list?n=x");
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "PAGINATION_NUMBER_INVALID")
    );
    let r = get(a, "/v2/_catalog");
    assert_eq!(
        r.json(),
        serde_json::json!({"repositories": ["app", "library/app"]})
    );
    let r = get(a, "/v2/_catalog?n=1");
    assert_eq!(r.json()["repositories"], serde_json::json!(["app"]));
    assert!(r.header("Link").unwrap().contains("last=app"));

    // Every write is refused with a distribution-spec error.
    for (method, path) in [
        ("PUT", "/v2/app/manifests/1.0"),
        ("POST", "/v2/app/blobs/uploads/"),
        ("PATCH", "/v2/app/blobs/uploads/1234"),
        (
            "DELETE",
            &format!("/v2/app/manifests/{MINIMAL_MANIFEST}") as &str,
        ),
        ("DELETE", &format!("/v2/app/blobs/{}", digests[0])),
    ] {
        let r = http(a, method, path, &[("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.code(), "UNSUPPORTED");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    }
    // A write with a body is answered without reading it, then the connection is closed.
    let body = vec![b'x'; 100_000];
    let mut req = format!(
        "PUT /v2/app/manifests/1.0 HTTP/1.1\r\nHost: x\r\nContent-Type: {OCI_MANIFEST}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let r = parse(&raw(a, &req), &[false]).pop().unwrap();
    assert_eq!((r.status, r.header("Connection")), (405, Some("close")));
    // Serving wrote nothing.
    assert_eq!(snapshot(l), before);
}

#[test]
fn keep_alive_pipelining_and_http10() {
    let fx = fixture("minimal");
    let s = serve([&fx.path]);
    let a = s.addr.as_str();
    let len = blob_bytes(&fx.path, MINIMAL_MANIFEST).len();
    // Three pipelined requests on one connection, the last one closing it.
    let req = concat!(
        "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "HEAD /v2/app/manifests/1.0 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v2/app/manifests/1.0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let rs = parse(&raw(a, req.as_bytes()), &[false, true, false]);
    assert_eq!(
        rs.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 200]
    );
    assert_eq!(
        rs[1].header("Content-Length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(rs[2].body.len(), len);
    assert_eq!(rs[2].header("Connection"), Some("close"));
    // Keep-alive: one request, the answer, another on the same connection.
    let mut c = connect(a);
    for _ in 0..3 {
        c.write_all(b"GET /v2/app/manifests/1.0 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n")
            || got.len() < got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4 + len
        {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "closed early");
            got.extend_from_slice(&buf[..n]);
        }
        let r = parse(&got, &[false]).pop().unwrap();
        assert_eq!((r.status, r.body.len()), (200, len));
        assert_eq!(r.header("Connection"), None);
    }
    // HTTP/1.0 closes unless asked not to; it needs no Host.
    let r = parse(&raw(a, b"GET /v2/ HTTP/1.0\r\n\r\n"), &[false])
        .pop()
        .unwrap();
    assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
}

#[test]
fn blob_ranges() {
    let fx = fixture("minimal");
    let s = serve([&fx.path]);
    let a = s.addr.as_str();
    let manifest: Value = serde_json::from_slice(&blob_bytes(&fx.path, MINIMAL_MANIFEST)).unwrap();
    let d = manifest["layers"][0]["digest"].as_str().unwrap();
    let bytes = blob_bytes(&fx.path, d);
    let size = bytes.len();
    let path = format!("/v2/app/blobs/{d}");
    let range = |v: &str| http(a, "GET", &path, &[("Range", v)]);
    let r = range("bytes=0-9");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, bytes[..10]);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 0-9/{size}").as_str())
    );
    let r = range("bytes=100-");
    assert_eq!((r.status, r.body.as_slice()), (206, &bytes[100..]));
    let r = range("bytes=-7");
    assert_eq!((r.status, r.body.as_slice()), (206, &bytes[size - 7..]));
    let r = range(&format!("bytes=5-{}", size * 10));
    assert_eq!((r.status, r.body.as_slice()), (206, &bytes[5..]));
    let h = http(a, "HEAD", &path, &[("Range", "bytes=1-2")]);
    assert_eq!((h.status, h.header("Content-Length")), (206, Some("2")));
    for bad in [
        format!("bytes={size}-"),
        "bytes=99999999999999999999999999999-".to_string(),
        "bytes=9-3".to_string(),
        "bytes=abc".to_string(),
        "bytes=-0".to_string(),
        "bytes".to_string(),
    ] {
        let r = range(&bad);
        assert_eq!(r.status, 416, "{bad}");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes */{size}").as_str()),
            "{bad}"
        );
    }
    // Several ranges, another unit, or a stale If-Range: the whole blob.
    for (k, v) in [("Range", "bytes=0-1,5-6"), ("Range", "items=0-1")] {
        let r = http(a, "GET", &path, &[(k, v)]);
        assert_eq!((r.status, r.body.len()), (200, size), "{v}");
    }
    let r = http(
        a,
        "GET",
        &path,
        &[("Range", "bytes=0-1"), ("If-Range", "\"sha256:other\"")],
    );
    assert_eq!((r.status, r.body.len()), (200, size));
    // A huge list of ranges is one more case of "several".
    let many = format!("bytes={}", vec!["0-0"; 2000].join(","));
    let r = http(a, "GET", &path, &[("Range", &many)]);
    assert_eq!((r.status, r.body.len()), (200, size));
}

#[test]
fn names_from_every_kind_of_ref() {
    let d = empty_dir();
    // skopeo's `oci:DIR:1.25` writes a bare tag: the directory names the repository.
    let nginx = d.path().join("nginx");
    copy_dir(&testdata("layouts/minimal"), &nginx);
    ok([
        "tag".as_ref(),
        nginx.as_os_str(),
        "app:1.0".as_ref(),
        "1.25".as_ref(),
    ]);
    ok(["untag".as_ref(), nginx.as_os_str(), "app:1.0".as_ref()]);
    // A name with a registry host, and a tag no registry accepts.
    let hosted = d.path().join("hosted");
    copy_dir(&testdata("layouts/multi-arch"), &hosted);
    ok([
        "tag".as_ref(),
        hosted.as_os_str(),
        "multi:1.0".as_ref(),
        "ghcr.io/org/app:2".as_ref(),
        "ghcr.io/org/app:2.0.0+build.7".as_ref(),
        "--allow-any".as_ref(),
    ]);
    ok(["untag".as_ref(), hosted.as_os_str(), "multi:1.0".as_ref()]);
    // Docker 25's `docker save`: ref.name `latest` beside io.containerd.image.name.
    let docker = d.path().join("docker");
    copy_dir(&testdata("layouts/docker-v2s2"), &docker);
    let s = serve([&nginx, &hosted, &docker]);
    let a = s.addr.as_str();
    assert_eq!(
        get(a, "/v2/_catalog").json()["repositories"],
        serde_json::json!([
            "docker.io/library/dockerish",
            "dockerish",
            "ghcr.io/org/app",
            "library/dockerish",
            "library/nginx",
            "nginx",
            "org/app"
        ])
    );
    assert!(
        s.stderr().contains("2.0.0+build.7") && s.stderr().contains("not a valid registry tag"),
        "{}",
        s.stderr()
    );
    let multi = "sha256:35949bb6ab5da528a9d89560cc5f517f132a30bc85b57589452d6f86d571ed89";
    let list = "sha256:baeb5eab6cbdea90ee43019286a9025036fa842f8f66cb9f16f4f64a4761c1db";
    for (path, digest, media_type) in [
        ("/v2/nginx/manifests/1.25", MINIMAL_MANIFEST, OCI_MANIFEST),
        (
            "/v2/library/nginx/manifests/1.25",
            MINIMAL_MANIFEST,
            OCI_MANIFEST,
        ),
        ("/v2/ghcr.io/org/app/manifests/2", multi, OCI_INDEX),
        ("/v2/org/app/manifests/2", multi, OCI_INDEX),
        // containerd's mirror request for ghcr.io/org/app:2.
        ("/v2/org/app/manifests/2?ns=ghcr.io", multi, OCI_INDEX),
        ("/v2/dockerish/manifests/latest", list, DOCKER_LIST),
        ("/v2/library/dockerish/manifests/latest", list, DOCKER_LIST),
        (
            "/v2/docker.io/library/dockerish/manifests/latest",
            list,
            DOCKER_LIST,
        ),
        (
            "/v2/library/dockerish/manifests/latest?ns=docker.io",
            list,
            DOCKER_LIST,
        ),
    ] {
        let r = http(a, "GET", path, &[("Accept", ACCEPT_ALL)]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("Docker-Content-Digest"), Some(digest), "{path}");
        assert_eq!(r.header("Content-Type"), Some(media_type), "{path}");
    }
    let r = get(a, "/v2/dockerish/tags/list");
    assert_eq!(
        r.json()["tags"],
        serde_json::json!(["amd64-only", "latest"])
    );
    // The summary shows each image once, with the names it is also served under.
    assert!(s.banner.contains("serves 3 repositories"), "{}", s.banner);
}

#[test]
fn colliding_layouts_are_refused() {
    let d = empty_dir();
    let a = d.path().join("a");
    let b = d.path().join("b");
    copy_dir(&testdata("layouts/minimal"), &a);
    copy_dir(&testdata("layouts/artifact"), &b);
    fails(
        3,
        &["repository app", "a", "b"],
        [
            "serve".as_ref(),
            a.as_os_str(),
            b.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
    );
    fails(
        3,
        &["not-a-layout", "no such directory"],
        ["serve", "not-a-layout", "--listen", "127.0.0.1:0"],
    );
    fails(2, &["--listen"], ["serve", "x", "--listen", "nowhere"]);
}

#[test]
fn tags_made_while_serving_are_served_without_a_restart() {
    let fx = fixture("minimal");
    let l = &fx.path;
    let s = serve([l]);
    let a = s.addr.as_str();
    assert_eq!(get(a, "/v2/app/manifests/2.0").status, 404);
    assert_eq!(get(a, "/v2/team/app/tags/list").status, 404);
    ok([
        "tag".as_ref(),
        l.as_os_str(),
        "app:1.0".as_ref(),
        "app:2.0".as_ref(),
        "team/app:3".as_ref(),
    ]);
    let r = get(a, "/v2/app/manifests/2.0");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Docker-Content-Digest"), Some(MINIMAL_MANIFEST));
    assert_eq!(
        get(a, "/v2/team/app/tags/list").json()["tags"],
        serde_json::json!(["3"])
    );
    ok(["untag".as_ref(), l.as_os_str(), "app:1.0".as_ref()]);
    assert_eq!(
        get(a, "/v2/app/tags/list").json()["tags"],
        serde_json::json!(["2.0"])
    );
    assert_eq!(get(a, "/v2/app/manifests/1.0").status, 404);
    // A damaged index.json (written by something else) keeps the layout served as it was,
    // with one warning, until the file changes again.
    let index = l.join("index.json");
    let good = std::fs::read(&index).unwrap();
    std::fs::write(l.join("index.tmp"), b"{\"manifests\": [").unwrap();
    std::fs::rename(l.join("index.tmp"), &index).unwrap();
    for _ in 0..3 {
        assert_eq!(get(a, "/v2/app/manifests/2.0").status, 200);
    }
    // Wait for the warning, then give a wrongly repeated one the time to show up too.
    s.stderr_with("cannot read the layout again");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let warnings = || s.stderr().matches("cannot read the layout again").count();
    assert_eq!(warnings(), 1, "{}", s.stderr());
    std::fs::write(l.join("index.tmp"), &good).unwrap();
    std::fs::rename(l.join("index.tmp"), &index).unwrap();
    ok([
        "tag".as_ref(),
        l.as_os_str(),
        "app:2.0".as_ref(),
        "app:4".as_ref(),
    ]);
    assert_eq!(
        get(a, "/v2/app/tags/list").json()["tags"],
        serde_json::json!(["2.0", "4"])
    );
}

#[test]
fn serves_read_only_media() {
    let fx = fixture("minimal");
    // A layout ocitool wrote (it has .ocitool/gc.lock), then mounted read-only.
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "app:1.0".as_ref(),
        "app:ro".as_ref(),
    ]);
    let Some(ro) = read_only_mount(&fx.path) else {
        return;
    };
    let before = snapshot(ro.path());
    let state_before: Vec<_> = std::fs::read_dir(ro.path().join(".ocitool"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let s = serve([ro.path()]);
    let a = s.addr.as_str();
    let r = get(a, "/v2/app/manifests/ro");
    assert_eq!(r.status, 200);
    let manifest: Value = r.json();
    let d = manifest["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(
        get(a, &format!("/v2/app/blobs/{d}")).body,
        blob_bytes(ro.path(), d)
    );
    drop(s);
    assert_eq!(snapshot(ro.path()), before);
    let state_after: Vec<_> = std::fs::read_dir(ro.path().join(".ocitool"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(state_after, state_before);
}

#[test]
fn referrers_api() {
    let fx = fixture("artifact");
    let l = &fx.path;
    let subject = "sha256:721b70ae0713c72c49b4f064790476c832f2b677e5b792e22e9ee41896e5cf75";
    // One more referrer, listed nowhere, with annotations and no artifactType: its config's
    // media type stands in.
    let extra = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.example.config+json", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 402},
        "annotations": {"org.example.note": "extra"}
    });
    let extra_bytes = serde_json::to_vec(&extra).unwrap();
    let extra_file = fx.dir.path().join("extra.json");
    std::fs::write(&extra_file, &extra_bytes).unwrap();
    let extra_digest = ok([
        "blob".as_ref(),
        "put".as_ref(),
        l.as_os_str(),
        extra_file.as_os_str(),
    ]);
    let extra_digest = extra_digest.trim();
    assert_eq!(extra_digest, Digest::sha256(&extra_bytes).to_string());

    let s = serve([l]);
    let a = s.addr.as_str();
    let r = get(a, &format!("/v2/app/referrers/{subject}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some(OCI_INDEX));
    assert_eq!(r.header("OCI-Filters-Applied"), None);
    let index = r.json();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut listed: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["mediaType"], OCI_MANIFEST);
            let digest = d["digest"].as_str().unwrap();
            assert_eq!(d["size"], blob_bytes(l, digest).len());
            (
                d["artifactType"].as_str().unwrap().to_string(),
                digest.to_string(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            (
                "application/spdx+json".to_string(),
                "sha256:308d0009347f0f022a16070628603932513867a0bee75be668cca1d577c80f42"
                    .to_string()
            ),
            (
                "application/vnd.example.config+json".to_string(),
                extra_digest.to_string()
            ),
            (
                "application/vnd.example.signature".to_string(),
                "sha256:7783bc2f761c3f23c253aab3bac7db9936bdc85d7762c7a57299fde887bebe12"
                    .to_string()
            ),
        ]
    );
    let with_note = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["digest"] == extra_digest)
        .unwrap();
    assert_eq!(with_note["annotations"]["org.example.note"], "extra");

    let r = get(
        a,
        &format!("/v2/app/referrers/{subject}?artifactType=application%2Fspdx%2Bjson"),
    );
    assert_eq!(r.header("OCI-Filters-Applied"), Some("artifactType"));
    let m = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["artifactType"], "application/spdx+json");
    // The referrers themselves are manifests a client can fetch by digest.
    let r = http(
        a,
        "GET",
        &format!("/v2/app/manifests/{extra_digest}"),
        &[("Accept", OCI_MANIFEST)],
    );
    assert_eq!((r.status, r.body), (200, extra_bytes));
    // No referrers is an empty index, never a 404; a bad digest is a 400.
    let none = get(a, &format!("/v2/app/referrers/{}", Digest::sha256(b"x")));
    assert_eq!(none.status, 200);
    assert_eq!(none.json()["manifests"], serde_json::json!([]));
    let r = get(a, "/v2/app/referrers/sha256:1234");
    assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"));
}

#[test]
fn hostile_requests_get_clear_answers_and_nothing_outside_the_layout() {
    let fx = fixture("minimal");
    let l = &fx.path;
    // A blob file that is a symlink to a file outside the layout.
    let outside = fx.dir.path().join("secret");
    std::fs::write(&outside, b"SECRET CONTENT").unwrap();
    let linked = Digest::sha256(b"SECRET CONTENT");
    std::os::unix::fs::symlink(&outside, blob_path(l, &linked.to_string())).unwrap();
    let s = serve([l.as_os_str(), "--header-timeout".as_ref(), "1".as_ref()]);
    let a = s.addr.as_str();
    let hex = &MINIMAL_MANIFEST[7..];
    for (path, status, code) in [
        ("/v2/../../../etc/passwd", 404, ""),
        (
            "/v2/app/../../../../etc/passwd/manifests/1.0",
            400,
            "NAME_INVALID",
        ),
        ("/v2/app%2F..%2F..%2Fx/manifests/1.0", 400, "NAME_INVALID"),
        ("/v2/%2e%2e/manifests/1.0", 400, "NAME_INVALID"),
        ("/v2/APP/manifests/1.0", 400, "NAME_INVALID"),
        (
            "/v2/app/manifests/..%2F..%2Findex.json",
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            "/v2/app/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd",
            400,
            "DIGEST_INVALID",
        ),
        (
            "/v2/app/blobs/sha256%3A..%2F..%2Findex.json",
            400,
            "DIGEST_INVALID",
        ),
        (
            &format!("/v2/app/blobs/blake3:{hex}") as &str,
            400,
            "DIGEST_INVALID",
        ),
        (
            &format!("/v2/app/blobs/sha256:{}", hex.to_uppercase()),
            400,
            "DIGEST_INVALID",
        ),
        (
            &format!("/v2/app/manifests/sha512:{hex}"),
            400,
            "DIGEST_INVALID",
        ),
        (&format!("/v2/app/blobs/{linked}"), 404, "BLOB_UNKNOWN"),
        ("/v2/app/blobs/uploads/", 404, "BLOB_UPLOAD_UNKNOWN"),
    ] {
        let r = get(a, path);
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if !code.is_empty() {
            assert_eq!(r.code(), code, "{path}");
        }
        assert!(
            !String::from_utf8_lossy(&r.body).contains("SECRET")
                && !String::from_utf8_lossy(&r.body).contains("root:"),
            "{path}"
        );
    }
    let r = get(a, &format!("/v2/app/blobs/blake3:{hex}"));
    assert!(
        r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unsupported")
    );
    let log = s.stderr_with("symlink");
    assert!(log.contains("symlink"), "{log}");

    // Malformed and oversized heads.
    let status = |bytes: &[u8]| {
        let out = raw(a, bytes);
        String::from_utf8_lossy(&out[..12.min(out.len())]).into_owned()
    };
    assert_eq!(
        status(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
        "HTTP/1.1 400"
    );
    assert_eq!(
        status(b"GET /v2/ HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 400",
        "no Host"
    );
    // A UTF-8 character across the length of "http://" in the target (found by the fuzzer:
    // the handler panicked and the client got no answer).
    assert_eq!(
        status("GET abcdef\u{e9}xyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".as_bytes()),
        "HTTP/1.1 400"
    );
    assert_eq!(
        status(b"GET /v2/ HTTP/2.0\r\nHost: x\r\n\r\n"),
        "HTTP/1.1 400"
    );
    assert_eq!(
        status(b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        "HTTP/1.1 400"
    );
    let big = format!(
        "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(status(big.as_bytes()), "HTTP/1.1 431");
    let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
    assert_eq!(
        status(format!("GET /v2/ HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes()),
        "HTTP/1.1 431"
    );
    let huge_range = format!(
        "GET /v2/app/manifests/1.0 HTTP/1.1\r\nHost: x\r\nRange: bytes={}\r\n\r\n",
        "0-0,".repeat(5000)
    );
    assert_eq!(status(huge_range.as_bytes()), "HTTP/1.1 431");

    // Slowloris: half a head, then nothing. 408 after the header timeout, then closed.
    let started = Instant::now();
    let mut c = connect(a);
    c.write_all(b"GET /v2/ HTTP/1.1\r\nHo").unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A connection that sends nothing is closed after the header timeout, without an answer.
    let started = Instant::now();
    let mut c = connect(a);
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    assert!(out.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    // Still serving.
    assert_eq!(get(a, "/v2/app/manifests/1.0").status, 200);
    assert!(!s.stderr().contains("internal error"), "{}", s.stderr());
}

#[test]
fn idle_connections_do_not_keep_a_client_waiting() {
    // The test holds a thousand sockets of its own.
    let _ = raise_nofile(4096);
    let fx = fixture("minimal");
    let s = serve([&fx.path]);
    let a = s.addr.as_str();
    let idle: Vec<TcpStream> = (0..1100).map(|_| connect(a)).collect();
    // Some of them send half a head.
    for c in idle.iter().take(300) {
        let mut c = c;
        c.write_all(b"GET /v2/app/manif").unwrap();
    }
    let started = Instant::now();
    for _ in 0..5 {
        let r = get(a, "/v2/app/manifests/1.0");
        assert_eq!(r.status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(idle);

    // Past --max-connections, a new connection gets a 503 at once.
    let s = serve([
        fx.path.as_os_str(),
        "--max-connections".as_ref(),
        "8".as_ref(),
    ]);
    let a = s.addr.as_str();
    let held: Vec<TcpStream> = (0..8).map(|_| connect(a)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let out = raw(a, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        out.starts_with(b"HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(a, "/v2/").status, 200);
    let log = s.stderr_with("refusing new ones with 503");
    assert!(log.contains("refusing new ones with 503"), "{log}");
}

fn raise_nofile(n: u64) -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    if l.current.is_some_and(|c| c >= n) {
        return Ok(());
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(l.maximum.map_or(n, |m| m.min(n))),
            maximum: l.maximum,
        },
    )
    .map_err(Into::into)
}

/// A layout with one unreferenced 32 MiB blob (more than the socket buffers hold).
fn layout_with_big_blob() -> (Fx, String, Vec<u8>) {
    let fx = fixture("minimal");
    let mut data = vec![0u8; 32 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let f = fx.dir.path().join("big");
    std::fs::write(&f, &data).unwrap();
    let d = ok([
        "blob".as_ref(),
        "put".as_ref(),
        fx.path.as_os_str(),
        f.as_os_str(),
    ]);
    (fx, d.trim().to_string(), data)
}

#[test]
fn a_reader_that_stops_reading_is_dropped() {
    let (fx, big, data) = layout_with_big_blob();
    let s = serve([fx.path.as_os_str(), "--io-timeout".as_ref(), "1".as_ref()]);
    let a = s.addr.as_str();
    let mut stalled = connect(a);
    stalled
        .write_all(format!("GET /v2/app/blobs/{big} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    // While it stalls, others are served.
    std::thread::sleep(Duration::from_millis(500));
    let r = get(a, &format!("/v2/app/blobs/{big}"));
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data);
    std::thread::sleep(Duration::from_secs(3));
    // The server gave up on it: what is left in the buffers, then the end.
    let mut got = Vec::new();
    stalled.read_to_end(&mut got).unwrap();
    assert!(got.len() < data.len(), "{} bytes", got.len());
    let abandoned = |l: &str| l.contains(&big) && !l.contains(&format!(" {} ", data.len()));
    let log = s.stderr_when(|log| log.lines().any(abandoned));
    let line = log
        .lines()
        .find(|l| abandoned(l))
        .unwrap_or_else(|| panic!("no line for the abandoned response: {log}"));
    assert!(line.contains(" 200 "), "{line}");
}

/// The server copies blobs through 16 buffers and sends the rest with `sendfile`: 24
/// transfers of a 32 MiB blob, each started and none read until all are (none can finish:
/// 32 MiB is more than the sockets buffer), so at least 8 take the `sendfile` path; every one,
/// from its own offset, must arrive byte for byte.
#[test]
fn more_transfers_than_copy_buffers_are_all_exact() {
    let (fx, big, data) = layout_with_big_blob();
    let s = serve([fx.path.as_os_str()]);
    let a = s.addr.as_str();
    let starts: Vec<usize> = (0..24).map(|i| i * 4099 + i % 3).collect();
    let mut conns: Vec<TcpStream> = starts
        .iter()
        .map(|from| {
            let mut c = connect(a);
            c.write_all(
                format!(
                    "GET /v2/app/blobs/{big} HTTP/1.1\r\nHost: x\r\nRange: bytes={from}-\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for (c, from) in conns.iter_mut().zip(&starts) {
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        let end = got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head")
            + 4;
        let head = String::from_utf8_lossy(&got[..end]);
        assert!(head.starts_with("HTTP/1.1 206 "), "{head}");
        assert_eq!(got.len() - end, data.len() - from, "from {from}");
        assert!(
            got[end..] == data[*from..],
            "bytes differ from offset {from}"
        );
    }
}

#[test]
fn sixteen_clients_pull_at_once() {
    let d = empty_dir();
    let big = ocitool_testkit::big::write_big_layout(&d.path().join("big"), 16 << 20, 7).unwrap();
    let s = serve([&big.dir]);
    let a = s.addr.clone();
    let mut digests: Vec<Digest> = vec![big.config.clone()];
    digests.extend(big.layers.iter().map(|l| l.digest.clone()));
    let manifest = big.manifest.clone();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let a = a.clone();
            let digests = digests.clone();
            let manifest = manifest.clone();
            std::thread::spawn(move || {
                let m = http(
                    &a,
                    "GET",
                    "/v2/bench/manifests/1",
                    &[("Accept", ACCEPT_ALL)],
                );
                assert_eq!(Digest::sha256(&m.body), manifest);
                // Every client its own order.
                let mut order = digests.clone();
                order.rotate_left(i % digests.len());
                let mut total = 0;
                for d in order {
                    let r = get(&a, &format!("/v2/bench/blobs/{d}"));
                    assert_eq!(r.status, 200);
                    assert_eq!(Digest::sha256(&r.body), d, "client {i}");
                    total += r.body.len();
                }
                total
            })
        })
        .collect();
    let want = big.blob_bytes() - big.manifest_size;
    for t in threads {
        assert_eq!(t.join().unwrap() as u64, want);
    }
}

#[test]
fn json_access_log_and_clean_stops() {
    let fx = fixture("minimal");
    for signal in ["INT", "TERM"] {
        let mut s = serve([fx.path.as_os_str(), "--json".as_ref()]);
        let banner: Value = serde_json::from_str(&s.banner).unwrap();
        assert_eq!(banner["repositories"][0]["name"], "app");
        assert_eq!(
            banner["repositories"][0]["tags"],
            serde_json::json!(["1.0"])
        );
        let a = s.addr.clone();
        assert_eq!(get(&a, "/v2/app/manifests/1.0").status, 200);
        assert_eq!(get(&a, "/v2/app/manifests/nope").status, 404);
        assert_eq!(s.stop(signal), Some(0), "SIG{signal}: {}", s.stderr());
        let lines = s.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["method"], "GET");
        assert_eq!(first["path"], "/v2/app/manifests/1.0");
        assert_eq!(first["status"], 200);
        assert_eq!(first["bytes"], 556);
        assert!(first["time"].as_str().unwrap().ends_with('Z'));
        assert!(first["ms"].as_f64().is_some());
        let second: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(second["status"], 404);
        assert!(s.stderr().contains("stopped"), "{}", s.stderr());
    }
}

// ---------------------------------------------------------------------------------------------
// Real clients.

#[test]
fn skopeo_copies_from_serve_with_the_layouts_digests() {
    if !peer("skopeo") {
        return;
    }
    let d = empty_dir();
    let mut layouts = Vec::new();
    // (skopeo 1.9 copies no nested index, not even between oci: layouts; containerd pulls
    // the nested-index fixture below.)
    for name in ["minimal", "multi-arch", "zstd", "docker-v2s2", "artifact"] {
        let p = d.path().join(name);
        copy_dir(&testdata(&format!("layouts/{name}")), &p);
        layouts.push(p);
    }
    // minimal and artifact both name `app`: serve artifact's under another name.
    let artifact = &layouts[4];
    ok([
        "tag".as_ref(),
        artifact.as_os_str(),
        "app:signed".as_ref(),
        "signed/app:1".as_ref(),
    ]);
    ok([
        "untag".as_ref(),
        artifact.as_os_str(),
        "app:signed".as_ref(),
    ]);
    let s = serve(&layouts);
    let head_digest = |repo_tag: &str| {
        let (repo, tag) = repo_tag.split_once(':').unwrap();
        let r = http(
            &s.addr,
            "HEAD",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("Accept", ACCEPT_ALL)],
        );
        r.header("Docker-Content-Digest").unwrap().to_string()
    };
    for (repo_tag, source, all) in [
        ("app:1.0", 0, false),
        ("multi:1.0", 1, true),
        ("zstd:1", 2, false),
        ("signed/app:1", 4, false),
    ] {
        let out = d.path().join(format!("out-{source}"));
        let mut c = Command::new("skopeo");
        c.arg("copy").arg("--src-tls-verify=false");
        if all {
            c.arg("--all");
        }
        c.arg(format!("docker://{}/{repo_tag}", s.addr))
            .arg(format!("oci:{}:copy", out.display()));
        sh(&mut c);
        assert_eq!(refs(&out)["copy"], head_digest(repo_tag), "{repo_tag}");
        verify_clean(&out);
        // Every blob skopeo wrote is one of the source layout's, byte for byte.
        let source_blobs = blob_set(&layouts[source]);
        for b in blob_set(&out) {
            assert!(
                source_blobs.contains(&b),
                "{repo_tag}: {b} is not in the source"
            );
        }
        if all {
            assert_eq!(blob_set(&out), source_blobs, "{repo_tag}");
        }
    }
    // skopeo's oci: destination converts Docker media types; its dir: destination keeps
    // the manifest list's bytes.
    let out = d.path().join("out-docker");
    sh(Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{}/dockerish:latest", s.addr))
        .arg(format!("dir:{}", out.display())));
    let list = std::fs::read(out.join("manifest.json")).unwrap();
    assert_eq!(
        Digest::sha256(&list).to_string(),
        head_digest("dockerish:latest")
    );
    assert_eq!(
        list,
        blob_bytes(&layouts[3], &head_digest("dockerish:latest"))
    );
}

#[test]
fn podman_pulls_from_serve() {
    if !peer("podman") {
        return;
    }
    let d = empty_dir();
    let multi = d.path().join("multi");
    let zstd = d.path().join("zstd");
    copy_dir(&testdata("layouts/multi-arch"), &multi);
    copy_dir(&testdata("layouts/zstd"), &zstd);
    let s = serve([&multi, &zstd]);
    for (image, digest) in [
        (
            "multi:1.0",
            "sha256:35949bb6ab5da528a9d89560cc5f517f132a30bc85b57589452d6f86d571ed89",
        ),
        (
            "zstd:1",
            "sha256:5352a48c77b0a585ef691530f338ef0f95f2281b9ee074a7363cf22efd77a1fc",
        ),
    ] {
        let reference = format!("{}/{image}", s.addr);
        sh(podman(d.path())
            .args(["pull", "--tls-verify=false", "--platform", "linux/amd64"])
            .arg(&reference));
        let got = sh(podman(d.path())
            .args(["image", "inspect", "--format", "{{.Digest}}"])
            .arg(&reference));
        assert_eq!(got.trim(), digest, "{image}");
    }
}

#[test]
fn containerd_pulls_from_serve_directly_and_as_a_mirror() {
    if !peer("ctr") || !peer("containerd") {
        return;
    }
    let d = empty_dir();
    let multi = d.path().join("multi");
    let nested = d.path().join("nested");
    let docker = d.path().join("docker");
    copy_dir(&testdata("layouts/multi-arch"), &multi);
    copy_dir(&testdata("layouts/nested-index"), &nested);
    copy_dir(&testdata("layouts/docker-v2s2"), &docker);
    let s = serve([&multi, &nested, &docker]);
    let ctrd = Containerd::start();
    for (image, digest) in [
        (
            "multi:1.0",
            "sha256:35949bb6ab5da528a9d89560cc5f517f132a30bc85b57589452d6f86d571ed89",
        ),
        (
            "nested:1",
            "sha256:5e6782246fa0c0f831d70d7aa4ba4e5be490df30c6bd30a7476ff77be99b5ee1",
        ),
    ] {
        let reference = format!("{}/{image}", s.addr);
        sh(ctrd
            .ctr()
            .args(["-n", "test", "images", "pull", "--plain-http"])
            .arg(&reference));
        let ls = sh(ctrd.ctr().args(["-n", "test", "images", "ls"]));
        assert!(
            ls.contains(&format!("{reference} ")) && ls.contains(digest),
            "{ls}"
        );
    }
    // A Kubernetes node: docker.io/library/dockerish through a hosts.toml mirror entry
    // (the README's snippet), no network beyond this host.
    let hosts = d.path().join("certs.d");
    std::fs::create_dir_all(hosts.join("docker.io")).unwrap();
    std::fs::write(
        hosts.join("docker.io/hosts.toml"),
        format!(
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            s.addr
        ),
    )
    .unwrap();
    sh(ctrd
        .ctr()
        .args(["-n", "k8s.io", "images", "pull", "--hosts-dir"])
        .arg(&hosts)
        .arg("docker.io/library/dockerish:latest"));
    let ls = sh(ctrd.ctr().args(["-n", "k8s.io", "images", "ls"]));
    assert!(
        ls.contains("docker.io/library/dockerish:latest")
            && ls.contains(
                "sha256:baeb5eab6cbdea90ee43019286a9025036fa842f8f66cb9f16f4f64a4761c1db"
            ),
        "{ls}"
    );
    let log = s.stderr_with("/v2/library/dockerish/manifests/latest?ns=docker.io");
    assert!(
        log.contains("/v2/library/dockerish/manifests/latest?ns=docker.io"),
        "{log}"
    );
}

/// A CA, and a certificate for 127.0.0.1 it signed: (ca.crt, server.crt, server.key).
fn test_ca(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ocitool test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let paths = (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[test]
fn tls_and_htpasswd() {
    if !peer("skopeo") || !peer("htpasswd") {
        return;
    }
    let fx = fixture("multi-arch");
    let d = fx.dir.path();
    let (ca, cert, key) = test_ca(d);
    let htpasswd = d.join("htpasswd");
    sh(Command::new("htpasswd")
        .args(["-B", "-b", "-c"])
        .arg(&htpasswd)
        .args(["tester", "s3cret"]));
    let s = serve([
        fx.path.as_os_str(),
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
        "--htpasswd".as_ref(),
        htpasswd.as_os_str(),
    ]);
    assert!(s.banner.contains("https://127.0.0.1:"), "{}", s.banner);
    // skopeo trusts the CA through a cert dir, as podman's certs.d does.
    let certs = d.join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&ca, certs.join("ca.crt")).unwrap();
    let image = format!("docker://{}/multi:1.0", s.addr);
    let copy = |creds: Option<&str>, out: &str| {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--all", "--src-cert-dir"]).arg(&certs);
        match creds {
            Some(cr) => c.args(["--src-creds", cr]),
            None => c.arg("--src-no-creds"),
        };
        c.arg(&image)
            .arg(format!("oci:{}:copy", d.join(out).display()));
        c.output().unwrap()
    };
    let o = copy(Some("tester:s3cret"), "good");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        refs(&d.join("good"))["copy"],
        "sha256:35949bb6ab5da528a9d89560cc5f517f132a30bc85b57589452d6f86d571ed89"
    );
    for (creds, out) in [(Some("tester:wrong"), "bad"), (None, "none")] {
        let o = copy(creds, out);
        assert!(!o.status.success(), "{creds:?}");
        assert!(
            stderr(&o).to_lowercase().contains("unauthorized") || stderr(&o).contains("401"),
            "{creds:?}: {}",
            stderr(&o)
        );
    }
    // Plain HTTP to the TLS port gets nothing served.
    let out = raw(&s.addr, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!out.starts_with(b"HTTP/1.1 200"));
    // The audit log names the user.
    let log = s.stderr_with("tester \"GET /v2/multi/manifests/1.0\"");
    assert!(
        log.contains("tester \"GET /v2/multi/manifests/1.0\""),
        "{log}"
    );

    // Over plain HTTP too: 401 with a Basic challenge, 200 with the password.
    let s = serve([
        fx.path.as_os_str(),
        "--htpasswd".as_ref(),
        htpasswd.as_os_str(),
    ]);
    let r = get(&s.addr, "/v2/");
    assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
    assert!(
        r.header("WWW-Authenticate")
            .unwrap()
            .starts_with("Basic realm=")
    );
    let r = http(
        &s.addr,
        "GET",
        "/v2/",
        &[("Authorization", "Basic dGVzdGVyOnMzY3JldA==")],
    );
    assert_eq!(r.status, 200);

    // Other htpasswd schemes are refused at startup, naming the line.
    let md5 = d.join("md5");
    sh(Command::new("htpasswd")
        .args(["-m", "-b", "-c"])
        .arg(&md5)
        .args(["old", "pw"]));
    fails(
        3,
        &["line 1", "MD5", "htpasswd -B"],
        [
            "serve".as_ref(),
            fx.path.as_os_str(),
            "--htpasswd".as_ref(),
            md5.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
    );
    // A key that is not one.
    fails(
        3,
        &["server.crt", "PEM private key"],
        [
            "serve".as_ref(),
            fx.path.as_os_str(),
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            cert.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// ocitool's own pull.

/// The `(digest, mediaType, size)` of every named entry of a layout's `index.json`, and of
/// each entry's platform, sorted: what a round trip must keep.
fn entry_digests(layout: &Path) -> Vec<(String, String, u64, String)> {
    let mut out: Vec<_> = index_json(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["annotations"]["org.opencontainers.image.ref.name"].is_string()
                || d["annotations"]["io.containerd.image.name"].is_string()
        })
        .map(|d| {
            (
                d["digest"].as_str().unwrap().to_string(),
                d["mediaType"].as_str().unwrap().to_string(),
                d["size"].as_u64().unwrap(),
                d["platform"].to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The JSON access log lines of a `serve --json`, once no new line came for 300 ms (the
/// server writes a line after its answer, so a client may be done before its lines are in).
fn access_log(s: &Served) -> Vec<Value> {
    let mut n = s.lines().len();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = s.lines().len();
        if now == n {
            break;
        }
        n = now;
    }
    s.lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every fixture kind (a plain image, a multi-platform index, zstd layers, a nested index,
/// Docker media types) goes layout → serve → pull → verify: the pulled layout's entries name
/// the same digests with the same media types and sizes, and it holds the same blobs, byte
/// for byte. Pulled again, nothing is fetched.
#[test]
fn ocitool_pull_from_serve_keeps_every_digest() {
    let d = empty_dir();
    let names = [
        "minimal",
        "multi-arch",
        "zstd",
        "nested-index",
        "docker-v2s2",
    ];
    let mut layouts = Vec::new();
    for name in names {
        let p = d.path().join(name);
        copy_dir(&testdata(&format!("layouts/{name}")), &p);
        layouts.push(p);
    }
    let s = serve(&layouts);
    let images: [&[&str]; 5] = [
        &["app:1.0"],
        &["multi:1.0"],
        &["zstd:1"],
        &["nested:1"],
        &["dockerish:latest", "dockerish:amd64-only"],
    ];
    let all = d.path().join("all");
    for (source, repo_tags) in layouts.iter().zip(images) {
        let one = d.path().join(format!(
            "pulled-{}",
            source.file_name().unwrap().to_string_lossy()
        ));
        let wanted: Vec<String> = repo_tags
            .iter()
            .map(|t| format!("{}/{t}", s.addr))
            .collect();
        let v = run_json(oci(d.path()).arg("pull").arg(&one).args(&wanted));
        assert_eq!(v["refs"].as_array().unwrap().len(), repo_tags.len(), "{v}");
        verify_clean(&one);
        assert_eq!(entry_digests(&one), entry_digests(source), "{repo_tags:?}");
        assert_eq!(blob_set(&one), blob_set(source), "{repo_tags:?}");
        for b in blob_set(&one) {
            assert_eq!(blob_bytes(&one, &b), blob_bytes(source, &b));
        }
        // The names are the served ones, fully qualified as import writes them.
        for (t, w) in repo_tags.iter().zip(&wanted) {
            let (repo, tag) = t.split_once(':').unwrap();
            let r = http(
                &s.addr,
                "HEAD",
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("Accept", ACCEPT_ALL)],
            );
            assert_eq!(
                refs(&one)[w.as_str()],
                r.header("Docker-Content-Digest").unwrap()
            );
        }
        // Again: nothing new arrives.
        let again = run_json(oci(d.path()).arg("pull").arg(&one).args(&wanted));
        assert_eq!(again["blobsFetched"], 0, "{again}");
        run_ok(oci(d.path()).arg("pull").arg(&all).args(&wanted));
    }
    // All of them in one layout: every source entry, digests unchanged.
    verify_clean(&all);
    let mut want: Vec<_> = layouts.iter().flat_map(|l| entry_digests(l)).collect();
    want.sort();
    assert_eq!(entry_digests(&all), want);
}

/// `--platform` through serve: one platform of an index (the ref names that platform's
/// manifest, the other platform's blobs stay away), and of a nested index.
#[test]
fn ocitool_pulls_one_platform_from_serve() {
    let d = empty_dir();
    let multi = d.path().join("multi-arch");
    let nested = d.path().join("nested-index");
    copy_dir(&testdata("layouts/multi-arch"), &multi);
    copy_dir(&testdata("layouts/nested-index"), &nested);
    let s = serve([&multi, &nested]);
    let (_, amd, arm, _) = ocitool_testkit::fixtures::multi_arch();

    let one = d.path().join("one");
    let image = format!("{}/multi:1.0", s.addr);
    run_ok(
        oci(d.path())
            .arg("pull")
            .arg(&one)
            .arg(&image)
            .args(["--platform", "linux/arm64"]),
    );
    assert_eq!(ref_digest(&one, &image), arm.manifest.digest.to_string());
    let entry = &index_json(&one)["manifests"][0];
    assert_eq!(entry["platform"]["architecture"], "arm64");
    verify_clean(&one);
    for b in amd.blobs() {
        assert!(!blob_path(&one, &b.digest.to_string()).exists());
    }
    for b in arm.blobs() {
        assert_eq!(
            blob_bytes(&one, &b.digest.to_string()),
            blob_bytes(&multi, &b.digest.to_string())
        );
    }

    // The nested index: its inner index's amd64 manifest.
    let outer = ref_digest(&nested, "nested:1");
    let outer: Value = serde_json::from_slice(&blob_bytes(&nested, &outer)).unwrap();
    let inner = outer["manifests"][0]["digest"].as_str().unwrap();
    let inner: Value = serde_json::from_slice(&blob_bytes(&nested, inner)).unwrap();
    let amd64 = inner["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let n = d.path().join("nested-one");
    let image = format!("{}/nested:1", s.addr);
    run_ok(
        oci(d.path())
            .arg("pull")
            .arg(&n)
            .arg(&image)
            .args(["--platform", "linux/amd64"]),
    );
    assert_eq!(ref_digest(&n, &image), amd64);
    verify_clean(&n);
}

/// Referrers come through serve's referrers API (`GET /v2/<name>/referrers/<digest>`, no tag
/// list, no `sha256-<hex>` fallback tag), with the subject's digest and their own unchanged;
/// `--no-referrers` asks for none.
#[test]
fn ocitool_pulls_referrers_through_the_referrers_api() {
    let fx = fixture("artifact");
    let (_, img, sbom, sig) = ocitool_testkit::fixtures::artifact();
    let s = serve([fx.path.as_os_str(), "--json".as_ref()]);
    let d = empty_dir();
    let l = d.path().join("pulled");
    let image = format!("{}/app:signed", s.addr);
    let v = run_json(oci(d.path()).arg("pull").arg(&l).arg(&image));
    assert_eq!(v["referrers"], 2, "{v}");
    assert_eq!(ref_digest(&l, &image), img.manifest.digest.to_string());
    verify_clean(&l);
    // Every blob the source has arrived, byte for byte: image, referrers, their blobs.
    assert_eq!(blob_set(&l), blob_set(&fx.path));
    for b in [&sbom, &sig] {
        assert_eq!(
            blob_bytes(&l, &b.digest.to_string()),
            blob_bytes(&fx.path, &b.digest.to_string())
        );
    }
    let log = access_log(&s);
    let paths: Vec<String> = log
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["method"].as_str().unwrap(),
                e["path"].as_str().unwrap(),
                e["status"]
            )
        })
        .collect();
    let asked = format!("GET /v2/app/referrers/{} 200", img.manifest.digest);
    assert!(paths.contains(&asked), "{paths:#?}");
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("/tags/list") || p.contains("/manifests/sha256-")),
        "the fallback was used although serve has the referrers API: {paths:#?}"
    );
    // Each subject is asked about once.
    assert_eq!(
        paths.iter().filter(|p| p.contains("/referrers/")).count(),
        3,
        "{paths:#?}"
    );

    let bare = d.path().join("bare");
    let before = access_log(&s).len();
    run_ok(
        oci(d.path())
            .arg("pull")
            .arg(&bare)
            .arg(&image)
            .arg("--no-referrers"),
    );
    assert!(!blob_path(&bare, &sbom.digest.to_string()).exists());
    assert!(
        !access_log(&s)[before..]
            .iter()
            .any(|e| e["path"].as_str().unwrap().contains("/referrers/"))
    );
}

/// `--all-tags` follows serve's pages: a repository of 1,101 tags takes two `tags/list`
/// pages of the 1,000 the client asks for (`n`, then `last` from the `Link`), and every tag
/// arrives.
#[test]
fn ocitool_pulls_all_tags_across_pages() {
    let fx = fixture("minimal");
    let want = ref_digest(&fx.path, "app:1.0");
    let tags: Vec<String> = (0..1100).map(|i| format!("app:t{i:04}")).collect();
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["tag".as_ref(), fx.path.as_os_str(), "app:1.0".as_ref()];
    args.extend(tags.iter().map(std::ffi::OsStr::new));
    ok(&args);
    let s = serve([fx.path.as_os_str(), "--json".as_ref()]);
    let d = empty_dir();
    let l = d.path().join("pulled");
    let v = run_json(
        oci(d.path())
            .arg("pull")
            .arg(&l)
            .arg(format!("{}/app", s.addr))
            .arg("--all-tags"),
    );
    assert_eq!(v["refs"].as_array().unwrap().len(), 1101);
    let pulled = refs(&l);
    assert_eq!(pulled.len(), 1101);
    assert!(pulled.values().all(|d| *d == want));
    for t in ["1.0", "t0000", "t0999", "t1000", "t1099"] {
        assert!(pulled.contains_key(&format!("{}/app:{t}", s.addr)), "{t}");
    }
    verify_clean(&l);
    let log = access_log(&s);
    let asked = |method: &str, part: &str| {
        log.iter()
            .filter(|e| e["method"] == method && e["path"].as_str().unwrap().contains(part))
            .count()
    };
    // 1,101 tags, one image: its manifest is fetched once and its referrers asked once.
    assert_eq!(asked("GET", "/v2/app/manifests/"), 1);
    assert_eq!(asked("GET", "/referrers/"), 1);
    let pages: Vec<String> = log
        .iter()
        .filter_map(|e| e["path"].as_str())
        .filter(|p| p.starts_with("/v2/app/tags/list"))
        .map(str::to_string)
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(
        pages[0].contains("n=1000") && !pages[0].contains("last="),
        "{pages:?}"
    );
    assert!(pages[1].contains("last=t0998"), "{pages:?}");
}

/// pull → push → pull: images pulled from serve (a multi-platform index, zstd layers, a
/// nested index, a signed image with its referrers) pushed to Distribution 2.8.2 (which has
/// no referrers API, so the referrers go through the `sha256-<hex>` fallback tag) and pulled
/// back name the same digests and hold the same blobs, byte for byte.
#[test]
fn ocitool_pull_push_pull_keeps_every_digest() {
    use ocitool_testkit::registry::{Mode, TestRegistry};
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let d = empty_dir();
    let mut layouts = Vec::new();
    for name in ["multi-arch", "zstd", "nested-index", "artifact"] {
        let p = d.path().join(name);
        copy_dir(&testdata(&format!("layouts/{name}")), &p);
        layouts.push(p);
    }
    let s = serve(&layouts);
    let tags = ["multi:1.0", "zstd:1", "nested:1", "app:signed"];
    let first = d.path().join("first");
    let images: Vec<String> = tags.iter().map(|t| format!("{}/{t}", s.addr)).collect();
    let v = run_json(oci(d.path()).arg("pull").arg(&first).args(&images));
    assert_eq!(v["referrers"], 2, "{v}");
    verify_clean(&first);

    let to = format!("{}/rt", reg.addr);
    run_ok(oci(d.path()).arg("push").arg(&first).args(["--to", &to]));
    let second = d.path().join("second");
    let back: Vec<String> = tags.iter().map(|t| format!("{to}/{t}")).collect();
    let v = run_json(oci(d.path()).arg("pull").arg(&second).args(&back));
    assert_eq!(v["referrers"], 2, "{v}");
    verify_clean(&second);

    for (a, b) in images.iter().zip(&back) {
        assert_eq!(ref_digest(&first, a), ref_digest(&second, b), "{a} vs {b}");
    }
    assert_eq!(entry_digests(&first), entry_digests(&second));
    assert_eq!(blob_set(&first), blob_set(&second));
    let mut sources = std::collections::BTreeSet::new();
    for l in &layouts {
        sources.extend(blob_set(l));
    }
    assert_eq!(
        blob_set(&second),
        sources,
        "not every source blob made the round trip"
    );
    for b in blob_set(&second) {
        assert_eq!(blob_bytes(&second, &b), blob_bytes(&first, &b), "{b}");
    }
    // The referrers went through the fallback tag the push wrote.
    let (_, img, _, _) = ocitool_testkit::fixtures::artifact();
    let fallback = format!("sha256-{}", img.manifest.digest.encoded());
    let log = reg.requests();
    assert!(
        log.iter()
            .any(|r| r.starts_with(&format!("GET /v2/rt/app/manifests/{fallback} 200"))),
        "{log:#?}"
    );
}
