//! The libp2p side of a node: transport, the composed behaviour, and the
//! bounded length-prefixed codec of the request-response protocols.
//!
//! A node's libp2p identity is its authority key, so a connection's
//! `PeerId` names the authority on the other end; only roster members may
//! connect (`allow_block_list` refuses everyone else at connection time).

use credence_crypto::AuthorityKey;
use credence_protocol::governance::Version;
use credence_protocol::model::{AuthorityId, ENVELOPE_BYTES_MAX};
use credence_protocol::query::{ANSWER_BYTES_MAX, QUERY_MESSAGE_BYTES_MAX, QUERY_PROTOCOL};
use credence_protocol::roster::Federation;
use credence_protocol::sync::{SYNC_MESSAGE_BYTES_MAX, SYNC_PROTOCOL};
use futures::prelude::*;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    PeerId, StreamProtocol, Swarm, allow_block_list, connection_limits, gossipsub, identify,
    identity, mdns, noise, request_response, tcp, yamux,
};
use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

/// Most bytes of a gossip message: one envelope and gossipsub's framing.
pub const GOSSIP_MESSAGE_BYTES_MAX: usize = ENVELOPE_BYTES_MAX + 1024;
/// How long a request may wait for its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections stay open this long without traffic (gossip is low-rate;
/// the default 10 s would close them between notices).
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);
/// Concurrent streams per request-response protocol.
const STREAMS_MAX: usize = 64;

/// Inbound connections being negotiated at once (noise and yamux
/// handshakes of peers not yet identified).
pub const PENDING_INCOMING_MAX: u32 = 64;
/// Connections to one member at once.
pub const CONNECTIONS_PER_PEER_MAX: u32 = 4;
/// Connections in all (a few per member of the largest roster).
pub const CONNECTIONS_MAX: u32 = 2 * credence_protocol::roster::MEMBERS_MAX as u32;

/// The gossip topic of a federation.
pub fn topic(federation: &Federation) -> gossipsub::IdentTopic {
    let id = federation.id().digest().to_hex();
    gossipsub::IdentTopic::new(format!("credence/{}/notices/1", &id[..8]))
}

/// The witness gossip topic of a federation: checkpoints, cosignatures
/// and split-view evidence.
pub fn checkpoint_topic(federation: &Federation) -> gossipsub::IdentTopic {
    let id = federation.id().digest().to_hex();
    gossipsub::IdentTopic::new(format!("credence/{}/checkpoints/1", &id[..8]))
}

/// The libp2p keypair of an authority key.
pub fn keypair(key: &AuthorityKey) -> identity::Keypair {
    let mut secret = key.secret_bytes();
    // Infallible for 32 bytes; the result owns a copy of the secret.
    match identity::Keypair::ed25519_from_bytes(&mut secret) {
        Ok(pair) => pair,
        Err(error) => unreachable!("a 32-byte ed25519 secret is always valid: {error}"),
    }
}

/// The peer id of an authority, if its key is a valid ed25519 point.
pub fn peer_id(author: &AuthorityId) -> Option<PeerId> {
    let key = identity::ed25519::PublicKey::try_from_bytes(&author.0).ok()?;
    Some(PeerId::from_public_key(&identity::PublicKey::from(key)))
}

/// Peer id → authority for every member of the roster.
pub fn members(federation: &Federation) -> BTreeMap<PeerId, AuthorityId> {
    federation
        .roster()
        .members
        .iter()
        .filter_map(|m| peer_id(&m.key).map(|peer| (peer, m.key)))
        .collect()
}

/// Peer id of its current key → member id, for every member of a roster
/// version: who may connect under the current version (a member that
/// rotated its key connects under the new one).
pub fn members_of(version: &Version) -> BTreeMap<PeerId, AuthorityId> {
    version
        .federation
        .roster()
        .members
        .iter()
        .filter_map(|m| {
            let key = version.current_key(&m.key)?.key;
            peer_id(&key).map(|peer| (peer, m.key))
        })
        .collect()
}

