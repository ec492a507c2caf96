//! A small blocking client of a running node's HTTP API, used by the
//! operator commands when the node of their data directory is running.

use crate::api::{ADDRESS_FILE, identity_proof};
use crate::node::read_bounded;
use crate::service::read_token;
use crate::views::{ErrorBody, IdentityAnswer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

/// Largest answer read (an export bundle may be large).
const ANSWER_BYTES_MAX: u64 = 1 << 30;
/// How long one call may take (a federation-wide query waits up to 30 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the address (a node that stopped uncleanly).
    #[error("the node's API at {address} does not answer: {reason}")]
    Unreachable {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// What answers at the address cannot prove it is this node: the
    /// token was not sent.
    #[error(
        "the process answering at {address} cannot prove it is this node (a stale api.addr after the node was killed?); the token was not sent"
    )]
    NotTheNode {
        /// The address.
        address: String,
    },
    /// The API answered with an error.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable code.
        code: String,
        /// Message.
        message: String,
    },
}

/// A value for a query string, percent-encoded (RFC 3986: everything but
/// the unreserved characters).
pub fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A client of one node.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client at `address` with `token`.
    pub fn new(address: &str, token: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .build()
            .into();
        Client {
            base: format!("http://{address}"),
            token: token.to_string(),
            agent,
        }
    }

    /// The client of the node running on data directory `dir`, if it
    /// wrote its API address there. The token is not sent anywhere yet:
    /// see [`Client::prove`].
    pub fn for_data_dir(dir: &Path) -> Option<Client> {
        let path = dir.join(ADDRESS_FILE);
        let address = String::from_utf8(read_bounded(&path, 256, "API address file").ok()?).ok()?;
        let token = read_token(dir).ok()?;
        Some(Client::new(address.trim(), &token))
    }

    /// Asks the process at the address to prove it knows the token, before
    /// the token is sent there: after a `kill -9`, `api.addr` may name a
    /// port that another process holds now.
    pub fn prove(&self) -> Result<(), ClientError> {
        let mut challenge = [0u8; 32];
        getrandom::fill(&mut challenge).map_err(|e| ClientError::Unreachable {
            address: self.base.clone(),
            reason: format!("no random challenge: {e}"),
        })?;
        let challenge = hex::encode(challenge);
        let account = self
            .token
            .split_once('.')
            .map_or(crate::accounts::NODE_ACCOUNT, |(name, _)| name);
        let result = self
            .agent
            .get(format!(
                "{}/v1/identity?challenge={challenge}&account={account}",
                self.base
            ))
            .call();
        let body = self.finish(result)?;
        let answer: IdentityAnswer = self.json(body)?;
        let hash = crate::accounts::credential_hash(&self.token);
        if answer.proof != identity_proof(&hash, &challenge) {
            return Err(ClientError::NotTheNode {
                address: self.base.clone(),
            });
        }
        Ok(())
    }

    fn finish(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>, ClientError> {
        let mut response = result.map_err(|e| ClientError::Unreachable {
            address: self.base.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(ANSWER_BYTES_MAX)
            .read_to_vec()
            .map_err(|e| ClientError::Unreachable {
                address: self.base.clone(),
                reason: e.to_string(),
            })?;
        if status >= 400 {
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(error) => ClientError::Api {
                    status,
                    code: error.error.code,
                    message: error.error.message,
                },
                Err(_) => ClientError::Api {
                    status,
                    code: "not_json".into(),
                    message: String::from_utf8_lossy(&body).into_owned(),
                },
            });
        }
        Ok(body)
    }

    fn json<T: DeserializeOwned>(&self, body: Vec<u8>) -> Result<T, ClientError> {
        serde_json::from_slice(&body).map_err(|e| ClientError::Unreachable {
            address: self.base.clone(),
            reason: format!("the answer is not what this version of credence expects: {e}"),
        })
    }

    /// `GET path` as bytes.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let result = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.finish(result)
    }

    /// `GET path`, its body copied to `out` as it arrives (no size
    /// limit: for answers as large as the store, such as the extract);
    /// the bytes copied. An error answer is read and returned as usual.
    /// The answer must begin within the usual call timeout; its body may
    /// take as long as it takes (the node ends a stream its reader
    /// stalls, not one that moves).
    pub fn get_to(&self, path: &str, out: &mut dyn std::io::Write) -> Result<u64, ClientError> {
        let result = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .config()
            .timeout_global(None)
            .timeout_recv_response(Some(CALL_TIMEOUT))
            .build()
            .call();
        let response = match result {
            Ok(response) if response.status().as_u16() < 400 => response,
            other => return self.finish(other).map(|_| 0),
        };
        let mut body = response.into_body();
        let mut reader = body.with_config().limit(u64::MAX).reader();
        std::io::copy(&mut reader, out).map_err(|e| ClientError::Unreachable {
            address: self.base.clone(),
            reason: format!("the answer was cut short or could not be written: {e}"),
        })
    }

    /// `GET path`, decoded as the route's answer type.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.get_bytes(path)?;
        self.json(body)
    }

    /// `POST path` with JSON `body` (already encoded) and an
    /// `Idempotency-Key`, decoded as the route's answer type: a retry with
    /// the same key and body gets the first answer, and `true` with it.
    pub fn post_once<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &[u8],
        key: &str,
    ) -> Result<(T, bool), ClientError> {
        let result = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key)
            .send(body);
        let replayed = result.as_ref().is_ok_and(|response| {
            response
                .headers()
                .get("idempotent-replayed")
                .is_some_and(|v| v == "true")
        });
        let body = self.finish(result)?;
        Ok((self.json(body)?, replayed))
    }

    /// `POST path` with a JSON body, decoded as the route's answer type.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let result = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body);
        let body = self.finish(result)?;
        self.json(body)
    }
}
