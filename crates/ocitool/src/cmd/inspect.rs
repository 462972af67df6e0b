use ocitool_digest::Digest;
use ocitool_layout::resolve::{self, Target};
use ocitool_layout::{BlobSource, Graph, IndexDoc, Layout, WalkOptions};
use ocitool_spec::media::Kind;
use ocitool_spec::views;
use ocitool_spec::{ConfigView, Document, Platform};
use serde_json::{Value, json};

use crate::cli::InspectArgs;
use crate::cmd::import;
use crate::output::human_size;
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, a: &InspectArgs) -> anyhow::Result<i32> {
    let path = a.layout.as_path();
    let wanted: Option<Platform> = a.platform.as_deref().map(str::parse).transpose()?;
    if import::is_archive(path) {
        // What `inspect` would show after an import into an empty layout.
        let view = import::read_archive(ctx, path, &a.limits)?;
        let generated: Vec<Digest> = view
            .report
            .images
            .iter()
            .filter(|i| i.generated)
            .map(|i| i.digest.clone())
            .collect();
        return show(ctx, a, wanted, &view.blobs, &view.index, &generated);
    }
    let layout = Layout::open(path, ctx.layout_options())?;
    let _lock = layout.read_lock()?;
    let index = layout.read_index()?;
    show(ctx, a, wanted, &layout, &index, &[])
}

/// The document `inspect` shows: REF's, or with `--platform` the manifest it picks.
struct Shown {
    digest: Digest,
    size: u64,
    media_type: String,
    bytes: Vec<u8>,
    doc: Document,
    /// The index the manifest was picked from.
    parent_index: Option<Digest>,
}

/// Shows REF of a layout, or of an archive read into memory; `generated` lists the manifests
/// ocitool made up for an archive of an older docker-save dialect (said as such).
fn show(
    ctx: &mut Ctx,
    a: &InspectArgs,
    wanted: Option<Platform>,
    layout: &dyn BlobSource,
    index: &IndexDoc,
    generated: &[Digest],
) -> anyhow::Result<i32> {
    let shown = pick(layout, index, &a.reference, wanted.as_ref(), a.config)?;
    if a.raw {
        ctx.out.bytes(&shown.bytes)?;
        return Ok(exit::OK);
    }
    match &shown.doc {
        Document::Index(ix) => {
            if a.config {
                anyhow::bail!(
                    "{} is an index; choose a platform with --platform",
                    a.reference
                );
            }
            show_index(ctx, layout, &shown, ix)
        }
        Document::Manifest(m) => {
            let cfg_checked =
                m.config
                    .checked()
                    .map_err(|source| ocitool_layout::Error::Descriptor {
                        location: format!("blob {} config", shown.digest),
                        source,
                    })?;
            let is_image = m.config.kind() == Kind::Config;
            if a.config {
                ctx.out.bytes(&layout.read_json_blob(&cfg_checked)?)?;
                return Ok(exit::OK);
            }
            let cfg: Option<ConfigView> = if is_image {
                let b = layout.read_json_blob(&cfg_checked)?;
                Some(views::parse(&b, "image config").map_err(|source| {
                    ocitool_layout::Error::BlobJson {
                        digest: cfg_checked.digest.clone(),
                        source,
                    }
                })?)
            } else {
                None
            };
            let generated = generated.contains(&shown.digest);
            show_manifest(ctx, &shown, m, cfg.as_ref(), generated)
        }
    }
}

