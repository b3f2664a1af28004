//! The workload stage end to end on small inputs made here: every type, prompts from the
//! dataset and generated, sessions, the header, and bad input.

use std::collections::HashMap;

use crate::common::*;
use bench_config::workload::{Arrival, PromptSource};
use bench_types::dataset::{self, DatasetRecord, SessionRecord};
use bench_types::{LoopMode, StageError};

#[test]
fn constant_fixed_rate_carries_dataset_prompts_and_output_lengths() {
    let dir = run_dir("const-fixed");
    let ds = plain_dataset(&dir, &[5, 9, 20, 33], true);
    let mut cfg = config("constant");
    cfg.workload.constant.target_qps = 20.0;
    cfg.workload.constant.arrival = Arrival::Fixed;
    cfg.workload.duration_ms = 10_000;
    let (out, wl) = run(&cfg, &dir);
    assert!(
        wl.header.is_none(),
        "an open-loop text workload is plain AIBrix: no header"
    );
    let reqs = requests(&wl);
    assert_eq!(reqs.len(), 200);
    for (k, (t, r)) in reqs.iter().enumerate() {
        assert!((t - 50.0 * k as f64).abs() < 1e-6, "request {k} at {t}");
        let i = ds
            .iter()
            .position(|(p, _)| Some(p) == r.prompt.as_ref())
            .expect("a dataset prompt");
        assert_eq!(r.prompt_length, Some(ds[i].1));
        assert_eq!(
            r.output_length,
            Some(10 + i as u32),
            "output length carried through"
        );
    }
    // Every prompt used 50 times (a shuffled cycle).
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (_, r) in &reqs {
        *uses.entry(r.prompt.as_deref().unwrap()).or_default() += 1;
    }
    assert!(uses.values().all(|&n| n == 50), "{uses:?}");
    assert_eq!(stat_u64(&out, "requests"), 200);
    assert_eq!(stat_u64(&out, "entries"), 200);
    assert_eq!(out.inputs[0].0, "dataset.jsonl");
    // The config's output length wins over the dataset's.
    cfg.workload.constant.output_length = Some(77);
    let (_, wl) = run(&cfg, &dir);
    assert!(
        requests(&wl)
            .iter()
            .all(|(_, r)| r.output_length == Some(77))
    );
}

#[test]
fn constant_synthetic_prompts_are_exact_and_reproducible() {
    let dir = run_dir("const-synth");
    let mut cfg = config("constant");
    cfg.workload.prompt_source = PromptSource::Synthetic;
    cfg.workload.constant.prompt_length = Some(37);
    cfg.workload.constant.output_length = Some(5);
    cfg.workload.duration_ms = 4000;
    let (out, wl) = run(&cfg, &dir);
    let tok = tok();
    let reqs = requests(&wl);
    assert!(reqs.len() > 5);
    for (_, r) in &reqs {
        let p = r.prompt.as_deref().unwrap();
        assert_eq!(tok.count(p), 37, "{p}");
        assert_eq!(r.prompt_length, Some(37));
        assert_eq!(r.output_length, Some(5));
    }
    assert_ne!(reqs[0].1.prompt, reqs[1].1.prompt, "prompts vary");
    assert_eq!(stat_f64(&out, "prompt_length_abs_error_mean"), 0.0);
    assert!(
        reqs.windows(2).all(|w| w[0].0 < w[1].0),
        "poisson times ascend"
    );
    let bytes = std::fs::read(dir.join("workload.jsonl")).unwrap();
    run(&cfg, &dir);
    assert_eq!(
        std::fs::read(dir.join("workload.jsonl")).unwrap(),
        bytes,
        "same config and seed: same bytes"
    );
    cfg.seed += 1;
    run(&cfg, &dir);
    assert_ne!(
        std::fs::read(dir.join("workload.jsonl")).unwrap(),
        bytes,
        "another seed: another workload"
    );
}

