//! Named API accounts and their roles (DESIGN.md, "Accounts, roles and
//! the register of reads").
//!
//! Each official or department system calls the API with its own
//! credential, `<account>.<secret>` (the secret is 32 random bytes in
//! hex), as `Authorization: Bearer <credential>`. The node keeps only a
//! keyed BLAKE3 hash of each credential, in `accounts.toml` beside the
//! key: the secrets are random, so a fast hash is enough (as for API keys
//! elsewhere) and nothing in the file lets anyone call the API. A role
//! grants permissions:
//!
//! | role | read (look up, query, status) | issue and govern | audit (register, export) | accounts |
//! |---|---|---|---|---|
//! | `reader` | yes | | | |
//! | `operator` | yes | yes | | |
//! | `auditor` | yes | | yes | |
//! | `admin` | yes | yes | yes | yes |
//!
//! `credence init` makes the account `operator` with the role `admin` and
//! writes its credential to `api.token`, which the node's own command line
//! uses. The file is written atomically (temporary file, sync, rename);
//! the daemon reads it again whenever it changes, so that an account
//! added or revoked from the command line takes effect at once.

use crate::node::{NodeError, read_bounded};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

/// The accounts file of a data directory.
pub const ACCOUNTS_FILE: &str = "accounts.toml";
/// The account `credence init` makes, whose credential is in `api.token`.
pub const NODE_ACCOUNT: &str = "operator";
/// Most accounts a node keeps (revoked ones included).
pub const ACCOUNTS_MAX: usize = 10_000;
/// Largest accounts file read.
pub const ACCOUNTS_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Longest account name.
pub const ACCOUNT_NAME_MAX: usize = 64;
/// Bytes of a credential's secret.
pub const SECRET_BYTES: usize = 32;
/// Key derivation context of a credential's stored hash.
const HASH_CONTEXT: &str = "credence/v1/api-credential";

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    /// Look up subjects and listings, query the federation, read tasks,
    /// status, logs, the roster and metrics.
    Read,
    /// Issue notices and act on the roster chain.
    Issue,
    /// Read the registers and export bundles.
    Audit,
    /// Manage accounts.
    Admin,
}

impl Permission {
    /// Its name in errors.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Issue => "issue",
            Permission::Audit => "audit",
            Permission::Admin => "admin",
        }
    }
}

/// An account's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Looks up and queries.
    Reader,
    /// Issues and rules; looks up and queries.
    Operator,
    /// Reads everything, registers included.
    Auditor,
    /// Everything, accounts included.
    Admin,
}

impl Role {
    /// Every role, in the order the table above gives them.
    pub const ALL: [Role; 4] = [Role::Reader, Role::Operator, Role::Auditor, Role::Admin];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown role {text:?}; one of: {}",
                    Role::ALL.map(Role::name).join(", ")
                )
            })
    }

    /// Whether the role grants `permission`.
    pub fn permits(self, permission: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Reader => permission == Permission::Read,
            Role::Operator => matches!(permission, Permission::Read | Permission::Issue),
            Role::Auditor => matches!(permission, Permission::Read | Permission::Audit),
        }
    }

    /// How far the role sees listings ([`credence_protocol::access`]): an
    /// account with the audit permission as an auditor, one that issues
    /// as an operator, any other as a reader.
    pub fn clearance(self) -> credence_protocol::access::Clearance {
        use credence_protocol::access::Clearance;
        if self.permits(Permission::Audit) {
            Clearance::Auditor
        } else if self.permits(Permission::Issue) {
            Clearance::Operator
        } else {
            Clearance::Reader
        }
    }

    /// The roles that grant `permission`, for an error that says which.
    pub fn granting(permission: Permission) -> Vec<&'static str> {
        Role::ALL
            .into_iter()
            .filter(|role| role.permits(permission))
            .map(Role::name)
            .collect()
    }
}

/// One account as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Its name: lower-case letters, digits and `-`, starting with a
    /// letter or digit.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Keyed BLAKE3 of its credential, hex.
    pub hash: String,
    /// When it was made (ms since the epoch).
    pub created_ms: u64,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
}

/// The accounts file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    /// Every account, in the order they were made.
    #[serde(default, rename = "account")]
    pub accounts: Vec<Account>,
}

