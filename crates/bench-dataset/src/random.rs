//! `dataset.type: random`: prompts of fixed or distributed input/output token lengths.
//!
//! Prompt `i` draws its input length, then its output length, then its text from its own
//! RNG (`item_seed(seed, RANDOM, i, 0)`), so prompts are generated in parallel and the file
//! is the same whatever the thread count.

use bench_config::dataset::RandomDataset;
use bench_types::{DatasetRecord, PlainPrompt};
use rand::Rng as _;

use crate::output::{DatasetWriter, generate_parallel};
use crate::sampling::{LengthSampler, item_rng, stream};
use crate::template::PromptTemplate;
use crate::text::Text;
use crate::{DatasetError, Report};

/// The input and output length samplers of `r`.
fn samplers(r: &RandomDataset) -> (LengthSampler, LengthSampler) {
    let input = LengthSampler {
        dist: r.distribution,
        mean: f64::from(r.input_tokens),
        std: r.input_std,
        min: r.input_min,
        max: r.input_max,
    };
    let output = LengthSampler {
        dist: r.distribution,
        mean: f64::from(r.output_tokens),
        std: r.output_std,
        min: r.output_min,
        max: r.output_max,
    };
    (input, output)
}

/// Prompt `i` of the dataset.
/// With a template, the wrapped text has exactly the sampled length ([`PromptTemplate::fill_exact`]).
pub(crate) fn prompt(
    text: &Text,
    seed: u64,
    input: &LengthSampler,
    output: &LengthSampler,
    tpl: Option<&PromptTemplate>,
    i: u64,
) -> Result<PlainPrompt, DatasetError> {
    let mut rng = item_rng(seed, stream::RANDOM, i, 0);
    let isl = input.sample(&mut rng);
    let osl = output.sample(&mut rng);
    let (s, prompt_length) = match tpl {
        Some(t) => t.fill_exact(text, rng.next_u64(), isl, osl, i)?,
        None => {
            let mut s = String::with_capacity(isl as usize * 8);
            let built = text.append(&mut rng, isl, &mut s);
            let n = text.measured(&s, built);
            (s, n)
        }
    };
    Ok(PlainPrompt {
        prompt_length: Some(prompt_length),
        output_length: Some(osl),
        ..PlainPrompt::new(s)
    })
}

/// Writes the random dataset.
pub(crate) fn run(
    r: &RandomDataset,
    seed: u64,
    text: &Text,
    tpl: Option<&PromptTemplate>,
    w: &mut DatasetWriter,
    threads: usize,
) -> Result<Report, DatasetError> {
    let n = usize::try_from(r.num_prompts).map_err(|_| DatasetError::Config {
        key: "dataset.random.num_prompts".into(),
        msg: "too large".into(),
    })?;
    let (input, output) = samplers(r);
    generate_parallel(w, n, threads, |i| {
        Ok(DatasetRecord::Plain(prompt(
            text, seed, &input, &output, tpl, i as u64,
        )?))
    })?;
    Ok(Report::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_config::dataset::LengthDistribution;

    #[test]
    fn exact_lengths_under_both_builtins_on_many_prompts() {
        for spec in ["builtin:cl100k_base", "builtin:o200k_base"] {
            let text = Text::load(&spec.parse().unwrap()).unwrap();
            let r = RandomDataset {
                input_tokens: 300,
                input_std: 250.0,
                input_min: 1,
                input_max: 2000,
                distribution: LengthDistribution::Lognormal,
                ..RandomDataset::default()
            };
            let (input, output) = samplers(&r);
            let mut lengths = std::collections::BTreeSet::new();
            for i in 0..400 {
                let p = prompt(&text, 11, &input, &output, None, i).unwrap();
                let n = p.prompt_length.unwrap();
                assert_eq!(
                    text.tokenizer().count(&p.prompt) as u32,
                    n,
                    "{spec} prompt {i}"
                );
                assert!(
                    !p.prompt.starts_with(' ') && !p.prompt.ends_with(' '),
                    "{spec}: {:?}",
                    p.prompt
                );
                lengths.insert(n);
            }
            assert!(
                lengths.len() > 200,
                "lengths should vary: {}",
                lengths.len()
            );
            assert!(
                lengths.contains(&1) || lengths.iter().any(|&n| n < 50),
                "short prompts covered"
            );
        }
    }

    #[test]
    fn fixed_lengths_are_exactly_the_config() {
        let text = Text::load(&Default::default()).unwrap();
        let r = RandomDataset {
            input_tokens: 1000,
            output_tokens: 77,
            ..RandomDataset::default()
        };
        let (input, output) = samplers(&r);
        for i in 0..50 {
            let p = prompt(&text, 1, &input, &output, None, i).unwrap();
            assert_eq!(p.prompt_length, Some(1000));
            assert_eq!(text.tokenizer().count(&p.prompt), 1000);
            assert_eq!(p.output_length, Some(77));
        }
    }
}