#[test]
fn target_lengths_pick_the_closest_dataset_prompt_and_count_missing_lengths() {
    let dir = run_dir("closest");
    let lens = [3, 10, 10, 10, 40, 100];
    let ds = plain_dataset(&dir, &lens, false);
    let mut cfg = config("constant");
    cfg.workload.constant.prompt_length = Some(12);
    cfg.workload.constant.target_qps = 50.0;
    let (out, wl) = run(&cfg, &dir);
    let reqs = requests(&wl);
    let mut texts = std::collections::HashSet::new();
    for (_, r) in &reqs {
        assert_eq!(
            r.prompt_length,
            Some(10),
            "the true length of the prompt used, counted by the tokenizer"
        );
        texts.insert(r.prompt.clone().unwrap());
    }
    assert_eq!(
        texts.len(),
        3,
        "ties between the three 10-token prompts are broken at random"
    );
    assert!(
        ds.iter()
            .filter(|(_, l)| *l == 10)
            .all(|(p, _)| texts.contains(p))
    );
    assert_eq!(stat_f64(&out, "prompt_length_abs_error_mean"), 2.0);
}

fn session_dataset(dir: &std::path::Path, n: u64) -> Vec<SessionRecord> {
    let g = textgen();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    let recs: Vec<SessionRecord> = (0..n)
        .map(|s| {
            let turns = 1 + (s % 4) as usize;
            let prompts: Vec<String> = (0..turns).map(|t| g.generate(&mut rng, 40 + t).0).collect();
            let completions: Vec<String> = (0..turns)
                .map(|t| g.generate(&mut rng, 3 + t + s as usize).0)
                .collect();
            SessionRecord {
                session_id: 1000 + s,
                prompts,
                completions: Some(completions),
                prompt_lengths: None,
                completion_lengths: None,
                source_id: None,
                dataset: None,
            }
        })
        .collect();
    let all: Vec<DatasetRecord> = recs.iter().cloned().map(DatasetRecord::Session).collect();
    dataset::write(&dir.join("dataset.jsonl"), &all).unwrap();
    recs
}

#[test]
fn sessions_keep_turn_order_with_bounded_open_sessions() {
    let dir = run_dir("sessions");
    let recs = session_dataset(&dir, 12);
    let mut cfg = config("constant");
    cfg.workload.constant.target_qps = 30.0;
    cfg.workload.duration_ms = 10_000;
    cfg.workload.max_active_sessions = 3;
    let (out, wl) = run(&cfg, &dir);
    let reqs = requests(&wl);
    let tok = tok();
    // session id -> (dataset record, next turn, last time)
    let mut seen: HashMap<u64, (usize, u32, f64)> = HashMap::new();
    let mut open_max = 0;
    for (t, r) in &reqs {
        let id = r
            .session_id
            .expect("session dataset: every request has a session");
        let turn = r.turn.unwrap();
        let p = r.prompt.as_deref().unwrap();
        let rec = recs
            .iter()
            .position(|s| s.prompts.get(turn as usize).map(String::as_str) == Some(p))
            .expect("a turn of a dataset session");
        let e = seen.entry(id).or_insert((rec, 0, *t));
        assert_eq!(e.0, rec, "session {id} stays on one dataset session");
        assert_eq!(e.1, turn, "session {id}: turns in order");
        assert!(*t >= e.2);
        e.1 += 1;
        e.2 = *t;
        // Output length: the reference completion counted in tokens.
        let c = &recs[rec].completions.as_ref().unwrap()[turn as usize];
        assert_eq!(r.output_length, Some(tok.count(c) as u32));
        let open = seen
            .iter()
            .filter(|(_, (rec, next, _))| *next > 0 && (*next as usize) < recs[*rec].prompts.len())
            .count();
        open_max = open_max.max(open);
    }
    assert!(open_max <= 3, "{open_max} sessions open at once");
    assert!(
        seen.len() > 12,
        "the dataset is cycled with fresh session ids"
    );
    assert_eq!(stat_u64(&out, "sessions"), seen.len() as u64);
}

