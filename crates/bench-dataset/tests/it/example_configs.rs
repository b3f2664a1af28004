//! Every config/dataset/*.yaml loads, validates and runs (input paths resolved from the
//! repository root; ShareGPT on the repository's small sample instead of the 640 MB file).

use bench_config::{Sources, load};
use bench_types::testdata::repo_root;
use bench_types::{DatasetRecord, dataset};

fn run_example(name: &str, extra: &[String]) -> (Vec<DatasetRecord>, bench_types::StageOutput) {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let mut overrides = vec![format!("run_dir={}", dir.path().display())];
    overrides.extend(extra.iter().cloned());
    let file = root.join("config/dataset").join(format!("{name}.yaml"));
    let r = load(&Sources {
        files: vec![file],
        overrides,
        env: false,
    })
    .unwrap_or_else(|e| panic!("{name}.yaml: {e}"));
    assert_eq!(r.config.dataset.kind.as_str(), name);
    let out =
        bench_dataset::run(&r.config, dir.path()).unwrap_or_else(|e| panic!("{name}.yaml: {e}"));
    (
        dataset::read(&dir.path().join("dataset.jsonl")).unwrap(),
        out,
    )
}

fn in_repo(key: &str, rel: &str) -> String {
    format!("{key}={}", repo_root().join(rel).display())
}

#[test]
fn generator_examples_run() {
    let (recs, _) = run_example("random", &["dataset.random.num_prompts=50".into()]);
    assert_eq!(recs.len(), 50);
    let (recs, out) = run_example("synthetic_shared", &[]);
    assert_eq!(recs.len(), 12 + 8 + 79 + 50 * 4);
    assert_eq!(out.stats["prefix_groups"], 7);
    let (recs, _) = run_example(
        "synthetic_multiturn",
        &["dataset.synthetic_multiturn.num_sessions_std=0".into()],
    );
    assert_eq!(recs.len(), 200);
}

#[test]
fn input_examples_run_on_the_repository_samples() {
    let (recs, _) = run_example(
        "custom",
        &[in_repo(
            "dataset.custom.path",
            "datasets/custom_example.jsonl",
        )],
    );
    assert_eq!(recs.len(), 5);
    let images: Vec<&str> = recs
        .iter()
        .filter_map(|r| {
            if let DatasetRecord::Plain(p) = r {
                p.image_path.as_deref()
            } else {
                None
            }
        })
        .collect();
    assert_eq!(images.len(), 1);
    assert!(std::path::Path::new(images[0]).is_file());

    let (recs, out) = run_example(
        "client_trace",
        &[in_repo(
            "dataset.client_trace.path",
            "datasets/client_output_example.jsonl",
        )],
    );
    assert_eq!(recs.len(), 3, "4 requests, one failed");
    assert_eq!(out.stats["failed_skipped"], 1);

    // The sample's conversations: 2 turns; system + 1; leading gpt + 1; one unanswered question.
    let (recs, out) = run_example(
        "sharegpt",
        &[
            in_repo("dataset.sharegpt.path", "datasets/sharegpt_example.json"),
            "dataset.sharegpt.min_completion_tokens=null".into(),
        ],
    );
    let turns: Vec<usize> = recs.iter().map(|r| r.num_prompts()).collect();
    assert_eq!(turns, vec![2, 1, 1, 1]);
    assert_eq!(out.stats["system_folded"], 1);
    assert_eq!(out.stats["leading_assistant_dropped"], 1);
}
