//! The materialized views (listing states, tasks, the public feed, the
//! counts the metrics report) equal a fold of every listing: after both
//! the issuing node and a receiving one are killed in the middle of a
//! burst, the tasks read through them equal the tasks a fold gives, and
//! `credence check` finds nothing to report; `--repair` derives them again.
//! Every listing is found by name on both after the restart.

use credence_tests::cluster::{cluster, listing, now_ms, wait_for};
use credence_tests::{arg, credence};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[test]
fn the_views_equal_the_fold_after_a_crash_in_a_burst() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    for handle in ["market", "tax"] {
        let peer = c.at(handle);
        wait_for("the node ready", || peer.get("/v1/status")["ready"] == true);
    }
    // Four clients issue on the market node until it is killed; the tax
    // node takes the listings by gossip and is killed in the same burst.
    let market = c.at("market");
    let url = format!("http://{}:{}/v1/notices", market.host, market.http_port);
    let token = market.token();
    let stop = AtomicBool::new(false);
    let issued = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for client in 0..4u64 {
            let (url, token, stop, issued) = (&url, &token, &stop, &issued);
            scope.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(std::time::Duration::from_secs(10)))
                    .build()
                    .into();
                let mut n = 1_000 + client * 10_000;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let body = serde_json::to_string(&listing(n)).expect("JSON");
                    let answer = agent
                        .post(url)
                        .header("Authorization", format!("Bearer {token}"))
                        .header("Content-Type", "application/json")
                        .send(body.as_bytes());
                    match answer {
                        Ok(response) if response.status() == 201 => {
                            issued.fetch_add(1, Ordering::SeqCst);
                        }
                        // Refused or unreachable: the node was killed.
                        _ => break,
                    }
                }
            });
        }
        wait_for("a burst under way", || issued.load(Ordering::SeqCst) >= 40);
        let tax = c.at("tax");
        wait_for("listings received by gossip", || tax.notices() >= 20);
        // Killed without warning, mid-burst.
        c.peer("tax").kill9();
        c.peer("market").kill9();
        stop.store(true, Ordering::SeqCst);
    });
    c.start_all();
    c.wait_converged(&["market", "tax"]);

    // Through the views and through a fold (`at` given): the same tasks.
    let tax = c.at("tax");
    let tasks = |path: &str| -> Vec<Value> {
        let mut all = tax.get(path)["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        all.sort_by_key(|t| (t["listing"].to_string(), t["measure"].to_string()));
        all
    };
    let viewed = tasks("/v1/tasks");
    assert!(!viewed.is_empty(), "the tax office implements the ban");
    let at = now_ms();
    assert_eq!(viewed, tasks(&format!("/v1/tasks?at={at}")));
    // Page by page (three listings a page), both ways: the same pages.
    for folded in [false, true] {
        let mut paged: Vec<Value> = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = String::from("/v1/tasks?limit=3");
            if folded {
                path.push_str(&format!("&at={at}"));
            }
            if let Some(listing) = &after {
                path.push_str(&format!("&after={listing}"));
            }
            let page = tax.get(&path);
            let listings: std::collections::BTreeSet<String> = page["tasks"]
                .as_array()
                .expect("tasks")
                .iter()
                .map(|t| t["listing"].to_string())
                .collect();
            assert!(listings.len() <= 3, "{page}");
            paged.extend(page["tasks"].as_array().expect("tasks").iter().cloned());
            pages += 1;
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => break,
            }
        }
        assert!(pages > 1);
        paged.sort_by_key(|t| (t["listing"].to_string(), t["measure"].to_string()));
        assert_eq!(paged, viewed, "folded: {folded}");
    }
    // The counts the metrics report come from the views.
    let metrics = tax.get_text("/metrics");
    let active = metrics
        .lines()
        .find_map(|l| l.strip_prefix("credence_listings{status=\"active\"} "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no active count in\n{metrics}"));
    assert!(active >= 20, "{active}");

    // Every listing is found by its name on both nodes: the name index's
    // postings the crash took before they were written as a block were
    // gathered again from the logs at start.
    let mut named: Vec<(String, String)> = viewed
        .iter()
        .map(|t| {
            let field = |f: &str| t[f].as_str().unwrap_or_else(|| panic!("{f} in {t}"));
            (
                field("listing").to_string(),
                field("subject_name").to_string(),
            )
        })
        .collect();
    named.dedup();
    assert!(named.len() >= 20, "{}", named.len());
    for handle in ["market", "tax"] {
        let peer = c.at(handle);
        let token = peer.token();
        for (id, name) in &named {
            let (status, answer) = peer.request(
                "GET",
                &format!(
                    "/v1/search?name={}&purpose=licence%20check&legal_basis=Regulation%2012",
                    name.replace(' ', "%20")
                ),
                Some(&token),
                None,
            );
            assert_eq!(status, 200, "{answer}");
            assert!(
                answer["listings"]
                    .as_array()
                    .is_some_and(|found| found.iter().any(|l| l["id"] == id.as_str())),
                "{name} ({id}) not found on {handle}: {answer}"
            );
        }
    }

    for handle in ["market", "tax"] {
        c.peer(handle).stop();
        let dir = c.at(handle).dir.clone();
        let checked = credence(&["check", "--data", arg(&dir)]).ok();
        assert!(
            checked.stdout.contains("views agree with the fold"),
            "{checked:?}"
        );
        let repaired = credence(&["--json", "check", "--data", arg(&dir), "--repair"]).ok();
        let answer: Value = serde_json::from_str(&repaired.stdout).expect("JSON");
        assert_eq!(answer["repaired"], true, "{answer}");
        assert_eq!(answer["differences"], Value::Array(Vec::new()), "{answer}");
        assert!(
            answer["listings"].as_u64().is_some_and(|n| n >= 20),
            "{answer}"
        );
    }
    // A running node's views are not checked from outside.
    c.peer("tax").start();
    let refused = credence(&["check", "--data", arg(&c.at("tax").dir)]).code(2);
    assert!(refused.stderr.contains("stop it first"), "{refused:?}");
}
