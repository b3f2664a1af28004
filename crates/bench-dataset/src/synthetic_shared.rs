//! `dataset.type: synthetic_shared`: AIBrix's controlled shared-prefix generator.
//!
//! Each group has `num_prefix` prefixes and `num_samples` prompts per prefix. For every
//! prompt (as AIBrix's `prepare_prompts` does): the length is L ~ Normal(prompt_length,
//! prompt_std) truncated at 1 and rounded; the shared part is P ~ Normal(shared_prop * L,
//! shared_prop_std * L) truncated to [0, L] and rounded. The prompt is the first P tokens of
//! its prefix's text followed by L - P tokens of its own text.
//!
//! Unlike AIBrix (which extends a too-short base prefix with per-prompt random text, so the
//! extension is not shared, and measures lengths on untrimmed text), each prefix here is one
//! deterministic token stream: every prompt of prefix i starts with exactly the first P of
//! its tokens, so two prompts of the same prefix share min(P1, P2) tokens, and the written
//! `prompt_length` is L, the length of the text as written.

use bench_config::dataset::{SharedPrefixGroup, SyntheticSharedDataset};
use bench_types::{DatasetRecord, PlainPrompt};
use rand::Rng;

use crate::output::{DatasetWriter, generate_parallel};
use crate::sampling::{item_rng, shuffle, stream, truncated_normal};
use crate::text::Text;
use crate::{DatasetError, Report};

/// Where a prompt sits: group, prefix within the group, sample within the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub group: u32,
    pub prefix: u32,
    pub sample: u32,
}

/// The layout of all prompts, in AIBrix's order (group by group, prefix by prefix).
pub(crate) struct Layout {
    /// First flat index of each group, plus the total at the end.
    starts: Vec<u64>,
    /// First global prefix id of each group.
    prefix_ids: Vec<u32>,
    samples: Vec<u32>,
}

