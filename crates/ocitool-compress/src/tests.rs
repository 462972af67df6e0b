use std::io::{BufReader, Read, Write};

use super::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new(Compression::Gzip, Vec::new(), EncodeOptions::default()).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new(Compression::Zstd, Vec::new(), EncodeOptions::default()).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn decode_all(data: &[u8]) -> (Compression, Vec<u8>) {
    let (c, mut d) = auto_decoder(BufReader::new(data), DecodeOptions::default()).unwrap();
    let mut out = Vec::new();
    d.read_to_end(&mut out).unwrap();
    (c, out)
}

#[test]
fn detects_by_magic() {
    assert_eq!(Compression::detect(&gzip(b"x")), Compression::Gzip);
    assert_eq!(Compression::detect(&zstd(b"x")), Compression::Zstd);
    assert_eq!(Compression::detect(b"ustar"), Compression::None);
    assert_eq!(Compression::detect(b""), Compression::None);
}

fn xz(data: &[u8], preset: u32) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), preset);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn detects_xz_and_bzip2() {
    assert_eq!(Compression::detect(&xz(b"x", 6)), Compression::Xz);
    assert_eq!(Compression::detect(&bzip2(b"x")), Compression::Bzip2);
    assert_eq!(Compression::detect(&bzip2(b"")), Compression::Bzip2);
    // A tar whose first member is named like a bzip2 header is still a tar.
    let mut tar = b"BZh9-not-a-stream".to_vec();
    tar.resize(512, 0);
    assert_eq!(Compression::detect(&tar), Compression::None);
    assert!(!Compression::Xz.is_layer_codec() && !Compression::Bzip2.is_layer_codec());
    assert!(Compression::Gzip.is_layer_codec() && Compression::None.is_layer_codec());
}

#[test]
fn concatenated_xz_and_bzip2_streams_are_read_to_the_end() {
    let mut two = xz(b"hello ", 6);
    two.extend(xz(b"world", 1));
    assert_eq!(decode_all(&two), (Compression::Xz, b"hello world".to_vec()));
    let mut two = bzip2(b"hello ");
    two.extend(bzip2(b"world"));
    assert_eq!(
        decode_all(&two),
        (Compression::Bzip2, b"hello world".to_vec())
    );
}

#[test]
fn xz_over_the_memory_limit_is_refused_by_name() {
    // xz -9 needs a 64 MiB dictionary: refused under a 16 MiB limit, read under the default.
    let data = xz(b"some layer bytes", 9);
    let small = DecodeOptions {
        xz_memlimit: 16 << 20,
        ..DecodeOptions::default()
    };
    let mut d = decoder(Compression::Xz, BufReader::new(&data[..]), small).unwrap();
    let err = d.read_to_end(&mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("more than 16 MiB"), "{err}");
    assert_eq!(decode_all(&data).1, b"some layer bytes");
}

#[test]
fn xz_and_bzip2_are_never_written_nor_push_decoded() {
    assert!(matches!(
        Encoder::new(Compression::Xz, Vec::new(), EncodeOptions::default()),
        Err(EncodeError::Unsupported { .. })
    ));
    assert!(matches!(
        Encoder::new(Compression::Bzip2, Vec::new(), EncodeOptions::default()),
        Err(EncodeError::Unsupported { .. })
    ));
    assert!(PushDecoder::new(Compression::Xz, Vec::new(), DecodeOptions::default()).is_err());
}

#[test]
fn multi_member_gzip_is_read_to_the_end() {
    let mut two = gzip(b"hello ");
    two.extend(gzip(b"world"));
    assert_eq!(
        decode_all(&two),
        (Compression::Gzip, b"hello world".to_vec())
    );
}

#[test]
fn concatenated_zstd_frames_are_read_to_the_end() {
    let mut two = zstd(b"hello ");
    two.extend(zstd(b"world"));
    assert_eq!(
        decode_all(&two),
        (Compression::Zstd, b"hello world".to_vec())
    );
}

#[test]
fn uncompressed_passes_through() {
    assert_eq!(
        decode_all(b"plain tar bytes"),
        (Compression::None, b"plain tar bytes".to_vec())
    );
}

