//! Deterministic fixtures: a federation of seeded authorities, valid
//! identifiers and listings. Used by the tests, the benchmarks and the
//! simulator; everything is a pure function of its seed.

use crate::codec;
use crate::model::{
    AuthorityId, Classification, Envelope, ListKind, Listing, Notice, NoticeId, Severity,
    SignatureBytes, Subject, SubjectKind,
};
use crate::roster::{Category, Federation, Measure, Member, Roster};
use crate::time::{DAY_MS, Timestamp};
use credence_crypto::merkle::leaf_hash;
use credence_crypto::{AuthorityKey, Digest, NOTICE_DOMAIN};

/// The catalog's categories: `(code, name)`.
pub const CATEGORIES: [(&str, &str); 6] = [
    ("food-drug", "Food and drug safety"),
    ("production-safety", "Production safety"),
    ("environment", "Environmental protection"),
    ("tax", "Taxation"),
    ("court-enforcement", "Court enforcement"),
    ("procurement", "Government procurement"),
];

/// The catalog's measures: `(code, list, mandatory)`.
pub const MEASURES: [(&str, ListKind, bool); 5] = [
    ("procurement-ban", ListKind::Black, true),
    ("high-consumption-ban", ListKind::Black, true),
    ("more-inspections", ListKind::Black, false),
    ("green-channel", ListKind::Red, false),
    ("fewer-inspections", ListKind::Red, false),
];

/// The minimum objection window of the test federation.
pub const OBJECTION_WINDOW_MS: u64 = 15 * DAY_MS;

/// A federation and its members' keys, in roster order.
pub struct TestFederation {
    /// The checked federation.
    pub federation: Federation,
    /// Member keys, in the order of the federation's members.
    pub keys: Vec<AuthorityKey>,
}

impl TestFederation {
    /// The authority id of member `index`.
    pub fn author(&self, index: usize) -> AuthorityId {
        AuthorityId(self.keys[index].public_bytes())
    }
}

/// The key of member `index` of federation `seed`.
pub fn key(seed: u64, index: usize) -> AuthorityKey {
    let mut material = seed.to_le_bytes().to_vec();
    material.extend_from_slice(&(index as u64).to_le_bytes());
    AuthorityKey::from_secret_bytes(Digest::of(&material).0)
}

/// A federation of `members` authorities. Member 0 issues blacklist and red
/// list entries in every category and implements nothing; every other
/// member issues in every category and implements every measure.
pub fn federation(seed: u64, members: usize) -> TestFederation {
    let mut keys: Vec<AuthorityKey> = (0..members).map(|i| key(seed, i)).collect();
    let all_categories: Vec<String> = CATEGORIES
        .iter()
        .map(|(code, _)| code.to_string())
        .collect();
    let all_measures: Vec<String> = MEASURES.iter().map(|(code, ..)| code.to_string()).collect();
    let roster_members = keys
        .iter()
        .enumerate()
        .map(|(i, key)| Member {
            key: AuthorityId(key.public_bytes()),
            name: format!("Authority {i}"),
            region: format!("{:06}", 110_000 + i * 100),
            department: if i == 0 {
                "market regulation".into()
            } else {
                "implementing department".into()
            },
            issues_black: all_categories.clone(),
            issues_red: all_categories.clone(),
            implements: if i == 0 {
                Vec::new()
            } else {
                all_measures.clone()
            },
            auditor: false,
            listen: Vec::new(),
        })
        .collect();
    let roster = Roster {
        name: format!("test federation {seed}"),
        objection_window_ms: OBJECTION_WINDOW_MS,
        red_lookback_ms: crate::roster::RED_LOOKBACK_DEFAULT_MS,
        threshold: crate::roster::threshold_default(members),
        categories: CATEGORIES
            .iter()
            .map(|(code, name)| Category {
                code: code.to_string(),
                name: name.to_string(),
                rules: Vec::new(),
            })
            .collect(),
        measures: MEASURES
            .iter()
            .map(|(code, list, mandatory)| Measure {
                code: code.to_string(),
                name: code.replace('-', " "),
                list: *list,
                mandatory: *mandatory,
            })
            .collect(),
        members: roster_members,
    };
    let federation = match Federation::new(roster) {
        Ok(federation) => federation,
        Err(error) => unreachable!("the test roster is valid: {error}"),
    };
    // Put the keys in the federation's member order.
    let order: Vec<AuthorityId> = federation.roster().members.iter().map(|m| m.key).collect();
    keys.sort_by_key(|key| order.iter().position(|id| id.0 == key.public_bytes()));
    TestFederation { federation, keys }
}

