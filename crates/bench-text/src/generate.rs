//! Exact-length text generation.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::words::{ADJECTIVES, ADVERBS, FIELDS, GERUNDS, NOUNS, PLURALS, TEMPLATES, VERBS};
use crate::{TextError, Tokenizer};

/// Name and version of the block text generator, recorded in workload headers; bump when the
/// text of a block for a given (tokenizer, seed, id, size) changes.
pub const BLOCK_GENERATOR: &str = "bench-text/1";

#[derive(Clone, Copy)]
enum Slot {
    /// A fixed chunk.
    Lit(u32),
    /// A word from class `n`.
    Class(u8),
}

struct Vocab {
    /// Every chunk: `" word"` or punctuation. Each is one token.
    chunks: Vec<Box<str>>,
    /// Chunk ids per word class (noun, plural, adjective, verb, gerund, adverb, field).
    classes: Vec<Vec<u32>>,
    /// Compiled templates.
    templates: Vec<Vec<Slot>>,
    /// Templates whose first chunk is also one token without its leading space.
    starters: Vec<u32>,
}

/// Seeded generator of English-like prompt text of an exact token count. Cheap to clone.
#[derive(Clone)]
pub struct TextGen {
    vocab: Arc<Vocab>,
    tok: Tokenizer,
}

impl std::fmt::Debug for TextGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextGen")
            .field("tokenizer", &self.tok.spec())
            .field("chunks", &self.vocab.chunks.len())
            .finish()
    }
}

const CLASS_SLOTS: [&str; 7] = ["{n}", "{p}", "{a}", "{v}", "{g}", "{r}", "{t}"];

