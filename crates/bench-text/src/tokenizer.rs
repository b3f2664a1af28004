//! Tokenizer specs, loading and counting.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tiktoken_rs::CoreBPE;

use crate::TextError;

/// A tokenizer embedded in the binary (tiktoken encodings: no download).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `builtin:cl100k_base` (GPT-4, GPT-3.5).
    Cl100kBase,
    /// `builtin:o200k_base` (GPT-4o).
    O200kBase,
}

impl Builtin {
    /// Every builtin.
    pub const ALL: [Builtin; 2] = [Builtin::Cl100kBase, Builtin::O200kBase];
    /// Its name after `builtin:`.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Cl100kBase => "cl100k_base",
            Builtin::O200kBase => "o200k_base",
        }
    }
}

/// Which tokenizer counts tokens: `builtin:cl100k_base`, `builtin:o200k_base`, or the path of a
/// Hugging Face `tokenizer.json` (or of a directory holding one). Parsed once, from the
/// config's string, by [`std::str::FromStr`]; [`std::fmt::Display`] gives the string back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenizerSpec {
    /// An embedded tiktoken encoding.
    Builtin(Builtin),
    /// A tokenizer.json file, or a directory holding one.
    File(PathBuf),
    /// `auto`: the served model's tokenizer when a local copy is found (see
    /// [`find_local_tokenizer`]); resolved before loading.
    Auto,
}

impl Default for TokenizerSpec {
    fn default() -> Self {
        TokenizerSpec::Builtin(Builtin::Cl100kBase)
    }
}

impl std::str::FromStr for TokenizerSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(name) = s.strip_prefix("builtin:") {
            return Builtin::ALL
                .into_iter()
                .find(|b| b.name() == name)
                .map(TokenizerSpec::Builtin)
                .ok_or_else(|| {
                    format!(
                        "unknown builtin `{name}`; expected builtin:cl100k_base or builtin:o200k_base"
                    )
                });
        }
        if s == "auto" {
            return Ok(TokenizerSpec::Auto);
        }
        if s.trim().is_empty() {
            return Err("is empty; give builtin:cl100k_base, builtin:o200k_base or the path of a tokenizer.json".into());
        }
        Ok(TokenizerSpec::File(PathBuf::from(s)))
    }
}

impl std::fmt::Display for TokenizerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenizerSpec::Builtin(b) => write!(f, "builtin:{}", b.name()),
            TokenizerSpec::File(p) => write!(f, "{}", p.display()),
            TokenizerSpec::Auto => f.write_str("auto"),
        }
    }
}

