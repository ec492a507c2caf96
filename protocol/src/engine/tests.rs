//! Engines wired to each other through an in-test network that delivers
//! every output in order: the decisions of the gate, sync, gossip and the
//! query fan-out, checked without a shell.

use super::*;
use crate::store::MemStore;
use crate::testkit::{self, TestFederation};

const START: Timestamp = Timestamp(1_780_000_000_000);

struct Node {
    engine: Engine<MemStore>,
    up: bool,
    /// The durable mark, as the shell would keep it.
    mark: Option<Mark>,
    issued: Vec<Result<IssuedNotice, Refusal>>,
    queries: Vec<Result<QueryResult, Refusal>>,
    records: usize,
}

enum Msg {
    Gossip(Vec<u8>),
    Witness(Vec<u8>),
    SyncRequest(u64, Vec<u8>),
    SyncResponse(u64, Vec<u8>),
    QueryRequest(u64, Vec<u8>),
    QueryResponse(u64, Vec<u8>),
}

/// How a lying responder rewrites its answers.
type Lie = fn(&mut crate::query::QueryAnswer);

struct Net {
    test: TestFederation,
    nodes: Vec<Node>,
    queue: VecDeque<(usize, usize, Msg)>,
    now: Timestamp,
    /// Gossip off: only sync carries notices.
    gossip: bool,
    /// A member whose query answers are rewritten on the way (a lying
    /// responder), and how.
    liar: Option<(usize, Lie)>,
}

fn key(test: &TestFederation, i: usize) -> AuthorityKey {
    AuthorityKey::from_secret_bytes(test.keys[i].secret_bytes())
}

impl Net {
    fn new(members: usize) -> Net {
        let test = testkit::federation(21, members);
        let mut net = Net {
            nodes: Vec::new(),
            test,
            queue: VecDeque::new(),
            now: START,
            gossip: true,
            liar: None,
        };
        for i in 0..members {
            let node = net.fresh(i, Some(Mark::zero()));
            net.nodes.push(node);
        }
        net
    }

    fn fresh(&self, i: usize, mark: Option<Mark>) -> Node {
        let replica = Replica::new(self.test.federation.clone(), MemStore::new());
        self.with_replica(i, replica, mark)
    }

    /// Restarts node `i`: a fresh engine over the same store and mark.
    fn restart(&mut self, i: usize) {
        let placeholder = self.fresh(i, None);
        let old = std::mem::replace(&mut self.nodes[i], placeholder);
        let mark = old.mark.clone();
        let replica = old.engine.into_replica();
        self.nodes[i] = self.with_replica(i, replica, mark);
    }

    fn with_replica(&self, i: usize, replica: Replica<MemStore>, mark: Option<Mark>) -> Node {
        self.with_key(i, key(&self.test, i), replica, mark)
    }

    fn with_key(
        &self,
        i: usize,
        key: AuthorityKey,
        replica: Replica<MemStore>,
        mark: Option<Mark>,
    ) -> Node {
        let config = EngineConfig {
            sync_interval_ms: 1_000,
            sync_timeout_ms: 5_000,
            ..EngineConfig::default()
        };
        Node {
            engine: Engine::new(config, replica, key, mark.clone(), i as u64, self.now),
            up: true,
            mark,
            issued: Vec::new(),
            queries: Vec::new(),
            records: 0,
        }
    }

    fn id(&self, i: usize) -> AuthorityId {
        self.test.author(i)
    }

    fn index(&self, id: &AuthorityId) -> usize {
        (0..self.nodes.len())
            .find(|i| self.id(*i) == *id)
            .expect("a member")
    }

    /// Connects every pair of live nodes.
    fn connect_all(&mut self) {
        for a in 0..self.nodes.len() {
            for b in 0..self.nodes.len() {
                if a != b && self.nodes[a].up && self.nodes[b].up {
                    let peer = self.id(b);
                    self.input(a, Input::Connected { peer, target: None });
                }
            }
        }
        self.run();
    }

    fn input(&mut self, i: usize, input: Input<'_>) {
        let now = self.now;
        let out = self.nodes[i].engine.handle(input, now);
        self.apply(i, out);
    }

    fn apply(&mut self, i: usize, out: Vec<Output>) {
        let mut follow = VecDeque::new();
        for output in out {
            match output {
                Output::Persist { mark } => {
                    let seq = mark.seq;
                    self.nodes[i].mark = Some(*mark);
                    follow.push_back(Input::Persisted { seq });
                }
                Output::Publish { id, envelope } => {
                    if self.gossip {
                        for peer in 0..self.nodes.len() {
                            if peer != i {
                                self.queue
                                    .push_back((i, peer, Msg::Gossip(envelope.to_vec())));
                            }
                        }
                    }
                    follow.push_back(Input::Published {
                        id,
                        result: Publication::Sent,
                    });
                }
                Output::PublishCheckpoint { bytes } if self.gossip => {
                    for peer in 0..self.nodes.len() {
                        if peer != i {
                            self.queue.push_back((i, peer, Msg::Witness(bytes.clone())));
                        }
                    }
                }
                Output::SendSync { peer, token, bytes } => {
                    let to = self.index(&peer);
                    self.queue
                        .push_back((i, to, Msg::SyncRequest(token, bytes)));
                }
                Output::SendQuery { peer, token, bytes } => {
                    let to = self.index(&peer);
                    self.queue
                        .push_back((i, to, Msg::QueryRequest(token, bytes)));
                }
                Output::ReadRanges { reply, ranges } => {
                    let store = self.nodes[i].engine.replica().store();
                    follow.push_back(Input::RangesRead {
                        reply,
                        result: sync::read_ranges(store, &ranges),
                    });
                }
                Output::AnswerSync { reply, bytes } => {
                    let (to, token) = ((reply >> 32) as usize, reply & 0xffff_ffff);
                    if let Some(bytes) = bytes {
                        self.queue
                            .push_back((i, to, Msg::SyncResponse(token, bytes)));
                    }
                }
                Output::AnswerQuery { reply, bytes } => {
                    let (to, token) = ((reply >> 32) as usize, reply & 0xffff_ffff);
                    if let Some(bytes) = bytes {
                        self.queue
                            .push_back((i, to, Msg::QueryResponse(token, bytes)));
                    }
                }
                Output::Issued { result, .. } => self.nodes[i]
                    .issued
                    .push(result.map_err(|refusal| *refusal)),
                Output::QueryDone { result, .. } => self.nodes[i].queries.push(*result),
                Output::Record(_) => self.nodes[i].records += 1,
                _ => {}
            }
        }
        while let Some(input) = follow.pop_front() {
            let now = self.now;
            let out = self.nodes[i].engine.handle(input, now);
            self.apply(i, out);
        }
        while self.nodes[i].engine.has_deferred() {
            let now = self.now;
            let out = self.nodes[i].engine.handle(Input::RunDeferred, now);
            self.apply(i, out);
        }
    }