/// A valid USCC derived from `n`.
pub fn uscc(n: u64) -> String {
    const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u64; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let mut body = *b"91350100MA0000000";
    let mut rest = n;
    for slot in body[10..].iter_mut().rev() {
        *slot = ALPHABET[(rest % 31) as usize];
        rest /= 31;
    }
    let sum: u64 = body
        .iter()
        .zip(WEIGHTS)
        .map(|(&c, w)| ALPHABET.iter().position(|&a| a == c).unwrap_or(0) as u64 * w)
        .sum();
    let check = ALPHABET[((31 - sum % 31) % 31) as usize];
    let mut code = String::from_utf8_lossy(&body).into_owned();
    code.push(char::from(check));
    code
}

/// A valid blacklist listing of company `subject` in `category`, effective
/// at `effective_at` for a year of publication and two of sharing,
/// repairable after 90 days.
pub fn listing(subject: u64, category: &str, effective_at: Timestamp) -> Listing {
    Listing {
        subject: Subject {
            kind: SubjectKind::LegalPerson,
            id: uscc(subject),
            name: format!("Company {subject} Ltd."),
        },
        list: ListKind::Black,
        category: category.to_string(),
        severity: Severity::Serious,
        reason: "sold substandard goods after an order to stop".into(),
        legal_basis: "Food Safety Law art. 123".into(),
        document_number: format!("FZ-2026-{subject:05}"),
        measures: vec!["procurement-ban".into(), "more-inspections".into()],
        effective_at,
        publish_until: effective_at.plus_ms(365 * DAY_MS),
        share_until: effective_at.plus_ms(730 * DAY_MS),
        repair_from: effective_at.plus_ms(90 * DAY_MS),
        classification: Classification::Public,
        evidence: vec![Digest::of(&subject.to_le_bytes()).0],
        checksum_override: false,
        readers: Vec::new(),
        linked: Vec::new(),
    }
}

/// Signs `notice` with `key` without any validation: for building invalid
/// or forged notices on purpose.
pub fn sign(key: &AuthorityKey, notice: &Notice) -> (NoticeId, Vec<u8>) {
    let body = match codec::encode_notice(notice) {
        Ok(body) => body,
        Err(error) => unreachable!("test notices fit the limits: {error}"),
    };
    let signature = SignatureBytes(key.sign(NOTICE_DOMAIN, &body));
    let bytes = match codec::encode_envelope(&Envelope { body, signature }) {
        Ok(bytes) => bytes,
        Err(error) => unreachable!("test envelopes fit the limits: {error}"),
    };
    (NoticeId::from(leaf_hash(&bytes)), bytes)
}

/// A small deterministic generator (SplitMix64): the testkit's only source
/// of randomness, so that everything replays from a seed.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// An index into a slice of `len` elements (`len > 0`).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

/// A generated history of valid notices.
pub struct Workload {
    /// Envelopes in issue order.
    pub envelopes: Vec<Vec<u8>>,
    /// Ids of the listings issued.
    pub listings: Vec<NoticeId>,
    /// The issue time of the last notice.
    pub end: Timestamp,
}