#[test]
fn concurrency_is_closed_loop_over_the_whole_dataset() {
    let dir = run_dir("conc");
    session_dataset(&dir, 5);
    let mut cfg = config("concurrency");
    cfg.workload.concurrency.concurrency = 4;
    let (out, wl) = run(&cfg, &dir);
    let h = wl.header.as_ref().expect("closed loop needs the header");
    assert_eq!(h.mode, LoopMode::ClosedLoop);
    assert_eq!(h.concurrency, Some(4));
    assert_eq!(h.generator, "concurrency");
    assert_eq!(h.num_requests, Some(1 + 2 + 3 + 4 + 1));
    assert_eq!(wl.entries.len(), 1);
    assert_eq!(wl.entries[0].timestamp, 0.0);
    assert_eq!(wl.num_requests(), 11);
    assert!(!out.stats.contains_key("mean_rate_rps"));
    // num_requests wins over the dataset size; synthetic prompts need no dataset.
    let dir = run_dir("conc-synth");
    cfg.workload.prompt_source = PromptSource::Synthetic;
    cfg.workload.concurrency.num_requests = Some(7);
    cfg.workload.concurrency.prompt_length = Some(12);
    let (out, wl) = run(&cfg, &dir);
    assert_eq!(wl.num_requests(), 7);
    assert!(out.inputs.is_empty());
}

#[test]
fn synthetic_pattern_files_drive_rate_and_lengths() {
    let dir = run_dir("synth");
    let pat = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let mut cfg = config("synthetic");
    cfg.workload.duration_ms = 60_000;
    cfg.workload.interval_ms = 1000;
    cfg.workload.prompt_source = PromptSource::Synthetic;
    cfg.workload.synthetic.arrival = Arrival::Fixed;
    // 10 rps for the first half, 30 for the second (a square-ish wave via a 2-period sine is
    // not needed: a flat pattern plus the fixed process makes counts exact).
    cfg.workload.synthetic.traffic_file = Some(pat(
        "t.json",
        r#"{"fluctuate": 0, "mean": 10, "noise": 0, "period_len_ms": 60000, "only_rise": false}"#,
    ));
    cfg.workload.synthetic.prompt_len_file = Some(pat(
        "p.json",
        r#"{"fluctuate": 20, "mean": 40, "noise": 0, "periods": 1, "only_rise": true}"#,
    ));
    cfg.workload.synthetic.completion_len_pattern =
        Some(bench_config::workload::PatternPreset::SlightFluctuation);
    cfg.workload.synthetic.completion_len_mean = 100.0;
    let (out, wl) = run(&cfg, &dir);
    let reqs = requests(&wl);
    assert_eq!(reqs.len(), 600, "10 rps for 60 s, fixed gaps");
    let tok = tok();
    let mut prev = 0;
    for (t, r) in &reqs {
        let k = (*t / 1000.0).floor();
        let want = (20.0 * (std::f64::consts::TAU * k / 60.0).sin() + 40.0).round();
        let l = r.prompt_length.unwrap();
        assert!(l >= prev, "only_rise");
        prev = l;
        if k <= 15.0 {
            assert_eq!(l as f64, want, "step {k}");
        }
        assert_eq!(tok.count(r.prompt.as_deref().unwrap()), l as usize);
        let o = r.output_length.unwrap() as f64;
        assert!((o - 100.0).abs() <= 11.0, "slight fluctuation: {o}");
    }
    assert_eq!(out.inputs.len(), 2);
    assert_eq!(stat_f64(&out, "expected_requests"), 600.0);
}

