//! The name-search index ([`credence_protocol::names`]), beside the
//! replicated state: every two consecutive characters of each name a
//! listing gives (its subject's and its linked persons'), normalised, with
//! the listing (`x`). Entries are only added: a name changed by an
//! amendment keeps its old grams, and every candidate is checked against
//! the listing's names now.
//!
//! The index is written in blocks: the appends of one layer gather their
//! listings by gram, and each gram gets one record for the layer (`x`,
//! gram, 0, the block's number; the sorted ids of its listings), so a
//! listing costs the store no insert of its own per gram of its name. A
//! block's number is the store position of the layer's last notice:
//! unique among the layers written, larger than every block before it.
//! Stores written before blocks hold one record per gram and listing
//! (`x`, gram, 0, listing id; empty); reads take both.

use super::layout::{META, id_from, key};
use super::{SledStore, StoreError};
use credence_protocol::model::NoticeId;
use credence_protocol::names;
use std::collections::{BTreeMap, BTreeSet};

const NAME: u8 = b'x';
const META_NAMES: &[u8] = b"names-indexed";
/// The listings one gram's scan reads at most: a gram more common than
/// this narrows nothing and is passed over.
pub const GRAM_SCAN_MAX: usize = 20_000;
/// Grams of a search whose listings are scanned (spread over the search)
/// and intersected; the caller checks every candidate's names against the
/// whole search.
pub const GRAMS_SCANNED_MAX: usize = 8;
/// Notices of a store written before the index whose names one backfill
/// block holds.
const BACKFILL_BLOCK_NOTICES: usize = 10_000;

fn gram_prefix(gram: &str) -> Vec<u8> {
    key(NAME, &[gram.as_bytes(), &[0]])
}

/// Listings by gram, gathered for one block.
#[derive(Default)]
pub(super) struct Pending {
    grams: BTreeMap<String, BTreeSet<NoticeId>>,
    postings: usize,
}

impl Pending {
    /// Adds `name`'s grams for `listing`.
    pub(super) fn add(&mut self, name: &str, listing: &NoticeId) {
        for gram in names::grams(&names::normalise(name)) {
            if self.grams.entry(gram).or_default().insert(*listing) {
                self.postings += 1;
            }
        }
    }

    /// The (gram, listing) pairs gathered.
    pub(super) fn postings(&self) -> usize {
        self.postings
    }

    /// The block's records, numbered `block`; empties the gathering.
    pub(super) fn take(&mut self, block: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.postings = 0;
        std::mem::take(&mut self.grams)
            .into_iter()
            .map(|(gram, listings)| {
                let mut k = gram_prefix(&gram);
                k.extend_from_slice(&block.to_be_bytes());
                let mut ids = Vec::with_capacity(32 * listings.len());
                for id in &listings {
                    ids.extend_from_slice(&id.0);
                }
                (k, ids)
            })
            .collect()
    }
}

/// Indexes the names of every notice stored before the index existed
/// (once: a meta key says it is done), in blocks of
/// [`BACKFILL_BLOCK_NOTICES`] notices, each numbered by the largest
/// position among them. A ruling's correction is indexed when its
/// objection is found. Nothing else writes while a store opens: a backfill
/// a crash stopped is done again alike.
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
    let write = |pending: &mut Pending, block: u64| -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in pending.take(block) {
            batch.insert(k, v);
        }
        tree.apply_batch(batch)?;
        Ok(())
    };
    let mut pending = Pending::default();
    let (mut notices, mut block) = (0, 0u64);
    for item in tree.scan_prefix([super::layout::NOTICE]) {
        let (k, value) = item?;
        let Some(notice) = decode(&value) else {
            continue;
        };
        let id = id_from(&k[1..])?;
        let position = value
            .get(..8)
            .and_then(|p| p.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::Corrupt(format!("notice {id} without its position")))?;
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
                pending.add(name, &listing);
            }
        }
        block = block.max(position);
        notices += 1;
        if notices % BACKFILL_BLOCK_NOTICES == 0 {
            write(&mut pending, block)?;
            block = 0;
        }
    }
    write(&mut pending, block)?;
    tree.insert(key(META, &[META_NAMES]), &[][..])?;
    Ok(())
}