/// Peer id of a retired key → member id, for the members of a roster
/// version that retired a key in a planned rotation (not revoked as
/// compromised): such a node may still connect, so that it learns the
/// version that retired its key and restarts under its new one. Its old
/// key signs nothing more (validation refuses it past the cutoff).
pub fn retired_of(version: &Version) -> BTreeMap<PeerId, AuthorityId> {
    version
        .federation
        .roster()
        .members
        .iter()
        .flat_map(|m| {
            let spans = version.keys.get(&m.key).map_or(&[][..], |s| s.as_slice());
            let retired = spans.len().saturating_sub(1);
            spans[..retired]
                .iter()
                .filter(|span| !span.compromised)
                .filter_map(move |span| peer_id(&span.key).map(|peer| (peer, m.key)))
        })
        .collect()
}

/// Requests and responses as length-prefixed bytes, each direction with
/// its own bound; decoding the bytes is the daemon's (where failures are
/// counted by reason).
#[derive(Clone, Copy, Debug)]
pub struct BoundedCodec {
    request_bytes_max: usize,
    response_bytes_max: usize,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    bytes_max: usize,
) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    io.read_exact(&mut length).await?;
    let length = u32::from_le_bytes(length) as usize;
    if length > bytes_max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {length} bytes exceeds the limit of {bytes_max}"),
        ));
    }
    // Read as it arrives, a chunk at a time: a peer that announces a large
    // frame and sends little makes this node hold only what it sent.
    let mut bytes = Vec::with_capacity(length.min(FRAME_CHUNK_BYTES));
    let mut chunk = [0u8; FRAME_CHUNK_BYTES];
    while bytes.len() < length {
        let want = (length - bytes.len()).min(FRAME_CHUNK_BYTES);
        let got = io.read(&mut chunk[..want]).await?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the stream ended after {} of the {length} bytes announced",
                    bytes.len()
                ),
            ));
        }
        bytes.extend_from_slice(&chunk[..got]);
    }
    Ok(bytes)
}

/// Bytes of a frame read at a time.
const FRAME_CHUNK_BYTES: usize = 16 * 1024;

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
    bytes_max: usize,
) -> io::Result<()> {
    if bytes.len() > bytes_max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a message of {} bytes exceeds the limit of {bytes_max}",
                bytes.len()
            ),
        ));
    }
    io.write_all(&(bytes.len() as u32).to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

impl request_response::Codec for BoundedCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.request_bytes_max).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.response_bytes_max).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, self.request_bytes_max).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response, self.response_bytes_max).await
    }
}

/// Everything a node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Refuses connections from peers outside the roster.
    pub gate: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    /// Bounds connections: pending inbound, per peer, in all.
    pub limits: connection_limits::Behaviour,
    /// Exchanges listen addresses and agent versions.
    pub identify: identify::Behaviour,
    /// Spreads new notices.
    pub gossipsub: gossipsub::Behaviour,
    /// Anti-entropy sync.
    pub sync: request_response::Behaviour<BoundedCodec>,
    /// Cross-region query.
    pub query: request_response::Behaviour<BoundedCodec>,
    /// Local-network discovery (optional).
    pub mdns: Toggle<mdns::tokio::Behaviour>,
}

/// Why the swarm could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the network could not be set up: {0}")]
pub struct NetError(pub String);

fn gossipsub(federation: &Federation) -> Result<gossipsub::Behaviour, NetError> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .max_transmit_size(GOSSIP_MESSAGE_BYTES_MAX)
        .heartbeat_interval(Duration::from_millis(700))
        .message_id_fn(|message| {
            // The notice id: every copy of a notice has one message id (a
            // witness message's id is the same hash of its bytes).
            gossipsub::MessageId::from(credence_crypto::merkle::leaf_hash(&message.data).0.to_vec())
        })
        .build()
        .map_err(|e| NetError(e.to_string()))?;
    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)
            .map_err(|e| NetError(e.to_string()))?;
    // Notices are rare: the default mesh-delivery penalty would punish
    // honest mesh peers for having nothing to say. Invalid messages still
    // cost the sender (P4).
    let topic = topic(federation);
    let topic_params = gossipsub::TopicScoreParams {
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        ..gossipsub::TopicScoreParams::default()
    };
    let mut params = gossipsub::PeerScoreParams::default();
    params.topics.insert(topic.hash(), topic_params.clone());
    let checkpoints = checkpoint_topic(federation);
    params.topics.insert(checkpoints.hash(), topic_params);
    behaviour
        .with_peer_score(params, gossipsub::PeerScoreThresholds::default())
        .map_err(NetError)?;
    for topic in [&topic, &checkpoints] {
        behaviour
            .subscribe(topic)
            .map_err(|e| NetError(e.to_string()))?;
    }
    Ok(behaviour)
}

