use std::path::Path;

use ocitool_layout::Layout;

use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, path: &Path) -> anyhow::Result<i32> {
    let (layout, created) = Layout::init(path, ctx.layout_options())?;
    if created {
        ctx.committed();
    }
    if ctx.global.json {
        ctx.out
            .json(&serde_json::json!({ "path": layout.root(), "created": created }))?;
    } else if created {
        ctx.info(format!(
            "initialized OCI layout {}",
            layout.root().display()
        ));
    } else {
        ctx.info(format!(
            "{} is already an OCI layout",
            layout.root().display()
        ));
    }
    Ok(exit::OK)
}
