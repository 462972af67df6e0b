use serde_json::json;

use crate::util::*;

#[test]
fn lists_one_row_per_ref_with_the_cli_md_shape() {
    let fx = fixture("minimal");
    let rows = json(["ls".as_ref(), fx.path.as_os_str()]);
    let img = ocitool_testkit::fixtures::minimal_image();
    let total: u64 = img.blobs().iter().map(|b| b.size()).sum();
    assert_eq!(
        rows,
        json!([{
            "ref": "app:1.0",
            "digest": img.manifest.digest.to_string(),
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "platforms": ["linux/amd64"],
            "size": total,
        }])
    );
    let text = ok(["ls".as_ref(), fx.path.as_os_str()]);
    assert!(text.starts_with("REF"), "{text}");
    assert!(
        text.contains("app:1.0")
            && text.contains("linux/amd64")
            && text.contains(&img.manifest.digest.short()),
        "{text}"
    );
}

#[test]
fn an_index_shows_every_platform_and_the_size_of_all_of_them() {
    let fx = fixture("multi-arch");
    let (_, a, b, idx) = ocitool_testkit::fixtures::multi_arch();
    let rows = json(["ls".as_ref(), fx.path.as_os_str()]);
    assert_eq!(rows[0]["ref"], "multi:1.0");
    assert_eq!(
        rows[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        rows[0]["platforms"],
        json!(["linux/amd64", "linux/arm64/v8"])
    );
    let total: u64 = idx.size()
        + a.blobs()
            .iter()
            .chain(b.blobs().iter())
            .map(|x| x.size())
            .sum::<u64>();
    assert_eq!(rows[0]["size"], total);
}

#[test]
fn nested_indexes_are_followed() {
    let fx = fixture("nested-index");
    let rows = json(["ls".as_ref(), fx.path.as_os_str()]);
    assert_eq!(
        rows[0]["platforms"],
        json!(["linux/amd64", "linux/arm64/v8"])
    );
}

#[test]
fn other_naming_conventions_are_shown_faithfully() {
    let fx = fixture("docker-v2s2");
    let rows = json(["ls".as_ref(), fx.path.as_os_str()]);
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap())
        .collect();
    // Docker 25's tag-only ref.name, and an entry named only by io.containerd.image.name.
    assert_eq!(names, ["latest", "docker.io/library/dockerish:amd64-only"]);
    assert_eq!(
        rows[0]["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
}

#[test]
fn untagged_entries_have_an_empty_ref() {
    let fx = fixture("artifact");
    let rows = json(["ls".as_ref(), fx.path.as_os_str()]);
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["ref"], "app:signed");
    assert_eq!(rows[1]["ref"], "");
    assert_eq!(rows[1]["platforms"], json!([]));
    assert!(ok(["ls".as_ref(), fx.path.as_os_str()]).contains("<none>"));
}

#[test]
fn ls_of_a_damaged_layout_warns_but_lists() {
    let fx = fixture("minimal");
    let img = ocitool_testkit::fixtures::minimal_image();
    std::fs::remove_file(blob_path(&fx.path, &img.config.digest.to_string())).unwrap();
    let o = run(["ls".as_ref(), fx.path.as_os_str()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("warning:") && stderr(&o).contains("verify"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("app:1.0"));
}

#[test]
fn reading_changes_nothing_not_even_private_state() {
    let fx = fixture("multi-arch");
    let before = std::fs::read_dir(&fx.path).unwrap().count();
    ok(["ls".as_ref(), fx.path.as_os_str()]);
    ok([
        "inspect".as_ref(),
        fx.path.as_os_str(),
        "multi:1.0".as_ref(),
    ]);
    ok(["verify".as_ref(), fx.path.as_os_str()]);
    assert_eq!(std::fs::read_dir(&fx.path).unwrap().count(), before);
    assert!(!fx.path.join(".ocitool").exists());
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let fx = fixture("multi-arch");
    let mut child = std::process::Command::new(bin())
        .args([
            "inspect".as_ref(),
            fx.path.as_os_str(),
            "multi:1.0".as_ref(),
            "--json".as_ref(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // close the read end before ocitool writes
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}
