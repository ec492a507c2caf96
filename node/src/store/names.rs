//! The name-search index ([`credence_protocol::names`]), beside the
//! replicated state: every two consecutive characters of each name a
//! listing gives (its subject's and its linked persons'), normalised,
//! with the listing (`x`). Entries are only added: a name changed by an
//! amendment keeps its old grams, and every candidate is checked against
//! the listing's names now.

use super::layout::{META, key};
use super::{SledStore, StoreError};
use credence_protocol::model::NoticeId;
use credence_protocol::names;

const NAME: u8 = b'x';
const META_NAMES: &[u8] = b"names-indexed";
/// The listings one gram's scan reads at most: a gram more common than
/// this narrows nothing and is passed over.
pub const GRAM_SCAN_MAX: usize = 20_000;
/// Grams of a search whose listings are scanned (spread over the search);
/// the others only check the candidates, one key each.
pub const GRAMS_SCANNED_MAX: usize = 8;

fn gram_prefix(gram: &str) -> Vec<u8> {
    key(NAME, &[gram.as_bytes(), &[0]])
}

/// The index keys of `name` for `listing`.
pub(super) fn name_keys(name: &str, listing: &NoticeId) -> Vec<Vec<u8>> {
    names::grams(&names::normalise(name))
        .iter()
        .map(|gram| {
            let mut k = gram_prefix(gram);
            k.extend_from_slice(&listing.0);
            k
        })
        .collect()
}

/// Indexes the names of every notice stored before the index existed
/// (once: a meta key says it is done). A ruling's correction is indexed
/// when its objection is found.
pub(super) fn backfill(tree: &sled::Db) -> Result<(), StoreError> {
    use credence_protocol::model::NoticeKind;
    if tree.contains_key(key(META, &[META_NAMES]))? {
        return Ok(());
    }
    // A stored notice is its arrival position (8 bytes), then its
    // envelope.
    let decode = |bytes: &[u8]| {
        let envelope = bytes.get(8..)?;
        let (body, _) = credence_protocol::codec::envelope_parts(envelope).ok()?;
        credence_protocol::codec::decode_stored_notice(body).ok()
    };
    let mut batch = sled::Batch::default();
    for item in tree.scan_prefix([super::layout::NOTICE]) {
        let (k, value) = item?;
        let Some(notice) = decode(&value) else {
            continue;
        };
        let id = NoticeId(
            k[1..]
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("notice key of {} bytes", k.len())))?,
        );
        let listing = match &notice.kind {
            NoticeKind::List(_) => Some(id),
            NoticeKind::Rule { objection, .. } => tree
                .get(key(super::layout::NOTICE, &[&objection.0]))?
                .and_then(|v| decode(&v))
                .and_then(|o| o.kind.listing_reference()),
            kind => kind.listing_reference(),
        };
        if let Some(listing) = listing {
            for name in notice.kind.names() {
                for k in name_keys(name, &listing) {
                    batch.insert(k, &[][..]);
                }
            }
        }
    }
    batch.insert(key(META, &[META_NAMES]), &[][..]);
    tree.apply_batch(batch)?;
    Ok(())
}

impl SledStore {
    /// The listings indexed under every gram of `grams`, and whether the
    /// search was too broad to list them all (every gram scanned more
    /// common than [`GRAM_SCAN_MAX`]): the rarest of at most
    /// [`GRAMS_SCANNED_MAX`] grams' listings, kept where the others index
    /// them too.
    pub fn name_candidates(&self, grams: &[String]) -> Result<(Vec<NoticeId>, bool), StoreError> {
        candidates_in(&self.tree, grams)
    }
}

impl super::SledSnapshot {
    /// [`SledStore::name_candidates`], read off the event loop (the name
    /// index is written to the tree directly, so the snapshot sees it).
    pub fn name_candidates(&self, grams: &[String]) -> Result<(Vec<NoticeId>, bool), StoreError> {
        candidates_in(&self.tree, grams)
    }
}

