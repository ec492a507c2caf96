//! The modelled network: links (latency, bandwidth, loss, duplication,
//! reordering, partitions, isolation) and the gossip overlay (a mesh with
//! eager push and lazy announce and request, as gossipsub keeps it). What
//! arrives is handed to the receiving node's engine.

use super::{Event, Node, Rng, Sim, mix};
use crate::store::Envelope;
use credence_protocol::engine::Input;
use credence_protocol::model::NoticeId;
use credence_protocol::store::Store;
use std::collections::BTreeSet;
use std::rc::Rc;

/// The kinds of message, in the order of [`Msg::index`].
pub const MSG_KINDS: [&str; 8] = [
    "gossip",
    "ihave",
    "iwant",
    "sync_request",
    "sync_response",
    "query_request",
    "query_response",
    "witness",
];
/// Most ids in one lazy announcement.
const IHAVE_IDS_MAX: usize = 512;

#[derive(Clone, Debug)]
pub(super) enum Msg {
    /// An envelope with its message id, which gossipsub derives from the
    /// bytes (the notice id): computed once where the message is created.
    Gossip(Rc<Envelope>),
    IHave(Vec<NoticeId>),
    IWant(Vec<NoticeId>),
    /// A request with the engine's token, and its encoded bytes.
    SyncRequest(u64, Vec<u8>),
    SyncResponse(u64, Vec<u8>),
    QueryRequest(u64, Vec<u8>),
    QueryResponse(u64, Vec<u8>),
    /// A witness gossip message (checkpoint topic).
    Witness(Rc<[u8]>),
}

impl Msg {
    fn index(&self) -> usize {
        match self {
            Msg::Gossip(..) => 0,
            Msg::IHave(_) => 1,
            Msg::IWant(_) => 2,
            Msg::SyncRequest(..) => 3,
            Msg::SyncResponse(..) => 4,
            Msg::QueryRequest(..) => 5,
            Msg::QueryResponse(..) => 6,
            Msg::Witness(_) => 7,
        }
    }

    fn bytes(&self) -> u64 {
        let payload = match self {
            Msg::Gossip(e) => e.bytes.len(),
            Msg::IHave(ids) | Msg::IWant(ids) => 32 * ids.len(),
            Msg::Witness(b) => b.len(),
            Msg::SyncRequest(_, b)
            | Msg::SyncResponse(_, b)
            | Msg::QueryRequest(_, b)
            | Msg::QueryResponse(_, b) => b.len(),
        };
        payload as u64 + 16
    }
}

/// A random mesh in which every node has `degree` peers, as gossipsub's
/// mesh maintenance keeps it: each node grafts random peers until it has
/// `degree`, preferring peers that still have fewer; a peer takes grafts
/// up to twice the degree (gossipsub's D_hi).
pub(super) fn build_mesh(nodes: &mut [Node], degree: usize, rng: &mut Rng) {
    let n = nodes.len();
    let mut adjacency: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for a in 0..n {
        let mut tries = 0;
        while adjacency[a].len() < degree && tries < 100 * degree {
            tries += 1;
            let b = rng.below(n as u64) as usize;
            let room = if tries < 20 * degree {
                degree
            } else {
                2 * degree
            };
            if b != a && adjacency[b].len() < room {
                adjacency[a].insert(b);
                adjacency[b].insert(a);
            }
        }
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        node.mesh = adjacency[i].iter().copied().collect();
        node.others = (0..n)
            .filter(|j| *j != i && !adjacency[i].contains(j))
            .collect();
    }
}

impl Sim {
    fn cut(&self, from: usize, to: usize) -> bool {
        let alone = |a: usize, b: usize| {
            self.nodes[a].isolated_until > self.now && !self.nodes[a].reachable.contains(&b)
        };
        if alone(from, to) || alone(to, from) {
            return true;
        }
        self.partitions.iter().any(|(start, end, side_a, one_way)| {
            self.now >= *start
                && self.now < *end
                && if *one_way {
                    side_a[from] && !side_a[to]
                } else {
                    side_a[from] != side_a[to]
                }
        })
    }

