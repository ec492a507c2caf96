//! The HTTP API (axum, JSON). Bound to loopback by default. Every route
//! but the public feed and the identity proof needs a named account's
//! credential, `Authorization: Bearer <account>.<secret>`, whose role
//! grants the permission the route needs ([`crate::accounts`]): no
//! credential or a wrong one is 401 `unauthorised`, a revoked account 401
//! `revoked`, a role that does not grant it 403 `forbidden` naming the
//! roles that do. The node's own command line uses the account
//! `operator` (role admin), whose credential is in `api.token`. A
//! listing past its sharing period is served to an account with the audit
//! permission only (a lookup leaves it out; asked for alone, 403
//! `not_shared`).
//!
//! | method | path | permission | what |
//! |---|---|---|---|
//! | POST | `/v1/notices` | issue | issue a notice: `{"list": {...}}`, `{"object": {...}}`, ...; with `Idempotency-Key`, at most once per key (a retry gets the first answer, `Idempotent-Replayed: true`; another body with the key is 409; the governance POSTs take the key too) |
//! | GET | `/v1/subjects/{id}?kind=&at=&purpose=&legal_basis=` | read | a subject's listings (the read is registered; purpose and legal basis required) |
//! | GET | `/v1/listings/{id}?at=&purpose=&legal_basis=` | read | one listing with its history (registered likewise) |
//! | GET | `/v1/tasks?at=&limit=&after=` | read | this authority's apply/lift tasks, a page of listings at a time (`next` names the listing to continue after) |
//! | GET | `/v1/search?name=&limit=&purpose=&legal_basis=` | read | listings whose subject or linked person has a name holding the search (Chinese or Latin, in part; registered as a read of each person or organisation found) |
//! | GET | `/v1/changes?after=&limit=&wait=` | read | the change feed: each listing's state changes (by a notice, or by time: publication or sharing ends, repair becomes possible, a response falls overdue) and this authority's task changes, after a cursor; waits up to `wait` s for the next |
//! | GET | `/v1/changes/stream?after=` | read | the same as server-sent events (`id:` the cursor; `Last-Event-ID` resumes) |
//! | POST | `/v1/query` | read | local or federation-wide query |
//! | GET | `/v1/status` | read | peers, heads and lag per author, pending, forks |
//! | GET | `/v1/peers` | read | connected members |
//! | GET | `/v1/register?from=&limit=` | audit | records of the register of reads (lookups, listings shown, queries sent and answered, exports) with its checkpoint signed now |
//! | GET | `/v1/feed?limit=&after=` | (public) | a page of the publicity feed: published listings and public corrections, newest first, natural persons masked; `next` is the next page's `after` |
//! | GET | `/v1/extract?format=csv\|jsonl` | (public) | the public extract: every entry of the feed now, masked, as CSV (columns in `views::EXTRACT_CSV_COLUMNS`) or JSON Lines |
//! | GET | `/v1/identity?challenge=&account=` | (public) | proof that this process holds the account's credential hash |
//! | GET | `/v1/openapi.json` | (public) | this API's OpenAPI 3.1 document ([`openapi`]): every route, parameter, body, answer and error |
//! | GET | `/v1/export?purpose=&legal_basis=` | audit | an audit bundle (binary; the export is registered) |
//! | GET | `/v1/subjects/{id}/report?kind=&purpose=&legal_basis=&format=` | audit | the subject's report: every listing that names it (as subject or linked person) with its history, and every consultation of its records here, signed by this node; JSON, or `format=html` for a printable page (registered) |
//! | GET | `/v1/logs/{author}/checkpoint` | read | the signed checkpoint of this node's own log (C2SP signed note, text) |
//! | GET | `/v1/logs/{author}/inclusion?seq=&size=` | read | inclusion proof of the notice at `seq` |
//! | GET | `/v1/logs/{author}/consistency?from=&to=` | read | consistency proof between two sizes |
//! | GET | `/v1/logs/{author}/entries?from=&count=` | read | envelopes from `from` (at most 512) |
//! | GET | `/v1/federation` | read | the roster chain, the current version, equivocations and the proposals held |
//! | POST | `/v1/federation/proposals` | issue | `{"change": {...}}`: build the next version, sign it, circulate it; `{"proposal": HEX}`: take a proposal file's bytes |
//! | POST | `/v1/federation/proposals/{hash}/sign` | issue | add this member's signature and circulate |
//! | POST | `/v1/federation/proposals/{hash}/submit` | issue | publish a proposal that reached its threshold |
//! | POST | `/v1/federation/versions` | issue | `{"version": HEX}`: take and publish a signed version |
//! | GET | `/v1/federation/versions` | read | every valid signed roster version held, hex, in number order |
//! | GET | `/metrics` | read | Prometheus metrics |
//!
//! Errors are `{"error": {"code": "...", "message": "..."}}` with a stable
//! code; a bad body names the offending field. JSON names and enum values
//! are snake_case, and query strings take the same names. Tasks, feed, export and
//! metrics fold every listing off the event loop, a few at a time; when
//! too many already wait, another gets 503 `busy`. The anonymous feed has
//! places of its own and a one-second cache, so that its load never takes
//! the operators'. At most 256 connections are served at once, an idle
//! one is closed after 30 s and a request is cut at 60 s.

use crate::accounts::{AccountBook, AuthError, NODE_ACCOUNT, Permission, Role};
use crate::daemon::{
    Command, DaemonError, GovernRequest, ProofAnswer, ProofAsk, QUERY_DEADLINE_DEFAULT_MS,
    QUERY_DEADLINE_MAX_MS, QueryAsk, QueryScope,
};
use crate::daemon::{FEED_LISTINGS_DEFAULT, FEED_LISTINGS_MAX, REGISTER_RECORDS_MAX, Read, Stated};
use crate::views::{
    ChangeView, ChangesView, ConsistencyView, EntriesView, ErrorBody, ErrorDetail, FeedView,
    GovernanceView, IdentityAnswer, InclusionView, IssueAnswer, ListingView, PeersView, QueryView,
    RegisterView, ReportView, RosterView, SearchView, Status, SubjectView, TasksView, VersionsView,
};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use credence_protocol::engine::{Readiness, Refusal};
use credence_protocol::governance::SignedVersion;
use credence_protocol::governance::proposal::{ChangeDocument, decode_proposal};
use credence_protocol::model::{
    AuthorityId, NoticeId, NoticeKind, RosterHash, SubjectKey, SubjectKind,
};
use credence_protocol::roster::Federation;
use credence_protocol::time::Timestamp;
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

mod openapi;
mod web;

/// Largest request body accepted.
pub const BODY_BYTES_MAX: usize = 256 * 1024;
/// The token file of a data directory.
pub const TOKEN_FILE: &str = "api.token";
/// Where a running node writes its API address.
pub const ADDRESS_FILE: &str = "api.addr";

/// An API error: HTTP status, stable code, message naming what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

/// Characters of an error message at most: a message that quotes what was
/// sent (a path segment, a parameter) is cut there, so that a long input
/// is never echoed whole.
const ERROR_MESSAGE_CHARS_MAX: usize = 400;

impl ApiError {
    fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        let mut message = message.into();
        if let Some((cut, _)) = message.char_indices().nth(ERROR_MESSAGE_CHARS_MAX) {
            let chars = message.chars().count();
            message.truncate(cut);
            message.push_str(&format!("… (cut: {chars} characters in all)"));
        }
        ApiError {
            status: 400,
            code,
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        response
            .extensions_mut()
            .insert(crate::http_metrics::ErrorCode(self.code));
        response
    }
}