    /// Delivers until nothing is in flight; messages to a node that is
    /// down are lost.
    fn run(&mut self) {
        let mut steps = 0;
        while let Some((from, to, msg)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "the network does not settle");
            if !self.nodes[to].up {
                continue;
            }
            let peer = self.id(from);
            let now = self.now;
            let msg = match (msg, self.liar) {
                (Msg::QueryResponse(token, bytes), Some((liar, lie))) if liar == from => {
                    Msg::QueryResponse(token, self.lie(from, &bytes, lie))
                }
                (msg, _) => msg,
            };
            let out = match &msg {
                Msg::Gossip(bytes) => {
                    let id = NoticeId::from(credence_crypto::merkle::leaf_hash(bytes));
                    self.nodes[to].engine.handle(
                        Input::Gossip {
                            from: peer,
                            message: 0,
                            id,
                            bytes,
                        },
                        now,
                    )
                }
                Msg::Witness(bytes) => self.nodes[to].engine.handle(
                    Input::WitnessGossip {
                        from: peer,
                        message: 0,
                        bytes,
                    },
                    now,
                ),
                Msg::SyncRequest(token, bytes) => self.nodes[to].engine.handle(
                    Input::SyncRequest {
                        peer,
                        reply: ((from as u64) << 32) | token,
                        bytes,
                    },
                    now,
                ),
                Msg::SyncResponse(token, bytes) => self.nodes[to].engine.handle(
                    Input::SyncResponse {
                        peer,
                        token: *token,
                        bytes,
                    },
                    now,
                ),
                Msg::QueryRequest(token, bytes) => self.nodes[to].engine.handle(
                    Input::QueryRequest {
                        peer,
                        reply: ((from as u64) << 32) | token,
                        bytes,
                    },
                    now,
                ),
                Msg::QueryResponse(token, bytes) => self.nodes[to].engine.handle(
                    Input::QueryResponse {
                        peer,
                        token: *token,
                        bytes,
                    },
                    now,
                ),
            };
            self.apply(to, out);
        }
    }

    /// Member `from`'s signed answer rewritten by `lie` and signed again
    /// with its key.
    fn lie(&self, from: usize, bytes: &[u8], lie: Lie) -> Vec<u8> {
        use crate::query::{ANSWER_BYTES_MAX, Signed, sign_answer};
        let signed = Signed::decode::<{ ANSWER_BYTES_MAX + 128 }>(bytes).expect("an answer");
        let mut answer: crate::query::QueryAnswer =
            crate::codec::decode_bounded::<_, ANSWER_BYTES_MAX>("answer", &signed.body)
                .expect("an answer body");
        lie(&mut answer);
        sign_answer(answer, &key(&self.test, from))
            .expect("signed")
            .signed
            .encode::<{ ANSWER_BYTES_MAX + 128 }>()
            .expect("encoded")
    }

    /// Advances the clock and ticks every live node.
    fn tick(&mut self, ms: u64) {
        self.now = self.now.plus_ms(ms);
        for i in 0..self.nodes.len() {
            if self.nodes[i].up {
                self.input(i, Input::Tick);
            }
        }
        self.run();
    }

    fn issue(&mut self, i: usize, subject: u64) -> Result<IssuedNotice, Refusal> {
        let listing = testkit::listing(subject, "food-drug", self.now);
        self.input(
            i,
            Input::Issue {
                ticket: 0,
                kind: Box::new(NoticeKind::List(listing)),
            },
        );
        self.run();
        self.nodes[i].issued.pop().expect("an answer")
    }

    fn own_seq(&self, i: usize) -> u64 {
        let me = self.id(i);
        self.nodes[i]
            .engine
            .replica()
            .store()
            .head(&me)
            .expect("store")
            .map_or(0, |h| h.seq)
    }

    fn forks(&self, i: usize) -> usize {
        self.nodes[i]
            .engine
            .replica()
            .store()
            .forks()
            .expect("forks")
            .len()
    }

    /// Node `i` loses its store (and keeps its mark, or not).
    fn lose_store(&mut self, i: usize, keep_mark: bool) {
        let mark = if keep_mark {
            self.nodes[i].mark.clone()
        } else {
            None
        };
        self.nodes[i] = self.fresh(i, mark);
    }
}

#[test]
fn an_own_notice_is_acknowledged_and_published_only_once_durable() {
    let mut net = Net::new(3);
    let listing = testkit::listing(1, "food-drug", START);
    let out = net.nodes[0].engine.handle(
        Input::Issue {
            ticket: 9,
            kind: Box::new(NoticeKind::List(listing)),
        },
        START,
    );
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Issued { .. } | Output::Publish { .. })),
        "acknowledged or published before it was durable: {out:?}"
    );
    assert!(
        matches!(out.last(), Some(Output::Persist { mark }) if mark.seq == 1 && mark.envelope.is_some())
    );
    let out = net.nodes[0]
        .engine
        .handle(Input::Persisted { seq: 1 }, START);
    let issued = out
        .iter()
        .position(|o| {
            matches!(
                o,
                Output::Issued {
                    ticket: 9,
                    result: Ok(IssuedNotice { seq: 1, .. })
                }
            )
        })
        .expect("acknowledged");
    let published = out
        .iter()
        .position(|o| matches!(o, Output::Publish { .. }))
        .expect("published");
    assert!(issued < published, "{out:?}");
    assert_eq!(net.nodes[0].engine.mark().map(|m| m.seq), Some(1));
}

#[test]
fn gossip_and_sync_carry_notices_to_every_member() {
    let mut net = Net::new(3);
    net.connect_all();
    for subject in 0..5 {
        net.issue(0, subject).expect("issued");
    }
    for i in 0..3 {
        assert_eq!(
            net.nodes[i]
                .engine
                .replica()
                .store()
                .notice_count()
                .unwrap(),
            5
        );
    }
    // Without gossip, the sync rounds carry them.
    net.gossip = false;
    for subject in 5..9 {
        net.issue(1, subject).expect("issued");
    }
    assert_eq!(
        net.nodes[2]
            .engine
            .replica()
            .store()
            .notice_count()
            .unwrap(),
        5
    );
    net.tick(2_000);
    for i in 0..3 {
        assert_eq!(
            net.nodes[i]
                .engine
                .replica()
                .store()
                .notice_count()
                .unwrap(),
            9
        );
    }
}

#[test]
fn a_node_that_lost_its_store_refuses_to_issue_until_peers_restore_it() {
    let mut net = Net::new(3);
    net.connect_all();
    for subject in 0..3 {
        net.issue(0, subject).expect("issued");
    }
    // Store deleted while every peer is down; the mark survived.
    net.nodes[1].up = false;
    net.nodes[2].up = false;
    net.lose_store(0, true);
    for _ in 0..20 {
        net.tick(10_000);
        let refused = net.issue(0, 10).expect_err("it must not issue");
        assert_eq!(refused.code(), "restoring");
        assert!(matches!(
            net.nodes[0].engine.readiness(),
            Readiness::Restoring { held: 0, mark: 3 }
        ));
    }
    // The peers return: it restores its log and continues at seq 4.
    net.nodes[1].up = true;
    net.nodes[2].up = true;
    net.connect_all();
    assert_eq!(net.nodes[0].engine.readiness(), &Readiness::Ready);
    let issued = net.issue(0, 11).expect("issued");
    assert_eq!(issued.seq, 4);
    for i in 0..3 {
        assert_eq!(net.forks(i), 0, "node {i} recorded a fork");
    }
}

#[test]
fn a_lagging_peer_answering_first_does_not_open_the_gate() {
    let mut net = Net::new(3);
    net.connect_all();
    net.issue(0, 1).expect("issued");
    // Node 2 is cut off while node 0 signs two more.
    net.nodes[2].up = false;
    net.issue(0, 2).expect("issued");
    net.issue(0, 3).expect("issued");
    net.nodes[1].up = false;
    net.lose_store(0, true);
    net.nodes[2].up = true;
    // Only the lagging peer is there: it holds seq 1 of node 0's log.
    let lagging = net.id(2);
    net.input(
        0,
        Input::Connected {
            peer: lagging,
            target: None,
        },
    );
    net.run();
    assert_eq!(net.own_seq(0), 1);
    assert!(matches!(
        net.nodes[0].engine.readiness(),
        Readiness::Restoring { held: 1, mark: 3 }
    ));
    assert_eq!(net.issue(0, 9).unwrap_err().code(), "restoring");
    net.nodes[1].up = true;
    net.connect_all();
    assert_eq!(net.nodes[0].engine.readiness(), &Readiness::Ready);
    assert_eq!(net.issue(0, 10).expect("issued").seq, 4);
    for i in 0..3 {
        assert_eq!(net.forks(i), 0);
    }
}

#[test]
fn a_store_that_lost_only_the_last_notice_takes_it_from_the_mark() {
    let mut net = Net::new(2);
    net.connect_all();
    net.issue(0, 1).expect("issued");
    net.nodes[1].up = false;
    net.issue(0, 2).expect("issued");
    // The store keeps seq 1 only; the mark has seq 2 with its envelope.
    let mut replica = Replica::new(net.test.federation.clone(), MemStore::new());
    let first = {
        let store = net.nodes[0].engine.replica().store();
        let id = store.log_id(&net.id(0), 1).unwrap().unwrap();
        store.notice(&id).unwrap().unwrap()
    };
    replica.ingest(&first).unwrap();
    let mark = net.nodes[0].mark.clone();
    net.nodes[0] = net.with_replica(0, replica, mark);
    assert_eq!(net.nodes[0].engine.readiness(), &Readiness::Ready);
    assert_eq!(net.own_seq(0), 2);
    assert_eq!(net.issue(0, 3).expect("issued").seq, 3);
}

#[test]
fn a_new_machine_without_a_mark_waits_for_a_majority() {
    let mut net = Net::new(5);
    net.connect_all();
    for subject in 0..4 {
        net.issue(0, subject).expect("issued");
    }
    // Disk and mark lost; two of the four others are down: two reports of
    // the three needed.
    net.nodes[3].up = false;
    net.nodes[4].up = false;
    net.lose_store(0, false);
    net.connect_all();
    assert!(
        matches!(
            net.nodes[0].engine.readiness(),
            Readiness::Recovering {
                reported: 2,
                needed: 3,
                highest: 4,
                held: 4
            }
        ),
        "{:?}",
        net.nodes[0].engine.readiness()
    );
    assert_eq!(net.issue(0, 9).unwrap_err().code(), "recovering");
    net.nodes[3].up = true;
    net.connect_all();
    assert_eq!(net.nodes[0].engine.readiness(), &Readiness::Ready);
    // It wrote a mark for what it recovered.
    assert_eq!(net.nodes[0].mark.as_ref().map(|m| m.seq), Some(4));
    assert_eq!(net.issue(0, 10).expect("issued").seq, 5);
}

