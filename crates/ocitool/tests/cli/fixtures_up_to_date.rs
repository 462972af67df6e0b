use std::process::Command;

use crate::util::workspace;

/// testdata/ is exactly what `cargo xtask fixtures` generates.
#[test]
fn testdata_matches_its_generator() {
    let o = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "--package",
            "xtask",
            "--",
            "fixtures",
            "--check",
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
