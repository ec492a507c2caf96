//! The name-search index ([`credence_protocol::names`]), beside the
//! replicated state: every two consecutive characters of each name a
//! listing gives (its subject's and its linked persons'), normalised, with
//! the listing (`x`). Entries are only added: a name changed by an
//! amendment keeps its old grams, and every candidate is checked against
//! the listing's names now.
//!
//! The index is written in blocks: appends gather their listings by gram
//! ([`Unwritten`]) across layers, and once [`BLOCK_POSTINGS`] pairs of
//! gram and listing are gathered (or the store closes), a thread of its
//! own writes one record per gram (`x`, gram, 0, the block's number; the
//! sorted ids of its listings), off the path of the flushes that
//! acknowledge notices. A listing costs the store no insert of its own per
//! gram of its name, and a gram shared by many listings one insert for
//! all of them. A block's number is the store position of the newest
//! notice it indexes: larger than every block before it. Stores written
//! before blocks hold one record per gram and listing (`x`, gram, 0,
//! listing id; empty); reads take both.
//!
//! Searches read what is gathered, and the block being written, beside
//! sled: a listing is found from its append on. The gathered postings are
//! not durable: after a block comes, under `y`, the seq of each log up to
//! which the blocks index its notices (the commit record of the index),
//! and opening indexes again the notices past it, read from the logs (a
//! mark past a log's head, whose notices a crash took back, stands at the
//! head). A mark is also written once [`MARK_NOTICES_MAX`] notices are
//! past it, so that opening reads again a bounded number of notices
//! however few names they give.

use super::layout::{META, NOTICE, id_from, key};
use super::{SledStore, StoreError};
use credence_protocol::model::{AuthorityId, NoticeId};
use credence_protocol::names;
use credence_protocol::store::Head;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

const NAME: u8 = b'x';
/// The seq of each log up to which the blocks written index its notices:
/// after every `x` key, so a layer writes it after its block.
const THROUGH: u8 = b'y';
/// Pairs of gram and listing gathered before they are written as a block.
/// Opening indexes again at most the notices of one block's worth.
pub(super) const BLOCK_POSTINGS: usize = 8_192;
/// Notices past the index's mark after which the gathered postings are
/// written as a block (and the mark moved) however few they are: notices
/// that give no name (feedback, say) gather none, and opening reads again
/// every notice past the mark.
pub(super) const MARK_NOTICES_MAX: u64 = 8_192;
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

    /// The block's records, numbered `block`.
    fn records(&self, block: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.grams
            .iter()
            .map(|(gram, listings)| {
                let mut k = gram_prefix(gram);
                k.extend_from_slice(&block.to_be_bytes());
                let mut ids = Vec::with_capacity(32 * listings.len());
                for id in listings {
                    ids.extend_from_slice(&id.0);
                }
                (k, ids)
            })
            .collect()
    }
}

/// Listings by gram per block handed to the writer.
type Postings = BTreeMap<String, BTreeSet<NoticeId>>;

/// The name index's postings not yet in sled, shared by the store and its
/// snapshots: those gathered for the next block, and the block being
/// written, kept until it is (a search reads them meanwhile).
#[derive(Default)]
pub(super) struct Unwritten {
    gathering: Pending,
    handed: VecDeque<(u64, Postings)>,
}

/// [`Unwritten`], shared.
pub(super) type Names = Arc<Mutex<Unwritten>>;