#[test]
fn a_copy_of_the_key_signing_elsewhere_stops_issuing() {
    let mut net = Net::new(3);
    net.connect_all();
    net.issue(0, 1).expect("issued");
    // A copy of node 0's key, on another machine, signs seq 2 too.
    let mut copy = net.fresh(0, None);
    let first = {
        let store = net.nodes[0].engine.replica().store();
        let id = store.log_id(&net.id(0), 1).unwrap().unwrap();
        store.notice(&id).unwrap().unwrap()
    };
    copy.engine.replica_mut().ingest(&first).unwrap();
    let stolen = key(&net.test, 0);
    let listing = testkit::listing(77, "food-drug", START);
    let other = copy
        .engine
        .replica_mut()
        .issue(&stolen, NoticeKind::List(listing), START)
        .expect("signed");
    net.issue(0, 2).expect("issued");
    let id = NoticeId::from(credence_crypto::merkle::leaf_hash(&other.envelope));
    let peer = net.id(1);
    let out = net.nodes[0].engine.handle(
        Input::Gossip {
            from: peer,
            message: 5,
            id,
            bytes: &other.envelope,
        },
        net.now,
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Verdict {
            message: 5,
            verdict: Verdict::Accept
        }
    )));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Readiness(Readiness::Forked { seq: 2 })))
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Log {
            level: Level::Error,
            ..
        }
    )));
    assert_eq!(net.issue(0, 3).unwrap_err().code(), "own_log_forked");
    assert_eq!(
        net.nodes[0].engine.counters().issue_refused.get("forked"),
        Some(&1)
    );
}

#[test]
fn fork_evidence_reaches_a_replica_by_sync_alone() {
    let mut net = Net::new(3);
    net.gossip = false;
    // Member 2 equivocates at seq 1: node 0 gets one notice and then the
    // other (evidence); node 1 only the first.
    let equivocator = key(&net.test, 2);
    let (federation, author) = (net.test.federation.id(), net.test.author(2));
    let make = |subject| {
        let notice = crate::model::Notice {
            version: crate::model::NOTICE_VERSION,
            roster: 0,
            federation,
            author,
            seq: 1,
            prev: NoticeId::default(),
            issued_at: START,
            kind: NoticeKind::List(testkit::listing(subject, "food-drug", START)),
        };
        testkit::sign(&equivocator, &notice).1
    };
    let (x, y) = (make(1), make(2));
    net.nodes[0]
        .engine
        .replica_mut()
        .ingest_batch(&[&x, &y])
        .unwrap();
    net.nodes[1]
        .engine
        .replica_mut()
        .ingest_batch(&[&x])
        .unwrap();
    assert_eq!((net.forks(0), net.forks(1)), (1, 0));
    // Same heads, different evidence: the digests differ and node 1 pulls.
    let b = net.id(1);
    net.input(
        0,
        Input::Connected {
            peer: b,
            target: None,
        },
    );
    net.run();
    assert_eq!(net.forks(1), 1);
    // And the other way: node 1 starting the session pulls it too.
    net.nodes[1] = net.fresh(1, Some(Mark::zero()));
    net.nodes[1]
        .engine
        .replica_mut()
        .ingest_batch(&[&x])
        .unwrap();
    let a = net.id(0);
    net.input(
        1,
        Input::Connected {
            peer: a,
            target: None,
        },
    );
    net.run();
    assert_eq!(net.forks(1), 1);
    // One pair per author, however many more it signs at that seq.
    let z = make(3);
    net.nodes[0]
        .engine
        .replica_mut()
        .ingest_batch(&[&z])
        .unwrap();
    assert_eq!(net.forks(0), 1);
}

/// What node `i` holds of `author`'s checkpoints.
fn checkpoints_of(net: &Net, i: usize, author: usize) -> Option<LogCheckpoints> {
    let author = net.id(author);
    net.nodes[i]
        .engine
        .checkpoints()
        .into_iter()
        .find(|c| c.author == author)
}

#[test]
fn checkpoints_are_signed_cosigned_by_a_quorum_and_carried_by_sync() {
    let mut net = Net::new(4);
    net.connect_all();
    net.issue(0, 1).expect("issued");
    net.issue(0, 2).expect("issued");
    // The first checkpoint is signed once the first notice is durable;
    // the next waits for the interval.
    for i in 1..4 {
        let held = checkpoints_of(&net, i, 0).expect("a checkpoint of log 0");
        let newest = held.newest.expect("newest");
        assert_eq!(newest.size, 1);
        // A quorum of the other members cosigned (more add nothing: they
        // are taken no further once a quorum is held).
        assert!(
            newest.cosigners.len() >= 2,
            "node {i}: {:?}",
            newest.cosigners
        );
        assert!(newest.witnessed);
        crate::checkpoint::verify(newest.note.encode().as_bytes(), &net.test.federation)
            .expect("the gathered note verifies");
    }
    net.tick(witnessing::CHECKPOINT_INTERVAL_MS);
    let held = checkpoints_of(&net, 3, 0).expect("held");
    assert_eq!(held.witnessed.expect("witnessed").size, 2);
    // The witness refuses nothing it can check; the author's own view
    // gathers its cosignatures too.
    let own = checkpoints_of(&net, 0, 0).expect("own");
    assert!(own.witnessed.expect("witnessed").cosigners.len() >= 2);
    // A node that lost everything gets notices and checkpoints by sync
    // alone.
    net.gossip = false;
    net.lose_store(3, true);
    net.connect_all();
    net.tick(2_000);
    let held = checkpoints_of(&net, 3, 0).expect("held after sync");
    assert_eq!(held.witnessed.expect("witnessed").size, 2);
    assert_eq!(
        net.nodes[3].engine.counters().checkpoints.get("rejected"),
        None
    );
}

#[test]
fn a_witness_never_cosigns_a_root_its_copy_does_not_have() {
    let mut net = Net::new(3);
    net.connect_all();
    net.issue(0, 1).expect("issued");
    // Member 0 signs a checkpoint of size 1 with another root: node 1
    // cosigned the true one, refuses this, and keeps the pair.
    let liar = key(&net.test, 0);
    let federation = net.test.federation.id();
    let lie = crate::checkpoint::Checkpoint::of_log(
        &federation,
        &net.id(0),
        1,
        credence_crypto::merkle::leaf_hash(b"another log"),
    );
    let note = crate::checkpoint::sign(&liar, &lie).expect("signed");
    let bytes = crate::checkpoint::wire::encode(&crate::checkpoint::wire::note_message(&note))
        .expect("encoded");
    let cosigned_before = net.nodes[1]
        .engine
        .counters()
        .checkpoints
        .get("cosigned")
        .copied();
    net.queue.push_back((0, 1, Msg::Witness(bytes)));
    net.run();
    let held = checkpoints_of(&net, 1, 0).expect("held");
    assert!(
        held.split_view.is_some(),
        "two roots at size 1, both signed"
    );
    assert_eq!(
        net.nodes[1]
            .engine
            .counters()
            .checkpoints
            .get("cosigned")
            .copied(),
        cosigned_before
    );
    // The evidence went on by gossip: node 2 holds it too.
    assert!(
        checkpoints_of(&net, 2, 0)
            .expect("held")
            .split_view
            .is_some()
    );
}

#[test]
fn split_view_evidence_reaches_a_node_by_sync_alone() {
    let mut net = Net::new(4);
    net.connect_all();
    net.issue(2, 1).expect("issued");
    net.gossip = false;
    // Member 2 shows node 0 one root and node 1 another, at one size.
    let leaf = credence_crypto::merkle::leaf_hash;
    let a = checkpoint_message(&net, 2, 5, leaf(b"a"));
    let b = checkpoint_message(&net, 2, 5, leaf(b"b"));
    net.queue.push_back((2, 0, Msg::Witness(a)));
    net.queue.push_back((2, 1, Msg::Witness(b)));
    net.run();
    assert!(
        checkpoints_of(&net, 0, 2)
            .expect("held")
            .split_view
            .is_none()
    );
    // Sync rounds: node 0 and node 1 compare books, find the split view,
    // and the evidence spreads to node 3.
    for _ in 0..4 {
        net.tick(1_500);
    }
    for i in [0, 1, 3] {
        let held = checkpoints_of(&net, i, 2).expect("held");
        let (first, second) = held.split_view.expect("evidence");
        let pair = crate::checkpoint::wire::pair(&first, &second);
        let (author, _, _) =
            crate::checkpoint::wire::check_split_view(&pair, &net.test.federation).expect("valid");
        assert_eq!(author, net.id(2), "node {i}");
    }
}

