//! Checkpoints in the engine: signing the own log's checkpoints, acting as
//! a witness of the other members' logs, gathering cosignatures, and
//! finding split views.
//!
//! - **Signing.** While the node issues, it signs a checkpoint of its own
//!   log whenever the log has grown (at most every
//!   [`CHECKPOINT_INTERVAL_MS`]) and publishes it again every
//!   [`CHECKPOINT_REPUBLISH_MS`]. A checkpoint only covers notices whose
//!   own-log mark is durable: a checkpoint must never name a seq the node
//!   could sign again after a crash.
//! - **Witnessing.** A checkpoint of another member's log is cosigned when
//!   [`WitnessState::consider`] says so (its root is the root of this
//!   node's own copy at that size, and its size is not below the last one
//!   cosigned). A checkpoint ahead of the copy waits until sync or gossip
//!   has brought the notices it covers. The cosignature travels alone
//!   ([`wire::GOSSIP_COSIGNATURES_MAX`]).
//! - **Gathering.** Every valid note goes into the [`Book`], which keeps
//!   per log the newest checkpoint and the newest one a quorum cosigned.
//!   Anti-entropy sync exchanges what the books lack
//!   ([`SyncRequest::Checkpoints`]), so a node that missed the gossip still
//!   gets every cosignature.
//! - **Split views.** Two checkpoints one author signed with one size and
//!   two roots are evidence on their own: kept (one pair per log), logged
//!   as an error, gossiped and served by sync until every node has it. A
//!   checkpoint whose root differs from this node's own copy of the log is
//!   a conflict: the author signed a log other than the one it published.

use super::{Engine, Level, Output, Readiness, Verdict};
use crate::checkpoint::book::{Book, Gathered, Taken};
use crate::checkpoint::wire::{self, CheckpointHave, SplitViewPair, WitnessMessage};
use crate::checkpoint::witness::{self, WitnessState};
use crate::checkpoint::{self as cp, Checkpoint, Verified};
use crate::model::AuthorityId;
use crate::roster::Federation;
use crate::store::Store;
use crate::sync::{HEADS_MAX, SyncRequest, SyncResponse};
use crate::time::Timestamp;
use credence_crypto::Digest;
use credence_crypto::note::Note;
use std::collections::{BTreeMap, BTreeSet};

/// An own checkpoint is signed at most this often while the log grows.
pub const CHECKPOINT_INTERVAL_MS: u64 = 5_000;
/// The newest own checkpoint is published again this often.
pub const CHECKPOINT_REPUBLISH_MS: u64 = 10 * 60_000;
/// How often checkpoints ahead of this node's copy are looked at again.
pub const AHEAD_RETRY_MS: u64 = 1_000;
/// Checkpoints ahead of this node's copy kept per log (the largest sizes):
/// an author that shows a false checkpoint and soon after a true one is
/// still compared with the log for the false one once the copy catches up.
pub const AHEAD_PER_LOG: usize = 4;

/// The engine's checkpoint state.
#[derive(Debug, Default)]
pub(super) struct Witnessing {
    book: Book,
    witness: WitnessState,
    /// Per log, the newest checkpoints ahead of this node's copy, by size
    /// (at most [`AHEAD_PER_LOG`]).
    ahead: BTreeMap<AuthorityId, BTreeMap<u64, Note>>,
    /// Per log, split-view evidence.
    split: BTreeMap<AuthorityId, (Note, Note)>,
    /// Per log, the newest checkpoint that disagrees with this node's copy.
    conflicts: BTreeMap<AuthorityId, Conflict>,
    /// The newest own checkpoint signed: its size and when.
    own: Option<(u64, Timestamp)>,
    /// Checkpoint exchanges in flight: token to peer.
    asks: BTreeMap<u64, AuthorityId>,
    /// When checkpoints ahead of the copy are looked at again.
    retry_at: Timestamp,
    /// Bumped whenever the book changes (answers' proofs are chosen again).
    version: u64,
    /// Logs whose notes changed since they were last kept in the store.
    unsaved: BTreeSet<AuthorityId>,
    /// When they are kept (at most every [`CHECKPOINT_SAVE_MS`]).
    save_at: Option<Timestamp>,
}

