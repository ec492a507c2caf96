//! The typed vocabulary of the HTTP API: every answer's body, shared by
//! the server (`api`), the client (`client`) and the command line, so
//! that a running node and a data directory opened directly give the same
//! values, the same human output and the same `--json`.

use crate::daemon::{QueryResult, RegisterRecord};
use credence_protocol::changes::TaskRow;
use credence_protocol::fold::{ListingState, Task, TaskAction};
use credence_protocol::model::{
    AuthorityId, LinkRole, LinkedPerson, ListKind, Listing, Naming, NoticeId, Subject, SubjectKey,
    SubjectKind,
};
use credence_protocol::query;
use credence_protocol::register::ReadRecord;
use credence_protocol::report::{ReportBody, SignedReport};
use credence_protocol::roster::Federation;
use serde::{Deserialize, Serialize};

/// The answer to `POST /v1/notices`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssueAnswer {
    /// The notice signed.
    pub id: NoticeId,
    /// Its seq in this authority's log.
    pub seq: u64,
}

/// A ruling on an objection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RulingView {
    /// The ruling notice.
    pub id: NoticeId,
    /// It upheld the objection.
    pub upheld: bool,
}

/// An objection to a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectionView {
    /// The objection notice.
    pub id: NoticeId,
    /// Who filed it.
    pub author: AuthorityId,
    /// Its filer's name.
    pub author_name: String,
    /// The issuer must rule by then (ms).
    pub respond_by: u64,
    /// The ruling, if any.
    pub ruling: Option<RulingView>,
    /// Open and past its deadline.
    pub overdue: bool,
}

/// An implementer's latest feedback on a measure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedbackView {
    /// The implementer.
    pub author: AuthorityId,
    /// Its name.
    pub author_name: String,
    /// The measure.
    pub measure: String,
    /// `applied`, `lifted` or `declined`.
    pub action: String,
}

/// One notice in a listing's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryView {
    /// The notice.
    pub id: NoticeId,
    /// Its author.
    pub author: AuthorityId,
    /// Its author's name.
    pub author_name: String,
    /// Its seq.
    pub seq: u64,
    /// When it was issued (ms).
    pub issued_at: u64,
    /// Its kind.
    pub kind: String,
    /// A one-line summary.
    pub summary: String,
}

/// A listing folded at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListingView {
    /// The listing notice.
    pub id: NoticeId,
    /// Its issuer.
    pub issuer: AuthorityId,
    /// The issuer's name.
    pub issuer_name: String,
    /// When it was issued (ms).
    pub issued_at: u64,
    /// `active`, `pending`, `suspended`, `expired`, `repaired` or
    /// `withdrawn`.
    pub status: String,
    /// Joint measures may be enforced.
    pub enforceable: bool,
    /// On the publicity feed.
    pub published: bool,
    /// Answered to queries.
    pub shared: bool,
    /// The effective fields.
    pub listing: Listing,
    /// Objections.
    pub objections: Vec<ObjectionView>,
    /// Implementers' feedback.
    pub feedback: Vec<FeedbackView>,
    /// Every notice about it (one listing's page only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryView>>,
    /// In a lookup of a person the listing records as a linked person of
    /// the listed organisation: how it links them. Absent when the person
    /// or organisation looked up is the listing's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_as: Option<LinkRole>,
}

impl ListingView {
    /// The view of a folded listing.
    pub fn new(federation: &Federation, state: &ListingState, history: bool) -> ListingView {
        ListingView {
            id: state.id,
            issuer: state.issuer,
            issuer_name: federation.name_of(&state.issuer),
            issued_at: state.issued_at.0,
            status: state.status.name().into(),
            enforceable: state.enforceable,
            published: state.published,
            shared: state.shared,
            listing: state.listing.clone(),
            objections: state
                .objections
                .iter()
                .map(|o| ObjectionView {
                    id: o.id,
                    author: o.author,
                    author_name: federation.name_of(&o.author),
                    respond_by: o.respond_by.0,
                    ruling: o.ruling.map(|(id, upheld)| RulingView { id, upheld }),
                    overdue: o.overdue,
                })
                .collect(),
            feedback: state
                .feedback
                .iter()
                .map(|f| FeedbackView {
                    author: f.author,
                    author_name: federation.name_of(&f.author),
                    measure: f.measure.clone(),
                    action: f.action.name().into(),
                })
                .collect(),
            history: history.then(|| {
                state
                    .history
                    .iter()
                    .map(|h| HistoryView {
                        id: h.id,
                        author: h.author,
                        author_name: federation.name_of(&h.author),
                        seq: h.seq,
                        issued_at: h.issued_at.0,
                        kind: h.kind.into(),
                        summary: h.summary(),
                    })
                    .collect()
            }),
            linked_as: None,
        }
    }
}

/// A subject's listings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubjectView {
    /// The identifier asked about.
    pub subject: String,
    /// Enforceable listings.
    pub enforceable: usize,
    /// Enforceable blacklist listings (joint punishment applies).
    pub enforceable_black: usize,
    /// Its listings, newest first.
    pub listings: Vec<ListingView>,
    /// Present when the identifier fails its scheme's check (a check
    /// character that does not match, a letter the scheme does not use, a
    /// birth date that does not exist): most likely mistyped, so that no
    /// listing names it, and an empty answer says nothing of the subject
    /// meant. A listing issued with the checksum override is still found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier_problem: Option<String>,
}

