//! `client.api: template` through the binary against the simulated engine: the shipped
//! templates of the three built-in APIs give the same records as the built-in path, and a
//! template that does not fit the replies fails every request with one error, logged once.

use std::path::Path;

use bench_types::record::{RecordTable, Status};

use crate::common::*;

/// 1.5 s at 8 req/s, every reply's text kept.
const SMALL: &[&str] = &[
    "workload.duration_ms=1500",
    "workload.constant.target_qps=8",
    "dataset.random.num_prompts=12",
    "client.record_output_text=true",
    "metrics.enabled=false",
];

fn run(dir: &Path, extra: &[String]) {
    let mut args: Vec<String> = SMALL.iter().map(|s| s.to_string()).collect();
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bench_ok(dir, &overrides(&args));
}

/// Every column of requests.parquet but the instants, one string per row.
fn untimed_rows(dir: &Path) -> Vec<String> {
    let t = RecordTable::read(&dir.join("requests.parquet")).unwrap_or_else(|e| panic!("{e}"));
    let mut chunks = vec![0; t.rows];
    t.chunk_ns.for_each(|i, c| chunks[i] = c.len());
    (0..t.rows)
        .map(|i| {
            let status = match &t.status[i] {
                Status::Known(k) => k.as_str().to_string(),
                Status::Unknown(k) => t.unknown_statuses[*k as usize].clone(),
            };
            format!(
                "id={:?} session={:?} turn={:?} warmup={} status={status} http={:?} error={:?} \
                 chunks={} prompt={:?} output={:?} usage=({:?},{:?}) max={:?} finish={:?} \
                 stream={} text={:?} retried={} note={:?} server=({:?},{:?},{:?},{:?},{:?})",
                t.request_id[i],
                t.session_id[i],
                t.turn[i],
                t.warmup[i],
                t.http_status[i],
                t.error[i],
                chunks[i],
                t.prompt_tokens[i],
                t.output_tokens[i],
                t.usage_prompt_tokens[i],
                t.usage_output_tokens[i],
                t.max_tokens[i],
                t.finish_reason[i],
                t.stream[i],
                t.output_text[i],
                t.retried[i],
                t.note[i],
                t.server_queue_us[i],
                t.server_prefill_us[i],
                t.server_decode_us[i],
                t.server_inference_us[i],
                t.cached_prompt_tokens[i],
            )
        })
        .collect()
}

#[test]
fn shipped_templates_give_the_records_of_the_built_in_apis() {
    let dir = tempfile::tempdir().unwrap();
    let templates = root().join("config/templates");
    for api in ["openai-chat", "openai-completions", "tgi"] {
        let builtin = dir.path().join(format!("builtin-{api}"));
        let templated = dir.path().join(format!("template-{api}"));
        run(&builtin, &[format!("client.api={api}")]);
        run(
            &templated,
            &[
                "client.api=template".into(),
                format!(
                    "client.template={}",
                    templates.join(format!("{api}.yaml")).display()
                ),
            ],
        );
        let (a, b) = (untimed_rows(&builtin), untimed_rows(&templated));
        assert!(a.len() >= 10, "{api}: {} rows", a.len());
        assert!(a.iter().all(|r| r.contains("status=ok")), "{api}: {a:#?}");
        assert!(
            a.iter().all(|r| r.contains("text=Some(")),
            "{api}: no text recorded: {a:#?}"
        );
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{api}: built-in vs template");
        }
        assert_eq!(a.len(), b.len(), "{api}");
        let t = RecordTable::read(&templated.join("requests.parquet")).unwrap();
        assert_eq!(t.meta.api.as_deref(), Some("template"));
        // the template's TTFT is measured the same way: a first token for every row
        assert!(t.first_token_ns.iter().all(Option::is_some), "{api}");
    }
}

