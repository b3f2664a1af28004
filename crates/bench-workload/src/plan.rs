//! What the generators produce (demands: a time and what prompt is wanted) and how demands
//! become planned requests (prompts chosen from the dataset, or left to generate).

use std::path::PathBuf;
use std::sync::Arc;

use bench_types::image::SyntheticImage;

use bench_config::workload::PromptSource;
use bench_types::LoopMode;

use crate::prompts::{Drawer, Matcher, Pool};
use rand::rngs::StdRng;

/// The prompt a request wants.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Want {
    /// A dataset prompt as it is (sessions kept).
    AsIs,
    /// A prompt of (about, for dataset prompts) this many tokens.
    Length(u32),
    /// The Mooncake blocks `hash_ids`, cut to `input_length` tokens.
    Blocks {
        hash_ids: Vec<u64>,
        input_length: u32,
    },
}

/// One request as a generator sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Demand {
    /// Milliseconds from the start of the run.
    pub t_ms: f64,
    pub want: Want,
    /// Output length from the trace or config (None: the dataset's, if any).
    pub output_length: Option<u32>,
}

/// What a generator returns.
#[derive(Debug, Default)]
pub(crate) struct Generated {
    pub demands: Vec<Demand>,
    /// Input files read, keyed by the config key naming them.
    pub inputs: Vec<(String, PathBuf)>,
    /// Type-specific figures for the stage output.
    pub stats: Vec<(&'static str, serde_json::Value)>,
    pub mode: LoopMode,
    pub concurrency: Option<u32>,
}

impl Generated {
    pub(crate) fn stat(&mut self, k: &'static str, v: impl Into<serde_json::Value>) {
        self.stats.push((k, v.into()));
    }
}

/// The prompt of a planned request.
#[derive(Debug, Clone)]
pub(crate) enum Prompt {
    /// Dataset text.
    Text(Arc<str>),
    /// To generate: exactly `len` tokens.
    Synthetic,
    /// Mooncake blocks.
    Blocks(Vec<u64>),
}

/// A request with its prompt decided.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub t_ms: f64,
    pub prompt: Prompt,
    /// Token length of the prompt (for `Synthetic` and `Blocks`: the target, exact under the
    /// builtin tokenizers; measured again when materialized otherwise).
    pub len: u32,
    /// The length the workload asked for, when it asked for one.
    pub target: Option<u32>,
    pub output_length: Option<u32>,
    pub session: Option<(u64, u32)>,
    pub image_path: Option<Arc<str>>,
    pub images: Option<Arc<[SyntheticImage]>>,
    /// The named dataset the prompt came from.
    pub dataset: Option<Arc<str>>,
    pub fields: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

/// Decides every demand's prompt, in time order (`demands` must be sorted).
pub(crate) fn resolve(
    demands: Vec<Demand>,
    source: PromptSource,
    pool: Option<&Pool>,
    max_active: u32,
    rng: &mut StdRng,
) -> Vec<Planned> {
    let matcher = pool
        .filter(|_| {
            source == PromptSource::Dataset
                && demands.iter().any(|d| matches!(d.want, Want::Length(_)))
        })
        .map(Matcher::new);
    let mut drawer = pool
        .filter(|_| demands.iter().any(|d| d.want == Want::AsIs))
        .map(|p| Drawer::new(p, max_active, rng));
    demands
        .into_iter()
        .map(|d| {
            let from_pool = |unit: usize, item: usize, session, target| {
                let it = &pool.expect("pool loaded for dataset prompts").units[unit].items[item];
                Planned {
                    t_ms: d.t_ms,
                    prompt: Prompt::Text(it.text.clone()),
                    len: it.len,
                    target,
                    output_length: d.output_length.or(it.output_length),
                    session,
                    image_path: it.image_path.clone(),
                    images: it.images.clone(),
                    dataset: it.dataset.clone(),
                    fields: it.fields.clone(),
                }
            };
            match d.want {
                Want::AsIs => {
                    let (u, i, s) = drawer
                        .as_mut()
                        .expect("drawer exists for as-is demands")
                        .draw(pool.expect("pool"), rng);
                    from_pool(u, i, s, None)
                }
                Want::Length(n) => match &matcher {
                    Some(m) => {
                        let (u, i) = m.pick(n, rng);
                        from_pool(u, i, None, Some(n))
                    }
                    None => Planned {
                        t_ms: d.t_ms,
                        prompt: Prompt::Synthetic,
                        len: n,
                        target: Some(n),
                        output_length: d.output_length,
                        session: None,
                        image_path: None,
                        images: None,
                        dataset: None,
                        fields: None,
                    },
                },
                Want::Blocks {
                    hash_ids,
                    input_length,
                } => Planned {
                    t_ms: d.t_ms,
                    prompt: Prompt::Blocks(hash_ids),
                    len: input_length,
                    target: Some(input_length),
                    output_length: d.output_length,
                    session: None,
                    image_path: None,
                    images: None,
                    dataset: None,
                    fields: None,
                },
            }
        })
        .collect()
}
