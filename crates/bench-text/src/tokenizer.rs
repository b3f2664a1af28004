//! Tokenizer loading and counting.

use std::path::Path;
use std::sync::Arc;

use tiktoken_rs::CoreBPE;

use crate::TextError;

#[derive(Clone)]
enum Kind {
    Tiktoken(&'static CoreBPE),
    Hf(Arc<tokenizers::Tokenizer>),
}

/// A tokenizer: cheap to clone, safe to share across threads.
#[derive(Clone)]
pub struct Tokenizer {
    kind: Kind,
    spec: String,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("spec", &self.spec)
            .finish()
    }
}

impl Tokenizer {
    /// Loads `builtin:cl100k_base`, `builtin:o200k_base`, or a Hugging Face tokenizer.json
    /// (a file, or a directory holding `tokenizer.json`).
    pub fn load(spec: &str) -> Result<Self, TextError> {
        let err = |msg: String| TextError::Tokenizer {
            spec: spec.to_string(),
            msg,
        };
        let kind = match spec {
            "builtin:cl100k_base" => Kind::Tiktoken(tiktoken_rs::cl100k_base_singleton()),
            "builtin:o200k_base" => Kind::Tiktoken(tiktoken_rs::o200k_base_singleton()),
            s if s.starts_with("builtin:") => {
                return Err(err(
                    "unknown builtin; expected builtin:cl100k_base or builtin:o200k_base".into(),
                ));
            }
            path => {
                let mut p = Path::new(path).to_path_buf();
                if p.is_dir() {
                    p = p.join("tokenizer.json");
                }
                if !p.is_file() {
                    return Err(err(format!(
                        "{} is not a file (give builtin:cl100k_base or a path to tokenizer.json)",
                        p.display()
                    )));
                }
                let t = tokenizers::Tokenizer::from_file(&p)
                    .map_err(|e| err(format!("{}: {e}", p.display())))?;
                Kind::Hf(Arc::new(t))
            }
        };
        Ok(Tokenizer {
            kind,
            spec: spec.to_string(),
        })
    }

    /// The spec this tokenizer was loaded from.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Whether chunk counts are exact by construction (tiktoken's pre-tokenizer splits at every
    /// word and punctuation boundary the generator uses).
    pub fn chunk_additive(&self) -> bool {
        matches!(self.kind, Kind::Tiktoken(_))
    }

    /// Token ids of `text`, without special tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match &self.kind {
            Kind::Tiktoken(b) => b.encode_ordinary(text),
            Kind::Hf(t) => t
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default(),
        }
    }

    /// Number of tokens in `text`, without special tokens.
    pub fn count(&self, text: &str) -> usize {
        if text.is_empty() {
            return 0;
        }
        match &self.kind {
            Kind::Tiktoken(b) => b.encode_ordinary(text).len(),
            Kind::Hf(t) => t.encode_fast(text, false).map(|e| e.len()).unwrap_or(0),
        }
    }

    /// Text of `ids` (invalid UTF-8 at a cut is replaced, never an error).
    pub fn decode(&self, ids: &[u32]) -> String {
        match &self.kind {
            Kind::Tiktoken(b) => match b.decode_bytes(ids) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(_) => String::new(),
            },
            Kind::Hf(t) => t.decode(ids, false).unwrap_or_default(),
        }
    }

    /// The first `n` tokens of `text` (the text itself when it is no longer), and their count
    /// measured again on the result (a cut inside a multi-byte character can change it).
    pub fn truncate(&self, text: &str, n: usize) -> (String, usize) {
        let ids = self.encode(text);
        if ids.len() <= n {
            return (text.to_string(), ids.len());
        }
        let cut = self
            .decode(&ids[..n])
            .trim_end_matches('\u{FFFD}')
            .to_string();
        let c = self.count(&cut);
        (cut, c)
    }

    /// Whether `piece` is exactly one token.
    pub fn is_single_token(&self, piece: &str) -> bool {
        self.count(piece) == 1
    }
}
