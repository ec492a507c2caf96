use super::chain::{Added, Chain};
use super::proposal::{
    AllowDocument, ChangeDocument, RemoveDocument, RotateDocument, UpdateDocument, decode_proposal,
    encode_proposal, propose,
};
use super::*;
use crate::roster::MemberDocument;
use crate::testkit::{self, TestFederation};
use proptest::prelude::*;

fn setup(members: usize) -> (TestFederation, Chain) {
    let test = testkit::federation(21, members);
    let chain = Chain::new(test.federation.clone());
    (test, chain)
}

fn new_key(n: usize) -> AuthorityKey {
    testkit::key(9_000, n)
}

fn member_document(key: &AuthorityKey, name: &str) -> MemberDocument {
    MemberDocument {
        handle: String::new(),
        key: hex::encode(key.public_bytes()),
        name: name.into(),
        region: "350600".into(),
        department: "market regulation".into(),
        issues_black: vec!["tax".into()],
        issues_red: Vec::new(),
        implements: vec!["procurement-ban".into()],
        auditor: false,
        listen: vec!["/ip4/127.0.0.1/tcp/7104".into()],
    }
}

fn signed_by(version: &RosterVersion, keys: &[&AuthorityKey]) -> SignedVersion {
    let mut signed = SignedVersion::new(version).expect("encodes");
    for key in keys {
        signed.sign(key);
    }
    signed
}

fn add_member(chain: &Chain, key: &AuthorityKey, name: &str, threshold: u32) -> RosterVersion {
    propose(
        chain.current(),
        &ChangeDocument {
            threshold: Some(threshold),
            add: vec![member_document(key, name)],
            ..ChangeDocument::default()
        },
    )
    .expect("a valid change")
}

#[test]
fn a_version_signed_by_the_threshold_and_the_new_key_is_accepted() {
    let (test, mut chain) = setup(3);
    let joining = new_key(1);
    let version = add_member(&chain, &joining, "Zhangzhou Bureau", 3);
    let signed = signed_by(&version, &[&test.keys[0], &test.keys[1], &joining]);
    assert_eq!(
        chain.add(signed.clone()),
        Ok(Added::Valid {
            number: 1,
            chosen: true
        })
    );
    let current = chain.current();
    assert_eq!(current.number, 1);
    assert_eq!(current.federation.id(), test.federation.id());
    assert_eq!(current.federation.threshold(), 3);
    let id = AuthorityId(joining.public_bytes());
    assert!(current.federation.member(&id).is_some());
    assert_eq!(current.member_of_key(&id), Some(id));
    assert_eq!(chain.add(signed), Ok(Added::Known));
}

#[test]
fn too_few_members_repeated_signatures_and_missing_proofs_are_refused() {
    let (test, mut chain) = setup(3);
    let joining = new_key(2);
    let version = add_member(&chain, &joining, "Zhangzhou Bureau", 3);

    // One member of three (the threshold is two).
    let error = chain
        .add(signed_by(&version, &[&test.keys[0], &joining]))
        .unwrap_err();
    assert_eq!(
        error,
        GovernanceError::BelowThreshold {
            number: 1,
            signed: 1,
            threshold: 2
        }
    );
    assert!(error.to_string().contains("threshold is 2"), "{error}");

    // One member's signature twice is still one member, and is refused.
    let mut repeated = signed_by(&version, &[&test.keys[0], &joining]);
    let again = repeated.signatures[0].clone();
    repeated.signatures.insert(0, again.clone());
    let error = chain.add(repeated).unwrap_err();
    assert_eq!(error.code(), "repeated_signature");
    assert!(error.to_string().contains("count once"), "{error}");

    // Without the new member's own signature.
    let error = chain
        .add(signed_by(&version, &[&test.keys[0], &test.keys[1]]))
        .unwrap_err();
    assert_eq!(
        error,
        GovernanceError::MissingProofOfPossession {
            number: 1,
            key: AuthorityId(joining.public_bytes()),
            what: "new member \"Zhangzhou Bureau\"".into(),
        }
    );

    // A stranger's signature.
    let stranger = new_key(3);
    let error = chain
        .add(signed_by(
            &version,
            &[&test.keys[0], &test.keys[1], &joining, &stranger],
        ))
        .unwrap_err();
    assert_eq!(error.code(), "foreign_signer");

    // A signature that does not verify.
    let mut forged = signed_by(&version, &[&test.keys[0], &test.keys[1], &joining]);
    forged.signatures[1].signature.0[0] ^= 1;
    assert_eq!(chain.add(forged).unwrap_err().code(), "signature");
    assert_eq!(chain.current().number, 0, "nothing was taken");
}

