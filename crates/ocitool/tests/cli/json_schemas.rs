//! Every `--json` output against its schema in `crates/ocitool/schemas/`: each command is run
//! with `--json` on fixtures (registry commands against `ocitool serve` and Debian's
//! docker-registry), its output validated, and every key checked to be camelCase outside the
//! documents and maps that are not ocitool's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use std::process::Command;

use serde_json::Value;

use crate::usage::every_command;
use crate::util::*;

/// Commands whose output is never JSON: raw bytes, a shell script; `blob` is a group whose
/// commands (`blob put`) are checked one by one.
const NO_JSON: &[&str] = &["blob", "blob get", "completions"];

/// The schema file that documents a command's output.
fn schema_name(command: &str) -> String {
    match command {
        // unpack prints what import prints.
        "unpack" => "import".into(),
        c => c.replace(' ', "-"),
    }
}

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn load(name: &str) -> Value {
    let p = schemas_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// What the commands printed, by command.
#[derive(Default)]
struct Outputs(BTreeMap<String, Vec<Value>>);

impl Outputs {
    /// Runs `ocitool ARGS --json`, expecting `code`; keeps what it printed under its command.
    #[track_caller]
    fn run(&mut self, command: &str, c: &mut Command, code: i32) -> Value {
        let o = c.arg("--json").output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(code),
            "{c:?}\nstdout: {}\nstderr: {}",
            stdout(&o),
            stderr(&o)
        );
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{c:?}: not one JSON document ({e}): {}", stdout(&o)));
        self.0.entry(command.into()).or_default().push(v.clone());
        v
    }

    #[track_caller]
    fn ok(&mut self, command: &str, args: &[&str]) -> Value {
        let words = command.split(' ').collect::<Vec<_>>();
        self.run(command, Command::new(bin()).args(&words).args(args), 0)
    }

    fn push_line(&mut self, command: &str, line: &str) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{command}: {e}: {line}"));
        self.0.entry(command.into()).or_default().push(v);
    }
}

/// Registry commands never see the host's proxies or credential files.
pub fn isolated<'a>(c: &'a mut Command, home: &Path) -> &'a mut Command {
    for v in [
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "https_proxy",
        "http_proxy",
        "REGISTRY_AUTH_FILE",
        "DOCKER_CONFIG",
        "XDG_CONFIG_HOME",
    ] {
        c.env_remove(v);
    }
    c.env("HOME", home).env("XDG_RUNTIME_DIR", home.join("run"))
}

/// Runs every command with `--json` on fixtures and collects the outputs.
fn run_everything(d: &Path) -> Outputs {
    let mut out = Outputs::default();
    let path = |n: &str| d.join(n).to_str().unwrap().to_string();
    let (a, b, c) = (path("a"), path("b"), path("c"));
    let (a, b, c) = (a.as_str(), b.as_str(), c.as_str());
    let tar = testdata("archives/docker-save.tar");
    let tar = tar.to_str().unwrap();
    let legacy = testdata("archives/docker-legacy.tar");
    let multi = fixture("multi-arch");
    let artifact = fixture("artifact");
    let corrupt = fixture("corrupt/minimal");
    let (m, art) = (
        multi.path.to_str().unwrap(),
        artifact.path.to_str().unwrap(),
    );
    let signature = index_json(&artifact.path)["manifests"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let (e_tar, m_tar, a_tar, delta, inv) = (
        path("e.tar"),
        path("m.tar"),
        path("a.tar"),
        path("delta.tar"),
        path("inv.json"),
    );
    out.ok("init", &[&path("new")]);
    out.ok("import", &[tar, a]);
    out.ok("import", &[legacy.to_str().unwrap(), &path("legacy")]);
    out.ok("tag", &[a, "app:1.0", "app:2.0"]);
    out.ok("tag", &[a, "app:1.0", "app:1.0.0", "--semver"]);
    out.ok("tag", &[a, "app:1.0", "app:1.1.0", "--dry-run"]);
    out.ok("untag", &[a, "app:2.0"]);
    out.ok("protect", &[a, "--semver", "release-*:*"]);
    out.ok("protect", &[a, "--list"]);
    out.ok("prune", &[a, "--keep", "1", "--dry-run"]);
    out.ok("ls", &[a]);
    out.ok("ls", &[a, "--tree"]);
    out.ok("ls", &[m]);
    out.ok("ls", &[art]);
    out.ok("inspect", &[a, "app:1.0"]);
    out.ok("inspect", &[m, "multi:1.0"]);
    out.ok("inspect", &[m, "multi:1.0", "--platform", "linux/arm64"]);
    out.ok("inspect", &[art, "app:signed"]);
    out.ok("inspect", &[art, &signature]);
    out.ok("verify", &[a]);
    out.ok("verify", &[a, "app:1.0"]);
    out.ok("verify", &[m]);
    out.run(
        "verify",
        Command::new(bin()).arg("verify").arg(&corrupt.path),
        1,
    );
    out.ok("convert", &[a, "app:1.0", "app:z", "--compression", "zstd"]);
    out.ok(
        "convert",
        &[m, "multi:1.0", "multi:gz", "--compression", "gzip"],
    );
    out.ok("copy", &[a, b]);
    out.ok("copy", &[m, c, "multi:1.0", "--platform", "linux/amd64"]);
    out.ok("export", &[a, "app:1.0", "-o", &e_tar]);
    out.ok("export", &[m, "multi:1.0", "--format", "oci", "-o", &m_tar]);
    out.ok("inventory", &[b]);
    out.ok("inventory", &[b, "-o", &inv]);
    out.ok("pack", &[a, "-o", &a_tar]);
    out.ok("pack", &[a, "--exclude-inventory", &inv, "-o", &delta]);
    out.ok("unpack", &[&a_tar, &path("unpacked")]);
    out.ok("blob put", &[a, tar]);
    out.ok("untag", &[a, "app:z"]);
    out.ok("gc", &[a, "--dry-run"]);
    out.ok("gc", &[a]);
    out.ok("prune", &[b, "--keep", "1", "--gc"]);
    out.ok("man", &["--dir", &path("man1")]);

    // pull and ls-remote from `ocitool serve`, whose --json lines are kept too.
    let s = serve(["--json", m, art]);
    out.push_line("serve", &s.banner);
    let home = d.join("home");
    let pulled = d.join("pulled");
    let image = format!("{}/multi:1.0", s.addr);
    out.run(
        "pull",
        isolated(
            Command::new(bin()).arg("pull").arg(&pulled).arg(&image),
            &home,
        ),
        0,
    );
    out.run(
        "ls-remote",
        isolated(
            Command::new(bin())
                .arg("ls-remote")
                .arg(format!("{}/app", s.addr)),
            &home,
        ),
        0,
    );
    for _ in 0..100 {
        if !s.lines().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for line in s.lines() {
        out.push_line("serve", &line);
    }

    // push, login, logout against docker-registry.
    if let Some(reg) =
        ocitool_testkit::registry::TestRegistry::start(ocitool_testkit::registry::Mode::Plain)
    {
        let to = format!("{}/site", reg.addr);
        out.run(
            "push",
            isolated(Command::new(bin()).args(["push", m, "--to", &to]), &home),
            0,
        );
        let auth = home.join("auth.json");
        out.run(
            "login",
            isolated(
                Command::new(bin())
                    .args(["login", &reg.addr, "--creds", "tester:s3cret", "--authfile"])
                    .arg(&auth),
                &home,
            ),
            0,
        );
        out.run(
            "logout",
            isolated(
                Command::new(bin())
                    .args(["logout", &reg.addr, "--authfile"])
                    .arg(&auth),
                &home,
            ),
            0,
        );
    }
    out
}

/// Keys that are not ocitool's: documents and maps whose keys are another format's or the
/// image's (README, "Output").
const FOREIGN: &[&str] = &["manifest", "annotations", "labels", "history"];

fn camel(k: &str) -> bool {
    let mut c = k.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase()) && c.all(|c| c.is_ascii_alphanumeric())
}

/// Every key outside the foreign subtrees that is not camelCase, with its path.
fn not_camel(v: &Value, path: &str, bad: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if !camel(k) {
                    bad.push(format!("{path}.{k}"));
                }
                if !FOREIGN.contains(&k.as_str()) {
                    not_camel(v, &format!("{path}.{k}"), bad);
                }
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| not_camel(v, &format!("{path}[{i}]"), bad)),
        _ => {}
    }
}

