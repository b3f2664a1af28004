//! `dataset.use`: one named dataset of `datasets:`, or a weighted mix of them.
//!
//! Each named dataset is made by its own type's generator or converter (same seed, same
//! tokenizer, into a scratch directory of the run), then:
//! * counts: `dataset.records` records in all (null: as many as the named datasets allow at
//!   their weights), split by weight with the largest-remainder rule
//!   ([`bench_config::dataset::split_by_weight`]): exact, summing to the total;
//! * which records: a seeded random subset of each dataset (all of it when its count is its
//!   size), kept in the dataset's own order;
//! * order: the chosen records of every dataset shuffled together with one seeded shuffle, so
//!   the mix is spread over the file (and over a workload that draws prompts in file order);
//! * every record carries `dataset` (its name); sessions are numbered again 0, 1, ... in file
//!   order so ids stay unique across datasets (the original id goes to `source_id` when that is
//!   empty, as `<name>:<id>`).

use std::path::{Path, PathBuf};

use bench_config::Config;
use bench_config::dataset::split_by_weight;
use bench_types::{DatasetRecord, FormatError, files};
use rand::seq::SliceRandom;

use crate::output::DatasetWriter;
use crate::sampling::{item_rng, stream};
use crate::{DatasetError, Report};

/// What a mix made, for the stage's inputs and stats.
pub(crate) struct Mixed {
    pub report: Report,
    pub inputs: Vec<(String, PathBuf)>,
}

/// A stable number for a name (the subset's stream).
fn name_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The largest total whose split gives no dataset more records than it has.
fn largest_total(sizes: &[u64], weights: &[f64]) -> u64 {
    let sum: f64 = weights.iter().sum();
    let mut n = sizes
        .iter()
        .zip(weights)
        .map(|(&s, &w)| ((s as f64) * sum / w).floor() as u64)
        .min()
        .unwrap_or(0);
    let fits = |n: u64| {
        split_by_weight(n, weights)
            .iter()
            .zip(sizes)
            .all(|(c, s)| c <= s)
    };
    while n > 0 && !fits(n) {
        n -= 1;
    }
    // rounding may leave room for a few more
    let more = (1..=weights.len() as u64)
        .filter(|k| fits(n + k))
        .max()
        .unwrap_or(0);
    n + more
}

/// Makes every named dataset of `dataset.use` and writes the mix to `w`.
pub(crate) fn run(
    cfg: &Config,
    run_dir: &Path,
    w: &mut DatasetWriter,
    threads: usize,
) -> Result<Mixed, DatasetError> {
    let Some(u) = &cfg.dataset.use_ else {
        return Err(DatasetError::Other("dataset.use is not set".into()));
    };
    let parts = u.parts();
    let scratch = run_dir.join(".datasets");
    let mut made: Vec<(String, Vec<DatasetRecord>)> = Vec::new();
    let mut inputs = Vec::new();
    let mut report = Report::default();
    for (name, _) in &parts {
        let Some(d) = cfg.datasets.get(*name) else {
            return Err(DatasetError::Config {
                key: "dataset.use".into(),
                msg: format!("`{name}` is not in `datasets:`"),
            });
        };
        let dir = scratch.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| FormatError::io(&dir, e))?;
        let mut one = cfg.clone();
        one.dataset = d.clone();
        one.datasets.clear();
        let out = crate::run_with_threads(&one, &dir, threads).map_err(|e| named(name, e))?;
        for (k, p) in out.inputs {
            let k = k.replacen("dataset.", &format!("datasets.{name}."), 1);
            inputs.push((k, p));
        }
        let recs = bench_types::dataset::read(&dir.join(files::DATASET))?;
        made.push((name.to_string(), recs));
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let weights: Vec<f64> = parts.iter().map(|p| p.1).collect();
    let sizes: Vec<u64> = made.iter().map(|(_, r)| r.len() as u64).collect();
    let total = match cfg.dataset.records {
        Some(n) => n,
        None => largest_total(&sizes, &weights),
    };
    let counts = split_by_weight(total, &weights);
    for ((name, recs), &c) in made.iter().zip(&counts) {
        if c > recs.len() as u64 {
            return Err(DatasetError::Config {
                key: "dataset.records".into(),
                msg: format!(
                    "{total} records at these weights take {c} of `{name}`, which has {}: lower dataset.records or make `{name}` larger",
                    recs.len()
                ),
            });
        }
    }
    // each dataset's chosen records, in its own order
    let mut chosen: Vec<DatasetRecord> = Vec::with_capacity(total as usize);
    for ((name, recs), &c) in made.into_iter().zip(&counts) {
        let mut idx: Vec<usize> = (0..recs.len()).collect();
        if (c as usize) < recs.len() {
            idx.shuffle(&mut item_rng(
                cfg.seed,
                stream::MIX_SUBSET,
                name_key(&name),
                0,
            ));
            idx.truncate(c as usize);
            idx.sort_unstable();
        }
        let mut keep = vec![false; recs.len()];
        for i in idx {
            keep[i] = true;
        }
        for (rec, k) in recs.into_iter().zip(keep) {
            if k {
                chosen.push(tag(rec, &name));
            }
        }
        report.stat(&format!("records_{name}"), c);
    }
    chosen.shuffle(&mut item_rng(cfg.seed, stream::MIX_ORDER, 0, 0));
    let mut next_session = 0u64;
    for mut rec in chosen {
        if let DatasetRecord::Session(s) = &mut rec {
            if s.source_id.is_none() {
                s.source_id = Some(format!(
                    "{}:{}",
                    s.dataset.as_deref().unwrap_or(""),
                    s.session_id
                ));
            }
            s.session_id = next_session;
            next_session += 1;
        }
        w.write(&rec)?;
    }
    report.stat("mix_records", total);
    Ok(Mixed { report, inputs })
}

/// `rec` marked as coming from `name`.
fn tag(mut rec: DatasetRecord, name: &str) -> DatasetRecord {
    match &mut rec {
        DatasetRecord::Plain(p) => p.dataset = Some(name.to_string()),
        DatasetRecord::Session(s) => s.dataset = Some(name.to_string()),
    }
    rec
}

/// An error of the named dataset `name`, its config keys under `datasets.<name>`.
fn named(name: &str, e: DatasetError) -> DatasetError {
    let re = |key: String| key.replacen("dataset.", &format!("datasets.{name}."), 1);
    match e {
        DatasetError::Input { key, path, msg } => DatasetError::Input {
            key: re(key),
            path,
            msg,
        },
        DatasetError::Config { key, msg } => DatasetError::Config { key: re(key), msg },
        DatasetError::Empty(m) => DatasetError::Empty(format!("`datasets.{name}`: {m}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_total_fits_every_dataset() {
        // 0.7 / 0.3 of 100 and 50 records: 143 -> 100.1 + 42.9 -> 100 + 43 fits; 144 -> 101 + 43
        // does not
        assert_eq!(largest_total(&[100, 50], &[0.7, 0.3]), 143);
        assert_eq!(split_by_weight(143, &[0.7, 0.3]), vec![100, 43]);
        assert_eq!(split_by_weight(144, &[0.7, 0.3]), vec![101, 43]);
        assert_eq!(largest_total(&[10, 1000], &[1.0, 1.0]), 20);
        assert_eq!(largest_total(&[7], &[1.0]), 7);
    }
}
