//! The workload stage: writes `<run_dir>/workload.jsonl` (AIBrix layout: `{"timestamp": ms,
//! "requests": [...]}` per line, plus a header line when the workload is closed loop or gives
//! prompts as shared blocks). See docs/WORKLOADS.md for every type.
//!
//! How it works: a generator per `workload.type` produces *demands* (a time in ms from the
//! start of the run, the prompt wanted: a dataset prompt as it is, a target length, or
//! Mooncake blocks; and an output length). They are sorted by time (one clock for everything),
//! cut to `max_requests`, given prompts ([`plan::resolve`]: closest-length dataset prompt,
//! as-is dataset prompt with sessions, or generated text), and written ([`emit`]).
//!
//! Modules: [`arrivals`] (processes under a rate curve), [`pattern`] (AIBrix sine curves),
//! [`quantiles`] (lengths from percentiles), [`prompts`] (dataset pool, matcher, session
//! drawer), one module per workload type, [`datetime`] and [`csv`] (trace parsing).

mod arrivals;
mod azure;
mod concurrency;
mod constant;
mod csv;
mod datetime;
mod emit;
mod mooncake;
mod pattern;
mod plan;
mod prompts;
mod quantiles;
mod seeds;
mod stat;
mod synthetic;

use std::path::Path;

use bench_config::Config;
use bench_config::workload::{PromptSource, WorkloadType};
use bench_text::{TextGen, Tokenizer};
use bench_types::stage::exit;
use bench_types::{
    BlockSpec, FormatError, LoopMode, StageError, StageOutput, WorkloadHeader, files,
};

use crate::plan::Want;

use bench_config::MAX_PROMPT_TOKENS;

