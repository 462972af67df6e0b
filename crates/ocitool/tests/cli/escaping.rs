//! Terminal escape injection: text from an image or `index.json` (ref names, config fields,
//! platforms) is printed with its control characters escaped in human output, verbatim in JSON.

use std::path::PathBuf;

use serde_json::json;

use crate::util::*;

const NAME: &str = "evil\u{1b}]0;owned\u{7}:1\u{1b}[2J";
const CREATED: &str = "2024-01-01\u{1b}[1A\u{1b}[2K";
const OS: &str = "linux\u{9b}31m";
const ARCH: &str = "amd64\u{7f}\u{202e}";

/// A layout whose one image is tagged `NAME` and whose config carries escape sequences.
fn hostile_layout() -> (tempfile::TempDir, PathBuf) {
    let d = empty_dir();
    let l = d.path().join("layout");
    let tar = ocitool_testkit::tarball::small_layer(1, 2);
    let img = ocitool_testkit::Image::from_tars(
        &[tar],
        (OS, ARCH, None),
        ocitool_compress::Compression::Gzip,
        false,
        json!({
            "created": CREATED,
            "author": "me\u{1b}[8m",
            "config": {"Env": ["A=\u{1b}[5m"], "Labels": {"l\u{1b}": "v\r\n"}},
        }),
        json!({"annotations": {"k": "v\u{1b}P"}}),
    );
    let mut w = ocitool_testkit::LayoutWriter::new();
    w.add_image(&img).list(&img.manifest, Some(NAME));
    w.write(&l).unwrap();
    (d, l)
}

#[track_caller]
fn no_raw_controls(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{202e}').contains(c))
        .collect();
    assert!(bad.is_empty(), "{what} prints raw {bad:?}:\n{text}");
}

#[test]
fn ls_and_inspect_escape_control_characters_from_the_image() {
    let (_d, l) = hostile_layout();
    let p = l.as_os_str();

    let ls = ok(["ls".as_ref(), p]);
    no_raw_controls("ls", &ls);
    assert!(ls.contains("evil\\x1b]0;owned\\x07:1\\x1b[2J"), "{ls}");
    assert!(ls.contains("linux\\u{9b}31m/amd64\\x7f\\u{202e}"), "{ls}");
    assert_eq!(ls.lines().count(), 2, "no row is faked:\n{ls}");

    let tree = ok(["ls".as_ref(), p, "--tree".as_ref()]);
    no_raw_controls("ls --tree", &tree);

    let text = ok(["inspect".as_ref(), p, NAME.as_ref()]);
    no_raw_controls("inspect", &text);
    for want in [
        "Created:     2024-01-01\\x1b[1A\\x1b[2K",
        "Platform:    linux\\u{9b}31m/amd64\\x7f\\u{202e}",
        "Author:      me\\x1b[8m",
        "  A=\\x1b[5m",
        "  l\\x1b=v\\r\\n",
        "  k=v\\x1bP",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }

    // An error quoting a name from the command line or the layout is escaped too.
    let o = run(["inspect".as_ref(), p, "nope\u{1b}[2J".as_ref()]);
    assert_eq!(o.status.code(), Some(3));
    no_raw_controls("the error line", &stderr(&o));
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
    let o = run(["ls", "no\u{1b}[2Jpe"]);
    assert_eq!(o.status.code(), Some(3));
    no_raw_controls("the error line", &stderr(&o));
    assert!(stderr(&o).contains("no\\x1b[2Jpe"), "{}", stderr(&o));

    // JSON keeps the exact strings (serde escapes them).
    let v = json(["ls".as_ref(), p]);
    assert_eq!(v[0]["ref"], NAME);
    let v = json(["inspect".as_ref(), p, NAME.as_ref()]);
    assert_eq!(v["config"]["created"], CREATED);
}

#[test]
fn tag_and_untag_reports_escape_names() {
    let (_d, l) = hostile_layout();
    let p = l.as_os_str();
    let out = ok(["tag".as_ref(), p, NAME.as_ref(), "plain:1".as_ref()]);
    no_raw_controls("tag", &out);
    let out = ok(["untag".as_ref(), p, NAME.as_ref()]);
    no_raw_controls("untag", &out);
    assert!(
        out.contains("removed evil\\x1b]0;owned\\x07:1\\x1b[2J"),
        "{out}"
    );
}
