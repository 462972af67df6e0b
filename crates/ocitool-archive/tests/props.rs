//! Property tests: export then import keeps config digests and diff_ids; pack then unpack
//! keeps every digest; any sequence of tag and untag keeps index.json consistent with a model.

use std::collections::BTreeMap;

use ocitool_archive::export::{self, ExportOptions, Format, Selection};
use ocitool_archive::import::{self, ImportOptions, Mode};
use ocitool_compress::Compression;
use ocitool_layout::{Layout, NoProgress, Options, Transaction, resolve};
use ocitool_testkit::{Image, LayoutWriter, tarball};
use proptest::prelude::*;
use serde_json::Value;

/// A generated image: layer count, compression, Docker or OCI media types.
#[derive(Clone, Debug)]
struct Spec {
    layers: usize,
    compression: u8,
    docker: bool,
    seed: u64,
    tags: Vec<String>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        1usize..4,
        0u8..3,
        any::<bool>(),
        0u64..1000,
        proptest::collection::btree_set("[a-z]{1,6}:[0-9]\\.[0-9]", 0..3),
    )
        .prop_map(|(layers, compression, docker, seed, tags)| Spec {
            layers,
            compression,
            docker: docker && compression != 2, // Docker media types have no zstd
            seed,
            tags: tags.into_iter().collect(),
        })
}

fn build(s: &Spec, salt: u64) -> Image {
    let c = [Compression::None, Compression::Gzip, Compression::Zstd][s.compression as usize];
    let tars: Vec<Vec<u8>> = (0..s.layers)
        .map(|i| tarball::small_layer(s.seed * 10 + i as u64 + salt * 100_000, 2))
        .collect();
    Image::from_tars(
        &tars,
        ("linux", "amd64", None),
        c,
        s.docker,
        Value::Null,
        Value::Null,
    )
}

fn layout_of(images: &[(Image, Vec<String>)]) -> (tempfile::TempDir, Layout) {
    let d = tempfile::tempdir().unwrap();
    let mut w = LayoutWriter::new();
    for (img, tags) in images {
        w.add_image(img);
        if tags.is_empty() {
            w.list(&img.manifest, None);
        }
        for t in tags {
            w.list(&img.manifest, Some(t));
        }
    }
    w.write(&d.path().join("l")).unwrap();
    let l = Layout::open(d.path().join("l"), Options::default()).unwrap();
    (d, l)
}

/// Distinct tags across images (a tag names one image).
fn dedupe(specs: &mut [Spec]) {
    let mut seen = std::collections::BTreeSet::new();
    for s in specs.iter_mut() {
        s.tags.retain(|t| seen.insert(t.clone()));
    }
}