/// Member `author`'s checkpoint of its log at `size` with `root`, signed
/// by its key, as a witness gossip message.
fn checkpoint_message(
    net: &Net,
    author: usize,
    size: u64,
    root: credence_crypto::Digest,
) -> Vec<u8> {
    let checkpoint = crate::checkpoint::Checkpoint::of_log(
        &net.test.federation.id(),
        &net.id(author),
        size,
        root,
    );
    let note = crate::checkpoint::sign(&key(&net.test, author), &checkpoint).expect("signed");
    crate::checkpoint::wire::encode(&crate::checkpoint::wire::note_message(&note)).expect("encoded")
}

#[test]
fn two_checkpoints_of_one_size_meet_in_sync_between_the_two_that_hold_them() {
    // Only nodes 0 and 1 hold a note of member 2's log at size 5, each
    // another root, and the liar is gone. Their checkpoint exchange names
    // size and root, so the two notes meet.
    let mut net = Net::new(3);
    net.nodes[2].up = false;
    net.connect_all();
    net.gossip = false;
    let leaf = credence_crypto::merkle::leaf_hash;
    let a = checkpoint_message(&net, 2, 5, leaf(b"a"));
    let b = checkpoint_message(&net, 2, 5, leaf(b"b"));
    net.queue.push_back((2, 0, Msg::Witness(a)));
    net.queue.push_back((2, 1, Msg::Witness(b)));
    net.run();
    assert!(
        checkpoints_of(&net, 0, 2)
            .expect("held")
            .split_view
            .is_none()
    );
    for _ in 0..3 {
        net.tick(1_500);
    }
    for i in [0, 1] {
        let held = checkpoints_of(&net, i, 2).expect("held");
        assert!(held.split_view.is_some(), "node {i} holds the pair");
    }
}

#[test]
fn a_checkpoint_held_through_a_restart_still_meets_its_other_half() {
    // Node 0 alone holds one half of member 2's split view, and restarts
    // before it meets the other half (node 1's): the note comes back from
    // its store, and the two still meet in sync. Without the notes kept,
    // the half dies with node 0's memory and the split view is never
    // found (simulator seed 12254 of the ci scenario).
    let mut net = Net::new(3);
    net.nodes[2].up = false;
    net.nodes[1].up = false;
    net.gossip = false;
    let leaf = credence_crypto::merkle::leaf_hash;
    let a = checkpoint_message(&net, 2, 5, leaf(b"a"));
    let b = checkpoint_message(&net, 2, 5, leaf(b"b"));
    net.queue.push_back((2, 0, Msg::Witness(a)));
    net.run();
    assert!(
        checkpoints_of(&net, 0, 2).is_some(),
        "node 0 holds its half"
    );
    // Its notes are kept once the save interval has passed.
    net.tick(witnessing::CHECKPOINT_SAVE_MS);
    // Restarted: a fresh engine over the same store.
    net.restart(0);
    let held = checkpoints_of(&net, 0, 2).expect("the note came back from the store");
    assert!(held.split_view.is_none());
    net.nodes[1].up = true;
    net.queue.push_back((2, 1, Msg::Witness(b)));
    net.run();
    net.connect_all();
    for _ in 0..3 {
        net.tick(1_500);
    }
    for i in [0, 1] {
        let held = checkpoints_of(&net, i, 2).expect("held");
        assert!(held.split_view.is_some(), "node {i} holds the pair");
    }
    // The pair itself is kept too: a second restart still holds it.
    net.restart(0);
    assert!(
        checkpoints_of(&net, 0, 2)
            .expect("held")
            .split_view
            .is_some()
    );
}

#[test]
fn a_false_checkpoint_followed_by_a_true_one_is_still_compared_with_the_log() {
    // Node 1's copy of member 2's log is empty when a false checkpoint at
    // size 3 and the true one at size 4 arrive: both are ahead of it. Once
    // sync brings the log, the false one is found to disagree, not dropped
    // for the newer one.
    let mut net = Net::new(3);
    net.gossip = false;
    for subject in 1..=4 {
        net.issue(2, subject).expect("issued");
    }
    let head = net.nodes[2]
        .engine
        .replica()
        .store()
        .head(&net.id(2))
        .unwrap()
        .expect("a head");
    assert_eq!(head.seq, 4);
    let lie = checkpoint_message(
        &net,
        2,
        3,
        credence_crypto::merkle::leaf_hash(b"another log"),
    );
    let truth = checkpoint_message(&net, 2, 4, head.root());
    net.queue.push_back((2, 1, Msg::Witness(lie)));
    net.queue.push_back((2, 1, Msg::Witness(truth)));
    net.run();
    assert_eq!(
        net.nodes[1].engine.counters().checkpoints.get("ahead"),
        Some(&2)
    );
    net.connect_all();
    for _ in 0..3 {
        net.tick(1_500);
    }
    let held = checkpoints_of(&net, 1, 2).expect("held");
    let conflict = held.conflict.expect("the false checkpoint was compared");
    assert_eq!(conflict.size, 3);
    assert_eq!(
        conflict.signed,
        credence_crypto::merkle::leaf_hash(b"another log")
    );
    assert_eq!(held.newest.expect("newest").size, 4);
}

fn procurement_check(subject: u64) -> QueryAsk {
    QueryAsk {
        subject_kind: crate::model::SubjectKind::LegalPerson,
        subject_id: testkit::uscc(subject),
        purpose: "procurement".into(),
        legal_basis: "regulation 12".into(),
        scope: QueryScope::Federation,
        deadline_ms: 2_000,
        page: 0,
        account: None,
        clearance: crate::access::Clearance::Auditor,
    }
}

#[test]
fn answers_carry_proofs_to_witnessed_checkpoints_and_a_liar_is_rejected_by_name() {
    let mut net = Net::new(3);
    net.connect_all();
    net.issue(0, 4).expect("issued");
    let ask = |net: &mut Net, ticket| {
        net.input(
            1,
            Input::Query {
                ticket,
                ask: Box::new(procurement_check(4)),
            },
        );
        net.run();
        net.nodes[1].queries.pop().expect("done").expect("answered")
    };
    // The kept trees grow on ticks, before any query needs them.
    net.tick(1_000);
    assert_eq!(net.nodes[2].engine.tree_len(&net.id(0)), 1);
    // Every answer proves the listing against member 0's checkpoint,
    // which members 1 and 2 cosigned: the requester folds it itself.
    let result = ask(&mut net, 1);
    assert_eq!(result.answers.len(), 3);
    assert!(result.rejected.is_empty() && result.disagreements.is_empty());
    assert_eq!(result.listings.len(), 1);
    assert_eq!(result.listings[0].state.status, crate::fold::Status::Active);
    assert_eq!(result.listings[0].proof, crate::proven::Proof::Witnessed);
    // The requester offered that checkpoint (it holds it): the answers
    // name it instead of carrying it, and the result keeps its note for a
    // receipt.
    assert_eq!(result.checkpoints.len(), 1);
    for answered in &result.answers {
        assert!(answered.answer.answer.checkpoints.is_empty());
        assert_eq!(answered.answer.answer.named.len(), 1);
        assert_eq!(answered.answer.answer.named[0].author, net.id(0));
        assert!(
            answered
                .answer
                .answer
                .notices
                .iter()
                .all(|n| n.checkpoint == 0),
            "proven, not unproven"
        );
    }
    // The offer is kept while the book is unchanged, and a change of the
    // book that leaves member 0's quorum-cosigned checkpoint as it was
    // shares that entry rather than copying it again.
    let member0 = net.id(0);
    let (entry, refs) = net.nodes[1].engine.offered(&member0);
    let entry = entry.expect("member 0's checkpoint is offered");
    assert_eq!(refs.len(), 1);
    net.nodes[1].engine.touch_book();
    let (again, refs_again) = net.nodes[1].engine.offered(&member0);
    assert!(std::sync::Arc::ptr_eq(
        &entry,
        &again.expect("still offered")
    ));
    assert_eq!(refs, refs_again);
    // Member 2 now says the listing was withdrawn: its answer fails the
    // check, is rejected by name, and is not merged.
    net.liar = Some((2, |answer| {
        answer.listings[0].status = crate::fold::Status::Withdrawn;
        answer.listings[0].enforceable = false;
    }));
    let result = ask(&mut net, 2);
    assert_eq!(result.answers.len(), 2);
    assert_eq!(result.rejected.len(), 1);
    assert_eq!(result.rejected[0].0, net.id(2));
    assert!(
        result.rejected[0].1.contains("answered as withdrawn"),
        "{}",
        result.rejected[0].1
    );
    assert_eq!(result.listings[0].state.status, crate::fold::Status::Active);
    assert!(result.listings[0].state.enforceable);
    // Member 2 now hides the listing's notice and claims it anyway.
    net.liar = Some((2, |answer| answer.notices.clear()));
    let result = ask(&mut net, 3);
    assert!(
        result.rejected[0].1.contains("invented"),
        "{:?}",
        result.rejected
    );
    assert_eq!(
        net.nodes[1].engine.counters().queries["answers_rejected"],
        2
    );
}

