use super::*;
use crate::testkit;
use credence_crypto::merkle;

/// The checkpoint of member 0's log holding three leaves, signed by member
/// 0 and cosigned by members 1 and 2 (a quorum of 4 members' others).
fn cosigned(test: &testkit::TestFederation) -> (Checkpoint, String) {
    let leaves: Vec<Digest> = (0u8..3).map(|i| merkle::leaf_hash(&[i])).collect();
    let checkpoint = Checkpoint::of_log(
        &test.federation.id(),
        &test.author(0),
        3,
        merkle::root(&leaves),
    );
    let mut note = sign(&test.keys[0], &checkpoint).unwrap();
    for (witness, time) in [(1, 1_767_225_600), (2, 1_767_225_601)] {
        note.signatures
            .push(cosign(&test.keys[witness], &test.federation.id(), &note.text, time).unwrap());
    }
    (checkpoint, note.encode())
}

#[test]
fn a_cosigned_checkpoint_verifies_and_round_trips() {
    let test = testkit::federation(7, 4);
    let (checkpoint, bytes) = cosigned(&test);
    assert_eq!(quorum(&test.federation), 2);
    let verified = verify(bytes.as_bytes(), &test.federation).unwrap();
    assert_eq!(verified.checkpoint, checkpoint);
    assert_eq!(verified.author, test.author(0));
    assert_eq!(
        verified.cosigners,
        vec![
            (test.author(1), 1_767_225_600),
            (test.author(2), 1_767_225_601)
        ]
    );
    assert!(verified.witnessed(&test.federation));
    assert_eq!(
        Checkpoint::parse_text(&checkpoint.text()).unwrap(),
        checkpoint
    );
    // Signed by its author only: valid, not witnessed.
    let alone = sign(&test.keys[0], &checkpoint).unwrap().encode();
    let verified = verify(alone.as_bytes(), &test.federation).unwrap();
    assert!(verified.cosigners.is_empty());
    assert!(!verified.witnessed(&test.federation));
}

// Every single-byte change to a cosigned checkpoint makes it fail to
// verify or lose the quorum that made it witnessed.
#[test]
fn every_single_byte_change_is_caught() {
    let test = testkit::federation(7, 4);
    let (_, bytes) = cosigned(&test);
    let bytes = bytes.into_bytes();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut changed = bytes.clone();
            changed[i] ^= flip;
            if let Ok(verified) = verify(&changed, &test.federation) {
                assert!(
                    !verified.witnessed(&test.federation),
                    "byte {i} ^ {flip:#x} still verifies as witnessed"
                );
            }
        }
    }
}

#[test]
fn bad_checkpoints_are_refused_with_the_reason() {
    let test = testkit::federation(7, 4);
    let (checkpoint, bytes) = cosigned(&test);
    let other = testkit::federation(8, 4);
    // Another federation's verifier: a foreign origin.
    assert!(matches!(
        verify(bytes.as_bytes(), &other.federation),
        Err(CheckpointError::ForeignOrigin(_))
    ));
    // Signed by a key that is not the log's author.
    let mut forged = sign(&test.keys[1], &checkpoint).unwrap();
    forged.signatures[0].name = checkpoint.origin.clone();
    assert_eq!(
        verify(forged.encode().as_bytes(), &test.federation),
        Err(CheckpointError::Unsigned)
    );
    // The author's line with a signature over something else.
    let mut wrong = sign(&test.keys[0], &checkpoint).unwrap();
    wrong.signatures[0].bytes = note::sign(&test.keys[0], &checkpoint.origin, "other\n")
        .unwrap()
        .bytes;
    assert_eq!(
        verify(wrong.encode().as_bytes(), &test.federation),
        Err(CheckpointError::BadSignature)
    );
    // A member's cosignature line that does not verify rejects the whole.
    let mut bad = sign(&test.keys[0], &checkpoint).unwrap();
    let mut line = cosign(&test.keys[1], &test.federation.id(), &bad.text, 5).unwrap();
    line.bytes[0] ^= 1;
    bad.signatures.push(line);
    assert_eq!(
        verify(bad.encode().as_bytes(), &test.federation),
        Err(CheckpointError::BadCosignature(test.author(1)))
    );
    // Texts a checkpoint never is.
    let root = STANDARD.encode(checkpoint.root.0);
    for (text, reason) in [
        (
            format!("{}\n3\n{root}\nextra\n", checkpoint.origin),
            "exactly three lines",
        ),
        (
            format!("{}\n03\n{root}\n", checkpoint.origin),
            "leading zeros",
        ),
        (format!("{}\n-3\n{root}\n", checkpoint.origin), "decimal"),
        (
            format!("{}\n99999999999999999999\n{root}\n", checkpoint.origin),
            "64 bits",
        ),
        (format!("{}\n3\nAAAA\n", checkpoint.origin), "not 32 bytes"),
        (
            format!("{}\n3\n{}\n", checkpoint.origin, root.replace('=', "")),
            "not base64",
        ),
    ] {
        let error = Checkpoint::parse_text(&text).unwrap_err().to_string();
        assert!(error.contains(reason), "{text:?}: {error}");
    }
}

