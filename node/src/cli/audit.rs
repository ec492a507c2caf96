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

/// `credence receipt verify`: 0 valid, 1 invalid, 2 unreadable.
pub(super) fn verify_receipt(
    path: &Path,
    roster: &Path,
    versions: &[std::path::PathBuf],
) -> Result<i32> {
    use credence_protocol::receipt::{RECEIPT_BYTES_MAX, Receipt, ReceiptError};
    let bytes = read_bounded(path, RECEIPT_BYTES_MAX as u64, "credence receipt")?;
    let genesis = node::read_roster(roster)?;
    let versions = versions
        .iter()
        .map(|path| {
            let bytes = read_bounded(
                path,
                credence_protocol::governance::SIGNED_VERSION_BYTES_MAX as u64 + 64,
                "roster version",
            )?;
            credence_protocol::governance::proposal::decode_proposal(&bytes)
                .with_context(|| format!("{}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let federation = node::federation_with(genesis, versions)?;
    let verified = Receipt::from_bytes(&bytes).and_then(|receipt| receipt.verify(&federation));
    match verified {
        Ok(report) => {
            print!("{}", render::receipt(&federation, &report));
            println!("RECEIPT VALID");
            Ok(0)
        }
        Err(error @ ReceiptError::Invalid(_)) => {
            println!("{}: {error}\nRECEIPT INVALID", path.display());
            Ok(1)
        }
        Err(error @ ReceiptError::Unreadable(_)) => {
            eprintln!("error: {}: {error}", path.display());
            Ok(2)
        }
    }
}

/// The receipt of a query's answer as the API gave it: the signed request
/// and every signed answer, checked before it is written.
pub(super) fn write_receipt(
    path: &Path,
    answer: &crate::views::QueryView,
    federation: &credence_protocol::roster::Federation,
) -> Result<()> {
    let bytes = receipt_bytes(answer, federation)?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The receipt of a query's answer as the API gave it, checked: the
/// signed request and every signed answer with their checkpoints.
pub(crate) fn receipt_bytes(
    answer: &crate::views::QueryView,
    federation: &credence_protocol::roster::Federation,
) -> Result<Vec<u8>> {
    use credence_protocol::query::{ANSWER_BYTES_MAX, QUERY_BYTES_MAX, Signed};
    use credence_protocol::receipt::Receipt;
    let signed = |hex_text: &str, what: &str, max: usize| -> Result<Signed> {
        let bytes =
            hex::decode(hex_text).with_context(|| format!("the node's {what} is not hex"))?;
        anyhow::ensure!(bytes.len() <= max, "the node's {what} is too large");
        Signed::decode::<{ ANSWER_BYTES_MAX + 128 }>(&bytes)
            .with_context(|| format!("the node's {what} does not decode"))
    };
    let request = signed(
        &answer.signed_request,
        "signed request",
        QUERY_BYTES_MAX + 64,
    )?;
    let answers = answer
        .answers
        .iter()
        .map(|a| signed(&a.signed_answer, "signed answer", ANSWER_BYTES_MAX + 128))
        .collect::<Result<Vec<_>>>()?;
    anyhow::ensure!(
        answer.checkpoints.len() <= credence_protocol::query::QUERY_CHECKPOINTS_MAX,
        "the node gave {} checkpoints, more than a query offers",
        answer.checkpoints.len()
    );
    let checkpoints = answer
        .checkpoints
        .iter()
        .map(|text| {
            credence_crypto::note::Note::parse(text.as_bytes())
                .with_context(|| "a checkpoint the node gave is not a signed note")
        })
        .collect::<Result<Vec<_>>>()?;
    let receipt = Receipt::of_signed(federation.id(), request, answers, &checkpoints);
    receipt
        .verify(federation)
        .with_context(|| "the answers do not make a valid receipt")?;
    Ok(receipt.to_bytes()?)
}