/// Locks the unwritten postings. Every section holding the lock only
/// moves postings between maps and cannot leave them half changed, so a
/// panic elsewhere that poisoned it leaves them usable.
pub(super) fn lock(names: &Mutex<Unwritten>) -> std::sync::MutexGuard<'_, Unwritten> {
    names.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Unwritten {
    /// Adds `name`'s grams for `listing` to the next block.
    pub(super) fn add(&mut self, name: &str, listing: &NoticeId) {
        self.gathering.add(name, listing);
    }

    /// The pairs of gram and listing gathered for the next block.
    pub(super) fn postings(&self) -> usize {
        self.gathering.postings()
    }

    /// The block of what was gathered, numbered `block`, as records; its
    /// postings stay readable here until it is written
    /// ([`Unwritten::written`]).
    pub(super) fn hand(&mut self, block: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        let postings = std::mem::take(&mut self.gathering);
        let records = postings.records(block);
        self.handed.push_back((block, postings.grams));
        records
    }

    /// Forgets block `block`: sled holds it.
    pub(super) fn written(&mut self, block: u64) {
        self.handed.retain(|(number, _)| *number != block);
    }

    /// The listings under `gram` not yet in sled.
    fn listings(&self, gram: &str) -> impl Iterator<Item = &NoticeId> {
        self.handed
            .iter()
            .map(|(_, grams)| grams)
            .chain(std::iter::once(&self.gathering.grams))
            .filter_map(move |grams| grams.get(gram))
            .flatten()
    }
}

/// Writes block `block`'s records, then the index's `mark` after them
/// (sled recovers a prefix of its writes: a mark is never kept without
/// its block), and tells the unwritten postings it is written.
pub(super) fn write_block(
    tree: &sled::Db,
    unwritten: &Mutex<Unwritten>,
    block: u64,
    records: Vec<(Vec<u8>, Vec<u8>)>,
    mark: (Vec<u8>, Vec<u8>),
) -> Result<(), StoreError> {
    for (k, v) in records {
        tree.insert(k, v)?;
    }
    tree.insert(mark.0, mark.1)?;
    lock(unwritten).written(block);
    Ok(())
}

/// The `y` record: per log, its author and the seq up to which the blocks
/// index its notices.
pub(super) fn through_record(through: &BTreeMap<AuthorityId, u64>) -> (Vec<u8>, Vec<u8>) {
    let mut value = Vec::with_capacity(40 * through.len());
    for (author, seq) in through {
        value.extend_from_slice(&author.0);
        value.extend_from_slice(&seq.to_be_bytes());
    }
    (vec![THROUGH], value)
}

fn decode_through(value: &[u8]) -> Result<BTreeMap<AuthorityId, u64>, StoreError> {
    if !value.len().is_multiple_of(40) {
        return Err(StoreError::Corrupt(format!(
            "name index mark of {} bytes",
            value.len()
        )));
    }
    let mut through = BTreeMap::new();
    for entry in value.chunks_exact(40) {
        let (author, seq) = entry.split_at(32);
        let seq: [u8; 8] = seq
            .try_into()
            .map_err(|_| StoreError::Corrupt("name index mark".into()))?;
        through.insert(AuthorityId(id_from(author)?.0), u64::from_be_bytes(seq));
    }
    Ok(through)
}