// The vector SPEC.md shows: fixed keys (testkit federation seed 7, four
// members), member 0's log of the three leaves 0x00, 0x01, 0x02, cosigned
// by members 1 and 2.
#[test]
fn spec_vector() {
    let test = testkit::federation(7, 4);
    let (_, bytes) = cosigned(&test);
    let expected = include_str!("vector.txt");
    assert_eq!(
        bytes, expected,
        "SPEC.md's checkpoint vector changed:\n{bytes}"
    );
}

// SPEC.md's Merkle vectors: the leaves are the leaf hashes of the one-byte
// strings 0x00, 0x01, ... 0x07; the roots of the first 1 to 8 of them.
#[test]
fn merkle_root_vectors() {
    let leaves: Vec<Digest> = (0u8..8).map(|i| merkle::leaf_hash(&[i])).collect();
    let roots: Vec<String> = (1..=8)
        .map(|n| hex::encode(merkle::root(&leaves[..n]).0))
        .collect();
    let expected: Vec<&str> = include_str!("roots.txt").lines().collect();
    assert_eq!(
        roots,
        expected,
        "SPEC.md's Merkle root vectors changed:\n{}",
        roots.join("\n")
    );
}

proptest::proptest! {
    // Any size, root and cosigning times: the note reads back as written
    // and verifies with the same cosigners.
    #[test]
    fn checkpoints_round_trip(
        size in proptest::prelude::any::<u64>(),
        root in proptest::prelude::any::<[u8; 32]>(),
        times in proptest::collection::vec(0u64..=i64::MAX as u64, 0..3),
    ) {
        let test = testkit::federation(7, 4);
        let checkpoint = Checkpoint::of_log(&test.federation.id(), &test.author(1), size, Digest(root));
        proptest::prop_assert_eq!(Checkpoint::parse_text(&checkpoint.text()).unwrap(), checkpoint.clone());
        let mut note = sign(&test.keys[1], &checkpoint).unwrap();
        let witnesses = [0usize, 2, 3];
        for (witness, time) in witnesses.iter().zip(&times) {
            note.signatures.push(cosign(&test.keys[*witness], &test.federation.id(), &note.text, *time).unwrap());
        }
        let bytes = note.encode();
        proptest::prop_assert_eq!(&Note::parse(bytes.as_bytes()).unwrap(), &note);
        let verified = verify(bytes.as_bytes(), &test.federation).unwrap();
        proptest::prop_assert_eq!(verified.checkpoint, checkpoint);
        let mut expected: Vec<(AuthorityId, u64)> = witnesses
            .iter()
            .zip(&times)
            .map(|(w, t)| (test.author(*w), *t))
            .collect();
        let order: Vec<AuthorityId> = test.federation.roster().members.iter().map(|m| m.key).collect();
        expected.sort_by_key(|(a, _)| order.iter().position(|k| k == a));
        proptest::prop_assert_eq!(verified.cosigners, expected);
    }
}

use witnessing::log_of_five as witnessing_fixture;

mod witnessing {
    use super::*;
    use crate::model::NoticeKind;
    use crate::replica::Replica;
    use crate::store::{MemStore, Store};
    use crate::time::Timestamp;
    use witness::{Verdict, WitnessState, split_view};

    const T0: Timestamp = Timestamp(1_767_225_600_000);

    /// Member 0's log of five notices, held by a replica.
    pub(super) fn log_of_five(test: &testkit::TestFederation) -> (Replica<MemStore>, Vec<Digest>) {
        let mut replica = Replica::new(test.federation.clone(), MemStore::new());
        let mut leaves = Vec::new();
        for n in 0..5 {
            let issued = replica
                .issue(
                    &test.keys[0],
                    NoticeKind::List(testkit::listing(n, "tax", T0)),
                    T0,
                )
                .unwrap();
            leaves.push(issued.id.digest());
        }
        (replica, leaves)
    }