#[test]
fn a_query_fans_out_and_merges_with_a_deadline() {
    let mut net = Net::new(3);
    net.connect_all();
    net.issue(0, 4).expect("issued");
    let subject = testkit::uscc(4);
    let ask = QueryAsk {
        subject_kind: crate::model::SubjectKind::LegalPerson,
        subject_id: subject,
        purpose: "procurement".into(),
        legal_basis: "regulation 12".into(),
        scope: QueryScope::Federation,
        deadline_ms: 2_000,
        page: 0,
        account: None,
        clearance: crate::access::Clearance::Auditor,
    };
    net.input(
        1,
        Input::Query {
            ticket: 1,
            ask: Box::new(ask.clone()),
        },
    );
    net.run();
    let result = net.nodes[1].queries.pop().expect("done").expect("answered");
    assert_eq!(result.answers.len(), 3);
    assert!(result.missing.is_empty());
    assert!(
        result
            .answers
            .iter()
            .all(|a| a.answer.answer.listings.len() == 1)
    );
    // Each responder registered what it answered; the requester what it got.
    assert_eq!(
        (
            net.nodes[0].records,
            net.nodes[1].records,
            net.nodes[2].records
        ),
        (1, 1, 1)
    );
    // A peer that never answers is named once the deadline passes.
    net.nodes[2].up = false;
    net.input(
        1,
        Input::Query {
            ticket: 2,
            ask: Box::new(ask),
        },
    );
    net.run();
    assert!(
        net.nodes[1].queries.is_empty(),
        "finished before its deadline"
    );
    net.tick(2_500);
    let result = net.nodes[1].queries.pop().expect("done").expect("answered");
    assert_eq!(result.answers.len(), 2);
    assert_eq!(result.missing.len(), 1);
    assert_eq!(result.missing[0].0, net.id(2));
}

#[test]
fn dials_back_off_and_stop_once_connected() {
    let mut net = Net::new(2);
    let peer = net.id(1);
    let target = net.nodes[0]
        .engine
        .add_dial_target(Some(peer), START)
        .expect("room");
    let mut dials = Vec::new();
    for step in 0..40u64 {
        let out = net.nodes[0]
            .engine
            .handle(Input::Tick, START.plus_ms(step * 1_000));
        if out
            .iter()
            .any(|o| matches!(o, Output::Dial { target: t } if *t == target))
        {
            dials.push(step);
        }
    }
    // 1 s, 2 s, 4 s, 8 s, 16 s apart, then at most 30 s.
    assert_eq!(dials, vec![0, 1, 3, 7, 15, 31]);
    net.input(
        0,
        Input::Connected {
            peer,
            target: Some(target),
        },
    );
    let out = net.nodes[0]
        .engine
        .handle(Input::Tick, START.plus_ms(100_000));
    assert!(!out.iter().any(|o| matches!(o, Output::Dial { .. })));
}

#[test]
fn a_peer_flooding_requests_is_cut_off_and_others_are_still_served() {
    let mut net = Net::new(3);
    net.issue(0, 1).expect("issued");
    let flooder = net.id(1);
    let honest = net.id(2);
    let digest = sync::encode_request(&SyncRequest::Digest {
        federation: net.test.federation.id(),
        digest: [0; 32],
    })
    .unwrap();
    let mut answered = 0;
    let mut disconnects = 0;
    for reply in 0..3_000u64 {
        let out = net.nodes[0].engine.handle(
            Input::SyncRequest {
                peer: flooder,
                reply,
                bytes: &digest,
            },
            net.now,
        );
        answered += out
            .iter()
            .filter(|o| matches!(o, Output::AnswerSync { bytes: Some(_), .. }))
            .count();
        disconnects += out
            .iter()
            .filter(|o| matches!(o, Output::Disconnect { peer } if *peer == flooder))
            .count();
    }
    assert_eq!(answered as u64, PEER_REQUEST_BURST);
    assert_eq!(disconnects as u64, 3_000 - PEER_REQUEST_BURST);
    assert_eq!(
        net.nodes[0].engine.counters().over_budget.get("sync"),
        Some(&(3_000 - PEER_REQUEST_BURST))
    );
    // Another peer is served at once; the flooder again once its budget
    // refills.
    let out = net.nodes[0].engine.handle(
        Input::SyncRequest {
            peer: honest,
            reply: 9_999,
            bytes: &digest,
        },
        net.now,
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::AnswerSync { bytes: Some(_), .. }))
    );
    let later = net.now.plus_ms(1_000);
    let out = net.nodes[0].engine.handle(
        Input::SyncRequest {
            peer: flooder,
            reply: 10_000,
            bytes: &digest,
        },
        later,
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::AnswerSync { bytes: Some(_), .. }))
    );
}

// A ranges request is never read on the engine's turn: the engine hands
// it to the shell (which reads it off its event loop) and answers with
// what comes back; a request past the limits is refused at once.
#[test]
fn range_reads_leave_the_engine_turn() {
    let mut net = Net::new(2);
    for _ in 0..3 {
        net.issue(0, 1).expect("issued");
    }
    let author = net.id(0);
    let peer = net.id(1);
    let ask =
        |ranges: Vec<sync::RangeAsk>| sync::encode_request(&SyncRequest::Ranges(ranges)).unwrap();
    let valid = ask(vec![sync::RangeAsk {
        author,
        from: 1,
        count: 3,
    }]);
    let out = net.nodes[0].engine.handle(
        Input::SyncRequest {
            peer,
            reply: 7,
            bytes: &valid,
        },
        net.now,
    );
    let ranges = out
        .iter()
        .find_map(|o| match o {
            Output::ReadRanges { reply: 7, ranges } => Some(ranges.clone()),
            _ => None,
        })
        .expect("handed to the shell");
    assert!(!out.iter().any(|o| matches!(o, Output::AnswerSync { .. })));
    assert_eq!(net.nodes[0].engine.counters().sync_range_reads, 1);
    let read = sync::read_ranges(net.nodes[0].engine.replica().store(), &ranges);
    let answer = net.nodes[0].engine.handle(
        Input::RangesRead {
            reply: 7,
            result: read,
        },
        net.now,
    );
    let bytes = answer
        .iter()
        .find_map(|o| match o {
            Output::AnswerSync {
                reply: 7,
                bytes: Some(bytes),
            } => Some(bytes.clone()),
            _ => None,
        })
        .expect("answered");
    match sync::decode_response(&bytes).unwrap() {
        sync::SyncResponse::Notices { ranges, truncated } => {
            assert_eq!(ranges.len(), 1);
            assert_eq!(ranges[0].len(), 3);
            assert!(!truncated);
        }
        other => panic!("unexpected answer {other:?}"),
    }
    // A failed read closes the request unanswered and says why.
    let failed = net.nodes[0].engine.handle(
        Input::RangesRead {
            reply: 8,
            result: Err("disk on fire".into()),
        },
        net.now,
    );
    assert!(failed.iter().any(|o| matches!(
        o,
        Output::AnswerSync {
            reply: 8,
            bytes: None
        }
    )));
    // Past the limits: refused on the engine's turn, nothing to read.
    let invalid = ask(vec![sync::RangeAsk {
        author,
        from: 0,
        count: 3,
    }]);
    let out = net.nodes[0].engine.handle(
        Input::SyncRequest {
            peer,
            reply: 9,
            bytes: &invalid,
        },
        net.now,
    );
    assert!(!out.iter().any(|o| matches!(o, Output::ReadRanges { .. })));
    let refused = out
        .iter()
        .find_map(|o| match o {
            Output::AnswerSync {
                reply: 9,
                bytes: Some(bytes),
            } => Some(sync::decode_response(bytes).unwrap()),
            _ => None,
        })
        .expect("refused");
    assert_eq!(
        refused,
        sync::SyncResponse::Refused(sync::RefusalReason::BadRange)
    );
}

// Inputs and outputs stay small: the simulator moves one of each per
// delivery, tens of millions of times a run.
#[test]
fn inputs_and_outputs_stay_small() {
    assert!(
        std::mem::size_of::<Output>() <= 96,
        "{}",
        std::mem::size_of::<Output>()
    );
    assert!(
        std::mem::size_of::<Input<'_>>() <= 96,
        "{}",
        std::mem::size_of::<Input<'_>>()
    );
}