impl TextGen {
    /// Builds the vocabulary for `tok`: keeps the words and templates whose chunks are single
    /// tokens under it.
    pub fn new(tok: &Tokenizer) -> Result<Self, TextError> {
        let mut chunks: Vec<Box<str>> = Vec::new();
        let mut index = std::collections::HashMap::<String, u32>::new();
        let mut intern = |c: String, chunks: &mut Vec<Box<str>>| -> Option<u32> {
            if let Some(&i) = index.get(&c) {
                return Some(i);
            }
            if !tok.is_single_token(&c) {
                return None;
            }
            let i = chunks.len() as u32;
            chunks.push(c.clone().into_boxed_str());
            index.insert(c, i);
            Some(i)
        };
        let mut classes = Vec::new();
        for list in [NOUNS, PLURALS, ADJECTIVES, VERBS, GERUNDS, ADVERBS, FIELDS] {
            let mut ids: Vec<u32> = list
                .iter()
                .filter_map(|w| intern(format!(" {w}"), &mut chunks))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            classes.push(ids);
        }
        let mut templates = Vec::new();
        'tpl: for t in TEMPLATES {
            let mut slots = Vec::new();
            for part in t.split(' ') {
                if let Some(c) = CLASS_SLOTS.iter().position(|s| *s == part) {
                    if classes[c].is_empty() {
                        continue 'tpl;
                    }
                    slots.push(Slot::Class(c as u8));
                } else {
                    let chunk = if matches!(part, "." | "," | "?") {
                        part.to_string()
                    } else {
                        format!(" {part}")
                    };
                    match intern(chunk, &mut chunks) {
                        Some(i) => slots.push(Slot::Lit(i)),
                        None => continue 'tpl,
                    }
                }
            }
            templates.push(slots);
        }
        let starters: Vec<u32> = templates
            .iter()
            .enumerate()
            .filter(|(_, t)| match t[0] {
                Slot::Lit(i) => tok.is_single_token(chunks[i as usize].trim_start()),
                Slot::Class(_) => false,
            })
            .map(|(i, _)| i as u32)
            .collect();
        if templates.len() < 8 || starters.is_empty() {
            return Err(TextError::Tokenizer {
                spec: tok.spec().to_string(),
                msg: format!(
                    "too few common English words are single tokens under this tokenizer ({} of {} sentence templates usable)",
                    templates.len(),
                    TEMPLATES.len()
                ),
            });
        }
        Ok(TextGen {
            vocab: Arc::new(Vocab {
                chunks,
                classes,
                templates,
                starters,
            }),
            tok: tok.clone(),
        })
    }

    /// The tokenizer the vocabulary was built for.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tok
    }

    /// Appends the chunk ids of `n` chunks of running text to `out`, starting a sentence.
    fn chunk_stream(
        &self,
        rng: &mut impl Rng,
        n: usize,
        first_is_starter: bool,
        out: &mut Vec<u32>,
    ) {
        let v = &*self.vocab;
        let mut bits = 0u64;
        let mut left = 0u32;
        let mut draw = |m: usize| -> usize {
            if left == 0 {
                bits = rng.next_u64();
                left = 4;
            }
            let x = (bits & 0xFFFF) as usize;
            bits >>= 16;
            left -= 1;
            // 16-bit draws with multiply-shift: bias is < m / 65536, negligible for text.
            (x * m) >> 16
        };
        let target = out.len() + n;
        let mut first = first_is_starter;
        while out.len() < target {
            let t = if first {
                first = false;
                v.starters[draw(v.starters.len())] as usize
            } else {
                draw(v.templates.len())
            };
            for slot in &v.templates[t] {
                if out.len() == target {
                    break;
                }
                out.push(match *slot {
                    Slot::Lit(i) => i,
                    Slot::Class(c) => {
                        let ids = &v.classes[c as usize];
                        ids[draw(ids.len())]
                    }
                });
            }
        }
    }

    fn render(&self, ids: &[u32], leading_space: bool, out: &mut String) {
        let chunks = &self.vocab.chunks;
        for (k, &i) in ids.iter().enumerate() {
            let c = &chunks[i as usize];
            if k == 0 && !leading_space {
                out.push_str(c.trim_start())
            } else {
                out.push_str(c)
            }
        }
    }

    /// Text of exactly `tokens` tokens under the tokenizer, drawn from `rng`. The text starts
    /// with a capitalized word (no leading space). For a non-tiktoken tokenizer the count is
    /// checked and repaired; if it cannot be made exact the closest text is returned with its
    /// true count.
    pub fn generate(&self, rng: &mut impl Rng, tokens: usize) -> (String, usize) {
        let mut out = String::with_capacity(tokens * 8);
        let n = self.generate_into(rng, tokens, false, &mut out);
        (out, n)
    }

    /// Like [`generate`](Self::generate), appending to `out`; with `leading_space` the text
    /// starts with a space so it can follow other generated text without changing either's
    /// token count. Returns the token count of the appended text.
    pub fn generate_into(
        &self,
        rng: &mut impl Rng,
        tokens: usize,
        leading_space: bool,
        out: &mut String,
    ) -> usize {
        if tokens == 0 {
            return 0;
        }
        let mut ids = Vec::with_capacity(tokens);
        self.chunk_stream(rng, tokens, !leading_space, &mut ids);
        if self.tok.chunk_additive() {
            self.render(&ids, leading_space, out);
            return tokens;
        }
        // Repair loop for tokenizers whose splits we cannot rely on.
        let start = out.len();
        let mut best: Option<(usize, usize)> = None; // (|diff|, k)
        let mut k = tokens;
        for _ in 0..12 {
            if ids.len() < k {
                let more = k - ids.len();
                self.chunk_stream(rng, more, false, &mut ids);
            }
            out.truncate(start);
            self.render(&ids[..k], leading_space, out);
            let c = self.tok.count(&out[start..]);
            if c == tokens {
                return c;
            }
            let d = c.abs_diff(tokens);
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, k));
            }
            let next = (k as i64 + tokens as i64 - c as i64).max(1) as usize;
            k = if next == k { k + 1 } else { next };
        }
        let (_, k) = best.expect("at least one attempt");
        out.truncate(start);
        self.render(&ids[..k], leading_space, out);
        self.tok.count(&out[start..])
    }

    /// The text of shared block `hash_id`: `block_tokens` tokens, starting with a space, the same
    /// for the same (tokenizer, seed, hash_id, block_tokens) in every process. Under the builtin
    /// tokenizers any concatenation of blocks has exactly the sum of their token counts, and
    /// the first `k` tokens of a block are [`block_prefix`](Self::block_prefix)`(.., k)`.
    pub fn block(&self, seed: u64, hash_id: u64, block_tokens: usize) -> String {
        let mut s = String::with_capacity(block_tokens * 8);
        self.block_into(seed, hash_id, block_tokens, block_tokens, &mut s);
        s
    }

    /// Appends the first `take` tokens of block `hash_id` (of `block_tokens`) to `out`.
    pub fn block_into(
        &self,
        seed: u64,
        hash_id: u64,
        block_tokens: usize,
        take: usize,
        out: &mut String,
    ) {
        let mut rng = StdRng::seed_from_u64(mix(seed, hash_id, block_tokens as u64));
        let mut ids = Vec::with_capacity(block_tokens);
        self.chunk_stream(&mut rng, block_tokens, false, &mut ids);
        self.render(&ids[..take.min(block_tokens)], true, out);
    }

    /// The first `take` tokens of block `hash_id`.
    pub fn block_prefix(
        &self,
        seed: u64,
        hash_id: u64,
        block_tokens: usize,
        take: usize,
    ) -> String {
        let mut s = String::new();
        self.block_into(seed, hash_id, block_tokens, take, &mut s);
        s
    }

    /// A whole prompt from shared blocks: all of `hash_ids`' blocks, the last one cut so the
    /// prompt is `prompt_tokens` long (when `prompt_tokens` is within the last block).
    pub fn blocks_prompt(
        &self,
        seed: u64,
        hash_ids: &[u64],
        block_tokens: usize,
        prompt_tokens: usize,
        out: &mut String,
    ) {
        for (i, &h) in hash_ids.iter().enumerate() {
            let before = i * block_tokens;
            let take = if i + 1 == hash_ids.len() {
                prompt_tokens.saturating_sub(before).clamp(1, block_tokens)
            } else {
                block_tokens
            };
            self.block_into(seed, h, block_tokens, take, out);
        }
    }
}