    fn signed(test: &testkit::TestFederation, size: u64, root: Digest) -> (Verified, Note) {
        let checkpoint = Checkpoint::of_log(&test.federation.id(), &test.author(0), size, root);
        let note = sign(&test.keys[0], &checkpoint).unwrap();
        (verify_note(&note, &test.federation).unwrap(), note)
    }

    #[test]
    fn a_witness_cosigns_only_what_its_own_copy_shows() {
        let test = testkit::federation(7, 3);
        let (replica, leaves) = log_of_five(&test);
        let store = replica.store();
        let witness = &test.keys[1];
        let mut state = WitnessState::default();
        let consider = |state: &mut WitnessState, size: u64, root: Digest| {
            let (verified, note) = signed(&test, size, root);
            (
                state
                    .consider(
                        witness,
                        &test.federation,
                        &verified,
                        &note,
                        store,
                        1_767_225_600,
                    )
                    .unwrap(),
                note,
            )
        };
        // Its head: cosigned, and the cosignature verifies.
        let (verdict, mut note) = consider(&mut state, 5, merkle::root(&leaves));
        let Verdict::Cosign(line) = verdict else {
            panic!("expected a cosignature, got {verdict:?}");
        };
        note.signatures.push(line);
        let verified = verify_note(&note, &test.federation).unwrap();
        assert_eq!(verified.cosigners, vec![(test.author(1), 1_767_225_600)]);
        assert_eq!(
            state.newest(&test.author(0)),
            Some((5, merkle::root(&leaves)))
        );
        // Behind what it cosigned: stale. Past its copy: ahead.
        assert_eq!(
            consider(&mut state, 3, merkle::root(&leaves[..3])).0,
            Verdict::Stale { newest: 5 }
        );
        assert_eq!(
            consider(&mut state, 7, merkle::root(&leaves)).0,
            Verdict::Ahead { held: 5 }
        );
        // The same size with another root, signed by the author: a split
        // view, with the checkpoint it cosigned as evidence.
        let (verdict, other) = consider(&mut state, 5, merkle::root(&leaves[..4]));
        let Verdict::SplitView { cosigned } = verdict else {
            panic!("expected a split view, got {verdict:?}");
        };
        let first = verify_note(&cosigned, &test.federation).unwrap();
        let second = verify_note(&other, &test.federation).unwrap();
        assert!(split_view(&first, &second));
        assert!(!split_view(&first, &first));
        assert_eq!(
            state.newest(&test.author(0)),
            Some((5, merkle::root(&leaves)))
        );

        // A fresh witness checks a size below its head by rehashing.
        let mut fresh = WitnessState::default();
        assert!(matches!(
            consider(&mut fresh, 4, merkle::root(&leaves[..4])).0,
            Verdict::Cosign(_)
        ));
        assert_eq!(
            consider(&mut fresh, 4, merkle::root(&leaves[..3])).0,
            Verdict::SplitView {
                cosigned: Box::new(signed(&test, 4, merkle::root(&leaves[..4])).1)
            }
        );
        let mut another = WitnessState::default();
        assert_eq!(
            consider(&mut another, 4, merkle::root(&leaves[..3])).0,
            Verdict::Conflict {
                own_root: merkle::root(&leaves[..4])
            }
        );
        assert_eq!(another.newest(&test.author(0)), None);
        // Its own log is not witnessed by itself.
        let (verified, note) = signed(&test, 5, merkle::root(&leaves));
        assert_eq!(
            WitnessState::default()
                .consider(&test.keys[0], &test.federation, &verified, &note, store, 0)
                .unwrap(),
            Verdict::Own
        );
        assert_eq!(store.head(&test.author(0)).unwrap().unwrap().seq, 5);
    }
}

mod proving {
    use super::witnessing_fixture as fixture;
    use super::*;
    use proofs::Source::Built;
    use proofs::{ProofError, consistency, entries, inclusion, root_at};