impl SubjectView {
    /// The view of the folded listings that name `key` (identifier
    /// `subject`): the counts are of the listings it is the subject of;
    /// those that record it as a linked person say so.
    pub fn new(
        federation: &Federation,
        key: &SubjectKey,
        subject: &str,
        states: &[ListingState],
    ) -> SubjectView {
        let own = || {
            states
                .iter()
                .filter(|s| s.listing.naming(key) == Some(Naming::Subject))
        };
        SubjectView {
            subject: subject.into(),
            enforceable: own().filter(|s| s.enforceable).count(),
            enforceable_black: own()
                .filter(|s| s.enforceable && s.listing.list == ListKind::Black)
                .count(),
            listings: states
                .iter()
                .map(|s| ListingView {
                    linked_as: s.listing.linked_role(key),
                    ..ListingView::new(federation, s, false)
                })
                .collect(),
            identifier_problem: identifier_problem(key, subject),
        }
    }
}

/// The index key and the identifier a lookup of `typed` asks about: 18
/// ASCII letters and digits (a USCC or a resident identity number; the
/// check character is not needed to look up), taken in capitals, as
/// identifiers are written, so that one typed in small letters finds the
/// same listings. The API and the command line both take it so.
pub fn lookup_key(kind: SubjectKind, typed: &str) -> Option<(SubjectKey, String)> {
    if !typed.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let id = typed.to_ascii_uppercase();
    SubjectKey::new(kind, &id).map(|key| (key, id))
}

/// Why `subject` (the identifier of `key`'s kind) fails its scheme's
/// check, if it does.
fn identifier_problem(key: &SubjectKey, subject: &str) -> Option<String> {
    use credence_protocol::identifiers::IdentifierError;
    let kind = if SubjectKey::new(SubjectKind::NaturalPerson, subject) == Some(*key) {
        SubjectKind::NaturalPerson
    } else {
        SubjectKind::LegalPerson
    };
    match kind.check_identifier(subject).err()? {
        IdentifierError::Checksum {
            scheme,
            found_check,
            expected,
            ..
        } => Some(format!(
            "{scheme} {subject}: the check character is {found_check}, but the rest of the identifier gives {expected}: if it was mistyped, these are not the listings of the subject meant"
        )),
        other => Some(format!(
            "{other}: if it was mistyped, these are not the listings of the subject meant"
        )),
    }
}

/// One measure to apply or lift.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskView {
    /// `apply` or `lift`.
    pub action: String,
    /// The measure.
    pub measure: String,
    /// The listing.
    pub listing: NoticeId,
    /// The subject's identifier.
    pub subject: String,
    /// The subject's name.
    pub subject_name: String,
    /// The listing's status.
    pub status: String,
    /// The issuer's name.
    pub issuer_name: String,
}

/// This authority's tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TasksView {
    /// Measures to apply or lift.
    pub tasks: Vec<TaskView>,
    /// The listing to ask for the next page after (`after=`); absent on
    /// the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NoticeId>,
}

impl TasksView {
    /// The view of a page of tasks (`more`: another page follows).
    pub fn new(federation: &Federation, rows: &[TaskRow], more: bool) -> TasksView {
        TasksView {
            next: more
                .then(|| rows.last().map(|row| row.task.listing))
                .flatten(),
            tasks: rows
                .iter()
                .map(|row| TaskView {
                    action: match row.task.action {
                        TaskAction::Apply => "apply",
                        TaskAction::Lift => "lift",
                    }
                    .into(),
                    measure: row.task.measure.clone(),
                    listing: row.task.listing,
                    subject: row.tasked.subject.clone(),
                    subject_name: row.tasked.subject_name.clone(),
                    status: row.status.name().into(),
                    issuer_name: federation.name_of(&row.tasked.issuer),
                })
                .collect(),
        }
    }

    /// The view of every task, folded ([`credence_protocol::replica::Replica::tasks`]
    /// gives them), as one page.
    pub fn folded(federation: &Federation, tasks: &[(Task, ListingState)]) -> TasksView {
        let rows: Vec<TaskRow> = tasks
            .iter()
            .map(|(task, state)| TaskRow::of(task.clone(), state))
            .collect();
        TasksView::new(federation, &rows, false)
    }
}

/// Where one author stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthorStatus {
    /// The author.
    pub author: AuthorityId,
    /// Its name in the roster.
    pub name: String,
    /// Seq held here.
    pub seq: u64,
    /// Newest seq a peer reported.
    pub seen: u64,
    /// `seen - seq` when positive.
    pub lag: u64,
    /// The Merkle root of its log here (empty when the log is empty).
    pub root: String,
    /// How many more notices its log can take now, by the flood budget
    /// every replica enforces (with any allowance of a roster version its
    /// next notice would take).
    pub budget: u64,
}

/// A connected peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerStatus {
    /// Its authority.
    pub authority: AuthorityId,
    /// Its name in the roster.
    pub name: String,
    /// Its libp2p peer id.
    pub peer_id: String,
}

