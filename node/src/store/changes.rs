//! The change feed's records ([`credence_protocol::changes`]), beside the
//! replicated state: the changes in order (`c`), the last summary of each
//! listing with the next time it may change by time alone (`w`), and the
//! listings by that time (`t`). A change, the summary it leads to and the
//! time index move together in one sled batch, so that a crash keeps all
//! three or none: a change is never recorded without the summary that
//! stops it from being recorded again.

use super::layout::key;
use super::{SledStore, StoreError};
use credence_protocol::changes::{Change, Summary};
use credence_protocol::codec;
use credence_protocol::model::NoticeId;
use credence_protocol::time::Timestamp;

const CHANGE: u8 = b'c';
const SUMMARY: u8 = b'w';
const DUE: u8 = b't';
/// Largest encoded change or summary.
const RECORD_BYTES_MAX: usize = 16 * 1024;

/// A listing's last summary and the next time it may change by time
/// alone.
pub type Watched = (Summary, Option<Timestamp>);

fn due_key(at: Timestamp, listing: &NoticeId) -> Vec<u8> {
    key(DUE, &[&at.0.to_be_bytes(), &listing.0])
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl SledStore {
    /// The seq of the last change recorded (0: none).
    pub fn last_change(&self) -> Result<u64, StoreError> {
        let Some((k, _)) = self.tree.scan_prefix([CHANGE]).next_back().transpose()? else {
            return Ok(0);
        };
        let bytes: [u8; 8] = k[1..]
            .try_into()
            .map_err(|_| corrupt("change key", format!("{} bytes", k.len())))?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// What is kept of `listing` for the change feed.
    pub fn watched(&self, listing: &NoticeId) -> Result<Option<Watched>, StoreError> {
        self.tree
            .get(key(SUMMARY, &[&listing.0]))?
            .map(|bytes| {
                codec::decode_bounded::<Watched, RECORD_BYTES_MAX>("summary", &bytes)
                    .map_err(|e| corrupt("listing summary", e))
            })
            .transpose()
    }

    /// Records `listing`'s new summary and next transition (`before`: what
    /// was kept) and, when the summary changed, the change: one batch.
    pub fn watch(
        &self,
        listing: &NoticeId,
        before: Option<&Watched>,
        now: &Watched,
        change: Option<&Change>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        if let Some(change) = change {
            let bytes = codec::encode_bounded::<_, RECORD_BYTES_MAX>("change", change)
                .map_err(|e| corrupt("change", e))?;
            batch.insert(key(CHANGE, &[&change.seq.to_be_bytes()]), bytes);
        }
        let bytes = codec::encode_bounded::<_, RECORD_BYTES_MAX>("summary", now)
            .map_err(|e| corrupt("listing summary", e))?;
        batch.insert(key(SUMMARY, &[&listing.0]), bytes);
        if let Some(at) = before.and_then(|(_, next)| *next) {
            batch.remove(due_key(at, listing));
        }
        if let Some(at) = now.1 {
            batch.insert(due_key(at, listing), &[][..]);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Changes after `after`, at most `limit`, and none past `upto`.
    pub fn changes(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let from = key(CHANGE, &[&after.saturating_add(1).to_be_bytes()]);
        let to = key(CHANGE, &[&upto.saturating_add(1).to_be_bytes()]);
        let mut out = Vec::new();
        if after >= upto {
            return Ok(out);
        }
        for item in self.tree.range(from..to).take(limit) {
            let (_, bytes) = item?;
            out.push(
                codec::decode_bounded::<Change, RECORD_BYTES_MAX>("change", &bytes)
                    .map_err(|e| corrupt("change", e))?,
            );
        }
        Ok(out)
    }

    /// Listings whose next transition is at or before `t`, at most `limit`.
    pub fn due(&self, t: Timestamp, limit: usize) -> Result<Vec<NoticeId>, StoreError> {
        let to = key(DUE, &[&t.0.saturating_add(1).to_be_bytes()]);
        let mut out = Vec::new();
        for item in self.tree.range(key(DUE, &[])..to).take(limit) {
            let (k, _) = item?;
            let id: [u8; 32] = k
                .get(9..)
                .and_then(|id| id.try_into().ok())
                .ok_or_else(|| corrupt("transition key", format!("{} bytes", k.len())))?;
            out.push(NoticeId(id));
        }
        Ok(out)
    }

    /// A closure that makes everything written to sled so far durable
    /// (for a thread of its own).
    pub fn sync_later(&self) -> impl FnOnce() -> Result<(), StoreError> + Send + 'static {
        let tree = self.tree.clone();
        move || {
            tree.flush()?;
            Ok(())
        }
    }
}
