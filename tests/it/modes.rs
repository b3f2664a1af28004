//! Issue 15's modes end to end against the simulated engine: reasoning models, named datasets
//! and mixes, interactive chat.

use bench_types::record::RecordTable;

use crate::common::*;

/// ~30 requests of 512 prompt and 40 output tokens, in 1.5 s.
const SHORT: &[&str] = &[
    "workload.duration_ms=1500",
    "workload.constant.target_qps=20",
    "dataset.random.num_prompts=20",
    "dataset.random.output_tokens=40",
];

#[test]
fn reasoning_mode_records_both_phases_with_exact_token_counts() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let mut kv = SHORT.to_vec();
    // floor(0.3 x 40) = 12 reasoning tokens, then 28 answer tokens, in vLLM 0.10's `reasoning`
    kv.extend(["sim.reasoning_share=0.3", "sim.reasoning_field=reasoning"]);
    let o = bench_ok(run, &overrides(&kv));
    let out = text(&o.stdout);
    assert!(out.contains("TTFT answer (ms)"), "{out}");
    let n = workload_requests(run);
    let t = RecordTable::read(&run.join("requests.parquet")).unwrap();
    assert_eq!(t.rows, n);
    for i in 0..n {
        assert_eq!(t.output_tokens[i], Some(40), "row {i}");
        assert_eq!(t.usage_output_tokens[i], Some(40), "row {i}");
        assert_eq!(t.reasoning_tokens[i], Some(12), "row {i}");
        assert_eq!(t.usage_reasoning_tokens[i], Some(12), "row {i}");
        let (fr, fa, ft) = (
            t.first_reasoning_ns[i].unwrap(),
            t.first_answer_ns[i].unwrap(),
            t.first_token_ns[i].unwrap(),
        );
        assert_eq!(ft, fr, "TTFT counts the first reasoning token");
        assert!(fa > fr, "row {i}: the answer comes after the reasoning");
    }
    let s = json(run, "summary.json");
    let q = &s["reasoning"];
    assert_eq!(q["requests_with_reasoning"], n);
    assert_eq!(q["reasoning_from_usage"], n);
    assert_eq!(q["total_reasoning_tokens"], 12.0 * n as f64);
    assert_eq!(q["total_answer_tokens"], 28.0 * n as f64);
    assert_eq!(q["reasoning_tokens"]["max"], 12.0);
    assert_eq!(q["answer_tokens"]["min"], 28.0);
    let ttft = s["ttft_ms"]["p50"].as_f64().unwrap();
    let ttft_r = q["ttft_reasoning_ms"]["p50"].as_f64().unwrap();
    let ttft_a = q["ttft_answer_ms"]["p50"].as_f64().unwrap();
    let think = q["thinking_ms"]["p50"].as_f64().unwrap();
    assert_eq!(ttft, ttft_r);
    // 12 reasoning tokens take 11 decode steps (~10 ms each under the small preset) after the first
    assert!(think > 11.0 * 5.0 && ttft_a > ttft_r + think * 0.9, "{q}");
    // answer TPOT: (end - first answer) / 27, the same decode pace as the whole reply's TPOT
    let tpot = s["tpot_ms"]["p50"].as_f64().unwrap();
    let atpot = q["answer_tpot_ms"]["p50"].as_f64().unwrap();
    assert!((atpot - tpot).abs() < tpot * 0.25, "{atpot} vs {tpot}");

    // without the reasoning mode, nothing of it appears
    let dir2 = tempfile::tempdir().unwrap();
    bench_ok(dir2.path(), &overrides(SHORT));
    let s2 = json(dir2.path(), "summary.json");
    assert!(s2["reasoning"].is_null(), "{}", s2["reasoning"]);
    let t2 = RecordTable::read(&dir2.path().join("requests.parquet")).unwrap();
    assert!(t2.first_reasoning_ns.iter().all(Option::is_none));
    assert!(t2.usage_reasoning_tokens.iter().all(Option::is_none));
    assert_eq!(t2.first_answer_ns, t2.first_token_ns);
}