/// Query-string parameters: like axum's `Query`, but a string that does
/// not parse (an unknown parameter, a wrong type, bad UTF-8) gets the
/// API's JSON error naming what was wrong, not plain text.
struct Params<T>(T);

impl<T, S> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(params)) => Ok(Params(params)),
            Err(rejection) => Err(ApiError::bad("bad_field", rejection.body_text())),
        }
    }
}

#[derive(Clone)]
struct AppState {
    commands: mpsc::Sender<Command>,
    /// The newest durable change of the change feed.
    changes: tokio::sync::watch::Receiver<u64>,
    /// The federation at the roster's current version.
    federation: tokio::sync::watch::Receiver<Federation>,
    accounts: Arc<AccountBook>,
    http: crate::http_metrics::HttpMetrics,
    /// The web console's sessions.
    sessions: web::Sessions,
}

impl AppState {
    /// The federation at the roster's current version.
    fn federation(&self) -> Federation {
        self.federation.borrow().clone()
    }
}

/// The account a request was made with, and its role (set by the
/// authorisation layer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The account.
    pub account: String,
    /// Its role.
    pub role: Role,
}

/// The router of a node's API.
pub fn router(
    commands: mpsc::Sender<Command>,
    durable_changes: tokio::sync::watch::Receiver<u64>,
    federation: tokio::sync::watch::Receiver<Federation>,
    accounts: Arc<AccountBook>,
) -> Router {
    let state = AppState {
        commands,
        changes: durable_changes,
        federation,
        accounts,
        http: crate::http_metrics::HttpMetrics::default(),
        sessions: web::Sessions::default(),
    };
    let counted = middleware::from_fn_with_state(state.http.clone(), crate::http_metrics::count);
    let guard = |permission: Permission| {
        middleware::from_fn_with_state((state.clone(), permission), authorise)
    };
    let read = Router::new()
        .route("/v1/subjects/{id}", get(subject))
        .route("/v1/listings/{id}", get(listing))
        .route("/v1/tasks", get(tasks))
        .route("/v1/search", get(search))
        .route("/v1/changes", get(changes))
        .route("/v1/changes/stream", get(changes_stream))
        .route("/v1/query", post(query))
        .route("/v1/status", get(status))
        .route("/v1/peers", get(peers))
        .route("/v1/logs/{author}/checkpoint", get(checkpoint))
        .route("/v1/logs/{author}/inclusion", get(inclusion))
        .route("/v1/logs/{author}/consistency", get(consistency))
        .route("/v1/logs/{author}/entries", get(entries))
        .route("/v1/federation", get(roster))
        .route("/v1/federation/versions", get(versions))
        .route("/metrics", get(metrics))
        .route_layer(guard(Permission::Read));
    let issue = Router::new()
        .route("/v1/notices", post(issue))
        .route("/v1/federation/proposals", post(propose))
        .route("/v1/federation/proposals/{hash}/sign", post(sign_proposal))
        .route(
            "/v1/federation/proposals/{hash}/submit",
            post(submit_proposal),
        )
        .route("/v1/federation/versions", post(take_version))
        .route_layer(guard(Permission::Issue));
    let audit = Router::new()
        .route("/v1/register", get(register))
        .route("/v1/export", get(export))
        .route("/v1/subjects/{id}/report", get(report))
        .route_layer(guard(Permission::Audit));
    Router::new()
        .route("/v1/feed", get(feed))
        .route("/v1/extract", get(extract))
        .route("/v1/identity", get(identity))
        .route("/v1/openapi.json", get(openapi_json))
        .merge(web::routes())
        .merge(read)
        .merge(issue)
        .merge(audit)
        .fallback(
            |uri: axum::http::Uri, lang: web::Lang, headers: HeaderMap| async move {
                // A path outside the API that a browser asked for (it takes
                // HTML) gets the web's page; anything else the JSON error.
                let api = uri.path().starts_with("/v1/") || uri.path() == "/metrics";
                let browser = headers
                    .get_all(header::ACCEPT)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| v.contains("text/html"));
                if api || !browser {
                    ApiError {
                        status: 404,
                        code: "not_found",
                        message:
                            "no such route; /v1/openapi.json lists every route this node serves"
                                .into(),
                    }
                    .into_response()
                } else {
                    ApiError {
                        status: 404,
                        code: "not_found",
                        message: lang.t("没有这个页面", "no such page").into(),
                    }
                    .page(lang)
                }
            },
        )
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn(deadline))
        .layer(middleware::map_response(json_errors))
        .layer(counted)
        .with_state(state)
}

async fn authorise(
    State((state, permission)): State<(AppState, Permission)>,
    headers: HeaderMap,
    mut request: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match state.accounts.check(given, permission) {
        Ok((account, role)) => {
            request.extensions_mut().insert(Caller { account, role });
            next.run(request).await
        }
        Err(error) => {
            let (status, code) = match &error {
                AuthError::Forbidden { .. } => (403, "forbidden"),
                AuthError::Revoked(_) => (401, "revoked"),
                AuthError::Missing | AuthError::Malformed | AuthError::Wrong => {
                    (401, "unauthorised")
                }
            };
            ApiError {
                status,
                code,
                message: error.to_string(),
            }
            .into_response()
        }
    }
}

/// Longest a request may take (a federation-wide query waits at most
/// 30 s); past it the caller gets 503 `timeout`.
pub const HTTP_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Longest framework message kept in an error answer.
const FRAMEWORK_MESSAGE_BYTES_MAX: usize = 1024;

/// Every error answer in the API's JSON envelope: the framework's own
/// rejections (a method a route does not take, a body past the limit, a
/// path that is not UTF-8 or does not parse, a body of the wrong type)
/// come as plain text or empty, and are rewritten here with a stable code
/// and the framework's words as the message.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    // A JSON error is the API's own; an HTML one is a page of the web's.
    let ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| {
            t.as_bytes().starts_with(b"application/json") || t.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || ours {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, FRAMEWORK_MESSAGE_BYTES_MAX)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let (code, fallback) = match status.as_u16() {
        400 => ("bad_request", "the request does not parse"),
        404 => (
            "not_found",
            "no such route; /v1/openapi.json lists every route this node serves",
        ),
        405 => ("method_not_allowed", "this route does not take that method"),
        408 => ("timeout", "the request took too long to arrive"),
        413 => ("too_large", "the request body is over the limit"),
        415 => (
            "unsupported_media_type",
            "the body is not of a type this route takes",
        ),
        422 => ("bad_body", "the body does not parse"),
        _ => ("internal", "the node failed to answer"),
    };
    let message = match (status.as_u16(), text.is_empty()) {
        (413, _) => format!("the request body is over the limit of {BODY_BYTES_MAX} bytes"),
        (_, true) => fallback.to_string(),
        (_, false) => text,
    };
    let mut response = ApiError {
        status: status.as_u16(),
        code,
        message,
    }
    .into_response();
    // The methods a route takes stay known to the client.
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        response.headers_mut().insert(header::ALLOW, allow.clone());
    }
    response
}

async fn deadline(request: Request, next: Next) -> Response {
    match tokio::time::timeout(HTTP_REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError {
            status: 503,
            code: "timeout",
            message: format!(
                "the node did not answer within {} s; try again",
                HTTP_REQUEST_TIMEOUT.as_secs()
            ),
        }
        .into_response(),
    }
}

/// Domain of the API's proof that it knows the token.
const IDENTITY_DOMAIN: &str = "credence/v1/api-identity";
/// Length of a challenge in hex digits.
pub const CHALLENGE_HEX_LEN: usize = 64;