/// How long changed checkpoint notes wait to be kept in the store: each
/// log's are written once for all the changes of that time (a note
/// gathers cosignatures one message at a time).
pub const CHECKPOINT_SAVE_MS: u64 = 250;

/// A checkpoint whose root is not the root of this node's copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The checkpoint's size.
    pub size: u64,
    /// The root its author signed.
    pub signed: Digest,
    /// The root of this node's copy at that size.
    pub held: Digest,
}

/// One checkpoint as held: for status, metrics and the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldCheckpoint {
    /// Notices it covers.
    pub size: u64,
    /// Their Merkle root.
    pub root: Digest,
    /// Members whose cosignature verified, with its time (POSIX seconds).
    pub cosigners: Vec<(AuthorityId, u64)>,
    /// A quorum of witnesses cosigned it.
    pub witnessed: bool,
    /// The signed note with every cosignature gathered.
    pub note: Note,
}

/// What this node holds of one member's checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogCheckpoints {
    /// The log's author.
    pub author: AuthorityId,
    /// The newest checkpoint held.
    pub newest: Option<HeldCheckpoint>,
    /// The newest checkpoint a quorum cosigned.
    pub witnessed: Option<HeldCheckpoint>,
    /// Split-view evidence: two checkpoints of one size, two roots.
    pub split_view: Option<(Note, Note)>,
    /// A checkpoint that disagrees with this node's copy of the log.
    pub conflict: Option<Conflict>,
}

fn held(gathered: &Gathered, quorum: usize) -> HeldCheckpoint {
    HeldCheckpoint {
        size: gathered.verified.checkpoint.size,
        root: gathered.verified.checkpoint.root,
        cosigners: gathered.verified.cosigners.clone(),
        witnessed: gathered.cosigners() >= quorum,
        note: gathered.note(),
    }
}

/// The note with only its author's signature line.
fn author_only(note: &Note, author: &AuthorityId, federation: &Federation) -> Note {
    let checkpoint = Checkpoint::parse_text(&note.text);
    Note {
        text: note.text.clone(),
        signatures: checkpoint
            .ok()
            .and_then(|c| {
                cp::author_line(note, &c, federation, author).map(|(_, line)| line.clone())
            })
            .into_iter()
            .collect(),
    }
}

fn encoded(note: &Note) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(note.encode().into_bytes())
}

impl<S: Store> Engine<S> {
    /// What this node holds of every member's checkpoints, in roster order
    /// (members it holds nothing of are left out).
    pub fn checkpoints(&self) -> Vec<LogCheckpoints> {
        let federation = self.replica.federation();
        let quorum = cp::quorum(federation);
        let w = &self.witnessing;
        federation
            .roster()
            .members
            .iter()
            .filter_map(|member| {
                let author = member.key;
                let (newest, witnessed) = w
                    .book
                    .logs()
                    .find(|(a, _, _)| **a == author)
                    .map_or((None, None), |(_, n, w)| (n, w));
                let entry = LogCheckpoints {
                    author,
                    newest: newest.map(|g| held(g, quorum)),
                    witnessed: witnessed.map(|g| held(g, quorum)),
                    split_view: w.split.get(&author).cloned(),
                    conflict: w.conflicts.get(&author).cloned(),
                };
                (entry.newest.is_some() || entry.split_view.is_some() || entry.conflict.is_some())
                    .then_some(entry)
            })
            .collect()
    }

    /// The checkpoint of `author`'s log to serve, with every cosignature
    /// gathered: for another member's log, the newest a quorum cosigned,
    /// else the newest held; for the own log, one of its head signed now
    /// while the node issues (so that it covers every notice acknowledged),
    /// else the newest held.
    pub fn checkpoint_of(&self, author: &AuthorityId) -> Option<Note> {
        let book = &self.witnessing.book;
        if *author == self.me
            && let Ok(Some(fresh)) = self.own_checkpoint()
        {
            let gathered = [book.witnessed(author), book.newest(author)]
                .into_iter()
                .flatten()
                .find(|g| g.verified.checkpoint.text() == fresh.text);
            return Some(gathered.map_or(fresh, Gathered::note));
        }
        book.witnessed(author)
            .or_else(|| book.newest(author))
            .map(Gathered::note)
    }

