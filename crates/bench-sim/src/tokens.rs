//! Prompt tokens as the engine sees them: a count, the chained hashes of the full blocks (the
//! prefix-cache keys) and the ids of the last, partial block.

/// Chain value before the first block.
pub(crate) const ROOT: u64 = 0x6A09_E667_F3BC_C908;

/// A cheap, well-mixed 64-bit hash of `z` (one SplitMix64 step).
pub(crate) use bench_text::seed::splitmix64 as mix64;

/// Hash of one block of token ids chained to the previous block's hash, so equal hashes mean
/// equal prefixes (up to 64-bit collisions).
pub(crate) fn hash_block(prev: u64, toks: &[u32]) -> u64 {
    let mut h = prev;
    for &t in toks {
        h = (h.rotate_left(5) ^ t as u64).wrapping_mul(0x517C_C1B7_2722_0A95);
    }
    mix64(h ^ (toks.len() as u64).rotate_left(48))
}

/// Token ids of one request's prompt, hashed block by block as they are appended.
#[derive(Debug, Clone)]
pub(crate) struct TokenBlocks {
    block_size: usize,
    /// Tokens in total.
    pub len: u32,
    /// Chained hash of each full block.
    pub hashes: Vec<u64>,
    /// Ids of the partial last block (fewer than block_size).
    pub tail: Vec<u32>,
}

impl TokenBlocks {
    /// Empty, with blocks of `block_size` tokens.
    pub fn new(block_size: u32) -> Self {
        TokenBlocks {
            block_size: block_size as usize,
            len: 0,
            hashes: Vec::new(),
            tail: Vec::with_capacity(block_size as usize),
        }
    }

    /// The last full block's hash (ROOT when there is none).
    pub fn chain(&self) -> u64 {
        self.hashes.last().copied().unwrap_or(ROOT)
    }

    /// Appends one token.
    pub fn push(&mut self, id: u32) {
        self.tail.push(id);
        self.len += 1;
        if self.tail.len() == self.block_size {
            let h = hash_block(self.chain(), &self.tail);
            self.hashes.push(h);
            self.tail.clear();
        }
    }

    /// Appends token ids.
    pub fn extend(&mut self, mut ids: &[u32]) {
        while !ids.is_empty() {
            let take = (self.block_size - self.tail.len()).min(ids.len());
            self.tail.extend_from_slice(&ids[..take]);
            ids = &ids[take..];
            self.len += take as u32;
            if self.tail.len() == self.block_size {
                let h = hash_block(self.chain(), &self.tail);
                self.hashes.push(h);
                self.tail.clear();
            }
        }
    }

    /// A hash of every token (full blocks and the tail).
    pub fn digest(&self) -> u64 {
        hash_block(self.chain(), &self.tail) ^ self.len as u64
    }
}

/// `n` pseudo token ids standing for an image: derived from the image's URL (so the same image
/// hits the prefix cache), with the top bit set so they never equal a text token id.
pub(crate) fn image_ids(url: &str, n: u32, out: &mut TokenBlocks) {
    let h = hash_bytes(url.as_bytes());
    for i in 0..n {
        out.push(0x8000_0000 | (mix64(h ^ i as u64) as u32 & 0x7FFF_FFFF));
    }
}

/// A 64-bit hash of bytes (eight at a time).
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = ROOT ^ b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(0x517C_C1B7_2722_0A95);
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix64(h ^ u64::from_le_bytes(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_extend_agree_and_chain_prefixes() {
        let ids: Vec<u32> = (0..100).map(|i| i * 7 + 3).collect();
        let mut a = TokenBlocks::new(16);
        a.extend(&ids[..37]);
        a.extend(&ids[37..]);
        let mut b = TokenBlocks::new(16);
        for &i in &ids {
            b.push(i);
        }
        assert_eq!((a.len, &a.hashes, &a.tail), (100, &b.hashes, &b.tail));
        assert_eq!(a.hashes.len(), 6);
        assert_eq!(a.tail, ids[96..]);
        // A prompt sharing the first 40 tokens shares exactly the first 2 block hashes.
        let mut c = TokenBlocks::new(16);
        c.extend(&ids[..40]);
        c.extend(&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ]);
        assert_eq!(c.hashes[..2], a.hashes[..2]);
        assert_ne!(c.hashes[2], a.hashes[2]);
        assert_ne!(c.digest(), a.digest());
    }

    #[test]
    fn image_ids_are_stable_and_distinct_from_text() {
        let mut a = TokenBlocks::new(16);
        image_ids("data:image/png;base64,AAAA", 40, &mut a);
        let mut b = TokenBlocks::new(16);
        image_ids("data:image/png;base64,AAAA", 40, &mut b);
        let mut c = TokenBlocks::new(16);
        image_ids("data:image/png;base64,AAAB", 40, &mut c);
        assert_eq!(a.hashes, b.hashes);
        assert_ne!(a.hashes[0], c.hashes[0]);
        assert!(a.tail.iter().all(|&t| t >= 0x8000_0000));
    }
}
