//! Human-readable output of the API's typed answers (`crate::views`) and
//! of audit reports: the same text whether the answer came from a running
//! node or from a data directory opened directly.

use crate::views::{ListingView, PeersView, QueryView, ReportView, Status, SubjectView, TasksView};
use credence_protocol::bundle::AuditReport;
use credence_protocol::time::Timestamp;
use std::fmt::Write;

/// A listing with its status, effective fields, objections, feedback and,
/// when `history` is set, every notice about it.
pub fn listing(view: &ListingView, history: bool) -> String {
    let l = &view.listing;
    let mut out = String::new();
    let _ = writeln!(out, "listing {}", view.id);
    if let Some(role) = view.linked_as {
        let _ = writeln!(
            out,
            "  names the person looked up as its {}",
            role.name().replace('-', " ")
        );
    }
    let _ = writeln!(
        out,
        "  status {} (enforceable: {}, published: {}, shared: {})",
        view.status,
        yes(view.enforceable),
        yes(view.published),
        yes(view.shared)
    );
    let _ = writeln!(
        out,
        "  subject {} {} ({})",
        l.subject.id,
        l.subject.name,
        l.subject.kind.name()
    );
    let _ = writeln!(
        out,
        "  {} list, category {}, severity {}, issued by {}",
        l.list.name(),
        l.category,
        credence_protocol::validate::severity_name(l.severity),
        view.issuer_name
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
        "  effective {}, published until {}, shared until {}, repairable from {}, level {}",
        l.effective_at,
        l.publish_until,
        l.share_until,
        l.repair_from,
        l.classification.name()
    );
    if !l.readers.is_empty() {
        let readers: Vec<String> = l.readers.iter().map(|r| r.short()).collect();
        let _ = writeln!(out, "  shared with: {}", readers.join(", "));
    }
    for person in &l.linked {
        let _ = writeln!(
            out,
            "  {}: {} {}",
            person.role.name().replace('-', " "),
            person.id,
            person.name
        );
    }
    for objection in &view.objections {
        let respond_by = Timestamp(objection.respond_by);
        let status = match &objection.ruling {
            Some(ruling) if ruling.upheld => format!("upheld by {}", ruling.id.short()),
            Some(ruling) => format!("rejected by {}", ruling.id.short()),
            None if objection.overdue => format!("OPEN, OVERDUE since {respond_by}"),
            None => format!("open, respond by {respond_by}"),
        };
        let _ = writeln!(
            out,
            "  objection {} by {}: {status}",
            objection.id.short(),
            objection.author_name
        );
    }
    for feedback in &view.feedback {
        let _ = writeln!(
            out,
            "  feedback {}: {} {}",
            feedback.author_name, feedback.measure, feedback.action
        );
    }
    if let (true, Some(entries)) = (history, &view.history) {
        let _ = writeln!(out, "  history:");
        for entry in entries {
            let _ = writeln!(
                out,
                "    {}  {} #{}  {}  {}",
                Timestamp(entry.issued_at),
                entry.author_name,
                entry.seq,
                entry.id.short(),
                entry.summary
            );
        }
    }
    out
}

/// The listings a name search found.
pub fn search(view: &crate::views::SearchView) -> String {
    let mut out = format!(
        "{} found for {:?}{}\n",
        match view.listings.len() {
            1 => "1 listing".to_string(),
            n => format!("{n} listings"),
        },
        view.name,
        if view.more {
            " (more match: search with a longer name)"
        } else {
            ""
        }
    );
    for listing in &view.listings {
        out.push_str(&self::listing(listing, false));
    }
    out
}

/// A subject's listings.
pub fn subject(view: &SubjectView) -> String {
    let mut out = String::new();
    if let Some(problem) = &view.identifier_problem {
        let _ = writeln!(out, "warning: {problem}");
    }
    if view.listings.is_empty() {
        let _ = writeln!(out, "no listings for {}", view.subject);
    }
    if view.enforceable_black > 0 {
        let _ = writeln!(
            out,
            "{}: {} enforceable blacklist listing(s): joint punishment applies",
            view.subject, view.enforceable_black
        );
    }
    for state in &view.listings {
        out.push_str(&listing(state, false));
    }
    out
}