    /// Takes a checkpoint note handed over by this node's operator (from an
    /// audit bundle, or a benchmark's fixture) exactly as one from gossip:
    /// verified, gathered, cosigned when this node can vouch for it.
    /// Returns whether it added anything, or why it was refused.
    pub fn take_checkpoint(
        &mut self,
        note: &Note,
        now: Timestamp,
        out: &mut Vec<Output>,
    ) -> Result<bool, cp::CheckpointError> {
        self.witnessing
            .book
            .verify(note, self.replica.federation())?;
        Ok(self.take_note(note, now, out) == Verdict::Accept)
    }

    /// A witness gossip message from a peer.
    pub(super) fn on_witness_gossip(
        &mut self,
        message: u64,
        bytes: &[u8],
        now: Timestamp,
        out: &mut Vec<Output>,
    ) {
        self.counters.gossip_bytes_in += bytes.len() as u64;
        let verdict = match wire::decode(bytes) {
            Err(_) => {
                *self.counters.malformed.entry("witness").or_default() += 1;
                Verdict::Reject
            }
            Ok(WitnessMessage::Note(bytes)) => match Note::parse(&bytes) {
                Ok(note) if note.signatures.len() <= 1 + wire::GOSSIP_COSIGNATURES_MAX => {
                    self.take_note(&note, now, out)
                }
                _ => {
                    self.checkpoint_event("rejected");
                    Verdict::Reject
                }
            },
            Ok(WitnessMessage::SplitView(pair)) => self.take_split_view(&pair, false, out),
            Ok(message @ (WitnessMessage::Roster(_) | WitnessMessage::Proposal(_))) => {
                self.on_roster_gossip(message, out)
            }
        };
        out.push(Output::Verdict { message, verdict });
    }

    fn checkpoint_event(&mut self, event: &'static str) {
        *self.counters.checkpoints.entry(event).or_default() += 1;
    }

    /// Takes a note from a peer: verifies it, gathers it, and cosigns it
    /// when this node can vouch for it.
    fn take_note(&mut self, note: &Note, now: Timestamp, out: &mut Vec<Output>) -> Verdict {
        let federation = self.replica.federation();
        if let Ok(checkpoint) = Checkpoint::parse_text(&note.text)
            && let Ok(author) = checkpoint.author(federation)
        {
            let book = &self.witnessing.book;
            let cosigned = self.witnessing.witness.newest(&author);
            if book.outdated(&author, checkpoint.size)
                && cosigned.is_some_and(|(s, _)| s > checkpoint.size)
                && !book.contradicts(&author, checkpoint.size, &checkpoint.root)
            {
                // Older than what is held and cosigned: nothing to gather,
                // and nothing to compare it with.
                return Verdict::Ignore;
            }
            if book.complete(&author, checkpoint.size, &checkpoint.root) {
                // Already cosigned by a quorum: one more cosignature proves
                // nothing more (a different root would not be this).
                return Verdict::Ignore;
            }
        }
        let verified = match self.witnessing.book.verify(note, federation) {
            Ok(verified) => verified,
            Err(e) => {
                self.checkpoint_event("rejected");
                Self::log(out, Level::Warn, format!("checkpoint refused: {e}"));
                return Verdict::Reject;
            }
        };
        let taken = self.witnessing.book.take(note, &verified, federation);
        if taken != Taken::Nothing {
            self.witnessing.version += 1;
            self.witnessing.unsaved.insert(verified.author);
        }
        let verdict = match taken {
            Taken::Newer | Taken::MoreCosignatures => {
                self.checkpoint_event("taken");
                Verdict::Accept
            }
            Taken::Nothing => Verdict::Ignore,
            Taken::SplitView(pair) => {
                let (first, second) = *pair;
                self.found_split_view(verified.author, first, second, true, out);
                Verdict::Accept
            }
        };
        if verified.author != self.me && self.config.checkpoints {
            self.witness(&verified, note, now, out);
        }
        verdict
    }

