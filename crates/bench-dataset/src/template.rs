//! `dataset.prompt_template`: a text file that wraps every prompt.
//!
//! `{prompt}` marks where the prompt goes and `{NAME}` takes the record's field NAME
//! (`output_length`, `dataset`, or a key of the record's `fields`). `{{` and `}}` are literal
//! braces; any other brace (JSON in the template, say) is kept as it is. One final newline of
//! the file is dropped, so a file saved by an editor wraps the same as one without.
//!
//! Lengths: `dataset.type: random` aims at the sampled length for the wrapped text, template
//! included (see [`PromptTemplate::fill_exact`]); every other type measures the wrapped text.

use std::path::{Path, PathBuf};

use bench_types::{DatasetRecord, PlainPrompt};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::DatasetError;
use crate::text::Text;

/// The config key.
const KEY: &str = "dataset.prompt_template";

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Prompt,
    Field(String),
}

/// A parsed prompt template.
#[derive(Debug, Clone)]
pub(crate) struct PromptTemplate {
    parts: Vec<Part>,
    path: PathBuf,
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

impl PromptTemplate {
    /// Reads and parses `path`; it must hold `{prompt}` once.
    pub(crate) fn load(path: &Path) -> Result<Self, DatasetError> {
        let bad = |msg: String| DatasetError::Input {
            key: KEY.into(),
            path: path.to_path_buf(),
            msg,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let t = PromptTemplate::parse(&text, path).map_err(bad)?;
        Ok(t)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, String> {
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            lit.push_str(&rest[..i]);
            let r = &rest[i..];
            if r.starts_with("{{") || r.starts_with("}}") {
                lit.push_str(&r[..1]);
                rest = &r[2..];
                continue;
            }
            if let Some(end) = r.find('}').filter(|_| r.starts_with('{'))
                && is_name(&r[1..end])
            {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                let name = &r[1..end];
                parts.push(if name == "prompt" {
                    Part::Prompt
                } else {
                    Part::Field(name.to_string())
                });
                rest = &r[end + 1..];
                continue;
            }
            lit.push_str(&r[..1]);
            rest = &r[1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        match parts.iter().filter(|p| **p == Part::Prompt).count() {
            1 => {}
            0 => return Err("has no {prompt} (it marks where each prompt goes)".into()),
            n => return Err(format!("has {{prompt}} {n} times; it must appear once")),
        }
        Ok(PromptTemplate {
            parts,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, msg: String) -> DatasetError {
        DatasetError::Input {
            key: KEY.into(),
            path: self.path.clone(),
            msg,
        }
    }

    /// The text before and after `{prompt}`, with fields from `field`.
    fn split(
        &self,
        field: &dyn Fn(&str) -> Option<String>,
        what: &str,
    ) -> Result<(String, String), DatasetError> {
        let (mut pre, mut post) = (String::new(), String::new());
        let mut out = &mut pre;
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Prompt => out = &mut post,
                Part::Field(n) => match field(n) {
                    Some(v) => out.push_str(&v),
                    None => {
                        return Err(self.err(format!(
                            "{{{n}}} is not a field of {what} (fields: prompt, output_length, dataset, and a custom record's own keys)"
                        )));
                    }
                },
            }
        }
        Ok((pre, post))
    }

    /// Random prompt text of exactly `target` tokens with the template around it: the body
    /// starts at `target` minus the template's own tokens, and while the whole text's count
    /// is off (tokens can merge where the template meets the body), the body is made again
    /// from the same seed with the difference added. Returns the text and its length.
    pub(crate) fn fill_exact(
        &self,
        text: &Text,
        body_seed: u64,
        target: u32,
        output_length: u32,
        index: u64,
    ) -> Result<(String, u32), DatasetError> {
        let field = |n: &str| (n == "output_length").then(|| output_length.to_string());
        let (pre, post) = self.split(&field, &format!("random prompt {index}"))?;
        let own = text.count(&pre) + text.count(&post);
        let too_short = || {
            self.err(format!(
                "the template alone is {own} tokens; prompt {index} is to be {target} tokens in all (raise dataset.random.input_tokens / input_min)"
            ))
        };
        let start = i64::from(target) - i64::from(own);
        let (mut body, mut seed, mut last) = (start, body_seed, 0);
        let mut tried = Vec::new();
        for _ in 0..32 {
            if body < 1 {
                return Err(too_short());
            }
            let mut s = String::with_capacity(pre.len() + post.len() + body as usize * 8);
            let mut rng = StdRng::seed_from_u64(seed);
            if pre.ends_with(char::is_whitespace) {
                // no space of the generator's own after a newline or a space
                text.append(&mut rng, body as u32, &mut s);
                s.insert_str(0, &pre);
            } else {
                s.push_str(&pre);
                text.append(&mut rng, body as u32, &mut s);
            }
            s.push_str(&post);
            last = text.count(&s);
            if last == target {
                return Ok((s, last));
            }
            tried.push((seed, body));
            body += i64::from(target) - i64::from(last);
            if tried.contains(&(seed, body)) {
                // a merge at a join flips as the body grows and shrinks: other text
                seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                body = start;
            }
        }
        Err(self.err(format!(
            "prompt {index}: could not make exactly {target} tokens around the template (closest {last}); a template that ends or starts inside a word can do this"
        )))
    }

    /// `rec` with every prompt wrapped, and its lengths measured again.
    pub(crate) fn wrap(
        &self,
        text: &Text,
        rec: DatasetRecord,
        index: u64,
    ) -> Result<DatasetRecord, DatasetError> {
        Ok(match rec {
            DatasetRecord::Plain(p) => {
                let field = |n: &str| plain_field(&p, n);
                let (pre, post) = self.split(&field, &format!("record {}", index + 1))?;
                let prompt = format!("{pre}{}{post}", p.prompt);
                let n = text.count(&prompt);
                DatasetRecord::Plain(PlainPrompt {
                    prompt,
                    prompt_length: Some(n),
                    ..p
                })
            }
            DatasetRecord::Session(mut s) => {
                let mut lengths = Vec::with_capacity(s.prompts.len());
                for (k, prompt) in s.prompts.iter_mut().enumerate() {
                    let field = |n: &str| match n {
                        "dataset" => s.dataset.clone(),
                        "output_length" => s
                            .completion_lengths
                            .as_ref()
                            .and_then(|l| l.get(k))
                            .map(u32::to_string),
                        _ => None,
                    };
                    let what = format!("record {} (turn {k})", index + 1);
                    let (pre, post) = self.split(&field, &what)?;
                    *prompt = format!("{pre}{prompt}{post}");
                    lengths.push(text.count(prompt));
                }
                s.prompt_lengths = Some(lengths);
                DatasetRecord::Session(s)
            }
        })
    }
}

/// Field `n` of a plain prompt, as template text.
fn plain_field(p: &PlainPrompt, n: &str) -> Option<String> {
    match n {
        "output_length" => p.output_length.map(|v| v.to_string()),
        "dataset" => p.dataset.clone(),
        _ => p.fields.as_ref()?.get(n).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::{item_seed, stream};

    fn t(s: &str) -> PromptTemplate {
        PromptTemplate::parse(s, Path::new("t.txt")).unwrap()
    }

    #[test]
    fn parse_and_render() {
        let x = t("Q ({lang}): {prompt}\n{\"json\": {{x}}}\n");
        let f = |n: &str| (n == "lang").then(|| "fr".to_string());
        let (pre, post) = x.split(&f, "r").unwrap();
        assert_eq!(pre, "Q (fr): ");
        assert_eq!(post, "\n{\"json\": {x}}");
        let e = x.split(&|_| None, "record 3").unwrap_err().to_string();
        assert!(e.contains("{lang} is not a field of record 3"), "{e}");
        for (s, want) in [
            ("no prompt", "has no {prompt}"),
            ("{prompt}{prompt}", "2 times"),
        ] {
            let e = PromptTemplate::parse(s, Path::new("t.txt")).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        // `{{prompt}}` is the literal text
        let y = t("{{prompt}} {prompt}");
        assert_eq!(y.split(&|_| None, "r").unwrap().0, "{prompt} ");
    }

    #[test]
    fn exact_lengths_with_a_template_on_both_builtins() {
        for spec in ["builtin:cl100k_base", "builtin:o200k_base"] {
            let text = Text::load(&spec.parse().unwrap()).unwrap();
            let x = t(
                "<|system|>You are terse. Answer in {output_length} tokens.\n### Question:\n{prompt}\n### Answer (be exact):",
            );
            for (i, target) in [40u32, 41, 64, 100, 257, 1000, 4096]
                .into_iter()
                .enumerate()
            {
                let seed = item_seed(5, stream::RANDOM, i as u64, 0);
                let (s, n) = x.fill_exact(&text, seed, target, 128, i as u64).unwrap();
                assert_eq!(n, target, "{spec}");
                assert_eq!(text.tokenizer().count(&s) as u32, target, "{spec}: {s:?}");
                assert!(s.starts_with("<|system|>You are terse. Answer in 128 tokens.\n"));
                assert!(s.ends_with("### Answer (be exact):"));
            }
            let e = x.fill_exact(&text, 99, 10, 128, 7).unwrap_err().to_string();
            assert!(
                e.contains("the template alone is") && e.contains("prompt 7"),
                "{e}"
            );
        }
    }

    #[test]
    fn wrap_measures_again() {
        let text = Text::load(&Default::default()).unwrap();
        let x = t("[{topic}] {prompt} (answer briefly)");
        let mut p = PlainPrompt::new("What is a kernel?");
        p.prompt_length = Some(5);
        p.fields = Some(
            serde_json::json!({"topic": "os"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let DatasetRecord::Plain(w) = x.wrap(&text, DatasetRecord::Plain(p), 0).unwrap() else {
            panic!("plain")
        };
        assert_eq!(w.prompt, "[os] What is a kernel? (answer briefly)");
        assert_eq!(w.prompt_length, Some(text.count(&w.prompt)));
        let e = x
            .wrap(&text, DatasetRecord::Plain(PlainPrompt::new("x")), 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("{topic} is not a field of record 5"), "{e}");
    }
}
