//! The own-log mark file (`own-log.mark`, beside the key): the newest
//! notice this authority signed and made durable, so that a node whose
//! store was lost never signs the same seq twice (see
//! `credence_protocol::engine::gate`).
//!
//! A mark is text, one field a line:
//!
//! ```text
//! credence own-log mark 1
//! author <64 hex>
//! seq <decimal>
//! id <64 hex>
//! root <64 hex, or ->
//! envelope <hex, or ->
//! ```
//!
//! The file holds two copies in fixed places (format 2), written in turn
//! in place: the older copy is overwritten with the new mark and the data
//! synced, one write and one `fdatasync` a mark, the file's size and
//! blocks never changing. A crash during the write tears at most that
//! copy; the other still holds the previous mark.
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 24 | `credence own-log mark 2` and a newline |
//! | 4096 + k × [`SLOT_BYTES`] | 8 | copy k (0 or 1): its generation, big-endian (0: never written) |
//! | + 8 | 4 | the mark's length in bytes, big-endian |
//! | + 12 | 32 | BLAKE3 of the generation's 8 bytes and the mark |
//! | + 44 | length | the mark, as text above |
//!
//! The newest whole copy is the mark; a copy whose digest does not match
//! is torn and passed over. A file of format 1 (the text alone, written
//! through a temporary file and a rename) still reads; the first write
//! replaces it by a file of format 2 the same way, then writes in place.

use crate::node::{NodeError, read_bounded};
use credence_crypto::Digest;
use credence_protocol::engine::Mark;
use credence_protocol::model::{AuthorityId, ENVELOPE_BYTES_MAX, NoticeId};
use std::fs;
use std::io::Write;
use std::path::Path;

/// The mark file of a data directory.
pub const MARK_FILE: &str = "own-log.mark";
/// Largest mark file read: the fields and one envelope in hex.
pub const MARK_BYTES_MAX: u64 = 2 * ENVELOPE_BYTES_MAX as u64 + 1024;
const HEADER: &str = "credence own-log mark 1";
/// The first line of a mark file of two copies.
const FILE_HEADER: &[u8; 24] = b"credence own-log mark 2\n";
/// Where the first copy starts.
const SLOTS_AT: u64 = 4096;
/// A copy's generation, length and digest.
const SLOT_HEAD_BYTES: usize = 8 + 4 + 32;
/// The bytes of one copy's place: its head and the largest mark, rounded
/// up to 4 KiB.
pub const SLOT_BYTES: u64 = (SLOT_HEAD_BYTES as u64 + MARK_BYTES_MAX).div_ceil(4096) * 4096;
/// The size of a mark file of two copies.
const FILE_BYTES: u64 = SLOTS_AT + 2 * SLOT_BYTES;

fn invalid(path: &Path, reason: impl Into<String>) -> NodeError {
    NodeError::Config {
        path: path.display().to_string(),
        reason: format!(
            "{}; the own-log mark is damaged: name the head with `credence recover` to rewrite it",
            reason.into()
        ),
    }
}

/// Renders a mark of `author`'s log.
pub fn render(author: &AuthorityId, mark: &Mark) -> String {
    format!(
        "{HEADER}\nauthor {}\nseq {}\nid {}\nroot {}\nenvelope {}\n",
        hex::encode(author.0),
        mark.seq,
        hex::encode(mark.id.0),
        mark.root.map_or_else(|| "-".to_string(), |r| r.to_hex()),
        mark.envelope
            .as_ref()
            .map_or_else(|| "-".to_string(), hex::encode),
    )
}

fn digest(path: &Path, field: &str, text: &str) -> Result<[u8; 32], NodeError> {
    let bytes = hex::decode(text).map_err(|e| invalid(path, format!("{field} is not hex: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        invalid(
            path,
            format!("{field} must be 32 bytes, found {}", bytes.len()),
        )
    })
}