    /// Acts as a witness of another member's checkpoint, after the smaller
    /// ones of its log held back as ahead that the copy now reaches (in
    /// size order, so none is left stale unexamined).
    fn witness(&mut self, verified: &Verified, note: &Note, now: Timestamp, out: &mut Vec<Output>) {
        let author = verified.author;
        let size = verified.checkpoint.size;
        let held = self.held_size(&author);
        let earlier: Vec<Note> = self
            .witnessing
            .ahead
            .get_mut(&author)
            .map(|notes| {
                let later = notes.split_off(&size.min(held.saturating_add(1)));
                std::mem::replace(notes, later).into_values().collect()
            })
            .unwrap_or_default();
        if self
            .witnessing
            .ahead
            .get(&author)
            .is_some_and(BTreeMap::is_empty)
        {
            self.witnessing.ahead.remove(&author);
        }
        for earlier in earlier {
            if let Ok(v) = self
                .witnessing
                .book
                .verify(&earlier, self.replica.federation())
            {
                self.witness_one(&v, &earlier, now, out);
            }
        }
        self.witness_one(verified, note, now, out);
    }

    fn held_size(&self, author: &AuthorityId) -> u64 {
        self.replica
            .store()
            .head(author)
            .ok()
            .flatten()
            .map_or(0, |h| h.seq)
    }

    fn witness_one(
        &mut self,
        verified: &Verified,
        note: &Note,
        now: Timestamp,
        out: &mut Vec<Output>,
    ) {
        let author = verified.author;
        let Checkpoint { size, root, .. } = verified.checkpoint;
        if self.witnessing.witness.newest(&author) == Some((size, root)) || !self.key_current() {
            return;
        }
        let considered = self.witnessing.witness.consider(
            &self.key,
            self.replica.federation(),
            verified,
            note,
            self.replica.store(),
            now.0 / 1000,
        );
        match considered {
            Ok(witness::Verdict::Cosign(line)) => {
                let federation = self.replica.federation();
                let Some((_, author_line)) =
                    cp::author_line(note, &verified.checkpoint, federation, &author)
                else {
                    return;
                };
                let author_line = author_line.clone();
                let timestamp = now.0 / 1000;
                let cosigned = Note {
                    text: note.text.clone(),
                    signatures: vec![author_line, line],
                };
                let mine = Verified {
                    checkpoint: verified.checkpoint.clone(),
                    author,
                    cosigners: vec![(self.me, timestamp)],
                };
                self.witnessing
                    .book
                    .take(&cosigned, &mine, self.replica.federation());
                self.witnessing.version += 1;
                self.witnessing.unsaved.insert(author);
                if let Some(notes) = self.witnessing.ahead.get_mut(&author) {
                    notes.retain(|s, _| *s > size);
                    if notes.is_empty() {
                        self.witnessing.ahead.remove(&author);
                    }
                }
                self.checkpoint_event("cosigned");
                self.publish_witness(&WitnessMessage::Note(encoded(&cosigned)), out);
            }
            Ok(witness::Verdict::Ahead { .. }) => {
                if self.witnessing.ahead.is_empty() {
                    self.witnessing.retry_at = now.plus_ms(AHEAD_RETRY_MS);
                }
                let notes = self.witnessing.ahead.entry(author).or_default();
                let kept = notes.len() < AHEAD_PER_LOG
                    || notes.keys().next().is_some_and(|smallest| *smallest < size);
                let added = kept && notes.insert(size, note.clone()).is_none();
                if notes.len() > AHEAD_PER_LOG {
                    notes.pop_first();
                }
                if added {
                    self.checkpoint_event("ahead");
                }
            }
            Ok(witness::Verdict::Conflict { own_root }) => {
                let conflict = Conflict {
                    size,
                    signed: root,
                    held: own_root,
                };
                if self.witnessing.conflicts.get(&author) != Some(&conflict) {
                    self.checkpoint_event("conflict");
                    Self::log(
                        out,
                        Level::Error,
                        format!(
                            "{} signed a checkpoint of its log at size {size} with root {}, but its log as held here has root {} at that size: it signed a log other than the one it published",
                            self.name_of(&author),
                            hex::encode(root.0),
                            hex::encode(own_root.0)
                        ),
                    );
                    self.witnessing.conflicts.insert(author, conflict);
                }
            }
            Ok(witness::Verdict::SplitView { cosigned }) => {
                self.found_split_view(author, *cosigned, note.clone(), true, out);
            }
            Ok(witness::Verdict::Own | witness::Verdict::Stale { .. }) => {}
            Err(e) => Self::log(
                out,
                Level::Error,
                format!("store failure while witnessing: {e}"),
            ),
        }
    }

