//! `credence check`: the node's views against a fold of every listing
//! ([`crate::keeper::check`]), with the node stopped.

use super::operator::Operator;
use crate::keeper;
use crate::store::ViewsStore;
use anyhow::{Result, bail};
use credence_protocol::store::Store;
use serde::Serialize;
use std::path::Path;

/// What `credence check` found.
#[derive(Debug, Serialize)]
struct Checked {
    /// Listings held.
    listings: usize,
    /// The views were cleared and derived again first.
    repaired: bool,
    /// Each difference between the views and the fold (at most
    /// [`keeper::CHECK_DIFFERENCES_MAX`]).
    differences: Vec<String>,
}

/// Checks (and with `repair`, first derives again) the views of the node
/// in `dir`; exit code 0 when they agree with the fold, 1 when they differ.
pub(super) fn run(dir: &Path, repair: bool, json: bool) -> Result<i32> {
    let node = match Operator::open(dir)? {
        Operator::Running(_) => bail!(
            "the node of {} is running; stop it first (the check reads every listing of its store, which the node holds open)",
            dir.display()
        ),
        Operator::Local(node) => node,
    };
    let t = crate::node::now();
    let replica = node.replica();
    if repair {
        replica.store().clear_views()?;
    }
    let mut keeper = node.keeper()?;
    keeper.catch_up(replica, t)?;
    let differences = keeper::check(replica, &node.author(), &node.implements(), t)?;
    replica.store().views().sync_later()()?;
    let checked = Checked {
        listings: replica.store().listings()?.len(),
        repaired: repair,
        differences,
    };
    super::commands::emit(json, &checked, |c| {
        let mut out = String::new();
        if c.repaired {
            out.push_str("views cleared and derived again from the notices\n");
        }
        for difference in &c.differences {
            out.push_str(&format!("differs: {difference}\n"));
        }
        if c.differences.is_empty() {
            out.push_str(&format!(
                "views agree with the fold of all {} listings\n",
                c.listings
            ));
        } else {
            out.push_str(&format!(
                "{} difference(s) over {} listings; `credence check --repair` derives the views again\n",
                c.differences.len(),
                c.listings
            ));
        }
        out
    })?;
    Ok(i32::from(!checked.differences.is_empty()))
}
