//! Prompt materialization and request bodies, built ahead of their send time.
//!
//! A producer thread (at a lower CPU priority than the dispatcher) turns plan items into
//! serialized bodies, in the order the dispatcher will consume them, into a bounded channel
//! sized by `client.prepare_ahead_mib`. The run starts only once the channel is full (or the
//! whole workload is built), so a workload that fits in the budget is built entirely before
//! the first send, and a large one (Mooncake: 12k requests of ~12k tokens) stays that far
//! ahead without holding everything in memory. Session turns carry only their own text: the
//! conversation so far is spliced in when the turn is sent.

use std::collections::HashMap;
use std::sync::Arc;

use bench_text::{BLOCK_GENERATOR, TextGen, Tokenizer};
use bench_types::BlockSpec;
use bytes::Bytes;
use tokio::sync::mpsc;

use base64::Engine as _;

use crate::media;
use crate::plan::{Item, Plan};
use crate::protocol::request::Extra;
use crate::protocol::{BodyBuilder, Prompt, user_message_with};
use crate::synth_image;

/// What the dispatcher gets for one request.
#[derive(Debug)]
pub enum Payload {
    /// The complete body.
    Body(Bytes),
    /// A session turn: its own text (and image data URL), joined with the history when sent.
    Turn {
        /// The user's text for this turn.
        text: String,
        /// `data:` URL of the image, when the turn has one.
        image: Option<String>,
    },
    /// The body could not be built (e.g. the image file became unreadable).
    Failed(String),
}

/// A prepared request.
#[derive(Debug)]
pub struct Prepared {
    /// Index in the plan.
    pub idx: u32,
    /// Its body.
    pub payload: Payload,
}

/// Materializes prompts: the literal prompt, or shared blocks for `hash_ids`.
pub struct Materializer {
    blocks: Option<(TextGen, BlockSpec)>,
    /// Full block texts by hash id (Mooncake requests share long prefixes).
    cache: HashMap<u64, Box<str>>,
    cache_bytes: usize,
}

impl std::fmt::Debug for Materializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Materializer")
            .field("cached_blocks", &self.cache.len())
            .finish()
    }
}

const BLOCK_CACHE_BYTES: usize = 128 << 20;

impl Materializer {
    /// Loads the block generator when the workload uses `hash_ids`.
    pub fn new(blocks: Option<&BlockSpec>) -> Result<Self, String> {
        let blocks = match blocks {
            None => None,
            Some(spec) => {
                if spec.generator != BLOCK_GENERATOR {
                    return Err(format!(
                        "prompt blocks were made by `{}` but this client has `{BLOCK_GENERATOR}`; regenerate the workload",
                        spec.generator
                    ));
                }
                let tok =
                    Tokenizer::load(&spec.tokenizer).map_err(|e| format!("prompt_blocks: {e}"))?;
                let tg = TextGen::new(&tok).map_err(|e| format!("prompt_blocks: {e}"))?;
                Some((tg, spec.clone()))
            }
        };
        Ok(Materializer {
            blocks,
            cache: HashMap::new(),
            cache_bytes: 0,
        })
    }

    /// The prompt text of `req`: its `prompt`, else its blocks (exactly `blocks_prompt`).
    pub fn text(&mut self, item: &Item) -> Result<String, String> {
        if let Some(p) = &item.req.prompt {
            return Ok(p.clone());
        }
        let (ids, len) = match (&item.req.hash_ids, item.req.prompt_length) {
            (Some(ids), Some(len)) => (ids, len as usize),
            _ => return Err(format!("request {} has no prompt", item.id)),
        };
        let Some((tg, spec)) = &self.blocks else {
            return Err(format!(
                "request {} uses hash_ids but the workload has no prompt_blocks",
                item.id
            ));
        };
        let bt = spec.block_tokens as usize;
        let mut out = String::with_capacity(len * 6);
        for (i, &h) in ids.iter().enumerate() {
            let take = if i + 1 == ids.len() {
                len.saturating_sub(i * bt).clamp(1, bt)
            } else {
                bt
            };
            if take < bt {
                tg.block_into(spec.seed, h, bt, take, &mut out);
                continue;
            }
            if let Some(b) = self.cache.get(&h) {
                out.push_str(b);
                continue;
            }
            let b = tg.block(spec.seed, h, bt);
            out.push_str(&b);
            if self.cache_bytes + b.len() > BLOCK_CACHE_BYTES {
                self.cache.clear();
                self.cache_bytes = 0;
            }
            self.cache_bytes += b.len();
            self.cache.insert(h, b.into_boxed_str());
        }
        Ok(out)
    }
}