    /// Keeps split-view evidence of `author` (the first pair only), says
    /// so, and (unless it came by gossip, which forwards it) publishes it.
    fn found_split_view(
        &mut self,
        author: AuthorityId,
        first: Note,
        second: Note,
        publish: bool,
        out: &mut Vec<Output>,
    ) {
        if self.witnessing.split.contains_key(&author) {
            return;
        }
        // The evidence is the author's two signatures: cosignatures are
        // left out, so the pair stays small wherever it travels.
        let federation = self.replica.federation();
        let (first, second) = (
            author_only(&first, &author, federation),
            author_only(&second, &author, federation),
        );
        self.checkpoint_event("split_view");
        Self::log(
            out,
            Level::Error,
            format!(
                "{} signed two checkpoints of its log with one size and two roots (a split view); the pair is kept as evidence",
                self.name_of(&author)
            ),
        );
        if publish {
            self.publish_witness(&WitnessMessage::SplitView(wire::pair(&first, &second)), out);
        }
        self.witnessing.split.insert(author, (first, second));
        self.witnessing.unsaved.insert(author);
    }

    fn take_split_view(
        &mut self,
        pair: &SplitViewPair,
        publish: bool,
        out: &mut Vec<Output>,
    ) -> Verdict {
        match wire::check_split_view(pair, self.replica.federation()) {
            Ok((author, first, second)) => {
                if self.witnessing.split.contains_key(&author) {
                    Verdict::Ignore
                } else {
                    self.found_split_view(author, first, second, publish, out);
                    Verdict::Accept
                }
            }
            Err(e) => {
                self.checkpoint_event("rejected");
                Self::log(
                    out,
                    Level::Warn,
                    format!("split-view evidence refused: {e}"),
                );
                Verdict::Reject
            }
        }
    }

    fn publish_witness(&mut self, message: &WitnessMessage, out: &mut Vec<Output>) {
        match wire::encode(message) {
            Ok(bytes) => {
                self.counters.gossip_bytes_out += bytes.len() as u64;
                out.push(Output::PublishCheckpoint { bytes });
            }
            Err(e) => Self::log(
                out,
                Level::Error,
                format!("cannot encode a witness message: {e}"),
            ),
        }
    }

    /// The own log's head a checkpoint may cover now: the node issues,
    /// every own notice signed is durable, and the mark covers the head
    /// (a replica sharing this key that did not sign its notices never
    /// checkpoints them).
    fn checkpointable_head(&self) -> Option<crate::store::Head> {
        if !self.config.checkpoints
            || self.gate.readiness != Readiness::Ready
            || !self.undurable.is_empty()
            || !self.key_current()
        {
            return None;
        }
        let head = self.replica.store().head(&self.me).ok().flatten()?;
        self.gate
            .mark
            .as_ref()
            .is_some_and(|m| m.seq == head.seq)
            .then_some(head)
    }

