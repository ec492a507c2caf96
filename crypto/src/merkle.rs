//! The per-author Merkle log: RFC 6962 tree shape over BLAKE3.
//!
//! Leaves are `blake3(0x00 || data)` and interior nodes
//! `blake3(0x01 || left || right)`; the left subtree of a tree of `n`
//! leaves holds the largest power of two strictly below `n`. A notice's id
//! is its leaf hash, so the log of an author is the Merkle tree over its
//! notice ids in `seq` order. Proof verification follows RFC 9162
//! sections 2.1.3.2 and 2.1.4.2.

use crate::Digest;
use smallvec::SmallVec;

mod paged;
pub use paged::{PAGE_LEAVES, PagedError, PagedTree};

/// Prefix of leaf hashes (second-preimage separation from nodes).
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of interior node hashes.
const NODE_PREFIX: u8 = 0x01;

/// The leaf hash of `data`: `blake3(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[LEAF_PREFIX]);
    hasher.update(data);
    Digest(*hasher.finalize().as_bytes())
}

/// An interior node: `blake3(0x01 || left || right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[NODE_PREFIX]);
    hasher.update(&left.0);
    hasher.update(&right.0);
    Digest(*hasher.finalize().as_bytes())
}

/// The root of the empty tree: the hash of the empty string.
pub fn empty_root() -> Digest {
    Digest::of(b"")
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root over leaf hashes (MTH of RFC 6962).
pub fn root(leaves: &[Digest]) -> Digest {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index`, or `None` if it is not a leaf.
pub fn inclusion_proof(leaves: &[Digest], index: usize) -> Option<Vec<Digest>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(leaves, index, &mut proof);
    Some(proof)
}

fn path(leaves: &[Digest], index: usize, proof: &mut Vec<Digest>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if index < k {
        path(&leaves[..k], index, proof);
        proof.push(root(&leaves[k..]));
    } else {
        path(&leaves[k..], index - k, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// A growing log's tree with every complete subtree's hash kept: level 0
/// holds the leaves, level *k* the hashes of the aligned subtrees of 2^*k*
/// leaves. The root at any size and the audit path of any leaf then take
/// O(log² n) hashes instead of O(n) ([`root`], [`inclusion_proof`] give
/// the same values).
#[derive(Clone, Debug, Default)]
pub struct Tree {
    levels: Vec<Vec<Digest>>,
    /// Hashes of the incomplete subtrees computed so far (the right edges
    /// of past sizes): a range's hash never changes as leaves are added.
    partial: std::cell::RefCell<std::collections::HashMap<(usize, usize), Digest>>,
}

/// Incomplete subtree hashes a tree keeps before it starts over.
const PARTIAL_MAX: usize = 1 << 16;

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Leaves held.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Digests kept at every level (what the tree costs in memory, 32
    /// bytes each, before the cache of incomplete subtrees).
    pub fn digests(&self) -> u64 {
        self.levels.iter().map(|l| l.len() as u64).sum()
    }

    /// No leaf yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Digest) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut k = 0;
        while self.levels[k].len().is_multiple_of(2) {
            let n = self.levels[k].len();
            let hash = node_hash(&self.levels[k][n - 2], &self.levels[k][n - 1]);
            if self.levels.len() == k + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[k + 1].push(hash);
            k += 1;
        }
    }

    /// The hash of leaves `start..end` (held, non-empty).
    fn subtree(&self, start: usize, end: usize) -> Digest {
        let n = end - start;
        if n.is_power_of_two() && start.is_multiple_of(n) {
            return self.levels[n.trailing_zeros() as usize][start / n];
        }
        if let Some(known) = self.partial.borrow().get(&(start, end)) {
            return *known;
        }
        let k = split(n);
        let hash = node_hash(
            &self.subtree(start, start + k),
            &self.subtree(start + k, end),
        );
        let mut partial = self.partial.borrow_mut();
        if partial.len() >= PARTIAL_MAX {
            partial.clear();
        }
        partial.insert((start, end), hash);
        hash
    }

    /// The root of the first `size` leaves, if held.
    pub fn root(&self, size: u64) -> Option<Digest> {
        let size = usize::try_from(size).ok()?;
        if size as u64 > self.len() {
            return None;
        }
        Some(if size == 0 {
            empty_root()
        } else {
            self.subtree(0, size)
        })
    }

    /// The audit path of leaf `index` in the tree of the first `size`
    /// leaves, if both are held.
    pub fn inclusion(&self, index: u64, size: u64) -> Option<Vec<Digest>> {
        let (index, size) = (usize::try_from(index).ok()?, usize::try_from(size).ok()?);
        if index >= size || size as u64 > self.len() {
            return None;
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Some(proof)
    }

    fn path(&self, index: usize, start: usize, end: usize, proof: &mut Vec<Digest>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if index < k {
            self.path(index, start, start + k, proof);
            proof.push(self.subtree(start + k, end));
        } else {
            self.path(index - k, start + k, end, proof);
            proof.push(self.subtree(start, start + k));
        }
    }
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose
/// root is `root`.
pub fn verify_inclusion(
    leaf: &Digest,
    index: u64,
    size: u64,
    proof: &[Digest],
    root: &Digest,
) -> bool {
    if index >= size {
        return false;
    }
    let mut f = index;
    let mut s = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// The proof that the tree of the first `old_size` leaves is a prefix of
/// the tree of all `leaves`, or `None` if `old_size` is larger.
pub fn consistency_proof(leaves: &[Digest], old_size: usize) -> Option<Vec<Digest>> {
    if old_size > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    if old_size > 0 && old_size < leaves.len() {
        subproof(old_size, leaves, true, &mut proof);
    }
    Some(proof)
}

fn subproof(m: usize, leaves: &[Digest], complete: bool, proof: &mut Vec<Digest>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Digest,
    new_root: &Digest,
    proof: &[Digest],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty() && *old_root == empty_root();
    }
    let mut path: Vec<Digest> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let mut f = old_size - 1;
    let mut s = new_size - 1;
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut old_acc = *first;
    let mut new_acc = *first;
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            old_acc = node_hash(c, &old_acc);
            new_acc = node_hash(c, &new_acc);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            new_acc = node_hash(&new_acc, c);
        }
        f >>= 1;
        s >>= 1;
    }
    old_acc == *old_root && new_acc == *new_root && s == 0
}

/// The right edge of a growing log: the roots of its perfect subtrees,
/// largest first. Appending is amortised O(1) and the root O(log n), so a
/// replica keeps each author's root current without keeping the leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Inline up to eight peaks (logs under 256 notices): a replica copies
    /// a head's frontier for every notice it admits.
    peaks: SmallVec<[Digest; 8]>,
}

/// Why stored frontier bytes are not a frontier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored Merkle frontier is damaged: {0}")]
pub struct FrontierDecodeError(String);

impl Frontier {
    /// The frontier of the empty log.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Number of leaves appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Digest) {
        let mut hash = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let Some(left) = self.peaks.pop() else {
                unreachable!("a frontier holds one peak per set bit of its size");
            };
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// The root of the log so far, equal to [`root`] over all its leaves.
    pub fn root(&self) -> Digest {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else {
            return empty_root();
        };
        peaks.fold(*last, |acc, peak| node_hash(peak, &acc))
    }

    /// Fixed layout: size (u64 little-endian) then the peaks.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(8 + 32 * self.peaks.len());
        bytes.extend_from_slice(&self.size.to_le_bytes());
        for peak in &self.peaks {
            bytes.extend_from_slice(&peak.0);
        }
        bytes
    }

    /// Reads [`Frontier::to_bytes`], checking that the peak count matches
    /// the size.
    pub fn from_bytes(bytes: &[u8]) -> Result<Frontier, FrontierDecodeError> {
        let (size_bytes, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| FrontierDecodeError("shorter than its size field".into()))?;
        let size = u64::from_le_bytes(*size_bytes);
        let peak_count = size.count_ones() as usize;
        if rest.len() != peak_count * 32 {
            return Err(FrontierDecodeError(format!(
                "size {size} needs {peak_count} peaks, found {} bytes",
                rest.len()
            )));
        }
        let peaks = rest
            .chunks_exact(32)
            .map(|chunk| {
                let mut peak = [0u8; 32];
                peak.copy_from_slice(chunk);
                Digest(peak)
            })
            .collect();
        Ok(Frontier { size, peaks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Digest> {
        (0..n as u32).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    // The tree shape of RFC 6962, computed by hand for five leaves:
    // MTH(d0..d4) = H(H(H(d0,d1), H(d2,d3)), d4); for three leaves
    // H(H(d0,d1), d2). Leaves and nodes carry different prefixes.
    #[test]
    fn hand_computed_small_trees() {
        let d = leaves(5);
        let h = node_hash;
        assert_eq!(root(&d[..1]), d[0]);
        assert_eq!(root(&d[..2]), h(&d[0], &d[1]));
        assert_eq!(root(&d[..3]), h(&h(&d[0], &d[1]), &d[2]));
        assert_eq!(root(&d), h(&h(&h(&d[0], &d[1]), &h(&d[2], &d[3])), &d[4]));
        let mut prefixed = vec![0x01];
        prefixed.extend_from_slice(&d[0].0);
        prefixed.extend_from_slice(&d[1].0);
        assert_eq!(h(&d[0], &d[1]), Digest::of(&prefixed));
        assert_eq!(leaf_hash(b"x"), Digest::of(b"\x00x"));
        assert_eq!(root(&[]), Digest::of(b""));
        assert_eq!(inclusion_proof(&d, 4), Some(vec![root(&d[..4])]));
        assert_eq!(
            inclusion_proof(&d, 2),
            Some(vec![d[3], h(&d[0], &d[1]), d[4]])
        );
    }

    // Every index of every size up to 300: the proof verifies, and fails
    // for the wrong index, the wrong size (against that size's root), the
    // wrong leaf and a shortened proof.
    #[test]
    fn inclusion_every_index_every_size() {
        let all = leaves(301);
        for n in 1..all.len() {
            let tree = &all[..n];
            let r = root(tree);
            let r_next = root(&all[..n + 1]);
            for i in 0..n {
                let proof = inclusion_proof(tree, i).unwrap();
                let (index, size) = (i as u64, n as u64);
                assert!(
                    verify_inclusion(&tree[i], index, size, &proof, &r),
                    "n={n} i={i}"
                );
                assert!(!verify_inclusion(
                    &tree[i],
                    index,
                    size + 1,
                    &proof,
                    &r_next
                ));
                assert!(!verify_inclusion(&tree[i], size, size, &proof, &r));
                if n > 1 {
                    let other = (i + 1) % n;
                    assert!(!verify_inclusion(&tree[i], other as u64, size, &proof, &r));
                    assert!(!verify_inclusion(&tree[other], index, size, &proof, &r));
                    assert!(!verify_inclusion(&tree[i], index, size, &proof[1..], &r));
                }
            }
            assert_eq!(inclusion_proof(tree, n), None);
        }
    }

    // Every pair of sizes 0 <= m <= n <= 300: the proof verifies, and fails
    // for a wrong old size, a wrong old root and a truncated proof.
    #[test]
    fn consistency_every_pair_of_sizes() {
        let all = leaves(300);
        let roots: Vec<Digest> = (0..=all.len()).map(|n| root(&all[..n])).collect();
        for n in 0..=all.len() {
            for m in 0..=n {
                let proof = consistency_proof(&all[..n], m).unwrap();
                let (old, new) = (m as u64, n as u64);
                assert!(
                    verify_consistency(old, new, &roots[m], &roots[n], &proof),
                    "m={m} n={n}"
                );
                if m < n {
                    assert!(
                        !verify_consistency(old + 1, new, &roots[m + 1], &roots[n], &proof)
                            || proof.is_empty() && m + 1 == n
                    );
                    assert!(
                        !verify_consistency(old, new, &roots[n], &roots[n], &proof)
                            || roots[m] == roots[n]
                    );
                    if let Some((_, shorter)) = proof.split_last() {
                        assert!(!verify_consistency(old, new, &roots[m], &roots[n], shorter));
                    }
                }
                assert!(!verify_consistency(
                    new + 1,
                    new,
                    &roots[n],
                    &roots[n],
                    &proof
                ));
            }
            assert_eq!(consistency_proof(&all[..n], n + 1), None);
        }
    }

    // The frontier's root equals the recursive root at every size, and its
    // stored form round trips.
    #[test]
    fn frontier_matches_recursive_root() {
        let all = leaves(300);
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for (i, leaf) in all.iter().enumerate() {
            frontier.push(*leaf);
            assert_eq!(frontier.root(), root(&all[..=i]));
            assert_eq!(
                Frontier::from_bytes(&frontier.to_bytes()),
                Ok(frontier.clone())
            );
        }
        assert!(Frontier::from_bytes(&[1, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    proptest! {
        // Random sizes beyond the exhaustive range, with random indexes.
        #[test]
        fn inclusion_random_large(n in 1usize..2000, seed in any::<usize>()) {
            let tree = leaves(n);
            let index = seed % n;
            let proof = inclusion_proof(&tree, index).unwrap();
            prop_assert!(verify_inclusion(&tree[index], index as u64, n as u64, &proof, &root(&tree)));
        }
    }

    #[test]
    fn a_kept_tree_gives_the_roots_and_paths_of_the_leaves() {
        let leaves: Vec<Digest> = (0u32..70).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut tree = Tree::new();
        assert_eq!(tree.root(0), Some(empty_root()));
        for (n, leaf) in leaves.iter().enumerate() {
            tree.push(*leaf);
            let size = n + 1;
            assert_eq!(tree.root(size as u64), Some(root(&leaves[..size])));
            for index in 0..size {
                assert_eq!(
                    tree.inclusion(index as u64, size as u64),
                    inclusion_proof(&leaves[..size], index),
                    "leaf {index} of {size}"
                );
            }
        }
        // Every earlier size stays answerable.
        for size in 1..=70usize {
            assert_eq!(tree.root(size as u64), Some(root(&leaves[..size])));
            assert_eq!(
                tree.inclusion(size as u64 / 2, size as u64),
                inclusion_proof(&leaves[..size], size / 2)
            );
        }
        assert_eq!(tree.root(71), None);
        assert_eq!(tree.inclusion(70, 70), None);
    }
}
