//! Reads: one view over the buffered layers (newest winning) and sled,
//! shared by the store and by a read-only snapshot another thread folds
//! from.

use super::layout::*;
use super::{Entries, Layer, StoreError};
use credence_protocol::model::{AuthorityId, NoticeId, RosterHash, SUBJECT_KEY_BYTES, SubjectKey};
use credence_protocol::store::{Append, ForkEvidence, Head, Orphan, Store};
use std::collections::BTreeMap;

/// What a read sees: buffered layers (later ones win) over sled.
pub(super) struct View<'a> {
    pub(super) tree: &'a sled::Db,
    /// Oldest first.
    pub(super) layers: Vec<&'a BTreeMap<Vec<u8>, Vec<u8>>>,
    /// Notices stored when the view was taken: the arrival order stops
    /// there.
    pub(super) count: u64,
}

impl View<'_> {
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        for layer in self.layers.iter().rev() {
            if let Some(value) = layer.get(key) {
                return Ok(Some(value.clone()));
            }
        }
        Ok(self.tree.get(key)?.map(|value| value.to_vec()))
    }

    /// Entries with keys in `start..=end`, buffered layers winning over
    /// sled (a layer still on its way to sled holds the newest version of
    /// a log page), in key order, at most `limit`.
    pub(super) fn range(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.tree.range(start..=end).take(limit) {
            let (k, v) = item?;
            merged.insert(k.to_vec(), v.to_vec());
        }
        for layer in &self.layers {
            for (k, v) in layer.range(start.to_vec()..=end.to_vec()).take(limit) {
                merged.insert(k.clone(), v.clone());
            }
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    /// Every entry whose key starts with `prefix`, buffered layers winning.
    pub(super) fn prefix(&self, prefix: &[u8]) -> Result<Entries, StoreError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.tree.scan_prefix(prefix) {
            let (k, v) = item?;
            merged.insert(k.to_vec(), v.to_vec());
        }
        for layer in &self.layers {
            let entries = layer
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix));
            for (k, v) in entries {
                merged.insert(k.clone(), v.clone());
            }
        }
        Ok(merged.into_iter().collect())
    }

    pub(super) fn scan_ids(
        &self,
        prefix: Vec<u8>,
        skip: usize,
    ) -> Result<Vec<NoticeId>, StoreError> {
        self.prefix(&prefix)?
            .into_iter()
            .map(|(key, _)| id_from(&key[skip..]))
            .collect()
    }

    pub(super) fn notice(&self, id: &NoticeId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(mut value) = self.get(&key(NOTICE, &[&id.0]))? else {
            return Ok(None);
        };
        if value.len() < 8 {
            return Err(StoreError::Corrupt(format!(
                "notice {id} is shorter than its position"
            )));
        }
        value.drain(..8);
        Ok(Some(value))
    }

    pub(super) fn contains(&self, id: &NoticeId) -> Result<bool, StoreError> {
        let k = key(NOTICE, &[&id.0]);
        let buffered = self.layers.iter().any(|layer| layer.contains_key(&k));
        Ok(buffered || self.tree.contains_key(k)?)
    }

    pub(super) fn log_id(
        &self,
        author: &AuthorityId,
        seq: u64,
    ) -> Result<Option<NoticeId>, StoreError> {
        let Some(index) = seq.checked_sub(1) else {
            return Ok(None);
        };
        let Some(page) = self.get(&log_page_key(author, index / LOG_PAGE_IDS))? else {
            return Ok(None);
        };
        let at = (index % LOG_PAGE_IDS) as usize * 32;
        page.get(at..at + 32).map(id_from).transpose()
    }

    pub(super) fn log_range(
        &self,
        author: &AuthorityId,
        seq_from: u64,
        limit: usize,
    ) -> Result<Vec<NoticeId>, StoreError> {
        let first = seq_from.max(1) - 1;
        let start = log_page_key(author, first / LOG_PAGE_IDS);
        let end = log_page_key(author, u64::MAX);
        let pages_needed = limit.div_ceil(LOG_PAGE_IDS as usize).saturating_add(1);
        let mut ids = Vec::new();
        let skip = (first % LOG_PAGE_IDS) as usize;
        for (page_number, (_, page)) in self
            .range(&start, &end, pages_needed)?
            .into_iter()
            .enumerate()
        {
            let from = if page_number == 0 { skip } else { 0 };
            for chunk in page.chunks_exact(32).skip(from) {
                if ids.len() == limit {
                    return Ok(ids);
                }
                ids.push(id_from(chunk)?);
            }
        }
        Ok(ids)
    }

    pub(super) fn referring(&self, listing: &NoticeId) -> Result<Vec<NoticeId>, StoreError> {
        self.scan_ids(key(REFERRING, &[&listing.0]), 33)
    }

    pub(super) fn listings_of(&self, subject: &SubjectKey) -> Result<Vec<NoticeId>, StoreError> {
        self.scan_ids(key(SUBJECT, &[&subject.0]), 1 + SUBJECT_KEY_BYTES)
    }

    pub(super) fn listings(&self) -> Result<Vec<NoticeId>, StoreError> {
        // Every listing is indexed under its subject, and under each of
        // its linked persons.
        let mut ids = self.scan_ids(vec![SUBJECT], 1 + SUBJECT_KEY_BYTES)?;
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    pub(super) fn arrival_order(&self) -> Result<Vec<NoticeId>, StoreError> {
        let position = |key: &[u8], value: &[u8]| -> Result<(NoticeId, u64), StoreError> {
            let id = id_from(&key[1..])?;
            let position: [u8; 8] = value
                .get(..8)
                .and_then(|p| p.try_into().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("notice {id} has no position")))?;
            Ok((id, u64::from_be_bytes(position)))
        };
        let mut positions: BTreeMap<NoticeId, u64> = BTreeMap::new();
        for item in self.tree.scan_prefix([NOTICE]) {
            let (k, v) = item?;
            let (id, at) = position(&k, &v)?;
            positions.insert(id, at);
        }
        for layer in &self.layers {
            let entries = layer
                .range(vec![NOTICE]..)
                .take_while(|(k, _)| k.first() == Some(&NOTICE));
            for (k, v) in entries {
                let (id, at) = position(k, v)?;
                positions.insert(id, at);
            }
        }
        // Notices stored after a snapshot was taken may show through.
        let mut order: Vec<(u64, NoticeId)> = positions
            .into_iter()
            .filter(|(_, at)| *at <= self.count)
            .map(|(id, at)| (at, id))
            .collect();
        order.sort();
        Ok(order.into_iter().map(|(_, id)| id).collect())
    }

    pub(super) fn forks(&self) -> Result<Vec<ForkEvidence>, StoreError> {
        self.prefix(&[FORK])?
            .into_iter()
            .map(|(k, v)| {
                let (author, seq) = author_and_number(&k, "fork evidence")?;
                decode_fork(author, seq, &v)
            })
            .collect()
    }
}

