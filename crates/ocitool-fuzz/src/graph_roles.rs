// Included by `lib.rs` (so the regression replay compiles it too).

// ---------------------------------------------------------------------------------------------
// graph_roles

/// A layout of a multi-platform image, a second image and an unlisted referrer (a signature
/// whose subject is the second image), written once per process; each input only rewrites
/// its `index.json`. Returns the layout and every blob the two real refs reach.
type RolesLayout = (PathBuf, BTreeSet<Digest>, Vec<(String, Value)>, [Value; 2]);

fn roles_layout() -> &'static RolesLayout {
    static LAYOUT: std::sync::OnceLock<RolesLayout> = std::sync::OnceLock::new();
    LAYOUT.get_or_init(|| {
        use ocitool_testkit::{Blob, Image, LayoutWriter, image};
        let amd = ("linux", "amd64", None);
        let arm = ("linux", "arm64", Some("v8"));
        let a = Image::small(61, 2, amd, Compression::Gzip, false);
        let b = Image::small(62, 1, arm, Compression::None, false);
        let index = image::index(&[(&a.manifest, Some(amd)), (&b.manifest, Some(arm))], false, Value::Null);
        let empty = Blob::new(media::OCI_EMPTY, media::EMPTY_JSON.to_vec());
        let payload = Blob::new("application/vnd.example.sig", b"signature".to_vec());
        let referrer = image::manifest(
            &empty,
            std::slice::from_ref(&payload),
            false,
            json!({"artifactType": "application/vnd.example.sig", "subject": b.manifest.descriptor()}),
        );
        let mut w = LayoutWriter::new();
        w.add_image(&a)
            .add_image(&b)
            .add_blob(&index)
            .add_blob(&empty)
            .add_blob(&payload)
            .add_blob(&referrer);
        let dir = temp_base().join(format!("graph-roles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        w.write(&dir).expect("write the graph_roles layout");
        let every: Vec<&Blob> = [&index, &empty, &payload, &referrer]
            .into_iter()
            .chain(a.blobs())
            .chain(b.blobs())
            .collect();
        let reachable = every.iter().map(|x| x.digest.clone()).collect();
        // What an entry may name: each blob, with its true media type first.
        let pool = every
            .iter()
            .map(|x| (x.media_type.clone(), json!({"digest": x.digest.to_string(), "size": x.size()})))
            .collect();
        let named = |x: &Blob, name: &str| {
            let mut d = x.descriptor();
            d["annotations"] = json!({"org.opencontainers.image.ref.name": name});
            d
        };
        let real = [named(&index, "multi:1"), named(&b.manifest, "app:1")];
        (dir, reachable, pool, real)
    })
}

const ROLE_TYPES: [&str; 8] = [
    "application/octet-stream",
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::OCI_CONFIG,
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar",
    media::OCI_EMPTY,
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// `index.json` made of the two real refs and entries that contradict them: every blob of
/// the layout named with any media type, with a right or wrong size, at any position
/// (three bytes of input per entry). Invariants: `gc` (forced, so it sweeps past the damage
/// it sees) never plans to delete a blob the real refs reach, and what `gc` and `verify`
/// find does not depend on the order of the entries (checked against the reversed order).
pub fn graph_roles(data: &[u8]) {
    let (dir, reachable, pool, real) = roles_layout();
    let mut entries: Vec<Value> = Vec::new();
    for chunk in data.chunks(3).take(64) {
        let pick = |i: usize| chunk.get(i).copied().unwrap_or(0) as usize;
        let (true_type, base) = &pool[pick(0) % pool.len()];
        let mut d = base.clone();
        let t = pick(1) % (ROLE_TYPES.len() + 1);
        d["mediaType"] = Value::from(if t == ROLE_TYPES.len() { true_type.as_str() } else { ROLE_TYPES[t] });
        let size = d["size"].as_u64().unwrap_or(0);
        d["size"] = Value::from(match pick(2) % 4 {
            0 | 1 => size,
            2 => size + 1,
            _ => size.saturating_sub(1),
        });
        if pick(2) & 0x80 != 0 {
            d["annotations"] = json!({"org.opencontainers.image.ref.name": format!("x:{}", pick(2) & 0x7f)});
        }
        entries.push(d);
    }
    // The real refs go where the input says, so they are met first or last.
    let at = data.first().map_or(0, |b| *b as usize) % (entries.len() + 1);
    entries.insert(at, real[0].clone());
    let at = data.last().map_or(0, |b| *b as usize) % (entries.len() + 1);
    entries.insert(at, real[1].clone());

    let outcome = |entries: &[Value]| {
        let doc = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": entries});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&doc).expect("JSON"))
            .expect("write index.json");
        let layout = Layout::open(dir, Options { wait: WaitMode::NoWait, ..Default::default() })
            .expect("open the graph_roles layout");
        let index = layout.read_index().expect("read index.json");
        let plan = ocitool_layout::gc::plan(&layout, &index, true).expect("a forced gc plan");
        let removed: BTreeSet<Digest> = plan.removed.into_iter().map(|(d, _)| d).collect();
        let report = ocitool_layout::verify::verify(&layout, ocitool_layout::verify::Scope::Whole, &NoProgress)
            .expect("verify runs");
        let found: BTreeSet<(Option<Digest>, String)> =
            report.problems.into_iter().map(|p| (p.digest, p.path)).collect();
        (removed, found)
    };
    let (removed, found) = outcome(&entries);
    let lost: Vec<&Digest> = removed.intersection(reachable).collect();
    assert!(lost.is_empty(), "gc would delete reachable blobs {lost:?}");
    let mut reversed = entries.clone();
    reversed.reverse();
    let (removed2, found2) = outcome(&reversed);
    assert_eq!(removed, removed2, "gc's plan depends on the order of index.json");
    assert_eq!(found, found2, "verify's findings depend on the order of index.json");
}