    #[test]
    fn proofs_verify_against_the_roots_of_checkpoints() {
        let test = testkit::federation(7, 3);
        let (replica, leaves) = fixture(&test);
        let store = replica.store();
        let author = test.author(0);
        for size in 1..=5u64 {
            let root = root_at(store, &author, size).unwrap();
            assert_eq!(root, merkle::root(&leaves[..size as usize]));
            for seq in 1..=size {
                let proof = inclusion(store, &author, seq, Some(size), Built).unwrap();
                assert_eq!(proof.id.digest(), leaves[seq as usize - 1]);
                assert_eq!(proof.root, root);
                assert!(merkle::verify_inclusion(
                    &proof.id.digest(),
                    seq - 1,
                    size,
                    &proof.path,
                    &root
                ));
            }
            for from in 0..=size {
                let proof = consistency(store, &author, from, size, Built).unwrap();
                assert!(merkle::verify_consistency(
                    from,
                    size,
                    &proof.from_root,
                    &proof.to_root,
                    &proof.path
                ));
            }
        }
        // All sizes in one pass: the same roots; sizes past the log left out.
        let sizes: std::collections::BTreeSet<u64> = [0, 2, 5, 9].into_iter().collect();
        let roots = proofs::roots_at(store, &author, &sizes).unwrap();
        assert_eq!(roots.len(), 3);
        assert_eq!(roots[&0], merkle::empty_root());
        assert_eq!(roots[&2], root_at(store, &author, 2).unwrap());
        assert_eq!(roots[&5], root_at(store, &author, 5).unwrap());
        // The size held is the default.
        assert_eq!(inclusion(store, &author, 2, None, Built).unwrap().size, 5);
        // What cannot be proven says why.
        assert!(matches!(
            inclusion(store, &author, 2, Some(6), Built),
            Err(ProofError::NotHeld { held: 5, asked: 6 })
        ));
        assert!(matches!(
            inclusion(store, &author, 0, None, Built),
            Err(ProofError::Bad(_))
        ));
        assert!(matches!(
            consistency(store, &author, 4, 3, Built),
            Err(ProofError::Bad(_))
        ));
        assert!(matches!(
            root_at(store, &test.author(1), 1),
            Err(ProofError::NotHeld { held: 0, asked: 1 })
        ));
        // Entries are the envelopes, whose leaf hashes are the leaves.
        let got = entries(store, &author, 2, 10).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(merkle::leaf_hash(&got[0]), leaves[1]);
        assert!(matches!(
            entries(store, &author, 0, 1),
            Err(ProofError::Bad(_))
        ));
        assert!(matches!(
            entries(store, &author, 1, proofs::ENTRIES_MAX + 1),
            Err(ProofError::Bad(_))
        ));
    }
}

mod paged_proofs {
    use super::*;
    use crate::model::NoticeKind;
    use crate::replica::Replica;
    use crate::store::MemStore;
    use crate::time::Timestamp;
    use proofs::Source::{Built, Kept};
    use proofs::{ProofError, consistency, inclusion};

    const T0: Timestamp = Timestamp(1_767_225_600_000);

    /// Member 0's log of `n` listings (names from `first` on).
    fn log(test: &testkit::TestFederation, first: u64, n: u64) -> Replica<MemStore> {
        let mut replica = Replica::new(test.federation.clone(), MemStore::new());
        for i in first..first + n {
            replica
                .issue(
                    &test.keys[0],
                    NoticeKind::List(testkit::listing(i, "tax", T0)),
                    T0,
                )
                .unwrap();
        }
        replica
    }

    #[test]
    fn a_kept_tree_proves_as_the_leaves_do_across_pages_and_says_what_it_lacks() {
        let test = testkit::federation(7, 3);
        let replica = log(&test, 0, 150);
        let store = replica.store();
        let author = test.author(0);
        let mut kept = merkle::PagedTree::new();
        crate::proven::extend(store, &author, &mut kept, 150).unwrap();
        assert_eq!(kept.len(), 150);
        for size in [1u64, 2, 63, 64, 65, 127, 128, 129, 150] {
            for seq in [1, 2, size / 2 + 1, size.saturating_sub(1).max(1), size] {
                if seq > size {
                    continue;
                }
                let from_kept = inclusion(store, &author, seq, Some(size), Kept(&kept)).unwrap();
                let built = inclusion(store, &author, seq, Some(size), Built).unwrap();
                assert_eq!(from_kept, built, "seq {seq} of {size}");
                assert!(merkle::verify_inclusion(
                    &from_kept.id.digest(),
                    seq - 1,
                    size,
                    &from_kept.path,
                    &from_kept.root
                ));
            }
            for from in [0, 1, 63, 64, 65, 100, size] {
                if from > size {
                    continue;
                }
                let from_kept = consistency(store, &author, from, size, Kept(&kept)).unwrap();
                assert_eq!(
                    from_kept,
                    consistency(store, &author, from, size, Built).unwrap()
                );
                assert!(merkle::verify_consistency(
                    from,
                    size,
                    &from_kept.from_root,
                    &from_kept.to_root,
                    &from_kept.path
                ));
            }
        }
        // A tree that lags its log says so; the size held is the default.
        let mut lagging = merkle::PagedTree::new();
        crate::proven::extend(store, &author, &mut lagging, 100).unwrap();
        assert!(matches!(
            inclusion(store, &author, 3, None, Kept(&lagging)),
            Err(ProofError::NotKept {
                kept: 100,
                asked: 150
            })
        ));
        assert_eq!(
            inclusion(store, &author, 3, Some(100), Kept(&lagging)).unwrap(),
            inclusion(store, &author, 3, Some(100), Built).unwrap()
        );
    }

