//! The KV-cache block pool with its prefix cache, after vLLM's block manager.
//!
//! The pool has `total` blocks of `block_size` tokens. A block is in use (held by at least one
//! running sequence), cached-free (its content is known by its chained hash, nobody holds it,
//! it can be reused by a later prompt with the same prefix or evicted), or empty. Allocation
//! takes empty blocks first, then evicts cached-free blocks least recently freed first. Blocks
//! are counted, not stored: only the hashes of cached blocks are kept.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// The keys are already well-mixed 64-bit hashes: use them as is.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Sequences holding the block.
    refs: u32,
    /// LRU stamp while refs == 0.
    stamp: u64,
}

/// The block pool.
#[derive(Debug)]
pub(crate) struct BlockPool {
    total: u64,
    empty: u64,
    table: IdMap<Entry>,
    /// Cached-free blocks by the time they were freed (oldest first).
    lru: BTreeMap<u64, u64>,
    clock: u64,
}

impl BlockPool {
    /// A pool of `total` empty blocks.
    pub fn new(total: u64) -> Self {
        BlockPool {
            total,
            empty: total,
            table: IdMap::default(),
            lru: BTreeMap::new(),
            clock: 0,
        }
    }

    /// Blocks in the pool.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Blocks that an allocation can take (empty + cached-free).
    pub fn available(&self) -> u64 {
        self.empty + self.lru.len() as u64
    }

    /// Blocks held by running sequences.
    pub fn used(&self) -> u64 {
        self.total - self.available()
    }

    /// Length of the cached prefix of `hashes` (at most `max` blocks), and how many of those
    /// blocks are cached-free (taking them reduces [`available`](Self::available)).
    pub fn match_prefix(&self, hashes: &[u64], max: usize) -> (usize, u64) {
        let mut free = 0;
        let mut n = 0;
        for h in &hashes[..max.min(hashes.len())] {
            match self.table.get(h) {
                Some(e) => {
                    if e.refs == 0 {
                        free += 1;
                    }
                    n += 1;
                }
                None => break,
            }
        }
        (n, free)
    }

    /// Takes a reference on the cached block `h` (which must exist).
    pub fn acquire(&mut self, h: u64) {
        let e = self.table.get_mut(&h).expect("acquired block is cached");
        if e.refs == 0 {
            self.lru.remove(&e.stamp);
        }
        e.refs += 1;
    }

    /// Drops a reference on the cached block `h`; at zero it becomes cached-free.
    pub fn release(&mut self, h: u64) {
        let e = self.table.get_mut(&h).expect("released block is cached");
        e.refs -= 1;
        if e.refs == 0 {
            self.clock += 1;
            e.stamp = self.clock;
            self.lru.insert(self.clock, h);
        }
    }

    /// Takes `n` anonymous blocks, evicting cached-free blocks when no empty one is left.
    /// False (and nothing taken) when fewer than `n` are available.
    pub fn alloc(&mut self, n: u64) -> bool {
        if n > self.available() {
            return false;
        }
        let from_empty = n.min(self.empty);
        self.empty -= from_empty;
        for _ in from_empty..n {
            let (_, h) = self.lru.pop_first().expect("counted as available");
            self.table.remove(&h);
        }
        true
    }

    /// Returns `n` anonymous blocks to the pool.
    pub fn free(&mut self, n: u64) {
        self.empty += n;
        debug_assert!(self.used() <= self.total);
    }

    /// Turns one anonymous block just filled with the content `h` into a cached block held
    /// by its sequence. When `h` is cached already (another sequence computed the same
    /// prefix), the sequence shares that block and its own goes back to the pool.
    pub fn register(&mut self, h: u64) {
        if let Some(e) = self.table.get_mut(&h) {
            if e.refs == 0 {
                self.lru.remove(&e.stamp);
            }
            e.refs += 1;
            self.empty += 1;
        } else {
            self.table.insert(h, Entry { refs: 1, stamp: 0 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_register_release_evict() {
        let mut p = BlockPool::new(4);
        assert!(p.alloc(3));
        assert_eq!((p.used(), p.available()), (3, 1));
        for h in [10, 11, 12] {
            p.register(h);
        }
        assert_eq!(p.match_prefix(&[10, 11, 12, 13], 4), (3, 0));
        // Free in reverse order: 12 is evicted first, the prefix root last.
        for h in [12, 11, 10] {
            p.release(h);
        }
        assert_eq!((p.used(), p.available()), (0, 4));
        assert_eq!(p.match_prefix(&[10, 11, 12], 3), (3, 3));
        assert_eq!(p.match_prefix(&[10, 11, 12], 2), (2, 2));
        // Needs 2 blocks: 1 empty + evicts 12.
        assert!(p.alloc(2));
        assert_eq!(p.match_prefix(&[10, 11, 12], 3), (2, 2));
        p.acquire(10);
        assert_eq!((p.used(), p.available()), (3, 1));
        assert!(!p.alloc(2));
        assert!(p.alloc(1)); // evicts 11
        assert_eq!(p.match_prefix(&[10, 11], 2), (1, 0));
        assert_eq!(p.available(), 0);
    }

    #[test]
    fn duplicate_register_shares_the_block() {
        let mut p = BlockPool::new(4);
        assert!(p.alloc(2));
        p.register(7);
        p.register(7);
        assert_eq!(p.used(), 1);
        p.release(7);
        assert_eq!(p.used(), 1);
        p.release(7);
        assert_eq!((p.used(), p.available()), (0, 4));
    }
}