/// A subject's report, as text.
pub fn report(view: &ReportView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "report on {} {} made by {} at {}{}",
        view.subject_kind,
        view.subject,
        view.made_by,
        Timestamp(view.made_at),
        if view.truncated {
            " (truncated: more than a report shows)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "{} listing(s):", view.listings.len());
    for state in &view.listings {
        out.push_str(&listing(state, true));
    }
    let _ = writeln!(
        out,
        "{} consultation(s) of these records on this node:",
        view.reads.len()
    );
    for read in &view.reads {
        let _ = writeln!(
            out,
            "  #{} {} {} by {}: {} (basis: {})",
            read.index,
            Timestamp(read.at),
            read.kind,
            read.account
                .as_deref()
                .or(read.requester.as_deref())
                .unwrap_or("-"),
            read.purpose,
            read.legal_basis
        );
    }
    let _ = writeln!(
        out,
        "signed by {} ({}); register at size {}",
        view.made_by,
        view.member.short(),
        view.register_size
    );
    out
}

/// Text for an HTML page: `&`, `<`, `>`, `"` and `'` escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A subject's report as a printable HTML page (no script, no external
/// resource): the listings with their histories, the consultations, and
/// the signature to check with `credence report verify`.
pub fn report_html(view: &ReportView) -> String {
    let mut out = String::new();
    let title = format!("Credit record of {} {}", view.subject_kind, view.subject);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n\
         <style>body{{font-family:serif;margin:2em;max-width:60em}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border:1px solid #888;padding:.2em .4em;text-align:left;vertical-align:top}}\
         code{{word-break:break-all}}@media print{{a{{color:inherit}}}}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        out,
        "<p>Made by {} at {}. {} listing(s) name this subject; its records were consulted {} time(s) on this node.{}</p>",
        escape(&view.made_by),
        Timestamp(view.made_at),
        view.listings.len(),
        view.reads.len(),
        if view.truncated {
            " This report is truncated: the subject has more than a report shows."
        } else {
            ""
        }
    );
    for state in &view.listings {
        let l = &state.listing;
        let _ = writeln!(
            out,
            "<h2>{} list: {} ({})</h2>\n<table>",
            escape(l.list.name()),
            escape(&l.category),
            escape(&state.status)
        );
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(name), value);
        };
        row("Listing", format!("<code>{}</code>", state.id));
        if let Some(role) = state.linked_as {
            row(
                "Names the subject as",
                escape(&role.name().replace('-', " ")),
            );
        }
        row(
            "Listed",
            escape(&format!(
                "{} {} ({})",
                l.subject.id,
                l.subject.name,
                l.subject.kind.name()
            )),
        );
        row("Issued by", escape(&state.issuer_name));
        row("Reason", escape(&l.reason));
        row(
            "Legal basis",
            escape(&format!(
                "{}; decision {}",
                l.legal_basis, l.document_number
            )),
        );
        row("Measures", escape(&l.measures.join(", ")));
        row(
            "Periods",
            escape(&format!(
                "effective {}, published until {}, shared until {}, repairable from {}",
                l.effective_at, l.publish_until, l.share_until, l.repair_from
            )),
        );
        row("Level", escape(l.classification.name()));
        for person in &l.linked {
            row(
                &person.role.name().replace('-', " "),
                escape(&format!("{} {}", person.id, person.name)),
            );
        }
        for objection in &state.objections {
            let ruling = match &objection.ruling {
                Some(r) if r.upheld => "upheld".to_string(),
                Some(_) => "rejected".to_string(),
                None => format!("open, respond by {}", Timestamp(objection.respond_by)),
            };
            row(
                "Objection",
                escape(&format!("by {}: {ruling}", objection.author_name)),
            );
        }
        for feedback in &state.feedback {
            row(
                "Measure applied",
                escape(&format!(
                    "{} {} by {}",
                    feedback.measure, feedback.action, feedback.author_name
                )),
            );
        }
        let _ = writeln!(
            out,
            "</table>\n<h3>History</h3>\n<table><tr><th>When</th><th>By</th><th>What</th></tr>"
        );
        for entry in state.history.iter().flatten() {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                Timestamp(entry.issued_at),
                escape(&entry.author_name),
                escape(&entry.summary)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("<h2>Consultations of these records</h2>\n<table><tr><th>#</th><th>When</th><th>What</th><th>Who</th><th>Purpose</th><th>Legal basis</th></tr>\n");
    for read in &view.reads {
        let who = read
            .account
            .as_deref()
            .or(read.requester.as_deref())
            .unwrap_or("-");
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            read.index,
            Timestamp(read.at),
            escape(&read.kind),
            escape(who),
            escape(&read.purpose),
            escape(&read.legal_basis)
        );
    }
    let _ = writeln!(
        out,
        "</table>\n<h2>Signature</h2>\n<p>Signed by {} (<code>{}</code>). Check it with <code>credence report verify</code> on the JSON form of this report.</p>\n<p>Body: <code>{}</code></p>\n<p>Signature: <code>{}</code></p>\n</body></html>",
        escape(&view.made_by),
        view.member,
        view.body,
        view.signature
    );
    out
}