/// The proof that whoever answers holds the stored hash of an account's
/// credential (`credential_hash`, hex), for `challenge`: a keyed BLAKE3
/// hash, so that the credential itself never crosses the wire to prove
/// it. The client computes the hash from its credential.
pub fn identity_proof(credential_hash: &str, challenge: &str) -> String {
    let key = blake3::derive_key(IDENTITY_DOMAIN, credential_hash.as_bytes());
    blake3::keyed_hash(&key, challenge.as_bytes())
        .to_hex()
        .to_string()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct IdentityParams {
    /// A fresh random challenge, hex.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    challenge: String,
    /// The account (the node's own when absent).
    #[param(pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    account: Option<String>,
}

/// `GET /v1/identity?challenge=HEX&account=NAME` (no credential): proves
/// this process holds the account's credential hash before a client sends
/// the credential (a stale `api.addr` may point at another process). The
/// account defaults to the node's own.
#[utoipa::path(get, path = "/v1/identity", tag = "public", security(()), params(IdentityParams),
    responses((status = 200, description = "Proof that this process holds the account's credential hash", body = IdentityAnswer),
        (status = 404, description = "No such account (`not_found`)", body = ErrorBody), openapi::PublicErrors))]
async fn identity(
    State(state): State<AppState>,
    Params(params): Params<IdentityParams>,
) -> Result<Json<IdentityAnswer>, ApiError> {
    if params.challenge.len() != CHALLENGE_HEX_LEN
        || !params.challenge.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(ApiError::bad(
            "bad_field",
            format!("challenge: expected {CHALLENGE_HEX_LEN} hex digits"),
        ));
    }
    let account = params.account.as_deref().unwrap_or(NODE_ACCOUNT);
    crate::accounts::check_name(account)
        .map_err(|message| ApiError::bad("bad_field", format!("account: {message}")))?;
    let hash = state.accounts.hash_of(account).ok_or_else(|| ApiError {
        status: 404,
        code: "not_found",
        message: format!("no account {account}"),
    })?;
    Ok(Json(IdentityAnswer {
        proof: identity_proof(&hash, &params.challenge),
    }))
}

impl From<DaemonError> for ApiError {
    /// The one place where the node's answers become HTTP statuses.
    fn from(error: DaemonError) -> ApiError {
        let message = error.to_string();
        let (status, code) = match &error {
            DaemonError::Refused(refusal) => (
                match refusal {
                    Refusal::NotReady(Readiness::Forked { .. }) | Refusal::KeyRetired(_) => 409,
                    Refusal::NotReady(_) | Refusal::Busy(_) | Refusal::KeyRotating(_) => 503,
                    Refusal::Invalid(_) => 422,
                    Refusal::UnknownReference { .. } => 404,
                    Refusal::BadQuery(_) => 400,
                    Refusal::Clearance(_) => 403,
                    Refusal::OverBudget { .. } => 429,
                    Refusal::Store(_) => 500,
                },
                refusal.code(),
            ),
            DaemonError::UnknownListing(_) => (404, "unknown_listing"),
            DaemonError::NotShared(_) => (403, "not_shared"),
            DaemonError::Withheld(..) => (403, "withheld"),
            DaemonError::IdempotencyConflict(_) => (409, "idempotency_key_reused"),
            DaemonError::NoCheckpoint(_) => (404, "no_checkpoint"),
            DaemonError::NotHeld(_) => (404, "not_held"),
            DaemonError::BadRequest(_) => (400, "bad_request"),
            DaemonError::Busy(_) => (503, "busy"),
            DaemonError::Internal(_) => (500, "internal"),
        };
        ApiError {
            status,
            code,
            message,
        }
    }
}

async fn ask<T>(
    state: &AppState,
    make: impl FnOnce(oneshot::Sender<Result<T, DaemonError>>) -> Command,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    state.commands.send(make(tx)).await.map_err(|_| ApiError {
        status: 503,
        code: "stopping",
        message: "the node is stopping".into(),
    })?;
    rx.await
        .map_err(|_| ApiError {
            status: 503,
            code: "stopping",
            message: "the node is stopping".into(),
        })?
        .map_err(ApiError::from)
}

/// The body with every number written with a fraction or an exponent but
/// of a whole value (`16.0`, `1.7e12`) written as that whole number: JSON
/// Schema counts `16.0` as an integer, and so does the API. Other numbers,
/// strings and everything else are left byte for byte.
fn whole_numbers(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut copied, mut in_string, mut escaped) = (0, 0, false, false);
    while i < body.len() {
        let b = body[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let end = body[i..]
                .iter()
                .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .map_or(body.len(), |n| i + n);
            let token = &body[i..end];
            let whole = token
                .iter()
                .any(|c| matches!(c, b'.' | b'e' | b'E'))
                .then(|| std::str::from_utf8(token).ok()?.parse::<f64>().ok())
                .flatten()
                .filter(|v| v.is_finite() && v.fract() == 0.0 && v.abs() < 9.2e18);
            if let Some(value) = whole {
                let out = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
                out.extend_from_slice(&body[copied..i]);
                // Exact: a whole f64 below 2^63 converts without loss.
                out.extend_from_slice((value as i64).to_string().as_bytes());
                copied = end;
            }
            i = end;
            continue;
        }
        i += 1;
    }
    match out {
        None => std::borrow::Cow::Borrowed(body),
        Some(mut out) => {
            out.extend_from_slice(&body[copied..]);
            std::borrow::Cow::Owned(out)
        }
    }
}

/// Parses a JSON body, naming the offending field on failure.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = whole_numbers(body);
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::bad("bad_json", format!("request body: {inner}"))
        } else {
            ApiError::bad("bad_field", format!("{path}: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad("bad_json", format!("request body: {e}")))?;
    Ok(value)
}

fn parse_at(at: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    at.map(|text| {
        Timestamp::parse(text).map_err(|e| ApiError::bad("bad_field", format!("at: {e}")))
    })
    .transpose()
}

fn parse_id(field: &str, text: &str) -> Result<NoticeId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad(
            "bad_field",
            format!("{field}: {text:?} is not a notice id (64 hex digits)"),
        )
    })
}

#[utoipa::path(get, path = "/v1/federation", tag = "federation", security(("account" = [])),
    responses((status = 200, description = "The roster chain, the current version, equivocations and proposals held", body = RosterView), openapi::GuardedErrors))]
async fn roster(State(state): State<AppState>) -> Result<Json<RosterView>, ApiError> {
    Ok(Json(ask(&state, Command::Roster).await?))
}

#[utoipa::path(get, path = "/v1/federation/versions", tag = "federation", security(("account" = [])),
    responses((status = 200, description = "Every valid signed roster version held, hex, in number order", body = VersionsView), openapi::GuardedErrors))]
async fn versions(State(state): State<AppState>) -> Result<Json<VersionsView>, ApiError> {
    Ok(Json(ask(&state, Command::RosterVersions).await?))
}

/// The body of `POST /v1/federation/proposals`: a change to build the
/// next version from, or a proposal file's bytes in hex.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
enum ProposalBody {
    #[serde(rename = "change")]
    Change(Box<ChangeDocument>),
    #[serde(rename = "proposal")]
    Proposal(String),
}

/// `?competing=true` on signing a proposal (or making one from a change).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CompetingParams {
    /// Sign even though this member signed another proposal for the same
    /// version: if both reach the threshold, the one with the lower hash is
    /// taken and the members who signed both are named as equivocating
    /// (refused without it, saying so)
    competing: Option<bool>,
}

impl CompetingParams {
    /// Whether to sign as competing, and the route as the idempotency key
    /// remembers it (a retry must ask the same).
    fn of(self, route: &str) -> (bool, String) {
        let competing = self.competing.unwrap_or(false);
        let route = if competing {
            format!("{route}?competing=true")
        } else {
            route.to_string()
        };
        (competing, route)
    }
}