fn request_response(
    protocol: &'static str,
    request_bytes_max: usize,
    response_bytes_max: usize,
) -> request_response::Behaviour<BoundedCodec> {
    request_response::Behaviour::with_codec(
        BoundedCodec {
            request_bytes_max,
            response_bytes_max,
        },
        [(
            StreamProtocol::new(protocol),
            request_response::ProtocolSupport::Full,
        )],
        request_response::Config::default()
            .with_request_timeout(REQUEST_TIMEOUT)
            .with_max_concurrent_streams(STREAMS_MAX),
    )
}

/// Builds the swarm of `key` in `federation`, open to `members` (peer id
/// → member).
pub fn swarm(
    key: &AuthorityKey,
    federation: &Federation,
    members: &BTreeMap<PeerId, AuthorityId>,
    mdns: bool,
) -> Result<Swarm<Behaviour>, NetError> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair(key))
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError(e.to_string()))?
        .with_behaviour(|pair| {
            let local = pair.public().to_peer_id();
            let mut gate = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
            for peer in members.keys() {
                gate.allow_peer(*peer);
            }
            let mdns = if mdns {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), local)?)
            } else {
                None
            };
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(PENDING_INCOMING_MAX))
                .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
                .with_max_established(Some(CONNECTIONS_MAX));
            Ok(Behaviour {
                gate,
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/credence/1".into(),
                    pair.public(),
                )),
                gossipsub: gossipsub(federation).map_err(Box::new)?,
                sync: request_response(
                    SYNC_PROTOCOL,
                    SYNC_MESSAGE_BYTES_MAX,
                    SYNC_MESSAGE_BYTES_MAX,
                ),
                query: request_response(
                    QUERY_PROTOCOL,
                    QUERY_MESSAGE_BYTES_MAX,
                    ANSWER_BYTES_MAX + 128,
                ),
                mdns: Toggle::from(mdns),
            })
        })
        .map_err(|e| NetError(e.to_string()))?
        .with_swarm_config(|config| config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authority_key_is_its_peer_id() {
        let key = AuthorityKey::from_secret_bytes([7; 32]);
        let author = AuthorityId(key.public_bytes());
        assert_eq!(
            keypair(&key).public().to_peer_id(),
            peer_id(&author).unwrap()
        );
    }

    #[test]
    fn frames_over_the_limit_are_refused_before_they_are_read() {
        let mut announced = (1u32 << 30).to_le_bytes().to_vec();
        announced.extend_from_slice(&[0; 16]);
        let error =
            futures::executor::block_on(read_frame(&mut futures::io::Cursor::new(announced), 1024))
                .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("limit of 1024"), "{error}");
        let mut short = 8u32.to_le_bytes().to_vec();
        short.extend_from_slice(&[1, 2, 3]);
        assert!(
            futures::executor::block_on(read_frame(&mut futures::io::Cursor::new(short), 1024))
                .is_err()
        );
        let mut out = futures::io::Cursor::new(Vec::new());
        assert!(futures::executor::block_on(write_frame(&mut out, &[0; 2048], 1024)).is_err());
    }

    // A frame within the limit is read as it arrives: a peer announcing
    // 4 MiB and sending 10 bytes gets an error naming what came, and a
    // frame sent in full comes back whole across many chunks.
    #[test]
    fn frames_are_read_as_they_arrive() {
        let announced = 4u32 << 20;
        let mut short = announced.to_le_bytes().to_vec();
        short.extend_from_slice(&[9; 10]);
        let error =
            futures::executor::block_on(read_frame(&mut futures::io::Cursor::new(short), 8 << 20))
                .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            error.to_string().contains("after 10 of the 4194304"),
            "{error}"
        );
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut framed = Vec::new();
        futures::executor::block_on(write_frame(
            &mut futures::io::Cursor::new(&mut framed),
            &payload,
            1 << 20,
        ))
        .unwrap();
        let back =
            futures::executor::block_on(read_frame(&mut futures::io::Cursor::new(framed), 1 << 20))
                .unwrap();
        assert_eq!(back, payload);
    }
}
