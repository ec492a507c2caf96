//! The OpenAPI 3.1 document of the API, generated from the handlers'
//! annotations and the types they take and give (utoipa), served at
//! `GET /v1/openapi.json`. Every route is in it with its parameters, its
//! body, its answer and the errors it can give, all in the one JSON error
//! envelope (`ErrorBody`).

use super::*;
use std::collections::BTreeMap;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, response::Response};
use utoipa::{IntoResponses, Modify, OpenApi};

/// Responses in the JSON error envelope, one per status.
fn errors(statuses: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

const BAD_REQUEST: (u16, &str) = (
    400,
    "A parameter or the body is malformed (`bad_field` names it, `bad_json`, `bad_request`)",
);
const UNAUTHORISED: (u16, &str) = (
    401,
    "No credential, a wrong one (`unauthorised`) or a revoked account (`revoked`)",
);
const FORBIDDEN: (u16, &str) = (
    403,
    "The account's role or clearance does not allow it (`forbidden`), or the record is not served to it (`withheld`, `not_shared`)",
);
const INTERNAL: (u16, &str) = (500, "The node failed (`internal`)");
const UNAVAILABLE: (u16, &str) = (
    503,
    "The node is busy (`busy`), stopping (`stopping`), or not ready to sign (`restoring`, `recovering`, `halted`, or `key_rotating` while a rotation of its key it signed waits to be taken)",
);

/// The errors a route without a credential can give.
pub(super) struct PublicErrors;

impl IntoResponses for PublicErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[BAD_REQUEST, INTERNAL, UNAVAILABLE])
    }
}

/// The errors a route behind a credential can give.
pub(super) struct GuardedErrors;

impl IntoResponses for GuardedErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[BAD_REQUEST, UNAUTHORISED, FORBIDDEN, INTERNAL, UNAVAILABLE])
    }
}

/// The errors a route that signs can give.
pub(super) struct SigningErrors;

impl IntoResponses for SigningErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            BAD_REQUEST,
            UNAUTHORISED,
            FORBIDDEN,
            (
                404,
                "A notice, proposal or version it refers to is not held (`unknown_reference`, `not_found`)",
            ),
            (
                409,
                "This node's own log forked or its key was retired (`own_log_forked`, `key_retired`), or the idempotency key came with another body (`idempotency_key_reused`)",
            ),
            (413, "The body is larger than 262,144 bytes (`too_large`)"),
            (
                422,
                "Well formed but against the rules (the rule's code, named in the message)",
            ),
            INTERNAL,
            UNAVAILABLE,
        ])
    }
}

/// The errors of a route that reads one record by its id.
pub(super) struct LookupErrors;

impl IntoResponses for LookupErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = GuardedErrors::responses();
        all.extend(errors(&[(
            404,
            "Not held here (`unknown_listing`, `no_checkpoint`, `not_held`)",
        )]));
        all
    }
}

/// The errors of a query.
pub(super) struct QueryErrors;

impl IntoResponses for QueryErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = GuardedErrors::responses();
        all.extend(errors(&[(
            429,
            "The account's query budget is spent (`over_budget`)",
        )]));
        all
    }
}

/// The bearer credential, `Authorization: Bearer <account>.<secret>`.
struct Credential;

impl Modify for Credential {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "account",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("<account>.<secret>")
                    .description(Some(
                        "A named account's credential; its role decides the routes it may use",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "credence node API",
        description = "The HTTP API of a credence node: issue signed notices, look up and query listings (every read of personal records is registered), tasks, the register of reads, the public feed and extract, the logs' proofs and the federation's governance. Every error is `{\"error\": {\"code\", \"message\"}}` with a stable code; JSON names and enum values are snake_case throughout; unknown fields are refused.",
        license(name = "Apache-2.0")
    ),
    paths(
        issue,
        subject,
        listing,
        tasks,
        search,
        changes,
        changes_stream,
        query,
        status,
        peers,
        register,
        feed,
        extract,
        identity,
        export,
        report,
        checkpoint,
        inclusion,
        consistency,
        entries,
        roster,
        versions,
        propose,
        sign_proposal,
        submit_proposal,
        take_version,
        metrics,
        openapi_json,
    ),
    components(schemas(ErrorBody, ErrorDetail, ExtractFormat, ReportFormat)),
    modifiers(&Credential),
    tags(
        (name = "notices", description = "Issuing signed notices"),
        (name = "reads", description = "Lookups, queries and tasks (registered reads)"),
        (name = "public", description = "What anyone may read, without a credential"),
        (name = "audit", description = "The register of reads, exports and subject reports"),
        (name = "logs", description = "Checkpoints and proofs of the members' logs"),
        (name = "federation", description = "The roster chain and its governance"),
        (name = "node", description = "The node's own state")
    )
)]
pub(super) struct ApiDoc;