impl SledStore {
    /// The listings indexed under the grams of `grams`, and whether the
    /// search was too broad to list them all (every gram scanned more
    /// common than [`GRAM_SCAN_MAX`]): of at most [`GRAMS_SCANNED_MAX`]
    /// grams spread over the search, the listings of the rarest kept where
    /// the others (those not too common) index them too.
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

/// The listings indexed under `gram`, at most [`GRAM_SCAN_MAX`] + 1 of
/// them (more means the gram narrows nothing).
fn gram_listings(tree: &sled::Db, gram: &str) -> Result<BTreeSet<NoticeId>, StoreError> {
    let prefix = gram_prefix(gram);
    let mut ids = BTreeSet::new();
    for item in tree.scan_prefix(&prefix) {
        let (k, v) = item?;
        match k.len() - prefix.len() {
            // One listing (a store written before blocks).
            32 if v.is_empty() => {
                ids.insert(id_from(&k[prefix.len()..])?);
            }
            // A block: its listings' ids.
            8 if !v.is_empty() && v.len() % 32 == 0 => {
                for id in v.chunks_exact(32) {
                    ids.insert(id_from(id)?);
                }
            }
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "name index record of a {}-byte key and a {}-byte value",
                    k.len(),
                    v.len()
                )));
            }
        }
        if ids.len() > GRAM_SCAN_MAX {
            break;
        }
    }
    Ok(ids)
}

