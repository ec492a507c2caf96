//! Every error the API gives is its JSON envelope, also where the HTTP
//! framework itself refuses a request: a method a route does not take
//! (405, the methods it takes in `Allow`), a body past the limit (413), a
//! path that is not UTF-8 (400), an unknown route (404), a body that is
//! not JSON (400). Sent as raw HTTP, so that nothing in a client library
//! tidies the request first. `/metrics` counts them by route and status,
//! and by error code. The node's log, not on a terminal, has no colour
//! codes.

use credence_tests::cluster::cluster;
use std::io::{Read, Write};

/// Sends `head` (and `body`) to the peer's API; returns the status, the
/// headers (lower-case) and the JSON body.
fn raw(
    peer: &credence_tests::cluster::Peer,
    head: &str,
    body: &[u8],
) -> (u16, String, serde_json::Value) {
    let mut stream =
        std::net::TcpStream::connect((peer.host.as_str(), peer.http_port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "{head}\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        peer.host,
        peer.token(),
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    // The server may answer before it has read a body it refuses.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = serde_json::from_str(body.trim()).unwrap_or(serde_json::Value::Null);
    (status, headers.to_ascii_lowercase(), json)
}

#[test]
fn every_error_is_the_json_envelope() {
    let mut c = cluster(&["market"]);
    c.start_all();
    let node = c.at("market");
    let (status, headers, body) = raw(node, "GET /v1/notices HTTP/1.1", b"");
    assert_eq!(status, 405, "{headers} {body}");
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    assert!(headers.contains("allow: post"), "{headers}");
    assert!(
        headers.contains("content-type: application/json"),
        "{headers}"
    );

    let big = vec![b'x'; 300 * 1024];
    let (status, _, body) = raw(
        node,
        "POST /v1/notices HTTP/1.1\r\nContent-Type: application/json",
        &big,
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("262144"),
        "{body}"
    );

    let (status, _, body) = raw(
        node,
        "GET /v1/subjects/%FF%FE?purpose=x&legal_basis=y HTTP/1.1",
        b"",
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );

    let (status, _, body) = raw(node, "GET /v2/anything HTTP/1.1", b"");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    // A browser that asks for a page that is not there gets a page.
    let (status, headers, _) = raw(
        node,
        "GET /no/such/page HTTP/1.1\r\nAccept: text/html,application/xhtml+xml",
        b"",
    );
    assert_eq!(status, 404, "{headers}");
    assert!(headers.contains("content-type: text/html"), "{headers}");
    let (status, headers, body) = raw(
        node,
        "GET /v1/no-such-route HTTP/1.1\r\nAccept: text/html",
        b"",
    );
    assert_eq!(status, 404, "{headers}");
    assert_eq!(body["error"]["code"], "not_found", "{body}");

    let (status, _, body) = raw(node, "POST /v1/notices HTTP/1.1", b"not json");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_json", "{body}");
    // A field the format does not have is refused, named, not dropped.
    let mut listing = serde_json::to_value(credence_tests::cluster::listing(83)).expect("JSON");
    listing["list"]["colour"] = "red".into();
    let (status, _, body) = raw(
        node,
        "POST /v1/notices HTTP/1.1",
        listing.to_string().as_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("colour") && message.starts_with("list"),
        "{body}"
    );
    // The metrics count each by route template and status, and each
    // error by its code; the build is named.
    let metrics = node.get_text("/metrics");
    for line in [
        "credence_http_requests_total{route=\"/v1/notices\",status=\"405\"} 1",
        "credence_http_requests_total{route=\"/v1/notices\",status=\"413\"} 1",
        "credence_http_requests_total{route=\"unmatched\",status=\"404\"} 3",
        "credence_http_errors_total{code=\"method_not_allowed\"} 1",
        "credence_http_errors_total{code=\"too_large\"} 1",
        "credence_http_errors_total{code=\"bad_json\"} 1",
        "credence_http_errors_total{code=\"bad_field\"} 1",
        "credence_http_request_duration_seconds_count{route=\"/v1/subjects/{id}\"} 1",
        "credence_build_info{version=",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    // Its log, written to a file, carries no terminal colour codes.
    let log = node.log();
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
    c.peer("market").stop();
}

// A request that signs, retried with its idempotency key, gets the first
// answer and signs nothing more; another body under the key is 409; a
// key that is not visible ASCII is refused naming the header.
#[test]
fn an_idempotent_retry_gets_the_first_answer() {
    let mut c = cluster(&["market"]);
    c.start_all();
    let node = c.at("market");
    let body = serde_json::to_string(&credence_tests::cluster::listing(81)).expect("JSON");
    let post = |key: &str, body: &str| {
        raw(
            node,
            &format!(
                "POST /v1/notices HTTP/1.1\r\nContent-Type: application/json\r\nIdempotency-Key: {key}"
            ),
            body.as_bytes(),
        )
    };
    let before = node.notices();
    let (status, headers, first) = post("a1b2-c3", &body);
    assert_eq!(status, 201, "{first}");
    assert!(!headers.contains("idempotent-replayed"), "{headers}");
    let (status, headers, again) = post("a1b2-c3", &body);
    assert_eq!(status, 201, "{again}");
    assert_eq!(again, first);
    assert!(headers.contains("idempotent-replayed: true"), "{headers}");
    assert_eq!(node.notices(), before + 1, "one notice for two requests");
    let other = serde_json::to_string(&credence_tests::cluster::listing(82)).expect("JSON");
    let (status, _, refused) = post("a1b2-c3", &other);
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["error"]["code"], "idempotency_key_reused",
        "{refused}"
    );
    let (status, _, refused) = post("", &other);
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Idempotency-Key"),
        "{refused}"
    );
    // A new key is a new request.
    let (status, _, second) = post("a1b2-c4", &other);
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["id"], first["id"]);
    c.peer("market").stop();
}

