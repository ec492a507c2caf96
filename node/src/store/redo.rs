//! Writes that must land together, without a sled batch.
//!
//! A sled batch is atomic, but sled 0.34 pays for it with two synchronous
//! writes of its log (`sync_file_range` with waits, before and after the
//! batch's manifest) while it holds a lock that stops every other insert
//! and read of the store. The views wrote two batches a tick; without
//! them, issuing at 32 clients went 5 to 23% faster (BENCHMARKS.md,
//! session 16).
//!
//! [`apply`] writes the same records as a redo record instead: all of
//! them encoded as one value under one key (a single insert, atomic), then
//! each applied as a plain insert or removal, then the record removed.
//! sled's log is recovered as a prefix, so after a crash either the redo
//! record is there (and [`replay`], at open, applies it again: each write
//! is absolute, so applying twice is applying once) or none of what
//! followed it is. Readers between the first insert and the last may see
//! part of the writes; a single writer at a time uses it (the daemon's
//! loop, or a command with the node stopped), and a mutex makes sure.

use super::StoreError;
use super::layout::{META, key};
use std::collections::BTreeMap;

/// The key of the redo record.
const META_REDO: &[u8] = b"redo";

/// Largest key or value a redo record holds (sled's own limit is far
/// above what the views write: their records are at most a few KB).
const PART_BYTES_MAX: usize = u32::MAX as usize;

/// Records to write together: each key to a value, or removed.
#[derive(Default, Debug)]
pub(crate) struct Writes(BTreeMap<Vec<u8>, Option<Vec<u8>>>);

impl Writes {
    /// `key` set to `value` (the last write of a key wins).
    pub(crate) fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl AsRef<[u8]>) {
        self.0.insert(key.into(), Some(value.as_ref().to_vec()));
    }

    /// `key` removed.
    pub(crate) fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.0.insert(key.into(), None);
    }

    /// How many keys it writes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The redo record: per write, the key's length (u32, big-endian) and
    /// bytes, then 0 (removed) or 1 and the value's length and bytes.
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (k, v) in &self.0 {
            put(&mut bytes, k);
            match v {
                None => bytes.push(0),
                Some(v) => {
                    bytes.push(1);
                    put(&mut bytes, v);
                }
            }
        }
        bytes
    }

    fn decode(mut bytes: &[u8]) -> Result<Writes, StoreError> {
        let mut writes = Writes::default();
        while !bytes.is_empty() {
            let k = take(&mut bytes)?;
            let (flag, rest) = bytes
                .split_first()
                .ok_or_else(|| corrupt("a write without its kind"))?;
            bytes = rest;
            let v = match flag {
                0 => None,
                1 => Some(take(&mut bytes)?.to_vec()),
                other => return Err(corrupt(&format!("a write of kind {other}"))),
            };
            writes.0.insert(k.to_vec(), v);
        }
        Ok(writes)
    }
}

fn put(bytes: &mut Vec<u8>, part: &[u8]) {
    // Keys and values come from this store's own encoders, far below
    // PART_BYTES_MAX; `apply` refuses anything longer before encoding.
    bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
    bytes.extend_from_slice(part);
}

fn take<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], StoreError> {
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("a length cut short"))?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(corrupt(&format!(
            "a part of {len} bytes with {} left",
            rest.len()
        )));
    }
    let (part, rest) = rest.split_at(len);
    *bytes = rest;
    Ok(part)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("redo record: {what}"))
}