impl Layout {
    pub(crate) fn new(groups: &[SharedPrefixGroup]) -> Self {
        let mut starts = vec![0u64];
        let mut prefix_ids = Vec::new();
        let mut next_prefix = 0u32;
        for g in groups {
            starts.push(
                starts[starts.len() - 1] + u64::from(g.num_prefix) * u64::from(g.num_samples),
            );
            prefix_ids.push(next_prefix);
            next_prefix = next_prefix.saturating_add(g.num_prefix);
        }
        Layout {
            starts,
            prefix_ids,
            samples: groups.iter().map(|g| g.num_samples).collect(),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.starts[self.starts.len() - 1]
    }

    pub(crate) fn slot(&self, k: u64) -> Slot {
        let g = self.starts.partition_point(|&s| s <= k) - 1;
        let within = k - self.starts[g];
        let per = u64::from(self.samples[g]);
        Slot {
            group: g as u32,
            prefix: (within / per) as u32,
            sample: (within % per) as u32,
        }
    }

    /// The global prefix id (`prefix_group`) of a slot.
    pub(crate) fn prefix_id(&self, s: Slot) -> u32 {
        self.prefix_ids[s.group as usize] + s.prefix
    }
}

/// The RNG of one prompt: its lengths, then its unique text.
fn prompt_rng(seed: u64, s: Slot) -> rand::rngs::StdRng {
    item_rng(
        seed,
        stream::SHARED_PROMPT,
        u64::from(s.group),
        (u64::from(s.prefix) << 32) | u64::from(s.sample),
    )
}

/// (L, P): the prompt length and its shared prefix length, as AIBrix's sample_L / sample_P.
pub(crate) fn lengths(g: &SharedPrefixGroup, rng: &mut impl Rng) -> (u32, u32) {
    let mean = f64::from(g.prompt_length);
    let l = truncated_normal(rng, mean, g.prompt_std, 1.0, f64::INFINITY)
        .round()
        .max(1.0);
    let l = l.min(f64::from(u32::MAX)) as u32;
    let lf = f64::from(l);
    let p = truncated_normal(rng, g.shared_prop * lf, g.shared_prop_std * lf, 0.0, lf).round();
    (l, (p.max(0.0) as u32).min(l))
}

/// The first `tokens` tokens of the text of prefix `prefix` of group `group`.
pub(crate) fn prefix_text(
    text: &Text,
    seed: u64,
    group: u32,
    prefix: u32,
    tokens: u32,
    out: &mut String,
) -> usize {
    let mut rng = item_rng(
        seed,
        stream::SHARED_PREFIX,
        u64::from(group),
        u64::from(prefix),
    );
    text.append(&mut rng, tokens, out)
}

/// The prompt in `slot`, and its shared prefix length.
pub(crate) fn prompt(
    text: &Text,
    seed: u64,
    cfg: &SyntheticSharedDataset,
    layout: &Layout,
    s: Slot,
) -> (PlainPrompt, u32) {
    let g = &cfg.groups[s.group as usize];
    let mut rng = prompt_rng(seed, s);
    let (l, p) = lengths(g, &mut rng);
    let mut out = String::with_capacity(l as usize * 8);
    let mut built = prefix_text(text, seed, s.group, s.prefix, p, &mut out);
    built += text.append(&mut rng, l - p, &mut out);
    let n = text.measured(&out, built);
    let rec = PlainPrompt {
        prompt_length: Some(n),
        output_length: cfg.output_length,
        prefix_group: Some(layout.prefix_id(s)),
        ..PlainPrompt::new(out)
    };
    (rec, p)
}

/// Writes the dataset.
pub(crate) fn run(
    cfg: &SyntheticSharedDataset,
    seed: u64,
    text: &Text,
    w: &mut DatasetWriter,
    threads: usize,
) -> Result<Report, DatasetError> {
    if cfg.groups.is_empty() {
        return Err(DatasetError::Config {
            key: "dataset.synthetic_shared.groups".into(),
            msg: "needs at least one group".into(),
        });
    }
    let layout = Layout::new(&cfg.groups);
    let n = layout.len();
    let order: Option<Vec<u64>> = cfg.shuffle.then(|| {
        let mut v: Vec<u64> = (0..n).collect();
        shuffle(&mut item_rng(seed, stream::SHARED_SHUFFLE, 0, 0), &mut v);
        v
    });
    let slot_of = |k: usize| layout.slot(order.as_ref().map_or(k as u64, |o| o[k]));
    let n_usize = usize::try_from(n).map_err(|_| DatasetError::Config {
        key: "dataset.synthetic_shared.groups".into(),
        msg: "too many prompts".into(),
    })?;
    generate_parallel(w, n_usize, threads, |k| {
        Ok(DatasetRecord::Plain(
            prompt(text, seed, cfg, &layout, slot_of(k)).0,
        ))
    })?;

    // The shared share, from the same length draws (no text needed).
    let (mut total, mut shared) = (0u64, 0u64);
    for k in 0..n {
        let s = layout.slot(k);
        let (l, p) = lengths(&cfg.groups[s.group as usize], &mut prompt_rng(seed, s));
        total += u64::from(l);
        shared += u64::from(p);
    }
    let mut rep = Report::default();
    rep.stat(
        "prefix_groups",
        cfg.groups
            .iter()
            .map(|g| u64::from(g.num_prefix))
            .sum::<u64>(),
    );
    rep.stat("shared_prefix_tokens", shared);
    rep.stat(
        "shared_fraction",
        if total == 0 {
            0.0
        } else {
            shared as f64 / total as f64
        },
    );
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        prompt_length: u32,
        prompt_std: f64,
        shared_prop: f64,
        shared_prop_std: f64,
        num_samples: u32,
        num_prefix: u32,
    ) -> SharedPrefixGroup {
        SharedPrefixGroup {
            prompt_length,
            prompt_std,
            shared_prop,
            shared_prop_std,
            num_samples,
            num_prefix,
        }
    }

