//! Layouts with many refs to a few small images, for the bench, the torture campaign
//! `scale` and the tests of commands on large indexes. `index.json` is written directly, as
//! compact as ocitool writes it, so 100,000 refs take a fraction of a second to make.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use ocitool_compress::Compression;
use ocitool_digest::Digest;
use ocitool_spec::refname::REF_NAME;

use crate::image::Image;
use crate::layout::LayoutWriter;

/// What [`write_many_refs`] wrote.
#[derive(Clone, Debug)]
pub struct ManyRefs {
    /// `(ref name, manifest digest)` of every `index.json` entry, in order.
    pub refs: Vec<(String, Digest)>,
    /// The manifest of each image.
    pub images: Vec<Digest>,
    /// Repositories the refs are spread over.
    pub repos: usize,
}

/// The name of ref `i` of a layout with `repos` repositories: `r<i % repos>:1.<i / repos>.0`,
/// so each repository has versions 1.0.0, 1.1.0, … (and `prune --keep 1` keeps one of each).
pub fn ref_name(i: usize, repos: usize) -> String {
    format!("r{}:1.{}.0", i % repos, i / repos)
}

/// Writes a layout in `dir` (created) with `images` small single-layer images and `refs`
/// entries named by [`ref_name`], entry `i` pointing at image `i % images`.
pub fn write_many_refs(
    dir: &Path,
    refs: usize,
    images: usize,
    repos: usize,
) -> io::Result<ManyRefs> {
    let images = images.max(1);
    let repos = repos.max(1);
    let mut w = LayoutWriter::new();
    let mut imgs = Vec::new();
    for i in 0..images {
        let img = Image::small(
            7000 + i as u64,
            1,
            ("linux", "amd64", None),
            Compression::Gzip,
            false,
        );
        w.add_image(&img);
        imgs.push(img);
    }
    w.write(dir)?;
    let descriptors: Vec<String> = imgs
        .iter()
        .map(|img| {
            format!(
                r#""digest":"{}","mediaType":"{}","size":{}"#,
                img.manifest.digest,
                img.manifest.media_type,
                img.manifest.size()
            )
        })
        .collect();
    let mut text = String::with_capacity(refs * 160 + 128);
    text.push_str(r#"{"manifests":["#);
    let mut out = Vec::with_capacity(refs);
    for i in 0..refs {
        let name = ref_name(i, repos);
        if i > 0 {
            text.push(',');
        }
        let _ = write!(
            text,
            r#"{{"annotations":{{"{REF_NAME}":"{name}"}},{}}}"#,
            descriptors[i % images]
        );
        out.push((name, imgs[i % images].manifest.digest.clone()));
    }
    text.push_str(r#"],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#);
    std::fs::write(dir.join("index.json"), text)?;
    Ok(ManyRefs {
        refs: out,
        images: imgs.iter().map(|i| i.manifest.digest.clone()).collect(),
        repos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_round_robin_over_images_and_repositories() {
        let tmp = std::env::temp_dir().join(format!("ocitool-many-{}", std::process::id()));
        let dir = tmp.join("l");
        let m = write_many_refs(&dir, 10, 3, 4).unwrap();
        assert_eq!(m.refs.len(), 10);
        assert_eq!(m.refs[5], (String::from("r1:1.1.0"), m.images[2].clone()));
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let entries = v["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 10);
        assert_eq!(entries[5]["annotations"][REF_NAME], "r1:1.1.0");
        assert_eq!(entries[5]["digest"], m.images[2].to_string());
        for d in &m.images {
            assert!(dir.join("blobs/sha256").join(d.encoded()).is_file());
        }
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