/// A task list.
pub fn tasks(view: &TasksView) -> String {
    if view.tasks.is_empty() {
        return "no tasks\n".into();
    }
    let mut out = String::new();
    for task in &view.tasks {
        let action = if task.action == "apply" {
            "APPLY"
        } else {
            "LIFT "
        };
        let _ = writeln!(
            out,
            "{action} {:<22} listing {} {} {} ({})",
            task.measure,
            task.listing.short(),
            task.subject,
            task.subject_name,
            task.status
        );
    }
    out
}

/// A verified query receipt.
pub fn receipt(
    federation: &credence_protocol::roster::Federation,
    report: &credence_protocol::receipt::ReceiptReport,
) -> String {
    let mut out = String::new();
    let request = &report.request;
    let _ = writeln!(
        out,
        "query by {} at {} about {}\n  purpose: {}\n  legal basis: {}",
        federation.name_of(&request.requester),
        request.issued_at,
        request.subject_id,
        request.purpose,
        request.legal_basis
    );
    let _ = writeln!(out, "answers: {}", report.answers.len());
    for (responder, listings, enforceable) in &report.answers {
        let _ = writeln!(
            out,
            "  {:<40} {listings} listings, {enforceable} enforceable (signature, checkpoints, proofs and statuses verified)",
            federation.name_of(responder)
        );
    }
    let _ = writeln!(
        out,
        "listings, folded from the proven notices at the request's time: {}",
        report.listings.len()
    );
    for listing in &report.listings {
        let _ = writeln!(
            out,
            "  {} by {}: {}{} ({})",
            listing.state.id,
            federation.name_of(&listing.state.issuer),
            listing.state.status.name(),
            if listing.state.enforceable {
                ", enforceable"
            } else {
                ""
            },
            listing.proof.name()
        );
    }
    for d in &report.disagreements {
        let _ = writeln!(
            out,
            "  DISAGREEMENT: {} left out notice {} about listing {} (its checkpoint covers it)",
            federation.name_of(&d.responder),
            d.notice,
            d.listing
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
    let _ = writeln!(
        out,
        "roster: {} versions verified from version 0; current version {}",
        report.roster.versions, report.roster.current
    );
    for (number, signers) in &report.roster.equivocations {
        let _ = writeln!(
            out,
            "  EQUIVOCATION at roster version {number}: two valid versions, both signed by {}",
            signers
                .iter()
                .map(|s| s.short())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match &report.register {
        Some(register) => {
            let kinds: Vec<String> = register
                .kinds
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "register of reads of {}: {} records, each with its purpose and legal basis, under the member's signed root{}",
                register.member.short(),
                register.records,
                if kinds.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", kinds.join(", "))
                }
            );
        }
        None => {
            let _ = writeln!(out, "register of reads: not in the bundle");
        }
    }
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
    let _ = writeln!(
        out,
        "signed checkpoints matching the logs: {}",
        report.checkpoints.len()
    );
    for checkpoint in &report.checkpoints {
        let _ = writeln!(
            out,
            "  {} at {} notices: {} cosignatures{}",
            checkpoint.author.short(),
            checkpoint.size,
            checkpoint.cosigners,
            if checkpoint.witnessed {
                ", witnessed by a quorum"
            } else {
                ", not witnessed by a quorum"
            }
        );
    }
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

/// A running node's status.
pub fn status(status: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}), federation {}",
        status.name, status.authority, status.federation
    );
    let _ = writeln!(
        out,
        "  ready: {}; notices {}; pending {}; forks {}; unpublished {}",
        yes(status.ready),
        status.notices,
        status.pending,
        status.forks,
        status.unpublished
    );
    if !status.ready {
        let _ = writeln!(
            out,
            "  issuing: {} ({})",
            status.issuing, status.issuing_detail
        );
    }
    let _ = writeln!(out, "  peers ({}):", status.peers.len());
    for peer in &status.peers {
        let _ = writeln!(out, "    {}  {}", peer.name, peer.peer_id);
    }
    // The members' names in one column, as wide as the longest.
    let width = status
        .authors
        .iter()
        .map(|a| a.name.chars().count())
        .chain(status.checkpoints.iter().map(|c| c.name.chars().count()))
        .max()
        .unwrap_or(0);
    let _ = writeln!(out, "  logs:");
    for author in &status.authors {
        let _ = writeln!(
            out,
            "    {:<width$} seq {:>8}  seen {:>8}  lag {:>6}  budget {:>8}",
            author.name, author.seq, author.seen, author.lag, author.budget
        );
    }
    let _ = writeln!(
        out,
        "  checkpoints (witnessed: cosigned by {} members):",
        status.quorum
    );
    if status.checkpoints.is_empty() {
        let _ = writeln!(out, "    none yet");
    }
    for log in &status.checkpoints {
        let witnessed = match (log.witnessed_size, log.witnessed_age_s) {
            (Some(size), Some(age)) => format!(
                "witnessed size {size} by {} ({age} s ago)",
                log.witnessed_cosigners.join(", ")
            ),
            _ => "not witnessed yet".into(),
        };
        let _ = writeln!(
            out,
            "    {:<width$} newest size {:>8} ({} cosigners); {witnessed}",
            log.name,
            log.size,
            log.cosigners.len()
        );
        if log.split_view {
            let _ = writeln!(
                out,
                "      SPLIT VIEW: {} signed two checkpoints with one size and two roots",
                log.name
            );
        }
        if let Some(size) = log.conflict_size {
            let _ = writeln!(
                out,
                "      CONFLICT: its checkpoint of size {size} does not match this node's copy"
            );
        }
    }
    out
}

