//! `credence report`: a subject's report, made through the running node's
//! API (an account with the audit permission: the node's own) or on the
//! data directory directly, and `credence report verify FILE`, which
//! checks one offline against the roster chain.

use super::operator::{Operator, running_federation};
use super::{ReportArgs, ReportVerify};
use crate::render;
use crate::views::ReportView;
use anyhow::{Context, Result, bail};
use credence_protocol::model::SubjectKind;
use std::path::Path;

/// Largest report file `verify` reads.
const REPORT_FILE_BYTES_MAX: u64 = 64 << 20;

pub(super) fn report(args: ReportArgs, json: bool) -> Result<i32> {
    if let Some(ReportVerify::Verify { data, file }) = args.verify {
        return verify(&data.data, &file, json);
    }
    let (Some(dir), Some(subject)) = (args.data, args.subject) else {
        bail!("give --data DIR and --subject ID (or: credence report verify --data DIR FILE)");
    };
    let stated =
        crate::daemon::Stated::new(args.purpose, args.legal_basis).map_err(anyhow::Error::msg)?;
    let kind: SubjectKind = args.subject_kind.into();
    let operator = Operator::open(&dir)?;
    let view = operator.report(kind, &subject, &stated)?;
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&view)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, render::report_html(&view))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render::report(&view));
        for (what, path) in [("JSON", &args.out), ("HTML", &args.html)] {
            if let Some(path) = path {
                println!("{what} written to {}", path.display());
            }
        }
    }
    Ok(0)
}

fn verify(dir: &Path, file: &Path, json: bool) -> Result<i32> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if size > REPORT_FILE_BYTES_MAX {
        bail!(
            "{} is {size} bytes: a report file is at most {REPORT_FILE_BYTES_MAX}",
            file.display()
        );
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let view: ReportView = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a report's JSON", file.display()))?;
    // The member's key comes from the roster chain this node holds, not
    // from the report.
    let federation = match Operator::open(dir)? {
        Operator::Local(node) => node.federation().clone(),
        Operator::Running(client) => running_federation(&client, dir)?,
    };
    match view.verify(&federation) {
        Ok(body) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "valid": true,
                        "listings": body.listings.len(),
                        "reads": body.reads.len(),
                        "signed_by": view.made_by,
                    })
                );
            } else {
                println!(
                    "REPORT VALID: signed by {} at {}; {} listing(s) and {} consultation(s), each the one the signature covers",
                    view.made_by,
                    credence_protocol::time::Timestamp(view.made_at),
                    body.listings.len(),
                    body.reads.len()
                );
            }
            Ok(0)
        }
        Err(problem) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"valid": false, "problem": problem})
                );
            } else {
                println!("REPORT INVALID: {problem}");
            }
            Ok(1)
        }
    }
}
