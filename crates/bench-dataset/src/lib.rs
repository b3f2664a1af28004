//! The dataset stage: writes `<run_dir>/dataset.jsonl` (AIBrix plain or session layout, see
//! [`bench_types::dataset`]).
//!
//! One module per `dataset.type`: `random`, `synthetic_shared`,
//! `synthetic_multiturn`, `sharegpt`, `client_trace`, `custom`; `sampling` holds the seeds and
//! distributions they share, `text` the tokenizer and generator, `output` the writer.
//! docs/DATASETS.md documents every type and the choices made.
//!
//! Guarantees:
//! * Same config and seed, same bytes: every item (prompt, session, prefix) draws from its own
//!   RNG seeded from `seed`, so the output does not depend on the thread count.
//! * Every `prompt_length` / `prompt_lengths` / `completion_lengths` value is the token count
//!   of the text as written, under the configured tokenizer.
//! * Bad input stops the stage with `file:line: message` (exit status 2); the partial file is
//!   removed, so a later stage never reads half a dataset.

mod client_trace;
mod custom;
mod decor;
mod image_jobs;
mod mix;
mod output;
mod random;
mod sampling;
mod sharegpt;
mod synthetic_multiturn;
mod synthetic_shared;
mod template;
#[cfg(test)]
mod tests;
mod text;

use std::path::{Path, PathBuf};

use bench_config::Config;
use bench_config::dataset::DatasetType;
use bench_types::stage::exit;
use bench_types::{FormatError, StageError, StageOutput, files};

