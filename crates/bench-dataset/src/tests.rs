//! Stage-level tests: determinism, thread invariance, every type end to end on small inputs.

use std::path::Path;

use bench_config::Config;
use bench_config::dataset::{
    DatasetType, LengthDistribution, SharedPrefixGroup, SharegptLayout, SystemPrompt,
};
use bench_types::{DatasetRecord, StageError, dataset};

use super::*;

fn run_bytes(cfg: &Config, threads: usize) -> (Vec<u8>, StageOutput) {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_threads(cfg, dir.path(), threads).unwrap_or_else(|e| panic!("{e}"));
    (std::fs::read(dir.path().join(files::DATASET)).unwrap(), out)
}

fn small(kind: DatasetType) -> Config {
    let mut cfg = Config::default();
    cfg.dataset.kind = kind;
    cfg.dataset.random.num_prompts = 1200;
    cfg.dataset.random.input_tokens = 60;
    cfg.dataset.random.input_std = 30.0;
    cfg.dataset.random.output_std = 20.0;
    cfg.dataset.random.distribution = LengthDistribution::Normal;
    cfg.dataset.synthetic_shared.groups = vec![
        SharedPrefixGroup {
            prompt_length: 200,
            prompt_std: 20.0,
            shared_prop: 0.8,
            shared_prop_std: 0.05,
            num_samples: 300,
            num_prefix: 2,
        },
        SharedPrefixGroup {
            prompt_length: 80,
            prompt_std: 40.0,
            shared_prop: 0.1,
            shared_prop_std: 0.1,
            num_samples: 500,
            num_prefix: 1,
        },
    ];
    cfg.dataset.synthetic_shared.shuffle = true;
    cfg.dataset.synthetic_multiturn.num_sessions = 700.0;
    cfg.dataset.synthetic_multiturn.max_prompt_length = 400;
    cfg.dataset.synthetic_multiturn.shared_prefix_length = 10;
    cfg
}

#[test]
fn same_config_and_seed_give_identical_bytes_whatever_the_thread_count() {
    for kind in [
        DatasetType::Random,
        DatasetType::SyntheticShared,
        DatasetType::SyntheticMultiturn,
    ] {
        let mut cfg = small(kind);
        let (a, out) = run_bytes(&cfg, 1);
        assert!(
            out.stats["records"].as_u64().unwrap() > 512,
            "{kind:?}: more than one chunk"
        );
        let (b, _) = run_bytes(&cfg, 1);
        let (c, _) = run_bytes(&cfg, 3);
        assert_eq!(a, b, "{kind:?}: same seed, same bytes");
        assert_eq!(a, c, "{kind:?}: thread count does not matter");
        cfg.seed += 1;
        let (d, _) = run_bytes(&cfg, 2);
        assert_ne!(a, d, "{kind:?}: another seed, another dataset");
    }
}

#[test]
fn every_written_length_is_the_length_of_the_written_text() {
    for tok in ["builtin:cl100k_base", "builtin:o200k_base"] {
        let t = bench_text::Tokenizer::load(tok).unwrap();
        for kind in [
            DatasetType::Random,
            DatasetType::SyntheticShared,
            DatasetType::SyntheticMultiturn,
        ] {
            let mut cfg = small(kind);
            cfg.tokenizer = tok.parse().unwrap();
            cfg.dataset.random.num_prompts = 300;
            let dir = tempfile::tempdir().unwrap();
            let out = run_with_threads(&cfg, dir.path(), 2).unwrap();
            let recs = dataset::read(&dir.path().join(files::DATASET)).unwrap();
            let mut total = 0u64;
            for r in &recs {
                match r {
                    DatasetRecord::Plain(p) => {
                        assert_eq!(
                            p.prompt_length,
                            Some(t.count(&p.prompt) as u32),
                            "{tok} {kind:?}"
                        );
                        total += u64::from(p.prompt_length.unwrap());
                    }
                    DatasetRecord::Session(s) => {
                        let lens: Vec<u32> = s.prompts.iter().map(|p| t.count(p) as u32).collect();
                        assert_eq!(s.prompt_lengths.as_ref(), Some(&lens), "{tok} {kind:?}");
                        total += lens.iter().map(|&n| u64::from(n)).sum::<u64>();
                    }
                }
            }
            assert_eq!(out.stats["prompt_tokens"], total);
        }
    }
}

#[test]
fn random_lengths_follow_the_config() {
    let mut cfg = small(DatasetType::Random);
    cfg.dataset.random.input_tokens = 500;
    cfg.dataset.random.input_std = 100.0;
    cfg.dataset.random.input_min = 300;
    cfg.dataset.random.input_max = 700;
    cfg.dataset.random.output_tokens = 100;
    cfg.dataset.random.output_std = 0.0;
    cfg.dataset.random.num_prompts = 2000;
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_threads(&cfg, dir.path(), 2).unwrap();
    let recs = dataset::read(&dir.path().join(files::DATASET)).unwrap();
    assert_eq!(recs.len(), 2000);
    let lens: Vec<u32> = recs
        .iter()
        .map(|r| match r {
            DatasetRecord::Plain(p) => {
                assert_eq!(p.output_length, Some(100), "std 0: exactly the mean");
                p.prompt_length.unwrap()
            }
            DatasetRecord::Session(_) => panic!("plain"),
        })
        .collect();
    assert!(lens.iter().all(|n| (300..=700).contains(n)));
    let mean = lens.iter().map(|&n| f64::from(n)).sum::<f64>() / 2000.0;
    assert!((mean - 500.0).abs() < 8.0, "mean {mean}");
    assert_eq!(out.stats["output_tokens"], 200_000);
    assert_eq!(out.stats["type"], "random");
    assert_eq!(out.outputs, vec!["dataset.jsonl".to_string()]);
    assert!(out.inputs.is_empty());
}