/// Applies `writes` so that a crash keeps all of them or, until the redo
/// record is durable, none (see the module doc). `lock` serialises the
/// writers of the one redo record.
pub(crate) fn apply(
    tree: &sled::Db,
    lock: &std::sync::Mutex<()>,
    writes: Writes,
) -> Result<(), StoreError> {
    if let Some((k, v)) = writes.0.iter().find(|(k, v)| {
        k.len() > PART_BYTES_MAX || v.as_ref().is_some_and(|v| v.len() > PART_BYTES_MAX)
    }) {
        return Err(StoreError::Corrupt(format!(
            "a write of {} and {} bytes is too large for a redo record",
            k.len(),
            v.as_ref().map_or(0, Vec::len)
        )));
    }
    let _one_writer = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let redo = key(META, &[META_REDO]);
    // One write needs no record: a single insert is atomic already.
    let recorded = writes.len() > 1;
    if recorded {
        tree.insert(&redo, writes.encode())?;
    }
    write_all(tree, writes)?;
    if recorded {
        tree.remove(&redo)?;
    }
    Ok(())
}

fn write_all(tree: &sled::Db, writes: Writes) -> Result<(), StoreError> {
    for (k, v) in writes.0 {
        match v {
            Some(v) => tree.insert(k, v)?,
            None => tree.remove(k)?,
        };
    }
    Ok(())
}

/// Applies the redo record a crash left, if any; whether there was one.
pub(crate) fn replay(tree: &sled::Db) -> Result<bool, StoreError> {
    let redo = key(META, &[META_REDO]);
    let Some(bytes) = tree.get(&redo)? else {
        return Ok(false);
    };
    write_all(tree, Writes::decode(&bytes)?)?;
    tree.remove(&redo)?;
    tree.flush()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let tree = sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .expect("sled opens");
        (dir, tree)
    }

    fn sample() -> Writes {
        let mut writes = Writes::default();
        writes.insert(b"a".to_vec(), b"one");
        writes.insert(b"b".to_vec(), b"");
        writes.remove(b"c".to_vec());
        writes.insert(b"d".to_vec(), vec![7u8; 300]);
        writes
    }

    #[test]
    fn writes_land_and_leave_no_record() {
        let (_dir, tree) = tree();
        tree.insert(b"c", b"gone").expect("insert");
        apply(&tree, &std::sync::Mutex::new(()), sample()).expect("applied");
        assert_eq!(tree.get(b"a").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(tree.get(b"b").unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(tree.get(b"c").unwrap(), None);
        assert_eq!(tree.get(b"d").unwrap().map(|v| v.len()), Some(300));
        assert_eq!(tree.get(key(META, &[META_REDO])).unwrap(), None);
        assert!(!replay(&tree).expect("nothing to replay"));
    }

    #[test]
    fn a_record_left_by_a_crash_is_applied_at_open() {
        // The state a crash leaves after the record and one of its
        // writes: the record applied again gives every write once.
        let (_dir, tree) = tree();
        tree.insert(b"c", b"gone").expect("insert");
        tree.insert(key(META, &[META_REDO]), sample().encode())
            .expect("record");
        tree.insert(b"a", b"one").expect("one write");
        assert!(replay(&tree).expect("replayed"));
        assert_eq!(tree.get(b"a").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(tree.get(b"b").unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(tree.get(b"c").unwrap(), None);
        assert_eq!(tree.get(b"d").unwrap().map(|v| v.len()), Some(300));
        assert_eq!(tree.get(key(META, &[META_REDO])).unwrap(), None);
    }

    #[test]
    fn a_damaged_record_is_refused_naming_what_is_wrong() {
        let bytes = sample().encode();
        for (cut, problem) in [
            (2, "a length cut short"),
            (5, "a write without its kind"),
            (8, "a length cut short"),
            (11, "a part of 3 bytes with 1 left"),
        ] {
            let error = Writes::decode(&bytes[..cut]).unwrap_err().to_string();
            assert!(error.contains(problem), "{cut}: {error}");
        }
        let mut wrong = bytes.clone();
        wrong[5] = 9;
        let error = Writes::decode(&wrong).unwrap_err().to_string();
        assert!(error.contains("a write of kind 9"), "{error}");
        let again = Writes::decode(&bytes).expect("decodes");
        assert_eq!(again.encode(), bytes);
    }
}
