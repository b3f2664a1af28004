//! The dataset stage on the real files in ../shared/data (skipped with a message when the
//! directory is missing, a failure under CI=true).

use std::path::{Path, PathBuf};

use bench_config::Config;
use bench_config::dataset::{DatasetType, SharegptLayout};
use bench_text::Tokenizer;
use bench_types::testdata::shared_data;
use bench_types::{DatasetRecord, StageError, dataset};

fn config(kind: DatasetType, key_path: &Path) -> Config {
    let mut cfg = Config::default();
    cfg.dataset.kind = kind;
    let p = Some(key_path.to_string_lossy().into_owned());
    match kind {
        DatasetType::Sharegpt => cfg.dataset.sharegpt.path = p,
        DatasetType::ClientTrace => cfg.dataset.client_trace.path = p,
        DatasetType::Custom => cfg.dataset.custom.path = p,
        _ => {}
    }
    cfg
}

fn run(
    cfg: &Config,
) -> (
    Vec<DatasetRecord>,
    bench_types::StageOutput,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let out =
        bench_dataset::run(cfg, dir.path()).unwrap_or_else(|e| panic!("dataset stage failed: {e}"));
    let recs = dataset::read(&dir.path().join("dataset.jsonl")).unwrap();
    (recs, out, dir)
}

fn sessions(recs: &[DatasetRecord]) -> Vec<&bench_types::SessionRecord> {
    recs.iter()
        .map(|r| match r {
            DatasetRecord::Session(s) => s,
            DatasetRecord::Plain(_) => panic!("sharegpt writes sessions"),
        })
        .collect()
}

fn cl100k() -> Tokenizer {
    Tokenizer::load("builtin:cl100k_base").unwrap()
}

/// Turns per conversation, from the file's structure: it is documented (SOURCE.md) as
/// strictly alternating human/gpt pairs starting with human, 2/6/8/10 messages.
fn pairs_per_conversation(path: &Path) -> Vec<usize> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let turns = c["conversations"].as_array().unwrap();
            for (k, t) in turns.iter().enumerate() {
                assert_eq!(
                    t["from"],
                    if k % 2 == 0 { "human" } else { "gpt" },
                    "alternating as documented"
                );
            }
            assert_eq!(turns.len() % 2, 0);
            turns.len() / 2
        })
        .collect()
}

#[test]
fn sharegpt_multiturn_sample_gives_five_sessions_with_their_turns() {
    let Some(path) = shared_data("sharegpt/dialogstudio/original_example.json") else {
        return;
    };
    let expected = pairs_per_conversation(&path);
    assert_eq!(
        expected,
        vec![5, 1, 1, 4, 3],
        "10/2/2/8/6 messages as committed"
    );
    let (recs, out, _dir) = run(&config(DatasetType::Sharegpt, &path));
    let s = sessions(&recs);
    assert_eq!(s.len(), 5);
    assert_eq!(
        s.iter().map(|s| s.prompts.len()).collect::<Vec<_>>(),
        expected
    );
    let ids: Vec<&str> = s.iter().map(|s| s.source_id.as_deref().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "QWJhYvA_0",
            "i6IyJda_0",
            "A5AbcES_0",
            "hRPPgZT_0",
            "hRPPgZT_8"
        ]
    );
    assert_eq!(
        s.iter().map(|s| s.session_id).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    // Lengths are tokens of the text as written, never characters.
    let tok = cl100k();
    let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (k, sess) in s.iter().enumerate() {
        let conv = raw[k]["conversations"].as_array().unwrap();
        let completions = sess.completions.as_ref().unwrap();
        for (t, prompt) in sess.prompts.iter().enumerate() {
            assert_eq!(prompt, conv[2 * t]["value"].as_str().unwrap());
            assert_eq!(&completions[t], conv[2 * t + 1]["value"].as_str().unwrap());
            assert_eq!(
                sess.prompt_lengths.as_ref().unwrap()[t] as usize,
                tok.count(prompt)
            );
            let cl = sess.completion_lengths.as_ref().unwrap()[t] as usize;
            assert_eq!(cl, tok.count(&completions[t]));
            assert!(
                cl < completions[t].chars().count() / 2,
                "tokens, not characters"
            );
        }
    }
    assert_eq!(out.stats["sessions"], 5);
    assert_eq!(out.stats["prompts"], 14);
    assert_eq!(
        out.inputs,
        vec![("dataset.sharegpt.path".to_string(), path.clone())]
    );
}

