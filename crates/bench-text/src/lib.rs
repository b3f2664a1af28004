//! Tokenizers and natural-language prompt text of an exact token length.
//!
//! Shared by the dataset, workload and client stages (which never import each other):
//! * [`Tokenizer`]: the embedded tiktoken encodings (`builtin:cl100k_base`, `builtin:o200k_base`,
//!   no download) or a local Hugging Face `tokenizer.json`.
//! * [`TextGen`]: seeded English-like prompt text that hits a target token count exactly, and
//!   [`TextGen::block`], the deterministic text of a shared prefix block (Mooncake `hash_ids`).
//!
//! How exactness works: the text is built from *chunks*, each one token under the tokenizer
//! (`" word"`, `"."`, `","`, `"?"`), chosen so every chunk boundary is also a pre-tokenizer split
//! boundary (a word always carries its leading space, punctuation directly follows a word).
//! BPE never merges across those boundaries, so the token count of the text is the number of
//! chunks, and any prefix of `k` chunks is exactly `k` tokens. The vocabulary is filtered at
//! load time to words that are single tokens under the chosen tokenizer. For tokenizers
//! without that guarantee (Hugging Face files), [`TextGen::generate`] checks the count with
//! the tokenizer and repairs it.

mod generate;
pub mod seed;
mod tokenizer;
mod words;

pub use generate::{BLOCK_GENERATOR, TextGen};
pub use tokenizer::{Builtin, MAX_PIECE, Tokenizer, TokenizerSpec, find_local_tokenizer};
pub use words::vocabulary;

/// Errors loading a tokenizer or building the vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The tokenizer spec is not `builtin:...` and not a readable tokenizer.json.
    #[error("tokenizer `{spec}`: {msg}")]
    Tokenizer {
        /// The spec as configured.
        spec: String,
        /// What went wrong.
        msg: String,
    },
}