/// Reads REF's document; `--platform` as every command applies it: an index gives its
/// manifest for the platform (or, for --config, its only one or the host's); an image of
/// another platform is an error.
fn pick(
    layout: &dyn BlobSource,
    index: &IndexDoc,
    reference: &str,
    wanted: Option<&Platform>,
    raw_config: bool,
) -> anyhow::Result<Shown> {
    let target = resolve::resolve(layout, index, reference)?;
    let read = |t: &Target| -> anyhow::Result<(Vec<u8>, Document)> {
        let bytes = layout.read_json_blob(&t.checked())?;
        let doc = Document::parse(&bytes, Some(&t.media_type)).map_err(|source| {
            ocitool_layout::Error::BlobJson {
                digest: t.digest.clone(),
                source,
            }
        })?;
        Ok((bytes, doc))
    };
    let (bytes, doc) = read(&target)?;
    let is_index = matches!(doc, Document::Index(_));
    if wanted.is_some() || (is_index && raw_config) {
        let graph = Graph::walk(
            layout,
            &[(reference.to_string(), as_descriptor(&target))],
            WalkOptions {
                read_configs: true,
                check_presence: false,
            },
        );
        let name = Digest::parse(reference).is_err().then_some(reference);
        let picked = resolve::for_platform(&graph, name, &target, wanted, raw_config)?;
        if picked.digest != target.digest {
            let (bytes, doc) = read(&picked)?;
            return Ok(Shown {
                digest: picked.digest,
                size: picked.size,
                media_type: picked.media_type,
                bytes,
                doc,
                parent_index: Some(target.digest),
            });
        }
    }
    Ok(Shown {
        digest: target.digest,
        size: target.size,
        media_type: target.media_type,
        bytes,
        doc,
        parent_index: None,
    })
}

/// An index: its manifests with their platforms and whether each is in the layout.
fn show_index(
    ctx: &mut Ctx,
    layout: &dyn BlobSource,
    shown: &Shown,
    ix: &views::IndexView,
) -> anyhow::Result<i32> {
    let manifests: Vec<Value> = ix
        .manifests
        .iter()
        .map(|m| {
            let mut v = json!({
                "digest": m.digest,
                "mediaType": m.media_type,
                "size": m.size,
            });
            if let Some(p) = &m.platform {
                v["platform"] = Value::from(p.to_string());
            }
            if let Some(a) = &m.artifact_type {
                v["artifactType"] = Value::from(a.as_str());
            }
            if !m.annotations.is_empty() {
                v["annotations"] = json!(m.annotations);
            }
            v["present"] = Value::from(
                Digest::parse(&m.digest)
                    .ok()
                    .and_then(|d| layout.stat_blob(&d).ok().flatten())
                    .is_some(),
            );
            v
        })
        .collect();
    if ctx.global.json {
        let raw_doc: Value = serde_json::from_slice(&shown.bytes).unwrap_or(Value::Null);
        let mut o = json!({
            "digest": shown.digest.to_string(),
            "mediaType": shown.media_type,
            "size": shown.size,
            "manifest": raw_doc,
            "manifests": manifests,
        });
        if !ix.annotations.is_empty() {
            o["annotations"] = json!(ix.annotations);
        }
        ctx.out.json(&o)?;
        return Ok(exit::OK);
    }
    let out = &mut ctx.out;
    out.line(format!("Digest:      {}", shown.digest))?;
    out.line(format!("Media type:  {}", shown.media_type))?;
    out.line(format!("Manifests:   {}", manifests.len()))?;
    for m in &manifests {
        let p = m["platform"].as_str().unwrap_or("-");
        let absent = if m["present"] == Value::Bool(false) {
            "  (not in this layout)"
        } else {
            ""
        };
        out.line(format!(
            "  {:<20} {}  {}{absent}",
            p,
            m["digest"].as_str().unwrap_or(""),
            human_size(m["size"].as_u64().unwrap_or(0))
        ))?;
    }
    print_annotations(out, &ix.annotations)?;
    out.line(format!(
        "Use --platform to inspect one of them, e.g. --platform {}",
        first_platform(&manifests)
    ))?;
    Ok(exit::OK)
}