/// The body of `POST /v1/federation/versions`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VersionBody {
    /// A signed roster version's bytes, hex.
    version: String,
}

fn parse_proposal(field: &str, text: &str) -> Result<SignedVersion, ApiError> {
    let bytes = hex::decode(text.trim()).map_err(|e| {
        ApiError::bad(
            "bad_field",
            format!("{field}: not hex ({e}): give the proposal file's bytes in hex"),
        )
    })?;
    decode_proposal(&bytes).map_err(|e| ApiError::bad("bad_field", format!("{field}: {e}")))
}

fn parse_hash(text: &str) -> Result<RosterHash, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad(
            "bad_field",
            format!("hash: {text:?} is not a roster version hash (64 hex digits)"),
        )
    })
}

/// A governance act; with an `Idempotency-Key`, a retry of the same
/// request gets the first answer (marked `Idempotent-Replayed: true`) and
/// acts no more; the key with another request is 409.
async fn govern(
    state: &AppState,
    request: GovernRequest,
    key: Option<crate::daemon::IssueKey>,
) -> Result<Response, ApiError> {
    let (answer, replayed) = ask(state, |tx| Command::Govern(request, key, tx)).await?;
    let mut response = (StatusCode::OK, Json(GovernanceView::from(&answer))).into_response();
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

#[utoipa::path(post, path = "/v1/federation/proposals", tag = "federation", security(("account" = [])), request_body = ProposalBody, params(CompetingParams, ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and request gets the first answer")),
    responses((status = 200, description = "The proposal built or taken, signed and circulated", body = GovernanceView, headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))), openapi::SigningErrors))]
async fn propose(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(params): Params<CompetingParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let asked = params.competing.is_some();
    let (competing, route) = params.of("/v1/federation/proposals");
    let key = idempotency(&headers, &caller, &route, &body)?;
    let request = match parse_json::<ProposalBody>(&body)? {
        ProposalBody::Change(change) => GovernRequest::Change(change, competing),
        ProposalBody::Proposal(_) if asked => {
            return Err(ApiError::bad(
                "bad_field",
                "competing: this node signs nothing when it takes a proposal; sign it with POST /v1/federation/proposals/{hash}/sign?competing=true",
            ));
        }
        ProposalBody::Proposal(text) => GovernRequest::Proposal(parse_proposal("proposal", &text)?),
    };
    govern(&state, request, key).await
}

#[utoipa::path(post, path = "/v1/federation/proposals/{hash}/sign", tag = "federation", security(("account" = [])), params(CompetingParams, ("hash" = String, Path, pattern = "^[0-9a-fA-F]{64}$", description = "The proposal's hash"), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and request gets the first answer")),
    responses((status = 200, description = "This member's signature added and circulated", body = GovernanceView, headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))), openapi::SigningErrors))]
async fn sign_proposal(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    Params(params): Params<CompetingParams>,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    let (competing, route) = params.of(&format!("/v1/federation/proposals/{hash}/sign"));
    let key = idempotency(&headers, &caller, &route, &[])?;
    govern(&state, GovernRequest::Sign(hash, competing), key).await
}

#[utoipa::path(post, path = "/v1/federation/proposals/{hash}/submit", tag = "federation", security(("account" = [])), params(("hash" = String, Path, pattern = "^[0-9a-fA-F]{64}$", description = "The proposal's hash"), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and request gets the first answer")),
    responses((status = 200, description = "The proposal, at its threshold, published as the next version", body = GovernanceView, headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))), openapi::SigningErrors))]
async fn submit_proposal(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    let route = format!("/v1/federation/proposals/{hash}/submit");
    let key = idempotency(&headers, &caller, &route, &[])?;
    govern(&state, GovernRequest::Submit(hash), key).await
}

#[utoipa::path(post, path = "/v1/federation/versions", tag = "federation", security(("account" = [])), request_body = VersionBody, params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and request gets the first answer")),
    responses((status = 200, description = "The signed version taken and published", body = GovernanceView, headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))), openapi::SigningErrors))]
async fn take_version(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency(&headers, &caller, "/v1/federation/versions", &body)?;
    let parsed: VersionBody = parse_json(&body)?;
    govern(
        &state,
        GovernRequest::Version(parse_proposal("version", &parsed.version)?),
        key,
    )
    .await
}

/// Longest idempotency key.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 255;

/// The `Idempotency-Key` header of a request that signs, if any: 1 to 255
/// visible ASCII characters, bound to the account and to a hash of the
/// route and body.
fn idempotency(
    headers: &HeaderMap,
    caller: &Caller,
    route: &str,
    body: &[u8],
) -> Result<Option<crate::daemon::IssueKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty()
                && k.len() <= IDEMPOTENCY_KEY_BYTES_MAX
                && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::bad(
                "bad_field",
                format!(
                    "Idempotency-Key: 1 to {IDEMPOTENCY_KEY_BYTES_MAX} visible ASCII characters (a UUID, say)"
                ),
            )
        })?;
    Ok(Some(crate::daemon::IssueKey {
        account: caller.account.clone(),
        key: key.to_string(),
        request: request_hash(route, body),
    }))
}

/// What an idempotency key is bound to: BLAKE3 of the route, a zero byte
/// and the body.
pub fn request_hash(route: &str, body: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(route.as_bytes());
    hasher.update(&[0]);
    hasher.update(body);
    *hasher.finalize().as_bytes()
}

/// `POST /v1/notices`: sign a notice. With an `Idempotency-Key`, a retry
/// of the same request gets the first answer (marked
/// `Idempotent-Replayed: true`) and signs nothing more, even after the
/// first answer was lost in a crash; the same key with another body is
/// 409.
#[utoipa::path(post, path = "/v1/notices", tag = "notices", security(("account" = [])),
    request_body(content = NoticeKind, description = "The notice to sign, by kind: `{\"list\": {...}}`, `{\"object\": {...}}`, ..."),
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer")),
    responses(
        (status = 201, description = "Signed, durable and published", body = IssueAnswer,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))),
        openapi::SigningErrors,
    ))]