#[test]
fn synthetic_shared_writes_every_group_and_its_stats() {
    let cfg = small(DatasetType::SyntheticShared);
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_threads(&cfg, dir.path(), 2).unwrap();
    let recs = dataset::read(&dir.path().join(files::DATASET)).unwrap();
    assert_eq!(recs.len(), 300 * 2 + 500);
    let mut per_group = [0usize; 3];
    for r in &recs {
        let DatasetRecord::Plain(p) = r else {
            panic!("plain")
        };
        per_group[p.prefix_group.unwrap() as usize] += 1;
    }
    assert_eq!(per_group, [300, 300, 500]);
    // Shuffled: the first 300 records are not all of prefix 0.
    let first: std::collections::BTreeSet<u32> = recs[..300]
        .iter()
        .map(|r| {
            if let DatasetRecord::Plain(p) = r {
                p.prefix_group.unwrap()
            } else {
                0
            }
        })
        .collect();
    assert_eq!(first.len(), 3);
    assert_eq!(out.stats["prefix_groups"], 3);
    let frac = out.stats["shared_fraction"].as_f64().unwrap();
    // (600 * 200 * 0.8 + 500 * 80 * 0.1) / (600 * 200 + 500 * 80) = 0.625, give or take sampling.
    assert!((frac - 0.625).abs() < 0.02, "{frac}");
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn sharegpt_edge_cases_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"[
 {"id": "sys", "conversations": [{"from": "system", "value": "You are terse."}, {"from": "human", "value": "Name a color."}, {"from": "gpt", "value": "Blue."}, {"from": "human", "value": "Another."}, {"from": "gpt", "value": "Red, a color that is often used for warnings and for stop signs everywhere."}]},
 {"id": "gpt-first", "conversations": [{"from": "gpt", "value": "Hi! How can I help?"}, {"from": "user", "value": "Say hi."}, {"from": "chatgpt", "value": "Hi."}]},
 {"id": "empty", "conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "?"}]},
 {"id": "none", "conversations": []},
 {"id": "two-in-a-row", "conversations": [{"from": "human", "value": "First part."}, {"from": "human", "value": "Second part."}, {"from": "assistant", "value": "Both read."}]}
]"#;
    let mut cfg = Config::default();
    cfg.dataset.kind = DatasetType::Sharegpt;
    cfg.dataset.sharegpt.path = Some(write(dir.path(), "sg.json", body));
    let (bytes, out) = run_bytes(&cfg, 1);
    let recs = dataset::read(&{
        let p = dir.path().join("out.jsonl");
        std::fs::write(&p, &bytes).unwrap();
        p
    })
    .unwrap();
    let s: Vec<_> = recs
        .iter()
        .map(|r| {
            if let DatasetRecord::Session(s) = r {
                s.clone()
            } else {
                panic!()
            }
        })
        .collect();
    assert_eq!(s.len(), 3);
    assert_eq!(
        s[0].prompts,
        vec!["You are terse.\n\nName a color.", "Another."]
    );
    assert_eq!(s[0].source_id.as_deref(), Some("sys"));
    assert_eq!(s[1].prompts, vec!["Say hi."]);
    assert_eq!(s[1].completions, Some(vec!["Hi.".to_string()]));
    assert_eq!(s[2].prompts, vec!["First part.\n\nSecond part."]);
    assert_eq!(
        s.iter().map(|s| s.session_id).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let n = |k: &str| out.stats[k].as_u64().unwrap();
    assert_eq!(
        (
            n("conversations"),
            n("kept_conversations"),
            n("empty_sessions_dropped")
        ),
        (5, 3, 2)
    );
    assert_eq!(
        (
            n("system_folded"),
            n("leading_assistant_dropped"),
            n("empty_prompt_dropped"),
            n("merged_turns")
        ),
        (1, 1, 1, 1)
    );

    // Drop the system text, cap the reply length and the turns, write plain prompts.
    cfg.dataset.sharegpt.system_prompt = SystemPrompt::Drop;
    cfg.dataset.sharegpt.max_completion_tokens = Some(5);
    cfg.dataset.sharegpt.max_turns = Some(1);
    cfg.dataset.sharegpt.layout = SharegptLayout::Plain;
    let (bytes, out) = run_bytes(&cfg, 2);
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["prompt"], "Name a color.");
    assert_eq!(lines[0]["output_length"], 2, "\"Blue.\" is 2 tokens");
    assert_eq!(lines[1]["prompt"], "Say hi.");
    assert_eq!(lines[2]["prompt"], "First part.\n\nSecond part.");
    assert_eq!(out.stats["filtered_turns"], 1, "the long reply");
    assert_eq!(out.stats["system_dropped"], 1);
}

