//! The sans-IO core of credence: the data model, the canonical codec,
//! validation, the listing state fold and the replica state machine.
//!
//! The mental model: every authority appends signed notices to its own
//! dense log (`seq` 1, 2, 3, ... chained by `prev`). A [`replica::Replica`]
//! ingests envelopes from anywhere, in any order, checks every rule of
//! [`validate`], holds what it cannot decide yet, keeps fork evidence, and
//! stores the rest through the [`store::Store`] trait. The state of a
//! listing is then a pure function ([`fold::fold`]) of the set of notices
//! about it and the time it is read, so replicas that hold the same set
//! agree.
//!
//! **Architecture invariant:** this crate never reads the clock, never does
//! I/O and never uses a global RNG; it does not depend on tokio, libp2p or
//! sled.
//!
//! ```
//! use credence_protocol::identifiers::check_uscc;
//! assert!(check_uscc("91350100M000100Y43").is_ok());
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

pub mod access;
pub mod bundle;
pub mod catalog;
pub mod changes;
pub mod checkpoint;
pub mod codec;
pub mod defaults;
pub mod engine;
pub mod fold;
pub mod governance;
pub mod identifiers;
pub mod model;
pub mod names;
pub mod proven;
pub mod public;
pub mod query;
pub mod receipt;
pub mod register;
pub mod replica;
pub mod report;
pub mod roster;
pub mod store;
pub mod sync;
pub mod testkit;
pub mod time;
pub mod validate;

pub use model::{AuthorityId, Envelope, FederationId, Notice, NoticeId, NoticeKind};
pub use time::Timestamp;
