//! The words the simulated model answers with: the prompt generator's English vocabulary
//! ([`bench_text::vocabulary`]), each word kept only if it is a single token (with its leading
//! space) under the configured tokenizer, so one SSE chunk is one token and the client's count
//! of the joined reply equals `usage.completion_tokens`.

use bench_text::Tokenizer;

/// Punctuation tokens mixed into the reply (never two in a row, never first).
const PUNCT: &[&str] = &[".", ","];

/// One output token: its text (JSON-safe: plain ASCII without quotes or backslashes) and its
/// id under the tokenizer.
#[derive(Debug, Clone)]
pub(crate) struct Word {
    pub text: Box<str>,
    pub id: u32,
}

/// The output vocabulary for one tokenizer.
#[derive(Debug)]
pub(crate) struct Vocab {
    /// Words first, then punctuation.
    pub words: Vec<Word>,
    /// Number of words (indices below are words, at or above are punctuation).
    pub n_words: u32,
}

impl Vocab {
    /// Builds the vocabulary; errs when fewer than 32 words are single tokens.
    pub fn build(tok: &Tokenizer) -> Result<Vocab, String> {
        let mut words: Vec<Word> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let all = bench_text::vocabulary();
        for w in &all {
            let text = format!(" {w}");
            let ids = tok.encode(&text);
            if ids.len() == 1 && seen.insert(ids[0]) {
                words.push(Word {
                    text: text.into_boxed_str(),
                    id: ids[0],
                });
            }
        }
        if words.len() < 32 {
            return Err(format!(
                "only {} of {} common English words are single tokens under tokenizer `{}`",
                words.len(),
                all.len(),
                tok.spec()
            ));
        }
        let n_words = words.len() as u32;
        for p in PUNCT {
            let ids = tok.encode(p);
            if ids.len() == 1 && seen.insert(ids[0]) {
                words.push(Word {
                    text: (*p).into(),
                    id: ids[0],
                });
            }
        }
        let v = Vocab { words, n_words };
        // Builtin (tiktoken) tokenizers split at every word and punctuation boundary, so a
        // reply's count is its chunk count. Other tokenizers may merge across chunks: check.
        let (mut text, mut prev, mut n) = (String::new(), None, 0);
        for k in 0..256 {
            let i = v.pick(0x5EED, k, prev);
            text.push_str(&v.words[i as usize].text);
            prev = Some(i);
            n += 1;
        }
        let counted = tok.count(&text);
        if counted != n {
            tracing::warn!(
                "sim: under tokenizer `{}` a reply of {n} one-token words counts {counted} tokens; clients that count replies themselves will differ from usage",
                tok.spec()
            );
        }
        Ok(v)
    }

    /// Whether index `i` is punctuation.
    pub fn is_punct(&self, i: u32) -> bool {
        i >= self.n_words
    }

    /// The `k`-th output token of a reply seeded by `seed` (`prev` is token `k-1`'s index).
    /// A pure function of its arguments, so a reply does not depend on how it was batched.
    pub fn pick(&self, seed: u64, k: u32, prev: Option<u32>) -> u32 {
        let r = crate::tokens::mix64(seed ^ (k as u64).wrapping_mul(bench_text::seed::GOLDEN));
        let n_punct = self.words.len() as u32 - self.n_words;
        let after_word = prev.is_some_and(|p| !self.is_punct(p));
        if n_punct > 0 && after_word && (r & 0xFF) < 20 {
            // About one token in 13 is punctuation.
            return self.n_words + ((r >> 8) as u32 % n_punct);
        }
        ((r >> 16) % self.n_words as u64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_count_one_token_per_chunk_under_both_builtins() {
        for spec in ["builtin:cl100k_base", "builtin:o200k_base"] {
            let tok = Tokenizer::load(spec).unwrap();
            let v = Vocab::build(&tok).unwrap();
            assert!(v.n_words > 150, "{spec}: {} words", v.n_words);
            for seed in 0..20u64 {
                let mut text = String::new();
                let mut ids = Vec::new();
                let mut prev = None;
                for k in 0..300 {
                    let i = v.pick(seed, k, prev);
                    text.push_str(&v.words[i as usize].text);
                    ids.push(v.words[i as usize].id);
                    prev = Some(i);
                }
                assert_eq!(tok.encode(&text), ids, "{spec}: seed {seed}: {text}");
                assert!(
                    text.contains('.') && text.contains(','),
                    "punctuation appears: {text}"
                );
            }
        }
    }
}
