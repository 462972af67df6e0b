use std::io::Read;

use proptest::prelude::*;

use super::*;

const EMPTY_SHA256: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn parses_and_displays_sha256() {
    let d = Digest::parse(EMPTY_SHA256).unwrap();
    assert_eq!(d.algorithm(), Algorithm::Sha256);
    assert_eq!(d.to_string(), EMPTY_SHA256);
    assert_eq!(d, Digest::sha256(b""));
    assert_eq!(d.short(), "sha256:e3b0c44298fc");
}

#[test]
fn sha512_of_empty() {
    let d = Digest::of(Algorithm::Sha512, b"");
    assert_eq!(
        d.to_string(),
        "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
    );
    assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
}

#[test]
fn rejects_what_must_never_become_a_path() {
    let cases = [
        ("", "no ':'"),
        ("sha256", "no ':'"),
        ("sha256:", "encoded"),
        ("sha256:../../etc/passwd", "encoded"),
        ("sha256:/abs", "encoded"),
        ("SHA256:abcd", "algorithm"),
        (":abcd", "algorithm"),
        ("sha256+:abcd", "algorithm"),
        ("sha..256:abcd", "algorithm"),
        ("sha256:abc", "64 hex"),
        (
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "lowercase",
        ),
        (
            "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "lowercase",
        ),
        ("sha512:abcd", "128 hex"),
    ];
    for (input, why) in cases {
        let err = Digest::parse(input).unwrap_err();
        assert!(
            matches!(&err, DigestError::Malformed { .. }),
            "{input:?} gave {err:?}"
        );
        assert!(
            err.to_string().contains(why),
            "{input:?}: {err} lacks {why:?}"
        );
    }
}

#[test]
fn grammatical_but_unknown_algorithms_are_unsupported_not_malformed() {
    for input in [
        "blake3:abcd",
        "sha384:abcd",
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
    ] {
        let err = Digest::parse(input).unwrap_err();
        assert!(
            matches!(err, DigestError::Unsupported { .. }),
            "{input}: {err:?}"
        );
    }
}

#[test]
fn huge_inputs_give_short_messages() {
    let huge = format!("sha256:{}", "z".repeat(100_000));
    let msg = Digest::parse(&huge).unwrap_err().to_string();
    assert!(msg.len() < 300, "{} bytes", msg.len());
}

#[test]
fn verifying_reader_accepts_exact_content() {
    let data = b"hello world".to_vec();
    let d = Digest::sha256(&data);
    let mut r = VerifyingReader::new(&data[..], d, data.len() as u64);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
}

#[test]
fn verifying_reader_reports_each_kind_of_mismatch() {
    let data = b"hello world";
    let good = Digest::sha256(data);
    let other = Digest::sha256(b"other");

    let err = VerifyingReader::new(&data[..], other.clone(), 11)
        .drain()
        .unwrap_err();
    assert!(matches!(
        VerifyError::from_io(&err),
        Some(VerifyError::DigestMismatch { .. })
    ));

    let err = VerifyingReader::new(&data[..], good.clone(), 12)
        .drain()
        .unwrap_err();
    assert_eq!(
        VerifyError::from_io(&err),
        Some(&VerifyError::SizeMismatch {
            expected: 12,
            actual: 11
        })
    );

    let err = VerifyingReader::new(&data[..], good, 5)
        .drain()
        .unwrap_err();
    assert_eq!(
        VerifyError::from_io(&err),
        Some(&VerifyError::TooLong { expected: 5 })
    );
}

#[test]
fn verifying_reader_stops_an_endless_stream() {
    let endless = std::io::repeat(0u8);
    let err = VerifyingReader::new(endless, Digest::sha256(b""), 1 << 20)
        .drain()
        .unwrap_err();
    assert_eq!(
        VerifyError::from_io(&err),
        Some(&VerifyError::TooLong { expected: 1 << 20 })
    );
}

#[test]
fn hashing_writer_and_reader_agree() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut w = HashingWriter::new(Vec::new(), Algorithm::Sha256);
    std::io::Write::write_all(&mut w, &data).unwrap();
    let (wd, wn, out) = w.finish();
    assert_eq!(out, data);
    let mut r = HashingReader::new(&data[..], Algorithm::Sha256);
    std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    let (rd, rn, _) = r.finish();
    assert_eq!((wd.clone(), wn), (rd, rn));
    assert_eq!(wd, Digest::sha256(&data));
}

proptest! {
    #[test]
    fn display_parse_round_trip(raw in proptest::collection::vec(any::<u8>(), 32)) {
        let d = Digest::from_bytes(Algorithm::Sha256, &raw);
        prop_assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
    }

    #[test]
    fn parse_never_panics_and_accepted_digests_are_path_safe(s in "\\PC{0,200}") {
        if let Ok(d) = Digest::parse(&s) {
            prop_assert!(d.encoded().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            prop_assert_eq!(d.to_string(), s);
        }
    }
}

#[test]
fn hash_pipe_agrees_with_inline_hashing() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut p = HashPipe::new(Algorithm::Sha256);
    for c in data.chunks(100_000) {
        p.update(c);
    }
    assert_eq!(p.count(), data.len() as u64);
    assert_eq!(p.finish(), Digest::sha256(&data));
    // continuing from a prefix
    let mut h = Hasher::new(Algorithm::Sha512);
    h.update(&data[..10]);
    let mut p = HashPipe::spawn(h);
    p.update(&data[10..]);
    assert_eq!(p.finish(), Digest::of(Algorithm::Sha512, &data));
}
