//! `credence federation genesis` and `join`.

use super::FederationCommand;
use crate::node::{self, read_bounded};
use anyhow::{Context, Result, bail};
use credence_protocol::roster::{
    CatalogDocument, MembersDocument, ROSTER_BYTES_MAX, RosterDocument,
};
use std::path::Path;

pub(super) fn federation(command: FederationCommand) -> Result<()> {
    match command {
        FederationCommand::Genesis {
            catalog,
            members,
            keys,
            out,
        } => {
            let catalog: CatalogDocument = parse_toml(&catalog)?;
            let mut members: MembersDocument = parse_toml(&members)?;
            for assignment in &keys {
                let (handle, value) = assignment.split_once('=').with_context(|| {
                    format!("--key {assignment:?}: expected HANDLE=HEX or HANDLE=@DATA_DIR")
                })?;
                let key = match value.strip_prefix('@') {
                    Some(dir) => hex::encode(
                        crate::keyfile::read(&Path::new(dir).join(node::KEY_FILE))?.public_bytes(),
                    ),
                    None => value.to_string(),
                };
                let member = members
                    .members
                    .iter_mut()
                    .find(|m| m.handle == handle)
                    .with_context(|| format!("--key {handle}=...: no member has handle {handle:?} in the members file"))?;
                member.key = key;
            }
            if let Some(missing) = members.members.iter().find(|m| m.key.is_empty()) {
                bail!(
                    "member {:?} has no key: give it with --key {}=HEX or --key {}=@DATA_DIR",
                    missing.name,
                    missing.handle,
                    missing.handle
                );
            }
            let roster = RosterDocument::from_parts(catalog, members).to_roster()?;
            let federation = credence_protocol::roster::Federation::new(roster)?;
            std::fs::write(&out, federation.roster().to_document().to_toml())
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "wrote genesis roster of {} ({} members) to {}",
                federation.roster().name,
                federation.roster().members.len(),
                out.display()
            );
            println!("federation id: {}", federation.id());
        }
        FederationCommand::Join { data, roster } => {
            let federation = node::join(&data.data, &roster)?;
            println!(
                "joined federation {} ({})",
                federation.roster().name,
                federation.id()
            );
        }
    }
    Ok(())
}

fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = read_bounded(path, ROSTER_BYTES_MAX as u64, "TOML document")?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}", path.display()))
}
