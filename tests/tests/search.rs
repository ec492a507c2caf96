//! Name search through the API: Chinese and Latin names found in part,
//! linked persons too, only what the account may see, and every person or
//! organisation found registered as read.

use credence_protocol::model::{Classification, LinkRole, LinkedPerson, NoticeKind};
use credence_tests::add_account;
use credence_tests::cluster::{cluster, listing, wait_for};

const STATED: &str = "purpose=licence%20check&legal_basis=Regulation%2012";

fn named(n: u64, name: &str) -> NoticeKind {
    let mut kind = listing(n);
    if let NoticeKind::List(l) = &mut kind {
        l.subject.name = name.into();
    }
    kind
}

#[test]
fn names_are_found_in_part_as_far_as_the_account_may_see_and_registered() {
    let mut c = cluster(&["market"]);
    let dir = c.at("market").dir.clone();
    let reader = add_account(&dir, "desk", "reader");
    c.start_all();
    let market = c.at("market");
    wait_for("the node ready", || {
        market.get("/v1/status")["ready"] == true
    });
    let minjiang = market.issue(&named(1, "福州闽江食品有限公司"));
    let food = market.issue(&named(2, "Minjiang Food Co., Ltd."));
    market.issue(&named(3, "厦门海峡贸易有限公司"));
    let mut with_person = named(4, "Strait Trading Ltd.");
    if let NoticeKind::List(l) = &mut with_person {
        l.linked = vec![LinkedPerson {
            role: LinkRole::LegalRepresentative,
            id: "440524188001010014".into(),
            name: "张三丰".into(),
        }];
    }
    let linked = market.issue(&with_person);
    // Seen by auditors and the issuer's operators only.
    let mut hidden = named(5, "闽江隐藏公司");
    if let NoticeKind::List(l) = &mut hidden {
        l.classification = Classification::Auditors;
    }
    let hidden = market.issue(&hidden);
    let search = |token: &str, name: &str| {
        let (status, answer) = market.request(
            "GET",
            &format!("/v1/search?name={name}&{STATED}"),
            Some(token),
            None,
        );
        assert_eq!(status, 200, "{answer}");
        let ids: Vec<String> = answer["listings"]
            .as_array()
            .expect("listings")
            .iter()
            .map(|l| l["id"].as_str().expect("id").to_string())
            .collect();
        ids
    };
    let registered = || {
        market.get("/v1/register?limit=1000")["records"]
            .as_array()
            .expect("records")
            .len()
    };
    let before = registered();
    let operator = market.token();
    // Chinese in part (URL-encoded 闽江): the operator sees the hidden one.
    let mut both = search(&operator, "%E9%97%BD%E6%B1%9F");
    both.sort();
    let mut expected = vec![minjiang.clone(), hidden.clone()];
    expected.sort();
    assert_eq!(both, expected);
    // The reader does not.
    assert_eq!(search(&reader, "%E9%97%BD%E6%B1%9F"), [minjiang]);
    // Latin, any case, spaces and punctuation aside.
    assert_eq!(search(&reader, "FOOD%20co"), [food]);
    // A linked person's name finds the company's listing.
    assert_eq!(search(&reader, "%E4%B8%89%E4%B8%B0"), [linked]);
    // Nothing matches: nothing found, nothing registered for it.
    assert!(search(&reader, "nowhere").is_empty());
    // Each person or organisation found was registered: 2 + 1 + 1 + 2
    // (the company and its linked person).
    assert_eq!(registered() - before, 6);
    // A search of one character is refused, naming the rule.
    let (status, answer) = market.request(
        "GET",
        &format!("/v1/search?name=x&{STATED}"),
        Some(&reader),
        None,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .contains("2 to 64")
    );
}