/// Issues `count` random but valid notices of every kind (listings,
/// amendments, objections, rulings, feedback, repairs, withdrawals) across
/// `subjects` companies, starting at `start`. Attempts that a rule refuses
/// (a repair before its date, say) are replaced by other attempts.
pub fn workload(
    test: &TestFederation,
    seed: u64,
    count: usize,
    subjects: u64,
    start: Timestamp,
) -> Workload {
    use crate::model::{FeedbackAction, ListingChange, NoticeKind, Remedy, RulingOutcome};
    use crate::replica::Replica;
    use crate::store::MemStore;

    let mut rng = SplitMix64(seed);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let members = test.keys.len();
    let mut listings: Vec<(NoticeId, usize, Vec<String>)> = Vec::new();
    let mut objections: Vec<(NoticeId, usize)> = Vec::new();
    let mut envelopes = Vec::with_capacity(count);
    let mut now = start;
    // Attempts that a rule refuses are retried with other choices, up to a
    // bound, so that the workload has `count` notices.
    let mut attempts = 0;
    while envelopes.len() < count && attempts < count.saturating_mul(4) {
        attempts += 1;
        now = now.plus_ms(rng.below(DAY_MS));
        let roll = rng.below(100);
        // The issuer of the listing an objection names: its ruling's author.
        let mut objection_of = None;
        let (author, kind) = if roll < 35 || listings.is_empty() {
            let author = rng.index(members);
            let category = CATEGORIES[rng.index(CATEGORIES.len())].0;
            let mut listing = listing(
                rng.below(subjects.max(1)),
                category,
                Timestamp(now.0.saturating_sub(rng.below(10 * DAY_MS))),
            );
            if rng.below(2) == 0 {
                listing.measures = vec!["high-consumption-ban".into()];
            }
            (author, NoticeKind::List(listing))
        } else {
            let (listing, issuer, measures) = listings[rng.index(listings.len())].clone();
            match roll {
                35..=44 => (
                    issuer,
                    NoticeKind::Amend {
                        listing,
                        changes: vec![
                            ListingChange::Severity(crate::model::Severity::General),
                            ListingChange::Reason(format!("corrected at {now}")),
                        ],
                    },
                ),
                45..=56 => {
                    objection_of = Some(issuer);
                    (
                        rng.index(members),
                        NoticeKind::Object {
                            listing,
                            grounds: "the subject disputes the facts".into(),
                            respond_by: now.plus_ms(OBJECTION_WINDOW_MS + rng.below(5 * DAY_MS)),
                        },
                    )
                }
                57..=68 if !objections.is_empty() => {
                    let (objection, issuer) = objections[rng.index(objections.len())];
                    let outcome = match rng.below(4) {
                        0 => RulingOutcome::Upheld(Remedy::Withdraw),
                        1 => RulingOutcome::Upheld(Remedy::Correct(vec![ListingChange::Severity(
                            crate::model::Severity::Minor,
                        )])),
                        _ => RulingOutcome::Rejected,
                    };
                    (
                        issuer,
                        NoticeKind::Rule {
                            objection,
                            outcome,
                            reason: "verified against the case file".into(),
                        },
                    )
                }
                69..=88 if members > 1 => {
                    let measure = measures[rng.index(measures.len())].clone();
                    let action = match rng.below(5) {
                        0 => FeedbackAction::Lifted,
                        1 => FeedbackAction::Declined("not applicable to this tender".into()),
                        _ => FeedbackAction::Applied,
                    };
                    (
                        1 + rng.index(members - 1),
                        NoticeKind::Feedback {
                            listing,
                            measure,
                            action,
                        },
                    )
                }
                89..=95 => (
                    issuer,
                    NoticeKind::Repair {
                        listing,
                        reason: "rectified and fined".into(),
                        evidence: vec![],
                    },
                ),
                _ => (
                    issuer,
                    NoticeKind::Withdraw {
                        listing,
                        reason: "issued in error".into(),
                        restore_reputation: true,
                    },
                ),
            }
        };
        let is_listing = if let NoticeKind::List(l) = &kind {
            Some(l.measures.clone())
        } else {
            None
        };
        let Ok(issued) = replica.issue(&test.keys[author], kind, now) else {
            continue;
        };
        if let Some(measures) = is_listing {
            listings.push((issued.id, author, measures));
        }
        if let Some(issuer) = objection_of {
            objections.push((issued.id, issuer));
        }
        envelopes.push(issued.envelope);
    }
    Workload {
        envelopes,
        listings: listings.into_iter().map(|(id, ..)| id).collect(),
        end: now,
    }
}

/// Member `author`'s signed checkpoint of its log as `store` holds it,
/// cosigned by each member of `witnesses` at POSIX second `at`.
pub fn checkpoint_note<S: crate::store::Store>(
    test: &TestFederation,
    store: &S,
    author: usize,
    witnesses: &[usize],
    at: u64,
) -> credence_crypto::note::Note {
    use crate::checkpoint::{self, Checkpoint};
    let id = test.author(author);
    let head = store.head(&id).ok().flatten().expect("the log has a head");
    let c = Checkpoint::of_log(&test.federation.id(), &id, head.seq, head.root());
    let mut note = checkpoint::sign(&test.keys[author], &c).expect("signed");
    for w in witnesses {
        note.signatures.push(
            checkpoint::cosign(&test.keys[*w], &test.federation.id(), &note.text, at)
                .expect("cosigned"),
        );
    }
    note
}

/// The checkpoint reference of a note (what a request offers).
pub fn checkpoint_ref(
    test: &TestFederation,
    note: &credence_crypto::note::Note,
) -> crate::query::CheckpointRef {
    let verified = crate::checkpoint::verify_note(note, &test.federation).expect("valid");
    crate::query::CheckpointRef {
        author: verified.author,
        size: verified.checkpoint.size,
        root: verified.checkpoint.root.0,
    }
}