#[test]
fn a_removed_member_signs_nothing_and_its_cutoff_is_required() {
    let (test, mut chain) = setup(3);
    let removed = test.author(2);
    // Removing without a cutoff is refused naming the field.
    let mut version = propose(
        chain.current(),
        &ChangeDocument {
            remove: vec![RemoveDocument {
                member: removed.to_string(),
                after_seq: 5,
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a removal");
    assert_eq!(version.cutoffs.len(), 1);
    assert_eq!(version.roster.threshold, 2);
    let cutoffs = std::mem::take(&mut version.cutoffs);
    let error = chain
        .add(signed_by(&version, &[&test.keys[0], &test.keys[1]]))
        .unwrap_err();
    assert!(
        matches!(&error, GovernanceError::Change { field, .. } if field.starts_with("cutoffs[")),
        "{error}"
    );
    version.cutoffs = cutoffs;
    // The member being removed need not sign.
    chain
        .add(signed_by(&version, &[&test.keys[0], &test.keys[1]]))
        .expect("two of three remove the third");
    let current = chain.current().clone();
    assert!(current.federation.member(&removed).is_none());
    assert_eq!(
        current.cutoffs.get(&removed).map(|c| c[0].after_seq),
        Some(5)
    );
    // Its old notices still verify: its key is kept for them.
    assert!(current.key_for(&removed, 5).is_some());
    assert_eq!(current.member_of_key(&removed), None);

    // The removed member signs the next version: refused, saying so.
    let joining = new_key(4);
    let next = add_member(&chain, &joining, "Putian Bureau", 2);
    let error = chain
        .add(signed_by(
            &next,
            &[&test.keys[0], &test.keys[1], &test.keys[2], &joining],
        ))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("removed from the federation in version 1"),
        "{error}"
    );
    // And it cannot come back under the same key.
    let mut back = member_document(&test.keys[2], "Back Again");
    back.key = removed.to_string();
    let rejoin = propose(
        chain.current(),
        &ChangeDocument {
            add: vec![back],
            threshold: Some(2),
            ..ChangeDocument::default()
        },
    )
    .expect("the document itself is well formed");
    let error = chain
        .add(signed_by(
            &rejoin,
            &[&test.keys[0], &test.keys[1], &test.keys[2]],
        ))
        .unwrap_err();
    assert!(
        error.to_string().contains("rejoins with a new key"),
        "{error}"
    );
}

#[test]
fn a_rotated_key_signs_from_the_cutoff_on() {
    let (test, mut chain) = setup(3);
    let member = test.author(1);
    let fresh = new_key(5);
    let change = ChangeDocument {
        rotate: vec![RotateDocument {
            member: member.to_string(),
            key: hex::encode(fresh.public_bytes()),
            after_seq: 41,
            compromised: true,
        }],
        ..ChangeDocument::default()
    };
    let version = propose(chain.current(), &change).expect("a rotation");
    let error = chain
        .add(signed_by(&version, &[&test.keys[0], &test.keys[1]]))
        .unwrap_err();
    assert_eq!(error.code(), "proof_of_possession");
    chain
        .add(signed_by(&version, &[&test.keys[0], &test.keys[1], &fresh]))
        .expect("a rotation with the new key's signature");
    let current = chain.current();
    let fresh_id = AuthorityId(fresh.public_bytes());
    assert_eq!(current.key_for(&member, 41).map(|s| s.key), Some(member));
    assert!(current.key_for(&member, 41).is_some_and(|s| s.compromised));
    assert_eq!(current.key_for(&member, 42).map(|s| s.key), Some(fresh_id));
    assert_eq!(current.member_of_key(&fresh_id), Some(member));
    assert_eq!(
        current.member_of_key(&member),
        None,
        "the old key is retired"
    );

    // The retired key signs nothing more; the new one counts for its member.
    let joining = new_key(6);
    let next = add_member(&chain, &joining, "Nanping Bureau", 3);
    let error = chain
        .add(signed_by(&next, &[&test.keys[0], &test.keys[1], &joining]))
        .unwrap_err();
    assert!(error.to_string().contains("retired key"), "{error}");
    chain
        .add(signed_by(&next, &[&test.keys[0], &fresh, &joining]))
        .expect("signed with the new key");
}

#[test]
fn taking_a_grant_away_needs_a_cutoff() {
    let (test, chain) = setup(3);
    let mut change = ChangeDocument {
        update: vec![UpdateDocument {
            member: test.federation.name_of(&test.author(0)),
            issues_black: Some(vec!["tax".into()]),
            ..UpdateDocument::default()
        }],
        ..ChangeDocument::default()
    };
    let error = propose(chain.current(), &change).unwrap_err();
    assert!(
        matches!(&error, RosterError::Invalid { field, .. } if field == "update[0].after_seq"),
        "{error}"
    );
    change.update[0].after_seq = Some(3);
    let version = propose(chain.current(), &change).expect("with a cutoff");
    assert_eq!(version.cutoffs[0].after_seq, 3);
    // Changing only an address takes nothing away: no cutoff allowed.
    let change = ChangeDocument {
        update: vec![UpdateDocument {
            member: test.author(0).to_string(),
            listen: Some(vec!["/ip4/127.0.0.1/tcp/9999".into()]),
            after_seq: Some(1),
            ..UpdateDocument::default()
        }],
        ..ChangeDocument::default()
    };
    let error = propose(chain.current(), &change).unwrap_err();
    assert!(error.to_string().contains("takes nothing away"), "{error}");
}

#[test]
fn versions_out_of_order_are_held_until_their_predecessor_arrives() {
    let (test, mut chain) = setup(3);
    let first_key = new_key(7);
    let first = add_member(&chain, &first_key, "Sanming Bureau", 3);
    let first = signed_by(&first, &[&test.keys[0], &test.keys[1], &first_key]);
    let mut ahead = chain.clone();
    ahead.add(first.clone()).expect("valid");
    let second_key = new_key(8);
    let second = add_member(&ahead, &second_key, "Longyan Bureau", 3);
    let second = signed_by(
        &second,
        &[&test.keys[0], &test.keys[1], &first_key, &second_key],
    );
    assert_eq!(chain.add(second.clone()), Ok(Added::Held { number: 2 }));
    assert_eq!(chain.held_count(), 1);
    assert_eq!(
        chain.add(first),
        Ok(Added::Valid {
            number: 1,
            chosen: true
        })
    );
    assert_eq!(chain.current().number, 2);
    assert_eq!(chain.held_count(), 0);
    assert_eq!(chain.current().hash, second.hash());
}

#[test]
fn proposal_files_round_trip_and_refuse_other_bytes() {
    let (test, chain) = setup(3);
    let joining = new_key(9);
    let version = add_member(&chain, &joining, "Ningde Bureau", 3);
    let mut signed = signed_by(&version, &[&test.keys[0]]);
    let bytes = encode_proposal(&signed).expect("encodes");
    assert_eq!(decode_proposal(&bytes), Ok(signed.clone()));
    let error = decode_proposal(b"credence-bundle\0...").unwrap_err();
    assert!(
        error.to_string().contains("not a roster proposal"),
        "{error}"
    );
    let error = decode_proposal(&bytes[..bytes.len() - 3]).unwrap_err();
    assert!(
        error.to_string().contains("signed roster version"),
        "{error}"
    );
    // Signatures gathered separately merge into one proposal.
    let mut other = signed_by(&version, &[&test.keys[1], &joining]);
    other.merge(&signed);
    signed.merge(&other);
    assert_eq!(signed, other);
    assert_eq!(signed.signatures.len(), 3);
}

fn allow(member: &str, notices: u64) -> ChangeDocument {
    ChangeDocument {
        allow: vec![AllowDocument {
            member: member.into(),
            notices,
        }],
        ..ChangeDocument::default()
    }
}

#[test]
fn an_allowance_is_format_2_and_a_version_without_one_stays_format_1() {
    let (test, mut chain) = setup(3);
    let member = test.author(2);
    // Without an allowance: format 1, which decodes and encodes back to
    // the same bytes and reads as no allowance.
    let plain = add_member(&chain, &new_key(3), "Putian Bureau", 3);
    assert_eq!(plain.format, 1);
    let bytes = plain.to_bytes().expect("encodes");
    assert_eq!(RosterVersion::from_bytes(&bytes), Ok(plain.clone()));
    // A format 1 body cannot carry one: neither encoded, nor decoded with
    // one appended.
    let mut smuggled = plain.clone();
    smuggled.allowances = vec![Allowance { member, notices: 5 }];
    assert!(
        smuggled
            .to_bytes()
            .unwrap_err()
            .to_string()
            .contains("format 2 can")
    );
    smuggled.format = 2;
    let tail = &smuggled.to_bytes().expect("format 2")[bytes.len()..];
    let with_tail = [bytes.as_slice(), tail].concat();
    assert!(matches!(
        RosterVersion::from_bytes(&with_tail),
        Err(CodecError::TrailingBytes { .. })
    ));

    let granting =
        propose(chain.current(), &allow(&hex::encode(member.0), 500_000)).expect("a valid change");
    assert_eq!(granting.format, 2);
    assert_eq!(
        granting.allowances,
        vec![Allowance {
            member,
            notices: 500_000
        }]
    );
    let bytes = granting.to_bytes().expect("encodes");
    assert_eq!(RosterVersion::from_bytes(&bytes), Ok(granting.clone()));
    let signed = signed_by(&granting, &[&test.keys[0], &test.keys[1]]);
    assert_eq!(
        chain.add(signed),
        Ok(Added::Valid {
            number: 1,
            chosen: true
        })
    );
    assert_eq!(chain.current().allowances.get(&member), Some(&500_000));
    // What a log takes: once, when its notices first name the version.
    assert_eq!(chain.allowance(&member, None, 1), 500_000);
    assert_eq!(chain.allowance(&member, Some(0), 1), 500_000);
    assert_eq!(chain.allowance(&member, Some(1), 1), 0);
    assert_eq!(chain.allowance(&member, Some(0), 0), 0);
    assert_eq!(chain.allowance(&test.author(0), None, 1), 0);
    // A version the chain has not reached grants nothing yet.
    assert_eq!(chain.allowance(&member, Some(0), 7), 500_000);
}

#[test]
fn allowances_outside_the_rules_are_refused() {
    let (test, chain) = setup(3);
    let member = test.author(1);
    let name = test.federation.name_of(&member);
    for (notices, problem) in [
        (0, "1 to 100000000"),
        (ALLOWANCE_NOTICES_MAX + 1, "1 to 100000000"),
    ] {
        let error = propose(chain.current(), &allow(&name, notices)).unwrap_err();
        assert!(error.to_string().contains(problem), "{error}");
    }
    let error = propose(chain.current(), &allow("Nobody", 5)).unwrap_err();
    assert!(
        error.to_string().contains("neither the id nor the name"),
        "{error}"
    );
    let mut twice = allow(&name, 5);
    twice.allow.push(AllowDocument {
        member: hex::encode(member.0),
        notices: 6,
    });
    let error = propose(chain.current(), &twice).unwrap_err();
    assert!(error.to_string().contains("two allowances"), "{error}");

    // A version built by hand past the proposal's checks is refused by
    // every replica: for a non-member, of zero notices, unsorted.
    let valid = propose(chain.current(), &allow(&name, 5)).expect("valid");
    let refused = |version: &RosterVersion| {
        let signed = signed_by(version, &[&test.keys[0], &test.keys[1]]);
        verify_next(chain.current(), &signed)
            .unwrap_err()
            .to_string()
    };
    let mut stranger = valid.clone();
    stranger.allowances[0].member = AuthorityId(new_key(5).public_bytes());
    assert!(refused(&stranger).contains("a member of this version"));
    let mut zero = valid.clone();
    zero.allowances[0].notices = 0;
    assert!(refused(&zero).contains("grants 1 to"));
    let mut unsorted = valid.clone();
    unsorted.allowances = vec![
        Allowance {
            member: test.author(2).max(member),
            notices: 1,
        },
        Allowance {
            member: test.author(2).min(member),
            notices: 1,
        },
    ];
    assert!(refused(&unsorted).contains("sorted by member"));
    let mut format = valid.clone();
    format.format = 3;
    assert!(refused(&format).contains("formats 1 to 2"));
}

/// Three versions that all replace genesis: each signed by two of four
/// members plus the new key (threshold three: only those with three
/// members' signatures are valid), and one successor of each.
fn conflicting() -> (TestFederation, Vec<SignedVersion>) {
    let (test, chain) = setup(4);
    let mut all = Vec::new();
    for (n, signers) in [[0usize, 1, 2], [1, 2, 3], [0, 2, 3]].iter().enumerate() {
        let joining = new_key(20 + n);
        let version = add_member(&chain, &joining, &format!("Joining Bureau {n}"), 3);
        let mut keys: Vec<&AuthorityKey> = signers.iter().map(|i| &test.keys[*i]).collect();
        keys.push(&joining);
        let signed = signed_by(&version, &keys);
        let mut after = chain.clone();
        after.add(signed.clone()).expect("valid alone");
        let extra = new_key(40 + n);
        let next = add_member(&after, &extra, &format!("Later Bureau {n}"), 4);
        let mut next_keys: Vec<&AuthorityKey> = test.keys.iter().collect();
        next_keys.push(&joining);
        next_keys.push(&extra);
        all.push(signed);
        all.push(signed_by(&next, &next_keys));
    }
    (test, all)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    // Whatever the order the versions arrive in, every chain chooses the
    // same versions and keeps the same evidence.
    #[test]
    fn conflicting_versions_resolve_the_same_way_in_every_order(seed in any::<u64>()) {
        let (test, versions) = conflicting();
        let mut reference = Chain::new(test.federation.clone());
        for signed in &versions {
            reference.add(signed.clone()).expect("valid or held");
        }
        let mut order = versions.clone();
        testkit::SplitMix64(seed).shuffle(&mut order);
        let mut chain = Chain::new(test.federation.clone());
        for signed in order {
            chain.add(signed).expect("valid or held");
        }
        let hashes = |c: &Chain| c.chosen().iter().map(|v| v.hash).collect::<Vec<_>>();
        prop_assert_eq!(hashes(&chain), hashes(&reference));
        prop_assert_eq!(chain.current().number, 2);
        prop_assert_eq!(chain.evidence(), reference.evidence());
        // The lowest hash at version 1 won; the two others are evidence,
        // each naming the members who signed both.
        let firsts: Vec<RosterHash> = versions.iter().step_by(2).map(|v| v.hash()).collect();
        prop_assert_eq!(Some(&chain.chosen()[1].hash), firsts.iter().min());
        prop_assert_eq!(chain.evidence().len(), 2);
        for evidence in chain.evidence() {
            prop_assert_eq!(evidence.signers.len(), 2);
        }
        prop_assert_eq!(chain.signed_versions().len(), versions.len());
    }
}