#[test]
fn sharegpt_first_turn_files_keep_every_conversation_without_completions() {
    for (rel, n) in [
        ("sharegpt/ml-energy/ShareGPT_V3_filtered_1000.json", 1000),
        ("sharegpt/ml-energy/ShareGPT_V3_filtered_500.json", 500),
    ] {
        let Some(path) = shared_data(rel) else { return };
        let (recs, out, _dir) = run(&config(DatasetType::Sharegpt, &path));
        let s = sessions(&recs);
        // Every record has one non-empty human turn and no reply: nothing is dropped.
        assert_eq!(s.len(), n, "{rel}");
        assert!(s.iter().all(|s| s.prompts.len() == 1
            && s.completions.is_none()
            && s.completion_lengths.is_none()));
        assert_eq!(out.stats["conversations"], n as u64);
        assert_eq!(out.stats["answered_sessions"], 0);
        let tok = cl100k();
        for sess in s.iter().step_by(37) {
            assert_eq!(
                sess.prompt_lengths.as_ref().unwrap()[0] as usize,
                tok.count(&sess.prompts[0])
            );
        }
    }
}

#[test]
fn sharegpt_filters_and_plain_layout_on_the_1000_file() {
    let Some(path) = shared_data("sharegpt/ml-energy/ShareGPT_V3_filtered_1000.json") else {
        return;
    };
    let mut cfg = config(DatasetType::Sharegpt, &path);
    let (all, _, _d) = run(&cfg);
    let lens: Vec<u32> = sessions(&all)
        .iter()
        .map(|s| s.prompt_lengths.as_ref().unwrap()[0])
        .collect();
    let expect = lens.iter().filter(|&&n| (16..=512).contains(&n)).count();
    cfg.dataset.sharegpt.min_prompt_tokens = Some(16);
    cfg.dataset.sharegpt.max_prompt_tokens = Some(512);
    cfg.dataset.sharegpt.layout = SharegptLayout::Plain;
    let (recs, out, _d2) = run(&cfg);
    assert_eq!(recs.len(), expect);
    assert!(
        expect > 100 && expect < 1000,
        "the filter keeps some and drops some: {expect}"
    );
    assert_eq!(out.stats["filtered_turns"], (1000 - expect) as u64);
    assert_eq!(out.stats["empty_sessions_dropped"], (1000 - expect) as u64);
    for r in &recs {
        let DatasetRecord::Plain(p) = r else {
            panic!("plain layout")
        };
        assert!((16..=512).contains(&p.prompt_length.unwrap()));
        assert_eq!(p.output_length, None, "no reference replies in this file");
    }
    cfg.dataset.sharegpt.max_sessions = Some(10);
    let (recs, out, _d3) = run(&cfg);
    assert_eq!(recs.len(), 10);
    assert_eq!(out.stats["records"], 10);
    assert_eq!(
        out.stats["sessions"], 0,
        "plain layout writes no session records"
    );
    assert_eq!(out.stats["kept_conversations"], 10);
    // Every conversation is accounted for: kept, emptied by the filters, or past the limit.
    let n = |k: &str| out.stats[k].as_u64().unwrap();
    assert_eq!(
        n("kept_conversations") + n("empty_sessions_dropped") + n("beyond_max_sessions"),
        1000
    );
    assert!(n("beyond_max_sessions") > 900);
}

#[test]
fn sharegpt_file_with_extra_fields_and_no_id() {
    let Some(path) = shared_data("sharegpt/chat-demo-playground/sharegpt_sample.json") else {
        return;
    };
    let (recs, out, _dir) = run(&config(DatasetType::Sharegpt, &path));
    let s = sessions(&recs);
    assert_eq!(s.len(), 50);
    assert!(
        s.iter()
            .all(|s| s.prompts.len() == 1 && s.completions.as_ref().is_some_and(|c| c.len() == 1))
    );
    // `conversation_id` stands in for the missing `id`.
    let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (k, sess) in s.iter().enumerate() {
        assert_eq!(
            sess.source_id.as_deref(),
            raw[k]["conversation_id"].as_str()
        );
    }
    assert_eq!(out.stats["answered_sessions"], 50);
}