async fn issue(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency(&headers, &caller, "/v1/notices", &body)?;
    let kind: NoticeKind = parse_json(&body)?;
    let outcome = ask(&state, |tx| Command::Issue(Box::new(kind), key, tx)).await?;
    let mut response = (
        StatusCode::CREATED,
        Json(IssueAnswer {
            id: outcome.id,
            seq: outcome.seq,
        }),
    )
        .into_response();
    if outcome.replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SubjectParams {
    /// The identifier scheme (`legal_person` when absent)
    #[param(value_type = Option<SubjectKind>)]
    kind: Option<String>,
    /// The time to evaluate at: a date `YYYY-MM-DD` from 1970 (midnight UTC; unix milliseconds, more than 10 digits, are taken too); now when absent
    #[param(value_type = Option<String>, format = Date, pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-", example = "2026-12-01")]
    at: Option<String>,
    /// Why the records are read (registered with the read)
    #[param(value_type = String, min_length = 1, max_length = 512, pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]")]
    purpose: Option<String>,
    /// The law the read rests on (registered with the read)
    #[param(value_type = String, min_length = 1, max_length = 512, pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]")]
    legal_basis: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReadParams {
    /// The time to evaluate at: a date `YYYY-MM-DD` from 1970 (midnight UTC; unix milliseconds, more than 10 digits, are taken too); now when absent
    #[param(value_type = Option<String>, format = Date, pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-", example = "2026-12-01")]
    at: Option<String>,
    /// Why the records are read (registered with the read)
    #[param(value_type = String, min_length = 1, max_length = 512, pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]")]
    purpose: Option<String>,
    /// The law the read rests on (registered with the read)
    #[param(value_type = String, min_length = 1, max_length = 512, pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]")]
    legal_basis: Option<String>,
}

/// The registered read a route makes for its caller: purpose and legal
/// basis are required (400 naming the one missing).
fn read_of(
    caller: Caller,
    purpose: Option<String>,
    legal_basis: Option<String>,
) -> Result<Read, ApiError> {
    let stated =
        Stated::new(purpose, legal_basis).map_err(|message| ApiError::bad("bad_field", message))?;
    Ok(Read {
        clearance: caller.role.clearance(),
        account: caller.account,
        stated,
    })
}

/// The index key and the identifier in capitals of a subject identifier
/// given to look up ([`crate::views::lookup_key`]), or the error that
/// quotes it as sent.
fn subject_key(field: &str, kind: SubjectKind, id: &str) -> Result<(SubjectKey, String), ApiError> {
    crate::views::lookup_key(kind, id).ok_or_else(|| {
        ApiError::bad(
            "bad_field",
            format!("{field}: {id:?} is not an identifier of 18 letters and digits"),
        )
    })
}

/// A subject kind as named in JSON (`legal_person`, ...); the hyphenated
/// spelling of earlier releases is still read.
fn parse_kind(kind: Option<&str>) -> Result<SubjectKind, ApiError> {
    match kind.unwrap_or("legal_person") {
        "legal_person" | "legal-person" => Ok(SubjectKind::LegalPerson),
        "other_organisation" | "other-organisation" => Ok(SubjectKind::OtherOrganisation),
        "natural_person" | "natural-person" => Ok(SubjectKind::NaturalPerson),
        other => Err(ApiError::bad(
            "bad_field",
            format!(
                "kind: {other:?} is not one of legal_person, other_organisation, natural_person"
            ),
        )),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReportParams {
    /// The identifier scheme (`legal_person` when absent)
    #[param(value_type = Option<SubjectKind>)]
    kind: Option<String>,
    /// Why the records are read (registered with the read)
    #[param(value_type = String, min_length = 1, max_length = 512, pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]")]
    purpose: Option<String>,
    /// The law the read rests on (registered with the read)
    #[param(value_type = String, min_length = 1, max_length = 512, pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]")]
    legal_basis: Option<String>,
    /// `json` (default) or `html`, a printable page
    #[param(value_type = Option<ReportFormat>)]
    format: Option<String>,
}

/// How a subject's report is given.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
enum ReportFormat {
    Json,
    Html,
}

/// `GET /v1/subjects/{id}/report`: the subject's report, signed by this
/// node, as JSON or (`format=html`) a printable page; registered.
#[utoipa::path(get, path = "/v1/subjects/{id}/report", tag = "audit", security(("account" = [])),
    params(("id" = String, Path, pattern = "^[0-9A-Za-z]{18}$", description = "The subject's identifier (18 letters and digits)"), ReportParams),
    responses((status = 200, description = "The subject's report, signed by this node (registered)", content(
        (ReportView = "application/json"),
        (String = "text/html"))), openapi::GuardedErrors))]
async fn report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Params(params): Params<ReportParams>,
) -> Result<Response, ApiError> {
    let kind = parse_kind(params.kind.as_deref())?;
    let html = match params.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(other) => {
            return Err(ApiError::bad(
                "bad_field",
                format!("format: {other:?} is not json or html"),
            ));
        }
    };
    let (_, id) = subject_key("id", kind, &id)?;
    let read = read_of(caller, params.purpose, params.legal_basis)?;
    let view = ask(&state, |tx| Command::Report(kind, id, read, tx)).await?;
    if html {
        let page = crate::render::report_html(&view);
        return Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response());
    }
    Ok(Json(view).into_response())
}

#[utoipa::path(get, path = "/v1/subjects/{id}", tag = "reads", security(("account" = [])),
    params(("id" = String, Path, pattern = "^[0-9A-Za-z]{18}$", description = "The subject's identifier: a USCC or a resident identity number (18 letters and digits)"), SubjectParams),
    responses((status = 200, description = "The listings that name the subject, as this account may see them (registered)", body = SubjectView), openapi::GuardedErrors))]
async fn subject(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Params(params): Params<SubjectParams>,
) -> Result<Json<SubjectView>, ApiError> {
    let kind = parse_kind(params.kind.as_deref())?;
    let (key, id) = subject_key("id", kind, &id)?;
    let at = parse_at(params.at.as_deref())?;
    let read = read_of(caller, params.purpose, params.legal_basis)?;
    let subject = id.clone();
    let states = ask(&state, |tx| Command::Subject(kind, subject, at, read, tx)).await?;
    Ok(Json(SubjectView::new(
        &state.federation(),
        &key,
        &id,
        &states,
    )))
}

#[utoipa::path(get, path = "/v1/listings/{id}", tag = "reads", security(("account" = [])),
    params(("id" = NoticeId, Path, description = "The listing's notice id"), ReadParams),
    responses((status = 200, description = "The listing with its history (registered)", body = ListingView), openapi::LookupErrors))]
async fn listing(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Params(params): Params<ReadParams>,
) -> Result<Json<ListingView>, ApiError> {
    let id = parse_id("id", &id)?;
    let at = parse_at(params.at.as_deref())?;
    let read = read_of(caller, params.purpose, params.legal_basis)?;
    let listing = ask(&state, |tx| Command::Listing(id, at, read, tx)).await?;
    Ok(Json(ListingView::new(&state.federation(), &listing, true)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TasksParams {
    /// The time to evaluate at: a date `YYYY-MM-DD` from 1970 (midnight UTC; unix milliseconds, more than 10 digits, are taken too); now when absent
    #[param(value_type = Option<String>, format = Date, pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-", example = "2026-12-01")]
    at: Option<String>,
    /// The tasks of at most this many listings (1 to 1000, default 100)
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The listing the page follows: the previous page's `next`
    #[param(value_type = Option<NoticeId>)]
    after: Option<String>,
}

#[utoipa::path(get, path = "/v1/tasks", tag = "reads", security(("account" = [])), params(TasksParams),
    responses((status = 200, description = "A page of this authority's apply and lift tasks, by listing id", body = TasksView), openapi::GuardedErrors))]
async fn tasks(
    State(state): State<AppState>,
    Params(params): Params<TasksParams>,
) -> Result<Json<TasksView>, ApiError> {
    let at = parse_at(params.at.as_deref())?;
    let limit = parse_limit(
        params.limit.as_deref(),
        crate::daemon::TASK_LISTINGS_DEFAULT,
        crate::daemon::TASK_LISTINGS_MAX,
    )?;
    let after = params
        .after
        .as_deref()
        .map(|text| {
            text.parse::<NoticeId>().map_err(|_| {
                ApiError::bad(
                    "bad_field",
                    format!("after: {text:?} is not a listing id (64 hex digits)"),
                )
            })
        })
        .transpose()?;
    let ask_for = crate::daemon::TaskAsk { after, limit };
    let (tasks, more) = ask(&state, |tx| Command::Tasks(at, ask_for, tx)).await?;
    Ok(Json(TasksView::new(&state.federation(), &tasks, more)))
}

/// The last page a query may ask for (64 listings a page).
pub const QUERY_PAGE_MAX: u32 = 65_535;

/// The body of `POST /v1/query`.
#[derive(Clone, Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// `legal_person` (default), `other_organisation` or `natural_person`.
    #[serde(default)]
    #[schema(value_type = Option<SubjectKind>)]
    pub subject_kind: Option<String>,
    /// The identifier: 18 letters and digits.
    #[schema(pattern = "^[0-9A-Za-z]{18}$")]
    pub subject_id: String,
    /// Why (1 to 512 characters, not only spaces).
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]"
    )]
    pub purpose: String,
    /// Under what law (1 to 512 characters, not only spaces).
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]"
    )]
    pub legal_basis: String,
    /// `local` or `federation` (default).
    #[serde(default)]
    pub scope: Option<QueryScope>,
    /// How long to wait for peers (ms, 1 to 30000, default 5000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 30000)]
    pub deadline_ms: Option<u64>,
    /// Which page of the subject's listings (from 0 to 65535, 64 a page,
    /// newest first; the answer's `more` says another page exists).
    #[serde(default)]
    #[schema(maximum = 65535)]
    pub page: Option<u32>,
}

