//! The thread that writes frozen layers to sled in order, the opening of
//! the tree, and the recovery of a layer a crash tore.

use super::layout::*;
use super::{Layer, SEGMENT_BYTES, StoreError};
use credence_protocol::NoticeKind;
use credence_protocol::codec;
use credence_protocol::model::{AuthorityId, NoticeId};
use credence_protocol::store::Head;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, mpsc};

/// What the writer thread does next.
pub(super) enum Job {
    /// Write a frozen layer.
    Layer(Layer),
    /// Flush sled (everything sent before is written by then).
    Flush,
}

/// The thread that writes frozen layers to sled, in order.
pub(super) struct Writer {
    pub(super) sender: Option<mpsc::Sender<Job>>,
    pub(super) progress: Arc<(Mutex<Progress>, Condvar)>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
    pub(super) sent: u64,
}

#[derive(Default)]
pub(super) struct Progress {
    pub(super) applied: u64,
    pub(super) error: Option<String>,
}

/// Attempts to open a store whose lock is held, 50 ms apart: sled releases
/// its lock only when its background tasks let go of the files, a moment
/// after the last handle of a store closed in this process.
pub(super) const OPEN_LOCKED_ATTEMPTS: u32 = 20;

pub(super) fn open_tree(path: &Path) -> Result<sled::Db, StoreError> {
    // Durability comes from the explicit flush the node makes before it
    // acknowledges anything; sled's timed background flush would only
    // compete with ingest for the second core.
    let config = sled::Config::new()
        .path(path)
        // Measured on 2 cores: 8 MiB segments and the low-space mode cut
        // the cost of an insert by about a quarter.
        .mode(sled::Mode::LowSpace)
        .segment_size(SEGMENT_BYTES)
        .flush_every_ms(None);
    let mut attempt = 1;
    loop {
        match config.open() {
            Ok(tree) => return Ok(tree),
            Err(sled::Error::Io(io))
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                if attempt == OPEN_LOCKED_ATTEMPTS {
                    return Err(StoreError::InUse {
                        path: path.display().to_string(),
                    });
                }
                attempt += 1;
                // A bounded wait for a lock on its way out, not a timing
                // assumption: another process that holds it is reported.
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(other) => return Err(StoreError::Sled(other)),
        }
    }
}

/// Writes a layer's records in key order, then its heads (the commit
/// records), as individual inserts: unlike a sled batch, they do not stop
/// every reader of the store while they run. In key order, a layer's log
/// pages (`l`) precede its notice records (`n`), which precede its index
/// entries (`r`, `s`): recovery relies on it.
pub(super) fn write_layer(
    tree: &sled::Db,
    layer: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), sled::Error> {
    let is_head = |k: &Vec<u8>| k.first() == Some(&HEAD);
    for (k, v) in layer.iter().filter(|(k, _)| !is_head(k)) {
        tree.insert(k.as_slice(), v.as_slice())?;
    }
    for (k, v) in layer.iter().filter(|(k, _)| is_head(k)) {
        tree.insert(k.as_slice(), v.as_slice())?;
    }
    Ok(())
}

/// Removes the records a crash left past the heads (see the module doc):
/// log page entries past a head, the notice records they name and those
/// notices' index entries. Returns how many notices it removed.
pub(super) fn recover(
    tree: &sled::Db,
    heads: &BTreeMap<AuthorityId, Head>,
) -> Result<usize, StoreError> {
    let mut torn: Vec<NoticeId> = Vec::new();
    let mut pages: Vec<(sled::IVec, usize)> = Vec::new();
    for item in tree.scan_prefix([LOG]) {
        let (k, page) = item?;
        let (author, number) = author_and_number(&k, "log page")?;
        let first_seq = number * LOG_PAGE_IDS + 1;
        let head = heads.get(&author).map_or(0, |h| h.seq);
        let keep =
            usize::try_from(head.saturating_sub(first_seq - 1).min(LOG_PAGE_IDS)).unwrap_or(0);
        if page.len() > keep * 32 {
            for id in page[keep * 32..].chunks_exact(32) {
                torn.push(id_from(id)?);
            }
            pages.push((k, keep));
        }
    }
    let mut removals: Vec<Vec<u8>> = Vec::new();
    for id in &torn {
        let record_key = key(NOTICE, &[&id.0]);
        if let Some(record) = tree.get(&record_key)? {
            removals.extend(index_keys_of(tree, id, &record)?);
            removals.push(record_key);
        }
    }
    for k in removals {
        tree.remove(k)?;
    }
    for (k, keep) in pages {
        match tree.get(&k)? {
            Some(page) if keep > 0 => {
                tree.insert(&k, &page[..keep * 32])?;
            }
            _ => {
                tree.remove(&k)?;
            }
        }
    }
    if !torn.is_empty() {
        tree.flush()?;
    }
    Ok(torn.len())
}