/// Parses a mark file of `author`'s log.
pub fn parse(path: &Path, author: &AuthorityId, text: &str) -> Result<Mark, NodeError> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(invalid(path, format!("the first line must be `{HEADER}`")));
    }
    let mut field = |name: &str| -> Result<&str, NodeError> {
        let line = lines
            .next()
            .ok_or_else(|| invalid(path, format!("the `{name}` line is missing")))?;
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or_else(|| invalid(path, format!("expected a `{name}` line, found `{line}`")))
    };
    let owner = AuthorityId(digest(path, "author", field("author")?)?);
    let seq_text = field("seq")?;
    let seq: u64 = seq_text
        .parse()
        .map_err(|_| invalid(path, format!("seq `{seq_text}` is not a number")))?;
    let id = NoticeId(digest(path, "id", field("id")?)?);
    let root = match field("root")? {
        "-" => None,
        text => Some(Digest(digest(path, "root", text)?)),
    };
    let envelope = match field("envelope")? {
        "-" => None,
        text => {
            let bytes = hex::decode(text)
                .map_err(|e| invalid(path, format!("envelope is not hex: {e}")))?;
            if bytes.len() > ENVELOPE_BYTES_MAX {
                return Err(invalid(path, "the envelope is over the size limit"));
            }
            if NoticeId::from(credence_crypto::merkle::leaf_hash(&bytes)) != id {
                return Err(invalid(
                    path,
                    "the envelope is not the notice the mark names",
                ));
            }
            Some(bytes)
        }
    };
    if lines.next().is_some() {
        return Err(invalid(path, "lines after the envelope"));
    }
    if owner != *author {
        return Err(invalid(
            path,
            format!("it is the mark of {owner}, not of this node's key {author}"),
        ));
    }
    if seq == 0 && id != NoticeId::default() {
        return Err(invalid(path, "seq 0 names a notice"));
    }
    Ok(Mark {
        seq,
        id,
        root,
        envelope,
    })
}

/// Reads the mark of a data directory: `None` when there is none (a new
/// machine, or a store older than marks).
pub fn read(dir: &Path, author: &AuthorityId) -> Result<Option<Mark>, NodeError> {
    read_for(dir, author, author)
}

/// Reads the mark of member `author`'s log in a data directory whose key
/// is `key` (the member's id until it rotates its key). A data directory
/// made with `credence init` for a key a roster version gave an existing
/// member holds the zero mark of that key, which says nothing of the
/// member's log: it reads as no mark, so the node waits for a majority of
/// its peers to show it the log, as a new machine does.
pub fn read_for(
    dir: &Path,
    author: &AuthorityId,
    key: &AuthorityId,
) -> Result<Option<Mark>, NodeError> {
    let path = dir.join(MARK_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_bounded(&path, FILE_BYTES, "own-log mark")?;
    let text = match newest_copy(&bytes) {
        Some(copies) => copies.map_err(|reason| invalid(&path, reason))?.1,
        None => bytes,
    };
    let text = String::from_utf8(text).map_err(|_| invalid(&path, "not UTF-8 text"))?;
    if author != key
        && let Ok(mark) = parse(&path, key, &text)
        && mark.seq == 0
    {
        return Ok(None);
    }
    parse(&path, author, &text).map(Some)
}

/// A copy's digest: of its generation and its mark.
fn slot_digest(generation: u64, mark: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&generation.to_be_bytes());
    hasher.update(mark);
    *hasher.finalize().as_bytes()
}

/// Copy `k`'s generation and mark, if it is whole.
fn slot(bytes: &[u8], k: u64) -> Option<(u64, Vec<u8>)> {
    let at = usize::try_from(SLOTS_AT + k * SLOT_BYTES).ok()?;
    let head = bytes.get(at..at + SLOT_HEAD_BYTES)?;
    let generation = u64::from_be_bytes(head[..8].try_into().ok()?);
    let len = u32::from_be_bytes(head[8..12].try_into().ok()?) as usize;
    if generation == 0 || len as u64 > MARK_BYTES_MAX {
        return None;
    }
    let mark = bytes.get(at + SLOT_HEAD_BYTES..at + SLOT_HEAD_BYTES + len)?;
    (slot_digest(generation, mark) == head[12..]).then(|| (generation, mark.to_vec()))
}

/// Of a file of format 2, the newest whole copy (its generation and mark)
/// or why there is none; `None` for a file of format 1.
fn newest_copy(bytes: &[u8]) -> Option<Result<(u64, Vec<u8>), String>> {
    if !bytes.starts_with(FILE_HEADER) {
        return None;
    }
    if bytes.len() as u64 != FILE_BYTES {
        return Some(Err(format!(
            "a mark file of two copies has {FILE_BYTES} bytes, this one {}",
            bytes.len()
        )));
    }
    let newest = [slot(bytes, 0), slot(bytes, 1)]
        .into_iter()
        .flatten()
        .max_by_key(|(generation, _)| *generation);
    Some(newest.ok_or_else(|| "neither copy of the mark is whole".to_string()))
}