#[utoipa::path(post, path = "/v1/query", tag = "reads", security(("account" = [])), request_body = QueryBody,
    responses((status = 200, description = "Verified answers, merged (registered on each side)", body = QueryView), openapi::QueryErrors))]
async fn query(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Json<QueryView>, ApiError> {
    let body: QueryBody = parse_json(&body)?;
    let subject_kind = parse_kind(body.subject_kind.as_deref())?;
    let (_, subject_id) = subject_key("subject_id", subject_kind, &body.subject_id)?;
    let deadline_ms = body.deadline_ms.unwrap_or(QUERY_DEADLINE_DEFAULT_MS);
    if !(1..=QUERY_DEADLINE_MAX_MS).contains(&deadline_ms) {
        return Err(ApiError::bad(
            "bad_field",
            format!("deadline_ms: {deadline_ms} is not from 1 to {QUERY_DEADLINE_MAX_MS}"),
        ));
    }
    let page = body.page.unwrap_or(0);
    if page > QUERY_PAGE_MAX {
        return Err(ApiError::bad(
            "bad_field",
            format!("page: {page} is past the last page a query may ask for, {QUERY_PAGE_MAX}"),
        ));
    }
    Stated::new(Some(body.purpose.clone()), Some(body.legal_basis.clone()))
        .map_err(|message| ApiError::bad("bad_field", message))?;
    let ask_ = QueryAsk {
        subject_kind,
        subject_id,
        purpose: body.purpose,
        legal_basis: body.legal_basis,
        scope: body.scope.unwrap_or(QueryScope::Federation),
        deadline_ms,
        page,
        clearance: caller.role.clearance(),
        account: Some(caller.account),
    };
    let result = ask(&state, |tx| Command::Query(ask_, tx)).await?;
    QueryView::new(&state.federation(), &result)
        .map(Json)
        .map_err(|message| ApiError {
            status: 500,
            code: "internal",
            message,
        })
}

#[utoipa::path(get, path = "/v1/status", tag = "node", security(("account" = [])),
    responses((status = 200, description = "Readiness, peers, heads and lag per author, pending, forks", body = Status), openapi::GuardedErrors))]
async fn status(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    Ok(Json(ask(&state, Command::Status).await?))
}

#[utoipa::path(get, path = "/v1/peers", tag = "node", security(("account" = [])),
    responses((status = 200, description = "Connected members", body = PeersView), openapi::GuardedErrors))]
async fn peers(State(state): State<AppState>) -> Result<Json<PeersView>, ApiError> {
    let status = ask(&state, Command::Status).await?;
    Ok(Json(PeersView {
        peers: status.peers,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RegisterParams {
    /// The first record's index (0 when absent)
    #[param(value_type = Option<u64>, minimum = 0)]
    from: Option<String>,
    /// How many records (100 when absent)
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// `GET /v1/register?from=&limit=`: records of the register of reads
/// from an index on (at most 1,000), with its checkpoint signed now.
#[utoipa::path(get, path = "/v1/register", tag = "audit", security(("account" = [])), params(RegisterParams),
    responses((status = 200, description = "Records of the register of reads, with its checkpoint signed now", body = RegisterView), openapi::GuardedErrors))]
async fn register(
    State(state): State<AppState>,
    Params(params): Params<RegisterParams>,
) -> Result<Json<RegisterView>, ApiError> {
    let from = parse_count("from", params.from.as_deref())?.unwrap_or(0);
    let limit = parse_limit(params.limit.as_deref(), 100, REGISTER_RECORDS_MAX)?;
    let page = ask(&state, |tx| Command::Register(from, limit, tx)).await?;
    Ok(Json(page))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct FeedParams {
    /// How many entries (100 when absent)
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The previous page's `next`
    #[param(value_type = Option<String>, pattern = "^[0-9a-fA-F]{80}$")]
    after: Option<String>,
}

/// `GET /v1/feed?limit=&after=`: one page of what the public sees,
/// newest first; `next` in the answer is the `after` of the next page.
#[utoipa::path(get, path = "/v1/feed", tag = "public", security(()), params(FeedParams),
    responses((status = 200, description = "A page of the publicity feed, newest first, natural persons masked", body = FeedView), openapi::PublicErrors))]
async fn feed(
    State(state): State<AppState>,
    Params(params): Params<FeedParams>,
) -> Result<Json<FeedView>, ApiError> {
    let limit = parse_limit(
        params.limit.as_deref(),
        FEED_LISTINGS_DEFAULT,
        FEED_LISTINGS_MAX,
    )?;
    let after = params
        .after
        .as_deref()
        .map(crate::views::parse_feed_cursor)
        .transpose()
        .map_err(|message| ApiError::bad("bad_field", message))?;
    let page = ask(&state, |tx| {
        Command::Feed(
            crate::daemon::FeedAsk {
                after,
                limit,
                filter: crate::daemon::FeedFilter::ALL,
            },
            tx,
        )
    })
    .await?;
    // Only what the public may see: no history, no feedback, natural
    // persons masked.
    Ok(Json(FeedView::page(
        &state.federation(),
        &page,
        crate::node::now(),
    )))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ExtractParams {
    /// `csv` (default) or `jsonl`
    #[param(value_type = Option<ExtractFormat>)]
    format: Option<String>,
}

/// The public extract's formats.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
enum ExtractFormat {
    Csv,
    Jsonl,
}

/// `GET /v1/extract?format=csv|jsonl` (no credential): the public extract,
/// every entry the publicity feed shows now, masked as it is, as CSV
/// (default) or JSON Lines.
#[utoipa::path(get, path = "/v1/extract", tag = "public", security(()), params(ExtractParams),
    responses((status = 200, description = "Every entry of the feed now, masked", content(
        (String = "text/csv"),
        (String = "application/jsonl"))), openapi::PublicErrors))]
async fn extract(
    State(state): State<AppState>,
    Params(params): Params<ExtractParams>,
) -> Result<Response, ApiError> {
    let (csv, content_type) = match params.format.as_deref() {
        None | Some("csv") => (true, "text/csv; charset=utf-8"),
        Some("jsonl") => (false, "application/jsonl; charset=utf-8"),
        Some(other) => {
            return Err(ApiError::bad(
                "bad_field",
                format!("format: {other:?} is not csv or jsonl"),
            ));
        }
    };
    // Streamed as it is read, from one snapshot: memory stays bounded
    // however many listings the feed shows. A failure past the first
    // piece cuts the body short (the client sees an incomplete answer).
    let pieces = ask(&state, |tx| Command::Extract(csv, tx)).await?;
    let stream = futures::stream::unfold(pieces, |mut pieces| async move {
        let piece = pieces.recv().await?.map(Bytes::from).map_err(|error| {
            tracing::warn!("public extract cut short: {error}");
            std::io::Error::other(error.to_string())
        });
        Some((piece, pieces))
    });
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ExportParams {
    /// Why the records are read (registered with the read)
    #[param(value_type = String, min_length = 1, max_length = 512, pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]")]
    purpose: Option<String>,
    /// The law the read rests on (registered with the read)
    #[param(value_type = String, min_length = 1, max_length = 512, pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]")]
    legal_basis: Option<String>,
}

#[utoipa::path(get, path = "/v1/export", tag = "audit", security(("account" = [])), params(ExportParams),
    responses((status = 200, description = "An audit bundle (registered)", content_type = "application/octet-stream", body = Vec<u8>), openapi::GuardedErrors))]