/// At open, after torn layers are removed: where the blocks stand, and
/// the names of the notices past it (their block was never written, or a
/// crash lost it) gathered again. A store written before the mark had a
/// block in every layer, so its blocks index every log up to its head.
pub(super) fn recover(
    tree: &sled::Db,
    heads: &BTreeMap<AuthorityId, Head>,
) -> Result<(Unwritten, BTreeMap<AuthorityId, u64>), StoreError> {
    let stored = match tree.get([THROUGH])? {
        Some(value) => Some(decode_through(&value)?),
        None => None,
    };
    // A mark past a head (its log was cut, or a crash tore the layer after
    // the mark) stands at the head: the notices stored later under those
    // seqs are not indexed yet.
    let through: BTreeMap<AuthorityId, u64> = heads
        .values()
        .map(|head| {
            let seq = stored
                .as_ref()
                .map_or(head.seq, |s| s.get(&head.author).copied().unwrap_or(0));
            (head.author, seq.min(head.seq))
        })
        .filter(|(_, seq)| *seq > 0)
        .collect();
    let mut unwritten = Unwritten::default();
    let logs = super::view::View {
        tree,
        layers: Vec::new(),
        count: 0,
    };
    for head in heads.values() {
        let from = through.get(&head.author).copied().unwrap_or(0);
        let behind = usize::try_from(head.seq - from).unwrap_or(usize::MAX);
        let ids = logs.log_range(&head.author, from + 1, behind)?;
        if ids.len() != behind {
            return Err(StoreError::Corrupt(format!(
                "log of {} holds {} of its seqs past {from}, its head says {behind}",
                head.author,
                ids.len()
            )));
        }
        for id in ids {
            let record = tree
                .get(key(NOTICE, &[&id.0]))?
                .ok_or_else(|| StoreError::Corrupt(format!("notice {id} of a log missing")))?;
            if let Some((listing, names)) = indexed(tree, &id, &record)? {
                for name in names {
                    unwritten.add(&name, &listing);
                }
            }
        }
    }
    if stored.as_ref() != Some(&through) {
        let (k, v) = through_record(&through);
        tree.insert(k, v)?;
    }
    Ok((unwritten, through))
}

/// The listing a stored notice's names are indexed under, and those
/// names (none: it gives no name). A stored notice is its arrival
/// position (8 bytes), then its envelope; a ruling's correction is
/// indexed under its objection's listing.
fn indexed(
    tree: &sled::Db,
    id: &NoticeId,
    record: &[u8],
) -> Result<Option<(NoticeId, Vec<String>)>, StoreError> {
    use credence_protocol::model::NoticeKind;
    let Some(notice) = decode_stored(record) else {
        return Ok(None);
    };
    let listing = match &notice.kind {
        NoticeKind::List(_) => Some(*id),
        NoticeKind::Rule { objection, .. } => tree
            .get(key(NOTICE, &[&objection.0]))?
            .and_then(|v| decode_stored(&v))
            .and_then(|o| o.kind.listing_reference()),
        kind => kind.listing_reference(),
    };
    let names: Vec<String> = notice.kind.names().into_iter().map(String::from).collect();
    Ok(listing.filter(|_| !names.is_empty()).map(|l| (l, names)))
}

fn decode_stored(record: &[u8]) -> Option<credence_protocol::model::Notice> {
    let envelope = record.get(8..)?;
    let (body, _) = credence_protocol::codec::envelope_parts(envelope).ok()?;
    credence_protocol::codec::decode_stored_notice(body).ok()
}

