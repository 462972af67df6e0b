//! `kill -9` at random moments while ocitool writes a large blob and while it tags: the
//! layout always verifies clean and lists only complete refs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn kill_after(args: &[&std::ffi::OsStr], delay: Duration) -> bool {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    finished
}

#[test]
fn kill_9_while_writing_a_large_blob() {
    let fx = fixture("minimal");
    let big = fx.dir.path().join("big");
    let mut rng = ocitool_testkit::Rng::new(42);
    let mut data = vec![0u8; 96 << 20];
    rng.fill(&mut data);
    std::fs::write(&big, &data).unwrap();
    let digest = ocitool_digest::Digest::sha256(&data).to_string();
    drop(data);
    let args: Vec<&std::ffi::OsStr> = vec![
        "blob".as_ref(),
        "put".as_ref(),
        fx.path.as_os_str(),
        big.as_os_str(),
    ];
    // How long a full run takes, to spread the kills over it.
    let t = Instant::now();
    let scratch = fixture("minimal");
    ok([
        "blob".as_ref(),
        "put".as_ref(),
        scratch.path.as_os_str(),
        big.as_os_str(),
    ]);
    let full = t.elapsed();
    let before_refs = refs(&fx.path);
    // Kill at random moments until 16 kills have landed mid-write (a kill after the command
    // finished counts for nothing), within a bounded number of attempts.
    let mut kills = 0;
    let mut attempts = 0;
    while kills < 16 && attempts < 80 {
        attempts += 1;
        let i = attempts;
        let delay = full.mul_f64((rng.next_u64() % 1000) as f64 / 1000.0 * 0.9);
        if !kill_after(&args, delay) {
            kills += 1;
        }
        // No partial blob under a digest name, refs intact.
        verify_clean(&fx.path);
        assert_eq!(refs(&fx.path), before_refs, "attempt {i}");
        let p = blob_path(&fx.path, &digest);
        if p.exists() {
            assert_eq!(std::fs::metadata(&p).unwrap().len(), 96 << 20);
            std::fs::remove_file(&p).unwrap(); // start over so later kills hit the write again
        }
    }
    assert!(
        kills >= 16,
        "only {kills} of {attempts} kills landed mid-write"
    );
    // The command run again completes; gc removes what the killed runs left.
    assert_eq!(ok(&args).trim(), digest);
    let v = json(["gc".as_ref(), fx.path.as_os_str()]);
    assert!(v["staleTemp"].as_u64().unwrap() > 0);
    assert_eq!(
        std::fs::read_dir(fx.path.join(".ocitool/tmp"))
            .unwrap()
            .count(),
        0
    );
    verify_clean(&fx.path);
}

#[test]
fn kill_9_while_tagging() {
    let fx = fixture("multi-arch");
    // A large index.json makes each rewrite take long enough to be hit.
    let many: Vec<String> = (0..3000).map(|i| format!("bulk:{i}")).collect();
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["tag".as_ref(), fx.path.as_os_str(), "multi:1.0".as_ref()];
    args.extend(many.iter().map(std::ffi::OsStr::new));
    ok(&args);
    let t = Instant::now();
    ok([
        "tag".as_ref(),
        fx.path.as_os_str(),
        "multi:1.0".as_ref(),
        "probe:1".as_ref(),
    ]);
    let full = t.elapsed();
    let mut rng = ocitool_testkit::Rng::new(7);
    for i in 0..40 {
        let before = refs(&fx.path);
        let name = format!("crash:{i}");
        let delay = full.mul_f64((rng.next_u64() % 1000) as f64 / 1000.0);
        kill_after(
            &[
                "tag".as_ref(),
                fx.path.as_os_str(),
                "multi:1.0".as_ref(),
                name.as_ref(),
            ],
            delay,
        );
        let after = refs(&fx.path); // index.json always parses
        for (k, v) in &before {
            assert_eq!(after.get(k), Some(v), "iteration {i}: lost {k}");
        }
        assert!(
            after.len() == before.len()
                || (after.len() == before.len() + 1 && after.contains_key(&name))
        );
    }
    verify_clean(&fx.path);
}