fn config_and_diffs(l: &Layout, r: &str) -> (String, Vec<String>) {
    let idx = l.read_index().unwrap();
    let t = resolve::resolve(l, &idx, r).unwrap();
    let m: Value = serde_json::from_slice(&l.read_json_blob(&t.checked()).unwrap()).unwrap();
    let cfg = m["config"]["digest"].as_str().unwrap().to_string();
    let cd = ocitool_digest::Digest::parse(&cfg).unwrap();
    let c: Value = serde_json::from_slice(&l.read_json_blob_by_digest(&cd).unwrap()).unwrap();
    let diffs = c["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    (cfg, diffs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn export_then_import_keeps_config_digests_and_diff_ids(mut specs in proptest::collection::vec(spec(), 1..4)) {
        dedupe(&mut specs);
        let images: Vec<(Image, Vec<String>)> = specs.iter().enumerate().map(|(i, s)| (build(s, i as u64), s.tags.clone())).collect();
        let (_d, src) = layout_of(&images);
        let refs: Vec<String> = images.iter().flat_map(|(img, tags)| if tags.is_empty() { vec![img.manifest.digest.to_string()] } else { tags.clone() }).collect();
        let opts = ExportOptions { format: Format::Docker, platform: None, referrers: false, exclude: None };
        let (_, archive) = export::export(&src, &Selection::Refs(refs), &opts, Vec::new(), &NoProgress).unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let dst = Layout::open_or_init(d2.path().join("dst"), Options::default()).unwrap();
        let rep = import::import(&dst, &archive[..], &ImportOptions::default(), &NoProgress).unwrap();
        prop_assert_eq!(rep.images.len(), images.len());
        for (img, tags) in &images {
            for t in tags {
                let (cfg, diffs) = config_and_diffs(&dst, t);
                prop_assert_eq!(cfg, img.config.digest.to_string());
                let want: Vec<String> = img.diff_ids.iter().map(ToString::to_string).collect();
                prop_assert_eq!(diffs, want);
                // For an archive that carries an OCI layout, the manifest digest too.
                let idx = dst.read_index().unwrap();
                prop_assert_eq!(resolve::resolve(&dst, &idx, t).unwrap().digest, img.manifest.digest.clone());
            }
        }
    }

    #[test]
    fn pack_then_unpack_keeps_every_digest(mut specs in proptest::collection::vec(spec(), 1..4)) {
        dedupe(&mut specs);
        let images: Vec<(Image, Vec<String>)> = specs.iter().enumerate().map(|(i, s)| (build(s, i as u64), s.tags.clone())).collect();
        let (_d, src) = layout_of(&images);
        let opts = ExportOptions { format: Format::Oci, platform: None, referrers: true, exclude: None };
        let (_, archive) = export::export(&src, &Selection::All, &opts, Vec::new(), &NoProgress).unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let dst = Layout::open_or_init(d2.path().join("dst"), Options::default()).unwrap();
        import::import(&dst, &archive[..], &ImportOptions { mode: Mode::Unpack, ..Default::default() }, &NoProgress).unwrap();
        let a = src.read_index().unwrap();
        let b = dst.read_index().unwrap();
        let entries = |i: &ocitool_layout::IndexDoc| -> Vec<Value> { (0..i.len()).map(|p| i.raw_entry(p).unwrap()).collect() };
        prop_assert_eq!(entries(&a), entries(&b));
        let blobs = |l: &Layout| ocitool_layout::graph::list_blobs(l).unwrap();
        prop_assert_eq!(blobs(&src), blobs(&dst));
        let report = ocitool_layout::verify::verify(&dst, ocitool_layout::verify::Scope::Whole, &NoProgress).unwrap();
        prop_assert!(report.ok(), "{:?}", report.problems);
    }

    #[test]
    fn tag_and_untag_keep_index_json_consistent_with_a_model(ops in proptest::collection::vec((any::<bool>(), 0usize..6, 0usize..3), 1..25)) {
        let images: Vec<(Image, Vec<String>)> = (0..3).map(|i| (Image::small(700 + i, 1, ("linux", "amd64", None), Compression::Gzip, false), Vec::new())).collect();
        let (_d, l) = layout_of(&images);
        let names = ["a:1", "a:2", "b:1", "c", "d:latest", "e/f:9"];
        let mut model: BTreeMap<String, String> = BTreeMap::new();
        for (tag, n, img) in ops {
            let name = names[n];
            let digest = images[img].0.manifest.digest.to_string();
            let txn = Transaction::begin(&l).unwrap();
            if tag {
                txn.commit(|idx| {
                    let t = resolve::resolve(&l, idx, &digest)?;
                    idx.set_ref(name, &t.descriptor);
                    Ok(())
                }).unwrap();
                model.insert(name.to_string(), digest);
            } else {
                txn.commit(|idx| {
                    idx.remove_ref(name);
                    Ok(())
                }).unwrap();
                model.remove(name);
            }
            let idx = l.read_index().unwrap();
            prop_assert_eq!(idx.ref_digests(), model.clone());
            // One entry per name.
            let named = idx.entries().iter().filter(|e| e.descriptor.ref_name().is_some()).count();
            prop_assert_eq!(named, model.len());
        }
    }
}
