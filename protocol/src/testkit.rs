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
        categories: CATEGORIES
            .iter()
            .map(|(code, name)| Category {
                code: code.to_string(),
                name: name.to_string(),
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
