//! `dataset.type: synthetic_multiturn`: AIBrix's multi-turn generator
//! (multiturn_prefix_sharing_dataset.py), session layout.
//!
//! * Sessions: int(Normal(num_sessions, num_sessions_std)), at least 1 (AIBrix can draw 0).
//! * Turns per session: int(Normal(num_turns, num_turns_std)), at least 1, at most 1,000,000.
//! * Prompt lengths: int(Pareto) with alpha = 2 + 1/r^2, r = std/mean, x_m = mean*(alpha-1)/alpha
//!   (AIBrix's ParetoSampler), clamped to [1, max_prompt_length]. AIBrix draws from a pool of
//!   100,000 pre-drawn samples; this draws directly from the distribution.
//! * An optional shared prefix of `shared_prefix_length` tokens (the same text in every
//!   session) starts every session's first turn, followed by a space and the turn's own text,
//!   so the first turn is prefix + sampled length tokens exactly (AIBrix glues the two without
//!   a separator and never re-measures).
//!
//! Session `s` draws everything from its own RNG, so sessions are generated in parallel.

use bench_config::dataset::SyntheticMultiturnDataset;
use bench_types::{DatasetRecord, SessionRecord};

use crate::output::{DatasetWriter, generate_parallel};
use crate::sampling::{Pareto, item_rng, normal, stream};
use crate::text::Text;
use crate::{DatasetError, Report};

/// Most turns one session may have.
const MAX_TURNS: f64 = 1_000_000.0;

/// The number of sessions.
pub(crate) fn num_sessions(cfg: &SyntheticMultiturnDataset, seed: u64) -> u64 {
    let mut rng = item_rng(seed, stream::MULTI_COUNT, 0, 0);
    let n = normal(&mut rng, cfg.num_sessions, cfg.num_sessions_std).trunc();
    n.clamp(1.0, 1e8) as u64
}

/// The shared prefix text (empty when the length is 0).
fn shared_prefix(cfg: &SyntheticMultiturnDataset, seed: u64, text: &Text) -> (String, usize) {
    let mut s = String::new();
    let n = text.append(
        &mut item_rng(seed, stream::MULTI_PREFIX, 0, 0),
        cfg.shared_prefix_length,
        &mut s,
    );
    (s, n)
}

/// Session `id`.
fn session(
    cfg: &SyntheticMultiturnDataset,
    seed: u64,
    text: &Text,
    pareto: &Pareto,
    prefix: &(String, usize),
    id: u64,
) -> SessionRecord {
    let mut rng = item_rng(seed, stream::MULTI_SESSION, id, 0);
    let turns = normal(&mut rng, cfg.num_turns, cfg.num_turns_std)
        .trunc()
        .clamp(1.0, MAX_TURNS) as usize;
    let mut prompts = Vec::with_capacity(turns);
    let mut lengths = Vec::with_capacity(turns);
    for t in 0..turns {
        let len = pareto
            .sample(&mut rng)
            .floor()
            .clamp(1.0, f64::from(cfg.max_prompt_length)) as u32;
        let mut s = String::new();
        let mut built = 0;
        if t == 0 && !prefix.0.is_empty() {
            s.push_str(&prefix.0);
            built = prefix.1;
        }
        built += text.append(&mut rng, len, &mut s);
        lengths.push(text.measured(&s, built));
        prompts.push(s);
    }
    SessionRecord {
        session_id: id,
        completions: None,
        completion_lengths: cfg.output_length.map(|o| vec![o; prompts.len()]),
        prompts,
        prompt_lengths: Some(lengths),
        source_id: None,
        dataset: None,
    }
}