#[test]
fn custom_and_client_trace_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("img")).unwrap();
    std::fs::write(dir.path().join("img/a.png"), b"\x89PNG").unwrap();
    let mut cfg = Config::default();
    cfg.dataset.kind = DatasetType::Custom;
    cfg.dataset.custom.path = Some(write(
        dir.path(),
        "c.jsonl",
        "\u{feff}{\"prompt\":\"Hello there\"}\r\n\r\n{\"prompt\":\"What is in the picture?\",\"image_path\":\"img/a.png\",\"output_length\":30}",
    ));
    let (bytes, out) = run_bytes(&cfg, 1);
    let text = String::from_utf8(bytes).unwrap();
    let want = format!(
        "{{\"prompt\":\"Hello there\",\"prompt_length\":2}}\n{{\"prompt\":\"What is in the picture?\",\"prompt_length\":6,\"output_length\":30,\"image_path\":{}}}\n",
        serde_json::to_string(&dir.path().join("img/a.png")).unwrap()
    );
    assert_eq!(text, want);
    assert_eq!(out.stats["images"], 1);
    assert_eq!(
        out.inputs,
        vec![(
            "dataset.custom.path".to_string(),
            dir.path().join("c.jsonl")
        )]
    );

    cfg.dataset.kind = DatasetType::ClientTrace;
    cfg.dataset.client_trace.path = Some(write(
        dir.path(),
        "out.jsonl",
        "{\"input\":[{\"role\":\"user\",\"content\":\"Hello there\"}],\"output\":\"Hi\",\"prompt_tokens\":9,\"output_tokens\":1,\"status\":\"success\"}\n{\"request_id\":1,\"status\":\"error\",\"input\":[{\"role\":\"user\",\"content\":\"x\"}]}\n",
    ));
    let (bytes, out) = run_bytes(&cfg, 1);
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "{\"prompt\":\"Hello there\",\"prompt_length\":2,\"output_length\":1}\n"
    );
    assert_eq!(out.stats["failed_skipped"], 1);
}

#[test]
fn nothing_left_is_an_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.dataset.kind = DatasetType::Sharegpt;
    cfg.dataset.sharegpt.path = Some(write(
        dir.path(),
        "sg.json",
        r#"[{"id":"a","conversations":[{"from":"human","value":"hi"}]}]"#,
    ));
    cfg.dataset.sharegpt.min_prompt_tokens = Some(50);
    let run_dir = dir.path().join("run");
    let e = run_with_threads(&cfg, &run_dir, 1).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the dataset is empty: nothing left from"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 2);
    assert!(!run_dir.join(files::DATASET).exists());
}

#[test]
fn bad_tokenizer_and_missing_path_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        tokenizer: bench_text::TokenizerSpec::File(dir.path().join("nope.json")),
        ..Config::default()
    };
    let e = run_with_threads(&cfg, dir.path(), 1).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let mut cfg = Config::default();
    cfg.dataset.kind = DatasetType::Custom;
    let e = run_with_threads(&cfg, dir.path(), 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`dataset.custom.path`: is required when dataset.type is custom"
    );
    assert_eq!(e.exit_code(), 2);
    cfg.dataset.custom.path = Some(dir.path().to_string_lossy().into_owned());
    let e = run_with_threads(&cfg, dir.path(), 1).unwrap_err();
    assert!(e.to_string().ends_with(": is not a file"), "{e}");
}

/// A Hugging Face tokenizer.json made for this test: word-level over whitespace and
/// punctuation, everything unknown. It is not chunk-additive as far as the generator knows,
/// so every length goes through the measuring path.
#[test]
fn hugging_face_tokenizers_get_measured_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let tj = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
      "pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
      "model":{"type":"WordLevel","vocab":{"[UNK]":0,"the":1},"unk_token":"[UNK]"}}"#;
    let tok_path = write(dir.path(), "tokenizer.json", tj);
    let t = bench_text::Tokenizer::load(&tok_path).unwrap();
    assert!(!t.chunk_additive());
    for kind in [
        DatasetType::Random,
        DatasetType::SyntheticShared,
        DatasetType::SyntheticMultiturn,
    ] {
        let mut cfg = small(kind);
        cfg.tokenizer = tok_path.parse().unwrap();
        cfg.dataset.random.num_prompts = 100;
        let run_dir = dir.path().join(kind.as_str());
        run_with_threads(&cfg, &run_dir, 2).unwrap();
        for r in dataset::read(&run_dir.join(files::DATASET)).unwrap() {
            match r {
                DatasetRecord::Plain(p) => {
                    assert_eq!(p.prompt_length, Some(t.count(&p.prompt) as u32))
                }
                DatasetRecord::Session(s) => {
                    assert_eq!(
                        s.prompt_lengths,
                        Some(s.prompts.iter().map(|p| t.count(p) as u32).collect())
                    )
                }
            }
        }
    }
}