/// The index keys (`r` or `s`) a notice record was indexed under. A
/// listing's linked persons are among them; those an amendment added
/// index the listing it amends and stay (a lookup checks that the listing
/// still names them).
pub(super) fn index_keys_of(
    tree: &sled::Db,
    id: &NoticeId,
    record: &[u8],
) -> Result<Vec<Vec<u8>>, StoreError> {
    let notice = |record: &[u8]| -> Result<credence_protocol::Notice, StoreError> {
        let envelope = record
            .get(8..)
            .ok_or_else(|| StoreError::Corrupt(format!("notice {id}")))?;
        let (body, _) =
            codec::envelope_parts(envelope).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        codec::decode_stored_notice(body).map_err(|e| StoreError::Corrupt(e.to_string()))
    };
    let listing = match notice(record)?.kind {
        NoticeKind::List(listing) => {
            return Ok(listing
                .subject_keys()
                .iter()
                .map(|subject| key(SUBJECT, &[&subject.0, &id.0]))
                .collect());
        }
        NoticeKind::Rule { objection, .. } => match tree.get(key(NOTICE, &[&objection.0]))? {
            Some(objection) => notice(&objection)?.kind.listing_reference(),
            None => None,
        },
        kind => kind.listing_reference(),
    };
    Ok(listing
        .map(|listing| key(REFERRING, &[&listing.0, &id.0]))
        .into_iter()
        .collect())
}

impl Writer {
    pub(super) fn start(tree: sled::Db) -> Writer {
        let (sender, receiver) = mpsc::channel::<Job>();
        let progress: Arc<(Mutex<Progress>, Condvar)> = Arc::default();
        let shared = Arc::clone(&progress);
        let thread = std::thread::Builder::new()
            .name("credence-store-writer".into())
            .spawn(move || {
                for job in receiver {
                    let layer = match job {
                        Job::Layer(layer) => layer,
                        // Every layer sent before is written: make it all
                        // durable, off the caller's thread.
                        Job::Flush => {
                            if let Err(error) = tree.flush() {
                                let (lock, signal) = &*shared;
                                let mut state =
                                    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                                state.error = Some(error.to_string());
                                signal.notify_all();
                            }
                            continue;
                        }
                    };
                    let result = write_layer(&tree, &layer);
                    let (lock, signal) = &*shared;
                    let mut state = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    match result {
                        Ok(()) => state.applied += 1,
                        Err(error) => state.error = Some(error.to_string()),
                    }
                    signal.notify_all();
                }
            })
            .ok();
        Writer {
            sender: Some(sender),
            progress,
            thread,
            sent: 0,
        }
    }

    pub(super) fn send(&mut self, layer: Layer) -> Result<u64, StoreError> {
        let Some(sender) = &self.sender else {
            return Err(StoreError::Writer("the writer thread has stopped".into()));
        };
        if self.thread.is_none() {
            return Err(StoreError::Writer(
                "the writer thread could not start".into(),
            ));
        }
        sender
            .send(Job::Layer(layer))
            .map_err(|_| StoreError::Writer("the writer thread has stopped".into()))?;
        self.sent += 1;
        Ok(self.sent)
    }

    /// Asks the writer to flush sled after the layers sent so far.
    pub(super) fn request_flush(&self) -> Result<(), StoreError> {
        self.sender
            .as_ref()
            .ok_or_else(|| StoreError::Writer("the writer thread has stopped".into()))?
            .send(Job::Flush)
            .map_err(|_| StoreError::Writer("the writer thread has stopped".into()))
    }

    pub(super) fn applied(&self) -> Result<u64, StoreError> {
        let state = self
            .progress
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &state.error {
            Some(error) => Err(StoreError::Writer(error.clone())),
            None => Ok(state.applied),
        }
    }

    pub(super) fn wait_all(&self) -> Result<(), StoreError> {
        self.wait_until(self.sent).map(|_| ())
    }

    /// Waits until at least `layers` layers are written; returns how many
    /// are.
    pub(super) fn wait_until(&self, layers: u64) -> Result<u64, StoreError> {
        wait_progress(&self.progress, layers)
    }
}

/// Waits until the writer whose progress this is wrote at least `layers`
/// layers; returns how many it wrote.
pub(super) fn wait_progress(
    progress: &(Mutex<Progress>, Condvar),
    layers: u64,
) -> Result<u64, StoreError> {
    let (lock, signal) = progress;
    let mut state = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    while state.applied < layers && state.error.is_none() {
        state = signal
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    match &state.error {
        Some(error) => Err(StoreError::Writer(error.clone())),
        None => Ok(state.applied),
    }
}

impl Writer {
    pub(super) fn stop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