/// Writes the mark durably: over the older copy of a file of format 2,
/// then its data synced (see the module doc). A missing file, or one of
/// format 1, is replaced whole: a temporary file, synced, renamed over
/// it, and the directory synced.
pub fn write(dir: &Path, author: &AuthorityId, mark: &Mark) -> Result<(), NodeError> {
    use std::os::unix::fs::FileExt;
    let path = dir.join(MARK_FILE);
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| NodeError::Io { path, source }
    };
    let text = render(author, mark).into_bytes();
    if text.len() as u64 > MARK_BYTES_MAX {
        return Err(invalid(&path, "the mark to write is over the size limit"));
    }
    let copy = |generation: u64| {
        let mut bytes = Vec::with_capacity(SLOT_HEAD_BYTES + text.len());
        bytes.extend_from_slice(&generation.to_be_bytes());
        bytes.extend_from_slice(&(text.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&slot_digest(generation, &text));
        bytes.extend_from_slice(&text);
        bytes
    };
    // In place, when the file has two copies: over the older one (or one
    // that is torn).
    if let Ok(file) = fs::OpenOptions::new().read(true).write(true).open(&path)
        && file.metadata().map_err(io(&path))?.len() == FILE_BYTES
    {
        let mut bytes = vec![0u8; FILE_BYTES as usize];
        file.read_exact_at(&mut bytes, 0).map_err(io(&path))?;
        if bytes.starts_with(FILE_HEADER) {
            // A torn copy counts as generation 0: it is written over.
            let generations =
                [0, 1].map(|k| slot(&bytes, k).map_or(0, |(generation, _)| generation));
            let older = usize::from(generations[1] < generations[0]);
            let generation = generations[0].max(generations[1]) + 1;
            file.write_all_at(&copy(generation), SLOTS_AT + older as u64 * SLOT_BYTES)
                .map_err(io(&path))?;
            file.sync_data().map_err(io(&path))?;
            return Ok(());
        }
    }
    // Whole: the file of two copies, the mark in the first.
    let temporary = dir.join(format!("{MARK_FILE}.new"));
    {
        let mut bytes = vec![0u8; FILE_BYTES as usize];
        bytes[..FILE_HEADER.len()].copy_from_slice(FILE_HEADER);
        let first = copy(1);
        bytes[SLOTS_AT as usize..SLOTS_AT as usize + first.len()].copy_from_slice(&first);
        let mut file = fs::File::create(&temporary).map_err(io(&temporary))?;
        file.write_all(&bytes).map_err(io(&temporary))?;
        file.sync_all().map_err(io(&temporary))?;
    }
    fs::rename(&temporary, &path).map_err(io(&path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author() -> AuthorityId {
        AuthorityId([7; 32])
    }

    #[test]
    fn a_mark_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), &author()).unwrap(), None);
        let envelope = vec![1u8, 2, 3];
        let mark = Mark {
            seq: 4,
            id: NoticeId::from(credence_crypto::merkle::leaf_hash(&envelope)),
            root: Some(Digest([9; 32])),
            envelope: Some(envelope),
        };
        write(dir.path(), &author(), &mark).unwrap();
        assert_eq!(read(dir.path(), &author()).unwrap(), Some(mark));
        write(dir.path(), &author(), &Mark::zero()).unwrap();
        assert_eq!(read(dir.path(), &author()).unwrap(), Some(Mark::zero()));
        assert!(!dir.path().join(format!("{MARK_FILE}.new")).exists());
    }

    // A data directory made for a member's new key holds the zero mark of
    // that key: no mark of the member's log (the node waits for its
    // peers). A mark of the new key past zero, or of another key, is
    // refused.
    #[test]
    fn the_zero_mark_of_a_new_key_is_no_mark_of_the_member_s_log() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuthorityId([8; 32]);
        write(dir.path(), &key, &Mark::zero()).unwrap();
        assert_eq!(read_for(dir.path(), &author(), &key).unwrap(), None);
        assert_eq!(
            read_for(dir.path(), &key, &key).unwrap(),
            Some(Mark::zero())
        );
        let signed = Mark {
            seq: 3,
            id: NoticeId([5; 32]),
            root: None,
            envelope: None,
        };
        write(dir.path(), &key, &signed).unwrap();
        assert!(read_for(dir.path(), &author(), &key).is_err());
        write(dir.path(), &author(), &signed).unwrap();
        assert_eq!(read_for(dir.path(), &author(), &key).unwrap(), Some(signed));
        write(dir.path(), &AuthorityId([9; 32]), &Mark::zero()).unwrap();
        assert!(read_for(dir.path(), &author(), &key).is_err());
    }

    #[test]
    fn damaged_or_foreign_marks_are_refused_with_the_reason() {
        let path = Path::new("own-log.mark");
        let good = render(&author(), &Mark::zero());
        let cases = [
            (good.replace("mark 1", "mark 9"), "first line"),
            (good.replace("seq 0", "seq x"), "not a number"),
            (good.replace("seq 0\n", ""), "expected a `seq` line"),
            (good.replace("root -", "root 12"), "32 bytes"),
            (
                good.replace("envelope -", "envelope 0102"),
                "not the notice",
            ),
            (format!("{good}more\n"), "after the envelope"),
            (
                render(&AuthorityId([8; 32]), &Mark::zero()),
                "not of this node's key",
            ),
        ];
        for (text, why) in cases {
            let error = parse(path, &author(), &text).unwrap_err().to_string();
            assert!(error.contains(why), "{why}: {error}");
            assert!(error.contains("credence recover"), "{error}");
        }
    }

    fn mark_at(seq: u64) -> Mark {
        let envelope = vec![seq as u8; 300];
        Mark {
            seq,
            id: NoticeId::from(credence_crypto::merkle::leaf_hash(&envelope)),
            root: Some(Digest([seq as u8; 32])),
            envelope: Some(envelope),
        }
    }

    // Marks go over the two copies in turn, in a file whose size never
    // changes; a copy torn by a crash is passed over for the other (the
    // previous mark), and the next write goes over the torn one.
    #[test]
    fn copies_alternate_and_a_torn_copy_leaves_the_previous_mark() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MARK_FILE);
        write(dir.path(), &author(), &Mark::zero()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), FILE_BYTES);
        for seq in 1..=5 {
            write(dir.path(), &author(), &mark_at(seq)).unwrap();
            assert_eq!(read(dir.path(), &author()).unwrap(), Some(mark_at(seq)));
            assert_eq!(fs::metadata(&path).unwrap().len(), FILE_BYTES);
            let bytes = fs::read(&path).unwrap();
            // The zero mark was generation 1 in the first copy: seq 5 is
            // generation 6, in the second.
            let (newest, older) = if seq % 2 == 1 { (1, 0) } else { (0, 1) };
            assert_eq!(slot(&bytes, newest).unwrap().0, seq + 1);
            assert_eq!(slot(&bytes, older).unwrap().0, seq);
        }
        // The newest copy (seq 5, the second) torn in its text.
        let mut bytes = fs::read(&path).unwrap();
        let at = (SLOTS_AT + SLOT_BYTES) as usize + SLOT_HEAD_BYTES + 10;
        bytes[at] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read(dir.path(), &author()).unwrap(), Some(mark_at(4)));
        write(dir.path(), &author(), &mark_at(6)).unwrap();
        assert_eq!(read(dir.path(), &author()).unwrap(), Some(mark_at(6)));
        let bytes = fs::read(&path).unwrap();
        assert_eq!(
            slot(&bytes, 0).unwrap().1,
            render(&author(), &mark_at(4)).into_bytes()
        );
        assert_eq!(slot(&bytes, 1).unwrap().0, 6);
    }

    // A file of format 1 (the text alone) reads, and the next write
    // replaces it by one of two copies. A file whose copies are both torn,
    // or of the wrong size, is refused with the reason.
    #[test]
    fn a_text_mark_reads_and_damaged_copies_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MARK_FILE);
        fs::write(&path, render(&author(), &mark_at(3))).unwrap();
        assert_eq!(read(dir.path(), &author()).unwrap(), Some(mark_at(3)));
        write(dir.path(), &author(), &mark_at(4)).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), FILE_BYTES);
        assert_eq!(read(dir.path(), &author()).unwrap(), Some(mark_at(4)));

        let mut bytes = fs::read(&path).unwrap();
        bytes[SLOTS_AT as usize + SLOT_HEAD_BYTES] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let error = read(dir.path(), &author()).unwrap_err().to_string();
        assert!(error.contains("neither copy"), "{error}");
        assert!(error.contains("credence recover"), "{error}");

        fs::write(&path, &bytes[..5000]).unwrap();
        let error = read(dir.path(), &author()).unwrap_err().to_string();
        assert!(error.contains("5000"), "{error}");
        // `credence recover` writes it whole again.
        write(dir.path(), &author(), &mark_at(7)).unwrap();
        assert_eq!(read(dir.path(), &author()).unwrap(), Some(mark_at(7)));
    }
}
