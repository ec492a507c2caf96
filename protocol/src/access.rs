//! Who a node serves a listing to (DESIGN.md, "Accounts, roles and the
//! register of reads"): every member replicates every listing, and the
//! listing's distribution level, decided by its issuer, governs what each
//! node serves on every path (lookup, listing, query answer, export).
//! Past its sharing period a listing is served to auditors only. The
//! public surfaces follow [`crate::public::shown`] instead.

use crate::fold::ListingState;
use crate::model::{AuthorityId, Classification};

/// How far a viewer may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Clearance {
    /// Looks up and queries.
    Reader,
    /// Issues and rules, and sees what its own member issued at the
    /// auditors-only level.
    Operator,
    /// Sees everything.
    Auditor,
}

/// Who is served: an account of a member's node, or a member asking by
/// query (at reader clearance, or auditor for an auditing member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewer {
    /// The member whose node serves the account, or that asks.
    pub member: AuthorityId,
    /// The viewer's clearance.
    pub clearance: Clearance,
}

/// Whether `viewer` may be served `state`:
///
/// - an auditor, always;
/// - anyone else only while the listing is shared (not withdrawn,
///   repaired or expired), and then by level: `public` and `restricted`
///   to every member; `named` to the issuer and the members it names;
///   `auditors` to the issuer's own operators only.
pub fn serves(state: &ListingState, viewer: &Viewer) -> bool {
    if viewer.clearance == Clearance::Auditor {
        return true;
    }
    if !state.shared || !level_reaches(state, &viewer.member) {
        return false;
    }
    state.listing.classification != Classification::Auditors
        || viewer.clearance == Clearance::Operator
}

/// Whether the listing's level reaches `member` at all, whatever the
/// time: every member for `public` and `restricted`, the issuer and the
/// named readers for `named`, the issuer alone for `auditors`. A member's
/// apply and lift tasks come from the listings its level reaches (a lift
/// comes after the listing ended, when it is no longer shared).
pub fn level_reaches(state: &ListingState, member: &AuthorityId) -> bool {
    let listing = &state.listing;
    match listing.classification {
        Classification::Public | Classification::Restricted => true,
        Classification::Named => *member == state.issuer || listing.readers.contains(member),
        Classification::Auditors => *member == state.issuer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::FoldInput;
    use crate::fold::fold;
    use crate::model::{Notice, NoticeId, NoticeKind};
    use crate::testkit;
    use crate::time::{DAY_MS, Timestamp};
    use std::sync::Arc;

    const T0: Timestamp = Timestamp(1_767_225_600_000);

    fn state(level: Classification, readers: Vec<AuthorityId>, t: Timestamp) -> ListingState {
        let test = testkit::federation(3, 4);
        let mut listing = testkit::listing(1, "tax", T0);
        listing.classification = level;
        listing.readers = readers;
        let notice = Notice {
            version: crate::model::NOTICE_VERSION,
            federation: test.federation.id(),
            roster: 0,
            author: test.author(0),
            seq: 1,
            prev: NoticeId::default(),
            issued_at: T0,
            kind: NoticeKind::List(listing),
        };
        let input = FoldInput {
            id: NoticeId([1; 32]),
            notice: Arc::new(notice),
        };
        fold(&input, &[], t)
    }

    #[test]
    fn each_level_reaches_whom_it_says() {
        let test = testkit::federation(3, 4);
        let [issuer, named, other] = [0, 1, 2].map(|i| test.author(i));
        let viewer = |member, clearance| Viewer { member, clearance };
        let levels = [
            (Classification::Public, vec![]),
            (Classification::Restricted, vec![]),
            (Classification::Named, vec![named]),
            (Classification::Auditors, vec![]),
        ];
        for (level, readers) in levels {
            let active = state(level, readers.clone(), T0.plus_ms(DAY_MS));
            let expired = state(level, readers, T0.plus_ms(1_000 * DAY_MS));
            for clearance in [Clearance::Reader, Clearance::Operator, Clearance::Auditor] {
                for member in [issuer, named, other] {
                    let expected = match (clearance, level) {
                        (Clearance::Auditor, _) => true,
                        (_, Classification::Public | Classification::Restricted) => true,
                        (_, Classification::Named) => member != other,
                        (Clearance::Operator, Classification::Auditors) => member == issuer,
                        (_, Classification::Auditors) => false,
                    };
                    let who = viewer(member, clearance);
                    assert_eq!(serves(&active, &who), expected, "{level:?} {who:?}");
                    assert_eq!(
                        serves(&expired, &who),
                        clearance == Clearance::Auditor,
                        "past sharing: {level:?} {who:?}"
                    );
                }
            }
        }
    }
}
