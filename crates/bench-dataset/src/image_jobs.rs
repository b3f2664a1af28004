//! `dataset.type: image_jobs`: image generation jobs for a ComfyUI endpoint (Vast's `/runsync`
//! shape, through `config/templates/comfyui-runsync.yaml`).
//!
//! Each line is a plain prompt whose `fields` hold `width`, `height`, `steps`, `seed` (the job's
//! index) and `workflow`: the ComfyUI workflow (API format) with `{{width}}`, `{{height}}`,
//! `{{steps}}`, `{{prompt}}` and `{{seed}}` filled in. `analysis.workload_unit: image` counts
//! the jobs from the first three.

use bench_config::dataset::ImageJobsDataset;
use bench_types::{DatasetRecord, PlainPrompt};
use serde_json::{Map, Value, json};

use crate::output::{DatasetWriter, generate_parallel};
use crate::text::Text;
use crate::{DatasetError, Report};

/// A Stable Diffusion 1.5 text-to-image workflow in ComfyUI's API format.
const SD15_TXT2IMG: &str = r#"{
  "3": {"class_type": "KSampler", "inputs": {"seed": "{{seed}}", "steps": "{{steps}}", "cfg": 7,
        "sampler_name": "euler", "scheduler": "normal", "denoise": 1,
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
  "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
  "5": {"class_type": "EmptyLatentImage", "inputs": {"width": "{{width}}", "height": "{{height}}", "batch_size": 1}},
  "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}", "clip": ["4", 1]}},
  "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality", "clip": ["4", 1]}},
  "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
  "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "bench", "images": ["8", 0]}}
}"#;

/// `v` with the placeholders of `vars` replaced.
fn fill(v: &Value, vars: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => {
            let ph = bench_config::api_template::placeholders(s);
            if let [(0, end, name)] = ph.as_slice()
                && *end == s.len()
                && let Some(x) = vars.get(*name)
            {
                return x.clone();
            }
            let mut out = String::with_capacity(s.len());
            let mut at = 0;
            for (a, b, name) in ph {
                out.push_str(&s[at..a]);
                match vars.get(name) {
                    Some(Value::String(t)) => out.push_str(t),
                    Some(x) => out.push_str(&x.to_string()),
                    None => out.push_str(&s[a..b]),
                }
                at = b;
            }
            out.push_str(&s[at..]);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| fill(x, vars)).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), fill(x, vars))).collect())
        }
        x => x.clone(),
    }
}

/// The workflow of `dataset.image_jobs.workflow` (or the built-in one).
fn workflow(d: &ImageJobsDataset) -> Result<Value, DatasetError> {
    let Some(p) = &d.workflow else {
        return Ok(serde_json::from_str(SD15_TXT2IMG).expect("the built-in workflow is JSON"));
    };
    let bad = |msg: String| DatasetError::Input {
        key: "dataset.image_jobs.workflow".into(),
        path: p.into(),
        msg,
    };
    let text = std::fs::read_to_string(p).map_err(|e| bad(e.to_string()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if !v.is_object() {
        return Err(bad(
            "a ComfyUI workflow (API format) is a JSON object of nodes".into(),
        ));
    }
    Ok(v)
}

/// Writes the jobs.
pub(crate) fn run(
    d: &ImageJobsDataset,
    text: &Text,
    w: &mut DatasetWriter,
    threads: usize,
) -> Result<Report, DatasetError> {
    let wf = workflow(d)?;
    let n = usize::try_from(d.num_jobs).map_err(|_| DatasetError::Config {
        key: "dataset.image_jobs.num_jobs".into(),
        msg: "too large".into(),
    })?;
    generate_parallel(w, n, threads, |i| {
        Ok(DatasetRecord::Plain(job(d, &wf, text, i)))
    })?;
    Ok(Report::default())
}

fn job(d: &ImageJobsDataset, wf: &Value, text: &Text, i: usize) -> PlainPrompt {
    let prompt = d.prompts[i % d.prompts.len()].clone();
    let vars = json!({"width": d.width, "height": d.height, "steps": d.steps, "seed": i, "prompt": prompt});
    let vars = vars.as_object().expect("an object");
    let mut fields = vars.clone();
    fields.remove("prompt");
    fields.insert("workflow".into(), fill(wf, vars));
    PlainPrompt {
        prompt_length: Some(text.count(&prompt)),
        fields: Some(fields),
        ..PlainPrompt::new(prompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_fill_the_workflow_with_numbers_and_text() {
        let text = Text::load(&"builtin:cl100k_base".parse().unwrap()).unwrap();
        let d = ImageJobsDataset {
            width: 640,
            prompts: vec!["a".into(), "b \"q\"".into()],
            ..ImageJobsDataset::default()
        };
        let wf = workflow(&d).unwrap();
        let j = job(&d, &wf, &text, 3);
        assert_eq!(j.prompt, "b \"q\"");
        let f = j.fields.unwrap();
        assert_eq!(
            (
                f["width"].clone(),
                f["height"].clone(),
                f["steps"].clone(),
                f["seed"].clone()
            ),
            (json!(640), json!(512), json!(20), json!(3))
        );
        let w = &f["workflow"];
        assert_eq!(
            w["5"]["inputs"],
            json!({"width": 640, "height": 512, "batch_size": 1})
        );
        assert_eq!(w["3"]["inputs"]["steps"], json!(20));
        assert_eq!(w["3"]["inputs"]["seed"], json!(3));
        assert_eq!(w["6"]["inputs"]["text"], json!("b \"q\""));
        let mut vars = Map::new();
        vars.insert("w".into(), json!(5));
        assert_eq!(
            fill(&json!(["{{w}}", "x{{w}}y", "{{unknown}}"]), &vars),
            json!([5, "x5y", "{{unknown}}"])
        );
    }
}