#[test]
fn mooncake_block_references_and_materialized_text() {
    let dir = run_dir("mooncake");
    let trace = dir.join("trace.jsonl");
    std::fs::write(
        &trace,
        "{\"timestamp\": 0, \"input_length\": 20, \"output_length\": 3, \"hash_ids\": [7, 8, 9]}\n\
         {\"timestamp\": 10, \"input_length\": 17, \"output_length\": 4, \"hash_ids\": [7, 8, 5]}\n\
         {\"timestamp\": 10, \"input_length\": 8, \"output_length\": 5, \"hash_ids\": [7]}",
    )
    .unwrap();
    let mut cfg = config("mooncake");
    cfg.workload.mooncake.trace_path = Some(trace.display().to_string());
    cfg.workload.mooncake.block_tokens = 8;
    let (out, wl) = run(&cfg, &dir);
    let h = wl.header.as_ref().unwrap();
    let spec = h.prompt_blocks.as_ref().unwrap();
    assert_eq!(
        (
            spec.generator.as_str(),
            spec.tokenizer.as_str(),
            spec.seed,
            spec.block_tokens
        ),
        (bench_text::BLOCK_GENERATOR, "builtin:cl100k_base", 42, 8)
    );
    assert_eq!(
        wl.entries.len(),
        2,
        "the two requests at 10 ms share an entry"
    );
    let reqs = requests(&wl);
    assert_eq!(reqs[1].1.hash_ids.as_deref(), Some(&[7, 8, 5][..]));
    assert!(reqs.iter().all(|(_, r)| r.prompt.is_none()));
    assert_eq!(
        reqs.iter()
            .map(|(_, r)| r.prompt_length.unwrap())
            .collect::<Vec<_>>(),
        [20, 17, 8]
    );
    assert_eq!(stat_u64(&out, "unique_blocks"), 4);
    assert_eq!(stat_u64(&out, "block_refs"), 7);
    cfg.workload.mooncake.materialize = true;
    let (_, mat) = run(&cfg, &dir);
    assert!(
        mat.header.is_none(),
        "materialized prompts are plain AIBrix"
    );
    let g = textgen();
    let tok = tok();
    for ((_, a), (_, b)) in reqs.iter().zip(requests(&mat)) {
        let mut want = String::new();
        g.blocks_prompt(
            42,
            a.hash_ids.as_ref().unwrap(),
            8,
            a.prompt_length.unwrap() as usize,
            &mut want,
        );
        assert_eq!(
            b.prompt.as_deref(),
            Some(want.as_str()),
            "the file holds what the client would build"
        );
        assert_eq!(tok.count(&want), a.prompt_length.unwrap() as usize);
        assert_eq!(b.output_length, a.output_length);
    }
}

#[test]
fn azure_window_time_scale_and_max_requests() {
    let dir = run_dir("azure-small");
    plain_dataset(&dir, &[4, 8, 16], true);
    let trace = dir.join("a.csv");
    std::fs::write(
        &trace,
        "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46.6805900,4,44\r\n2023-11-16 18:15:47.6805900,9,1\r\n2023-11-16 18:15:47.6805900,16,2\r\n2023-11-16 18:15:50.0000001,15,3",
    )
    .unwrap();
    let mut cfg = config("azure");
    cfg.workload.azure.trace_path = Some(trace.display().to_string());
    let (out, wl) = run(&cfg, &dir);
    let reqs = requests(&wl);
    assert_eq!(
        reqs.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [0.0, 1000.0, 1000.0, 3319.4101]
    );
    assert_eq!(
        reqs.iter()
            .map(|(_, r)| r.output_length.unwrap())
            .collect::<Vec<_>>(),
        [44, 1, 2, 3]
    );
    assert_eq!(
        reqs.iter()
            .map(|(_, r)| r.prompt_length.unwrap())
            .collect::<Vec<_>>(),
        [4, 8, 16, 16]
    );
    assert_eq!(wl.entries.len(), 3);
    assert_eq!(stat_f64(&out, "span_ms"), 3319.4101);
    cfg.workload.time_scale = 0.5;
    cfg.workload.azure.start_s = Some(1.0);
    let (_, wl) = run(&cfg, &dir);
    assert_eq!(
        requests(&wl).iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [0.0, 0.0, 1159.70505]
    );
    cfg.workload.max_requests = Some(2);
    let (out, wl) = run(&cfg, &dir);
    assert_eq!(wl.num_requests(), 2);
    assert_eq!(stat_u64(&out, "requests_before_max_requests"), 3);
}