/// The connected peers.
pub fn peers(view: &PeersView) -> String {
    let mut out = String::new();
    for peer in &view.peers {
        let _ = writeln!(out, "{}  {}", peer.peer_id, peer.name);
    }
    out
}

/// A query's verified answers.
pub fn query(subject: &str, result: &QueryView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "query {} about {subject}", result.request_id);
    let _ = writeln!(
        out,
        "  answered (signed): {}",
        result.answered_by.join(", ")
    );
    for missing in &result.not_answered {
        let _ = writeln!(out, "  no answer from {}: {}", missing.name, missing.reason);
    }
    for rejected in &result.rejected {
        let _ = writeln!(
            out,
            "  REJECTED the answer of {}: {}",
            rejected.name, rejected.reason
        );
    }
    if result.listings.is_empty() {
        let _ = writeln!(out, "  no shared listings");
    } else {
        let _ = writeln!(
            out,
            "  listings (folded here from the signed notices and their proofs):"
        );
    }
    for listing in &result.listings {
        let _ = writeln!(
            out,
            "  {} {} list, {} by {}: {} (enforceable: {}; {} notices, {})",
            listing.id,
            listing.listing.list.name(),
            listing.listing.category,
            listing.issuer_name,
            listing.status,
            yes(listing.enforceable),
            listing.notices,
            listing.proof
        );
    }
    for d in &result.disagreements {
        let _ = writeln!(
            out,
            "  DISAGREEMENT: {} left out notice {} about listing {} (its checkpoint of size {} covers it)",
            d.name, d.notice, d.listing, d.covered_by
        );
    }
    if result.more {
        let _ = writeln!(out, "  more listings: ask for the next page (--page)");
    }
    out
}