/// Workload stage errors.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A bad input file: the message names the file and line (exit 2; an I/O failure is 1).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The tokenizer could not be loaded (exit 2).
    #[error(transparent)]
    Text(#[from] bench_text::TextError),
    /// An input named by a config key is missing or unusable, or the config asks for
    /// something the inputs cannot give (exit 2).
    #[error("`{key}`: {msg}")]
    Input {
        /// The config key.
        key: String,
        /// What is wrong.
        msg: String,
    },
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

impl StageError for WorkloadError {
    fn exit_code(&self) -> i32 {
        match self {
            WorkloadError::Format(FormatError::Io { .. }) | WorkloadError::Other(_) => {
                exit::FAILURE
            }
            _ => exit::BAD_INPUT,
        }
    }
}

/// Runs the workload stage for `cfg` into `run_dir` (reading `dataset.jsonl` there when the
/// prompts come from the dataset).
pub fn run(cfg: &Config, run_dir: &Path) -> Result<StageOutput, WorkloadError> {
    let w = &cfg.workload;
    let mut tok: Option<Tokenizer> = None;
    let mut tokenizer = || -> Result<Tokenizer, WorkloadError> {
        if tok.is_none() {
            tok = Some(Tokenizer::open(&cfg.tokenizer)?);
        }
        Ok(tok.clone().expect("just loaded"))
    };
    let mut out = StageOutput::default();

    // The dataset, when prompts come from it.
    let pool = if w.needs_dataset() {
        let path = run_dir.join(files::DATASET);
        if !path.is_file() {
            return Err(WorkloadError::Input {
                key: "workload.prompt_source".into(),
                msg: format!(
                    "is dataset but {} does not exist (run `--stage dataset` first, or set workload.prompt_source: synthetic)",
                    path.display()
                ),
            });
        }
        let pool = prompts::Pool::load(&path, &tokenizer()?)?;
        if pool.num_prompts() == 0 {
            return Err(WorkloadError::Input {
                key: "workload.prompt_source".into(),
                msg: format!("is dataset but {} has no prompts", path.display()),
            });
        }
        out.inputs.push((files::DATASET.into(), path));
        tracing::debug!(
            "workload: {} dataset prompts in {} records",
            pool.num_prompts(),
            pool.units.len()
        );
        Some(pool)
    } else {
        None
    };

    let mut generated = match w.kind {
        WorkloadType::Constant => constant::generate(cfg)?,
        WorkloadType::Synthetic => synthetic::generate(cfg)?,
        WorkloadType::Stat => stat::generate(cfg)?,
        WorkloadType::Azure => azure::generate(cfg)?,
        WorkloadType::Mooncake => mooncake::generate(cfg)?,
        WorkloadType::Concurrency => concurrency::generate(cfg, pool.as_ref()),
    };
    out.inputs.append(&mut generated.inputs);
    let mut demands = std::mem::take(&mut generated.demands);
    demands.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    let offered = demands.len();
    if let Some(m) = w.max_requests {
        demands.truncate(m.min(usize::MAX as u64) as usize);
    }
    // Lengths from trace files and patterns are only bounded by their type: refuse what no
    // model serves before writing gigabytes of prompt text.
    if let Some((t_ms, n)) = demands.iter().find_map(|d| match d.want {
        Want::Length(n) if n > MAX_PROMPT_TOKENS => Some((d.t_ms, n)),
        _ => None,
    }) {
        return Err(WorkloadError::Input {
            key: "workload.type".into(),
            msg: format!(
                "the {} workload asks for a prompt of {n} tokens at {t_ms} ms, more than the \
                 {MAX_PROMPT_TOKENS} bench generates (check the length inputs and their scales)",
                w.kind.name()
            ),
        });
    }
    if demands.is_empty() {
        return Err(WorkloadError::Input {
            key: "workload.type".into(),
            msg: format!(
                "the {} workload has no requests (check its rate, duration and inputs)",
                w.kind.name()
            ),
        });
    }

    let mooncake_text = w.kind == WorkloadType::Mooncake && w.mooncake.materialize;
    let synthetic_text =
        w.kind != WorkloadType::Mooncake && w.prompt_source == PromptSource::Synthetic;
    let text = if mooncake_text
        || synthetic_text
        || w.kind == WorkloadType::Mooncake
        || cfg.dataset.unique_prefix
    {
        // Loaded for mooncake block references too: it checks the tokenizer the client will use.
        Some(TextGen::new(&tokenizer()?)?)
    } else {
        None
    };
    let planned = plan::resolve(
        demands,
        w.prompt_source,
        pool.as_ref(),
        w.max_active_sessions,
        &mut seeds::rng(cfg.seed, seeds::PICK),
    );
    let mut header = WorkloadHeader::open_loop(w.kind.name());
    header.mode = generated.mode;
    header.concurrency = generated.concurrency;
    header.num_requests = Some(planned.len() as u64);
    if w.kind == WorkloadType::Mooncake && !w.mooncake.materialize {
        header.prompt_blocks = Some(BlockSpec {
            generator: bench_text::BLOCK_GENERATOR.into(),
            tokenizer: cfg.tokenizer.to_string(),
            seed: cfg.seed,
            block_tokens: w.mooncake.block_tokens,
        });
    }
    let m = emit::Materializer {
        text,
        seed: cfg.seed,
        block_tokens: w.mooncake.block_tokens,
        materialize_blocks: mooncake_text,
        unique_prefix: cfg.dataset.unique_prefix,
    };
    let path = run_dir.join(files::WORKLOAD);
    let st = emit::write(&path, &header, &planned, &m)?;

    out.outputs.push(files::WORKLOAD.into());
    out.stat("type", w.kind.name());
    out.stat(
        "mode",
        if generated.mode == LoopMode::ClosedLoop {
            "closed_loop"
        } else {
            "open_loop"
        },
    );
    out.stat("requests", st.requests);
    if offered != planned.len() {
        out.stat("requests_before_max_requests", offered as u64);
    }
    out.stat("entries", st.entries);
    let span = st.last_ms - st.first_ms;
    out.stat("span_ms", span);
    if generated.mode == LoopMode::OpenLoop && span > 0.0 {
        out.stat("mean_rate_rps", st.requests as f64 / (span / 1000.0));
    }
    out.stat("prompt_tokens", st.prompt_tokens);
    out.stat("output_tokens", st.output_tokens);
    out.stat("requests_without_output_length", st.without_output_length);
    out.stat("sessions", st.sessions);
    let source = match (w.kind, w.prompt_source) {
        (WorkloadType::Mooncake, _) if mooncake_text => "mooncake_blocks_materialized",
        (WorkloadType::Mooncake, _) => "mooncake_block_refs",
        (_, PromptSource::Dataset) => "dataset",
        (_, PromptSource::Synthetic) => "synthetic",
    };
    out.stat("prompt_source", source);
    if st.with_target > 0 && w.kind != WorkloadType::Mooncake {
        out.stat(
            "prompt_length_abs_error_mean",
            st.len_err_sum as f64 / st.with_target as f64,
        );
        out.stat("prompt_length_abs_error_max", st.len_err_max);
    }
    out.stat("bytes", st.bytes);
    if w.time_scale != 1.0 {
        out.stat("time_scale", w.time_scale);
    }
    for (k, v) in generated.stats {
        out.stats.insert(k.to_string(), v);
    }
    tracing::debug!(
        "workload: wrote {} requests to {}",
        st.requests,
        path.display()
    );
    Ok(out)
}