async fn export(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(params): Params<ExportParams>,
) -> Result<Response, ApiError> {
    let read = read_of(caller, params.purpose, params.legal_basis)?;
    let bundle = ask(&state, |tx| Command::Export(read, tx)).await?;
    let bytes = bundle.to_bytes().map_err(|e| ApiError {
        status: 500,
        code: "internal",
        message: e.to_string(),
    })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

fn parse_author(text: &str) -> Result<AuthorityId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad(
            "bad_field",
            format!("author: {text:?} is not a member key (64 hex digits)"),
        )
    })
}

#[utoipa::path(get, path = "/v1/logs/{author}/checkpoint", tag = "logs", security(("account" = [])), params(("author" = AuthorityId, Path, description = "The log's author: a member key, 64 hex digits")),
    responses((status = 200, description = "The newest checkpoint held of the log, as a C2SP signed note", content_type = "text/plain", body = String), openapi::LookupErrors))]
async fn checkpoint(
    State(state): State<AppState>,
    Path(author): Path<String>,
) -> Result<Response, ApiError> {
    let author = parse_author(&author)?;
    let note = ask(&state, |tx| Command::Checkpoint(author, tx)).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        note.encode(),
    )
        .into_response())
}

/// A `limit` parameter: `default` when absent, else 1 to `max`.
fn parse_limit(text: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match parse_count("limit", text)? {
        None => Ok(default),
        Some(n) if (1..=max as u64).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::bad(
            "bad_field",
            format!("limit: {n} is not between 1 and {max}"),
        )),
    }
}

/// A required or optional whole-number query parameter, from 0 to
/// 2^63 - 1 (the document's 64-bit integers).
fn parse_count(field: &str, text: Option<&str>) -> Result<Option<u64>, ApiError> {
    text.map(|t| {
        t.parse::<u64>()
            .ok()
            .filter(|n| i64::try_from(*n).is_ok())
            .ok_or_else(|| {
                ApiError::bad(
                    "bad_field",
                    format!("{field}: {t:?} is not a whole number from 0 to 2^63 - 1"),
                )
            })
    })
    .transpose()
}

fn required(field: &str, value: Option<u64>) -> Result<u64, ApiError> {
    value.ok_or_else(|| ApiError::bad("bad_field", format!("{field}: missing")))
}

/// An optional seq or log size: a whole number from 1 (as the document
/// says), since seqs and sizes count from 1.
fn from_one(field: &str, text: Option<&str>) -> Result<Option<u64>, ApiError> {
    match parse_count(field, text)? {
        Some(0) => Err(ApiError::bad(
            "bad_field",
            format!("{field}: 0 is below 1 (seqs and log sizes count from 1)"),
        )),
        other => Ok(other),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct InclusionParams {
    /// The notice's seq
    #[param(value_type = u64, minimum = 1)]
    seq: Option<String>,
    /// The log size to prove against (the newest checkpoint's when absent)
    #[param(value_type = Option<u64>, minimum = 1)]
    size: Option<String>,
}

#[utoipa::path(get, path = "/v1/logs/{author}/inclusion", tag = "logs", security(("account" = [])), params(("author" = AuthorityId, Path, description = "The log's author: a member key, 64 hex digits"), InclusionParams),
    responses((status = 200, description = "Inclusion proof of the notice at `seq`", body = InclusionView), openapi::LookupErrors))]
async fn inclusion(
    State(state): State<AppState>,
    Path(author): Path<String>,
    Params(params): Params<InclusionParams>,
) -> Result<Json<InclusionView>, ApiError> {
    let author = parse_author(&author)?;
    let ask_for = ProofAsk::Inclusion {
        author,
        seq: required("seq", from_one("seq", params.seq.as_deref())?)?,
        size: from_one("size", params.size.as_deref())?,
    };
    match ask(&state, |tx| Command::Proof(ask_for, tx)).await? {
        ProofAnswer::Inclusion(proof) => Ok(Json(InclusionView::from(&proof))),
        _ => Err(DaemonError::Internal("a proof of another kind came back".into()).into()),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ConsistencyParams {
    /// The smaller size
    #[param(value_type = u64, minimum = 1)]
    from: Option<String>,
    /// The larger size
    #[param(value_type = u64, minimum = 1)]
    to: Option<String>,
}

#[utoipa::path(get, path = "/v1/logs/{author}/consistency", tag = "logs", security(("account" = [])), params(("author" = AuthorityId, Path, description = "The log's author: a member key, 64 hex digits"), ConsistencyParams),
    responses((status = 200, description = "Consistency proof between two sizes", body = ConsistencyView), openapi::LookupErrors))]
async fn consistency(
    State(state): State<AppState>,
    Path(author): Path<String>,
    Params(params): Params<ConsistencyParams>,
) -> Result<Json<ConsistencyView>, ApiError> {
    let author = parse_author(&author)?;
    let ask_for = ProofAsk::Consistency {
        author,
        from: required("from", from_one("from", params.from.as_deref())?)?,
        to: required("to", from_one("to", params.to.as_deref())?)?,
    };
    match ask(&state, |tx| Command::Proof(ask_for, tx)).await? {
        ProofAnswer::Consistency(proof) => Ok(Json(ConsistencyView::from(&proof))),
        _ => Err(DaemonError::Internal("a proof of another kind came back".into()).into()),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EntriesParams {
    /// The first seq
    #[param(value_type = u64, minimum = 1)]
    from: Option<String>,
    /// How many (512 when absent)
    #[param(value_type = Option<u64>, minimum = 1, maximum = 512)]
    count: Option<String>,
}

#[utoipa::path(get, path = "/v1/logs/{author}/entries", tag = "logs", security(("account" = [])), params(("author" = AuthorityId, Path, description = "The log's author: a member key, 64 hex digits"), EntriesParams),
    responses((status = 200, description = "Envelopes of the log from `from`, hex", body = EntriesView), openapi::LookupErrors))]
async fn entries(
    State(state): State<AppState>,
    Path(author): Path<String>,
    Params(params): Params<EntriesParams>,
) -> Result<Json<EntriesView>, ApiError> {
    let author = parse_author(&author)?;
    let from = required("from", from_one("from", params.from.as_deref())?)?;
    let ask_for = ProofAsk::Entries {
        author,
        from,
        count: parse_count("count", params.count.as_deref())?
            .unwrap_or(credence_protocol::checkpoint::proofs::ENTRIES_MAX),
    };
    match ask(&state, |tx| Command::Proof(ask_for, tx)).await? {
        ProofAnswer::Entries(envelopes) => Ok(Json(EntriesView {
            author,
            from,
            envelopes: envelopes.iter().map(hex::encode).collect(),
        })),
        _ => Err(DaemonError::Internal("a proof of another kind came back".into()).into()),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "node", security(("account" = [])),
    responses((status = 200, description = "Prometheus metrics (text exposition format 0.0.4)", content_type = "text/plain", body = String), openapi::GuardedErrors))]
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut text = ask(&state, Command::Metrics).await?;
    text.push_str(&state.http.render());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// `GET /v1/openapi.json` (no credential): this API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "public", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object), openapi::PublicErrors))]