/// What `/v1/status` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Status {
    /// This node's authority.
    pub authority: AuthorityId,
    /// Its name.
    pub name: String,
    /// The federation id.
    pub federation: String,
    /// libp2p addresses this node listens on.
    pub listen: Vec<String>,
    /// Connected members.
    pub peers: Vec<PeerStatus>,
    /// Every author's log.
    pub authors: Vec<AuthorStatus>,
    /// Notices stored.
    pub notices: u64,
    /// Notices waiting for a predecessor or a reference.
    pub pending: usize,
    /// Fork evidence held.
    pub forks: usize,
    /// Own notices waiting to be published.
    pub unpublished: usize,
    /// The node issues.
    pub ready: bool,
    /// `ready`, `restoring`, `recovering`, `forked`, `halted`, or
    /// `key_rotating` (it signed a rotation of its key, and waits for the
    /// version).
    pub issuing: String,
    /// What that means and what to do.
    pub issuing_detail: String,
    /// Seq of the own log's durable mark, when there is one.
    pub mark: Option<u64>,
    /// Per log, the checkpoints held.
    pub checkpoints: Vec<CheckpointStatus>,
    /// Cosignatures a checkpoint needs to count as witnessed.
    pub quorum: usize,
}

/// What a node holds of one log's checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckpointStatus {
    /// The log's author.
    pub author: AuthorityId,
    /// Its name in the roster.
    pub name: String,
    /// Size of the newest checkpoint held.
    pub size: u64,
    /// Names of the members that cosigned it.
    pub cosigners: Vec<String>,
    /// Size of the newest checkpoint a quorum cosigned (none yet: null).
    pub witnessed_size: Option<u64>,
    /// Names of the members that cosigned that one.
    pub witnessed_cosigners: Vec<String>,
    /// Seconds since that checkpoint's newest cosignature.
    pub witnessed_age_s: Option<u64>,
    /// Its author signed two checkpoints with one size and two roots.
    pub split_view: bool,
    /// Size of a checkpoint its author signed whose root differs from
    /// this node's copy of the log.
    pub conflict_size: Option<u64>,
}

impl CheckpointStatus {
    /// The status of one log's checkpoints at `now_secs`.
    pub fn of(
        log: &credence_protocol::engine::LogCheckpoints,
        federation: &credence_protocol::roster::Federation,
        now_secs: u64,
    ) -> CheckpointStatus {
        let names = |c: &credence_protocol::engine::HeldCheckpoint| {
            c.cosigners
                .iter()
                .map(|(a, _)| federation.name_of(a))
                .collect::<Vec<_>>()
        };
        let witnessed = log.witnessed.as_ref();
        CheckpointStatus {
            author: log.author,
            name: federation.name_of(&log.author),
            size: log.newest.as_ref().map_or(0, |c| c.size),
            cosigners: log.newest.as_ref().map(names).unwrap_or_default(),
            witnessed_size: witnessed.map(|c| c.size),
            witnessed_cosigners: witnessed.map(names).unwrap_or_default(),
            witnessed_age_s: witnessed.and_then(|c| {
                let newest = c.cosigners.iter().map(|(_, t)| *t).max()?;
                Some(now_secs.saturating_sub(newest))
            }),
            split_view: log.split_view.is_some(),
            conflict_size: log.conflict.as_ref().map(|c| c.size),
        }
    }
}

/// The connected peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeersView {
    /// Connected members.
    pub peers: Vec<PeerStatus>,
}

/// Records of the register of reads, with the register's checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterView {
    /// Records in the register.
    pub size: u64,
    /// Its checkpoint, signed by this node when answering (a C2SP signed
    /// note: origin `credence/<federation>/register/<member>`, size,
    /// root).
    pub checkpoint: String,
    /// The records asked, oldest first, with their indexes.
    pub records: Vec<RegisterRecord>,
}

/// A subject's report ([`credence_protocol::report`]): every listing that
/// names the subject, with its history, and every consultation of its
/// records registered here, signed by this node. `body` and `signature`
/// are what the signature covers; [`ReportView::verify`] checks that
/// everything shown is what they say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportView {
    /// `legal_person`, `other_organisation` or `natural_person`.
    pub subject_kind: String,
    /// The subject's identifier.
    pub subject: String,
    /// The member whose node made it.
    pub member: AuthorityId,
    /// Its name.
    pub made_by: String,
    /// When it was made (ms).
    pub made_at: u64,
    /// The listings that name the subject, newest first, with their
    /// histories; `linked_as` on those that record it as a linked person.
    pub listings: Vec<ListingView>,
    /// The consultations of the subject's records, oldest first (this
    /// report's own request last).
    pub reads: Vec<RegisterRecord>,
    /// The register's size when the report was made.
    pub register_size: u64,
    /// The register's checkpoint at that size, signed by this node (C2SP
    /// signed note).
    pub register_checkpoint: String,
    /// Listings, notices or reads past a report's limits were left out.
    pub truncated: bool,
    /// The signed body (hex of its canonical bytes; SPEC.md, "Subject
    /// reports").
    pub body: String,
    /// The member's signature over it (hex).
    pub signature: String,
}

