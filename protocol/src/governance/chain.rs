//! The roster chain: every valid version received, and the chain chosen
//! from them as a pure function of that set, so that every replica that
//! holds the same versions is on the same roster whatever the order they
//! arrived in.

use super::{GovernanceError, SignedVersion, Version, signing_members, verify_next};
use crate::model::{AuthorityId, RosterHash};
use crate::roster::Federation;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most valid versions a chain keeps (chosen or not).
pub const VERSIONS_MAX: usize = 4096;
/// Most versions held while the version they replace is unknown.
pub const HELD_MAX: usize = 64;

/// Two valid versions with the same number replacing the same version:
/// the lower hash is on the chain everywhere; the members who signed both
/// equivocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    /// The number both carry.
    pub number: u64,
    /// The version on the chain (the lower hash).
    pub chosen: Arc<SignedVersion>,
    /// The other one.
    pub other: Arc<SignedVersion>,
    /// The members of the replaced version who signed both.
    pub signers: Vec<AuthorityId>,
}

/// What adding a version did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added {
    /// Valid; `current` is the chain's current version number after it (it
    /// may be unchanged: the version lost to a lower hash, or it extends a
    /// version that is not on the chain).
    Valid {
        /// Its number.
        number: u64,
        /// Whether it is on the chosen chain now.
        chosen: bool,
    },
    /// The version it replaces is unknown here: held until it arrives.
    Held {
        /// Its number.
        number: u64,
    },
    /// This body is known already.
    Known,
}

#[derive(Clone, Debug)]
struct Held {
    signed: Arc<SignedVersion>,
    previous: RosterHash,
}

/// Every valid roster version received and the chain chosen from them.
#[derive(Clone, Debug)]
pub struct Chain {
    genesis: Arc<Version>,
    valid: BTreeMap<RosterHash, Arc<Version>>,
    held: BTreeMap<RosterHash, Held>,
    chosen: Vec<Arc<Version>>,
    evidence: Vec<Equivocation>,
}

impl Chain {
    /// The chain of genesis alone.
    pub fn new(genesis: Federation) -> Chain {
        let genesis = Arc::new(Version::genesis(genesis));
        Chain {
            chosen: vec![genesis.clone()],
            genesis,
            valid: BTreeMap::new(),
            held: BTreeMap::new(),
            evidence: Vec::new(),
        }
    }

    /// The current version (the last of the chosen chain).
    pub fn current(&self) -> &Arc<Version> {
        self.chosen.last().unwrap_or(&self.genesis)
    }

    /// Version 0.
    pub fn genesis(&self) -> &Arc<Version> {
        &self.genesis
    }

    /// The chosen version `number`, if the chain has reached it.
    pub fn version(&self, number: u64) -> Option<&Arc<Version>> {
        self.chosen.get(usize::try_from(number).ok()?)
    }

    /// The notices the chosen versions after `after` up to `through`
    /// grant `member` as allowances (saturating): what its notice budget
    /// gains when its log first names a version past `after` (`None`:
    /// its log is empty, so every version from 1 on counts).
    pub fn allowance(&self, member: &AuthorityId, after: Option<u64>, through: u64) -> u64 {
        let first = after.map_or(1, |after| after.saturating_add(1));
        let (Ok(first), Ok(through)) = (usize::try_from(first), usize::try_from(through)) else {
            return 0;
        };
        self.chosen
            .get(first..=through.min(self.chosen.len().saturating_sub(1)))
            .unwrap_or_default()
            .iter()
            .filter_map(|version| version.allowances.get(member))
            .fold(0u64, |sum, notices| sum.saturating_add(*notices))
    }

    /// The chosen chain, from version 0.
    pub fn chosen(&self) -> &[Arc<Version>] {
        &self.chosen
    }

    /// Equivocation evidence along the chosen chain.
    pub fn evidence(&self) -> &[Equivocation] {
        &self.evidence
    }

    /// Every valid version received (on the chain or not), in number then
    /// hash order: what sync offers and bundles carry, so that every
    /// replica gets the same set and the same evidence.
    pub fn signed_versions(&self) -> Vec<Arc<SignedVersion>> {
        let mut all: Vec<&Arc<Version>> = self.valid.values().collect();
        all.sort_by_key(|v| (v.number, v.hash));
        all.into_iter().filter_map(|v| v.signed.clone()).collect()
    }

