use ocitool_spec::reference::Reference;
use serde_json::json;

use crate::cli::LsRemoteArgs;
use crate::cmd::remote;
use crate::{Ctx, exit};

pub fn run(ctx: &mut Ctx, a: &LsRemoteArgs) -> anyhow::Result<i32> {
    let client = remote::client(ctx, &a.registry)?;
    let r = Reference::parse(&a.image)?;
    let reg = client.for_reference(&r)?;
    let tags = reg.tags(r.repository())?;
    if ctx.global.json {
        ctx.out
            .json(&json!({"repository": r.name(), "tags": tags}))?;
        return Ok(exit::OK);
    }
    for t in &tags {
        ctx.out.line(t)?;
    }
    Ok(exit::OK)
}