impl ReportView {
    /// Verifies the signature under the member's key in `federation`, the
    /// register checkpoint, and that every listing, notice and read shown
    /// is the one the signed body names; returns the body.
    pub fn verify(&self, federation: &Federation) -> Result<ReportBody, String> {
        let bytes = hex::decode(&self.body).map_err(|_| "body: not hex".to_string())?;
        let mut signature = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut signature)
            .map_err(|_| "signature: not 128 hex digits".to_string())?;
        let body = SignedReport {
            body: bytes,
            signature,
        }
        .verify(federation)
        .map_err(|e| e.to_string())?;
        let differs = |what: &str| {
            Err(format!(
                "the report shows {what} other than its signed body"
            ))
        };
        if (body.member, body.at.0, body.truncated, body.register_size)
            != (
                self.member,
                self.made_at,
                self.truncated,
                self.register_size,
            )
        {
            return differs("a member, time, size or truncation");
        }
        if body.subject_kind.name() != self.subject_kind || body.subject_id != self.subject {
            return differs("a subject");
        }
        if body.listings.len() != self.listings.len() {
            return differs("a number of listings");
        }
        for (signed, shown) in body.listings.iter().zip(&self.listings) {
            let history: Vec<NoticeId> = shown
                .history
                .iter()
                .flatten()
                .map(|entry| entry.id)
                .collect();
            let same = signed.id == shown.id
                && signed.issuer == shown.issuer
                && signed.status.name() == shown.status
                && signed.linked == shown.linked_as
                && history.starts_with(&signed.notices)
                && (history.len() == signed.notices.len() || body.truncated);
            if !same {
                return differs(&format!("listing {}", shown.id));
            }
        }
        if body.reads.len() != self.reads.len() {
            return differs("a number of reads");
        }
        for (signed, shown) in body.reads.iter().zip(&self.reads) {
            let bytes = hex::decode(&shown.bytes)
                .map_err(|_| format!("read {}: bytes not hex", shown.index))?;
            let record =
                ReadRecord::decode(&bytes).map_err(|e| format!("read {}: {e}", shown.index))?;
            let same = signed.index == shown.index
                && signed.leaf == ReadRecord::leaf(&bytes).0
                && RegisterRecord::of(federation, shown.index, &record, &bytes) == *shown;
            if !same {
                return differs(&format!("read {}", shown.index));
            }
        }
        let note = credence_crypto::note::Note::parse(self.register_checkpoint.as_bytes())
            .map_err(|e| format!("register checkpoint: {e}"))?;
        let keys: Vec<credence_crypto::PublicKey> = federation
            .public_key(&body.member)
            .into_iter()
            .cloned()
            .collect();
        let checkpoint = credence_protocol::register::verify_checkpoint(
            &note,
            &body.federation,
            &body.member,
            &keys,
        )
        .map_err(|e| e.to_string())?;
        if (checkpoint.size, checkpoint.root.0) != (body.register_size, body.register_root) {
            return Err(
                "the register checkpoint is not at the size and root the body signs".into(),
            );
        }
        Ok(body)
    }
}

/// A member that did not answer a query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MissingView {
    /// The member.
    pub authority: AuthorityId,
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// One listing of a query's answers, folded by this node from the proven
/// notices of every accepted answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnsweredListingView {
    /// The listing notice.
    pub id: NoticeId,
    /// Its issuer's name.
    pub issuer_name: String,
    /// Its status, computed here.
    pub status: String,
    /// Joint measures may be enforced.
    pub enforceable: bool,
    /// Its effective fields.
    pub listing: Listing,
    /// `witnessed`, `unwitnessed` or `unproven`: the weakest proof among
    /// the notices folded.
    pub proof: String,
    /// Notices folded (the listing and every notice about it).
    pub notices: usize,
    /// Names of the members whose answers held it.
    pub answered_by: Vec<String>,
    /// How it links the person asked about, when it records them as a
    /// linked person rather than as its subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_as: Option<LinkRole>,
}

/// An answer that left out a notice its own checkpoint covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DisagreementView {
    /// The responder.
    pub responder: AuthorityId,
    /// Its name.
    pub name: String,
    /// The notice left out.
    pub notice: NoticeId,
    /// The listing it is about.
    pub listing: NoticeId,
    /// The size of the responder's checkpoint covering it.
    pub covered_by: u64,
}

/// One responder's signed answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnswerView {
    /// The responder.
    pub responder: AuthorityId,
    /// Its name.
    pub responder_name: String,
    /// When it answered (its clock, ms).
    pub answered_at: u64,
    /// Listings in its answer.
    pub listings: usize,
    /// Its answer was cut at the limit.
    pub truncated: bool,
    /// The signed answer (hex of its encoding).
    pub signed_answer: String,
}

/// The answer to `POST /v1/query`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueryView {
    /// The request's id (hex).
    pub request_id: String,
    /// The signed request (hex of its encoding).
    pub signed_request: String,
    /// Who answered.
    pub answered_by: Vec<String>,
    /// Who did not, and why.
    pub not_answered: Vec<MissingView>,
    /// Who answered with an answer that failed a check, and which check:
    /// never merged.
    pub rejected: Vec<MissingView>,
    /// The listings, folded here from every accepted answer's proven
    /// notices, newest first.
    pub listings: Vec<AnsweredListingView>,
    /// Notices an answer left out that its own checkpoints cover.
    pub disagreements: Vec<DisagreementView>,
    /// Another page of listings exists (ask with `page` + 1).
    pub more: bool,
    /// Every accepted signed answer.
    pub answers: Vec<AnswerView>,
    /// The quorum-cosigned checkpoint notes the request offered that the
    /// answers name without carrying (signed-note text), one per log: a
    /// receipt carries them.
    pub checkpoints: Vec<String>,
}