fn candidates_in(tree: &sled::Db, grams: &[String]) -> Result<(Vec<NoticeId>, bool), StoreError> {
    let step = grams.len().div_ceil(GRAMS_SCANNED_MAX).max(1);
    let mut complete: Vec<BTreeSet<NoticeId>> = Vec::new();
    let mut rarest_broad: Option<BTreeSet<NoticeId>> = None;
    for gram in grams.iter().step_by(step) {
        let ids = gram_listings(tree, gram)?;
        if ids.len() <= GRAM_SCAN_MAX {
            complete.push(ids);
        } else if rarest_broad.as_ref().is_none_or(|r| ids.len() < r.len()) {
            rarest_broad = Some(ids);
        }
    }
    // The rarest complete gram's listings, kept where every other complete
    // gram indexes them too.
    complete.sort_by_key(BTreeSet::len);
    let mut lists = complete.into_iter();
    match lists.next() {
        Some(rarest) => {
            let others: Vec<BTreeSet<NoticeId>> = lists.collect();
            let found = rarest
                .into_iter()
                .filter(|id| others.iter().all(|other| other.contains(id)))
                .collect();
            Ok((found, false))
        }
        // Every gram scanned is too common: the first listings of the
        // rarest, and the search was too broad to list them all.
        None => Ok(match rarest_broad {
            Some(ids) => (ids.into_iter().take(GRAM_SCAN_MAX).collect(), true),
            None => (Vec::new(), false),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credence_protocol::model::{FederationId, NOTICE_VERSION, Notice, NoticeKind};
    use credence_protocol::store::{Append, Head, Store};
    use credence_protocol::testkit;
    use credence_protocol::time::Timestamp;

    /// Appends a listing of a company named `name` as seq `seq` of the
    /// test federation's first authority.
    fn append_named(
        store: &mut SledStore,
        test: &testkit::TestFederation,
        seq: u64,
        prev: &mut (NoticeId, credence_crypto::merkle::Frontier),
        name: &str,
    ) -> NoticeId {
        let mut listing = testkit::listing(seq, "food-drug", Timestamp(1_767_225_600_000));
        listing.subject.name = name.into();
        let notice = Notice {
            version: NOTICE_VERSION,
            roster: 0,
            federation: test.federation.id(),
            author: test.author(0),
            seq,
            prev: prev.0,
            issued_at: Timestamp(1_767_225_600_000),
            kind: NoticeKind::List(listing),
        };
        let (id, bytes) = testkit::sign(&test.keys[0], &notice);
        prev.1.push(id.digest());
        prev.0 = id;
        store
            .append(Append {
                id,
                envelope: &bytes,
                head: Head {
                    author: notice.author,
                    seq,
                    id,
                    issued_at: notice.issued_at,
                    frontier: prev.1.clone(),
                    budget: 0,
                    roster: 0,
                },
                listing: None,
                subject: None,
                linked: Vec::new(),
                names: notice.kind.names().into_iter().map(String::from).collect(),
            })
            .expect("append");
        id
    }

    /// A store holding one listing of a company named `name`.
    fn store_with(dir: &std::path::Path, name: &str) -> (SledStore, NoticeId) {
        let test = testkit::federation(5, 1);
        let mut store = SledStore::open(dir, FederationId([5; 32])).expect("store");
        let mut prev = Default::default();
        let id = append_named(&mut store, &test, 1, &mut prev, name);
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

    // Listings written in several layers are found through the blocks of
    // every layer, intersected over the search's grams; a record of a
    // store written before blocks is read beside them; a gram too common
    // to narrow anything makes the search too broad; a damaged record is
    // refused, naming what it is.
    #[test]
    fn blocks_of_several_layers_are_intersected() {
        let dir = tempfile::tempdir().expect("dir");
        let test = testkit::federation(5, 1);
        let mut store = SledStore::open(dir.path(), FederationId([5; 32])).expect("store");
        let mut prev = Default::default();
        let mut ids = Vec::new();
        for (seq, name) in [
            (1, "福州闽江食品有限公司"),
            (2, "厦门海沧食品有限公司"),
            (3, "福州马尾船舶有限公司"),
        ] {
            ids.push(append_named(&mut store, &test, seq, &mut prev, name));
            // One layer each, and the third shares its block with the
            // fourth.
            if seq < 3 {
                store.flush().expect("flush");
            }
        }
        ids.push(append_named(
            &mut store,
            &test,
            4,
            &mut prev,
            "Minjiang Food",
        ));
        store.flush().expect("flush");
        let blocks = store.tree.scan_prefix(gram_prefix("公司")).count();
        assert_eq!(blocks, 3, "one block of 公司 per layer");
        let sorted = |mut v: Vec<NoticeId>| {
            v.sort();
            v
        };
        assert_eq!(found(&store, "食品"), sorted(vec![ids[0], ids[1]]));
        assert_eq!(found(&store, "福州"), sorted(vec![ids[0], ids[2]]));
        assert_eq!(found(&store, "福州闽江"), [ids[0]]);
        assert_eq!(found(&store, "有限公司"), sorted(ids[..3].to_vec()));
        assert_eq!(found(&store, "food"), [ids[3]]);
        assert!(found(&store, "闽江船舶").is_empty());

        // A record of the older layout: one listing, an empty value.
        let old = NoticeId([7; 32]);
        let mut k = gram_prefix("食品");
        k.extend_from_slice(&old.0);
        store.tree.insert(k, &[][..]).expect("insert");
        assert_eq!(found(&store, "食品"), sorted(vec![ids[0], ids[1], old]));

        // A gram in more listings than a scan reads.
        let mut k = gram_prefix("zz");
        k.extend_from_slice(&u64::MAX.to_be_bytes());
        let many: Vec<u8> = (0..=GRAM_SCAN_MAX as u32)
            .flat_map(|n| {
                let mut id = [0u8; 32];
                id[..4].copy_from_slice(&n.to_be_bytes());
                id
            })
            .collect();
        store.tree.insert(k, many).expect("insert");
        let (listed, broad) = store.name_candidates(&names::grams("zz")).expect("search");
        assert!(broad);
        assert_eq!(listed.len(), GRAM_SCAN_MAX);
        // With a rarer gram beside it, the search is exact again.
        let (listed, broad) = store
            .name_candidates(&names::grams("foodzz"))
            .expect("search");
        assert!(!broad);
        assert!(listed.is_empty());

        let mut k = gram_prefix("船舶");
        k.extend_from_slice(&[1, 2, 3]);
        store.tree.insert(k, &[9][..]).expect("insert");
        let error = store
            .name_candidates(&names::grams("船舶"))
            .expect_err("a damaged record");
        assert!(error.to_string().contains("name index record"), "{error}");
    }
}
