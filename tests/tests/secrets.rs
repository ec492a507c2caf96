//! The API token never goes to a process that cannot prove it is the
//! node: after a `kill -9`, `api.addr` may name a port another process
//! holds now.

use credence_tests::{arg, credence, two_authorities};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

#[test]
fn a_stale_api_address_never_gets_the_token() {
    let nodes = two_authorities();
    let token = std::fs::read_to_string(nodes.issuer.join("api.token"))
        .expect("token")
        .trim()
        .to_string();
    // Another process holds the port a killed node left in api.addr: it
    // answers every request and records what it was sent.
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("address");
    std::fs::write(nodes.issuer.join("api.addr"), address.to_string()).expect("api.addr");
    let seen = Arc::new(Mutex::new(String::new()));
    let recorded = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                request.push_str(&line);
            }
            recorded.lock().expect("lock").push_str(&request);
            let body = "{\"proof\":\"0000\"}";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let run = credence(&["tasks", "--data", arg(&nodes.issuer)]).code(2);
    assert!(
        run.stderr.contains("cannot prove it is this node"),
        "{}",
        run.stderr
    );
    let seen = seen.lock().expect("lock").clone();
    assert!(seen.contains("/v1/identity?challenge="), "{seen}");
    assert!(!seen.contains(&token), "the token was sent:\n{seen}");
    assert!(!seen.to_lowercase().contains("authorization"), "{seen}");
}
