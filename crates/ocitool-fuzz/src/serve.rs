//! The harness of the `serve_request` fuzz target: everything `ocitool serve` reads from a
//! client before it touches a file (the request head, the path routing, the Range and Accept
//! fields, the query), on any input. Compiled into `fuzz_targets/serve_request.rs` and into
//! `crates/ocitool-serve/tests/fuzz_regressions.rs` (by `#[path]`), which replays
//! `testdata/fuzz-regressions/serve_request/` and the seeds, so it uses only `ocitool-serve`
//! and what it depends on (`ocitool-digest`, and `ocitool-spec`, whose reference grammar
//! routes names and tags).

use ocitool_digest::Digest;
use ocitool_serve::http::{self, Head, RangeAnswer};
use ocitool_serve::route::{self, Reference, Route};
use ocitool_spec::reference::{check_repository, check_tag};

include!("serve_seeds.rs");

/// The input as a request head (and the pipelined rest), then as a request target, a Range
/// field and an Accept field.
pub fn serve_request(data: &[u8]) {
    let max = http::DEFAULT_MAX_HEAD;
    match http::parse_head(data, max) {
        Ok(Some((head, used))) => {
            assert!(used <= data.len() && used <= max, "took {used} bytes");
            check_head(&head);
            if let Ok(Some((next, _))) = http::parse_head(&data[used..], max) {
                check_head(&next);
            }
        }
        Ok(None) => assert!(data.len() < max, "an incomplete head past the limit"),
        Err(e) => assert!(matches!(e.status(), 400 | 431)),
    }
    // A small limit reaches the refusal of large heads with short inputs.
    if let Ok(Some((_, used))) = http::parse_head(data, 256) {
        assert!(used <= 256);
    }
    let text = String::from_utf8_lossy(data);
    check_target(&text);
    check_range(&text);
    let _ = http::accepts(
        &[text.into_owned()],
        "application/vnd.oci.image.index.v1+json",
    );
}

fn check_head(head: &Head) {
    check_target(&head.target);
    if let Some(r) = &head.range {
        check_range(r);
    }
    for media_type in ["application/vnd.oci.image.manifest.v1+json", "text/plain"] {
        let _ = http::accepts(&head.accept, media_type);
    }
    // Whatever a client sent, a value echoed into a response cannot add a header line.
    let fields = [("X-Echo", head.target.clone())];
    let out = http::response_head(200, &fields, !head.keep_alive, head.http10);
    let text = String::from_utf8(out).expect("ASCII and UTF-8 in, UTF-8 out");
    let lines = text.split("\r\n").count();
    assert_eq!(
        lines,
        if head.keep_alive && !head.http10 {
            4
        } else {
            5
        }
    );
}

/// Routed names, tags and digests are what the grammar allows, so none can leave the layout.
fn check_target(target: &str) {
    let Some((path, query)) = http::split_target(target) else {
        return;
    };
    assert!(path.starts_with('/'));
    let _ = http::query(query);
    match route::route(path) {
        Ok(Route::Manifest { name, reference }) => {
            check_name(&name);
            match reference {
                Reference::Tag(t) => assert!(check_tag(&t).is_ok() && !t.contains('/'), "{t:?}"),
                Reference::Digest(d) => check_digest(&d),
            }
        }
        Ok(Route::Blob { name, digest }) | Ok(Route::Referrers { name, digest }) => {
            check_name(&name);
            check_digest(&digest);
        }
        Ok(Route::Tags { name }) => check_name(&name),
        Ok(Route::Base | Route::Catalog | Route::Upload) | Err(_) => {}
    }
}

fn check_name(name: &str) {
    assert_eq!(check_repository(name), Ok(()), "{name:?}");
    assert!(
        name.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".."),
        "{name:?}"
    );
}

/// A digest becomes `blobs/<alg>/<hex>`: one component of lowercase hex.
fn check_digest(d: &Digest) {
    assert!(
        d.encoded()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{d}"
    );
    assert_eq!(Digest::parse(&d.to_string()).as_ref(), Ok(d));
}

fn check_range(value: &str) {
    for size in [0u64, 1, 10, 1 << 40, u64::MAX] {
        if let RangeAnswer::Partial { start, end } =
            http::parse_range(Some(value), None, "\"e\"", size)
        {
            assert!(
                start <= end && end < size,
                "{value:?} over {size}: {start}-{end}"
            );
        }
    }
}