#[test]
fn a_template_that_does_not_fit_the_replies_fails_each_request_and_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    // the completions route answers SSE; this template expects JSON lines
    let tpl = dir.path().join("wrong.yaml");
    std::fs::write(
        &tpl,
        "path: /v1/completions\n\
         body: {prompt: '{{prompt}}', model: '{{model}}', max_tokens: '{{max_tokens}}', stream: true}\n\
         reply: {framing: json_lines, text: [/choices/0/text], end: {pointer: /done}}\n",
    )
    .unwrap();
    let key = format!(
        "client.template {}: reply.framing: is `json_lines` but an event is not JSON",
        tpl.display()
    );
    let tpl_arg = format!("client.template={}", tpl.display());
    let args = [
        "workload.duration_ms=1000",
        "workload.constant.target_qps=8",
        "dataset.random.num_prompts=8",
        "metrics.enabled=false",
        "client.api=template",
        &tpl_arg,
    ];
    // The preflight's probe goes through the template: the run does not start.
    let o = bench(&dir.path().join("probed"), &overrides(&args));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("the probe request failed") && err.contains(&key),
        "{err}"
    );
    // Without it, every request fails the same way and the error is logged once.
    let run_dir = dir.path().join("run");
    let mut args = args.to_vec();
    args.extend(["client.preflight=false", "client.model=sim-model"]);
    let o = bench(&run_dir, &overrides(&args));
    let err = text(&o.stderr);
    let logged: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(&key) && l.contains("logged once"))
        .collect();
    assert_eq!(logged.len(), 1, "{err}");
    assert!(
        logged[0].contains("data: {"),
        "names the offending line: {}",
        logged[0]
    );
    let t = RecordTable::read(&run_dir.join("requests.parquet")).unwrap();
    let n = workload_requests(&run_dir);
    assert!(n >= 5, "{n}");
    assert_eq!(t.rows, n);
    for i in 0..t.rows {
        assert!(
            matches!(
                t.status[i],
                Status::Known(bench_types::RequestStatus::TransportError)
            ),
            "row {i}"
        );
        assert!(
            t.error[i].as_deref().is_some_and(|e| e.starts_with(&key)),
            "{:?}",
            t.error[i]
        );
    }
}

#[test]
fn template_errors_at_config_load_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("typo.yaml");
    std::fs::write(
        &tpl,
        "path: /x\nbody: {p: '{{promt}}'}\nreply: {framing: sse, text: [/t], end: {data: '[DONE]'}}\n",
    )
    .unwrap();
    let o = bench(
        &dir.path().join("run"),
        &overrides(&[
            "client.api=template",
            &format!("client.template={}", tpl.display()),
        ]),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("client.template")
            && err.contains("body.p: unknown placeholder `{{promt}}` (did you mean `prompt`?)"),
        "{err}"
    );
    let o = bench(
        &dir.path().join("run2"),
        &overrides(&["client.api=template"]),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("client.template") && text(&o.stderr).contains("is required"),
        "{}",
        text(&o.stderr)
    );
}

/// The simulated engine's ComfyUI route runs one job at a time: three images sent together
/// end one image-time apart, and every request carries its job's workflow.
#[test]
fn simulated_comfyui_runs_image_jobs_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    bench_ok(
        &run_dir,
        &overrides(&[
            "client.api=template",
            "client.template=config/templates/comfyui-runsync.yaml",
            "dataset.type=image_jobs",
            "dataset.image_jobs.num_jobs=3",
            "dataset.image_jobs.width=1000",
            "dataset.image_jobs.height=1000",
            "dataset.image_jobs.steps=4",
            "workload.type=concurrency",
            "workload.concurrency.concurrency=3",
            "workload.concurrency.num_requests=3",
            "analysis.workload_unit=width * height * steps / 1e6",
            "metrics.enabled=false",
            "analysis.plots=false",
        ]),
    );
    let t = RecordTable::read(&run_dir.join("requests.parquet")).unwrap();
    assert_eq!(t.rows, 3);
    let mut e2el: Vec<f64> = (0..3)
        .map(|i| (t.end_ns[i].unwrap() - t.sent_ns[i].unwrap()) as f64 / 1e6)
        .collect();
    e2el.sort_by(f64::total_cmp);
    // 20 ms + 50 ms x 1 MP x 4 steps = 220 ms per image, queued behind each other
    for (k, ms) in e2el.iter().enumerate() {
        let want = 220.0 * (k + 1) as f64;
        assert!(
            (want - 5.0..want + 120.0).contains(ms),
            "image {k} ended after {ms:.0} ms, want ~{want} ms: {e2el:?}"
        );
    }
    for f in &t.fields {
        let f: serde_json::Value = serde_json::from_str(f.as_deref().unwrap()).unwrap();
        assert_eq!(f["width"], 1000);
        assert!(f.get("workflow").is_none(), "nested fields stay out: {f}");
    }
    let s = json(&run_dir, "summary.json");
    assert_eq!(
        s["workload_units"].as_f64(),
        Some(12.0),
        "3 jobs x 4 MP-steps"
    );
}