/// The `data:` URL of an image file, and the file's bytes.
pub(crate) fn file_data_url(path: &std::path::Path) -> Result<(String, usize), String> {
    let shown = path.display();
    let mime = media::image_mime(&path.to_string_lossy())
        .ok_or_else(|| format!("image {shown}: unknown image type (png, jpeg, webp, gif, bmp)"))?;
    let bytes = std::fs::read(path).map_err(|e| format!("image {shown}: {e}"))?;
    let mut url = format!("data:{mime};base64,");
    base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut url);
    Ok((url, bytes.len()))
}

/// The item's images as `data:` URLs (its file first, then its synthetic images) and their
/// bytes before base64.
fn images(item: &Item) -> Result<(Vec<String>, u64), String> {
    let mut urls = Vec::new();
    let mut bytes = 0u64;
    if let Some(p) = &item.image {
        let (u, n) = file_data_url(p)?;
        urls.push(u);
        bytes += n as u64;
    }
    for spec in item.req.images.iter().flatten() {
        let (u, n) = synth_image::data_url(spec)?;
        urls.push(u);
        bytes += n as u64;
    }
    Ok((urls, bytes))
}

/// Builds the payload of one item, and the bytes of its images (0 without). `standalone`
/// ignores the session (warmup copies).
pub fn prepare(
    m: &mut Materializer,
    b: &BodyBuilder,
    item: &Item,
    standalone: bool,
) -> (Payload, u64) {
    let text = match m.text(item) {
        Ok(t) => t,
        Err(e) => return (Payload::Failed(e), 0),
    };
    let (mut urls, image_bytes) = match images(item) {
        Ok(x) => x,
        Err(e) => return (Payload::Failed(e), 0),
    };
    if item.session.is_some() && !standalone {
        // a session turn carries at most its file's image (datasets put synthetic images
        // on plain prompts only)
        let image = (!urls.is_empty()).then(|| urls.swap_remove(0));
        return (Payload::Turn { text, image }, image_bytes);
    }
    let max = b.max_tokens(item.req.output_length);
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let x = Extra {
        turn_text: &text,
        images: &refs,
        fields: item.req.fields.as_ref(),
        id: item.id,
    };
    let body = if !refs.is_empty() && b.template().is_none() {
        b.build_ext(Prompt::Messages(&user_message_with(&text, &refs)), max, &x)
    } else {
        // a template places the images itself ({{image_urls}}, {{image_url}}, {{messages}})
        b.build_ext(Prompt::Text(&text), max, &x)
    };
    (Payload::Body(Bytes::from(body)), image_bytes)
}

/// Rough size of an item's prepared body.
fn estimate(item: &Item) -> usize {
    let prompt = match (&item.req.prompt, item.req.prompt_length) {
        (Some(p), _) => p.len(),
        (None, Some(n)) => n as usize * 6,
        (None, None) => 0,
    };
    let image = item
        .image
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len() as usize * 4 / 3);
    // a synthetic JPEG is about 0.2 bytes per pixel, a PNG 2.2 (benches/images.rs)
    let synthetic: usize = item
        .req
        .images
        .iter()
        .flatten()
        .map(|s| {
            let px = s.width as usize * s.height as usize;
            match s.format {
                bench_types::image::ImageFormat::Jpeg => px / 4,
                bench_types::image::ImageFormat::Png => px * 3,
            }
        })
        .sum();
    prompt + image + synthetic + 256
}

/// The producer's output: units in consumption order (one request, or a whole chain).
pub type Unit = Vec<Prepared>;