#[test]
fn zstd_window_over_the_cap_is_refused() {
    let data = vec![7u8; 1 << 20];
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.window_log(30).unwrap();
    e.long_distance_matching(true).unwrap();
    e.write_all(&data).unwrap();
    let frame = e.finish().unwrap();
    let mut d = decoder(
        Compression::Zstd,
        BufReader::new(&frame[..]),
        DecodeOptions::default(),
    )
    .unwrap();
    assert!(d.read_to_end(&mut Vec::new()).is_err());
    let mut d = decoder(
        Compression::Zstd,
        BufReader::new(&frame[..]),
        DecodeOptions {
            zstd_window_log_max: 31,
            ..DecodeOptions::default()
        },
    )
    .unwrap();
    let mut out = Vec::new();
    d.read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
}

#[test]
fn levels_are_checked() {
    let err = Encoder::new(
        Compression::Gzip,
        Vec::new(),
        EncodeOptions {
            level: Some(10),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("0..=9"), "{err}");
    assert!(
        Encoder::new(
            Compression::Zstd,
            Vec::new(),
            EncodeOptions {
                level: Some(19),
                ..Default::default()
            }
        )
        .is_ok()
    );
}

#[test]
fn bomb_guard_stops_high_ratio_streams() {
    let zeros = vec![0u8; 64 << 20];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < 1 << 20);
    let (counting, consumed) = CountingReader::new(BufReader::new(&bomb[..]));
    let d = decoder(Compression::Gzip, counting, DecodeOptions::default()).unwrap();
    let mut guarded = BombGuard::new(d, consumed, u64::MAX, 100, 1 << 20);
    let err = std::io::copy(&mut guarded, &mut std::io::sink()).unwrap_err();
    let bomb_err = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<BombError>())
        .unwrap();
    assert!(
        matches!(bomb_err, BombError::Ratio { ratio: 100, .. }),
        "{bomb_err}"
    );

    let (counting, consumed) = CountingReader::new(BufReader::new(&bomb[..]));
    let d = decoder(Compression::Gzip, counting, DecodeOptions::default()).unwrap();
    let mut guarded = BombGuard::new(d, consumed, 1 << 20, u64::MAX, 0);
    let err = std::io::copy(&mut guarded, &mut std::io::sink()).unwrap_err();
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
}

#[test]
fn bomb_guard_passes_ordinary_data() {
    let data: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let z = gzip(&data);
    let (counting, consumed) = CountingReader::new(BufReader::new(&z[..]));
    let d = decoder(Compression::Gzip, counting, DecodeOptions::default()).unwrap();
    let mut guarded = BombGuard::new(d, consumed, u64::MAX, 100, 1 << 20);
    let mut out = Vec::new();
    guarded.read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
}

#[test]
fn push_decoders_agree_with_pull_decoders() {
    let data: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 27) as u8)
        .collect();
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let mut z = Encoder::new(c, Vec::new(), EncodeOptions::default()).unwrap();
        z.write_all(&data).unwrap();
        let mut z = z.finish().unwrap();
        if c == Compression::Gzip {
            // a second member
            let mut e = Encoder::new(c, Vec::new(), EncodeOptions::default()).unwrap();
            e.write_all(b"tail").unwrap();
            z.extend(e.finish().unwrap());
        }
        let mut d = PushDecoder::new(c, Vec::new(), DecodeOptions::default()).unwrap();
        for chunk in z.chunks(7777) {
            d.write_all(chunk).unwrap();
        }
        let out = d.finish().unwrap();
        let mut want = data.clone();
        if c == Compression::Gzip {
            want.extend(b"tail");
        }
        assert_eq!(out.len(), want.len(), "{c}");
        assert!(out == want, "{c}");
    }
}

#[test]
fn push_decoder_reports_a_truncated_stream() {
    let mut z = Encoder::new(Compression::Gzip, Vec::new(), EncodeOptions::default()).unwrap();
    z.write_all(&[1u8; 100_000]).unwrap();
    let z = z.finish().unwrap();
    let mut d = PushDecoder::new(Compression::Gzip, Vec::new(), DecodeOptions::default()).unwrap();
    d.write_all(&z[..z.len() / 2]).unwrap();
    assert!(d.finish().is_err());
}
