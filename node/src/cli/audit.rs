//! `credence audit`: a bundle verified offline, with a progress bar for
//! large ones.

use super::PROGRESS_NOTICES_MIN;
use crate::node::{self, read_bounded};
use crate::render;
use anyhow::{Context, Result};
use credence_protocol::bundle::{self, BUNDLE_BYTES_MAX, Bundle};
use credence_protocol::time::Timestamp;
use std::path::Path;

pub(super) fn read_bundle(path: &Path) -> Result<Bundle> {
    let bytes = read_bounded(path, BUNDLE_BYTES_MAX as u64, "credence bundle")?;
    Bundle::from_bytes(&bytes).with_context(|| format!("{}", path.display()))
}

pub(super) fn audit(path: &Path, roster: Option<&Path>, at: Option<Timestamp>) -> Result<i32> {
    let bundle = read_bundle(path)?;
    if let Some(roster) = roster {
        let expected = node::read_roster(roster)?;
        let found = bundle.federation()?;
        if found.id() != expected.id() {
            println!(
                "the bundle belongs to federation {} ({}), not to {} ({}) of {}\nAUDIT FAILED",
                found.roster().name,
                found.id(),
                expected.roster().name,
                expected.id(),
                roster.display()
            );
            return Ok(1);
        }
    }
    let total = bundle.envelopes.len();
    let bar = if total >= PROGRESS_NOTICES_MIN {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} auditing {pos}/{len} notices [{bar:40}] {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = bundle::audit(&bundle, at.unwrap_or_else(node::now), &mut |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    print!("{}", render::audit(&report));
    Ok(if report.passed() { 0 } else { 1 })
}
