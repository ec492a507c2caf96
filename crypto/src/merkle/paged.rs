//! A growing log's tree kept in pages: only the hashes of complete
//! [`PAGE_LEAVES`]-leaf pages and above stay in memory (two digests per
//! page, a sixty-fourth of the leaves), with the leaves of the last,
//! incomplete page. The leaves of a complete page are read back from
//! wherever the log keeps them when a proof needs them, and checked
//! against the page's kept hash. A root, an audit path or a consistency
//! proof then reads at most a few pages and takes O(log² n) hashes,
//! whatever the log's size.

use super::{Tree, empty_root, node_hash, root, split};
use crate::Digest;
use std::collections::BTreeMap;

/// Leaves per page: a node's store keeps a log's ids in pages of this
/// many, so a page is one read.
pub const PAGE_LEAVES: u64 = 64;

/// Why a paged tree could not answer.
#[derive(Debug, thiserror::Error)]
pub enum PagedError<E: std::error::Error + 'static> {
    /// Reading a page's leaves failed.
    #[error("reading page {page} of the log: {source}")]
    Read {
        /// The page (its first leaf is `page * PAGE_LEAVES`).
        page: u64,
        /// What failed.
        source: E,
    },
    /// The leaves read for a page are not the ones it was built from: the
    /// log's copy changed under the tree.
    #[error(
        "the {found} leaves read for page {page} of the log do not hash to the page's kept hash"
    )]
    Mismatch {
        /// The page.
        page: u64,
        /// How many leaves were read.
        found: usize,
    },
}

/// A tree whose complete pages are kept as hashes (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct PagedTree {
    /// The tree over the complete pages' hashes.
    pages: Tree,
    /// The leaves past the last complete page (fewer than a page).
    tail: Vec<Digest>,
}

impl PagedTree {
    /// An empty tree.
    pub fn new() -> PagedTree {
        PagedTree::default()
    }

    /// Leaves held.
    pub fn len(&self) -> u64 {
        self.pages.len() * PAGE_LEAVES + self.tail.len() as u64
    }

    /// No leaf yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Digests kept in memory: the page tree's levels and the tail.
    pub fn digests(&self) -> u64 {
        self.pages.digests() + self.tail.len() as u64
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Digest) {
        self.tail.push(leaf);
        if self.tail.len() as u64 == PAGE_LEAVES {
            self.pages.push(root(&self.tail));
            self.tail.clear();
        }
    }

    /// The root of the first `size` leaves (`None`: more than held), the
    /// leaves of complete pages read with `read` (the page's number in,
    /// its [`PAGE_LEAVES`] leaves out).
    pub fn root<E, F>(&self, size: u64, read: F) -> Result<Option<Digest>, PagedError<E>>
    where
        E: std::error::Error + 'static,
        F: FnMut(u64) -> Result<Vec<Digest>, E>,
    {
        if size > self.len() {
            return Ok(None);
        }
        if size == 0 {
            return Ok(Some(empty_root()));
        }
        Reader::new(self, read).subtree(0, size).map(Some)
    }

    /// The audit path of leaf `index` in the tree of the first `size`
    /// leaves (`None`: not both held), as [`super::inclusion_proof`] gives it.
    pub fn inclusion<E, F>(
        &self,
        index: u64,
        size: u64,
        read: F,
    ) -> Result<Option<Vec<Digest>>, PagedError<E>>
    where
        E: std::error::Error + 'static,
        F: FnMut(u64) -> Result<Vec<Digest>, E>,
    {
        if index >= size || size > self.len() {
            return Ok(None);
        }
        let mut proof = Vec::new();
        Reader::new(self, read).path(index, 0, size, &mut proof)?;
        Ok(Some(proof))
    }

    /// The proof that the tree of the first `old_size` leaves is a prefix
    /// of the tree of the first `new_size` (`None`: `old_size` is larger,
    /// or `new_size` is not held), as [`super::consistency_proof`] gives it.
    pub fn consistency<E, F>(
        &self,
        old_size: u64,
        new_size: u64,
        read: F,
    ) -> Result<Option<Vec<Digest>>, PagedError<E>>
    where
        E: std::error::Error + 'static,
        F: FnMut(u64) -> Result<Vec<Digest>, E>,
    {
        if old_size > new_size || new_size > self.len() {
            return Ok(None);
        }
        let mut proof = Vec::new();
        if old_size > 0 && old_size < new_size {
            Reader::new(self, read).subproof(old_size, 0, new_size, true, &mut proof)?;
        }
        Ok(Some(proof))
    }
}

