//! What the public sees (DESIGN.md, "Accounts, roles and the register of
//! reads"): only listings in their publication period, and withdrawals
//! that restored a subject's reputation shown as public corrections for
//! the publication period the listing had; natural persons' identity
//! numbers masked to their first six and last four characters, their
//! names to the first character of each word.

use crate::fold::{ListingState, Status};
use crate::model::{
    Classification, LinkedPerson, NoticeKind, Remedy, RulingOutcome, Subject, SubjectKind,
};
use crate::time::Timestamp;

/// What the public sees of a listing at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// The listing, published.
    Listing,
    /// A public correction: the listing was withdrawn and the subject's
    /// reputation restored, at that time.
    Correction {
        /// When the withdrawal or the upheld objection was issued.
        at: Timestamp,
    },
}

impl Shown {
    /// Its name in public answers.
    pub fn name(self) -> &'static str {
        match self {
            Shown::Listing => "listing",
            Shown::Correction { .. } => "correction",
        }
    }
}

/// What the public sees of `state` at `t`, if anything: the listing while
/// it is published; a correction, until the end of its publication
/// period, when its issuer withdrew it restoring the subject's reputation
/// or upheld an objection by withdrawing it. A listing that was never
/// public is never shown, corrected or not.
pub fn shown(state: &ListingState, t: Timestamp) -> Option<Shown> {
    if state.published {
        return Some(Shown::Listing);
    }
    let public = state.listing.classification == Classification::Public;
    if state.status != Status::Withdrawn || !public || t >= state.listing.publish_until {
        return None;
    }
    state.history.iter().find_map(|entry| {
        let restores = match &entry.notice.kind {
            NoticeKind::Withdraw {
                restore_reputation, ..
            } => *restore_reputation,
            NoticeKind::Rule { outcome, .. } => {
                matches!(outcome, RulingOutcome::Upheld(Remedy::Withdraw))
            }
            _ => false,
        };
        (restores && entry.author == state.issuer).then_some(Shown::Correction {
            at: entry.issued_at,
        })
    })
}

/// An identifier with all but its first six and last four characters
/// masked; one of ten characters or fewer is masked whole.
pub fn mask_identity(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let hidden = chars.len() - 10;
    chars[..6]
        .iter()
        .chain(std::iter::repeat_n(&'*', hidden))
        .chain(&chars[chars.len() - 4..])
        .collect()
}

/// A name with every character but the first of each word masked.
pub fn mask_name(name: &str) -> String {
    name.split(' ')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => std::iter::once(first)
                    .chain(chars.map(|_| '*'))
                    .collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A linked person as the public sees them: masked as a natural person
/// is.
pub fn public_linked(person: &LinkedPerson) -> LinkedPerson {
    LinkedPerson {
        role: person.role,
        id: mask_identity(&person.id),
        name: mask_name(&person.name),
    }
}

/// A subject as the public sees it: a natural person masked, an
/// organisation in full.
pub fn public_subject(subject: &Subject) -> Subject {
    match subject.kind {
        SubjectKind::NaturalPerson => Subject {
            kind: subject.kind,
            id: mask_identity(&subject.id),
            name: mask_name(&subject.name),
        },
        _ => subject.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::fold;
    use crate::model::{Notice, NoticeId};
    use crate::replica::Replica;
    use crate::store::MemStore;
    use crate::testkit;

    #[test]
    fn identities_and_names_are_masked_as_the_design_says() {
        assert_eq!(mask_identity("11010519491231002X"), "110105********002X");
        assert_eq!(mask_identity("1234567890"), "**********");
        assert_eq!(mask_identity("12345678901"), "123456*8901");
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name("Li Wei"), "L* W**");
        let person = Subject {
            kind: SubjectKind::NaturalPerson,
            id: "11010519491231002X".into(),
            name: "王小明".into(),
        };
        let shown = public_subject(&person);
        assert_eq!(
            (shown.id.as_str(), shown.name.as_str()),
            ("110105********002X", "王**")
        );
        let company = Subject {
            kind: SubjectKind::LegalPerson,
            id: testkit::uscc(1),
            name: "Company 1 Ltd.".into(),
        };
        assert_eq!(public_subject(&company), company);
    }

    #[test]
    fn a_withdrawal_that_restores_reputation_is_a_correction_for_the_publication_period() {
        let test = testkit::federation(5, 2);
        let start = Timestamp(1_780_000_000_000);
        let mut replica = Replica::new(test.federation.clone(), MemStore::new());
        let listed = replica
            .issue(
                &test.keys[0],
                NoticeKind::List(testkit::listing(1, "food-drug", start)),
                start,
            )
            .unwrap();
        let at = start.plus_ms(10);
        let state = replica.listing_state(&listed.id, at).unwrap().unwrap();
        assert_eq!(shown(&state, at), Some(Shown::Listing));
        for restore in [false, true] {
            let mut copy = Replica::new(test.federation.clone(), MemStore::new());
            copy.ingest(&listed.envelope).unwrap();
            copy.issue(
                &test.keys[0],
                NoticeKind::Withdraw {
                    listing: listed.id,
                    reason: "the decision was annulled".into(),
                    restore_reputation: restore,
                },
                start.plus_ms(20),
            )
            .unwrap();
            let t = start.plus_ms(30);
            let state = copy.listing_state(&listed.id, t).unwrap().unwrap();
            let expected = restore.then_some(Shown::Correction {
                at: start.plus_ms(20),
            });
            assert_eq!(shown(&state, t), expected, "restore {restore}");
            // After the publication period, nothing.
            let late = state.listing.publish_until;
            let state = copy.listing_state(&listed.id, late).unwrap().unwrap();
            assert_eq!(shown(&state, late), None);
        }
        // A listing never public is never shown.
        let mut restricted = testkit::listing(2, "food-drug", start);
        restricted.classification = Classification::Restricted;
        let input = crate::fold::FoldInput {
            id: NoticeId([2; 32]),
            notice: std::sync::Arc::new(Notice {
                version: crate::model::NOTICE_VERSION,
                roster: 0,
                federation: test.federation.id(),
                author: test.author(0),
                seq: 1,
                prev: NoticeId::default(),
                issued_at: start,
                kind: NoticeKind::List(restricted),
            }),
        };
        let state = fold(&input, &[], at);
        assert_eq!(shown(&state, at), None);
    }
}