#[test]
fn client_trace_sample_gives_54_prompts_with_output_lengths() {
    let Some(path) = shared_data("aibrix-samples/client-output/output.jsonl") else {
        return;
    };
    let (recs, out, _dir) = run(&config(DatasetType::ClientTrace, &path));
    assert_eq!(recs.len(), 54);
    let raw: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tok = cl100k();
    for (r, v) in recs.iter().zip(&raw) {
        let DatasetRecord::Plain(p) = r else {
            panic!("plain layout")
        };
        assert_eq!(p.prompt, v["input"][0]["content"].as_str().unwrap());
        assert_eq!(p.output_length.map(u64::from), v["output_tokens"].as_u64());
        assert_eq!(p.prompt_length.unwrap() as usize, tok.count(&p.prompt));
    }
    assert_eq!(out.stats["failed_skipped"], 0);
    assert_eq!(
        out.stats["output_tokens"],
        raw.iter()
            .map(|v| v["output_tokens"].as_u64().unwrap())
            .sum::<u64>()
    );
}

/// A copy of `rel` with line `line_no` (1-based) replaced, in a temp dir.
fn corrupt(rel: &str, line_no: usize, with: &str) -> Option<(PathBuf, tempfile::TempDir)> {
    let src = shared_data(rel)?;
    let text = std::fs::read_to_string(src).unwrap();
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines[line_no - 1] = with;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(Path::new(rel).file_name().unwrap());
    std::fs::write(&p, lines.join("\n")).unwrap();
    Some((p, dir))
}

fn expect_bad_input(cfg: &Config, file: &Path, line: usize) {
    let dir = tempfile::tempdir().unwrap();
    let e = bench_dataset::run(cfg, dir.path()).expect_err("malformed input must fail");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}:{line}: ", file.display())),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 2, "{msg}");
    assert!(
        !dir.path().join("dataset.jsonl").exists(),
        "no dataset left behind"
    );
    assert!(!dir.path().join("dataset.jsonl.tmp").exists());
}

#[test]
fn malformed_rows_name_file_and_line_and_exit_2() {
    // client_trace: line 17 of the real output.jsonl broken.
    if let Some((p, _d)) = corrupt(
        "aibrix-samples/client-output/output.jsonl",
        17,
        "{\"input\": [{\"role\": \"user\", \"content\": ",
    ) {
        expect_bad_input(&config(DatasetType::ClientTrace, &p), &p, 17);
    }
    // sharegpt, pretty-printed: a broken turn on line 12.
    if let Some((p, _d)) = corrupt(
        "sharegpt/dialogstudio/original_example.json",
        12,
        "                \"from\": \"human\" \"value\": 3",
    ) {
        expect_bad_input(&config(DatasetType::Sharegpt, &p), &p, 12);
    }
    // sharegpt, single line: the error is on line 1 with a column.
    if let Some(src) = shared_data("sharegpt/ml-energy/ShareGPT_V3_filtered_500.json") {
        let text =
            std::fs::read_to_string(src)
                .unwrap()
                .replacen("\"from\": \"human\"", "\"from\": 7", 1);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sg.json");
        std::fs::write(&p, text).unwrap();
        expect_bad_input(&config(DatasetType::Sharegpt, &p), &p, 1);
    }
    // custom: a self-made file with a bad third line.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("custom.jsonl");
    std::fs::write(&p, "{\"prompt\": \"one\"}\r\n{\"prompt\": \"two\", \"output_length\": 5}\r\n{\"prompt\": \"\"}\r\n").unwrap();
    expect_bad_input(&config(DatasetType::Custom, &p), &p, 3);
}

#[test]
fn missing_input_file_names_the_key_and_exits_2() {
    let cfg = config(
        DatasetType::Sharegpt,
        Path::new("/definitely/not/here.json"),
    );
    let dir = tempfile::tempdir().unwrap();
    let e = bench_dataset::run(&cfg, dir.path()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("`dataset.sharegpt.path`: /definitely/not/here.json: not found"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 2);
}