/// Indexes the names of every notice stored before the index existed
/// (once: a meta key says it is done), in blocks of
/// [`BACKFILL_BLOCK_NOTICES`] notices, each numbered by the largest
/// position among them. A ruling's correction is indexed when its
/// objection is found. Nothing else writes while a store opens: a backfill
/// a crash stopped is done again alike.
pub(super) fn backfill(tree: &sled::Db) -> Result<(), StoreError> {
    if tree.contains_key(key(META, &[META_NAMES]))? {
        return Ok(());
    }
    let write = |pending: &mut Pending, block: u64| -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in std::mem::take(pending).records(block) {
            batch.insert(k, v);
        }
        tree.apply_batch(batch)?;
        Ok(())
    };
    let mut pending = Pending::default();
    let (mut notices, mut block) = (0, 0u64);
    for item in tree.scan_prefix([NOTICE]) {
        let (k, value) = item?;
        let id = id_from(&k[1..])?;
        let position = value
            .get(..8)
            .and_then(|p| p.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::Corrupt(format!("notice {id} without its position")))?;
        if let Some((listing, names)) = indexed(tree, &id, &value)? {
            for name in names {
                pending.add(&name, &listing);
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
        candidates_in(&self.tree, &self.names, grams)
    }
}

impl super::SledSnapshot {
    /// [`SledStore::name_candidates`], read off the event loop (the
    /// snapshot shares sled and the unwritten postings with the store, so
    /// it sees listings indexed after it was taken too).
    pub fn name_candidates(&self, grams: &[String]) -> Result<(Vec<NoticeId>, bool), StoreError> {
        candidates_in(&self.tree, &self.names, grams)
    }
}

/// The listings indexed under `gram`, at most [`GRAM_SCAN_MAX`] + 1 of
/// them (more means the gram narrows nothing): those not yet in sled,
/// then sled's.
fn gram_listings(
    tree: &sled::Db,
    unwritten: &Mutex<Unwritten>,
    gram: &str,
) -> Result<BTreeSet<NoticeId>, StoreError> {
    let prefix = gram_prefix(gram);
    let mut ids: BTreeSet<NoticeId> = lock(unwritten)
        .listings(gram)
        .take(GRAM_SCAN_MAX + 1)
        .copied()
        .collect();
    if ids.len() > GRAM_SCAN_MAX {
        return Ok(ids);
    }
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

fn candidates_in(
    tree: &sled::Db,
    unwritten: &Mutex<Unwritten>,
    grams: &[String],
) -> Result<(Vec<NoticeId>, bool), StoreError> {
    let step = grams.len().div_ceil(GRAMS_SCANNED_MAX).max(1);
    let mut complete: Vec<BTreeSet<NoticeId>> = Vec::new();
    let mut rarest_broad: Option<BTreeSet<NoticeId>> = None;
    for gram in grams.iter().step_by(step) {
        let ids = gram_listings(tree, unwritten, gram)?;
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
        if name.is_empty() {
            // A notice that gives no name at all.
            listing.linked.clear();
        }
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
            let mut store = store;
            store.write_names_now().expect("block");
            store.flush().expect("flush");
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

    // Listings are found whether their postings are gathered, handed to
    // the writer or written as blocks, intersected over the search's
    // grams; a record of a store written before blocks is read beside
    // them; a gram too common to narrow anything makes the search too
    // broad; a damaged record is refused, naming what it is.
    #[test]
    fn blocks_and_gathered_postings_are_intersected() {
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
            // A block each for the first two; the third and the fourth
            // stay gathered.
            if seq < 3 {
                store.write_names_now().expect("block");
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
        let blocks = |store: &SledStore| store.tree.scan_prefix(gram_prefix("公司")).count();
        assert_eq!(
            blocks(&store),
            2,
            "one block of 公司 for each of the first two"
        );
        assert!(lock(&store.names).postings() > 0);
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
        // Written as a third block, they are found the same.
        store.write_names_now().expect("block");
        store.flush().expect("flush");
        assert_eq!(blocks(&store), 3);
        assert_eq!(lock(&store.names).postings(), 0);
        assert_eq!(found(&store, "福州"), sorted(vec![ids[0], ids[2]]));
        assert_eq!(found(&store, "food"), [ids[3]]);

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

    /// The name index's mark in `store`.
    fn mark(store: &SledStore) -> BTreeMap<AuthorityId, u64> {
        decode_through(&store.tree.get([THROUGH]).expect("read").expect("a mark")).expect("decoded")
    }

    // Postings gathered but never written (the process died before their
    // block) are gathered again at open from the notices past the index's
    // mark; a mark past a log's head (a cut log) stands at the head; the
    // block written at close moves the mark to the heads.
    #[test]
    fn names_not_yet_in_a_block_are_indexed_again_at_open() {
        let dir = tempfile::tempdir().expect("dir");
        let test = testkit::federation(5, 1);
        let author = test.author(0);
        let open = || SledStore::open(dir.path(), FederationId([5; 32])).expect("store");
        let mut store = open();
        let mut prev = Default::default();
        let first = append_named(&mut store, &test, 1, &mut prev, "福州闽江食品有限公司");
        store.write_names_now().expect("block");
        store.flush().expect("flush");
        assert_eq!(mark(&store), BTreeMap::from([(author, 1)]));
        let second = append_named(&mut store, &test, 2, &mut prev, "厦门海沧建材有限公司");
        let third = append_named(&mut store, &test, 3, &mut prev, "Minjiang Food");
        store.flush().expect("flush");
        assert_eq!(found(&store, "海沧建材"), [second]);
        // The process dies: what was gathered is lost with it, and no
        // close writes a block or moves the mark (told that the mark
        // stands at the heads already, the dropped store writes nothing).
        *lock(&store.names) = Unwritten::default();
        assert!(found(&store, "海沧建材").is_empty());
        store.names_through = store.heads.iter().map(|(a, h)| (*a, h.seq)).collect();
        drop(store);

        let store = open();
        assert_eq!(mark(&store), BTreeMap::from([(author, 1)]));
        assert_eq!(found(&store, "海沧建材"), [second]);
        assert_eq!(found(&store, "minjiang food"), [third]);
        assert_eq!(found(&store, "福州闽江"), [first]);
        drop(store);

        // Closed, the store wrote them as a block and moved the mark; a
        // mark past the head is brought back to it.
        let store = open();
        assert_eq!(mark(&store), BTreeMap::from([(author, 3)]));
        assert_eq!(lock(&store.names).postings(), 0);
        assert_eq!(found(&store, "海沧建材"), [second]);
        let (k, v) = through_record(&BTreeMap::from([(author, 9)]));
        store.tree.insert(k, v).expect("insert");
        drop(store);
        let store = open();
        assert_eq!(mark(&store), BTreeMap::from([(author, 3)]));
        assert_eq!(lock(&store.names).postings(), 0);

        // A damaged mark is refused, naming what it is.
        store
            .tree
            .insert([THROUGH], &[1, 2, 3][..])
            .expect("insert");
        drop(store);
        let error = SledStore::open(dir.path(), FederationId([5; 32]))
            .err()
            .expect("a damaged mark");
        assert!(error.to_string().contains("name index mark"), "{error}");
    }

    // Notices that give no name gather no postings; the mark still moves
    // once `MARK_NOTICES_MAX` of them are past it, and at close, so that
    // opening reads again a bounded number of notices.
    #[test]
    fn the_mark_moves_past_notices_that_give_no_name() {
        let dir = tempfile::tempdir().expect("dir");
        let test = testkit::federation(5, 1);
        let author = test.author(0);
        let open = || SledStore::open(dir.path(), FederationId([5; 32])).expect("store");
        let mut store = open();
        let mut prev = Default::default();
        let named = append_named(&mut store, &test, 1, &mut prev, "福州闽江食品有限公司");
        store.write_names_now().expect("block");
        assert_eq!(mark(&store), BTreeMap::from([(author, 1)]));
        let last = MARK_NOTICES_MAX + 1;
        for seq in 2..=last {
            append_named(&mut store, &test, seq, &mut prev, "");
            if seq % 1024 == 0 {
                store.flush().expect("flush");
            }
        }
        store.names_settled().expect("settled");
        assert_eq!(lock(&store.names).postings(), 0, "no name given");
        assert_eq!(
            mark(&store),
            BTreeMap::from([(author, 1)]),
            "fewer than MARK_NOTICES_MAX past the mark"
        );
        store.flush().expect("flush");
        store.names_settled().expect("settled");
        assert_eq!(mark(&store), BTreeMap::from([(author, last)]));
        for seq in last + 1..=last + 5 {
            append_named(&mut store, &test, seq, &mut prev, "");
        }
        store.flush().expect("flush");
        store.names_settled().expect("settled");
        assert_eq!(mark(&store), BTreeMap::from([(author, last)]));
        drop(store);
        let store = open();
        assert_eq!(
            mark(&store),
            BTreeMap::from([(author, last + 5)]),
            "moved at close"
        );
        assert_eq!(found(&store, "闽江食品"), [named]);
    }
}