impl QueryView {
    /// The view of a query's result. Fails only if a signed message does
    /// not encode within its limit.
    pub fn new(federation: &Federation, result: &QueryResult) -> Result<QueryView, String> {
        let missing = |list: &[(AuthorityId, String)]| -> Vec<MissingView> {
            list.iter()
                .map(|(a, why)| MissingView {
                    authority: *a,
                    name: federation.name_of(a),
                    reason: why.clone(),
                })
                .collect()
        };
        let mut answers = Vec::with_capacity(result.answers.len());
        for a in &result.answers {
            answers.push(AnswerView {
                responder: a.responder,
                responder_name: federation.name_of(&a.responder),
                answered_at: a.answer.answer.answered_at.0,
                listings: a.answer.answer.listings.len(),
                truncated: a.answer.answer.truncated,
                signed_answer: a
                    .answer
                    .signed
                    .encode::<{ query::ANSWER_BYTES_MAX }>()
                    .map(hex::encode)
                    .map_err(|e| e.to_string())?,
            });
        }
        let asked = result.request.request.subject_key().ok();
        Ok(QueryView {
            request_id: result.request.id().map_err(|e| e.to_string())?.to_hex(),
            signed_request: result
                .request
                .signed
                .encode::<{ query::QUERY_BYTES_MAX + 64 }>()
                .map(hex::encode)
                .map_err(|e| e.to_string())?,
            answered_by: result
                .answers
                .iter()
                .map(|a| federation.name_of(&a.responder))
                .collect(),
            not_answered: missing(&result.missing),
            rejected: missing(&result.rejected),
            listings: result
                .listings
                .iter()
                .map(|m| AnsweredListingView {
                    id: m.state.id,
                    issuer_name: federation.name_of(&m.state.issuer),
                    status: m.state.status.name().into(),
                    enforceable: m.state.enforceable,
                    listing: m.state.listing.clone(),
                    proof: m.proof.name().into(),
                    notices: m.state.history.len(),
                    answered_by: m
                        .answered_by
                        .iter()
                        .map(|a| federation.name_of(a))
                        .collect(),
                    linked_as: asked
                        .as_ref()
                        .and_then(|key| m.state.listing.linked_role(key)),
                })
                .collect(),
            disagreements: result
                .disagreements
                .iter()
                .map(|d| DisagreementView {
                    responder: d.responder,
                    name: federation.name_of(&d.responder),
                    notice: d.notice,
                    listing: d.listing,
                    covered_by: d.covered_by,
                })
                .collect(),
            more: result.more,
            answers,
            checkpoints: result.checkpoints.iter().map(|n| n.encode()).collect(),
        })
    }
}

/// One listing on the publicity feed: only what the public may see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedItem {
    /// `listing` (published) or `correction` (withdrawn, the subject's
    /// reputation restored).
    pub kind: String,
    /// For a correction: when the listing was withdrawn (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_at: Option<u64>,
    /// The listing notice.
    pub id: NoticeId,
    /// Its issuer's name.
    pub issuer_name: String,
    /// The subject (a natural person masked: identity number to its
    /// first six and last four characters, name to the first character of
    /// each word).
    pub subject: Subject,
    /// Red or black.
    pub list: ListKind,
    /// Category.
    pub category: String,
    /// Reason.
    pub reason: String,
    /// Legal basis.
    pub legal_basis: String,
    /// Decision document number.
    pub document_number: String,
    /// Effective from (ms).
    pub effective_at: u64,
    /// Published until (ms).
    pub publish_until: u64,
    /// The listed organisation's legal representative and responsible
    /// persons, masked as natural persons are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked: Vec<LinkedPerson>,
}

/// One page of the publicity feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedView {
    /// Published listings and public corrections, newest first (issue
    /// time descending, then id).
    pub listings: Vec<FeedItem>,
    /// The cursor of the next page (`?after=`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The cursor after a feed entry: its issue time (8 bytes, big-endian)
/// and id, hex.
pub fn feed_cursor_of(at: u64, id: &NoticeId) -> String {
    let mut bytes = at.to_be_bytes().to_vec();
    bytes.extend_from_slice(&id.0);
    hex::encode(bytes)
}

/// Reads a feed cursor: its issue time and id.
pub fn parse_feed_cursor(text: &str) -> Result<(u64, NoticeId), String> {
    let bytes = hex::decode(text).map_err(|_| "after: not a feed cursor (hex)".to_string())?;
    let (at, id) = bytes
        .split_first_chunk::<8>()
        .filter(|(_, id)| id.len() == 32)
        .ok_or_else(|| "after: not a feed cursor (80 hex digits)".to_string())?;
    let mut raw = [0u8; 32];
    raw.copy_from_slice(id);
    Ok((u64::from_be_bytes(*at), NoticeId(raw)))
}

impl FeedItem {
    /// What the public sees of `state` at `t`, if anything
    /// ([`credence_protocol::public::shown`]), natural persons masked.
    pub fn of(
        federation: &Federation,
        s: &ListingState,
        t: credence_protocol::time::Timestamp,
    ) -> Option<FeedItem> {
        let shown = credence_protocol::public::shown(s, t)?;
        Some(FeedItem {
            kind: shown.name().into(),
            corrected_at: match shown {
                credence_protocol::public::Shown::Correction { at } => Some(at.0),
                credence_protocol::public::Shown::Listing => None,
            },
            id: s.id,
            issuer_name: federation.name_of(&s.issuer),
            subject: credence_protocol::public::public_subject(&s.listing.subject),
            list: s.listing.list,
            category: s.listing.category.clone(),
            reason: s.listing.reason.clone(),
            legal_basis: s.listing.legal_basis.clone(),
            document_number: s.listing.document_number.clone(),
            effective_at: s.listing.effective_at.0,
            publish_until: s.listing.publish_until.0,
            linked: s
                .listing
                .linked
                .iter()
                .map(credence_protocol::public::public_linked)
                .collect(),
        })
    }
}

