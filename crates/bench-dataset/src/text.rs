//! Prompt text and its measured length.
//!
//! Generated text is built by [`TextGen`] from one-token chunks. Under the builtin tiktoken
//! encodings the count of a concatenation of generated pieces is the sum of their counts
//! (tested in bench-text and again here on whole prompts), so the generators keep the count
//! they built. Under any other tokenizer every written length is measured again on the final
//! text with the tokenizer, so `prompt_length` is always the length of the text as written.

use bench_text::{TextGen, Tokenizer};
use rand::Rng;

use crate::DatasetError;

/// The tokenizer and text generator of a run.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    gen_: TextGen,
    tok: Tokenizer,
    additive: bool,
}

impl Text {
    /// Loads the tokenizer named by the `tokenizer` config key and builds the generator.
    pub(crate) fn load(spec: &bench_text::TokenizerSpec) -> Result<Self, DatasetError> {
        let tok = Tokenizer::open(spec)?;
        let gen_ = TextGen::new(&tok)?;
        Ok(Text {
            additive: tok.chunk_additive(),
            gen_,
            tok,
        })
    }

    /// The tokenizer.
    #[cfg(test)]
    pub(crate) fn tokenizer(&self) -> &Tokenizer {
        &self.tok
    }

    /// Token count of `text`.
    pub(crate) fn count(&self, text: &str) -> u32 {
        to_u32(self.tok.count(text))
    }

    /// Appends `tokens` tokens of generated text to `out` (after a space when `out` is not
    /// empty, so neither part's count changes); returns the count the generator built.
    pub(crate) fn append(&self, rng: &mut impl Rng, tokens: u32, out: &mut String) -> usize {
        let lead = !out.is_empty();
        self.gen_.generate_into(rng, tokens as usize, lead, out)
    }

    /// The length to write for `text`, which the generator built as `built` tokens: `built`
    /// under a chunk-additive tokenizer, else measured on `text`.
    pub(crate) fn measured(&self, text: &str, built: usize) -> u32 {
        if self.additive {
            to_u32(built)
        } else {
            self.count(text)
        }
    }
}

/// Token counts fit u32 (a 4-billion-token prompt is not a prompt).
pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
