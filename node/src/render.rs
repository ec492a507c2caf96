//! Human-readable output of listings, tasks and audit reports.

use credence_protocol::bundle::AuditReport;
use credence_protocol::fold::{ListingState, Task, TaskAction};
use credence_protocol::roster::Federation;
use std::fmt::Write;

/// A listing with its status, effective fields, objections, feedback and,
/// when `history` is set, every notice about it.
pub fn listing(federation: &Federation, state: &ListingState, history: bool) -> String {
    let l = &state.listing;
    let mut out = String::new();
    let _ = writeln!(out, "listing {}", state.id);
    let _ = writeln!(
        out,
        "  status {} (enforceable: {}, published: {}, shared: {})",
        state.status.name(),
        yes(state.enforceable),
        yes(state.published),
        yes(state.shared)
    );
    let _ = writeln!(
        out,
        "  subject {} {} ({:?})",
        l.subject.id, l.subject.name, l.subject.kind
    );
    let _ = writeln!(
        out,
        "  {} list, category {}, severity {:?}, issued by {}",
        l.list.name(),
        l.category,
        l.severity,
        federation.name_of(&state.issuer)
    );
    let _ = writeln!(out, "  reason: {}", l.reason);
    let _ = writeln!(
        out,
        "  legal basis: {}; decision {}",
        l.legal_basis, l.document_number
    );
    let _ = writeln!(
        out,
        "  measures: {}",
        if l.measures.is_empty() {
            "none".into()
        } else {
            l.measures.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "  effective {}, published until {}, shared until {}, repairable from {}, {:?}",
        l.effective_at, l.publish_until, l.share_until, l.repair_from, l.classification
    );
    for objection in &state.objections {
        let status = match objection.ruling {
            Some((ruling, true)) => format!("upheld by {}", ruling.short()),
            Some((ruling, false)) => format!("rejected by {}", ruling.short()),
            None if objection.overdue => format!("OPEN, OVERDUE since {}", objection.respond_by),
            None => format!("open, respond by {}", objection.respond_by),
        };
        let _ = writeln!(
            out,
            "  objection {} by {}: {status}",
            objection.id.short(),
            federation.name_of(&objection.author)
        );
    }
    for feedback in &state.feedback {
        let _ = writeln!(
            out,
            "  feedback {}: {} {}",
            federation.name_of(&feedback.author),
            feedback.measure,
            feedback.action.name()
        );
    }
    if history {
        let _ = writeln!(out, "  history:");
        for entry in &state.history {
            let _ = writeln!(
                out,
                "    {}  {} #{}  {}  {}",
                entry.issued_at,
                federation.name_of(&entry.author),
                entry.seq,
                entry.id.short(),
                entry.summary
            );
        }
    }
    out
}

/// A task list.
pub fn tasks(tasks: &[(Task, ListingState)]) -> String {
    if tasks.is_empty() {
        return "no tasks\n".into();
    }
    let mut out = String::new();
    for (task, state) in tasks {
        let action = match task.action {
            TaskAction::Apply => "APPLY",
            TaskAction::Lift => "LIFT ",
        };
        let _ = writeln!(
            out,
            "{action} {:<22} listing {} {} {} ({})",
            task.measure,
            task.listing.short(),
            state.listing.subject.id,
            state.listing.subject.name,
            state.status.name()
        );
    }
    out
}

/// An audit report.
pub fn audit(report: &AuditReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "federation {} ({})",
        report.federation_name, report.federation
    );
    let _ = writeln!(out, "envelopes: {}", report.envelopes);
    let _ = writeln!(out, "authors:");
    for author in &report.authors {
        let _ = writeln!(
            out,
            "  {:<40} {:>8} notices  root {}",
            author.name, author.notices, author.root
        );
    }
    let statuses: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, n)| format!("{status} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "listings: {}",
        if statuses.is_empty() {
            "none".into()
        } else {
            statuses.join(", ")
        }
    );
    let _ = writeln!(out, "forks: {}", report.forks.len());
    for fork in &report.forks {
        let _ = writeln!(
            out,
            "  FORK author {} seq {}: {} and {}",
            fork.author, fork.seq, fork.first, fork.second
        );
    }
    let _ = writeln!(out, "violations: {}", report.violations.len());
    for violation in &report.violations {
        let place = violation
            .place
            .map(|(author, seq)| format!(" ({} seq {seq})", author.short()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  [{}] notice {}{place}: {}",
            violation.rule, violation.notice, violation.message
        );
    }
    let _ = writeln!(
        out,
        "{}",
        if report.passed() {
            "AUDIT PASSED"
        } else {
            "AUDIT FAILED"
        }
    );
    out
}

fn yes(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// A running node's status (the API's JSON) for a terminal.
pub fn status(status: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}), federation {}",
        text(&status["name"]),
        text(&status["authority"]),
        text(&status["federation"])
    );
    let _ = writeln!(
        out,
        "  ready: {}; notices {}; pending {}; forks {}; unpublished {}",
        yes(status["ready"].as_bool().unwrap_or(false)),
        status["notices"],
        status["pending"],
        status["forks"],
        status["unpublished"]
    );
    if status["ready"].as_bool() != Some(true) {
        let _ = writeln!(
            out,
            "  issuing: {} ({})",
            text(&status["issuing"]),
            text(&status["issuing_detail"])
        );
    }
    let peers = status["peers"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "  peers ({}):", peers.len());
    for peer in &peers {
        let _ = writeln!(
            out,
            "    {}  {}",
            text(&peer["name"]),
            text(&peer["peer_id"])
        );
    }
    let _ = writeln!(out, "  logs:");
    for author in status["authors"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "    {:<32} seq {:>8}  lag {:>6}",
            text(&author["name"]),
            author["seq"],
            author["lag"]
        );
    }
    out
}

/// A query result (the API's JSON) for a terminal.
pub fn query(subject: &str, result: &serde_json::Value) -> String {
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|n| n.as_str().unwrap_or("?").to_string())
            .collect()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "query {} about {subject}",
        result["request_id"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        out,
        "  answered (signed): {}",
        names(&result["answered_by"]).join(", ")
    );
    for missing in result["not_answered"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  no answer from {}: {}",
            missing["name"].as_str().unwrap_or("?"),
            missing["reason"].as_str().unwrap_or("?")
        );
    }
    let listings = result["listings"].as_array().cloned().unwrap_or_default();
    if listings.is_empty() {
        let _ = writeln!(out, "  no shared listings");
    }
    for listing in &listings {
        let _ = writeln!(
            out,
            "  {} {} list, {} by {}: {} (enforceable: {})",
            listing["id"].as_str().unwrap_or("?"),
            listing["listing"]["list"].as_str().unwrap_or("?"),
            listing["listing"]["category"].as_str().unwrap_or("?"),
            listing["issuer_name"].as_str().unwrap_or("?"),
            listing["status"].as_str().unwrap_or("?"),
            yes(listing["enforceable"].as_bool().unwrap_or(false))
        );
    }
    out
}