fn expect_err(cfg: &bench_config::Config, dir: &std::path::Path, want: &str) {
    let e = bench_workload::run(cfg, dir).expect_err("should fail");
    assert_eq!(e.exit_code(), 2, "{e}");
    let msg = e.to_string();
    assert!(msg.contains(want), "{msg}\n  should contain: {want}");
    assert!(!msg.contains('\n'), "one-line error: {msg}");
}

#[test]
fn bad_inputs_are_exit_2_with_file_and_line() {
    let dir = run_dir("errors");
    // No dataset.
    expect_err(
        &config("constant"),
        &dir,
        "`workload.prompt_source`: is dataset but",
    );
    // Missing trace.
    let mut cfg = config("azure");
    cfg.workload.prompt_source = PromptSource::Synthetic;
    cfg.workload.azure.trace_path = Some(dir.join("nope.csv").display().to_string());
    expect_err(&cfg, &dir, "`workload.azure.trace_path`: ");
    // Malformed Azure row.
    let a = dir.join("bad.csv");
    std::fs::write(&a, "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46.6805900,374,44\r\n2023-11-16 18:15:47.0,12x,44\r\n").unwrap();
    cfg.workload.azure.trace_path = Some(a.display().to_string());
    expect_err(
        &cfg,
        &dir,
        "bad.csv:3: ContextTokens `12x` is not a token count",
    );
    // Window with no rows.
    std::fs::write(
        &a,
        "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46.6805900,374,44",
    )
    .unwrap();
    cfg.workload.azure.start_s = Some(10.0);
    expect_err(&cfg, &dir, "`workload.azure.start_s`: the window");
    // Mooncake: wrong block count.
    let m = dir.join("m.jsonl");
    std::fs::write(&m, "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 3, \"hash_ids\": [1, 2]}\n{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 3, \"hash_ids\": [1]}\n").unwrap();
    let mut cfg = config("mooncake");
    cfg.workload.mooncake.trace_path = Some(m.display().to_string());
    expect_err(
        &cfg,
        &dir,
        "m.jsonl:2: 1 hash_ids for input_length 600, but 512-token blocks need 2",
    );
    // Stat: length file with a row missing.
    let t = dir.join("traffic.csv");
    let p = dir.join("prompt.csv");
    std::fs::write(&t, "\"Time\",\"Total\",\"Success\",\"4xx Error\"\n2024-10-1 00:00:00,1,1,0\n2024-10-1 00:00:15,2,2,0\n").unwrap();
    std::fs::write(
        &p,
        "\"Time\",\"P50\",\"P70\",\"P90\",\"P99\"\n2024-10-1 00:00:00,10,20,30,40\n",
    )
    .unwrap();
    let mut cfg = config("stat");
    cfg.workload.prompt_source = PromptSource::Synthetic;
    cfg.workload.stat.traffic_file = Some(t.display().to_string());
    cfg.workload.stat.prompt_len_file = Some(p.display().to_string());
    expect_err(&cfg, &dir, "prompt.csv:0: 1 data rows but the traffic file");
    // Stat: a bad cell.
    std::fs::write(&p, "\"Time\",\"P50\",\"P70\",\"P90\",\"P99\"\n2024-10-1 00:00:00,10,20,30,40\n2024-10-1 00:00:15,10,abc,30,40\n").unwrap();
    expect_err(
        &cfg,
        &dir,
        "prompt.csv:3: column P70: `abc` is not a number",
    );
    // Synthetic: bad pattern file.
    let f = dir.join("pat.json");
    std::fs::write(&f, "{\"fluctuate\": 1, \"mean\": 2}").unwrap();
    let mut cfg = config("synthetic");
    cfg.workload.prompt_source = PromptSource::Synthetic;
    cfg.workload.synthetic.prompt_len_pattern =
        Some(bench_config::workload::PatternPreset::QuickRising);
    cfg.workload.synthetic.traffic_file = Some(f.display().to_string());
    expect_err(&cfg, &dir, "`workload.synthetic.traffic_file`: ");
    // A malformed dataset line.
    std::fs::write(
        dir.join("dataset.jsonl"),
        "{\"prompt\": \"hi\"}\n{\"prompt\": 3}\n",
    )
    .unwrap();
    expect_err(&config("constant"), &dir, "dataset.jsonl:2: ");
    assert!(
        !dir.join("workload.jsonl").exists(),
        "no workload file after a failure"
    );
}