/// Every property name a schema declares.
fn declared(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = m.get("properties") {
                out.extend(props.keys().cloned());
            }
            m.values().for_each(|v| declared(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| declared(v, out)),
        _ => {}
    }
}

#[test]
fn every_json_output_matches_its_schema_and_uses_camel_case() {
    let d = empty_dir();
    let outputs = run_everything(d.path());
    let registry = ocitool_testkit::registry::available();

    // Every command with JSON output has a schema and was run; every schema is some command's.
    let mut used = BTreeSet::new();
    for words in every_command() {
        let name = words.join(" ");
        if NO_JSON.contains(&name.as_str()) {
            continue;
        }
        let schema = schema_name(&name);
        assert!(
            schemas_dir().join(format!("{schema}.json")).is_file(),
            "`ocitool {name} --json` has no schema {schema}.json"
        );
        used.insert(format!("{schema}.json"));
        let needs_registry = ["push", "login", "logout"].contains(&name.as_str());
        if !needs_registry || registry {
            assert!(
                outputs.0.contains_key(&name),
                "`ocitool {name} --json` was not run"
            );
        }
    }
    let files: BTreeSet<String> = std::fs::read_dir(schemas_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, used, "schema files that no command prints");

    for file in &files {
        let name = file.trim_end_matches(".json");
        let schema = load(name);
        assert!(
            jsonschema::meta::is_valid(&schema),
            "{file} is not a valid JSON Schema"
        );
        let mut names = Vec::new();
        declared(&schema, &mut names);
        let bad: Vec<_> = names
            .iter()
            .filter(|k| !camel(k) && !FOREIGN.contains(&k.as_str()))
            .collect();
        assert!(
            bad.is_empty(),
            "{file} declares keys that are not camelCase: {bad:?}"
        );
    }

    for (command, values) in &outputs.0 {
        let schema = load(&schema_name(command));
        let validator =
            jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{command}: {e}"));
        for v in values {
            let errors: Vec<String> = validator
                .iter_errors(v)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "`ocitool {command} --json` does not match its schema:\n{}\n{v:#}",
                errors.join("\n")
            );
            let mut bad = Vec::new();
            not_camel(v, "", &mut bad);
            assert!(
                bad.is_empty(),
                "`ocitool {command} --json`: keys not camelCase: {bad:?}"
            );
        }
    }
}

/// The schemas are strict enough to catch a renamed or an extra key.
#[test]
fn a_schema_refuses_an_unknown_or_renamed_key() {
    let schema = load("tag");
    let v = jsonschema::validator_for(&schema).unwrap();
    let good = serde_json::json!({"dryRun": false, "refs": [{"ref": "a:1", "digest": format!("sha256:{}", "0".repeat(64)), "previous": null}]});
    assert!(v.is_valid(&good));
    let renamed = serde_json::json!({"dry_run": false, "refs": []});
    assert!(!v.is_valid(&renamed));
    let mut extra = good.clone();
    extra["refs"][0]["extra"] = Value::from(1);
    assert!(!v.is_valid(&extra));
}
