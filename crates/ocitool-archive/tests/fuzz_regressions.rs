//! Replays every input the fuzzers saved (`testdata/fuzz-regressions/<target>/`, written by
//! `cargo xtask fuzz`) through the same harness the fuzz targets run
//! (`crates/ocitool-fuzz/src/lib.rs`, included here by path). Passes when there are none.

#[path = "../../ocitool-fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

fn regressions(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/fuzz-regressions")
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .map(|e| e.expect("read testdata/fuzz-regressions").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("read {}: {e}", dir.display()),
    };
    files.sort();
    files
}

fn replay(target: &str) {
    let mut failed = Vec::new();
    let files = regressions(target);
    for f in &files {
        let data = std::fs::read(f).expect("read a regression input");
        if catch_unwind(AssertUnwindSafe(|| {
            assert!(harness::run(target, &data), "unknown target");
        }))
        .is_err()
        {
            failed.push(f.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} {target} regression inputs fail (see the panics above):\n  {}",
        failed.len(),
        files.len(),
        failed.join("\n  ")
    );
}

#[test]
fn archive_import() {
    replay("archive_import");
}

#[test]
fn oci_archive_unpack() {
    replay("oci_archive_unpack");
}

#[test]
fn archive_structured() {
    replay("archive_structured");
}

/// The seeds `cargo xtask fuzz` gives `archive_structured` decode to archives that import, so
/// the fuzzer starts from imports that reach the end.
#[test]
fn archive_structured_seeds_import() {
    for (name, seed) in harness::STRUCTURED_SEEDS {
        let decoded = harness::Structured::decode(seed).expect("a seed is not empty");
        assert_eq!(
            harness::structured_import(seed),
            Some(true),
            "seed {name} does not import:\n{}",
            decoded.describe()
        );
    }
}

#[test]
fn views() {
    replay("views");
}

#[test]
fn names() {
    replay("names");
}

#[test]
fn index_edit() {
    replay("index_edit");
}

/// A short deterministic sweep of `index_edit` in the normal suite: every step checks the
/// edited document against its model, the lookups by name and position included (kept in
/// step with edits rather than recomputed, they are easy to get subtly wrong).
#[test]
fn index_edit_sweep() {
    let mut rng = ocitool_testkit::Rng::new(14);
    for i in 0..600 {
        let mut data = vec![0u8; 16 + (rng.next_u64() % 160) as usize];
        rng.fill(&mut data);
        // Mostly the seeds with duplicate names and unknown members, where edits interact.
        data[0] = [5, 0, 2, (rng.next_u64() % 7) as u8][i % 4];
        harness::index_edit(&data);
    }
}

#[test]
fn graph_roles() {
    replay("graph_roles");
}

#[test]
fn every_target_is_replayed() {
    assert_eq!(
        harness::TARGETS,
        [
            "archive_import",
            "oci_archive_unpack",
            "archive_structured",
            "views",
            "names",
            "index_edit",
            "graph_roles",
            // Replayed by crates/ocitool-serve/tests/fuzz_regressions.rs.
            "serve_request"
        ]
    );
    // A directory for a target that does not exist would never be replayed.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fuzz-regressions");
    if let Ok(rd) = std::fs::read_dir(&root) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                harness::TARGETS.contains(&name.as_str()),
                "testdata/fuzz-regressions/{name} is not a fuzz target"
            );
        }
    }
}