/// `bench` on config/datasets-mix.yaml (20 requests at 0.7 / 0.3, the engine 5x faster).
fn mix_cmd(run: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_bench"));
    c.current_dir(root())
        .env_remove("RUST_LOG")
        .arg("-q")
        .args(["--config", "config/datasets-mix.yaml"])
        .args(["--override", &format!("run_dir={}", run.display())]);
    for o in [
        "workload.num_requests=20",
        "dataset.records=20",
        "sim.time_scale=0.2",
    ]
    .iter()
    .chain(extra)
    {
        if o.starts_with("--") {
            c.arg(o);
        } else {
            c.args(["--override", o]);
        }
    }
    c
}

fn count<'a>(names: impl Iterator<Item = Option<&'a str>>) -> Vec<(String, usize)> {
    let mut m = std::collections::BTreeMap::new();
    for n in names {
        *m.entry(n.unwrap_or("-").to_string()).or_insert(0) += 1;
    }
    m.into_iter().collect()
}

#[test]
fn a_weighted_dataset_mix_is_exact_recorded_and_broken_down() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("a");
    let o = mix_cmd(&run, &[]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("== by dataset"), "{out}");
    // 20 at 0.7 / 0.3: exactly 14 + 6, in the dataset, the workload and the records
    let want = vec![("chat".to_string(), 14), ("long_docs".to_string(), 6)];
    let ds = bench_types::dataset::read(&run.join("dataset.jsonl")).unwrap();
    let names = ds.iter().map(|r| match r {
        bench_types::DatasetRecord::Plain(p) => p.dataset.as_deref(),
        bench_types::DatasetRecord::Session(s) => s.dataset.as_deref(),
    });
    assert_eq!(count(names), want);
    let wl = bench_types::workload::read(&run.join("workload.jsonl")).unwrap();
    let reqs: Vec<_> = wl.entries.iter().flat_map(|e| &e.requests).collect();
    assert_eq!(count(reqs.iter().map(|r| r.dataset.as_deref())), want);
    for r in &reqs {
        let long = r.dataset.as_deref() == Some("long_docs");
        let n = r.prompt_length.unwrap();
        assert!(
            if long {
                (1000..=6000).contains(&n)
            } else {
                n == 256
            },
            "{:?}: {n}",
            r.dataset
        );
    }
    let t = RecordTable::read(&run.join("requests.parquet")).unwrap();
    assert_eq!(count(t.dataset.iter().map(|d| d.as_deref())), want);
    let s = json(&run, "summary.json");
    let b = s["breakdowns"]["dataset"].as_array().unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(
        (b[0]["label"].as_str(), b[0]["requests"].as_u64()),
        (Some("chat"), Some(14))
    );
    assert_eq!(
        (b[1]["label"].as_str(), b[1]["requests"].as_u64()),
        (Some("long_docs"), Some(6))
    );
    // long prompts take longer to prefill
    assert!(
        b[1]["ttft_ms"]["p50"].as_f64() > b[0]["ttft_ms"]["p50"].as_f64(),
        "{b:?}"
    );
    let csv = std::fs::read_to_string(run.join("requests.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.ends_with(",long_docs")).count(), 6);

    // the same seed gives the same dataset, byte for byte; another seed another order
    let again = dir.path().join("b");
    let o = mix_cmd(&again, &["--stage=dataset"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let bytes = |p: &std::path::Path| std::fs::read(p.join("dataset.jsonl")).unwrap();
    assert_eq!(bytes(&run), bytes(&again));
    let other = dir.path().join("c");
    let o = mix_cmd(&other, &["seed=7", "--stage=dataset"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_ne!(bytes(&run), bytes(&other));
}

#[test]
fn a_mix_with_sessions_renumbers_them_and_bad_names_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // an AIBrix session-layout file as a named custom dataset, beside the random `chat`
    let f = dir.path().join("sessions.jsonl");
    std::fs::write(
        &f,
        "{\"session_id\": 0, \"prompts\": [\"Hello there\", \"And then?\"]}\n{\"session_id\": 1, \"prompts\": [\"One\", \"Two\", \"Three\"]}\n{\"session_id\": 2, \"prompts\": [\"Why?\"]}\n",
    )
    .unwrap();
    let run = dir.path().join("s");
    let path = format!("datasets.sess.custom.path={}", f.display());
    let o = mix_cmd(
        &run,
        &[
            "datasets.sess.type=custom",
            &path,
            "dataset.use=[{name: chat, weight: 1}, {name: sess, weight: 1}]",
            "dataset.records=6",
            "--stage=dataset",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ds = bench_types::dataset::read(&run.join("dataset.jsonl")).unwrap();
    assert_eq!(ds.len(), 6);
    let sessions: Vec<_> = ds
        .iter()
        .filter_map(|r| match r {
            bench_types::DatasetRecord::Session(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(sessions.len(), 3, "all three sessions of `sess`");
    let ids: Vec<u64> = sessions.iter().map(|s| s.session_id).collect();
    assert_eq!(ids, [0, 1, 2], "numbered again in file order");
    let mut src: Vec<&str> = sessions
        .iter()
        .map(|s| s.source_id.as_deref().unwrap())
        .collect();
    src.sort_unstable();
    assert_eq!(src, ["sess:0", "sess:1", "sess:2"]);

    // a name not in `datasets:`: exit 2, the key, and the nearest name
    let o = mix_cmd(&dir.path().join("x"), &["dataset.use=long_doc"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(
        e.contains("`dataset.use`: `long_doc` is not in `datasets:`; did you mean `long_docs`?"),
        "{e}"
    );
    // more records than a dataset has
    let o = mix_cmd(
        &dir.path().join("y"),
        &["dataset.records=1000", "--stage=dataset"],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(
        e.contains(
            "`dataset.records`: 1000 records at these weights take 700 of `chat`, which has 200"
        ),
        "{e}"
    );
}

/// `dataset.images` and `dataset.prompt_template` together: exact wrapped lengths, two
/// synthetic PNGs per request made from the seed, the bytes recorded, the images reaching
/// the engine, the same dataset bytes on a second run.
#[test]
fn synthetic_images_and_a_prompt_template_end_to_end() {
    use bench_types::dataset::{DatasetRecord, read};
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let tpl = dir.path().join("wrap.txt");
    std::fs::write(
        &tpl,
        "Look at both pictures. {prompt}\nAnswer in {output_length} tokens.\n",
    )
    .unwrap();
    let tpl_kv = format!("dataset.prompt_template={}", tpl.display());
    let mut kv = SHORT.to_vec();
    kv.extend([
        "dataset.random.input_tokens=96",
        "dataset.images.count=2",
        "dataset.images.size=64x48",
        "dataset.images.format=png",
        "sim.image_tokens=100",
        tpl_kv.as_str(),
    ]);
    let o = bench_ok(run, &overrides(&kv));
    let out = text(&o.stdout);
    assert!(out.contains("Images sent"), "{out}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("bytes sent") && html.contains("requests with images"));

    let recs = read(&run.join("dataset.jsonl")).unwrap();
    assert_eq!(recs.len(), 20);
    let mut seeds = std::collections::BTreeSet::new();
    for r in &recs {
        let DatasetRecord::Plain(p) = r else {
            panic!("plain prompts")
        };
        assert_eq!(p.prompt_length, Some(96), "template included");
        assert!(
            p.prompt.starts_with("Look at both pictures. "),
            "{}",
            p.prompt
        );
        assert!(
            p.prompt.ends_with("\nAnswer in 40 tokens."),
            "{:?}",
            p.prompt
        );
        let im = p.images.as_ref().expect("images");
        assert_eq!(im.len(), 2);
        for i in im {
            assert_eq!((i.width, i.height), (64, 48));
            seeds.insert(i.seed);
        }
    }
    assert_eq!(seeds.len(), 40, "every image its own");

    // each request's image bytes are its two encoded images, and the engine got both
    let wl = bench_types::workload::read(&run.join("workload.jsonl")).unwrap();
    let reqs: Vec<_> = wl.entries.iter().flat_map(|e| e.requests.iter()).collect();
    let t = RecordTable::read(&run.join("requests.parquet")).unwrap();
    let mut total = 0u64;
    for i in 0..t.rows {
        if t.warmup[i] {
            continue;
        }
        let r = reqs[t.request_id[i].unwrap() as usize];
        let want: usize = r
            .images
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| bench_client::synth_image::encode(s).unwrap().len())
            .sum();
        assert_eq!(t.image_bytes[i], Some(want as u64), "row {i}");
        let body = t.request_bytes[i].unwrap();
        assert!(
            body > want as u64 * 4 / 3,
            "base64 of both images is in the body"
        );
        total += want as u64;
        // the engine counted 100 tokens per image on top of the text
        let (client, usage) = (
            t.prompt_tokens[i].unwrap(),
            t.usage_prompt_tokens[i].unwrap(),
        );
        assert!(
            usage >= client + 200 && usage <= client + 200 + 16,
            "row {i}: usage {usage}, client {client}"
        );
    }
    let s = json(run, "summary.json");
    let measured = s["sent"]["requests_with_images"].as_u64().unwrap();
    assert!(measured > 0);
    assert!(s["sent"]["image_bytes_total"].as_u64().unwrap() <= total);

    // the same config makes the same dataset
    let dir2 = tempfile::tempdir().unwrap();
    let mut kv2 = kv.clone();
    kv2.push("workload.duration_ms=200");
    bench_ok(
        dir2.path(),
        &[&["--stage", "dataset"][..], &overrides(&kv2)].concat(),
    );
    assert_eq!(
        std::fs::read(run.join("dataset.jsonl")).unwrap(),
        std::fs::read(dir2.path().join("dataset.jsonl")).unwrap()
    );
}

/// What images and templates refuse, each with one line naming the key, exit status 2.
#[test]
fn images_and_templates_refuse_what_they_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("t.txt");
    std::fs::write(&tpl, "no placeholder here\n").unwrap();
    let tpl_kv = format!("dataset.prompt_template={}", tpl.display());
    let good = dir.path().join("g.txt");
    std::fs::write(&good, "{prompt} {topic}").unwrap();
    let good_kv = format!("dataset.prompt_template={}", good.display());
    let long = dir.path().join("l.txt");
    std::fs::write(
        &long,
        "Please read the question below with care and answer it: {prompt}",
    )
    .unwrap();
    let long_kv = format!("dataset.prompt_template={}", long.display());
    for (kv, want) in [
        (vec!["dataset.images.size=huge"], "dataset.images.size"),
        (
            vec!["dataset.type=synthetic_multiturn", "dataset.images.count=1"],
            "applies to plain prompts, and dataset.type synthetic_multiturn wrote a session",
        ),
        (
            vec!["dataset.images.count=1", "client.api=openai-completions"],
            "images need client.api openai-chat",
        ),
        (vec![tpl_kv.as_str()], "has no {prompt}"),
        (
            vec![good_kv.as_str()],
            "{topic} is not a field of random prompt 0",
        ),
        (
            vec!["dataset.type=synthetic_shared", tpl_kv.as_str()],
            "dataset.prompt_template",
        ),
        (
            vec!["dataset.random.input_tokens=3", long_kv.as_str()],
            "the template alone is 12 tokens; prompt 0 is to be 3 tokens",
        ),
    ] {
        let run = tempfile::tempdir().unwrap();
        let mut all = SHORT.to_vec();
        all.extend(kv.iter().copied());
        let o = bench(run.path(), &overrides(&all));
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{kv:?}: {err}");
        assert!(err.contains(want), "{kv:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// The shipped examples: config/multimodal.yaml (one medium JPEG per prompt) and
/// config/prompt-template.yaml (config/prompts/instruct.txt around 512-token prompts).
#[test]
fn the_image_and_prompt_template_examples_run() {
    use bench_types::dataset::{DatasetRecord, read};
    let dir = tempfile::tempdir().unwrap();
    let o = bench_ok(
        dir.path(),
        &[
            "--config",
            "config/multimodal.yaml",
            "--override",
            "workload.duration_ms=1500",
        ],
    );
    assert!(text(&o.stdout).contains("Images sent"));
    let t = RecordTable::read(&dir.path().join("requests.parquet")).unwrap();
    use bench_types::record::Status;
    let ok = Status::Known(bench_types::RequestStatus::Ok);
    for i in (0..t.rows).filter(|&i| t.status[i] == ok) {
        // a 1000x1000 JPEG of this kind is 100-250 KB
        let b = t.image_bytes[i].unwrap();
        assert!((100_000..250_000).contains(&b), "row {i}: {b} bytes");
        // the engine read the image's size from its header: 36 x 36 patches of 28 px
        let (client, usage) = (
            t.prompt_tokens[i].unwrap(),
            t.usage_prompt_tokens[i].unwrap(),
        );
        assert!(
            usage >= client + 1296 && usage <= client + 1296 + 16,
            "row {i}: usage {usage}, client {client}"
        );
    }
    let dir2 = tempfile::tempdir().unwrap();
    bench_ok(
        dir2.path(),
        &[
            "--stage",
            "dataset",
            "--config",
            "config/prompt-template.yaml",
        ],
    );
    let recs = read(&dir2.path().join("dataset.jsonl")).unwrap();
    assert_eq!(recs.len(), 100);
    let instruct = std::fs::read_to_string(root().join("config/prompts/instruct.txt")).unwrap();
    let head = instruct.split("{output_length}").next().unwrap();
    for r in &recs {
        let DatasetRecord::Plain(p) = r else {
            panic!("plain")
        };
        assert_eq!(p.prompt_length, Some(512));
        assert!(p.prompt.starts_with(head) && p.prompt.ends_with("### Answer"));
    }
}

/// Every example config at the top of config/ loads and validates, and those that target the
/// simulated engine run their dataset and workload stages (the full runs are tested above and
/// in templates.rs, chat.rs, sweep.rs).
#[test]
fn every_example_config_loads_and_the_simulated_ones_plan() {
    let mut seen = 0;
    for e in std::fs::read_dir(root().join("config")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        seen += 1;
        let rel = p.strip_prefix(root()).unwrap().display().to_string();
        let r = bench_config::load(&bench_config::Sources {
            files: vec![p.clone()],
            overrides: vec![],
            env: false,
        })
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
        if !matches!(r.config.client.endpoint, bench_config::Endpoint::Sim) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let o = bench(
            dir.path(),
            &[
                "--stage",
                "dataset",
                "--config",
                &rel,
                "--override",
                "workload.duration_ms=3000",
            ],
        );
        assert!(o.status.success(), "{rel}: {}", text(&o.stderr));
        let o = bench(
            dir.path(),
            &[
                "--stage",
                "workload",
                "--config",
                &rel,
                "--override",
                "workload.duration_ms=3000",
            ],
        );
        assert!(o.status.success(), "{rel}: {}", text(&o.stderr));
        assert!(workload_requests(dir.path()) > 0, "{rel}");
    }
    assert!(seen >= 7, "{seen} example configs");
}

/// Two synthetic images per request through the shipped openai-chat *template*: both reach
/// the engine in `{{messages}}` (2 x 18 x 18 tokens at 28-pixel patches), as with the built-in API.
#[test]
fn a_template_carries_every_image() {
    let dir = tempfile::tempdir().unwrap();
    bench_ok(
        dir.path(),
        &[
            "--config",
            "config/multimodal.yaml",
            "--override",
            "dataset.images.count=2",
            "--override",
            "dataset.images.size=small",
            "--override",
            "client.api=template",
            "--override",
            "client.template=config/templates/openai-chat.yaml",
            "--override",
            "workload.duration_ms=1500",
        ],
    );
    let t = RecordTable::read(&dir.path().join("requests.parquet")).unwrap();
    assert!(t.rows > 0);
    for i in 0..t.rows {
        let (client, usage) = (
            t.prompt_tokens[i].unwrap(),
            t.usage_prompt_tokens[i].unwrap(),
        );
        assert!(
            usage >= client + 648 && usage <= client + 648 + 16,
            "row {i}: usage {usage}, client {client}"
        );
        let images = t.image_bytes[i].unwrap();
        assert!(
            t.request_bytes[i].unwrap() > images * 4 / 3,
            "both images in the body"
        );
    }
}