// The governance POSTs take an idempotency key too: a retried proposal or
// signature gets the first answer and acts no more; the key with another
// request, a governance act's or a notice's, is 409.
#[test]
fn an_idempotent_governance_retry_gets_the_first_answer() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    let post = |handle: &str, path: &str, key: &str, body: &str| {
        raw(
            c.at(handle),
            &format!(
                "POST {path} HTTP/1.1\r\nContent-Type: application/json\r\nIdempotency-Key: {key}"
            ),
            body.as_bytes(),
        )
    };
    let change = r#"{"change": {"threshold": 3}}"#;
    let proposals = "/v1/federation/proposals";
    let (status, headers, first) = post("market", proposals, "gov-1", change);
    assert_eq!(status, 200, "{first}");
    assert!(!headers.contains("idempotent-replayed"), "{headers}");
    let (status, headers, again) = post("market", proposals, "gov-1", change);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    assert!(headers.contains("idempotent-replayed: true"), "{headers}");
    let other = r#"{"change": {"threshold": 2}}"#;
    let (status, _, refused) = post("market", proposals, "gov-1", other);
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "idempotency_key_reused");
    let listing = serde_json::to_string(&credence_tests::cluster::listing(91)).expect("JSON");
    let (status, _, refused) = post("market", "/v1/notices", "gov-1", &listing);
    assert_eq!(status, 409, "{refused}");
    // The tax office takes the proposal and signs it; the signature,
    // retried, is the first answer again: two signatures, not three.
    let taken = format!(
        r#"{{"proposal": "{}"}}"#,
        first["proposal"].as_str().expect("hex")
    );
    // Taking a proposal signs nothing: `competing` there is refused.
    let (status, _, refused) = post(
        "tax",
        "/v1/federation/proposals?competing=true",
        "take-0",
        &taken,
    );
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "bad_field", "{refused}");
    let (status, _, held) = post("tax", proposals, "take-1", &taken);
    assert_eq!(status, 200, "{held}");
    let hash = first["hash"].as_str().expect("hash");
    let sign = format!("/v1/federation/proposals/{hash}/sign");
    let (status, _, signed) = post("tax", &sign, "sign-1", "");
    assert_eq!(status, 200, "{signed}");
    assert_eq!(signed["signatures"], 2, "{signed}");
    let (status, headers, signed_again) = post("tax", &sign, "sign-1", "");
    assert_eq!(status, 200, "{signed_again}");
    assert_eq!(signed_again, signed);
    assert!(headers.contains("idempotent-replayed: true"), "{headers}");
    for handle in ["market", "tax", "court"] {
        c.peer(handle).stop();
    }
}