/// Every config/workload/*.yaml loads, validates, and (with trace paths pointed at the shared
/// data when they are not in traces/) produces a workload.
#[test]
fn example_configs_load_and_run() {
    let root = bench_types::testdata::repo_root();
    let mut n = 0;
    for entry in std::fs::read_dir(root.join("config/workload")).unwrap() {
        let file = entry.unwrap().path();
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let dir = run_dir(&format!("example-{name}"));
        let r = bench_config::load(&bench_config::Sources {
            files: vec![file.clone()],
            overrides: vec![],
            env: false,
        })
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut cfg = r.config;
        // Paths in the examples are relative to the repository root.
        let abs = |p: &mut Option<String>| {
            if let Some(s) = p.as_mut()
                && std::path::Path::new(s.as_str()).is_relative()
            {
                *s = root.join(&*s).display().to_string();
            }
        };
        let w = &mut cfg.workload;
        for p in [
            &mut w.synthetic.traffic_file,
            &mut w.synthetic.prompt_len_file,
            &mut w.synthetic.completion_len_file,
        ] {
            abs(p);
        }
        let shared = |rel: &str, p: &mut Option<String>| -> bool {
            abs(p);
            if std::path::Path::new(p.as_deref().unwrap()).exists() {
                return true;
            }
            match bench_types::testdata::shared_data(rel) {
                Some(s) => {
                    *p = Some(s.display().to_string());
                    true
                }
                None => false,
            }
        };
        let ok = match name.as_str() {
            "azure" => shared(
                "azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv",
                &mut w.azure.trace_path,
            ),
            "mooncake" => shared(
                "mooncake/conversation_trace.jsonl",
                &mut w.mooncake.trace_path,
            ),
            "stat" => {
                shared(
                    "grafana-derived/azure-conv-15s/traffic.csv",
                    &mut w.stat.traffic_file,
                ) && shared(
                    "grafana-derived/azure-conv-15s/prompt_len.csv",
                    &mut w.stat.prompt_len_file,
                ) && shared(
                    "grafana-derived/azure-conv-15s/completion_len.csv",
                    &mut w.stat.completion_len_file,
                )
            }
            _ => true,
        };
        if !ok {
            continue;
        }
        if cfg.workload.needs_dataset() {
            if name == "constant_sessions" {
                session_dataset(&dir, 20);
            } else {
                plain_dataset(&dir, &[8, 30, 100, 400, 1000], true);
            }
        }
        cfg.workload.max_requests = Some(cfg.workload.max_requests.unwrap_or(2000).min(2000));
        let (out, wl) = run(&cfg, &dir);
        assert!(wl.num_requests() > 0, "{name}");
        assert_eq!(stat_u64(&out, "requests"), wl.num_requests() as u64);
        n += 1;
    }
    assert!(n >= 4, "{n} example configs ran");
}