    /// When the own checkpoint is next due, if it can be signed at all.
    fn own_due(&self, head: &crate::store::Head) -> Timestamp {
        match self.witnessing.own {
            None => Timestamp(0),
            Some((size, at)) if head.seq > size => at.plus_ms(CHECKPOINT_INTERVAL_MS),
            Some((_, at)) => at.plus_ms(CHECKPOINT_REPUBLISH_MS),
        }
    }

    /// Signs (or publishes again) the own log's checkpoint when it is due.
    pub(super) fn checkpoint_own(&mut self, now: Timestamp, out: &mut Vec<Output>) {
        let Some(head) = self.checkpointable_head() else {
            return;
        };
        if now < self.own_due(&head) {
            return;
        }
        let federation = self.replica.federation();
        let checkpoint = Checkpoint::of_log(&federation.id(), &self.me, head.seq, head.root());
        let Ok(note) = cp::sign(&self.key, &checkpoint) else {
            return;
        };
        let verified = Verified {
            checkpoint,
            author: self.me,
            cosigners: Vec::new(),
        };
        self.witnessing.book.take(&note, &verified, federation);
        self.witnessing.version += 1;
        if self.witnessing.own.is_none_or(|(size, _)| size < head.seq) {
            self.checkpoint_event("signed");
        }
        self.witnessing.own = Some((head.seq, now));
        self.publish_witness(&WitnessMessage::Note(encoded(&note)), out);
    }

    /// Looks again at checkpoints that were ahead of this node's copy.
    pub(super) fn retry_ahead(&mut self, now: Timestamp, out: &mut Vec<Output>) {
        if self.witnessing.ahead.is_empty() || now < self.witnessing.retry_at {
            return;
        }
        self.witnessing.retry_at = now.plus_ms(AHEAD_RETRY_MS);
        // The largest size each log's copy now reaches: witnessing it
        // first examines the smaller ones (see `witness`).
        let ready: Vec<Note> = self
            .witnessing
            .ahead
            .iter()
            .filter_map(|(author, notes)| {
                let held = self.held_size(author);
                notes.range(..=held).next_back().map(|(_, n)| n.clone())
            })
            .collect();
        for note in ready {
            if let Ok(verified) = self
                .witnessing
                .book
                .verify(&note, self.replica.federation())
            {
                let size = verified.checkpoint.size;
                if let Some(notes) = self.witnessing.ahead.get_mut(&verified.author) {
                    notes.remove(&size);
                }
                self.witness(&verified, &note, now, out);
            }
        }
    }

    /// When the checkpoint work next falls due.
    pub(super) fn checkpoint_wakeup(&self) -> Option<Timestamp> {
        if !self.config.checkpoints {
            return None;
        }
        let mut at: Option<Timestamp> = None;
        let mut earliest = |t: Timestamp| at = Some(at.map_or(t, |a| a.min(t)));
        if let Some(head) = self.checkpointable_head() {
            earliest(self.own_due(&head));
        }
        if !self.witnessing.ahead.is_empty() {
            earliest(self.witnessing.retry_at);
        }
        if let Some(save) = self.witnessing.save_at {
            earliest(save);
        }
        at
    }

    /// The checkpoint exchange of a sync round with `peer`.
    pub(super) fn ask_checkpoints(&mut self, peer: AuthorityId, out: &mut Vec<Output>) {
        if !self.config.checkpoints || self.witnessing.asks.values().any(|p| *p == peer) {
            return;
        }
        let w = &self.witnessing;
        let mut have: Vec<CheckpointHave> = w
            .book
            .logs()
            .map(|(author, newest, witnessed)| CheckpointHave {
                author: *author,
                size: newest.map_or(0, |g| g.verified.checkpoint.size),
                root: newest.map_or([0; 32], |g| g.verified.checkpoint.root.0),
                cosigners: newest.map_or(0, |g| g.cosigners() as u32),
                witnessed: witnessed.map_or(0, |g| g.verified.checkpoint.size),
                split_view: w.split.contains_key(author),
            })
            .collect();
        for author in w.split.keys() {
            if !have.iter().any(|h| h.author == *author) {
                have.push(CheckpointHave {
                    author: *author,
                    size: 0,
                    root: [0; 32],
                    cosigners: 0,
                    witnessed: 0,
                    split_view: true,
                });
            }
        }
        have.truncate(HEADS_MAX);
        let token = self.token();
        if self.send_sync(peer, token, &SyncRequest::Checkpoints(have), out) {
            self.witnessing.asks.insert(token, peer);
        }
    }