async fn openapi_json() -> Result<Response, ApiError> {
    let document = openapi::document().map_err(|message| ApiError {
        status: 500,
        code: "internal",
        message,
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], document).into_response())
}

/// Longest wait of a long poll of the change feed.
pub const CHANGES_WAIT_MAX_S: u64 = 25;
/// Changes a page holds when `limit` is not given.
const CHANGES_PAGE_DEFAULT: usize = 100;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ChangesParams {
    /// The cursor: changes after it (0, the default: from the first).
    #[param(value_type = Option<u64>, minimum = 0)]
    after: Option<String>,
    /// How many changes at most (100 when absent).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Seconds to wait for a change when there is none yet (0, the
    /// default: answer at once).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 25)]
    wait: Option<String>,
}

/// The durable changes after `after` that `caller` is told of, and the
/// cursor past every change looked at; `None` when none is durable yet.
async fn changes_page(
    state: &AppState,
    clearance: credence_protocol::access::Clearance,
    after: u64,
    limit: usize,
) -> Result<Option<ChangesView>, ApiError> {
    if *state.changes.borrow() <= after {
        return Ok(None);
    }
    let found = ask(state, |tx| Command::Changes(after, limit, tx)).await?;
    let next = found.last().map_or(after, |c| c.seq);
    Ok(Some(ChangesView {
        changes: found
            .iter()
            .filter(|c| c.after.told_to(clearance))
            .map(ChangeView::from)
            .collect(),
        next,
    }))
}

/// `GET /v1/changes?after=&limit=&wait=`: a page of the change feed after
/// the cursor `after`, oldest first; with `wait`, a long poll.
#[utoipa::path(get, path = "/v1/changes", tag = "reads", security(("account" = [])), params(ChangesParams),
    responses((status = 200, description = "Changes after the cursor, oldest first, and the next cursor (the same cursor and no change when none came within `wait`)", body = ChangesView), openapi::GuardedErrors))]
async fn changes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(params): Params<ChangesParams>,
) -> Result<Json<ChangesView>, ApiError> {
    let after = parse_count("after", params.after.as_deref())?.unwrap_or(0);
    let limit = parse_limit(
        params.limit.as_deref(),
        CHANGES_PAGE_DEFAULT,
        crate::daemon::CHANGES_PER_PAGE_MAX,
    )?;
    let wait = parse_count("wait", params.wait.as_deref())?.unwrap_or(0);
    if wait > CHANGES_WAIT_MAX_S {
        return Err(ApiError::bad(
            "bad_field",
            format!("wait: {wait} is more than {CHANGES_WAIT_MAX_S} seconds"),
        ));
    }
    let clearance = caller.role.clearance();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
    let mut durable = state.changes.clone();
    loop {
        durable.mark_unchanged();
        if let Some(page) = changes_page(&state, clearance, after, limit).await? {
            return Ok(Json(page));
        }
        match tokio::time::timeout_at(deadline, durable.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                return Err(ApiError {
                    status: 503,
                    code: "stopping",
                    message: "the node is stopping".into(),
                });
            }
            Err(_) => {
                return Ok(Json(ChangesView {
                    changes: Vec::new(),
                    next: after,
                }));
            }
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StreamParams {
    /// The cursor: changes after it (0: from the first). A
    /// `Last-Event-ID` header, sent by a reconnecting client, wins.
    #[param(value_type = Option<u64>, minimum = 0)]
    after: Option<String>,
}

/// `GET /v1/changes/stream?after=`: the change feed as server-sent
/// events, one `change` event per change (its `id` the cursor), kept open
/// (a comment every 15 s); a client that reconnects with `Last-Event-ID`
/// goes on after it.
#[utoipa::path(get, path = "/v1/changes/stream", tag = "reads", security(("account" = [])), params(StreamParams,
        ("Last-Event-ID" = Option<u64>, Header, minimum = 0, description = "The last change received: the stream goes on after it")),
    responses((status = 200, description = "Server-sent events: `event: change`, `id:` its seq, `data:` the change as JSON (ChangeView)", content_type = "text/event-stream", body = String), openapi::GuardedErrors))]
async fn changes_stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Params(params): Params<StreamParams>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt;
    let resumed = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|t| parse_count("Last-Event-ID", Some(t)).ok().flatten())
                .ok_or_else(|| {
                    ApiError::bad(
                        "bad_field",
                        "Last-Event-ID: not a change seq (a whole number)",
                    )
                })
        })
        .transpose()?;
    let after = match resumed {
        Some(seq) => seq,
        None => parse_count("after", params.after.as_deref())?.unwrap_or(0),
    };
    let clearance = caller.role.clearance();
    let durable = state.changes.clone();
    let events = futures::stream::unfold(
        (state, durable, after),
        move |(state, mut durable, after)| async move {
            loop {
                durable.mark_unchanged();
                match changes_page(&state, clearance, after, CHANGES_PAGE_DEFAULT).await {
                    Ok(Some(page)) => {
                        let events: Vec<Result<Event, std::convert::Infallible>> = page
                            .changes
                            .iter()
                            .filter_map(|change| {
                                Event::default()
                                    .event("change")
                                    .id(change.seq.to_string())
                                    .json_data(change)
                                    .ok()
                                    .map(Ok)
                            })
                            .collect();
                        let next = page.next;
                        return Some((futures::stream::iter(events), (state, durable, next)));
                    }
                    Ok(None) => {}
                    // The node stops: the stream ends, the client reconnects.
                    Err(_) => return None,
                }
                if durable.changed().await.is_err() {
                    return None;
                }
            }
        },
    )
    .flatten();
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}

/// Listings a name search gives when `limit` is not given.
const SEARCH_DEFAULT: usize = 20;
/// Most listings a name search gives.
pub const SEARCH_MAX: usize = 100;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    /// The name, or part of it: 2 to 64 characters (Chinese or Latin;
    /// case, spaces, punctuation and full-width forms do not matter; one
    /// with fewer than two letters or digits finds nothing).
    #[param(min_length = 2, max_length = 64)]
    name: String,
    /// How many listings at most (20 when absent).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Why the records are read (registered with the read)
    #[param(value_type = String, min_length = 1, max_length = 512, pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]")]
    purpose: Option<String>,
    /// The law the read rests on (registered with the read)
    #[param(value_type = String, min_length = 1, max_length = 512, pattern = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]")]
    legal_basis: Option<String>,
}

/// `GET /v1/search?name=`: listings by a name, in part.
#[utoipa::path(get, path = "/v1/search", tag = "reads", security(("account" = [])), params(SearchParams),
    responses((status = 200, description = "The listings whose subject or a linked person has a name holding the search (registered as a read of each found)", body = SearchView), openapi::GuardedErrors))]
async fn search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(params): Params<SearchParams>,
) -> Result<Json<SearchView>, ApiError> {
    let text = credence_protocol::names::search_text(&params.name)
        .map_err(|e| ApiError::bad("bad_field", format!("name: {e}")))?;
    let limit = parse_limit(params.limit.as_deref(), SEARCH_DEFAULT, SEARCH_MAX)?;
    let read = read_of(caller, params.purpose, params.legal_basis)?;
    let name = text.clone();
    let (states, more) = ask(&state, |tx| Command::Search(text, limit, read, tx)).await?;
    Ok(Json(SearchView {
        name,
        listings: states
            .iter()
            .map(|s| ListingView::new(&state.federation(), s, false))
            .collect(),
        more,
    }))
}