    pub(super) fn send(&mut self, from: usize, to: usize, msg: Msg) {
        let bytes = msg.bytes();
        self.counters.messages[msg.index()] += 1;
        self.counters.bytes += bytes;
        if self.cut(from, to) {
            *self.counters.faults.entry("partition_drop").or_default() += 1;
            return;
        }
        if self.rng.chance(self.cfg.scenario.faults.loss) {
            *self.counters.faults.entry("loss").or_default() += 1;
            return;
        }
        let mut delay =
            self.rng.between(self.latency.0, self.latency.1) + bytes * 1000 / self.bandwidth;
        for (start, end, extra) in &self.spikes {
            if self.now >= *start && self.now < *end {
                delay += extra;
            }
        }
        if self.rng.chance(self.cfg.scenario.faults.reorder) {
            *self.counters.faults.entry("reorder").or_default() += 1;
            delay += self.rng.below(self.reorder_delay.max(1));
        }
        if self.rng.chance(self.cfg.scenario.faults.duplicate) {
            *self.counters.faults.entry("duplicate").or_default() += 1;
            let again = delay + self.rng.between(self.latency.0, self.latency.1);
            self.schedule(
                again,
                Event::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
        self.schedule(delay, Event::Deliver { from, to, msg });
    }

    /// Lazy announcement of recent ids to a few non-mesh peers.
    pub(super) fn heartbeat(&mut self, node: usize) {
        let recent = std::mem::take(&mut self.nodes[node].recent);
        if recent.is_empty() {
            return;
        }
        let fanout = self.cfg.scenario.protocol.lazy_fanout;
        for chunk in recent.chunks(IHAVE_IDS_MAX) {
            for _ in 0..fanout {
                let others = &self.nodes[node].others;
                if others.is_empty() {
                    break;
                }
                let peer = others[self.rng.below(others.len() as u64) as usize];
                self.send(node, peer, Msg::IHave(chunk.to_vec()));
            }
        }
    }

    /// Gossip forwards a message its engine accepted to the rest of the
    /// mesh.
    pub(super) fn forward(&mut self, node: usize, source: Option<usize>) {
        let Some(envelope) = self.current.clone() else {
            return;
        };
        for i in 0..self.nodes[node].mesh.len() {
            let peer = self.nodes[node].mesh[i];
            if Some(peer) != source {
                self.send(node, peer, Msg::Gossip(envelope.clone()));
            }
        }
    }

    /// Sends a witness message to the mesh (but its source): published
    /// here, or accepted and forwarded.
    pub(super) fn forward_witness(&mut self, node: usize, bytes: &Rc<[u8]>, source: Option<usize>) {
        for i in 0..self.nodes[node].mesh.len() {
            let peer = self.nodes[node].mesh[i];
            if Some(peer) != source {
                self.send(node, peer, Msg::Witness(bytes.clone()));
            }
        }
    }

    /// Publishes an own notice to the mesh (a Byzantine member that
    /// withholds skips half of it).
    pub(super) fn publish(&mut self, node: usize, id: NoticeId, bytes: &[u8]) {
        let envelope = self.nodes[node]
            .engine
            .replica()
            .store()
            .envelope(&id)
            .unwrap_or_else(|| Rc::new(Envelope::loose(bytes.to_vec())));
        let withhold = self.nodes[node]
            .byzantine
            .contains(&crate::scenario::Misbehaviour::Withhold);
        for i in 0..self.nodes[node].mesh.len() {
            let peer = self.nodes[node].mesh[i];
            if withhold && i % 2 == 1 {
                *self.counters.faults.entry("withheld").or_default() += 1;
                continue;
            }
            self.send(node, peer, Msg::Gossip(envelope.clone()));
        }
    }

    pub(super) fn deliver(&mut self, from: usize, to: usize, msg: Msg) {
        self.trace = mix(self.trace, ((from as u64) << 32) | to as u64);
        // Read only where needed: most deliveries are gossip duplicates,
        // and the sender's node is a cache miss.
        let peer = || self.nodes[from].author;
        match msg {
            Msg::Gossip(envelope) => {
                self.trace = mix(self.trace, envelope.bytes.len() as u64);
                // gossipsub drops a message it has seen before it is
                // validated; the replica would report the same duplicate.
                if self.nodes[to]
                    .engine
                    .replica()
                    .store()
                    .holds_envelope(&envelope)
                {
                    self.counters.duplicates += 1;
                    return;
                }
                if self.nodes[to].broken == Some(super::Broken::Replica(to)) {
                    self.broken_accepts(to, std::slice::from_ref(&envelope));
                }
                self.current = Some(envelope.clone());
                let from_author = self.nodes[from].author;
                self.feed(
                    to,
                    Input::Gossip {
                        from: from_author,
                        message: 0,
                        id: envelope.id,
                        bytes: &envelope.bytes,
                    },
                    Some(from),
                );
                self.current = None;
            }
            Msg::IHave(ids) => {
                let node = &self.nodes[to];
                let store = node.engine.replica().store();
                let want: Vec<NoticeId> = ids
                    .into_iter()
                    .filter(|id| {
                        !store.contains(id).unwrap_or(true) && !node.evidence.contains_key(id)
                    })
                    .collect();
                if !want.is_empty() {
                    self.send(to, from, Msg::IWant(want));
                }
            }
            Msg::IWant(ids) => {
                for id in ids.into_iter().take(IHAVE_IDS_MAX) {
                    let node = &self.nodes[to];
                    let stored = node.engine.replica().store().envelope(&id);
                    if let Some(envelope) = stored.or_else(|| node.evidence.get(&id).cloned()) {
                        self.send(to, from, Msg::Gossip(envelope));
                    }
                }
            }
            Msg::SyncRequest(token, bytes) => {
                let peer = peer();
                self.answering = Some((from, token));
                self.feed(
                    to,
                    Input::SyncRequest {
                        peer,
                        reply: token,
                        bytes: &bytes,
                    },
                    Some(from),
                );
                self.answering = None;
            }
            Msg::SyncResponse(token, bytes) => {
                let peer = peer();
                let input = Input::SyncResponse {
                    peer,
                    token,
                    bytes: &bytes,
                };
                self.feed(to, input, Some(from));
            }
            Msg::QueryRequest(token, bytes) => {
                let peer = peer();
                self.answering = Some((from, token));
                self.feed(
                    to,
                    Input::QueryRequest {
                        peer,
                        reply: token,
                        bytes: &bytes,
                    },
                    Some(from),
                );
                self.answering = None;
            }
            Msg::QueryResponse(token, bytes) => {
                let peer = peer();
                let input = Input::QueryResponse {
                    peer,
                    token,
                    bytes: &bytes,
                };
                self.feed(to, input, Some(from));
            }
            Msg::Witness(bytes) => {
                let hash = witness_hash(&bytes);
                if let Some((author, size, which)) = self.split_messages.get(&hash).copied()
                    && self.nodes[to].byzantine.is_empty()
                {
                    self.split_views_sent.entry((author, size)).or_default()[which] = true;
                }
                if !self.nodes[to].witness_seen.insert(hash) {
                    self.counters.duplicates += 1;
                    return;
                }
                let from_author = self.nodes[from].author;
                self.current_witness = Some(bytes.clone());
                self.feed(
                    to,
                    Input::WitnessGossip {
                        from: from_author,
                        message: 0,
                        bytes: &bytes,
                    },
                    Some(from),
                );
                self.current_witness = None;
            }
        }
    }
}

/// The id a node's seen-set keeps of a witness message.
pub(super) fn witness_hash(bytes: &[u8]) -> u64 {
    let hash = credence_crypto::merkle::leaf_hash(bytes);
    u64::from_le_bytes([
        hash.0[0], hash.0[1], hash.0[2], hash.0[3], hash.0[4], hash.0[5], hash.0[6], hash.0[7],
    ])
}

/// The longest shortest path of the mesh (BFS from every node).
pub(super) fn overlay_diameter(nodes: &[Node]) -> usize {
    let mut diameter = 0;
    for start in 0..nodes.len() {
        let mut distance = vec![usize::MAX; nodes.len()];
        distance[start] = 0;
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(a) = queue.pop_front() {
            for &b in &nodes[a].mesh {
                if distance[b] == usize::MAX {
                    distance[b] = distance[a] + 1;
                    queue.push_back(b);
                }
            }
        }
        diameter = diameter.max(
            distance
                .iter()
                .copied()
                .filter(|d| *d != usize::MAX)
                .max()
                .unwrap_or(0),
        );
    }
    diameter
}
