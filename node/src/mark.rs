//! The own-log mark file (`own-log.mark`, beside the key): the newest
//! notice this authority signed and made durable, so that a node whose
//! store was lost never signs the same seq twice (see
//! `credence_protocol::engine::gate`).
//!
//! The file is text, one field a line, written to a temporary file that is
//! synced, renamed over the old one, and the directory synced: a crash
//! leaves the old mark or the new one, never a torn one.
//!
//! ```text
//! credence own-log mark 1
//! author <64 hex>
//! seq <decimal>
//! id <64 hex>
//! root <64 hex, or ->
//! envelope <hex, or ->
//! ```

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
    let bytes = read_bounded(&path, MARK_BYTES_MAX, "own-log mark")?;
    let text = String::from_utf8(bytes).map_err(|_| invalid(&path, "not UTF-8 text"))?;
    if author != key
        && let Ok(mark) = parse(&path, key, &text)
        && mark.seq == 0
    {
        return Ok(None);
    }
    parse(&path, author, &text).map(Some)
}

/// Writes the mark atomically and durably: temporary file, sync, rename,
/// sync of the directory.
pub fn write(dir: &Path, author: &AuthorityId, mark: &Mark) -> Result<(), NodeError> {
    let path = dir.join(MARK_FILE);
    let temporary = dir.join(format!("{MARK_FILE}.new"));
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| NodeError::Io { path, source }
    };
    {
        let mut file = fs::File::create(&temporary).map_err(io(&temporary))?;
        file.write_all(render(author, mark).as_bytes())
            .map_err(io(&temporary))?;
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
}