/// Why a credential was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("no credential: send `Authorization: Bearer <account>.<secret>`")]
    Missing,
    /// Not of the form `<account>.<secret>`.
    #[error("the credential is not of the form <account>.<secret>")]
    Malformed,
    /// No such account, or the secret does not match.
    #[error("unknown account or wrong secret")]
    Wrong,
    /// The account was revoked.
    #[error("account {0} was revoked")]
    Revoked(String),
    /// The account's role does not grant what the route needs.
    #[error("account {account} ({role}) may not {needs}: that needs the role {granting}")]
    Forbidden {
        /// The account.
        account: String,
        /// Its role.
        role: &'static str,
        /// What the route needs.
        needs: &'static str,
        /// The roles that grant it.
        granting: String,
    },
}

/// Checks an account name.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= ACCOUNT_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "account name {name:?}: 1 to {ACCOUNT_NAME_MAX} lower-case letters, digits and '-', not starting with '-'"
        ))
    }
}

/// The stored hash of a credential.
pub fn credential_hash(credential: &str) -> String {
    let key = blake3::derive_key(HASH_CONTEXT, credential.as_bytes());
    hex::encode(key)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn invalid(path: &Path, reason: impl Into<String>) -> NodeError {
    NodeError::Config {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

impl Accounts {
    /// Parses an accounts file, checking every account.
    pub fn parse(path: &Path, text: &str) -> Result<Accounts, NodeError> {
        let accounts: Accounts = toml::from_str(text).map_err(|e| invalid(path, e.to_string()))?;
        if accounts.accounts.len() > ACCOUNTS_MAX {
            return Err(invalid(path, format!("more than {ACCOUNTS_MAX} accounts")));
        }
        let mut names = std::collections::BTreeSet::new();
        for account in &accounts.accounts {
            check_name(&account.name).map_err(|e| invalid(path, e))?;
            if !names.insert(account.name.as_str()) {
                return Err(invalid(
                    path,
                    format!("account {} appears twice", account.name),
                ));
            }
            let hash_ok = account.hash.len() == 64
                && account
                    .hash
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !hash_ok {
                return Err(invalid(
                    path,
                    format!(
                        "account {}: hash must be 64 lower-case hex digits",
                        account.name
                    ),
                ));
            }
        }
        Ok(accounts)
    }

    /// Reads a data directory's accounts (none when it has no file).
    pub fn read(dir: &Path) -> Result<Accounts, NodeError> {
        let path = dir.join(ACCOUNTS_FILE);
        if !path.exists() {
            return Ok(Accounts::default());
        }
        let bytes = read_bounded(&path, ACCOUNTS_BYTES_MAX, "accounts")?;
        let text = String::from_utf8(bytes).map_err(|_| invalid(&path, "not UTF-8 text"))?;
        Accounts::parse(&path, &text)
    }

    /// Writes the accounts atomically and durably.
    pub fn write(&self, dir: &Path) -> Result<(), NodeError> {
        let path = dir.join(ACCOUNTS_FILE);
        let temporary = dir.join(format!("{ACCOUNTS_FILE}.new"));
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| NodeError::Io { path, source }
        };
        let text = toml::to_string(self).map_err(|e| invalid(&path, e.to_string()))?;
        {
            let mut file = fs::File::create(&temporary).map_err(io(&temporary))?;
            file.write_all(
                b"# credence API accounts: the hash of each credential, never the credential\n",
            )
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io(&temporary))?;
        }
        fs::rename(&temporary, &path).map_err(io(&path))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(())
    }

    /// The account of that name.
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Adds an account with a fresh secret; returns its credential, which
    /// is shown once and kept nowhere.
    pub fn add(&mut self, name: &str, role: Role, now_ms: u64) -> Result<String, String> {
        check_name(name)?;
        if self.get(name).is_some() {
            return Err(format!(
                "account {name} exists already (revoked accounts keep their name)"
            ));
        }
        if self.accounts.len() >= ACCOUNTS_MAX {
            return Err(format!("a node keeps at most {ACCOUNTS_MAX} accounts"));
        }
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret)
            .map_err(|e| format!("the operating system's random source failed: {e}"))?;
        let credential = format!("{name}.{}", hex::encode(secret));
        self.accounts.push(Account {
            name: name.to_string(),
            role,
            hash: credential_hash(&credential),
            created_ms: now_ms,
            revoked_ms: None,
        });
        Ok(credential)
    }

    /// Revokes an account: its credential is refused from then on.
    pub fn revoke(&mut self, name: &str, now_ms: u64) -> Result<(), String> {
        let account = self
            .accounts
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or_else(|| format!("no account {name}"))?;
        if account.revoked_ms.is_some() {
            return Err(format!("account {name} was revoked already"));
        }
        account.revoked_ms = Some(now_ms);
        Ok(())
    }

    /// The account a credential belongs to, if it is valid and not
    /// revoked.
    pub fn authenticate(&self, credential: &str) -> Result<&Account, AuthError> {
        let (name, secret) = credential.split_once('.').ok_or(AuthError::Malformed)?;
        if check_name(name).is_err()
            || secret.len() != 2 * SECRET_BYTES
            || !secret.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(AuthError::Malformed);
        }
        let account = self.get(name).ok_or(AuthError::Wrong)?;
        if !constant_time_eq(
            credential_hash(credential).as_bytes(),
            account.hash.as_bytes(),
        ) {
            return Err(AuthError::Wrong);
        }
        if account.revoked_ms.is_some() {
            return Err(AuthError::Revoked(account.name.clone()));
        }
        Ok(account)
    }
}