#[test]
fn a_checkpoint_answer_past_its_bounds_is_ignored() {
    let mut net = Net::new(3);
    net.connect_all();
    net.issue(0, 1).expect("issued");
    let peer = net.id(0);
    let held = checkpoints_of(&net, 0, 0)
        .expect("own")
        .newest
        .expect("newest");
    let note = serde_bytes::ByteBuf::from(held.note.encode().into_bytes());
    let ask = |net: &mut Net, notes: Vec<serde_bytes::ByteBuf>| {
        let mut out = Vec::new();
        net.nodes[2].engine.ask_checkpoints(peer, &mut out);
        let token = out
            .iter()
            .find_map(|o| match o {
                Output::SendSync { token, .. } => Some(*token),
                _ => None,
            })
            .expect("asked");
        let bytes = sync::encode_response(&SyncResponse::Checkpoints {
            notes,
            split_views: Vec::new(),
        })
        .expect("encoded");
        let now = net.now;
        net.nodes[2].engine.handle(
            Input::SyncResponse {
                peer,
                token,
                bytes: &bytes,
            },
            now,
        );
        net.nodes[2]
            .engine
            .counters()
            .checkpoints
            .get("rejected")
            .copied()
            .unwrap_or(0)
    };
    // Two notes a log at most: seven copies for three logs are refused
    // whole, unread.
    assert_eq!(ask(&mut net, vec![note.clone(); 7]), 1);
    // An invalid note (member 0's log, signed by member 1) ends the answer:
    // what follows is not taken.
    let forged = crate::checkpoint::sign(
        &key(&net.test, 1),
        &crate::checkpoint::Checkpoint::of_log(
            &net.test.federation.id(),
            &peer,
            5,
            credence_crypto::merkle::leaf_hash(b"x"),
        ),
    )
    .expect("signed");
    let forged = serde_bytes::ByteBuf::from(forged.encode().into_bytes());
    assert_eq!(ask(&mut net, vec![forged.clone(), forged]), 2);
}

impl Net {
    /// Carries out a governance command on node `i` and delivers what it
    /// sends.
    fn govern(&mut self, i: usize, command: GovernanceCommand) -> Result<GovernanceAnswer, String> {
        let now = self.now;
        let out = self.nodes[i].engine.handle(
            Input::Govern {
                ticket: 1,
                command: Box::new(command),
            },
            now,
        );
        let answer = out.iter().find_map(|o| match o {
            Output::Governed { result, .. } => Some((**result).clone()),
            _ => None,
        });
        self.apply(i, out);
        self.run();
        answer.expect("the engine answers a governance command")
    }

    fn roster_at(&self, i: usize) -> u64 {
        self.nodes[i].engine.replica().chain().current().number
    }
}

/// Version 1 of the net's federation: member 2 removed after seq 0.
fn removal(net: &Net) -> crate::governance::SignedVersion {
    crate::governance::SignedVersion::new(&removal_version(net)).expect("encodes")
}