    #[test]
    fn layout_maps_flat_indices() {
        let l = Layout::new(&[
            group(10, 0.0, 0.5, 0.0, 3, 2),
            group(10, 0.0, 0.5, 0.0, 2, 1),
        ]);
        assert_eq!(l.len(), 8);
        let slots: Vec<(u32, u32, u32, u32)> = (0..8)
            .map(|k| l.slot(k))
            .map(|s| (s.group, s.prefix, s.sample, l.prefix_id(s)))
            .collect();
        assert_eq!(
            slots,
            vec![
                (0, 0, 0, 0),
                (0, 0, 1, 0),
                (0, 0, 2, 0),
                (0, 1, 0, 1),
                (0, 1, 1, 1),
                (0, 1, 2, 1),
                (1, 0, 0, 2),
                (1, 0, 1, 2)
            ]
        );
    }

    #[test]
    fn prompts_share_exact_token_prefixes_and_exact_lengths() {
        for spec in ["builtin:cl100k_base", "builtin:o200k_base"] {
            let text = Text::load(&spec.parse().unwrap()).unwrap();
            let tok = text.tokenizer();
            let cfg = SyntheticSharedDataset {
                groups: vec![
                    group(400, 60.0, 0.6, 0.15, 12, 3),
                    group(150, 40.0, 0.05, 0.1, 10, 1),
                    group(50, 0.0, 1.0, 0.0, 4, 2),
                ],
                output_length: Some(32),
                shuffle: false,
            };
            let layout = Layout::new(&cfg.groups);
            let mut by_prefix: std::collections::BTreeMap<u32, Vec<(Vec<u32>, u32)>> =
                Default::default();
            for k in 0..layout.len() {
                let s = layout.slot(k);
                let (rec, p) = prompt(&text, 5, &cfg, &layout, s);
                let ids = tok.encode(&rec.prompt);
                let (l, p2) = lengths(&cfg.groups[s.group as usize], &mut prompt_rng(5, s));
                assert_eq!(p, p2);
                assert_eq!(ids.len() as u32, l, "{spec}: length of {s:?}");
                assert_eq!(rec.prompt_length, Some(l));
                assert_eq!(rec.output_length, Some(32));
                let mut pre = String::new();
                prefix_text(&text, 5, s.group, s.prefix, p, &mut pre);
                assert!(rec.prompt.starts_with(&pre), "{spec}: text prefix of {s:?}");
                assert_eq!(
                    &ids[..p as usize],
                    &tok.encode(&pre)[..],
                    "{spec}: token prefix of {s:?}"
                );
                by_prefix
                    .entry(rec.prefix_group.unwrap())
                    .or_default()
                    .push((ids, p));
            }
            assert_eq!(by_prefix.len(), 3 + 1 + 2);
            for (pg, members) in &by_prefix {
                for a in members {
                    for b in members {
                        let m = a.1.min(b.1) as usize;
                        assert_eq!(a.0[..m], b.0[..m], "{spec}: prefix group {pg}");
                    }
                }
            }
            // Different prefixes of a group start differently.
            let firsts: Vec<&Vec<u32>> = (0..3).map(|pg| &by_prefix[&pg][0].0).collect();
            assert_ne!(firsts[0][..20], firsts[1][..20]);
            // shared_prop 1, std 0: the whole prompt is the prefix.
            let full = &by_prefix[&4];
            assert!(full.iter().all(|(ids, p)| *p == 50 && ids == &full[0].0));
        }
    }

    #[test]
    fn shared_fraction_follows_the_config() {
        let g = group(3997, 17.0, 0.95, 0.00001, 1, 1);
        let mut rng = item_rng(1, 2, 3, 4);
        for _ in 0..200 {
            let (l, p) = lengths(&g, &mut rng);
            assert!((3997 - 17 * 6..=3997 + 17 * 6).contains(&l), "{l}");
            let expect = (0.95 * f64::from(l)).round() as u32;
            assert!(p.abs_diff(expect) <= 1, "{p} vs {expect}");
        }
    }
}
