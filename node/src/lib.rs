//! The credence node: the sled store, the node's data directory and key
//! file, the operator commands, export and the offline audit.
//!
//! The mental model: a node is a data directory holding the authority's
//! key file, its copy of the genesis roster and a sled store. Every
//! command opens it, drives the sans-IO [`credence_protocol::replica::Replica`]
//! with the real clock, flushes before it reports success, and closes it.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

pub mod accounts;
pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod devnet;
pub mod http;
pub mod http_metrics;
pub mod keeper;
pub mod keyfile;
pub mod mark;
#[allow(missing_docs)] // the derived behaviour event enum
pub mod net;
pub mod node;
pub mod render;
pub mod service;
pub mod store;
pub mod views;
pub mod webhooks;