/// The columns of the public extract as CSV, in order.
pub const EXTRACT_CSV_COLUMNS: [&str; 15] = [
    "kind",
    "corrected_at",
    "id",
    "issuer",
    "subject_kind",
    "subject_id",
    "subject_name",
    "list",
    "category",
    "reason",
    "legal_basis",
    "document_number",
    "effective_at",
    "publish_until",
    "linked",
];

/// A field of a CSV row (RFC 4180): quoted when it holds a comma, a
/// quote or a line break, quotes doubled.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The public extract's first bytes: the CSV header row
/// ([`EXTRACT_CSV_COLUMNS`]), or nothing for JSON Lines.
pub fn extract_header(csv: bool) -> Vec<u8> {
    if csv {
        format!("{}\r\n", EXTRACT_CSV_COLUMNS.join(",")).into_bytes()
    } else {
        Vec::new()
    }
}

/// Appends one entry of the public extract to `out`: the listing as the
/// publicity feed shows it at `t`, as a CSV row (times RFC 3339; linked
/// persons as `role id name` separated by `; `) or a line of JSON (a
/// [`FeedItem`]); nothing when the feed does not show it.
pub fn extract_row(
    federation: &Federation,
    state: &ListingState,
    t: credence_protocol::time::Timestamp,
    csv: bool,
    out: &mut Vec<u8>,
) {
    use credence_protocol::time::Timestamp;
    let Some(item) = FeedItem::of(federation, state, t) else {
        return;
    };
    if !csv {
        if let Ok(line) = serde_json::to_vec(&item) {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        return;
    }
    let linked: Vec<String> = item
        .linked
        .iter()
        .map(|p| format!("{} {} {}", p.role.name(), p.id, p.name))
        .collect();
    let row = [
        item.kind.clone(),
        item.corrected_at
            .map(|at| Timestamp(at).to_string())
            .unwrap_or_default(),
        item.id.to_string(),
        item.issuer_name.clone(),
        item.subject.kind.name().to_string(),
        item.subject.id.clone(),
        item.subject.name.clone(),
        item.list.name().to_string(),
        item.category.clone(),
        item.reason.clone(),
        item.legal_basis.clone(),
        item.document_number.clone(),
        Timestamp(item.effective_at).to_string(),
        Timestamp(item.publish_until).to_string(),
        linked.join("; "),
    ];
    let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
    out.extend_from_slice(fields.join(",").as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl FeedView {
    /// A page of the feed as the public sees it at `t`.
    pub fn page(
        federation: &Federation,
        page: &crate::daemon::FeedPage,
        t: credence_protocol::time::Timestamp,
    ) -> FeedView {
        let next = page
            .more
            .then_some(page.last)
            .flatten()
            .map(|(at, id)| feed_cursor_of(at, &id));
        FeedView {
            listings: page
                .listings
                .iter()
                .filter_map(|s| FeedItem::of(federation, s, t))
                .collect(),
            next,
        }
    }
}

/// The body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error: a stable code and a message saying what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// What was wrong.
    pub message: String,
}

/// The answer to `GET /v1/identity`: proof that the node knows its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdentityAnswer {
    /// `identity_proof(token, challenge)`, hex.
    pub proof: String,
}

/// The answer to `GET /v1/logs/{author}/inclusion`: the notice at `seq` is
/// leaf `seq - 1` of the log of `size` whose root is `root` (RFC 9162
/// audit path, hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InclusionView {
    /// The log.
    pub author: AuthorityId,
    /// The notice's seq.
    pub seq: u64,
    /// The notice id (its leaf hash).
    pub id: NoticeId,
    /// The tree size.
    pub size: u64,
    /// The root at that size (hex).
    pub root: String,
    /// The audit path, leaf to root (hex).
    pub path: Vec<String>,
}

impl From<&credence_protocol::checkpoint::proofs::Inclusion> for InclusionView {
    fn from(proof: &credence_protocol::checkpoint::proofs::Inclusion) -> InclusionView {
        InclusionView {
            author: proof.author,
            seq: proof.seq,
            id: proof.id,
            size: proof.size,
            root: hex::encode(proof.root.0),
            path: proof.path.iter().map(|d| hex::encode(d.0)).collect(),
        }
    }
}

/// The answer to `GET /v1/logs/{author}/consistency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsistencyView {
    /// The log.
    pub author: AuthorityId,
    /// The smaller size.
    pub from: u64,
    /// Its root (hex).
    pub from_root: String,
    /// The larger size.
    pub to: u64,
    /// Its root (hex).
    pub to_root: String,
    /// The consistency path (RFC 9162, hex).
    pub path: Vec<String>,
}

impl From<&credence_protocol::checkpoint::proofs::Consistency> for ConsistencyView {
    fn from(proof: &credence_protocol::checkpoint::proofs::Consistency) -> ConsistencyView {
        ConsistencyView {
            author: proof.author,
            from: proof.from,
            from_root: hex::encode(proof.from_root.0),
            to: proof.to,
            to_root: hex::encode(proof.to_root.0),
            path: proof.path.iter().map(|d| hex::encode(d.0)).collect(),
        }
    }
}

