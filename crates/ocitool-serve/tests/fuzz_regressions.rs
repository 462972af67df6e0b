//! Replays every input the `serve_request` fuzzer saved (`testdata/fuzz-regressions/
//! serve_request/`, written by `cargo xtask fuzz`), and its seeds, through the harness the
//! fuzz target runs (`crates/ocitool-fuzz/src/serve.rs`, included here by path). The other
//! targets are replayed by `crates/ocitool-archive/tests/fuzz_regressions.rs`.

#[path = "../../ocitool-fuzz/src/serve.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

#[test]
fn serve_request() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/fuzz-regressions/serve_request");
    let mut inputs: Vec<(String, Vec<u8>)> = harness::SERVE_SEEDS
        .iter()
        .map(|(name, bytes)| (format!("seed {name}"), bytes.to_vec()))
        .collect();
    match std::fs::read_dir(&dir) {
        Ok(rd) => {
            for e in rd {
                let p = e
                    .expect("read testdata/fuzz-regressions/serve_request")
                    .path();
                if p.is_file() {
                    inputs.push((p.display().to_string(), std::fs::read(&p).expect("read")));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("read {}: {e}", dir.display()),
    }
    let failed: Vec<&str> = inputs
        .iter()
        .filter(|(_, data)| {
            catch_unwind(AssertUnwindSafe(|| harness::serve_request(data))).is_err()
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} serve_request inputs fail (see the panics above):\n  {}",
        failed.len(),
        inputs.len(),
        failed.join("\n  ")
    );
}