/// A manifest: its config (for an image, what the config says), layers and history.
fn show_manifest(
    ctx: &mut Ctx,
    shown: &Shown,
    m: &views::ManifestView,
    cfg: Option<&ConfigView>,
    generated: bool,
) -> anyhow::Result<i32> {
    let layers = layers_json(m, cfg);
    let total = shown.size
        + m.config.size.max(0) as u64
        + m.layers.iter().map(|l| l.size.max(0) as u64).sum::<u64>();
    if ctx.global.json {
        let raw_doc: Value = serde_json::from_slice(&shown.bytes).unwrap_or(Value::Null);
        let mut o = json!({
            "digest": shown.digest.to_string(),
            "mediaType": shown.media_type,
            "size": total,
            "manifest": raw_doc,
            "config": config_json(m, cfg),
            "layers": layers,
        });
        if let Some(p) = &shown.parent_index {
            o["index"] = Value::from(p.to_string());
        }
        if generated {
            o["generated"] = Value::Bool(true);
        }
        if let Some(a) = m.artifact_type.as_deref() {
            o["artifactType"] = Value::from(a);
        }
        if let Some(s) = &m.subject {
            o["subject"] = Value::from(s.digest.as_str());
        }
        if !m.annotations.is_empty() {
            o["annotations"] = json!(m.annotations);
        }
        ctx.out.json(&o)?;
        return Ok(exit::OK);
    }
    let out = &mut ctx.out;
    out.line(format!("Digest:      {}", shown.digest))?;
    if let Some(p) = &shown.parent_index {
        out.line(format!("Index:       {p}"))?;
    }
    out.line(format!("Media type:  {}", shown.media_type))?;
    if generated {
        out.line(
            "Generated:   by ocitool (this docker-save dialect has no manifest); `import` stores it under this digest",
        )?;
    }
    if let Some(a) = m.artifact_type.as_deref() {
        out.line(format!("Artifact:    {a}"))?;
    }
    if let Some(s) = &m.subject {
        out.line(format!("Subject:     {}", s.digest))?;
    }
    out.line(format!(
        "Config:      {} ({}, {})",
        m.config.digest,
        m.config.media_type,
        human_size(m.config.size.max(0) as u64)
    ))?;
    if let Some(c) = cfg {
        print_config(out, c)?;
    }
    out.line(format!("Layers:      {}", m.layers.len()))?;
    for l in &layers {
        out.line(format!(
            "  {}  {:>9}  {}",
            l["digest"].as_str().unwrap_or(""),
            human_size(l["size"].as_u64().unwrap_or(0)),
            l["mediaType"].as_str().unwrap_or("")
        ))?;
        if let Some(d) = l["diffId"].as_str()
            && d != l["digest"].as_str().unwrap_or("")
        {
            out.line(format!("      diff_id {d}"))?;
        }
    }
    if let Some(c) = cfg {
        print_history(out, c)?;
    }
    print_annotations(out, &m.annotations)?;
    out.line(format!("Total size:  {}", human_size(total)))?;
    Ok(exit::OK)
}

/// The layers for `--json` (and the text lines): digest, media type, size, diff_id.
fn layers_json(m: &views::ManifestView, cfg: Option<&ConfigView>) -> Vec<Value> {
    m.layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut v = json!({"digest": l.digest, "mediaType": l.media_type, "size": l.size});
            if let Some(d) = cfg.and_then(|c| c.rootfs.diff_ids.get(i)) {
                v["diffId"] = Value::from(d.as_str());
            }
            if !l.annotations.is_empty() {
                v["annotations"] = json!(l.annotations);
            }
            if !l.urls.is_empty() {
                v["urls"] = json!(l.urls);
            }
            v
        })
        .collect()
}