/// The data directory's account lock, held while the accounts file is
/// read, changed and written, so that two writers never lose each other's
/// change. Released when dropped.
pub struct AccountsLock(PathBuf);

impl AccountsLock {
    /// Takes the lock of `dir`, or says who holds it.
    pub fn take(dir: &Path) -> Result<AccountsLock, NodeError> {
        let path = dir.join(format!("{ACCOUNTS_FILE}.lock"));
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => NodeError::Config {
                    path: path.display().to_string(),
                    reason: "another command is changing the accounts (or one was killed: remove this file then)".into(),
                },
                _ => NodeError::Io {
                    path: path.display().to_string(),
                    source,
                },
            })?;
        Ok(AccountsLock(path))
    }
}

impl Drop for AccountsLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The accounts as the daemon's API sees them: read again whenever the
/// file changes (its modification time or length).
#[derive(Debug)]
pub struct AccountBook {
    dir: PathBuf,
    cached: RwLock<(Option<(SystemTime, u64)>, Accounts)>,
}

impl AccountBook {
    /// The accounts of a data directory, read now.
    pub fn open(dir: &Path) -> Result<AccountBook, NodeError> {
        let stamp = stamp(dir);
        let accounts = Accounts::read(dir)?;
        Ok(AccountBook {
            dir: dir.to_path_buf(),
            cached: RwLock::new((stamp, accounts)),
        })
    }

    /// Checks a credential for `permission`; returns the account's name
    /// and role.
    /// A file changed since it was last read is read again first; one
    /// that no longer reads keeps the accounts read before (and says so
    /// in the log), so that a bad edit never locks everyone out or lets
    /// anyone in.
    pub fn check(
        &self,
        credential: Option<&str>,
        permission: Permission,
    ) -> Result<(String, Role), AuthError> {
        self.refresh();
        let credential = credential.ok_or(AuthError::Missing)?;
        let guard = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let account = guard.1.authenticate(credential.trim())?;
        if !account.role.permits(permission) {
            return Err(AuthError::Forbidden {
                account: account.name.clone(),
                role: account.role.name(),
                needs: permission.name(),
                granting: Role::granting(permission).join(" or "),
            });
        }
        Ok((account.name.clone(), account.role))
    }

    /// The role of an active (not revoked) account.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        self.refresh();
        let guard = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard
            .1
            .get(name)
            .filter(|a| a.revoked_ms.is_none())
            .map(|a| a.role)
    }

    /// The stored hash of an account's credential (the API's proof that it
    /// knows the credential a client is about to send).
    pub fn hash_of(&self, name: &str) -> Option<String> {
        self.refresh();
        let guard = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.1.get(name).map(|a| a.hash.clone())
    }

    fn refresh(&self) {
        let now = stamp(&self.dir);
        let known = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
        if now == known {
            return;
        }
        match Accounts::read(&self.dir) {
            Ok(accounts) => {
                let mut guard = self
                    .cached
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *guard = (now, accounts);
            }
            Err(e) => tracing::error!("accounts not reloaded, the previous ones stay: {e}"),
        }
    }
}