/// [`removal`]'s version, unsigned and not encoded.
fn removal_version(net: &Net) -> crate::governance::RosterVersion {
    use crate::governance::proposal::{ChangeDocument, RemoveDocument, propose};
    propose(
        net.nodes[0].engine.replica().chain().current(),
        &ChangeDocument {
            remove: vec![RemoveDocument {
                member: net.id(2).to_string(),
                after_seq: 0,
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a removal")
}

#[test]
fn a_proposal_gathers_signatures_over_gossip_and_the_version_reaches_everyone() {
    let mut net = Net::new(3);
    net.connect_all();
    let proposal = removal(&net);
    let hash = proposal.hash();
    let answer = net
        .govern(0, GovernanceCommand::Propose(proposal))
        .expect("a proposal for the next version");
    assert_eq!((answer.number, answer.signatures), (1, 0));
    net.govern(
        0,
        GovernanceCommand::Sign {
            hash,
            competing: false,
        },
    )
    .expect("signed");
    // Submitting below the threshold says why.
    let error = net.govern(0, GovernanceCommand::Submit(hash)).unwrap_err();
    assert!(error.contains("threshold is 2"), "{error}");
    // Member 1 holds the proposal from gossip, with member 0's signature.
    let held: Vec<_> = net.nodes[1].engine.proposals().cloned().collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].signatures.len(), 1);
    let answer = net
        .govern(
            1,
            GovernanceCommand::Sign {
                hash,
                competing: false,
            },
        )
        .expect("signed");
    assert_eq!(answer.signatures, 2);
    // Member 0 merged member 1's signature and submits.
    let answer = net
        .govern(0, GovernanceCommand::Submit(hash))
        .expect("submitted");
    assert_eq!(answer.current, 1);
    for i in 0..3 {
        assert_eq!(net.roster_at(i), 1, "node {i}");
        assert_eq!(net.nodes[i].engine.proposals().count(), 0, "node {i}");
    }
    // The removed member can issue no more, and the others no longer
    // answer it.
    assert!(net.issue(2, 1).is_err());
    net.issue(0, 2).expect("a member issues under version 1");
    let before = net.nodes[2].engine.counters().sync_bytes_in;
    for _ in 0..4 {
        net.tick(2_000);
    }
    assert_eq!(
        net.nodes[2].engine.counters().sync_bytes_in,
        before,
        "nobody syncs with the removed member, and its requests go unanswered"
    );
}

#[test]
fn a_proposal_reaches_a_member_away_while_it_circulated_and_survives_a_restart() {
    let mut net = Net::new(3);
    net.connect_all();
    let proposal = removal(&net);
    let hash = proposal.hash();
    // Node 2 is away while node 0 proposes and signs.
    net.nodes[2].up = false;
    net.govern(0, GovernanceCommand::Propose(proposal))
        .expect("proposed");
    net.govern(
        0,
        GovernanceCommand::Sign {
            hash,
            competing: false,
        },
    )
    .expect("signed");
    assert_eq!(net.nodes[1].engine.proposals().count(), 1, "by gossip");
    assert_eq!(net.nodes[2].engine.proposals().count(), 0);
    // Node 1 restarts: the proposal and node 0's signature come back
    // from its store, not from anyone.
    net.restart(1);
    let held: Vec<_> = net.nodes[1].engine.proposals().cloned().collect();
    assert_eq!(held.len(), 1, "kept through the restart");
    assert_eq!(held[0].signatures.len(), 1);
    // Node 2 comes back with gossip off: sync alone brings the proposal
    // and its signature, and node 2 signs it.
    net.gossip = false;
    net.nodes[2].up = true;
    net.connect_all();
    for _ in 0..4 {
        net.tick(2_000);
    }
    let held: Vec<_> = net.nodes[2].engine.proposals().cloned().collect();
    assert_eq!(held.len(), 1, "the proposal came by sync");
    assert_eq!(held[0].signatures.len(), 1, "with node 0's signature");
    let answer = net
        .govern(
            2,
            GovernanceCommand::Sign {
                hash,
                competing: false,
            },
        )
        .expect("signed");
    assert_eq!(answer.signatures, 2);
    // Node 2's signature reaches node 0 by sync too, and node 0 submits.
    for _ in 0..4 {
        net.tick(2_000);
    }
    let answer = net
        .govern(0, GovernanceCommand::Submit(hash))
        .expect("submitted with the signature that came by sync");
    assert_eq!(answer.current, 1);
    for _ in 0..4 {
        net.tick(2_000);
    }
    // (Node 2 is the member the version removes: nobody syncs with it.)
    for i in 0..2 {
        assert_eq!(net.roster_at(i), 1, "node {i}");
        assert_eq!(net.nodes[i].engine.proposals().count(), 0, "node {i}");
        assert!(
            net.nodes[i]
                .engine
                .replica()
                .store()
                .proposals()
                .expect("kept")
                .is_empty(),
            "node {i} no longer keeps the proposal taken"
        );
    }
}

/// A proposal for version 1 granting `member` an allowance of `notices`,
/// signed by the keys of `signers`.
fn allowance(
    net: &Net,
    member: usize,
    notices: u64,
    signers: &[usize],
) -> crate::governance::SignedVersion {
    use crate::governance::proposal::{AllowDocument, ChangeDocument, propose};
    let version = propose(
        net.nodes[0].engine.replica().chain().current(),
        &ChangeDocument {
            allow: vec![AllowDocument {
                member: net.id(member).to_string(),
                notices,
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("an allowance");
    let mut signed = crate::governance::SignedVersion::new(&version).expect("encodes");
    for i in signers {
        signed.sign(&net.test.keys[*i]);
    }
    signed
}

fn proposal_message(signed: &crate::governance::SignedVersion) -> Vec<u8> {
    crate::checkpoint::wire::encode(&crate::checkpoint::wire::WitnessMessage::Proposal(
        signed.to_bytes().expect("encodes").into(),
    ))
    .expect("encoded")
}

#[test]
fn a_member_making_up_proposals_fills_a_few_places_and_governance_goes_on() {
    let mut net = Net::new(3);
    net.connect_all();
    // Member 2 floods its peers with made-up proposals it signed, and
    // with proposals signed only by a key they add (anyone can make one).
    for n in 1..=40 {
        net.queue.push_back((
            2,
            0,
            Msg::Witness(proposal_message(&allowance(&net, 2, n, &[2]))),
        ));
    }
    let stranger = credence_crypto::AuthorityKey::from_secret_bytes([9; 32]);
    let added = {
        use crate::governance::proposal::{ChangeDocument, RotateDocument, propose};
        let version = propose(
            net.nodes[0].engine.replica().chain().current(),
            &ChangeDocument {
                rotate: vec![RotateDocument {
                    member: net.id(1).to_string(),
                    key: hex::encode(stranger.public_bytes()),
                    after_seq: 0,
                    compromised: false,
                }],
                ..ChangeDocument::default()
            },
        )
        .expect("a rotation");
        let mut signed = crate::governance::SignedVersion::new(&version).expect("encodes");
        signed.sign(&stranger);
        signed
    };
    net.queue
        .push_back((2, 0, Msg::Witness(proposal_message(&added))));
    net.run();
    let held = net.nodes[0].engine.proposals().count();
    assert_eq!(
        held, PROPOSALS_PER_SIGNER_MAX,
        "member 2's signature brings in {PROPOSALS_PER_SIGNER_MAX} proposals, the added key none"
    );
    // Member 0's own proposal is still held everywhere, and it passes.
    let legit = allowance(&net, 0, 7, &[]);
    let hash = legit.hash();
    net.govern(0, GovernanceCommand::Propose(legit))
        .expect("room for a member's proposal");
    net.govern(
        0,
        GovernanceCommand::Sign {
            hash,
            competing: false,
        },
    )
    .expect("signed");
    net.run();
    assert!(
        net.nodes[1].engine.proposals().any(|p| p.hash() == hash),
        "node 1 keeps it"
    );
    net.govern(
        1,
        GovernanceCommand::Sign {
            hash,
            competing: false,
        },
    )
    .expect("signed");
    net.run();
    let answer = net
        .govern(0, GovernanceCommand::Submit(hash))
        .expect("submitted");
    assert_eq!(answer.current, 1);
    // The made-up proposals no longer extend the chain: all gone.
    assert_eq!(net.nodes[0].engine.proposals().count(), 0);
}

#[test]
fn a_member_signs_a_bounded_number_of_the_proposals_held() {
    let mut net = Net::new(3);
    let mut hashes = Vec::new();
    for n in 1..=PROPOSALS_PER_SIGNER_MAX as u64 + 1 {
        let proposal = allowance(&net, 0, n, &[]);
        hashes.push(proposal.hash());
        net.govern(0, GovernanceCommand::Propose(proposal))
            .expect("proposed");
    }
    let sign = |hash: crate::model::RosterHash| GovernanceCommand::Sign {
        hash,
        competing: true,
    };
    for hash in &hashes[..PROPOSALS_PER_SIGNER_MAX] {
        net.govern(0, sign(*hash)).expect("signed");
    }
    let error = net
        .govern(0, sign(hashes[PROPOSALS_PER_SIGNER_MAX]))
        .unwrap_err();
    assert!(error.contains("already signed 4"), "{error}");
    // Signing again one it signed is no new signature, and no error.
    net.govern(0, sign(hashes[0])).expect("signed already");
}

// A member that signed one proposal for the next version is refused a
// signature on a second, with why (two versions of one number are an
// equivocation naming it), unless it signs as competing; a proposal it
// signed already signs again without error.
#[test]
fn a_member_signs_a_competing_proposal_only_when_it_says_so() {
    let mut net = Net::new(3);
    net.connect_all();
    let first = allowance(&net, 0, 1, &[]);
    let second = allowance(&net, 0, 2, &[]);
    let (a, b) = (first.hash(), second.hash());
    for proposal in [first, second] {
        for node in [0, 1] {
            net.govern(node, GovernanceCommand::Propose(proposal.clone()))
                .expect("proposed");
        }
    }
    let sign = |hash, competing| GovernanceCommand::Sign { hash, competing };
    net.govern(0, sign(a, false)).expect("the first signs");
    net.govern(0, sign(a, false)).expect("signed already");
    let error = net.govern(0, sign(b, false)).unwrap_err();
    assert!(
        error.contains(&format!("already signed proposal {a}")),
        "{error}"
    );
    assert!(error.contains("equivocating"), "{error}");
    let held = |net: &Net, hash| {
        net.nodes[0]
            .engine
            .proposals()
            .find(|p| p.hash() == hash)
            .map_or(0, |p| p.signatures.len())
    };
    assert_eq!(held(&net, b), 0, "nothing was signed");
    // Another member is not held back by member 0's signature.
    net.govern(1, sign(b, false))
        .expect("member 1 signs the second");
    // Said so, member 0 signs the second too.
    net.govern(0, sign(b, true)).expect("signed as competing");
    assert_eq!(held(&net, b), 2);
    // A proposal member 0 makes itself is refused the same way before it
    // is kept; said so, it is kept and signed.
    let third = allowance(&net, 0, 3, &[]);
    let c = third.hash();
    let propose = |competing| GovernanceCommand::ProposeSigned {
        signed: third.clone(),
        competing,
    };
    let error = net.govern(0, propose(false)).unwrap_err();
    assert!(error.contains("already signed proposal"), "{error}");
    assert_eq!(net.nodes[0].engine.proposals().count(), 2, "nothing kept");
    net.govern(0, propose(true)).expect("proposed as competing");
    assert_eq!(held(&net, c), 1);
}

#[test]
fn a_proposals_request_past_its_limits_is_refused() {
    let net = Net::new(2);
    let have = |signers: usize| crate::sync::ProposalHave {
        hash: crate::model::RosterHash([7; 32]),
        signers: vec![net.id(0); signers],
    };
    let engine = &net.nodes[0].engine;
    let too_many: Vec<_> = (0..=PROPOSALS_MAX).map(|_| have(1)).collect();
    assert_eq!(
        engine.answer_proposals(&too_many),
        crate::sync::SyncResponse::Refused(crate::sync::RefusalReason::BadProposals)
    );
    assert_eq!(
        engine.answer_proposals(&[have(crate::governance::SIGNATURES_MAX + 1)]),
        crate::sync::SyncResponse::Refused(crate::sync::RefusalReason::BadProposals)
    );
    assert_eq!(
        engine.answer_proposals(&[have(1)]),
        crate::sync::SyncResponse::Proposals(Vec::new())
    );
}

#[test]
fn roster_versions_reach_a_node_by_sync_alone_before_the_notices_that_name_them() {
    use crate::governance::proposal::{ChangeDocument, UpdateDocument, propose};
    let mut net = Net::new(3);
    net.connect_all();
    // Version 1 moves member 0 to another address.
    let version = propose(
        net.nodes[0].engine.replica().chain().current(),
        &ChangeDocument {
            update: vec![UpdateDocument {
                member: net.id(0).to_string(),
                listen: Some(vec!["/ip4/127.0.0.1/tcp/7201".into()]),
                ..UpdateDocument::default()
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("an address change");
    let mut version = crate::governance::SignedVersion::new(&version).expect("encodes");
    version.sign(&net.test.keys[0]);
    version.sign(&net.test.keys[1]);
    // Node 2 is away while the version is taken and a notice names it.
    net.nodes[2].up = false;
    net.govern(0, GovernanceCommand::Version(version))
        .expect("taken");
    net.issue(1, 7).expect("issued under version 1");
    assert_eq!(net.roster_at(2), 0);
    // Back, without gossip: the first sync session brings the version and
    // then the notice.
    net.gossip = false;
    net.nodes[2].up = true;
    // (Its sessions whose answers were lost end at the sync timeout.)
    for _ in 0..4 {
        net.tick(2_000);
    }
    assert_eq!(net.roster_at(2), 1);
    assert_eq!(
        net.nodes[2]
            .engine
            .replica()
            .store()
            .notice_count()
            .unwrap(),
        net.nodes[1]
            .engine
            .replica()
            .store()
            .notice_count()
            .unwrap()
    );
}

#[test]
fn a_revocation_cuts_back_the_stolen_key_s_notices_and_the_member_goes_on_with_its_new_key() {
    use crate::governance::proposal::{ChangeDocument, RotateDocument, propose};
    let mut net = Net::new(3);
    net.connect_all();
    net.issue(0, 1).expect("issued");
    // A thief with a copy of node 0's key signs seq 2 elsewhere; node 0
    // signs its own seq 2 and learns of the thief's: its log is forked.
    let mut copy = net.fresh(0, None);
    let first = {
        let store = net.nodes[0].engine.replica().store();
        let id = store.log_id(&net.id(0), 1).unwrap().unwrap();
        store.notice(&id).unwrap().unwrap()
    };
    copy.engine.replica_mut().ingest(&first).unwrap();
    let stolen = copy
        .engine
        .replica_mut()
        .issue(
            &key(&net.test, 0),
            NoticeKind::List(testkit::listing(77, "food-drug", START)),
            START,
        )
        .expect("signed");
    net.issue(0, 2).expect("issued");
    let id = NoticeId::from(credence_crypto::merkle::leaf_hash(&stolen.envelope));
    let peer = net.id(1);
    let out = net.nodes[0].engine.handle(
        Input::Gossip {
            from: peer,
            message: 5,
            id,
            bytes: &stolen.envelope,
        },
        net.now,
    );
    net.apply(0, out);
    net.run();
    assert_eq!(
        net.nodes[0].engine.readiness(),
        &Readiness::Forked { seq: 2 }
    );
    // The other members revoke the key after seq 1 (the last notice the
    // member vouches for) and name its new one.
    let fresh = testkit::key(99, 0);
    let version = propose(
        net.nodes[1].engine.replica().chain().current(),
        &ChangeDocument {
            rotate: vec![RotateDocument {
                member: net.id(0).to_string(),
                key: hex::encode(fresh.public_bytes()),
                after_seq: 1,
                compromised: true,
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a revocation");
    let mut version = crate::governance::SignedVersion::new(&version).expect("encodes");
    for signer in [&net.test.keys[1], &net.test.keys[2], &fresh] {
        version.sign(signer);
    }
    net.govern(1, GovernanceCommand::Version(version))
        .expect("taken");
    for i in 0..3 {
        assert_eq!(net.roster_at(i), 1, "node {i}");
        let head = net.nodes[i]
            .engine
            .replica()
            .store()
            .head(&net.id(0))
            .unwrap()
            .unwrap();
        assert_eq!(head.seq, 1, "node {i} cut log 0 back to seq 1");
    }
    // Node 0 lowered its durable mark to what its log keeps.
    assert_eq!(net.nodes[0].mark.as_ref().map(|m| m.seq), Some(1));
    // The operator starts it again with the new key: it is ready, and its
    // seq 2 is taken everywhere, with no fork.
    let old = std::mem::replace(&mut net.nodes[0], copy);
    let mark = old.mark.clone();
    let replica = old.engine.into_replica();
    net.nodes[0] = net.with_key(0, fresh, replica, mark);
    assert_eq!(net.nodes[0].engine.readiness(), &Readiness::Ready);
    net.connect_all();
    let issued = net.issue(0, 3).expect("the new key issues");
    assert_eq!(issued.seq, 2);
    for _ in 0..3 {
        net.tick(witnessing::CHECKPOINT_INTERVAL_MS);
    }
    for i in 0..3 {
        let replica = net.nodes[i].engine.replica();
        let head = replica.store().head(&net.id(0)).unwrap().unwrap();
        assert_eq!((head.seq, head.id), (2, issued.id), "node {i}");
        assert!(replica.standing_forks().unwrap().is_empty(), "node {i}");
        // Its checkpoints start again from the log as it is now.
        let held = checkpoints_of(&net, i, 0).expect("a checkpoint of log 0");
        let witnessed = held.witnessed.expect("witnessed");
        assert_eq!(
            (witnessed.size, witnessed.root),
            (2, head.root()),
            "node {i}"
        );
    }
}

// A proposal an operator hands in that names another federation, though
// its number and previous hash fit, is refused with an error saying so;
// the engine does not stop on it, and nothing is kept.
#[test]
fn an_operator_s_proposal_for_another_federation_is_refused() {
    let mut net = Net::new(3);
    net.connect_all();
    let mut version = removal_version(&net);
    version.federation = crate::model::FederationId([7; 32]);
    let proposal = crate::governance::SignedVersion::new(&version).expect("encodes");
    let error = net
        .govern(0, GovernanceCommand::Propose(proposal))
        .unwrap_err();
    assert!(error.contains("federation"), "{error}");
    assert_eq!(net.nodes[0].engine.proposals().count(), 0);
}

// A member signs a planned rotation of its own key only with the cutoff
// where its log stands (below, its notices past it would be void; above,
// the next key could not sign the seqs between), and once it signed, it
// issues nothing until a version is taken: the cutoff stays its head.
#[test]
fn a_member_rotating_its_key_cuts_its_log_where_it_stands_and_waits() {
    use crate::governance::proposal::{ChangeDocument, RotateDocument, propose};
    let mut net = Net::new(3);
    net.connect_all();
    net.issue(0, 1).expect("issued");
    net.issue(0, 2).expect("issued");
    let next = credence_crypto::AuthorityKey::from_secret_bytes([11; 32]);
    let rotation = |net: &Net, after_seq| {
        let version = propose(
            net.nodes[0].engine.replica().chain().current(),
            &ChangeDocument {
                rotate: vec![RotateDocument {
                    member: net.id(0).to_string(),
                    key: hex::encode(next.public_bytes()),
                    after_seq,
                    compromised: false,
                }],
                ..ChangeDocument::default()
            },
        )
        .expect("a rotation");
        crate::governance::SignedVersion::new(&version).expect("encodes")
    };
    for (after_seq, why) in [(1, "after seq 1 would be void"), (3, "may not sign")] {
        let error = net
            .govern(
                0,
                GovernanceCommand::ProposeSigned {
                    signed: rotation(&net, after_seq),
                    competing: false,
                },
            )
            .unwrap_err();
        assert!(error.contains("its log is at seq 2"), "{error}");
        assert!(error.contains(why), "{error}");
        assert!(error.contains("after_seq = 2"), "{error}");
    }
    assert_eq!(net.nodes[0].engine.proposals().count(), 0, "nothing kept");
    // Another member's node signs such a proposal whatever the cutoff:
    // only the rotated member knows where its log stands.
    net.govern(1, GovernanceCommand::Propose(rotation(&net, 1)))
        .expect("held");
    net.govern(
        1,
        GovernanceCommand::Sign {
            hash: rotation(&net, 1).hash(),
            competing: false,
        },
    )
    .expect("member 1 signs");
    // At its head, member 0 signs, and then issues nothing.
    net.govern(
        0,
        GovernanceCommand::ProposeSigned {
            signed: rotation(&net, 2),
            competing: true,
        },
    )
    .expect("signed at the head");
    let refused = net.issue(0, 3).unwrap_err();
    assert_eq!(refused.code(), "key_rotating", "{refused}");
    assert!(refused.to_string().contains("after seq 2"), "{refused}");
    // What the status says is the same.
    assert_eq!(
        net.nodes[0].engine.rotation_pending().as_deref(),
        Some(refused.to_string().as_str())
    );
    let head = |net: &Net| {
        net.nodes[0]
            .engine
            .replica()
            .store()
            .head(&net.id(0))
            .unwrap()
            .map(|h| h.seq)
    };
    assert_eq!(head(&net), Some(2));
    // Member 1 signed a rotation of member 0's key, not of its own: it
    // is not held back.
    assert_eq!(net.nodes[1].engine.rotation_pending(), None);
}

// A revocation of a member's own key may cut its log below its head (a
// thief's notices are past it); its node signs it there, and from then on
// issues nothing: what it would sign under the revoked key is void too.
#[test]
fn a_member_that_signed_the_revocation_of_its_key_issues_nothing_more() {
    use crate::governance::proposal::{ChangeDocument, RotateDocument, propose};
    let mut net = Net::new(3);
    net.connect_all();
    net.issue(0, 1).expect("issued");
    net.issue(0, 2).expect("issued");
    let next = credence_crypto::AuthorityKey::from_secret_bytes([12; 32]);
    let version = propose(
        net.nodes[0].engine.replica().chain().current(),
        &ChangeDocument {
            rotate: vec![RotateDocument {
                member: net.id(0).to_string(),
                key: hex::encode(next.public_bytes()),
                after_seq: 1,
                compromised: true,
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a revocation");
    let signed = crate::governance::SignedVersion::new(&version).expect("encodes");
    net.govern(
        0,
        GovernanceCommand::ProposeSigned {
            signed,
            competing: false,
        },
    )
    .expect("signed below the head");
    let refused = net.issue(0, 3).unwrap_err();
    assert_eq!(refused.code(), "key_rotating", "{refused}");
    assert!(
        refused
            .to_string()
            .contains("after seq 1 (its log is at seq 2)"),
        "{refused}"
    );
}