/// Every object that lists its properties takes no others: the API's
/// bodies refuse unknown fields (and an enum's object holds its one
/// variant's name), and its answers carry only what their types list.
fn closed(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), false.into());
            }
            map.values_mut().for_each(closed);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(closed),
        _ => {}
    }
}

/// The document as JSON, built once.
pub fn document() -> Result<&'static str, String> {
    static DOCUMENT: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut document =
                serde_json::to_value(ApiDoc::openapi()).map_err(|e| e.to_string())?;
            closed(&mut document["components"]["schemas"]);
            serde_json::to_string(&document).map_err(|e| e.to_string())
        })
        .as_deref()
        .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves, with its method, read from the
    /// router's source.
    fn routed() -> Vec<(String, String)> {
        let source = include_str!("../api.rs");
        let mut routes = Vec::new();
        for part in source.split(".route(").skip(1) {
            let Some(path) = part.trim_start().strip_prefix('"') else {
                continue;
            };
            let Some((path, rest)) = path.split_once('"') else {
                continue;
            };
            let rest = rest.trim_start().trim_start_matches(',').trim_start();
            let method = rest.split('(').next().unwrap_or_default().to_string();
            routes.push((method, path.to_string()));
        }
        routes
    }

    #[test]
    fn the_document_is_openapi_3_1_and_covers_every_route() {
        let document: serde_json::Value =
            serde_json::from_str(document().expect("built")).expect("JSON");
        assert!(
            document["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            document["openapi"]
        );
        let routes = routed();
        assert!(routes.len() >= 25, "{routes:?}");
        for (method, path) in &routes {
            let operation = &document["paths"][path][method];
            assert!(
                operation.is_object(),
                "{method} {path} is not in the document"
            );
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success answer"
            );
            assert!(
                responses.contains_key("400") && responses.contains_key("503"),
                "{method} {path}: the errors are not all documented"
            );
            let public = operation["security"].as_array().is_some_and(|s| {
                s.iter()
                    .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            if !public {
                assert!(
                    responses.contains_key("401") && responses.contains_key("403"),
                    "{method} {path}: a guarded route without 401 and 403"
                );
            }
        }
        // And nothing in it that the router does not serve.
        let documented: usize = document["paths"]
            .as_object()
            .expect("paths")
            .values()
            .map(|p| p.as_object().map_or(0, |o| o.len()))
            .sum();
        assert_eq!(documented, routes.len());
        // A roster change's every part is described, allowances included.
        let schemas = &document["components"]["schemas"];
        for part in ["add", "remove", "update", "rotate", "allow"] {
            assert!(
                schemas["ChangeDocument"]["properties"][part].is_object(),
                "ChangeDocument.{part}: {}",
                schemas["ChangeDocument"]
            );
        }
        assert_eq!(
            schemas["AllowDocument"]["required"],
            serde_json::json!(["member", "notices"])
        );
    }

    #[test]
    fn whole_numbers_written_as_floats_read_as_integers() {
        let whole = |text: &str| {
            String::from_utf8(super::super::whole_numbers(text.as_bytes()).into_owned())
                .expect("UTF-8")
        };
        assert_eq!(
            whole(r#"{"a": 16.0, "b": [1.7e3, -2.0, 2.5, 7], "c": "16.0 \" 3.0"}"#),
            r#"{"a": 16, "b": [1700, -2, 2.5, 7], "c": "16.0 \" 3.0"}"#
        );
        assert_eq!(whole("1e400"), "1e400");
        let parsed: Vec<u8> = super::super::parse_json(b"[16.0, 255]").expect("parsed");
        assert_eq!(parsed, vec![16, 255]);
        assert!(super::super::parse_json::<Vec<u8>>(b"[16.5]").is_err());
    }

    /// The limits the document states are the ones the API applies.
    #[test]
    fn the_documents_limits_are_the_apis() {
        let document: serde_json::Value =
            serde_json::from_str(document().expect("built")).expect("JSON");
        let parameter = |path: &str, name: &str| -> serde_json::Value {
            document["paths"][path]["get"]["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == name))
                .map(|p| p["schema"].clone())
                .unwrap_or_default()
        };
        let max = |schema: &serde_json::Value, key: &str| schema[key].as_u64();
        let limits = [
            (
                parameter("/v1/feed", "limit"),
                "maximum",
                crate::daemon::FEED_LISTINGS_MAX as u64,
            ),
            (
                parameter("/v1/register", "limit"),
                "maximum",
                crate::daemon::REGISTER_RECORDS_MAX as u64,
            ),
            (
                parameter("/v1/logs/{author}/entries", "count"),
                "maximum",
                credence_protocol::checkpoint::proofs::ENTRIES_MAX,
            ),
            (
                document["components"]["schemas"]["QueryBody"]["properties"]["page"].clone(),
                "maximum",
                u64::from(super::QUERY_PAGE_MAX),
            ),
            (
                document["components"]["schemas"]["QueryBody"]["properties"]["deadline_ms"].clone(),
                "maximum",
                QUERY_DEADLINE_MAX_MS,
            ),
            (
                parameter("/v1/listings/{id}", "purpose"),
                "maxLength",
                crate::daemon::STATED_CHARS_MAX as u64,
            ),
            (
                document["components"]["schemas"]["QueryBody"]["properties"]["legal_basis"].clone(),
                "maxLength",
                crate::daemon::STATED_CHARS_MAX as u64,
            ),
        ];
        for (schema, key, limit) in limits {
            assert_eq!(max(&schema, key), Some(limit), "{schema}");
        }
        assert_eq!(
            parameter("/v1/identity", "account")["pattern"],
            format!(
                "^[a-z0-9][a-z0-9-]{{0,{}}}$",
                crate::accounts::ACCOUNT_NAME_MAX - 1
            )
        );
        // Every stated purpose and legal basis of a read, as a query
        // parameter or in the query body, carries the pattern of what the
        // node refuses as blank.
        let mut patterns: Vec<serde_json::Value> = document["paths"]
            .as_object()
            .expect("paths")
            .values()
            .flat_map(|operations| operations.as_object().expect("operations").values())
            .flat_map(|operation| {
                operation["parameters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|p| p["name"] == "purpose" || p["name"] == "legal_basis")
            .map(|p| p["schema"]["pattern"].clone())
            .collect();
        let query = &document["components"]["schemas"]["QueryBody"]["properties"];
        patterns.extend(["purpose", "legal_basis"].map(|name| query[name]["pattern"].clone()));
        assert_eq!(patterns.len(), 12, "{patterns:?}");
        for pattern in patterns {
            assert_eq!(pattern, crate::daemon::register::STATED_PATTERN);
        }
        // Bodies refuse unknown fields, and the document says so.
        assert_eq!(
            document["components"]["schemas"]["Listing"]["additionalProperties"],
            false
        );
    }

    #[test]
    fn json_names_and_enum_values_are_snake_case() {
        let document: serde_json::Value =
            serde_json::from_str(document().expect("built")).expect("JSON");
        let schemas = document["components"]["schemas"]
            .as_object()
            .expect("schemas");
        let snake = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(props) = map.get("properties").and_then(|p| p.as_object()) {
                        found.extend(props.keys().cloned());
                    }
                    if let Some(values) = map.get("enum").and_then(|e| e.as_array()) {
                        found.extend(values.iter().filter_map(|v| v.as_str()).map(String::from));
                    }
                    for v in map.values() {
                        walk(v, found);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        let mut names = Vec::new();
        for schema in schemas.values() {
            walk(schema, &mut names);
        }
        assert!(names.len() > 100, "{}", names.len());
        for expected in [
            "legal_person",
            "list",
            "upheld",
            "applied",
            "legal_representative",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} is not in the document"
            );
        }
        if let Ok(path) = std::env::var("CREDENCE_OPENAPI_OUT") {
            std::fs::write(path, document.to_string()).expect("written");
        }
        let odd: Vec<&String> = names.iter().filter(|n| !snake(n)).collect();
        assert!(odd.is_empty(), "not snake_case: {odd:?}");
    }
}