/// Dataset stage errors.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A bad input file or format problem (exit 2), or an I/O failure (exit 1).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The tokenizer could not be loaded (exit 2).
    #[error(transparent)]
    Text(#[from] bench_text::TextError),
    /// The input file named by a config key cannot be used (exit 2).
    #[error("`{key}`: {}: {msg}", path.display())]
    Input {
        /// The config key naming the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A config value the stage cannot work with (exit 2).
    #[error("`{key}`: {msg}")]
    Config {
        /// The config key.
        key: String,
        /// What is wrong.
        msg: String,
    },
    /// The run produced no prompt at all (exit 2: the input or filters leave nothing).
    #[error("the dataset is empty: {0}")]
    Empty(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

impl StageError for DatasetError {
    fn exit_code(&self) -> i32 {
        match self {
            DatasetError::Format(FormatError::Io { .. }) | DatasetError::Other(_) => exit::FAILURE,
            _ => exit::BAD_INPUT,
        }
    }
}

/// Extra figures a generator reports (merged into the stage's stats).
#[derive(Debug, Default)]
pub(crate) struct Report {
    stats: Vec<(String, serde_json::Value)>,
}

impl Report {
    pub(crate) fn stat(&mut self, k: &str, v: impl Into<serde_json::Value>) {
        self.stats.push((k.to_string(), v.into()));
    }
}

/// `line` without a UTF-8 byte order mark when it is the first line (files saved by some
/// Windows editors start with one).
pub(crate) fn without_bom(line_no: usize, line: &str) -> &str {
    if line_no == 1 {
        line.strip_prefix('\u{feff}').unwrap_or(line)
    } else {
        line
    }
}

/// The input file of the configured type: its config key and path, checked to be a file.
fn input_file(cfg: &Config) -> Result<Option<(&'static str, PathBuf)>, DatasetError> {
    let Some((key, p)) = cfg.dataset.input_path() else {
        return match cfg.dataset.kind {
            DatasetType::Sharegpt | DatasetType::ClientTrace | DatasetType::Custom => {
                let key = format!("dataset.{}.path", cfg.dataset.kind.as_str());
                Err(DatasetError::Config {
                    key,
                    msg: format!(
                        "is required when dataset.type is {}",
                        cfg.dataset.kind.as_str()
                    ),
                })
            }
            _ => Ok(None),
        };
    };
    let path = PathBuf::from(p);
    let bad = |msg: String| DatasetError::Input {
        key: key.to_string(),
        path: path.clone(),
        msg,
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(Some((key, path))),
        Ok(_) => Err(bad("is not a file".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(bad(
            "not found (datasets/README.md says where to get the public datasets)".into(),
        )),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Runs the dataset stage for `cfg` into `run_dir`.
pub fn run(cfg: &Config, run_dir: &Path) -> Result<StageOutput, DatasetError> {
    run_with_threads(cfg, run_dir, output::default_threads())
}

/// [`run`] on `threads` worker threads (the output is the same for any count).
pub fn run_with_threads(
    cfg: &Config,
    run_dir: &Path,
    threads: usize,
) -> Result<StageOutput, DatasetError> {
    let d = &cfg.dataset;
    let threads = threads.max(1);
    if d.use_.is_some() {
        return run_mix(cfg, run_dir, threads);
    }
    let input = input_file(cfg)?;
    let text = text::Text::load(&cfg.tokenizer)?;
    let tpl = load_template(d)?;
    let mut w = output::DatasetWriter::create(run_dir)?;
    // random aims its lengths at the template itself; given prompts are wrapped as written
    let wrap = tpl.as_ref().filter(|_| d.kind != DatasetType::Random);
    w.set_decor(decor::Decor::new(
        d,
        cfg.seed,
        &text,
        d.kind.as_str(),
        wrap,
    )?);
    let report = match (d.kind, &input) {
        (DatasetType::Random, _) => {
            random::run(&d.random, cfg.seed, &text, tpl.as_ref(), &mut w, threads)?
        }
        (DatasetType::SyntheticShared, _) => {
            synthetic_shared::run(&d.synthetic_shared, cfg.seed, &text, &mut w, threads)?
        }
        (DatasetType::SyntheticMultiturn, _) => {
            synthetic_multiturn::run(&d.synthetic_multiturn, cfg.seed, &text, &mut w, threads)?
        }
        (DatasetType::Sharegpt, Some((_, p))) => {
            sharegpt::run(&d.sharegpt, p, &text, &mut w, threads)?
        }
        (DatasetType::ClientTrace, Some((_, p))) => {
            client_trace::run(p, d.client_trace.messages, &text, &mut w, threads)?
        }
        (DatasetType::Custom, Some((_, p))) => custom::run(p, &text, &mut w, threads)?,
        (DatasetType::ImageJobs, _) => image_jobs::run(&d.image_jobs, &text, &mut w, threads)?,
        (_, None) => {
            return Err(DatasetError::Other(
                "input file missing after the check".into(),
            ));
        }
    };
    let totals = w.finish_if_not_empty(|| match &input {
        Some((key, p)) => format!(
            "nothing left from {} (`{key}`) after the documented drops and the length filters",
            p.display()
        ),
        None => "the generator produced no prompt".into(),
    })?;

    let inputs = input.map(|(k, p)| (k.to_string(), p)).into_iter().collect();
    Ok(stage_output(totals, d.kind.as_str(), inputs, report))
}

/// `dataset.prompt_template`, read and parsed.
fn load_template(
    d: &bench_config::dataset::DatasetConfig,
) -> Result<Option<template::PromptTemplate>, DatasetError> {
    d.prompt_template
        .as_deref()
        .map(|p| template::PromptTemplate::load(Path::new(p)))
        .transpose()
}

/// `dataset.use`: named datasets, one or a weighted mix ([`mix`]).
fn run_mix(cfg: &Config, run_dir: &Path, threads: usize) -> Result<StageOutput, DatasetError> {
    let mut w = output::DatasetWriter::create(run_dir)?;
    let d = &cfg.dataset;
    if d.images.is_some() || d.prompt_template.is_some() {
        let text = text::Text::load(&cfg.tokenizer)?;
        let tpl = load_template(d)?;
        w.set_decor(decor::Decor::new(d, cfg.seed, &text, "mix", tpl.as_ref())?);
    }
    let m = mix::run(cfg, run_dir, &mut w, threads)?;
    let totals = w.finish_if_not_empty(|| "the mix has no record (dataset.records)".into())?;
    Ok(stage_output(totals, "mix", m.inputs, m.report))
}

/// The stage's files and stats.
fn stage_output(
    totals: output::Totals,
    kind: &str,
    inputs: Vec<(String, PathBuf)>,
    report: Report,
) -> StageOutput {
    let mut out = StageOutput {
        outputs: vec![files::DATASET.to_string()],
        inputs,
        ..StageOutput::default()
    };
    out.stat("type", kind);
    out.stat("records", totals.records);
    out.stat("prompts", totals.prompts);
    out.stat("sessions", totals.sessions);
    out.stat("prompt_tokens", totals.prompt_tokens);
    out.stat("output_tokens", totals.output_tokens);
    out.stat("bytes", totals.bytes);
    out.stat(
        "mean_prompt_tokens",
        if totals.prompts == 0 {
            0.0
        } else {
            totals.prompt_tokens as f64 / totals.prompts as f64
        },
    );
    for (k, v) in report.stats {
        out.stats.insert(k, v);
    }
    out
}