fn stamp(dir: &Path) -> Option<(SystemTime, u64)> {
    let meta = fs::metadata(dir.join(ACCOUNTS_FILE)).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_opens_its_account_and_nothing_else() {
        let mut accounts = Accounts::default();
        let reader = accounts.add("tax-desk-1", Role::Reader, 5).unwrap();
        let admin = accounts.add("admin", Role::Admin, 6).unwrap();
        assert_eq!(accounts.authenticate(&reader).unwrap().name, "tax-desk-1");
        assert_eq!(accounts.authenticate(&admin).unwrap().role, Role::Admin);
        // Another account's name with this secret, a flipped digit, no
        // dot, a short secret: refused.
        let (_, secret) = reader.split_once('.').unwrap();
        assert_eq!(
            accounts.authenticate(&format!("admin.{secret}")),
            Err(AuthError::Wrong)
        );
        let mut flipped = reader.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(accounts.authenticate(&flipped), Err(AuthError::Wrong));
        assert_eq!(accounts.authenticate("nodot"), Err(AuthError::Malformed));
        assert_eq!(
            accounts.authenticate("admin.abcd"),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            accounts.authenticate(&format!("nobody.{secret}")),
            Err(AuthError::Wrong)
        );
        // The file keeps the hash only.
        let text = toml::to_string(&accounts).unwrap();
        assert!(!text.contains(secret), "{text}");
        accounts.revoke("tax-desk-1", 9).unwrap();
        assert_eq!(
            accounts.authenticate(&reader),
            Err(AuthError::Revoked("tax-desk-1".into()))
        );
        assert!(accounts.revoke("tax-desk-1", 10).is_err());
        assert!(accounts.add("tax-desk-1", Role::Reader, 11).is_err());
    }

    #[test]
    fn roles_grant_what_the_table_says() {
        use Permission::*;
        let table = [
            (Role::Reader, [true, false, false, false]),
            (Role::Operator, [true, true, false, false]),
            (Role::Auditor, [true, false, true, false]),
            (Role::Admin, [true, true, true, true]),
        ];
        for (role, grants) in table {
            for (permission, granted) in [Read, Issue, Audit, Admin].into_iter().zip(grants) {
                assert_eq!(role.permits(permission), granted, "{role:?} {permission:?}");
            }
        }
        assert_eq!(Role::granting(Audit), vec!["auditor", "admin"]);
        assert_eq!(Role::parse("auditor"), Ok(Role::Auditor));
        assert!(
            Role::parse("root")
                .unwrap_err()
                .contains("reader, operator")
        );
    }

    #[test]
    fn the_book_follows_the_file_and_keeps_the_last_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut accounts = Accounts::default();
        let reader = accounts.add("reader-1", Role::Reader, 1).unwrap();
        accounts.write(dir.path()).unwrap();
        let book = AccountBook::open(dir.path()).unwrap();
        assert_eq!(
            book.check(Some(&reader), Permission::Read),
            Ok(("reader-1".to_string(), Role::Reader))
        );
        let refused = book.check(Some(&reader), Permission::Issue).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("needs the role operator or admin"),
            "{refused}"
        );
        assert_eq!(book.check(None, Permission::Read), Err(AuthError::Missing));
        // Revoked from the command line: refused at once.
        accounts.revoke("reader-1", 2).unwrap();
        accounts.write(dir.path()).unwrap();
        assert_eq!(
            book.check(Some(&reader), Permission::Read),
            Err(AuthError::Revoked("reader-1".into()))
        );
        // A damaged file leaves the accounts read before.
        fs::write(dir.path().join(ACCOUNTS_FILE), "[[account]]\nname = 7\n").unwrap();
        assert_eq!(
            book.check(Some(&reader), Permission::Read),
            Err(AuthError::Revoked("reader-1".into()))
        );
    }

    #[test]
    fn bad_files_are_refused_naming_what_is_wrong() {
        let path = Path::new(ACCOUNTS_FILE);
        let hash = "a".repeat(64);
        let cases = [
            ("[[account]]\nname = \"x\"\n", "missing field"),
            (
                &format!(
                    "[[account]]\nname = \"Bad Name\"\nrole = \"reader\"\nhash = \"{hash}\"\ncreated_ms = 1\n"
                ),
                "lower-case",
            ),
            (
                &format!(
                    "[[account]]\nname = \"a\"\nrole = \"root\"\nhash = \"{hash}\"\ncreated_ms = 1\n"
                ),
                "unknown variant",
            ),
            (
                "[[account]]\nname = \"a\"\nrole = \"reader\"\nhash = \"xyz\"\ncreated_ms = 1\n",
                "64 lower-case hex",
            ),
            (
                &format!(
                    "[[account]]\nname = \"a\"\nrole = \"reader\"\nhash = \"{hash}\"\ncreated_ms = 1\n[[account]]\nname = \"a\"\nrole = \"reader\"\nhash = \"{hash}\"\ncreated_ms = 1\n"
                ),
                "appears twice",
            ),
            (
                &format!(
                    "[[account]]\nname = \"a\"\nrole = \"reader\"\nhash = \"{hash}\"\ncreated_ms = 1\nextra = 1\n"
                ),
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            let error = Accounts::parse(path, text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