fn candidates_in(tree: &sled::Db, grams: &[String]) -> Result<(Vec<NoticeId>, bool), StoreError> {
    let mut rarest: Option<(usize, Vec<NoticeId>)> = None;
    let mut truncated = true;
    let step = grams.len().div_ceil(GRAMS_SCANNED_MAX).max(1);
    for (i, gram) in grams.iter().enumerate().step_by(step) {
        let prefix = gram_prefix(gram);
        let mut ids = Vec::new();
        for item in tree.scan_prefix(&prefix).take(GRAM_SCAN_MAX + 1) {
            let (k, _) = item?;
            let id: [u8; 32] = k
                .get(prefix.len()..)
                .and_then(|id| id.try_into().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("name key of {} bytes", k.len())))?;
            ids.push(NoticeId(id));
        }
        let complete = ids.len() <= GRAM_SCAN_MAX;
        ids.truncate(GRAM_SCAN_MAX);
        if rarest.as_ref().is_none_or(|(_, r)| ids.len() < r.len()) {
            truncated = !complete;
            rarest = Some((i, ids));
        }
    }
    let Some((skip, ids)) = rarest else {
        return Ok((Vec::new(), false));
    };
    let mut out = Vec::with_capacity(ids.len());
    'ids: for id in ids {
        for (i, gram) in grams.iter().enumerate() {
            if i == skip {
                continue;
            }
            let mut k = gram_prefix(gram);
            k.extend_from_slice(&id.0);
            if !tree.contains_key(k)? {
                continue 'ids;
            }
        }
        out.push(id);
    }
    Ok((out, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use credence_protocol::model::{FederationId, NOTICE_VERSION, Notice, NoticeKind};
    use credence_protocol::store::{Append, Head, Store};
    use credence_protocol::testkit;
    use credence_protocol::time::Timestamp;

    /// A store holding one listing of a company named `name`.
    fn store_with(dir: &std::path::Path, name: &str) -> (SledStore, NoticeId) {
        let test = testkit::federation(5, 1);
        let mut listing = testkit::listing(1, "food-drug", Timestamp(1_767_225_600_000));
        listing.subject.name = name.into();
        let notice = Notice {
            version: NOTICE_VERSION,
            roster: 0,
            federation: test.federation.id(),
            author: test.author(0),
            seq: 1,
            prev: NoticeId::default(),
            issued_at: Timestamp(1_767_225_600_000),
            kind: NoticeKind::List(listing),
        };
        let (id, bytes) = testkit::sign(&test.keys[0], &notice);
        let mut store = SledStore::open(dir, FederationId([5; 32])).expect("store");
        let mut frontier = credence_crypto::merkle::Frontier::new();
        frontier.push(id.digest());
        store
            .append(Append {
                id,
                envelope: &bytes,
                head: Head {
                    author: notice.author,
                    seq: 1,
                    id,
                    issued_at: notice.issued_at,
                    frontier,
                    budget: 0,
                    roster: 0,
                },
                listing: None,
                subject: None,
                linked: Vec::new(),
                names: notice.kind.names().into_iter().map(String::from).collect(),
            })
            .expect("append");
        store.flush().expect("flush");
        (store, id)
    }

    fn found(store: &SledStore, query: &str) -> Vec<NoticeId> {
        let text = names::search_text(query).expect("a search");
        store
            .name_candidates(&names::grams(&text))
            .expect("search")
            .0
    }

    // A listing is found by any part of its name once stored, and again
    // after the index is lost and rebuilt from the notices at open.
    #[test]
    fn names_are_indexed_on_append_and_rebuilt_at_open() {
        let dir = tempfile::tempdir().expect("dir");
        let id = {
            let (store, id) = store_with(dir.path(), "福州闽江食品有限公司 (Minjiang Food)");
            assert_eq!(found(&store, "闽江食品"), [id]);
            assert_eq!(found(&store, "minjiang"), [id]);
            assert!(found(&store, "厦门").is_empty());
            // The index is lost, as in a store written before it existed.
            let mut batch = sled::Batch::default();
            for item in store.tree.scan_prefix([NAME]) {
                batch.remove(item.expect("key").0);
            }
            batch.remove(key(META, &[META_NAMES]));
            store.tree.apply_batch(batch).expect("removed");
            assert!(found(&store, "闽江食品").is_empty());
            id
        };
        let store = SledStore::open(dir.path(), FederationId([5; 32])).expect("reopen");
        assert_eq!(found(&store, "闽江食品"), [id]);
        assert_eq!(found(&store, "food"), [id]);
    }
}