/// The answer to `GET /v1/logs/{author}/entries`: envelopes in seq order
/// from `from` (hex, exactly as signed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntriesView {
    /// The log.
    pub author: AuthorityId,
    /// The seq of the first envelope.
    pub from: u64,
    /// The envelopes (hex).
    pub envelopes: Vec<String>,
}

/// One version of the roster chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RosterVersionView {
    /// Its number (0: genesis).
    pub number: u64,
    /// Its hash (genesis: the federation id).
    pub hash: String,
    /// Members.
    pub members: Vec<String>,
    /// Distinct members' signatures the next version needs.
    pub threshold: u32,
    /// Who signed it (genesis: nobody).
    pub signed_by: Vec<String>,
    /// Key changes: "member: key from seq N (revoked as compromised)".
    pub keys: Vec<String>,
    /// Cutoffs: "member after seq N".
    pub cutoffs: Vec<String>,
    /// Notice allowances it grants: "member: N notices past its budget,
    /// once".
    pub allowances: Vec<String>,
}

/// The allowances of a version's body, as the views state them.
fn allowance_lines(
    body: Option<&credence_protocol::governance::RosterVersion>,
    federation: Option<&Federation>,
) -> Vec<String> {
    body.iter()
        .flat_map(|b| &b.allowances)
        .map(|a| {
            format!(
                "{}: {} notices past its budget, once",
                federation.map_or_else(|| a.member.short(), |f| f.name_of(&a.member)),
                a.notices
            )
        })
        .collect()
}

/// A proposal for the next version, gathering signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProposalView {
    /// Its hash (what `credence federation sign` and `submit` name).
    pub hash: String,
    /// The number it would take.
    pub number: u64,
    /// The members who signed it (and added keys that proved possession).
    pub signed_by: Vec<String>,
    /// Distinct members of the current version who signed.
    pub members_signed: usize,
    /// The current version's threshold.
    pub threshold: u32,
    /// Whether it is a valid next version now.
    pub ready: bool,
    /// Why it is not, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ready: Option<String>,
    /// Its members.
    pub members: Vec<String>,
    /// Notice allowances it would grant.
    pub allowances: Vec<String>,
}

/// Two valid versions at one number: the members who signed both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EquivocationView {
    /// The number.
    pub number: u64,
    /// The version on the chain.
    pub chosen: String,
    /// The other.
    pub other: String,
    /// Who signed both.
    pub signers: Vec<String>,
}

/// The roster chain of a node and the proposals it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RosterView {
    /// The current version's number.
    pub current: u64,
    /// The chosen chain, from version 0.
    pub versions: Vec<RosterVersionView>,
    /// Equivocation evidence.
    pub equivocations: Vec<EquivocationView>,
    /// Proposals for the next version.
    pub proposals: Vec<ProposalView>,
}

impl RosterView {
    /// The chain and proposals of an engine.
    pub fn of<S: credence_protocol::store::Store>(
        engine: &credence_protocol::engine::Engine<S>,
    ) -> RosterView {
        let chain = engine.replica().chain();
        let current = chain.current();
        let names = |federation: &Federation, ids: &mut dyn Iterator<Item = AuthorityId>| {
            ids.map(|id| federation.name_of(&id)).collect::<Vec<_>>()
        };
        let signer_names = |previous: &credence_protocol::governance::Version,
                            signed: &credence_protocol::governance::SignedVersion,
                            federation: &Federation| {
            signed
                .signatures
                .iter()
                .map(|s| match previous.member_of_key(&s.key) {
                    Some(member) => previous.federation.name_of(&member),
                    None => match federation.member(&s.key) {
                        Some(m) => format!("{} (new member)", m.name),
                        None => format!("new key {}", s.key.short()),
                    },
                })
                .collect::<Vec<_>>()
        };
        let versions = chain
            .chosen()
            .iter()
            .enumerate()
            .map(|(i, version)| {
                let federation = &version.federation;
                let body = version.signed.as_ref().and_then(|s| s.version().ok());
                RosterVersionView {
                    number: version.number,
                    hash: version.hash.to_string(),
                    members: names(
                        federation,
                        &mut federation.roster().members.iter().map(|m| m.key),
                    ),
                    threshold: federation.threshold(),
                    signed_by: match (&version.signed, i.checked_sub(1)) {
                        (Some(signed), Some(previous)) => {
                            signer_names(&chain.chosen()[previous], signed, federation)
                        }
                        _ => Vec::new(),
                    },
                    keys: body
                        .iter()
                        .flat_map(|b| &b.keys)
                        .map(|k| {
                            format!(
                                "{}: key {} from seq {}{}",
                                federation.name_of(&k.member),
                                k.key,
                                k.after_seq + 1,
                                if k.compromised {
                                    " (the old key revoked as compromised)"
                                } else {
                                    ""
                                }
                            )
                        })
                        .collect(),
                    cutoffs: body
                        .iter()
                        .flat_map(|b| &b.cutoffs)
                        .map(|c| {
                            let name = i
                                .checked_sub(1)
                                .map(|p| chain.chosen()[p].federation.name_of(&c.member))
                                .unwrap_or_else(|| c.member.short());
                            format!("{name} after seq {}", c.after_seq)
                        })
                        .collect(),
                    allowances: allowance_lines(body.as_ref(), Some(federation)),
                }
            })
            .collect();
        let equivocations = chain
            .evidence()
            .iter()
            .map(|e| EquivocationView {
                number: e.number,
                chosen: e.chosen.hash().to_string(),
                other: e.other.hash().to_string(),
                signers: e
                    .signers
                    .iter()
                    .map(|m| current.federation.name_of(m))
                    .collect(),
            })
            .collect();
        let proposals = engine
            .proposals()
            .map(|signed| {
                let body = signed.version().ok();
                let federation = body.as_ref().and_then(|b| {
                    Federation::with_id(b.roster.clone(), current.federation.id()).ok()
                });
                let not_ready = credence_protocol::governance::verify_next(current, signed)
                    .err()
                    .map(|e| e.to_string());
                ProposalView {
                    hash: signed.hash().to_string(),
                    number: body.as_ref().map_or(0, |b| b.number),
                    signed_by: match &federation {
                        Some(f) => signer_names(current, signed, f),
                        None => Vec::new(),
                    },
                    members_signed: credence_protocol::governance::signing_members(current, signed)
                        .len(),
                    threshold: current.federation.threshold(),
                    ready: not_ready.is_none(),
                    not_ready,
                    members: body
                        .iter()
                        .flat_map(|b| &b.roster.members)
                        .map(|m| m.name.clone())
                        .collect(),
                    allowances: allowance_lines(body.as_ref(), federation.as_ref()),
                }
            })
            .collect();
        RosterView {
            current: current.number,
            versions,
            equivocations,
            proposals,
        }
    }
}