/// The longest run without whitespace [`Tokenizer::count_bounded`] tokenizes (bytes).
pub const MAX_PIECE: usize = 1024;

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
    /// Loads the tokenizer a spec string names (see [`TokenizerSpec`]).
    pub fn load(spec: &str) -> Result<Self, TextError> {
        let parsed: TokenizerSpec = spec.parse().map_err(|msg| TextError::Tokenizer {
            spec: spec.to_string(),
            msg,
        })?;
        Self::open(&parsed)
    }

    /// Loads the tokenizer of `spec`.
    pub fn open(spec: &TokenizerSpec) -> Result<Self, TextError> {
        let err = |msg: String| TextError::Tokenizer {
            spec: spec.to_string(),
            msg,
        };
        let kind = match spec {
            TokenizerSpec::Builtin(Builtin::Cl100kBase) => {
                Kind::Tiktoken(tiktoken_rs::cl100k_base_singleton())
            }
            TokenizerSpec::Builtin(Builtin::O200kBase) => {
                Kind::Tiktoken(tiktoken_rs::o200k_base_singleton())
            }
            TokenizerSpec::Auto => {
                return Err(err(
                    "`auto` is resolved to a tokenizer before loading (find_local_tokenizer)"
                        .into(),
                ));
            }
            TokenizerSpec::File(path) => {
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

    /// Number of tokens in `text`, in time linear in its length: a run of more than
    /// [`MAX_PIECE`] bytes without whitespace (BPE's cost grows with the square of a piece;
    /// one 60 MB "word" took 50 s) is estimated at 4 bytes per token instead of tokenized, and
    /// the count is then reported approximate (`true`). Text without such runs counts exactly
    /// as [`Tokenizer::count`] does.
    pub fn count_bounded(&self, text: &str) -> (usize, bool) {
        let b = text.as_bytes();
        let (mut total, mut approx, mut from, mut i) = (0usize, false, 0usize, 0usize);
        while i < b.len() {
            if b[i].is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i - start > MAX_PIECE {
                // char boundaries: whitespace bytes are ASCII, so start and i are on them
                total += self.count(&text[from..start]) + (i - start).div_ceil(4);
                approx = true;
                from = i;
            }
        }
        if !approx {
            return (self.count(text), false);
        }
        (total + self.count(&text[from..]), true)
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

/// The tokenizer.json of `model` on this machine: `model` itself when it is a directory holding
/// one (a local model path, as vLLM accepts), else the newest snapshot of `org/name` in the
/// Hugging Face hub cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, or `~/.cache/huggingface/hub`).
pub fn find_local_tokenizer(model: &str) -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let hub = env("HF_HUB_CACHE")
        .or_else(|| env("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/huggingface/hub")));
    find_in(model, hub.as_deref())
}

/// [`find_local_tokenizer`] with the hub cache at `hub`.
fn find_in(model: &str, hub: Option<&Path>) -> Option<PathBuf> {
    let direct = Path::new(model).join("tokenizer.json");
    if direct.is_file() {
        return Some(direct);
    }
    let snapshots = hub?
        .join(format!("models--{}", model.replace('/', "--")))
        .join("snapshots");
    let newest = std::fs::read_dir(snapshots)
        .ok()?
        .flatten()
        .map(|e| e.path().join("tokenizer.json"))
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())?;
    Some(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_counts_are_exact_on_text_and_fast_on_one_huge_word() {
        let t = Tokenizer::open(&TokenizerSpec::default()).unwrap();
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(2000);
        assert_eq!(t.count_bounded(&text), (t.count(&text), false));
        let word = "x".repeat(60 << 20);
        let huge = format!("before {word} after");
        // linear: tokenizing the 60 MB word itself would take about a minute
        let (n, approx) = t.count_bounded(&huge);
        assert!(approx);
        assert_eq!(n, t.count("before ") + (60 << 20) / 4 + t.count(" after"));
    }

    #[test]
    fn specs_parse_and_print_back() {
        for s in [
            "builtin:cl100k_base",
            "builtin:o200k_base",
            "auto",
            "/x/tokenizer.json",
        ] {
            assert_eq!(s.parse::<TokenizerSpec>().unwrap().to_string(), s);
        }
        assert!(
            "builtin:p50k"
                .parse::<TokenizerSpec>()
                .unwrap_err()
                .contains("unknown builtin `p50k`")
        );
        assert!("".parse::<TokenizerSpec>().is_err());
    }

    #[test]
    fn local_tokenizers_are_found_in_a_model_directory_and_the_hub_cache() {
        let d = tempfile::tempdir().unwrap();
        let model_dir = d.path().join("my-model");
        std::fs::create_dir_all(&model_dir).unwrap();
        std::fs::write(model_dir.join("tokenizer.json"), "{}").unwrap();
        assert_eq!(
            find_local_tokenizer(model_dir.to_str().unwrap()),
            Some(model_dir.join("tokenizer.json"))
        );
        let snap = d
            .path()
            .join("hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/abc123");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("tokenizer.json"), "{}").unwrap();
        let hub = d.path().join("hub");
        assert_eq!(
            find_in("HuggingFaceTB/SmolLM2-135M-Instruct", Some(&hub)),
            Some(snap.join("tokenizer.json"))
        );
        assert_eq!(find_in("HuggingFaceTB/other", Some(&hub)), None);
        assert_eq!(find_local_tokenizer("no-such-org/no-such-model-here"), None);
    }
}