/// One answer's reads: the pages it needed, read once each.
struct Reader<'t, F> {
    tree: &'t PagedTree,
    read: F,
    pages: BTreeMap<u64, Vec<Digest>>,
}

impl<'t, E, F> Reader<'t, F>
where
    E: std::error::Error + 'static,
    F: FnMut(u64) -> Result<Vec<Digest>, E>,
{
    fn new(tree: &'t PagedTree, read: F) -> Reader<'t, F> {
        Reader {
            tree,
            read,
            pages: BTreeMap::new(),
        }
    }

    /// The hash of leaves `start..end` (held, non-empty). Every range the
    /// RFC 6962 recursion reaches starts at a multiple of the power of two
    /// at or above its length, so a range of at most a page lies in one
    /// page, and a range of whole pages is a range of the page tree.
    fn subtree(&mut self, start: u64, end: u64) -> Result<Digest, PagedError<E>> {
        let n = end - start;
        let complete = self.tree.pages.len();
        if start.is_multiple_of(PAGE_LEAVES)
            && end.is_multiple_of(PAGE_LEAVES)
            && end / PAGE_LEAVES <= complete
        {
            let (first, last) = (start / PAGE_LEAVES, end / PAGE_LEAVES);
            return Ok(self.tree.pages.subtree(first as usize, last as usize));
        }
        if n <= PAGE_LEAVES {
            let page = start / PAGE_LEAVES;
            let from = (start % PAGE_LEAVES) as usize;
            let leaves = self.leaves(page)?;
            let Some(range) = leaves.get(from..from + n as usize) else {
                return Err(PagedError::Mismatch {
                    page,
                    found: leaves.len(),
                });
            };
            return Ok(root(range));
        }
        let k = split(n as usize) as u64;
        let left = self.subtree(start, start + k)?;
        let right = self.subtree(start + k, end)?;
        Ok(node_hash(&left, &right))
    }

    /// The leaves of `page`: the tail's, or a complete page's read and
    /// checked against its kept hash.
    fn leaves(&mut self, page: u64) -> Result<&[Digest], PagedError<E>> {
        let complete = self.tree.pages.len();
        if page == complete {
            return Ok(&self.tree.tail);
        }
        if !self.pages.contains_key(&page) {
            let leaves = (self.read)(page).map_err(|source| PagedError::Read { page, source })?;
            let kept = self.tree.pages.subtree(page as usize, page as usize + 1);
            if leaves.len() as u64 != PAGE_LEAVES || root(&leaves) != kept {
                return Err(PagedError::Mismatch {
                    page,
                    found: leaves.len(),
                });
            }
            self.pages.insert(page, leaves);
        }
        Ok(self.pages.get(&page).map_or(&[], Vec::as_slice))
    }

    fn path(
        &mut self,
        index: u64,
        start: u64,
        end: u64,
        proof: &mut Vec<Digest>,
    ) -> Result<(), PagedError<E>> {
        let n = end - start;
        if n <= 1 {
            return Ok(());
        }
        let k = split(n as usize) as u64;
        if index < k {
            self.path(index, start, start + k, proof)?;
            proof.push(self.subtree(start + k, end)?);
        } else {
            self.path(index - k, start + k, end, proof)?;
            proof.push(self.subtree(start, start + k)?);
        }
        Ok(())
    }

    fn subproof(
        &mut self,
        m: u64,
        start: u64,
        end: u64,
        complete: bool,
        proof: &mut Vec<Digest>,
    ) -> Result<(), PagedError<E>> {
        let n = end - start;
        if m == n {
            if !complete {
                proof.push(self.subtree(start, end)?);
            }
            return Ok(());
        }
        let k = split(n as usize) as u64;
        if m <= k {
            self.subproof(m, start, start + k, complete, proof)?;
            proof.push(self.subtree(start + k, end)?);
        } else {
            self.subproof(m - k, start + k, end, false, proof)?;
            proof.push(self.subtree(start, start + k)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{consistency_proof, inclusion_proof, leaf_hash};
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: u64) -> Vec<Digest> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    fn paged(leaves: &[Digest]) -> PagedTree {
        let mut tree = PagedTree::new();
        for leaf in leaves {
            tree.push(*leaf);
        }
        tree
    }

    /// A page store over `leaves` that counts its reads.
    fn pages(
        leaves: &[Digest],
        reads: &mut u32,
    ) -> impl FnMut(u64) -> Result<Vec<Digest>, std::io::Error> {
        move |page| {
            *reads += 1;
            let from = (page * PAGE_LEAVES) as usize;
            Ok(leaves[from..from + PAGE_LEAVES as usize].to_vec())
        }
    }

    #[test]
    fn roots_paths_and_consistency_equal_the_leaves_own_at_every_size_around_pages() {
        let all = leaves(3 * PAGE_LEAVES + 5);
        let tree = paged(&all);
        for size in 0..=all.len() as u64 {
            let mut reads = 0;
            let root_of = tree.root(size, pages(&all, &mut reads)).unwrap();
            assert_eq!(root_of, Some(root(&all[..size as usize])), "size {size}");
            for index in 0..size {
                let path = tree
                    .inclusion(index, size, pages(&all, &mut reads))
                    .unwrap();
                assert_eq!(
                    path,
                    inclusion_proof(&all[..size as usize], index as usize),
                    "leaf {index} of {size}"
                );
            }
            for old in 0..=size {
                let proof = tree
                    .consistency(old, size, pages(&all, &mut reads))
                    .unwrap();
                assert_eq!(
                    proof,
                    consistency_proof(&all[..size as usize], old as usize),
                    "{old} to {size}"
                );
            }
        }
        let mut reads = 0;
        let beyond = all.len() as u64 + 1;
        assert_eq!(tree.root(beyond, pages(&all, &mut reads)).unwrap(), None);
        assert_eq!(
            tree.inclusion(3, beyond, pages(&all, &mut reads)).unwrap(),
            None
        );
        assert_eq!(
            tree.consistency(5, 4, pages(&all, &mut reads)).unwrap(),
            None
        );
    }

    #[test]
    fn a_proof_in_a_large_log_reads_a_few_pages() {
        let all = leaves(1 << 16);
        let tree = paged(&all);
        // 1,024 pages: 2,047 digests of the page tree, no tail.
        assert_eq!(tree.digests(), 2 * 1024 - 1);
        let size = (1 << 16) - 3;
        let mut reads = 0;
        let path = tree
            .inclusion(12_345, size, pages(&all, &mut reads))
            .unwrap();
        assert_eq!(path, inclusion_proof(&all[..size as usize], 12_345));
        assert!(reads <= 2, "{reads} pages read");
        let mut reads = 0;
        let proof = tree
            .consistency(40_001, size, pages(&all, &mut reads))
            .unwrap();
        assert_eq!(proof, consistency_proof(&all[..size as usize], 40_001));
        assert!(reads <= 2, "{reads} pages read");
    }

    #[test]
    fn a_page_read_back_otherwise_is_refused() {
        let all = leaves(2 * PAGE_LEAVES + 1);
        let tree = paged(&all);
        let mut changed = all.clone();
        changed[70] = leaf_hash(b"another notice");
        let mut reads = 0;
        let err = tree
            .inclusion(70, 2 * PAGE_LEAVES + 1, pages(&changed, &mut reads))
            .unwrap_err();
        assert!(
            matches!(err, PagedError::Mismatch { page: 1, found: 64 }),
            "{err}"
        );
        let short = |_page: u64| -> Result<Vec<Digest>, std::io::Error> { Ok(all[..10].to_vec()) };
        let err = tree.root(100, short).unwrap_err();
        assert!(
            matches!(err, PagedError::Mismatch { page: 1, found: 10 }),
            "{err}"
        );
        let failing = |_page: u64| -> Result<Vec<Digest>, std::io::Error> {
            Err(std::io::Error::other("disk gone"))
        };
        let err = tree.root(100, failing).unwrap_err();
        assert_eq!(err.to_string(), "reading page 1 of the log: disk gone");
    }

    proptest! {
        #[test]
        fn random_sizes_agree_with_the_leaves(
            n in 1u64..1500,
            pick in any::<u64>(),
            old_pick in any::<u64>(),
        ) {
            let all = leaves(n);
            let tree = paged(&all);
            let size = 1 + pick % n;
            let index = pick / 7 % size;
            let old = old_pick % (size + 1);
            let mut reads = 0;
            prop_assert_eq!(
                tree.root(size, pages(&all, &mut reads)).unwrap(),
                Some(root(&all[..size as usize]))
            );
            prop_assert_eq!(
                tree.inclusion(index, size, pages(&all, &mut reads)).unwrap(),
                inclusion_proof(&all[..size as usize], index as usize)
            );
            prop_assert_eq!(
                tree.consistency(old, size, pages(&all, &mut reads)).unwrap(),
                consistency_proof(&all[..size as usize], old as usize)
            );
        }
    }
}