    /// Answers a peer's checkpoint exchange from the book.
    pub(super) fn answer_checkpoints(&self, have: &[CheckpointHave]) -> SyncResponse {
        let w = &self.witnessing;
        let mut notes = Vec::new();
        let mut split_views = Vec::new();
        let mut bytes = 0usize;
        let mut room = |len: usize| {
            bytes += len;
            bytes <= wire::CHECKPOINTS_ANSWER_BYTES_MAX
        };
        for (author, (first, second)) in &w.split {
            if have.iter().any(|h| h.author == *author && h.split_view) {
                continue;
            }
            let pair = wire::pair(first, second);
            if !room(pair.first.len() + pair.second.len()) {
                break;
            }
            split_views.push(pair);
        }
        for (author, newest, witnessed) in w.book.logs() {
            let theirs = have.iter().find(|h| h.author == *author);
            let (size, root, cosigners, their_witnessed) = theirs.map_or((0, [0; 32], 0, 0), |h| {
                (h.size, h.root, h.cosigners, h.witnessed)
            });
            if let Some(n) = newest {
                let s = n.verified.checkpoint.size;
                let other_root = s == size && n.verified.checkpoint.root.0 != root;
                if s > size || (s == size && n.cosigners() as u32 > cosigners) || other_root {
                    let note = encoded(&n.note());
                    if room(note.len()) {
                        notes.push(note);
                    }
                }
            }
            if let (Some(w), Some(n)) = (witnessed, newest)
                && w.verified.checkpoint.size != n.verified.checkpoint.size
                && w.verified.checkpoint.size > their_witnessed
            {
                let note = encoded(&w.note());
                if room(note.len()) {
                    notes.push(note);
                }
            }
        }
        SyncResponse::Checkpoints { notes, split_views }
    }

    /// A peer's answer to [`Engine::ask_checkpoints`]; `false` if `token`
    /// was not one.
    pub(super) fn on_checkpoints_answer(
        &mut self,
        peer: AuthorityId,
        token: u64,
        response: Option<SyncResponse>,
        now: Timestamp,
        out: &mut Vec<Output>,
    ) -> bool {
        if self.witnessing.asks.get(&token) != Some(&peer) {
            return false;
        }
        self.witnessing.asks.remove(&token);
        let Some(SyncResponse::Checkpoints { notes, split_views }) = response else {
            return true;
        };
        // At most two notes a log and one pair a log are of use; a peer
        // that sends more, or one invalid note, is heard no further.
        let logs = self.replica.federation().roster().members.len();
        if notes.len() > 2 * logs || split_views.len() > logs {
            self.checkpoint_event("rejected");
            Self::log(
                out,
                Level::Warn,
                format!(
                    "{} answered {} checkpoints and {} split views for {logs} logs: ignored",
                    self.name_of(&peer),
                    notes.len(),
                    split_views.len()
                ),
            );
            return true;
        }
        for pair in &split_views {
            if self.take_split_view(pair, true, out) == Verdict::Reject {
                return true;
            }
        }
        for bytes in &notes {
            let verdict = match Note::parse(bytes) {
                Ok(note) => self.take_note(&note, now, out),
                Err(_) => {
                    self.checkpoint_event("rejected");
                    Verdict::Reject
                }
            };
            if verdict == Verdict::Reject {
                return true;
            }
        }
        true
    }

    /// The checkpoint book (what query answers are checked against).
    pub(super) fn book(&self) -> &Book {
        &self.witnessing.book
    }

    /// Changes whenever the book does.
    pub(super) fn book_version(&self) -> u64 {
        self.witnessing.version
    }