/// Spawns the producer for `units` (item indices, in consumption order). Returns the receiver
/// and a oneshot that fires once the initial fill is done.
pub fn spawn(
    plan: Arc<Plan>,
    builder: BodyBuilder,
    mut mat: Materializer,
    units: Vec<Vec<u32>>,
    budget_bytes: usize,
) -> (
    mpsc::Receiver<Unit>,
    tokio::sync::oneshot::Receiver<()>,
    std::thread::JoinHandle<()>,
) {
    let total: usize = units
        .iter()
        .flatten()
        .map(|&i| estimate(&plan.items[i as usize]))
        .sum();
    let n = units.len().max(1);
    let per_unit = (total / n).max(1);
    let cap = (budget_bytes / per_unit).clamp(8, n.max(8));
    let (tx, rx) = mpsc::channel::<Unit>(cap);
    let (filled_tx, filled_rx) = tokio::sync::oneshot::channel();
    let mut filled_tx = Some(filled_tx);
    let h = std::thread::Builder::new()
        .name("bench-prepare".into())
        .spawn(move || {
            crate::lower_thread_priority();
            let fill = cap.min(units.len());
            let mut sent = 0usize;
            let mut signal = || {
                if let Some(t) = filled_tx.take() {
                    let _ = t.send(());
                }
            };
            if fill == 0 {
                signal();
            }
            for unit in units {
                let prepared: Unit = unit
                    .iter()
                    .map(|&i| {
                        let (payload, image_bytes) =
                            prepare(&mut mat, &builder, &plan.items[i as usize], false);
                        plan.note_image_bytes(i, image_bytes);
                        Prepared { idx: i, payload }
                    })
                    .collect();
                if tx.blocking_send(prepared).is_err() {
                    return; // the run stopped
                }
                sent += 1;
                if sent == fill {
                    signal();
                }
            }
        })
        .expect("spawning the prepare thread");
    (rx, filled_rx, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_types::WorkloadRequest;

    fn item(req: WorkloadRequest) -> Item {
        Item {
            id: 0,
            scheduled_ns: 0,
            session: req.session_id,
            turn: None,
            req,
            image: None,
        }
    }

    #[test]
    fn blocks_match_blocks_prompt_with_the_cache() {
        let spec = BlockSpec {
            generator: BLOCK_GENERATOR.into(),
            tokenizer: "builtin:cl100k_base".into(),
            seed: 5,
            block_tokens: 64,
        };
        let mut m = Materializer::new(Some(&spec)).unwrap();
        let tg = TextGen::new(&Tokenizer::load("builtin:cl100k_base").unwrap()).unwrap();
        for (ids, len) in [
            (vec![1u64, 2, 3], 150u32),
            (vec![1, 2, 4], 192),
            (vec![1], 10),
            (vec![2, 1], 128),
        ] {
            let it = item(WorkloadRequest {
                hash_ids: Some(ids.clone()),
                prompt_length: Some(len),
                ..Default::default()
            });
            let mut want = String::new();
            tg.blocks_prompt(5, &ids, 64, len as usize, &mut want);
            assert_eq!(m.text(&it).unwrap(), want, "ids {ids:?} len {len}");
            assert_eq!(tg.tokenizer().count(&want), len as usize);
        }
        assert!(m.cache.len() >= 3);
    }

    #[test]
    fn wrong_generator_version_is_refused() {
        let spec = BlockSpec {
            generator: "bench-text/0".into(),
            tokenizer: "builtin:cl100k_base".into(),
            seed: 5,
            block_tokens: 64,
        };
        assert!(
            Materializer::new(Some(&spec))
                .unwrap_err()
                .contains("regenerate the workload")
        );
    }

    #[test]
    fn image_data_url_and_failures() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.png");
        std::fs::write(&p, b"foo").unwrap();
        assert_eq!(
            file_data_url(&p).unwrap(),
            ("data:image/png;base64,Zm9v".to_string(), 3)
        );
        assert!(
            file_data_url(&d.path().join("gone.png"))
                .unwrap_err()
                .starts_with("image ")
        );
        let mut m = Materializer::new(None).unwrap();
        let b = BodyBuilder::new(&bench_config::ClientConfig::default());
        let mut it = item(WorkloadRequest {
            prompt: Some("hi".into()),
            ..Default::default()
        });
        it.image = Some(d.path().join("gone.png"));
        assert!(matches!(
            prepare(&mut m, &b, &it, false).0,
            Payload::Failed(_)
        ));
    }
}