/// Writes the dataset.
pub(crate) fn run(
    cfg: &SyntheticMultiturnDataset,
    seed: u64,
    text: &Text,
    w: &mut DatasetWriter,
    threads: usize,
) -> Result<Report, DatasetError> {
    let n = num_sessions(cfg, seed);
    let pareto = Pareto::from_mean_std(cfg.prompt_length, cfg.prompt_std);
    let prefix = shared_prefix(cfg, seed, text);
    generate_parallel(w, n as usize, threads, |i| {
        Ok(DatasetRecord::Session(session(
            cfg, seed, text, &pareto, &prefix, i as u64,
        )))
    })?;
    let mut rep = Report::default();
    rep.stat("shared_prefix_tokens", prefix.1 as u64);
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SyntheticMultiturnDataset {
        SyntheticMultiturnDataset {
            num_sessions: 300.0,
            ..SyntheticMultiturnDataset::default()
        }
    }

    #[test]
    fn session_count_follows_normal_and_is_at_least_one() {
        assert_eq!(num_sessions(&cfg(), 1), 300);
        let c = SyntheticMultiturnDataset {
            num_sessions: 1.0,
            num_sessions_std: 50.0,
            ..cfg()
        };
        let counts: Vec<u64> = (0..200).map(|s| num_sessions(&c, s)).collect();
        assert!(counts.iter().all(|&n| n >= 1));
        assert!(counts.iter().any(|&n| n > 10), "{counts:?}");
        let c = SyntheticMultiturnDataset {
            num_sessions: 1000.0,
            num_sessions_std: 1.0,
            ..cfg()
        };
        assert!((0..50).all(|s| (995..=1004).contains(&num_sessions(&c, s))));
    }

    #[test]
    fn turns_lengths_and_shared_prefix_are_exact() {
        for spec in ["builtin:cl100k_base", "builtin:o200k_base"] {
            let text = Text::load(&spec.parse().unwrap()).unwrap();
            let tok = text.tokenizer();
            let c = SyntheticMultiturnDataset {
                shared_prefix_length: 64,
                output_length: Some(20),
                max_prompt_length: 3000,
                ..cfg()
            };
            let pareto = Pareto::from_mean_std(c.prompt_length, c.prompt_std);
            let prefix = shared_prefix(&c, 9, &text);
            assert_eq!(tok.count(&prefix.0), 64);
            let mut turns = Vec::new();
            for id in 0..300 {
                let s = session(&c, 9, &text, &pareto, &prefix, id);
                assert_eq!(s.session_id, id);
                let lens = s.prompt_lengths.as_ref().unwrap();
                assert_eq!(lens.len(), s.prompts.len());
                assert_eq!(
                    s.completion_lengths.as_ref().unwrap(),
                    &vec![20; s.prompts.len()]
                );
                for (k, (p, &n)) in s.prompts.iter().zip(lens).enumerate() {
                    assert_eq!(tok.count(p) as u32, n, "{spec}: session {id} turn {k}");
                    if k == 0 {
                        assert!(
                            p.starts_with(&format!("{} ", prefix.0)),
                            "first turn starts with the prefix"
                        );
                        assert_eq!(tok.encode(p)[..64], tok.encode(&prefix.0)[..]);
                        assert!(n > 64 && n <= 64 + 3000);
                    } else {
                        assert!(!p.starts_with(&prefix.0));
                        assert!((1..=3000).contains(&n));
                    }
                }
                turns.push(s.prompts.len() as f64);
            }
            // Normal(3.55, 2.89) truncated toward zero, at least 1: mean about 3.6 over 300.
            let mean = turns.iter().sum::<f64>() / turns.len() as f64;
            assert!((2.8..4.5).contains(&mean), "mean turns {mean}");
            assert!(turns.iter().all(|&t| t >= 1.0));
        }
    }

    #[test]
    fn zero_std_gives_fixed_lengths() {
        let text = Text::load(&Default::default()).unwrap();
        let c = SyntheticMultiturnDataset {
            prompt_length: 100.0,
            prompt_std: 0.0,
            num_turns: 4.0,
            num_turns_std: 0.0,
            ..cfg()
        };
        let pareto = Pareto::from_mean_std(c.prompt_length, c.prompt_std);
        let s = session(&c, 1, &text, &pareto, &(String::new(), 0), 0);
        assert_eq!(s.prompt_lengths, Some(vec![100; 4]));
        assert_eq!(s.completion_lengths, None);
    }
}