/// A read-only view of a [`SledStore`] taken at one moment
/// ([`SledStore::snapshot`]), readable from another thread while the store
/// goes on ingesting: it holds the layers buffered then and reads sled
/// under them. Notices stored later may show through (the records are
/// append-only and a notice's record is written before its index
/// entries), so a fold over it gives a state at least as new as the
/// moment it was taken; heads and the count are those of that moment.
/// Writes are refused.
pub struct SledSnapshot {
    pub(super) tree: sled::Db,
    /// The views, which the keeper's thread writes through a snapshot.
    pub(super) views: super::ViewsDb,
    /// Oldest first, the overlay of that moment last.
    pub(super) layers: Vec<Layer>,
    pub(super) heads: BTreeMap<AuthorityId, Head>,
    pub(super) count: u64,
    /// The name index's postings not yet in sled, shared with the store.
    pub(super) names: super::names::Names,
}

impl SledSnapshot {
    /// Up to `limit` register records from index `from` on (those written
    /// after the snapshot was taken may show too).
    pub fn register_records(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        super::register_records_in(&self.tree, from, limit)
    }

    pub(super) fn view(&self) -> View<'_> {
        View {
            tree: &self.tree,
            layers: self.layers.iter().map(|layer| layer.as_ref()).collect(),
            count: self.count,
        }
    }
}

impl Store for SledSnapshot {
    type Error = StoreError;

    store_reads!();

    fn append(&mut self, _: Append<'_>) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn notice_count(&self) -> Result<u64, StoreError> {
        Ok(self.count)
    }

    fn truncate_log(&mut self, _: &AuthorityId, _: Option<Head>) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn put_orphan(&mut self, _: Orphan<'_>) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn put_fork(&mut self, _: &ForkEvidence) -> Result<bool, StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn put_roster_version(&mut self, _: &RosterHash, _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn put_checkpoint_notes(&mut self, _: &AuthorityId, _: &[Vec<u8>]) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn put_proposals(&mut self, _: &[Vec<u8>]) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}