    #[test]
    fn a_kept_tree_over_another_copy_of_the_log_is_reported_damaged() {
        let test = testkit::federation(7, 3);
        let author = test.author(0);
        let mut kept = merkle::PagedTree::new();
        crate::proven::extend(log(&test, 0, 130).store(), &author, &mut kept, 130).unwrap();
        let other = log(&test, 1_000, 130);
        for result in [
            inclusion(other.store(), &author, 5, Some(130), Kept(&kept)).map(|_| ()),
            consistency(other.store(), &author, 70, 130, Kept(&kept)).map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, ProofError::Damaged(_)), "{err}");
            assert!(err.to_string().contains("damaged"), "{err}");
        }
    }
}

mod keeping {
    use super::*;
    use book::{Book, Taken};

    #[test]
    fn a_book_gathers_cosignatures_and_keeps_the_newest_witnessed() {
        let test = testkit::federation(7, 3);
        let fed = &test.federation;
        let leaves: Vec<Digest> = (0u8..6).map(|i| merkle::leaf_hash(&[i])).collect();
        let at = |size: usize, root: Digest| {
            sign(
                &test.keys[0],
                &Checkpoint::of_log(&fed.id(), &test.author(0), size as u64, root),
            )
            .unwrap()
        };
        let with = |mut note: Note, witnesses: &[usize]| {
            for w in witnesses {
                note.signatures
                    .push(cosign(&test.keys[*w], &fed.id(), &note.text, 100 + *w as u64).unwrap());
            }
            note
        };
        let take = |book: &mut Book, note: &Note| {
            let verified = verify_note(note, fed).unwrap();
            book.take(note, &verified, fed)
        };
        let author = test.author(0);
        let four = at(4, merkle::root(&leaves[..4]));
        let mut book = Book::default();
        assert_eq!(take(&mut book, &four), Taken::Newer);
        assert_eq!(book.newest(&author).unwrap().cosigners(), 0);
        assert!(book.witnessed(&author).is_none());
        assert_eq!(
            take(&mut book, &with(four.clone(), &[1])),
            Taken::MoreCosignatures
        );
        assert_eq!(take(&mut book, &with(four.clone(), &[1])), Taken::Nothing);
        assert_eq!(
            take(&mut book, &with(four.clone(), &[2])),
            Taken::MoreCosignatures
        );
        // Both others cosigned: witnessed, and the gathered note verifies
        // with both.
        let witnessed = book.witnessed(&author).unwrap();
        assert!(witnessed.witnessed(fed));
        let gathered = witnessed.note();
        let verified = verify_note(&gathered, fed).unwrap();
        assert_eq!(verified.cosigners.len(), 2);
        assert_eq!(verified, witnessed.verified);
        // A newer one, not yet cosigned: newest moves, witnessed stays.
        let six = at(6, merkle::root(&leaves));
        assert_eq!(take(&mut book, &six), Taken::Newer);
        assert_eq!(book.newest(&author).unwrap().verified.checkpoint.size, 6);
        assert_eq!(book.witnessed(&author).unwrap().verified.checkpoint.size, 4);
        // Older: nothing.
        assert_eq!(
            take(&mut book, &at(3, merkle::root(&leaves[..3]))),
            Taken::Nothing
        );
        // Another root at a size held: a split view, proven by both notes.
        let other = at(4, merkle::root(&leaves[1..5]));
        let Taken::SplitView(pair) = take(&mut book, &other) else {
            panic!("expected a split view");
        };
        let (a, b) = (
            verify_note(&pair.0, fed).unwrap(),
            verify_note(&pair.1, fed).unwrap(),
        );
        assert!(witness::split_view(&a, &b));
        assert_eq!(book.witnessed(&author).unwrap().verified.checkpoint.size, 4);
    }
}