/// The config for `--json`: its descriptor, and for an image what the config says.
fn config_json(m: &views::ManifestView, cfg: Option<&ConfigView>) -> Value {
    let mut config_json = json!({
        "digest": m.config.digest,
        "mediaType": m.config.media_type,
        "size": m.config.size,
    });
    if let Some(c) = cfg {
        let o = config_json.as_object_mut().expect("object");
        o.insert("platform".into(), Value::from(c.platform().to_string()));
        o.insert("os".into(), Value::from(c.os.as_str()));
        o.insert("architecture".into(), Value::from(c.architecture.as_str()));
        if let Some(v) = &c.variant {
            o.insert("variant".into(), Value::from(v.as_str()));
        }
        o.insert("created".into(), json!(c.created));
        o.insert("author".into(), json!(c.author));
        o.insert("entrypoint".into(), json!(c.config.entrypoint));
        o.insert("cmd".into(), json!(c.config.cmd));
        o.insert("env".into(), json!(c.config.env));
        o.insert("labels".into(), json!(c.config.labels));
        o.insert("workingDir".into(), json!(c.config.working_dir));
        o.insert("user".into(), json!(c.config.user));
        o.insert(
            "exposedPorts".into(),
            json!(c.config.exposed_ports.keys().collect::<Vec<_>>()),
        );
        o.insert("diffIds".into(), json!(c.rootfs.diff_ids));
        o.insert("history".into(), json!(c.history));
    }
    config_json
}

/// What an image config says, as text lines.
fn print_config(out: &mut crate::output::Out, c: &ConfigView) -> anyhow::Result<()> {
    out.line(format!("Platform:    {}", c.platform()))?;
    if let Some(v) = &c.created {
        out.line(format!("Created:     {v}"))?;
    }
    if let Some(v) = c.author.as_deref().filter(|s| !s.is_empty()) {
        out.line(format!("Author:      {v}"))?;
    }
    if let Some(v) = &c.config.entrypoint {
        out.line(format!("Entrypoint:  {}", json!(v)))?;
    }
    if let Some(v) = &c.config.cmd {
        out.line(format!("Cmd:         {}", json!(v)))?;
    }
    if let Some(v) = c.config.working_dir.as_deref().filter(|s| !s.is_empty()) {
        out.line(format!("WorkingDir:  {v}"))?;
    }
    if let Some(v) = c.config.user.as_deref().filter(|s| !s.is_empty()) {
        out.line(format!("User:        {v}"))?;
    }
    if !c.config.exposed_ports.is_empty() {
        out.line(format!(
            "Ports:       {}",
            c.config
                .exposed_ports
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
    }
    if !c.config.env.is_empty() {
        out.line("Env:")?;
        for e in &c.config.env {
            out.line(format!("  {e}"))?;
        }
    }
    if !c.config.labels.is_empty() {
        out.line("Labels:")?;
        for (k, v) in &c.config.labels {
            out.line(format!("  {k}={v}"))?;
        }
    }
    Ok(())
}

/// The image's history, one line per step, long commands cut at 90 characters.
fn print_history(out: &mut crate::output::Out, c: &ConfigView) -> anyhow::Result<()> {
    if c.history.is_empty() {
        return Ok(());
    }
    out.line("History:")?;
    for h in &c.history {
        let by = h.created_by.as_deref().unwrap_or("").replace('\n', " ");
        let by: String = if by.chars().count() > 90 {
            by.chars().take(89).chain(['…']).collect()
        } else {
            by
        };
        let empty = if h.empty_layer { " (no layer)" } else { "" };
        out.line(format!(
            "  {}  {by}{empty}",
            h.created.as_deref().unwrap_or("-")
        ))?;
    }
    Ok(())
}

fn print_annotations(
    out: &mut crate::output::Out,
    a: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    if !a.is_empty() {
        out.line("Annotations:")?;
        for (k, v) in a {
            out.line(format!("  {k}={v}"))?;
        }
    }
    Ok(())
}

fn first_platform(manifests: &[Value]) -> String {
    manifests
        .iter()
        .find_map(|m| m["platform"].as_str().filter(|p| !p.starts_with("unknown")))
        .unwrap_or("linux/amd64")
        .to_string()
}

fn as_descriptor(t: &Target) -> ocitool_spec::Descriptor {
    ocitool_spec::Descriptor {
        media_type: t.media_type.clone(),
        digest: t.digest.to_string(),
        size: t.size as i64,
        ..Default::default()
    }
}
