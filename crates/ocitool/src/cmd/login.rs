use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use ocitool_registry::creds::{Credential, Secret, Source, Store};
use ocitool_spec::reference::{DOCKER_HUB, DOCKER_HUB_API, DOCKER_HUB_LEGACY};
use serde_json::json;

use crate::cli::{LoginArgs, LogoutArgs};
use crate::cmd::remote;
use crate::{Ctx, exit};

/// `docker.io`, `index.docker.io` and `registry-1.docker.io` are one registry.
fn registry_name(r: &str) -> String {
    let r = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
        .unwrap_or(r);
    let host = r.split('/').next().unwrap_or(r);
    match host {
        DOCKER_HUB_LEGACY | DOCKER_HUB_API => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

fn api_host(name: &str) -> &str {
    if name == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        name
    }
}

pub fn login(ctx: &mut Ctx, a: &LoginArgs) -> anyhow::Result<i32> {
    let name = registry_name(&a.registry);
    let cred = if let Some(c) = &a.flags.creds {
        Credential::from_user_pass(c)?
    } else {
        let username = match &a.username {
            Some(u) => u.clone(),
            None if std::io::stdin().is_terminal() && !a.password_stdin => {
                eprint!("Username: ");
                let _ = std::io::stderr().flush();
                let mut u = String::new();
                std::io::stdin().lock().read_line(&mut u)?;
                u.trim().to_string()
            }
            None => anyhow::bail!("give the user name with -u USER (or --creds USER:PASSWORD)"),
        };
        let password = if a.password_stdin || !std::io::stdin().is_terminal() {
            let mut p = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut p)
                .context("read the password from standard input")?;
            p.trim_end_matches(['\n', '\r']).to_string()
        } else {
            anyhow::bail!(
                "give the password on standard input with --password-stdin (ocitool does not echo-less prompt)"
            )
        };
        if username.is_empty() || password.is_empty() {
            anyhow::bail!("the user name and the password must not be empty");
        }
        Credential::Basic {
            username,
            password: Secret::new(password),
        }
    };
    let mut flags = a.flags.clone();
    flags.creds = None;
    flags.creds_stdin = false;
    let mut client_options = remote::client(ctx, &flags)?.options().clone();
    client_options.creds = Some(cred.clone());
    let client = ocitool_registry::Client::new(client_options);
    let reg = client.registry(&name, api_host(&name), "")?;
    reg.check_credentials()?;
    let store = Store {
        auth_file: a.flags.authfile.clone(),
        helper_path: None,
    };
    let src = store.store(&name, &cred)?;
    let place = match &src {
        Source::File(p) => p.display().to_string(),
        Source::Helper(h) => format!("docker-credential-{h}"),
        Source::Explicit => String::new(),
    };
    if ctx.global.json {
        ctx.out
            .json(&json!({"registry": name, "username": cred.username(), "storedIn": place}))?;
    } else {
        ctx.info(format!(
            "Login Succeeded: {} on {name} (stored in {place})",
            cred.username()
        ));
    }
    Ok(exit::OK)
}

pub fn logout(ctx: &mut Ctx, a: &LogoutArgs) -> anyhow::Result<i32> {
    let name = registry_name(&a.registry);
    let store = Store {
        auth_file: a.authfile.clone(),
        helper_path: None,
    };
    if !store.remove(&name)? {
        return Err(ocitool_registry::Error::NotLoggedIn {
            registry: name,
            files: vec![store.primary().display().to_string()],
        }
        .into());
    }
    if ctx.global.json {
        ctx.out.json(
            &json!({"registry": name, "removedFrom": store.primary().display().to_string()}),
        )?;
    } else {
        ctx.info(format!(
            "Removed login credentials for {name} from {}",
            store.primary().display()
        ));
    }
    Ok(exit::OK)
}