/// What a governance act did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GovernanceView {
    /// The version or proposal.
    pub hash: String,
    /// The number it takes.
    pub number: u64,
    /// The signatures it has.
    pub signatures: usize,
    /// The chain's current version after the act.
    pub current: u64,
    /// The proposal file's bytes, hex (to write to a file and pass on).
    pub proposal: String,
}

impl From<&credence_protocol::engine::GovernanceAnswer> for GovernanceView {
    fn from(answer: &credence_protocol::engine::GovernanceAnswer) -> GovernanceView {
        GovernanceView {
            hash: answer.hash.to_string(),
            number: answer.number,
            signatures: answer.signatures,
            current: answer.current,
            proposal: credence_protocol::governance::proposal::encode_proposal(&answer.signed)
                .map(hex::encode)
                .unwrap_or_default(),
        }
    }
}

/// The signed roster versions a node holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionsView {
    /// Each signed version's bytes, hex, in number order.
    pub versions: Vec<String>,
}

/// A listing's state as this node's member sees it, in the change feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListingSummaryView {
    /// `active`, `suspended`, `pending`, `expired`, `repaired` or
    /// `withdrawn`.
    pub status: String,
    /// Joint measures may be enforced.
    pub enforceable: bool,
    /// Shown to the public.
    pub published: bool,
    /// Shared among members.
    pub shared: bool,
    /// A credit repair is possible.
    pub repairable: bool,
    /// Objections open.
    pub objections_open: u16,
    /// Objections open past the issuer's deadline.
    pub objections_overdue: u16,
    /// Its distribution level.
    pub level: String,
    /// This member's tasks for it.
    pub tasks: Vec<SummaryTaskView>,
}

/// A task in a listing's summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SummaryTaskView {
    /// The measure.
    pub measure: String,
    /// `apply` or `lift`.
    pub action: String,
}

impl From<&credence_protocol::changes::Summary> for ListingSummaryView {
    fn from(summary: &credence_protocol::changes::Summary) -> ListingSummaryView {
        ListingSummaryView {
            status: summary.status.name().into(),
            enforceable: summary.enforceable,
            published: summary.published,
            shared: summary.shared,
            repairable: summary.repairable,
            objections_open: summary.objections_open,
            objections_overdue: summary.objections_overdue,
            level: summary.level.name().into(),
            tasks: summary
                .tasks
                .iter()
                .map(|(measure, action)| SummaryTaskView {
                    measure: measure.clone(),
                    action: match action {
                        TaskAction::Apply => "apply",
                        TaskAction::Lift => "lift",
                    }
                    .into(),
                })
                .collect(),
        }
    }
}

/// One change of the change feed: a listing's state before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeView {
    /// Its position in this node's feed: the cursor to resume after it.
    pub seq: u64,
    /// When it was recorded (ms).
    pub at: u64,
    /// The listing (its notice id).
    pub listing: NoticeId,
    /// `notice` (a notice about it came) or `time` (one of its dates
    /// passed).
    pub cause: String,
    /// The state before (absent: the listing is new here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<ListingSummaryView>,
    /// The state now.
    pub after: ListingSummaryView,
}

impl From<&credence_protocol::changes::Change> for ChangeView {
    fn from(change: &credence_protocol::changes::Change) -> ChangeView {
        ChangeView {
            seq: change.seq,
            at: change.at.0,
            listing: change.listing,
            cause: match change.cause {
                credence_protocol::changes::Cause::Notice => "notice",
                credence_protocol::changes::Cause::Time => "time",
            }
            .into(),
            before: change.before.as_ref().map(ListingSummaryView::from),
            after: ListingSummaryView::from(&change.after),
        }
    }
}

/// The listings a name search found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchView {
    /// The search, normalised (lower case, letters and digits).
    pub name: String,
    /// The listings found, as this account may see them.
    pub listings: Vec<ListingView>,
    /// More listings match than were given (ask with a longer name).
    pub more: bool,
}

/// A page of the change feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangesView {
    /// The changes, oldest first (those this account is told of).
    pub changes: Vec<ChangeView>,
    /// The cursor of the next page: pass it as `after`.
    pub next: u64,
}