/// The seed, block id and block size mixed into one RNG seed.
fn mix(seed: u64, id: u64, size: u64) -> u64 {
    use crate::seed::{GOLDEN, mix64};
    mix64(seed ^ id.wrapping_mul(GOLDEN) ^ size.rotate_left(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gens() -> Vec<TextGen> {
        ["builtin:cl100k_base", "builtin:o200k_base"]
            .iter()
            .map(|s| TextGen::new(&Tokenizer::load(s).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn exact_counts_under_both_builtins() {
        for g in gens() {
            let mut rng = StdRng::seed_from_u64(7);
            for n in [1usize, 2, 3, 5, 17, 100, 511, 512, 1000, 4097] {
                let (text, c) = g.generate(&mut rng, n);
                assert_eq!(c, n);
                assert_eq!(
                    g.tokenizer().count(&text),
                    n,
                    "{}: {n} tokens: {text:?}",
                    g.tokenizer().spec()
                );
                assert!(!text.starts_with(' '));
            }
        }
    }

    #[test]
    fn concatenation_is_additive() {
        let g = &gens()[0];
        let mut rng = StdRng::seed_from_u64(1);
        let mut s = String::new();
        let a = g.generate_into(&mut rng, 300, false, &mut s);
        let b = g.generate_into(&mut rng, 77, true, &mut s);
        assert_eq!(g.tokenizer().count(&s), a + b);
    }

    #[test]
    fn blocks_are_deterministic_exact_and_prefix_stable() {
        for g in gens() {
            let b = g.block(42, 17, 512);
            assert_eq!(b, g.block(42, 17, 512));
            assert_ne!(b, g.block(42, 18, 512));
            assert_ne!(b, g.block(43, 17, 512));
            assert_eq!(g.tokenizer().count(&b), 512);
            let p = g.block_prefix(42, 17, 512, 100);
            assert!(b.starts_with(&p));
            assert_eq!(g.tokenizer().count(&p), 100);
            let mut prompt = String::new();
            g.blocks_prompt(42, &[0, 1, 2], 512, 1200, &mut prompt);
            assert_eq!(g.tokenizer().count(&prompt), 1200);
            assert!(prompt.starts_with(&(g.block(42, 0, 512) + &g.block(42, 1, 512))));
        }
    }

    #[test]
    fn same_seed_same_text() {
        let g = &gens()[0];
        let a = g.generate(&mut StdRng::seed_from_u64(3), 200).0;
        let b = g.generate(&mut StdRng::seed_from_u64(3), 200).0;
        assert_eq!(a, b);
        let words: std::collections::HashSet<&str> = a.split(' ').collect();
        assert!(words.len() > 40, "text should not be a repeated word: {a}");
    }
}
