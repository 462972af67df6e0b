pub mod blob;
pub mod convert;
pub mod copy;
pub mod docs;
pub mod export;
pub mod gc;
pub mod import;
pub mod init;
pub mod inspect;
pub mod lifecycle;
pub mod login;
pub mod ls;
pub mod ls_remote;
pub mod pack;
pub mod pull;
pub mod push;
pub mod remote;
pub mod serve;
pub mod tag;
pub mod untag;
pub mod verify;

/// The refs REF arguments select in `layout` (`REPO:*`, and with `--all-tags` every argument
/// a repository), through the one [`ocitool_layout::resolve::select_refs`]; none given stays
/// none (the command's "every ref").
pub fn selected_refs(
    layout: &ocitool_layout::Layout,
    refs: &[String],
    all_tags: bool,
) -> anyhow::Result<Vec<String>> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let index = layout.read_index()?;
    Ok(ocitool_layout::resolve::select_refs(
        layout, &index, refs, all_tags,
    )?)
}