    /// How many versions are held waiting for the one they replace.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Whether this version body is known (valid or held).
    pub fn knows(&self, hash: &RosterHash) -> bool {
        self.valid.contains_key(hash) || self.held.contains_key(hash)
    }

    fn version_by_hash(&self, hash: &RosterHash) -> Option<&Arc<Version>> {
        if *hash == self.genesis.hash {
            return Some(&self.genesis);
        }
        self.valid.get(hash)
    }

    /// Adds a signed version received from anywhere.
    pub fn add(&mut self, signed: SignedVersion) -> Result<Added, GovernanceError> {
        let hash = signed.hash();
        if self.knows(&hash) {
            return Ok(Added::Known);
        }
        let version = signed.version()?;
        let federation = self.genesis.federation.id();
        if version.federation != federation {
            return Err(GovernanceError::WrongFederation {
                found: version.federation,
                expected: federation,
            });
        }
        if version.number == 0 {
            return Err(GovernanceError::Number {
                found: 0,
                previous: 0,
            });
        }
        let Some(previous) = self.version_by_hash(&version.previous).cloned() else {
            if self.held.len() >= HELD_MAX {
                return Err(GovernanceError::TooMany {
                    what: "roster versions waiting for the version they replace",
                    max: HELD_MAX,
                });
            }
            self.held.insert(
                hash,
                Held {
                    signed: Arc::new(signed),
                    previous: version.previous,
                },
            );
            return Ok(Added::Held {
                number: version.number,
            });
        };
        if self.valid.len() >= VERSIONS_MAX {
            return Err(GovernanceError::TooMany {
                what: "roster versions",
                max: VERSIONS_MAX,
            });
        }
        let next = verify_next(&previous, &signed)?;
        let number = next.number;
        self.valid.insert(hash, Arc::new(next));
        self.release_held(hash);
        self.choose();
        let chosen = self.version(number).is_some_and(|v| v.hash == hash);
        Ok(Added::Valid { number, chosen })
    }

    /// Verifies the held versions that replace `hash`, and theirs in turn;
    /// the invalid ones are dropped.
    fn release_held(&mut self, hash: RosterHash) {
        let mut ready = vec![hash];
        while let Some(parent) = ready.pop() {
            let waiting: Vec<RosterHash> = self
                .held
                .iter()
                .filter(|(_, held)| held.previous == parent)
                .map(|(hash, _)| *hash)
                .collect();
            for child in waiting {
                let Some(held) = self.held.remove(&child) else {
                    continue;
                };
                let Some(previous) = self.version_by_hash(&parent).cloned() else {
                    continue;
                };
                if self.valid.len() < VERSIONS_MAX
                    && let Ok(next) = verify_next(&previous, &held.signed)
                {
                    self.valid.insert(child, Arc::new(next));
                    ready.push(child);
                }
            }
        }
    }

    /// The chosen chain: from genesis, at each number the lowest hash among
    /// the valid versions that replace the chosen one below.
    fn choose(&mut self) {
        let mut chosen = vec![self.genesis.clone()];
        let mut evidence = Vec::new();
        while let Some(tip) = chosen.last().cloned() {
            let mut next: Vec<&Arc<Version>> = self
                .valid
                .values()
                .filter(|v| v.number == tip.number + 1 && v.previous == tip.hash)
                .collect();
            if next.is_empty() {
                break;
            }
            next.sort_by_key(|v| v.hash);
            let winner = next[0].clone();
            for other in &next[1..] {
                let (Some(a), Some(b)) = (winner.signed.clone(), other.signed.clone()) else {
                    continue;
                };
                let both = signing_members(&tip, &a);
                let signers = signing_members(&tip, &b)
                    .into_iter()
                    .filter(|m| both.contains(m))
                    .collect();
                evidence.push(Equivocation {
                    number: winner.number,
                    chosen: a,
                    other: b,
                    signers,
                });
            }
            chosen.push(winner);
        }
        self.chosen = chosen;
        self.evidence = evidence;
    }
}
