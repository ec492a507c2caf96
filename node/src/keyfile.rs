//! Secret files on disk (the authority key, the API token): created with
//! mode 0600, refused when anyone but the owner can read them or when
//! another user owns them.

use credence_crypto::{AuthorityKey, KeyFileError};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Bytes read from a key file at most (a key file is a few short lines).
const KEY_FILE_READ_BYTES_MAX: u64 = 4096;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileIoError {
    /// Reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// Group or others may read it.
    #[error(
        "secret file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}` and try again"
    )]
    TooOpen {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Another user owns it.
    #[error(
        "secret file {path} is owned by user {owner}, not by this process's user {user}; run `chown {user} {path}` as its owner, or run credence as user {owner}"
    )]
    NotOwner {
        /// The file.
        path: String,
        /// Its owner.
        owner: u32,
        /// This process's user.
        user: u32,
    },
    /// Its contents are not a credence key.
    #[error("key file {path}: {source}")]
    Content {
        /// The file.
        path: String,
        /// What is wrong.
        source: KeyFileError,
    },
}

/// Writes `key` to a new file at `path` with mode 0600; never overwrites.
pub fn write_new(path: &Path, key: &AuthorityKey) -> Result<(), KeyFileIoError> {
    let io = |source| KeyFileIoError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(key.to_key_file().as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Checks that only this process's user can read the secret file at
/// `path`: mode without group or other bits, owned by this user.
pub fn check_private(path: &Path) -> Result<(), KeyFileIoError> {
    let shown = path.display().to_string();
    let io = |source| KeyFileIoError::Io {
        path: shown.clone(),
        source,
    };
    let metadata = fs::metadata(path).map_err(io)?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileIoError::TooOpen { path: shown, mode });
    }
    // `/proc/self` belongs to the process's effective user.
    let user = fs::metadata("/proc/self").map_err(io)?.uid();
    let owner = metadata.uid();
    if owner != user {
        return Err(KeyFileIoError::NotOwner {
            path: shown,
            owner,
            user,
        });
    }
    Ok(())
}

/// Reads the key at `path`, refusing a file anyone else can read.
pub fn read(path: &Path) -> Result<AuthorityKey, KeyFileIoError> {
    let shown = path.display().to_string();
    let io = |source| KeyFileIoError::Io {
        path: shown.clone(),
        source,
    };
    check_private(path)?;
    let mut bytes = Vec::new();
    fs::File::open(path)
        .map_err(io)?
        .take(KEY_FILE_READ_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let content = |source| KeyFileIoError::Content {
        path: shown.clone(),
        source,
    };
    let text = String::from_utf8(bytes).map_err(|_| content(KeyFileError::Foreign))?;
    AuthorityKey::from_key_file(&text).map_err(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written with 0600, read back; a group-readable file is refused with
    // the chmod that fixes it; a foreign file is refused as foreign.
    #[test]
    fn permissions_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authority.key");
        let key = AuthorityKey::from_secret_bytes([4; 32]);
        write_new(&path, &key).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read(&path).unwrap().public_bytes(), key.public_bytes());
        assert!(write_new(&path, &key).is_err(), "never overwrites a key");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        let foreign = dir.path().join("id_ed25519");
        fs::write(&foreign, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
        fs::set_permissions(&foreign, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            read(&foreign)
                .unwrap_err()
                .to_string()
                .contains("not a credence authority key file")
        );
    }
}
