use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::*;

#[test]
fn put_then_get_round_trips_and_checks_an_expected_digest() {
    let fx = fixture("minimal");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let f = fx.dir.path().join("data");
    std::fs::write(&f, &data).unwrap();
    let want = ocitool_digest::Digest::sha256(&data).to_string();
    let got = ok([
        "blob".as_ref(),
        "put".as_ref(),
        fx.path.as_os_str(),
        f.as_os_str(),
    ]);
    assert_eq!(got.trim(), want);
    let o = run([
        "blob".as_ref(),
        "get".as_ref(),
        fx.path.as_os_str(),
        want.as_ref(),
    ]);
    assert_eq!(o.stdout, data);

    // From standard input, with a wrong expected digest: refused, nothing stored.
    let before = snapshot(&fx.path);
    let other = ocitool_digest::Digest::sha256(b"other").to_string();
    let mut child = Command::new(bin())
        .args([
            "blob".as_ref(),
            "put".as_ref(),
            fx.path.as_os_str(),
            "-".as_ref(),
            "--digest".as_ref(),
            other.as_ref(),
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains(&other), "{}", stderr(&out));
    assert_eq!(snapshot(&fx.path), before);
    assert_eq!(
        std::fs::read_dir(fx.path.join(".ocitool/tmp"))
            .unwrap()
            .count(),
        0,
        "staging left behind"
    );
}

#[test]
fn get_of_a_corrupt_blob_fails() {
    let fx = fixture("corrupt/unreferenced-corrupt");
    let d = format!("sha256:{}", "0".repeat(64));
    fails(
        3,
        &[&d, "digest mismatch"],
        [
            "blob".as_ref(),
            "get".as_ref(),
            fx.path.as_os_str(),
            d.as_ref(),
        ],
    );
}
