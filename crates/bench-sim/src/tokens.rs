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

/// How many prompt tokens an image counts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImageCount {
    /// Every image, or one whose size cannot be read.
    pub fixed: u32,
    /// Side of a token's patch in pixels (0: `fixed`).
    pub patch_px: u32,
    /// The most tokens of one image by size.
    pub max: u32,
}

impl ImageCount {
    /// The tokens of the image at `url` (a `data:` URL: its size from the PNG or JPEG header).
    pub(crate) fn tokens(&self, url: &str) -> u32 {
        if self.patch_px == 0 {
            return self.fixed;
        }
        match image_dims(url) {
            Some((w, h)) => {
                let p = u64::from(self.patch_px);
                let n = u64::from(w).div_ceil(p) * u64::from(h).div_ceil(p);
                n.min(u64::from(self.max)) as u32
            }
            None => self.fixed,
        }
    }
}

/// Width and height of a PNG or JPEG `data:` URL, from the first 64 KiB of the image.
pub(crate) fn image_dims(url: &str) -> Option<(u32, u32)> {
    use base64::Engine as _;
    let b64 = url.strip_prefix("data:")?.split_once(";base64,")?.1;
    // whole 4-character groups only, at most 64 KiB of image
    let take = b64.len().min(87_380) / 4 * 4;
    let head = base64::engine::general_purpose::STANDARD
        .decode(&b64.as_bytes()[..take])
        .ok()?;
    let be16 = |i: usize| {
        Some(u32::from(u16::from_be_bytes([
            *head.get(i)?,
            *head.get(i + 1)?,
        ])))
    };
    let be32 = |i: usize| Some(u32::from_be_bytes(head.get(i..i + 4)?.try_into().ok()?));
    if head.starts_with(b"\x89PNG\r\n\x1a\n") && head.get(12..16) == Some(b"IHDR") {
        return Some((be32(16)?, be32(20)?));
    }
    if head.starts_with(&[0xFF, 0xD8]) {
        // walk the segments to a start-of-frame (C0-CF but C4, C8, CC)
        let mut i = 2;
        while i + 9 < head.len() {
            if head[i] != 0xFF {
                return None;
            }
            let m = head[i + 1];
            if (0xC0..=0xCF).contains(&m) && !matches!(m, 0xC4 | 0xC8 | 0xCC) {
                return Some((be16(i + 7)?, be16(i + 5)?));
            }
            i += 2 + be16(i + 2)? as usize;
        }
    }
    None
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

    fn data_url(mime: &str, bytes: &[u8]) -> String {
        use base64::Engine as _;
        format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    #[test]
    fn images_count_by_their_size() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(1000u32.to_be_bytes());
        png.extend(500u32.to_be_bytes());
        png.extend([8, 2, 0, 0, 0]);
        let png = data_url("image/png", &png);
        // SOI, an APP0 segment of 16 bytes, a DQT of 67, then SOF0: height 480, width 640
        let mut jpg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        jpg.extend([0u8; 14]);
        jpg.extend([0xFF, 0xDB, 0, 67]);
        jpg.extend([1u8; 65]);
        jpg.extend([0xFF, 0xC0, 0, 17, 8, 0x01, 0xE0, 0x02, 0x80, 3]);
        jpg.extend([0u8; 9]);
        let jpg = data_url("image/jpeg", &jpg);
        assert_eq!(image_dims(&png), Some((1000, 500)));
        assert_eq!(image_dims(&jpg), Some((640, 480)));
        assert_eq!(image_dims("data:image/png;base64,AAAA"), None);
        assert_eq!(image_dims("https://example.com/a.png"), None);
        let by_size = ImageCount {
            fixed: 576,
            patch_px: 28,
            max: 16_384,
        };
        // ceil(1000/28) x ceil(500/28) = 36 x 18; ceil(640/28) x ceil(480/28) = 23 x 18
        assert_eq!(by_size.tokens(&png), 648);
        assert_eq!(by_size.tokens(&jpg), 414);
        assert_eq!(by_size.tokens("https://example.com/a.png"), 576);
        assert_eq!(
            ImageCount {
                max: 100,
                ..by_size
            }
            .tokens(&png),
            100
        );
        assert_eq!(
            ImageCount {
                patch_px: 0,
                ..by_size
            }
            .tokens(&png),
            576
        );
    }

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