    /// Forgets every checkpoint state of `author`'s log: a roster version
    /// cut it back, so checkpoints past the cut are of notices no longer
    /// in it, and the witness starts over from the log as it is now.
    pub(super) fn forget_log(&mut self, author: &AuthorityId) {
        let state = &mut self.witnessing;
        state.book.forget(author);
        state.witness.forget(author);
        state.ahead.remove(author);
        state.split.remove(author);
        state.conflicts.remove(author);
        if *author == self.me {
            state.own = None;
        }
        state.version += 1;
        state.unsaved.insert(*author);
    }

    /// Keeps in the store, once [`CHECKPOINT_SAVE_MS`] have passed since
    /// the first change, the notes of each log whose notes changed: the
    /// book's newest and quorum-cosigned notes and any split-view pair
    /// (a restart takes them back with [`Engine::restore_checkpoints`]).
    pub(super) fn save_checkpoints(&mut self, now: Timestamp, out: &mut Vec<Output>) {
        if self.witnessing.unsaved.is_empty() {
            return;
        }
        match self.witnessing.save_at {
            None => {
                self.witnessing.save_at = Some(now.plus_ms(CHECKPOINT_SAVE_MS));
                return;
            }
            Some(at) if at > now => return,
            Some(_) => self.witnessing.save_at = None,
        }
        for author in std::mem::take(&mut self.witnessing.unsaved) {
            let mut notes: Vec<Vec<u8>> = self
                .witnessing
                .book
                .notes_of(&author)
                .iter()
                .map(|note| note.encode().into_bytes())
                .collect();
            if let Some((first, second)) = self.witnessing.split.get(&author) {
                notes.push(first.encode().into_bytes());
                notes.push(second.encode().into_bytes());
            }
            if let Err(e) = self
                .replica
                .store_mut()
                .put_checkpoint_notes(&author, &notes)
            {
                Self::log(
                    out,
                    Level::Error,
                    format!(
                        "cannot keep the checkpoint notes of {}: {e}",
                        self.name_of(&author)
                    ),
                );
            }
        }
    }

    /// Takes back the checkpoint notes kept in the store (at start): the
    /// book as it was, and the split views it held, each verified again.
    pub(super) fn restore_checkpoints(&mut self) {
        let Ok(kept) = self.replica.store().checkpoint_notes() else {
            return;
        };
        for (_, notes) in kept {
            let mut parsed: Vec<(u64, Note)> = notes
                .iter()
                .filter_map(|bytes| Note::parse(bytes).ok())
                .filter_map(|note| {
                    Checkpoint::parse_text(&note.text)
                        .ok()
                        .map(|c| (c.size, note))
                })
                .collect();
            parsed.sort_by_key(|(size, _)| *size);
            for (_, note) in parsed {
                let federation = self.replica.federation();
                let Ok(verified) = self.witnessing.book.verify(&note, federation) else {
                    continue;
                };
                if let Taken::SplitView(pair) =
                    self.witnessing.book.take(&note, &verified, federation)
                {
                    let (first, second) = *pair;
                    self.found_split_view(verified.author, first, second, false, &mut Vec::new());
                }
            }
        }
        self.witnessing.unsaved.clear();
        self.witnessing.version += 1;
    }

    /// Marks the book changed, as a cosignature that adds nothing to the
    /// quorum-cosigned checkpoints does.
    #[cfg(test)]
    pub(super) fn touch_book(&mut self) {
        self.witnessing.version += 1;
    }

    /// Whether `token` is a checkpoint exchange in flight.
    pub(super) fn witnessing_asked(&self, token: u64) -> bool {
        self.witnessing.asks.contains_key(&token)
    }

    /// Forgets exchanges with a peer that left.
    pub(super) fn forget_checkpoint_asks(&mut self, peer: &AuthorityId) {
        self.witnessing.asks.retain(|_, p| p != peer);
    }

    /// Forgets one exchange that failed; `false` if `token` was not one.
    pub(super) fn checkpoint_ask_failed(&mut self, token: u64) -> bool {
        self.witnessing.asks.remove(&token).is_some()
    }
}
